/* block.c — norm, residual dropout and residual around one module; see block.h. */
#include "block.h"

#include "../ops/ops.h"

enum { SITE_RESIDUAL = 8 }; /* module-internal dropout sites use 0..7 */

void block_params(Block *blk, ParamSet *ps, int index) {
    size_t C = blk->module->C;
    params_prefix(ps, "blocks.%d.", index);
    params_add(ps, "norm.weight", &blk->ln_w, &blk->dln_w, GROUP_NORM, 1, C);
    params_add(ps, "norm.bias", &blk->ln_b, &blk->dln_b, GROUP_NORM, 1, C);
    params_prefix(ps, "blocks.%d.%s.", index, blk->kind == 's' ? "mixer" : "ffn");
    blk->module->ops->params(blk->module, ps);
}

void block_init(Block *blk, size_t C, float ln_std, uint64_t seed, int index) {
    init_normal(blk->ln_w, C, ln_std, seed, index, 100); /* stream 100: after the module's own */
    for (size_t c = 0; c < C; c++) {
        blk->ln_w[c] += 1.0f;
        blk->ln_b[c] = 0.0f;
    }
}

void block_layout(Block *blk, size_t B, size_t T, size_t C, bool pre_ln, float *shared, Arena *a) {
    blk->x_out = arena_take(a, B * T * C);
    blk->norm_io = pre_ln ? shared : arena_take(a, B * T * C);
    blk->mean = arena_take(a, B * T);
    blk->rstd = arena_take(a, B * T);
    blk->module->ops->layout(blk->module, B, T, a);
}

static DropoutKey residual_dropout(const Block *blk, const Pass *p) {
    return pass_dropout(p, blk->module->layer, SITE_RESIDUAL, (float)blk->module->cfg->dropout, blk->module->C);
}

/* out = a + b, elementwise over n. */
static void add(float *out, const float *a, const float *b, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void block_forward(Block *blk, const float *x_in, float *tmp_y, bool pre_ln, const Pass *p) {
    Module *m = blk->module;
    const size_t N = p->B * p->T, C = m->C;
    const DropoutKey drop = residual_dropout(blk, p);
    if (pre_ln) {
        layernorm_forward(blk->norm_io, blk->mean, blk->rstd, x_in, blk->ln_w, blk->ln_b, N, C);
        m->ops->forward(m, blk->norm_io, tmp_y, p);
        dropout_forward(tmp_y, tmp_y, N * C, &drop);
        add(blk->x_out, x_in, tmp_y, N * C);
    } else {
        m->ops->forward(m, x_in, tmp_y, p);
        dropout_forward(tmp_y, tmp_y, N * C, &drop);
        add(blk->norm_io, x_in, tmp_y, N * C);
        layernorm_forward(blk->x_out, blk->mean, blk->rstd, blk->norm_io, blk->ln_w, blk->ln_b, N, C);
    }
}

void block_backward(Block *blk, const float *x_in, float *grad, float *tmp_y, float *tmp_d, bool pre_ln,
                    const Pass *p) {
    Module *m = blk->module;
    const size_t N = p->B * p->T, C = m->C;
    const DropoutKey drop = residual_dropout(blk, p);
    if (pre_ln) {
        /* the module's input again (another block's forward wrote the shared buffer since) */
        layernorm_apply(blk->norm_io, blk->mean, blk->rstd, x_in, blk->ln_w, blk->ln_b, N, C);
        /* the residual passes grad through unchanged; the branch adds to it */
        dropout_backward(tmp_y, grad, N * C, &drop);
        m->ops->backward(m, tmp_y, tmp_d, p);
        layernorm_backward(grad, blk->dln_w, blk->dln_b, tmp_d, x_in, blk->mean, blk->rstd, blk->ln_w, N, C, true);
    } else {
        layernorm_backward(tmp_d, blk->dln_w, blk->dln_b, grad, blk->norm_io, blk->mean, blk->rstd, blk->ln_w, N,
                           C, false);
        dropout_backward(tmp_y, tmp_d, N * C, &drop);
        m->ops->backward(m, tmp_y, grad, p);
        add(grad, grad, tmp_d, N * C); /* + the residual path */
    }
}
