/* aigwd/proxy/dns.c: see dns.h.
 *
 * The cache is a chained hash table of entries plus an LRU list. An entry owns its addresses,
 * at most one getaddrinfo request in flight (gai_t, allocated apart so that it can outlive the
 * resolver) and the list of lookups waiting for it. An entry is never evicted while it has a
 * request in flight, waiters, or a callback running with its addresses (busy), so a result's
 * borrowed pointers stay valid for the whole callback. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/dns.h"

#define MAX_NAME 255
#define MAX_ADDRS 32

typedef struct gai gai_t;
typedef struct entry entry_t;

struct aigw_dns_lookup {
    aigw_dns_lookup_t *prev, *next;
    entry_t *e;
    aigw_dns_cb cb;
    void *ud;
};

struct entry {
    entry_t *hnext;                  /* hash chain */
    entry_t *lprev, *lnext;          /* LRU list, most recent first */
    uint32_t hash;
    int status;                      /* AIGW_DNS_* */
    struct sockaddr_storage *addrs;
    size_t n, n4;                    /* n4: how many IPv4 addresses lead addrs */
    uint32_t rr;
    uint64_t expire;                 /* fresh (or negative) until, loop ms */
    uint64_t retry_at;               /* a failed refresh: no new one before */
    gai_t *inflight;
    aigw_dns_lookup_t *whead, *wtail;
    int busy;
    char error[128];
    char name[];
};

struct gai {
    uv_getaddrinfo_t req;
    aigw_dns_t *d;                   /* NULL once the resolver is gone */
    entry_t *e;
};

struct aigw_dns {
    uv_loop_t *loop;
    aigw_dns_opts_t o;
    entry_t **buckets;
    size_t nbuckets, count;
    entry_t *lru_head, *lru_tail;
    int dispatching;
    int freed;
};

void aigw_dns_opts_default(aigw_dns_opts_t *o)
{
    o->valid_ttl_ms = 30000;
    o->stale_ttl_ms = 3600000;
    o->not_found_ttl_ms = 30000;
    o->error_ttl_ms = 1000;
    o->cache_size = 10000;
}

aigw_dns_t *aigw_dns_new(uv_loop_t *loop, const aigw_dns_opts_t *o)
{
    aigw_dns_t *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->loop = loop;
    if (o)
        d->o = *o;
    else
        aigw_dns_opts_default(&d->o);
    if (d->o.cache_size == 0)
        d->o.cache_size = 1;
    d->nbuckets = 64;
    d->buckets = calloc(d->nbuckets, sizeof(*d->buckets));
    if (!d->buckets) {
        free(d);
        return NULL;
    }
    return d;
}

/* ---- table ---------------------------------------------------------------------------------- */

static uint32_t fnv1a(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static void lru_unlink(aigw_dns_t *d, entry_t *e)
{
    if (e->lprev)
        e->lprev->lnext = e->lnext;
    else
        d->lru_head = e->lnext;
    if (e->lnext)
        e->lnext->lprev = e->lprev;
    else
        d->lru_tail = e->lprev;
    e->lprev = e->lnext = NULL;
}

static void lru_push(aigw_dns_t *d, entry_t *e)
{
    e->lprev = NULL;
    e->lnext = d->lru_head;
    if (d->lru_head)
        d->lru_head->lprev = e;
    d->lru_head = e;
    if (!d->lru_tail)
        d->lru_tail = e;
}

static entry_t *find(aigw_dns_t *d, const char *name, size_t n, uint32_t h)
{
    for (entry_t *e = d->buckets[h & (d->nbuckets - 1)]; e; e = e->hnext) {
        if (e->hash == h && strlen(e->name) == n && memcmp(e->name, name, n) == 0)
            return e;
    }
    return NULL;
}

static void grow(aigw_dns_t *d)
{
    size_t nb = d->nbuckets * 2;
    entry_t **b = calloc(nb, sizeof(*b));
    if (!b)
        return;   /* longer chains, still correct */
    for (size_t i = 0; i < d->nbuckets; i++) {
        entry_t *e = d->buckets[i];
        while (e) {
            entry_t *next = e->hnext;
            e->hnext = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    free(d->buckets);
    d->buckets = b;
    d->nbuckets = nb;
}

static void entry_free(entry_t *e)
{
    free(e->addrs);
    free(e);
}

static void remove_entry(aigw_dns_t *d, entry_t *e)
{
    entry_t **pp = &d->buckets[e->hash & (d->nbuckets - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    lru_unlink(d, e);
    d->count--;
    entry_free(e);
}

static int pinned(const entry_t *e)
{
    return e->inflight || e->whead || e->busy;
}

static void evict(aigw_dns_t *d)
{
    entry_t *e = d->lru_tail;
    while (d->count >= d->o.cache_size && e) {
        entry_t *prev = e->lprev;
        if (!pinned(e))
            remove_entry(d, e);
        e = prev;
    }
}

static entry_t *add_entry(aigw_dns_t *d, const char *name, size_t n, uint32_t h)
{
    if (d->count >= d->o.cache_size)
        evict(d);
    if (d->count >= d->nbuckets)
        grow(d);
    entry_t *e = calloc(1, sizeof(*e) + n + 1);
    if (!e)
        return NULL;
    memcpy(e->name, name, n);
    e->name[n] = '\0';
    e->hash = h;
    e->status = -1;   /* nothing known yet */
    e->hnext = d->buckets[h & (d->nbuckets - 1)];
    d->buckets[h & (d->nbuckets - 1)] = e;
    lru_push(d, e);
    d->count++;
    return e;
}

/* ---- answers -------------------------------------------------------------------------------- */

static void answer(entry_t *e, int fresh, int stale, aigw_dns_result_t *r)
{
    memset(r, 0, sizeof(*r));
    r->fresh = fresh;
    if (e->status != AIGW_DNS_OK) {
        r->status = e->status;
        r->error = e->error;
        return;
    }
    r->status = AIGW_DNS_OK;
    r->stale = stale;
    r->addrs = e->addrs;
    r->n_addrs = e->n;
    size_t cnt = e->n4 ? e->n4 : e->n;   /* the IPv4 ones first, as Kong asks for A */
    r->addr = e->addrs[e->rr++ % cnt];
}

static void really_free(aigw_dns_t *d)
{
    for (size_t i = 0; i < d->nbuckets; i++) {
        entry_t *e = d->buckets[i];
        while (e) {
            entry_t *next = e->hnext;
            if (e->inflight) {
                /* the request owns itself from now on; try to take it out of the pool */
                e->inflight->d = NULL;
                e->inflight->e = NULL;
                uv_cancel((uv_req_t *)&e->inflight->req);
            }
            aigw_dns_lookup_t *l = e->whead;
            while (l) {
                aigw_dns_lookup_t *ln = l->next;
                free(l);
                l = ln;
            }
            entry_free(e);
            e = next;
        }
    }
    free(d->buckets);
    free(d);
}

void aigw_dns_free(aigw_dns_t *d)
{
    if (!d)
        return;
    d->freed = 1;
    if (d->dispatching == 0)
        really_free(d);
}

/* Runs the callbacks of everyone waiting on e. A callback may resolve, cancel other waiters or
 * free the resolver; in the last case the remaining waiters are dropped. */
static void dispatch(aigw_dns_t *d, entry_t *e)
{
    d->dispatching++;
    e->busy++;
    while (e->whead && !d->freed) {
        aigw_dns_lookup_t *l = e->whead;
        e->whead = l->next;
        if (e->whead)
            e->whead->prev = NULL;
        else
            e->wtail = NULL;
        aigw_dns_result_t r;
        answer(e, 1, 0, &r);
        aigw_dns_cb cb = l->cb;
        void *ud = l->ud;
        free(l);
        cb(&r, ud);
    }
    e->busy--;
    d->dispatching--;
    if (d->freed && d->dispatching == 0)
        really_free(d);
}

static void set_error(entry_t *e, int status, const char *text, uint64_t until)
{
    free(e->addrs);
    e->addrs = NULL;
    e->n = e->n4 = 0;
    e->status = status;
    snprintf(e->error, sizeof(e->error), "%s", text);
    e->expire = until;
}

static void on_gai(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    gai_t *g = req->data;
    aigw_dns_t *d = g->d;
    entry_t *e = g->e;
    free(g);
    if (!d) {
        uv_freeaddrinfo(res);
        return;
    }
    e->inflight = NULL;
    uint64_t now = uv_now(d->loop);

    struct sockaddr_storage tmp[MAX_ADDRS];
    size_t n = 0, n4 = 0;
    for (int fam = 0; fam < 2 && status == 0; fam++) {
        int want = fam == 0 ? AF_INET : AF_INET6;
        for (const struct addrinfo *ai = res; ai && n < MAX_ADDRS; ai = ai->ai_next) {
            if (ai->ai_family != want || ai->ai_addrlen > sizeof(tmp[0]))
                continue;
            struct sockaddr_storage ss;
            memset(&ss, 0, sizeof(ss));
            memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
            int dup = 0;
            for (size_t k = 0; k < n && !dup; k++)
                dup = memcmp(&tmp[k], &ss, sizeof(ss)) == 0;
            if (dup)
                continue;
            tmp[n++] = ss;
            if (want == AF_INET)
                n4++;
        }
    }
    uv_freeaddrinfo(res);

    int has_stale = e->status == AIGW_DNS_OK && now < e->expire + d->o.stale_ttl_ms;
    struct sockaddr_storage *copy = n ? malloc(n * sizeof(*copy)) : NULL;
    if (n && copy) {
        memcpy(copy, tmp, n * sizeof(*copy));
        free(e->addrs);
        e->addrs = copy;
        e->n = n;
        e->n4 = n4;
        e->status = AIGW_DNS_OK;
        e->error[0] = '\0';
        e->expire = now + d->o.valid_ttl_ms;
        e->retry_at = 0;
    } else if (status == UV_EAI_NONAME) {
        /* Kong replaces even a stale record on a name error */
        set_error(e, AIGW_DNS_NOT_FOUND, "dns server error: 3 name error",
                  now + d->o.not_found_ttl_ms);
    } else if (has_stale) {
        /* Kong keeps serving a stale record on server errors and empty answers */
        e->retry_at = now + d->o.error_ttl_ms;
    } else if (status == 0 || status == UV_EAI_NODATA || status == UV_EAI_ADDRFAMILY) {
        if (n && !copy)
            set_error(e, AIGW_DNS_ERROR, "dns client error: out of memory",
                      now + d->o.error_ttl_ms);
        else
            set_error(e, AIGW_DNS_NOT_FOUND, "dns client error: 101 empty record received",
                      now + d->o.not_found_ttl_ms);
    } else if (status == UV_EAI_AGAIN) {
        set_error(e, AIGW_DNS_ERROR, "dns server error: 2 server failure",
                  now + d->o.error_ttl_ms);
    } else {
        char text[128];
        snprintf(text, sizeof(text), "dns client error: %s", uv_strerror(status));
        set_error(e, AIGW_DNS_ERROR, text, now + d->o.error_ttl_ms);
    }
    if (e->whead)
        dispatch(d, e);
}

static int start(aigw_dns_t *d, entry_t *e)
{
    gai_t *g = malloc(sizeof(*g));
    if (!g)
        return UV_ENOMEM;
    g->d = d;
    g->e = e;
    g->req.data = g;
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = uv_getaddrinfo(d->loop, &g->req, on_gai, e->name, NULL, &hints);
    if (rc < 0) {
        free(g);
        return rc;
    }
    e->inflight = g;
    return 0;
}

/* ---- API ------------------------------------------------------------------------------------ */

static int literal(const char *host, size_t n, struct sockaddr_storage *ss)
{
    char buf[INET6_ADDRSTRLEN + 1];
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(buf))
        return 0;
    memcpy(buf, host, n);
    buf[n] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, buf, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ss->ss_family = AF_INET;
        return 1;
    }
    if (inet_pton(AF_INET6, buf, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ss->ss_family = AF_INET6;
        return 1;
    }
    return 0;
}

static void answer_now(aigw_dns_t *d, entry_t *e, int stale, aigw_dns_cb cb, void *ud)
{
    aigw_dns_result_t r;
    answer(e, 0, stale, &r);
    d->dispatching++;
    e->busy++;
    cb(&r, ud);
    e->busy--;
    d->dispatching--;
    if (d->freed && d->dispatching == 0)
        really_free(d);
}

int aigw_dns_resolve(aigw_dns_t *d, const char *host, aigw_dns_cb cb, void *ud,
                     aigw_dns_lookup_t **handle)
{
    if (handle)
        *handle = NULL;
    if (!d || !host || !cb)
        return UV_EINVAL;
    size_t n = strlen(host);
    aigw_dns_result_t r;
    memset(&r, 0, sizeof(r));
    if (literal(host, n, &r.addr)) {
        r.status = AIGW_DNS_OK;
        r.addrs = &r.addr;
        r.n_addrs = 1;
        cb(&r, ud);
        return 0;
    }
    while (n && host[n - 1] == '.')
        n--;   /* "example.com." is "example.com" */
    if (n == 0 || n > MAX_NAME) {
        r.status = AIGW_DNS_NOT_FOUND;
        r.error = "dns server error: 3 name error";
        cb(&r, ud);
        return 0;
    }
    char name[MAX_NAME + 1];
    for (size_t i = 0; i < n; i++) {
        char ch = host[i];
        name[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    name[n] = '\0';
    uint32_t h = fnv1a(name, n);
    uint64_t now = uv_now(d->loop);

    entry_t *e = find(d, name, n, h);
    if (e) {
        lru_unlink(d, e);
        lru_push(d, e);
        if (e->status == AIGW_DNS_OK && now < e->expire) {
            answer_now(d, e, 0, cb, ud);
            return 0;
        }
        if (e->status == AIGW_DNS_OK && now < e->expire + d->o.stale_ttl_ms) {
            if (!e->inflight && now >= e->retry_at)
                (void)start(d, e);   /* background refresh; the stale answer stands */
            answer_now(d, e, 1, cb, ud);
            return 0;
        }
        if (e->status != AIGW_DNS_OK && e->status >= 0 && now < e->expire) {
            answer_now(d, e, 0, cb, ud);
            return 0;
        }
    } else {
        e = add_entry(d, name, n, h);
        if (!e)
            return UV_ENOMEM;
    }
    aigw_dns_lookup_t *l = calloc(1, sizeof(*l));
    if (!l)
        return UV_ENOMEM;
    if (!e->inflight) {
        int rc = start(d, e);
        if (rc < 0) {
            free(l);
            if (e->status < 0 && !pinned(e))
                remove_entry(d, e);
            return rc;
        }
    }
    l->e = e;
    l->cb = cb;
    l->ud = ud;
    l->prev = e->wtail;
    if (e->wtail)
        e->wtail->next = l;
    else
        e->whead = l;
    e->wtail = l;
    if (handle)
        *handle = l;
    return 1;
}

void aigw_dns_cancel(aigw_dns_lookup_t *l)
{
    if (!l)
        return;
    entry_t *e = l->e;
    if (l->prev)
        l->prev->next = l->next;
    else
        e->whead = l->next;
    if (l->next)
        l->next->prev = l->prev;
    else
        e->wtail = l->prev;
    free(l);
}

size_t aigw_dns_cache_count(const aigw_dns_t *d)
{
    return d ? d->count : 0;
}
