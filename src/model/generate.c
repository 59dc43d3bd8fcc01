/* generate.c — one token at a time, through each module's step form
 * (K/V cache for softmax attention, recurrent state where the math allows),
 * or by rerunning the forward over the window where it does not. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/gemm.h"
#include "../core/threads.h"
#include "../nn/module.h"
#include "../ops/ops.h"
#include "model.h"

void generator_free(Generator *g) {
    free(g->tokens);
    free(g->states);
    free(g->buffer);
    free(g->scratch);
    free(g->x);
    free(g->logits);
    if (g->bf16_weights) gemm_weights_bf16(NULL, 0, NULL);
    memset(g, 0, sizeof *g);
}

/* Whether each token can be one step: positions that count from the end of
 * the sequence move every earlier token when one is added. */
static bool steppable(const Model *m) {
    if (m->reversed_positions) return false;
    for (size_t i = 0; i < m->trunk.n_sublayers; i++)
        if (!module_can_step(m->trunk.sublayers[i])) return false;
    return true;
}

/* One state (cache, recurrent state) per trunk use: a sublayer shared by two
 * uses keeps one for each. */
static int build_steps(Generator *g, Model *m, Error *err) {
    const Trunk *t = &m->trunk;
    size_t scratch = 0;
    for (size_t i = 0; i < t->n_uses; i++) {
        Module *mod = t->sublayers[t->uses[i].sublayer];
        g->state_floats += module_state_size(mod, g->max_T);
        size_t s = module_scratch(mod, 1, g->max_T);
        scratch = s > scratch ? s : scratch;
    }
    g->states = xcalloc(t->n_uses, sizeof *g->states, err);
    g->buffer = xcalloc(g->state_floats, sizeof(float), err);
    g->scratch = xcalloc(scratch, sizeof(float), err);
    g->x = xcalloc(2 * m->C, sizeof(float), err);
    if (!g->states || !g->buffer || !g->scratch || !g->x) return -1;
    g->h = g->x + m->C;
    float *next = g->buffer;
    for (size_t i = 0; i < t->n_uses; i++) {
        g->states[i] = next;
        next += module_state_size(t->sublayers[t->uses[i].sublayer], g->max_T);
    }
    /* bf16 precision: the steps' products read the weights as bf16 (half the bytes) */
    if (gemm_get_precision() == PRECISION_BF16) {
        if (gemm_weights_bf16(m->params.values, m->params.total, err)) return -1;
        g->bf16_weights = true;
    }
    return 0;
}

int generator_build(Generator *g, Model *m, size_t max_T, Error *err) {
    memset(g, 0, sizeof *g);
    if (!m->cfg.causal) return err_set(err, "generation needs a causal model (key 'causal' is false)");
    if (max_T > (size_t)m->cfg.max_len) max_T = (size_t)m->cfg.max_len;
    g->max_T = max_T;
    g->recompute = !steppable(m);
    const size_t hs = head_logits_scratch(&m->head);
    g->logits = xcalloc(m->V + (hs > m->V ? hs : m->V), sizeof(float), err); /* logits, then head or sampling scratch */
    int rc = g->logits ? 0 : -1;
    if (!rc && g->recompute && !(g->tokens = xcalloc(max_T, sizeof *g->tokens, err))) rc = -1;
    if (!rc && !g->recompute) rc = build_steps(g, m, err);
    if (rc) generator_free(g);
    return rc;
}

/* The next-token logits after the window tokens[0, n): one forward at batch
 * 1, the last row kept. While the window grows each length plans its own
 * activations (an allocation per token, small beside the O(n) forward). */
static int recompute_logits(Generator *g, Model *m, size_t n, Error *err) {
    const PassMode eval = {.training = false};
    if (model_plan(m, 1, n, err) || model_forward(m, g->tokens, NULL, &eval, 0.0f, NULL, err)) return -1;
    memcpy(g->logits, m->logits + (n - 1) * m->V, m->V * sizeof(float));
    return 0;
}

int generator_step(Generator *g, Model *m, int32_t token, size_t t, Error *err) {
    const size_t C = m->C;
    if (token < 0 || (size_t)token >= m->V)
        return err_set(err, "token id %d is outside the vocabulary [0, %zu)", token, m->V);
    if (t >= g->max_T)
        return err_set(err, "position %zu is past the generation limit of %zu tokens (max_len %d)", t, g->max_T,
                       m->cfg.max_len);
    if (g->recompute) {
        g->tokens[t] = token;
        return recompute_logits(g, m, t + 1, err);
    }
    if (m->adaptive_input) adaptive_input_row(&m->ain, token, g->x);
    else memcpy(g->x, m->wte + (size_t)token * C, C * sizeof(float));
    for (size_t c = 0; c < C; c++) g->x[c] *= m->emb_scale;
    const float *pos = m->wpe ? m->wpe : m->sinusoid;
    if (pos)
        for (size_t c = 0; c < C; c++) g->x[c] += pos[t * C + c];
    const Ctx one = {.B = 1, .T = 1, .causal = true, .scratch = g->scratch, .max_T = g->max_T};
    if (t == 0) memset(g->buffer, 0, g->state_floats * sizeof(float)); /* a generation starts from zero states */
    threads_serial(true); /* loops over one row; the products still split (threads.h) */
    for (size_t i = 0; i < m->trunk.n_uses; i++) /* in place: the residual stream row */
        module_step(m->trunk.uses[i].frame, g->states[i], t, g->x, g->x, &one);
    const float *top = g->x;
    if (m->pre_ln) {
        float mean, rstd;
        layernorm_forward(g->h, &mean, &rstd, g->x, m->lnf_w, m->lnf_b, 1, C);
        top = g->h;
    }
    head_logits(&m->head, top, 1, g->logits, g->logits + m->V);
    threads_serial(false);
    return 0;
}

/* Forgets every position (zeroes caches and recurrent states). */
static void generator_reset(Generator *g) {
    if (g->buffer) memset(g->buffer, 0, g->state_floats * sizeof(float)); /* a recomputed window just restarts */
}

int generator_prefill(Generator *g, Model *m, const int32_t *ids, size_t n, Error *err) {
    if (n == 0 || n > g->max_T)
        return err_set(err, "cannot start generation from %zu tokens: 1 to %zu fit (max_len %d)", n, g->max_T,
                       m->cfg.max_len);
    generator_reset(g);
    if (g->recompute) { /* one forward; model_forward checks the ids */
        memcpy(g->tokens, ids, n * sizeof *ids);
        return recompute_logits(g, m, n, err);
    }
    for (size_t i = 0; i < n; i++)
        if (generator_step(g, m, ids[i], i, err)) return -1;
    return 0;
}

static int descending(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

int32_t generator_sample(const Generator *g, const Model *m, float temperature, int top_k, Rng *rng) {
    const size_t V = m->V;
    const float *z = g->logits;
    size_t best = 0;
    for (size_t v = 1; v < V; v++) best = z[v] > z[best] ? v : best;
    if (temperature <= 0.0f) return (int32_t)best;
    /* keep logits >= the k-th largest (ties may keep a few more) */
    float cutoff = -INFINITY;
    if (top_k > 0 && (size_t)top_k < V) {
        float *sorted = g->logits + V;
        memcpy(sorted, z, V * sizeof(float));
        qsort(sorted, V, sizeof(float), descending);
        cutoff = sorted[top_k - 1];
    }
    double total = 0.0;
    for (size_t v = 0; v < V; v++)
        if (z[v] >= cutoff) total += exp((double)(z[v] - z[best]) / temperature);
    double u = rng_uniform(rng) * total, acc = 0.0;
    for (size_t v = 0; v < V; v++) {
        if (z[v] < cutoff) continue;
        acc += exp((double)(z[v] - z[best]) / temperature);
        if (acc > u) return (int32_t)v;
    }
    return (int32_t)best; /* u landed on the rounding edge */
}
