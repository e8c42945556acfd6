/* aigwd/http/sockio.h: the write path shared by the client side (http/server.c) and the
 * upstream side (proxy/upstream.c): try the socket first, queue a copy of what it did not
 * take, and send what OpenSSL put into a memory write BIO. One loop thread per socket. */
#ifndef AIGW_HTTP_SOCKIO_H
#define AIGW_HTTP_SOCKIO_H
#include <openssl/ssl.h>
#include <stddef.h>
#include <uv.h>

/* What is queued on one socket (writes libuv still holds, and their bytes). */
typedef struct aigw_sockq {
    size_t writes;
    size_t bytes;
} aigw_sockq_t;

/* Writes bufs to s: straight away when nothing is queued (uv_try_write), then a copy of the
 * rest as one uv_write whose callback is cb. 0, or -1 when the socket refused the bytes or
 * memory ran out. */
int aigw_sock_write(uv_stream_t *s, aigw_sockq_t *q, const uv_buf_t *bufs, unsigned nbufs,
                    uv_write_cb cb, void *owner);
/* The first call in cb: updates the queue, frees the request, returns its owner. */
void *aigw_sock_write_done(uv_write_t *w);
/* Sends (through aigw_sock_write) what OpenSSL has put in ssl's memory write BIO. */
int aigw_sock_tls_flush(SSL *ssl, uv_stream_t *s, aigw_sockq_t *q, uv_write_cb cb, void *owner);

#endif
