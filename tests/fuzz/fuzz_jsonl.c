/* fuzz_jsonl.c — a run's metrics.jsonl as a resume rewrites it (the lines
 * of steps after the checkpoint dropped: metrics_truncate_after). */
#include <string.h>
#include <sys/stat.h>

#include "../../src/train/metrics.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/seqlab-fuzz-jsonl-%d", (int)getpid());
        mkdir(dir, 0700);
    }
    char path[128];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    fwrite(data, 1, size, f);
    fclose(f);
    Error err = {0};
    metrics_truncate_after(dir, 5, &err);
    return 0;
}
