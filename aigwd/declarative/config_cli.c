/* aigwd/declarative/config_cli.c: `aigwd config init | parse | db_import | db_export`, the
 * counterpart of `kong config` (kong/cmd/config.lua): same commands, defaults (./kong.yml),
 * refusals and messages, with "aigwd" for "kong". Main thread; blocks on files and the store. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common/fs.h"
#include "core/conf.h"
#include "declarative/declarative.h"
#include "store/store.h"

extern char **environ;

#define DEFAULT_FILE "./kong.yml"
#define MAX_FILE (256u * 1024 * 1024)

/* A starting point for `aigwd config init`: the format, then commented examples. */
static const char sample_yml[] =
    "# ------------------------------------------------------------------------------\n"
    "# A declarative configuration for aigw (Kong's kong.yml format).\n"
    "#\n"
    "#   aigwd config parse kong.yml        check it\n"
    "#   aigwd config db_import kong.yml    load it into the database\n"
    "#   declarative_config = kong.yml      run from it with database = off\n"
    "# ------------------------------------------------------------------------------\n"
    "\n"
    "# Keys starting with an underscore are metadata; the others are entity collections.\n"
    "\n"
    "# Required: the format of this file (\"3.0\"; \"1.1\" and \"2.1\" are read too).\n"
    "_format_version: \"3.0\"\n"
    "\n"
    "# Optional, true by default: hash credentials given in clear (basic-auth passwords)\n"
    "# while loading. Use false to reload a file whose passwords are already hashed, such as\n"
    "# the output of `aigwd config db_export`.\n"
    "_transform: true\n"
    "\n"
    "# _comment (a string) and _ignore (an array of anything) are ignored, here and in any\n"
    "# entity.\n"
    "_comment: an example to start from\n"
    "_ignore:\n"
    "- ignored\n"
    "\n"
    "# Every collection is a list of entities. Entities without an id get a stable one\n"
    "# derived from their name, so loading the file again updates them in place.\n"
    "\n"
    "# services:\n"
    "# - name: example-service\n"
    "#   url: http://example.com\n"
    "#   tags:\n"
    "#   - example\n"
    "#   # Children can be nested in their parent:\n"
    "#   routes:\n"
    "#   - name: example-route\n"
    "#     paths:\n"
    "#     - /\n"
    "#   plugins:\n"
    "#   - name: key-auth\n"
    "\n"
    "# routes:\n"
    "# # ... or listed on their own, naming their parent by name or id:\n"
    "# - name: another-route\n"
    "#   service: example-service\n"
    "#   hosts: [\"example.test\"]\n"
    "\n"
    "# consumers:\n"
    "# - username: example-user\n"
    "#   keyauth_credentials:\n"
    "#   - key: example-key\n"
    "#   plugins:\n"
    "#   - name: rate-limiting\n"
    "#     config:\n"
    "#       policy: local\n"
    "#       second: 5\n"
    "#       hour: 10000\n"
    "\n"
    "# An entity related to several others (a plugin for one consumer on one service) is\n"
    "# listed on its own:\n"
    "\n"
    "# plugins:\n"
    "# - name: rate-limiting\n"
    "#   consumer: example-user\n"
    "#   service: example-service\n"
    "#   config:\n"
    "#     policy: local\n"
    "#     minute: 60\n"
    "\n"
    "# upstreams:\n"
    "# - name: example-upstream\n"
    "#   targets:\n"
    "#   - target: 127.0.0.1:8080\n"
    "#     weight: 100\n";

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: aigwd config COMMAND [OPTIONS]\n\n"
            "Use declarative configuration files (Kong's kong.yml format) with aigw.\n\n"
            "Commands:\n"
            "  init [FILE]         write an example file to start from (default %s)\n"
            "  db_import FILE      load a declarative file into the database\n"
            "  db_export [FILE]    write the database as a declarative file (default %s;\n"
            "                      `-` for standard output)\n"
            "  parse FILE          check a declarative file without loading it\n\n"
            "Options:\n"
            "  -c, --conf FILE     configuration file\n"
            "  -p, --prefix DIR    prefix directory\n"
            "  -h, --help          show this help\n",
            DEFAULT_FILE, DEFAULT_FILE);
}

static void print_warning(void *ud, const char *msg)
{
    (void)ud;
    fprintf(stderr, "aigwd: warning: %s\n", msg);
}

/* Kong's CLI reports a failure as "Error: <message>". Returns the exit status 1. */
static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    fputs("Error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- Kong's pretty_print_error (kong/db/declarative/init.lua) ------------------------------- */

static int cmp_keys(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    return strcmp(x, y);
}

static void pretty_error(FILE *f, const json_t *t, const char *item, int indent, int *first)
{
    /* Arrays by position, objects by key (sorted: Kong's order is Lua's hash order). */
    if (json_is_array(t)) {
        size_t i;
        json_t *v;
        json_array_foreach(t, i, v) {
            if (json_is_null(v))
                continue;
            fprintf(f, "%s%*s- in entry %zu of '%s'", *first ? "" : "\n", indent, "", i + 1,
                    item);
            *first = 0;
            if (json_is_object(v) || json_is_array(v)) {
                fputs(":", f);
                char num[32];
                snprintf(num, sizeof(num), "%zu", i + 1);
                pretty_error(f, v, num, indent + 2, first);
            } else {
                fprintf(f, ": %s", json_string_value(v) ? json_string_value(v) : "");
            }
        }
        return;
    }
    size_t n = json_object_size(t), i = 0;
    const char **keys = calloc(n + 1, sizeof(*keys));
    if (!keys)
        return;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)t, k, v) keys[i++] = k;
    qsort(keys, n, sizeof(*keys), cmp_keys);
    for (i = 0; i < n; i++) {
        v = json_object_get(t, keys[i]);
        fprintf(f, "%s%*sin '%s'", *first ? "" : "\n", indent, "", keys[i]);
        *first = 0;
        if (json_is_object(v) || json_is_array(v)) {
            fputs(":", f);
            pretty_error(f, v, keys[i], indent + 2, first);
        } else {
            fprintf(f, ": %s", json_string_value(v) ? json_string_value(v) : "");
        }
    }
    free(keys);
}

/* ---- commands ------------------------------------------------------------------------------ */

static int cmd_init(const char *file)
{
    if (!file)
        file = DEFAULT_FILE;
    if (file_exists(file))
        return fail("%s already exists.\nWill not overwrite it.", file);
    FILE *f = fopen(file, "wx");
    if (!f)
        return fail("%s: %s", file, strerror(errno));
    int ok = fwrite(sample_yml, 1, sizeof(sample_yml) - 1, f) == sizeof(sample_yml) - 1;
    ok = fclose(f) == 0 && ok;
    if (!ok)
        return fail("%s: %s", file, strerror(errno));
    return 0;
}

/* Reads and parses FILE: 0 with *out, or 1 after printing Kong's "Failed parsing" error. */
static int parse_file(const char *file, json_t **out)
{
    size_t fl = strlen(file);
    int json = fl >= 4 && strcmp(file + fl - 4, "json") == 0;
    int yaml = (fl >= 3 && strcmp(file + fl - 3, "yml") == 0) ||
               (fl >= 4 && strcmp(file + fl - 4, "yaml") == 0);
    if (!json && !yaml) {
        fprintf(stderr, "Error: Failed parsing:\nfailed parsing declarative configuration: "
                        "unknown file type: %s. (Accepted types: json, yaml)\n", file);
        return 1;
    }
    char *text = NULL;
    size_t len = 0;
    if (aigw_read_file(file, MAX_FILE, &text, &len) != 0)
        return fail("Failed parsing:\n%s: %s", file, strerror(errno));
    aigw_db_error_t err = { 0 };
    int r = aigw_declarative_parse(text, len, out, &err);
    free(text);
    if (r == 0)
        return 0;
    fputs("Error: Failed parsing:\n", stderr);
    json_t *why = err.fields ? json_object_get(err.fields, "error") : NULL;
    if (json_is_string(why) && json_object_size(err.fields) == 1) {
        fputs(json_string_value(why), stderr);
    } else if (err.fields) {
        int first = 1;
        pretty_error(stderr, err.fields, "", 0, &first);
    } else {
        fputs(err.message, stderr);
    }
    fputc('\n', stderr);
    aigw_db_error_clear(&err);
    return 1;
}

static int cmd_parse(const char *file)
{
    json_t *doc = NULL;
    if (parse_file(file, &doc) != 0)
        return 1;
    json_decref(doc);
    printf("parse successful\n");
    return 0;
}

static int cmd_import(aigw_store_t *s, const char *file)
{
    json_t *doc = NULL;
    if (parse_file(file, &doc) != 0)
        return 1;
    printf("parse successful, beginning import\n");
    fflush(stdout);
    aigw_db_error_t err = { 0 };
    int r = aigw_declarative_import(s, doc, &err);
    json_decref(doc);
    if (r != 0) {
        fprintf(stderr, "Error: Failed importing:\n%s\n", err.message);
        aigw_db_error_clear(&err);
        return 1;
    }
    printf("import successful\n");
    return 0;
}

static int cmd_export(aigw_store_t *s, const char *file)
{
    int to_stdout = strcmp(file, "-") == 0;
    if (!to_stdout && file_exists(file))
        return fail("%s already exists. Will not overwrite it.", file);
    aigw_db_error_t err = { 0 };
    json_t *doc = aigw_declarative_export(s, &err);
    if (!doc) {
        fprintf(stderr, "Error: %s\n", err.message);
        aigw_db_error_clear(&err);
        return 1;
    }
    char *yml = aigw_yaml_dump(doc);
    json_decref(doc);
    if (!yml)
        return fail("cannot write the export as YAML");
    size_t n = strlen(yml);
    int ok;
    if (to_stdout) {
        ok = fwrite(yml, 1, n, stdout) == n && fflush(stdout) == 0;
    } else {
        FILE *f = fopen(file, "wx");
        ok = f && fwrite(yml, 1, n, f) == n;
        if (f)
            ok = fclose(f) == 0 && ok;
    }
    free(yml);
    if (!ok)
        return fail("%s: %s", file, strerror(errno));
    return 0;
}

/* The database must have aigw's tables, all migrations run (as `aigwd start` requires). */
static int check_schema(aigw_store_t *s)
{
    aigw_migration_state_t m;
    aigw_db_error_t err = { 0 };
    if (aigw_store_migrations(s, &m, &err) != 0) {
        fail("%s", err.message);
        aigw_db_error_clear(&err);
        return 1;
    }
    int rc = 0;
    if (!m.bootstrapped)
        rc = fail("database needs bootstrapping; run 'aigwd migrations bootstrap'");
    else if (m.applied < m.total)
        rc = fail("new migrations available; run 'aigwd migrations up' to proceed");
    aigw_migration_state_free(&m);
    return rc;
}

int aigw_config_cli(int argc, char **argv)
{
    const char *conf = NULL, *prefix = NULL, *cmd = NULL, *file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--conf") == 0 || strcmp(a, "-p") == 0 ||
                   strcmp(a, "--prefix") == 0) {
            if (++i >= argc) {
                fprintf(stderr, "aigwd config: %s needs a value\n", a);
                return 1;
            }
            if (a[1] == 'c' || a[2] == 'c')
                conf = argv[i];
            else
                prefix = argv[i];
        } else if ((a[0] != '-' || strcmp(a, "-") == 0) && !cmd) {
            cmd = a;
        } else if ((a[0] != '-' || strcmp(a, "-") == 0) && !file) {
            file = a;
        } else {
            fprintf(stderr, "aigwd config: unknown argument '%s'\n", a);
            usage(stderr);
            return 1;
        }
    }
    if (!cmd) {
        fprintf(stderr, "aigwd config: missing COMMAND (init, db_import, db_export or parse)\n");
        usage(stderr);
        return 1;
    }
    /* Kong accepts db-import for db_import. */
    char name[32];
    snprintf(name, sizeof(name), "%s", cmd);
    for (char *p = name; *p; p++)
        if (*p == '-')
            *p = '_';
    int which = strcmp(name, "init") == 0        ? 0
                : strcmp(name, "parse") == 0     ? 1
                : strcmp(name, "db_import") == 0 ? 2
                : strcmp(name, "db_export") == 0 ? 3
                                                 : -1;
    if (which < 0)
        return fail("unknown command '%s'", name);
    if (which == 0)
        return cmd_init(file);
    if ((which == 1 || which == 2) && !file)
        return fail("expected a declarative configuration file; see `aigwd config --help`");

    aigw_conf_t c;
    char err[1024];
    if (aigw_conf_load(&c, conf, prefix, environ, print_warning, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "aigwd: %s\n", err);
        return 1;
    }
    int rc;
    if (which == 2 && c.database == AIGW_DB_OFF) {
        rc = fail("'aigwd config db_import' only works with a database.\n"
                  "When using database=off, reload your declarative configuration\n"
                  "using the /config endpoint.");
        goto out;
    }
    if (which == 3 && c.database == AIGW_DB_OFF) {
        rc = fail("'aigwd config db_export' only works with a database.");
        goto out;
    }
    if (which == 1) {
        rc = cmd_parse(file);
        goto out;
    }
    aigw_store_t *s = aigw_store_open(&c, err, sizeof(err));
    if (!s) {
        rc = fail("%s", err);
        goto out;
    }
    rc = check_schema(s);
    if (rc == 0)
        rc = which == 2 ? cmd_import(s, file) : cmd_export(s, file ? file : DEFAULT_FILE);
    aigw_store_close(s);
out:
    aigw_conf_free(&c);
    return rc;
}
