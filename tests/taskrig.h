/* taskrig.h — what the task tests share: a tiny model for a task, the
 * gradients of a whole model's pass against finite differences, and a task
 * opened from a config. */
#ifndef SEQLAB_TASKRIG_H
#define SEQLAB_TASKRIG_H

#include "../src/model/model.h"
#include "../src/tasks/task.h"

/* A tiny bidirectional model for `task` (arch sf, d_model 16, 2 heads,
 * d_inner 32, tgt_len 8, no dropout) with the "key=value;..." entries,
 * vocabulary V, initialised from seed 5; -1 (printing why) on failure. */
int taskrig_model(Model *m, Config *c, const char *task, const char *entries, size_t V);
/* One forward and backward of batch b under mode (the loss in *loss), then
 * the gradients of the parameters `names` against finite differences of the
 * same pass (failures recorded as test failures under `label`). Returns
 * every parameter's gradient (the caller frees it), or NULL when the pass
 * fails. */
float *taskrig_gradients(Model *m, const Batch *b, PassMode mode, const char *const *names, size_t n,
                         const char *label, double *loss);
/* Finalizes c, builds its tokenizer from the training data and opens the task. */
int taskrig_open(Config *c, Tokenizer *tok, Task *t, Error *err);

#endif
