/* linear.c — causal linear attention, the `linear` mixer (seed alias
 * attn_type 34): feature map elu+1 with the FMM trainer's per-query and
 * per-key normalisation, the extra 1/sqrt(d) and eps 1e-5, computed in
 * chunks (src/ops/linear_attention.c) with an O(1)-per-token step.
 * It is the FMM layer with its far field only, one elu kernel.
 * Spec: shared/spec/attention.md §2.2. */
#include "fmm.h"

static const ModuleKey linear_keys[] = {FMM_HEAD_KEYS, FMM_FAR_KEYS, {0}};

static int linear_configure(Module *m, const ModuleSpec *spec, Error *err) {
    (void)spec;
    return fmm_setup(m, 5, "elu", err);
}

const ModuleOps linear_module = FMM_MODULE_OPS("linear", linear_keys, linear_configure);
