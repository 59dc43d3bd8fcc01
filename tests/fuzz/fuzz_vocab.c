/* fuzz_vocab.c — a run's vocab.json (tokenizer_load: byte, char, word; a
 * BPE vocab.json names files beside it, which a memfd has not) and encoding
 * a text with what it loaded. */
#include <string.h>

#include "../../src/data/tokenizer.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Tokenizer t;
    Error err = {0};
    memset(&t, 0, sizeof t);
    if (tokenizer_load(&t, fuzz_file(data, size, 0), &err) == 0) {
        static const unsigned char text[] = "the cat sat\n on \xc3\xa9 mat <unk>";
        int32_t *ids = NULL;
        size_t n = 0;
        if (tokenizer_encode(&t, text, sizeof text - 1, true, &ids, &n, NULL, "text", &err) == 0) free(ids);
    }
    tokenizer_free(&t);
    return 0;
}
