/* wikihop.c — see wikihop.h. */
#include "wikihop.h"

#include <stdlib.h>
#include <string.h>

/* ---- growable arrays ---- */

typedef struct {
    void *p;
    size_t n, cap, size; /* items used, allocated, bytes per item */
} Vec;

static int vec_push(Vec *v, const void *items, size_t n, Error *err) {
    if (xgrow(&v->p, &v->cap, v->n + n, v->size, err)) return -1;
    memcpy((char *)v->p + v->n * v->size, items, n * v->size);
    v->n += n;
    return 0;
}

/* ---- one question ---- */

/* Where errors point: the file and the question. */
typedef struct {
    const char *path;
    size_t index;
    const char *id;
} Where;

static int bad(const Where *at, Error *err, const char *what) {
    return err_set(err, "%s: question %zu (id '%s'): %s", at->path, at->index + 1, at->id ? at->id : "?", what);
}

/* Member `key` of q as a string, or an error naming it. */
static const char *string_field(const JsonValue *q, const char *key, const Where *at, Error *err) {
    const char *s = json_str(json_get(q, key));
    if (!s) {
        char what[96];
        snprintf(what, sizeof what, "'%s' is missing or not a string", key);
        bad(at, err, what);
    }
    return s;
}

/* Member `key` of q as an array of strings, or NULL with an error. */
static const JsonValue *strings_field(const JsonValue *q, const char *key, const Where *at, Error *err) {
    const JsonValue *a = json_get(q, key);
    char what[96];
    snprintf(what, sizeof what, "'%s' is missing or not an array of strings", key);
    if (!a || a->type != JSON_ARRAY) return bad(at, err, what), NULL;
    for (size_t i = 0; i < a->n_items; i++)
        if (a->items[i].type != JSON_STRING) return bad(at, err, what), NULL;
    return a;
}

/* Appends the tokens of s to ids. */
static int encode(Vec *ids, const Tokenizer *tok, const char *s, const Where *at, Error *err) {
    int32_t *t;
    size_t n;
    char name[160];
    snprintf(name, sizeof name, "%s (question %zu)", at->path, at->index + 1);
    if (tokenizer_encode(tok, (const unsigned char *)s, strlen(s), true, &t, &n, NULL, name, err)) return -1;
    int rc = vec_push(ids, t, n, err);
    free(t);
    return rc;
}

static int push_tag(Vec *ids, int32_t tag, Error *err) { return vec_push(ids, &tag, 1, err); }

/* <question> query </question> (<answer> candidate </answer>)* </s>, and
 * each candidate's slot (the position of its <answer>) pushed to slots. */
static int build_prefix(Vec *prefix, Vec *slots, const JsonValue *q, const JsonValue *cands, const Tokenizer *tok,
                        const WikihopTags *tags, const Where *at, Error *err) {
    const char *query = string_field(q, "query", at, err);
    if (!query) return -1;
    if (!cands->n_items) return bad(at, err, "no candidates");
    if (push_tag(prefix, tags->question_open, err) || encode(prefix, tok, query, at, err) ||
        push_tag(prefix, tags->question_close, err))
        return -1;
    for (size_t k = 0; k < cands->n_items; k++) {
        const uint32_t slot = (uint32_t)prefix->n;
        if (vec_push(slots, &slot, 1, err) || push_tag(prefix, tags->answer_open, err) ||
            encode(prefix, tok, cands->items[k].string, at, err) || push_tag(prefix, tags->answer_close, err))
            return -1;
    }
    return push_tag(prefix, tags->end, err);
}

/* The windows being built: tokens, starts, questions. */
typedef struct {
    Vec ids, start, question;
    const Vec *prefix;
    uint32_t q;
    size_t open; /* where the open window starts in ids */
} Windows;

static int window_open(Windows *w, Error *err) {
    w->open = w->ids.n;
    return vec_push(&w->ids, w->prefix->p, w->prefix->n, err);
}

/* Closes the open window (its end is the ids so far) and opens the next. */
static int window_close(Windows *w, Error *err) {
    if (vec_push(&w->start, &w->open, 1, err) || vec_push(&w->question, &w->q, 1, err)) return -1;
    return window_open(w, err);
}

static size_t window_used(const Windows *w) { return w->ids.n - w->open; }

/* One support (its tokens and </s>) into the windows of at most T tokens. */
static int add_support(Windows *w, const int32_t *chunk, size_t n, size_t T, bool drop_overflow, WikiHop *out,
                       Error *err) {
    if (window_used(w) + n <= T) return vec_push(&w->ids, chunk, n, err);
    if (drop_overflow) { /* the original: the window ends here and this support is lost */
        out->dropped++;
        return window_close(w, err);
    }
    if (window_used(w) > w->prefix->n && window_close(w, err)) return -1;
    const size_t room = T - w->prefix->n;
    if (n > room) out->cut++;
    while (n > room) { /* longer than a window's room: whole windows of its pieces */
        if (vec_push(&w->ids, chunk, room, err) || window_close(w, err)) return -1;
        chunk += room;
        n -= room;
    }
    return vec_push(&w->ids, chunk, n, err);
}

/* The supports of question q into windows; the prefix alone when nothing
 * else makes one (not with drop_overflow: the original emits no window). */
static int add_windows(Windows *w, const JsonValue *supports, const Tokenizer *tok, const WikihopTags *tags, size_t T,
                       bool drop_overflow, WikiHop *out, const Where *at, Error *err) {
    const size_t before = w->start.n;
    Vec chunk = {.size = sizeof(int32_t)};
    int rc = window_open(w, err);
    for (size_t i = 0; !rc && i < supports->n_items; i++) {
        chunk.n = 0;
        rc = encode(&chunk, tok, supports->items[i].string, at, err) || push_tag(&chunk, tags->end, err) ||
             add_support(w, chunk.p, chunk.n, T, drop_overflow, out, err);
    }
    free(chunk.p);
    if (rc) return -1;
    const bool only_prefix = window_used(w) == w->prefix->n;
    if (!only_prefix || (!drop_overflow && w->start.n == before)) {
        if (vec_push(&w->start, &w->open, 1, err) || vec_push(&w->question, &w->q, 1, err)) return -1;
    } else {
        w->ids.n = w->open; /* the unused open window */
    }
    return 0;
}

/* The answer's index among the candidates, -1 without one. */
static int find_answer(const JsonValue *q, const JsonValue *cands, int32_t *answer, const Where *at, Error *err) {
    *answer = -1;
    if (!json_get(q, "answer")) return 0;
    const char *a = string_field(q, "answer", at, err);
    if (!a) return -1;
    for (size_t k = 0; k < cands->n_items; k++)
        if (!strcmp(cands->items[k].string, a)) return *answer = (int32_t)k, 0;
    return bad(at, err, "the answer is none of the candidates");
}

static int add_strings(Vec *strings, Vec *at_list, const char *s, Error *err) {
    return vec_push(at_list, &strings->n, 1, err) || vec_push(strings, s, strlen(s) + 1, err) ? -1 : 0;
}

typedef struct {
    Windows win;
    Vec slots, slot_start, answer, strings, id_at, candidate_at, prefix;
} Builder;

static int add_question(Builder *b, const JsonValue *q, const Tokenizer *tok, const WikihopTags *tags, size_t T,
                        bool drop_overflow, WikiHop *out, Where *at, Error *err) {
    if (q->type != JSON_OBJECT) return bad(at, err, "not a JSON object");
    if (!(at->id = string_field(q, "id", at, err))) return -1;
    const JsonValue *supports = strings_field(q, "supports", at, err), *cands = strings_field(q, "candidates", at, err);
    int32_t answer;
    if (!supports || !cands || find_answer(q, cands, &answer, at, err)) return -1;
    b->prefix.n = 0;
    if (vec_push(&b->slot_start, &b->slots.n, 1, err) || build_prefix(&b->prefix, &b->slots, q, cands, tok, tags, at, err))
        return -1;
    if (b->prefix.n >= T) {
        char what[160];
        snprintf(what, sizeof what, "the question and its %zu candidates take %zu tokens, no room for a support in "
                 "tgt_len %zu", cands->n_items, b->prefix.n, T);
        return bad(at, err, what);
    }
    if (vec_push(&b->answer, &answer, 1, err) || add_strings(&b->strings, &b->id_at, at->id, err)) return -1;
    for (size_t k = 0; k < cands->n_items; k++)
        if (add_strings(&b->strings, &b->candidate_at, cands->items[k].string, err)) return -1;
    b->win.prefix = &b->prefix;
    b->win.q = (uint32_t)at->index;
    return add_windows(&b->win, supports, tok, tags, T, drop_overflow, out, at, err);
}

static void builder_free(Builder *b) {
    free(b->win.ids.p);
    free(b->win.start.p);
    free(b->win.question.p);
    free(b->slots.p);
    free(b->slot_start.p);
    free(b->answer.p);
    free(b->strings.p);
    free(b->id_at.p);
    free(b->candidate_at.p);
    free(b->prefix.p);
}

/* Moves the builder's arrays into w (closing the start lists). */
static int builder_finish(Builder *b, WikiHop *w, Error *err) {
    if (vec_push(&b->win.start, &b->win.ids.n, 1, err) || vec_push(&b->slot_start, &b->slots.n, 1, err)) return -1;
    w->n_windows = b->win.question.n;
    w->n_slots = b->slots.n;
    w->ids = b->win.ids.p;
    w->window_start = b->win.start.p;
    w->window_question = b->win.question.p;
    w->slot_start = b->slot_start.p;
    w->slot_position = b->slots.p;
    w->answer = b->answer.p;
    w->strings = b->strings.p;
    w->id_at = b->id_at.p;
    w->candidate_at = b->candidate_at.p;
    free(b->prefix.p);
    return 0;
}

int wikihop_read(WikiHop *w, const JsonValue *root, const char *path, const Tokenizer *tok, const WikihopTags *tags,
                 size_t T, bool drop_overflow, Error *err) {
    memset(w, 0, sizeof *w);
    snprintf(w->path, sizeof w->path, "%s", path);
    if (root->type != JSON_ARRAY) return err_set(err, "%s: a WikiHop file is a JSON array of questions", path);
    if (!root->n_items) return err_set(err, "%s holds no questions", path);
    Builder b = {.win = {.ids = {.size = sizeof(int32_t)}, .start = {.size = sizeof(size_t)},
                         .question = {.size = sizeof(uint32_t)}},
                 .slots = {.size = sizeof(uint32_t)}, .slot_start = {.size = sizeof(size_t)},
                 .answer = {.size = sizeof(int32_t)}, .strings = {.size = 1}, .id_at = {.size = sizeof(size_t)},
                 .candidate_at = {.size = sizeof(size_t)}, .prefix = {.size = sizeof(int32_t)}};
    int rc = 0;
    size_t answered = 0;
    for (size_t i = 0; !rc && i < root->n_items; i++) {
        Where at = {path, i, NULL};
        rc = add_question(&b, &root->items[i], tok, tags, T, drop_overflow, w, &at, err);
        answered += !rc && ((int32_t *)b.answer.p)[i] >= 0;
    }
    if (!rc && answered && answered != root->n_items)
        rc = err_set(err, "%s: %zu of the %zu questions have an answer; a split is labelled throughout or not at all",
                     path, answered, root->n_items);
    if (!rc) rc = builder_finish(&b, w, err);
    if (rc) {
        builder_free(&b);
        memset(w, 0, sizeof *w);
        return -1;
    }
    w->n_questions = root->n_items;
    w->labelled = answered > 0;
    return 0;
}

void wikihop_free(WikiHop *w) {
    free(w->ids);
    free(w->window_start);
    free(w->window_question);
    free(w->slot_start);
    free(w->slot_position);
    free(w->answer);
    free(w->strings);
    free(w->id_at);
    free(w->candidate_at);
    memset(w, 0, sizeof *w);
}

/* Appends s and a newline. */
static int push_line(Vec *text, const char *s, Error *err) {
    return vec_push(text, s, strlen(s), err) || vec_push(text, "\n", 1, err) ? -1 : 0;
}

char *wikihop_text(const JsonValue *root, const char *path, size_t *n, Error *err) {
    Vec text = {.size = 1};
    if (root->type != JSON_ARRAY) return err_set(err, "%s: a WikiHop file is a JSON array of questions", path), NULL;
    static const char *const lists[] = {"candidates", "supports"};
    int rc = 0;
    for (size_t i = 0; !rc && i < root->n_items; i++) {
        const JsonValue *q = &root->items[i];
        Where at = {path, i, json_str(json_get(q, "id"))};
        const char *query = string_field(q, "query", &at, err);
        rc = !query || push_line(&text, query, err);
        for (int l = 0; !rc && l < 2; l++) {
            const JsonValue *a = strings_field(q, lists[l], &at, err);
            rc = !a;
            for (size_t k = 0; !rc && k < a->n_items; k++) rc = push_line(&text, a->items[k].string, err);
        }
    }
    if (rc) {
        free(text.p);
        return NULL;
    }
    *n = text.n;
    return text.p;
}

size_t wikihop_vote(const WikiHop *w, const double *scores, int32_t *pred) {
    size_t correct = 0;
    for (size_t q = 0; q < w->n_questions; q++) {
        const size_t s0 = w->slot_start[q], K = w->slot_start[q + 1] - s0;
        size_t best = 0;
        for (size_t k = 1; k < K; k++) best = scores[s0 + k] > scores[s0 + best] ? k : best;
        pred[q] = (int32_t)best;
        correct += w->answer[q] == (int32_t)best;
    }
    return correct;
}
