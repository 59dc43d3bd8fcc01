/* taskrig.c — see taskrig.h. */
#include "taskrig.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "rig.h"
#include "test.h"

int taskrig_model(Model *m, Config *c, const char *task, const char *entries, size_t V) {
    config_defaults(c);
    snprintf(c->task, sizeof c->task, "%s", task);
    snprintf(c->arch, sizeof c->arch, "sf");
    c->d_model = 16;
    c->n_head = 2;
    c->d_inner = 32;
    c->tgt_len = 8;
    c->causal = false;
    c->dropout = 0.0;
    Error err = {0};
    if (rig_set_entries(c, entries)) return -1;
    if (config_finalize(c, &err) || model_build(m, c, V, &err)) return printf("    %s\n", err.msg), -1;
    model_init(m, 5);
    return 0;
}

typedef struct {
    Model *m;
    const Batch *b;
    PassMode mode; /* zero: evaluation */
} PassCtx;

static double pass_loss(void *ctx, double *abs_sum) {
    PassCtx *p = ctx;
    double loss = 0;
    Error err = {0};
    if (model_forward_batch(p->m, p->b, &p->mode, 0.0f, &loss, &err)) return NAN;
    *abs_sum = fabs(loss);
    return loss;
}

float *taskrig_gradients(Model *m, const Batch *b, PassMode mode, const char *const *names, size_t n,
                         const char *label, double *loss) {
    Error err = {0};
    if (model_plan(m, b->B, b->T, &err) || (model_zero_grad(m), model_forward_batch(m, b, &mode, 1.0f, loss, &err))) {
        test_fail(__FILE__, __LINE__, "%s: %s", label, err.msg);
        return NULL;
    }
    model_backward(m, &mode);
    float *grads = malloc(m->params.total * sizeof(float));
    memcpy(grads, m->params.grads, m->params.total * sizeof(float));
    PassCtx ctx = {m, b, mode};
    for (size_t k = 0; k < n; k++) {
        const ParamSpec *s = params_find(&m->params, names[k]);
        CHECK(s, "%s: no %s", label, names[k]);
        if (!s) continue;
        CHECK(gradcheck(names[k], m->params.values + s->offset, grads + s->offset, s->numel, pass_loss, &ctx, 3e-3f, 24,
                        NULL) == 0,
              "%s: %s", label, names[k]);
    }
    return grads;
}

int taskrig_open(Config *c, Tokenizer *tok, Task *t, Error *err) {
    return config_finalize(c, err) || corpus_tokenizer(c, tok, err) || task_open(t, c, tok, true, err) ? -1 : 0;
}
