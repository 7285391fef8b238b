/* microtrain kernels: conv family. Included through mt_kernels.h. */
#ifndef MT_CONV_H
#define MT_CONV_H

#endif
