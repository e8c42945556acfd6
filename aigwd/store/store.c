/* aigwd/store/store.c: the generic store of store.h over the drivers of db.h. Every table and
 * column name written into SQL comes from the schema tables (checked by
 * aigw_store__ident_ok); every value travels as a parameter. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "store/db.h"

/* ---- errors ---------------------------------------------------------------------------- */

void aigw_db_error_clear(aigw_db_error_t *e)
{
    if (!e)
        return;
    json_decref(e->fields);
    e->fields = NULL;
    e->code = 0;
    e->message[0] = 0;
}

const char *aigw_db_error_name(int code)
{
    switch (code) {
    case 1: return "invalid primary key";
    case 2: return "schema violation";
    case 3: return "primary key violation";
    case 4: return "foreign key violation";
    case 5: return "unique constraint violation";
    case 6: return "not found";
    case 7: return "invalid offset";
    case 8: return "database error";
    case 9: return "invalid size";
    case 10: return "invalid unique";
    case 11: return "invalid options";
    case 12: return "operation unsupported";
    case 13: return "foreign keys unresolved";
    case 14: return "invalid declarative configuration";
    case 15: return "transformation error";
    case 16: return "invalid foreign key";
    case 17: return "invalid workspace";
    case 18: return "invalid global query";
    case 19: return "referenced by others";
    case AIGW_DBE_UNREACHABLE: return "database unreachable";
    default: return "database error";
    }
}

int aigw_db_error_status(int code)
{
    switch (code) {
    case 1: case 2: case 3: case 4: case 7: case 9: case 10: case 11: case 13: case 14:
    case 19:
        return 400;
    case 5:
        return 409;
    case 6:
        return 404;
    case 12:
        return 405;
    case AIGW_DBE_UNREACHABLE:
        return 503;
    default:
        return 500;
    }
}

/* Sets *err; fields (may be NULL) is stolen. */
static void set_error(aigw_db_error_t *err, int code, json_t *fields, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_error(aigw_db_error_t *err, int code, json_t *fields, const char *fmt, ...)
{
    json_decref(err->fields);
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    err->fields = fields;
}

void aigw_store__fail(aigw_db_error_t *out, const aigw_store__dberr_t *dbe)
{
    if (dbe->kind == AIGW_STORE__EUNREACHABLE)
        set_error(out, AIGW_DBE_UNREACHABLE, NULL, "database unreachable: %s", dbe->msg);
    else
        set_error(out, AIGW_DBE_DATABASE, NULL, "%s", dbe->msg[0] ? dbe->msg : "database error");
}

static void oom(aigw_db_error_t *err)
{
    set_error(err, AIGW_DBE_DATABASE, NULL, "out of memory");
}

/* ---- Kong's rendering of keys (Penlight's pretty.write(t, "")) -------------------------- */

static int lua_keyword(const char *s)
{
    static const char *const kw[] = { "and", "break", "do", "else", "elseif", "end", "false",
                                      "for", "function", "goto", "if", "in", "local", "nil",
                                      "not", "or", "repeat", "return", "then", "true", "until",
                                      "while", NULL };
    for (size_t i = 0; kw[i]; i++)
        if (strcmp(kw[i], s) == 0)
            return 1;
    return 0;
}

static int lua_ident(const char *s)
{
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_'))
            return 0;
    return !lua_keyword(s);
}

/* The largest run of '=' inside a [==[ or ]==] sequence, or -1 when there is none. */
static int long_quote_level(const char *s)
{
    int best = -1;
    for (const char *p = s; *p; p++) {
        if (*p != '[' && *p != ']')
            continue;
        const char *q = p + 1;
        while (*q == '=')
            q++;
        if (*q == *p && (int)(q - p - 1) > best)
            best = (int)(q - p - 1);
    }
    return best;
}

/* stringx.quote_string: %q, or a long bracket string when s has a newline or brackets. */
static void lua_quote(aigw_store__buf_t *b, const char *s)
{
    int level = long_quote_level(s);
    if (strchr(s, '\n') || level >= 0) {
        char eq[64];
        int n = level + 1 < 63 ? level + 1 : 63;
        memset(eq, '=', (size_t)n);
        eq[n] = 0;
        aigw_store__buf_addf(b, "[%s[%s%s]%s]", eq, s[0] == '\n' ? "\n" : "", s, eq);
        return;
    }
    aigw_store__buf_add(b, "\"");
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        char tmp[8];
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            tmp[2] = 0;
        } else if (c < 32 || c == 127) {
            if (isdigit((unsigned char)p[1]))
                snprintf(tmp, sizeof(tmp), "\\%03u", c);
            else
                snprintf(tmp, sizeof(tmp), "\\%u", c);
        } else {
            tmp[0] = (char)c;
            tmp[1] = 0;
        }
        aigw_store__buf_add(b, tmp);
    }
    aigw_store__buf_add(b, "\"");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void lua_number(aigw_store__buf_t *b, double d)
{
    if (d == floor(d) && fabs(d) < 1e18)
        aigw_store__buf_addf(b, "%lld", (long long)d);
    else
        aigw_store__buf_addf(b, "%.14g", d);
}

static void pretty(aigw_store__buf_t *b, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        const char **keys = n ? malloc(n * sizeof(*keys)) : NULL;
        if (n && !keys) {
            b->oom = 1;
            return;
        }
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)(uintptr_t)v, k, x) keys[i++] = k;
        qsort(keys, n, sizeof(*keys), cmp_str);
        aigw_store__buf_add(b, "{");
        for (i = 0; i < n; i++) {
            if (i)
                aigw_store__buf_add(b, ",");
            if (lua_ident(keys[i])) {
                aigw_store__buf_add(b, keys[i]);
            } else {
                aigw_store__buf_add(b, "[");
                lua_quote(b, keys[i]);
                aigw_store__buf_add(b, "]");
            }
            aigw_store__buf_add(b, "=");
            pretty(b, json_object_get(v, keys[i]));
        }
        aigw_store__buf_add(b, "}");
        free(keys);
        break;
    }
    case JSON_ARRAY: {
        aigw_store__buf_add(b, "{");
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                aigw_store__buf_add(b, ",");
            pretty(b, json_array_get(v, i));
        }
        aigw_store__buf_add(b, "}");
        break;
    }
    case JSON_STRING:
        lua_quote(b, json_string_value(v));
        break;
    case JSON_INTEGER:
        aigw_store__buf_addf(b, "%lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        lua_number(b, json_real_value(v));
        break;
    case JSON_TRUE:
        aigw_store__buf_add(b, "true");
        break;
    case JSON_FALSE:
        aigw_store__buf_add(b, "false");
        break;
    default:
        aigw_store__buf_add(b, "null");
        break;
    }
}

/* `<prefix>'<pretty key>'<suffix>` into err with code and fields (stolen). */
static void key_error(aigw_db_error_t *err, int code, const char *prefix, const json_t *key,
                      const char *suffix, json_t *fields)
{
    aigw_store__buf_t b = { 0 };
    pretty(&b, key);
    set_error(err, code, fields, "%s'%s'%s", prefix, b.oom ? "?" : b.p, suffix);
    aigw_store__buf_free(&b);
}

static void pk_violation(aigw_db_error_t *err, const char *id)
{
    json_t *k = json_pack("{s:s}", "id", id);
    key_error(err, AIGW_DBE_PK, "primary key violation on key ", k, "", json_incref(k));
    json_decref(k);
}

static void not_found(aigw_db_error_t *err, const char *id)
{
    json_t *k = json_pack("{s:s}", "id", id);
    key_error(err, AIGW_DBE_NOT_FOUND, "could not find the entity with primary key ", k, "",
              json_incref(k));
    json_decref(k);
}

static void fk_violation(aigw_db_error_t *err, const char *field, const char *ref,
                         const char *id)
{
    json_t *k = json_pack("{s:s}", "id", id);
    char suffix[128];
    snprintf(suffix, sizeof(suffix), " does not reference an existing '%s' entity.", ref);
    key_error(err, AIGW_DBE_FOREIGN_KEY, "the foreign key ", k, suffix,
              json_pack("{s:O}", field, k));
    json_decref(k);
}

/* key is stolen: it becomes the error's fields. */
static void unique_violation(aigw_db_error_t *err, json_t *key)
{
    key_error(err, AIGW_DBE_UNIQUE, "UNIQUE violation detected on ", key, "", key);
}

static void restricted(aigw_db_error_t *err, const char *parent, const char *child)
{
    set_error(err, AIGW_DBE_FOREIGN_KEY, json_pack("{s:s}", "@referenced_by", child),
              "an existing '%s' entity references this '%s' entity", child, parent);
}

static void bad_offset(aigw_db_error_t *err, const char *offset)
{
    set_error(err, AIGW_DBE_INVALID_OFFSET, NULL, "'%s' is not a valid offset: bad base64 encoding",
              offset);
}

/* ---- base64url (offsets) ----------------------------------------------------------------- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64_encode(const char *s, size_t n)
{
    char *out = malloc((n + 2) / 3 * 4 + 1), *w = out;
    if (!out)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *w++ = b64url[v >> 18 & 63];
        *w++ = b64url[v >> 12 & 63];
        if (i + 1 < n)
            *w++ = b64url[v >> 6 & 63];
        if (i + 2 < n)
            *w++ = b64url[v & 63];
    }
    *w = 0;
    return out;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-' || c == '+')
        return 62;
    if (c == '_' || c == '/')
        return 63;
    return -1;
}

/* Decodes base64url (or standard base64), padding optional. NULL when malformed or when the
 * result is empty or holds control bytes (no offset of ours does). */
static char *b64_decode(const char *s)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '=')
        n--;
    if (n == 0 || n % 4 == 1)
        return NULL;
    char *out = malloc(n / 4 * 3 + 3), *w = out;
    if (!out)
        return NULL;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val(s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *w++ = (char)(acc >> bits & 0xff);
        }
    }
    *w = 0;
    if (w == out)
        goto bad;
    for (const char *p = out; p < w; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            goto bad;
    return out;
bad:
    free(out);
    return NULL;
}

/* ---- open / close ------------------------------------------------------------------------ */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

void aigw_store_dbless_path(const aigw_conf_t *c, char *out, size_t cap)
{
    snprintf(out, cap, "%s/dbless.db", c->prefix);
}

aigw_store_t *aigw_store_open(const aigw_conf_t *c, char *err, size_t errlen)
{
    aigw_store_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (c->database == AIGW_DB_SQLITE || c->database == AIGW_DB_OFF) {
        char dbless[4200];
        const char *path = c->sqlite_path;
        if (c->database == AIGW_DB_OFF) {
            aigw_store_dbless_path(c, dbless, sizeof(dbless));
            path = dbless;
        }
        if (aigw_store__sqlite_open(s, path, err, errlen) != 0) {
            free(s);
            return NULL;
        }
        return s;
    }
    s->pg_host = dup_or_null(c->pg_host);
    s->pg_user = dup_or_null(c->pg_user);
    s->pg_password = dup_or_null(c->pg_password);
    s->pg_database = dup_or_null(c->pg_database);
    s->pg_port = c->pg_port;
    s->pg_ssl = c->pg_ssl;
    s->pg_timeout = c->pg_timeout > 0 ? c->pg_timeout : 5000;
    if (!s->pg_host || !s->pg_user || !s->pg_database || (c->pg_password && !s->pg_password)) {
        snprintf(err, errlen, "out of memory");
        aigw_store_close(s);
        return NULL;
    }
    if (aigw_store__pg_open(s, err, errlen) != 0) {
        aigw_store_close(s);
        return NULL;
    }
    return s;
}

void aigw_store_close(aigw_store_t *s)
{
    if (!s)
        return;
    if (s->in_tx)
        aigw_store_rollback(s);
    if (s->drv)
        s->drv->close(s);
    free(s->pg_host);
    free(s->pg_user);
    if (s->pg_password) {
        memset(s->pg_password, 0, strlen(s->pg_password));
        free(s->pg_password);
    }
    free(s->pg_database);
    free(s);
}

int aigw_store_ping(aigw_store_t *s)
{
    return s && s->drv->ping(s);
}

const char *aigw_store_kind(const aigw_store_t *s)
{
    return s->drv->kind;
}

int aigw_store__query(aigw_store_t *s, const char *sql, const char *const *params,
                      size_t nparams, aigw_store__rows_t *out, aigw_store__dberr_t *err)
{
    return s->drv->query(s, sql, params, nparams, out, err);
}

/* A query whose failure becomes the user's error. */
static int q(aigw_store_t *s, const char *sql, const char *const *params, size_t n,
             aigw_store__rows_t *out, aigw_db_error_t *err)
{
    aigw_store__dberr_t dbe;
    if (s->drv->query(s, sql, params, n, out, &dbe) != 0) {
        aigw_store__fail(err, &dbe);
        return -1;
    }
    return 0;
}

/* 1 when the query returns a row, 0 when none, -1 on failure. */
static int exists(aigw_store_t *s, const char *sql, const char *const *params, size_t n,
                  aigw_db_error_t *err)
{
    aigw_store__rows_t r;
    if (q(s, sql, params, n, &r, err) != 0)
        return -1;
    int found = r.nrows > 0;
    aigw_store__rows_free(&r);
    return found;
}

/* ---- transactions ------------------------------------------------------------------------ */

int aigw_store_begin(aigw_store_t *s, aigw_db_error_t *err)
{
    if (s->in_tx) {
        set_error(err, AIGW_DBE_DATABASE, NULL, "a transaction is already open");
        return -1;
    }
    /* SQLite: take the write lock now, so that the transaction cannot fail half way with
     * SQLITE_BUSY when another process wrote meanwhile. */
    if (q(s, s->dialect == AIGW_STORE__SQLITE ? "BEGIN IMMEDIATE" : "BEGIN", NULL, 0, NULL,
          err) != 0)
        return -1;
    s->in_tx = 1;
    s->dirty = 0;
    return 0;
}

int aigw_store_begin_read(aigw_store_t *s, aigw_db_error_t *err)
{
    if (s->in_tx) {
        set_error(err, AIGW_DBE_DATABASE, NULL, "a transaction is already open");
        return -1;
    }
    /* One snapshot of the database for every read until the rollback: SQLite (WAL) pins it
     * at the first read of a deferred transaction; PostgreSQL needs REPEATABLE READ, its
     * default READ COMMITTED takes a new snapshot per statement. */
    if (q(s, s->dialect == AIGW_STORE__SQLITE ? "BEGIN"
                                               : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
          NULL, 0, NULL, err) != 0)
        return -1;
    s->in_tx = 1;
    s->dirty = 0;
    return 0;
}

/* In the transaction: the config version rises, and PostgreSQL tells listeners at commit. */
static int bump_version(aigw_store_t *s, aigw_db_error_t *err)
{
    aigw_store__rows_t r;
    if (q(s, "UPDATE " AIGW_STORE__VERSION_TABLE " SET version = version + 1 WHERE id = 1 "
             "RETURNING version",
          NULL, 0, &r, err) != 0)
        return -1;
    if (r.nrows != 1 || !aigw_store__cell(&r, 0, 0)) {
        aigw_store__rows_free(&r);
        set_error(err, AIGW_DBE_DATABASE, NULL, "the configuration version row is missing");
        return -1;
    }
    int rc = 0;
    if (s->dialect == AIGW_STORE__PG) {
        const char *p[] = { aigw_store__cell(&r, 0, 0) };
        rc = q(s, "SELECT pg_notify('aigw_config', $1)", p, 1, NULL, err);
    }
    aigw_store__rows_free(&r);
    return rc;
}

int aigw_store_commit(aigw_store_t *s, aigw_db_error_t *err)
{
    if (!s->in_tx)
        return 0;
    if (s->dirty && bump_version(s, err) != 0)
        return -1;
    if (q(s, "COMMIT", NULL, 0, NULL, err) != 0)
        return -1;
    s->in_tx = 0;
    s->dirty = 0;
    return 0;
}

void aigw_store_rollback(aigw_store_t *s)
{
    if (!s || !s->in_tx)
        return;
    aigw_store__dberr_t dbe;
    (void)s->drv->query(s, "ROLLBACK", NULL, 0, NULL, &dbe);
    s->in_tx = 0;
    s->dirty = 0;
}

/* One write operation: its own transaction when the caller opened none, else a savepoint, so
 * that a failed operation leaves the caller's transaction as it was (PostgreSQL would
 * otherwise refuse every later statement). */
typedef struct op {
    int implicit;
    int no_bump;        /* runtime data (AIGW_E_RUNTIME_DATA): the version stays */
} op_t;

static int op_begin(aigw_store_t *s, op_t *op, aigw_db_error_t *err)
{
    op->implicit = !s->in_tx;
    op->no_bump = 0;
    if (op->implicit)
        return aigw_store_begin(s, err);
    return q(s, "SAVEPOINT aigw_op", NULL, 0, NULL, err);
}

/* result: -1 failed (err already set), 0 nothing changed, 1 wrote. Returns 0 or -1. */
static int op_end(aigw_store_t *s, op_t *op, int result, aigw_db_error_t *err)
{
    if (result < 0) {
        if (op->implicit) {
            aigw_store_rollback(s);
        } else {
            aigw_store__dberr_t dbe;
            if (s->drv->query(s, "ROLLBACK TO SAVEPOINT aigw_op", NULL, 0, NULL, &dbe) == 0)
                (void)s->drv->query(s, "RELEASE SAVEPOINT aigw_op", NULL, 0, NULL, &dbe);
        }
        return -1;
    }
    if (result > 0 && !op->no_bump)
        s->dirty = 1;
    if (op->implicit) {
        if (aigw_store_commit(s, err) != 0) {
            aigw_store_rollback(s);
            return -1;
        }
        return 0;
    }
    return q(s, "RELEASE SAVEPOINT aigw_op", NULL, 0, NULL, err);
}

/* ---- entity columns ---------------------------------------------------------------------- */

static int entity_ok(const aigw_entity_t *e, aigw_db_error_t *err)
{
    if (!e || !aigw_store__ident_ok(e->name)) {
        set_error(err, AIGW_DBE_DATABASE, NULL, "entity %s cannot be stored",
                  e && e->name ? e->name : "(null)");
        return 0;
    }
    return 1;
}

static int has_cache_key(const aigw_entity_t *e)
{
    return e->cache_key && e->cache_key[0];
}

/* Kong's `ttl = true` entities keep their expiry (epoch seconds) in a `ttl` column
 * (migration 002_ttl); rows past it are never read and are purged. */
static int has_ttl(const aigw_entity_t *e)
{
    for (const aigw_field_t *f = e->fields; f && f->name; f++)
        if (f->flags & AIGW_F_TTL)
            return 1;
    return 0;
}

static void now_text(char buf[32])
{
    snprintf(buf, 32, "%lld", (long long)time(NULL));
}

/* The `ttl` a read shows: the whole seconds left (Kong: FLOOR(ttl - now)); none without an
 * expiry (a row written before migration 002 may still hold the seconds it was given). */
static void set_ttl_left(json_t *obj, const char *expiry, long long now)
{
    if (!expiry) {
        json_object_del(obj, "ttl");
        return;
    }
    long long left = strtoll(expiry, NULL, 10) - now;
    json_object_set_new(obj, "ttl", json_integer(left > 0 ? left : 0));
}

/* The text Kong's DAO:cache_key gives one value (tostring), or NULL for null. */
static char *ck_value(const aigw_field_t *f, const json_t *v)
{
    if (!v || json_is_null(v))
        return NULL;
    if (f && f->type == AIGW_FT_FOREIGN) {
        const char *id = json_string_value(json_object_get(v, "id"));
        return id ? strdup(id) : NULL;
    }
    char buf[64];
    switch (json_typeof(v)) {
    case JSON_STRING:
        return strdup(json_string_value(v));
    case JSON_INTEGER:
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        return strdup(buf);
    case JSON_REAL: {
        aigw_store__buf_t b = { 0 };
        lua_number(&b, json_real_value(v));
        return b.p;
    }
    case JSON_TRUE:
        return strdup("true");
    case JSON_FALSE:
        return strdup("false");
    default:
        return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    }
}

/* Kong's cache key string: "<table>:<v1>:...:<v5>:<ws_id>", absent values empty, the primary
 * key instead when every value is null. aigw has no workspaces: ws_id is empty. */
static char *cache_key_string(const aigw_entity_t *e, const json_t *obj)
{
    const char *parts[8] = { 0 };
    char *owned[8] = { 0 };
    size_t i = 1;
    int use_pk = 1;
    parts[0] = e->name;
    for (size_t j = 0; e->cache_key[j] && i < 6; j++, i++) {
        const aigw_field_t *f = aigw_schema_field(e->fields, e->cache_key[j]);
        owned[i] = ck_value(f, json_object_get(obj, e->cache_key[j]));
        if (owned[i])
            use_pk = 0;
        parts[i] = owned[i] ? owned[i] : "";
    }
    if (use_pk) {
        for (size_t k = 1; k < i; k++) {
            free(owned[k]);
            owned[k] = NULL;
            parts[k] = "";
        }
        const char *id = json_string_value(json_object_get(obj, "id"));
        parts[1] = id ? id : "";
        if (i < 2)
            i = 2;
    }
    for (; i < 7; i++)
        parts[i] = "";
    aigw_store__buf_t b = { 0 };
    for (size_t k = 0; k < 7; k++) {
        if (k)
            aigw_store__buf_add(&b, ":");
        aigw_store__buf_add(&b, parts[k] ? parts[k] : "");
    }
    for (size_t k = 0; k < 8; k++)
        free(owned[k]);
    if (b.oom) {
        aigw_store__buf_free(&b);
        return NULL;
    }
    return b.p;
}

/* The conflicting key of a cache-key violation, as Kong shows it. */
static json_t *cache_key_fields(const aigw_entity_t *e, const json_t *obj)
{
    json_t *k = json_object();
    for (size_t j = 0; e->cache_key[j]; j++) {
        const aigw_field_t *f = aigw_schema_field(e->fields, e->cache_key[j]);
        json_t *v = json_object_get(obj, e->cache_key[j]);
        if (!v || json_is_null(v)) {
            json_object_set_new(k, e->cache_key[j], json_null());
        } else if (f && f->type == AIGW_FT_FOREIGN) {
            json_t *id = json_object_get(v, "id");
            json_object_set_new(k, e->cache_key[j],
                                id ? json_pack("{s:O}", "id", id) : json_null());
        } else {
            json_object_set(k, e->cache_key[j], v);
        }
    }
    return k;
}

/* The columns of one row: id, data, created_at, then u_<field> / <field>_id in schema order,
 * then cache_key. vals[i] NULL is SQL NULL. */
typedef struct colset {
    size_t n;
    char **names;
    char **vals;
    const aigw_field_t **fields;   /* the field behind u_/_id columns, else NULL */
} colset_t;

static void cols_free(colset_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->names[i]);
        free(c->vals[i]);
    }
    free(c->names);
    free(c->vals);
    free(c->fields);
    memset(c, 0, sizeof(*c));
}

static int cols_add(colset_t *c, const char *name, const char *suffix, char *val,
                    const aigw_field_t *f)
{
    size_t len = strlen(name) + strlen(suffix) + 3;
    char *nm = malloc(len);
    if (!nm) {
        free(val);
        return -1;
    }
    snprintf(nm, len, "%s%s", name, suffix);
    c->names[c->n] = nm;
    c->vals[c->n] = val;
    c->fields[c->n] = f;
    c->n++;
    return 0;
}

static char *unique_text(const json_t *v)
{
    if (!v || json_is_null(v))
        return NULL;
    if (json_is_string(v))
        return strdup(json_string_value(v));
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static int build_cols(const aigw_entity_t *e, const json_t *obj, colset_t *c,
                      aigw_db_error_t *err)
{
    memset(c, 0, sizeof(*c));
    size_t nf = 0;
    for (const aigw_field_t *f = e->fields; f && f->name; f++)
        nf++;
    size_t cap = nf + 5;
    c->names = calloc(cap, sizeof(*c->names));
    c->vals = calloc(cap, sizeof(*c->vals));
    c->fields = calloc(cap, sizeof(*c->fields));
    if (!c->names || !c->vals || !c->fields)
        goto nomem;
    const char *id = json_string_value(json_object_get(obj, "id"));
    if (!id) {
        set_error(err, AIGW_DBE_SCHEMA, json_pack("{s:s}", "id", "required field missing"),
                  "schema violation (id: required field missing)");
        cols_free(c);
        return -1;
    }
    char *data;
    char *expiry = NULL;
    if (has_ttl(e)) {
        /* The entity is stored without its ttl: the column holds the expiry time. */
        json_t *ttl = json_object_get(obj, "ttl");
        double secs = json_is_number(ttl) ? json_number_value(ttl) : 0;
        if (secs >= 1) {
            char ebuf[32];
            snprintf(ebuf, sizeof(ebuf), "%lld", (long long)time(NULL) + (long long)secs);
            if (!(expiry = strdup(ebuf)))
                goto nomem;
        }
        json_t *copy = json_copy((json_t *)(uintptr_t)obj);
        json_object_del(copy, "ttl");
        data = copy ? json_dumps(copy, JSON_COMPACT) : NULL;
        json_decref(copy);
    } else {
        data = json_dumps(obj, JSON_COMPACT);
    }
    json_t *ca = json_object_get(obj, "created_at");
    long long created = json_is_integer(ca) ? (long long)json_integer_value(ca)
                        : json_is_real(ca) ? (long long)json_real_value(ca)
                                           : (long long)time(NULL);
    char cbuf[32];
    snprintf(cbuf, sizeof(cbuf), "%lld", created);
    char *idv = strdup(id), *cv = strdup(cbuf);
    if (!data || !idv || !cv) {
        free(data);
        free(idv);
        free(cv);
        free(expiry);
        goto nomem;
    }
    if (cols_add(c, "id", "", idv, NULL) || cols_add(c, "data", "", data, NULL) ||
        cols_add(c, "created_at", "", cv, NULL)) {
        if (c->n < 3) {
            /* cols_add freed the value it failed on; free the ones not yet added */
            if (c->n < 1)
                free(data);
            if (c->n < 2)
                free(cv);
        }
        free(expiry);
        goto nomem;
    }
    if (has_ttl(e) && cols_add(c, "ttl", "", expiry, NULL))
        goto nomem;
    for (const aigw_field_t *f = e->fields; f && f->name; f++) {
        if (!aigw_store__field_stored(f))
            continue;
        if (!aigw_store__ident_ok(f->name)) {
            set_error(err, AIGW_DBE_DATABASE, NULL, "field %s cannot be stored", f->name);
            cols_free(c);
            return -1;
        }
        json_t *v = json_object_get(obj, f->name);
        char *val = NULL;
        if (f->type == AIGW_FT_FOREIGN) {
            if (v && !json_is_null(v)) {
                const char *fid = json_string_value(json_object_get(v, "id"));
                if (!fid) {
                    char msg[160];
                    snprintf(msg, sizeof(msg), "schema violation (%s.id: missing primary key)",
                             f->name);
                    set_error(err, AIGW_DBE_SCHEMA,
                              json_pack("{s:{s:s}}", f->name, "id", "missing primary key"), "%s",
                              msg);
                    cols_free(c);
                    return -1;
                }
                if (!(val = strdup(fid)))
                    goto nomem;
            }
            if (cols_add(c, f->name, "_id", val, f))
                goto nomem;
        } else {
            if (v && !json_is_null(v) && !(val = unique_text(v)))
                goto nomem;
            if (cols_add(c, "u_", f->name, val, f))
                goto nomem;
        }
    }
    if (has_cache_key(e)) {
        char *ck = cache_key_string(e, obj);
        if (!ck || cols_add(c, "cache_key", "", ck, NULL))
            goto nomem;
    }
    return 0;
nomem:
    cols_free(c);
    oom(err);
    return -1;
}

/* Kong's checks, in Kong's order: primary key (insert only), foreign keys, unique fields,
 * cache key. self_id: the row being replaced (ignored for uniqueness), NULL on insert. */
static int check_row(aigw_store_t *s, const aigw_entity_t *e, const json_t *obj,
                     const colset_t *c, const char *self_id, aigw_db_error_t *err)
{
    char sql[512];
    int r;
    if (!self_id) {
        snprintf(sql, sizeof(sql), "SELECT 1 FROM %s WHERE id = $1", e->name);
        const char *p[] = { c->vals[0] };
        if ((r = exists(s, sql, p, 1, err)) != 0) {
            if (r > 0)
                pk_violation(err, c->vals[0]);
            return -1;
        }
    }
    for (size_t i = 3; i < c->n; i++) {
        const aigw_field_t *f = c->fields[i];
        if (!f || f->type != AIGW_FT_FOREIGN || !c->vals[i])
            continue;
        if (!aigw_store__ident_ok(f->reference)) {
            set_error(err, AIGW_DBE_DATABASE, NULL, "bad reference of %s", f->name);
            return -1;
        }
        snprintf(sql, sizeof(sql), "SELECT 1 FROM %s WHERE id = $1", f->reference);
        const char *p[] = { c->vals[i] };
        if ((r = exists(s, sql, p, 1, err)) <= 0) {
            if (r == 0)
                fk_violation(err, f->name, f->reference, c->vals[i]);
            return -1;
        }
    }
    for (size_t i = 3; i < c->n; i++) {
        const aigw_field_t *f = c->fields[i];
        int is_ck = !f && strcmp(c->names[i], "cache_key") == 0;
        if (!c->vals[i] || (!is_ck && (!f || !(f->flags & AIGW_F_UNIQUE))))
            continue;
        snprintf(sql, sizeof(sql), "SELECT 1 FROM %s WHERE %s = $1%s", e->name, c->names[i],
                 self_id ? " AND id <> $2" : "");
        const char *p[] = { c->vals[i], self_id };
        if ((r = exists(s, sql, p, self_id ? 2 : 1, err)) != 0) {
            if (r > 0) {
                json_t *key;
                if (is_ck)
                    key = cache_key_fields(e, obj);
                else if (f->type == AIGW_FT_FOREIGN)
                    key = json_pack("{s:{s:s}}", f->name, "id", c->vals[i]);
                else
                    key = json_pack("{s:O}", f->name, json_object_get(obj, f->name));
                unique_violation(err, key);
            }
            return -1;
        }
    }
    return 0;
}

/* Deletes the rows of e whose ttl has passed. 0 or -1. */
static int purge_expired(aigw_store_t *s, const aigw_entity_t *e, aigw_db_error_t *err)
{
    char sql[256], now[32];
    now_text(now);
    snprintf(sql, sizeof(sql),
             "DELETE FROM %s WHERE ttl IS NOT NULL AND ttl < CAST($1 AS BIGINT)", e->name);
    const char *p[] = { now };
    return q(s, sql, p, 1, NULL, err);
}

static int write_row(aigw_store_t *s, const aigw_entity_t *e, const json_t *obj, int replace,
                     aigw_db_error_t *err)
{
    if (!entity_ok(e, err))
        return -1;
    colset_t c;
    if (build_cols(e, obj, &c, err) != 0)
        return -1;
    aigw_store__buf_t sql = { 0 };
    if (replace) {
        aigw_store__buf_addf(&sql, "UPDATE %s SET ", e->name);
        for (size_t i = 1; i < c.n; i++)
            aigw_store__buf_addf(&sql, "%s%s = $%zu", i > 1 ? ", " : "", c.names[i], i + 1);
        aigw_store__buf_add(&sql, " WHERE id = $1");
    } else {
        aigw_store__buf_addf(&sql, "INSERT INTO %s (", e->name);
        for (size_t i = 0; i < c.n; i++)
            aigw_store__buf_addf(&sql, "%s%s", i ? ", " : "", c.names[i]);
        aigw_store__buf_add(&sql, ") VALUES (");
        for (size_t i = 0; i < c.n; i++)
            aigw_store__buf_addf(&sql, "%s$%zu", i ? ", " : "", i + 1);
        aigw_store__buf_add(&sql, ")");
    }
    if (sql.oom) {
        aigw_store__buf_free(&sql);
        cols_free(&c);
        oom(err);
        return -1;
    }
    op_t op;
    int result = -1, race = 0;
    if (op_begin(s, &op, err) != 0)
        goto out;
    op.no_bump = (e->flags & AIGW_E_RUNTIME_DATA) != 0;
    /* Rows past their ttl hold no keys: Kong never reads them. */
    if (has_ttl(e) && purge_expired(s, e, err) != 0)
        goto end;
    if (replace) {
        char chk[256];
        snprintf(chk, sizeof(chk), "SELECT 1 FROM %s WHERE id = $1", e->name);
        const char *p[] = { c.vals[0] };
        int r = exists(s, chk, p, 1, err);
        if (r == 0)
            not_found(err, c.vals[0]);
        if (r <= 0)
            goto end;
    }
    if (check_row(s, e, obj, &c, replace ? c.vals[0] : NULL, err) != 0)
        goto end;
    aigw_store__dberr_t dbe;
    if (s->drv->query(s, sql.p, (const char *const *)c.vals, c.n, NULL, &dbe) != 0) {
        /* Another writer got in between the checks and the write. */
        race = dbe.kind == AIGW_STORE__EUNIQUE || dbe.kind == AIGW_STORE__EFOREIGN;
        aigw_store__fail(err, &dbe);
        goto end;
    }
    result = 1;
end:
    if (op_end(s, &op, result, err) != 0)
        result = -1;
    if (race) {
        /* The checks again, now that the other write is visible, to tell the user which key
         * conflicts in Kong's words. */
        aigw_db_error_t again = { 0 };
        if (check_row(s, e, obj, &c, replace ? c.vals[0] : NULL, &again) != 0) {
            aigw_db_error_clear(err);
            *err = again;
        } else {
            aigw_db_error_clear(&again);
        }
    }
out:
    aigw_store__buf_free(&sql);
    cols_free(&c);
    return result > 0 ? 0 : -1;
}

int aigw_store_insert(aigw_store_t *s, const aigw_entity_t *e, const json_t *obj,
                      aigw_db_error_t *err)
{
    return write_row(s, e, obj, 0, err);
}

int aigw_store_replace(aigw_store_t *s, const aigw_entity_t *e, const json_t *obj,
                       aigw_db_error_t *err)
{
    return write_row(s, e, obj, 1, err);
}

/* ---- delete ------------------------------------------------------------------------------ */

/* Refuses while a row that does not cascade refers to a row that would go: the rows of `e`
 * whose id matches `target` ("= $1" for the row being deleted, "IN (SELECT id FROM ...)" for
 * rows its deletion cascades to). Kong's message names the entity being deleted and the
 * table that still refers to it. */
static int restrict_check(aigw_store_t *s, const aigw_entity_t *top, const aigw_entity_t *e,
                          const char *target, const char *id, int depth,
                          aigw_db_error_t *err)
{
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; aigw_entities[i]; i++) {
            const aigw_entity_t *c = aigw_entities[i];
            if (!aigw_store__ident_ok(c->name))
                continue;
            for (const aigw_field_t *f = c->fields; f && f->name; f++) {
                if (f->type != AIGW_FT_FOREIGN || !f->reference ||
                    strcmp(f->reference, e->name) != 0 || !aigw_store__field_stored(f) ||
                    !aigw_store__ident_ok(f->name))
                    continue;
                int cascade = (f->flags & AIGW_F_CASCADE) != 0;
                aigw_store__buf_t sql = { 0 };
                int r = 0;
                if (pass == 0 && !cascade) {
                    aigw_store__buf_addf(&sql, "SELECT 1 FROM %s WHERE %s_id %s LIMIT 1",
                                         c->name, f->name, target);
                    const char *p[] = { id };
                    r = sql.oom ? (oom(err), -1) : exists(s, sql.p, p, 1, err);
                    if (r > 0)
                        restricted(err, top->name, c->name);
                } else if (pass == 1 && cascade && depth < 8) {
                    aigw_store__buf_addf(&sql, "IN (SELECT id FROM %s WHERE %s_id %s)", c->name,
                                         f->name, target);
                    r = sql.oom ? (oom(err), -1)
                                : restrict_check(s, top, c, sql.p, id, depth + 1, err);
                }
                aigw_store__buf_free(&sql);
                if (r != 0)
                    return -1;
            }
        }
    }
    return 0;
}

int aigw_store_delete(aigw_store_t *s, const aigw_entity_t *e, const char *id,
                      aigw_db_error_t *err)
{
    if (!entity_ok(e, err))
        return -1;
    char sql[256];
    const char *p[] = { id };
    op_t op;
    if (op_begin(s, &op, err) != 0)
        return -1;
    op.no_bump = (e->flags & AIGW_E_RUNTIME_DATA) != 0;
    snprintf(sql, sizeof(sql), "SELECT 1 FROM %s WHERE id = $1", e->name);
    int result = exists(s, sql, p, 1, err);
    if (result > 0 && restrict_check(s, e, e, "= $1", id, 0, err) != 0)
        result = -1;
    if (result > 0) {
        snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id = $1", e->name);
        aigw_store__dberr_t dbe;
        if (s->drv->query(s, sql, p, 1, NULL, &dbe) != 0) {
            aigw_store__fail(err, &dbe);
            result = -1;
        }
    }
    int found = result;
    if (op_end(s, &op, result, err) != 0)
        return -1;
    return found > 0 ? 0 : 1;
}

/* ---- reads ------------------------------------------------------------------------------- */

static json_t *parse_data(const char *text, aigw_db_error_t *err)
{
    json_error_t je;
    json_t *v = text ? json_loads(text, 0, &je) : NULL;
    if (!json_is_object(v)) {
        json_decref(v);
        set_error(err, AIGW_DBE_DATABASE, NULL, "a stored entity is not a JSON object");
        return NULL;
    }
    return v;
}

/* One row's data by `column = value`: 0 found, 1 not found, -1 error. */
static int get_by(aigw_store_t *s, const aigw_entity_t *e, const char *where,
                  const char *value, json_t **out, aigw_db_error_t *err)
{
    *out = NULL;
    if (!entity_ok(e, err))
        return -1;
    int ttl = has_ttl(e);
    char now[32];
    now_text(now);
    aigw_store__buf_t sql = { 0 };
    aigw_store__buf_addf(&sql, "SELECT data%s FROM %s t WHERE %s = $1%s ORDER BY id LIMIT 1",
                         ttl ? ", t.ttl" : "", e->name, where,
                         ttl ? " AND (t.ttl IS NULL OR t.ttl >= CAST($2 AS BIGINT))" : "");
    if (sql.oom) {
        oom(err);
        return -1;
    }
    const char *p[] = { value, now };
    aigw_store__rows_t r;
    int rc = q(s, sql.p, p, ttl ? 2 : 1, &r, err);
    aigw_store__buf_free(&sql);
    if (rc != 0)
        return -1;
    if (r.nrows == 0) {
        aigw_store__rows_free(&r);
        return 1;
    }
    *out = parse_data(aigw_store__cell(&r, 0, 0), err);
    if (*out && ttl)
        set_ttl_left(*out, aigw_store__cell(&r, 0, 1), strtoll(now, NULL, 10));
    aigw_store__rows_free(&r);
    return *out ? 0 : -1;
}

int aigw_store_get(aigw_store_t *s, const aigw_entity_t *e, const char *id, json_t **out,
                   aigw_db_error_t *err)
{
    return get_by(s, e, "t.id", id, out, err);
}

/* The SQL expression for an equality filter on field `name` of e: its u_/_id column, else
 * the JSON text of a top-level field. NULL if the field cannot be filtered on. */
static char *field_expr(const aigw_store_t *s, const aigw_entity_t *e, const char *name)
{
    const aigw_field_t *f = aigw_schema_field(e->fields, name);
    if (!f || !aigw_store__ident_ok(f->name) || (f->flags & AIGW_F_INPUT_ONLY))
        return NULL;
    aigw_store__buf_t b = { 0 };
    if (f->flags & AIGW_F_PK)
        aigw_store__buf_add(&b, "t.id");
    else if (f->type == AIGW_FT_FOREIGN)
        aigw_store__buf_addf(&b, "t.%s_id", f->name);
    else if (aigw_store__field_stored(f))
        aigw_store__buf_addf(&b, "t.u_%s", f->name);
    else if (s->dialect == AIGW_STORE__PG)
        aigw_store__buf_addf(&b, "(t.data->>'%s')", f->name);
    else
        aigw_store__buf_addf(&b, "json_extract(t.data, '$.%s')", f->name);
    if (b.oom) {
        aigw_store__buf_free(&b);
        return NULL;
    }
    return b.p;
}

int aigw_store_find(aigw_store_t *s, const aigw_entity_t *e, const char *field,
                    const char *value, json_t **out, aigw_db_error_t *err)
{
    *out = NULL;
    if (!entity_ok(e, err))
        return -1;
    char *expr = field_expr(s, e, field);
    if (!expr) {
        set_error(err, AIGW_DBE_INVALID_OPTIONS, NULL, "invalid option (%s: unknown field)",
                  field ? field : "(null)");
        return -1;
    }
    int r = get_by(s, e, expr, value, out, err);
    free(expr);
    return r;
}

/* ---- list -------------------------------------------------------------------------------- */

#define MAX_PARAMS 8

typedef struct sqlq {
    aigw_store__buf_t b;
    const char *params[MAX_PARAMS];
    size_t n;
} sqlq_t;

/* Appends "$k" for a new parameter. */
static void param(sqlq_t *x, const char *v)
{
    if (x->n >= MAX_PARAMS) {
        x->b.oom = 1;
        return;
    }
    x->params[x->n++] = v;
    aigw_store__buf_addf(&x->b, "$%zu", x->n);
}

/* tags as a JSON array text (a parameter), NULL when there are none. */
static char *tags_json(const char *const *tags, size_t *count)
{
    *count = 0;
    if (!tags || !tags[0])
        return NULL;
    json_t *a = json_array();
    for (size_t i = 0; tags[i]; i++) {
        json_array_append_new(a, json_string(tags[i]));
        (*count)++;
    }
    char *t = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return t;
}

static void tags_filter(sqlq_t *x, aigw_store__dialect_t d, const char *tags, int any)
{
    if (d == AIGW_STORE__PG) {
        aigw_store__buf_addf(&x->b, " AND (t.data->'tags') %s ARRAY(SELECT "
                                    "jsonb_array_elements_text(",
                             any ? "?|" : "?&");
        param(x, tags);
        aigw_store__buf_add(&x->b, "::jsonb))");
        return;
    }
    aigw_store__buf_add(&x->b, " AND json_type(t.data, '$.tags') = 'array' AND ");
    if (any) {
        aigw_store__buf_add(&x->b, "EXISTS (SELECT 1 FROM json_each(t.data, '$.tags') j "
                                   "WHERE j.value IN (SELECT w.value FROM json_each(");
        param(x, tags);
        aigw_store__buf_add(&x->b, ") w))");
    } else {
        aigw_store__buf_add(&x->b, "NOT EXISTS (SELECT 1 FROM json_each(");
        param(x, tags);
        aigw_store__buf_add(&x->b, ") w WHERE w.value NOT IN (SELECT j.value FROM "
                                   "json_each(t.data, '$.tags') j))");
    }
}

/* Rows (id, data) of e after `after` (NULL: from the start), at most limit, by id. */
static int page_rows(aigw_store_t *s, const aigw_entity_t *e, const aigw_store_query_t *qy,
                     const char *after, size_t limit, aigw_store__rows_t *rows,
                     aigw_db_error_t *err)
{
    sqlq_t x = { 0 };
    char *tags = NULL, *fk = NULL, *eq = NULL;
    size_t ntags = 0;
    int rc = -1;
    char now[32];
    now_text(now);
    int ttl = has_ttl(e);
    aigw_store__buf_addf(&x.b, "SELECT t.id, t.data%s FROM %s t WHERE 1 = 1",
                         ttl ? ", t.ttl" : "", e->name);
    if (ttl) {
        aigw_store__buf_add(&x.b, " AND (t.ttl IS NULL OR t.ttl >= CAST(");
        param(&x, now);
        aigw_store__buf_add(&x.b, " AS BIGINT))");
    }
    if (after) {
        aigw_store__buf_add(&x.b, " AND t.id > ");
        param(&x, after);
    }
    if (qy && qy->fk_field) {
        const aigw_field_t *f = aigw_schema_field(e->fields, qy->fk_field);
        if (!f || f->type != AIGW_FT_FOREIGN || !(fk = field_expr(s, e, qy->fk_field))) {
            set_error(err, AIGW_DBE_INVALID_OPTIONS, NULL,
                      "invalid option (%s: not a foreign key of %s)", qy->fk_field, e->name);
            goto out;
        }
        aigw_store__buf_addf(&x.b, " AND %s ", fk);
        if (qy->fk_id) {
            aigw_store__buf_add(&x.b, "= ");
            param(&x, qy->fk_id);
        } else {
            aigw_store__buf_add(&x.b, "IS NULL");
        }
    }
    if (qy && qy->tags && qy->tags[0]) {
        if (!(tags = tags_json(qy->tags, &ntags))) {
            oom(err);
            goto out;
        }
        tags_filter(&x, s->dialect, tags, qy->tags_any);
    }
    if (qy && qy->eq_field) {
        if (!(eq = field_expr(s, e, qy->eq_field))) {
            set_error(err, AIGW_DBE_INVALID_OPTIONS, NULL, "invalid option (%s: unknown field)",
                      qy->eq_field);
            goto out;
        }
        aigw_store__buf_addf(&x.b, " AND %s = ", eq);
        param(&x, qy->eq_value ? qy->eq_value : "");
    }
    if (limit)   /* 0: every row, in no particular order */
        aigw_store__buf_addf(&x.b, " ORDER BY t.id LIMIT %zu", limit);
    if (x.b.oom) {
        oom(err);
        goto out;
    }
    rc = q(s, x.b.p, x.params, x.n, rows, err);
out:
    aigw_store__buf_free(&x.b);
    free(tags);
    free(fk);
    free(eq);
    return rc;
}

int aigw_store_list(aigw_store_t *s, const aigw_entity_t *e, const aigw_store_query_t *qy,
                    aigw_store_page_t *page, aigw_db_error_t *err)
{
    page->data = NULL;
    page->offset = NULL;
    if (!entity_ok(e, err))
        return -1;
    size_t size = qy->size;
    if (size < 1 || size > 1000) {
        set_error(err, AIGW_DBE_INVALID_SIZE, NULL, "size must be an integer between 1 and 1000");
        return -1;
    }
    char *after = NULL;
    if (qy->offset && !(after = b64_decode(qy->offset))) {
        bad_offset(err, qy->offset);
        return -1;
    }
    aigw_store__rows_t rows;
    int rc = page_rows(s, e, qy, after, size + 1, &rows, err);
    free(after);
    if (rc != 0)
        return -1;
    json_t *data = json_array();
    size_t n = rows.nrows > size ? size : rows.nrows;
    long long now = (long long)time(NULL);
    for (size_t i = 0; i < n; i++) {
        json_t *v = parse_data(aigw_store__cell(&rows, i, 1), err);
        if (!v) {
            json_decref(data);
            aigw_store__rows_free(&rows);
            return -1;
        }
        if (rows.ncols > 2)
            set_ttl_left(v, aigw_store__cell(&rows, i, 2), now);
        json_array_append_new(data, v);
    }
    if (rows.nrows > size) {
        const char *last = aigw_store__cell(&rows, size - 1, 0);
        page->offset = b64_encode(last, strlen(last));
        if (!page->offset) {
            json_decref(data);
            aigw_store__rows_free(&rows);
            oom(err);
            return -1;
        }
    }
    aigw_store__rows_free(&rows);
    page->data = data;
    return 0;
}

int aigw_store_each(aigw_store_t *s, const aigw_entity_t *e,
                    int (*fn)(const json_t *obj, void *ud), void *ud, aigw_db_error_t *err)
{
    if (!entity_ok(e, err))
        return -1;
    char *after = NULL;
    for (;;) {
        aigw_store__rows_t rows;
        if (page_rows(s, e, NULL, after, 500, &rows, err) != 0) {
            free(after);
            return -1;
        }
        free(after);
        after = NULL;
        long long now = (long long)time(NULL);
        for (size_t i = 0; i < rows.nrows; i++) {
            json_t *v = parse_data(aigw_store__cell(&rows, i, 1), err);
            if (v && rows.ncols > 2)
                set_ttl_left(v, aigw_store__cell(&rows, i, 2), now);
            int r = v ? fn(v, ud) : -1;
            json_decref(v);
            if (r != 0) {
                if (v)
                    set_error(err, AIGW_DBE_DATABASE, NULL, "stopped by the caller (%d)", r);
                aigw_store__rows_free(&rows);
                return -1;
            }
        }
        if (rows.nrows < 500) {
            aigw_store__rows_free(&rows);
            return 0;
        }
        after = strdup(aigw_store__cell(&rows, rows.nrows - 1, 0));
        aigw_store__rows_free(&rows);
        if (!after) {
            oom(err);
            return -1;
        }
    }
}

typedef struct raw_row {
    uint64_t key;   /* the id's first 8 bytes, big-endian: compares as strcmp does on them */
    const char *id, *json;
} raw_row_t;

static int cmp_raw_row(const void *a, const void *b)
{
    const raw_row_t *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return strcmp(x->id, y->id);
}

static uint64_t id_key(const char *id)
{
    uint64_t k = 0;
    for (int i = 0; i < 8 && id[i]; i++)
        k |= (uint64_t)(unsigned char)id[i] << (56 - 8 * i);
    return k;
}

/* One unordered read, sorted here by id (the admin API's order; a snapshot's hash depends on
 * it): in id order SQLite walks the primary-key index and looks each row up in the table,
 * ~1 us a row, most of a snapshot build at 10k routes; a table scan and a sort of pointers
 * take a fraction of that. */
int aigw_store_each_raw(aigw_store_t *s, const aigw_entity_t *e,
                        int (*fn)(const char *json, void *ud), void *ud, aigw_db_error_t *err)
{
    if (!entity_ok(e, err))
        return -1;
    aigw_store__rows_t rows;
    if (page_rows(s, e, NULL, NULL, 0, &rows, err) != 0)
        return -1;
    raw_row_t *v = rows.nrows ? malloc(rows.nrows * sizeof(*v)) : NULL;
    if (rows.nrows && !v) {
        aigw_store__rows_free(&rows);
        oom(err);
        return -1;
    }
    for (size_t i = 0; i < rows.nrows; i++) {
        const char *id = aigw_store__cell(&rows, i, 0);
        v[i] = (raw_row_t){ id_key(id), id, aigw_store__cell(&rows, i, 1) };
    }
    if (rows.nrows > 1)
        qsort(v, rows.nrows, sizeof(*v), cmp_raw_row);
    int rc = 0;
    for (size_t i = 0; i < rows.nrows && rc == 0; i++) {
        int r = fn(v[i].json, ud);
        if (r != 0) {
            set_error(err, AIGW_DBE_DATABASE, NULL, "stopped by the caller (%d)", r);
            rc = -1;
        }
    }
    free(v);
    aigw_store__rows_free(&rows);
    return rc;
}

/* ---- tags -------------------------------------------------------------------------------- */

static int has_tags(const aigw_entity_t *e)
{
    const aigw_field_t *f = aigw_schema_field(e->fields, "tags");
    return f && (f->type == AIGW_FT_SET || f->type == AIGW_FT_ARRAY) &&
           aigw_store__ident_ok(e->name);
}

int aigw_store_tags(aigw_store_t *s, const char *tag, size_t size, const char *offset,
                    aigw_store_page_t *page, aigw_db_error_t *err)
{
    page->data = NULL;
    page->offset = NULL;
    if (size < 1 || size > 1000) {
        set_error(err, AIGW_DBE_INVALID_SIZE, NULL, "size must be an integer between 1 and 1000");
        return -1;
    }
    /* The offset is (entity_id, entity_name, position of the tag), tab-separated. */
    char *after = NULL, *after_name = NULL, *after_ord = NULL;
    if (offset) {
        after = b64_decode(offset);
        char *t1 = after ? strchr(after, '\t') : NULL;
        char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (t2) {
            *t1 = *t2 = 0;
            after_name = t1 + 1;
            after_ord = t2 + 1;
        }
        int ok = after_ord && after_ord[0] && after_ord[0] != '-' &&
                 strspn(after_ord, "0123456789") == strlen(after_ord) &&
                 strlen(after_ord) < 10 && !strchr(after_name, '\t');
        if (!ok) {
            free(after);
            bad_offset(err, offset);
            return -1;
        }
    }
    int pg = s->dialect == AIGW_STORE__PG;
    const char *collate = pg ? " COLLATE \"C\"" : "";
    sqlq_t x = { 0 };
    aigw_store__buf_add(&x.b, "SELECT entity_id, entity_name, tag, ord FROM (");
    int any = 0;
    for (size_t i = 0; aigw_entities[i]; i++) {
        const aigw_entity_t *e = aigw_entities[i];
        if (!has_tags(e))
            continue;
        if (any)
            aigw_store__buf_add(&x.b, " UNION ALL ");
        any = 1;
        if (pg)
            aigw_store__buf_addf(&x.b,
                                 "SELECT t.id AS entity_id, text '%s' AS entity_name, j.tag "
                                 "AS tag, j.ord AS ord FROM %s t, jsonb_array_elements_text("
                                 "CASE WHEN jsonb_typeof(t.data->'tags') = 'array' THEN "
                                 "t.data->'tags' ELSE '[]'::jsonb END) WITH ORDINALITY AS "
                                 "j(tag, ord)",
                                 e->name, e->name);
        else
            aigw_store__buf_addf(&x.b,
                                 "SELECT t.id AS entity_id, '%s' AS entity_name, j.value AS "
                                 "tag, j.key AS ord FROM %s t, json_each(t.data, '$.tags') j "
                                 "WHERE json_type(t.data, '$.tags') = 'array'",
                                 e->name, e->name);
        if (has_ttl(e))
            aigw_store__buf_addf(&x.b, "%s (t.ttl IS NULL OR t.ttl >= %lld)",
                                 pg ? " WHERE" : " AND", (long long)time(NULL));
    }
    if (!any) {
        free(after);
        aigw_store__buf_free(&x.b);
        page->data = json_array();
        return 0;
    }
    aigw_store__buf_add(&x.b, ") x WHERE 1 = 1");
    if (tag) {
        aigw_store__buf_add(&x.b, " AND tag = ");
        param(&x, tag);
    }
    if (after) {
        /* (entity_id, entity_name, ord) > the offset's, in the ORDER BY's order */
        aigw_store__buf_add(&x.b, " AND (entity_id > ");
        param(&x, after);
        aigw_store__buf_add(&x.b, " OR (entity_id = ");
        param(&x, after);
        aigw_store__buf_addf(&x.b, " AND (entity_name%s > ", collate);
        param(&x, after_name);
        aigw_store__buf_add(&x.b, " OR (entity_name = ");
        param(&x, after_name);
        aigw_store__buf_add(&x.b, " AND ord > CAST(");
        param(&x, after_ord);
        aigw_store__buf_add(&x.b, " AS INTEGER)))))");
    }
    aigw_store__buf_addf(&x.b, " ORDER BY entity_id, entity_name%s, ord LIMIT %zu", collate,
                         size + 1);
    aigw_store__rows_t rows;
    int rc = x.b.oom ? (oom(err), -1) : q(s, x.b.p, x.params, x.n, &rows, err);
    aigw_store__buf_free(&x.b);
    free(after);
    if (rc != 0)
        return -1;
    json_t *data = json_array();
    size_t n = rows.nrows > size ? size : rows.nrows;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, json_pack("{s:s?, s:s?, s:s?}", "tag",
                                              aigw_store__cell(&rows, i, 2), "entity_name",
                                              aigw_store__cell(&rows, i, 1), "entity_id",
                                              aigw_store__cell(&rows, i, 0)));
    if (rows.nrows > size) {
        aigw_store__buf_t o = { 0 };
        aigw_store__buf_addf(&o, "%s\t%s\t%s", aigw_store__cell(&rows, size - 1, 0),
                             aigw_store__cell(&rows, size - 1, 1),
                             aigw_store__cell(&rows, size - 1, 3));
        page->offset = o.oom ? NULL : b64_encode(o.p, o.n);
        aigw_store__buf_free(&o);
        if (!page->offset) {
            json_decref(data);
            aigw_store__rows_free(&rows);
            oom(err);
            return -1;
        }
    }
    aigw_store__rows_free(&rows);
    page->data = data;
    return 0;
}

/* ---- plugins, version -------------------------------------------------------------------- */

json_t *aigw_store_plugin_names(aigw_store_t *s, aigw_db_error_t *err)
{
    const aigw_entity_t *e = aigw_schema_entity("plugins");
    if (!e || !aigw_store__ident_ok(e->name))
        return json_array();
    char sql[256];
    if (s->dialect == AIGW_STORE__PG)
        snprintf(sql, sizeof(sql),
                 "SELECT DISTINCT (data->>'name') COLLATE \"C\" AS n FROM %s "
                 "WHERE data->>'name' IS NOT NULL ORDER BY n",
                 e->name);
    else
        snprintf(sql, sizeof(sql),
                 "SELECT DISTINCT json_extract(data, '$.name') AS n FROM %s "
                 "WHERE json_extract(data, '$.name') IS NOT NULL ORDER BY n",
                 e->name);
    aigw_store__rows_t r;
    if (q(s, sql, NULL, 0, &r, err) != 0)
        return NULL;
    json_t *a = json_array();
    for (size_t i = 0; i < r.nrows; i++)
        json_array_append_new(a, json_string(aigw_store__cell(&r, i, 0)));
    aigw_store__rows_free(&r);
    return a;
}

int aigw_store_expire(aigw_store_t *s, aigw_db_error_t *err)
{
    char now[32], sql[256];
    now_text(now);
    const char *p[] = { now };
    int any = 0, any_config = 0;
    for (size_t i = 0; aigw_entities[i] && !any_config; i++) {
        const aigw_entity_t *e = aigw_entities[i];
        if (!has_ttl(e) || !aigw_store__ident_ok(e->name))
            continue;
        snprintf(sql, sizeof(sql),
                 "SELECT 1 FROM %s WHERE ttl IS NOT NULL AND ttl < CAST($1 AS BIGINT) LIMIT 1",
                 e->name);
        int r = exists(s, sql, p, 1, err);
        if (r < 0)
            return -1;
        any |= r;
        if (r && !(e->flags & AIGW_E_RUNTIME_DATA))
            any_config = 1;
    }
    if (!any)
        return 0;
    op_t op;
    if (op_begin(s, &op, err) != 0)
        return -1;
    /* expired tokens and codes leave no trace in the configuration */
    op.no_bump = !any_config;
    int result = 1;
    for (size_t i = 0; aigw_entities[i] && result > 0; i++)
        if (has_ttl(aigw_entities[i]) && aigw_store__ident_ok(aigw_entities[i]->name) &&
            purge_expired(s, aigw_entities[i], err) != 0)
            result = -1;
    if (op_end(s, &op, result, err) != 0)
        return -1;
    return 1;
}

int aigw_store_version(aigw_store_t *s, long long *out, aigw_db_error_t *err)
{
    aigw_store__rows_t r;
    if (q(s, "SELECT version FROM " AIGW_STORE__VERSION_TABLE " WHERE id = 1", NULL, 0, &r,
          err) != 0)
        return -1;
    const char *v = r.nrows ? aigw_store__cell(&r, 0, 0) : NULL;
    if (!v) {
        aigw_store__rows_free(&r);
        set_error(err, AIGW_DBE_DATABASE, NULL, "the configuration version row is missing");
        return -1;
    }
    *out = strtoll(v, NULL, 10);
    aigw_store__rows_free(&r);
    return 0;
}

/* ---- rate-limiting counters (cluster policy) ---------------------------------------------- */

int aigw_store_ratelimit_take(aigw_store_t *s, const char *const *keys, const double *limits,
                              const long long *expire_at, size_t n, long long now,
                              long long *usage, int *admitted, aigw_db_error_t *err)
{
    static const char upsert[] =
        "INSERT INTO ratelimiting_counters (counter_key, value, ttl) VALUES ($1, 1, $2) "
        "ON CONFLICT (counter_key) DO UPDATE SET value = ratelimiting_counters.value + 1 "
        "RETURNING value";
    *admitted = 0;
    if (aigw_store_begin(s, err) != 0)
        return -1;
    int over = 0;
    for (size_t i = 0; i < n; i++) {
        char ttl[24];
        snprintf(ttl, sizeof(ttl), "%lld", expire_at[i]);
        const char *prm[2] = { keys[i], ttl };
        aigw_store__rows_t r;
        if (q(s, upsert, prm, 2, &r, err) != 0) {
            aigw_store_rollback(s);
            return -1;
        }
        long long v = r.nrows == 1 && aigw_store__cell(&r, 0, 0)
                          ? strtoll(aigw_store__cell(&r, 0, 0), NULL, 10) : 1;
        aigw_store__rows_free(&r);
        usage[i] = v - 1;
        if ((double)v > limits[i])
            over = 1;
    }
    if (over) {
        aigw_store_rollback(s);
    } else {
        if (aigw_store_commit(s, err) != 0) {
            aigw_store_rollback(s);
            return -1;
        }
        *admitted = 1;
    }
    /* purge ended periods now and then (at most once a minute per connection's process) */
    static _Atomic long long last_purge;
    long long lp = atomic_load(&last_purge);
    if (now - lp >= 60 && atomic_compare_exchange_strong(&last_purge, &lp, now)) {
        char t[24];
        snprintf(t, sizeof(t), "%lld", now);
        const char *prm[1] = { t };
        aigw_store__dberr_t dbe;
        (void)s->drv->query(s, "DELETE FROM ratelimiting_counters WHERE ttl < $1", prm, 1, NULL,
                            &dbe);
    }
    return 0;
}
