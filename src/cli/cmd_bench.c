/* cmd_bench.c — `seqlab bench [CONFIG] [--key value ...]`: how fast full
 * training steps run (forward, backward, clipping, AdamW) on random tokens,
 * next to the machine's own sgemm speed, and how much memory they take.
 * Prints a human summary on stderr and one JSON object on stdout.
 *
 * FLOPs of a step: 6 * parameters * tokens (the matmuls of forward and
 * backward) plus attention: 4 * B * T^2 * H*d per softmax layer for QK^T and
 * PV in forward (half of it when causal), three times that for
 * forward + backward. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "../core/gemm.h"
#include "../core/rng.h"
#include "../core/threads.h"
#include "../train/optim.h"
#include "cli.h"

char *openblas_get_corename(void);

typedef struct {
    int steps, warmup, vocab;
    bool help, profile;
} BenchArgs;

static int on_extra(void *ctx, const char *name, const char *value, Error *err) {
    BenchArgs *a = ctx;
    if (strcmp(name, "help") == 0 || strcmp(name, "profile") == 0) {
        *(strcmp(name, "help") == 0 ? &a->help : &a->profile) = true;
        return 0;
    }
    char *end;
    long v = strtol(value, &end, 10);
    if (!*value || *end || v < 1) return err_set(err, "option '--%s' expects a positive integer, got '%s'", name, value);
    if (strcmp(name, "steps") == 0) a->steps = (int)v;
    else if (strcmp(name, "warmup") == 0) a->warmup = (int)v;
    else a->vocab = (int)v;
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median GFLOP/s of square n x n sgemm on the configured threads. */
static double sgemm_peak(size_t n) {
    float *a = malloc(3 * n * n * sizeof(float));
    if (!a) return 0.0;
    float *b = a + n * n, *c = b + n * n;
    for (size_t i = 0; i < 2 * n * n; i++) a[i] = (float)(i % 7) * 0.1f;
    double t[7];
    for (int r = 0; r < 8; r++) {
        double t0 = now_s();
        gemm(false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        if (r) t[r - 1] = now_s() - t0; /* the first run warms caches and threads */
    }
    free(a);
    qsort(t, 7, sizeof t[0], cmp_double);
    return 2.0 * (double)n * n * n / t[3] * 1e-9;
}

static double attention_flops(const Model *m) {
    const Config *c = &m->cfg;
    double per_layer = 4.0 * c->batch_size * (double)c->tgt_len * c->tgt_len * c->n_head * c->d_head;
    if (c->causal) per_layer *= 0.5;
    size_t layers = 0;
    for (size_t i = 0; i < m->n_blocks; i++) layers += m->blocks[i].kind == 's' && strcmp(c->mixer, "softmax") == 0;
    return 3.0 * per_layer * (double)layers;
}

static void random_tokens(int32_t *ids, size_t n, size_t V, uint64_t stream) {
    Rng r = rng_make(1, rng_stream(RNG_DATA, stream, 0));
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)(rng_next(&r) % V);
}

/* Times `steps` full training steps after `warmup` untimed ones. */
static int time_steps(Model *m, const BenchArgs *a, double *times, double *profile, Error *err) {
    const Config *c = &m->cfg;
    const size_t B = (size_t)c->batch_size, T = (size_t)c->tgt_len, split = (size_t)c->batch_split, rows = B / split;
    int32_t *ids = malloc(2 * B * T * sizeof(int32_t));
    if (!ids) return err_set(err, "out of memory");
    int32_t *targets = ids + B * T;
    random_tokens(ids, B * T, m->V, 1);
    random_tokens(targets, B * T, m->V, 2);
    Optimizer opt;
    int rc = optim_setup(&opt, c, err) || model_plan(m, rows, T, err);
    for (int s = 0; !rc && s < a->warmup + a->steps; s++) {
        double t0 = now_s(), sum;
        model_zero_grad(m);
        for (size_t k = 0; k < split && !rc; k++) {
            PassMode mode = {.training = true, .seed = 1, .step = (uint64_t)s, .row0 = k * rows};
            rc = model_forward(m, ids + k * rows * T, targets + k * rows * T, &mode, 1.0f / (float)(B * T), &sum, err);
            if (!rc) model_backward(m, &mode);
        }
        optim_clip(&m->params, c->clip);
        optim_step(&opt, &m->params, c->lr, (uint64_t)s + 1);
        if (s >= a->warmup) times[s - a->warmup] = now_s() - t0;
        if (s + 1 == a->warmup) m->profile = profile; /* profile the timed steps only */
    }
    m->profile = NULL;
    free(ids);
    return rc;
}

/* Seconds per step of each stage kind, forward and backward, from the
 * profile summed over the timed steps: embedding, mixers ('s' blocks),
 * feed-forwards ('f'), head (final norm, head, loss). */
static void print_profile(const Model *m, const double *profile, int steps) {
    double kind[4][2] = {{0}};
    const char *names[4] = {"embedding", "mixers (s)", "feed-forward (f)", "head + loss"};
    for (size_t i = 0; i < m->n_blocks + 2; i++) {
        int k = i == 0 ? 0 : i == m->n_blocks + 1 ? 3 : m->blocks[i - 1].kind == 's' ? 1 : 2;
        kind[k][0] += profile[2 * i] / steps;
        kind[k][1] += profile[2 * i + 1] / steps;
    }
    fprintf(stderr, "seqlab bench: profile, seconds per step (forward / backward):\n");
    for (int k = 0; k < 4; k++)
        fprintf(stderr, "  %-18s %8.4f / %8.4f\n", names[k], kind[k][0], kind[k][1]);
}

static size_t arena_bytes(const Model *m) {
    size_t floats = m->scratch_floats + 4 * m->params.total;
    for (size_t i = 0; i < MODEL_PLANS; i++) floats += m->plans[i].arena.cap;
    return floats * sizeof(float);
}

static int bench(const Config *c, const BenchArgs *a, Error *err) {
    Model m;
    double *times = calloc((size_t)a->steps, sizeof(double));
    if (!times || model_build(&m, c, (size_t)a->vocab, err)) {
        free(times);
        return -1;
    }
    model_init(&m, 1);
    double peak = sgemm_peak(2048);
    double *profile = a->profile ? calloc(2 * (m.n_blocks + 2), sizeof(double)) : NULL;
    int rc = time_steps(&m, a, times, profile, err);
    if (!rc && profile) print_profile(&m, profile, a->steps);
    free(profile);
    if (!rc) {
        qsort(times, (size_t)a->steps, sizeof times[0], cmp_double);
        double median = times[a->steps / 2], tokens = (double)c->batch_size * c->tgt_len;
        double flops = 6.0 * (double)m.params.total * tokens + attention_flops(&m);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        fprintf(stderr, "seqlab bench: %s, %zu params, %d threads | step median %.3f s (min %.3f, max %.3f) | "
                        "%.0f tok/s | %.1f GFLOP/s = %.0f%% of sgemm %.1f GFLOP/s | memory %.0f MiB, peak RSS %.0f MiB\n",
                c->arch, m.params.total, threads_get(), median, times[0], times[a->steps - 1], tokens / median,
                flops / median * 1e-9, 100.0 * flops / median * 1e-9 / peak, peak, arena_bytes(&m) / 1048576.0,
                ru.ru_maxrss / 1024.0);
        printf("{\"impl\": \"seqlab\", \"threads\": %d, \"arch\": \"%s\", \"mixer\": \"%s\", \"vocab\": %d, "
               "\"d_model\": %d, \"n_head\": %d, \"d_inner\": %d, \"tgt_len\": %d, \"batch_size\": %d, "
               "\"n_params\": %zu, \"tokens_per_step\": %.0f, \"step_seconds\": [",
               threads_get(), c->arch, c->mixer, a->vocab, c->d_model, c->n_head, c->d_inner, c->tgt_len,
               c->batch_size, m.params.total, tokens);
        for (int s = 0; s < a->steps; s++) printf(s ? ", %.6f" : "%.6f", times[s]);
        printf("], \"median_s\": %.6f, \"min_s\": %.6f, \"max_s\": %.6f, \"tok_per_s\": %.1f, \"flops_per_step\": "
               "%.6g, \"gflops\": %.2f, \"sgemm_gflops\": %.2f, \"peak_fraction\": %.4f, \"arena_mb\": %.1f, "
               "\"peak_rss_mb\": %.1f, \"blas_core\": \"%s\"}\n",
               median, times[0], times[a->steps - 1], tokens / median, flops, flops / median * 1e-9, peak,
               flops / median * 1e-9 / peak, arena_bytes(&m) / 1048576.0, ru.ru_maxrss / 1024.0,
               openblas_get_corename());
    }
    free(times);
    model_free(&m);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    static const char *const extra[] = {"steps", "warmup", "vocab", "help", "profile", NULL};
    static const int extra_arg[] = {1, 1, 1, 0, 0};
    BenchArgs args = {.steps = 5, .warmup = 2, .vocab = 256};
    Overrides ov;
    const char *positional[1];
    int n_pos;
    Error err = {0};
    Config c;
    if (cli_parse(argc, argv, extra, extra_arg, on_extra, &args, &ov, positional, &n_pos, 1, &err)) {
        fprintf(stderr, "seqlab bench: %s\n", err.msg);
        return EXIT_USAGE;
    }
    if (args.help) {
        printf("usage: seqlab bench [CONFIG.yaml] [--key value ...] [--steps N (5)] [--warmup N (2)] [--vocab V (256)]\n"
               "                    [--profile: seconds per step of embedding, mixers, feed-forwards, head]\n"
               "Times full training steps on random tokens; every config key of `seqlab train --help` applies.\n"
               "example: seqlab bench --d_model 256 --n_layer 4 --tgt_len 256 --batch_size 64 --threads 2\n");
        return 0;
    }
    config_defaults(&c);
    c.dropout = 0.0; /* the benchmark measures the model, not the regulariser */
    int rc = (n_pos && config_load_yaml(&c, positional[0], &err)) || cli_apply_overrides(&c, &ov, &err) ||
             config_finalize(&c, &err);
    if (!rc) {
        threads_set(c.threads);
        rc = bench(&c, &args, &err);
    }
    if (rc) {
        fprintf(stderr, "seqlab bench: %s\n", err.msg);
        return 1;
    }
    return 0;
}
