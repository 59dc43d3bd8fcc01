/* block.h — the wrapper around every sublayer module (internal to src/model):
 *   pre-LN:  x_out = x_in + Dropout(M(LN(x_in)))
 *   post-LN: x_out = LN(x_in + Dropout(M(x_in)))          (FMMformer, Brainformer)
 * Pre-LN blocks do not keep LN(x_in): every block writes it into one buffer
 * of the model (`shared`) and backward recomputes it there from the saved
 * mean and rstd, one cheap pass instead of B*T*C floats per block. */
#ifndef SEQLAB_BLOCK_H
#define SEQLAB_BLOCK_H

#include "model.h"

void block_params(Block *blk, ParamSet *ps, int index);
/* LayerNorm weight N(1, ln_std^2) (ln_std 0: exactly 1), bias 0. */
void block_init(Block *blk, size_t C, float ln_std, uint64_t seed, int index);
/* shared: the model's (B, T, C) buffer for pre-LN blocks' LN(x_in). */
void block_layout(Block *blk, size_t B, size_t T, size_t C, bool pre_ln, float *shared, Arena *a);
/* tmp_y: (B, T, C) temporary. */
void block_forward(Block *blk, const float *x_in, float *tmp_y, bool pre_ln, const Pass *p);
/* grad: on entry d x_out, on exit d x_in. tmp_y, tmp_d: (B, T, C) temporaries. */
void block_backward(Block *blk, const float *x_in, float *grad, float *tmp_y, float *tmp_d, bool pre_ln,
                    const Pass *p);

#endif
