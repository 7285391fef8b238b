/* Fused multiply-add conv kernels for training steps (see mt_conv_fma.h).
 *
 * The forward conv and the stride-1 transposed conv are one computation, a
 * correlation: y[n,m,oh,ow] = init[m] + sum_{c, kh, kw} w(m,c,kh,kw) *
 * x[n,c, oh*sh + kh*th + offh, ow*sw + kw*tw + offw], taps outside x skipped.
 * The conv has t = dilation, off = -pad; the transposed conv (as a gather)
 * s = 1, t = -dilation, off = +pad. Output rows are split into the interior
 * columns (every kernel column inside x: 4 channels x 4 pixels in 16 register
 * accumulators, 4 taps unrolled so the shared x loads are fetched once) and
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

/* a_rj += u_r * v_j for a 4x4 register block. */
#define MT_FMA_4X4(u0, u1, u2, u3, v0, v1, v2, v3)                                                  \
  a00 = fmaf(u0, v0, a00); a01 = fmaf(u0, v1, a01); a02 = fmaf(u0, v2, a02); a03 = fmaf(u0, v3, a03); \
  a10 = fmaf(u1, v0, a10); a11 = fmaf(u1, v1, a11); a12 = fmaf(u1, v2, a12); a13 = fmaf(u1, v3, a13); \
  a20 = fmaf(u2, v0, a20); a21 = fmaf(u2, v1, a21); a22 = fmaf(u2, v2, a22); a23 = fmaf(u2, v3, a23); \
  a30 = fmaf(u3, v0, a30); a31 = fmaf(u3, v1, a31); a32 = fmaf(u3, v2, a32); a33 = fmaf(u3, v3, a33)

#define MT_DECLARE_4X4 float a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33

/* ---- correlation (forward conv, stride-1 transposed conv) ------------------- */

/* One kernel tap k (a constant offset after unrolling) of the 4x4 block. */
#define MT_CORR_TAP(k)                                                                           \
  {                                                                                              \
    const float u0 = w0[k], u1 = w1[k], u2 = w2[k], u3 = w3[k];                                  \
    const float v0 = xp[(k) * t], v1 = xp[s + (k) * t], v2 = xp[2 * s + (k) * t], v3 = xp[3 * s + (k) * t]; \
    MT_FMA_4X4(u0, u1, u2, u3, v0, v1, v2, v3);                                                  \
  }

/* 4 y channels (weights wr[r], y rows yr[r]) x 4 pixels from column o, every
 * kernel column inside x. x0 points at channel 0 of the group, row of kernel
 * row 0 (may be outside x; only rows [khl, khh) are read), column o's tap 0.
 * s, t are literals at the fast call sites so the taps become fixed offsets. */
MT_INLINE void mt_corr_block(const mt_corr *g, const float *x0, const float *const *wr, int32_t khl,
                             int32_t khh, const float *init, float *const *yr, int32_t o, const int32_t s,
                             const int32_t t)
{
  const int32_t in_plane = g->ih * g->iw, row_step = g->th * g->iw, kw = g->kw;
  int32_t c, kh, k;
  MT_DECLARE_4X4;
  a00 = a01 = a02 = a03 = init[0];
  a10 = a11 = a12 = a13 = init[1];
  a20 = a21 = a22 = a23 = init[2];
  a30 = a31 = a32 = a33 = init[3];
  for (c = 0; c < g->xg; c++) {
    for (kh = khl; kh < khh; kh++) {
      const float *xp = x0 + c * in_plane + kh * row_step;
      const int32_t wo = c * g->w_x + kh * kw;
      const float *w0 = wr[0] + wo, *w1 = wr[1] + wo, *w2 = wr[2] + wo, *w3 = wr[3] + wo;
      for (k = 0; k + 4 <= kw; k += 4) {
        MT_CORR_TAP(0) MT_CORR_TAP(1) MT_CORR_TAP(2) MT_CORR_TAP(3)
        xp += 4 * t;
        w0 += 4; w1 += 4; w2 += 4; w3 += 4;
      }
      for (; k < kw; k++) {
        MT_CORR_TAP(0)
        xp += t;
        w0++; w1++; w2++; w3++;
      }
    }
  }
  yr[0][o] = a00; yr[0][o + 1] = a01; yr[0][o + 2] = a02; yr[0][o + 3] = a03;
  yr[1][o] = a10; yr[1][o + 1] = a11; yr[1][o + 2] = a12; yr[1][o + 3] = a13;
  yr[2][o] = a20; yr[2][o + 1] = a21; yr[2][o + 2] = a22; yr[2][o + 3] = a23;
  yr[3][o] = a30; yr[3][o + 1] = a31; yr[3][o + 2] = a32; yr[3][o + 3] = a33;
}

/* One pixel o of `rows` (1..4) y channels, kernel columns [kwl, kwh). */
static void mt_corr_pixel(const mt_corr *g, const float *x0, const float *const *wr, int32_t rows,
                          int32_t khl, int32_t khh, int32_t kwl, int32_t kwh, const float *init,
                          float *const *yr, int32_t o)
{
  const int32_t in_plane = g->ih * g->iw, row_step = g->th * g->iw, kw = g->kw, tw = g->tw;
  float a[4];
  int32_t c, kh, k, r;
  for (r = 0; r < rows; r++) a[r] = init[r];
  for (c = 0; c < g->xg; c++) {
    for (kh = khl; kh < khh; kh++) {
      const float *xp = x0 + c * in_plane + kh * row_step + o * g->sw;
      const int32_t wo = c * g->w_x + kh * kw;
      if (rows == 4) {
        const float *w0 = wr[0] + wo, *w1 = wr[1] + wo, *w2 = wr[2] + wo, *w3 = wr[3] + wo;
        float b0 = a[0], b1 = a[1], b2 = a[2], b3 = a[3];
        for (k = kwl; k < kwh; k++) {
          const float v = xp[k * tw];
          b0 = fmaf(w0[k], v, b0);
          b1 = fmaf(w1[k], v, b1);
          b2 = fmaf(w2[k], v, b2);
          b3 = fmaf(w3[k], v, b3);
        }
        a[0] = b0; a[1] = b1; a[2] = b2; a[3] = b3;
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

/* One y channel (weights wp, y row yr) x 8 pixels from column o, every kernel
 * column inside x; for channels that do not come in fours (depthwise). */
MT_INLINE void mt_corr_block8(const mt_corr *g, const float *x0, const float *wp, int32_t khl, int32_t khh,
                              float init, float *yr, int32_t o, const int32_t s, const int32_t t)
{
  const int32_t in_plane = g->ih * g->iw, row_step = g->th * g->iw, kw = g->kw;
  int32_t c, kh, k;
  float a0, a1, a2, a3, a4, a5, a6, a7;
  a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = init;
  for (c = 0; c < g->xg; c++) {
    for (kh = khl; kh < khh; kh++) {
      const float *xp = x0 + c * in_plane + kh * row_step;
      const float *w0 = wp + c * g->w_x + kh * kw;
      for (k = 0; k < kw; k++) {
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

/* The interior block at column o of the 4-channel row: s and t as literals
 * for the common cases (conv stride 1 dilation 1; its transposed conv). */
static void mt_corr_block4_at(const mt_corr *g, const float *x0, const float *const *wr, int32_t khl,
                              int32_t khh, const float *init, float *const *yr, int32_t o)
{
  if (g->sw == 1 && g->tw == 1)
    mt_corr_block(g, x0 + o, wr, khl, khh, init, yr, o, 1, 1);
  else if (g->sw == 1 && g->tw == -1)
    mt_corr_block(g, x0 + o, wr, khl, khh, init, yr, o, 1, -1);
  else
    mt_corr_block(g, x0 + o * g->sw, wr, khl, khh, init, yr, o, g->sw, g->tw);
}

static void mt_corr_block8_at(const mt_corr *g, const float *x0, const float *wp, int32_t khl, int32_t khh,
                              float init, float *yr, int32_t o)
{
  if (g->sw == 1)
    mt_corr_block8(g, x0 + o, wp, khl, khh, init, yr, o, 1, g->tw);
  else
    mt_corr_block8(g, x0 + o * g->sw, wp, khl, khh, init, yr, o, g->sw, g->tw);
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
 * the interior columns. */
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
  if (rows == 4 && hi - lo >= 4) {
    for (o = 0; o < lo; o++) mt_corr_border(g, x0, wr, 4, khl, khh, init, yr, o);
    /* the last block ends at hi, recomputing a few pixels (same values) */
    for (o = lo; o < hi; o += 4) mt_corr_block4_at(g, x0, wr, khl, khh, init, yr, o + 4 <= hi ? o : hi - 4);
    for (o = hi; o < g->ow; o++) mt_corr_border(g, x0, wr, 4, khl, khh, init, yr, o);
    return;
  }
  for (r = 0; r < rows; r++) {
    const float *const *w1 = wr + r;
    float *const *y1 = yr + r;
    if (hi - lo < 8) {
      for (o = 0; o < g->ow; o++) mt_corr_border(g, x0, w1, 1, khl, khh, init + r, y1, o);
      continue;
    }
    for (o = 0; o < lo; o++) mt_corr_border(g, x0, w1, 1, khl, khh, init + r, y1, o);
    for (o = lo; o < hi; o += 8) mt_corr_block8_at(g, x0, wr[r], khl, khh, init[r], yr[r], o + 8 <= hi ? o : hi - 8);
    for (o = hi; o < g->ow; o++) mt_corr_border(g, x0, w1, 1, khl, khh, init + r, y1, o);
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
 * Block: 4 output channels (dy rows) x 4 kernel columns; over one output row,
 * the pixels where all 4 columns are inside x run 4 at a time, the others
 * (the border of each column) one at a time. */

/* One output pixel j (a constant offset after unrolling) of the 4x4 block. */
#define MT_GRADW_PIX(j)                                                                          \
  {                                                                                              \
    const float u0 = d0[j], u1 = d1[j], u2 = d2[j], u3 = d3[j];                                  \
    const float v0 = xp[(j) * s], v1 = xp[(j) * s + t], v2 = xp[(j) * s + 2 * t], v3 = xp[(j) * s + 3 * t]; \
    MT_FMA_4X4(u0, u1, u2, u3, v0, v1, v2, v3);                                                  \
  }

/* acc (4x4, row-major by channel) += over pixels [lo, hi) of one row; dr[r]
 * the dy rows, xp the x row at pixel 0's first tap of the block. */
MT_INLINE void mt_gradw_block(float *acc, const float *const *dr, const float *xrow, int32_t lo, int32_t hi,
                              const int32_t s, const int32_t t)
{
  const float *d0 = dr[0] + lo, *d1 = dr[1] + lo, *d2 = dr[2] + lo, *d3 = dr[3] + lo;
  const float *xp = xrow + lo * s;
  int32_t o;
  MT_DECLARE_4X4;
  a00 = acc[0]; a01 = acc[1]; a02 = acc[2]; a03 = acc[3];
  a10 = acc[4]; a11 = acc[5]; a12 = acc[6]; a13 = acc[7];
  a20 = acc[8]; a21 = acc[9]; a22 = acc[10]; a23 = acc[11];
  a30 = acc[12]; a31 = acc[13]; a32 = acc[14]; a33 = acc[15];
  for (o = lo; o + 4 <= hi; o += 4) {
    MT_GRADW_PIX(0) MT_GRADW_PIX(1) MT_GRADW_PIX(2) MT_GRADW_PIX(3)
    d0 += 4; d1 += 4; d2 += 4; d3 += 4;
    xp += 4 * s;
  }
  for (; o < hi; o++) {
    MT_GRADW_PIX(0)
    d0++; d1++; d2++; d3++;
    xp += s;
  }
  acc[0] = a00; acc[1] = a01; acc[2] = a02; acc[3] = a03;
  acc[4] = a10; acc[5] = a11; acc[6] = a12; acc[7] = a13;
  acc[8] = a20; acc[9] = a21; acc[10] = a22; acc[11] = a23;
  acc[12] = a30; acc[13] = a31; acc[14] = a32; acc[15] = a33;
}

/* acc[r*4 + tap] += over pixels [lo, hi) for `rows` channels and one tap
 * (x row at pixel 0 of that tap). */
static void mt_gradw_tap(float *acc, const float *const *dr, int32_t rows, const float *xtap, int32_t lo,
                         int32_t hi, int32_t s)
{
  int32_t r, o;
  for (r = 0; r < rows; r++) {
    const float *d = dr[r];
    float a = acc[r * 4];
    for (o = lo; o < hi; o++) a = fmaf(d[o], xtap[o * s], a);
    acc[r * 4] = a;
  }
}

/* The block of channels [m0, m0 + rows) x kernel columns [k0, k0 + taps) at
 * kernel row kh of x channel c of group gr. */
static void mt_gradw_run_block(const mt_corr *g, const float *x, const float *dy, float *dw, int32_t gr,
                               int32_t m0, int32_t rows, int32_t c, int32_t kh, int32_t k0, int32_t taps)
{
  float acc[16];
  const float *dr[4];
  int32_t lo[4], hi[4], i, r, n, oh, ohl, ohh;
  const int32_t in_plane = g->ih * g->iw, out_plane = g->oh * g->ow;
  for (i = 0; i < 16; i++) acc[i] = 0.0f;
  for (i = 0; i < taps; i++)
    mt_taps_inside(g->ow, (k0 + i) * g->tw + g->offw, g->sw, g->iw, &lo[i], &hi[i]);
  mt_taps_inside(g->oh, kh * g->th + g->offh, g->sh, g->ih, &ohl, &ohh);
  for (n = 0; n < g->n; n++) {
    const float *xc = x + (n * g->xc + gr * g->xg + c) * in_plane;
    for (oh = ohl; oh < ohh; oh++) {
      /* x row of this output row at kernel column k0, pixel 0 (may start outside) */
      const float *xrow = xc + (oh * g->sh + kh * g->th + g->offh) * g->iw + k0 * g->tw + g->offw;
      for (r = 0; r < 4; r++)
        dr[r] = dy + (n * g->yc + gr * g->yg + m0 + (r < rows ? r : 0)) * out_plane + oh * g->ow;
      if (rows == 4 && taps == 4) {
        /* pixels with all 4 columns inside x: [lo of the first, hi of the last) */
        const int32_t blo = lo[0], bhi = hi[3] > blo ? hi[3] : blo;
        if (g->sw == 1 && g->tw == 1)
          mt_gradw_block(acc, dr, xrow, blo, bhi, 1, 1);
        else
          mt_gradw_block(acc, dr, xrow, blo, bhi, g->sw, g->tw);
        for (i = 0; i < 4; i++) {
          const float *xt = xrow + i * g->tw;
          mt_gradw_tap(acc + i, dr, 4, xt, lo[i], hi[i] < blo ? hi[i] : blo, g->sw);
          mt_gradw_tap(acc + i, dr, 4, xt, lo[i] > bhi ? lo[i] : bhi, hi[i], g->sw);
        }
      } else {
        for (i = 0; i < taps; i++) mt_gradw_tap(acc + i, dr, rows, xrow + i * g->tw, lo[i], hi[i], g->sw);
      }
    }
  }
  for (r = 0; r < rows; r++)
    for (i = 0; i < taps; i++)
      dw[(((gr * g->yg + m0 + r) * g->xg + c) * g->kh + kh) * g->kw + k0 + i] = acc[r * 4 + i];
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
    for (m0 = 0; m0 < g.yg; m0 += 4) {
      const int32_t rows = g.yg - m0 < 4 ? g.yg - m0 : 4;
      for (c = 0; c < g.xg; c++) {
        for (kh = 0; kh < g.kh; kh++) {
          for (k0 = 0; k0 < g.kw; k0 += 4) {
            const int32_t taps = g.kw - k0 < 4 ? g.kw - k0 : 4;
            mt_gradw_run_block(&g, x, dy, dw, gr, m0, rows, c, kh, k0, taps);
          }
        }
      }
    }
  }
}
