/* optim.h — gradient clipping, the optimizers and learning-rate schedules.
 *
 * adamw follows torch.optim.AdamW (Loshchilov & Hutter 2019): decoupled
 * weight decay p -= lr * wd * p, then the bias-corrected Adam update. adam is
 * the same update without any weight decay (the FMMformer/Transformer-XL
 * trainer's choice). adagrad is the adaptive-span trainer's Adagrad (spec
 * moe-brainformer.md §6.1): L2 weight decay added to the gradient, G += g^2,
 * p -= clr g / (sqrt(G) + 1e-10), where with clip_mode per_tensor clr = lr
 * clip / (|g| + 1e-10) for a tensor whose own norm |g| exceeds clip (the step
 * is scaled, per tensor, not the gradient globally). Global clipping follows
 * torch.nn.utils.clip_grad_norm_.
 *
 * Each parameter gets a rule: its learning rate (a multiple of the
 * scheduled one), its weight decay, whether it trains. By default the decay
 * is weight_decay for the groups named in decay_groups (the module chooses a
 * parameter's group), 0 otherwise; buffers never train. Config patterns
 * override by name (fnmatch, '*' matches dots too), later ones winning:
 *   lr_groups: {"*.ssm.*": {lr: 1e-3, weight_decay: 0}, "embed.*": {trainable: false}}
 * (lr is that group's peak: the multiple lr_group / lr of the schedule).
 * The optimizer owns its state (the moments), which checkpoints save by
 * name through optim_state.
 *
 *     Optimizer o;  optim_build(&o, &cfg, &model.params, &err);
 *     double norm = optim_clip(&model.params, cfg.clip);
 *     optim_step(&o, &model.params, schedule_lr(&cfg, step), step + 1);
 */
#ifndef SEQLAB_OPTIM_H
#define SEQLAB_OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/config.h"
#include "../core/params.h"

typedef struct {
    float lr_scale;     /* the parameter's lr: lr_scale x the scheduled lr */
    float weight_decay; /* decoupled (adamw, radam); 0: none */
    bool trainable;     /* false: frozen or a buffer */
} ParamRule;

typedef enum { OPTIM_ADAMW, OPTIM_ADAM, OPTIM_RADAM, OPTIM_ADAGRAD } OptimKind;

enum { OPTIM_MAX_STATE = 2 };

typedef struct {
    OptimKind kind;
    double beta1, beta2, eps;
    double global_clip; /* the clip for optim_clip (clip_mode global), else 0 */
    double tensor_clip; /* adagrad, clip_mode per_tensor: each tensor's step scaled by clip / its norm above it */
    ParamRule *rules;              /* owned: one per parameter of the set it was built for */
    size_t count, total;
    float *state[OPTIM_MAX_STATE]; /* owned: per-element state, `total` floats each (Adam: m, v) */
    int n_state;
    const char *state_names[OPTIM_MAX_STATE]; /* in checkpoints: "optim.<name>.<param>" */
} Optimizer;

/* Resolves every parameter's rule (decay_groups, lr_groups) and allocates
 * the state, zeroed. Marks untrainable parameters frozen in ps (so the
 * gradient norm leaves them out). Errors name an lr_groups entry that is
 * malformed or matches no parameter. */
int optim_build(Optimizer *o, const Config *cfg, ParamSet *ps, Error *err);
void optim_free(Optimizer *o);
/* Global L2 norm of the trainable parameters' gradients; when clip > 0 and
 * the norm exceeds it, scales them by clip / (norm + 1e-6). Returns the norm
 * before clipping. Callers pass the optimizer's global_clip. */
double optim_clip(ParamSet *ps, double clip);
/* Sets beta1 for the following updates: the one-cycle schedule cycles it, and
 * the bias correction uses the current value (1 - beta1^t), as torch.optim.AdamW does. */
void optim_set_beta1(Optimizer *o, double beta1);
/* One update with learning rate lr; t counts updates from 1 (bias correction). */
void optim_step(Optimizer *o, ParamSet *ps, double lr, uint64_t t);
/* State slot s of parameter k for checkpoints: its name ("exp_avg") and
 * where it lives, or NULL when the parameter has no state (not trainable). */
float *optim_state(const Optimizer *o, const ParamSet *ps, size_t k, int s, const char **name);
/* Learning rate of update s (0-based) under the config's schedule:
 * linear warmup lr*(s+1)/warmup_step for s < warmup_step, then
 * constant: lr; cosine: min_lr + (lr-min_lr)(1+cos(pi (s-w)/(max_step-w)))/2;
 * inv_sqrt: lr * sqrt(w/(s+1)); cosine_txl, cosine_optax and one_cycle: the
 * seeds' trainers' (optim.c). */
double schedule_lr(const Config *cfg, uint64_t s);
/* Adam's beta1 for update s: the config's, or one_cycle's cycled momentum. */
double schedule_beta1(const Config *cfg, uint64_t s);

#endif
