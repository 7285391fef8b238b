/* microtrain kernels: matmul family. Included through mt_kernels.h. */
#ifndef MT_MATMUL_H
#define MT_MATMUL_H

#endif
