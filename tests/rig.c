/* rig.c — see rig.h. */
#include "rig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/rng.h"
#include "../src/model/trunk.h"
#include "gradcheck.h"

int rig_set_entries(Config *c, const char *entries) {
    char list[512];
    snprintf(list, sizeof list, "%s", entries ? entries : "");
    for (char *save = NULL, *kv = strtok_r(list, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(kv, '=');
        Error err = {0};
        if (!eq) return printf("    entry '%s' has no '='\n", kv), -1;
        *eq = 0;
        if (config_set(c, kv, eq + 1, "test", &err)) return printf("    %s\n", err.msg), -1;
    }
    return 0;
}

void rig_config(Config *c) {
    config_defaults(c);
    c->d_model = 12;
    c->n_head = 3;
    c->d_head = 4;
    c->d_inner = 20;
    c->dropout = 0.0;
    c->dropatt = 0.0;
    c->max_len = 512;
    c->tgt_len = 16;
    c->eval_tgt_len = 16;
    c->diag_size = 5;
    c->linear_chunk = 64;
    c->sparse_ratio = 2.5;
    snprintf(c->kernels, sizeof c->kernels, "elu");
}

static void fill_normal(float *x, size_t n, float std, uint64_t stream) {
    Rng r = rng_make(7, rng_stream(RNG_TEST, stream, 0));
    for (size_t i = 0; i < n; i++) x[i] = std * rng_normal(&r);
}

int rig_build(Rig *rig, const char *name, const char *kind, const Config *cfg, size_t B, size_t T) {
    memset(rig, 0, sizeof *rig);
    rig->cfg = *cfg;
    rig->B = B;
    rig->T = T;
    rig->C = (size_t)cfg->d_model;
    Error err = {0};
    ModuleSpec spec = {.cfg = &rig->cfg, .kind = kind, .flat = true, .C_in = rig->C, .C_out = rig->C};
    snprintf(spec.name, sizeof spec.name, "%s", name);
    snprintf(spec.section[1], sizeof spec.section[1], "%s", kind);
    /* at the root: parameters keep their module-local names ("q_net.weight");
     * a "sublayer" is the trunk's residual wrapper around the config's mixer
     * (name "s") or feed-forward ("f") */
    rig->m = strcmp(kind, "sublayer") ? module_build(&spec, &err) : trunk_sublayer(&rig->cfg, name[0], 0, rig->C, &err);
    if (!rig->m || !(rig->f = frame_create(rig->m, "blocks.0", &err))) {
        printf("    module_build: %s\n", err.msg);
        return -1;
    }
    params_init(&rig->ps);
    module_params(rig->m, &rig->ps);
    if (params_allocate(&rig->ps, &err)) return -1;
    module_init(rig->m, 11);
    fill_normal(rig->ps.values, rig->ps.total, 0.3f, 1);
    Arena count = arena_counting();
    module_layout(rig->f, B, T, &count);
    if (arena_alloc(&rig->arena, count.used, &err)) return -1;
    module_layout(rig->f, B, T, &rig->arena);
    size_t n = B * T * rig->C;
    rig->x = calloc(4 * n, sizeof(float));
    rig->scratch = calloc(module_scratch(rig->m, B, T) + 1, sizeof(float));
    rig->y = rig->x + n;
    rig->r = rig->y + n;
    rig->dx = rig->r + n;
    fill_normal(rig->x, n, 1.0f, 2);
    fill_normal(rig->r, n, 1.0f, 3);
    rig->ctx = (Ctx){.B = B, .T = T, .training = true, .causal = cfg->causal, .seed = 5, .step = 3,
                     .scratch = rig->scratch};
    return 0;
}

void rig_free(Rig *rig) {
    frame_free(rig->f);
    module_free(rig->m);
    params_free(&rig->ps);
    arena_free(&rig->arena);
    free(rig->x);
    free(rig->scratch);
}

float *rig_param(const Rig *rig, const char *name) {
    const ParamSpec *s = params_find(&rig->ps, name);
    return s ? rig->ps.values + s->offset : NULL;
}

float *rig_grad(const Rig *rig, const char *name) {
    const ParamSpec *s = params_find(&rig->ps, name);
    return s ? rig->ps.grads + s->offset : NULL;
}

double rig_loss(void *ctx, double *abs_sum) {
    Rig *rig = ctx;
    module_forward(rig->f, rig->x, rig->y, &rig->ctx);
    return weighted_sum(rig->y, rig->r, rig->B * rig->T * rig->C, abs_sum);
}

void rig_backward(Rig *rig) {
    memset(rig->ps.grads, 0, rig->ps.total * sizeof(float));
    module_forward(rig->f, rig->x, rig->y, &rig->ctx);
    module_backward(rig->f, rig->r, rig->dx, &rig->ctx);
}

int rig_gradcheck(Rig *rig, size_t max_checks, float h) {
    rig_backward(rig);
    int failures = 0;
    /* the analytic gradients are kept aside: the loss closure reruns forward */
    size_t n = rig->B * rig->T * rig->C;
    float *dx = malloc(n * sizeof(float)), *dp = malloc(rig->ps.total * sizeof(float));
    memcpy(dx, rig->dx, n * sizeof(float));
    memcpy(dp, rig->ps.grads, rig->ps.total * sizeof(float));
    failures += gradcheck("dx", rig->x, dx, n, rig_loss, rig, h, max_checks, NULL) != 0;
    for (size_t k = 0; k < rig->ps.count; k++) {
        const ParamSpec *s = &rig->ps.specs[k];
        failures += gradcheck(s->name, rig->ps.values + s->offset, dp + s->offset, s->numel, rig_loss, rig, h,
                              max_checks, NULL) != 0;
    }
    free(dx);
    free(dp);
    return failures;
}
