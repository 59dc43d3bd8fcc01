/* cmd_train.c — `seqlab train [CONFIG] [--key value ...]` and `--resume DIR`. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/threads.h"
#include "../data/corpus.h"
#include "../tasks/task.h"
#include "../nn/registry.h"
#include "../train/checkpoint.h"
#include "../train/dist.h"
#include "../train/trainer.h"
#include "cli.h"

typedef struct {
    const char *resume;
    bool help, check;
} TrainArgs;

static int on_extra(void *ctx, const char *name, const char *value, Error *err) {
    TrainArgs *a = ctx;
    (void)err;
    if (strcmp(name, "resume") == 0) a->resume = value;
    else if (strcmp(name, "check") == 0) a->check = true;
    else a->help = true;
    return 0;
}

static void train_help(void) {
    printf("usage: seqlab train [CONFIG.yaml] [--key value ...]\n"
           "       seqlab train --resume DIR [--key value ...]\n"
           "       seqlab train CONFIG.yaml --check    (check every key and build the model, read no data)\n\n"
           "Every key below can be set in the YAML file or as --key value (the flag wins).\n"
           "The resolved configuration is saved as <out>/config.yaml; --resume reads it back.\n"
           "example: seqlab train configs/shakespeare.yaml --max_step 200 --out runs/try\n\n");
    config_print_help(stdout);
    printf("\nModules read their keys from their section: YAML `mixer: {name: fmm, diag_size: 20}` or\n"
           "--mixer.diag_size 20; a key with a flat alias above also takes the flat key's value.\n"
           "Per position: `blocks: {3: {mixer: {...}}}`. A module's child reads the subsection under\n"
           "it (mixer.inner.kernel_size).\n");
    registry_print_help(stdout);
}

/* Default run directory: runs/<config file name without extension>. */
static void default_out(Config *c, const char *config_path) {
    if (c->out[0]) return;
    const char *base = config_path ? strrchr(config_path, '/') : NULL;
    base = base ? base + 1 : config_path ? config_path : "default";
    snprintf(c->out, sizeof c->out, "runs/%.*s", (int)strcspn(base, "."), base);
}

/* A seed trainer's profile, when the command line has no config file but
 * that trainer's flags. */
static const ConfigProfile *seed_profile(const char *config_path, const Overrides *ov) {
    if (config_path) return NULL;
    for (int i = 0; i < ov->count; i++) {
        const ConfigProfile *p = config_profile_of_flag(ov->items[i].key);
        if (p) return p;
    }
    for (int i = 0; i < ov->n_ignored; i++) {
        const ConfigProfile *p = config_profile_of_flag(ov->ignored[i]);
        if (p) return p;
    }
    return ov->ranks_flag ? config_profile_of_flag(ov->ranks_flag) : NULL;
}

static bool overridden(const Overrides *ov, const char *key) {
    for (int i = 0; i < ov->count; i++)
        if (!strcmp(ov->items[i].key, key)) return true;
    return false;
}

/* The config of a fresh run: file, seed profile, flags, checked (keys and
 * every module's keys) before any data is read. */
static int fresh_config(Config *c, const char *config_path, const Overrides *ov, Error *err) {
    config_defaults(c);
    if (config_path && config_load_yaml(c, config_path, err)) return -1;
    const ConfigProfile *profile = seed_profile(config_path, ov);
    if (profile) {
        if (dist_rank() == 0)
            fprintf(stderr, "seqlab train: a command line of %s's flags: its model and training defaults apply\n",
                    profile->name);
        if (config_apply_profile(c, profile, err)) return -1;
    }
    if (cli_apply_overrides(c, ov, err)) return -1;
    /* the Transformer-XL trainer drops the last layer's output with the model's dropout */
    if (profile && !overridden(ov, "out_dropout")) c->out_dropout = c->dropout;
    default_out(c, config_path);
    return config_finalize(c, err) || model_check(c, err) ? -1 : 0;
}

/* A fresh run: config, tokenizer type, model with initial weights. */
static int start_fresh(LoadedRun *run, const char *config_path, const Overrides *ov, Error *err) {
    Config *c = &run->cfg;
    if (fresh_config(c, config_path, ov, err)) return -1;
    char path[2048];
    Error ignored;
    if (ckpt_latest(c->out, path, sizeof path, &ignored) == 0)
        return err_set(err, "run directory '%s' already holds checkpoints; continue it with --resume %s or choose "
                            "another --out", c->out, c->out);
    if (c->init_from[0] && access(c->init_from, R_OK) != 0) /* before any data is read */
        return err_errno(err, "key 'init_from': cannot read '%s'", c->init_from);
    return corpus_tokenizer(c, &run->tok, err);
}

static void print_summary(const LoadedRun *run, const Task *task) {
    const Config *c = &run->cfg;
    const Corpus *cp = &task->corpus;
    if (task->recall)
        fprintf(stderr, "seqlab: assoc_recall | vocabulary %d, context %d tokens | train %zu, test %zu sequences\n",
                c->vocab_size, c->input_seq_len, task->ar_train.n, task->ar_test.n);
    else if (task->kind == OBJ_LM || task->kind == OBJ_MLM)
        fprintf(stderr, "seqlab: data %s | %s vocabulary %zu | train %zu, valid %zu, test %zu tokens\n",
                cp->path[SPLIT_TRAIN], tokenizer_type_name(run->tok.type), tokenizer_vocab(&run->tok),
                cp->split[SPLIT_TRAIN].n, cp->split[SPLIT_VALID].n, cp->split[SPLIT_TEST].n);
    else if (task->kind == OBJ_SLOTS)
        fprintf(stderr, "seqlab: wikihop of %s | %s vocabulary %zu | train %zu, valid %zu, test %zu questions in %zu, "
                "%zu, %zu windows | supports %s: %zu\n", c->train_file, tokenizer_type_name(run->tok.type),
                tokenizer_vocab(&run->tok), task->wh[SPLIT_TRAIN].n_questions, task->wh[SPLIT_VALID].n_questions,
                task->wh[SPLIT_TEST].n_questions, task->wh[SPLIT_TRAIN].n_windows, task->wh[SPLIT_VALID].n_windows,
                task->wh[SPLIT_TEST].n_windows, c->wikihop_drop_overflow ? "dropped" : "cut across windows",
                task->wh[SPLIT_TRAIN].dropped + task->wh[SPLIT_TRAIN].cut);
    else
        fprintf(stderr, "seqlab: %s of %s | %s vocabulary %zu | train %zu, valid %zu, test %zu examples\n", c->task,
                c->train_file, tokenizer_type_name(run->tok.type), tokenizer_vocab(&run->tok),
                task->ex[SPLIT_TRAIN].n, task->ex[SPLIT_VALID].n, task->ex[SPLIT_TEST].n);
    if (cp->unknown)
        fprintf(stderr, "seqlab: %zu held-out symbols never seen in train map to <unk>\n", cp->unknown);
    char ranks[64] = "";
    if (dist_size() > 1) snprintf(ranks, sizeof ranks, " x %d MPI ranks", dist_size());
    fprintf(stderr, "seqlab: arch %s (mixer %s, ffn %s, %s-LN) | %zu parameters | %d threads%s | run %s\n", c->arch,
            c->mixer, c->ffn, c->norm, run->model.params.total, threads_get(), ranks, c->out);
    if (run->model.trunk.n_uses != run->model.trunk.n_sublayers) {
        fprintf(stderr, "seqlab: sublayers (letter, shared index): ");
        trunk_describe(&run->model.trunk, stderr);
        fprintf(stderr, "\n");
    }
    if (run->state.step)
        fprintf(stderr, "seqlab: resuming at step %llu from %s\n", (unsigned long long)run->state.step,
                run->ckpt_path);
}

/* Saves what describes the run (config, vocabulary) into its directory. */
static int save_run_files(const LoadedRun *run, Error *err) {
    char path[2048];
    snprintf(path, sizeof path, "%s/config.yaml", run->cfg.out);
    if (config_save(&run->cfg, path, err)) return -1;
    vocab_path(run->cfg.out, path, sizeof path);
    return tokenizer_save(&run->tok, path, err);
}

/* The weights of another run (key init_from), and what was taken from it. */
static int init_from(LoadedRun *run, Error *err) {
    CkptInit r;
    if (ckpt_init_from(run->cfg.init_from, (uint64_t)run->cfg.init_from_step, &run->model, &r, err)) return -1;
    fprintf(stderr, "seqlab: init_from %s: %zu parameters loaded", run->cfg.init_from, r.loaded);
    if (r.tiled_names[0]) fprintf(stderr, ", reshaped: %s (max_len %d, vocabulary %zu)", r.tiled_names,
                                  run->cfg.max_len, run->model.V);
    fprintf(stderr, "\n");
    if (r.fresh) fprintf(stderr, "seqlab:   %zu newly initialised: %s\n", r.fresh, r.fresh_names);
    if (r.skipped) fprintf(stderr, "seqlab:   %zu in the checkpoint but not in this model: %s\n", r.skipped, r.skipped_names);
    return 0;
}

/* Under mpirun every rank must run the same resolved config (dist.h). */
static int check_ranks_agree(const Config *c, Error *err) {
    if (dist_size() == 1) return 0;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return err_errno(err, "cannot compare the ranks' configs");
    config_write_yaml(c, f);
    fclose(f);
    int rc = dist_check_same(text, "config", err);
    free(text);
    return rc;
}

/* ... and read the same data: the vocabulary each built (or loaded) and the
 * size of its training data. */
static int check_data_agree(const LoadedRun *run, const Task *task, Error *err) {
    if (dist_size() == 1) return 0;
    StrBuf b;
    sb_init(&b);
    sb_appendf(&b, "training steps per epoch: %zu\n", task_steps_per_epoch(task));
    tokenizer_json(&run->tok, &b);
    int rc = b.failed ? err_set(err, "out of memory comparing the ranks' data")
                      : dist_check_same(b.data, "training data (its size, then its vocabulary)", err);
    sb_free(&b);
    return rc;
}

/* Rank 0 writes the run's files; every rank reads the data and trains. */
static int train(LoadedRun *run, bool resume, Error *err) {
    Config *c = &run->cfg;
    Task task = {0};
    Metrics metrics = {0};
    const bool writer = dist_rank() == 0;
    int rc = -1;
    if (check_ranks_agree(c, err)) goto done;
    if (file_make_dirs(c->out, err)) goto done;
    if (writer && file_remove_orphans(c->out))
        fprintf(stderr, "seqlab train: removed the temporary files of a run killed while writing in %s\n", c->out);
    if (task_open(&task, c, &run->tok, !resume, err) || check_data_agree(run, &task, err)) goto done;
    if (!resume && c->epochs > 0) { /* before the optimizer and the schedule read max_step */
        const size_t per = task_steps_per_epoch(&task);
        if (!per) {
            err_set(err, "key 'epochs': the training data fills no batch of %d", c->batch_size);
            goto done;
        }
        c->max_step = (long)per * c->epochs;
        if (c->eval_interval == -1) c->eval_interval = (int)per; /* every epoch */
        if (writer) fprintf(stderr, "seqlab: %d epochs of %zu steps: max_step %ld\n", c->epochs, per, c->max_step);
    }
    if (!resume) {
        if (model_build(&run->model, c, task_vocab(c, &run->tok), err)) goto done;
        model_init(&run->model, (uint64_t)c->seed);
        if (c->init_from[0] && init_from(run, err)) goto done;
        if (optim_build(&run->optim, c, &run->model.params, err)) goto done;
    } else if (writer && metrics_truncate_after(c->out, run->state.step, err)) {
        goto done;
    }
    if (writer && (save_run_files(run, err) || metrics_open(&metrics, c->out, stderr, tokenizer_per_char(&run->tok), err)))
        goto done;
    if (writer) print_summary(run, &task);
    Trainer t = {.dir = c->out, .model = &run->model, .task = &task, .metrics = &metrics, .optim = &run->optim,
                 .state = run->state};
    rc = trainer_run(&t, err);
    if (!rc && t.interrupted) {
        if (writer)
            fprintf(stderr, "seqlab train: %s at step %llu: checkpoint saved in %s; continue with --resume %s\n",
                    strsignal(t.interrupted), (unsigned long long)t.state.step, c->out, c->out);
        rc = EXIT_SIGNAL + t.interrupted;
    }
done:
    metrics_close(&metrics);
    task_free(&task);
    return rc;
}

/* The first SIGINT or SIGTERM asks the trainer to stop after the running
 * step and save it (SA_RESETHAND: a second one ends the process at once).
 * SIGXFSZ is ignored so that a file-size limit reaches the writes as an
 * error (EFBIG) with a message, like a full disk, instead of killing. */
static void on_stop_signal(int signo) { trainer_request_stop(signo); }

static void install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESETHAND | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGXFSZ, SIG_IGN);
}

int cmd_train(int argc, char **argv) {
    static const char *const extra[] = {"resume", "check", "help", NULL};
    static const int extra_arg[] = {1, 0, 0};
    TrainArgs args = {0};
    Overrides ov;
    const char *positional[1];
    int n_pos;
    Error err = {0};
    if (cli_parse(argc, argv, extra, extra_arg, on_extra, &args, &ov, positional, &n_pos, 1, &err))
        return cli_fail("train", &err, EXIT_USAGE);
    if (args.help) {
        train_help();
        return 0;
    }
    if (dist_rank() == 0) cli_report_ignored("train", &ov);
    if (ov.ranks_flag && dist_size() == 1)
        fprintf(stderr, "seqlab train: --%s: this is one process; seqlab trains on every MPI rank it is started with: "
                        "mpirun -np N seqlab train ... (docs/distributed.md)\n", ov.ranks_flag);
    if (args.resume && n_pos) {
        fprintf(stderr, "seqlab train: --resume takes its config from %s/config.yaml; give no CONFIG file\n",
                args.resume);
        return EXIT_USAGE;
    }
    if (args.check) { /* the config alone: a typo or a wrong value fails here, before hours of data reading */
        Config c;
        if (args.resume || fresh_config(&c, n_pos ? positional[0] : NULL, &ov, &err)) {
            if (args.resume) err_set(&err, "--check checks a config file, not a run (--resume)");
            return cli_fail("train", &err, 1);
        }
        printf("%s: config and model keys OK (task %s, arch %s, mixer %s)\n", n_pos ? positional[0] : "flags",
               c.task, c.arch, c.mixer);
        return 0;
    }
    LoadedRun run;
    memset(&run, 0, sizeof run);
    int rc = args.resume ? run_load(&run, args.resume, &ov, true, &err)
                         : start_fresh(&run, n_pos ? positional[0] : NULL, &ov, &err);
    install_signals();
    if (!rc) rc = cli_setup_compute(&run.cfg, &err) ? -1 : train(&run, args.resume != NULL, &err);
    run_free(&run);
    if (rc > EXIT_SIGNAL) return rc;
    if (rc) return cli_fail("train", &err, 1);
    return 0;
}
