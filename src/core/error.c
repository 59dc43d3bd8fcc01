/* error.c — see error.h. */
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int err_set(Error *err, const char *fmt, ...) {
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int err_errno(Error *err, const char *fmt, ...) {
    int saved = errno;
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof err->msg)
        snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", strerror(saved));
    return -1;
}

int err_prefix(Error *err, const char *fmt, ...) {
    if (!err) return -1;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* shift the old message right and put "prefix: " in front (truncating the tail) */
    size_t plen = strlen(prefix) + 2, cap = sizeof err->msg - 1;
    if (plen > cap) plen = cap;
    size_t olen = strlen(err->msg);
    if (olen > cap - plen) olen = cap - plen;
    memmove(err->msg + plen, err->msg, olen);
    err->msg[plen + olen] = 0;
    memcpy(err->msg, prefix, plen - 2);
    err->msg[plen - 2] = ':';
    err->msg[plen - 1] = ' ';
    return -1;
}

void *xmalloc(size_t bytes, Error *err) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) err_set(err, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *xcalloc(size_t count, size_t size, Error *err) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) err_set(err, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

int xgrow(void *bufp, size_t *cap, size_t need, size_t elem, Error *err) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    if (c > SIZE_MAX / elem) return err_set(err, "out of memory: %zu elements of %zu bytes", c, elem);
    void *old; /* bufp points at a pointer of any type: copied, not cast */
    memcpy(&old, bufp, sizeof old);
    void *p = realloc(old, c * elem);
    if (!p) return err_set(err, "out of memory allocating %zu bytes", c * elem);
    memcpy(bufp, &p, sizeof p);
    *cap = c;
    return 0;
}
