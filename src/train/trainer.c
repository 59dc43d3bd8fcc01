/* trainer.c — see trainer.h. */
#include "trainer.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "optim.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One optimizer step's gradients: micro-batches of the batch's examples
 * (rows of an lm or mlm batch), the loss summed and scaled by what the whole
 * step scores, so the summed gradient equals the full batch's. */
static int accumulate_gradients(Model *m, const Task *task, const Batch *batch, uint64_t step, double *loss_mean,
                                Error *err) {
    ModelMemory *memory = task_is_stream(task) && m->train_memory.n ? &m->train_memory : NULL;
    const Config *c = &m->cfg;
    const size_t split = (size_t)c->batch_split, per = (size_t)c->batch_size / split;
    const float scale = 1.0f / (float)(batch->scored ? batch->scored : 1);
    model_zero_grad(m);
    model_step_begin(m, split);
    double total = 0.0;
    for (size_t k = 0; k < split; k++) {
        PassMode mode = {.training = true, .seed = (uint64_t)c->seed, .step = step, .row0 = k * per, .memory = memory};
        const Batch part = task_rows(task, batch, k * per, per);
        double sum;
        if (model_plan(m, part.B, part.T, err) || model_forward_batch(m, &part, &mode, scale, &sum, err)) return -1;
        model_backward(m, &mode);
        total += sum;
    }
    *loss_mean = total / (double)(batch->scored ? batch->scored : 1);
    return 0;
}

/* The step's auxiliary losses and statistics for its log line. */
static void step_report(const Model *m, TrainLine *line, double *stat_values) {
    line->has_aux = m->aux.sum != 0.0;
    line->aux_loss = m->aux.sum * m->aux.scale;
    line->n_stats = m->stats.n;
    line->stat_names = m->stats.name;
    for (int i = 0; i < m->stats.n; i++) stat_values[i] = m->stats.sum[i] / (double)m->stats.count[i];
    line->stat_values = stat_values;
}

static bool every(uint64_t step, int interval) { return interval > 0 && step % (uint64_t)interval == 0; }

static int evaluate_and_log(Trainer *t, int split, Error *err) {
    if (!task_has_split(t->task, split)) return 0; /* e.g. test_fraction 0, or test examples without labels */
    EvalResult r;
    if (task_evaluate(t->task, t->model, split, &r, err)) return -1;
    metrics_eval_result(t->metrics, t->state.step, split_names[split], &r, t->state.elapsed_s);
    return 0;
}

/* Per-step work after the update: log, evaluate, checkpoint. */
static int after_step(Trainer *t, const TrainLine *line, double *last_log, uint64_t *tokens_since, Error *err) {
    const Config *c = &t->model->cfg;
    const uint64_t step = t->state.step;
    const bool last = step == (uint64_t)c->max_step;
    if (every(step, c->log_interval) || last || step == 1) {
        TrainLine l = *line;
        double now = now_s();
        l.tok_per_s = (double)*tokens_since / (now - *last_log);
        metrics_train(t->metrics, &l);
        *last_log = now;
        *tokens_since = 0;
    }
    bool eval_now = every(step, c->eval_interval) && !last;
    if (eval_now && evaluate_and_log(t, SPLIT_VALID, err)) return -1;
    bool ckpt_now = c->ckpt_interval > 0 ? every(step, c->ckpt_interval) : eval_now;
    if ((ckpt_now || last) && ckpt_save(t->dir, t->model, t->optim, &t->state, c->keep_checkpoints, err)) return -1;
    if (eval_now || ckpt_now) *last_log = now_s(); /* tok/s counts training time only */
    return 0;
}

int trainer_run(Trainer *t, Error *err) {
    Model *m = t->model;
    const Config *c = &m->cfg;
    task_resume(t->task, t->state.cursor, t->state.epoch);
    t->state.seed = (uint64_t)c->seed;
    if (!m->train_memory.n && model_memory_init(m, &m->train_memory, (size_t)c->batch_size, err)) return -1;
    double start = now_s() - t->state.elapsed_s, last_log = now_s(), stat_values[STATS_MAX];
    uint64_t tokens_since = 0;
    int rc = 0;
    while (!rc && t->state.step < (uint64_t)c->max_step) {
        Batch batch;
        TrainLine line = {.step = t->state.step + 1, .max_step = (uint64_t)c->max_step};
        const uint64_t epoch = t->task->epoch;
        rc = task_next(t->task, &batch, t->state.step, err);
        if (!rc && t->task->epoch != epoch) model_memory_clear(&m->train_memory); /* the streams start over */
        rc = rc || accumulate_gradients(m, t->task, &batch, t->state.step, &line.loss, err);
        if (rc) break;
        step_report(m, &line, stat_values);
        line.grad_norm = optim_clip(&m->params, t->optim->global_clip);
        line.lr = schedule_lr(c, t->state.step);
        optim_set_beta1(t->optim, schedule_beta1(c, t->state.step));
        optim_step(t->optim, &m->params, line.lr, t->state.step + 1);
        model_after_update(m);
        model_memory_advance(&m->train_memory);
        t->state.step++;
        t->state.tokens += batch.B * batch.T;
        t->state.cursor = t->task->cursor;
        t->state.epoch = line.epoch = t->task->epoch;
        t->state.elapsed_s = line.elapsed_s = now_s() - start;
        tokens_since += batch.B * batch.T;
        rc = after_step(t, &line, &last_log, &tokens_since, err);
    }
    if (rc) return -1;
    return evaluate_and_log(t, SPLIT_VALID, err) || evaluate_and_log(t, SPLIT_TEST, err) ? -1 : 0;
}
