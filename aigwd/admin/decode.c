/* aigwd/admin/decode.c: admin request decoding (see decode.h for the rules).
 *
 * Form, multipart and query args are parsed pair by pair into a small tree of our own
 * (objects, values, and lists whose items carry an index and an arrival number), so that
 * indexed keys can arrive in any order; the tree then becomes a jansson object, and the
 * coercion walks that object with the schema fields. */
#include "admin/decode.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_JSON "Cannot parse JSON body"
#define MSG_TOO_MANY "Too many arguments"
#define MSG_MULTIPART "Cannot parse multipart body"
#define MSG_UTF8 "Cannot parse arguments: invalid UTF-8"
#define MSG_DEPTH "Cannot parse arguments: keys nested too deeply"
#define MSG_NOMEM "An unexpected error occurred"
#define MSG_KIND "Unsupported body kind"

#define MAX_BOUNDARY 200      /* RFC 2046 allows 70; be generous */
#define MAX_PART_HEADERS 64   /* header lines per multipart part */
#define MAX_COERCE_DEPTH (2 * AIGW_DECODE_MAX_DEPTH + 8)

/* ---- errors ------------------------------------------------------------------------------- */

static int fail(char *err, size_t errlen, int rc, const char *msg)
{
    if (err && errlen > 0)
        snprintf(err, errlen, "%s", msg);
    return rc;
}

static int nomem(char *err, size_t errlen)
{
    return fail(err, errlen, AIGW_DECODE_ENOMEM, MSG_NOMEM);
}

/* ---- bytes -------------------------------------------------------------------------------- */

/* 1 if s[0..n) is valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF, as
 * jansson checks) without NUL bytes. */
static int utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i];
        size_t need, k;
        uint32_t cp;

        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i <= need)
            return 0;
        for (k = 1; k <= need; k++) {
            unsigned cc = s[i + k];
            if ((cc & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (cc & 0x3f);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += need + 1;
    }
    return 1;
}

/* Percent-decodes s[0..n) into out (room for n bytes); '+' is a space when plus is set. An
 * invalid '%' sequence is copied as it is. Returns the decoded length. */
static size_t pct_decode(const char *s, size_t n, char *out, int plus)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+' && plus) {
            out[o++] = ' ';
        } else if (c == '%' && i + 2 < n && aigw_hex_digit(s[i + 1]) >= 0 &&
                   aigw_hex_digit(s[i + 2]) >= 0) {
            out[o++] = (char)(aigw_hex_digit(s[i + 1]) * 16 + aigw_hex_digit(s[i + 2]));
            i += 2;
        } else {
            out[o++] = c;
        }
    }
    return o;
}

int aigw_decode_path(aigw_str_t path, char **segs, aigw_str_t *raw, size_t max, size_t *n)
{
    size_t i = 0;
    *n = 0;
    while (i < path.n) {
        while (i < path.n && path.p[i] == '/')
            i++;
        if (i >= path.n)
            break;
        size_t j = i;
        while (j < path.n && path.p[j] != '/')
            j++;
        if (*n == max)
            return -1;
        char *seg = malloc(j - i + 1);
        if (!seg)
            return -1;
        seg[pct_decode(path.p + i, j - i, seg, 0)] = '\0';
        if (raw)
            raw[*n] = (aigw_str_t){ path.p + i, j - i };
        segs[(*n)++] = seg;
        i = j;
    }
    return 0;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int lower_ascii(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

/* 1 if s[0..n) equals the lower-case ASCII word w, ignoring case. */
static int ieq(const char *s, size_t n, const char *w)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (w[i] == '\0' || lower_ascii((unsigned char)s[i]) != w[i])
            return 0;
    }
    return w[n] == '\0';
}

/* ---- the args tree ------------------------------------------------------------------------ */

enum { N_VAL, N_OBJ, N_LIST };

typedef struct dnode dnode_t;

typedef struct dchild {
    char *key;          /* N_OBJ members: owned, NUL-terminated */
    size_t klen;
    uint32_t idx;       /* N_LIST items: the index given (1-based) */
    uint32_t seq;       /* N_LIST items: arrival order */
    dnode_t *node;      /* owned */
} dchild_t;

struct dnode {
    int kind;
    json_t *val;        /* N_VAL: owned (a string or true) */
    dchild_t *c;
    size_t n, cap;
    uint32_t max_idx;   /* N_LIST: the largest index so far */
};

typedef struct builder {
    dnode_t *root;
    uint32_t seq;
    unsigned flags;
} builder_t;

static dnode_t *node_new(int kind)
{
    dnode_t *d = calloc(1, sizeof *d);
    if (d)
        d->kind = kind;
    return d;
}

static void node_free(dnode_t *d)
{
    size_t i;

    if (!d)
        return;
    for (i = 0; i < d->n; i++) {
        free(d->c[i].key);
        node_free(d->c[i].node);
    }
    free(d->c);
    json_decref(d->val);
    free(d);
}

/* A new zeroed slot at the end of d's children, or NULL. The pointer is good until the next
 * push on d. */
static dchild_t *node_push(dnode_t *d)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        dchild_t *c = realloc(d->c, cap * sizeof *c);
        if (!c)
            return NULL;
        d->c = c;
        d->cap = cap;
    }
    memset(&d->c[d->n], 0, sizeof d->c[0]);
    return &d->c[d->n++];
}

/* Adds item to list d at idx; takes item (freed on failure). */
static int list_add(builder_t *b, dnode_t *d, uint32_t idx, dnode_t *item)
{
    dchild_t *ch = node_push(d);

    if (!ch) {
        node_free(item);
        return -1;
    }
    ch->idx = idx;
    ch->seq = b->seq++;
    ch->node = item;
    if (idx > d->max_idx)
        d->max_idx = idx;
    return 0;
}

static uint32_t next_idx(const dnode_t *d)
{
    return d->max_idx == UINT32_MAX ? UINT32_MAX : d->max_idx + 1;
}

/* Turns value node d into a list holding its value as item 1. */
static int val_to_list(builder_t *b, dnode_t *d)
{
    dnode_t *item = node_new(N_VAL);
    dchild_t *ch;

    if (!item)
        return -1;
    ch = node_push(d);
    if (!ch) {
        free(item);
        return -1;
    }
    item->val = d->val;
    d->val = NULL;
    d->kind = N_LIST;
    ch->idx = 1;
    ch->seq = b->seq++;
    ch->node = item;
    d->max_idx = 1;
    return 0;
}

/* Empties d and makes it a fresh node of kind (a later arg replacing an earlier shape). */
static void node_reset(dnode_t *d, int kind)
{
    size_t i;

    for (i = 0; i < d->n; i++) {
        free(d->c[i].key);
        node_free(d->c[i].node);
    }
    d->n = 0;
    json_decref(d->val);
    d->val = NULL;
    d->max_idx = 0;
    d->kind = kind;
}

static dchild_t *obj_find(dnode_t *d, const char *k, size_t n)
{
    size_t i;

    for (i = 0; i < d->n; i++) {
        if (d->c[i].klen == n && memcmp(d->c[i].key, k, n) == 0)
            return &d->c[i];
    }
    return NULL;
}

static dchild_t *obj_add(dnode_t *d, const char *k, size_t n, int kind)
{
    char *key = malloc(n + 1);
    dnode_t *node = node_new(kind);
    dchild_t *ch = (key && node) ? node_push(d) : NULL;

    if (!ch) {
        free(key);
        free(node);
        return NULL;
    }
    memcpy(key, k, n);
    key[n] = '\0';
    ch->key = key;
    ch->klen = n;
    ch->node = node;
    return ch;
}

/* ---- keys --------------------------------------------------------------------------------- */

enum { SEG_KEY, SEG_APPEND, SEG_INDEX };

typedef struct seg {
    int t;
    const char *p;      /* SEG_KEY */
    size_t n;
    uint32_t idx;       /* SEG_INDEX */
} seg_t;

/* Splits key k into segments (at most max stored). Returns the number of segments (more than
 * max when too deep), or 0 when the key is not in the syntax (then it is a literal). */
static size_t parse_key(const char *k, size_t n, unsigned flags, seg_t *segs, size_t max)
{
    size_t i = 0, count = 0;

    for (;;) {
        size_t start = i;

        while (i < n && k[i] != '.' && k[i] != '[')
            i++;
        if (i == start)
            return 0;
        if (count < max)
            segs[count] = (seg_t){ .t = SEG_KEY, .p = k + start, .n = i - start };
        count++;
        while (i < n && k[i] == '[') {
            const char *close = memchr(k + i + 1, ']', n - i - 1);
            size_t cs = i + 1, cl, j;
            seg_t s = { .t = SEG_APPEND };

            if (!close)
                return 0;
            cl = (size_t)(close - (k + cs));
            if (cl > 0) {
                for (j = 0; j < cl && k[cs + j] >= '0' && k[cs + j] <= '9'; j++)
                    ;
                if (j == cl) {
                    uint64_t v = 0;
                    s.t = SEG_INDEX;
                    for (j = 0; j < cl; j++) {
                        v = v * 10 + (uint64_t)(k[cs + j] - '0');
                        if (v > UINT32_MAX - 1)
                            v = UINT32_MAX - 1;
                    }
                    s.idx = (uint32_t)v;
                } else {
                    if (flags & AIGW_DECODE_NO_MAPS)
                        return 0;
                    s.t = SEG_KEY;
                    s.p = k + cs;
                    s.n = cl;
                }
            }
            if (count < max)
                segs[count] = s;
            count++;
            i = cs + cl + 1;
        }
        if (i == n)
            return count;
        if (k[i] != '.')
            return 0;
        i++;
    }
}

static int seg_kind(const seg_t *s)
{
    return s->t == SEG_KEY ? N_OBJ : N_LIST;
}

/* Puts value (taken) at the path segs[0..nseg) of the tree. Returns 0 or -1 (no memory). */
static int tree_insert(builder_t *b, const seg_t *segs, size_t nseg, json_t *value)
{
    dnode_t *cur = b->root;
    size_t i;

    for (i = 0; i < nseg; i++) {
        const seg_t *s = &segs[i];
        int last = i + 1 == nseg;
        int need = last ? N_VAL : seg_kind(&segs[i + 1]);
        dnode_t *next = NULL;

        if (cur->kind == N_OBJ) {
            dchild_t *ch = obj_find(cur, s->p, s->n);

            if (!ch) {
                ch = obj_add(cur, s->p, s->n, need);
                if (!ch)
                    goto oom;
                next = ch->node;
                if (last) {
                    next->val = value;
                    return 0;
                }
            } else {
                next = ch->node;
                if (last) {
                    if (next->kind == N_OBJ) {
                        node_reset(next, N_VAL);
                        next->val = value;
                        return 0;
                    }
                    if (next->kind == N_VAL && val_to_list(b, next) < 0)
                        goto oom;
                    /* A repeated key: one more item. */
                    break;
                }
                if (next->kind != need) {
                    if (next->kind == N_VAL && need == N_LIST) {
                        if (val_to_list(b, next) < 0)
                            goto oom;
                    } else {
                        node_reset(next, need);
                    }
                }
            }
            cur = next;
        } else {
            /* cur is a list: s is [] or [n]. A [] inside a key means item 1, as in Kong. */
            uint32_t idx = s->t == SEG_INDEX ? s->idx : (last ? next_idx(cur) : 1);
            size_t j;

            if (last) {
                dnode_t *item = node_new(N_VAL);
                if (!item)
                    goto oom;
                item->val = value;
                if (list_add(b, cur, idx, item) < 0)
                    return -1;
                return 0;
            }
            for (j = cur->n; j > 0; j--) {
                if (cur->c[j - 1].idx == idx && cur->c[j - 1].node->kind == need) {
                    next = cur->c[j - 1].node;
                    break;
                }
            }
            if (!next) {
                next = node_new(need);
                if (!next || list_add(b, cur, idx, next) < 0) {
                    if (!next)
                        goto oom;
                    json_decref(value);
                    return -1;
                }
            }
            cur = next;
        }
    }
    /* Only reached by a repeated key: cur's last member is now a list. */
    {
        dnode_t *list = obj_find(cur, segs[nseg - 1].p, segs[nseg - 1].n)->node;
        dnode_t *item = node_new(N_VAL);

        if (!item)
            goto oom;
        item->val = value;
        return list_add(b, list, next_idx(list), item);
    }
oom:
    json_decref(value);
    return -1;
}

/* Adds the arg key[0..klen) = value (taken). Returns AIGW_DECODE_*. */
static int add_arg(builder_t *b, const char *key, size_t klen, json_t *value, char *err,
                   size_t errlen)
{
    seg_t segs[AIGW_DECODE_MAX_DEPTH];
    size_t n;

    if (!value)
        return nomem(err, errlen);
    n = parse_key(key, klen, b->flags, segs, AIGW_DECODE_MAX_DEPTH);
    if (n > AIGW_DECODE_MAX_DEPTH) {
        json_decref(value);
        return fail(err, errlen, AIGW_DECODE_EBAD, MSG_DEPTH);
    }
    if (n == 0) {
        segs[0] = (seg_t){ .t = SEG_KEY, .p = key, .n = klen };
        n = 1;
    }
    if (tree_insert(b, segs, n, value) < 0)
        return nomem(err, errlen);
    return AIGW_DECODE_OK;
}

static int cmp_items(const void *a, const void *b)
{
    const dchild_t *x = a, *y = b;

    if (x->idx != y->idx)
        return x->idx < y->idx ? -1 : 1;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return 0;
}

/* A new jansson value for d (sorting lists), or NULL. */
static json_t *tree_json(dnode_t *d)
{
    json_t *out;
    size_t i;

    if (d->kind == N_VAL)
        return json_incref(d->val);
    if (d->kind == N_OBJ) {
        out = json_object();
        for (i = 0; out && i < d->n; i++) {
            json_t *v = tree_json(d->c[i].node);
            if (!v || json_object_set_new(out, d->c[i].key, v) < 0) {
                json_decref(out);
                out = NULL;
            }
        }
        return out;
    }
    if (d->n > 1)
        qsort(d->c, d->n, sizeof d->c[0], cmp_items);
    out = json_array();
    for (i = 0; out && i < d->n; i++) {
        json_t *v = tree_json(d->c[i].node);
        if (!v || json_array_append_new(out, v) < 0) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

/* ---- application/x-www-form-urlencoded and query strings ---------------------------------- */

static int parse_pairs(builder_t *b, const char *s, size_t n, char *err, size_t errlen)
{
    const char *p, *end;
    size_t count = 0;
    char *buf;
    int rc = AIGW_DECODE_OK;

    if (n == 0)
        return AIGW_DECODE_OK;
    p = s;
    end = s + n;

    /* Count first, so that "Too many arguments" wins over any other error, as in Kong
     * (ngx truncates the args before anything is decoded). */
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *se = amp ? amp : end;
        if (se > p && *p != '=')
            count++;
        if (!amp)
            break;
        p = amp + 1;
    }
    if (count > AIGW_DECODE_MAX_ARGS)
        return fail(err, errlen, AIGW_DECODE_EBAD, MSG_TOO_MANY);
    if (count == 0)
        return AIGW_DECODE_OK;

    buf = malloc(n + 1);
    if (!buf)
        return nomem(err, errlen);
    p = s;
    while (p < end && rc == AIGW_DECODE_OK) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *se = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(se - p));
        const char *ke = eq ? eq : se;

        if (ke > p) {
            size_t klen = pct_decode(p, (size_t)(ke - p), buf, 1);
            char *vbuf = buf + klen;
            json_t *val;

            if (!utf8_ok((const unsigned char *)buf, klen)) {
                rc = fail(err, errlen, AIGW_DECODE_EBAD, MSG_UTF8);
                break;
            }
            if (eq) {
                size_t vlen = pct_decode(eq + 1, (size_t)(se - eq - 1), vbuf, 1);
                if (!utf8_ok((const unsigned char *)vbuf, vlen)) {
                    rc = fail(err, errlen, AIGW_DECODE_EBAD, MSG_UTF8);
                    break;
                }
                val = json_stringn_nocheck(vbuf, vlen);
            } else {
                val = json_true();
            }
            rc = add_arg(b, buf, klen, val, err, errlen);
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    free(buf);
    return rc;
}

/* ---- multipart/form-data ------------------------------------------------------------------ */

/* The boundary parameter of a multipart Content-Type (quotes removed), or 0. */
static int find_boundary(const char *ct, size_t n, const char **bp, size_t *bn)
{
    const char *p, *end;

    if (!ct || n == 0)
        return 0;
    p = memchr(ct, ';', n);
    end = ct + n;
    while (p && p < end) {
        const char *name, *ne, *v, *ve, *semi;

        p++;
        semi = memchr(p, ';', (size_t)(end - p));
        ve = semi ? semi : end;
        while (p < ve && is_blank(*p))
            p++;
        name = p;
        while (p < ve && *p != '=')
            p++;
        ne = p;
        while (ne > name && is_blank(ne[-1]))
            ne--;
        if (p < ve && ieq(name, (size_t)(ne - name), "boundary")) {
            v = p + 1;
            while (v < ve && is_blank(*v))
                v++;
            while (ve > v && is_blank(ve[-1]))
                ve--;
            if (ve - v >= 2 && (*v == '"' || *v == '\'') && ve[-1] == *v) {
                v++;
                ve--;
            }
            if (ve > v && (size_t)(ve - v) <= MAX_BOUNDARY) {
                *bp = v;
                *bn = (size_t)(ve - v);
                return 1;
            }
            return 0;
        }
        p = semi;
    }
    return 0;
}

typedef struct part_name {
    char *buf;          /* room for the header line */
    size_t n;
    int have;           /* 1: name=, 2: name*= (wins) */
} part_name_t;

/* Reads the Content-Disposition value v[0..n) for the part's name into pn. */
static void parse_disposition(const char *v, size_t n, part_name_t *pn)
{
    const char *p = memchr(v, ';', n), *end = v + n;

    while (p && p < end) {
        const char *name, *ne;
        int plain;

        p++;
        while (p < end && is_blank(*p))
            p++;
        name = p;
        while (p < end && *p != '=' && *p != ';' && !is_blank(*p))
            p++;
        ne = p;
        while (p < end && is_blank(*p))
            p++;
        if (p == end || *p != '=') {
            p = memchr(p, ';', (size_t)(end - p));
            continue;
        }
        p++;
        while (p < end && is_blank(*p))
            p++;
        plain = ieq(name, (size_t)(ne - name), "name") && pn->have < 2;
        if (p < end && *p == '"') {
            /* A quoted string: up to the closing quote, backslash escapes undone. */
            size_t o = 0;
            p++;
            while (p < end && *p != '"') {
                if (*p == '\\' && p + 1 < end)
                    p++;
                if (plain)
                    pn->buf[o++] = *p;
                p++;
            }
            if (p < end)
                p++;
            if (plain) {
                pn->n = o;
                pn->have = 1;
            }
        } else {
            const char *vs = p, *vend;
            while (p < end && *p != ';')
                p++;
            vend = p;
            while (vend > vs && is_blank(vend[-1]))
                vend--;
            if (plain) {
                memcpy(pn->buf, vs, (size_t)(vend - vs));
                pn->n = (size_t)(vend - vs);
                pn->have = 1;
            } else if (ieq(name, (size_t)(ne - name), "name*") && vend - vs >= 7 &&
                       ieq(vs, 7, "utf-8''")) {
                pn->n = pct_decode(vs + 7, (size_t)(vend - vs - 7), pn->buf, 0);
                pn->have = 2;
            }
        }
        p = memchr(p, ';', (size_t)(end - p));
    }
}

static int parse_multipart(builder_t *b, const char *ct, size_t ctn, const char *body,
                           size_t n, char *err, size_t errlen)
{
    const char *bnd, *p, *end;
    size_t bn, dlen, parts = 0;
    char *delim = NULL;
    part_name_t pn = { 0 };
    int rc = AIGW_DECODE_OK;

    if (n == 0)
        return AIGW_DECODE_OK;
    end = body + n;
    if (!find_boundary(ct, ctn, &bnd, &bn))
        return fail(err, errlen, AIGW_DECODE_EBAD, MSG_MULTIPART);
    dlen = bn + 4;
    delim = malloc(dlen);
    pn.buf = malloc(n + 1);
    if (!delim || !pn.buf) {
        rc = nomem(err, errlen);
        goto out;
    }
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, bnd, bn);

    /* The first delimiter may open the body (without its CRLF) or follow a preamble. */
    if (n >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0) {
        p = body + dlen - 2;
    } else {
        p = memmem(body, n, delim, dlen);
        if (!p)
            goto bad;
        p += dlen;
    }
    for (;;) {
        const char *q;
        size_t lines = 0;

        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            break; /* the close delimiter; the epilogue is ignored */
        while (p < end && is_blank(*p))
            p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            goto bad;
        p += 2;
        pn.have = 0;
        pn.n = 0;
        for (;;) {
            const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2), *colon;

            if (!eol)
                goto bad;
            if (eol == p) {
                p += 2;
                break;
            }
            if (++lines > MAX_PART_HEADERS)
                goto bad;
            colon = memchr(p, ':', (size_t)(eol - p));
            if (colon && ieq(p, (size_t)(colon - p), "content-disposition"))
                parse_disposition(colon + 1, (size_t)(eol - colon - 1), &pn);
            p = eol + 2;
        }
        q = memmem(p, (size_t)(end - p), delim, dlen);
        if (!q)
            goto bad;
        if (pn.have && pn.n > 0) {
            if (++parts > AIGW_DECODE_MAX_ARGS) {
                rc = fail(err, errlen, AIGW_DECODE_EBAD, MSG_TOO_MANY);
                goto out;
            }
            if (!utf8_ok((const unsigned char *)pn.buf, pn.n) ||
                !utf8_ok((const unsigned char *)p, (size_t)(q - p))) {
                rc = fail(err, errlen, AIGW_DECODE_EBAD, MSG_UTF8);
                goto out;
            }
            rc = add_arg(b, pn.buf, pn.n, json_stringn_nocheck(p, (size_t)(q - p)), err,
                         errlen);
            if (rc != AIGW_DECODE_OK)
                goto out;
        }
        p = q + dlen;
    }
    goto out;
bad:
    rc = fail(err, errlen, AIGW_DECODE_EBAD, MSG_MULTIPART);
out:
    free(delim);
    free(pn.buf);
    return rc;
}

/* ---- coercion ----------------------------------------------------------------------------- */

typedef struct cctx {
    aigw_decode_coerce_fn fn;
    void *ud;
    size_t pieces;      /* elements made by comma splitting, at most AIGW_DECODE_MAX_ARGS */
    int too_many;
    const char *path[AIGW_DECODE_MAX_DEPTH + 1];
} cctx_t;

enum { M_FIELDS, M_VALUE, M_CALLBACK };

static json_t *coerce_value(cctx_t *c, json_t *v, const aigw_field_t *f, size_t depth,
                            int path_ok);

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r';
}

/* Lua's tonumber on a decimal string: a JSON number for v, or v itself. */
static json_t *to_number(json_t *v, int integer)
{
    const char *s = json_string_value(v), *p = s, *e;
    size_t n = json_string_length(v), digits = 0;
    int plain = 1;
    double d;
    char *endp;

    while (*p && is_space(*p))
        p++;
    e = p;
    if (*e == '+' || *e == '-')
        e++;
    while (*e >= '0' && *e <= '9') {
        e++;
        digits++;
    }
    if (*e == '.') {
        plain = 0;
        e++;
        while (*e >= '0' && *e <= '9') {
            e++;
            digits++;
        }
    }
    if (digits == 0)
        return json_incref(v);
    if (*e == 'e' || *e == 'E') {
        size_t ed = 0;
        plain = 0;
        e++;
        if (*e == '+' || *e == '-')
            e++;
        while (*e >= '0' && *e <= '9') {
            e++;
            ed++;
        }
        if (ed == 0)
            return json_incref(v);
    }
    while (*e && is_space(*e))
        e++;
    if ((size_t)(e - s) != n)
        return json_incref(v);

    if (plain) {
        long long ll;
        errno = 0;
        ll = strtoll(p, &endp, 10);
        if (errno == 0)
            return json_integer(ll);
    }
    errno = 0;
    d = strtod(p, &endp);
    if (errno == ERANGE && (d > 1.0 || d < -1.0))
        return json_incref(v); /* overflow: not a number aigw can hold */
    if (integer && d >= -9.2e18 && d <= 9.2e18 && (double)(long long)d == d)
        return json_integer((json_int_t)d);
    return json_real(d);
}

static const aigw_field_t *find_field(const aigw_field_t *fields, const char *name)
{
    for (; fields && fields->name; fields++) {
        if (strcmp(fields->name, name) == 0)
            return fields;
    }
    return NULL;
}

/* Coerces obj's members in place; returns a new reference to obj, or NULL. */
static json_t *coerce_members(cctx_t *c, json_t *obj, int mode, const aigw_field_t *f,
                              size_t depth, int path_ok)
{
    const char *key;
    json_t *val;

    json_object_foreach(obj, key, val) {
        const aigw_field_t *cf = NULL;
        int cpath = path_ok && depth < AIGW_DECODE_MAX_DEPTH;
        json_t *nv;

        if (cpath)
            c->path[depth] = key;
        if (mode == M_FIELDS) {
            cf = find_field(f, key);
            if (!cf)
                cpath = 0; /* an unknown field: left as it is */
        } else if (mode == M_VALUE) {
            cf = f;
        } else if (cpath && c->fn) {
            cf = c->fn(c->ud, c->path, depth + 1);
        }
        nv = coerce_value(c, val, cf, depth + 1, cpath);
        if (!nv)
            return NULL;
        if (nv == val) {
            json_decref(nv);
        } else if (json_object_set_new(obj, key, nv) < 0) {
            return NULL;
        }
    }
    return json_incref(obj);
}

/* Appends item (borrowed), coerced by ef, to out; with split, a string is split on commas
 * first. Returns 0 or -1. */
static int add_element(cctx_t *c, json_t *out, json_t *item, const aigw_field_t *ef,
                       int split, size_t depth)
{
    if (split && json_is_string(item)) {
        const char *s = json_string_value(item), *end = s + json_string_length(item);

        while (s <= end) {
            const char *comma = memchr(s, ',', (size_t)(end - s));
            const char *pe = comma ? comma : end, *ps = s;
            json_t *piece, *nv;

            while (ps < pe && is_blank(*ps))
                ps++;
            while (pe > ps && is_blank(pe[-1]))
                pe--;
            if (pe > ps) {
                /* Splitting must not turn one arg into millions of elements. */
                if (++c->pieces > AIGW_DECODE_MAX_ARGS) {
                    c->too_many = 1;
                    return -1;
                }
                piece = json_stringn_nocheck(ps, (size_t)(pe - ps));
                if (!piece)
                    return -1;
                nv = coerce_value(c, piece, ef, depth + 1, 0);
                json_decref(piece);
                if (!nv || json_array_append_new(out, nv) < 0)
                    return -1;
            }
            if (!comma)
                break;
            s = comma + 1;
        }
        return 0;
    }
    {
        json_t *nv = coerce_value(c, item, ef, depth + 1, 0);
        if (!nv || json_array_append_new(out, nv) < 0)
            return -1;
    }
    return 0;
}

static json_t *coerce_array(cctx_t *c, json_t *v, const aigw_field_t *f, size_t depth)
{
    const aigw_field_t *ef = f->elements;
    int split = (f->flags & AIGW_F_SPLIT_COMMAS) || (ef && (ef->flags & AIGW_F_SPLIT_COMMAS));
    json_t *out;

    if (json_is_object(v))
        return json_incref(v); /* `paths[x]=...`: not an array; validation says so */
    out = json_array();
    if (!out)
        return NULL;
    if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) {
            if (add_element(c, out, item, ef, split, depth) < 0)
                goto oom;
        }
    } else if (add_element(c, out, v, ef, split, depth) < 0) {
        goto oom;
    }
    return out;
oom:
    json_decref(out);
    return NULL;
}

/* A new reference to v coerced with field f (NULL: none); NULL when out of memory. depth is
 * the number of keys in c->path, which are v's path when path_ok. */
static json_t *coerce_value(cctx_t *c, json_t *v, const aigw_field_t *f, size_t depth,
                            int path_ok)
{
    if (depth > MAX_COERCE_DEPTH)
        return json_incref(v);
    if (!f) {
        if (path_ok && c->fn && json_is_object(v))
            return coerce_members(c, v, M_CALLBACK, NULL, depth, 1);
        return json_incref(v);
    }
    if (json_is_string(v) && json_string_length(v) == 0)
        return json_null();
    if (json_is_null(v))
        return json_incref(v);

    switch (f->type) {
    case AIGW_FT_INTEGER:
    case AIGW_FT_NUMBER:
        if (json_is_string(v))
            return to_number(v, f->type == AIGW_FT_INTEGER);
        return json_incref(v);
    case AIGW_FT_BOOLEAN:
        if (json_is_string(v)) {
            if (strcmp(json_string_value(v), "true") == 0)
                return json_true();
            if (strcmp(json_string_value(v), "false") == 0)
                return json_false();
        }
        return json_incref(v);
    case AIGW_FT_ARRAY:
    case AIGW_FT_SET:
        return coerce_array(c, v, f, depth);
    case AIGW_FT_MAP:
        if (json_is_object(v) && f->elements)
            return coerce_members(c, v, M_VALUE, f->elements, depth, path_ok);
        return json_incref(v);
    case AIGW_FT_RECORD:
        if (!json_is_object(v))
            return json_incref(v);
        if (f->fields)
            return coerce_members(c, v, M_FIELDS, f->fields, depth, path_ok);
        return coerce_members(c, v, M_CALLBACK, NULL, depth, path_ok);
    case AIGW_FT_FOREIGN:
        if (json_is_object(v))
            return coerce_members(c, v, M_CALLBACK, NULL, depth, path_ok);
        return json_incref(v);
    default:
        return json_incref(v);
    }
}

/* ---- public ------------------------------------------------------------------------------- */

int aigw_decode_kind(const char *content_type, size_t content_type_len, size_t body_len,
                     int allow_yaml, aigw_body_kind_t *out)
{
    static const struct {
        const char *prefix;
        aigw_body_kind_t kind;
        int yaml;
    } types[] = {
        { "application/json", AIGW_BODY_JSON, 0 },
        { "multipart/form-data", AIGW_BODY_MULTIPART, 0 },
        { "application/x-www-form-urlencoded", AIGW_BODY_FORM, 0 },
        { "application/yaml", AIGW_BODY_YAML, 1 },
        { "text/yaml", AIGW_BODY_YAML, 1 },
    };
    size_t i;

    if (!content_type) {
        if (body_len > 0)
            return -1;
        *out = AIGW_BODY_NONE;
        return 0;
    }
    for (i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t pl = strlen(types[i].prefix);
        if ((!types[i].yaml || allow_yaml) && content_type_len >= pl &&
            memcmp(content_type, types[i].prefix, pl) == 0) {
            *out = types[i].kind;
            return 0;
        }
    }
    return -1;
}

int aigw_decode_coerce(json_t *obj, aigw_decode_coerce_fn coerce, void *ud, char *err,
                       size_t errlen)
{
    cctx_t c = { .fn = coerce, .ud = ud };
    json_t *r;

    if (!coerce || !json_is_object(obj))
        return AIGW_DECODE_OK;
    r = coerce_members(&c, obj, M_CALLBACK, NULL, 0, 1);
    if (!r && c.too_many)
        return fail(err, errlen, AIGW_DECODE_EBAD, MSG_TOO_MANY);
    if (!r)
        return nomem(err, errlen);
    json_decref(r);
    return AIGW_DECODE_OK;
}

/* Runs the args parser selected by kind over s[0..n) and builds *out. */
static int decode_args(int kind, unsigned flags, const char *ct, size_t ctn, const char *s,
                       size_t n, aigw_decode_coerce_fn coerce, void *ud, json_t **out,
                       char *err, size_t errlen)
{
    builder_t b = { .flags = flags };
    json_t *obj = NULL;
    int rc;

    b.root = node_new(N_OBJ);
    if (!b.root)
        return nomem(err, errlen);
    if (kind == AIGW_BODY_MULTIPART)
        rc = parse_multipart(&b, ct, ctn, s, n, err, errlen);
    else
        rc = parse_pairs(&b, s, n, err, errlen);
    if (rc == AIGW_DECODE_OK) {
        obj = tree_json(b.root);
        if (!obj)
            rc = nomem(err, errlen);
    }
    node_free(b.root);
    if (rc == AIGW_DECODE_OK)
        rc = aigw_decode_coerce(obj, coerce, ud, err, errlen);
    if (rc != AIGW_DECODE_OK) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return AIGW_DECODE_OK;
}

static int decode_json(const char *body, size_t len, json_t **out, char *err, size_t errlen)
{
    json_error_t je;
    json_t *j;

    if (len == 0)
        return fail(err, errlen, AIGW_DECODE_EBAD, MSG_JSON);
    j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return fail(err, errlen, AIGW_DECODE_EBAD, MSG_JSON);
    if (json_is_array(j) && json_array_size(j) == 0) {
        json_decref(j);
        j = json_object();
        if (!j)
            return nomem(err, errlen);
    }
    if (!json_is_object(j)) {
        json_decref(j);
        return fail(err, errlen, AIGW_DECODE_EBAD, MSG_JSON);
    }
    *out = j;
    return AIGW_DECODE_OK;
}

int aigw_decode_body(aigw_body_kind_t kind, const char *content_type, size_t ct_len,
                     const char *body, size_t len, aigw_decode_coerce_fn coerce, void *ud,
                     json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!body)
        len = 0;
    switch (kind) {
    case AIGW_BODY_NONE:
        *out = json_object();
        return *out ? AIGW_DECODE_OK : nomem(err, errlen);
    case AIGW_BODY_JSON:
        return decode_json(body, len, out, err, errlen);
    case AIGW_BODY_FORM:
    case AIGW_BODY_MULTIPART:
        return decode_args((int)kind, 0, content_type, content_type ? ct_len : 0, body, len,
                           coerce, ud, out, err, errlen);
    default:
        return fail(err, errlen, AIGW_DECODE_EBAD, MSG_KIND);
    }
}

int aigw_decode_query(const char *query, size_t len, unsigned flags,
                      aigw_decode_coerce_fn coerce, void *ud, json_t **out, char *err,
                      size_t errlen)
{
    *out = NULL;
    if (!query)
        len = 0;
    return decode_args(AIGW_BODY_FORM, flags, NULL, 0, query, len, coerce, ud, out, err,
                       errlen);
}
