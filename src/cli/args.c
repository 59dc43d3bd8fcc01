/* args.c — command-line parsing shared by the subcommands: every config key
 * is a `--key value` option (getopt_long), next to each subcommand's own. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { KEY_BASE = 1000, EXTRA_BASE = 3000 };

/* Builds the option table: config keys first, then the subcommand's extras. */
static struct option *option_table(const char *const *extra_names, const int *extra_has_arg, Error *err) {
    int n_extra = 0;
    while (extra_names && extra_names[n_extra]) n_extra++;
    struct option *opts = xcalloc((size_t)(config_key_count + n_extra + 1), sizeof *opts, err);
    if (!opts) return NULL;
    for (int i = 0; i < config_key_count; i++)
        opts[i] = (struct option){config_keys[i].name, required_argument, NULL, KEY_BASE + i};
    for (int i = 0; i < n_extra; i++)
        opts[config_key_count + i] =
            (struct option){extra_names[i], extra_has_arg[i] ? required_argument : no_argument, NULL, EXTRA_BASE + i};
    return opts;
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

int cli_parse(int argc, char **argv, const char *const *extra_names, const int *extra_has_arg, ExtraHandler on_extra,
              void *ctx, Overrides *ov, const char **positional, int *n_positional, int max_positional, Error *err) {
    struct option *opts = option_table(extra_names, extra_has_arg, err);
    if (!opts) return -1;
    ov->count = 0;
    *n_positional = 0;
    optind = 1;
    opterr = 0;
    int rc = 0, c;
    while (!rc && (c = getopt_long(argc, argv, "-", opts, NULL)) != -1) {
        if (c == 1) { /* a positional argument, in order */
            if (*n_positional >= max_positional) rc = err_set(err, "unexpected argument '%s'", optarg);
            else positional[(*n_positional)++] = optarg;
        } else if (c >= EXTRA_BASE) {
            rc = on_extra(ctx, opts[config_key_count + c - EXTRA_BASE].name, optarg, err);
        } else if (c >= KEY_BASE) {
            if (ov->count == (int)(sizeof ov->items / sizeof ov->items[0])) rc = err_set(err, "too many options");
            else ov->items[ov->count++] = (Override){config_keys[c - KEY_BASE].name, optarg};
        } else if (c == ':' || (c == '?' && optopt)) {
            rc = err_set(err, "option '%s' needs a value", argv[optind - 1]);
        } else {
            rc = unknown_option(argv[optind - 1], err);
        }
    }
    free(opts);
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
