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

/* int8 attention core (ops/qattention.py): per batch entry and query row,
 * scores = requant((q - s_azp)(kt - s_bzp)), optionally QMul by the scalar
 * m_b, ITA (kind 0) or I-BERT (kind 1) softmax in place, then
 * y = requant((probs - c_azp)(v - c_bzp)). Scratch: t bytes. */
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
                      int8_t *row);

#endif
