/* fuzz.h — what the libFuzzer targets (tests/fuzz/fuzz_*.c, `make fuzz`)
 * share: the input handed to a parser as a file. seqlab's parsers read
 * paths; the input goes to a file in a directory of its own, so that a path
 * in it (a config's `base:`) resolves among nothing but the input's files.
 * (A memfd's /proc/self/fd/N path made `base: 4` read the fuzzer's own
 * descriptor 4 and block.) */
#ifndef SEQLAB_FUZZ_H
#define SEQLAB_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Path of a file holding data[0, size) (slot: up to 4 files at once), in
 * $TMPDIR (scripts/fuzz_long.sh and `make fuzz` point it at /dev/shm). */
static char fuzz_dir[512], fuzz_path[4][540];

/* At exit, the inputs and their directory go. */
static void fuzz_remove_files(void) {
    for (int slot = 0; slot < 4; slot++) unlink(fuzz_path[slot]);
    rmdir(fuzz_dir);
}

static inline const char *fuzz_file(const uint8_t *data, size_t size, int slot) {
    if (!fuzz_dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/seqlab-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(fuzz_dir)) abort();
        atexit(fuzz_remove_files);
    }
    snprintf(fuzz_path[slot], sizeof fuzz_path[slot], "%s/input%d", fuzz_dir, slot);
    /* A new file each time: ext4 flushes a file rewritten by truncation to
     * disk on close, which left the fuzzers waiting on the disk half the time. */
    unlink(fuzz_path[slot]);
    FILE *f = fopen(fuzz_path[slot], "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) abort();
    return fuzz_path[slot];
}

/* Splits data at the first 0 byte: the part before (a), the part after (b). */
static inline void fuzz_split(const uint8_t *data, size_t size, const uint8_t **b, size_t *a_size, size_t *b_size) {
    size_t i = 0;
    while (i < size && data[i]) i++;
    *a_size = i;
    *b = i < size ? data + i + 1 : data + size;
    *b_size = i < size ? size - i - 1 : 0;
}

#endif
