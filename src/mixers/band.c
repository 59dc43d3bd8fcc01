/* band.c — banded (local) softmax attention, the `band` mixer: the seeds'
 * Band_5 / Band_20 rows (attn_type 201 with sparse_ratio 4.5, i.e. the FMM
 * layer with its near field only). Causal: each query sees diag_size keys
 * including itself; bidirectional: |i - j| < diag_size. Time and memory grow
 * linearly with T (the attention core visits only tiles inside the band).
 * Spec: shared/spec/attention.md §3. */
#include "fmm.h"

static const ModuleKey band_keys[] = {FMM_HEAD_KEYS, FMM_BAND_KEYS, {0}};

static int band_configure(Module *m, const ModuleSpec *spec, Error *err) {
    (void)spec;
    return fmm_setup(m, 4, "", err);
}

const ModuleOps band_module = FMM_MODULE_OPS("band", band_keys, band_configure);
