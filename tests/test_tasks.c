/* test_tasks.c — the tasks of src/tasks: TSV examples as GLUE writes them,
 * the metrics against hand-computed values, BERT masking's proportions and
 * determinism, padded batches, and the pooled objectives: gradients against
 * finite differences and padding that changes nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/core/rng.h"
#include "../src/core/file.h"
#include "../src/tasks/task.h"
#include "../src/train/checkpoint.h"
#include "gradcheck.h"
#include "rig.h"
#include "taskrig.h"
#include "test.h"

static const char *write_tsv(const char *name, const char *text) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    test_write_file(path, text, strlen(text));
    return path;
}

TEST(examples_read_glue_tsv) {
    Config c;
    config_defaults(&c);
    Error err = {0};
    Examples ex;
    const char *p = write_tsv("sst.tsv", "sentence\tlabel\nit 's good . \t1\nbad \t0\n");
    REQUIRE(examples_read(&ex, p, &c, false, true, &err) == 0, "%s", err.msg);
    CHECK(ex.n == 2 && ex.labelled && ex.labels[0] == 1 && ex.labels[1] == 0, "%zu examples", ex.n);
    CHECK(ex.text_start[1] == strlen("it 's good .") && !memcmp(ex.chars, "it 's good .", 12), "trailing blank cut");
    examples_free(&ex);
    /* a pair, columns by name after a byte-order mark, a number label */
    snprintf(c.text_column, sizeof c.text_column, "sentence1");
    snprintf(c.text2_column, sizeof c.text2_column, "sentence2");
    snprintf(c.label_column, sizeof c.label_column, "score");
    p = write_tsv("sts.tsv", "\xEF\xBB\xBFindex\tsentence1\tsentence2\tscore\n0\ta cat\ta dog\t3.5\n1\tx\ty\t0\n");
    REQUIRE(examples_read(&ex, p, &c, true, true, &err) == 0, "%s", err.msg);
    CHECK(ex.n == 2 && ex.texts == 2 && ex.values[0] == 3.5f, "pairs with numbers");
    examples_free(&ex);
    /* test files without labels read, but training data must have them */
    config_defaults(&c);
    p = write_tsv("test.tsv", "index\tsentence\n0\tfoo\n");
    CHECK(examples_read(&ex, p, &c, false, false, &err) == 0 && !ex.labelled, "unlabelled test file: %s", err.msg);
    examples_free(&ex);
    CHECK(examples_read(&ex, p, &c, false, true, &err) == -1 && strstr(err.msg, "test.tsv:2: no label"), "%s", err.msg);
    /* columns by index without a header; errors name file and line */
    c.header = false;
    snprintf(c.text_column, sizeof c.text_column, "3");
    snprintf(c.label_column, sizeof c.label_column, "1");
    p = write_tsv("cola.tsv", "gj04\t1\t\tThe sailors rode the breeze .\ngj04\tx\t*\tNo .\n");
    CHECK(examples_read(&ex, p, &c, false, true, &err) == -1 && strstr(err.msg, "cola.tsv:2: label 'x'"), "%s", err.msg);
    c.header = true;
    snprintf(c.text_column, sizeof c.text_column, "review");
    p = write_tsv("bad.tsv", "sentence\tlabel\nfoo\t1\n");
    CHECK(examples_read(&ex, p, &c, false, true, &err) == -1 && strstr(err.msg, "no column 'review'"), "%s", err.msg);
    CHECK(examples_read(&ex, write_tsv("empty.tsv", "sentence\tlabel\n"), &c, false, true, &err) == -1, "no examples");
    /* labels by name (RTE, QNLI, MNLI): the place in label_names; an unknown name names file and line */
    config_defaults(&c);
    snprintf(c.text_column, sizeof c.text_column, "sentence1");
    snprintf(c.text2_column, sizeof c.text2_column, "sentence2");
    snprintf(c.label_names, sizeof c.label_names, "entailment,not_entailment");
    p = write_tsv("rte.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tnot_entailment\n1\tc\td\tentailment\n");
    REQUIRE(examples_read(&ex, p, &c, false, true, &err) == 0, "%s", err.msg);
    CHECK(ex.n == 2 && ex.labels[0] == 1 && ex.labels[1] == 0, "RTE labels %d %d", ex.labels[0], ex.labels[1]);
    examples_free(&ex);
    p = write_tsv("rte_bad.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentail\n");
    CHECK(examples_read(&ex, p, &c, false, true, &err) == -1 && strstr(err.msg, "rte_bad.tsv:2: label 'entail' is none"),
          "%s", err.msg);
    /* MNLI's layout (GLUE's dev_matched.tsv: 12 columns, the pair in 8 and 9, gold_label last) */
    snprintf(c.label_column, sizeof c.label_column, "gold_label");
    snprintf(c.label_names, sizeof c.label_names, "contradiction,entailment,neutral");
    p = write_tsv("mnli.tsv", "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
                              "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n"
                              "0\t1\t1n\tgov\t( a )\t( b )\t(ROOT a)\t(ROOT b)\tThe cat sat.\tA cat sat.\t"
                              "entailment\tentailment\n"
                              "1\t2\t2c\tgov\t( c )\t( d )\t(ROOT c)\t(ROOT d)\tIt rains.\tIt is dry.\t"
                              "contradiction\tcontradiction\n");
    REQUIRE(examples_read(&ex, p, &c, false, true, &err) == 0, "%s", err.msg);
    CHECK(ex.n == 2 && ex.texts == 2 && ex.labels[0] == 1 && ex.labels[1] == 0 &&
              !memcmp(ex.chars + ex.text_start[0], "The cat sat.", 12),
          "MNLI: %zu examples, labels %d %d", ex.n, ex.labels[0], ex.labels[1]);
    examples_free(&ex);
    /* QQP's layout (id, qid1, qid2, question1, question2, is_duplicate) */
    config_defaults(&c);
    snprintf(c.text_column, sizeof c.text_column, "question1");
    snprintf(c.text2_column, sizeof c.text2_column, "question2");
    snprintf(c.label_column, sizeof c.label_column, "is_duplicate");
    p = write_tsv("qqp.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                             "5\t11\t12\tHow do I cook rice?\tHow to cook rice?\t1\n"
                             "6\t13\t14\tWhat is AI?\tWho won?\t0\n7\t15\t16\tonly one question\n");
    CHECK(examples_read(&ex, p, &c, false, true, &err) == -1 && strstr(err.msg, "qqp.tsv:4:"),
          "a QQP line with a missing column: %s", err.msg);
    p = write_tsv("qqp_ok.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                                "5\t11\t12\tHow do I cook rice?\tHow to cook rice?\t1\n6\t13\t14\tWhat is AI?\tWho won?\t0\n");
    REQUIRE(examples_read(&ex, p, &c, false, true, &err) == 0, "%s", err.msg);
    CHECK(ex.n == 2 && ex.labels[0] == 1 && ex.labels[1] == 0, "QQP: %zu examples", ex.n);
    examples_free(&ex);
}

TEST(scores_against_hand_computed_values) {
    const int32_t pred[] = {1, 1, 0, 0, 1, 0}, label[] = {1, 0, 0, 1, 1, 0};
    double acc, f1, mcc;
    scores_classes(pred, label, 6, 2, &acc, &f1, &mcc);
    /* tp 2, fp 1, fn 1, tn 2: accuracy 4/6, F1 2*2/(4+1+1), MCC (2*2 - 1*1)/sqrt(3*3*3*3) = 1/3 */
    CHECK(fabs(acc - 4.0 / 6) < 1e-12 && fabs(f1 - 4.0 / 6) < 1e-12 && fabs(mcc - 1.0 / 3) < 1e-12,
          "accuracy %.6f, f1 %.6f, mcc %.6f", acc, f1, mcc);
    const int32_t same[] = {0, 0, 0};
    scores_classes(same, same, 3, 2, &acc, &f1, &mcc);
    CHECK(acc == 1.0 && mcc == 0.0, "one class only: MCC is 0 (its denominator is 0)");
    const float x[] = {1, 2, 3, 4, 5}, y[] = {2, 4, 6, 8, 11}, z[] = {5, 4, 4, 2, 1};
    double p, s;
    scores_correlation(x, y, 5, &p, &s);
    CHECK(fabs(s - 1.0) < 1e-12 && p > 0.99 && p < 1.0, "monotone: spearman 1, pearson %.6f", p);
    scores_correlation(x, z, 5, &p, &s);
    /* ranks of z with a tie: 5 3.5 3.5 2 1 -> spearman -0.9746794 */
    CHECK(fabs(s + 0.9746794344808963) < 1e-9, "tied ranks: spearman %.9f", s);
}

/* Classification and regression with every pooling and pairs: gradients of
 * the head and of a trunk weight against finite differences; the values at
 * padding positions change nothing. */
TEST(pooled_objectives_gradients_and_padding) {
    static const char *const cases[][2] = {{"classification", "objective.pooling=mean;objective.classes=3"},
                                           {"classification", "objective.pooling=first"},
                                           {"classification", "objective.pooling=last;objective.pair=true"},
                                           {"regression", "objective.pooling=mean;objective.pair=true"},
                                           {"regression", "objective.pooling=last;mixer.name=dwconv"},
                                           {"classification", "objective.pooling=first;objective.pooler=tanh"}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        Model m;
        Config c;
        REQUIRE(taskrig_model(&m, &c, cases[k][0], cases[k][1], 11) == 0, "case %zu", k);
        const size_t B = 4, T = 8;
        int32_t ids[32], labels[4] = {0, 1, 2, 1};
        float mask[32], values[4] = {0.5f, -1.0f, 2.0f, 0.0f};
        for (size_t i = 0; i < B * T; i++) {
            ids[i] = (int32_t)((i * 7 + 3) % 11);
            mask[i] = i % T < 3 + (i / T) ? 1.0f : 0.0f; /* rows of 3, 4, 5, 6 real tokens */
        }
        if (m.obj.K == 2) labels[2] = 0;
        Batch b = {.B = B, .T = T, .ids = ids, .mask = mask, .labels = labels, .values = values};
        if (!strcmp(cases[k][0], "regression")) b.labels = NULL;
        else b.values = NULL;
        Error err = {0};
        PassMode mode = {.training = false};
        const char *names[] = {"head.weight", "head.bias", "blocks.0.norm.weight", "blocks.1.ffn.fc1.weight",
                               "pooler.weight", "pooler.bias"};
        char label[200];
        snprintf(label, sizeof label, "case %zu (%s %s)", k, cases[k][0], cases[k][1]);
        double loss;
        float *grads = taskrig_gradients(&m, &b, mode, names, m.obj.pw ? 6u : 4u, label, &loss);
        REQUIRE(grads, "%s", label);
        for (size_t i = 0; i < B * T; i++)
            if (mask[i] == 0.0f) ids[i] = (int32_t)((i * 5 + 1) % 11); /* other tokens at the padding */
        double again;
        REQUIRE(model_forward_batch(&m, &b, &mode, 0.0f, &again, &err) == 0, "%s", err.msg);
        CHECK(again == loss, "case %zu: the padding's tokens moved the loss (%.9g vs %.9g)", k, again, loss);
        free(grads);
        model_free(&m);
    }
}

/* BERT's pooler with its two dropouts while training: gradients with the
 * step's fixed masks against finite differences, and rows 2-3 run as a
 * micro-batch (row0 = 2) lose exactly what they lose in the whole batch. */
TEST(pooler_dropout_is_keyed_by_example) {
    Model m;
    Config c;
    REQUIRE(taskrig_model(&m, &c, "classification", "objective.pooling=first;objective.pooler=tanh;dropout=0.3", 11) == 0,
            "build");
    const size_t B = 4, T = 8;
    int32_t ids[32], labels[4] = {0, 1, 1, 0};
    for (size_t i = 0; i < B * T; i++) ids[i] = (int32_t)((i * 7 + 3) % 11);
    Batch b = {.B = B, .T = T, .ids = ids, .labels = labels};
    const PassMode training = {.training = true, .seed = 4, .step = 9};
    const char *names[] = {"pooler.weight", "pooler.bias", "blocks.0.mixer.q_net.weight"};
    double loss;
    float *grads = taskrig_gradients(&m, &b, training, names, 3, "pooler", &loss);
    REQUIRE(grads, "the pass failed");
    Error err = {0};
    float whole[4];
    REQUIRE(model_plan(&m, B, T, &err) == 0 && model_forward_batch(&m, &b, &training, 0.0f, &loss, &err) == 0, "%s",
            err.msg);
    memcpy(whole, m.obj.losses, sizeof whole);
    Batch part = {.B = 2, .T = T, .ids = ids + 2 * T, .labels = labels + 2};
    PassMode mode = training;
    mode.row0 = 2;
    REQUIRE(model_plan(&m, 2, T, &err) == 0 && model_forward_batch(&m, &part, &mode, 0.0f, &loss, &err) == 0, "%s",
            err.msg);
    CHECK(m.obj.losses[0] == whole[2] && m.obj.losses[1] == whole[3],
          "micro-batch losses %.9g %.9g, whole batch %.9g %.9g", m.obj.losses[0], m.obj.losses[1], whole[2], whole[3]);
    free(grads);
    model_free(&m);
}

/* The Nystromformer seed's encoder (tasks-fmm-nystrom.md B.3): positions from
 * row 2, a type vector, LayerNorm over the embeddings, post-LN blocks of
 * Nystrom attention (with its own n_head, which sets the head width when
 * d_head is not given), the MLM head transform and a decoder bias, PyTorch's
 * init. Gradients of the new parameters and of the mixer against finite
 * differences at the masked positions' loss; a masked position's loss does not
 * depend on table rows 0 and 1, which no token reads. */
TEST(mlm_encoder_of_the_nystromformer_seed) {
    Model m;
    Config c;
    REQUIRE(taskrig_model(&m, &c, "mlm",
                       "pos_offset=2;type_embed=true;embed_norm=true;objective.mlm_transform=true;head_bias=true;"
                       "norm=post;activation=gelu_tanh;init=pytorch;mixer.name=nystrom;mixer.num_landmarks=2;"
                       "mixer.conv_kernel_size=3;mixer.n_head=4",
                       13) == 0,
            "build");
    const ParamSpec *pos = params_find(&m.params, "pos_embed.weight");
    REQUIRE(pos && pos->shape[0] == 8 + 2, "the position table has max_len + 2 rows");
    /* the mixer's own n_head (4, the model's is 2) divides the width: 4 heads of 4 */
    const ParamSpec *wq = params_find(&m.params, "blocks.0.mixer.W_q.weight");
    CHECK(wq && wq->shape[0] == 16, "W_q has %zu rows, want 16 (4 heads of d_model 16 / 4)", wq ? wq->shape[0] : 0);
    const size_t B = 2, T = 8;
    int32_t ids[16], targets[16];
    for (size_t i = 0; i < B * T; i++) {
        ids[i] = (int32_t)((i * 5 + 2) % 13);
        targets[i] = i % 3 == 1 ? (int32_t)((i * 7 + 1) % 13) : -1;
    }
    Batch b = {.B = B, .T = T, .ids = ids, .targets = targets};
    const char *names[] = {"type_embed.weight", "embed_norm.weight", "embed_norm.bias", "pos_embed.weight",
                           "mlm_head.dense.weight", "mlm_head.dense.bias", "mlm_head.norm.weight", "mlm_head.norm.bias",
                           "head.bias", "embed.weight", "blocks.0.mixer.W_q.weight", "blocks.0.mixer.conv.weight"};
    double loss;
    float *grads = taskrig_gradients(&m, &b, (PassMode){.training = false}, names, sizeof names / sizeof *names,
                                     "encoder", &loss);
    REQUIRE(grads, "the pass failed");
    double unused = 0.0;
    for (size_t i = 0; i < 2 * m.C; i++) unused = fmax(unused, fabs(grads[pos->offset + i]));
    CHECK(unused == 0.0, "position rows 0 and 1 got a gradient (%.3g)", unused);
    free(grads);
    model_free(&m);
}

/* init_from (the seed's from_cp, tasks-fmm-nystrom.md B.5): an MLM encoder
 * of 8 positions saved, a classifier of 32 positions started from it: the
 * shared weights equal, the position table rows 0-1 kept and 2.. tiled 4
 * times, the MLM head transform skipped, the classifier's head (its
 * head.bias has the MLM decoder's name but not its shape) left at its
 * initial values; the report counts each. A length that is not a multiple, or a
 * width that differs, is refused and leaves the model as it was. */
TEST(init_from_tiles_positions_and_reports_what_it_took) {
    const char *encoder = "pos_offset=2;type_embed=true;embed_norm=true;norm=post;mixer.name=nystrom;"
                          "mixer.num_landmarks=4";
    char entries[512];
    Model src, dst, bad;
    Config cs, cd, cb;
    snprintf(entries, sizeof entries, "%s;objective.mlm_transform=true;head_bias=true", encoder);
    REQUIRE(taskrig_model(&src, &cs, "mlm", entries, 13) == 0, "source");
    Optimizer opt;
    Error err = {0};
    REQUIRE(optim_build(&opt, &cs, &src.params, &err) == 0, "%s", err.msg);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/source_run", test_tmpdir());
    TrainState st = {.step = 7};
    REQUIRE(file_make_dirs(dir, &err) == 0 && ckpt_save(dir, &src, &opt, &st, 1, &err) == 0, "%s", err.msg);
    snprintf(entries, sizeof entries, "%s;max_len=32;tgt_len=32;objective.pooling=first", encoder);
    REQUIRE(taskrig_model(&dst, &cd, "classification", entries, 13) == 0, "destination");
    const ParamSpec *head = params_find(&dst.params, "head.weight");
    REQUIRE(head, "no classifier head");
    float *head_before = malloc(head->numel * sizeof(float));
    memcpy(head_before, dst.params.values + head->offset, head->numel * sizeof(float));
    CkptInit r;
    CHECK(ckpt_init_from(dir, 8, &dst, &r, &err) == -1 && strstr(err.msg, "no readable checkpoint of step 8"),
          "step 8: %s", err.msg);
    REQUIRE(ckpt_init_from(dir, 7, &dst, &r, &err) == 0, "%s", err.msg);
    CHECK(r.tiled == 1 && r.fresh == 2 && r.skipped == 4 && r.loaded + r.tiled + r.fresh == dst.params.count,
          "loaded %zu tiled %zu (%s) fresh %zu (%s) skipped %zu (%s)", r.loaded, r.tiled, r.tiled_names, r.fresh,
          r.fresh_names, r.skipped, r.skipped_names);
    const float *a = src.params.values + params_find(&src.params, "pos_embed.weight")->offset,
                *b = dst.params.values + params_find(&dst.params, "pos_embed.weight")->offset;
    int wrong = 0;
    for (size_t row = 0; row < 34; row++) {
        const size_t from = row < 2 ? row : 2 + (row - 2) % 8;
        wrong += memcmp(b + row * 16, a + from * 16, 16 * sizeof(float)) != 0;
    }
    CHECK(wrong == 0, "%d of 34 position rows are not the tiled source rows", wrong);
    const ParamSpec *wq = params_find(&src.params, "blocks.0.mixer.W_q.weight");
    CHECK(memcmp(src.params.values + wq->offset, dst.params.values + params_find(&dst.params, wq->name)->offset,
                 wq->numel * sizeof(float)) == 0, "W_q was not loaded");
    CHECK(memcmp(head_before, dst.params.values + head->offset, head->numel * sizeof(float)) == 0,
          "the new head was overwritten");
    /* 30 positions are not a multiple of 8; a width of 32 is not 16 */
    snprintf(entries, sizeof entries, "%s;max_len=30;tgt_len=30", encoder);
    REQUIRE(taskrig_model(&bad, &cb, "mlm", entries, 13) == 0, "bad length");
    float *before = malloc(bad.params.total * sizeof(float));
    memcpy(before, bad.params.values, bad.params.total * sizeof(float));
    CHECK(ckpt_init_from(dir, 0, &bad, &r, &err) == -1 && strstr(err.msg, "not a multiple"), "30 positions: %s", err.msg);
    CHECK(memcmp(before, bad.params.values, bad.params.total * sizeof(float)) == 0, "a refused init changed the model");
    model_free(&bad);
    snprintf(entries, sizeof entries, "%s;d_model=32", encoder);
    REQUIRE(taskrig_model(&bad, &cb, "mlm", entries, 13) == 0, "bad width");
    CHECK(ckpt_init_from(dir, 0, &bad, &r, &err) == -1 && strstr(err.msg, "the model needs"), "width 32: %s", err.msg);
    model_free(&bad);
    /* a vocabulary of 15 (two added tokens): the 13 rows load, the added two keep their initial values */
    snprintf(entries, sizeof entries, "%s;objective.mlm_transform=true;head_bias=true", encoder);
    REQUIRE(taskrig_model(&bad, &cb, "mlm", entries, 15) == 0, "grown vocabulary");
    const size_t emb = params_find(&bad.params, "embed.weight")->offset;
    float added[2 * 16];
    memcpy(added, bad.params.values + emb + 13 * 16, sizeof added);
    REQUIRE(ckpt_init_from(dir, 0, &bad, &r, &err) == 0, "%s", err.msg);
    CHECK(!memcmp(bad.params.values + emb, src.params.values + params_find(&src.params, "embed.weight")->offset,
                  13 * 16 * sizeof(float)) &&
              !memcmp(bad.params.values + emb + 13 * 16, added, sizeof added) && strstr(r.tiled_names, "embed.weight") &&
              strstr(r.tiled_names, "head.bias") && r.fresh == 0,
          "grown vocabulary: reshaped '%s', fresh %zu (%s)", r.tiled_names, r.fresh, r.fresh_names);
    free(before);
    free(head_before);
    model_free(&bad);
    model_free(&dst);
    optim_free(&opt);
    model_free(&src);
}

/* Word-level classification of the TSV at `file`, batches of 2, rows of at most 8. */
static void classification_config(Config *c, const char *file) {
    config_defaults(c);
    snprintf(c->task, sizeof c->task, "classification");
    snprintf(c->tokenizer, sizeof c->tokenizer, "word");
    snprintf(c->train_file, sizeof c->train_file, "%s", file);
    c->batch_size = 2;
    c->tgt_len = 8;
}

/* mlm masks about mlm_probability of the tokens, 80/10/10, the same way for
 * the same step, never choosing a special token as a random replacement;
 * labelled batches are padded and every example comes once per epoch. */
TEST(task_batches_mask_and_pad) {
    Config c;
    config_defaults(&c);
    snprintf(c.task, sizeof c.task, "mlm");
    snprintf(c.tokenizer, sizeof c.tokenizer, "char");
    char text[20001];
    for (size_t i = 0; i < 20000; i++) text[i] = (char)('a' + (i * 7919) % 26);
    text[20000] = 0;
    snprintf(c.data, sizeof c.data, "%s", write_tsv("mlm.txt", text));
    c.batch_size = 8;
    c.tgt_len = 128;
    Error err = {0};
    REQUIRE(config_finalize(&c, &err) == 0, "%s", err.msg);
    Tokenizer tok;
    Task t;
    REQUIRE(corpus_tokenizer(&c, &tok, &err) == 0 && task_open(&t, &c, &tok, true, &err) == 0, "%s", err.msg);
    CHECK(t.V == 26 + TASK_SPECIALS && t.mask == 27, "specials after the 26 letters: V %zu", t.V);
    Batch b;
    size_t chosen = 0, masked = 0, kept = 0, total = 0;
    int32_t first[8 * 128];
    for (uint64_t step = 0; step < 20; step++) {
        REQUIRE(task_next(&t, &b, step, &err) == 0, "%s", err.msg);
        if (step == 0) memcpy(first, b.ids, sizeof first);
        for (size_t i = 0; i < b.B * b.T; i++) {
            total++;
            if (b.targets[i] < 0) continue;
            chosen++;
            masked += b.ids[i] == t.mask;
            kept += b.ids[i] == b.targets[i];
            CHECK(b.ids[i] == t.mask || b.ids[i] < 26, "a special token as the random replacement");
        }
        size_t n_scored = 0;
        for (size_t i = 0; i < b.B * b.T; i++) n_scored += b.targets[i] >= 0;
        CHECK(b.scored == n_scored, "the batch scores %zu tokens but says %zu", n_scored, b.scored);
    }
    CHECK(fabs((double)chosen / total - 0.15) < 0.01, "chosen %.4f of the tokens", (double)chosen / total);
    CHECK(fabs((double)masked / chosen - 0.8) < 0.03, "<mask> for %.3f of the chosen", (double)masked / chosen);
    CHECK(fabs((double)kept / chosen - 0.1) < 0.03 + 1.0 / 26, "kept %.3f (10%% plus random hits)", (double)kept / chosen);
    task_resume(&t, 0, 0);
    REQUIRE(task_next(&t, &b, 0, &err) == 0, "%s", err.msg);
    CHECK(!memcmp(first, b.ids, sizeof first), "step 0 masked differently the second time");
    task_free(&t);

    /* mlm_blocks: <cls>, 126 consecutive letters of the stream, <sep>; the specials are never masked */
    c.mlm_blocks = true;
    REQUIRE(task_open(&t, &c, &tok, false, &err) == 0, "%s", err.msg);
    chosen = total = 0;
    for (uint64_t step = 0; step < 5; step++) {
        REQUIRE(task_next(&t, &b, step, &err) == 0, "%s", err.msg);
        CHECK(b.T == 128, "rows of %zu", b.T);
        for (size_t r = 0; r < b.B; r++) {
            const int32_t *row = b.ids + r * 128, *tg = b.targets + r * 128;
            CHECK(row[0] == t.cls && row[127] == t.sep && tg[0] == -1 && tg[127] == -1, "row %zu: ends %d %d", r,
                  row[0], row[127]);
            int consecutive = 1; /* the text's letters follow 'a' + (i * 7919) % 26: each next is +15 mod 26 */
            for (size_t p = 1; p + 1 < 127; p++) {
                const int32_t a = tg[p] >= 0 ? tg[p] : row[p], z = tg[p + 1] >= 0 ? tg[p + 1] : row[p + 1];
                consecutive &= (a + 15) % 26 == z;
            }
            CHECK(consecutive, "row %zu is not a block of the stream", r);
            for (size_t p = 1; p < 127; p++) chosen += tg[p] >= 0, total++;
        }
    }
    CHECK(fabs((double)chosen / total - 0.15) < 0.02, "blocks: chosen %.4f of the tokens", (double)chosen / total);
    task_free(&t);
    tokenizer_free(&tok);

    classification_config(&c, write_tsv("cls.tsv", "sentence\tlabel\na b c\t0\nd\t1\ne f\t1\na a a a a a a a a a a\t0\nb\t1\n"));
    REQUIRE(taskrig_open(&c, &tok, &t, &err) == 0, "%s", err.msg);
    int sig[6], n_sig = 0; /* (length, first id) of the rows of the first epoch: every example once */
    for (uint64_t step = 0; step < 5; step++) { /* two epochs of 5 examples in batches of 2 */
        REQUIRE(task_next(&t, &b, step, &err) == 0, "%s", err.msg);
        CHECK(b.T == 8 && b.B == 2 && b.scored == 2, "a batch of %zu x %zu", b.B, b.T);
        for (size_t r = 0; r < 2; r++) {
            size_t len = 0;
            while (len < b.T && b.mask[r * b.T + len] == 1.0f) len++;
            for (size_t p = len; p < b.T; p++)
                CHECK(b.mask[r * b.T + p] == 0.0f && b.ids[r * b.T + p] == t.pad, "padding at %zu of row %zu", p, r);
            if (n_sig < 5) sig[n_sig++] = (int)len * 100 + b.ids[r * b.T];
        }
    }
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++) CHECK(sig[i] != sig[j], "an example came twice in one epoch");
    CHECK(t.epoch == 1 && t.cursor == 5, "epoch %llu cursor %llu", (unsigned long long)t.epoch, (unsigned long long)t.cursor);
    task_free(&t);
    tokenizer_free(&tok);

    /* attend_padding (the Nystromformer GLUE code): every row tgt_len long, <pad> after the text, no mask */
    c.tgt_len = c.max_len = 16;
    c.attend_padding = true;
    REQUIRE(taskrig_open(&c, &tok, &t, &err) == 0, "%s", err.msg);
    REQUIRE(task_next(&t, &b, 0, &err) == 0, "%s", err.msg);
    CHECK(b.T == 16 && b.mask == NULL, "attend_padding: rows of %zu, mask %s", b.T, b.mask ? "given" : "none");
    CHECK(b.ids[15] == t.pad && b.ids[16 + 15] == t.pad, "the rows end in <pad>");
    task_free(&t);
    tokenizer_free(&tok);

    /* a pair without objective.pair: one row per example, [<cls>] A <sep> B <sep>, the longer text cut first
     * (Hugging Face's longest_first) */
    classification_config(&c, write_tsv("pairs.tsv", "a\tb\tlabel\nx y\tz\t1\nx x x x x x x x x x\ty y\t0\n"));
    snprintf(c.text_column, sizeof c.text_column, "a");
    snprintf(c.text2_column, sizeof c.text2_column, "b");
    REQUIRE(config_set(&c, "objective.pooling", "first", NULL, &err) == 0 && taskrig_open(&c, &tok, &t, &err) == 0, "%s",
            err.msg);
    REQUIRE(task_next(&t, &b, 0, &err) == 0, "%s", err.msg);
    CHECK(b.B == 2 && b.T == 8, "a batch of %zu x %zu for 2 pairs", b.B, b.T);
    /* the word tokenizer ends every text with <eos>: A = x y <eos>, B = z <eos> fill the 8 positions exactly;
     * A = 10 x <eos> and B = y y <eos> are cut to 2 + 3 */
    const int32_t *s_row = b.ids[3] == t.sep ? b.ids + 8 : b.ids, *l_row = s_row == b.ids ? b.ids + 8 : b.ids;
    const int32_t x = l_row[1], y = l_row[4], eos = l_row[6];
    const int32_t want_long[8] = {t.cls, x, x, t.sep, y, y, eos, t.sep};
    CHECK(!memcmp(l_row, want_long, sizeof want_long) && x != y && eos != x,
          "long pair: %d %d %d %d %d %d %d %d", l_row[0], l_row[1], l_row[2], l_row[3], l_row[4], l_row[5], l_row[6],
          l_row[7]);
    CHECK(s_row[0] == t.cls && s_row[1] == x && s_row[2] == y && s_row[3] == eos && s_row[4] == t.sep &&
              s_row[5] != x && s_row[5] != y && s_row[6] == eos && s_row[7] == t.sep,
          "short pair: %d %d %d %d %d %d %d %d", s_row[0], s_row[1], s_row[2], s_row[3], s_row[4], s_row[5], s_row[6],
          s_row[7]);
    task_free(&t);
    tokenizer_free(&tok);
}

/* The window of the split that row r of a batch is (its inputs and
 * targets the next T + 1 tokens), or -1. */
static long window_of(const TokenView *v, const int32_t *in, const int32_t *tg, size_t T) {
    for (size_t w = 0; (w + 1) * T < v->n; w++) {
        size_t t = 0;
        while (t < T && in[t] == token_at(v, w * T + t) && tg[t] == token_at(v, w * T + t + 1)) t++;
        if (t == T) return (long)w;
    }
    return -1;
}

/* lm_batching windows (safari's loader): every epoch reads each full window
 * of the training stream once, in a new order, the last partial batch
 * dropped; a resumed task continues with the same batches. */
TEST(lm_windows_each_once_per_epoch_in_a_new_order) {
    enum { B = 5 };
    Config c;
    config_defaults(&c);
    snprintf(c.tokenizer, sizeof c.tokenizer, "char");
    snprintf(c.lm_batching, sizeof c.lm_batching, "windows");
    static char text[4001];
    Rng r = rng_make(7, rng_stream(RNG_TEST, 11, 0));
    for (size_t i = 0; i < 4000; i++) text[i] = (char)('a' + rng_next(&r) % 26);
    snprintf(c.data, sizeof c.data, "%s", write_tsv("windows.txt", text));
    c.batch_size = B;
    c.tgt_len = 16;
    Error err = {0};
    REQUIRE(config_finalize(&c, &err) == 0, "%s", err.msg);
    Tokenizer tok;
    Task t;
    REQUIRE(corpus_tokenizer(&c, &tok, &err) == 0 && task_open(&t, &c, &tok, true, &err) == 0, "%s", err.msg);
    const TokenView *train = &t.corpus.split[SPLIT_TRAIN];
    const size_t W = (train->n - 1) / 16, per_epoch = W / B;
    REQUIRE(W % B != 0, "the test wants a partial last batch (W = %zu)", W);
    unsigned char *seen = calloc(W, 1);
    long first_of_epoch[2] = {-1, -1};
    int32_t resumed_ids[B * 16];
    Batch b;
    for (uint64_t step = 0; step < 2 * per_epoch; step++) {
        const size_t epoch = step / per_epoch;
        if (step == per_epoch) memset(seen, 0, W);
        if (step == per_epoch + 3) { /* what a resumed run reads at this step */
            Task again;
            REQUIRE(task_open(&again, &c, &tok, false, &err) == 0, "%s", err.msg);
            task_resume(&again, t.cursor, t.epoch);
            REQUIRE(task_next(&again, &b, step, &err) == 0, "%s", err.msg);
            memcpy(resumed_ids, b.ids, sizeof resumed_ids);
            task_free(&again);
        }
        REQUIRE(task_next(&t, &b, step, &err) == 0, "%s", err.msg);
        CHECK(b.B == B && b.T == 16 && b.scored == B * 16, "a batch of %zu x %zu", b.B, b.T);
        if (step == per_epoch + 3) CHECK(!memcmp(resumed_ids, b.ids, sizeof resumed_ids), "resume reads other windows");
        for (size_t row = 0; row < B; row++) {
            long w = window_of(train, b.ids + row * 16, b.targets + row * 16, 16);
            CHECK(w >= 0, "step %llu row %zu is no window of the stream", (unsigned long long)step, row);
            if (w < 0) continue;
            CHECK(!seen[w], "window %ld twice in epoch %zu", w, epoch);
            seen[w] = 1;
            if (step % per_epoch == 0 && row == 0) first_of_epoch[epoch] = w;
        }
    }
    CHECK(t.epoch == 1, "epoch %llu after two epochs' batches", (unsigned long long)t.epoch);
    CHECK(first_of_epoch[0] != first_of_epoch[1], "both epochs start with window %ld", first_of_epoch[0]);
    free(seen);
    task_free(&t);
    tokenizer_free(&tok);
}

/* ---- associative recall (spec tasks-synthetic-lra.md §(a), oracles AR-1 .. AR-4) ---- */

/* AR-1, AR-3, AR-4: layout, every query answerable and answered by its pair,
 * distinct sequences, the counts; the same seed gives the same sets. */
TEST(assoc_recall_sequences_have_the_reference_layout) {
    ArSet train, test, again_train, again_test;
    Error err = {0};
    const size_t V = 30, S = 40, K = 14;
    REQUIRE(ar_generate(&train, &test, V, S, 4000, 500, 0, &err) == 0, "%s", err.msg);
    CHECK(train.n == 4000 && test.n == 500 && train.len == S + 3, "counts %zu %zu, length %zu", train.n, test.n,
          train.len);
    const ArSet *sets[2] = {&train, &test};
    for (int k = 0; k < 2; k++) {
        const ArSet *s = sets[k];
        size_t bad = 0, dup = 0;
        for (size_t i = 0; i < s->n; i++) {
            const int32_t *x = s->tokens + i * s->len;
            int32_t map[32] = {0};
            bool consistent = x[S] == (int32_t)V - 1;
            for (size_t j = 0; j < S; j += 2) {
                consistent &= x[j] >= 1 && x[j] <= (int32_t)K && x[j + 1] > (int32_t)K && x[j + 1] <= (int32_t)(V - 2);
                if (map[x[j] & 31] && map[x[j] & 31] != x[j + 1]) consistent = false; /* AR-2: one value per key */
                map[x[j] & 31] = x[j + 1];
            }
            consistent &= x[S + 1] >= 1 && x[S + 1] <= (int32_t)K && map[x[S + 1]] == x[S + 2];
            bad += !consistent;
            for (size_t j = 0; j < i && i < 300; j++) dup += !memcmp(x, s->tokens + j * s->len, s->len * sizeof *x);
        }
        CHECK(bad == 0, "set %d: %zu sequences break the layout or their key's value", k, bad);
        CHECK(dup == 0, "set %d: %zu repeated sequences among the first 300", k, dup);
    }
    REQUIRE(ar_generate(&again_train, &again_test, V, S, 4000, 500, 0, &err) == 0, "%s", err.msg);
    CHECK(!memcmp(train.tokens, again_train.tokens, train.n * train.len * sizeof(int32_t)) &&
              !memcmp(test.tokens, again_test.tokens, test.n * test.len * sizeof(int32_t)),
          "the same data seed gives other sequences");
    ar_free(&again_train), ar_free(&again_test);
    REQUIRE(ar_generate(&again_train, &again_test, V, S, 4000, 500, 1, &err) == 0, "%s", err.msg);
    CHECK(memcmp(train.tokens, again_train.tokens, train.len * sizeof(int32_t)), "another seed, the same first sequence");
    ar_free(&again_train), ar_free(&again_test);
    /* AR-2: values are uniform given the key: a chi-square over the 14 values of key 1's pairs */
    size_t count[32] = {0}, total = 0;
    for (size_t i = 0; i < train.n; i++)
        for (size_t j = 0; j < S; j += 2)
            if (train.tokens[i * train.len + j] == 1) {
                count[train.tokens[i * train.len + j + 1]]++;
                total++;
                break; /* one draw of the map per sequence */
            }
    double chi2 = 0, expect = (double)total / 14.0;
    for (size_t v = K + 1; v <= V - 2; v++) chi2 += (count[v] - expect) * (count[v] - expect) / expect;
    CHECK(chi2 < 36.1, "chi-square %.1f of the values of key 1 over 13 degrees of freedom (p = 0.001 at 34.5)", chi2);
    ar_free(&train), ar_free(&test);
}

/* AR-4 and the symbols: ids in the reference's string order. */
TEST(assoc_recall_vocabulary_is_string_sorted) {
    Error err = {0};
    char **sym = ar_symbols(30, &err);
    REQUIRE(sym, "%s", err.msg);
    CHECK(!strcmp(sym[0], ".") && !strcmp(sym[1], "0") && !strcmp(sym[2], "1") && !strcmp(sym[3], "10") &&
              !strcmp(sym[12], "19") && !strcmp(sym[13], "2") && !strcmp(sym[28], "9") && !strcmp(sym[29], "=>"),
          "order: %s %s %s %s ... %s %s ... %s %s", sym[0], sym[1], sym[2], sym[3], sym[12], sym[13], sym[28], sym[29]);
    free(sym[0]);
    free(sym);
    ArSet a, b;
    CHECK(ar_generate(&a, &b, 30, 7, 10, 5, 0, &err) != 0 && strstr(err.msg, "input_seq_len"), "odd S accepted");
    CHECK(ar_generate(&a, &b, 4, 2, 100, 5, 0, &err) != 0 && strstr(err.msg, "distinct"),
          "more sequences than exist accepted: %s", err.msg);
}

/* `task: <GLUE name>` reads each task's real files in ../shared/data/glue
 * (or $SEQLAB_DATA) with the columns it sets: train and dev labelled, test
 * not. */
TEST(glue_task_names_read_the_released_files) {
    if (!test_data_dir()) TEST_SKIP("no data directory (../shared/data or $SEQLAB_DATA)");
    static const char *const tasks[] = {"CoLA", "SST-2", "MRPC", "STS-B", "QNLI", "RTE", "WNLI"};
    size_t files = 0;
    for (size_t k = 0; k < sizeof tasks / sizeof *tasks; k++) {
        Config c;
        Error err = {0};
        config_defaults(&c);
        REQUIRE(config_set(&c, "task", tasks[k], "test", &err) == 0, "%s", err.msg);
        const char *paths[3] = {c.train_file, c.valid_file, c.test_file};
        for (int s = 0; s < 3; s++) {
            if (!paths[s][0] || access(paths[s], R_OK) != 0) continue; /* QNLI ships only dev.tsv here */
            Examples ex;
            const bool regression = !strcmp(c.task, "regression");
            if (examples_read(&ex, paths[s], &c, regression, s != 2, &err)) {
                test_fail(__FILE__, __LINE__, "%s: %s", tasks[k], err.msg);
                continue;
            }
            files++;
            CHECK(ex.n > 0 && ex.labelled == (s != 2) && ex.texts == (c.text2_column[0] ? 2 : 1),
                  "%s: %zu examples, labelled %d", paths[s], ex.n, ex.labelled);
            examples_free(&ex);
        }
    }
    CHECK(files >= 13, "read %zu GLUE files (train and dev of six tasks, QNLI dev at least)", files);
}
