/* Normalization kernels (fp32). Statistics use two passes (mean, then the
 * centred sum of squares) to avoid the cancellation of E[x^2] - E[x]^2. */
#include <math.h>
#include "mt_kernels.h"

/* Mean and 1/sqrt(var + eps) of n contiguous values. */
static void mt_moments(const float *x, int32_t n, float eps, float *mean, float *invstd)
{
  int32_t i;
  float sum = 0.0f, sq = 0.0f, m, inv_n = 1.0f / (float)n;
  for (i = 0; i < n; i++) sum += x[i];
  m = sum * inv_n;
  for (i = 0; i < n; i++) { float d = x[i] - m; sq += d * d; }
  *mean = m;
  *invstd = 1.0f / sqrtf(sq * inv_n + eps);
}

void mt_batchnorm_f32(const float *x, const float *scale, const float *bias, const float *mean,
                      const float *var, float *y, int32_t n, int32_t c, int32_t inner, float eps)
{
  int32_t b, ch, i;
  for (ch = 0; ch < c; ch++) {
    float s = scale[ch] / sqrtf(var[ch] + eps);
    float t = bias[ch] - mean[ch] * s;
    for (b = 0; b < n; b++) {
      const float *xp = x + ((size_t)b * c + ch) * inner;
      float *yp = y + ((size_t)b * c + ch) * inner;
      for (i = 0; i < inner; i++) yp[i] = xp[i] * s + t;
    }
  }
}

void mt_layernorm_f32(const float *x, const float *scale, const float *bias, float *y,
                      float *mean_out, float *invstd_out, int32_t outer, int32_t inner, float eps)
{
  int32_t r, i;
  for (r = 0; r < outer; r++) {
    const float *xp = x + (size_t)r * inner;
    float *yp = y + (size_t)r * inner;
    float m, inv;
    mt_moments(xp, inner, eps, &m, &inv);
    if (bias != NULL) {
      for (i = 0; i < inner; i++) yp[i] = (xp[i] - m) * inv * scale[i] + bias[i];
    } else {
      for (i = 0; i < inner; i++) yp[i] = (xp[i] - m) * inv * scale[i];
    }
    if (mean_out != NULL) mean_out[r] = m;
    if (invstd_out != NULL) invstd_out[r] = inv;
  }
}

void mt_groupnorm_f32(const float *x, const float *scale, const float *bias, float *y,
                      int32_t n, int32_t groups, int32_t chans_per_group, int32_t inner,
                      int32_t per_channel, float eps)
{
  mt_groupnorm_f32_par(x, scale, bias, y, n, groups, chans_per_group, inner, per_channel, eps,
                       MT_PAR_SINGLE);
}

/* Work items: (sample, group) blocks, each normalized on its own. */
void mt_groupnorm_f32_par(const float *x, const float *scale, const float *bias, float *y,
                          int32_t n, int32_t groups, int32_t chans_per_group, int32_t inner,
                          int32_t per_channel, float eps, mt_par_t par)
{
  int32_t item, lo, hi, c, i;
  int32_t block = chans_per_group * inner;
  mt_par_range(n * groups, par, &lo, &hi);
  for (item = lo; item < hi; item++) {
    const int32_t g = item % groups;
    size_t base = (size_t)item * block;
    float m, inv;
    mt_moments(x + base, block, eps, &m, &inv);
    for (c = 0; c < chans_per_group; c++) {
      int32_t k = per_channel ? g * chans_per_group + c : g;
      float s = scale[k] * inv;
      float t = bias[k] - m * s;
      const float *xp = x + base + (size_t)c * inner;
      float *yp = y + base + (size_t)c * inner;
      for (i = 0; i < inner; i++) yp[i] = xp[i] * s + t;
    }
  }
}

/* ---- training: backward kernels and the batch-statistics forward ---------- */

void mt_layernorm_f32_bwd(const float *dy, const float *x, const float *scale, float *dx,
                          float *dscale, float *dbias, int32_t outer, int32_t inner, float eps)
{
  int32_t r, i;
  const float inv_n = 1.0f / (float)inner;
  if (dscale != NULL) for (i = 0; i < inner; i++) dscale[i] = 0.0f;
  if (dbias != NULL) for (i = 0; i < inner; i++) dbias[i] = 0.0f;
  for (r = 0; r < outer; r++) {
    const float *xp = x + (size_t)r * inner;
    const float *dyp = dy + (size_t)r * inner;
    float m, inv, sum_g = 0.0f, sum_gx = 0.0f;
    mt_moments(xp, inner, eps, &m, &inv);
    for (i = 0; i < inner; i++) {
      float xh = (xp[i] - m) * inv, g = dyp[i] * scale[i];
      if (dscale != NULL) dscale[i] += dyp[i] * xh;
      if (dbias != NULL) dbias[i] += dyp[i];
      sum_g += g;
      sum_gx += g * xh;
    }
    if (dx != NULL) {
      float *dxp = dx + (size_t)r * inner;
      sum_g *= inv_n;
      sum_gx *= inv_n;
      for (i = 0; i < inner; i++) {
        float xh = (xp[i] - m) * inv;
        dxp[i] = inv * (dyp[i] * scale[i] - sum_g - xh * sum_gx);
      }
    }
  }
}

void mt_groupnorm_f32_bwd(const float *dy, const float *x, const float *scale, float *dx,
                          float *dscale, float *dbias, int32_t n, int32_t groups,
                          int32_t chans_per_group, int32_t inner, int32_t per_channel, float eps)
{
  int32_t b, g, c, i;
  const int32_t block = chans_per_group * inner;
  const int32_t nparams = per_channel ? groups * chans_per_group : groups;
  const float inv_n = 1.0f / (float)block;
  if (dscale != NULL) for (i = 0; i < nparams; i++) dscale[i] = 0.0f;
  if (dbias != NULL) for (i = 0; i < nparams; i++) dbias[i] = 0.0f;
  for (b = 0; b < n; b++) {
    for (g = 0; g < groups; g++) {
      size_t base = ((size_t)b * groups + g) * block;
      const float *xb = x + base, *dyb = dy + base;
      float m, inv, sum_g = 0.0f, sum_gx = 0.0f;
      mt_moments(xb, block, eps, &m, &inv);
      for (c = 0; c < chans_per_group; c++) {
        int32_t k = per_channel ? g * chans_per_group + c : g;
        const float *xp = xb + (size_t)c * inner, *dyp = dyb + (size_t)c * inner;
        float sdy = 0.0f, sdyx = 0.0f;
        for (i = 0; i < inner; i++) {
          sdy += dyp[i];
          sdyx += dyp[i] * (xp[i] - m) * inv;
        }
        if (dscale != NULL) dscale[k] += sdyx;
        if (dbias != NULL) dbias[k] += sdy;
        sum_g += scale[k] * sdy;
        sum_gx += scale[k] * sdyx;
      }
      if (dx == NULL) continue;
      sum_g *= inv_n;
      sum_gx *= inv_n;
      for (c = 0; c < chans_per_group; c++) {
        int32_t k = per_channel ? g * chans_per_group + c : g;
        const float s = scale[k];
        const float *xp = xb + (size_t)c * inner, *dyp = dyb + (size_t)c * inner;
        float *dxp = dx + base + (size_t)c * inner;
        for (i = 0; i < inner; i++)
          dxp[i] = inv * (s * dyp[i] - sum_g - (xp[i] - m) * inv * sum_gx);
      }
    }
  }
}

/* Mean and biased variance of channel ch over the n planes of `inner` values. */
static void mt_channel_moments(const float *x, int32_t n, int32_t c, int32_t inner, int32_t ch,
                               float *mean, float *var)
{
  int32_t b, i;
  float sum = 0.0f, sq = 0.0f, m, inv_n = 1.0f / ((float)n * (float)inner);
  for (b = 0; b < n; b++) {
    const float *xp = x + ((size_t)b * c + ch) * inner;
    for (i = 0; i < inner; i++) sum += xp[i];
  }
  m = sum * inv_n;
  for (b = 0; b < n; b++) {
    const float *xp = x + ((size_t)b * c + ch) * inner;
    for (i = 0; i < inner; i++) { float d = xp[i] - m; sq += d * d; }
  }
  *mean = m;
  *var = sq * inv_n;
}

void mt_batchnorm_train_f32(const float *x, const float *scale, const float *bias,
                            float *running_mean, float *running_var, float *y, int32_t n,
                            int32_t c, int32_t inner, float eps, float momentum)
{
  int32_t b, ch, i;
  const float count = (float)n * (float)inner;
  const float unbias = count > 1.0f ? count / (count - 1.0f) : 1.0f;
  for (ch = 0; ch < c; ch++) {
    float m, v, s, t;
    mt_channel_moments(x, n, c, inner, ch, &m, &v);
    s = scale[ch] / sqrtf(v + eps);
    t = bias[ch] - m * s;
    for (b = 0; b < n; b++) {
      const float *xp = x + ((size_t)b * c + ch) * inner;
      float *yp = y + ((size_t)b * c + ch) * inner;
      for (i = 0; i < inner; i++) yp[i] = xp[i] * s + t;
    }
    running_mean[ch] = momentum * running_mean[ch] + (1.0f - momentum) * m;
    running_var[ch] = momentum * running_var[ch] + (1.0f - momentum) * v * unbias;
  }
}

void mt_batchnorm_f32_bwd(const float *dy, const float *x, const float *scale, const float *mean,
                          const float *var, float *dx, float *dscale, float *dbias, int32_t n,
                          int32_t c, int32_t inner, float eps, int32_t batch_stats)
{
  int32_t b, ch, i;
  const float inv_count = 1.0f / ((float)n * (float)inner);
  for (ch = 0; ch < c; ch++) {
    float m = 0.0f, v, inv, sdy = 0.0f, sdyx = 0.0f, k, mdy, mdyx;
    if (batch_stats) mt_channel_moments(x, n, c, inner, ch, &m, &v);
    else { v = var[ch]; if (x != NULL) m = mean[ch]; }
    inv = 1.0f / sqrtf(v + eps);
    if (batch_stats || dscale != NULL || dbias != NULL) {
      for (b = 0; b < n; b++) {
        const float *dyp = dy + ((size_t)b * c + ch) * inner;
        const float *xp = x != NULL ? x + ((size_t)b * c + ch) * inner : NULL;
        for (i = 0; i < inner; i++) {
          sdy += dyp[i];
          if (xp != NULL) sdyx += dyp[i] * (xp[i] - m) * inv;
        }
      }
    }
    if (dscale != NULL) dscale[ch] = sdyx;
    if (dbias != NULL) dbias[ch] = sdy;
    if (dx == NULL) continue;
    k = scale[ch] * inv;
    mdy = batch_stats ? sdy * inv_count : 0.0f;
    mdyx = batch_stats ? sdyx * inv_count : 0.0f;
    for (b = 0; b < n; b++) {
      const float *dyp = dy + ((size_t)b * c + ch) * inner;
      float *dxp = dx + ((size_t)b * c + ch) * inner;
      if (batch_stats) {
        const float *xp = x + ((size_t)b * c + ch) * inner;
        for (i = 0; i < inner; i++) dxp[i] = k * (dyp[i] - mdy - (xp[i] - m) * inv * mdyx);
      } else {
        for (i = 0; i < inner; i++) dxp[i] = k * dyp[i];
      }
    }
  }
}
