/* fuzz_tokfile.c — the token file reader (header: magic, version, width,
 * vocabulary, count against the file's size). */
#include "../../src/data/tokfile.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    TokFile f;
    Error err = {0};
    if (tokfile_open(&f, fuzz_file(data, size, 0), &err) == 0) tokfile_close(&f);
    return 0;
}
