/* aigwd/declarative/declarative.h: Kong's declarative configuration (kong.yml): YAML and JSON
 * text to entities and back, `aigwd config ...`, and the loads behind db_import, DB-less
 * POST /config and db_export.
 *
 * Parsing and the YAML layer are pure (no I/O) and may run on any thread; import, replace and
 * export block on the store and run where the store may (the admin thread, a CLI command).
 *
 * The YAML layer is common/yaml.h (aigwctl reads the same files). */
#ifndef AIGW_DECLARATIVE_DECLARATIVE_H
#define AIGW_DECLARATIVE_DECLARATIVE_H
#include <jansson.h>
#include <stddef.h>
#include "common/yaml.h"
#include "schema/schema.h"
#include "store/store.h"


/* Parses a Kong declarative document (YAML or JSON text: JSON when it starts with `{` and
 * parses as JSON, else YAML). Kong's format: `_format_version` "1.1", "2.1" or "3.0"
 * (required), `_transform` (boolean), `_comment`, `_workspace`, `_ignore`; one key per entity
 * collection by entity name (services, routes, consumers, plugins, upstreams, targets,
 * certificates, snis, ca_certificates, jwt_secrets, keyauth_credentials,
 * basicauth_credentials, acls, oauth2_credentials, ...); children nested in their parents
 * (services[].routes[], services[].plugins[], routes[].plugins[], consumers[].plugins[],
 * consumers[].<credentials>[], upstreams[].targets[], certificates[].snis[]) with the foreign
 * key implied; elsewhere a foreign key is the parent's id or endpoint key (`service: my-svc`)
 * or {"id": ...}.
 *
 * Every entity is validated with aigw_schema_validate (AIGW_V_INSERT). An entity without id
 * gets Kong's deterministic id (UUID v5 of its entity name and endpoint key or cache key, the
 * same ids Kong 3.9 derives), so re-importing a file keeps ids. Every reference is resolved
 * within the document; duplicate ids, endpoint keys and unique values are refused.
 *
 * On success 0 and *out = {"services":[...], "routes":[...], ...}: flat, validated entities
 * with foreign keys as {"id": ...}, collections in aigw_entities order (parents first), empty
 * collections left out; plus "_format_version" and "_transform" as given (or defaulted).
 * On failure -1 with err->code 14 (AIGW_DBE_DECLARATIVE), err->fields Kong's error tree
 * (collections keyed by position: {"services":[{"host":"required field missing"}]}, nested
 * children under their parent's entry, reference errors keyed by the entity's endpoint key or
 * id) and err->message "declarative config is invalid: {services={{host=...}}}" (Kong prints
 * the tree as a Lua table). A document that is not YAML/JSON or not an object: fields
 * {"error":"failed parsing declarative configuration: ..."}. The caller clears err. */
int aigw_declarative_parse(const char *text, size_t len, json_t **out, aigw_db_error_t *err);

/* As aigw_declarative_parse; in addition, when the document was read but its entities are
 * invalid (not when it is not YAML/JSON or not an object) and flat is not NULL, *flat is a new
 * array of Kong's flattened errors (errors:declarative_config_flattened, what POST
 * /config?flatten_errors=1 answers as `flattened_errors`): one entry per entity with errors,
 * {"entity_type":"service","entity_id":...,"entity_name":...,"entity_tags":[...],
 * "entity":{the entity as given, nested children taken out, one-to-one foreign entities as
 * {"id":...}, children given their parent's {"id":...}},"errors":[{"type":"field","field":
 * "config.http_endpoint","message":"..."},{"type":"entity","message":"..."}]}; entity_id,
 * entity_name and entity_tags only when valid (a UUID, a non-empty string, strings). err->fields
 * and err->message then hold only the errors no entity could take ({} when none), which Kong
 * 3.9 loses (reference errors keyed by name, top-level elements that are not records); a
 * nested element that is not a record stays an error of its parent ("routes.2"). Entries come
 * in Kong's order: collections, positions and fields descending, nested entities before their
 * parent. *flat is NULL otherwise. */
int aigw_declarative_parse_flat(const char *text, size_t len, json_t **out,
                                aigw_db_error_t *err, json_t **flat);

/* Kong's rendering of an error tree inside messages (pl.pretty.write with no indent):
 * {services={{host="required field missing"},[3]="..."},["@entity"]={"..."}}. Caller frees. */
char *aigw_declarative_lua_table(const json_t *tree);

/* Writes a parsed set (aigw_declarative_parse's *out; `_`-keys ignored) into the store in ONE
 * transaction, upserting by id, parents first (`kong config db_import`). 0, or -1 with err
 * (the store's error for the first entity that failed; nothing is written). */
int aigw_declarative_import(aigw_store_t *s, const json_t *entities, aigw_db_error_t *err);

/* Replaces the whole store content with entities in one transaction (DB-less POST /config):
 * deletes every row of every entity (children first), then inserts. 0 or -1 with err. */
int aigw_declarative_replace(aigw_store_t *s, const json_t *entities, aigw_db_error_t *err);

/* The store as a declarative document, as `kong config db_export` writes it:
 * {"_format_version":"3.0","_transform":false,"services":[...],...}: flat top-level
 * collections in dependency order, rows in id order, every field present (null when unset),
 * keys sorted, foreign keys written as the parent's id string. Empty collections are left
 * out. New reference, or NULL with err. */
json_t *aigw_declarative_export(aigw_store_t *s, aigw_db_error_t *err);

/* `aigwd config init [FILE] | parse FILE | db_import FILE | db_export [FILE]` with
 * -c FILE / -p PREFIX. argv[0] is "config". Returns the process exit status. */
int aigw_config_cli(int argc, char **argv);

#endif
