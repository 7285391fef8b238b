/* PULP-convention integer nodes (ITAMax, ITAPartialMax, iSoftmax, iGELU,
 * iLayerNorm). Integer only; the Python op modules state the rules and the
 * import checks the ranges that keep these int64 sums equal to Deeploy's
 * int32 ones. Signed shifts and divisions are written so that C99's
 * implementation-defined cases do not arise. */
#include "mt_kernels.h"

/* round half up of d / 32 for d >= 0 */
static int32_t mt_pulp_shift(int32_t d) { return (d + 16) >> 5; }

static int64_t mt_pulp_floor_shift(int64_t v, int32_t s)
{
  if (v >= 0) return v >> s;
  return -(int64_t)((((uint64_t)-v) + (((uint64_t)1 << s) - 1)) >> s);
}

void mt_pulp_itamax_i8(const int8_t *x, int8_t *y, int32_t rows, int32_t n, int32_t group_width,
                       int32_t n_levels)
{
  int32_t r, j, g;
  for (r = 0; r < rows; r++) {
    const int8_t *xr = x + (size_t)r * n;
    int8_t *yr = y + (size_t)r * n;
    int32_t mx = -128;
    uint32_t sum = 0, inv;
    if (group_width == 0) {
      for (j = 0; j < n; j++) if (xr[j] > mx) mx = xr[j];
      for (j = 0; j < n; j++) sum += 256u >> mt_pulp_shift(mx - xr[j]);
      inv = (uint32_t)(n_levels - 1) * 256u / sum;
    } else {
      for (g = 0; g < n; g += group_width) {
        int32_t gmax = -128;
        for (j = g; j < g + group_width; j++) if (xr[j] > gmax) gmax = xr[j];
        if (gmax > mx) {
          sum >>= mt_pulp_shift(gmax - mx);
          mx = gmax;
        }
        for (j = g; j < g + group_width; j++) sum += 256u >> mt_pulp_shift(mx - xr[j]);
      }
      inv = (uint32_t)(n_levels / 2 - 1) * 256u / sum;
    }
    for (j = 0; j < n; j++) yr[j] = (int8_t)((int32_t)(inv >> mt_pulp_shift(mx - xr[j])) - n_levels / 2);
  }
}

/* e(d) for d = max - x >= 0 */
static uint32_t mt_pulp_iexp(int32_t d, int32_t a, int32_t b, int64_t c, int32_t log2)
{
  int32_t z = d / log2, p;
  int64_t t;
  if (z > 31) z = 31;
  p = -d + z * log2 + b;
  t = (int64_t)a * p * p + c;   /* >= 0: checked by the import */
  return (uint32_t)(t >> z);
}

void mt_pulp_isoftmax_i8(const int8_t *x, int8_t *y, int32_t rows, int32_t n, int32_t coeff_a,
                         int32_t coeff_b, int64_t coeff_c, int32_t log2, int32_t n_levels)
{
  int32_t r, j;
  for (r = 0; r < rows; r++) {
    const int8_t *xr = x + (size_t)r * n;
    int8_t *yr = y + (size_t)r * n;
    int32_t mx = -128;
    uint32_t sum = 0;   /* the import checked: n * max e and max e * (n_levels - 1) fit uint32 */
    for (j = 0; j < n; j++) if (xr[j] > mx) mx = xr[j];
    for (j = 0; j < n; j++) sum += mt_pulp_iexp(mx - xr[j], coeff_a, coeff_b, coeff_c, log2);
    for (j = 0; j < n; j++) {
      uint32_t e = mt_pulp_iexp(mx - xr[j], coeff_a, coeff_b, coeff_c, log2);
      yr[j] = (int8_t)((int32_t)(e * (uint32_t)(n_levels - 1) / sum) - n_levels / 2);
    }
  }
}

void mt_pulp_igelu_i8(const int8_t *x, int32_t *y, int32_t count, int32_t b, int32_t one, int32_t x_offset)
{
  int32_t i;
  for (i = 0; i < count; i++) {
    int64_t v = (int64_t)x[i] + x_offset;
    int64_t sign = (v > 0) - (v < 0);
    int64_t q = (v < 0 ? -v : v) > -b ? -b : (v < 0 ? -v : v);
    int64_t ell = sign * (one - (q + b) * (q + b));
    y[i] = (int32_t)(v * mt_pulp_floor_shift(one + ell, 1));
  }
}

/* floor(sqrt(v)), digit by digit */
static uint32_t mt_pulp_isqrt(uint32_t v)
{
  uint32_t root = 0, bit = (uint32_t)1 << 30;
  while (bit > v) bit >>= 2;
  while (bit) {
    if (v >= root + bit) {
      v -= root + bit;
      root = (root >> 1) + bit;
    } else {
      root >>= 1;
    }
    bit >>= 2;
  }
  return root;
}

/* C99 division truncates toward zero, as Deeploy's kernel relies on; int32
 * division where the product fits (no 64-bit division call on 32-bit cores) */
void mt_pulp_ilayernorm_i8(const int8_t *x, int8_t *y, int32_t rows, int32_t n, const int32_t *weight,
                           const int32_t *bias, int32_t log2d, int32_t x_offset, int32_t lo, int32_t hi)
{
  int32_t r, j;
  for (r = 0; r < rows; r++) {
    const int8_t *xr = x + (size_t)r * n;
    int8_t *yr = y + (size_t)r * n;
    int64_t total = 0, sq = 0, mean;
    int32_t std;
    for (j = 0; j < n; j++) total += (int64_t)xr[j] + x_offset;
    mean = total / n;
    for (j = 0; j < n; j++) {
      int64_t c = (int64_t)xr[j] + x_offset - mean;
      sq += c * c;
    }
    std = (int32_t)mt_pulp_isqrt((uint32_t)(sq / n + 1));   /* sq / n <= 255^2 for int8 rows */
    for (j = 0; j < n; j++) {
      int64_t c = (int64_t)xr[j] + x_offset - mean, p = c * weight[j];
      int64_t q = (p >= INT32_MIN && p <= INT32_MAX) ? (int64_t)((int32_t)p / std) : p / std;
      int64_t v = mt_pulp_floor_shift(q + bias[j], log2d);
      yr[j] = (int8_t)(v < lo ? lo : v > hi ? hi : v);
    }
  }
}

void mt_pulp_integer_mean_i8(const int8_t *x, int8_t *y, int32_t outer, int32_t length, int32_t inner,
                             int32_t half_up, int32_t x_offset, int32_t y_offset)
{
  int32_t o, r, i;
  for (o = 0; o < outer; o++) {
    for (i = 0; i < inner; i++) {
      const int8_t *xp = x + (size_t)o * length * inner + i;
      int32_t acc = x_offset * length, mean;
      for (r = 0; r < length; r++) acc += xp[(size_t)r * inner];
      if (half_up) {
        int32_t t = acc + length / 2;    /* floor division by a power of two */
        mean = t >= 0 ? t / length : -((-t + length - 1) / length);
      } else {
        mean = (acc + (acc >= 0 ? 1 : -1) * (length / 2)) / length;
      }
      y[(size_t)o * inner + i] = (int8_t)(mean - y_offset);
    }
  }
}
