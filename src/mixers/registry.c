/* registry.c — maps module names (config keys `mixer`, `ffn`) to their ops. */
#include <stdlib.h>
#include <string.h>

#include "../core/rng.h"
#include "mixer.h"

extern const ModuleOps softmax_module, linear_module, band_module, fmm_module;
extern const ModuleOps mlp_module;

static const ModuleOps *const registry[] = {&softmax_module, &linear_module, &band_module, &fmm_module,
                                            &mlp_module};
enum { REGISTRY_SIZE = sizeof registry / sizeof registry[0] };

const char *module_names(void) {
    static char names[512];
    if (!names[0])
        for (size_t i = 0; i < REGISTRY_SIZE; i++) {
            if (i) strcat(names, " ");
            strcat(names, registry[i]->name);
        }
    return names;
}

Module *module_create(const char *name, const char *kind, const Config *cfg, int layer, Error *err) {
    for (size_t i = 0; i < REGISTRY_SIZE; i++) {
        if (strcmp(registry[i]->name, name) != 0) continue;
        Module *m = xcalloc(1, registry[i]->size, err);
        if (!m) return NULL;
        m->ops = registry[i];
        m->cfg = cfg;
        m->layer = layer;
        m->C = (size_t)cfg->d_model;
        if (m->ops->configure && m->ops->configure(m, err)) {
            free(m);
            return NULL;
        }
        return m;
    }
    err_set(err, "unknown %s '%s' (key '%s'); available: %s", kind, name, kind, module_names());
    return NULL;
}

void module_free(Module *m) { free(m); }

uint64_t pass_stream(const Pass *p, int layer, int site) {
    return rng_stream(RNG_DROPOUT, ((uint64_t)layer << 8) | (uint64_t)site, p->step);
}

DropoutKey pass_dropout(const Pass *p, int layer, int site, float rate, size_t width) {
    DropoutKey k = {.p = p->training ? rate : 0.0f, .seed = p->seed, .stream = pass_stream(p, layer, site),
                    .first = p->row0 * p->T * width};
    return k;
}

void init_normal(float *w, size_t n, float std, uint64_t seed, int layer, int index) {
    Rng r = rng_make(seed, rng_stream(RNG_INIT, (uint64_t)layer, (uint64_t)index));
    for (size_t i = 0; i < n; i++) w[i] = std * rng_normal(&r);
}
