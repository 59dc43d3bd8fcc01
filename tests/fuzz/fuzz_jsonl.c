/* fuzz_jsonl.c — a run's metrics.jsonl as a resume rewrites it (the lines
 * of steps after the checkpoint dropped: metrics_truncate_after). */
#include "../../src/train/metrics.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_named_file("metrics.jsonl", data, size);
    Error err = {0};
    metrics_truncate_after(fuzz_dir, 5, &err);
    return 0;
}
