/* test_json.c — the JSON parser and writers of src/core/json.c: every value
 * type, escapes and surrogate pairs, serialize -> parse round trips, and one
 * case per class of error with the exact message and byte offset. */
#include <stdlib.h>
#include <string.h>

#include "../src/core/json.h"
#include "test.h"

static JsonValue *parse_ok(const char *text) {
    Error err = {{0}};
    JsonValue *v = NULL;
    if (json_parse(text, strlen(text), &v, &err)) {
        printf("    unexpected error for %s: %s\n", text, err.msg);
        return NULL;
    }
    return v;
}

/* Parses text, which must fail with exactly the message want. */
static int parse_fails(const char *text, size_t len, const char *want) {
    Error err = {{0}};
    JsonValue *v = (JsonValue *)1;
    int rc = json_parse(text, len, &v, &err);
    if (rc == 0) {
        json_free(v);
        printf("    '%.*s' parsed but should fail with: %s\n", (int)len, text, want);
        return 0;
    }
    if (v != NULL || strcmp(err.msg, want) != 0) {
        printf("    '%.*s': got \"%s\", want \"%s\"\n", (int)len, text, err.msg, want);
        return 0;
    }
    return 1;
}

static bool json_equal(const JsonValue *a, const JsonValue *b) {
    if (a->type != b->type) return false;
    switch (a->type) {
    case JSON_NULL: return true;
    case JSON_BOOL: return a->boolean == b->boolean;
    case JSON_NUMBER: return a->number == b->number && (!a->is_integer || !b->is_integer || a->integer == b->integer);
    case JSON_STRING: return a->string_len == b->string_len && memcmp(a->string, b->string, a->string_len) == 0;
    case JSON_ARRAY:
        if (a->n_items != b->n_items) return false;
        for (size_t i = 0; i < a->n_items; i++)
            if (!json_equal(&a->items[i], &b->items[i])) return false;
        return true;
    case JSON_OBJECT:
        if (a->n_members != b->n_members) return false;
        for (size_t i = 0; i < a->n_members; i++) {
            const JsonMember *x = &a->members[i], *y = &b->members[i];
            if (x->key_len != y->key_len || memcmp(x->key, y->key, x->key_len) || !json_equal(&x->value, &y->value))
                return false;
        }
        return true;
    }
    return false;
}

/* text -> tree -> compact text (must equal `compact`) -> equal tree. */
static int round_trip(const char *text, const char *compact) {
    JsonValue *a = parse_ok(text), *b = NULL;
    if (!a) return 0;
    StrBuf sb;
    sb_init(&sb);
    int ok = json_serialize(&sb, a) == 0 && strcmp(sb.data, compact) == 0;
    if (!ok) printf("    serialized %s as %s, want %s\n", text, sb.data ? sb.data : "(null)", compact);
    if (ok) {
        b = parse_ok(sb.data);
        ok = b && json_equal(a, b);
        if (!ok) printf("    %s does not parse back to the same tree\n", sb.data);
    }
    sb_free(&sb);
    json_free(a);
    json_free(b);
    return ok;
}

TEST(json_scalars) {
    JsonValue *v;
    REQUIRE((v = parse_ok(" null ")), "null");
    CHECK(v->type == JSON_NULL && v->offset == 1, "null type/offset");
    json_free(v);
    REQUIRE((v = parse_ok("true")), "true");
    CHECK(v->type == JSON_BOOL && v->boolean, "true");
    json_free(v);
    REQUIRE((v = parse_ok("\tfalse\r\n")), "false");
    CHECK(v->type == JSON_BOOL && !v->boolean, "false");
    json_free(v);
    REQUIRE((v = parse_ok("\"hi\"")), "string");
    CHECK(v->type == JSON_STRING && v->string_len == 2 && strcmp(json_str(v), "hi") == 0, "string");
    json_free(v);
}

TEST(json_numbers) {
    struct {
        const char *text;
        double number;
        bool is_integer;
        long long integer;
    } cases[] = {
        {"0", 0, true, 0},
        {"-0", -0.0, true, 0},
        {"42", 42, true, 42},
        {"-17", -17, true, -17},
        {"9223372036854775807", 9223372036854775807.0, true, 9223372036854775807LL},
        {"-9223372036854775808", -9223372036854775808.0, true, (-9223372036854775807LL - 1)},
        {"9223372036854775808", 9223372036854775808.0, false, 0},
        {"18446744073709551616", 18446744073709551616.0, false, 0},
        {"1.5", 1.5, false, 0},
        {"-0.25", -0.25, false, 0},
        {"1e3", 1000, false, 0},
        {"1E+3", 1000, false, 0},
        {"2.5e-3", 2.5e-3, false, 0},
        {"1.0", 1.0, false, 0},
        {"1e-400", 0.0, false, 0}, /* underflow to zero is allowed */
        {"1.7976931348623157e308", 1.7976931348623157e308, false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        JsonValue *v = parse_ok(cases[i].text);
        REQUIRE(v, "%s", cases[i].text);
        long long x = 0;
        CHECK(v->type == JSON_NUMBER, "%s: type", cases[i].text);
        CHECK(v->number == cases[i].number, "%s: number %.17g", cases[i].text, v->number);
        CHECK(v->is_integer == cases[i].is_integer, "%s: is_integer %d", cases[i].text, v->is_integer);
        CHECK(json_int(v, &x) == cases[i].is_integer, "%s: json_int", cases[i].text);
        if (cases[i].is_integer) CHECK(x == cases[i].integer && v->integer == x, "%s: integer %lld", cases[i].text, x);
        json_free(v);
    }
    JsonValue *v = parse_ok("-0");
    REQUIRE(v, "-0");
    CHECK(signbit(v->number), "-0 keeps its sign as a double");
    json_free(v);
}

TEST(json_containers) {
    const char *text =
        " { \"a\" : [1, 2.5, \"x\", null, true, false, [], {}],\n \"b\": {\"c\": {\"d\": [[0]]}}, \"\": 7 } ";
    JsonValue *v = parse_ok(text);
    REQUIRE(v, "parse");
    CHECK(v->type == JSON_OBJECT && json_len(v) == 3, "three members");
    CHECK(strcmp(v->members[0].key, "a") == 0 && strcmp(v->members[1].key, "b") == 0 && v->members[2].key_len == 0,
          "members in text order");
    CHECK(v->members[0].key_offset == 3, "key offset %zu", v->members[0].key_offset);
    const JsonValue *a = json_get(v, "a");
    REQUIRE(a && a->type == JSON_ARRAY && json_len(a) == 8, "array a");
    CHECK(json_at(a, 0)->integer == 1 && json_at(a, 1)->number == 2.5, "numbers");
    CHECK(strcmp(json_str(json_at(a, 2)), "x") == 0, "string item");
    CHECK(json_at(a, 3)->type == JSON_NULL && json_at(a, 4)->boolean && !json_at(a, 5)->boolean, "literals");
    CHECK(json_at(a, 6)->type == JSON_ARRAY && json_len(json_at(a, 6)) == 0, "empty array");
    CHECK(json_at(a, 7)->type == JSON_OBJECT && json_len(json_at(a, 7)) == 0, "empty object");
    CHECK(json_at(a, 8) == NULL, "past the end");
    CHECK(json_at(a, 1)->offset == 13, "item offset %zu", json_at(a, 1)->offset);
    const JsonValue *d = json_get(json_get(json_get(v, "b"), "c"), "d");
    CHECK(d && json_at(json_at(d, 0), 0)->integer == 0, "nested lookup");
    long long seven;
    CHECK(json_int(json_get(v, ""), &seven) && seven == 7, "empty key");
    /* lookups that find nothing */
    CHECK(json_get(v, "zz") == NULL, "absent key");
    CHECK(json_get(a, "a") == NULL && json_get(NULL, "a") == NULL, "json_get on a non-object");
    CHECK(json_at(v, 0) == NULL && json_at(NULL, 0) == NULL, "json_at on a non-array");
    CHECK(json_str(a) == NULL && !json_int(a, NULL) && json_len(json_at(a, 0)) == 0, "wrong-type accessors");
    CHECK(strcmp(json_type_name(JSON_OBJECT), "object") == 0 && strcmp(json_type_name(JSON_NULL), "null") == 0,
          "type names");
    json_free(v);
    json_free(NULL);
}

TEST(json_length_is_respected) {
    Error err = {{0}};
    JsonValue *v;
    REQUIRE(json_parse("12345", 2, &v, &err) == 0, "%s", err.msg);
    CHECK(v->integer == 12, "only two bytes read: %lld", v->integer);
    json_free(v);
    REQUIRE(json_parse("[1]garbage", 3, &v, &err) == 0, "%s", err.msg);
    CHECK(json_len(v) == 1, "array");
    json_free(v);
    char unterminated[4] = {'"', 'a', 'b', '"'};
    REQUIRE(json_parse(unterminated, 4, &v, &err) == 0, "%s", err.msg);
    CHECK(strcmp(v->string, "ab") == 0, "string without a NUL after the text");
    json_free(v);
    CHECK(parse_fails(unterminated, 3, "JSON: unterminated string at byte 0"), "cut string");
    CHECK(parse_fails(NULL, 0, "JSON: expected a value at byte 0"), "NULL, 0");
}

TEST(json_escapes) {
    JsonValue *v =
        parse_ok("\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t A\\u0041 e\\u00e9 E\\u20AC g\\ud83d\\ude00 z\\u0000z\"");
    REQUIRE(v, "parse");
    const char want[] = "q\" b\\ s/ \b\f\n\r\t AA e\xc3\xa9 E\xe2\x82\xac g\xf0\x9f\x98\x80 z\0z";
    CHECK(v->string_len == sizeof want - 1, "length %zu, want %zu", v->string_len, sizeof want - 1);
    CHECK(memcmp(v->string, want, sizeof want) == 0, "decoded bytes (including the NUL terminator)");
    json_free(v);
    /* raw UTF-8 is kept as is; the largest code point by escape and raw */
    REQUIRE((v = parse_ok("\"\xe6\x97\xa5\xe6\x9c\xac \\udbff\\udfff \xf4\x8f\xbf\xbf\"")), "utf-8");
    CHECK(strcmp(v->string, "\xe6\x97\xa5\xe6\x9c\xac \xf4\x8f\xbf\xbf \xf4\x8f\xbf\xbf") == 0, "utf-8 bytes");
    json_free(v);
    /* keys are decoded like strings */
    REQUIRE((v = parse_ok("{\"a\\u0000b\": 1, \"a\": 2}")), "NUL in a key");
    CHECK(v->members[0].key_len == 3 && json_get(v, "a")->integer == 2,
          "json_get does not match \"a\\u0000b\" for \"a\"");
    json_free(v);
}

TEST(json_round_trips) {
    CHECK(round_trip("null", "null"), "null");
    CHECK(round_trip(" true ", "true"), "true");
    CHECK(round_trip("false", "false"), "false");
    CHECK(round_trip("-9223372036854775808", "-9223372036854775808"), "int64 min");
    CHECK(round_trip("0.1", "0.1"), "0.1 shortest form");
    CHECK(round_trip("1e300", "1e+300"), "1e300");
    CHECK(round_trip("-2.5E-3", "-0.0025"), "exponent");
    CHECK(round_trip("0.30000000000000004", "0.30000000000000004"), "17 digits");
    CHECK(round_trip("\"a\\u0000\\u001F\\n\\\"\\\\/\\u00e9\"", "\"a\\u0000\\u001f\\n\\\"\\\\/\xc3\xa9\""), "string");
    CHECK(round_trip("[ ]", "[]"), "empty array");
    CHECK(round_trip("{ }", "{}"), "empty object");
    CHECK(round_trip("{\"k\": [1, {\"x\": null, \"y\": [true, false]}, \"s\", -0.5], \"\\ud83d\\ude00\": {}}",
                     "{\"k\":[1,{\"x\":null,\"y\":[true,false]},\"s\",-0.5],\"\xf0\x9f\x98\x80\":{}}"),
          "nested");
}

TEST(json_write_string_escapes) {
    char path[600];
    snprintf(path, sizeof path, "%s/s.json", test_tmpdir());
    FILE *f = fopen(path, "wb");
    REQUIRE(f, "cannot create %s", path);
    json_write_string(f, "plain");
    fputc(',', f);
    json_write_string(f, "q\"b\\n\n t\t r\r b\b f\f c\x01\x1f del\x7f \xc3\xa9 \xf0\x9f\x98\x80");
    fputc(',', f);
    json_write_string(f, "bad\xff\xc3(\xed\xa0\x80!");
    fputc(',', f);
    json_write_string(f, "");
    REQUIRE(fclose(f) == 0, "close");
    char buf[512] = {0};
    f = fopen(path, "rb");
    REQUIRE(f, "reopen");
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    const char *want =
        "\"plain\",\"q\\\"b\\\\n\\n t\\t r\\r b\\b f\\f c\\u0001\\u001f del\x7f \xc3\xa9 \xf0\x9f\x98\x80\","
        "\"bad\\ufffd\\ufffd(\\ufffd\\ufffd\\ufffd!\",\"\"";
    CHECK(n == strlen(want) && memcmp(buf, want, n) == 0, "wrote %s\n    want %s", buf, want);
    /* the output is valid JSON that reads back as the input (valid UTF-8 parts) */
    Error err = {{0}};
    JsonValue *v;
    char arr[600];
    snprintf(arr, sizeof arr, "[%.*s]", (int)n, buf);
    REQUIRE(json_parse(arr, strlen(arr), &v, &err) == 0, "%s: %s", arr, err.msg);
    CHECK(json_len(v) == 4 && strcmp(json_str(json_at(v, 1)),
                                     "q\"b\\n\n t\t r\r b\b f\f c\x01\x1f del\x7f \xc3\xa9 \xf0\x9f\x98\x80") == 0,
          "read back");
    CHECK(strcmp(json_str(json_at(v, 2)), "bad\xef\xbf\xbd\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd!") == 0,
          "invalid bytes became U+FFFD");
    json_free(v);
}

TEST(json_strbuf) {
    StrBuf b;
    sb_init(&b);
    CHECK(b.data == NULL && b.len == 0, "empty");
    for (int i = 0; i < 1000; i++) REQUIRE(sb_appendf(&b, "%d,", i) == 0, "appendf");
    CHECK(b.len == 3890 && strlen(b.data) == b.len, "length %zu", b.len);
    CHECK(strncmp(b.data, "0,1,2,", 6) == 0 && strcmp(b.data + b.len - 4, "999,") == 0, "content");
    REQUIRE(sb_append(&b, "x\0y", 3) == 0, "append with a NUL");
    CHECK(b.len == 3893 && b.data[b.len] == 0, "NUL-terminated");
    sb_free(&b);
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0, "freed");
    REQUIRE(sb_append_json_string(&b, "a\0b", 3) == 0, "json string");
    CHECK(strcmp(b.data, "\"a\\u0000b\"") == 0, "got %s", b.data);
    sb_free(&b);
}

TEST(json_utf8_validation) {
    CHECK(json_utf8_valid("", 0) && json_utf8_valid("abc", 3), "ascii");
    CHECK(json_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf", 13), "2, 3, 4 bytes, U+10FFFF");
    CHECK(!json_utf8_valid("\xc3", 1), "cut sequence");
    CHECK(!json_utf8_valid("\xc0\xaf", 2) && !json_utf8_valid("\xe0\x80\xaf", 3), "overlong");
    CHECK(!json_utf8_valid("\xed\xa0\x80", 3), "surrogate");
    CHECK(!json_utf8_valid("\xf4\x90\x80\x80", 4) && !json_utf8_valid("\xf8\x88\x80\x80\x80", 5), "above U+10FFFF");
    CHECK(!json_utf8_valid("\x80", 1) && !json_utf8_valid("\xc3\x28", 2), "stray continuation, bad continuation");
}

#define FAILS(text, msg) CHECK(parse_fails(text, sizeof(text) - 1, msg), "%s", text)

TEST(json_errors_structure) {
    FAILS("", "JSON: expected a value at byte 0");
    FAILS("   ", "JSON: expected a value at byte 3");
    FAILS("1 2", "JSON: expected end of input at byte 2");
    FAILS("{} x", "JSON: expected end of input at byte 3");
    FAILS("{\"a\":1", "JSON: expected ',' or '}' at byte 6");
    FAILS("{\"a\":1 \"b\":2}", "JSON: expected ',' or '}' at byte 7");
    FAILS("[1 2]", "JSON: expected ',' or ']' at byte 3");
    FAILS("[1,", "JSON: expected a value at byte 3");
    FAILS("[1,]", "JSON: expected a value at byte 3");
    FAILS("[", "JSON: expected a value at byte 1");
    FAILS("]", "JSON: expected a value at byte 0");
    FAILS("{\"a\":1,}", "JSON: expected a string key at byte 7");
    FAILS("{1:2}", "JSON: expected a string key or '}' at byte 1");
    FAILS("{'a':2}", "JSON: expected a string key or '}' at byte 1");
    FAILS("{\"a\" 1}", "JSON: expected ':' at byte 5");
    FAILS("{\"a\":}", "JSON: expected a value at byte 5");
    FAILS("tru", "JSON: expected 'true' at byte 0");
    FAILS("[nul]", "JSON: expected 'null' at byte 1");
    FAILS("falsy", "JSON: expected 'false' at byte 0");
    FAILS("True", "JSON: expected a value at byte 0");
    FAILS("NaN", "JSON: expected a value at byte 0");
    FAILS("// c\n1", "JSON: expected a value at byte 0");
    FAILS("\xef\xbb\xbf{}", "JSON: expected a value at byte 0"); /* byte order mark */
    FAILS("[1]\0", "JSON: expected end of input at byte 3");
    FAILS("\f1", "JSON: expected a value at byte 0"); /* form feed is not JSON whitespace */
}

TEST(json_errors_numbers) {
    FAILS("01", "JSON: leading zero in number at byte 0");
    FAILS("-012", "JSON: leading zero in number at byte 1");
    FAILS("-", "JSON: expected a digit at byte 1");
    FAILS("-a", "JSON: expected a digit at byte 1");
    FAILS("1.", "JSON: expected a digit at byte 2");
    FAILS("1.e5", "JSON: expected a digit at byte 2");
    FAILS("1e", "JSON: expected a digit at byte 2");
    FAILS("1e+", "JSON: expected a digit at byte 3");
    FAILS("+1", "JSON: expected a value at byte 0");
    FAILS(".5", "JSON: expected a value at byte 0");
    FAILS("0x10", "JSON: expected end of input at byte 1");
    FAILS("Infinity", "JSON: expected a value at byte 0");
    FAILS("[1e999]", "JSON: number out of range at byte 1");
    FAILS("-1e400", "JSON: number out of range at byte 0");
}

TEST(json_errors_strings) {
    FAILS("\"abc", "JSON: unterminated string at byte 0");
    FAILS("[\"a\\\"]", "JSON: unterminated string at byte 1");
    FAILS("\"a\nb\"", "JSON: unescaped control character in string at byte 2");
    FAILS("\"a\tb\"", "JSON: unescaped control character in string at byte 2");
    FAILS("\"\\q\"", "JSON: invalid escape (expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u) at byte 1");
    FAILS("\"\\x41\"", "JSON: invalid escape (expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u) at byte 1");
    FAILS("\"\\u12G4\"", "JSON: expected 4 hex digits after \\u at byte 3");
    FAILS("\"\\u12\"", "JSON: expected 4 hex digits after \\u at byte 3");
    FAILS("\"\\ud800\"", "JSON: unpaired UTF-16 surrogate \\uD800 at byte 1");
    FAILS("\"x\\udc00\"", "JSON: unpaired UTF-16 surrogate \\uDC00 at byte 2");
    FAILS("\"\\ud800\\u0041\"", "JSON: unpaired UTF-16 surrogate \\uD800 at byte 1");
    FAILS("\"\\ud800\\ud800\"", "JSON: unpaired UTF-16 surrogate \\uD800 at byte 1");
    FAILS("\"\\ud800x\"", "JSON: unpaired UTF-16 surrogate \\uD800 at byte 1");
    /* invalid UTF-8 inside strings */
    FAILS("\"a\xff\"", "JSON: invalid UTF-8 at byte 2");
    FAILS("\"\xc3\x28\"", "JSON: invalid UTF-8 at byte 1");
    FAILS("\"\xc0\xaf\"", "JSON: invalid UTF-8 at byte 1");
    FAILS("\"\xed\xa0\x80\"", "JSON: invalid UTF-8 at byte 1");
    FAILS("\"\xf4\x90\x80\x80\"", "JSON: invalid UTF-8 at byte 1");
    FAILS("\"\xe2\x82\"", "JSON: invalid UTF-8 at byte 1");
    FAILS("{\"k\xe9y\": 1}", "JSON: invalid UTF-8 at byte 3");
    /* and outside them */
    FAILS("[1,\xc3\xa9]", "JSON: expected a value at byte 3");
}

TEST(json_errors_depth_and_duplicates) {
    char deep[200];
    memset(deep, '[', 64);
    memset(deep + 64, ']', 64);
    JsonValue *v = NULL;
    Error err = {{0}};
    CHECK(json_parse(deep, 128, &v, &err) == 0, "64 levels are fine: %s", err.msg);
    json_free(v);
    memset(deep, '[', 65);
    memset(deep + 65, ']', 65);
    CHECK(parse_fails(deep, 130, "JSON: nesting deeper than 64 levels at byte 64"), "65 levels");
    char objs[1000] = "";
    for (int i = 0; i < 65; i++) strcat(objs, "{\"a\":");
    strcat(objs, "1");
    for (int i = 0; i < 65; i++) strcat(objs, "}");
    CHECK(parse_fails(objs, strlen(objs), "JSON: nesting deeper than 64 levels at byte 320"), "65 objects");

    FAILS("{\"a\":1,\"a\":2}", "JSON: duplicate key \"a\" at byte 7");
    FAILS("{\"x\":{\"b\":1,\"c\":2,\"b\":3}}", "JSON: duplicate key \"b\" at byte 18");
    FAILS("{\"\\u0061\":1,\"a\":2}", "JSON: duplicate key \"a\" at byte 12"); /* equal after decoding */
    /* many keys: the first repeat in text order is named */
    char big[4000] = "{";
    for (int i = 0; i < 200; i++) snprintf(big + strlen(big), sizeof big - strlen(big), "\"k%d\":%d,", i, i);
    size_t at = strlen(big);
    strcat(big, "\"k150\":0,\"k7\":0}");
    char want[100];
    snprintf(want, sizeof want, "JSON: duplicate key \"k150\" at byte %zu", at);
    CHECK(parse_fails(big, strlen(big), want), "duplicate among 200 keys");
    JsonValue *same = parse_ok("{\"a\":{\"a\":1},\"b\":[{\"a\":1},{\"a\":2}]}");
    CHECK(same != NULL, "the same key in different objects is fine");
    json_free(same);
}

TEST(json_parse_file_errors) {
    char path[600];
    const char *dir = test_tmpdir();
    snprintf(path, sizeof path, "%s/missing.json", dir);
    JsonValue *v = NULL;
    Error err = {{0}};
    CHECK(json_parse_file(path, &v, &err) == -1 && v == NULL, "missing file");
    CHECK(strstr(err.msg, "cannot open") && strstr(err.msg, path), "message: %s", err.msg);
    snprintf(path, sizeof path, "%s/bad.json", dir);
    FILE *f = fopen(path, "wb");
    REQUIRE(f, "create");
    fputs("{\"a\": [1, 2,]}", f);
    REQUIRE(fclose(f) == 0, "close");
    CHECK(json_parse_file(path, &v, &err) == -1, "bad file");
    char want[700];
    snprintf(want, sizeof want, "'%s': JSON: expected a value at byte 12", path);
    CHECK(strcmp(err.msg, want) == 0, "message: %s", err.msg);
    /* a file larger than the first read buffer */
    f = fopen(path, "wb");
    REQUIRE(f, "create");
    fputc('[', f);
    for (int i = 0; i < 5000; i++) fprintf(f, "%d,", i);
    fputs("5000]", f);
    REQUIRE(fclose(f) == 0, "close");
    REQUIRE(json_parse_file(path, &v, &err) == 0, "%s", err.msg);
    CHECK(json_len(v) == 5001 && json_at(v, 5000)->integer == 5000, "large file");
    json_free(v);
}

/* Found by fuzzing (tests/fuzz/fuzz_json.c): the real -0e-0 was serialized
 * as "-0", which reads back as the integer 0. Reals keep a fraction. */
TEST(json_reals_serialize_as_reals) {
    static const char *const cases[][2] = {{"-0e-0", "-0.0"}, {"3.0", "3.0"}, {"2.5", "2.5"}, {"1e300", "1e+300"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        JsonValue *v = NULL, *again = NULL;
        Error err = {0};
        StrBuf a, b;
        sb_init(&a);
        sb_init(&b);
        CHECK(json_parse(cases[i][0], strlen(cases[i][0]), &v, &err) == 0 && json_serialize(&a, v) == 0, "%s", err.msg);
        CHECK(strcmp(a.data, cases[i][1]) == 0, "%s serialized as %s, want %s", cases[i][0], a.data, cases[i][1]);
        CHECK(json_parse(a.data, a.len, &again, &err) == 0 && json_serialize(&b, again) == 0 && !strcmp(a.data, b.data) &&
                  !again->is_integer && signbit(again->number) == signbit(v->number),
              "%s read back as %s", a.data, b.data);
        json_free(v);
        json_free(again);
        sb_free(&a);
        sb_free(&b);
    }
}
