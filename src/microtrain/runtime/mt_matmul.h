/* microtrain kernels: matmul family. Included through mt_kernels.h. */
#ifndef MT_MATMUL_H
#define MT_MATMUL_H

/* Gemm: y = alpha * op(a) @ op(b) + beta * c, y (M, N) row-major.
 * op(a) is (M, K): a is (M, K), or (K, M) when trans_a; op(b) is (K, N): b is
 * (K, N), or (N, K) when trans_b. c (may be NULL) is read as c[i*c_row + j*c_col],
 * so strides of 0 broadcast a scalar, a row or a column. y must not alias a, b or c. */
void mt_gemm_f32(const float *MT_RESTRICT a, const float *MT_RESTRICT b, const float *c,
                 float *MT_RESTRICT y, int32_t m, int32_t k, int32_t n, int32_t trans_a,
                 int32_t trans_b, float alpha, float beta, int32_t c_row, int32_t c_col);

/* Batched matmul: for each p < batch, y[p] (M, N) = a[a_offsets[p]...] (M, K) @
 * b[b_offsets[p]...] (K, N), all row-major; the offset tables (in elements)
 * express any broadcasting of the batch dims. y is dense (batch, M, N) and must
 * not alias a or b. */
void mt_matmul_f32(const float *MT_RESTRICT a, const float *MT_RESTRICT b, float *MT_RESTRICT y,
                   int32_t batch, int32_t m, int32_t k, int32_t n,
                   const int32_t *a_offsets, const int32_t *b_offsets);

#endif
