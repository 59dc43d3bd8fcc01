/* gemm_onednn.c — the oneDNN backend of gemm.h (the default build).
 *
 * fp32 products go to dnnl_sgemm, which measured fastest on seqlab's shapes
 * on both machines of the project's kind (docs/benchmarks.md) and does not
 * depend on OPENBLAS_CORETYPE; it runs on the OpenMP threads of the caller
 * (Debian builds oneDNN with the OpenMP runtime), single-threaded inside a
 * parallel region.
 *
 * bf16 products go through oneDNN's matmul primitive with bf16 inputs and an
 * fp32 destination (AMX or AVX512-BF16 kernels): the inputs are rounded to
 * bfloat16 into a buffer kept here, compact but in their stored orientation
 * (a transposed operand is described to oneDNN by its strides). A primitive
 * is made once per product shape and kept; a training step reuses the same
 * few dozen shapes. (oneDNN 2.6's fpmath mode "bf16" on fp32 inputs measured
 * no faster than fp32, so the rounding is done here.) */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "gemm_backend.h"

static Precision precision = PRECISION_FP32;

/* An internal invariant broke (bad arguments from seqlab's own code): no
 * caller could recover, so stop with the place named. */
static void check(dnnl_status_t s, const char *what) {
    if (s == dnnl_success) return;
    fprintf(stderr, "seqlab: internal error: oneDNN %s failed (status %d)\n", what, (int)s);
    abort();
}

static void sgemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                  const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    check(dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', (dnnl_dim_t)M, (dnnl_dim_t)N, (dnnl_dim_t)K, alpha,
                     A, (dnnl_dim_t)lda, B, (dnnl_dim_t)ldb, beta, C, (dnnl_dim_t)ldc),
          "sgemm");
}

/* ---- bf16: rounding, buffers, primitives ---- */

/* dst (rows x cols, compact) = src (rows x cols, leading dimension ld). */
static void bf16_pack(uint16_t *dst, const float *src, size_t rows, size_t cols, size_t ld) {
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        const float *s = src + r * ld;
        uint16_t *d = dst + r * cols;
#pragma omp simd
        for (size_t c = 0; c < cols; c++) d[c] = bf16_round(s[c]);
    }
}

/* The rounded inputs of the product running now; grows to the largest. */
static uint16_t *packed;
static size_t packed_cap;

static uint16_t *packed_room(size_t n) {
    if (n <= packed_cap) return packed;
    uint16_t *p = realloc(packed, n * sizeof *p);
    if (!p) return NULL;
    packed = p;
    packed_cap = n;
    return p;
}

typedef struct {
    bool trans_a, trans_b;
    size_t M, N, K, ldc;
    float alpha, beta;
} Shape;

typedef struct {
    Shape shape;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t a, b, c;
} Matmul;

enum { MAX_MATMULS = 256 };
static Matmul matmuls[MAX_MATMULS];
static int n_matmuls;
static dnnl_engine_t engine;
static dnnl_stream_t stream;

/* A compact (rows x cols) operand seen as the logical (m x k) matrix op(X). */
static void operand_desc(dnnl_memory_desc_t *md, bool trans, size_t m, size_t k, dnnl_data_type_t type) {
    dnnl_dims_t dims = {(dnnl_dim_t)m, (dnnl_dim_t)k};
    dnnl_dims_t strides = {trans ? 1 : (dnnl_dim_t)k, trans ? (dnnl_dim_t)m : 1};
    check(dnnl_memory_desc_init_by_strides(md, 2, dims, type, strides), "memory descriptor");
}

static Matmul *matmul_make(const Shape *s) {
    if (!engine) {
        check(dnnl_engine_create(&engine, dnnl_cpu, 0), "engine");
        check(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags), "stream");
    }
    if (n_matmuls == MAX_MATMULS) { /* more shapes than a model uses: start the cache afresh */
        for (int i = 0; i < n_matmuls; i++) dnnl_primitive_destroy(matmuls[i].prim);
        n_matmuls = 0;
    }
    Matmul *mm = &matmuls[n_matmuls];
    mm->shape = *s;
    operand_desc(&mm->a, s->trans_a, s->M, s->K, dnnl_bf16);
    operand_desc(&mm->b, s->trans_b, s->K, s->N, dnnl_bf16);
    dnnl_dims_t dims = {(dnnl_dim_t)s->M, (dnnl_dim_t)s->N}, strides = {(dnnl_dim_t)s->ldc, 1};
    check(dnnl_memory_desc_init_by_strides(&mm->c, 2, dims, dnnl_f32, strides), "memory descriptor");
    dnnl_matmul_desc_t desc;
    check(dnnl_matmul_desc_init(&desc, &mm->a, &mm->b, NULL, &mm->c), "matmul descriptor");
    dnnl_primitive_attr_t attr;
    check(dnnl_primitive_attr_create(&attr), "attributes");
    if (s->alpha != 1.0f) check(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &s->alpha), "output scale");
    if (s->beta != 0.0f) { /* C = alpha A B + beta C: the sum post-op */
        dnnl_post_ops_t post;
        check(dnnl_post_ops_create(&post), "post-ops");
        check(dnnl_post_ops_append_sum(post, s->beta), "sum post-op");
        check(dnnl_primitive_attr_set_post_ops(attr, post), "post-ops");
        dnnl_post_ops_destroy(post);
    }
    dnnl_primitive_desc_t pd;
    check(dnnl_primitive_desc_create(&pd, &desc, attr, engine, NULL), "matmul");
    check(dnnl_primitive_create(&mm->prim, pd), "matmul primitive");
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    n_matmuls++;
    return mm;
}

static Matmul *matmul_for(const Shape *s) {
    for (int i = 0; i < n_matmuls; i++)
        if (!memcmp(&matmuls[i].shape, s, sizeof *s)) return &matmuls[i];
    return matmul_make(s);
}

static void run_matmul(Matmul *mm, void *a, void *b, float *c) {
    dnnl_memory_t ma, mb, mc;
    check(dnnl_memory_create(&ma, &mm->a, engine, a), "memory");
    check(dnnl_memory_create(&mb, &mm->b, engine, b), "memory");
    check(dnnl_memory_create(&mc, &mm->c, engine, c), "memory");
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
    check(dnnl_primitive_execute(mm->prim, stream, 3, args), "matmul");
    check(dnnl_stream_wait(stream), "stream");
    dnnl_memory_destroy(ma);
    dnnl_memory_destroy(mb);
    dnnl_memory_destroy(mc);
}

/* The product with both inputs rounded to bf16; false when it cannot run so
 * (no room for the rounded inputs), and the caller runs it in fp32. */
static bool bf16_gemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, float alpha, const float *A,
                      size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    uint16_t *a = packed_room(M * K + K * N), *b = a + M * K;
    if (!a) return false;
    bf16_pack(a, A, trans_a ? K : M, trans_a ? M : K, lda);
    bf16_pack(b, B, trans_b ? N : K, trans_b ? K : N, ldb);
    Shape s = {trans_a, trans_b, M, N, K, ldc, alpha, beta};
    run_matmul(matmul_for(&s), a, b, C);
    return true;
}

/* ---- gemm_backend.h ---- */

void backend_gemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                  const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    bool large = M >= GEMM_BF16_MIN && N >= GEMM_BF16_MIN && K >= GEMM_BF16_MIN;
    if (precision == PRECISION_BF16 && large && !omp_in_parallel() &&
        bf16_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
        return;
    sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static const char *isa_name(dnnl_cpu_isa_t isa) {
    switch (isa) {
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_sse41: return "sse41";
    default: return "unknown";
    }
}

/* bfloat16 products at full speed need AVX512-BF16 (or AMX on top of it). */
static bool cpu_has_bf16(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return ((unsigned)isa & (unsigned)dnnl_cpu_isa_avx512_core_bf16) == (unsigned)dnnl_cpu_isa_avx512_core_bf16;
}

int gemm_set_precision(Precision p, Error *err) {
    if (p == PRECISION_BF16 && !cpu_has_bf16())
        return err_set(err, "key 'precision': bf16 needs a CPU with AVX512-BF16; oneDNN finds only %s here; "
                            "use precision: fp32",
                       isa_name(dnnl_get_effective_cpu_isa()));
    precision = p;
    return 0;
}

Precision gemm_get_precision(void) { return precision; }

void gemm_set_threads(int n) { (void)n; /* oneDNN asks OpenMP at every call */ }

const char *gemm_backend(void) {
    static char name[96];
    const dnnl_version_t *v = dnnl_version();
    snprintf(name, sizeof name, "oneDNN %d.%d.%d: %s on %s", v->major, v->minor, v->patch,
             precision == PRECISION_BF16 ? "sgemm + bf16 matmul" : "sgemm", isa_name(dnnl_get_effective_cpu_isa()));
    return name;
}
