/* corpus.c — see corpus.h. */
#include "corpus.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/file.h"

const char *const split_names[SPLIT_COUNT] = {"train", "valid", "test"};

int split_parse(const char *name, int *split, Error *err) {
    for (int s = 0; s < SPLIT_COUNT; s++)
        if (name && strcmp(name, split_names[s]) == 0) return *split = s, 0;
    return err_set(err, "unknown split '%s'; choose train, valid or test", name ? name : "");
}

void corpus_free(Corpus *cp) {
    for (int s = 0; s < SPLIT_COUNT; s++) free(cp->ids[s]);
    memset(cp, 0, sizeof *cp);
}

/* The text of one split: a byte range of a mapped file. */
typedef struct {
    const unsigned char *text;
    size_t n;
    const char *path; /* for messages */
} SplitText;

static bool is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Where `dataset: shakespeare` is found: the first of $SEQLAB_DATA, ./data
 * and ../shared/data that holds tinyshakespeare/input.txt. */
static int find_shakespeare(char *path, size_t n, Error *err) {
    const char *roots[] = {getenv("SEQLAB_DATA"), "data", "../shared/data"};
    for (size_t i = 0; i < sizeof roots / sizeof *roots; i++) {
        if (!roots[i] || !roots[i][0]) continue;
        snprintf(path, n, "%s/tinyshakespeare/input.txt", roots[i]);
        if (is_file(path)) return 0;
    }
    return err_set(err, "dataset 'shakespeare': tinyshakespeare/input.txt is not under $SEQLAB_DATA, ./data or "
                        "../shared/data; fetch it with scripts/getdata.sh shakespeare");
}

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
static void split_by_fraction(const Config *c, const FileMap *m, const char *path, bool bytes, SplitText *out) {
    const size_t n = m->size;
    size_t test_at = boundary(m->data, n, n - (size_t)((double)n * c->test_fraction), bytes);
    size_t valid_at = boundary(m->data, n, n - (size_t)((double)n * (c->valid_fraction + c->test_fraction)), bytes);
    if (valid_at > test_at) valid_at = test_at;
    out[SPLIT_TRAIN] = (SplitText){m->data, valid_at, path};
    out[SPLIT_VALID] = (SplitText){m->data + valid_at, test_at - valid_at, path};
    out[SPLIT_TEST] = (SplitText){m->data + test_at, n - test_at, path};
}

/* Maps the configured file(s) into maps[] and points texts[] at the splits. */
static int map_splits(Corpus *cp, const Config *c, bool bytes, FileMap *maps, SplitText *texts, Error *err) {
    char(*paths)[CFG_PATH] = cp->path;
    const char *files[SPLIT_COUNT] = {c->train_file, c->valid_file, c->test_file};
    if (strcmp(c->dataset, "shakespeare") == 0) {
        if (find_shakespeare(paths[0], CFG_PATH, err)) return -1;
    } else if (c->data[0]) {
        snprintf(paths[0], CFG_PATH, "%s", c->data);
    } else if (!c->train_file[0]) {
        return err_set(err, "no data: set key 'data' (one text file) or 'train_file' (with 'valid_file' and "
                            "'test_file'), or 'dataset: shakespeare'");
    } else {
        for (int s = 0; s < SPLIT_COUNT; s++) {
            if (!files[s][0]) continue; /* no valid or test file: that split stays empty */
            snprintf(paths[s], CFG_PATH, "%s", files[s]);
            if (map_text(&maps[s], paths[s], err)) return -1;
            texts[s] = (SplitText){maps[s].data, maps[s].size, paths[s]};
        }
        return 0;
    }
    memcpy(paths[SPLIT_VALID], paths[0], CFG_PATH);
    memcpy(paths[SPLIT_TEST], paths[0], CFG_PATH);
    if (map_text(&maps[0], paths[0], err)) return -1;
    split_by_fraction(c, &maps[0], paths[0], bytes, texts);
    return 0;
}

/* Encodes the three splits; held-out unknown characters need <unk>, which a
 * fresh vocabulary gains only when some occur (a first pass finds out). */
static int encode_splits(Corpus *cp, Tokenizer *tok, bool build_vocab, const SplitText *texts, Error *err) {
    if (build_vocab && tokenizer_build(tok, texts[SPLIT_TRAIN].text, texts[SPLIT_TRAIN].n, texts[SPLIT_TRAIN].path, err))
        return -1;
    for (int s = 0; s < SPLIT_COUNT; s++) {
        size_t unknown = 0;
        bool held_out = s != SPLIT_TRAIN;
        if (build_vocab && held_out) tokenizer_add_unk(tok); /* dropped again below if nothing needed it */
        if (tokenizer_encode(tok, texts[s].text, texts[s].n, !build_vocab || held_out, &cp->ids[s], &cp->n[s],
                             &unknown, texts[s].path, err))
            return -1;
        cp->unknown += unknown;
    }
    if (build_vocab && tok->type == TOK_CHAR && cp->unknown == 0) tok->unk = false;
    return 0;
}

int corpus_load(Corpus *cp, const Config *c, Tokenizer *tok, bool build_vocab, Error *err) {
    memset(cp, 0, sizeof *cp);
    FileMap maps[SPLIT_COUNT] = {{0}};
    SplitText texts[SPLIT_COUNT] = {{0}};
    int rc = map_splits(cp, c, tok->type == TOK_BYTE, maps, texts, err);
    if (!rc && texts[SPLIT_TRAIN].n == 0)
        rc = err_set(err, "the training split of '%s' is empty", texts[SPLIT_TRAIN].path);
    if (!rc) rc = encode_splits(cp, tok, build_vocab, texts, err);
    for (int s = 0; s < SPLIT_COUNT; s++) file_unmap(&maps[s]);
    if (rc) corpus_free(cp);
    return rc;
}
