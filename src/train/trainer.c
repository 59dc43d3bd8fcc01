/* trainer.c — see trainer.h. */
#include "trainer.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../data/loader.h"
#include "optim.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One optimizer step's gradients: micro-batches of rows, loss summed. */
static int accumulate_gradients(Model *m, const int32_t *inputs, const int32_t *targets, uint64_t step,
                                double *loss_mean, Error *err) {
    const Config *c = &m->cfg;
    const size_t B = (size_t)c->batch_size, T = (size_t)c->tgt_len, split = (size_t)c->batch_split;
    const size_t rows = B / split;
    const float scale = 1.0f / (float)(B * T);
    if (model_plan(m, rows, T, err)) return -1;
    model_zero_grad(m);
    double total = 0.0;
    for (size_t k = 0; k < split; k++) {
        PassMode mode = {.training = true, .seed = (uint64_t)c->seed, .step = step, .row0 = k * rows};
        double sum;
        const size_t offset = k * rows * T;
        if (model_forward(m, inputs + offset, targets + offset, &mode, scale, &sum, err)) return -1;
        model_backward(m, &mode);
        total += sum;
    }
    *loss_mean = total / (double)(B * T);
    return 0;
}

static bool every(uint64_t step, int interval) { return interval > 0 && step % (uint64_t)interval == 0; }

static int evaluate_and_log(Trainer *t, int split, Error *err) {
    const Corpus *cp = t->corpus;
    if (cp->split[split].n == 0) return 0; /* e.g. test_fraction 0 */
    double loss;
    uint64_t tokens;
    if (evaluate_split(t->model, &cp->split[split], split_names[split], &loss, &tokens, err)) return -1;
    metrics_eval(t->metrics, t->state.step, split_names[split], loss, tokens, t->state.elapsed_s);
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
    const size_t B = (size_t)c->batch_size, T = (size_t)c->tgt_len;
    const Corpus *cp = t->corpus;
    Stream train;
    if (stream_init(&train, &cp->split[SPLIT_TRAIN], B, T, T, "train", err)) return -1;
    train.cursor = t->state.cursor;
    train.epoch = t->state.epoch;
    t->state.seed = (uint64_t)c->seed;
    int32_t *inputs = xmalloc(B * T * sizeof *inputs, err), *targets = xmalloc(B * T * sizeof *targets, err);
    int rc = inputs && targets ? 0 : -1;
    double start = now_s() - t->state.elapsed_s, last_log = now_s();
    uint64_t tokens_since = 0;
    while (!rc && t->state.step < (uint64_t)c->max_step) {
        stream_next(&train, inputs, targets);
        TrainLine line = {.step = t->state.step + 1, .max_step = (uint64_t)c->max_step};
        rc = accumulate_gradients(m, inputs, targets, t->state.step, &line.loss, err);
        if (rc) break;
        line.grad_norm = optim_clip(&m->params, c->clip);
        line.lr = schedule_lr(c, t->state.step);
        optim_step(t->optim, &m->params, line.lr, t->state.step + 1);
        t->state.step++;
        t->state.tokens += B * T;
        t->state.cursor = train.cursor;
        t->state.epoch = line.epoch = train.epoch;
        t->state.elapsed_s = line.elapsed_s = now_s() - start;
        tokens_since += B * T;
        rc = after_step(t, &line, &last_log, &tokens_since, err);
    }
    free(inputs);
    free(targets);
    if (rc) return -1;
    return evaluate_and_log(t, SPLIT_VALID, err) || evaluate_and_log(t, SPLIT_TEST, err) ? -1 : 0;
}
