/* microtrain kernels: norm family. Included through mt_kernels.h. */
#ifndef MT_NORM_H
#define MT_NORM_H

#endif
