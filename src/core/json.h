/* json.h — a small, strict JSON parser (RFC 8259) and the helpers to write JSON.
 *
 * json_parse turns text into a tree of JsonValue. Anything RFC 8259 does not
 * allow is an error that says what was expected and at which byte: trailing
 * commas, comments, NaN, leading zeros, unescaped control characters, invalid
 * UTF-8, lone UTF-16 surrogates, text after the value. Two more rules keep a
 * file meaning one thing: a key may appear only once per object, and nesting
 * is limited to JSON_MAX_DEPTH levels. Objects keep their members in text order.
 *
 *     JsonValue *v;
 *     if (json_parse_file("run/vocab.json", &v, &err)) return -1;
 *     const JsonValue *syms = json_get(v, "symbols");      // NULL when absent
 *     for (size_t i = 0; i < json_len(syms); i++) {
 *         long long cp;
 *         if (!json_int(json_at(syms, i), &cp)) ...         // not an exact integer
 *     }
 *     json_free(v);
 *
 * Writing: json_write_string quotes and escapes one string onto a FILE; StrBuf
 * is a growable text buffer (sb_appendf, sb_append_json_string) for building
 * a JSON document in memory, e.g. a safetensors header.
 */
#ifndef SEQLAB_JSON_H
#define SEQLAB_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "error.h"

/* Arrays and objects nested deeper than this are an error. */
#define JSON_MAX_DEPTH 64

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } JsonType;

typedef struct JsonValue JsonValue;
typedef struct JsonMember JsonMember;

/* One value. Only the fields of its type are set; the others are zero. */
struct JsonValue {
    JsonType type;
    bool boolean;      /* JSON_BOOL */
    double number;     /* JSON_NUMBER: the nearest double, always set */
    long long integer; /* JSON_NUMBER: the exact value when is_integer */
    bool is_integer;   /* the literal had no fraction or exponent and fits a long long */
    char *string;      /* JSON_STRING: owned, UTF-8, NUL-terminated */
    size_t string_len; /* bytes before the terminating NUL (the text may hold \u0000) */
    JsonValue *items;  /* JSON_ARRAY: owned, n_items values */
    size_t n_items;
    JsonMember *members; /* JSON_OBJECT: owned, n_members pairs in text order */
    size_t n_members;
    size_t offset; /* byte offset of the value in the parsed text */
};

struct JsonMember {
    char *key;         /* owned, UTF-8, NUL-terminated */
    size_t key_len;    /* bytes, as string_len */
    size_t key_offset; /* byte offset of the key's opening quote */
    JsonValue value;
};

/* Parses exactly len bytes of text (no NUL terminator needed) as one JSON
 * value surrounded by optional whitespace. On success *out is an owned tree
 * (free it with json_free) and 0 is returned. On failure *out is NULL, -1 is
 * returned and err holds e.g. "JSON: expected ',' or '}' at byte 123", where
 * the byte offset counts from the start of text. */
int json_parse(const char *text, size_t len, JsonValue **out, Error *err);

/* Reads and parses the file at path. Errors are those of json_parse prefixed
 * with "'<path>': ", or an I/O error naming the path. */
int json_parse_file(const char *path, JsonValue **out, Error *err);

/* Frees a tree returned by json_parse. NULL is allowed. */
void json_free(JsonValue *v);

/* The value of member `key` (a NUL-terminated string, compared byte for byte)
 * of an object; NULL when obj is NULL, not an object, or has no such key. */
const JsonValue *json_get(const JsonValue *obj, const char *key);

/* Item i of an array; NULL when arr is NULL, not an array, or too short. */
const JsonValue *json_at(const JsonValue *arr, size_t i);

/* Items of an array or members of an object; 0 for anything else and NULL. */
size_t json_len(const JsonValue *v);

/* The string of a JSON_STRING; NULL for anything else and NULL. */
const char *json_str(const JsonValue *v);

/* True when v is a number written as an integer that fits a long long; then
 * stores it in *out (out may be NULL). */
bool json_int(const JsonValue *v, long long *out);

/* "null", "bool", "number", "string", "array" or "object", for messages. */
const char *json_type_name(JsonType t);

/* True when the n bytes at s are valid UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
bool json_utf8_valid(const char *s, size_t n);

/* Writes s as a quoted JSON string: '"' and '\' are escaped, \n \r \t \b \f
 * get their short escapes, other control characters are written \u00XX, and
 * valid UTF-8 is copied as is. s should be valid UTF-8; each byte that is not
 * is written as \ufffd so that the output is always valid JSON. Write errors
 * are left in the stream's error flag (check ferror or fclose). */
void json_write_string(FILE *f, const char *s);

/* A growable, always NUL-terminated text buffer. A failed allocation makes the
 * buffer "failed": later appends do nothing and return -1, so a caller may
 * append many pieces and check once at the end. */
typedef struct {
    char *data;  /* owned; NULL until the first append */
    size_t len;  /* bytes used, without the NUL */
    size_t cap;  /* bytes allocated */
    bool failed; /* an allocation failed */
} StrBuf;

void sb_init(StrBuf *b);
/* Frees the buffer and leaves it empty, as after sb_init. */
void sb_free(StrBuf *b);
/* Appends n bytes. 0 on success, -1 when the buffer is (or becomes) failed. */
int sb_append(StrBuf *b, const char *s, size_t n);
/* Appends printf-formatted text. 0 on success, -1 as sb_append. */
int sb_appendf(StrBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends the n bytes at s as a quoted JSON string, escaped as by
 * json_write_string. 0 on success, -1 as sb_append. */
int sb_append_json_string(StrBuf *b, const char *s, size_t n);

/* Appends v as compact JSON (no spaces). Integers are written exactly; other
 * numbers with the fewest digits (up to 17) that read back as the same
 * double, so json_parse of the output gives back an equal tree. */
int json_serialize(StrBuf *b, const JsonValue *v);

#endif
