-- aigw migration 001_initial (sqlite): the configuration store.
-- Generated from the schema tables (aigwd/schema) by aigwd/store/sql.c; the unit test
-- unit.store fails when this file and the generator differ.
-- One table per entity: id, the entity as JSON (data), created_at, u_<field> for
-- unique fields, <field>_id for foreign keys, cache_key for fields unique together.

CREATE TABLE aigw_config_version (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version INTEGER NOT NULL
);
INSERT INTO aigw_config_version (id, version) VALUES (1, 0);

CREATE TABLE certificates (
  id TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE TABLE snis (
  id TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  u_name TEXT UNIQUE,
  certificate_id TEXT REFERENCES certificates (id) ON DELETE CASCADE
);
CREATE INDEX snis_certificate_id_idx ON snis (certificate_id);

CREATE TABLE ca_certificates (
  id TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  u_cert_digest TEXT UNIQUE
);

CREATE TABLE services (
  id TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  u_name TEXT UNIQUE,
  client_certificate_id TEXT REFERENCES certificates (id)
);
CREATE INDEX services_client_certificate_id_idx ON services (client_certificate_id);

CREATE TABLE routes (
  id TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  u_name TEXT UNIQUE,
  service_id TEXT REFERENCES services (id)
);
CREATE INDEX routes_service_id_idx ON routes (service_id);

CREATE TABLE consumers (
  id TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  u_username TEXT UNIQUE,
  u_custom_id TEXT UNIQUE
);

CREATE TABLE upstreams (
  id TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  u_name TEXT UNIQUE,
  client_certificate_id TEXT REFERENCES certificates (id)
);
CREATE INDEX upstreams_client_certificate_id_idx ON upstreams (client_certificate_id);

CREATE TABLE targets (
  id TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  upstream_id TEXT REFERENCES upstreams (id) ON DELETE CASCADE,
  cache_key TEXT UNIQUE
);
CREATE INDEX targets_upstream_id_idx ON targets (upstream_id);

CREATE TABLE plugins (
  id TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  u_instance_name TEXT UNIQUE,
  route_id TEXT REFERENCES routes (id) ON DELETE CASCADE,
  service_id TEXT REFERENCES services (id) ON DELETE CASCADE,
  consumer_id TEXT REFERENCES consumers (id) ON DELETE CASCADE,
  cache_key TEXT UNIQUE
);
CREATE INDEX plugins_route_id_idx ON plugins (route_id);
CREATE INDEX plugins_service_id_idx ON plugins (service_id);
CREATE INDEX plugins_consumer_id_idx ON plugins (consumer_id);

CREATE TABLE jwt_secrets (
  id TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  consumer_id TEXT REFERENCES consumers (id) ON DELETE CASCADE,
  u_key TEXT UNIQUE
);
CREATE INDEX jwt_secrets_consumer_id_idx ON jwt_secrets (consumer_id);

CREATE TABLE keyauth_credentials (
  id TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  consumer_id TEXT REFERENCES consumers (id) ON DELETE CASCADE,
  u_key TEXT UNIQUE
);
CREATE INDEX keyauth_credentials_consumer_id_idx ON keyauth_credentials (consumer_id);

CREATE TABLE basicauth_credentials (
  id TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  consumer_id TEXT REFERENCES consumers (id) ON DELETE CASCADE,
  u_username TEXT UNIQUE
);
CREATE INDEX basicauth_credentials_consumer_id_idx ON basicauth_credentials (consumer_id);

CREATE TABLE acls (
  id TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  consumer_id TEXT REFERENCES consumers (id) ON DELETE CASCADE,
  cache_key TEXT UNIQUE
);
CREATE INDEX acls_consumer_id_idx ON acls (consumer_id);

CREATE TABLE oauth2_credentials (
  id TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  consumer_id TEXT REFERENCES consumers (id) ON DELETE CASCADE,
  u_client_id TEXT UNIQUE
);
CREATE INDEX oauth2_credentials_consumer_id_idx ON oauth2_credentials (consumer_id);

CREATE TABLE oauth2_authorization_codes (
  id TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  service_id TEXT REFERENCES services (id) ON DELETE CASCADE,
  credential_id TEXT REFERENCES oauth2_credentials (id) ON DELETE CASCADE,
  u_code TEXT UNIQUE,
  plugin_id TEXT REFERENCES plugins (id) ON DELETE CASCADE
);
CREATE INDEX oauth2_authorization_codes_service_id_idx ON oauth2_authorization_codes (service_id);
CREATE INDEX oauth2_authorization_codes_credential_id_idx ON oauth2_authorization_codes (credential_id);
CREATE INDEX oauth2_authorization_codes_plugin_id_idx ON oauth2_authorization_codes (plugin_id);

CREATE TABLE oauth2_tokens (
  id TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  service_id TEXT REFERENCES services (id) ON DELETE CASCADE,
  credential_id TEXT REFERENCES oauth2_credentials (id) ON DELETE CASCADE,
  u_access_token TEXT UNIQUE,
  u_refresh_token TEXT UNIQUE
);
CREATE INDEX oauth2_tokens_service_id_idx ON oauth2_tokens (service_id);
CREATE INDEX oauth2_tokens_credential_id_idx ON oauth2_tokens (credential_id);
