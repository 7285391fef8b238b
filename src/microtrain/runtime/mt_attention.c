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

/* out (rows x n) = in (rows x k) w (k x n) + b (n) */
static void mt_affine_rows(const float *in, const float *w, const float *b, float *out,
                           int32_t rows, int32_t k, int32_t n)
{
  int32_t i, j, c;
  for (i = 0; i < rows; i++) {
    float *o = out + (size_t)i * n;
    const float *a = in + (size_t)i * k;
    for (c = 0; c < n; c++) o[c] = b[c];
    for (j = 0; j < k; j++) {
      const float aj = a[j], *wr = w + (size_t)j * n;
      for (c = 0; c < n; c++) o[c] += aj * wr[c];
    }
  }
}

void mt_mhsa_f32(const float *x, const float *wq, const float *bq, const float *wk, const float *bk,
                 const float *wv, const float *bv, const float *wo, const float *bo, float *y,
                 int32_t s, int32_t e, int32_t h, int32_t p, int32_t pv, int32_t eo,
                 float scale, int32_t block_rows, float *scratch)
{
  float *keys = wk ? scratch : NULL;
  float *vals = scratch + (wk ? (size_t)s * p : 0);
  float *qb = vals + (size_t)s * pv, *sc = qb + (size_t)block_rows * p, *cx = sc + (size_t)block_rows * s;
  int32_t hd, r0, i, j, k, c;
  for (i = 0; i < s; i++)
    for (c = 0; c < eo; c++) y[(size_t)i * eo + c] = bo[c];
  for (hd = 0; hd < h; hd++) {
    const float *kmat = x;
    if (wk) {
      mt_affine_rows(x, wk + (size_t)hd * e * p, bk + (size_t)hd * p, keys, s, e, p);
      kmat = keys;
    }
    mt_affine_rows(x, wv + (size_t)hd * e * pv, bv + (size_t)hd * pv, vals, s, e, pv);
    for (r0 = 0; r0 < s; r0 += block_rows) {
      int32_t rows = s - r0 < block_rows ? s - r0 : block_rows;
      mt_affine_rows(x + (size_t)r0 * e, wq + (size_t)hd * e * p, bq + (size_t)hd * p, qb, rows, e, p);
      for (i = 0; i < rows; i++) {
        float *sr = sc + (size_t)i * s, *cr = cx + (size_t)i * pv, mx = -INFINITY, sum = 0.0f, inv;
        for (j = 0; j < s; j++) {
          float acc = 0.0f;
          for (k = 0; k < p; k++) acc += qb[(size_t)i * p + k] * kmat[(size_t)j * p + k];
          sr[j] = acc * scale;
          if (sr[j] > mx) mx = sr[j];
        }
        for (j = 0; j < s; j++) {
          sr[j] = expf(sr[j] - mx);
          sum += sr[j];
        }
        inv = 1.0f / sum;
        for (c = 0; c < pv; c++) cr[c] = 0.0f;
        for (j = 0; j < s; j++) {
          const float w = sr[j] * inv, *vr = vals + (size_t)j * pv;
          for (c = 0; c < pv; c++) cr[c] += w * vr[c];
        }
      }
      /* accumulate this block's share of the output projection */
      for (i = 0; i < rows; i++) {
        float *yr = y + (size_t)(r0 + i) * eo;
        const float *cr = cx + (size_t)i * pv;
        for (k = 0; k < pv; k++) {
          const float ck = cr[k], *wr = wo + ((size_t)hd * pv + k) * eo;
          for (c = 0; c < eo; c++) yr[c] += ck * wr[c];
        }
      }
    }
  }
}
