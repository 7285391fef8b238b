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
