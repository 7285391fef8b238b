/* int8 matrix product with fused requantization (plain C reference). */
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
