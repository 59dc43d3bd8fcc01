/* mixer.h — the interface every sublayer module fills in: token mixers
 * (softmax, linear, band, fmm, nystrom, s5, hyena, mega, seqboat) and the
 * position-wise feed-forwards (mlp, moe) alike.
 *
 * A module maps x (B, T, C) to y (B, T, C). The block wrapper around it (norm,
 * dropout, residual; src/model/block.c) is the same for every module, so a new
 * mixer is one file that fills in ModuleOps and one line in registry.c.
 *
 * Life of a module, as the model drives it:
 *
 *     Module *m = module_create("softmax", cfg, layer_index, &err);  // ops->configure checks keys
 *     m->ops->params(m, &paramset);        // declare names, shapes, groups
 *     params_allocate(&paramset, &err);    // pointers now valid
 *     m->ops->init(m, seed);               // initial values, as the paper does it
 *     m->ops->layout(m, B, T, &arena);     // take saved-activation buffers (twice: count, point)
 *     m->ops->forward(m, x, y, &pass);     // x must stay untouched until backward
 *     m->ops->backward(m, dy, dx, &pass);  // writes dx, accumulates (+=) parameter grads
 *     m->ops->step(m, state, t, x_t, y_t, scratch);  // optional: one token of generation
 *
 * Shape letters used in comments across src/: B batch, T sequence length,
 * C model width (d_model), H heads, d head width (d_head), HD = H*d, F FFN
 * width (d_inner), V vocabulary, N state size, E experts, W band width,
 * M landmarks.
 */
#ifndef SEQLAB_MIXER_H
#define SEQLAB_MIXER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/arena.h"
#include "../core/config.h"
#include "../core/error.h"
#include "../core/params.h"
#include "../ops/ops.h"

/* Per-call context of forward/backward. */
typedef struct {
    size_t B, T;
    bool training;       /* dropout active */
    uint64_t seed;       /* run seed: keys dropout masks with `step` */
    uint64_t step;       /* optimizer step: keys dropout masks */
    uint64_t row0;       /* first row of this micro-batch within the step's batch:
                            masks are indexed by batch row, so batch_split
                            does not change them */
    float *scratch;      /* borrowed: temporary floats, at least ops->scratch(m, B, T) */
} Pass;

typedef struct Module Module;

typedef struct {
    const char *name;
    size_t size;  /* sizeof the module's own struct, which starts with a Module */
    /* Reads and validates the config keys this module uses. */
    int (*configure)(Module *m, Error *err);
    void (*params)(Module *m, ParamSet *ps);
    void (*init)(Module *m, uint64_t seed);
    /* Takes the buffers forward saves for backward from the arena. */
    void (*layout)(Module *m, size_t B, size_t T, Arena *a);
    /* Temporary floats needed during forward/backward/step at this shape. */
    size_t (*scratch)(Module *m, size_t B, size_t T);
    void (*forward)(Module *m, const float *x, float *y, const Pass *p);
    void (*backward)(Module *m, const float *dy, float *dx, const Pass *p);
    /* Generation. state_size(max_T) floats of recurrent state or cache per
     * sequence; step consumes token t's input row (C) and writes its output row.
     * NULL when the module cannot run one token at a time. */
    size_t (*state_size)(Module *m, size_t max_T);
    void (*step)(Module *m, float *state, size_t t, const float *x, float *y, float *scratch);
    /* Forward FLOPs beyond the parameter products (2 per weight per token):
     * the token mixing itself, for seqlab bench's GFLOP/s. NULL: none. */
    double (*flops)(Module *m, size_t B, size_t T);
} ModuleOps;

struct Module {
    const ModuleOps *ops;
    const Config *cfg;   /* borrowed: the model's config */
    int layer;           /* index in the block list: names and RNG streams */
    size_t C;            /* model width */
};

/* Dropout stream of one site (a numbered dropout location) of one layer in
 * this pass: keyed by step so every step draws anew, and a pure function of
 * it so resume and backward reproduce it. Element indices within the stream
 * count from batch row 0 of the whole step (Pass.row0). */
uint64_t pass_stream(const Pass *p, int layer, int site);

/* The dropout key of a site for tensors of `width` floats per token: rate
 * only while training, elements indexed from the batch's first row. */
DropoutKey pass_dropout(const Pass *p, int layer, int site, float rate, size_t width);

/* Fills w (n) with N(0, std^2) draws from the init stream (layer, index). */
void init_normal(float *w, size_t n, float std, uint64_t seed, int layer, int index);

/* Looks up `name` among registered modules, allocates and configures it.
 * kind is "mixer" or "ffn" (only used for the message). */
Module *module_create(const char *name, const char *kind, const Config *cfg, int layer, Error *err);
void module_free(Module *m);
/* Space-separated list of registered names, for messages and --help. */
const char *module_names(void);

#endif
