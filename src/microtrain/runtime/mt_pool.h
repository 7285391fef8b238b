/* microtrain kernels: pool family. Included through mt_kernels.h. */
#ifndef MT_POOL_H
#define MT_POOL_H

#endif
