/* aigwd/http/tls.h: server-side TLS contexts and the default self-signed certificates.
 * Contexts are built on the main thread (start, reload) and shared read-only by workers;
 * OpenSSL reference-counts them, so a connection keeps its context alive after a reload. */
#ifndef AIGW_HTTP_TLS_H
#define AIGW_HTTP_TLS_H
#include <openssl/ssl.h>
#include <stddef.h>

/* A TLS server context: TLS 1.2/1.3 only (as `protocols` bits, AIGW_TLS_*), Mozilla
 * intermediate ciphers, ALPN http/1.1, session cache. NULL with a one-line reason in err
 * (naming the file) when the certificate or key cannot be read or do not match. */
SSL_CTX *aigw_tls_server_ctx(const char *cert_path, const char *key_path, unsigned protocols,
                             char *err, size_t errlen);

/* Makes sure <prefix>/ssl/<name>.crt and .key exist, generating an EC P-256 self-signed
 * certificate for CN=localhost the first time (as Kong does for kong-default). The paths are
 * written to cert_out/key_out (capacity cap). 0, or -1 with a reason in err. Blocks. */
int aigw_tls_default_cert(const char *prefix, const char *name, char *cert_out, char *key_out,
                          size_t cap, char *err, size_t errlen);

#endif
