/* microtrain kernels: reduce family. Included through mt_kernels.h. */
#ifndef MT_REDUCE_H
#define MT_REDUCE_H

/* op codes of mt_reduce_f32 (keep in sync with ops/reduce.py) */
enum {
  MT_REDUCE_SUM = 0, MT_REDUCE_MEAN = 1, MT_REDUCE_MAX = 2, MT_REDUCE_MIN = 3,
  MT_REDUCE_PROD = 4, MT_REDUCE_L1 = 5, MT_REDUCE_L2 = 6, MT_REDUCE_SUM_SQUARE = 7,
  MT_REDUCE_LOG_SUM = 8, MT_REDUCE_LOG_SUM_EXP = 9
};

/* Reduction of x (dense, `ndim` dims of `shape`) over the dims flagged in
 * `reduced` (1 = reduce, 0 = keep) into y (the kept dims, row-major,
 * out_size values). Any mix of reduced/kept dims works; callers merge
 * adjacent dims of the same kind first. x is read once, sequentially. */
void mt_reduce_f32(int32_t op, const float *MT_RESTRICT x, float *MT_RESTRICT y, int32_t ndim,
                   const int32_t *shape, const int32_t *reduced, int32_t out_size);

/* ArgMax (find_min == 0) or ArgMin over the middle axis of x viewed as
 * (outer, n, inner): y[o * inner + j] is the index of the first (or, with
 * select_last != 0, the last) extreme value. */
void mt_argreduce_f32(const float *MT_RESTRICT x, int64_t *MT_RESTRICT y, int32_t outer,
                      int32_t n, int32_t inner, int32_t find_min, int32_t select_last);

/* Backward of ReduceMax/ReduceMin (same dims/flags view as mt_reduce_f32):
 * dy[o] is split evenly among the inputs equal to the extreme y[o] (as
 * torch.amax/amin), the others get 0. share: scratch of out_size floats. */
void mt_reduce_extreme_f32_bwd(const float *dy, const float *MT_RESTRICT x, const float *y,
                               float *MT_RESTRICT dx, float *MT_RESTRICT share, int32_t ndim,
                               const int32_t *shape, const int32_t *reduced, int32_t out_size);

#endif
