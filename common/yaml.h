/* common/yaml.h: YAML <-> JSON over libyaml's event API, shared by aigwd (declarative
 * configuration) and aigwctl (config validate/diff/sync, -o yaml). Pure, any thread.
 *
 * YAML (aigw_yaml_parse) resolves plain scalars the way Kong's lyaml 6.2 does (YAML 1.1-like),
 * so that a file means the same thing to aigw as to Kong:
 *   - null: empty, `~`, `null`, `Null`, `NULL`;
 *   - booleans: true/false, yes/no, on/off in lower, Capitalised or UPPER case (not y/n);
 *   - integers: decimal (`_` separators allowed), octal with a leading 0 (`010` is 8, `080` is
 *     80), hex `0x..`, binary `0b..`, sexagesimal `1:30` (90);
 *   - floats: anything Lua's tonumber reads that contains `.`, `e` or `E` (`1e3`, `.5`);
 *     `.inf` and `.nan` have no JSON form and stay strings;
 *   - everything else, and every quoted or block scalar, is a string. Tags !!str, !!int,
 *     !!float, !!bool and !!null force a type (an unreadable value is an error).
 * Merge keys (`<<: *base`) are honoured (explicit keys win). Aliases are expanded by copying,
 * at most AIGW_YAML_MAX_ALIAS_NODES nodes in all; nesting deeper than AIGW_YAML_MAX_DEPTH is
 * refused; only the first document of a stream is returned (later ones must still parse).
 * Mapping keys are strings: a scalar key keeps its text (`80: x` has key "80").
 * Errors read as lyaml's: "<line>:<column>: <problem>". */
#ifndef AIGW_COMMON_YAML_H
#define AIGW_COMMON_YAML_H
#include <jansson.h>
#include <stddef.h>

#define AIGW_YAML_MAX_DEPTH 256
#define AIGW_YAML_MAX_ALIAS_NODES 1000000

/* YAML (or JSON, a flow-style YAML) text to JSON. 0 with *out a new reference (json null for
 * an empty stream), or -1 with a message in err. */
int aigw_yaml_parse(const char *text, size_t len, json_t **out, char *err, size_t errlen);

/* JSON to YAML text in the style of `kong config db_export` (block style, 2-space indent,
 * sequences flush with their key, `~` for null, strings that would read back as another type
 * single-quoted, multi-line strings as literal blocks). Keys in the object's order. Returns a
 * malloc'd NUL-terminated string, or NULL (out of memory, invalid UTF-8). */
char *aigw_yaml_dump(const json_t *doc);

#endif
