-- aigw migration 003_ratelimiting (postgres): counters of the rate-limiting plugin's `cluster`
-- policy, shared by every node on this database. One row per counter key (route, service,
-- identifier, period start, period: the key the local and redis policies use); `ttl` is the
-- end of the period in epoch seconds, after which the row is purged.

CREATE TABLE ratelimiting_counters (
  counter_key TEXT PRIMARY KEY,
  value       BIGINT NOT NULL DEFAULT 0,
  ttl         BIGINT NOT NULL
);
CREATE INDEX ratelimiting_counters_ttl_idx ON ratelimiting_counters (ttl);
