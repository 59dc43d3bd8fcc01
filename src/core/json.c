/* json.c — a strict recursive-descent JSON parser and the writing helpers;
 * see json.h.
 *
 * Follows RFC 8259 (https://www.rfc-editor.org/rfc/rfc8259): the grammar of
 * section 2-7, UTF-8 text (section 8.1, no byte order mark), unique object
 * keys (section 4 leaves duplicates to the implementation; we reject them).
 * Recursion is bounded by JSON_MAX_DEPTH, so hostile input cannot exhaust
 * the stack. Numbers are converted with strtod, which reads '.' as the decimal
 * point in the "C" locale that seqlab never leaves.
 */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

bool json_utf8_valid(const char *s, size_t n) { return utf8_first_invalid((const unsigned char *)s, n) == n; }

/* ------------------------------------------------------------------------ */
/* Parser                                                                    */

typedef struct {
    const unsigned char *s;
    size_t n, pos;
    int depth;
    Error *err;
} Parser;

static int fail(Parser *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(Parser *p, size_t at, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return err_set(p->err, "JSON: %s at byte %zu", what, at);
}

static void skip_ws(Parser *p) {
    while (p->pos < p->n) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static bool peek_is(const Parser *p, char c) { return p->pos < p->n && p->s[p->pos] == (unsigned char)c; }

static bool is_digit(const Parser *p) { return p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9'; }

static int parse_value(Parser *p, JsonValue *v);

static int parse_literal(Parser *p, JsonValue *v, const char *word, JsonType type, bool b) {
    size_t k = strlen(word);
    if (p->n - p->pos < k || memcmp(p->s + p->pos, word, k) != 0) return fail(p, p->pos, "expected '%s'", word);
    v->type = type;
    v->boolean = b;
    p->pos += k;
    return 0;
}

/* Digits after a '-', '.' or exponent: at least one is required. */
static int parse_digits(Parser *p) {
    if (!is_digit(p)) return fail(p, p->pos, "expected a digit");
    while (is_digit(p)) p->pos++;
    return 0;
}

/* Converts the validated literal s[start, pos) with strtod (and strtoll). */
static int convert_number(Parser *p, JsonValue *v, size_t start, bool integer) {
    size_t k = p->pos - start;
    char small[64], *buf = small;
    if (k >= sizeof small && !(buf = malloc(k + 1))) return fail(p, start, "out of memory");
    memcpy(buf, p->s + start, k);
    buf[k] = 0;
    v->type = JSON_NUMBER;
    v->number = strtod(buf, NULL);
    if (integer) {
        errno = 0;
        long long x = strtoll(buf, NULL, 10);
        v->is_integer = errno == 0;
        if (v->is_integer) v->integer = x;
    }
    if (buf != small) free(buf);
    if (isinf(v->number)) return fail(p, start, "number out of range");
    return 0;
}

/* number = [ '-' ] ( '0' / [1-9] *DIGIT ) [ '.' 1*DIGIT ] [ ( 'e' / 'E' ) [ '+' / '-' ] 1*DIGIT ] */
static int parse_number(Parser *p, JsonValue *v) {
    size_t start = p->pos;
    bool integer = true;
    if (peek_is(p, '-')) p->pos++;
    if (peek_is(p, '0')) {
        p->pos++;
        if (is_digit(p)) return fail(p, p->pos - 1, "leading zero in number");
    } else if (parse_digits(p)) {
        return -1;
    }
    if (peek_is(p, '.')) {
        integer = false;
        p->pos++;
        if (parse_digits(p)) return -1;
    }
    if (peek_is(p, 'e') || peek_is(p, 'E')) {
        integer = false;
        p->pos++;
        if (peek_is(p, '+') || peek_is(p, '-')) p->pos++;
        if (parse_digits(p)) return -1;
    }
    return convert_number(p, v, start, integer);
}

/* Four hex digits at s[at..at+3]; -1 if they are not there. */
static long hex4(const Parser *p, size_t at) {
    if (p->n - at < 4) return -1;
    long v = 0;
    for (size_t i = 0; i < 4; i++) {
        unsigned char c = p->s[at + i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* A \u escape at p->pos (the backslash), with a following low surrogate if the
 * first is a high one. Writes UTF-8 to out and advances past the escape(s). */
static int parse_unicode_escape(Parser *p, char *out, size_t *written) {
    size_t at = p->pos;
    long hi = hex4(p, at + 2);
    if (hi < 0) return fail(p, at + 2, "expected 4 hex digits after \\u");
    uint32_t cp = (uint32_t)hi;
    p->pos += 6;
    if (hi >= 0xDC00 && hi <= 0xDFFF) return fail(p, at, "unpaired UTF-16 surrogate \\u%04lX", hi);
    if (hi >= 0xD800 && hi <= 0xDBFF) {
        long lo = p->n - p->pos >= 2 && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u' ? hex4(p, p->pos + 2) : -1;
        if (lo < 0xDC00 || lo > 0xDFFF) return fail(p, at, "unpaired UTF-16 surrogate \\u%04lX", hi);
        cp = 0x10000 + (((uint32_t)hi - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
        p->pos += 6;
    }
    *written = utf8_encode(cp, out);
    return 0;
}

/* One escape sequence at p->pos (the backslash). */
static int parse_escape(Parser *p, char *out, size_t *written) {
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    unsigned char e = p->s[p->pos + 1]; /* exists: the closing quote comes later */
    if (e == 'u') return parse_unicode_escape(p, out, written);
    const char *hit = e ? strchr(from, e) : NULL;
    if (!hit) return fail(p, p->pos, "invalid escape (expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u)");
    out[0] = to[hit - from];
    *written = 1;
    p->pos += 2;
    return 0;
}

/* Finds the closing quote of the string at p->pos; returns its position or
 * 0 (a quote at 0 cannot close anything) when the text ends first. */
static size_t string_end(const Parser *p) {
    for (size_t i = p->pos + 1; i < p->n; i++) {
        if (p->s[i] == '"') return i;
        if (p->s[i] == '\\') i++;
    }
    return 0;
}

/* A string at p->pos (the opening quote) into an owned, NUL-terminated buffer.
 * The decoded text is never longer than the raw text, so one allocation of the
 * raw length suffices. */
static int parse_string(Parser *p, char **out, size_t *out_len) {
    size_t start = p->pos, end = string_end(p);
    if (!end) return fail(p, start, "unterminated string");
    char *buf = malloc(end - start);
    if (!buf) return fail(p, start, "out of memory");
    size_t len = 0;
    p->pos++;
    while (p->pos < end) {
        unsigned char c = p->s[p->pos];
        size_t k = 0;
        if (c < 0x20) {
            free(buf);
            return fail(p, p->pos, "unescaped control character in string");
        } else if (c == '\\') {
            if (parse_escape(p, buf + len, &k)) {
                free(buf);
                return -1;
            }
            len += k;
        } else {
            if (!(k = utf8_decode(p->s + p->pos, end - p->pos, NULL))) {
                free(buf);
                return fail(p, p->pos, "invalid UTF-8");
            }
            memcpy(buf + len, p->s + p->pos, k);
            len += k;
            p->pos += k;
        }
    }
    p->pos = end + 1;
    buf[len] = 0;
    *out = buf;
    *out_len = len;
    return 0;
}

/* Makes room for one more element of `size` bytes in *arr (count used, *cap allocated). */
static int grow(Parser *p, void **arr, size_t count, size_t *cap, size_t size) {
    if (count < *cap) return 0;
    size_t ncap = *cap ? 2 * *cap : 4;
    void *a = ncap <= SIZE_MAX / size ? realloc(*arr, ncap * size) : NULL;
    if (!a) return fail(p, p->pos, "out of memory");
    *arr = a;
    *cap = ncap;
    return 0;
}

static int enter(Parser *p) {
    if (++p->depth > JSON_MAX_DEPTH) return fail(p, p->pos, "nesting deeper than %d levels", JSON_MAX_DEPTH);
    p->pos++; /* the '[' or '{' */
    skip_ws(p);
    return 0;
}

static int parse_array(Parser *p, JsonValue *v) {
    size_t cap = 0;
    v->type = JSON_ARRAY;
    if (enter(p)) return -1;
    if (peek_is(p, ']')) {
        p->pos++;
        p->depth--;
        return 0;
    }
    for (;;) {
        if (grow(p, (void **)&v->items, v->n_items, &cap, sizeof *v->items)) return -1;
        JsonValue *item = &v->items[v->n_items++];
        memset(item, 0, sizeof *item); /* counted before parsing so json_free sees partial items */
        if (parse_value(p, item)) return -1;
        skip_ws(p);
        if (peek_is(p, ']')) break;
        if (!peek_is(p, ',')) return fail(p, p->pos, "expected ',' or ']'");
        p->pos++;
    }
    p->pos++;
    p->depth--;
    return 0;
}

static int cmp_member(const void *a, const void *b) {
    const JsonMember *x = *(const JsonMember *const *)a, *y = *(const JsonMember *const *)b;
    size_t k = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, k);
    if (c) return c;
    if (x->key_len != y->key_len) return x->key_len < y->key_len ? -1 : 1;
    return x < y ? -1 : x > y; /* members are contiguous: address order is text order */
}

/* Sorting the keys finds duplicates in O(n log n); the error names the first
 * repeated key in text order. */
static int check_duplicates(Parser *p, const JsonValue *v) {
    if (v->n_members < 2) return 0;
    const JsonMember **sorted = malloc(v->n_members * sizeof *sorted);
    if (!sorted) return fail(p, v->offset, "out of memory");
    for (size_t i = 0; i < v->n_members; i++) sorted[i] = &v->members[i];
    qsort(sorted, v->n_members, sizeof *sorted, cmp_member);
    const JsonMember *dup = NULL;
    for (size_t i = 1; i < v->n_members; i++) {
        const JsonMember *a = sorted[i - 1], *b = sorted[i];
        if (a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0 && (!dup || b < dup)) dup = b;
    }
    free(sorted);
    if (dup) return fail(p, dup->key_offset, "duplicate key \"%.100s\"", dup->key);
    return 0;
}

static int parse_member(Parser *p, JsonMember *m, bool first) {
    if (!peek_is(p, '"')) return fail(p, p->pos, first ? "expected a string key or '}'" : "expected a string key");
    m->key_offset = p->pos;
    if (parse_string(p, &m->key, &m->key_len)) return -1;
    skip_ws(p);
    if (!peek_is(p, ':')) return fail(p, p->pos, "expected ':'");
    p->pos++;
    return parse_value(p, &m->value);
}

static int parse_object(Parser *p, JsonValue *v) {
    size_t cap = 0;
    v->type = JSON_OBJECT;
    if (enter(p)) return -1;
    if (peek_is(p, '}')) {
        p->pos++;
        p->depth--;
        return 0;
    }
    for (;;) {
        if (grow(p, (void **)&v->members, v->n_members, &cap, sizeof *v->members)) return -1;
        JsonMember *m = &v->members[v->n_members++];
        memset(m, 0, sizeof *m);
        if (parse_member(p, m, v->n_members == 1)) return -1;
        skip_ws(p);
        if (peek_is(p, '}')) break;
        if (!peek_is(p, ',')) return fail(p, p->pos, "expected ',' or '}'");
        p->pos++;
        skip_ws(p);
    }
    p->pos++;
    p->depth--;
    return check_duplicates(p, v);
}

static int parse_value(Parser *p, JsonValue *v) {
    skip_ws(p);
    v->offset = p->pos;
    if (p->pos >= p->n) return fail(p, p->pos, "expected a value");
    switch (p->s[p->pos]) {
    case '{': return parse_object(p, v);
    case '[': return parse_array(p, v);
    case '"': v->type = JSON_STRING; return parse_string(p, &v->string, &v->string_len);
    case 't': return parse_literal(p, v, "true", JSON_BOOL, true);
    case 'f': return parse_literal(p, v, "false", JSON_BOOL, false);
    case 'n': return parse_literal(p, v, "null", JSON_NULL, false);
    default:
        if (p->s[p->pos] == '-' || is_digit(p)) return parse_number(p, v);
        return fail(p, p->pos, "expected a value");
    }
}

/* Frees what v owns (not v itself). */
static void value_clear(JsonValue *v) {
    free(v->string);
    for (size_t i = 0; i < v->n_items; i++) value_clear(&v->items[i]);
    free(v->items);
    for (size_t i = 0; i < v->n_members; i++) {
        free(v->members[i].key);
        value_clear(&v->members[i].value);
    }
    free(v->members);
}

void json_free(JsonValue *v) {
    if (!v) return;
    value_clear(v);
    free(v);
}

int json_parse(const char *text, size_t len, JsonValue **out, Error *err) {
    *out = NULL;
    Parser p = {(const unsigned char *)text, len, 0, 0, err};
    JsonValue *root = calloc(1, sizeof *root);
    if (!root) return err_set(err, "JSON: out of memory");
    if (parse_value(&p, root) == 0) {
        skip_ws(&p);
        if (p.pos == p.n) {
            *out = root;
            return 0;
        }
        fail(&p, p.pos, "expected end of input");
    }
    json_free(root);
    return -1;
}

/* Reads a whole stream into an owned buffer. */
static int read_all(FILE *f, const char *path, char **out, size_t *len, Error *err) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) return err_set(err, "out of memory reading '%s'", path);
    for (;;) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *b = cap <= SIZE_MAX / 2 ? realloc(buf, 2 * cap) : NULL;
        if (!b) {
            free(buf);
            return err_set(err, "out of memory reading '%s'", path);
        }
        buf = b;
        cap *= 2;
    }
    if (ferror(f)) {
        free(buf);
        return err_errno(err, "cannot read '%s'", path);
    }
    *out = buf;
    *len = n;
    return 0;
}

int json_parse_file(const char *path, JsonValue **out, Error *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return err_errno(err, "cannot open '%s'", path);
    char *text = NULL;
    size_t len = 0;
    int rc = read_all(f, path, &text, &len, err);
    fclose(f); /* read-only: nothing to lose on a failed close */
    if (rc) return -1;
    rc = json_parse(text, len, out, err);
    free(text);
    if (rc) err_prefix(err, "'%s'", path);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Accessors                                                                 */

const JsonValue *json_get(const JsonValue *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    size_t k = strlen(key);
    for (size_t i = 0; i < obj->n_members; i++) {
        const JsonMember *m = &obj->members[i];
        if (m->key_len == k && memcmp(m->key, key, k) == 0) return &m->value;
    }
    return NULL;
}

const JsonValue *json_at(const JsonValue *arr, size_t i) {
    if (!arr || arr->type != JSON_ARRAY || i >= arr->n_items) return NULL;
    return &arr->items[i];
}

size_t json_len(const JsonValue *v) {
    if (!v) return 0;
    return v->type == JSON_ARRAY ? v->n_items : v->type == JSON_OBJECT ? v->n_members : 0;
}

const char *json_str(const JsonValue *v) { return v && v->type == JSON_STRING ? v->string : NULL; }

bool json_int(const JsonValue *v, long long *out) {
    if (!v || v->type != JSON_NUMBER || !v->is_integer) return false;
    if (out) *out = v->integer;
    return true;
}

const char *json_type_name(JsonType t) {
    static const char *const names[] = {"null", "bool", "number", "string", "array", "object"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                   */

typedef void (*PutFn)(void *ctx, const char *s, size_t n);

/* Emits s[0, n) as a quoted JSON string through put, copying runs of bytes
 * that need no escape in one call. */
static void escape_string(const char *s, size_t n, PutFn put, void *ctx) {
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0;
    put(ctx, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        char esc[8] = {0};
        if (c >= 0x80) {
            size_t k = utf8_decode(u + i, n - i, NULL);
            if (k) {
                i += k;
                continue;
            }
            memcpy(esc, "\\ufffd", 7);
        } else if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
        } else if (c < 0x20) {
            const char *shortform = c == '\n'   ? "\\n"
                                    : c == '\r' ? "\\r"
                                    : c == '\t' ? "\\t"
                                    : c == '\b' ? "\\b"
                                    : c == '\f' ? "\\f"
                                                : NULL;
            if (shortform)
                memcpy(esc, shortform, 3);
            else
                snprintf(esc, sizeof esc, "\\u%04x", c);
        } else {
            i++;
            continue;
        }
        put(ctx, s + run, i - run);
        put(ctx, esc, strlen(esc));
        run = ++i;
    }
    put(ctx, s + run, n - run);
    put(ctx, "\"", 1);
}

static void put_file(void *ctx, const char *s, size_t n) {
    if (n) fwrite(s, 1, n, (FILE *)ctx); /* errors stay in the stream's flag */
}

static void put_strbuf(void *ctx, const char *s, size_t n) { sb_append((StrBuf *)ctx, s, n); }

void json_write_string(FILE *f, const char *s) { escape_string(s, strlen(s), put_file, f); }

void sb_init(StrBuf *b) { memset(b, 0, sizeof *b); }

void sb_free(StrBuf *b) {
    free(b->data);
    sb_init(b);
}

/* Ensures room for `extra` more bytes plus the NUL. */
static int sb_reserve(StrBuf *b, size_t extra) {
    if (b->failed) return -1;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->failed = true;
        return -1;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->failed = true;
        return -1;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

int sb_append(StrBuf *b, const char *s, size_t n) {
    if (sb_reserve(b, n)) return -1;
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int sb_appendf(StrBuf *b, const char *fmt, ...) {
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    int rc = -1;
    if (n < 0)
        b->failed = true;
    else if (sb_reserve(b, (size_t)n) == 0) {
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
        b->len += (size_t)n;
        rc = 0;
    }
    va_end(again);
    return rc;
}

int sb_append_json_string(StrBuf *b, const char *s, size_t n) {
    escape_string(s, n, put_strbuf, b);
    return b->failed ? -1 : 0;
}

/* The shortest %.*g form (15 to 17 digits) that reads back as x. */
static int append_double(StrBuf *b, double x) {
    char buf[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, x);
        if (strtod(buf, NULL) == x) break;
    }
    /* "3" or "-0" would read back as an integer (and -0 as 0): a fraction keeps it a real */
    if (!strpbrk(buf, ".eEn")) strcat(buf, ".0");
    return sb_append(b, buf, strlen(buf));
}

int json_serialize(StrBuf *b, const JsonValue *v) {
    switch (v->type) {
    case JSON_NULL: return sb_append(b, "null", 4);
    case JSON_BOOL: return v->boolean ? sb_append(b, "true", 4) : sb_append(b, "false", 5);
    case JSON_NUMBER: return v->is_integer ? sb_appendf(b, "%lld", v->integer) : append_double(b, v->number);
    case JSON_STRING: return sb_append_json_string(b, v->string, v->string_len);
    case JSON_ARRAY:
        sb_append(b, "[", 1);
        for (size_t i = 0; i < v->n_items; i++) {
            if (i) sb_append(b, ",", 1);
            json_serialize(b, &v->items[i]);
        }
        return sb_append(b, "]", 1);
    case JSON_OBJECT:
        sb_append(b, "{", 1);
        for (size_t i = 0; i < v->n_members; i++) {
            if (i) sb_append(b, ",", 1);
            sb_append_json_string(b, v->members[i].key, v->members[i].key_len);
            sb_append(b, ":", 1);
            json_serialize(b, &v->members[i].value);
        }
        return sb_append(b, "}", 1);
    }
    return sb_append(b, "null", 4);
}
