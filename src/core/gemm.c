/* gemm.c — what gemm.h's backends share. */
#include <string.h>

#include "gemm.h"

int precision_parse(const char *name, Precision *out) {
    if (!strcmp(name, "fp32")) *out = PRECISION_FP32;
    else if (!strcmp(name, "bf16")) *out = PRECISION_BF16;
    else return -1;
    return 0;
}
