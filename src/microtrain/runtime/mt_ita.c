/* Driver of the ITA attention accelerator: program one job per head through
 * the memory-mapped register window, start it, wait for DONE. */
#include "mt_kernels.h"

volatile int32_t mt_ita_error;

#define MT_ITA_REG(i) (((volatile uint32_t *)(uintptr_t)MT_ITA_BASE)[(i)])

int32_t mt_ita_mhsa_s8(const int8_t *x, int8_t *y, int32_t *acc, int32_t s, int32_t eo, int32_t heads,
                       const mt_ita_word_t *jobs, const mt_qproj_t *po)
{
  int32_t hd, i;
  uint32_t status;
  for (i = 0; i < s * eo; i++) acc[i] = 0;
  for (hd = 0; hd < heads; hd++) {
    const mt_ita_word_t *job = jobs + (size_t)hd * MT_ITA_TABLE_WORDS;
    MT_ITA_REG(MT_ITA_REG_X) = (uint32_t)(uintptr_t)x;
    MT_ITA_REG(MT_ITA_REG_ACC) = (uint32_t)(uintptr_t)acc;
    for (i = 0; i < MT_ITA_TABLE_WORDS; i++) MT_ITA_REG(MT_ITA_REG_TABLE + i) = (uint32_t)job[i].i;
    MT_ITA_REG(MT_ITA_START) = 1u;
    do status = MT_ITA_REG(MT_ITA_STATUS); while (status == MT_ITA_BUSY);
    if (status != MT_ITA_DONE) {
      mt_ita_error = (int32_t)MT_ITA_REG(MT_ITA_ERROR);
      return mt_ita_error;
    }
  }
  mt_qproj_out_rows(acc, s, eo, po, y);
  return 0;
}
