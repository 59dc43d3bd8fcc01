/* optim.c — see optim.h. */
#include "optim.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The default rule of a parameter: decay by its group, trainable unless a buffer. */
static ParamRule default_rule(const Config *cfg, const ParamSpec *s, const bool decay[GROUP_COUNT]) {
    const bool decoupled = strcmp(cfg->optim, "adam") != 0; /* adagrad's is L2, added to the gradient */
    ParamRule r = {.lr_scale = 1.0f, .weight_decay = decoupled && decay[s->group] ? (float)cfg->weight_decay : 0.0f,
                   .trainable = !s->buffer && !s->fixed};
    return r;
}

static int parse_decay_groups(const Config *cfg, bool decay[GROUP_COUNT], Error *err) {
    char list[CFG_NAME];
    snprintf(list, sizeof list, "%s", cfg->decay_groups);
    for (char *save = NULL, *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        int g = 0;
        while (g < GROUP_COUNT && strcmp(param_group_names[g], name) != 0) g++;
        if (g == GROUP_COUNT) return err_set(err, "key 'decay_groups': unknown group '%s'", name);
        decay[g] = true;
    }
    return 0;
}

/* Applies one lr_groups entry "lr_groups.<pattern>.<field>" to every parameter it matches. */
static int apply_group_entry(Optimizer *o, const Config *cfg, const ParamSet *ps, const ConfigEntry *e, Error *err) {
    const char *rest = e->key + strlen("lr_groups."), *dot = strrchr(rest, '.');
    if (!dot || dot == rest)
        return err_set(err, "key '%s' (%s): write lr_groups: {\"<pattern>\": {lr: ..., weight_decay: ..., trainable: ...}}",
                       e->key, e->where);
    char pattern[96], label[512];
    snprintf(pattern, sizeof pattern, "%.*s", (int)(dot - rest), rest);
    const char *field = dot + 1;
    snprintf(label, sizeof label, "key '%s' (%s)", e->key, e->where);
    double value = 0;
    bool flag = false;
    if (!strcmp(field, "trainable")) {
        if (config_parse_value(KEY_BOOL, NULL, sizeof flag, &flag, e->value, label, err)) return -1;
    } else if (!strcmp(field, "lr") || !strcmp(field, "weight_decay")) {
        if (config_parse_value(KEY_FLOAT, NULL, sizeof value, &value, e->value, label, err)) return -1;
        if (value < 0) return err_set(err, "%s must be >= 0, got %g", label, value);
    } else {
        return err_set(err, "%s: a group sets lr, weight_decay or trainable, not '%s'", label, field);
    }
    size_t matched = 0;
    for (size_t k = 0; k < ps->count; k++) {
        if (fnmatch(pattern, ps->specs[k].name, 0) != 0 || ps->specs[k].buffer) continue;
        matched++;
        ParamRule *r = &o->rules[k];
        if (!strcmp(field, "lr")) r->lr_scale = (float)(value / cfg->lr);
        else if (!strcmp(field, "weight_decay")) r->weight_decay = (float)value;
        else r->trainable = flag;
    }
    if (!matched) return err_set(err, "%s: the pattern '%s' matches no parameter", label, pattern);
    return 0;
}

int optim_build(Optimizer *o, const Config *cfg, ParamSet *ps, Error *err) {
    memset(o, 0, sizeof *o);
    o->kind = !strcmp(cfg->optim, "adamw")   ? OPTIM_ADAMW
              : !strcmp(cfg->optim, "radam")   ? OPTIM_RADAM
              : !strcmp(cfg->optim, "adagrad") ? OPTIM_ADAGRAD
                                               : OPTIM_ADAM;
    const bool per_tensor = !strcmp(cfg->clip_mode, "per_tensor");
    if (per_tensor && o->kind != OPTIM_ADAGRAD)
        return err_set(err, "key 'clip_mode': per_tensor scales Adagrad's steps (optim adagrad), not %s's", cfg->optim);
    o->global_clip = per_tensor ? 0.0 : cfg->clip;
    o->tensor_clip = per_tensor ? cfg->clip : 0.0;
    o->beta1 = cfg->beta1;
    o->beta2 = cfg->beta2;
    o->eps = cfg->eps;
    o->count = ps->count;
    o->total = ps->total;
    bool decay[GROUP_COUNT] = {false};
    if (parse_decay_groups(cfg, decay, err)) return -1;
    if (!(o->rules = xcalloc(ps->count ? ps->count : 1, sizeof *o->rules, err))) return -1;
    for (size_t k = 0; k < ps->count; k++) o->rules[k] = default_rule(cfg, &ps->specs[k], decay);
    for (int i = 0; i < cfg->n_entries; i++)
        if (!strncmp(cfg->entries[i].key, "lr_groups.", 10) && apply_group_entry(o, cfg, ps, &cfg->entries[i], err)) {
            optim_free(o);
            return -1;
        }
    for (size_t k = 0; k < ps->count; k++) ps->specs[k].frozen = !o->rules[k].trainable;
    o->n_state = o->kind == OPTIM_ADAGRAD ? 1 : 2;
    o->state_names[0] = o->kind == OPTIM_ADAGRAD ? "sum" : "exp_avg";
    o->state_names[1] = "exp_avg_sq";
    for (int s = 0; s < o->n_state; s++)
        if (!(o->state[s] = xcalloc(ps->total ? ps->total : 1, sizeof(float), err))) {
            optim_free(o);
            return -1;
        }
    return 0;
}

void optim_free(Optimizer *o) {
    free(o->rules);
    for (int s = 0; s < OPTIM_MAX_STATE; s++) free(o->state[s]);
    memset(o, 0, sizeof *o);
}

float *optim_state(const Optimizer *o, const ParamSet *ps, size_t k, int s, const char **name) {
    if (!o->rules[k].trainable || s >= o->n_state) return NULL;
    *name = o->state_names[s];
    return o->state[s] + ps->specs[k].offset;
}

enum { NORM_CHUNK = 1 << 16 };

/* Sum of squares of the trainable gradients in [i0, i1), spec by spec. */
static double squares(const ParamSet *ps, size_t i0, size_t i1) {
    double s = 0.0;
    for (size_t k = 0; k < ps->count; k++) {
        const ParamSpec *p = &ps->specs[k];
        size_t a = p->offset > i0 ? p->offset : i0, b = p->offset + p->numel < i1 ? p->offset + p->numel : i1;
        if (p->frozen || p->buffer || a >= b) continue;
        for (size_t i = a; i < b; i++) s += (double)ps->grads[i] * ps->grads[i];
    }
    return s;
}

double optim_clip(ParamSet *ps, double clip) {
    /* fixed chunks summed in order: the norm does not depend on the thread count */
    size_t chunks = (ps->total + NORM_CHUNK - 1) / NORM_CHUNK;
    double partial[4096];
    double total = 0.0;
    for (size_t base = 0; base < chunks; base += 4096) {
        size_t count = chunks - base < 4096 ? chunks - base : 4096;
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < count; c++) {
            size_t i0 = (base + c) * NORM_CHUNK, i1 = i0 + NORM_CHUNK < ps->total ? i0 + NORM_CHUNK : ps->total;
            partial[c] = squares(ps, i0, i1);
        }
        for (size_t c = 0; c < count; c++) total += partial[c];
    }
    double norm = sqrt(total);
    if (clip > 0.0 && norm > clip) {
        float coef = (float)(clip / (norm + 1e-6));
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < ps->total; i++) ps->grads[i] *= coef;
    }
    return norm;
}

/* One Adam update of n elements: p -= step_size m / (sqrt(v) / bc2_sqrt + eps),
 * or with `momentum_only` p -= step_size m (RAdam's early steps). */
static void adam_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float decay, float b1,
                        float b2, float step_size, float bc2_sqrt, float eps, bool momentum_only) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        p[i] *= 1.0f - lr * decay;
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        p[i] -= momentum_only ? step_size * m[i] : step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
    }
}

/* RAdam's rectification at update t (the authors' radam.py, which fairseq
 * ships): the length of the approximated simple moving average rho_t; when
 * it is at least 5 the adaptive step is scaled by r_t and the denominator is
 * sqrt(v) + eps (v not bias-corrected: (1 - beta2^t) sits inside r_t's
 * square root); before, the update is momentum alone. Returns r_t sqrt(1 -
 * beta2^t), or 0 for the momentum-only updates. */
static double radam_rectifier(double beta2, uint64_t t) {
    const double rho_inf = 2.0 / (1.0 - beta2) - 1.0, b2t = pow(beta2, (double)t);
    const double rho = rho_inf - 2.0 * (double)t * b2t / (1.0 - b2t);
    if (rho < 5.0) return 0.0;
    return sqrt((1.0 - b2t) * (rho - 4.0) / (rho_inf - 4.0) * (rho - 2.0) / rho * rho_inf / (rho_inf - 2.0));
}

void optim_set_beta1(Optimizer *o, double beta1) { o->beta1 = beta1; }

/* The L2 norm of g + decay p over n elements: fixed parts summed in order,
 * so the same on any thread count. */
static double decayed_norm(const float *g, const float *p, size_t n, float decay) {
    enum { PARTS = 64 };
    double part[PARTS];
#pragma omp parallel for schedule(static)
    for (size_t q = 0; q < PARTS; q++) {
        double s = 0.0;
        for (size_t i = n * q / PARTS; i < n * (q + 1) / PARTS; i++) {
            const double x = (double)g[i] + (double)decay * p[i];
            s += x * x;
        }
        part[q] = s;
    }
    double total = 0.0;
    for (size_t q = 0; q < PARTS; q++) total += part[q];
    return sqrt(total);
}

/* One Adagrad update of a tensor (§6.1). */
static void adagrad_update(float *p, const float *g, float *sum, size_t n, double lr, float decay, double clip) {
    double clr = lr;
    if (clip > 0) {
        const double norm = decayed_norm(g, p, n, decay);
        if (norm > clip) clr *= clip / (norm + 1e-10);
    }
    const float step = (float)clr;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        const float x = g[i] + decay * p[i];
        sum[i] += x * x;
        p[i] -= step * x / (sqrtf(sum[i]) + 1e-10f);
    }
}

void optim_step(Optimizer *o, ParamSet *ps, double lr, uint64_t t) {
    if (o->kind == OPTIM_ADAGRAD) {
        for (size_t k = 0; k < ps->count; k++) {
            const ParamSpec *s = &ps->specs[k];
            const ParamRule *r = &o->rules[k];
            if (r->trainable)
                adagrad_update(ps->values + s->offset, ps->grads + s->offset, o->state[0] + s->offset, s->numel,
                               lr * r->lr_scale, r->weight_decay, o->tensor_clip);
        }
        return;
    }
    const double bc1 = 1.0 - pow(o->beta1, (double)t), bc2 = 1.0 - pow(o->beta2, (double)t);
    const double rect = o->kind == OPTIM_RADAM ? radam_rectifier(o->beta2, t) : 1.0;
    const bool momentum_only = rect == 0.0;
    /* Adam: bias-corrected v; RAdam: sqrt(v) + eps with r_t sqrt(1 - beta2^t) in the step */
    const float bc2_sqrt = o->kind == OPTIM_RADAM ? 1.0f : (float)sqrt(bc2);
    for (size_t k = 0; k < ps->count; k++) {
        const ParamSpec *s = &ps->specs[k];
        const ParamRule *r = &o->rules[k];
        if (!r->trainable) continue;
        const double plr = lr * r->lr_scale;
        adam_update(ps->values + s->offset, ps->grads + s->offset, o->state[0] + s->offset, o->state[1] + s->offset,
                    s->numel, (float)plr, r->weight_decay, (float)o->beta1, (float)o->beta2,
                    (float)(plr * (momentum_only ? 1.0 : rect) / bc1), bc2_sqrt, (float)o->eps, momentum_only);
    }
}

/* Transformer-XL's cosine (the FMM trainer; spec tasks-fmm-nystrom.md A.6):
 * update s uses lr*s/warmup while s < warmup (update 0: the full lr with
 * warmup_first_step_full_lr, as the original, else lr/warmup), then a cosine
 * over the whole of max_step, not shifted by the warm-up. */
static double cosine_txl(const Config *cfg, uint64_t s) {
    const double w = cfg->warmup_step, peak = cfg->lr;
    if (s == 0 && cfg->warmup_first_step_full_lr) return peak;
    if ((double)s < w) return peak * (double)(s ? s : 1) / w;
    double progress = (double)s / (double)cfg->max_step;
    return cfg->min_lr + 0.5 * (peak - cfg->min_lr) * (1.0 + cos(M_PI * (progress > 1.0 ? 1.0 : progress)));
}

/* optax's warmup_cosine_decay_schedule(0, lr, warmup, decay_steps = max_step
 * - warmup, 0) as the S5/Hyena JAX trainer builds it (spec ssm-hyena.md
 * §1.12): optax counts decay_steps from 0, warm-up included, so the cosine
 * spans max_step - 2 warmup updates, reaches 0 at max_step - warmup and
 * the last warmup updates run at lr 0; update 0 runs at lr 0. */
static double cosine_optax(const Config *cfg, uint64_t s) {
    const double w = cfg->warmup_step, peak = cfg->lr, t = (double)s, span = (double)cfg->max_step - 2.0 * w;
    if (t < w) return peak * t / w;
    if (span <= 0 || t >= w + span) return 0.0;
    return 0.5 * peak * (1.0 + cos(M_PI * (t - w) / span));
}

/* PyTorch's OneCycleLR, anneal_strategy linear, two phases (the
 * Nystromformer trainer; spec tasks-fmm-nystrom.md B.4): update s rises
 * linearly from lr / div_factor to lr until s = pct_start max_step - 1, then
 * falls linearly to lr / div_factor / final_div_factor at s = max_step - 1;
 * beta1 goes the other way between max_momentum and base_momentum. The
 * phase ends are real numbers, as PyTorch computes them. Returns the position
 * in the current phase (0..1) and whether it is the first. */
static double one_cycle_phase(const Config *cfg, uint64_t s, bool *rising) {
    const double end1 = cfg->pct_start * (double)cfg->max_step - 1.0, end2 = (double)cfg->max_step - 1.0, t = (double)s;
    *rising = t <= end1;
    if (*rising) return end1 > 0.0 ? t / end1 : 1.0;
    return end2 > end1 ? (t - end1) / (end2 - end1) : 1.0;
}

static double one_cycle_lr(const Config *cfg, uint64_t s) {
    bool rising;
    const double pct = one_cycle_phase(cfg, s, &rising), first = cfg->lr / cfg->div_factor,
                 last = first / cfg->final_div_factor;
    return rising ? first + (cfg->lr - first) * pct : cfg->lr + (last - cfg->lr) * pct;
}

double schedule_beta1(const Config *cfg, uint64_t s) {
    if (strcmp(cfg->scheduler, "one_cycle") != 0 || !cfg->cycle_momentum) return cfg->beta1;
    bool rising;
    const double pct = one_cycle_phase(cfg, s, &rising), hi = cfg->max_momentum, lo = cfg->base_momentum;
    return rising ? hi + (lo - hi) * pct : lo + (hi - lo) * pct;
}

/* fairseq's linear warm-up and decay as MEGA and SeqBoat train (spec
 * mega-seqboat.md §4.10, §6.9): update s (from 0) runs at warmup_init_lr +
 * (lr - warmup_init_lr) s / warmup while s < warmup, then falls linearly to
 * min_lr at max_step. */
static double linear_decay(const Config *cfg, uint64_t s) {
    const double w = cfg->warmup_step, peak = cfg->lr, t = (double)s, span = (double)cfg->max_step - w;
    if (t < w) return cfg->warmup_init_lr + (peak - cfg->warmup_init_lr) * t / w;
    const double left = span > 0 ? 1.0 - (t - w) / span : 0.0;
    return cfg->min_lr + (peak - cfg->min_lr) * (left > 0 ? left : 0.0);
}

double schedule_lr(const Config *cfg, uint64_t s) {
    const double w = cfg->warmup_step, peak = cfg->lr;
    if (strcmp(cfg->scheduler, "linear") == 0) return linear_decay(cfg, s);
    if (strcmp(cfg->scheduler, "one_cycle") == 0) return one_cycle_lr(cfg, s);
    if (strcmp(cfg->scheduler, "cosine_txl") == 0) return cosine_txl(cfg, s);
    if (strcmp(cfg->scheduler, "cosine_optax") == 0) return cosine_optax(cfg, s);
    if (strcmp(cfg->scheduler, "constant_from_zero") == 0) /* the adaptive-span trainer's min(1, s / warmup) */
        return cfg->warmup_step > 0 && s < (uint64_t)cfg->warmup_step ? peak * (double)s / w : peak;
    if (cfg->warmup_step > 0 && s < (uint64_t)cfg->warmup_step) return peak * (double)(s + 1) / w;
    if (strcmp(cfg->scheduler, "cosine") == 0) {
        double span = (double)cfg->max_step - w;
        double progress = span > 0 ? ((double)s - w) / span : 1.0;
        if (progress > 1.0) progress = 1.0;
        return cfg->min_lr + 0.5 * (peak - cfg->min_lr) * (1.0 + cos(M_PI * progress));
    }
    if (strcmp(cfg->scheduler, "inv_sqrt") == 0) return w > 0 ? peak * sqrt(w / (double)(s + 1)) : peak;
    return peak;
}
