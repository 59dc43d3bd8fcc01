/* wav.c — see wav.h. */
#include "wav.h"

#include <fcntl.h>
#include <sndfile.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t get32(const unsigned char *p, bool big) {
    return big ? (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3]
               : (uint64_t)p[3] << 24 | (uint64_t)p[2] << 16 | (uint64_t)p[1] << 8 | p[0];
}

/* Checks the RIFF/WAVE header of the open file (size bytes) and walks its
 * chunks to 'data', which must end inside the file. RF64 keeps its sizes in
 * a ds64 chunk and is left to libsndfile; a data size of 0xFFFFFFFF is a
 * streaming writer's "unknown" and passes. */
static int check_riff(int fd, uint64_t size, const char *path, Error *err) {
    unsigned char h[12];
    if (size < 12) return err_set(err, "'%s' is not a WAV file (only %llu bytes)", path, (unsigned long long)size);
    if (pread(fd, h, 12, 0) != 12) return err_errno(err, "cannot read '%s'", path);
    if (memcmp(h + 8, "WAVE", 4) || (memcmp(h, "RIFF", 4) && memcmp(h, "RIFX", 4) && memcmp(h, "RF64", 4)))
        return err_set(err, "'%s' is not a WAV file (it does not start with a RIFF/WAVE header)", path);
    if (!memcmp(h, "RF64", 4)) return 0;
    const bool big = !memcmp(h, "RIFX", 4);
    for (uint64_t at = 12;;) {
        unsigned char c[8];
        if (at + 8 > size)
            return err_set(err, "'%s' is truncated: its %llu bytes end before the 'data' chunk (the samples)", path,
                           (unsigned long long)size);
        if (pread(fd, c, 8, (off_t)at) != 8) return err_errno(err, "cannot read '%s'", path);
        const uint64_t len = get32(c + 4, big);
        if (!memcmp(c, "data", 4)) {
            if (len != 0xFFFFFFFFu && at + 8 + len > size)
                return err_set(err, "'%s' is truncated: its header promises %llu bytes of samples, the file holds %llu",
                               path, (unsigned long long)len, (unsigned long long)(size - at - 8));
            return 0;
        }
        at += 8 + len + (len & 1); /* chunks are padded to even sizes */
    }
}

/* Reads the samples of the checked, open file fd (closed by the caller). */
static int read_samples(int fd, unsigned expect_rate, const char *path, float **samples, size_t *n, Error *err) {
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open_fd(fd, SFM_READ, &info, SF_FALSE);
    if (!sf) return err_set(err, "'%s' is not a readable WAV file (libsndfile: %s)", path, sf_strerror(NULL));
    int rc = 0;
    const int type = info.format & SF_FORMAT_TYPEMASK;
    if (type != SF_FORMAT_WAV && type != SF_FORMAT_WAVEX && type != SF_FORMAT_RF64)
        rc = err_set(err, "'%s' is not a WAV file (libsndfile reads it as format 0x%x)", path, type);
    else if (info.channels != 1)
        rc = err_set(err, "'%s' has %d channels; only mono files are read", path, info.channels);
    else if (info.samplerate < 0 || (unsigned)info.samplerate != expect_rate)
        rc = err_set(err, "'%s' is sampled at %d Hz, not the expected %u Hz (resample: sox in.wav -r %u out.wav)",
                     path, info.samplerate, expect_rate, expect_rate);
    else if (info.frames <= 0)
        rc = err_set(err, "'%s' holds no samples", path);
    else if ((uint64_t)info.frames > SIZE_MAX / sizeof(float) || info.frames == SF_COUNT_MAX)
        rc = err_set(err, "'%s': %lld samples is more than can be read", path, (long long)info.frames);
    float *x = rc ? NULL : xmalloc((size_t)info.frames * sizeof *x, err);
    if (!rc && !x) rc = -1;
    if (!rc) {
        const sf_count_t got = sf_readf_float(sf, x, info.frames);
        if (got != info.frames)
            rc = err_set(err, "'%s' is truncated or damaged: read %lld of its %lld samples (libsndfile: %s)", path,
                         (long long)got, (long long)info.frames, sf_strerror(sf));
    }
    sf_close(sf);
    if (rc) {
        free(x);
        return -1;
    }
    *samples = x;
    *n = (size_t)info.frames;
    return 0;
}

int wav_read(const char *path, unsigned expect_rate, float **samples, size_t *n, Error *err) {
    *samples = NULL;
    *n = 0;
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_errno(err, "cannot open WAV file '%s'", path);
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) rc = err_errno(err, "cannot read '%s'", path);
    else if (!S_ISREG(st.st_mode)) rc = err_set(err, "'%s' is not a regular file", path);
    else if (st.st_size == 0) rc = err_set(err, "'%s' is empty (0 bytes), not a WAV file", path);
    if (!rc) rc = check_riff(fd, (uint64_t)st.st_size, path, err);
    if (!rc) rc = read_samples(fd, expect_rate, path, samples, n, err);
    close(fd);
    return rc;
}
