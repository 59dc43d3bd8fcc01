/* ema.c — MEGA's multi-dimensional damped exponential moving average (the
 * `ema` mixer; MEGA's and SeqBoat's child `move`), spec mega-seqboat.md §2:
 *   y = silu(conv(x', k) + omega ⊙ x),   x' = x with padded positions zeroed
 * with k the damped-EMA kernel of ops/ema.c (one per channel; bidirectional
 * models, `causal: false`, add a second kernel run backward in time, both
 * counting the present token). The residual term uses the unmasked x (§7.2).
 * The convolution is fftconv.c's (FFTW above its measured crossover), the
 * backward-time one on the time-reversed sequence.
 *
 * Generation runs the recurrence of §2.5 with an N-dimensional state per
 * channel. It has infinite memory, so it equals the parallel form only while
 * t < truncation (or without truncation), as in the original. */
#include <math.h>
#include <string.h>

#include "../nn/module.h"

typedef struct {
    Module base;
    int n_dim, truncation;
    char init[CFG_NAME]; /* normal (MEGA) | trunc_normal (SeqBoat, §1.4) */
    size_t N, K;         /* expansion; kernels: C, or 2C bidirectional */
    bool bidir;
    float *delta, *ddelta; /* (K, N) */
    float *alpha, *dalpha; /* (K, N) */
    float *beta, *dbeta;   /* (K, N) */
    float *gamma, *dgamma; /* (K, N) */
    float *omega, *domega; /* (C) */
} Ema;

static const ModuleKey ema_keys[] = {
    MODULE_KEY(Ema, n_dim, KEY_INT, "16", NULL, NULL, 1, 256, "EMA expansion dimension N per channel"),
    MODULE_KEY(Ema, truncation, KEY_INT, "0", NULL, NULL, 0, 1e9,
               "kernel length (truncation_length); 0 = the whole sequence"),
    MODULE_KEY(Ema, init, KEY_CHOICE, "normal", "normal|trunc_normal", NULL, 0, -1,
               "parameter draws: normal (MEGA) or normal truncated at 2 std (SeqBoat)"),
    {0}};

/* Per use. */
typedef struct {
    const float *x; /* borrowed: input (B, T, C) */
    float *xm;      /* (B, T, C): x with padded positions zeroed (the convolution's input) */
    float *pre;     /* (B, T, C): conv + omega x, before silu */
    float *k;       /* K / C blocks of (T, C): the kernel */
    float *spectra; /* per block fftconv_spectra_floats(T, C) */
    size_t T;
} EmaFrame;

static size_t blocks(const Ema *e) { return e->bidir ? 2 : 1; }

static size_t kernel_length(const Ema *e, size_t T) {
    return e->truncation > 0 && (size_t)e->truncation < T ? (size_t)e->truncation : T;
}

static int ema_configure(Module *m, const ModuleSpec *spec, Error *err) {
    Ema *e = (Ema *)m;
    (void)err;
    e->bidir = !spec->cfg->causal;
    e->N = (size_t)e->n_dim;
    e->K = blocks(e) * m->C_in;
    return 0;
}

static void ema_params(Module *m, ParamSet *ps) {
    Ema *e = (Ema *)m;
    params_add(ps, "delta", &e->delta, &e->ddelta, GROUP_OTHER, 2, e->K, e->N);
    params_add(ps, "alpha", &e->alpha, &e->dalpha, GROUP_OTHER, 2, e->K, e->N);
    params_add(ps, "beta", &e->beta, &e->dbeta, GROUP_OTHER, 2, e->K, e->N);
    params_add(ps, "gamma", &e->gamma, &e->dgamma, GROUP_OTHER, 2, e->K, e->N);
    params_add(ps, "omega", &e->omega, &e->domega, GROUP_OTHER, 1, m->C_in);
}

/* §2.1: delta, alpha ~ N(0, 0.2); beta ~ N(0, 0.02) + (1, -1, 1, ...) along
 * N; gamma, omega ~ N(0, 1); SeqBoat draws each from the truncated normal. */
static void ema_init(Module *m, uint64_t seed) {
    Ema *e = (Ema *)m;
    const bool trunc = !strcmp(e->init, "trunc_normal");
    float *const w[] = {e->delta, e->alpha, e->beta, e->gamma, e->omega};
    const float std[] = {0.2f, 0.2f, 0.02f, 1.0f, 1.0f};
    const size_t n[] = {e->K * e->N, e->K * e->N, e->K * e->N, e->K * e->N, m->C_in};
    for (int i = 0; i < 5; i++) {
        if (trunc) init_trunc_normal(w[i], n[i], std[i], seed, m->scope, i);
        else module_init_normal(m, w[i], n[i], std[i], seed, i);
    }
    for (size_t i = 0; i < e->K * e->N; i++) e->beta[i] += i % e->N % 2 ? -1.0f : 1.0f;
}

static void ema_layout(Module *m, Frame *f, size_t B, size_t T, Arena *a) {
    Ema *e = (Ema *)m;
    EmaFrame *ef = f->data;
    const size_t C = m->C_in;
    ef->T = T;
    ef->xm = arena_take(a, B * T * C);
    ef->pre = arena_take(a, B * T * C);
    ef->k = arena_take(a, blocks(e) * T * C);
    ef->spectra = arena_take(a, blocks(e) * fftconv_spectra_floats(T, C));
}

/* Floats rounded to whole cache lines, so every scratch buffer stays 64-byte aligned. */
static size_t lines(size_t n) { return (n + 15) / 16 * 16; }

/* Forward: the reversed input and output of the backward-time convolution,
 * then the FFT's scratch. Backward: the pre-activation gradient, dx', the
 * kernel gradient, three reversed buffers, the FFT's. */
static size_t ema_scratch(Module *m, size_t B, size_t T) {
    Ema *e = (Ema *)m;
    const size_t BTC = lines(B * T * m->C_in);
    const size_t backward = 2 * BTC + lines(blocks(e) * T * m->C_in) + 3 * BTC;
    return backward + fftconv_scratch(T, m->C_in);
}

/* dst (B, T, C) = src with each sequence's rows in reverse order. */
static void reverse_time(float *dst, const float *src, size_t B, size_t T, size_t C) {
#pragma omp parallel for collapse(2) schedule(static)
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) memcpy(dst + (b * T + T - 1 - t) * C, src + (b * T + t) * C, C * sizeof(float));
}

static float *spectra_of(const EmaFrame *ef, size_t blk, size_t C) {
    return ef->spectra + blk * fftconv_spectra_floats(ef->T, C);
}

static void ema_forward(Module *m, Frame *f, const float *x, float *y, const Ctx *c) {
    Ema *e = (Ema *)m;
    EmaFrame *ef = f->data;
    const size_t B = c->B, T = c->T, C = m->C_in, N = B * T * C;
    ef->x = x;
    ema_kernel(ef->k, e->delta, e->alpha, e->beta, e->gamma, e->K, C, e->N, kernel_length(e, T), T);
    for (size_t blk = 0; blk < blocks(e); blk++) fftconv_filter(spectra_of(ef, blk, C), ef->k + blk * T * C, T, C);
    memcpy(ef->xm, x, N * sizeof(float));
    if (c->mask)
#pragma omp parallel for schedule(static)
        for (size_t r = 0; r < B * T; r++)
            if (c->mask[r] == 0.0f) memset(ef->xm + r * C, 0, C * sizeof(float));
    float *fft = c->scratch + 5 * lines(N) + lines(blocks(e) * T * C);
    fftconv_forward(ef->pre, ef->xm, ef->k, spectra_of(ef, 0, C), NULL, B, T, C, fft);
    if (e->bidir) {
        float *rx = c->scratch, *ry = rx + lines(N);
        reverse_time(rx, ef->xm, B, T, C);
        fftconv_forward(ry, rx, ef->k + T * C, spectra_of(ef, 1, C), NULL, B, T, C, fft);
        reverse_time(rx, ry, B, T, C);
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < N; i++) ef->pre[i] += rx[i];
    }
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < B * T; r++)
        for (size_t d = 0; d < C; d++) ef->pre[r * C + d] += e->omega[d] * x[r * C + d];
    activation_forward(y, ef->pre, N, ACT_SILU);
}

static void ema_backward(Module *m, Frame *f, const float *dy, float *dx, const Ctx *c) {
    Ema *e = (Ema *)m;
    EmaFrame *ef = f->data;
    const size_t B = c->B, T = c->T, C = m->C_in, N = B * T * C;
    float *g = c->scratch, *dxm = g + lines(N), *dk = dxm + lines(N), *r1 = dk + lines(blocks(e) * T * C);
    float *r2 = r1 + lines(N), *r3 = r2 + lines(N), *fft = r3 + lines(N);
    activation_grad(r1, g, ef->pre, N, ACT_SILU); /* g = silu'(pre); r1 only receives silu(pre) */
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < N; i++) g[i] *= dy[i];
    column_sums(e->domega, g, ef->x, B * T, C);
    memset(dk, 0, blocks(e) * T * C * sizeof(float));
    fftconv_backward(dxm, dk, NULL, g, ef->xm, ef->k, spectra_of(ef, 0, C), NULL, B, T, C, fft);
    if (e->bidir) {
        reverse_time(r1, g, B, T, C);
        reverse_time(r2, ef->xm, B, T, C);
        fftconv_backward(r3, dk + T * C, NULL, r1, r2, ef->k + T * C, spectra_of(ef, 1, C), NULL, B, T, C, fft);
        reverse_time(r1, r3, B, T, C);
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < N; i++) dxm[i] += r1[i];
    }
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < B * T; r++) {
        const float keep = c->mask ? c->mask[r] : 1.0f;
        for (size_t d = 0; d < C; d++) dx[r * C + d] = g[r * C + d] * e->omega[d] + keep * dxm[r * C + d];
    }
    ema_kernel_backward(e->ddelta, e->dalpha, e->dbeta, e->dgamma, dk, e->delta, e->alpha, e->beta, e->gamma, e->K, C,
                        e->N, kernel_length(e, T), T);
}

/* Generation (causal only): the state is h (C, N), then the recurrence's
 * constants pb, q, g (C, N each), made at a generation's first token (the
 * parameters do not change during one) and read at every later one. */
static size_t ema_state_size(Module *m, size_t max_T) {
    (void)max_T;
    Ema *e = (Ema *)m;
    return e->bidir ? 0 : 4 * e->K * e->N;
}

static void ema_step(Module *m, Frame *f, float *state, size_t t, const float *x, float *y, const Ctx *c) {
    Ema *e = (Ema *)m;
    (void)f, (void)c;
    const size_t C = m->C_in, N = e->N;
    float *pb = state + C * N, *q = pb + C * N, *g = q + C * N;
    if (t == 0) ema_coefficients(pb, q, g, e->delta, e->alpha, e->beta, e->gamma, C, N);
    for (size_t d = 0; d < C; d++) {
        float s = 0.0f;
        for (size_t n = 0; n < N; n++) {
            float *h = state + d * N + n;
            *h = pb[d * N + n] * x[d] + q[d * N + n] * *h;
            s += g[d * N + n] * *h;
        }
        y[d] = s + e->omega[d] * x[d];
    }
    activation_forward(y, y, C, ACT_SILU);
}

/* The two FFT convolutions per channel: about 3 transforms of 2T points each. */
static double ema_flops(Module *m, size_t B, size_t T, bool causal) {
    (void)causal;
    Ema *e = (Ema *)m;
    const double L = 2.0 * (double)T;
    return (double)blocks(e) * (double)B * (double)m->C_in * 3.0 * 2.5 * L * log2(L);
}

const ModuleOps ema_module = {
    .name = "ema",
    .kind = "mixer",
    .size = sizeof(Ema),
    .keys = ema_keys,
    .configure = ema_configure,
    .params = ema_params,
    .init = ema_init,
    .frame_bytes = sizeof(EmaFrame),
    .layout = ema_layout,
    .scratch = ema_scratch,
    .forward = ema_forward,
    .backward = ema_backward,
    .state_size = ema_state_size,
    .step = ema_step,
    .flops = ema_flops,
};
