/* microtrain kernels: shape family (data movement). Included through mt_kernels.h.
 * All kernels here are dtype-agnostic: elements are moved as `elem_size`-byte
 * blocks, so the same code serves float32, int64 indices and int8 tensors.
 * Inputs and outputs never alias. Shapes and strides count elements. */
#ifndef MT_SHAPE_H
#define MT_SHAPE_H

/* y[i] = x[in_offset + sum_d i_d * in_strides[d]] for every row-major index i
 * of out_shape (ndim entries, ndim <= MT_MAX_RANK). Strides may be negative
 * (reversed slices) or 0 (broadcast). Serves Slice, Expand and Transpose. */
void mt_copy_strided(const void *MT_RESTRICT x, void *MT_RESTRICT y, int32_t elem_size,
                     int32_t ndim, const int32_t *out_shape, const int32_t *in_strides,
                     int32_t in_offset);

/* y = x transposed: y's axis d is x's axis perm[d]. x is dense with in_shape. */
void mt_transpose(const void *MT_RESTRICT x, void *MT_RESTRICT y, int32_t elem_size,
                  int32_t ndim, const int32_t *in_shape, const int32_t *perm);

/* Concat as block copies: y is `outer` rows; row r is the r-th block of each
 * input in turn, input k contributing chunk_bytes[k] bytes per row. A NULL
 * input contributes zero bytes (all-bits zero, 0.0f for float): the gradient
 * of Split when some outputs get no gradient. */
void mt_concat(const void *const *xs, int32_t n_inputs, const int32_t *chunk_bytes,
               int32_t outer, void *MT_RESTRICT y);

/* Split, the inverse of mt_concat: row r of x is cut into n_outputs blocks of
 * chunk_bytes[k] bytes, block k appended to ys[k]. */
void mt_split(const void *MT_RESTRICT x, void *const *ys, int32_t n_outputs,
              const int32_t *chunk_bytes, int32_t outer);

/* Gather along one axis, x viewed as [outer, axis_dim, inner]:
 * y[o, k, i] = x[o, indices[k], i] for k < n_indices. indices are int64_t
 * (index_bytes 8) or int32_t (index_bytes 4); negative ones count from the
 * end. ONNX leaves out-of-range indices undefined: here they are clamped to
 * [0, axis_dim - 1] so a bad index never reads outside x. */
void mt_gather(const void *MT_RESTRICT x, const void *indices, int32_t index_bytes,
               void *MT_RESTRICT y, int32_t elem_size, int32_t outer, int32_t axis_dim,
               int32_t n_indices, int32_t inner);

/* pad modes of mt_pad (keep in sync with ops/pad.py) */
enum { MT_PAD_CONSTANT = 0, MT_PAD_REFLECT = 1, MT_PAD_EDGE = 2, MT_PAD_WRAP = 3 };

/* y (out_shape) = x (in_shape) padded: y index o on axis d reads x index
 * o - pad_begin[d], mapped into range by `mode` (reflect without repeating
 * the edge, edge = clamp, wrap = modulo); in constant mode out-of-range
 * positions get *value (one element). Negative pad_begin crops (constant
 * mode only). ndim >= 1. */
void mt_pad(const void *MT_RESTRICT x, void *MT_RESTRICT y, int32_t elem_size, int32_t ndim,
            const int32_t *in_shape, const int32_t *out_shape, const int32_t *pad_begin,
            int32_t mode, const void *value);

/* ---- backward (gradient) kernels -------------------------------------------
 * Each writes the whole input gradient dx (zeros where nothing flows back). */

/* Slice backward: dx (dx_size elements) = 0, then dx[dx_offset + sum_d i_d *
 * dx_strides[d]] = dy[i] for every row-major index i of dy_shape (the
 * positions mt_copy_strided read; a slice never reads one twice).
 * dtype-agnostic like mt_copy_strided. */
void mt_slice_bwd(const void *MT_RESTRICT dy, void *MT_RESTRICT dx, int32_t elem_size,
                  int32_t dx_size, int32_t ndim, const int32_t *dy_shape,
                  const int32_t *dx_strides, int32_t dx_offset);

/* Pad backward, float32: dx (in_shape) = sum of dy (out_shape) over every
 * output position that mt_pad reads from each input position (reflect, edge
 * and wrap fold several outputs onto one input; constant mode drops the
 * padding and leaves cropped inputs 0). Arguments as in mt_pad. */
void mt_pad_bwd_f32(const float *MT_RESTRICT dy, float *MT_RESTRICT dx, int32_t ndim,
                    const int32_t *in_shape, const int32_t *out_shape, const int32_t *pad_begin,
                    int32_t mode);

/* Gather backward for the data input, float32, layouts as in mt_gather:
 * dx[o, j, i] = sum over k with indices[k] == j of dy[o, k, i] (a
 * scatter-add: repeated indices accumulate, e.g. an embedding table's rows).
 * Negative indices count from the end; out-of-range ones are clamped as in
 * mt_gather, so the gradient goes where the forward read. */
void mt_gather_bwd_f32(const float *MT_RESTRICT dy, const void *indices, int32_t index_bytes,
                       float *MT_RESTRICT dx, int32_t outer, int32_t axis_dim,
                       int32_t n_indices, int32_t inner);

/* element types of mt_cast (keep in sync with ops/compile_time.py) */
enum { MT_DT_F32 = 0, MT_DT_I32 = 1, MT_DT_I64 = 2 };

/* y[i] = (y_type) x[i] for n elements. float -> int truncates toward zero;
 * out-of-range values are undefined (as in ONNX). */
void mt_cast(const void *MT_RESTRICT x, int32_t x_type, void *MT_RESTRICT y, int32_t y_type,
             int32_t n);

#endif
