/* cmd_eval.c — `seqlab eval --run DIR [--split valid|test] [--save_batch FILE]`:
 * the loss and bpc (or perplexity) of a run's newest checkpoint on one split,
 * printed and appended to DIR/metrics.jsonl; --save_batch also writes the
 * first evaluation batch (masked LM: ids after masking, targets) with the
 * model's loss on it, for scoring by another implementation; --predictions
 * writes a labelled task's predictions of the split in GLUE's submission
 * format (the split may lack labels, as GLUE's test files do). */
#include <string.h>

#include "../data/corpus.h"
#include "../tasks/task.h"
#include "../train/dist.h"
#include "../train/trainer.h"
#include "cli.h"

typedef struct {
    const char *run, *split, *save_batch, *predictions;
    bool help;
} EvalArgs;

static int on_extra(void *ctx, const char *name, const char *value, Error *err) {
    EvalArgs *a = ctx;
    (void)err;
    if (strcmp(name, "run") == 0) a->run = value;
    else if (strcmp(name, "split") == 0) a->split = value;
    else if (strcmp(name, "save_batch") == 0) a->save_batch = value;
    else if (strcmp(name, "predictions") == 0) a->predictions = value;
    else a->help = true;
    return 0;
}

/* Appends the result to the run's metrics.jsonl and prints it. */
static void print_result(Metrics *metrics, const EvalArgs *a, const LoadedRun *run, const EvalResult *r) {
    const unsigned long long step = (unsigned long long)run->state.step, count = (unsigned long long)r->count;
    metrics_eval_result(metrics, run->state.step, a->split, r, run->state.elapsed_s);
    if (r->questions)
        printf("%s step %llu: window loss %.4f | accuracy %.4f | window accuracy %.4f | %llu questions | %s\n",
               a->split, step, r->loss, r->accuracy, r->window_accuracy, count, run->ckpt_path);
    else if (r->classes)
        printf("%s step %llu: loss %.4f | accuracy %.4f | f1 %.4f | mcc %.4f | %llu examples | %s\n", a->split, step,
               r->loss, r->accuracy, r->f1, r->mcc, count, run->ckpt_path);
    else if (r->numbers)
        printf("%s step %llu: loss %.4f | pearson %.4f | spearman %.4f | %llu examples | %s\n", a->split, step,
               r->loss, r->pearson, r->spearman, count, run->ckpt_path);
    else {
        const char *name;
        double score = metrics_score(metrics, r->loss, &name);
        printf("%s step %llu: loss %.4f nats | %s %.4f | %llu tokens | %s\n", a->split, step, r->loss, name, score,
               count, run->ckpt_path);
    }
}

static int evaluate(const EvalArgs *a, const Overrides *ov, Error *err) {
    int split;
    if (split_parse(a->split, &split, err)) return -1;
    LoadedRun run;
    Task task = {0};
    Metrics metrics = {0};
    int rc = run_load(&run, a->run, ov, false, err);
    if (!rc) rc = cli_setup_compute(&run.cfg, err) || task_open(&task, &run.cfg, &run.tok, false, err);
    task.save_batch = a->save_batch;
    task.predictions = a->predictions;
    if (!rc && a->predictions && task.kind != OBJ_CLASSIFICATION && task.kind != OBJ_REGRESSION &&
        task.kind != OBJ_SLOTS)
        rc = err_set(err, "--predictions writes the predictions of classification, regression and wikihop (this run's "
                          "task is %s)", run.cfg.task);
    if (!rc && a->save_batch && task.kind != OBJ_MLM)
        rc = err_set(err, "--save_batch writes masked-LM batches only (this run's task is %s)", run.cfg.task);
    if (!rc && !task_has_split(&task, split))
        rc = err_set(err, "the %s split of this run's data is empty (or has no labels)", a->split);
    EvalResult r;
    if (!rc) rc = task_evaluate(&task, &run.model, split, &r, err);
    /* under mpirun every rank evaluated its share; rank 0 reports */
    const bool report = !rc && dist_rank() == 0;
    if (report && r.unlabelled) /* nothing to score: the predictions were the point */
        printf("%s step %llu: %llu predictions written to %s | %s\n", a->split, (unsigned long long)run.state.step,
               (unsigned long long)r.count, a->predictions, run.ckpt_path);
    else if (report && !(rc = metrics_open(&metrics, a->run, NULL, tokenizer_per_char(&run.tok), err)))
        print_result(&metrics, a, &run, &r);
    metrics_close(&metrics);
    task_free(&task);
    run_free(&run);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    static const char *const extra[] = {"run", "split", "save_batch", "predictions", "help", NULL};
    static const int extra_arg[] = {1, 1, 1, 1, 0};
    EvalArgs args = {.split = "valid"};
    Overrides ov;
    const char *positional[1];
    int n_pos;
    Error err = {0};
    if (cli_parse(argc, argv, extra, extra_arg, on_extra, &args, &ov, positional, &n_pos, 0, &err))
        return cli_fail("eval", &err, EXIT_USAGE);
    if (args.help || !args.run) {
        fprintf(args.help ? stdout : stderr,
                "usage: seqlab eval --run DIR [--split valid|test] [--save_batch FILE] [--predictions FILE]\n"
                "                   [--eval_batch_size N --eval_tgt_len T ...]\n"
                "example: seqlab eval --run runs/shakespeare --split test\n");
        return args.help ? 0 : EXIT_USAGE;
    }
    if (evaluate(&args, &ov, &err)) return cli_fail("eval", &err, 1);
    return 0;
}
