/* params.c — see params.h. */
#include "params.h"

#include "arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const param_group_names[GROUP_COUNT] = {"linear", "embedding", "norm", "bias", "other"};

void params_init(ParamSet *ps) { memset(ps, 0, sizeof *ps); }

void params_free(ParamSet *ps) {
    free(ps->specs);
    free(ps->aliases);
    free(ps->values);
    free(ps->grads);
    memset(ps, 0, sizeof *ps);
}

void params_prefix(ParamSet *ps, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->prefix, sizeof ps->prefix, fmt, ap);
    va_end(ap);
}

static ParamSpec *declare(ParamSet *ps, const char *name, float **value_slot, float **grad_slot, ParamGroup group,
                          int ndim, va_list ap) {
    if (ps->count == ps->cap) {
        size_t cap = ps->cap ? 2 * ps->cap : 64;
        ParamSpec *s = realloc(ps->specs, cap * sizeof *s);
        if (!s) {
            ps->out_of_memory = 1;
            return NULL;
        }
        ps->specs = s;
        ps->cap = cap;
    }
    ParamSpec *s = &ps->specs[ps->count++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s%s", ps->prefix, name);
    s->ndim = ndim;
    s->numel = 1;
    for (int i = 0; i < ndim; i++) {
        s->shape[i] = va_arg(ap, size_t);
        s->numel *= s->shape[i];
    }
    s->group = group;
    s->value_slot = value_slot;
    s->grad_slot = grad_slot;
    s->offset = ps->total;
    ps->total += s->numel;
    return s;
}

int params_add(ParamSet *ps, const char *name, float **value_slot, float **grad_slot, ParamGroup group,
               int ndim, ...) {
    va_list ap;
    va_start(ap, ndim);
    ParamSpec *s = declare(ps, name, value_slot, grad_slot, group, ndim, ap);
    va_end(ap);
    return s ? 0 : -1;
}

int params_add_shared(ParamSet *ps, const char *name, float **value_slot, float **grad_slot, ParamGroup group,
                      int ndim, ...) {
    va_list ap;
    va_start(ap, ndim);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= va_arg(ap, size_t);
    va_end(ap);
    for (size_t k = 0; k < ps->count; k++) {
        if (strcmp(ps->specs[k].name, name) != 0) continue;
        ParamAlias *a = realloc(ps->aliases, (ps->n_aliases + 1) * sizeof *a);
        if (!a || ps->specs[k].numel != numel) {
            ps->out_of_memory = 1; /* a shape mismatch is a bug of the modules: reported as a failed declaration */
            if (a) ps->aliases = a;
            return -1;
        }
        ps->aliases = a;
        a[ps->n_aliases++] = (ParamAlias){k, value_slot, grad_slot};
        return 0;
    }
    char prefix[sizeof ps->prefix];
    memcpy(prefix, ps->prefix, sizeof prefix);
    ps->prefix[0] = 0;
    va_start(ap, ndim);
    ParamSpec *s = declare(ps, name, value_slot, grad_slot, group, ndim, ap);
    va_end(ap);
    memcpy(ps->prefix, prefix, sizeof prefix);
    return s ? 0 : -1;
}

int params_add_buffer(ParamSet *ps, const char *name, float **value_slot, int ndim, ...) {
    va_list ap;
    va_start(ap, ndim);
    ParamSpec *s = declare(ps, name, value_slot, NULL, GROUP_OTHER, ndim, ap);
    va_end(ap);
    if (s) s->buffer = true;
    return s ? 0 : -1;
}

int params_allocate(ParamSet *ps, Error *err) {
    if (ps->out_of_memory) return err_set(err, "out of memory declaring parameters");
    const double need = 2.0 * (double)ps->total * sizeof(float), have = (double)machine_memory_bytes();
    if (need > have)
        return err_set(err, "the model's %zu parameters need %.1f GiB for weights and gradients (the optimizer's state "
                       "adds as much again), more than this machine's %.1f GiB: make it smaller (keys d_model, d_inner, "
                       "arch or n_layer, the vocabulary, max_len with learned positions, moe.num_experts)", ps->total,
                       need / 1073741824.0, have / 1073741824.0);
    float **bufs[2] = {&ps->values, &ps->grads};
    for (int i = 0; i < 2; i++) {
        *bufs[i] = xcalloc(ps->total, sizeof(float), err);
        if (!*bufs[i]) return -1;
    }
    for (size_t i = 0; i < ps->count; i++) {
        ParamSpec *s = &ps->specs[i];
        if (s->value_slot) *s->value_slot = ps->values + s->offset;
        if (s->grad_slot) *s->grad_slot = ps->grads + s->offset;
    }
    for (size_t i = 0; i < ps->n_aliases; i++) {
        const ParamSpec *s = &ps->specs[ps->aliases[i].spec];
        if (ps->aliases[i].value_slot) *ps->aliases[i].value_slot = ps->values + s->offset;
        if (ps->aliases[i].grad_slot) *ps->aliases[i].grad_slot = ps->grads + s->offset;
    }
    return 0;
}

const ParamSpec *params_find(const ParamSet *ps, const char *name) {
    for (size_t i = 0; i < ps->count; i++)
        if (strcmp(ps->specs[i].name, name) == 0) return &ps->specs[i];
    return NULL;
}

void params_shape_str(const ParamSpec *s, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < s->ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? " x %zu" : "%zu", s->shape[i]);
}

void params_fix_last(ParamSet *ps) {
    if (ps->count) ps->specs[ps->count - 1].fixed = true;
}
