/* microtrain kernels: reduce family. Included through mt_kernels.h. */
#ifndef MT_REDUCE_H
#define MT_REDUCE_H

#endif
