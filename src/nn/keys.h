/* keys.h — a module's own configuration keys.
 *
 * Each module file declares a table of its keys (name, type, default, range,
 * help), each one a field of the module's struct. The keys are read from the
 * module's section of the config: YAML `mixer: {name: fmm, diag_size: 20}`
 * or `--mixer.diag_size 20` (core/config.h stores them as entries
 * "mixer.diag_size"); a per-position section (`blocks: {3: {mixer: {...}}}`,
 * entries "blocks.3.mixer.*") overrides the shared one for that position; a
 * child module reads the subsection under its parent's ("mixer.filter.*").
 * The flat keys of the top-level config (n_head, d_inner, dropout, ...) feed
 * the keys of the top-level sections that name them as their `flat` alias,
 * so every config and seed command line of before keeps working.
 *
 * Resolution of key K of a module in sections S1 (per position), S2:
 * the entry S1.K, else S2.K, else the flat key (top-level sections only),
 * else a default its parent set (ModuleSpec.defaults), else the table's. An entry under the section that the module does
 * not declare is an error naming the file and line and the closest key.
 *
 *     typedef struct { Module base; int n_head; double dropatt; } MyAttn;
 *     static const ModuleKey my_keys[] = {
 *         MODULE_KEY(MyAttn, n_head, KEY_INT, "4", NULL, "n_head", 1, 4096, "attention heads"),
 *         MODULE_KEY(MyAttn, dropatt, KEY_FLOAT, "0", NULL, "dropatt", 0, 0.999, "dropout on the weights"),
 *         {0}};
 */
#ifndef SEQLAB_KEYS_H
#define SEQLAB_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "../core/config.h"
#include "../core/error.h"

typedef struct {
    const char *name;
    KeyType type;
    size_t offset, size;  /* the field in the module's struct */
    const char *fallback; /* default, parsed like any value */
    const char *choices;  /* KEY_CHOICE: "a|b|c" */
    const char *flat;     /* the flat config key that sets it in top-level sections, or NULL */
    double lo, hi;        /* KEY_INT / KEY_LONG / KEY_FLOAT: the allowed range [lo, hi] */
    const char *help;
} ModuleKey;

#define MODULE_KEY(STRUCT, FIELD, TYPE, FALLBACK, CHOICES, FLAT, LO, HI, HELP)                               \
    {#FIELD, TYPE, offsetof(STRUCT, FIELD), sizeof(((STRUCT *)0)->FIELD), FALLBACK, CHOICES, FLAT, LO, HI, HELP}

/* What building one module needs. Sections are config entry prefixes
 * without the trailing dot; section[0] wins over section[1]. */
typedef struct {
    const Config *cfg;          /* borrowed */
    const char *kind;           /* "mixer" | "ffn" | ...: which registry entries fit */
    char name[CFG_NAME];        /* the module to build */
    char section[2][128];       /* where its keys live: per-position first ("" when none) */
    bool flat;                  /* read the flat keys named by the table's `flat` */
    char path[96];              /* the instance path: parameter names and RNG scope */
    const char *defaults;       /* "key=value;...": defaults a parent sets for its child (the config
                                   still overrides them), or NULL */
    size_t C_in, C_out;
} ModuleSpec;

/* Fills the fields of `module` that `keys` declares: defaults, flat keys,
 * section entries, in that order, each checked (type, choices, range). */
int keys_read(const ModuleKey *keys, void *module, const ModuleSpec *spec, Error *err);
/* Every entry of the spec's sections must be a key of the table, `name`, or
 * belong to a child subsection in `children` (NULL-terminated names). */
int keys_check_entries(const ModuleKey *keys, const char *const *children, const ModuleSpec *spec,
                       const char *module_name, Error *err);
/* The text of an entry "<section>.<key>" (the later section loses), or NULL;
 * *where gets its origin ("file.yaml:7", "--mixer.k"). */
const char *keys_entry(const ModuleSpec *spec, const char *key, const char **where);
/* The position of `value` in the '|'-separated `choices` (a KEY_CHOICE key,
 * already checked), so a module can switch on an enum in the same order. */
int keys_choice_index(const char *choices, const char *value);
/* Prints the table: name, type, default, flat alias, help. */
void keys_print_help(FILE *f, const char *module_name, const char *kind, const ModuleKey *keys);

#endif
