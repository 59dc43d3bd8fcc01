/* heads.h — output heads (internal to src/model). The LM head projects the
 * final hidden states onto the vocabulary (weights tied to the embedding or
 * its own head.weight) and scores them with softmax cross-entropy. */
#ifndef SEQLAB_HEADS_H
#define SEQLAB_HEADS_H

#include "model.h"

/* logits = xf W^T; with targets, returns the summed loss and, if grad_scale
 * != 0, replaces logits by grad_scale * d(loss sum)/d(logits). */
double head_forward(Model *m, const int32_t *targets, float grad_scale);
/* dxf (B, T, C) from the dlogits left by head_forward; dW += dlogits^T xf. */
void head_backward(Model *m, float *dxf);

#endif
