/* int8 element-wise kernels: requantization and QAdd/QMul (plain C). */
#include "mt_kernels.h"

#define MT_REQUANT_LOOP(x)                                                        \
  do {                                                                            \
    int32_t o, c, i;                                                              \
    for (o = 0; o < outer; o++)                                                   \
      for (c = 0; c < channels; c++) {                                            \
        const int32_t mc = mul[nmul > 1 ? c : 0];                                 \
        const int64_t ac = add[nadd > 1 ? c : 0];                                 \
        const size_t base = ((size_t)o * channels + c) * inner;                   \
        for (i = 0; i < inner; i++)                                               \
          y[base + i] = mt_requant1((int64_t)(x)[base + i], mc, ac, shift, lo, hi); \
      }                                                                           \
  } while (0)

void mt_requant_s32_s8(const int32_t *x, int8_t *y, int32_t outer, int32_t channels, int32_t inner,
                       const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                       int32_t shift, int32_t lo, int32_t hi)
{
  MT_REQUANT_LOOP(x);
}

void mt_requant_s8_s8(const int8_t *x, int8_t *y, int32_t outer, int32_t channels, int32_t inner,
                      const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                      int32_t shift, int32_t lo, int32_t hi)
{
  MT_REQUANT_LOOP(x);
}

void mt_qbinary_s8(int32_t op, const int8_t *a, const int8_t *b, int8_t *y, int32_t ndim,
                   const int32_t *shape, const int32_t *a_strides, const int32_t *b_strides,
                   int32_t a_zp, int32_t b_zp, int32_t m1, int32_t m2, int64_t add,
                   int32_t shift, int32_t lo, int32_t hi)
{
  int32_t idx[MT_MAX_RANK] = {0};
  size_t total = 1, e;
  int32_t d;
  for (d = 0; d < ndim; d++) total *= (size_t)shape[d];
  for (e = 0; e < total; e++) {
    size_t ia = 0, ib = 0;
    int64_t va, vb, acc;
    for (d = 0; d < ndim; d++) {
      ia += (size_t)idx[d] * a_strides[d];
      ib += (size_t)idx[d] * b_strides[d];
    }
    va = (int64_t)a[ia] - a_zp;
    vb = (int64_t)b[ib] - b_zp;
    acc = op == MT_QADD ? va * m1 + vb * m2 : va * vb * m1;
    y[e] = mt_requant1(acc, 1, add, shift, lo, hi);
    for (d = ndim - 1; d >= 0; d--) {   /* odometer over the output index */
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}
