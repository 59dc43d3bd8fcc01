/* datasets.c — see datasets.h. */
#include "datasets.h"

#include <stdlib.h>
#include <string.h>

static const Dataset datasets[] = {
    {"text", NULL, NULL, {NULL, NULL, NULL}, TOK_CHAR, NULL},
    {"shakespeare", "tinyshakespeare", "input.txt", {NULL, NULL, NULL}, TOK_CHAR, NULL},
    {"enwik8", "enwik8", "enwik8", {NULL, NULL, NULL}, TOK_BYTE, NULL},
    {"text8", "text8", "text8", {NULL, NULL, NULL}, TOK_CHAR, " abcdefghijklmnopqrstuvwxyz"},
    {"wikitext-103", "wikitext-103", NULL, {"wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"}, TOK_WORD,
     NULL},
    {"wikitext-2", "wikitext-2", NULL, {"wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"}, TOK_WORD, NULL},
};

const Dataset *dataset_find(const char *name) {
    for (size_t i = 0; i < sizeof datasets / sizeof *datasets; i++)
        if (name && strcmp(datasets[i].name, name) == 0) return &datasets[i];
    return NULL;
}

int dataset_roots(const char *roots[3]) {
    int n = 0;
    const char *env = getenv("SEQLAB_DATA");
    if (env && env[0]) roots[n++] = env;
    roots[n++] = "data";
    roots[n++] = "../shared/data";
    return n;
}
