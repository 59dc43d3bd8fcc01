/* optim.c — see optim.h. */
#include "optim.h"

#include <math.h>
#include <string.h>

int optim_setup(Optimizer *o, const Config *cfg, Error *err) {
    memset(o, 0, sizeof *o);
    o->adamw = strcmp(cfg->optim, "adamw") == 0;
    o->beta1 = cfg->beta1;
    o->beta2 = cfg->beta2;
    o->eps = cfg->eps;
    o->weight_decay = o->adamw ? cfg->weight_decay : 0.0;
    char list[CFG_NAME];
    snprintf(list, sizeof list, "%s", cfg->decay_groups);
    for (char *save = NULL, *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        int g = 0;
        while (g < GROUP_COUNT && strcmp(param_group_names[g], name) != 0) g++;
        if (g == GROUP_COUNT) return err_set(err, "key 'decay_groups': unknown group '%s'", name);
        o->decay[g] = true;
    }
    return 0;
}

enum { NORM_CHUNK = 1 << 16 };

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
            double s = 0.0;
            for (size_t i = i0; i < i1; i++) s += (double)ps->grads[i] * ps->grads[i];
            partial[c] = s;
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

static void adam_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float decay, float b1,
                        float b2, float step_size, float bc2_sqrt, float eps) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        p[i] *= 1.0f - lr * decay;
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        p[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
    }
}

void optim_step(const Optimizer *o, ParamSet *ps, double lr, uint64_t t) {
    const double bc1 = 1.0 - pow(o->beta1, (double)t), bc2 = 1.0 - pow(o->beta2, (double)t);
    const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    for (size_t k = 0; k < ps->count; k++) {
        const ParamSpec *s = &ps->specs[k];
        float decay = o->decay[s->group] ? (float)o->weight_decay : 0.0f;
        adam_update(ps->values + s->offset, ps->grads + s->offset, ps->adam_m + s->offset, ps->adam_v + s->offset,
                    s->numel, (float)lr, decay, (float)o->beta1, (float)o->beta2, step_size, bc2_sqrt, (float)o->eps);
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

double schedule_lr(const Config *cfg, uint64_t s) {
    const double w = cfg->warmup_step, peak = cfg->lr;
    if (strcmp(cfg->scheduler, "cosine_txl") == 0) return cosine_txl(cfg, s);
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
