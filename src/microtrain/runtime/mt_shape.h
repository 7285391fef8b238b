/* microtrain kernels: shape family. Included through mt_kernels.h. */
#ifndef MT_SHAPE_H
#define MT_SHAPE_H

#endif
