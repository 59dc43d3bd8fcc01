/* adaptive_input.h — the Transformer-XL trainer's AdaptiveEmbedding with
 * div_val > 1 (internal to src/model): token y of cluster i ([c_i, c_{i+1}),
 * the adaptive softmax's cutoffs, heads.h) is looked up in a table (V_i, d_i)
 * of width d_i = C / div_val^i and projected to the model width by P_i
 * (C, d_i): x = P_i E_i[y - c_i]. With tie_weight the head's cluster tables
 * are these tables; the tail clusters' head projections are always these
 * projections (the original's tie_projs for WikiText-103). */
#ifndef SEQLAB_ADAPTIVE_INPUT_H
#define SEQLAB_ADAPTIVE_INPUT_H

#include "heads.h"

typedef struct {
    size_t C, n_clusters;
    size_t cutoff[HEAD_MAX_CLUSTERS + 2], dim[HEAD_MAX_CLUSTERS + 1]; /* as the head's */
    float *w[HEAD_MAX_CLUSTERS + 1], *dw[HEAD_MAX_CLUSTERS + 1];       /* (V_i, d_i): embed.<i>.weight */
    float *proj[HEAD_MAX_CLUSTERS + 1], *dproj[HEAD_MAX_CLUSTERS + 1]; /* (C, d_i): embed.<i>.proj */
    /* per-shape buffers (arena) */
    float *rows, *out;   /* (N, C): a cluster's table rows, and their projection or gradient */
    int32_t *index;      /* (N) the tokens of one cluster */
} AdaptiveInput;

/* Takes the cluster geometry of the head (which must have div_val > 1). */
void adaptive_input_configure(AdaptiveInput *a, const Head *h);
void adaptive_input_params(AdaptiveInput *a, ParamSet *ps);
void adaptive_input_init(AdaptiveInput *a, float std, uint64_t seed, int layer);
/* The head's tables (when tied) and tail projections become these. */
void adaptive_input_tie(AdaptiveInput *a, Head *h, bool tie_weight);
void adaptive_input_layout(AdaptiveInput *a, size_t N, Arena *arena);
/* x (N, C) from ids (N). */
void adaptive_input_forward(AdaptiveInput *a, float *x, const int32_t *ids, size_t N);
/* Adds the table and projection gradients of dx (N, C). */
void adaptive_input_backward(AdaptiveInput *a, const float *dx, const int32_t *ids, size_t N);
/* One token's row (C), for generation (no buffers needed). */
void adaptive_input_row(const AdaptiveInput *a, int32_t id, float *x);

#endif
