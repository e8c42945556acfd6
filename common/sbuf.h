/* common/sbuf.h: a growing, NUL-terminated text buffer on the heap, for building messages,
 * YAML and snapshots off the hot path. Any thread; one buffer per user. An allocation failure
 * sets `oom` and makes every later append a no-op, so callers check once at the end. */
#ifndef AIGW_COMMON_SBUF_H
#define AIGW_COMMON_SBUF_H
#include <stddef.h>

typedef struct aigw_sbuf {
    char *p;        /* owned; NULL until the first append; free() it (or aigw_sbuf_free) */
    size_t n, cap;
    int oom;
} aigw_sbuf_t;

void aigw_sbuf_addn(aigw_sbuf_t *b, const char *s, size_t n);
/* Room for at least n more bytes (and the NUL) without another allocation. */
void aigw_sbuf_reserve(aigw_sbuf_t *b, size_t n);
void aigw_sbuf_add(aigw_sbuf_t *b, const char *s);
void aigw_sbuf_addf(aigw_sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void aigw_sbuf_free(aigw_sbuf_t *b);

#endif
