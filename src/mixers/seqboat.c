/* seqboat.c — SeqBoat's layer with Sparse Modular Activation (the `seqboat`
 * mixer; Ren et al. 2023, spec mega-seqboat.md §5–6), a whole layer with its
 * own residual and norm:
 *   X^ = Norm(X) (pre)   M = Dropout(EMA(X^))   [u, Hx] = M Wx + bx
 *   router: π = softmax(u / τ), τ = exp(temp); a token is active when u1 > u0
 *           (ties and padding inactive), g = a π1
 *   the active tokens' M compressed (order kept, original positions kept),
 *   GAU over them: [Zs, Rg, Vv] = silu(Mc Wm + bm), q, k = Zs γ + β (RoPE on
 *   the original positions), O = local attention (window chunk_size over the
 *   compressed sequence) or full, Hc = (O ⊙ Rg) Wh + bh
 *   H = extract(Hc) ⊙ g (0 for inactive tokens)
 *   Y = silu(Dropout(Hx + H) + X)     (bidirectional: the dropout is on Hc)
 *   post: Y = Norm(Y)
 * The decision a carries no gradient; the router learns through g (§6.2).
 *
 * Every row is compressed, always: the original skips compression when the
 * batch's densest row passes a threshold, which changes the windows (and the
 * element functions' len) of the other rows, a dependence on the batch that
 * the spec's invariance oracle (§6.11.2) rules out. Compressed key slots
 * beyond a row's active count are masked, so nothing depends on n_max.
 *
 * Generation keeps the EMA's recurrent state and a working memory of the
 * last chunk_size + 1 active tokens' k, v and positions (every active token
 * without a window): O(W) per token (§6.7). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gau.h"

typedef struct {
    Module base;
    GauLayer g;
    bool local_pos;
    double init_temp_scale;
    size_t W;                     /* mx_proj width Z + 2H */
    float *wx, *dwx, *bx, *dbx;   /* hx_proj (2 + C, C), (2 + C) */
    float *wm, *dwm, *bm, *dbm;   /* mx_proj (W, C), (W) */
    float *temp, *dtemp;          /* q_router.temp (1): log τ */
    float *rope;                  /* owned: rope_table for max_len positions (rel_pos rotary) */
    size_t rope_positions;
} SeqBoat;

static const ModuleKey seqboat_keys[] = {
    GAU_LAYER_KEYS(SeqBoat),
    GAU_KEY(SeqBoat, chunk_size, KEY_INT, "0", NULL, NULL, 0, 1e9,
            "local attention window W over the compressed sequence; 0 = full attention"),
    GAU_KEY(SeqBoat, rel_pos, KEY_CHOICE, "simple", "simple|rotary|none", NULL, 0, -1,
            "relative position: simple (a learned bias per original distance) or rotary (RoPE on q and k)"),
    MODULE_KEY(SeqBoat, local_pos, KEY_BOOL, "false", NULL, NULL, 0, -1,
               "simple bias by the offset inside the local window (--local-pos, LRA Text), P = 3 W"),
    MODULE_KEY(SeqBoat, init_temp_scale, KEY_FLOAT, "0.3", NULL, NULL, 1e-6, 1e6,
               "the router's temperature starts at init_temp_scale sqrt(d_model)"),
    {0}};

enum { SITE_EMA = 1, SITE_HIDDEN = 2, SITE_GAU_OUT = 3, SITE_OUT = 4 };

/* Per use (N = B T rows, compressed rows B n_max <= N). */
typedef struct {
    const float *x; /* borrowed: input (N, C) */
    float *xn;      /* (N, C) Norm(x) (pre), else NULL */
    float *stats;
    float *m;       /* (N, C) EMA output after dropout */
    float *hx;      /* (N, 2 + C) hx_proj's output: u, Hx */
    float *gate;    /* (N) g = a π1 */
    int32_t *rank;  /* (N) 1-based rank among the row's active tokens, 0 inactive */
    size_t n_max;   /* compressed length */
    float *mc;      /* (B n_max, C) compressed M */
    int32_t *pos;   /* (B n_max) original positions of the compressed slots */
    float *keys;    /* (B n_max) 1 for a row's active slots, 0 beyond */
    float *mx;      /* (B n_max, W) mx_proj's output */
    float *q, *k;   /* (B n_max, Z) after RoPE */
    float *vd;      /* (B n_max, H) Vv after its dropout */
    float *o, *lse; /* (B n_max, H), (B n_max) */
    float *ypre;    /* (N, C) the residual sum before silu */
    float *ypost;   /* (N, C) post: silu(ypre), the norm's input */
} SeqBoatFrame;

static int seqboat_configure(Module *m, const ModuleSpec *spec, Error *err) {
    SeqBoat *s = (SeqBoat *)m;
    if (gau_configure(m, &s->g, spec, REL_ROPE, true, err)) return -1;
    s->W = s->g.Z + 2 * s->g.H;
    if (s->local_pos && s->g.chunk_size <= 0)
        return err_set(err, "%s: local_pos indexes the bias inside the local window: set chunk_size", m->path);
    s->g.P = s->local_pos ? 3 * (size_t)s->g.chunk_size
                          : s->g.max_positions ? (size_t)s->g.max_positions : (size_t)spec->cfg->max_len;
    if (s->g.rel == REL_ROPE) {
        s->rope_positions = (size_t)spec->cfg->max_len;
        if (!(s->rope = xmalloc(s->rope_positions * s->g.Z * sizeof(float), err))) return -1;
        rope_table(s->rope, 0, s->rope_positions, s->g.Z);
    }
    return 0;
}

static void seqboat_destroy(Module *m) { free(((SeqBoat *)m)->rope); }

static void seqboat_params(Module *m, ParamSet *ps) {
    SeqBoat *s = (SeqBoat *)m;
    const size_t C = s->g.C;
    gau_params(&s->g, ps);
    params_add(ps, "hx_proj.weight", &s->wx, &s->dwx, GROUP_LINEAR, 2, 2 + C, C);
    params_add(ps, "hx_proj.bias", &s->bx, &s->dbx, GROUP_BIAS, 1, 2 + C);
    params_add(ps, "mx_proj.weight", &s->wm, &s->dwm, GROUP_LINEAR, 2, s->W, C);
    params_add(ps, "mx_proj.bias", &s->bm, &s->dbm, GROUP_BIAS, 1, s->W);
    params_add(ps, "q_router.temp", &s->temp, &s->dtemp, GROUP_OTHER, 1, (size_t)1);
}

static void seqboat_init(Module *m, uint64_t seed) {
    SeqBoat *s = (SeqBoat *)m;
    gau_init(m, &s->g, seed);
    gau_draw(m, &s->g, s->wx, (2 + s->g.C) * s->g.C, 0.02f, seed, 0);
    gau_draw(m, &s->g, s->wm, s->W * s->g.C, 0.02f, seed, 1);
    memset(s->bx, 0, (2 + s->g.C) * sizeof(float));
    memset(s->bm, 0, s->W * sizeof(float));
    s->temp[0] = (float)log(s->init_temp_scale * sqrt((double)s->g.C));
}

static void seqboat_layout(Module *m, Frame *f, size_t B, size_t T, Arena *a) {
    SeqBoat *s = (SeqBoat *)m;
    SeqBoatFrame *sf = f->data;
    const size_t N = B * T, C = s->g.C, H = s->g.H, Z = s->g.Z;
    sf->xn = s->g.pre ? arena_take(a, N * C) : NULL;
    sf->stats = arena_take(a, norm_stats_floats(&s->g.norm, N));
    sf->m = arena_take(a, N * C);
    sf->hx = arena_take(a, N * (2 + C));
    sf->gate = arena_take(a, N);
    sf->rank = (int32_t *)arena_take(a, N);
    sf->mc = arena_take(a, N * C);
    sf->pos = (int32_t *)arena_take(a, N);
    sf->keys = arena_take(a, N);
    sf->mx = arena_take(a, N * s->W);
    sf->q = arena_take(a, N * Z);
    sf->k = arena_take(a, N * Z);
    sf->vd = arena_take(a, N * H);
    sf->o = arena_take(a, N * H);
    sf->lse = arena_take(a, N);
    sf->ypre = arena_take(a, N * C);
    sf->ypost = s->g.pre ? NULL : arena_take(a, N * C);
    module_layout(&f->children[0], B, T, a);
}

/* Scratch, in this order. */
typedef struct {
    float *act;   /* (N, W) silu of mx */
    float *or_;   /* (N, H) O ⊙ Rg */
    float *hc;    /* (N, C) the GAU's output, compressed */
    float *dY;    /* (N, C) */
    float *dhx;   /* (N, 2 + C) */
    float *dhc;   /* (N, C) */
    float *dor;   /* (N, H) */
    float *dO;    /* (N, H) */
    float *dq, *dk; /* (N, Z) */
    float *dv;    /* (N, H) */
    float *dmx;   /* (N, W) */
    float *dmc;   /* (N, C) */
    float *dm;    /* (N, C) */
    float *table; /* local_pos: the window's bias table (2 W + 1) and its gradient */
    float *dtable;
    float *attn;
    size_t own;   /* floats before the attention's scratch */
} SeqBoatScratch;

static SeqBoatScratch scratch_at(const SeqBoat *s, float *base, size_t B, size_t T) {
    const size_t N = B * T, C = s->g.C, H = s->g.H, Z = s->g.Z, Wt = 2 * (size_t)s->g.chunk_size + 1;
    SeqBoatScratch k;
    /* a counting arena (base NULL) sizes it, the same calls over the scratch point into it */
    Arena a = {.base = base, .cap = base ? SIZE_MAX : 0};
    k.act = arena_take(&a, N * s->W);
    k.or_ = arena_take(&a, N * H);
    k.hc = arena_take(&a, N * C);
    k.dY = arena_take(&a, N * C);
    k.dhx = arena_take(&a, N * (2 + C));
    k.dhc = arena_take(&a, N * C);
    k.dor = arena_take(&a, N * H);
    k.dO = arena_take(&a, N * H);
    k.dq = arena_take(&a, N * Z);
    k.dk = arena_take(&a, N * Z);
    k.dv = arena_take(&a, N * H);
    k.dmx = arena_take(&a, N * s->W);
    k.dmc = arena_take(&a, N * C);
    k.dm = arena_take(&a, N * C);
    k.table = arena_take(&a, Wt);
    k.dtable = arena_take(&a, Wt);
    k.attn = arena_take(&a, 0);
    k.own = a.used;
    return k;
}

/* The attention over the compressed sequence (B, n). */
static GauShape shape(const SeqBoat *s, const Ctx *c, const SeqBoatFrame *sf, size_t n, const float *table,
                      float *dtable) {
    const GauLayer *g = &s->g;
    GauShape gs = gau_shape(g, c, c->B, n, g->H, g->H, NULL, NULL);
    gs.key_mask = sf->keys;
    const size_t Wn = (size_t)(g->chunk_size > 0 ? g->chunk_size : 0);
    gs.window = Wn;
    gs.len = Wn ? GAU_LEN_FIXED : c->causal ? GAU_LEN_ROW : GAU_LEN_KEYS;
    gs.fixed_len = c->causal ? Wn : 2 * Wn;
    gs.pos = sf->pos;
    if (s->local_pos) { /* the bias of compressed offset d is b[P - 1 + W + d], |d| <= W (§6.4) */
        gs.pos = NULL;
        gs.bias = table;
        gs.dbias = dtable;
        gs.bias_radius = Wn + 1;
    }
    return gs;
}

static size_t seqboat_scratch(Module *m, size_t B, size_t T) {
    SeqBoat *s = (SeqBoat *)m;
    SeqBoatScratch k = scratch_at(s, NULL, B, T);
    const Ctx c = {.B = B, .T = T, .causal = false}; /* bidirectional windows see the most keys */
    SeqBoatFrame none = {0};
    const GauShape gs = shape(s, &c, &none, T, NULL, NULL);
    const size_t own = k.own + gau_lines(gau_attention_scratch(&gs));
    const size_t C = s->g.C, H = s->g.H, Z = s->g.Z;
    const size_t step = 3 * C + (2 + C) + s->W + Z + 2 * H + 16 + 3 * T; /* a step's rows (seqboat_step) */
    const size_t need = own + module_scratch(m->children[0], B, T);
    const size_t need_step = step + module_scratch(m->children[0], 1, 1);
    return need > need_step ? need : need_step;
}

/* The EMA's scratch, after the attention's largest (seqboat_scratch). */
static float *child_scratch(const SeqBoat *s, const Ctx *c, const SeqBoatScratch *k) {
    const Ctx widest = {.B = c->B, .T = c->T, .causal = false};
    SeqBoatFrame none = {0};
    const GauShape gs = shape(s, &widest, &none, c->T, NULL, NULL);
    return k->attn + gau_lines(gau_attention_scratch(&gs));
}

/* The context of a tensor of the compressed sequence (B, n): its dropout
 * masks are keyed by compressed slot. */
static Ctx compressed_ctx(const Ctx *c, size_t n) {
    Ctx cc = *c;
    cc.T = n;
    cc.mask = NULL;
    return cc;
}

/* The router (§6.2) on the rows' u: gate g = a π1, and each row's ranks; the
 * compressed length is the largest active count. Returns the active count. */
static size_t route(SeqBoat *s, SeqBoatFrame *sf, const Ctx *c) {
    const size_t B = c->B, T = c->T, C = s->g.C;
    const float tau = expf(s->temp[0]);
    size_t active = 0, n_max = 0;
    for (size_t b = 0; b < B; b++) {
        int32_t n = 0;
        for (size_t t = 0; t < T; t++) {
            const size_t r = b * T + t;
            const float *u = sf->hx + r * (2 + C);
            const bool on = u[1] > u[0] && (!c->mask || c->mask[r] != 0.0f);
            sf->gate[r] = on ? gau_sigmoid((u[1] - u[0]) / tau) : 0.0f;
            sf->rank[r] = on ? ++n : 0;
        }
        active += (size_t)n;
        n_max = (size_t)n > n_max ? (size_t)n : n_max;
    }
    sf->n_max = n_max;
    return active;
}

/* Compressed slots: M rows of the active tokens in order, their original
 * positions, and which slots are real. */
static void compress(const SeqBoat *s, SeqBoatFrame *sf, const Ctx *c) {
    const size_t T = c->T, C = s->g.C, n = sf->n_max;
    memset(sf->keys, 0, c->B * n * sizeof(float));
    memset(sf->mc, 0, c->B * n * C * sizeof(float));
    memset(sf->pos, 0, c->B * n * sizeof(int32_t));
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < c->B; b++)
        for (size_t t = 0; t < T; t++) {
            const int32_t r = sf->rank[b * T + t];
            if (!r) continue;
            const size_t slot = b * n + (size_t)r - 1;
            memcpy(sf->mc + slot * C, sf->m + (b * T + t) * C, C * sizeof(float));
            sf->pos[slot] = (int32_t)t;
            sf->keys[slot] = 1.0f;
        }
}

static void local_table(const SeqBoat *s, float *table) {
    const size_t Wn = (size_t)s->g.chunk_size, P = s->g.P;
    for (size_t i = 0; i < 2 * Wn + 1; i++) table[i] = s->g.bias[P - 1 + i]; /* offsets -W .. W */
}

/* The GAU's output Hc (compressed, in k->dhc) from O and the activations,
 * extracted to the token rows (k->hc; 0 for inactive tokens). */
static void gau_output(const SeqBoat *s, const SeqBoatFrame *sf, const Ctx *c, SeqBoatScratch *k) {
    const GauLayer *g = &s->g;
    const size_t T = c->T, n = sf->n_max, Nc = c->B * n, C = g->C, H = g->H, Z = g->Z, W = s->W;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < Nc; r++)
        for (size_t h = 0; h < H; h++) k->or_[r * H + h] = sf->o[r * H + h] * k->act[r * W + Z + h];
    linear_forward(k->dhc, k->or_, g->wh, g->bh, Nc, H, C);
    const Ctx cc = compressed_ctx(c, n);
    if (!c->causal) gau_dropout(g, &cc, SITE_GAU_OUT, (float)g->dropout, k->dhc, C);
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < c->B * T; r++)
        if (!sf->rank[r]) memset(k->hc + r * C, 0, C * sizeof(float));
        else memcpy(k->hc + r * C, k->dhc + (r / T * n + (size_t)sf->rank[r] - 1) * C, C * sizeof(float));
}

static void seqboat_forward(Module *m, Frame *f, const float *x, float *y, const Ctx *c) {
    SeqBoat *s = (SeqBoat *)m;
    SeqBoatFrame *sf = f->data;
    const GauLayer *g = &s->g;
    const size_t N = c->B * c->T, C = g->C, H = g->H, Z = g->Z, W = s->W, T = c->T;
    SeqBoatScratch k = scratch_at(s, c->scratch, c->B, T);
    sf->x = x;
    const float *xn = x;
    if (g->pre) norm_forward(&g->norm, sf->xn, sf->stats, x, N, c->training), xn = sf->xn;
    const Ctx in = gau_child_ctx(c, child_scratch(s, c, &k));
    module_forward(&f->children[0], xn, sf->m, &in);
    gau_dropout(g, c, SITE_EMA, (float)g->dropout, sf->m, C);
    linear_forward(sf->hx, sf->m, s->wx, s->bx, N, C, 2 + C);
    const size_t active = route(s, sf, c);
    if (c->stats) {
        size_t real = N;
        for (size_t r = 0; c->mask && r < N; r++) real -= c->mask[r] == 0.0f;
        ctx_stat(c, "activation_rate", real ? (double)active / (double)real : 0.0);
    }
    const size_t n = sf->n_max, Nc = c->B * n;
    if (!n) memset(k.hc, 0, N * C * sizeof(float));
    if (n) {
        compress(s, sf, c);
        linear_forward(sf->mx, sf->mc, s->wm, s->bm, Nc, C, W);
        activation_forward(k.act, sf->mx, Nc * W, ACT_SILU);
#pragma omp parallel for schedule(static)
        for (size_t r = 0; r < Nc; r++) memcpy(sf->vd + r * H, k.act + r * W + Z + H, H * sizeof(float));
        const Ctx cc = compressed_ctx(c, n);
        gau_dropout(g, &cc, SITE_HIDDEN, (float)g->hidden_dropout, sf->vd, H);
        gau_qk(sf->q, sf->k, k.act, W, Nc, g);
        if (g->rel == REL_ROPE) {
            rope_rotate(sf->q, Z, sf->pos, Nc, Z, s->rope, false);
            rope_rotate(sf->k, Z, sf->pos, Nc, Z, s->rope, false);
        }
        if (s->local_pos) local_table(s, k.table);
        const GauShape gs = shape(s, c, sf, n, k.table, k.dtable);
        gau_attention_forward(sf->o, sf->lse, sf->q, sf->k, sf->vd, &gs, k.attn);
        gau_output(s, sf, c, &k);
    }
    /* Y = silu(Dropout(Hx + H g) + X) */
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < N; r++)
        for (size_t d = 0; d < C; d++) sf->ypre[r * C + d] = sf->hx[r * (2 + C) + 2 + d] + sf->gate[r] * k.hc[r * C + d];
    if (c->causal) gau_dropout(g, c, SITE_OUT, (float)g->dropout, sf->ypre, C);
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < N * C; i++) sf->ypre[i] += x[i];
    float *out = g->pre ? y : sf->ypost;
    activation_forward(out, sf->ypre, N * C, ACT_SILU);
    if (!g->pre) norm_forward(&g->norm, y, sf->stats, sf->ypost, N, c->training);
}

static void seqboat_backward(Module *m, Frame *f, const float *dy, float *dx, const Ctx *c) {
    SeqBoat *s = (SeqBoat *)m;
    SeqBoatFrame *sf = f->data;
    GauLayer *g = &s->g;
    const size_t N = c->B * c->T, C = g->C, H = g->H, Z = g->Z, W = s->W, T = c->T, n = sf->n_max, Nc = c->B * n;
    SeqBoatScratch k = scratch_at(s, c->scratch, c->B, T);
    const Ctx in = gau_child_ctx(c, child_scratch(s, c, &k)), cc = compressed_ctx(c, n);
    const float *x = sf->x;
    if (g->pre) memcpy(k.dY, dy, N * C * sizeof(float)); /* dx may be dy */
    else norm_backward(&g->norm, k.dY, dy, sf->ypost, sf->stats, N, c->training, false);
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < N * C; i++) k.dY[i] *= gau_silu_grad(sf->ypre[i]); /* also the residual's gradient */
    float *dsum = k.dm; /* gradient of Hx + H g */
    memcpy(dsum, k.dY, N * C * sizeof(float));
    if (c->causal) gau_dropout(g, c, SITE_OUT, (float)g->dropout, dsum, C);
    if (n) {
        activation_forward(k.act, sf->mx, Nc * W, ACT_SILU);
        gau_output(s, sf, c, &k);
    } else {
        memset(k.hc, 0, N * C * sizeof(float));
    }
    /* the router: dl/dπ1 = a <dsum, H>, through π1 = σ((u1 - u0) / τ) to u and temp (§6.2) */
    const float tau = expf(s->temp[0]);
    double dtemp = 0.0;
    for (size_t r = 0; r < N; r++) {
        float *dh = k.dhx + r * (2 + C);
        memcpy(dh + 2, dsum + r * C, C * sizeof(float));
        dh[0] = dh[1] = 0.0f;
        if (!sf->rank[r]) continue;
        float ct = 0.0f;
        for (size_t d = 0; d < C; d++) ct += dsum[r * C + d] * k.hc[r * C + d];
        const float *u = sf->hx + r * (2 + C), p1 = sf->gate[r], dd = ct * p1 * (1.0f - p1);
        dh[1] = dd / tau;
        dh[0] = -dd / tau;
        dtemp -= (double)dd * (u[1] - u[0]) / tau;
    }
    s->dtemp[0] += (float)dtemp;
    memset(k.dmc, 0, Nc * C * sizeof(float));
    if (n) {
        /* extract's gradient: each active token's dsum g to its slot */
        memset(k.dhc, 0, Nc * C * sizeof(float));
#pragma omp parallel for schedule(static)
        for (size_t r = 0; r < N; r++)
            for (size_t d = 0; sf->rank[r] && d < C; d++)
                k.dhc[(r / T * n + (size_t)sf->rank[r] - 1) * C + d] = dsum[r * C + d] * sf->gate[r];
        if (!c->causal) gau_dropout(g, &cc, SITE_GAU_OUT, (float)g->dropout, k.dhc, C);
        linear_backward(k.dor, g->dwh, g->dbh, k.dhc, k.or_, g->wh, Nc, H, C, false);
#pragma omp parallel for schedule(static)
        for (size_t r = 0; r < Nc; r++)
            for (size_t h = 0; h < H; h++) {
                const size_t i = r * H + h;
                k.dO[i] = k.dor[i] * k.act[r * W + Z + h];
                k.dmx[r * W + Z + h] = k.dor[i] * sf->o[i] * gau_silu_grad(sf->mx[r * W + Z + h]);
            }
        if (s->local_pos) {
            local_table(s, k.table);
            memset(k.dtable, 0, (2 * (size_t)g->chunk_size + 1) * sizeof(float));
        }
        const GauShape gs = shape(s, c, sf, n, k.table, k.dtable);
        gau_attention_backward(k.dq, k.dk, k.dv, k.dO, sf->q, sf->k, sf->vd, sf->o, sf->lse, &gs, k.attn);
        for (size_t i = 0; s->local_pos && i < 2 * (size_t)g->chunk_size + 1; i++)
            g->dbias[g->P - 1 + i] += k.dtable[i];
        if (g->rel == REL_ROPE) {
            rope_rotate(k.dq, Z, sf->pos, Nc, Z, s->rope, true);
            rope_rotate(k.dk, Z, sf->pos, Nc, Z, s->rope, true);
        }
        gau_dropout(g, &cc, SITE_HIDDEN, (float)g->hidden_dropout, k.dv, H);
#pragma omp parallel for schedule(static)
        for (size_t r = 0; r < Nc; r++)
            for (size_t h = 0; h < H; h++)
                k.dmx[r * W + Z + H + h] = k.dv[r * H + h] * gau_silu_grad(sf->mx[r * W + Z + H + h]);
        gau_qk_backward(k.dmx, W, k.dq, k.dk, k.act, W, Nc, g);
#pragma omp parallel for schedule(static)
        for (size_t r = 0; r < Nc; r++)
            for (size_t z = 0; z < Z; z++) k.dmx[r * W + z] *= gau_silu_grad(sf->mx[r * W + z]);
        linear_backward(k.dmc, s->dwm, s->dbm, k.dmx, sf->mc, s->wm, Nc, C, W, false);
    }
    linear_backward(k.dm, s->dwx, s->dbx, k.dhx, sf->m, s->wx, N, C, 2 + C, false);
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < N; r++) /* compress's gradient: each slot back to its token */
        for (size_t d = 0; sf->rank[r] && d < C; d++)
            k.dm[r * C + d] += k.dmc[(r / T * n + (size_t)sf->rank[r] - 1) * C + d];
    gau_dropout(g, c, SITE_EMA, (float)g->dropout, k.dm, C);
    module_backward(&f->children[0], k.dm, k.dm, &in);
    if (g->pre) norm_backward(&g->norm, k.dhc, k.dm, x, sf->stats, N, c->training, false);
    const float *dthrough = g->pre ? k.dhc : k.dm;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < N * C; i++) dx[i] = k.dY[i] + dthrough[i];
}

/* The working memory of generation: with a window, the last chunk_size + 1
 * active tokens (a ring); without one, every active token so far. */
static size_t memory_ring(const SeqBoat *s) { return s->g.chunk_size > 0 ? (size_t)s->g.chunk_size + 1 : 0; }

/* The state: the EMA's, the count of active tokens so far, then per memory
 * row [k, v, bias position] (the original position, or the compressed index
 * under local_pos). */
static size_t seqboat_state_size(Module *m, size_t max_T) {
    SeqBoat *s = (SeqBoat *)m;
    const size_t rows = memory_ring(s) ? memory_ring(s) : max_T;
    return module_state_size(m->children[0], max_T) + 1 + rows * (s->g.Z + s->g.H + 1);
}

/* One token: EMA step, route; an active token's k, v join the memory (the
 * oldest leaves) and its query attends over the memory. */
static void seqboat_step(Module *m, Frame *f, float *state, size_t t, const float *x, float *y, const Ctx *c) {
    SeqBoat *s = (SeqBoat *)m;
    const GauLayer *g = &s->g;
    const size_t C = g->C, H = g->H, Z = g->Z, W = s->W, ld = Z + H + 1;
    float *count = state + module_state_size(m->children[0], 0), *memory = count + 1;
    const size_t index = (size_t)count[0], ring = memory_ring(s), n = ring && index + 1 > ring ? ring : index + 1;
    float *xn = c->scratch, *mrow = xn + C, *hx = mrow + C, *mx = hx + 2 + C, *q = mx + W, *o = q + Z, *orow = o + H;
    float *stats = orow + H, *hc = stats + 16, *w = hc + C;
    int32_t *keys_at = (int32_t *)(w + n);
    const Ctx in = gau_child_ctx(c, w + 2 * n);
    if (g->pre) norm_forward(&g->norm, xn, stats, x, 1, false);
    else memcpy(xn, x, C * sizeof(float));
    module_step(&f->children[0], state, t, xn, mrow, &in);
    linear_forward(hx, mrow, s->wx, s->bx, 1, C, 2 + C);
    memset(hc, 0, C * sizeof(float));
    if (hx[1] > hx[0]) {
        float *row = memory + (ring ? index % ring : index) * ld;
        linear_forward(mx, mrow, s->wm, s->bm, 1, C, W);
        activation_forward(mx, mx, W, ACT_SILU);
        gau_qk(q, row, mx, W, 1, g);
        memcpy(row + Z, mx + Z + H, H * sizeof(float));
        const int32_t here = (int32_t)t, mine = s->local_pos ? (int32_t)index : here;
        if (g->rel == REL_ROPE) { /* generation may run past max_len: the turn of t computed here */
            float turn[Z];
            rope_table(turn, t, 1, Z);
            rope_rotate(q, Z, &(int32_t){0}, 1, Z, turn, false);
            rope_rotate(row, Z, &(int32_t){0}, 1, Z, turn, false);
        }
        memcpy(row + Z + H, &mine, sizeof mine);
        count[0] += 1.0f;
        for (size_t j = 0; j < n; j++) memcpy(&keys_at[j], memory + j * ld + Z + H, sizeof *keys_at);
        const SeqBoatFrame empty = {0};
        /* local_pos: offset d reads b[P - 1 + W + d], the table local_table makes */
        GauShape gs = shape(s, c, &empty, 1, s->local_pos ? g->bias + g->P - 1 : NULL, NULL);
        gs.ldk = gs.ldv = ld;
        gau_attention_query(o, q, memory, memory + Z, n, keys_at, mine, &gs, w);
        for (size_t h = 0; h < H; h++) orow[h] = o[h] * mx[Z + h];
        linear_forward(hc, orow, g->wh, g->bh, 1, H, C);
        const float gate = gau_sigmoid((hx[1] - hx[0]) / expf(s->temp[0]));
        for (size_t d = 0; d < C; d++) hc[d] *= gate;
    }
    float *out = g->pre ? y : xn; /* post: the norm's input; xn is free again */
    for (size_t d = 0; d < C; d++) out[d] = x[d] + hx[2 + d] + hc[d];
    activation_forward(out, out, C, ACT_SILU);
    if (!g->pre) norm_forward(&g->norm, y, stats, xn, 1, false);
}

const ModuleOps seqboat_module = {
    .name = "seqboat",
    .kind = "mixer",
    .owns_residual = true,
    .size = sizeof(SeqBoat),
    .keys = seqboat_keys,
    .configure = seqboat_configure,
    .destroy = seqboat_destroy,
    .params = seqboat_params,
    .init = seqboat_init,
    .frame_bytes = sizeof(SeqBoatFrame),
    .layout = seqboat_layout,
    .scratch = seqboat_scratch,
    .forward = seqboat_forward,
    .backward = seqboat_backward,
    .state_size = seqboat_state_size,
    .step = seqboat_step,
};
