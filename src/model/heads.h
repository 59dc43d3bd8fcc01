/* heads.h — the output head of the language model (internal to src/model):
 * the full softmax over the vocabulary, or the adaptive softmax of Grave et
 * al. 2017 as the Transformer-XL / FMMformer trainer computes it
 * (ProjectedAdaptiveLogSoftmax; shared/spec/tasks-fmm-nystrom.md A.4).
 *
 * Adaptive: the classes are cut at cutoffs c_1 < ... < c_k into a shortlist
 * [0, c_1) and k tail clusters [c_i, c_{i+1}) (c_{k+1} = V). The head
 * classifies over the shortlist plus one class per cluster (weights: the
 * shortlist rows of the output table, then the cluster rows); a tail token's
 * log-probability is the head's for its cluster plus its own in the
 * cluster's softmax over its classes. Tail cluster i is the head class
 * V_head - i, i.e. cluster_weight row k - i (the original's "column -i"
 * order, kept so weights carry over). Only the rows whose target is in a
 * cluster are scored against it.
 *
 * div_val 1: one output table (V, C), the embedding when tied. div_val > 1:
 * cluster i has classes of width d_i = C / div_val^i, its own table (V_i, d_i)
 * (the adaptive input embedding's when tied, adaptive_input.h) and a
 * projection P_i (C, d_i) of the hidden state, x P_i; the tail clusters'
 * projections are the input embedding's (the original's tie_projs for
 * WikiText-103), the head's is its own.
 *
 * Both heads are computed in row chunks fused with the loss (ops.h,
 * classifier), so the logits of all tokens are never stored; training
 * writes d(loss)/d(hidden) directly.
 */
#ifndef SEQLAB_HEADS_H
#define SEQLAB_HEADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/arena.h"
#include "../core/config.h"
#include "../core/params.h"

#define HEAD_MAX_CLUSTERS 8

typedef struct Head {
    size_t V, C;
    bool adaptive;                        /* adaptive softmax (with head.bias, as the original's Linear) */
    bool bias;                            /* head.bias: always with adaptive, on request (head_bias) without */
    size_t n_clusters;                    /* adaptive tail clusters; 0: a softmax over all classes */
    size_t cutoff[HEAD_MAX_CLUSTERS + 2]; /* cluster i (0 = shortlist) holds classes [cutoff[i], cutoff[i+1]) */
    size_t div_val;
    size_t dim[HEAD_MAX_CLUSTERS + 1];    /* width of cluster i's classes: C / div_val^i */
    float *w, *dw;                        /* div_val 1: (V, C) head.weight, or the embedding when tied */
    float *tw[HEAD_MAX_CLUSTERS + 1], *dtw[HEAD_MAX_CLUSTERS + 1]; /* cluster i's table (V_i, dim[i]) */
    float *proj[HEAD_MAX_CLUSTERS + 1], *dproj[HEAD_MAX_CLUSTERS + 1]; /* div_val > 1: (C, dim[i]); else NULL */
    bool own_proj[HEAD_MAX_CLUSTERS + 1]; /* proj[i] is the head's parameter (not the input embedding's) */
    float *b, *db;                        /* (V) head.bias, or NULL */
    float *cw, *dcw;                      /* (n_clusters, dim[0]) head.cluster_weight */
    float *cb, *dcb;                      /* (n_clusters) head.cluster_bias */
    /* per-shape buffers (arena) */
    float *scratch;                       /* classifier chunk */
    float *rows, *drows;                  /* (N, C) hidden rows of one tail cluster and their gradient */
    float *hp, *dhp;                      /* (N, C) projected rows and their gradient (div_val > 1) */
    float *tail_losses;                   /* (N) */
    int32_t *targets, *index;             /* (N) head targets / a cluster's targets; the rows it holds */
} Head;

/* Reads adaptive_softmax, cutoffs and div_val; checks cutoffs against V. */
int head_configure(Head *h, const Config *c, size_t V, size_t C, Error *err);
/* Declares head.weight (div_val 1, unless tied_tables), head.<i>.weight
 * (div_val > 1, unless tied_tables), head.0.proj and, unless tied_projs,
 * head.<i>.proj of the tail clusters (div_val > 1), and the adaptive
 * parameters. */
void head_params(Head *h, ParamSet *ps, bool tied_tables, bool tied_projs);
/* After the parameters exist and ties are set (w, tw[i], proj[i] for the
 * tied ones): points cluster i's table into w for div_val 1. */
void head_bind(Head *h);
void head_init(Head *h, const Config *c, uint64_t seed, int layer);
void head_layout(Head *h, size_t N, Arena *a);
/* Summed loss of N rows; per-token losses (N). With grad_scale != 0 writes
 * dhidden (N, C) and adds the head's parameter gradients. */
double head_loss(Head *h, const float *hidden, size_t N, const int32_t *targets, float *losses, float grad_scale,
                 float *dhidden);
/* For inference: n rows of scores whose softmax is the model's distribution:
 * logits (full softmax) or log-probabilities (adaptive). scratch: the
 * floats head_logits_scratch says. */
void head_logits(const Head *h, const float *hidden, size_t n, float *out, float *scratch);
size_t head_logits_scratch(const Head *h);

#endif
