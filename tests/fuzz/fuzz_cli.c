/* fuzz_cli.c — the command-line parser (cli_parse: --key value, --key=value,
 * sections, seed aliases, lists) and the overrides it applies to a config.
 * The input is the argument list, one argument per line. */
#include <string.h>

#include "../../src/cli/cli.h"
#include "fuzz.h"

static int on_extra(void *ctx, const char *name, const char *value, Error *err) {
    (void)ctx, (void)name, (void)value, (void)err;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const extra[] = {"resume", "check", "help", NULL};
    static const int extra_arg[] = {1, 0, 0};
    char *text = malloc(size + 1), *argv[65] = {"train"};
    memcpy(text, data, size);
    text[size] = 0;
    int argc = 1;
    for (char *p = text; argc < 64; argc++) {
        argv[argc] = p;
        char *nl = strchr(p, '\n');
        if (!nl) {
            argc++;
            break;
        }
        *nl = 0;
        p = nl + 1;
    }
    Overrides ov;
    const char *positional[1];
    int n_pos;
    Error err = {0};
    if (cli_parse(argc, argv, extra, extra_arg, on_extra, NULL, &ov, positional, &n_pos, 1, &err) == 0) {
        Config c;
        config_defaults(&c);
        if (cli_apply_overrides(&c, &ov, &err) == 0) config_finalize(&c, &err);
    }
    free(text);
    return 0;
}
