/* file.c — see file.h. */
#include "file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes all parts to the open temporary file, then flushes, syncs and
 * closes it (whatever happened, the stream is closed on return). */
static int write_parts(FILE *fp, const void *const *parts, const size_t *sizes, size_t n, const char *tmp,
                       const char *path, Error *err) {
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        if (sizes[i] && fwrite(parts[i], 1, sizes[i], fp) != sizes[i])
            rc = err_errno(err, "cannot write '%s' (temporary file for '%s')", tmp, path);
    if (!rc && fflush(fp) != 0) rc = err_errno(err, "cannot write '%s' (temporary file for '%s')", tmp, path);
    if (!rc && fsync(fileno(fp)) != 0) rc = err_errno(err, "cannot fsync '%s' (temporary file for '%s')", tmp, path);
    if (fclose(fp) != 0 && !rc) rc = err_errno(err, "cannot close '%s' (temporary file for '%s')", tmp, path);
    return rc;
}

/* fsyncs the directory holding path, so that the rename is durable. Some
 * file systems cannot sync a directory (EINVAL); that is not an error. */
static int sync_dir(const char *path, Error *err) {
    size_t k = strlen(path);
    char *dir = malloc(k + 2);
    if (!dir) return err_set(err, "wrote '%s' but ran out of memory syncing its directory", path);
    memcpy(dir, path, k + 1);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = 0;
    else
        *slash = 0;
    int rc = 0, fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        rc = err_errno(err, "wrote '%s' but cannot open its directory '%s' to sync it", path, dir);
    else if (fsync(fd) != 0 && errno != EINVAL)
        rc = err_errno(err, "wrote '%s' but cannot fsync its directory '%s'", path, dir);
    if (fd >= 0) close(fd); /* read-only descriptor: nothing to lose */
    free(dir);
    return rc;
}

int file_write_atomic(const char *path, const void *const *parts, const size_t *sizes, size_t n, Error *err) {
    size_t k = strlen(path) + 32;
    char *tmp = malloc(k);
    if (!tmp) return err_set(err, "cannot write '%s': out of memory", path);
    snprintf(tmp, k, "%s.tmp.%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        err_errno(err, "cannot create '%s' (temporary file for '%s')", tmp, path);
        free(tmp);
        return -1;
    }
    int rc = write_parts(fp, parts, sizes, n, tmp, path, err);
    if (!rc && rename(tmp, path) != 0) rc = err_errno(err, "cannot rename '%s' to '%s'", tmp, path);
    if (rc) unlink(tmp); /* best effort: the message already says what failed */
    free(tmp);
    if (rc) return -1;
    return sync_dir(path, err);
}

int file_remove_orphans(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    for (struct dirent *e; (e = readdir(d));) {
        const char *tag = strstr(e->d_name, ".tmp.");
        char *end;
        if (!tag || tag == e->d_name) continue;
        const long pid = strtol(tag + 5, &end, 10);
        if (*end || pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno != ESRCH)) continue; /* not ours, or alive */
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        removed += unlink(path) == 0;
    }
    closedir(d);
    return removed;
}

bool file_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool file_is_regular(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int file_make_dirs(const char *dir, Error *err) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) return err_set(err, "path too long: '%.200s'", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(path, 0755) != 0 && errno != EEXIST) return err_errno(err, "cannot create directory '%s'", path);
        *p = '/';
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST) return err_errno(err, "cannot create directory '%s'", path);
    return 0;
}

int file_map(FileMap *m, const char *path, const char *what, Error *err) {
    memset(m, 0, sizeof *m);
    const char *sep = what ? " " : "";
    what = what ? what : "";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_errno(err, "cannot open %s%s'%s'", what, sep, path);
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = err_errno(err, "cannot stat %s%s'%s'", what, sep, path);
    else if (!S_ISREG(st.st_mode))
        rc = err_set(err, "%s%s'%s' is not a regular file", what, sep, path);
    else if ((uintmax_t)st.st_size > SIZE_MAX)
        rc = err_set(err, "%s%s'%s' is too large to map", what, sep, path);
    if (!rc && st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
            rc = err_errno(err, "cannot map %s%s'%s'", what, sep, path);
        else
            m->data = p, m->size = (size_t)st.st_size;
    }
    close(fd); /* read-only descriptor (the mapping stays valid): nothing to lose */
    return rc;
}

void file_unmap(FileMap *m) {
    if (m->data) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

void strlist_free(StrList *a) {
    for (size_t i = 0; i < a->n; i++) free(a->s[i]);
    free(a->s);
    memset(a, 0, sizeof *a);
}

int strlist_add(StrList *a, const char *s, size_t len, Error *err) {
    char *copy = xmalloc(len + 1, err);
    if (!copy || xgrow(&a->s, &a->cap, a->n + 1, sizeof *a->s, err)) {
        free(copy);
        return -1;
    }
    memcpy(copy, s, len);
    copy[len] = 0;
    a->s[a->n++] = copy;
    return 0;
}

static int by_strcmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void strlist_sort(StrList *a) {
    if (a->n) qsort(a->s, a->n, sizeof *a->s, by_strcmp);
}

bool strlist_has(const StrList *a, const char *s) { return a->n && bsearch(&s, a->s, a->n, sizeof *a->s, by_strcmp); }

int file_list(const char *dir, bool (*keep)(const char *path, const char *name), StrList *a, Error *err) {
    DIR *d = opendir(dir);
    if (!d) return err_errno(err, "cannot read the folder '%s'", dir);
    int rc = 0;
    for (;;) {
        errno = 0;
        const struct dirent *e = readdir(d);
        if (!e) {
            if (errno) rc = err_errno(err, "cannot read the folder '%s'", dir);
            break;
        }
        char path[4096];
        if (e->d_name[0] == '.') continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) {
            rc = err_set(err, "path '%s/%s' is too long", dir, e->d_name);
            break;
        }
        if (keep(path, e->d_name) && (rc = strlist_add(a, e->d_name, strlen(e->d_name), err))) break;
    }
    closedir(d);
    if (!rc) strlist_sort(a);
    return rc;
}
