/* Softmax kernels (fp32). */
#include <math.h>
#include "mt_kernels.h"

/* One softmax vector of n values `stride` apart. Every x[i] is read before
 * y[i] is written, so y may alias x. */
static void mt_softmax_vec(const float *x, float *y, int32_t n, int32_t stride, int32_t log_softmax)
{
  int32_t i;
  float mx = -INFINITY, sum = 0.0f;
  for (i = 0; i < n; i++) if (x[(size_t)i * stride] > mx) mx = x[(size_t)i * stride];
  if (log_softmax) {
    float shift;
    for (i = 0; i < n; i++) sum += expf(x[(size_t)i * stride] - mx);
    shift = mx + logf(sum);
    for (i = 0; i < n; i++) y[(size_t)i * stride] = x[(size_t)i * stride] - shift;
  } else {
    float inv;
    for (i = 0; i < n; i++) {
      float e = expf(x[(size_t)i * stride] - mx);
      y[(size_t)i * stride] = e;
      sum += e;
    }
    inv = 1.0f / sum;
    for (i = 0; i < n; i++) y[(size_t)i * stride] *= inv;
  }
}

void mt_softmax_f32(const float *x, float *y, int32_t outer, int32_t n, int32_t inner,
                    int32_t log_softmax)
{
  int32_t o, j;
  for (o = 0; o < outer; o++) {
    size_t base = (size_t)o * n * inner;
    for (j = 0; j < inner; j++) mt_softmax_vec(x + base + j, y + base + j, n, inner, log_softmax);
  }
}

void mt_softmax_f32_bwd(const float *dy, const float *y, float *dx, int32_t outer, int32_t n,
                        int32_t inner, int32_t log_softmax)
{
  int32_t o, j, i;
  for (o = 0; o < outer; o++) {
    for (j = 0; j < inner; j++) {
      size_t base = (size_t)o * n * inner + j;
      const float *dyv = dy + base, *yv = y + base;
      float *dxv = dx + base;
      float s = 0.0f;
      if (log_softmax) {
        for (i = 0; i < n; i++) s += dyv[(size_t)i * inner];
        for (i = 0; i < n; i++) {
          size_t k = (size_t)i * inner;
          dxv[k] = dyv[k] - expf(yv[k]) * s;
        }
      } else {
        for (i = 0; i < n; i++) s += dyv[(size_t)i * inner] * yv[(size_t)i * inner];
        for (i = 0; i < n; i++) {
          size_t k = (size_t)i * inner;
          dxv[k] = yv[k] * (dyv[k] - s);
        }
      }
    }
  }
}
