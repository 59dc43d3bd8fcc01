/* safetensors.h — reading and writing the safetensors format.
 *
 * A safetensors file (https://github.com/huggingface/safetensors) is an 8-byte
 * little-endian length N, N bytes of JSON header, then the data section. The
 * header maps each tensor name to {"dtype", "shape", "data_offsets": [begin,
 * end]} (offsets into the data section), plus an optional "__metadata__"
 * object of string values. Tensors are row-major, little-endian, and together
 * cover the data section exactly. Writing one file is one call; reading maps
 * the file and checks every size and offset before handing out a pointer:
 *
 *     size_t shape[2] = {V, C};
 *     StTensorOut t[] = {{"embed.weight", ST_F32, 2, shape, wte}};
 *     StMetaPair meta[] = {{"format", "seqlab-checkpoint"}};
 *     if (st_write("run/ckpt-100.safetensors", t, 1, meta, 1, &err)) return -1;
 *
 *     StFile f;
 *     if (st_open(&f, "run/ckpt-100.safetensors", &err)) return -1;
 *     const StTensorInfo *w = st_find(&f, "embed.weight");   // NULL when absent
 *     if (w && w->dtype == ST_F32 && w->numel == V * C) st_read_as(&f, w, ST_F32, wte, V * C, &err);
 *     const char *format = st_meta(&f, "format");            // NULL when absent
 *     st_close(&f);
 *
 * The caller checks dtypes and shapes against what it expects; this module
 * only guarantees that every tensor it reports lies inside the file.
 */
#ifndef SEQLAB_SAFETENSORS_H
#define SEQLAB_SAFETENSORS_H

#include <stddef.h>

#include "error.h"
#include "file.h"

/* Headers longer than this are rejected (the limit of the reference reader). */
#define ST_MAX_HEADER 100000000u

typedef enum {
    ST_BOOL, ST_U8, ST_I8, ST_U16, ST_I16, ST_F16, ST_BF16, ST_U32, ST_I32, ST_F32, ST_U64, ST_I64, ST_F64,
    ST_DTYPE_COUNT
} StDtype;

/* Bytes per element: 1 for BOOL, U8, I8; 2 for U16, I16, F16, BF16; 4 for
 * U32, I32, F32; 8 for U64, I64, F64; 0 for a value outside the enum. */
size_t st_dtype_size(StDtype t);
/* The header's name of a dtype ("F32", "BF16", ...); "?" outside the enum. */
const char *st_dtype_name(StDtype t);
/* Looks up a header name. 0 and *out set on success; -1 for an unknown name. */
int st_dtype_from_name(const char *name, StDtype *out);

/* One metadata entry: both strings are borrowed, NUL-terminated UTF-8. */
typedef struct {
    const char *key;
    const char *value;
} StMetaPair;

/* One tensor to write. Everything is borrowed for the duration of st_write. */
typedef struct {
    const char *name; /* UTF-8, unique within the file, not "__metadata__" */
    StDtype dtype;
    size_t ndim;         /* 0 for a scalar (shape []) */
    const size_t *shape; /* ndim sizes; may be NULL when ndim == 0 */
    const void *data;    /* numel * st_dtype_size(dtype) bytes, row-major, little-endian;
                            may be NULL when that is 0 */
} StTensorOut;

/* One tensor of an open file. All pointers point into the StFile and live
 * until st_close. */
typedef struct {
    const char *name;
    StDtype dtype;
    size_t ndim;
    const size_t *shape; /* ndim sizes */
    size_t numel;        /* product of the shape; 1 for a scalar */
    size_t nbytes;       /* numel * st_dtype_size(dtype) */
    size_t begin, end;   /* data_offsets: the tensor's bytes within the data section */
    const void *data;    /* first byte; NOT necessarily aligned for the dtype */
} StTensorInfo;

/* An open file. Read the fields; do not modify them. */
typedef struct {
    char *path;         /* owned copy, used in messages */
    FileMap file;       /* owned: read-only mapping of the whole file */
    size_t header_size;        /* N: bytes of JSON header (with padding) */
    const unsigned char *data; /* view: the data section, file bytes [8 + N, file.size) */
    size_t data_size;
    StTensorInfo *tensors; /* owned: n_tensors entries in header order */
    size_t n_tensors;
    StMetaPair *meta; /* owned array of n_meta pairs; strings point into header */
    size_t n_meta;
    struct JsonValue *header;     /* owned: the parsed header; names and metadata point into it */
    size_t *dims;                 /* owned: the shapes of all tensors, one after another */
    const StTensorInfo **by_name; /* owned array (of views into tensors) sorted by name, for st_find */
} StFile;

/* Writes the tensors (in the order given, contiguous in the data section) and
 * the metadata (omitted when n_meta is 0) to path. The header is compact JSON,
 * "__metadata__" first, padded with spaces to a multiple of 8 bytes.
 * Atomic: the bytes go to "<path>.tmp.<pid>" in the same directory, which is
 * flushed, fsynced, closed and renamed over path; then the directory is
 * fsynced. Returns 0 on success. Returns -1 with a message naming path when
 * the input is invalid (duplicate or reserved name, invalid UTF-8, unknown
 * dtype, NULL data) or any I/O step fails; then an existing file at path is
 * untouched and the temporary file is removed. The one exception: if only the
 * final fsync of the directory fails, the new file is already in place. */
int st_write(const char *path, const StTensorOut *tensors, size_t n, const StMetaPair *meta, size_t n_meta, Error *err);

/* Opens and validates the file at path: the header length (at most
 * ST_MAX_HEADER and inside the file), the header (a JSON object whose
 * tensor entries have exactly dtype, shape and data_offsets, with a known
 * dtype, non-negative integer dims, begin <= end and end - begin = numel *
 * dtype size), the data section (covered exactly by the tensors, without
 * overlaps or holes) and the metadata (string values). On success fills *f
 * and returns 0. On failure returns -1 with a message naming the path — a
 * cut-off file is reported as "truncated", a file of another kind as "not a
 * safetensors file" — and leaves *f closed (st_close is then a no-op). */
int st_open(StFile *f, const char *path, Error *err);

/* Unmaps and frees everything; *f is left zeroed. Safe on a zeroed or
 * already-closed StFile. */
void st_close(StFile *f);

/* The tensor called name; NULL when there is none. O(log n). */
const StTensorInfo *st_find(const StFile *f, const char *name);

/* Tensor i in header order (0 <= i < f->n_tensors); NULL past the end. */
const StTensorInfo *st_tensor(const StFile *f, size_t i);

/* The metadata value of key; NULL when absent (or the file has no metadata). */
const char *st_meta(const StFile *f, const char *key);

/* Copies tensor t of f into out, which holds n elements of dtype `as`.
 * Same dtype: any dtype, copied as is. Otherwise converts F32, F64, I32 or
 * I64 data to F32 or F64 (rounding where needed) or I32 data to I64.
 * Returns -1 naming the file and tensor when n != t->numel or the conversion
 * is not one of these; out is then untouched. */
int st_read_as(const StFile *f, const StTensorInfo *t, StDtype as, void *out, size_t n, Error *err);

#endif
