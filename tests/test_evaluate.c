/* test_evaluate.c — whole-split evaluation: sliding windows (eval_stride)
 * against scoring each target on its own with exactly its context, and the
 * non-overlapping windows against one long forward per row. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/json.h"
#include "../src/core/rng.h"
#include "../src/train/trainer.h"
#include "test.h"
#include "tolerance.h"

enum { V = 13, N = 47 };

static int tiny_model_batched(Model *m, int tgt_len, int stride, int rows, const char *batching) {
    Config c;
    config_defaults(&c);
    snprintf(c.lm_batching, sizeof c.lm_batching, "%s", batching);
    snprintf(c.arch, sizeof c.arch, "sf");
    c.d_model = 16;
    c.n_head = 2;
    c.d_inner = 32;
    c.tgt_len = tgt_len;
    c.max_len = 64;
    c.eval_stride = stride;
    c.eval_batch_size = rows;
    c.dropout = 0.0;
    Error err = {0};
    if (config_finalize(&c, &err) || model_build(m, &c, V, &err)) return printf("    %s\n", err.msg), -1;
    model_init(m, 9);
    return 0;
}

static int tiny_model(Model *m, int tgt_len, int stride, int rows) {
    return tiny_model_batched(m, tgt_len, stride, rows, "streams");
}

static void random_stream(int32_t *ids) {
    Rng r = rng_make(4, rng_stream(RNG_TEST, 3, 0));
    for (int i = 0; i < N; i++) ids[i] = (int32_t)(rng_next(&r) % V);
}

/* A loss log-sum-exp(z) - z_y moves by at most twice its logits' rounding;
 * the logits are bounded by the loss here (the model starts near uniform). */
static double loss_tolerance(size_t window, double loss) {
    return 2.0 * rounding_tolerance(model_rounding_terms(2, 16, 32, window, V), loss);
}

/* Loss of predicting ids[p] from ids[from .. p-1] alone. */
static double target_loss(Model *m, const int32_t *ids, size_t from, size_t p) {
    const size_t len = p - from;
    PassMode mode = {.training = false};
    Error err = {0};
    if (model_plan(m, 1, len, &err) || model_forward(m, ids + from, ids + from + 1, &mode, 0.0f, NULL, &err))
        return NAN;
    return m->losses[len - 1];
}

TEST(evaluate_sliding_scores_each_target_with_its_context) {
    int32_t ids[N];
    random_stream(ids);
    const TokenView view = token_view_i32(ids, N);
    const size_t L = 8, strides[] = {1, 3, 5};
    for (size_t k = 0; k < 3; k++) {
        const size_t S = strides[k];
        Model m;
        REQUIRE(tiny_model(&m, (int)L, (int)S, 4) == 0, "model");
        double loss;
        uint64_t tokens;
        Error err = {0};
        REQUIRE(evaluate_split(&m, &view, "test", &loss, &tokens, &err) == 0, "%s", err.msg);
        /* window w covers targets (prev_end, end]; the first window all of its L */
        double want = 0.0;
        for (size_t p = 1; p < N; p++) {
            size_t w = p <= L ? 0 : (p - L + S - 1) / S; /* the first window whose end reaches p */
            want += target_loss(&m, ids, w * S, p);
        }
        want /= (double)(N - 1);
        CHECK(tokens == N - 1, "stride %zu: %llu targets scored, want %d", S, (unsigned long long)tokens, N - 1);
        CHECK(fabs(loss - want) <= loss_tolerance(L, want), "stride %zu: loss %.7f, per-target %.7f", S, loss, want);
        model_free(&m);
    }
}

TEST(evaluate_windows_match_one_forward_per_row) {
    int32_t ids[N];
    random_stream(ids);
    const TokenView view = token_view_i32(ids, N);
    Model m;
    REQUIRE(tiny_model(&m, 5, 0, 3) == 0, "model");
    double loss;
    uint64_t tokens;
    Error err = {0};
    REQUIRE(evaluate_split(&m, &view, "valid", &loss, &tokens, &err) == 0, "%s", err.msg);
    /* 3 rows of 15 tokens: windows of 5 without context across them */
    double want = 0.0;
    for (size_t r = 0; r < 3; r++)
        for (size_t p = 1; p < 15; p++) want += target_loss(&m, ids + r * 15, (p - 1) / 5 * 5, p);
    want /= 42.0;
    CHECK(tokens == 42 && fabs(loss - want) <= loss_tolerance(5, want), "%llu tokens, loss %.7f vs %.7f", (unsigned long long)tokens, loss,
          want);
    model_free(&m);
}

/* lm_batching windows: the full non-overlapping windows of the one stream,
 * (N - 1) div L of them, batched 4 at a time (4, 4, 1), the tail unread. */
TEST(evaluate_lm_windows_scores_the_full_windows_of_the_stream) {
    int32_t ids[N];
    random_stream(ids);
    const TokenView view = token_view_i32(ids, N);
    Model m;
    REQUIRE(tiny_model_batched(&m, 5, 0, 4, "windows") == 0, "model");
    double loss;
    uint64_t tokens;
    Error err = {0};
    REQUIRE(evaluate_split(&m, &view, "valid", &loss, &tokens, &err) == 0, "%s", err.msg);
    double want = 0.0;
    for (size_t w = 0; w < (N - 1) / 5; w++)
        for (size_t p = 1; p <= 5; p++) want += target_loss(&m, ids + w * 5, 0, p);
    want /= (double)((N - 1) / 5 * 5);
    CHECK(tokens == (N - 1) / 5 * 5 && fabs(loss - want) <= loss_tolerance(5, want), "%llu tokens, loss %.7f vs %.7f",
          (unsigned long long)tokens, loss, want);
    const TokenView short_split = token_view_i32(ids, 5);
    CHECK(evaluate_split(&m, &short_split, "test", &loss, &tokens, &err) != 0 && strstr(err.msg, "test split"),
          "a split shorter than one window: %s", err.msg);
    model_free(&m);
}

/* The n-th line (from 0) of a metrics.jsonl, parsed; NULL if absent. */
static JsonValue *metrics_line(const char *dir, int n) {
    char path[600], line[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    JsonValue *v = NULL;
    Error err = {0};
    for (int i = 0; f && fgets(line, sizeof line, f); i++)
        if (i == n && json_parse(line, strlen(line) - 1, &v, &err)) printf("    %s\n", err.msg);
    if (f) fclose(f);
    return v;
}

static double number_of(const JsonValue *v, const char *key) {
    const JsonValue *x = json_get(v, key);
    return x ? x->number : NAN;
}

/* A resume keeps the lines up to its checkpoint whole, however long: a deep
 * model's statistics make training lines of tens of kilobytes. */
TEST(metrics_resume_keeps_long_lines_whole) {
    Metrics m = {0};
    Error err = {0};
    const char *dir = test_tmpdir();
    REQUIRE(metrics_open(&m, dir, NULL, false, &err) == 0, "%s", err.msg);
    enum { N_STATS = 400 };
    static char names[N_STATS][128];
    static double values[N_STATS];
    for (int i = 0; i < N_STATS; i++) {
        snprintf(names[i], sizeof names[i], "layers.%d.ffn.experts.load_fraction_%d", i / 16, i % 16);
        values[i] = 1.0 / (i + 3);
    }
    for (uint64_t step = 1; step <= 4; step++) {
        TrainLine l = {.step = step, .max_step = 4, .loss = 2.0, .lr = 1e-3, .grad_norm = 1.0,
                       .n_stats = N_STATS, .stat_names = names, .stat_values = values};
        metrics_train(&m, &l);
    }
    metrics_close(&m);
    REQUIRE(metrics_truncate_after(dir, 2, &err) == 0, "%s", err.msg);
    char path[700];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    REQUIRE(f, "cannot read %s", path);
    char *line = NULL;
    size_t capacity = 0;
    int lines = 0;
    for (ssize_t n; (n = getline(&line, &capacity, f)) != -1; lines++) {
        JsonValue *v = NULL;
        CHECK(n > 16384, "line %d is %zd bytes: the test needs lines longer than a line buffer", lines + 1, n);
        if (json_parse(line, (size_t)n - 1, &v, &err) != 0) {
            CHECK(false, "line %d is not JSON: %s", lines + 1, err.msg);
            continue;
        }
        CHECK(number_of(v, "step") == lines + 1, "line %d has step %g", lines + 1, number_of(v, "step"));
        json_free(v);
    }
    free(line);
    fclose(f);
    CHECK(lines == 2, "%d lines kept, want the 2 up to the checkpoint", lines);
}

/* The kept lines are copied byte for byte, a NUL in one included (found by
 * fuzz_jsonl: the line was cut at the NUL and joined to the next). */
TEST(metrics_resume_copies_lines_byte_for_byte) {
    static const char kept1[] = "{\"step\": 1, \"note\": \"a\0b\"}\n", dropped[] = "{\"step\": 9}\n",
                      kept2[] = "{\"step\": 2}";
    const char *dir = test_tmpdir();
    char path[700];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "wb");
    REQUIRE(f, "cannot write %s", path);
    fwrite(kept1, 1, sizeof kept1 - 1, f);
    fwrite(dropped, 1, sizeof dropped - 1, f);
    fwrite(kept2, 1, sizeof kept2 - 1, f);
    fclose(f);
    Error err = {0};
    REQUIRE(metrics_truncate_after(dir, 5, &err) == 0, "%s", err.msg);
    char got[256], want[256];
    f = fopen(path, "rb");
    REQUIRE(f, "cannot read %s", path);
    const size_t n = fread(got, 1, sizeof got, f);
    fclose(f);
    memcpy(want, kept1, sizeof kept1 - 1);
    memcpy(want + sizeof kept1 - 1, kept2, sizeof kept2 - 1);
    const size_t want_n = sizeof kept1 - 1 + sizeof kept2 - 1;
    CHECK(n == want_n && !memcmp(got, want, want_n), "rewritten file: %zu bytes, want %zu", n, want_n);
}

/* Every labelled-task evaluation reports the best of each score so far on its
 * split (GLUE reports the best dev score over epochs); MCC and correlations
 * can be negative, so the best starts below any value; splits are apart. */
TEST(metrics_keep_the_best_score_of_each_split) {
    Metrics m = {0};
    Error err = {0};
    char dir[600];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    REQUIRE(metrics_open(&m, dir, NULL, false, &err) == 0, "%s", err.msg);
    const double acc[3] = {0.5, 0.7, 0.6}, f1[3] = {0.2, 0.1, 0.3}, mcc[3] = {-0.4, -0.2, -0.5};
    for (int i = 0; i < 3; i++) {
        EvalResult r = {.loss = 1.0, .count = 10, .classes = true, .accuracy = acc[i], .f1 = f1[i], .mcc = mcc[i]};
        metrics_eval_result(&m, (uint64_t)i, "valid", &r, 0.0);
    }
    EvalResult t = {.loss = 1.0, .count = 10, .classes = true, .accuracy = 0.1, .f1 = 0.1, .mcc = -0.9};
    metrics_eval_result(&m, 3, "test", &t, 0.0);
    metrics_close(&m);
    JsonValue *v = metrics_line(dir, 2), *w = metrics_line(dir, 3);
    REQUIRE(v && w, "metrics lines missing in %s", dir);
    CHECK(number_of(v, "best_accuracy") == 0.7 && number_of(v, "best_f1") == 0.3 && number_of(v, "best_mcc") == -0.2,
          "valid best %g %g %g", number_of(v, "best_accuracy"), number_of(v, "best_f1"), number_of(v, "best_mcc"));
    CHECK(number_of(w, "best_accuracy") == 0.1 && number_of(w, "best_mcc") == -0.9, "test best %g %g",
          number_of(w, "best_accuracy"), number_of(w, "best_mcc"));
    json_free(v);
    json_free(w);
}
