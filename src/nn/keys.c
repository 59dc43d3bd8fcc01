/* keys.c — see keys.h. */
#include "keys.h"

#include <math.h>
#include <string.h>
#include <strings.h>

/* The entry "<section>.<key>" of the first section that has it. */
static const ConfigEntry *find_entry(const ModuleSpec *spec, const char *key) {
    for (int s = 0; s < 2; s++) {
        if (!spec->section[s][0]) continue;
        char full[256];
        snprintf(full, sizeof full, "%s.%s", spec->section[s], key);
        const ConfigEntry *e = config_entry(spec->cfg, full);
        if (e) return e;
    }
    return NULL;
}

const char *keys_entry(const ModuleSpec *spec, const char *key, const char **where) {
    const ConfigEntry *e = find_entry(spec, key);
    if (e && where) *where = e->where;
    return e ? e->value : NULL;
}

/* The flat config key `name` as text (its current value). */
static int flat_value(const Config *c, const char *name, char *buf, size_t n) {
    const ConfigKey *k = config_find_key(name);
    if (!k) return -1;
    config_format_value(c, k, buf, n);
    return 0;
}

static int check_range(const ModuleKey *k, const void *module, const char *label, Error *err) {
    if (k->type != KEY_INT && k->type != KEY_LONG && k->type != KEY_FLOAT) return 0;
    if (k->lo > k->hi) return 0;
    const char *field = (const char *)module + k->offset;
    double v = k->type == KEY_INT ? *(const int *)field : k->type == KEY_LONG ? (double)*(const long *)field
                                                                              : *(const double *)field;
    if (v >= k->lo && v <= k->hi) return 0;
    return err_set(err, "%s must be in [%g, %g], got %g", label, k->lo, k->hi, v);
}

/* The value the parent's "key=value;..." list gives `name`, into buf; -1 when none. */
static int parent_default(const ModuleSpec *spec, const char *name, char *buf, size_t n) {
    const size_t len = strlen(name);
    for (const char *p = spec->defaults; p && *p; p = strchr(p, ';'), p = p ? p + 1 : NULL)
        if (!strncmp(p, name, len) && p[len] == '=') {
            snprintf(buf, n, "%.*s", (int)strcspn(p + len + 1, ";"), p + len + 1);
            return 0;
        }
    return -1;
}

static int read_one(const ModuleKey *k, void *module, const ModuleSpec *spec, Error *err) {
    char label[512], flat[CFG_PATH];
    const ConfigEntry *e = find_entry(spec, k->name);
    const char *text;
    if (e) {
        text = e->value;
        snprintf(label, sizeof label, "key '%s' (%s)", e->key, e->where[0] ? e->where : "config");
    } else if (spec->flat && k->flat && !flat_value(spec->cfg, k->flat, flat, sizeof flat)) {
        text = flat;
        snprintf(label, sizeof label, "key '%s'", k->flat);
    } else if (!parent_default(spec, k->name, flat, sizeof flat)) {
        text = flat;
        snprintf(label, sizeof label, "key '%s' of %s (set by its parent)", k->name, spec->path);
    } else {
        text = k->fallback;
        snprintf(label, sizeof label, "the default of key '%s' of %s '%s'", k->name, spec->kind, spec->name);
    }
    if (config_parse_value(k->type, k->choices, k->size, (char *)module + k->offset, text, label, err)) return -1;
    return check_range(k, module, label, err);
}

int keys_read(const ModuleKey *keys, void *module, const ModuleSpec *spec, Error *err) {
    for (const ModuleKey *k = keys; k && k->name; k++)
        if (read_one(k, module, spec, err)) return -1;
    return 0;
}

static const char *closest(const ModuleKey *keys, const char *name) {
    const char *names[128];
    size_t n = 0;
    for (const ModuleKey *k = keys; k && k->name && n < 128; k++) names[n++] = k->name;
    return config_closest(name, names, n);
}

static bool declared(const ModuleKey *keys, const char *const *children, const char *rest) {
    if (!strcmp(rest, "name")) return true;
    for (const ModuleKey *k = keys; k && k->name; k++) /* a dotted key ("filter.name") included */
        if (!strcmp(k->name, rest)) return true;
    size_t head = strcspn(rest, ".");
    for (const char *const *c = children; c && *c; c++) /* the child checks its own keys; "filter.0" reads "filter" */
        if (strcspn(*c, ".") == head && !strncmp(*c, rest, head)) return true;
    return false;
}

int keys_check_entries(const ModuleKey *keys, const char *const *children, const ModuleSpec *spec,
                       const char *module_name, Error *err) {
    for (int s = 0; s < 2; s++) {
        size_t n = strlen(spec->section[s]);
        if (!n) continue;
        for (int i = 0; i < spec->cfg->n_entries; i++) {
            const ConfigEntry *e = &spec->cfg->entries[i];
            if (strncmp(e->key, spec->section[s], n) != 0 || e->key[n] != '.') continue;
            const char *rest = e->key + n + 1;
            if (declared(keys, children, rest)) continue;
            const char *close = closest(keys, rest);
            if (close)
                return err_set(err, "unknown key '%s' (%s) for %s '%s'; did you mean '%s.%s'?", e->key, e->where,
                               spec->kind, module_name, spec->section[s], close);
            return err_set(err, "unknown key '%s' (%s): %s '%s' has no key '%s' (seqlab train --help lists them)",
                           e->key, e->where, spec->kind, module_name, rest);
        }
    }
    return 0;
}

void keys_print_help(FILE *f, const char *module_name, const char *kind, const ModuleKey *keys) {
    fprintf(f, "  %s '%s':\n", kind, module_name);
    if (!keys || !keys->name) {
        fprintf(f, "    (no keys)\n");
        return;
    }
    for (const ModuleKey *k = keys; k->name; k++) {
        char flat[64] = "";
        if (k->flat) snprintf(flat, sizeof flat, " (flat: %s)", k->flat);
        fprintf(f, "    %-16s %-22s %-10s %s%s\n", k->name, config_type_name(k->type, k->choices), k->fallback[0] ? k->fallback : "\"\"",
                k->help, flat);
    }
}

int keys_choice_index(const char *choices, const char *value) {
    const size_t n = strlen(value);
    int index = 0;
    for (const char *p = choices; p; p = strchr(p, '|'), p = p ? p + 1 : NULL, index++)
        if (!strncmp(p, value, n) && (p[n] == '|' || p[n] == 0)) return index;
    return -1;
}
