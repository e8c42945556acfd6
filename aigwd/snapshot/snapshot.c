/* aigwd/snapshot/snapshot.c: see snapshot.h. */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <uv.h>
#include "common/sbuf.h"
#include "common/str.h"
#include "core/log.h"
#include "schema/schema.h"
#include "snapshot/snapshot.h"

#define MAX_SUBSCRIBERS 16

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static aigw_snapshot_t *current;
static struct {
    aigw_snapshot_fn fn;
    void *ud;
} subs[MAX_SUBSCRIBERS];
static size_t nsubs;

/* Runtime data of the oauth2 plugin is not configuration (Kong does not export it). */
static int is_config_entity(const aigw_entity_t *e)
{
    return !(e->flags & AIGW_E_RUNTIME_DATA);
}


typedef struct collect {
    aigw_sbuf_t *b;
    size_t count;
} collect_t;

static int on_row(const char *json, void *ud)
{
    collect_t *c = ud;
    if (c->count++)
        aigw_sbuf_addn(c->b, ",", 1);
    aigw_sbuf_add(c->b, json);
    return c->b->oom ? -1 : 0;
}

/* The rows are copied as stored (validated entities; absent optional fields mean null), so
 * a build costs a read and a copy, not a parse and a re-encode of every entity. */
aigw_snapshot_t *aigw_snapshot_build(aigw_store_t *s, long long version, aigw_db_error_t *err)
{
    aigw_sbuf_t b = { 0 };
    size_t count = 0;
    aigw_sbuf_add(&b, "{\"_format_version\":\"3.0\"");
    for (const aigw_entity_t *const *pe = aigw_entities; *pe; pe++) {
        if (!is_config_entity(*pe))
            continue;
        aigw_sbuf_addn(&b, ",\"", 2);
        aigw_sbuf_add(&b, (*pe)->name);
        aigw_sbuf_addn(&b, "\":[", 3);
        collect_t c = { &b, 0 };
        if (aigw_store_each_raw(s, *pe, on_row, &c, err) != 0) {
            free(b.p);
            return NULL;
        }
        aigw_sbuf_addn(&b, "]", 1);
        count += c.count;
    }
    aigw_sbuf_addn(&b, "}", 1);
    aigw_snapshot_t *snap = b.oom ? NULL : calloc(1, sizeof(*snap));
    if (!snap) {
        free(b.p);
        err->code = AIGW_DBE_DATABASE;
        snprintf(err->message, sizeof(err->message), "out of memory building the snapshot");
        return NULL;
    }
    snap->json = b.p;
    snap->len = b.n;
    snap->version = version;
    snap->entities = count;
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(b.p, b.n, md, &mdlen, EVP_sha256(), NULL);
    aigw_hex_encode(md, 32, snap->hash);
    atomic_store(&snap->refs, 1);
    return snap;
}

int aigw_snapshot_refresh(aigw_store_t *s, aigw_db_error_t *err)
{
    long long version = 0;
    /* Credentials past their ttl leave the store (and so the next snapshot) here. */
    if (aigw_store_expire(s, err) < 0)
        return -1;
    /* The version and every table from one consistent read: a commit landing between two
     * table reads must not give a half-applied configuration. */
    if (aigw_store_begin_read(s, err) != 0)
        return -1;
    if (aigw_store_version(s, &version, err) != 0) {
        aigw_store_rollback(s);
        return -1;
    }
    aigw_snapshot_t *cur = aigw_snapshot_current();
    int same = cur && cur->version == version;
    aigw_snapshot_unref(cur);
    if (same) {
        aigw_store_rollback(s);
        return 0;
    }
    uint64_t t0 = uv_hrtime();
    aigw_snapshot_t *snap = aigw_snapshot_build(s, version, err);
    aigw_store_rollback(s);
    if (!snap)
        return -1;
    AIGW_LOG(AIGW_LOG_INFO, "configuration snapshot %lld: %zu entities, %zu bytes, %.1f ms, "
             "sha256 %.16s", snap->version, snap->entities, snap->len,
             (double)(uv_hrtime() - t0) / 1e6, snap->hash);
    aigw_snapshot_publish(snap);
    aigw_snapshot_unref(snap);
    return 1;
}

aigw_snapshot_t *aigw_snapshot_ref(aigw_snapshot_t *s)
{
    if (s)
        atomic_fetch_add(&s->refs, 1);
    return s;
}

void aigw_snapshot_unref(aigw_snapshot_t *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        free(s->json);
        free(s);
    }
}

void aigw_snapshot_publish(aigw_snapshot_t *snap)
{
    aigw_snapshot_ref(snap);
    pthread_mutex_lock(&mu);
    aigw_snapshot_t *old = current;
    current = snap;
    size_t n = nsubs;
    pthread_mutex_unlock(&mu);
    aigw_snapshot_unref(old);
    for (size_t i = 0; i < n; i++)
        subs[i].fn(snap, subs[i].ud);
}

aigw_snapshot_t *aigw_snapshot_current(void)
{
    pthread_mutex_lock(&mu);
    aigw_snapshot_t *s = aigw_snapshot_ref(current);
    pthread_mutex_unlock(&mu);
    return s;
}

int aigw_snapshot_subscribe(aigw_snapshot_fn fn, void *ud)
{
    pthread_mutex_lock(&mu);
    int rc = -1;
    if (nsubs < MAX_SUBSCRIBERS) {
        subs[nsubs].fn = fn;
        subs[nsubs].ud = ud;
        nsubs++;
        rc = 0;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

void aigw_snapshot_config_hash(char out[33])
{
    aigw_snapshot_t *s = aigw_snapshot_current();
    if (s)
        memcpy(out, s->hash, 32);
    else
        memset(out, '0', 32);
    out[32] = '\0';
    aigw_snapshot_unref(s);
}

void aigw_snapshot_shutdown(void)
{
    pthread_mutex_lock(&mu);
    aigw_snapshot_t *old = current;
    current = NULL;
    nsubs = 0;
    pthread_mutex_unlock(&mu);
    aigw_snapshot_unref(old);
}
