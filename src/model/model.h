/* model.h — a language model built from an architecture string.
 *
 *     embed (+ positions) -> dropout -> trunk[arch] -> (final norm) -> out_dropout -> head -> loss
 *
 * The trunk (trunk.h) runs the sublayers the architecture string names: 's'
 * the token mixer of section `mixer`, 'f' the feed-forward of `ffn`, each in
 * its residual wrapper (norm, residual dropout, residual; pre or post).
 * Parameters live in one ParamSet; activations in one arena planned per
 * batch shape (model_plan), so a training step does not allocate.
 *
 *     Model m;
 *     model_build(&m, &cfg, vocab_size, &err);  model_init(&m, seed);
 *     model_plan(&m, B, T, &err);
 *     model_forward(&m, ids, targets, &mode, 1.0f / (B * T), &loss_sum, &err);
 *     model_backward(&m, &mode);                 // grads in m.params.grads (+=)
 */
#ifndef SEQLAB_MODEL_H
#define SEQLAB_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/arena.h"
#include "../core/config.h"
#include "../core/params.h"
#include "../core/rng.h"
#include "../nn/module.h"
#include "adaptive_input.h"
#include "heads.h"
#include "objective.h"
#include "trunk.h"

/* One batch for the model: B rows of T positions. */
typedef struct {
    size_t B, T;
    const int32_t *ids;     /* (B, T) token ids (encoder tokens) */
    const float *inputs;    /* (B, T, d_input) real values (encoder linear) */
    const float *mask;      /* (B, T) 1 real, 0 padding; NULL: every position is real */
    const int32_t *targets; /* (B, T) lm: the next tokens; mlm: the original tokens where masked, -1 elsewhere */
    const int32_t *labels;  /* (E) classification: one class per example; wikihop (B): the answer's slot */
    const float *values;    /* (E) regression: one number per example */
    const float *slots;     /* (B, T) wikihop: 1 at the candidates' slots (labels: the answers' positions) */
    size_t scored;          /* what the loss averages over in the whole step (tokens or examples) */
} Batch;

/* The memory a set of streams keeps between blocks (Ctx memory): for each
 * sublayer that keeps one (the adaptive-span attention), rows x size floats
 * of what the earlier blocks left (cur) and room for what the running block
 * leaves (next); model_memory_advance makes next current once every
 * micro-batch of a step has run. */
typedef struct {
    size_t rows, n;   /* stream rows; the trunk's sublayers */
    size_t *size;     /* owned (n): floats per row of each sublayer's memory, 0: none */
    float **cur, **next; /* owned (n): each rows x size, or NULL */
} ModelMemory;

enum { MODEL_PLANS = 6 }; /* shapes whose activation plans are kept: training, evaluation, a few padded lengths */

typedef struct {
    Config cfg;              /* owned copy; modules borrow it */
    size_t V, C;
    bool pre_ln;
    Trunk trunk;             /* owned */
    ParamSet params;
    float *wte, *dwte;       /* (V, C) token embedding; NULL with an adaptive input or a linear encoder */
    float *wenc, *dwenc;     /* (C, d_input) encoder linear, or NULL */
    float *benc, *dbenc;     /* (C) */
    const float *inputs;     /* borrowed from the last forward: encoder linear's input */
    const float *mask;       /* borrowed from the last forward: its padding, or NULL */
    bool linear_encoder;     /* encoder linear: real values in, no token table */
    Objective obj;           /* what the hidden states are trained for */
    AuxLoss aux;             /* the modules' auxiliary losses of the step so far (model_step_begin) */
    Stats stats;             /* the modules' statistics of the step so far */
    bool adaptive_input;     /* adaptive softmax with div_val > 1: the embedding is per cluster */
    AdaptiveInput ain;
    float *wpe, *dwpe;       /* (pos_offset + max_len, C) learned positions, or NULL */
    float *wtype, *dwtype;   /* (1, C) type_embed: added to every token, or NULL */
    float *lne_w, *lne_b, *dlne_w, *dlne_b; /* (C) embed_norm, or NULL */
    float *sinusoid;         /* (max_len, C) owned fixed table, or NULL */
    bool reversed_positions; /* sinusoidal_reversed: token t of T sits at position T-1-t */
    float emb_scale;         /* token embeddings are multiplied by this (1 or sqrt(C)) */
    float *lnf_w, *lnf_b, *dlnf_w, *dlnf_b; /* (C) final norm, pre-LN only */
    float *lnf_plain;                       /* owned (4 C): weight 1, bias 0 and their unused gradients
                                               when the final norm has no affine (final_norm_affine false) */
    Head head;               /* full or adaptive softmax (heads.h) */
    /* per-shape state, set by model_plan; plans of recent shapes are kept so
     * switching between the training and evaluation shapes allocates nothing */
    size_t B, T;
    struct {
        size_t B, T;
        Arena arena;         /* owned */
        uint64_t last_use;
    } plans[MODEL_PLANS];
    uint64_t plan_clock;
    float *scratch;          /* owned, scratch_floats */
    size_t scratch_floats;
    const int32_t *ids;      /* borrowed from the last forward */
    float *x0;               /* (B, T, C) embedding output */
    float *xsum, *lne_mean, *lne_rstd; /* (B, T, C), (B, T): embed_norm's input and statistics */
    float *xf, *lnf_mean, *lnf_rstd; /* (B, T, C), (B, T): final norm output and stats (pre-LN) */
    float *logits;           /* owned (B, T, V): a forward without targets writes the scores here (heads.h) */
    size_t logits_floats;    /* allocated size of logits (and its scratch after it) */
    float *losses;           /* (B, T) per-token loss (nats) */
    float *tmp_d, *grad;     /* (B, T, C): the head's gradient (pre-LN) and the trunk's */
    /* optional profile (seqlab bench --profile): when not NULL, wall seconds
     * are added per stage, forward then backward: [2 * i] embedding for i = 0,
     * trunk use i - 1 for i in 1..n_uses, the final norm and head for i = n_uses + 1 */
    double *profile;         /* borrowed, 2 * (trunk.n_uses + 2) entries */
    ModelMemory train_memory; /* the training streams' (batch_size rows; saved in checkpoints), when the model keeps one */
} Model;

/* What kind of pass: training enables dropout; step and row0 key its masks. */
typedef struct {
    bool training;
    uint64_t seed, step, row0; /* row0: first batch row of this micro-batch */
    ModelMemory *memory;       /* borrowed, or NULL: the streams' memory, rows row0 .. of it for this batch */
} PassMode;

/* Whether a sublayer keeps memory between blocks. */
bool model_has_memory(const Model *m);
/* Allocates a zeroed memory of `rows` stream rows (nothing for a model without one). */
int model_memory_init(const Model *m, ModelMemory *mm, size_t rows, Error *err);
void model_memory_free(ModelMemory *mm);
/* Forgets the past: a stream starts again. */
void model_memory_clear(ModelMemory *mm);
void model_memory_advance(ModelMemory *mm);

int model_build(Model *m, const Config *cfg, size_t vocab, Error *err);
/* Builds the trunk's modules from the config and frees them: every module
 * key checked, nothing allocated for parameters. */
int model_check(const Config *cfg, Error *err);
void model_free(Model *m);
/* Initial values of every parameter from `seed` (see each module's init). */
void model_init(Model *m, uint64_t seed);
/* Points the activations at a plan for (B, T), allocating one only for a
 * shape not among the last MODEL_PLANS used. */
int model_plan(Model *m, size_t B, size_t T, Error *err);
/* Runs the model on ids (B, T). With targets, fills losses and sets
 * *loss_sum (nats, summed over tokens); grad_scale != 0 also prepares
 * model_backward (the head's gradient is computed on the way). Without
 * targets it writes m->logits (B, T, V): logits, or log-probabilities for
 * the adaptive softmax. Ids and targets outside [0, V) are an error naming
 * the position. (The lm task; model_forward_batch takes any batch.) */
int model_forward(Model *m, const int32_t *ids, const int32_t *targets, const PassMode *mode, float grad_scale,
                  double *loss_sum, Error *err);
/* Runs the model on a batch of its task (B, T as planned): the summed loss
 * (nats for lm and mlm; cross-entropy of classification, squared error of
 * regression) in *loss_sum; grad_scale != 0 prepares model_backward. The
 * pooled objectives leave their scores in m->obj.scores. */
int model_forward_batch(Model *m, const Batch *b, const PassMode *mode, float grad_scale, double *loss_sum,
                        Error *err);
/* Starts a training step's accounting: zeroes the auxiliary losses and the
 * statistics, which the step's forward passes (micro_batches of them) add to. */
void model_step_begin(Model *m, size_t micro_batches);
/* Accumulates (+=) every parameter gradient of the last forward's loss. */
void model_backward(Model *m, const PassMode *mode);
/* Zeroes every parameter gradient. */
/* After each optimizer update: keeps parameters in their domain (module_after_update). */
void model_after_update(Model *m);
void model_zero_grad(Model *m);

/* ---- generation (generate.c) ---- */
typedef struct {
    size_t max_T;
    /* false: O(1) per token through each module's step form; true: the model
     * has no such form (reversed positions, a module without step), so every
     * token reruns the forward over the window kept in `tokens` */
    bool recompute;
    int32_t *tokens; /* owned, recompute only: (max_T) ids of the window */
    float **states;  /* borrowed views into `buffer`, one per trunk use */
    float *buffer;   /* owned: all uses' recurrent states / caches */
    size_t state_floats; /* length of `buffer` (0 when recomputing) */
    float *scratch;  /* owned */
    float *x, *h;    /* owned: (C) rows */
    float *logits;   /* owned: (V) */
    bool bf16_weights; /* the steps read gemm's bf16 copy of the weights (precision bf16) */
} Generator;

/* Prepares generation for up to max_T tokens: O(1) per token when every
 * module has a step form and positions do not depend on the sequence
 * length, else by recomputing the window. Error when the model is not
 * causal. */
int generator_build(Generator *g, Model *m, size_t max_T, Error *err);
void generator_free(Generator *g);
/* Draws the next token from g->logits: temperature 0 is greedy; top_k > 0
 * keeps only the k most likely. `scratch` holds V floats. */
int32_t generator_sample(const Generator *g, const Model *m, float temperature, int top_k, Rng *rng);
/* Feeds token at position t (0, 1, ... in order); g->logits holds the
 * next-token logits afterwards. */
int generator_step(Generator *g, Model *m, int32_t token, size_t t, Error *err);
/* Resets, then feeds ids[0, n), 0 < n <= max_T, at positions 0 .. n-1 (one
 * forward when recomputing); g->logits holds the logits after ids[n-1]. */
int generator_prefill(Generator *g, Model *m, const int32_t *ids, size_t n, Error *err);

#endif
