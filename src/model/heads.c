/* heads.c — the full and the adaptive softmax head; see heads.h. */
#include "heads.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/gemm.h"
#include "../nn/module.h"
#include "../ops/ops.h"

static size_t parse_cutoffs(const char *list, size_t *out, size_t max, bool *bad) {
    size_t n = 0;
    *bad = false;
    for (const char *p = list; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v <= 0 || n == max) return *bad = true, n;
        out[n++] = (size_t)v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return *bad = true, n;
    }
    return n;
}

/* dim[i] = C / div_val^i, as the original's d_embed // div_val ** i. */
static int set_widths(Head *h, int div_val, Error *err) {
    if (div_val < 1) return err_set(err, "key 'div_val' must be >= 1, got %d", div_val);
    h->div_val = (size_t)div_val;
    size_t d = h->C;
    for (size_t i = 0; i <= h->n_clusters; i++, d /= h->div_val) {
        if (d == 0)
            return err_set(err, "key 'div_val' = %d leaves tail cluster %zu of d_model %zu with no width", div_val, i,
                           h->C);
        h->dim[i] = d;
    }
    return 0;
}

int head_configure(Head *h, const Config *c, size_t V, size_t C, Error *err) {
    memset(h, 0, sizeof *h);
    h->V = V;
    h->C = C;
    h->cutoff[1] = V;
    h->div_val = 1;
    h->dim[0] = C;
    h->bias = c->head_bias || c->adaptive_softmax;
    if (!c->adaptive_softmax) return 0;
    h->adaptive = true;
    bool bad;
    size_t n = parse_cutoffs(c->cutoffs, h->cutoff + 1, HEAD_MAX_CLUSTERS, &bad);
    if (bad)
        return err_set(err, "key 'cutoffs' = '%s': give up to %d increasing positive class ids, e.g. 20000,40000,200000",
                       c->cutoffs, HEAD_MAX_CLUSTERS);
    for (size_t i = 1; i <= n; i++)
        if (h->cutoff[i] >= V || (i > 1 && h->cutoff[i] <= h->cutoff[i - 1]))
            return err_set(err, "key 'cutoffs' = '%s' must increase and stay below the vocabulary size %zu", c->cutoffs,
                           V);
    h->n_clusters = n;
    h->cutoff[n + 1] = V;
    return set_widths(h, c->div_val, err);
}

static size_t cluster_size(const Head *h, size_t i) { return h->cutoff[i + 1] - h->cutoff[i]; }

void head_params(Head *h, ParamSet *ps, bool tied_tables, bool tied_projs) {
    params_prefix(ps, "%s", "");
    if (!tied_tables && h->div_val == 1) params_add(ps, "head.weight", &h->w, &h->dw, GROUP_LINEAR, 2, h->V, h->C);
    for (size_t i = 0; h->div_val > 1 && i <= h->n_clusters; i++) {
        params_prefix(ps, "head.%zu.", i);
        if (!tied_tables)
            params_add(ps, "weight", &h->tw[i], &h->dtw[i], GROUP_LINEAR, 2, cluster_size(h, i), h->dim[i]);
        h->own_proj[i] = i == 0 || !tied_projs; /* the head's own projection is never tied */
        if (h->own_proj[i]) params_add(ps, "proj", &h->proj[i], &h->dproj[i], GROUP_LINEAR, 2, h->C, h->dim[i]);
    }
    params_prefix(ps, "%s", "");
    if (h->bias) params_add(ps, "head.bias", &h->b, &h->db, GROUP_BIAS, 1, h->V);
    if (!h->n_clusters) return;
    params_add(ps, "head.cluster_weight", &h->cw, &h->dcw, GROUP_LINEAR, 2, h->n_clusters, h->dim[0]);
    params_add(ps, "head.cluster_bias", &h->cb, &h->dcb, GROUP_BIAS, 1, h->n_clusters);
}

void head_bind(Head *h) {
    for (size_t i = 0; h->div_val == 1 && i <= h->n_clusters; i++) {
        h->tw[i] = h->w + h->cutoff[i] * h->C;
        h->dtw[i] = h->dw ? h->dw + h->cutoff[i] * h->C : NULL;
    }
}

/* The FMM trainer inits biases at 0 and cluster weights like every weight;
 * under init pytorch the bias is nn.Linear's U(+-1/sqrt(C)) (the
 * Nystromformer code's MLM decoder). */
void head_init(Head *h, const Config *c, uint64_t seed, int layer) {
    if (h->b && !strcmp(c->init, "pytorch")) init_uniform(h->b, h->V, 1.0f / sqrtf((float)h->C), seed, layer, 9);
    else if (h->b) memset(h->b, 0, h->V * sizeof(float));
    for (size_t i = 0; i <= h->n_clusters; i++)
        if (h->own_proj[i]) init_normal(h->proj[i], h->C * h->dim[i], (float)c->init_std, seed, layer, 5 + (int)i);
    if (!h->n_clusters) return;
    memset(h->cb, 0, h->n_clusters * sizeof(float));
    init_normal(h->cw, h->n_clusters * h->dim[0], (float)c->init_std, seed, layer, 4);
}

static Classifier head_classifier(const Head *h, ClassBlock *blocks) {
    const size_t shortlist = h->cutoff[1];
    blocks[0] = (ClassBlock){h->tw[0], h->b, h->dtw[0], h->db, shortlist};
    blocks[1] = (ClassBlock){h->cw, h->cb, h->dcw, h->dcb, h->n_clusters};
    Classifier cl = {h->dim[0], blocks, h->n_clusters ? 2 : 1, shortlist + h->n_clusters};
    return cl;
}

/* Cluster i >= 1: its table, the bias rows [cutoff[i], cutoff[i+1]). */
static Classifier tail_classifier(const Head *h, size_t i, ClassBlock *block) {
    const size_t lo = h->cutoff[i];
    *block = (ClassBlock){h->tw[i], h->b + lo, h->dtw[i], h->db ? h->db + lo : NULL, cluster_size(h, i)};
    Classifier cl = {h->dim[i], block, 1, block->rows};
    return cl;
}

/* Scores n rows x (n, C) with cluster i's classifier, through its projection
 * P_i when it has one: x P_i is what the classifier sees, and dx = d(x P_i) P_i^T. */
static double score_rows(Head *h, size_t i, const Classifier *cl, const float *x, size_t n, const int32_t *targets,
                         float *losses, float grad_scale, float *dx) {
    if (!h->proj[i]) return classifier_forward(cl, x, n, targets, losses, grad_scale, dx, h->scratch);
    const size_t C = h->C, d = h->dim[i];
    gemm(false, false, n, d, C, 1.0f, x, C, h->proj[i], d, 0.0f, h->hp, d);
    double sum = classifier_forward(cl, h->hp, n, targets, losses, grad_scale, h->dhp, h->scratch);
    if (grad_scale != 0.0f) {
        gemm(false, true, n, C, d, 1.0f, h->dhp, d, h->proj[i], d, 0.0f, dx, C);
        gemm(true, false, C, d, n, 1.0f, x, C, h->dhp, d, 1.0f, h->dproj[i], d);
    }
    return sum;
}

/* Inference: the logits of one row x through cluster i's projection. */
static void row_logits(const Head *h, size_t i, const Classifier *cl, const float *x, float *out, float *hp) {
    if (h->proj[i]) gemm(false, false, 1, h->dim[i], h->C, 1.0f, x, h->C, h->proj[i], h->dim[i], 0.0f, hp, h->dim[i]);
    classifier_logits(cl, h->proj[i] ? hp : x, 1, out);
}

void head_layout(Head *h, size_t N, Arena *a) {
    ClassBlock blocks[2], block;
    size_t most = classifier_scratch(&(Classifier){.K = h->V}, N);
    if (h->div_val > 1) {
        h->hp = arena_take(a, N * h->C);
        h->dhp = arena_take(a, N * h->C);
    }
    if (h->n_clusters) {
        Classifier cl = head_classifier(h, blocks);
        most = classifier_scratch(&cl, N);
        for (size_t i = 1; i <= h->n_clusters; i++) {
            Classifier t = tail_classifier(h, i, &block);
            size_t s = classifier_scratch(&t, N);
            most = s > most ? s : most;
        }
        h->rows = arena_take(a, N * h->C);
        h->drows = arena_take(a, N * h->C);
        h->tail_losses = arena_take(a, N);
        h->targets = (int32_t *)arena_take(a, N);
        h->index = (int32_t *)arena_take(a, N);
    }
    h->scratch = arena_take(a, most);
}

/* The cluster of class y: 0 for the shortlist, else 1..n_clusters. */
static size_t cluster_of(const Head *h, int32_t y) {
    size_t i = 0;
    while (i < h->n_clusters && (size_t)y >= h->cutoff[i + 1]) i++;
    return i;
}

/* Scores the rows whose target lies in cluster i against its classes; adds
 * their losses (and gradients) to the rows'. */
static double tail_loss(Head *h, size_t i, const float *hidden, size_t N, const int32_t *targets, float *losses,
                        float grad_scale, float *dhidden) {
    const size_t C = h->C;
    size_t n = 0;
    for (size_t r = 0; r < N; r++)
        if (cluster_of(h, targets[r]) == i) {
            h->index[n] = (int32_t)r;
            h->targets[n] = targets[r] - (int32_t)h->cutoff[i];
            memcpy(h->rows + n * C, hidden + r * C, C * sizeof(float));
            n++;
        }
    if (!n) return 0.0;
    ClassBlock block;
    Classifier cl = tail_classifier(h, i, &block);
    double sum = score_rows(h, i, &cl, h->rows, n, h->targets, h->tail_losses, grad_scale, h->drows);
    for (size_t k = 0; k < n; k++) {
        const size_t r = (size_t)h->index[k];
        losses[r] += h->tail_losses[k];
        for (size_t c = 0; grad_scale != 0.0f && c < C; c++) dhidden[r * C + c] += h->drows[k * C + c];
    }
    return sum;
}

double head_loss(Head *h, const float *hidden, size_t N, const int32_t *targets, float *losses, float grad_scale,
                 float *dhidden) {
    ClassBlock blocks[2];
    Classifier cl = head_classifier(h, blocks);
    if (!h->n_clusters) return score_rows(h, 0, &cl, hidden, N, targets, losses, grad_scale, dhidden);
    const size_t K = cl.K;
    for (size_t r = 0; r < N; r++) { /* a tail token's head class: its cluster's, in "column -i" order */
        size_t i = cluster_of(h, targets[r]);
        h->targets[r] = i ? (int32_t)(K - i) : targets[r];
    }
    double sum = score_rows(h, 0, &cl, hidden, N, h->targets, losses, grad_scale, dhidden);
    for (size_t i = 1; i <= h->n_clusters; i++) sum += tail_loss(h, i, hidden, N, targets, losses, grad_scale, dhidden);
    return sum;
}

size_t head_logits_scratch(const Head *h) { return (h->n_clusters ? h->cutoff[1] + h->n_clusters : 0) + h->C; }

/* In place: z (n) becomes log_softmax(z) + offset. */
static void log_softmax(float *z, size_t n, float offset) {
    float mx = -INFINITY;
    for (size_t j = 0; j < n; j++) mx = z[j] > mx ? z[j] : mx;
    double s = 0.0;
    for (size_t j = 0; j < n; j++) s += exp((double)(z[j] - mx));
    const float lse = mx + (float)log(s);
    for (size_t j = 0; j < n; j++) z[j] = z[j] - lse + offset;
}

void head_logits(const Head *h, const float *hidden, size_t n, float *out, float *scratch) {
    ClassBlock blocks[2], block;
    Classifier cl = head_classifier(h, blocks);
    if (!h->adaptive) {
        classifier_logits(&cl, hidden, n, out);
        return;
    }
    const size_t shortlist = h->cutoff[1], K = cl.K;
    float *head = scratch + h->C, *hp = scratch; /* hp: one projected row (C floats) */
    for (size_t r = 0; r < n; r++) {
        const float *x = hidden + r * h->C;
        float *o = out + r * h->V;
        row_logits(h, 0, &cl, x, h->n_clusters ? head : o, hp);
        if (!h->n_clusters) { /* adaptive without tail clusters: one softmax over all classes */
            log_softmax(o, h->V, 0.0f);
            continue;
        }
        log_softmax(head, K, 0.0f);
        memcpy(o, head, shortlist * sizeof(float));
        for (size_t i = 1; i <= h->n_clusters; i++) {
            Classifier t = tail_classifier(h, i, &block);
            row_logits(h, i, &t, x, o + h->cutoff[i], hp);
            log_softmax(o + h->cutoff[i], t.K, head[K - i]);
        }
    }
}
