/* microtrain kernels: softmax family. Included through mt_kernels.h. */
#ifndef MT_SOFTMAX_H
#define MT_SOFTMAX_H

/* Softmax (log_softmax == 0) or LogSoftmax over the middle axis of x viewed
 * as (outer, n, inner); max-subtracted for stability. y may alias x. */
void mt_softmax_f32(const float *x, float *y, int32_t outer, int32_t n, int32_t inner,
                    int32_t log_softmax);

/* Backward of mt_softmax_f32 from its output y, same (outer, n, inner) view:
 * softmax dx = y * (dy - sum(dy * y)); log-softmax dx = dy - exp(y) * sum(dy).
 * dx may alias dy. */
void mt_softmax_f32_bwd(const float *dy, const float *y, float *dx, int32_t outer, int32_t n,
                        int32_t inner, int32_t log_softmax);

#endif
