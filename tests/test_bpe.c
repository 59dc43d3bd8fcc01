/* test_bpe.c — GPT-2 byte-level BPE (src/data/bpe.h) on vocabularies the
 * tests write themselves: the 256 byte symbols in GPT-2's id order, the
 * tokens of a few merges, and "<|endoftext|>".
 *
 * Expected pre-tokenizer pieces were worked out by hand from the regex and
 * checked against Python's `regex` module, the engine of GPT-2's encoder.py. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/json.h"
#include "../src/data/bpe.h"
#include "bpe_fixture.h"
#include "test.h"

static void write_text(const char *path, const char *text) { test_write_file(path, text, strlen(text)); }

/* Loads a fresh vocabulary of these merges; NULL (message in err) on failure. */
static Bpe *make_bpe(const Pair *merges, size_t n, bool eot, int drop, Error *err) {
    const char *dir = test_tmpdir();
    bpe_fixture_write(dir, merges, n, eot, drop);
    char vocab[600], merges_path[600];
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges_path, sizeof merges_path, "%s/merges.txt", dir);
    Bpe *b;
    return bpe_load(&b, vocab, merges_path, err) ? NULL : b;
}

/* Checks that text encodes to tokens whose bytes are want[0..n_want), in order. */
static void check_tokens(const Bpe *b, const char *text, const char *const *want, size_t n_want, const char *what) {
    int32_t *ids;
    size_t n_ids;
    Error err = {0};
    if (bpe_encode(b, (const unsigned char *)text, strlen(text), &ids, &n_ids, &err)) {
        CHECK(false, "%s: %s", what, err.msg);
        return;
    }
    CHECK(n_ids == n_want, "%s: %zu tokens, want %zu", what, n_ids, n_want);
    for (size_t i = 0; i < n_ids && i < n_want; i++) {
        char buf[128];
        size_t k = bpe_decode_one(b, ids[i], buf, sizeof buf - 1);
        buf[k < sizeof buf - 1 ? k : sizeof buf - 1] = 0;
        CHECK(strcmp(buf, want[i]) == 0, "%s: token %zu is \"%s\", want \"%s\"", what, i, buf, want[i]);
    }
    free(ids);
}

/* ---- the byte alphabet ---- */

TEST(bpe_byte_alphabet_is_gpt2s) {
    Error err = {0};
    Bpe *b = make_bpe(NULL, 0, true, -1, &err);
    REQUIRE(b, "%s", err.msg);
    /* ids every GPT-2 user knows: "!" = 0, "\n" = "Ċ" = 198, " " = "Ġ" = 220 */
    CHECK(bpe_vocab_size(b) == 257, "256 bytes + <|endoftext|>: %zu", bpe_vocab_size(b));
    CHECK(bpe_token_id(b, "!") == 0 && bpe_token_id(b, "\xc4\x8a") == 198 && bpe_token_id(b, "\xc4\xa0") == 220,
          "! Ċ Ġ = %d %d %d", bpe_token_id(b, "!"), bpe_token_id(b, "\xc4\x8a"), bpe_token_id(b, "\xc4\xa0"));
    CHECK(bpe_token_id(b, "<|endoftext|>") == 256 && bpe_token_id(b, " ") == -1, "eot 256, no literal space");
    int32_t *ids;
    size_t n;
    REQUIRE(bpe_encode(b, (const unsigned char *)" \n!", 3, &ids, &n, &err) == 0, "%s", err.msg);
    CHECK(n == 3 && ids[0] == 220 && ids[1] == 198 && ids[2] == 0, "\" \\n!\" -> 220 198 0");
    free(ids);
    /* U+00AD (C2 AD): 0xC2 is printable 'Â', 0xAD is the last byte moved up, to U+0143 'Ń' */
    REQUIRE(bpe_encode(b, (const unsigned char *)"\xc2\xad", 2, &ids, &n, &err) == 0, "%s", err.msg);
    CHECK(n == 2 && ids[0] == bpe_token_id(b, "\xc3\x82") && ids[1] == bpe_token_id(b, "\xc5\x83") && ids[1] == 255,
          "soft hyphen -> Â Ń");
    char out[8];
    CHECK(bpe_decode_one(b, ids[1], out, sizeof out) == 1 && (unsigned char)out[0] == 0xAD, "Ń decodes to 0xAD");
    CHECK(bpe_decode_one(b, 220, out, sizeof out) == 1 && out[0] == ' ', "Ġ decodes to a space");
    free(ids);
    bpe_free(b);
}

/* ---- the pre-tokenizer ---- */

/* Encodes text with merges that join each expected piece into one token,
 * plus "trap" merges, ranked first, of the bytes on either side of each
 * boundary: a piece cut too long, too short or elsewhere shows up as a
 * different token list. */
static void check_pieces(const char *text, const char *const *pieces, size_t n) {
    Pair merges[200];
    char parts[200][2][64];
    size_t count = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        char trap[3] = {pieces[i][strlen(pieces[i]) - 1], pieces[i + 1][0], 0};
        bool inside = false;
        for (size_t j = 0; j < n; j++) inside |= strstr(pieces[j], trap) != NULL;
        if (inside) continue;
        snprintf(parts[count][0], 64, "%c", trap[0]), snprintf(parts[count][1], 64, "%c", trap[1]);
        merges[count] = (Pair){parts[count][0], parts[count][1]};
        count++;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = 1; k < strlen(pieces[i]); k++) {
            snprintf(parts[count][0], 64, "%.*s", (int)k, pieces[i]);
            snprintf(parts[count][1], 64, "%c", pieces[i][k]);
            merges[count] = (Pair){parts[count][0], parts[count][1]};
            count++;
        }
    Error err = {0};
    Bpe *b = make_bpe(merges, count, false, -1, &err);
    CHECK(b, "%s", err.msg);
    if (b) check_tokens(b, text, pieces, n, text);
    bpe_free(b);
}

TEST(bpe_pretokenizer_splits_as_gpt2) {
    /* "\s+(?!\S)" leaves the last space of a run to the next word */
    const char *a[] = {"Hello", " world", "'s", " ", " 2024", "!!", "\n\n"};
    check_pieces("Hello world's  2024!!\n\n", a, 7);
    /* contractions are lower case only and match before letters; a tab never joins a word */
    const char *c[] = {"I", "'ll", " ", " go", "\t", "now", "   \n"};
    check_pieces("I'll  go\tnow   \n", c, 7);
    const char *d[] = {"'", "S", "'s", "x", " 3", ".", "14"};
    check_pieces("'S'sx 3.14", d, 7);
    /* only ' ' attaches to a word: "\n\nb" is "\n", "\n", "b" */
    const char *e[] = {"a", "\n", "\n", "b", " ", " c"};
    check_pieces("a\n\nb  c", e, 6);
    /* Unicode letters (é, CJK), symbols (emoji), digits (Arabic-Indic), white space (U+00A0) */
    const char *f[] = {"caf\xc3\xa9",
                       " \xe6\x97\xa5\xe6\x9c\xac",
                       " \xf0\x9f\x98\x80\xf0\x9f\x98\x80",
                       " \xd9\xa3\xd9\xa4",
                       "\xc2\xa0",
                       "x"};
    check_pieces("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\xf0\x9f\x98\x80 \xd9\xa3\xd9\xa4\xc2\xa0x", f,
                 6);
    /* U+180E is not white space (PCRE2's \s says it is) */
    const char *g[] = {"x", " \xe1\xa0\x8e\xe1\xa0\x8e", "y"};
    check_pieces("x \xe1\xa0\x8e\xe1\xa0\x8ey", g, 3);
    const char *h[] = {"end", "   "};
    check_pieces("end   ", h, 2);
}

/* ---- merges ---- */

TEST(bpe_merges_lowest_rank_first) {
    Error err = {0};
    /* "ab c" ranks before "a b": applying each line once in file order leaves "ab" "c";
     * lowest rank first applies "a b", then finds "ab c" */
    const Pair m1[] = {{"ab", "c"}, {"a", "b"}};
    Bpe *b = make_bpe(m1, 2, false, -1, &err);
    REQUIRE(b, "%s", err.msg);
    const char *w1[] = {"abc"};
    check_tokens(b, "abc", w1, 1, "ab c before a b");
    bpe_free(b);
    /* the lowest rank wins over the leftmost pair: "a" "bc", not "ab" "c" */
    const Pair m2[] = {{"b", "c"}, {"a", "b"}};
    REQUIRE((b = make_bpe(m2, 2, false, -1, &err)), "%s", err.msg);
    const char *w2[] = {"a", "bc"};
    check_tokens(b, "abc", w2, 2, "b c before a b");
    bpe_free(b);
    /* occurrences of a pair join left to right without overlap */
    const Pair m3[] = {{"a", "a"}};
    REQUIRE((b = make_bpe(m3, 1, false, -1, &err)), "%s", err.msg);
    const char *w3[] = {"aa", "aa", "a"};
    check_tokens(b, "aaaaa", w3, 3, "a a on aaaaa");
    bpe_free(b);
    /* encoder.py joins every "a b" of the round before it looks at "ab a" (rank 0):
     * "ab" "ab". A heap that let the new pair cut in would give "aba" "b". */
    const Pair m4[] = {{"ab", "a"}, {"a", "b"}};
    REQUIRE((b = make_bpe(m4, 2, false, -1, &err)), "%s", err.msg);
    const char *w4[] = {"ab", "ab"};
    check_tokens(b, "abab", w4, 2, "rounds");
    bpe_free(b);
    /* GPT-2's first merges, on " the then" */
    const Pair m5[] = {{" ", "t"}, {"h", "e"}, {" t", "he"}, {"e", "n"}};
    REQUIRE((b = make_bpe(m5, 4, false, -1, &err)), "%s", err.msg);
    const char *w5[] = {" the", " the", "n"};
    check_tokens(b, " the then", w5, 3, "Ġt he");
    bpe_free(b);
}

/* ---- special token ---- */

TEST(bpe_endoftext_is_one_id) {
    const Pair merges[] = {{" ", " "}};
    Error err = {0};
    Bpe *b = make_bpe(merges, 1, true, -1, &err);
    REQUIRE(b, "%s", err.msg);
    int32_t eot = bpe_token_id(b, "<|endoftext|>");
    CHECK(eot == 257, "eot id %d", eot);
    /* the text is split before the regex: "  " ends its part, so it is one piece */
    const char *w[] = {"x", "  ", "<|endoftext|>", "y", "<|endoftext|>", "<|endoftext|>", "\n", "<", "|"};
    check_tokens(b, "x  <|endoftext|>y<|endoftext|><|endoftext|>\n<|", w, 9, "with eot");
    int32_t *ids;
    size_t n;
    REQUIRE(bpe_encode(b, (const unsigned char *)"<|endoftext|>", 13, &ids, &n, &err) == 0, "%s", err.msg);
    CHECK(n == 1 && ids[0] == eot, "alone: %zu ids", n);
    free(ids);
    bpe_free(b);
    /* without the token in the vocabulary it is plain text */
    REQUIRE((b = make_bpe(merges, 1, false, -1, &err)), "%s", err.msg);
    CHECK(bpe_token_id(b, "<|endoftext|>") == -1, "no eot");
    const char *w2[] = {"x", " ", " ", "<", "|", "e", "n", "d", "o", "f", "t", "e", "x", "t", "|", ">"};
    check_tokens(b, "x  <|endoftext|>", w2, 16, "without eot");
    bpe_free(b);
}

/* ---- round trip ---- */

static void check_round_trip(const Bpe *b, const unsigned char *text, size_t n, const char *what) {
    int32_t *ids;
    size_t n_ids;
    Error err = {0};
    if (bpe_encode(b, text, n, &ids, &n_ids, &err)) {
        CHECK(false, "%s: %s", what, err.msg);
        return;
    }
    char *back = malloc(n + 1);
    size_t len = 0;
    for (size_t i = 0; i < n_ids && len <= n; i++) {
        char buf[64];
        size_t k = bpe_decode_one(b, ids[i], buf, sizeof buf);
        if (k == 0 || k > sizeof buf || len + k > n) {
            len = n + 1;
            break;
        }
        memcpy(back + len, buf, k);
        len += k;
    }
    CHECK(len == n && memcmp(back, text, n) == 0, "%s: decode(encode(text)) != text", what);
    CHECK(n_ids < n, "%s: the merges shorten the text: %zu ids for %zu bytes", what, n_ids, n);
    free(back);
    free(ids);
}

static const Pair common[] = {
    {" ", "t"}, {"h", "e"},  {" t", "he"}, {" ", "a"}, {"i", "n"},  {"r", "e"},       {"o", "n"},
    {" ", "w"}, {"e", "r"},  {"'", "s"},   {"'", "l"}, {"'l", "l"}, {"\xc3", "\xa9"}, {"\n", "\n"},
    {" ", " "}, {"  ", " "}, {"\t", "\t"}, {"e", "n"}, {" a", "n"}, {" an", "d"},     {"\xe6", "\x97"},
};

TEST(bpe_round_trip_unicode) {
    Error err = {0};
    Bpe *b = make_bpe(common, sizeof common / sizeof *common, true, -1, &err);
    REQUIRE(b, "%s", err.msg);
    const char *text = "The na\xc3\xafve caf\xc3\xa9's owner said: \"we'll see\" and they'd agree.\n\n"
                       "\t tabs\t\tand   spaces   \r\n\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae "
                       "\xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd \xce\x95\xce\xbb\xce\xbb\xce\xac\xce\xb4"
                       "\xce\xb1 \xd8\xb9\xd8\xb1\xd8\xa8\xd9\x8a \xd9\xa3\xd9\xa4 <|endoftext|>the end  \n   ";
    check_round_trip(b, (const unsigned char *)text, strlen(text), "mixed text");
    char ascii[300];
    size_t n = 0;
    for (int rep = 0; rep < 2; rep++)
        for (int c = 1; c < 128; c++) ascii[n++] = (char)c;
    memcpy(ascii + n, " then", 5); /* something to merge */
    n += 5;
    check_round_trip(b, (const unsigned char *)ascii, n, "every ASCII byte");
    bpe_free(b);
}

TEST(bpe_round_trip_wikitext) {
    const char *root = test_data_dir();
    if (!root) TEST_SKIP("no shared data directory");
    char path[1000];
    snprintf(path, sizeof path, "%.900s/wikitext-2/wiki.test.tokens", root);
    FILE *f = fopen(path, "rb");
    if (!f) TEST_SKIP("no wikitext-2/wiki.test.tokens");
    static unsigned char text[1 << 21];
    size_t n = fread(text, 1, sizeof text, f);
    fclose(f);
    Error err = {0};
    Bpe *b = make_bpe(common, sizeof common / sizeof *common, true, -1, &err);
    REQUIRE(b, "%s", err.msg);
    check_round_trip(b, text, n, path);
    bpe_free(b);
}

/* OpenAI's own GPT-2 files (encoder.json, vocab.bpe) load, give the ids
 * every GPT-2 tokenizer gives for these texts. */
TEST(bpe_real_gpt2_files) {
    const char *root = test_data_dir();
    if (!root) TEST_SKIP("no shared data directory");
    char vocab[1000], merges[1000];
    snprintf(vocab, sizeof vocab, "%.900s/gpt2/encoder.json", root);
    snprintf(merges, sizeof merges, "%.900s/gpt2/vocab.bpe", root);
    FILE *f = fopen(vocab, "rb");
    if (!f) TEST_SKIP("no gpt2/encoder.json");
    fclose(f);
    Bpe *b;
    Error err = {0};
    REQUIRE(bpe_load(&b, vocab, merges, &err) == 0, "%s", err.msg);
    CHECK(bpe_vocab_size(b) == 50257 && bpe_token_id(b, "<|endoftext|>") == 50256, "vocab %zu, <|endoftext|> %d",
          bpe_vocab_size(b), bpe_token_id(b, "<|endoftext|>"));
    static const struct {
        const char *text;
        int32_t ids[4];
        size_t n;
    } known[] = {{"Hello world", {15496, 995}, 2}, {"hello world", {31373, 995}, 2}, {" the", {262}, 1},
                 {"<|endoftext|>", {50256}, 1}};
    for (size_t k = 0; k < sizeof known / sizeof *known; k++) {
        int32_t *ids;
        size_t n;
        REQUIRE(bpe_encode(b, (const unsigned char *)known[k].text, strlen(known[k].text), &ids, &n, &err) == 0, "%s",
                err.msg);
        CHECK(n == known[k].n && !memcmp(ids, known[k].ids, n * sizeof *ids), "'%s': %zu ids, the first %d",
              known[k].text, n, n ? ids[0] : -1);
        free(ids);
    }
    bpe_free(b);
}

TEST(bpe_decode_one_bounds) {
    const Pair merges[] = {{" ", "t"}, {"h", "e"}, {" t", "he"}};
    Error err = {0};
    Bpe *b = make_bpe(merges, 3, false, -1, &err);
    REQUIRE(b, "%s", err.msg);
    char buf[8] = {0};
    int32_t the = bpe_token_id(b, "\xc4\xa0the");
    CHECK(the >= 256 && bpe_decode_one(b, the, buf, sizeof buf) == 4 && memcmp(buf, " the", 4) == 0, "Ġthe");
    memset(buf, 0, sizeof buf);
    CHECK(bpe_decode_one(b, the, buf, 2) == 4 && memcmp(buf, " t\0", 3) == 0, "cut to cap 2, full length returned");
    CHECK(bpe_decode_one(b, -1, buf, sizeof buf) == 0 && bpe_decode_one(b, (int32_t)bpe_vocab_size(b), buf, 8) == 0,
          "ids outside the vocabulary decode to nothing");
    CHECK(bpe_vocab_size(b) == 259 && bpe_token_id(b, "nope") == -1, "vocab %zu", bpe_vocab_size(b));
    bpe_free(b);
}

/* ---- bad input ---- */

/* Loads files written from these texts and checks the error mentions `want` and the path of the bad file. */
static void check_load_fails(const char *vocab_text, const char *merges_text, const char *want, bool vocab_bad) {
    const char *dir = test_tmpdir();
    char vocab[600], merges[600];
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    if (vocab_text) write_text(vocab, vocab_text);
    if (merges_text) write_text(merges, merges_text);
    Bpe *b = (Bpe *)&b; /* not NULL: a failed load must reset it */
    Error err = {0};
    CHECK(bpe_load(&b, vocab, merges, &err) == -1 && b == NULL, "%s: loaded", want);
    CHECK(strstr(err.msg, want) && strstr(err.msg, vocab_bad ? vocab : merges), "want \"%s\" and the path: %s", want,
          err.msg);
}

/* The byte vocabulary of write_files, as text, with extra members appended. */
static char *byte_vocab(const char *extra) {
    const char *dir = test_tmpdir();
    bpe_fixture_write(dir, NULL, 0, false, -1);
    char path[600];
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    FILE *f = fopen(path, "rb");
    static char text[8192];
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    while (n && text[n - 1] != '}') n--;
    snprintf(text + (n ? n - 1 : 0), sizeof text - (n ? n - 1 : 0), "%s}", extra);
    return text;
}

TEST(bpe_rejects_bad_files) {
    check_load_fails(NULL, "", "cannot open", true);
    check_load_fails("{\"a\": 0}", NULL, "cannot open merges file", false);
    check_load_fails("[1, 2]", "", "expected a JSON object", true);
    check_load_fails("{}", "", "expected a JSON object", true);
    check_load_fails("{\"a\": 0, \"b\": \"1\"}", "", "the id of \"b\" must be an integer in 0..1", true);
    check_load_fails("{\"a\": 0.5}", "", "the id of \"a\" must be an integer", true);
    check_load_fails("{\"a\": 0, \"b\": 2}", "", "the id of \"b\" must be an integer in 0..1", true);
    check_load_fails("{\"a\": 0, \"b\": 0}", "", "id 0 is given to both \"a\" and \"b\"", true);
    check_load_fails("{\"a\": 0,}", "", "JSON", true);
    /* merges.txt, each against the byte vocabulary (+ "ab") */
    check_load_fails(byte_vocab(""), "#version: 0.2\n\xc4\xa0t\n", "line 2: expected two tokens separated by one space",
                     false);
    check_load_fails(byte_vocab(", \"ab\": 256"), "a b\na  b\n", "line 2: expected two tokens", false);
    check_load_fails(byte_vocab(""), "#version: 0.2\n\n", "line 2: expected two tokens", false);
    check_load_fails(byte_vocab(", \"ab\": 256"), "a b\n\xc4\xa0t he\n", "line 2: token \"\xc4\xa0t\" is not in",
                     false);
    check_load_fails(byte_vocab(""), "#version: 0.2\na b\n", "line 2: the merged token \"ab\" is not in the vocabulary",
                     false);
}

TEST(bpe_merges_file_forms) {
    const char *dir = test_tmpdir();
    char vocab[600], merges[600];
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    write_text(vocab, byte_vocab(", \"ab\": 256, \"bc\": 257"));
    /* no header, CRLF, no final newline; a repeated pair keeps its later rank */
    write_text(merges, "a b\r\nb c\r\na b");
    Bpe *b;
    Error err = {0};
    REQUIRE(bpe_load(&b, vocab, merges, &err) == 0, "%s", err.msg);
    const char *w[] = {"a", "bc"};
    check_tokens(b, "abc", w, 2, "a b re-ranked after b c");
    bpe_free(b);
}

TEST(bpe_rejects_bad_text) {
    Error err = {0};
    Bpe *b = make_bpe(NULL, 0, false, -1, &err);
    REQUIRE(b, "%s", err.msg);
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"ab\xff", "not valid UTF-8 at byte 2"},
        {"a\xc3", "not valid UTF-8 at byte 1"},
        {"\xc0\xaf", "not valid UTF-8 at byte 0"},
        {"ok \xed\xa0\x80", "not valid UTF-8 at byte 3"}, /* a UTF-16 surrogate */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int32_t *ids = (int32_t *)&ids;
        size_t n = 7;
        CHECK(bpe_encode(b, (const unsigned char *)bad[i].text, strlen(bad[i].text), &ids, &n, &err) == -1 &&
                  ids == NULL && n == 0 && strstr(err.msg, bad[i].msg),
              "case %zu: %s", i, err.msg);
    }
    int32_t *ids;
    size_t n = 7;
    CHECK(bpe_encode(b, (const unsigned char *)"", 0, &ids, &n, &err) == 0 && n == 0 && ids == NULL, "empty text");
    bpe_free(b);
    /* a vocabulary without "Ġ": the symbol is named */
    REQUIRE((b = make_bpe(NULL, 0, false, ' ', &err)), "%s", err.msg);
    CHECK(bpe_encode(b, (const unsigned char *)"a b", 3, &ids, &n, &err) == -1 && ids == NULL &&
              strstr(err.msg, "the symbol \"\xc4\xa0\" (U+0120) of byte 0x20 at byte 1 is not in the vocabulary"),
          "missing symbol: %s", err.msg);
    CHECK(bpe_encode(b, (const unsigned char *)"a  b", 4, &ids, &n, &err) == -1 && strstr(err.msg, "at byte 1 is not"),
          "missing symbol in the one-byte piece \" \": %s", err.msg);
    bpe_free(b);
}
