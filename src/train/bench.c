/* bench.c — see bench.h. */
#include "bench.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/gemm.h"
#include "../core/rng.h"
#include "optim.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_median(const double *x, int n) {
    if (n <= 0) return 0.0;
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) return x[0];
    memcpy(s, x, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}

double bench_min(const double *x, int n) {
    double m = x[0];
    for (int i = 1; i < n; i++) m = x[i] < m ? x[i] : m;
    return m;
}

double bench_max(const double *x, int n) {
    double m = x[0];
    for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

double bench_sgemm_peak(size_t n, int repeats) {
    float *a = malloc(3 * n * n * sizeof(float));
    double *t = malloc((size_t)repeats * sizeof *t);
    if (!a || !t) {
        free(a);
        free(t);
        return 0.0;
    }
    float *b = a + n * n, *c = b + n * n;
    for (size_t i = 0; i < 2 * n * n; i++) a[i] = (float)(i % 7) * 0.1f;
    /* the reference is the fp32 product, whatever precision the model runs in */
    Precision model_precision = gemm_get_precision();
    gemm_set_precision(PRECISION_FP32, NULL);
    for (int r = 0; r <= repeats; r++) {
        double t0 = now_s();
        gemm(false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        if (r) t[r - 1] = now_s() - t0; /* the first run warms caches and threads */
    }
    gemm_set_precision(model_precision, NULL);
    double gflops = 2.0 * (double)n * n * n / bench_median(t, repeats) * 1e-9;
    free(a);
    free(t);
    return gflops;
}

static void random_tokens(int32_t *ids, size_t n, size_t V, uint64_t stream) {
    Rng r = rng_make(1, rng_stream(RNG_DATA, stream, 0));
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)(rng_next(&r) % V);
}

/* Parameters of the sublayer at `path` ("blocks.3": its names start "blocks.3."). */
static double sublayer_params(const Model *m, const char *path) {
    const size_t n = strlen(path);
    double count = 0;
    for (size_t i = 0; i < m->params.count; i++)
        if (!strncmp(m->params.specs[i].name, path, n) && m->params.specs[i].name[n] == '.')
            count += (double)m->params.specs[i].numel;
    return count;
}

/* Parameters that take part in a matrix product per token: all but the
 * position table, and the token table unless it is also the output head
 * (looking a row up costs no FLOPs); a sublayer that several uses share
 * counts once per use. */
static double product_params(const Model *m) {
    double n = (double)m->params.total;
    if (m->wpe) n -= (double)m->cfg.max_len * (double)m->C;
    if (!m->cfg.tie_weight) n -= (double)m->V * (double)m->C;
    const Trunk *t = &m->trunk;
    for (size_t i = 0; i < t->n_uses; i++) n += sublayer_params(m, t->sublayers[t->uses[i].sublayer]->path);
    for (size_t i = 0; i < t->n_sublayers; i++) n -= sublayer_params(m, t->sublayers[i]->path);
    return n;
}

static double step_flops(const Model *m) {
    const Config *c = &m->cfg;
    const double tokens = (double)c->batch_size * c->tgt_len;
    double mixing = 0.0;
    const Trunk *t = &m->trunk;
    for (size_t i = 0; i < t->n_uses; i++)
        mixing += module_flops(t->sublayers[t->uses[i].sublayer], (size_t)c->batch_size, (size_t)c->tgt_len, c->causal);
    return 6.0 * product_params(m) * tokens + 3.0 * mixing;
}

static size_t arena_bytes(const Model *m) {
    size_t floats = m->scratch_floats + 4 * m->params.total;
    for (size_t i = 0; i < MODEL_PLANS; i++) floats += m->plans[i].arena.cap;
    return floats * sizeof(float);
}

/* One training step, its three parts timed into r at index k (k < 0: untimed). */
static int timed_step(Model *m, Optimizer *opt, const int32_t *ids, const int32_t *targets, int s, int k,
                      BenchResult *r, Error *err) {
    const Config *c = &m->cfg;
    const size_t B = (size_t)c->batch_size, T = (size_t)c->tgt_len, split = (size_t)c->batch_split, rows = B / split;
    double fwd = 0.0, bwd = 0.0, t0 = now_s();
    model_zero_grad(m);
    for (size_t j = 0; j < split; j++) {
        PassMode mode = {.training = true, .seed = 1, .step = (uint64_t)s, .row0 = j * rows};
        double sum, a = now_s();
        if (model_forward(m, ids + j * rows * T, targets + j * rows * T, &mode, 1.0f / (float)(B * T), &sum, err))
            return -1;
        double b = now_s();
        model_backward(m, &mode);
        fwd += b - a;
        bwd += now_s() - b;
    }
    double u = now_s();
    optim_clip(&m->params, opt->global_clip);
    optim_step(opt, &m->params, c->lr, (uint64_t)s + 1);
    model_after_update(m);
    if (k >= 0) {
        r->update[k] = now_s() - u;
        r->forward[k] = fwd;
        r->backward[k] = bwd;
        r->step[k] = now_s() - t0;
    }
    return 0;
}

int bench_training(Model *m, int steps, int warmup, double *profile, BenchResult *r, Error *err) {
    const Config *c = &m->cfg;
    memset(r, 0, sizeof *r);
    if (steps < 1 || steps > BENCH_MAX_STEPS) return err_set(err, "bench: 1 to %d timed steps", BENCH_MAX_STEPS);
    const size_t B = (size_t)c->batch_size, T = (size_t)c->tgt_len;
    int32_t *ids = xmalloc(2 * B * T * sizeof(int32_t), err);
    if (!ids) return -1;
    int32_t *targets = ids + B * T;
    random_tokens(ids, B * T, m->V, 1);
    random_tokens(targets, B * T, m->V, 2);
    Optimizer opt = {0};
    int rc = optim_build(&opt, c, &m->params, err) || model_plan(m, B / (size_t)c->batch_split, T, err);
    for (int s = 0; !rc && s < warmup + steps; s++) {
        if (s == warmup) m->profile = profile; /* profile the timed steps only */
        rc = timed_step(m, &opt, ids, targets, s, s - warmup, r, err);
    }
    m->profile = NULL;
    optim_free(&opt);
    free(ids);
    r->steps = steps;
    r->tokens = (double)B * T;
    r->flops = step_flops(m);
    r->arena_bytes = arena_bytes(m);
    return rc;
}

int bench_generation(Model *m, size_t context, int tokens, double *tok_per_s, Error *err) {
    Generator g;
    if ((size_t)tokens >= context) return err_set(err, "bench: %d generated tokens need a longer context", tokens);
    if (generator_build(&g, m, context, err)) return -1;
    Rng rng = rng_make(3, rng_stream(RNG_TEST, 1, 0)); /* a full context's state (none when recomputing) */
    for (size_t i = 0; i < g.state_floats; i++) g.buffer[i] = 0.1f * rng_normal(&rng) + 0.5f; /* positive: valid for linear z */
    int rc = 0;
    double t0 = now_s();
    for (size_t t = context - (size_t)tokens; !rc && t < context; t++)
        rc = generator_step(&g, m, (int32_t)(t % m->V), t, err);
    *tok_per_s = (double)tokens / (now_s() - t0);
    generator_free(&g);
    return rc;
}
