/* gau.h — what MEGA's layer (mega.c) and SeqBoat's (seqboat.c) share: the
 * keys, the layer's own norm, the damped EMA child `move`, the shared
 * representation Zs turned into q and k (gamma, beta), the relative position
 * bias, the output projection h_proj, and the attention shape (spec
 * mega-seqboat.md §4, §6). Both layers own their residual and norm, so the
 * trunk does not wrap them (ModuleOps.owns_residual).
 *
 * A layer's struct starts with Module then GauLayer, so the keys of
 * GAU_LAYER_KEYS sit at the same offsets in both. */
#ifndef SEQLAB_GAU_H
#define SEQLAB_GAU_H

#include <math.h>

#include "../nn/module.h"
#include "../nn/norm.h"

/* rel_pos: none; simple (§3.1); rotary: MEGA's learned rotary bias (§3.2) in
 * the mega layer, SeqBoat's RoPE on q and k (§3.3) in the seqboat layer. */
typedef enum { REL_NONE, REL_SIMPLE, REL_ROTARY_BIAS, REL_ROPE } RelPos;

typedef struct {
    /* keys */
    int z_dim, h_dim, n_dim, chunk_size, truncation, max_positions;
    char attention[CFG_NAME], rel_pos[CFG_NAME], norm_type[CFG_NAME], place[CFG_NAME];
    double dropout, hidden_dropout, attention_dropout;
    bool feature_dropout;
    /* derived */
    size_t C, Z, H, P; /* width, shared representation, value width, bias table half-length */
    GauFn fn;
    RelPos rel;
    bool pre, trunc_init;
    Norm norm;
    float *gamma, *dgamma; /* (2, Z): q = Zs gamma[0] + beta[0], k = Zs gamma[1] + beta[1] */
    float *beta, *dbeta;   /* (2, Z) */
    float *bias, *dbias;   /* simple: (2P - 1) */
    float *ralpha, *dralpha, *rbeta, *drbeta; /* MEGA's rotary bias: (1, Z) each */
    float *wh, *dwh, *bh, *dbh; /* h_proj (C, H), (C) */
} GauLayer;

typedef struct {
    Module base;
    GauLayer g;
} GauHost;

#define GAU_KEY(STRUCT, FIELD, TYPE, FALLBACK, CHOICES, FLAT, LO, HI, HELP)                                        \
    {#FIELD, TYPE, offsetof(STRUCT, g.FIELD), sizeof(((STRUCT *)0)->g.FIELD), FALLBACK, CHOICES, FLAT, LO, HI, HELP}

/* The keys both layers read (the struct's g at the same offset). */
#define GAU_LAYER_KEYS(STRUCT)                                                                                     \
    GAU_KEY(STRUCT, z_dim, KEY_INT, "64", NULL, NULL, 1, 1e6, "width Z of the shared representation (q, k)"),    \
    GAU_KEY(STRUCT, h_dim, KEY_INT, "0", NULL, NULL, 0, 1e6, "width H of the values; 0 = 2 d_model"),             \
    GAU_KEY(STRUCT, n_dim, KEY_INT, "16", NULL, NULL, 1, 256, "EMA expansion dimension N"),                        \
    GAU_KEY(STRUCT, truncation, KEY_INT, "0", NULL, NULL, 0, 1e9, "EMA kernel length; 0 = the whole sequence"),   \
    GAU_KEY(STRUCT, attention, KEY_CHOICE, "softmax", "softmax|relu2|laplace", NULL, 0, -1,                       \
            "attention function"),                                                                                \
    GAU_KEY(STRUCT, max_positions, KEY_INT, "0", NULL, NULL, 0, 1e9,                                              \
            "P of the simple relative bias; 0 = the chunk (window) size when set, else max_len"),                 \
    GAU_KEY(STRUCT, norm_type, KEY_CHOICE, "layernorm", "layernorm|rmsnorm|scalenorm|batchnorm", NULL, 0, -1,     \
            "the layer's normalisation"),                                                                         \
    GAU_KEY(STRUCT, place, KEY_CHOICE, "pre", "pre|post", "norm", 0, -1,                                          \
            "normalise the layer's input (pre) or its output (post)"),                                            \
    GAU_KEY(STRUCT, dropout, KEY_FLOAT, "0.1", NULL, "dropout", 0, 0.999, "dropout on the EMA output and the layer's output"), \
    GAU_KEY(STRUCT, hidden_dropout, KEY_FLOAT, "0", NULL, NULL, 0, 0.999, "dropout on the values"),                \
    GAU_KEY(STRUCT, attention_dropout, KEY_FLOAT, "0", NULL, "dropatt", 0, 0.999, "dropout on the attention weights"), \
    GAU_KEY(STRUCT, feature_dropout, KEY_BOOL, "false", NULL, NULL, 0, -1,                                         \
            "drop whole channels of a sequence instead of elements")

/* Reads the derived values (`rotary`: what rel_pos rotary means in this
 * layer); builds the child `move` (the EMA, N and truncation from this
 * layer's keys, init normal or trunc_normal). */
int gau_configure(Module *m, GauLayer *g, const ModuleSpec *spec, RelPos rotary, bool trunc_init, Error *err);
void gau_params(GauLayer *g, ParamSet *ps);
/* Norm 1/0, gamma ~ N(0, 0.02) (or its truncation), beta 0, the biases ~ N(0, 0.02), h_proj N(0, 0.02) and 0;
 * init streams 100.. of the module's scope. */
void gau_init(Module *m, GauLayer *g, uint64_t seed);
/* N(0, std^2) or, for SeqBoat, the normal truncated at 2 std (§1.4). */
void gau_draw(const Module *m, const GauLayer *g, float *w, size_t n, float std, uint64_t seed, int index);

/* q, k (N, Z) from the shared representation zs (N rows, stride ld). */
void gau_qk(float *q, float *k, const float *zs, size_t ld, size_t N, const GauLayer *g);
/* dzs (stride ld_dz) overwritten, gamma and beta gradients added, from dq, dk
 * and the forward's zs (stride ld). */
void gau_qk_backward(float *dzs, size_t ld_dz, const float *dq, const float *dk, const float *zs, size_t ld, size_t N,
                     GauLayer *g);

/* The attention shape of the layer for (B, T) over q, k (Z wide), v, o (H
 * wide, strides ldv, ldo). table: MEGA's rotary bias (2 radius - 1), made by
 * gau_bias_table; dtable its gradient (NULL outside training). */
GauShape gau_shape(const GauLayer *g, const Ctx *c, size_t B, size_t T, size_t ldv, size_t ldo, const float *table,
                   float *dtable);
/* Floats of the rotary table for length T (0 for the other biases). */
size_t gau_table_floats(const GauLayer *g, size_t T);
/* Fills the rotary bias table for T. */
void gau_bias_table(const GauLayer *g, float *table, size_t T);
/* Sends the table's gradient to the rotary parameters. */
void gau_bias_table_backward(GauLayer *g, const float *dtable, size_t T);

/* Dropout of the layer (element, or whole channels per sequence with
 * feature_dropout) on x (B, T, C) at `site`, in place; backward applies the
 * same mask to the gradient. */
void gau_dropout(const GauLayer *g, const Ctx *c, int site, float p, float *x, size_t C);

/* Floats rounded up to whole cache lines: scratch buffers stay 64-byte aligned. */
static inline size_t gau_lines(size_t n) { return (n + 15) / 16 * 16; }
static inline float gau_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
/* silu'(x) = σ(x) (1 + x (1 - σ(x))) */
static inline float gau_silu_grad(float x) {
    const float s = gau_sigmoid(x);
    return s * (1.0f + x * (1.0f - s));
}
/* The context a child (the EMA) runs with: this one's, on the scratch given. */
static inline Ctx gau_child_ctx(const Ctx *c, float *scratch) {
    Ctx in = *c;
    in.scratch = scratch;
    return in;
}

#endif
