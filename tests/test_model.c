/* test_model.c — whole-model equivalences: generation one token at a time
 * equals the parallel forward, and the loss does not depend on how a batch
 * is split into micro-batches. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/rng.h"
#include "../src/model/model.h"
#include "../src/train/bench.h"
#include "test.h"

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
        CHECK(worst < 1e-5, "%s-LN, %s positions: step logits differ from forward by %.3g", variants[v][0],
              variants[v][1], worst);
        CHECK(generator_step(&g, &m, ids[0], T, &err) != 0 && strstr(err.msg, "past the generation limit"),
              "position past max_len accepted");
        generator_free(&g);
        model_free(&m);
    }
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
