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
  mt_gemm_f32_par(a, b, c, y, m, k, n, trans_a, trans_b, alpha, beta, c_row, c_col, MT_PAR_SINGLE);
}

/* Work items: rows of y. */
void mt_gemm_f32_par(const float *MT_RESTRICT a, const float *MT_RESTRICT b, const float *c,
                     float *MT_RESTRICT y, int32_t m, int32_t k, int32_t n, int32_t trans_a,
                     int32_t trans_b, float alpha, float beta, int32_t c_row, int32_t c_col,
                     mt_par_t par)
{
  /* Element (i, p) of op(a) is a[i*a_i + p*a_p]. */
  const int32_t a_i = trans_a ? 1 : k, a_p = trans_a ? m : 1;
  int32_t i, j, p, i_lo, i_hi;
  mt_par_range(m, par, &i_lo, &i_hi);
  for (i = i_lo; i < i_hi; i++) {
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
  mt_matmul_f32_par(a, b, y, batch, m, k, n, a_offsets, b_offsets, MT_PAR_SINGLE);
}

/* Work items: rows of every batch matrix. */
void mt_matmul_f32_par(const float *MT_RESTRICT a, const float *MT_RESTRICT b, float *MT_RESTRICT y,
                       int32_t batch, int32_t m, int32_t k, int32_t n,
                       const int32_t *a_offsets, const int32_t *b_offsets, mt_par_t par)
{
  int32_t row, lo, hi;
  mt_par_range(batch * m, par, &lo, &hi);
  for (row = lo; row < hi; row++) {
    const int32_t q = row / m, i = row % m;
    mt_row_times_matrix(a + a_offsets[q] + i * k, 1, b + b_offsets[q], y + row * n, k, n);
  }
}

/* ---- register-blocked kernels ---------------------------------------------
 * One 4x4 micro-kernel: 16 accumulators live in registers while the inner loop
 * walks K, reading 4 values of A (one per row, through 4 pointers) and 4 of a
 * packed B panel (contiguous). Each output is summed over p = 0..K-1 in order,
 * exactly like the reference kernels, so the results are bit-identical. */

#define MT_GEMM_BLOCK MT_GEMM_COLS

/* panel[p*4 + q] = B(p, j0 + q) for q < cols, 0 beyond (so the micro-kernel
 * never needs a narrower variant). */
static void mt_pack_b_panel(const float *MT_RESTRICT b, int32_t b_p, int32_t b_j, int32_t j0,
                            int32_t cols, int32_t k, float *MT_RESTRICT panel)
{
  int32_t p, q;
  for (p = 0; p < k; p++) {
    const float *src = b + p * b_p + j0 * b_j;
    for (q = 0; q < cols; q++) panel[p * MT_GEMM_BLOCK + q] = src[q * b_j];
    for (; q < MT_GEMM_BLOCK; q++) panel[p * MT_GEMM_BLOCK + q] = 0.0f;
  }
}

/* y[r*ldy + q] = init[r] + sum_p a_r[p*a_p] * panel[p*4 + q] for r < rows,
 * q < cols; a_r of the missing rows repeat the last one (computed, not stored). */
static void mt_gemm_micro_4x4(const float *const *a_rows, int32_t a_p, const float *MT_RESTRICT panel,
                              int32_t k, const float *init, float *MT_RESTRICT y, int32_t ldy,
                              int32_t rows, int32_t cols)
{
  const float *a0 = a_rows[0], *a1 = a_rows[1], *a2 = a_rows[2], *a3 = a_rows[3];
  float c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33;
  int32_t p;
  c00 = c01 = c02 = c03 = init[0];
  c10 = c11 = c12 = c13 = init[1];
  c20 = c21 = c22 = c23 = init[2];
  c30 = c31 = c32 = c33 = init[3];
  for (p = 0; p < k; p++) {
    const float b0 = panel[0], b1 = panel[1], b2 = panel[2], b3 = panel[3];
    const float x0 = *a0, x1 = *a1, x2 = *a2, x3 = *a3;
    c00 += x0 * b0; c01 += x0 * b1; c02 += x0 * b2; c03 += x0 * b3;
    c10 += x1 * b0; c11 += x1 * b1; c12 += x1 * b2; c13 += x1 * b3;
    c20 += x2 * b0; c21 += x2 * b1; c22 += x2 * b2; c23 += x2 * b3;
    c30 += x3 * b0; c31 += x3 * b1; c32 += x3 * b2; c33 += x3 * b3;
    panel += MT_GEMM_BLOCK;
    a0 += a_p; a1 += a_p; a2 += a_p; a3 += a_p;
  }
  if (rows == 4 && cols == 4) {
    y[0] = c00; y[1] = c01; y[2] = c02; y[3] = c03; y += ldy;
    y[0] = c10; y[1] = c11; y[2] = c12; y[3] = c13; y += ldy;
    y[0] = c20; y[1] = c21; y[2] = c22; y[3] = c23; y += ldy;
    y[0] = c30; y[1] = c31; y[2] = c32; y[3] = c33;
  } else {
    const float acc[16] = {c00, c01, c02, c03, c10, c11, c12, c13,
                           c20, c21, c22, c23, c30, c31, c32, c33};
    int32_t r, q;
    for (r = 0; r < rows; r++)
      for (q = 0; q < cols; q++) y[r * ldy + q] = acc[r * MT_GEMM_BLOCK + q];
  }
}

void mt_gemm_f32_strided(const float *MT_RESTRICT a, int32_t a_i, int32_t a_p,
                         const float *MT_RESTRICT b, int32_t b_p, int32_t b_j, const float *init,
                         float *MT_RESTRICT y, int32_t m, int32_t k, int32_t n,
                         float *MT_RESTRICT panel)
{
  mt_gemm_f32_strided_cols(a, a_i, a_p, b, b_p, b_j, init, y, n, m, k, 0, n, panel);
}

void mt_gemm_f32_strided_cols(const float *MT_RESTRICT a, int32_t a_i, int32_t a_p,
                              const float *MT_RESTRICT b, int32_t b_p, int32_t b_j, const float *init,
                              float *MT_RESTRICT y, int32_t ldy, int32_t m, int32_t k,
                              int32_t j_lo, int32_t j_hi, float *MT_RESTRICT panel)
{
  int32_t i0, j0, r;
  for (j0 = j_lo; j0 < j_hi; j0 += MT_GEMM_BLOCK) {
    const int32_t cols = j_hi - j0 < MT_GEMM_BLOCK ? j_hi - j0 : MT_GEMM_BLOCK;
    mt_pack_b_panel(b, b_p, b_j, j0, cols, k, panel);
    for (i0 = 0; i0 < m; i0 += MT_GEMM_BLOCK) {
      const int32_t rows = m - i0 < MT_GEMM_BLOCK ? m - i0 : MT_GEMM_BLOCK;
      const float *a_rows[MT_GEMM_BLOCK];
      float init4[MT_GEMM_BLOCK];
      for (r = 0; r < MT_GEMM_BLOCK; r++) {
        const int32_t i = i0 + (r < rows ? r : rows - 1);
        a_rows[r] = a + i * a_i;
        init4[r] = init ? init[i] : 0.0f;
      }
      mt_gemm_micro_4x4(a_rows, a_p, panel, k, init4, y + i0 * ldy + j0, ldy, rows, cols);
    }
  }
}

void mt_gemm_f32_blocked(const float *MT_RESTRICT a, const float *MT_RESTRICT b, const float *c,
                         float *MT_RESTRICT y, int32_t m, int32_t k, int32_t n, int32_t trans_a,
                         int32_t trans_b, float alpha, float beta, int32_t c_row, int32_t c_col,
                         float *MT_RESTRICT panel)
{
  mt_gemm_f32_blocked_par(a, b, c, y, m, k, n, trans_a, trans_b, alpha, beta, c_row, c_col, panel,
                          MT_PAR_SINGLE);
}

/* Work items: blocks of 4 columns of y (each core packs its own B panels). */
void mt_gemm_f32_blocked_par(const float *MT_RESTRICT a, const float *MT_RESTRICT b, const float *c,
                             float *MT_RESTRICT y, int32_t m, int32_t k, int32_t n, int32_t trans_a,
                             int32_t trans_b, float alpha, float beta, int32_t c_row, int32_t c_col,
                             float *MT_RESTRICT panel, mt_par_t par)
{
  int32_t i, j, j_lo, j_hi;
  mt_par_range((n + MT_GEMM_BLOCK - 1) / MT_GEMM_BLOCK, par, &j_lo, &j_hi);
  j_lo *= MT_GEMM_BLOCK;
  j_hi = j_hi * MT_GEMM_BLOCK < n ? j_hi * MT_GEMM_BLOCK : n;
  mt_gemm_f32_strided_cols(a, trans_a ? 1 : k, trans_a ? m : 1, b, trans_b ? 1 : n, trans_b ? k : 1,
                           NULL, y, n, m, k, j_lo, j_hi, panel);
  /* Same epilogue (and rounding) as mt_gemm_f32, on this core's columns. */
  for (i = 0; i < m; i++) {
    float *y_row = y + i * n;
    if (c) {
      const float *c_row_ptr = c + i * c_row;
      for (j = j_lo; j < j_hi; j++) y_row[j] = alpha * y_row[j] + beta * c_row_ptr[j * c_col];
    } else if (alpha != 1.0f) {
      for (j = j_lo; j < j_hi; j++) y_row[j] *= alpha;
    }
  }
}

void mt_matmul_f32_blocked(const float *MT_RESTRICT a, const float *MT_RESTRICT b, float *MT_RESTRICT y,
                           int32_t batch, int32_t m, int32_t k, int32_t n,
                           const int32_t *a_offsets, const int32_t *b_offsets, float *MT_RESTRICT panel)
{
  mt_matmul_f32_blocked_par(a, b, y, batch, m, k, n, a_offsets, b_offsets, panel, MT_PAR_SINGLE);
}

/* Work items: blocks of 4 columns of every batch matrix. */
void mt_matmul_f32_blocked_par(const float *MT_RESTRICT a, const float *MT_RESTRICT b, float *MT_RESTRICT y,
                               int32_t batch, int32_t m, int32_t k, int32_t n,
                               const int32_t *a_offsets, const int32_t *b_offsets, float *MT_RESTRICT panel,
                               mt_par_t par)
{
  const int32_t blocks = (n + MT_GEMM_BLOCK - 1) / MT_GEMM_BLOCK;
  int32_t item, item_lo, item_hi;
  mt_par_range(batch * blocks, par, &item_lo, &item_hi);
  for (item = item_lo; item < item_hi;) {
    const int32_t q = item / blocks, first = item % blocks;
    const int32_t last = item_hi < (q + 1) * blocks ? item_hi - q * blocks : blocks;
    const int32_t j_hi = last * MT_GEMM_BLOCK < n ? last * MT_GEMM_BLOCK : n;
    mt_gemm_f32_strided_cols(a + a_offsets[q], k, 1, b + b_offsets[q], n, 1, NULL, y + q * m * n, n,
                             m, k, first * MT_GEMM_BLOCK, j_hi, panel);
    item = q * blocks + last;
  }
}
