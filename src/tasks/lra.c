/* lra.c — see lra.h. */
#include "lra.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/file.h"
#include "../core/rng.h"
#include "../data/corpus.h"
#include "../data/png.h"
#include "speech_commands.h"

enum { SPEECH_SAMPLES = 16000 }; /* one second at 16 kHz: the seeds pad every clip to it */

static bool format_is(const Config *c, const char *name) { return !strcmp(c->format, name); }

bool lra_format(const Config *c) { return !format_is(c, "tsv"); }

bool lra_pixels(const Config *c) { return format_is(c, "cifar10") || format_is(c, "pathfinder"); }

bool lra_signals(const Config *c) { return lra_pixels(c) || format_is(c, "speech_commands"); }

float lra_signal_scale(const Config *c) { return lra_pixels(c) ? 1.0f / 255.0f : 1.0f; }

/* ---- texts ---- */

void lra_listops_tokens(Examples *ex) {
    size_t out = 0;
    for (size_t i = 0; i < ex->n; i++) {
        const size_t a = ex->text_start[i], b = ex->text_start[i + 1];
        ex->text_start[i] = out;
        for (size_t k = a; k < b; k++) {
            const char ch = ex->chars[k];
            if (ch != '(' && ch != ')') ex->chars[out++] = ch == ']' ? 'X' : ch;
        }
    }
    ex->text_start[ex->n] = out;
}

static bool has_suffix(const char *name, const char *suffix) {
    const size_t n = strlen(name), k = strlen(suffix);
    return n > k && !strcmp(name + n - k, suffix);
}

static bool is_review(const char *path, const char *name) { return has_suffix(name, ".txt") && file_is_regular(path); }

static bool is_metadata(const char *path, const char *name) { return has_suffix(name, ".npy") && file_is_regular(path); }

/* Every review of <root>/<part>/neg (class 0) and /pos (class 1). */
static int read_imdb(Examples *ex, const char *root, const char *part, Error *err) {
    static const char *const classes[2] = {"neg", "pos"};
    for (int k = 0; k < 2; k++) {
        char dir[CFG_PATH + 16];
        snprintf(dir, sizeof dir, "%s/%s/%s", root, part, classes[k]);
        StrList names = {0};
        int rc = file_list(dir, is_review, &names, err);
        if (!rc && !names.n) rc = err_set(err, "format imdb: '%s' holds no .txt reviews", dir);
        for (size_t i = 0; !rc && i < names.n; i++) {
            char path[2 * CFG_PATH];
            snprintf(path, sizeof path, "%s/%s", dir, names.s[i]);
            FileMap m;
            rc = file_map(&m, path, "IMDb review", err) ||
                 examples_add_text(ex, (const char *)m.data, m.size, (int32_t)k, err);
            file_unmap(&m);
        }
        strlist_free(&names);
        if (rc) return -1;
    }
    return 0;
}

/* The Retrieval TSV: the TSV reader with the release's columns, then the
 * labels (numbers in the file) as classes 0 / 1. */
static int read_aan(Examples *ex, const Config *c, const char *path, bool need_labels, Error *err) {
    Config columns = *c;
    columns.header = false;
    snprintf(columns.text_column, sizeof columns.text_column, "3");
    snprintf(columns.text2_column, sizeof columns.text2_column, "4");
    snprintf(columns.label_column, sizeof columns.label_column, "0");
    if (examples_read(ex, path, &columns, true, need_labels, err)) return -1;
    if (!ex->labelled) return 0;
    if (!(ex->labels = xmalloc(ex->n * sizeof *ex->labels, err))) return -1;
    for (size_t i = 0; i < ex->n; i++) {
        const float v = ex->values[i];
        if (v != 0.0f && v != 1.0f)
            return err_set(err, "%s: example %zu: label %g is not 0 or 1 (format aan)", path, i + 1, (double)v);
        ex->labels[i] = (int32_t)v;
    }
    free(ex->values);
    ex->values = NULL;
    return 0;
}

/* ---- images ---- */

enum { CIFAR_SIDE = 32, CIFAR_PIXELS = CIFAR_SIDE * CIFAR_SIDE, CIFAR_RECORD = 1 + 3 * CIFAR_PIXELS,
       CIFAR_PER_FILE = 10000, CIFAR_TRAIN = 45000 };

/* TensorFlow's rgb_to_grayscale on uint8: the weighted sum of the channels
 * scaled to [0, 1] in float, then back to uint8 by x * 255.5 truncated. */
static float cifar_gray(unsigned r, unsigned g, unsigned b) {
    const float f = 0.2989f * ((float)r / 255.0f) + 0.5870f * ((float)g / 255.0f) + 0.1140f * ((float)b / 255.0f);
    const float v = floorf(f * 255.5f);
    return v > 255.0f ? 255.0f : v;
}

/* Records [from, to) of one CIFAR-10 binary batch file, as gray images. */
static int read_cifar_file(Examples *ex, const char *path, size_t from, size_t to, Error *err) {
    FileMap m;
    if (file_map(&m, path, "CIFAR-10 batch", err)) return -1;
    int rc = m.size == (size_t)CIFAR_PER_FILE * CIFAR_RECORD
                 ? 0
                 : err_set(err, "'%s': %zu bytes, a CIFAR-10 binary batch has %d records of %d bytes (%zu): truncated "
                                "or not the binary version", path, m.size, CIFAR_PER_FILE, CIFAR_RECORD,
                           (size_t)CIFAR_PER_FILE * CIFAR_RECORD);
    float gray[CIFAR_PIXELS];
    for (size_t i = from; !rc && i < to; i++) {
        const unsigned char *rec = m.data + i * CIFAR_RECORD, *px = rec + 1;
        if (rec[0] > 9) {
            rc = err_set(err, "'%s': record %zu has label %u, CIFAR-10's are 0..9", path, i + 1, rec[0]);
            break;
        }
        for (size_t p = 0; p < CIFAR_PIXELS; p++)
            gray[p] = cifar_gray(px[p], px[CIFAR_PIXELS + p], px[2 * CIFAR_PIXELS + p]);
        rc = examples_add_signal(ex, gray, CIFAR_PIXELS, rec[0], err);
    }
    file_unmap(&m);
    return rc;
}

static int read_cifar(Examples *ex, const char *root, int split, Error *err) {
    char path[CFG_PATH + 32];
    if (split == SPLIT_TEST) {
        snprintf(path, sizeof path, "%s/test_batch.bin", root);
        return read_cifar_file(ex, path, 0, CIFAR_PER_FILE, err);
    }
    const size_t from = split == SPLIT_TRAIN ? 0 : CIFAR_TRAIN, to = split == SPLIT_TRAIN ? CIFAR_TRAIN : 5 * CIFAR_PER_FILE;
    for (size_t f = from / CIFAR_PER_FILE; f < (to + CIFAR_PER_FILE - 1) / CIFAR_PER_FILE; f++) {
        const size_t a = f * CIFAR_PER_FILE, lo = from > a ? from - a : 0, hi = to < a + CIFAR_PER_FILE ? to - a : CIFAR_PER_FILE;
        snprintf(path, sizeof path, "%s/data_batch_%zu.bin", root, f + 1);
        if (read_cifar_file(ex, path, lo, hi, err)) return -1;
    }
    return 0;
}

typedef struct {
    char (*path)[CFG_PATH]; /* owned: each image's path */
    int32_t *label;         /* owned */
    size_t n, cap_path, cap_label;
} ImageList;

static void image_list_free(ImageList *l) {
    free(l->path);
    free(l->label);
}

/* One metadata line "folder file index label ..." of `where`. */
static int add_metadata_line(ImageList *l, const char *root, char *line, const char *where, Error *err) {
    char *field[4];
    int k = 0;
    for (char *save = NULL, *tok = strtok_r(line, " \t", &save); tok && k < 4; tok = strtok_r(NULL, " \t", &save))
        field[k++] = tok;
    if (k < 4) return err_set(err, "%s: %d fields, a Pathfinder metadata line has 4 or more (folder file index label)", where, k);
    char *end;
    const long label = strtol(field[3], &end, 10);
    if (*end || end == field[3] || (label != 0 && label != 1))
        return err_set(err, "%s: label '%s' is not 0 or 1", where, field[3]);
    if (xgrow(&l->path, &l->cap_path, l->n + 1, sizeof *l->path, err) ||
        xgrow(&l->label, &l->cap_label, l->n + 1, sizeof *l->label, err))
        return -1;
    if ((size_t)snprintf(l->path[l->n], CFG_PATH, "%s/%s/%s", root, field[0], field[1]) >= CFG_PATH)
        return err_set(err, "%s: the image's path is too long", where);
    l->label[l->n++] = (int32_t)label;
    return 0;
}

/* Every line of the .npy files of <root>/metadata, in file-name order. */
static int read_metadata(ImageList *l, const char *root, Error *err) {
    char dir[CFG_PATH + 16];
    snprintf(dir, sizeof dir, "%s/metadata", root);
    StrList names = {0};
    if (file_list(dir, is_metadata, &names, err))
        return err_set(err, "format pathfinder: cannot read '%s' (the folder of a difficulty, e.g. "
                            "curv_contour_length_14, holds metadata/ and imgs/)", dir);
    int rc = names.n ? 0 : err_set(err, "format pathfinder: '%s' holds no metadata files (.npy)", dir);
    for (size_t f = 0; !rc && f < names.n; f++) {
        char path[2 * CFG_PATH];
        snprintf(path, sizeof path, "%s/%s", dir, names.s[f]);
        FileMap m;
        if ((rc = file_map(&m, path, "Pathfinder metadata", err))) break;
        char *text = xmalloc(m.size + 1, err);
        rc = text ? 0 : -1;
        if (text) memcpy(text, m.data, m.size), text[m.size] = 0;
        file_unmap(&m);
        size_t number = 1;
        for (char *line = text, *next; !rc && line && *line; line = next, number++) {
            next = strchr(line, '\n');
            if (next) *next++ = 0;
            char where[3 * CFG_PATH];
            snprintf(where, sizeof where, "%s:%zu", path, number);
            if (line[strspn(line, " \t\r")]) rc = add_metadata_line(l, root, line, where, err);
        }
        free(text);
    }
    strlist_free(&names);
    return rc;
}

/* The images of one split: the metadata's order shuffled by data_seed, the
 * first 80% train, the next 10% valid, the rest test. */
static int read_pathfinder(Examples *ex, const Config *c, int split, Error *err) {
    ImageList l = {0};
    const size_t W = (size_t)c->image_size;
    if (c->image_size < 8 || c->image_size > 1024)
        return err_set(err, "key 'image_size' must be in 8..1024, got %d", c->image_size);
    int rc = read_metadata(&l, c->data, err);
    uint32_t *order = rc ? NULL : xmalloc(l.n * sizeof *order, err);
    uint8_t *pixels = rc ? NULL : xmalloc(W * W, err);
    float *values = rc ? NULL : xmalloc(W * W * sizeof *values, err);
    rc = rc || !order || !pixels || !values ? -1 : 0;
    if (!rc) {
        for (size_t i = 0; i < l.n; i++) order[i] = (uint32_t)i;
        Rng r = rng_make((uint64_t)c->data_seed, rng_stream(RNG_DATA, 0x5046, 0));
        for (size_t i = l.n; i > 1; i--) {
            const size_t j = rng_next(&r) % i;
            const uint32_t x = order[i - 1];
            order[i - 1] = order[j], order[j] = x;
        }
    }
    const size_t n_train = l.n * 8 / 10, n_valid = l.n / 10;
    const size_t from = split == SPLIT_TRAIN ? 0 : split == SPLIT_VALID ? n_train : n_train + n_valid;
    const size_t to = split == SPLIT_TRAIN ? n_train : split == SPLIT_VALID ? n_train + n_valid : l.n;
    for (size_t i = from; !rc && i < to; i++) {
        const size_t k = order[i];
        rc = png_read_gray(l.path[k], pixels, W, W, err);
        for (size_t p = 0; !rc && p < W * W; p++) values[p] = (float)pixels[p];
        if (!rc) rc = examples_add_signal(ex, values, W * W, l.label[k], err);
    }
    if (!rc && ex->n == 0) rc = err_set(err, "format pathfinder: '%s' lists %zu images, none for this split", c->data, l.n);
    free(order);
    free(pixels);
    free(values);
    image_list_free(&l);
    return rc;
}

/* ---- the dispatch ---- */

/* Formats of files (listops, aan) read the *_file keys; formats of folders the key `data`. */
static bool reads_files(const Config *c) { return format_is(c, "listops") || format_is(c, "aan"); }

static int read_split(Examples *ex, const Config *c, int split, bool need_labels, Error *err) {
    if (format_is(c, "listops")) {
        if (examples_read(ex, examples_split_file(c, split), c, false, need_labels, err)) return -1;
        lra_listops_tokens(ex);
        return 0;
    }
    if (format_is(c, "aan")) return read_aan(ex, c, examples_split_file(c, split), need_labels, err);
    examples_begin(ex, c->data);
    if (format_is(c, "imdb")) return read_imdb(ex, c->data, split == SPLIT_TRAIN ? "train" : "test", err);
    if (format_is(c, "cifar10")) return read_cifar(ex, c->data, split, err);
    if (format_is(c, "pathfinder")) return read_pathfinder(ex, c, split, err);
    return speech_commands_read(ex, c->data, split, c->label_names, SPEECH_SAMPLES, err);
}

int lra_read(Examples *ex, const Config *c, int split, bool need_labels, Error *err) {
    if (reads_files(c) && !examples_split_file(c, split)[0]) return 0;
    if (!reads_files(c) && !c->data[0])
        return err_set(err, "format %s reads a folder: give it with the key 'data'", c->format);
    const int rc = read_split(ex, c, split, need_labels, err);
    if (rc) examples_free(ex);
    return rc;
}
