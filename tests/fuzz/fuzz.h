/* fuzz.h — what the libFuzzer targets (tests/fuzz/fuzz_*.c, `make fuzz`)
 * share: the input handed to a parser as a file. seqlab's parsers read
 * paths; a memfd gives them one without touching a disk. */
#ifndef SEQLAB_FUZZ_H
#define SEQLAB_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Path of a file holding data[0, size) (slot: up to 4 files at once). */
static inline const char *fuzz_file(const uint8_t *data, size_t size, int slot) {
    static int fd[4] = {-1, -1, -1, -1};
    static char path[4][64];
    if (fd[slot] < 0) {
        fd[slot] = memfd_create("seqlab-fuzz", 0);
        if (fd[slot] < 0) abort();
        snprintf(path[slot], sizeof path[slot], "/proc/self/fd/%d", fd[slot]);
    }
    if (ftruncate(fd[slot], 0) != 0 || (size && pwrite(fd[slot], data, size, 0) != (ssize_t)size)) abort();
    return path[slot];
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
