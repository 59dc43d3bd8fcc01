/* cmd_bench.c — `seqlab bench [CONFIG] [--key value ...]`: how fast training
 * steps run (forward, backward, update; src/train/bench.h), next to the
 * machine's own sgemm speed, how fast one-token generation runs, and how much
 * memory it all takes. One configuration runs here and prints a summary on
 * stderr and one JSON object on stdout; a grid of mixers x lengths
 * (--mixers, --lengths) runs each point in a child process of its own
 * (bench_grid.c) so that each gets a clean peak RSS. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../core/gemm.h"
#include "../core/threads.h"
#include "../train/bench.h"
#include "bench_grid.h"
#include "cli.h"

static int positive(const char *name, const char *value, long *out, bool zero_ok, Error *err) {
    char *end;
    long v = strtol(value, &end, 10);
    if (!*value || *end || v < (zero_ok ? 0 : 1))
        return err_set(err, "option '--%s' expects a %s integer, got '%s'", name, zero_ok ? "non-negative" : "positive",
                       value);
    *out = v;
    return 0;
}

static int on_extra(void *ctx, const char *name, const char *value, Error *err) {
    BenchArgs *a = ctx;
    long v = 0;
    if (strcmp(name, "help") == 0) return a->help = true, 0;
    if (strcmp(name, "profile") == 0) return a->profile = true, 0;
    if (strcmp(name, "mixers") == 0) return a->mixers = value, 0;
    if (strcmp(name, "lengths") == 0) return a->lengths = value, 0;
    if (positive(name, value, &v, strcmp(name, "gen_tokens") == 0, err)) return -1;
    if (strcmp(name, "steps") == 0) a->steps = (int)v;
    else if (strcmp(name, "warmup") == 0) a->warmup = (int)v;
    else if (strcmp(name, "vocab") == 0) a->vocab = (int)v;
    else if (strcmp(name, "tokens") == 0) a->tokens = v;
    else a->gen_tokens = (int)v;
    return 0;
}

static void bench_help(void) {
    printf("usage: seqlab bench [CONFIG.yaml] [--key value ...] [--steps N (3)] [--warmup N (1)] [--vocab V (256)]\n"
           "                    [--gen_tokens N (64; 0: no generation)] [--profile]\n"
           "       seqlab bench ... --mixers M1,M2,... --lengths T1,T2,... --tokens N\n\n"
           "Times training steps on random tokens (forward with the loss, backward, clipping and the optimizer),\n"
           "one-token generation at batch 1 after a full context, the machine's sgemm GFLOP/s, and memory.\n"
           "Every config key of `seqlab train --help` applies. A grid runs every mixer at every length with\n"
           "batch_size = tokens / length, each in its own process; a mixer item may set keys:\n"
           "band:diag_size=20, fmm:diag_size=20:kernels=elu+elu_flip ('+' for a list's commas).\n"
           "--profile prints the seconds per step of embedding, mixers, feed-forwards and head.\n"
           "Output: a summary on stderr, one JSON object per configuration on stdout.\n"
           "example: seqlab bench --d_model 256 --n_layer 4 --tgt_len 256 --batch_size 64 --threads 2\n"
           "example: seqlab bench --n_layer 4 --mixers softmax,linear --lengths 1024,4096 --tokens 65536\n");
}

/* Seconds per step of each stage kind, forward and backward, from the
 * profile summed over the timed steps. */
static void print_profile(const Model *m, const double *profile, int steps) {
    double kind[4][2] = {{0}};
    const char *names[4] = {"embedding", "mixers (s)", "feed-forward (f)", "head + loss"};
    const size_t uses = m->trunk.n_uses;
    for (size_t i = 0; i < uses + 2; i++) {
        int k = i == 0 ? 0 : i == uses + 1 ? 3 : m->trunk.uses[i - 1].letter == 's' ? 1 : 2;
        kind[k][0] += profile[2 * i] / steps;
        kind[k][1] += profile[2 * i + 1] / steps;
    }
    fprintf(stderr, "seqlab bench: profile, seconds per step (forward / backward):\n");
    for (int k = 0; k < 4; k++) fprintf(stderr, "  %-18s %8.4f / %8.4f\n", names[k], kind[k][0], kind[k][1]);
}

static void print_series(const char *name, const double *x, int n) {
    printf(", \"%s\": [", name);
    for (int i = 0; i < n; i++) printf(i ? ", %.6f" : "%.6f", x[i]);
    printf("]");
}

static void print_json(const Config *c, const BenchArgs *a, const Model *m, const BenchResult *r, double peak,
                       double gen) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const double med = bench_median(r->step, r->steps);
    printf("{\"impl\": \"seqlab\", \"threads\": %d, \"mixer\": \"%s\", \"arch\": \"%s\", \"vocab\": %d, \"d_model\": %d, "
           "\"n_head\": %d, \"d_inner\": %d, \"diag_size\": %d, \"kernels\": \"%s\", \"tgt_len\": %d, \"batch_size\": "
           "%d, \"recompute_ffn\": %s, \"n_params\": %zu, \"tokens_per_step\": %.0f",
           threads_get(), c->mixer, c->arch, a->vocab, c->d_model, c->n_head, c->d_inner, c->diag_size, c->kernels,
           c->tgt_len, c->batch_size, c->recompute_ffn ? "true" : "false", m->params.total, r->tokens);
    print_series("step_seconds", r->step, r->steps);
    print_series("forward_seconds", r->forward, r->steps);
    print_series("backward_seconds", r->backward, r->steps);
    printf(", \"median_s\": %.6f, \"min_s\": %.6f, \"max_s\": %.6f, \"forward_s\": %.6f, \"backward_s\": %.6f, "
           "\"update_s\": %.6f, \"tok_per_s\": %.1f, \"flops_per_step\": %.6g, \"gflops\": %.2f, \"sgemm_gflops\": "
           "%.2f, \"peak_fraction\": %.4f, \"gen_tok_per_s\": %.1f, \"arena_mb\": %.1f, \"peak_rss_mb\": %.1f, "
           "\"precision\": \"%s\", \"gemm_backend\": \"%s\"}\n",
           med, bench_min(r->step, r->steps), bench_max(r->step, r->steps), bench_median(r->forward, r->steps),
           bench_median(r->backward, r->steps), bench_median(r->update, r->steps), r->tokens / med, r->flops,
           r->flops / med * 1e-9, peak, r->flops / med * 1e-9 / peak, gen, r->arena_bytes / 1048576.0,
           ru.ru_maxrss / 1024.0, c->precision, gemm_backend());
    fflush(stdout);
}

/* One configuration, in this process. */
static int bench_one(const Config *c, const BenchArgs *a, Error *err) {
    Model m;
    if (model_build(&m, c, (size_t)a->vocab, err)) return -1;
    model_init(&m, 1);
    double peak_before = bench_sgemm_peak(2048, 7);
    double *profile = a->profile ? calloc(2 * (m.trunk.n_uses + 2), sizeof(double)) : NULL;
    BenchResult r;
    int rc = bench_training(&m, a->steps, a->warmup, profile, &r, err);
    double gen = 0.0;
    Error gen_err = {0};
    if (!rc && a->gen_tokens && bench_generation(&m, (size_t)c->tgt_len, a->gen_tokens, &gen, &gen_err))
        fprintf(stderr, "seqlab bench: no generation timing: %s\n", gen_err.msg), gen = 0.0;
    /* the peak is measured before and after the steps; the higher one is the honest reference */
    double peak = bench_sgemm_peak(2048, 7);
    peak = peak > peak_before ? peak : peak_before;
    if (!rc) {
        if (profile) print_profile(&m, profile, a->steps);
        bench_report(stderr, c, &m, &r, peak, gen);
        print_json(c, a, &m, &r, peak, gen);
    }
    free(profile);
    model_free(&m);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    static const char *const extra[] = {"steps", "warmup", "vocab", "help", "profile", "mixers",
                                        "lengths", "tokens", "gen_tokens", NULL};
    static const int extra_arg[] = {1, 1, 1, 0, 0, 1, 1, 1, 1};
    BenchArgs args = {.steps = 3, .warmup = 1, .vocab = 256, .gen_tokens = 64};
    Overrides ov;
    const char *positional[1];
    int n_pos;
    Error err = {0};
    Config c;
    if (cli_parse(argc, argv, extra, extra_arg, on_extra, &args, &ov, positional, &n_pos, 1, &err))
        return cli_fail("bench", &err, EXIT_USAGE);
    if (args.help) {
        bench_help();
        return 0;
    }
    if (args.mixers || args.lengths) return bench_grid(argc, argv, &args);
    config_defaults(&c);
    c.dropout = 0.0; /* the benchmark measures the model, not the regulariser */
    int rc = (n_pos && config_load_yaml(&c, positional[0], &err)) || cli_apply_overrides(&c, &ov, &err) ||
             config_finalize(&c, &err);
    if (!rc) {
        rc = cli_setup_compute(&c, &err) || bench_one(&c, &args, &err);
    }
    if (rc) return cli_fail("bench", &err, 1);
    return 0;
}
