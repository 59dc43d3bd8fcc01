/* test_heads.c — the output heads: the adaptive softmax against its
 * definition (shared/spec/tasks-fmm-nystrom.md A.4) computed here in double,
 * gradients against finite differences, and the full softmax as its special
 * case. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/rng.h"
#include "../src/model/heads.h"
#include "gradcheck.h"
#include "test.h"
#include "tolerance.h"

typedef struct {
    Head h;
    ParamSet ps;
    Arena arena;
    size_t N;
    float *hidden, *dhidden, *losses;
    int32_t *targets;
} HeadRig;

static void fill(float *x, size_t n, float std, uint64_t stream) {
    Rng r = rng_make(5, rng_stream(RNG_TEST, stream, 0));
    for (size_t i = 0; i < n; i++) x[i] = std * rng_normal(&r);
}

/* V = 23, C = 6; cutoffs "5,9,15": shortlist [0,5), tails [5,9), [9,15), [15,23);
 * div_val 2 gives the clusters widths 6, 3, 1 and projections. */
static int rig_head_div(HeadRig *r, const char *cutoffs, bool adaptive, size_t N, int div_val) {
    memset(r, 0, sizeof *r);
    Config c;
    config_defaults(&c);
    c.adaptive_softmax = adaptive;
    c.div_val = div_val;
    snprintf(c.cutoffs, sizeof c.cutoffs, "%s", cutoffs);
    Error err = {0};
    if (head_configure(&r->h, &c, 23, 6, &err)) return printf("    %s\n", err.msg), -1;
    params_init(&r->ps);
    head_params(&r->h, &r->ps, false, false);
    if (params_allocate(&r->ps, &err)) return -1;
    head_bind(&r->h);
    fill(r->ps.values, r->ps.total, 0.7f, 1);
    Arena count = arena_counting();
    head_layout(&r->h, N, &count);
    if (arena_alloc(&r->arena, count.used, &err)) return -1;
    head_layout(&r->h, N, &r->arena);
    r->N = N;
    r->hidden = malloc(N * 6 * sizeof(float));
    r->dhidden = malloc(N * 6 * sizeof(float));
    r->losses = malloc(N * sizeof(float));
    r->targets = malloc(N * sizeof(int32_t));
    fill(r->hidden, N * 6, 1.0f, 2);
    for (size_t i = 0; i < N; i++) r->targets[i] = (int32_t)((i * 7 + 3) % 23); /* every cluster gets rows */
    return 0;
}

static int rig_head(HeadRig *r, const char *cutoffs, bool adaptive, size_t N) {
    return rig_head_div(r, cutoffs, adaptive, N, 1);
}

static void free_head(HeadRig *r) {
    params_free(&r->ps);
    arena_free(&r->arena);
    free(r->hidden), free(r->dhidden), free(r->losses), free(r->targets);
}

static double dot(const float *a, const double *b, size_t n) {
    double s = 0;
    for (size_t c = 0; c < n; c++) s += (double)a[c] * b[c];
    return s;
}

/* Cluster i's input: x, or x P_i (P_i: C x d_i) when it has a projection. */
static void cluster_input(const Head *h, size_t i, const float *x, double *u) {
    for (size_t j = 0; j < h->dim[i]; j++) {
        u[j] = h->proj[i] ? 0.0 : x[j];
        for (size_t c = 0; h->proj[i] && c < h->C; c++) u[j] += (double)x[c] * h->proj[i][c * h->dim[i] + j];
    }
}

/* log p(y | x) by the definition, in double: head log-softmax over the
 * shortlist rows of cluster 0's table and the cluster rows (+ biases); tail
 * cluster i is head class s + k - i; then the cluster's own log-softmax over
 * its table. */
static double reference_logprob(const Head *h, const float *x, int32_t y) {
    const size_t s = h->cutoff[1], k = h->n_clusters, d0 = h->dim[0];
    double z[64], u[8], mx = -INFINITY, sum = 0;
    cluster_input(h, 0, x, u);
    for (size_t j = 0; j < s + k; j++) {
        z[j] = j < s ? dot(h->tw[0] + j * d0, u, d0) + h->b[j] : dot(h->cw + (j - s) * d0, u, d0) + h->cb[j - s];
        mx = fmax(mx, z[j]);
    }
    for (size_t j = 0; j < s + k; j++) sum += exp(z[j] - mx);
    const double head_lse = mx + log(sum);
    size_t i = 0;
    while (i < k && (size_t)y >= h->cutoff[i + 1]) i++;
    if (i == 0) return z[y] - head_lse;
    double lp = z[s + k - i] - head_lse, tmx = -INFINITY, tsum = 0, zy = 0;
    const size_t lo = h->cutoff[i], d = h->dim[i];
    cluster_input(h, i, x, u);
    for (size_t j = lo; j < h->cutoff[i + 1]; j++) tmx = fmax(tmx, dot(h->tw[i] + (j - lo) * d, u, d) + h->b[j]);
    for (size_t j = lo; j < h->cutoff[i + 1]; j++) {
        double t = dot(h->tw[i] + (j - lo) * d, u, d) + h->b[j];
        tsum += exp(t - tmx);
        if ((int32_t)j == y) zy = t;
    }
    return lp + zy - (tmx + log(tsum));
}

static void check_definition(const char *cutoffs, int div_val) {
    HeadRig r;
    REQUIRE(rig_head_div(&r, cutoffs, true, 12, div_val) == 0, "rig");
    double sum = head_loss(&r.h, r.hidden, r.N, r.targets, r.losses, 0.0f, NULL), want_sum = 0, worst = 0;
    float *scores = malloc(r.N * 23 * sizeof(float)), *scratch = malloc(head_logits_scratch(&r.h) * sizeof(float));
    head_logits(&r.h, r.hidden, r.N, scores, scratch);
    double worst_norm = 0, worst_score = 0;
    for (size_t n = 0; n < r.N; n++) {
        double want = -reference_logprob(&r.h, r.hidden + n * 6, r.targets[n]);
        want_sum += want;
        worst = fmax(worst, fabs(r.losses[n] - want));
        double total = 0;
        for (int32_t y = 0; y < 23; y++) {
            total += exp(scores[n * 23 + y]);
            worst_score = fmax(worst_score, fabs(scores[n * 23 + y] - reference_logprob(&r.h, r.hidden + n * 6, y)));
        }
        worst_norm = fmax(worst_norm, fabs(total - 1.0));
    }
    /* against the exact definition: projection and logits (C each), the head's and the cluster's
     * log-sum-exp (V at most), a log-probability the sum of two; the total adds the N rows */
    const double chain = 2.0 * (2 * 6 + 23), scale = max_abs(scores, r.N * 23);
    CHECK(worst <= rounding_tolerance_exact(chain, scale) &&
              fabs(sum - want_sum) <= rounding_tolerance_exact(chain + (double)r.N, fabs(want_sum)),
          "%s/%d: per-token losses differ by %.3g", cutoffs, div_val, worst);
    CHECK(worst_score <= rounding_tolerance_exact(chain, scale), "%s/%d: log-probabilities differ by %.3g", cutoffs,
          div_val, worst_score);
    CHECK(worst_norm <= rounding_tolerance_exact(chain + 23, 1.0), "%s/%d: probabilities sum to 1 within %.3g",
          cutoffs, div_val, worst_norm);
    free(scores), free(scratch);
    free_head(&r);
}

TEST(adaptive_softmax_matches_its_definition) {
    check_definition("5,9,15", 1);
    check_definition("5,9", 2); /* widths 6, 3, 1 through projections */
    check_definition("", 2);    /* one projected softmax over all classes */
}

static double head_loss_fn(void *ctx, double *abs_sum) {
    HeadRig *r = ctx;
    double s = head_loss(&r->h, r->hidden, r->N, r->targets, r->losses, 0.0f, NULL);
    *abs_sum = fabs(s);
    return s;
}

TEST(adaptive_softmax_gradients) {
    const char *cases[] = {"5,9,15", "3", "", "5,9"};
    for (int k = 0; k < 4; k++) {
        HeadRig r;
        REQUIRE(rig_head_div(&r, cases[k], true, 12, k == 3 ? 2 : 1) == 0, "rig");
        memset(r.ps.grads, 0, r.ps.total * sizeof(float));
        head_loss(&r.h, r.hidden, r.N, r.targets, r.losses, 1.0f, r.dhidden);
        float *dp = malloc(r.ps.total * sizeof(float)), *dh = malloc(r.N * 6 * sizeof(float));
        memcpy(dp, r.ps.grads, r.ps.total * sizeof(float));
        memcpy(dh, r.dhidden, r.N * 6 * sizeof(float));
        CHECK(gradcheck("dhidden", r.hidden, dh, r.N * 6, head_loss_fn, &r, 1e-2f, 72, NULL) == 0, "cutoffs '%s': dh",
              cases[k]);
        for (size_t i = 0; i < r.ps.count; i++) {
            const ParamSpec *s = &r.ps.specs[i];
            CHECK(gradcheck(s->name, r.ps.values + s->offset, dp + s->offset, s->numel, head_loss_fn, &r, 1e-2f, 60,
                            NULL) == 0,
                  "cutoffs '%s': %s", cases[k], s->name);
        }
        free(dp), free(dh);
        free_head(&r);
    }
}

TEST(adaptive_softmax_without_cutoffs_is_the_full_softmax) {
    HeadRig a, f;
    REQUIRE(rig_head(&a, "", true, 10) == 0 && rig_head(&f, "", false, 10) == 0, "rigs");
    CHECK(a.h.n_clusters == 0 && a.h.b && !f.h.b, "adaptive keeps its bias only");
    memcpy(f.h.w, a.h.w, 23 * 6 * sizeof(float));
    memset(a.h.b, 0, 23 * sizeof(float));
    memset(a.ps.grads, 0, a.ps.total * sizeof(float));
    memset(f.ps.grads, 0, f.ps.total * sizeof(float));
    double la = head_loss(&a.h, a.hidden, 10, a.targets, a.losses, 0.5f, a.dhidden);
    double lf = head_loss(&f.h, f.hidden, 10, f.targets, f.losses, 0.5f, f.dhidden);
    double worst = 0, scale = fmax(max_abs(f.dhidden, 60), max_abs(f.h.dw, 23 * 6));
    for (size_t i = 0; i < 60; i++) worst = fmax(worst, fabs(a.dhidden[i] - f.dhidden[i]));
    for (size_t i = 0; i < 23 * 6; i++) worst = fmax(worst, fabs(a.h.dw[i] - f.h.dw[i]));
    /* logits over C = 6, log-sum-exp over V = 23, the loss and weight gradients summed over 10 rows */
    const double terms = 6 + 23 + 10;
    CHECK(fabs(la - lf) <= rounding_tolerance(terms, fabs(lf)) && worst <= rounding_tolerance(terms, scale),
          "loss %.7f vs %.7f, gradients differ by %.3g", la, lf, worst);
    free_head(&a);
    free_head(&f);
}

TEST(head_rejects_bad_cutoffs) {
    const char *bad[] = {"5,5", "9,5", "23", "x", "0", "1,2,3,4,5,6,7,8,9"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        Config c;
        config_defaults(&c);
        c.adaptive_softmax = true;
        snprintf(c.cutoffs, sizeof c.cutoffs, "%s", bad[i]);
        Head h;
        Error err = {0};
        CHECK(head_configure(&h, &c, 23, 6, &err) == -1 && strstr(err.msg, "cutoffs"), "'%s' accepted: %s", bad[i],
              err.msg);
    }
    Config c;
    config_defaults(&c);
    c.adaptive_softmax = true;
    c.div_val = 8; /* 6 / 8 = 0: the first tail would have no width */
    snprintf(c.cutoffs, sizeof c.cutoffs, "5,9");
    Head h;
    Error err = {0};
    CHECK(head_configure(&h, &c, 23, 6, &err) == -1 && strstr(err.msg, "no width"), "div_val 8: %s", err.msg);
}

/* head_bias gives the full softmax the bias the original's output layer
 * always has: with the same weights and bias it is the adaptive softmax
 * without tail clusters (which has one). */
TEST(full_softmax_head_bias) {
    HeadRig a, f;
    REQUIRE(rig_head(&a, "", true, 10) == 0, "rig");
    memset(&f, 0, sizeof f);
    Config c;
    config_defaults(&c);
    c.head_bias = true;
    Error err = {0};
    REQUIRE(head_configure(&f.h, &c, 23, 6, &err) == 0, "%s", err.msg);
    params_init(&f.ps);
    head_params(&f.h, &f.ps, false, false);
    REQUIRE(params_allocate(&f.ps, &err) == 0 && params_find(&f.ps, "head.bias"), "no head.bias");
    head_bind(&f.h);
    memcpy(f.h.w, a.h.w, 23 * 6 * sizeof(float));
    for (size_t i = 0; i < 23; i++) a.h.b[i] = f.h.b[i] = 0.1f * (float)i - 1.0f;
    Arena count = arena_counting();
    head_layout(&f.h, 10, &count);
    REQUIRE(arena_alloc(&f.arena, count.used, &err) == 0, "%s", err.msg);
    head_layout(&f.h, 10, &f.arena);
    float lf[10];
    double la = head_loss(&a.h, a.hidden, 10, a.targets, a.losses, 0.0f, NULL);
    double lb = head_loss(&f.h, a.hidden, 10, a.targets, lf, 0.0f, NULL);
    /* the same sums (logits over C = 6, log-sum-exp over V = 23, 10 rows) in two code paths */
    CHECK(fabs(la - lb) <= rounding_tolerance(6 + 23 + 10, fabs(la)),
          "with its bias the full softmax gives %.7f, the adaptive %.7f", lb, la);
    free_head(&a);
    params_free(&f.ps);
    arena_free(&f.arena);
}
