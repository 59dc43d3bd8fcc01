/* module.h — the interface every module of a model fills in: token mixers
 * (softmax, linear, band, fmm, dwconv, ...), feed-forwards (mlp, ...), the
 * residual wrapper around them, and modules made of other modules.
 *
 * A module maps x (B, T, C_in) to y (B, T, C_out) (C_in = C_out = C for the
 * sublayers of a trunk). It is built from its own section of the config (its
 * key table, nn/keys.h), declares its parameters under its path, and keeps
 * nothing of a forward pass in itself: what backward needs lives in a Frame,
 * one per place the module runs at, so one module (one set of weights) can
 * run at several positions of an architecture.
 *
 *     Module *m = module_build(&spec, &err);    // keys read and checked, children built
 *     module_params(m, &paramset);             // names "<path>.<param>", groups
 *     params_allocate(&paramset, &err);
 *     module_init(m, seed);                    // initial values, as the paper does it
 *     Frame *f = frame_create(m, "blocks.3", &err);   // one per use
 *     module_layout(f, B, T, &arena);          // saved activations (twice: count, point)
 *     module_forward(f, x, y, &ctx);           // x must stay untouched until backward
 *     module_backward(f, dy, dx, &ctx);        // writes dx, adds (+=) parameter grads
 *     module_step(f, state, t, x_t, y_t, &ctx); // optional: one token of generation
 *
 * Paths and randomness. A module's path ("blocks.3.mixer") prefixes its
 * parameter names and gives its RNG scope: init streams are keyed by
 * (scope, index), dropout streams by (use scope, site, step), so a child
 * module or a second use never shares a stream with another and nothing is
 * numbered by hand across files (nn/module.c: module_scope).
 *
 * Shape letters used in comments across src/: B batch, T sequence length,
 * C model width (d_model), H heads, d head width (d_head), HD = H*d, F FFN
 * width (d_inner), V vocabulary, N state size, E experts, W band or kernel
 * width, M landmarks, K classes.
 */
#ifndef SEQLAB_MODULE_H
#define SEQLAB_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/arena.h"
#include "../core/config.h"
#include "../core/error.h"
#include "../core/params.h"
#include "../ops/ops.h"
#include "keys.h"

enum { MODULE_PATH = 96, MODULE_MAX_CHILDREN = 8 };

/* ---- per-call context ---- */

/* An auxiliary loss that modules add to the objective (a load-balance or
 * span penalty), a mean over the forward's tokens: forward adds weight *
 * value to `sum`, backward uses weight * `scale` as the gradient of its
 * value. `scale` is the share of the step one forward is (1 / batch_split),
 * so the step's auxiliary loss is scale * sum, added to the objective's mean
 * and reported apart from it. */
typedef struct {
    double sum;
    float scale;
} AuxLoss;

/* Per-layer scalars (expert load, activation rates) a training step logs:
 * the sum and count of each name; the trainer reports the means. */
enum { STATS_MAX = 1024 };
typedef struct {
    char name[STATS_MAX][128];
    double sum[STATS_MAX];
    uint64_t count[STATS_MAX];
    int n;
} Stats;

/* What forward, backward and step need besides x and the module. */
typedef struct {
    size_t B, T;
    bool training;          /* dropout active */
    bool causal;            /* position t sees only positions <= t */
    uint64_t seed, step;    /* run seed and optimizer step: key dropout masks */
    uint64_t row0;          /* first row of this micro-batch within the step's batch: masks are
                               indexed by batch row, so batch_split does not change them */
    uint64_t scope;         /* RNG scope of the running use; set by module_forward & co */
    const char *path;       /* borrowed: the running use's path (statistics are named after it) */
    const float *mask;      /* borrowed (B, T): 1 real token, 0 padding; NULL: every token is real */
    const int32_t *lengths; /* borrowed (B): real tokens at the start of each row; NULL: all T */
    AuxLoss *aux;           /* borrowed, or NULL: no auxiliary losses */
    Stats *stats;           /* borrowed, or NULL: nothing is recorded */
    float *scratch;         /* borrowed: at least module_scratch(m, B, T) floats */
    /* borrowed, or NULL: the stream's memory of this sublayer for the batch
     * rows of this forward (module_memory_size floats per row), what its
     * earlier blocks left; and where this block leaves the next one (NULL:
     * nothing to leave, as for a later use of a shared sublayer, which reads
     * the same memory as the first). Without a memory a block starts from an
     * empty past. */
    const float *memory;
    float *memory_next;
    const float *memory_source; /* borrowed, or NULL (x): the block's rows the next memory keeps — the
                                   layer's input, which a sublayer later in its layer does not see */
    bool repeat_use;        /* a later use of a shared sublayer: what belongs to the module once per pass (the
                               span loss of its parameters) is not added again */
    size_t max_T;           /* steps: the positions the state was sized for (state_size(max_T)) */
} Ctx;

/* ---- modules ---- */

typedef struct Module Module;
typedef struct Frame Frame;

typedef struct {
    const char *name;         /* registry name: "softmax" */
    const char *kind;         /* "mixer" | "ffn" | "wrapper" | ...: which sections may name it */
    bool owns_residual;       /* a whole layer with its own residual and norm (MEGA, SeqBoat): the
                                 trunk runs it without the residual wrapper */
    size_t size;              /* sizeof the module's own struct, which starts with a Module */
    const ModuleKey *keys;    /* its key table (fields of that struct), ending with a zero row */
    /* After the keys are read: derived values, cross-key checks, children
     * (module_add_child). NULL: nothing to do. */
    int (*configure)(Module *m, const ModuleSpec *spec, Error *err);
    /* Frees what configure allocated (module_free calls it). NULL: nothing. */
    void (*destroy)(Module *m);
    void (*params)(Module *m, ParamSet *ps);
    void (*init)(Module *m, uint64_t seed);
    size_t frame_bytes;       /* sizeof the module's per-use struct (0: none) */
    /* Points the per-use struct's buffers into the arena (children's too). */
    void (*layout)(Module *m, Frame *f, size_t B, size_t T, Arena *a);
    /* Temporary floats forward/backward/step need at this shape. */
    size_t (*scratch)(Module *m, size_t B, size_t T);
    void (*forward)(Module *m, Frame *f, const float *x, float *y, const Ctx *c);
    void (*backward)(Module *m, Frame *f, const float *dy, float *dx, const Ctx *c);
    /* Generation: state_size(max_T) floats of recurrent state or cache per
     * sequence, all zero when a generation starts (t = 0: the generator
     * clears them); step consumes token t's input row and writes its output
     * row. NULL when the module cannot run one token at a time. */
    size_t (*state_size)(Module *m, size_t max_T);
    void (*step)(Module *m, Frame *f, float *state, size_t t, const float *x, float *y, const Ctx *c);
    /* Floats per batch row the module keeps between the blocks of a stream
     * (Ctx memory). NULL: none. */
    size_t (*memory_size)(Module *m);
    /* After every optimizer update: what keeps parameters in their domain
     * (the adaptive span's z in [0, 1]). NULL: nothing. */
    void (*after_update)(Module *m);
    /* Forward FLOPs beyond the parameter products (2 per weight per token):
     * the token mixing itself, for seqlab bench; negative where a token
     * meets only some of the weights (a mixture of experts). NULL: none. */
    double (*flops)(Module *m, size_t B, size_t T, bool causal);
} ModuleOps;

struct Module {
    const ModuleOps *ops;
    char path[MODULE_PATH];   /* "blocks.3.mixer": prefix of its parameter names */
    uint64_t scope;           /* RNG scope of its init draws (module_scope of the path) */
    size_t C_in, C_out;       /* widths of x and y */
    Module *children[MODULE_MAX_CHILDREN]; /* owned */
    const char *child_names[MODULE_MAX_CHILDREN];
    int n_children;
};

/* One place a module runs at. Frames of a module's children hang below its
 * own in child order, so a module reaches its child's frame as children[i]. */
struct Frame {
    Module *module;           /* borrowed */
    char path[MODULE_PATH];   /* "blocks.5": the use, named after its position */
    uint64_t scope;           /* RNG scope of its dropout masks */
    void *data;               /* owned: the module's per-use struct (ops->frame_bytes) */
    Frame *children;          /* owned: one per child of the module */
};

/* Builds the module a spec names (registry lookup, keys, configure,
 * children). Returns NULL with a message naming the section and key. */
Module *module_build(const ModuleSpec *spec, Error *err);
void module_free(Module *m);
/* Builds child `name` of parent, a module of registry `kind`, from the
 * spec's subsection `name` (e.g. mixer.filter: its `name` key chooses the
 * module, else default_module); path "<parent path>.<name>". For a parent's
 * configure; the parent owns it. */
Module *module_add_child(Module *parent, const ModuleSpec *spec, const char *name, const char *kind,
                         const char *default_module, size_t C_in, size_t C_out, Error *err);

/* The same reading subsection `section` under the path suffix `name`
 * (several children of one configuration: "filter" -> "filter.0",
 * "filter.1"), with `defaults` ("key=value;...", or NULL) for the child's
 * keys that its section does not set. `name` must start with `section`
 * followed by a dot or its end, and must outlive the parent (a string
 * literal or a field of the parent). */
Module *module_add_child_at(Module *parent, const ModuleSpec *spec, const char *section, const char *name,
                            const char *kind, const char *default_module, const char *defaults, size_t C_in,
                            size_t C_out, Error *err);

/* Makes `child` (built by the caller, path "<parent path>.<name>") the
 * parent's next child; the parent owns it from now on. */
int module_attach_child(Module *parent, const char *name, Module *child, Error *err);

/* Declares the parameters of m and its children (prefix: their paths). */
void module_params(Module *m, ParamSet *ps);
void module_init(Module *m, uint64_t seed);

Frame *frame_create(Module *m, const char *path, Error *err);
void frame_free(Frame *f);
void module_layout(Frame *f, size_t B, size_t T, Arena *a);
size_t module_scratch(Module *m, size_t B, size_t T);
void module_forward(Frame *f, const float *x, float *y, const Ctx *c);
void module_backward(Frame *f, const float *dy, float *dx, const Ctx *c);
/* 0 when the module has no step form (module_can_step). */
size_t module_state_size(Module *m, size_t max_T);
bool module_can_step(const Module *m);
void module_step(Frame *f, float *state, size_t t, const float *x, float *y, const Ctx *c);
double module_flops(Module *m, size_t B, size_t T, bool causal);
/* The memory floats per batch row of m or the one of its descendants that keeps one (0: none). */
size_t module_memory_size(Module *m);
/* Runs after_update on m and its descendants. */
void module_after_update(Module *m);

/* The RNG scope of a path: "blocks.<i>" and its descendants "blocks.<i>.*"
 * map to i (the numbering every model before composition used, kept so their
 * initial weights and dropout masks stay the same), anything else to a hash
 * of the path (above 2^32, so the two kinds never meet). */
uint64_t module_scope(const char *path);

/* ---- helpers for module files ---- */

/* The dropout key of `site` (a number the module gives each dropout place)
 * for tensors of `width` floats per token in the running use: rate only
 * while training, elements counted from the step's first batch row. */
DropoutKey ctx_dropout(const Ctx *c, int site, float rate, size_t width);
/* The stream of `site` in the running use, for kernels that draw their own
 * masks (the attention tiles). */
uint64_t ctx_stream(const Ctx *c, int site);
/* Fills w (n) with N(0, std^2) draws from the init stream (scope, index). */
void init_normal(float *w, size_t n, float std, uint64_t seed, uint64_t scope, int index);
/* The same in the module's own scope. */
void module_init_normal(const Module *m, float *w, size_t n, float std, uint64_t seed, int index);
/* Fills w (n) with N(0, std^2) draws conditioned on [-2 std, 2 std] (redrawn
 * until inside, never clipped: SeqBoat's trunc_normal_, spec mega-seqboat.md
 * §1.4; the result's standard deviation is 0.8796 std), init stream (scope, index). */
void init_trunc_normal(float *w, size_t n, float std, uint64_t seed, uint64_t scope, int index);
/* Initialisation schemes (key `init`): seqlab, N(0, init_std) weights; gpt2
 * (safari, GPT-2), N(0, 0.02); flax (the JAX S5/Hyena port), lecun-normal;
 * pytorch (the Nyströmformer code), PyTorch's default U(+-1/sqrt(fan_in)) for
 * weights and biases. Under gpt2 and flax the projection that ends a residual
 * branch (an `output` layer: fc2, out_proj) gets N(0, 0.02 / sqrt(2 n_layer)). */
#define INIT_SCHEMES "seqlab|flax|gpt2|pytorch"
typedef enum { INIT_SEQLAB, INIT_FLAX, INIT_GPT2, INIT_PYTORCH } InitScheme;
/* A dense weight (out, in) under the scheme named `scheme`; stream (module scope, index). */
void module_init_dense(const Module *m, float *w, size_t out, size_t in, const char *scheme, double init_std,
                       bool output, int n_layer, uint64_t seed, int index);
/* Its bias (out): U(+-1/sqrt(in)) under pytorch, 0 under every other scheme. */
void module_init_bias(const Module *m, float *b, size_t out, size_t in, const char *scheme, uint64_t seed, int index);
/* Fills w (n) with U(-bound, bound) draws from the init stream (scope, index). */
void init_uniform(float *w, size_t n, float bound, uint64_t seed, uint64_t scope, int index);
/* The same in the module's own scope. */
void module_init_uniform(const Module *m, float *w, size_t n, float bound, uint64_t seed, int index);
/* flax's lecun_normal (the JAX models' default): a normal truncated to
 * [-2, 2], rescaled to variance 1 / fan_in; stream (module scope, index). */
void module_init_lecun(const Module *m, float *w, size_t n, double fan_in, uint64_t seed, int index);
/* Adds value to the running average `name` of the use ("<use path>.<name>"). */
void ctx_stat(const Ctx *c, const char *name, double value);

#endif
