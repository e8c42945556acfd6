/* aigwctl/main.c: the session's settings, command dispatch and argument parsing.
 *
 * A command line is [global flags] WORDS... [flags and positionals in any order]. The command is
 * the longest entry of the table whose words match the leading non-flag words; the rest is parsed
 * against the command's flags and the global ones. `--` ends the flags. */
#include "ctl.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- parsed arguments ---- */

const char *ctl_opt(const ctl_args_t *a, const char *name)
{
    for (int i = a->nopt - 1; i >= 0; i--)
        if (strcmp(a->opt[i].name, name) == 0)
            return a->opt[i].value;
    return NULL;
}

int ctl_opt_on(const ctl_args_t *a, const char *name)
{
    for (int i = 0; i < a->nopt; i++)
        if (strcmp(a->opt[i].name, name) == 0)
            return 1;
    return 0;
}

size_t ctl_opt_all(const ctl_args_t *a, const char *name, const char **out, size_t max)
{
    size_t k = 0;
    for (int i = 0; i < a->nopt; i++)
        if (strcmp(a->opt[i].name, name) == 0) {
            if (k < max)
                out[k] = a->opt[i].value;
            k++;
        }
    return k < max ? k : max;
}

size_t ctl_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* ---- help ---- */

static void print_flags(FILE *f, const ctl_flag_t *fl)
{
    for (; fl && fl->name; fl++) {
        char left[96];
        if (fl->short_name)
            snprintf(left, sizeof(left), "-%c, --%s%s%s", fl->short_name, fl->name,
                     fl->metavar ? " " : "", fl->metavar ? fl->metavar : "");
        else
            snprintf(left, sizeof(left), "    --%s%s%s", fl->name, fl->metavar ? " " : "",
                     fl->metavar ? fl->metavar : "");
        if (strlen(left) > 26)
            fprintf(f, "  %s\n  %-26s  %s\n", left, "", fl->help);
        else
            fprintf(f, "  %-26s  %s\n", left, fl->help);
    }
}

void ctl_help_cmd(FILE *f, const ctl_cmd_t *cmd)
{
    fprintf(f, "Usage: aigwctl %s%s%s%s\n\n%s.\n", cmd->words, cmd->usage && *cmd->usage ? " " : "",
            cmd->usage ? cmd->usage : "", cmd->flags && cmd->flags[0].name ? " [flags]" : "",
            cmd->summary);
    if (cmd->details)
        fprintf(f, "\n%s\n", cmd->details);
    if (cmd->flags && cmd->flags[0].name) {
        fprintf(f, "\nFlags:\n");
        print_flags(f, cmd->flags);
    }
    fprintf(f, "\nGlobal flags: see aigwctl --help.\n");
}

/* The top-level help: every command word group with its commands. With prefix, only the
 * commands that start with those words. */
static void help_all(FILE *f, const char *prefix)
{
    size_t n;
    const ctl_cmd_t *const *all = ctl_commands(&n);
    fprintf(f, "Usage: aigwctl [global flags] COMMAND [args]\n\n"
               "aigwctl talks to aigwd's admin API (Kong-compatible). With no command on a "
               "terminal it opens\nan interactive shell.\n\nCommands:\n");
    size_t plen = prefix ? strlen(prefix) : 0;
    for (size_t i = 0; i < n; i++) {
        const ctl_cmd_t *c = all[i];
        if (c->hidden)
            continue;
        if (prefix && (strncmp(c->words, prefix, plen) != 0 ||
                       (c->words[plen] != ' ' && c->words[plen] != '\0')))
            continue;
        char left[80];
        snprintf(left, sizeof(left), "%s%s%s", c->words, c->usage && *c->usage ? " " : "",
                 c->usage ? c->usage : "");
        if (strlen(left) > 34)
            fprintf(f, "  %s\n  %-34s  %s\n", left, "", c->summary);
        else
            fprintf(f, "  %-34s  %s\n", left, c->summary);
    }
    fprintf(f, "\nGlobal flags:\n");
    print_flags(f, ctl_global_flags);
    fprintf(f, "\nExit codes: 0 ok, 1 the admin API rejected the request (or a check failed), "
               "2 usage error,\n3 cannot connect, 4 loadtest expectations not met.\n"
               "Run 'aigwctl COMMAND --help' for a command's flags; man aigwctl for the rest.\n");
}

int ctl_usage_error(const ctl_cmd_t *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("aigwctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd)
        fprintf(stderr, "\nUsage: aigwctl %s%s%s (see aigwctl %s --help)\n", cmd->words,
                cmd->usage && *cmd->usage ? " " : "", cmd->usage ? cmd->usage : "", cmd->words);
    else
        fputs("\nSee aigwctl --help.\n", stderr);
    return CTL_EUSAGE;
}

/* ---- flag lookup ---- */

static const ctl_flag_t *find_flag(const ctl_flag_t *fl, const char *name, size_t nlen, char sh)
{
    for (; fl && fl->name; fl++) {
        if (sh ? fl->short_name == sh : (strlen(fl->name) == nlen && memcmp(fl->name, name, nlen) == 0))
            return fl;
    }
    return NULL;
}

static const char *closest_flag(const ctl_cmd_t *cmd, const char *name)
{
    const char *best = NULL;
    size_t bd = 3;
    const ctl_flag_t *lists[2] = { cmd ? cmd->flags : NULL, ctl_global_flags };
    for (int l = 0; l < 2; l++)
        for (const ctl_flag_t *fl = lists[l]; fl && fl->name; fl++) {
            size_t d = ctl_edit_distance(name, fl->name);
            if (d < bd) {
                bd = d;
                best = fl->name;
            }
        }
    return best;
}

/* Parse argv[from..] into a. Returns 0 or CTL_EUSAGE (message printed). Strings point into argv. */
static int parse_args(const ctl_cmd_t *cmd, int argc, char **argv, int from, ctl_args_t *a)
{
    a->pos = calloc((size_t)argc + 1, sizeof(char *));
    a->opt = calloc((size_t)argc + 1, sizeof(ctl_optval_t));
    if (!a->pos || !a->opt)
        return ctl_usage_error(cmd, "out of memory");
    int dashdash = 0;
    for (int i = from; i < argc; i++) {
        char *w = argv[i];
        if (dashdash || w[0] != '-' || w[1] == '\0') {
            a->pos[a->npos++] = w;
            continue;
        }
        if (strcmp(w, "--") == 0) {
            dashdash = 1;
            continue;
        }
        const ctl_flag_t *fl;
        const char *val = NULL;
        char shortbuf[3] = { 0 };
        if (w[1] == '-') {
            const char *name = w + 2;
            const char *eq = strchr(name, '=');
            size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
            fl = find_flag(cmd ? cmd->flags : NULL, name, nlen, 0);
            if (!fl)
                fl = find_flag(ctl_global_flags, name, nlen, 0);
            if (!fl) {
                char nm[64];
                snprintf(nm, sizeof(nm), "%.*s", (int)nlen, name);
                const char *hint = closest_flag(cmd, nm);
                if (hint)
                    return ctl_usage_error(cmd, "unknown flag --%s (did you mean --%s?)", nm, hint);
                return ctl_usage_error(cmd, "unknown flag --%s", nm);
            }
            if (eq)
                val = eq + 1;
        } else {
            /* A negative number is a positional (e.g. a value), not a flag. */
            if (w[1] >= '0' && w[1] <= '9') {
                a->pos[a->npos++] = w;
                continue;
            }
            fl = find_flag(cmd ? cmd->flags : NULL, NULL, 0, w[1]);
            if (!fl)
                fl = find_flag(ctl_global_flags, NULL, 0, w[1]);
            shortbuf[0] = '-';
            shortbuf[1] = w[1];
            if (!fl)
                return ctl_usage_error(cmd, "unknown flag %s", shortbuf);
            if (w[2] != '\0') {
                if (!fl->metavar)
                    return ctl_usage_error(cmd, "flag %s takes no value", shortbuf);
                val = w + 2;
            }
        }
        if (fl->metavar && !val) {
            if (i + 1 >= argc)
                return ctl_usage_error(cmd, "flag --%s needs a value (%s)", fl->name, fl->metavar);
            val = argv[++i];
        } else if (!fl->metavar && val) {
            return ctl_usage_error(cmd, "flag --%s takes no value", fl->name);
        }
        a->opt[a->nopt].name = fl->name;
        a->opt[a->nopt].value = val;
        a->nopt++;
    }
    return CTL_OK;
}

static void free_args(ctl_args_t *a)
{
    free(a->pos);
    free(a->opt);
    a->pos = NULL;
    a->opt = NULL;
}

/* How many leading words of w (space-separated) match argv[from..]; 0 when not all match. */
static int words_match(const char *words, int argc, char **argv, int from)
{
    int k = 0;
    const char *p = words;
    while (*p) {
        const char *sp = strchr(p, ' ');
        size_t len = sp ? (size_t)(sp - p) : strlen(p);
        if (from + k >= argc || strlen(argv[from + k]) != len || memcmp(argv[from + k], p, len) != 0)
            return 0;
        k++;
        p += len;
        while (*p == ' ')
            p++;
    }
    return k;
}

/* Apply the global flags found in a to the session. */
static int apply_globals(ctl_t *c, const ctl_args_t *a, const ctl_cmd_t *cmd)
{
    const char *v;
    if ((v = ctl_opt(a, "admin-url")))
        c->admin_url = v;
    if ((v = ctl_opt(a, "ca-cert")))
        c->ca_cert = v;
    if (ctl_opt_on(a, "insecure"))
        c->insecure = 1;
    if ((v = ctl_opt(a, "timeout"))) {
        char *end;
        double s = strtod(v, &end);
        if (*end || !(s > 0) || s > 86400)
            return ctl_usage_error(cmd, "--timeout: '%s' is not a number of seconds", v);
        c->timeout_ms = (long)(s * 1000);
    }
    /* A command's own --header (loadtest) is not the admin header. */
    if (!(cmd && find_flag(cmd->flags, "header", 6, 0))) {
        const char *hs[32];
        size_t nh = ctl_opt_all(a, "header", hs, 32);
        for (size_t i = 0; i < nh && c->nheaders < 32; i++) {
            if (!strchr(hs[i], ':'))
                return ctl_usage_error(cmd, "--header: '%s' is not 'Name: value'", hs[i]);
            c->headers[c->nheaders++] = hs[i];
        }
    }
    if ((v = ctl_opt(a, "output"))) {
        if (strcmp(v, "json") == 0)
            c->output = CTL_OUT_JSON;
        else if (strcmp(v, "yaml") == 0)
            c->output = CTL_OUT_YAML;
        else if (strcmp(v, "ids") == 0)
            c->output = CTL_OUT_IDS;
        else if (strcmp(v, "table") == 0)
            c->output = CTL_OUT_HUMAN;
        else
            return ctl_usage_error(cmd, "--output: '%s' is not one of table, json, yaml, ids", v);
        c->output_set = 1;
    }
    if (ctl_opt_on(a, "verbose"))
        c->verbose = 1;
    if (ctl_opt_on(a, "no-color"))
        c->color = 0;
    return CTL_OK;
}

int ctl_dispatch(ctl_t *c, int argc, char **argv)
{
    size_t n;
    const ctl_cmd_t *const *all = ctl_commands(&n);
    /* Leading global flags. */
    ctl_args_t g = { 0 };
    int lead_end = 0;
    while (lead_end < argc && argv[lead_end][0] == '-' && argv[lead_end][1] != '\0') {
        const char *w = argv[lead_end];
        const ctl_flag_t *fl = NULL;
        if (w[1] == '-') {
            const char *eq = strchr(w + 2, '=');
            size_t nlen = eq ? (size_t)(eq - w - 2) : strlen(w + 2);
            fl = find_flag(ctl_global_flags, w + 2, nlen, 0);
            if (fl && fl->metavar && !eq)
                lead_end++;
        } else {
            fl = find_flag(ctl_global_flags, NULL, 0, w[1]);
            if (fl && fl->metavar && w[2] == '\0')
                lead_end++;
        }
        if (!fl)
            break;
        lead_end++;
    }
    if (lead_end > argc)
        return ctl_usage_error(NULL, "flag %s needs a value", argv[argc - 1]);
    int rc = parse_args(NULL, lead_end, argv, 0, &g);
    if (rc == CTL_OK)
        rc = apply_globals(c, &g, NULL);
    int help = ctl_opt_on(&g, "help");
    free_args(&g);
    if (rc != CTL_OK)
        return rc;
    int i = lead_end;
    if (i >= argc) {
        help_all(help ? stdout : stderr, NULL);
        return help ? CTL_OK : CTL_EUSAGE;
    }
    if (strcmp(argv[i], "help") == 0) {
        if (i + 1 >= argc) {
            help_all(stdout, NULL);
            return CTL_OK;
        }
        /* "help service create" == "service create --help". */
        char *hv[8];
        int hn = 0;
        for (int k = i + 1; k < argc && hn < 7; k++)
            hv[hn++] = argv[k];
        hv[hn++] = (char *)"--help";
        return ctl_dispatch(c, hn, hv);
    }
    /* The longest matching command. */
    const ctl_cmd_t *cmd = NULL;
    int best = 0;
    for (size_t k = 0; k < n; k++) {
        int m = words_match(all[k]->words, argc, argv, i);
        if (m > best) {
            best = m;
            cmd = all[k];
        }
    }
    if (!cmd) {
        /* A group word alone ("aigwctl service") or with --help shows the group. */
        size_t wl = strlen(argv[i]);
        int group = 0;
        for (size_t k = 0; k < n; k++)
            if (strncmp(all[k]->words, argv[i], wl) == 0 && all[k]->words[wl] == ' ')
                group = 1;
        if (group) {
            int only_help = i + 1 < argc && (strcmp(argv[i + 1], "--help") == 0 ||
                                             strcmp(argv[i + 1], "-h") == 0);
            if (i + 1 >= argc || only_help) {
                help_all(only_help ? stdout : stderr, argv[i]);
                return only_help ? CTL_OK : CTL_EUSAGE;
            }
            /* Did they mistype the verb? */
            const char *hint = NULL;
            size_t bd = 3;
            for (size_t k = 0; k < n; k++)
                if (strncmp(all[k]->words, argv[i], wl) == 0 && all[k]->words[wl] == ' ') {
                    const char *verb = all[k]->words + wl + 1;
                    if (strchr(verb, ' '))
                        continue;
                    size_t d = ctl_edit_distance(argv[i + 1], verb);
                    if (d < bd) {
                        bd = d;
                        hint = all[k]->words;
                    }
                }
            if (hint)
                return ctl_usage_error(NULL, "unknown command '%s %s' (did you mean '%s'?)", argv[i],
                                       argv[i + 1], hint);
            fprintf(stderr, "aigwctl: unknown command '%s %s'\n", argv[i], argv[i + 1]);
            help_all(stderr, argv[i]);
            return CTL_EUSAGE;
        }
        const char *hint = NULL;
        size_t bd = 3;
        for (size_t k = 0; k < n; k++) {
            if (all[k]->hidden)
                continue;
            char first[64];
            const char *sp = strchr(all[k]->words, ' ');
            size_t fl = sp ? (size_t)(sp - all[k]->words) : strlen(all[k]->words);
            snprintf(first, sizeof(first), "%.*s", (int)fl, all[k]->words);
            size_t d = ctl_edit_distance(argv[i], first);
            if (d < bd) {
                bd = d;
                hint = all[k]->words;
            }
        }
        if (hint) {
            char first[64];
            const char *sp = strchr(hint, ' ');
            snprintf(first, sizeof(first), "%.*s", sp ? (int)(sp - hint) : (int)strlen(hint), hint);
            return ctl_usage_error(NULL, "unknown command '%s' (did you mean '%s'?)", argv[i], first);
        }
        return ctl_usage_error(NULL, "unknown command '%s'", argv[i]);
    }
    ctl_args_t a = { 0 };
    rc = parse_args(cmd, argc, argv, i + best, &a);
    if (rc == CTL_OK && ctl_opt_on(&a, "help")) {
        ctl_help_cmd(stdout, cmd);
        free_args(&a);
        return CTL_OK;
    }
    if (rc == CTL_OK)
        rc = apply_globals(c, &a, cmd);
    if (rc == CTL_OK)
        rc = cmd->run(c, cmd, &a);
    free_args(&a);
    return rc;
}

/* ---- the session ---- */

/* Find a global flag's value anywhere on the command line (before `--`), for the settings
 * that must be known before dispatch (the context). */
static const char *early_flag(int argc, char **argv, const char *name)
{
    size_t nl = strlen(name);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strncmp(argv[i], "--", 2) == 0 && strncmp(argv[i] + 2, name, nl) == 0) {
            if (argv[i][2 + nl] == '=')
                return argv[i] + 3 + nl;
            if (argv[i][2 + nl] == '\0' && i + 1 < argc)
                return argv[i + 1];
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    ctl_t c = { 0 };
    c.admin_url = "http://127.0.0.1:8001";
    c.proxy_url = "http://127.0.0.1:8000";
    c.timeout_ms = 10000;
    c.tty = isatty(STDOUT_FILENO);
    const char *nc = getenv("NO_COLOR");
    c.color = c.tty && !(nc && *nc);
    c.output = CTL_OUT_HUMAN;

    if (argc >= 2 && strcmp(argv[1], "version") == 0 && argc == 2) {
        printf("aigwctl %s\n", AIGW_VERSION);
        return 0;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *ctxname = early_flag(argc, argv, "context");
    if (!ctxname) {
        const char *e = getenv("AIGW_CONTEXT");
        if (e && *e)
            ctxname = e;
    }
    int rc = ctl_context_apply(&c, ctxname);
    if (rc == CTL_OK) {
        const char *e = getenv("AIGW_ADMIN_URL");
        if (e && *e)
            c.admin_url = e;
        e = getenv("AIGW_PROXY_URL");
        if (e && *e)
            c.proxy_url = e;
        /* With no command: the shell (on a terminal), or commands line by line from a pipe. */
        if (argc == 1) {
            char *sh[] = { (char *)"shell", NULL };
            rc = ctl_dispatch(&c, 1, sh);
        } else {
            rc = ctl_dispatch(&c, argc - 1, argv + 1);
        }
    }
    if (c.curl)
        curl_easy_cleanup(c.curl);
    for (size_t k = 0; k < c.nowned; k++)
        free(c.owned[k]);
    ctl_commands_free();
    curl_global_cleanup();
    return rc;
}
