/* int8 direct convolution with fused requantization (plain C reference):
 * one int32 accumulator per output element, taps in the padding skipped
 * (they would add (zp - zp) * w = 0). */
#include "mt_kernels.h"

void mt_conv_s8(const int8_t *MT_RESTRICT x, const int8_t *MT_RESTRICT w, int8_t *MT_RESTRICT y,
                const int32_t *geo, int32_t x_zp,
                const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                int32_t shift, int32_t lo, int32_t hi)
{
  const int32_t N = geo[MT_CONV_N], C = geo[MT_CONV_C], M = geo[MT_CONV_M], G = geo[MT_CONV_GROUP];
  const int32_t *in = geo + MT_CONV_IN, *out = geo + MT_CONV_OUT, *ks = geo + MT_CONV_K;
  const int32_t *st = geo + MT_CONV_STRIDE, *dl = geo + MT_CONV_DIL, *pd = geo + MT_CONV_PAD;
  const int32_t cg = C / G, mg = M / G;
  const size_t in_plane = (size_t)in[0] * in[1] * in[2];
  const size_t kvol = (size_t)ks[0] * ks[1] * ks[2];
  int32_t nb, oc, od, oh, ow, ic, kd, kh, kw;
  for (nb = 0; nb < N; nb++)
    for (oc = 0; oc < M; oc++) {
      const int32_t mc = mul[nmul > 1 ? oc : 0];
      const int64_t ac = add[nadd > 1 ? oc : 0];
      const int8_t *xg = x + ((size_t)nb * C + (size_t)(oc / mg) * cg) * in_plane;
      const int8_t *wo = w + (size_t)oc * cg * kvol;
      for (od = 0; od < out[0]; od++)
        for (oh = 0; oh < out[1]; oh++)
          for (ow = 0; ow < out[2]; ow++) {
            int32_t acc = 0;
            for (ic = 0; ic < cg; ic++) {
              const int8_t *xc = xg + (size_t)ic * in_plane;
              const int8_t *wc = wo + (size_t)ic * kvol;
              for (kd = 0; kd < ks[0]; kd++) {
                const int32_t id = od * st[0] - pd[0] + kd * dl[0];
                if (id < 0 || id >= in[0]) continue;
                for (kh = 0; kh < ks[1]; kh++) {
                  const int32_t ih = oh * st[1] - pd[1] + kh * dl[1];
                  const int8_t *xr, *wr;
                  if (ih < 0 || ih >= in[1]) continue;
                  xr = xc + ((size_t)id * in[1] + ih) * in[2];
                  wr = wc + ((size_t)kd * ks[1] + kh) * ks[2];
                  for (kw = 0; kw < ks[2]; kw++) {
                    const int32_t iw = ow * st[2] - pd[2] + kw * dl[2];
                    if (iw < 0 || iw >= in[2]) continue;
                    acc += ((int32_t)xr[iw] - x_zp) * (int32_t)wr[kw];
                  }
                }
              }
            }
            *y++ = mt_requant1(acc, mc, ac, shift, lo, hi);
          }
    }
}

/* Taps k in [*lo, *hi) of a kernel of size k_size whose input coordinate
 * o*stride - pad + k*dil lies inside [0, in). */
static void mt_s8_tap_bounds(int32_t o, int32_t stride, int32_t pad, int32_t dil, int32_t k_size,
                             int32_t in, int32_t *lo, int32_t *hi)
{
  const int32_t start = o * stride - pad;
  int32_t a = start < 0 ? (-start + dil - 1) / dil : 0;
  int32_t b = start + (k_size - 1) * dil < in ? k_size : (in - 1 - start) / dil + 1;
  if (in - 1 - start < 0) b = 0;
  if (a > b) a = b;
  *lo = a;
  *hi = b;
}

/* One output channel at a time (depthwise and other groups of < 4 output
 * channels): v1 of the fast kernel. */
static void mt_conv_s8_single(const int8_t *MT_RESTRICT x, const int8_t *MT_RESTRICT w, int8_t *MT_RESTRICT y,
                     const int32_t *geo, int32_t x_zp,
                     const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                     int32_t shift, int32_t lo, int32_t hi)
{
  const int32_t N = geo[MT_CONV_N], C = geo[MT_CONV_C], M = geo[MT_CONV_M], G = geo[MT_CONV_GROUP];
  const int32_t *in = geo + MT_CONV_IN, *out = geo + MT_CONV_OUT, *ks = geo + MT_CONV_K;
  const int32_t *st = geo + MT_CONV_STRIDE, *dl = geo + MT_CONV_DIL, *pd = geo + MT_CONV_PAD;
  const int32_t cg = C / G, mg = M / G, dw = dl[2];
  const size_t in_plane = (size_t)in[0] * in[1] * in[2];
  const size_t kvol = (size_t)ks[0] * ks[1] * ks[2];
  int32_t nb, oc, od, oh, ow, ic, kd, kh, kw;
  for (nb = 0; nb < N; nb++)
    for (oc = 0; oc < M; oc++) {
      const int32_t mc = mul[nmul > 1 ? oc : 0];
      const int64_t ac = add[nadd > 1 ? oc : 0];
      const int8_t *xg = x + ((size_t)nb * C + (size_t)(oc / mg) * cg) * in_plane;
      const int8_t *wo = w + (size_t)oc * cg * kvol;
      for (od = 0; od < out[0]; od++) {
        int32_t d0, d1;
        mt_s8_tap_bounds(od, st[0], pd[0], dl[0], ks[0], in[0], &d0, &d1);
        for (oh = 0; oh < out[1]; oh++) {
          int32_t h0, h1;
          mt_s8_tap_bounds(oh, st[1], pd[1], dl[1], ks[1], in[1], &h0, &h1);
          for (ow = 0; ow < out[2]; ow++) {
            int32_t w0, w1, acc = 0, wsum = 0;
            const int32_t iw0 = ow * st[2] - pd[2];
            mt_s8_tap_bounds(ow, st[2], pd[2], dw, ks[2], in[2], &w0, &w1);
            for (ic = 0; ic < cg; ic++) {
              const int8_t *xc = xg + (size_t)ic * in_plane;
              const int8_t *wc = wo + (size_t)ic * kvol;
              for (kd = d0; kd < d1; kd++) {
                const int32_t id = od * st[0] - pd[0] + kd * dl[0];
                for (kh = h0; kh < h1; kh++) {
                  const int32_t ih = oh * st[1] - pd[1] + kh * dl[1];
                  const int8_t *xr = xc + ((size_t)id * in[1] + ih) * in[2] + iw0;
                  const int8_t *wr = wc + ((size_t)kd * ks[1] + kh) * ks[2];
                  for (kw = w0; kw < w1; kw++) {
                    const int32_t wv = wr[kw];
                    acc += (int32_t)xr[kw * dw] * wv;
                    wsum += wv;
                  }
                }
              }
            }
            *y++ = mt_requant1((int64_t)acc - (int64_t)x_zp * wsum, mc, ac, shift, lo, hi);
          }
        }
      }
    }
}

/* Depthwise (one input and one output channel per group), 1-D/2-D: the
 * weights of a channel and the tap range of each output row stay in
 * registers across the row. */
static void mt_conv_s8_depthwise(const int8_t *MT_RESTRICT x, const int8_t *MT_RESTRICT w, int8_t *MT_RESTRICT y,
                                 const int32_t *geo, int32_t x_zp,
                                 const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                                 int32_t shift, int32_t lo, int32_t hi)
{
  const int32_t N = geo[MT_CONV_N], C = geo[MT_CONV_C];
  const int32_t IH = geo[MT_CONV_IN + 1], IW = geo[MT_CONV_IN + 2];
  const int32_t OH = geo[MT_CONV_OUT + 1], OW = geo[MT_CONV_OUT + 2];
  const int32_t KH = geo[MT_CONV_K + 1], KW = geo[MT_CONV_K + 2];
  const int32_t SH = geo[MT_CONV_STRIDE + 1], SW = geo[MT_CONV_STRIDE + 2];
  const int32_t DH = geo[MT_CONV_DIL + 1], DW = geo[MT_CONV_DIL + 2];
  const int32_t PH = geo[MT_CONV_PAD + 1], PW = geo[MT_CONV_PAD + 2];
  int32_t nb, c, oh, ow, kh, kw;
  for (nb = 0; nb < N; nb++)
    for (c = 0; c < C; c++) {
      const int8_t *xc = x + ((size_t)nb * C + c) * IH * IW;
      const int8_t *wc = w + (size_t)c * KH * KW;
      const int32_t mc = mul[nmul > 1 ? c : 0];
      const int64_t ac = add[nadd > 1 ? c : 0];
      for (oh = 0; oh < OH; oh++) {
        int32_t h0, h1;
        mt_s8_tap_bounds(oh, SH, PH, DH, KH, IH, &h0, &h1);
        for (ow = 0; ow < OW; ow++) {
          int32_t w0, w1, acc = 0;
          const int32_t iw0 = ow * SW - PW;
          mt_s8_tap_bounds(ow, SW, PW, DW, KW, IW, &w0, &w1);
          for (kh = h0; kh < h1; kh++) {
            const int8_t *xr = xc + (size_t)(oh * SH - PH + kh * DH) * IW + iw0;
            const int8_t *wr = wc + (size_t)kh * KW;
            for (kw = w0; kw < w1; kw++) acc += ((int32_t)xr[kw * DW] - x_zp) * wr[kw];
          }
          *y++ = mt_requant1(acc, mc, ac, shift, lo, hi);
        }
      }
    }
}

/* Accumulators of `nb` (1..4) output channels at one output position:
 * acc[j] = sum over the taps inside the input of (x - zp) * w_j, with w_j the
 * weights of channel j (`wstride` bytes apart). Each input sample is loaded
 * once for the block. */
static inline void mt_s8_conv_point(const int8_t *MT_RESTRICT xg, const int8_t *MT_RESTRICT wo, int32_t nb,
                             size_t wstride, int32_t cg, size_t in_plane, size_t kvol,
                             const int32_t *in, const int32_t *ks, const int32_t *dl,
                             int32_t id0, int32_t ih0, int32_t iw0, const int32_t *t0, const int32_t *t1,
                             int32_t zp, int32_t *acc)
{
  int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, ic, kd, kh, kw;
  const int32_t dw = dl[2];
  for (ic = 0; ic < cg; ic++) {
    const int8_t *xc = xg + (size_t)ic * in_plane;
    const int8_t *wc = wo + (size_t)ic * kvol;
    for (kd = t0[0]; kd < t1[0]; kd++) {
      for (kh = t0[1]; kh < t1[1]; kh++) {
        const int8_t *xr = xc + ((size_t)(id0 + kd * dl[0]) * in[1] + (ih0 + kh * dl[1])) * in[2] + iw0;
        const int8_t *w0 = wc + ((size_t)kd * ks[1] + kh) * ks[2];
        if (nb == 4) {
          const int8_t *w1 = w0 + wstride, *w2 = w1 + wstride, *w3 = w2 + wstride;
          for (kw = t0[2]; kw < t1[2]; kw++) {
            const int32_t xv = (int32_t)xr[kw * dw] - zp;
            a0 += xv * w0[kw]; a1 += xv * w1[kw]; a2 += xv * w2[kw]; a3 += xv * w3[kw];
          }
        } else {
          int32_t j;
          for (j = 0; j < nb; j++) {
            const int8_t *wj = w0 + (size_t)j * wstride;
            int32_t aj = 0;
            for (kw = t0[2]; kw < t1[2]; kw++) aj += ((int32_t)xr[kw * dw] - zp) * wj[kw];
            if (j == 0) a0 += aj; else if (j == 1) a1 += aj; else a2 += aj;
          }
        }
      }
    }
  }
  acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
}

/* 1x1 convolution, stride 1, no padding (a GEMM per group): 4 output
 * channels per pass over the input channels. */
static void mt_conv_s8_pointwise(const int8_t *MT_RESTRICT x, const int8_t *MT_RESTRICT w, int8_t *MT_RESTRICT y,
                                 int32_t N, int32_t C, int32_t M, int32_t G, size_t plane, int32_t x_zp,
                                 const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                                 int32_t shift, int32_t lo, int32_t hi)
{
  const int32_t cg = C / G, mg = M / G;
  int32_t nb, g, ob, ic, j;
  size_t p;
  for (nb = 0; nb < N; nb++)
    for (g = 0; g < G; g++) {
      const int8_t *xg = x + ((size_t)nb * C + (size_t)g * cg) * plane;
      for (ob = 0; ob < mg; ob += 4) {
        const int32_t oc = g * mg + ob, nblk = mg - ob < 4 ? mg - ob : 4;
        const int8_t *w0 = w + (size_t)oc * cg;
        int8_t *yo = y + ((size_t)nb * M + oc) * plane;
        for (p = 0; p < plane; p++) {
          int32_t acc[4] = {0, 0, 0, 0};
          const int8_t *xp = xg + p;
          if (nblk == 4) {
            const int8_t *w1 = w0 + cg, *w2 = w1 + cg, *w3 = w2 + cg;
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            for (ic = 0; ic < cg; ic++) {
              const int32_t xv = (int32_t)xp[(size_t)ic * plane] - x_zp;
              a0 += xv * w0[ic]; a1 += xv * w1[ic]; a2 += xv * w2[ic]; a3 += xv * w3[ic];
            }
            acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
          } else {
            for (j = 0; j < nblk; j++)
              for (ic = 0; ic < cg; ic++)
                acc[j] += ((int32_t)xp[(size_t)ic * plane] - x_zp) * w0[(size_t)j * cg + ic];
          }
          for (j = 0; j < nblk; j++)
            yo[(size_t)j * plane + p] =
                mt_requant1(acc[j], mul[nmul > 1 ? oc + j : 0], add[nadd > 1 ? oc + j : 0], shift, lo, hi);
        }
      }
    }
}

/* Same contract as mt_conv_s8, bit-identical: tap ranges computed once per
 * output position and axis (no per-tap bounds test), output channels in
 * blocks of 4 sharing each input load. */
void mt_conv_s8_fast(const int8_t *MT_RESTRICT x, const int8_t *MT_RESTRICT w, int8_t *MT_RESTRICT y,
                     const int32_t *geo, int32_t x_zp,
                     const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                     int32_t shift, int32_t lo, int32_t hi)
{
  const int32_t N = geo[MT_CONV_N], C = geo[MT_CONV_C], M = geo[MT_CONV_M], G = geo[MT_CONV_GROUP];
  const int32_t *in = geo + MT_CONV_IN, *out = geo + MT_CONV_OUT, *ks = geo + MT_CONV_K;
  const int32_t *st = geo + MT_CONV_STRIDE, *dl = geo + MT_CONV_DIL, *pd = geo + MT_CONV_PAD;
  const int32_t cg = C / G, mg = M / G;
  const size_t in_plane = (size_t)in[0] * in[1] * in[2];
  const size_t out_plane = (size_t)out[0] * out[1] * out[2];
  const size_t kvol = (size_t)ks[0] * ks[1] * ks[2];
  const size_t wstride = (size_t)cg * kvol;
  int32_t nb, g, ob, od, oh, ow, j;
  if (kvol == 1 && st[0] == 1 && st[1] == 1 && st[2] == 1 && !pd[0] && !pd[1] && !pd[2]
      && out[0] == in[0] && out[1] == in[1] && out[2] == in[2]) {
    mt_conv_s8_pointwise(x, w, y, N, C, M, G, in_plane, x_zp, mul, nmul, add, nadd, shift, lo, hi);
    return;
  }
  if (cg == 1 && mg == 1 && in[0] == 1 && ks[0] == 1 && out[0] == 1) {
    mt_conv_s8_depthwise(x, w, y, geo, x_zp, mul, nmul, add, nadd, shift, lo, hi);
    return;
  }
  if (mg < 4) {
    mt_conv_s8_single(x, w, y, geo, x_zp, mul, nmul, add, nadd, shift, lo, hi);
    return;
  }
  for (nb = 0; nb < N; nb++)
    for (g = 0; g < G; g++) {
      const int8_t *xg = x + ((size_t)nb * C + (size_t)g * cg) * in_plane;
      for (ob = 0; ob < mg; ob += 4) {
        const int32_t oc = g * mg + ob, nblk = mg - ob < 4 ? mg - ob : 4;
        const int8_t *wo = w + (size_t)oc * wstride;
        int8_t *yo = y + ((size_t)nb * M + oc) * out_plane;
        size_t pos = 0;
        for (od = 0; od < out[0]; od++) {
          int32_t t0[3], t1[3];
          mt_s8_tap_bounds(od, st[0], pd[0], dl[0], ks[0], in[0], &t0[0], &t1[0]);
          for (oh = 0; oh < out[1]; oh++) {
            mt_s8_tap_bounds(oh, st[1], pd[1], dl[1], ks[1], in[1], &t0[1], &t1[1]);
            for (ow = 0; ow < out[2]; ow++, pos++) {
              int32_t acc[4];
              mt_s8_tap_bounds(ow, st[2], pd[2], dl[2], ks[2], in[2], &t0[2], &t1[2]);
              mt_s8_conv_point(xg, wo, nblk, wstride, cg, in_plane, kvol, in, ks, dl,
                               od * st[0] - pd[0], oh * st[1] - pd[1], ow * st[2] - pd[2], t0, t1, x_zp, acc);
              for (j = 0; j < nblk; j++)
                yo[(size_t)j * out_plane + pos] =
                    mt_requant1(acc[j], mul[nmul > 1 ? oc + j : 0], add[nadd > 1 ? oc + j : 0], shift, lo, hi);
            }
          }
        }
      }
    }
}
