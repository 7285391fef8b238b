/* Convolution kernels (fp32): direct, generic over 1-3 spatial dims. */
#include "mt_kernels.h"

static int32_t mt_floor_div(int32_t a, int32_t b)  /* b > 0 */
{
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* Indices t in [0, count) with 0 <= t*stride + offset < limit, as [*lo, *hi).
 * Computing the valid range once per kernel tap keeps bounds checks out of
 * the inner loops. */
static void mt_tap_range(int32_t count, int32_t limit, int32_t stride, int32_t offset,
                         int32_t *lo, int32_t *hi)
{
  int32_t a = -mt_floor_div(offset, stride);                 /* ceil(-offset / stride) */
  int32_t b = mt_floor_div(limit - 1 - offset, stride) + 1;
  if (a < 0) a = 0;
  if (b > count) b = count;
  if (b < a) b = a;
  *lo = a;
  *hi = b;
}

static void mt_fill_bias(float *y, const float *bias, int32_t channel, int32_t plane)
{
  float v = bias ? bias[channel] : 0.0f;
  int32_t i;
  for (i = 0; i < plane; i++) y[i] = v;
}

/* Geometry unpacked from the table, named once for both kernels. */
typedef struct {
  int32_t n, c, m, group, cg, mg;
  int32_t in[3], out[3], k[3], s[3], d[3], p[3];
  int32_t in_plane, out_plane, kvol;
} mt_conv_geo;

static mt_conv_geo mt_conv_unpack(const int32_t *geo)
{
  mt_conv_geo g;
  int32_t a;
  g.n = geo[MT_CONV_N];
  g.c = geo[MT_CONV_C];
  g.m = geo[MT_CONV_M];
  g.group = geo[MT_CONV_GROUP];
  g.cg = g.c / g.group;
  g.mg = g.m / g.group;
  for (a = 0; a < 3; a++) {
    g.in[a] = geo[MT_CONV_IN + a];
    g.out[a] = geo[MT_CONV_OUT + a];
    g.k[a] = geo[MT_CONV_K + a];
    g.s[a] = geo[MT_CONV_STRIDE + a];
    g.d[a] = geo[MT_CONV_DIL + a];
    g.p[a] = geo[MT_CONV_PAD + a];
  }
  g.in_plane = g.in[0] * g.in[1] * g.in[2];
  g.out_plane = g.out[0] * g.out[1] * g.out[2];
  g.kvol = g.k[0] * g.k[1] * g.k[2];
  return g;
}

/* yp[o] += wv * xp[o*stride + offset] over the output box [lo, hi) of each
 * axis (every tap inside the input). */
static void mt_conv_tap(const mt_conv_geo *g, const float *MT_RESTRICT xp, float *MT_RESTRICT yp,
                        float wv, const int32_t *lo, const int32_t *hi, const int32_t *off)
{
  int32_t od, oh, ow;
  const int32_t sw = g->s[2], ow_off = off[2];
  for (od = lo[0]; od < hi[0]; od++) {
    int32_t id = od * g->s[0] + off[0];
    for (oh = lo[1]; oh < hi[1]; oh++) {
      int32_t ih = oh * g->s[1] + off[1];
      const float *xr = xp + (id * g->in[1] + ih) * g->in[2];
      float *yr = yp + (od * g->out[1] + oh) * g->out[2];
      if (sw == 1) {
        for (ow = lo[2]; ow < hi[2]; ow++) yr[ow] += wv * xr[ow + ow_off];
      } else {
        for (ow = lo[2]; ow < hi[2]; ow++) yr[ow] += wv * xr[ow * sw + ow_off];
      }
    }
  }
}

void mt_conv_f32(const float *MT_RESTRICT x, const float *MT_RESTRICT w, const float *bias,
                 float *MT_RESTRICT y, const int32_t *geo)
{
  mt_conv_f32_par(x, w, bias, y, geo, MT_PAR_SINGLE);
}

/* Work items: (image, output channel) pairs; each core does a contiguous run. */
void mt_conv_f32_par(const float *MT_RESTRICT x, const float *MT_RESTRICT w, const float *bias,
                     float *MT_RESTRICT y, const int32_t *geo, mt_par_t par)
{
  const mt_conv_geo g = mt_conv_unpack(geo);
  int32_t item, item_lo, item_hi, ic, kd, kh, kw;
  int32_t lo[3], hi[3], off[3];
  mt_par_range(g.n * g.m, par, &item_lo, &item_hi);
  for (item = item_lo; item < item_hi; item++) {
    const int32_t n = item / g.m, oc = item % g.m;
    {
      float *yp = y + (n * g.m + oc) * g.out_plane;
      int32_t first_in = (oc / g.mg) * g.cg;
      mt_fill_bias(yp, bias, oc, g.out_plane);
      for (ic = 0; ic < g.cg; ic++) {
        const float *xp = x + (n * g.c + first_in + ic) * g.in_plane;
        const float *wp = w + (oc * g.cg + ic) * g.kvol;
        for (kd = 0; kd < g.k[0]; kd++) {
          off[0] = kd * g.d[0] - g.p[0];
          mt_tap_range(g.out[0], g.in[0], g.s[0], off[0], &lo[0], &hi[0]);
          for (kh = 0; kh < g.k[1]; kh++) {
            off[1] = kh * g.d[1] - g.p[1];
            mt_tap_range(g.out[1], g.in[1], g.s[1], off[1], &lo[1], &hi[1]);
            for (kw = 0; kw < g.k[2]; kw++) {
              off[2] = kw * g.d[2] - g.p[2];
              mt_tap_range(g.out[2], g.in[2], g.s[2], off[2], &lo[2], &hi[2]);
              mt_conv_tap(&g, xp, yp, wp[(kd * g.k[1] + kh) * g.k[2] + kw], lo, hi, off);
            }
          }
        }
      }
    }
  }
}

/* yp[i*stride + offset] += wv * xp[i] over the input box [lo, hi) of each
 * axis (every target inside the output). */
static void mt_conv_transpose_tap(const mt_conv_geo *g, const float *MT_RESTRICT xp,
                                  float *MT_RESTRICT yp, float wv, const int32_t *lo,
                                  const int32_t *hi, const int32_t *off)
{
  int32_t id, ih, iw;
  const int32_t sw = g->s[2], ow_off = off[2];
  for (id = lo[0]; id < hi[0]; id++) {
    int32_t od = id * g->s[0] + off[0];
    for (ih = lo[1]; ih < hi[1]; ih++) {
      int32_t oh = ih * g->s[1] + off[1];
      const float *xr = xp + (id * g->in[1] + ih) * g->in[2];
      float *yr = yp + (od * g->out[1] + oh) * g->out[2];
      if (sw == 1) {
        for (iw = lo[2]; iw < hi[2]; iw++) yr[iw + ow_off] += wv * xr[iw];
      } else {
        for (iw = lo[2]; iw < hi[2]; iw++) yr[iw * sw + ow_off] += wv * xr[iw];
      }
    }
  }
}

void mt_conv_transpose_f32(const float *MT_RESTRICT x, const float *MT_RESTRICT w, const float *bias,
                           float *MT_RESTRICT y, const int32_t *geo)
{
  const mt_conv_geo g = mt_conv_unpack(geo);
  int32_t n, oc, ic, m, kd, kh, kw;
  int32_t lo[3], hi[3], off[3];
  for (n = 0; n < g.n; n++) {
    for (oc = 0; oc < g.m; oc++) mt_fill_bias(y + (n * g.m + oc) * g.out_plane, bias, oc, g.out_plane);
    for (ic = 0; ic < g.c; ic++) {
      const float *xp = x + (n * g.c + ic) * g.in_plane;
      int32_t first_out = (ic / g.cg) * g.mg;
      for (m = 0; m < g.mg; m++) {
        float *yp = y + (n * g.m + first_out + m) * g.out_plane;
        const float *wp = w + (ic * g.mg + m) * g.kvol;
        for (kd = 0; kd < g.k[0]; kd++) {
          off[0] = kd * g.d[0] - g.p[0];
          mt_tap_range(g.in[0], g.out[0], g.s[0], off[0], &lo[0], &hi[0]);
          for (kh = 0; kh < g.k[1]; kh++) {
            off[1] = kh * g.d[1] - g.p[1];
            mt_tap_range(g.in[1], g.out[1], g.s[1], off[1], &lo[1], &hi[1]);
            for (kw = 0; kw < g.k[2]; kw++) {
              off[2] = kw * g.d[2] - g.p[2];
              mt_tap_range(g.in[2], g.out[2], g.s[2], off[2], &lo[2], &hi[2]);
              mt_conv_transpose_tap(&g, xp, yp, wp[(kd * g.k[1] + kh) * g.k[2] + kw], lo, hi, off);
            }
          }
        }
      }
    }
  }
}

/* sum over the output box [lo, hi) of yp[o] * xp[o*stride + offset]. */
static float mt_conv_tap_dot(const mt_conv_geo *g, const float *MT_RESTRICT xp,
                             const float *MT_RESTRICT yp, const int32_t *lo, const int32_t *hi,
                             const int32_t *off)
{
  int32_t od, oh, ow;
  const int32_t sw = g->s[2], ow_off = off[2];
  float acc = 0.0f;
  for (od = lo[0]; od < hi[0]; od++) {
    int32_t id = od * g->s[0] + off[0];
    for (oh = lo[1]; oh < hi[1]; oh++) {
      int32_t ih = oh * g->s[1] + off[1];
      const float *xr = xp + (id * g->in[1] + ih) * g->in[2];
      const float *yr = yp + (od * g->out[1] + oh) * g->out[2];
      for (ow = lo[2]; ow < hi[2]; ow++) acc += yr[ow] * xr[ow * sw + ow_off];
    }
  }
  return acc;
}

void mt_conv_grad_weight_f32(const float *MT_RESTRICT x, const float *MT_RESTRICT dy,
                             float *MT_RESTRICT dw, const int32_t *geo)
{
  const mt_conv_geo g = mt_conv_unpack(geo);
  int32_t n, oc, ic, kd, kh, kw;
  int32_t lo[3], hi[3], off[3];
  for (oc = 0; oc < g.m; oc++) {
    int32_t first_in = (oc / g.mg) * g.cg;
    for (ic = 0; ic < g.cg; ic++) {
      float *wp = dw + (oc * g.cg + ic) * g.kvol;
      for (kd = 0; kd < g.k[0]; kd++) {
        off[0] = kd * g.d[0] - g.p[0];
        mt_tap_range(g.out[0], g.in[0], g.s[0], off[0], &lo[0], &hi[0]);
        for (kh = 0; kh < g.k[1]; kh++) {
          off[1] = kh * g.d[1] - g.p[1];
          mt_tap_range(g.out[1], g.in[1], g.s[1], off[1], &lo[1], &hi[1]);
          for (kw = 0; kw < g.k[2]; kw++) {
            float acc = 0.0f;
            off[2] = kw * g.d[2] - g.p[2];
            mt_tap_range(g.out[2], g.in[2], g.s[2], off[2], &lo[2], &hi[2]);
            for (n = 0; n < g.n; n++) {
              acc += mt_conv_tap_dot(&g, x + (n * g.c + first_in + ic) * g.in_plane,
                                     dy + (n * g.m + oc) * g.out_plane, lo, hi, off);
            }
            wp[(kd * g.k[1] + kh) * g.k[2] + kw] = acc;
          }
        }
      }
    }
  }
}

/* ---- fast 1-D/2-D kernels ---------------------------------------------------
 * Same geometry table, same sums in the same order as mt_conv_f32 (bias, then
 * channel, kernel row, kernel column, skipping taps in the padding), so the
 * results are bit-identical to it. The work is split per output row into the
 * border columns (some kernel columns fall in the padding: one pixel at a time
 * with clipped tap ranges) and the interior (every kernel column inside the
 * input: register blocks of 4 pixels, with the stride, kernel width and
 * dilation as compile-time constants for the common cases). The depth axis of
 * the table must be 1 (1-D convs have a height of 1). */

#if defined(__GNUC__)
#define MT_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define MT_ALWAYS_INLINE static inline
#endif

#define MT_CONV_OC_BLOCK 4   /* output channels accumulated together */
#define MT_CONV_PX_BLOCK 4   /* output pixels accumulated together */

/* Start of the block at ow in an interior ending at hi: the last block is
 * moved back to end at hi, recomputing (and rewriting the same values of) a
 * few pixels instead of running a slower remainder path. */
#define MT_CONV_LAST_BLOCK(ow, hi) ((ow) + MT_CONV_PX_BLOCK <= (hi) ? (ow) : (hi) - MT_CONV_PX_BLOCK)

/* Output columns whose kernel columns are all inside the input: [in_lo,
 * in_hi), done in blocks up to blocks_end (in_hi, or in_lo when narrower than
 * a block). The same for every row, so computed once per call. */
typedef struct {
  int32_t in_lo, in_hi, blocks_end;
} mt_conv_cols;

static mt_conv_cols mt_conv_cols_of(const mt_conv_geo *g)
{
  mt_conv_cols c;
  mt_tap_range(g->out[2], g->in[2] - (g->k[2] - 1) * g->d[2], g->s[2], -g->p[2], &c.in_lo, &c.in_hi);
  c.blocks_end = c.in_hi - c.in_lo >= MT_CONV_PX_BLOCK ? c.in_hi : c.in_lo;
  return c;
}

/* One output row of one (group of) output channel(s): where its taps are. */
typedef struct {
  mt_conv_cols cols;
  const mt_conv_geo *g;
  const float *x;          /* first input channel of the group */
  int32_t start;           /* index in x of output column 0's tap (0, 0); may be outside */
  int32_t kh_lo, kh_hi;    /* kernel rows inside the input for this output row */
} mt_conv_row;

static mt_conv_row mt_conv_row_at(const mt_conv_geo *g, const mt_conv_cols *cols,
                                  const float *x_group, int32_t oh)
{
  mt_conv_row r;
  r.cols = *cols;
  const int32_t ih0 = oh * g->s[1] - g->p[1];
  r.g = g;
  mt_tap_range(g->k[1], g->in[1], g->d[1], ih0, &r.kh_lo, &r.kh_hi);
  r.x = x_group;
  r.start = ih0 * g->in[2] - g->p[2];
  return r;
}

/* acc[j] += sum over (channel, kernel row, kernel column in [kw_lo, kw_hi))
 * of w_j * x for one output pixel and 4 output channels (w[j] their weights). */
static void mt_conv_pixel_4oc(const mt_conv_row *r, const float *const *w, int32_t ow,
                              int32_t kw_lo, int32_t kw_hi, float *acc)
{
  const mt_conv_geo *g = r->g;
  const int32_t kw_n = g->k[2], kvol = g->k[1] * kw_n, dw = g->d[2];
  const float *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
  float a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  int32_t ic, kh, kw;
  for (ic = 0; ic < g->cg; ic++) {
    const int32_t xc = ic * g->in_plane + ow * g->s[2] + r->start + kw_lo * dw;
    const int32_t wc = ic * kvol;
    for (kh = r->kh_lo; kh < r->kh_hi; kh++) {
      const float *xr = r->x + (xc + kh * g->d[1] * g->in[2]);   /* tap (kh, kw_lo) */
      const int32_t wr = wc + kh * kw_n;
      for (kw = kw_lo; kw < kw_hi; kw++) {
        const float xv = xr[(kw - kw_lo) * dw];
        a0 += w0[wr + kw] * xv;
        a1 += w1[wr + kw] * xv;
        a2 += w2[wr + kw] * xv;
        a3 += w3[wr + kw] * xv;
      }
    }
  }
  acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
}

/* Interior block: 4 output channels x 4 output pixels starting at column ow,
 * every kernel column inside the input. sw, kw_n, dw are constants at the
 * call sites that matter, so the tap loop unrolls into fixed offsets. */
MT_ALWAYS_INLINE void mt_conv_block_4oc_4px(const mt_conv_row *r, const float *const *w, int32_t ow,
                                            const float *bias4, float *const *y, const int32_t sw,
                                            const int32_t kw_n, const int32_t dw)
{
  const mt_conv_geo *g = r->g;
  const int32_t kvol = g->k[1] * kw_n, row_step = g->d[1] * g->in[2];
  const float *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
  float c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33;
  int32_t ic, kh, kw;
  c00 = c01 = c02 = c03 = bias4[0];
  c10 = c11 = c12 = c13 = bias4[1];
  c20 = c21 = c22 = c23 = bias4[2];
  c30 = c31 = c32 = c33 = bias4[3];
  for (ic = 0; ic < g->cg; ic++) {
    const float *xr = r->x + (ic * g->in_plane + ow * sw + r->start + r->kh_lo * row_step);
    int32_t wr = ic * kvol + r->kh_lo * kw_n;
    for (kh = r->kh_lo; kh < r->kh_hi; kh++, xr += row_step, wr += kw_n) {
#define MT_CONV_TAP_4x4(kw, xp)                                                                \
      {                                                                                      \
        const float x0 = (xp)[0], x1 = (xp)[sw], x2 = (xp)[2 * sw], x3 = (xp)[3 * sw];       \
        const float v0 = w0[wr + (kw)], v1 = w1[wr + (kw)], v2 = w2[wr + (kw)], v3 = w3[wr + (kw)]; \
        c00 += v0 * x0; c01 += v0 * x1; c02 += v0 * x2; c03 += v0 * x3;                      \
        c10 += v1 * x0; c11 += v1 * x1; c12 += v1 * x2; c13 += v1 * x3;                      \
        c20 += v2 * x0; c21 += v2 * x1; c22 += v2 * x2; c23 += v2 * x3;                      \
        c30 += v3 * x0; c31 += v3 * x1; c32 += v3 * x2; c33 += v3 * x3;                      \
      }
      if (kw_n == 3 && dw == 1) {   /* written out: GCC -O2 keeps a 3-trip loop rolled */
        MT_CONV_TAP_4x4(0, xr)
        MT_CONV_TAP_4x4(1, xr + 1)
        MT_CONV_TAP_4x4(2, xr + 2)
      } else {
        for (kw = 0; kw < kw_n; kw++) MT_CONV_TAP_4x4(kw, xr + kw * dw)
      }
#undef MT_CONV_TAP_4x4
    }
  }
  /* Rows of missing channels (y[j] == NULL) were computed from a repeated
   * weight pointer and are dropped here. */
  y[0][ow] = c00; y[0][ow + 1] = c01; y[0][ow + 2] = c02; y[0][ow + 3] = c03;
  if (y[1]) { y[1][ow] = c10; y[1][ow + 1] = c11; y[1][ow + 2] = c12; y[1][ow + 3] = c13; }
  if (y[2]) { y[2][ow] = c20; y[2][ow + 1] = c21; y[2][ow + 2] = c22; y[2][ow + 3] = c23; }
  if (y[3]) { y[3][ow] = c30; y[3][ow + 1] = c31; y[3][ow + 2] = c32; y[3][ow + 3] = c33; }
}

MT_ALWAYS_INLINE void mt_conv_interior_4oc(const mt_conv_row *r, const float *const *w, int32_t ow_lo,
                                           int32_t ow_hi, const float *bias4, float *const *y,
                                           const int32_t sw, const int32_t kw_n, const int32_t dw)
{
  int32_t ow;
  for (ow = ow_lo; ow < ow_hi; ow += MT_CONV_PX_BLOCK)
    mt_conv_block_4oc_4px(r, w, MT_CONV_LAST_BLOCK(ow, ow_hi), bias4, y, sw, kw_n, dw);
}

/* The interior blocks of one output row, specialized for 3-wide kernels with
 * stride 1 or 2 and no dilation (generic otherwise). */
static void mt_conv_interior_dispatch(const mt_conv_row *r, const float *const *w, int32_t ow_lo,
                                      int32_t ow_hi, const float *bias4, float *const *y)
{
  const mt_conv_geo *g = r->g;
  const int32_t sw = g->s[2], kw_n = g->k[2], dw = g->d[2];
  if (kw_n == 3 && dw == 1 && sw == 1) mt_conv_interior_4oc(r, w, ow_lo, ow_hi, bias4, y, 1, 3, 1);
  else if (kw_n == 3 && dw == 1 && sw == 2) mt_conv_interior_4oc(r, w, ow_lo, ow_hi, bias4, y, 2, 3, 1);
  else mt_conv_interior_4oc(r, w, ow_lo, ow_hi, bias4, y, sw, kw_n, dw);
}

/* One output row for 4 output channels: border pixels, interior blocks, the
 * interior's remainder pixels. */
static void mt_conv_row_4oc(const mt_conv_row *r, const float *const *w, const float *bias4,
                            float *const *y)
{
  const mt_conv_geo *g = r->g;
  const int32_t ow_n = g->out[2], sw = g->s[2], kw_n = g->k[2], dw = g->d[2];
  const int32_t in_lo = r->cols.in_lo, in_hi = r->cols.in_hi, blocks_end = r->cols.blocks_end;
  int32_t ow, j;
  mt_conv_interior_dispatch(r, w, in_lo, blocks_end, bias4, y);
  for (ow = 0; ow < ow_n; ow++) {
    int32_t kw_lo = 0, kw_hi = kw_n;
    float acc[MT_CONV_OC_BLOCK];
    if (ow >= in_lo && ow < blocks_end) {
      ow = blocks_end - 1;   /* done by the blocks */
      continue;
    }
    if (ow < in_lo || ow >= in_hi) mt_tap_range(kw_n, g->in[2], dw, ow * sw - g->p[2], &kw_lo, &kw_hi);
    for (j = 0; j < MT_CONV_OC_BLOCK; j++) acc[j] = bias4[j];
    mt_conv_pixel_4oc(r, w, ow, kw_lo, kw_hi, acc);
    for (j = 0; j < MT_CONV_OC_BLOCK && y[j]; j++) y[j][ow] = acc[j];
  }
}

void mt_conv2d_f32_fast(const float *MT_RESTRICT x, const float *MT_RESTRICT w, const float *bias,
                        float *MT_RESTRICT y, const int32_t *geo)
{
  mt_conv2d_f32_fast_par(x, w, bias, y, geo, MT_PAR_SINGLE);
}

/* Work items: output rows of each (image, group, block of 4 output channels),
 * in that nesting order; each core does a contiguous run of them. */
void mt_conv2d_f32_fast_par(const float *MT_RESTRICT x, const float *MT_RESTRICT w, const float *bias,
                            float *MT_RESTRICT y, const int32_t *geo, mt_par_t par)
{
  const mt_conv_geo g = mt_conv_unpack(geo);
  const mt_conv_cols cols = mt_conv_cols_of(&g);
  const int32_t wstride = g.cg * g.kvol, ow_n = g.out[2], oh_n = g.out[1];
  const int32_t blocks = (g.mg + MT_CONV_OC_BLOCK - 1) / MT_CONV_OC_BLOCK;
  const float *wj[MT_CONV_OC_BLOCK];
  float bias4[MT_CONV_OC_BLOCK];
  float *yrow[MT_CONV_OC_BLOCK];
  const float *xg = x;
  int32_t item, item_lo, item_hi, j, first = 0, count = 0, n = 0, current = -1;
  mt_par_range(g.n * g.group * blocks * oh_n, par, &item_lo, &item_hi);
  for (item = item_lo; item < item_hi; item++) {
    const int32_t oh = item % oh_n, block = item / oh_n;
    if (block != current) {   /* next (image, group, channel block): its weights and bias */
      const int32_t ob = (block % blocks) * MT_CONV_OC_BLOCK, grp = (block / blocks) % g.group;
      current = block;
      n = block / (blocks * g.group);
      xg = x + (n * g.c + grp * g.cg) * g.in_plane;
      first = grp * g.mg + ob;
      count = g.mg - ob < MT_CONV_OC_BLOCK ? g.mg - ob : MT_CONV_OC_BLOCK;
      for (j = 0; j < MT_CONV_OC_BLOCK; j++) {
        const int32_t oc = first + (j < count ? j : count - 1);
        wj[j] = w + oc * wstride;
        bias4[j] = bias ? bias[oc] : 0.0f;
      }
    }
    {
      const mt_conv_row r = mt_conv_row_at(&g, &cols, xg, oh);
      for (j = 0; j < MT_CONV_OC_BLOCK; j++)
        yrow[j] = j < count ? y + (n * g.m + first + j) * g.out_plane + oh * ow_n : NULL;
      mt_conv_row_4oc(&r, wj, bias4, yrow);
    }
  }
}

/* ---- depthwise: one input channel per group ---------------------------- */

static float mt_dw_pixel(const mt_conv_row *r, const float *MT_RESTRICT wp, int32_t ow,
                         int32_t kw_lo, int32_t kw_hi, float acc)
{
  const mt_conv_geo *g = r->g;
  const int32_t kw_n = g->k[2], dw = g->d[2], row_step = g->d[1] * g->in[2];
  const int32_t xc = ow * g->s[2] + r->start + kw_lo * dw;
  int32_t kh, kw;
  for (kh = r->kh_lo; kh < r->kh_hi; kh++) {
    const float *xr = r->x + (xc + kh * row_step);   /* tap (kh, kw_lo) */
    for (kw = kw_lo; kw < kw_hi; kw++) acc += wp[kh * kw_n + kw] * xr[(kw - kw_lo) * dw];
  }
  return acc;
}

MT_ALWAYS_INLINE void mt_dw_interior(const mt_conv_row *r, const float *MT_RESTRICT wp, int32_t ow_lo,
                                     int32_t ow_hi, float b, float *MT_RESTRICT yr, const int32_t sw,
                                     const int32_t kw_n, const int32_t dw)
{
  const int32_t row_step = r->g->d[1] * r->g->in[2];
  int32_t ow, kh, kw;
  for (ow = ow_lo; ow < ow_hi; ow += MT_CONV_PX_BLOCK) {
    const int32_t o = MT_CONV_LAST_BLOCK(ow, ow_hi);
    const float *xr = r->x + (o * sw + r->start + r->kh_lo * row_step);
    float a0 = b, a1 = b, a2 = b, a3 = b;
    for (kh = r->kh_lo; kh < r->kh_hi; kh++, xr += row_step) {
      const float *wr = wp + kh * kw_n;
      for (kw = 0; kw < kw_n; kw++) {
        const float *xp = xr + kw * dw;
        const float v = wr[kw];
        a0 += v * xp[0]; a1 += v * xp[sw]; a2 += v * xp[2 * sw]; a3 += v * xp[3 * sw];
      }
    }
    yr[o] = a0; yr[o + 1] = a1; yr[o + 2] = a2; yr[o + 3] = a3;
  }
}

/* 3x3, no dilation, all 3 kernel rows inside the input: the 9 weights stay in
 * registers and each block of 4 pixels reads its 3 input rows once (written
 * out because GCC -O2 keeps a 3-trip loop rolled). */
MT_ALWAYS_INLINE void mt_dw3x3_interior(const mt_conv_row *r, const float *MT_RESTRICT wp, int32_t ow_lo,
                                        int32_t ow_hi, float b, float *MT_RESTRICT yr, const int32_t sw)
{
  const int32_t row_step = r->g->in[2];
  const float w00 = wp[0], w01 = wp[1], w02 = wp[2], w10 = wp[3], w11 = wp[4], w12 = wp[5];
  const float w20 = wp[6], w21 = wp[7], w22 = wp[8];
  int32_t ow;
  for (ow = ow_lo; ow < ow_hi; ow += MT_CONV_PX_BLOCK) {
    const int32_t o = MT_CONV_LAST_BLOCK(ow, ow_hi);
    const float *x0 = r->x + (o * sw + r->start);
    const float *x1 = x0 + row_step, *x2 = x1 + row_step;
    float a0 = b, a1 = b, a2 = b, a3 = b;
#define MT_DW3_ROW(xr, wa, wb, wc)                                                        \
    a0 += wa * xr[0];          a1 += wa * xr[sw];          a2 += wa * xr[2 * sw];          a3 += wa * xr[3 * sw]; \
    a0 += wb * xr[1];          a1 += wb * xr[sw + 1];      a2 += wb * xr[2 * sw + 1];      a3 += wb * xr[3 * sw + 1]; \
    a0 += wc * xr[2];          a1 += wc * xr[sw + 2];      a2 += wc * xr[2 * sw + 2];      a3 += wc * xr[3 * sw + 2];
    MT_DW3_ROW(x0, w00, w01, w02)
    MT_DW3_ROW(x1, w10, w11, w12)
    MT_DW3_ROW(x2, w20, w21, w22)
#undef MT_DW3_ROW
    yr[o] = a0; yr[o + 1] = a1; yr[o + 2] = a2; yr[o + 3] = a3;
  }
}

/* One pixel of a full 3x3 window (x at its tap (0, 0)), in reference order. */
static float mt_dw3x3_pixel(const float *MT_RESTRICT x, int32_t row_step, const float *MT_RESTRICT wp,
                            float acc)
{
  int32_t kh;
  for (kh = 0; kh < 3; kh++, x += row_step, wp += 3) {
    acc += wp[0] * x[0];
    acc += wp[1] * x[1];
    acc += wp[2] * x[2];
  }
  return acc;
}

static void mt_dw_row(const mt_conv_row *r, const float *MT_RESTRICT wp, float b, float *MT_RESTRICT yr)
{
  const mt_conv_geo *g = r->g;
  const int32_t ow_n = g->out[2], sw = g->s[2], kw_n = g->k[2], dw = g->d[2];
  const int32_t full_3x3 = kw_n == 3 && dw == 1 && g->d[1] == 1 && r->kh_lo == 0 && r->kh_hi == 3;
  const int32_t in_lo = r->cols.in_lo, in_hi = r->cols.in_hi, blocks_end = r->cols.blocks_end;
  int32_t ow;
  if (full_3x3 && sw == 1) mt_dw3x3_interior(r, wp, in_lo, blocks_end, b, yr, 1);
  else if (full_3x3 && sw == 2) mt_dw3x3_interior(r, wp, in_lo, blocks_end, b, yr, 2);
  else mt_dw_interior(r, wp, in_lo, blocks_end, b, yr, sw, kw_n, dw);
  for (ow = 0; ow < ow_n; ow++) {
    int32_t kw_lo = 0, kw_hi = kw_n;
    if (ow >= in_lo && ow < blocks_end) {
      ow = blocks_end - 1;
      continue;
    }
    if (ow < in_lo || ow >= in_hi) mt_tap_range(kw_n, g->in[2], dw, ow * sw - g->p[2], &kw_lo, &kw_hi);
    else if (full_3x3) {
      yr[ow] = mt_dw3x3_pixel(r->x + (ow * sw + r->start), g->in[2], wp, b);
      continue;
    }
    yr[ow] = mt_dw_pixel(r, wp, ow, kw_lo, kw_hi, b);
  }
}

void mt_dwconv2d_f32(const float *MT_RESTRICT x, const float *MT_RESTRICT w, const float *bias,
                     float *MT_RESTRICT y, const int32_t *geo)
{
  mt_dwconv2d_f32_par(x, w, bias, y, geo, MT_PAR_SINGLE);
}

/* Work items: output rows of each (image, channel); contiguous runs per core. */
void mt_dwconv2d_f32_par(const float *MT_RESTRICT x, const float *MT_RESTRICT w, const float *bias,
                         float *MT_RESTRICT y, const int32_t *geo, mt_par_t par)
{
  const mt_conv_geo g = mt_conv_unpack(geo);
  const mt_conv_cols cols = mt_conv_cols_of(&g);
  const int32_t oh_n = g.out[1];
  int32_t item, item_lo, item_hi;
  mt_par_range(g.n * g.m * oh_n, par, &item_lo, &item_hi);
  for (item = item_lo; item < item_hi; item++) {
    const int32_t oh = item % oh_n, plane = item / oh_n;   /* plane = n * M + oc */
    const int32_t n = plane / g.m, oc = plane % g.m;
    const float *xc = x + (n * g.c + oc / g.mg) * g.in_plane;
    const mt_conv_row r = mt_conv_row_at(&g, &cols, xc, oh);
    mt_dw_row(&r, w + oc * g.kvol, bias ? bias[oc] : 0.0f, y + plane * g.out_plane + oh * g.out[2]);
  }
}

/* ---- pointwise: a GEMM per image ------------------------------------------ */

void mt_conv_pointwise_f32(const float *MT_RESTRICT x, const float *MT_RESTRICT w, const float *bias,
                           float *MT_RESTRICT y, const int32_t *geo, float *MT_RESTRICT panel)
{
  mt_conv_pointwise_f32_par(x, w, bias, y, geo, panel, MT_PAR_SINGLE);
}

/* Work items: blocks of 4 output pixels (GEMM columns) of each image. */
void mt_conv_pointwise_f32_par(const float *MT_RESTRICT x, const float *MT_RESTRICT w, const float *bias,
                               float *MT_RESTRICT y, const int32_t *geo, float *MT_RESTRICT panel,
                               mt_par_t par)
{
  const mt_conv_geo g = mt_conv_unpack(geo);
  const int32_t p = g.out_plane, blocks = (p + MT_GEMM_COLS - 1) / MT_GEMM_COLS;
  int32_t item, item_lo, item_hi;
  mt_par_range(g.n * blocks, par, &item_lo, &item_hi);
  for (item = item_lo; item < item_hi;) {
    const int32_t n = item / blocks, first = item % blocks;
    const int32_t last = item_hi < (n + 1) * blocks ? item_hi - n * blocks : blocks;
    const int32_t j_hi = last * MT_GEMM_COLS < p ? last * MT_GEMM_COLS : p;
    mt_gemm_f32_strided_cols(w, g.c, 1, x + n * g.c * g.in_plane, g.in_plane, 1, bias,
                             y + n * g.m * g.out_plane, p, g.m, g.c, first * MT_GEMM_COLS, j_hi, panel);
    item = n * blocks + last;
  }
}
