/* microtrain kernels: the integer Softmax / GELU / LayerNorm nodes of the PULP
 * (QuantLib / Deeploy) ONNX convention, bit-exact with ops/pulp_*.py.
 * Rows are the last axis: x is (rows, n), dense. Included through mt_kernels.h. */
#ifndef MT_PULP_INT_H
#define MT_PULP_INT_H

/* ITAMax (group_width 0) / ITAPartialMax (groups of group_width, n % group_width == 0) */
void mt_pulp_itamax_i8(const int8_t *x, int8_t *y, int32_t rows, int32_t n, int32_t group_width,
                       int32_t n_levels);

/* iSoftmax: polynomial exp of x - max with log2 range reduction, normalized to n_levels */
void mt_pulp_isoftmax_i8(const int8_t *x, int8_t *y, int32_t rows, int32_t n, int32_t coeff_a,
                         int32_t coeff_b, int64_t coeff_c, int32_t log2, int32_t n_levels);

/* iGELU, int8 -> int32 (a RequantShift follows) */
void mt_pulp_igelu_i8(const int8_t *x, int32_t *y, int32_t count, int32_t b, int32_t one, int32_t x_offset);

/* iLayerNorm, int8 -> int8, integer weight/bias per channel, output >> log2d clipped to [lo, hi] */
void mt_pulp_ilayernorm_i8(const int8_t *x, int8_t *y, int32_t rows, int32_t n, const int32_t *weight,
                           const int32_t *bias, int32_t log2d, int32_t x_offset, int32_t lo, int32_t hi);

/* IntegerMean over adjacent axes (x is outer x length x inner); half up when half_up,
 * else half away from zero */
void mt_pulp_integer_mean_i8(const int8_t *x, int8_t *y, int32_t outer, int32_t length, int32_t inner,
                             int32_t half_up, int32_t x_offset, int32_t y_offset);

#endif
