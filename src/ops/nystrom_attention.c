/* nystrom_attention.c — Nyström attention (Xiong et al. 2021), the core of the
 * `nystrom` mixer. Spec: shared/spec/attention.md §5; the computation of
 * mlpen/Nystromformer code/attention_nystrom.py, per (batch row b, head h):
 *
 *   Q, K <- Q ⊙ mask / d^(1/4), K ⊙ mask / d^(1/4)      (scale split between them)
 *   Q~, K~ (M x d): means of M contiguous segments of l = T'/M rows, T' = T
 *       rounded up to a multiple of M; the rows added by the rounding are
 *       zero and count in the means, as the original's padded rows do
 *   F  = softmax(Q K~^T)                      (T x M)
 *   A  = softmax(Q~ K~^T)                     (M x M)
 *   Bm = softmax(Q~ K^T - 1e9 (1 - mask))     (M x T)
 *   Z  = pinv(A): Z0 = A^T / c, then n times Y = A Z, Z <- Z (13I - Y(15I - Y(7I - Y))) / 4
 *   X  = (F Z)(Bm V)
 *
 * c is the largest column sum of A over the whole batch and every head (the
 * original's "original" option) or of each matrix (per_matrix). With T' = M
 * (T <= M) the original takes its exact path, softmax(Q K^T - 1e9(1 - mask)) V,
 * which here runs on the tiled kernel of attention.c.
 *
 * Backward follows the unrolled iteration (spec §5 "Backward"): everything
 * but the c term is per (b, h); c couples the matrices, so backward runs in
 * two passes with the reduction of dc between them. Memory is O(T M + M^2)
 * per (b, h): F, Bm and W = F Z are T x M, A and the iterates M x M.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "../core/gemm.h"
#include "ops.h"

bool nystrom_attention_exact(const NystromShape *s) { return s->T <= s->M; }

/* Rows per landmark segment. */
static size_t segment(const NystromShape *s) { return (s->T + s->M - 1) / s->M; }

/* ------------------------------------------------------------------------ */
/* Layouts                                                                   */

/* What forward keeps for backward, per (b, h) of the approximate path. */
typedef struct {
    float *Qt, *Kt; /* M x d: landmarks */
    float *F;       /* T x M */
    float *A;       /* M x M */
    float *Bm;      /* M x T */
    float *Z;       /* (n + 1) x M x M: Z_0 ... Z_n */
    float *Y;       /* n x M x M: Y_k = A Z_k */
    float *W;       /* T x M: F Z_n */
    float *U;       /* M x d: Bm V */
} Saved;

static size_t saved_floats_per_head(const NystromShape *s) {
    const size_t M = s->M, n = (size_t)s->iterations;
    return 3 * M * s->d + 3 * s->T * M + (2 * n + 2) * M * M;
}

size_t nystrom_attention_saved(const NystromShape *s) {
    if (nystrom_attention_exact(s)) return s->B * s->T * s->H * s->d + s->B * s->H * s->T; /* output, lse */
    return s->B * s->H * saved_floats_per_head(s);
}

static Saved saved_at(const NystromShape *s, float *saved, size_t bh) {
    const size_t M = s->M, T = s->T, d = s->d, n = (size_t)s->iterations;
    float *p = saved + bh * saved_floats_per_head(s);
    Saved v;
    v.Qt = p, p += M * d;
    v.Kt = p, p += M * d;
    v.F = p, p += T * M;
    v.A = p, p += M * M;
    v.Bm = p, p += M * T;
    v.Z = p, p += (n + 1) * M * M;
    v.Y = p, p += n * M * M;
    v.W = p, p += T * M;
    v.U = p;
    return v;
}

/* Per-thread work of the approximate path. */
typedef struct {
    float *qs, *ks;       /* T x d: scaled, masked Q and K */
    float *dW, *dF;       /* T x M */
    float *dBm;           /* M x T */
    float *dU;            /* M x d */
    float *dZ, *dZn, *G, *dY, *Y2, *P, *t1, *t2; /* M x M */
} Work;

static size_t work_floats(const NystromShape *s) {
    return 2 * s->T * s->d + 3 * s->T * s->M + s->M * s->d + 8 * s->M * s->M;
}

/* Per (b, h), kept between the two passes of backward: dA, dQ~, dK~, dc. */
static size_t pass_floats(const NystromShape *s) { return s->M * s->M + 2 * s->M * s->d + 1; }

size_t nystrom_attention_scratch(const NystromShape *s) {
    const size_t threads = (size_t)omp_get_max_threads();
    if (nystrom_attention_exact(s)) {
        AttentionShape sh = {.B = s->B, .T = s->T, .H = s->H, .d = s->d};
        return 2 * s->B * s->T * s->H * s->d + attention_scratch(&sh);
    }
    return threads * work_floats(s) + s->B * s->H * pass_floats(s);
}

static Work work_for_thread(const NystromShape *s, float *scratch) {
    const size_t T = s->T, M = s->M, d = s->d;
    float *p = scratch + (size_t)omp_get_thread_num() * work_floats(s);
    Work w;
    w.qs = p, p += T * d;
    w.ks = p, p += T * d;
    w.dW = p, p += T * M;
    w.dF = p, p += T * M;
    w.dBm = p, p += M * T;
    w.dU = p, p += M * d;
    /* P, t1, t2 consecutive: nystrom_pinv's work */
    float **mm[] = {&w.dZ, &w.dZn, &w.G, &w.dY, &w.Y2, &w.P, &w.t1, &w.t2};
    for (size_t i = 0; i < sizeof mm / sizeof *mm; i++) *mm[i] = p, p += M * M;
    return w;
}

/* ------------------------------------------------------------------------ */
/* Small kernels                                                             */

static float mask_at(const NystromShape *s, size_t b, size_t t) { return s->mask ? s->mask[b * s->T + t] : 1.0f; }

/* The T rows of batch row b, `width` floats each: dst[t] = src[t] ⊙ mask[b, t] / d^(1/4)
 * (row strides ld_dst, ld_src; dst may be src). The scaling of Q and K, and
 * in backward the same factor on their gradients. */
static void mask_scale(float *dst, size_t ld_dst, const float *src, size_t ld_src, size_t width, const NystromShape *s,
                       size_t b) {
    const float scale = 1.0f / sqrtf(sqrtf((float)s->d));
    for (size_t t = 0; t < s->T; t++) {
        const float f = mask_at(s, b, t) * scale;
        for (size_t c = 0; c < width; c++) dst[t * ld_dst + c] = src[t * ld_src + c] * f;
    }
}

/* out (T x d): head h of batch row b of x (B, T, H d), masked and scaled. */
static void scaled_masked(float *out, const float *x, const NystromShape *s, size_t b, size_t h) {
    const size_t HD = s->H * s->d;
    mask_scale(out, s->d, x + b * s->T * HD + h * s->d, HD, s->d, s, b);
}

/* means (M x d) of the segments of x (T x d); rows past T are zero. */
static void segment_means(float *means, const float *x, const NystromShape *s) {
    const size_t l = segment(s), d = s->d;
    memset(means, 0, s->M * d * sizeof(float));
    for (size_t t = 0; t < s->T; t++)
        for (size_t c = 0; c < d; c++) means[(t / l) * d + c] += x[t * d + c];
    const float inv = 1.0f / (float)l;
    for (size_t i = 0; i < s->M * d; i++) means[i] *= inv;
}

/* dx[t] += dmeans[t / l] / l for the T real rows; dx row stride ld. */
static void segment_means_backward(float *dx, size_t ld, const float *dmeans, const NystromShape *s) {
    const size_t l = segment(s), d = s->d;
    const float inv = 1.0f / (float)l;
    for (size_t t = 0; t < s->T; t++)
        for (size_t c = 0; c < d; c++) dx[t * ld + c] += dmeans[(t / l) * d + c] * inv;
}

/* Each row of x (n x m) becomes softmax(row - 1e9 (1 - key_mask)); key_mask
 * (m) or NULL. The additive -1e9 is the original's: a row whose keys are all
 * padding becomes uniform, as there. */
static void softmax_rows(float *x, size_t n, size_t m, const float *key_mask) {
    for (size_t i = 0; i < n; i++) {
        float *r = x + i * m, mx = -INFINITY, sum = 0.0f;
        if (key_mask)
            for (size_t j = 0; j < m; j++) r[j] -= 1e9f * (1.0f - key_mask[j]);
        for (size_t j = 0; j < m; j++) mx = r[j] > mx ? r[j] : mx;
        for (size_t j = 0; j < m; j++) sum += r[j] = expf(r[j] - mx);
        const float inv = 1.0f / sum;
        for (size_t j = 0; j < m; j++) r[j] *= inv;
    }
}

/* dp (n x m) becomes the gradient of the scores: p ⊙ (dp - rowsum(dp ⊙ p)). */
static void softmax_rows_backward(float *dp, const float *p, size_t n, size_t m) {
    for (size_t i = 0; i < n; i++) {
        float *g = dp + i * m, dot = 0.0f;
        const float *r = p + i * m;
        for (size_t j = 0; j < m; j++) dot += g[j] * r[j];
        for (size_t j = 0; j < m; j++) g[j] = r[j] * (g[j] - dot);
    }
}

/* x (M x M) = a x + b I. */
static void add_identity(float *x, size_t M, float a, float b) {
    for (size_t i = 0; i < M * M; i++) x[i] *= a;
    for (size_t i = 0; i < M; i++) x[i * M + i] += b;
}

/* P = 13I - Y(15I - Y(7I - Y)), the original's nesting; t1, t2 scratch. */
static void pinv_polynomial(float *P, const float *Y, size_t M, float *t1, float *t2) {
    memcpy(t1, Y, M * M * sizeof(float));
    add_identity(t1, M, -1.0f, 7.0f);
    gemm(false, false, M, M, M, 1.0f, Y, M, t1, M, 0.0f, t2, M);
    add_identity(t2, M, -1.0f, 15.0f);
    gemm(false, false, M, M, M, 1.0f, Y, M, t2, M, 0.0f, P, M);
    add_identity(P, M, -1.0f, 13.0f);
}

void nystrom_pinv(float *Z, float *Y, const float *A, size_t M, int iterations, float c, float *work) {
    const size_t MM = M * M;
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < M; j++) Z[i * M + j] = A[j * M + i] / c;
    for (int it = 0; it < iterations; it++) {
        float *Zk = Z + (size_t)it * MM, *Yk = Y + (size_t)it * MM;
        gemm(false, false, M, M, M, 1.0f, A, M, Zk, M, 0.0f, Yk, M);
        pinv_polynomial(work, Yk, M, work + MM, work + 2 * MM);
        gemm(false, false, M, M, M, 0.25f, Zk, M, work, M, 0.0f, Zk + MM, M);
    }
}

/* The largest column sum of A and its column. */
static float max_column_sum(const float *A, size_t M, size_t *col) {
    float best = -INFINITY;
    for (size_t j = 0; j < M; j++) {
        float sum = 0.0f;
        for (size_t i = 0; i < M; i++) sum += A[i * M + j];
        if (sum > best) best = sum, *col = j;
    }
    return best;
}

/* The scale c of Z0 (the largest column sum of the A of matrices first ..
 * last - 1) and where it is: the matrix and column whose A receives dc in
 * backward. Recomputed by backward from the saved A, so nothing but A is kept. */
typedef struct {
    float c;
    size_t bh, col;
} PinvScale;

static PinvScale pinv_scale_over(const NystromShape *s, const float *saved, size_t first, size_t last) {
    PinvScale best = {.c = -INFINITY};
    for (size_t i = first; i < last; i++) {
        size_t col = 0;
        const float c = max_column_sum(saved_at(s, (float *)saved, i).A, s->M, &col);
        if (c > best.c) best = (PinvScale){.c = c, .bh = i, .col = col};
    }
    return best;
}

/* The original's one scale over the batch and heads; per_matrix: filled in per (b, h). */
static PinvScale shared_scale(const NystromShape *s, const float *saved) {
    return s->per_matrix ? (PinvScale){0} : pinv_scale_over(s, saved, 0, s->B * s->H);
}

static PinvScale scale_of(const NystromShape *s, const float *saved, const PinvScale *shared, size_t bh) {
    return s->per_matrix ? pinv_scale_over(s, saved, bh, bh + 1) : *shared;
}

/* ------------------------------------------------------------------------ */
/* Forward                                                                   */

/* The three softmax kernels and the landmarks of (b, h). */
static void kernels_forward(const NystromShape *s, Saved *v, Work *w, const float *q, const float *k, size_t b,
                            size_t h) {
    const size_t T = s->T, M = s->M, d = s->d;
    scaled_masked(w->qs, q, s, b, h);
    scaled_masked(w->ks, k, s, b, h);
    segment_means(v->Qt, w->qs, s);
    segment_means(v->Kt, w->ks, s);
    gemm(false, true, T, M, d, 1.0f, w->qs, d, v->Kt, d, 0.0f, v->F, M);
    softmax_rows(v->F, T, M, NULL);
    gemm(false, true, M, M, d, 1.0f, v->Qt, d, v->Kt, d, 0.0f, v->A, M);
    softmax_rows(v->A, M, M, NULL);
    gemm(false, true, M, T, d, 1.0f, v->Qt, d, w->ks, d, 0.0f, v->Bm, T);
    softmax_rows(v->Bm, M, T, s->mask ? s->mask + b * T : NULL);
}

/* Z_0 ... Z_n of the iteration, then X = (F Z_n)(Bm V) into o. */
static void product_forward(const NystromShape *s, Saved *v, Work *w, const float *vv, float *o, float c, size_t b,
                            size_t h) {
    const size_t T = s->T, M = s->M, d = s->d, HD = s->H * d, MM = M * M;
    nystrom_pinv(v->Z, v->Y, v->A, M, s->iterations, c, w->P);
    const float *Zn = v->Z + (size_t)s->iterations * MM;
    const size_t row = b * T * HD + h * d;
    gemm(false, false, T, M, M, 1.0f, v->F, M, Zn, M, 0.0f, v->W, M);
    gemm(false, false, M, d, T, 1.0f, v->Bm, T, vv + row, HD, 0.0f, v->U, d);
    gemm(false, false, T, d, M, 1.0f, v->W, M, v->U, d, 0.0f, o + row, HD);
}

static AttentionShape exact_shape(const NystromShape *s) {
    const size_t HD = s->H * s->d;
    return (AttentionShape){.B = s->B, .T = s->T, .H = s->H, .d = s->d, .ldq = HD, .ldk = HD, .ldv = HD,
                            .ldo = HD, .hq = s->d, .hk = s->d, .hv = s->d, .ho = s->d, .scale = 1.0f,
                            .key_mask = s->mask};
}

/* Every head of every batch row: dst (B, T, H d) from src (may be dst). */
static void mask_scale_all(float *dst, const float *src, const NystromShape *s) {
    const size_t HD = s->H * s->d;
#pragma omp parallel for
    for (size_t b = 0; b < s->B; b++) mask_scale(dst + b * s->T * HD, HD, src + b * s->T * HD, HD, HD, s, b);
}

static void exact_forward(float *o, float *saved, const float *q, const float *k, const float *v,
                          const NystromShape *s, float *scratch) {
    const size_t N = s->B * s->T * s->H * s->d;
    float *qs = scratch, *ks = qs + N, *out = saved, *lse = saved + N;
    AttentionShape sh = exact_shape(s);
    mask_scale_all(qs, q, s);
    mask_scale_all(ks, k, s);
    attention_forward(out, lse, qs, ks, v, &sh, ks + N);
    memcpy(o, out, N * sizeof(float));
}

void nystrom_attention_forward(float *o, float *saved, const float *q, const float *k, const float *v, const NystromShape *s,
                     float *scratch) {
    if (nystrom_attention_exact(s)) {
        exact_forward(o, saved, q, k, v, s, scratch);
        return;
    }
    const size_t BH = s->B * s->H;
#pragma omp parallel for schedule(dynamic)
    for (size_t bh = 0; bh < BH; bh++) {
        Saved sv = saved_at(s, saved, bh);
        Work w = work_for_thread(s, scratch);
        kernels_forward(s, &sv, &w, q, k, bh / s->H, bh % s->H);
    }
    /* c couples the matrices: every A first, then the iterations */
    const PinvScale shared = shared_scale(s, saved);
#pragma omp parallel for schedule(dynamic)
    for (size_t bh = 0; bh < BH; bh++) {
        Saved sv = saved_at(s, saved, bh);
        Work w = work_for_thread(s, scratch);
        product_forward(s, &sv, &w, v, o, scale_of(s, saved, &shared, bh).c, bh / s->H, bh % s->H);
    }
}

/* ------------------------------------------------------------------------ */
/* Backward                                                                  */

/* dZ_k from dZ_{k+1} through Z_{k+1} = Z_k P_k / 4, P_k = 13I - 15Y + 7Y^2 - Y^3,
 * Y = A Z_k; adds the A part to dA. In: w->dZ = dZ_{k+1}; out: w->dZ = dZ_k. */
static void iteration_backward(const NystromShape *s, const Saved *v, Work *w, float *dA, int it) {
    const size_t M = s->M, MM = M * M;
    const float *Z = v->Z + (size_t)it * MM, *Y = v->Y + (size_t)it * MM;
    pinv_polynomial(w->P, Y, M, w->t1, w->t2);
    gemm(false, false, M, M, M, 1.0f, Y, M, Y, M, 0.0f, w->Y2, M);
    gemm(false, true, M, M, M, 0.25f, w->dZ, M, w->P, M, 0.0f, w->dZn, M); /* direct path */
    gemm(true, false, M, M, M, 0.25f, Z, M, w->dZ, M, 0.0f, w->G, M);      /* G = dP */
    /* dY = -15G + 7(G Y^T + Y^T G) - (G (Y^2)^T + Y^T G Y^T + (Y^2)^T G) */
    gemm(false, true, M, M, M, 1.0f, w->G, M, Y, M, 0.0f, w->t1, M);        /* t1 = G Y^T */
    for (size_t i = 0; i < MM; i++) w->dY[i] = -15.0f * w->G[i] + 7.0f * w->t1[i];
    gemm(true, false, M, M, M, 7.0f, Y, M, w->G, M, 1.0f, w->dY, M);
    gemm(false, true, M, M, M, -1.0f, w->G, M, w->Y2, M, 1.0f, w->dY, M);
    gemm(true, false, M, M, M, -1.0f, Y, M, w->t1, M, 1.0f, w->dY, M);
    gemm(true, false, M, M, M, -1.0f, w->Y2, M, w->G, M, 1.0f, w->dY, M);
    /* Y = A Z_k */
    gemm(false, true, M, M, M, 1.0f, w->dY, M, Z, M, 1.0f, dA, M);
    gemm(true, false, M, M, M, 1.0f, v->A, M, w->dY, M, 1.0f, w->dZn, M);
    memcpy(w->dZ, w->dZn, MM * sizeof(float));
}

/* First pass over (b, h): everything that does not wait for dc. Writes dq,
 * dk (the parts through F and Bm, before the final scaling) and dv; keeps dA
 * (without the dc term), dQ~ and dK~ (without A's part) and dc in `pass`. */
static void head_backward(const NystromShape *s, const Saved *v, Work *w, float *pass, float c, float *dq, float *dk,
                          float *dv, const float *do_, const float *q, const float *k, const float *vv, size_t b,
                          size_t h) {
    const size_t T = s->T, M = s->M, d = s->d, HD = s->H * d, MM = M * M, row = b * T * HD + h * d;
    float *dA = pass, *dQt = dA + MM, *dKt = dQt + M * d, *dc = dKt + M * d;
    const float *Zn = v->Z + (size_t)s->iterations * MM;
    /* X = W U, W = F Z_n, U = Bm V */
    gemm(false, true, T, M, d, 1.0f, do_ + row, HD, v->U, d, 0.0f, w->dW, M);
    gemm(true, false, M, d, T, 1.0f, v->W, M, do_ + row, HD, 0.0f, w->dU, d);
    gemm(false, true, T, M, M, 1.0f, w->dW, M, Zn, M, 0.0f, w->dF, M);
    gemm(true, false, M, M, T, 1.0f, v->F, M, w->dW, M, 0.0f, w->dZ, M);
    gemm(false, true, M, T, d, 1.0f, w->dU, d, vv + row, HD, 0.0f, w->dBm, T);
    gemm(true, false, T, d, M, 1.0f, v->Bm, T, w->dU, d, 0.0f, dv + row, HD);
    /* the iteration, then Z_0 = A^T / c */
    memset(dA, 0, MM * sizeof(float));
    for (int it = s->iterations - 1; it >= 0; it--) iteration_backward(s, v, w, dA, it);
    double dot = 0.0;
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < M; j++) {
            dA[j * M + i] += w->dZ[i * M + j] / c;
            dot += (double)w->dZ[i * M + j] * v->A[j * M + i];
        }
    *dc = (float)(-dot / ((double)c * c));
    /* F = softmax(Qs Kt^T), Bm = softmax(Qt Ks^T - mask) */
    scaled_masked(w->qs, q, s, b, h);
    scaled_masked(w->ks, k, s, b, h);
    softmax_rows_backward(w->dF, v->F, T, M);
    gemm(false, false, T, d, M, 1.0f, w->dF, M, v->Kt, d, 0.0f, dq + row, HD);
    gemm(true, false, M, d, T, 1.0f, w->dF, M, w->qs, d, 0.0f, dKt, d);
    softmax_rows_backward(w->dBm, v->Bm, M, T);
    gemm(false, false, M, d, T, 1.0f, w->dBm, T, w->ks, d, 0.0f, dQt, d);
    gemm(true, false, T, d, M, 1.0f, w->dBm, T, v->Qt, d, 0.0f, dk + row, HD);
}

/* Second pass: dA gets dc at the column that set c; then A's softmax, the
 * landmark means and the scaling of Q and K. */
static void landmarks_backward(const NystromShape *s, const Saved *v, float *pass, float dc, const PinvScale *ps,
                               float *dq, float *dk, size_t bh) {
    const size_t T = s->T, M = s->M, d = s->d, HD = s->H * d, MM = M * M, b = bh / s->H, h = bh % s->H;
    float *dA = pass, *dQt = dA + MM, *dKt = dQt + M * d;
    if (ps->bh == bh)
        for (size_t i = 0; i < M; i++) dA[i * M + ps->col] += dc;
    softmax_rows_backward(dA, v->A, M, M);
    gemm(false, false, M, d, M, 1.0f, dA, M, v->Kt, d, 1.0f, dQt, d);
    gemm(true, false, M, d, M, 1.0f, dA, M, v->Qt, d, 1.0f, dKt, d);
    float *dqh = dq + b * T * HD + h * d, *dkh = dk + b * T * HD + h * d;
    segment_means_backward(dqh, HD, dQt, s);
    segment_means_backward(dkh, HD, dKt, s);
    mask_scale(dqh, HD, dqh, HD, d, s, b);
    mask_scale(dkh, HD, dkh, HD, d, s, b);
}

static void exact_backward(float *dq, float *dk, float *dv, const float *do_, const float *q, const float *k,
                           const float *v, const float *saved, const NystromShape *s, float *scratch) {
    const size_t N = s->B * s->T * s->H * s->d;
    float *qs = scratch, *ks = qs + N;
    AttentionShape sh = exact_shape(s);
    mask_scale_all(qs, q, s);
    mask_scale_all(ks, k, s);
    attention_backward(dq, dk, dv, do_, qs, ks, v, saved, saved + N, &sh, ks + N);
    mask_scale_all(dq, dq, s);
    mask_scale_all(dk, dk, s);
}

void nystrom_attention_backward(float *dq, float *dk, float *dv, const float *do_, const float *q, const float *k,
                      const float *v, const float *saved, const NystromShape *s, float *scratch) {
    if (nystrom_attention_exact(s)) {
        exact_backward(dq, dk, dv, do_, q, k, v, saved, s, scratch);
        return;
    }
    const size_t BH = s->B * s->H, per = pass_floats(s);
    float *passes = scratch + (size_t)omp_get_max_threads() * work_floats(s);
    const PinvScale shared = shared_scale(s, saved);
#pragma omp parallel for schedule(dynamic)
    for (size_t bh = 0; bh < BH; bh++) {
        Saved sv = saved_at(s, (float *)saved, bh);
        Work w = work_for_thread(s, scratch);
        head_backward(s, &sv, &w, passes + bh * per, scale_of(s, saved, &shared, bh).c, dq, dk, dv, do_, q, k, v,
                      bh / s->H, bh % s->H);
    }
    /* dc of the shared scale: the sum over every matrix, in a fixed order */
    float shared_dc = 0.0f;
    for (size_t bh = 0; !s->per_matrix && bh < BH; bh++) shared_dc += passes[bh * per + per - 1];
#pragma omp parallel for schedule(dynamic)
    for (size_t bh = 0; bh < BH; bh++) {
        const PinvScale ps = scale_of(s, saved, &shared, bh);
        Saved sv = saved_at(s, (float *)saved, bh);
        landmarks_backward(s, &sv, passes + bh * per, s->per_matrix ? passes[bh * per + per - 1] : shared_dc, &ps,
                           dq, dk, bh);
    }
}
