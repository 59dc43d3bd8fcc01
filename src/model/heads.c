/* heads.c — the full and the adaptive softmax head; see heads.h. */
#include "heads.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../mixers/mixer.h"
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

int head_configure(Head *h, const Config *c, size_t V, size_t C, Error *err) {
    memset(h, 0, sizeof *h);
    h->V = V;
    h->C = C;
    h->cutoff[1] = V;
    if (!c->adaptive_softmax) return 0;
    h->adaptive = true;
    if (c->div_val != 1)
        return err_set(err, "key 'div_val' = %d: only div_val 1 (one output table, as the seeds use) is implemented",
                       c->div_val);
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
    return 0;
}

void head_params(Head *h, ParamSet *ps, bool tied) {
    params_prefix(ps, "%s", "");
    if (!tied) params_add(ps, "head.weight", &h->w, &h->dw, GROUP_LINEAR, 2, h->V, h->C);
    if (h->adaptive) params_add(ps, "head.bias", &h->b, &h->db, GROUP_BIAS, 1, h->V);
    if (!h->n_clusters) return;
    params_add(ps, "head.cluster_weight", &h->cw, &h->dcw, GROUP_LINEAR, 2, h->n_clusters, h->C);
    params_add(ps, "head.cluster_bias", &h->cb, &h->dcb, GROUP_BIAS, 1, h->n_clusters);
}

/* The original inits biases at 0 and cluster weights like every weight. */
void head_init(Head *h, const Config *c, uint64_t seed, int layer) {
    if (h->adaptive) memset(h->b, 0, h->V * sizeof(float));
    if (!h->n_clusters) return;
    memset(h->cb, 0, h->n_clusters * sizeof(float));
    init_normal(h->cw, h->n_clusters * h->C, (float)c->init_std, seed, layer, 4);
}

static Classifier head_classifier(const Head *h, ClassBlock *blocks) {
    const size_t shortlist = h->cutoff[1];
    blocks[0] = (ClassBlock){h->w, h->b, h->dw, h->db, shortlist};
    blocks[1] = (ClassBlock){h->cw, h->cb, h->dcw, h->dcb, h->n_clusters};
    Classifier cl = {h->C, blocks, h->n_clusters ? 2 : 1, shortlist + h->n_clusters};
    return cl;
}

/* Cluster i >= 1: the table rows [cutoff[i], cutoff[i+1]). */
static Classifier tail_classifier(const Head *h, size_t i, ClassBlock *block) {
    const size_t lo = h->cutoff[i], C = h->C;
    *block = (ClassBlock){h->w + lo * C, h->b + lo, h->dw ? h->dw + lo * C : NULL, h->db ? h->db + lo : NULL,
                          h->cutoff[i + 1] - lo};
    Classifier cl = {C, block, 1, block->rows};
    return cl;
}

void head_layout(Head *h, size_t N, Arena *a) {
    ClassBlock blocks[2], block;
    size_t most = classifier_scratch(&(Classifier){.K = h->V}, N);
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
    double sum = classifier_forward(&cl, h->rows, n, h->targets, h->tail_losses, grad_scale, h->drows, h->scratch);
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
    if (!h->n_clusters) return classifier_forward(&cl, hidden, N, targets, losses, grad_scale, dhidden, h->scratch);
    const size_t K = cl.K;
    for (size_t r = 0; r < N; r++) { /* a tail token's head class: its cluster's, in "column -i" order */
        size_t i = cluster_of(h, targets[r]);
        h->targets[r] = i ? (int32_t)(K - i) : targets[r];
    }
    double sum = classifier_forward(&cl, hidden, N, h->targets, losses, grad_scale, dhidden, h->scratch);
    for (size_t i = 1; i <= h->n_clusters; i++) sum += tail_loss(h, i, hidden, N, targets, losses, grad_scale, dhidden);
    return sum;
}

size_t head_logits_scratch(const Head *h) { return h->n_clusters ? h->cutoff[1] + h->n_clusters : 0; }

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
    if (!h->n_clusters) {
        classifier_logits(&cl, hidden, n, out);
        return;
    }
    const size_t shortlist = h->cutoff[1], K = cl.K;
    for (size_t r = 0; r < n; r++) {
        const float *x = hidden + r * h->C;
        float *o = out + r * h->V;
        classifier_logits(&cl, x, 1, scratch);
        log_softmax(scratch, K, 0.0f);
        memcpy(o, scratch, shortlist * sizeof(float));
        for (size_t i = 1; i <= h->n_clusters; i++) {
            Classifier t = tail_classifier(h, i, &block);
            classifier_logits(&t, x, 1, o + h->cutoff[i]);
            log_softmax(o + h->cutoff[i], t.K, scratch[K - i]);
        }
    }
}
