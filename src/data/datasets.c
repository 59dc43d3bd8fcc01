/* datasets.c — see datasets.h. */
#include "datasets.h"

#include <stdlib.h>
#include <string.h>

#define WIKI_TOKENS {"wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"}
#define WIKI_RAW {"wiki.train.raw", "wiki.valid.raw", "wiki.test.raw"}

static const Dataset datasets[] = {
    {.name = "text", .tokenizer = TOK_CHAR},
    {.name = "shakespeare", .dir = "tinyshakespeare", .file = "input.txt", .tokenizer = TOK_CHAR},
    {.name = "enwik8", .dir = "enwik8", .file = "enwik8", .tokenizer = TOK_BYTE},
    {.name = "text8", .dir = "text8", .file = "text8", .tokenizer = TOK_CHAR, .alphabet = " abcdefghijklmnopqrstuvwxyz"},
    {.name = "wikitext-103", .dir = "wikitext-103", .files = WIKI_TOKENS, .raw_dir = "wikitext-103-raw",
     .raw_files = WIKI_RAW, .tokenizer = TOK_WORD},
    {.name = "wikitext-2", .dir = "wikitext-2", .files = WIKI_TOKENS, .raw_dir = "wikitext-2-raw", .raw_files = WIKI_RAW,
     .tokenizer = TOK_WORD},
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
