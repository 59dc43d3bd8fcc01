/* gau_attention.c — the single-head attention of MEGA's and SeqBoat's gated
 * attention unit (spec mega-seqboat.md §4.3, §4.4, §6.4): q, k of width Z,
 * v and o of width H (different widths, which attention.c's heads do not
 * allow), softmax or an element-wise function of the scores, and three key
 * ranges: chunks (MEGA: a query sees the keys of its own chunk), a sliding
 * window over the sequence (SeqBoat's local attention over the compressed
 * sequence) or everything.
 *
 * Scores of query i and key j:
 *   softmax:       s = scale q.k + bias,  A = softmax over the keys it may see
 *   relu2/laplace: s = q.k / len + bias,  A = f(s) for the keys it may see, else 0
 * with bias = table[clamp(pos_j - pos_i)] (positions: SeqBoat's original token
 * positions after compression; else the indices), len per the GauLen rule.
 * Masks are exact: a key a query may not see gets weight 0 (the original's
 * laplace(0) on masked keys of SeqBoat's local attention is not reproduced;
 * a query that sees no key, whose output the layers discard, gets 0).
 *
 * Queries go in tiles; each tile's scores against its key range are one
 * GEMM, O = A V another. Nothing of size T x keys is kept: backward makes
 * the scores again (softmax from the saved log-sum-exp), as attention.c
 * does. Key ranges of neighbouring window tiles overlap, so backward
 * visits the tiles in three phases (tile index mod 3) and the gradients of
 * k and v add up in the same order on any number of threads. */
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <string.h>

#include "../core/gemm.h"
#include "ops.h"

enum { FULL_TILE = 64 }; /* query rows per tile without chunks or window */

int gau_fn_parse(const char *name, GauFn *out) {
    static const char *const names[] = {"softmax", "relu2", "laplace"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, names[i])) return *out = (GauFn)i, 0;
    return -1;
}

static size_t tile_rows(const GauShape *s) {
    if (s->chunk) return s->chunk;
    if (s->window) return s->window;
    return FULL_TILE;
}

static size_t n_tiles(const GauShape *s) { return (s->T + tile_rows(s) - 1) / tile_rows(s); }

/* Keys [k0, k1) that tile w's queries [i0, i1) may reach. */
static void key_range(const GauShape *s, size_t i0, size_t i1, size_t *k0, size_t *k1) {
    if (s->chunk) {
        *k0 = i0;
        *k1 = i1;
    } else if (s->window) {
        *k0 = i0 > s->window ? i0 - s->window : 0;
        *k1 = s->causal ? i1 : (i1 + s->window < s->T ? i1 + s->window : s->T);
    } else {
        *k0 = 0;
        *k1 = s->causal ? i1 : s->T;
    }
}

static size_t max_keys(const GauShape *s) {
    const size_t r = tile_rows(s);
    if (s->chunk) return r;
    if (s->window) return r + (s->causal ? 1 : 2) * s->window;
    return s->T;
}

/* The keys [*lo, *hi) of [k0, k1) that query i may see before the key mask:
 * causal keys up to i, window keys within window of i. */
static void visible_range(const GauShape *s, size_t i, size_t k0, size_t k1, size_t *lo, size_t *hi) {
    *lo = s->window && i > k0 + s->window ? i - s->window : k0;
    *hi = k1;
    if (s->causal && i + 1 < *hi) *hi = i + 1;
    if (s->window && !s->causal && i + s->window + 1 < *hi) *hi = i + s->window + 1;
    if (*lo > *hi) *lo = *hi;
}

static size_t bias_index(const GauShape *s, size_t b, size_t i, size_t j) {
    const long R = (long)s->bias_radius;
    long off = s->pos ? (long)s->pos[b * s->T + j] - (long)s->pos[b * s->T + i] : (long)j - (long)i;
    off = off < 1 - R ? 1 - R : off > R - 1 ? R - 1 : off;
    return (size_t)(off + R - 1);
}

/* The unmasked keys of [k0, k1) (the len of GAU_LEN_KEYS), at least 1. */
static size_t unmasked_keys(const GauShape *s, size_t b, size_t k0, size_t k1) {
    if (!s->key_mask) return k1 - k0 ? k1 - k0 : 1;
    size_t n = 0;
    for (size_t j = k0; j < k1; j++) n += s->key_mask[b * s->T + j] != 0.0f;
    return n ? n : 1;
}

/* The factor of q.k in the score of query i in a tile starting at i0 whose
 * key range has `keys` unmasked keys: the softmax scale, or 1 / len. */
static float score_factor(const GauShape *s, size_t i, size_t i0, size_t keys) {
    if (s->fn == GAU_SOFTMAX) return s->scale;
    const size_t len = s->len == GAU_LEN_FIXED ? s->fixed_len : s->len == GAU_LEN_ROW ? i - i0 + 1 : keys;
    return 1.0f / (float)len;
}

/* Per-thread scratch: four tiles of scores (forward uses one). */
enum { TILE_BUFFERS = 4 };
static size_t thread_floats(const GauShape *s) { return TILE_BUFFERS * tile_rows(s) * max_keys(s); }

/* Partial sums of the bias gradient, one per (batch row, tile), summed in
 * that order: the same bits on any thread count. Sized whenever there is a
 * bias, so one scratch serves forward and backward. */
static size_t dbias_floats(const GauShape *s) {
    return s->bias_radius ? s->B * n_tiles(s) * (2 * s->bias_radius - 1) : 0;
}

size_t gau_attention_scratch(const GauShape *s) {
    return (size_t)omp_get_max_threads() * thread_floats(s) + dbias_floats(s);
}


/* Turns the products q.k in S (rows x nk) of the tile (b, i0) into the
 * weights A in place. Softmax rows write their log-sum-exp to lse, or with
 * `have_lse` use the saved one; element rows write f'(score) to deriv when
 * it is not NULL. Keys a query may not see get weight 0 (and f' 0). */
static void weights(const GauShape *s, float *S, float *deriv, float *lse, bool have_lse, size_t b, size_t i0,
                    size_t rows, size_t k0, size_t nk) {
    const Activation f = s->fn == GAU_RELU2 ? ACT_RELU2 : ACT_LAPLACE;
    const size_t keys = s->fn != GAU_SOFTMAX && s->len == GAU_LEN_KEYS ? unmasked_keys(s, b, k0, k0 + nk) : 0;
    const float *mask = s->key_mask ? s->key_mask + b * s->T : NULL;
    for (size_t r = 0; r < rows; r++) {
        const size_t i = i0 + r;
        float *row = S + r * nk, *drow = deriv ? deriv + r * nk : NULL;
        size_t lo, hi;
        visible_range(s, i, k0, k0 + nk, &lo, &hi);
        const float factor = score_factor(s, i, i0, keys);
        for (size_t j = k0; j < lo; j++) row[j - k0] = -INFINITY;
        for (size_t j = hi; j < k0 + nk; j++) row[j - k0] = -INFINITY;
        if (!s->bias) {
            for (size_t j = lo; j < hi; j++) row[j - k0] *= factor;
        } else if (!s->pos && i + s->bias_radius > hi && lo + s->bias_radius > i + 1) { /* offsets inside the table */
            const ptrdiff_t base = (ptrdiff_t)s->bias_radius - 1 - (ptrdiff_t)i; /* entry of offset j - i */
            for (size_t j = lo; j < hi; j++) row[j - k0] = row[j - k0] * factor + s->bias[base + (ptrdiff_t)j];
        } else {
            for (size_t j = lo; j < hi; j++) row[j - k0] = row[j - k0] * factor + s->bias[bias_index(s, b, i, j)];
        }
        for (size_t j = lo; mask && j < hi; j++)
            if (mask[j] == 0.0f) row[j - k0] = -INFINITY;
        if (s->fn != GAU_SOFTMAX) {
            if (drow) activation_grad(row + (lo - k0), drow + (lo - k0), row + (lo - k0), hi - lo, f);
            else activation_forward(row + (lo - k0), row + (lo - k0), hi - lo, f);
            for (size_t c = 0; c < nk; c++) {
                const size_t j = k0 + c;
                const bool seen = j >= lo && j < hi && (!mask || mask[j] != 0.0f);
                if (!seen) row[c] = 0.0f;
                if (drow && !seen) drow[c] = 0.0f;
            }
            continue;
        }
        float most = -INFINITY;
        for (size_t j = lo; j < hi; j++) most = fmaxf(most, row[j - k0]);
        float *l = lse + b * s->T + i;
        if (!have_lse) {
            double sum = 0.0;
            for (size_t j = lo; j < hi; j++) sum += row[j - k0] == -INFINITY ? 0.0 : exp((double)(row[j - k0] - most));
            *l = most == -INFINITY ? INFINITY : most + (float)log(sum); /* no visible key: every weight 0 */
        }
        for (size_t c = 0; c < nk; c++) row[c] = row[c] == -INFINITY ? 0.0f : expf(row[c] - *l);
    }
}

/* Attention dropout: element (i, c) of batch row b keyed by its place in a
 * (row0 + B) x T x max_keys tensor, so backward regenerates the forward's mask. */
static void drop_rows(const GauShape *s, float *A, size_t b, size_t i0, size_t rows, size_t nk, bool backward) {
    if (s->dropatt <= 0.0f) return;
    for (size_t r = 0; r < rows; r++) {
        const DropoutKey k = {.p = s->dropatt, .seed = s->seed, .stream = s->stream,
                              .first = ((s->row0 + b) * s->T + i0 + r) * max_keys(s)};
        if (backward) dropout_backward(A + r * nk, A + r * nk, nk, &k);
        else dropout_forward(A + r * nk, A + r * nk, nk, &k);
    }
}

static const float *rows_of(const float *x, size_t ld, size_t b, size_t T, size_t i) { return x + (b * T + i) * ld; }

void gau_attention_forward(float *o, float *lse, const float *q, const float *k, const float *v, const GauShape *s,
                           float *scratch) {
    const size_t tiles = n_tiles(s), tr = tile_rows(s);
#pragma omp parallel for schedule(dynamic)
    for (size_t task = 0; task < s->B * tiles; task++) {
        const size_t b = task / tiles, i0 = task % tiles * tr, rows = i0 + tr < s->T ? tr : s->T - i0;
        size_t k0, k1;
        key_range(s, i0, i0 + rows, &k0, &k1);
        const size_t nk = k1 - k0;
        float *S = scratch + (size_t)omp_get_thread_num() * thread_floats(s);
        gemm(false, true, rows, nk, s->Z, 1.0f, rows_of(q, s->ldq, b, s->T, i0), s->ldq, rows_of(k, s->ldk, b, s->T, k0),
             s->ldk, 0.0f, S, nk);
        weights(s, S, NULL, lse, false, b, i0, rows, k0, nk);
        drop_rows(s, S, b, i0, rows, nk, false);
        gemm(false, false, rows, s->H, nk, 1.0f, S, nk, rows_of(v, s->ldv, b, s->T, k0), s->ldv, 0.0f,
             o + (b * s->T + i0) * s->ldo, s->ldo);
    }
}

/* One tile's backward: adds to dq of its rows and to dk, dv of its key
 * range; its bias gradient goes to `partial` (2R - 1). With G = dl/dscore:
 *   softmax G = A (dA - dO.O),  element G = dA f'(score),  dA = dO V^T,
 *   dbias += G,  d(q.k) = G * factor,  dq += d(q.k) K,  dk += d(q.k)^T Q. */
static void tile_backward(float *dq, float *dk, float *dv, const float *do_, const float *q, const float *k,
                          const float *v, const float *o, float *lse, const GauShape *s, float *partial, float *buf,
                          size_t b, size_t i0, size_t rows) {
    size_t k0, k1;
    key_range(s, i0, i0 + rows, &k0, &k1);
    const size_t nk = k1 - k0, T = s->T, tile = tile_rows(s) * max_keys(s);
    float *A = buf, *F = A + tile, *Ad = F + tile, *G = Ad + tile;
    const size_t keys = s->fn != GAU_SOFTMAX && s->len == GAU_LEN_KEYS ? unmasked_keys(s, b, k0, k1) : 0;
    gemm(false, true, rows, nk, s->Z, 1.0f, rows_of(q, s->ldq, b, T, i0), s->ldq, rows_of(k, s->ldk, b, T, k0), s->ldk,
         0.0f, A, nk);
    weights(s, A, F, lse, true, b, i0, rows, k0, nk);
    const float *Adrop = A;
    if (s->dropatt > 0.0f) {
        memcpy(Ad, A, rows * nk * sizeof(float));
        drop_rows(s, Ad, b, i0, rows, nk, false);
        Adrop = Ad;
    }
    gemm(true, false, nk, s->H, rows, 1.0f, Adrop, nk, rows_of(do_, s->ldo, b, T, i0), s->ldo, 1.0f,
         dv + (b * T + k0) * s->ldv, s->ldv);
    gemm(false, true, rows, nk, s->H, 1.0f, rows_of(do_, s->ldo, b, T, i0), s->ldo, rows_of(v, s->ldv, b, T, k0), s->ldv,
         0.0f, G, nk);
    drop_rows(s, G, b, i0, rows, nk, true);
    for (size_t r = 0; r < rows; r++) {
        const size_t i = i0 + r;
        float *g = G + r * nk;
        if (s->fn == GAU_SOFTMAX) {
            float D = 0.0f;
            const float *dor = rows_of(do_, s->ldo, b, T, i), *orow = rows_of(o, s->ldo, b, T, i);
            for (size_t h = 0; h < s->H; h++) D += dor[h] * orow[h];
            for (size_t c = 0; c < nk; c++) g[c] = A[r * nk + c] * (g[c] - D);
        } else {
            for (size_t c = 0; c < nk; c++) g[c] *= F[r * nk + c];
        }
        if (partial)
            for (size_t c = 0; c < nk; c++)
                if (g[c] != 0.0f) partial[bias_index(s, b, i, k0 + c)] += g[c];
        const float factor = score_factor(s, i, i0, keys);
        for (size_t c = 0; c < nk; c++) g[c] *= factor;
    }
    gemm(false, false, rows, s->Z, nk, 1.0f, G, nk, rows_of(k, s->ldk, b, T, k0), s->ldk, 1.0f,
         dq + (b * T + i0) * s->ldq, s->ldq);
    gemm(true, false, nk, s->Z, rows, 1.0f, G, nk, rows_of(q, s->ldq, b, T, i0), s->ldq, 1.0f,
         dk + (b * T + k0) * s->ldk, s->ldk);
}

static void zero_rows(float *x, size_t ld, size_t n, size_t width) {
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < n; r++) memset(x + r * ld, 0, width * sizeof(float));
}

void gau_attention_backward(float *dq, float *dk, float *dv, const float *do_, const float *q, const float *k,
                            const float *v, const float *o, const float *lse, const GauShape *s, float *scratch) {
    const size_t tiles = n_tiles(s), tr = tile_rows(s), N = s->B * s->T, R2 = 2 * s->bias_radius - 1;
    zero_rows(dq, s->ldq, N, s->Z);
    zero_rows(dk, s->ldk, N, s->Z);
    zero_rows(dv, s->ldv, N, s->H);
    float *partials = s->dbias ? scratch + (size_t)omp_get_max_threads() * thread_floats(s) : NULL;
    if (partials) memset(partials, 0, dbias_floats(s) * sizeof(float));
    /* tiles whose key ranges overlap never run together: chunks never
     * overlap, window tiles w and w +- 1, w +- 2 do, and without either every
     * tile sees every key (then only the batch rows run in parallel) */
    const size_t phases = s->chunk ? 1 : s->window ? 3 : tiles;
    for (size_t phase = 0; phase < phases; phase++) {
#pragma omp parallel for schedule(dynamic)
        for (size_t task = 0; task < s->B * tiles; task++) {
            const size_t b = task / tiles, w = task % tiles, i0 = w * tr;
            if (w % phases != phase) continue;
            const size_t rows = i0 + tr < s->T ? tr : s->T - i0;
            tile_backward(dq, dk, dv, do_, q, k, v, o, (float *)lse, s, partials ? partials + task * R2 : NULL,
                          scratch + (size_t)omp_get_thread_num() * thread_floats(s), b, i0, rows);
        }
    }
    for (size_t t = 0; partials && t < s->B * tiles; t++)
        for (size_t r = 0; r < R2; r++) s->dbias[r] += partials[t * R2 + r];
}

void gau_attention_query(float *o, const float *q, const float *K, const float *V, size_t n, const int32_t *key_pos,
                         long query_pos, const GauShape *s, float *scratch) {
    float *w = scratch;
    const float factor = s->fn == GAU_SOFTMAX ? s->scale : 1.0f / (float)(s->len == GAU_LEN_FIXED ? s->fixed_len : n);
    const long R = (long)s->bias_radius;
    float most = -INFINITY;
    for (size_t j = 0; j < n; j++) {
        const float *kj = K + j * s->ldk;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (size_t z = 0; z < s->Z; z++) dot += q[z] * kj[z];
        long off = (key_pos ? (long)key_pos[j] : (long)j) - query_pos;
        off = off < 1 - R ? 1 - R : off > R - 1 ? R - 1 : off;
        w[j] = dot * factor + (s->bias ? s->bias[off + R - 1] : 0.0f);
        most = fmaxf(most, w[j]);
    }
    if (s->fn == GAU_SOFTMAX) {
        double sum = 0.0;
        for (size_t j = 0; j < n; j++) sum += w[j] = expf(w[j] - most);
        const float inv = (float)(1.0 / sum);
        for (size_t j = 0; j < n; j++) w[j] *= inv;
    } else {
        activation_forward(w, w, n, s->fn == GAU_RELU2 ? ACT_RELU2 : ACT_LAPLACE);
    }
    memset(o, 0, s->H * sizeof(float));
    for (size_t j = 0; j < n; j++) {
        const float *vj = V + j * s->ldv;
#pragma omp simd
        for (size_t h = 0; h < s->H; h++) o[h] += w[j] * vj[h];
    }
}
