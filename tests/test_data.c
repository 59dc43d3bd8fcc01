/* test_data.c — tokenizers, vocab.json, corpus splits, datasets, token files and the batch streams. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/core/file.h"
#include "../src/data/corpus.h"
#include "../src/data/loader.h"
#include "../src/data/words.h"
#include "bpe_fixture.h"
#include "test.h"

static void write_text(const char *path, const char *text, size_t n) { test_write_file(path, text, n); }

/* ---- tokenizers ---- */

TEST(tokenizer_char_round_trip_unicode) {
    const char *text = "h\xc3\xa9llo w\xe2\x82\xacrld \xf0\x9f\x98\x80!"; /* é, €, 😀 */
    size_t n = strlen(text);
    Tokenizer t = {.type = TOK_CHAR};
    Error err = {0};
    REQUIRE(tokenizer_build(&t, (const unsigned char *)text, n, "text", &err) == 0, "%s", err.msg);
    CHECK(tokenizer_vocab(&t) == 11, "vocab %zu (h e-acute l o space w euro r d smiley !)", tokenizer_vocab(&t));
    for (size_t i = 1; i < t.n_symbols; i++) CHECK(t.symbols[i - 1] < t.symbols[i], "symbols sorted at %zu", i);
    int32_t *ids;
    size_t n_ids;
    REQUIRE(tokenizer_encode(&t, (const unsigned char *)text, n, false, &ids, &n_ids, NULL, "text", &err) == 0, "%s",
            err.msg);
    CHECK(n_ids == 14, "%zu ids for 14 characters", n_ids);
    char back[64];
    size_t len = 0;
    for (size_t i = 0; i < n_ids; i++) len += tokenizer_decode_one(&t, ids[i], back + len, sizeof back - len);
    CHECK(len == n && memcmp(back, text, n) == 0, "decode(encode(text)) == text");
    free(ids);
    tokenizer_free(&t);
}

TEST(tokenizer_byte_is_identity) {
    unsigned char all[256];
    for (int i = 0; i < 256; i++) all[i] = (unsigned char)i;
    Tokenizer t = {0};
    tokenizer_byte(&t);
    int32_t *ids;
    size_t n_ids;
    Error err = {0};
    REQUIRE(tokenizer_encode(&t, all, 256, false, &ids, &n_ids, NULL, "bytes", &err) == 0, "%s", err.msg);
    CHECK(tokenizer_vocab(&t) == 256 && n_ids == 256, "vocab and count");
    for (int i = 0; i < 256; i++) CHECK(ids[i] == i, "id of byte %d is %d", i, ids[i]);
    free(ids);
}

TEST(tokenizer_unknown_and_invalid) {
    Tokenizer t = {.type = TOK_CHAR};
    Error err = {0};
    REQUIRE(tokenizer_build(&t, (const unsigned char *)"abc", 3, "train", &err) == 0, "%s", err.msg);
    int32_t *ids;
    size_t n_ids, unknown;
    CHECK(tokenizer_encode(&t, (const unsigned char *)"abz", 3, true, &ids, &n_ids, &unknown, "valid", &err) == -1,
          "an unknown character without <unk> is an error");
    CHECK(strstr(err.msg, "valid: character 'z' (U+007A) at byte 2 is not in the vocabulary") != NULL, "msg: %s",
          err.msg);
    tokenizer_add_unk(&t);
    REQUIRE(tokenizer_encode(&t, (const unsigned char *)"zab", 3, true, &ids, &n_ids, &unknown, "valid", &err) == 0,
            "%s", err.msg);
    CHECK(unknown == 1 && ids[0] == 3 && ids[1] == 0 && tokenizer_vocab(&t) == 4, "z -> <unk> = id 3");
    free(ids);
    CHECK(tokenizer_encode(&t, (const unsigned char *)"a\xc3", 2, true, &ids, &n_ids, NULL, "f.txt", &err) == -1 &&
              strstr(err.msg, "f.txt is not valid UTF-8 at byte 1") != NULL,
          "cut UTF-8: %s", err.msg);
    CHECK(tokenizer_build(&t, (const unsigned char *)"\xff", 1, "g.txt", &err) == -1 &&
              strstr(err.msg, "g.txt is not valid UTF-8 at byte 0") != NULL,
          "invalid byte: %s", err.msg);
    tokenizer_free(&t);
}

TEST(tokenizer_vocab_file_round_trip_and_rejects) {
    const char *dir = test_tmpdir();
    char path[600];
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    Tokenizer t = {.type = TOK_CHAR}, u;
    Error err = {0};
    REQUIRE(tokenizer_build(&t, (const unsigned char *)"ba\xc3\xa9", 4, "x", &err) == 0, "%s", err.msg);
    tokenizer_add_unk(&t);
    REQUIRE(tokenizer_save(&t, path, &err) == 0, "%s", err.msg);
    REQUIRE(tokenizer_load(&u, path, &err) == 0, "%s", err.msg);
    CHECK(u.type == TOK_CHAR && u.unk && u.n_symbols == 3 && memcmp(u.symbols, t.symbols, 3 * sizeof *u.symbols) == 0,
          "loaded == saved");
    tokenizer_free(&u);
    tokenizer_free(&t);
    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"[1, 2]", "expected a JSON object"},
        {"{\"type\": \"piece\", \"symbols\": [], \"unk\": false}", "\"type\" must be"},
        {"{\"type\": \"word\", \"symbols\": [\"the\"], \"unk\": false}", "starts with <eos>"},
        {"{\"type\": \"word\", \"symbols\": [\"<eos>\", \"a\", \"a\"], \"unk\": false}", "twice"},
        {"{\"type\": \"char\", \"symbols\": [98, 97], \"unk\": false}", "symbols[1] = 97 is not above"},
        {"{\"type\": \"char\", \"symbols\": [55296], \"unk\": false}", "symbols[0] is not a Unicode code point"},
        {"{\"type\": \"char\", \"symbols\": [97]}", "\"unk\" must be true or false"},
        {"{\"type\": \"byte\", \"symbols\": [97], \"unk\": false}", "a byte tokenizer has no \"symbols\""},
        {"{\"type\": \"char\", \"symbols\": [97], \"unk\": false", "JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_text(path, bad[i].json, strlen(bad[i].json));
        CHECK(tokenizer_load(&u, path, &err) == -1 && strstr(err.msg, bad[i].msg) && strstr(err.msg, path),
              "case %zu: %s", i, err.msg);
    }
}

/* ---- corpus ---- */

TEST(corpus_fraction_split_at_character_boundaries) {
    const char *dir = test_tmpdir();
    char path[600];
    snprintf(path, sizeof path, "%s/t.txt", dir);
    /* 20 two-byte characters (é): a 10% cut at byte 36 or 38 is a boundary, 37 is not */
    char text[41] = {0};
    for (int i = 0; i < 20; i++) memcpy(text + 2 * i, "\xc3\xa9", 2);
    text[39] = (char)0xa9;
    write_text(path, text, 40);
    Config c;
    config_defaults(&c);
    snprintf(c.data, sizeof c.data, "%s", path);
    c.valid_fraction = 0.1;
    c.test_fraction = 0.125; /* 5 bytes: cut at byte 35, moved to 36 */
    Tokenizer t = {.type = TOK_CHAR};
    Corpus cp;
    Error err = {0};
    REQUIRE(corpus_load(&cp, &c, &t, true, &err) == 0, "%s", err.msg);
    CHECK(cp.split[SPLIT_TEST].n == 2, "test: %zu characters (bytes 36..39)", cp.split[SPLIT_TEST].n);
    CHECK(cp.split[SPLIT_VALID].n == 2 && cp.split[SPLIT_TRAIN].n == 16, "valid %zu, train %zu", cp.split[SPLIT_VALID].n,
          cp.split[SPLIT_TRAIN].n);
    CHECK(tokenizer_vocab(&t) == 1 && !t.unk, "one symbol, no <unk> needed");
    corpus_free(&cp);
    tokenizer_free(&t);
}

TEST(corpus_unknown_held_out_characters_get_unk) {
    const char *dir = test_tmpdir();
    char train[600], valid[600];
    snprintf(train, sizeof train, "%s/train.txt", dir);
    snprintf(valid, sizeof valid, "%s/valid.txt", dir);
    write_text(train, "abab", 4);
    write_text(valid, "abxy", 4);
    Config c;
    config_defaults(&c);
    snprintf(c.train_file, sizeof c.train_file, "%s", train);
    snprintf(c.valid_file, sizeof c.valid_file, "%s", valid);
    Tokenizer t = {.type = TOK_CHAR};
    Corpus cp;
    Error err = {0};
    REQUIRE(corpus_load(&cp, &c, &t, true, &err) == 0, "%s", err.msg);
    CHECK(cp.unknown == 2 && t.unk && tokenizer_vocab(&t) == 3, "x, y -> <unk>: %zu unknown", cp.unknown);
    CHECK(cp.split[SPLIT_TEST].n == 0 && token_at(&cp.split[SPLIT_VALID], 3) == 2, "no test file: empty split; y is <unk>");
    corpus_free(&cp);
    /* loaded vocabulary without <unk>: an unknown character in any split is an error naming the file */
    t.unk = false;
    CHECK(corpus_load(&cp, &c, &t, false, &err) == -1 && strstr(err.msg, valid) && strstr(err.msg, "'x'"), "msg: %s",
          err.msg);
    tokenizer_free(&t);
}

TEST(corpus_bad_sources) {
    const char *dir = test_tmpdir();
    char path[600];
    Config c;
    config_defaults(&c);
    Tokenizer t = {.type = TOK_CHAR};
    Corpus cp;
    Error err = {0};
    CHECK(corpus_load(&cp, &c, &t, true, &err) == -1 && strstr(err.msg, "no data"), "no source: %s", err.msg);
    snprintf(c.data, sizeof c.data, "%s/none.txt", dir);
    CHECK(corpus_load(&cp, &c, &t, true, &err) == -1 && strstr(err.msg, "cannot open data file") &&
              strstr(err.msg, "none.txt"),
          "missing: %s", err.msg);
    snprintf(path, sizeof path, "%s/empty.txt", dir);
    write_text(path, "", 0);
    c.data[0] = 0;
    snprintf(c.train_file, sizeof c.train_file, "%s", path);
    CHECK(corpus_load(&cp, &c, &t, true, &err) == -1 && strstr(err.msg, "is empty") && strstr(err.msg, path),
          "empty training file: %s", err.msg);
    tokenizer_free(&t);
}

TEST(corpus_tiny_shakespeare) {
    const char *root = test_data_dir();
    if (!root) TEST_SKIP("no shared data directory");
    char path[1000];
    snprintf(path, sizeof path, "%.900s/tinyshakespeare/input.txt", root);
    Config c;
    config_defaults(&c);
    snprintf(c.data, sizeof c.data, "%s", path);
    c.valid_fraction = 0.05;
    c.test_fraction = 0.05;
    Tokenizer t = {.type = TOK_CHAR};
    Corpus cp;
    Error err = {0};
    REQUIRE(corpus_load(&cp, &c, &t, true, &err) == 0, "%s", err.msg);
    size_t total = cp.split[0].n + cp.split[1].n + cp.split[2].n;
    CHECK(total == 1115394, "ASCII: %zu characters = bytes", total);
    /* test = the last floor(5%) = 55769 bytes, valid = the floor(10%) = 111539 before the end minus test */
    CHECK(cp.split[SPLIT_TEST].n == 55769 && cp.split[SPLIT_VALID].n == 55770, "5%% + 5%%: valid %zu, test %zu",
          cp.split[SPLIT_VALID].n, cp.split[SPLIT_TEST].n);
    /* the published 65 characters all occur in the first 90% */
    CHECK(tokenizer_vocab(&t) == 65 && !t.unk, "vocab %zu", tokenizer_vocab(&t));
    corpus_free(&cp);
    tokenizer_free(&t);
}

/* ---- streams ---- */

TEST(stream_eval_windows_predict_each_token_once) {
    enum { N = 103, ROWS = 4, T = 7 };
    int32_t ids[N], in[ROWS * T], tg[ROWS * T];
    for (int i = 0; i < N; i++) ids[i] = i;
    const TokenView view = token_view_i32(ids, N);
    Stream s;
    Error err = {0};
    REQUIRE(stream_init(&s, &view, ROWS, T, 1, "valid", &err) == 0, "%s", err.msg);
    const size_t L = N / ROWS; /* 25 tokens per row, 24 predicted */
    int seen[N] = {0};
    size_t total = 0;
    CHECK(stream_windows(&s) == 4, "ceil(24 / 7) = 4 windows, got %zu", stream_windows(&s));
    for (size_t k = 0; k < stream_windows(&s); k++) {
        size_t len;
        stream_window(&s, k, in, tg, &len);
        CHECK(len == (k < 3 ? 7u : 3u), "window %zu has %zu tokens", k, len);
        for (size_t r = 0; r < ROWS; r++)
            for (size_t t = 0; t < len; t++) {
                CHECK(tg[r * len + t] == in[r * len + t] + 1, "target follows input");
                CHECK(in[r * len + t] == (int32_t)(r * L + k * T + t), "row r is contiguous");
                seen[tg[r * len + t]]++;
                total++;
            }
    }
    CHECK(total == ROWS * (L - 1), "%zu predictions", total);
    for (size_t r = 0; r < ROWS; r++)
        for (size_t t = 1; t < L; t++) CHECK(seen[r * L + t] == 1, "token %zu predicted %d times", r * L + t, seen[r * L + t]);
}

TEST(stream_train_wraps_into_epochs) {
    enum { N = 50, ROWS = 2, T = 8 };
    int32_t ids[N], in[ROWS * T], tg[ROWS * T];
    for (int i = 0; i < N; i++) ids[i] = i;
    const TokenView view = token_view_i32(ids, N);
    Stream s;
    Error err = {0};
    REQUIRE(stream_init(&s, &view, ROWS, T, T, "train", &err) == 0, "%s", err.msg);
    /* rows of 25: windows at 0, 8, 16 (16 + 8 + 1 = 25 fits), then back to 0 */
    const int starts[] = {0, 8, 16, 0, 8};
    for (int i = 0; i < 5; i++) {
        stream_next(&s, in, tg);
        CHECK(in[0] == starts[i] && in[T] == 25 + starts[i] && tg[T - 1] == starts[i] + T, "window %d at %d", i,
              in[0]);
        CHECK(s.epoch == (i < 3 ? 0u : 1u), "epoch %llu after window %d", (unsigned long long)s.epoch, i);
    }
    CHECK(stream_init(&s, &view, 4, T, 12, "train", &err) == -1 && strstr(err.msg, "the train split has 50 tokens"),
          "rows of 12 cannot give 12 predictions: %s", err.msg);
}

/* ---- word vocabulary, token files, named datasets ---- */

TEST(words_follow_the_transformer_xl_vocabulary) {
    /* lines: Python str.split on Unicode whitespace, <eos> per line (also the
     * last one without a newline, and empty ones), CRLF is one newline */
    const char *text = "b a\xc2\xa0" "c\r\n\nc a b\ta\n  d";
    Words w;
    Error err = {0};
    REQUIRE(words_build(&w, (const unsigned char *)text, strlen(text), "t", &err) == 0, "%s", err.msg);
    /* counts: a 3, b 2, c 2 (b first seen before c), d 1 */
    const char *want[] = {"<eos>", "a", "b", "c", "d"};
    CHECK(w.n == 5 && w.unk == -1, "vocabulary of %zu", w.n);
    for (size_t i = 0; i < 5 && i < w.n; i++) {
        size_t len;
        const char *s = words_symbol(&w, (int32_t)i, &len);
        CHECK(len == strlen(want[i]) && memcmp(s, want[i], len) == 0, "id %zu is '%.*s', want '%s'", i, (int)len, s,
              want[i]);
    }
    int32_t *ids;
    size_t n;
    REQUIRE(words_encode(&w, (const unsigned char *)text, strlen(text), &ids, &n, NULL, "t", &err) == 0, "%s",
            err.msg);
    const int32_t expect[] = {2, 1, 3, 0, 0, 3, 1, 2, 1, 0, 4, 0};
    CHECK(n == 12 && memcmp(ids, expect, sizeof expect) == 0, "%zu ids", n);
    free(ids);
    CHECK(words_encode(&w, (const unsigned char *)"a zz", 4, &ids, &n, NULL, "v.txt", &err) == -1 &&
              strstr(err.msg, "v.txt line 1: word 'zz' is not in the vocabulary"),
          "%s", err.msg);
    words_free(&w);
}

static int load_dataset(Corpus *cp, Tokenizer *tok, const char *dataset, const char *data, Error *err) {
    Config c;
    config_defaults(&c);
    snprintf(c.dataset, sizeof c.dataset, "%s", dataset);
    snprintf(c.data, sizeof c.data, "%s", data);
    memset(tok, 0, sizeof *tok);
    return corpus_tokenizer(&c, tok, err) || corpus_load(cp, &c, tok, true, err) ? -1 : 0;
}

TEST(wikitext2_splits_have_the_published_token_counts) {
    const char *root = test_data_dir();
    if (!root) TEST_SKIP("no shared data directory");
    char valid[1000], test[1000];
    snprintf(valid, sizeof valid, "%.900s/wikitext-2/wiki.valid.tokens", root);
    snprintf(test, sizeof test, "%.900s/wikitext-2/wiki.test.tokens", root);
    Config c;
    config_defaults(&c);
    snprintf(c.dataset, sizeof c.dataset, "wikitext-2");
    snprintf(c.train_file, sizeof c.train_file, "%s", valid); /* no wiki.train.tokens in the shared data */
    snprintf(c.valid_file, sizeof c.valid_file, "%s", valid);
    snprintf(c.test_file, sizeof c.test_file, "%s", test);
    Tokenizer tok = {0};
    Corpus cp;
    Error err = {0};
    REQUIRE(corpus_tokenizer(&c, &tok, &err) == 0 && tok.type == TOK_WORD, "word level");
    REQUIRE(corpus_load(&cp, &c, &tok, true, &err) == 0, "%s", err.msg);
    CHECK(cp.split[SPLIT_VALID].n == 217646 && cp.split[SPLIT_TEST].n == 245569, "valid %zu, test %zu",
          cp.split[SPLIT_VALID].n, cp.split[SPLIT_TEST].n);
    CHECK(tokenizer_vocab(&tok) == 13776 + 1, "13,776 distinct words + <eos>: %zu", tokenizer_vocab(&tok));
    CHECK(!tokenizer_per_char(&tok), "word level reports perplexity");
    corpus_free(&cp);
    tokenizer_free(&tok);
}

TEST(enwik8_slice_prepares_and_round_trips) {
    const char *root = test_data_dir();
    if (!root) TEST_SKIP("no shared data directory");
    char src[1000], dir[600];
    snprintf(src, sizeof src, "%.900s/enwik8/enwik8.first4154399", root);
    snprintf(dir, sizeof dir, "%s/enwik8", test_tmpdir());
    Tokenizer tok, back;
    Corpus cp, prepared;
    Error err = {0};
    REQUIRE(load_dataset(&cp, &tok, "enwik8", src, &err) == 0, "%s", err.msg);
    CHECK(tok.type == TOK_BYTE && tokenizer_vocab(&tok) == 256, "byte level");
    /* 90% / 5% / 5% of the slice, as 90M/5M/5M of the full file */
    CHECK(cp.split[SPLIT_TRAIN].n == 3738960 && cp.split[SPLIT_VALID].n == 207720 && cp.split[SPLIT_TEST].n == 207719,
          "splits %zu %zu %zu", cp.split[0].n, cp.split[1].n, cp.split[2].n);
    Config c;
    config_defaults(&c);
    snprintf(c.dataset, sizeof c.dataset, "enwik8");
    REQUIRE(prepared_save(&cp, &c, &tok, dir, &err) == 0, "%s", err.msg);
    REQUIRE(load_dataset(&prepared, &back, "enwik8", dir, &err) == 0, "%s", err.msg);
    CHECK(prepared.prepared && prepared.split[SPLIT_TRAIN].width == 1, "mapped 1-byte token files");
    FileMap m;
    REQUIRE(file_map(&m, src, NULL, &err) == 0, "%s", err.msg);
    size_t at = 0, bad = 0;
    for (int s = 0; s < SPLIT_COUNT; s++)
        for (size_t i = 0; i < prepared.split[s].n; i++, at++) bad += token_at(&prepared.split[s], i) != m.data[at];
    CHECK(at == m.size && bad == 0, "%zu of %zu bytes differ", bad, m.size);
    file_unmap(&m);
    corpus_free(&prepared);
    corpus_free(&cp);
}

TEST(text8_slice_has_27_symbols) {
    const char *root = test_data_dir();
    if (!root) TEST_SKIP("no shared data directory");
    char src[1000];
    snprintf(src, sizeof src, "%.900s/text8/text8.slice16391", root);
    Tokenizer tok;
    Corpus cp;
    Error err = {0};
    REQUIRE(load_dataset(&cp, &tok, "text8", src, &err) == 0, "%s", err.msg);
    CHECK(tok.type == TOK_CHAR && tokenizer_vocab(&tok) == 27 && tok.symbols[0] == ' ' && tok.symbols[26] == 'z',
          "space and a-z: vocabulary %zu", tokenizer_vocab(&tok));
    corpus_free(&cp);
    tokenizer_free(&tok);
    char bad[600];
    snprintf(bad, sizeof bad, "%s/text8", test_tmpdir());
    write_text(bad, "abc Def", 7);
    CHECK(load_dataset(&cp, &tok, "text8", bad, &err) == -1 && strstr(err.msg, "byte 4 (0x44)"), "%s", err.msg);
    tokenizer_free(&tok);
}

TEST(tokfile_round_trip_and_rejects) {
    const char *dir = test_tmpdir();
    char path[600];
    snprintf(path, sizeof path, "%s/t.bin", dir);
    const size_t vocabs[] = {200, 60000, 300000};
    int32_t ids[5] = {0, 1, 17, 150, 199};
    Error err = {0};
    for (int v = 0; v < 3; v++) {
        ids[4] = (int32_t)vocabs[v] - 1;
        REQUIRE(tokfile_write(path, ids, 5, vocabs[v], &err) == 0, "%s", err.msg);
        TokFile f;
        REQUIRE(tokfile_open(&f, path, &err) == 0, "%s", err.msg);
        CHECK(f.vocab == vocabs[v] && f.view.n == 5 && f.view.width == (v == 0 ? 1u : v == 1 ? 2u : 4u), "header");
        for (int i = 0; i < 5; i++) CHECK(token_at(&f.view, (size_t)i) == ids[i], "id %d", i);
        tokfile_close(&f);
    }
    CHECK(tokfile_write(path, ids, 5, 100, &err) == -1 && strstr(err.msg, "outside the vocabulary"), "%s", err.msg);
    /* damaged files: cut short, another format, an id beyond the vocabulary */
    FILE *f = fopen(path, "r+b");
    REQUIRE(f, "open");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    REQUIRE(truncate(path, size - 1) == 0, "truncate");
    TokFile t;
    CHECK(tokfile_open(&t, path, &err) == -1 && strstr(err.msg, "truncated") && strstr(err.msg, path), "%s", err.msg);
    write_text(path, "{\"format\": \"not tokens\"}                                 ", 58);
    CHECK(tokfile_open(&t, path, &err) == -1 && strstr(err.msg, "not a seqlab token file"), "%s", err.msg);
    REQUIRE(tokfile_write(path, ids, 5, 300000, &err) == 0, "%s", err.msg);
    f = fopen(path, "r+b");
    fseek(f, 16, SEEK_SET);
    fputc(10, f); /* vocabulary 10: the ids above it are now out of range */
    fputc(0, f), fputc(0, f), fputc(0, f);
    fclose(f);
    CHECK(tokfile_open(&t, path, &err) == -1 && strstr(err.msg, "outside the vocabulary") , "%s", err.msg);
}

TEST(prepared_dataset_rejects_mismatches) {
    const char *dir = test_tmpdir();
    char src[600], out[600], path[700];
    snprintf(src, sizeof src, "%s/words.txt", dir);
    snprintf(out, sizeof out, "%s/prepared", dir);
    write_text(src, "a b c\nb c\nc\n", 12);
    Config c;
    config_defaults(&c);
    snprintf(c.data, sizeof c.data, "%s", src);
    snprintf(c.tokenizer, sizeof c.tokenizer, "word");
    c.valid_fraction = c.test_fraction = 0.0;
    Tokenizer tok = {.type = TOK_WORD}, other = {.type = TOK_WORD};
    Corpus cp;
    Error err = {0};
    REQUIRE(corpus_load(&cp, &c, &tok, true, &err) == 0, "%s", err.msg);
    REQUIRE(prepared_save(&cp, &c, &tok, out, &err) == 0, "%s", err.msg);
    corpus_free(&cp);
    snprintf(c.data, sizeof c.data, "%s", out);
    /* the run's vocabulary differs from the data's */
    REQUIRE(tokenizer_build(&other, (const unsigned char *)"x y\n", 4, "x", &err) == 0, "%s", err.msg);
    CHECK(corpus_load(&cp, &c, &other, false, &err) == -1 && strstr(err.msg, "is not the run's"), "%s", err.msg);
    /* another dataset name, another tokenizer */
    snprintf(c.dataset, sizeof c.dataset, "wikitext-2");
    CHECK(corpus_load(&cp, &c, &tok, false, &err) == -1 && strstr(err.msg, "holds dataset 'text'"), "%s", err.msg);
    snprintf(c.dataset, sizeof c.dataset, "text");
    snprintf(c.tokenizer, sizeof c.tokenizer, "char");
    CHECK(corpus_load(&cp, &c, &tok, false, &err) == -1 && strstr(err.msg, "tokenised with 'word'"), "%s", err.msg);
    snprintf(c.tokenizer, sizeof c.tokenizer, "auto");
    /* an empty training split */
    snprintf(path, sizeof path, "%s/train.bin", out);
    REQUIRE(tokfile_write(path, NULL, 0, tokenizer_vocab(&tok), &err) == 0, "%s", err.msg);
    CHECK(corpus_load(&cp, &c, &tok, false, &err) == -1 && strstr(err.msg, "is empty"), "%s", err.msg);
    /* a token file for another vocabulary */
    int32_t ids[2] = {0, 1};
    REQUIRE(tokfile_write(path, ids, 2, 3, &err) == 0, "%s", err.msg);
    CHECK(corpus_load(&cp, &c, &tok, false, &err) == -1 && strstr(err.msg, "vocabulary of 3 symbols"), "%s", err.msg);
    tokenizer_free(&tok);
    tokenizer_free(&other);
}

/* ---- GPT-2 BPE through the tokenizer and the WikiText raw rows ---- */

/* GPT-2 style files in dir (bpe_fixture.h) with a few merges. */
static void bpe_files(const char *dir, char *vocab, char *merges) {
    static const Pair pairs[] = {{" ", "="}, {"e", "x"}, {"ex", "t"}, {" ", "t"}, {" t", "ext"}};
    bpe_fixture_write(dir, pairs, 5, true, -1);
    sprintf(vocab, "%s/vocab.json", dir);
    sprintf(merges, "%s/merges.txt", dir);
}

TEST(wikitext_bpe_rows_end_with_endoftext) {
    const char *dir = test_tmpdir();
    char raw[600], vocab[700], merges[700], path[700];
    snprintf(raw, sizeof raw, "%s/wikitext-2-raw", dir);
    REQUIRE(file_make_dirs(raw, &(Error){0}) == 0, "mkdir");
    bpe_files(dir, vocab, merges);
    /* rows: " = T = \n" | " \n" (blank) | " some text .\n" | "\n" (blank) | " last" (no newline) */
    const char *text = " = T = \n \n some text .\n\n last";
    const char *splits[] = {"wiki.train.raw", "wiki.valid.raw", "wiki.test.raw"};
    for (int s = 0; s < 3; s++) {
        snprintf(path, sizeof path, "%s/%s", raw, splits[s]);
        write_text(path, text, strlen(text));
    }
    Config c;
    config_defaults(&c);
    snprintf(c.dataset, sizeof c.dataset, "wikitext-2");
    snprintf(c.data, sizeof c.data, "%s", raw);
    snprintf(c.tokenizer, sizeof c.tokenizer, "bpe");
    snprintf(c.bpe_vocab, sizeof c.bpe_vocab, "%s", vocab);
    snprintf(c.bpe_merges, sizeof c.bpe_merges, "%s", merges);
    Tokenizer tok;
    Corpus cp;
    Error err = {0};
    REQUIRE(corpus_tokenizer(&c, &tok, &err) == 0 && corpus_load(&cp, &c, &tok, true, &err) == 0, "%s", err.msg);
    const int32_t eot = bpe_token_id(tok.bpe, "<|endoftext|>");
    const char *rows[] = {" = T = \n", " some text .\n", " last"};
    char got[3][64] = {{0}};
    size_t row = 0, len = 0;
    const TokenView *v = &cp.split[SPLIT_TEST];
    for (size_t i = 0; i < v->n && row < 3; i++) {
        int32_t id = token_at(v, i);
        if (id == eot) {
            row++, len = 0;
            continue;
        }
        len += tokenizer_decode_one(&tok, id, got[row] + len, sizeof got[row] - len - 1);
    }
    CHECK(row == 3 && token_at(v, v->n - 1) == eot, "one <|endoftext|> after each of the 3 non-blank rows");
    for (int r = 0; r < 3; r++) CHECK(strcmp(got[r], rows[r]) == 0, "row %d decodes to '%s'", r, got[r]);
    CHECK(!tokenizer_per_char(&tok), "BPE reports perplexity");
    /* the run directory keeps its own copy of the pair */
    char run[700], saved[800];
    snprintf(run, sizeof run, "%s/run", dir);
    file_make_dirs(run, &err);
    snprintf(saved, sizeof saved, "%s/vocab.json", run);
    REQUIRE(tokenizer_save(&tok, saved, &err) == 0, "%s", err.msg);
    Tokenizer back;
    REQUIRE(tokenizer_load(&back, saved, &err) == 0, "%s", err.msg);
    CHECK(back.type == TOK_BPE && tokenizer_vocab(&back) == tokenizer_vocab(&tok) && strstr(back.bpe_vocab, "/run/"),
          "reloaded from the run's copy: %s", back.bpe_vocab);
    tokenizer_free(&back);
    corpus_free(&cp);
    tokenizer_free(&tok);
}
