/* cmd_data.c — `seqlab data prepare --dataset NAME --src PATH --out DIR`:
 * tokenises a dataset's raw files once into token files (corpus.h,
 * "prepared datasets") that training then memory-maps; `seqlab data listops
 * --out DIR`: generates the Long Range Arena's ListOps (tasks/listops.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../data/corpus.h"
#include "../tasks/listops.h"
#include "cli.h"

typedef struct {
    const char *src;
    long counts[3]; /* listops: train, valid, test trees (-1: the release's) */
    bool help;
} DataArgs;

static int on_extra(void *ctx, const char *name, const char *value, Error *err) {
    DataArgs *a = ctx;
    static const char *const counts[3] = {"n_train", "n_valid", "n_test"};
    for (int k = 0; k < 3; k++)
        if (!strcmp(name, counts[k])) {
            char *end;
            a->counts[k] = strtol(value, &end, 10);
            if (!*value || *end || a->counts[k] < 0)
                return err_set(err, "option '--%s' expects a count >= 0, got '%s'", name, value);
            return 0;
        }
    if (strcmp(name, "src") == 0) a->src = value;
    else a->help = true;
    return 0;
}

static void data_help(FILE *f) {
    fprintf(f, "usage: seqlab data prepare --dataset NAME [--src PATH] --out DIR [--tokenizer T]\n"
               "                           [--valid_fraction F --test_fraction F] [--train_file F ...]\n\n"
               "Tokenises a dataset once: DIR gets train.bin, valid.bin, test.bin (token files), vocab.json and\n"
               "dataset.json; `seqlab train --dataset NAME --data DIR` then maps them. NAME is one of\n"
               "text shakespeare enwik8 text8 wikitext-103 wikitext-2 (docs/data.md); PATH is the dataset's folder\n"
               "or raw file (default: looked up under $SEQLAB_DATA, ./data, ../shared/data).\n"
               "example: seqlab data prepare --dataset wikitext-103 --src data/wikitext-103 --out data/wt103-prepared\n\n"
               "usage: seqlab data listops --out DIR [--data_seed S] [--n_train N (96000)] [--n_valid N (2000)]\n"
               "                           [--n_test N (2000)]\n\n"
               "Generates the Long Range Arena's ListOps as its release lays it out: DIR/basic_{train,val,test}.tsv,\n"
               "distinct trees of 501-1999 tokens, depth 10, up to 10 arguments (docs/data.md).\n"
               "example: seqlab data listops --out data/listops --data_seed 1\n");
}

static int listops(const Config *c, const DataArgs *a, Error *err) {
    if (!c->out[0]) return err_set(err, "give the folder to write with --out DIR");
    ListopsSpec s = listops_defaults();
    size_t *counts[3] = {&s.n_train, &s.n_valid, &s.n_test};
    for (int k = 0; k < 3; k++)
        if (a->counts[k] >= 0) *counts[k] = (size_t)a->counts[k];
    s.seed = (uint64_t)c->data_seed;
    if (listops_write(&s, c->out, err)) return -1;
    printf("seqlab data: listops -> %s | train %zu, valid %zu, test %zu trees (seed %llu)\n", c->out, s.n_train,
           s.n_valid, s.n_test, (unsigned long long)s.seed);
    return 0;
}

static int prepare(Config *c, const DataArgs *a, Error *err) {
    if (a->src) snprintf(c->data, sizeof c->data, "%s", a->src);
    if (!c->out[0]) return err_set(err, "give the folder to write with --out DIR");
    Tokenizer tok = {0};
    Corpus cp;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = corpus_tokenizer(c, &tok, err) || corpus_load(&cp, c, &tok, true, err);
    if (!rc) rc = prepared_save(&cp, c, &tok, c->out, err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!rc) {
        printf("seqlab data: %s -> %s | %s vocabulary %zu | train %zu, valid %zu, test %zu tokens", c->dataset, c->out,
               tokenizer_type_name(tok.type), tokenizer_vocab(&tok), cp.split[SPLIT_TRAIN].n,
               cp.split[SPLIT_VALID].n, cp.split[SPLIT_TEST].n);
        if (cp.unknown) printf(" | %zu held-out symbols mapped to <unk>", cp.unknown);
        printf(" | %.1f s\n", (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    }
    corpus_free(&cp);
    tokenizer_free(&tok);
    return rc;
}

int cmd_data(int argc, char **argv) {
    static const char *const extra[] = {"src", "n_train", "n_valid", "n_test", "help", NULL};
    static const int extra_arg[] = {1, 1, 1, 1, 0};
    DataArgs args = {.counts = {-1, -1, -1}};
    Overrides ov;
    const char *positional[1];
    int n_pos;
    Error err = {0};
    if (cli_parse(argc, argv, extra, extra_arg, on_extra, &args, &ov, positional, &n_pos, 1, &err))
        return cli_fail("data", &err, EXIT_USAGE);
    const bool generate = n_pos == 1 && !strcmp(positional[0], "listops");
    if (args.help || n_pos != 1 || (strcmp(positional[0], "prepare") != 0 && !generate)) {
        data_help(args.help ? stdout : stderr);
        return args.help ? 0 : EXIT_USAGE;
    }
    Config c;
    config_defaults(&c);
    if (cli_apply_overrides(&c, &ov, &err) || config_finalize(&c, &err) ||
        (generate ? listops(&c, &args, &err) : prepare(&c, &args, &err)))
        return cli_fail("data", &err, 1);
    return 0;
}
