/* moe_gemm.c — how close the mixture of experts' GEMMs come to the machine's
 * sgemm peak at the enwik8_smoe shapes (spec moe-brainformer.md §7.2: d_model
 * 256, experts of 256, E 16, top 2; 64 streams x 512 tokens split in 2, so
 * 16,384 tokens per forward), and what the routing around them costs.
 * Times the module's forward + backward (median of RUNS), then the same
 * expert GEMMs alone at the row counts the gate chose (fc1 and fc2 forward,
 * dW2, dG, dW1, dX), and the in-process sgemm peak (square 2048 products).
 *   make bench/moe_gemm && OMP_NUM_THREADS=2 bench/moe_gemm [N]          */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gemm.h"
#include "core/rng.h"
#include "core/threads.h"
#include "nn/module.h"
#include "train/bench.h"

enum { RUNS = 5, E = 16, K = 2, C = 256, F = 256 };

static double median(double *x, int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && x[j - 1] > x[j]; j--) {
            double t = x[j];
            x[j] = x[j - 1], x[j - 1] = t;
        }
    return x[n / 2];
}

static void fill(float *x, size_t n, float std, uint64_t stream) {
    Rng r = rng_make(1, rng_stream(RNG_TEST, stream, 0));
    for (size_t i = 0; i < n; i++) x[i] = std * rng_normal(&r);
}

/* The six expert GEMMs of one step for rows[e] rows per expert. */
static void expert_gemms(const size_t *rows, float *a, float *b, float *w, float *dw) {
    for (size_t e = 0; e < E; e++) {
        const size_t n = rows[e];
        if (!n) continue;
        gemm(false, true, n, F, C, 1.0f, a, C, w, C, 0.0f, b, F);     /* h = x W1^T */
        gemm(false, true, n, C, F, 1.0f, b, F, w, F, 0.0f, a, C);     /* y = g W2^T */
        gemm(true, false, C, F, n, 1.0f, a, C, b, F, 1.0f, dw, F);    /* dW2 += dy^T g */
        gemm(false, false, n, F, C, 1.0f, a, C, w, F, 0.0f, b, F);    /* dg = dy W2 */
        gemm(true, false, F, C, n, 1.0f, b, F, a, C, 1.0f, dw, C);    /* dW1 += dh^T x */
        gemm(false, false, n, C, F, 1.0f, b, F, w, C, 0.0f, a, C);    /* dx = dh W1 */
    }
}

int main(int argc, char **argv) {
    const size_t N = argc > 1 ? (size_t)atol(argv[1]) : 16384;
    threads_set(0);
    Config cfg;
    config_defaults(&cfg);
    cfg.d_model = C;
    Error err = {0};
    const char *entries[][2] = {{"moe.num_experts", "16"}, {"moe.top_k", "2"}, {"moe.d_inner", "256"},
                                {"moe.dropout", "0"}};
    for (size_t i = 0; i < 4; i++)
        if (config_set(&cfg, entries[i][0], entries[i][1], "bench", &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    ModuleSpec spec = {.cfg = &cfg, .kind = "ffn", .name = "moe", .flat = true, .C_in = C, .C_out = C};
    snprintf(spec.section[1], sizeof spec.section[1], "moe");
    Module *m = module_build(&spec, &err);
    Frame *f = m ? frame_create(m, "blocks.0", &err) : NULL;
    if (!f) return fprintf(stderr, "%s\n", err.msg), 1;
    ParamSet ps;
    params_init(&ps);
    module_params(m, &ps);
    Arena arena = arena_counting();
    module_layout(f, 1, N, &arena);
    if (params_allocate(&ps, &err) || arena_alloc(&arena, arena.used, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    arena_rewind(&arena);
    module_layout(f, 1, N, &arena);
    module_init(m, 1);
    float *x = malloc(N * C * sizeof *x), *y = malloc(N * C * sizeof *y), *dx = malloc(N * C * sizeof *dx);
    float *scratch = malloc(module_scratch(m, 1, N) * sizeof(float));
    fill(x, N * C, 1.0f, 1);
    Stats stats;
    Ctx ctx = {.B = 1, .T = N, .training = true, .causal = true, .seed = 1, .scratch = scratch, .stats = &stats,
               .path = "moe"};
    double full[RUNS], alone[RUNS];
    for (int r = -1; r < RUNS; r++) {
        memset(&stats, 0, sizeof stats);
        const double t0 = omp_get_wtime();
        module_forward(f, x, y, &ctx);
        module_backward(f, y, dx, &ctx);
        if (r >= 0) full[r] = omp_get_wtime() - t0;
    }
    size_t rows[E], total = 0;
    for (int e = 0; e < E; e++) rows[e] = (size_t)(stats.sum[e] * (double)(N * K) + 0.5), total += rows[e];
    const size_t most = N * K;
    float *a = malloc(most * C * sizeof *a), *b = malloc(most * F * sizeof *b), *w = malloc(C * F * sizeof *w),
          *dw = calloc(C * F, sizeof *dw);
    fill(a, most * C, 1.0f, 2), fill(b, most * F, 1.0f, 3), fill(w, C * F, 0.05f, 4);
    for (int r = -1; r < RUNS; r++) {
        const double t0 = omp_get_wtime();
        expert_gemms(rows, a, b, w, dw);
        if (r >= 0) alone[r] = omp_get_wtime() - t0;
    }
    const double peak = bench_sgemm_peak(2048, 7), flops = 6.0 * 2.0 * (double)total * C * F;
    const double t_full = median(full, RUNS), t_gemm = median(alone, RUNS);
    size_t fewest = rows[0], largest = rows[0];
    for (int e = 1; e < E; e++) fewest = rows[e] < fewest ? rows[e] : fewest, largest = rows[e] > largest ? rows[e] : largest;
    printf("{\"tokens\": %zu, \"experts\": %d, \"top_k\": %d, \"d_model\": %d, \"d_inner\": %d, \"threads\": %d, "
           "\"rows_min\": %zu, \"rows_max\": %zu, \"moe_fwd_bwd_s\": %.5f, \"expert_gemm_s\": %.5f, "
           "\"expert_gemm_gflops\": %.1f, \"sgemm_peak_gflops\": %.1f, \"gemm_fraction_of_peak\": %.3f, "
           "\"gemm_share_of_moe\": %.3f}\n",
           N, E, K, C, F, threads_get(), fewest, largest, t_full, t_gemm, flops / t_gemm * 1e-9, peak,
           flops / t_gemm * 1e-9 / peak, t_gemm / t_full);
    return 0;
}
