/* microtrain kernels: pool family. Included through mt_kernels.h. */
#ifndef MT_POOL_H
#define MT_POOL_H

/* Pooling geometry table shared by the pool kernels: 1-3 spatial dims padded
 * to 3 with leading size-1 dims, each entry 3 values (d, h, w):
 * in[3], out[3], kernel[3], stride[3], pad_begin[3], pad_end[3], dilation[3]. */
enum {
  MT_POOL_IN = 0, MT_POOL_OUT = 3, MT_POOL_KERNEL = 6, MT_POOL_STRIDE = 9,
  MT_POOL_PAD_BEGIN = 12, MT_POOL_PAD_END = 15, MT_POOL_DILATION = 18, MT_POOL_GEOM_LEN = 21
};

/* Max pooling of x (nc planes of in[0]*in[1]*in[2]) into y (nc planes of
 * out[...]); padding never wins. If `indices` is not NULL it receives the
 * flat input index of each maximum (row-major, or column-major over the
 * spatial dims when col_major != 0), as ONNX MaxPool's second output. */
void mt_maxpool_f32(const float *MT_RESTRICT x, float *MT_RESTRICT y, int64_t *indices,
                    int32_t nc, const int32_t *geom, int32_t col_major);

/* Average pooling with the same layout; the divisor counts the window
 * positions inside the input, or inside input + explicit padding when
 * count_include_pad != 0. */
void mt_avgpool_f32(const float *MT_RESTRICT x, float *MT_RESTRICT y, int32_t nc,
                    const int32_t *geom, int32_t count_include_pad);

/* Lp pooling with the same layout: y = (sum over the window's taps inside the
 * input of |x|^p)^(1/p); padding contributes nothing. */
void mt_lppool_f32(const float *MT_RESTRICT x, float *MT_RESTRICT y, int32_t nc,
                   const int32_t *geom, float p);

/* Backward of mt_maxpool_f32 (same layout), the argmax recomputed from x:
 * each dy goes to the first maximum of its window (as PyTorch), summed where
 * windows overlap; dx is fully written. */
void mt_maxpool_f32_bwd(const float *MT_RESTRICT dy, const float *MT_RESTRICT x,
                        float *MT_RESTRICT dx, int32_t nc, const int32_t *geom);

/* Backward of mt_avgpool_f32 (same layout and divisor): each dy / count is
 * added to the window's taps inside the input; dx is fully written. */
void mt_avgpool_f32_bwd(const float *MT_RESTRICT dy, float *MT_RESTRICT dx, int32_t nc,
                        const int32_t *geom, int32_t count_include_pad);

#endif
