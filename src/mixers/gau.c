/* gau.c — see gau.h. */
#include "gau.h"

#include <math.h>
#include <string.h>

int gau_configure(Module *m, GauLayer *g, const ModuleSpec *spec, RelPos rotary, bool trunc_init, Error *err) {
    const Config *cfg = spec->cfg;
    g->C = m->C_in;
    g->Z = (size_t)g->z_dim;
    g->H = g->h_dim ? (size_t)g->h_dim : 2 * g->C;
    g->pre = !strcmp(g->place, "pre");
    g->trunc_init = trunc_init;
    g->norm.C = g->C;
    if (gau_fn_parse(g->attention, &g->fn) || norm_parse(g->norm_type, &g->norm.kind))
        return err_set(err, "%s: unknown attention '%s' or norm_type '%s'", m->path, g->attention, g->norm_type);
    g->rel = !strcmp(g->rel_pos, "simple") ? REL_SIMPLE : !strcmp(g->rel_pos, "rotary") ? rotary : REL_NONE;
    g->P = g->max_positions ? (size_t)g->max_positions : g->chunk_size > 0 ? (size_t)g->chunk_size : (size_t)cfg->max_len;
    if (g->rel != REL_SIMPLE && g->rel != REL_NONE && g->Z % 2)
        return err_set(err, "%s: rel_pos rotary turns pairs of q, k channels: z_dim %zu must be even", m->path, g->Z);
    char defaults[96];
    snprintf(defaults, sizeof defaults, "n_dim=%d;truncation=%d;init=%s", g->n_dim, g->truncation,
             trunc_init ? "trunc_normal" : "normal");
    return module_add_child_at(m, spec, "move", "move", "mixer", "ema", defaults, g->C, g->C, err) ? 0 : -1;
}

void gau_params(GauLayer *g, ParamSet *ps) {
    norm_params(&g->norm, ps, "norm");
    params_add(ps, "gamma", &g->gamma, &g->dgamma, GROUP_OTHER, 2, (size_t)2, g->Z);
    params_add(ps, "beta", &g->beta, &g->dbeta, GROUP_OTHER, 2, (size_t)2, g->Z);
    if (g->rel == REL_SIMPLE) params_add(ps, "rel_pos_bias.rel_pos_bias", &g->bias, &g->dbias, GROUP_OTHER, 1, 2 * g->P - 1);
    if (g->rel == REL_ROTARY_BIAS) {
        params_add(ps, "rel_pos_bias.alpha", &g->ralpha, &g->dralpha, GROUP_OTHER, 2, (size_t)1, g->Z);
        params_add(ps, "rel_pos_bias.beta", &g->rbeta, &g->drbeta, GROUP_OTHER, 2, (size_t)1, g->Z);
    }
    params_add(ps, "h_proj.weight", &g->wh, &g->dwh, GROUP_LINEAR, 2, g->C, g->H);
    params_add(ps, "h_proj.bias", &g->bh, &g->dbh, GROUP_BIAS, 1, g->C);
}

void gau_draw(const Module *m, const GauLayer *g, float *w, size_t n, float std, uint64_t seed, int index) {
    if (g->trunc_init) init_trunc_normal(w, n, std, seed, m->scope, index);
    else module_init_normal(m, w, n, std, seed, index);
}

void gau_init(Module *m, GauLayer *g, uint64_t seed) {
    norm_init(&g->norm, 0.0f, seed, m->scope, 100);
    gau_draw(m, g, g->gamma, 2 * g->Z, 0.02f, seed, 101);
    memset(g->beta, 0, 2 * g->Z * sizeof(float));
    if (g->bias) gau_draw(m, g, g->bias, 2 * g->P - 1, 0.02f, seed, 102);
    if (g->ralpha) gau_draw(m, g, g->ralpha, g->Z, 0.02f, seed, 103);
    if (g->rbeta) gau_draw(m, g, g->rbeta, g->Z, 0.02f, seed, 104);
    gau_draw(m, g, g->wh, g->C * g->H, 0.02f, seed, 105);
    memset(g->bh, 0, g->C * sizeof(float));
}

void gau_qk(float *q, float *k, const float *zs, size_t ld, size_t N, const GauLayer *g) {
    const size_t Z = g->Z;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < N; r++)
        for (size_t z = 0; z < Z; z++) {
            const float s = zs[r * ld + z];
            q[r * Z + z] = s * g->gamma[z] + g->beta[z];
            k[r * Z + z] = s * g->gamma[Z + z] + g->beta[Z + z];
        }
}

void gau_qk_backward(float *dzs, size_t ld_dz, const float *dq, const float *dk, const float *zs, size_t ld, size_t N,
                     GauLayer *g) {
    const size_t Z = g->Z;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < N; r++)
        for (size_t z = 0; z < Z; z++) dzs[r * ld_dz + z] = dq[r * Z + z] * g->gamma[z] + dk[r * Z + z] * g->gamma[Z + z];
    column_sums(g->dbeta, dq, NULL, N, Z);
    column_sums(g->dbeta + Z, dk, NULL, N, Z);
    for (size_t r = 0; r < N; r++) /* zs is strided: these two sums by hand, in row order as column_sums */
        for (size_t z = 0; z < Z; z++) {
            g->dgamma[z] += dq[r * Z + z] * zs[r * ld + z];
            g->dgamma[Z + z] += dk[r * Z + z] * zs[r * ld + z];
        }
}

/* The rows one attention block covers: the chunk, or the whole sequence. */
static size_t table_length(const GauLayer *g, size_t T) {
    return g->chunk_size > 0 && (size_t)g->chunk_size < T ? (size_t)g->chunk_size : T;
}

size_t gau_table_floats(const GauLayer *g, size_t T) { return g->ralpha ? 2 * table_length(g, T) - 1 : 0; }

void gau_bias_table(const GauLayer *g, float *table, size_t T) {
    if (g->ralpha) rotary_bias_table(table, g->ralpha, g->rbeta, g->Z, table_length(g, T));
}

void gau_bias_table_backward(GauLayer *g, const float *dtable, size_t T) {
    if (g->ralpha) rotary_bias_backward(g->dralpha, g->drbeta, dtable, g->ralpha, g->rbeta, g->Z, table_length(g, T));
}

GauShape gau_shape(const GauLayer *g, const Ctx *c, size_t B, size_t T, size_t ldv, size_t ldo, const float *table,
                   float *dtable) {
    GauShape s = {.B = B, .T = T, .Z = g->Z, .H = g->H, .ldq = g->Z, .ldk = g->Z, .ldv = ldv, .ldo = ldo,
                  .causal = c->causal, .fn = g->fn, .scale = 1.0f / sqrtf((float)g->Z),
                  .dropatt = c->training ? (float)g->attention_dropout : 0.0f, .seed = c->seed, .row0 = c->row0};
    s.stream = ctx_stream(c, 7);
    if (g->rel == REL_SIMPLE) {
        s.bias = g->bias;
        s.dbias = g->dbias;
        s.bias_radius = g->P;
    } else if (g->rel == REL_ROTARY_BIAS) {
        s.bias = table;
        s.dbias = dtable;
        s.bias_radius = (gau_table_floats(g, T) + 1) / 2;
    }
    return s;
}

void gau_dropout(const GauLayer *g, const Ctx *c, int site, float p, float *x, size_t C) {
    const size_t B = c->B, T = c->T;
    DropoutKey k = ctx_dropout(c, site, p, g->feature_dropout ? 1 : C);
    if (!g->feature_dropout || k.p <= 0.0f) {
        dropout_forward(x, x, B * T * C, &k);
        return;
    }
    float mask[C];
    for (size_t b = 0; b < B; b++) { /* one draw per (sequence, channel), kept for every position */
        for (size_t i = 0; i < C; i++) mask[i] = 1.0f;
        k.first = (c->row0 + b) * C;
        dropout_forward(mask, mask, C, &k);
        for (size_t t = 0; t < T; t++)
            for (size_t i = 0; i < C; i++) x[(b * T + t) * C + i] *= mask[i];
    }
}
