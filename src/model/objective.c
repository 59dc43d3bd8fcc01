/* objective.c — see objective.h. */
#include "objective.h"

#include <math.h>
#include <string.h>

#include "../nn/keys.h"
#include "../nn/module.h"
#include "../ops/ops.h"
#include "heads.h"

static const ModuleKey objective_keys[] = {
    MODULE_KEY(Objective, pooling, KEY_CHOICE, "mean", "mean|first|last", NULL, 0, -1,
               "classification/regression: one vector per text, the mean over its real tokens, its first or its "
               "last token"),
    MODULE_KEY(Objective, classes, KEY_INT, "2", NULL, NULL, 2, 1e6, "classification: number of classes"),
    MODULE_KEY(Objective, pair, KEY_BOOL, "false", NULL, NULL, 0, -1,
               "two texts per example encoded apart, classified from [u, v, u*v, u-v]"),
    MODULE_KEY(Objective, mlm_transform, KEY_BOOL, "false", NULL, NULL, 0, -1,
               "mlm: BERT's head transform LN(act(dense(x))) before the vocabulary head (the Nystromformer code)"),
    MODULE_KEY(Objective, pooler, KEY_CHOICE, "none", "none|tanh", NULL, 0, -1,
               "classification/regression: tanh puts BERT's pooler, Dropout -> dense -> tanh -> Dropout (the "
               "model's dropout), between the pooled vector and the classifier"),
    MODULE_KEY(Objective, init_std, KEY_FLOAT, "0.02", NULL, "init_std", 1e-12, 1e6, "std of the head's weights"),
    MODULE_KEY(Objective, init, KEY_CHOICE, "seqlab", INIT_SCHEMES, "init", 0, -1,
               "scheme of the head's dense layers: pytorch U(+-1/sqrt(fan_in)) weights and biases, else N(0, init_std) "
               "and 0"),
    {0}};

int objective_kind(const char *task, ObjectiveKind *kind) {
    static const struct {
        const char *task;
        ObjectiveKind kind;
    } tasks[] = {{"lm", OBJ_LM},
                 {"mlm", OBJ_MLM},
                 {"classification", OBJ_CLASSIFICATION},
                 {"regression", OBJ_REGRESSION},
                 {"assoc_recall", OBJ_LM}, /* next-token prediction over generated sequences */
                 {"wikihop", OBJ_SLOTS}};
    for (size_t i = 0; i < sizeof tasks / sizeof *tasks; i++)
        if (!strcmp(tasks[i].task, task)) return *kind = tasks[i].kind, 0;
    return -1;
}

static bool pooled(const Objective *o) { return o->kind == OBJ_CLASSIFICATION || o->kind == OBJ_REGRESSION; }

/* The objectives with a linear head of their own (head.weight, head.bias). */
static bool own_head(const Objective *o) { return pooled(o) || o->kind == OBJ_SLOTS; }

int objective_configure(Objective *o, const Config *cfg, size_t C, Error *err) {
    memset(o, 0, sizeof *o);
    if (objective_kind(cfg->task, &o->kind)) return err_set(err, "key 'task': unknown task '%s'", cfg->task);
    ModuleSpec spec = {.cfg = cfg, .kind = "objective", .flat = true, .C_in = C, .C_out = C};
    snprintf(spec.name, sizeof spec.name, "%s", cfg->task);
    snprintf(spec.section[1], sizeof spec.section[1], "objective");
    if (keys_read(objective_keys, o, &spec, err) || keys_check_entries(objective_keys, NULL, &spec, cfg->task, err))
        return -1;
    o->pool = !strcmp(o->pooling, "first") ? POOL_FIRST : !strcmp(o->pooling, "last") ? POOL_LAST : POOL_MEAN;
    o->C = C;
    o->K = o->kind == OBJ_REGRESSION || o->kind == OBJ_SLOTS ? 1 : (size_t)o->classes;
    o->in = o->pair ? 4 * C : C;
    if (o->pair && o->kind != OBJ_CLASSIFICATION && o->kind != OBJ_REGRESSION)
        return err_set(err, "key 'objective.pair' needs task classification or regression");
    if (o->mlm_transform && o->kind != OBJ_MLM) return err_set(err, "key 'objective.mlm_transform' needs task mlm");
    if (strcmp(o->pooler, "none") && (!pooled(o) || o->pair))
        return err_set(err, "key 'objective.pooler' needs task classification or regression without pair");
    if (activation_parse(cfg->activation, &o->act)) return err_set(err, "unknown activation '%s'", cfg->activation);
    return 0;
}

size_t objective_examples(const Objective *o, size_t B) { return o->pair ? B / 2 : B; }

void objective_params(Objective *o, ParamSet *ps) {
    params_prefix(ps, "%s", "");
    if (o->mlm_transform) {
        params_add(ps, "mlm_head.dense.weight", &o->tw, &o->dtw, GROUP_LINEAR, 2, o->C, o->C);
        params_add(ps, "mlm_head.dense.bias", &o->tb, &o->dtb, GROUP_BIAS, 1, o->C);
        params_add(ps, "mlm_head.norm.weight", &o->nw, &o->dnw, GROUP_NORM, 1, o->C);
        params_add(ps, "mlm_head.norm.bias", &o->nb, &o->dnb, GROUP_NORM, 1, o->C);
    }
    if (!own_head(o)) return;
    if (strcmp(o->pooler, "none")) {
        params_add(ps, "pooler.weight", &o->pw, &o->dpw, GROUP_LINEAR, 2, o->C, o->C);
        params_add(ps, "pooler.bias", &o->pb, &o->dpb, GROUP_BIAS, 1, o->C);
    }
    params_add(ps, "head.weight", &o->w, &o->dw, GROUP_LINEAR, 2, o->K, o->in);
    params_add(ps, "head.bias", &o->b, &o->db, GROUP_BIAS, 1, o->K);
}

/* A dense layer (out, in) of the head: U(+-1/sqrt(in)) under pytorch, else N(0, init_std) and bias 0. */
static void dense_init(const Objective *o, float *w, float *b, size_t out, size_t in, uint64_t seed, uint64_t scope,
                       int index) {
    if (!strcmp(o->init, "pytorch")) {
        const float bound = 1.0f / sqrtf((float)in);
        init_uniform(w, out * in, bound, seed, scope, index);
        init_uniform(b, out, bound, seed, scope, index + 1);
        return;
    }
    init_normal(w, out * in, (float)o->init_std, seed, scope, index);
    memset(b, 0, out * sizeof(float));
}

void objective_init(Objective *o, uint64_t seed, uint64_t scope) {
    if (o->mlm_transform) {
        dense_init(o, o->tw, o->tb, o->C, o->C, seed, scope, 82);
        for (size_t c = 0; c < o->C; c++) o->nw[c] = 1.0f, o->nb[c] = 0.0f;
    }
    if (o->pw) dense_init(o, o->pw, o->pb, o->C, o->C, seed, scope, 84);
    if (own_head(o)) dense_init(o, o->w, o->b, o->K, o->in, seed, scope, 80);
}

void objective_layout(Objective *o, size_t B, size_t T, Arena *a) {
    const size_t N = B * T, E = objective_examples(o, B);
    if (pooled(o)) {
        o->pooled = arena_take(a, B * o->C);
        o->dpooled = arena_take(a, B * o->C);
        o->feat = arena_take(a, E * o->in);
        o->dfeat = arena_take(a, E * o->in);
        if (o->pw) {
            o->p_in = arena_take(a, E * o->C);
            o->p_out = arena_take(a, E * o->C);
        }
        o->scores = arena_take(a, E * o->K);
        o->dscores = arena_take(a, E * o->K);
        o->losses = arena_take(a, E);
    }
    if (o->kind == OBJ_SLOTS) {
        o->scores = arena_take(a, N);
        o->dscores = arena_take(a, N);
        o->losses = arena_take(a, B);
    }
    if (o->kind == OBJ_MLM) {
        o->rows = arena_take(a, N * o->C);
        o->drows = arena_take(a, N * o->C);
        if (o->mlm_transform) {
            o->t_act = arena_take(a, N * o->C);
            o->t_slope = arena_take(a, N * o->C);
            o->t_out = arena_take(a, N * o->C);
            o->t_dtmp = arena_take(a, N * o->C);
            o->t_mean = arena_take(a, N);
            o->t_rstd = arena_take(a, N);
        }
        o->index = (int32_t *)arena_take(a, N);
        o->targets = (int32_t *)arena_take(a, N);
        o->row_losses = arena_take(a, N);
    }
}

/* ---- pooling ---- */

static bool real(const ObjectiveBatch *b, size_t r, size_t t) { return !b->mask || b->mask[r * b->T + t] != 0.0f; }

/* The last real position of row r (0 if none). */
static size_t last_real(const ObjectiveBatch *b, size_t r) {
    size_t last = 0;
    for (size_t t = 0; t < b->T; t++)
        if (real(b, r, t)) last = t;
    return last;
}

/* The weight of position t in row r's pooled vector. */
static float pool_weight(const Objective *o, const ObjectiveBatch *b, size_t r, size_t t, float n_real) {
    switch (o->pool) {
    case POOL_MEAN: return real(b, r, t) ? 1.0f / n_real : 0.0f;
    case POOL_FIRST: return t == 0 ? 1.0f : 0.0f;
    case POOL_LAST: return t == last_real(b, r) ? 1.0f : 0.0f;
    }
    return 0.0f;
}

static float real_count(const ObjectiveBatch *b, size_t r) {
    float n = 0.0f;
    for (size_t t = 0; t < b->T; t++) n += real(b, r, t) ? 1.0f : 0.0f;
    return n > 0.0f ? n : 1.0f;
}

static void pool_forward(Objective *o, const float *hidden, const ObjectiveBatch *b) {
    const size_t C = o->C;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < b->B; r++) {
        float *p = o->pooled + r * C, n = real_count(b, r);
        memset(p, 0, C * sizeof(float));
        for (size_t t = 0; t < b->T; t++) {
            float w = pool_weight(o, b, r, t, n);
            if (w == 0.0f) continue;
            const float *h = hidden + (r * b->T + t) * C;
            for (size_t c = 0; c < C; c++) p[c] += w * h[c];
        }
    }
}

static void pool_backward(const Objective *o, const ObjectiveBatch *b, float *dhidden) {
    const size_t C = o->C;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < b->B; r++) {
        float n = real_count(b, r);
        for (size_t t = 0; t < b->T; t++) {
            float w = pool_weight(o, b, r, t, n), *dh = dhidden + (r * b->T + t) * C;
            for (size_t c = 0; c < C; c++) dh[c] = w * o->dpooled[r * C + c];
        }
    }
}

/* ---- the classifier's input: u, or [u, v, u*v, u-v] for pairs ---- */

/* BERT's pooler: feat = Dropout(tanh(dense(Dropout(pooled)))). */
static void pooler_forward(Objective *o, const ObjectiveBatch *b, size_t E) {
    const size_t C = o->C;
    dropout_forward(o->p_in, o->pooled, E * C, &b->pooler_drop[0]);
    linear_forward(o->p_out, o->p_in, o->pw, o->pb, E, C, C);
    for (size_t i = 0; i < E * C; i++) o->p_out[i] = tanhf(o->p_out[i]);
    dropout_forward(o->feat, o->p_out, E * C, &b->pooler_drop[1]);
}

static void pooler_backward(Objective *o, const ObjectiveBatch *b, size_t E) {
    const size_t C = o->C;
    dropout_backward(o->dfeat, o->dfeat, E * C, &b->pooler_drop[1]);
    for (size_t i = 0; i < E * C; i++) o->dfeat[i] *= 1.0f - o->p_out[i] * o->p_out[i];
    linear_backward(o->dpooled, o->dpw, o->dpb, o->dfeat, o->p_in, o->pw, E, C, C, false);
    dropout_backward(o->dpooled, o->dpooled, E * C, &b->pooler_drop[0]);
}

static void features(Objective *o, const ObjectiveBatch *b, size_t E) {
    const size_t C = o->C;
    if (o->pw) {
        pooler_forward(o, b, E);
        return;
    }
    if (!o->pair) {
        memcpy(o->feat, o->pooled, E * C * sizeof(float));
        return;
    }
    for (size_t e = 0; e < E; e++) {
        const float *u = o->pooled + 2 * e * C, *v = u + C;
        float *f = o->feat + e * 4 * C;
        for (size_t c = 0; c < C; c++) {
            f[c] = u[c];
            f[C + c] = v[c];
            f[2 * C + c] = u[c] * v[c];
            f[3 * C + c] = u[c] - v[c];
        }
    }
}

static void features_backward(Objective *o, const ObjectiveBatch *b, size_t E) {
    const size_t C = o->C;
    if (o->pw) {
        pooler_backward(o, b, E);
        return;
    }
    if (!o->pair) {
        memcpy(o->dpooled, o->dfeat, E * C * sizeof(float));
        return;
    }
    for (size_t e = 0; e < E; e++) {
        const float *u = o->pooled + 2 * e * C, *v = u + C, *df = o->dfeat + e * 4 * C;
        float *du = o->dpooled + 2 * e * C, *dv = du + C;
        for (size_t c = 0; c < C; c++) {
            du[c] = df[c] + df[2 * C + c] * v[c] + df[3 * C + c];
            dv[c] = df[C + c] + df[2 * C + c] * u[c] - df[3 * C + c];
        }
    }
}

/* ---- losses ---- */

/* Cross-entropy of the logits in scores; dscores (written over dlogits) when grad_scale != 0. */
static double classify_loss(Objective *o, const ObjectiveBatch *b, size_t E, float grad_scale, float *dlogits) {
    double sum = 0.0;
    for (size_t e = 0; e < E; e++) {
        const float *z = o->scores + e * o->K;
        float mx = -INFINITY;
        for (size_t k = 0; k < o->K; k++) mx = z[k] > mx ? z[k] : mx;
        double s = 0.0;
        for (size_t k = 0; k < o->K; k++) s += exp((double)(z[k] - mx));
        const double lse = mx + log(s);
        o->losses[e] = (float)(lse - z[b->labels[e]]);
        sum += o->losses[e];
        for (size_t k = 0; grad_scale != 0.0f && k < o->K; k++)
            dlogits[e * o->K + k] = grad_scale * (float)(exp(z[k] - lse) - (k == (size_t)b->labels[e]));
    }
    return sum;
}

/* Squared error of the predictions in scores. */
static double regress_loss(Objective *o, const ObjectiveBatch *b, size_t E, float grad_scale, float *dpred) {
    double sum = 0.0;
    for (size_t e = 0; e < E; e++) {
        const float diff = o->scores[e] - b->values[e];
        o->losses[e] = diff * diff;
        sum += o->losses[e];
        if (grad_scale != 0.0f) dpred[e] = grad_scale * 2.0f * diff;
    }
    return sum;
}

double objective_pooled(Objective *o, const float *hidden, const ObjectiveBatch *b, float grad_scale,
                        float *dhidden) {
    const size_t E = objective_examples(o, b->B);
    pool_forward(o, hidden, b);
    features(o, b, E);
    linear_forward(o->scores, o->feat, o->w, o->b, E, o->in, o->K);
    if (!b->labels && !b->values) return 0.0; /* predictions only: the scores */
    double sum = o->kind == OBJ_CLASSIFICATION ? classify_loss(o, b, E, grad_scale, o->dscores)
                                               : regress_loss(o, b, E, grad_scale, o->dscores);
    if (grad_scale == 0.0f) return sum;
    linear_backward(o->dfeat, o->dw, o->db, o->dscores, o->feat, o->w, E, o->in, o->K, false);
    features_backward(o, b, E);
    pool_backward(o, b, dhidden);
    return sum;
}

/* ---- candidate slots ---- */

/* Row r's loss: the log-sum-exp of its slots' scores minus the answer's;
 * dz (T) the gradient (0 off the slots) when grad_scale != 0. */
static double slots_row_loss(const float *z, const float *slots, size_t T, int32_t answer, float grad_scale,
                             float *dz) {
    float mx = z[answer];
    for (size_t t = 0; t < T; t++) mx = slots[t] != 0.0f && z[t] > mx ? z[t] : mx;
    double s = 0.0;
    for (size_t t = 0; t < T; t++) s += slots[t] != 0.0f ? exp((double)(z[t] - mx)) : 0.0;
    const double lse = mx + log(s);
    for (size_t t = 0; grad_scale != 0.0f && t < T; t++)
        dz[t] = slots[t] != 0.0f ? grad_scale * (float)(exp(z[t] - lse) - ((int32_t)t == answer)) : 0.0f;
    return lse - z[answer];
}

double objective_slots(Objective *o, const float *hidden, const ObjectiveBatch *b, float grad_scale, float *dhidden) {
    const size_t N = b->B * b->T;
    linear_forward(o->scores, hidden, o->w, o->b, N, o->C, 1);
    if (!b->labels) return 0.0; /* predictions only: the scores */
    double sum = 0.0;
    for (size_t r = 0; r < b->B; r++) {
        o->losses[r] = (float)slots_row_loss(o->scores + r * b->T, b->slots + r * b->T, b->T, b->labels[r], grad_scale,
                                             o->dscores + r * b->T);
        sum += o->losses[r];
    }
    if (grad_scale != 0.0f) linear_backward(dhidden, o->dw, o->db, o->dscores, hidden, o->w, N, o->C, 1, false);
    return sum;
}

const float *objective_transform(Objective *o, const float *x, size_t n) {
    if (!o->mlm_transform) return x;
    linear_forward(o->t_act, x, o->tw, o->tb, n, o->C, o->C);
    activation_grad(o->t_act, o->t_slope, o->t_act, n * o->C, o->act);
    layernorm_forward(o->t_out, o->t_mean, o->t_rstd, o->t_act, o->nw, o->nb, n, o->C);
    return o->t_out;
}

/* dx (n, C) overwritten from the gradient dy of the transform's output (may alias dx). */
static void transform_backward(Objective *o, float *dx, const float *dy, const float *x, size_t n) {
    const size_t C = o->C;
    layernorm_backward(o->t_dtmp, o->dnw, o->dnb, dy, o->t_act, o->t_mean, o->t_rstd, o->nw, n, C, false);
    for (size_t i = 0; i < n * C; i++) o->t_dtmp[i] *= o->t_slope[i];
    linear_backward(dx, o->dtw, o->dtb, o->t_dtmp, x, o->tw, n, C, C, false);
}

double objective_masked(Objective *o, struct Head *h, const float *hidden, const ObjectiveBatch *b, float *losses,
                        float grad_scale, float *dhidden, size_t *scored) {
    const size_t N = b->B * b->T, C = o->C;
    size_t n = 0;
    for (size_t r = 0; r < N; r++) {
        losses[r] = 0.0f;
        if (b->targets[r] < 0) continue;
        o->index[n] = (int32_t)r;
        o->targets[n] = b->targets[r];
        memcpy(o->rows + n * C, hidden + r * C, C * sizeof(float));
        n++;
    }
    *scored = n;
    if (grad_scale != 0.0f) memset(dhidden, 0, N * C * sizeof(float));
    if (!n) return 0.0;
    double sum = head_loss(h, objective_transform(o, o->rows, n), n, o->targets, o->row_losses, grad_scale, o->drows);
    if (grad_scale != 0.0f && o->mlm_transform) transform_backward(o, o->drows, o->drows, o->rows, n);
    for (size_t k = 0; k < n; k++) {
        const size_t r = (size_t)o->index[k];
        losses[r] = o->row_losses[k];
        if (grad_scale != 0.0f) memcpy(dhidden + r * C, o->drows + k * C, C * sizeof(float));
    }
    return sum;
}
