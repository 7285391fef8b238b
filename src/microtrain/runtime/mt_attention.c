/* Depth-first attention (fp32): per head, per block of query rows. */
#include <math.h>
#include "mt_kernels.h"

void mt_attention_f32(const float *q, const float *kt, const float *v, float *y,
                      int32_t batch, int32_t s, int32_t p, int32_t t, int32_t pv,
                      const int32_t *q_off, const int32_t *k_off, const int32_t *v_off,
                      float scale, int32_t block_rows, float *scores)
{
  int32_t bt, r0, i, j, k, c;
  for (bt = 0; bt < batch; bt++) {
    const float *qb = q + q_off[bt], *kb = kt + k_off[bt], *vb = v + v_off[bt];
    float *yb = y + (size_t)bt * s * pv;
    for (r0 = 0; r0 < s; r0 += block_rows) {
      int32_t rows = s - r0 < block_rows ? s - r0 : block_rows;
      for (i = 0; i < rows; i++) {
        const float *qr = qb + (size_t)(r0 + i) * p;
        float *sr = scores + (size_t)i * t, mx = -INFINITY, sum = 0.0f, inv;
        float *yr = yb + (size_t)(r0 + i) * pv;
        for (j = 0; j < t; j++) {
          float acc = 0.0f;
          for (k = 0; k < p; k++) acc += qr[k] * kb[(size_t)k * t + j];
          sr[j] = acc * scale;
          if (sr[j] > mx) mx = sr[j];
        }
        for (j = 0; j < t; j++) {
          sr[j] = expf(sr[j] - mx);
          sum += sr[j];
        }
        inv = 1.0f / sum;
        for (c = 0; c < pv; c++) yr[c] = 0.0f;
        for (j = 0; j < t; j++) {
          const float w = sr[j] * inv, *vr = vb + (size_t)j * pv;
          for (c = 0; c < pv; c++) yr[c] += w * vr[c];
        }
      }
    }
  }
}
