/* microtrain kernels: driver of the ITA attention accelerator (docs/ita.md).
 * Included through mt_kernels.h. Register map: accel/ita/registers.py. */
#ifndef MT_ITA_H
#define MT_ITA_H

#define MT_ITA_BASE 0x40000000u
#define MT_ITA_START 0
#define MT_ITA_STATUS 1
#define MT_ITA_ERROR 2
#define MT_ITA_REG_X 8
#define MT_ITA_REG_ACC 9
#define MT_ITA_REG_TABLE 10          /* first register the job table is copied to */
#define MT_ITA_TABLE_WORDS 82        /* len(registers.TABLE_FIELDS) */
#define MT_ITA_BUSY 0
#define MT_ITA_DONE 1

/* One register value: an address or a 32-bit integer (ilp32: both 4 bytes). */
typedef union { const void *p; int32_t i; } mt_ita_word_t;

/* 0, or the ERROR register of the job the device rejected. */
extern volatile int32_t mt_ita_error;

/* Multi-head attention block on ITA: acc (s x eo int32) is zeroed, each of
 * `heads` jobs (MT_ITA_TABLE_WORDS words each, compiler-made) adds its head's
 * output-projection share into acc; then y = po's requant (and bias stage) of
 * acc, as mt_qmhsa_s8 ends. Returns 0 or the device's error code. */
int32_t mt_ita_mhsa_s8(const int8_t *x, int8_t *y, int32_t *acc, int32_t s, int32_t eo, int32_t heads,
                       const mt_ita_word_t *jobs, const mt_qproj_t *po);

#endif
