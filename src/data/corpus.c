/* corpus.c — see corpus.h: finding a dataset's files, splitting and
 * tokenising raw text. Prepared datasets are in prepared.c. */
#include "corpus.h"

#include <stdlib.h>
#include <string.h>

#include "../core/file.h"

const char *const split_names[SPLIT_COUNT] = {"train", "valid", "test"};

int split_parse(const char *name, int *split, Error *err) {
    for (int s = 0; s < SPLIT_COUNT; s++)
        if (name && strcmp(name, split_names[s]) == 0) return *split = s, 0;
    return err_set(err, "unknown split '%s'; choose train, valid or test", name ? name : "");
}

void corpus_free(Corpus *cp) {
    for (int s = 0; s < SPLIT_COUNT; s++) {
        free(cp->owned[s]);
        tokfile_close(&cp->files[s]);
    }
    memset(cp, 0, sizeof *cp);
}


/* `key`'s path, or when empty the first data root holding gpt2/<name>. */
/* The BPE file `given`, else gpt2/<openai> or gpt2/<hf> under the data
 * roots: OpenAI's names (encoder.json, vocab.bpe) and Hugging Face's
 * (vocab.json, merges.txt) for the same mapping and merges. */
static int bpe_file(const char *given, const char *openai, const char *hf, const char *key, char *out, size_t n,
                    Error *err) {
    if (given[0]) return snprintf(out, n, "%s", given), 0;
    const char *roots[3], *names[2] = {openai, hf};
    int k = dataset_roots(roots);
    for (int i = 0; i < k; i++)
        for (int j = 0; j < 2; j++) {
            snprintf(out, n, "%s/gpt2/%s", roots[i], names[j]);
            if (file_is_regular(out)) return 0;
        }
    return err_set(err, "tokenizer bpe: no gpt2/%s (or %s) under $SEQLAB_DATA, ./data or ../shared/data; fetch "
                        "GPT-2's files with scripts/getdata.sh gpt2, or give the file with the key '%s'", openai, hf,
                   key);
}

/* What tokenizer auto means: the dataset's own, or for the LRA's formats
 * (key format) ListOps' symbols as words and bytes for the others (the LRA's
 * ByteTextEncoder; pixels as byte ids). */
static TokenizerType auto_tokenizer(const Config *c, const Dataset *ds) {
    if (!strcmp(c->format, "listops")) return TOK_WORD;
    return strcmp(c->format, "tsv") ? TOK_BYTE : ds->tokenizer;
}

int corpus_tokenizer(const Config *c, Tokenizer *tok, Error *err) {
    memset(tok, 0, sizeof *tok);
    const Dataset *ds = dataset_find(c->dataset);
    if (!ds) return err_set(err, "unknown dataset '%s'", c->dataset);
    if (strcmp(c->tokenizer, "auto") == 0) tok->type = auto_tokenizer(c, ds);
    else if (tokenizer_type_parse(c->tokenizer, &tok->type)) return err_set(err, "unknown tokenizer '%s'", c->tokenizer);
    if (tok->type != TOK_BPE) return 0;
    char vocab[CFG_PATH], merges[CFG_PATH];
    if (bpe_file(c->bpe_vocab, "encoder.json", "vocab.json", "bpe_vocab", vocab, sizeof vocab, err) ||
        bpe_file(c->bpe_merges, "vocab.bpe", "merges.txt", "bpe_merges", merges, sizeof merges, err))
        return -1;
    return tokenizer_bpe(tok, vocab, merges, err);
}

/* WikiText with BPE reads the raw variant, a row at a time. */
static bool raw_rows(const Dataset *ds, const Tokenizer *tok) { return tok->type == TOK_BPE && ds->raw_files[0]; }

/* The dataset's folder or file: `data`, else the first data root holding
 * the dataset's folder ("" for `text`, which names its files itself). */
static int find_base(const Config *c, const Dataset *ds, bool rows, char *base, size_t n, Error *err) {
    if (c->data[0] || !ds->dir) return snprintf(base, n, "%s", c->data), 0;
    const char *dir = rows ? ds->raw_dir : ds->dir, *roots[3];
    int k = dataset_roots(roots);
    for (int i = 0; i < k; i++) {
        snprintf(base, n, "%s/%s", roots[i], dir);
        if (file_is_dir(base)) return 0;
    }
    return err_set(err, "dataset '%s': no folder '%s' under $SEQLAB_DATA, ./data or ../shared/data; fetch it with "
                        "scripts/getdata.sh %s, or give its place with the key 'data'", ds->name, dir, ds->name);
}

/* ------------------------------------------------------------------------ */
/* Raw text                                                                  */

/* The text of one split: a byte range of a mapped file. */
typedef struct {
    const unsigned char *text;
    size_t n;
} SplitText;

static int map_text(FileMap *m, const char *path, Error *err) {
    if (file_map(m, path, "data file", err)) return -1;
    if (m->size == 0) return err_set(err, "data file '%s' is empty", path);
    return 0;
}

/* The first character boundary at or after byte at (UTF-8 continuation
 * bytes are 10xxxxxx); byte data has a boundary everywhere. */
static size_t boundary(const unsigned char *s, size_t n, size_t at, bool bytes) {
    while (!bytes && at < n && (s[at] & 0xC0) == 0x80) at++;
    return at;
}

/* Cuts one mapped file into train | valid | test by the configured fractions. */
static void split_by_fraction(const Config *c, const FileMap *m, bool bytes, SplitText *out) {
    const size_t n = m->size;
    size_t test_at = boundary(m->data, n, n - (size_t)((double)n * c->test_fraction), bytes);
    size_t valid_at = boundary(m->data, n, n - (size_t)((double)n * (c->valid_fraction + c->test_fraction)), bytes);
    if (valid_at > test_at) valid_at = test_at;
    out[SPLIT_TRAIN] = (SplitText){m->data, valid_at};
    out[SPLIT_VALID] = (SplitText){m->data + valid_at, test_at - valid_at};
    out[SPLIT_TEST] = (SplitText){m->data + test_at, n - test_at};
}

/* A held-out split cut by a fraction must hold something to predict: a
 * next token after a first one. */
static int check_held_out(const Config *c, const SplitText *texts, const char *path, Error *err) {
    const double fraction[SPLIT_COUNT] = {0.0, c->valid_fraction, c->test_fraction};
    for (int s = SPLIT_VALID; s < SPLIT_COUNT; s++)
        if (fraction[s] > 0.0 && texts[s].n < 2)
            return err_set(err, "'%s' is too short to hold out a %s split: %s_fraction %g of it is %zu bytes, too few to "
                           "predict one token; give more text, or set %s_fraction 0", path, split_names[s],
                           split_names[s], fraction[s], texts[s].n, split_names[s]);
    return 0;
}

static bool has_split_files(const Config *c) { return c->train_file[0] || c->valid_file[0] || c->test_file[0]; }

/* The raw file of each split: one file split by fraction (the same path
 * three times), or a file per split; train_file/valid_file/test_file, when
 * given, name the split files instead. */
static int split_paths(Corpus *cp, const Config *c, const Dataset *ds, bool rows, const char *base, bool *by_fraction,
                       Error *err) {
    const char *overrides[SPLIT_COUNT] = {c->train_file, c->valid_file, c->test_file};
    const char *const *files = rows ? ds->raw_files : ds->files;
    *by_fraction = !has_split_files(c) && (ds->file || (!ds->dir && base[0]));
    const bool in_dir = ds->file && file_is_dir(base);
    for (int s = 0; s < SPLIT_COUNT; s++) {
        if (*by_fraction)
            snprintf(cp->path[s], CFG_PATH, "%s%s%s", base, in_dir ? "/" : "", in_dir ? ds->file : "");
        else if (overrides[s][0])
            snprintf(cp->path[s], CFG_PATH, "%s", overrides[s]);
        else if (files[s] && base[0])
            snprintf(cp->path[s], CFG_PATH, "%s/%s", base, files[s]);
    }
    if (!cp->path[SPLIT_TRAIN][0])
        return err_set(err, "no data: set key 'data' (one text file) or 'train_file' (with 'valid_file' and "
                            "'test_file'), or a named dataset (key 'dataset')");
    return 0;
}

/* Maps the split files (one, or one per split) and points texts[] at the splits. */
static int map_splits(const Corpus *cp, const Config *c, bool by_fraction, bool bytes, FileMap *maps,
                      SplitText *texts, Error *err) {
    if (by_fraction) {
        if (map_text(&maps[0], cp->path[0], err)) return -1;
        split_by_fraction(c, &maps[0], bytes, texts);
        return 0;
    }
    for (int s = 0; s < SPLIT_COUNT; s++) {
        if (!cp->path[s][0]) continue; /* no valid or test file: that split stays empty */
        if (map_text(&maps[s], cp->path[s], err)) return -1;
        texts[s] = (SplitText){maps[s].data, maps[s].size};
    }
    return 0;
}

/* text8 holds only its 27 symbols; anything else is another file. */
static int check_alphabet(const Dataset *ds, const SplitText *t, const char *path, Error *err) {
    if (!ds->alphabet) return 0;
    for (size_t i = 0; i < t->n; i++)
        if (!t->text[i] || !strchr(ds->alphabet, t->text[i]))
            return err_set(err, "'%s': byte %zu (0x%02x) is not one of %s's symbols (a-z and space)", path, i,
                           t->text[i], ds->name);
    return 0;
}

/* Encodes the three splits; held-out unknown characters need <unk>, which a
 * fresh char vocabulary gains only when some occur. */
/* One split's ids: the tokenizer's, or GPT-2 BPE a row at a time. */
static int encode_split(Corpus *cp, int s, const Tokenizer *tok, bool rows, bool map_unknown, const SplitText *t,
                        size_t *n, size_t *unknown, Error *err) {
    if (!rows)
        return tokenizer_encode(tok, t->text, t->n, map_unknown, &cp->owned[s], n, unknown, cp->path[s], err);
    int32_t eos = bpe_token_id(tok->bpe, "<|endoftext|>");
    if (eos < 0) return err_set(err, "'%s' has no <|endoftext|> token to end the rows with", tok->bpe_vocab);
    if (bpe_encode_rows(tok->bpe, t->text, t->n, eos, &cp->owned[s], n, err)) return err_prefix(err, "%s", cp->path[s]);
    return 0;
}

static int encode_splits(Corpus *cp, Tokenizer *tok, bool build_vocab, bool rows, const SplitText *texts, Error *err) {
    if (build_vocab && tokenizer_build(tok, texts[SPLIT_TRAIN].text, texts[SPLIT_TRAIN].n, cp->path[SPLIT_TRAIN], err))
        return -1;
    for (int s = 0; s < SPLIT_COUNT; s++) {
        size_t unknown = 0, n = 0;
        bool held_out = s != SPLIT_TRAIN;
        if (build_vocab && held_out) tokenizer_add_unk(tok); /* dropped again below if nothing needed it */
        if (encode_split(cp, s, tok, rows, !build_vocab || held_out, &texts[s], &n, &unknown, err)) return -1;
        cp->split[s] = token_view_i32(cp->owned[s], n);
        cp->unknown += held_out ? unknown : 0;
    }
    if (build_vocab && tok->type == TOK_CHAR && cp->unknown == 0) tok->unk = false;
    return 0;
}

static int load_raw(Corpus *cp, const Config *c, const Dataset *ds, const char *base, Tokenizer *tok,
                    bool build_vocab, Error *err) {
    FileMap maps[SPLIT_COUNT] = {{0}};
    SplitText texts[SPLIT_COUNT] = {{0}};
    bool by_fraction, rows = raw_rows(ds, tok);
    int rc = split_paths(cp, c, ds, rows, base, &by_fraction, err) ||
             map_splits(cp, c, by_fraction, tok->type == TOK_BYTE, maps, texts, err);
    for (int s = 0; s < SPLIT_COUNT && !rc; s++) rc = check_alphabet(ds, &texts[s], cp->path[s], err);
    if (!rc && texts[SPLIT_TRAIN].n == 0) rc = err_set(err, "the training split of '%s' is empty", cp->path[0]);
    if (!rc && by_fraction) rc = check_held_out(c, texts, cp->path[0], err);
    if (!rc) rc = encode_splits(cp, tok, build_vocab, rows, texts, err);
    for (int s = 0; s < SPLIT_COUNT; s++) file_unmap(&maps[s]);
    return rc ? -1 : 0;
}

int corpus_load(Corpus *cp, const Config *c, Tokenizer *tok, bool build_vocab, Error *err) {
    memset(cp, 0, sizeof *cp);
    const Dataset *ds = dataset_find(c->dataset);
    char base[CFG_PATH] = "";
    int rc = ds ? 0 : err_set(err, "unknown dataset '%s'", c->dataset);
    if (!rc && find_base(c, ds, raw_rows(ds, tok), base, sizeof base, err)) {
        if (has_split_files(c)) base[0] = 0; /* the split files are named: no folder needed */
        else rc = -1;
    }
    if (!rc && base[0] && prepared_exists(base)) rc = prepared_load(cp, c, base, tok, build_vocab, err);
    else if (!rc) rc = load_raw(cp, c, ds, base, tok, build_vocab, err);
    if (rc) corpus_free(cp);
    return rc;
}
