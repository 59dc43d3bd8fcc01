/* test_safetensors.c — src/core/safetensors.c: write -> read round trips of
 * every dtype and of odd shapes (scalar, empty), metadata, the exact bytes
 * the format prescribes, one hand-made broken file per validation rule, and
 * the atomicity of st_write (a failed write leaves the old file and no
 * temporary file behind). */
#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/core/safetensors.h"
#include "test.h"

/* ---- helpers ---- */

static void path_in(char *out, size_t n, const char *dir, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static int write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(p, 1, n, f) : 0;
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

/* An owned copy of the whole file; NULL if it cannot be read. */
static unsigned char *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = malloc(1 << 22);
    *n = fread(buf, 1, 1 << 22, f);
    fclose(f);
    return buf;
}

/* A file made of the 8-byte length `len`, then `body` (n bytes). */
static int write_with_len(const char *path, uint64_t len, const void *body, size_t n) {
    unsigned char *buf = malloc(8 + n);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(len >> (8 * i));
    if (n) memcpy(buf + 8, body, n);
    int rc = write_bytes(path, buf, 8 + n);
    free(buf);
    return rc;
}

/* A file with header text `header` (its length as N) and `data_len` bytes of data. */
static int write_st(const char *path, const char *header, size_t data_len) {
    size_t h = strlen(header);
    unsigned char *body = calloc(1, h + data_len + 1);
    memcpy(body, header, h);
    for (size_t i = 0; i < data_len; i++) body[h + i] = (unsigned char)i;
    int rc = write_with_len(path, h, body, h + data_len);
    free(body);
    return rc;
}

/* st_open must fail, name the path, contain `want`, and leave f zeroed. */
static int open_fails(const char *path, const char *want) {
    StFile f;
    Error err = {{0}};
    memset(&f, 0xAB, sizeof f);
    if (st_open(&f, path, &err) == 0) {
        printf("    opened %s, want an error containing: %s\n", path, want);
        st_close(&f);
        return 0;
    }
    StFile zero;
    memset(&zero, 0, sizeof zero);
    int ok = strstr(err.msg, want) && strstr(err.msg, path) && memcmp(&f, &zero, sizeof f) == 0;
    if (!ok) printf("    got \"%s\"\n    want \"%s\" and the path\n", err.msg, want);
    st_close(&f); /* a no-op on the closed file */
    return ok;
}

/* Builds the header {"x": {<entry>}} (and data) and expects `want`. */
static int entry_fails(const char *dir, const char *header, size_t data_len, const char *want) {
    char path[600];
    path_in(path, sizeof path, dir, "bad.safetensors");
    if (write_st(path, header, data_len)) return 0;
    return open_fails(path, want);
}

/* True when dir holds no "*.tmp.*" file. */
static bool no_temp_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return false;
    bool clean = true;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.")) clean = false;
    closedir(d);
    return clean;
}

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)((i * 131u + seed * 7u + (i >> 8)) & 0xFF);
}

/* ---- dtypes ---- */

TEST(st_dtypes) {
    const char *names[] = {"BOOL", "U8", "I8", "U16", "I16", "F16", "BF16", "U32", "I32", "F32", "U64", "I64", "F64"};
    const size_t sizes[] = {1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8};
    REQUIRE(ST_DTYPE_COUNT == 13, "13 dtypes");
    for (int i = 0; i < ST_DTYPE_COUNT; i++) {
        StDtype t;
        CHECK(strcmp(st_dtype_name((StDtype)i), names[i]) == 0, "name of %d", i);
        CHECK(st_dtype_size((StDtype)i) == sizes[i], "size of %s", names[i]);
        CHECK(st_dtype_from_name(names[i], &t) == 0 && t == (StDtype)i, "lookup %s", names[i]);
    }
    StDtype t = ST_F32;
    CHECK(st_dtype_from_name("f32", &t) == -1 && st_dtype_from_name("F8_E4M3", &t) == -1 && t == ST_F32,
          "unknown names");
    CHECK(st_dtype_size(ST_DTYPE_COUNT) == 0 && strcmp(st_dtype_name(ST_DTYPE_COUNT), "?") == 0, "outside the enum");
}

/* ---- round trips ---- */

TEST(st_round_trip_every_dtype_and_shape) {
    static const size_t s_scalar[1], s_empty[] = {0}, s_2d[] = {3, 4}, s_3d[] = {2, 3, 4}, s_zero_mid[] = {2, 0, 3},
                                     s_vec[] = {5}, s_4d[] = {1, 2, 1, 3}, s_one[] = {1};
    struct {
        const char *name;
        StDtype dtype;
        size_t ndim;
        const size_t *shape;
        size_t numel;
    } spec[] = {
        {"f32.matrix", ST_F32, 2, s_2d, 12}, {"f64.scalar", ST_F64, 0, s_scalar, 1}, {"i64.vec", ST_I64, 1, s_vec, 5},
        {"u8.empty", ST_U8, 1, s_empty, 0},  {"i32.hole", ST_I32, 3, s_zero_mid, 0}, {"bool", ST_BOOL, 1, s_vec, 5},
        {"i8", ST_I8, 3, s_3d, 24},          {"u16", ST_U16, 1, s_vec, 5},           {"i16", ST_I16, 2, s_2d, 12},
        {"f16", ST_F16, 4, s_4d, 6},         {"bf16", ST_BF16, 1, s_one, 1},         {"u32", ST_U32, 0, NULL, 1},
        {"u64", ST_U64, 2, s_2d, 12},        {"é 名前 \"q\"", ST_F32, 1, s_vec, 5},
    };
    enum { N = sizeof spec / sizeof spec[0] };
    StTensorOut out[N];
    unsigned char *data[N];
    for (size_t i = 0; i < N; i++) {
        size_t nb = spec[i].numel * st_dtype_size(spec[i].dtype);
        data[i] = malloc(nb ? nb : 1);
        fill(data[i], nb, (unsigned)i);
        out[i] = (StTensorOut){spec[i].name, spec[i].dtype, spec[i].ndim, spec[i].shape, nb ? data[i] : NULL};
    }
    char path[600];
    path_in(path, sizeof path, test_tmpdir(), "all.safetensors");
    Error err = {{0}};
    REQUIRE(st_write(path, out, N, NULL, 0, &err) == 0, "%s", err.msg);
    StFile f;
    REQUIRE(st_open(&f, path, &err) == 0, "%s", err.msg);
    CHECK(f.n_tensors == N && f.n_meta == 0 && f.header_size % 8 == 0, "counts");
    size_t offset = 0;
    for (size_t i = 0; i < N; i++) {
        const StTensorInfo *t = st_find(&f, spec[i].name);
        size_t nb = spec[i].numel * st_dtype_size(spec[i].dtype);
        REQUIRE(t, "find %s", spec[i].name);
        CHECK(t == st_tensor(&f, i), "%s: header order is the write order", spec[i].name);
        CHECK(strcmp(t->name, spec[i].name) == 0 && t->dtype == spec[i].dtype, "%s: name, dtype", spec[i].name);
        CHECK(t->ndim == spec[i].ndim, "%s: ndim %zu", spec[i].name, t->ndim);
        for (size_t d = 0; d < t->ndim && d < spec[i].ndim; d++)
            CHECK(t->shape[d] == spec[i].shape[d], "%s: dim %zu", spec[i].name, d);
        CHECK(t->numel == spec[i].numel && t->nbytes == nb, "%s: numel %zu nbytes %zu", spec[i].name, t->numel,
              t->nbytes);
        CHECK(t->begin == offset && t->end == offset + nb, "%s: offsets [%zu, %zu)", spec[i].name, t->begin, t->end);
        CHECK(t->data == f.data + offset, "%s: data pointer", spec[i].name);
        CHECK(nb == 0 || memcmp(t->data, data[i], nb) == 0, "%s: data bytes", spec[i].name);
        offset += nb;
        free(data[i]);
    }
    CHECK(f.data_size == offset && f.file.size == 8 + f.header_size + offset, "sizes");
    CHECK(st_tensor(&f, N) == NULL, "st_tensor past the end");
    CHECK(st_find(&f, "f32") == NULL && st_find(&f, "") == NULL && st_find(&f, "zzz") == NULL, "absent names");
    CHECK(st_meta(&f, "format") == NULL, "no metadata");
    st_close(&f);
    st_close(&f); /* twice is fine */
}

TEST(st_round_trip_many_tensors) {
    enum { N = 300 };
    static char names[N][16];
    static float vals[N];
    StTensorOut out[N];
    for (size_t i = 0; i < N; i++) {
        snprintf(names[N - 1 - i], sizeof names[0], "t%zu", (i * 7919) % 1000); /* unsorted, distinct */
        vals[i] = (float)i;
    }
    for (size_t i = 0; i < N; i++) out[i] = (StTensorOut){names[i], ST_F32, 0, NULL, &vals[i]};
    char path[600];
    path_in(path, sizeof path, test_tmpdir(), "many.safetensors");
    Error err = {{0}};
    REQUIRE(st_write(path, out, N, NULL, 0, &err) == 0, "%s", err.msg);
    StFile f;
    REQUIRE(st_open(&f, path, &err) == 0, "%s", err.msg);
    for (size_t i = 0; i < N; i++) {
        const StTensorInfo *t = st_find(&f, names[i]);
        float x = -1;
        REQUIRE(t && st_read_as(&f, t, ST_F32, &x, 1, &err) == 0, "%s", names[i]);
        CHECK(x == (float)i, "%s holds %g", names[i], x);
    }
    st_close(&f);
}

TEST(st_metadata_round_trip) {
    const char *config = "arch: sfsf\nlr: 3e-4   # \"quoted\" \\ back\tslash\nname: 日本語 😀\n";
    StMetaPair meta[] = {{"format", "seqlab-checkpoint"}, {"config", config}, {"empty", ""}, {"k\"ey\n", "v"}};
    float x = 1.5f;
    size_t one = 1;
    StTensorOut t = {"x", ST_F32, 1, &one, &x};
    char path[600];
    path_in(path, sizeof path, test_tmpdir(), "meta.safetensors");
    Error err = {{0}};
    REQUIRE(st_write(path, &t, 1, meta, 4, &err) == 0, "%s", err.msg);
    StFile f;
    REQUIRE(st_open(&f, path, &err) == 0, "%s", err.msg);
    CHECK(f.n_meta == 4, "n_meta %zu", f.n_meta);
    for (size_t i = 0; i < 4; i++) {
        const char *v = st_meta(&f, meta[i].key);
        CHECK(v && strcmp(v, meta[i].value) == 0, "meta %s = %s", meta[i].key, v ? v : "(null)");
        CHECK(strcmp(f.meta[i].key, meta[i].key) == 0, "metadata in written order");
    }
    CHECK(st_meta(&f, "missing") == NULL, "absent key");
    CHECK(f.n_tensors == 1 && st_find(&f, "x") && st_find(&f, "__metadata__") == NULL, "metadata is not a tensor");
    st_close(&f);
    /* only metadata, no tensors */
    REQUIRE(st_write(path, NULL, 0, meta, 1, &err) == 0, "%s", err.msg);
    REQUIRE(st_open(&f, path, &err) == 0, "%s", err.msg);
    CHECK(f.n_tensors == 0 && f.data_size == 0 && strcmp(st_meta(&f, "format"), "seqlab-checkpoint") == 0, "meta only");
    st_close(&f);
}

TEST(st_exact_bytes) {
    float a[2] = {1.0f, -2.0f};
    int64_t b = 7;
    size_t shape_a[] = {2};
    StTensorOut t[] = {{"a", ST_F32, 1, shape_a, a}, {"b", ST_I64, 0, NULL, &b}};
    StMetaPair meta[] = {{"format", "pt"}};
    char path[600];
    path_in(path, sizeof path, test_tmpdir(), "exact.safetensors");
    Error err = {{0}};
    REQUIRE(st_write(path, t, 2, meta, 1, &err) == 0, "%s", err.msg);
    const char *json = "{\"__metadata__\":{\"format\":\"pt\"},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]}}";
    size_t jl = strlen(json), padded = (jl + 7) / 8 * 8;
    unsigned char want[512];
    for (int i = 0; i < 8; i++) want[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(want + 8, json, jl);
    memset(want + 8 + jl, ' ', padded - jl);
    memcpy(want + 8 + padded, a, 8); /* F32 little-endian: 00 00 80 3f 00 00 00 c0 */
    memcpy(want + 16 + padded, &b, 8);
    size_t n = 0;
    unsigned char *got = read_bytes(path, &n);
    REQUIRE(got, "read %s", path);
    CHECK(jl == 138 && padded == 144, "header %zu bytes, padded %zu", jl, padded);
    CHECK(got[0] == 144 && got[1] == 0 && got[7] == 0, "length field 90 00 .. 00");
    CHECK(got[8 + padded] == 0x00 && got[10 + padded] == 0x80 && got[11 + padded] == 0x3f, "1.0f little-endian");
    CHECK(n == 24 + padded, "file size %zu", n);
    CHECK(n == 24 + padded && memcmp(got, want, n) == 0, "bytes differ from the format");
    free(got);
}

TEST(st_header_padding) {
    const char *dir = test_tmpdir();
    char path[600], name[40];
    path_in(path, sizeof path, dir, "pad.safetensors");
    uint8_t byte = 42;
    for (size_t len = 1; len <= 17; len++) {
        memset(name, 'n', len);
        name[len] = 0;
        StTensorOut t = {name, ST_U8, 0, NULL, &byte};
        Error err = {{0}};
        REQUIRE(st_write(path, &t, 1, NULL, 0, &err) == 0, "%s", err.msg);
        size_t n = 0;
        unsigned char *got = read_bytes(path, &n);
        REQUIRE(got && n >= 9, "read");
        uint64_t h = 0;
        for (int i = 7; i >= 0; i--) h = (h << 8) | got[i];
        size_t close_brace = 8 + (size_t)h - 1;
        while (close_brace > 8 && got[close_brace] == ' ') close_brace--;
        size_t pad = 8 + (size_t)h - 1 - close_brace;
        CHECK(h % 8 == 0 && n == 8 + h + 1, "name length %zu: header %llu, file %zu", len, (unsigned long long)h, n);
        CHECK(got[close_brace] == '}' && pad < 8, "name length %zu: %zu spaces of padding after '}'", len, pad);
        CHECK(got[n - 1] == 42, "data follows the padding");
        free(got);
    }
    /* no tensors at all: "{}" and six spaces */
    Error err = {{0}};
    REQUIRE(st_write(path, NULL, 0, NULL, 0, &err) == 0, "%s", err.msg);
    size_t n = 0;
    unsigned char *got = read_bytes(path, &n);
    REQUIRE(got, "read");
    CHECK(n == 16 && got[0] == 8 && memcmp(got + 8, "{}      ", 8) == 0, "empty file");
    free(got);
    StFile f;
    REQUIRE(st_open(&f, path, &err) == 0, "%s", err.msg);
    CHECK(f.n_tensors == 0 && f.n_meta == 0 && f.data_size == 0, "empty file opens");
    st_close(&f);
}

TEST(st_reads_other_writers) {
    /* Unpadded header, blanks, metadata last, header order != data order,
     * empty tensors at the start and end of the data. */
    const char *header = " {\n  \"b\": {\"data_offsets\": [8, 12], \"shape\": [1], \"dtype\": \"I32\"},\n"
                         "  \"e0\": {\"dtype\": \"F64\", \"shape\": [0, 4], \"data_offsets\": [0, 0]},\n"
                         "  \"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},\n"
                         "  \"e1\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [12, 12]},\n"
                         "  \"__metadata__\": {\"k\": \"v\"}\n} ";
    char path[600];
    path_in(path, sizeof path, test_tmpdir(), "other.safetensors");
    REQUIRE(write_st(path, header, 12) == 0, "write");
    StFile f;
    Error err = {{0}};
    REQUIRE(st_open(&f, path, &err) == 0, "%s", err.msg);
    CHECK(f.n_tensors == 4 && strcmp(st_tensor(&f, 0)->name, "b") == 0 && strcmp(st_tensor(&f, 3)->name, "e1") == 0,
          "header order");
    const StTensorInfo *b = st_find(&f, "b");
    REQUIRE(b, "b");
    CHECK(b->data == f.data + 8 && ((const unsigned char *)b->data)[0] == 8, "b points at data byte 8");
    CHECK(st_find(&f, "e0")->numel == 0 && st_find(&f, "e0")->ndim == 2, "empty F64 [0, 4]");
    CHECK(strcmp(st_meta(&f, "k"), "v") == 0, "metadata after the tensors");
    st_close(&f);
    /* "__metadata__": null is no metadata */
    REQUIRE(write_st(path, "{\"__metadata__\":null}", 0) == 0, "write");
    REQUIRE(st_open(&f, path, &err) == 0, "%s", err.msg);
    CHECK(f.n_meta == 0 && f.n_tensors == 0, "null metadata");
    st_close(&f);
}

TEST(st_read_as_converts) {
    float f32[3] = {1.5f, -2.0f, 3.25f};
    double f64[3] = {0.1, -1e10, 2.0};
    int32_t i32[3] = {-7, 0, 2147483647};
    int64_t i64[3] = {-(1LL << 40), 5, 9};
    uint8_t u8[3] = {1, 2, 3};
    size_t three = 3;
    StTensorOut t[] = {{"f32", ST_F32, 1, &three, f32},
                       {"f64", ST_F64, 1, &three, f64},
                       {"i32", ST_I32, 1, &three, i32},
                       {"i64", ST_I64, 1, &three, i64},
                       {"u8", ST_U8, 1, &three, u8}};
    char path[600];
    path_in(path, sizeof path, test_tmpdir(), "conv.safetensors");
    Error err = {{0}};
    REQUIRE(st_write(path, t, 5, NULL, 0, &err) == 0, "%s", err.msg);
    StFile f;
    REQUIRE(st_open(&f, path, &err) == 0, "%s", err.msg);
    float of[3];
    double od[3];
    int64_t oi[3];
    uint8_t ou[3];
    REQUIRE(st_read_as(&f, st_find(&f, "f32"), ST_F64, od, 3, &err) == 0, "%s", err.msg);
    CHECK(od[0] == 1.5 && od[1] == -2.0 && od[2] == 3.25, "F32 -> F64");
    REQUIRE(st_read_as(&f, st_find(&f, "f64"), ST_F32, of, 3, &err) == 0, "%s", err.msg);
    CHECK(of[0] == 0.1f && of[1] == -1e10f && of[2] == 2.0f, "F64 -> F32");
    REQUIRE(st_read_as(&f, st_find(&f, "i32"), ST_I64, oi, 3, &err) == 0, "%s", err.msg);
    CHECK(oi[0] == -7 && oi[1] == 0 && oi[2] == 2147483647, "I32 -> I64");
    REQUIRE(st_read_as(&f, st_find(&f, "i64"), ST_F64, od, 3, &err) == 0, "%s", err.msg);
    CHECK(od[0] == -1099511627776.0 && od[1] == 5.0, "I64 -> F64");
    REQUIRE(st_read_as(&f, st_find(&f, "i32"), ST_F32, of, 3, &err) == 0, "%s", err.msg);
    CHECK(of[0] == -7.0f, "I32 -> F32");
    REQUIRE(st_read_as(&f, st_find(&f, "i64"), ST_I64, oi, 3, &err) == 0, "%s", err.msg);
    CHECK(oi[0] == -(1LL << 40) && oi[2] == 9, "I64 as is");
    REQUIRE(st_read_as(&f, st_find(&f, "u8"), ST_U8, ou, 3, &err) == 0, "%s", err.msg);
    CHECK(ou[2] == 3, "U8 as is");
    /* refused: wrong count, float -> int, unsupported source */
    of[0] = 99;
    CHECK(st_read_as(&f, st_find(&f, "f32"), ST_F32, of, 2, &err) == -1 && of[0] == 99, "wrong count");
    CHECK(strstr(err.msg, "'f32' has 3 elements, not the 2 expected") && strstr(err.msg, path), "%s", err.msg);
    CHECK(st_read_as(&f, st_find(&f, "f32"), ST_I64, oi, 3, &err) == -1, "F32 -> I64");
    CHECK(strstr(err.msg, "is F32 and cannot be read as I64"), "%s", err.msg);
    CHECK(st_read_as(&f, st_find(&f, "u8"), ST_F32, of, 3, &err) == -1, "U8 -> F32");
    st_close(&f);
}

/* ---- validation of broken files ---- */

TEST(st_rejects_non_safetensors) {
    const char *dir = test_tmpdir();
    char path[600];
    path_in(path, sizeof path, dir, "x");
    CHECK(write_bytes(path, "", 0) == 0 && open_fails(path, "truncated or not a safetensors file: 0 bytes"), "empty");
    CHECK(write_bytes(path, "\x10\0\0\0\0", 5) == 0 && open_fails(path, "truncated or not a safetensors file: 5 bytes"),
          "5 bytes");
    const char *text = "Hello, this is a plain text file and not tensors.\n";
    CHECK(write_bytes(path, text, strlen(text)) == 0 &&
              open_fails(path, "not a safetensors file: the first 8 bytes give"),
          "text");
    unsigned char rnd[4096];
    fill(rnd, sizeof rnd, 3);
    rnd[7] = 0x9c;
    CHECK(write_bytes(path, rnd, sizeof rnd) == 0 && open_fails(path, "not a safetensors file"), "random binary");
    CHECK(write_with_len(path, 100000001, "{}", 2) == 0 && open_fails(path, "over the 100000000-byte limit"),
          "header length over the limit");
    CHECK(write_with_len(path, 64, "\x01\x02\x03\x04", 4) == 0 &&
              open_fails(path, "not a safetensors file: the header length 64 exceeds the file"),
          "binary with a small length that does not fit");
    CHECK(write_with_len(path, 4, "\x01\x02\x03\x04", 4) == 0 &&
              open_fails(path, "not a safetensors file: the header is not a JSON object"),
          "binary header that fits");
    CHECK(write_with_len(path, 0, "", 0) == 0 && open_fails(path, "the header is not a JSON object"), "N = 0");
    CHECK(write_st(path, "[1, 2]", 0) == 0 && open_fails(path, "the header is not a JSON object"), "array header");
    CHECK(write_st(path, "\"str\"", 0) == 0 && open_fails(path, "the header is not a JSON object"), "string header");
    CHECK(write_st(path, "{\"a\": }", 0) == 0 &&
              open_fails(path, "': invalid header: JSON: expected a value at byte 6 of the header"),
          "invalid JSON");
    CHECK(write_st(path, "{\"a\xff\": 1}", 0) == 0 && open_fails(path, "invalid header: JSON: invalid UTF-8 at byte 3"),
          "invalid UTF-8 in the header");
    CHECK(write_st(path, "{} x", 0) == 0 && open_fails(path, "JSON: expected end of input at byte 3 of the header"),
          "garbage after the header object");
    char missing[600];
    path_in(missing, sizeof missing, dir, "missing.safetensors");
    CHECK(open_fails(missing, "cannot open"), "missing file");
    CHECK(open_fails(dir, "is not a regular file"), "a directory");
}

TEST(st_rejects_truncated_files) {
    const char *dir = test_tmpdir();
    char path[600], cut[600];
    path_in(path, sizeof path, dir, "whole.safetensors");
    path_in(cut, sizeof cut, dir, "cut.safetensors");
    float a[4] = {1, 2, 3, 4}, b[6] = {5, 6, 7, 8, 9, 10};
    size_t sa[] = {4}, sb[] = {2, 3};
    StTensorOut t[] = {{"a", ST_F32, 1, sa, a}, {"b", ST_F32, 2, sb, b}};
    Error err = {{0}};
    REQUIRE(st_write(path, t, 2, NULL, 0, &err) == 0, "%s", err.msg);
    size_t n = 0;
    unsigned char *whole = read_bytes(path, &n);
    REQUIRE(whole, "read");
    size_t h = whole[0], data0 = 8 + h;
    REQUIRE(n == data0 + 40, "layout");
    CHECK(write_bytes(cut, whole, 6) == 0 && open_fails(cut, "truncated or not a safetensors file: 6 bytes"),
          "cut in the length");
    CHECK(write_bytes(cut, whole, 8) == 0 && open_fails(cut, "truncated: the header needs"), "cut after the length");
    char want[200];
    snprintf(want, sizeof want, "truncated: the header needs %zu bytes but the file holds only %zu", h, h / 2);
    CHECK(write_bytes(cut, whole, 8 + h / 2) == 0 && open_fails(cut, want), "cut in the header");
    CHECK(write_bytes(cut, whole, data0) == 0 &&
              open_fails(cut, "truncated: tensor 'a' ends at byte 16 of the data but the file holds only 0"),
          "cut before the data");
    CHECK(write_bytes(cut, whole, data0 + 20) == 0 &&
              open_fails(cut, "truncated: tensor 'b' ends at byte 40 of the data but the file holds only 20"),
          "cut in the data");
    CHECK(write_bytes(cut, whole, n - 1) == 0 &&
              open_fails(cut, "truncated: tensor 'b' ends at byte 40 of the data but the file holds only 39"),
          "last byte missing");
    free(whole);
}

TEST(st_rejects_bad_entries) {
    const char *d = test_tmpdir();
    CHECK(entry_fails(d, "{\"x\": 5}", 0, "tensor 'x': entry is a JSON number, not an object"), "not an object");
    CHECK(entry_fails(d, "{\"x\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "tensor 'x': missing \"dtype\""),
          "no dtype");
    CHECK(entry_fails(d, "{\"x\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", 4, "tensor 'x': missing \"shape\""),
          "no shape");
    CHECK(entry_fails(d, "{\"x\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, "tensor 'x': missing \"data_offsets\""),
          "no offsets");
    CHECK(entry_fails(d, "{\"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4], \"offset\": 0}}", 4,
                      "tensor 'x': unexpected field \"offset\""),
          "extra field");
    CHECK(entry_fails(d, "{\"x\": {\"dtype\": \"F8_E4M3\", \"shape\": [1], \"data_offsets\": [0, 1]}}", 1,
                      "tensor 'x': unknown dtype \"F8_E4M3\" (supported: BOOL"),
          "unknown dtype");
    CHECK(entry_fails(d, "{\"x\": {\"dtype\": \"f32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                      "unknown dtype \"f32\""),
          "lower-case dtype");
    CHECK(entry_fails(d, "{\"x\": {\"dtype\": 4, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                      "tensor 'x': dtype is a JSON number, not a string"),
          "dtype not a string");
    CHECK(entry_fails(d, "{\"x\": {\"dtype\": \"F32\", \"shape\": 1, \"data_offsets\": [0, 4]}}", 4,
                      "tensor 'x': shape is a JSON number, not an array"),
          "shape not an array");
    const char *bad_shapes[] = {"[-1]",  "[1.5]",  "[\"2\"]", "[2.0]",
                                "[1e1]", "[null]", "[[1]]",   "[99999999999999999999]"};
    for (size_t i = 0; i < sizeof bad_shapes / sizeof bad_shapes[0]; i++) {
        char h[200];
        snprintf(h, sizeof h, "{\"x\": {\"dtype\": \"F32\", \"shape\": %s, \"data_offsets\": [0, 4]}}", bad_shapes[i]);
        CHECK(entry_fails(d, h, 4, "tensor 'x': shape must be an array of non-negative integers"), "shape %s",
              bad_shapes[i]);
    }
    CHECK(entry_fails(
              d,
              "{\"x\": {\"dtype\": \"U8\", \"shape\": [4294967296, 4294967296, 4294967296], \"data_offsets\": [0, 0]}}",
              0, "tensor 'x': shape [4294967296, 4294967296, 4294967296] is too large"),
          "numel overflow");
    CHECK(entry_fails(d, "{\"a\\u0000b\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [0, 0]}}", 0,
                      "the tensor name at byte 1 of the header contains a NUL character"),
          "NUL in a name");
    CHECK(entry_fails(d,
                      "{\"x\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}, "
                      "\"x\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [1, 2]}}",
                      2, "JSON: duplicate key \"x\" at byte 61 of the header"),
          "duplicate tensor name");
}

TEST(st_rejects_bad_offsets) {
    const char *d = test_tmpdir();
    const char *bad[] = {"0", "[0]", "[0, 4, 8]", "[8, 4]", "[-4, 0]", "[0, 4.0]", "[\"0\", \"4\"]", "[0, null]", "{}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char h[200];
        snprintf(h, sizeof h, "{\"x\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": %s}}", bad[i]);
        CHECK(entry_fails(d, h, 8,
                          "tensor 'x': data_offsets must be two non-negative integers [begin, end] with begin <= end"),
              "data_offsets %s", bad[i]);
    }
    CHECK(entry_fails(d, "{\"x\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 4]}}", 4,
                      "tensor 'x': data_offsets [0, 4] span 4 bytes but dtype F32 with shape [2] needs 8"),
          "size mismatch");
    CHECK(entry_fails(d, "{\"x\": {\"dtype\": \"I64\", \"shape\": [], \"data_offsets\": [0, 4]}}", 4,
                      "data_offsets [0, 4] span 4 bytes but dtype I64 with shape [] needs 8"),
          "scalar size mismatch");
    CHECK(entry_fails(d, "{\"x\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 8,
                      "truncated: tensor 'x' ends at byte 16 of the data but the file holds only 8"),
          "beyond the data");
}

TEST(st_rejects_bad_coverage) {
    const char *d = test_tmpdir();
    CHECK(entry_fails(d,
                      "{\"a\": {\"dtype\": \"U8\", \"shape\": [8], \"data_offsets\": [0, 8]}, "
                      "\"b\": {\"dtype\": \"U8\", \"shape\": [8], \"data_offsets\": [4, 12]}}",
                      12, "tensors 'a' and 'b' overlap (data bytes [0, 8) and [4, 12))"),
          "overlap");
    CHECK(entry_fails(d,
                      "{\"a\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [0, 4]}, "
                      "\"b\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [0, 4]}}",
                      4, "tensors 'a' and 'b' overlap"),
          "same range twice");
    CHECK(entry_fails(d,
                      "{\"a\": {\"dtype\": \"U8\", \"shape\": [8], \"data_offsets\": [0, 8]}, "
                      "\"e\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [4, 4]}}",
                      8, "tensors 'a' and 'e' overlap"),
          "empty tensor inside another");
    CHECK(entry_fails(d, "{\"a\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [4, 8]}}", 8,
                      "data bytes [0, 4) belong to no tensor (a hole before tensor 'a')"),
          "hole at the start");
    CHECK(entry_fails(d,
                      "{\"a\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [0, 4]}, "
                      "\"b\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [8, 12]}}",
                      12, "data bytes [4, 8) belong to no tensor (a hole before tensor 'b')"),
          "hole in the middle");
    CHECK(entry_fails(d, "{\"a\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [0, 4]}}", 8,
                      "data bytes [4, 8) after the last tensor belong to no tensor"),
          "trailing bytes");
    CHECK(entry_fails(d, "{}", 3, "data bytes [0, 3) after the last tensor belong to no tensor"),
          "data without tensors");
}

TEST(st_rejects_bad_metadata) {
    const char *d = test_tmpdir();
    CHECK(entry_fails(d, "{\"__metadata__\": {\"a\": \"x\", \"k\": 1}}", 0,
                      "metadata value of 'k' is a JSON number, not a string"),
          "number value");
    CHECK(entry_fails(d, "{\"__metadata__\": {\"k\": {\"nested\": \"x\"}}}", 0,
                      "metadata value of 'k' is a JSON object, not a string"),
          "object value");
    CHECK(entry_fails(d, "{\"__metadata__\": [\"k\", \"v\"]}", 0, "__metadata__ is a JSON array, not an object"),
          "metadata array");
    CHECK(entry_fails(d, "{\"__metadata__\": \"k=v\"}", 0, "__metadata__ is a JSON string, not an object"),
          "metadata string");
    CHECK(
        entry_fails(d, "{\"__metadata__\": {\"k\": \"a\\u0000b\"}}", 0, "metadata entry 'k' contains a NUL character"),
        "NUL in a value");
}

/* ---- writing: input checks and atomicity ---- */

TEST(st_write_rejects_bad_input) {
    const char *dir = test_tmpdir();
    char path[600];
    path_in(path, sizeof path, dir, "w.safetensors");
    float x[2] = {0};
    size_t two = 2;
    Error err = {{0}};
    StTensorOut dup[] = {{"w", ST_F32, 1, &two, x}, {"v", ST_F32, 1, &two, x}, {"w", ST_F32, 0, NULL, x}};
    CHECK(st_write(path, dup, 3, NULL, 0, &err) == -1 && strstr(err.msg, "two tensors are called 'w'") &&
              strstr(err.msg, path),
          "duplicate names: %s", err.msg);
    StTensorOut reserved = {"__metadata__", ST_F32, 0, NULL, x};
    CHECK(st_write(path, &reserved, 1, NULL, 0, &err) == -1 && strstr(err.msg, "\"__metadata__\" is reserved"),
          "reserved name: %s", err.msg);
    StTensorOut bad_utf8 = {"w\xff", ST_F32, 0, NULL, x};
    CHECK(st_write(path, &bad_utf8, 1, NULL, 0, &err) == -1 && strstr(err.msg, "not valid UTF-8"), "utf-8: %s",
          err.msg);
    StTensorOut bad_dtype = {"w", (StDtype)99, 0, NULL, x};
    CHECK(st_write(path, &bad_dtype, 1, NULL, 0, &err) == -1 && strstr(err.msg, "invalid dtype 99"), "dtype: %s",
          err.msg);
    StTensorOut no_data = {"w", ST_F32, 1, &two, NULL};
    CHECK(st_write(path, &no_data, 1, NULL, 0, &err) == -1 && strstr(err.msg, "tensor 'w': data is NULL"), "data: %s",
          err.msg);
    StTensorOut no_shape = {"w", ST_F32, 1, NULL, x};
    CHECK(st_write(path, &no_shape, 1, NULL, 0, &err) == -1 && strstr(err.msg, "shape is NULL"), "shape: %s", err.msg);
    StTensorOut no_name = {NULL, ST_F32, 0, NULL, x};
    CHECK(st_write(path, &no_name, 1, NULL, 0, &err) == -1 && strstr(err.msg, "tensor 0 has no name"), "name: %s",
          err.msg);
    StTensorOut ok = {"w", ST_F32, 0, NULL, x};
    StMetaPair dup_meta[] = {{"k", "1"}, {"k", "2"}};
    CHECK(st_write(path, &ok, 1, dup_meta, 2, &err) == -1 && strstr(err.msg, "metadata key 'k' appears twice"),
          "duplicate metadata: %s", err.msg);
    StMetaPair null_meta[] = {{"k", NULL}};
    CHECK(st_write(path, &ok, 1, null_meta, 1, &err) == -1 && strstr(err.msg, "NULL key or value"), "NULL metadata: %s",
          err.msg);
    struct stat st;
    CHECK(stat(path, &st) != 0 && no_temp_files(dir), "nothing was written");
    /* an empty tensor may have NULL data */
    StTensorOut empty = {"e", ST_F32, 1, (size_t[]){0}, NULL};
    CHECK(st_write(path, &empty, 1, NULL, 0, &err) == 0, "empty tensor with NULL data: %s", err.msg);
}

/* Writes a small "old" checkpoint at path and checks that it is still there. */
static int write_old(const char *path) {
    int64_t step = 100;
    StTensorOut t = {"train.step", ST_I64, 0, NULL, &step};
    StMetaPair m = {"version", "old"};
    Error err = {{0}};
    return st_write(path, &t, 1, &m, 1, &err);
}

static bool old_intact(const char *path) {
    StFile f;
    Error err = {{0}};
    if (st_open(&f, path, &err)) {
        printf("    the old file does not open: %s\n", err.msg);
        return false;
    }
    const StTensorInfo *t = st_find(&f, "train.step");
    int64_t step = 0;
    bool ok = t && st_read_as(&f, t, ST_I64, &step, 1, &err) == 0 && step == 100 && f.n_tensors == 1 &&
              st_meta(&f, "version") && strcmp(st_meta(&f, "version"), "old") == 0;
    st_close(&f);
    return ok;
}

TEST(st_write_replaces_existing_file) {
    const char *dir = test_tmpdir();
    char path[600];
    path_in(path, sizeof path, dir, "ckpt.safetensors");
    REQUIRE(write_old(path) == 0 && old_intact(path), "old file");
    int64_t step = 200;
    StTensorOut t = {"train.step", ST_I64, 0, NULL, &step};
    Error err = {{0}};
    REQUIRE(st_write(path, &t, 1, NULL, 0, &err) == 0, "%s", err.msg);
    StFile f;
    REQUIRE(st_open(&f, path, &err) == 0, "%s", err.msg);
    int64_t got = 0;
    CHECK(st_read_as(&f, st_find(&f, "train.step"), ST_I64, &got, 1, &err) == 0 && got == 200 && f.n_meta == 0,
          "new content");
    st_close(&f);
    CHECK(no_temp_files(dir), "no temporary file left");
    /* a relative path (no directory part) works too */
    char cwd[1024];
    REQUIRE(getcwd(cwd, sizeof cwd) && chdir(dir) == 0, "chdir");
    int rc = st_write("rel.safetensors", &t, 1, NULL, 0, &err);
    REQUIRE(chdir(cwd) == 0, "chdir back");
    CHECK(rc == 0, "relative path: %s", err.msg);
}

TEST(st_write_failure_keeps_old_file) {
    /* The file size limit makes write(2) fail part-way through the data. */
    const char *dir = test_tmpdir();
    char path[600];
    path_in(path, sizeof path, dir, "ckpt.safetensors");
    REQUIRE(write_old(path) == 0, "old file");
    size_t n = 1 << 16;
    float *big = calloc(n, sizeof(float));
    StTensorOut t = {"big", ST_F32, 1, &n, big};
    struct rlimit old, lim;
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0, "getrlimit");
    lim = old;
    lim.rlim_cur = 4096;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
    Error err = {{0}};
    int rc = st_write(path, &t, 1, NULL, 0, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_handler);
    free(big);
    CHECK(rc == -1, "the write should fail");
    CHECK(strstr(err.msg, "cannot write") && strstr(err.msg, path), "message: %s", err.msg);
    CHECK(old_intact(path), "the old file is intact");
    CHECK(no_temp_files(dir), "no temporary file left");
}

TEST(st_write_into_missing_directory) {
    const char *dir = test_tmpdir();
    char path[600];
    path_in(path, sizeof path, dir, "no/such/dir/x.safetensors");
    int64_t v = 1;
    StTensorOut t = {"v", ST_I64, 0, NULL, &v};
    Error err = {{0}};
    CHECK(st_write(path, &t, 1, NULL, 0, &err) == -1, "should fail");
    CHECK(strstr(err.msg, "cannot create") && strstr(err.msg, path) && strstr(err.msg, "No such file or directory"),
          "message: %s", err.msg);
    CHECK(no_temp_files(dir), "nothing left behind");
}

TEST(st_write_into_readonly_directory) {
    const char *dir = test_tmpdir();
    char sub[600], path[700];
    path_in(sub, sizeof sub, dir, "ro");
    REQUIRE(mkdir(sub, 0700) == 0, "mkdir");
    path_in(path, sizeof path, sub, "ckpt.safetensors");
    REQUIRE(write_old(path) == 0, "old file");
    REQUIRE(chmod(sub, 0500) == 0, "chmod");
    if (access(sub, W_OK) == 0) { /* root ignores permissions */
        chmod(sub, 0700);
        TEST_SKIP("running as root: a read-only directory is still writable");
    }
    int64_t v = 1;
    StTensorOut t = {"train.step", ST_I64, 0, NULL, &v};
    Error err = {{0}};
    int rc = st_write(path, &t, 1, NULL, 0, &err);
    chmod(sub, 0700);
    CHECK(rc == -1 && strstr(err.msg, path) && strstr(err.msg, "Permission denied"), "message: %s", err.msg);
    CHECK(old_intact(path), "the old file is intact");
    CHECK(no_temp_files(sub), "no temporary file left");
}

TEST(st_write_rename_failure_cleans_up) {
    /* The target is a non-empty directory: everything succeeds but the rename. */
    const char *dir = test_tmpdir();
    char target[600], inside[700];
    path_in(target, sizeof target, dir, "ckpt.safetensors");
    REQUIRE(mkdir(target, 0700) == 0, "mkdir");
    path_in(inside, sizeof inside, target, "keep");
    REQUIRE(write_bytes(inside, "k", 1) == 0, "file inside");
    int64_t v = 1;
    StTensorOut t = {"v", ST_I64, 0, NULL, &v};
    Error err = {{0}};
    CHECK(st_write(target, &t, 1, NULL, 0, &err) == -1, "should fail");
    CHECK(strstr(err.msg, "cannot rename") && strstr(err.msg, target), "message: %s", err.msg);
    struct stat st;
    CHECK(stat(inside, &st) == 0 && st.st_size == 1, "the directory is untouched");
    CHECK(no_temp_files(dir), "no temporary file left");
}
