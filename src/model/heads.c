/* heads.c — the language-model head; see heads.h. */
#include "heads.h"

#include "../ops/ops.h"

double head_forward(Model *m, const int32_t *targets, float grad_scale) {
    const size_t N = m->B * m->T;
    linear_forward(m->logits, m->hidden, m->whead, NULL, N, m->C, m->V);
    if (!targets) return 0.0;
    if (grad_scale == 0.0f) return crossentropy_forward(m->logits, m->losses, targets, N, m->V);
    return crossentropy_forward_backward(m->logits, m->losses, targets, N, m->V, grad_scale);
}

void head_backward(Model *m, float *dxf) {
    linear_backward(dxf, m->dwhead, NULL, m->logits, m->hidden, m->whead, m->B * m->T, m->C, m->V, false);
}
