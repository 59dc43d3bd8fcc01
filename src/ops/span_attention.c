/* span_attention.c — the adaptive-span codebase's attention (spec
 * moe-brainformer.md §2.2, §3.1): each query of a block of M attends to the
 * Se keys strictly before it (distances 1 .. Se, never itself), taken from
 * the keys of [the last Se cached positions; the block], with the content
 * logit q.k and the position logit q.key_pe[:, S - delta] over sqrt(d), the
 * softmax, then each head's soft span mask and the renormalisation
 * A' = A m / (sum A m + 1e-8), then dropout.
 *
 * Per (batch row, head) the logits are one product Q K^T of M x (Se + M)
 * from which the band is read (the original's _unskew), the position logits
 * one product Q key_pe; the output is the band of weights times V. Backward
 * recomputes the weights from the saved row statistics (nothing of M x Se is
 * kept) and runs the same products transposed. Batch rows run in parallel,
 * each through its heads in order, and the key_pe and mask gradients are
 * summed per batch row then over rows in order: the same bits on any number
 * of threads. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "../core/gemm.h"
#include "ops.h"

enum { STATS = 3 }; /* per query row: the logits' max, the softmax's sum, the mask's normaliser */

static size_t window(const SpanShape *s) { return s->Se + s->M; }

/* Per thread: the full logits/weights (M x window), its gradient, the
 * position logits and their gradient (M x Se), one row's temporaries. */
static size_t thread_floats(const SpanShape *s) {
    return 2 * s->M * window(s) + 2 * s->M * s->Se + 4 * s->Se + 16;
}

size_t span_attention_scratch(const SpanShape *s) {
    const size_t partials = s->B * (s->d * s->Se + s->H * s->Se);
    return (size_t)omp_get_max_threads() * thread_floats(s) + partials;
}

/* Row i's logits over its Se keys into z: the band of the content product
 * plus the position product, over sqrt(d). */
static void row_logits(float *z, const float *full, const float *pos, size_t i, const SpanShape *s) {
    const float scale = 1.0f / sqrtf((float)s->d);
    const float *band = full + i * window(s) + i, *p = pos + i * s->Se;
    for (size_t c = 0; c < s->Se; c++) z[c] = (band[c] + p[c]) * scale;
}

/* The dropout key of row (b, i, h): elements counted per token as H Se. */
static DropoutKey row_dropout(const SpanShape *s, size_t b, size_t i, size_t h) {
    DropoutKey k = s->dropout;
    k.first += ((b * s->M + i) * s->H + h) * s->Se;
    return k;
}

/* From logits z: A (softmax, into a), the masked and renormalised A' (into
 * w, dropout applied); st gets the row's statistics. */
static void row_weights(float *a, float *w, const float *z, const float *mask, float *st, const DropoutKey *drop,
                        size_t Se) {
    float most = -INFINITY;
    for (size_t c = 0; c < Se; c++) most = fmaxf(most, z[c]);
    double sum = 0.0;
    for (size_t c = 0; c < Se; c++) sum += a[c] = expf(z[c] - most);
    const float inv = (float)(1.0 / sum);
    double masked = 0.0;
    for (size_t c = 0; c < Se; c++) {
        a[c] *= inv;
        w[c] = mask ? a[c] * mask[c] : a[c];
        masked += w[c];
    }
    const float norm = mask ? (float)(masked + 1e-8) : 1.0f;
    for (size_t c = 0; c < Se; c++) w[c] /= norm;
    dropout_forward(w, w, Se, drop);
    st[0] = most, st[1] = (float)sum, st[2] = norm;
}

/* The same from saved statistics (backward). */
static void row_weights_again(float *a, float *w, const float *z, const float *mask, const float *st,
                              const DropoutKey *drop, size_t Se) {
    const float inv = 1.0f / st[1];
    for (size_t c = 0; c < Se; c++) {
        a[c] = expf(z[c] - st[0]) * inv;
        w[c] = (mask ? a[c] * mask[c] : a[c]) / st[2];
    }
    dropout_forward(w, w, Se, drop);
}

/* Head h of batch row b: pointers to its q (M rows), k and v (window rows). */
typedef struct {
    const float *q, *k, *v;
} HeadView;

static HeadView head_view(const float *q, const float *k, const float *v, size_t b, size_t h, const SpanShape *s) {
    const size_t ld = s->H * s->d;
    return (HeadView){q + b * s->M * ld + h * s->d, k + b * window(s) * ld + h * s->d, v + b * window(s) * ld + h * s->d};
}

/* full (M x window) = Q K^T, pos (M x Se) = Q key_pe[:, S - Se ..]. */
static void head_logits(float *full, float *pos, const HeadView *hv, const SpanShape *s) {
    const size_t ld = s->H * s->d;
    gemm(false, true, s->M, window(s), s->d, 1.0f, hv->q, ld, hv->k, ld, 0.0f, full, window(s));
    gemm(false, false, s->M, s->Se, s->d, 1.0f, hv->q, ld, s->key_pe + (s->S - s->Se), s->S, 0.0f, pos, s->Se);
}

void span_attention_forward(float *o, float *stats, const float *q, const float *k, const float *v, const SpanShape *s,
                            float *scratch) {
    const size_t ld = s->H * s->d, W = window(s), Se = s->Se;
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < s->B; b++) {
        float *full = scratch + (size_t)omp_get_thread_num() * thread_floats(s), *pos = full + 2 * s->M * W;
        float *z = pos + 2 * s->M * Se, *a = z + Se, *w = a + Se;
        for (size_t h = 0; h < s->H; h++) {
            const HeadView hv = head_view(q, k, v, b, h, s);
            const float *mask = s->mask ? s->mask + h * Se : NULL;
            head_logits(full, pos, &hv, s);
            for (size_t i = 0; i < s->M; i++) {
                row_logits(z, full, pos, i, s);
                const DropoutKey drop = row_dropout(s, b, i, h);
                row_weights(a, w, z, mask, stats + ((b * s->H + h) * s->M + i) * STATS, &drop, Se);
                float *row = full + i * W;
                memset(row, 0, W * sizeof(float));
                memcpy(row + i, w, Se * sizeof(float)); /* key i + c: distance Se - c */
            }
            gemm(false, false, s->M, s->d, W, 1.0f, full, W, hv.v, ld, 0.0f, o + b * s->M * ld + h * s->d, ld);
        }
    }
}

void span_attention_backward(float *dq, float *dk, float *dv, float *dkey_pe, float *dmask, const float *do_,
                             const float *q, const float *k, const float *v, const float *stats, const SpanShape *s,
                             float *scratch) {
    const size_t ld = s->H * s->d, W = window(s), Se = s->Se, d = s->d;
    const float scale = 1.0f / sqrtf((float)d);
    float *partial_pe = scratch + (size_t)omp_get_max_threads() * thread_floats(s);
    float *partial_mask = partial_pe + s->B * d * Se;
    memset(partial_pe, 0, s->B * (d * Se + s->H * Se) * sizeof(float));
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < s->B; b++) {
        float *full = scratch + (size_t)omp_get_thread_num() * thread_floats(s), *dfull = full + s->M * W;
        float *pos = dfull + s->M * W, *dpos = pos + s->M * Se, *z = dpos + s->M * Se, *a = z + Se, *w = a + Se;
        float *dw = w + Se;
        for (size_t h = 0; h < s->H; h++) {
            const HeadView hv = head_view(q, k, v, b, h, s);
            const float *mask = s->mask ? s->mask + h * Se : NULL, *doh = do_ + b * s->M * ld + h * d;
            float *dmask_h = partial_mask + (b * s->H + h) * Se;
            head_logits(full, pos, &hv, s);
            gemm(false, true, s->M, W, d, 1.0f, doh, ld, hv.v, ld, 0.0f, dfull, W); /* dA'' = dO V^T */
            for (size_t i = 0; i < s->M; i++) {
                const float *st = stats + ((b * s->H + h) * s->M + i) * STATS;
                const DropoutKey drop = row_dropout(s, b, i, h);
                row_logits(z, full, pos, i, s);
                row_weights_again(a, w, z, mask, st, &drop, Se);
                /* through the dropout: dA' = dA'' D / (1 - p); then the renormalisation and the mask */
                memcpy(dw, dfull + i * W + i, Se * sizeof(float));
                dropout_backward(dw, dw, Se, &drop);
                double g = 0.0, ga = 0.0;
                for (size_t c = 0; c < Se; c++) g += (double)dw[c] * (mask ? a[c] * mask[c] / st[2] : a[c]);
                for (size_t c = 0; c < Se; c++) {
                    const float da = mask ? mask[c] * (dw[c] - (float)g) / st[2] : dw[c];
                    if (mask) dmask_h[c] += a[c] * (dw[c] - (float)g) / st[2];
                    dw[c] = da; /* now dA */
                    ga += (double)a[c] * da;
                }
                float *drow = dfull + i * W, *wrow = full + i * W, *dp = dpos + i * Se;
                memset(drow, 0, W * sizeof(float));
                memset(wrow, 0, W * sizeof(float));
                for (size_t c = 0; c < Se; c++) {
                    const float ds = a[c] * (dw[c] - (float)ga) * scale; /* the logit's gradient, 1/sqrt(d) in */
                    drow[i + c] = ds, dp[c] = ds, wrow[i + c] = w[c];
                }
            }
            float *dqh = dq + b * s->M * ld + h * d, *dkh = dk + b * W * ld + h * d, *dvh = dv + b * W * ld + h * d;
            gemm(false, false, s->M, d, W, 1.0f, dfull, W, hv.k, ld, 0.0f, dqh, ld);                   /* dS K */
            gemm(false, true, s->M, d, Se, 1.0f, dpos, Se, s->key_pe + (s->S - Se), s->S, 1.0f, dqh, ld); /* + dP pe^T */
            gemm(true, false, W, d, s->M, 1.0f, dfull, W, hv.q, ld, 0.0f, dkh, ld);                    /* dS^T Q */
            gemm(true, false, W, d, s->M, 1.0f, full, W, doh, ld, 0.0f, dvh, ld);                      /* A''^T dO */
            gemm(true, false, d, Se, s->M, 1.0f, hv.q, ld, dpos, Se, 1.0f, partial_pe + b * d * Se, Se); /* Q^T dP */
        }
    }
    for (size_t b = 0; b < s->B; b++) {
        for (size_t r = 0; r < d; r++)
            for (size_t c = 0; c < Se; c++) dkey_pe[r * s->S + (s->S - Se) + c] += partial_pe[(b * d + r) * Se + c];
        for (size_t i = 0; dmask && i < s->H * Se; i++) dmask[i] += partial_mask[b * s->H * Se + i];
    }
}
