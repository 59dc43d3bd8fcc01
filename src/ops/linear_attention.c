/* linear_attention.c — linear attention as the FMMformer trainer computes it
 * (attn_type 34 and the far field of attn_type 201); see ops.h and
 * shared/spec/attention.md §2.2 (its two-scan backward, here per chunk).
 * Original: minhtannguyen/fmmformer-code-submission@92bc369,
 * lmtool-fwms/src/utils/cuda_fast_weight_layer.py.
 *
 * Causal, per (batch row, head), chunk by chunk of L positions:
 *   A = a b^T masked to j <= t        (L x L, the intra-chunk scores)
 *   num = A V + a S,  den = A 1 + a z (S, z: the state of all earlier chunks)
 *   out = scale num / (den + eps);    then S += b^T V, z += b^T 1.
 * Every product is a small sgemm. Backward walks the chunks in reverse with
 * the gradients G = d out / d num and gd = d out / d den:
 *   P = (G V^T + gd 1^T) masked,  da = P b + G S^T + gd z^T,
 *   db = P^T a + V R^T + 1 r^T,   dv = A^T G + b R,
 * where R = sum of a^T G and r = sum of a^T gd over the later chunks.
 * Non-causal, every position sees the whole row: S and z are the sums over
 * all chunks, and backward's R and r likewise (two passes each way).
 * Padding keys (key_mask 0) get zero features b: no query sees them, and
 * their gradient is zero. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "../core/gemm.h"
#include "fastmath.h"
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
    return x > 0.0f ? x + 1.0f : fast_expf(x);
}
static inline float feature_grad(FeatureMap f, float x) {
    float sign = f == FEATURE_ELU_FLIP ? -1.0f : 1.0f;
    float u = sign * x;
    return sign * (u > 0.0f ? 1.0f : fast_expf(u));
}

static size_t nchunks(const LinearAttnShape *s) { return (s->io.T + s->chunk - 1) / s->chunk; }

/* saved: den (B, H, T), then per (b, h, chunk) the state S (d x d) and z (d)
 * at the chunk's start (non-causal: the whole row's S, z in slot 0). */
size_t linear_attention_saved(const LinearAttnShape *s) {
    const size_t d = s->io.d;
    return s->io.B * s->io.H * (s->io.T + nchunks(s) * (d * d + d));
}

typedef struct {
    float *a, *b;        /* L x d: normalised features of a chunk */
    float *A, *P;        /* L x L: scores, their gradient */
    float *G, *gd;       /* L x d, L: gradient w.r.t. num and den (forward: G holds num) */
    float *da, *db, *dv; /* L x d */
    float *S, *z;        /* d x d, d: state (forward) */
    float *R, *r;        /* d x d, d: reverse sums (backward) */
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
        float sum = 0.0f, *o = out + t * d;
        const float *xt = x + t * ld;
#pragma omp simd reduction(+ : sum)
        for (size_t c = 0; c < d; c++) sum += o[c] = feature(f, xt[c]);
        const float inv = 1.0f / sum;
        for (size_t c = 0; c < d; c++) o[c] *= inv;
    }
}

/* Zeroes the future (j > t) of an n x n block with leading dimension L. */
static void mask_future(float *A, size_t n, size_t L) {
    for (size_t t = 0; t < n; t++) memset(A + t * L + t + 1, 0, (n - t - 1) * sizeof(float));
}

/* out += x^T 1 over n rows of width d: the column sums. */
static void add_column_sums(float *out, const float *x, size_t n, size_t d) {
    for (size_t t = 0; t < n; t++)
        for (size_t c = 0; c < d; c++) out[c] += x[t * d + c];
}

/* One chunk's position of head h of batch row b (all tensors share the io layout). */
typedef struct {
    const float *q, *k, *v;
    float *o;
    size_t t0, n;
} Chunk;

static Chunk chunk_at(const LinearAttnShape *s, const float *q, const float *k, const float *v, float *o, size_t b,
                      size_t h, size_t c) {
    const AttentionShape *io = &s->io;
    const size_t t0 = c * s->chunk, row = b * io->T + t0;
    Chunk ch = {.q = q + row * io->ldq + h * io->hq, .k = k + row * io->ldk + h * io->hk,
                .v = v + row * io->ldv + h * io->hv, .o = o ? o + row * io->ldo + h * io->ho : NULL, .t0 = t0,
                .n = io->T - t0 < s->chunk ? io->T - t0 : s->chunk};
    return ch;
}

/* Zeroes the rows (n x d) of the chunk's padding keys (key_mask 0) of batch row b. */
static void zero_padding_keys(float *x, const LinearAttnShape *s, const Chunk *ch, size_t b) {
    const float *m = s->io.key_mask;
    for (size_t t = 0; m && t < ch->n; t++)
        if (m[b * s->io.T + ch->t0 + t] == 0.0f) memset(x + t * s->io.d, 0, s->io.d * sizeof(float));
}

/* The normalised features of the chunk's keys, zero at padding keys. */
static void key_features(float *out, const LinearAttnShape *s, const Chunk *ch, size_t b) {
    normalised_features(out, ch->k, s->io.ldk, ch->n, s->io.d, s->phi);
    zero_padding_keys(out, s, ch, b);
}

/* ------------------------------------------------------------------------ */
/* Forward                                                                   */

/* o = scale num / (den + eps) for the chunk, from num in w->G and den. */
static void write_output(const LinearAttnShape *s, const Chunk *ch, const Work *w, const float *den) {
    const size_t d = s->io.d;
    for (size_t t = 0; t < ch->n; t++) {
        float inv = s->io.scale / (den[t] + s->eps);
        for (size_t e = 0; e < d; e++) ch->o[t * s->io.ldo + e] = w->G[t * d + e] * inv;
    }
}

/* num = a S (+ A V, causal), den = a z (+ A 1); w->a, w->A already set. */
static void chunk_output(const LinearAttnShape *s, const Chunk *ch, Work *w, float *den, bool intra) {
    const size_t d = s->io.d, L = s->chunk, n = ch->n;
    gemm(false, false, n, d, d, 1.0f, w->a, d, w->S, d, 0.0f, w->G, d);
    if (intra) gemm(false, false, n, d, n, 1.0f, w->A, L, ch->v, s->io.ldv, 1.0f, w->G, d);
    for (size_t t = 0; t < n; t++) {
        float dn = 0.0f;
        for (size_t c = 0; c < d; c++) dn += w->a[t * d + c] * w->z[c];
        for (size_t j = 0; intra && j <= t; j++) dn += w->A[t * L + j];
        den[t] = dn;
    }
    write_output(s, ch, w, den);
}

/* S += b^T V, z += b^T 1 for the chunk (w->b set). */
static void accumulate_state(const LinearAttnShape *s, const Chunk *ch, Work *w) {
    const size_t d = s->io.d;
    gemm(true, false, d, d, ch->n, 1.0f, w->b, d, ch->v, s->io.ldv, 1.0f, w->S, d);
    add_column_sums(w->z, w->b, ch->n, d);
}

static void forward_head(float *o, float *saved, const float *q, const float *k, const float *v, size_t b, size_t h,
                         const LinearAttnShape *s, Work *w) {
    const AttentionShape *io = &s->io;
    const size_t T = io->T, d = io->d, L = s->chunk, nc = nchunks(s);
    float *den = saved + (b * io->H + h) * T;
    float *states = saved + io->B * io->H * T + (b * io->H + h) * nc * (d * d + d);
    memset(w->S, 0, d * d * sizeof(float));
    memset(w->z, 0, d * sizeof(float));
    if (!io->causal) /* first the whole row's state */
        for (size_t c = 0; c < nc; c++) {
            Chunk ch = chunk_at(s, q, k, v, o, b, h, c);
            key_features(w->b, s, &ch, b);
            accumulate_state(s, &ch, w);
        }
    for (size_t c = 0; c < nc; c++) {
        Chunk ch = chunk_at(s, q, k, v, o, b, h, c);
        if (io->causal || c == 0) {
            memcpy(states + c * (d * d + d), w->S, d * d * sizeof(float));
            memcpy(states + c * (d * d + d) + d * d, w->z, d * sizeof(float));
        }
        normalised_features(w->a, ch.q, io->ldq, ch.n, d, s->phi);
        if (io->causal) {
            key_features(w->b, s, &ch, b);
            gemm(false, true, ch.n, ch.n, d, 1.0f, w->a, d, w->b, d, 0.0f, w->A, L);
            mask_future(w->A, ch.n, L);
        }
        chunk_output(s, &ch, w, den + ch.t0, io->causal);
        if (io->causal) accumulate_state(s, &ch, w);
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

/* ------------------------------------------------------------------------ */
/* Backward                                                                  */

/* From d(normalised feature) of n rows to d(input) rows (stride ld),
 * written or added. */
static void features_backward(float *dx, size_t ld, const float *dxhat, const float *xhat, const float *x, size_t n,
                              size_t d, FeatureMap f, bool accumulate) {
    for (size_t t = 0; t < n; t++) {
        const float *xt = x + t * ld, *dh = dxhat + t * d, *h = xhat + t * d;
        float *dxt = dx + t * ld, sum = 0.0f, dot = 0.0f;
#pragma omp simd reduction(+ : sum, dot)
        for (size_t c = 0; c < d; c++) {
            sum += feature(f, xt[c]);
            dot += dh[c] * h[c];
        }
        const float inv = 1.0f / sum;
#pragma omp simd
        for (size_t c = 0; c < d; c++) {
            float g = (dh[c] - dot) * inv * feature_grad(f, xt[c]);
            dxt[c] = accumulate ? dxt[c] + g : g;
        }
    }
}

/* Gradients w.r.t. num (G) and den (gd) of the chunk's rows, for the
 * upstream gradient weight * do_ (do_ and o in the io layout). */
static void output_grads(const LinearAttnShape *s, const Chunk *ch, const float *do_chunk, const float *den,
                         float weight, Work *w) {
    const size_t d = s->io.d;
    for (size_t t = 0; t < ch->n; t++) {
        const float *dot_ = do_chunk + t * s->io.ldo, *ot = ch->o + t * s->io.ldo;
        float inv = weight / (den[t] + s->eps), dd = 0.0f;
        for (size_t e = 0; e < d; e++) {
            w->G[t * d + e] = s->io.scale * dot_[e] * inv;
            dd += dot_[e] * ot[e];
        }
        w->gd[t] = -dd * inv;
    }
}

/* R += a^T G, r += a^T gd: this chunk's contribution to the earlier ones. */
static void accumulate_reverse(const LinearAttnShape *s, const Chunk *ch, Work *w) {
    const size_t d = s->io.d;
    gemm(true, false, d, d, ch->n, 1.0f, w->a, d, w->G, d, 1.0f, w->R, d);
    for (size_t t = 0; t < ch->n; t++)
        for (size_t c = 0; c < d; c++) w->r[c] += w->a[t * d + c] * w->gd[t];
}

/* da, db, dv of one chunk from G, gd, the state S, z before it and the
 * reverse sums R, r after it (with the intra-chunk terms when causal). */
static void chunk_grads(const LinearAttnShape *s, const Chunk *ch, const float *S, const float *z, Work *w,
                        bool intra) {
    const size_t d = s->io.d, L = s->chunk, n = ch->n, ldv = s->io.ldv;
    if (intra) { /* P = G V^T + gd 1^T on j <= t */
        gemm(false, true, n, n, d, 1.0f, w->G, d, ch->v, ldv, 0.0f, w->P, L);
        for (size_t t = 0; t < n; t++)
            for (size_t j = 0; j <= t; j++) w->P[t * L + j] += w->gd[t];
        mask_future(w->P, n, L);
    }
    gemm(false, true, n, d, d, 1.0f, w->G, d, S, d, 0.0f, w->da, d);
    gemm(false, true, n, d, d, 1.0f, ch->v, ldv, w->R, d, 0.0f, w->db, d);
    gemm(false, false, n, d, d, 1.0f, w->b, d, w->R, d, 0.0f, w->dv, d);
    if (intra) {
        gemm(false, false, n, d, n, 1.0f, w->P, L, w->b, d, 1.0f, w->da, d);
        gemm(true, false, n, d, n, 1.0f, w->P, L, w->a, d, 1.0f, w->db, d);
        gemm(true, false, n, d, n, 1.0f, w->A, L, w->G, d, 1.0f, w->dv, d);
    }
    for (size_t t = 0; t < n; t++)
        for (size_t c = 0; c < d; c++) {
            w->da[t * d + c] += w->gd[t] * z[c];
            w->db[t * d + c] += w->r[c];
        }
}

/* Writes (or adds) the chunk's da, db, dv into dq, dk, dv. */
static void store_grads(const LinearAttnShape *s, const Chunk *ch, const Chunk *dch, Work *w, bool accumulate) {
    const size_t d = s->io.d;
    features_backward((float *)dch->q, s->io.ldq, w->da, w->a, ch->q, ch->n, d, s->phi, accumulate);
    features_backward((float *)dch->k, s->io.ldk, w->db, w->b, ch->k, ch->n, d, s->phi, accumulate);
    for (size_t j = 0; j < ch->n; j++) {
        float *dvj = (float *)dch->v + j * s->io.ldv;
        for (size_t e = 0; e < d; e++) dvj[e] = accumulate ? dvj[e] + w->dv[j * d + e] : w->dv[j * d + e];
    }
}

typedef struct {
    float *dq, *dk, *dv;
    const float *do_;
    float weight;
    bool accumulate;
} GradOut;

static void backward_head(const GradOut *g, const float *q, const float *k, const float *v, const float *o,
                          const float *saved, size_t b, size_t h, const LinearAttnShape *s, Work *w) {
    const AttentionShape *io = &s->io;
    const size_t T = io->T, d = io->d, L = s->chunk, nc = nchunks(s);
    const float *den = saved + (b * io->H + h) * T;
    const float *states = saved + io->B * io->H * T + (b * io->H + h) * nc * (d * d + d);
    memset(w->R, 0, (d * d + d) * sizeof(float)); /* R and r are adjacent */
    if (!io->causal) /* first the whole row's reverse sums */
        for (size_t c = 0; c < nc; c++) {
            Chunk ch = chunk_at(s, q, k, v, (float *)o, b, h, c), dch = chunk_at(s, q, k, v, (float *)g->do_, b, h, c);
            normalised_features(w->a, ch.q, io->ldq, ch.n, d, s->phi);
            output_grads(s, &ch, dch.o, den + ch.t0, g->weight, w);
            accumulate_reverse(s, &ch, w);
        }
    for (size_t c = nc; c-- > 0;) {
        Chunk ch = chunk_at(s, q, k, v, (float *)o, b, h, c);
        Chunk dch = chunk_at(s, g->dq, g->dk, g->dv, (float *)g->do_, b, h, c);
        const float *S = states + (io->causal ? c : 0) * (d * d + d);
        normalised_features(w->a, ch.q, io->ldq, ch.n, d, s->phi);
        key_features(w->b, s, &ch, b);
        if (io->causal) {
            gemm(false, true, ch.n, ch.n, d, 1.0f, w->a, d, w->b, d, 0.0f, w->A, L);
            mask_future(w->A, ch.n, L);
        }
        output_grads(s, &ch, dch.o, den + ch.t0, g->weight, w);
        chunk_grads(s, &ch, S, S + d * d, w, io->causal);
        if (io->causal) accumulate_reverse(s, &ch, w);
        zero_padding_keys(w->db, s, &ch, b); /* their features are constant */
        store_grads(s, &ch, &dch, w, g->accumulate);
    }
}

void linear_attention_backward(float *dq, float *dk, float *dv, const float *do_, float weight, bool accumulate,
                               const float *q, const float *k, const float *v, const float *o, const float *saved,
                               const LinearAttnShape *s, float *scratch) {
    const GradOut g = {dq, dk, dv, do_, weight, accumulate};
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (size_t b = 0; b < s->io.B; b++)
        for (size_t h = 0; h < s->io.H; h++) {
            Work w = work_for_thread(scratch, s->chunk, s->io.d);
            backward_head(&g, q, k, v, o, saved, b, h, s, &w);
        }
}

/* ------------------------------------------------------------------------ */
/* Step (generation, causal)                                                 */

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
