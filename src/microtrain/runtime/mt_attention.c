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

void mt_qattention_s8(const int8_t *q, const int8_t *kt, const int8_t *v, int8_t *y, int32_t batch,
                      const int32_t *q_off, const int32_t *k_off, const int32_t *v_off,
                      int32_t s, int32_t p, int32_t t, int32_t pv,
                      int32_t s_azp, int32_t s_bzp, const int32_t *s_mul, int32_t s_nmul,
                      const int64_t *s_add, int32_t s_nadd, int32_t s_shift, int32_t s_lo, int32_t s_hi,
                      int32_t has_scale, int32_t m_azp, int32_t m_bzp, int32_t m_b, int32_t m_mul,
                      int64_t m_add, int32_t m_shift, int32_t m_lo, int32_t m_hi,
                      int32_t kind, int32_t q_ln2, int32_t q_b, int32_t q_c, int32_t to_signed,
                      int32_t c_azp, int32_t c_bzp, const int32_t *c_mul, int32_t c_nmul,
                      const int64_t *c_add, int32_t c_nadd, int32_t c_shift, int32_t c_lo, int32_t c_hi,
                      int8_t *row)
{
  int32_t bt, i, j, k, c;
  for (bt = 0; bt < batch; bt++) {
    const int8_t *qb = q + q_off[bt], *kb = kt + k_off[bt], *vb = v + v_off[bt];
    int8_t *yb = y + (size_t)bt * s * pv;
    for (i = 0; i < s; i++) {
      const int8_t *qr = qb + (size_t)i * p;
      for (j = 0; j < t; j++) {
        int32_t acc = 0;
        int8_t sc;
        for (k = 0; k < p; k++) acc += ((int32_t)qr[k] - s_azp) * ((int32_t)kb[(size_t)k * t + j] - s_bzp);
        sc = mt_requant1(acc, s_mul[s_nmul > 1 ? j : 0], s_add[s_nadd > 1 ? j : 0], s_shift, s_lo, s_hi);
        if (has_scale)
          sc = mt_requant1(((int64_t)sc - m_azp) * ((int64_t)m_b - m_bzp), m_mul, m_add, m_shift, m_lo, m_hi);
        row[j] = sc;
      }
      if (kind == 0) mt_ita_softmax_i8(row, (uint8_t *)row, 1, t, to_signed);
      else mt_ibert_softmax_i8(row, (uint8_t *)row, 1, t, q_ln2, q_b, q_c, to_signed);
      for (c = 0; c < pv; c++) {
        int32_t acc = 0;
        for (j = 0; j < t; j++) {
          int32_t pj = to_signed ? (int32_t)row[j] : (int32_t)((const uint8_t *)row)[j];
          acc += (pj - c_azp) * ((int32_t)vb[(size_t)j * pv + c] - c_bzp);
        }
        yb[(size_t)i * pv + c] = mt_requant1(acc, c_mul[c_nmul > 1 ? c : 0], c_add[c_nadd > 1 ? c : 0],
                                             c_shift, c_lo, c_hi);
      }
    }
  }
}
