/* aigwd/schema/schema.h: every entity and every bundled plugin's `config`, described once as
 * data. The tables drive input decoding (form value coercion), validation with Kong's error
 * shapes, default filling, JSON output, the SQL of both stores, GET /schemas, declarative
 * import/export and aigwctl.
 *
 * Entity values are jansson objects on the admin/store side (never on the proxy's hot path).
 * The tables are static const and immutable: any thread may read them. The functions are pure
 * (no I/O) unless a comment says otherwise. */
#ifndef AIGW_SCHEMA_SCHEMA_H
#define AIGW_SCHEMA_SCHEMA_H
#include <jansson.h>
#include <stddef.h>

typedef enum {
    AIGW_FT_STRING = 0,
    AIGW_FT_INTEGER,
    AIGW_FT_NUMBER,
    AIGW_FT_BOOLEAN,
    AIGW_FT_ARRAY,       /* ordered, duplicates allowed */
    AIGW_FT_SET,         /* unordered, duplicates removed (Kong keeps the first) */
    AIGW_FT_MAP,         /* string keys -> `values` field */
    AIGW_FT_RECORD,      /* fixed `fields` */
    AIGW_FT_FOREIGN,     /* {"id": uuid} referencing `reference` */
    AIGW_FT_ANY,         /* any JSON value, unchecked (Kong's "json" typedef) */
} aigw_ftype_t;

/* Field flags. */
enum {
    AIGW_F_REQUIRED = 1u << 0,     /* must be present and not null (after defaults) */
    AIGW_F_UNIQUE = 1u << 1,       /* unique across the table (store enforces, 409) */
    AIGW_F_AUTO = 1u << 2,         /* generated when absent: uuid, timestamp or random string */
    AIGW_F_UUID = 1u << 3,         /* a string that must be a UUID */
    AIGW_F_TIMESTAMP = 1u << 4,    /* integer seconds (or ms precision with AIGW_F_MS) */
    AIGW_F_MS = 1u << 5,           /* timestamp with millisecond precision (targets) */
    AIGW_F_IMMUTABLE = 1u << 6,    /* cannot change on update */
    AIGW_F_PK = 1u << 7,           /* the primary key (id) */
    AIGW_F_SPLIT_COMMAS = 1u << 8, /* aigw: in form/multipart bodies, "a,b" is two elements */
    AIGW_F_INPUT_ONLY = 1u << 9,   /* shorthand accepted on input, never stored or output */
    AIGW_F_CASCADE = 1u << 10,     /* foreign: delete this row when the parent goes */
    AIGW_F_NAME_CHARS = 1u << 11,  /* utf-8 names: alphanumerics, . - _ ~ only for ascii */
    AIGW_F_HAS_BETWEEN = 1u << 12, /* min/max apply (inclusive) */
    AIGW_F_HAS_GT = 1u << 13,      /* value must be greater than min */
    AIGW_F_LEN_MIN = 1u << 14,     /* len_min applies (strings, arrays) */
    AIGW_F_SECRET = 1u << 15,      /* never written to a log; masked in GET / configuration */
    AIGW_F_RANDOM = 1u << 16,      /* with AUTO: 32 random [A-Za-z0-9] characters */
    AIGW_F_NULLABLE_REQ = 1u << 17,/* record: present as null is fine even if subfields required */
    /* Kong's `ttl` of entities with `ttl = true` (key-auth credentials, oauth2 codes and
     * tokens): an option, not a schema field. Only its type (a number) is checked here, as a
     * declarative document gives an expiry time; the admin API checks it as Kong's option
     * (code 11); the store keeps an expiry and reads give the seconds left (store.h); /schemas
     * does not list it. */
    AIGW_F_TTL = 1u << 18,
};

typedef struct aigw_field aigw_field_t;

/* A custom check: 0 ok, or -1 with Kong's message for this field in msg. */
typedef int (*aigw_field_check_fn)(const json_t *value, char *msg, size_t msglen);

struct aigw_field {
    const char *name;                 /* NULL ends a field list */
    aigw_ftype_t type;
    unsigned flags;
    const char *dflt;                 /* default as JSON text ("80", "\"http\"", "[]"); NULL: none */
    const aigw_field_t *elements;     /* ARRAY/SET: the element; MAP: the value */
    const aigw_field_t *fields;       /* RECORD: the sub-fields (NULL-name terminated) */
    const char *const *one_of;        /* allowed values (strings, or integers as text); NULL-ended */
    double min, max;                  /* with HAS_BETWEEN / HAS_GT */
    size_t len_min;                   /* with LEN_MIN */
    const char *reference;            /* FOREIGN: the referenced entity's name */
    aigw_field_check_fn check;        /* custom check, after the type checks; NULL: none */
    const char *alias_of;             /* an accepted input name stored as this other field */
    const char *starts_with;          /* strings: required prefix ("/") */
};

typedef struct aigw_entity aigw_entity_t;

/* Entity-level check: appends Kong's messages to `entity_errors` (a JSON array, the
 * "@entity" list) and/or sets per-field errors in `field_errors`; returns -1 if any. Runs
 * only when every field passed its own checks (as Kong). */
typedef int (*aigw_entity_check_fn)(const aigw_entity_t *e, const json_t *obj,
                                    json_t *entity_errors, json_t *field_errors);
/* Input shorthand (a service's `url`, a certificate's `snis`): rewrites obj in place before
 * validation; may add field errors. */
typedef int (*aigw_shorthand_fn)(json_t *obj, json_t *field_errors);

/* Entity flags. */
enum {
    AIGW_E_NO_UPDATED_AT = 1u << 0,   /* credentials have created_at only */
    AIGW_E_CREDENTIAL = 1u << 1,      /* belongs to a consumer (jwt, key-auth, ...) */
    AIGW_E_NO_TOP_LEVEL = 1u << 2,    /* no top-level collection (targets) */
    AIGW_E_PLUGIN = 1u << 3,          /* `config` validated by the plugin named in `name` */
    AIGW_E_RUNTIME_DATA = 1u << 4,    /* written by the proxy (oauth2 tokens and codes): not
                                         configuration, so never in a snapshot, and writing
                                         it does not move the configuration version */
};

struct aigw_entity {
    const char *name;                 /* table and declarative key: "services", "jwt_secrets" */
    const char *admin_path;           /* top-level path segment: "services", "jwts", "key-auths" */
    const char *nested_path;          /* under its parent: "routes", "jwt", "key-auth", "acls" */
    const char *parent_field;         /* the foreign field that nests it: "service", "consumer" */
    const char *endpoint_key;         /* addressed by this unique field too ("name"), or NULL */
    const aigw_field_t *fields;       /* NULL-name terminated */
    aigw_shorthand_fn shorthand;
    aigw_entity_check_fn check;
    const char *const *cache_key;     /* fields unique together (plugins, acls); NULL-ended */
    unsigned flags;
};

/* ---- plugins ------------------------------------------------------------------------------ */

enum {
    AIGW_P_NO_CONSUMER = 1u << 0,     /* typedefs.no_consumer: cannot be scoped to a consumer */
    AIGW_P_NO_ROUTE = 1u << 1,
    AIGW_P_NO_SERVICE = 1u << 2,
};

typedef struct aigw_plugin_schema {
    const char *name;                 /* "rate-limiting" */
    int priority;                     /* handler PRIORITY (execution order) */
    const char *version;              /* as Kong reports under available_on_server */
    const aigw_field_t *config;       /* the `config` record's fields (NULL-name terminated) */
    const char *const *protocols;     /* default protocols; NULL: grpc, grpcs, http, https */
    aigw_entity_check_fn check;       /* config-level checks (obj is the config record) */
    unsigned flags;
} aigw_plugin_schema_t;

/* ---- lookup --------------------------------------------------------------------------------- */

/* NULL-terminated list of every entity, in dependency order (parents first). */
extern const aigw_entity_t *const aigw_entities[];
/* Every bundled plugin, NULL-terminated, sorted by name. */
extern const aigw_plugin_schema_t *const aigw_plugins[];

const aigw_entity_t *aigw_schema_entity(const char *name);            /* by table name */
const aigw_entity_t *aigw_schema_entity_by_path(const char *segment); /* by admin_path */
const aigw_plugin_schema_t *aigw_schema_plugin(const char *name);
const aigw_field_t *aigw_schema_field(const aigw_field_t *fields, const char *name);

/* ---- validation ----------------------------------------------------------------------------- */

typedef enum {
    AIGW_V_INSERT = 0,   /* POST, PUT: defaults filled, required fields checked, autos made */
    AIGW_V_UPDATE,       /* PATCH: obj is already the merged entity; nothing new generated */
    AIGW_V_CHECK,        /* /schemas/.../validate: as INSERT, nothing generated */
} aigw_vmode_t;

/* Validates obj against e (plugins: config against the plugin named by obj.name) and
 * normalises it in place: shorthands expanded, aliases mapped, defaults filled, sets
 * de-duplicated, autos generated (INSERT). Unknown fields are errors.
 * Returns 0, or -1 with *errors set to a new object in Kong's `fields` shape
 * ({"host":"required field missing","@entity":[...],"config":{"minute":"..."}}). */
int aigw_schema_validate(const aigw_entity_t *e, json_t *obj, aigw_vmode_t mode,
                         json_t **errors);

/* Kong's message for a fields object: "schema violation (host: required field missing)" or
 * "2 schema violations (a; b)". Caller frees. */
char *aigw_schema_errors_message(const json_t *errors);

/* Output form of a stored entity: every field present (unset ones null), input-only fields
 * dropped, plugin config complete. Returns a new reference. */
json_t *aigw_schema_output(const aigw_entity_t *e, const json_t *obj);

/* GET /schemas/{entity} and /schemas/plugins/{name}: Kong's {"fields":[{name:{...}}...]}. */
json_t *aigw_schema_describe(const aigw_entity_t *e);
json_t *aigw_schema_describe_plugin(const aigw_plugin_schema_t *p);

/* Kong's entity_checks as GET /schemas shows them (schema_to_jsonable: check functions
 * dropped, null kept), from the declarations in schema/check_desc.c: of an entity ("routes")
 * or a plugin ("plugins/rate-limiting") when field is NULL, else of the record that top-level
 * field holds (itself or its elements: "sources", "config"). New array, [] when none. */
json_t *aigw_schema_entity_checks_json(const char *schema, const char *field);
/* The declarations one by one (for the self-check): 0 with borrowed strings, -1 past the end. */
size_t aigw_schema_entity_checks_count(void);
int aigw_schema_entity_checks_at(size_t i, const char **schema, const char **field,
                                 const char **json);

/* The field a dotted input key lands on, for form value coercion: ("config.minute" on a
 * plugin named rate-limiting -> the integer field). plugin_name may be NULL. NULL if unknown. */
const aigw_field_t *aigw_schema_field_path(const aigw_entity_t *e, const char *plugin_name,
                                           const char *const *path, size_t depth);

/* Secrets at rest, for every path that stores entities (admin API, declarative import): a
 * basic-auth password, and an oauth2 client_secret when hash_secret is true, are replaced by
 * an Argon2id hash unless they already are one. 0, or -1 (random source or hash failure).
 * Slow on purpose (tens of ms): never call it on a proxy worker. */
int aigw_schema_protect_secrets(const aigw_entity_t *e, json_t *obj);

/* A new random UUID v4 string into out (37 bytes). */
void aigw_schema_uuid(char out[37]);
/* 1 if s is a UUID in canonical text form. */
int aigw_schema_is_uuid(const char *s);

/* ---- addition (plugins): which protocols a plugin's `protocols` field accepts -------------- */
/* Plugin flag. Set when Kong's schema.lua declares `protocols = typedefs.protocols_http`: the
 * elements must then be one of grpc, grpcs, http, https ("expected one of: grpc, grpcs, http,
 * https"). Without it (`typedefs.protocols`) any of constants.PROTOCOLS is accepted
 * ("expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp"). */
enum { AIGW_P_PROTOCOLS_HTTP = 1u << 3 };

#endif
