/* prepared.c — datasets tokenised once (`seqlab data prepare`): a folder of
 * token files, the vocabulary and a dataset.json that says what they are;
 * see corpus.h. Loading maps the token files, so a 100M-token split costs no
 * tokenising and no copy. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/file.h"
#include "../core/json.h"
#include "corpus.h"

static void path_in(char *out, size_t n, const char *dir, const char *file) { snprintf(out, n, "%s/%s", dir, file); }

bool prepared_exists(const char *dir) {
    char path[CFG_PATH + 32];
    struct stat st;
    path_in(path, sizeof path, dir, "dataset.json");
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int write_description(const Corpus *cp, const Config *c, const Tokenizer *tok, const char *dir, Error *err) {
    StrBuf b;
    sb_init(&b);
    sb_appendf(&b, "{\"format\": \"seqlab-dataset\", \"version\": 1, \"dataset\": ");
    sb_append_json_string(&b, c->dataset, strlen(c->dataset));
    sb_appendf(&b, ", \"tokenizer\": \"%s\", \"vocab_size\": %zu, \"tokens\": {", tokenizer_type_name(tok->type),
               tokenizer_vocab(tok));
    for (int s = 0; s < SPLIT_COUNT; s++) sb_appendf(&b, "%s\"%s\": %zu", s ? ", " : "", split_names[s], cp->split[s].n);
    sb_appendf(&b, "}, \"sources\": [");
    for (int s = 0; s < SPLIT_COUNT; s++) {
        sb_appendf(&b, "%s", s ? ", " : "");
        sb_append_json_string(&b, cp->path[s], strlen(cp->path[s]));
    }
    sb_appendf(&b, "]}\n");
    char path[CFG_PATH + 32];
    path_in(path, sizeof path, dir, "dataset.json");
    const void *parts[] = {b.data};
    int rc = b.failed ? err_set(err, "cannot write '%s': out of memory", path) : file_write_atomic(path, parts, &b.len, 1, err);
    sb_free(&b);
    return rc;
}

/* One split's ids as int32 for tokfile_write (prepared corpora are views of
 * token files already; raw ones own int32 arrays). */
static int write_split(const Corpus *cp, int s, size_t vocab, const char *dir, Error *err) {
    char path[CFG_PATH + 32], name[16];
    snprintf(name, sizeof name, "%s.bin", split_names[s]);
    path_in(path, sizeof path, dir, name);
    if (cp->owned[s] || cp->split[s].n == 0) return tokfile_write(path, cp->owned[s], cp->split[s].n, vocab, err);
    int32_t *ids = xmalloc(cp->split[s].n * sizeof *ids, err);
    if (!ids) return -1;
    for (size_t i = 0; i < cp->split[s].n; i++) ids[i] = token_at(&cp->split[s], i);
    int rc = tokfile_write(path, ids, cp->split[s].n, vocab, err);
    free(ids);
    return rc;
}

int prepared_save(const Corpus *cp, const Config *c, const Tokenizer *tok, const char *dir, Error *err) {
    char path[CFG_PATH + 32];
    if (file_make_dirs(dir, err)) return -1;
    for (int s = 0; s < SPLIT_COUNT; s++)
        if (write_split(cp, s, tokenizer_vocab(tok), dir, err)) return -1;
    path_in(path, sizeof path, dir, "vocab.json");
    /* dataset.json last: a folder without it is not taken for a prepared dataset */
    return tokenizer_save(tok, path, err) || write_description(cp, c, tok, dir, err) ? -1 : 0;
}

/* dataset.json must say seqlab-dataset version 1 of the configured dataset. */
static int check_description(const Config *c, const char *dir, Error *err) {
    char path[CFG_PATH + 32];
    path_in(path, sizeof path, dir, "dataset.json");
    JsonValue *v;
    if (json_parse_file(path, &v, err)) return -1;
    const char *format = json_str(json_get(v, "format")), *name = json_str(json_get(v, "dataset"));
    long long version = 0;
    int rc = 0;
    if (!format || strcmp(format, "seqlab-dataset") != 0 || !json_int(json_get(v, "version"), &version) || !name)
        rc = err_set(err, "'%s' is not a seqlab dataset description", path);
    else if (version != 1)
        rc = err_set(err, "'%s': dataset format version %lld; this seqlab reads version 1", path, version);
    else if (strcmp(name, c->dataset) != 0)
        rc = err_set(err, "'%s' holds dataset '%s', but the config asks for dataset '%s'", path, name, c->dataset);
    json_free(v);
    return rc;
}

/* Two tokenizers mean the same ids. */
static bool same_vocabulary(const Tokenizer *a, const Tokenizer *b) {
    if (a->type != b->type || tokenizer_vocab(a) != tokenizer_vocab(b) || a->unk != b->unk) return false;
    if (a->type == TOK_CHAR) return memcmp(a->symbols, b->symbols, a->n_symbols * sizeof *a->symbols) == 0;
    for (size_t i = 0; a->type == TOK_WORD && i < a->words.n; i++) {
        size_t la, lb;
        const char *wa = words_symbol(&a->words, (int32_t)i, &la), *wb = words_symbol(&b->words, (int32_t)i, &lb);
        if (la != lb || memcmp(wa, wb, la) != 0) return false;
    }
    for (size_t i = 0; a->type == TOK_BPE && i < tokenizer_vocab(a); i++) {
        char ta[256], tb[256];
        size_t la = bpe_decode_one(a->bpe, (int32_t)i, ta, sizeof ta), lb = bpe_decode_one(b->bpe, (int32_t)i, tb, sizeof tb);
        if (la != lb || memcmp(ta, tb, la < sizeof ta ? la : sizeof ta) != 0) return false;
    }
    return true;
}

/* The data's vocabulary becomes the run's (build_vocab) or must equal it. */
static int take_vocabulary(const Config *c, const char *dir, Tokenizer *tok, bool build_vocab, Error *err) {
    char path[CFG_PATH + 32];
    path_in(path, sizeof path, dir, "vocab.json");
    Tokenizer data;
    if (tokenizer_load(&data, path, err)) return -1;
    TokenizerType wanted = data.type;
    if (strcmp(c->tokenizer, "auto") != 0 && (tokenizer_type_parse(c->tokenizer, &wanted) || wanted != data.type)) {
        tokenizer_free(&data);
        return err_set(err, "'%s' is tokenised with '%s', but the config asks for tokenizer '%s'", path,
                       tokenizer_type_name(data.type), c->tokenizer);
    }
    if (build_vocab) {
        tokenizer_free(tok);
        *tok = data;
        return 0;
    }
    bool same = same_vocabulary(tok, &data);
    size_t data_vocab = tokenizer_vocab(&data);
    tokenizer_free(&data);
    if (!same)
        return err_set(err, "the vocabulary of '%s' (%zu symbols) is not the run's (%zu symbols): the data was "
                            "prepared again since the run started", path, data_vocab, tokenizer_vocab(tok));
    return 0;
}

int prepared_load(Corpus *cp, const Config *c, const char *dir, Tokenizer *tok, bool build_vocab, Error *err) {
    if (check_description(c, dir, err) || take_vocabulary(c, dir, tok, build_vocab, err)) return -1;
    cp->prepared = true;
    for (int s = 0; s < SPLIT_COUNT; s++) {
        char name[16];
        snprintf(name, sizeof name, "%s.bin", split_names[s]);
        snprintf(cp->path[s], CFG_PATH, "%s/%s", dir, name);
        if (tokfile_open(&cp->files[s], cp->path[s], err)) return -1;
        if (cp->files[s].vocab != tokenizer_vocab(tok))
            return err_set(err, "'%s' has ids for a vocabulary of %zu symbols; its vocab.json has %zu", cp->path[s],
                           cp->files[s].vocab, tokenizer_vocab(tok));
        cp->split[s] = cp->files[s].view;
    }
    if (cp->split[SPLIT_TRAIN].n == 0) return err_set(err, "the training split '%s' is empty", cp->path[SPLIT_TRAIN]);
    return 0;
}
