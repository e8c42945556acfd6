-- aigw migration 001_initial (postgres): the configuration store.
-- Generated from the schema tables (aigwd/schema) by aigwd/store/sql.c; the unit test
-- unit.store fails when this file and the generator differ.
-- One table per entity: id, the entity as JSON (data), created_at, u_<field> for
-- unique fields, <field>_id for foreign keys, cache_key for fields unique together.

CREATE TABLE aigw_config_version (
  id integer PRIMARY KEY CHECK (id = 1),
  version bigint NOT NULL
);
INSERT INTO aigw_config_version (id, version) VALUES (1, 0);

CREATE TABLE certificates (
  id text COLLATE "C" PRIMARY KEY,
  data jsonb NOT NULL,
  created_at bigint NOT NULL
);

CREATE TABLE snis (
  id text COLLATE "C" PRIMARY KEY,
  data jsonb NOT NULL,
  created_at bigint NOT NULL,
  u_name text UNIQUE,
  certificate_id text COLLATE "C" REFERENCES certificates (id) ON DELETE CASCADE
);
CREATE INDEX snis_certificate_id_idx ON snis (certificate_id);

CREATE TABLE ca_certificates (
  id text COLLATE "C" PRIMARY KEY,
  data jsonb NOT NULL,
  created_at bigint NOT NULL,
  u_cert_digest text UNIQUE
);

CREATE TABLE services (
  id text COLLATE "C" PRIMARY KEY,
  data jsonb NOT NULL,
  created_at bigint NOT NULL,
  u_name text UNIQUE,
  client_certificate_id text COLLATE "C" REFERENCES certificates (id)
);
CREATE INDEX services_client_certificate_id_idx ON services (client_certificate_id);

CREATE TABLE routes (
  id text COLLATE "C" PRIMARY KEY,
  data jsonb NOT NULL,
  created_at bigint NOT NULL,
  u_name text UNIQUE,
  service_id text COLLATE "C" REFERENCES services (id)
);
CREATE INDEX routes_service_id_idx ON routes (service_id);

CREATE TABLE consumers (
  id text COLLATE "C" PRIMARY KEY,
  data jsonb NOT NULL,
  created_at bigint NOT NULL,
  u_username text UNIQUE,
  u_custom_id text UNIQUE
);

CREATE TABLE upstreams (
  id text COLLATE "C" PRIMARY KEY,
  data jsonb NOT NULL,
  created_at bigint NOT NULL,
  u_name text UNIQUE,
  client_certificate_id text COLLATE "C" REFERENCES certificates (id)
);
CREATE INDEX upstreams_client_certificate_id_idx ON upstreams (client_certificate_id);

CREATE TABLE targets (
  id text COLLATE "C" PRIMARY KEY,
  data jsonb NOT NULL,
  created_at bigint NOT NULL,
  upstream_id text COLLATE "C" REFERENCES upstreams (id) ON DELETE CASCADE,
  cache_key text UNIQUE
);
CREATE INDEX targets_upstream_id_idx ON targets (upstream_id);

CREATE TABLE plugins (
  id text COLLATE "C" PRIMARY KEY,
  data jsonb NOT NULL,
  created_at bigint NOT NULL,
  u_instance_name text UNIQUE,
  route_id text COLLATE "C" REFERENCES routes (id) ON DELETE CASCADE,
  service_id text COLLATE "C" REFERENCES services (id) ON DELETE CASCADE,
  consumer_id text COLLATE "C" REFERENCES consumers (id) ON DELETE CASCADE,
  cache_key text UNIQUE
);
CREATE INDEX plugins_route_id_idx ON plugins (route_id);
CREATE INDEX plugins_service_id_idx ON plugins (service_id);
CREATE INDEX plugins_consumer_id_idx ON plugins (consumer_id);

CREATE TABLE jwt_secrets (
  id text COLLATE "C" PRIMARY KEY,
  data jsonb NOT NULL,
  created_at bigint NOT NULL,
  consumer_id text COLLATE "C" REFERENCES consumers (id) ON DELETE CASCADE,
  u_key text UNIQUE
);
CREATE INDEX jwt_secrets_consumer_id_idx ON jwt_secrets (consumer_id);

CREATE TABLE keyauth_credentials (
  id text COLLATE "C" PRIMARY KEY,
  data jsonb NOT NULL,
  created_at bigint NOT NULL,
  consumer_id text COLLATE "C" REFERENCES consumers (id) ON DELETE CASCADE,
  u_key text UNIQUE
);
CREATE INDEX keyauth_credentials_consumer_id_idx ON keyauth_credentials (consumer_id);

CREATE TABLE basicauth_credentials (
  id text COLLATE "C" PRIMARY KEY,
  data jsonb NOT NULL,
  created_at bigint NOT NULL,
  consumer_id text COLLATE "C" REFERENCES consumers (id) ON DELETE CASCADE,
  u_username text UNIQUE
);
CREATE INDEX basicauth_credentials_consumer_id_idx ON basicauth_credentials (consumer_id);

CREATE TABLE acls (
  id text COLLATE "C" PRIMARY KEY,
  data jsonb NOT NULL,
  created_at bigint NOT NULL,
  consumer_id text COLLATE "C" REFERENCES consumers (id) ON DELETE CASCADE,
  cache_key text UNIQUE
);
CREATE INDEX acls_consumer_id_idx ON acls (consumer_id);

CREATE TABLE oauth2_credentials (
  id text COLLATE "C" PRIMARY KEY,
  data jsonb NOT NULL,
  created_at bigint NOT NULL,
  consumer_id text COLLATE "C" REFERENCES consumers (id) ON DELETE CASCADE,
  u_client_id text UNIQUE
);
CREATE INDEX oauth2_credentials_consumer_id_idx ON oauth2_credentials (consumer_id);

CREATE TABLE oauth2_authorization_codes (
  id text COLLATE "C" PRIMARY KEY,
  data jsonb NOT NULL,
  created_at bigint NOT NULL,
  service_id text COLLATE "C" REFERENCES services (id) ON DELETE CASCADE,
  credential_id text COLLATE "C" REFERENCES oauth2_credentials (id) ON DELETE CASCADE,
  u_code text UNIQUE,
  plugin_id text COLLATE "C" REFERENCES plugins (id) ON DELETE CASCADE
);
CREATE INDEX oauth2_authorization_codes_service_id_idx ON oauth2_authorization_codes (service_id);
CREATE INDEX oauth2_authorization_codes_credential_id_idx ON oauth2_authorization_codes (credential_id);
CREATE INDEX oauth2_authorization_codes_plugin_id_idx ON oauth2_authorization_codes (plugin_id);

CREATE TABLE oauth2_tokens (
  id text COLLATE "C" PRIMARY KEY,
  data jsonb NOT NULL,
  created_at bigint NOT NULL,
  service_id text COLLATE "C" REFERENCES services (id) ON DELETE CASCADE,
  credential_id text COLLATE "C" REFERENCES oauth2_credentials (id) ON DELETE CASCADE,
  u_access_token text UNIQUE,
  u_refresh_token text UNIQUE
);
CREATE INDEX oauth2_tokens_service_id_idx ON oauth2_tokens (service_id);
CREATE INDEX oauth2_tokens_credential_id_idx ON oauth2_tokens (credential_id);
