/* test_model.c — whole-model equivalences: generation one token at a time
 * equals the parallel forward, and the loss does not depend on how a batch
 * is split into micro-batches. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/gemm.h"
#include "../src/core/rng.h"
#include "../src/model/model.h"
#include "../src/train/bench.h"
#include "gradcheck.h"
#include "test.h"
#include "tolerance.h"

static void small_config(Config *c, const char *norm, const char *pos) {
    config_defaults(c);
    snprintf(c->arch, sizeof c->arch, "sfsf");
    snprintf(c->norm, sizeof c->norm, "%s", norm);
    snprintf(c->pos, sizeof c->pos, "%s", pos);
    c->d_model = 16;
    c->n_head = 2;
    c->d_inner = 32;
    c->tgt_len = 70;
    c->dropout = 0.0;
    Error err;
    config_finalize(c, &err);
}

static void random_ids(int32_t *ids, size_t n, size_t V) {
    Rng r = rng_make(2, rng_stream(RNG_TEST, 9, 0));
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)(rng_next(&r) % V);
}

TEST(model_generation_equals_forward) {
    const char *variants[][2] = {{"pre", "learned"}, {"post", "sinusoidal"}, {"pre", "none"}, {"pre", "learned"}};
    for (int v = 0; v < 4; v++) {
        Config c;
        small_config(&c, variants[v][0], variants[v][1]);
        if (v == 3) { /* adaptive input embedding and head (div_val 2), scores are log-probabilities */
            c.adaptive_softmax = true;
            c.div_val = 2;
            snprintf(c.cutoffs, sizeof c.cutoffs, "4,7");
        }
        Model m;
        Generator g;
        Error err = {0};
        const size_t T = 70, V = 11;
        REQUIRE(model_build(&m, &c, V, &err) == 0, "%s", err.msg);
        model_init(&m, 3);
        int32_t ids[70];
        random_ids(ids, T, V);
        PassMode mode = {.training = false};
        REQUIRE(model_plan(&m, 1, T, &err) == 0 && model_forward(&m, ids, NULL, &mode, 0, NULL, &err) == 0, "%s",
                err.msg);
        REQUIRE(generator_build(&g, &m, T, &err) == 0, "%s", err.msg);
        double worst = 0;
        for (size_t t = 0; t < T; t++) {
            REQUIRE(generator_step(&g, &m, ids[t], t, &err) == 0, "%s", err.msg);
            for (size_t k = 0; k < V; k++) worst = fmax(worst, fabs(g.logits[k] - m.logits[t * V + k]));
        }
        double tol = rounding_tolerance(model_rounding_terms(4, 16, 32, T, V), max_abs(m.logits, T * V));
        CHECK(worst <= tol, "%s-LN, %s positions: step logits differ from forward by %.3g (rounding: %.3g)",
              variants[v][0], variants[v][1], worst, tol);
        CHECK(generator_step(&g, &m, ids[0], T, &err) != 0 && strstr(err.msg, "past the generation limit"),
              "position past max_len accepted");
        generator_free(&g);
        model_free(&m);
    }
}

/* Under bf16 precision the steps read bf16 weights: the logits move by
 * about bf16's rounding (2^-9 relative per weight), not by more, and not by
 * as little as fp32 rounding (the copy is really read). */
TEST(model_generation_reads_bf16_weights_under_bf16) {
    Error err = {0};
    if (gemm_set_precision(PRECISION_BF16, &err)) TEST_SKIP("this CPU or build has no bf16 products");
    gemm_set_precision(PRECISION_FP32, &err);
    Config c;
    small_config(&c, "pre", "learned");
    Model m;
    Generator g;
    const size_t T = 30, V = 11;
    REQUIRE(model_build(&m, &c, V, &err) == 0, "%s", err.msg);
    model_init(&m, 4);
    int32_t ids[30];
    random_ids(ids, T, V);
    PassMode mode = {.training = false};
    REQUIRE(model_plan(&m, 1, T, &err) == 0 && model_forward(&m, ids, NULL, &mode, 0, NULL, &err) == 0, "%s",
            err.msg);
    gemm_set_precision(PRECISION_BF16, &err);
    REQUIRE(generator_build(&g, &m, T, &err) == 0, "%s", err.msg);
    double worst = 0;
    for (size_t t = 0; t < T; t++) {
        REQUIRE(generator_step(&g, &m, ids[t], t, &err) == 0, "%s", err.msg);
        for (size_t k = 0; k < V; k++) worst = fmax(worst, fabs(g.logits[k] - m.logits[t * V + k]));
    }
    generator_free(&g);
    gemm_set_precision(PRECISION_FP32, &err);
    const double scale = max_abs(m.logits, T * V), fp32 = rounding_tolerance(model_rounding_terms(4, 16, 32, T, V), scale);
    CHECK(worst <= 0x1p-7 * scale, "bf16 weights moved the logits by %.3g of %.3g", worst, scale);
    CHECK(worst > fp32, "logits within fp32 rounding (%.3g): the bf16 copy was not read", worst);
    model_free(&m);
}

/* Positions counted from the end of the sequence (the FMM trainer's) move
 * every token when one is added, so generation reruns the forward: after
 * each token its logits must equal a forward over the prefix so far, and a
 * prefill must equal feeding the same tokens one by one. */
TEST(model_generation_recomputes_reversed_positions) {
    Config c;
    small_config(&c, "post", "sinusoidal_reversed");
    Model m;
    Generator g;
    Error err = {0};
    const size_t T = 40, V = 11;
    REQUIRE(model_build(&m, &c, V, &err) == 0, "%s", err.msg);
    model_init(&m, 5);
    int32_t ids[40];
    random_ids(ids, T, V);
    REQUIRE(generator_build(&g, &m, T, &err) == 0, "%s", err.msg);
    CHECK(g.recompute, "reversed positions generated by steps");
    float *stepped = calloc(V, sizeof *stepped);
    REQUIRE(stepped != NULL, "out of memory");
    double worst = 0, moved = 0, scale = 0;
    PassMode mode = {.training = false};
    for (size_t t = 0; t < T; t++) {
        REQUIRE(generator_step(&g, &m, ids[t], t, &err) == 0, "%s", err.msg);
        memcpy(stepped, g.logits, V * sizeof *stepped);
        REQUIRE(model_plan(&m, 1, t + 1, &err) == 0 && model_forward(&m, ids, NULL, &mode, 0, NULL, &err) == 0,
                "%s", err.msg);
        for (size_t k = 0; k < V; k++) worst = fmax(worst, fabs(stepped[k] - m.logits[t * V + k]));
        scale = fmax(scale, max_abs(stepped, V));
        if (t + 1 < T) { /* the same position inside a longer window scores differently */
            REQUIRE(model_plan(&m, 1, t + 2, &err) == 0 && model_forward(&m, ids, NULL, &mode, 0, NULL, &err) == 0,
                    "%s", err.msg);
            for (size_t k = 0; k < V; k++) moved = fmax(moved, fabs(stepped[k] - m.logits[t * V + k]));
        }
    }
    const double tol = rounding_tolerance(model_rounding_terms(4, 16, 32, T, V), scale);
    CHECK(worst <= tol, "recomputed logits differ from the prefix forward by %.3g (rounding: %.3g)", worst, tol);
    CHECK(moved > 100 * tol, "reversed positions moved the logits by only %.3g: the test shows nothing", moved);
    REQUIRE(generator_prefill(&g, &m, ids, 17, &err) == 0, "%s", err.msg);
    memcpy(stepped, g.logits, V * sizeof *stepped);
    REQUIRE(generator_prefill(&g, &m, ids, 16, &err) == 0 && generator_step(&g, &m, ids[16], 16, &err) == 0, "%s",
            err.msg);
    double diff = 0;
    for (size_t k = 0; k < V; k++) diff = fmax(diff, fabs(stepped[k] - g.logits[k]));
    CHECK(diff <= tol, "prefill of 17 differs from prefill of 16 and one step by %.3g (rounding: %.3g)", diff, tol);
    CHECK(generator_step(&g, &m, ids[0], T, &err) != 0 && strstr(err.msg, "past the generation limit"),
          "position past max_len accepted");
    free(stepped);
    generator_free(&g);
    model_free(&m);
}

TEST(model_rejects_bad_ids_and_lengths) {
    Config c;
    small_config(&c, "pre", "learned");
    Model m;
    Error err = {0};
    REQUIRE(model_build(&m, &c, 11, &err) == 0, "%s", err.msg);
    CHECK(model_plan(&m, 1, 71, &err) != 0 && strstr(err.msg, "longer than max_len 70"), "T > max_len: %s", err.msg);
    REQUIRE(model_plan(&m, 1, 4, &err) == 0, "%s", err.msg);
    int32_t ids[4] = {1, 2, 11, 3};
    PassMode mode = {.training = false};
    CHECK(model_forward(&m, ids, NULL, &mode, 0, NULL, &err) != 0 && strstr(err.msg, "id 11 at (row 0, position 2)"),
          "out-of-range id: %s", err.msg);
    Config bidir = c;
    bidir.causal = false;
    Model mb;
    Generator g;
    REQUIRE(model_build(&mb, &bidir, 11, &err) == 0, "%s", err.msg);
    CHECK(generator_build(&g, &mb, 8, &err) != 0 && strstr(err.msg, "causal"), "bidirectional generation: %s",
          err.msg);
    model_free(&mb);
    model_free(&m);
}

TEST(bench_times_steps_and_generation) {
    Config c;
    small_config(&c, "pre", "learned");
    c.batch_size = 2;
    c.tgt_len = 32;
    c.max_len = 70;
    Model m;
    Error err = {0};
    REQUIRE(model_build(&m, &c, 11, &err) == 0, "%s", err.msg);
    model_init(&m, 1);
    BenchResult r;
    REQUIRE(bench_training(&m, 3, 1, NULL, &r, &err) == 0, "%s", err.msg);
    CHECK(r.steps == 3 && r.tokens == 64, "3 steps of 64 tokens");
    for (int s = 0; s < 3; s++)
        CHECK(r.forward[s] > 0 && r.backward[s] > 0 && r.step[s] >= r.forward[s] + r.backward[s], "step %d parts", s);
    /* 6 * params (not the 70 x 16 position table) * tokens plus 3 * the two
     * softmax layers' causal 4 B T^2 HD / 2 */
    double want = 6.0 * (double)(m.params.total - 70 * 16) * 64 + 3.0 * 2 * (4.0 * 2 * 32 * 32 * 16 * 0.5);
    CHECK(fabs(r.flops - want) < 1e-6 * want, "flops %.6g, want %.6g", r.flops, want);
    CHECK(r.arena_bytes > 4 * m.params.total * sizeof(float), "memory counts parameters, moments and activations");
    double gen;
    CHECK(bench_generation(&m, 70, 8, &gen, &err) == 0 && gen > 0, "generation: %s", err.msg);
    CHECK(bench_generation(&m, 8, 8, &gen, &err) == -1, "a context no longer than the tokens is refused");
    model_free(&m);
}

/* bf16 rounds the inputs of every large product to 8 significant bits
 * (u = 2^-9 each, two inputs per product) and accumulates in fp32. A
 * gradient comes out of a chain of P such products (forward: two per
 * sublayer and the head; backward: as many again, and the weight product),
 * so bf16 and fp32 gradients may differ by about P * 2 * 2^-9 relative, in
 * the norm of each tensor; the loss by half as many products. */
TEST(model_bf16_gradients_follow_fp32) {
    Error err = {0};
    if (gemm_set_precision(PRECISION_BF16, &err)) TEST_SKIP("this CPU or build has no bf16 products");
    gemm_set_precision(PRECISION_FP32, &err);
    Config c;
    small_config(&c, "pre", "learned");
    c.d_model = 64; /* every product at least GEMM_BF16_MIN wide: all of them in bf16 */
    c.d_inner = 128;
    c.d_head = 32;
    c.tgt_len = 64;
    REQUIRE(config_finalize(&c, &err) == 0, "%s", err.msg);
    const size_t B = 2, T = 64, V = 48, P = 4 * 2 + 1;
    Model m;
    REQUIRE(model_build(&m, &c, V, &err) == 0, "%s", err.msg);
    model_init(&m, 4);
    int32_t ids[2 * 65];
    random_ids(ids, B * T + 1, V);
    const size_t n = m.params.total;
    float *grads[2] = {malloc(n * sizeof(float)), malloc(n * sizeof(float))};
    double loss[2];
    PassMode mode = {.training = false};
    for (int p = 0; p < 2; p++) {
        gemm_set_precision(p ? PRECISION_BF16 : PRECISION_FP32, &err);
        model_zero_grad(&m);
        REQUIRE(model_plan(&m, B, T, &err) == 0 && model_forward(&m, ids, ids + 1, &mode, 1.0f, &loss[p], &err) == 0,
                "%s", err.msg);
        model_backward(&m, &mode);
        memcpy(grads[p], m.params.grads, n * sizeof(float));
    }
    gemm_set_precision(PRECISION_FP32, &err);
    const double u = 0x1p-9;
    CHECK(fabs(loss[1] - loss[0]) <= P * 2 * u * fabs(loss[0]), "loss %.6f in bf16, %.6f in fp32", loss[1], loss[0]);
    double largest = 0;
    for (size_t k = 0; k < m.params.count; k++) {
        const ParamSpec *s = &m.params.specs[k];
        double d2 = 0, g2 = 0;
        for (size_t i = s->offset; i < s->offset + s->numel; i++) {
            double d = (double)grads[1][i] - grads[0][i];
            d2 += d * d, g2 += (double)grads[0][i] * grads[0][i];
        }
        double rel = sqrt(d2 / fmax(g2, 1e-300));
        largest = fmax(largest, rel);
        CHECK(rel <= 2 * P * 2 * u, "%s: bf16 gradient off the fp32 one by %.3g relative (bound %.3g)", s->name, rel,
              2 * P * 2 * u);
    }
    CHECK(largest > 1e3 * FLOAT32_UNIT_ROUNDOFF, "bf16 gradients equal fp32 ones (%.3g): no product ran in bf16",
          largest);
    free(grads[0]), free(grads[1]);
    model_free(&m);
}

/* ---- architecture grammars and shared sublayers (model/trunk.h) ---- */

typedef struct {
    Model m;
    int32_t ids[2 * 13];
    PassMode mode;
} SharedRig;

static double shared_loss(void *ctx, double *abs_sum) {
    SharedRig *r = ctx;
    double loss = 0;
    Error err = {0};
    if (model_forward(&r->m, r->ids, r->ids + 1, &r->mode, 0.0f, &loss, &err)) return NAN;
    *abs_sum = fabs(loss);
    return loss;
}

/* In the brainformer grammar "sfsf.sf" the first layer runs its attention
 * and its feed-forward twice with the same weights: 6 uses of 4 sublayers,
 * parameters only for blocks.0, .1, .4, .5, and a gradient that is the sum
 * over both uses (checked against finite differences, dropout on; the step
 * is smaller than the modules' 1e-2 because a whole model's loss curves
 * more: at 1e-2 the O(h^2) term alone exceeds the tolerance). */
TEST(model_shared_sublayers_train_and_pass_the_gradient_check) {
    SharedRig r;
    Config c;
    small_config(&c, "pre", "learned");
    snprintf(c.arch, sizeof c.arch, "sfsf.sf");
    snprintf(c.arch_grammar, sizeof c.arch_grammar, "brainformer");
    c.tgt_len = 12;
    c.dropout = 0.1;
    Error err = {0};
    REQUIRE(config_finalize(&c, &err) == 0, "%s", err.msg);
    REQUIRE(model_build(&r.m, &c, 11, &err) == 0, "%s", err.msg);
    model_init(&r.m, 3);
    CHECK(r.m.trunk.n_uses == 6 && r.m.trunk.n_sublayers == 4, "%zu uses of %zu sublayers", r.m.trunk.n_uses,
          r.m.trunk.n_sublayers);
    CHECK(r.m.trunk.uses[2].sublayer == r.m.trunk.uses[0].sublayer &&
              r.m.trunk.uses[3].sublayer == r.m.trunk.uses[1].sublayer,
          "repeated letters of a layer do not share");
    CHECK(params_find(&r.m.params, "blocks.0.mixer.q_net.weight") && params_find(&r.m.params, "blocks.5.ffn.fc1.weight") &&
              !params_find(&r.m.params, "blocks.2.mixer.q_net.weight"),
          "parameter names of the shared sublayers");
    random_ids(r.ids, 2 * 13, 11);
    r.mode = (PassMode){.training = true, .seed = 9, .step = 4};
    REQUIRE(model_plan(&r.m, 2, 12, &err) == 0, "%s", err.msg);
    model_zero_grad(&r.m);
    double loss;
    REQUIRE(model_forward(&r.m, r.ids, r.ids + 1, &r.mode, 1.0f, &loss, &err) == 0, "%s", err.msg);
    model_backward(&r.m, &r.mode);
    float *grads = malloc(r.m.params.total * sizeof(float));
    memcpy(grads, r.m.params.grads, r.m.params.total * sizeof(float));
    const char *names[] = {"blocks.0.mixer.q_net.weight", "blocks.0.mixer.o_net.weight", "blocks.0.norm.weight",
                           "blocks.1.ffn.fc1.weight", "blocks.1.ffn.fc2.bias", "blocks.4.mixer.kv_net.weight",
                           "embed.weight"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        const ParamSpec *s = params_find(&r.m.params, names[k]);
        REQUIRE(s, "no parameter %s", names[k]);
        CHECK(gradcheck(names[k], r.m.params.values + s->offset, grads + s->offset, s->numel, shared_loss, &r, 3e-3f,
                        30, NULL) == 0,
              "%s", names[k]);
    }
    free(grads);
    model_free(&r.m);
}

TEST(model_sandwich_grammar_reads_pairs) {
    Config c;
    small_config(&c, "pre", "learned");
    snprintf(c.arch, sizeof c.arch, "s.sfsf.f");
    snprintf(c.arch_grammar, sizeof c.arch_grammar, "sandwich");
    c.n_layer = 4;
    Error err = {0};
    REQUIRE(config_finalize(&c, &err) == 0, "%s", err.msg);
    Model m;
    REQUIRE(model_build(&m, &c, 11, &err) == 0, "%s", err.msg);
    const char want[] = "ssfsff";
    CHECK(m.trunk.n_uses == 6 && m.trunk.n_sublayers == 6, "%zu uses", m.trunk.n_uses);
    for (size_t i = 0; i < m.trunk.n_uses && i < 6; i++)
        CHECK(m.trunk.uses[i].letter == want[i], "use %zu is '%c', want '%c'", i, m.trunk.uses[i].letter, want[i]);
    model_free(&m);
    c.n_layer = 3; /* 8 characters are 4 pairs */
    CHECK(model_build(&m, &c, 11, &err) == -1 && strstr(err.msg, "n_layer 3 needs exactly 6"), "%s", err.msg);
    model_free(&m);
}
