/* adaptive_span.c — the attention of the adaptive-span codebase (Sukhbaatar
 * et al. 2019), the `adaptive_span` mixer of the Brainformer seed (spec
 * moe-brainformer.md §2.2-§3): each token attends to the attn_span tokens
 * before it — the block's own and those the stream's memory keeps from
 * earlier blocks — with relative position embeddings key_pe (one tensor for
 * every layer and head), and, with adapt_span, each head's learned soft span
 * mask z, the span loss lambda S mean(z) and the trimming of the distances
 * no head reaches (in multiples of 64).
 *
 * Projections proj_query, proj_key, proj_val, proj_out (C x C, no bias) as
 * the original; keys and values are projected from [memory; block] every
 * block, the memory holding the layer's input states (no gradient flows into
 * it). The memory is the stream's (Ctx memory / memory_next, kept by the
 * model between blocks); without one a block starts from an empty past,
 * which is what the original's zero cache gives at a stream's start. */
#include <math.h>
#include <string.h>

#include "../core/gemm.h"
#include "../nn/module.h"
#include "../ops/ops.h"

typedef struct {
    Module base;
    int n_head;
    int attn_span;
    bool adapt_span, adapt_span_cache;
    double adapt_span_loss, adapt_span_ramp, adapt_span_init, dropout;
    char init[CFG_NAME];
    double init_std;
    size_t H, d, S;
    float *wq, *dwq, *wk, *dwk, *wv, *dwv, *wo, *dwo; /* (C, C) each */
    float *z, *dz;                                   /* (H): the span fractions, in [0, 1] */
    float *key_pe, *dkey_pe;                         /* (d, S), shared by every adaptive_span module */
} AdaptiveSpan;

static const ModuleKey adaptive_span_keys[] = {
    MODULE_KEY(AdaptiveSpan, n_head, KEY_INT, "4", NULL, "n_head", 1, 4096, "attention heads"),
    MODULE_KEY(AdaptiveSpan, attn_span, KEY_INT, "1024", NULL, NULL, 1, 1 << 20,
               "the longest distance a token attends to (S; the original's --attn-span)"),
    MODULE_KEY(AdaptiveSpan, adapt_span, KEY_BOOL, "true", NULL, NULL, 0, -1,
               "learn each head's span with the soft mask (--adapt-span); false: every head sees attn_span"),
    MODULE_KEY(AdaptiveSpan, adapt_span_loss, KEY_FLOAT, "0", NULL, NULL, 0, 1e6,
               "lambda of the span loss lambda S mean(z) (--adapt-span-loss)"),
    MODULE_KEY(AdaptiveSpan, adapt_span_ramp, KEY_FLOAT, "32", NULL, NULL, 1, 1e6, "length R of the mask's ramp"),
    MODULE_KEY(AdaptiveSpan, adapt_span_init, KEY_FLOAT, "0", NULL, NULL, 0, 1, "initial z of every head"),
    MODULE_KEY(AdaptiveSpan, adapt_span_cache, KEY_BOOL, "false", NULL, NULL, 0, -1,
               "keep only the positions the spans reach (+64) in the memory (--adapt-span-cache)"),
    MODULE_KEY(AdaptiveSpan, dropout, KEY_FLOAT, "0", NULL, "dropout", 0, 0.999, "dropout on the attention weights"),
    MODULE_KEY(AdaptiveSpan, init, KEY_CHOICE, "pytorch", INIT_SCHEMES, NULL, 0, -1,
               "the projections' init (pytorch: nn.Linear's U(+-1/sqrt(C)), the original's); key_pe N(0, 1)"),
    MODULE_KEY(AdaptiveSpan, init_std, KEY_FLOAT, "0.02", NULL, "init_std", 1e-12, 1e6, "std of the seqlab init"),
    {0}};

/* Per use. */
typedef struct {
    const float *x;   /* borrowed: the block (B, M, C) */
    float *kv_in;     /* (B, Se + M, C): [the memory's last Se positions; the block] */
    float *q, *k, *v; /* (B, M, C), (B, Se + M, C) x 2 */
    float *ao;        /* (B, M, C): attention output, heads concatenated */
    float *stats;     /* (B, H, M, 3) */
    float *mask;      /* (H, S): the first Se columns used */
    size_t Se;
} SpanFrame;

enum { SITE_DROPATT = 0, TRIM_STEP = 64 };

static int adaptive_span_configure(Module *m, const ModuleSpec *spec, Error *err) {
    AdaptiveSpan *a = (AdaptiveSpan *)m;
    (void)spec;
    if (m->C_in % (size_t)a->n_head)
        return err_set(err, "%s: width %zu is not divisible by n_head %d", m->path, m->C_in, a->n_head);
    a->H = (size_t)a->n_head;
    a->d = m->C_in / a->H;
    a->S = (size_t)a->attn_span;
    return 0;
}

static void adaptive_span_params(Module *m, ParamSet *ps) {
    AdaptiveSpan *a = (AdaptiveSpan *)m;
    const size_t C = m->C_in;
    params_add(ps, "proj_query.weight", &a->wq, &a->dwq, GROUP_LINEAR, 2, C, C);
    params_add(ps, "proj_key.weight", &a->wk, &a->dwk, GROUP_LINEAR, 2, C, C);
    params_add(ps, "proj_val.weight", &a->wv, &a->dwv, GROUP_LINEAR, 2, C, C);
    params_add(ps, "proj_out.weight", &a->wo, &a->dwo, GROUP_LINEAR, 2, C, C);
    params_add(ps, "adaptive_span.current_val", &a->z, &a->dz, GROUP_OTHER, 1, a->H);
    params_add_shared(ps, "key_pe", &a->key_pe, &a->dkey_pe, GROUP_OTHER, 2, a->d, a->S);
}

static void adaptive_span_init(Module *m, uint64_t seed) {
    AdaptiveSpan *a = (AdaptiveSpan *)m;
    const size_t C = m->C_in;
    float *w[4] = {a->wq, a->wk, a->wv, a->wo};
    for (int i = 0; i < 4; i++) module_init_dense(m, w[i], C, C, a->init, a->init_std, i == 3, 0, seed, i);
    for (size_t h = 0; h < a->H; h++) a->z[h] = (float)a->adapt_span_init;
    /* one stream for the shared tensor: every module writes the same values */
    init_normal(a->key_pe, a->d * a->S, 1.0f, seed, module_scope("key_pe"), 0);
}

static void adaptive_span_layout(Module *m, Frame *fr, size_t B, size_t T, Arena *ar) {
    AdaptiveSpan *a = (AdaptiveSpan *)m;
    SpanFrame *f = fr->data;
    const size_t C = m->C_in, W = a->S + T;
    f->kv_in = arena_take(ar, B * W * C);
    f->q = arena_take(ar, B * T * C);
    f->k = arena_take(ar, B * W * C);
    f->v = arena_take(ar, B * W * C);
    f->ao = arena_take(ar, B * T * C);
    f->stats = arena_take(ar, B * a->H * T * 3);
    f->mask = arena_take(ar, a->H * a->S);
}

/* The kernel's scratch at the full span, then dao (B M C), dk and dv (B W C
 * each), the mask's gradient (H S). */
static size_t adaptive_span_scratch(Module *m, size_t B, size_t T) {
    AdaptiveSpan *a = (AdaptiveSpan *)m;
    const SpanShape s = {.B = B, .M = T, .H = a->H, .d = a->d, .S = a->S, .Se = a->S};
    const size_t C = m->C_in, W = a->S + T;
    return span_attention_scratch(&s) + B * T * C + 2 * B * W * C + a->H * a->S;
}

/* Memory floats per batch row: the last S input states. */
static size_t adaptive_span_memory(Module *m) {
    AdaptiveSpan *a = (AdaptiveSpan *)m;
    return a->S * m->C_in;
}

/* The distances no head reaches are not computed (§3.3): Se = S - trim,
 * trim a multiple of 64 below S - (ceil(max z S) + R). */
static size_t span_in_use(const AdaptiveSpan *a) {
    if (!a->adapt_span) return a->S;
    float most = 0.0f;
    for (size_t h = 0; h < a->H; h++) most = fmaxf(most, a->z[h]);
    double reach = ceil((double)most * (double)a->S) + a->adapt_span_ramp;
    reach = reach < 0 ? 0 : reach > (double)a->S ? (double)a->S : reach;
    const double room = fmin((double)a->S - 1.0, (double)a->S - reach);
    const size_t trim = TRIM_STEP * (size_t)floor(room / TRIM_STEP);
    return a->S - trim;
}

/* The mask's value at column c of Se (distance Se - c) for head h, and the
 * unclamped u it comes from (its gradient in z is S / R for 0 <= u <= 1). */
static float mask_u(const AdaptiveSpan *a, size_t h, size_t c, size_t Se) {
    const double delta = (double)(Se - c);
    return (float)(((double)a->z[h] * (double)a->S - (delta - 1.0)) / a->adapt_span_ramp + 1.0);
}

/* The span loss is the module's, once per training pass however often a
 * Brainformer layer uses it (the original sums it over layers). */
static bool span_loss_here(const AdaptiveSpan *a, const Ctx *c) {
    return a->adapt_span && a->adapt_span_loss > 0 && c->aux && c->training && !c->repeat_use;
}

static void adaptive_span_forward(Module *m, Frame *fr, const float *x, float *y, const Ctx *c) {
    AdaptiveSpan *a = (AdaptiveSpan *)m;
    SpanFrame *f = fr->data;
    const size_t B = c->B, M = c->T, C = m->C_in, S = a->S;
    const size_t Se = f->Se = span_in_use(a), W = Se + M;
    f->x = x;
    /* [the memory's last Se positions; the block] */
    for (size_t b = 0; b < B; b++) {
        float *dst = f->kv_in + b * W * C;
        if (c->memory) memcpy(dst, c->memory + (b * S + (S - Se)) * C, Se * C * sizeof(float));
        else memset(dst, 0, Se * C * sizeof(float));
        memcpy(dst + Se * C, x + b * M * C, M * C * sizeof(float));
    }
    if (c->memory_next) {
        /* the next memory: the last S positions of [memory; the layer's input],
         * beyond the cache's size zero (what the original's shorter cache gives) */
        const size_t keep = a->adapt_span_cache ? (Se + TRIM_STEP < S ? Se + TRIM_STEP : S) : S;
        const float *src = c->memory_source ? c->memory_source : x;
        for (size_t b = 0; b < B; b++) {
            float *next = c->memory_next + b * S * C;
            const float *old = c->memory ? c->memory + b * S * C : NULL;
            for (size_t p = 0; p < S; p++) { /* position p of the new memory: p - S + M of [old; block] */
                float *row = next + p * C;
                if (p + keep < S) memset(row, 0, C * sizeof(float));
                else if (p + M >= S) memcpy(row, src + (b * M + (p + M - S)) * C, C * sizeof(float));
                else if (old) memcpy(row, old + (p + M) * C, C * sizeof(float));
                else memset(row, 0, C * sizeof(float));
            }
        }
    }
    linear_forward(f->q, x, a->wq, NULL, B * M, C, C);
    linear_forward(f->k, f->kv_in, a->wk, NULL, B * W, C, C);
    linear_forward(f->v, f->kv_in, a->wv, NULL, B * W, C, C);
    for (size_t h = 0; a->adapt_span && h < a->H; h++)
        for (size_t col = 0; col < Se; col++) f->mask[h * Se + col] = fminf(fmaxf(mask_u(a, h, col, Se), 0.0f), 1.0f);
    const SpanShape s = {.B = B, .M = M, .H = a->H, .d = a->d, .S = S, .Se = Se, .key_pe = a->key_pe,
                         .mask = a->adapt_span ? f->mask : NULL,
                         .dropout = ctx_dropout(c, SITE_DROPATT, (float)a->dropout, a->H * Se)};
    span_attention_forward(f->ao, f->stats, f->q, f->k, f->v, &s, c->scratch);
    linear_forward(y, f->ao, a->wo, NULL, B * M, C, C);
    if (span_loss_here(a, c)) {
        double mean = 0.0;
        for (size_t h = 0; h < a->H; h++) mean += a->z[h];
        c->aux->sum += a->adapt_span_loss * (double)S * mean / (double)a->H;
    }
}

static void adaptive_span_backward(Module *m, Frame *fr, const float *dy, float *dx, const Ctx *c) {
    AdaptiveSpan *a = (AdaptiveSpan *)m;
    SpanFrame *f = fr->data;
    const size_t B = c->B, M = c->T, C = m->C_in, S = a->S, Se = f->Se, W = Se + M;
    const SpanShape s = {.B = B, .M = M, .H = a->H, .d = a->d, .S = S, .Se = Se, .key_pe = a->key_pe,
                         .mask = a->adapt_span ? f->mask : NULL,
                         .dropout = ctx_dropout(c, SITE_DROPATT, (float)a->dropout, a->H * Se)};
    float *dao = c->scratch + span_attention_scratch(&s), *dk = dao + B * M * C, *dv = dk + B * W * C;
    float *dmask = dv + B * W * C;
    linear_backward(dao, a->dwo, NULL, dy, f->ao, a->wo, B * M, C, C, false);
    memset(dmask, 0, a->H * Se * sizeof(float));
    float *dq = f->ao; /* ao is done once dWo has it */
    span_attention_backward(dq, dk, dv, a->dkey_pe, a->adapt_span ? dmask : NULL, dao, f->q, f->k, f->v, f->stats, &s,
                            c->scratch);
    linear_backward(dx, a->dwq, NULL, dq, f->x, a->wq, B * M, C, C, false);
    /* keys and values: the gradient reaching the block's rows goes to dx, the memory's rows are detached */
    float *dkv = f->k; /* k is done once dk exists */
    linear_backward(dkv, a->dwk, NULL, dk, f->kv_in, a->wk, B * W, C, C, false);
    linear_backward(dkv, a->dwv, NULL, dv, f->kv_in, a->wv, B * W, C, C, true);
    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < M * C; i++) dx[b * M * C + i] += dkv[(b * W + Se) * C + i];
    if (!a->adapt_span) return;
    for (size_t h = 0; h < a->H; h++) {
        double g = 0.0;
        for (size_t col = 0; col < Se; col++) {
            const float u = mask_u(a, h, col, Se);
            if (u >= 0.0f && u <= 1.0f) g += (double)dmask[h * Se + col]; /* clamp passes its bounds' gradient */
        }
        a->dz[h] += (float)(g * (double)S / a->adapt_span_ramp);
        if (span_loss_here(a, c)) a->dz[h] += (float)(a->adapt_span_loss * (double)S / (double)a->H * c->aux->scale);
    }
}

/* After each optimizer update the spans go back into [0, 1] (§3.2). */
static void adaptive_span_after_update(Module *m) {
    AdaptiveSpan *a = (AdaptiveSpan *)m;
    for (size_t h = 0; h < a->H; h++) a->z[h] = fminf(fmaxf(a->z[h], 0.0f), 1.0f);
}

/* Token mixing beyond the projections: the band's Q K^T, Q key_pe and
 * weights V at the full span (trimming makes it less). */
static double adaptive_span_flops(Module *m, size_t B, size_t T, bool causal) {
    AdaptiveSpan *a = (AdaptiveSpan *)m;
    (void)causal;
    return 2.0 * 3.0 * (double)(B * T) * (double)a->S * (double)m->C_in;
}

const ModuleOps adaptive_span_module = {
    .name = "adaptive_span",
    .kind = "mixer",
    .size = sizeof(AdaptiveSpan),
    .keys = adaptive_span_keys,
    .configure = adaptive_span_configure,
    .params = adaptive_span_params,
    .init = adaptive_span_init,
    .frame_bytes = sizeof(SpanFrame),
    .layout = adaptive_span_layout,
    .scratch = adaptive_span_scratch,
    .forward = adaptive_span_forward,
    .backward = adaptive_span_backward,
    .memory_size = adaptive_span_memory,
    .after_update = adaptive_span_after_update,
    .flops = adaptive_span_flops,
};
