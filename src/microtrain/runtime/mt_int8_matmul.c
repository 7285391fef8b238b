/* int8 matrix product with fused requantization. mt_matmul_s8 is the plain
 * reference loop; mt_matmul_s8_fast computes 4 output columns per pass over
 * the row of A (each (a - a_zp) loaded once for 4 MACs). Bit-identical. */
#include "mt_kernels.h"

void mt_matmul_s8(const int8_t *MT_RESTRICT a, const int8_t *MT_RESTRICT b, int8_t *MT_RESTRICT y,
                  int32_t batch, const int32_t *a_off, const int32_t *b_off,
                  int32_t m, int32_t k, int32_t n, int32_t a_zp, int32_t b_zp,
                  const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                  int32_t shift, int32_t lo, int32_t hi)
{
  int32_t bi, i, j, t;
  for (bi = 0; bi < batch; bi++) {
    const int8_t *ab = a + a_off[bi], *bb = b + b_off[bi];
    int8_t *yb = y + (size_t)bi * m * n;
    for (i = 0; i < m; i++) {
      const int8_t *row = ab + (size_t)i * k;
      for (j = 0; j < n; j++) {
        int32_t acc = 0;   /* |acc| <= K * 255 * 255 fits int32 for K < 33000 */
        for (t = 0; t < k; t++)
          acc += ((int32_t)row[t] - a_zp) * ((int32_t)bb[(size_t)t * n + j] - b_zp);
        yb[(size_t)i * n + j] = mt_requant1(acc, mul[nmul > 1 ? j : 0], add[nadd > 1 ? j : 0],
                                            shift, lo, hi);
      }
    }
  }
}

void mt_matmul_s8_fast(const int8_t *MT_RESTRICT a, const int8_t *MT_RESTRICT b, int8_t *MT_RESTRICT y,
                       int32_t batch, const int32_t *a_off, const int32_t *b_off,
                       int32_t m, int32_t k, int32_t n, int32_t a_zp, int32_t b_zp,
                       const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                       int32_t shift, int32_t lo, int32_t hi)
{
  int32_t bi, i, j, t;
  for (bi = 0; bi < batch; bi++) {
    const int8_t *ab = a + a_off[bi], *bb = b + b_off[bi];
    int8_t *yb = y + (size_t)bi * m * n;
    for (i = 0; i < m; i++) {
      const int8_t *row = ab + (size_t)i * k;
      int8_t *yr = yb + (size_t)i * n;
      for (j = 0; j + 4 <= n; j += 4) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        const int8_t *bc = bb + j;
        for (t = 0; t < k; t++, bc += n) {
          const int32_t av = (int32_t)row[t] - a_zp;
          a0 += av * ((int32_t)bc[0] - b_zp);
          a1 += av * ((int32_t)bc[1] - b_zp);
          a2 += av * ((int32_t)bc[2] - b_zp);
          a3 += av * ((int32_t)bc[3] - b_zp);
        }
        yr[j] = mt_requant1(a0, mul[nmul > 1 ? j : 0], add[nadd > 1 ? j : 0], shift, lo, hi);
        yr[j + 1] = mt_requant1(a1, mul[nmul > 1 ? j + 1 : 0], add[nadd > 1 ? j + 1 : 0], shift, lo, hi);
        yr[j + 2] = mt_requant1(a2, mul[nmul > 1 ? j + 2 : 0], add[nadd > 1 ? j + 2 : 0], shift, lo, hi);
        yr[j + 3] = mt_requant1(a3, mul[nmul > 1 ? j + 3 : 0], add[nadd > 1 ? j + 3 : 0], shift, lo, hi);
      }
      for (; j < n; j++) {
        int32_t acc = 0;
        for (t = 0; t < k; t++) acc += ((int32_t)row[t] - a_zp) * ((int32_t)bb[(size_t)t * n + j] - b_zp);
        yr[j] = mt_requant1(acc, mul[nmul > 1 ? j : 0], add[nadd > 1 ? j : 0], shift, lo, hi);
      }
    }
  }
}
