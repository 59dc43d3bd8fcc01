/* safetensors.c — the safetensors format; see safetensors.h.
 *
 * Follows the format description of huggingface/safetensors (README,
 * "Format"): u64 little-endian header size N, N bytes of UTF-8 JSON, data.
 * The writer pads the header with spaces to a multiple of 8 bytes as the
 * reference writer does; the reader accepts any N up to ST_MAX_HEADER.
 * Reading validates in the order a damaged file is best explained: length
 * field, header JSON, each entry (dtype, shape, offsets, size, bounds), then
 * the exact coverage of the data section. Writing is atomic in the manner of
 * redis rdbSave (core/file.h).
 */
#include "safetensors.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "json.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c reads and writes tensor data as in memory: it needs a little-endian host"
#endif

/* ------------------------------------------------------------------------ */
/* Dtypes                                                                    */

static const struct {
    const char *name;
    size_t size;
} dtypes[ST_DTYPE_COUNT] = {
    [ST_BOOL] = {"BOOL", 1}, [ST_U8] = {"U8", 1},   [ST_I8] = {"I8", 1},     [ST_U16] = {"U16", 2},
    [ST_I16] = {"I16", 2},   [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2}, [ST_U32] = {"U32", 4},
    [ST_I32] = {"I32", 4},   [ST_F32] = {"F32", 4}, [ST_U64] = {"U64", 8},   [ST_I64] = {"I64", 8},
    [ST_F64] = {"F64", 8},
};

size_t st_dtype_size(StDtype t) { return (unsigned)t < ST_DTYPE_COUNT ? dtypes[t].size : 0; }

const char *st_dtype_name(StDtype t) { return (unsigned)t < ST_DTYPE_COUNT ? dtypes[t].name : "?"; }

int st_dtype_from_name(const char *name, StDtype *out) {
    for (int i = 0; i < ST_DTYPE_COUNT; i++) {
        if (strcmp(name, dtypes[i].name) == 0) {
            *out = (StDtype)i;
            return 0;
        }
    }
    return -1;
}

/* numel and byte size of a shape; false when the product overflows size_t. */
static bool shape_size(const size_t *shape, size_t ndim, StDtype dtype, size_t *numel, size_t *nbytes) {
    size_t n = 1;
    bool zero = false, overflow = false;
    for (size_t i = 0; i < ndim; i++) {
        if (shape[i] == 0)
            zero = true;
        else if (n > SIZE_MAX / shape[i])
            overflow = true;
        else
            n *= shape[i];
    }
    if (zero) n = 0, overflow = false;
    size_t es = st_dtype_size(dtype);
    if (overflow || (es && n > SIZE_MAX / es)) return false;
    *numel = n;
    *nbytes = n * es;
    return true;
}

/* Byte size of a tensor to write whose shape check_inputs has accepted. */
static size_t out_bytes(const StTensorOut *t) {
    size_t numel = 0, nbytes = 0;
    shape_size(t->shape, t->ndim, t->dtype, &numel, &nbytes);
    return nbytes;
}

/* "[2, 3]" for messages. */
static const char *shape_str(const size_t *shape, size_t ndim, char *buf, size_t cap) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (size_t i = 0; i < ndim && k < cap; i++) k += (size_t)snprintf(buf + k, cap - k, i ? ", %zu" : "%zu", shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                   */

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Finds a string that occurs twice among the n strings at stride `stride`
 * bytes from base; NULL when all differ (or out of memory: *oom set). */
static const char *find_duplicate(const void *base, size_t n, size_t stride, bool *oom) {
    *oom = false;
    if (n < 2) return NULL;
    const char **s = malloc(n * sizeof *s);
    if (!s) {
        *oom = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) s[i] = *(const char *const *)((const char *)base + i * stride);
    qsort(s, n, sizeof *s, cmp_cstr);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (strcmp(s[i - 1], s[i]) == 0) dup = s[i];
    free(s);
    return dup;
}

static int check_tensor_out(const char *path, const StTensorOut *t, size_t i, Error *err) {
    size_t numel, nbytes;
    if (!t->name) return err_set(err, "cannot write '%s': tensor %zu has no name", path, i);
    if (!json_utf8_valid(t->name, strlen(t->name)))
        return err_set(err, "cannot write '%s': tensor %zu: name is not valid UTF-8", path, i);
    if (strcmp(t->name, "__metadata__") == 0)
        return err_set(err, "cannot write '%s': \"__metadata__\" is reserved and cannot name a tensor", path);
    if ((unsigned)t->dtype >= ST_DTYPE_COUNT)
        return err_set(err, "cannot write '%s': tensor '%s': invalid dtype %d", path, t->name, (int)t->dtype);
    if (t->ndim && !t->shape) return err_set(err, "cannot write '%s': tensor '%s': shape is NULL", path, t->name);
    if (!shape_size(t->shape, t->ndim, t->dtype, &numel, &nbytes))
        return err_set(err, "cannot write '%s': tensor '%s': shape too large", path, t->name);
    if (nbytes && !t->data) return err_set(err, "cannot write '%s': tensor '%s': data is NULL", path, t->name);
    return 0;
}

static int check_inputs(const char *path, const StTensorOut *tensors, size_t n, const StMetaPair *meta, size_t n_meta,
                        Error *err) {
    bool oom;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (check_tensor_out(path, &tensors[i], i, err)) return -1;
        if (out_bytes(&tensors[i]) > SIZE_MAX - total) return err_set(err, "cannot write '%s': tensors too large", path);
        total += out_bytes(&tensors[i]);
    }
    const char *dup = find_duplicate(tensors, n, sizeof *tensors, &oom);
    if (oom) return err_set(err, "cannot write '%s': out of memory", path);
    if (dup) return err_set(err, "cannot write '%s': two tensors are called '%s'", path, dup);
    for (size_t i = 0; i < n_meta; i++) {
        const char *k = meta[i].key, *v = meta[i].value;
        if (!k || !v) return err_set(err, "cannot write '%s': metadata entry %zu has a NULL key or value", path, i);
        if (!json_utf8_valid(k, strlen(k)) || !json_utf8_valid(v, strlen(v)))
            return err_set(err, "cannot write '%s': metadata entry %zu is not valid UTF-8", path, i);
    }
    dup = find_duplicate(meta, n_meta, sizeof *meta, &oom);
    if (oom) return err_set(err, "cannot write '%s': out of memory", path);
    if (dup) return err_set(err, "cannot write '%s': metadata key '%s' appears twice", path, dup);
    return 0;
}

/* The header JSON, padded with spaces to a multiple of 8 bytes. */
static int build_header(StrBuf *b, const StTensorOut *tensors, size_t n, const StMetaPair *meta, size_t n_meta) {
    sb_append(b, "{", 1);
    if (n_meta) {
        sb_append(b, "\"__metadata__\":{", 16);
        for (size_t i = 0; i < n_meta; i++) {
            if (i) sb_append(b, ",", 1);
            sb_append_json_string(b, meta[i].key, strlen(meta[i].key));
            sb_append(b, ":", 1);
            sb_append_json_string(b, meta[i].value, strlen(meta[i].value));
        }
        sb_append(b, "}", 1);
    }
    size_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        const StTensorOut *t = &tensors[i];
        size_t nbytes = out_bytes(t);
        if (i || n_meta) sb_append(b, ",", 1);
        sb_append_json_string(b, t->name, strlen(t->name));
        sb_appendf(b, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_name(t->dtype));
        for (size_t d = 0; d < t->ndim; d++) sb_appendf(b, d ? ",%zu" : "%zu", t->shape[d]);
        sb_appendf(b, "],\"data_offsets\":[%zu,%zu]}", offset, offset + nbytes);
        offset += nbytes;
    }
    sb_append(b, "}", 1);
    while (!b->failed && b->len % 8) sb_append(b, " ", 1);
    return b->failed ? -1 : 0;
}

/* The file is the 8-byte length, the header, then every tensor's bytes. */
static int write_file(const char *path, const StrBuf *hdr, const StTensorOut *tensors, size_t n, Error *err) {
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hdr->len >> (8 * i));
    const void **parts = malloc((n + 2) * sizeof *parts);
    size_t *sizes = malloc((n + 2) * sizeof *sizes);
    int rc = parts && sizes ? 0 : err_set(err, "cannot write '%s': out of memory", path);
    if (!rc) {
        parts[0] = len8, sizes[0] = 8;
        parts[1] = hdr->data, sizes[1] = hdr->len;
        for (size_t i = 0; i < n; i++) parts[i + 2] = tensors[i].data, sizes[i + 2] = out_bytes(&tensors[i]);
        rc = file_write_atomic(path, parts, sizes, n + 2, err);
    }
    free(parts);
    free(sizes);
    return rc;
}

int st_write(const char *path, const StTensorOut *tensors, size_t n, const StMetaPair *meta, size_t n_meta,
             Error *err) {
    if (check_inputs(path, tensors, n, meta, n_meta, err)) return -1;
    StrBuf hdr;
    sb_init(&hdr);
    if (build_header(&hdr, tensors, n, meta, n_meta)) {
        sb_free(&hdr);
        return err_set(err, "cannot write '%s': out of memory building the header", path);
    }
    int rc = write_file(path, &hdr, tensors, n, err);
    sb_free(&hdr);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Reading: the length field and the header                                  */

/* Maps the whole file read-only; rejects anything shorter than the length field. */
static int map_file(StFile *f, const char *path, Error *err) {
    if (file_map(&f->file, path, NULL, err)) return -1;
    if (f->file.size < 8)
        return err_set(err, "'%s': truncated or not a safetensors file: %zu bytes, less than the 8-byte header length",
                       path, f->file.size);
    return 0;
}

/* True when the first non-blank of the n bytes at s is '{', or all are blank:
 * what the start of a header (possibly cut off) looks like. */
static bool looks_like_header(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '{') return true;
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return false;
    }
    return true;
}

static int read_header(StFile *f, const char *path, Error *err) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | f->file.data[i];
    size_t avail = f->file.size - 8;
    const unsigned char *h = f->file.data + 8;
    if (n > ST_MAX_HEADER)
        return err_set(
            err, "'%s': not a safetensors file: the first 8 bytes give a header length of %llu, over the %u-byte limit",
            path, (unsigned long long)n, ST_MAX_HEADER);
    if (n > avail) {
        if (looks_like_header(h, avail))
            return err_set(
                err, "'%s': truncated: the header needs %llu bytes but the file holds only %zu after the length field",
                path, (unsigned long long)n, avail);
        return err_set(err, "'%s': not a safetensors file: the header length %llu exceeds the file", path,
                       (unsigned long long)n);
    }
    f->header_size = (size_t)n;
    f->data = h + n;
    f->data_size = avail - (size_t)n;
    if (!looks_like_header(h, (size_t)n) || n == 0)
        return err_set(err, "'%s': not a safetensors file: the header is not a JSON object", path);
    if (json_parse((const char *)h, (size_t)n, &f->header, err)) {
        err_prefix(err, "'%s': invalid header", path);
        if (err) { /* the JSON offsets count from the header, not the file */
            size_t k = strlen(err->msg);
            snprintf(err->msg + k, sizeof err->msg - k, " of the header");
        }
        return -1;
    }
    if (f->header->type != JSON_OBJECT)
        return err_set(err, "'%s': not a safetensors file: the header is a JSON %s, not an object", path,
                       json_type_name(f->header->type));
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Reading: the entries                                                      */

static int read_metadata(StFile *f, const JsonValue *v, Error *err) {
    if (v->type == JSON_NULL) return 0;
    if (v->type != JSON_OBJECT)
        return err_set(err, "'%s': __metadata__ is a JSON %s, not an object", f->path, json_type_name(v->type));
    if (!(f->meta = calloc(v->n_members ? v->n_members : 1, sizeof *f->meta)))
        return err_set(err, "'%s': out of memory", f->path);
    for (size_t i = 0; i < v->n_members; i++) {
        const JsonMember *m = &v->members[i];
        if (m->value.type != JSON_STRING)
            return err_set(err, "'%s': metadata value of '%s' is a JSON %s, not a string", f->path, m->key,
                           json_type_name(m->value.type));
        if (strlen(m->key) != m->key_len || strlen(m->value.string) != m->value.string_len)
            return err_set(err, "'%s': metadata entry '%s' contains a NUL character", f->path, m->key);
        f->meta[i] = (StMetaPair){m->key, m->value.string};
    }
    f->n_meta = v->n_members;
    return 0;
}

/* Checks that entry v has exactly the three fields; returns them. */
static int entry_fields(const StFile *f, const char *name, const JsonValue *v, const JsonValue **dtype,
                        const JsonValue **shape, const JsonValue **offsets, Error *err) {
    if (v->type != JSON_OBJECT)
        return err_set(err, "'%s': tensor '%s': entry is a JSON %s, not an object", f->path, name,
                       json_type_name(v->type));
    for (size_t i = 0; i < v->n_members; i++) {
        const char *k = v->members[i].key;
        if (strcmp(k, "dtype") && strcmp(k, "shape") && strcmp(k, "data_offsets"))
            return err_set(err, "'%s': tensor '%s': unexpected field \"%s\" (expected dtype, shape, data_offsets)",
                           f->path, name, k);
    }
    static const char *const want[3] = {"dtype", "shape", "data_offsets"};
    const JsonValue **got[3] = {dtype, shape, offsets};
    for (int i = 0; i < 3; i++)
        if (!(*got[i] = json_get(v, want[i])))
            return err_set(err, "'%s': tensor '%s': missing \"%s\"", f->path, name, want[i]);
    return 0;
}

static int entry_dtype(const StFile *f, const char *name, const JsonValue *v, StDtype *out, Error *err) {
    if (v->type != JSON_STRING)
        return err_set(err, "'%s': tensor '%s': dtype is a JSON %s, not a string", f->path, name,
                       json_type_name(v->type));
    if (st_dtype_from_name(v->string, out))
        return err_set(err,
                       "'%s': tensor '%s': unknown dtype \"%.40s\" (supported: BOOL U8 I8 U16 I16 F16 BF16 U32 I32 F32 "
                       "U64 I64 F64)",
                       f->path, name, v->string);
    return 0;
}

/* A non-negative JSON integer that fits size_t. */
static bool as_size(const JsonValue *v, size_t *out) {
    long long x;
    if (!json_int(v, &x) || x < 0 || (unsigned long long)x > SIZE_MAX) return false;
    *out = (size_t)x;
    return true;
}

static int entry_shape(const StFile *f, const char *name, const JsonValue *v, size_t *dims, Error *err) {
    if (v->type != JSON_ARRAY)
        return err_set(err, "'%s': tensor '%s': shape is a JSON %s, not an array", f->path, name,
                       json_type_name(v->type));
    for (size_t i = 0; i < v->n_items; i++)
        if (!as_size(&v->items[i], &dims[i]))
            return err_set(err, "'%s': tensor '%s': shape must be an array of non-negative integers (item %zu is not)",
                           f->path, name, i);
    return 0;
}

static int entry_offsets(const StFile *f, const char *name, const JsonValue *v, size_t *begin, size_t *end,
                         Error *err) {
    if (v->type != JSON_ARRAY || v->n_items != 2 || !as_size(&v->items[0], begin) || !as_size(&v->items[1], end) ||
        *begin > *end)
        return err_set(
            err, "'%s': tensor '%s': data_offsets must be two non-negative integers [begin, end] with begin <= end",
            f->path, name);
    return 0;
}

/* Validates one tensor entry into t; dims receives its shape. */
static int read_entry(StFile *f, const JsonMember *m, StTensorInfo *t, size_t *dims, Error *err) {
    const char *name = m->key;
    const JsonValue *dtype, *shape, *offsets;
    char sbuf[160];
    if (strlen(name) != m->key_len)
        return err_set(err, "'%s': the tensor name at byte %zu of the header contains a NUL character", f->path,
                       m->key_offset);
    if (entry_fields(f, name, &m->value, &dtype, &shape, &offsets, err) ||
        entry_dtype(f, name, dtype, &t->dtype, err) || entry_shape(f, name, shape, dims, err) ||
        entry_offsets(f, name, offsets, &t->begin, &t->end, err))
        return -1;
    t->name = name;
    t->ndim = shape->n_items;
    t->shape = dims;
    if (!shape_size(dims, t->ndim, t->dtype, &t->numel, &t->nbytes))
        return err_set(err, "'%s': tensor '%s': shape %s is too large", f->path, name,
                       shape_str(dims, t->ndim, sbuf, sizeof sbuf));
    if (t->end - t->begin != t->nbytes)
        return err_set(err,
                       "'%s': tensor '%s': data_offsets [%zu, %zu] span %zu bytes but dtype %s with shape %s needs %zu",
                       f->path, name, t->begin, t->end, t->end - t->begin, st_dtype_name(t->dtype),
                       shape_str(dims, t->ndim, sbuf, sizeof sbuf), t->nbytes);
    if (t->end > f->data_size)
        return err_set(err, "'%s': truncated: tensor '%s' ends at byte %zu of the data but the file holds only %zu",
                       f->path, name, t->end, f->data_size);
    t->data = f->data + t->begin;
    return 0;
}

static bool is_meta_key(const JsonMember *m) { return m->key_len == 12 && memcmp(m->key, "__metadata__", 12) == 0; }

static int read_entries(StFile *f, Error *err) {
    const JsonValue *h = f->header;
    size_t n_dims = 0, n = 0;
    for (size_t i = 0; i < h->n_members; i++) {
        if (is_meta_key(&h->members[i])) continue;
        n++;
        n_dims += json_len(json_get(&h->members[i].value, "shape"));
    }
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    f->dims = calloc(n_dims ? n_dims : 1, sizeof *f->dims);
    if (!f->tensors || !f->dims) return err_set(err, "'%s': out of memory", f->path);
    for (size_t i = 0, d = 0; i < h->n_members; i++) {
        const JsonMember *m = &h->members[i];
        if (is_meta_key(m)) {
            if (read_metadata(f, &m->value, err)) return -1;
            continue;
        }
        if (read_entry(f, m, &f->tensors[f->n_tensors], f->dims + d, err)) return -1;
        d += f->tensors[f->n_tensors++].ndim;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Reading: coverage of the data section and the name index                  */

static int cmp_by_offset(const void *a, const void *b) {
    const StTensorInfo *x = *(const StTensorInfo *const *)a, *y = *(const StTensorInfo *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int cmp_by_name(const void *a, const void *b) {
    return strcmp((*(const StTensorInfo *const *)a)->name, (*(const StTensorInfo *const *)b)->name);
}

/* The tensors, sorted by offset, must tile [0, data_size) exactly, as the
 * format requires: no overlap, no hole, no trailing bytes. Empty tensors sort
 * before a tensor starting at the same offset and fit anywhere between. */
static int check_coverage(const StFile *f, const StTensorInfo *const *order, Error *err) {
    size_t covered = 0;
    const StTensorInfo *prev = NULL;
    for (size_t i = 0; i < f->n_tensors; i++) {
        const StTensorInfo *t = order[i];
        if (t->begin < covered)
            return err_set(err, "'%s': tensors '%s' and '%s' overlap (data bytes [%zu, %zu) and [%zu, %zu))", f->path,
                           prev->name, t->name, prev->begin, prev->end, t->begin, t->end);
        if (t->begin > covered)
            return err_set(err, "'%s': data bytes [%zu, %zu) belong to no tensor (a hole before tensor '%s')", f->path,
                           covered, t->begin, t->name);
        covered = t->end;
        prev = t;
    }
    if (covered != f->data_size)
        return err_set(err, "'%s': data bytes [%zu, %zu) after the last tensor belong to no tensor", f->path, covered,
                       f->data_size);
    return 0;
}

/* Checks coverage, then leaves f->by_name sorted by name. */
static int index_tensors(StFile *f, Error *err) {
    size_t n = f->n_tensors;
    if (!(f->by_name = malloc((n ? n : 1) * sizeof *f->by_name))) return err_set(err, "'%s': out of memory", f->path);
    for (size_t i = 0; i < n; i++) f->by_name[i] = &f->tensors[i];
    qsort(f->by_name, n, sizeof *f->by_name, cmp_by_offset);
    if (check_coverage(f, f->by_name, err)) return -1;
    qsort(f->by_name, n, sizeof *f->by_name, cmp_by_name);
    return 0;
}

int st_open(StFile *f, const char *path, Error *err) {
    memset(f, 0, sizeof *f);
    size_t k = strlen(path);
    if (!(f->path = malloc(k + 1))) return err_set(err, "'%s': out of memory", path);
    memcpy(f->path, path, k + 1);
    if (map_file(f, path, err) || read_header(f, path, err) || read_entries(f, err) || index_tensors(f, err)) {
        st_close(f);
        return -1;
    }
    return 0;
}

void st_close(StFile *f) {
    file_unmap(&f->file);
    json_free(f->header);
    free(f->path);
    free(f->tensors);
    free(f->meta);
    free(f->dims);
    free(f->by_name);
    memset(f, 0, sizeof *f);
}

const StTensorInfo *st_find(const StFile *f, const char *name) {
    size_t lo = 0, hi = f->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const StTensorInfo *t = f->by_name[mid];
        int c = strcmp(t->name, name);
        if (c == 0) return t;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const StTensorInfo *st_tensor(const StFile *f, size_t i) { return i < f->n_tensors ? &f->tensors[i] : NULL; }

const char *st_meta(const StFile *f, const char *key) {
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0) return f->meta[i].value;
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Conversion                                                                */

/* Element i of F32/F64/I32/I64 data as a double (exact for all but huge I64). */
static double load_double(const unsigned char *p, StDtype t) {
    float f32;
    double f64;
    int32_t i32;
    int64_t i64;
    switch (t) {
    case ST_F32: memcpy(&f32, p, 4); return f32;
    case ST_F64: memcpy(&f64, p, 8); return f64;
    case ST_I32: memcpy(&i32, p, 4); return i32;
    default: memcpy(&i64, p, 8); return (double)i64;
    }
}

int st_read_as(const StFile *f, const StTensorInfo *t, StDtype as, void *out, size_t n, Error *err) {
    if (n != t->numel)
        return err_set(err, "'%s': tensor '%s' has %zu elements, not the %zu expected", f->path, t->name, t->numel, n);
    if (as == t->dtype) {
        if (t->nbytes) memcpy(out, t->data, t->nbytes);
        return 0;
    }
    bool from_number = t->dtype == ST_F32 || t->dtype == ST_F64 || t->dtype == ST_I32 || t->dtype == ST_I64;
    bool ok = (from_number && (as == ST_F32 || as == ST_F64)) || (t->dtype == ST_I32 && as == ST_I64);
    if (!ok)
        return err_set(err, "'%s': tensor '%s' is %s and cannot be read as %s", f->path, t->name,
                       st_dtype_name(t->dtype), st_dtype_name(as));
    const unsigned char *src = t->data;
    size_t es = st_dtype_size(t->dtype);
    for (size_t i = 0; i < n; i++) {
        if (as == ST_F32)
            ((float *)out)[i] = (float)load_double(src + i * es, t->dtype);
        else if (as == ST_F64)
            ((double *)out)[i] = load_double(src + i * es, t->dtype);
        else {
            int32_t v;
            memcpy(&v, src + i * es, 4);
            ((int64_t *)out)[i] = v;
        }
    }
    return 0;
}
