/* test_masks.c — every mixer the LRA compares, bidirectional with padding
 * masks (issue: LRA and Speech Commands): a padded batch of rows of
 * different lengths gives each example the class scores it gets alone,
 * unpadded, and the tokens at the padding change nothing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taskrig.h"
#include "test.h"

enum { MASK_B = 4, MASK_T = 32, MASK_V = 11, MASK_K = 3 };

/* The mixers of the comparison tables, at tiny sizes; chunks and windows
 * smaller than the rows so that the padded and the real positions share them. */
static const char *const mixers[][2] = {
    {"softmax", "mixer.name=softmax"},
    {"linear", "mixer.name=linear"},
    {"band", "mixer.name=band;diag_size=3"},
    {"fmm", "mixer.name=fmm;diag_size=3"},
    {"nystrom", "mixer.name=nystrom;mixer.num_landmarks=4"},
    {"s5", "mixer.name=s5;mixer.ssm_size=8;mixer.blocks=2"},
    {"mega", "mixer.name=mega;mixer.z_dim=8;mixer.h_dim=32;mixer.n_dim=4;mixer.chunk_size=8;mixer.norm_type=layernorm"},
    {"seqboat", "mixer.name=seqboat;mixer.z_dim=8;mixer.h_dim=32;mixer.n_dim=4;mixer.chunk_size=8;"
                "mixer.norm_type=layernorm"},
};

static int32_t token(size_t r, size_t t) { return (int32_t)((r * 13 + t * 7 + 3) % MASK_V); }

/* The class scores of one example alone: a batch of one row of len tokens, no mask. */
static int scores_alone(Model *m, size_t r, size_t len, float *out) {
    int32_t ids[MASK_T], label = 0;
    for (size_t t = 0; t < len; t++) ids[t] = token(r, t);
    Batch b = {.B = 1, .T = len, .ids = ids, .labels = &label};
    PassMode mode = {.training = false};
    Error err = {0};
    double loss;
    if (model_plan(m, 1, len, &err) || model_forward_batch(m, &b, &mode, 0.0f, &loss, &err))
        return printf("    %s\n", err.msg), -1;
    memcpy(out, m->obj.scores, MASK_K * sizeof *out);
    return 0;
}

/* The scores of every row of a padded batch (lengths len[r]); the padding
 * holds tokens drawn from `salt`. */
static int scores_padded(Model *m, const size_t *len, int salt, float *out) {
    int32_t ids[MASK_B * MASK_T], labels[MASK_B] = {0};
    float mask[MASK_B * MASK_T];
    for (size_t r = 0; r < MASK_B; r++)
        for (size_t t = 0; t < MASK_T; t++) {
            const bool real = t < len[r];
            ids[r * MASK_T + t] = real ? token(r, t) : (int32_t)((t * 5 + (size_t)salt) % MASK_V);
            mask[r * MASK_T + t] = real ? 1.0f : 0.0f;
        }
    Batch b = {.B = MASK_B, .T = MASK_T, .ids = ids, .mask = mask, .labels = labels};
    PassMode mode = {.training = false};
    Error err = {0};
    double loss;
    if (model_plan(m, MASK_B, MASK_T, &err) || model_forward_batch(m, &b, &mode, 0.0f, &loss, &err))
        return printf("    %s\n", err.msg), -1;
    memcpy(out, m->obj.scores, MASK_B * MASK_K * sizeof *out);
    return 0;
}

TEST(every_mixer_bidirectional_with_masks_scores_each_example_as_alone) {
    const size_t len[MASK_B] = {9, 32, 17, 24};
    for (size_t k = 0; k < sizeof mixers / sizeof *mixers; k++) {
        char entries[400];
        snprintf(entries, sizeof entries, "arch=sfsf;objective.pooling=mean;objective.classes=%d;tgt_len=%d;%s", MASK_K,
                 MASK_T, mixers[k][1]);
        Model m;
        Config c;
        REQUIRE(taskrig_model(&m, &c, "classification", entries, MASK_V) == 0, "%s: build", mixers[k][0]);
        float padded[MASK_B * MASK_K], other[MASK_B * MASK_K], alone[MASK_K];
        REQUIRE(scores_padded(&m, len, 1, padded) == 0 && scores_padded(&m, len, 4, other) == 0, "%s: padded pass",
                mixers[k][0]);
        for (size_t i = 0; i < MASK_B * MASK_K; i++)
            CHECK(padded[i] == other[i], "%s: the padding's tokens moved score %zu (%.9g vs %.9g)", mixers[k][0], i,
                  (double)padded[i], (double)other[i]);
        for (size_t r = 0; r < MASK_B; r++) {
            REQUIRE(scores_alone(&m, r, len[r], alone) == 0, "%s: row %zu alone", mixers[k][0], r);
            for (size_t j = 0; j < MASK_K; j++) {
                const double a = alone[j], p = padded[r * MASK_K + j];
                /* the same sums in other tiles and orders: float rounding of O(1) scores */
                CHECK(fabs(a - p) <= 2e-5 * (1.0 + fabs(a)), "%s: row %zu (%zu real of %d) class %zu: %.9g padded, "
                      "%.9g alone", mixers[k][0], r, len[r], MASK_T, j, p, a);
            }
        }
        model_free(&m);
    }
}

/* Gradients of a padded batch: finite, and the same whatever tokens the
 * padding holds (nothing flows from or to it). Rows of 3, 9 and 16 real
 * tokens, so some band queries at the padding see no key at all. */
static float *padded_gradients(Model *m, int salt, const char *const *names, size_t n, const char *label) {
    enum { B = 3, T = 16 };
    static const size_t len[B] = {3, 9, 16};
    int32_t ids[B * T], labels[B] = {0, 2, 1};
    float mask[B * T];
    for (size_t i = 0; i < B * T; i++) {
        const bool real = i % T < len[i / T];
        ids[i] = real ? token(i / T, i % T) : (int32_t)((i * 5 + (size_t)salt) % MASK_V);
        mask[i] = real ? 1.0f : 0.0f;
    }
    Batch b = {.B = B, .T = T, .ids = ids, .mask = mask, .labels = labels};
    double loss;
    return taskrig_gradients(m, &b, (PassMode){.training = false}, names, n, label, &loss);
}

/* How many gradients differ between a and b (NaN counts), and the first parameter that does. */
static size_t moved_gradients(const Model *m, const float *a, const float *b, const char **first) {
    size_t moved = 0;
    *first = "";
    for (size_t p = 0; p < m->params.count; p++) {
        const ParamSpec *ps = &m->params.specs[p];
        for (size_t i = ps->offset; i < ps->offset + ps->numel; i++)
            if (!(a[i] == b[i]) && !moved++) *first = ps->name;
    }
    return moved;
}

TEST(every_mixer_with_masks_gradients_ignore_the_padding) {
    for (size_t k = 0; k < sizeof mixers / sizeof *mixers; k++) {
        char entries[400];
        snprintf(entries, sizeof entries, "arch=sfsf;tgt_len=16;objective.pooling=mean;objective.classes=%d;%s", MASK_K,
                 mixers[k][1]);
        Model m;
        Config c;
        REQUIRE(taskrig_model(&m, &c, "classification", entries, MASK_V) == 0, "%s: build", mixers[k][0]);
        float *a = padded_gradients(&m, 1, NULL, 0, mixers[k][0]), *b = padded_gradients(&m, 4, NULL, 0, mixers[k][0]);
        REQUIRE(a && b, "%s: the pass failed", mixers[k][0]);
        const char *first;
        const size_t moved = moved_gradients(&m, a, b, &first);
        CHECK(moved == 0, "%s: %zu gradients are NaN or moved with the padding's tokens (first of %s)", mixers[k][0],
              moved, first);
        free(a);
        free(b);
        model_free(&m);
    }
}

/* Linear attention's far field with padding (the keys at the padding get
 * zero features): the whole pass's gradients against finite differences,
 * for the linear and the fmm mixers, bidirectional. */
TEST(linear_attention_with_padding_gradients) {
    static const char *const cases[] = {"mixer.name=linear", "mixer.name=fmm;diag_size=3;kernels=elu,elu_flip"};
    const char *names[] = {"blocks.0.mixer.qkv_net.weight", "blocks.0.mixer.o_net.weight"};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char entries[200];
        snprintf(entries, sizeof entries, "tgt_len=16;objective.pooling=mean;objective.classes=%d;%s", MASK_K, cases[k]);
        Model m;
        Config c;
        REQUIRE(taskrig_model(&m, &c, "classification", entries, MASK_V) == 0, "%s: build", cases[k]);
        float *g = padded_gradients(&m, 1, names, 2, cases[k]);
        CHECK(g, "%s: the pass failed", cases[k]);
        free(g);
        model_free(&m);
    }
}
