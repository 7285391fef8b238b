/* Integer-only Transformer kernels. Signed right shifts are written as
 * floor divisions so the result does not depend on the compiler's choice
 * for negative operands (C99 leaves it implementation-defined). */
#include "mt_kernels.h"

/* floor(v / 2^s), 0 <= s <= 62 */
static int64_t mt_ia_floor_shift(int64_t v, int32_t s)
{
  if (v >= 0) return v >> s;
  return -(int64_t)((((uint64_t)-v) + (((uint64_t)1 << s) - 1)) >> s);
}

/* round-half-up(v / 2^s) */
static int64_t mt_ia_round_shift(int64_t v, int32_t s)
{
  return s > 0 ? mt_ia_floor_shift(v + ((int64_t)1 << (s - 1)), s) : v;
}

static int8_t mt_ia_clip_i8(int64_t v)
{
  return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
}

/* round-half-up(d / 32) for d >= 0, clamped at 31 */
static int32_t mt_ita_shift(int32_t d)
{
  int32_t s = (d + 16) >> 5;
  return s > 31 ? 31 : s;
}

/* int8 (u - 128) has the bits of u ^ 0x80 */
static uint8_t mt_probs_out(uint32_t u, int32_t to_signed)
{
  return (uint8_t)(to_signed ? (u ^ 0x80u) : u);
}

void mt_ita_softmax_i8(const int8_t *x, uint8_t *y, int32_t rows, int32_t n, int32_t to_signed)
{
  int32_t r, g, j;
  for (r = 0; r < rows; r++) {
    const int8_t *xr = x + (size_t)r * n;
    uint8_t *yr = y + (size_t)r * n;
    int32_t mx = -128;
    uint32_t sum = 0, inv;
    for (g = 0; g < n; g += 16) {
      int32_t end = g + 16 < n ? g + 16 : n, gmax = -128;
      for (j = g; j < end; j++) if (xr[j] > gmax) gmax = xr[j];
      if (gmax > mx) {
        sum >>= mt_ita_shift(gmax - mx);
        mx = gmax;
      }
      for (j = g; j < end; j++) sum += 256u >> mt_ita_shift(mx - xr[j]);
    }
    inv = 65280u / sum;   /* sum >= 256: the row max contributes 256 after its group */
    for (j = 0; j < n; j++) yr[j] = mt_probs_out(inv >> mt_ita_shift(mx - xr[j]), to_signed);
  }
}

/* I-BERT exp of d <= 0 at scale 0.3585 S^2 */
static int64_t mt_ibert_exp(int32_t d, int32_t q_ln2, int32_t q_b, int32_t q_c)
{
  int32_t z = (-d) / q_ln2;
  int64_t t = (int64_t)(d + z * q_ln2 + q_b);
  return (t * t + q_c) >> (z > 31 ? 31 : z);   /* non-negative: q_p + q_b > 0 */
}

void mt_ibert_softmax_i8(const int8_t *x, uint8_t *y, int32_t rows, int32_t n,
                         int32_t q_ln2, int32_t q_b, int32_t q_c, int32_t to_signed)
{
  int32_t r, j;
  for (r = 0; r < rows; r++) {
    const int8_t *xr = x + (size_t)r * n;
    uint8_t *yr = y + (size_t)r * n;
    int32_t mx = -128;
    uint64_t sum = 0, factor;
    for (j = 0; j < n; j++) if (xr[j] > mx) mx = xr[j];
    for (j = 0; j < n; j++) sum += (uint64_t)mt_ibert_exp(xr[j] - mx, q_ln2, q_b, q_c);
    factor = ((uint64_t)255 << 32) / sum;
    for (j = 0; j < n; j++)
      yr[j] = mt_probs_out((uint32_t)(((uint64_t)mt_ibert_exp(xr[j] - mx, q_ln2, q_b, q_c) * factor) >> 32),
                           to_signed);
  }
}

void mt_ibert_gelu_i8(const int8_t *x, int8_t *y, int32_t count, int32_t q_b, int32_t q_c,
                      int32_t q_one, int32_t mult, int32_t shift, int32_t zx, int32_t zy)
{
  int32_t i;
  for (i = 0; i < count; i++) {
    int32_t q = x[i] - zx, a = q < 0 ? -q : q;
    int64_t t, erf, acc;
    if (a > -q_b) a = -q_b;
    t = (int64_t)(a + q_b) * (a + q_b) + q_c;
    erf = q > 0 ? -t : q < 0 ? t : 0;
    acc = (int64_t)q * (erf + q_one);
    y[i] = mt_ia_clip_i8(mt_ia_round_shift(acc * mult, shift) + zy);
  }
}

/* floor(sqrt(v)) by Newton's iteration from 2^ceil(bits/2) (I-BERT) */
static int64_t mt_isqrt_newton(int64_t v)
{
  int32_t bits = 0;
  int64_t xk, next;
  if (v <= 0) return 0;
  while (bits < 63 && ((int64_t)1 << bits) <= v) bits++;
  xk = (int64_t)1 << ((bits + 1) / 2);
  for (;;) {
    next = (xk + v / xk) / 2;
    if (next >= xk) return xk;
    xk = next;
  }
}

void mt_ibert_layernorm_i8(const int8_t *x, int8_t *y, int32_t rows, int32_t n,
                           const int32_t *gain, const int64_t *bias, int64_t eps_q)
{
  int32_t r, j;
  for (r = 0; r < rows; r++) {
    const int8_t *xr = x + (size_t)r * n;
    int8_t *yr = y + (size_t)r * n;
    int64_t sum = 0, sq = 0, sd, inv;
    for (j = 0; j < n; j++) sum += xr[j];
    for (j = 0; j < n; j++) {
      int64_t c = (int64_t)n * xr[j] - sum;
      sq += c * c;
    }
    sd = mt_isqrt_newton(sq / n + eps_q);
    if (sd < 1) sd = 1;
    inv = ((int64_t)1 << 30) / sd;
    for (j = 0; j < n; j++) {
      int64_t c = (int64_t)n * xr[j] - sum;
      int64_t xh = mt_ia_floor_shift(c * inv, 30 - 10);
      yr[j] = mt_ia_clip_i8(mt_ia_round_shift(xh * gain[j] + bias[j], 10 + 12));
    }
  }
}
