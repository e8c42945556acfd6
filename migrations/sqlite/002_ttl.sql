-- aigw migration 002_ttl (sqlite): Kong's `ttl` option of key-auth credentials and oauth2
-- authorization codes and tokens (entities with `ttl = true`). The column holds the expiry
-- time in epoch seconds (NULL: none); rows past it are not read and are purged.

ALTER TABLE keyauth_credentials ADD COLUMN ttl INTEGER;
CREATE INDEX keyauth_credentials_ttl_idx ON keyauth_credentials (ttl);

ALTER TABLE oauth2_authorization_codes ADD COLUMN ttl INTEGER;
CREATE INDEX oauth2_authorization_codes_ttl_idx ON oauth2_authorization_codes (ttl);

ALTER TABLE oauth2_tokens ADD COLUMN ttl INTEGER;
CREATE INDEX oauth2_tokens_ttl_idx ON oauth2_tokens (ttl);
