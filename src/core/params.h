/* params.h — one allocation for all parameters, many named views.
 *
 * Modules declare their parameters (name, shape, group) and where their pointers
 * live; the model sums the sizes, allocates values, grads and the two AdamW
 * moments once each, and points every module field into those buffers. The
 * optimizer is then one flat loop and a checkpoint is a list of (name, view).
 *
 *     ParamSet ps; params_init(&ps);
 *     params_prefix(&ps, "blocks.%d.mixer.", i);
 *     params_add(&ps, "q_net.weight", &m->wq, &m->dwq, GROUP_LINEAR, 2, HD, C);
 *     ...
 *     params_allocate(&ps, &err);   // now m->wq points into ps.values
 */
#ifndef SEQLAB_PARAMS_H
#define SEQLAB_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* Parameter groups: AdamW's weight decay is switched on per group (config key
 * decay_groups). */
typedef enum { GROUP_LINEAR, GROUP_EMBEDDING, GROUP_NORM, GROUP_BIAS, GROUP_OTHER, GROUP_COUNT } ParamGroup;

extern const char *const param_group_names[GROUP_COUNT];

#define PARAM_MAX_DIMS 4

typedef struct {
    char name[128];
    int ndim;
    size_t shape[PARAM_MAX_DIMS];
    size_t numel;
    size_t offset;        /* in floats, into values/grads/m/v */
    ParamGroup group;
    bool buffer;          /* state saved with the model but not trained (running statistics) */
    bool fixed;           /* kept at its initial value by the module's choice (a frozen random router) */
    bool frozen;          /* not trained (the optimizer's rules say so) */
    float **value_slot;   /* borrowed: the module's field to point at the value */
    float **grad_slot;    /* borrowed: the module's field to point at the grad */
} ParamSpec;

typedef struct {
    ParamSpec *specs; /* owned */
    size_t count, cap;
    size_t total;     /* floats */
    int out_of_memory; /* set when params_add could not grow the list */
    char prefix[96];
    float *values, *grads; /* owned, each `total` floats */
    struct ParamAlias *aliases; /* owned: further slots of shared parameters */
    size_t n_aliases;
} ParamSet;

/* Another module's slots for a parameter declared by params_add_shared. */
typedef struct ParamAlias {
    size_t spec;          /* index of the shared parameter */
    float **value_slot, **grad_slot;
} ParamAlias;

void params_init(ParamSet *ps);
void params_free(ParamSet *ps);
/* Sets the prefix prepended to the names of the following params_add calls. */
void params_prefix(ParamSet *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Declares one parameter. Shapes are given as ndim sizes. Returns -1 only on
 * out-of-memory (recorded so params_allocate reports it). */
int params_add(ParamSet *ps, const char *name, float **value_slot, float **grad_slot, ParamGroup group,
               int ndim, ...);
/* Declares one parameter that several modules share, under its full name
 * (no prefix): the first call declares it, later ones with the same name and
 * shape point their slots at the same values and gradients (each module's
 * backward adds to the gradient). The adaptive-span attention's key_pe is one
 * tensor for every layer. Returns -1 on out-of-memory or a shape mismatch
 * (recorded so params_allocate reports it). */
int params_add_shared(ParamSet *ps, const char *name, float **value_slot, float **grad_slot, ParamGroup group,
                      int ndim, ...);
/* Declares a buffer: saved and loaded with the parameters, never trained. */
int params_add_buffer(ParamSet *ps, const char *name, float **value_slot, int ndim, ...);
/* Marks the parameter declared last as fixed: the optimizer's rules leave it
 * untrained unless lr_groups say otherwise. */
void params_fix_last(ParamSet *ps);
/* Allocates values and grads (zeroed) and points every slot into them. */
int params_allocate(ParamSet *ps, Error *err);
/* Finds a parameter by full name; NULL if absent. */
const ParamSpec *params_find(const ParamSet *ps, const char *name);
/* Writes "d0 x d1 x ..." into buf. */
void params_shape_str(const ParamSpec *s, char *buf, size_t n);

#endif
