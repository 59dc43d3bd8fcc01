/* fuzz_jsonl.c — a run's metrics.jsonl as a resume rewrites it (the lines
 * of steps after the checkpoint dropped: metrics_truncate_after). Property:
 * the rewritten file is a subsequence of the input's whole lines, whatever
 * their length or bytes. */
#include <string.h>

#include "../../src/train/metrics.h"
#include "fuzz.h"

/* Length of the line at p (with its newline, if it has one) in p[0, end). */
static size_t line_length(const uint8_t *p, const uint8_t *end) {
    const uint8_t *newline = memchr(p, '\n', (size_t)(end - p));
    return newline ? (size_t)(newline - p) + 1 : (size_t)(end - p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_named_file("metrics.jsonl", data, size);
    Error err = {0};
    if (metrics_truncate_after(fuzz_dir, 5, &err) != 0) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) abort();
    static uint8_t out[1 << 20];
    const size_t out_size = fread(out, 1, sizeof out, f);
    fclose(f);
    /* Greedy: each input line in turn is matched by the output's next line or skipped. */
    const uint8_t *o = out, *o_end = out + out_size;
    for (const uint8_t *p = data, *end = data + size; p < end && o < o_end;) {
        const size_t n = line_length(p, end);
        if (line_length(o, o_end) == n && !memcmp(o, p, n)) o += n;
        p += n;
    }
    if (o != o_end) abort(); /* a line that is not one of the input's */
    return 0;
}
