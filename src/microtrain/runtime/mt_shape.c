/* Data-movement kernels (shape family), dtype-agnostic. */
#include "mt_kernels.h"

/* Copy n elements read `stride` elements apart into a dense row. Typed paths
 * for the usual element sizes; memcpy per element otherwise. */
static void mt_gather_row(const uint8_t *src, uint8_t *dst, int32_t elem_size, int32_t n,
                          int32_t stride)
{
  int32_t i;
  if (stride == 1) {
    memcpy(dst, src, (size_t)n * (size_t)elem_size);
    return;
  }
  switch (elem_size) {
  case 1:
    for (i = 0; i < n; i++) dst[i] = src[(ptrdiff_t)i * stride];
    break;
  case 2: {
    const uint16_t *s = (const uint16_t *)(const void *)src;
    uint16_t *d = (uint16_t *)(void *)dst;
    for (i = 0; i < n; i++) d[i] = s[(ptrdiff_t)i * stride];
    break;
  }
  case 4: {
    const uint32_t *s = (const uint32_t *)(const void *)src;
    uint32_t *d = (uint32_t *)(void *)dst;
    for (i = 0; i < n; i++) d[i] = s[(ptrdiff_t)i * stride];
    break;
  }
  case 8: {
    const uint64_t *s = (const uint64_t *)(const void *)src;
    uint64_t *d = (uint64_t *)(void *)dst;
    for (i = 0; i < n; i++) d[i] = s[(ptrdiff_t)i * stride];
    break;
  }
  default:
    for (i = 0; i < n; i++)
      memcpy(dst + (size_t)i * (size_t)elem_size, src + (ptrdiff_t)i * stride * elem_size,
             (size_t)elem_size);
  }
}

void mt_copy_strided(const void *MT_RESTRICT x, void *MT_RESTRICT y, int32_t elem_size,
                     int32_t ndim, const int32_t *out_shape, const int32_t *in_strides,
                     int32_t in_offset)
{
  const uint8_t *xb = (const uint8_t *)x;
  uint8_t *yb = (uint8_t *)y;
  int32_t idx[MT_MAX_RANK];
  int32_t rows = 1, row_len, last, r, d;
  ptrdiff_t off = in_offset;
  if (ndim <= 0) {
    memcpy(yb, xb + off * elem_size, (size_t)elem_size);
    return;
  }
  last = ndim - 1;
  row_len = out_shape[last];
  for (d = 0; d < last; d++) {
    rows *= out_shape[d];
    idx[d] = 0;
  }
  if (rows == 0 || row_len == 0) return;
  /* Odometer over all axes but the last; the last one is copied as a row. */
  for (r = 0; r < rows; r++) {
    mt_gather_row(xb + off * elem_size, yb, elem_size, row_len, in_strides[last]);
    yb += (size_t)row_len * (size_t)elem_size;
    for (d = last - 1; d >= 0; d--) {
      off += in_strides[d];
      if (++idx[d] < out_shape[d]) break;
      off -= (ptrdiff_t)in_strides[d] * out_shape[d];
      idx[d] = 0;
    }
  }
}

void mt_transpose(const void *MT_RESTRICT x, void *MT_RESTRICT y, int32_t elem_size,
                  int32_t ndim, const int32_t *in_shape, const int32_t *perm)
{
  int32_t dense[MT_MAX_RANK], strides[MT_MAX_RANK], out_shape[MT_MAX_RANK];
  int32_t d, acc = 1;
  for (d = ndim - 1; d >= 0; d--) {
    dense[d] = acc;
    acc *= in_shape[d];
  }
  for (d = 0; d < ndim; d++) {
    out_shape[d] = in_shape[perm[d]];
    strides[d] = dense[perm[d]];
  }
  mt_copy_strided(x, y, elem_size, ndim, out_shape, strides, 0);
}

void mt_concat(const void *const *xs, int32_t n_inputs, const int32_t *chunk_bytes,
               int32_t outer, void *MT_RESTRICT y)
{
  uint8_t *dst = (uint8_t *)y;
  int32_t r, k;
  for (r = 0; r < outer; r++) {
    for (k = 0; k < n_inputs; k++) {
      size_t n = (size_t)chunk_bytes[k];
      if (xs[k] != NULL)
        memcpy(dst, (const uint8_t *)xs[k] + (size_t)r * n, n);
      else
        memset(dst, 0, n);
      dst += n;
    }
  }
}

void mt_split(const void *MT_RESTRICT x, void *const *ys, int32_t n_outputs,
              const int32_t *chunk_bytes, int32_t outer)
{
  const uint8_t *src = (const uint8_t *)x;
  int32_t r, k;
  for (r = 0; r < outer; r++) {
    for (k = 0; k < n_outputs; k++) {
      size_t n = (size_t)chunk_bytes[k];
      memcpy((uint8_t *)ys[k] + (size_t)r * n, src, n);
      src += n;
    }
  }
}

static int32_t mt_load_index(const void *indices, int32_t index_bytes, int32_t k, int32_t axis_dim)
{
  int64_t v = index_bytes == 8 ? ((const int64_t *)indices)[k] : (int64_t)((const int32_t *)indices)[k];
  if (v < 0) v += axis_dim;
  if (v < 0) v = 0;
  if (v >= axis_dim) v = axis_dim - 1;
  return (int32_t)v;
}

void mt_gather(const void *MT_RESTRICT x, const void *indices, int32_t index_bytes,
               void *MT_RESTRICT y, int32_t elem_size, int32_t outer, int32_t axis_dim,
               int32_t n_indices, int32_t inner)
{
  const uint8_t *xb = (const uint8_t *)x;
  uint8_t *yb = (uint8_t *)y;
  size_t row = (size_t)inner * (size_t)elem_size;
  int32_t o, k;
  for (o = 0; o < outer; o++) {
    const uint8_t *slab = xb + (size_t)o * (size_t)axis_dim * row;
    for (k = 0; k < n_indices; k++) {
      memcpy(yb, slab + (size_t)mt_load_index(indices, index_bytes, k, axis_dim) * row, row);
      yb += row;
    }
  }
}

/* Source index on one axis for pad position i (already shifted by the
 * leading pad), or -1 when it falls outside x in constant mode. */
static int32_t mt_pad_source(int32_t i, int32_t n, int32_t mode)
{
  if (i >= 0 && i < n) return i;
  switch (mode) {
  case MT_PAD_EDGE:
    return i < 0 ? 0 : n - 1;
  case MT_PAD_WRAP:
    i %= n;
    return i < 0 ? i + n : i;
  case MT_PAD_REFLECT: {
    int32_t period = 2 * (n - 1);
    if (period == 0) return 0;
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - i;
  }
  default:
    return -1;
  }
}

static void mt_fill(uint8_t *dst, const uint8_t *value, int32_t elem_size, int32_t n)
{
  int32_t i;
  for (i = 0; i < n; i++) memcpy(dst + (size_t)i * (size_t)elem_size, value, (size_t)elem_size);
}

/* One output row of the last axis: pads element by element, the part that
 * lies inside x as one memcpy. */
static void mt_pad_row(const uint8_t *src, uint8_t *dst, int32_t elem_size, int32_t n_in,
                       int32_t n_out, int32_t before, int32_t mode, const uint8_t *value)
{
  int32_t lo = before > 0 ? before : 0;
  int32_t hi = before + n_in < n_out ? before + n_in : n_out;
  int32_t o;
  if (hi < lo) hi = lo;
  if (hi > lo)
    memcpy(dst + (size_t)lo * (size_t)elem_size, src + (ptrdiff_t)(lo - before) * elem_size,
           (size_t)(hi - lo) * (size_t)elem_size);
  for (o = 0; o < n_out; o++) {
    int32_t s;
    if (o == lo) o = hi;
    if (o >= n_out) break;
    s = mt_pad_source(o - before, n_in, mode);
    if (s < 0)
      memcpy(dst + (size_t)o * (size_t)elem_size, value, (size_t)elem_size);
    else
      memcpy(dst + (size_t)o * (size_t)elem_size, src + (size_t)s * (size_t)elem_size,
             (size_t)elem_size);
  }
}

void mt_pad(const void *MT_RESTRICT x, void *MT_RESTRICT y, int32_t elem_size, int32_t ndim,
            const int32_t *in_shape, const int32_t *out_shape, const int32_t *pad_begin,
            int32_t mode, const void *value)
{
  const uint8_t *xb = (const uint8_t *)x;
  uint8_t *yb = (uint8_t *)y;
  int32_t idx[MT_MAX_RANK], in_strides[MT_MAX_RANK];
  int32_t last = ndim - 1, rows = 1, r, d, acc = 1;
  int32_t row_out = out_shape[last];
  size_t row_bytes = (size_t)row_out * (size_t)elem_size;
  for (d = last; d >= 0; d--) {
    in_strides[d] = acc;
    acc *= in_shape[d];
  }
  for (d = 0; d < last; d++) {
    rows *= out_shape[d];
    idx[d] = 0;
  }
  if (row_out == 0) return;
  for (r = 0; r < rows; r++) {
    /* Map this row's outer index to x; constant mode may land outside. */
    ptrdiff_t off = 0;
    int inside = 1;
    for (d = 0; d < last; d++) {
      int32_t s = mt_pad_source(idx[d] - pad_begin[d], in_shape[d], mode);
      if (s < 0) { inside = 0; break; }
      off += (ptrdiff_t)s * in_strides[d];
    }
    if (inside)
      mt_pad_row(xb + off * elem_size, yb, elem_size, in_shape[last], row_out, pad_begin[last],
                 mode, (const uint8_t *)value);
    else
      mt_fill(yb, (const uint8_t *)value, elem_size, row_out);
    yb += row_bytes;
    for (d = last - 1; d >= 0; d--) {
      if (++idx[d] < out_shape[d]) break;
      idx[d] = 0;
    }
  }
}

void mt_cast(const void *MT_RESTRICT x, int32_t x_type, void *MT_RESTRICT y, int32_t y_type,
             int32_t n)
{
  int32_t i;
#define MT_CAST_LOOP(TX, TY) \
  for (i = 0; i < n; i++) ((TY *)y)[i] = (TY)((const TX *)x)[i];
  if (x_type == MT_DT_F32) {
    if (y_type == MT_DT_F32) { MT_CAST_LOOP(float, float) }
    else if (y_type == MT_DT_I32) { MT_CAST_LOOP(float, int32_t) }
    else { MT_CAST_LOOP(float, int64_t) }
  } else if (x_type == MT_DT_I32) {
    if (y_type == MT_DT_F32) { MT_CAST_LOOP(int32_t, float) }
    else if (y_type == MT_DT_I32) { MT_CAST_LOOP(int32_t, int32_t) }
    else { MT_CAST_LOOP(int32_t, int64_t) }
  } else {
    if (y_type == MT_DT_F32) { MT_CAST_LOOP(int64_t, float) }
    else if (y_type == MT_DT_I32) { MT_CAST_LOOP(int64_t, int32_t) }
    else { MT_CAST_LOOP(int64_t, int64_t) }
  }
#undef MT_CAST_LOOP
}

/* ---- backward kernels ------------------------------------------------------ */

/* Scatter a dense row of n elements into dst, `stride` elements apart (the
 * inverse of mt_gather_row). */
static void mt_scatter_row(const uint8_t *src, uint8_t *dst, int32_t elem_size, int32_t n,
                           int32_t stride)
{
  int32_t i;
  if (stride == 1) {
    memcpy(dst, src, (size_t)n * (size_t)elem_size);
    return;
  }
  switch (elem_size) {
  case 4: {
    const uint32_t *s = (const uint32_t *)(const void *)src;
    uint32_t *d = (uint32_t *)(void *)dst;
    for (i = 0; i < n; i++) d[(ptrdiff_t)i * stride] = s[i];
    break;
  }
  case 8: {
    const uint64_t *s = (const uint64_t *)(const void *)src;
    uint64_t *d = (uint64_t *)(void *)dst;
    for (i = 0; i < n; i++) d[(ptrdiff_t)i * stride] = s[i];
    break;
  }
  default:
    for (i = 0; i < n; i++)
      memcpy(dst + (ptrdiff_t)i * stride * elem_size, src + (size_t)i * (size_t)elem_size,
             (size_t)elem_size);
  }
}

void mt_slice_bwd(const void *MT_RESTRICT dy, void *MT_RESTRICT dx, int32_t elem_size,
                  int32_t dx_size, int32_t ndim, const int32_t *dy_shape,
                  const int32_t *dx_strides, int32_t dx_offset)
{
  const uint8_t *src = (const uint8_t *)dy;
  uint8_t *xb = (uint8_t *)dx;
  int32_t idx[MT_MAX_RANK];
  int32_t rows = 1, row_len, last = ndim - 1, r, d;
  ptrdiff_t off = dx_offset;
  memset(xb, 0, (size_t)dx_size * (size_t)elem_size);
  row_len = dy_shape[last];
  for (d = 0; d < last; d++) {
    rows *= dy_shape[d];
    idx[d] = 0;
  }
  if (rows == 0 || row_len == 0) return;
  /* Odometer over all axes but the last, as in mt_copy_strided. */
  for (r = 0; r < rows; r++) {
    mt_scatter_row(src, xb + off * elem_size, elem_size, row_len, dx_strides[last]);
    src += (size_t)row_len * (size_t)elem_size;
    for (d = last - 1; d >= 0; d--) {
      off += dx_strides[d];
      if (++idx[d] < dy_shape[d]) break;
      off -= (ptrdiff_t)dx_strides[d] * dy_shape[d];
      idx[d] = 0;
    }
  }
}

void mt_pad_bwd_f32(const float *MT_RESTRICT dy, float *MT_RESTRICT dx, int32_t ndim,
                    const int32_t *in_shape, const int32_t *out_shape, const int32_t *pad_begin,
                    int32_t mode)
{
  int32_t idx[MT_MAX_RANK], in_strides[MT_MAX_RANK];
  int32_t last = ndim - 1, rows = 1, r, d, o, acc = 1;
  int32_t n_in = in_shape[last], n_out = out_shape[last], before = pad_begin[last];
  /* the part of an output row that maps straight onto x: [lo, hi) */
  int32_t lo = before > 0 ? before : 0;
  int32_t hi = before + n_in < n_out ? before + n_in : n_out;
  if (hi < lo) hi = lo;
  for (d = last; d >= 0; d--) {
    in_strides[d] = acc;
    acc *= in_shape[d];
  }
  for (o = 0; o < acc; o++) dx[o] = 0.0f;
  for (d = 0; d < last; d++) {
    rows *= out_shape[d];
    idx[d] = 0;
  }
  if (n_out == 0 || acc == 0) return;
  for (r = 0; r < rows; r++, dy += n_out) {
    ptrdiff_t off = 0;
    int inside = 1;
    float *row;
    for (d = 0; d < last; d++) {
      int32_t s = mt_pad_source(idx[d] - pad_begin[d], in_shape[d], mode);
      if (s < 0) { inside = 0; break; }
      off += (ptrdiff_t)s * in_strides[d];
    }
    if (inside) {
      row = dx + off;
      for (o = lo; o < hi; o++) row[o - before] += dy[o];
      for (o = 0; o < lo; o++) {
        int32_t s = mt_pad_source(o - before, n_in, mode);
        if (s >= 0) row[s] += dy[o];
      }
      for (o = hi; o < n_out; o++) {
        int32_t s = mt_pad_source(o - before, n_in, mode);
        if (s >= 0) row[s] += dy[o];
      }
    }
    for (d = last - 1; d >= 0; d--) {
      if (++idx[d] < out_shape[d]) break;
      idx[d] = 0;
    }
  }
}

void mt_gather_bwd_f32(const float *MT_RESTRICT dy, const void *indices, int32_t index_bytes,
                       float *MT_RESTRICT dx, int32_t outer, int32_t axis_dim,
                       int32_t n_indices, int32_t inner)
{
  size_t slab = (size_t)axis_dim * (size_t)inner, n = (size_t)outer * slab, j;
  int32_t o, k, i;
  for (j = 0; j < n; j++) dx[j] = 0.0f;
  if (axis_dim == 0) return;
  for (o = 0; o < outer; o++) {
    float *dslab = dx + (size_t)o * slab;
    for (k = 0; k < n_indices; k++, dy += inner) {
      float *drow = dslab + (size_t)mt_load_index(indices, index_bytes, k, axis_dim) * (size_t)inner;
      for (i = 0; i < inner; i++) drow[i] += dy[i];
    }
  }
}
