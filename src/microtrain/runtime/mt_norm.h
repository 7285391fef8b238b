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
/* Multi-core variant: each core normalizes its own (sample, group) blocks. */
void mt_groupnorm_f32_par(const float *x, const float *scale, const float *bias, float *y,
                          int32_t n, int32_t groups, int32_t chans_per_group, int32_t inner,
                          int32_t per_channel, float eps, mt_par_t par);

/* Backward of mt_layernorm_f32 (same (outer, inner) view), recomputing each
 * row's mean/invstd from x: dx = invstd * (g - mean(g) - xhat * mean(g * xhat))
 * with g = dy * scale; dscale[i] = sum_r dy * xhat, dbias[i] = sum_r dy.
 * Any of dx/dscale/dbias may be NULL (not wanted). dx may alias dy. */
void mt_layernorm_f32_bwd(const float *dy, const float *x, const float *scale, float *dx,
                          float *dscale, float *dbias, int32_t outer, int32_t inner, float eps);

/* Backward of mt_groupnorm_f32 (same layout and per_channel meaning), stats
 * recomputed from x; dscale/dbias hold C (per_channel) or `groups` sums over
 * the batch. Any of dx/dscale/dbias may be NULL. dx may alias dy. */
void mt_groupnorm_f32_bwd(const float *dy, const float *x, const float *scale, float *dx,
                          float *dscale, float *dbias, int32_t n, int32_t groups,
                          int32_t chans_per_group, int32_t inner, int32_t per_channel, float eps);

/* Training-mode BatchNormalization on x viewed as (n, c, inner): normalize with
 * the batch mean and biased variance of each channel, then update in place
 * running = momentum * running + (1 - momentum) * batch statistic (ONNX
 * momentum; the running variance takes the unbiased batch variance, as
 * PyTorch does). y may alias x. */
void mt_batchnorm_train_f32(const float *x, const float *scale, const float *bias,
                            float *running_mean, float *running_var, float *y, int32_t n,
                            int32_t c, int32_t inner, float eps, float momentum);

/* Backward of BatchNormalization on (n, c, inner). batch_stats == 0: frozen
 * (mean/var constants): dx = dy * scale / sqrt(var + eps); x may be NULL when
 * dscale is. batch_stats != 0: statistics of the batch recomputed from x
 * (mean/var unused): dx = k * (dy - mean(dy) - xhat * mean(dy * xhat)).
 * dscale = sum dy * xhat, dbias = sum dy per channel. Outputs may be NULL. */
void mt_batchnorm_f32_bwd(const float *dy, const float *x, const float *scale, const float *mean,
                          const float *var, float *dx, float *dscale, float *dbias, int32_t n,
                          int32_t c, int32_t inner, float eps, int32_t batch_stats);

#endif
