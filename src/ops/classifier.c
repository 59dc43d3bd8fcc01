/* classifier.c — a softmax classifier fused with its cross-entropy: logits
 * of a chunk of rows, the loss, and when training the gradients with respect
 * to the rows, the weights and the biases, chunk by chunk, so the rows x
 * classes logits are never all stored (a WikiText-103 head has 20,003 to
 * 267,735 classes). Serves the full softmax head and each cluster of the
 * adaptive softmax (src/model/heads.c); see ops.h. */
#include "../core/gemm.h"
#include "ops.h"

size_t classifier_chunk_rows(const Classifier *cl, size_t n) {
    size_t rows = CLASSIFIER_CHUNK_FLOATS / (cl->K ? cl->K : 1);
    if (rows < 1) rows = 1;
    return rows < n ? rows : n;
}

size_t classifier_scratch(const Classifier *cl, size_t n) { return classifier_chunk_rows(cl, n) * cl->K; }

/* logits (rows x K) = h W^T + b, block by block into its columns. */
static void chunk_logits(const Classifier *cl, const float *h, size_t rows, float *logits) {
    size_t col = 0;
    for (size_t k = 0; k < cl->n_blocks; k++) {
        const ClassBlock *blk = &cl->blocks[k];
        if (blk->b)
#pragma omp parallel for schedule(static)
            for (size_t r = 0; r < rows; r++)
                for (size_t j = 0; j < blk->rows; j++) logits[r * cl->K + col + j] = blk->b[j];
        gemm(false, true, rows, blk->rows, cl->C, 1.0f, h, cl->C, blk->w, cl->C, blk->b ? 1.0f : 0.0f, logits + col,
             cl->K);
        col += blk->rows;
    }
}

/* From dlogits: dh = dlogits W (overwritten), dW += dlogits^T h, db += column sums. */
static void chunk_grads(const Classifier *cl, const float *h, size_t rows, const float *dlogits, float *dh) {
    size_t col = 0;
    for (size_t k = 0; k < cl->n_blocks; k++) {
        const ClassBlock *blk = &cl->blocks[k];
        gemm(false, false, rows, cl->C, blk->rows, 1.0f, dlogits + col, cl->K, blk->w, cl->C, k ? 1.0f : 0.0f, dh,
             cl->C);
        gemm(true, false, blk->rows, cl->C, rows, 1.0f, dlogits + col, cl->K, h, cl->C, 1.0f, blk->dw, cl->C);
        if (blk->db)
#pragma omp parallel for schedule(static)
            for (size_t j = 0; j < blk->rows; j++) {
                float acc = 0.0f;
                for (size_t r = 0; r < rows; r++) acc += dlogits[r * cl->K + col + j];
                blk->db[j] += acc;
            }
        col += blk->rows;
    }
}

double classifier_forward(const Classifier *cl, const float *h, size_t n, const int32_t *targets, float *losses,
                          float grad_scale, float *dh, float *scratch) {
    const size_t chunk = classifier_chunk_rows(cl, n);
    double total = 0.0;
    for (size_t r0 = 0; r0 < n; r0 += chunk) {
        const size_t rows = n - r0 < chunk ? n - r0 : chunk;
        const float *hc = h + r0 * cl->C;
        chunk_logits(cl, hc, rows, scratch);
        if (grad_scale == 0.0f) {
            total += crossentropy_forward(scratch, losses + r0, targets + r0, rows, cl->K);
            continue;
        }
        total += crossentropy_forward_backward(scratch, losses + r0, targets + r0, rows, cl->K, grad_scale);
        chunk_grads(cl, hc, rows, scratch, dh + r0 * cl->C);
    }
    return total;
}

void classifier_logits(const Classifier *cl, const float *h, size_t n, float *logits) {
    chunk_logits(cl, h, n, logits);
}
