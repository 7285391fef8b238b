/* microtrain kernels: norm family. Included through mt_kernels.h. */
#ifndef MT_NORM_H
#define MT_NORM_H

/* Inference BatchNormalization on x viewed as (n, c, inner):
 * y = (x - mean[c]) / sqrt(var[c] + eps) * scale[c] + bias[c]. y may alias x. */
void mt_batchnorm_f32(const float *x, const float *scale, const float *bias, const float *mean,
                      const float *var, float *y, int32_t n, int32_t c, int32_t inner, float eps);

/* LayerNormalization on x viewed as (outer, inner): each row of `inner`
 * elements is normalized then y = xhat * scale[i] + bias[i] (bias may be NULL;
 * scale/bias hold `inner` values). mean_out/invstd_out (outer values each) may
 * be NULL. y may alias x. */
void mt_layernorm_f32(const float *x, const float *scale, const float *bias, float *y,
                      float *mean_out, float *invstd_out, int32_t outer, int32_t inner, float eps);

/* GroupNormalization (and InstanceNormalization, groups = channels) on x viewed
 * as (n, groups, chans_per_group, inner): statistics per (n, group), then
 * y = xhat * scale[k] + bias[k] with k the channel (per_channel != 0, C values)
 * or the group (per_channel == 0, `groups` values). y may alias x. */
void mt_groupnorm_f32(const float *x, const float *scale, const float *bias, float *y,
                      int32_t n, int32_t groups, int32_t chans_per_group, int32_t inner,
                      int32_t per_channel, float eps);

#endif
