/* microtrain kernels: depth-first attention. Included through mt_kernels.h. */
#ifndef MT_ATTENTION_H
#define MT_ATTENTION_H

/* y[b] = softmax(scale * q[b] kt[b]) v[b] for each of `batch` entries (heads),
 * q (s x p), kt (p x t), v (t x pv), y (s x pv); *_off give each entry's
 * element offset (broadcast batch dims). Query rows go block_rows at a time
 * through `scores` (block_rows * t floats), the only intermediate storage. */
void mt_attention_f32(const float *q, const float *kt, const float *v, float *y,
                      int32_t batch, int32_t s, int32_t p, int32_t t, int32_t pv,
                      const int32_t *q_off, const int32_t *k_off, const int32_t *v_off,
                      float scale, int32_t block_rows, float *scores);

/* Multi-head self-attention with its projections, depth-first (ops/mhsa.py):
 * y (s x eo) = bo + sum_h softmax(scale * (x wq_h + bq_h)(x wk_h + bk_h)^T)(x wv_h + bv_h) wo_h.
 * x (s x e); wq, wk (h x e x p); wv (h x e x pv); wo (h x pv x eo); wk == NULL
 * means the keys are x itself (p == e). Scratch: K_h (s x p, unless wk is
 * NULL), V_h (s x pv), and per block of block_rows rows their Q, scores and
 * context: 4 * (s*p + s*pv + block_rows*(p + s + pv)) bytes. */
void mt_mhsa_f32(const float *x, const float *wq, const float *bq, const float *wk, const float *bk,
                 const float *wv, const float *bv, const float *wo, const float *bo, float *y,
                 int32_t s, int32_t e, int32_t h, int32_t p, int32_t pv, int32_t eo,
                 float scale, int32_t block_rows, float *scratch);

/* Parameters of the int8 attention core (ops/qattention.py): the scores
 * QMatMul's requant, the optional scalar QMul, the softmax (kind 0 ITA,
 * 1 I-BERT), the P.V QMatMul's requant. */
typedef struct {
  int32_t s_azp, s_bzp; const int32_t *s_mul; int32_t s_nmul; const int64_t *s_add; int32_t s_nadd;
  int32_t s_shift, s_lo, s_hi;
  int32_t has_scale, m_azp, m_bzp, m_b, m_mul; int64_t m_add; int32_t m_shift, m_lo, m_hi;
  int32_t kind, q_ln2, q_b, q_c, to_signed;
  int32_t c_azp, c_bzp; const int32_t *c_mul; int32_t c_nmul; const int64_t *c_add; int32_t c_nadd;
  int32_t c_shift, c_lo, c_hi;
} mt_qatt_core_t;

/* One int8 projection (ops/qmhsa.py): w per head (h, e, n) [output: (h, n, eo)],
 * requant per column of mul/add (all h*n columns), then optionally the
 * bias QAdd: requant((v - b_z) * b_m + b_const[col]). */
typedef struct {
  const int8_t *w; int32_t azp, bzp; const int32_t *mul; const int64_t *add; int32_t shift, lo, hi;
  int32_t has_bias, b_z, b_m; const int64_t *b_const; int32_t b_shift, b_lo, b_hi;
} mt_qproj_t;

/* A projection's output stages for one int32 sum of column `col`. */
static inline int8_t mt_qproj_out(const mt_qproj_t *pr, int32_t acc, int32_t col)
{
  const int8_t v = mt_requant1(acc, pr->mul[col], pr->add[col], pr->shift, pr->lo, pr->hi);
  return pr->has_bias ? mt_requant1((int64_t)v - pr->b_z, pr->b_m, pr->b_const[col], pr->b_shift, pr->b_lo,
                                    pr->b_hi)
                      : v;
}

/* y (rows x cols) = mt_qproj_out of an int32 accumulator (rows x cols); the
 * output projection's last step (mt_qmhsa_s8, the ITA driver). */
void mt_qproj_out_rows(const int32_t *acc, int32_t rows, int32_t cols, const mt_qproj_t *pr, int8_t *y);

/* int8 attention core per batch entry and query row, one row of int8 scores
 * (t bytes) as scratch; bit-exact with the unfused chain. */
void mt_qattention_s8(const int8_t *q, const int8_t *kt, const int8_t *v, int8_t *y, int32_t batch,
                      const int32_t *q_off, const int32_t *k_off, const int32_t *v_off,
                      int32_t s, int32_t p, int32_t t, int32_t pv, const mt_qatt_core_t *core, int8_t *row);

/* int8 multi-head self-attention with its projections, depth-first: per head
 * K_h, V_h (int8) in scratch, per query row Q row -> core -> this head's share of
 * the output projection into an int32 accumulator (s x eo); requant at the end.
 * Scratch: 4*s*eo + s*p + s*pv + p + s + pv bytes. */
void mt_qmhsa_s8(const int8_t *x, int8_t *y, int32_t s, int32_t e, int32_t h, int32_t p, int32_t pv,
                 int32_t eo, const mt_qproj_t *pq, const mt_qproj_t *pk, const mt_qproj_t *pvj,
                 const mt_qatt_core_t *core, const mt_qproj_t *po, void *scratch);

#endif
