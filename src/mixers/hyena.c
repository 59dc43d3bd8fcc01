/* hyena.c — the Hyena operator of order N, the `hyena` mixer (Poli et al.
 * 2023; spec ssm-hyena.md §2, §3):
 *   z = u W_in^T + b_in, N + 1 groups of D channels; zc = causal depthwise conv of z (3 taps)
 *   x_0 .. x_{N-1}, v = the groups of zc
 *   for o = 0 .. N-2:  v = Filter_o(Dropout(v ⊙ x_{N-1-o}))
 *   out = (v ⊙ x_0) W_out^T + b_out
 * Filter_o is the implicit long convolution by default: a filter h_o as long
 * as the sequence, made by an MLP with sine activations from positional
 * features and shaped by an exponential window (§2.3), applied by FFT (ops
 * fftconv), plus a feed-through b_o ⊙ v. The section `filter` may name any
 * mixer instead, one instance per order: `filter: {name: s5, ...}` is
 * Hyena-S5 (§3, where S5 mixes channels as a MIMO system); `identity` is the
 * reference's test filter (oracle T-HS-2).
 *
 * Generation: the short convolution steps with its last two inputs (the
 * reference skips it, which is only right without it, §3.1); a mixer filter
 * steps with its own state (S5: O(1) per token); the implicit filter keeps
 * every past filter input and sums over them, O(t) per token — its filter
 * has no recurrent form. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/module.h"
#include "hyena.h"

enum { MAX_ORDER = 8, MAX_MLP = 8 };

typedef enum { FILTER_IMPLICIT, FILTER_IDENTITY, FILTER_MIXER } FilterKind;

typedef struct {
    Module base;
    int order, filter_order, emb_dim, num_inner_mlps, short_filter_order, l_max;
    double w, drop_rate, fast_decay_pct, slow_decay_pct, target, shift;
    bool modulate, filter_bias;
    char init[CFG_NAME], filter_name[CFG_NAME];
    double init_std;
    int n_layer;
    size_t D, G, O, F, E, L, layers; /* G = N + 1 groups, O = N - 1 orders, `layers` of the filter MLP */
    FilterKind filter;
    float *zpos, *tpos, *decay;      /* owned constants: features (L, E), t_k (L), δ (O D) */
    Module *conv;                    /* child 0, or NULL without a short convolution */
    int first_filter;                /* index of child filter.0 */
    float *w_in, *dw_in, *b_in, *db_in;     /* (G D, D), (G D) */
    float *w_out, *dw_out, *b_out, *db_out; /* (D, D), (D) */
    float *mw[MAX_MLP], *dmw[MAX_MLP], *mb[MAX_MLP], *dmb[MAX_MLP]; /* the filter MLP; the last has no bias */
    float *freq, *dfreq;             /* (F) shared by every sine */
    float *fbias, *dfbias;           /* (O D): b_o[d] at d (N-1) + o */
} Hyena;

static const char *const filter_children[MAX_ORDER] = {"filter.0", "filter.1", "filter.2", "filter.3",
                                                       "filter.4", "filter.5", "filter.6", "filter.7"};

static const ModuleKey hyena_keys[] = {
    MODULE_KEY(Hyena, order, KEY_INT, "2", NULL, NULL, 2, MAX_ORDER, "N: gates and filters (N - 1 of them)"),
    MODULE_KEY(Hyena, short_filter_order, KEY_INT, "3", NULL, NULL, 0, 64, "taps of the short convolution; 0: none"),
    MODULE_KEY(Hyena, drop_rate, KEY_FLOAT, "0", NULL, NULL, 0, 0.999, "dropout on each filter's input"),
    {"filter.name", KEY_STRING, offsetof(Hyena, filter_name), sizeof(((Hyena *)0)->filter_name), "implicit", NULL,
     NULL, 0, -1, "the long filter: implicit, identity, or a mixer (s5: Hyena-S5) with its keys under filter.*"},
    MODULE_KEY(Hyena, filter_order, KEY_INT, "64", NULL, NULL, 1, 65536, "implicit: width F of the filter MLP"),
    MODULE_KEY(Hyena, emb_dim, KEY_INT, "5", NULL, NULL, 3, 255, "implicit: positional features (odd)"),
    MODULE_KEY(Hyena, num_inner_mlps, KEY_INT, "2", NULL, NULL, 0, MAX_MLP - 2, "implicit: hidden F x F layers"),
    MODULE_KEY(Hyena, w, KEY_FLOAT, "10", NULL, NULL, -1e6, 1e6, "implicit: initial sine frequency"),
    MODULE_KEY(Hyena, filter_bias, KEY_BOOL, "true", NULL, NULL, 0, -1, "implicit: the feed-through b ⊙ v"),
    MODULE_KEY(Hyena, modulate, KEY_BOOL, "true", NULL, NULL, 0, -1, "implicit: the exponential window"),
    MODULE_KEY(Hyena, fast_decay_pct, KEY_FLOAT, "0.3", NULL, NULL, 1e-9, 1e9, "implicit: window of the last channel"),
    MODULE_KEY(Hyena, slow_decay_pct, KEY_FLOAT, "1.5", NULL, NULL, 1e-9, 1e9, "implicit: window of the first channel"),
    MODULE_KEY(Hyena, target, KEY_FLOAT, "0.01", NULL, NULL, 1e-30, 1, "implicit: window value at those points"),
    MODULE_KEY(Hyena, shift, KEY_FLOAT, "0", NULL, NULL, -1e6, 1e6, "implicit: added to the window"),
    MODULE_KEY(Hyena, l_max, KEY_INT, "0", NULL, NULL, 0, 1 << 30, "implicit: positions of the features; 0: max_len"),
    MODULE_KEY(Hyena, init, KEY_CHOICE, "seqlab", INIT_SCHEMES, "init", 0, -1,
               "of the projections and the filter MLP (flax: the S5 port; gpt2: safari); out_proj is an output layer"),
    MODULE_KEY(Hyena, init_std, KEY_FLOAT, "0.02", NULL, "init_std", 1e-12, 1e6, "init seqlab: std of the weights"),
    {0}};

/* Per use. */
typedef struct {
    const float *u;            /* borrowed: input (B, T, D) */
    float *z, *zc;             /* (B, T, G D) before and after the short convolution (zc == z without one) */
    float *p[MAX_ORDER];       /* (B, T, D) each filter's input, gated and dropped out */
    float *v[MAX_ORDER];       /* (B, T, D) each filter's output */
    float *pre[MAX_MLP], *act[MAX_MLP]; /* implicit: (T, F) the MLP's sine arguments and outputs */
    float *h, *bias;           /* implicit: (O, T, D) the filters, (O, D) the feed-through, per order */
    float *spectra;            /* implicit: O x fftconv_spectra_floats(T, D) */
} HyenaFrame;

static int hyena_configure(Module *m, const ModuleSpec *spec, Error *err) {
    Hyena *h = (Hyena *)m;
    if (m->C_in != m->C_out) return err_set(err, "%s: hyena keeps the width", m->path);
    h->D = m->C_in;
    h->G = (size_t)h->order + 1;
    h->O = (size_t)h->order - 1;
    h->F = (size_t)h->filter_order;
    h->E = (size_t)h->emb_dim;
    h->layers = (size_t)h->num_inner_mlps + 2;
    h->L = h->l_max ? (size_t)h->l_max : (size_t)spec->cfg->max_len;
    h->n_layer = spec->cfg->n_layer;
    if (h->E % 2 == 0) return err_set(err, "%s: emb_dim must be odd (t, then cosines and sines), got %zu", m->path, h->E);
    if (h->L < (size_t)spec->cfg->max_len)
        return err_set(err, "%s: l_max %zu is below max_len %d: the filter must cover every position", m->path, h->L,
                       spec->cfg->max_len);
    h->filter = !strcmp(h->filter_name, "implicit") ? FILTER_IMPLICIT
                : !strcmp(h->filter_name, "identity") ? FILTER_IDENTITY
                                                      : FILTER_MIXER;
    if (h->short_filter_order > 0) { /* a dwconv child: its taps and init follow ours unless its section says */
        char defaults[64];
        snprintf(defaults, sizeof defaults, "kernel_size=%d;init=%s", h->short_filter_order,
                 strcmp(h->init, "flax") ? "uniform" : "lecun_normal"); /* safari: PyTorch's Conv1d */
        if (!(h->conv = module_add_child_at(m, spec, "short_filter", "short_filter", "mixer", "dwconv", defaults,
                                            h->G * h->D, h->G * h->D, err)))
            return -1;
    }
    h->first_filter = m->n_children;
    if (h->filter == FILTER_MIXER)
        for (size_t o = 0; o < h->O; o++)
            if (!module_add_child_at(m, spec, "filter", filter_children[o], "mixer", h->filter_name, NULL, h->D, h->D,
                                     err))
                return -1;
    if (h->filter != FILTER_IMPLICIT) return 0;
    h->zpos = malloc(h->L * h->E * sizeof *h->zpos);
    h->tpos = malloc(h->L * sizeof *h->tpos);
    h->decay = malloc(h->O * h->D * sizeof *h->decay);
    if (!h->zpos || !h->tpos || !h->decay) return err_set(err, "%s: out of memory", m->path);
    hyena_positions(h->zpos, h->tpos, h->L, h->E);
    hyena_decays(h->decay, h->O * h->D, h->fast_decay_pct, h->slow_decay_pct, h->target);
    return 0;
}

void hyena_positions(float *z, float *t, size_t L, size_t E) {
    const size_t bands = (E - 1) / 2;
    for (size_t k = 0; k < L; k++) {
        const double tk = L > 1 ? (double)k / (double)(L - 1) : 0.0, wk = 2.0 * M_PI * (double)k / (double)L;
        t[k] = (float)tk;
        z[k * E] = (float)tk;
        for (size_t j = 0; j < bands; j++) {
            const double f = bands > 1 ? 1e-4 + (double)j * ((double)bands - 1.0 - 1e-4) / (double)(bands - 1) : 1e-4;
            z[k * E + 1 + j] = (float)cos(f * wk);
            z[k * E + 1 + bands + j] = (float)-sin(f * wk);
        }
    }
}

void hyena_decays(float *delta, size_t n, double fast_pct, double slow_pct, double target) {
    const double max_decay = log(target) / fast_pct, min_decay = log(target) / slow_pct;
    for (size_t c = 0; c < n; c++)
        delta[c] = (float)(n > 1 ? min_decay + (max_decay - min_decay) * (double)c / (double)(n - 1) : min_decay);
}

static void hyena_destroy(Module *m) {
    Hyena *h = (Hyena *)m;
    free(h->zpos), free(h->tpos), free(h->decay);
}

static void hyena_params(Module *m, ParamSet *ps) {
    Hyena *h = (Hyena *)m;
    const size_t D = h->D;
    params_add(ps, "in_proj.weight", &h->w_in, &h->dw_in, GROUP_LINEAR, 2, h->G * D, D);
    params_add(ps, "in_proj.bias", &h->b_in, &h->db_in, GROUP_BIAS, 1, h->G * D);
    if (h->filter == FILTER_IMPLICIT) {
        char name[64];
        for (size_t i = 0; i < h->layers; i++) {
            const size_t in = i == 0 ? h->E : h->F, out = i + 1 == h->layers ? h->O * D : h->F;
            snprintf(name, sizeof name, "implicit_filter.%zu.weight", i);
            params_add(ps, name, &h->mw[i], &h->dmw[i], GROUP_LINEAR, 2, out, in);
            if (i + 1 == h->layers) break;
            snprintf(name, sizeof name, "implicit_filter.%zu.bias", i);
            params_add(ps, name, &h->mb[i], &h->dmb[i], GROUP_BIAS, 1, out);
        }
        params_add(ps, "implicit_filter.freq", &h->freq, &h->dfreq, GROUP_OTHER, 2, (size_t)1, h->F);
        if (h->filter_bias) params_add(ps, "filter_bias", &h->fbias, &h->dfbias, GROUP_OTHER, 1, h->O * D);
    }
    params_add(ps, "out_proj.weight", &h->w_out, &h->dw_out, GROUP_LINEAR, 2, D, D);
    params_add(ps, "out_proj.bias", &h->b_out, &h->db_out, GROUP_BIAS, 1, D);
}

static void hyena_init(Module *m, uint64_t seed) {
    Hyena *h = (Hyena *)m;
    const size_t D = h->D;
    module_init_dense(m, h->w_in, h->G * D, D, h->init, h->init_std, false, h->n_layer, seed, 0);
    module_init_bias(m, h->b_in, h->G * D, D, h->init, seed, 100);
    module_init_dense(m, h->w_out, D, D, h->init, h->init_std, true, h->n_layer, seed, 1);
    module_init_bias(m, h->b_out, D, D, h->init, seed, 101);
    if (h->filter != FILTER_IMPLICIT) return;
    for (size_t i = 0; i < h->layers; i++) {
        const size_t out = i + 1 == h->layers ? h->O * D : h->F, in = i == 0 ? h->E : h->F;
        module_init_dense(m, h->mw[i], out, in, h->init, h->init_std, false, h->n_layer, seed, 2 + (int)i);
        if (h->mb[i]) module_init_bias(m, h->mb[i], out, in, h->init, seed, 102 + (int)i);
    }
    for (size_t f = 0; f < h->F; f++) h->freq[f] = (float)h->w;
    if (h->fbias) module_init_normal(m, h->fbias, h->O * D, 1.0f, seed, 2 + MAX_MLP);
}

/* ---- the implicit filter (§2.3) ---- */

static float window(const Hyena *h, size_t k, size_t c) {
    return h->modulate ? expf(-h->tpos[k] * fabsf(h->decay[c])) + (float)h->shift : 1.0f;
}

/* sin(freq ⊙ pre) of (T, F) rows. */
static void sine(float *a, const float *pre, const float *freq, size_t T, size_t F) {
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < T; k++)
        for (size_t f = 0; f < F; f++) a[k * F + f] = sinf(freq[f] * pre[k * F + f]);
}

/* The O filters (T, D) of positions k0 .. k0 + T - 1 and the feed-through
 * per order; raw: scratch of T O D floats. */
static void filter_forward(Hyena *h, HyenaFrame *hf, size_t k0, size_t T, float *raw) {
    const size_t D = h->D, O = h->O, F = h->F;
    const float *in = h->zpos + k0 * h->E;
    for (size_t i = 0; i + 1 < h->layers; i++) {
        linear_forward(hf->pre[i], in, h->mw[i], h->mb[i], T, i == 0 ? h->E : F, F);
        sine(hf->act[i], hf->pre[i], h->freq, T, F);
        in = hf->act[i];
    }
    linear_forward(raw, in, h->mw[h->layers - 1], NULL, T, F, O * D);
    /* channel c = d O + o is order o's channel d: de-interleave, windowed */
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < T; k++)
        for (size_t c = 0; c < O * D; c++)
            hf->h[((c % O) * T + k) * D + c / O] = raw[k * O * D + c] * window(h, k0 + k, c);
    for (size_t c = 0; c < O * D; c++) hf->bias[(c % O) * D + c / O] = h->fbias ? h->fbias[c] : 0.0f;
}

/* dh (O, T, D) and dbias (O, D) back through the window, the MLP and the sines. work: T (O D + 3 F) floats. */
static void filter_backward(Hyena *h, HyenaFrame *hf, size_t T, const float *dh, const float *dbias, float *work) {
    const size_t D = h->D, O = h->O, F = h->F;
    float *draw = work, *da = draw + T * O * D, *dpre = da + T * F, *tmp = dpre + T * F;
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < T; k++)
        for (size_t c = 0; c < O * D; c++) draw[k * O * D + c] = dh[((c % O) * T + k) * D + c / O] * window(h, k, c);
    if (h->fbias)
        for (size_t c = 0; c < O * D; c++) h->dfbias[c] += dbias[(c % O) * D + c / O];
    const size_t last = h->layers - 1;
    linear_backward(da, h->dmw[last], NULL, draw, hf->act[last - 1], h->mw[last], T, F, O * D, false);
    for (size_t i = last; i-- > 0;) {
        /* a = sin(freq ⊙ s): ds = da ⊙ freq ⊙ cos(freq ⊙ s), dfreq += sum_k da ⊙ s ⊙ cos(freq ⊙ s) */
#pragma omp parallel for schedule(static)
        for (size_t k = 0; k < T; k++)
            for (size_t f = 0; f < F; f++) {
                const float s = hf->pre[i][k * F + f], c = cosf(h->freq[f] * s), g = da[k * F + f];
                dpre[k * F + f] = g * h->freq[f] * c;
                tmp[k * F + f] = g * s * c;
            }
        column_sums(h->dfreq, tmp, NULL, T, F);
        linear_backward(i ? da : NULL, h->dmw[i], h->dmb[i], dpre, i ? hf->act[i - 1] : h->zpos, h->mw[i], T,
                        i ? F : h->E, F, false);
    }
}

/* ---- layout and scratch ---- */

static void hyena_layout(Module *m, Frame *f, size_t B, size_t T, Arena *a) {
    Hyena *h = (Hyena *)m;
    HyenaFrame *hf = f->data;
    const size_t N = B * T, D = h->D, GD = h->G * D;
    hf->z = arena_take(a, N * GD);
    hf->zc = h->conv ? arena_take(a, N * GD) : hf->z;
    for (size_t o = 0; o < h->O; o++) {
        hf->p[o] = arena_take(a, N * D);
        hf->v[o] = arena_take(a, N * D);
    }
    if (h->filter == FILTER_IMPLICIT) {
        for (size_t i = 0; i + 1 < h->layers; i++) {
            hf->pre[i] = arena_take(a, T * h->F);
            hf->act[i] = arena_take(a, T * h->F);
        }
        hf->h = arena_take(a, h->O * T * D);
        hf->bias = arena_take(a, h->O * D);
        hf->spectra = arena_take(a, h->O * fftconv_spectra_floats(T, D));
    }
    for (int i = 0; i < m->n_children; i++) module_layout(&f->children[i], B, T, a);
}

/* Ours: y (or dY), dv, dp (N D each), dzc and dz (N G D each), the filter's
 * gradients dh (O T D) and dbias (O D), the filter backward's work
 * (T (O D + 3 F)), the FFT's scratch; then the children's. */
static size_t own_scratch(const Hyena *h, size_t B, size_t T) {
    const size_t N = B * T, D = h->D, GD = h->G * D;
    size_t s = 3 * N * D + 2 * N * GD;
    if (h->filter == FILTER_IMPLICIT)
        s += h->O * T * D + h->O * D + T * (h->O * D + 3 * h->F) + fftconv_scratch(T, D);
    return s;
}

/* One token of generation: z, zc (G D each), p (D), then a block of the
 * implicit filter's rows (its MLP, the filters, their feed-through, raw). */
enum { STEP_FILTER_ROWS = 256 };
static size_t step_scratch(const Hyena *h) {
    const size_t R = STEP_FILTER_ROWS, D = h->D;
    size_t s = 2 * h->G * D + D;
    if (h->filter == FILTER_IMPLICIT) s += 2 * (h->layers - 1) * R * h->F + 2 * h->O * R * D + h->O * D;
    return s;
}

static size_t hyena_scratch(Module *m, size_t B, size_t T) {
    size_t child = 0;
    for (int i = 0; i < m->n_children; i++) {
        const size_t s = module_scratch(m->children[i], B, T);
        child = s > child ? s : child;
    }
    const size_t own = own_scratch((Hyena *)m, B, T), step = step_scratch((Hyena *)m);
    return (own > step ? own : step) + child;
}

/* The children run on the scratch after ours, always causal (the filters
 * and the short convolution are causal by construction). */
static Ctx child_ctx(const Hyena *h, const Ctx *c) {
    Ctx in = *c;
    in.causal = true;
    in.scratch = c->scratch + own_scratch(h, c->B, c->T);
    return in;
}

/* ---- forward and backward ---- */

/* out[n][d] = a[n][d] * b[n][d] over N rows, a and b with row strides lda, ldb. */
static void rows_product(float *out, size_t ldo, const float *a, size_t lda, const float *b, size_t ldb, size_t N,
                         size_t D) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
#pragma omp simd
        for (size_t d = 0; d < D; d++) out[n * ldo + d] = a[n * lda + d] * b[n * ldb + d];
    }
}

/* Order o's input v: the last group of zc for o = 0, the previous filter's output after. */
static const float *filter_input(const Hyena *h, const HyenaFrame *hf, size_t o, size_t *ld) {
    *ld = o ? h->D : h->G * h->D;
    return o ? hf->v[o - 1] : hf->zc + h->order * h->D;
}

static void run_filter(Hyena *h, Frame *f, size_t o, const Ctx *c, const Ctx *in) {
    HyenaFrame *hf = f->data;
    const size_t N = c->B * c->T, D = h->D;
    if (h->filter == FILTER_IMPLICIT) {
        const float *spectra = hf->spectra + o * fftconv_spectra_floats(c->T, D);
        fftconv_forward(hf->v[o], hf->p[o], hf->h + o * c->T * D, spectra, h->fbias ? hf->bias + o * D : NULL, c->B,
                        c->T, D, in->scratch - fftconv_scratch(c->T, D));
    } else if (h->filter == FILTER_IDENTITY) {
        memcpy(hf->v[o], hf->p[o], N * D * sizeof(float));
    } else {
        module_forward(&f->children[h->first_filter + (int)o], hf->p[o], hf->v[o], in);
    }
}

static void hyena_forward(Module *m, Frame *f, const float *u, float *y, const Ctx *c) {
    Hyena *h = (Hyena *)m;
    HyenaFrame *hf = f->data;
    const size_t N = c->B * c->T, D = h->D, GD = h->G * D;
    const Ctx in = child_ctx(h, c);
    hf->u = u;
    linear_forward(hf->z, u, h->w_in, h->b_in, N, D, GD);
    if (h->conv) module_forward(&f->children[0], hf->z, hf->zc, &in);
    if (h->filter == FILTER_IMPLICIT) {
        filter_forward(h, hf, 0, c->T, c->scratch);
        for (size_t o = 0; o < h->O; o++)
            fftconv_filter(hf->spectra + o * fftconv_spectra_floats(c->T, D), hf->h + o * c->T * D, c->T, D);
    }
    for (size_t o = 0; o < h->O; o++) {
        size_t ld;
        const float *v = filter_input(h, hf, o, &ld);
        rows_product(hf->p[o], D, v, ld, hf->zc + (h->O - o) * D, GD, N, D); /* gate x_{N-1-o} */
        const DropoutKey k = ctx_dropout(c, (int)o, (float)h->drop_rate, D);
        dropout_forward(hf->p[o], hf->p[o], N * D, &k);
        run_filter(h, f, o, c, &in);
    }
    float *yv = c->scratch; /* v ⊙ x_0, out_proj's input */
    rows_product(yv, D, hf->v[h->O - 1], D, hf->zc, GD, N, D);
    linear_forward(y, yv, h->w_out, h->b_out, N, D, D);
}

static void hyena_backward(Module *m, Frame *f, const float *dout, float *du, const Ctx *c) {
    Hyena *h = (Hyena *)m;
    HyenaFrame *hf = f->data;
    const size_t B = c->B, T = c->T, N = B * T, D = h->D, GD = h->G * D;
    float *dY = c->scratch, *dv = dY + N * D, *dp = dv + N * D, *dzc = dp + N * D, *dz = dzc + N * GD;
    float *dh = dz + N * GD, *dbias = dh + h->O * T * D, *work = dbias + h->O * D;
    const Ctx in = child_ctx(h, c);
    rows_product(dp, D, hf->v[h->O - 1], D, hf->zc, GD, N, D); /* out_proj's input again */
    linear_backward(dY, h->dw_out, h->db_out, dout, dp, h->w_out, N, D, D, false);
    rows_product(dzc, GD, dY, D, hf->v[h->O - 1], D, N, D); /* dx_0 */
    rows_product(dv, D, dY, D, hf->zc, GD, N, D);
    if (h->filter == FILTER_IMPLICIT) memset(dh, 0, (h->O * T * D + h->O * D) * sizeof(float));
    for (size_t o = h->O; o-- > 0;) {
        if (h->filter == FILTER_IMPLICIT) {
            const float *spectra = hf->spectra + o * fftconv_spectra_floats(T, D);
            fftconv_backward(dp, dh + o * T * D, h->fbias ? dbias + o * D : NULL, dv, hf->p[o], hf->h + o * T * D,
                             spectra, h->fbias ? hf->bias + o * D : NULL, B, T, D,
                             in.scratch - fftconv_scratch(T, D));
        } else if (h->filter == FILTER_IDENTITY) {
            memcpy(dp, dv, N * D * sizeof(float));
        } else {
            module_backward(&f->children[h->first_filter + (int)o], dv, dp, &in);
        }
        const DropoutKey k = ctx_dropout(c, (int)o, (float)h->drop_rate, D);
        dropout_backward(dp, dp, N * D, &k);
        size_t ld;
        const float *v = filter_input(h, hf, o, &ld);
        rows_product(dzc + (h->O - o) * D, GD, dp, D, v, ld, N, D); /* d gate x_{N-1-o} */
        if (o) rows_product(dv, D, dp, D, hf->zc + (h->O - o) * D, GD, N, D);
        else rows_product(dzc + h->order * D, GD, dp, D, hf->zc + (h->O - o) * D, GD, N, D); /* d v of zc */
    }
    if (h->conv) module_backward(&f->children[0], dzc, dz, &in);
    linear_backward(du, h->dw_in, h->db_in, h->conv ? dz : dzc, hf->u, h->w_in, N, D, GD, false);
    if (h->filter == FILTER_IMPLICIT) filter_backward(h, hf, T, dh, dbias, work);
}

/* ---- generation ---- */

/* Per sequence: the short convolution's state, then per order the filter's:
 * implicit, its filter rows for every position the model allows (l_max x
 * D, made STEP_FILTER_ROWS at a time as generation reaches them) and every
 * past input (l_max x D); a mixer, its own state. */
static size_t order_state(const Hyena *h, size_t o) {
    if (h->filter == FILTER_IMPLICIT) return 2 * h->L * h->D;
    if (h->filter == FILTER_IDENTITY) return 0;
    return module_state_size(h->base.children[h->first_filter + (int)o], h->L);
}

static size_t hyena_state_size(Module *m, size_t max_T) {
    (void)max_T; /* the layout depends on l_max alone: hyena_step knows no other length */
    Hyena *h = (Hyena *)m;
    size_t s = h->conv ? module_state_size(h->conv, h->L) : 0;
    for (size_t o = 0; o < h->O; o++) s += order_state(h, o);
    return s;
}

/* Rows t .. t + STEP_FILTER_ROWS of every order's filter into the states
 * that follow `state` (the per-order regions). */
static void step_filter_rows(Hyena *h, float *state, size_t t, float *scratch) {
    const size_t R = t + STEP_FILTER_ROWS <= h->L ? STEP_FILTER_ROWS : h->L - t, D = h->D;
    HyenaFrame rows = {0};
    float *next = scratch;
    for (size_t i = 0; i + 1 < h->layers; i++) {
        rows.pre[i] = next, next += R * h->F;
        rows.act[i] = next, next += R * h->F;
    }
    rows.h = next, next += h->O * R * D;
    rows.bias = next, next += h->O * D;
    filter_forward(h, &rows, t, R, next);
    for (size_t o = 0; o < h->O; o++) memcpy(state + o * 2 * h->L * D + t * D, rows.h + o * R * D, R * D * sizeof(float));
}

static void hyena_step(Module *m, Frame *f, float *state, size_t t, const float *u, float *y, const Ctx *c) {
    Hyena *h = (Hyena *)m;
    const size_t D = h->D, GD = h->G * D, L = h->L;
    float *z = c->scratch, *zc = z + GD, *p = zc + GD;
    Ctx in = *c;
    in.scratch = p + D;
    linear_forward(z, u, h->w_in, h->b_in, 1, D, GD);
    if (h->conv) {
        module_step(&f->children[0], state, t, z, zc, &in);
        state += module_state_size(h->conv, L);
    } else {
        memcpy(zc, z, GD * sizeof(float));
    }
    if (h->filter == FILTER_IMPLICIT && t % STEP_FILTER_ROWS == 0) step_filter_rows(h, state, t, in.scratch);
    float *v = zc + h->order * D; /* the running value, in place */
    for (size_t o = 0; o < h->O; o++) {
        const float *gate = zc + (h->O - o) * D;
        for (size_t d = 0; d < D; d++) p[d] = v[d] * gate[d];
        if (h->filter == FILTER_IMPLICIT) { /* y_t = sum_{s<=t} h_s ⊙ p_{t-s} + b ⊙ p_t */
            const float *filt = state;
            float *past = state + L * D;
            memcpy(past + t * D, p, D * sizeof(float));
            for (size_t d = 0; d < D; d++) v[d] = h->fbias ? h->fbias[d * h->O + o] * p[d] : 0.0f;
            for (size_t s = 0; s <= t; s++) {
                const float *hs = filt + s * D, *ps = past + (t - s) * D;
#pragma omp simd
                for (size_t d = 0; d < D; d++) v[d] += hs[d] * ps[d];
            }
        } else if (h->filter == FILTER_IDENTITY) {
            memcpy(v, p, D * sizeof(float));
        } else {
            module_step(&f->children[h->first_filter + (int)o], state, t, p, v, &in);
        }
        state += order_state(h, o);
    }
    for (size_t d = 0; d < D; d++) p[d] = v[d] * zc[d];
    linear_forward(y, p, h->w_out, h->b_out, 1, D, D);
}

/* The long convolutions (an FFT of 2T per channel and order: about 3 x 5 n log2 n
 * for the two forward transforms and the inverse) and the gating products. */
static double hyena_flops(Module *m, size_t B, size_t T, bool causal) {
    (void)causal;
    const Hyena *h = (const Hyena *)m;
    const double n = 2.0 * (double)T, conv = h->filter == FILTER_IMPLICIT ? 15.0 * n * log2(n) : 0.0;
    return (double)B * (double)h->O * (double)h->D * conv + 3.0 * (double)B * (double)T * (double)(h->O + 1) * h->D;
}

const ModuleOps hyena_module = {
    .name = "hyena",
    .kind = "mixer",
    .size = sizeof(Hyena),
    .keys = hyena_keys,
    .configure = hyena_configure,
    .destroy = hyena_destroy,
    .params = hyena_params,
    .init = hyena_init,
    .frame_bytes = sizeof(HyenaFrame),
    .layout = hyena_layout,
    .scratch = hyena_scratch,
    .forward = hyena_forward,
    .backward = hyena_backward,
    .state_size = hyena_state_size,
    .step = hyena_step,
    .flops = hyena_flops,
};
