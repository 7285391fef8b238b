/* int8 pooling kernels (plain C), geometry table of mt_pool.h. */
#include "mt_kernels.h"

/* Taps [*lo, *hi) of output position o along `dim` whose input coordinate
 * start + k*dil lies in [limit_lo, limit_hi). */
static void mt_s8_taps(int32_t o, const int32_t *geom, int32_t dim, int32_t limit_lo, int32_t limit_hi,
                       int32_t *start, int32_t *lo, int32_t *hi)
{
  const int32_t k = geom[MT_POOL_KERNEL + dim], dil = geom[MT_POOL_DILATION + dim];
  const int32_t s = o * geom[MT_POOL_STRIDE + dim] - geom[MT_POOL_PAD_BEGIN + dim];
  int32_t a = 0, b = 0, t;
  for (t = 0; t < k && s + t * dil < limit_lo; t++) a = t + 1;
  for (t = 0; t < k; t++)
    if (s + t * dil < limit_hi) b = t + 1;
  if (a > b) a = b;
  *start = s; *lo = a; *hi = b;
}

static int64_t mt_floor_div(int64_t a, int64_t b)   /* b > 0 */
{
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

static void mt_pool_s8(int32_t is_avg, const int8_t *MT_RESTRICT x, int8_t *MT_RESTRICT y, int32_t nc,
                       const int32_t *geom, int32_t include_pad, int32_t x_zp, int32_t y_zp,
                       int32_t mul, int32_t shift, int32_t lo, int32_t hi)
{
  const int32_t *in = geom + MT_POOL_IN, *out = geom + MT_POOL_OUT, *dl = geom + MT_POOL_DILATION;
  const size_t plane = (size_t)in[0] * in[1] * in[2];
  int32_t c, o[3], s[3], a[3], b[3], k[3];
  for (c = 0; c < nc; c++) {
    const int8_t *xp = x + (size_t)c * plane;
    for (o[0] = 0; o[0] < out[0]; o[0]++)
      for (o[1] = 0; o[1] < out[1]; o[1]++)
        for (o[2] = 0; o[2] < out[2]; o[2]++) {
          int32_t d, best = -128;
          int64_t acc = 0, count = 1;
          for (d = 0; d < 3; d++) {
            mt_s8_taps(o[d], geom, d, 0, in[d], &s[d], &a[d], &b[d]);
            if (is_avg) {
              int32_t ps, pa, pb;
              if (include_pad)
                mt_s8_taps(o[d], geom, d, -geom[MT_POOL_PAD_BEGIN + d],
                           in[d] + geom[MT_POOL_PAD_END + d], &ps, &pa, &pb);
              else
                pa = a[d], pb = b[d];
              count *= pb - pa;
            }
          }
          for (k[0] = a[0]; k[0] < b[0]; k[0]++)
            for (k[1] = a[1]; k[1] < b[1]; k[1]++)
              for (k[2] = a[2]; k[2] < b[2]; k[2]++) {
                const int32_t v = xp[((size_t)(s[0] + k[0] * dl[0]) * in[1] + (s[1] + k[1] * dl[1])) * in[2]
                                     + (s[2] + k[2] * dl[2])];
                if (v > best) best = v;
                acc += v - x_zp;
              }
          if (is_avg) {
            const int64_t den = count << shift;   /* count 0: a window wholly in padding */
            int64_t v = count > 0 ? mt_floor_div(2 * acc * mul + den, 2 * den) + y_zp : y_zp;
            if (v < lo) v = lo;
            if (v > hi) v = hi;
            *y++ = (int8_t)v;
          } else {
            *y++ = (int8_t)best;
          }
        }
  }
}

void mt_maxpool_s8(const int8_t *MT_RESTRICT x, int8_t *MT_RESTRICT y, int32_t nc, const int32_t *geom)
{
  mt_pool_s8(0, x, y, nc, geom, 0, 0, 0, 1, 0, -128, 127);
}

void mt_avgpool_s8(const int8_t *MT_RESTRICT x, int8_t *MT_RESTRICT y, int32_t nc, const int32_t *geom,
                   int32_t count_include_pad, int32_t x_zp, int32_t y_zp, int32_t mul,
                   int32_t shift, int32_t lo, int32_t hi)
{
  mt_pool_s8(1, x, y, nc, geom, count_include_pad, x_zp, y_zp, mul, shift, lo, hi);
}
