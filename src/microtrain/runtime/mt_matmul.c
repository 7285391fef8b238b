/* Matrix-product kernels (fp32). Loops are ordered so the innermost one walks
 * memory contiguously: i-k-j (a row of y accumulated from rows of b) when b is
 * (K, N), and i-j-k (dot products of rows) when b is transposed. */
#include "mt_kernels.h"

/* y_row[0..n) = a_row . b  with a_row read at stride a_step, b (K, N). */
static void mt_row_times_matrix(const float *MT_RESTRICT a_row, int32_t a_step,
                                const float *MT_RESTRICT b, float *MT_RESTRICT y_row,
                                int32_t k, int32_t n)
{
  int32_t p, j;
  for (j = 0; j < n; j++) y_row[j] = 0.0f;
  for (p = 0; p < k; p++) {
    const float av = a_row[p * a_step];
    const float *b_row = b + p * n;
    for (j = 0; j < n; j++) y_row[j] += av * b_row[j];
  }
}

void mt_gemm_f32(const float *MT_RESTRICT a, const float *MT_RESTRICT b, const float *c,
                 float *MT_RESTRICT y, int32_t m, int32_t k, int32_t n, int32_t trans_a,
                 int32_t trans_b, float alpha, float beta, int32_t c_row, int32_t c_col)
{
  /* Element (i, p) of op(a) is a[i*a_i + p*a_p]. */
  const int32_t a_i = trans_a ? 1 : k, a_p = trans_a ? m : 1;
  int32_t i, j, p;
  for (i = 0; i < m; i++) {
    const float *a_row = a + i * a_i;
    float *y_row = y + i * n;
    if (trans_b) {
      for (j = 0; j < n; j++) {
        const float *b_row = b + j * k;
        float acc = 0.0f;
        for (p = 0; p < k; p++) acc += a_row[p * a_p] * b_row[p];
        y_row[j] = acc;
      }
    } else {
      mt_row_times_matrix(a_row, a_p, b, y_row, k, n);
    }
    if (c) {
      const float *c_row_ptr = c + i * c_row;
      for (j = 0; j < n; j++) y_row[j] = alpha * y_row[j] + beta * c_row_ptr[j * c_col];
    } else if (alpha != 1.0f) {
      for (j = 0; j < n; j++) y_row[j] *= alpha;
    }
  }
}

void mt_matmul_f32(const float *MT_RESTRICT a, const float *MT_RESTRICT b, float *MT_RESTRICT y,
                   int32_t batch, int32_t m, int32_t k, int32_t n,
                   const int32_t *a_offsets, const int32_t *b_offsets)
{
  int32_t q, i;
  for (q = 0; q < batch; q++) {
    const float *aq = a + a_offsets[q];
    const float *bq = b + b_offsets[q];
    float *yq = y + q * m * n;
    for (i = 0; i < m; i++) mt_row_times_matrix(aq + i * k, 1, bq, yq + i * n, k, n);
  }
}
