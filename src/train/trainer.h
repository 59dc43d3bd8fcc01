/* trainer.h — the training loop and evaluation.
 *
 * One step: zero grads; for each of batch_split micro-batches (rows of the
 * batch), forward + backward with the loss scaled by 1/(B*T) so the summed
 * gradient equals the full batch's; clip; AdamW with the scheduled lr.
 * Evaluation every eval_interval steps on the valid split, checkpoints at
 * evaluations (or every ckpt_interval), and at the end valid and test.
 * Everything random is keyed by (seed, step), so a resumed run continues
 * bit for bit (checkpoint.h).
 */
#ifndef SEQLAB_TRAINER_H
#define SEQLAB_TRAINER_H

#include <stdio.h>

#include "../data/corpus.h"
#include "../model/model.h"
#include "../tasks/task.h"
#include "checkpoint.h"
#include "optim.h"
#include "metrics.h"

typedef struct {
    const char *dir;     /* run directory (exists) */
    Model *model;        /* borrowed, built and initialised or loaded */
    Task *task;          /* borrowed: opened, at the state's cursor */
    Metrics *metrics;    /* borrowed */
    Optimizer *optim;    /* borrowed: built for the model (and loaded from a checkpoint on resume) */
    TrainState state;    /* where to start (zero, or from a checkpoint) */
    int skipped, skipped_in_row; /* steps skipped for a non-finite loss or gradient (nonfinite: skip) */
    uint64_t saved_step; /* the step of the last checkpoint this run wrote (or resumed from) */
    int interrupted;     /* the signal that stopped the run (trainer_request_stop), or 0 */
} Trainer;

/* Trains from t->state.step up to cfg.max_step, then evaluates valid and
 * test; or, once trainer_request_stop was called, stops after the running
 * step with a checkpoint of it and t->interrupted set (no evaluation). */
int trainer_run(Trainer *t, Error *err);
/* Asks the running trainer to stop (async-signal-safe: a SIGINT or SIGTERM handler). */
void trainer_request_stop(int signo);
/* Mean per-token loss (nats) over a split (evaluate.c): eval_tgt_len windows
 * of eval_batch_size rows, or sliding windows every eval_stride tokens; at
 * most eval_max_batches batches when > 0. */
int evaluate_split(Model *m, const TokenView *ids, const char *split, double *loss, uint64_t *tokens, Error *err);

#endif
