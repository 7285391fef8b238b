/* microtrain kernels: conv family. Included through mt_kernels.h. */
#ifndef MT_CONV_H
#define MT_CONV_H

/* Layout of the int32 geometry table `geo` read by mt_conv_f32 and
 * mt_conv_transpose_f32 (ops/conv.py ConvGeometry.table). Spatial entries are
 * (D, H, W); 1-D and 2-D convolutions pass unit leading dims, 0 pad, stride 1. */
enum {
  MT_CONV_N = 0,        /* batch */
  MT_CONV_C = 1,        /* input channels */
  MT_CONV_M = 2,        /* output channels */
  MT_CONV_GROUP = 3,    /* groups: C and M are split into GROUP equal parts */
  MT_CONV_IN = 4,       /* input size, 3 entries */
  MT_CONV_OUT = 7,      /* output size, 3 entries */
  MT_CONV_K = 10,       /* kernel size, 3 entries */
  MT_CONV_STRIDE = 13,  /* strides, 3 entries */
  MT_CONV_DIL = 16,     /* dilations, 3 entries */
  MT_CONV_PAD = 19,     /* begin pads, 3 entries (end pads are implied by OUT) */
  MT_CONV_GEO_LEN = 22
};

/* Direct grouped convolution, NC(D)(H)W:
 * y[n,m,o] = bias[m] + sum_{c in group(m), k} x[n,c, o*stride - pad + k*dil] * w[m,c',k]
 * with x: (N,C,ID,IH,IW), w: (M, C/GROUP, KD,KH,KW), y: (N,M,OD,OH,OW);
 * taps outside the input read zero. bias may be NULL. y must not alias x or w. */
void mt_conv_f32(const float *MT_RESTRICT x, const float *MT_RESTRICT w, const float *bias,
                 float *MT_RESTRICT y, const int32_t *geo);

/* Grouped transposed convolution (the gradient of mt_conv_f32 w.r.t. its input):
 * y[n,m,i*stride - pad + k*dil] += x[n,c,i] * w[c,m',k] for c in group(m), plus bias[m];
 * x: (N,C,ID,IH,IW), w: (C, M/GROUP, KD,KH,KW), y: (N,M,OD,OH,OW); contributions
 * landing outside y are dropped. bias may be NULL. y must not alias x or w. */
void mt_conv_transpose_f32(const float *MT_RESTRICT x, const float *MT_RESTRICT w, const float *bias,
                           float *MT_RESTRICT y, const int32_t *geo);

/* Weight gradient of mt_conv_f32 (same geometry table):
 * dw[m,c',k] = sum_{n,o} dy[n,m,o] * x[n,c, o*stride - pad + k*dil] for c = group(m)'s c'-th
 * channel; x: (N,C,ID,IH,IW), dy: (N,M,OD,OH,OW), dw: (M, C/GROUP, KD,KH,KW). */
void mt_conv_grad_weight_f32(const float *MT_RESTRICT x, const float *MT_RESTRICT dy,
                             float *MT_RESTRICT dw, const int32_t *geo);

/* Fast paths for 1-D/2-D convs (table depth axis of 1), all bit-identical to
 * mt_conv_f32 (same sums in the same order) and with the same arguments:
 *
 * mt_conv2d_f32_fast: any groups, strides, dilations, pads; 4 output channels x
 * 4 output pixels accumulated in registers, padded border columns done apart
 * from the interior; specialized for 3-wide kernels with stride 1 or 2. */
void mt_conv2d_f32_fast(const float *MT_RESTRICT x, const float *MT_RESTRICT w, const float *bias,
                        float *MT_RESTRICT y, const int32_t *geo);

/* mt_dwconv2d_f32: depthwise (one input channel per group: C == GROUP, any
 * channel multiplier M/C); 4 output pixels in registers per channel. */
void mt_dwconv2d_f32(const float *MT_RESTRICT x, const float *MT_RESTRICT w, const float *bias,
                     float *MT_RESTRICT y, const int32_t *geo);

/* mt_conv_pointwise_f32: 1x1 kernel, stride 1, no pad, GROUP 1: per image
 * y (M, P) = bias + w (M, C) @ x (C, P) through mt_gemm_f32_strided;
 * panel: scratch of 4*C floats. */
void mt_conv_pointwise_f32(const float *MT_RESTRICT x, const float *MT_RESTRICT w, const float *bias,
                           float *MT_RESTRICT y, const int32_t *geo, float *MT_RESTRICT panel);

/* ---- multi-core variants (runtime/mt_parallel.h): same arguments plus the
 * core's mt_par_t; each core writes a disjoint slice of y, bit-identical to
 * one core. Slices: reference: (image, output channel) planes; fast: output
 * rows of (image, group, 4-channel block); depthwise: output rows of (image,
 * channel); pointwise: 4-pixel column blocks (panel: this core's own). */
void mt_conv_f32_par(const float *MT_RESTRICT x, const float *MT_RESTRICT w, const float *bias,
                     float *MT_RESTRICT y, const int32_t *geo, mt_par_t par);
void mt_conv2d_f32_fast_par(const float *MT_RESTRICT x, const float *MT_RESTRICT w, const float *bias,
                            float *MT_RESTRICT y, const int32_t *geo, mt_par_t par);
void mt_dwconv2d_f32_par(const float *MT_RESTRICT x, const float *MT_RESTRICT w, const float *bias,
                         float *MT_RESTRICT y, const int32_t *geo, mt_par_t par);
void mt_conv_pointwise_f32_par(const float *MT_RESTRICT x, const float *MT_RESTRICT w, const float *bias,
                               float *MT_RESTRICT y, const int32_t *geo, float *MT_RESTRICT panel,
                               mt_par_t par);

#endif
