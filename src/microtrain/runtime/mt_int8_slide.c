/* Sliding-window int8 conv core (mt_int8_slide.h): the band fill (C) and,
 * on rv32im, the 2 x 8 accumulator kernel in assembly. */
#include "mt_int8_slide.h"

#include <string.h>

void mt_s8_slide_band_row(int16_t *band, const int8_t *row, int32_t cg, size_t plane,
                          int32_t iw0, int32_t j_lo, int32_t j_hi, int32_t x_zp)
{
  int32_t ic, j;
  if (row == NULL || j_lo >= j_hi) {
    memset(band, 0, (size_t)cg * 10 * sizeof(int16_t));
    return;
  }
  for (ic = 0; ic < cg; ic++) {
    int16_t *q = band + (ic >> 2) * 40 + (ic & 3);
    const int8_t *p = row + ((size_t)ic * plane + (size_t)(iw0 + j_lo));
    int16_t *d = q + 4 * j_lo;
    /* columns j_lo .. j_hi - 1 at fixed offsets (entering at the count),
     * then the columns in the padding */
    switch (j_hi - j_lo) {
    case 10: d[36] = (int16_t)(p[9] - x_zp); /* fall through */
    case 9: d[32] = (int16_t)(p[8] - x_zp);  /* fall through */
    case 8: d[28] = (int16_t)(p[7] - x_zp);  /* fall through */
    case 7: d[24] = (int16_t)(p[6] - x_zp);  /* fall through */
    case 6: d[20] = (int16_t)(p[5] - x_zp);  /* fall through */
    case 5: d[16] = (int16_t)(p[4] - x_zp);  /* fall through */
    case 4: d[12] = (int16_t)(p[3] - x_zp);  /* fall through */
    case 3: d[8] = (int16_t)(p[2] - x_zp);   /* fall through */
    case 2: d[4] = (int16_t)(p[1] - x_zp);   /* fall through */
    default: d[0] = (int16_t)(p[0] - x_zp);
    }
    for (j = 0; j < j_lo; j++) q[4 * j] = 0;
    for (j = j_hi; j < 10; j++) q[4 * j] = 0;
  }
}

#if defined(MT_S8_SLIDE)
/* Registers (all 28 that are neither zero, sp, gp nor tp): a0 band, a1 a2 a3
 * the weights of kw = 0, 1, 2 (4 * cg bytes apart), a5 a band value, a4 the
 * product; the kw weights of rows 0 / 1: a6 a7, t0 t1, t2 ra; accumulators
 * row 0 s0..s7, row 1 s8..s11 t3..t6. Per input channel: 6 lb + 10 lh + 48
 * mul + 48 add for 48 MACs. Loop state on the stack (frame 80 bytes):
 * 52 acc, 56 tap rows left, 60 band end of this row, 64 band bytes per row
 * (20 cg), 68 weight bytes per kw (4 cg), 72 cg & 4 (odd number of groups of
 * 4 channels: enter the two-group loop at its second half). */
__asm__(
    "  .pushsection .text.mt_s8_slide_kernel,\"ax\",@progbits\n"
    "  .globl mt_s8_slide_kernel\n"
    "  .type mt_s8_slide_kernel, @function\n"
    "  .macro MTSL_MAC wa, wb, acc0, acc1\n"
    "  mul a4, \\wa, a5; add \\acc0, \\acc0, a4; mul a4, \\wb, a5; add \\acc1, \\acc1, a4\n"
    "  .endm\n"
    /* one input channel: its 6 weights (byte wo of each kw's group of 4
       channels, row 1 at +4) and its 10 band values (bo, 8 bytes apart) */
    "  .macro MTSL_ICM bo, wo\n"
    "  lb a6, \\wo(a1); lb a7, \\wo+4(a1); lb t0, \\wo(a2); lb t1, \\wo+4(a2); lb t2, \\wo(a3); lb ra, \\wo+4(a3)\n"
    "  lh a5, \\bo+0(a0); MTSL_MAC a6, a7, s0, s8\n"
    "  lh a5, \\bo+8(a0); MTSL_MAC a6, a7, s1, s9; MTSL_MAC t0, t1, s0, s8\n"
    "  lh a5, \\bo+16(a0); MTSL_MAC a6, a7, s2, s10; MTSL_MAC t0, t1, s1, s9; MTSL_MAC t2, ra, s0, s8\n"
    "  lh a5, \\bo+24(a0); MTSL_MAC a6, a7, s3, s11; MTSL_MAC t0, t1, s2, s10; MTSL_MAC t2, ra, s1, s9\n"
    "  lh a5, \\bo+32(a0); MTSL_MAC a6, a7, s4, t3; MTSL_MAC t0, t1, s3, s11; MTSL_MAC t2, ra, s2, s10\n"
    "  lh a5, \\bo+40(a0); MTSL_MAC a6, a7, s5, t4; MTSL_MAC t0, t1, s4, t3; MTSL_MAC t2, ra, s3, s11\n"
    "  lh a5, \\bo+48(a0); MTSL_MAC a6, a7, s6, t5; MTSL_MAC t0, t1, s5, t4; MTSL_MAC t2, ra, s4, t3\n"
    "  lh a5, \\bo+56(a0); MTSL_MAC a6, a7, s7, t6; MTSL_MAC t0, t1, s6, t5; MTSL_MAC t2, ra, s5, t4\n"
    "  lh a5, \\bo+64(a0); MTSL_MAC t0, t1, s7, t6; MTSL_MAC t2, ra, s6, t5\n"
    "  lh a5, \\bo+72(a0); MTSL_MAC t2, ra, s7, t6\n"
    "  .endm\n"
    /* 4 channels: weight bytes in the order k0 k2 k1 k3 */
    "  .macro MTSL_GROUP bo, wo\n"
    "  MTSL_ICM \\bo, \\wo; MTSL_ICM \\bo+2, \\wo+2; MTSL_ICM \\bo+4, \\wo+1; MTSL_ICM \\bo+6, \\wo+3\n"
    "  .endm\n"
    "mt_s8_slide_kernel:\n"
    "  addi sp, sp, -80\n"
    "  sw ra, 0(sp); sw s0, 4(sp); sw s1, 8(sp); sw s2, 12(sp); sw s3, 16(sp); sw s4, 20(sp); sw s5, 24(sp); sw s6, 28(sp); sw s7, 32(sp); sw s8, 36(sp); sw s9, 40(sp); sw s10, 44(sp); sw s11, 48(sp)\n"
    "  sw a4, 52(sp); sw a3, 56(sp)\n"
    "  slli a5, a2, 2; sw a5, 68(sp)\n"
    "  slli a4, a2, 4; add a4, a4, a5; sw a4, 64(sp)\n"
    "  andi a4, a2, 4; sw a4, 72(sp)\n"
    "  li s0, 0; li s1, 0; li s2, 0; li s3, 0; li s4, 0; li s5, 0; li s6, 0; li s7, 0; li s8, 0; li s9, 0; li s10, 0; li s11, 0; li t3, 0; li t4, 0; li t5, 0; li t6, 0\n"
    ".Lmtsl_row:\n"
    "  lw a5, 68(sp); add a2, a1, a5; add a3, a2, a5\n"
    "  lw a4, 64(sp); add a4, a0, a4; sw a4, 60(sp)\n"
    "  lw a4, 72(sp); beqz a4, .Lmtsl_loop\n"
    "  addi a0, a0, -80; addi a1, a1, -16; addi a2, a2, -16; addi a3, a3, -16\n"
    "  j .Lmtsl_half\n"
    ".Lmtsl_loop:\n"
    "  MTSL_GROUP 0, 0\n"
    ".Lmtsl_half:\n"
    "  MTSL_GROUP 80, 16\n"
    "  addi a0, a0, 160; addi a1, a1, 32; addi a2, a2, 32; addi a3, a3, 32\n"
    "  lw a4, 60(sp); bltu a0, a4, .Lmtsl_loop\n"
    /* the next tap row's kw = 0 weights follow this row's kw = 2 ones */
    "  mv a1, a3\n"
    "  lw a4, 56(sp); addi a4, a4, -1; sw a4, 56(sp); bnez a4, .Lmtsl_row\n"
    "  lw a4, 52(sp)\n"
    "  sw s0, 0(a4); sw s1, 4(a4); sw s2, 8(a4); sw s3, 12(a4); sw s4, 16(a4); sw s5, 20(a4); sw s6, 24(a4); sw s7, 28(a4); sw s8, 32(a4); sw s9, 36(a4); sw s10, 40(a4); sw s11, 44(a4); sw t3, 48(a4); sw t4, 52(a4); sw t5, 56(a4); sw t6, 60(a4)\n"
    "  lw ra, 0(sp); lw s0, 4(sp); lw s1, 8(sp); lw s2, 12(sp); lw s3, 16(sp); lw s4, 20(sp); lw s5, 24(sp); lw s6, 28(sp); lw s7, 32(sp); lw s8, 36(sp); lw s9, 40(sp); lw s10, 44(sp); lw s11, 48(sp)\n"
    "  addi sp, sp, 80\n"
    "  ret\n"
    "  .size mt_s8_slide_kernel, .-mt_s8_slide_kernel\n"
    "  .purgem MTSL_GROUP\n"
    "  .purgem MTSL_ICM\n"
    "  .purgem MTSL_MAC\n"
    "  .popsection\n");
#endif
