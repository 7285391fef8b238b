/* microtrain kernels: element-wise family. Included through mt_kernels.h. */
#ifndef MT_ELTWISE_H
#define MT_ELTWISE_H

/* op codes of mt_binary_f32 (keep in sync with ops/binary.py) */
enum { MT_ADD = 0, MT_SUB = 1, MT_MUL = 2, MT_DIV = 3, MT_POW = 4 };

/* y = a (op) b with numpy broadcasting. `shape` is the output shape (ndim
 * entries); a_strides/b_strides are element strides of a and b viewed as the
 * output shape (0 on broadcast axes). y may alias a when shapes are equal. */
void mt_binary_f32(int32_t op, const float *a, const float *b, float *y, int32_t ndim,
                   const int32_t *shape, const int32_t *a_strides, const int32_t *b_strides);

/* op codes of mt_unary_f32 (keep in sync with ops/unary.py) */
enum {
  MT_SQRT = 0, MT_EXP = 1, MT_ERF = 2, MT_RELU = 3, MT_LEAKY_RELU = 4, MT_CLIP = 5,
  MT_SIGMOID = 6, MT_TANH = 7, MT_HARD_SIGMOID = 8, MT_HARD_SWISH = 9, MT_ELU = 10,
  MT_GELU = 11, MT_GELU_TANH = 12, MT_NEG = 13, MT_ABS = 14, MT_RECIPROCAL = 15,
  MT_LOG = 16, MT_SOFTPLUS = 17
};

/* y[i] = f(x[i]) for n elements; alpha/beta are the op's parameters
 * (LeakyRelu/Elu alpha, HardSigmoid alpha/beta, Clip min/max). y may alias x. */
void mt_unary_f32(int32_t op, const float *x, float *y, int32_t n, float alpha, float beta);

/* Backward of mt_unary_f32: dx[i] = dy[i] * f'(x[i]), from the forward input x
 * and/or output y (either may be NULL when the rule does not need it).
 * Clip passes its gradient where alpha <= x <= beta (torch.clamp). dx may alias dy. */
void mt_unary_grad_f32(int32_t op, const float *dy, const float *x, const float *y, float *dx,
                       int32_t n, float alpha, float beta);

#endif
