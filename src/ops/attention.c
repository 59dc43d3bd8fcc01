/* attention.c — softmax attention core, tiled with an online softmax
 * (FlashAttention, Dao et al. 2022; Milakov & Gimelshein 2018 for the online
 * normaliser). Spec: shared/spec/attention.md §1.
 *
 * Forward visits key tiles of Bc keys for each tile of Br queries and keeps,
 * per query row, the running maximum m, the running normaliser l and the
 * unnormalised output; memory is O(T d) per head instead of O(T^2). It saves
 * only the row log-sum-exp lse = m + log l. Backward regenerates each tile of
 * probabilities P = exp(S - lse) and forms
 *     dV += P~^T dO,  dP = dO V^T (masked like P~),  dS = P (dP - D),
 *     dQ += s dS K,   dK += s dS^T Q,   with D_i = dO_i . O_i,
 * which holds with attention dropout too (D_i = sum_j P_ij dP~_ij).
 * Attention dropout masks are keyed by (b, h, i, j) so backward regenerates
 * exactly the forward's mask, independent of tiling and threads.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "../core/gemm.h"
#include "../core/threads.h"
#include "../core/rng.h"
#include "fastmath.h"
#include "ops.h"

enum { BR = 64, BC = 64 }; /* query and key tile sizes */

/* Per-thread scratch layout (floats). */
typedef struct {
    float *S;    /* BR x BC: scores, then probabilities P */
    float *Pd;   /* BR x BC: P with attention dropout applied (backward) */
    float *dP;   /* BR x BC: dP, then dS */
    float *acc;  /* BR x d: unnormalised output (forward) */
    float *m, *l;/* BR: running max and normaliser (forward) */
    float *dK, *dV; /* BC x d: gradients of one key tile (backward) */
    float *D;    /* T: D_i = dO_i . O_i of one (b, h) (backward) */
} Tiles;

static size_t tiles_floats(size_t T, size_t d) {
    return 3 * BR * BC + BR * d + 2 * BR + 2 * BC * d + T;
}

static Tiles tiles_for_thread(float *scratch, size_t T, size_t d) {
    float *p = scratch + (size_t)omp_get_thread_num() * tiles_floats(T, d);
    Tiles t;
    t.S = p;
    t.Pd = t.S + BR * BC;
    t.dP = t.Pd + BR * BC;
    t.acc = t.dP + BR * BC;
    t.m = t.acc + BR * d;
    t.l = t.m + BR;
    t.dK = t.l + BR;
    t.dV = t.dK + BC * d;
    t.D = t.dV + BC * d;
    return t;
}

/* Floats of the partial sums of the bias gradient, one row per (batch row,
 * head), summed in that order afterwards: no dependence on threads. */
static size_t dbias_floats(const AttentionShape *s) {
    return s->dbias ? s->B * s->H * (2 * s->T - 1) : 0;
}

size_t attention_scratch(const AttentionShape *s) {
    return (size_t)omp_get_max_threads() * tiles_floats(s->T, s->d) + dbias_floats(s);
}

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

/* Whether query i may attend to key j. */
static inline bool visible(const AttentionShape *s, size_t i, size_t j) {
    if (s->causal && j > i) return false;
    if (!s->window) return true;
    return i >= j ? i - j < s->window : j - i < s->window;
}

/* Keys [*lo, *hi) that some query of [i0, i0 + rq) sees. */
static void key_range(const AttentionShape *s, size_t i0, size_t rq, size_t *lo, size_t *hi) {
    size_t w = s->window;
    *lo = w && i0 + 1 > w ? i0 + 1 - w : 0;
    *hi = s->causal ? i0 + rq : w ? min_sz(s->T, i0 + rq - 1 + w) : s->T;
}

/* Queries [*lo, *hi) that see some key of [j0, j0 + rc). */
static void query_range(const AttentionShape *s, size_t j0, size_t rc, size_t *lo, size_t *hi) {
    size_t w = s->window;
    *lo = s->causal ? j0 : w && j0 + 1 > w ? j0 + 1 - w : 0;
    *hi = w ? min_sz(s->T, j0 + rc - 1 + w) : s->T;
}

/* The relative position bias row of head h (2T - 1 values, index j - i + T - 1). */
static const float *bias_row(const AttentionShape *s, size_t h) {
    return s->bias + (s->bias_heads > 1 ? h : 0) * (2 * s->T - 1);
}

/* S (rq x rc, ld BC) = scale * Q_i K_j^T (+ the bias) with invisible and
 * padding keys set to -inf. */
static void scores_tile(float *S, const float *qi, const float *kj, size_t rq, size_t rc, size_t b, size_t h,
                        size_t i0, size_t j0, const AttentionShape *s) {
    gemm(false, true, rq, rc, s->d, s->scale, qi, s->ldq, kj, s->ldk, 0.0f, S, BC);
    if (s->bias) {
        const float *row = bias_row(s, h) + s->T - 1;
        for (size_t r = 0; r < rq; r++)
            for (size_t c = 0; c < rc; c++) S[r * BC + c] += row[(ptrdiff_t)(j0 + c) - (ptrdiff_t)(i0 + r)];
    }
    if (s->key_mask)
        for (size_t c = 0; c < rc; c++)
            if (s->key_mask[b * s->T + j0 + c] == 0.0f)
                for (size_t r = 0; r < rq; r++) S[r * BC + c] = -INFINITY;
    bool all_visible = visible(s, i0, j0 + rc - 1) && visible(s, i0 + rq - 1, j0); /* the tile's far corners */
    if (all_visible) return;
    for (size_t r = 0; r < rq; r++)
        for (size_t c = 0; c < rc; c++)
            if (!visible(s, i0 + r, j0 + c)) S[r * BC + c] = -INFINITY;
}

/* Multiplies a probability tile by the dropout mask and 1/(1-p). */
static void dropout_tile(float *P, size_t rq, size_t rc, size_t b, size_t h, size_t i0, size_t j0,
                         const AttentionShape *s) {
    if (s->dropatt <= 0.0f) return;
    const uint32_t threshold = rng_drop_threshold(s->dropatt);
    const float keep_scale = 1.0f / (1.0f - s->dropatt);
    for (size_t r = 0; r < rq; r++) {
        /* the words of rng_bits(seed, stream, index), four per Philox block: one block serves four keys */
        uint64_t index = (((s->row0 + b) * s->H + h) * s->T + i0 + r) * s->T + j0;
        uint32_t w[4];
        philox4x32(s->seed, s->stream, index >> 2, w);
        for (size_t c = 0; c < rc; c++, index++) {
            if (c > 0 && (index & 3) == 0) philox4x32(s->seed, s->stream, index >> 2, w);
            P[r * BC + c] *= w[index & 3] >= threshold ? keep_scale : 0.0f;
        }
    }
}

/* Folds one tile of scores into the running max, normaliser and output. A
 * row that has seen no visible key yet (max still -inf) stays empty. */
static void online_softmax_update(Tiles *w, size_t rq, size_t rc, size_t d) {
    for (size_t r = 0; r < rq; r++) {
        float *S = w->S + r * BC;
        float mx = w->m[r];
#pragma omp simd reduction(max : mx)
        for (size_t c = 0; c < rc; c++) mx = S[c] > mx ? S[c] : mx;
        if (mx == -INFINITY) {
            for (size_t c = 0; c < rc; c++) S[c] = 0.0f;
            continue;
        }
        float correction = fast_expf(w->m[r] - mx); /* rescales what was summed under the old max */
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (size_t c = 0; c < rc; c++) {
            S[c] = fast_expf(S[c] - mx);
            sum += S[c];
        }
        w->l[r] = w->l[r] * correction + sum;
        w->m[r] = mx;
        float *acc = w->acc + r * d;
#pragma omp simd
        for (size_t c = 0; c < d; c++) acc[c] *= correction;
    }
}

static void forward_query_tile(float *o, float *lse, const float *q, const float *k, const float *v, size_t b,
                               size_t h, size_t i0, const AttentionShape *s, Tiles *w) {
    const size_t T = s->T, d = s->d, rq = min_sz(BR, T - i0);
    const float *qi = q + (b * T + i0) * s->ldq + h * s->hq;
    for (size_t r = 0; r < rq; r++) {
        w->m[r] = -INFINITY;
        w->l[r] = 0.0f;
    }
    memset(w->acc, 0, rq * d * sizeof(float));
    size_t klo, khi;
    key_range(s, i0, rq, &klo, &khi);
    for (size_t j0 = klo; j0 < khi; j0 += BC) {
        size_t rc = min_sz(BC, khi - j0);
        scores_tile(w->S, qi, k + (b * T + j0) * s->ldk + h * s->hk, rq, rc, b, h, i0, j0, s);
        online_softmax_update(w, rq, rc, d);
        dropout_tile(w->S, rq, rc, b, h, i0, j0, s); /* after l: the normaliser sums undropped P */
        gemm(false, false, rq, d, rc, 1.0f, w->S, BC, v + (b * T + j0) * s->ldv + h * s->hv, s->ldv, 1.0f, w->acc,
             d);
    }
    for (size_t r = 0; r < rq; r++) {
        /* a query that sees no key (a padding position whose band holds only padding) outputs 0, and its
           lse of +inf makes backward's probabilities 0 */
        const bool empty = w->l[r] == 0.0f;
        float *orow = o + (b * T + i0 + r) * s->ldo + h * s->ho;
        float inv = empty ? 0.0f : 1.0f / w->l[r];
        for (size_t c = 0; c < d; c++) orow[c] = w->acc[r * d + c] * inv;
        lse[(b * s->H + h) * T + i0 + r] = empty ? INFINITY : w->m[r] + logf(w->l[r]);
    }
}

void attention_forward(float *o, float *lse, const float *q, const float *k, const float *v,
                       const AttentionShape *s, float *scratch) {
    const size_t tiles = (s->T + BR - 1) / BR;
#pragma omp parallel for collapse(3) schedule(dynamic)
    for (size_t b = 0; b < s->B; b++)
        for (size_t h = 0; h < s->H; h++)
            for (size_t it = 0; it < tiles; it++) {
                Tiles w = tiles_for_thread(scratch, s->T, s->d);
                forward_query_tile(o, lse, q, k, v, b, h, it * BR, s, &w);
            }
}

/* One (query tile [i0, i0+rq), key tile [j0, j0+rc)) pair of the backward
 * pass: adds to dQ of the query rows and to the key tile's dK, dV in w. */
static void backward_tile_pair(float *dq, float *dbias, const float *do_, const float *q, const float *k,
                               const float *v, const float *lse, size_t b, size_t h, size_t i0, size_t rq, size_t j0,
                               size_t rc, const AttentionShape *s, Tiles *w) {
    const size_t T = s->T, d = s->d;
    const float *qi = q + (b * T + i0) * s->ldq + h * s->hq;
    const float *kj = k + (b * T + j0) * s->ldk + h * s->hk;
    const float *vj = v + (b * T + j0) * s->ldv + h * s->hv;
    const float *doi = do_ + (b * T + i0) * s->ldo + h * s->ho;
    const float *lsei = lse + (b * s->H + h) * T + i0;
    float *dqi = dq + (b * T + i0) * s->ldq + h * s->hq;

    scores_tile(w->S, qi, kj, rq, rc, b, h, i0, j0, s);
    for (size_t r = 0; r < rq; r++)
#pragma omp simd
        for (size_t c = 0; c < rc; c++) w->S[r * BC + c] = fast_expf(w->S[r * BC + c] - lsei[r]);
    const float *P_used = w->S; /* the probabilities that multiplied V in forward */
    if (s->dropatt > 0.0f) {
        memcpy(w->Pd, w->S, rq * BC * sizeof(float));
        dropout_tile(w->Pd, rq, rc, b, h, i0, j0, s);
        P_used = w->Pd;
    }
    gemm(true, false, rc, d, rq, 1.0f, P_used, BC, doi, s->ldo, 1.0f, w->dV, d);      /* dV += P~^T dO */
    gemm(false, true, rq, rc, d, 1.0f, doi, s->ldo, vj, s->ldv, 0.0f, w->dP, BC);     /* dP~ = dO V^T */
    dropout_tile(w->dP, rq, rc, b, h, i0, j0, s);                                       /* dP = dP~ M/(1-p) */
    for (size_t r = 0; r < rq; r++) {
        float *dS = w->dP + r * BC;
        const float *P = w->S + r * BC, D = w->D[i0 + r];
#pragma omp simd
        for (size_t c = 0; c < rc; c++) dS[c] = P[c] * (dS[c] - D); /* dS = P (dP - D) */
    }
    if (dbias) { /* d bias[j - i] += dS_ij */
        float *row = dbias + s->T - 1;
        for (size_t r = 0; r < rq; r++)
            for (size_t c = 0; c < rc; c++) row[(ptrdiff_t)(j0 + c) - (ptrdiff_t)(i0 + r)] += w->dP[r * BC + c];
    }
    gemm(false, false, rq, d, rc, s->scale, w->dP, BC, kj, s->ldk, 1.0f, dqi, s->ldq); /* dQ += s dS K */
    gemm(true, false, rc, d, rq, s->scale, w->dP, BC, qi, s->ldq, 1.0f, w->dK, d);    /* dK += s dS^T Q */
}

/* All of one (b, h): key tiles outer so each key tile's dK, dV stay in w;
 * dQ rows of this head are owned by this call, so no two threads meet. */
static void backward_head(float *dq, float *dk, float *dv, float *dbias, const float *do_, const float *q,
                          const float *k, const float *v, const float *o, const float *lse, size_t b, size_t h,
                          const AttentionShape *s, Tiles *w) {
    const size_t T = s->T, d = s->d;
    for (size_t t = 0; t < T; t++) {
        const float *dor = do_ + (b * T + t) * s->ldo + h * s->ho, *orow = o + (b * T + t) * s->ldo + h * s->ho;
        float acc = 0.0f;
        for (size_t c = 0; c < d; c++) acc += dor[c] * orow[c];
        w->D[t] = acc;
        memset(dq + (b * T + t) * s->ldq + h * s->hq, 0, d * sizeof(float));
    }
    for (size_t j0 = 0; j0 < T; j0 += BC) {
        size_t rc = min_sz(BC, T - j0), qlo, qhi;
        memset(w->dK, 0, rc * d * sizeof(float));
        memset(w->dV, 0, rc * d * sizeof(float));
        query_range(s, j0, rc, &qlo, &qhi);
        for (size_t i0 = qlo; i0 < qhi; i0 += BR)
            backward_tile_pair(dq, dbias, do_, q, k, v, lse, b, h, i0, min_sz(BR, qhi - i0), j0, rc, s, w);
        for (size_t c = 0; c < rc; c++) {
            memcpy(dk + (b * T + j0 + c) * s->ldk + h * s->hk, w->dK + c * d, d * sizeof(float));
            memcpy(dv + (b * T + j0 + c) * s->ldv + h * s->hv, w->dV + c * d, d * sizeof(float));
        }
    }
}

void attention_backward(float *dq, float *dk, float *dv, const float *do_, const float *q, const float *k,
                        const float *v, const float *o, const float *lse, const AttentionShape *s, float *scratch) {
    const size_t nb = 2 * s->T - 1;
    float *partial = s->dbias ? scratch + (size_t)omp_get_max_threads() * tiles_floats(s->T, s->d) : NULL;
    if (partial) memset(partial, 0, dbias_floats(s) * sizeof(float));
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (size_t b = 0; b < s->B; b++)
        for (size_t h = 0; h < s->H; h++) {
            Tiles w = tiles_for_thread(scratch, s->T, s->d);
            backward_head(dq, dk, dv, partial ? partial + (b * s->H + h) * nb : NULL, do_, q, k, v, o, lse, b, h, s,
                          &w);
        }
    for (size_t b = 0; partial && b < s->B; b++)
        for (size_t h = 0; h < s->H; h++) {
            float *dst = s->dbias + (s->bias_heads > 1 ? h : 0) * nb;
            const float *src = partial + (b * s->H + h) * nb;
            for (size_t i = 0; i < nb; i++) dst[i] += src[i];
        }
}

/* One head of attention_step; p: n floats of its own. */
static void step_head(float *oh, const float *qh, const float *K, const float *V, size_t n, const AttentionShape *s,
                      size_t h, float *p) {
    const size_t d = s->d;
    float mx = -INFINITY, sum = 0.0f;
    for (size_t j = 0; j < n; j++) {
        const float *kj = K + j * s->ldk + h * s->hk;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (size_t c = 0; c < d; c++) dot += qh[c] * kj[c];
        p[j] = dot * s->scale;
        mx = p[j] > mx ? p[j] : mx;
    }
#pragma omp simd reduction(+ : sum)
    for (size_t j = 0; j < n; j++) {
        p[j] = fast_expf(p[j] - mx);
        sum += p[j];
    }
    const float inv = 1.0f / sum;
    memset(oh, 0, d * sizeof(float));
    for (size_t j = 0; j < n; j++) {
        const float *vj = V + j * s->ldv + h * s->hv, w = p[j] * inv;
#pragma omp simd
        for (size_t c = 0; c < d; c++) oh[c] += w * vj[c];
    }
}

void attention_step(float *o, const float *q, const float *K, const float *V, size_t n, const AttentionShape *s,
                    float *scratch) {
    /* heads in parallel once the cache is long enough to pay for waking the threads */
#pragma omp parallel for schedule(static) num_threads(threads_get()) if (n * s->H * s->d >= 65536)
    for (size_t h = 0; h < s->H; h++) step_head(o + h * s->d, q + h * s->hq, K, V, n, s, h, scratch + h * n);
}
