/* Reduction kernels (fp32). */
#include <math.h>
#include "mt_kernels.h"

/* Walk x sequentially with an odometer over all dims but the last, keeping the
 * offset `oi` of the current output element; the last dim is a tight loop
 * that either folds a run into y[oi] (reduced) or updates a run of y (kept).
 * PRE(v) maps an input value, ACC(a, v) folds it into an accumulator. */
#define MT_REDUCE_SWEEP(PRE, ACC)                                               \
  do {                                                                          \
    size_t xi = 0, oi = 0;                                                      \
    int32_t last = shape[ndim - 1], j, d;                                       \
    for (d = 0; d < ndim; d++) idx[d] = 0;                                      \
    for (;;) {                                                                  \
      const float *xp = x + xi;                                                 \
      if (reduced[ndim - 1]) {                                                  \
        float a = y[oi];                                                        \
        for (j = 0; j < last; j++) { float v = PRE(xp[j]); a = ACC(a, v); }     \
        y[oi] = a;                                                              \
      } else {                                                                  \
        float *yp = y + oi;                                                     \
        for (j = 0; j < last; j++) { float v = PRE(xp[j]); yp[j] = ACC(yp[j], v); } \
      }                                                                         \
      xi += (size_t)last;                                                       \
      for (d = ndim - 2; d >= 0; d--) {                                         \
        idx[d]++;                                                               \
        oi += (size_t)ostride[d];                                               \
        if (idx[d] < shape[d]) break;                                           \
        oi -= (size_t)ostride[d] * (size_t)shape[d];                            \
        idx[d] = 0;                                                             \
      }                                                                         \
      if (d < 0) break;                                                         \
    }                                                                           \
  } while (0)

#define MT_ID(v) (v)
#define MT_ABS(v) fabsf(v)
#define MT_SQ(v) ((v) * (v))
#define MT_ADD_ACC(a, v) ((a) + (v))
#define MT_MUL_ACC(a, v) ((a) * (v))
#define MT_MAX_ACC(a, v) ((v) > (a) ? (v) : (a))
#define MT_MIN_ACC(a, v) ((v) < (a) ? (v) : (a))
#define MT_LSE_ACC(a, v) mt_logaddexp(a, v)

/* log(exp(a) + exp(b)) without overflow: a running log-sum-exp needs no
 * second pass (and no scratch) at the cost of one exp and log1p per value. */
static float mt_logaddexp(float a, float b)
{
  float m = a > b ? a : b;
  if (m == -INFINITY) return m;
  return m + log1pf(expf(-fabsf(a - b)));
}

void mt_reduce_f32(int32_t op, const float *MT_RESTRICT x, float *MT_RESTRICT y, int32_t ndim,
                   const int32_t *shape, const int32_t *reduced, int32_t out_size)
{
  int32_t idx[MT_MAX_RANK], ostride[MT_MAX_RANK];
  int32_t i, d, acc = 1, count = 1, empty = 0;
  float init = 0.0f;
  /* Output strides of each input dim: 0 on reduced dims. */
  for (d = ndim - 1; d >= 0; d--) {
    if (reduced[d]) { ostride[d] = 0; count *= shape[d]; }
    else { ostride[d] = acc; acc *= shape[d]; }
  }
  if (op == MT_REDUCE_MAX || op == MT_REDUCE_LOG_SUM_EXP) init = -INFINITY;
  else if (op == MT_REDUCE_MIN) init = INFINITY;
  else if (op == MT_REDUCE_PROD) init = 1.0f;
  for (i = 0; i < out_size; i++) y[i] = init;
  /* An empty input leaves every output at the identity (ONNX's empty set). */
  for (d = 0; d < ndim; d++) if (shape[d] == 0) empty = 1;
  if (!empty) switch (op) {
  case MT_REDUCE_MAX:        MT_REDUCE_SWEEP(MT_ID, MT_MAX_ACC); break;
  case MT_REDUCE_MIN:        MT_REDUCE_SWEEP(MT_ID, MT_MIN_ACC); break;
  case MT_REDUCE_PROD:       MT_REDUCE_SWEEP(MT_ID, MT_MUL_ACC); break;
  case MT_REDUCE_LOG_SUM_EXP: MT_REDUCE_SWEEP(MT_ID, MT_LSE_ACC); break;
  case MT_REDUCE_L1:         MT_REDUCE_SWEEP(MT_ABS, MT_ADD_ACC); break;
  case MT_REDUCE_L2:
  case MT_REDUCE_SUM_SQUARE: MT_REDUCE_SWEEP(MT_SQ, MT_ADD_ACC); break;
  default:                   MT_REDUCE_SWEEP(MT_ID, MT_ADD_ACC); break;
  }
  if (op == MT_REDUCE_MEAN) {
    float inv = 1.0f / (float)count;
    for (i = 0; i < out_size; i++) y[i] *= inv;
  } else if (op == MT_REDUCE_L2) {
    for (i = 0; i < out_size; i++) y[i] = sqrtf(y[i]);
  } else if (op == MT_REDUCE_LOG_SUM) {
    for (i = 0; i < out_size; i++) y[i] = logf(y[i]);
  }
}

/* Index of the extreme value of one vector of n values `stride` apart. */
static int64_t mt_arg_extreme(const float *x, int32_t n, int32_t stride, int32_t find_min,
                              int32_t select_last)
{
  int32_t i, best_i = 0;
  float best = x[0];
  for (i = 1; i < n; i++) {
    float v = x[(size_t)i * stride];
    int better = find_min ? v < best : v > best;
    if (better || (select_last && v == best)) { best = v; best_i = i; }
  }
  return best_i;
}

void mt_argreduce_f32(const float *MT_RESTRICT x, int64_t *MT_RESTRICT y, int32_t outer,
                      int32_t n, int32_t inner, int32_t find_min, int32_t select_last)
{
  int32_t o, j;
  for (o = 0; o < outer; o++) {
    const float *xo = x + (size_t)o * n * inner;
    for (j = 0; j < inner; j++)
      y[(size_t)o * inner + j] = mt_arg_extreme(xo + j, n, inner, find_min, select_last);
  }
}

/* Step the row-major index `idx` of a `shape` tensor by one element, keeping
 * the output offset *oi in step (ostride: output stride per dim, 0 = reduced). */
static void mt_reduce_step(int32_t *idx, const int32_t *shape, const int32_t *ostride,
                           int32_t ndim, size_t *oi)
{
  int32_t d;
  for (d = ndim - 1; d >= 0; d--) {
    idx[d]++;
    *oi += (size_t)ostride[d];
    if (idx[d] < shape[d]) return;
    *oi -= (size_t)ostride[d] * (size_t)shape[d];
    idx[d] = 0;
  }
}

void mt_reduce_extreme_f32_bwd(const float *dy, const float *MT_RESTRICT x, const float *y,
                               float *MT_RESTRICT dx, float *MT_RESTRICT share, int32_t ndim,
                               const int32_t *shape, const int32_t *reduced, int32_t out_size)
{
  int32_t idx[MT_MAX_RANK], ostride[MT_MAX_RANK];
  int32_t d, i, acc = 1;
  size_t total = 1, xi, oi;
  for (d = ndim - 1; d >= 0; d--) {
    ostride[d] = reduced[d] ? 0 : acc;
    if (!reduced[d]) acc *= shape[d];
    total *= (size_t)shape[d];
  }
  for (i = 0; i < out_size; i++) share[i] = 0.0f;
  /* pass 1: how many inputs tie for each extreme */
  for (d = 0; d < ndim; d++) idx[d] = 0;
  for (xi = 0, oi = 0; xi < total; xi++) {
    if (x[xi] == y[oi]) share[oi] += 1.0f;
    mt_reduce_step(idx, shape, ostride, ndim, &oi);
  }
  for (i = 0; i < out_size; i++) share[i] = share[i] > 0.0f ? dy[i] / share[i] : 0.0f;
  /* pass 2: each tied input gets its share of dy */
  for (d = 0; d < ndim; d++) idx[d] = 0;
  for (xi = 0, oi = 0; xi < total; xi++) {
    dx[xi] = x[xi] == y[oi] ? share[oi] : 0.0f;
    mt_reduce_step(idx, shape, ostride, ndim, &oi);
  }
}
