/* cli.h — the seqlab command: subcommands and what they share.
 * Only src/cli prints messages and chooses exit codes; everything below it
 * returns errors (core/error.h). */
#ifndef SEQLAB_CLI_H
#define SEQLAB_CLI_H

#include <stdio.h>

#include "../core/config.h"
#include "../data/tokenizer.h"
#include "../model/model.h"
#include "../train/checkpoint.h"

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_plot(int argc, char **argv);

/* Exit codes: 0 ok, 1 runtime failure (data, checkpoint, ...), 2 usage. */
enum { EXIT_USAGE = 2 };
enum { EXIT_SIGNAL = 128 }; /* a run stopped by signal s (after saving) exits with 128 + s, as a shell reports it */

/* Prints "seqlab <command>: <message>" on stderr and returns code. */
int cli_fail(const char *command, const Error *err, int code);

/* A config key (or seed alias) given on the command line, applied after the
 * YAML file. */
typedef struct {
    const char *key, *value; /* borrowed from argv, or value points into Overrides.joined */
} Override;

typedef struct {
    Override items[256];
    int count;
    const char *ignored[32]; /* seed flags accepted and ignored (--cuda ...), for the user to see */
    int n_ignored;
    const char *ranks_flag;  /* a seed's flag for several GPUs (--multi_gpu), or NULL: seqlab uses every MPI rank */
    char joined[4096];       /* list values given as several words: --kernels elu elu_flip */
    size_t joined_used;
} Overrides;

/* Parses `--key value` pairs that name config keys or seed aliases
 * (config.h); a list key takes every word up to the next option. Other
 * options are given in `extra` (getopt_long style, ending with a zero
 * entry); their values are handed to on_extra. Positional arguments land in
 * positional[]. Returns -1 with a message (closest key suggested) on
 * anything unknown. */
typedef int (*ExtraHandler)(void *ctx, const char *name, const char *value, Error *err);
int cli_parse(int argc, char **argv, const char *const *extra_names, const int *extra_has_arg, ExtraHandler on_extra,
              void *ctx, Overrides *ov, const char **positional, int *n_positional, int max_positional, Error *err);
int cli_apply_overrides(Config *c, const Overrides *ov, Error *err);
/* Tells stderr which seed flags were ignored, if any. */
void cli_report_ignored(const char *command, const Overrides *ov);

/* Sets the thread count and the precision of the matrix products from the
 * config; -1 when the precision cannot run on this machine. */
int cli_setup_compute(const Config *c, Error *err);

/* Everything a finished or interrupted run directory holds, loaded for
 * eval, sample and resume: its config (plus overrides), vocabulary, and the
 * model with the newest checkpoint's weights. */
typedef struct {
    Config cfg;
    Tokenizer tok;
    Model model;
    Optimizer optim;   /* built and loaded with the optimizer state (with_optim), else zero */
    TrainState state;
    char ckpt_path[2048];
} LoadedRun;

int run_load(LoadedRun *r, const char *dir, const Overrides *ov, bool with_optim, Error *err);
void run_free(LoadedRun *r);
/* Saves / loads the vocabulary as <dir>/vocab.json. */
int vocab_path(const char *dir, char *out, size_t n);

#endif
