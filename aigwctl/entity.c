/* aigwctl/entity.c: list, get, create, update, upsert and delete for every entity kind and
 * every credential kind, built once from a small descriptor table, plus the aliases users type
 * (`plugin enable`, `plugin disable`, `acl add`, `acl remove`).
 *
 * Requests are form-encoded, in the admin API's own syntax: the flags become pairs
 * (`--paths /a,/b` -> `paths[]=/a&paths[]=/b`) and the user's key=value pairs follow as typed,
 * so `config.minute=60` and `paths[]=/x` mean what they mean to curl. Scoping flags (--service,
 * --upstream, --consumer, ...) pick the nested collection (/services/{s}/routes,
 * /consumers/{c}/jwt, ...). */
#include "ctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/sbuf.h"

/* ---- descriptors ---- */

enum { F_STR, F_LIST, F_FILE };

/* A flag that sets one field of the entity. */
typedef struct field_flag {
    const char *flag;
    const char *metavar;
    const char *field;
    int type;
    const char *help;
    const char *complete;
} field_flag_t;

enum { REQ_NONE, REQ_WRITE, REQ_ALL };

/* A parent the kind may be scoped to: --flag VALUE selects /parent/VALUE/<nested>. */
typedef struct scope {
    const char *flag;       /* "service" */
    const char *parent;     /* "/services" */
    const char *fk;         /* the entity's foreign key field: "service" */
    int required;           /* REQ_WRITE: for create and upsert; REQ_ALL: for every verb */
} scope_t;

typedef struct kind {
    const char *word;       /* "service" */
    const char *plural;     /* "services" */
    const char *collection; /* "/services", or NULL when only nested (targets) */
    const char *nested;     /* segment under a parent: "routes", "jwt", "acls" */
    const char *key_field;  /* what ID|NAME may name besides the id */
    const char *create_field; /* the field a create positional sets, or NULL */
    const char *pos_meta;   /* "NAME", "TARGET", "GROUP" */
    scope_t scopes[3];
    const field_flag_t *fields;
    const char *const *columns;
    const char *example_create;
    const char *example_other;
    int plugin;             /* plugins: ID|NAME resolves a name within the scope */
} kind_t;

#define END_FIELDS { NULL, NULL, NULL, 0, NULL, NULL }
#define TAGS_FIELD { "tags", "TAG[,TAG]", "tags", F_LIST, "tags to set (repeatable, comma-separated)", NULL }

static const field_flag_t service_fields[] = {
    { "name", "NAME", "name", F_STR, "the service's name", NULL },
    { "url", "URL", "url", F_STR, "upstream URL (sets protocol, host, port and path at once)", NULL },
    { "protocol", "PROTO", "protocol", F_STR, "http, https, grpc, grpcs, tcp, tls, udp, ...", "http|https|grpc|grpcs|tcp|tls|udp" },
    { "host", "HOST", "host", F_STR, "upstream host (or the name of an upstream)", NULL },
    { "port", "PORT", "port", F_STR, "upstream port", NULL },
    { "path", "PATH", "path", F_STR, "path prefix sent upstream", NULL },
    TAGS_FIELD, END_FIELDS,
};
static const field_flag_t route_fields[] = {
    { "name", "NAME", "name", F_STR, "the route's name", NULL },
    { "paths", "PATH[,PATH]", "paths", F_LIST, "paths to match (repeatable, comma-separated)", NULL },
    { "hosts", "HOST[,HOST]", "hosts", F_LIST, "hosts to match (repeatable, comma-separated)", NULL },
    { "methods", "METHOD[,METHOD]", "methods", F_LIST, "methods to match (repeatable, comma-separated)", NULL },
    { "protocols", "PROTO[,PROTO]", "protocols", F_LIST, "protocols (default http,https)", NULL },
    TAGS_FIELD, END_FIELDS,
};
static const field_flag_t consumer_fields[] = {
    { "username", "NAME", "username", F_STR, "the consumer's username", NULL },
    { "custom-id", "ID", "custom_id", F_STR, "an id of your own for the consumer", NULL },
    TAGS_FIELD, END_FIELDS,
};
static const field_flag_t plugin_fields[] = {
    { "name", "PLUGIN", "name", F_STR, "the plugin's name (rate-limiting, jwt, acl, ...)", "plugin-name" },
    { "protocols", "PROTO[,PROTO]", "protocols", F_LIST, "protocols the plugin runs on", NULL },
    TAGS_FIELD, END_FIELDS,
};
static const field_flag_t certificate_fields[] = {
    { "cert", "FILE", "cert", F_FILE, "PEM certificate (chain) file", "file" },
    { "key", "FILE", "key", F_FILE, "PEM private key file", "file" },
    { "snis", "NAME[,NAME]", "snis", F_LIST, "server names served with it (repeatable, comma-separated)", NULL },
    TAGS_FIELD, END_FIELDS,
};
static const field_flag_t sni_fields[] = {
    { "name", "NAME", "name", F_STR, "the server name (a wildcard like *.example.com is allowed)", NULL },
    TAGS_FIELD, END_FIELDS,
};
static const field_flag_t upstream_fields[] = {
    { "name", "NAME", "name", F_STR, "the upstream's name (a hostname services use as host)", NULL },
    { "algorithm", "ALG", "algorithm", F_STR, "round-robin, consistent-hashing, least-connections or latency",
      "round-robin|consistent-hashing|least-connections|latency" },
    TAGS_FIELD, END_FIELDS,
};
static const field_flag_t target_fields[] = {
    { "target", "HOST[:PORT]", "target", F_STR, "the target's address (port 8000 when omitted)", NULL },
    { "weight", "N", "weight", F_STR, "weight 0..65535 (default 100)", NULL },
    TAGS_FIELD, END_FIELDS,
};
static const field_flag_t cacert_fields[] = {
    { "cert", "FILE", "cert", F_FILE, "PEM CA certificate file", "file" },
    TAGS_FIELD, END_FIELDS,
};
static const field_flag_t jwt_fields[] = {
    { "key", "KEY", "key", F_STR, "the key (the iss claim); generated when omitted", NULL },
    { "secret", "SECRET", "secret", F_STR, "the HMAC secret; generated when omitted", NULL },
    { "algorithm", "ALG", "algorithm", F_STR, "HS256 (default), HS384, HS512, RS256, ES256, ...",
      "HS256|HS384|HS512|RS256|RS384|RS512|ES256|ES384|ES512|PS256|PS384|PS512|EdDSA" },
    { "rsa-public-key", "FILE", "rsa_public_key", F_FILE, "PEM public key file for RS, PS, ES and EdDSA", "file" },
    TAGS_FIELD, END_FIELDS,
};
static const field_flag_t keyauth_fields[] = {
    { "key", "KEY", "key", F_STR, "the API key; generated when omitted", NULL },
    TAGS_FIELD, END_FIELDS,
};
static const field_flag_t basicauth_fields[] = {
    { "username", "NAME", "username", F_STR, "the username", NULL },
    { "password", "PASSWORD", "password", F_STR, "the password (stored hashed)", NULL },
    TAGS_FIELD, END_FIELDS,
};
static const field_flag_t acl_fields[] = {
    { "group", "GROUP", "group", F_STR, "the group the consumer belongs to", NULL },
    TAGS_FIELD, END_FIELDS,
};
static const field_flag_t oauth2_fields[] = {
    { "name", "NAME", "name", F_STR, "the application's name", NULL },
    { "client-id", "ID", "client_id", F_STR, "the client id; generated when omitted", NULL },
    { "client-secret", "SECRET", "client_secret", F_STR, "the client secret; generated when omitted", NULL },
    { "redirect-uris", "URI[,URI]", "redirect_uris", F_LIST, "redirect URIs (repeatable, comma-separated)", NULL },
    TAGS_FIELD, END_FIELDS,
};

static const char *const service_cols[] = { "name", "id", "protocol", "host", "port", "path", "tags", NULL };
static const char *const route_cols[] = { "name", "id", "paths", "hosts", "methods", "service", "tags", NULL };
static const char *const consumer_cols[] = { "username", "id", "custom_id", "tags", NULL };
static const char *const plugin_cols[] = { "name", "id", "enabled", "service", "route", "consumer", "protocols", NULL };
static const char *const certificate_cols[] = { "id", "snis", "tags", NULL };
static const char *const sni_cols[] = { "name", "id", "certificate", "tags", NULL };
static const char *const upstream_cols[] = { "name", "id", "algorithm", "slots", "tags", NULL };
static const char *const target_cols[] = { "target", "id", "weight", "upstream", "tags", NULL };
static const char *const cacert_cols[] = { "id", "cert_digest", "tags", NULL };
static const char *const jwt_cols[] = { "key", "id", "algorithm", "consumer", "tags", NULL };
static const char *const keyauth_cols[] = { "id", "consumer", "ttl", "tags", NULL };
static const char *const basicauth_cols[] = { "username", "id", "consumer", "tags", NULL };
static const char *const acl_cols[] = { "group", "id", "consumer", "tags", NULL };
static const char *const oauth2_cols[] = { "name", "client_id", "id", "redirect_uris", "consumer", NULL };

#define SC_SERVICE(req) { "service", "/services", "service", req }
#define SC_ROUTE(req) { "route", "/routes", "route", req }
#define SC_CONSUMER(req) { "consumer", "/consumers", "consumer", req }
#define SC_NONE { NULL, NULL, NULL, 0 }

static const kind_t kinds[] = {
    { "service", "services", "/services", NULL, "name", "name", "NAME",
      { SC_NONE, SC_NONE, SC_NONE }, service_fields, service_cols,
      "aigwctl service create ai-orchestrator --url http://127.0.0.1:5000",
      "aigwctl service update ai-orchestrator retries=3 connect_timeout=5000", 0 },
    { "route", "routes", "/routes", "routes", "name", "name", "NAME",
      { SC_SERVICE(REQ_NONE), SC_NONE, SC_NONE }, route_fields, route_cols,
      "aigwctl route create --service ai-orchestrator --paths /ai-workflow",
      "aigwctl route update ROUTE strip_path=false --methods GET,POST", 0 },
    { "consumer", "consumers", "/consumers", NULL, "username", "username", "USERNAME",
      { SC_NONE, SC_NONE, SC_NONE }, consumer_fields, consumer_cols,
      "aigwctl consumer create ai-client", "aigwctl consumer update ai-client custom_id=c-42", 0 },
    { "plugin", "plugins", "/plugins", "plugins", NULL, "name", "PLUGIN",
      { SC_SERVICE(REQ_NONE), SC_ROUTE(REQ_NONE), SC_CONSUMER(REQ_NONE) }, plugin_fields, plugin_cols,
      "aigwctl plugin enable rate-limiting --service ai-orchestrator config.minute=60 config.policy=local",
      "aigwctl plugin update rate-limiting --service ai-orchestrator config.minute=100", 1 },
    { "certificate", "certificates", "/certificates", NULL, NULL, NULL, NULL,
      { SC_NONE, SC_NONE, SC_NONE }, certificate_fields, certificate_cols,
      "aigwctl certificate create --cert cert.pem --key key.pem --snis api.example.com",
      "aigwctl certificate update ID --snis api.example.com,www.example.com", 0 },
    { "sni", "snis", "/snis", "snis", "name", "name", "NAME",
      { { "certificate", "/certificates", "certificate", REQ_WRITE }, SC_NONE, SC_NONE }, sni_fields, sni_cols,
      "aigwctl sni create api.example.com --certificate CERT-ID",
      "aigwctl sni get api.example.com", 0 },
    { "upstream", "upstreams", "/upstreams", NULL, "name", "name", "NAME",
      { SC_NONE, SC_NONE, SC_NONE }, upstream_fields, upstream_cols,
      "aigwctl upstream create ai-backends --algorithm least-connections",
      "aigwctl upstream update ai-backends healthchecks.active.healthy.interval=5", 0 },
    { "target", "targets", NULL, "targets", "target", "target", "TARGET",
      { { "upstream", "/upstreams", "upstream", REQ_ALL }, SC_NONE, SC_NONE }, target_fields, target_cols,
      "aigwctl target create 127.0.0.1:5000 --upstream ai-backends --weight 50",
      "aigwctl target delete 127.0.0.1:5000 --upstream ai-backends", 0 },
    { "ca-certificate", "CA certificates", "/ca_certificates", NULL, NULL, NULL, NULL,
      { SC_NONE, SC_NONE, SC_NONE }, cacert_fields, cacert_cols,
      "aigwctl ca-certificate create --cert ca.pem", "aigwctl ca-certificate delete ID", 0 },
    { "jwt", "jwt credentials", "/jwts", "jwt", "key", "key", "KEY",
      { SC_CONSUMER(REQ_WRITE), SC_NONE, SC_NONE }, jwt_fields, jwt_cols,
      "aigwctl jwt create --consumer ai-client --algorithm HS256",
      "aigwctl jwt list --consumer ai-client", 0 },
    { "key-auth", "key-auth credentials", "/key-auths", "key-auth", "key", "key", "KEY",
      { SC_CONSUMER(REQ_WRITE), SC_NONE, SC_NONE }, keyauth_fields, keyauth_cols,
      "aigwctl key-auth create --consumer ai-client", "aigwctl key-auth list --consumer ai-client", 0 },
    { "basic-auth", "basic-auth credentials", "/basic-auths", "basic-auth", "username", "username", "USERNAME",
      { SC_CONSUMER(REQ_WRITE), SC_NONE, SC_NONE }, basicauth_fields, basicauth_cols,
      "aigwctl basic-auth create alice --consumer ai-client --password s3cret",
      "aigwctl basic-auth delete alice --consumer ai-client", 0 },
    { "acl", "ACL group memberships", "/acls", "acls", "group", "group", "GROUP",
      { SC_CONSUMER(REQ_WRITE), SC_NONE, SC_NONE }, acl_fields, acl_cols,
      "aigwctl acl add --consumer ai-client --group ai-operator",
      "aigwctl acl remove ai-operator --consumer ai-client", 0 },
    { "oauth2", "oauth2 credentials", "/oauth2", "oauth2", "client_id", "name", "NAME",
      { SC_CONSUMER(REQ_WRITE), SC_NONE, SC_NONE }, oauth2_fields, oauth2_cols,
      "aigwctl oauth2 create ai-app --consumer ai-client --redirect-uris https://app.example.com/cb",
      "aigwctl oauth2 get CLIENT-ID --consumer ai-client", 0 },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

enum { V_LIST, V_GET, V_CREATE, V_UPDATE, V_UPSERT, V_DELETE };

typedef struct verb_data {
    const kind_t *k;
    int verb;
} verb_data_t;

/* ---- helpers ---- */

static int is_uuid(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        char ch = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (ch != '-')
                return 0;
        } else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

static void add_esc(aigw_sbuf_t *b, const char *s)
{
    char *e = ctl_escape(s);
    if (!e) {
        b->oom = 1;
        return;
    }
    aigw_sbuf_add(b, e);
    free(e);
}

/* The first scope given on the command line (index into k->scopes), or -1. */
static int first_scope(const kind_t *k, const ctl_args_t *a)
{
    for (int i = 0; i < 3 && k->scopes[i].flag; i++)
        if (ctl_opt(a, k->scopes[i].flag))
            return i;
    return -1;
}

/* The collection path for this command line: nested under the first scope given, else the
 * top-level collection. Usage errors for a missing required scope. */
static int base_path(const ctl_cmd_t *cmd, const kind_t *k, const ctl_args_t *a, int verb,
                     aigw_sbuf_t *out)
{
    for (int i = 0; i < 3 && k->scopes[i].flag; i++) {
        const scope_t *s = &k->scopes[i];
        int need = s->required == REQ_ALL ||
                   (s->required == REQ_WRITE && (verb == V_CREATE || verb == V_UPSERT));
        if (need && !ctl_opt(a, s->flag))
            return ctl_usage_error(cmd, "%s needs --%s (the %s the %s belong to)", cmd->words,
                                   s->flag, s->flag, k->plural);
    }
    int si = first_scope(k, a);
    if (si >= 0) {
        aigw_sbuf_add(out, k->scopes[si].parent);
        aigw_sbuf_add(out, "/");
        add_esc(out, ctl_opt(a, k->scopes[si].flag));
        aigw_sbuf_add(out, "/");
        aigw_sbuf_add(out, k->nested);
    } else {
        aigw_sbuf_add(out, k->collection);
    }
    return CTL_OK;
}

/* GET path; CTL_OK with *obj (caller decrefs), or an exit code with the error reported. */
static int get_json(ctl_t *c, const char *path, json_t **obj)
{
    ctl_resp_t r;
    *obj = NULL;
    int rc = ctl_call(c, "GET", path, NULL, NULL, 0, &r);
    if (rc == CTL_EAPI)
        ctl_report_error(c, &r);
    else if (rc == CTL_OK && r.json)
        *obj = json_incref(r.json);
    ctl_resp_free(&r);
    return rc;
}

/* The id of parent `value` in collection `parent` (caller frees). */
static int parent_id(ctl_t *c, const char *parent, const char *value, char **id)
{
    *id = NULL;
    aigw_sbuf_t p = { 0 };
    aigw_sbuf_add(&p, parent);
    aigw_sbuf_add(&p, "/");
    add_esc(&p, value);
    json_t *o = NULL;
    int rc = get_json(c, p.p ? p.p : "/", &o);
    aigw_sbuf_free(&p);
    if (rc == CTL_OK) {
        const char *s = json_string_value(json_object_get(o, "id"));
        *id = s ? strdup(s) : NULL;
        if (!*id) {
            fprintf(stderr, "aigwctl: %s/%s: the admin API answered without an id\n", parent, value);
            rc = CTL_EAPI;
        }
    }
    json_decref(o);
    return rc;
}

/* The id in a reference {"id": "..."} or NULL. */
static const char *ref_id(json_t *v)
{
    return json_string_value(json_object_get(v, "id"));
}

/* For plugins: keep only the items matching every scope given (ids resolved). Returns the exit
 * code; items are removed from list in place. */
static int filter_scopes(ctl_t *c, const kind_t *k, const ctl_args_t *a, json_t *list)
{
    for (int i = 0; i < 3 && k->scopes[i].flag; i++) {
        const char *v = ctl_opt(a, k->scopes[i].flag);
        if (!v)
            continue;
        char *id = NULL;
        int rc = parent_id(c, k->scopes[i].parent, v, &id);
        if (rc != CTL_OK)
            return rc;
        for (size_t j = json_array_size(list); j-- > 0;) {
            const char *rid = ref_id(json_object_get(json_array_get(list, j), k->scopes[i].fk));
            if (!rid || strcmp(rid, id) != 0)
                json_array_remove(list, j);
        }
        free(id);
    }
    return CTL_OK;
}

/* Resolve a plugin given by name within the scope given (or globally): *id is the one plugin's
 * id (caller frees). A UUID is taken as it is. */
static int plugin_missing; /* the last resolve_plugin found no such plugin */

static int resolve_plugin(ctl_t *c, const kind_t *k, const ctl_args_t *a, const char *ref, char **id)
{
    *id = NULL;
    plugin_missing = 0;
    if (is_uuid(ref)) {
        *id = strdup(ref);
        return *id ? CTL_OK : CTL_EAPI;
    }
    json_t *list = json_array();
    int rc = ctl_list_all(c, "/plugins", list);
    if (rc == CTL_OK)
        rc = filter_scopes(c, k, a, list);
    if (rc != CTL_OK) {
        json_decref(list);
        return rc;
    }
    int scoped = first_scope(k, a) >= 0;
    json_t *hit = NULL;
    size_t nhit = 0, nglobal = 0;
    json_t *global = NULL;
    size_t i;
    json_t *p;
    json_array_foreach(list, i, p) {
        const char *nm = json_string_value(json_object_get(p, "name"));
        if (!nm || strcmp(nm, ref) != 0)
            continue;
        nhit++;
        hit = p;
        int g = 1;
        for (int s = 0; s < 3; s++)
            if (k->scopes[s].fk && ref_id(json_object_get(p, k->scopes[s].fk)))
                g = 0;
        if (g) {
            nglobal++;
            global = p;
        }
    }
    if (!scoped && nhit > 1 && nglobal == 1) {
        hit = global;
        nhit = 1;
    }
    if (nhit == 1) {
        *id = strdup(ref_id(hit) ? ref_id(hit) : "");
    } else if (nhit == 0) {
        plugin_missing = 1;
        if (ctl_opt_on(a, "ignore-missing")) {
            json_decref(list);
            return CTL_EAPI;
        }
        fprintf(stderr, "aigwctl: no plugin '%s'%s\n", ref,
                scoped ? " in that scope" : " (give its id, or --service/--route/--consumer)");
        rc = CTL_EAPI;
    } else {
        fprintf(stderr, "aigwctl: %zu plugins are named '%s'; name one by id or narrow with "
                        "--service/--route/--consumer:\n", nhit, ref);
        json_array_foreach(list, i, p) {
            const char *nm = json_string_value(json_object_get(p, "name"));
            if (nm && strcmp(nm, ref) == 0)
                fprintf(stderr, "  %s\n", ref_id(p) ? ref_id(p) : "?");
        }
        rc = CTL_EAPI;
    }
    json_decref(list);
    return rc;
}

/* The path of one entity: base/ID (plugins by name resolved to /plugins/ID). */
static int entity_path(ctl_t *c, const ctl_cmd_t *cmd, const kind_t *k, const ctl_args_t *a,
                       int verb, const char *ref, aigw_sbuf_t *out)
{
    if (k->plugin && !is_uuid(ref)) {
        char *id = NULL;
        int rc = resolve_plugin(c, k, a, ref, &id);
        if (rc != CTL_OK)
            return rc;
        aigw_sbuf_add(out, "/plugins/");
        add_esc(out, id);
        free(id);
        return CTL_OK;
    }
    int rc = base_path(cmd, k, a, verb, out);
    if (rc != CTL_OK)
        return rc;
    aigw_sbuf_add(out, "/");
    add_esc(out, ref);
    return CTL_OK;
}

/* ---- form pairs ---- */

typedef struct pairs {
    char **v;
    size_t n, cap;
} pairs_t;

static int pairs_add(pairs_t *p, char *s)
{
    if (!s)
        return -1;
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 16;
        char **nv = realloc(p->v, nc * sizeof(*nv));
        if (!nv) {
            free(s);
            return -1;
        }
        p->v = nv;
        p->cap = nc;
    }
    p->v[p->n++] = s;
    return 0;
}

static int pairs_addkv(pairs_t *p, const char *k, const char *v)
{
    aigw_sbuf_t b = { 0 };
    aigw_sbuf_addf(&b, "%s=%s", k, v);
    if (b.oom) {
        aigw_sbuf_free(&b);
        return -1;
    }
    return pairs_add(p, b.p);
}

static void pairs_free(pairs_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i]);
    free(p->v);
    memset(p, 0, sizeof(*p));
}

/* Read a whole file (for --cert FILE and friends); caller frees. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    aigw_sbuf_t b = { 0 };
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        aigw_sbuf_addn(&b, buf, n);
    int err = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (err || b.oom || b.n > 1024 * 1024) {
        aigw_sbuf_free(&b);
        errno = err ? err : EFBIG;
        return NULL;
    }
    if (!b.p)
        return strdup("");
    return b.p;
}

/* The base of a pair's key: "paths[]" -> "paths", "config.minute" -> "config". */
static size_t key_base_len(const char *kv)
{
    size_t i = 0;
    while (kv[i] && kv[i] != '=' && kv[i] != '[' && kv[i] != '.')
        i++;
    return i;
}

/* Build the form: the kind's field flags, the create positional, then the user's pairs. */
static int build_form(const ctl_cmd_t *cmd, const kind_t *k, const ctl_args_t *a, const char *name_value,
                      pairs_t *p)
{
    const char *set_fields[32];
    size_t nset = 0;
    if (name_value) {
        if (pairs_addkv(p, k->create_field, name_value))
            return ctl_usage_error(cmd, "out of memory");
        set_fields[nset++] = k->create_field;
    }
    for (const field_flag_t *f = k->fields; f->flag; f++) {
        const char *vals[64];
        size_t nv = ctl_opt_all(a, f->flag, vals, 64);
        if (!nv)
            continue;
        if (name_value && strcmp(f->field, k->create_field) == 0)
            return ctl_usage_error(cmd, "the %s is given twice (as %s and --%s)", f->field, k->pos_meta,
                                   f->flag);
        if (f->type != F_LIST && nv > 1)
            return ctl_usage_error(cmd, "--%s given more than once", f->flag);
        if (nset < 32)
            set_fields[nset++] = f->field;
        if (f->type == F_STR) {
            if (pairs_addkv(p, f->field, vals[0]))
                return ctl_usage_error(cmd, "out of memory");
        } else if (f->type == F_FILE) {
            char *txt = read_file(vals[0]);
            if (!txt)
                return ctl_usage_error(cmd, "--%s: cannot read '%s': %s", f->flag, vals[0], strerror(errno));
            int bad = pairs_addkv(p, f->field, txt);
            free(txt);
            if (bad)
                return ctl_usage_error(cmd, "out of memory");
        } else {
            char key[64];
            snprintf(key, sizeof(key), "%s[]", f->field);
            size_t added = 0;
            for (size_t i = 0; i < nv; i++) {
                const char *s = vals[i];
                while (*s) {
                    const char *e = strchr(s, ',');
                    size_t l = e ? (size_t)(e - s) : strlen(s);
                    while (l && (*s == ' ' || *s == '\t')) {
                        s++;
                        l--;
                    }
                    size_t t = l;
                    while (t && (s[t - 1] == ' ' || s[t - 1] == '\t'))
                        t--;
                    if (t) {
                        char *item = strndup(s, t);
                        int bad = !item || pairs_addkv(p, key, item);
                        free(item);
                        if (bad)
                            return ctl_usage_error(cmd, "out of memory");
                        added++;
                    }
                    s += l;
                    if (*s == ',')
                        s++;
                }
            }
            /* An empty list (--tags "") clears the field. */
            if (!added && pairs_addkv(p, f->field, ""))
                return ctl_usage_error(cmd, "out of memory");
        }
    }
    for (int i = 0; i < a->npos; i++) {
        const char *kv = a->pos[i];
        const char *eq = strchr(kv, '=');
        if (!eq)
            continue;
        size_t bl = key_base_len(kv);
        if (eq == kv || bl == 0)
            return ctl_usage_error(cmd, "'%s' is not a key=value pair (the key is empty)", kv);
        for (size_t j = 0; j < nset; j++)
            if (strlen(set_fields[j]) == bl && strncmp(set_fields[j], kv, bl) == 0 &&
                (kv[bl] == '=' || kv[bl] == '['))
                return ctl_usage_error(cmd, "the field %s is given both as a flag and as '%s'",
                                       set_fields[j], kv);
        if (pairs_add(p, strdup(kv)))
            return ctl_usage_error(cmd, "out of memory");
    }
    return CTL_OK;
}

/* The positional words that are not key=value pairs. */
static int plain_positionals(const ctl_args_t *a, const char **out, int max)
{
    int n = 0;
    for (int i = 0; i < a->npos; i++)
        if (!strchr(a->pos[i], '=')) {
            if (n < max)
                out[n] = a->pos[i];
            n++;
        }
    return n;
}

static int count_pairs(const ctl_args_t *a)
{
    int n = 0;
    for (int i = 0; i < a->npos; i++)
        if (strchr(a->pos[i], '='))
            n++;
    return n;
}

/* ---- the verbs ---- */

static int run_list(ctl_t *c, const ctl_cmd_t *cmd, const kind_t *k, ctl_args_t *a)
{
    if (a->npos)
        return ctl_usage_error(cmd, "unexpected argument '%s'", a->pos[0]);
    aigw_sbuf_t p = { 0 };
    int rc = base_path(cmd, k, a, V_LIST, &p);
    if (rc != CTL_OK) {
        aigw_sbuf_free(&p);
        return rc;
    }
    const char *tags = ctl_opt(a, "tags");
    if (tags) {
        aigw_sbuf_add(&p, "?tags=");
        add_esc(&p, tags);
    }
    json_t *list = json_array();
    rc = ctl_list_all(c, p.p ? p.p : "/", list);
    aigw_sbuf_free(&p);
    /* Plugins scoped twice (--service and --consumer): the nested list covers the first. */
    if (rc == CTL_OK && k->plugin && first_scope(k, a) >= 0)
        rc = filter_scopes(c, k, a, list);
    if (rc == CTL_OK)
        ctl_print(c, list, k->columns);
    json_decref(list);
    return rc;
}

static int one_ref(const ctl_cmd_t *cmd, const kind_t *k, const ctl_args_t *a, const char **ref)
{
    const char *pos[2];
    int n = plain_positionals(a, pos, 2);
    if (n == 0)
        return ctl_usage_error(cmd, "name the %s (its id%s%s)", k->word, k->key_field ? " or " : "",
                               k->key_field ? k->key_field : "");
    if (n > 1)
        return ctl_usage_error(cmd, "unexpected argument '%s'", pos[1]);
    *ref = pos[0];
    return CTL_OK;
}

static int run_get(ctl_t *c, const ctl_cmd_t *cmd, const kind_t *k, ctl_args_t *a)
{
    const char *ref;
    int rc = one_ref(cmd, k, a, &ref);
    if (rc != CTL_OK)
        return rc;
    if (count_pairs(a))
        return ctl_usage_error(cmd, "%s get takes no key=value pairs", k->word);
    aigw_sbuf_t p = { 0 };
    rc = entity_path(c, cmd, k, a, V_GET, ref, &p);
    json_t *o = NULL;
    if (rc == CTL_OK)
        rc = get_json(c, p.p ? p.p : "/", &o);
    if (rc == CTL_OK && o)
        ctl_print(c, o, k->columns);
    json_decref(o);
    aigw_sbuf_free(&p);
    return rc;
}

/* Send method path with the form; print the entity answered. */
static int send_print(ctl_t *c, const kind_t *k, const char *method, const char *path, pairs_t *f)
{
    ctl_resp_t r;
    int rc = ctl_call(c, method, path, NULL, f->v ? f->v : (char *const[]){ NULL }, f->n, &r);
    if (rc == CTL_EAPI)
        ctl_report_error(c, &r);
    else if (rc == CTL_OK && r.json)
        ctl_print(c, r.json, k->columns);
    ctl_resp_free(&r);
    return rc;
}

static int run_create(ctl_t *c, const ctl_cmd_t *cmd, const kind_t *k, ctl_args_t *a)
{
    const char *pos[2];
    int n = plain_positionals(a, pos, 2);
    if (n > 1 || (n == 1 && !k->create_field))
        return ctl_usage_error(cmd, "unexpected argument '%s'%s", pos[n > 1 ? 1 : 0],
                               " (other fields go as key=value pairs)");
    aigw_sbuf_t p = { 0 };
    pairs_t f = { 0 };
    int rc = base_path(cmd, k, a, V_CREATE, &p);
    if (rc == CTL_OK)
        rc = build_form(cmd, k, a, n ? pos[0] : NULL, &f);
    /* Scopes after the first one (plugins: --service S --consumer C) go as foreign keys. */
    int si = first_scope(k, a);
    for (int i = si + 1; rc == CTL_OK && si >= 0 && i < 3 && k->scopes[i].flag; i++) {
        const char *v = ctl_opt(a, k->scopes[i].flag);
        if (!v)
            continue;
        char *id = NULL;
        rc = parent_id(c, k->scopes[i].parent, v, &id);
        if (rc == CTL_OK) {
            char key[64];
            snprintf(key, sizeof(key), "%s.id", k->scopes[i].fk);
            if (pairs_addkv(&f, key, id))
                rc = ctl_usage_error(cmd, "out of memory");
        }
        free(id);
    }
    if (rc == CTL_OK)
        rc = send_print(c, k, "POST", p.p ? p.p : "/", &f);
    pairs_free(&f);
    aigw_sbuf_free(&p);
    return rc;
}

static int run_write(ctl_t *c, const ctl_cmd_t *cmd, const kind_t *k, ctl_args_t *a, int verb)
{
    const char *ref;
    int rc = one_ref(cmd, k, a, &ref);
    if (rc != CTL_OK)
        return rc;
    aigw_sbuf_t p = { 0 };
    pairs_t f = { 0 };
    rc = build_form(cmd, k, a, NULL, &f);
    if (rc == CTL_OK && verb == V_UPDATE && f.n == 0)
        rc = ctl_usage_error(cmd, "nothing to change: give flags or key=value pairs");
    if (rc == CTL_OK)
        rc = entity_path(c, cmd, k, a, verb, ref, &p);
    if (rc == CTL_OK)
        rc = send_print(c, k, verb == V_UPDATE ? "PATCH" : "PUT", p.p ? p.p : "/", &f);
    pairs_free(&f);
    aigw_sbuf_free(&p);
    return rc;
}

static int run_delete(ctl_t *c, const ctl_cmd_t *cmd, const kind_t *k, ctl_args_t *a)
{
    const char *ref;
    int rc = one_ref(cmd, k, a, &ref);
    if (rc != CTL_OK)
        return rc;
    if (count_pairs(a))
        return ctl_usage_error(cmd, "%s delete takes no key=value pairs", k->word);
    int ignore = ctl_opt_on(a, "ignore-missing");
    aigw_sbuf_t p = { 0 };
    rc = entity_path(c, cmd, k, a, V_DELETE, ref, &p);
    if (rc == CTL_EAPI && ignore && k->plugin && plugin_missing) {
        aigw_sbuf_free(&p);
        return CTL_OK;
    }
    /* The admin API answers 204 for what does not exist; look first so a typo is an error. */
    ctl_resp_t r;
    if (rc == CTL_OK) {
        rc = ctl_call(c, "GET", p.p ? p.p : "/", NULL, NULL, 0, &r);
        if (rc == CTL_EAPI && r.status == 404 && ignore) {
            ctl_resp_free(&r);
            aigw_sbuf_free(&p);
            return CTL_OK;
        }
        if (rc == CTL_EAPI)
            ctl_report_error(c, &r);
        ctl_resp_free(&r);
    }
    if (rc == CTL_OK) {
        rc = ctl_call(c, "DELETE", p.p ? p.p : "/", NULL, NULL, 0, &r);
        if (rc == CTL_EAPI)
            ctl_report_error(c, &r);
        else if (rc == CTL_OK && c->output == CTL_OUT_HUMAN)
            printf("deleted %s %s\n", k->word, ref);
        ctl_resp_free(&r);
    }
    aigw_sbuf_free(&p);
    return rc;
}

static int run_entity(ctl_t *c, const ctl_cmd_t *cmd, ctl_args_t *a)
{
    const verb_data_t *d = cmd->data;
    switch (d->verb) {
    case V_LIST:
        return run_list(c, cmd, d->k, a);
    case V_GET:
        return run_get(c, cmd, d->k, a);
    case V_CREATE:
        return run_create(c, cmd, d->k, a);
    case V_UPDATE:
    case V_UPSERT:
        return run_write(c, cmd, d->k, a, d->verb);
    default:
        return run_delete(c, cmd, d->k, a);
    }
}

/* ---- the command table, built once ---- */

static ctl_cmd_t *cmds;
static size_t ncmds;
static verb_data_t vdata[NKINDS * 6];

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    va_list ap2;
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    char *s = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (s)
        vsnprintf(s, (size_t)len + 1, f, ap2);
    va_end(ap2);
    return s;
}

static const char *art(const char *w)
{
    return strchr("aeiouAEIOU", w[0]) ? "an" : "a";
}

static const char *const verb_words[] = { "list", "get", "create", "update", "upsert", "delete" };

/* The flags of (kind, verb): field flags for writes, scopes, --tags for list. */
static ctl_flag_t *make_flags(const kind_t *k, int verb)
{
    size_t n = 0;
    ctl_flag_t *fl = calloc(32, sizeof(*fl));
    if (!fl)
        return NULL;
    for (int i = 0; i < 3 && k->scopes[i].flag; i++) {
        const scope_t *s = &k->scopes[i];
        int req = s->required == REQ_ALL ||
                  (s->required == REQ_WRITE && (verb == V_CREATE || verb == V_UPSERT));
        char *help;
        if (k->plugin)
            help = fmt("the %s the plugin applies to (id or %s)", s->flag,
                       strcmp(s->flag, "consumer") == 0 ? "username" : "name");
        else
            help = fmt("the %s (id or %s)%s", s->flag,
                       strcmp(s->flag, "consumer") == 0 ? "username" : "name",
                       req ? "; required" : verb == V_LIST ? ": list only its " : "");
        if (help && !req && verb == V_LIST && !k->plugin) {
            char *h2 = fmt("%s%s", help, k->plural);
            free(help);
            help = h2;
        }
        fl[n++] = (ctl_flag_t){ s->flag, 0, strcmp(s->flag, "upstream") == 0 ? "UPSTREAM"
                                            : strcmp(s->flag, "consumer") == 0 ? "CONSUMER"
                                            : strcmp(s->flag, "service") == 0  ? "SERVICE"
                                            : strcmp(s->flag, "route") == 0    ? "ROUTE"
                                                                               : "CERTIFICATE",
                                help ? help : "", s->flag, 0 };
    }
    if (verb == V_LIST) {
        fl[n++] = (ctl_flag_t){ "tags", 0, "TAG[,TAG]",
                                "only those with all these tags (TAG/TAG: with any of them)", NULL, 0 };
    } else if (verb == V_CREATE || verb == V_UPDATE || verb == V_UPSERT) {
        for (const field_flag_t *f = k->fields; f->flag && n < 30; f++) {
            if (k->plugin && strcmp(f->flag, "name") == 0 && verb != V_CREATE)
                continue;
            fl[n++] = (ctl_flag_t){ f->flag, 0, f->metavar, f->help, f->complete, f->type == F_LIST };
        }
    } else if (verb == V_DELETE) {
        fl[n++] = (ctl_flag_t){ "ignore-missing", 0, NULL, "succeed when it does not exist", NULL, 0 };
    }
    return fl;
}

static const char *scope_usage(const kind_t *k, int verb)
{
    for (int i = 0; i < 3 && k->scopes[i].flag; i++) {
        const scope_t *s = &k->scopes[i];
        int req = s->required == REQ_ALL ||
                  (s->required == REQ_WRITE && (verb == V_CREATE || verb == V_UPSERT));
        if (req)
            return s->flag;
    }
    return NULL;
}

/* Break a paragraph's long lines at spaces (help text is read on an 80-column terminal). */
static void wrap(char *s)
{
    if (!s)
        return;
    size_t col = 0;
    char *last_space = NULL;
    int example = strncmp(s, "Example:", 8) == 0;
    for (char *p = s; *p; p++) {
        if (*p == '\n') {
            col = 0;
            last_space = NULL;
            example = strncmp(p + 1, "Example:", 8) == 0;
            continue;
        }
        if (example)
            continue;
        if (*p == ' ')
            last_space = p;
        if (++col > 88 && last_space) {
            *last_space = '\n';
            col = (size_t)(p - last_space);
            last_space = NULL;
        }
    }
}

static void make_cmd(ctl_cmd_t *cmd, const kind_t *k, int verb, const char *word, int hidden)
{
    verb_data_t *d = &vdata[(size_t)(k - kinds) * 6 + (size_t)verb];
    /* "jwt credential", "ACL group", "service": the plural without its s. */
    char label[48];
    snprintf(label, sizeof(label), "%.*s", (int)strlen(k->plural) - 1, k->plural);
    d->k = k;
    d->verb = verb;
    const char *req = scope_usage(k, verb);
    char reqbuf[64] = "";
    if (req)
        snprintf(reqbuf, sizeof(reqbuf), "--%s %s ", req,
                 strcmp(req, "consumer") == 0 ? "CONSUMER" : strcmp(req, "upstream") == 0 ? "UPSTREAM" : "CERTIFICATE");
    char idname[48];
    snprintf(idname, sizeof(idname), "ID%s%s", k->key_field || k->plugin ? "|" : "",
             k->plugin ? "NAME" : k->key_field ? k->pos_meta : "");
    char sets[64] = "";
    if (k->create_field)
        snprintf(sets, sizeof(sets), " %s sets %s.", k->pos_meta, k->create_field);
    char named[96] = "";
    if (k->key_field && !k->plugin)
        snprintf(named, sizeof(named), " Named by %s, the %s is set from it.", k->pos_meta, k->key_field);
    cmd->words = fmt("%s %s", k->word, word);
    cmd->flags = make_flags(k, verb);
    cmd->run = run_entity;
    cmd->data = d;
    cmd->hidden = hidden;
    /* The collection as the help shows it: nested when the scope is required. */
    char coll[128], alt[160] = "";
    const scope_t *s0 = k->scopes[0].flag ? &k->scopes[0] : NULL;
    if (s0 && (!k->collection || req))
        snprintf(coll, sizeof(coll), "%s/{%s}/%s", s0->parent, s0->flag, k->nested);
    else
        snprintf(coll, sizeof(coll), "%s", k->collection);
    if (s0 && k->collection && !req)
        snprintf(alt, sizeof(alt), " (%s/{%s}/%s with --%s%s)", s0->parent, s0->flag, k->nested,
                 s0->flag, k->plugin ? ", and likewise for --route and --consumer" : "");
    switch (verb) {
    case V_LIST:
        cmd->usage = fmt("%.*s", reqbuf[0] ? (int)strlen(reqbuf) - 1 : 0, reqbuf);
        cmd->summary = fmt("List %s (every page)", k->plural);
        cmd->details = fmt("GET %s%s, following the pages to the end.%s Output: a table on a "
                           "terminal; -o json prints the array of %s as the admin API gives them.\n"
                           "Example: aigwctl %s list%s",
                           coll, alt,
                           k->plugin ? " Several scope flags narrow the list to plugins that have all of them." : "",
                           k->plural, k->word, reqbuf[0] ? " --upstream ai-backends" : " -o json");
        cmd->pos_complete = NULL;
        break;
    case V_GET:
        cmd->usage = fmt("%s%s", reqbuf, idname);
        cmd->summary = fmt("Show one %s", label);
        cmd->details = fmt("GET %s/{id%s%s}.%s\nAn unknown one exits with code 1 and the admin "
                           "API's message.",
                           coll, k->key_field ? " or " : "", k->key_field ? k->key_field : "",
                           k->plugin ? " A plugin may be named by its plugin name when only one "
                                       "such plugin exists in the scope given (--service, --route, "
                                       "--consumer) or globally."
                                     : "");
        cmd->pos_complete = k->plugin ? "plugin-name" : k->word;
        break;
    case V_CREATE:
        cmd->usage = k->create_field ? fmt("%s[%s] [key=value ...]", reqbuf, k->pos_meta)
                                     : fmt("%s[key=value ...]", reqbuf);
        cmd->summary = strcmp(word, "enable") == 0 ? fmt("Enable a plugin: create it")
                       : strcmp(word, "add") == 0  ? fmt("Add a consumer to a group: create an acl")
                                                   : fmt("Create %s %s", art(label), label);
        cmd->details = fmt("POST %s%s.%s Flags set common fields; any other field goes as a "
                           "key=value pair in the admin API's form syntax (config.minute=60, "
                           "paths[]=/x, service.name=NAME, headers[x-id]=1), sent as typed. List "
                           "flags are repeatable and take comma-separated values.\n"
                           "Prints the created entity (-o json: the admin API's answer).\n"
                           "Example: %s",
                           coll, alt,
                           sets, k->example_create);
        cmd->pos_complete = k->plugin ? "plugin-name" : NULL;
        break;
    case V_UPDATE:
        cmd->usage = fmt("%s%s [key=value ...]", reqbuf, idname);
        cmd->summary = fmt("Change fields of %s %s", art(label), label);
        cmd->details = fmt("PATCH %s/{id%s%s}: only the fields given change (nested records are "
                           "merged). Fields as flags or key=value pairs in the admin API's form "
                           "syntax; a list flag replaces the whole list.\nExample: %s",
                           coll, k->key_field ? " or " : "", k->key_field ? k->key_field : "",
                           k->example_other);
        cmd->pos_complete = k->plugin ? "plugin-name" : k->word;
        break;
    case V_UPSERT:
        cmd->usage = fmt("%s%s [key=value ...]", reqbuf, idname);
        cmd->summary = fmt("Create or replace %s %s", art(label), label);
        cmd->details = fmt("PUT %s/{id%s%s}: the whole %s is replaced (fields not given go back to "
                           "their defaults); created when it does not exist.%s",
                           coll, k->key_field ? " or " : "", k->key_field ? k->key_field : "", label,
                           named);
        cmd->pos_complete = k->plugin ? "plugin-name" : k->word;
        break;
    default:
        cmd->usage = fmt("%s%s", reqbuf, idname);
        cmd->summary = strcmp(word, "disable") == 0  ? fmt("Disable a plugin: delete it")
                       : strcmp(word, "remove") == 0 ? fmt("Remove a consumer from a group: delete the acl")
                                                     : fmt("Delete %s %s", art(label), label);
        cmd->details = fmt("DELETE %s/{id%s%s}. It is looked up first: one that does not exist "
                           "is an error (exit 1) unless --ignore-missing is given.%s Prints "
                           "\"deleted %s ...\" (nothing with -o json|yaml|ids).",
                           coll, k->key_field ? " or " : "", k->key_field ? k->key_field : "",
                           k->plugin ? " To stop a plugin but keep its configuration, set "
                                       "enabled=false with plugin update instead."
                                     : "",
                           k->word);
        cmd->pos_complete = k->plugin ? "plugin-name" : k->word;
        break;
    }
    wrap((char *)(uintptr_t)cmd->details);
}

/* context.c's commands join this module's array (the table has no slot of its own for them). */
const ctl_cmd_t *ctl_cmds_context(size_t *n);

const ctl_cmd_t *ctl_cmds_entity(size_t *n)
{
    if (!cmds) {
        size_t nctx = 0;
        const ctl_cmd_t *ctx = ctl_cmds_context(&nctx);
        size_t cap = NKINDS * 6 + 8 + nctx;
        cmds = calloc(cap, sizeof(*cmds));
        if (!cmds) {
            *n = 0;
            return NULL;
        }
        for (size_t i = 0; i < NKINDS; i++) {
            const kind_t *k = &kinds[i];
            for (int v = 0; v < 6; v++)
                make_cmd(&cmds[ncmds++], k, v, verb_words[v], 0);
            if (k->plugin) {
                make_cmd(&cmds[ncmds++], k, V_CREATE, "enable", 0);
                make_cmd(&cmds[ncmds++], k, V_DELETE, "disable", 0);
            }
            if (strcmp(k->word, "acl") == 0) {
                make_cmd(&cmds[ncmds++], k, V_CREATE, "add", 0);
                make_cmd(&cmds[ncmds++], k, V_DELETE, "remove", 0);
            }
        }
        for (size_t i = 0; i < nctx; i++)
            cmds[ncmds++] = ctx[i];
    }
    *n = ncmds;
    return cmds;
}
