/* rv32im int8 GEMM core in assembly (runtime/mt_int8_rv32.c), used by
 * mt_int8_gemm.c: 4 rows (the s8_rows_layout weight blocks) x 5 or 4
 * columns (the int16 panel). */
#ifndef MT_INT8_RV32_H
#define MT_INT8_RV32_H

#include <stdint.h>

#if defined(__riscv) && __riscv_xlen == 32 && defined(__riscv_mul)
/* acc[r * 5 + c] = init[r * 5 + c] + sum_k w(r, k) * panel[k * 5 + c] for
 * k < 4 * kg (kg >= 1):
 * wp the 4-row weight block (16 bytes per group of 4 k, row r at byte 4r,
 * bytes in the order k0 k2 k1 k3), xp the panel (5 int16 per k). */
void mt_s8_gemm45_kernel(const int8_t *wp, const int16_t *xp, int32_t kg, int32_t *acc,
                         const int32_t *init);
/* The same for columns 0..3 of that panel (for blocks of 4 pixels / rows
 * of A); column 4 of acc is init's, passed through. */
void mt_s8_gemm44_kernel(const int8_t *wp, const int16_t *xp, int32_t kg, int32_t *acc,
                         const int32_t *init);
#endif

#endif
