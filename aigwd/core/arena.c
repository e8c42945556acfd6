/* aigwd/core/arena.c: see arena.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"

struct aigw_arena_chunk {
    aigw_arena_chunk_t *next;
    size_t cap;
    size_t used;
    size_t pad_;                /* keeps data 16-byte aligned on LP64 */
    _Alignas(16) unsigned char data[];
};

void aigw_arena_pool_init(aigw_arena_pool_t *p, size_t chunk_size, size_t max_free)
{
    p->free = NULL;
    p->nfree = 0;
    p->max_free = max_free;
    p->chunk_size = chunk_size;
}

void aigw_arena_pool_free(aigw_arena_pool_t *p)
{
    while (p->free) {
        aigw_arena_chunk_t *c = p->free;
        p->free = c->next;
        free(c);
    }
    p->nfree = 0;
}

void aigw_arena_init(aigw_arena_t *a, aigw_arena_pool_t *pool)
{
    a->pool = pool;
    a->head = NULL;
    a->cleanups = NULL;
    a->allocated = 0;
}

static size_t default_chunk(const aigw_arena_t *a)
{
    return a->pool ? a->pool->chunk_size : 4096;
}

static aigw_arena_chunk_t *chunk_get(aigw_arena_t *a, size_t need)
{
    size_t std = default_chunk(a);
    aigw_arena_chunk_t *c;
    if (need <= std && a->pool && a->pool->free) {
        c = a->pool->free;
        a->pool->free = c->next;
        a->pool->nfree--;
    } else {
        size_t cap = need > std ? need : std;
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->cap = cap;
    }
    c->used = 0;
    c->next = a->head;
    a->head = c;
    return c;
}

void *aigw_arena_alloc(aigw_arena_t *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    aigw_arena_chunk_t *c = a->head;
    if (!c || c->cap - c->used < n) {
        /* A big block gets its own chunk, placed behind the current one so the current one
         * keeps serving small allocations. */
        if (c && n > default_chunk(a) / 4) {
            aigw_arena_chunk_t *big = chunk_get(a, n);
            if (!big)
                return NULL;
            a->head = big->next;
            big->next = c->next;
            c->next = big;
            big->used = n;
            a->allocated += n;
            return big->data;
        }
        c = chunk_get(a, n);
        if (!c)
            return NULL;
    }
    void *p = c->data + c->used;
    c->used += n;
    a->allocated += n;
    return p;
}

char *aigw_arena_strndup(aigw_arena_t *a, const char *s, size_t n)
{
    char *p = aigw_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

int aigw_arena_on_reset(aigw_arena_t *a, void (*fn)(void *), void *ud)
{
    aigw_arena_cleanup_t *cl = aigw_arena_alloc(a, sizeof(*cl));
    if (!cl)
        return -1;
    cl->fn = fn;
    cl->ud = ud;
    cl->next = a->cleanups;
    a->cleanups = cl;
    return 0;
}

void aigw_arena_reset(aigw_arena_t *a)
{
    /* Cleanups live in the arena itself: run them all before releasing any chunk. */
    while (a->cleanups) {
        aigw_arena_cleanup_t *cl = a->cleanups;
        a->cleanups = cl->next;
        cl->fn(cl->ud);
    }
    while (a->head) {
        aigw_arena_chunk_t *c = a->head;
        a->head = c->next;
        aigw_arena_pool_t *p = a->pool;
        if (p && c->cap == p->chunk_size && p->nfree < p->max_free) {
            c->next = p->free;
            p->free = c;
            p->nfree++;
        } else {
            free(c);
        }
    }
    a->allocated = 0;
}
