/* microtrain kernels: softmax family. Included through mt_kernels.h. */
#ifndef MT_SOFTMAX_H
#define MT_SOFTMAX_H

/* Softmax (log_softmax == 0) or LogSoftmax over the middle axis of x viewed
 * as (outer, n, inner); max-subtracted for stability. y may alias x. */
void mt_softmax_f32(const float *x, float *y, int32_t outer, int32_t n, int32_t inner,
                    int32_t log_softmax);

#endif
