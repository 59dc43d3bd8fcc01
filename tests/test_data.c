/* test_data.c — tokenizers, vocab.json, corpus splits and the batch streams. */
#include <stdlib.h>
#include <string.h>

#include "../src/data/corpus.h"
#include "../src/data/loader.h"
#include "test.h"

static void write_text(const char *path, const char *text, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(text, 1, n, f);
        fclose(f);
    }
}

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
    for (size_t i = 0; i < n_ids; i++) len += tokenizer_decode_one(&t, ids[i], back + len);
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
        {"{\"type\": \"word\", \"symbols\": [], \"unk\": false}", "\"type\" must be"},
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
    CHECK(cp.n[SPLIT_TEST] == 2, "test: %zu characters (bytes 36..39)", cp.n[SPLIT_TEST]);
    CHECK(cp.n[SPLIT_VALID] == 2 && cp.n[SPLIT_TRAIN] == 16, "valid %zu, train %zu", cp.n[SPLIT_VALID],
          cp.n[SPLIT_TRAIN]);
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
    CHECK(cp.n[SPLIT_TEST] == 0 && cp.ids[SPLIT_VALID][3] == 2, "no test file: empty split; y is <unk>");
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
    size_t total = cp.n[0] + cp.n[1] + cp.n[2];
    CHECK(total == 1115394, "ASCII: %zu characters = bytes", total);
    /* test = the last floor(5%) = 55769 bytes, valid = the floor(10%) = 111539 before the end minus test */
    CHECK(cp.n[SPLIT_TEST] == 55769 && cp.n[SPLIT_VALID] == 55770, "5%% + 5%%: valid %zu, test %zu",
          cp.n[SPLIT_VALID], cp.n[SPLIT_TEST]);
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
    Stream s;
    Error err = {0};
    REQUIRE(stream_init(&s, ids, N, ROWS, T, 1, "valid", &err) == 0, "%s", err.msg);
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
    Stream s;
    Error err = {0};
    REQUIRE(stream_init(&s, ids, N, ROWS, T, T, "train", &err) == 0, "%s", err.msg);
    /* rows of 25: windows at 0, 8, 16 (16 + 8 + 1 = 25 fits), then back to 0 */
    const int starts[] = {0, 8, 16, 0, 8};
    for (int i = 0; i < 5; i++) {
        stream_next(&s, in, tg);
        CHECK(in[0] == starts[i] && in[T] == 25 + starts[i] && tg[T - 1] == starts[i] + T, "window %d at %d", i,
              in[0]);
        CHECK(s.epoch == (i < 3 ? 0u : 1u), "epoch %llu after window %d", (unsigned long long)s.epoch, i);
    }
    CHECK(stream_init(&s, ids, N, 4, T, 12, "train", &err) == -1 && strstr(err.msg, "the train split has 50 tokens"),
          "rows of 12 cannot give 12 predictions: %s", err.msg);
}
