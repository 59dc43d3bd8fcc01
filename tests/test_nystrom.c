/* test_nystrom.c — the nystrom mixer and its core (spec attention.md §5):
 * gradients through the unrolled pseudo-inverse, the pseudo-inverse against a
 * direct inverse, the exact path against softmax attention, padding and the
 * rounding of lengths to the landmarks, the batch coupling of the original's
 * pinv scale, and the configurations it refuses. The values of the whole
 * layer are checked against tests/ref/golden_nystrom.py in test_golden.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/rng.h"
#include "../src/core/safetensors.h"
#include "../src/ops/ops.h"
#include "rig.h"
#include "test.h"
#include "tolerance.h"

static void fill(float *x, size_t n, float std, uint64_t stream) {
    Rng r = rng_make(3, rng_stream(RNG_TEST, stream, 0));
    for (size_t i = 0; i < n; i++) x[i] = std * rng_normal(&r);
}

/* mask (B, T): row b keeps its first lengths[b] tokens. */
static void prefix_mask(float *mask, const size_t *lengths, size_t B, size_t T) {
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) mask[b * T + t] = t < lengths[b] ? 1.0f : 0.0f;
}

/* A bidirectional nystrom layer of the rig's shape (d_model 12, 3 heads of 4). */
static int build(Rig *rig, const char *entries, size_t B, size_t T) {
    Config c;
    rig_config(&c);
    c.causal = false;
    if (rig_set_entries(&c, entries)) return -1;
    return rig_build(rig, "nystrom", "mixer", &c, B, T);
}

TEST(nystrom_gradients) {
    static const struct {
        const char *label, *entries;
        size_t B, T, lengths[2];
    } cases[] = {
        {"approximate, 4 landmarks of 8 rows, conv 5, padding", "mixer.num_landmarks=4;mixer.conv_kernel_size=5", 2,
         32, {32, 27}},
        {"approximate, T 10 rounded to 12, per-matrix scale", "mixer.num_landmarks=4;mixer.pinv_init=per_matrix", 2, 10,
         {10, 7}},
        {"exact path (T <= landmarks), conv 3, padding", "mixer.num_landmarks=8;mixer.conv_kernel_size=3", 2, 7,
         {7, 5}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        Rig rig;
        REQUIRE(build(&rig, cases[i].entries, cases[i].B, cases[i].T) == 0, "%s: build", cases[i].label);
        float *mask = malloc(cases[i].B * cases[i].T * sizeof(float));
        prefix_mask(mask, cases[i].lengths, cases[i].B, cases[i].T);
        rig.ctx.mask = mask;
        int failures = rig_gradcheck(&rig, 40, 1e-2f);
        CHECK(failures == 0, "%s: %d gradient tensors off", cases[i].label, failures);
        rig_free(&rig);
        free(mask);
    }
}

/* ---- the pseudo-inverse ---- */

/* ||A Z - I||_F in double. */
static double residual(const float *A, const float *Z, size_t M) {
    double sum = 0.0;
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < M; j++) {
            double v = i == j ? -1.0 : 0.0;
            for (size_t k = 0; k < M; k++) v += (double)A[i * M + k] * Z[k * M + j];
            sum += v * v;
        }
    return sqrt(sum);
}

/* The inverse by Gauss-Jordan elimination with partial pivoting, in double. */
static void direct_inverse(double *inv, const float *A, size_t M) {
    double *a = malloc(M * M * sizeof(double));
    for (size_t i = 0; i < M * M; i++) a[i] = A[i], inv[i] = 0.0;
    for (size_t i = 0; i < M; i++) inv[i * M + i] = 1.0;
    for (size_t col = 0; col < M; col++) {
        size_t p = col;
        for (size_t r = col + 1; r < M; r++)
            if (fabs(a[r * M + col]) > fabs(a[p * M + col])) p = r;
        for (size_t j = 0; j < M; j++) {
            double t = a[col * M + j];
            a[col * M + j] = a[p * M + j], a[p * M + j] = t;
            t = inv[col * M + j];
            inv[col * M + j] = inv[p * M + j], inv[p * M + j] = t;
        }
        const double piv = a[col * M + col];
        for (size_t j = 0; j < M; j++) a[col * M + j] /= piv, inv[col * M + j] /= piv;
        for (size_t r = 0; r < M; r++) {
            if (r == col) continue;
            const double f = a[r * M + col];
            for (size_t j = 0; j < M; j++) a[r * M + j] -= f * a[col * M + j], inv[r * M + j] -= f * inv[col * M + j];
        }
    }
    free(a);
}

static float largest_column_sum(const float *A, size_t M) {
    float best = 0.0f;
    for (size_t j = 0; j < M; j++) {
        float s = 0.0f;
        for (size_t i = 0; i < M; i++) s += A[i * M + j];
        best = fmaxf(best, s);
    }
    return best;
}

/* The spec's oracle: A = 0.7 I + 0.3 11^T / M (M = 16) is inverted to
 * ||AZ - I||_F < 1e-5 in 6 iterations, the residual falling at every one
 * until float32 rounding is all that is left; and
 * on a random softmax matrix with a strong diagonal, Z is within the bound
 * ||Z - A^-1|| <= ||A^-1|| ||AZ - I|| of the direct inverse. */
TEST(nystrom_pinv_against_direct_inverse) {
    enum { M = 16, N = 6 };
    float A[M * M], Z[(N + 1) * M * M], Y[N * M * M], work[3 * M * M];
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < M; j++) A[i * M + j] = (i == j ? 0.7f : 0.0f) + 0.3f / M;
    nystrom_pinv(Z, Y, A, M, N, largest_column_sum(A, M), work);
    /* until it reaches float32's floor: M-term products of entries up to 1, over M^2 entries */
    const double floor = rounding_tolerance(M, M);
    double previous = INFINITY;
    for (int k = 0; k <= N; k++) {
        const double r = residual(A, Z + (size_t)k * M * M, M);
        CHECK(r < previous || previous < floor, "||AZ_%d - I|| = %.3g did not fall (before: %.3g)", k, r, previous);
        previous = r;
    }
    CHECK(previous < 1e-5, "after %d iterations ||AZ - I|| = %.3g", N, previous);

    fill(A, M * M, 0.5f, 1);
    for (size_t i = 0; i < M; i++) {
        float sum = 0.0f;
        A[i * M + i] += 4.0f;
        for (size_t j = 0; j < M; j++) sum += A[i * M + j] = expf(A[i * M + j]);
        for (size_t j = 0; j < M; j++) A[i * M + j] /= sum;
    }
    nystrom_pinv(Z, Y, A, M, N, largest_column_sum(A, M), work);
    const float *Zn = Z + (size_t)N * M * M;
    double inv[M * M], diff = 0.0, norm = 0.0;
    direct_inverse(inv, A, M);
    for (size_t i = 0; i < M * M; i++) diff += (Zn[i] - inv[i]) * (Zn[i] - inv[i]), norm += inv[i] * inv[i];
    const double r = residual(A, Zn, M);
    CHECK(r < 1e-4, "the softmax matrix did not converge: ||AZ - I|| = %.3g", r);
    CHECK(sqrt(diff) <= sqrt(norm) * r * 1.0001, "||Z - A^-1|| = %.3g exceeds ||A^-1|| ||AZ - I|| = %.3g", sqrt(diff),
          sqrt(norm) * r);
}

/* ---- the exact path ---- */

/* With T <= M the core is softmax(q k^T / sqrt(d) - 1e9 (1 - mask)) v with q
 * and k zeroed at padding: checked against that formula in double. */
TEST(nystrom_exact_path_is_masked_softmax) {
    enum { B = 2, T = 7, H = 2, d = 4, HD = H * d };
    const size_t lengths[B] = {7, 4};
    float q[B * T * HD], k[B * T * HD], v[B * T * HD], o[B * T * HD], mask[B * T];
    fill(q, B * T * HD, 1.0f, 2), fill(k, B * T * HD, 1.0f, 3), fill(v, B * T * HD, 1.0f, 4);
    prefix_mask(mask, lengths, B, T);
    const NystromShape s = {.B = B, .T = T, .H = H, .d = d, .M = 8, .iterations = 6, .mask = mask};
    REQUIRE(nystrom_attention_exact(&s), "T 7 with 8 landmarks must take the exact path");
    float *saved = calloc(nystrom_attention_saved(&s), sizeof(float));
    float *scratch = calloc(nystrom_attention_scratch(&s), sizeof(float));
    nystrom_attention_forward(o, saved, q, k, v, &s, scratch);
    double worst = 0.0;
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < H; h++)
            for (size_t i = 0; i < T; i++) {
                double p[T], sum = 0.0, mx = -INFINITY;
                for (size_t j = 0; j < T; j++) {
                    double dot = 0.0;
                    for (size_t c = 0; c < d; c++)
                        dot += (double)q[(b * T + i) * HD + h * d + c] * mask[b * T + i] *
                               k[(b * T + j) * HD + h * d + c] * mask[b * T + j];
                    p[j] = dot / sqrt((double)d) - 1e9 * (1.0 - mask[b * T + j]);
                    mx = fmax(mx, p[j]);
                }
                for (size_t j = 0; j < T; j++) sum += p[j] = exp(p[j] - mx);
                for (size_t c = 0; c < d; c++) {
                    double want = 0.0;
                    for (size_t j = 0; j < T; j++) want += p[j] / sum * v[(b * T + j) * HD + h * d + c];
                    worst = fmax(worst, fabs(want - o[(b * T + i) * HD + h * d + c]));
                }
            }
    /* scores over d, the normaliser and the values over T */
    const double tol = rounding_tolerance_exact(d + 2.0 * T, max_abs(v, B * T * HD));
    CHECK(worst <= tol, "exact path differs from the masked softmax by %.3g (rounding: %.3g)", worst, tol);
    free(saved);
    free(scratch);
}

/* ---- padding ---- */

/* Padded rows (mask 0) change nothing that real rows see: new values there
 * leave every output bit the same (their Q and K are zeroed, their V gets
 * weight exp(-1e9) = 0 and the convolution reads V ⊙ mask). */
TEST(nystrom_padding_content_is_invisible) {
    Rig rig;
    REQUIRE(build(&rig, "mixer.num_landmarks=4;mixer.conv_kernel_size=5", 2, 16) == 0, "build");
    const size_t lengths[2] = {16, 11}, n = 2 * 16 * rig.C;
    float mask[32], *first = malloc(n * sizeof(float));
    prefix_mask(mask, lengths, 2, 16);
    rig.ctx.mask = mask;
    rig.ctx.training = false;
    module_forward(rig.f, rig.x, rig.y, &rig.ctx);
    memcpy(first, rig.y, n * sizeof(float));
    fill(rig.x + (16 + 11) * rig.C, 5 * rig.C, 10.0f, 9);
    module_forward(rig.f, rig.x, rig.y, &rig.ctx);
    CHECK(memcmp(first, rig.y, n * sizeof(float)) == 0, "new values at padded rows changed the output by %.3g",
          max_diff(first, rig.y, n));
    rig_free(&rig);
    free(first);
}

/* A length that is not a multiple of the landmarks runs as if padded with
 * masked rows up to one: T = 10 with 4 landmarks equals T = 12 whose last two
 * rows are padding (segments of 3 rows; the padded rows count in the last
 * segment's mean as zeros). */
TEST(nystrom_uneven_length_equals_explicit_padding) {
    Rig ten, twelve;
    const char *entries = "mixer.num_landmarks=4;mixer.conv_kernel_size=3";
    REQUIRE(build(&ten, entries, 1, 10) == 0 && build(&twelve, entries, 1, 12) == 0, "build");
    memcpy(twelve.ps.values, ten.ps.values, ten.ps.total * sizeof(float));
    memcpy(twelve.x, ten.x, 10 * ten.C * sizeof(float));
    float mask[12];
    const size_t length = 10;
    prefix_mask(mask, &length, 1, 12);
    twelve.ctx.mask = mask;
    ten.ctx.training = twelve.ctx.training = false;
    module_forward(ten.f, ten.x, ten.y, &ten.ctx);
    module_forward(twelve.f, twelve.x, twelve.y, &twelve.ctx);
    const double diff = max_diff(ten.y, twelve.y, 10 * ten.C);
    /* projections (C), scores (d), softmaxes over M and T, the pinv's products (M each, 4 per iteration), W U (M) */
    const double tol = rounding_tolerance(2.0 * ten.C + 4 + 12 + 4 * 6 * 4 + 8, max_abs(ten.y, 10 * ten.C));
    CHECK(diff <= tol, "T 10 differs from T 12 with two padded rows by %.3g (rounding: %.3g)", diff, tol);
    rig_free(&ten);
    rig_free(&twelve);
}

/* ---- the scale of Z0 ---- */

/* per_matrix: a sequence's output does not depend on the rest of the batch.
 * global (the original): one c over every matrix of the batch couples them,
 * so changing the other sequence moves this one's output (slightly). */
TEST(nystrom_pinv_scale_couples_the_batch_only_when_global) {
    for (int per_matrix = 0; per_matrix < 2; per_matrix++) {
        Rig rig;
        REQUIRE(build(&rig, per_matrix ? "mixer.num_landmarks=4;mixer.pinv_init=per_matrix" : "mixer.num_landmarks=4",
                      2, 16) == 0,
                "build");
        const size_t row = 16 * rig.C;
        float *first = malloc(row * sizeof(float));
        rig.ctx.training = false;
        module_forward(rig.f, rig.x, rig.y, &rig.ctx);
        memcpy(first, rig.y, row * sizeof(float));
        fill(rig.x + row, row, 3.0f, 11); /* a very different second sequence */
        module_forward(rig.f, rig.x, rig.y, &rig.ctx);
        const double diff = max_diff(first, rig.y, row);
        if (per_matrix)
            CHECK(diff == 0.0, "per_matrix: the first sequence moved by %.3g with the second", diff);
        else
            CHECK(diff > rounding_tolerance(100.0, max_abs(first, row)),
                  "global: the first sequence did not move (%.3g) when the second changed the shared scale", diff);
        rig_free(&rig);
        free(first);
    }
}

/* ---- configurations ---- */

TEST(nystrom_refuses_what_it_cannot_run) {
    static const struct {
        const char *entries, *needle;
        bool causal;
    } cases[] = {
        {"mixer.num_landmarks=4", "bidirectional only", true},
        {"mixer.conv_kernel_size=4", "must be odd", false},
        {"mixer.num_landmarks=3;mixer.uneven=error;max_len=10", "not a multiple", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        Config c;
        rig_config(&c);
        c.causal = cases[i].causal;
        REQUIRE(rig_set_entries(&c, cases[i].entries) == 0, "entries %s", cases[i].entries);
        Error err = {0};
        ModuleSpec spec = {.cfg = &c, .kind = "mixer", .flat = true, .C_in = 12, .C_out = 12};
        snprintf(spec.name, sizeof spec.name, "nystrom");
        snprintf(spec.section[1], sizeof spec.section[1], "mixer");
        Module *m = module_build(&spec, &err);
        CHECK(!m && strstr(err.msg, cases[i].needle), "%s: expected an error with '%s', got %s", cases[i].entries,
              cases[i].needle, m ? "a module" : err.msg);
        module_free(m);
    }
}

/* ---- against the PyTorch reference, with padding ---- */

static int read_tensor(const StFile *f, const char *name, float *out, size_t n) {
    Error err = {0};
    const StTensorInfo *t = st_find(f, name);
    if (!t || st_read_as(f, t, ST_F32, out, n, &err)) {
        printf("    %s: %s\n", name, t ? err.msg : "missing");
        return -1;
    }
    return 0;
}

/* tests/ref/golden_nystrom.py's nystrom_masked.safetensors: one mixer, two
 * sequences of 10 and 6 real tokens, T = 10 rounded up to 12 for 4 landmarks,
 * a convolution of 5 taps; output, input gradient and every parameter
 * gradient computed in float64. */
TEST(nystrom_masked_matches_reference) {
    StFile f;
    Error err = {0};
    REQUIRE(st_open(&f, "tests/golden/nystrom_masked.safetensors", &err) == 0, "%s", err.msg);
    const size_t B = (size_t)atol(st_meta(&f, "B")), T = (size_t)atol(st_meta(&f, "T"));
    Rig rig;
    REQUIRE(build(&rig, st_meta(&f, "entries"), B, T) == 0, "build from '%s'", st_meta(&f, "entries"));
    const size_t n = B * T * rig.C;
    float *mask = malloc(B * T * sizeof(float)), *want = malloc(n * sizeof(float));
    int missing = read_tensor(&f, "x", rig.x, n) + read_tensor(&f, "r", rig.r, n) + read_tensor(&f, "mask", mask, B * T);
    char name[200];
    for (size_t i = 0; i < rig.ps.count; i++) {
        snprintf(name, sizeof name, "param.%s", rig.ps.specs[i].name);
        missing += read_tensor(&f, name, rig.ps.values + rig.ps.specs[i].offset, rig.ps.specs[i].numel);
    }
    REQUIRE(missing == 0, "the golden file lacks tensors the mixer needs");
    rig.ctx.mask = mask;
    rig.ctx.training = false;
    rig_backward(&rig);
    /* projections (C), scores (d), softmaxes over M and T, the pinv's 24 products of M, W U (M), conv (K d), ff (HD) */
    const double terms = 2.0 * rig.C + 4 + 4 + T + 24 * 4 + 4 + 5 * 4;
    if (read_tensor(&f, "y", want, n) == 0) {
        const double diff = max_diff(rig.y, want, n), tol = rounding_tolerance_exact(terms, max_abs(want, n));
        CHECK(diff <= tol, "output differs from the reference by %.3g (rounding: %.3g)", diff, tol);
    }
    if (read_tensor(&f, "dx", want, n) == 0) {
        const double diff = max_diff(rig.dx, want, n), tol = rounding_tolerance_exact(2 * terms, max_abs(want, n));
        CHECK(diff <= tol, "dx differs from the reference by %.3g (rounding: %.3g)", diff, tol);
    }
    for (size_t i = 0; i < rig.ps.count; i++) {
        const ParamSpec *s = &rig.ps.specs[i];
        float *ref = malloc(s->numel * sizeof(float));
        snprintf(name, sizeof name, "grad.%s", s->name);
        if (read_tensor(&f, name, ref, s->numel) == 0) {
            /* a weight gradient also sums over the B T tokens */
            const double diff = max_diff(rig.ps.grads + s->offset, ref, s->numel),
                         tol = rounding_tolerance_exact(2 * terms + B * T, max_abs(ref, s->numel));
            printf("    %-20s max abs %.2e (rounding %.2e)\n", name, diff, tol);
            CHECK(diff <= tol, "%s differs from the reference by %.3g (rounding: %.3g)", name, diff, tol);
        }
        free(ref);
    }
    rig_free(&rig);
    st_close(&f);
    free(mask);
    free(want);
}
