/* aigwctl/shell.c: the interactive shell (readline, history, completion from the command table
 * and live entity names) and, when stdin is not a terminal, commands read line by line.
 *
 * Each line is split like a POSIX shell splits words (quotes, backslashes; no expansions) and
 * run by ctl_dispatch on a copy of the session, so that -o or --admin-url given on one line does
 * not stick; the curl handle is kept across lines for keep-alive. */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "common/sbuf.h"

#define HISTORY_MAX 1000
#define NAME_CACHE_SECONDS 5

/* ---- splitting a line ------------------------------------------------------------------------ */

typedef struct words {
    char **v;
    int n, cap;
} words_t;

static void words_free(words_t *w)
{
    for (int i = 0; i < w->n; i++)
        free(w->v[i]);
    free(w->v);
    memset(w, 0, sizeof(*w));
}

static int words_push(words_t *w, aigw_sbuf_t *b)
{
    if (w->n + 1 >= w->cap) {
        int nc = w->cap ? w->cap * 2 : 16;
        char **nv = realloc(w->v, (size_t)nc * sizeof(*nv));
        if (!nv)
            return -1;
        w->v = nv;
        w->cap = nc;
    }
    w->v[w->n++] = b->p ? b->p : strdup("");
    w->v[w->n] = NULL;
    memset(b, 0, sizeof(*b));
    return 0;
}

/* Splits s into words. Returns 0, or -1 with *why set (an unterminated quote). With partial,
 * an unterminated quote is accepted (completion of the word being typed). */
static int split_line(const char *s, words_t *w, int partial, const char **why)
{
    aigw_sbuf_t b = { 0 };
    int inword = 0;
    char q = 0;
    *why = NULL;
    for (const char *p = s; *p; p++) {
        char ch = *p;
        if (q == '\'') {
            if (ch == '\'')
                q = 0;
            else
                aigw_sbuf_addn(&b, p, 1);
            continue;
        }
        if (q == '"') {
            if (ch == '"') {
                q = 0;
            } else if (ch == '\\' && (p[1] == '"' || p[1] == '\\' || p[1] == '$' || p[1] == '`')) {
                p++;
                aigw_sbuf_addn(&b, p, 1);
            } else {
                aigw_sbuf_addn(&b, p, 1);
            }
            continue;
        }
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
            if (inword && words_push(w, &b) != 0)
                goto oom;
            inword = 0;
            continue;
        }
        if (ch == '#' && !inword)
            break; /* a comment */
        inword = 1;
        if (ch == '\'' || ch == '"') {
            q = ch;
            if (!b.p)
                aigw_sbuf_add(&b, "");
        } else if (ch == '\\') {
            if (p[1]) {
                p++;
                aigw_sbuf_addn(&b, p, 1);
            }
        } else {
            aigw_sbuf_addn(&b, p, 1);
        }
    }
    if (q && !partial) {
        aigw_sbuf_free(&b);
        *why = q == '\'' ? "unterminated ' quote" : "unterminated \" quote";
        return -1;
    }
    if (inword && words_push(w, &b) != 0)
        goto oom;
    aigw_sbuf_free(&b);
    return 0;
oom:
    aigw_sbuf_free(&b);
    *why = "out of memory";
    return -1;
}

/* ---- running one line ------------------------------------------------------------------------ */

static ctl_t *g_session;

/* Runs a line; *quit set on exit/quit. Returns the command's exit code (0 for blank lines). */
static int run_line(ctl_t *c, const char *line, int *quit)
{
    words_t w = { 0 };
    const char *why;
    if (split_line(line, &w, 0, &why) != 0) {
        fprintf(stderr, "aigwctl: %s\n", why);
        words_free(&w);
        return CTL_EUSAGE;
    }
    int rc = CTL_OK;
    if (w.n == 0) {
        words_free(&w);
        return CTL_OK;
    }
    if (strcmp(w.v[0], "exit") == 0 || strcmp(w.v[0], "quit") == 0) {
        *quit = 1;
        if (w.n > 1) {
            char *end;
            long v = strtol(w.v[1], &end, 10);
            rc = *end || v < 0 || v > 255 ? CTL_EUSAGE : (int)v;
            *quit = 2;
        }
        words_free(&w);
        return rc;
    }
    if (strcmp(w.v[0], "shell") == 0) {
        fprintf(stderr, "aigwctl: already in the shell\n");
        words_free(&w);
        return CTL_EUSAGE;
    }
    ctl_t copy = *c;
    copy.nowned = 0; /* the copy owns nothing: strings stay the session's */
    rc = ctl_dispatch(&copy, w.n, w.v);
    c->curl = copy.curl;
    fflush(stdout);
    fflush(stderr);
    words_free(&w);
    return rc;
}

/* ---- history --------------------------------------------------------------------------------- */

static char *history_path(void)
{
    aigw_sbuf_t b = { 0 };
    const char *x = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    if (x && *x == '/')
        aigw_sbuf_add(&b, x);
    else if (home && *home)
        aigw_sbuf_addf(&b, "%s/.local/share", home);
    else
        return NULL;
    aigw_sbuf_add(&b, "/aigw");
    /* mkdir -p, private. */
    for (char *p = b.p + 1; p && *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(b.p, 0700);
            *p = '/';
        }
    }
    mkdir(b.p, 0700);
    aigw_sbuf_add(&b, "/history");
    if (b.oom) {
        aigw_sbuf_free(&b);
        return NULL;
    }
    int fd = open(b.p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    return b.p;
}

/* ---- completion ------------------------------------------------------------------------------ */

typedef struct names {
    char kind[32];
    time_t at;
    char **v;
    size_t n;
} names_t;

static names_t name_cache[8];

static void names_clear(names_t *nc)
{
    for (size_t i = 0; i < nc->n; i++)
        free(nc->v[i]);
    free(nc->v);
    nc->v = NULL;
    nc->n = 0;
}

static const struct {
    const char *kind, *path, *field, *field2;
} live_kinds[] = {
    { "service", "/services", "name", "id" },
    { "route", "/routes", "name", "id" },
    { "consumer", "/consumers", "username", "custom_id" },
    { "upstream", "/upstreams", "name", "id" },
    { "plugin", "/plugins", "id", NULL },
    { "certificate", "/certificates", "id", NULL },
    { "sni", "/snis", "name", NULL },
    { "ca-certificate", "/ca_certificates", "id", NULL },
    { "ca_certificate", "/ca_certificates", "id", NULL },
};

/* Live names of kind from the admin API, cached for a few seconds; nothing on failure (the
 * errors are not shown: stderr is muted while asking). */
static names_t *live_names(const char *kind)
{
    const char *path = NULL, *field = NULL, *field2 = NULL;
    int plugin_names = strcmp(kind, "plugin-name") == 0;
    for (size_t i = 0; i < sizeof(live_kinds) / sizeof(live_kinds[0]); i++)
        if (strcmp(live_kinds[i].kind, kind) == 0) {
            path = live_kinds[i].path;
            field = live_kinds[i].field;
            field2 = live_kinds[i].field2;
        }
    if ((!path && !plugin_names) || !g_session)
        return NULL;
    time_t now = time(NULL);
    names_t *slot = NULL, *oldest = &name_cache[0];
    for (size_t i = 0; i < sizeof(name_cache) / sizeof(name_cache[0]); i++) {
        if (strcmp(name_cache[i].kind, kind) == 0)
            slot = &name_cache[i];
        if (name_cache[i].at < oldest->at)
            oldest = &name_cache[i];
    }
    if (slot && now - slot->at <= NAME_CACHE_SECONDS)
        return slot;
    if (!slot)
        slot = oldest;
    names_clear(slot);
    snprintf(slot->kind, sizeof(slot->kind), "%s", kind);
    slot->at = now;
    ctl_t copy = *g_session;
    copy.nowned = 0;
    copy.verbose = 0;
    if (copy.timeout_ms > 2000)
        copy.timeout_ms = 2000;
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (saved >= 0 && devnull >= 0)
        dup2(devnull, STDERR_FILENO);
    json_t *rows = json_array();
    if (plugin_names) {
        ctl_resp_t r;
        if (ctl_call(&copy, "GET", "/plugins/enabled", NULL, NULL, 0, &r) == CTL_OK && r.json) {
            size_t i;
            json_t *x;
            json_array_foreach(json_object_get(r.json, "enabled_plugins"), i, x) {
                json_array_append_new(rows, json_pack("{s:O}", "name", x));
            }
        }
        ctl_resp_free(&r);
        field = "name";
    } else {
        ctl_list_all(&copy, path, rows);
    }
    fflush(stderr);
    if (saved >= 0) {
        dup2(saved, STDERR_FILENO);
        close(saved);
    }
    if (devnull >= 0)
        close(devnull);
    g_session->curl = copy.curl;
    size_t n = json_array_size(rows);
    slot->v = calloc(n + 1, sizeof(char *));
    if (slot->v) {
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row) {
            const char *s = json_string_value(json_object_get(row, field));
            if (!s && field2)
                s = json_string_value(json_object_get(row, field2));
            if (s)
                slot->v[slot->n++] = strdup(s);
        }
    }
    json_decref(rows);
    return slot;
}

/* The candidates of one completion: collected, then handed to readline by the generator. */
static words_t cands;

static void cand_add(const char *s, const char *prefix)
{
    if (!s || strncmp(s, prefix, strlen(prefix)) != 0)
        return;
    for (int i = 0; i < cands.n; i++)
        if (strcmp(cands.v[i], s) == 0)
            return;
    aigw_sbuf_t b = { 0 };
    aigw_sbuf_add(&b, s);
    if (words_push(&cands, &b) != 0)
        aigw_sbuf_free(&b);
}

static const char *const entity_kinds[] = {
    "service", "route", "consumer", "plugin", "certificate", "sni", "upstream", "target",
    "ca-certificate", "jwt", "key-auth", "basic-auth", "acl", "oauth2", NULL,
};

/* Adds what vocab offers (see ctl_flag_t.complete); returns 1 when file names should be
 * completed instead. */
static int cand_vocab(const char *vocab, const char *prefix)
{
    if (!vocab)
        return 0;
    if (strcmp(vocab, "file") == 0 || strcmp(vocab, "dir") == 0)
        return 1;
    if (strchr(vocab, '|')) {
        const char *p = vocab;
        while (*p) {
            size_t l = strcspn(p, "|");
            char w[128];
            snprintf(w, sizeof(w), "%.*s", (int)l, p);
            cand_add(w, prefix);
            p += l;
            if (*p == '|')
                p++;
        }
        return 0;
    }
    if (strcmp(vocab, "entity") == 0 || strcmp(vocab, "schema-name") == 0) {
        for (size_t i = 0; entity_kinds[i]; i++)
            cand_add(entity_kinds[i], prefix);
        if (strcmp(vocab, "schema-name") != 0)
            return 0;
        vocab = "plugin-name";
    }
    if (strcmp(vocab, "method") == 0) {
        static const char *const m[] = { "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", NULL };
        for (size_t i = 0; m[i]; i++)
            cand_add(m[i], prefix);
        return 0;
    }
    names_t *nc = live_names(vocab);
    for (size_t i = 0; nc && i < nc->n; i++)
        cand_add(nc->v[i], prefix);
    return 0;
}

static const ctl_flag_t *flag_named(const ctl_flag_t *fl, const char *w)
{
    for (; fl && fl->name; fl++) {
        if (w[0] == '-' && w[1] == '-' && strcmp(w + 2, fl->name) == 0)
            return fl;
        if (w[0] == '-' && w[1] && !w[2] && fl->short_name == w[1])
            return fl;
    }
    return NULL;
}

static size_t nwords(const char *words)
{
    size_t n = 1;
    for (const char *p = words; *p; p++)
        if (*p == ' ')
            n++;
    return n;
}

/* The k-th word (0-based) of words into buf. */
static void word_at(const char *words, size_t k, char *buf, size_t cap)
{
    const char *p = words;
    for (size_t i = 0; i < k && p; i++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    if (!p) {
        buf[0] = '\0';
        return;
    }
    snprintf(buf, cap, "%.*s", (int)strcspn(p, " "), p);
}

/* Do the first n words of the command equal w[0..n)? */
static int cmd_prefix(const ctl_cmd_t *cmd, char **w, size_t n)
{
    if (n > nwords(cmd->words))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char buf[64];
        word_at(cmd->words, i, buf, sizeof(buf));
        if (strcmp(buf, w[i]) != 0)
            return 0;
    }
    return 1;
}

static char *cand_gen(const char *text, int state)
{
    static int i;
    (void)text;
    if (!state)
        i = 0;
    if (i < cands.n)
        return strdup(cands.v[i++]);
    return NULL;
}

static char **complete(const char *text, int start, int end)
{
    (void)end;
    words_free(&cands);
    rl_attempted_completion_over = 1;
    char *before = strndup(rl_line_buffer, (size_t)start);
    words_t w = { 0 };
    const char *why;
    if (!before || split_line(before, &w, 1, &why) != 0) {
        free(before);
        words_free(&w);
        return NULL;
    }
    free(before);
    size_t n;
    const ctl_cmd_t *const *all = ctl_commands(&n);
    /* The command words typed (after leading global flags). */
    int i = 0;
    while (i < w.n && w.v[i][0] == '-') {
        const ctl_flag_t *fl = flag_named(ctl_global_flags, w.v[i]);
        i += fl && fl->metavar ? 2 : 1;
    }
    char **cw = w.v + (i < w.n ? i : w.n);
    size_t ncw = 0;
    while ((int)(i + (int)ncw) < w.n && cw[ncw][0] != '-')
        ncw++;
    const ctl_cmd_t *cmd = NULL;
    size_t best = 0;
    for (size_t k = 0; k < n; k++) {
        size_t nw = nwords(all[k]->words);
        if (nw <= ncw && nw > best && cmd_prefix(all[k], cw, nw)) {
            best = nw;
            cmd = all[k];
        }
    }
    int files = 0;
    const char *prev = w.n ? w.v[w.n - 1] : NULL;
    const ctl_flag_t *pf = NULL;
    if (prev && prev[0] == '-') {
        pf = cmd ? flag_named(cmd->flags, prev) : NULL;
        if (!pf)
            pf = flag_named(ctl_global_flags, prev);
    }
    if (pf && pf->metavar) {
        files = cand_vocab(pf->complete, text);
    } else if (text[0] == '-') {
        const ctl_flag_t *lists[2] = { cmd ? cmd->flags : NULL, ctl_global_flags };
        for (int l = 0; l < 2; l++)
            for (const ctl_flag_t *fl = lists[l]; fl && fl->name; fl++) {
                char b[96];
                snprintf(b, sizeof(b), "--%s", fl->name);
                cand_add(b, text);
            }
    } else {
        /* Command words: the next word of every command the typed words begin. */
        if (!cmd || (size_t)w.n - (size_t)i == best) {
            if (ncw == (size_t)w.n - (size_t)i) {
                for (size_t k = 0; k < n; k++) {
                    if (all[k]->hidden || !cmd_prefix(all[k], cw, ncw) || nwords(all[k]->words) <= ncw)
                        continue;
                    char buf[64];
                    word_at(all[k]->words, ncw, buf, sizeof(buf));
                    cand_add(buf, text);
                }
                if (ncw == 0) {
                    cand_add("help", text);
                    cand_add("exit", text);
                    cand_add("quit", text);
                }
            }
        }
        if (cmd) {
            const char *pc = cmd->pos_complete;
            char first[64];
            word_at(cmd->words, 0, first, sizeof(first));
            if (!pc) {
                /* "service get|update|delete ID|NAME": the kind's live names. */
                for (size_t k = 0; k < sizeof(live_kinds) / sizeof(live_kinds[0]); k++)
                    if (strcmp(live_kinds[k].kind, first) == 0 && nwords(cmd->words) == 2)
                        pc = first;
            }
            files = cand_vocab(pc, text);
        } else if (ncw >= 1 && strcmp(cw[0], "help") == 0) {
            for (size_t k = 0; k < n; k++) {
                if (all[k]->hidden || !cmd_prefix(all[k], cw + 1, ncw - 1) ||
                    nwords(all[k]->words) <= ncw - 1)
                    continue;
                char buf[64];
                word_at(all[k]->words, ncw - 1, buf, sizeof(buf));
                cand_add(buf, text);
            }
        }
    }
    words_free(&w);
    if (files && cands.n == 0) {
        rl_attempted_completion_over = 0;
        return rl_completion_matches(text, rl_filename_completion_function);
    }
    if (cands.n == 0)
        return NULL;
    return rl_completion_matches(text, cand_gen);
}

/* ---- the loops ------------------------------------------------------------------------------- */

static volatile sig_atomic_t in_readline;

static void on_sigint(int sig)
{
    (void)sig;
    if (in_readline) {
        /* Ctrl-C clears the line and gives a fresh prompt. */
        ssize_t r = write(STDOUT_FILENO, "^C\n", 3);
        (void)r;
        rl_on_new_line();
        rl_replace_line("", 0);
        rl_redisplay();
    } else {
        ssize_t r = write(STDOUT_FILENO, "\n", 1);
        (void)r;
    }
}

static int interactive(ctl_t *c)
{
    char *hist = history_path();
    using_history();
    stifle_history(HISTORY_MAX);
    if (hist)
        read_history(hist);
    rl_readline_name = "aigwctl";
    rl_attempted_completion_function = complete;
    rl_completer_quote_characters = "\"'";
    rl_catch_signals = 0;
    char prompt[160];
    if (c->context)
        snprintf(prompt, sizeof(prompt), "aigw(%s)> ", c->context);
    else
        snprintf(prompt, sizeof(prompt), "aigw> ");
    printf("aigwctl shell: commands as on the command line, 'help', 'exit' or Ctrl-D to leave.\n");
    int rc = CTL_OK;
    for (;;) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_sigint;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        in_readline = 1;
        char *line = readline(prompt);
        in_readline = 0;
        if (!line) {
            printf("\n");
            break;
        }
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p) {
            HIST_ENTRY *last = history_length > 0 ? history_get(history_base + history_length - 1) : NULL;
            if (!last || strcmp(last->line, line) != 0) {
                add_history(line);
                if (hist) {
                    append_history(1, hist);
                    history_truncate_file(hist, HISTORY_MAX);
                }
            }
        }
        int quit = 0;
        int r = run_line(c, p, &quit);
        free(line);
        if (quit) {
            if (quit == 2)
                rc = r;
            break;
        }
        rc = r;
    }
    rl_clear_history();
    free(hist);
    return rc;
}

static int from_stdin(ctl_t *c)
{
    char *line = NULL;
    size_t cap = 0;
    int last_err = CTL_OK;
    while (getline(&line, &cap, stdin) >= 0) {
        int quit = 0;
        int r = run_line(c, line, &quit);
        if (quit) {
            if (quit == 2)
                last_err = r;
            break;
        }
        if (r != CTL_OK)
            last_err = r;
    }
    free(line);
    return last_err;
}

static int run_shell(ctl_t *c, const ctl_cmd_t *cmd, ctl_args_t *a)
{
    if (a->npos)
        return ctl_usage_error(cmd, "unexpected argument '%s'", a->pos[0]);
    if (c->in_shell) {
        fprintf(stderr, "aigwctl: already in the shell\n");
        return CTL_EUSAGE;
    }
    c->in_shell = 1;
    g_session = c;
    int rc = isatty(STDIN_FILENO) ? interactive(c) : from_stdin(c);
    g_session = NULL;
    words_free(&cands);
    for (size_t i = 0; i < sizeof(name_cache) / sizeof(name_cache[0]); i++)
        names_clear(&name_cache[i]);
    c->in_shell = 0;
    return rc;
}

static const ctl_cmd_t cmds[] = {
    { "shell", "", "Open an interactive shell (also: aigwctl with no arguments)",
      "On a terminal: a readline shell with the same commands as the command line (without the\n"
      "leading 'aigwctl'), e.g. 'service list' or 'plugin enable jwt --service ai-orchestrator'.\n"
      "Flags given on a line (-o, --admin-url, ...) apply to that line only. Words are split as a\n"
      "shell does: quotes and backslashes work, nothing is expanded. Tab completes commands,\n"
      "flags, fixed flag values, file names, entity kinds and the names of the node's services,\n"
      "routes, consumers, upstreams and plugins (asked of the admin API, cached a few seconds).\n"
      "'help' lists the commands, 'help COMMAND' shows one; 'exit', 'quit' or Ctrl-D leave,\n"
      "Ctrl-C clears the line; the exit code is the last command's ('exit N': N). History is kept in $XDG_DATA_HOME/aigw/history\n"
      "(~/.local/share/aigw/history), mode 0600, the last 1000 lines.\n"
      "When stdin is not a terminal, commands are read line by line with no prompt ('#' starts a\n"
      "comment, blank lines are skipped); every line runs even after a failure, and the exit code\n"
      "is that of the last failing line (0 when all succeeded); 'exit N' stops with code N.",
      NULL, NULL, run_shell, NULL, 0 },
};

const ctl_cmd_t *ctl_cmds_shell(size_t *n)
{
    *n = sizeof(cmds) / sizeof(cmds[0]);
    return cmds;
}
