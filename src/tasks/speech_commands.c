/* speech_commands.c — see speech_commands.h. */
#include "speech_commands.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/file.h"
#include "../data/wav.h"

enum { SC_PATH = 4096, SC_MAX_CLASSES = 1024 };

#define BACKGROUND "_background_noise_"

/* The two list files, [0] validation, [1] test. */
static const char *const list_files[2] = {"validation_list.txt", "testing_list.txt"};
static const char *const split_words[SPLIT_COUNT] = {"training", "validation", "test"};

/* Whether the unsorted a holds the len bytes at s. */
static bool names_find(const StrList *a, const char *s, size_t len) {
    for (size_t i = 0; i < a->n; i++)
        if (strlen(a->s[i]) == len && !memcmp(a->s[i], s, len)) return true;
    return false;
}

/* ------------------------------------------------------------------------ */
/* Paths and folders */

/* "dir/name" into out (SC_PATH bytes). */
static int path_of(char *out, const char *dir, const char *name, Error *err) {
    const int n = snprintf(out, SC_PATH, "%s/%s", dir, name);
    if (n < 0 || n >= SC_PATH) return err_set(err, "path '%s/%s' is longer than %d bytes", dir, name, SC_PATH - 1);
    return 0;
}

static bool is_wav_name(const char *name) {
    const size_t len = strlen(name);
    return len > 4 && !strcasecmp(name + len - 4, ".wav");
}

/* A word folder: every sub-folder but _background_noise_. */
static bool is_word_folder(const char *path, const char *name) { return strcmp(name, BACKGROUND) && file_is_dir(path); }

static bool is_clip(const char *path, const char *name) { return is_wav_name(name) && file_is_regular(path); }

/* ------------------------------------------------------------------------ */
/* The classes */

/* One name of a comma list: a folder name, not yet in cls. */
static int add_class(StrList *cls, const char *p, size_t len, const char *list, Error *err) {
    if (!len)
        return err_set(err, "classes '%s': an empty name (give word folders separated by commas, \"\" for SC10, "
                            "\"sc35\" for every word)", list);
    const bool dots = len <= 2 && !strncmp(p, "..", len);
    const bool background = len == strlen(BACKGROUND) && !memcmp(p, BACKGROUND, len);
    if (memchr(p, '/', len) || dots || background)
        return err_set(err, "classes '%s': '%.*s' is not a word folder", list, (int)len, p);
    if (names_find(cls, p, len)) return err_set(err, "classes '%s': '%.*s' is named twice", list, (int)len, p);
    if (cls->n == SC_MAX_CLASSES) return err_set(err, "classes '%s': more than %d names", list, SC_MAX_CLASSES);
    return strlist_add(cls, p, len, err);
}

/* The class names of `classes` in class-id order, each an existing folder. */
static int resolve_classes(const char *root, const char *classes, StrList *cls, Error *err) {
    if (!file_is_dir(root))
        return err_set(err, "Speech Commands folder '%s' does not exist or is not a folder (unpack "
                            "speech_commands_v0.02.tar.gz there, or make a stand-in: scripts/speech_standin.sh '%s')",
                       root, root);
    if (!strcmp(classes, "sc35")) {
        if (file_list(root, is_word_folder, cls, err)) return -1;
        return cls->n ? 0 : err_set(err, "'%s' holds no word folders (classes \"sc35\")", root);
    }
    const char *list = classes[0] ? classes : SPEECH_COMMANDS_SC10;
    for (const char *p = list;; p++) {
        const size_t len = strcspn(p, ",");
        if (add_class(cls, p, len, list, err)) return -1;
        p += len;
        if (!*p) break;
    }
    for (size_t k = 0; k < cls->n; k++) {
        char dir[SC_PATH];
        if (path_of(dir, root, cls->s[k], err)) return -1;
        if (!file_is_dir(dir) && classes[0])
            return err_set(err, "class folder '%s' does not exist (classes %s)", dir, list);
        if (!file_is_dir(dir))
            return err_set(err, "class folder '%s' does not exist (the classes default to SC10's, %s; name others "
                                "as a comma list, or \"sc35\" for every word folder)", dir, list);
    }
    return 0;
}

int speech_commands_classes(const char *root, const char *classes, char *out, size_t cap, int *count, Error *err) {
    StrList cls = {0};
    int rc = resolve_classes(root, classes, &cls, err);
    size_t at = 0;
    for (size_t k = 0; !rc && k < cls.n; k++) {
        const size_t len = strlen(cls.s[k]);
        if (at + len + 1 > cap) rc = err_set(err, "the classes of '%s' do not fit in %zu bytes", root, cap);
        else {
            memcpy(out + at, cls.s[k], len);
            at += len;
            out[at++] = k + 1 < cls.n ? ',' : 0;
        }
    }
    if (!rc) *count = (int)cls.n;
    strlist_free(&cls);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The list files */

/* One line "word/file.wav" (len bytes at s, trimmed) of the list `path`:
 * well formed, and when word is a class, naming an existing file. */
static int add_list_line(const char *root, const char *s, size_t len, const StrList *cls, const char *path,
                         size_t number, StrList *out, Error *err) {
    const char *slash = memchr(s, '/', len);
    if (!slash || slash == s || slash + 1 == s + len || memchr(slash + 1, '/', len - (size_t)(slash + 1 - s)) ||
        memchr(s, 0, len))
        return err_set(err, "%s:%zu: '%.*s' is not a clip 'word/file.wav'", path, number, (int)len, s);
    char rel[SC_PATH], file[SC_PATH];
    if (len >= SC_PATH) return err_set(err, "%s:%zu: the line is longer than %d bytes", path, number, SC_PATH - 1);
    memcpy(rel, s, len);
    rel[len] = 0;
    if (names_find(cls, s, (size_t)(slash - s))) {
        if (path_of(file, root, rel, err)) return -1;
        if (!file_is_regular(file))
            return err_set(err, "%s:%zu: names '%s', but '%s' does not exist", path, number, rel, file);
    }
    return strlist_add(out, rel, len, err);
}

/* Reads the list file `name` of root into out, sorted. */
static int read_list(const char *root, const char *name, const StrList *cls, StrList *out, Error *err) {
    char path[SC_PATH];
    if (path_of(path, root, name, err)) return -1;
    if (!file_is_regular(path))
        return err_set(err, "list file '%s' is missing: Speech Commands names its %s clips there, one "
                            "'word/file.wav' a line (and trains on every clip in neither %s nor %s)",
                       path, name == list_files[0] ? "validation" : "test", list_files[0], list_files[1]);
    FileMap m;
    if (file_map(&m, path, "list file", err)) return -1;
    int rc = 0;
    const char *p = (const char *)m.data, *end = p + m.size;
    for (size_t number = 1; !rc && p < end; number++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *stop = nl ? nl : end;
        while (stop > p && isspace((unsigned char)stop[-1])) stop--; /* "\r", trailing blanks */
        if (stop > p) rc = add_list_line(root, p, (size_t)(stop - p), cls, path, number, out, err);
        p = nl ? nl + 1 : end;
    }
    file_unmap(&m);
    if (!rc) strlist_sort(out);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The clips */

/* Adds the clips of class `label` (folder root/word) that belong to split,
 * each padded or cut to `length` samples in x. */
static int read_class(Examples *ex, const char *root, const char *word, int32_t label, int split, const StrList lists[2],
                      float *x, size_t length, Error *err) {
    char dir[SC_PATH];
    if (path_of(dir, root, word, err)) return -1;
    StrList files = {0};
    int rc = file_list(dir, is_clip, &files, err);
    if (!rc && !files.n) rc = err_set(err, "class folder '%s' holds no .wav clips", dir);
    for (size_t i = 0; !rc && i < files.n; i++) {
        char rel[SC_PATH], path[SC_PATH];
        if ((rc = path_of(rel, word, files.s[i], err)) || (rc = path_of(path, root, rel, err))) break;
        const int in = strlist_has(&lists[0], rel) ? SPLIT_VALID : strlist_has(&lists[1], rel) ? SPLIT_TEST : SPLIT_TRAIN;
        if (in != split) continue;
        float *s;
        size_t n;
        if ((rc = wav_read(path, SPEECH_COMMANDS_RATE, &s, &n, err))) break;
        const size_t keep = n < length ? n : length; /* pad the end with zeros, or cut */
        memcpy(x, s, keep * sizeof *x);
        memset(x + keep, 0, (length - keep) * sizeof *x);
        free(s);
        rc = examples_add_signal(ex, x, length, label, err);
    }
    strlist_free(&files);
    return rc;
}

int speech_commands_read(Examples *ex, const char *root, int split, const char *classes, size_t length, Error *err) {
    examples_begin(ex, root);
    if (split < SPLIT_TRAIN || split >= SPLIT_COUNT) return err_set(err, "Speech Commands: no split %d", split);
    if (length == 0) return err_set(err, "Speech Commands: the clip length must be at least one sample");
    StrList cls = {0}, lists[2] = {{0}, {0}};
    float *x = NULL;
    int rc = resolve_classes(root, classes, &cls, err);
    for (int l = 0; !rc && l < 2; l++) rc = read_list(root, list_files[l], &cls, &lists[l], err);
    for (size_t i = 0; !rc && i < lists[0].n; i++)
        if (strlist_has(&lists[1], lists[0].s[i]))
            rc = err_set(err, "'%s': clip '%s' is in both %s and %s", root, lists[0].s[i], list_files[0],
                         list_files[1]);
    if (!rc && !(x = xmalloc(length * sizeof *x, err))) rc = -1;
    for (size_t k = 0; !rc && k < cls.n; k++)
        rc = read_class(ex, root, cls.s[k], (int32_t)k, split, lists, x, length, err);
    if (!rc && ex->n == 0)
        rc = err_set(err, "'%s': none of the clips of the classes %s is in the %s split", root,
                     classes[0] ? classes : SPEECH_COMMANDS_SC10, split_words[split]);
    free(x);
    strlist_free(&cls);
    strlist_free(&lists[0]);
    strlist_free(&lists[1]);
    if (rc) examples_free(ex);
    return rc;
}
