/* aigwd/plugins/ratelimit_local.c: node-wide rate-limiting counters (see the header). */
#include "plugins/ratelimit_local.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "common/str.h"

#define NSTRIPES 64
#define DEFAULT_MAX_ENTRIES (256u * 1024u)

const char *const aigw_rl_period_names[AIGW_RL_NPERIODS] = {"second", "minute", "hour",
                                                            "day",    "month",  "year"};
const char *const aigw_rl_period_titles[AIGW_RL_NPERIODS] = {"Second", "Minute", "Hour",
                                                             "Day",    "Month",  "Year"};
const int64_t aigw_rl_expiration[AIGW_RL_NPERIODS] = {1, 60, 3600, 86400, 2592000, 31536000};

/* ---- calendar ---------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int64_t *m)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

void aigw_rl_windows(int64_t now, int64_t start[AIGW_RL_NPERIODS],
                     int64_t end[AIGW_RL_NPERIODS])
{
    int64_t days = floor_div(now, 86400);
    int64_t y, m;
    civil_from_days(days, &y, &m);
    start[AIGW_RL_SECOND] = now;
    end[AIGW_RL_SECOND] = now + 1;
    start[AIGW_RL_MINUTE] = floor_div(now, 60) * 60;
    end[AIGW_RL_MINUTE] = start[AIGW_RL_MINUTE] + 60;
    start[AIGW_RL_HOUR] = floor_div(now, 3600) * 3600;
    end[AIGW_RL_HOUR] = start[AIGW_RL_HOUR] + 3600;
    start[AIGW_RL_DAY] = days * 86400;
    end[AIGW_RL_DAY] = start[AIGW_RL_DAY] + 86400;
    start[AIGW_RL_MONTH] = days_from_civil(y, m, 1) * 86400;
    end[AIGW_RL_MONTH] = (m == 12 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, m + 1, 1))
                         * 86400;
    start[AIGW_RL_YEAR] = days_from_civil(y, 1, 1) * 86400;
    end[AIGW_RL_YEAR] = days_from_civil(y + 1, 1, 1) * 86400;
}

/* ---- store ------------------------------------------------------------------------------- */

typedef struct entry {
    struct entry *next;
    uint64_t hash;
    int64_t count;
    int64_t expire_at;
    size_t keylen;
    char key[];
} entry_t;

typedef struct stripe {
    pthread_mutex_t mu;
    entry_t **buckets;
    size_t nbuckets;      /* power of two */
    size_t n;
    int64_t next_sweep;
} stripe_t;

typedef struct store {
    stripe_t stripes[NSTRIPES];
    size_t max_per_stripe;
} store_t;

static store_t *g_store;

int aigw_rl_local_init(size_t max_entries)
{
    if (g_store)
        return 0;
    store_t *s = calloc(1, sizeof(*s));
    if (!s)
        return -1;
    if (!max_entries)
        max_entries = DEFAULT_MAX_ENTRIES;
    s->max_per_stripe = max_entries / NSTRIPES ? max_entries / NSTRIPES : 1;
    for (size_t i = 0; i < NSTRIPES; i++) {
        stripe_t *st = &s->stripes[i];
        st->nbuckets = 16;
        st->buckets = calloc(st->nbuckets, sizeof(*st->buckets));
        if (!st->buckets || pthread_mutex_init(&st->mu, NULL) != 0) {
            free(st->buckets);
            for (size_t j = 0; j < i; j++) {
                free(s->stripes[j].buckets);
                pthread_mutex_destroy(&s->stripes[j].mu);
            }
            free(s);
            return -1;
        }
    }
    g_store = s;
    return 0;
}

void aigw_rl_local_shutdown(void)
{
    store_t *s = g_store;
    if (!s)
        return;
    g_store = NULL;
    for (size_t i = 0; i < NSTRIPES; i++) {
        stripe_t *st = &s->stripes[i];
        for (size_t b = 0; b < st->nbuckets; b++) {
            entry_t *e = st->buckets[b];
            while (e) {
                entry_t *nx = e->next;
                free(e);
                e = nx;
            }
        }
        free(st->buckets);
        pthread_mutex_destroy(&st->mu);
    }
    free(s);
}

/* Stripe locked. Drops expired entries. */
static void sweep_stripe(stripe_t *st, int64_t now)
{
    for (size_t b = 0; b < st->nbuckets; b++) {
        entry_t **pp = &st->buckets[b];
        while (*pp) {
            entry_t *e = *pp;
            if (e->expire_at <= now) {
                *pp = e->next;
                free(e);
                st->n--;
            } else {
                pp = &e->next;
            }
        }
    }
    st->next_sweep = now + 1;
}

static void grow_stripe(stripe_t *st)
{
    size_t nb = st->nbuckets * 2;
    entry_t **nbk = calloc(nb, sizeof(*nbk));
    if (!nbk)
        return;   /* keep the longer chains */
    for (size_t b = 0; b < st->nbuckets; b++) {
        entry_t *e = st->buckets[b];
        while (e) {
            entry_t *nx = e->next;
            size_t i = (size_t)(e->hash >> 6) & (nb - 1);
            e->next = nbk[i];
            nbk[i] = e;
            e = nx;
        }
    }
    free(st->buckets);
    st->buckets = nbk;
    st->nbuckets = nb;
}

/* Stripe locked. The live entry for the key, created (count 0) when absent or expired;
 * NULL when out of memory or the stripe is full. */
static entry_t *find_or_add(const store_t *s, stripe_t *st, const char *key, size_t keylen,
                            uint64_t h, int64_t expire_at, int64_t now)
{
    size_t i = (size_t)(h >> 6) & (st->nbuckets - 1);
    for (entry_t *e = st->buckets[i]; e; e = e->next) {
        if (e->hash == h && e->keylen == keylen && memcmp(e->key, key, keylen) == 0) {
            if (e->expire_at <= now) {
                e->count = 0;
                e->expire_at = expire_at;
            }
            return e;
        }
    }
    if (st->n >= s->max_per_stripe) {
        sweep_stripe(st, now);
        if (st->n >= s->max_per_stripe)
            return NULL;
    }
    entry_t *e = malloc(sizeof(*e) + keylen + 1);
    if (!e)
        return NULL;
    e->hash = h;
    e->count = 0;
    e->expire_at = expire_at;
    e->keylen = keylen;
    memcpy(e->key, key, keylen);
    e->key[keylen] = '\0';
    e->next = st->buckets[i];
    st->buckets[i] = e;
    st->n++;
    if (st->n > st->nbuckets)
        grow_stripe(st);
    return e;
}

int aigw_rl_local_take(const char *const *keys, const double *limits, const int64_t *expire_at,
                       size_t n, int64_t now, int64_t *usage)
{
    store_t *s = g_store;
    if (!s || n > AIGW_RL_NPERIODS)
        return -1;
    uint64_t h[AIGW_RL_NPERIODS];
    size_t len[AIGW_RL_NPERIODS];
    size_t lk[AIGW_RL_NPERIODS], nl = 0;   /* the stripes to lock, ascending, distinct */
    for (size_t i = 0; i < n; i++) {
        len[i] = strlen(keys[i]);
        h[i] = aigw_hash_bytes(keys[i], len[i]);
        size_t si = (size_t)(h[i] % NSTRIPES), j = nl;
        while (j > 0 && lk[j - 1] > si)
            j--;
        if (j > 0 && lk[j - 1] == si)
            continue;
        memmove(lk + j + 1, lk + j, (nl - j) * sizeof(*lk));
        lk[j] = si;
        nl++;
    }
    for (size_t j = 0; j < nl; j++) {
        stripe_t *st = &s->stripes[lk[j]];
        pthread_mutex_lock(&st->mu);
        if (now >= st->next_sweep)
            sweep_stripe(st, now);
    }
    entry_t *e[AIGW_RL_NPERIODS];
    int rc = 1;
    for (size_t i = 0; i < n; i++) {
        stripe_t *st = &s->stripes[h[i] % NSTRIPES];
        e[i] = find_or_add(s, st, keys[i], len[i], h[i], expire_at[i], now);
        if (!e[i]) {
            rc = -1;
            usage[i] = 0;
            continue;
        }
        usage[i] = e[i]->count;
        if (limits[i] - (double)e[i]->count <= 0)
            rc = rc < 0 ? rc : 0;
    }
    if (rc == 1)
        for (size_t i = 0; i < n; i++)
            e[i]->count++;
    for (size_t j = nl; j-- > 0;)
        pthread_mutex_unlock(&s->stripes[lk[j]].mu);
    return rc;
}

size_t aigw_rl_local_count(void)
{
    store_t *s = g_store;
    size_t total = 0;
    if (!s)
        return 0;
    for (size_t i = 0; i < NSTRIPES; i++) {
        pthread_mutex_lock(&s->stripes[i].mu);
        total += s->stripes[i].n;
        pthread_mutex_unlock(&s->stripes[i].mu);
    }
    return total;
}

void aigw_rl_local_sweep(int64_t now)
{
    store_t *s = g_store;
    if (!s)
        return;
    for (size_t i = 0; i < NSTRIPES; i++) {
        pthread_mutex_lock(&s->stripes[i].mu);
        sweep_stripe(&s->stripes[i], now);
        pthread_mutex_unlock(&s->stripes[i].mu);
    }
}
