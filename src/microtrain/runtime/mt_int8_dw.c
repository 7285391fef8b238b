/* Depthwise 3x3 int8 convolution, stride 1, dilation 1, 2-D (mt.QConv with
 * one input and one output channel per group), bit-identical to mt_conv_s8
 * (the same int32 sums, the same requantization). Per channel the input
 * plane minus x_zp, with its zero padding, is written once as int16 into the
 * op's scratch (mt_s8_dw3x3_scratch_bytes; rows OH + 2 of mt_s8_dw_row(OW)
 * values, so every output's 3x3 window lies inside it and no tap is
 * bounds-tested), then each output row is computed 4 pixels at a time.
 * DSP (Cortex-M4/M7): per kernel row, 3 word loads (pixel pairs) and 8
 * SMLAD / SMLABT / SMLATB against the weight pairs (w0, w1), (w1, w2) give
 * the 12 MACs of 4 outputs; requantization in 32-bit pieces
 * (mt_int8_dsp.h). Other cores: the same loops in plain C. */
#include "mt_kernels.h"
#include "mt_int8_dsp.h"
#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#endif

/* values per plane row: OW rounded up to 4 (whole blocks of 4 outputs) + 2
 * (the window's right columns); even, so rows stay word-aligned */
static inline int32_t mt_s8_dw_row(int32_t ow)
{
  return ((ow + 3) & ~3) + 2;
}

size_t mt_s8_dw3x3_scratch_bytes(int32_t oh, int32_t ow)
{
  return (size_t)(oh + 2) * (size_t)mt_s8_dw_row(ow) * sizeof(int16_t);
}

/* plane[r][j] = x[r - pt][j - pl] - zp inside the input, else 0 */
static void mt_s8_dw_plane(const int8_t *x, int32_t ih_n, int32_t iw_n, int32_t pt, int32_t pl, int32_t rows,
                           int32_t pw, int32_t zp, int16_t *plane)
{
  int32_t r, j;
  for (r = 0; r < rows; r++, plane += pw) {
    const int32_t ih = r - pt, j0 = pl < pw ? pl : pw, j1 = pl + iw_n < pw ? pl + iw_n : pw;
    const int8_t *xr;
    if (ih < 0 || ih >= ih_n) {
      memset(plane, 0, (size_t)pw * sizeof(int16_t));
      continue;
    }
    xr = x + (size_t)ih * iw_n;
    for (j = 0; j < j0; j++) plane[j] = 0;
    for (; j < j1; j++) plane[j] = (int16_t)(xr[j - pl] - zp);
    for (; j < pw; j++) plane[j] = 0;
  }
}

#if defined(__ARM_FEATURE_DSP)
static inline uint32_t mt_s8_pair(int8_t lo, int8_t hi)
{
  return (uint32_t)(uint16_t)lo | (uint32_t)(uint16_t)hi << 16;
}

/* one kernel row (plane row p, weight pairs w01, w12) into the 4 outputs */
#define MT_S8_DW_TAPS(p, w01, w12)              \
  do {                                          \
    uint32_t A, B, C;                           \
    memcpy(&A, (p), 4);                         \
    memcpy(&B, (p) + 2, 4);                     \
    memcpy(&C, (p) + 4, 4);                     \
    a0 = __smlad(A, w01, a0);   /* x0 w0 + x1 w1 */ \
    a0 = __smlabt(B, w12, a0);  /* x2 w2 */     \
    a1 = __smlatb(A, w01, a1);  /* x1 w0 */     \
    a1 = __smlad(B, w12, a1);   /* x2 w1 + x3 w2 */ \
    a2 = __smlad(B, w01, a2);                   \
    a2 = __smlabt(C, w12, a2);                  \
    a3 = __smlatb(B, w01, a3);                  \
    a3 = __smlad(C, w12, a3);                   \
  } while (0)

/* all output rows of one channel; mode / full constant after inlining */
__attribute__((always_inline)) static inline void mt_s8_dw_rows(const int16_t *plane, int32_t pw, const int8_t *w,
                                                                int8_t *y, int32_t oh_n, int32_t ow_n, int32_t mc,
                                                                int64_t ar, int32_t shift, int32_t lo, int32_t hi,
                                                                const int mode, const int full)
{
  const uint32_t w01a = mt_s8_pair(w[0], w[1]), w12a = mt_s8_pair(w[1], w[2]);
  const uint32_t w01b = mt_s8_pair(w[3], w[4]), w12b = mt_s8_pair(w[4], w[5]);
  const uint32_t w01c = mt_s8_pair(w[6], w[7]), w12c = mt_s8_pair(w[7], w[8]);
  int32_t oh, ow, i;
  for (oh = 0; oh < oh_n; oh++, y += ow_n) {
    const int16_t *p = plane + (size_t)oh * pw;
    for (ow = 0; ow < ow_n; ow += 4) {
      int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      MT_S8_DW_TAPS(p + ow, w01a, w12a);
      MT_S8_DW_TAPS(p + pw + ow, w01b, w12b);
      MT_S8_DW_TAPS(p + 2 * pw + ow, w01c, w12c);
      if (ow + 4 <= ow_n) {
        y[ow] = (int8_t)mt_s8_rq32(a0, mc, ar, shift, lo, hi, mode, full);
        y[ow + 1] = (int8_t)mt_s8_rq32(a1, mc, ar, shift, lo, hi, mode, full);
        y[ow + 2] = (int8_t)mt_s8_rq32(a2, mc, ar, shift, lo, hi, mode, full);
        y[ow + 3] = (int8_t)mt_s8_rq32(a3, mc, ar, shift, lo, hi, mode, full);
      } else {   /* the row's last, partial block */
        const int32_t acc[4] = {a0, a1, a2, a3};
        for (i = 0; ow + i < ow_n; i++) y[ow + i] = (int8_t)mt_s8_rq32(acc[i], mc, ar, shift, lo, hi, mode, full);
      }
    }
  }
}
#undef MT_S8_DW_TAPS
#endif

/* one channel: its padded plane, 3x3 weights w, output plane y */
static void mt_s8_dw_channel(const int16_t *plane, int32_t pw, const int8_t *w, int8_t *y, int32_t oh_n,
                             int32_t ow_n, int32_t mc, int64_t ac, int32_t shift, int32_t lo, int32_t hi)
{
#if defined(__ARM_FEATURE_DSP)
  const int64_t ar = ac + (shift > 0 ? (int64_t)1 << (shift - 1) : 0);
  const int full = lo == -128 && hi == 127;
  if (shift >= 32 && full) mt_s8_dw_rows(plane, pw, w, y, oh_n, ow_n, mc, ar, shift, lo, hi, 2, 1);
  else if (shift >= 32) mt_s8_dw_rows(plane, pw, w, y, oh_n, ow_n, mc, ar, shift, lo, hi, 2, 0);
  else if (shift > 0 && full) mt_s8_dw_rows(plane, pw, w, y, oh_n, ow_n, mc, ar, shift, lo, hi, 1, 1);
  else if (shift > 0) mt_s8_dw_rows(plane, pw, w, y, oh_n, ow_n, mc, ar, shift, lo, hi, 1, 0);
  else mt_s8_dw_rows(plane, pw, w, y, oh_n, ow_n, mc, ar, shift, lo, hi, 0, 0);
#else
  /* the 9 weights in registers, the window's rows unrolled */
  const int32_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6], w7 = w[7], w8 = w[8];
  int32_t oh, ow;
  for (oh = 0; oh < oh_n; oh++, y += ow_n) {
    const int16_t *p0 = plane + (size_t)oh * pw, *p1 = p0 + pw, *p2 = p1 + pw;
    for (ow = 0; ow < ow_n; ow++) {
      const int32_t acc = p0[ow] * w0 + p0[ow + 1] * w1 + p0[ow + 2] * w2 + p1[ow] * w3 + p1[ow + 1] * w4 +
                          p1[ow + 2] * w5 + p2[ow] * w6 + p2[ow + 1] * w7 + p2[ow + 2] * w8;
      y[ow] = mt_requant1(acc, mc, ac, shift, lo, hi);
    }
  }
#endif
}

void mt_conv_s8_dw3x3(const int8_t *MT_RESTRICT x, const int8_t *MT_RESTRICT w, int8_t *MT_RESTRICT y,
                      const int32_t *geo, int32_t x_zp,
                      const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                      int32_t shift, int32_t lo, int32_t hi, int16_t *plane)
{
  mt_conv_s8_dw3x3_par(x, w, y, geo, x_zp, mul, nmul, add, nadd, shift, lo, hi, plane, MT_PAR_SINGLE);
}

/* Work items: the (image, channel) planes; each core does a contiguous run
 * of them with its own padded `plane`. */
void mt_conv_s8_dw3x3_par(const int8_t *MT_RESTRICT x, const int8_t *MT_RESTRICT w, int8_t *MT_RESTRICT y,
                          const int32_t *geo, int32_t x_zp,
                          const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                          int32_t shift, int32_t lo, int32_t hi, int16_t *plane, mt_par_t par)
{
  const int32_t N = geo[MT_CONV_N], C = geo[MT_CONV_C];
  const int32_t IH = geo[MT_CONV_IN + 1], IW = geo[MT_CONV_IN + 2];
  const int32_t OH = geo[MT_CONV_OUT + 1], OW = geo[MT_CONV_OUT + 2];
  const int32_t PT = geo[MT_CONV_PAD + 1], PL = geo[MT_CONV_PAD + 2], pw = mt_s8_dw_row(OW);
  int32_t item, item_lo, item_hi;
  mt_par_range(N * C, par, &item_lo, &item_hi);
  for (item = item_lo; item < item_hi; item++) {
    const int32_t c = item % C;
    const size_t ch = (size_t)item;   /* image * C + channel */
    mt_s8_dw_plane(x + ch * IH * IW, IH, IW, PT, PL, OH + 2, pw, x_zp, plane);
    mt_s8_dw_channel(plane, pw, w + (size_t)c * 9, y + ch * OH * OW, OH, OW, mul[nmul > 1 ? c : 0],
                     add[nadd > 1 ? c : 0], shift, lo, hi);
  }
}
