/* module.c — building modules from their specs, frames, and the helpers
 * module files share; see module.h. */
#include "module.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/rng.h"
#include "registry.h"

/* ---- paths and RNG scopes ---- */

uint64_t module_scope(const char *path) {
    unsigned long index;
    int used = 0;
    if (sscanf(path, "blocks.%lu%n", &index, &used) == 1 && (path[used] == 0 || path[used] == '.'))
        return index;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *p = path; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h | (1ull << 32);
}

/* ---- building ---- */

static int configure(Module *m, const ModuleSpec *spec, Error *err) {
    const ModuleOps *ops = m->ops;
    if (keys_read(ops->keys, m, spec, err)) return -1;
    if (ops->configure && ops->configure(m, spec, err)) return -1;
    const char *children[MODULE_MAX_CHILDREN + 1] = {0};
    for (int i = 0; i < m->n_children; i++) children[i] = m->child_names[i];
    return keys_check_entries(ops->keys, children, spec, ops->name, err);
}

Module *module_build(const ModuleSpec *spec, Error *err) {
    const ModuleOps *ops = registry_find(spec->name, spec->kind);
    if (!ops) {
        err_set(err, "unknown %s '%s' (key '%s'); available: %s", spec->kind, spec->name,
                spec->section[1][0] ? spec->section[1] : spec->kind, registry_names(spec->kind));
        return NULL;
    }
    Module *m = xcalloc(1, ops->size, err);
    if (!m) return NULL;
    m->ops = ops;
    snprintf(m->path, sizeof m->path, "%s", spec->path);
    m->scope = module_scope(m->path);
    m->C_in = spec->C_in;
    m->C_out = spec->C_out;
    if (configure(m, spec, err)) {
        module_free(m);
        return NULL;
    }
    return m;
}

void module_free(Module *m) {
    if (!m) return;
    for (int i = 0; i < m->n_children; i++) module_free(m->children[i]);
    if (m->ops->destroy) m->ops->destroy(m);
    free(m);
}

int module_attach_child(Module *parent, const char *name, Module *child, Error *err) {
    if (parent->n_children == MODULE_MAX_CHILDREN)
        return err_set(err, "%s: more than %d child modules", parent->path, MODULE_MAX_CHILDREN);
    parent->children[parent->n_children] = child;
    parent->child_names[parent->n_children++] = name;
    return 0;
}

Module *module_add_child(Module *parent, const ModuleSpec *spec, const char *name, const char *kind,
                         const char *default_module, size_t C_in, size_t C_out, Error *err) {
    return module_add_child_at(parent, spec, name, name, kind, default_module, NULL, C_in, C_out, err);
}

Module *module_add_child_at(Module *parent, const ModuleSpec *spec, const char *section, const char *name,
                            const char *kind, const char *default_module, const char *defaults, size_t C_in,
                            size_t C_out, Error *err) {
    if (parent->n_children == MODULE_MAX_CHILDREN) {
        err_set(err, "%s: more than %d child modules", parent->path, MODULE_MAX_CHILDREN);
        return NULL;
    }
    ModuleSpec child = {.cfg = spec->cfg, .kind = kind, .flat = false, .defaults = defaults, .C_in = C_in,
                        .C_out = C_out};
    int too_long = snprintf(child.path, sizeof child.path, "%s%s%s", parent->path, parent->path[0] ? "." : "",
                            name) >= (int)sizeof child.path;
    for (int s = 0; s < 2; s++)
        if (spec->section[s][0])
            too_long |= snprintf(child.section[s], sizeof child.section[s], "%s.%s", spec->section[s], section) >=
                        (int)sizeof child.section[s];
    if (too_long) {
        err_set(err, "%s: the path of child '%s' is too long", parent->path, name);
        return NULL;
    }
    const char *chosen = keys_entry(&child, "name", NULL);
    snprintf(child.name, sizeof child.name, "%s", chosen ? chosen : default_module);
    Module *c = module_build(&child, err);
    if (!c) {
        err_prefix(err, "%s", child.path);
        return NULL;
    }
    module_attach_child(parent, name, c, err); /* room was checked above */
    return c;
}

void module_params(Module *m, ParamSet *ps) {
    params_prefix(ps, "%s%s", m->path, m->path[0] ? "." : ""); /* a module at the root: names as declared */
    if (m->ops->params) m->ops->params(m, ps);
    for (int i = 0; i < m->n_children; i++) module_params(m->children[i], ps);
}

void module_init(Module *m, uint64_t seed) {
    if (m->ops->init) m->ops->init(m, seed);
    for (int i = 0; i < m->n_children; i++) module_init(m->children[i], seed);
}

/* ---- frames ---- */

static int frame_fill(Frame *f, Module *m, const char *path, Error *err) {
    f->module = m;
    snprintf(f->path, sizeof f->path, "%s", path);
    f->scope = module_scope(path);
    if (m->ops->frame_bytes && !(f->data = xcalloc(1, m->ops->frame_bytes, err))) return -1;
    if (m->n_children && !(f->children = xcalloc((size_t)m->n_children, sizeof *f->children, err))) return -1;
    for (int i = 0; i < m->n_children; i++) {
        char child[MODULE_PATH + 64];
        snprintf(child, sizeof child, "%s.%s", path, m->child_names[i]);
        if (frame_fill(&f->children[i], m->children[i], child, err)) return -1;
    }
    return 0;
}

static void frame_clear(Frame *f) {
    for (int i = 0; f->children && i < f->module->n_children; i++) frame_clear(&f->children[i]);
    free(f->children);
    free(f->data);
}

Frame *frame_create(Module *m, const char *path, Error *err) {
    Frame *f = xcalloc(1, sizeof *f, err);
    if (f && frame_fill(f, m, path, err)) {
        frame_free(f);
        return NULL;
    }
    return f;
}

void frame_free(Frame *f) {
    if (!f) return;
    if (f->module) frame_clear(f);
    free(f);
}

/* ---- running ---- */

void module_layout(Frame *f, size_t B, size_t T, Arena *a) {
    if (f->module->ops->layout) f->module->ops->layout(f->module, f, B, T, a);
}

size_t module_scratch(Module *m, size_t B, size_t T) { return m->ops->scratch ? m->ops->scratch(m, B, T) : 0; }

/* The context a use runs in: the caller's, with the use's RNG scope. */
static Ctx in_use(const Frame *f, const Ctx *c) {
    Ctx local = *c;
    local.scope = f->scope;
    local.path = f->path;
    return local;
}

void module_forward(Frame *f, const float *x, float *y, const Ctx *c) {
    Ctx local = in_use(f, c);
    f->module->ops->forward(f->module, f, x, y, &local);
}

void module_backward(Frame *f, const float *dy, float *dx, const Ctx *c) {
    Ctx local = in_use(f, c);
    f->module->ops->backward(f->module, f, dy, dx, &local);
}

bool module_can_step(const Module *m) {
    if (!m->ops->step) return false;
    for (int i = 0; i < m->n_children; i++)
        if (!module_can_step(m->children[i])) return false;
    return true;
}

size_t module_state_size(Module *m, size_t max_T) {
    return module_can_step(m) && m->ops->state_size ? m->ops->state_size(m, max_T) : 0;
}

void module_step(Frame *f, float *state, size_t t, const float *x, float *y, const Ctx *c) {
    Ctx local = in_use(f, c);
    f->module->ops->step(f->module, f, state, t, x, y, &local);
}

double module_flops(Module *m, size_t B, size_t T, bool causal) {
    double f = m->ops->flops ? m->ops->flops(m, B, T, causal) : 0.0;
    for (int i = 0; i < m->n_children; i++) f += module_flops(m->children[i], B, T, causal);
    return f;
}

size_t module_memory_size(Module *m) {
    if (m->ops->memory_size) return m->ops->memory_size(m);
    for (int i = 0; i < m->n_children; i++) {
        const size_t n = module_memory_size(m->children[i]);
        if (n) return n;
    }
    return 0;
}

void module_after_update(Module *m) {
    if (m->ops->after_update) m->ops->after_update(m);
    for (int i = 0; i < m->n_children; i++) module_after_update(m->children[i]);
}

/* ---- helpers ---- */

uint64_t ctx_stream(const Ctx *c, int site) {
    return rng_stream(RNG_DROPOUT, (c->scope << 8) | (uint64_t)site, c->step);
}

DropoutKey ctx_dropout(const Ctx *c, int site, float rate, size_t width) {
    DropoutKey k = {.p = c->training ? rate : 0.0f, .seed = c->seed, .stream = ctx_stream(c, site),
                    .first = c->row0 * c->T * width};
    return k;
}

void init_normal(float *w, size_t n, float std, uint64_t seed, uint64_t scope, int index) {
    Rng r = rng_make(seed, rng_stream(RNG_INIT, scope, (uint64_t)index));
    for (size_t i = 0; i < n; i++) w[i] = std * rng_normal(&r);
}

void init_trunc_normal(float *w, size_t n, float std, uint64_t seed, uint64_t scope, int index) {
    Rng r = rng_make(seed, rng_stream(RNG_INIT, scope, (uint64_t)index));
    for (size_t i = 0; i < n; i++) {
        float z;
        do z = rng_normal(&r);
        while (z < -2.0f || z > 2.0f);
        w[i] = z * std;
    }
}

void module_init_lecun(const Module *m, float *w, size_t n, double fan_in, uint64_t seed, int index) {
    /* the truncated normal's std is 0.8796 of the untruncated one's */
    init_trunc_normal(w, n, (float)(1.0 / 0.87962566103423978 / sqrt(fan_in)), seed, m->scope, index);
}

void module_init_dense(const Module *m, float *w, size_t out, size_t in, const char *scheme, double init_std,
                       bool output, int n_layer, uint64_t seed, int index) {
    const InitScheme s = (InitScheme)keys_choice_index(INIT_SCHEMES, scheme);
    if (s == INIT_PYTORCH) module_init_uniform(m, w, out * in, (float)(1.0 / sqrt((double)in)), seed, index);
    else if (output && s != INIT_SEQLAB)
        module_init_normal(m, w, out * in, (float)(0.02 / sqrt(2.0 * (n_layer > 0 ? n_layer : 1))), seed, index);
    else if (s == INIT_FLAX) module_init_lecun(m, w, out * in, (double)in, seed, index);
    else module_init_normal(m, w, out * in, s == INIT_GPT2 ? 0.02f : (float)init_std, seed, index);
}

void module_init_bias(const Module *m, float *b, size_t out, size_t in, const char *scheme, uint64_t seed, int index) {
    if (keys_choice_index(INIT_SCHEMES, scheme) == INIT_PYTORCH)
        module_init_uniform(m, b, out, (float)(1.0 / sqrt((double)in)), seed, index);
    else
        memset(b, 0, out * sizeof *b);
}

void init_uniform(float *w, size_t n, float bound, uint64_t seed, uint64_t scope, int index) {
    Rng r = rng_make(seed, rng_stream(RNG_INIT, scope, (uint64_t)index));
    for (size_t i = 0; i < n; i++) w[i] = bound * (2.0f * rng_uniform(&r) - 1.0f);
}

void module_init_uniform(const Module *m, float *w, size_t n, float bound, uint64_t seed, int index) {
    init_uniform(w, n, bound, seed, m->scope, index);
}

void module_init_normal(const Module *m, float *w, size_t n, float std, uint64_t seed, int index) {
    init_normal(w, n, std, seed, m->scope, index);
}

void ctx_stat(const Ctx *c, const char *name, double value) {
    Stats *s = c->stats;
    if (!s) return;
    char full[sizeof s->name[0]];
    snprintf(full, sizeof full, "%s.%s", c->path ? c->path : "", name);
    int i = 0;
    while (i < s->n && strcmp(s->name[i], full) != 0) i++;
    if (i == s->n) {
        if (s->n == STATS_MAX) return; /* full: later names are not recorded */
        snprintf(s->name[s->n++], sizeof s->name[0], "%s", full);
    }
    s->sum[i] += value;
    s->count[i]++;
}
