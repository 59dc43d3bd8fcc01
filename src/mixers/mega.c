/* mega.c — MEGA's moving-average equipped gated attention layer (the `mega`
 * mixer; Ma et al. 2022, spec mega-seqboat.md §4), a whole layer with its
 * own residual and norm:
 *   X^ = Norm(X) (pre)          V = silu(X^ Wv + bv)        M = Dropout(EMA(X^))
 *   [U', ZR', Hx] = M Wm + bm   U = σ(U')   [Zs, Rg] = silu(ZR')
 *   q = Zs γ0 + β0, k = Zs γ1 + β1, O = Attention(q, k, Dropout_h(V)) per chunk
 *   Hh = Dropout(silu(Hx + (O ⊙ Rg) Wh + bh))
 *   Y = X + U ⊙ (Hh - X)        (post: Y = Norm(Y))
 * The EMA is the child `move` (ema.c); the attention gau_attention.c's
 * (softmax, relu2, laplace; chunks of chunk_size; the simple or the rotary
 * relative bias). MEGA's feed-forward (NFFN, §4.5) is the ordinary 'f'
 * sublayer: arch "sfsf" with ffn activation silu.
 *
 * Generation: the EMA's recurrence and the keys and values of the running
 * chunk (the cache restarts at every multiple of chunk_size, §4.8). */
#include <math.h>
#include <string.h>

#include "gau.h"

typedef struct {
    Module base;
    GauLayer g;
    size_t W;                /* mx_proj width: C + Z + H + C */
    float *wv, *dwv, *bv, *dbv; /* v_proj (H, C), (H) */
    float *wm, *dwm, *bm, *dbm; /* mx_proj (W, C), (W) */
} Mega;

static const ModuleKey mega_keys[] = {
    GAU_LAYER_KEYS(Mega),
    GAU_KEY(Mega, chunk_size, KEY_INT, "0", NULL, NULL, 0, 1e9,
            "attention within chunks of this many positions (the EMA crosses them); 0 = one chunk"),
    GAU_KEY(Mega, rel_pos, KEY_CHOICE, "simple", "simple|rotary|none", NULL, 0, -1,
            "relative position bias: simple (a learned value per offset) or rotary (MEGA's learned rotary bias)"),
    {0}};

enum { SITE_EMA = 1, SITE_HIDDEN = 2, SITE_OUT = 4 };

/* Per use: what backward needs (N = B T rows). */
typedef struct {
    const float *x; /* borrowed: input (N, C), the residual */
    float *xn;      /* (N, C) Norm(x) (pre), else NULL: x itself */
    float *stats;   /* the norm's statistics */
    float *vpre;    /* (N, H) v_proj's output */
    float *vd;      /* (N, H) silu(vpre) after its dropout: the attention's values */
    float *m;       /* (N, C) EMA output after dropout: mx_proj's input */
    float *mx;      /* (N, W) mx_proj's output */
    float *q, *k;   /* (N, Z) */
    float *o, *lse; /* (N, H), (N) */
    float *hpre;    /* (N, C) Hx + (O ⊙ Rg) Wh + bh */
    float *ypre;    /* (N, C) post: the norm's input */
    float *table;   /* rotary bias table */
} MegaFrame;

static int mega_configure(Module *m, const ModuleSpec *spec, Error *err) {
    Mega *a = (Mega *)m;
    if (gau_configure(m, &a->g, spec, REL_ROTARY_BIAS, false, err)) return -1;
    a->W = 2 * a->g.C + a->g.Z + a->g.H;
    const size_t L = (size_t)spec->cfg->max_len, span = a->g.chunk_size > 0 ? (size_t)a->g.chunk_size : L;
    if (a->g.rel == REL_SIMPLE && span > a->g.P)
        return err_set(err, "%s: the simple relative bias covers %zu positions (max_positions) but attention spans %zu "
                            "(chunk_size, else max_len); MEGA refuses longer spans", m->path, a->g.P, span);
    return 0;
}

static void mega_params(Module *m, ParamSet *ps) {
    Mega *a = (Mega *)m;
    const size_t C = a->g.C, H = a->g.H;
    gau_params(&a->g, ps);
    params_add(ps, "v_proj.weight", &a->wv, &a->dwv, GROUP_LINEAR, 2, H, C);
    params_add(ps, "v_proj.bias", &a->bv, &a->dbv, GROUP_BIAS, 1, H);
    params_add(ps, "mx_proj.weight", &a->wm, &a->dwm, GROUP_LINEAR, 2, a->W, C);
    params_add(ps, "mx_proj.bias", &a->bm, &a->dbm, GROUP_BIAS, 1, a->W);
}

static void mega_init(Module *m, uint64_t seed) {
    Mega *a = (Mega *)m;
    gau_init(m, &a->g, seed);
    gau_draw(m, &a->g, a->wv, a->g.H * a->g.C, 0.02f, seed, 0);
    gau_draw(m, &a->g, a->wm, a->W * a->g.C, 0.02f, seed, 1);
    memset(a->bv, 0, a->g.H * sizeof(float));
    memset(a->bm, 0, a->W * sizeof(float));
}

static void mega_layout(Module *m, Frame *f, size_t B, size_t T, Arena *ar) {
    Mega *a = (Mega *)m;
    MegaFrame *mf = f->data;
    const size_t N = B * T, C = a->g.C, H = a->g.H, Z = a->g.Z;
    mf->xn = a->g.pre ? arena_take(ar, N * C) : NULL;
    mf->stats = arena_take(ar, norm_stats_floats(&a->g.norm, N));
    mf->vpre = arena_take(ar, N * H);
    mf->vd = arena_take(ar, N * H);
    mf->m = arena_take(ar, N * C);
    mf->mx = arena_take(ar, N * a->W);
    mf->q = arena_take(ar, N * Z);
    mf->k = arena_take(ar, N * Z);
    mf->o = arena_take(ar, N * H);
    mf->lse = arena_take(ar, N);
    mf->hpre = arena_take(ar, N * C);
    mf->ypre = a->g.pre ? NULL : arena_take(ar, N * C);
    mf->table = arena_take(ar, gau_table_floats(&a->g, T) + 1);
    module_layout(&f->children[0], B, T, ar);
}

/* Scratch, in this order (each rounded to 16 floats). */
typedef struct {
    float *zr;    /* (N, Z + H) silu of mx's middle: Zs, Rg */
    float *or_;   /* (N, H) O ⊙ Rg */
    float *hh;    /* (N, C) Hh */
    float *dY;    /* (N, C) gradient of the residual form's output */
    float *dh;    /* (N, C) gradient of hpre */
    float *dor;   /* (N, H) gradient of O ⊙ Rg */
    float *dO;    /* (N, H) */
    float *dq, *dk; /* (N, Z) */
    float *dv;    /* (N, H) */
    float *dmx;   /* (N, W) */
    float *dxn;   /* (N, C) gradient of X^ */
    float *dm;    /* (N, C) gradient of M, then the EMA's input gradient */
    float *dtable;
    float *attn;  /* the attention's scratch */
    size_t own;   /* floats before it */
    float *child; /* the EMA's (set by the caller after the attention's) */
} MegaScratch;

static MegaScratch scratch_at(const Mega *a, float *base, size_t B, size_t T) {
    const size_t N = B * T, C = a->g.C, H = a->g.H, Z = a->g.Z;
    MegaScratch s;
    /* a counting arena (base NULL) sizes it, the same calls over the scratch point into it */
    Arena ar = {.base = base, .cap = base ? SIZE_MAX : 0};
    s.zr = arena_take(&ar, N * (Z + H));
    s.or_ = arena_take(&ar, N * H);
    s.hh = arena_take(&ar, N * C);
    s.dY = arena_take(&ar, N * C);
    s.dh = arena_take(&ar, N * C);
    s.dor = arena_take(&ar, N * H);
    s.dO = arena_take(&ar, N * H);
    s.dq = arena_take(&ar, N * Z);
    s.dk = arena_take(&ar, N * Z);
    s.dv = arena_take(&ar, N * H);
    s.dmx = arena_take(&ar, N * a->W);
    s.dxn = arena_take(&ar, N * C);
    s.dm = arena_take(&ar, N * C);
    s.dtable = arena_take(&ar, gau_table_floats(&a->g, T) + 1);
    s.attn = arena_take(&ar, 0);
    s.own = ar.used;
    return s;
}

static GauShape shape(const Mega *a, const Ctx *c, const MegaFrame *mf, float *dtable) {
    GauShape s = gau_shape(&a->g, c, c->B, c->T, a->g.H, a->g.H, mf->table, dtable);
    s.chunk = a->g.chunk_size > 0 && (size_t)a->g.chunk_size < c->T ? (size_t)a->g.chunk_size : c->T;
    s.key_mask = c->mask;
    s.len = c->causal ? GAU_LEN_ROW : GAU_LEN_KEYS;
    return s;
}

/* A step's rows: xn, v, m, mx, zr, q, k, o, or, hh, the norm's statistics
 * and the weights of the cache (T positions at most). */
static size_t step_floats(const Mega *a, size_t T) {
    const size_t C = a->g.C, H = a->g.H, Z = a->g.Z;
    return 3 * C + a->W + (Z + H) + 2 * Z + 2 * H + 16 + T;
}

static size_t mega_scratch(Module *m, size_t B, size_t T) {
    Mega *a = (Mega *)m;
    MegaScratch s = scratch_at(a, NULL, B, T);
    const Ctx c = {.B = B, .T = T, .causal = true};
    const GauShape gs = shape(a, &c, &(MegaFrame){0}, NULL);
    const size_t own = s.own + gau_lines(gau_attention_scratch(&gs));
    const size_t need = own + module_scratch(m->children[0], B, T);
    const size_t step = step_floats(a, T) + module_scratch(m->children[0], 1, 1);
    return need > step ? need : step;
}

static void mega_forward(Module *m, Frame *f, const float *x, float *y, const Ctx *c) {
    Mega *a = (Mega *)m;
    MegaFrame *mf = f->data;
    const GauLayer *g = &a->g;
    const size_t N = c->B * c->T, C = g->C, H = g->H, Z = g->Z, W = a->W;
    MegaScratch s = scratch_at(a, c->scratch, c->B, c->T);
    GauShape gs = shape(a, c, mf, NULL);
    s.child = s.attn + gau_lines(gau_attention_scratch(&gs));
    mf->x = x;
    const float *xn = x;
    if (g->pre) norm_forward(&g->norm, mf->xn, mf->stats, x, N, c->training), xn = mf->xn;
    linear_forward(mf->vpre, xn, a->wv, a->bv, N, C, H);
    activation_forward(mf->vd, mf->vpre, N * H, ACT_SILU);
    gau_dropout(g, c, SITE_HIDDEN, (float)g->hidden_dropout, mf->vd, H);
    const Ctx in = gau_child_ctx(c, s.child);
    module_forward(&f->children[0], xn, mf->m, &in);
    gau_dropout(g, c, SITE_EMA, (float)g->dropout, mf->m, C);
    linear_forward(mf->mx, mf->m, a->wm, a->bm, N, C, W);
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < N; r++) activation_forward(s.zr + r * (Z + H), mf->mx + r * W + C, Z + H, ACT_SILU);
    gau_qk(mf->q, mf->k, s.zr, Z + H, N, g);
    gau_bias_table(g, mf->table, c->T);
    gau_attention_forward(mf->o, mf->lse, mf->q, mf->k, mf->vd, &gs, s.attn);
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < N; r++)
        for (size_t h = 0; h < H; h++) s.or_[r * H + h] = mf->o[r * H + h] * s.zr[r * (Z + H) + Z + h];
    linear_forward(mf->hpre, s.or_, g->wh, g->bh, N, H, C);
    float *out = g->pre ? y : mf->ypre;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < N; r++)
        for (size_t d = 0; d < C; d++) mf->hpre[r * C + d] += mf->mx[r * W + C + Z + H + d];
    activation_forward(s.hh, mf->hpre, N * C, ACT_SILU);
    gau_dropout(g, c, SITE_OUT, (float)g->dropout, s.hh, C);
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < N; r++)
        for (size_t d = 0; d < C; d++) {
            const float u = gau_sigmoid(mf->mx[r * W + d]), xr = x[r * C + d];
            out[r * C + d] = xr + u * (s.hh[r * C + d] - xr);
        }
    if (!g->pre) norm_forward(&g->norm, y, mf->stats, mf->ypre, N, c->training);
}

static void mega_backward(Module *m, Frame *f, const float *dy, float *dx, const Ctx *c) {
    Mega *a = (Mega *)m;
    MegaFrame *mf = f->data;
    GauLayer *g = &a->g;
    const size_t N = c->B * c->T, C = g->C, H = g->H, Z = g->Z, W = a->W;
    MegaScratch s = scratch_at(a, c->scratch, c->B, c->T);
    if (gau_table_floats(g, c->T)) memset(s.dtable, 0, gau_table_floats(g, c->T) * sizeof(float));
    GauShape gs = shape(a, c, mf, s.dtable);
    s.child = s.attn + gau_lines(gau_attention_scratch(&gs));
    const float *x = mf->x, *xn = g->pre ? mf->xn : x;
    if (g->pre) memcpy(s.dY, dy, N * C * sizeof(float)); /* dx may be dy */
    else norm_backward(&g->norm, s.dY, dy, mf->ypre, mf->stats, N, c->training, false);
    /* Y = X + U (Hh - X): dU' into dmx[:, :C], dHh = dY U through dropout and silu into dh */
    activation_forward(s.hh, mf->hpre, N * C, ACT_SILU);
    gau_dropout(g, c, SITE_OUT, (float)g->dropout, s.hh, C);
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < N; r++)
        for (size_t d = 0; d < C; d++) {
            const size_t i = r * C + d;
            const float u = gau_sigmoid(mf->mx[r * W + d]);
            s.dmx[r * W + d] = s.dY[i] * (s.hh[i] - x[i]) * u * (1.0f - u);
            s.dh[i] = s.dY[i] * u;
        }
    gau_dropout(g, c, SITE_OUT, (float)g->dropout, s.dh, C);
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < N; r++)
        for (size_t d = 0; d < C; d++) {
            s.dh[r * C + d] *= gau_silu_grad(mf->hpre[r * C + d]);
            s.dmx[r * W + C + Z + H + d] = s.dh[r * C + d]; /* Hx enters hpre as is */
        }
    /* h_proj, then O ⊙ Rg: dO = dor Rg, dRg' = dor O silu'(Rg') */
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < N; r++) {
        activation_forward(s.zr + r * (Z + H), mf->mx + r * W + C, Z + H, ACT_SILU);
        for (size_t h = 0; h < H; h++) s.or_[r * H + h] = mf->o[r * H + h] * s.zr[r * (Z + H) + Z + h];
    }
    linear_backward(s.dor, g->dwh, g->dbh, s.dh, s.or_, g->wh, N, H, C, false);
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < N; r++)
        for (size_t h = 0; h < H; h++) {
            const size_t i = r * H + h;
            s.dO[i] = s.dor[i] * s.zr[r * (Z + H) + Z + h];
            s.dmx[r * W + C + Z + h] = s.dor[i] * mf->o[i] * gau_silu_grad(mf->mx[r * W + C + Z + h]);
        }
    gau_attention_backward(s.dq, s.dk, s.dv, s.dO, mf->q, mf->k, mf->vd, mf->o, mf->lse, &gs, s.attn);
    gau_bias_table_backward(g, s.dtable, c->T);
    /* V = silu(X^ Wv + bv) through the hidden dropout */
    gau_dropout(g, c, SITE_HIDDEN, (float)g->hidden_dropout, s.dv, H);
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < N * H; i++) s.dv[i] *= gau_silu_grad(mf->vpre[i]);
    linear_backward(s.dxn, a->dwv, a->dbv, s.dv, xn, a->wv, N, C, H, false);
    /* q, k from Zs; then Zs' */
    gau_qk_backward(s.dmx + C, W, s.dq, s.dk, s.zr, Z + H, N, g);
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < N; r++)
        for (size_t z = 0; z < Z; z++) s.dmx[r * W + C + z] *= gau_silu_grad(mf->mx[r * W + C + z]);
    linear_backward(s.dm, a->dwm, a->dbm, s.dmx, mf->m, a->wm, N, C, W, false);
    gau_dropout(g, c, SITE_EMA, (float)g->dropout, s.dm, C);
    const Ctx in = gau_child_ctx(c, s.child);
    module_backward(&f->children[0], s.dm, s.dm, &in);
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < N * C; i++) s.dxn[i] += s.dm[i];
    if (g->pre) norm_backward(&g->norm, s.dm, s.dxn, x, mf->stats, N, c->training, false);
    const float *dthrough = g->pre ? s.dm : s.dxn; /* the gradient reaching X through X^ */
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < N; r++)
        for (size_t d = 0; d < C; d++) {
            const size_t i = r * C + d;
            dx[i] = s.dY[i] * (1.0f - gau_sigmoid(mf->mx[r * W + d])) + dthrough[i];
        }
}

/* Rows of the step's cache: the running chunk (without chunks, every position so far). */
static size_t cache_rows(const Mega *a, size_t max_T) {
    return a->g.chunk_size > 0 && (size_t)a->g.chunk_size < max_T ? (size_t)a->g.chunk_size : max_T;
}

/* The state: the EMA's, then a row [k, v] per cache row, then (rel_pos
 * rotary) the bias of every offset inside the cache, made at t = 0: it depends
 * only on the offset, and making it per token cost more than the layer. */
static size_t mega_state_size(Module *m, size_t max_T) {
    Mega *a = (Mega *)m;
    const size_t rows = cache_rows(a, max_T), table = a->g.rel == REL_ROTARY_BIAS ? 2 * rows - 1 : 0;
    return module_state_size(m->children[0], max_T) + rows * (a->g.Z + a->g.H) + table;
}

/* One token: the layer's forward on one row, the EMA stepped, k and v
 * written to the cache row of position t (a new chunk starts the cache again). */
static void mega_step(Module *m, Frame *f, float *state, size_t t, const float *x, float *y, const Ctx *c) {
    Mega *a = (Mega *)m;
    const GauLayer *g = &a->g;
    const size_t C = g->C, H = g->H, Z = g->Z, W = a->W, rows = cache_rows(a, c->max_T);
    const size_t slot = t % rows, n = slot + 1;
    float *xn = c->scratch, *v = xn + C, *mrow = v + H, *mx = mrow + C, *zr = mx + W, *q = zr + Z + H, *k = q + Z;
    float *o = k + Z, *orow = o + H, *hh = orow + H, *stats = hh + C, *w = stats + 16;
    float *cache = state + module_state_size(m->children[0], 0), *row = cache + slot * (Z + H);
    float *table = cache + rows * (Z + H);
    const Ctx in = gau_child_ctx(c, w + n);
    if (g->pre) norm_forward(&g->norm, xn, stats, x, 1, false);
    else memcpy(xn, x, C * sizeof(float));
    linear_forward(v, xn, a->wv, a->bv, 1, C, H);
    activation_forward(row + Z, v, H, ACT_SILU);
    module_step(&f->children[0], state, t, xn, mrow, &in);
    linear_forward(mx, mrow, a->wm, a->bm, 1, C, W);
    activation_forward(zr, mx + C, Z + H, ACT_SILU);
    gau_qk(q, row, zr, Z + H, 1, g);
    GauShape gs = gau_shape(g, c, 1, 1, Z + H, H, NULL, NULL);
    gs.ldk = Z + H;
    gs.len = GAU_LEN_ROW;
    if (g->rel == REL_ROTARY_BIAS) {
        if (t == 0) rotary_bias_table(table, g->ralpha, g->rbeta, Z, rows);
        gs.bias = table;
        gs.bias_radius = rows;
    }
    gau_attention_query(o, q, cache, cache + Z, n, NULL, (long)slot, &gs, w);
    for (size_t h = 0; h < H; h++) orow[h] = o[h] * zr[Z + h];
    linear_forward(hh, orow, g->wh, g->bh, 1, H, C);
    for (size_t d = 0; d < C; d++) hh[d] += mx[C + Z + H + d];
    activation_forward(hh, hh, C, ACT_SILU);
    float *out = g->pre ? y : xn; /* post: the norm's input; xn is free again */
    for (size_t d = 0; d < C; d++) out[d] = x[d] + gau_sigmoid(mx[d]) * (hh[d] - x[d]);
    if (!g->pre) norm_forward(&g->norm, y, stats, xn, 1, false);
}

const ModuleOps mega_module = {
    .name = "mega",
    .kind = "mixer",
    .owns_residual = true,
    .size = sizeof(Mega),
    .keys = mega_keys,
    .configure = mega_configure,
    .params = mega_params,
    .init = mega_init,
    .frame_bytes = sizeof(MegaFrame),
    .layout = mega_layout,
    .scratch = mega_scratch,
    .forward = mega_forward,
    .backward = mega_backward,
    .state_size = mega_state_size,
    .step = mega_step,
};
