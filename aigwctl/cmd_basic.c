/* aigwctl/cmd_basic.c: status, info, version, schema show and the raw `api` escape hatch. */
#include "ctl.h"

#include <stdlib.h>
#include <string.h>

#include "common/sbuf.h"

/* GET path and print the answer in the session's format. */
static int get_print(ctl_t *c, const char *path)
{
    ctl_resp_t r;
    int rc = ctl_call(c, "GET", path, NULL, NULL, 0, &r);
    if (rc == CTL_EAPI)
        ctl_report_error(c, &r);
    else if (rc == CTL_OK && r.json)
        ctl_print(c, r.json, NULL);
    else if (rc == CTL_OK && r.body)
        printf("%s\n", r.body);
    ctl_resp_free(&r);
    return rc;
}

static int run_status(ctl_t *c, const ctl_cmd_t *cmd, ctl_args_t *a)
{
    if (a->npos)
        return ctl_usage_error(cmd, "unexpected argument '%s'", a->pos[0]);
    return get_print(c, "/status");
}

static int run_info(ctl_t *c, const ctl_cmd_t *cmd, ctl_args_t *a)
{
    if (a->npos)
        return ctl_usage_error(cmd, "unexpected argument '%s'", a->pos[0]);
    return get_print(c, "/");
}

static int run_version(ctl_t *c, const ctl_cmd_t *cmd, ctl_args_t *a)
{
    (void)c;
    if (a->npos)
        return ctl_usage_error(cmd, "unexpected argument '%s'", a->pos[0]);
    printf("aigwctl %s\n", AIGW_VERSION);
    return CTL_OK;
}

/* Entity kinds as users type them -> the admin API's schema name. */
static const struct {
    const char *word, *schema;
} schema_names[] = {
    { "service", "services" },           { "route", "routes" },
    { "consumer", "consumers" },         { "plugin", "plugins" },
    { "certificate", "certificates" },   { "sni", "snis" },
    { "upstream", "upstreams" },         { "target", "targets" },
    { "ca-certificate", "ca_certificates" }, { "ca_certificate", "ca_certificates" },
    { "key-auth-credential", "keyauth_credentials" }, { "jwt-secret", "jwt_secrets" },
    { "basic-auth-credential", "basicauth_credentials" }, { "acl", "acls" },
    { "oauth2-credential", "oauth2_credentials" },
};

static int run_schema_show(ctl_t *c, const ctl_cmd_t *cmd, ctl_args_t *a)
{
    if (a->npos != 1)
        return ctl_usage_error(cmd, "name one entity kind or plugin");
    const char *w = a->pos[0];
    const char *schema = NULL;
    for (size_t i = 0; i < sizeof(schema_names) / sizeof(schema_names[0]); i++)
        if (strcmp(w, schema_names[i].word) == 0 || strcmp(w, schema_names[i].schema) == 0)
            schema = schema_names[i].schema;
    char *e = ctl_escape(w);
    aigw_sbuf_t p = { 0 };
    if (schema) {
        aigw_sbuf_addf(&p, "/schemas/%s", schema);
    } else {
        aigw_sbuf_addf(&p, "/schemas/plugins/%s", e ? e : "");
    }
    free(e);
    int rc;
    ctl_resp_t r;
    rc = ctl_call(c, "GET", p.p ? p.p : "/", NULL, NULL, 0, &r);
    if (rc == CTL_OK && r.json) {
        /* A schema is a nested document: tables do not suit it. */
        if (c->output == CTL_OUT_YAML)
            ctl_print_yaml(stdout, r.json);
        else
            ctl_print_json(stdout, r.json);
    } else if (rc == CTL_EAPI) {
        ctl_report_error(c, &r);
    }
    ctl_resp_free(&r);
    aigw_sbuf_free(&p);
    return rc;
}

static int run_api(ctl_t *c, const ctl_cmd_t *cmd, ctl_args_t *a)
{
    if (a->npos < 2)
        return ctl_usage_error(cmd, "name a METHOD and a PATH");
    char method[16];
    size_t ml = strlen(a->pos[0]);
    if (ml == 0 || ml >= sizeof(method))
        return ctl_usage_error(cmd, "'%s' is not an HTTP method", a->pos[0]);
    for (size_t i = 0; i <= ml; i++) {
        char ch = a->pos[0][i];
        if (ch && !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')))
            return ctl_usage_error(cmd, "'%s' is not an HTTP method", a->pos[0]);
        method[i] = (char)(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
    }
    const char *path = a->pos[1];
    if (path[0] != '/')
        return ctl_usage_error(cmd, "the path must start with '/' (got '%s')", path);
    for (int i = 2; i < a->npos; i++)
        if (!strchr(a->pos[i], '=') || a->pos[i][0] == '=')
            return ctl_usage_error(cmd, "'%s' is not a key=value pair", a->pos[i]);
    const char *data = ctl_opt(a, "data");
    json_t *body = NULL;
    if (data) {
        if (a->npos > 2)
            return ctl_usage_error(cmd, "give either --data or key=value pairs, not both");
        json_error_t je;
        body = json_loads(data, JSON_DECODE_ANY, &je);
        if (!body)
            return ctl_usage_error(cmd, "--data is not JSON: %s (column %d)", je.text, je.column);
    }
    ctl_resp_t r;
    int rc = ctl_call(c, method, path, body, a->npos > 2 ? a->pos + 2 : NULL,
                      (size_t)(a->npos > 2 ? a->npos - 2 : 0), &r);
    json_decref(body);
    if (rc == CTL_EAPI) {
        ctl_report_error(c, &r);
    } else if (rc == CTL_OK) {
        if (r.json)
            ctl_print(c, r.json, NULL);
        else if (r.body && r.len)
            printf("%s%s", r.body, r.body[r.len - 1] == '\n' ? "" : "\n");
    }
    ctl_resp_free(&r);
    return rc;
}

static const ctl_flag_t api_flags[] = {
    { "data", 'd', "JSON", "send this JSON document as the body (instead of key=value pairs)", NULL, 0 },
    { NULL, 0, NULL, NULL, NULL, 0 },
};

static const ctl_cmd_t cmds[] = {
    { "status", "", "Show the node's /status: connections, memory, database reachability",
      "The admin URL may also be that of a status_listen address.", NULL, NULL, run_status, NULL, 0 },
    { "info", "", "Show the node's GET /: version, node id, plugins, configuration", NULL, NULL,
      NULL, run_info, NULL, 0 },
    { "version", "", "Print aigwctl's version", NULL, NULL, NULL, run_version, NULL, 0 },
    { "schema show", "ENTITY|PLUGIN",
      "Show the schema of an entity kind (service, route, ...) or of a plugin's config",
      "Entity kinds: service, route, consumer, plugin, certificate, sni, upstream, target,\n"
      "ca-certificate, jwt-secret, key-auth-credential, basic-auth-credential, acl,\n"
      "oauth2-credential. Any other name is looked up as a plugin (GET /schemas/plugins/NAME).",
      NULL, "schema-name", run_schema_show, NULL, 0 },
    { "api", "METHOD PATH [key=value ...]",
      "Send any admin API request; key=value pairs are sent as a form, in the admin API's syntax",
      "Example: aigwctl api POST /services/ai-orchestrator/plugins name=rate-limiting "
      "config.minute=60\nThe answer is printed in the session's format; an error answer sets exit "
      "code 1.", api_flags, "method", run_api, NULL, 0 },
};

const ctl_cmd_t *ctl_cmds_basic(size_t *n)
{
    *n = sizeof(cmds) / sizeof(cmds[0]);
    return cmds;
}
