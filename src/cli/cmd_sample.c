/* cmd_sample.c — `seqlab sample --run DIR --prompt TEXT --tokens N`: text
 * generation one token at a time through the modules' step forms. When the
 * context reaches max_len, generation continues from the last max_len/2
 * tokens (the positions of a learned table run out). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct {
    const char *run, *prompt;
    long tokens, seed, top_k;
    double temperature;
    bool help;
} SampleArgs;

static int parse_number(const char *name, const char *value, double *out, Error *err) {
    char *end;
    *out = strtod(value, &end);
    if (!*value || *end) return err_set(err, "option '--%s' expects a number, got '%s'", name, value);
    return 0;
}

static int on_extra(void *ctx, const char *name, const char *value, Error *err) {
    SampleArgs *a = ctx;
    double x;
    if (strcmp(name, "help") == 0) a->help = true;
    else if (strcmp(name, "run") == 0) a->run = value;
    else if (strcmp(name, "prompt") == 0) a->prompt = value;
    else if (parse_number(name, value, &x, err)) return -1;
    else if (strcmp(name, "temperature") == 0) a->temperature = x;
    else if (strcmp(name, "tokens") == 0) a->tokens = (long)x;
    else if (strcmp(name, "top_k") == 0) a->top_k = (long)x;
    else a->seed = (long)x;
    return 0;
}

/* Writes one token's text to stdout. */
static void emit(const Tokenizer *tok, int32_t id) {
    char buf[256];
    fwrite(buf, 1, tokenizer_decode_one(tok, id, buf, sizeof buf), stdout);
}

static int generate(const SampleArgs *a, LoadedRun *run, Error *err) {
    Model *m = &run->model;
    int32_t *prompt_ids = NULL, *history = NULL;
    size_t n_prompt = 0;
    Generator g = {0};
    int rc = tokenizer_encode(&run->tok, (const unsigned char *)a->prompt, strlen(a->prompt), false, &prompt_ids,
                              &n_prompt, NULL, "prompt", err);
    if (!rc && n_prompt == 0) rc = err_set(err, "the prompt is empty; give --prompt with at least one character");
    if (!rc) rc = generator_build(&g, m, (size_t)run->cfg.max_len, err);
    size_t total = n_prompt + (size_t)a->tokens;
    if (!rc && !(history = xmalloc(total * sizeof *history, err))) rc = -1;
    if (rc) goto done;
    memcpy(history, prompt_ids, n_prompt * sizeof *history);
    size_t window_start = n_prompt > g.max_T ? n_prompt - g.max_T / 2 : 0;
    rc = generator_prefill(&g, m, history + window_start, n_prompt - window_start, err);
    fwrite(a->prompt, 1, strlen(a->prompt), stdout);
    Rng rng = rng_make((uint64_t)a->seed, rng_stream(RNG_SAMPLE, 0, 0));
    for (size_t n = n_prompt; !rc && n < total; n++) {
        history[n] = generator_sample(&g, m, (float)a->temperature, (int)a->top_k, &rng);
        emit(&run->tok, history[n]);
        if (n - window_start == g.max_T) { /* no position left: keep the newest half */
            window_start = n + 1 - g.max_T / 2;
            rc = generator_prefill(&g, m, history + window_start, n + 1 - window_start, err);
        } else {
            rc = generator_step(&g, m, history[n], n - window_start, err);
        }
    }
    printf("\n");
done:
    generator_free(&g);
    free(prompt_ids);
    free(history);
    return rc;
}

int cmd_sample(int argc, char **argv) {
    static const char *const extra[] = {"run", "prompt", "tokens", "temperature", "top_k", "seed", "help", NULL};
    static const int extra_arg[] = {1, 1, 1, 1, 1, 1, 0};
    SampleArgs args = {.tokens = 200, .temperature = 1.0, .seed = 1};
    Overrides ov;
    const char *positional[1];
    int n_pos;
    Error err = {0};
    if (cli_parse(argc, argv, extra, extra_arg, on_extra, &args, &ov, positional, &n_pos, 0, &err))
        return cli_fail("sample", &err, EXIT_USAGE);
    if (args.help || !args.run || !args.prompt || args.tokens < 0) {
        fprintf(args.help ? stdout : stderr,
                "usage: seqlab sample --run DIR --prompt TEXT [--tokens N (200)] [--temperature T (1.0, 0 = "
                "greedy)]\n                     [--top_k K (0 = all)] [--seed S (1)]\n"
                "example: seqlab sample --run runs/shakespeare --prompt 'ROMEO:' --tokens 300 --top_k 40\n");
        return args.help ? 0 : EXIT_USAGE;
    }
    LoadedRun run;
    int rc = run_load(&run, args.run, &ov, false, &err);
    if (!rc) {
        rc = cli_setup_compute(&run.cfg, &err) || generate(&args, &run, &err);
    }
    run_free(&run);
    if (rc) return cli_fail("sample", &err, 1);
    return 0;
}
