/* Training kernels: losses and optimizer updates (fp32). */
#include <math.h>
#include "mt_kernels.h"

void mt_softmax_xent_f32(const float *logits, const int32_t *labels, float *loss, float *dlogits,
                         int32_t n, int32_t c, float scale)
{
  int32_t i, j;
  float total = 0.0f;
  for (i = 0; i < n; i++) {
    const float *z = logits + (size_t)i * c;
    float *d = dlogits + (size_t)i * c;
    float zmax = z[0], sum = 0.0f, inv;
    for (j = 1; j < c; j++) if (z[j] > zmax) zmax = z[j];
    for (j = 0; j < c; j++) { d[j] = expf(z[j] - zmax); sum += d[j]; }
    total += logf(sum) - (z[labels[i]] - zmax);
    inv = scale / sum;
    for (j = 0; j < c; j++) d[j] *= inv;
    d[labels[i]] -= scale;
  }
  loss[0] = total * scale;
}

void mt_mse_f32(const float *pred, const float *target, float *loss, float *dpred, int32_t n, float scale)
{
  int32_t i;
  float total = 0.0f;
  for (i = 0; i < n; i++) {
    float diff = pred[i] - target[i];
    total += diff * diff;
    dpred[i] = 2.0f * scale * diff;
  }
  loss[0] = total * scale;
}

void mt_sgd_update_f32(float *param, const float *grad, float *velocity, int32_t n,
                       float lr, float momentum, float weight_decay)
{
  int32_t i;
  for (i = 0; i < n; i++) {
    float g = grad[i] + weight_decay * param[i];
    if (velocity && momentum > 0.0f) {
      velocity[i] = momentum * velocity[i] + g;
      g = velocity[i];
    }
    param[i] -= lr * g;
  }
}

void mt_adam_update_f32(float *param, const float *grad, float *m, float *v, const float *step,
                        int32_t n, float lr, float beta1, float beta2, float eps, float weight_decay)
{
  int32_t i;
  float t = step[0];
  float c1 = 1.0f - powf(beta1, t), c2 = 1.0f - powf(beta2, t);
  for (i = 0; i < n; i++) {
    float g = grad[i] + weight_decay * param[i];
    m[i] = beta1 * m[i] + (1.0f - beta1) * g;
    v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
    param[i] -= lr * (m[i] / c1) / (sqrtf(v[i] / c2) + eps);
  }
}

void mt_accumulate_f32(float *acc, const float *grad, int32_t n)
{
  int32_t i;
  for (i = 0; i < n; i++) acc[i] += grad[i];
}
