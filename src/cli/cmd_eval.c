/* cmd_eval.c — `seqlab eval --run DIR [--split valid|test]`: the loss and
 * bpc (or perplexity) of a run's newest checkpoint on one split, printed and
 * appended to DIR/metrics.jsonl. */
#include <string.h>

#include "../data/corpus.h"
#include "../train/trainer.h"
#include "cli.h"

typedef struct {
    const char *run, *split;
    bool help;
} EvalArgs;

static int on_extra(void *ctx, const char *name, const char *value, Error *err) {
    EvalArgs *a = ctx;
    (void)err;
    if (strcmp(name, "run") == 0) a->run = value;
    else if (strcmp(name, "split") == 0) a->split = value;
    else a->help = true;
    return 0;
}

static int evaluate(const EvalArgs *a, const Overrides *ov, Error *err) {
    int split;
    if (split_parse(a->split, &split, err)) return -1;
    LoadedRun run;
    Corpus corpus = {0};
    Metrics metrics = {0};
    int rc = run_load(&run, a->run, ov, false, err);
    if (!rc) {
        rc = cli_setup_compute(&run.cfg, err) || corpus_load(&corpus, &run.cfg, &run.tok, false, err);
    }
    if (!rc && corpus.split[split].n == 0) rc = err_set(err, "the %s split of this run's data is empty", a->split);
    double loss = 0.0;
    uint64_t tokens = 0;
    if (!rc) rc = evaluate_split(&run.model, &corpus.split[split], a->split, &loss, &tokens, err);
    if (!rc) rc = metrics_open(&metrics, a->run, NULL, tokenizer_per_char(&run.tok), err);
    if (!rc) {
        const char *name;
        double score = metrics_score(&metrics, loss, &name);
        metrics_eval(&metrics, run.state.step, a->split, loss, tokens, run.state.elapsed_s);
        printf("%s step %llu: loss %.4f nats | %s %.4f | %llu tokens | %s\n", a->split,
               (unsigned long long)run.state.step, loss, name, score, (unsigned long long)tokens, run.ckpt_path);
    }
    metrics_close(&metrics);
    corpus_free(&corpus);
    run_free(&run);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    static const char *const extra[] = {"run", "split", "help", NULL};
    static const int extra_arg[] = {1, 1, 0};
    EvalArgs args = {.split = "valid"};
    Overrides ov;
    const char *positional[1];
    int n_pos;
    Error err = {0};
    if (cli_parse(argc, argv, extra, extra_arg, on_extra, &args, &ov, positional, &n_pos, 0, &err))
        return cli_fail("eval", &err, EXIT_USAGE);
    if (args.help || !args.run) {
        fprintf(args.help ? stdout : stderr,
                "usage: seqlab eval --run DIR [--split valid|test] [--eval_batch_size N --eval_tgt_len T ...]\n"
                "example: seqlab eval --run runs/shakespeare --split test\n");
        return args.help ? 0 : EXIT_USAGE;
    }
    if (evaluate(&args, &ov, &err)) return cli_fail("eval", &err, 1);
    return 0;
}
