/* Sliding-window int8 convolution core for kernel width 3, stride 1 and
 * dilation 1 along W (runtime/mt_int8_slide.c), used by mt_conv_s8_gemm on
 * rv32im (no DSP extension): 2 output channels x 8 consecutive output pixels
 * per call, the 3 kw taps of a (tap row, input channel) applied to 10 band
 * values kept in a register each. Same int32 sums as the GEMM path. */
#ifndef MT_INT8_SLIDE_H
#define MT_INT8_SLIDE_H

#include <stddef.h>
#include <stdint.h>

#if defined(__riscv) && __riscv_xlen == 32 && defined(__riscv_mul) && !defined(__ARM_FEATURE_DSP)
#define MT_S8_SLIDE 1
#endif

/* Band of one block of 8 output pixels: for each tap row t (kd, kh) and
 * input channel ic the 10 input columns ow0 - pad .. ow0 - pad + 9 as int16
 * x - x_zp (0 outside the input), at
 *   band[t * cg * 10 + (ic / 4) * 40 + j * 4 + ic % 4]
 * so that 4 channels' columns are side by side. Bytes: 20 * rows * cg. */
#define MT_S8_SLIDE_COLS 8
#define MT_S8_SLIDE_BAND(rows, cg) ((size_t)(rows) * (size_t)(cg) * 10)

/* One tap row of the band (band + t * cg * 10): `row` points at channel 0
 * of that input row (channels `plane` bytes apart), or is NULL for a row in
 * the padding; columns iw0 .. iw0 + 9, of which j in [j_lo, j_hi) lie inside
 * the input (iw0 + j_lo >= 0). */
void mt_s8_slide_band_row(int16_t *band, const int8_t *row, int32_t cg, size_t plane,
                          int32_t iw0, int32_t j_lo, int32_t j_hi, int32_t x_zp);

#if defined(MT_S8_SLIDE)
/* acc[r * 8 + c] = sum over tap rows t, kw, ic of w(row r, t, kw, ic) * band(t, ic, c + kw)
 * for the row pair at `w` (s8_rows_layout, ops/_quant.py: row 0 at byte 0,
 * row 1 at byte 4 of each 16-byte group; reduction order (t, kw, ic)).
 * cg: a multiple of 4; rows >= 1. Assembly (runtime/mt_int8_slide.c). */
void mt_s8_slide_kernel(const int16_t *band, const int8_t *w, int32_t cg, int32_t rows, int32_t acc[16]);
#endif

#endif
