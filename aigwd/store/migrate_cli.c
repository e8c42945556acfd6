/* aigwd/store/migrate_cli.c: see migrate_cli.h. */
#include <stdio.h>
#include <string.h>
#include "core/conf.h"
#include "store/migrate_cli.h"
#include "store/store.h"

extern char **environ;

static void usage(FILE *f)
{
    fprintf(f, "Usage: aigwd migrations COMMAND [-c FILE] [-p PREFIX] [--yes]\n\n"
               "Manage the database schema.\n\n"
               "Commands:\n"
               "  bootstrap   create aigw's tables in an empty database and run every migration\n"
               "  up          run the migrations not yet run\n"
               "  list        list the migrations run and those pending\n"
               "  reset       drop aigw's tables and all their data (needs --yes)\n\n"
               "Options:\n"
               "  -c, --conf FILE     configuration file\n"
               "  -p, --prefix DIR    prefix directory\n"
               "  -y, --yes           confirm `reset`\n"
               "  -h, --help          show this help\n");
}

static void print_warning(void *ud, const char *msg)
{
    (void)ud;
    fprintf(stderr, "aigwd: warning: %s\n", msg);
}

static size_t pending(const aigw_migration_state_t *m)
{
    return m->total - m->applied;
}

static void print_names(const aigw_migration_state_t *m, int done)
{
    for (size_t i = 0; i < m->total; i++)
        if (!!m->done[i] == done)
            printf("  %s\n", m->names[i]);
}

static int cmd_list(aigw_store_t *s)
{
    aigw_migration_state_t m;
    aigw_db_error_t err = { 0 };
    if (aigw_store_migrations(s, &m, &err) != 0) {
        fprintf(stderr, "aigwd migrations: %s\n", err.message);
        aigw_db_error_clear(&err);
        return 1;
    }
    int rc = 0;
    if (!m.bootstrapped) {
        printf("Database needs bootstrapping; run 'aigwd migrations bootstrap'\n");
        rc = 1;
    } else {
        if (m.applied) {
            printf("Executed migrations:\n");
            print_names(&m, 1);
        }
        if (pending(&m)) {
            printf("%sNew migrations available:\n", m.applied ? "\n" : "");
            print_names(&m, 0);
            printf("\nRun 'aigwd migrations up' to proceed\n");
            rc = 1;
        } else {
            printf("\nDatabase is up-to-date\n");
        }
    }
    aigw_migration_state_free(&m);
    return rc;
}

/* bootstrap and up: run what is pending, then say what was run. */
static int cmd_run(aigw_store_t *s, int boot)
{
    aigw_migration_state_t m;
    aigw_db_error_t err = { 0 };
    if (aigw_store_migrations(s, &m, &err) != 0) {
        fprintf(stderr, "aigwd migrations: %s\n", err.message);
        aigw_db_error_clear(&err);
        return 1;
    }
    int rc = 0;
    if (boot && m.bootstrapped) {
        printf("Database already bootstrapped\n");
        if (pending(&m))
            printf("New migrations available; run 'aigwd migrations up' to proceed\n");
        goto out;
    }
    if (!boot && !m.bootstrapped) {
        fprintf(stderr, "aigwd migrations: database needs bootstrapping; run 'aigwd "
                        "migrations bootstrap'\n");
        rc = 1;
        goto out;
    }
    if (!boot && !pending(&m)) {
        printf("Database is already up-to-date\n");
        goto out;
    }
    if (boot)
        printf("Bootstrapping database...\n");
    int r = boot ? aigw_store_bootstrap(s, &err) : aigw_store_migrate_up(s, &err);
    if (r != 0) {
        fprintf(stderr, "aigwd migrations: %s\n", err.message);
        aigw_db_error_clear(&err);
        rc = 1;
        goto out;
    }
    /* What ran: the names not done before (another node may have raced us; the lock made
     * one of us fail, so these are ours). */
    size_t n = 0;
    for (size_t i = 0; i < m.total; i++)
        if (boot || !m.done[i]) {
            printf("migrated up to: %s (executed)\n", m.names[i]);
            n++;
        }
    printf("%zu migration%s processed\n%zu executed\nDatabase is up-to-date\n", n,
           n == 1 ? "" : "s", n);
out:
    aigw_migration_state_free(&m);
    return rc;
}

static int cmd_reset(aigw_store_t *s, int yes)
{
    if (!yes) {
        fprintf(stderr, "aigwd migrations: reset drops every aigw table and all the "
                        "configuration in them; run 'aigwd migrations reset --yes' to confirm\n");
        return 1;
    }
    aigw_migration_state_t m;
    aigw_db_error_t err = { 0 };
    if (aigw_store_migrations(s, &m, &err) != 0) {
        fprintf(stderr, "aigwd migrations: %s\n", err.message);
        aigw_db_error_clear(&err);
        return 1;
    }
    int boot = m.bootstrapped;
    aigw_migration_state_free(&m);
    if (!boot) {
        fprintf(stderr, "aigwd migrations: database not bootstrapped, nothing to reset\n");
        return 1;
    }
    printf("Resetting database...\n");
    if (aigw_store_reset(s, &err) != 0) {
        fprintf(stderr, "aigwd migrations: %s\n", err.message);
        aigw_db_error_clear(&err);
        return 1;
    }
    printf("Database successfully reset\n");
    return 0;
}

int aigw_migrations_cli(int argc, char **argv)
{
    const char *conf = NULL, *prefix = NULL, *cmd = NULL;
    int yes = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--conf") == 0 || strcmp(a, "-p") == 0 ||
                   strcmp(a, "--prefix") == 0) {
            if (++i >= argc) {
                fprintf(stderr, "aigwd migrations: %s needs a value\n", a);
                return 1;
            }
            if (a[1] == 'c' || a[2] == 'c')
                conf = argv[i];
            else
                prefix = argv[i];
        } else if (strcmp(a, "-y") == 0 || strcmp(a, "--yes") == 0) {
            yes = 1;
        } else if (a[0] != '-' && !cmd) {
            cmd = a;
        } else {
            fprintf(stderr, "aigwd migrations: unknown argument '%s'\n", a);
            usage(stderr);
            return 1;
        }
    }
    if (!cmd) {
        fprintf(stderr, "aigwd migrations: missing COMMAND (bootstrap, up, list or reset)\n");
        usage(stderr);
        return 1;
    }
    int which = strcmp(cmd, "bootstrap") == 0 ? 0
                : strcmp(cmd, "up") == 0      ? 1
                : strcmp(cmd, "list") == 0    ? 2
                : strcmp(cmd, "reset") == 0   ? 3
                                              : -1;
    if (which < 0) {
        fprintf(stderr, "aigwd migrations: unknown command '%s' (bootstrap, up, list or reset)\n",
                cmd);
        return 1;
    }
    if (which == 3 && !yes)
        return cmd_reset(NULL, 0);

    aigw_conf_t c;
    char err[1024];
    if (aigw_conf_load(&c, conf, prefix, environ, print_warning, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "aigwd: %s\n", err);
        return 1;
    }
    if (c.database == AIGW_DB_OFF) {
        fprintf(stderr, "aigwd migrations: database = off: there is no database to migrate\n");
        aigw_conf_free(&c);
        return 1;
    }
    aigw_store_t *s = aigw_store_open(&c, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "aigwd migrations: %s\n", err);
        aigw_conf_free(&c);
        return 1;
    }
    int rc;
    switch (which) {
    case 0: rc = cmd_run(s, 1); break;
    case 1: rc = cmd_run(s, 0); break;
    case 2: rc = cmd_list(s); break;
    default: rc = cmd_reset(s, yes); break;
    }
    aigw_store_close(s);
    aigw_conf_free(&c);
    return rc;
}
