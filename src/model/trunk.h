/* trunk.h — the sublayers of a model, from its architecture string.
 *
 * Each letter is one use of a sublayer: 's' the token mixer (section
 * `mixer`), 'f' the feed-forward (section `ffn`), each inside its residual
 * wrapper (section `residual`, nn/residual.c) unless the module is a whole
 * layer with its own residual and norm (ModuleOps.owns_residual: mega,
 * seqboat), which runs as it is. How the string reads
 * (key arch_grammar, spec moe-brainformer.md §5):
 *   plain       every letter its own sublayer: "sfsf" = 4 sublayers
 *   sandwich    pairs (attention or '.', feed-forward or '.'): "s.sfsf.f",
 *               n_layer pairs exactly
 *   brainformer '.'-separated layers; inside a layer a repeated letter runs
 *               the same sublayer again (shared weights): "sfsf.sf" = 4
 *               sublayers in 6 uses
 * Use i runs at path "blocks.<i>" (its dropout masks); a sublayer's
 * parameters are named after its first use ("blocks.<i>.mixer.q_net.weight"),
 * so plain strings keep the names of every model before. A per-position
 * section (`blocks: {3: {mixer: {...}}}`) configures the sublayer first used
 * at position 3. */
#ifndef SEQLAB_TRUNK_H
#define SEQLAB_TRUNK_H

#include <stdio.h>

#include "../nn/module.h"

typedef struct {
    char letter;       /* 's', 'f' or 'g' */
    size_t sublayer;   /* which of the trunk's sublayers runs here */
    bool first;        /* the sublayer's first use: the one that leaves the stream's next memory */
    size_t layer_start; /* the first use of its layer (a '.' group of the brainformer grammar; else itself),
                           whose input is what the layer's memory keeps */
    Frame *frame;      /* owned: this use */
    float *x_out;      /* (B, T, C) the residual stream after it (arena) */
} TrunkUse;

typedef struct {
    Module **sublayers; /* owned: residual wrappers, each with its inner module (or a layer that owns its residual) */
    size_t n_sublayers;
    TrunkUse *uses;     /* owned */
    size_t n_uses;
    size_t C;
} Trunk;

/* The sublayer first used at position i: the residual wrapper (sections
 * blocks.<i>.residual, residual) around the mixer ('s') or feed-forward
 * ('f') of sections blocks.<i>.mixer, mixer (or .ffn), at path "blocks.<i>";
 * a module that owns its residual alone, at path "blocks.<i>.mixer". */
Module *trunk_sublayer(const Config *cfg, char letter, size_t i, size_t C, Error *err);
/* Expands cfg->arch by cfg->arch_grammar and builds every sublayer. */
int trunk_build(Trunk *t, const Config *cfg, size_t C, Error *err);
void trunk_free(Trunk *t);
void trunk_params(Trunk *t, ParamSet *ps);
void trunk_init(Trunk *t, uint64_t seed);
void trunk_layout(Trunk *t, size_t B, size_t T, Arena *a);
size_t trunk_scratch(Trunk *t, size_t B, size_t T);
/* The residual stream entering use i (x0 for the first). */
const float *trunk_input(const Trunk *t, const float *x0, size_t i);
/* Prints the uses with their sublayers and the sharing ("s0 f1 s0 f1 | ..."). */
void trunk_describe(const Trunk *t, FILE *f);

#endif
