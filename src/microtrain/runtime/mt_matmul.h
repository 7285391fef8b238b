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

/* Register-blocked product (4x4 accumulators, B packed 4 columns at a time):
 * y (M, N) row-major = init[i] + sum_p A(i,p) * B(p,j) with A(i,p) = a[i*a_i + p*a_p]
 * and B(p,j) = b[p*b_p + j*b_j]; init (per row, e.g. a conv bias) may be NULL.
 * panel: scratch of 4*K floats. Sums in p order, so bit-identical to the
 * reference kernels. y must not alias a, b or panel. */
void mt_gemm_f32_strided(const float *MT_RESTRICT a, int32_t a_i, int32_t a_p,
                         const float *MT_RESTRICT b, int32_t b_p, int32_t b_j, const float *init,
                         float *MT_RESTRICT y, int32_t m, int32_t k, int32_t n,
                         float *MT_RESTRICT panel);

/* mt_gemm_f32 through mt_gemm_f32_strided; panel: scratch of 4*K floats. */
void mt_gemm_f32_blocked(const float *MT_RESTRICT a, const float *MT_RESTRICT b, const float *c,
                         float *MT_RESTRICT y, int32_t m, int32_t k, int32_t n, int32_t trans_a,
                         int32_t trans_b, float alpha, float beta, int32_t c_row, int32_t c_col,
                         float *MT_RESTRICT panel);

/* mt_matmul_f32 through mt_gemm_f32_strided; panel: scratch of 4*K floats. */
void mt_matmul_f32_blocked(const float *MT_RESTRICT a, const float *MT_RESTRICT b, float *MT_RESTRICT y,
                           int32_t batch, int32_t m, int32_t k, int32_t n,
                           const int32_t *a_offsets, const int32_t *b_offsets, float *MT_RESTRICT panel);

/* ---- multi-core variants (runtime/mt_parallel.h): same arguments plus the
 * core's mt_par_t; each core writes a disjoint slice of y (reference: rows;
 * blocked: blocks of MT_GEMM_COLS columns), bit-identical to one core. The
 * blocked ones need a panel per core (4*K floats each). */
#define MT_GEMM_COLS 4

void mt_gemm_f32_par(const float *MT_RESTRICT a, const float *MT_RESTRICT b, const float *c,
                     float *MT_RESTRICT y, int32_t m, int32_t k, int32_t n, int32_t trans_a,
                     int32_t trans_b, float alpha, float beta, int32_t c_row, int32_t c_col,
                     mt_par_t par);
void mt_matmul_f32_par(const float *MT_RESTRICT a, const float *MT_RESTRICT b, float *MT_RESTRICT y,
                       int32_t batch, int32_t m, int32_t k, int32_t n,
                       const int32_t *a_offsets, const int32_t *b_offsets, mt_par_t par);
void mt_gemm_f32_blocked_par(const float *MT_RESTRICT a, const float *MT_RESTRICT b, const float *c,
                             float *MT_RESTRICT y, int32_t m, int32_t k, int32_t n, int32_t trans_a,
                             int32_t trans_b, float alpha, float beta, int32_t c_row, int32_t c_col,
                             float *MT_RESTRICT panel, mt_par_t par);
void mt_matmul_f32_blocked_par(const float *MT_RESTRICT a, const float *MT_RESTRICT b, float *MT_RESTRICT y,
                               int32_t batch, int32_t m, int32_t k, int32_t n,
                               const int32_t *a_offsets, const int32_t *b_offsets, float *MT_RESTRICT panel,
                               mt_par_t par);

/* Columns [j_lo, j_hi) of mt_gemm_f32_strided's product, y with row stride
 * ldy; j_lo a multiple of MT_GEMM_COLS. */
void mt_gemm_f32_strided_cols(const float *MT_RESTRICT a, int32_t a_i, int32_t a_p,
                              const float *MT_RESTRICT b, int32_t b_p, int32_t b_j, const float *init,
                              float *MT_RESTRICT y, int32_t ldy, int32_t m, int32_t k,
                              int32_t j_lo, int32_t j_hi, float *MT_RESTRICT panel);

#endif
