/* aigwctl/config.c: declarative workflows, as decK users know them: config dump, validate, diff
 * and sync, in Kong's declarative format (_format_version "3.0"), YAML or JSON.
 *
 * A file is read into "items" (one per entity, nested ones included, foreign keys resolved to
 * other items of the file); the node is read into items through the admin API. Items of the
 * file match live ones by id when the file gives one, else by natural key (name, username,
 * plugin name and scope, upstream and target, credential key within its consumer). The diff
 * compares the fields the file sets plus the schema's defaults; sync applies it in dependency
 * order (parents created and updated first, children deleted first). */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sbuf.h"
#include "common/yaml.h"

/* ---- entity kinds -------------------------------------------------------------------------- */

#define NFK 3

typedef struct kind {
    const char *coll;            /* declarative collection = schema name */
    const char *word;            /* for messages */
    const char *path;            /* admin collection path */
    const char *fk[NFK];         /* foreign key fields ... */
    const char *fkcoll[NFK];     /* ... and the collections they reference */
    const char *owner;           /* the foreign key the admin path nests under (targets) */
    const char *nested;          /* the nested segment for creation under the owner */
    const char *key;             /* natural key field */
    const char *key2;            /* alternative natural key (consumers' custom_id) */
    int scoped;                  /* the natural key includes the foreign keys */
    int key_secret;              /* the natural key is a secret (key-auth keys) */
    const char *ref_key;         /* field a reference by name uses (endpoint key) */
} kind_t;

/* Parents before children (aigwd's entity order). */
static const kind_t kinds[] = {
    { "certificates", "certificate", "certificates", { 0 }, { 0 }, NULL, NULL, NULL, NULL, 0, 0, NULL },
    { "snis", "sni", "snis", { "certificate" }, { "certificates" }, NULL, NULL, "name", NULL, 0, 0, "name" },
    { "ca_certificates", "ca-certificate", "ca_certificates", { 0 }, { 0 }, NULL, NULL, "cert", NULL, 0, 0, NULL },
    { "services", "service", "services", { 0 }, { 0 }, NULL, NULL, "name", NULL, 0, 0, "name" },
    { "routes", "route", "routes", { "service" }, { "services" }, NULL, NULL, "name", NULL, 0, 0, "name" },
    { "consumers", "consumer", "consumers", { 0 }, { 0 }, NULL, NULL, "username", "custom_id", 0, 0, "username" },
    { "upstreams", "upstream", "upstreams", { 0 }, { 0 }, NULL, NULL, "name", NULL, 0, 0, "name" },
    { "targets", "target", "targets", { "upstream" }, { "upstreams" }, "upstream", "targets", "target", NULL, 1, 0, "target" },
    { "plugins", "plugin", "plugins", { "service", "route", "consumer" },
      { "services", "routes", "consumers" }, NULL, NULL, "name", NULL, 1, 0, NULL },
    { "jwt_secrets", "jwt credential", "jwts", { "consumer" }, { "consumers" }, "consumer", "jwt", "key", NULL, 1, 0, "key" },
    { "keyauth_credentials", "key-auth credential", "key-auths", { "consumer" }, { "consumers" }, "consumer", "key-auth", "key", NULL, 1, 1, NULL },
    { "basicauth_credentials", "basic-auth credential", "basic-auths", { "consumer" }, { "consumers" }, "consumer", "basic-auth", "username", NULL, 1, 0, "username" },
    { "acls", "acl", "acls", { "consumer" }, { "consumers" }, "consumer", "acls", "group", NULL, 1, 0, NULL },
    { "oauth2_credentials", "oauth2 credential", "oauth2", { "consumer" }, { "consumers" }, "consumer", "oauth2", "client_id", NULL, 1, 0, "client_id" },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static const kind_t *kind_by_coll(const char *coll)
{
    for (size_t i = 0; i < NKINDS; i++)
        if (strcmp(kinds[i].coll, coll) == 0)
            return &kinds[i];
    return NULL;
}

static int fk_slot(const kind_t *k, const char *coll)
{
    for (int s = 0; s < NFK; s++)
        if (k->fkcoll[s] && strcmp(k->fkcoll[s], coll) == 0)
            return s;
    return -1;
}

/* Fields whose values are never printed. */
static int secret_field(const kind_t *k, const char *f)
{
    if (strcmp(f, "secret") == 0 || strcmp(f, "password") == 0 || strcmp(f, "client_secret") == 0 ||
        strcmp(f, "provision_key") == 0)
        return 1;
    if (strcmp(k->coll, "keyauth_credentials") == 0 && strcmp(f, "key") == 0)
        return 1;
    if (strcmp(k->coll, "certificates") == 0 && (strcmp(f, "key") == 0 || strcmp(f, "key_alt") == 0))
        return 1;
    return 0;
}

/* ---- items --------------------------------------------------------------------------------- */

typedef struct item {
    const kind_t *k;
    json_t *obj;       /* fields, without nested collections and foreign keys */
    json_t *raw;       /* file: as written, without nested collections (for schema checks) */
    json_t *ref[NFK];  /* file: foreign keys as written, resolved after collection */
    char *path;        /* file: where it is, "services[0].routes[1]" */
    int fk[NFK];       /* file: the referenced item, -1 for none */
    char *fkid[NFK];   /* live: the referenced id, NULL for none */
    int match;         /* the item it matched in the other set, -1 */
    char *newid;       /* sync: the id it got when created */
} item_t;

typedef struct set {
    item_t *v;
    size_t n, cap;
} set_t;

static int set_add(set_t *s, const kind_t *k, json_t *obj)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 32;
        item_t *nv = realloc(s->v, nc * sizeof(*nv));
        if (!nv)
            return -1;
        s->v = nv;
        s->cap = nc;
    }
    item_t *it = &s->v[s->n];
    memset(it, 0, sizeof(*it));
    it->k = k;
    it->obj = obj;
    it->match = -1;
    for (int i = 0; i < NFK; i++)
        it->fk[i] = -1;
    return (int)s->n++;
}

static void set_free(set_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        item_t *it = &s->v[i];
        json_decref(it->obj);
        json_decref(it->raw);
        for (int j = 0; j < NFK; j++) {
            json_decref(it->ref[j]);
            free(it->fkid[j]);
        }
        free(it->path);
        free(it->newid);
    }
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static const char *item_id(const item_t *it)
{
    return json_string_value(json_object_get(it->obj, "id"));
}

/* ---- problems ------------------------------------------------------------------------------ */

static void problem(json_t *probs, const char *path, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void problem(json_t *probs, const char *path, const char *field, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *p = json_object();
    json_object_set_new(p, "path", json_string(path && *path ? path : "(document)"));
    if (field)
        json_object_set_new(p, "field", json_string(field));
    json_object_set_new(p, "message", json_string(msg));
    json_array_append_new(probs, p);
}

static void print_problems(ctl_t *c, const char *file, json_t *probs)
{
    size_t i;
    json_t *p;
    json_array_foreach(probs, i, p) {
        const char *f = json_string_value(json_object_get(p, "field"));
        printf("%s%s%s: %s%s%s%s\n", ctl_red(c), json_string_value(json_object_get(p, "path")),
               ctl_reset(c), f ? f : "", f ? ": " : "",
               json_string_value(json_object_get(p, "message")), "");
    }
    printf("%s: %zu problem%s\n", file, json_array_size(probs), json_array_size(probs) == 1 ? "" : "s");
}

/* The document in file (YAML or JSON). NULL with a message printed. */
static json_t *load_doc(const char *file)
{
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
    if (!f) {
        fprintf(stderr, "aigwctl: cannot open %s: %s\n", file, strerror(errno));
        return NULL;
    }
    aigw_sbuf_t b = { 0 };
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        aigw_sbuf_addn(&b, buf, n);
    int rerr = ferror(f);
    if (f != stdin)
        fclose(f);
    if (rerr || b.oom) {
        fprintf(stderr, "aigwctl: cannot read %s\n", file);
        aigw_sbuf_free(&b);
        return NULL;
    }
    const char *t = b.p ? b.p : "";
    size_t i = 0;
    while (i < b.n && (t[i] == ' ' || t[i] == '\t' || t[i] == '\r' || t[i] == '\n'))
        i++;
    json_t *doc;
    char err[320];
    if (i < b.n && t[i] == '{') {
        json_error_t je;
        doc = json_loadb(t, b.n, 0, &je);
        if (!doc)
            snprintf(err, sizeof(err), "line %d: %s", je.line, je.text);
    } else {
        /* Kong's lyaml reading (common/yaml.h), as aigwd's; its errors are "L:C: problem". */
        char yerr[300];
        if (aigw_yaml_parse(t, b.n, &doc, yerr, sizeof(yerr)) != 0) {
            doc = NULL;
            snprintf(err, sizeof(err), "line %s", yerr);
        }
    }
    aigw_sbuf_free(&b);
    if (!doc) {
        fprintf(stderr, "aigwctl: %s: %s\n", file, err);
        return NULL;
    }
    if (!json_is_object(doc)) {
        fprintf(stderr, "aigwctl: %s: the document must be a mapping (with _format_version and "
                        "entity lists)\n", file);
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* ---- the file's items ------------------------------------------------------------------------ */

/* A service's url as protocol, host, port, path (Kong's shorthand). 0 ok, -1 unparseable. */
static int expand_url(json_t *obj)
{
    const char *url = json_string_value(json_object_get(obj, "url"));
    if (!url)
        return 0;
    const char *sep = strstr(url, "://");
    if (!sep || sep == url)
        return -1;
    char scheme[16];
    size_t sl = (size_t)(sep - url);
    if (sl >= sizeof(scheme))
        return -1;
    for (size_t i = 0; i < sl; i++)
        scheme[i] = (char)((url[i] >= 'A' && url[i] <= 'Z') ? url[i] + 32 : url[i]);
    scheme[sl] = '\0';
    const char *h = sep + 3, *he;
    const char *after;
    if (*h == '[') {
        he = strchr(h, ']');
        if (!he)
            return -1;
        he++;
    } else {
        he = h;
        while (*he && *he != ':' && *he != '/' && *he != '?' && *he != '#')
            he++;
    }
    if (he == h)
        return -1;
    after = he;
    long port = (strcmp(scheme, "https") == 0 || strcmp(scheme, "grpcs") == 0 ||
                 strcmp(scheme, "tls") == 0) ? 443 : 80;
    if (*after == ':') {
        char *end;
        port = strtol(after + 1, &end, 10);
        if (end == after + 1 || port < 0 || port > 65535)
            return -1;
        after = end;
    }
    json_object_set_new(obj, "protocol", json_string(scheme));
    json_object_set_new(obj, "host", json_stringn(h, (size_t)(he - h)));
    json_object_set_new(obj, "port", json_integer(port));
    json_object_set_new(obj, "path", *after == '/' ? json_string(after) : json_null());
    json_object_del(obj, "url");
    return 0;
}

typedef struct fileset {
    set_t s;
    json_t *probs;
} fileset_t;

static void collect(fileset_t *fs, const kind_t *k, json_t *list, const char *prefix, int parent,
                    const kind_t *pk);

static void collect_one(fileset_t *fs, const kind_t *k, json_t *el, const char *path, int parent,
                        const kind_t *pk)
{
    if (!json_is_object(el)) {
        problem(fs->probs, path, NULL, "expected a mapping (a %s)", k->word);
        return;
    }
    json_t *obj = json_deep_copy(el);
    json_object_del(obj, "_comment");
    json_object_del(obj, "_ignore");
    int idx = set_add(&fs->s, k, obj);
    if (idx < 0) {
        json_decref(obj);
        return;
    }
    fs->s.v[idx].path = strdup(path);
    /* Take the nested collections out; collect them after this item exists. */
    json_t *nested = json_object();
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(obj, tmp, key, v) {
        const kind_t *ck = kind_by_coll(key);
        if (ck && fk_slot(ck, k->coll) >= 0) {
            json_object_set(nested, key, v);
            json_object_del(obj, key);
        }
    }
    if (pk) {
        int s = fk_slot(k, pk->coll);
        if (s >= 0) {
            fs->s.v[idx].fk[s] = parent;
            json_object_del(obj, k->fk[s]);
        }
    }
    for (int s = 0; s < NFK; s++) {
        if (!k->fk[s])
            continue;
        json_t *r = json_object_get(obj, k->fk[s]);
        if (r && !json_is_null(r))
            fs->s.v[idx].ref[s] = json_incref(r);
        json_object_del(obj, k->fk[s]);
    }
    item_t *it = &fs->s.v[idx];
    it->raw = json_deep_copy(obj);
    if (strcmp(k->coll, "services") == 0 && expand_url(it->obj) != 0)
        problem(fs->probs, path, "url", "'%s' is not a URL like http://host:port/path",
                json_string_value(json_object_get(it->obj, "url")));
    json_object_foreach(nested, key, v) {
        const kind_t *ck = kind_by_coll(key);
        char pre[512];
        snprintf(pre, sizeof(pre), "%s.", path);
        if (json_is_null(v))
            continue;
        if (!json_is_array(v)) {
            char p2[600];
            snprintf(p2, sizeof(p2), "%s.%s", path, key);
            problem(fs->probs, p2, NULL, "expected a list of %ss", ck->word);
            continue;
        }
        /* certificates' snis may be plain names. */
        if (strcmp(key, "snis") == 0) {
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) {
                if (json_is_string(x))
                    json_array_set_new(v, i, json_pack("{s:O}", "name", x));
            }
        }
        collect(fs, ck, v, pre, idx, k);
    }
    json_decref(nested);
}

static void collect(fileset_t *fs, const kind_t *k, json_t *list, const char *prefix, int parent,
                    const kind_t *pk)
{
    size_t i;
    json_t *el;
    json_array_foreach(list, i, el) {
        char path[600];
        snprintf(path, sizeof(path), "%s%s[%zu]", prefix, k->coll, i);
        collect_one(fs, k, el, path, parent, pk);
    }
}

/* The file item of kind coll that ref (a string, or {"id": ...} / {"name": ...}) designates. */
static int resolve_ref(set_t *s, const char *coll, json_t *ref)
{
    const kind_t *k = kind_by_coll(coll);
    const char *id = NULL, *name = NULL;
    if (json_is_string(ref)) {
        id = name = json_string_value(ref);
    } else if (json_is_object(ref)) {
        id = json_string_value(json_object_get(ref, "id"));
        if (k->ref_key)
            name = json_string_value(json_object_get(ref, k->ref_key));
        if (!name)
            name = json_string_value(json_object_get(ref, "name"));
    }
    for (size_t i = 0; i < s->n; i++) {
        item_t *it = &s->v[i];
        if (it->k != k)
            continue;
        const char *iid = item_id(it);
        if (id && iid && strcmp(id, iid) == 0)
            return (int)i;
        const char *nm = k->ref_key ? json_string_value(json_object_get(it->obj, k->ref_key)) : NULL;
        if (name && nm && strcmp(name, nm) == 0)
            return (int)i;
    }
    return -1;
}

static char *ref_text(json_t *ref)
{
    if (json_is_string(ref))
        return strdup(json_string_value(ref));
    return json_dumps(ref, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* The natural key of an item: "coll|key" (plus its parents' tokens when scoped). tok gives the
 * token of a foreign key slot. NULL when it has none. */
typedef const char *(*tok_fn)(const set_t *s, const item_t *it, int slot, char *buf, size_t cap);

static char *natural_key(const set_t *s, const item_t *it, tok_fn tok)
{
    const kind_t *k = it->k;
    if (!k->key)
        return NULL;
    const char *kv = NULL;
    json_t *v = json_object_get(it->obj, k->key);
    const char *which = k->key;
    if (json_is_string(v))
        kv = json_string_value(v);
    if (!kv && k->key2 && json_is_string(json_object_get(it->obj, k->key2))) {
        kv = json_string_value(json_object_get(it->obj, k->key2));
        which = k->key2;
    }
    if (!kv)
        return NULL;
    aigw_sbuf_t b = { 0 };
    aigw_sbuf_addf(&b, "%s|%s=", k->coll, which);
    /* A CA certificate's PEM, without surrounding blanks. */
    size_t l = strlen(kv);
    while (l && (kv[l - 1] == '\n' || kv[l - 1] == ' ' || kv[l - 1] == '\r'))
        l--;
    aigw_sbuf_addn(&b, kv, l);
    if (k->scoped)
        for (int sl = 0; sl < NFK; sl++) {
            if (!k->fk[sl])
                continue;
            char buf[64];
            const char *t = tok(s, it, sl, buf, sizeof(buf));
            aigw_sbuf_addf(&b, "|%s", t ? t : "");
        }
    if (b.oom) {
        aigw_sbuf_free(&b);
        return NULL;
    }
    return b.p;
}

/* File tokens: the live id of the referenced item when it matched, else its position. */
static const set_t *tok_live_set;

static const char *file_tok(const set_t *s, const item_t *it, int slot, char *buf, size_t cap)
{
    int r = it->fk[slot];
    if (r < 0)
        return NULL;
    const item_t *p = &s->v[r];
    if (p->match >= 0 && tok_live_set)
        return item_id(&tok_live_set->v[p->match]);
    if (p->newid)
        return p->newid;
    snprintf(buf, cap, "new#%d", r);
    return buf;
}

static const char *file_tok_local(const set_t *s, const item_t *it, int slot, char *buf, size_t cap)
{
    (void)s;
    if (it->fk[slot] < 0)
        return NULL;
    snprintf(buf, cap, "#%d", it->fk[slot]);
    return buf;
}

static const char *live_tok(const set_t *s, const item_t *it, int slot, char *buf, size_t cap)
{
    (void)s;
    (void)buf;
    (void)cap;
    return it->fkid[slot];
}

/* Reads doc into fs, with the local problems in fs->probs. */
static void load_items(json_t *doc, fileset_t *fs)
{
    fs->probs = json_array();
    json_t *fv = json_object_get(doc, "_format_version");
    if (!fv)
        problem(fs->probs, "_format_version", NULL, "required field missing (use \"3.0\")");
    else if (!json_is_string(fv) || (strcmp(json_string_value(fv), "3.0") != 0 &&
                                     strcmp(json_string_value(fv), "2.1") != 0 &&
                                     strcmp(json_string_value(fv), "1.1") != 0))
        problem(fs->probs, "_format_version", NULL, "expected one of: 1.1, 2.1, 3.0");
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v) {
        if (strcmp(key, "_format_version") == 0 || strcmp(key, "_transform") == 0 ||
            strcmp(key, "_comment") == 0 || strcmp(key, "_workspace") == 0 ||
            strcmp(key, "_ignore") == 0)
            continue;
        const kind_t *k = kind_by_coll(key);
        if (!k) {
            problem(fs->probs, key, NULL, "unknown top-level key '%s'", key);
            continue;
        }
        if (!json_is_null(v) && !json_is_array(v))
            problem(fs->probs, key, NULL, "expected a list of %ss", k->word);
    }
    for (size_t i = 0; i < NKINDS; i++) {
        json_t *list = json_object_get(doc, kinds[i].coll);
        if (json_is_array(list))
            collect(fs, &kinds[i], list, "", -1, NULL);
    }
    set_t *s = &fs->s;
    /* References by id or name to other entities of the file. */
    for (size_t i = 0; i < s->n; i++) {
        item_t *it = &s->v[i];
        for (int sl = 0; sl < NFK; sl++) {
            if (!it->ref[sl])
                continue;
            int r = resolve_ref(s, it->k->fkcoll[sl], it->ref[sl]);
            if (r < 0) {
                char *t = ref_text(it->ref[sl]);
                problem(fs->probs, it->path, it->k->fk[sl],
                        "'%s' does not match any %s of the file (by id or name)", t ? t : "?",
                        kind_by_coll(it->k->fkcoll[sl])->word);
                free(t);
            } else {
                it->fk[sl] = r;
            }
        }
        if (it->k->owner) {
            int os = fk_slot(it->k, kind_by_coll(it->k->fkcoll[0])->coll);
            if (os >= 0 && it->fk[os] < 0 && !it->ref[os])
                problem(fs->probs, it->path, it->k->owner, "a %s belongs to a %s: nest it or set %s",
                        it->k->word, it->k->owner, it->k->owner);
        }
        /* Something to match it by. */
        const char *id = item_id(it);
        json_t *idv = json_object_get(it->obj, "id");
        if (idv && !json_is_string(idv))
            problem(fs->probs, it->path, "id", "expected a string");
        if (!id && it->k->key && !json_is_string(json_object_get(it->obj, it->k->key)) &&
            !(it->k->key2 && json_is_string(json_object_get(it->obj, it->k->key2)))) {
            if (strcmp(it->k->coll, "consumers") == 0)
                problem(fs->probs, it->path, NULL, "a consumer needs a username or a custom_id");
            else
                problem(fs->probs, it->path, it->k->key, "missing: a %s needs a %s (or an id) to be "
                        "matched with the node's", it->k->word, it->k->key);
        } else if (!id && !it->k->key) {
            problem(fs->probs, it->path, "id", "missing: a %s is matched by id only", it->k->word);
        }
    }
    /* Duplicates: ids and natural keys. */
    for (size_t i = 0; i < s->n; i++) {
        item_t *a = &s->v[i];
        const char *ida = item_id(a);
        char *ka = natural_key(s, a, file_tok_local);
        for (size_t j = 0; j < i; j++) {
            item_t *b = &s->v[j];
            if (a->k != b->k)
                continue;
            const char *idb = item_id(b);
            char *kb = ka ? natural_key(s, b, file_tok_local) : NULL;
            if (ida && idb && strcmp(ida, idb) == 0)
                problem(fs->probs, a->path, "id", "duplicate: %s has the same id", b->path);
            else if (ka && kb && strcmp(ka, kb) == 0)
                problem(fs->probs, a->path, NULL, "duplicate: %s is the same %s", b->path, a->k->word);
            free(kb);
        }
        free(ka);
    }
}

/* ---- the node's items ------------------------------------------------------------------------ */

static int live_add_rows(set_t *s, const kind_t *k, json_t *rows)
{
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        json_t *obj = json_deep_copy(row);
        int idx = set_add(s, k, obj);
        if (idx < 0) {
            json_decref(obj);
            return -1;
        }
        for (int sl = 0; sl < NFK; sl++) {
            if (!k->fk[sl])
                continue;
            json_t *r = json_object_get(obj, k->fk[sl]);
            const char *id = json_string_value(json_object_get(r, "id"));
            if (id)
                s->v[idx].fkid[sl] = strdup(id);
            json_object_del(obj, k->fk[sl]);
        }
    }
    return 0;
}

static int load_live(ctl_t *c, set_t *s)
{
    for (size_t i = 0; i < NKINDS; i++) {
        const kind_t *k = &kinds[i];
        if (strcmp(k->coll, "targets") == 0)
            continue;
        json_t *rows = json_array();
        char path[64];
        snprintf(path, sizeof(path), "/%s", k->path);
        int rc = ctl_list_all(c, path, rows);
        if (rc == CTL_OK)
            rc = live_add_rows(s, k, rows) == 0 ? CTL_OK : CTL_EAPI;
        json_decref(rows);
        if (rc != CTL_OK)
            return rc;
        if (strcmp(k->coll, "upstreams") == 0) {
            /* Targets live under their upstream. */
            size_t nup = s->n;
            for (size_t u = 0; u < nup; u++) {
                if (s->v[u].k != k)
                    continue;
                const char *uid = item_id(&s->v[u]);
                if (!uid)
                    continue;
                char tp[128];
                snprintf(tp, sizeof(tp), "/upstreams/%s/targets", uid);
                json_t *tr = json_array();
                rc = ctl_list_all(c, tp, tr);
                if (rc == CTL_OK)
                    rc = live_add_rows(s, kind_by_coll("targets"), tr) == 0 ? CTL_OK : CTL_EAPI;
                json_decref(tr);
                if (rc != CTL_OK)
                    return rc;
            }
        }
    }
    /* Credentials are listed after plugins in the table but do not depend on them. */
    return CTL_OK;
}

/* ---- labels ---------------------------------------------------------------------------------- */

/* The name a human knows the item by. */
static void item_name(aigw_sbuf_t *b, const set_t *s, const item_t *it, int live, int with_scope);

static void parent_name(aigw_sbuf_t *b, const set_t *s, const item_t *it, int sl, int live,
                        const set_t *other)
{
    if (live) {
        const char *id = it->fkid[sl];
        /* Find the parent among the live items. */
        for (size_t i = 0; id && i < s->n; i++)
            if (s->v[i].k == kind_by_coll(it->k->fkcoll[sl]) && item_id(&s->v[i]) &&
                strcmp(item_id(&s->v[i]), id) == 0) {
                item_name(b, s, &s->v[i], 1, 0);
                return;
            }
        (void)other;
        aigw_sbuf_add(b, id ? id : "?");
    } else {
        item_name(b, s, &s->v[it->fk[sl]], 0, 0);
    }
}

static void item_name(aigw_sbuf_t *b, const set_t *s, const item_t *it, int live, int with_scope)
{
    const kind_t *k = it->k;
    const char *n = NULL;
    if (k->key && !k->key_secret && strcmp(k->coll, "ca_certificates") != 0)
        n = json_string_value(json_object_get(it->obj, k->key));
    if (!n && k->key2)
        n = json_string_value(json_object_get(it->obj, k->key2));
    if (!n)
        n = item_id(it);
    aigw_sbuf_add(b, n ? n : "(new)");
    if (!with_scope || !k->fk[0] || !k->scoped)
        return;
    int any = 0;
    for (int sl = 0; sl < NFK; sl++) {
        if (!k->fk[sl])
            continue;
        int has = live ? it->fkid[sl] != NULL : it->fk[sl] >= 0;
        if (!has)
            continue;
        aigw_sbuf_add(b, any ? ", " : " (");
        aigw_sbuf_addf(b, "%s ", k->fk[sl]);
        parent_name(b, s, it, sl, live, NULL);
        any = 1;
    }
    if (any)
        aigw_sbuf_add(b, ")");
    else if (strcmp(k->coll, "plugins") == 0)
        aigw_sbuf_add(b, " (global)");
}

/* ---- dump ------------------------------------------------------------------------------------ */

/* v without its null members, deeply. */
static json_t *no_nulls(json_t *v)
{
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            if (!json_is_null(x))
                json_object_set_new(o, k, no_nulls(x));
        }
        return o;
    }
    return json_incref(v);
}

/* A live row as a document entity: no timestamps, no nulls, no foreign keys. */
static json_t *clean(const item_t *it)
{
    json_t *o = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(it->obj, k, v) {
        if (json_is_null(v) || strcmp(k, "created_at") == 0 || strcmp(k, "updated_at") == 0)
            continue;
        if (strcmp(it->k->coll, "certificates") == 0 && strcmp(k, "snis") == 0)
            continue;
        json_object_set_new(o, k, no_nulls(v));
    }
    return o;
}

static const char *id_name(const set_t *s, const char *coll, const char *id, const char **namefield)
{
    const kind_t *k = kind_by_coll(coll);
    for (size_t i = 0; id && i < s->n; i++)
        if (s->v[i].k == k && item_id(&s->v[i]) && strcmp(item_id(&s->v[i]), id) == 0) {
            const char *n = k->ref_key ? json_string_value(json_object_get(s->v[i].obj, k->ref_key)) : NULL;
            *namefield = k->ref_key;
            return n;
        }
    return NULL;
}

static void add_to(json_t *parent, const char *coll, json_t *o)
{
    json_t *l = json_object_get(parent, coll);
    if (!l) {
        l = json_array();
        json_object_set_new(parent, coll, l);
    }
    json_array_append_new(l, o);
}

static json_t *build_dump(set_t *s)
{
    json_t *doc = json_object();
    json_object_set_new(doc, "_format_version", json_string("3.0"));
    /* Credentials (basic-auth passwords) are stored hashed: load them as they are. */
    json_object_set_new(doc, "_transform", json_false());
    json_t **out = calloc(s->n + 1, sizeof(*out));
    if (!out)
        return doc;
    for (size_t i = 0; i < s->n; i++)
        out[i] = clean(&s->v[i]);
    /* The item (index) of a live id of coll. */
    for (size_t i = 0; i < s->n; i++) {
        item_t *it = &s->v[i];
        const kind_t *k = it->k;
        int nest = -1;      /* item to nest under */
        const char *ncoll = k->coll;
        int nfk = 0, only = -1;
        for (int sl = 0; sl < NFK; sl++)
            if (it->fkid[sl]) {
                nfk++;
                only = sl;
            }
        if (nfk == 1) {
            for (size_t j = 0; j < s->n; j++)
                if (s->v[j].k == kind_by_coll(k->fkcoll[only]) && item_id(&s->v[j]) &&
                    strcmp(item_id(&s->v[j]), it->fkid[only]) == 0)
                    nest = (int)j;
        }
        if (nest >= 0) {
            add_to(out[nest], ncoll, json_incref(out[i]));
            continue;
        }
        /* Top level, foreign keys by name when there is one, else by id. */
        for (int sl = 0; sl < NFK; sl++) {
            if (!it->fkid[sl])
                continue;
            const char *nf = NULL;
            const char *n = id_name(s, k->fkcoll[sl], it->fkid[sl], &nf);
            json_object_set_new(out[i], k->fk[sl], json_string(n ? n : it->fkid[sl]));
        }
        add_to(doc, ncoll, json_incref(out[i]));
    }
    for (size_t i = 0; i < s->n; i++)
        json_decref(out[i]);
    free(out);
    return doc;
}

static int run_dump(ctl_t *c, const ctl_cmd_t *cmd, ctl_args_t *a)
{
    if (a->npos)
        return ctl_usage_error(cmd, "unexpected argument '%s' (write to a file with --file)", a->pos[0]);
    const char *fmt = ctl_opt(a, "format");
    int json = 0;
    if (fmt) {
        if (strcmp(fmt, "json") == 0)
            json = 1;
        else if (strcmp(fmt, "yaml") != 0)
            return ctl_usage_error(cmd, "--format: '%s' is not yaml or json", fmt);
    } else if (c->output_set && c->output == CTL_OUT_JSON) {
        json = 1;
    }
    const char *file = ctl_opt(a, "file");
    set_t s = { 0 };
    int rc = load_live(c, &s);
    if (rc != CTL_OK) {
        set_free(&s);
        return rc;
    }
    json_t *doc = build_dump(&s);
    size_t n = s.n;
    set_free(&s);
    FILE *f = stdout;
    if (file && strcmp(file, "-") != 0) {
        int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!f) {
            fprintf(stderr, "aigwctl: cannot write %s: %s\n", file, strerror(errno));
            if (fd >= 0)
                close(fd);
            json_decref(doc);
            return CTL_EAPI;
        }
    }
    if (json)
        ctl_print_json(f, doc);
    else
        ctl_print_yaml(f, doc);
    json_decref(doc);
    if (f != stdout) {
        if (fclose(f) != 0) {
            fprintf(stderr, "aigwctl: cannot write %s: %s\n", file, strerror(errno));
            return CTL_EAPI;
        }
        fprintf(stderr, "wrote %zu entit%s to %s\n", n, n == 1 ? "y" : "ies", file);
    }
    return CTL_OK;
}

/* ---- schema defaults ------------------------------------------------------------------------- */

static json_t *schema_defaults_of(json_t *fields)
{
    json_t *d = json_object();
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f) {
        const char *name;
        json_t *spec;
        json_object_foreach(f, name, spec) {
            json_t *dv = json_object_get(spec, "default");
            if (dv && !json_is_null(dv)) {
                json_object_set(d, name, dv);
            } else {
                const char *t = json_string_value(json_object_get(spec, "type"));
                json_t *sub = json_object_get(spec, "fields");
                if (t && strcmp(t, "record") == 0 && json_is_array(sub)) {
                    json_t *x = schema_defaults_of(sub);
                    if (json_object_size(x))
                        json_object_set_new(d, name, x);
                    else
                        json_decref(x);
                }
            }
        }
    }
    return d;
}

/* Defaults of coll (or of the plugin named plugin), cached in cache. */
static json_t *defaults(ctl_t *c, json_t *cache, const char *coll, const char *plugin)
{
    char key[256];
    snprintf(key, sizeof(key), "%s%s%s", coll, plugin ? "/" : "", plugin ? plugin : "");
    json_t *d = json_object_get(cache, key);
    if (d)
        return d;
    char path[300];
    if (plugin) {
        char *e = ctl_escape(plugin);
        snprintf(path, sizeof(path), "/schemas/plugins/%s", e ? e : "");
        free(e);
    } else {
        snprintf(path, sizeof(path), "/schemas/%s", coll);
    }
    ctl_resp_t r;
    int rc = ctl_call(c, "GET", path, NULL, NULL, 0, &r);
    d = rc == CTL_OK && r.json ? schema_defaults_of(json_object_get(r.json, "fields")) : json_object();
    ctl_resp_free(&r);
    if (plugin) {
        /* The plugin's own defaults over the plugins entity's. */
        json_t *base = json_deep_copy(defaults(c, cache, "plugins", NULL));
        json_object_update(base, d);
        json_decref(d);
        d = base;
    }
    json_object_set_new(cache, key, d);
    return d;
}

/* ---- diff ------------------------------------------------------------------------------------ */

static int scalar_eq(json_t *a, json_t *b)
{
    if (!a)
        a = json_null();
    if (!b)
        b = json_null();
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    if (json_is_array(a) && json_is_array(b)) {
        if (json_array_size(a) != json_array_size(b))
            return 0;
        size_t i;
        json_t *x;
        int inorder = 1;
        json_array_foreach(a, i, x) {
            if (!scalar_eq(x, json_array_get(b, i)))
                inorder = 0;
        }
        if (inorder)
            return 1;
        /* Sets: the same elements in another order. */
        json_array_foreach(a, i, x) {
            if (json_is_object(x) || json_is_array(x))
                return 0;
            int found = 0;
            size_t j;
            json_t *y;
            json_array_foreach(b, j, y) {
                if (scalar_eq(x, y))
                    found = 1;
            }
            if (!found)
                return 0;
        }
        return 1;
    }
    if (json_is_object(a) && json_is_object(b)) {
        if (json_object_size(a) != json_object_size(b))
            return 0;
        const char *k;
        json_t *x;
        json_object_foreach(a, k, x) {
            if (!scalar_eq(x, json_object_get(b, k)))
                return 0;
        }
        return 1;
    }
    return json_equal(a, b);
}

static int skip_field(const kind_t *k, const char *f)
{
    return strcmp(f, "id") == 0 || strcmp(f, "created_at") == 0 || strcmp(f, "updated_at") == 0 ||
           strcmp(f, "ttl") == 0 || (strcmp(k->coll, "services") == 0 && strcmp(f, "url") == 0) ||
           (strcmp(k->coll, "certificates") == 0 && strcmp(f, "snis") == 0);
}

static void add_change(json_t *changes, const char *field, json_t *from, json_t *to)
{
    json_array_append_new(changes, json_pack("{s:s,s:O,s:O}", "field", field,
                                             "from", from ? from : json_null(),
                                             "to", to ? to : json_null()));
}

/* The file's values (want) against the live ones: every key want sets. */
static void cmp_set(const kind_t *k, const char *prefix, json_t *want, json_t *live, json_t *changes)
{
    const char *key;
    json_t *w;
    json_object_foreach(want, key, w) {
        if (!*prefix && skip_field(k, key))
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", key);
        json_t *l = json_object_get(live, key);
        if (json_is_object(w) && json_is_object(l)) {
            cmp_set(k, path, w, l, changes);
            continue;
        }
        if (!*prefix && strcmp(key, "password") == 0 && json_is_string(w) && json_is_string(l) &&
            json_string_value(l)[0] == '$' && json_string_value(w)[0] != '$')
            continue; /* a plain password against its stored hash: cannot tell */
        if (!scalar_eq(w, l))
            add_change(changes, path, l, w);
    }
}

/* Defaults for what the file leaves out (only where the node shows the field). */
static void cmp_defaults(const kind_t *k, const char *prefix, json_t *def, json_t *want, json_t *live,
                         json_t *changes)
{
    const char *key;
    json_t *d;
    json_object_foreach(def, key, d) {
        if (!*prefix && skip_field(k, key))
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", key);
        json_t *w = want ? json_object_get(want, key) : NULL;
        json_t *l = json_object_get(live, key);
        if (w) {
            if (json_is_object(d) && json_is_object(w) && json_is_object(l))
                cmp_defaults(k, path, d, w, l, changes);
            continue;
        }
        if (!l)
            continue;
        if (json_is_object(d) && json_is_object(l)) {
            cmp_defaults(k, path, d, NULL, l, changes);
            continue;
        }
        if (!scalar_eq(d, l))
            add_change(changes, path, l, d);
    }
}

/* defaults with want over them, deeply. */
static json_t *merged(json_t *def, json_t *want)
{
    if (!json_is_object(def) || !json_is_object(want))
        return json_incref(want ? want : def);
    json_t *o = json_deep_copy(def);
    const char *key;
    json_t *w;
    json_object_foreach(want, key, w) {
        json_t *d = json_object_get(o, key);
        if (json_is_object(d) && json_is_object(w))
            json_object_set_new(o, key, merged(d, w));
        else
            json_object_set(o, key, w);
    }
    return o;
}

typedef enum { CH_CREATE, CH_UPDATE, CH_DELETE } ch_kind_t;

typedef struct change {
    ch_kind_t act;
    int idx;          /* file item (create, update) or live item (delete) */
    json_t *fields;   /* update: [{field, from, to}] */
} change_t;

typedef struct plan {
    fileset_t fs;
    set_t live;
    change_t *ch;
    size_t n, cap;
    json_t *defcache;
    json_t *doc;
} plan_t;

static void plan_free(plan_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        json_decref(p->ch[i].fields);
    free(p->ch);
    set_free(&p->fs.s);
    json_decref(p->fs.probs);
    set_free(&p->live);
    json_decref(p->defcache);
    json_decref(p->doc);
}

static void plan_add(plan_t *p, ch_kind_t act, int idx, json_t *fields)
{
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 32;
        change_t *nv = realloc(p->ch, nc * sizeof(*nv));
        if (!nv) {
            json_decref(fields);
            return;
        }
        p->ch = nv;
        p->cap = nc;
    }
    p->ch[p->n].act = act;
    p->ch[p->n].idx = idx;
    p->ch[p->n].fields = fields;
    p->n++;
}

static json_t *want_of(ctl_t *c, plan_t *p, const item_t *it, json_t **def)
{
    const char *pname = strcmp(it->k->coll, "plugins") == 0
                            ? json_string_value(json_object_get(it->obj, "name")) : NULL;
    *def = defaults(c, p->defcache, it->k->coll, pname);
    return it->obj;
}

static void compute(ctl_t *c, plan_t *p)
{
    set_t *fs = &p->fs.s, *ls = &p->live;
    tok_live_set = ls;
    /* Match, parents first. */
    for (size_t ki = 0; ki < NKINDS; ki++) {
        const kind_t *k = &kinds[ki];
        for (size_t i = 0; i < fs->n; i++) {
            item_t *f = &fs->v[i];
            if (f->k != k)
                continue;
            const char *id = item_id(f);
            for (size_t j = 0; id && j < ls->n; j++) {
                item_t *l = &ls->v[j];
                if (l->k == k && l->match < 0 && item_id(l) && strcmp(item_id(l), id) == 0) {
                    f->match = (int)j;
                    l->match = (int)i;
                    break;
                }
            }
            if (f->match >= 0)
                continue;
            char *fk = natural_key(fs, f, file_tok);
            for (size_t j = 0; fk && j < ls->n; j++) {
                item_t *l = &ls->v[j];
                if (l->k != k || l->match >= 0)
                    continue;
                char *lk = natural_key(ls, l, live_tok);
                int eq = lk && strcmp(lk, fk) == 0;
                free(lk);
                if (eq) {
                    f->match = (int)j;
                    l->match = (int)i;
                    break;
                }
            }
            free(fk);
        }
    }
    /* Creates and updates in dependency order. */
    for (size_t ki = 0; ki < NKINDS; ki++) {
        const kind_t *k = &kinds[ki];
        for (size_t i = 0; i < fs->n; i++) {
            item_t *f = &fs->v[i];
            if (f->k != k)
                continue;
            if (f->match < 0) {
                plan_add(p, CH_CREATE, (int)i, NULL);
                continue;
            }
            item_t *l = &ls->v[f->match];
            json_t *def;
            json_t *want = want_of(c, p, f, &def);
            json_t *changes = json_array();
            cmp_set(k, "", want, l->obj, changes);
            cmp_defaults(k, "", def, want, l->obj, changes);
            for (int sl = 0; sl < NFK; sl++) {
                if (!k->fk[sl])
                    continue;
                char buf[64];
                const char *ft = file_tok(fs, f, sl, buf, sizeof(buf));
                const char *lt = l->fkid[sl];
                if ((ft == NULL) != (lt == NULL) || (ft && strcmp(ft, lt) != 0)) {
                    aigw_sbuf_t a = { 0 }, b = { 0 };
                    if (lt)
                        parent_name(&a, ls, l, sl, 1, NULL);
                    if (ft)
                        parent_name(&b, fs, f, sl, 0, NULL);
                    json_t *from = lt ? json_string(a.p ? a.p : lt) : json_null();
                    json_t *to = ft ? json_string(b.p ? b.p : ft) : json_null();
                    add_change(changes, k->fk[sl], from, to);
                    json_decref(from);
                    json_decref(to);
                    aigw_sbuf_free(&a);
                    aigw_sbuf_free(&b);
                }
            }
            if (json_array_size(changes))
                plan_add(p, CH_UPDATE, (int)i, changes);
            else
                json_decref(changes);
        }
    }
    /* Deletes, children first. */
    for (size_t ki = NKINDS; ki-- > 0;) {
        for (size_t j = 0; j < ls->n; j++)
            if (ls->v[j].k == &kinds[ki] && ls->v[j].match < 0)
                plan_add(p, CH_DELETE, (int)j, NULL);
    }
}

/* A value as a diff line shows it: strings bare, lists in brackets. */
static void show_value(aigw_sbuf_t *b, json_t *v)
{
    if (json_is_string(v)) {
        aigw_sbuf_add(b, json_string_value(v));
    } else if (json_is_array(v)) {
        aigw_sbuf_add(b, "[");
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            if (i)
                aigw_sbuf_add(b, ", ");
            show_value(b, x);
        }
        aigw_sbuf_add(b, "]");
    } else {
        char *s = json_dumps(v ? v : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
        aigw_sbuf_add(b, s ? s : "");
        free(s);
    }
}

static int field_secret(const kind_t *k, const char *field)
{
    const char *dot = strrchr(field, '.');
    return secret_field(k, field) || (dot && (strstr(dot, "password") || strstr(dot, "secret")));
}

static const item_t *change_item(const plan_t *p, const change_t *ch, const set_t **s, int *live)
{
    *live = ch->act == CH_DELETE;
    *s = *live ? &p->live : &p->fs.s;
    return &(*s)->v[ch->idx];
}

static void change_line(ctl_t *c, const plan_t *p, const change_t *ch, aigw_sbuf_t *b)
{
    const set_t *s;
    int live;
    const item_t *it = change_item(p, ch, &s, &live);
    static const char *const verbs[] = { "create", "update", "delete" };
    static const char *const signs[] = { "+", "~", "-" };
    const char *col = ch->act == CH_CREATE ? ctl_green(c) : ch->act == CH_DELETE ? ctl_red(c)
                                                                                  : (c->color ? "\033[33m" : "");
    aigw_sbuf_addf(b, "%s%s %s %s ", col, signs[ch->act], verbs[ch->act], it->k->word);
    item_name(b, s, it, live, 1);
    if (ch->act == CH_UPDATE) {
        aigw_sbuf_add(b, " (");
        size_t i;
        json_t *x;
        json_array_foreach(ch->fields, i, x) {
            const char *f = json_string_value(json_object_get(x, "field"));
            if (i)
                aigw_sbuf_add(b, "; ");
            aigw_sbuf_addf(b, "%s: ", f);
            if (field_secret(it->k, f)) {
                aigw_sbuf_add(b, "(secret changed)");
                continue;
            }
            show_value(b, json_object_get(x, "from"));
            aigw_sbuf_add(b, " -> ");
            show_value(b, json_object_get(x, "to"));
        }
        aigw_sbuf_add(b, ")");
    }
    aigw_sbuf_add(b, ctl_reset(c));
}

static json_t *change_json(const plan_t *p, const change_t *ch)
{
    const set_t *s;
    int live;
    const item_t *it = change_item(p, ch, &s, &live);
    static const char *const verbs[] = { "create", "update", "delete" };
    aigw_sbuf_t nm = { 0 }, lb = { 0 };
    item_name(&nm, s, it, live, 0);
    item_name(&lb, s, it, live, 1);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "action", verbs[ch->act], "kind", it->k->word, "name",
                          nm.p ? nm.p : "", "label", lb.p ? lb.p : "");
    aigw_sbuf_free(&nm);
    aigw_sbuf_free(&lb);
    const char *id = ch->act == CH_CREATE ? (it->newid ? it->newid : item_id(it))
                     : ch->act == CH_UPDATE ? item_id(&p->live.v[it->match]) : item_id(it);
    if (id)
        json_object_set_new(o, "id", json_string(id));
    if (!live && it->path)
        json_object_set_new(o, "path", json_string(it->path));
    if (ch->fields) {
        json_t *fl = json_array();
        size_t i;
        json_t *x;
        json_array_foreach(ch->fields, i, x) {
            const char *f = json_string_value(json_object_get(x, "field"));
            if (field_secret(it->k, f))
                json_array_append_new(fl, json_pack("{s:s,s:s,s:s}", "field", f, "from", "***", "to", "***"));
            else
                json_array_append(fl, x);
        }
        json_object_set_new(o, "fields", fl);
    }
    return o;
}

static void counts(const plan_t *p, size_t upto, size_t n[3])
{
    n[0] = n[1] = n[2] = 0;
    for (size_t i = 0; i < upto && i < p->n; i++)
        n[p->ch[i].act]++;
}

/* Reads the file, the node, and computes the plan. CTL_OK, CTL_EAPI (problems printed),
 * CTL_ECONN. */
static int make_plan(ctl_t *c, const char *file, plan_t *p)
{
    memset(p, 0, sizeof(*p));
    p->defcache = json_object();
    p->doc = load_doc(file);
    if (!p->doc)
        return CTL_EAPI;
    load_items(p->doc, &p->fs);
    if (json_array_size(p->fs.probs)) {
        fprintf(stderr, "aigwctl: %s is not valid; nothing compared:\n", file);
        size_t i;
        json_t *x;
        json_array_foreach(p->fs.probs, i, x) {
            const char *f = json_string_value(json_object_get(x, "field"));
            fprintf(stderr, "  %s: %s%s%s\n", json_string_value(json_object_get(x, "path")),
                    f ? f : "", f ? ": " : "", json_string_value(json_object_get(x, "message")));
        }
        return CTL_EAPI;
    }
    int rc = load_live(c, &p->live);
    if (rc != CTL_OK)
        return rc;
    compute(c, p);
    return CTL_OK;
}

static void print_plan(ctl_t *c, const plan_t *p, size_t upto, int json, int applied)
{
    size_t n[3];
    counts(p, upto, n);
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < upto && i < p->n; i++)
            json_array_append_new(arr, change_json(p, &p->ch[i]));
        json_t *o = json_pack("{s:o,s:{s:I,s:I,s:I}}", "changes", arr, "summary", "create",
                              (json_int_t)n[0], "update", (json_int_t)n[1], "delete", (json_int_t)n[2]);
        if (applied >= 0)
            json_object_set_new(o, "applied", json_integer(applied));
        ctl_print_json(stdout, o);
        json_decref(o);
        return;
    }
    for (size_t i = 0; i < upto && i < p->n; i++) {
        aigw_sbuf_t b = { 0 };
        change_line(c, p, &p->ch[i], &b);
        printf("%s\n", b.p ? b.p : "");
        aigw_sbuf_free(&b);
    }
    if (applied >= 0)
        printf("%s%zu created, %zu updated, %zu deleted%s\n", ctl_bold(c), n[0], n[1], n[2], ctl_reset(c));
    else
        printf("%s%zu to create, %zu to update, %zu to delete%s\n", ctl_bold(c), n[0], n[1], n[2],
               ctl_reset(c));
}

static int want_json(const ctl_t *c)
{
    return c->output == CTL_OUT_JSON || c->output == CTL_OUT_YAML;
}

static int run_diff(ctl_t *c, const ctl_cmd_t *cmd, ctl_args_t *a)
{
    if (a->npos != 1)
        return ctl_usage_error(cmd, "name one file");
    plan_t p;
    int rc = make_plan(c, a->pos[0], &p);
    if (rc == CTL_OK)
        print_plan(c, &p, p.n, want_json(c), -1);
    plan_free(&p);
    return rc;
}

/* ---- sync ------------------------------------------------------------------------------------ */

/* The live id a file item has (matched or created). */
static const char *live_id_of(const plan_t *p, int idx)
{
    const item_t *it = &p->fs.s.v[idx];
    if (it->match >= 0)
        return item_id(&p->live.v[it->match]);
    return it->newid;
}

static json_t *fk_value(const plan_t *p, const item_t *it, int sl)
{
    if (it->fk[sl] < 0)
        return json_null();
    const char *id = live_id_of(p, it->fk[sl]);
    return id ? json_pack("{s:s}", "id", id) : json_null();
}

static int apply_one(ctl_t *c, plan_t *p, const change_t *ch)
{
    char path[512];
    const char *method;
    json_t *body = NULL;
    if (ch->act == CH_DELETE) {
        const item_t *l = &p->live.v[ch->idx];
        if (l->k->owner)
            snprintf(path, sizeof(path), "/%s/%s/%s/%s", kind_by_coll(l->k->fkcoll[0])->path,
                     l->fkid[0] ? l->fkid[0] : "-", l->k->nested, item_id(l));
        else
            snprintf(path, sizeof(path), "/%s/%s", l->k->path, item_id(l));
        method = "DELETE";
    } else {
        item_t *f = &p->fs.s.v[ch->idx];
        const kind_t *k = f->k;
        json_t *def;
        json_t *want = want_of(c, p, f, &def);
        if (ch->act == CH_CREATE) {
            body = json_deep_copy(want);
            for (int sl = 0; sl < NFK; sl++)
                if (k->fk[sl] && !(k->owner && strcmp(k->owner, k->fk[sl]) == 0) && f->fk[sl] >= 0)
                    json_object_set_new(body, k->fk[sl], fk_value(p, f, sl));
            if (k->owner) {
                const char *oid = live_id_of(p, f->fk[0]);
                snprintf(path, sizeof(path), "/%s/%s/%s", kind_by_coll(k->fkcoll[0])->path,
                         oid ? oid : "-", k->nested);
            } else {
                snprintf(path, sizeof(path), "/%s", k->path);
            }
            method = "POST";
        } else {
            const item_t *l = &p->live.v[f->match];
            body = json_object();
            size_t i;
            json_t *x;
            json_array_foreach(ch->fields, i, x) {
                const char *fld = json_string_value(json_object_get(x, "field"));
                char top[256];
                snprintf(top, sizeof(top), "%.*s", (int)strcspn(fld, "."), fld);
                if (json_object_get(body, top))
                    continue;
                int sl = -1;
                for (int s2 = 0; s2 < NFK; s2++)
                    if (k->fk[s2] && strcmp(k->fk[s2], top) == 0)
                        sl = s2;
                if (sl >= 0) {
                    json_object_set_new(body, top, fk_value(p, f, sl));
                    continue;
                }
                json_t *w = json_object_get(want, top);
                json_t *d = json_object_get(def, top);
                json_t *m = w && d ? merged(d, w) : json_incref(w ? w : d);
                json_object_set_new(body, top, m ? m : json_null());
            }
            if (k->owner)
                snprintf(path, sizeof(path), "/%s/%s/%s/%s", kind_by_coll(k->fkcoll[0])->path,
                         l->fkid[0] ? l->fkid[0] : "-", k->nested, item_id(l));
            else
                snprintf(path, sizeof(path), "/%s/%s", k->path, item_id(l));
            method = "PATCH";
        }
    }
    ctl_resp_t r;
    int rc = ctl_call(c, method, path, body, NULL, 0, &r);
    json_decref(body);
    if (rc == CTL_OK && ch->act == CH_CREATE) {
        const char *id = r.json ? json_string_value(json_object_get(r.json, "id")) : NULL;
        if (id)
            p->fs.s.v[ch->idx].newid = strdup(id);
    }
    if (rc == CTL_EAPI) {
        aigw_sbuf_t b = { 0 };
        change_line(c, p, ch, &b);
        const item_t *f = ch->act == CH_DELETE ? NULL : &p->fs.s.v[ch->idx];
        fprintf(stderr, "aigwctl: sync stopped: %s%s%s%s failed:\n", b.p ? b.p : "",
                f ? " (" : "", f ? f->path : "", f ? ")" : "");
        aigw_sbuf_free(&b);
        ctl_report_error(c, &r);
    }
    ctl_resp_free(&r);
    return rc;
}

static int run_sync(ctl_t *c, const ctl_cmd_t *cmd, ctl_args_t *a)
{
    if (a->npos != 1)
        return ctl_usage_error(cmd, "name one file");
    plan_t p;
    int rc = make_plan(c, a->pos[0], &p);
    if (rc == CTL_OK && ctl_opt_on(a, "dry-run")) {
        print_plan(c, &p, p.n, want_json(c), -1);
    } else if (rc == CTL_OK) {
        size_t done = 0;
        int json = want_json(c);
        for (; done < p.n; done++) {
            rc = apply_one(c, &p, &p.ch[done]);
            if (rc != CTL_OK)
                break;
            if (!json) {
                aigw_sbuf_t b = { 0 };
                change_line(c, &p, &p.ch[done], &b);
                printf("%s\n", b.p ? b.p : "");
                fflush(stdout);
                aigw_sbuf_free(&b);
            }
        }
        if (json) {
            print_plan(c, &p, done, 1, (int)done);
        } else {
            size_t n[3];
            counts(&p, done, n);
            printf("%s%zu created, %zu updated, %zu deleted%s\n", ctl_bold(c), n[0], n[1], n[2],
                   ctl_reset(c));
        }
        if (rc != CTL_OK)
            fprintf(stderr, "aigwctl: applied %zu of %zu changes; the other %zu were not attempted\n",
                    done, p.n, p.n - done);
    }
    plan_free(&p);
    return rc;
}

/* ---- validate -------------------------------------------------------------------------------- */

/* Field errors of a schema violation as problems: {"a": "msg", "config": {"b": "msg"}}. */
static void field_problems(json_t *probs, const char *path, const char *prefix, json_t *v)
{
    if (json_is_string(v)) {
        problem(probs, path, *prefix ? prefix : NULL, "%s", json_string_value(v));
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            char p[512];
            if (strcmp(k, "@entity") == 0)
                snprintf(p, sizeof(p), "%s", prefix);
            else
                snprintf(p, sizeof(p), "%s%s%s", prefix, *prefix ? "." : "", k);
            field_problems(probs, path, p, x);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            if (json_is_null(x))
                continue;
            char p[512];
            if (json_is_string(x) && !*prefix)
                snprintf(p, sizeof(p), "%s", prefix);
            else
                snprintf(p, sizeof(p), "%s[%zu]", prefix, i);
            field_problems(probs, path, p, x);
        }
    }
}

static int run_validate(ctl_t *c, const ctl_cmd_t *cmd, ctl_args_t *a)
{
    if (a->npos != 1)
        return ctl_usage_error(cmd, "name one file");
    const char *file = a->pos[0];
    json_t *doc = load_doc(file);
    if (!doc)
        return CTL_EAPI;
    fileset_t fs = { 0 };
    load_items(doc, &fs);
    int rc = CTL_OK;
    if (!ctl_opt_on(a, "offline")) {
        /* A reference the file resolves by name to an entity it creates has no id yet; the
         * schema check only wants a well-formed uuid there (the reference itself was checked
         * locally above), so it gets this nil-shaped one. */
        static const char *const name_ref_id = "00000000-0000-4000-8000-000000000000";
        for (size_t i = 0; i < fs.s.n && rc == CTL_OK; i++) {
            item_t *it = &fs.s.v[i];
            json_t *body = json_deep_copy(it->raw);
            for (int sl = 0; sl < NFK; sl++) {
                if (!it->k->fk[sl])
                    continue;
                const char *id = it->fk[sl] >= 0 ? item_id(&fs.s.v[it->fk[sl]]) : NULL;
                if (it->fk[sl] >= 0 || it->ref[sl])
                    json_object_set_new(body, it->k->fk[sl],
                                        json_pack("{s:s}", "id", id ? id : name_ref_id));
            }
            char path[128];
            snprintf(path, sizeof(path), "/schemas/%s/validate", it->k->coll);
            ctl_resp_t r;
            rc = ctl_call(c, "POST", path, body, NULL, 0, &r);
            json_decref(body);
            if (rc == CTL_EAPI) {
                json_t *fields = r.json ? json_object_get(r.json, "fields") : NULL;
                if (r.status == 400 && fields && json_object_size(fields))
                    field_problems(fs.probs, it->path, "", fields);
                else
                    problem(fs.probs, it->path, NULL, "%s",
                            r.json && json_string_value(json_object_get(r.json, "message"))
                                ? json_string_value(json_object_get(r.json, "message"))
                                : "rejected by the admin API");
                rc = CTL_OK;
            }
            ctl_resp_free(&r);
        }
    }
    if (rc == CTL_OK) {
        size_t np = json_array_size(fs.probs);
        if (want_json(c)) {
            json_t *o = json_pack("{s:b,s:I,s:O}", "valid", np == 0, "entities", (json_int_t)fs.s.n,
                                  "problems", fs.probs);
            ctl_print_json(stdout, o);
            json_decref(o);
        } else if (np) {
            print_problems(c, file, fs.probs);
        } else {
            printf("%s: valid (%zu entit%s)\n", file, fs.s.n, fs.s.n == 1 ? "y" : "ies");
        }
        rc = np ? CTL_EAPI : CTL_OK;
    }
    set_free(&fs.s);
    json_decref(fs.probs);
    json_decref(doc);
    return rc;
}

/* ---- the table ------------------------------------------------------------------------------- */

static const ctl_flag_t dump_flags[] = {
    { "file", 'f', "FILE", "write the configuration to FILE (mode 0600) instead of stdout", "file", 0 },
    { "format", 0, "FORMAT", "yaml (default) or json", "yaml|json", 0 },
    { NULL, 0, NULL, NULL, NULL, 0 },
};

static const ctl_flag_t validate_flags[] = {
    { "offline", 0, NULL, "only the local checks; do not ask the admin API to validate each entity", NULL, 0 },
    { NULL, 0, NULL, NULL, NULL, 0 },
};

static const ctl_flag_t sync_flags[] = {
    { "dry-run", 0, NULL, "show what would change (as config diff) and change nothing", NULL, 0 },
    { NULL, 0, NULL, NULL, NULL, 0 },
};

static const ctl_cmd_t cmds[] = {
    { "config dump", "", "Write every entity of the node as a declarative configuration file",
      "Reads services, routes, consumers, plugins, upstreams and their targets, certificates,\n"
      "SNIs, CA certificates and the credentials (jwt, key-auth, basic-auth, acl, oauth2) through\n"
      "the admin API and writes them in Kong's declarative format (_format_version \"3.0\"):\n"
      "routes and plugins nested under their service, route or consumer, credentials under their\n"
      "consumer, targets under their upstream, with their ids. The file loads as aigwd's\n"
      "declarative_config (database = off), and config diff of it against the same node shows no\n"
      "change. It holds credentials' secrets: it is written with mode 0600. _transform is false\n"
      "because basic-auth passwords are dumped as their stored hashes.",
      dump_flags, NULL, run_dump, NULL, 0 },
    { "config validate", "FILE", "Check a declarative configuration file without changing anything",
      "Local checks first: the document's keys, that every entity has what matches it with the\n"
      "node's (a name, username, key or id), references to other entities of the file by id or\n"
      "name, and duplicates. Then every entity is sent to the admin API's\n"
      "POST /schemas/{entity}/validate (plugins to /schemas/plugins/validate), so schema errors\n"
      "are the server's. Each problem is printed with where it is, e.g. services[0].routes[1].\n"
      "Exit code 0 when the file is valid, 1 when not; -o json prints {valid, problems}.",
      validate_flags, "file", run_validate, NULL, 0 },
    { "config diff", "FILE", "Show what config sync FILE would create, update and delete",
      "Entities of the file match the node's by id when the file gives one, else by natural key:\n"
      "services, routes and upstreams by name, consumers by username (or custom_id), plugins by\n"
      "name and their service/route/consumer, targets by upstream and target, SNIs by name,\n"
      "credentials by key, username, group or client_id within their consumer. Only the fields\n"
      "the file sets are compared, plus the schema's defaults for those it leaves out. Entities of\n"
      "the node that the file lacks are deleted. Prints '+ create', '~ update' (with the changed\n"
      "fields) and '- delete' lines and a summary; -o json gives the structured diff. Secrets are\n"
      "never shown. A plain-text basic-auth password is not compared with its stored hash.\n"
      "Exit code 0 (1 when the file is invalid).",
      NULL, "file", run_diff, NULL, 0 },
    { "config sync", "FILE", "Make the node match a declarative configuration file",
      "Applies exactly what config diff FILE shows, through the admin API: creations and updates\n"
      "parents first, deletions children first. Stops at the first error the admin API answers,\n"
      "names the entity, and leaves the rest untouched; what was applied is printed. Entities the\n"
      "file lacks are deleted, as decK's sync does: run config diff first.",
      sync_flags, "file", run_sync, NULL, 0 },
};

const ctl_cmd_t *ctl_cmds_config(size_t *n)
{
    *n = sizeof(cmds) / sizeof(cmds[0]);
    return cmds;
}
