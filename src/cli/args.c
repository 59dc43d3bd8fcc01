/* args.c — command-line parsing shared by the subcommands: every config key
 * is a `--key value` option (getopt_long), next to each subcommand's own. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { KEY_BASE = 1000, ALIAS_BASE = 2000, EXTRA_BASE = 3000 };

/* Builds the option table: config keys, seed aliases, then the subcommand's extras. */
static struct option *option_table(const char *const *extra_names, const int *extra_has_arg, Error *err) {
    int n_extra = 0;
    while (extra_names && extra_names[n_extra]) n_extra++;
    const int n_fixed = config_key_count + config_alias_count;
    struct option *opts = xcalloc((size_t)(n_fixed + n_extra + 1), sizeof *opts, err);
    if (!opts) return NULL;
    for (int i = 0; i < config_key_count; i++)
        opts[i] = (struct option){config_keys[i].name, required_argument, NULL, KEY_BASE + i};
    for (int i = 0; i < config_alias_count; i++)
        opts[config_key_count + i] = (struct option){
            config_aliases[i].name, config_aliases[i].takes_value ? required_argument : no_argument, NULL,
            ALIAS_BASE + i};
    for (int i = 0; i < n_extra; i++)
        opts[n_fixed + i] =
            (struct option){extra_names[i], extra_has_arg[i] ? required_argument : no_argument, NULL, EXTRA_BASE + i};
    return opts;
}

static bool is_list_key(const char *name) {
    const ConfigKey *k = config_find_key(name);
    return k && k->type == KEY_LIST;
}

/* Appends one more word to a list override: "elu" + "elu_flip" -> "elu,elu_flip". */
static int extend_list(Overrides *ov, Override *o, const char *word, Error *err) {
    size_t a = strlen(o->value), b = strlen(word);
    if (ov->joined_used + a + b + 2 > sizeof ov->joined) return err_set(err, "option '--%s': list too long", o->key);
    char *dst = ov->joined + ov->joined_used;
    memcpy(dst, o->value, a);
    dst[a] = ',';
    memcpy(dst + a + 1, word, b + 1);
    ov->joined_used += a + b + 2;
    o->value = dst;
    return 0;
}

static int add_override(Overrides *ov, const char *key, const char *value, Error *err) {
    if (ov->count == (int)(sizeof ov->items / sizeof ov->items[0])) return err_set(err, "too many options");
    ov->items[ov->count++] = (Override){key, value};
    return 0;
}

static int add_alias(Overrides *ov, const ConfigAlias *a, const char *value, Error *err) {
    if (a->kind == ALIAS_KEY) return add_override(ov, a->name, value, err);
    if (a->kind == ALIAS_RANKS) {
        ov->ranks_flag = a->name;
        return 0;
    }
    if (ov->n_ignored < (int)(sizeof ov->ignored / sizeof ov->ignored[0])) ov->ignored[ov->n_ignored++] = a->name;
    return 0;
}

static int unknown_option(const char *arg, Error *err) {
    const char *name = arg;
    while (*name == '-') name++;
    char bare[128];
    snprintf(bare, sizeof bare, "%.*s", (int)strcspn(name, "="), name);
    const char *close = config_closest_key(bare);
    if (close) return err_set(err, "unknown option '%s'; did you mean '--%s'?", arg, close);
    return err_set(err, "unknown option '%s' (see --help)", arg);
}

/* Moves the section options (`--mixer.diag_size 20`, `--mixer.diag_size=20`)
 * into overrides and the rest of argv, in order, into rest (argc + 1
 * pointers) for getopt: section keys are checked by their module, not by
 * the option table. Returns the count left in rest. */
static int take_section_options(int argc, char **argv, char **rest, Overrides *ov, Error *err) {
    int kept = 1;
    rest[0] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        size_t name_len = a[0] == '-' && a[1] == '-' ? strcspn(a + 2, "=") : 0;
        bool dotted = name_len && memchr(a + 2, '.', name_len) != NULL;
        if (!dotted) {
            rest[kept++] = argv[i];
            continue;
        }
        const char *value = a[2 + name_len] == '=' ? a + 3 + name_len : i + 1 < argc ? argv[++i] : NULL;
        if (!value) return err_set(err, "option '%s' needs a value", a), -1;
        if (ov->joined_used + name_len + 1 > sizeof ov->joined) return err_set(err, "too many section options"), -1;
        char *key = ov->joined + ov->joined_used;
        memcpy(key, a + 2, name_len);
        key[name_len] = 0;
        ov->joined_used += name_len + 1;
        if (add_override(ov, key, value, err)) return -1;
    }
    return kept;
}

int cli_parse(int argc, char **argv, const char *const *extra_names, const int *extra_has_arg, ExtraHandler on_extra,
              void *ctx, Overrides *ov, const char **positional, int *n_positional, int max_positional, Error *err) {
    memset(ov, 0, sizeof *ov);
    char **rest = xcalloc((size_t)argc + 1, sizeof *rest, err);
    if (!rest) return -1;
    argc = take_section_options(argc, argv, rest, ov, err);
    struct option *opts = argc < 0 ? NULL : option_table(extra_names, extra_has_arg, err);
    if (!opts) {
        free(rest);
        return -1;
    }
    argv = rest;
    *n_positional = 0;
    optind = 1;
    opterr = 0;
    int rc = 0, c;
    Override *open_list = NULL; /* the list option whose words are still coming */
    while (!rc && (c = getopt_long(argc, argv, "-", opts, NULL)) != -1) {
        if (c == 1 && open_list) { /* one more word of a list option */
            rc = extend_list(ov, open_list, optarg, err);
            continue;
        }
        open_list = NULL;
        if (c == 1) { /* a positional argument, in order */
            if (*n_positional >= max_positional) rc = err_set(err, "unexpected argument '%s'", optarg);
            else positional[(*n_positional)++] = optarg;
        } else if (c >= EXTRA_BASE) {
            rc = on_extra(ctx, opts[config_key_count + config_alias_count + c - EXTRA_BASE].name, optarg, err);
        } else if (c >= ALIAS_BASE) {
            rc = add_alias(ov, &config_aliases[c - ALIAS_BASE], optarg, err);
        } else if (c >= KEY_BASE) {
            rc = add_override(ov, config_keys[c - KEY_BASE].name, optarg, err);
            if (!rc && is_list_key(config_keys[c - KEY_BASE].name)) open_list = &ov->items[ov->count - 1];
        } else if (c == ':' || (c == '?' && optopt)) {
            rc = err_set(err, "option '%s' needs a value", argv[optind - 1]);
        } else {
            rc = unknown_option(argv[optind - 1], err);
        }
    }
    free(opts);
    free(rest);
    return rc;
}

int cli_apply_overrides(Config *c, const Overrides *ov, Error *err) {
    for (int i = 0; i < ov->count; i++) {
        char where[160];
        snprintf(where, sizeof where, "--%s", ov->items[i].key);
        if (config_set(c, ov->items[i].key, ov->items[i].value, where, err)) return -1;
    }
    return 0;
}

void cli_report_ignored(const char *command, const Overrides *ov) {
    if (!ov->n_ignored) return;
    fprintf(stderr, "seqlab %s: ignoring options of the seed trainers that do not apply here:", command);
    for (int i = 0; i < ov->n_ignored; i++) fprintf(stderr, " --%s", ov->ignored[i]);
    fprintf(stderr, "\n");
}

int cli_fail(const char *command, const Error *err, int code) {
    fprintf(stderr, "seqlab %s: %s\n", command, err->msg);
    return code;
}
