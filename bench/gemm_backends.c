/* gemm_backends.c — which GEMM library runs seqlab's matrix products fastest.
 *
 * Times, in one process, every candidate backend on the products seqlab
 * actually issues (recorded from one training step of the models of
 * docs/benchmarks.md and of the demo, from the attention tiles issued inside
 * OpenMP loops, and from one-token generation). Each library is loaded with
 * dlopen so that OpenBLAS and BLIS, which export the same CBLAS symbols, can
 * sit side by side; all of them run on the same OpenMP (libgomp) threads.
 *
 *   bench/gemm_backends [--threads N] [--repeats R]
 *
 * prints one JSON object per (workload, backend) on stdout and a table on
 * stderr. OpenBLAS picks its kernels from OPENBLAS_CORETYPE when it is
 * loaded, so bench/gemm.sh runs this program once with the variable as the
 * environment has it and once unset. */
#include <dlfcn.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.h>

/* ---- the products: (count per step, op(A), op(B), M, N, K, beta) ---- */

typedef struct {
    int count;
    char ta, tb;
    int M, N, K;
    float beta;
} Product;

typedef struct {
    const char *name;
    bool in_parallel; /* issued from inside an OpenMP loop, one per thread (attention tiles) */
    const Product *p;
} Workload;

/* softmax LM of docs/benchmarks.md: 4 x (attention + MLP), d_model 256, 4 heads,
 * d_inner 1024, vocabulary 256, 16,384 tokens per step; MLP and head in 4096-row chunks */
static const Product LM_STEP[] = {
    {4, 'N', 'T', 16384, 1024, 256, 1}, {16, 'N', 'T', 4096, 256, 1024, 1}, /* MLP forward: fc1, fc2 by chunk */
    {16, 'N', 'N', 4096, 1024, 256, 0}, {16, 'T', 'N', 256, 1024, 4096, 1}, /* fc2 dX, dW */
    {16, 'N', 'N', 4096, 256, 1024, 0}, {16, 'T', 'N', 1024, 256, 4096, 1}, /* fc1 dX, dW */
    {8, 'N', 'T', 16384, 256, 256, 0},  {4, 'N', 'T', 16384, 512, 256, 0},  /* q and o, kv */
    {8, 'N', 'N', 16384, 256, 256, 0},  {8, 'T', 'N', 256, 256, 16384, 1}, /* q and o: dX, dW */
    {4, 'N', 'N', 16384, 256, 512, 1},  {4, 'T', 'N', 512, 256, 16384, 1}, /* kv: dX, dW */
    {4, 'N', 'T', 4096, 256, 256, 0},   {4, 'N', 'N', 4096, 256, 256, 0},  /* head by chunk: logits, dH */
    {4, 'T', 'N', 256, 256, 4096, 1},   {0}};                               /* head dW */
/* the demo (configs/shakespeare.yaml): d_model 128, d_inner 512, 4,096 tokens per step */
static const Product DEMO_STEP[] = {
    {8, 'N', 'T', 4096, 128, 128, 0}, {8, 'N', 'N', 4096, 128, 128, 0}, {8, 'T', 'N', 128, 128, 4096, 1},
    {5, 'N', 'T', 4096, 256, 128, 0}, {5, 'T', 'N', 256, 128, 4096, 1}, {4, 'N', 'T', 4096, 512, 128, 1},
    {4, 'N', 'T', 4096, 128, 512, 1}, {4, 'N', 'N', 4096, 512, 128, 0}, {4, 'N', 'N', 4096, 128, 512, 0},
    {4, 'T', 'N', 512, 128, 4096, 1}, {4, 'T', 'N', 128, 512, 4096, 1}, {4, 'N', 'N', 4096, 128, 256, 1}, {1, 'N', 'N', 4096, 128, 256, 0},
    {0}};
/* attention tiles per step of the LM above (64 queries x 64 keys, head width 64) */
static const Product TILES[] = {
    {30720, 'N', 'T', 64, 64, 64, 0}, {20480, 'N', 'N', 64, 64, 64, 1}, {20480, 'T', 'N', 64, 64, 64, 1}, {0}};
/* one token of generation of the LM above at batch 1 (4 layers) */
static const Product GEN_TOKEN[] = {
    {4, 'N', 'T', 1, 256, 256, 0}, {4, 'N', 'T', 1, 512, 256, 0}, {4, 'N', 'T', 1, 256, 256, 0},
    {4, 'N', 'T', 1, 1024, 256, 1}, {4, 'N', 'T', 1, 256, 1024, 1}, {1, 'N', 'T', 1, 256, 256, 0}, {0}};
/* square products: the peak the machine reaches */
static const Product SQUARE[] = {{1, 'N', 'N', 2048, 2048, 2048, 0}, {0}};

static const Workload WORKLOADS[] = {
    {"lm_step", false, LM_STEP},  {"demo_step", false, DEMO_STEP}, {"attention_tiles", true, TILES},
    {"gen_token", false, GEN_TOKEN}, {"square_2048", false, SQUARE}};

/* ---- backends ---- */

typedef void (*CblasSgemm)(int order, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                           const float *B, int ldb, float beta, float *C, int ldc);
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };

typedef struct {
    const char *name;
    CblasSgemm cblas; /* NULL: oneDNN */
    const char *(*kernels)(void);
} Backend;

static CblasSgemm openblas_sgemm, blis_sgemm;
static char *(*openblas_corename)(void);
static const char *(*blis_arch_string)(int);
static int (*blis_arch_query)(void);

static const char *openblas_kernels(void) { return openblas_corename ? openblas_corename() : "?"; }
static const char *blis_kernels(void) { return blis_arch_string ? blis_arch_string(blis_arch_query()) : "?"; }
static const char *onednn_kernels(void) {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx2: return "avx2";
    default: return "other";
    }
}

static void *open_lib(const char *path) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!h) fprintf(stderr, "gemm_backends: %s: %s (skipped)\n", path, dlerror());
    return h;
}

static void load_backends(int threads) {
    void *ob = open_lib("libopenblas.so.0");
    if (ob) {
        openblas_sgemm = (CblasSgemm)dlsym(ob, "cblas_sgemm");
        openblas_corename = (char *(*)(void))dlsym(ob, "openblas_get_corename");
        void (*set)(int) = (void (*)(int))dlsym(ob, "openblas_set_num_threads");
        if (set) set(threads);
    }
    void *bl = open_lib("libblis.so.4");
    if (bl) {
        blis_sgemm = (CblasSgemm)dlsym(bl, "cblas_sgemm");
        blis_arch_query = (int (*)(void))dlsym(bl, "bli_arch_query_id");
        blis_arch_string = (const char *(*)(int))dlsym(bl, "bli_arch_string");
        void (*set)(long) = (void (*)(long))dlsym(bl, "bli_thread_set_num_threads");
        if (set) set(threads);
    }
}

static void run_product(const Backend *be, const Product *p, const float *A, const float *B, float *C) {
    int lda = p->ta == 'N' ? p->K : p->M, ldb = p->tb == 'N' ? p->N : p->K;
    if (be->cblas)
        be->cblas(CBLAS_ROW_MAJOR, p->ta == 'N' ? CBLAS_NO_TRANS : CBLAS_TRANS,
                  p->tb == 'N' ? CBLAS_NO_TRANS : CBLAS_TRANS, p->M, p->N, p->K, 1.0f, A, lda, B, ldb, p->beta, C,
                  p->N);
    else
        dnnl_sgemm(p->ta, p->tb, p->M, p->N, p->K, 1.0f, A, lda, B, ldb, p->beta, C, p->N);
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

/* Operands large enough for every product; each thread has its own set. */
typedef struct {
    float *A, *B, *C;
} Operands;

static size_t largest(const Product *p, char which) {
    size_t n = 0;
    for (; p->count; p++) {
        size_t s = which == 'A' ? (size_t)p->M * p->K : which == 'B' ? (size_t)p->K * p->N : (size_t)p->M * p->N;
        n = s > n ? s : n;
    }
    return n;
}

static Operands operands_make(const Product *p) {
    Operands o = {malloc(largest(p, 'A') * 4), malloc(largest(p, 'B') * 4), malloc(largest(p, 'C') * 4)};
    for (size_t i = 0; i < largest(p, 'A'); i++) o.A[i] = (float)(i % 13) * 0.01f;
    for (size_t i = 0; i < largest(p, 'B'); i++) o.B[i] = (float)(i % 7) * 0.01f;
    memset(o.C, 0, largest(p, 'C') * 4);
    return o;
}

/* Seconds for one pass over the workload: every product `count` times. */
static double workload_seconds(const Backend *be, const Workload *w, Operands *ops) {
    double t0 = now_s();
    if (w->in_parallel) {
        /* as the attention kernel does: the tiles split over threads, each a small product */
#pragma omp parallel
        {
            Operands *o = &ops[omp_get_thread_num()];
            for (const Product *p = w->p; p->count; p++)
#pragma omp for schedule(dynamic)
                for (int i = 0; i < p->count; i++) run_product(be, p, o->A, o->B, o->C);
        }
    } else {
        for (const Product *p = w->p; p->count; p++)
            for (int i = 0; i < p->count; i++) run_product(be, p, ops[0].A, ops[0].B, ops[0].C);
    }
    return now_s() - t0;
}

static double workload_flops(const Workload *w) {
    double f = 0;
    for (const Product *p = w->p; p->count; p++) f += 2.0 * p->count * p->M * (double)p->N * p->K;
    return f;
}

int main(int argc, char **argv) {
    int threads = 2, repeats = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--repeats")) repeats = atoi(argv[i + 1]);
    }
    omp_set_num_threads(threads);
    load_backends(threads);
    const Backend backends[] = {{"openblas", openblas_sgemm, openblas_kernels},
                                {"blis", blis_sgemm, blis_kernels},
                                {"onednn", NULL, onednn_kernels}};
    const char *coretype = getenv("OPENBLAS_CORETYPE");
    for (size_t wi = 0; wi < sizeof WORKLOADS / sizeof *WORKLOADS; wi++) {
        const Workload *w = &WORKLOADS[wi];
        Operands ops[64];
        for (int t = 0; t < threads; t++) ops[t] = operands_make(w->p);
        for (size_t bi = 0; bi < sizeof backends / sizeof *backends; bi++) {
            const Backend *be = &backends[bi];
            if (!strcmp(be->name, "openblas") ? !openblas_sgemm : !strcmp(be->name, "blis") ? !blis_sgemm : 0)
                continue;
            double t[64];
            workload_seconds(be, w, ops); /* warm-up: caches, threads, JIT kernels */
            for (int r = 0; r < repeats; r++) t[r] = workload_seconds(be, w, ops);
            qsort(t, (size_t)repeats, sizeof *t, cmp_double);
            double med = t[repeats / 2], gflops = workload_flops(w) / med * 1e-9;
            fprintf(stderr, "%-16s %-9s %-18s %9.4f s  %7.1f GFLOP/s  [%.4f-%.4f]\n", w->name, be->name, be->kernels(),
                    med, gflops, t[0], t[repeats - 1]);
            printf("{\"workload\": \"%s\", \"backend\": \"%s\", \"kernels\": \"%s\", \"openblas_coretype\": \"%s\", "
                   "\"threads\": %d, \"median_s\": %.6f, \"min_s\": %.6f, \"max_s\": %.6f, \"gflops\": %.2f}\n",
                   w->name, be->name, be->kernels(), coretype ? coretype : "", threads, med, t[0], t[repeats - 1],
                   gflops);
            fflush(stdout);
        }
        for (int t = 0; t < threads; t++) free(ops[t].A), free(ops[t].B), free(ops[t].C);
    }
    return 0;
}
