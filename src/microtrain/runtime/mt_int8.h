/* microtrain kernels: int8 family (integer-only inference). Included through
 * mt_kernels.h. Semantics: docs/quantization.md; golden model: ops/q*.py.
 *
 * Every kernel ends in the one requantization rule, in int64:
 *   y = clamp((acc * mul[c] + add[c] + 2^(shift-1)) >> shift, lo, hi)
 * `>>` rounds towards -inf (so the whole rule rounds half up); no rounding
 * term when shift == 0. mul/add hold 1 value (whole tensor) or one per
 * channel: nmul/nadd say which. No int32 intermediate buffers. */
#ifndef MT_INT8_H
#define MT_INT8_H

/* floor(v / 2^s) without relying on implementation-defined >> of negatives. */
static inline int64_t mt_floor_shift(int64_t v, int32_t s)
{
  return v >= 0 ? (v >> s) : ~((~v) >> s);
}

static inline int8_t mt_requant1(int64_t acc, int32_t mul, int64_t add, int32_t shift,
                                 int32_t lo, int32_t hi)
{
  int64_t v = acc * (int64_t)mul + add + (shift > 0 ? ((int64_t)1 << (shift - 1)) : 0);
  v = mt_floor_shift(v, shift);
  if (v < lo) v = lo;
  if (v > hi) v = hi;
  return (int8_t)v;
}

/* mt.Requant: x viewed as (outer, channels, inner), channel = the middle axis. */
void mt_requant_s32_s8(const int32_t *x, int8_t *y, int32_t outer, int32_t channels, int32_t inner,
                       const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                       int32_t shift, int32_t lo, int32_t hi);
void mt_requant_s8_s8(const int8_t *x, int8_t *y, int32_t outer, int32_t channels, int32_t inner,
                      const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                      int32_t shift, int32_t lo, int32_t hi);

/* mt.QConv: direct grouped conv with the geometry table of mt_conv_f32
 * (mt_conv.h); acc = sum (x - x_zp) * w over taps inside the input, then
 * requant per output channel. x: (N,C,D,H,W) int8, w: (M,C/G,KD,KH,KW) int8. */
void mt_conv_s8(const int8_t *MT_RESTRICT x, const int8_t *MT_RESTRICT w, int8_t *MT_RESTRICT y,
                const int32_t *geo, int32_t x_zp,
                const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                int32_t shift, int32_t lo, int32_t hi);

/* Same contract, bit-identical: tap ranges hoisted out of the inner loop,
 * output channels in blocks of 4 sharing each input load;
 * what mt.QConv lowers to unless MICROTRAIN_KERNELS=reference. */
void mt_conv_s8_fast(const int8_t *MT_RESTRICT x, const int8_t *MT_RESTRICT w, int8_t *MT_RESTRICT y,
                     const int32_t *geo, int32_t x_zp,
                     const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                     int32_t shift, int32_t lo, int32_t hi);

/* mt.QMatMul: for each of `batch` products, A at a + a_off[i] (M x K), B at
 * b + b_off[i] (K x N), Y at y + i*M*N; acc = sum_k (a - a_zp) (b - b_zp),
 * requant per column. */
void mt_matmul_s8(const int8_t *MT_RESTRICT a, const int8_t *MT_RESTRICT b, int8_t *MT_RESTRICT y,
                  int32_t batch, const int32_t *a_off, const int32_t *b_off,
                  int32_t m, int32_t k, int32_t n, int32_t a_zp, int32_t b_zp,
                  const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                  int32_t shift, int32_t lo, int32_t hi);

/* Same contract, 4 output columns per pass (bit-identical); what mt.QMatMul
 * lowers to unless MICROTRAIN_KERNELS=reference. */
void mt_matmul_s8_fast(const int8_t *MT_RESTRICT a, const int8_t *MT_RESTRICT b, int8_t *MT_RESTRICT y,
                       int32_t batch, const int32_t *a_off, const int32_t *b_off,
                       int32_t m, int32_t k, int32_t n, int32_t a_zp, int32_t b_zp,
                       const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                       int32_t shift, int32_t lo, int32_t hi);

/* Register-blocked GEMM kernels (runtime/mt_int8_gemm.c), bit-identical to
 * mt_conv_s8 / mt_matmul_s8, for constant weights: `wpk` is the conv weight
 * per group, `bpk` B^T per batch matrix, re-laid out at compile time
 * (ops/_quant.py s8_rows_layout; b_off in units of the packed matrices);
 * `panel` is the op's scratch (mt_s8_panel_bytes(K), K = C/G * kernel volume
 * or k) for a few im2col pixels / rows of A as int16. 4x4 int32 accumulator
 * blocks, or 4x3 with dual 16-bit MACs (__smlad) where the core has the DSP
 * extension (Cortex-M4/M7). */
size_t mt_s8_panel_bytes(int32_t kk);
void mt_conv_s8_gemm(const int8_t *MT_RESTRICT x, const int8_t *MT_RESTRICT wpk, int8_t *MT_RESTRICT y,
                     const int32_t *geo, int32_t x_zp,
                     const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                     int32_t shift, int32_t lo, int32_t hi, int16_t *panel);
void mt_matmul_s8_gemm(const int8_t *MT_RESTRICT a, const int8_t *MT_RESTRICT bpk, int8_t *MT_RESTRICT y,
                       int32_t batch, const int32_t *a_off, const int32_t *b_off,
                       int32_t m, int32_t k, int32_t n, int32_t a_zp, int32_t b_zp,
                       const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                       int32_t shift, int32_t lo, int32_t hi, int16_t *panel);
/* Multi-core (mt_parallel.h): this core's share of the outputs, `panel` this
 * core's own scratch; bit-identical to the calls above for any core count. */
void mt_conv_s8_gemm_par(const int8_t *MT_RESTRICT x, const int8_t *MT_RESTRICT wpk, int8_t *MT_RESTRICT y,
                         const int32_t *geo, int32_t x_zp,
                         const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                         int32_t shift, int32_t lo, int32_t hi, int16_t *panel, mt_par_t par);
void mt_matmul_s8_gemm_par(const int8_t *MT_RESTRICT a, const int8_t *MT_RESTRICT bpk, int8_t *MT_RESTRICT y,
                           int32_t batch, const int32_t *a_off, const int32_t *b_off,
                           int32_t m, int32_t k, int32_t n, int32_t a_zp, int32_t b_zp,
                           const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                           int32_t shift, int32_t lo, int32_t hi, int16_t *panel, mt_par_t par);

/* Depthwise 3x3, stride 1, dilation 1, 2-D (one channel per group;
 * runtime/mt_int8_dw.c), bit-identical to mt_conv_s8: `plane` is the op's
 * scratch, mt_s8_dw3x3_scratch_bytes(OH, OW) bytes, 4-byte aligned, for one
 * zero-padded input channel as int16. SMLAD on Cortex-M4/M7. */
size_t mt_s8_dw3x3_scratch_bytes(int32_t oh, int32_t ow);
void mt_conv_s8_dw3x3(const int8_t *MT_RESTRICT x, const int8_t *MT_RESTRICT w, int8_t *MT_RESTRICT y,
                      const int32_t *geo, int32_t x_zp,
                      const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                      int32_t shift, int32_t lo, int32_t hi, int16_t *plane);
void mt_conv_s8_dw3x3_par(const int8_t *MT_RESTRICT x, const int8_t *MT_RESTRICT w, int8_t *MT_RESTRICT y,
                          const int32_t *geo, int32_t x_zp,
                          const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                          int32_t shift, int32_t lo, int32_t hi, int16_t *plane, mt_par_t par);

/* op codes of mt_qbinary_s8 (keep in sync with ops/qeltwise.py) */
enum { MT_QADD = 0, MT_QMUL = 1 };

/* mt.QAdd / mt.QMul with broadcasting (element strides per output dim, 0 on
 * broadcast dims). QAdd: acc = (a-za)*m1 + (b-zb)*m2; QMul: acc = (a-za)*(b-zb)*m1;
 * y = clamp(floor((acc + add + 2^(shift-1)) / 2^shift), lo, hi). */
void mt_qbinary_s8(int32_t op, const int8_t *a, const int8_t *b, int8_t *y, int32_t ndim,
                   const int32_t *shape, const int32_t *a_strides, const int32_t *b_strides,
                   int32_t a_zp, int32_t b_zp, int32_t m1, int32_t m2, int64_t add,
                   int32_t shift, int32_t lo, int32_t hi);

/* mt.QMaxPool / mt.QAvgPool with the pool geometry table of mt_pool.h.
 * Avg: y = clamp(floor((2*acc*mul + den) / (2*den)) + y_zp, lo, hi),
 * acc = sum (x - x_zp) over taps inside the input, den = count << shift. */
void mt_maxpool_s8(const int8_t *MT_RESTRICT x, int8_t *MT_RESTRICT y, int32_t nc, const int32_t *geom);
void mt_avgpool_s8(const int8_t *MT_RESTRICT x, int8_t *MT_RESTRICT y, int32_t nc, const int32_t *geom,
                   int32_t count_include_pad, int32_t x_zp, int32_t y_zp, int32_t mul,
                   int32_t shift, int32_t lo, int32_t hi);

#endif
