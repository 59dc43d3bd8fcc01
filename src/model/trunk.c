/* trunk.c — see trunk.h. */
#include "trunk.h"

#include <stdlib.h>
#include <string.h>

#include "../nn/registry.h"

/* One letter of the expanded string: what runs and which earlier use it shares with. */
typedef struct {
    char letter;
    int shares;         /* position of the first use of the same sublayer, or -1 */
    size_t layer_start; /* position of the first letter of its layer */
} Slot;

/* plain: every letter its own. */
static int expand_plain(const char *arch, Slot *out, size_t *n) {
    for (size_t i = 0; arch[i]; i++, (*n)++) out[*n] = (Slot){arch[i], -1, *n};
    return 0;
}

/* sandwich: pairs (s|., f|.), n_layer of them. */
static int expand_sandwich(const char *arch, int n_layer, Slot *out, size_t *n, Error *err) {
    size_t len = strlen(arch);
    if (len % 2 || len / 2 != (size_t)n_layer)
        return err_set(err, "key 'arch' \"%s\": the sandwich grammar reads %zu characters as pairs, n_layer %d "
                            "needs exactly %d", arch, len, n_layer, 2 * n_layer);
    for (size_t i = 0; i < len; i += 2) {
        if ((arch[i] != 's' && arch[i] != '.') || (arch[i + 1] != 'f' && arch[i + 1] != '.'))
            return err_set(err, "key 'arch' \"%s\": pair %zu is \"%.2s\"; the sandwich grammar takes 's' or '.' "
                                "then 'f' or '.'", arch, i / 2 + 1, arch + i);
        const size_t start = *n;
        if (arch[i] == 's') out[(*n)++] = (Slot){'s', -1, start};
        if (arch[i + 1] == 'f') out[(*n)++] = (Slot){'f', -1, start};
    }
    return 0;
}

/* brainformer: '.'-separated layers, repeated letters inside one share. */
static int expand_brainformer(const char *arch, Slot *out, size_t *n) {
    size_t layer_start = *n;
    for (size_t i = 0; arch[i]; i++) {
        if (arch[i] == '.') {
            layer_start = *n;
            continue;
        }
        int first = -1;
        for (size_t j = layer_start; j < *n && first < 0; j++)
            if (out[j].letter == arch[i]) first = out[j].shares >= 0 ? out[j].shares : (int)j;
        out[(*n)++] = (Slot){arch[i], first, layer_start};
    }
    return 0;
}

/* The per-position section of position i, if the config has one. */
static bool has_section(const Config *cfg, const char *prefix) {
    size_t n = strlen(prefix);
    for (int e = 0; e < cfg->n_entries; e++)
        if (!strncmp(cfg->entries[e].key, prefix, n) && cfg->entries[e].key[n] == '.') return true;
    return false;
}

/* What a letter runs: 's' the mixer, 'f' the feed-forward, 'g' the mixture
 * of experts (a feed-forward with its own section, so 'f' and 'g' of one
 * arch string can differ). */
static const char *inner_section(char letter) { return letter == 's' ? "mixer" : letter == 'g' ? "moe" : "ffn"; }

Module *trunk_sublayer(const Config *cfg, char letter, size_t i, size_t C, Error *err) {
    const char *inner = inner_section(letter);
    ModuleSpec spec = {.cfg = cfg, .kind = letter == 's' ? "mixer" : "ffn", .flat = true, .C_in = C, .C_out = C};
    snprintf(spec.name, sizeof spec.name, "%s", letter == 's' ? cfg->mixer : letter == 'g' ? "moe" : cfg->ffn);
    snprintf(spec.section[0], sizeof spec.section[0], "blocks.%zu.%s", i, inner);
    if (!has_section(cfg, spec.section[0])) spec.section[0][0] = 0;
    snprintf(spec.section[1], sizeof spec.section[1], "%s", inner);
    const char *named = keys_entry(&spec, "name", NULL);
    if (named) snprintf(spec.name, sizeof spec.name, "%s", named);
    snprintf(spec.path, sizeof spec.path, "blocks.%zu.%s", i, inner);
    Module *module = module_build(&spec, err);
    if (!module || module->ops->owns_residual) return module;

    ModuleSpec wrap = {.cfg = cfg, .kind = "wrapper", .name = "residual", .flat = true, .C_in = C, .C_out = C};
    snprintf(wrap.section[0], sizeof wrap.section[0], "blocks.%zu.residual", i);
    if (!has_section(cfg, wrap.section[0])) wrap.section[0][0] = 0;
    snprintf(wrap.section[1], sizeof wrap.section[1], "residual");
    snprintf(wrap.path, sizeof wrap.path, "blocks.%zu", i);
    Module *w = module_build(&wrap, err);
    if (!w || module_attach_child(w, inner, module, err)) {
        module_free(module);
        module_free(w);
        return NULL;
    }
    return w;
}

static int expand(const Config *cfg, Slot *slots, size_t *n, Error *err) {
    *n = 0;
    if (!strcmp(cfg->arch_grammar, "sandwich")) return expand_sandwich(cfg->arch, cfg->n_layer, slots, n, err);
    if (!strcmp(cfg->arch_grammar, "brainformer")) return expand_brainformer(cfg->arch, slots, n);
    return expand_plain(cfg->arch, slots, n);
}

int trunk_build(Trunk *t, const Config *cfg, size_t C, Error *err) {
    memset(t, 0, sizeof *t);
    t->C = C;
    const size_t len = strlen(cfg->arch);
    Slot *slots = xcalloc(len + 1, sizeof *slots, err);
    if (!slots) return -1;
    int rc = expand(cfg, slots, &t->n_uses, err);
    if (!rc && t->n_uses == 0) rc = err_set(err, "key 'arch' \"%s\" has no sublayer", cfg->arch);
    if (!rc && (!(t->uses = xcalloc(t->n_uses, sizeof *t->uses, err)) ||
                !(t->sublayers = xcalloc(t->n_uses, sizeof *t->sublayers, err))))
        rc = -1;
    for (size_t i = 0; !rc && i < t->n_uses; i++) {
        TrunkUse *u = &t->uses[i];
        u->letter = slots[i].letter;
        u->first = slots[i].shares < 0;
        u->layer_start = slots[i].layer_start;
        if (slots[i].shares >= 0) {
            u->sublayer = t->uses[slots[i].shares].sublayer;
        } else {
            u->sublayer = t->n_sublayers;
            t->sublayers[t->n_sublayers] = trunk_sublayer(cfg, u->letter, i, C, err);
            if (!t->sublayers[t->n_sublayers]) {
                rc = err_prefix(err, "sublayer %zu ('%c' of arch '%s')", i, u->letter, cfg->arch);
                break;
            }
            t->n_sublayers++;
        }
        char path[64];
        snprintf(path, sizeof path, "blocks.%zu", i);
        if (!(u->frame = frame_create(t->sublayers[u->sublayer], path, err))) rc = -1;
    }
    free(slots);
    return rc;
}

void trunk_free(Trunk *t) {
    for (size_t i = 0; t->uses && i < t->n_uses; i++) frame_free(t->uses[i].frame);
    for (size_t i = 0; t->sublayers && i < t->n_sublayers; i++) module_free(t->sublayers[i]);
    free(t->uses);
    free(t->sublayers);
    memset(t, 0, sizeof *t);
}

void trunk_params(Trunk *t, ParamSet *ps) {
    for (size_t i = 0; i < t->n_sublayers; i++) module_params(t->sublayers[i], ps);
}

void trunk_init(Trunk *t, uint64_t seed) {
    for (size_t i = 0; i < t->n_sublayers; i++) module_init(t->sublayers[i], seed);
}

void trunk_layout(Trunk *t, size_t B, size_t T, Arena *a) {
    for (size_t i = 0; i < t->n_uses; i++) {
        t->uses[i].x_out = arena_take(a, B * T * t->C);
        module_layout(t->uses[i].frame, B, T, a);
    }
}

size_t trunk_scratch(Trunk *t, size_t B, size_t T) {
    size_t most = 0;
    for (size_t i = 0; i < t->n_sublayers; i++) {
        size_t s = module_scratch(t->sublayers[i], B, T);
        most = s > most ? s : most;
    }
    return most;
}

const float *trunk_input(const Trunk *t, const float *x0, size_t i) { return i == 0 ? x0 : t->uses[i - 1].x_out; }

void trunk_describe(const Trunk *t, FILE *f) {
    for (size_t i = 0; i < t->n_uses; i++) fprintf(f, "%s%c%zu", i ? " " : "", t->uses[i].letter, t->uses[i].sublayer);
    fprintf(f, " (%zu uses of %zu sublayers)", t->n_uses, t->n_sublayers);
}
