/* Pooling kernels (fp32), generic over up to 3 spatial dims. For each output
 * position and dim the window is clipped once to [lo, hi) tap indices, so the
 * inner loops never test bounds. */
#include <math.h>
#include "mt_kernels.h"

/* Window of output position o along one dim: first input coordinate `start`
 * and the taps k in [*lo, *hi) with 0 <= start + k * dil < limit_hi and
 * start + k * dil >= limit_lo. */
static void mt_pool_taps(int32_t o, const int32_t *geom, int32_t dim, int32_t limit_lo,
                         int32_t limit_hi, int32_t *start, int32_t *lo, int32_t *hi)
{
  int32_t k = geom[MT_POOL_KERNEL + dim], s = geom[MT_POOL_STRIDE + dim];
  int32_t dil = geom[MT_POOL_DILATION + dim];
  int32_t st = o * s - geom[MT_POOL_PAD_BEGIN + dim];
  int32_t a = 0, b;
  if (st < limit_lo) a = (limit_lo - st + dil - 1) / dil;
  b = (limit_hi - 1 - st) >= 0 ? (limit_hi - 1 - st) / dil + 1 : 0;
  if (b > k) b = k;
  if (a > b) a = b;
  *start = st; *lo = a; *hi = b;
}

/* Taps of one output position along one dim, inside the input. */
#define MT_TAPS(dim, o, st, lo, hi) \
  mt_pool_taps((o), geom, (dim), 0, geom[MT_POOL_IN + (dim)], &(st), &(lo), &(hi))

void mt_maxpool_f32(const float *MT_RESTRICT x, float *MT_RESTRICT y, int64_t *indices,
                    int32_t nc, const int32_t *geom, int32_t col_major)
{
  const int32_t D = geom[MT_POOL_IN], H = geom[MT_POOL_IN + 1], W = geom[MT_POOL_IN + 2];
  const int32_t dd = geom[MT_POOL_DILATION], dh = geom[MT_POOL_DILATION + 1];
  const int32_t dw = geom[MT_POOL_DILATION + 2];
  const size_t plane = (size_t)D * H * W;
  int32_t c, od, oh, ow;
  for (c = 0; c < nc; c++) {
    const float *xp = x + (size_t)c * plane;
    for (od = 0; od < geom[MT_POOL_OUT]; od++) {
      int32_t sd, d0, d1;
      MT_TAPS(0, od, sd, d0, d1);
      for (oh = 0; oh < geom[MT_POOL_OUT + 1]; oh++) {
        int32_t sh, h0, h1;
        MT_TAPS(1, oh, sh, h0, h1);
        for (ow = 0; ow < geom[MT_POOL_OUT + 2]; ow++) {
          int32_t sw, w0, w1, kd, kh, kw;
          float best = -INFINITY;
          int32_t bd = 0, bh = 0, bw = 0;
          MT_TAPS(2, ow, sw, w0, w1);
          for (kd = d0; kd < d1; kd++) {
            int32_t id = sd + kd * dd;
            for (kh = h0; kh < h1; kh++) {
              int32_t ih = sh + kh * dh;
              const float *row = xp + ((size_t)id * H + ih) * W;
              for (kw = w0; kw < w1; kw++) {
                int32_t iw = sw + kw * dw;
                if (row[iw] > best) { best = row[iw]; bd = id; bh = ih; bw = iw; }
              }
            }
          }
          *y++ = best;
          if (indices != NULL) {
            int64_t flat = col_major ? bd + (int64_t)bh * D + (int64_t)bw * D * H
                                     : ((int64_t)bd * H + bh) * W + bw;
            *indices++ = (int64_t)c * (int64_t)plane + flat;
          }
        }
      }
    }
  }
}

/* Number of taps of one output position along one dim that count. */
static int32_t mt_avg_count(int32_t o, const int32_t *geom, int32_t dim, int32_t include_pad)
{
  int32_t st, lo, hi;
  if (include_pad)
    mt_pool_taps(o, geom, dim, -geom[MT_POOL_PAD_BEGIN + dim],
                 geom[MT_POOL_IN + dim] + geom[MT_POOL_PAD_END + dim], &st, &lo, &hi);
  else
    MT_TAPS(dim, o, st, lo, hi);
  return hi - lo;
}

void mt_avgpool_f32(const float *MT_RESTRICT x, float *MT_RESTRICT y, int32_t nc,
                    const int32_t *geom, int32_t count_include_pad)
{
  const int32_t D = geom[MT_POOL_IN], H = geom[MT_POOL_IN + 1], W = geom[MT_POOL_IN + 2];
  const int32_t dd = geom[MT_POOL_DILATION], dh = geom[MT_POOL_DILATION + 1];
  const int32_t dw = geom[MT_POOL_DILATION + 2];
  const size_t plane = (size_t)D * H * W;
  int32_t c, od, oh, ow;
  (void)D;
  for (c = 0; c < nc; c++) {
    const float *xp = x + (size_t)c * plane;
    for (od = 0; od < geom[MT_POOL_OUT]; od++) {
      int32_t sd, d0, d1, nd = mt_avg_count(od, geom, 0, count_include_pad);
      MT_TAPS(0, od, sd, d0, d1);
      for (oh = 0; oh < geom[MT_POOL_OUT + 1]; oh++) {
        int32_t sh, h0, h1, nh = mt_avg_count(oh, geom, 1, count_include_pad);
        MT_TAPS(1, oh, sh, h0, h1);
        for (ow = 0; ow < geom[MT_POOL_OUT + 2]; ow++) {
          int32_t sw, w0, w1, kd, kh, kw;
          int32_t count = nd * nh * mt_avg_count(ow, geom, 2, count_include_pad);
          float sum = 0.0f;
          MT_TAPS(2, ow, sw, w0, w1);
          for (kd = d0; kd < d1; kd++) {
            int32_t id = sd + kd * dd;
            for (kh = h0; kh < h1; kh++) {
              const float *row = xp + ((size_t)id * H + sh + kh * dh) * W + sw;
              for (kw = w0; kw < w1; kw++) sum += row[kw * dw];
            }
          }
          *y++ = count > 0 ? sum / (float)count : 0.0f;
        }
      }
    }
  }
}

/* sum |v|^p of a run of n values `step` apart; p = 1 and 2 avoid powf. */
static float mt_lp_sum(const float *row, int32_t n, int32_t step, float p)
{
  int32_t k;
  float sum = 0.0f;
  if (p == 2.0f) {
    for (k = 0; k < n; k++) { float v = row[k * step]; sum += v * v; }
  } else if (p == 1.0f) {
    for (k = 0; k < n; k++) sum += fabsf(row[k * step]);
  } else {
    for (k = 0; k < n; k++) sum += powf(fabsf(row[k * step]), p);
  }
  return sum;
}

void mt_lppool_f32(const float *MT_RESTRICT x, float *MT_RESTRICT y, int32_t nc,
                   const int32_t *geom, float p)
{
  const int32_t D = geom[MT_POOL_IN], H = geom[MT_POOL_IN + 1], W = geom[MT_POOL_IN + 2];
  const int32_t dd = geom[MT_POOL_DILATION], dh = geom[MT_POOL_DILATION + 1];
  const int32_t dw = geom[MT_POOL_DILATION + 2];
  const size_t plane = (size_t)D * H * W;
  const float inv_p = 1.0f / p;
  int32_t c, od, oh, ow;
  for (c = 0; c < nc; c++) {
    const float *xp = x + (size_t)c * plane;
    for (od = 0; od < geom[MT_POOL_OUT]; od++) {
      int32_t sd, d0, d1;
      MT_TAPS(0, od, sd, d0, d1);
      for (oh = 0; oh < geom[MT_POOL_OUT + 1]; oh++) {
        int32_t sh, h0, h1;
        MT_TAPS(1, oh, sh, h0, h1);
        for (ow = 0; ow < geom[MT_POOL_OUT + 2]; ow++) {
          int32_t sw, w0, w1, kd, kh;
          float sum = 0.0f;
          MT_TAPS(2, ow, sw, w0, w1);
          for (kd = d0; kd < d1; kd++) {
            for (kh = h0; kh < h1; kh++) {
              const float *row = xp + ((size_t)(sd + kd * dd) * H + sh + kh * dh) * W + sw;
              sum += mt_lp_sum(row + w0 * dw, w1 - w0, dw, p);
            }
          }
          *y++ = p == 2.0f ? sqrtf(sum) : (p == 1.0f ? sum : powf(sum, inv_p));
        }
      }
    }
  }
}

/* ---- training: backward kernels ---------------------------------------------- */

void mt_maxpool_f32_bwd(const float *MT_RESTRICT dy, const float *MT_RESTRICT x,
                        float *MT_RESTRICT dx, int32_t nc, const int32_t *geom)
{
  const int32_t D = geom[MT_POOL_IN], H = geom[MT_POOL_IN + 1], W = geom[MT_POOL_IN + 2];
  const int32_t dd = geom[MT_POOL_DILATION], dh = geom[MT_POOL_DILATION + 1];
  const int32_t dw = geom[MT_POOL_DILATION + 2];
  const size_t plane = (size_t)D * H * W;
  size_t i;
  int32_t c, od, oh, ow;
  for (i = 0; i < (size_t)nc * plane; i++) dx[i] = 0.0f;
  for (c = 0; c < nc; c++) {
    const float *xp = x + (size_t)c * plane;
    float *dxp = dx + (size_t)c * plane;
    for (od = 0; od < geom[MT_POOL_OUT]; od++) {
      int32_t sd, d0, d1;
      MT_TAPS(0, od, sd, d0, d1);
      for (oh = 0; oh < geom[MT_POOL_OUT + 1]; oh++) {
        int32_t sh, h0, h1;
        MT_TAPS(1, oh, sh, h0, h1);
        for (ow = 0; ow < geom[MT_POOL_OUT + 2]; ow++) {
          int32_t sw, w0, w1, kd, kh, kw;
          float best = -INFINITY;
          size_t at = (size_t)-1;
          MT_TAPS(2, ow, sw, w0, w1);
          for (kd = d0; kd < d1; kd++) {
            int32_t id = sd + kd * dd;
            for (kh = h0; kh < h1; kh++) {
              size_t row = ((size_t)id * H + sh + kh * dh) * W;
              for (kw = w0; kw < w1; kw++) {
                size_t k = row + (size_t)(sw + kw * dw);
                if (at == (size_t)-1 || xp[k] > best) { best = xp[k]; at = k; }
              }
            }
          }
          if (at != (size_t)-1) dxp[at] += *dy;
          dy++;
        }
      }
    }
  }
}

void mt_avgpool_f32_bwd(const float *MT_RESTRICT dy, float *MT_RESTRICT dx, int32_t nc,
                        const int32_t *geom, int32_t count_include_pad)
{
  const int32_t D = geom[MT_POOL_IN], H = geom[MT_POOL_IN + 1], W = geom[MT_POOL_IN + 2];
  const int32_t dd = geom[MT_POOL_DILATION], dh = geom[MT_POOL_DILATION + 1];
  const int32_t dw = geom[MT_POOL_DILATION + 2];
  const size_t plane = (size_t)D * H * W;
  size_t i;
  int32_t c, od, oh, ow;
  for (i = 0; i < (size_t)nc * plane; i++) dx[i] = 0.0f;
  for (c = 0; c < nc; c++) {
    float *dxp = dx + (size_t)c * plane;
    for (od = 0; od < geom[MT_POOL_OUT]; od++) {
      int32_t sd, d0, d1, nd = mt_avg_count(od, geom, 0, count_include_pad);
      MT_TAPS(0, od, sd, d0, d1);
      for (oh = 0; oh < geom[MT_POOL_OUT + 1]; oh++) {
        int32_t sh, h0, h1, nh = mt_avg_count(oh, geom, 1, count_include_pad);
        MT_TAPS(1, oh, sh, h0, h1);
        for (ow = 0; ow < geom[MT_POOL_OUT + 2]; ow++) {
          int32_t sw, w0, w1, kd, kh, kw;
          int32_t count = nd * nh * mt_avg_count(ow, geom, 2, count_include_pad);
          float share = count > 0 ? *dy / (float)count : 0.0f;
          dy++;
          MT_TAPS(2, ow, sw, w0, w1);
          for (kd = d0; kd < d1; kd++) {
            int32_t id = sd + kd * dd;
            for (kh = h0; kh < h1; kh++) {
              float *row = dxp + ((size_t)id * H + sh + kh * dh) * W + sw;
              for (kw = w0; kw < w1; kw++) row[kw * dw] += share;
            }
          }
        }
      }
    }
  }
}
