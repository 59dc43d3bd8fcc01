/* task.c — see task.h. */
#include "task.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/json.h"
#include "../core/rng.h"
#include "../core/safetensors.h"
#include "../train/dist.h"
#include "../train/trainer.h"
#include "lra.h"

/* RNG stream ids of the data's randomness (purpose RNG_DATA). */
enum { STREAM_SHUFFLE = 0x5348, STREAM_MLM = 0x4d4c4d, STREAM_MLM_EVAL = 0x4d4c45 };

static ObjectiveKind kind_of(const Config *c) {
    ObjectiveKind k = OBJ_LM;
    objective_kind(c->task, &k); /* the config's choices are the known tasks */
    return k;
}

static bool labelled(const Task *t) { return t->kind == OBJ_CLASSIFICATION || t->kind == OBJ_REGRESSION; }

static bool questions(const Task *t) { return t->kind == OBJ_SLOTS; }

/* The tasks whose examples come in padded batches: labelled texts, wikihop windows. */
static bool padded(const Task *t) { return labelled(t) || questions(t); }

static bool is_recall(const Config *c) { return !strcmp(c->task, "assoc_recall"); }

size_t task_vocab(const Config *c, const Tokenizer *tok) {
    const ObjectiveKind k = kind_of(c);
    return tokenizer_vocab(tok) + (k == OBJ_LM ? 0 : TASK_SPECIALS) + (k == OBJ_SLOTS ? WIKIHOP_TAGS : 0);
}

/* Training examples of the task, in the order `order` shuffles: the
 * non-overlapping tgt_len windows of the stream (each with its next token as
 * the last target), the generated sequences or the labelled examples. */
static size_t train_examples(const Task *t) {
    if (t->windows) return (t->corpus.split[SPLIT_TRAIN].n - 1) / (size_t)t->cfg->tgt_len;
    if (questions(t)) return t->wh[SPLIT_TRAIN].n_windows;
    return t->recall ? t->ar_train.n : t->ex[SPLIT_TRAIN].n;
}

/* Stream tokens per row: mlm_blocks keeps two positions for <cls> and <sep>. */
static size_t stream_width(const Task *t, size_t T) { return t->cfg->mlm_blocks ? T - 2 : T; }

size_t task_steps_per_epoch(const Task *t) {
    const size_t B = (size_t)t->cfg->batch_size;
    if (t->recall || t->windows) return train_examples(t) / B; /* the partial last batch is dropped */
    if (padded(t)) return (train_examples(t) + B - 1) / B;
    const size_t W = stream_width(t, (size_t)t->cfg->tgt_len); /* streams: B rows advance W tokens a step */
    return t->corpus.split[SPLIT_TRAIN].n / (B * W);
}

void task_free(Task *t) {
    corpus_free(&t->corpus);
    for (int s = 0; s < SPLIT_COUNT; s++) examples_free(&t->ex[s]), wikihop_free(&t->wh[s]);
    ar_free(&t->ar_train);
    ar_free(&t->ar_test);
    free(t->order);
    free(t->ids);
    free(t->targets);
    free(t->labels);
    free(t->mask_buf);
    free(t->values);
    free(t->slots);
    free(t->inputs);
    memset(t, 0, sizeof *t);
}

/* ---- labelled examples: files, vocabulary, order ---- */

/* A char or word vocabulary from the training texts (n bytes of text,
 * owned: freed here; NULL: its error is in err), with <unk> so that
 * held-out symbols map to it. */
static int build_vocab(Tokenizer *tok, char *text, size_t n, const char *name, Error *err) {
    if (!text) return -1;
    char *with_unk = realloc(text, n + 8);
    if (!with_unk) {
        free(text);
        return err_set(err, "out of memory building the vocabulary");
    }
    memcpy(with_unk + n, " <unk>\n", 7); /* a word vocabulary holds <unk> as one of its words */
    int rc = tokenizer_build(tok, (const unsigned char *)with_unk, tok->type == TOK_WORD ? n + 7 : n, name, err);
    free(with_unk);
    if (!rc) tokenizer_add_unk(tok);
    return rc;
}

/* Whether the tokenizer's vocabulary comes from the training text (char,
 * word), not from elsewhere (byte, BPE). */
static bool learns_vocab(const Tokenizer *tok) { return tok->type == TOK_CHAR || tok->type == TOK_WORD; }

static void shuffle(Task *t) {
    const size_t n = train_examples(t);
    for (size_t i = 0; i < n; i++) t->order[i] = (uint32_t)i;
    Rng r = rng_make((uint64_t)t->cfg->seed, rng_stream(RNG_DATA, STREAM_SHUFFLE, t->epoch));
    for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
        size_t j = rng_next(&r) % i;
        uint32_t x = t->order[i - 1];
        t->order[i - 1] = t->order[j];
        t->order[j] = x;
    }
}

static int first_order(Task *t, Error *err) {
    if (!(t->order = xmalloc(train_examples(t) * sizeof *t->order, err))) return -1;
    shuffle(t);
    return 0;
}

static int read_examples(Task *t, int s, Error *err) {
    const Config *c = t->cfg;
    if (lra_format(c)) return lra_read(&t->ex[s], c, s, s == SPLIT_TRAIN, err);
    const char *path = examples_split_file(c, s);
    return path[0] ? examples_read(&t->ex[s], path, c, t->kind == OBJ_REGRESSION, s == SPLIT_TRAIN, err) : 0;
}

/* What a format's examples ask of the model's input (signals: pixels as
 * token ids of the byte tokenizer, or any signal as encoder linear's inputs). */
static int check_format(const Task *t, const Tokenizer *tok, Error *err) {
    const Config *c = t->cfg;
    const bool linear = !strcmp(c->encoder, "linear");
    if (lra_format(c) && t->kind != OBJ_CLASSIFICATION) return err_set(err, "format %s is for task classification", c->format);
    if (!lra_signals(c)) {
        if (linear) return err_set(err, "encoder linear reads images or audio; format %s holds texts", c->format);
        return 0;
    }
    if (linear && t->first_pooling)
        return err_set(err, "objective.pooling first puts a <cls> token first; with encoder linear pool mean or last");
    if (linear && !(c->input_std > 0)) return err_set(err, "key 'input_std' must be > 0, got %g", c->input_std);
    if (!linear && !lra_pixels(c))
        return err_set(err, "format %s holds audio: give encoder linear", c->format);
    if (!linear && tok->type != TOK_BYTE)
        return err_set(err, "format %s as tokens: the pixels 0..255 are the ids of tokenizer byte (or auto), not %s",
                       c->format, tokenizer_type_name(tok->type));
    return 0;
}

static int open_examples(Task *t, Tokenizer *tok, bool vocab, Error *err) {
    const Config *c = t->cfg;
    if (!lra_format(c) && !c->train_file[0])
        return err_set(err, "task %s reads labelled examples: give key 'train_file' (a TSV file)", c->task);
    if (check_format(t, tok, err)) return -1;
    for (int s = 0; s < SPLIT_COUNT; s++)
        if (read_examples(t, s, err)) return -1;
    if (lra_signals(c)) return first_order(t, err); /* no texts to encode */
    if (vocab && learns_vocab(tok)) {
        size_t n = 0;
        char *text = examples_text(&t->ex[SPLIT_TRAIN], &n, err);
        if (build_vocab(tok, text, n, lra_format(c) ? c->format : c->train_file, err)) return -1;
    }
    for (int s = 0; s < SPLIT_COUNT; s++)
        if (t->ex[s].n && examples_encode(&t->ex[s], tok, err)) return -1;
    return first_order(t, err);
}

/* Special id k after the tokenizer's ids (task_vocab): 0 <pad>, 1 <mask>,
 * 2 <cls>, 3 <sep>, then wikihop's four tags. */
static int32_t special_id(const Tokenizer *tok, int k) { return (int32_t)tokenizer_vocab(tok) + k; }

/* The ids of wikihop's tags, after the task's specials; its </s> is <sep>. */
static WikihopTags wikihop_tags(const Tokenizer *tok) {
    return (WikihopTags){special_id(tok, TASK_SPECIALS), special_id(tok, TASK_SPECIALS + 1),
                         special_id(tok, TASK_SPECIALS + 2), special_id(tok, TASK_SPECIALS + 3), special_id(tok, 3)};
}

/* The split files of the release, parsed; the vocabulary from the training
 * file when asked; the windows of each split (training at tgt_len, the
 * others at eval_tgt_len). */
static int open_wikihop(Task *t, Tokenizer *tok, bool vocab, Error *err) {
    const Config *c = t->cfg;
    if (!c->train_file[0]) return err_set(err, "task wikihop reads the release's JSON files: give key 'train_file'");
    JsonValue *root[SPLIT_COUNT] = {NULL};
    int rc = 0;
    for (int s = 0; !rc && s < SPLIT_COUNT; s++)
        if (examples_split_file(c, s)[0]) rc = json_parse_file(examples_split_file(c, s), &root[s], err);
    if (!rc && vocab && learns_vocab(tok)) {
        size_t n = 0;
        char *text = wikihop_text(root[SPLIT_TRAIN], c->train_file, &n, err);
        rc = build_vocab(tok, text, n, c->train_file, err);
    }
    const WikihopTags tags = wikihop_tags(tok);
    for (int s = 0; !rc && s < SPLIT_COUNT; s++) {
        const size_t T = (size_t)(s == SPLIT_TRAIN ? c->tgt_len : c->eval_tgt_len);
        if (root[s])
            rc = wikihop_read(&t->wh[s], root[s], examples_split_file(c, s), tok, &tags, T, c->wikihop_drop_overflow, err);
    }
    for (int s = 0; s < SPLIT_COUNT; s++) json_free(root[s]);
    if (!rc && !t->wh[SPLIT_TRAIN].labelled) rc = err_set(err, "%s: training questions need their answers", c->train_file);
    return rc ? -1 : first_order(t, err);
}

/* The generated sets, and a word vocabulary of their symbols in id order
 * ('.', "0", "1", "10", ..., '=>') so samples read as the reference's. */
static int open_recall(Task *t, Tokenizer *tok, bool vocab, Error *err) {
    const Config *c = t->cfg;
    if (ar_generate(&t->ar_train, &t->ar_test, (size_t)c->vocab_size, (size_t)c->input_seq_len,
                    (size_t)c->num_examples, (size_t)c->num_test_examples, (uint64_t)c->data_seed, err))
        return -1;
    if (t->ar_train.n < (size_t)c->batch_size)
        return err_set(err, "key 'batch_size' %d is more than the %zu training sequences (num_examples)", c->batch_size,
                       t->ar_train.n);
    if (vocab) {
        char **sym = ar_symbols((size_t)c->vocab_size, err);
        if (!sym) return -1;
        int rc = tokenizer_symbols(tok, (const char *const *)sym, (size_t)c->vocab_size, err);
        free(sym[0]);
        free(sym);
        if (rc) return -1;
    }
    return first_order(t, err);
}

/* The lm training text: rows read in order, or shuffled windows. */
static int open_train_text(Task *t, Error *err) {
    const Config *c = t->cfg;
    const TokenView *train = &t->corpus.split[SPLIT_TRAIN];
    if (c->mlm_blocks && (t->kind != OBJ_MLM || c->tgt_len < 3 || c->eval_tgt_len < 3))
        return err_set(err, "key 'mlm_blocks' needs task mlm and tgt_len, eval_tgt_len of at least 3");
    const size_t W = stream_width(t, (size_t)c->tgt_len);
    if (!t->windows) return stream_init(&t->train, train, (size_t)c->batch_size, W, W, "train", err);
    if (train->n < (size_t)c->batch_size * (size_t)c->tgt_len + 1)
        return err_set(err, "the train split has %zu tokens, too few for batch_size %d windows of tgt_len %d (+1 "
                            "target); use a smaller batch or sequence length, or more data", train->n, c->batch_size,
                       c->tgt_len);
    return first_order(t, err);
}

/* Rows per example: two texts are two rows with objective.pair (encoded
 * apart), one joint row without. */
static size_t rows_per_example(const Task *t, const Examples *ex) { return ex->texts == 2 && t->pair ? 2 : 1; }

/* Whether the examples are signals that encoder linear reads: d_input
 * consecutive values (samples, pixels) per position. */
static bool signal_inputs(const Config *c) { return lra_signals(c) && !strcmp(c->encoder, "linear"); }

static int batch_buffers(Task *t, Error *err) {
    const Config *c = t->cfg;
    const size_t per = labelled(t) ? rows_per_example(t, &t->ex[SPLIT_TRAIN]) : 1;
    size_t rows = (size_t)(c->batch_size > c->eval_batch_size ? c->batch_size : c->eval_batch_size) * per;
    size_t T = (size_t)(c->tgt_len > c->eval_tgt_len ? c->tgt_len : c->eval_tgt_len);
    t->rows_cap = rows;
    t->T_cap = T;
    t->ids = xmalloc(rows * T * sizeof *t->ids, err);
    t->targets = xmalloc(rows * T * sizeof *t->targets, err);
    t->mask_buf = xmalloc(rows * T * sizeof *t->mask_buf, err);
    t->slots = xmalloc(rows * T * sizeof *t->slots, err);
    t->labels = xmalloc(rows * sizeof *t->labels, err);
    t->values = xmalloc(rows * sizeof *t->values, err);
    if (signal_inputs(c) && !(t->inputs = xmalloc(rows * T * (size_t)c->d_input * sizeof *t->inputs, err))) return -1;
    return t->ids && t->targets && t->mask_buf && t->slots && t->labels && t->values ? 0 : -1;
}

int task_open(Task *t, const Config *c, Tokenizer *tok, bool build, Error *err) {
    memset(t, 0, sizeof *t);
    t->cfg = c;
    t->kind = kind_of(c);
    t->pad = t->mask = t->cls = t->sep = -1;
    const ConfigEntry *pooling = config_entry(c, "objective.pooling"), *pair = config_entry(c, "objective.pair");
    t->first_pooling = pooling && !strcmp(pooling->value, "first");
    t->pair = false;
    if (pair) config_parse_bool(pair->value, &t->pair); /* the model's key check has refused anything else */
    t->recall = is_recall(c);
    t->windows = !strcmp(c->lm_batching, "windows");
    int rc = labelled(t)    ? open_examples(t, tok, build, err)
             : questions(t) ? open_wikihop(t, tok, build, err)
             : t->recall    ? open_recall(t, tok, build, err)
                          : corpus_load(&t->corpus, c, tok, build, err) || open_train_text(t, err);
    t->V = t->recall ? (size_t)c->vocab_size : task_vocab(c, tok);
    if (t->kind != OBJ_LM) {
        t->pad = special_id(tok, 0);
        t->mask = special_id(tok, 1);
        t->cls = special_id(tok, 2);
        t->sep = special_id(tok, 3);
    }
    if (!rc) rc = batch_buffers(t, err);
    if (rc) task_free(t);
    return rc;
}

void task_resume(Task *t, uint64_t cursor, uint64_t epoch) {
    t->cursor = cursor;
    t->epoch = epoch;
    if (padded(t) || t->recall || t->windows) shuffle(t);
    else t->train.cursor = cursor, t->train.epoch = epoch;
}

bool task_is_stream(const Task *t) { return t->kind == OBJ_LM && !t->windows && !t->recall; }

bool task_has_split(const Task *t, int split) {
    if (t->recall) return split == SPLIT_TRAIN ? t->ar_train.n > 0 : t->ar_test.n > 0;
    if (labelled(t)) return t->ex[split].n > 0 && (t->ex[split].labelled || t->predictions);
    if (questions(t)) return t->wh[split].n_windows > 0 && (t->wh[split].labelled || t->predictions);
    return t->corpus.split[split].n > 0;
}

/* ---- masked LM ---- */

/* mlm_blocks: the rows x W stream tokens in ids become rows x (W + 2),
 * <cls> block <sep>, in place (from the last row back, so nothing is
 * overwritten before it is moved); targets follow the same layout. */
static void wrap_blocks(const Task *t, int32_t *ids, size_t rows, size_t W) {
    for (size_t r = rows; r-- > 0;) {
        memmove(ids + r * (W + 2) + 1, ids + r * W, W * sizeof *ids);
        ids[r * (W + 2)] = t->cls;
        ids[r * (W + 2) + W + 1] = t->sep;
    }
}

/* BERT's masking of ids (n) in place; targets get the originals of the
 * chosen tokens, -1 elsewhere. Draws: three words per position of stream
 * (purpose, key) at index first + i. Returns the number chosen. */
static size_t mask_tokens(const Task *t, int32_t *ids, int32_t *targets, size_t n, uint64_t stream, uint64_t first) {
    const uint32_t choose = rng_drop_threshold((float)t->cfg->mlm_probability);
    const uint64_t seed = (uint64_t)t->cfg->seed;
    const uint32_t vocab = (uint32_t)t->pad; /* the tokenizer's ids: never a special one */
    size_t chosen = 0;
    for (size_t i = 0; i < n; i++) {
        const uint64_t at = 3 * (first + i);
        targets[i] = -1;
        if (rng_bits(seed, stream, at) >= choose) continue;
        targets[i] = ids[i];
        chosen++;
        uint32_t kind = rng_bits(seed, stream, at + 1) % 10;
        if (kind < 8) ids[i] = t->mask;
        else if (kind == 8) ids[i] = (int32_t)(rng_bits(seed, stream, at + 2) % vocab);
    }
    return chosen;
}

/* Masks the rows x T batch in t->ids (targets in t->targets): every position,
 * or with mlm_blocks the blocks between <cls> and <sep> (wrapped here from
 * rows of T - 2 stream tokens), so the specials are never chosen. The draws
 * of position p of row r are at index r T + p whichever the layout. */
static size_t mask_rows(Task *t, size_t rows, size_t T, uint64_t stream) {
    if (!t->cfg->mlm_blocks) return mask_tokens(t, t->ids, t->targets, rows * T, stream, 0);
    wrap_blocks(t, t->ids, rows, T - 2);
    size_t chosen = 0;
    for (size_t r = 0; r < rows; r++) {
        int32_t *row = t->ids + r * T, *target = t->targets + r * T;
        target[0] = target[T - 1] = -1;
        chosen += mask_tokens(t, row + 1, target + 1, T - 2, stream, r * T + 1);
    }
    return chosen;
}

/* ---- padded batches of examples ---- */

/* Signal i as encoder linear's inputs: d_input consecutive values per
 * position (a frame; the last one zero-filled), each normalised by
 * input_mean and input_std; the row's ids are <pad>. Returns the length. */
static size_t signal_row(const Task *t, const Examples *ex, size_t i, size_t T, int32_t *row, float *inputs) {
    const size_t D = (size_t)t->cfg->d_input, a = ex->id_start[i], b = ex->id_start[i + 1];
    const float scale = lra_signal_scale(t->cfg), mean = (float)t->cfg->input_mean, std = (float)t->cfg->input_std;
    size_t n = 0;
    for (size_t k = a; k < b && n < T; k += D, n++) {
        row[n] = t->pad;
        for (size_t j = 0; j < D; j++) inputs[n * D + j] = k + j < b ? (ex->reals[k + j] * scale - mean) / std : 0.0f;
    }
    if (n == 0) row[n++] = t->pad, memset(inputs, 0, D * sizeof *inputs);
    return n;
}

/* The tokens of text i: [<cls>] and its ids, cut to T; returns the length.
 * A signal's values are its ids (pixels), or with encoder linear its
 * inputs (signal_row). */
static size_t text_row(const Task *t, const Examples *ex, size_t i, size_t T, int32_t *row, float *inputs) {
    if (ex->reals && t->inputs) return signal_row(t, ex, i, T, row, inputs);
    size_t n = 0;
    if (t->first_pooling) row[n++] = t->cls;
    const size_t a = ex->id_start[i], b = ex->id_start[i + 1];
    if (ex->reals)
        for (size_t k = a; k < b && n < T; k++) row[n++] = (int32_t)ex->reals[k];
    else
        for (size_t k = a; k < b && n < T; k++) row[n++] = ex->ids[k];
    if (n == 0) row[n++] = t->pad; /* an empty text: one real position, so attention has a key */
    return n;
}

/* Example e's two texts in one row, BERT's way: [<cls>] A <sep> B <sep>,
 * the longer text cut first until the row fits T (Hugging Face's
 * longest_first, which the GLUE scripts use); returns the length. */
static size_t joint_row(const Task *t, const Examples *ex, size_t e, size_t T, int32_t *row) {
    const size_t a0 = ex->id_start[2 * e], a1 = ex->id_start[2 * e + 1], b1 = ex->id_start[2 * e + 2];
    const size_t extra = 2 + (t->first_pooling ? 1 : 0);
    size_t na = a1 - a0, nb = b1 - a1, n = 0;
    while (na + nb + extra > T && na + nb > 0) *(na >= nb ? &na : &nb) -= 1;
    if (t->first_pooling) row[n++] = t->cls;
    for (size_t k = 0; k < na; k++) row[n++] = ex->ids[a0 + k];
    if (n < T) row[n++] = t->sep;
    for (size_t k = 0; k < nb && n < T; k++) row[n++] = ex->ids[a1 + k];
    if (n < T) row[n++] = t->sep;
    return n;
}

/* The length text_row (joint: joint_row) gives row k of example e at most T long, without writing it. */
static size_t row_length(const Task *t, const Examples *ex, size_t e, size_t k, bool joint, size_t T) {
    const size_t texts = (size_t)ex->texts, i = e * texts + (joint ? 0 : k);
    const size_t values = ex->id_start[i + (joint ? 2 : 1)] - ex->id_start[i];
    const size_t D = ex->reals && t->inputs ? (size_t)t->cfg->d_input : 1; /* signal_row's frames */
    const size_t len = (values + D - 1) / D + (t->first_pooling ? 1 : 0) + (joint ? 2 : 0);
    return len == 0 ? 1 : len < T ? len : T;
}

/* The smallest power of two >= n, at least 8, at most T: few distinct row
 * lengths, so the model keeps a plan for each. */
static size_t bucket(size_t n, size_t T) {
    size_t b = 8;
    while (b < n) b *= 2;
    return b < T ? b : T;
}

/* The length of a batch's rows whose longest text is `longest` (at most T). */
static size_t batch_length(const Task *t, size_t longest, size_t T) {
    /* attend_padding: the Nystromformer GLUE code's rows, always T long and without a mask */
    return t->cfg->attend_padding ? T : bucket(longest, T);
}

/* Row r of L positions: <pad> after its len tokens, and its mask. */
static void pad_row(Task *t, size_t r, size_t len, size_t L) {
    int32_t *row = t->ids + r * L;
    const size_t D = (size_t)t->cfg->d_input;
    for (size_t p = 0; p < L; p++) {
        if (p >= len) row[p] = t->pad;
        if (p >= len && t->inputs) memset(t->inputs + (r * L + p) * D, 0, D * sizeof *t->inputs);
        t->mask_buf[r * L + p] = p < len ? 1.0f : 0.0f;
    }
}

/* Rows of examples idx[0, n) of ex: ids, mask, labels or values; the row length. */
static size_t fill_examples(Task *t, const Examples *ex, const uint32_t *idx, size_t n, size_t T, Batch *b) {
    const size_t texts = (size_t)ex->texts, rows = rows_per_example(t, ex);
    const bool joint = texts == 2 && rows == 1;
    size_t longest = 1;
    for (size_t e = 0; e < n; e++)
        for (size_t k = 0; k < rows; k++) {
            const size_t len = row_length(t, ex, idx[e], k, joint, T);
            longest = len > longest ? len : longest;
        }
    const size_t L = batch_length(t, longest, T);
    for (size_t e = 0; e < n; e++) {
        for (size_t k = 0; k < rows; k++) {
            const size_t r = e * rows + k;
            int32_t *row = t->ids + r * L;
            float *inputs = t->inputs ? t->inputs + r * L * (size_t)t->cfg->d_input : NULL;
            pad_row(t, r, joint ? joint_row(t, ex, idx[e], L, row) : text_row(t, ex, idx[e] * texts + k, L, row, inputs), L);
        }
        if (!ex->labelled) continue; /* a test split: predictions only */
        if (t->kind == OBJ_CLASSIFICATION) t->labels[e] = ex->labels[idx[e]];
        else t->values[e] = ex->values[idx[e]];
    }
    *b = (Batch){.B = n * rows, .T = L, .ids = t->ids, .inputs = t->inputs, .mask = t->cfg->attend_padding ? NULL : t->mask_buf, .scored = n,
                 .labels = ex->labelled && t->kind == OBJ_CLASSIFICATION ? t->labels : NULL,
                 .values = ex->labelled && t->kind == OBJ_REGRESSION ? t->values : NULL};
    return L;
}

/* Rows of the wikihop windows idx[0, n) of w: tokens, mask, the
 * candidates' slots and the answers' positions; the row length. */
static size_t fill_questions(Task *t, const WikiHop *w, const uint32_t *idx, size_t n, size_t T, Batch *b) {
    size_t longest = 1;
    for (size_t e = 0; e < n; e++) {
        const size_t len = w->window_start[idx[e] + 1] - w->window_start[idx[e]];
        longest = len > longest ? len : longest;
    }
    const size_t L = batch_length(t, longest, T);
    for (size_t e = 0; e < n; e++) {
        const size_t i = idx[e], q = w->window_question[i], len = w->window_start[i + 1] - w->window_start[i];
        memcpy(t->ids + e * L, w->ids + w->window_start[i], len * sizeof *t->ids);
        pad_row(t, e, len, L);
        float *slots = t->slots + e * L;
        memset(slots, 0, L * sizeof *slots);
        for (size_t k = w->slot_start[q]; k < w->slot_start[q + 1]; k++) slots[w->slot_position[k]] = 1.0f;
        if (w->labelled) t->labels[e] = (int32_t)w->slot_position[w->slot_start[q] + (size_t)w->answer[q]];
    }
    *b = (Batch){.B = n, .T = L, .ids = t->ids, .mask = t->cfg->attend_padding ? NULL : t->mask_buf,
                 .slots = t->slots, .labels = w->labelled ? t->labels : NULL, .scored = n};
    return L;
}

/* Rows of the split's examples (labelled texts or wikihop windows) idx[0, n). */
static size_t fill_padded(Task *t, int split, const uint32_t *idx, size_t n, size_t T, Batch *b) {
    return questions(t) ? fill_questions(t, &t->wh[split], idx, n, T, b) : fill_examples(t, &t->ex[split], idx, n, T, b);
}

/* ---- training batches ---- */

/* Rows of sequences idx[0, n) of s: inputs tokens 0 .. len-2, targets 1 .. len-1. */
static void fill_sequences(Task *t, const ArSet *s, const uint32_t *idx, size_t n) {
    const size_t T = s->len - 1;
    for (size_t e = 0; e < n; e++) {
        const int32_t *x = s->tokens + idx[e] * s->len;
        memcpy(t->ids + e * T, x, T * sizeof *x);
        memcpy(t->targets + e * T, x + 1, T * sizeof *x);
    }
}

/* Rows of the training windows idx[0, n) of T tokens. */
static void fill_windows(Task *t, const uint32_t *idx, size_t n, size_t T) {
    for (size_t e = 0; e < n; e++)
        token_window(&t->corpus.split[SPLIT_TRAIN], idx[e] * T, T, t->ids + e * T, t->targets + e * T);
}

int task_next(Task *t, Batch *b, uint64_t step, Error *err) {
    const Config *c = t->cfg;
    const size_t B = (size_t)c->batch_size, T = (size_t)c->tgt_len;
    if (t->recall || t->windows) {
        uint32_t idx[4096];
        if (B > sizeof idx / sizeof *idx) return err_set(err, "batch_size %zu: at most 4096 sequences per batch", B);
        if (t->cursor + B > train_examples(t)) { /* the rest cannot fill a batch: a new epoch, a new order */
            t->cursor = 0;
            t->epoch++;
            shuffle(t);
        }
        for (size_t e = 0; e < B; e++) idx[e] = t->order[t->cursor++];
        if (t->recall) fill_sequences(t, &t->ar_train, idx, B);
        else fill_windows(t, idx, B, T);
        *b = (Batch){.B = B, .T = T, .ids = t->ids, .targets = t->targets, .scored = B * T};
        return 0;
    }
    if (padded(t)) {
        const size_t n = train_examples(t);
        uint32_t idx[4096];
        if (B > sizeof idx / sizeof *idx) return err_set(err, "batch_size %zu: at most 4096 examples per batch", B);
        for (size_t e = 0; e < B; e++) {
            if (t->cursor == n) { /* a new epoch, a new order */
                t->cursor = 0;
                t->epoch++;
                shuffle(t);
            }
            idx[e] = t->order[t->cursor++];
        }
        fill_padded(t, SPLIT_TRAIN, idx, B, T, b);
        return 0;
    }
    stream_next(&t->train, t->ids, t->targets);
    t->cursor = t->train.cursor;
    t->epoch = t->train.epoch;
    *b = (Batch){.B = B, .T = T, .ids = t->ids, .targets = t->targets, .scored = B * T};
    if (t->kind == OBJ_MLM) b->scored = mask_rows(t, B, T, rng_stream(RNG_DATA, STREAM_MLM, step));
    return 0;
}

Batch task_rows(const Task *t, const Batch *b, size_t e0, size_t n) {
    const size_t texts = labelled(t) ? rows_per_example(t, &t->ex[SPLIT_TRAIN]) : 1, r0 = e0 * texts;
    Batch part = *b;
    part.B = n * texts;
    part.ids = b->ids + r0 * b->T;
    if (b->mask) part.mask = b->mask + r0 * b->T;
    if (b->targets) part.targets = b->targets + r0 * b->T;
    if (b->slots) part.slots = b->slots + r0 * b->T;
    if (b->labels) part.labels = b->labels + e0;
    if (b->values) part.values = b->values + e0;
    return part;
}

/* ---- evaluation ---- */

/* The batch as the model saw it, with the model's summed loss over its
 * `scored` positions: a safetensors file another implementation can score
 * (tests/ref/nystrom_original_check.py). */
static int write_batch(const Task *t, const Batch *b, double loss_sum, size_t scored, Error *err) {
    const size_t shape[2] = {b->B, b->T};
    const StTensorOut tensors[] = {{"ids", ST_I32, 2, shape, b->ids}, {"targets", ST_I32, 2, shape, b->targets}};
    char loss[64], count[32];
    snprintf(loss, sizeof loss, "%.17g", loss_sum);
    snprintf(count, sizeof count, "%zu", scored);
    const StMetaPair meta[] = {{"format", "seqlab-batch"}, {"loss_sum", loss}, {"scored", count}};
    if (st_write(t->save_batch, tensors, 2, meta, 3, err)) return err_prefix(err, "--save_batch");
    return 0;
}

/* Masked LM over the split's windows (as lm evaluates: eval_batch_size rows
 * of eval_tgt_len), each window masked by its own fixed draws; under MPI each
 * rank scores its share of the windows, added in window order. */
static int evaluate_masked(Task *t, Model *m, int split, EvalResult *r, Error *err) {
    const Config *c = t->cfg;
    const size_t rows = (size_t)c->eval_batch_size, T = (size_t)c->eval_tgt_len;
    Stream s;
    if (stream_init(&s, &t->corpus.split[split], rows, stream_width(t, T), 1, split_names[split], err)) return -1;
    size_t windows = stream_windows(&s), lo, hi;
    if (c->eval_max_batches > 0 && windows > (size_t)c->eval_max_batches) windows = (size_t)c->eval_max_batches;
    dist_share(windows, &lo, &hi);
    double *sums = xcalloc(windows + 1, sizeof *sums, err);
    if (!sums) return -1;
    const PassMode mode = {.training = false};
    int rc = 0;
    for (size_t k = 0; k < windows && !rc; k++) {
        size_t len;
        stream_window(&s, k, t->ids, t->targets, &len);
        if (c->mlm_blocks) len += 2;
        Batch b = {.B = rows, .T = len, .ids = t->ids, .targets = t->targets};
        const size_t scored = mask_rows(t, rows, len, rng_stream(RNG_DATA, STREAM_MLM_EVAL, k));
        r->count += scored;
        if (k < lo || k >= hi) continue;
        rc = model_plan(m, rows, len, err) || model_forward_batch(m, &b, &mode, 0.0f, &sums[k], err);
        if (!rc && k == 0 && t->save_batch) rc = write_batch(t, &b, sums[k], scored, err);
    }
    if (!rc) r->loss = r->count ? dist_sum_in_order(sums, windows, 1) / (double)r->count : 0.0;
    r->masked = true;
    free(sums);
    return rc;
}

/* GLUE's submission file: "index<TAB>prediction" per example in order, the
 * class's name when label_names gives them, its id, or the number. */
static int write_predictions(const Task *t, const int32_t *pred, const float *out, size_t n, Error *err) {
    FILE *f = fopen(t->predictions, "w");
    if (!f) return err_errno(err, "--predictions: cannot write '%s'", t->predictions);
    const char *names = t->cfg->label_names;
    fprintf(f, "index\tprediction\n");
    for (size_t e = 0; e < n; e++) {
        if (t->kind == OBJ_REGRESSION) {
            fprintf(f, "%zu\t%.6g\n", e, out[e]);
            continue;
        }
        const char *p = names;
        for (int32_t k = 0; *p && k < pred[e]; k++) p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',');
        if (*p) fprintf(f, "%zu\t%.*s\n", e, (int)strcspn(p, ","), p);
        else fprintf(f, "%zu\t%d\n", e, pred[e]);
    }
    if (fclose(f)) return err_errno(err, "--predictions: writing '%s'", t->predictions);
    return 0;
}

/* Every example of the split in order, eval_batch_size at a time; with
 * t->predictions also the predictions file (the split may lack labels).
 * Under MPI each rank scores its share of the batches; the predictions are
 * gathered and the losses added in batch order. */
static int evaluate_examples(Task *t, Model *m, int split, EvalResult *r, Error *err) {
    const Config *c = t->cfg;
    const Examples *ex = &t->ex[split];
    const size_t B = (size_t)c->eval_batch_size, K = m->obj.K, batches = (ex->n + B - 1) / B;
    int32_t *pred = xcalloc(ex->n + 1, sizeof *pred, err);
    float *out = xcalloc(ex->n + 1, sizeof *out, err);
    double *sums = xcalloc(batches + 1, sizeof *sums, err);
    int rc = pred && out && sums ? 0 : -1;
    const PassMode mode = {.training = false};
    size_t lo, hi;
    dist_share(batches, &lo, &hi);
    for (size_t k = lo; !rc && k < hi; k++) {
        const size_t e0 = k * B, n = ex->n - e0 < B ? ex->n - e0 : B;
        uint32_t idx[4096];
        for (size_t e = 0; e < n && e < 4096; e++) idx[e] = (uint32_t)(e0 + e);
        Batch b;
        fill_examples(t, ex, idx, n, (size_t)c->eval_tgt_len, &b);
        rc = model_plan(m, b.B, b.T, err) || model_forward_batch(m, &b, &mode, 0.0f, &sums[k], err);
        for (size_t e = 0; !rc && e < n; e++) {
            const float *z = m->obj.scores + e * K;
            size_t best = 0;
            for (size_t j = 1; j < K; j++) best = z[j] > z[best] ? j : best;
            pred[e0 + e] = (int32_t)best;
            out[e0 + e] = z[0];
        }
    }
    if (!rc) {
        dist_gather_shares(pred, ex->n, B, sizeof *pred);
        dist_gather_shares(out, ex->n, B, sizeof *out);
        r->loss = dist_sum_in_order(sums, batches, 1) / (double)ex->n;
    }
    if (!rc && t->predictions && dist_rank() == 0) rc = write_predictions(t, pred, out, ex->n, err);
    if (!rc) {
        r->count = ex->n;
        r->classes = t->kind == OBJ_CLASSIFICATION;
        r->numbers = !r->classes;
        r->unlabelled = !ex->labelled;
        if (r->unlabelled) r->loss = 0.0;
        else if (r->classes) scores_classes(pred, ex->labels, ex->n, K, &r->accuracy, &r->f1, &r->mcc);
        else scores_correlation(out, ex->values, ex->n, &r->pearson, &r->spearman);
    }
    free(pred);
    free(out);
    free(sums);
    return rc;
}

/* wikihop's submission file: a JSON object of question id -> the predicted candidate. */
static int write_answers(const Task *t, const WikiHop *w, const int32_t *pred, Error *err) {
    FILE *f = fopen(t->predictions, "w");
    if (!f) return err_errno(err, "--predictions: cannot write '%s'", t->predictions);
    fputc('{', f);
    for (size_t q = 0; q < w->n_questions; q++) {
        fputs(q ? ",\n " : "\n ", f);
        json_write_string(f, w->strings + w->id_at[q]);
        fputs(": ", f);
        json_write_string(f, w->strings + w->candidate_at[w->slot_start[q] + (size_t)pred[q]]);
    }
    fputs("\n}\n", f);
    if (fclose(f)) return err_errno(err, "--predictions: writing '%s'", t->predictions);
    return 0;
}

/* Window e of batch b: its candidates' scores added to the question's sums;
 * whether its own best candidate is the answer. */
static bool score_window(const WikiHop *w, size_t window, const float *z, double *sums) {
    const size_t q = w->window_question[window], s0 = w->slot_start[q], K = w->slot_start[q + 1] - s0;
    size_t best = 0;
    for (size_t k = 0; k < K; k++) {
        sums[s0 + k] += z[w->slot_position[s0 + k]];
        best = z[w->slot_position[s0 + k]] > z[w->slot_position[s0 + best]] ? k : best;
    }
    return w->answer[q] == (int32_t)best;
}

/* Every window of the split, eval_batch_size at a time: the windows' loss
 * and accuracy, and the questions' accuracy from the candidates' scores
 * summed over their windows (wikihop_vote); with t->predictions the answers.
 * Under MPI each rank scores its share of the batches; a question whose
 * windows fall to two ranks sums its scores in another order, equal to the
 * rounding. */
static int evaluate_questions(Task *t, Model *m, int split, EvalResult *r, Error *err) {
    const WikiHop *w = &t->wh[split];
    const size_t B = (size_t)t->cfg->eval_batch_size, batches = (w->n_windows + B - 1) / B;
    double *sums = xcalloc(w->n_slots + 1, sizeof *sums, err), *losses = xcalloc(batches + 1, sizeof *losses, err);
    int32_t *pred = xmalloc((w->n_questions + 1) * sizeof *pred, err);
    int rc = sums && pred && losses ? 0 : -1;
    uint64_t right_windows = 0;
    const PassMode mode = {.training = false};
    size_t lo, hi;
    dist_share(batches, &lo, &hi);
    for (size_t k = lo; !rc && k < hi; k++) {
        const size_t e0 = k * B, n = w->n_windows - e0 < B ? w->n_windows - e0 : B;
        uint32_t idx[4096];
        for (size_t e = 0; e < n && e < 4096; e++) idx[e] = (uint32_t)(e0 + e);
        Batch b;
        fill_questions(t, w, idx, n, (size_t)t->cfg->eval_tgt_len, &b);
        rc = model_plan(m, b.B, b.T, err) || model_forward_batch(m, &b, &mode, 0.0f, &losses[k], err);
        for (size_t e = 0; !rc && e < n; e++) right_windows += score_window(w, e0 + e, m->obj.scores + e * b.T, sums);
    }
    double loss_sum = 0.0;
    if (!rc) {
        dist_sum_doubles(sums, w->n_slots);
        dist_sum_u64(&right_windows, 1);
        loss_sum = dist_sum_in_order(losses, batches, 1);
    }
    const size_t right = rc ? 0 : wikihop_vote(w, sums, pred);
    if (!rc && t->predictions && dist_rank() == 0) rc = write_answers(t, w, pred, err);
    if (!rc) {
        *r = (EvalResult){.count = w->n_questions, .windows = w->n_windows, .questions = true,
                          .unlabelled = !w->labelled, .loss = w->labelled ? loss_sum / (double)w->n_windows : 0.0,
                          .accuracy = (double)right / (double)w->n_questions,
                          .window_accuracy = (double)right_windows / (double)w->n_windows};
    }
    free(sums);
    free(losses);
    free(pred);
    return rc;
}

/* The recalled value: the last position of every test sequence, its loss
 * (log-softmax of the logits) and whether the argmax is the value. Under
 * MPI each rank scores its share of the batches, added in batch order. */
static int evaluate_recall(Task *t, Model *m, EvalResult *r, Error *err) {
    const Config *c = t->cfg;
    const ArSet *s = &t->ar_test;
    const size_t B = (size_t)c->eval_batch_size, T = s->len - 1, V = m->V, batches = (s->n + B - 1) / B;
    const PassMode mode = {.training = false};
    double *sums = xcalloc(batches + 1, sizeof *sums, err);
    if (!sums) return -1;
    uint64_t correct = 0;
    size_t lo, hi;
    dist_share(batches, &lo, &hi);
    for (size_t k = lo; k < hi; k++) {
        const size_t e0 = k * B, n = s->n - e0 < B ? s->n - e0 : B;
        uint32_t idx[4096];
        for (size_t e = 0; e < n && e < 4096; e++) idx[e] = (uint32_t)(e0 + e);
        fill_sequences(t, s, idx, n);
        Batch b = {.B = n, .T = T, .ids = t->ids};
        if (model_plan(m, n, T, err) || model_forward_batch(m, &b, &mode, 0.0f, NULL, err)) {
            free(sums);
            return -1;
        }
        for (size_t e = 0; e < n; e++) {
            const float *z = m->logits + ((e + 1) * T - 1) * V;
            const int32_t answer = t->targets[(e + 1) * T - 1];
            size_t best = 0;
            double mx = z[0], lse = 0.0;
            for (size_t v = 1; v < V; v++) best = z[v] > z[best] ? v : best, mx = z[v] > mx ? z[v] : mx;
            for (size_t v = 0; v < V; v++) lse += exp((double)z[v] - mx);
            sums[k] += mx + log(lse) - z[answer];
            correct += best == (size_t)answer;
        }
    }
    dist_sum_u64(&correct, 1);
    r->count = s->n;
    r->loss = dist_sum_in_order(sums, batches, 1) / (double)s->n;
    r->accuracy = (double)correct / (double)s->n;
    r->recall = true;
    free(sums);
    return 0;
}

int task_evaluate(Task *t, Model *m, int split, EvalResult *r, Error *err) {
    memset(r, 0, sizeof *r);
    if (!task_has_split(t, split)) return 0;
    if (t->recall) return evaluate_recall(t, m, r, err);
    if (labelled(t)) return evaluate_examples(t, m, split, r, err);
    if (questions(t)) return evaluate_questions(t, m, split, r, err);
    if (t->kind == OBJ_MLM) return evaluate_masked(t, m, split, r, err);
    return evaluate_split(m, &t->corpus.split[split], split_names[split], &r->loss, &r->count, err);
}
