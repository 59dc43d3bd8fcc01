/* generate.c — one token at a time, through each module's step form
 * (K/V cache for softmax attention, recurrent state where the math allows). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../ops/ops.h"
#include "model.h"

void generator_free(Generator *g) {
    free(g->states);
    free(g->buffer);
    free(g->scratch);
    free(g->x);
    free(g->logits);
    memset(g, 0, sizeof *g);
}

static int check_steppable(const Model *m, Error *err) {
    if (!m->cfg.causal) return err_set(err, "generation needs a causal model (key 'causal' is false)");
    if (m->reversed_positions)
        return err_set(err, "pos 'sinusoidal_reversed' numbers positions from the end of the sequence, so a new "
                            "token moves every earlier one; one-token generation needs pos learned, sinusoidal or "
                            "none");
    for (size_t i = 0; i < m->n_blocks; i++)
        if (!m->blocks[i].module->ops->step)
            return err_set(err, "block %zu (%s) has no one-token step form", i, m->blocks[i].module->ops->name);
    return 0;
}

int generator_build(Generator *g, Model *m, size_t max_T, Error *err) {
    memset(g, 0, sizeof *g);
    if (check_steppable(m, err)) return -1;
    if (max_T > (size_t)m->cfg.max_len) max_T = (size_t)m->cfg.max_len;
    g->max_T = max_T;
    size_t total = 0, scratch = 0;
    for (size_t i = 0; i < m->n_blocks; i++) {
        Module *mod = m->blocks[i].module;
        total += mod->ops->state_size(mod, max_T);
        size_t s = mod->ops->scratch(mod, 1, max_T);
        scratch = s > scratch ? s : scratch;
    }
    g->states = xcalloc(m->n_blocks, sizeof *g->states, err);
    g->buffer = xcalloc(total, sizeof(float), err);
    g->scratch = xcalloc(scratch, sizeof(float), err);
    g->x = xcalloc(3 * m->C, sizeof(float), err);
    const size_t hs = head_logits_scratch(&m->head);
    g->logits = xcalloc(m->V + (hs > m->V ? hs : m->V), sizeof(float), err); /* logits, then head or sampling scratch */
    if (!g->states || !g->buffer || !g->scratch || !g->x || !g->logits) {
        generator_free(g);
        return -1;
    }
    g->y = g->x + m->C;
    g->h = g->y + m->C;
    float *next = g->buffer;
    for (size_t i = 0; i < m->n_blocks; i++) {
        g->states[i] = next;
        next += m->blocks[i].module->ops->state_size(m->blocks[i].module, max_T);
    }
    return 0;
}

/* One row through one block, mirroring block_forward with B = T = 1. */
static void block_step(Block *blk, Generator *g, float *state, size_t t, bool pre_ln) {
    Module *mod = blk->module;
    const size_t C = mod->C;
    float mean, rstd;
    if (pre_ln) {
        layernorm_forward(g->h, &mean, &rstd, g->x, blk->ln_w, blk->ln_b, 1, C);
        mod->ops->step(mod, state, t, g->h, g->y, g->scratch);
        for (size_t c = 0; c < C; c++) g->x[c] += g->y[c];
    } else {
        mod->ops->step(mod, state, t, g->x, g->y, g->scratch);
        for (size_t c = 0; c < C; c++) g->h[c] = g->x[c] + g->y[c];
        layernorm_forward(g->x, &mean, &rstd, g->h, blk->ln_w, blk->ln_b, 1, C);
    }
}

int generator_step(Generator *g, Model *m, int32_t token, size_t t, Error *err) {
    const size_t C = m->C;
    if (token < 0 || (size_t)token >= m->V)
        return err_set(err, "token id %d is outside the vocabulary [0, %zu)", token, m->V);
    if (t >= g->max_T)
        return err_set(err, "position %zu is past the generation limit of %zu tokens (max_len %d)", t, g->max_T,
                       m->cfg.max_len);
    if (m->adaptive_input) adaptive_input_row(&m->ain, token, g->x);
    else memcpy(g->x, m->wte + (size_t)token * C, C * sizeof(float));
    for (size_t c = 0; c < C; c++) g->x[c] *= m->emb_scale;
    const float *pos = m->wpe ? m->wpe : m->sinusoid;
    if (pos)
        for (size_t c = 0; c < C; c++) g->x[c] += pos[t * C + c];
    for (size_t i = 0; i < m->n_blocks; i++) block_step(&m->blocks[i], g, g->states[i], t, m->pre_ln);
    const float *top = g->x;
    if (m->pre_ln) {
        float mean, rstd;
        layernorm_forward(g->h, &mean, &rstd, g->x, m->lnf_w, m->lnf_b, 1, C);
        top = g->h;
    }
    head_logits(&m->head, top, 1, g->logits, g->logits + m->V);
    return 0;
}

void generator_reset(Generator *g, const Model *m) {
    size_t total = 0;
    for (size_t i = 0; i < m->n_blocks; i++) total += m->blocks[i].module->ops->state_size(m->blocks[i].module, g->max_T);
    memset(g->buffer, 0, total * sizeof(float));
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
