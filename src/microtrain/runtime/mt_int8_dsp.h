/* Requantization in 32-bit pieces for cores with the Arm DSP extension
 * (Cortex-M4/M7), shared by the int8 GEMM (mt_int8_gemm.c) and depthwise
 * (mt_int8_dw.c) kernels. Internal to the kernel library. */
#ifndef MT_INT8_DSP_H
#define MT_INT8_DSP_H

#include <stdint.h>

#if defined(__ARM_FEATURE_DSP)
/* Requantization, the same values as mt_requant1 (add_r holds the rounding
 * term), in 32-bit pieces: v = acc * mul + add_r is one SMLAL into the
 * preloaded pair (h, l), then per shift range
 *   mode 2, shift >= 32: floor(v / 2^s) = h >> (s - 32) (always fits);
 *   mode 1, 0 < s < 32:  q = low word of v >> s, which is the value unless
 *                        t = v >> (s + 31) = h >> (s - 1) is not q's sign;
 *   mode 0, s = 0:       q = l, t = h.
 * GCC and Clang define >> of a negative int as arithmetic. The mode and
 * whether the clamp is the full int8 range (one SSAT) are constants after
 * inlining into the caller. */
__attribute__((always_inline)) static inline int32_t mt_s8_rq32(int32_t acc, int32_t mul, int64_t add_r,
                                                                int32_t shift, int32_t lo, int32_t hi,
                                                                const int mode, const int full)
{
  const int64_t v = (int64_t)acc * mul + add_r;
  const int32_t h = (int32_t)(v >> 32);
  int32_t q, t;
  if (mode == 2) {
    q = h >> (shift - 32);
  } else {
    q = mode == 1 ? (int32_t)(((uint32_t)v >> shift) | ((uint32_t)h << (32 - shift))) : (int32_t)v;
    t = mode == 1 ? h >> (shift - 1) : h;
    if (t != (q >> 31)) q = t < 0 ? INT32_MIN : INT32_MAX;
  }
  if (full) {
    __asm__("ssat %0, #8, %1" : "=r"(q) : "r"(q));
    return q;
  }
  return q < lo ? lo : q > hi ? hi : q;
}
#endif

#endif
