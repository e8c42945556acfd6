/* aigwctl/gen.c: the man page and the shell completions, derived from the one command table, and
 * the live names the completions ask for.
 *
 *   aigwctl __gen man|bash|zsh|fish   print man/aigwctl.1 or completions/aigwctl.{bash,zsh,fish}
 *   aigwctl __complete KIND           print the names of KIND, one a line (for the completions)
 *
 * Both are hidden. The generated files are committed; the build regenerates them (target
 * aigwctl-docs) and ctest cli.docs_drift fails when a committed copy differs. The output depends
 * only on the table (ctl_commands(), ctl_global_flags) and the prose below: deterministic.
 *
 * Completion vocabulary (ctl_flag_t.complete, ctl_cmd_t.pos_complete): NULL or "" (nothing),
 * "file", "dir", fixed words "a|b|c", or a kind that `__complete` answers: service, route,
 * consumer, upstream, plugin (ids), certificate, ca-certificate, sni (live from the admin API),
 * plugin-name (the plugins the node has), schema-name, entity, method, context (the contexts
 * file), url. A valued flag without `complete` whose metavar is URL completes as "url". */
#include "ctl.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- small string lists ---- */

typedef struct strlist {
    char **v;
    size_t n, cap;
} strlist_t;

static int sl_has(const strlist_t *l, const char *s, size_t len)
{
    for (size_t i = 0; i < l->n; i++)
        if (strlen(l->v[i]) == len && memcmp(l->v[i], s, len) == 0)
            return 1;
    return 0;
}

/* Append a copy of s[0..len) unless present. */
static void sl_add(strlist_t *l, const char *s, size_t len)
{
    if (sl_has(l, s, len))
        return;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        char **nv = realloc(l->v, nc * sizeof(*nv));
        if (!nv)
            return;
        l->v = nv;
        l->cap = nc;
    }
    char *d = malloc(len + 1);
    if (!d)
        return;
    memcpy(d, s, len);
    d[len] = '\0';
    l->v[l->n++] = d;
}

static void sl_free(strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* ---- the command tree ---- */

/* 1 when the words w start with the words p ("" starts everything); *rest gets what follows. */
static int words_under(const char *w, const char *p, const char **rest)
{
    size_t pl = strlen(p);
    if (pl == 0) {
        *rest = w;
        return 1;
    }
    if (strncmp(w, p, pl) != 0 || w[pl] != ' ')
        return 0;
    *rest = w + pl + 1;
    return 1;
}

/* The words that may follow the command words p, in table order. */
static void tree_children(const char *p, strlist_t *out)
{
    size_t n;
    const ctl_cmd_t *const *all = ctl_commands(&n);
    for (size_t i = 0; i < n; i++) {
        const char *rest;
        if (all[i]->hidden || !words_under(all[i]->words, p, &rest) || !*rest)
            continue;
        const char *sp = strchr(rest, ' ');
        sl_add(out, rest, sp ? (size_t)(sp - rest) : strlen(rest));
    }
}

/* Every proper prefix of the visible commands' words ("" first), in table order. */
static void tree_prefixes(strlist_t *out)
{
    size_t n;
    const ctl_cmd_t *const *all = ctl_commands(&n);
    sl_add(out, "", 0);
    for (size_t i = 0; i < n; i++) {
        if (all[i]->hidden)
            continue;
        const char *w = all[i]->words;
        for (const char *sp = strchr(w, ' '); sp; sp = strchr(sp + 1, ' '))
            sl_add(out, w, (size_t)(sp - w));
    }
}

static const ctl_cmd_t *find_cmd(const char *words)
{
    size_t n;
    const ctl_cmd_t *const *all = ctl_commands(&n);
    for (size_t i = 0; i < n; i++)
        if (!all[i]->hidden && strcmp(all[i]->words, words) == 0)
            return all[i];
    return NULL;
}

/* What completes a flag's value ("" when nothing does or it takes none). */
static const char *flag_spec(const ctl_flag_t *f)
{
    if (!f->metavar)
        return "";
    if (f->complete)
        return f->complete;
    if (strcmp(f->metavar, "URL") == 0)
        return "url";
    return "";
}

static const char *pos_spec(const ctl_cmd_t *c)
{
    return c->pos_complete ? c->pos_complete : "";
}

/* The description of child word w of prefix p: the command's summary, or its subcommands. */
static char *child_desc(const char *p, const char *w)
{
    char full[256];
    snprintf(full, sizeof(full), "%s%s%s", p, *p ? " " : "", w);
    const ctl_cmd_t *c = find_cmd(full);
    if (c)
        return strdup(c->summary);
    strlist_t kids = { 0 };
    tree_children(full, &kids);
    char buf[512];
    size_t k = (size_t)snprintf(buf, sizeof(buf), "%s commands:", full);
    for (size_t i = 0; i < kids.n && k < sizeof(buf); i++) {
        if (k + strlen(kids.v[i]) + 8 > 90) {
            k += (size_t)snprintf(buf + k, sizeof(buf) - k, " ...");
            break;
        }
        k += (size_t)snprintf(buf + k, sizeof(buf) - k, "%s %s", i ? "," : "", kids.v[i]);
    }
    sl_free(&kids);
    return strdup(buf);
}

/* ---- quoting ---- */

/* s in POSIX single quotes (bash, zsh). */
static void sh_quote(const char *s)
{
    putchar('\'');
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", stdout);
        else
            putchar(*s);
    }
    putchar('\'');
}

/* s in fish single quotes (\\ and \' are the escapes). */
static void fish_quote(const char *s)
{
    putchar('\'');
    for (; *s; s++) {
        if (*s == '\'' || *s == '\\')
            putchar('\\');
        putchar(*s);
    }
    putchar('\'');
}

/* ---- the man page (mdoc) ---- */

/* A macro argument: quoted, \& first so that it is never read as a macro or a delimiter. */
static void man_arg(const char *s)
{
    fputs(" \"\\&", stdout);
    for (; *s; s++) {
        if (*s == '"')
            fputs("\\(dq", stdout);
        else if (*s == '\\')
            fputs("\\e", stdout);
        else
            putchar(*s);
    }
    putchar('"');
}

/* One text line: backslashes escaped, a leading control character neutralised, and a new line
 * after each sentence (mdoc's "new sentence, new line"). */
static void man_line(const char *s, size_t len, int split)
{
    int bol = 1;
    for (size_t i = 0; i < len; i++) {
        if (bol && (s[i] == '.' || s[i] == '\''))
            fputs("\\&", stdout);
        bol = 0;
        if (s[i] == '\\')
            fputs("\\e", stdout);
        else
            putchar(s[i]);
        if (split && (s[i] == '.' || s[i] == '?' || s[i] == '!') && i > 0) {
            size_t j = i + 1;
            while (j < len && (s[j] == ')' || s[j] == '"' || s[j] == '\''))
                j++;
            if (j < len && s[j] == ' ') {
                fwrite(s + i + 1, 1, j - i - 1, stdout);
                putchar('\n');
                while (j < len && s[j] == ' ')
                    j++;
                i = j - 1;
                bol = 1;
            }
        }
    }
    putchar('\n');
}

/* Plain text as mdoc: a blank line starts a paragraph, indented lines are literal displays. */
static void man_text(const char *s)
{
    int in_lit = 0, need_pp = 0, any = 0;
    size_t lit_indent = 0;
    while (*s) {
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        size_t ind = 0;
        while (ind < len && (s[ind] == ' ' || s[ind] == '\t'))
            ind++;
        if (len == 0) {
            if (in_lit) {
                puts(".Ed");
                in_lit = 0;
            }
            need_pp = any;
        } else if (ind > 0) {
            if (!in_lit) {
                puts(".Bd -literal -offset indent");
                in_lit = 1;
                lit_indent = ind;
                need_pp = 0;
            }
            size_t cut = ind < lit_indent ? ind : lit_indent;
            man_line(s + cut, len - cut, 0);
            any = 1;
        } else {
            if (in_lit) {
                puts(".Ed");
                in_lit = 0;
            }
            if (need_pp)
                puts(".Pp");
            need_pp = 0;
            man_line(s, len, 1);
            any = 1;
        }
        s = e ? e + 1 : s + strlen(s);
    }
    if (in_lit)
        puts(".Ed");
}

/* A sentence: the text with a capital first letter and a final period. */
static void man_sentence(const char *s)
{
    size_t len = strlen(s);
    char *b = malloc(len + 2);
    if (!b)
        return;
    memcpy(b, s, len);
    if (len && b[0] >= 'a' && b[0] <= 'z')
        b[0] = (char)(b[0] - 'a' + 'A');
    if (len && b[len - 1] != '.')
        b[len++] = '.';
    b[len] = '\0';
    man_line(b, len, 1);
    free(b);
}

static void man_flags(const ctl_flag_t *fl)
{
    puts(".Bl -tag -width Ds");
    for (; fl && fl->name; fl++) {
        fputs(".It", stdout);
        if (fl->short_name) {
            char sh[2] = { fl->short_name, 0 };
            fputs(" Fl", stdout);
            man_arg(sh);
            fputs(" ,", stdout);
        }
        fputs(" Fl Fl", stdout);
        man_arg(fl->name);
        if (fl->metavar) {
            fputs(" Ar", stdout);
            man_arg(fl->metavar);
        }
        putchar('\n');
        man_sentence(fl->help ? fl->help : "");
        if (fl->repeat && !(fl->help && strstr(fl->help, "repeatable")))
            puts("May be given more than once.");
    }
    puts(".El");
}

static const char man_description[] =
    "talks to a running aigwd through its admin API only (Kong 3.9's admin API): it needs no\n"
    "access to the gateway's files and works the same against a local and a remote node.\n"
    "\n"
    "A command line is the global flags, the command words (such as service create), then the\n"
    "command's flags and arguments in any order. Fields the flags do not cover are given as\n"
    "key=value pairs in the admin API's own form syntax, for example config.minute=60 or\n"
    "paths[]=/a. A double dash ends the flags.\n"
    "\n"
    "Entities and lists are printed as a table on a terminal and as JSON otherwise; -o chooses\n"
    "json, yaml, ids (one id a line) or table. Colour is used only on a terminal, and never when\n"
    "NO_COLOR is set. An error from the admin API is printed on standard error with its field\n"
    "errors, and the exit status says what failed (see EXIT STATUS).\n"
    "\n"
    "With no command on a terminal, aigwctl opens an interactive shell with the same commands,\n"
    "tab completion of commands, flags and live entity names, and a history; when standard input\n"
    "is not a terminal, it runs the commands it reads, one a line.\n"
    "\n"
    "Every command accepts --help; aigwctl help COMMAND is the same.";

static const char *const man_examples[][2] = {
    { "Register a service and a route to it:",
      "$ aigwctl service create ai-orchestrator --url http://127.0.0.1:5000\n"
      "$ aigwctl route create --service ai-orchestrator --paths /ai-workflow" },
    { "Require a JWT and allow 60 requests a minute:",
      "$ aigwctl plugin enable jwt --service ai-orchestrator\n"
      "$ aigwctl plugin enable rate-limiting --service ai-orchestrator \\e\n"
      "    config.minute=60 config.policy=local" },
    { "A consumer with a JWT credential and an ACL group:",
      "$ aigwctl consumer create ai-client\n"
      "$ aigwctl jwt create --consumer ai-client --algorithm HS256\n"
      "$ aigwctl acl add --consumer ai-client --group ai-operator" },
    { "Mint a token for the consumer and call the route with it:",
      "$ TOKEN=$(aigwctl jwt mint --consumer ai-client)\n"
      "$ curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8000/ai-workflow" },
    { "Check that the limit holds: 65 requests in a minute, of which 60 pass and 5 are refused:",
      "$ aigwctl loadtest --rpm 65 --url http://127.0.0.1:8000/ai-workflow \\e\n"
      "    --jwt-consumer ai-client --expect 200=60,429=5" },
    { "Keep the configuration in a file, review a change, then apply it:",
      "$ aigwctl config dump -f kong.yaml\n"
      "$ aigwctl config diff kong.yaml\n"
      "$ aigwctl config sync kong.yaml" },
    { "The same against another gateway, with the address set once:",
      "$ export AIGW_ADMIN_URL=http://10.0.0.5:8001\n"
      "$ aigwctl status" },
};

static void gen_man(void)
{
    size_t n;
    const ctl_cmd_t *const *all = ctl_commands(&n);
    puts(".\\\" Generated by 'aigwctl __gen man' from aigwctl's command table (aigwctl/gen.c).\n"
         ".\\\" Do not edit: change the table and run 'cmake --build BUILD --target aigwctl-docs'.\n"
         ".Dd $Mdocdate$\n.Dt AIGWCTL 1\n.Os\n.Sh NAME\n.Nm aigwctl\n"
         ".Nd command-line client of the aigwd admin API\n.Sh SYNOPSIS\n.Nm\n"
         ".Op Ar global-flags\n.Ar command\n.Op Ar flags\n.Op Ar arguments\n.Nm\n"
         ".Op Ar global-flags\n.Sh DESCRIPTION\n.Nm");
    man_text(man_description);

    puts(".Sh COMMANDS");
    strlist_t top = { 0 };
    tree_children("", &top);
    for (size_t t = 0; t < top.n; t++) {
        fputs(".Ss", stdout);
        man_arg(top.v[t]);
        puts("\n.Bl -tag -width Ds");
        for (size_t i = 0; i < n; i++) {
            const ctl_cmd_t *c = all[i];
            const char *rest;
            if (c->hidden ||
                (strcmp(c->words, top.v[t]) != 0 && !words_under(c->words, top.v[t], &rest)))
                continue;
            fputs(".It Nm Cm", stdout);
            man_arg(c->words);
            if (c->usage && *c->usage) {
                fputs(" Ar", stdout);
                man_arg(c->usage);
            }
            putchar('\n');
            man_sentence(c->summary);
            if (c->details && *c->details) {
                puts(".Pp");
                man_text(c->details);
            }
            if (c->flags && c->flags[0].name) {
                puts(".Pp\nFlags:");
                man_flags(c->flags);
            }
        }
        puts(".El");
    }
    sl_free(&top);

    puts(".Sh GLOBAL FLAGS\nThese are accepted by every command, before or after the command words.");
    man_flags(ctl_global_flags);

    puts(".Sh ENVIRONMENT\n.Bl -tag -width XDG_CONFIG_HOME\n"
         ".It Ev AIGW_ADMIN_URL\nThe admin API to talk to when\n.Fl Fl admin-url\nis not given "
         "(it overrides the context's).\nDefault:\n.Lk http://127.0.0.1:8001 .\n"
         ".It Ev AIGW_PROXY_URL\nThe proxy that\n.Cm loadtest\nsends to by default (it overrides "
         "the context's).\nDefault:\n.Lk http://127.0.0.1:8000 .\n"
         ".It Ev AIGW_CONTEXT\nThe context to use when\n.Fl Fl context\nis not given.\n"
         ".It Ev NO_COLOR\nWhen set to a non-empty value, no colour is used.\n"
         ".It Ev XDG_CONFIG_HOME\nWhere the contexts file is looked for\n(default\n.Pa ~/.config ) .\n"
         ".It Ev XDG_DATA_HOME\nWhere the shell keeps its history\n(default\n.Pa ~/.local/share ) .\n"
         ".El");
    puts(".Sh FILES\n.Bl -tag -width Ds\n.It Pa ~/.config/aigw/aigwctl.conf\n"
         "Named contexts, like kubectl's: a\n.Li current-context = NAME\nline and one\n"
         ".Li [context NAME]\nsection for each gateway, with its admin and proxy URLs and "
         "connection settings (see\n.Cm context list ) .\n"
         "Written by\n.Cm context set\nwith mode 0600.\n"
         ".It Pa ~/.local/share/aigw/history\nThe history of the interactive shell.\n.El");
    puts(".Sh EXIT STATUS\n.Bl -tag -width Ds\n.It 0\nSuccess.\n.It 1\nThe admin API rejected "
         "the request (its message and field errors are printed on standard error), or a check "
         "failed.\n.It 2\nUsage error: an unknown command or flag, a missing or malformed "
         "argument.\n.It 3\nThe admin API could not be reached: the connection was refused or "
         "timed out, the name did not resolve, or TLS failed.\n.It 4\n.Cm loadtest\n"
         ".Fl Fl expect\nwas not met.\n.El");
    puts(".Sh EXAMPLES");
    for (size_t i = 0; i < sizeof(man_examples) / sizeof(man_examples[0]); i++) {
        if (i)
            puts(".Pp");
        man_line(man_examples[i][0], strlen(man_examples[i][0]), 1);
        puts(".Bd -literal -offset indent");
        /* The example text is written with mdoc escapes already (\e). */
        fputs(man_examples[i][1], stdout);
        puts("\n.Ed");
    }
    puts(".Sh SEE ALSO\n.Xr aigw.conf 5 ,\n.Xr aigwd 8");
}

/* ---- bash ---- */

static const char bash_head[] =
    "# bash completion for aigwctl(1)                                 -*- shell-script -*-\n"
    "#\n"
    "# Generated by 'aigwctl __gen bash' from aigwctl's command table (aigwctl/gen.c).\n"
    "# Do not edit: change the table and run 'cmake --build BUILD --target aigwctl-docs'.\n"
    "#\n"
    "# Install as /usr/share/bash-completion/completions/aigwctl, or source this file from\n"
    "# ~/.bashrc. Needs only bash's own 'complete' (bash-completion is not required).\n";

static const char bash_body[] =
    "\n"
    "# Print the candidates for what completes a value ($1, see _aigwctl_flag_value) matching $2,\n"
    "# one a line. Live names come from 'aigwctl __complete KIND' with the connection flags typed.\n"
    "_aigwctl_values()\n"
    "{\n"
    "    local spec=$1 cur=$2 m\n"
    "    case $spec in\n"
    "    '') ;;\n"
    "    file) compgen -f -- \"$cur\" ;;\n"
    "    dir) compgen -d -- \"$cur\" ;;\n"
    "    *'|'*) compgen -W \"${spec//|/ }\" -- \"$cur\" ;;\n"
    "    *)\n"
    "        # Not compgen -W: names from the network must not be expanded by the shell.\n"
    "        while IFS= read -r m; do\n"
    "            [[ -n $m && $m == \"$cur\"* ]] && printf '%s\\n' \"$m\"\n"
    "        done < <(\"$_aigwctl_prog\" \"${_aigwctl_conn[@]}\" __complete \"$spec\" 2>/dev/null)\n"
    "        ;;\n"
    "    esac\n"
    "}\n"
    "\n"
    "_aigwctl()\n"
    "{\n"
    "    local -a words=()\n"
    "    local i w cur cword path='' cmd_done='' dashdash='' valflag='' spec prefix=''\n"
    "    COMPREPLY=()\n"
    "\n"
    "    # Bash splits words at ':' (COMP_WORDBREAKS): \"http://h:8001\" arrives as\n"
    "    # \"http\" \":\" \"//h\" \":\" \"8001\". Join those runs back into one word.\n"
    "    for ((i = 0; i <= COMP_CWORD && i < ${#COMP_WORDS[@]}; i++)); do\n"
    "        w=${COMP_WORDS[i]}\n"
    "        if ((i > 1)) && [[ $w == : || ${COMP_WORDS[i - 1]} == : ]]; then\n"
    "            words[${#words[@]} - 1]+=$w\n"
    "        else\n"
    "            words+=(\"$w\")\n"
    "        fi\n"
    "    done\n"
    "    ((COMP_CWORD >= ${#COMP_WORDS[@]})) && words+=('')\n"
    "    cword=$((${#words[@]} - 1))\n"
    "    cur=${words[cword]}\n"
    "    _aigwctl_prog=${words[0]/#\\~/$HOME}\n"
    "    _aigwctl_conn=()\n"
    "\n"
    "    # The command words typed so far, and the connection flags to pass to __complete.\n"
    "    for ((i = 1; i < cword; i++)); do\n"
    "        w=${words[i]}\n"
    "        if [[ -z $dashdash && $w == -?* ]]; then\n"
    "            if [[ $w == -- ]]; then\n"
    "                dashdash=1\n"
    "                continue\n"
    "            fi\n"
    "            [[ -n $path ]] && cmd_done=1\n"
    "            case $w in\n"
    "            --admin-url=* | --context=*) _aigwctl_conn+=(\"$w\") ;;\n"
    "            esac\n"
    "            if [[ $w != *=* && $w != -[!-]?* ]] && _aigwctl_flag_value \"$path\" \"$w\" >/dev/null; then\n"
    "                if ((i + 1 == cword)); then\n"
    "                    valflag=$w\n"
    "                elif [[ $w == --admin-url || $w == --context ]]; then\n"
    "                    _aigwctl_conn+=(\"$w\" \"${words[i + 1]}\")\n"
    "                fi\n"
    "                ((i++))\n"
    "            fi\n"
    "            continue\n"
    "        fi\n"
    "        if [[ -z $cmd_done && \" $(_aigwctl_children \"$path\") \" == *\" $w \"* ]]; then\n"
    "            path=${path:+$path }$w\n"
    "        else\n"
    "            cmd_done=1\n"
    "        fi\n"
    "    done\n"
    "\n"
    "    local -a cands=()\n"
    "    if [[ -n $valflag ]]; then\n"
    "        spec=$(_aigwctl_flag_value \"$path\" \"$valflag\")\n"
    "    elif [[ -z $dashdash && $cur == --*=* ]]; then\n"
    "        spec=$(_aigwctl_flag_value \"$path\" \"${cur%%=*}\")\n"
    "        prefix=${cur%%=*}=\n"
    "        cur=${cur#*=}\n"
    "    elif [[ -z $dashdash && $cur == -* ]]; then\n"
    "        mapfile -t cands < <(compgen -W \"$(_aigwctl_flags \"$path\")\" -- \"$cur\")\n"
    "        spec=none\n"
    "    else\n"
    "        [[ -z $cmd_done ]] &&\n"
    "            mapfile -t cands < <(compgen -W \"$(_aigwctl_children \"$path\")\" -- \"$cur\")\n"
    "        spec=none\n"
    "        _aigwctl_is_command \"$path\" && spec=$(_aigwctl_positional \"$path\")\n"
    "    fi\n"
    "    if [[ $spec != none ]]; then\n"
    "        [[ $spec == file || $spec == dir ]] && compopt -o filenames 2>/dev/null\n"
    "        mapfile -t -O \"${#cands[@]}\" cands < <(_aigwctl_values \"$spec\" \"$cur\")\n"
    "    fi\n"
    "\n"
    "    # Readline replaces only the text after the last ':' of the word: drop what precedes it.\n"
    "    local colon=''\n"
    "    [[ $COMP_WORDBREAKS == *:* && $prefix$cur == *:* ]] && colon=${prefix}${cur%\"${cur##*:}\"}\n"
    "    for w in \"${cands[@]}\"; do\n"
    "        w=$prefix$w\n"
    "        COMPREPLY+=(\"${w#\"$colon\"}\")\n"
    "    done\n"
    "    return 0\n"
    "}\n"
    "\n"
    "complete -F _aigwctl aigwctl\n";

static void gen_bash(void)
{
    strlist_t pre = { 0 };
    tree_prefixes(&pre);
    fputs(bash_head, stdout);

    puts("\n# The words that may follow the command words $1 (\"\" at the start).\n"
         "_aigwctl_children()\n{\n    case $1 in");
    for (size_t i = 0; i < pre.n; i++) {
        strlist_t kids = { 0 };
        tree_children(pre.v[i], &kids);
        fputs("    ", stdout);
        sh_quote(pre.v[i]);
        fputs(") echo", stdout);
        for (size_t k = 0; k < kids.n; k++) {
            putchar(' ');
            sh_quote(kids.v[k]);
        }
        puts(" ;;");
        sl_free(&kids);
    }
    puts("    esac\n}");

    size_t n;
    const ctl_cmd_t *const *all = ctl_commands(&n);
    puts("\n# Succeeds when the words $1 are a whole command.\n_aigwctl_is_command()\n{\n"
         "    case $1 in");
    for (size_t i = 0; i < n; i++) {
        if (all[i]->hidden)
            continue;
        fputs("    ", stdout);
        sh_quote(all[i]->words);
        puts(") return 0 ;;");
    }
    puts("    esac\n    return 1\n}");

    /* Flags. */
    fputs("\n# The flags of command $1, the global ones included.\n_aigwctl_flags()\n{\n    local g=",
          stdout);
    {
        char buf[4096];
        size_t k = 0;
        buf[0] = '\0';
        for (const ctl_flag_t *f = ctl_global_flags; f->name && k < sizeof(buf); f++) {
            if (f->short_name)
                k += (size_t)snprintf(buf + k, sizeof(buf) - k, "%s-%c", k ? " " : "", f->short_name);
            if (k < sizeof(buf))
                k += (size_t)snprintf(buf + k, sizeof(buf) - k, "%s--%s", k ? " " : "", f->name);
        }
        sh_quote(buf);
    }
    puts("\n    case $1 in");
    for (size_t i = 0; i < n; i++) {
        const ctl_cmd_t *c = all[i];
        if (c->hidden || !c->flags || !c->flags[0].name)
            continue;
        fputs("    ", stdout);
        sh_quote(c->words);
        fputs(") echo", stdout);
        for (const ctl_flag_t *f = c->flags; f->name; f++) {
            if (f->short_name)
                printf(" -%c", f->short_name);
            fputs(" ", stdout);
            char nm[128];
            snprintf(nm, sizeof(nm), "--%s", f->name);
            sh_quote(nm);
        }
        puts(" \"$g\" ;;");
    }
    puts("    *) echo \"$g\" ;;\n    esac\n}");

    puts("\n# Succeeds when flag $2 of command $1 takes a value, and prints what completes it:\n"
         "# nothing, file, dir, words separated by '|', or a kind for 'aigwctl __complete'.\n"
         "_aigwctl_flag_value()\n{\n    case \"$1|$2\" in");
    for (size_t i = 0; i < n; i++) {
        const ctl_cmd_t *c = all[i];
        if (c->hidden || !c->flags)
            continue;
        for (const ctl_flag_t *f = c->flags; f->name; f++) {
            for (int form = 0; form < 2; form++) {
                char key[256];
                if (form == 0)
                    snprintf(key, sizeof(key), "%s|--%s", c->words, f->name);
                else if (f->short_name)
                    snprintf(key, sizeof(key), "%s|-%c", c->words, f->short_name);
                else
                    continue;
                fputs("    ", stdout);
                sh_quote(key);
                if (!f->metavar) {
                    puts(") return 1 ;;");
                } else if (*flag_spec(f)) {
                    fputs(")\n        echo ", stdout);
                    sh_quote(flag_spec(f));
                    puts("\n        return 0\n        ;;");
                } else {
                    puts(") return 0 ;;");
                }
            }
        }
    }
    puts("    esac\n    case $2 in");
    for (const ctl_flag_t *f = ctl_global_flags; f->name; f++) {
        fputs("    ", stdout);
        if (f->short_name)
            printf("-%c | ", f->short_name);
        printf("--%s", f->name);
        if (!f->metavar) {
            puts(") return 1 ;;");
        } else if (*flag_spec(f)) {
            fputs(")\n        echo ", stdout);
            sh_quote(flag_spec(f));
            puts("\n        return 0\n        ;;");
        } else {
            puts(") return 0 ;;");
        }
    }
    puts("    esac\n    return 1\n}");

    puts("\n# What completes the arguments of command $1.\n_aigwctl_positional()\n{\n    case $1 in");
    for (size_t i = 0; i < n; i++) {
        const ctl_cmd_t *c = all[i];
        if (c->hidden || !*pos_spec(c))
            continue;
        fputs("    ", stdout);
        sh_quote(c->words);
        fputs(") echo ", stdout);
        sh_quote(pos_spec(c));
        puts(" ;;");
    }
    puts("    esac\n}");
    fputs(bash_body, stdout);
    sl_free(&pre);
}

/* ---- zsh ---- */

static const char zsh_body[] =
    "\n"
    "# Offer what completes a value ($1, see _aigwctl_flag_value).\n"
    "_aigwctl_values() {\n"
    "  local spec=$1\n"
    "  local -a vals\n"
    "  case $spec in\n"
    "    ('') _message -e values 'value' ;;\n"
    "    (file) _files ;;\n"
    "    (dir) _files -/ ;;\n"
    "    (*'|'*)\n"
    "      vals=(${(s:|:)spec})\n"
    "      _wanted values expl value compadd -a vals\n"
    "      ;;\n"
    "    (*)\n"
    "      vals=(${(f)\"$(${_aigwctl_prog} \"${_aigwctl_conn[@]}\" __complete \"$spec\" 2>/dev/null)\"})\n"
    "      _wanted values expl \"$spec\" compadd -a vals\n"
    "      ;;\n"
    "  esac\n"
    "}\n"
    "\n"
    "_aigwctl() {\n"
    "  local i w cmdpath='' cmd_done='' dashdash='' valflag='' cur=${words[CURRENT]} expl\n"
    "  local -a cands\n"
    "  typeset -g _aigwctl_prog=${words[1]/#\\~/$HOME}\n"
    "  typeset -ga _aigwctl_conn\n"
    "  _aigwctl_conn=()\n"
    "  # The command words typed so far, and the connection flags to pass to __complete.\n"
    "  for ((i = 2; i < CURRENT; i++)); do\n"
    "    w=${words[i]}\n"
    "    if [[ -z $dashdash && $w == -?* ]]; then\n"
    "      if [[ $w == -- ]]; then\n"
    "        dashdash=1\n"
    "        continue\n"
    "      fi\n"
    "      [[ -n $cmdpath ]] && cmd_done=1\n"
    "      [[ $w == --admin-url=* || $w == --context=* ]] && _aigwctl_conn+=($w)\n"
    "      if [[ $w != *=* && $w != -[^-]?* ]] && _aigwctl_flag_value \"$cmdpath\" \"$w\"; then\n"
    "        if (( i + 1 == CURRENT )); then\n"
    "          valflag=$w\n"
    "        elif [[ $w == --admin-url || $w == --context ]]; then\n"
    "          _aigwctl_conn+=($w ${words[i+1]})\n"
    "        fi\n"
    "        (( i++ ))\n"
    "      fi\n"
    "      continue\n"
    "    fi\n"
    "    _aigwctl_children \"$cmdpath\"\n"
    "    if [[ -z $cmd_done && -n ${(M)reply:#${w}:*} ]]; then\n"
    "      cmdpath=${cmdpath:+$cmdpath }$w\n"
    "    else\n"
    "      cmd_done=1\n"
    "    fi\n"
    "  done\n"
    "\n"
    "  if [[ -n $valflag ]]; then\n"
    "    _aigwctl_flag_value \"$cmdpath\" \"$valflag\"\n"
    "    _aigwctl_values \"$REPLY\"\n"
    "    return\n"
    "  fi\n"
    "  if [[ -z $dashdash && $cur == --*=* ]]; then\n"
    "    _aigwctl_flag_value \"$cmdpath\" \"${cur%%=*}\"\n"
    "    compset -P '*='\n"
    "    _aigwctl_values \"$REPLY\"\n"
    "    return\n"
    "  fi\n"
    "  if [[ -z $dashdash && $cur == -* ]]; then\n"
    "    _aigwctl_flags \"$cmdpath\"\n"
    "    cands=(\"${reply[@]}\")\n"
    "    _describe -t options 'flag' cands\n"
    "    return\n"
    "  fi\n"
    "  local ret=1\n"
    "  if [[ -z $cmd_done ]]; then\n"
    "    _aigwctl_children \"$cmdpath\"\n"
    "    cands=(\"${reply[@]}\")\n"
    "    (( ${#cands} )) && _describe -t commands 'aigwctl command' cands && ret=0\n"
    "  fi\n"
    "  if _aigwctl_is_command \"$cmdpath\"; then\n"
    "    _aigwctl_positional \"$cmdpath\"\n"
    "    [[ -n $REPLY ]] && _aigwctl_values \"$REPLY\" && ret=0\n"
    "  fi\n"
    "  return ret\n"
    "}\n"
    "\n"
    "_aigwctl \"$@\"\n";

/* A zsh _describe item "word:description" (':' in the word escaped). */
static void zsh_item(const char *word, const char *desc)
{
    char buf[1024];
    size_t k = 0;
    for (const char *p = word; *p && k + 2 < sizeof(buf); p++) {
        if (*p == ':')
            buf[k++] = '\\';
        buf[k++] = *p;
    }
    snprintf(buf + k, sizeof(buf) - k, ":%s", desc ? desc : "");
    sh_quote(buf);
}

static void zsh_flag_items(const ctl_flag_t *f)
{
    for (; f && f->name; f++) {
        char nm[128];
        if (f->short_name) {
            snprintf(nm, sizeof(nm), "-%c", f->short_name);
            fputs("\n    ", stdout);
            zsh_item(nm, f->help);
        }
        snprintf(nm, sizeof(nm), "--%s", f->name);
        fputs("\n    ", stdout);
        zsh_item(nm, f->help);
    }
}

static void zsh_flag_case(const char *prefix, const ctl_flag_t *f)
{
    fputs("    ", stdout);
    if (prefix) {
        char key[256];
        snprintf(key, sizeof(key), "%s|--%s", prefix, f->name);
        sh_quote(key);
        if (f->short_name) {
            snprintf(key, sizeof(key), "%s|-%c", prefix, f->short_name);
            fputs(" | ", stdout);
            sh_quote(key);
        }
    } else {
        if (f->short_name)
            printf("-%c | ", f->short_name);
        printf("--%s", f->name);
    }
    if (!f->metavar) {
        puts(") return 1 ;;");
    } else {
        fputs(") REPLY=", stdout);
        sh_quote(flag_spec(f));
        puts("; return 0 ;;");
    }
}

static void gen_zsh(void)
{
    size_t n;
    const ctl_cmd_t *const *all = ctl_commands(&n);
    strlist_t pre = { 0 };
    tree_prefixes(&pre);
    puts("#compdef aigwctl\n"
         "# zsh completion for aigwctl(1).\n"
         "#\n"
         "# Generated by 'aigwctl __gen zsh' from aigwctl's command table (aigwctl/gen.c).\n"
         "# Do not edit: change the table and run 'cmake --build BUILD --target aigwctl-docs'.\n"
         "#\n"
         "# Install as _aigwctl in a directory of $fpath, for example\n"
         "# /usr/local/share/zsh/site-functions/_aigwctl.\n");

    puts("# reply: the words that may follow the command words $1 (\"\" at the start), as\n"
         "# word:description.\n_aigwctl_children() {\n  case $1 in");
    for (size_t i = 0; i < pre.n; i++) {
        strlist_t kids = { 0 };
        tree_children(pre.v[i], &kids);
        fputs("    (", stdout);
        sh_quote(pre.v[i]);
        fputs(") reply=(", stdout);
        for (size_t k = 0; k < kids.n; k++) {
            char *d = child_desc(pre.v[i], kids.v[k]);
            fputs("\n      ", stdout);
            zsh_item(kids.v[k], d);
            free(d);
        }
        puts("\n    ) ;;");
        sl_free(&kids);
    }
    puts("    (*) reply=() ;;\n  esac\n}\n");

    puts("# Succeeds when the words $1 are a whole command.\n_aigwctl_is_command() {\n  case $1 in");
    for (size_t i = 0; i < n; i++) {
        if (all[i]->hidden)
            continue;
        fputs("    (", stdout);
        sh_quote(all[i]->words);
        puts(") return 0 ;;");
    }
    puts("  esac\n  return 1\n}\n");

    puts("# reply: the flags of command $1, the global ones included, as flag:description.\n"
         "_aigwctl_flags() {\n  case $1 in");
    for (size_t i = 0; i < n; i++) {
        const ctl_cmd_t *c = all[i];
        if (c->hidden || !c->flags || !c->flags[0].name)
            continue;
        fputs("    (", stdout);
        sh_quote(c->words);
        fputs(") reply=(", stdout);
        zsh_flag_items(c->flags);
        puts("\n    ) ;;");
    }
    puts("    (*) reply=() ;;\n  esac\n  reply+=(");
    zsh_flag_items(ctl_global_flags);
    puts("\n  )\n}\n");

    puts("# Succeeds when flag $2 of command $1 takes a value; REPLY: what completes it (nothing,\n"
         "# file, dir, words separated by '|', or a kind for 'aigwctl __complete').\n"
         "_aigwctl_flag_value() {\n  REPLY=''\n  case \"$1|$2\" in");
    for (size_t i = 0; i < n; i++) {
        const ctl_cmd_t *c = all[i];
        if (c->hidden || !c->flags)
            continue;
        for (const ctl_flag_t *f = c->flags; f->name; f++)
            zsh_flag_case(c->words, f);
    }
    puts("  esac\n  case $2 in");
    for (const ctl_flag_t *f = ctl_global_flags; f->name; f++)
        zsh_flag_case(NULL, f);
    puts("  esac\n  return 1\n}\n");

    puts("# REPLY: what completes the arguments of command $1.\n_aigwctl_positional() {\n"
         "  REPLY=''\n  case $1 in");
    for (size_t i = 0; i < n; i++) {
        const ctl_cmd_t *c = all[i];
        if (c->hidden || !*pos_spec(c))
            continue;
        fputs("    (", stdout);
        sh_quote(c->words);
        fputs(") REPLY=", stdout);
        sh_quote(pos_spec(c));
        puts(" ;;");
    }
    puts("  esac\n}");
    fputs(zsh_body, stdout);
    sl_free(&pre);
}

/* ---- fish ---- */

static const char fish_head[] =
    "# fish completion for aigwctl(1).\n"
    "#\n"
    "# Generated by 'aigwctl __gen fish' from aigwctl's command table (aigwctl/gen.c).\n"
    "# Do not edit: change the table and run 'cmake --build BUILD --target aigwctl-docs'.\n"
    "#\n"
    "# Install as aigwctl.fish in a directory of $fish_complete_path, for example\n"
    "# ~/.config/fish/completions/aigwctl.fish.\n";

static const char fish_funcs[] =
    "\n"
    "# The state of the command line before the cursor: line 1 'p:' and the command words typed,\n"
    "# line 2 1 when the command words are over, then the connection flags for __complete.\n"
    "function __aigwctl_parse\n"
    "    set -l toks (commandline -opc)\n"
    "    set -l path ''\n"
    "    set -l done 0\n"
    "    set -l dd 0\n"
    "    set -l conn\n"
    "    set -l n (count $toks)\n"
    "    set -l i 2\n"
    "    while test $i -le $n\n"
    "        set -l w $toks[$i]\n"
    "        if test $dd = 0; and string match -qr -- '^-.' $w\n"
    "            if test \"$w\" = --\n"
    "                set dd 1\n"
    "            else\n"
    "                test -n \"$path\"; and set done 1\n"
    "                string match -qr -- '^--(admin-url|context)=' $w; and set -a conn $w\n"
    "                if not string match -q -- '*=*' $w; and not string match -qr -- '^-[^-].' $w\n"
    "                    and __aigwctl_flag_value \"$path\" $w >/dev/null\n"
    "                    set i (math $i + 1)\n"
    "                    if contains -- $w --admin-url --context; and test $i -le $n\n"
    "                        set -a conn $w $toks[$i]\n"
    "                    end\n"
    "                end\n"
    "            end\n"
    "        else if test $done = 0; and contains -- $w (__aigwctl_children \"$path\")\n"
    "            if test -z \"$path\"\n"
    "                set path $w\n"
    "            else\n"
    "                set path \"$path $w\"\n"
    "            end\n"
    "        else\n"
    "            set done 1\n"
    "        end\n"
    "        set i (math $i + 1)\n"
    "    end\n"
    "    echo \"p:$path\"\n"
    "    echo $done\n"
    "    set -q conn[1]; and printf '%s\\n' $conn\n"
    "end\n"
    "\n"
    "# True when the command words typed are $argv[1] and more may follow.\n"
    "function __aigwctl_at\n"
    "    set -l st (__aigwctl_parse)\n"
    "    test \"$st[1]\" = \"p:$argv[1]\"; and test \"$st[2]\" = 0\n"
    "end\n"
    "\n"
    "# True when the command is $argv[1].\n"
    "function __aigwctl_cmd\n"
    "    set -l st (__aigwctl_parse)\n"
    "    test \"$st[1]\" = \"p:$argv[1]\"\n"
    "end\n"
    "\n"
    "# Live names of kind $argv[1] from the admin API (with the connection flags typed).\n"
    "function __aigwctl_live\n"
    "    set -l st (__aigwctl_parse)\n"
    "    set -l prog (commandline -opc)[1]\n"
    "    command $prog $st[3..-1] __complete $argv[1] 2>/dev/null\n"
    "end\n"
    "\n"
    "complete -c aigwctl -f\n";

/* The fish completion options for a value spec (after -l/-s). */
static void fish_value(const char *spec)
{
    if (strcmp(spec, "file") == 0) {
        fputs(" -r -F", stdout);
    } else if (strcmp(spec, "dir") == 0) {
        fputs(" -x -a '(__fish_complete_directories)'", stdout);
    } else if (strchr(spec, '|')) {
        char buf[512];
        snprintf(buf, sizeof(buf), "%s", spec);
        for (char *p = buf; *p; p++)
            if (*p == '|')
                *p = ' ';
        fputs(" -x -a ", stdout);
        fish_quote(buf);
    } else if (*spec) {
        char buf[256];
        snprintf(buf, sizeof(buf), "(__aigwctl_live %s)", spec);
        fputs(" -x -a ", stdout);
        fish_quote(buf);
    } else {
        fputs(" -x", stdout);
    }
}

static void fish_flag(const char *cond, const ctl_flag_t *f)
{
    fputs("complete -c aigwctl", stdout);
    if (cond) {
        fputs(" -n ", stdout);
        fish_quote(cond);
    }
    if (f->short_name)
        printf(" -s %c", f->short_name);
    printf(" -l %s", f->name);
    if (f->metavar)
        fish_value(flag_spec(f));
    fputs(" -d ", stdout);
    fish_quote(f->help ? f->help : "");
    putchar('\n');
}

static void gen_fish(void)
{
    size_t n;
    const ctl_cmd_t *const *all = ctl_commands(&n);
    strlist_t pre = { 0 };
    tree_prefixes(&pre);
    fputs(fish_head, stdout);

    puts("\n# The words that may follow the command words $argv[1] ('' at the start).\n"
         "function __aigwctl_children\n    switch $argv[1]");
    for (size_t i = 0; i < pre.n; i++) {
        strlist_t kids = { 0 };
        tree_children(pre.v[i], &kids);
        fputs("        case ", stdout);
        fish_quote(pre.v[i]);
        fputs("\n            printf '%s\\n'", stdout);
        for (size_t k = 0; k < kids.n; k++) {
            putchar(' ');
            fish_quote(kids.v[k]);
        }
        putchar('\n');
        sl_free(&kids);
    }
    puts("    end\nend");

    puts("\n# Succeeds when flag $argv[2] of command $argv[1] takes a value.\n"
         "function __aigwctl_flag_value\n    switch \"$argv[1]|$argv[2]\"");
    for (size_t i = 0; i < n; i++) {
        const ctl_cmd_t *c = all[i];
        if (c->hidden || !c->flags)
            continue;
        for (const ctl_flag_t *f = c->flags; f->name; f++) {
            char key[256];
            snprintf(key, sizeof(key), "%s|--%s", c->words, f->name);
            fputs("        case ", stdout);
            fish_quote(key);
            if (f->short_name) {
                snprintf(key, sizeof(key), "%s|-%c", c->words, f->short_name);
                putchar(' ');
                fish_quote(key);
            }
            printf("\n            return %d\n", f->metavar ? 0 : 1);
        }
    }
    puts("    end\n    switch $argv[2]");
    for (const ctl_flag_t *f = ctl_global_flags; f->name; f++) {
        fputs("        case", stdout);
        if (f->short_name)
            printf(" -%c", f->short_name);
        printf(" --%s\n            return %d\n", f->name, f->metavar ? 0 : 1);
    }
    puts("    end\n    return 1\nend");
    fputs(fish_funcs, stdout);

    /* Command words, level by level. */
    for (size_t i = 0; i < pre.n; i++) {
        strlist_t kids = { 0 };
        tree_children(pre.v[i], &kids);
        if (kids.n)
            printf("\n# %s%s\n", *pre.v[i] ? "after: " : "commands", pre.v[i]);
        for (size_t k = 0; k < kids.n; k++) {
            char cond[300];
            snprintf(cond, sizeof(cond), "__aigwctl_at '%s'", pre.v[i]);
            char *d = child_desc(pre.v[i], kids.v[k]);
            fputs("complete -c aigwctl -n ", stdout);
            fish_quote(cond);
            fputs(" -a ", stdout);
            fish_quote(kids.v[k]);
            fputs(" -d ", stdout);
            fish_quote(d);
            putchar('\n');
            free(d);
        }
        sl_free(&kids);
    }

    /* Each command's flags and arguments. */
    for (size_t i = 0; i < n; i++) {
        const ctl_cmd_t *c = all[i];
        if (c->hidden || ((!c->flags || !c->flags[0].name) && !*pos_spec(c)))
            continue;
        char cond[300];
        snprintf(cond, sizeof(cond), "__aigwctl_cmd '%s'", c->words);
        printf("\n# %s\n", c->words);
        for (const ctl_flag_t *f = c->flags; f && f->name; f++)
            fish_flag(cond, f);
        const char *ps = pos_spec(c);
        if (*ps) {
            fputs("complete -c aigwctl -n ", stdout);
            fish_quote(cond);
            if (strcmp(ps, "file") == 0) {
                fputs(" -F\n", stdout);
            } else {
                fish_value(ps);
                putchar('\n');
            }
        }
    }

    puts("\n# Global flags");
    for (const ctl_flag_t *f = ctl_global_flags; f->name; f++)
        fish_flag(NULL, f);
    sl_free(&pre);
}

/* ---- __complete ---- */

/* Print field a (or b when a is missing) of every item of list path. One page, no error. */
static void live_names(ctl_t *c, const char *path, const char *a, const char *b)
{
    ctl_resp_t r;
    char p[256];
    snprintf(p, sizeof(p), "%s?size=1000", path);
    if (ctl_call(c, "GET", p, NULL, NULL, 0, &r) == CTL_OK) {
        json_t *data = json_object_get(r.json, "data");
        size_t i;
        json_t *it;
        json_array_foreach(data, i, it) {
            const char *v = json_string_value(json_object_get(it, a));
            if (!v && b)
                v = json_string_value(json_object_get(it, b));
            if (v && *v && !strchr(v, '\n'))
                printf("%s\n", v);
        }
    }
    ctl_resp_free(&r);
}

static void plugin_names(ctl_t *c)
{
    ctl_resp_t r;
    if (ctl_call(c, "GET", "/", NULL, NULL, 0, &r) == CTL_OK) {
        json_t *av = json_object_get(json_object_get(r.json, "plugins"), "available_on_server");
        if (json_is_object(av)) {
            const char *k;
            json_t *v;
            json_object_foreach(av, k, v) printf("%s\n", k);
        } else if (json_is_array(av)) {
            size_t i;
            json_t *v;
            json_array_foreach(av, i, v) if (json_is_string(v)) printf("%s\n", json_string_value(v));
        }
    }
    ctl_resp_free(&r);
}

static void context_names(void)
{
    char path[4096];
    const char *x = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    if (x && *x)
        snprintf(path, sizeof(path), "%s/aigw/aigwctl.conf", x);
    else if (home && *home)
        snprintf(path, sizeof(path), "%s/.config/aigw/aigwctl.conf", home);
    else
        return;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof(line), f)) {
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "[context", 8) != 0 || (p[8] != ' ' && p[8] != '\t'))
            continue;
        p += 8;
        while (*p == ' ' || *p == '\t' || *p == '"')
            p++;
        char *e = strchr(p, ']');
        if (!e)
            continue;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '"'))
            e--;
        if (e > p)
            printf("%.*s\n", (int)(e - p), p);
    }
    fclose(f);
}

static const char *const entity_kinds[] = { "service", "route", "consumer", "plugin", "certificate",
                                            "sni", "upstream", "target", "ca-certificate" };

static const struct {
    const char *kind, *path, *a, *b;
} live_kinds[] = {
    { "service", "/services", "name", "id" },     { "route", "/routes", "name", "id" },
    { "consumer", "/consumers", "username", "id" }, { "upstream", "/upstreams", "name", "id" },
    { "plugin", "/plugins", "id", NULL },         { "certificate", "/certificates", "id", NULL },
    { "ca-certificate", "/ca_certificates", "id", NULL }, { "ca_certificate", "/ca_certificates", "id", NULL },
    { "sni", "/snis", "name", "id" },
};

static int run_complete(ctl_t *c, const ctl_cmd_t *cmd, ctl_args_t *a)
{
    (void)cmd;
    if (a->npos < 1)
        return CTL_OK;
    /* Silent: a completion must never print into the user's line. */
    fflush(stderr);
    int fd = open("/dev/null", O_WRONLY);
    if (fd >= 0) {
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
    if (c->timeout_ms > 2000)
        c->timeout_ms = 2000;
    c->verbose = 0;
    char kind[64];
    snprintf(kind, sizeof(kind), "%s", a->pos[0]);
    size_t kl = strlen(kind);
    if (kl > 1 && kind[kl - 1] == 's' && strcmp(kind, "ids") != 0)
        kind[kl - 1] = '\0'; /* services -> service */
    for (size_t i = 0; i < sizeof(live_kinds) / sizeof(live_kinds[0]); i++)
        if (strcmp(kind, live_kinds[i].kind) == 0) {
            live_names(c, live_kinds[i].path, live_kinds[i].a, live_kinds[i].b);
            return CTL_OK;
        }
    if (strcmp(kind, "plugin-name") == 0) {
        plugin_names(c);
    } else if (strcmp(kind, "entity") == 0 || strcmp(kind, "schema-name") == 0) {
        for (size_t i = 0; i < sizeof(entity_kinds) / sizeof(entity_kinds[0]); i++)
            printf("%s\n", entity_kinds[i]);
        if (strcmp(kind, "schema-name") == 0)
            plugin_names(c);
    } else if (strcmp(kind, "method") == 0) {
        fputs("GET\nPOST\nPUT\nPATCH\nDELETE\nHEAD\nOPTIONS\n", stdout);
    } else if (strcmp(kind, "context") == 0) {
        context_names();
    } else if (strcmp(kind, "url") == 0) {
        const char *seen[4] = { 0 };
        const char *cand[4] = { getenv("AIGW_ADMIN_URL"), getenv("AIGW_PROXY_URL"),
                                "http://127.0.0.1:8001", "http://127.0.0.1:8000" };
        for (int i = 0; i < 4; i++) {
            int dup = !cand[i] || !*cand[i];
            for (int k = 0; k < i && !dup; k++)
                dup = seen[k] && strcmp(seen[k], cand[i]) == 0;
            if (!dup)
                printf("%s\n", cand[i]);
            seen[i] = cand[i];
        }
    }
    return CTL_OK;
}

/* ---- __gen ---- */

static int run_gen(ctl_t *c, const ctl_cmd_t *cmd, ctl_args_t *a)
{
    (void)c;
    if (a->npos != 1)
        return ctl_usage_error(cmd, "name one of man, bash, zsh, fish");
    const char *w = a->pos[0];
    if (strcmp(w, "man") == 0)
        gen_man();
    else if (strcmp(w, "bash") == 0)
        gen_bash();
    else if (strcmp(w, "zsh") == 0)
        gen_zsh();
    else if (strcmp(w, "fish") == 0)
        gen_fish();
    else
        return ctl_usage_error(cmd, "'%s' is not one of man, bash, zsh, fish", w);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "aigwctl: cannot write the output\n");
        return CTL_EAPI;
    }
    return CTL_OK;
}

static const ctl_cmd_t cmds[] = {
    { "__gen", "man|bash|zsh|fish",
      "Print the man page or a shell's completion script, generated from the command table", NULL,
      NULL, "man|bash|zsh|fish", run_gen, NULL, 1 },
    { "__complete", "KIND",
      "Print the live names of an entity kind, one a line, for the shell completions (silent)",
      NULL, NULL, NULL, run_complete, NULL, 1 },
};

const ctl_cmd_t *ctl_cmds_gen(size_t *n)
{
    *n = sizeof(cmds) / sizeof(cmds[0]);
    return cmds;
}
