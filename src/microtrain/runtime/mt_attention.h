/* microtrain kernels: depth-first attention. Included through mt_kernels.h. */
#ifndef MT_ATTENTION_H
#define MT_ATTENTION_H

/* y[b] = softmax(scale * q[b] kt[b]) v[b] for each of `batch` entries (heads),
 * q (s x p), kt (p x t), v (t x pv), y (s x pv); *_off give each entry's
 * element offset (broadcast batch dims). Query rows go block_rows at a time
 * through `scores` (block_rows * t floats), the only intermediate storage. */
void mt_attention_f32(const float *q, const float *kt, const float *v, float *y,
                      int32_t batch, int32_t s, int32_t p, int32_t t, int32_t pv,
                      const int32_t *q_off, const int32_t *k_off, const int32_t *v_off,
                      float scale, int32_t block_rows, float *scores);

#endif
