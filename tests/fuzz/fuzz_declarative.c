/* tests/fuzz/fuzz_declarative.c: libFuzzer harness for the declarative configuration parser
 * (YAML or JSON text -> validated entities) and the YAML emitter: any input must either parse
 * or fail with an error, never crash or leak; what parses must dump to YAML that parses back
 * to an equal document. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "declarative/declarative.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *doc = NULL;
    aigw_db_error_t err = { 0 };
    if (aigw_declarative_parse((const char *)data, size, &doc, &err) == 0) {
        char *yaml = aigw_yaml_dump(doc);
        if (!yaml)
            abort();
        json_t *back = NULL;
        char why[256];
        if (aigw_yaml_parse(yaml, strlen(yaml), &back, why, sizeof(why)) != 0)
            abort();   /* our own output must read back */
        if (!json_equal(doc, back))
            abort();
        json_decref(back);
        free(yaml);
        json_decref(doc);
    } else if (err.message[0] == '\0') {
        abort();       /* a failure always says why */
    }
    aigw_db_error_clear(&err);
    return 0;
}
