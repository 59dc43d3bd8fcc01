/* test_ops.c — the stateless kernels of src/ops: finite-difference
 * gradients of each, and the attention core against a naive T x T reference. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/rng.h"
#include "../src/core/threads.h"
#include "../src/ops/fastmath.h"
#include "../src/ops/ops.h"
#include "gradcheck.h"
#include "test.h"
#include "tolerance.h"

static float *randn(size_t n, float std, uint64_t stream) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    Rng r = rng_make(3, rng_stream(RNG_TEST, stream, 100));
    for (size_t i = 0; i < n; i++) x[i] = std * rng_normal(&r);
    return x;
}

/* ---- one closure type for the elementwise and row ops ---- */
typedef struct {
    size_t N, C;
    float *x, *w, *b, *y, *r, *mean, *rstd;
    Activation act;
    float p;
} OpCtx;

static double layernorm_loss(void *ctx, double *abs_sum) {
    OpCtx *o = ctx;
    layernorm_forward(o->y, o->mean, o->rstd, o->x, o->w, o->b, o->N, o->C);
    return weighted_sum(o->y, o->r, o->N * o->C, abs_sum);
}

TEST(layernorm_gradients) {
    OpCtx o = {.N = 6, .C = 10};
    size_t n = o.N * o.C;
    o.x = randn(n, 1.5f, 1), o.w = randn(o.C, 1.0f, 2), o.b = randn(o.C, 1.0f, 3), o.r = randn(n, 1.0f, 4);
    o.y = malloc(n * sizeof(float)), o.mean = malloc(o.N * sizeof(float)), o.rstd = malloc(o.N * sizeof(float));
    float *dx = malloc(n * sizeof(float)), *dw = calloc(o.C, sizeof(float)), *db = calloc(o.C, sizeof(float));
    layernorm_forward(o.y, o.mean, o.rstd, o.x, o.w, o.b, o.N, o.C);
    layernorm_backward(dx, dw, db, o.r, o.x, o.mean, o.rstd, o.w, o.N, o.C, false);
    CHECK(gradcheck("dx", o.x, dx, n, layernorm_loss, &o, 1e-2f, 60, NULL) == 0, "layernorm dx");
    CHECK(gradcheck("dw", o.w, dw, o.C, layernorm_loss, &o, 1e-2f, 60, NULL) == 0, "layernorm dw");
    CHECK(gradcheck("db", o.b, db, o.C, layernorm_loss, &o, 1e-2f, 60, NULL) == 0, "layernorm db");
    /* the saved statistics normalise each row to mean 0 and variance 1 */
    for (size_t n = 0; n < o.N; n++) {
        double m = 0, v = 0;
        for (size_t c = 0; c < o.C; c++) m += (o.x[n * o.C + c] - o.mean[n]) * o.rstd[n];
        for (size_t c = 0; c < o.C; c++) v += pow((o.x[n * o.C + c] - o.mean[n]) * o.rstd[n], 2);
        CHECK(fabs(m / o.C) < 1e-5 && fabs(v / o.C - 1.0) < 1e-3, "row %zu: mean %.3g, variance %.6f", n, m / o.C,
              v / o.C);
    }
    free(o.x), free(o.w), free(o.b), free(o.r), free(o.y), free(o.mean), free(o.rstd), free(dx), free(dw), free(db);
}

static double activation_loss(void *ctx, double *abs_sum) {
    OpCtx *o = ctx;
    activation_forward(o->y, o->x, o->N, o->act);
    return weighted_sum(o->y, o->r, o->N, abs_sum);
}

TEST(activation_gradients) {
    const char *names[] = {"relu", "gelu", "gelu_tanh", "silu", "relu2", "laplace"};
    for (int k = 0; k < 6; k++) {
        OpCtx o = {.N = 64};
        REQUIRE(activation_parse(names[k], &o.act) == 0, "parse %s", names[k]);
        o.x = randn(o.N, 2.0f, 5), o.r = randn(o.N, 1.0f, 6), o.y = malloc(o.N * sizeof(float));
        /* ReLU is not differentiable at 0: keep samples away from it */
        for (size_t i = 0; i < o.N; i++)
            if (fabsf(o.x[i]) < 0.05f) o.x[i] = 0.5f;
        float *dx = malloc(o.N * sizeof(float)), *y = malloc(o.N * sizeof(float));
        activation_grad(y, dx, o.x, o.N, o.act);
        activation_forward(o.y, o.x, o.N, o.act);
        CHECK(memcmp(y, o.y, o.N * sizeof(float)) == 0, "%s: activation_grad's values differ from the forward's",
              names[k]);
        for (size_t i = 0; i < o.N; i++) dx[i] *= o.r[i]; /* the loss is sum r * act(x) */
        CHECK(gradcheck(names[k], o.x, dx, o.N, activation_loss, &o, 1e-2f, 64, NULL) == 0, "%s dx", names[k]);
        free(o.x), free(o.r), free(o.y), free(dx), free(y);
    }
    float x[3] = {-1.0f, 0.5f, 2.0f}, y[3];
    activation_forward(y, x, 3, ACT_GELU);
    CHECK(fabsf(y[0] - (-0.15865525f)) < 1e-6f && fabsf(y[2] - 1.9544997f) < 1e-6f, "gelu values %g %g", y[0],
          y[2]);
    /* MEGA's attention functions (spec mega-seqboat.md §1.1, §4.11: laplace(mu) = 0.5, relu2(-1) = 0) against
     * their definitions in double */
    float z[5] = {-1.0f, 0.0f, 0.7071068f, 1.3f, 3.0f}, out[5];
    activation_forward(out, z, 5, ACT_RELU2);
    CHECK(out[0] == 0.0f && out[1] == 0.0f && fabsf(out[3] - 1.69f) < 1e-6f && out[4] == 9.0f, "relu2 %g %g %g", out[0],
          out[3], out[4]);
    activation_forward(out, z, 5, ACT_LAPLACE);
    for (int i = 0; i < 5; i++) {
        const double want = 0.5 * (1.0 + erf((z[i] - sqrt(0.5)) / (sqrt(1.0 / (4.0 * M_PI)) * sqrt(2.0))));
        CHECK(fabs(out[i] - want) < 3e-7, "laplace(%g) = %.9g, want %.9g", z[i], out[i], want);
    }
    CHECK(fabsf(out[2] - 0.5f) < 1e-6f, "laplace(mu) = %g", out[2]);
    Activation a;
    CHECK(activation_parse("swish", &a) != 0, "unknown activation accepted");
}

static double dropout_loss(void *ctx, double *abs_sum) {
    OpCtx *o = ctx;
    DropoutKey k = {o->p, 9, 77, 0};
    dropout_forward(o->y, o->x, o->N, &k);
    return weighted_sum(o->y, o->r, o->N, abs_sum);
}

TEST(dropout_mask_and_gradient) {
    OpCtx o = {.N = 4000, .p = 0.3f};
    o.x = randn(o.N, 1.0f, 7), o.r = randn(o.N, 1.0f, 8), o.y = malloc(o.N * sizeof(float));
    float *dx = malloc(o.N * sizeof(float));
    DropoutKey key = {o.p, 9, 77, 0};
    dropout_forward(o.y, o.x, o.N, &key);
    size_t dropped = 0;
    for (size_t i = 0; i < o.N; i++) {
        if (o.y[i] == 0.0f) dropped++;
        else CHECK(fabsf(o.y[i] - o.x[i] / 0.7f) < 1e-6f, "kept element %zu not scaled by 1/(1-p)", i);
    }
    CHECK(dropped > 1100 && dropped < 1300, "dropped %zu of 4000 at p = 0.3", dropped);
    dropout_backward(dx, o.r, o.N, &key);
    CHECK(gradcheck("dropout", o.x, dx, o.N, dropout_loss, &o, 1e-2f, 50, NULL) == 0, "dropout dx");
    /* a different stream gives a different mask */
    float *y2 = malloc(o.N * sizeof(float));
    DropoutKey other = {o.p, 9, 78, 0};
    dropout_forward(y2, o.x, o.N, &other);
    CHECK(memcmp(y2, o.y, o.N * sizeof(float)) != 0, "streams 77 and 78 gave the same mask");
    /* a slice starting at element 1001 gets exactly the whole tensor's mask there */
    DropoutKey slice = {o.p, 9, 77, 1001};
    dropout_forward(y2, o.x + 1001, 500, &slice);
    CHECK(memcmp(y2, o.y + 1001, 500 * sizeof(float)) == 0, "a slice's mask differs from the whole tensor's");
    free(o.x), free(o.r), free(o.y), free(dx), free(y2);
}

/* ---- linear, embedding and positions, cross-entropy ---- */
typedef struct {
    size_t N, in, out, V;
    float *x, *w, *b, *y, *r;
    int32_t *ids, *targets;
    float *losses;
} LinCtx;

static double linear_loss(void *ctx, double *abs_sum) {
    LinCtx *o = ctx;
    linear_forward(o->y, o->x, o->w, o->b, o->N, o->in, o->out);
    return weighted_sum(o->y, o->r, o->N * o->out, abs_sum);
}

TEST(linear_gradients) {
    LinCtx o = {.N = 5, .in = 7, .out = 4};
    o.x = randn(o.N * o.in, 1, 9), o.w = randn(o.out * o.in, 1, 10), o.b = randn(o.out, 1, 11);
    o.r = randn(o.N * o.out, 1, 12), o.y = malloc(o.N * o.out * sizeof(float));
    float *dx = malloc(o.N * o.in * sizeof(float)), *dw = calloc(o.out * o.in, sizeof(float)),
          *db = calloc(o.out, sizeof(float));
    linear_backward(dx, dw, db, o.r, o.x, o.w, o.N, o.in, o.out, false);
    CHECK(gradcheck("dx", o.x, dx, o.N * o.in, linear_loss, &o, 1e-2f, 40, NULL) == 0, "linear dx");
    CHECK(gradcheck("dw", o.w, dw, o.out * o.in, linear_loss, &o, 1e-2f, 40, NULL) == 0, "linear dw");
    CHECK(gradcheck("db", o.b, db, o.out, linear_loss, &o, 1e-2f, 40, NULL) == 0, "linear db");
    free(o.x), free(o.w), free(o.b), free(o.r), free(o.y), free(dx), free(dw), free(db);
}

static double crossentropy_loss(void *ctx, double *abs_sum) {
    LinCtx *o = ctx;
    double s = crossentropy_forward(o->x, o->losses, o->targets, o->N, o->V);
    *abs_sum = fabs(s);
    return s;
}

TEST(crossentropy_gradients_and_values) {
    LinCtx o = {.N = 6, .V = 9};
    o.x = randn(o.N * o.V, 2, 13);
    o.targets = malloc(o.N * sizeof(int32_t));
    o.losses = malloc(o.N * sizeof(float));
    for (size_t n = 0; n < o.N; n++) o.targets[n] = (int32_t)((n * 5) % o.V);
    float *g = malloc(o.N * o.V * sizeof(float));
    memcpy(g, o.x, o.N * o.V * sizeof(float));
    double fused = crossentropy_forward_backward(g, o.losses, o.targets, o.N, o.V, 1.0f);
    double plain = crossentropy_forward(o.x, o.losses, o.targets, o.N, o.V);
    CHECK(fabs(fused - plain) < 1e-9, "fused %.9g vs plain %.9g", fused, plain);
    /* reference value of row 0 in double */
    double m = -1e30, s = 0;
    for (size_t v = 0; v < o.V; v++) m = fmax(m, o.x[v]);
    for (size_t v = 0; v < o.V; v++) s += exp(o.x[v] - m);
    CHECK(fabs(o.losses[0] - (m + log(s) - o.x[o.targets[0]])) < 1e-5, "row 0 loss");
    CHECK(gradcheck("dlogits", o.x, g, o.N * o.V, crossentropy_loss, &o, 1e-2f, 54, NULL) == 0, "dlogits");
    free(o.x), free(o.targets), free(o.losses), free(g);
}

static double embedding_loss(void *ctx, double *abs_sum) {
    LinCtx *o = ctx; /* x = table (V, out), w = positions (N, out) */
    embedding_forward(o->y, o->ids, o->x, o->N, o->out);
    positions_add(o->y, o->w, 1, o->N, o->out);
    return weighted_sum(o->y, o->r, o->N * o->out, abs_sum);
}

TEST(embedding_and_position_gradients) {
    LinCtx o = {.N = 7, .out = 5, .V = 4};
    o.x = randn(o.V * o.out, 1, 14), o.w = randn(o.N * o.out, 1, 15), o.r = randn(o.N * o.out, 1, 16);
    o.y = malloc(o.N * o.out * sizeof(float));
    o.ids = malloc(o.N * sizeof(int32_t));
    for (size_t n = 0; n < o.N; n++) o.ids[n] = (int32_t)(n * 3 % o.V); /* repeated ids must add up */
    float *dtable = calloc(o.V * o.out, sizeof(float)), *dpos = calloc(o.N * o.out, sizeof(float));
    embedding_backward(dtable, o.r, o.ids, o.N, o.out, o.V);
    positions_backward(dpos, o.r, 1, o.N, o.out);
    CHECK(gradcheck("dtable", o.x, dtable, o.V * o.out, embedding_loss, &o, 1e-2f, 40, NULL) == 0, "dtable");
    CHECK(gradcheck("dpos", o.w, dpos, o.N * o.out, embedding_loss, &o, 1e-2f, 40, NULL) == 0, "dpos");
    free(o.x), free(o.w), free(o.r), free(o.y), free(o.ids), free(dtable), free(dpos);
}

TEST(sinusoidal_table_layout) {
    float table[3 * 8];
    sinusoidal_fill(table, 3, 8);
    CHECK(table[0] == 0.0f && table[4] == 1.0f, "t = 0: sin block 0, cos block 1");
    CHECK(fabsf(table[8 + 0] - sinf(1.0f)) < 1e-6f, "t = 1, j = 0");
    CHECK(fabsf(table[16 + 4 + 1] - (float)cos(2.0 * pow(10000.0, -2.0 / 8))) < 1e-6f, "t = 2, cos j = 1");
}

/* ---- attention core ---- */
/* Naive reference in double: full score matrix, optional causal mask and
 * band of `window` keys (0: none). */
static void attention_naive(double *o, const float *q, const float *k, const float *v, size_t B, size_t T, size_t H,
                            size_t d, bool causal, size_t window) {
    double *p = malloc(T * sizeof(double));
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < H; h++)
            for (size_t i = 0; i < T; i++) {
                size_t end = causal ? i + 1 : T;
                size_t start = window && i + 1 > window ? i + 1 - window : 0;
                if (window && !causal && i + window < end) end = i + window;
                double mx = -1e300, sum = 0;
                for (size_t j = start; j < end; j++) {
                    double s = 0;
                    for (size_t c = 0; c < d; c++) s += (double)q[(b * T + i) * H * d + h * d + c] * k[(b * T + j) * H * d + h * d + c];
                    p[j] = s / sqrt((double)d);
                    mx = fmax(mx, p[j]);
                }
                for (size_t j = start; j < end; j++) sum += (p[j] = exp(p[j] - mx));
                for (size_t c = 0; c < d; c++) {
                    double acc = 0;
                    for (size_t j = start; j < end; j++) acc += p[j] / sum * v[(b * T + j) * H * d + h * d + c];
                    o[(b * T + i) * H * d + h * d + c] = acc;
                }
            }
    free(p);
}

static AttentionShape plain_shape(size_t B, size_t T, size_t H, size_t d, bool causal) {
    AttentionShape s = {.B = B, .T = T, .H = H, .d = d, .ldq = H * d, .ldk = H * d, .ldv = H * d, .ldo = H * d,
                        .hq = d, .hk = d, .hv = d, .ho = d, .causal = causal, .scale = 1.0f / sqrtf((float)d)};
    return s;
}

TEST(attention_tiled_equals_naive) {
    const size_t lengths[] = {1, 5, 63, 64, 65, 130};
    const size_t windows[] = {0, 1, 5, 20, 64, 70};
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++)
        for (size_t wi = 0; wi < sizeof windows / sizeof windows[0]; wi++)
        for (int causal = 0; causal < 2; causal++) {
            const size_t B = 2, T = lengths[li], H = 2, d = 8, n = B * T * H * d;
            float *q = randn(n, 1, 20), *k = randn(n, 1, 21), *v = randn(n, 1, 22), *o = malloc(n * sizeof(float));
            float *lse = malloc(B * H * T * sizeof(float));
            double *ref = malloc(n * sizeof(double));
            AttentionShape s = plain_shape(B, T, H, d, causal);
            s.window = windows[wi];
            float *scratch = malloc(attention_scratch(&s) * sizeof(float));
            attention_forward(o, lse, q, k, v, &s, scratch);
            attention_naive(ref, q, k, v, B, T, H, d, causal, s.window);
            double worst = 0;
            for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(o[i] - ref[i]));
            /* against the exact form: scores over d, then the normaliser and the values over T keys */
            double tol = rounding_tolerance_exact((double)d + 2.0 * T, max_abs(v, n));
            CHECK(worst <= tol, "T %zu window %zu causal %d: max |tiled - naive| = %.3g (rounding: %.3g)", T, s.window,
                  causal, worst, tol);
            if (s.window == 1) /* each token sees only itself: output is v exactly */
                for (size_t i = 0; i < n; i++) CHECK(o[i] == v[i], "window 1: o != v at %zu", i);
            if (causal) /* row 0 sees only key 0: output is v_0 exactly */
                for (size_t c = 0; c < H * d; c++) CHECK(o[c] == v[c], "causal row 0 != v_0 at %zu", c);
            free(q), free(k), free(v), free(o), free(lse), free(ref), free(scratch);
        }
}

typedef struct {
    AttentionShape s;
    float *q, *k, *v, *o, *lse, *r, *scratch;
} AttnCtx;

static double attention_loss(void *ctx, double *abs_sum) {
    AttnCtx *a = ctx;
    attention_forward(a->o, a->lse, a->q, a->k, a->v, &a->s, a->scratch);
    return weighted_sum(a->o, a->r, a->s.B * a->s.T * a->s.H * a->s.d, abs_sum);
}

TEST(attention_core_gradients) {
    /* variants: causal, bidirectional, causal with a fixed dropout mask,
     * causal band of 5, bidirectional band of 20 */
    for (int variant = 0; variant < 5; variant++) {
        AttnCtx a;
        const size_t n = 2 * 67 * 2 * 4;
        a.s = plain_shape(2, 67, 2, 4, variant != 1 && variant != 4);
        a.s.window = variant == 3 ? 5 : variant == 4 ? 20 : 0;
        if (variant == 2) { /* fixed dropout mask */
            a.s.dropatt = 0.2f;
            a.s.seed = 4;
            a.s.stream = 99;
        }
        a.q = randn(n, 1, 30), a.k = randn(n, 1, 31), a.v = randn(n, 1, 32), a.r = randn(n, 1, 33);
        a.o = malloc(n * sizeof(float)), a.lse = malloc(2 * 2 * 67 * sizeof(float));
        a.scratch = malloc(attention_scratch(&a.s) * sizeof(float));
        float *dq = malloc(n * sizeof(float)), *dk = malloc(n * sizeof(float)), *dv = malloc(n * sizeof(float));
        attention_forward(a.o, a.lse, a.q, a.k, a.v, &a.s, a.scratch);
        attention_backward(dq, dk, dv, a.r, a.q, a.k, a.v, a.o, a.lse, &a.s, a.scratch);
        CHECK(gradcheck("dq", a.q, dq, n, attention_loss, &a, 1e-2f, 50, NULL) == 0, "variant %d dq", variant);
        CHECK(gradcheck("dk", a.k, dk, n, attention_loss, &a, 1e-2f, 50, NULL) == 0, "variant %d dk", variant);
        CHECK(gradcheck("dv", a.v, dv, n, attention_loss, &a, 1e-2f, 50, NULL) == 0, "variant %d dv", variant);
        free(a.q), free(a.k), free(a.v), free(a.r), free(a.o), free(a.lse), free(a.scratch), free(dq), free(dk),
            free(dv);
    }
}

TEST(attention_bidirectional_permutation_invariant) {
    const size_t T = 20, d = 4, n = T * d;
    float *q = randn(n, 1, 40), *k = randn(n, 1, 41), *v = randn(n, 1, 42);
    float *kp = malloc(n * sizeof(float)), *vp = malloc(n * sizeof(float));
    for (size_t j = 0; j < T; j++) { /* reverse the keys and values jointly */
        memcpy(kp + j * d, k + (T - 1 - j) * d, d * sizeof(float));
        memcpy(vp + j * d, v + (T - 1 - j) * d, d * sizeof(float));
    }
    AttentionShape s = plain_shape(1, T, 1, d, false);
    float *o1 = malloc(n * sizeof(float)), *o2 = malloc(n * sizeof(float)), *lse = malloc(T * sizeof(float));
    float *scratch = malloc(attention_scratch(&s) * sizeof(float));
    attention_forward(o1, lse, q, k, v, &s, scratch);
    attention_forward(o2, lse, q, kp, vp, &s, scratch);
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(o1[i] - o2[i]));
    double tol = rounding_tolerance((double)d + 2.0 * T, max_abs(v, n)); /* the keys summed in another order */
    CHECK(worst <= tol, "permuting keys changed the output by %.3g (rounding: %.3g)", worst, tol);
    free(q), free(k), free(v), free(kp), free(vp), free(o1), free(o2), free(lse), free(scratch);
}

/* ---- linear attention (spec attention.md §2.2) ---- */
/* The quadratic masked form in double:
 * out = (1/sqrt d) ((A B^T o tril) V) / ((A B^T o tril) 1 + eps); without
 * the causal mask, every key counts. */
static void linear_naive(double *o, const float *q, const float *k, const float *v, size_t T, size_t d, bool flip,
                         bool causal) {
    double *a = malloc(T * d * sizeof(double)), *b = malloc(T * d * sizeof(double));
    for (size_t t = 0; t < T; t++) {
        double sa = 0, sb = 0;
        for (size_t c = 0; c < d; c++) {
            double x = flip ? -q[t * d + c] : q[t * d + c], y = flip ? -k[t * d + c] : k[t * d + c];
            sa += a[t * d + c] = x > 0 ? x + 1 : exp(x);
            sb += b[t * d + c] = y > 0 ? y + 1 : exp(y);
        }
        for (size_t c = 0; c < d; c++) a[t * d + c] /= sa, b[t * d + c] /= sb;
    }
    for (size_t t = 0; t < T; t++) {
        double den = 0;
        for (size_t e = 0; e < d; e++) o[t * d + e] = 0;
        for (size_t j = 0; j < (causal ? t + 1 : T); j++) {
            double s = 0;
            for (size_t c = 0; c < d; c++) s += a[t * d + c] * b[j * d + c];
            den += s;
            for (size_t e = 0; e < d; e++) o[t * d + e] += s * v[j * d + e];
        }
        for (size_t e = 0; e < d; e++) o[t * d + e] = o[t * d + e] / sqrt((double)d) / (den + 1e-5);
    }
    free(a), free(b);
}

static LinearAttnShape linear_shape(size_t T, size_t d, size_t chunk, FeatureMap phi, bool causal) {
    LinearAttnShape s = {.io = plain_shape(1, T, 1, d, causal), .phi = phi, .chunk = chunk, .eps = 1e-5f};
    return s;
}

TEST(linear_attention_chunked_equals_quadratic_and_step) {
    const size_t T = 70, d = 8, chunks[] = {1, 3, 7, 64, 70, 100};
    float *q = randn(T * d, 1, 50), *k = randn(T * d, 1, 51), *v = randn(T * d, 1, 52), *o = malloc(T * d * 4);
    double *ref = malloc(T * d * sizeof(double));
    /* against the exact form: feature normalisation over d, the state and normaliser sums over T keys,
     * the query's products with them over d */
    const double tol = rounding_tolerance_exact(2.0 * d + 2.0 * T, max_abs(v, T * d));
    for (int variant = 0; variant < 4; variant++) { /* elu / elu_flip, causal / bidirectional */
        const bool flip = variant & 1, causal = variant < 2;
        linear_naive(ref, q, k, v, T, d, flip, causal);
        for (size_t ci = 0; ci < sizeof chunks / sizeof chunks[0]; ci++) {
            LinearAttnShape s = linear_shape(T, d, chunks[ci], flip ? FEATURE_ELU_FLIP : FEATURE_ELU, causal);
            float *saved = malloc(linear_attention_saved(&s) * sizeof(float));
            float *scratch = malloc(linear_attention_scratch(&s) * sizeof(float));
            linear_attention_forward(o, saved, q, k, v, &s, scratch);
            double worst = 0;
            for (size_t i = 0; i < T * d; i++) worst = fmax(worst, fabs(o[i] - ref[i]));
            CHECK(worst <= tol, "variant %d, chunk %zu: chunked vs quadratic %.3g (rounding: %.3g)", variant,
                  chunks[ci], worst, tol);
            free(saved), free(scratch);
        }
        if (!causal) continue;
        linear_naive(ref, q, k, v, T, d, flip, true);
        LinearAttnShape s = linear_shape(T, d, 64, flip ? FEATURE_ELU_FLIP : FEATURE_ELU, true);
        float *state = calloc(linear_attention_state(&s), sizeof(float)), out[8];
        double worst = 0;
        for (size_t t = 0; t < T; t++) {
            linear_attention_step(out, state, q + t * d, k + t * d, v + t * d, &s);
            for (size_t e = 0; e < d; e++) worst = fmax(worst, fabs(out[e] - ref[t * d + e]));
        }
        CHECK(worst <= tol, "kernel %d: step vs quadratic %.3g (rounding: %.3g)", flip, worst, tol);
        free(state);
    }
    /* causal: out_0 = v_0 / sqrt(d) * (a.b)/(a.b + eps), about v_0 / sqrt(d) */
    linear_naive(ref, q, k, v, T, d, false, true);
    CHECK(fabs(ref[0] - v[0] / sqrt(8.0)) < 1e-3 * fabs(v[0]) + 1e-6, "out_0 %.6g vs v_0/sqrt(d) %.6g", ref[0],
          v[0] / sqrt(8.0));
    free(q), free(k), free(v), free(o), free(ref);
}

typedef struct {
    LinearAttnShape s;
    float *q, *k, *v, *o, *r, *saved, *scratch;
} LinCtx2;

static double linear_attention_loss(void *ctx, double *abs_sum) {
    LinCtx2 *a = ctx;
    linear_attention_forward(a->o, a->saved, a->q, a->k, a->v, &a->s, a->scratch);
    return weighted_sum(a->o, a->r, a->s.io.B * a->s.io.T * a->s.io.H * a->s.io.d, abs_sum);
}

TEST(linear_attention_gradients) {
    /* chunk 16 (divides 48), 7 (does not), elu_flip; then the same bidirectional */
    for (int variant = 0; variant < 6; variant++) {
        LinCtx2 a;
        const size_t B = 2, T = 48, H = 2, d = 4, n = B * T * H * d;
        a.s = (LinearAttnShape){.io = plain_shape(B, T, H, d, variant < 3),
                                .phi = variant % 3 == 2 ? FEATURE_ELU_FLIP : FEATURE_ELU,
                                .chunk = variant % 3 == 1 ? 7 : 16, .eps = 1e-5f};
        a.q = randn(n, 1, 60), a.k = randn(n, 1, 61), a.v = randn(n, 1, 62), a.r = randn(n, 1, 63);
        a.o = malloc(n * sizeof(float));
        a.saved = malloc(linear_attention_saved(&a.s) * sizeof(float));
        a.scratch = malloc(linear_attention_scratch(&a.s) * sizeof(float));
        float *dq = malloc(n * sizeof(float)), *dk = malloc(n * sizeof(float)), *dv = malloc(n * sizeof(float));
        linear_attention_forward(a.o, a.saved, a.q, a.k, a.v, &a.s, a.scratch);
        linear_attention_backward(dq, dk, dv, a.r, 1.0f, false, a.q, a.k, a.v, a.o, a.saved, &a.s, a.scratch);
        CHECK(gradcheck("dq", a.q, dq, n, linear_attention_loss, &a, 1e-2f, 50, NULL) == 0, "variant %d dq", variant);
        CHECK(gradcheck("dk", a.k, dk, n, linear_attention_loss, &a, 1e-2f, 50, NULL) == 0, "variant %d dk", variant);
        CHECK(gradcheck("dv", a.v, dv, n, linear_attention_loss, &a, 1e-2f, 50, NULL) == 0, "variant %d dv", variant);
        free(a.q), free(a.k), free(a.v), free(a.r), free(a.o), free(a.saved), free(a.scratch), free(dq), free(dk),
            free(dv);
    }
}

/* ---- fastmath.h against libm in double ---- */

TEST(fastmath_accuracy) {
    double worst_exp = 0, worst_erf = 0, worst_tanh = 0;
    for (int i = -2000000; i <= 2000000; i++) {
        float x = (float)i * 4.4e-5f; /* [-88, 88] */
        double e = exp((double)x);
        if (x >= -87.3f && x <= 88.7f) worst_exp = fmax(worst_exp, fabs(fast_expf(x) - e) / e);
        float z = (float)i * 3e-6f; /* [-6, 6] */
        worst_erf = fmax(worst_erf, fabs(fast_erff(z) - erf((double)z)));
        double t = tanh((double)z);
        worst_tanh = fmax(worst_tanh, fabs(fast_tanhf(z) - t) / fmax(1.0, fabs(t) / fmax(fabs((double)z), 1e-30)));
    }
    CHECK(worst_exp < 3e-7, "fast_expf relative error %.3g", worst_exp);
    CHECK(worst_erf < 3e-7, "fast_erff absolute error %.3g", worst_erf);
    CHECK(worst_tanh < 3e-7, "fast_tanhf error %.3g", worst_tanh);
    CHECK(fast_expf(-100.0f) == 0.0f && fast_expf(-INFINITY) == 0.0f, "exp underflows to 0");
    CHECK(fast_erff(0.0f) == 0.0f && fast_tanhf(0.0f) == 0.0f && fast_erff(-0.3f) == -fast_erff(0.3f), "odd");
}

/* MEGA's simple relative bias (spec mega-seqboat.md §3.1, §3.5): the table
 * of a length n <= P is the slice of b around its middle, so bias[i][j] =
 * table[j - i + n - 1] is Toeplitz with b[P - 1] on the diagonal; beyond P
 * (SeqBoat) the offsets take b's end values; the gradient lands on the
 * entries each offset read (the table is linear in b: differences exact). */
TEST(relative_bias_table_and_gradient) {
    enum { P = 4 };
    float b[2 * P - 1], table[11], dtable[11], db[2 * P - 1];
    for (int m = 0; m < 2 * P - 1; m++) b[m] = (float)(m + 1) * 0.5f; /* distinct values */
    relative_bias_table(table, b, P, 3);
    CHECK(table[0] == b[1] && table[2] == b[P - 1] && table[4] == b[5], "n = 3: %g %g %g", table[0], table[2], table[4]);
    relative_bias_table(table, b, P, 6);
    const int want[11] = {0, 0, 0, 1, 2, 3, 4, 5, 6, 6, 6}; /* offsets -5 .. 5 read b[clamp(3 + offset)] */
    for (int k = 0; k < 11; k++) CHECK(table[k] == b[want[k]], "n = 6, offset %d: %g, want b[%d]", k - 5, table[k], want[k]);
    for (int k = 0; k < 11; k++) dtable[k] = (float)(k * k % 7) - 2.0f;
    memset(db, 0, sizeof db);
    relative_bias_backward(db, dtable, P, 6);
    for (int m = 0; m < 2 * P - 1; m++) { /* d/db[m] of sum_k dtable[k] table[k] */
        float bumped[2 * P - 1], t1[11];
        memcpy(bumped, b, sizeof b);
        bumped[m] += 1.0f;
        relative_bias_table(t1, bumped, P, 6);
        double diff = 0.0;
        for (int k = 0; k < 11; k++) diff += (double)dtable[k] * (t1[k] - table[k]);
        CHECK(fabs(db[m] - diff) < 1e-6, "db[%d] = %g, by differences %g", m, db[m], diff);
    }
}

/* MEGA's rotary bias (spec §3.2, §3.5): the closed form against rotating
 * alpha and beta at every (i, j) and taking their dot product in double
 * (which also checks that it depends on j - i alone), and its gradient
 * against central differences of sum_k w_k table_k. */
TEST(rotary_bias_matches_the_rotations) {
    enum { Z = 8, H = Z / 2, n = 5 };
    float *alpha = randn(Z, 0.5f, 11), *beta = randn(Z, 0.5f, 12), *w = randn(2 * n - 1, 1.0f, 13);
    float table[2 * n - 1];
    rotary_bias_table(table, alpha, beta, Z, n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double dot = 0.0;
            for (int m = 0; m < H; m++) {
                const double f = exp(-m * log(10000.0) / H), ci = cos(i * f), si = sin(i * f), cj = cos(j * f),
                             sj = sin(j * f);
                const double ra1 = alpha[m] * ci - alpha[m + H] * si, ra2 = alpha[m + H] * ci + alpha[m] * si;
                const double rb1 = beta[m] * cj - beta[m + H] * sj, rb2 = beta[m + H] * cj + beta[m] * sj;
                dot += ra1 * rb1 + ra2 * rb2;
            }
            CHECK(fabs(table[j - i + n - 1] - dot) < 1e-6, "bias[%d][%d] = %g, by rotation %g", i, j,
                  table[j - i + n - 1], dot);
        }
    float dalpha[Z] = {0}, dbeta[Z] = {0};
    rotary_bias_backward(dalpha, dbeta, w, alpha, beta, Z, n);
    for (int which = 0; which < 2; which++)
        for (int m = 0; m < Z; m++) {
            float *p = which ? beta : alpha, keep = p[m], t1[2 * n - 1], t2[2 * n - 1];
            const float h = 1e-2f;
            p[m] = keep + h;
            rotary_bias_table(t1, alpha, beta, Z, n);
            p[m] = keep - h;
            rotary_bias_table(t2, alpha, beta, Z, n);
            p[m] = keep;
            double diff = 0.0;
            for (int k = 0; k < 2 * n - 1; k++) diff += (double)w[k] * (t1[k] - t2[k]) / (2.0 * h);
            const float got = which ? dbeta[m] : dalpha[m];
            CHECK(fabs(got - diff) < 1e-4 * (1.0 + fabs(diff)), "d%s[%d] = %g, by differences %g",
                  which ? "beta" : "alpha", m, got, diff);
        }
    free(alpha), free(beta), free(w);
}
