/* aigwd/store/sql.c: SQL text built from the schema tables: each entity's table for either
 * dialect and the whole of migration 001_initial (which the committed
 * migrations/<dialect>/001_initial.sql files must equal; a unit test checks). Pure. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/db.h"

void aigw_store__buf_add(aigw_store__buf_t *b, const char *s)
{
    if (b->oom)
        return;
    size_t n = strlen(s);
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n + 1);
    b->n += n;
}

void aigw_store__buf_addf(aigw_store__buf_t *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        aigw_store__buf_add(b, small);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    aigw_store__buf_add(b, big);
    free(big);
}

void aigw_store__buf_free(aigw_store__buf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

int aigw_store__ident_ok(const char *name)
{
    if (!name || !name[0] || strlen(name) > 48)
        return 0;
    if (!((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return 0;
    return 1;
}

int aigw_store__field_stored(const aigw_field_t *f)
{
    if (f->flags & (AIGW_F_INPUT_ONLY | AIGW_F_PK))
        return 0;
    if (f->alias_of)
        return 0;
    return f->type == AIGW_FT_FOREIGN || (f->flags & AIGW_F_UNIQUE);
}

/* id, data, created_at */
static const char *const sqlite_types[] = { "TEXT", "TEXT", "INTEGER" };
static const char *const pg_types[] = { "text COLLATE \"C\"", "jsonb", "bigint" };

int aigw_store__entity_ddl(const aigw_entity_t *e, aigw_store__dialect_t d,
                           aigw_store__buf_t *out)
{
    const char *const *ty = d == AIGW_STORE__PG ? pg_types : sqlite_types;
    const char *text = d == AIGW_STORE__PG ? "text" : "TEXT";
    if (!aigw_store__ident_ok(e->name))
        return -1;
    aigw_store__buf_addf(out, "CREATE TABLE %s (\n", e->name);
    aigw_store__buf_addf(out, "  id %s PRIMARY KEY,\n", ty[0]);
    aigw_store__buf_addf(out, "  data %s NOT NULL,\n", ty[1]);
    aigw_store__buf_addf(out, "  created_at %s NOT NULL", ty[2]);
    for (const aigw_field_t *f = e->fields; f && f->name; f++) {
        if (!aigw_store__field_stored(f))
            continue;
        if (!aigw_store__ident_ok(f->name))
            return -1;
        if (f->type == AIGW_FT_FOREIGN) {
            if (!aigw_store__ident_ok(f->reference))
                return -1;
            aigw_store__buf_addf(out, ",\n  %s_id %s%s REFERENCES %s (id)%s", f->name, ty[0],
                                 (f->flags & AIGW_F_UNIQUE) ? " UNIQUE" : "", f->reference,
                                 (f->flags & AIGW_F_CASCADE) ? " ON DELETE CASCADE" : "");
        } else {
            aigw_store__buf_addf(out, ",\n  u_%s %s UNIQUE", f->name, text);
        }
    }
    if (e->cache_key && e->cache_key[0])
        aigw_store__buf_addf(out, ",\n  cache_key %s UNIQUE", text);
    aigw_store__buf_add(out, "\n);\n");
    for (const aigw_field_t *f = e->fields; f && f->name; f++) {
        if (!aigw_store__field_stored(f) || f->type != AIGW_FT_FOREIGN ||
            (f->flags & AIGW_F_UNIQUE))
            continue;
        aigw_store__buf_addf(out, "CREATE INDEX %s_%s_id_idx ON %s (%s_id);\n", e->name, f->name,
                             e->name, f->name);
    }
    return out->oom ? -1 : 0;
}

char *aigw_store__initial_sql(aigw_store__dialect_t d)
{
    aigw_store__buf_t b = { 0 };
    const char *dname = d == AIGW_STORE__PG ? "postgres" : "sqlite";
    aigw_store__buf_addf(&b,
                         "-- aigw migration 001_initial (%s): the configuration store.\n"
                         "-- Generated from the schema tables (aigwd/schema) by "
                         "aigwd/store/sql.c; the unit test\n"
                         "-- unit.store fails when this file and the generator differ.\n"
                         "-- One table per entity: id, the entity as JSON (data), created_at, "
                         "u_<field> for\n"
                         "-- unique fields, <field>_id for foreign keys, cache_key for fields "
                         "unique together.\n\n",
                         dname);
    aigw_store__buf_addf(&b,
                         "CREATE TABLE " AIGW_STORE__VERSION_TABLE " (\n"
                         "  id %s PRIMARY KEY CHECK (id = 1),\n"
                         "  version %s NOT NULL\n"
                         ");\n"
                         "INSERT INTO " AIGW_STORE__VERSION_TABLE " (id, version) VALUES (1, 0);\n",
                         d == AIGW_STORE__PG ? "integer" : "INTEGER",
                         d == AIGW_STORE__PG ? "bigint" : "INTEGER");
    for (size_t i = 0; aigw_entities[i]; i++) {
        aigw_store__buf_add(&b, "\n");
        if (aigw_store__entity_ddl(aigw_entities[i], d, &b) != 0) {
            aigw_store__buf_free(&b);
            return NULL;
        }
    }
    if (b.oom) {
        aigw_store__buf_free(&b);
        return NULL;
    }
    return b.p;
}
