/* test_wikihop.c — the WikiHop task (tasks/wikihop.h): windows built from
 * files in the release's JSON format, with the overflow fix and with the
 * original's dropping; malformed files named in the errors; the vote over
 * windows against hand-worked values; the candidate-slot objective's
 * gradients; a task opened, batched and evaluated end to end. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/file.h"
#include "../src/core/json.h"
#include "../src/tasks/task.h"
#include "taskrig.h"
#include "test.h"

static const char *write_json(const char *name, const char *text) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    test_write_file(path, text, strlen(text));
    return path;
}

/* With a char tokenizer, question 1's prefix "<q> r x </q> <a> a b </a> <a> c
 * </a> <a> d </a> </s>" is 15 tokens long with slots at 4, 8 and 11; its
 * supports are 3, 4, 12 and 2 characters (chunks of 4, 5, 13 and 3 with their
 * </s>). Question 2 has no supports. */
static const char *const QUESTIONS =
    "[{\"id\": \"WH_train_0\", \"query\": \"rx\", \"candidates\": [\"ab\", \"c\", \"d\"], \"answer\": \"c\",\n"
    "  \"supports\": [\"ppp\", \"qqqq\", \"efghijklmnou\", \"ss\"]},\n"
    " {\"id\": \"WH_train_1\", \"query\": \"ry\", \"candidates\": [\"d\", \"ab\"], \"answer\": \"d\", \"supports\": []}]\n";

static int char_tokenizer(Tokenizer *tok, const JsonValue *root, Error *err) {
    size_t n;
    char *text = wikihop_text(root, "q.json", &n, err);
    if (!text) return -1;
    memset(tok, 0, sizeof *tok);
    tok->type = TOK_CHAR;
    int rc = tokenizer_build(tok, (const unsigned char *)text, n, "q.json", err);
    free(text);
    return rc;
}

static int32_t char_id(const Tokenizer *tok, char ch) {
    int32_t *ids;
    size_t n;
    Error err = {0};
    if (tokenizer_encode(tok, (const unsigned char *)&ch, 1, false, &ids, &n, NULL, "char", &err) || n != 1) return -1;
    int32_t id = ids[0];
    free(ids);
    return id;
}

/* Whether window i of w holds, after its prefix, the characters of `text`
 * ('|' standing for </s>) and nothing more. */
static bool window_holds(const WikiHop *w, const Tokenizer *tok, const WikihopTags *tags, size_t i, const char *text,
                         size_t prefix) {
    const int32_t *x = w->ids + w->window_start[i] + prefix;
    const size_t n = w->window_start[i + 1] - w->window_start[i] - prefix, len = strlen(text);
    for (size_t k = 0; k < len; k++)
        if (k >= n || x[k] != (text[k] == '|' ? tags->end : char_id(tok, text[k]))) return false;
    return len == n;
}

TEST(wikihop_windows_carry_the_overflow_or_drop_it_as_the_original) {
    Error err = {0};
    JsonValue *root;
    REQUIRE(json_parse(QUESTIONS, strlen(QUESTIONS), &root, &err) == 0, "%s", err.msg);
    Tokenizer tok;
    REQUIRE(char_tokenizer(&tok, root, &err) == 0, "%s", err.msg);
    const int32_t V = (int32_t)tokenizer_vocab(&tok);
    const WikihopTags tags = {V + 4, V + 5, V + 6, V + 7, V + 3};
    WikiHop w;
    REQUIRE(wikihop_read(&w, root, "q.json", &tok, &tags, 24, false, &err) == 0, "%s", err.msg);
    CHECK(w.n_questions == 2 && w.n_slots == 5 && w.labelled, "%zu questions, %zu slots", w.n_questions, w.n_slots);
    CHECK(w.slot_position[0] == 4 && w.slot_position[1] == 8 && w.slot_position[2] == 11 && w.answer[0] == 1 &&
              w.answer[1] == 0,
          "slots %u %u %u, answers %d %d", w.slot_position[0], w.slot_position[1], w.slot_position[2], w.answer[0],
          w.answer[1]);
    /* the fix: A and B fill the first window (24); C (13) is longer than a window's room (9): 9 of it make
     * the second, its last 4 start the third, which D (3) joins; question 2 gets its prefix alone */
    REQUIRE(w.n_windows == 4, "%zu windows with the overflow carried", w.n_windows);
    CHECK(window_holds(&w, &tok, &tags, 0, "ppp|qqqq|", 15) && window_holds(&w, &tok, &tags, 1, "efghijklm", 15) &&
              window_holds(&w, &tok, &tags, 2, "nou|ss|", 15),
          "the windows' supports");
    CHECK(w.window_question[2] == 0 && w.window_question[3] == 1 && w.window_start[4] - w.window_start[3] == 12,
          "question 2: one window of its 12-token prefix");
    const int32_t *first = w.ids;
    CHECK(first[0] == tags.question_open && first[3] == tags.question_close && first[4] == tags.answer_open &&
              first[7] == tags.answer_close && first[8] == tags.answer_open && first[14] == tags.end,
          "the prefix's tags");
    CHECK(w.cut == 1 && w.dropped == 0, "cut %zu, dropped %zu", w.cut, w.dropped);
    for (size_t i = 0; i < w.n_windows; i++) {
        const size_t q = w.window_question[i];
        for (size_t k = w.slot_start[q]; k < w.slot_start[q + 1]; k++)
            CHECK(w.ids[w.window_start[i] + w.slot_position[k]] == tags.answer_open, "window %zu, slot %zu", i, k);
    }
    wikihop_free(&w);

    /* the original: C does not fit, ends the first window and is lost; D makes the second; question 2 has none */
    REQUIRE(wikihop_read(&w, root, "q.json", &tok, &tags, 24, true, &err) == 0, "%s", err.msg);
    REQUIRE(w.n_windows == 2, "%zu windows with the overflow dropped", w.n_windows);
    CHECK(window_holds(&w, &tok, &tags, 0, "ppp|qqqq|", 15) && window_holds(&w, &tok, &tags, 1, "ss|", 15) &&
              w.dropped == 1 && w.cut == 0,
          "the original's windows (dropped %zu)", w.dropped);
    wikihop_free(&w);

    REQUIRE(wikihop_read(&w, root, "q.json", &tok, &tags, 15, false, &err) != 0, "a prefix that fills tgt_len");
    CHECK(strstr(err.msg, "q.json: question 1 (id 'WH_train_0')") && strstr(err.msg, "tgt_len 15"), "%s", err.msg);
    json_free(root);
    tokenizer_free(&tok);
}

TEST(wikihop_malformed_questions_are_named) {
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"{\"id\": \"x\"}", "a JSON array of questions"},
        {"[]", "holds no questions"},
        {"[{\"id\": \"a\", \"query\": \"r\", \"candidates\": [\"c\"], \"answer\": \"c\", \"supports\": []}, 3]",
         "question 2 (id '?'): not a JSON object"},
        {"[{\"id\": \"a\", \"query\": \"r\", \"candidates\": [\"c\"], \"answer\": \"e\", \"supports\": []}]",
         "question 1 (id 'a'): the answer is none of the candidates"},
        {"[{\"id\": \"a\", \"query\": \"r\", \"candidates\": [\"c\"], \"answer\": \"c\"}]",
         "question 1 (id 'a'): 'supports' is missing or not an array of strings"},
        {"[{\"id\": \"a\", \"query\": \"r\", \"candidates\": [\"c\", 4], \"answer\": \"c\", \"supports\": []}]",
         "'candidates' is missing or not an array of strings"},
        {"[{\"id\": \"a\", \"query\": \"r\", \"candidates\": [], \"supports\": []}]", "question 1 (id 'a'): no candidates"},
        {"[{\"id\": \"a\", \"query\": \"r\", \"candidates\": [\"c\"], \"answer\": \"c\", \"supports\": []},"
         " {\"id\": \"b\", \"query\": \"r\", \"candidates\": [\"c\"], \"supports\": []}]",
         "1 of the 2 questions have an answer"},
    };
    Tokenizer tok;
    tokenizer_byte(&tok);
    const WikihopTags tags = {260, 261, 262, 263, 259};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        Error err = {0};
        JsonValue *root;
        REQUIRE(json_parse(cases[k].json, strlen(cases[k].json), &root, &err) == 0, "case %zu: %s", k, err.msg);
        WikiHop w;
        CHECK(wikihop_read(&w, root, "bad.json", &tok, &tags, 64, false, &err) != 0 && strstr(err.msg, "bad.json") &&
                  strstr(err.msg, cases[k].want),
              "case %zu: '%s'", k, err.msg);
        json_free(root);
    }
    tokenizer_free(&tok);
    Error err = {0};
    Config c;
    config_defaults(&c);
    snprintf(c.task, sizeof c.task, "wikihop");
    snprintf(c.tokenizer, sizeof c.tokenizer, "byte");
    snprintf(c.train_file, sizeof c.train_file, "%s", write_json("truncated.json", "[{\"id\": \"a\", \"query\""));
    Task t;
    REQUIRE(config_finalize(&c, &err) == 0 && corpus_tokenizer(&c, &tok, &err) == 0, "%s", err.msg);
    CHECK(task_open(&t, &c, &tok, false, &err) != 0 && strstr(err.msg, "truncated.json"), "'%s'", err.msg);
    tokenizer_free(&tok);
}

TEST(wikihop_vote_sums_the_windows_scores) {
    /* question 1: candidates 0..2, answer 2; question 2: candidates 0..1, answer 0 */
    size_t slot_start[] = {0, 3, 5};
    int32_t answer[] = {2, 0}, pred[2];
    WikiHop w = {.n_questions = 2, .n_slots = 5, .slot_start = slot_start, .answer = answer};
    /* summed over the windows: question 1's third candidate wins, question 2 ties and takes the first */
    const double scores[] = {1.0, 2.5, 3.0, 0.7, 0.7};
    CHECK(wikihop_vote(&w, scores, pred) == 2 && pred[0] == 2 && pred[1] == 0, "pred %d %d", pred[0], pred[1]);
    const double other[] = {4.0, 2.5, 3.0, -1.0, 0.5};
    CHECK(wikihop_vote(&w, other, pred) == 0 && pred[0] == 0 && pred[1] == 1, "pred %d %d", pred[0], pred[1]);
}

/* The slot objective: gradients of the head and of trunk weights against
 * finite differences; the loss is the softmax over the slots alone, so the
 * scores elsewhere (and the padding) change nothing. */
TEST(wikihop_slot_objective_gradients) {
    Model m;
    Config c;
    REQUIRE(taskrig_model(&m, &c, "wikihop", "init=pytorch", 11) == 0, "model");
    const size_t B = 2, T = 8;
    int32_t ids[16], labels[2] = {3, 6};
    float mask[16], slots[16] = {0};
    for (size_t i = 0; i < B * T; i++) {
        ids[i] = (int32_t)((i * 7 + 3) % 11);
        mask[i] = i % T < 6 + 2 * (i / T) ? 1.0f : 0.0f; /* rows of 6 and 8 real tokens */
    }
    slots[1] = slots[3] = slots[5] = 1.0f;
    slots[T + 2] = slots[T + 6] = 1.0f;
    Batch b = {.B = B, .T = T, .ids = ids, .mask = mask, .slots = slots, .labels = labels};
    const char *names[] = {"head.weight", "head.bias", "blocks.0.norm.weight", "blocks.1.ffn.fc1.weight"};
    double loss;
    float *grads = taskrig_gradients(&m, &b, (PassMode){.training = false}, names, 4, "wikihop", &loss);
    REQUIRE(grads, "gradients");
    Error err = {0};
    REQUIRE(model_forward_batch(&m, &b, &(PassMode){.training = false}, 0.0f, &loss, &err) == 0, "%s", err.msg);
    double want = 0.0; /* from the position scores: log-sum-exp over the slots minus the answer's */
    for (size_t r = 0; r < B; r++) {
        const float *z = m.obj.scores + r * T;
        double s = 0.0;
        for (size_t t = 0; t < T; t++) s += slots[r * T + t] != 0.0f ? exp((double)z[t]) : 0.0;
        want += log(s) - z[labels[r]];
    }
    CHECK(fabs(loss - want) < 1e-5 * fabs(want), "loss %.9g, from the scores %.9g", loss, want);
    const size_t hb = params_find(&m.params, "head.bias")->offset;
    CHECK(fabsf(grads[hb]) < 1e-6f, "the bias shifts every slot alike: its gradient %.3g is not 0", grads[hb]);
    labels[0] = 2; /* not a slot */
    CHECK(model_forward_batch(&m, &b, &(PassMode){.training = false}, 0.0f, &loss, &err) != 0 &&
              strstr(err.msg, "not one of the row's candidate slots"),
          "an answer off the slots: '%s'", err.msg);
    free(grads);
    model_free(&m);
}

/* task_open reads the files, batches carry slots and answers, evaluation
 * votes per question and writes the predictions as {id: answer}. */
TEST(wikihop_task_trains_and_evaluates) {
    Config c;
    config_defaults(&c);
    snprintf(c.task, sizeof c.task, "wikihop");
    snprintf(c.tokenizer, sizeof c.tokenizer, "char");
    snprintf(c.arch, sizeof c.arch, "sf");
    c.d_model = 16;
    c.n_head = 2;
    c.d_inner = 32;
    c.causal = false;
    c.tgt_len = c.eval_tgt_len = 24;
    c.batch_size = c.eval_batch_size = 3;
    snprintf(c.train_file, sizeof c.train_file, "%s", write_json("train.json", QUESTIONS));
    snprintf(c.valid_file, sizeof c.valid_file, "%s", c.train_file);
    Tokenizer tok;
    Task t;
    Error err = {0};
    REQUIRE(taskrig_open(&c, &tok, &t, &err) == 0, "%s", err.msg);
    CHECK(t.V == tokenizer_vocab(&tok) + TASK_SPECIALS + WIKIHOP_TAGS && task_steps_per_epoch(&t) == 2,
          "V %zu, %zu steps an epoch", t.V, task_steps_per_epoch(&t));
    Batch b;
    REQUIRE(task_next(&t, &b, 0, &err) == 0, "%s", err.msg);
    CHECK(b.B == 3 && b.T == 24 && b.scored == 3 && b.slots && b.labels, "a batch of %zu x %zu", b.B, b.T);
    for (size_t r = 0; r < b.B; r++)
        CHECK(b.slots[r * b.T + (size_t)b.labels[r]] == 1.0f && b.ids[r * b.T + (size_t)b.labels[r]] == t.pad + 6,
              "row %zu: the answer's position %d is a slot with an <answer> tag", r, b.labels[r]);
    Model m;
    REQUIRE(model_build(&m, &c, t.V, &err) == 0, "%s", err.msg);
    model_init(&m, 3);
    char predictions[1024];
    snprintf(predictions, sizeof predictions, "%s/answers.json", test_tmpdir());
    t.predictions = predictions;
    EvalResult r;
    REQUIRE(task_evaluate(&t, &m, SPLIT_VALID, &r, &err) == 0, "%s", err.msg);
    CHECK(r.questions && r.count == 2 && r.windows == 4 && r.loss > 0.0 && r.accuracy >= 0.0 && r.accuracy <= 1.0,
          "questions %zu, windows %zu, loss %.4f", (size_t)r.count, (size_t)r.windows, r.loss);
    JsonValue *answers;
    REQUIRE(json_parse_file(predictions, &answers, &err) == 0, "%s", err.msg);
    const char *a0 = json_str(json_get(answers, "WH_train_0")), *a1 = json_str(json_get(answers, "WH_train_1"));
    CHECK(json_len(answers) == 2 && a0 && a1 && (!strcmp(a1, "d") || !strcmp(a1, "ab")) &&
              r.accuracy == ((!strcmp(a0, "c")) + (!strcmp(a1, "d"))) / 2.0,
          "answers '%s', '%s' and accuracy %.2f", a0 ? a0 : "?", a1 ? a1 : "?", r.accuracy);
    json_free(answers);
    model_free(&m);
    task_free(&t);
    tokenizer_free(&tok);
}
