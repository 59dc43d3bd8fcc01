/* bench.h — how fast a model trains and generates, and how much memory it
 * takes (seqlab bench; docs/benchmarks.md).
 *
 * Training steps run on random tokens: forward (the head's loss and its
 * gradient included, heads.h), backward, then clipping and the optimizer
 * update, each timed; `warmup` untimed steps first. FLOPs per step are
 * 6 * parameters * tokens (the parameter products of forward and backward;
 * the position table and an untied token table are lookups and do not
 * count) plus 3 * each mixer's forward token-mixing FLOPs (ModuleOps.flops).
 * Generation is timed at the end of a full context: the recurrent states or
 * caches are filled with random values as if `context` tokens had passed
 * (no prefill), then `tokens` one-token steps run at batch 1.
 *
 *     BenchResult r;
 *     if (bench_training(&model, 3, 1, NULL, &r, &err)) ...   // r.step_median, r.flops ...
 *     double peak = bench_sgemm_peak(2048, 7);                // GFLOP/s
 */
#ifndef SEQLAB_BENCH_H
#define SEQLAB_BENCH_H

#include <stddef.h>

#include "../model/model.h"

#define BENCH_MAX_STEPS 64

typedef struct {
    int steps;                          /* timed steps */
    double step[BENCH_MAX_STEPS];       /* seconds: forward + backward + update */
    double forward[BENCH_MAX_STEPS], backward[BENCH_MAX_STEPS], update[BENCH_MAX_STEPS];
    double tokens;                      /* per step */
    double flops;                       /* per step */
    size_t arena_bytes;                 /* activations, scratch, parameters, gradients, moments */
} BenchResult;

/* Times `steps` (<= BENCH_MAX_STEPS) training steps of the model's config
 * (batch_size x tgt_len, batch_split) after `warmup` untimed ones. profile,
 * when not NULL, receives the per-stage seconds of the timed steps (model.h). */
int bench_training(Model *m, int steps, int warmup, double *profile, BenchResult *r, Error *err);

/* Tokens per second of one-token generation at batch 1 after `context`
 * tokens; -1 with a message when the model cannot generate (bidirectional,
 * reversed positions). */
int bench_generation(Model *m, size_t context, int tokens, double *tok_per_s, Error *err);

/* Median GFLOP/s of `repeats` square n x n sgemm calls (after one untimed). */
double bench_sgemm_peak(size_t n, int repeats);

/* Median, smallest and largest of n >= 1 values. */
double bench_median(const double *x, int n);
double bench_min(const double *x, int n);
double bench_max(const double *x, int n);

#endif
