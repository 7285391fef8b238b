/* microtrain kernels: work splitting for multi-core runs (PULP-cluster style).
 * Included through mt_kernels.h.
 *
 * A parallel kernel is called once per core with that core's `mt_par_t`; each
 * core computes a disjoint slice of the outputs, with the same sums in the
 * same order as a single-core call, so results are bit-identical for any core
 * count. The caller (the generated network code) runs every core's call and
 * then a barrier before the next layer. MT_PAR_SINGLE is the one-core case. */
#ifndef MT_PARALLEL_H
#define MT_PARALLEL_H

typedef struct {
  int32_t core_id;   /* 0 .. n_cores-1 */
  int32_t n_cores;
} mt_par_t;

#define MT_PAR_SINGLE mt_par_single()

static inline mt_par_t mt_par_single(void)
{
  mt_par_t p;
  p.core_id = 0;
  p.n_cores = 1;
  return p;
}

/* This core's share [*lo, *hi) of `n` work items: contiguous, balanced to
 * within one item, the first n % n_cores cores taking one more. */
static inline void mt_par_range(int32_t n, mt_par_t par, int32_t *lo, int32_t *hi)
{
  const int32_t base = n / par.n_cores, extra = n % par.n_cores, c = par.core_id;
  *lo = c * base + (c < extra ? c : extra);
  *hi = *lo + base + (c < extra ? 1 : 0);
}

#endif
