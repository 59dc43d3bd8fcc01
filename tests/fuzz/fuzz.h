/* fuzz.h — what the libFuzzer targets (tests/fuzz/fuzz_*.c, `make fuzz`)
 * share: the input handed to a parser as a file. seqlab's parsers read
 * paths; the input goes to a file in a directory of its own, so that a path
 * in it (a config's `base:`) resolves among nothing but the input's files.
 * (A memfd's /proc/self/fd/N path made `base: 4` read the fuzzer's own
 * descriptor 4 and block.) */
#ifndef SEQLAB_FUZZ_H
#define SEQLAB_FUZZ_H

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The inputs of one fuzzer process live in a directory of their own in
 * $TMPDIR (scripts/fuzz_long.sh and `make fuzz` point it at /dev/shm). */
static char fuzz_dir[512];

/* At exit, the inputs and their directory go. */
static void fuzz_remove_files(void) {
    DIR *dir = opendir(fuzz_dir);
    for (struct dirent *entry; dir && (entry = readdir(dir));)
        if (entry->d_name[0] != '.') unlinkat(dirfd(dir), entry->d_name, 0);
    if (dir) closedir(dir);
    rmdir(fuzz_dir);
}

/* Path of the file `name` in the inputs' directory, holding data[0, size).
 * The path stays valid for the 7 calls after this one. */
static inline const char *fuzz_named_file(const char *name, const uint8_t *data, size_t size) {
    static char path[8][600];
    static int next;
    if (!fuzz_dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/seqlab-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(fuzz_dir)) abort();
        atexit(fuzz_remove_files);
    }
    char *slot = path[next++ % 8];
    snprintf(slot, sizeof path[0], "%s/%s", fuzz_dir, name);
    /* A new file each time: ext4 flushes a file rewritten by truncation to
     * disk on close, which left the fuzzers waiting on the disk half the time. */
    unlink(slot);
    FILE *f = fopen(slot, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) abort();
    return slot;
}

/* Path of a file holding data[0, size) (slot: up to 4 files at once). */
static inline const char *fuzz_file(const uint8_t *data, size_t size, int slot) {
    char name[16];
    snprintf(name, sizeof name, "input%d", slot);
    return fuzz_named_file(name, data, size);
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
