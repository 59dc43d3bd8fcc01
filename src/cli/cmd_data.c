/* cmd_data.c — `seqlab data prepare --dataset NAME --src PATH --out DIR`:
 * tokenises a dataset's raw files once into token files (corpus.h,
 * "prepared datasets") that training then memory-maps; `seqlab data listops
 * --out DIR`: generates the Long Range Arena's ListOps (tasks/listops.h);
 * `seqlab data pathfinder --out DIR`: its Pathfinder / Path-X images
 * (tasks/pathfinder.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../data/corpus.h"
#include "../tasks/listops.h"
#include "../tasks/pathfinder.h"
#include "cli.h"

typedef struct {
    const char *src;
    long counts[3]; /* listops: train, valid, test trees (-1: the release's) */
    long size, contour_length, n; /* pathfinder (-1: the defaults) */
    bool help;
} DataArgs;

/* A whole number in value that is one of allowed (n of them; none: >= 1). */
static int parse_choice(const char *name, const char *value, const long *allowed, int n, long *out, Error *err) {
    char *end;
    *out = strtol(value, &end, 10);
    bool ok = *value && !*end;
    if (ok && n) {
        ok = false;
        for (int i = 0; i < n; i++) ok |= *out == allowed[i];
    } else if (ok) {
        ok = *out >= 1;
    }
    if (ok) return 0;
    if (!n) return err_set(err, "option '--%s' expects a count >= 1, got '%s'", name, value);
    return n == 2 ? err_set(err, "option '--%s' expects %ld or %ld, got '%s'", name, allowed[0], allowed[1], value)
                  : err_set(err, "option '--%s' expects %ld, %ld or %ld, got '%s'", name, allowed[0], allowed[1],
                            allowed[2], value);
}

static int on_extra(void *ctx, const char *name, const char *value, Error *err) {
    DataArgs *a = ctx;
    static const long sizes[] = {32, 128}, lengths[] = {6, 9, 14};
    if (!strcmp(name, "size")) return parse_choice(name, value, sizes, 2, &a->size, err);
    if (!strcmp(name, "contour_length")) return parse_choice(name, value, lengths, 3, &a->contour_length, err);
    if (!strcmp(name, "n")) return parse_choice(name, value, NULL, 0, &a->n, err);
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
               "example: seqlab data listops --out data/listops --data_seed 1\n\n"
               "usage: seqlab data pathfinder --out DIR [--size 32|128 (32)] [--contour_length 6|9|14 (14)]\n"
               "                              [--n N (200000)] [--data_seed S]\n\n"
               "Draws the Long Range Arena's Pathfinder (32) or Path-X (128) images as the release lays them out:\n"
               "DIR/curv_contour_length_14/imgs/<batch>/sample_<i>.png (curv_baseline for 6) and metadata/<batch>.npy\n"
               "(text lines \"imgs/<batch> sample_<i>.png <i> <label> ...\"), 1,000 images a batch, half of them\n"
               "positive; `--format pathfinder --data DIR/curv_contour_length_14` reads them (docs/data.md).\n"
               "example: seqlab data pathfinder --out data/pathfinder32 --n 20000 --data_seed 1\n");
}

static int pathfinder(const Config *c, const DataArgs *a, Error *err) {
    if (!c->out[0]) return err_set(err, "give the folder to write with --out DIR");
    PathfinderSpec s =
        pathfinder_defaults(a->size > 0 ? (int)a->size : 32, a->contour_length > 0 ? (int)a->contour_length : 14);
    if (a->n > 0) s.n_images = (size_t)a->n;
    s.seed = (uint64_t)c->data_seed;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (pathfinder_write(&s, c->out, err)) return -1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    char name[64];
    pathfinder_difficulty(s.contour_length, name, sizeof name);
    printf("seqlab data: pathfinder -> %s/%s | %zu images of %dx%d, half positive, target snakes of %d paddles, up to "
           "%d distractors of %d (seed %llu) | %.1f s\n",
           c->out, name, s.n_images, s.size, s.size, s.contour_length, s.n_distractors, s.distractor_length,
           (unsigned long long)s.seed, (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    return 0;
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
    static const char *const extra[] = {"src",  "n_train",        "n_valid", "n_test",
                                        "size", "contour_length", "n",       "help",   NULL};
    static const int extra_arg[] = {1, 1, 1, 1, 1, 1, 1, 0};
    DataArgs args = {.counts = {-1, -1, -1}, .size = -1, .contour_length = -1, .n = -1};
    Overrides ov;
    const char *positional[1];
    int n_pos;
    Error err = {0};
    if (cli_parse(argc, argv, extra, extra_arg, on_extra, &args, &ov, positional, &n_pos, 1, &err))
        return cli_fail("data", &err, EXIT_USAGE);
    const bool lo = n_pos == 1 && !strcmp(positional[0], "listops");
    const bool pf = n_pos == 1 && !strcmp(positional[0], "pathfinder");
    if (args.help || n_pos != 1 || (strcmp(positional[0], "prepare") != 0 && !lo && !pf)) {
        data_help(args.help ? stdout : stderr);
        return args.help ? 0 : EXIT_USAGE;
    }
    if (!pf && (args.size > 0 || args.contour_length > 0 || args.n > 0)) {
        err_set(&err, "--size, --contour_length and --n are options of 'seqlab data pathfinder'");
        return cli_fail("data", &err, EXIT_USAGE);
    }
    Config c;
    config_defaults(&c);
    if (cli_apply_overrides(&c, &ov, &err) || config_finalize(&c, &err) ||
        (lo ? listops(&c, &args, &err) : pf ? pathfinder(&c, &args, &err) : prepare(&c, &args, &err)))
        return cli_fail("data", &err, 1);
    return 0;
}
