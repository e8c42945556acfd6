/* aigwctl/context.c: named contexts (several gateways, like kubectl's), kept in
 * $XDG_CONFIG_HOME/aigw/aigwctl.conf (~/.config/aigw/aigwctl.conf), and the `context` commands.
 *
 * The file (written by `context set`, mode 0600 because headers may hold tokens):
 *
 *   # comments and blank lines are ignored
 *   current-context = prod
 *
 *   [context prod]
 *   admin-url = https://gw.example.com:8444
 *   proxy-url = https://gw.example.com
 *   ca-cert = /etc/aigw/ca.pem
 *   insecure = false
 *   timeout = 10
 *   header = Kong-Admin-Token: s3cret
 *
 * `key = value` lines; `header` may repeat. Precedence: a flag, then the environment
 * (AIGW_ADMIN_URL, AIGW_PROXY_URL), then the context, then the defaults. */
#include "ctl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/sbuf.h"

#define MAX_CTX 64
#define MAX_HDR 32

typedef struct context {
    char *name;
    char *admin_url, *proxy_url, *ca_cert, *timeout;
    int insecure; /* -1 unset, 0, 1 */
    const char *headers[MAX_HDR];
    size_t nheaders;
} context_t;

typedef struct conf {
    char *text;     /* the file's text; every string below points into it (or is owned) */
    char *current;
    context_t ctx[MAX_CTX];
    size_t n;
    char *extra[MAX_CTX * 8]; /* strings set by commands */
    size_t nextra;
} conf_t;

static void conf_free(conf_t *f)
{
    free(f->text);
    for (size_t i = 0; i < f->nextra; i++)
        free(f->extra[i]);
    memset(f, 0, sizeof(*f));
}

static char *conf_keep(conf_t *f, const char *s)
{
    if (f->nextra >= sizeof(f->extra) / sizeof(f->extra[0]))
        return NULL;
    char *d = strdup(s);
    if (d)
        f->extra[f->nextra++] = d;
    return d;
}

/* The file's path (caller frees), or NULL when neither XDG_CONFIG_HOME nor HOME is set. */
static char *conf_path(void)
{
    aigw_sbuf_t b = { 0 };
    const char *x = getenv("XDG_CONFIG_HOME");
    const char *h = getenv("HOME");
    if (x && *x)
        aigw_sbuf_addf(&b, "%s/aigw/aigwctl.conf", x);
    else if (h && *h)
        aigw_sbuf_addf(&b, "%s/.config/aigw/aigwctl.conf", h);
    if (b.oom) {
        aigw_sbuf_free(&b);
        return NULL;
    }
    return b.p;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static int valid_name(const char *s)
{
    if (!*s || strlen(s) > 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.' || *s == '@'))
            return 0;
    return 1;
}

static context_t *find_ctx(conf_t *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->ctx[i].name, name) == 0)
            return &f->ctx[i];
    return NULL;
}

/* Malformed: one message with file:line, CTL_EUSAGE. */
static int bad(const char *path, int line, const char *what)
{
    fprintf(stderr, "aigwctl: %s:%d: %s\n", path, line, what);
    return CTL_EUSAGE;
}

/* Load and parse the file. CTL_OK (a missing file is an empty conf; *missing set), or
 * CTL_EUSAGE with the message printed. */
static int conf_load(const char *path, conf_t *f, int *missing)
{
    memset(f, 0, sizeof(*f));
    *missing = 0;
    FILE *fp = fopen(path, "r");
    if (!fp) {
        if (errno == ENOENT) {
            *missing = 1;
            return CTL_OK;
        }
        fprintf(stderr, "aigwctl: cannot read %s: %s\n", path, strerror(errno));
        return CTL_EUSAGE;
    }
    aigw_sbuf_t b = { 0 };
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
        aigw_sbuf_addn(&b, buf, n);
    fclose(fp);
    if (b.oom || b.n > 1024 * 1024) {
        aigw_sbuf_free(&b);
        fprintf(stderr, "aigwctl: %s: too large\n", path);
        return CTL_EUSAGE;
    }
    f->text = b.p ? b.p : strdup("");
    if (!f->text)
        return CTL_EUSAGE;
    if (strlen(f->text) != b.n) {
        conf_free(f);
        fprintf(stderr, "aigwctl: %s: contains a NUL byte\n", path);
        return CTL_EUSAGE;
    }
    context_t *cur = NULL;
    int lineno = 0;
    char *p = f->text;
    int rc = CTL_OK;
    while (p && *p && rc == CTL_OK) {
        lineno++;
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        char *line = trim(p);
        p = nl ? nl + 1 : NULL;
        if (!*line || *line == '#' || *line == ';')
            continue;
        if (*line == '[') {
            size_t l = strlen(line);
            if (l < 2 || line[l - 1] != ']') {
                rc = bad(path, lineno, "a section line must be [context NAME]");
                break;
            }
            line[l - 1] = '\0';
            char *in = trim(line + 1);
            if (strncmp(in, "context", 7) != 0 || (in[7] != ' ' && in[7] != '\t')) {
                rc = bad(path, lineno, "a section line must be [context NAME]");
                break;
            }
            char *name = trim(in + 7);
            if (!valid_name(name)) {
                rc = bad(path, lineno, "a context name is letters, digits, '-', '_', '.' or '@'");
                break;
            }
            if (find_ctx(f, name)) {
                rc = bad(path, lineno, "this context is defined twice");
                break;
            }
            if (f->n >= MAX_CTX) {
                rc = bad(path, lineno, "too many contexts (64 at most)");
                break;
            }
            cur = &f->ctx[f->n++];
            memset(cur, 0, sizeof(*cur));
            cur->name = name;
            cur->insecure = -1;
            continue;
        }
        char *eq = strchr(line, '=');
        if (!eq) {
            rc = bad(path, lineno, "expected 'key = value', '[context NAME]' or a # comment");
            break;
        }
        *eq = '\0';
        char *key = trim(line);
        char *val = trim(eq + 1);
        if (strcmp(key, "current-context") == 0) {
            if (cur) {
                rc = bad(path, lineno, "current-context belongs before the first [context NAME]");
                break;
            }
            f->current = *val ? val : NULL;
            continue;
        }
        if (!cur) {
            rc = bad(path, lineno, "a setting outside a [context NAME] section");
            break;
        }
        if (strcmp(key, "admin-url") == 0) {
            cur->admin_url = val;
        } else if (strcmp(key, "proxy-url") == 0) {
            cur->proxy_url = val;
        } else if (strcmp(key, "ca-cert") == 0) {
            cur->ca_cert = val;
        } else if (strcmp(key, "insecure") == 0) {
            if (strcmp(val, "true") == 0)
                cur->insecure = 1;
            else if (strcmp(val, "false") == 0)
                cur->insecure = 0;
            else
                rc = bad(path, lineno, "insecure must be true or false");
        } else if (strcmp(key, "timeout") == 0) {
            char *end;
            double s = strtod(val, &end);
            if (*end || !(s > 0) || s > 86400)
                rc = bad(path, lineno, "timeout must be a number of seconds");
            cur->timeout = val;
        } else if (strcmp(key, "header") == 0) {
            if (!strchr(val, ':') || *val == ':')
                rc = bad(path, lineno, "header must be 'Name: value'");
            else if (cur->nheaders >= MAX_HDR)
                rc = bad(path, lineno, "too many headers (32 at most)");
            else
                cur->headers[cur->nheaders++] = val;
        } else {
            aigw_sbuf_t m = { 0 };
            aigw_sbuf_addf(&m, "unknown setting '%s' (admin-url, proxy-url, ca-cert, insecure, "
                               "timeout, header)", key);
            rc = bad(path, lineno, m.p ? m.p : "unknown setting");
            aigw_sbuf_free(&m);
        }
    }
    if (rc != CTL_OK)
        conf_free(f);
    return rc;
}

/* Write the conf atomically: a temporary file in the same directory, mode 0600, then rename. */
static int conf_save(const char *path, const conf_t *f)
{
    aigw_sbuf_t b = { 0 };
    aigw_sbuf_add(&b, "# aigwctl contexts (written by 'aigwctl context set'; see aigwctl(1))\n");
    if (f->current)
        aigw_sbuf_addf(&b, "current-context = %s\n", f->current);
    for (size_t i = 0; i < f->n; i++) {
        const context_t *x = &f->ctx[i];
        aigw_sbuf_addf(&b, "\n[context %s]\n", x->name);
        if (x->admin_url)
            aigw_sbuf_addf(&b, "admin-url = %s\n", x->admin_url);
        if (x->proxy_url)
            aigw_sbuf_addf(&b, "proxy-url = %s\n", x->proxy_url);
        if (x->ca_cert)
            aigw_sbuf_addf(&b, "ca-cert = %s\n", x->ca_cert);
        if (x->insecure >= 0)
            aigw_sbuf_addf(&b, "insecure = %s\n", x->insecure ? "true" : "false");
        if (x->timeout)
            aigw_sbuf_addf(&b, "timeout = %s\n", x->timeout);
        for (size_t h = 0; h < x->nheaders; h++)
            aigw_sbuf_addf(&b, "header = %s\n", x->headers[h]);
    }
    if (b.oom) {
        aigw_sbuf_free(&b);
        fprintf(stderr, "aigwctl: out of memory\n");
        return CTL_EAPI;
    }
    /* The directory (0700), then the file: temp + fsync + rename, 0600 (headers may hold
     * tokens). */
    char *dir = strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash && slash != dir) {
        *slash = '\0';
        aigw_mkdir_p(dir, 0700);
    }
    free(dir);
    int rc = CTL_OK;
    if (aigw_write_file_atomic(path, b.p ? b.p : "", b.n, 0600) != 0) {
        fprintf(stderr, "aigwctl: cannot write %s: %s\n", path, strerror(errno));
        rc = CTL_EAPI;
    }
    aigw_sbuf_free(&b);
    return rc;
}

/* ---- applying a context to the session ---- */

int ctl_context_apply(ctl_t *c, const char *name)
{
    char *path = conf_path();
    if (!path) {
        if (name) {
            fprintf(stderr, "aigwctl: no context '%s': neither XDG_CONFIG_HOME nor HOME is set\n", name);
            return CTL_EUSAGE;
        }
        return CTL_OK;
    }
    conf_t f;
    int missing;
    int rc = conf_load(path, &f, &missing);
    if (rc != CTL_OK) {
        free(path);
        return rc;
    }
    const char *use = name ? name : f.current;
    if (!use) {
        conf_free(&f);
        free(path);
        return CTL_OK;
    }
    context_t *x = find_ctx(&f, use);
    if (!x) {
        if (name)
            fprintf(stderr, "aigwctl: no context '%s' in %s (see aigwctl context list)\n", use, path);
        else
            fprintf(stderr, "aigwctl: %s: current-context '%s' is not defined (aigwctl context use "
                            "NAME, or edit the file)\n", path, use);
        conf_free(&f);
        free(path);
        return CTL_EUSAGE;
    }
    free(path);
    if (c->nowned >= sizeof(c->owned) / sizeof(c->owned[0])) {
        conf_free(&f);
        return CTL_OK;
    }
    /* Every string points into f.text: the session keeps that one buffer. */
    c->owned[c->nowned++] = f.text;
    f.text = NULL;
    c->context = x->name;
    if (x->admin_url)
        c->admin_url = x->admin_url;
    if (x->proxy_url)
        c->proxy_url = x->proxy_url;
    if (x->ca_cert)
        c->ca_cert = x->ca_cert;
    if (x->insecure >= 0)
        c->insecure = x->insecure;
    if (x->timeout)
        c->timeout_ms = (long)(strtod(x->timeout, NULL) * 1000);
    for (size_t h = 0; h < x->nheaders && c->nheaders < 32; h++)
        c->headers[c->nheaders++] = x->headers[h];
    conf_free(&f);
    return CTL_OK;
}

/* ---- the commands ---- */

/* "Name: ***": header values may hold tokens and are never shown. */
static json_t *masked_headers(const char *const *hs, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *colon = strchr(hs[i], ':');
        aigw_sbuf_t b = { 0 };
        aigw_sbuf_addn(&b, hs[i], colon ? (size_t)(colon - hs[i]) : strlen(hs[i]));
        aigw_sbuf_add(&b, ": ***");
        json_array_append_new(a, json_string(b.p ? b.p : ""));
        aigw_sbuf_free(&b);
    }
    return a;
}

static json_t *ctx_json(const conf_t *f, const context_t *x)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(x->name));
    json_object_set_new(o, "current", json_boolean(f->current && strcmp(f->current, x->name) == 0));
    json_object_set_new(o, "admin_url", x->admin_url ? json_string(x->admin_url) : json_null());
    json_object_set_new(o, "proxy_url", x->proxy_url ? json_string(x->proxy_url) : json_null());
    json_object_set_new(o, "ca_cert", x->ca_cert ? json_string(x->ca_cert) : json_null());
    json_object_set_new(o, "insecure", json_boolean(x->insecure == 1));
    json_object_set_new(o, "timeout", x->timeout ? json_real(strtod(x->timeout, NULL)) : json_null());
    json_object_set_new(o, "headers", masked_headers(x->headers, x->nheaders));
    return o;
}

/* Load for a command: path and conf, or an exit code. */
static int load_for_cmd(char **path, conf_t *f, int *missing)
{
    *path = conf_path();
    if (!*path) {
        fprintf(stderr, "aigwctl: set HOME or XDG_CONFIG_HOME: contexts live in "
                        "$XDG_CONFIG_HOME/aigw/aigwctl.conf\n");
        return CTL_EUSAGE;
    }
    int rc = conf_load(*path, f, missing);
    if (rc != CTL_OK) {
        free(*path);
        *path = NULL;
    }
    return rc;
}

static const char *const ctx_cols[] = { "name", "current", "admin_url", "proxy_url", "headers", NULL };

static int run_list(ctl_t *c, const ctl_cmd_t *cmd, ctl_args_t *a)
{
    if (a->npos)
        return ctl_usage_error(cmd, "unexpected argument '%s'", a->pos[0]);
    char *path;
    conf_t f;
    int missing;
    int rc = load_for_cmd(&path, &f, &missing);
    if (rc != CTL_OK)
        return rc;
    json_t *list = json_array();
    for (size_t i = 0; i < f.n; i++)
        json_array_append_new(list, ctx_json(&f, &f.ctx[i]));
    ctl_print(c, list, ctx_cols);
    json_decref(list);
    conf_free(&f);
    free(path);
    return CTL_OK;
}

static int run_show(ctl_t *c, const ctl_cmd_t *cmd, ctl_args_t *a)
{
    if (a->npos > 1)
        return ctl_usage_error(cmd, "unexpected argument '%s'", a->pos[1]);
    if (a->npos == 0) {
        /* The settings in effect for this invocation. */
        json_t *o = json_object();
        json_object_set_new(o, "context", c->context ? json_string(c->context) : json_null());
        json_object_set_new(o, "admin_url", json_string(c->admin_url));
        json_object_set_new(o, "proxy_url", json_string(c->proxy_url));
        json_object_set_new(o, "ca_cert", c->ca_cert ? json_string(c->ca_cert) : json_null());
        json_object_set_new(o, "insecure", json_boolean(c->insecure));
        json_object_set_new(o, "timeout", json_real((double)c->timeout_ms / 1000.0));
        json_object_set_new(o, "headers", masked_headers(c->headers, c->nheaders));
        char *path = conf_path();
        json_object_set_new(o, "file", path ? json_string(path) : json_null());
        free(path);
        ctl_print(c, o, NULL);
        json_decref(o);
        return CTL_OK;
    }
    char *path;
    conf_t f;
    int missing;
    int rc = load_for_cmd(&path, &f, &missing);
    if (rc != CTL_OK)
        return rc;
    context_t *x = find_ctx(&f, a->pos[0]);
    if (!x) {
        fprintf(stderr, "aigwctl: no context '%s' in %s\n", a->pos[0], path);
        rc = CTL_EAPI;
    } else {
        json_t *o = ctx_json(&f, x);
        ctl_print(c, o, NULL);
        json_decref(o);
    }
    conf_free(&f);
    free(path);
    return rc;
}

static int run_use(ctl_t *c, const ctl_cmd_t *cmd, ctl_args_t *a)
{
    (void)c;
    if (a->npos != 1)
        return ctl_usage_error(cmd, a->npos ? "unexpected argument '%s'" : "name the context%s",
                               a->npos ? a->pos[1] : "");
    char *path;
    conf_t f;
    int missing;
    int rc = load_for_cmd(&path, &f, &missing);
    if (rc != CTL_OK)
        return rc;
    context_t *x = find_ctx(&f, a->pos[0]);
    if (!x) {
        fprintf(stderr, "aigwctl: no context '%s' in %s (create it with aigwctl context set %s "
                        "--admin-url URL)\n", a->pos[0], path, a->pos[0]);
        rc = CTL_EAPI;
    } else {
        f.current = x->name;
        rc = conf_save(path, &f);
        if (rc == CTL_OK && c->output == CTL_OUT_HUMAN)
            printf("now using context %s (%s)\n", x->name, x->admin_url ? x->admin_url : "default admin URL");
    }
    conf_free(&f);
    free(path);
    return rc;
}

static int check_url(const ctl_cmd_t *cmd, const char *flag, const char *u)
{
    if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
        return ctl_usage_error(cmd, "--%s: '%s' is not an http:// or https:// URL", flag, u);
    return CTL_OK;
}

static int run_set(ctl_t *c, const ctl_cmd_t *cmd, ctl_args_t *a)
{
    if (a->npos != 1)
        return ctl_usage_error(cmd, a->npos ? "unexpected argument '%s'" : "name the context%s",
                               a->npos ? a->pos[1] : "");
    const char *name = a->pos[0];
    if (!valid_name(name))
        return ctl_usage_error(cmd, "'%s' is not a context name (letters, digits, '-', '_', '.', '@')", name);
    const char *admin = ctl_opt(a, "admin-url"), *proxy = ctl_opt(a, "proxy-url");
    const char *ca = ctl_opt(a, "ca-cert"), *timeout = ctl_opt(a, "timeout");
    int rc;
    if (admin && (rc = check_url(cmd, "admin-url", admin)) != CTL_OK)
        return rc;
    if (proxy && (rc = check_url(cmd, "proxy-url", proxy)) != CTL_OK)
        return rc;
    if (ctl_opt_on(a, "insecure") && ctl_opt_on(a, "secure"))
        return ctl_usage_error(cmd, "give --insecure or --secure, not both");
    const char *hs[MAX_HDR + 1];
    size_t nh = ctl_opt_all(a, "header", hs, MAX_HDR + 1);
    if (nh > MAX_HDR)
        return ctl_usage_error(cmd, "too many --header (32 at most)");
    for (size_t i = 0; i < nh; i++)
        if (!strchr(hs[i], ':') || hs[i][0] == ':' || strchr(hs[i], '\n'))
            return ctl_usage_error(cmd, "--header: '%s' is not 'Name: value'", hs[i]);
    const char *vals[] = { admin, proxy, ca, timeout };
    for (size_t i = 0; i < 4; i++)
        if (vals[i] && (strchr(vals[i], '\n') || strchr(vals[i], '\r')))
            return ctl_usage_error(cmd, "a value cannot hold a line break");
    char *path;
    conf_t f;
    int missing;
    rc = load_for_cmd(&path, &f, &missing);
    if (rc != CTL_OK)
        return rc;
    context_t *x = find_ctx(&f, name);
    int created = 0;
    if (!x) {
        if (f.n >= MAX_CTX) {
            fprintf(stderr, "aigwctl: too many contexts (64 at most)\n");
            conf_free(&f);
            free(path);
            return CTL_EAPI;
        }
        x = &f.ctx[f.n++];
        memset(x, 0, sizeof(*x));
        x->name = conf_keep(&f, name);
        x->insecure = -1;
        created = 1;
    }
    if (admin)
        x->admin_url = conf_keep(&f, admin);
    if (proxy)
        x->proxy_url = conf_keep(&f, proxy);
    if (ca)
        x->ca_cert = conf_keep(&f, ca);
    if (timeout)
        x->timeout = conf_keep(&f, timeout);
    if (ctl_opt_on(a, "insecure"))
        x->insecure = 1;
    if (ctl_opt_on(a, "secure"))
        x->insecure = 0;
    if (ctl_opt_on(a, "clear-headers") || nh)
        x->nheaders = 0;
    for (size_t i = 0; i < nh; i++)
        x->headers[x->nheaders++] = conf_keep(&f, hs[i]);
    rc = conf_save(path, &f);
    if (rc == CTL_OK && c->output == CTL_OUT_HUMAN)
        printf("%s context %s in %s\n", created ? "created" : "updated", name, path);
    conf_free(&f);
    free(path);
    return rc;
}

static int run_delete(ctl_t *c, const ctl_cmd_t *cmd, ctl_args_t *a)
{
    if (a->npos != 1)
        return ctl_usage_error(cmd, a->npos ? "unexpected argument '%s'" : "name the context%s",
                               a->npos ? a->pos[1] : "");
    char *path;
    conf_t f;
    int missing;
    int rc = load_for_cmd(&path, &f, &missing);
    if (rc != CTL_OK)
        return rc;
    context_t *x = find_ctx(&f, a->pos[0]);
    if (!x) {
        fprintf(stderr, "aigwctl: no context '%s' in %s\n", a->pos[0], path);
        rc = CTL_EAPI;
    } else {
        if (f.current && strcmp(f.current, x->name) == 0)
            f.current = NULL;
        size_t i = (size_t)(x - f.ctx);
        memmove(&f.ctx[i], &f.ctx[i + 1], (f.n - i - 1) * sizeof(f.ctx[0]));
        f.n--;
        rc = conf_save(path, &f);
        if (rc == CTL_OK && c->output == CTL_OUT_HUMAN)
            printf("deleted context %s\n", a->pos[0]);
    }
    conf_free(&f);
    free(path);
    return rc;
}

static const ctl_flag_t set_flags[] = {
    { "admin-url", 0, "URL", "the gateway's admin API", NULL, 0 },
    { "proxy-url", 0, "URL", "the gateway's proxy (loadtest's default target)", NULL, 0 },
    { "ca-cert", 0, "FILE", "CA bundle to trust for https", "file", 0 },
    { "insecure", 0, NULL, "do not verify TLS certificates", NULL, 0 },
    { "secure", 0, NULL, "verify TLS certificates again (undoes --insecure)", NULL, 0 },
    { "timeout", 0, "SECONDS", "admin request timeout", NULL, 0 },
    { "header", 0, "'NAME: VALUE'", "header for admin requests (repeatable; replaces the old ones)", NULL, 1 },
    { "clear-headers", 0, NULL, "remove the context's headers", NULL, 0 },
    { NULL, 0, NULL, NULL, NULL, 0 },
};

#define FILE_DOC                                                                              \
    "Contexts live in $XDG_CONFIG_HOME/aigw/aigwctl.conf (default ~/.config/aigw/aigwctl.conf):\n" \
    "a current-context = NAME line, then [context NAME] sections of key = value lines\n"          \
    "(admin-url, proxy-url, ca-cert, insecure = true|false, timeout = SECONDS, and\n"            \
    "header = Name: value, which may repeat). Lines starting with # are comments.\n"             \
    "Precedence: a flag, then the environment (AIGW_ADMIN_URL, AIGW_PROXY_URL), then the\n"     \
    "context (--context NAME, env AIGW_CONTEXT, or current-context), then the defaults."

static const ctl_cmd_t cmds[] = {
    { "context list", "", "List the named contexts (the current one marked)",
      FILE_DOC "\nHeader values are never shown.", NULL, NULL, run_list, NULL, 0 },
    { "context show", "[NAME]", "Show a context, or with no NAME the settings in effect",
      "With NAME: that context as stored (header values masked). Without: the admin URL, proxy\n"
      "URL, TLS settings, timeout and headers this invocation would use, after flags, the\n"
      "environment and the context are applied.",
      NULL, "context", run_show, NULL, 0 },
    { "context use", "NAME", "Make NAME the current context",
      "Writes current-context; later commands talk to that context's gateway unless --context,\n"
      "AIGW_CONTEXT or --admin-url say otherwise.", NULL, "context", run_use, NULL, 0 },
    { "context set", "NAME", "Create or update a context",
      "Only the settings given change. The file is rewritten atomically with mode 0600 (headers\n"
      "may hold tokens); comments in it are not kept.\n"
      "Example: aigwctl context set prod --admin-url https://gw.example.com:8444 --ca-cert ca.pem\n\n"
      FILE_DOC, set_flags, "context", run_set, NULL, 0 },
    { "context delete", "NAME", "Delete a context",
      "When it is the current context, no context is current afterwards.", NULL, "context",
      run_delete, NULL, 0 },
};

const ctl_cmd_t *ctl_cmds_context(size_t *n);
const ctl_cmd_t *ctl_cmds_context(size_t *n)
{
    *n = sizeof(cmds) / sizeof(cmds[0]);
    return cmds;
}
