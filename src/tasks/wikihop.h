/* wikihop.h — the QAngaroo WikiHop task (spec tasks-fmm-nystrom.md §B.7,
 * the Nystromformer code's WiKiHopDataset and ModelForWiKiHop).
 *
 * A file of the release (train.json, dev.json) is one JSON array of
 * questions {"id", "query", "candidates": [...], "answer", "supports": [...]}.
 * Each question becomes one or more windows of at most T tokens:
 *
 *     <question> query </question> <answer> cand_1 </answer> ... <answer> cand_K </answer> </s>
 *     support_1 </s> support_2 </s> ...      (as many whole supports as fit)
 *
 * The prefix is the same in every window of a question; candidate k's slot is
 * the position of its <answer> tag, and the model scores every slot (the
 * task's objective, model/objective.h). A support that does not fit starts
 * the next window; one longer than a window's room is cut into pieces. With
 * drop_overflow the windows are the original's instead: a support that does
 * not fit ends the window and is itself dropped (its text is lost), and a
 * window may hold the prefix alone.
 *
 * A question's prediction sums each candidate's score over the question's
 * windows (the sum of the windows' log-softmaxes ranks the same) and takes
 * the best. An "answer" missing from every question reads as an unlabelled
 * split (predictions only).
 *
 *     WikiHop w;
 *     wikihop_read(&w, "qangaroo_v1.1/wikihop/dev.json", &tok, &tags, 4096, false, &err);
 *     for (size_t i = 0; i < w.n_windows; i++) ... w.ids[w.window_start[i] ...], w.window_question[i]
 *     size_t correct = wikihop_vote(&w, scores, pred);   // scores: (n_slots) summed over windows
 */
#ifndef SEQLAB_WIKIHOP_H
#define SEQLAB_WIKIHOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/json.h"
#include "../data/tokenizer.h"

/* The ids of the tags (special tokens the task adds to the vocabulary) and of </s>. */
typedef struct {
    int32_t question_open, question_close, answer_open, answer_close, end;
} WikihopTags;

typedef struct {
    size_t n_questions, n_windows, n_slots;
    bool labelled;             /* every question has its answer */
    int32_t *ids;              /* owned: every window's tokens, one after another */
    size_t *window_start;      /* owned (n_windows + 1): window i is ids[window_start[i], window_start[i + 1]) */
    uint32_t *window_question; /* owned (n_windows) */
    size_t *slot_start;        /* owned (n_questions + 1): question q's candidates are slots [slot_start[q], slot_start[q + 1]) */
    uint32_t *slot_position;   /* owned (n_slots): the position of each candidate's <answer> tag in every window */
    int32_t *answer;           /* owned (n_questions): the correct candidate's index within its question, -1 unlabelled */
    char *strings;             /* owned: the questions' ids and candidates, NUL-terminated, for predictions */
    size_t *id_at, *candidate_at; /* owned (n_questions), (n_slots): offsets into strings */
    size_t dropped;            /* supports dropped (drop_overflow) */
    size_t cut;                /* supports cut across windows (not drop_overflow) */
    char path[4096];
} WikiHop;

/* Reads the questions of a parsed release file into windows of at most T
 * tokens. Errors name the file and the question (index and id): a missing
 * or mistyped field, an answer that is none of the candidates, a prefix
 * that does not leave room for a support in T. */
int wikihop_read(WikiHop *w, const JsonValue *root, const char *path, const Tokenizer *tok, const WikihopTags *tags,
                 size_t T, bool drop_overflow, Error *err);
/* Every string of the file's questions joined by newlines, for building a
 * char or word vocabulary (owned by the caller); NULL on a malformed file. */
char *wikihop_text(const JsonValue *root, const char *path, size_t *n, Error *err);
void wikihop_free(WikiHop *w);

/* The questions' predictions from the candidates' scores summed over each
 * question's windows (n_slots): pred (n_questions) gets the index of the
 * best candidate (the first of equal ones). Returns how many are the answer. */
size_t wikihop_vote(const WikiHop *w, const double *scores, int32_t *pred);

#endif
