/* linear_attention.c — causal linear attention as the FMMformer trainer
 * computes it (attn_type 34 and the far field of attn_type 201); see ops.h
 * and shared/spec/attention.md §2.2 (its two-scan backward, here per chunk).
 * Original: minhtannguyen/fmmformer-code-submission@92bc369,
 * lmtool-fwms/src/utils/cuda_fast_weight_layer.py. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "ops.h"

int feature_map_parse(const char *name, FeatureMap *out) {
    if (strcmp(name, "elu") == 0) *out = FEATURE_ELU;
    else if (strcmp(name, "elu_flip") == 0) *out = FEATURE_ELU_FLIP;
    else return -1;
    return 0;
}

/* phi(x) = elu(x) + 1, or elu(-x) + 1 for elu_flip (the argument is negated). */
static inline float feature(FeatureMap f, float x) {
    if (f == FEATURE_ELU_FLIP) x = -x;
    return x > 0.0f ? x + 1.0f : expf(x);
}
static inline float feature_grad(FeatureMap f, float x) {
    float sign = f == FEATURE_ELU_FLIP ? -1.0f : 1.0f;
    float u = sign * x;
    return sign * (u > 0.0f ? 1.0f : expf(u));
}

static size_t nchunks(const LinearAttnShape *s) { return (s->io.T + s->chunk - 1) / s->chunk; }

/* saved: den (B, H, T), then per (b, h, chunk) the state S (d x d) and z (d). */
size_t linear_attention_saved(const LinearAttnShape *s) {
    const size_t d = s->io.d;
    return s->io.B * s->io.H * (s->io.T + nchunks(s) * (d * d + d));
}

typedef struct {
    float *a, *b;      /* L x d: normalised features of a chunk */
    float *A, *P;      /* L x L */
    float *G, *gd;     /* L x d, L: gradient w.r.t. num and den */
    float *da, *db, *dv; /* L x d */
    float *S, *z;      /* d x d, d: running state (forward) */
    float *R, *r;      /* d x d, d: reverse sums (backward) */
} Work;

static size_t work_floats(size_t L, size_t d) { return 2 * L * d + 2 * L * L + L * d + L + 3 * L * d + 2 * (d * d + d); }

size_t linear_attention_scratch(const LinearAttnShape *s) {
    return (size_t)omp_get_max_threads() * work_floats(s->chunk, s->io.d);
}

static Work work_for_thread(float *scratch, size_t L, size_t d) {
    float *p = scratch + (size_t)omp_get_thread_num() * work_floats(L, d);
    Work w;
    w.a = p, p += L * d;
    w.b = p, p += L * d;
    w.A = p, p += L * L;
    w.P = p, p += L * L;
    w.G = p, p += L * d;
    w.gd = p, p += L;
    w.da = p, p += L * d;
    w.db = p, p += L * d;
    w.dv = p, p += L * d;
    w.S = p, p += d * d;
    w.z = p, p += d;
    w.R = p, p += d * d;
    w.r = p;
    return w;
}

/* Normalised features of n rows (row stride ld) into out (n x d). */
static void normalised_features(float *out, const float *x, size_t ld, size_t n, size_t d, FeatureMap f) {
    for (size_t t = 0; t < n; t++) {
        float sum = 0.0f;
        for (size_t c = 0; c < d; c++) sum += out[t * d + c] = feature(f, x[t * ld + c]);
        for (size_t c = 0; c < d; c++) out[t * d + c] /= sum;
    }
}

/* A (n x n, ld L) = a b^T with the future (j > t) zeroed. */
static void causal_scores(float *A, const float *a, const float *b, size_t n, size_t L, size_t d) {
    for (size_t t = 0; t < n; t++)
        for (size_t j = 0; j < L; j++) {
            float acc = 0.0f;
            if (j <= t)
                for (size_t c = 0; c < d; c++) acc += a[t * d + c] * b[j * d + c];
            A[t * L + j] = acc;
        }
}

/* Row pointers of head h of batch row b at position t0. */
#define ROW(base, ld, hs, t) ((base) + (b * s->io.T + (t)) * (ld) + h * (hs))

static void forward_head(float *o, float *saved, const float *q, const float *k, const float *v, size_t b, size_t h,
                         const LinearAttnShape *s, Work *w) {
    const AttentionShape *io = &s->io;
    const size_t T = io->T, d = io->d, L = s->chunk, nc = nchunks(s);
    float *den = saved + (b * io->H + h) * T;
    float *states = saved + io->B * io->H * T + (b * io->H + h) * nc * (d * d + d);
    memset(w->S, 0, d * d * sizeof(float));
    memset(w->z, 0, d * sizeof(float));
    for (size_t c = 0; c < nc; c++) {
        const size_t t0 = c * L, n = T - t0 < L ? T - t0 : L;
        memcpy(states + c * (d * d + d), w->S, d * d * sizeof(float));
        memcpy(states + c * (d * d + d) + d * d, w->z, d * sizeof(float));
        normalised_features(w->a, ROW(q, io->ldq, io->hq, t0), io->ldq, n, d, s->phi);
        normalised_features(w->b, ROW(k, io->ldk, io->hk, t0), io->ldk, n, d, s->phi);
        causal_scores(w->A, w->a, w->b, n, L, d);
        for (size_t t = 0; t < n; t++) {
            const float *at = w->a + t * d;
            float num[256], dn = 0.0f; /* d <= 256 (checked by the mixers) */
            for (size_t e = 0; e < d; e++) num[e] = 0.0f;
            for (size_t j = 0; j <= t; j++) {
                const float *vj = ROW(v, io->ldv, io->hv, t0 + j);
                for (size_t e = 0; e < d; e++) num[e] += w->A[t * L + j] * vj[e];
                dn += w->A[t * L + j];
            }
            for (size_t cc = 0; cc < d; cc++) {
                for (size_t e = 0; e < d; e++) num[e] += at[cc] * w->S[cc * d + e];
                dn += at[cc] * w->z[cc];
            }
            den[t0 + t] = dn;
            float *ot = ROW(o, io->ldo, io->ho, t0 + t);
            for (size_t e = 0; e < d; e++) ot[e] = io->scale * num[e] / (dn + s->eps);
        }
        for (size_t j = 0; j < n; j++) { /* S += b^T v, z += sum b */
            const float *vj = ROW(v, io->ldv, io->hv, t0 + j), *bj = w->b + j * d;
            for (size_t cc = 0; cc < d; cc++) {
                for (size_t e = 0; e < d; e++) w->S[cc * d + e] += bj[cc] * vj[e];
                w->z[cc] += bj[cc];
            }
        }
    }
}

void linear_attention_forward(float *o, float *saved, const float *q, const float *k, const float *v,
                              const LinearAttnShape *s, float *scratch) {
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (size_t b = 0; b < s->io.B; b++)
        for (size_t h = 0; h < s->io.H; h++) {
            Work w = work_for_thread(scratch, s->chunk, s->io.d);
            forward_head(o, saved, q, k, v, b, h, s, &w);
        }
}

/* From d(normalised feature) of n rows to d(input) rows (stride ld),
 * written or added. */
static void features_backward(float *dx, size_t ld, const float *dxhat, const float *xhat, const float *x, size_t xld,
                              size_t n, size_t d, FeatureMap f, bool accumulate) {
    for (size_t t = 0; t < n; t++) {
        float sum = 0.0f, dot = 0.0f;
        for (size_t c = 0; c < d; c++) {
            sum += feature(f, x[t * xld + c]);
            dot += dxhat[t * d + c] * xhat[t * d + c];
        }
        for (size_t c = 0; c < d; c++) {
            float g = (dxhat[t * d + c] - dot) / sum * feature_grad(f, x[t * xld + c]);
            dx[t * ld + c] = accumulate ? dx[t * ld + c] + g : g;
        }
    }
}

/* Gradients w.r.t. num (G) and den (gd) of the chunk's n rows. */
static void output_grads(Work *w, const float *do_, float weight, const float *o, const float *den, size_t n,
                         const LinearAttnShape *s, size_t b, size_t h, size_t t0) {
    const AttentionShape *io = &s->io;
    const size_t d = io->d;
    for (size_t t = 0; t < n; t++) {
        const float *dot_ = ROW(do_, io->ldo, io->ho, t0 + t), *ot = ROW(o, io->ldo, io->ho, t0 + t);
        float inv = weight / (den[t0 + t] + s->eps), dd = 0.0f;
        for (size_t e = 0; e < d; e++) {
            w->G[t * d + e] = io->scale * dot_[e] * inv;
            dd += dot_[e] * ot[e];
        }
        w->gd[t] = -dd * inv;
    }
}

/* Intra-chunk and carried-state gradients of one chunk (see the file comment
 * in ops.h for the recurrences; R, r hold the sums over later chunks). */
static void chunk_grads(Work *w, const float *v, const float *S, const float *z, size_t n, const LinearAttnShape *s,
                        size_t b, size_t h, size_t t0) {
    const AttentionShape *io = &s->io;
    const size_t d = io->d, L = s->chunk;
    for (size_t t = 0; t < n; t++) /* P[t][j] = G_t . v_j + gd_t for j <= t */
        for (size_t j = 0; j < L; j++) {
            float acc = 0.0f;
            if (j <= t) {
                const float *vj = ROW(v, io->ldv, io->hv, t0 + j);
                for (size_t e = 0; e < d; e++) acc += w->G[t * d + e] * vj[e];
                acc += w->gd[t];
            }
            w->P[t * L + j] = acc;
        }
    for (size_t t = 0; t < n; t++) /* da = P b + G S^T + gd z^T */
        for (size_t c = 0; c < d; c++) {
            float acc = w->gd[t] * z[c];
            for (size_t j = 0; j <= t; j++) acc += w->P[t * L + j] * w->b[j * d + c];
            for (size_t e = 0; e < d; e++) acc += w->G[t * d + e] * S[c * d + e];
            w->da[t * d + c] = acc;
        }
    for (size_t j = 0; j < n; j++) { /* db = P^T a + v R^T + r ;  dv = A^T G + b R */
        const float *vj = ROW(v, io->ldv, io->hv, t0 + j);
        for (size_t c = 0; c < d; c++) {
            float acc = w->r[c];
            for (size_t t = j; t < n; t++) acc += w->P[t * L + j] * w->a[t * d + c];
            for (size_t e = 0; e < d; e++) acc += vj[e] * w->R[c * d + e];
            w->db[j * d + c] = acc;
        }
        for (size_t e = 0; e < d; e++) {
            float acc = 0.0f;
            for (size_t t = j; t < n; t++) acc += w->A[t * L + j] * w->G[t * d + e];
            for (size_t c = 0; c < d; c++) acc += w->b[j * d + c] * w->R[c * d + e];
            w->dv[j * d + e] = acc;
        }
    }
    for (size_t t = 0; t < n; t++) /* R += a^T G ; r += a^T gd, for earlier chunks */
        for (size_t c = 0; c < d; c++) {
            for (size_t e = 0; e < d; e++) w->R[c * d + e] += w->a[t * d + c] * w->G[t * d + e];
            w->r[c] += w->a[t * d + c] * w->gd[t];
        }
}

static void backward_head(float *dq, float *dk, float *dv, const float *do_, float weight, bool accumulate,
                          const float *q, const float *k, const float *v, const float *o, const float *saved, size_t b,
                          size_t h, const LinearAttnShape *s, Work *w) {
    const AttentionShape *io = &s->io;
    const size_t T = io->T, d = io->d, L = s->chunk, nc = nchunks(s);
    const float *den = saved + (b * io->H + h) * T;
    const float *states = saved + io->B * io->H * T + (b * io->H + h) * nc * (d * d + d);
    memset(w->R, 0, (d * d + d) * sizeof(float)); /* R and r are adjacent */
    for (size_t c = nc; c-- > 0;) {
        const size_t t0 = c * L, n = T - t0 < L ? T - t0 : L;
        const float *qc = ROW(q, io->ldq, io->hq, t0), *kc = ROW(k, io->ldk, io->hk, t0);
        normalised_features(w->a, qc, io->ldq, n, d, s->phi);
        normalised_features(w->b, kc, io->ldk, n, d, s->phi);
        causal_scores(w->A, w->a, w->b, n, L, d);
        output_grads(w, do_, weight, o, den, n, s, b, h, t0);
        chunk_grads(w, v, states + c * (d * d + d), states + c * (d * d + d) + d * d, n, s, b, h, t0);
        features_backward(ROW(dq, io->ldq, io->hq, t0), io->ldq, w->da, w->a, qc, io->ldq, n, d, s->phi, accumulate);
        features_backward(ROW(dk, io->ldk, io->hk, t0), io->ldk, w->db, w->b, kc, io->ldk, n, d, s->phi, accumulate);
        for (size_t j = 0; j < n; j++) {
            float *dvj = ROW(dv, io->ldv, io->hv, t0 + j);
            for (size_t e = 0; e < d; e++) dvj[e] = accumulate ? dvj[e] + w->dv[j * d + e] : w->dv[j * d + e];
        }
    }
}

void linear_attention_backward(float *dq, float *dk, float *dv, const float *do_, float weight, bool accumulate,
                               const float *q, const float *k, const float *v, const float *o, const float *saved,
                               const LinearAttnShape *s, float *scratch) {
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (size_t b = 0; b < s->io.B; b++)
        for (size_t h = 0; h < s->io.H; h++) {
            Work w = work_for_thread(scratch, s->chunk, s->io.d);
            backward_head(dq, dk, dv, do_, weight, accumulate, q, k, v, o, saved, b, h, s, &w);
        }
}

size_t linear_attention_state(const LinearAttnShape *s) { return s->io.H * (s->io.d * s->io.d + s->io.d); }

void linear_attention_step(float *o, float *state, const float *q, const float *k, const float *v,
                           const LinearAttnShape *s) {
    const size_t d = s->io.d;
    float a[256], bb[256];
    for (size_t h = 0; h < s->io.H; h++) {
        float *S = state + h * (d * d + d), *z = S + d * d;
        normalised_features(a, q + h * s->io.hq, 0, 1, d, s->phi);
        normalised_features(bb, k + h * s->io.hk, 0, 1, d, s->phi);
        const float *vh = v + h * s->io.hv;
        for (size_t c = 0; c < d; c++) {
            for (size_t e = 0; e < d; e++) S[c * d + e] += bb[c] * vh[e];
            z[c] += bb[c];
        }
        float dn = 0.0f;
        for (size_t c = 0; c < d; c++) dn += a[c] * z[c];
        for (size_t e = 0; e < d; e++) {
            float num = 0.0f;
            for (size_t c = 0; c < d; c++) num += a[c] * S[c * d + e];
            o[h * s->io.ho + e] = s->io.scale * num / (dn + s->eps);
        }
    }
}
