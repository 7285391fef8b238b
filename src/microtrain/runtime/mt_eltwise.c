/* Element-wise kernels (fp32). */
#include <math.h>
#include "mt_kernels.h"

static float mt_apply_binary(int32_t op, float a, float b)
{
  switch (op) {
  case MT_ADD: return a + b;
  case MT_SUB: return a - b;
  case MT_MUL: return a * b;
  case MT_DIV: return a / b;
  default:     return powf(a, b);
  }
}

/* Contiguous loop with the op hoisted out, so the compiler can vectorize it. */
#define MT_BINARY_LOOP(EXPR)                                    \
  for (i = 0; i < n; i++) { float av = a[i]; float bv = b[i * bs]; y[i] = (EXPR); }

static void mt_binary_flat(int32_t op, const float *a, const float *b, float *y, int32_t n, int32_t bs)
{
  int32_t i;
  switch (op) {
  case MT_ADD: MT_BINARY_LOOP(av + bv) break;
  case MT_SUB: MT_BINARY_LOOP(av - bv) break;
  case MT_MUL: MT_BINARY_LOOP(av * bv) break;
  case MT_DIV: MT_BINARY_LOOP(av / bv) break;
  default:     MT_BINARY_LOOP(powf(av, bv)) break;
  }
}

void mt_binary_f32(int32_t op, const float *a, const float *b, float *y, int32_t ndim,
                   const int32_t *shape, const int32_t *a_strides, const int32_t *b_strides)
{
  int32_t idx[MT_MAX_RANK];
  int32_t n = 1, d, i;
  int a_dense = 1, b_dense = 1, b_scalar = 1;
  int32_t expect = 1;
  for (d = ndim - 1; d >= 0; d--) {
    n *= shape[d];
    if (shape[d] != 1) {
      if (a_strides[d] != expect) a_dense = 0;
      if (b_strides[d] != expect) b_dense = 0;
      if (b_strides[d] != 0) b_scalar = 0;
      expect *= shape[d];
    }
  }
  if (a_dense && (b_dense || b_scalar)) {
    mt_binary_flat(op, a, b, y, n, b_dense ? 1 : 0);
    return;
  }
  /* General case: walk the output with an odometer over the axes. */
  {
    int32_t ao = 0, bo = 0;
    for (d = 0; d < ndim; d++) idx[d] = 0;
    for (i = 0; i < n; i++) {
      y[i] = mt_apply_binary(op, a[ao], b[bo]);
      for (d = ndim - 1; d >= 0; d--) {
        idx[d]++;
        ao += a_strides[d];
        bo += b_strides[d];
        if (idx[d] < shape[d]) break;
        ao -= a_strides[d] * shape[d];
        bo -= b_strides[d] * shape[d];
        idx[d] = 0;
      }
    }
  }
}

static float mt_sigmoid(float x)
{
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  { float e = expf(x); return e / (1.0f + e); }
}

#define MT_UNARY_LOOP(EXPR) for (i = 0; i < n; i++) { float v = x[i]; y[i] = (EXPR); }

void mt_unary_f32(int32_t op, const float *x, float *y, int32_t n, float alpha, float beta)
{
  int32_t i;
  switch (op) {
  case MT_SQRT:         MT_UNARY_LOOP(sqrtf(v)) break;
  case MT_EXP:          MT_UNARY_LOOP(expf(v)) break;
  case MT_ERF:          MT_UNARY_LOOP(erff(v)) break;
  case MT_RELU:         MT_UNARY_LOOP(v > 0.0f ? v : 0.0f) break;
  case MT_LEAKY_RELU:   MT_UNARY_LOOP(v >= 0.0f ? v : alpha * v) break;
  /* min first, then max (ONNX gives max when min > max); NaN stays NaN */
  case MT_CLIP:         MT_UNARY_LOOP((v < alpha ? alpha : v) > beta ? beta : (v < alpha ? alpha : v)) break;
  case MT_SIGMOID:      MT_UNARY_LOOP(mt_sigmoid(v)) break;
  case MT_TANH:         MT_UNARY_LOOP(tanhf(v)) break;
  case MT_HARD_SIGMOID: MT_UNARY_LOOP(fminf(1.0f, fmaxf(0.0f, alpha * v + beta))) break;
  case MT_HARD_SWISH:   MT_UNARY_LOOP(v * fminf(1.0f, fmaxf(0.0f, v / 6.0f + 0.5f))) break;
  case MT_ELU:          MT_UNARY_LOOP(v > 0.0f ? v : alpha * (expf(v) - 1.0f)) break;
  case MT_GELU:         MT_UNARY_LOOP(0.5f * v * (1.0f + erff(v * 0.70710678118654752f))) break;
  case MT_GELU_TANH:
    MT_UNARY_LOOP(0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)))) break;
  case MT_NEG:          MT_UNARY_LOOP(-v) break;
  case MT_ABS:          MT_UNARY_LOOP(fabsf(v)) break;
  case MT_RECIPROCAL:   MT_UNARY_LOOP(1.0f / v) break;
  case MT_LOG:          MT_UNARY_LOOP(logf(v)) break;
  default:              MT_UNARY_LOOP(v > 20.0f ? v : log1pf(expf(v))) break;
  }
}

#define MT_GRAD_LOOP(EXPR) for (i = 0; i < n; i++) { dx[i] = dy[i] * (EXPR); }

void mt_unary_grad_f32(int32_t op, const float *dy, const float *x, const float *y, float *dx,
                       int32_t n, float alpha, float beta)
{
  int32_t i;
  switch (op) {
  case MT_SQRT:         MT_GRAD_LOOP(0.5f / y[i]) break;
  case MT_EXP:          MT_GRAD_LOOP(y[i]) break;
  case MT_ERF:          MT_GRAD_LOOP(1.1283791670955126f * expf(-x[i] * x[i])) break;
  case MT_RELU:         MT_GRAD_LOOP(y[i] > 0.0f ? 1.0f : 0.0f) break;
  case MT_LEAKY_RELU:   MT_GRAD_LOOP(y[i] > 0.0f ? 1.0f : alpha) break;
  case MT_CLIP:         MT_GRAD_LOOP(x[i] >= alpha && x[i] <= beta ? 1.0f : 0.0f) break;
  case MT_SIGMOID:      MT_GRAD_LOOP(y[i] * (1.0f - y[i])) break;
  case MT_TANH:         MT_GRAD_LOOP(1.0f - y[i] * y[i]) break;
  case MT_HARD_SIGMOID: MT_GRAD_LOOP((alpha * x[i] + beta > 0.0f && alpha * x[i] + beta < 1.0f) ? alpha : 0.0f) break;
  case MT_HARD_SWISH:   MT_GRAD_LOOP(x[i] < -3.0f ? 0.0f : (x[i] <= 3.0f ? x[i] / 3.0f + 0.5f : 1.0f)) break;
  case MT_ELU:          MT_GRAD_LOOP(y[i] > 0.0f ? 1.0f : y[i] + alpha) break;
  case MT_GELU:
    MT_GRAD_LOOP(0.5f * (1.0f + erff(x[i] * 0.70710678118654752f))
                 + x[i] * expf(-0.5f * x[i] * x[i]) * 0.39894228040143268f) break;
  case MT_GELU_TANH: {
    for (i = 0; i < n; i++) {
      float v = x[i];
      float t = tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v));
      dx[i] = dy[i] * (0.5f * (1.0f + t)
                       + 0.5f * v * (1.0f - t * t) * 0.79788456080286536f * (1.0f + 0.134145f * v * v));
    }
    break;
  }
  case MT_NEG:          MT_GRAD_LOOP(-1.0f) break;
  case MT_ABS:          MT_GRAD_LOOP(x[i] > 0.0f ? 1.0f : (x[i] < 0.0f ? -1.0f : 0.0f)) break;
  case MT_RECIPROCAL:   MT_GRAD_LOOP(-y[i] * y[i]) break;
  case MT_LOG:          MT_GRAD_LOOP(1.0f / x[i]) break;
  default:              MT_GRAD_LOOP(1.0f / (1.0f + expf(-x[i]))) break;
  }
}
