/* microtrain kernels: training (losses, optimizer updates). Included through mt_kernels.h. */
#ifndef MT_TRAIN_H
#define MT_TRAIN_H

/* Softmax cross-entropy over logits[n][c] with integer labels[n]:
 * loss[0] = scale * sum_i -log softmax(logits_i)[label_i];
 * dlogits = scale * (softmax(logits) - onehot(labels)). */
void mt_softmax_xent_f32(const float *logits, const int32_t *labels, float *loss, float *dlogits,
                         int32_t n, int32_t c, float scale);

/* loss[0] = scale * sum (pred - target)^2; dpred = 2 * scale * (pred - target). */
void mt_mse_f32(const float *pred, const float *target, float *loss, float *dpred, int32_t n, float scale);

/* SGD (PyTorch semantics): g = grad + wd*p; v = momentum*v + g if velocity; p -= lr*(v or g). */
void mt_sgd_update_f32(float *param, const float *grad, float *velocity, int32_t n,
                       float lr, float momentum, float weight_decay);

/* Adam (PyTorch semantics, bias-corrected with step[0] = t >= 1). */
void mt_adam_update_f32(float *param, const float *grad, float *m, float *v, const float *step,
                        int32_t n, float lr, float beta1, float beta2, float eps, float weight_decay);

/* acc += grad (gradient accumulation over micro-batches). */
void mt_accumulate_f32(float *acc, const float *grad, int32_t n);

#endif
