/* aigwd/store/migrate_cli.h: `aigwd migrations bootstrap | up | list | reset --yes`.
 * Main thread; blocks on the database. */
#ifndef AIGW_STORE_MIGRATE_CLI_H
#define AIGW_STORE_MIGRATE_CLI_H

/* argv[0] is "migrations", then the subcommand and the options (-c FILE, -p PREFIX, --yes,
 * -h) in any order. Prints one-line messages (errors to stderr). Returns the exit code:
 * 0 done (or nothing to do), 1 failed, refused, or (list) migrations still to run. */
int aigw_migrations_cli(int argc, char **argv);

#endif
