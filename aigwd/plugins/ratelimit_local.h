/* aigwd/plugins/ratelimit_local.h: the node-wide counters of the rate-limiting plugin's
 * local (and cluster) policy, plus the calendar windows both policies share.
 *
 * One process-global store, created by the plugin's global_init and freed by its
 * global_shutdown, so counters survive runtime reloads. Any thread may call
 * aigw_rl_local_take(): the store is a set of mutex-striped hash tables; a call locks every
 * stripe its keys live in (in ascending order) and decides and counts in one step, so N
 * concurrent callers against a limit L admit exactly min(N, L). Entries expire at the end
 * of their calendar window and are swept (a stripe at most once per second when touched);
 * a full store refuses new keys (the plugin then applies fault_tolerant). */
#ifndef AIGW_PLUGINS_RATELIMIT_LOCAL_H
#define AIGW_PLUGINS_RATELIMIT_LOCAL_H
#include <stddef.h>
#include <stdint.h>

/* ---- windows ---- */

enum { AIGW_RL_SECOND, AIGW_RL_MINUTE, AIGW_RL_HOUR, AIGW_RL_DAY, AIGW_RL_MONTH, AIGW_RL_YEAR,
       AIGW_RL_NPERIODS };

/* "second" ... "year" (Kong's period names) and the header suffixes "Second" ... "Year". */
extern const char *const aigw_rl_period_names[AIGW_RL_NPERIODS];
extern const char *const aigw_rl_period_titles[AIGW_RL_NPERIODS];
/* Kong's EXPIRATION table (seconds): 1, 60, 3600, 86400, 2592000, 31536000. */
extern const int64_t aigw_rl_expiration[AIGW_RL_NPERIODS];

/* The UTC calendar windows that contain `now` (Unix seconds): start[p] is the window's
 * first second (Kong's get_timestamps, in seconds instead of ms), end[p] the first second
 * of the next window (month and year by the calendar). */
void aigw_rl_windows(int64_t now, int64_t start[AIGW_RL_NPERIODS],
                     int64_t end[AIGW_RL_NPERIODS]);

/* ---- the store ---- */

/* Creates the store (max_entries: bound on live counters; 0 for the default). 0, or -1
 * (out of memory). A second call does nothing. */
int aigw_rl_local_init(size_t max_entries);
/* Frees it (no caller may be inside aigw_rl_local_take). */
void aigw_rl_local_shutdown(void);

/* Any thread. For n keys (each with its limit and the Unix second its counter expires at):
 * reads the current counts into usage[] (0 for an absent or expired counter) and, when every
 * count is below its limit, adds 1 to each. Returns 1 (admitted, counted), 0 (a limit is
 * reached: nothing counted), -1 (no store, out of memory or the store is full). Keys are
 * copied; n <= AIGW_RL_NPERIODS. */
int aigw_rl_local_take(const char *const *keys, const double *limits, const int64_t *expire_at,
                       size_t n, int64_t now, int64_t *usage);

/* Tests: live entries (including expired ones not swept yet), and a sweep of every stripe. */
size_t aigw_rl_local_count(void);
void aigw_rl_local_sweep(int64_t now);

#endif
