/* registry.c — the modules seqlab can build. Adding a module: its file, and
 * one line in this list. */
#include "registry.h"

#include <string.h>

extern const ModuleOps softmax_module, linear_module, band_module, fmm_module, dwconv_module, gated_module, s5_module,
    hyena_module, nystrom_module, ema_module, mega_module, seqboat_module;
extern const ModuleOps mlp_module, moe_module;
extern const ModuleOps adaptive_span_module;
extern const ModuleOps residual_module;

static const ModuleOps *const registry[] = {
    &softmax_module, &linear_module, &band_module, &fmm_module, &dwconv_module, &gated_module, &s5_module, &hyena_module, &nystrom_module, &ema_module, &mega_module, &seqboat_module, &adaptive_span_module, /* mixers */
    &mlp_module, &moe_module,                                                   /* feed-forwards */
    &residual_module,                                                           /* wrappers */
};
enum { REGISTRY_SIZE = sizeof registry / sizeof registry[0] };

const ModuleOps *registry_find(const char *name, const char *kind) {
    for (size_t i = 0; i < REGISTRY_SIZE; i++)
        if (!strcmp(registry[i]->name, name) && (!kind || !strcmp(registry[i]->kind, kind))) return registry[i];
    return NULL;
}

const char *registry_names(const char *kind) {
    static char names[1024];
    names[0] = 0;
    for (size_t i = 0; i < REGISTRY_SIZE; i++) {
        if (kind && strcmp(registry[i]->kind, kind)) continue;
        if (names[0]) strncat(names, " ", sizeof names - strlen(names) - 1);
        strncat(names, registry[i]->name, sizeof names - strlen(names) - 1);
    }
    return names;
}

void registry_print_help(FILE *f) {
    static const char *const kinds[] = {"mixer", "ffn", "wrapper"};
    static const char *const sections[] = {"mixer", "ffn (moe for the 'g' letters)", "residual"};
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        fprintf(f, "\n%s modules (section `%s: {name: ..., key: value}`, or --%s.key value):\n", kinds[k],
                sections[k], sections[k]);
        for (size_t i = 0; i < REGISTRY_SIZE; i++)
            if (!strcmp(registry[i]->kind, kinds[k])) keys_print_help(f, registry[i]->name, kinds[k], registry[i]->keys);
    }
}
