/* moe.c — the mixture-of-experts feed-forward (the Brainformer 'g'
 * sublayer; spec moe-brainformer.md §4): E experts, each an MLP
 * fc2(Dropout(act(fc1 x))), and a gate that sends every token to the k
 * experts of its largest logits, weighted by the softmax over those k
 * logits (fastmoe's NaiveGate: no noise, no capacity limit, nothing dropped).
 *
 * Dispatch: the token-expert pairs are counting-sorted by expert (stable in
 * token order), each expert runs its contiguous rows as one GEMM pair, and the
 * outputs are added back to their tokens with the gate weights. Backward goes
 * the same way round; the top-k choice itself carries no gradient, the gate
 * gets it through the softmax over the chosen logits (§4.2).
 *
 * Policies (§4.3): smoe trains the gate with k = top_k; smoedropout freezes the
 * gate at its random init, and with smoedropout_apply_schedule grows k from
 * schedule_k_min to schedule_k_max over the run (the reference code computes
 * that schedule but never applies it, so the default keeps k = top_k).
 * Evaluation routes to eval_top_k experts. An optional load-balance loss
 * (balance_loss > 0: E sum_e f_e P_e, the repository's unused balance gate)
 * joins the objective as an auxiliary loss; per-expert loads go to the
 * statistics. */
#include <math.h>
#include <string.h>

#include "../core/gemm.h"
#include "../nn/module.h"
#include "../ops/ops.h"

typedef struct {
    Module base;
    int num_experts, top_k, eval_top_k;
    int d_inner;
    char activation[CFG_NAME], policy[CFG_NAME], init[CFG_NAME];
    double dropout, output_dropout, init_std, balance_loss;
    bool smoedropout_apply_schedule;
    int schedule_k_min, schedule_k_max;
    /* derived */
    size_t E, F, k_max; /* experts, hidden width, the most experts a token can go to */
    Activation act;
    bool frozen_gate;
    long max_step, eval_interval, batch_split; /* the schedule's clock (the run's keys) */
    float *wg, *dwg; /* gate (E, C) */
    float *bg, *dbg; /* (E) */
    float *w1, *dw1; /* (E, F, C) */
    float *b1, *db1; /* (E, F) */
    float *w2, *dw2; /* (E, C, F) */
    float *b2, *db2; /* (E, C) */
} Moe;

static const ModuleKey moe_keys[] = {
    MODULE_KEY(Moe, num_experts, KEY_INT, "16", NULL, NULL, 1, 4096, "experts (E)"),
    MODULE_KEY(Moe, top_k, KEY_INT, "2", NULL, NULL, 1, 4096, "experts per token in training (k)"),
    MODULE_KEY(Moe, eval_top_k, KEY_INT, "2", NULL, NULL, 1, 4096,
               "experts per token in evaluation and generation (the reference evaluates with 2 under every policy)"),
    MODULE_KEY(Moe, d_inner, KEY_INT, "0", NULL, "d_inner", 0, 1e9, "each expert's hidden width; 0 = 4 C"),
    MODULE_KEY(Moe, activation, KEY_CHOICE, "relu", ACTIVATIONS, NULL, 0, -1, "the experts' activation"),
    MODULE_KEY(Moe, dropout, KEY_FLOAT, "0.1", NULL, "dropout", 0, 0.999, "dropout on the experts' hidden units"),
    MODULE_KEY(Moe, output_dropout, KEY_FLOAT, "-1", NULL, NULL, -1, 0.999,
               "dropout on the mixture's output (before the residual add); -1 = dropout"),
    MODULE_KEY(Moe, policy, KEY_CHOICE, "smoe", "smoe|smoedropout", NULL, 0, -1,
               "smoe: trained gate, k = top_k; smoedropout: the gate frozen at its random init"),
    MODULE_KEY(Moe, smoedropout_apply_schedule, KEY_BOOL, "false", NULL, NULL, 0, -1,
               "smoedropout: grow k from schedule_k_min to schedule_k_max over max_step (the reference computes "
               "this schedule but never applies it: false reproduces its runs)"),
    MODULE_KEY(Moe, schedule_k_min, KEY_INT, "8", NULL, NULL, 1, 4096, "first k of the smoedropout schedule"),
    MODULE_KEY(Moe, schedule_k_max, KEY_INT, "16", NULL, NULL, 1, 4096, "last k of the smoedropout schedule"),
    MODULE_KEY(Moe, balance_loss, KEY_FLOAT, "0", NULL, NULL, 0, 1e6,
               "coefficient of the load-balance loss E sum_e f_e P_e added to the objective (0: off, the reference)"),
    MODULE_KEY(Moe, init, KEY_CHOICE, "fastmoe", "fastmoe|seqlab", NULL, 0, -1,
               "fastmoe: experts U(+-1/sqrt(out in)) (Kaiming on the 3-D tensor), zero biases, gate U(+-1/sqrt(C)); "
               "seqlab: N(0, init_std) weights, zero biases"),
    MODULE_KEY(Moe, init_std, KEY_FLOAT, "0.02", NULL, "init_std", 1e-12, 1e6, "std of the seqlab init"),
    {0}};

/* Per use: the routing and what backward needs. */
typedef struct {
    const float *x;   /* borrowed: (N, C) */
    float *logits;    /* (N, E) */
    int32_t *expert;  /* (N, k): the chosen experts, largest logit first */
    float *weight;    /* (N, k): their softmax weights */
    int32_t *pair;    /* (N k): sorted row -> pair (token t, choice j) as t k + j */
    int32_t *row;     /* (N k): pair -> sorted row */
    int32_t *start;   /* (E + 1): the first sorted row of each expert */
    float *h;         /* (N k, F): fc1's output with its bias, before the activation */
    float *out;       /* (N k, C): the experts' outputs */
    size_t k;         /* experts per token in this forward */
} MoeFrame;

enum { SITE_HIDDEN = 1, SITE_OUTPUT = 2 };

static int moe_configure(Module *m, const ModuleSpec *spec, Error *err) {
    Moe *e = (Moe *)m;
    e->E = (size_t)e->num_experts;
    e->F = e->d_inner ? (size_t)e->d_inner : 4 * m->C_in;
    if (m->C_in != m->C_out) return err_set(err, "%s: the experts map C to C (got %zu -> %zu)", m->path, m->C_in, m->C_out);
    if (activation_parse(e->activation, &e->act)) return err_set(err, "unknown activation '%s'", e->activation);
    const int ks[3] = {e->top_k, e->eval_top_k, e->smoedropout_apply_schedule ? e->schedule_k_max : 1};
    const char *names[3] = {"top_k", "eval_top_k", "schedule_k_max"};
    for (int i = 0; i < 3; i++)
        if (ks[i] > e->num_experts)
            return err_set(err, "%s: key '%s' = %d is more than num_experts %d", m->path, names[i], ks[i], e->num_experts);
    if (e->smoedropout_apply_schedule && strcmp(e->policy, "smoedropout") != 0)
        return err_set(err, "%s: key 'smoedropout_apply_schedule' is the smoedropout policy's (policy is %s)", m->path, e->policy);
    if (e->smoedropout_apply_schedule && e->schedule_k_min > e->schedule_k_max)
        return err_set(err, "%s: schedule_k_min %d is above schedule_k_max %d", m->path, e->schedule_k_min,
                       e->schedule_k_max);
    e->k_max = (size_t)(e->top_k > e->eval_top_k ? e->top_k : e->eval_top_k);
    if (e->smoedropout_apply_schedule && (size_t)e->schedule_k_max > e->k_max) e->k_max = (size_t)e->schedule_k_max;
    if (e->output_dropout < 0) e->output_dropout = e->dropout;
    e->frozen_gate = !strcmp(e->policy, "smoedropout");
    e->max_step = spec->cfg->max_step;
    e->eval_interval = spec->cfg->eval_interval > 0 ? spec->cfg->eval_interval : 1;
    e->batch_split = spec->cfg->batch_split;
    return 0;
}

static void moe_params(Module *m, ParamSet *ps) {
    Moe *e = (Moe *)m;
    const size_t C = m->C_in;
    params_add(ps, "gate.weight", &e->wg, &e->dwg, GROUP_LINEAR, 2, e->E, C);
    if (e->frozen_gate) params_fix_last(ps);
    params_add(ps, "gate.bias", &e->bg, &e->dbg, GROUP_BIAS, 1, e->E);
    if (e->frozen_gate) params_fix_last(ps);
    params_add(ps, "experts.fc1.weight", &e->w1, &e->dw1, GROUP_LINEAR, 3, e->E, e->F, C);
    params_add(ps, "experts.fc1.bias", &e->b1, &e->db1, GROUP_BIAS, 2, e->E, e->F);
    params_add(ps, "experts.fc2.weight", &e->w2, &e->dw2, GROUP_LINEAR, 3, e->E, C, e->F);
    params_add(ps, "experts.fc2.bias", &e->b2, &e->db2, GROUP_BIAS, 2, e->E, C);
}

static void moe_init(Module *m, uint64_t seed) {
    Moe *e = (Moe *)m;
    const size_t C = m->C_in, E = e->E, F = e->F;
    memset(e->b1, 0, E * F * sizeof(float));
    memset(e->b2, 0, E * C * sizeof(float));
    if (!strcmp(e->init, "fastmoe")) {
        /* Kaiming-uniform(a = sqrt 5) on the (E, out, in) tensor: fan-in out * in (§4.1) */
        const float bound = 1.0f / sqrtf((float)(F * C));
        module_init_uniform(m, e->w1, E * F * C, bound, seed, 0);
        module_init_uniform(m, e->w2, E * C * F, bound, seed, 1);
        module_init_uniform(m, e->wg, E * C, 1.0f / sqrtf((float)C), seed, 2); /* nn.Linear's default */
        module_init_uniform(m, e->bg, E, 1.0f / sqrtf((float)C), seed, 3);
    } else {
        module_init_normal(m, e->w1, E * F * C, (float)e->init_std, seed, 0);
        module_init_normal(m, e->w2, E * C * F, (float)e->init_std, seed, 1);
        module_init_normal(m, e->wg, E * C, (float)e->init_std, seed, 2);
        memset(e->bg, 0, E * sizeof(float));
    }
}

static void moe_layout(Module *m, Frame *fr, size_t B, size_t T, Arena *a) {
    Moe *e = (Moe *)m;
    MoeFrame *f = fr->data;
    const size_t N = B * T, K = e->k_max;
    f->logits = arena_take(a, N * e->E);
    f->expert = (int32_t *)arena_take(a, N * K);
    f->weight = arena_take(a, N * K);
    f->pair = (int32_t *)arena_take(a, N * K);
    f->row = (int32_t *)arena_take(a, N * K);
    f->start = (int32_t *)arena_take(a, e->E + 1);
    f->h = arena_take(a, N * K * e->F);
    f->out = arena_take(a, N * K * m->C_out);
}

/* Forward: the gathered inputs (N k, C) and the activations (N k, F).
 * Backward: the same two, act' with the dropout mask (N k, F), the output
 * gradient through the output dropout (N, C), the gradients of the experts'
 * outputs and inputs (N k, C each), of the weights (N k) and of the logits
 * (N, E). */
static size_t moe_scratch(Module *m, size_t B, size_t T) {
    Moe *e = (Moe *)m;
    const size_t N = B * T, NK = N * e->k_max, C = m->C_in, F = e->F;
    const size_t step = e->E + F + C + 2 * e->k_max; /* logits, one expert's h and y at a time, the choices */
    const size_t train = 3 * NK * C + 2 * NK * F + N * C + NK + N * e->E;
    return train > step ? train : step;
}

/* Experts per token in this forward: eval_top_k outside training; in
 * training top_k, or the smoedropout schedule's k at the start of the
 * running evaluation interval (the reference's "iteration"), its clock
 * counting micro-batches as the reference's step counter does (§4.3). */
static size_t experts_per_token(const Moe *e, const Ctx *c) {
    if (!c->training) return (size_t)e->eval_top_k;
    if (!e->smoedropout_apply_schedule) return (size_t)e->top_k;
    const double iteration_start = (double)(c->step / (uint64_t)e->eval_interval) * (double)e->eval_interval;
    const double micro = iteration_start * (double)e->batch_split, last = (double)e->max_step * (double)e->batch_split;
    const double span = e->schedule_k_max - e->schedule_k_min;
    long k = lround(span * micro / (last > 0 ? last : 1.0)) + e->schedule_k_min;
    k = k < e->schedule_k_min ? e->schedule_k_min : k > e->schedule_k_max ? e->schedule_k_max : k;
    return (size_t)k;
}

/* The k largest of E logits (ties: the lower expert first) and the softmax
 * over them. */
static void choose(const float *logits, size_t E, size_t k, int32_t *expert, float *weight) {
    for (size_t j = 0; j < k; j++) {
        int32_t best = -1;
        for (size_t x = 0; x < E; x++) {
            bool taken = false;
            for (size_t i = 0; i < j && !taken; i++) taken = expert[i] == (int32_t)x;
            if (!taken && (best < 0 || logits[x] > logits[best])) best = (int32_t)x;
        }
        expert[j] = best;
    }
    const float most = logits[expert[0]];
    double sum = 0.0;
    for (size_t j = 0; j < k; j++) sum += weight[j] = expf(logits[expert[j]] - most);
    for (size_t j = 0; j < k; j++) weight[j] = (float)(weight[j] / sum);
}

/* Counting sort of the N k pairs by expert, stable in token order. */
static void sort_pairs(MoeFrame *f, size_t N, size_t E) {
    const size_t NK = N * f->k;
    memset(f->start, 0, (E + 1) * sizeof(int32_t));
    for (size_t p = 0; p < NK; p++) f->start[f->expert[p] + 1]++;
    for (size_t x = 0; x < E; x++) f->start[x + 1] += f->start[x];
    int32_t next[4096];
    memcpy(next, f->start, E * sizeof(int32_t));
    for (size_t p = 0; p < NK; p++) {
        const int32_t r = next[f->expert[p]]++;
        f->pair[r] = (int32_t)p;
        f->row[p] = r;
    }
}

/* The dropout key of the hidden units of pair p (its own I floats, whatever
 * row the sort gave it, so masks do not depend on the other tokens). */
static DropoutKey hidden_key(const Moe *e, const Ctx *c, size_t k, int32_t p) {
    DropoutKey key = ctx_dropout(c, SITE_HIDDEN, (float)e->dropout, k * e->F);
    key.first += (uint64_t)p * e->F;
    return key;
}

/* g (rows, F) = Dropout(act(h)) for sorted rows [r0, r0 + rows); with d,
 * also d = act'(h) * mask / (1 - p) (what backward multiplies by). */
static void hidden_units(const Moe *e, const MoeFrame *f, const Ctx *c, size_t r0, size_t rows, float *g, float *d) {
    const size_t F = e->F;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        const float *h = f->h + (r0 + r) * F;
        const DropoutKey key = hidden_key(e, c, f->k, f->pair[r0 + r]);
        if (d) {
            activation_grad(g + r * F, d + r * F, h, F, e->act);
            dropout_backward(d + r * F, d + r * F, F, &key);
        } else {
            activation_forward(g + r * F, h, F, e->act);
        }
        dropout_forward(g + r * F, g + r * F, F, &key);
    }
}

/* Routes every token: logits, choices, weights, the sorted pairs. */
static void route(Moe *e, MoeFrame *f, const float *x, size_t N) {
    const size_t C = e->base.C_in, k = f->k;
    linear_forward(f->logits, x, e->wg, e->bg, N, C, e->E);
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < N; t++) choose(f->logits + t * e->E, e->E, k, f->expert + t * k, f->weight + t * k);
    sort_pairs(f, N, e->E);
}

/* The share of the N k choices each expert got, as statistics (a balanced
 * gate gives 1 / E each) and, with balance_loss, the auxiliary loss. */
static void report_load(const Moe *e, const MoeFrame *f, size_t N, const Ctx *c) {
    const double NK = (double)(N * f->k);
    if (c->stats)
        for (size_t x = 0; x < e->E; x++) {
            char name[32];
            snprintf(name, sizeof name, "load.%zu", x);
            ctx_stat(c, name, (double)(f->start[x + 1] - f->start[x]) / NK);
        }
    if (!(e->balance_loss > 0 && c->aux && c->training)) return;
    double loss = 0.0; /* E sum_e f_e P_e, P_e = sum_t softmax(l_t)_e / (N k) */
    for (size_t t = 0; t < N; t++) {
        const float *l = f->logits + t * e->E;
        float most = l[0];
        for (size_t x = 1; x < e->E; x++) most = fmaxf(most, l[x]);
        double z = 0.0, dot = 0.0;
        for (size_t x = 0; x < e->E; x++) {
            const double p = exp((double)(l[x] - most));
            z += p;
            dot += p * (f->start[x + 1] - f->start[x]) / NK;
        }
        loss += dot / z / NK;
    }
    c->aux->sum += e->balance_loss * (double)e->E * loss;
}

/* xs (N k, C): row r is the input of the token of sorted pair r. */
static void gather_inputs(float *xs, const float *x, const MoeFrame *f, size_t NK, size_t C) {
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < NK; r++) memcpy(xs + r * C, x + (size_t)f->pair[r] / f->k * C, C * sizeof(float));
}

/* y (N, C): each token's sum over its k pairs' rows of `rows` (N k, C, in
 * sorted order), weighted by `weight` (N, k) or not (NULL). A token's sum
 * runs in choice order, whatever the thread count. */
static void combine(float *y, const float *rows, const float *weight, const MoeFrame *f, size_t N, size_t C) {
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < N; t++) {
        float *yt = y + t * C;
        memset(yt, 0, C * sizeof(float));
        for (size_t j = 0; j < f->k; j++) {
            const float w = weight ? weight[t * f->k + j] : 1.0f, *o = rows + (size_t)f->row[t * f->k + j] * C;
#pragma omp simd
            for (size_t q = 0; q < C; q++) yt[q] += w * o[q];
        }
    }
}

static void moe_forward(Module *m, Frame *fr, const float *x, float *y, const Ctx *c) {
    Moe *e = (Moe *)m;
    MoeFrame *f = fr->data;
    const size_t N = c->B * c->T, C = m->C_in, F = e->F;
    f->x = x;
    f->k = experts_per_token(e, c);
    route(e, f, x, N);
    report_load(e, f, N, c);
    const size_t NK = N * f->k;
    float *xs = c->scratch, *g = xs + NK * C;
    gather_inputs(xs, x, f, NK, C);
    for (size_t x_ = 0; x_ < e->E; x_++) {
        const size_t r0 = (size_t)f->start[x_], rows = (size_t)f->start[x_ + 1] - r0;
        if (!rows) continue;
        linear_forward(f->h + r0 * F, xs + r0 * C, e->w1 + x_ * F * C, e->b1 + x_ * F, rows, C, F);
        hidden_units(e, f, c, r0, rows, g + r0 * F, NULL);
        linear_forward(f->out + r0 * C, g + r0 * F, e->w2 + x_ * C * F, e->b2 + x_ * C, rows, F, C);
    }
    combine(y, f->out, f->weight, f, N, C);
    const DropoutKey out = ctx_dropout(c, SITE_OUTPUT, (float)e->output_dropout, C);
    dropout_forward(y, y, N * C, &out);
}

/* The logits' gradient: through the softmax over the chosen logits (the
 * others get none), plus the balance loss's through the full softmax. */
static void logit_grads(const Moe *e, const MoeFrame *f, const float *dweight, size_t N, const Ctx *c, float *dlogits) {
    const size_t E = e->E, k = f->k;
    const bool balance = e->balance_loss > 0 && c->aux && c->training;
    const double NK = (double)(N * k), g_scale = balance ? e->balance_loss * c->aux->scale * (double)E / NK / NK : 0;
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < N; t++) {
        float *dl = dlogits + t * E;
        const float *w = f->weight + t * k, *dw = dweight + t * k;
        memset(dl, 0, E * sizeof(float));
        double mean = 0.0;
        for (size_t j = 0; j < k; j++) mean += (double)w[j] * dw[j];
        for (size_t j = 0; j < k; j++) dl[f->expert[t * k + j]] = (float)(w[j] * (dw[j] - mean));
        if (!balance) continue;
        const float *l = f->logits + t * E;
        float most = l[0];
        for (size_t x = 1; x < E; x++) most = fmaxf(most, l[x]);
        double z = 0.0, avg = 0.0;
        for (size_t x = 0; x < E; x++) z += exp((double)(l[x] - most));
        for (size_t x = 0; x < E; x++) avg += exp((double)(l[x] - most)) / z * (f->start[x + 1] - f->start[x]);
        for (size_t x = 0; x < E; x++) {
            const double p = exp((double)(l[x] - most)) / z;
            dl[x] += (float)(g_scale * p * ((f->start[x + 1] - f->start[x]) - avg));
        }
    }
}

static void moe_backward(Module *m, Frame *fr, const float *dy, float *dx, const Ctx *c) {
    Moe *e = (Moe *)m;
    MoeFrame *f = fr->data;
    const size_t N = c->B * c->T, C = m->C_in, F = e->F, k = f->k, NK = N * k;
    float *xs = c->scratch, *g = xs + NK * C, *d = g + NK * F, *dyo = d + NK * F, *dout = dyo + N * C;
    float *dxs = dout + NK * C, *dweight = dxs + NK * C, *dlogits = dweight + NK;
    const DropoutKey out = ctx_dropout(c, SITE_OUTPUT, (float)e->output_dropout, C);
    dropout_backward(dyo, dy, N * C, &out);
    /* each pair's output row gets w dy_t; its weight gets dy_t . (the row) */
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < NK; p++) {
        const size_t r = (size_t)f->row[p];
        const float w = f->weight[p], *o = f->out + r * C, *dt = dyo + (p / k) * C;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (size_t q = 0; q < C; q++) dot += dt[q] * o[q];
        for (size_t q = 0; q < C; q++) dout[r * C + q] = w * dt[q];
        dweight[p] = dot;
    }
    gather_inputs(xs, f->x, f, NK, C);
    for (size_t x_ = 0; x_ < e->E; x_++) {
        const size_t r0 = (size_t)f->start[x_], rows = (size_t)f->start[x_ + 1] - r0;
        if (!rows) continue;
        float *ge = g + r0 * F, *de = d + r0 * F, *doe = dout + r0 * C;
        const float *w1 = e->w1 + x_ * F * C, *w2 = e->w2 + x_ * C * F;
        hidden_units(e, f, c, r0, rows, ge, de);
        linear_backward(NULL, e->dw2 + x_ * C * F, e->db2 + x_ * C, doe, ge, w2, rows, F, C, false);
        gemm(false, false, rows, F, C, 1.0f, doe, C, w2, F, 0.0f, ge, F); /* g is done: its room takes dg */
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < rows * F; i++) ge[i] *= de[i];
        linear_backward(dxs + r0 * C, e->dw1 + x_ * F * C, e->db1 + x_ * F, ge, xs + r0 * C, w1, rows, C, F, false);
    }
    combine(dx, dxs, NULL, f, N, C);
    logit_grads(e, f, dweight, N, c, dlogits);
    linear_backward(dx, e->dwg, e->dbg, dlogits, f->x, e->wg, N, C, e->E, true);
}

/* Position-wise: one token needs no state. */
static size_t moe_state_size(Module *m, size_t max_T) {
    (void)m, (void)max_T;
    return 0;
}

/* One token through its eval_top_k experts, each a pair of one-row products. */
static void moe_step(Module *m, Frame *fr, float *state, size_t t, const float *x, float *y, const Ctx *c) {
    Moe *e = (Moe *)m;
    (void)fr, (void)state, (void)t;
    const size_t C = m->C_in, F = e->F, k = (size_t)e->eval_top_k;
    float *logits = c->scratch, *h = logits + e->E, *o = h + F, *weight = o + C;
    int32_t *expert = (int32_t *)(weight + k);
    linear_forward(logits, x, e->wg, e->bg, 1, C, e->E);
    choose(logits, e->E, k, expert, weight);
    memset(y, 0, C * sizeof(float));
    for (size_t j = 0; j < k; j++) {
        const size_t x_ = (size_t)expert[j];
        linear_forward(h, x, e->w1 + x_ * F * C, e->b1 + x_ * F, 1, C, F);
        activation_forward(h, h, F, e->act);
        linear_forward(o, h, e->w2 + x_ * C * F, e->b2 + x_ * C, 1, F, C);
        for (size_t q = 0; q < C; q++) y[q] += weight[j] * o[q];
    }
}

/* A token meets only its top_k experts: the E - top_k others' weights are
 * no products of it. */
static double moe_flops(Module *m, size_t B, size_t T, bool causal) {
    Moe *e = (Moe *)m;
    (void)causal;
    const double expert_params = 2.0 * (double)(e->F * m->C_in) + (double)(e->F + m->C_in);
    return -2.0 * (double)(e->E - (size_t)e->top_k) * expert_params * (double)(B * T);
}

const ModuleOps moe_module = {
    .name = "moe",
    .kind = "ffn",
    .size = sizeof(Moe),
    .keys = moe_keys,
    .configure = moe_configure,
    .params = moe_params,
    .init = moe_init,
    .frame_bytes = sizeof(MoeFrame),
    .layout = moe_layout,
    .scratch = moe_scratch,
    .forward = moe_forward,
    .backward = moe_backward,
    .state_size = moe_state_size,
    .step = moe_step,
    .flops = moe_flops,
};
