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
  int32_t b, g, c, i;
  int32_t block = chans_per_group * inner;
  for (b = 0; b < n; b++) {
    for (g = 0; g < groups; g++) {
      size_t base = ((size_t)b * groups + g) * block;
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
}
