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

/* One query row of the int8 attention core: scores (requant, optional QMul),
 * softmax in place in `row` (t bytes), context row yr = requant(probs . v).
 * kt element (k, j) is kb[k * ksp + j * kst]. */
static void mt_qatt_row(const int8_t *qr, const int8_t *kb, int32_t ksp, int32_t kst, const int8_t *vb,
                        int8_t *yr, int32_t p, int32_t t, int32_t pv, const mt_qatt_core_t *c, int8_t *row)
{
  int32_t j, k, o;
  for (j = 0; j < t; j++) {
    int32_t acc = 0;
    int8_t sc;
    for (k = 0; k < p; k++)
      acc += ((int32_t)qr[k] - c->s_azp) * ((int32_t)kb[(size_t)k * ksp + (size_t)j * kst] - c->s_bzp);
    sc = mt_requant1(acc, c->s_mul[c->s_nmul > 1 ? j : 0], c->s_add[c->s_nadd > 1 ? j : 0],
                     c->s_shift, c->s_lo, c->s_hi);
    if (c->has_scale)
      sc = mt_requant1(((int64_t)sc - c->m_azp) * ((int64_t)c->m_b - c->m_bzp), c->m_mul, c->m_add,
                       c->m_shift, c->m_lo, c->m_hi);
    row[j] = sc;
  }
  if (c->kind == 0) mt_ita_softmax_i8(row, (uint8_t *)row, 1, t, c->to_signed);
  else mt_ibert_softmax_i8(row, (uint8_t *)row, 1, t, c->q_ln2, c->q_b, c->q_c, c->to_signed);
  for (o = 0; o < pv; o++) {
    int32_t acc = 0;
    for (j = 0; j < t; j++) {
      int32_t pj = c->to_signed ? (int32_t)row[j] : (int32_t)((const uint8_t *)row)[j];
      acc += (pj - c->c_azp) * ((int32_t)vb[(size_t)j * pv + o] - c->c_bzp);
    }
    yr[o] = mt_requant1(acc, c->c_mul[c->c_nmul > 1 ? o : 0], c->c_add[c->c_nadd > 1 ? o : 0],
                        c->c_shift, c->c_lo, c->c_hi);
  }
}

void mt_qattention_s8(const int8_t *q, const int8_t *kt, const int8_t *v, int8_t *y, int32_t batch,
                      const int32_t *q_off, const int32_t *k_off, const int32_t *v_off,
                      int32_t s, int32_t p, int32_t t, int32_t pv, const mt_qatt_core_t *core, int8_t *row)
{
  int32_t bt, i;
  for (bt = 0; bt < batch; bt++) {
    const int8_t *qb = q + q_off[bt], *kb = kt + k_off[bt], *vb = v + v_off[bt];
    int8_t *yb = y + (size_t)bt * s * pv;
    for (i = 0; i < s; i++)
      mt_qatt_row(qb + (size_t)i * p, kb, t, 1, vb, yb + (size_t)i * pv, p, t, pv, core, row);
  }
}

/* y (rows x n) = stages of one projection for rows of x (rows x e), head columns
 * [h*n, (h+1)*n) of the per-head tables: requant(x . w_h) then the bias QAdd. */
static void mt_qproj_rows(const int8_t *x, int32_t rows, int32_t e, int32_t n, int32_t h,
                          const mt_qproj_t *pr, int8_t *y)
{
  int32_t i, c, k;
  const int8_t *w = pr->w + (size_t)h * e * n;
  for (i = 0; i < rows; i++) {
    for (c = 0; c < n; c++) {
      int32_t acc = 0;
      for (k = 0; k < e; k++)
        acc += ((int32_t)x[(size_t)i * e + k] - pr->azp) * ((int32_t)w[(size_t)k * n + c] - pr->bzp);
      y[(size_t)i * n + c] = mt_qproj_out(pr, acc, h * n + c);
    }
  }
}

void mt_qproj_out_rows(const int32_t *acc, int32_t rows, int32_t cols, const mt_qproj_t *pr, int8_t *y)
{
  int32_t i, o;
  for (i = 0; i < rows; i++)
    for (o = 0; o < cols; o++) y[(size_t)i * cols + o] = mt_qproj_out(pr, acc[(size_t)i * cols + o], o);
}

void mt_qmhsa_s8(const int8_t *x, int8_t *y, int32_t s, int32_t e, int32_t h, int32_t p, int32_t pv,
                 int32_t eo, const mt_qproj_t *pq, const mt_qproj_t *pk, const mt_qproj_t *pvj,
                 const mt_qatt_core_t *core, const mt_qproj_t *po, void *scratch)
{
  int32_t *acc = (int32_t *)scratch;
  int8_t *keys = (int8_t *)(acc + (size_t)s * eo), *vals = keys + (size_t)s * p;
  int8_t *qrow = vals + (size_t)s * pv, *row = qrow + p, *crow = row + s;
  int32_t hd, i, c, o;
  for (i = 0; i < s * eo; i++) acc[i] = 0;
  for (hd = 0; hd < h; hd++) {
    mt_qproj_rows(x, s, e, p, hd, pk, keys);
    mt_qproj_rows(x, s, e, pv, hd, pvj, vals);
    for (i = 0; i < s; i++) {
      mt_qproj_rows(x + (size_t)i * e, 1, e, p, hd, pq, qrow);
      mt_qatt_row(qrow, keys, 1, p, vals, crow, p, s, pv, core, row);
      for (c = 0; c < pv; c++) {           /* this head's share of the output projection */
        const int32_t a = (int32_t)crow[c] - po->azp;
        const int8_t *wr = po->w + ((size_t)hd * pv + c) * eo;
        for (o = 0; o < eo; o++) acc[(size_t)i * eo + o] += a * ((int32_t)wr[o] - po->bzp);
      }
    }
  }
  mt_qproj_out_rows(acc, s, eo, po, y);
}
