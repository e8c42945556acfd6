/* aigwctl/ctl.h: what aigwctl's modules share: the command table, parsed arguments, the
 * session (connection and output settings), the admin API client and output helpers.
 *
 * aigwctl is a client of the admin API only: it links common/ and libraries, never aigwd code.
 * One process, one thread (the load tester drives its own curl multi handle on it). */
#ifndef AIGWCTL_CTL_H
#define AIGWCTL_CTL_H
#include <curl/curl.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* Exit codes (documented in aigwctl(1) and --help). */
enum {
    CTL_OK = 0,
    CTL_EAPI = 1,   /* the admin API answered with an error, or a check failed */
    CTL_EUSAGE = 2, /* bad command line */
    CTL_ECONN = 3,  /* cannot connect (refused, DNS, TLS, timeout) */
    CTL_EEXPECT = 4 /* loadtest --expect not met */
};

typedef enum { CTL_OUT_HUMAN = 0, CTL_OUT_JSON, CTL_OUT_YAML, CTL_OUT_IDS } ctl_output_t;

/* One flag of a command. Long form "--name"; short form "-c" when short_name is set.
 * metavar NULL: a switch (no value). complete: what the shells offer for its value:
 * NULL (nothing), "file", "dir", an entity kind ("service", "consumer", "route", "upstream",
 * "plugin-name", "entity", ...) or fixed words separated by '|' ("json|yaml|ids"). */
typedef struct ctl_flag {
    const char *name;
    char short_name;
    const char *metavar;
    const char *help;
    const char *complete;
    int repeat; /* may be given several times; all values kept */
} ctl_flag_t;

typedef struct ctl ctl_t;
typedef struct ctl_args ctl_args_t;
struct ctl_cmd;
typedef int (*ctl_run_fn)(ctl_t *c, const struct ctl_cmd *cmd, ctl_args_t *a);

/* One command. `words` are the command words as typed ("service create", "jwt mint",
 * "loadtest"). `usage` is the positional part of the synopsis ("NAME [key=value ...]").
 * `flags` ends with an entry whose name is NULL (or is NULL). `pos_complete` is what the shells
 * offer for positional words (same vocabulary as ctl_flag_t.complete). `data` is the module's. */
typedef struct ctl_cmd {
    const char *words;
    const char *usage;
    const char *summary; /* one line, no final period */
    const char *details; /* paragraphs for --help and the man page (plain text), or NULL */
    const ctl_flag_t *flags;
    const char *pos_complete;
    ctl_run_fn run;
    const void *data;
    int hidden; /* not listed in help, man page or completions */
} ctl_cmd_t;

/* Parsed arguments of one command: its positional words (key=value pairs included, in order)
 * and the flags given (the command's and the global ones). */
typedef struct ctl_optval {
    const char *name; /* the flag's long name */
    const char *value; /* NULL for a switch */
} ctl_optval_t;

struct ctl_args {
    int npos;
    char **pos;
    int nopt;
    ctl_optval_t *opt;
};

/* The last value given for --name, or NULL. */
const char *ctl_opt(const ctl_args_t *a, const char *name);
/* 1 when the switch (or valued flag) --name was given. */
int ctl_opt_on(const ctl_args_t *a, const char *name);
/* All values of a repeatable flag, in order; returns how many (at most max stored). */
size_t ctl_opt_all(const ctl_args_t *a, const char *name, const char **out, size_t max);

/* The session: resolved connection and output settings. */
struct ctl {
    const char *admin_url; /* no trailing slash */
    const char *proxy_url; /* the proxy of the context (loadtest's default), no trailing slash */
    const char *context;   /* name of the context in use, or NULL */
    const char *ca_cert;
    int insecure;
    long timeout_ms;
    const char *headers[32]; /* "Name: value" added to every admin request */
    size_t nheaders;
    int verbose;
    ctl_output_t output;
    int output_set; /* -o given explicitly */
    int color;      /* stdout is a TTY and NO_COLOR is unset and --no-color not given */
    int tty;        /* stdout is a TTY */
    int in_shell;   /* running inside the interactive shell */
    CURL *curl;     /* reused for keep-alive; owned by the session */
    char *owned[16]; /* strings the session owns (from contexts); freed at exit */
    size_t nowned;
};

/* ---- the command table (table.c) ---- */

/* Every command, in help order. Built once; lives until exit. */
const ctl_cmd_t *const *ctl_commands(size_t *n);
void ctl_commands_free(void);
/* The flags every command accepts (--admin-url, -o, -v, ...). Ends with name NULL. */
extern const ctl_flag_t ctl_global_flags[];

/* Modules contribute their commands with these (each returns a static or once-built array). */
const ctl_cmd_t *ctl_cmds_basic(size_t *n);    /* status, info, version, api, schema */
const ctl_cmd_t *ctl_cmds_entity(size_t *n);   /* service/route/.../credential CRUD */
const ctl_cmd_t *ctl_cmds_jwt(size_t *n);      /* jwt mint, jwt decode */
const ctl_cmd_t *ctl_cmds_loadtest(size_t *n); /* loadtest */
const ctl_cmd_t *ctl_cmds_config(size_t *n);   /* config dump/validate/diff/sync */
const ctl_cmd_t *ctl_cmds_shell(size_t *n);    /* shell */
const ctl_cmd_t *ctl_cmds_gen(size_t *n);      /* hidden: generate man page and completions */

/* ---- jwt (jwt.c), shared with the load tester ---- */

/* Mint a token for consumer's jwt credential, as `jwt mint` does with no extra claims: key picks
 * the credential when the consumer has several (NULL: the only one), private_key_file is the PEM
 * for RS and ES credentials, ttl_s the lifetime. CTL_OK with *token (caller frees), or an exit
 * code with the message printed. */
int ctl_jwt_mint(ctl_t *c, const char *consumer, const char *key, const char *private_key_file,
                 long ttl_s, char **token);
/* Parse a duration: plain seconds or a number with s, m, h, d (ms too); 0 ok, -1 if malformed. */
int ctl_parse_duration(const char *s, double *seconds);

/* ---- dispatch (main.c) ---- */

/* Run one command line (argv without the program name) in session c: finds the command,
 * parses its flags, calls it. Returns the exit code. Used by main and by the shell. */
int ctl_dispatch(ctl_t *c, int argc, char **argv);
/* Print a usage error naming the command and a hint; returns CTL_EUSAGE. */
int ctl_usage_error(const ctl_cmd_t *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print --help of one command to f. */
void ctl_help_cmd(FILE *f, const ctl_cmd_t *cmd);
/* Levenshtein distance, for "did you mean". */
size_t ctl_edit_distance(const char *a, const char *b);

/* ---- contexts (context.c) ---- */

/* Apply the named context (or the config file's current-context when name is NULL) from
 * $XDG_CONFIG_HOME/aigw/aigwctl.conf (~/.config/aigw/aigwctl.conf). Values given on the command
 * line or in the environment win; the caller applies those after. 0 ok, CTL_EUSAGE on a missing
 * named context or a malformed file (message printed). A missing file is fine when name is NULL. */
int ctl_context_apply(ctl_t *c, const char *name);

/* ---- the admin API client (http.c) ---- */

typedef struct ctl_resp {
    long status;  /* HTTP status, 0 when no answer */
    char *body;   /* NUL-terminated, may be NULL */
    size_t len;
    json_t *json; /* parsed body when it is JSON, else NULL */
} ctl_resp_t;

/* A request to the admin API: method, path (starting with '/', query included) and an optional
 * body: JSON (json != NULL) or form pairs "key=value" as typed (urlencoded by the client).
 * Returns CTL_OK for 1xx-3xx, CTL_EAPI for 4xx/5xx (out filled), CTL_ECONN when no answer
 * (message printed). out must be freed with ctl_resp_free. */
int ctl_call(ctl_t *c, const char *method, const char *path, json_t *json,
             char *const *form, size_t nform, ctl_resp_t *out);
void ctl_resp_free(ctl_resp_t *r);
/* Print an admin API error readably on stderr (message, field errors); returns CTL_EAPI. */
int ctl_report_error(ctl_t *c, const ctl_resp_t *r);
/* Percent-encode s for a path segment or query value (caller frees). */
char *ctl_escape(const char *s);
/* Apply the session's TLS, timeout and header settings to an easy handle (the load tester
 * uses this for its own handles; with admin = 0 the admin headers are not added). */
void ctl_curl_setup(ctl_t *c, CURL *h, int admin);
/* GET every page of a paginated list (path like "/services"), appending data items to out
 * (a JSON array). Returns like ctl_call. */
int ctl_list_all(ctl_t *c, const char *path, json_t *out);

/* ---- output (output.c) ---- */

/* Print an entity (object) or a list (array, or {"data": [...]}) in the session's format.
 * columns: for the human table, NULL-terminated field names to show (NULL: a default set). */
void ctl_print(ctl_t *c, json_t *v, const char *const *columns);
/* Print v as YAML on f (block style, keys in the order jansson keeps). */
void ctl_print_yaml(FILE *f, json_t *v);
/* Print v as indented JSON on f. */
void ctl_print_json(FILE *f, json_t *v);
/* Colour helpers: return the escape when c->color, else "". */
const char *ctl_bold(const ctl_t *c);
const char *ctl_red(const ctl_t *c);
const char *ctl_green(const ctl_t *c);
const char *ctl_reset(const ctl_t *c);

#endif
