/* aigwd/proxy/certs.h: the TLS contexts of one configuration snapshot.
 *
 * Server side (clients connecting to the proxy): one SSL_CTX per certificate entity that an
 * sni names, holding `cert`/`key` and, when set, `cert_alt`/`key_alt` (an RSA and an ECDSA
 * certificate in one context; OpenSSL picks per handshake). The protocol, cipher, ALPN and
 * session policy mirrors aigw_tls_server_ctx() (http/tls.c): keep the two in step.
 * Selection follows Kong's find_certificate (kong/runloop/certificate.lua), in order:
 *   1. the sni named exactly as the ClientHello's server name;
 *   2. the prefix wildcard made from it: first label replaced, only for 3+ labels
 *      ("a.b.c" -> "*.b.c"; "*.example.com" covers one label: "x.example.com", not
 *      "y.x.example.com" nor "example.com");
 *   3. the suffix wildcard: last label replaced ("a.b" -> "a.*", "a.b.c" -> "a.b.*");
 *   4. the catch-all sni named "*";
 *   5. none: the caller keeps its default context (`ssl_cert`/`ssl_cert_key`, or the
 *      generated default certificate). A ClientHello without a server name always gets the
 *      default, as in Kong, even when a "*" sni exists.
 * aigw compares names case-insensitively (as nginx's server_name does; Kong's lookup is an
 * exact string match): sni names are indexed lower-cased, and when two snis differ only in
 * case, the lower-case spelling wins (the one Kong would serve to a client that sends a
 * lower-case name, which is what clients send).
 *
 * Client side (the proxy connecting to https/grpcs/tls services): one client SSL_CTX per
 * distinct set of settings, shared by the services that have the same (most services share
 * the default one). Kong's semantics (kong/runloop/upstream_ssl.lua over nginx's proxy_ssl_*
 * defaults):
 *   - tls_verify: true verifies the upstream's chain and name; false or null does not
 *     (null means the global proxy_ssl_verify, which is off in Kong: aigw keeps Kong's
 *     default);
 *   - tls_verify_depth: null means nginx's proxy_ssl_verify_depth default, 1;
 *   - ca_certificates: the trust store is exactly those CA certificates; with none, the
 *     system's default store (OpenSSL's default paths). (Kong's proxy path configures no
 *     proxy_ssl_trusted_certificate, so verification without ca_certificates there depends
 *     on nginx directives; aigw trusts the system store.) A CA id missing from the snapshot
 *     is logged (CRIT, Kong's message) and left out of the store, which then trusts only
 *     the CAs found (none: every verification fails; Kong leaves the store unset instead);
 *     an empty array counts as null;
 *   - client_certificate: presented when the upstream asks; when the service has none and an
 *     upstream entity is named as the service's host, that upstream's client_certificate
 *     (Kong's fallback_upstream_client_cert). A missing certificate id is logged and ignored,
 *     as in Kong;
 *   - TLS 1.2 and 1.3 only; ciphers "DEFAULT:@SECLEVEL=0" (Kong's proxy_ssl_conf_command);
 *     ALPN "h2" for grpcs, none otherwise (nginx's proxy module sends none).
 * Host name checking and SNI are per connection: aigw_certs_client_prepare().
 *
 * Threads and lifetime: built on the loader thread (not a proxy worker: it parses PEM and
 * may read the system CA bundle), immutable afterwards and shared read-only by every worker;
 * the SSL_CTXs it hands out are safe to use from several threads at once (SSL_new,
 * handshakes). An aigw_certs_t is reference-counted (atomically): the loader's runtime holds
 * one, and whoever reads a context out of it must hold a reference (or a reference to the
 * runtime that holds one) while doing so. An SSL object does not need the aigw_certs_t to
 * stay alive: SSL_new(ctx) and SSL_set_SSL_CTX(ssl, ctx) take OpenSSL's own reference on the
 * SSL_CTX, so a connection keeps its contexts after a reload has dropped the last reference
 * to the aigw_certs_t that made them. */
#ifndef AIGW_PROXY_CERTS_H
#define AIGW_PROXY_CERTS_H
#include <jansson.h>
#include <openssl/ssl.h>
#include <stddef.h>

typedef struct aigw_certs aigw_certs_t;   /* opaque, read-only once built */

/* Loader thread. Builds every context from a Kong-format declarative snapshot (the parsed
 * root object: "certificates", "snis", "ca_certificates", "services", "upstreams"; a
 * missing array is an empty one). ssl_protocols: AIGW_TLS_* bits (core/conf.h) for the
 * server side; 0 means TLS 1.2 and 1.3. Returns an object holding one reference, or NULL
 * with a one-line reason in err naming the entity, e.g. "certificate <id>: could not parse
 * PEM certificate: no start line", "certificate <id>: certificate does not match key",
 * "ca_certificate <id>: could not parse PEM certificate: ..."; the caller then keeps the
 * previous configuration. snapshot_root is borrowed. */
aigw_certs_t *aigw_certs_build(const json_t *snapshot_root, unsigned ssl_protocols, char *err,
                               size_t errlen);

/* Any thread. Adds a reference; returns c (NULL is fine). */
aigw_certs_t *aigw_certs_ref(aigw_certs_t *c);
/* Any thread. Drops a reference; the last one frees the index and releases its references
 * on the SSL_CTXs (contexts still used by SSL objects live on until those are freed). NULL
 * is fine. */
void aigw_certs_unref(aigw_certs_t *c);
/* Drops the builder's reference: the same as aigw_certs_unref(). */
void aigw_certs_free(aigw_certs_t *c);

/* Any thread; c borrowed (hold a reference). The server context for a ClientHello's server
 * name, borrowed from c, or NULL when no sni matches (and for a NULL or empty name): keep
 * the default context then. */
SSL_CTX *aigw_certs_select(const aigw_certs_t *c, const char *servername);

/* How the servername callback finds the current aigw_certs_t: get(ud) returns it with a
 * reference the callback drops (aigw_certs_unref), or NULL when there is none yet. It runs
 * on the worker doing the handshake, so it must be thread-safe (e.g. take the current
 * runtime and ref its certs). */
typedef struct aigw_certs_source {
    aigw_certs_t *(*get)(void *ud);
    void *ud;
} aigw_certs_source_t;

/* A worker thread, as OpenSSL's servername callback. Install on the default server context:
 *     static aigw_certs_source_t src = { my_get, NULL };   (must outlive the SSL_CTX)
 *     SSL_CTX_set_tlsext_servername_callback(ctx, aigw_certs_on_servername);
 *     SSL_CTX_set_tlsext_servername_arg(ctx, &src);
 * When the server name selects a context, switches the SSL to it (SSL_set_SSL_CTX: the
 * certificate(s), ALPN and session-id context come from it) and copies its verify mode,
 * verify depth and options onto the SSL, as nginx does. Otherwise leaves the SSL on the
 * default context. Returns SSL_TLSEXT_ERR_OK, or SSL_TLSEXT_ERR_ALERT_FATAL with *al set
 * when the switch fails. The SNI stays readable with SSL_get_servername() for routing. */
int aigw_certs_on_servername(SSL *ssl, int *al, void *arg);

/* Any thread; c borrowed (hold a reference). The client context for connections to that
 * service (36-character id), borrowed from c. Never NULL: a service without TLS settings,
 * a non-TLS service, an unknown id and NULL all get the shared default context (no
 * verification, no client certificate). SSL_new() on it keeps it alive on its own. */
SSL_CTX *aigw_certs_client_ctx(const aigw_certs_t *c, const char *service_id);

/* Any thread; c borrowed. 1 when connections to that service verify the upstream's
 * certificate (tls_verify true), else 0. */
int aigw_certs_client_verifies(const aigw_certs_t *c, const char *service_id);

/* Any thread, on a fresh client SSL (before the handshake). Sends sni_host as SNI (nginx's
 * proxy_ssl_server_name on; the caller passes the upstream Host, Kong's proxy_ssl_name
 * $upstream_host, without port), except for IP literals ("127.0.0.1", "::1", "[::1]") and
 * NULL/empty names, which send none. When verify is nonzero, also makes the handshake check
 * the peer certificate against that name (DNS names and CN as nginx's X509_check_host; IP
 * literals against IP subjectAltNames); with verify < 0 it is taken from the SSL's verify
 * mode (SSL_VERIFY_PEER, i.e. the service's tls_verify). A verify failure then fails the
 * handshake; SSL_get_verify_result() says why. 0, or -1 when OpenSSL refuses the name. */
int aigw_certs_client_prepare(SSL *ssl, const char *sni_host, int verify);

/* Any thread. Writes nginx's detail for a failed upstream verification, "(62:hostname
 * mismatch)" style (code and X509_verify_cert_error_string), into buf (capacity n, always
 * terminated). */
void aigw_certs_verify_error(const SSL *ssl, char *buf, size_t n);

#endif
