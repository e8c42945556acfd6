/* aigwd/main.c: the command line. `aigwd start|stop|reload|health|check|version`. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cluster/proto.h"
#include "core/conf.h"
#include "core/daemon.h"
#include "declarative/declarative.h"
#include "store/migrate_cli.h"

extern char **environ;

typedef struct command {
    const char *name;
    const char *args;
    const char *summary;
    int (*run)(int argc, char **argv);
} command_t;

static int cmd_start(int argc, char **argv);
static int cmd_stop(int argc, char **argv);
static int cmd_reload(int argc, char **argv);
static int cmd_health(int argc, char **argv);
static int cmd_check(int argc, char **argv);
static int cmd_version(int argc, char **argv);
static int cmd_hybrid(int argc, char **argv);

static const command_t commands[] = {
    { "start", "[-c FILE] [-p PREFIX] [--daemon]",
      "start aigwd (in the foreground unless --daemon)", cmd_start },
    { "stop", "[-c FILE] [-p PREFIX]",
      "stop the aigwd running in PREFIX, letting in-flight requests finish", cmd_stop },
    { "reload", "[-c FILE] [-p PREFIX]",
      "re-read the configuration and certificates of the running aigwd (SIGHUP)", cmd_reload },
    { "health", "[-c FILE] [-p PREFIX]", "tell whether aigwd is running in PREFIX", cmd_health },
    { "check", "FILE", "validate a configuration file", cmd_check },
    { "migrations", "bootstrap|up|list|reset [--yes] [-c FILE] [-p PREFIX]",
      "prepare or upgrade the database (SQLite or PostgreSQL)", aigw_migrations_cli },
    { "config", "init [FILE] | parse FILE | db_import FILE | db_export [FILE] [-c FILE] [-p PREFIX]",
      "use declarative configuration files (Kong's kong.yml format)", aigw_config_cli },
    { "hybrid", "gen_cert [CERT KEY] [-d DAYS]",
      "make the certificate/key pair that hybrid mode nodes share (./cluster.crt, "
      "./cluster.key)", cmd_hybrid },
    { "version", "", "print the version", cmd_version },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
    fprintf(f, "Usage: aigwd COMMAND [OPTIONS]\n\n"
               "aigw: a secure, Kong-compatible API gateway for AI traffic.\n\nCommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nOptions:\n"
               "  -c, --conf FILE     configuration file (default /etc/aigw/aigw.conf if present)\n"
               "  -p, --prefix DIR    prefix directory (overrides `prefix` in FILE and env)\n"
               "  -h, --help          show help for a command\n\n"
               "Configuration keys may also be given as AIGW_<KEY> or KONG_<KEY> environment\n"
               "variables. See aigwd(8) and aigw.conf(5).\n");
}

static void command_usage(const command_t *c, FILE *f)
{
    fprintf(f, "Usage: aigwd %s %s\n\n%s.\n", c->name, c->args, c->summary);
    if (strcmp(c->name, "hybrid") == 0) {
        fprintf(f, "\nThe certificate is self-signed, Ed25519, with CN kong_clustering; the key\n"
                   "file is created with mode 0600. Existing files are never overwritten.\n"
                   "\nOptions:\n"
                   "  -d, --days DAYS     validity (default 1095 days, 3 years)\n"
                   "  -h, --help          show this help\n");
        return;
    }
    if (strcmp(c->name, "check") != 0 && strcmp(c->name, "version") != 0)
        fprintf(f, "\nOptions:\n"
                   "  -c, --conf FILE     configuration file\n"
                   "  -p, --prefix DIR    prefix directory\n");
    if (strcmp(c->name, "start") == 0)
        fprintf(f, "  --daemon            run in the background; return once listening\n");
    fprintf(f, "  -h, --help          show this help\n");
}

typedef struct opts {
    const char *conf, *prefix;
    int daemon;
    const char *positional;
} opts_t;

/* Parses the options common to the commands. 0 ok, 1 help shown, -1 usage error. */
static int parse_opts(const command_t *c, int argc, char **argv, opts_t *o, int allow_daemon,
                      int want_positional)
{
    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            command_usage(c, stdout);
            return 1;
        } else if ((strcmp(a, "-c") == 0 || strcmp(a, "--conf") == 0) && !want_positional) {
            if (++i >= argc)
                goto missing;
            o->conf = argv[i];
        } else if ((strcmp(a, "-p") == 0 || strcmp(a, "--prefix") == 0) && !want_positional) {
            if (++i >= argc)
                goto missing;
            o->prefix = argv[i];
        } else if (strcmp(a, "--daemon") == 0 && allow_daemon) {
            o->daemon = 1;
        } else if (a[0] != '-' && want_positional && !o->positional) {
            o->positional = a;
        } else {
            fprintf(stderr, "aigwd %s: unknown argument '%s'\n", c->name, a);
            command_usage(c, stderr);
            return -1;
        }
        continue;
    missing:
        fprintf(stderr, "aigwd %s: %s needs a value\n", c->name, a);
        return -1;
    }
    if (want_positional && !o->positional) {
        fprintf(stderr, "aigwd %s: missing FILE\n", c->name);
        command_usage(c, stderr);
        return -1;
    }
    return 0;
}

static const command_t *find(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int cmd_start(int argc, char **argv)
{
    opts_t o;
    int r = parse_opts(find("start"), argc, argv, &o, 1, 0);
    if (r)
        return r > 0 ? 0 : 2;
    aigw_start_opts_t so = { .conf_path = o.conf, .prefix = o.prefix, .daemonize = o.daemon,
                             .ready_fd = -1 };
    return aigw_daemon_start(&so);
}

/* Resolves the prefix the way `start` would, for the commands that find a running aigwd. */
static int resolve_prefix(const opts_t *o, char *out, size_t cap)
{
    aigw_conf_t c;
    char err[1024];
    if (aigw_conf_load(&c, o->conf, o->prefix, environ, NULL, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "aigwd: %s\n", err);
        return -1;
    }
    snprintf(out, cap, "%s", c.prefix);
    aigw_conf_free(&c);
    return 0;
}

static int wait_gone(long pid, int seconds)
{
    struct timespec ts = { 0, 50 * 1000 * 1000 };
    for (int i = 0; i < seconds * 20; i++) {
        if (!aigw_daemon_pid_alive(pid))
            return 0;
        nanosleep(&ts, NULL);
    }
    return -1;
}

static int signal_running(const char *cmd, int argc, char **argv, int sig)
{
    opts_t o;
    int r = parse_opts(find(cmd), argc, argv, &o, 0, 0);
    if (r)
        return r > 0 ? 0 : 2;
    char prefix[4096];
    if (resolve_prefix(&o, prefix, sizeof(prefix)) != 0)
        return 1;
    long pid = aigw_daemon_running_pid(prefix);
    if (!pid) {
        fprintf(stderr, "aigwd: not running in %s\n", prefix);
        return 1;
    }
    if (kill((pid_t)pid, sig) != 0) {
        fprintf(stderr, "aigwd: cannot signal pid %ld: %s\n", pid, strerror(errno));
        return 1;
    }
    if (sig == SIGTERM) {
        if (wait_gone(pid, 30) != 0) {
            fprintf(stderr, "aigwd: pid %ld did not stop within 30 s\n", pid);
            return 1;
        }
        printf("aigwd stopped\n");
    } else {
        printf("aigwd reloading (pid %ld)\n", pid);
    }
    return 0;
}

static int cmd_stop(int argc, char **argv)
{
    return signal_running("stop", argc, argv, SIGTERM);
}

static int cmd_reload(int argc, char **argv)
{
    /* signal_running() loads the configuration to find the prefix, so a bad file is reported
     * here (as `kong reload` does), not only in the running node's error log. */
    return signal_running("reload", argc, argv, SIGHUP);
}

static int cmd_health(int argc, char **argv)
{
    opts_t o;
    int r = parse_opts(find("health"), argc, argv, &o, 0, 0);
    if (r)
        return r > 0 ? 0 : 2;
    char prefix[4096];
    if (resolve_prefix(&o, prefix, sizeof(prefix)) != 0)
        return 1;
    long pid = aigw_daemon_running_pid(prefix);
    if (!pid) {
        printf("aigwd is not running at %s\n", prefix);
        return 1;
    }
    printf("aigwd......running (pid %ld)\n\naigwd is healthy at %s\n", pid, prefix);
    return 0;
}

static void print_warning(void *ud, const char *msg)
{
    (void)ud;
    fprintf(stderr, "aigwd: warning: %s\n", msg);
}

static int cmd_check(int argc, char **argv)
{
    opts_t o;
    int r = parse_opts(find("check"), argc, argv, &o, 0, 1);
    if (r)
        return r > 0 ? 0 : 2;
    aigw_conf_t c;
    char err[1024];
    if (aigw_conf_load(&c, o.positional, NULL, environ, print_warning, NULL, err,
                       sizeof(err)) != 0) {
        fprintf(stderr, "aigwd: %s\n", err);
        return 1;
    }
    aigw_conf_free(&c);
    printf("configuration at %s is valid\n", o.positional);
    return 0;
}

static int cmd_hybrid(int argc, char **argv)
{
    const command_t *c = find("hybrid");
    const char *pos[3] = { NULL, NULL, NULL };
    int npos = 0;
    long days = 1095;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            command_usage(c, stdout);
            return 0;
        } else if (strcmp(a, "-d") == 0 || strcmp(a, "--days") == 0) {
            char *end;
            if (++i >= argc) {
                fprintf(stderr, "aigwd hybrid: %s needs a value\n", a);
                return 2;
            }
            errno = 0;
            days = strtol(argv[i], &end, 10);
            if (errno || *end || end == argv[i] || days < 1 || days > 36500) {
                fprintf(stderr, "aigwd hybrid: invalid number of days '%s' (1 to 36500)\n",
                        argv[i]);
                return 2;
            }
        } else if (a[0] == '-' || npos == 3) {
            fprintf(stderr, "aigwd hybrid: unknown argument '%s'\n", a);
            command_usage(c, stderr);
            return 2;
        } else {
            pos[npos++] = a;
        }
    }
    if (npos == 0 || strcmp(pos[0], "gen_cert") != 0) {
        fprintf(stderr, npos ? "aigwd hybrid: unknown command '%s'\n"
                             : "aigwd hybrid: missing command%s\n", npos ? pos[0] : "");
        command_usage(c, stderr);
        return 2;
    }
    if (npos != 1 && npos != 3) {
        fprintf(stderr, "aigwd hybrid: both cert and key path needs to be provided\n");
        return 2;
    }
    const char *cert = npos == 3 ? pos[1] : "cluster.crt";
    const char *key = npos == 3 ? pos[2] : "cluster.key";
    char err[1024];
    if (aigw_cf_gen_cert(cert, key, (int)days, err, sizeof(err)) != 0) {
        fprintf(stderr, "aigwd: %s\n", err);
        return 1;
    }
    printf("Successfully generated certificate/key pairs, they have been written to: '%s' and "
           "'%s'.\n", cert, key);
    return 0;
}

static int cmd_version(int argc, char **argv)
{
    (void)argv;
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        command_usage(find("version"), stdout);
        return 0;
    }
    printf("aigw %s\n", AIGW_VERSION);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)
        return cmd_version(1, argv);
    const command_t *c = find(argv[1]);
    if (!c) {
        fprintf(stderr, "aigwd: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return 2;
    }
    return c->run(argc - 1, argv + 1);
}
