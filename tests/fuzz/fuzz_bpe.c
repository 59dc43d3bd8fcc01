/* fuzz_bpe.c — GPT-2 BPE tables: vocab.json, then a 0 byte, then merges.txt
 * (bpe_load), and encoding and decoding a text with them. */
#include "../../src/data/bpe.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *merges;
    size_t n_vocab, n_merges;
    fuzz_split(data, size, &merges, &n_vocab, &n_merges);
    Bpe *b = NULL;
    Error err = {0};
    if (bpe_load(&b, fuzz_file(data, n_vocab, 0), fuzz_file(merges, n_merges, 1), &err)) return 0;
    static const unsigned char text[] = "Hello world's 123 caf\xc3\xa9  \n<|endoftext|>";
    int32_t *ids = NULL;
    size_t n = 0;
    if (bpe_encode(b, text, sizeof text - 1, &ids, &n, &err) == 0) {
        char out[256];
        for (size_t i = 0; i < n; i++) bpe_decode_one(b, ids[i], out, sizeof out);
        free(ids);
    }
    bpe_free(b);
    return 0;
}
