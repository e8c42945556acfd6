/* tests/fuzz/fuzz_common.h: what every libFuzzer harness here shares: the entry point's
 * declaration, UB made fatal (the build does not pass -fno-sanitize-recover in fuzz mode),
 * and CHECK, which traps so libFuzzer keeps the input. Include it from one harness file. */
#ifndef AIGW_FUZZ_COMMON_H
#define AIGW_FUZZ_COMMON_H
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__ubsan_default_options(void);

const char *__ubsan_default_options(void)
{
    return "halt_on_error=1:print_stacktrace=1";
}

#define CHECK(c)                  \
    do {                          \
        if (!(c))                 \
            __builtin_trap();     \
    } while (0)

#endif
