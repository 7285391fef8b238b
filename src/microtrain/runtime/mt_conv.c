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
  const mt_conv_geo g = mt_conv_unpack(geo);
  int32_t n, oc, ic, kd, kh, kw;
  int32_t lo[3], hi[3], off[3];
  for (n = 0; n < g.n; n++) {
    for (oc = 0; oc < g.m; oc++) {
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
