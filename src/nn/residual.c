/* residual.c — the wrapper around every sublayer of a trunk (`residual`):
 *   pre:   y = x + Dropout(M(Norm(x)))
 *   post:  y = Norm(x + Dropout(M(x)))          (FMMformer, Brainformer)
 * with Norm any of nn/norm.h (layernorm by default). The inner module M is
 * its child "mixer" or "ffn" (attached by the trunk, model.c), so the
 * parameters keep the names blocks.<i>.norm.* and blocks.<i>.mixer.*.
 *
 * Pre-norm uses do not keep Norm(x): they all write it into one shared
 * buffer of the plan, and backward computes it again from the saved
 * statistics, one cheap pass instead of B*T*C floats per use.
 * Generation runs the same code with one row and the inner module's step. */
#include <string.h>

#include "module.h"
#include "norm.h"

typedef struct {
    Module base;
    char place[CFG_NAME];   /* pre | post */
    char norm[CFG_NAME];    /* key: the normalisation */
    double dropout;
    char ln_init[CFG_NAME]; /* one | normal: weights 1, or N(1, 0.02) (the FMM trainer) */
    bool pre;
    Norm op;                /* the norm itself */
} Residual;

static const ModuleKey residual_keys[] = {
    MODULE_KEY(Residual, place, KEY_CHOICE, "pre", "pre|post", "norm", 0, -1,
               "norm before the module (pre) or after the residual add (post)"),
    MODULE_KEY(Residual, norm, KEY_CHOICE, "layernorm", NORM_CHOICES, NULL, 0, -1, "the normalisation"),
    MODULE_KEY(Residual, dropout, KEY_FLOAT, "0.1", NULL, "dropout", 0, 0.999, "dropout on the module's output"),
    MODULE_KEY(Residual, ln_init, KEY_CHOICE, "one", "one|normal", "ln_init",
               0, -1, "norm weights start at 1 (one) or ~ N(1, 0.02) (normal)"),
    {0}};

/* Per use: the residual stream in, the norm's statistics, and for post-norm
 * its input x + Dropout(M(x)). */
typedef struct {
    const float *x;  /* borrowed: input (B, T, C) */
    float *norm_io;  /* (B, T, C): pre: Norm(x), shared by every pre-norm use; post: the norm's input */
    float *stats;    /* the norm's statistics */
} ResidualFrame;

enum { SITE_RESIDUAL = 8 }; /* the inner module's dropout sites use 0..7 of the same use */

static int residual_configure(Module *m, const ModuleSpec *spec, Error *err) {
    Residual *r = (Residual *)m;
    (void)spec;
    r->pre = !strcmp(r->place, "pre");
    r->op.C = m->C_out;
    if (norm_parse(r->norm, &r->op.kind)) return err_set(err, "unknown norm '%s'", r->norm);
    return 0;
}

static void residual_params(Module *m, ParamSet *ps) { norm_params(&((Residual *)m)->op, ps, "norm"); }

static void residual_init(Module *m, uint64_t seed) {
    Residual *r = (Residual *)m;
    /* stream 100 of the use's scope: after the inner module's own */
    norm_init(&r->op, !strcmp(r->ln_init, "normal") ? 0.02f : 0.0f, seed, m->scope, 100);
}

static Frame *inner(Frame *f) { return &f->children[0]; }

static void residual_layout(Module *m, Frame *f, size_t B, size_t T, Arena *a) {
    Residual *r = (Residual *)m;
    ResidualFrame *rf = f->data;
    const size_t N = B * T;
    rf->norm_io = r->pre ? arena_shared(a, ARENA_SHARED_PRE_NORM, N * m->C_out) : arena_take(a, N * m->C_out);
    rf->stats = arena_take(a, norm_stats_floats(&r->op, N));
    module_layout(inner(f), B, T, a);
}

/* Scratch: the branch's output and gradient (B, T, C) each, then the inner
 * module's; a step needs 5 rows of C before the inner module's (step). */
static size_t residual_scratch(Module *m, size_t B, size_t T) {
    const size_t rows = 2 * B * T > 5 ? 2 * B * T : 5;
    return rows * m->C_out + module_scratch(m->children[0], B, T);
}

/* Pre-norm: the inner module sees Norm(x), and a memory keeps what it sees
 * (its own input); post-norm: x itself, and a memory keeps the layer's input. */
static Ctx inner_ctx(const Ctx *c, const Residual *r) {
    Ctx in = *c;
    in.scratch = c->scratch + 2 * c->B * c->T * r->base.C_out;
    if (r->pre) in.memory_source = NULL;
    return in;
}

/* The inner module on one input: a forward over (B, T), or one step. */
typedef struct {
    float *state;
    size_t t;
    bool step;
} Run;

static void run_inner(Frame *f, const float *x, float *y, const Ctx *c, const Run *run) {
    if (run->step) module_step(inner(f), run->state, run->t, x, y, c);
    else module_forward(inner(f), x, y, c);
}

/* Forward and step share this: N = B*T rows, the norm statistics into stats. */
static void wrap(Residual *r, Frame *f, ResidualFrame *rf, const float *x, float *y, const Ctx *c, const Run *run) {
    const size_t N = c->B * c->T, C = r->base.C_out;
    float *branch = c->scratch;
    const Ctx in = inner_ctx(c, r);
    const DropoutKey drop = ctx_dropout(c, SITE_RESIDUAL, (float)r->dropout, C);
    if (r->pre) {
        norm_forward(&r->op, rf->norm_io, rf->stats, x, N, c->training);
        run_inner(f, rf->norm_io, branch, &in, run);
        dropout_forward(branch, branch, N * C, &drop);
#pragma omp parallel for simd schedule(static) if (N > 1)
        for (size_t i = 0; i < N * C; i++) y[i] = x[i] + branch[i];
    } else {
        run_inner(f, x, branch, &in, run);
        dropout_forward(branch, branch, N * C, &drop);
#pragma omp parallel for simd schedule(static) if (N > 1)
        for (size_t i = 0; i < N * C; i++) rf->norm_io[i] = x[i] + branch[i];
        norm_forward(&r->op, y, rf->stats, rf->norm_io, N, c->training);
    }
}

static void residual_forward(Module *m, Frame *f, const float *x, float *y, const Ctx *c) {
    ResidualFrame *rf = f->data;
    rf->x = x;
    const Run run = {.step = false};
    wrap((Residual *)m, f, rf, x, y, c, &run);
}

/* dx may be dy itself: the trunk passes one buffer, d x_out in, d x_in out. */
static void residual_backward(Module *m, Frame *f, const float *dy, float *dx, const Ctx *c) {
    Residual *r = (Residual *)m;
    ResidualFrame *rf = f->data;
    const size_t N = c->B * c->T, C = m->C_out;
    float *dbranch = c->scratch, *dtmp = dbranch + N * C;
    const Ctx in = inner_ctx(c, r);
    const DropoutKey drop = ctx_dropout(c, SITE_RESIDUAL, (float)r->dropout, C);
    if (r->pre) {
        /* the module's input again (another use's forward wrote the shared buffer since) */
        norm_apply(&r->op, rf->norm_io, rf->stats, rf->x, N);
        dropout_backward(dbranch, dy, N * C, &drop);
        module_backward(inner(f), dbranch, dtmp, &in);
        if (dx != dy) memcpy(dx, dy, N * C * sizeof(float)); /* the residual passes dy through */
        norm_backward(&r->op, dx, dtmp, rf->x, rf->stats, N, c->training, true);
    } else {
        norm_backward(&r->op, dtmp, dy, rf->norm_io, rf->stats, N, c->training, false);
        dropout_backward(dbranch, dtmp, N * C, &drop);
        module_backward(inner(f), dbranch, dx, &in);
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < N * C; i++) dx[i] += dtmp[i]; /* + the residual path */
    }
}

static size_t residual_state_size(Module *m, size_t max_T) { return module_state_size(m->children[0], max_T); }

/* One row: the forward's code with B = T = 1 and the inner module's step.
 * Scratch: the norm's input or output (C) and statistics (up to 2C), then
 * what wrap() takes (the branch, C, skipped to 2C) and the inner module's. */
static void residual_step(Module *m, Frame *f, float *state, size_t t, const float *x, float *y, const Ctx *c) {
    const size_t C = m->C_out;
    ResidualFrame rf = {.x = x, .norm_io = c->scratch, .stats = c->scratch + C};
    Ctx one = *c;
    one.B = one.T = 1;
    one.training = false;
    one.scratch = c->scratch + 3 * C;
    const Run run = {.state = state, .t = t, .step = true};
    wrap((Residual *)m, f, &rf, x, y, &one, &run);
}

const ModuleOps residual_module = {
    .name = "residual",
    .kind = "wrapper",
    .size = sizeof(Residual),
    .keys = residual_keys,
    .configure = residual_configure,
    .params = residual_params,
    .init = residual_init,
    .frame_bytes = sizeof(ResidualFrame),
    .layout = residual_layout,
    .scratch = residual_scratch,
    .forward = residual_forward,
    .backward = residual_backward,
    .state_size = residual_state_size,
    .step = residual_step,
};
