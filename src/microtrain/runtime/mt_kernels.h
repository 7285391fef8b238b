/* microtrain kernel library: plain C99, no dynamic allocation, every buffer
 * passed in by the caller. Naming: mt_<op>_<dtype>[_<variant>].
 * Shapes are int32_t; tensors are dense row-major (NCHW for images). */
#ifndef MT_KERNELS_H
#define MT_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 199901L
#define MT_RESTRICT restrict
#else
#define MT_RESTRICT
#endif

/* Largest tensor rank the generic (strided) kernels handle. */
#define MT_MAX_RANK 8

#include "mt_parallel.h"
#include "mt_int8.h"        /* first: its requantization rule is used by the integer attention headers */
#include "mt_eltwise.h"
#include "mt_conv.h"
#include "mt_conv_fma.h"
#include "mt_matmul.h"
#include "mt_norm.h"
#include "mt_pool.h"
#include "mt_softmax.h"
#include "mt_int_attn.h"
#include "mt_pulp_int.h"
#include "mt_attention.h"
#include "mt_ita.h"
#include "mt_reduce.h"
#include "mt_shape.h"
#include "mt_train.h"

#endif
