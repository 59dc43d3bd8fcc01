/* rig.h — a module under test: built from the registry with a config,
 * parameters and inputs drawn at random, forward/backward at one shape. */
#ifndef SEQLAB_RIG_H
#define SEQLAB_RIG_H

#include "../src/core/config.h"
#include "../src/nn/module.h"

typedef struct {
    Config cfg;
    Module *m;
    Frame *f;   /* the one use the rig runs */
    ParamSet ps;
    Arena arena;
    float *x, *y, *r, *dx, *scratch; /* x, y, r (= dy), dx: (B, T, C) */
    size_t B, T, C;
    Ctx ctx;
} Rig;

/* A small config for module tests: d_model 12, 3 heads of 4, d_inner 20, no dropout. */
void rig_config(Config *c);
/* Sets the "key=value;key=value" entries (NULL: none) in c; -1 (printing
 * the message) when one is refused. */
int rig_set_entries(Config *c, const char *entries);
/* Builds module `name` of `kind` ("mixer"/"ffn"; "sublayer" with name "s" or
 * "f": the trunk's residual wrapper around the config's mixer or
 * feed-forward) for (B, T) from the
 * section `kind` of cfg, at the root (parameter names as the module declares
 * them) and one use at "blocks.0"; params ~ N(0, 0.3^2). */
int rig_build(Rig *rig, const char *name, const char *kind, const Config *cfg, size_t B, size_t T);
void rig_free(Rig *rig);
/* The values (rig_param) or gradients (rig_grad) of the parameter called
 * `name` (its module-local name), or NULL. */
float *rig_param(const Rig *rig, const char *name);
float *rig_grad(const Rig *rig, const char *name);
/* Forward, then L = sum r*y in double. */
double rig_loss(void *ctx, double *abs_sum);
/* Zeroes grads, runs forward and backward (dy = r). */
void rig_backward(Rig *rig);
/* Checks dx and every parameter gradient; returns the number of failures. */
int rig_gradcheck(Rig *rig, size_t max_checks, float h);

#endif
