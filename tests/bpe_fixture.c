/* bpe_fixture.c — see bpe_fixture.h. */
#include "bpe_fixture.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../src/core/json.h"
#include "test.h"

/* GPT-2's bytes_to_unicode, stated independently of bpe.c: the byte of each
 * of the first 256 ids ('!'..'~', 0xA1..0xAC, 0xAE..0xFF, then the other
 * bytes in order) and the code point that stands for each byte. */
void bpe_fixture_alphabet(unsigned char byte_of_id[256], uint32_t cp_of_byte[256]) {
    int id = 0, extra = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int c = 0; c < 256; c++) {
            bool printable = (c >= 33 && c <= 126) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE;
            if (printable != (pass == 0)) continue;
            byte_of_id[id++] = (unsigned char)c;
            cp_of_byte[c] = printable ? (uint32_t)c : 256u + (uint32_t)extra++;
        }
}

/* Text bytes spelled in the byte alphabet, as vocab.json and merges.txt write them. */
void bpe_fixture_spell(const char *text, char *out) {
    unsigned char ids[256];
    uint32_t cp[256];
    bpe_fixture_alphabet(ids, cp);
    for (const unsigned char *s = (const unsigned char *)text; *s; s++) {
        uint32_t c = cp[*s];
        if (c < 0x80)
            *out++ = (char)c;
        else
            *out++ = (char)(0xC0 | (c >> 6)), *out++ = (char)(0x80 | (c & 0x3F));
    }
    *out = 0;
}

static bool listed(char tokens[][128], size_t n, const char *t) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(tokens[i], t) == 0) return true;
    return false;
}

/* Writes <dir>/vocab.json and <dir>/merges.txt: the byte symbols (without
 * byte `drop`, when it is 0..255), the merged tokens in reverse line order
 * (so that ids do not follow ranks), and "<|endoftext|>" when eot. */
void bpe_fixture_write(const char *dir, const Pair *merges, size_t n, bool eot, int drop) {
    static char tokens[600][128];
    unsigned char byte_of_id[256];
    uint32_t cp[256];
    bpe_fixture_alphabet(byte_of_id, cp);
    size_t count = 0;
    for (int id = 0; id < 256; id++) {
        char s[2] = {(char)byte_of_id[id], 0};
        if (byte_of_id[id] != drop) bpe_fixture_spell(s, tokens[count++]);
    }
    StrBuf m;
    sb_init(&m);
    sb_appendf(&m, "#version: 0.2\n");
    for (size_t i = n; i-- > 0;) {
        char joined[128];
        snprintf(joined, sizeof joined, "%s%s", merges[i].left, merges[i].right);
        bpe_fixture_spell(joined, tokens[count]);
        if (!listed(tokens, count, tokens[count])) count++;
    }
    for (size_t i = 0; i < n; i++) {
        char l[128], r[128];
        bpe_fixture_spell(merges[i].left, l), bpe_fixture_spell(merges[i].right, r);
        sb_appendf(&m, "%s %s\n", l, r);
    }
    if (eot) snprintf(tokens[count++], sizeof tokens[0], "<|endoftext|>");
    StrBuf v;
    sb_init(&v);
    for (size_t i = 0; i < count; i++) {
        sb_appendf(&v, i ? ",\n" : "{");
        sb_append_json_string(&v, tokens[i], strlen(tokens[i]));
        sb_appendf(&v, ": %zu", i);
    }
    sb_appendf(&v, "}\n");
    char path[600];
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    test_write_file(path, v.data, v.len);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    test_write_file(path, m.data, m.len);
    sb_free(&v);
    sb_free(&m);
}

