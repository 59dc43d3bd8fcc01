/* metrics.h — what a run reports: one JSON object per line in
 * <run>/metrics.jsonl (for tools and `seqlab plot`) and a progress line on a
 * console stream (the caller's; NULL for none).
 *
 * Training lines: {"kind": "train", "step", "loss", "lr", "grad_norm",
 *                  "tok_per_s", "elapsed_s", "epoch"}, with "aux_loss" when a module
 *                  adds an auxiliary loss and "stats": {"<use path>.<name>": mean, ...}
 *                  when modules record statistics; "ranks" and "comm_s" (seconds per step in MPI's
 *                  collectives, on rank 0) when several MPI ranks train; "skipped" (steps skipped so far
 *                  for a non-finite loss or gradient, nonfinite: skip) once there are some
 * Eval lines:     {"kind": "eval", "step", "split", "loss", "bpc" | "ppl", "tokens", "elapsed_s"}; for
 *                 labelled tasks "examples" and "accuracy", "f1", "mcc" or "pearson", "spearman"
 *                 instead of the per-token scores, each with its "best_<name>" over the run's
 *                 evaluations of that split so far (GLUE reports the best dev score); for assoc_recall "query_loss", "accuracy",
 *                 "best_accuracy" (over the run's evaluations of that split) and "examples"
 * Losses are printed with 17 significant digits so equal lines mean equal bits; a
 * number that is not finite (a diverged loss) is written as null.
 */
#ifndef SEQLAB_METRICS_H
#define SEQLAB_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../core/error.h"
#include "../core/json.h"

typedef struct {
    FILE *jsonl;     /* owned */
    StrBuf line;     /* the JSON line being built */
    FILE *console;   /* borrowed, may be NULL */
    bool per_char;   /* bpc (byte/char data) instead of perplexity */
    /* the best of each split so far ("train", "valid", "test", other): accuracy or pearson, f1 or
     * spearman, mcc (assoc_recall: accuracy only) */
    double best[4][3];
    bool best_seen[4];
} Metrics;

typedef struct {
    double loss;          /* mean over what the task scores */
    uint64_t count;       /* tokens (lm, mlm) or examples scored */
    bool classes, numbers;
    bool masked;          /* mlm: count is the masked tokens scored */
    bool recall;          /* assoc_recall: loss and accuracy of the last position, count the sequences */
    bool unlabelled;      /* labelled tasks' split without labels: predictions only, no scores */
    bool questions;       /* wikihop: count the questions, accuracy theirs (voted over their windows) */
    uint64_t windows;     /* wikihop: the windows scored (the loss is their mean) */
    double window_accuracy;
    double accuracy, f1, mcc;   /* classification (f1: of class 1, binary tasks) */
    double pearson, spearman;   /* regression */
} EvalResult;

typedef struct {
    uint64_t step, max_step, epoch;
    double loss, lr, grad_norm, tok_per_s, elapsed_s;
    bool has_aux;
    double aux_loss;            /* the modules' auxiliary losses, per scored unit (apart from loss) */
    int n_stats;                /* per-layer scalars the modules recorded (means over the step) */
    const char (*stat_names)[128];
    const double *stat_values;
    int skipped;                /* steps skipped so far for a non-finite loss (nonfinite: skip) */
    int ranks;                  /* MPI ranks (dist.h) */
    double comm_s;              /* with ranks > 1: mean seconds per step in the ranks' collectives */
} TrainLine;

/* Opens <dir>/metrics.jsonl for appending. */
int metrics_open(Metrics *m, const char *dir, FILE *console, bool per_char, Error *err);
void metrics_close(Metrics *m);
/* Keeps only the lines whose "step" is <= step (a resumed run rewrites what
 * the interrupted one logged after its last checkpoint). Atomic rewrite. */
int metrics_truncate_after(const char *dir, uint64_t step, Error *err);
void metrics_train(Metrics *m, const TrainLine *l);
/* Logs an evaluation; loss is the mean per-token NLL in nats. */
void metrics_eval(Metrics *m, uint64_t step, const char *split, double loss, uint64_t tokens, double elapsed_s);
/* Logs an evaluation of any task: the loss (with bpc or perplexity when the
 * result is per token: lm, mlm) and the task's metrics. */
void metrics_eval_result(Metrics *m, uint64_t step, const char *split, const EvalResult *r, double elapsed_s);
/* Bits per character or perplexity of a mean loss, and its name. */
double metrics_score(const Metrics *m, double loss, const char **name);

#endif
