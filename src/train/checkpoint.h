/* checkpoint.h — training checkpoints as safetensors files.
 *
 * <run>/ckpt-<step>.safetensors holds, in one file written atomically
 * (temporary file, fsync, rename, fsync of the directory):
 *   <param name>                  F32  every model parameter and buffer ("embed.weight", ...)
 *   optim.<state>.<param name>    F32  the optimizer's state of each trainable parameter
 *                                      (Adam: exp_avg, exp_avg_sq)
 *   memory.<sublayer path>        F32  the training streams' memory (batch_size, floats per row)
 *                                      of each sublayer that keeps one (adaptive span)
 *   train.step, train.seed, train.cursor, train.epoch, train.tokens   I64 [1]
 *   train.elapsed_s               F64 [1]
 * and metadata format = "seqlab-checkpoint", format_version = "2",
 * optimizer = its kind, config = the resolved YAML, vocab_size, step.
 * Version 1 (before buffers and frozen parameters) had the same names and
 * still loads. A file either exists whole or not at all, so resume simply
 * takes the newest one that validates. docs/formats.md documents the
 * layout; Python's safetensors loads it.
 *
 *     ckpt_save(dir, &model, &optimizer, &state, keep, &err);
 *     ckpt_latest(dir, path, sizeof path, &err);
 *     ckpt_load(path, &model, &optimizer, &state, &err);   // optimizer NULL: weights only
 */
#ifndef SEQLAB_CHECKPOINT_H
#define SEQLAB_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "../model/model.h"
#include "optim.h"

typedef struct {
    uint64_t step;    /* optimizer updates done */
    uint64_t seed;    /* the run's seed: with step, all of its randomness */
    uint64_t cursor;  /* training stream position (loader.h) */
    uint64_t epoch;
    uint64_t tokens;  /* training tokens consumed */
    double elapsed_s; /* training wall time so far */
} TrainState;

/* Writes <dir>/ckpt-<step>.safetensors, then deletes all but the newest
 * `keep` checkpoints. The previous checkpoints are untouched on failure. */
int ckpt_save(const char *dir, const Model *m, const Optimizer *o, const TrainState *st, int keep, Error *err);
/* Path of the newest checkpoint of dir; error when there is none. */
int ckpt_latest(const char *dir, char *path, size_t n, Error *err);
/* Loads parameters (and, with an optimizer built for m, its state and the
 * training streams' memory) into m
 * and the train state into st (may be NULL). Every tensor needed must be
 * present with its shape; a foreign, truncated or mismatched file is an error
 * naming the file and tensor, and leaves m and o unchanged. */
int ckpt_load(const char *path, Model *m, Optimizer *o, TrainState *st, Error *err);

/* What ckpt_init_from did, parameter by parameter: names as comma lists
 * (cut with "..." when long) and counts. */
typedef struct {
    size_t loaded, tiled, fresh, skipped; /* tiled: a longer position table; grown vocabularies count as loaded */
    char tiled_names[256], fresh_names[1024], skipped_names[1024];
} CkptInit;
/* Starts m from the weights of another run (path: a checkpoint, or a run
 * directory whose checkpoint of `step` is taken, its newest for step 0), by name and not strictly:
 * a parameter of the same shape loads; pos_embed.weight of more rows is
 * tiled from the checkpoint's (rows [0, pos_offset) kept, the rest repeated
 * (max_len / the checkpoint's rows) times, which must divide: the
 * Nystromformer seed's 512 -> 4096 rule, tasks-fmm-nystrom.md B.5); a
 * vocabulary table (embed.weight, head.weight, head.bias) of more rows loads
 * the checkpoint's rows and keeps the added tokens' initial values (listed with
 * the tiled ones); one absent from the file, or an output head (head.*) of
 * another shape (another task's), keeps its initial value; the file's others
 * are skipped. Any other
 * shape difference is an error naming the tensor, and leaves m unchanged. Optimizer state and training state are not read. */
int ckpt_init_from(const char *path, uint64_t step, Model *m, CkptInit *report, Error *err);

#endif
