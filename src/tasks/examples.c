/* examples.c — see examples.h. */
#include "examples.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/file.h"
#include "../data/corpus.h"

void examples_free(Examples *ex) {
    free(ex->chars);
    free(ex->text_start);
    free(ex->labels);
    free(ex->values);
    free(ex->ids);
    free(ex->id_start);
    free(ex->reals);
    memset(ex, 0, sizeof *ex);
}

const char *examples_split_file(const Config *c, int split) {
    return split == SPLIT_TRAIN ? c->train_file : split == SPLIT_VALID ? c->valid_file : c->test_file;
}

enum { MAX_COLUMNS = 64 };

/* Splits one line (without its newline) at tabs; returns the field count. */
static int split_fields(char *line, char **fields) {
    int n = 0;
    fields[n++] = line;
    for (char *p = line; *p && n < MAX_COLUMNS; p++)
        if (*p == '\t') {
            *p = 0;
            fields[n++] = p + 1;
        }
    return n;
}

/* The index of column `name` (a header name, or a number), -1 if absent. */
static int column_of(const char *name, char **header, int n_header) {
    char *end;
    long k = strtol(name, &end, 10);
    if (*name && !*end) return k >= 0 && k < MAX_COLUMNS ? (int)k : -1;
    for (int i = 0; header && i < n_header; i++)
        if (!strcmp(header[i], name)) return i;
    return -1;
}

typedef struct {
    int text[2], label;
    const char *label_names; /* borrowed: key label_names, "" for class ids */
} Columns;

static int find_columns(const Config *c, char **header, int n_header, const char *path, Columns *col, Error *err) {
    col->text[0] = column_of(c->text_column, header, n_header);
    col->text[1] = c->text2_column[0] ? column_of(c->text2_column, header, n_header) : -2;
    col->label = column_of(c->label_column, header, n_header);
    col->label_names = c->label_names;
    if (col->text[0] < 0)
        return err_set(err, "%s: no column '%s' (key text_column)%s", path, c->text_column,
                       header ? "" : "; without a header give a 0-based index");
    if (col->text[1] == -1) return err_set(err, "%s: no column '%s' (key text2_column)", path, c->text2_column);
    return 0;
}

/* The class of a label that is a name: its place in the comma list `names`. */
static int parse_label_name(Examples *ex, size_t e, const char *text, const char *names, const char *where,
                            Error *err) {
    const size_t len = strlen(text);
    int32_t k = 0;
    for (const char *p = names; *p; k++) {
        const size_t n = strcspn(p, ",");
        if (n == len && !strncmp(p, text, n)) return ex->labels[e] = k, 0;
        p += n + (p[n] == ',');
    }
    return err_set(err, "%s: label '%s' is none of the classes of key label_names (%s)", where, text, names);
}

static int parse_label(Examples *ex, size_t e, const char *text, bool regression, const char *names,
                       const char *where, Error *err) {
    char *end;
    errno = 0;
    if (regression) {
        double v = strtod(text, &end);
        if (end == text || *end || errno || !isfinite(v)) return err_set(err, "%s: label '%s' is not a number", where, text);
        ex->values[e] = (float)v;
        return 0;
    }
    if (names[0]) return parse_label_name(ex, e, text, names, where, err);
    long v = strtol(text, &end, 10);
    if (end == text || *end || errno || v < 0 || v > 1000000)
        return err_set(err, "%s: label '%s' is not a class id (0, 1, ...)", where, text);
    ex->labels[e] = (int32_t)v;
    return 0;
}

/* Appends the texts and the label of one line (fields, n_fields) as example ex->n. */
static int add_example(Examples *ex, char **fields, int n_fields, const Columns *col, bool regression,
                       bool need_labels, const char *where, Error *err) {
    const size_t e = ex->n;
    for (int k = 0; k < ex->texts; k++) {
        int c = col->text[k];
        if (c >= n_fields) return err_set(err, "%s: %d columns, the text is column %d", where, n_fields, c);
        size_t len = strlen(fields[c]), at = ex->text_start[e * (size_t)ex->texts + (size_t)k];
        while (len && isspace((unsigned char)fields[c][len - 1])) len--; /* GLUE's trailing blanks */
        if (xgrow(&ex->chars, &ex->cap.chars, at + len + 1, 1, err) ||
            xgrow(&ex->text_start, &ex->cap.starts, e * (size_t)ex->texts + (size_t)k + 2, sizeof(size_t), err))
            return -1;
        memcpy(ex->chars + at, fields[c], len);
        ex->text_start[e * (size_t)ex->texts + (size_t)k + 1] = at + len;
    }
    bool has_label = col->label >= 0 && col->label < n_fields;
    if (need_labels && !has_label)
        return err_set(err, "%s: no label (key label_column '%s')", where, col->label >= 0 ? fields[0] : "absent");
    if (e == 0) ex->labelled = has_label;
    if (has_label != ex->labelled) return err_set(err, "%s: some lines have a label and some do not", where);
    if (has_label) {
        if (xgrow(regression ? (void **)&ex->values : (void **)&ex->labels, &ex->cap.labels, e + 1,
                 regression ? sizeof(float) : sizeof(int32_t), err) ||
            parse_label(ex, e, fields[col->label], regression, col->label_names, where, err))
            return -1;
    }
    ex->n++;
    return 0;
}

int examples_read(Examples *ex, const char *path, const Config *c, bool regression, bool need_labels, Error *err) {
    memset(ex, 0, sizeof *ex);
    snprintf(ex->path, sizeof ex->path, "%s", path);
    FileMap map;
    if (file_map(&map, path, "examples file", err)) return -1;
    char *text = malloc(map.size + 1);
    if (!text) {
        file_unmap(&map);
        return err_set(err, "out of memory reading '%s'", path);
    }
    if (map.size) memcpy(text, map.data, map.size);
    text[map.size] = 0;
    file_unmap(&map);
    ex->texts = c->text2_column[0] ? 2 : 1;
    int rc = xgrow(&ex->text_start, &ex->cap.starts, 2, sizeof(size_t), err);
    if (!rc) ex->text_start[0] = 0;
    char *line = text + (strncmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0); /* a UTF-8 byte-order mark */
    char *header[MAX_COLUMNS], *fields[MAX_COLUMNS];
    int n_header = 0;
    Columns col = {{-1, -1}, -1, ""};
    for (size_t number = 1; !rc && *line; number++) {
        char *end = strchr(line, '\n'), *next = end ? end + 1 : line + strlen(line);
        if (end) *end = 0;
        if (end > line && end[-1] == '\r') end[-1] = 0;
        char where[CFG_PATH + 32];
        snprintf(where, sizeof where, "%s:%zu", path, number);
        if (number == 1 && c->header) n_header = split_fields(line, header);
        if (number == 1) rc = find_columns(c, c->header ? header : NULL, n_header, path, &col, err);
        if (!rc && !(number == 1 && c->header) && *line) {
            int n = split_fields(line, fields);
            rc = add_example(ex, fields, n, &col, regression, need_labels, where, err);
        }
        line = next;
    }
    free(text);
    if (!rc && ex->n == 0) rc = err_set(err, "'%s' holds no examples", path);
    if (rc) examples_free(ex);
    return rc;
}

char *examples_text(const Examples *ex, size_t *n, Error *err) {
    const size_t texts = ex->n * (size_t)ex->texts, bytes = ex->text_start[texts] + texts + 1;
    char *out = xmalloc(bytes, err);
    if (!out) return NULL;
    size_t at = 0;
    for (size_t i = 0; i < texts; i++) {
        size_t len = ex->text_start[i + 1] - ex->text_start[i];
        memcpy(out + at, ex->chars + ex->text_start[i], len);
        at += len;
        out[at++] = '\n';
    }
    *n = at;
    return out;
}

int examples_encode(Examples *ex, const Tokenizer *tok, Error *err) {
    const size_t texts = ex->n * (size_t)ex->texts;
    size_t cap = 0, used = 0;
    if (!(ex->id_start = xcalloc(texts + 1, sizeof *ex->id_start, err))) return -1;
    for (size_t i = 0; i < texts; i++) {
        int32_t *ids;
        size_t n, unknown = 0;
        char name[CFG_PATH + 32];
        snprintf(name, sizeof name, "%s (example %zu)", ex->path, i / (size_t)ex->texts + 1);
        const size_t len = ex->text_start[i + 1] - ex->text_start[i];
        if (tokenizer_encode(tok, (const unsigned char *)ex->chars + ex->text_start[i], len, true, &ids, &n, &unknown,
                             name, err))
            return -1;
        int rc = xgrow(&ex->ids, &cap, used + n + 1, sizeof(int32_t), err);
        if (!rc) memcpy(ex->ids + used, ids, n * sizeof(int32_t));
        free(ids);
        if (rc) return -1;
        used += n;
        ex->id_start[i + 1] = used;
        ex->unknown += unknown;
    }
    return 0;
}

void examples_begin(Examples *ex, const char *path) {
    memset(ex, 0, sizeof *ex);
    snprintf(ex->path, sizeof ex->path, "%s", path);
    ex->texts = 1;
    ex->labelled = true;
}

static int add_label(Examples *ex, int32_t label, Error *err) {
    if (xgrow(&ex->labels, &ex->cap.labels, ex->n + 1, sizeof *ex->labels, err)) return -1;
    ex->labels[ex->n++] = label;
    return 0;
}

int examples_add_text(Examples *ex, const char *text, size_t len, int32_t label, Error *err) {
    const size_t at = ex->n ? ex->text_start[ex->n] : 0;
    if (xgrow(&ex->chars, &ex->cap.chars, at + len + 1, 1, err) ||
        xgrow(&ex->text_start, &ex->cap.starts, ex->n + 2, sizeof *ex->text_start, err))
        return -1;
    memcpy(ex->chars + at, text, len);
    ex->text_start[0] = 0;
    ex->text_start[ex->n + 1] = at + len;
    return add_label(ex, label, err);
}

int examples_add_signal(Examples *ex, const float *x, size_t n, int32_t label, Error *err) {
    const size_t at = ex->n ? ex->id_start[ex->n] : 0;
    if (xgrow(&ex->reals, &ex->cap.reals, at + n, sizeof *ex->reals, err) ||
        xgrow(&ex->id_start, &ex->cap.starts, ex->n + 2, sizeof *ex->id_start, err))
        return -1;
    memcpy(ex->reals + at, x, n * sizeof *x);
    ex->id_start[0] = 0;
    ex->id_start[ex->n + 1] = at + n;
    return add_label(ex, label, err);
}
