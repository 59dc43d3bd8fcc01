/* file.h — the two ways seqlab touches whole files: writing one atomically
 * and mapping one read-only (and what kind of thing a path names).
 *
 * Atomic writes follow redis' rdbSave: the bytes go to "<path>.tmp.<pid>",
 * which is flushed, fsynced and renamed over the target, then the directory
 * is fsynced. A reader sees the old file or the new one, never a part, and a
 * failed write leaves the old file untouched (the temporary file removed).
 *
 *     const void *parts[] = {header, body};  size_t sizes[] = {h, b};
 *     if (file_write_atomic("run/ckpt-100.safetensors", parts, sizes, 2, &err)) ...
 *
 *     FileMap m;
 *     if (file_map(&m, "data/input.txt", "data file", &err)) ...   // m.data, m.size
 *     file_unmap(&m);
 */
#ifndef SEQLAB_FILE_H
#define SEQLAB_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* Writes the concatenation of n parts (parts[i] of sizes[i] bytes) to path
 * atomically. Returns 0, or -1 with a message naming the path. */
int file_write_atomic(const char *path, const void *const *parts, const size_t *sizes, size_t n, Error *err);
/* Deletes the temporary files (<name>.tmp.<pid>) that file_write_atomic
 * left in dir when its process was killed mid-write (the process is gone);
 * returns how many. Another live process's are left alone. */
int file_remove_orphans(const char *dir);

/* Whether path names a directory / a regular file (following links). */
bool file_is_dir(const char *path);
bool file_is_regular(const char *path);

/* Creates dir and its missing parents (like mkdir -p). */
int file_make_dirs(const char *dir, Error *err);

/* A growing list of owned strings: folder listings, lists of names. */
typedef struct {
    char **s; /* owned, each owned */
    size_t n, cap;
} StrList;

void strlist_free(StrList *a);
/* Appends a copy of the len bytes at s. */
int strlist_add(StrList *a, const char *s, size_t len, Error *err);
/* Sorts a in strcmp order; strlist_has then finds a name by bisection. */
void strlist_sort(StrList *a);
bool strlist_has(const StrList *a, const char *s);

/* Appends to a the names of folder dir's entries that keep(path, name)
 * accepts (path: "dir/name"; hidden names, "." ".." and macOS' "._x", are
 * skipped), then sorts a, so a folder reads the same on every machine.
 * Errors name the folder. */
int file_list(const char *dir, bool (*keep)(const char *path, const char *name), StrList *a, Error *err);

/* A read-only view of a whole regular file. An empty file maps to data NULL,
 * size 0. */
typedef struct {
    const unsigned char *data; /* owned mapping; NULL when size is 0 */
    size_t size;
} FileMap;

/* Maps path. Errors name it as `what` (e.g. "data file"; NULL for none):
 * "cannot open data file '<path>': No such file or directory". */
int file_map(FileMap *m, const char *path, const char *what, Error *err);
/* Unmaps; accepts a zeroed or already unmapped FileMap. */
void file_unmap(FileMap *m);

#endif
