/* fuzz_json.c — the JSON parser, and that what it parses serializes to text
 * it parses again to the same serialization. */
#include <string.h>

#include "../../src/core/json.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    JsonValue *v = NULL, *again = NULL;
    Error err = {0};
    if (json_parse((const char *)data, size, &v, &err)) return 0;
    StrBuf a, b;
    sb_init(&a);
    sb_init(&b);
    if (json_serialize(&a, v) == 0 && !a.failed) {
        if (json_parse(a.data, a.len, &again, &err)) abort(); /* its own output must parse */
        if (json_serialize(&b, again) || b.len != a.len || memcmp(a.data, b.data, a.len)) abort();
        json_free(again);
    }
    sb_free(&a);
    sb_free(&b);
    json_free(v);
    return 0;
}
