/* test_span.c — the adaptive-span attention (src/mixers/adaptive_span.c,
 * src/ops/span_attention.c) against spec moe-brainformer.md §2-§3 and §9:
 * a direct double-precision evaluation of the formulas (distances 1 .. S,
 * never the token itself, key_pe column S - distance, the soft mask and its
 * renormalisation, the memory before the block), trimming that changes
 * nothing, two blocks through the memory = one long sequence, reach, the
 * span loss's gradient, the clamp after an update, and finite differences. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "rig.h"
#include "test.h"
#include "tolerance.h"

static int build(Rig *r, const char *entries, size_t B, size_t T) {
    Config c;
    rig_config(&c);
    if (rig_set_entries(&c, entries)) return -1;
    return rig_build(r, "adaptive_span", "mixer", &c, B, T);
}

typedef struct {
    size_t S, H;
    double R;
} SpanKeys;

/* y = proj_out(attention) of block row b at position i, in double, from
 * the formulas: keys at distances 1 .. S, from the block or (before it) the
 * memory rows (S, C) (NULL: zeros). */
static void reference_row(const Rig *r, const SpanKeys *k, const float *memory, size_t b, size_t i, double *y) {
    const size_t C = r->C, H = k->H, d = C / H, S = k->S, M = r->T;
    const float *wq = rig_param(r, "proj_query.weight"), *wk = rig_param(r, "proj_key.weight");
    const float *wv = rig_param(r, "proj_val.weight"), *wo = rig_param(r, "proj_out.weight");
    const float *z = rig_param(r, "adaptive_span.current_val"), *pe = rig_param(r, "key_pe");
    double q[64], att[64] = {0}, *logit = malloc(S * sizeof(double)), *kv = malloc(S * C * 2 * sizeof(double));
    const float *x = r->x + b * M * C;
    for (size_t o = 0; o < C; o++) {
        q[o] = 0;
        for (size_t c = 0; c < C; c++) q[o] += (double)wq[o * C + c] * x[i * C + c];
    }
    for (size_t delta = 1; delta <= S; delta++) { /* the key and value at distance delta */
        const long p = (long)i - (long)delta;
        const float *src = p >= 0 ? x + p * C : memory && (long)S + p >= 0 ? memory + ((long)S + p) * C : NULL;
        for (size_t o = 0; o < C; o++) {
            double sk = 0, sv = 0;
            for (size_t c = 0; src && c < C; c++) sk += (double)wk[o * C + c] * src[c], sv += (double)wv[o * C + c] * src[c];
            kv[((delta - 1) * 2) * C + o] = sk, kv[((delta - 1) * 2 + 1) * C + o] = sv;
        }
    }
    for (size_t h = 0; h < H; h++) {
        double most = -INFINITY;
        for (size_t delta = 1; delta <= S; delta++) {
            double s = 0;
            for (size_t j = 0; j < d; j++)
                s += q[h * d + j] * (kv[((delta - 1) * 2) * C + h * d + j] + pe[j * S + (S - delta)]);
            logit[delta - 1] = s / sqrt((double)d);
            most = fmax(most, logit[delta - 1]);
        }
        double sum = 0, masked = 0;
        for (size_t delta = 1; delta <= S; delta++) sum += exp(logit[delta - 1] - most);
        for (size_t delta = 1; delta <= S; delta++) {
            const double m = fmin(fmax((z[h] * (double)S - (double)(delta - 1)) / k->R + 1.0, 0.0), 1.0);
            logit[delta - 1] = exp(logit[delta - 1] - most) / sum * m; /* now A m */
            masked += logit[delta - 1];
        }
        for (size_t delta = 1; delta <= S; delta++)
            for (size_t j = 0; j < d; j++)
                att[h * d + j] += logit[delta - 1] / (masked + 1e-8) * kv[((delta - 1) * 2 + 1) * C + h * d + j];
    }
    for (size_t o = 0; o < C; o++) {
        y[o] = 0;
        for (size_t c = 0; c < C; c++) y[o] += (double)wo[o * C + c] * att[c];
    }
    free(logit), free(kv);
}

/* max |y - reference| over the rig's rows, and the reference's largest |y|. */
static double worst_vs_reference(const Rig *r, const SpanKeys *k, const float *memory, double *scale) {
    double worst = 0, y[64];
    *scale = 0;
    for (size_t b = 0; b < r->B; b++)
        for (size_t i = 0; i < r->T; i++) {
            reference_row(r, k, memory ? memory + b * k->S * r->C : NULL, b, i, y);
            for (size_t o = 0; o < r->C; o++) {
                worst = fmax(worst, fabs(r->y[(b * r->T + i) * r->C + o] - y[o]));
                *scale = fmax(*scale, fabs(y[o]));
            }
        }
    return worst;
}

static void set_spans(Rig *r, const float *z, size_t H) { memcpy(rig_param(r, "adaptive_span.current_val"), z, H * sizeof(float)); }

/* The formulas, with a memory before the block; and S = 200 with z = 0:
 * the kernel trims to Se = 72 distances (the ramp's 32 and 64-step
 * trimming), which must change nothing since the rest have mask 0. */
TEST(adaptive_span_matches_the_formulas) {
    static const struct {
        const char *entries;
        size_t S, T;
        float z[3];
        double R;
        bool memory;
    } cases[] = {
        {"mixer.n_head=3;mixer.attn_span=7;mixer.adapt_span_ramp=2", 7, 5, {0.3f, 0.55f, 0.9f}, 2, false},
        {"mixer.n_head=3;mixer.attn_span=7;mixer.adapt_span_ramp=2", 7, 5, {0.1f, 0.45f, 1.0f}, 2, true},
        {"mixer.n_head=3;mixer.attn_span=200", 200, 9, {0, 0, 0}, 32, true},
        {"mixer.n_head=3;mixer.attn_span=7;mixer.adapt_span=false", 7, 5, {1, 1, 1}, 2, true},
    };
    for (size_t n = 0; n < sizeof cases / sizeof *cases; n++) {
        Rig r;
        REQUIRE(build(&r, cases[n].entries, 2, cases[n].T) == 0, "case %zu: build", n);
        set_spans(&r, cases[n].z, 3);
        const SpanKeys k = {cases[n].S, 3, cases[n].R};
        float *memory = cases[n].memory ? malloc(2 * k.S * r.C * sizeof(float)) : NULL;
        for (size_t i = 0; memory && i < 2 * k.S * r.C; i++) memory[i] = sinf(0.37f * (float)i);
        r.ctx.training = false;
        r.ctx.memory = memory;
        module_forward(r.f, r.x, r.y, &r.ctx);
        double scale;
        const double worst = worst_vs_reference(&r, &k, memory, &scale);
        const double tol = rounding_tolerance(4.0 * r.C + (double)k.S, scale);
        CHECK(worst <= tol, "case %zu: differs from the formulas by %.3g (rounding %.3g)", n, worst, tol);
        free(memory);
        rig_free(&r);
    }
}

/* §9.2: two blocks, the second reading what the first left in the memory,
 * equal one forward over both (eval, no dropout, the memory as long as S). */
TEST(adaptive_span_two_blocks_through_the_memory_are_one_sequence) {
    const char *keys = "mixer.n_head=3;mixer.attn_span=6;mixer.adapt_span_ramp=2";
    Rig one, two;
    REQUIRE(build(&two, keys, 1, 10) == 0 && build(&one, keys, 1, 5) == 0, "build");
    memcpy(one.ps.values, two.ps.values, two.ps.total * sizeof(float));
    const float z[3] = {0.2f, 0.5f, 1.0f};
    set_spans(&one, z, 3), set_spans(&two, z, 3);
    const size_t C = one.C, S = 6;
    float *memory = calloc(S * C, sizeof(float)), *next = calloc(S * C, sizeof(float)), *y = malloc(10 * C * sizeof(float));
    two.ctx.training = one.ctx.training = false;
    module_forward(two.f, two.x, two.y, &two.ctx); /* both blocks at once, from an empty past */
    for (int block = 0; block < 2; block++) {
        memcpy(one.x, two.x + block * 5 * C, 5 * C * sizeof(float));
        one.ctx.memory = memory, one.ctx.memory_next = next;
        module_forward(one.f, one.x, y + block * 5 * C, &one.ctx);
        memcpy(memory, next, S * C * sizeof(float));
    }
    double worst = 0;
    for (size_t i = 0; i < 10 * C; i++) worst = fmax(worst, fabs(y[i] - two.y[i]));
    const double tol = rounding_tolerance(4.0 * C + S, max_abs(two.y, 10 * C));
    CHECK(worst <= tol, "blocks through the memory differ from one sequence by %.3g (rounding %.3g)", worst, tol);
    free(memory), free(next), free(y);
    rig_free(&one), rig_free(&two);
}

/* §9.1: a query does not see later tokens nor those beyond the span. */
TEST(adaptive_span_reach) {
    Rig r;
    REQUIRE(build(&r, "mixer.n_head=3;mixer.attn_span=4;mixer.adapt_span=false", 1, 12) == 0, "build");
    r.ctx.training = false;
    const size_t C = r.C, i = 7;
    module_forward(r.f, r.x, r.y, &r.ctx);
    float *before = malloc(12 * C * sizeof(float));
    memcpy(before, r.y, 12 * C * sizeof(float));
    for (size_t c = 0; c < C; c++) r.x[2 * C + c] += 5.0f, r.x[9 * C + c] += 5.0f; /* distance 5 > S, and after i */
    module_forward(r.f, r.x, r.y, &r.ctx);
    CHECK(!memcmp(r.y + i * C, before + i * C, C * sizeof(float)), "query 7 saw distance 5 or a later token");
    bool moved = false;
    for (size_t c = 0; c < C; c++) moved |= r.y[6 * C + c] != before[6 * C + c]; /* 6 sees 2 at distance 4 */
    CHECK(moved, "query 6 did not see the token at distance 4 (the test shows nothing)");
    free(before);
    rig_free(&r);
}

TEST(adaptive_span_gradients) {
    static const struct {
        const char *label, *entries;
        float z[3];
    } cases[] = {
        {"spans inside the ramp", "mixer.n_head=3;mixer.attn_span=7;mixer.adapt_span_ramp=2", {0.3f, 0.55f, 0.8f}},
        {"fixed dropout mask", "mixer.n_head=3;mixer.attn_span=7;mixer.adapt_span_ramp=2;mixer.dropout=0.2",
         {0.25f, 0.6f, 0.95f}},
        {"no adaptive span", "mixer.n_head=3;mixer.attn_span=6;mixer.adapt_span=false", {1, 1, 1}},
    };
    for (size_t n = 0; n < sizeof cases / sizeof *cases; n++) {
        Rig r;
        REQUIRE(build(&r, cases[n].entries, 2, 5) == 0, "%s: build", cases[n].label);
        set_spans(&r, cases[n].z, 3);
        float *memory = malloc(2 * 7 * r.C * sizeof(float));
        for (size_t i = 0; i < 2 * 7 * r.C; i++) memory[i] = cosf(0.21f * (float)i);
        r.ctx.memory = memory; /* read only: the memory rows get no gradient */
        CHECK(rig_gradcheck(&r, 40, 1e-2f) == 0, "%s: gradients off", cases[n].label);
        free(memory);
        rig_free(&r);
    }
}

/* §3.2 / §3.4: the span loss lambda S mean(z) in the auxiliary loss, its
 * gradient lambda S / H per z times the step's share; z clamped to [0, 1]
 * after an update. */
TEST(adaptive_span_loss_and_clamp) {
    Rig r;
    REQUIRE(build(&r, "mixer.n_head=3;mixer.attn_span=7;mixer.adapt_span_ramp=2;mixer.adapt_span_loss=0.5", 1, 5) == 0,
            "build");
    const float z[3] = {0.2f, 0.4f, 0.6f};
    set_spans(&r, z, 3);
    rig_backward(&r);
    float without[3];
    memcpy(without, rig_grad(&r, "adaptive_span.current_val"), sizeof without);
    AuxLoss aux = {.scale = 0.5f};
    r.ctx.aux = &aux;
    rig_backward(&r);
    CHECK(fabs(aux.sum - 0.5 * 7 * 0.4) < 1e-6, "span loss %.6g, want %.6g", aux.sum, 0.5 * 7 * 0.4);
    for (int h = 0; h < 3; h++) {
        const double added = rig_grad(&r, "adaptive_span.current_val")[h] - without[h], want = 0.5 * 7 / 3.0 * 0.5;
        CHECK(fabs(added - want) < 1e-5, "head %d: the loss adds %.6g to dz, want %.6g", h, added, want);
    }
    float *zp = rig_param(&r, "adaptive_span.current_val");
    zp[0] = -0.25f, zp[1] = 0.5f, zp[2] = 1.75f;
    module_after_update(r.m);
    CHECK(zp[0] == 0.0f && zp[1] == 0.5f && zp[2] == 1.0f, "after the update z = %g %g %g", zp[0], zp[1], zp[2]);
    rig_free(&r);
}

/* With adapt_span_cache the memory keeps only Se + 64 positions (the rest 0):
 * S = 200, z = 0: Se = 72, 136 positions kept. */
TEST(adaptive_span_cache_keeps_what_the_spans_reach) {
    Rig r;
    REQUIRE(build(&r, "mixer.n_head=3;mixer.attn_span=200;mixer.adapt_span_cache=true", 1, 9) == 0, "build");
    const float z[3] = {0, 0, 0};
    set_spans(&r, z, 3);
    const size_t S = 200, C = r.C;
    float *memory = malloc(S * C * sizeof(float)), *next = malloc(S * C * sizeof(float));
    for (size_t i = 0; i < S * C; i++) memory[i] = 1.0f, next[i] = NAN;
    r.ctx.memory = memory, r.ctx.memory_next = next;
    r.ctx.training = false;
    module_forward(r.f, r.x, r.y, &r.ctx);
    size_t zero_rows = 0, old_rows = 0, block_rows = 0;
    for (size_t p = 0; p < S; p++) {
        const float *row = next + p * C;
        zero_rows += row[0] == 0.0f && row[C - 1] == 0.0f;
        old_rows += row[0] == 1.0f;
        block_rows += p + 9 >= S && !memcmp(row, r.x + (p + 9 - S) * C, C * sizeof(float));
    }
    CHECK(zero_rows == 64 && old_rows == 136 - 9 && block_rows == 9, "memory rows: %zu zero, %zu old, %zu from the block",
          zero_rows, old_rows, block_rows);
    free(memory), free(next);
    rig_free(&r);
}
