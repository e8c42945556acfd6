/* aigwd/http/sockio.c: see sockio.h. */
#include <stdlib.h>
#include <string.h>
#include "http/sockio.h"

typedef struct wreq {
    uv_write_t w;
    void *owner;
    aigw_sockq_t *q;
    size_t n;
    char data[];
} wreq_t;

int aigw_sock_write(uv_stream_t *s, aigw_sockq_t *q, const uv_buf_t *bufs, unsigned nbufs,
                    uv_write_cb cb, void *owner)
{
    size_t total = 0, done = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (q->writes == 0) {
        int r = uv_try_write(s, bufs, nbufs);
        if (r >= 0)
            done = (size_t)r;
        else if (r != UV_EAGAIN)
            return -1;
    }
    if (done == total)
        return 0;
    wreq_t *w = malloc(sizeof(*w) + (total - done));
    if (!w)
        return -1;
    size_t off = 0, skip = done;
    for (unsigned i = 0; i < nbufs; i++) {
        size_t len = bufs[i].len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        memcpy(w->data + off, bufs[i].base + skip, len - skip);
        off += len - skip;
        skip = 0;
    }
    w->owner = owner;
    w->q = q;
    w->n = off;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)off);
    if (uv_write(&w->w, s, &b, 1, cb) != 0) {
        free(w);
        return -1;
    }
    q->writes++;
    q->bytes += off;
    return 0;
}

void *aigw_sock_write_done(uv_write_t *uw)
{
    wreq_t *w = (wreq_t *)uw;
    void *owner = w->owner;
    w->q->writes--;
    w->q->bytes -= w->n;
    free(w);
    return owner;
}

int aigw_sock_tls_flush(SSL *ssl, uv_stream_t *s, aigw_sockq_t *q, uv_write_cb cb, void *owner)
{
    BIO *wbio = SSL_get_wbio(ssl);
    char *data;
    long n = BIO_get_mem_data(wbio, &data);
    if (n <= 0)
        return 0;
    uv_buf_t b = uv_buf_init(data, (unsigned)n);
    int r = aigw_sock_write(s, q, &b, 1, cb, owner);
    (void)BIO_reset(wbio);
    return r;
}
