/* fuzz_examples.c — the readers of labelled examples: GLUE TSV (classification
 * and regression, header and columns), the LRA's ListOps TSV and AAN pairs.
 * The first byte chooses the reader; the rest is the file. */
#include <string.h>

#include "../../src/tasks/examples.h"
#include "../../src/tasks/lra.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const int kind = data[0] % 4;
    Config c;
    Error err = {0};
    config_defaults(&c);
    config_set(&c, "task", kind == 1 ? "regression" : "classification", NULL, &err);
    if (kind == 2) config_set(&c, "format", "listops", NULL, &err);
    if (kind == 3) config_set(&c, "format", "aan", NULL, &err);
    snprintf(c.train_file, sizeof c.train_file, "%s", fuzz_file(data + 1, size - 1, 0));
    Examples ex;
    memset(&ex, 0, sizeof ex);
    if (kind < 2) examples_read(&ex, c.train_file, &c, kind == 1, true, &err);
    else lra_read(&ex, &c, 0, true, &err);
    examples_free(&ex);
    return 0;
}
