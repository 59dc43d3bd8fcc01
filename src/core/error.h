/* error.h — the error type of the library.
 *
 * Library functions never print and never exit: they return 0 on success and
 * -1 on failure after writing a one-line message into an Error that the caller
 * passed in. Only src/cli/ prints the message and chooses the exit code. This
 * keeps failures testable and keeps MPI ranks from dying half-way through a write.
 *
 *     Error err = {0};
 *     if (tokfile_open(&tf, path, &err)) { fprintf(stderr, "seqlab: %s\n", err.msg); return 1; }
 */
#ifndef SEQLAB_ERROR_H
#define SEQLAB_ERROR_H

#include <stddef.h>

typedef struct {
    char msg[1024];
} Error;

/* Formats the message into err (if err is not NULL) and returns -1, so that
 * `return err_set(err, "...")` reads as one statement. */
int err_set(Error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like err_set, but appends ": <strerror(errno)>". */
int err_errno(Error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends "<prefix>: " to an existing message (adds context on the way up). */
int err_prefix(Error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* malloc/calloc that report failure through err with the requested size. */
void *xmalloc(size_t bytes, Error *err);
void *xcalloc(size_t count, size_t size, Error *err);
/* Makes the array at *bufp (a pointer to any element type, NULL when empty)
 * hold at least `need` elements of `elem` bytes, doubling its capacity *cap
 * (in elements); on failure the array is left as it was. */
int xgrow(void *bufp, size_t *cap, size_t need, size_t elem, Error *err);

#endif
