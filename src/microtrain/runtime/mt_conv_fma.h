/* microtrain kernels: fused multiply-add conv kernels for training steps.
 * Included through mt_kernels.h.
 *
 * Register-blocked 1-D/2-D kernels (table depth axis of 1) that accumulate
 * with fmaf(): one rounding per multiply-add instead of two, so they are NOT
 * bit-identical to the reference kernels (mt_conv_f32 & co.; they agree within
 * the float tolerance), but they are bit-identical across targets, because
 * fmaf is exactly specified by IEEE 754 (one instruction on cores with an
 * FMA unit: RV32F fmadd.s, Cortex-M4F/M7 vfma.f32; a libm call elsewhere).
 * Same geometry table as mt_conv_f32 (runtime/mt_conv.h). No scratch. */
#ifndef MT_CONV_FMA_H
#define MT_CONV_FMA_H

/* Forward conv, any groups, strides, dilations, pads; same arguments and
 * result (within rounding) as mt_conv_f32. 2 output channels x 8 output
 * pixels per register block; border columns (taps in the padding) apart. */
void mt_conv2d_f32_fwd_fma(const float *MT_RESTRICT x, const float *MT_RESTRICT w, const float *bias,
                           float *MT_RESTRICT y, const int32_t *geo);

/* Input gradient: the transposed conv of mt_conv_transpose_f32 for stride 1
 * on both axes (any groups, dilations, pads), computed as a gather
 * y[n,m,o] = bias[m] + sum_{c,k} x[n,c,o + pad - k*dil] * w[c,m',k] (no
 * scatter); same arguments as mt_conv_transpose_f32. */
void mt_conv2d_f32_bwd_input(const float *MT_RESTRICT x, const float *MT_RESTRICT w, const float *bias,
                             float *MT_RESTRICT y, const int32_t *geo);

/* Weight gradient, same arguments and result (within rounding) as
 * mt_conv_grad_weight_f32: 2 output channels x 8 kernel columns per register
 * block, summed over the batch and the output pixels. */
void mt_conv2d_f32_bwd_weight(const float *MT_RESTRICT x, const float *MT_RESTRICT dy,
                              float *MT_RESTRICT dw, const int32_t *geo);

#endif
