/* fuzz_config.c — the YAML config reader (config_load_yaml, with `base:`
 * files and sections) and the checks of config_finalize. */
#include "../../src/core/config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Config c;
    Error err = {0};
    config_defaults(&c);
    if (config_load_yaml(&c, fuzz_file(data, size, 0), &err) == 0) config_finalize(&c, &err);
    return 0;
}
