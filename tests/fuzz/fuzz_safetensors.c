/* fuzz_safetensors.c — the safetensors reader (header JSON, dtypes, shapes,
 * offsets against the file's size) and reading every tensor as f32. */
#include "../../src/core/safetensors.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    StFile f;
    Error err = {0};
    if (st_open(&f, fuzz_file(data, size, 0), &err)) return 0;
    static float out[1 << 16];
    for (size_t i = 0; st_tensor(&f, i); i++) {
        const StTensorInfo *t = st_tensor(&f, i);
        st_read_as(&f, t, ST_F32, out, sizeof out / sizeof *out, &err);
    }
    st_meta(&f, "format");
    st_close(&f);
    return 0;
}
