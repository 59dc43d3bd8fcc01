/* ops.h — stateless kernels, each with its forward and backward.
 *
 * Conventions: row-major, N = number of rows (B*T), shapes in comments.
 * Backward functions *accumulate* (+=) into parameter gradients (micro-batches
 * and tied weights add up) and *overwrite* input gradients unless the comment
 * says otherwise. All loops over rows are OpenMP-parallel; results do not
 * depend on the thread count except through BLAS summation order.
 */
#ifndef SEQLAB_OPS_H
#define SEQLAB_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- linear.c: y = x W^T + b, W in PyTorch layout (out, in) ---- */
/* y (N, out) = x (N, in) W^T (+ b (out) if b != NULL). */
void linear_forward(float *y, const float *x, const float *w, const float *b, size_t N, size_t in, size_t out);
/* dx (N, in) = dy W (skipped when dx is NULL; accumulates when accumulate_dx);
 * dw (out, in) += dy^T x; db (out) += column sums of dy (when db != NULL). */
void linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, size_t N,
                     size_t in, size_t out, bool accumulate_dx);
/* acc (C) += sum over the N rows of a (N, C) ⊙ b (N, C) (b NULL: of a alone): a bias or
 * scale gradient. The same bits on any number of threads. */
void column_sums(float *acc, const float *a, const float *b, size_t N, size_t C);

/* ---- layernorm.c: PyTorch LayerNorm, eps 1e-5, biased variance ---- */
#define LAYERNORM_EPS 1e-5f
/* y (N, C) = (x - mean) * rstd * w + b; saves mean (N) and rstd (N). */
void layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b, size_t N,
                       size_t C);
/* dx (N, C) overwritten (or accumulated when accumulate_dx); dw, db (C) accumulated. */
/* y from x with the mean and rstd a forward saved: the same y again. */
void layernorm_apply(float *y, const float *mean, const float *rstd, const float *x, const float *w, const float *b,
                     size_t N, size_t C);
void layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *mean,
                        const float *rstd, const float *w, size_t N, size_t C, bool accumulate_dx);

/* ---- norm.c: RMSNorm, ScaleNorm, BatchNorm (MEGA's SequenceNorm, eps 1e-5) ---- */
#define NORM_EPS 1e-5f
#define BATCHNORM_MOMENTUM 0.1f
/* y (N, C) = w * x / sqrt(mean(x^2) + eps); saves rstd (N). */
void rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, size_t N, size_t C);
/* dx overwritten (or accumulated); dw (C) accumulated. */
void rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *rstd, const float *w,
                      size_t N, size_t C, bool accumulate_dx);
/* The same with one scalar g (1) instead of a weight per channel. */
void scalenorm_forward(float *y, float *rstd, const float *x, const float *g, size_t N, size_t C);
void scalenorm_backward(float *dx, float *dg, const float *dy, const float *x, const float *rstd, const float *g,
                        size_t N, size_t C, bool accumulate_dx);
/* Per channel over the N rows: training uses the batch's statistics and
 * updates the running ones (buffers, C each); evaluation uses the running
 * ones. Saves mean (C) and rstd (C). */
void batchnorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b,
                       float *running_mean, float *running_var, bool training, size_t N, size_t C);
void batchnorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *mean,
                        const float *rstd, const float *w, bool training, size_t N, size_t C, bool accumulate_dx);

/* ---- activation.c ---- */
typedef enum { ACT_RELU, ACT_GELU, ACT_GELU_TANH, ACT_SILU, ACT_RELU2, ACT_LAPLACE } Activation;
/* The names activation_parse knows, as a key's choices. relu2 = max(x, 0)^2
 * and laplace = Phi((x - sqrt(1/2)) / sqrt(1/(4 pi))) are MEGA's attention
 * functions (spec mega-seqboat.md §1.1, fairseq/utils.py of the MEGA code). */
#define ACTIVATIONS "relu|gelu|gelu_tanh|silu|relu2|laplace"
/* Parses one of ACTIVATIONS; returns -1 for anything else. */
int activation_parse(const char *name, Activation *out);
void activation_forward(float *y, const float *x, size_t n, Activation a);
/* y = act(x) and dydx = act'(x) in one pass (backward then needs only
 * dy * dydx); y or dydx may alias x. */
void activation_grad(float *y, float *dydx, const float *x, size_t n, Activation a);

/* ---- dropout.c: inverted dropout with a counter-based mask ---- */
/* The mask of element i is rng_bits(seed, stream, first + i) >= threshold(p):
 * nothing is stored; backward regenerates it. `first` places the n elements
 * within a larger tensor (a micro-batch within its batch). y may alias x.
 * p == 0: copy. */
typedef struct {
    float p;
    uint64_t seed, stream, first;
} DropoutKey;
void dropout_forward(float *y, const float *x, size_t n, const DropoutKey *k);
/* dx = dy * mask / (1 - p); dx may alias dy. */
void dropout_backward(float *dx, const float *dy, size_t n, const DropoutKey *k);

/* ---- embedding.c ---- */
/* out (N, C) = table[ids[n]] (ids validated by the caller). */
void embedding_forward(float *out, const int32_t *ids, const float *table, size_t N, size_t C);
/* dtable (V, C) += scatter of dout rows by id. */
void embedding_backward(float *dtable, const float *dout, const int32_t *ids, size_t N, size_t C, size_t V);
/* out (B, T, C) += pos (T', C) rows 0..T-1, for every batch row. */
void positions_add(float *out, const float *pos, size_t B, size_t T, size_t C);
/* dpos (T', C) += sum over batch of dout rows 0..T-1. */
void positions_backward(float *dpos, const float *dout, size_t B, size_t T, size_t C);
/* table (T, C): sinusoidal positions, sin block then cos block:
 * [t, j] = sin(t f_j), [t, C/2 + j] = cos(t f_j), f_j = 10000^(-2j/C). */
void sinusoidal_fill(float *table, size_t T, size_t C);

/* ---- crossentropy.c: softmax cross-entropy over logits ---- */
/* For each row n: losses[n] = logsumexp(logits[n]) - logits[n][targets[n]].
 * Then overwrites logits with dlogits = (softmax - onehot) * grad_scale, the
 * gradient of grad_scale * sum(losses), so the V-wide logits are stored once.
 * Returns the sum of the losses in double. */
double crossentropy_forward_backward(float *logits, float *losses, const int32_t *targets, size_t N, size_t V,
                                     float grad_scale);
/* Loss only (logits untouched); returns the sum in double. */
double crossentropy_forward(const float *logits, float *losses, const int32_t *targets, size_t N, size_t V);

/* ---- classifier.c: softmax classifier fused with its cross-entropy ---- */
/* The classes are the rows of one or more weight blocks, one after another
 * (the adaptive softmax head is the shortlist of the output table followed
 * by the cluster rows). */
typedef struct {
    const float *w;   /* (rows, C) */
    const float *b;   /* (rows), or NULL */
    float *dw, *db;   /* gradients, added to (db NULL when b is) */
    size_t rows;
} ClassBlock;
typedef struct {
    size_t C;                 /* input width */
    const ClassBlock *blocks; /* borrowed */
    size_t n_blocks;
    size_t K;                 /* classes: the sum of the blocks' rows */
} Classifier;
/* Logits are made for chunks of rows, at most this many floats at a time. */
#define CLASSIFIER_CHUNK_FLOATS ((size_t)1 << 20)
size_t classifier_chunk_rows(const Classifier *cl, size_t n);
/* Floats of scratch classifier_forward needs for n rows. */
size_t classifier_scratch(const Classifier *cl, size_t n);
/* For rows h (n, C) and targets in [0, K): losses[i] = logsumexp(z_i) -
 * z_i[target_i] with z = h W^T + b; returns their sum (in row order). With
 * grad_scale != 0 also writes dh (n, C) = grad_scale * dloss/dh and adds the
 * weight and bias gradients into the blocks. */
double classifier_forward(const Classifier *cl, const float *h, size_t n, const int32_t *targets, float *losses,
                          float grad_scale, float *dh, float *scratch);
/* All logits (n, K) of rows h, for inference. */
void classifier_logits(const Classifier *cl, const float *h, size_t n, float *logits);

/* ---- attention.c: multi-head softmax attention core, tiled (flash) ---- */
typedef struct {
    size_t B, T, H, d;     /* batch, length, heads, head width */
    size_t ldq, ldk, ldv, ldo; /* row strides (floats) of q, k, v, o */
    size_t hq, hk, hv, ho; /* head strides: head h of q starts at column h*hq (d when heads are
                              contiguous, 3d for the interleaved per-head qkv layout), ... */
    bool causal;
    size_t window;         /* 0: all keys; else a band: causal keeps i-window < j <= i,
                              bidirectional keeps |i-j| < window (spec attention.md §3) */
    float scale;           /* usually 1/sqrt(d) */
    float dropatt;         /* dropout on the probabilities */
    uint64_t seed, stream; /* dropout keys */
    uint64_t row0;         /* batch row of b = 0 in the mask index (micro-batches) */
    const float *key_mask; /* (B, T) or NULL: keys with 0 are padding, no query sees them */
    const float *bias;     /* (H or 1, 2T - 1) or NULL: s_ij += bias[h][j - i + T - 1], a relative
                              position bias (MEGA, SeqBoat); one row shared by all heads when bias_heads is 1 */
    size_t bias_heads;
    float *dbias;          /* gradient of bias, same shape, added to by attention_backward (may be NULL) */
} AttentionShape;
/* o (B, T, ldo) and lse (B, H, T) from q, k, v. The T x T score matrix is
 * never stored: key tiles are visited with an online softmax. */
void attention_forward(float *o, float *lse, const float *q, const float *k, const float *v,
                       const AttentionShape *s, float *scratch);
/* dq, dk, dv (same layout as q, k, v) overwritten. Recomputes the
 * probabilities tile by tile from the saved lse. */
void attention_backward(float *dq, float *dk, float *dv, const float *do_, const float *q, const float *k,
                        const float *v, const float *o, const float *lse, const AttentionShape *s, float *scratch);
/* Floats of scratch the two functions above need (all threads; with a
 * bias gradient also one partial sum per batch row). */
size_t attention_scratch(const AttentionShape *s);
/* One query row against n cached keys/values (generation): o (heads
 * concatenated, H*d) from q, K and V laid out as `s` says (rows of K, V with
 * stride ldk, ldv; s->B, s->T unused). scratch: H*n floats. Heads run in
 * parallel when the cache is long. */
void attention_step(float *o, const float *q, const float *K, const float *V, size_t n, const AttentionShape *s,
                    float *scratch);

/* ---- gau_attention.c: MEGA's / SeqBoat's single-head attention (spec mega-seqboat.md §4.3, §6.4) ---- */
typedef enum { GAU_SOFTMAX, GAU_RELU2, GAU_LAPLACE } GauFn;
/* "softmax" | "relu2" | "laplace"; -1 otherwise. */
int gau_fn_parse(const char *name, GauFn *out);
/* The len dividing q.k under relu2 / laplace: i + 1 within the chunk (MEGA
 * causal), the unmasked keys of the chunk (MEGA bidirectional), or fixed_len
 * (SeqBoat's local attention: W causal, 2W bidirectional). */
typedef enum { GAU_LEN_ROW, GAU_LEN_KEYS, GAU_LEN_FIXED } GauLen;
typedef struct {
    size_t B, T;             /* sequences, rows per sequence */
    size_t Z, H;             /* widths of q, k and of v, o */
    size_t ldq, ldk, ldv, ldo; /* row strides (floats) */
    size_t chunk;            /* > 0: a query sees the keys of its chunk of this many rows (the last may be shorter) */
    size_t window;           /* > 0 (chunk 0): keys with |i - j| <= window (causal: i - window <= j <= i) */
    bool causal;             /* keys j <= i only */
    GauFn fn;
    float scale;             /* softmax: the factor of q.k */
    GauLen len;
    size_t fixed_len;
    const float *key_mask;   /* (B, T): 0 for keys no query may see (padding), or NULL */
    const int32_t *pos;      /* (B, T): positions whose differences index the bias; NULL: the indices */
    const float *bias;       /* (2 bias_radius - 1): bias of offset pos_j - pos_i at [offset + radius - 1], offsets
                                beyond the table taking its end values; or NULL */
    size_t bias_radius;      /* 0: no bias */
    float *dbias;            /* its gradient, added to by backward (or NULL) */
    float dropatt;           /* dropout on the weights */
    uint64_t seed, stream, row0;
} GauShape;
size_t gau_attention_scratch(const GauShape *s);
/* o (B, T, ldo) from q, k, v; lse (B, T): the softmax rows' log-sum-exp (unused by the element functions). */
void gau_attention_forward(float *o, float *lse, const float *q, const float *k, const float *v, const GauShape *s,
                           float *scratch);
/* dq, dk, dv overwritten from do_ and what forward used and made. */
void gau_attention_backward(float *dq, float *dk, float *dv, const float *do_, const float *q, const float *k,
                            const float *v, const float *o, const float *lse, const GauShape *s, float *scratch);
/* Generation: one query q at position query_pos against n cached keys K and
 * values V (rows of stride ldk, ldv) at positions key_pos (NULL: 0 .. n - 1),
 * every one visible; len n (or fixed_len). o (H); scratch n floats. */
void gau_attention_query(float *o, const float *q, const float *K, const float *V, size_t n, const int32_t *key_pos,
                         long query_pos, const GauShape *s, float *scratch);

/* ---- relative_bias.c: MEGA's / SeqBoat's relative position biases ---- */
/* table (2n - 1), the AttentionShape.bias row of a length n: table[k] =
 * b[P - 1 + k - (n - 1)] from the learned b (2P - 1), an offset beyond b
 * taking b's end value (SeqBoat's rule for n > P). */
void relative_bias_table(float *table, const float *b, size_t P, size_t n);
/* db (2P - 1) += the gradient of the table's entries, each to the entry of b it read. */
void relative_bias_backward(float *db, const float *dtable, size_t P, size_t n);
/* MEGA's rotary bias: table (2n - 1) with table[j - i + n - 1] = <rot_i(alpha),
 * rot_j(beta)>, alpha and beta (Z, even) learned, rot_t turning each pair
 * (v[m], v[m + Z/2]) by t 10000^(-2m/Z); it depends on j - i only. */
void rotary_bias_table(float *table, const float *alpha, const float *beta, size_t Z, size_t n);
/* dalpha, dbeta (Z) += the gradient through the table. */
void rotary_bias_backward(float *dalpha, float *dbeta, const float *dtable, const float *alpha, const float *beta,
                          size_t Z, size_t n);

/* SeqBoat's RoPE, in place on N rows of x (stride ld, Z even): each pair
 * (v[2m], v[2m + 1]) turned by pos[r] 10000^(-2m/Z); inverse turns back
 * (the gradient of the rotation). cs: rope_table's turns (P Z floats for
 * positions first .. first + P - 1), read at row pos[r] < P. */
void rope_table(float *cs, size_t first, size_t P, size_t Z);
void rope_rotate(float *x, size_t ld, const int32_t *pos, size_t N, size_t Z, const float *cs, bool inverse);

/* ---- ema.c: MEGA's damped EMA kernel (spec mega-seqboat.md §2.2, §2.6) ---- */
/* k: K / D blocks (1 causal, 2 bidirectional: forward-time kernels then
 * backward-time ones) of L x D, time-major as fftconv takes its filters:
 * k[blk][j][d] = sqrt(1/N) sum_n gamma p beta q^j of kernel blk*D + d for
 * j < Tk, 0 beyond (p = σ(delta), q = 1 - p σ(alpha)); parameters (K, N),
 * N <= 256. */
void ema_kernel(float *k, const float *delta, const float *alpha, const float *beta, const float *gamma, size_t K,
                size_t D, size_t N, size_t Tk, size_t L);
/* The four parameter gradients (+=) from dk (the layout of k). */
void ema_kernel_backward(float *ddelta, float *dalpha, float *dbeta, float *dgamma, const float *dk,
                         const float *delta, const float *alpha, const float *beta, const float *gamma, size_t K,
                         size_t D, size_t N, size_t Tk, size_t L);
/* The recurrent form's constants (K, N) each (§2.5): h_t = pb x_t + q h_{t-1},
 * y_t = sum_n g h_t. */
void ema_coefficients(float *pb, float *q, float *g, const float *delta, const float *alpha, const float *beta,
                      const float *gamma, size_t K, size_t N);

/* ---- linear_attention.c: linear attention, the FMMformer variant ---- */
/* Spec: shared/spec/attention.md §2.2 (attn_type 34). Per head, with
 * a = phi(q)/sum phi(q), b = phi(k)/sum phi(k) (features normalised to sum 1):
 *   S_t = sum_{j<=t} b_j v_j^T, z_t = sum_{j<=t} b_j   (causal; else sums over all j),
 *   out_t = scale * (a_t^T S_t) / (a_t . z_t + eps),  scale 1/sqrt(d), eps 1e-5.
 * Computed in chunks of `chunk` positions: a masked chunk x chunk product
 * inside a chunk, the d x d state across chunks; the state at each chunk
 * start is saved so backward needs one reverse sweep. Time O(T (chunk + d) d),
 * memory O(T d + T/chunk d^2) per head. The non-causal form is the natural
 * bidirectional extension of §2.2 (the FMM LRA code's unnormalised §2.3 is a
 * different model and is not implemented). */
typedef enum { FEATURE_ELU, FEATURE_ELU_FLIP } FeatureMap;
/* Parses "elu" | "elu_flip"; -1 otherwise. */
int feature_map_parse(const char *name, FeatureMap *out);
typedef struct {
    AttentionShape io; /* B, T, H, d, strides, scale and causal; window/dropatt unused */
    FeatureMap phi;
    size_t chunk;
    float eps;
} LinearAttnShape;
/* Floats forward saves for backward (den and the chunk-start states). */
size_t linear_attention_saved(const LinearAttnShape *s);
size_t linear_attention_scratch(const LinearAttnShape *s);
/* o (layout of s->io) from q, k, v; fills `saved`. */
void linear_attention_forward(float *o, float *saved, const float *q, const float *k, const float *v,
                              const LinearAttnShape *s, float *scratch);
/* Gradients for an upstream gradient weight * do_: dq, dk, dv overwritten,
 * or added to with accumulate (they may be the same buffer at different head
 * offsets, as the interleaved qkv layout has); o is the forward's output. */
void linear_attention_backward(float *dq, float *dk, float *dv, const float *do_, float weight, bool accumulate,
                               const float *q, const float *k, const float *v, const float *o, const float *saved,
                               const LinearAttnShape *s, float *scratch);
/* Generation: state holds per head S (d x d) then z (d); feeds one row. */
size_t linear_attention_state(const LinearAttnShape *s);
void linear_attention_step(float *o, float *state, const float *q, const float *k, const float *v,
                           const LinearAttnShape *s);

/* ---- nystrom_attention.c: Nyström attention core (spec attention.md §5) ---- */
typedef struct {
    size_t B, T, H, d;  /* q, k, v, o: (B, T, H*d), head h in columns [h d, (h+1) d) */
    size_t M;           /* landmarks; T <= M takes the original's exact path (plain softmax) */
    int iterations;     /* of the pseudo-inverse (the original: 6) */
    bool per_matrix;    /* scale of the pinv's Z0 per (b, h); false: one over the whole batch (the original) */
    const float *mask;  /* (B, T): 1 real token, 0 padding; NULL: all real */
} NystromShape;
bool nystrom_attention_exact(const NystromShape *s);
/* Floats forward saves for backward; scratch both need (all threads). */
size_t nystrom_attention_saved(const NystromShape *s);
size_t nystrom_attention_scratch(const NystromShape *s);
/* o (layout of q) from q, k, v; fills `saved`. */
void nystrom_attention_forward(float *o, float *saved, const float *q, const float *k, const float *v, const NystromShape *s,
                     float *scratch);
/* The original's iterative Moore-Penrose pseudo-inverse of A (M x M):
 * Z_0 = A^T / c, Y_k = A Z_k, Z_{k+1} = Z_k (13I - Y_k(15I - Y_k(7I - Y_k))) / 4.
 * Z receives Z_0 ... Z_n ((n + 1) M^2 floats, the last is the result), Y the
 * Y_k (n M^2); work 3 M^2. c: the largest column sum of A (or of a set of
 * matrices, as the mixer's default does) makes ||A Z_0|| < 1 for the
 * row-stochastic A of a softmax. */
void nystrom_pinv(float *Z, float *Y, const float *A, size_t M, int iterations, float c, float *work);
/* dq, dk, dv overwritten from the upstream do_ and what forward saved. */
void nystrom_attention_backward(float *dq, float *dk, float *dv, const float *do_, const float *q, const float *k,
                      const float *v, const float *saved, const NystromShape *s, float *scratch);

/* ---- ssm_scan.c: complex diagonal recurrences (S5, spec ssm-hyena.md §1.7) ---- */
/* Each of the B sequences of T rows (row stride ld floats) holds P complex
 * states as 2P floats, the P real parts then the P imaginary parts. In place,
 * u becomes x:
 *   forward: x_t = a ⊙ x_{t-1} + u_t (x_{-1} = 0);  reverse: x_t = a ⊙ x_{t+1} + u_t (x_T = 0).
 * The same bits on any number of threads. P <= SSM_MAX_STATES. */
#define SSM_MAX_STATES 1024
size_t ssm_scan_scratch(size_t B, size_t T, size_t P);
void ssm_scan(float *x, size_t ld, const float *a_re, const float *a_im, size_t B, size_t T, size_t P, bool reverse,
              float *scratch);
/* da (2P: re, im) += sum over b, t of conj(x_{t-1}) ⊙ r_t (reverse: conj(x_{t+1}) ⊙ r_t): the gradient of
 * a for the adjoint states r (same layout as x), in the convention dl/dRe + i dl/dIm. */
void ssm_scan_grad_a(float *da, const float *x, const float *r, size_t ld, size_t B, size_t T, size_t P,
                     bool reverse, float *scratch);

/* ---- fftconv.c: causal long convolution per channel (Hyena, spec ssm-hyena.md §2.5) ---- */
/* y[t][c] = sum_{s<=t} h[s][c] v[t-s][c] + bias[c] v[t][c] for every sequence
 * of v, y (B, T, C), filter h (T, C), bias (C) or NULL. Through FFTW above
 * FFTCONV_DIRECT_MAX positions (the measured crossover, bench/fftconv_crossover.c),
 * the direct sum below it. Spectra and scratch must be 64-byte aligned. */
/* bench/fftconv_crossover (16 x T x 128, forward + backward, 2 threads): the
 * direct sum takes 0.71x the FFT's time at T = 64, 0.80x at 88, 1.05x at 96,
 * 1.52x at 128, 6.9x at 512. */
#define FFTCONV_DIRECT_MAX 96
/* Moves the crossover (the longest T summed directly): for bench/fftconv_crossover.c. */
void fftconv_set_direct_max(size_t T);
/* The FFT length for T (0: the direct sum is used). */
size_t fftconv_length(size_t T);
/* Floats of the filter spectra for T and C (0 below the crossover). */
size_t fftconv_spectra_floats(size_t T, size_t C);
/* Floats of scratch forward and backward need (for the current thread count). */
size_t fftconv_scratch(size_t T, size_t C);
/* The spectra of the C filters h (T, C), once per forward; used by both passes. */
void fftconv_filter(float *spectra, const float *h, size_t T, size_t C);
void fftconv_forward(float *y, const float *v, const float *h, const float *spectra, const float *bias, size_t B,
                     size_t T, size_t C, float *scratch);
/* dv (B, T, C) overwritten; dh (T, C) and dbias (C, when not NULL) added to. */
void fftconv_backward(float *dv, float *dh, float *dbias, const float *dy, const float *v, const float *h,
                      const float *spectra, const float *bias, size_t B, size_t T, size_t C, float *scratch);

/* ---- span_attention.c: the adaptive-span attention (spec moe-brainformer.md §2.2, §3.1) ---- */
/* Queries q (B, M, H d) of a block; keys k and values v (B, Se + M, H d): the
 * last Se cached positions then the block. Query i attends to keys i .. i +
 * Se - 1 (distances Se .. 1; never itself) with logits (q.k + q.key_pe[:, S -
 * distance]) / sqrt(d), softmax, the head's mask (H, Se; column c is distance
 * Se - c; NULL: none) with A m / (sum A m + 1e-8), dropout. */
typedef struct {
    size_t B, M, H, d;
    size_t S, Se;          /* key_pe's columns (the maximum span); the distances computed (Se <= S) */
    const float *key_pe;   /* (d, S): column l is distance S - l */
    const float *mask;     /* (H, Se), or NULL */
    DropoutKey dropout;    /* of the weights; element (b, i, h, c) at ((b M + i) H + h) Se + c */
} SpanShape;
size_t span_attention_scratch(const SpanShape *s);
/* o (B, M, H d); stats (B, H, M, 3) kept for backward. */
void span_attention_forward(float *o, float *stats, const float *q, const float *k, const float *v, const SpanShape *s,
                            float *scratch);
/* dq, dk, dv overwritten; dkey_pe (d, S) and dmask (H, Se; may be NULL) added to. */
void span_attention_backward(float *dq, float *dk, float *dv, float *dkey_pe, float *dmask, const float *do_,
                             const float *q, const float *k, const float *v, const float *stats, const SpanShape *s,
                             float *scratch);

#endif
