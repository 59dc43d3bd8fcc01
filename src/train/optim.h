/* optim.h — gradient clipping, AdamW / Adam, learning-rate schedules.
 *
 * adamw follows torch.optim.AdamW (Loshchilov & Hutter 2019): decoupled
 * weight decay p -= lr * wd * p on the parameter groups named in
 * decay_groups, then the bias-corrected Adam update. adam is the same update
 * without any weight decay (the FMMformer/Transformer-XL trainer's choice).
 * Clipping follows torch.nn.utils.clip_grad_norm_.
 */
#ifndef SEQLAB_OPTIM_H
#define SEQLAB_OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/config.h"
#include "../core/params.h"

typedef struct {
    bool adamw;
    double beta1, beta2, eps, weight_decay;
    bool decay[GROUP_COUNT]; /* which parameter groups decay */
} Optimizer;

int optim_setup(Optimizer *o, const Config *cfg, Error *err);
/* Global L2 norm of all gradients; when clip > 0 and the norm exceeds it,
 * scales every gradient by clip / (norm + 1e-6). Returns the norm before clipping. */
double optim_clip(ParamSet *ps, double clip);
/* One update with learning rate lr; t counts updates from 1 (bias correction). */
void optim_step(const Optimizer *o, ParamSet *ps, double lr, uint64_t t);
/* Learning rate of update s (0-based) under the config's schedule:
 * linear warmup lr*(s+1)/warmup_step for s < warmup_step, then
 * constant: lr; cosine: min_lr + (lr-min_lr)(1+cos(pi (s-w)/(max_step-w)))/2;
 * inv_sqrt: lr * sqrt(w/(s+1)). */
double schedule_lr(const Config *cfg, uint64_t s);

#endif
