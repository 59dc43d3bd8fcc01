/* task.h — what produces a model's batches (key `task`):
 *
 *   lm              windows of a token stream, targets the next tokens (data/loader.h)
 *   mlm             the same windows with BERT's masking: each token is chosen
 *                   with probability mlm_probability; a chosen token becomes
 *                   <mask> 80% of the time, a random token 10%, stays 10%;
 *                   targets are the chosen tokens' originals (-1 elsewhere).
 *                   Every draw is a pure function of (seed, step, position),
 *                   so resume and batch_split reproduce it; evaluation draws
 *                   from a fixed step so every evaluation scores the same
 *                   positions.
 *   classification, regression
 *                   labelled examples (tasks/examples.h), shuffled anew each
 *                   epoch from (seed, epoch), in padded batches: texts cut to
 *                   tgt_len tokens (pooling first: after a <cls> token), rows
 *                   as long as the batch's longest text rounded up to a power
 *                   of two, the rest <pad> with mask 0.
 *
 *   assoc_recall    generated key-value sequences (tasks/assoc_recall.h): training
 *                   is next-token prediction at every position of the
 *                   num_examples sequences (shuffled each epoch, the last
 *                   partial batch dropped, as the reference's loader);
 *                   evaluation scores only the last position, the recalled
 *                   value: its loss and the accuracy of the argmax, on the
 *                   test set (the valid split is the same set, as in the
 *                   reference trainer).
 *
 *   wikihop         the windows of the questions (tasks/wikihop.h) as
 *                   training examples, shuffled each epoch, in padded
 *                   batches like the labelled examples; evaluation scores
 *                   every window and votes per question: the accuracy of
 *                   the questions, and of the windows alone.
 *
 * Tasks other than lm and assoc_recall add four ids after the tokenizer's: <pad>, <mask>,
 * <cls>, <sep> (task_vocab); wikihop four more, its tags <question>,
 * </question>, <answer>, </answer> (its </s> is <sep>). Evaluation reports the task's metrics: the mean loss
 * (and bits per character or perplexity for lm), the masked tokens' loss
 * for mlm, accuracy, F1 and Matthews correlation for classification,
 * Pearson and Spearman correlations for regression.
 *
 *     Task t;  task_open(&t, &cfg, &tokenizer, true, &err);   // reads and tokenises the data
 *     task_next(&t, &batch, step);                            // a training batch
 *     task_evaluate(&t, &model, SPLIT_VALID, &result, &err);
 */
#ifndef SEQLAB_TASK_H
#define SEQLAB_TASK_H

#include "../data/corpus.h"
#include "../data/loader.h"
#include "../model/model.h"
#include "../train/metrics.h"
#include "assoc_recall.h"
#include "examples.h"
#include "wikihop.h"

enum { TASK_SPECIALS = 4 }; /* <pad>, <mask>, <cls>, <sep> after the tokenizer's ids (tasks other than lm) */
enum { WIKIHOP_TAGS = 4 };  /* after those: <question>, </question>, <answer>, </answer> */


typedef struct {
    const Config *cfg;         /* borrowed */
    ObjectiveKind kind;
    size_t V;                  /* the model's vocabulary: the tokenizer's ids, then the specials */
    int32_t pad, mask, cls, sep; /* special ids (-1 for lm) */
    bool first_pooling;        /* objective.pooling first: every text starts with <cls> */
    bool pair;                 /* objective.pair: two texts encoded apart (else one joint row) */
    Corpus corpus;             /* lm, mlm: the token splits */
    Stream train;              /* lm, mlm: the training windows (lm_batching streams) */
    bool windows;              /* lm_batching windows: training windows shuffled like examples */
    Examples ex[SPLIT_COUNT];  /* classification, regression */
    bool recall;               /* assoc_recall */
    ArSet ar_train, ar_test;   /* assoc_recall: the generated sets */
    WikiHop wh[SPLIT_COUNT];   /* wikihop */
    uint32_t *order;           /* owned: this epoch's order of the training examples */
    uint64_t cursor, epoch;    /* where training stands (saved in checkpoints) */
    const char *save_batch;    /* borrowed, or NULL: evaluation writes its first batch here (mlm) */
    const char *predictions;   /* borrowed, or NULL: evaluation writes its predictions here (labelled tasks) */
    /* the batch buffers (owned) */
    int32_t *ids, *targets, *labels;
    float *mask_buf, *values, *slots;
    float *inputs;             /* encoder linear over signals: (rows, T) values, or NULL */
    size_t rows_cap, T_cap;
} Task;

/* The model's vocabulary for the tokenizer and the config's task. */
size_t task_vocab(const Config *c, const Tokenizer *tok);
/* Reads the task's data (building the tokenizer's vocabulary from the
 * training split when build_vocab). */
int task_open(Task *t, const Config *c, Tokenizer *tok, bool build_vocab, Error *err);
void task_free(Task *t);
/* Continues training at (cursor, epoch) of a checkpoint. */
void task_resume(Task *t, uint64_t cursor, uint64_t epoch);
/* The training batch of `step` (batch_size rows, or twice that many texts
 * for pairs); its `scored` counts what the step's loss averages over. */
int task_next(Task *t, Batch *b, uint64_t step, Error *err);
/* Rows r0 .. r0 + rows of batch b (a micro-batch of batch_split). */
Batch task_rows(const Task *t, const Batch *b, size_t r0, size_t rows);
/* The model's loss and the task's metrics over a split; count 0 when the
 * split is empty. */
int task_evaluate(Task *t, Model *m, int split, EvalResult *r, Error *err);
/* Optimizer steps that read the training data once (at least 0). */
size_t task_steps_per_epoch(const Task *t);
/* Whether the split has anything to evaluate (with predictions: anything to
 * predict, labelled or not). */
bool task_has_split(const Task *t, int split);

/* ---- scores.c: the metrics ---- */
/* Accuracy, F1 of class 1 (binary) and Matthews correlation (multiclass
 * form) of n predictions against labels in [0, K). */
void scores_classes(const int32_t *pred, const int32_t *label, size_t n, size_t K, double *accuracy, double *f1,
                    double *mcc);
/* Pearson and Spearman (average ranks for ties) correlation of n pairs. */
void scores_correlation(const float *x, const float *y, size_t n, double *pearson, double *spearman);

/* Whether training reads the language-model streams in order (rows that
 * continue from step to step): the batches a memory between blocks fits. */
bool task_is_stream(const Task *t);

#endif
