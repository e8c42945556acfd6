/* aigwd/core/arena.h: per-request memory. Everything a request allocates comes from its arena
 * and is released at once when the request ends; other resources register a cleanup.
 * Chunks come from a per-worker pool, so a busy worker does not call malloc per request.
 * One thread only: an arena and its pool belong to one worker loop. */
#ifndef AIGW_CORE_ARENA_H
#define AIGW_CORE_ARENA_H
#include <stddef.h>
#include "common/str.h"

typedef struct aigw_arena_chunk aigw_arena_chunk_t;

typedef struct aigw_arena_pool {
    aigw_arena_chunk_t *free;   /* recycled chunks of chunk_size */
    size_t nfree, max_free;
    size_t chunk_size;
} aigw_arena_pool_t;

typedef struct aigw_arena_cleanup {
    void (*fn)(void *ud);
    void *ud;
    struct aigw_arena_cleanup *next;
} aigw_arena_cleanup_t;

typedef struct aigw_arena {
    aigw_arena_pool_t *pool;    /* borrowed; NULL means plain malloc/free */
    aigw_arena_chunk_t *head;
    aigw_arena_cleanup_t *cleanups;
    size_t allocated;           /* bytes handed out, for /status */
} aigw_arena_t;

void aigw_arena_pool_init(aigw_arena_pool_t *p, size_t chunk_size, size_t max_free);
void aigw_arena_pool_free(aigw_arena_pool_t *p);

void aigw_arena_init(aigw_arena_t *a, aigw_arena_pool_t *pool);
/* Runs cleanups (last registered first), returns chunks to the pool. a may be reused. */
void aigw_arena_reset(aigw_arena_t *a);

/* 16-byte aligned; NULL only when malloc fails. Never freed individually. */
void *aigw_arena_alloc(aigw_arena_t *a, size_t n);
char *aigw_arena_strndup(aigw_arena_t *a, const char *s, size_t n);   /* NUL-terminated */
/* Registers fn(ud) to run at reset. -1 when out of memory (fn not registered). */
int aigw_arena_on_reset(aigw_arena_t *a, void (*fn)(void *), void *ud);

#endif
