/* microtrain kernels: softmax family. Included through mt_kernels.h. */
#ifndef MT_SOFTMAX_H
#define MT_SOFTMAX_H

#endif
