/* Register-blocked int8 GEMM core shared by mt_conv_s8_gemm (rows = output
 * channels, columns = output pixels) and mt_matmul_s8_gemm (rows = columns
 * of B, columns = rows of A). Bit-identical to the reference kernels: the
 * same int32 sums in another order (integer addition is associative), then
 * the same requantization.
 *
 * Rows: constant int8 weights re-laid out at compile time
 * (ops/_quant.py s8_rows_layout): blocks of 4 rows, K padded with zeros to a
 * multiple of 4, and inside a block for each group of 4 k the 4 rows' 4 bytes
 * side by side (16 bytes), each row's bytes in the order k0 k2 k1 k3: one
 * pointer with small immediate offsets; SXTB16 (bytes 0, 2) then yields
 * the int16 pair (k0, k1) and SXTB16 of the word rotated by 8 (k2, k3). The
 * weight table is emitted as int32 words (word-aligned for LDRD).
 * Columns: packed at run time into the scratch `panel` as int16 with the zero
 * point subtracted (padding taps = 0, padded k = 0):
 *   rv32im: panel[k*5 + c], 5 columns; 4x5 int32 accumulators per block in
 *   the assembly kernel of mt_int8_rv32.c (28 registers); convolutions with
 *   kernel width 3 and stride 1 along W take the sliding-window kernel of
 *   mt_int8_slide.c instead (mt_conv_s8_slide below);
 *   generic C: panel[k*4 + c], 4 columns; 4x4 int32 accumulators per block;
 *   DSP (Cortex-M4/M7): per group of 4 k and column c the 4 values in
 *   order, 3 columns (panel[(k/4)*12 + c*4 + k%4]); SMLAD does 2 MACs.
 * Scratch: mt_s8_panel_bytes(K) bytes (sized for 5 columns), 4-byte aligned. */
#include "mt_kernels.h"
#include "mt_int8_dsp.h"
#include "mt_int8_slide.h"
#include "mt_int8_rv32.h"
#if defined(__ARM_FEATURE_DSP)
#define MT_S8_COLS 3
#elif defined(__riscv) && __riscv_xlen == 32 && defined(__riscv_mul)
#define MT_S8_RV32_ASM 1
#define MT_S8_COLS 5   /* the 4 x 5 assembly kernel (mt_int8_rv32.c) */
#else
#define MT_S8_COLS 4
#endif
/* columns of an accumulator block (the DSP kernel fills 3 of 4) */
#define MT_S8_ACC_COLS (MT_S8_COLS > 4 ? MT_S8_COLS : 4)

size_t mt_s8_panel_bytes(int32_t kk)
{
  return (size_t)((kk + 3) & ~3) * 5 * sizeof(int16_t);   /* the widest panel: 5 columns (rv32im) */
}

/* panel index of (k, c) */
static inline size_t mt_s8_pos(int32_t k, int32_t c)
{
#if defined(__ARM_FEATURE_DSP)
  return (size_t)(k >> 2) * (4 * MT_S8_COLS) + (size_t)c * 4 + (size_t)(k & 3);
#else
  return (size_t)k * MT_S8_COLS + (size_t)c;
#endif
}

#if defined(__ARM_FEATURE_DSP)
/* acc[r][c] for 2 rows (the row block's rows at byte offsets 0 and 4 of each
 * 16-byte group) and 3 columns; kg = groups of 4 k. A whole function in
 * assembly: the 14 loop values (6 accumulators, 2 pointers, 2 weight words
 * and their 2 sign-extended halves, one LDRD pair of panel words) take every
 * register but sp and pc, so the loop bounds live on the stack. Per group
 * 1 LDRD of weights + 4 SXTB16 + 3 LDRD of panel + 12 SMLAD = 20
 * instructions for 24 MACs; 4 groups per loop trip, then single groups.
 * LDRD needs word-aligned addresses: the weight table is emitted as int32
 * words (ops/_quant.py s8_rows_table) and the panel is 4-byte aligned. */
void mt_s8_dsp_2x3(const int8_t *wp, const int16_t *xp, int32_t kg, int32_t *acc);
#define MT_S8_DSP_GROUP \
  "ldrd r8, r9, [r0], #16\n\t"   /* row 0, row 1: k0 k2 k1 k3 bytes */ \
  "sxtb16 r10, r8\n\t"           /* row 0 (k0, k1) */ \
  "sxtb16 r8, r8, ror #8\n\t"    /* row 0 (k2, k3) */ \
  "sxtb16 r11, r9\n\t" \
  "sxtb16 r9, r9, ror #8\n\t" \
  "ldrd r12, lr, [r1], #8\n\t"   /* column 0: (k0, k1), (k2, k3) */ \
  "smlad r2, r12, r10, r2\n\t" \
  "smlad r5, r12, r11, r5\n\t" \
  "smlad r2, lr, r8, r2\n\t" \
  "smlad r5, lr, r9, r5\n\t" \
  "ldrd r12, lr, [r1], #8\n\t"   /* column 1 */ \
  "smlad r3, r12, r10, r3\n\t" \
  "smlad r6, r12, r11, r6\n\t" \
  "smlad r3, lr, r8, r3\n\t" \
  "smlad r6, lr, r9, r6\n\t" \
  "ldrd r12, lr, [r1], #8\n\t"   /* column 2 */ \
  "smlad r4, r12, r10, r4\n\t" \
  "smlad r7, r12, r11, r7\n\t" \
  "smlad r4, lr, r8, r4\n\t" \
  "smlad r7, lr, r9, r7\n\t"
__asm__(
  "\t.syntax unified\n"
  "\t.thumb\n"
  "\t.pushsection .text.mt_s8_dsp_2x3,\"ax\",%progbits\n"
  "\t.align 2\n"
  "\t.global mt_s8_dsp_2x3\n"
  "\t.thumb_func\n"
  "\t.type mt_s8_dsp_2x3, %function\n"
  "mt_s8_dsp_2x3:\n\t"
  "push {r3-r11, lr}\n\t"        /* r3 = acc, kept at [sp, #8] */
  "sub sp, sp, #8\n\t"
  "add r12, r2, r2, lsl #1\n\t"  /* a group is 24 panel bytes */
  "add r12, r1, r12, lsl #3\n\t"
  "str r12, [sp, #4]\n\t"        /* end of the panel */
  "bic r2, r2, #3\n\t"
  "add r2, r2, r2, lsl #1\n\t"
  "add lr, r1, r2, lsl #3\n\t"
  "str lr, [sp]\n\t"             /* end of the 4-group trips */
  "movs r2, #0\n\tmovs r3, #0\n\tmovs r4, #0\n\t"
  "movs r5, #0\n\tmovs r6, #0\n\tmovs r7, #0\n\t"
  "cmp r1, lr\n\t"
  "beq 2f\n"
  "1:\n\t"
  MT_S8_DSP_GROUP MT_S8_DSP_GROUP MT_S8_DSP_GROUP MT_S8_DSP_GROUP
  "ldr r12, [sp]\n\t"
  "cmp r1, r12\n\t"
  "bne 1b\n"
  "2:\n\t"
  "ldr r12, [sp, #4]\n\t"
  "cmp r1, r12\n\t"
  "beq 4f\n"
  "3:\n\t"
  MT_S8_DSP_GROUP
  "ldr r12, [sp, #4]\n\t"
  "cmp r1, r12\n\t"
  "bne 3b\n"
  "4:\n\t"
  "ldr r12, [sp, #8]\n\t"
  "stm r12, {r2, r3, r4}\n\t"
  "add r12, r12, #16\n\t"
  "stm r12, {r5, r6, r7}\n\t"
  "add sp, sp, #8\n\t"
  "pop {r3-r11, pc}\n"
  "\t.size mt_s8_dsp_2x3, .-mt_s8_dsp_2x3\n"
  "\t.popsection\n");
#undef MT_S8_DSP_GROUP

/* acc[4][4]: rows 0..3 of the block, columns 0..2 */
static void mt_s8_kernel(const int8_t *wp, const int16_t *xp, int32_t kg, int32_t acc[4][4])
{
  mt_s8_dsp_2x3(wp, xp, kg, &acc[0][0]);
  mt_s8_dsp_2x3(wp + 8, xp, kg, &acc[2][0]);
}
#elif defined(MT_S8_RV32_ASM)
/* the kernels of mt_int8_rv32.c (convs and matmul call them directly, by
 * block width; this wrapper keeps the shared matmul body, which rv32 does
 * not reach, compiling); accumulators start at 0 for convs */
static const int32_t mt_s8_zero_acc[4 * MT_S8_COLS] = {0};

static void mt_s8_kernel(const int8_t *wp, const int16_t *xp, int32_t kg, int32_t acc[4][MT_S8_ACC_COLS])
{
  mt_s8_gemm45_kernel(wp, xp, kg, acc[0], mt_s8_zero_acc);
}
#else
/* acc[r][c] = sum_k w(r, k) * panel(k, c), 4 rows x 4 columns (portable C:
 * the host and cores without the paths above): per k 4 weight + 4 panel
 * loads feed 16 MACs. GCC's pre-allocation scheduler would hoist all 16
 * weight loads of a group and spill accumulators; it is off for this
 * function. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-schedule-insns")))
#endif
static void mt_s8_kernel(const int8_t *wp, const int16_t *xp, int32_t kg, int32_t acc[4][4])
{
  int32_t a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
  int32_t a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
  const int16_t *xend = xp + (size_t)kg * 16;
  /* k = 4g + j: weight byte of row r at 4r + (0, 2, 1, 3)[j] */
#define MT_S8_K(j, o)                                                                 \
  do {                                                                                \
    const int32_t x0 = xp[4 * j], x1 = xp[4 * j + 1], x2 = xp[4 * j + 2], x3 = xp[4 * j + 3]; \
    int32_t v;                                                                        \
    v = wp[o];      a00 += v * x0; a01 += v * x1; a02 += v * x2; a03 += v * x3;       \
    v = wp[4 + o];  a10 += v * x0; a11 += v * x1; a12 += v * x2; a13 += v * x3;       \
    v = wp[8 + o];  a20 += v * x0; a21 += v * x1; a22 += v * x2; a23 += v * x3;       \
    v = wp[12 + o]; a30 += v * x0; a31 += v * x1; a32 += v * x2; a33 += v * x3;       \
  } while (0)
  while (xp < xend) {
    MT_S8_K(0, 0);
    MT_S8_K(1, 2);
    MT_S8_K(2, 1);
    MT_S8_K(3, 3);
    xp += 16;
    wp += 16;
  }
#undef MT_S8_K
  acc[0][0] = a00; acc[0][1] = a01; acc[0][2] = a02; acc[0][3] = a03;
  acc[1][0] = a10; acc[1][1] = a11; acc[1][2] = a12; acc[1][3] = a13;
  acc[2][0] = a20; acc[2][1] = a21; acc[2][2] = a22; acc[2][3] = a23;
  acc[3][0] = a30; acc[3][1] = a31; acc[3][2] = a32; acc[3][3] = a33;
}
#endif

/* Columns of the block at p0 of `total` pixels / rows of A: MT_S8_COLS; on
 * rv32 blocks of 5, the last ones of 4 where that covers the rest exactly
 * (64 = 12 * 5 + 4, 16 = 4 * 4, 128 = 24 * 5 + 2 * 4): no padded columns. */
static inline int32_t mt_s8_block_cols(size_t p0, size_t total)
{
#if defined(MT_S8_RV32_ASM)
  const size_t fours = (5 - total % 5) % 5;
  return 4 * fours <= total && p0 >= total - 4 * fours ? 4 : 5;
#else
  (void)p0; (void)total;
  return MT_S8_COLS;
#endif
}

/* How many blocks mt_s8_block_cols cuts `total` columns into (the work
 * items the _par kernels share out). */
static inline int32_t mt_s8_block_count(size_t total)
{
#if defined(MT_S8_RV32_ASM)
  const size_t fours = (5 - total % 5) % 5;
  if (4 * fours <= total) return (int32_t)((total - 4 * fours) / 5 + fours);
#endif
  return (int32_t)((total + MT_S8_COLS - 1) / MT_S8_COLS);
}

/* A core's share of a _par kernel's work: `blocks` column blocks (pixels /
 * rows of A, each filling the panel once) times `row_blocks` blocks of 4
 * rows (output channels / columns of B). Whole column blocks; only when
 * there are fewer of them than cores each is also cut into `splits` runs of
 * row blocks (whose cores then all fill its panel). Work item
 * b * splits + s is run s of column block b; this core does [lo, hi). */
typedef struct {
  int32_t splits, row_blocks, lo, hi;
} mt_s8_share_t;

static mt_s8_share_t mt_s8_share(int32_t blocks, int32_t row_blocks, mt_par_t par)
{
  mt_s8_share_t sh;
  sh.splits = 1;
  sh.row_blocks = row_blocks;
  if (blocks > 0 && blocks < par.n_cores) {
    sh.splits = par.n_cores / blocks;
    if (sh.splits > row_blocks) sh.splits = row_blocks > 0 ? row_blocks : 1;
  }
  mt_par_range(blocks * sh.splits, par, &sh.lo, &sh.hi);
  return sh;
}

/* start of run s of the row blocks cut into sh->splits runs (as mt_par_range) */
static inline int32_t mt_s8_run_start(const mt_s8_share_t *sh, int32_t s)
{
  const int32_t base = sh->row_blocks / sh->splits, extra = sh->row_blocks % sh->splits;
  return s * base + (s < extra ? s : extra);
}

/* This core's rows [*r_lo, *r_hi) (in rows, multiples of 4) of column block
 * b; 0 when it has none. */
static inline int mt_s8_share_rows(const mt_s8_share_t *sh, int32_t b, int32_t *r_lo, int32_t *r_hi)
{
  int32_t s0 = sh->lo - b * sh->splits, s1 = sh->hi - b * sh->splits;
  if (s0 < 0) s0 = 0;
  if (s1 > sh->splits) s1 = sh->splits;
  if (s0 >= s1) return 0;
  *r_lo = 4 * mt_s8_run_start(sh, s0);
  *r_hi = 4 * mt_s8_run_start(sh, s1);
  return 1;
}

/* mt_requant1 with add already holding the rounding term; the same value:
 * floor(v / 2^s) = floor(floor(v / 2^32) / 2^(s-32)) takes the high word. */
static inline int8_t mt_s8_requant(int32_t acc, int32_t mul, int64_t add_r, int32_t shift,
                                   int32_t lo, int32_t hi)
{
  const int64_t v = (int64_t)acc * mul + add_r;
  int32_t q;
  if (shift >= 32) {
    const int32_t h = (int32_t)mt_floor_shift(v, 32);
    q = h >= 0 ? h >> (shift - 32) : ~((~h) >> (shift - 32));
  } else {
    const int64_t t = mt_floor_shift(v, shift);
    q = t < lo ? lo : t > hi ? hi : (int32_t)t;
  }
  return (int8_t)(q < lo ? lo : q > hi ? hi : q);
}

typedef struct {
  int32_t shift, lo, hi;
  const int32_t *mul;
  const int64_t *add;
  int32_t nmul, nadd;
} mt_s8_rq_t;

static inline int64_t mt_s8_add_r(const mt_s8_rq_t *rq, int32_t ch)
{
  return rq->add[rq->nadd > 1 ? ch : 0] + (rq->shift > 0 ? ((int64_t)1 << (rq->shift - 1)) : 0);
}

#if defined(__ARM_FEATURE_DSP)
/* what the requantization derives from shift, lo, hi once per call */
typedef struct {
  const mt_s8_rq_t *rq;
  int64_t rnd;      /* rounding term 2^(shift-1), 0 for shift 0 */
  int mode, full;   /* shift range (above); clamp is [-128, 127] */
} mt_s8_dsp_rq_t;

static mt_s8_dsp_rq_t mt_s8_dsp_rq(const mt_s8_rq_t *rq, int32_t shift, int32_t lo, int32_t hi)
{
  mt_s8_dsp_rq_t d;
  d.rq = rq;
  d.rnd = shift > 0 ? (int64_t)1 << (shift - 1) : 0;
  d.mode = shift >= 32 ? 2 : shift > 0 ? 1 : 0;
  d.full = lo == -128 && hi == 127;
  return d;
}

/* rows' requantization constants, the int8 stores could alias *rq */
#define MT_S8_ROW_CONSTANTS                                                  \
  const int32_t shift = rq->shift, lo = rq->lo, hi = rq->hi;                 \
  const int32_t *mul = rq->mul + (rq->nmul > 1 ? ch0 : 0);                   \
  const int64_t *add = rq->add + (rq->nadd > 1 ? ch0 : 0);                   \
  const int32_t mstep = rq->nmul > 1, astep = rq->nadd > 1

/* a whole 4 x 3 block; conv: columns are adjacent pixels (cs = 1) and there
 * is no column correction; else (matmul) rows adjacent (rs = 1) */
__attribute__((always_inline)) static inline void mt_s8_store_block(
    const int32_t acc[4][4], const int32_t *sub, int32_t ch0, const mt_s8_rq_t *rq, int64_t rnd, int8_t *y,
    size_t stride, const int mode, const int full, const int conv)
{
  MT_S8_ROW_CONSTANTS;
  const int32_t s0 = conv ? 0 : sub[0], s1 = conv ? 0 : sub[1], s2 = conv ? 0 : sub[2];
  const size_t rs = conv ? stride : 1, cs = conv ? 1 : stride;
  int32_t r;
  for (r = 0; r < 4; r++, y += rs, mul += mstep, add += astep) {
    const int32_t mc = *mul;
    const int64_t ar = *add + rnd;
    y[0] = (int8_t)mt_s8_rq32(acc[r][0] - s0, mc, ar, shift, lo, hi, mode, full);
    y[cs] = (int8_t)mt_s8_rq32(acc[r][1] - s1, mc, ar, shift, lo, hi, mode, full);
    y[2 * cs] = (int8_t)mt_s8_rq32(acc[r][2] - s2, mc, ar, shift, lo, hi, mode, full);
  }
}

#define MT_S8_STORE_BLOCK(conv)                                                                   \
  do {                                                                                            \
    if (mode == 2 && full) mt_s8_store_block(acc, sub, ch0, rq, rnd, y, stride, 2, 1, conv);      \
    else if (mode == 2) mt_s8_store_block(acc, sub, ch0, rq, rnd, y, stride, 2, 0, conv);         \
    else if (full) mt_s8_store_block(acc, sub, ch0, rq, rnd, y, stride, 1, 1, conv);              \
    else mt_s8_store_block(acc, sub, ch0, rq, rnd, y, stride, 1, 0, conv);                        \
  } while (0)

/* y[r * rs + c * cs] = requant(acc[r][c] - sub[c]) of channel ch0 + r, for
 * r < nr, c < nc (sub NULL: no column correction); whole blocks with
 * shift > 0 through the specialized copies */
static void mt_s8_store(const int32_t acc[4][4], int32_t nr, int32_t nc, const int32_t *sub, int32_t ch0,
                        const mt_s8_dsp_rq_t *d, int8_t *y, size_t rs, size_t cs)
{
  const mt_s8_rq_t *rq = d->rq;
  const int mode = d->mode, full = d->full;
  const int64_t rnd = d->rnd;
  int32_t r, c;
  if (nr == 4 && nc == MT_S8_COLS && mode > 0) {
    const size_t stride = cs == 1 ? rs : cs;
    if (cs == 1 && sub == NULL) MT_S8_STORE_BLOCK(1);
    else MT_S8_STORE_BLOCK(0);
    return;
  }
  {
    MT_S8_ROW_CONSTANTS;
    for (r = 0; r < nr; r++, y += rs, mul += mstep, add += astep)
      for (c = 0; c < nc; c++)
        y[(size_t)c * cs] = (int8_t)mt_s8_rq32(acc[r][c] - (sub != NULL ? sub[c] : 0), *mul, *add + rnd, shift, lo,
                                               hi, mode, full);
  }
}
#undef MT_S8_STORE_BLOCK
#undef MT_S8_ROW_CONSTANTS
#endif

#if defined(MT_S8_RV32_ASM)
/* y[c * ystep] = mt_s8_requant(acc[c], ...) for c < n, the shift's case
 * chosen once per run. GCC's >> on negative values is arithmetic (floor, as
 * mt_floor_shift); this code is compiled by GCC for rv32 only. */
static void mt_s8_requant_run(const int32_t *acc, int32_t n, int8_t *y, size_t ystep, int32_t mc, int64_t ar,
                              const mt_s8_rq_t *rq)
{
  const int32_t lo = rq->lo, hi = rq->hi, shift = rq->shift;
  int32_t c;
  if (shift >= 32)
    for (c = 0; c < n; c++, y += ystep) {
      int32_t q = (int32_t)(((int64_t)acc[c] * mc + ar) >> 32) >> (shift - 32);
      if (q < lo) q = lo;
      if (q > hi) q = hi;
      *y = (int8_t)q;
    }
  else
    for (c = 0; c < n; c++, y += ystep) {
      int64_t t = ((int64_t)acc[c] * mc + ar) >> shift;
      if (t < lo) t = lo;
      if (t > hi) t = hi;
      *y = (int8_t)t;
    }
}
#endif

/* ---- convolution ---------------------------------------------------------- */

/* One column's run of `n` reduction elements from k: x[ic * stride] - zp,
 * or zeros when x is NULL (a tap in the padding). */
static void mt_s8_fill(int16_t *panel, int32_t c, int32_t k, int32_t n, const int8_t *x, size_t stride,
                       int32_t zp)
{
  int16_t *q = panel + mt_s8_pos(k, c);
  int32_t i = 0;
  if ((k & 3) == 0) {   /* whole groups of 4: fixed offsets */
    const size_t gstep = mt_s8_pos(4, 0), o1 = mt_s8_pos(1, 0), o2 = mt_s8_pos(2, 0), o3 = mt_s8_pos(3, 0);
    if (x != NULL) {
      const int8_t *xi = x;
      for (; i + 4 <= n; i += 4, q += gstep, xi += 4 * stride) {
        q[0] = (int16_t)(xi[0] - zp);
        q[o1] = (int16_t)(xi[stride] - zp);
        q[o2] = (int16_t)(xi[2 * stride] - zp);
        q[o3] = (int16_t)(xi[3 * stride] - zp);
      }
    } else
      for (; i + 4 <= n; i += 4, q += gstep) q[0] = q[o1] = q[o2] = q[o3] = 0;
  }
  for (; i < n; i++)   /* unaligned start or tail */
    panel[mt_s8_pos(k + i, c)] = (int16_t)(x != NULL ? x[(size_t)i * stride] - zp : 0);
}

/* im2col of output pixels p0..p0+npx-1 (flat over the output volume) of one
 * group into the panel: x - x_zp, taps in the padding 0, unused columns and
 * padded k 0. The reduction order is (tap, input channel) (the weights are
 * laid out to match), so a tap's bounds test covers a run of cg values. */
static void mt_s8_conv_panel(const int8_t *xg, const int32_t *geo, size_t p0, int32_t npx,
                             int32_t x_zp, int16_t *panel)
{
  const int32_t *in = geo + MT_CONV_IN, *out = geo + MT_CONV_OUT, *ks = geo + MT_CONV_K;
  const int32_t *st = geo + MT_CONV_STRIDE, *dl = geo + MT_CONV_DIL, *pd = geo + MT_CONV_PAD;
  const int32_t cg = geo[MT_CONV_C] / geo[MT_CONV_GROUP];
  const int32_t kk = cg * ks[0] * ks[1] * ks[2], k4 = (kk + 3) & ~3;
  const size_t in_plane = (size_t)in[0] * in[1] * in[2];
  int32_t c, kd, kh, kw, k;
  for (c = 0; c < MT_S8_COLS; c++) {
    const size_t p = p0 + (size_t)(c < npx ? c : 0);
    const int32_t ow = (int32_t)(p % (size_t)out[2]), oh = (int32_t)(p / (size_t)out[2] % (size_t)out[1]);
    const int32_t od = (int32_t)(p / ((size_t)out[2] * out[1]));
    k = 0;
    for (kd = 0; kd < ks[0]; kd++) {
      const int32_t id = od * st[0] - pd[0] + kd * dl[0];
      for (kh = 0; kh < ks[1]; kh++) {
        const int32_t ih = oh * st[1] - pd[1] + kh * dl[1];
        const int row_in = c < npx && id >= 0 && id < in[0] && ih >= 0 && ih < in[1];
        for (kw = 0; kw < ks[2]; kw++, k += cg) {
          const int32_t iw = ow * st[2] - pd[2] + kw * dl[2];
          const int8_t *xt = row_in && iw >= 0 && iw < in[2] ? xg + ((size_t)id * in[1] + ih) * in[2] + iw : NULL;
          mt_s8_fill(panel, c, k, cg, xt, in_plane, x_zp);
        }
      }
    }
    mt_s8_fill(panel, c, kk, k4 - kk, NULL, 0, 0);
  }
}

#if defined(MT_S8_SLIDE)
/* Kernel width 3, stride and dilation 1 along W, input channels per group a
 * multiple of 4 (rv32im): the sliding-window kernel of mt_int8_slide.c on a
 * band of 8 output pixels (in the panel scratch: 20 * rows * cg bytes <=
 * mt_s8_panel_bytes(3 * rows * cg)), row pairs of the same weight layout. */
static int mt_s8_slide_fits(const int32_t *geo)
{
  return geo[MT_CONV_K + 2] == 3 && geo[MT_CONV_STRIDE + 2] == 1 && geo[MT_CONV_DIL + 2] == 1 &&
         (geo[MT_CONV_C] / geo[MT_CONV_GROUP]) % 4 == 0;
}

/* Column blocks: bands of each output row, (image, group, row, band) in
 * that nesting order; this call does its share `sh` (mt_s8_share). */
static void mt_conv_s8_slide(const int8_t *x, const int8_t *wpk, int8_t *y, const int32_t *geo, int32_t x_zp,
                             const mt_s8_rq_t *rq, int16_t *band, const mt_s8_share_t *sh)
{
  const int32_t N = geo[MT_CONV_N], C = geo[MT_CONV_C], M = geo[MT_CONV_M], G = geo[MT_CONV_GROUP];
  const int32_t *in = geo + MT_CONV_IN, *out = geo + MT_CONV_OUT, *ks = geo + MT_CONV_K;
  const int32_t *st = geo + MT_CONV_STRIDE, *dl = geo + MT_CONV_DIL, *pd = geo + MT_CONV_PAD;
  const int32_t cg = C / G, mg = M / G, rows = ks[0] * ks[1], kk = cg * rows * 3;
  const size_t in_plane = (size_t)in[0] * in[1] * in[2];
  const size_t out_plane = (size_t)out[0] * out[1] * out[2];
  const size_t block_bytes = (size_t)4 * kk, group_bytes = (size_t)((mg + 3) / 4) * block_bytes;
  int32_t nb, g, od, oh, ow0, kd, kh, r0, r, r_lo = 0, r_hi = 0, acc[2 * MT_S8_SLIDE_COLS], item = 0;
  for (nb = 0; nb < N; nb++)
    for (g = 0; g < G; g++) {
      const int8_t *xg = x + ((size_t)nb * C + (size_t)g * cg) * in_plane, *wg = wpk + (size_t)g * group_bytes;
      int8_t *yg = y + ((size_t)nb * M + (size_t)g * mg) * out_plane;
      for (od = 0; od < out[0]; od++)
        for (oh = 0; oh < out[1]; oh++)
          for (ow0 = 0; ow0 < out[2]; ow0 += MT_S8_SLIDE_COLS, item++) {
            if (item * sh->splits >= sh->hi) return;
            if (!mt_s8_share_rows(sh, item, &r_lo, &r_hi)) continue;
            const int32_t npx = out[2] - ow0 < MT_S8_SLIDE_COLS ? out[2] - ow0 : MT_S8_SLIDE_COLS;
            const int32_t iw0 = ow0 - pd[2], j_lo = iw0 < 0 ? -iw0 : 0;
            const int32_t j_hi = in[2] - iw0 < 10 ? in[2] - iw0 : 10;
            const size_t ypix = ((size_t)od * out[1] + oh) * out[2] + ow0;
            int16_t *bt = band;
            for (kd = 0; kd < ks[0]; kd++) {
              const int32_t id = od * st[0] - pd[0] + kd * dl[0];
              for (kh = 0; kh < ks[1]; kh++, bt += MT_S8_SLIDE_BAND(1, cg)) {
                const int32_t ih = oh * st[1] - pd[1] + kh * dl[1];
                const int inside = id >= 0 && id < in[0] && ih >= 0 && ih < in[1];
                mt_s8_slide_band_row(bt, inside ? xg + ((size_t)id * in[1] + ih) * in[2] : NULL, cg, in_plane,
                                     iw0, j_lo, j_hi, x_zp);
              }
            }
            for (r0 = r_lo; r0 < mg && r0 < r_hi; r0 += 2) {   /* rows 2p, 2p + 1 of a block of 4: bytes 8p, 8p + 4 */
              const int32_t nr = mg - r0 < 2 ? mg - r0 : 2;
              mt_s8_slide_kernel(band, wg + (size_t)(r0 / 4) * block_bytes + (size_t)(r0 & 2) * 4, cg, rows, acc);
              for (r = 0; r < nr; r++) {
                const int32_t oc = g * mg + r0 + r, mc = rq->mul[rq->nmul > 1 ? oc : 0];
                const int64_t ar = mt_s8_add_r(rq, oc);
                mt_s8_requant_run(acc + r * MT_S8_SLIDE_COLS, npx, yg + (size_t)(r0 + r) * out_plane + ypix,
                                  1, mc, ar, rq);
              }
            }
          }
    }
}
#endif

void mt_conv_s8_gemm(const int8_t *MT_RESTRICT x, const int8_t *MT_RESTRICT wpk, int8_t *MT_RESTRICT y,
                     const int32_t *geo, int32_t x_zp,
                     const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                     int32_t shift, int32_t lo, int32_t hi, int16_t *panel)
{
  mt_conv_s8_gemm_par(x, wpk, y, geo, x_zp, mul, nmul, add, nadd, shift, lo, hi, panel, MT_PAR_SINGLE);
}

/* Work items: blocks of output pixels (mt_s8_block_cols; the sliding window:
 * bands of 8 pixels of a row) of each (image, group), in that nesting order;
 * each core does a contiguous run of them with its own `panel`, so blocks
 * keep their single-core shapes and sums. With fewer pixel blocks than cores
 * each is also cut into runs of blocks of 4 output channels (mt_s8_share). */
void mt_conv_s8_gemm_par(const int8_t *MT_RESTRICT x, const int8_t *MT_RESTRICT wpk, int8_t *MT_RESTRICT y,
                         const int32_t *geo, int32_t x_zp,
                         const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                         int32_t shift, int32_t lo, int32_t hi, int16_t *panel, mt_par_t par)
{
  const int32_t N = geo[MT_CONV_N], C = geo[MT_CONV_C], M = geo[MT_CONV_M], G = geo[MT_CONV_GROUP];
  const int32_t *in = geo + MT_CONV_IN, *out = geo + MT_CONV_OUT, *ks = geo + MT_CONV_K;
  const int32_t cg = C / G, mg = M / G, kk = cg * ks[0] * ks[1] * ks[2], k4 = (kk + 3) & ~3;
  const size_t in_plane = (size_t)in[0] * in[1] * in[2];
  const size_t out_plane = (size_t)out[0] * out[1] * out[2];
  const size_t block_bytes = (size_t)4 * k4, group_bytes = (size_t)((mg + 3) / 4) * block_bytes;
  mt_s8_rq_t rq;
  int32_t nb, g, r0, r, cols, acc[4][MT_S8_ACC_COLS], item = 0, r_lo = 0, r_hi = 0;
  mt_s8_share_t sh;
  size_t p0;
#if defined(__ARM_FEATURE_DSP)
  const mt_s8_dsp_rq_t drq = mt_s8_dsp_rq(&rq, shift, lo, hi);
#endif
  rq.shift = shift; rq.lo = lo; rq.hi = hi; rq.mul = mul; rq.add = add; rq.nmul = nmul; rq.nadd = nadd;
#if defined(MT_S8_SLIDE)
  if (mt_s8_slide_fits(geo)) {
    const int32_t bands = (out[2] + MT_S8_SLIDE_COLS - 1) / MT_S8_SLIDE_COLS;
    sh = mt_s8_share(N * G * out[0] * out[1] * bands, (mg + 3) / 4, par);
    mt_conv_s8_slide(x, wpk, y, geo, x_zp, &rq, panel, &sh);
    return;
  }
#endif
  sh = mt_s8_share(N * G * mt_s8_block_count(out_plane), (mg + 3) / 4, par);
  for (nb = 0; nb < N; nb++)
    for (g = 0; g < G; g++) {
      const int8_t *xg = x + ((size_t)nb * C + (size_t)g * cg) * in_plane;
      int8_t *yg = y + ((size_t)nb * M + (size_t)g * mg) * out_plane;
      for (p0 = 0; p0 < out_plane; p0 += (size_t)cols, item++) {
        int32_t npx;
        cols = mt_s8_block_cols(p0, out_plane);
        if (item * sh.splits >= sh.hi) return;
        if (!mt_s8_share_rows(&sh, item, &r_lo, &r_hi)) continue;
        npx = out_plane - p0 < (size_t)cols ? (int32_t)(out_plane - p0) : cols;
        mt_s8_conv_panel(xg, geo, p0, npx, x_zp, panel);
        for (r0 = r_lo; r0 < mg && r0 < r_hi; r0 += 4) {
          const int32_t nr = mg - r0 < 4 ? mg - r0 : 4;
          const int8_t *wb = wpk + (size_t)g * group_bytes + (size_t)(r0 / 4) * block_bytes;
#if defined(MT_S8_RV32_ASM)
          (cols == 5 ? mt_s8_gemm45_kernel : mt_s8_gemm44_kernel)(wb, panel, k4 / 4, acc[0], mt_s8_zero_acc);
#else
          mt_s8_kernel(wb, panel, k4 / 4, acc);
#endif
#if defined(__ARM_FEATURE_DSP)
          (void)r;
          mt_s8_store((const int32_t (*)[4])acc, nr, npx, NULL, g * mg + r0, &drq, yg + (size_t)r0 * out_plane + p0,
                      out_plane, 1);
#else
          for (r = 0; r < nr; r++) {
            const int32_t oc = g * mg + r0 + r, mc = mul[nmul > 1 ? oc : 0];
            const int64_t ar = mt_s8_add_r(&rq, oc);
            int8_t *yo = yg + (size_t)(r0 + r) * out_plane + p0;
#if defined(MT_S8_RV32_ASM)
            mt_s8_requant_run(acc[r], npx, yo, 1, mc, ar, &rq);
#else
            for (int32_t c = 0; c < npx; c++) yo[c] = mt_s8_requant(acc[r][c], mc, ar, shift, lo, hi);
#endif
          }
#endif
        }
      }
    }
}

#if defined(MT_S8_RV32_ASM)
/* ---- matrix product, rv32im ------------------------------------------------ */

/* One row of A into panel column q (q[t * 5] = a[t] - zp, padded k 0);
 * returns the sum of the values written (the b_zp correction), same pass. */
static int32_t mt_s8_fill_row(int16_t *q, const int8_t *a, int32_t k, int32_t k4, int32_t zp)
{
  const int32_t cols = MT_S8_COLS;
  int32_t t, s = 0;
  for (t = 0; t + 4 <= k; t += 4, q += 4 * cols) {
    const int32_t v0 = a[t] - zp, v1 = a[t + 1] - zp, v2 = a[t + 2] - zp, v3 = a[t + 3] - zp;
    q[0] = (int16_t)v0; q[cols] = (int16_t)v1; q[2 * cols] = (int16_t)v2; q[3 * cols] = (int16_t)v3;
    s += v0 + v1 + v2 + v3;
  }
  for (; t < k; t++, q += cols) {
    *q = (int16_t)(a[t] - zp);
    s += *q;
  }
  for (; t < k4; t++, q += cols) *q = 0;
  return s;
}

/* Blocks of 5 rows of A (4 x 5 kernel), the last ones of 4 where that covers
 * m exactly (mt_s8_block_cols; 128 = 24 * 5 + 2 * 4). The accumulators start
 * at -zb * sum(a - za) of their row of A. Work items: the blocks of each
 * batch matrix in order, rows = blocks of 4 columns of B; this call does
 * its share `sh` (mt_s8_share). */
static void mt_matmul_s8_rv32(const int8_t *a, const int8_t *bpk, int8_t *y, int32_t batch, const int32_t *a_off,
                              const int32_t *b_off, int32_t m, int32_t k, int32_t n, int32_t a_zp, int32_t b_zp,
                              const mt_s8_rq_t *rq, int16_t *panel, const mt_s8_share_t *sh)
{
  const int32_t k4 = (k + 3) & ~3;
  const size_t block_bytes = (size_t)4 * k4;
  int32_t bi, i0, j0, c, r, cols, acc[20], init[20] = {0}, item = 0, j_lo = 0, j_hi = 0;   /* column 4 stays 0 for 4-column blocks */
  for (bi = 0; bi < batch; bi++) {
    const int8_t *ab = a + a_off[bi], *bb = bpk + b_off[bi];
    int8_t *yb = y + (size_t)bi * m * n;
    for (i0 = 0; i0 < m; i0 += cols, item++) {
      int32_t ni;
      cols = mt_s8_block_cols((size_t)i0, (size_t)m);
      if (item * sh->splits >= sh->hi) return;
      if (!mt_s8_share_rows(sh, item, &j_lo, &j_hi)) continue;
      ni = m - i0 < cols ? m - i0 : cols;
      for (c = 0; c < cols; c++) {
        int32_t corr = 0;
        if (c < ni)
          corr = -mt_s8_fill_row(panel + c, ab + (size_t)(i0 + c) * k, k, k4, a_zp) * b_zp;
        else
          mt_s8_fill(panel, c, 0, k4, NULL, 0, 0);
        for (r = 0; r < 4; r++) init[r * 5 + c] = corr;
      }
      for (j0 = j_lo; j0 < n && j0 < j_hi; j0 += 4) {
        const int32_t nj = n - j0 < 4 ? n - j0 : 4;
        const int8_t *wb = bb + (size_t)(j0 / 4) * block_bytes;
        if (cols == 5)
          mt_s8_gemm45_kernel(wb, panel, k4 / 4, acc, init);
        else
          mt_s8_gemm44_kernel(wb, panel, k4 / 4, acc, init);
        for (r = 0; r < nj; r++) {
          const int32_t j = j0 + r;
          mt_s8_requant_run(acc + r * 5, ni, yb + (size_t)i0 * n + j, (size_t)n, rq->mul[rq->nmul > 1 ? j : 0],
                            mt_s8_add_r(rq, j), rq);
        }
      }
    }
  }
}
#endif

/* ---- matrix product ------------------------------------------------------- */

#if defined(__ARM_FEATURE_DSP)
/* Panel column c = a[0..k) - zp (a row of A, contiguous) and the sum of
 * those values. Per 4 k: one (unaligned) word load, SXTB16 to (a0, a2),
 * (a1, a3), PKHBT / PKHTB to the panel's pairs (a0, a1), (a2, a3), SSUB16 of
 * the zero point (|a - zp| <= 255 fits int16), SMLAD by (1, 1) for the sum. */
static int32_t mt_s8_fill_sum(int16_t *panel, int32_t c, const int8_t *a, int32_t k, int32_t zp)
{
  int16_t *q = panel + mt_s8_pos(0, c);
  const uint32_t zz = ((uint32_t)zp & 0xffffu) * 0x10001u, ones = 0x10001u;
  int32_t sum = 0, i = 0;
  for (; i + 4 <= k; i += 4, q += 4 * MT_S8_COLS) {
    uint32_t w, e, o, lo, hi;
    memcpy(&w, a + i, 4);
    __asm__("sxtb16 %[e], %[w]\n\t"
            "sxtb16 %[o], %[w], ror #8\n\t"
            "pkhbt %[lo], %[e], %[o], lsl #16\n\t"
            "pkhtb %[hi], %[o], %[e], asr #16\n\t"
            "ssub16 %[lo], %[lo], %[zz]\n\t"
            "ssub16 %[hi], %[hi], %[zz]\n\t"
            "smlad %[sum], %[lo], %[ones], %[sum]\n\t"
            "smlad %[sum], %[hi], %[ones], %[sum]"
            : [e] "=&r"(e), [o] "=&r"(o), [lo] "=&r"(lo), [hi] "=&r"(hi), [sum] "+r"(sum)
            : [w] "r"(w), [zz] "r"(zz), [ones] "r"(ones));
    memcpy(q, &lo, 4);
    memcpy(q + 2, &hi, 4);
  }
  for (; i < k; i++) {
    const int32_t v = a[i] - zp;
    panel[mt_s8_pos(i, c)] = (int16_t)v;
    sum += v;
  }
  return sum;
}
#endif

void mt_matmul_s8_gemm(const int8_t *MT_RESTRICT a, const int8_t *MT_RESTRICT bpk, int8_t *MT_RESTRICT y,
                       int32_t batch, const int32_t *a_off, const int32_t *b_off,
                       int32_t m, int32_t k, int32_t n, int32_t a_zp, int32_t b_zp,
                       const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                       int32_t shift, int32_t lo, int32_t hi, int16_t *panel)
{
  mt_matmul_s8_gemm_par(a, bpk, y, batch, a_off, b_off, m, k, n, a_zp, b_zp, mul, nmul, add, nadd, shift, lo, hi,
                        panel, MT_PAR_SINGLE);
}

/* Work items: blocks of rows of A (mt_s8_block_cols) of each batch matrix, in
 * that order, each core a contiguous run of them with its own `panel`; with
 * fewer blocks than cores also runs of blocks of 4 columns of B
 * (mt_s8_share). */
void mt_matmul_s8_gemm_par(const int8_t *MT_RESTRICT a, const int8_t *MT_RESTRICT bpk, int8_t *MT_RESTRICT y,
                           int32_t batch, const int32_t *a_off, const int32_t *b_off,
                           int32_t m, int32_t k, int32_t n, int32_t a_zp, int32_t b_zp,
                           const int32_t *mul, int32_t nmul, const int64_t *add, int32_t nadd,
                           int32_t shift, int32_t lo, int32_t hi, int16_t *panel, mt_par_t par)
{
  const int32_t k4 = (k + 3) & ~3;
  const size_t block_bytes = (size_t)4 * k4;
  mt_s8_rq_t rq;
  int32_t bi, i0, j0, c, r, t, acc[4][MT_S8_ACC_COLS], item = 0, j_lo = 0, j_hi = 0;
  const mt_s8_share_t sh = mt_s8_share(batch * mt_s8_block_count((size_t)m), (n + 3) / 4, par);
  rq.shift = shift; rq.lo = lo; rq.hi = hi; rq.mul = mul; rq.add = add; rq.nmul = nmul; rq.nadd = nadd;
#if defined(__ARM_FEATURE_DSP)
  const mt_s8_dsp_rq_t drq = mt_s8_dsp_rq(&rq, shift, lo, hi);
#endif
#if defined(MT_S8_RV32_ASM)
  mt_matmul_s8_rv32(a, bpk, y, batch, a_off, b_off, m, k, n, a_zp, b_zp, &rq, panel, &sh);
  return;
#endif
  for (bi = 0; bi < batch; bi++) {
    const int8_t *ab = a + a_off[bi], *bb = bpk + b_off[bi];
    int8_t *yb = y + (size_t)bi * m * n;
    for (i0 = 0; i0 < m; i0 += MT_S8_COLS, item++) {
      const int32_t ni = m - i0 < MT_S8_COLS ? m - i0 : MT_S8_COLS;
      int32_t rowsum[MT_S8_COLS];
      if (item * sh.splits >= sh.hi) return;
      if (!mt_s8_share_rows(&sh, item, &j_lo, &j_hi)) continue;
      /* panel = rows i0.. of A minus a_zp; rowsum for the b_zp correction:
       * sum (a - za)(b - zb) = sum (a - za) b - zb * sum (a - za) */
      for (c = 0; c < MT_S8_COLS; c++) {
        const int8_t *ar = c < ni ? ab + (size_t)(i0 + c) * k : NULL;
        int32_t s = 0;
#if defined(__ARM_FEATURE_DSP)
        (void)t;
        if (ar != NULL) s = mt_s8_fill_sum(panel, c, ar, k, a_zp);
        else mt_s8_fill(panel, c, 0, k, NULL, 1, 0);
        mt_s8_fill(panel, c, k, k4 - k, NULL, 0, 0);
        rowsum[c] = s * b_zp;
#else
        mt_s8_fill(panel, c, 0, k, ar, 1, a_zp);
        mt_s8_fill(panel, c, k, k4 - k, NULL, 0, 0);
        if (ar != NULL && b_zp != 0)
          for (t = 0; t < k; t++) s += ar[t];
        rowsum[c] = (s - (ar != NULL ? a_zp * k : 0)) * b_zp;
#endif
      }
      for (j0 = j_lo; j0 < n && j0 < j_hi; j0 += 4) {
        const int32_t nj = n - j0 < 4 ? n - j0 : 4;
        mt_s8_kernel(bb + (size_t)(j0 / 4) * block_bytes, panel, k4 / 4, acc);
#if defined(__ARM_FEATURE_DSP)
        (void)r;
        mt_s8_store((const int32_t (*)[4])acc, nj, ni, rowsum, j0, &drq, yb + (size_t)i0 * n + j0, 1, (size_t)n);
#else
        for (r = 0; r < nj; r++) {
          const int32_t j = j0 + r, mc = mul[nmul > 1 ? j : 0];
          const int64_t ar = mt_s8_add_r(&rq, j);
          for (c = 0; c < ni; c++)
            yb[(size_t)(i0 + c) * n + j] = mt_s8_requant(acc[r][c] - rowsum[c], mc, ar, shift, lo, hi);
        }
#endif
      }
    }
  }
}
