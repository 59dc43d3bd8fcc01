/* s5.c — the S5 state-space layer, the `s5` mixer (Smith, Warrington &
 * Linderman 2023; spec ssm-hyena.md §1): one MIMO linear system with P
 * complex diagonal states shared by all H channels,
 *   x_t = Λ̄ ⊙ x_{t-1} + B̄ u_t,   s_t = c Re(C̃ x_t) + D ⊙ u_t,   y_t = act(s_t)
 * (c = 2 when only one of each conjugate pair is stored), Λ̄, B̄ the ZOH or
 * bilinear discretisation of Λ, B̃ with one learned step per state, Λ from
 * the HiPPO-N matrix in `blocks` blocks. Bidirectional: a second scan in
 * reverse time over the same Λ̄, B̄, read by its own half of C̃.
 *
 * Computed as two GEMMs around a scan: [Re B̄u | Im B̄u] = u W_b^T with
 * W_b = [Re B̄; Im B̄] (2P, H); the chunked scan of ops/ssm_scan.c; s = x W_c^T
 * with W_c = c [Re C̃, -Im C̃] (H, 2P per direction). Backward (§1.11) is the
 * transposed GEMMs, the adjoint scan (the same scan in the other direction
 * with conj Λ̄) and the chain through the discretisation, in double.
 * Generation keeps the P states: O(P H) per token. */
#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/rng.h"
#include "../nn/module.h"
#include "hippo.h"
#include "s5.h"

typedef enum { S5_ACT_NONE, S5_ACT_GELU, S5_ACT_FULL_GLU, S5_ACT_HALF_GLU1, S5_ACT_HALF_GLU2 } S5Activation;
#define S5_ACTIVATIONS "none|gelu|full_glu|half_glu1|half_glu2" /* in S5Activation order */


typedef struct {
    Module base;
    int ssm_size, blocks;
    bool conj_sym, clip_eigs, bidirectional;
    char c_init[CFG_NAME], discretization[CFG_NAME], activation[CFG_NAME], gelu[CFG_NAME];
    double dt_min, dt_max, step_rescale;
    size_t H, P, P_full, n_block, kept; /* kept: eigenvalues kept per block */
    size_t S;                           /* state floats per row: 2P, bidirectional 4P */
    float out_scale;                    /* c */
    bool zoh;
    S5Activation act;
    Activation gelu_kind;
    double complex *lambda_blk, *V_blk; /* owned: HiPPO-N of one block */
    float *lre, *dlre, *lim, *dlim;     /* (P) Lambda_re, Lambda_im */
    float *bt, *dbt;                    /* (P, H, 2) B̃ */
    float *ct, *dct;                    /* (H, P or 2P, 2) C̃ */
    float *d, *dd;                      /* (H) */
    float *log_step, *dlog_step;        /* (P, 1) */
    float *w1, *dw1, *b1, *db1;         /* out1 (H, H), (H): full_glu */
    float *w2, *dw2, *b2, *db2;         /* out2: the GLU gate */
} S5;

static const ModuleKey s5_keys[] = {
    MODULE_KEY(S5, ssm_size, KEY_INT, "64", NULL, NULL, 1, 4096, "states before conj_sym halves them (P_full)"),
    MODULE_KEY(S5, blocks, KEY_INT, "1", NULL, NULL, 1, 4096, "HiPPO blocks J: Λ repeats the block of P_full/J"),
    MODULE_KEY(S5, conj_sym, KEY_BOOL, "true", NULL, NULL, 0, -1, "keep one of each conjugate pair, output x2"),
    MODULE_KEY(S5, c_init, KEY_CHOICE, "complex_normal", "complex_normal|lecun_normal|trunc_standard_normal", NULL, 0, -1,
               "initialisation of C"),
    MODULE_KEY(S5, dt_min, KEY_FLOAT, "0.001", NULL, NULL, 1e-12, 1e6, "smallest initial step"),
    MODULE_KEY(S5, dt_max, KEY_FLOAT, "0.1", NULL, NULL, 1e-12, 1e6, "largest initial step"),
    MODULE_KEY(S5, step_rescale, KEY_FLOAT, "1", NULL, NULL, 1e-12, 1e12, "multiplies every step"),
    MODULE_KEY(S5, clip_eigs, KEY_BOOL, "false", NULL, NULL, 0, -1, "clip Re Λ to at most -1e-4"),
    MODULE_KEY(S5, discretization, KEY_CHOICE, "zoh", "zoh|bilinear", NULL, 0, -1, "of Λ and B̃"),
    MODULE_KEY(S5, activation, KEY_CHOICE, "gelu", S5_ACTIVATIONS, NULL, 0, -1,
               "applied to the output (spec §1.9)"),
    MODULE_KEY(S5, gelu, KEY_CHOICE, "exact", "exact|tanh", NULL, 0, -1, "GELU form inside the activation"),
    MODULE_KEY(S5, bidirectional, KEY_BOOL, "false", NULL, NULL, 0, -1, "add a reverse-time scan (not causal)"),
    {0}};

/* Per use. */
typedef struct {
    const float *u; /* borrowed: input (B, T, H) */
    float *wb;      /* (2P, H) [Re B̄; Im B̄] */
    float *wc;      /* (H, S) c [Re C̃, -Im C̃] per direction */
    float *abar;    /* (2P) Λ̄: re, im */
    float *x;       /* (B, T, S) the states */
    float *s;       /* (B, T, H) the output before the activation */
    float *g;       /* (B, T, H) gelu(s) (GLU variants) */
    float *dgelu;   /* (B, T, H) gelu'(s) */
    float *sig;     /* (B, T, H) the GLU gate */
    float *o1;      /* (B, T, H) out1(g) (full_glu) */
} S5Frame;

static bool is_glu(const S5 *s) { return s->act >= S5_ACT_FULL_GLU; }

static int s5_configure(Module *m, const ModuleSpec *spec, Error *err) {
    S5 *s = (S5 *)m;
    if (m->C_in != m->C_out) return err_set(err, "%s: S5 keeps the width", m->path);
    if (s->ssm_size % s->blocks)
        return err_set(err, "%s: ssm_size %d is not a multiple of blocks %d", m->path, s->ssm_size, s->blocks);
    s->n_block = (size_t)(s->ssm_size / s->blocks);
    if (s->conj_sym && s->n_block % 2)
        return err_set(err, "%s: conj_sym needs an even block size (ssm_size / blocks = %zu)", m->path, s->n_block);
    if (s->dt_min > s->dt_max) return err_set(err, "%s: dt_min %g is above dt_max %g", m->path, s->dt_min, s->dt_max);
    if (s->bidirectional && spec->cfg->causal)
        return err_set(err, "%s: a bidirectional S5 reads the future; set causal: false or bidirectional: false",
                       m->path);
    s->H = m->C_in;
    s->P_full = (size_t)s->ssm_size;
    s->kept = s->conj_sym ? s->n_block / 2 : s->n_block;
    s->P = s->kept * (size_t)s->blocks;
    if (s->P > SSM_MAX_STATES) return err_set(err, "%s: %zu stored states, at most %d", m->path, s->P, SSM_MAX_STATES);
    s->S = (s->bidirectional ? 4 : 2) * s->P;
    s->out_scale = s->conj_sym ? 2.0f : 1.0f;
    s->zoh = strcmp(s->discretization, "zoh") == 0;
    s->act = (S5Activation)keys_choice_index(S5_ACTIVATIONS, s->activation);
    s->gelu_kind = strcmp(s->gelu, "tanh") == 0 ? ACT_GELU_TANH : ACT_GELU;
    s->lambda_blk = malloc(s->n_block * sizeof *s->lambda_blk);
    s->V_blk = malloc(s->n_block * s->n_block * sizeof *s->V_blk);
    if (!s->lambda_blk || !s->V_blk) return err_set(err, "%s: out of memory", m->path);
    return hippo_n(s->n_block, s->lambda_blk, s->V_blk, err);
}

static void s5_destroy(Module *m) {
    S5 *s = (S5 *)m;
    free(s->lambda_blk);
    free(s->V_blk);
}

static size_t c_columns(const S5 *s) { return (s->bidirectional ? 2 : 1) * s->P; }

static void s5_params(Module *m, ParamSet *ps) {
    S5 *s = (S5 *)m;
    params_add(ps, "Lambda_re", &s->lre, &s->dlre, GROUP_OTHER, 1, s->P);
    params_add(ps, "Lambda_im", &s->lim, &s->dlim, GROUP_OTHER, 1, s->P);
    params_add(ps, "B", &s->bt, &s->dbt, GROUP_OTHER, 3, s->P, s->H, (size_t)2);
    params_add(ps, "C", &s->ct, &s->dct, GROUP_OTHER, 3, s->H, c_columns(s), (size_t)2);
    params_add(ps, "D", &s->d, &s->dd, GROUP_OTHER, 1, s->H);
    params_add(ps, "log_step", &s->log_step, &s->dlog_step, GROUP_OTHER, 2, s->P, (size_t)1);
    if (s->act == S5_ACT_FULL_GLU) {
        params_add(ps, "out1.weight", &s->w1, &s->dw1, GROUP_LINEAR, 2, s->H, s->H);
        params_add(ps, "out1.bias", &s->b1, &s->db1, GROUP_BIAS, 1, s->H);
    }
    if (is_glu(s)) {
        params_add(ps, "out2.weight", &s->w2, &s->dw2, GROUP_LINEAR, 2, s->H, s->H);
        params_add(ps, "out2.bias", &s->b2, &s->db2, GROUP_BIAS, 1, s->H);
    }
}

/* ---- initialisation (spec §1.3, §1.4) ---- */

/* Row m of the kept eigenvectors' block-diagonal matrix V (P_full x P) maps
 * a P_full-vector to state j*kept + m as sum_i V_blk[i][m] v[j*n + i]. */
static double complex v_column_dot(const S5 *s, size_t state, const double complex *v, bool conjugate) {
    const size_t n = s->n_block, j = state / s->kept, m = state % s->kept;
    double complex acc = 0;
    for (size_t i = 0; i < n; i++) {
        const double complex e = s->V_blk[i * n + m];
        acc += (conjugate ? conj(e) : e) * v[j * n + i];
    }
    return acc;
}

/* B̃ = V^H B_real, B_real (P_full, H) lecun-normal with fan_in P_full (JAX's in_axis -2). */
static void init_b(S5 *s, uint64_t seed) {
    double complex *col = malloc(s->P_full * sizeof *col);
    float *raw = malloc(s->P_full * s->H * sizeof *raw);
    if (!col || !raw) abort(); /* a few KB at init: no recovery worth writing */
    module_init_lecun(&s->base, raw, s->P_full * s->H, (double)s->P_full, seed, 0);
    for (size_t h = 0; h < s->H; h++) {
        for (size_t i = 0; i < s->P_full; i++) col[i] = raw[i * s->H + h];
        for (size_t p = 0; p < s->P; p++) {
            const double complex b = v_column_dot(s, p, col, true);
            s->bt[(p * s->H + h) * 2] = (float)creal(b);
            s->bt[(p * s->H + h) * 2 + 1] = (float)cimag(b);
        }
    }
    free(col), free(raw);
}

/* C̃ columns [off, off + P) from stream `index`: complex_normal draws them
 * directly (E|C̃|^2 = 1); the lecun forms draw a complex (H, P_full) matrix
 * (re, im interleaved) and map it by V. */
static void init_c_block(S5 *s, uint64_t seed, int index, size_t off) {
    const size_t cols = c_columns(s), H = s->H, n = H * s->P_full * 2;
    float *raw = malloc((n > 2 * H * s->P ? n : 2 * H * s->P) * sizeof *raw);
    double complex *row = malloc(s->P_full * sizeof *row);
    if (!raw || !row) abort();
    if (!strcmp(s->c_init, "complex_normal")) {
        module_init_normal(&s->base, raw, 2 * H * s->P, (float)sqrt(0.5), seed, index);
        for (size_t h = 0; h < H; h++)
            for (size_t p = 0; p < s->P; p++)
                for (int k = 0; k < 2; k++) s->ct[(h * cols + off + p) * 2 + k] = raw[(h * s->P + p) * 2 + k];
    } else {
        /* lecun_normal: fan_in P_full * H (JAX on the 3-d shape (H, P_full, 2));
         * trunc_standard_normal: each row drawn alone, fan_in P_full */
        const double fan_in = !strcmp(s->c_init, "lecun_normal") ? (double)(s->P_full * H) : (double)s->P_full;
        module_init_lecun(&s->base, raw, n, fan_in, seed, index);
        for (size_t h = 0; h < H; h++) {
            for (size_t i = 0; i < s->P_full; i++) row[i] = raw[(h * s->P_full + i) * 2] + I * raw[(h * s->P_full + i) * 2 + 1];
            for (size_t p = 0; p < s->P; p++) {
                const double complex c = v_column_dot(s, p, row, false);
                s->ct[(h * cols + off + p) * 2] = (float)creal(c);
                s->ct[(h * cols + off + p) * 2 + 1] = (float)cimag(c);
            }
        }
    }
    free(raw), free(row);
}

static void s5_init(Module *m, uint64_t seed) {
    S5 *s = (S5 *)m;
    for (size_t p = 0; p < s->P; p++) { /* Λ: the kept eigenvalues of one block, repeated */
        const double complex l = s->lambda_blk[p % s->kept];
        s->lre[p] = (float)creal(l);
        s->lim[p] = (float)cimag(l);
    }
    init_b(s, seed);
    init_c_block(s, seed, 1, 0);
    if (s->bidirectional) init_c_block(s, seed, 2, s->P);
    module_init_normal(m, s->d, s->H, 1.0f, seed, 3);
    Rng r = rng_make(seed, rng_stream(RNG_INIT, m->scope, 4));
    const double lo = log(s->dt_min), hi = log(s->dt_max);
    for (size_t p = 0; p < s->P; p++) s->log_step[p] = (float)(lo + (hi - lo) * rng_uniform(&r));
    for (int k = 0; k < 2; k++) { /* flax Dense: lecun-normal kernel (fan_in H), zero bias */
        float *w = k ? s->w2 : s->w1, *b = k ? s->b2 : s->b1;
        if (!w) continue;
        module_init_lecun(m, w, s->H * s->H, (double)s->H, seed, 5 + k);
        memset(b, 0, s->H * sizeof *b);
    }
}

/* ---- discretisation (spec §1.6), in double: s5.h ---- */

S5Discrete s5_discretize(double lambda_re, double lambda_im, double log_step, double step_rescale, bool clip_eigs,
                         bool zoh) {
    S5Discrete d;
    const double re = clip_eigs && lambda_re > S5_CLIP_RE ? S5_CLIP_RE : lambda_re;
    d.lambda = re + I * lambda_im;
    d.delta = step_rescale * exp(log_step);
    if (zoh) {
        /* Λ̄ - 1 without cancellation for small steps: expm1 on the modulus, -2 sin^2 on the angle */
        const double a = re * d.delta, b = lambda_im * d.delta, h = sin(0.5 * b);
        const double complex am1 = expm1(a) * cos(b) - 2.0 * h * h + I * exp(a) * sin(b);
        d.abar = 1.0 + am1;
        d.f = am1 / d.lambda;
    } else {
        const double complex q = 1.0 / (1.0 - 0.5 * d.delta * d.lambda);
        d.abar = (1.0 + 0.5 * d.delta * d.lambda) * q;
        d.f = d.delta * q;
    }
    return d;
}

static S5Discrete discretize(const S5 *s, size_t p) {
    return s5_discretize(s->lre[p], s->lim[p], s->log_step[p], s->step_rescale, s->clip_eigs, s->zoh);
}

/* W_b, W_c and Λ̄ (re, im) from the parameters. */
static void fill_system(const S5 *s, float *wb, float *wc, float *abar) {
    const size_t H = s->H, P = s->P, cols = c_columns(s);
    for (size_t p = 0; p < P; p++) {
        const S5Discrete d = discretize(s, p);
        abar[p] = (float)creal(d.abar);
        abar[P + p] = (float)cimag(d.abar);
        for (size_t h = 0; h < H; h++) {
            const float *b = s->bt + (p * H + h) * 2;
            const double complex bb = d.f * (b[0] + I * b[1]);
            wb[p * H + h] = (float)creal(bb);
            wb[(P + p) * H + h] = (float)cimag(bb);
        }
    }
    for (size_t h = 0; h < H; h++)
        for (size_t j = 0; j < cols; j++) { /* column j: direction j / P, state j % P */
            const float *c = s->ct + (h * cols + j) * 2;
            const size_t at = h * s->S + (j / P) * 2 * P + j % P;
            wc[at] = s->out_scale * c[0];
            wc[at + P] = -s->out_scale * c[1];
        }
}

/* ---- the activation (spec §1.9) over n rows ---- */

typedef struct {
    float *g, *dgelu, *sig, *o1;
} ActBuffers;

static void sigmoid_rows(float *x, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) x[i] = 1.0f / (1.0f + expf(-x[i]));
}

static void activate(const S5 *s, const float *sv, const ActBuffers *a, size_t n, float *y) {
    const size_t H = s->H, e = n * H;
    if (s->act == S5_ACT_NONE) {
        memcpy(y, sv, e * sizeof *y);
        return;
    }
    float *g = s->act == S5_ACT_GELU ? y : a->g;
    activation_grad(g, a->dgelu, sv, e, s->gelu_kind);
    if (!is_glu(s)) return;
    linear_forward(a->sig, g, s->w2, s->b2, n, H, H);
    sigmoid_rows(a->sig, e);
    if (s->act == S5_ACT_FULL_GLU) linear_forward(a->o1, g, s->w1, s->b1, n, H, H);
    const float *value = s->act == S5_ACT_FULL_GLU ? a->o1 : s->act == S5_ACT_HALF_GLU1 ? g : sv;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < e; i++) y[i] = value[i] * a->sig[i];
}

/* ds (n, H) from dy through the activation; work: n*H floats for the GLU variants. */
static void activate_backward(S5 *s, const float *sv, const ActBuffers *a, const float *dy, size_t n, float *ds,
                              float *work) {
    const size_t H = s->H, e = n * H;
    if (s->act == S5_ACT_NONE) {
        memcpy(ds, dy, e * sizeof *ds);
        return;
    }
    if (!is_glu(s)) {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < e; i++) ds[i] = dy[i] * a->dgelu[i];
        return;
    }
    const float *value = s->act == S5_ACT_FULL_GLU ? a->o1 : s->act == S5_ACT_HALF_GLU1 ? a->g : sv;
    float *dz = work; /* the gate's pre-activation gradient, then out1's output gradient */
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < e; i++) dz[i] = dy[i] * value[i] * a->sig[i] * (1.0f - a->sig[i]);
    linear_backward(ds, s->dw2, s->db2, dz, a->g, s->w2, n, H, H, false); /* ds holds dg for now */
    if (s->act == S5_ACT_FULL_GLU) {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < e; i++) dz[i] = dy[i] * a->sig[i];
        linear_backward(ds, s->dw1, s->db1, dz, a->g, s->w1, n, H, H, true);
    }
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < e; i++) {
        float dg = ds[i];
        if (s->act == S5_ACT_HALF_GLU1) dg += dy[i] * a->sig[i];
        ds[i] = dg * a->dgelu[i];
        if (s->act == S5_ACT_HALF_GLU2) ds[i] += dy[i] * a->sig[i];
    }
}

/* ---- forward and backward ---- */

static void s5_layout(Module *m, Frame *f, size_t B, size_t T, Arena *ar) {
    S5 *s = (S5 *)m;
    S5Frame *sf = f->data;
    const size_t N = B * T, H = s->H, P = s->P;
    sf->wb = arena_take(ar, 2 * P * H);
    sf->wc = arena_take(ar, H * s->S);
    sf->abar = arena_take(ar, 2 * P);
    sf->x = arena_take(ar, N * s->S);
    sf->s = arena_take(ar, N * H);
    sf->g = is_glu(s) ? arena_take(ar, N * H) : NULL;
    sf->dgelu = s->act != S5_ACT_NONE ? arena_take(ar, N * H) : NULL;
    sf->sig = is_glu(s) ? arena_take(ar, N * H) : NULL;
    sf->o1 = s->act == S5_ACT_FULL_GLU ? arena_take(ar, N * H) : NULL;
}

/* Backward's buffers: ds, dx (N, S), dBu (N, 2P), the GLU work (N, H),
 * dW_c, dW_b, dΛ̄, conj Λ̄'s imaginary part, then the scan's. Forward needs less. */
static size_t s5_scratch(Module *m, size_t B, size_t T) {
    S5 *s = (S5 *)m;
    const size_t N = B * T, H = s->H, P = s->P;
    return 2 * N * H + N * s->S + 2 * N * P + H * s->S + 2 * P * H + 3 * P + ssm_scan_scratch(B, T, P);
}

static ActBuffers frame_acts(const S5Frame *sf) {
    return (ActBuffers){.g = sf->g, .dgelu = sf->dgelu, .sig = sf->sig, .o1 = sf->o1};
}

static void s5_forward(Module *m, Frame *f, const float *u, float *y, const Ctx *c) {
    S5 *s = (S5 *)m;
    S5Frame *sf = f->data;
    const size_t N = c->B * c->T, H = s->H, P = s->P, S = s->S;
    sf->u = u;
    fill_system(s, sf->wb, sf->wc, sf->abar);
    float *scan_work = c->scratch;
    if (s->bidirectional) { /* B̄u once, copied into both directions' halves */
        float *bu = c->scratch + ssm_scan_scratch(c->B, c->T, P);
        linear_forward(bu, u, sf->wb, NULL, N, H, 2 * P);
#pragma omp parallel for schedule(static)
        for (size_t n = 0; n < N; n++) {
            memcpy(sf->x + n * S, bu + n * 2 * P, 2 * P * sizeof(float));
            memcpy(sf->x + n * S + 2 * P, bu + n * 2 * P, 2 * P * sizeof(float));
        }
        ssm_scan(sf->x + 2 * P, S, sf->abar, sf->abar + P, c->B, c->T, P, true, scan_work);
    } else {
        linear_forward(sf->x, u, sf->wb, NULL, N, H, 2 * P);
    }
    ssm_scan(sf->x, S, sf->abar, sf->abar + P, c->B, c->T, P, false, scan_work);
    linear_forward(sf->s, sf->x, sf->wc, NULL, N, S, H);
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < N * H; i++) sf->s[i] += s->d[i % H] * u[i];
    const ActBuffers a = frame_acts(sf);
    activate(s, sf->s, &a, N, y);
}

/* The gradients of B̃, Λ, log_step from those of B̄ (dwb, as W_b) and Λ̄
 * (dabar: re, im), through the discretisation (spec §1.11 step 5, 6). */
static void discretization_backward(S5 *s, const float *dwb, const float *dabar) {
    const size_t H = s->H, P = s->P;
    for (size_t p = 0; p < P; p++) {
        const S5Discrete d = discretize(s, p);
        double complex g_f = 0;
        for (size_t h = 0; h < H; h++) {
            const double complex g_bbar = dwb[p * H + h] + I * dwb[(P + p) * H + h];
            const float *b = s->bt + (p * H + h) * 2;
            const double complex g_bt = conj(d.f) * g_bbar;
            s->dbt[(p * H + h) * 2] += (float)creal(g_bt);
            s->dbt[(p * H + h) * 2 + 1] += (float)cimag(g_bt);
            g_f += conj(b[0] + I * b[1]) * g_bbar;
        }
        const double complex g_abar = dabar[p] + I * dabar[P + p], L = d.lambda, A = d.abar;
        const double D = d.delta;
        double complex dabar_dl, dabar_dd, df_dl, df_dd;
        if (s->zoh) {
            dabar_dl = D * A;
            dabar_dd = L * A;
            df_dl = (D * A * L - (A - 1.0)) / (L * L);
            df_dd = A;
        } else {
            const double complex q = 1.0 / (1.0 - 0.5 * D * L);
            dabar_dl = D * q * q;
            dabar_dd = L * q * q;
            df_dl = 0.5 * D * D * q * q;
            df_dd = q * q;
        }
        const double complex g_l = conj(dabar_dl) * g_abar + conj(df_dl) * g_f;
        const double g_d = creal(conj(dabar_dd) * g_abar) + creal(conj(df_dd) * g_f);
        if (!s->clip_eigs || s->lre[p] < S5_CLIP_RE) s->dlre[p] += (float)creal(g_l);
        s->dlim[p] += (float)cimag(g_l);
        s->dlog_step[p] += (float)(D * g_d);
    }
}

static void s5_backward(Module *m, Frame *f, const float *dy, float *du, const Ctx *c) {
    S5 *s = (S5 *)m;
    S5Frame *sf = f->data;
    const size_t B = c->B, T = c->T, N = B * T, H = s->H, P = s->P, S = s->S;
    float *ds = c->scratch, *work = ds + N * H, *dx = work + N * H, *dbu = dx + N * S, *dwc = dbu + 2 * N * P;
    float *dwb = dwc + H * S, *dabar = dwb + 2 * P * H, *scan_work = dabar + 2 * P;
    const ActBuffers a = frame_acts(sf);
    activate_backward(s, sf->s, &a, dy, N, ds, work);
    column_sums(s->dd, sf->u, ds, N, H);
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < N * H; i++) du[i] = s->d[i % H] * ds[i];
    memset(dwc, 0, (H * S + 2 * P * H + 2 * P) * sizeof(float));
    linear_backward(dx, dwc, NULL, ds, sf->x, sf->wc, N, S, H, false);
    /* the adjoint scans: conj Λ̄, the other direction */
    float *conj_im = scan_work; /* -Im Λ̄, then the scan's own scratch */
    for (size_t p = 0; p < P; p++) conj_im[p] = -sf->abar[P + p];
    scan_work += P;
    ssm_scan(dx, S, sf->abar, conj_im, B, T, P, true, scan_work);
    ssm_scan_grad_a(dabar, sf->x, dx, S, B, T, P, false, scan_work);
    const float *gbu = dx;
    if (s->bidirectional) {
        ssm_scan(dx + 2 * P, S, sf->abar, conj_im, B, T, P, false, scan_work);
        ssm_scan_grad_a(dabar, sf->x + 2 * P, dx + 2 * P, S, B, T, P, true, scan_work);
#pragma omp parallel for schedule(static)
        for (size_t n = 0; n < N; n++)
            for (size_t k = 0; k < 2 * P; k++) dbu[n * 2 * P + k] = dx[n * S + k] + dx[n * S + 2 * P + k];
        gbu = dbu;
    }
    linear_backward(du, dwb, NULL, gbu, sf->u, sf->wb, N, H, 2 * P, true);
    /* C̃ from W_c, then B̃, Λ, log_step from W_b and Λ̄ */
    const size_t cols = c_columns(s);
    for (size_t h = 0; h < H; h++)
        for (size_t j = 0; j < cols; j++) {
            const size_t at = h * S + (j / P) * 2 * P + j % P;
            s->dct[(h * cols + j) * 2] += s->out_scale * dwc[at];
            s->dct[(h * cols + j) * 2 + 1] -= s->out_scale * dwc[at + P];
        }
    discretization_backward(s, dwb, dabar);
}

/* ---- generation ---- */

/* Per sequence: the P states, then the system discretised at t = 0 (W_b, W_c,
 * Λ̄): computed once per generation, not per token. */
static size_t s5_state_size(Module *m, size_t max_T) {
    (void)max_T;
    S5 *s = (S5 *)m;
    return s->bidirectional ? 0 : 2 * s->P + 2 * s->P * s->H + s->H * s->S + 2 * s->P;
}

/* Scratch: B̄u (2P), s (H), the activation's g, dgelu, sig, o1 (H each). */
static void s5_step(Module *m, Frame *f, float *state, size_t t, const float *u, float *y, const Ctx *c) {
    S5 *s = (S5 *)m;
    const size_t H = s->H, P = s->P;
    float *x = state, *wb = x + 2 * P, *wc = wb + 2 * P * H, *abar = wc + H * s->S;
    float *bu = c->scratch, *sv = bu + 2 * P;
    (void)f;
    if (t == 0) fill_system(s, wb, wc, abar);
    linear_forward(bu, u, wb, NULL, 1, H, 2 * P);
    for (size_t p = 0; p < P; p++) {
        const float re = abar[p] * x[p] - abar[P + p] * x[P + p] + bu[p];
        x[P + p] = abar[p] * x[P + p] + abar[P + p] * x[p] + bu[P + p];
        x[p] = re;
    }
    linear_forward(sv, x, wc, NULL, 1, 2 * P, H);
    for (size_t h = 0; h < H; h++) sv[h] += s->d[h] * u[h];
    const ActBuffers a = {.g = sv + H, .dgelu = sv + 2 * H, .sig = sv + 3 * H, .o1 = sv + 4 * H};
    activate(s, sv, &a, 1, y);
}

/* The scan: a complex multiply-add per state and token, twice (two passes). */
static double s5_flops(Module *m, size_t B, size_t T, bool causal) {
    (void)causal;
    const S5 *s = (const S5 *)m;
    return 16.0 * (double)B * (double)T * (double)s->P * (s->bidirectional ? 2 : 1);
}

const ModuleOps s5_module = {
    .name = "s5",
    .kind = "mixer",
    .size = sizeof(S5),
    .keys = s5_keys,
    .configure = s5_configure,
    .destroy = s5_destroy,
    .params = s5_params,
    .init = s5_init,
    .frame_bytes = sizeof(S5Frame),
    .layout = s5_layout,
    .scratch = s5_scratch,
    .forward = s5_forward,
    .backward = s5_backward,
    .state_size = s5_state_size,
    .step = s5_step,
    .flops = s5_flops,
};
