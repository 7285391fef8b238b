/* Fused multiply-add conv kernels for training steps (see mt_conv_fma.h).
 *
 * The forward conv and the stride-1 transposed conv are one computation, a
 * correlation: y[n,m,oh,ow] = init[m] + sum_{c, kh, kw} w(m,c,kh,kw) *
 * x[n,c, oh*sh + kh*th + offh, ow*sw + kw*tw + offw], taps outside x skipped.
 * The conv has t = dilation, off = -pad; the transposed conv (as a gather)
 * s = 1, t = -dilation, off = +pad. Output rows are split into the interior
 * columns (every kernel column inside x: 2 channels x 8 pixels in 16 register
 * accumulators, 8 taps unrolled so the shared x loads are fetched once) and
 * the border columns (one pixel at a time with the tap range clipped). */
#include <math.h>
#include "mt_kernels.h"

#if defined(__GNUC__)
#define MT_INLINE static inline __attribute__((always_inline))
#else
#define MT_INLINE static inline
#endif

static int32_t mt_floor_div_i(int32_t a, int32_t b)  /* b > 0 */
{
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* Taps k in [0, count) with 0 <= pos + k*step < limit, as [*lo, *hi); step != 0. */
static void mt_taps_inside(int32_t count, int32_t pos, int32_t step, int32_t limit, int32_t *lo, int32_t *hi)
{
  int32_t a, b;
  if (step > 0) {
    a = -mt_floor_div_i(pos, step);
    b = mt_floor_div_i(limit - 1 - pos, step) + 1;
  } else {
    a = mt_floor_div_i(pos - limit, -step) + 1;
    b = mt_floor_div_i(pos, -step) + 1;
  }
  if (a < 0) a = 0;
  if (b > count) b = count;
  if (b < a) b = a;
  *lo = a;
  *hi = b;
}

/* The correlation above, one group's worth of strides. */
typedef struct {
  int32_t n, xc, yc, xg, yg;            /* batch; x / y channels; x / y channels per group */
  int32_t group;
  int32_t ih, iw, oh, ow, kh, kw;
  int32_t sh, sw, th, tw, offh, offw;
  int32_t w_y, w_x, kvol;               /* weight strides: next y channel / next x channel of a group */
} mt_corr;

/* Geometry-table fields read here (layout in mt_conv.h; the depth axis is 1). */
static void mt_corr_sizes(mt_corr *g, const int32_t *geo)
{
  g->n = geo[MT_CONV_N];
  g->xc = geo[MT_CONV_C];
  g->yc = geo[MT_CONV_M];
  g->group = geo[MT_CONV_GROUP];
  g->ih = geo[MT_CONV_IN + 1];
  g->iw = geo[MT_CONV_IN + 2];
  g->oh = geo[MT_CONV_OUT + 1];
  g->ow = geo[MT_CONV_OUT + 2];
  g->kh = geo[MT_CONV_K + 1];
  g->kw = geo[MT_CONV_K + 2];
  g->kvol = g->kh * g->kw;
  g->xg = g->xc / g->group;
  g->yg = g->yc / g->group;
}

/* a_rj += u_r * v_j for a 2x8 register block. */
#define MT_FMA_2X8(u0, u1, v0, v1, v2, v3, v4, v5, v6, v7)                                          \
  a00 = fmaf(u0, v0, a00); a01 = fmaf(u0, v1, a01); a02 = fmaf(u0, v2, a02); a03 = fmaf(u0, v3, a03); \
  a04 = fmaf(u0, v4, a04); a05 = fmaf(u0, v5, a05); a06 = fmaf(u0, v6, a06); a07 = fmaf(u0, v7, a07); \
  a10 = fmaf(u1, v0, a10); a11 = fmaf(u1, v1, a11); a12 = fmaf(u1, v2, a12); a13 = fmaf(u1, v3, a13); \
  a14 = fmaf(u1, v4, a14); a15 = fmaf(u1, v5, a15); a16 = fmaf(u1, v6, a16); a17 = fmaf(u1, v7, a17)

#define MT_DECLARE_2X8 float a00, a01, a02, a03, a04, a05, a06, a07, a10, a11, a12, a13, a14, a15, a16, a17

/* ---- correlation (forward conv, stride-1 transposed conv) ------------------- */

/* One kernel tap k (a constant offset after unrolling) of the 2x8 block. */
#define MT_CORR_TAP(k)                                                                           \
  {                                                                                              \
    const float u0 = w0[k], u1 = w1[k];                                                          \
    const float v0 = xp[(k) * t], v1 = xp[s + (k) * t], v2 = xp[2 * s + (k) * t], v3 = xp[3 * s + (k) * t]; \
    const float v4 = xp[4 * s + (k) * t], v5 = xp[5 * s + (k) * t], v6 = xp[6 * s + (k) * t], v7 = xp[7 * s + (k) * t]; \
    MT_FMA_2X8(u0, u1, v0, v1, v2, v3, v4, v5, v6, v7);                                         \
  }

/* 2 y channels (weights wr[0..1], y rows yr[0..1]) x 8 pixels from column o,
 * kernel columns [kwl, kwh) (all inside x for these pixels). x0 points at channel 0 of the group, row of
 * kernel row 0 (may be outside x; only rows [khl, khh) are read), column o's
 * tap 0. s, t are literals at the fast call sites so the taps become fixed
 * offsets and the loads shared by neighbouring taps are fetched once. */
MT_INLINE void mt_corr_block(const mt_corr *g, const float *x0, const float *const *wr, int32_t khl,
                             int32_t khh, int32_t kwl, int32_t kwh, const float *init, float *const *yr,
                             int32_t o, const int32_t s, const int32_t t)
{
  const int32_t in_plane = g->ih * g->iw, row_step = g->th * g->iw, kw = g->kw;
  int32_t c, kh, k;
  MT_DECLARE_2X8;
  a00 = a01 = a02 = a03 = a04 = a05 = a06 = a07 = init[0];
  a10 = a11 = a12 = a13 = a14 = a15 = a16 = a17 = init[1];
  for (c = 0; c < g->xg; c++) {
    for (kh = khl; kh < khh; kh++) {
      const float *xp = x0 + c * in_plane + kh * row_step + kwl * t;
      const int32_t wo = c * g->w_x + kh * kw + kwl;
      const float *w0 = wr[0] + wo, *w1 = wr[1] + wo;
      for (k = kwl; k + 8 <= kwh; k += 8) {
        MT_CORR_TAP(0) MT_CORR_TAP(1) MT_CORR_TAP(2) MT_CORR_TAP(3)
        MT_CORR_TAP(4) MT_CORR_TAP(5) MT_CORR_TAP(6) MT_CORR_TAP(7)
        xp += 8 * t;
        w0 += 8; w1 += 8;
      }
      for (; k < kwh; k++) {
        MT_CORR_TAP(0)
        xp += t;
        w0++; w1++;
      }
    }
  }
  yr[0][o] = a00; yr[0][o + 1] = a01; yr[0][o + 2] = a02; yr[0][o + 3] = a03;
  yr[0][o + 4] = a04; yr[0][o + 5] = a05; yr[0][o + 6] = a06; yr[0][o + 7] = a07;
  yr[1][o] = a10; yr[1][o + 1] = a11; yr[1][o + 2] = a12; yr[1][o + 3] = a13;
  yr[1][o + 4] = a14; yr[1][o + 5] = a15; yr[1][o + 6] = a16; yr[1][o + 7] = a17;
}

/* One pixel o of `rows` (1 or 2) y channels, kernel columns [kwl, kwh),
 * starting from init, or from y itself when init is NULL. */
static void mt_corr_pixel(const mt_corr *g, const float *x0, const float *const *wr, int32_t rows,
                          int32_t khl, int32_t khh, int32_t kwl, int32_t kwh, const float *init,
                          float *const *yr, int32_t o)
{
  const int32_t in_plane = g->ih * g->iw, row_step = g->th * g->iw, kw = g->kw, tw = g->tw;
  float a[2] = {0.0f, 0.0f};
  int32_t c, kh, k, r;
  if (kwl >= kwh && !init) return;
  for (r = 0; r < rows; r++) a[r] = init ? init[r] : yr[r][o];
  for (c = 0; c < g->xg; c++) {
    for (kh = khl; kh < khh; kh++) {
      const float *xp = x0 + c * in_plane + kh * row_step + o * g->sw;
      const int32_t wo = c * g->w_x + kh * kw;
      if (rows == 2) {
        const float *w0 = wr[0] + wo, *w1 = wr[1] + wo;
        float b0 = a[0], b1 = a[1];
        for (k = kwl; k < kwh; k++) {
          const float v = xp[k * tw];
          b0 = fmaf(w0[k], v, b0);
          b1 = fmaf(w1[k], v, b1);
        }
        a[0] = b0; a[1] = b1;
      } else {
        for (r = 0; r < rows; r++) {
          const float *wp = wr[r] + wo;
          float b = a[r];
          for (k = kwl; k < kwh; k++) b = fmaf(wp[k], xp[k * tw], b);
          a[r] = b;
        }
      }
    }
  }
  for (r = 0; r < rows; r++) yr[r][o] = a[r];
}

/* One y channel (weights wp, y row yr) x 8 pixels from column o, kernel
 * columns [kwl, kwh); for a channel without a pair in a row of 8 to 15 pixels. */
MT_INLINE void mt_corr_block8(const mt_corr *g, const float *x0, const float *wp, int32_t khl, int32_t khh,
                              int32_t kwl, int32_t kwh, float init, float *yr, int32_t o, const int32_t s,
                              const int32_t t)
{
  const int32_t in_plane = g->ih * g->iw, row_step = g->th * g->iw, kw = g->kw;
  int32_t c, kh, k;
  float a0, a1, a2, a3, a4, a5, a6, a7;
  a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = init;
  for (c = 0; c < g->xg; c++) {
    for (kh = khl; kh < khh; kh++) {
      const float *xp = x0 + c * in_plane + kh * row_step + kwl * t;
      const float *w0 = wp + c * g->w_x + kh * kw;
      for (k = kwl; k < kwh; k++) {
        const float u = w0[k];
        a0 = fmaf(u, xp[0], a0);
        a1 = fmaf(u, xp[s], a1);
        a2 = fmaf(u, xp[2 * s], a2);
        a3 = fmaf(u, xp[3 * s], a3);
        a4 = fmaf(u, xp[4 * s], a4);
        a5 = fmaf(u, xp[5 * s], a5);
        a6 = fmaf(u, xp[6 * s], a6);
        a7 = fmaf(u, xp[7 * s], a7);
        xp += t;
      }
    }
  }
  yr[o] = a0; yr[o + 1] = a1; yr[o + 2] = a2; yr[o + 3] = a3;
  yr[o + 4] = a4; yr[o + 5] = a5; yr[o + 6] = a6; yr[o + 7] = a7;
}

/* One kernel tap k (a constant offset after unrolling) of the 1x16 block. */
#define MT_CORR_TAP16(k)                                                                         \
  {                                                                                              \
    const float u = w0[k];                                                                       \
    a0 = fmaf(u, xp[(k) * t], a0); a1 = fmaf(u, xp[s + (k) * t], a1);                            \
    a2 = fmaf(u, xp[2 * s + (k) * t], a2); a3 = fmaf(u, xp[3 * s + (k) * t], a3);                \
    a4 = fmaf(u, xp[4 * s + (k) * t], a4); a5 = fmaf(u, xp[5 * s + (k) * t], a5);                \
    a6 = fmaf(u, xp[6 * s + (k) * t], a6); a7 = fmaf(u, xp[7 * s + (k) * t], a7);                \
    a8 = fmaf(u, xp[8 * s + (k) * t], a8); a9 = fmaf(u, xp[9 * s + (k) * t], a9);                \
    a10 = fmaf(u, xp[10 * s + (k) * t], a10); a11 = fmaf(u, xp[11 * s + (k) * t], a11);          \
    a12 = fmaf(u, xp[12 * s + (k) * t], a12); a13 = fmaf(u, xp[13 * s + (k) * t], a13);          \
    a14 = fmaf(u, xp[14 * s + (k) * t], a14); a15 = fmaf(u, xp[15 * s + (k) * t], a15);          \
  }

/* One y channel x 16 pixels from column o (a channel without a pair in a row
 * of at least 16 pixels: depthwise layers), 4 taps unrolled. */
MT_INLINE void mt_corr_block16(const mt_corr *g, const float *x0, const float *wp, int32_t khl, int32_t khh,
                               int32_t kwl, int32_t kwh, float init, float *yr, int32_t o, const int32_t s,
                               const int32_t t)
{
  const int32_t in_plane = g->ih * g->iw, row_step = g->th * g->iw, kw = g->kw;
  int32_t c, kh, k;
  float a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15;
  a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = a10 = a11 = a12 = a13 = a14 = a15 = init;
  for (c = 0; c < g->xg; c++) {
    for (kh = khl; kh < khh; kh++) {
      const float *xp = x0 + c * in_plane + kh * row_step + kwl * t;
      const float *w0 = wp + c * g->w_x + kh * kw + kwl;
      for (k = kwl; k + 4 <= kwh; k += 4) {
        MT_CORR_TAP16(0) MT_CORR_TAP16(1) MT_CORR_TAP16(2) MT_CORR_TAP16(3)
        xp += 4 * t;
        w0 += 4;
      }
      for (; k < kwh; k++) {
        MT_CORR_TAP16(0)
        xp += t;
        w0++;
      }
    }
  }
  yr[o] = a0; yr[o + 1] = a1; yr[o + 2] = a2; yr[o + 3] = a3;
  yr[o + 4] = a4; yr[o + 5] = a5; yr[o + 6] = a6; yr[o + 7] = a7;
  yr[o + 8] = a8; yr[o + 9] = a9; yr[o + 10] = a10; yr[o + 11] = a11;
  yr[o + 12] = a12; yr[o + 13] = a13; yr[o + 14] = a14; yr[o + 15] = a15;
}

/* `count` blocks of 8 pixels from column o, kernel columns [kwl, kwh), of a
 * channel pair: s and t as literals for the common cases (conv stride 1
 * dilation 1; its transposed conv), one call per row to keep call overhead
 * out of the blocks. */
static void mt_corr_pair_blocks(const mt_corr *g, const float *x0, const float *const *wr, int32_t khl,
                                int32_t khh, int32_t kwl, int32_t kwh, const float *init, float *const *yr,
                                int32_t o, int32_t count)
{
  const int32_t end = o + 8 * count;
  if (g->sw == 1 && g->tw == 1) {
    for (; o < end; o += 8) mt_corr_block(g, x0 + o, wr, khl, khh, kwl, kwh, init, yr, o, 1, 1);
  } else if (g->sw == 1 && g->tw == -1) {
    for (; o < end; o += 8) mt_corr_block(g, x0 + o, wr, khl, khh, kwl, kwh, init, yr, o, 1, -1);
  } else {
    for (; o < end; o += 8)
      mt_corr_block(g, x0 + o * g->sw, wr, khl, khh, kwl, kwh, init, yr, o, g->sw, g->tw);
  }
}

/* The same for one channel (a channel left without a pair): blocks of 8. */
static void mt_corr_single_blocks(const mt_corr *g, const float *x0, const float *wp, int32_t khl, int32_t khh,
                                  int32_t kwl, int32_t kwh, float init, float *yr, int32_t o, int32_t count)
{
  const int32_t end = o + 8 * count;
  if (g->sw == 1) {
    for (; o < end; o += 8) mt_corr_block8(g, x0 + o, wp, khl, khh, kwl, kwh, init, yr, o, 1, g->tw);
  } else {
    for (; o < end; o += 8)
      mt_corr_block8(g, x0 + o * g->sw, wp, khl, khh, kwl, kwh, init, yr, o, g->sw, g->tw);
  }
}

/* ... and blocks of 16. */
static void mt_corr_single16_blocks(const mt_corr *g, const float *x0, const float *wp, int32_t khl,
                                    int32_t khh, int32_t kwl, int32_t kwh, float init, float *yr, int32_t o,
                                    int32_t count)
{
  const int32_t end = o + 16 * count;
  if (g->sw == 1 && g->tw == 1) {
    for (; o < end; o += 16) mt_corr_block16(g, x0 + o, wp, khl, khh, kwl, kwh, init, yr, o, 1, 1);
  } else if (g->sw == 1 && g->tw == -1) {
    for (; o < end; o += 16) mt_corr_block16(g, x0 + o, wp, khl, khh, kwl, kwh, init, yr, o, 1, -1);
  } else {
    for (; o < end; o += 16)
      mt_corr_block16(g, x0 + o * g->sw, wp, khl, khh, kwl, kwh, init, yr, o, g->sw, g->tw);
  }
}

/* `count` blocks of `width` pixels (8 for a pair, 8 or 16 for one channel). */
static void mt_corr_blocks(const mt_corr *g, const float *x0, const float *const *wr, int32_t pair,
                           int32_t width, int32_t khl, int32_t khh, int32_t kwl, int32_t kwh, const float *init,
                           float *const *yr, int32_t o, int32_t count)
{
  if (pair)
    mt_corr_pair_blocks(g, x0, wr, khl, khh, kwl, kwh, init, yr, o, count);
  else if (width == 16)
    mt_corr_single16_blocks(g, x0, wr[0], khl, khh, kwl, kwh, init[0], yr[0], o, count);
  else
    mt_corr_single_blocks(g, x0, wr[0], khl, khh, kwl, kwh, init[0], yr[0], o, count);
}

/* A block of `width` pixels at column o with some kernel columns outside x:
 * the columns inside x for all its pixels run blocked, then each pixel adds its
 * own other columns. */
static void mt_corr_border_block(const mt_corr *g, const float *x0, const float *const *wr, int32_t pair,
                                 int32_t width, int32_t khl, int32_t khh, const float *init, float *const *yr,
                                 int32_t o)
{
  int32_t lo[16], hi[16], j, cl = 0, ch = g->kw;
  for (j = 0; j < width; j++) {
    mt_taps_inside(g->kw, (o + j) * g->sw + g->offw, g->tw, g->iw, &lo[j], &hi[j]);
    if (lo[j] > cl) cl = lo[j];
    if (hi[j] < ch) ch = hi[j];
  }
  if (ch < cl) ch = cl;
  mt_corr_blocks(g, x0, wr, pair, width, khl, khh, cl, ch, init, yr, o, 1);
  for (j = 0; j < width; j++) {
    mt_corr_pixel(g, x0, wr, 1 + pair, khl, khh, lo[j], hi[j] < cl ? hi[j] : cl, NULL, yr, o + j);
    mt_corr_pixel(g, x0, wr, 1 + pair, khl, khh, ch > lo[j] ? ch : lo[j], hi[j], NULL, yr, o + j);
  }
}

/* Border pixel o: kernel columns clipped to x. */
static void mt_corr_border(const mt_corr *g, const float *x0, const float *const *wr, int32_t rows,
                           int32_t khl, int32_t khh, const float *init, float *const *yr, int32_t o)
{
  int32_t kwl, kwh;
  mt_taps_inside(g->kw, o * g->sw + g->offw, g->tw, g->iw, &kwl, &kwh);
  mt_corr_pixel(g, x0, wr, rows, khl, khh, kwl, kwh, init, yr, o);
}

/* Output row oh of y channels [m0, m0 + rows) of group gr, image n; [lo, hi)
 * the interior columns (every kernel column inside x). */
static void mt_corr_row(const mt_corr *g, const float *x, const float *w, const float *bias, float *y,
                        int32_t n, int32_t gr, int32_t m0, int32_t rows, int32_t oh, int32_t lo, int32_t hi)
{
  const float *wr[4];
  float *yr[4];
  float init[4];
  int32_t r, khl, khh, o;
  const int32_t pos_h = oh * g->sh + g->offh;
  /* row of kernel row 0 (kernel rows outside x are never read) */
  const float *x0 = x + (n * g->xc + gr * g->xg) * g->ih * g->iw + pos_h * g->iw + g->offw;
  mt_taps_inside(g->kh, pos_h, g->th, g->ih, &khl, &khh);
  for (r = 0; r < 4; r++) {
    const int32_t mr = m0 + (r < rows ? r : 0), m = gr * g->yg + mr;
    wr[r] = w + gr * g->xg * g->yg * g->kvol + mr * g->w_y;
    yr[r] = y + (n * g->yc + m) * g->oh * g->ow + oh * g->ow;
    init[r] = bias ? bias[m] : 0.0f;
  }
  for (r = 0; r < rows; r += 2) {
    const int32_t pair = rows - r >= 2;
    const float *const *wp = wr + r;
    float *const *yp = yr + r;
    const int32_t bw = pair || g->ow < 16 ? 8 : 16;   /* block width */
    if (g->ow < bw) {
      for (o = 0; o < g->ow; o++) mt_corr_border(g, x0, wp, 1 + pair, khl, khh, init + r, yp, o);
      continue;
    }
    /* blocks of bw from column 0; the last one is moved back to end at the
     * row's end, recomputing a few pixels (the same values) */
    o = 0;
    for (; o < lo && o < g->ow; o += bw)
      mt_corr_border_block(g, x0, wp, pair, bw, khl, khh, init + r, yp, o + bw <= g->ow ? o : g->ow - bw);
    if (o + bw <= hi) {
      const int32_t count = (hi - o) / bw;
      mt_corr_blocks(g, x0, wp, pair, bw, khl, khh, 0, g->kw, init + r, yp, o, count);
      o += bw * count;
    }
    for (; o < g->ow; o += bw) {
      const int32_t ob = o + bw <= g->ow ? o : g->ow - bw;
      if (ob >= lo && ob + bw <= hi)
        mt_corr_blocks(g, x0, wp, pair, bw, khl, khh, 0, g->kw, init + r, yp, ob, 1);
      else
        mt_corr_border_block(g, x0, wp, pair, bw, khl, khh, init + r, yp, ob);
    }
  }
}

static void mt_corr_run(const mt_corr *g, const float *x, const float *w, const float *bias, float *y)
{
  int32_t n, gr, m0, oh, lo, hi;
  /* interior columns: every tap of the row inside x */
  const int32_t span = (g->kw - 1) * (g->tw < 0 ? -g->tw : g->tw);
  const int32_t low = g->offw + (g->tw < 0 ? (g->kw - 1) * g->tw : 0);
  mt_taps_inside(g->ow, low, g->sw, g->iw - span, &lo, &hi);
  for (n = 0; n < g->n; n++) {
    for (gr = 0; gr < g->group; gr++) {
      for (m0 = 0; m0 < g->yg; m0 += 4) {
        const int32_t rows = g->yg - m0 < 4 ? g->yg - m0 : 4;
        for (oh = 0; oh < g->oh; oh++) mt_corr_row(g, x, w, bias, y, n, gr, m0, rows, oh, lo, hi);
      }
    }
  }
}

void mt_conv2d_f32_fwd_fma(const float *MT_RESTRICT x, const float *MT_RESTRICT w, const float *bias,
                           float *MT_RESTRICT y, const int32_t *geo)
{
  mt_corr g;
  mt_corr_sizes(&g, geo);
  g.sh = geo[MT_CONV_STRIDE + 1];
  g.sw = geo[MT_CONV_STRIDE + 2];
  g.th = geo[MT_CONV_DIL + 1];
  g.tw = geo[MT_CONV_DIL + 2];
  g.offh = -geo[MT_CONV_PAD + 1];
  g.offw = -geo[MT_CONV_PAD + 2];
  g.w_y = g.xg * g.kvol;    /* w: (M, C/group, KH, KW) */
  g.w_x = g.kvol;
  mt_corr_run(&g, x, w, bias, y);
}

void mt_conv2d_f32_bwd_input(const float *MT_RESTRICT x, const float *MT_RESTRICT w, const float *bias,
                             float *MT_RESTRICT y, const int32_t *geo)
{
  mt_corr g;
  mt_corr_sizes(&g, geo);
  g.sh = 1;                 /* strides are 1 (the caller checks) */
  g.sw = 1;
  g.th = -geo[MT_CONV_DIL + 1];
  g.tw = -geo[MT_CONV_DIL + 2];
  g.offh = geo[MT_CONV_PAD + 1];
  g.offw = geo[MT_CONV_PAD + 2];
  g.w_y = g.kvol;           /* w: (C, M/group, KH, KW) */
  g.w_x = g.yg * g.kvol;
  mt_corr_run(&g, x, w, bias, y);
}

/* ---- weight gradient --------------------------------------------------------
 * dw[m,c,kh,kw] = sum_{n,oh,ow} dy[n,m,oh,ow] * x[n,c, oh*sh + kh*dh - ph, ow*sw + kw*dw - pw].
 * Block: 2 output channels (dy rows) x 8 kernel columns in 16 accumulators;
 * over one output row, the pixels where all 8 columns are inside x run 8 at a
 * time (the x loads shared by neighbouring pixels fetched once), the others (the border of each column) one at a time. */

#define MT_WT 8   /* kernel columns per block */

/* One output pixel j (a constant offset after unrolling) of the 2x8 block. */
#define MT_GRADW_PIX(j)                                                                          \
  {                                                                                              \
    const float u0 = d0[j], u1 = d1[j];                                                          \
    const float v0 = xp[(j) * s], v1 = xp[(j) * s + t], v2 = xp[(j) * s + 2 * t], v3 = xp[(j) * s + 3 * t]; \
    const float v4 = xp[(j) * s + 4 * t], v5 = xp[(j) * s + 5 * t], v6 = xp[(j) * s + 6 * t], v7 = xp[(j) * s + 7 * t]; \
    MT_FMA_2X8(u0, u1, v0, v1, v2, v3, v4, v5, v6, v7);                                         \
  }

/* acc (2x8, row-major by channel) += over pixels [lo, hi) of one row; dr[r]
 * the dy rows, xrow the x row at pixel 0's first tap of the block. */
MT_INLINE void mt_gradw_block(float *acc, const float *const *dr, const float *xrow, int32_t lo, int32_t hi,
                              const int32_t s, const int32_t t)
{
  const float *d0 = dr[0] + lo, *d1 = dr[1] + lo;
  const float *xp = xrow + lo * s;
  int32_t o;
  MT_DECLARE_2X8;
  a00 = acc[0]; a01 = acc[1]; a02 = acc[2]; a03 = acc[3];
  a04 = acc[4]; a05 = acc[5]; a06 = acc[6]; a07 = acc[7];
  a10 = acc[8]; a11 = acc[9]; a12 = acc[10]; a13 = acc[11];
  a14 = acc[12]; a15 = acc[13]; a16 = acc[14]; a17 = acc[15];
  for (o = lo; o + 8 <= hi; o += 8) {
    MT_GRADW_PIX(0) MT_GRADW_PIX(1) MT_GRADW_PIX(2) MT_GRADW_PIX(3)
    MT_GRADW_PIX(4) MT_GRADW_PIX(5) MT_GRADW_PIX(6) MT_GRADW_PIX(7)
    d0 += 8; d1 += 8;
    xp += 8 * s;
  }
  for (; o < hi; o++) {
    MT_GRADW_PIX(0)
    d0++; d1++;
    xp += s;
  }
  acc[0] = a00; acc[1] = a01; acc[2] = a02; acc[3] = a03;
  acc[4] = a04; acc[5] = a05; acc[6] = a06; acc[7] = a07;
  acc[8] = a10; acc[9] = a11; acc[10] = a12; acc[11] = a13;
  acc[12] = a14; acc[13] = a15; acc[14] = a16; acc[15] = a17;
}

/* acc[r*MT_WT + tap] += over pixels [lo, hi) for `rows` channels and one tap
 * (x row at pixel 0 of that tap). */
static void mt_gradw_tap(float *acc, const float *const *dr, int32_t rows, const float *xtap, int32_t lo,
                         int32_t hi, int32_t s)
{
  int32_t r, o;
  for (r = 0; r < rows; r++) {
    const float *d = dr[r];
    float a = acc[r * MT_WT];
    o = lo;
    if (s == 1) {
      for (; o + 4 <= hi; o += 4) {
        a = fmaf(d[o], xtap[o], a);
        a = fmaf(d[o + 1], xtap[o + 1], a);
        a = fmaf(d[o + 2], xtap[o + 2], a);
        a = fmaf(d[o + 3], xtap[o + 3], a);
      }
    }
    for (; o < hi; o++) a = fmaf(d[o], xtap[o * s], a);
    acc[r * MT_WT] = a;
  }
}

/* The block of channels [m0, m0 + rows) x kernel columns [k0, k0 + taps) at
 * kernel row kh of x channel c of group gr. */
static void mt_gradw_run_block(const mt_corr *g, const float *x, const float *dy, float *dw, int32_t gr,
                               int32_t m0, int32_t rows, int32_t c, int32_t kh, int32_t k0, int32_t taps)
{
  float acc[2 * MT_WT];
  const float *dr[2];
  int32_t lo[MT_WT], hi[MT_WT], i, r, n, oh, ohl, ohh;
  const int32_t in_plane = g->ih * g->iw, out_plane = g->oh * g->ow;
  for (i = 0; i < 2 * MT_WT; i++) acc[i] = 0.0f;
  for (i = 0; i < taps; i++)
    mt_taps_inside(g->ow, (k0 + i) * g->tw + g->offw, g->sw, g->iw, &lo[i], &hi[i]);
  mt_taps_inside(g->oh, kh * g->th + g->offh, g->sh, g->ih, &ohl, &ohh);
  for (n = 0; n < g->n; n++) {
    const float *xc = x + (n * g->xc + gr * g->xg + c) * in_plane;
    for (oh = ohl; oh < ohh; oh++) {
      /* x row of this output row at kernel column k0, pixel 0 (may start outside) */
      const float *xrow = xc + (oh * g->sh + kh * g->th + g->offh) * g->iw + k0 * g->tw + g->offw;
      for (r = 0; r < 2; r++)
        dr[r] = dy + (n * g->yc + gr * g->yg + m0 + (r < rows ? r : 0)) * out_plane + oh * g->ow;
      if (rows == 2 && taps == MT_WT) {
        /* pixels with all columns inside x: [lo of the first, hi of the last) */
        const int32_t blo = lo[0], bhi = hi[MT_WT - 1] > blo ? hi[MT_WT - 1] : blo;
        if (g->sw == 1 && g->tw == 1)
          mt_gradw_block(acc, dr, xrow, blo, bhi, 1, 1);
        else
          mt_gradw_block(acc, dr, xrow, blo, bhi, g->sw, g->tw);
        for (i = 0; i < MT_WT; i++) {
          const float *xt = xrow + i * g->tw;
          mt_gradw_tap(acc + i, dr, 2, xt, lo[i], hi[i] < blo ? hi[i] : blo, g->sw);
          mt_gradw_tap(acc + i, dr, 2, xt, lo[i] > bhi ? lo[i] : bhi, hi[i], g->sw);
        }
      } else {
        for (i = 0; i < taps; i++) mt_gradw_tap(acc + i, dr, rows, xrow + i * g->tw, lo[i], hi[i], g->sw);
      }
    }
  }
  for (r = 0; r < rows; r++)
    for (i = 0; i < taps; i++)
      dw[(((gr * g->yg + m0 + r) * g->xg + c) * g->kh + kh) * g->kw + k0 + i] = acc[r * MT_WT + i];
}

void mt_conv2d_f32_bwd_weight(const float *MT_RESTRICT x, const float *MT_RESTRICT dy,
                              float *MT_RESTRICT dw, const int32_t *geo)
{
  mt_corr g;
  int32_t gr, m0, c, kh, k0;
  mt_corr_sizes(&g, geo);
  g.sh = geo[MT_CONV_STRIDE + 1];
  g.sw = geo[MT_CONV_STRIDE + 2];
  g.th = geo[MT_CONV_DIL + 1];
  g.tw = geo[MT_CONV_DIL + 2];
  g.offh = -geo[MT_CONV_PAD + 1];
  g.offw = -geo[MT_CONV_PAD + 2];
  for (gr = 0; gr < g.group; gr++) {
    for (m0 = 0; m0 < g.yg; m0 += 2) {
      const int32_t rows = g.yg - m0 < 2 ? g.yg - m0 : 2;
      for (c = 0; c < g.xg; c++) {
        for (kh = 0; kh < g.kh; kh++) {
          for (k0 = 0; k0 < g.kw; k0 += MT_WT) {
            const int32_t taps = g.kw - k0 < MT_WT ? g.kw - k0 : MT_WT;
            mt_gradw_run_block(&g, x, dy, dw, gr, m0, rows, c, kh, k0, taps);
          }
        }
      }
    }
  }
}
