/* trainer.c — see trainer.h. */
#include "trainer.h"

#include <stdlib.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "dist.h"
#include "optim.h"

static volatile sig_atomic_t stop_signal;

void trainer_request_stop(int signo) { stop_signal = signo; }

/* The signal that asked the run to stop, or 0; under MPI the ranks agree,
 * so all stop after the same step. */
static int stop_requested(void) {
    uint64_t any = (uint64_t)stop_signal;
    dist_sum_u64(&any, 1);
    return any ? (stop_signal ? (int)stop_signal : SIGTERM) : 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* This rank's rows of every step's batch (dist.h): batch_size / ranks
 * rows from row `first`, in `split` micro-batches of `per` rows. R ranks
 * with batch_split s run the micro-batches one process runs with
 * batch_split max(s, R). */
typedef struct {
    size_t first, split, per;
    double *parts; /* owned: every rank's micro-batches' loss sums (split x ranks), reused each step */
} RankRows;

static int rank_rows(const Config *c, RankRows *r, Error *err) {
    const size_t B = (size_t)c->batch_size, R = (size_t)dist_size(), s = (size_t)c->batch_split;
    if (B % R)
        return err_set(err, "key 'batch_size' (%zu, the global batch) does not divide among %zu ranks", B, R);
    if (s > R && s % R)
        return err_set(err, "key 'batch_split' (%zu) does not divide among %zu ranks; make it a multiple of them",
                       s, R);
    r->split = s > R ? s / R : 1;
    r->per = B / R / r->split;
    r->first = B / R * (size_t)dist_rank();
    r->parts = xcalloc(r->split * R, sizeof *r->parts, err);
    return r->parts ? 0 : -1;
}

/* One optimizer step's gradients: this rank's micro-batches of the batch's
 * examples (rows of an lm or mlm batch), the loss summed and scaled by what
 * the whole step scores, so the gradients summed over micro-batches and
 * ranks equal the full batch's. Dropout masks and the streams' memory are
 * keyed by the global row. */
static int accumulate_gradients(Model *m, const Task *task, const Batch *batch, const RankRows *rr, uint64_t step,
                                double *loss_mean, Error *err) {
    ModelMemory *memory = task_is_stream(task) && m->train_memory.n ? &m->train_memory : NULL;
    const Config *c = &m->cfg;
    const float scale = 1.0f / (float)(batch->scored ? batch->scored : 1);
    const size_t n_parts = rr->split * (size_t)dist_size();
    double *mine = rr->parts + rr->split * (size_t)dist_rank();
    model_zero_grad(m);
    model_step_begin(m, rr->split * (size_t)dist_size());
    for (size_t k = 0; k < rr->split; k++) {
        const size_t row0 = rr->first + k * rr->per;
        PassMode mode = {.training = true, .seed = (uint64_t)c->seed, .step = step, .row0 = row0, .memory = memory};
        const Batch part = task_rows(task, batch, row0, rr->per);
        if (model_plan(m, part.B, part.T, err) || model_forward_batch(m, &part, &mode, scale, &mine[k], err)) return -1;
        model_backward(m, &mode);
    }
    dist_sum_floats(m->params.grads, m->params.total);
    *loss_mean = dist_sum_in_order(rr->parts, n_parts, rr->split) / (double)(batch->scored ? batch->scored : 1);
    return 0;
}

/* The step's auxiliary losses and statistics for its log line. */
static void step_report(Model *m, TrainLine *line, double *stat_values) {
    dist_sum_doubles(&m->aux.sum, 1);
    dist_sum_doubles(m->stats.sum, (size_t)m->stats.n);
    dist_sum_u64(m->stats.count, (size_t)m->stats.n);
    line->has_aux = m->aux.sum != 0.0;
    line->aux_loss = m->aux.sum * m->aux.scale;
    line->n_stats = m->stats.n;
    line->stat_names = m->stats.name;
    for (int i = 0; i < m->stats.n; i++) stat_values[i] = m->stats.sum[i] / (double)m->stats.count[i];
    line->stat_values = stat_values;
}

static bool every(uint64_t step, int interval) { return interval > 0 && step % (uint64_t)interval == 0; }

/* The newest checkpoint of the run, for messages. */
static const char *newest_checkpoint(const Trainer *t, char *path, size_t n) {
    Error none;
    return ckpt_latest(t->dir, path, n, &none) == 0 ? path : "none yet";
}

/* A step whose loss or gradient norm is not finite would ruin the weights:
 * it takes no update. nonfinite stop (the default) ends the run there with
 * a message; skip goes on, until max_skipped such steps in a row. Returns 0
 * to take the step, 1 to skip it, -1 to stop. Every rank sees the same
 * global loss and norm, so every rank decides the same. */
static int check_finite(Trainer *t, const TrainLine *line, Error *err) {
    const Config *c = &t->model->cfg;
    if (isfinite(line->loss) && isfinite(line->grad_norm)) {
        t->skipped_in_row = 0;
        return 0;
    }
    const bool skip = !strcmp(c->nonfinite, "skip");
    if (skip && t->skipped_in_row < c->max_skipped) {
        t->skipped++;
        t->skipped_in_row++;
        if (dist_rank() == 0)
            fprintf(stderr, "seqlab: step %llu: loss %g, gradient norm %g: skipped (nonfinite: skip; %d in a row)\n",
                    (unsigned long long)line->step, line->loss, line->grad_norm, t->skipped_in_row);
        return 1;
    }
    char path[2048], advice[2300];
    const char *newest = newest_checkpoint(t, path, sizeof path);
    if (strcmp(newest, "none yet"))
        snprintf(advice, sizeof advice, "The newest checkpoint is %s: resume from it (--resume %s)", newest, t->dir);
    else snprintf(advice, sizeof advice, "There is no checkpoint yet: start again");
    return err_set(err, "step %llu: loss %g, gradient norm %g%s. Stopped before its update, so no checkpoint holds "
                   "its result. %s with a lower lr or a clip, or set nonfinite: skip", (unsigned long long)line->step,
                   line->loss, line->grad_norm, skip ? ", after max_skipped non-finite steps in a row" : ": not finite",
                   advice);
}

/* Whether every weight is a finite number. */
static bool weights_finite(const ParamSet *ps) {
    bool finite = true;
#pragma omp parallel for reduction(&& : finite) schedule(static)
    for (size_t i = 0; i < ps->total; i++) finite = finite && isfinite(ps->values[i]);
    return finite;
}

/* Buffers a training pass updates from its own rows (batch norm's running
 * statistics) differ between ranks after a step: rank 0's are the ones, as
 * in PyTorch's DistributedDataParallel. One process with batch_split R
 * would fold in every micro-batch's statistics; R ranks keep rank 0's. */
static void share_buffers(ParamSet *ps) {
    if (dist_size() == 1) return;
    for (size_t i = 0; i < ps->count; i++)
        if (ps->specs[i].buffer) dist_broadcast(ps->values + ps->specs[i].offset, ps->specs[i].numel * sizeof(float));
}

/* Every rank evaluates its share; rank 0 logs the result. */
static int evaluate_and_log(Trainer *t, int split, Error *err) {
    if (!task_has_split(t->task, split)) return 0; /* e.g. test_fraction 0, or test examples without labels */
    EvalResult r;
    if (task_evaluate(t->task, t->model, split, &r, err)) return -1;
    if (dist_rank() == 0) metrics_eval_result(t->metrics, t->state.step, split_names[split], &r, t->state.elapsed_s);
    if (isfinite(r.loss)) return 0;
    char path[2048];
    if (strcmp(t->model->cfg.nonfinite, "skip"))
        return err_set(err, "step %llu: the %s loss is %g, not finite: the weights have diverged. The newest checkpoint: "
                       "%s", (unsigned long long)t->state.step, split_names[split], r.loss,
                       newest_checkpoint(t, path, sizeof path));
    if (dist_rank() == 0)
        fprintf(stderr, "seqlab: step %llu: the %s loss is %g, not finite (nonfinite: skip goes on)\n",
                (unsigned long long)t->state.step, split_names[split], r.loss);
    return 0;
}

/* A 64-bit FNV-1a hash of the weights' bits, as text. */
static void weights_hash(const ParamSet *ps, char *out, size_t n) {
    const unsigned char *p = (const unsigned char *)ps->values;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < ps->total * sizeof(float); i++) h = (h ^ p[i]) * 1099511628211ull;
    snprintf(out, n, "%016llx", (unsigned long long)h);
}

/* Rank 0 writes the checkpoint, with the streams' memory rows of every rank;
 * first every rank checks that the weights are still the same bits on all
 * of them (they take the same steps from the same summed gradients). */
static int save_checkpoint(Trainer *t, Error *err) {
    Model *m = t->model;
    ModelMemory *mm = &m->train_memory;
    if (!weights_finite(&m->params)) {
        char path[2048];
        return err_set(err, "step %llu: some weights are not finite after the update (the step was too large: lr?); "
                       "no checkpoint was written from them. The newest checkpoint: %s", (unsigned long long)t->state.step,
                       newest_checkpoint(t, path, sizeof path));
    }
    if (dist_size() > 1) {
        char hash[32];
        weights_hash(&m->params, hash, sizeof hash);
        if (dist_check_same(hash, "weights' hash", err)) return -1;
    }
    for (size_t i = 0; i < mm->n; i++)
        if (mm->size[i]) dist_gather_shares(mm->cur[i], mm->rows * mm->size[i], mm->size[i], sizeof(float));
    t->saved_step = t->state.step;
    if (dist_rank() != 0) return 0;
    return ckpt_save(t->dir, m, t->optim, &t->state, m->cfg.keep_checkpoints, err);
}

/* The progress since the last log line. */
typedef struct {
    double time_s, comm_s;
    uint64_t tokens, steps;
} Since;

static void since_reset(Since *s) { *s = (Since){.time_s = now_s(), .comm_s = dist_comm_seconds()}; }

/* Per-step work after the update: log, evaluate, checkpoint. */
static int after_step(Trainer *t, const TrainLine *line, Since *since, Error *err) {
    const Config *c = &t->model->cfg;
    const uint64_t step = t->state.step;
    const bool last = step == (uint64_t)c->max_step;
    if (every(step, c->log_interval) || last || step == 1) {
        TrainLine l = *line;
        l.tok_per_s = (double)since->tokens / (now_s() - since->time_s);
        l.ranks = dist_size();
        l.comm_s = (dist_comm_seconds() - since->comm_s) / (double)since->steps;
        if (dist_rank() == 0) metrics_train(t->metrics, &l);
        since_reset(since);
    }
    bool eval_now = every(step, c->eval_interval) && !last;
    if (eval_now && evaluate_and_log(t, SPLIT_VALID, err)) return -1;
    bool ckpt_now = c->ckpt_interval > 0 ? every(step, c->ckpt_interval) : eval_now;
    if ((ckpt_now || last) && save_checkpoint(t, err)) return -1;
    if (eval_now || ckpt_now) since_reset(since); /* tok/s counts training time only */
    return 0;
}

/* The steps from t->state.step to max_step, or until a stop signal. */
static int run_steps(Trainer *t, RankRows *rows, Error *err) {
    Model *m = t->model;
    const Config *c = &m->cfg;
    task_resume(t->task, t->state.cursor, t->state.epoch);
    t->state.seed = (uint64_t)c->seed;
    if (!m->train_memory.n && model_memory_init(m, &m->train_memory, (size_t)c->batch_size, err)) return -1;
    /* the ranks built or loaded the same weights; rank 0's are the ones (an initialisation may differ
     * between machines' libraries) */
    dist_broadcast(m->params.values, m->params.total * sizeof *m->params.values);
    double start = now_s() - t->state.elapsed_s, stat_values[STATS_MAX];
    Since since;
    since_reset(&since);
    int rc = 0;
    t->saved_step = t->state.step;
    while (!rc && t->state.step < (uint64_t)c->max_step) {
        if ((t->interrupted = stop_requested())) /* SIGINT, SIGTERM: keep what was trained */
            return t->state.step == t->saved_step ? 0 : save_checkpoint(t, err);
        Batch batch;
        TrainLine line = {.step = t->state.step + 1, .max_step = (uint64_t)c->max_step};
        const uint64_t epoch = t->task->epoch;
        rc = task_next(t->task, &batch, t->state.step, err);
        if (!rc && t->task->epoch != epoch) model_memory_clear(&m->train_memory); /* the streams start over */
        rc = rc || accumulate_gradients(m, t->task, &batch, rows, t->state.step, &line.loss, err);
        if (rc) break;
        step_report(m, &line, stat_values);
        line.grad_norm = optim_clip(&m->params, t->optim->global_clip);
        line.lr = schedule_lr(c, t->state.step);
        const int skip = check_finite(t, &line, err);
        if (skip < 0) {
            rc = -1;
            break;
        }
        if (!skip) {
            optim_set_beta1(t->optim, schedule_beta1(c, t->state.step));
            optim_step(t->optim, &m->params, line.lr, t->state.step + 1);
            model_after_update(m);
            share_buffers(&m->params);
            model_memory_advance(&m->train_memory);
        }
        line.skipped = t->skipped;
        t->state.step++;
        t->state.tokens += batch.B * batch.T;
        t->state.cursor = t->task->cursor;
        t->state.epoch = line.epoch = t->task->epoch;
        t->state.elapsed_s = line.elapsed_s = now_s() - start;
        since.tokens += batch.B * batch.T;
        since.steps++;
        rc = after_step(t, &line, &since, err);
    }
    return rc ? -1 : 0;
}

int trainer_run(Trainer *t, Error *err) {
    RankRows rows = {0};
    const int rc = rank_rows(&t->model->cfg, &rows, err) || run_steps(t, &rows, err) ? -1 : 0;
    free(rows.parts);
    if (rc || t->interrupted) return rc;
    return evaluate_and_log(t, SPLIT_VALID, err) || evaluate_and_log(t, SPLIT_TEST, err) ? -1 : 0;
}
