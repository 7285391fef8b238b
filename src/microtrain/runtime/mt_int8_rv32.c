/* The 4 x 5 and 4 x 4 int8 GEMM kernels of mt_int8_rv32.h (the same panel
 * of 5 int16 per k; n = 4 leaves column 4 out). Per k: 4 lb + n lh + 4n mul
 * + 4n add for 4n MACs (2.45 instructions per MAC for n = 5, 2.5 for n = 4);
 * two groups of 4 k per loop trip. */
#include "mt_int8_rv32.h"

#if defined(__riscv) && __riscv_xlen == 32 && defined(__riscv_mul)
/* Registers (all 28 that are neither zero, sp, gp nor tp): a0 weights, a1
 * panel, a2 a3 a6 a7 the weights of rows 0..3 for one k, a5 a panel value,
 * a4 the product; accumulators (column 4 unused for n = 4) row 0 s0..s4,
 * row 1 s5..s9, row 2 s10 s11 t0..t2, row 3 t3..t6 ra, loaded from init
 * first. Stack (frame 64 bytes): 52 acc, 56 panel end. An odd number of
 * groups enters the loop at its second half. */
__asm__(
    /* one k: weight byte wo of each row, n panel values from byte xo */
    "  .macro MTG_K wo, xo, n\n"
    "  lb a2, \\wo(a0); lb a3, \\wo+4(a0); lb a6, \\wo+8(a0); lb a7, \\wo+12(a0)\n"
    "  lh a5, \\xo+0(a1); mul a4, a2, a5; add s0, s0, a4; mul a4, a3, a5; add s5, s5, a4; mul a4, a6, a5; add s10, s10, a4; mul a4, a7, a5; add t3, t3, a4\n"
    "  lh a5, \\xo+2(a1); mul a4, a2, a5; add s1, s1, a4; mul a4, a3, a5; add s6, s6, a4; mul a4, a6, a5; add s11, s11, a4; mul a4, a7, a5; add t4, t4, a4\n"
    "  lh a5, \\xo+4(a1); mul a4, a2, a5; add s2, s2, a4; mul a4, a3, a5; add s7, s7, a4; mul a4, a6, a5; add t0, t0, a4; mul a4, a7, a5; add t5, t5, a4\n"
    "  lh a5, \\xo+6(a1); mul a4, a2, a5; add s3, s3, a4; mul a4, a3, a5; add s8, s8, a4; mul a4, a6, a5; add t1, t1, a4; mul a4, a7, a5; add t6, t6, a4\n"
    "  .if \\n == 5\n"
    "  lh a5, \\xo+8(a1); mul a4, a2, a5; add s4, s4, a4; mul a4, a3, a5; add s9, s9, a4; mul a4, a6, a5; add t2, t2, a4; mul a4, a7, a5; add ra, ra, a4\n"
    "  .endif\n"
    "  .endm\n"
    /* 4 k: weight bytes in the order k0 k2 k1 k3 */
    "  .macro MTG_GROUP wo, xo, n\n"
    "  MTG_K \\wo, \\xo, \\n; MTG_K \\wo+2, \\xo+10, \\n; MTG_K \\wo+1, \\xo+20, \\n; MTG_K \\wo+3, \\xo+30, \\n\n"
    "  .endm\n"
    "  .macro MTG_FUNC name, n\n"
    "  .pushsection .text.\\name,\"ax\",@progbits\n"
    "  .globl \\name\n"
    "  .type \\name, @function\n"
    "\\name:\n"
    "  addi sp, sp, -64\n"
    "  sw ra, 0(sp); sw s0, 4(sp); sw s1, 8(sp); sw s2, 12(sp); sw s3, 16(sp); sw s4, 20(sp); sw s5, 24(sp); sw s6, 28(sp); sw s7, 32(sp); sw s8, 36(sp); sw s9, 40(sp); sw s10, 44(sp); sw s11, 48(sp)\n"
    "  sw a3, 52(sp)\n"
    "  lw s0, 0(a4); lw s1, 4(a4); lw s2, 8(a4); lw s3, 12(a4); lw s4, 16(a4); lw s5, 20(a4); lw s6, 24(a4); lw s7, 28(a4); lw s8, 32(a4); lw s9, 36(a4); lw s10, 40(a4); lw s11, 44(a4); lw t0, 48(a4); lw t1, 52(a4); lw t2, 56(a4); lw t3, 60(a4); lw t4, 64(a4); lw t5, 68(a4); lw t6, 72(a4); lw ra, 76(a4)\n"
    "  slli a4, a2, 5; slli a5, a2, 3; add a4, a4, a5; add a4, a4, a1; sw a4, 56(sp)\n"
    "  andi a4, a2, 1; beqz a4, 1f\n"
    "  addi a0, a0, -16; addi a1, a1, -40\n"
    "  j 2f\n"
    "1:\n"
    "  MTG_GROUP 0, 0, \\n\n"
    "2:\n"
    "  MTG_GROUP 16, 40, \\n\n"
    "  addi a0, a0, 32; addi a1, a1, 80\n"
    "  lw a4, 56(sp); bltu a1, a4, 1b\n"
    "  lw a4, 52(sp)\n"
    "  sw s0, 0(a4); sw s1, 4(a4); sw s2, 8(a4); sw s3, 12(a4); sw s4, 16(a4); sw s5, 20(a4); sw s6, 24(a4); sw s7, 28(a4); sw s8, 32(a4); sw s9, 36(a4); sw s10, 40(a4); sw s11, 44(a4); sw t0, 48(a4); sw t1, 52(a4); sw t2, 56(a4); sw t3, 60(a4); sw t4, 64(a4); sw t5, 68(a4); sw t6, 72(a4); sw ra, 76(a4)\n"
    "  lw ra, 0(sp); lw s0, 4(sp); lw s1, 8(sp); lw s2, 12(sp); lw s3, 16(sp); lw s4, 20(sp); lw s5, 24(sp); lw s6, 28(sp); lw s7, 32(sp); lw s8, 36(sp); lw s9, 40(sp); lw s10, 44(sp); lw s11, 48(sp)\n"
    "  addi sp, sp, 64\n"
    "  ret\n"
    "  .size \\name, .-\\name\n"
    "  .popsection\n"
    "  .endm\n"
    "  MTG_FUNC mt_s8_gemm45_kernel, 5\n"
    "  MTG_FUNC mt_s8_gemm44_kernel, 4\n"
    "  .purgem MTG_FUNC\n"
    "  .purgem MTG_GROUP\n"
    "  .purgem MTG_K\n");
#endif
