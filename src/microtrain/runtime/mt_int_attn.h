/* microtrain kernels: integer-only Transformer ops (ITA streaming softmax,
 * I-BERT softmax / GELU / LayerNorm). Included through mt_kernels.h.
 * Integer arithmetic only; bit-exact with ops/ita_softmax.py, ops/ibert_*.py.
 * Rows are the last axis: x is (rows, n), dense. */
#ifndef MT_INT_ATTN_H
#define MT_INT_ATTN_H

/* ITA softmax of int8 logits at 8/(256 log2 e) per LSB; y/255 ~= probability.
 * to_signed: store the bits of int8 y - 128 instead (zero point -128). */
void mt_ita_softmax_i8(const int8_t *x, uint8_t *y, int32_t rows, int32_t n, int32_t to_signed);

/* I-BERT softmax (polynomial exp after ln2 range reduction); y/255 ~= probability. */
void mt_ibert_softmax_i8(const int8_t *x, uint8_t *y, int32_t rows, int32_t n,
                         int32_t q_ln2, int32_t q_b, int32_t q_c, int32_t to_signed);

/* I-BERT GELU, int8 -> int8 requantized by mult / 2^shift (round half up),
 * input/output zero points zx/zy. y may alias x. */
void mt_ibert_gelu_i8(const int8_t *x, int8_t *y, int32_t count, int32_t q_b, int32_t q_c,
                      int32_t q_one, int32_t mult, int32_t shift, int32_t zx, int32_t zy);

/* I-BERT LayerNorm, int8 -> int8, per-channel integer gain/bias (see ops/ibert_layernorm.py). */
void mt_ibert_layernorm_i8(const int8_t *x, int8_t *y, int32_t rows, int32_t n,
                           const int32_t *gain, const int64_t *bias, int64_t eps_q);

#endif
