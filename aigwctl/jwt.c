/* aigwctl/jwt.c: `jwt mint` signs a token with a consumer's jwt credential, read through the
 * admin API (libjwt does the signing), and `jwt decode` shows a token's header and claims and,
 * given a key or a consumer, whether it verifies. Also ctl_jwt_mint for the load tester. */
#include "ctl.h"

#include <errno.h>
#include <jwt.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/fs.h"
#include "common/sbuf.h"

/* What one mint needs. claims and headers are extra fields (objects) or NULL. */
typedef struct mint_opts {
    const char *consumer;
    const char *key;
    const char *private_key;
    int secret_base64;
    long ttl_s;
    int kid;
    json_t *claims;
    json_t *headers;
} mint_opts_t;

/* ---- small helpers ---- */

int ctl_parse_duration(const char *s, double *seconds)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0)
        return -1;
    double mul;
    if (*end == '\0' || strcmp(end, "s") == 0)
        mul = 1;
    else if (strcmp(end, "ms") == 0)
        mul = 0.001;
    else if (strcmp(end, "m") == 0)
        mul = 60;
    else if (strcmp(end, "h") == 0)
        mul = 3600;
    else if (strcmp(end, "d") == 0)
        mul = 86400;
    else
        return -1;
    v *= mul;
    if (v > 100.0 * 365 * 86400)
        return -1;
    *seconds = v;
    return 0;
}

/* Decode base64 (url = 0) or base64url (url = 1), padding optional, with OpenSSL's decoder.
 * 0 with *out (caller frees, NUL-terminated for convenience) or -1 on malformed input. */
static int b64_decode(const char *in, size_t n, int url, unsigned char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    size_t pad = 0;
    while (n && in[n - 1] == '=') {
        n--;
        pad++;
    }
    if (pad > 2 || n % 4 == 1)
        return -1;
    size_t need = (n + 3) / 4 * 4;
    char *buf = malloc(need + 1);
    unsigned char *dec = malloc(need / 4 * 3 + 1);
    if (!buf || !dec)
        goto bad;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        if (url && ch == '-')
            ch = '+';
        else if (url && ch == '_')
            ch = '/';
        else if (url && (ch == '+' || ch == '/'))
            goto bad;
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '+' || ch == '/'))
            goto bad;
        buf[i] = ch;
    }
    size_t added = need - n;
    if (pad && pad != added)
        goto bad;
    for (size_t i = n; i < need; i++)
        buf[i] = '=';
    buf[need] = '\0';
    int r = need ? EVP_DecodeBlock(dec, (const unsigned char *)buf, (int)need) : 0;
    if (r < 0 || (size_t)r < added)
        goto bad;
    /* EVP_DecodeBlock counts the bytes the padding stands for: drop them. */
    *outlen = (size_t)r - added;
    dec[*outlen] = '\0';
    free(buf);
    *out = dec;
    return 0;
bad:
    free(buf);
    free(dec);
    return -1;
}

/* "k=v" into obj: v as JSON when it parses (numbers, true, false, null, objects, arrays,
 * quoted strings), else as a plain string. -1 when there is no key. */
static int add_kv(json_t *obj, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return -1;
    char *k = strndup(kv, (size_t)(eq - kv));
    if (!k)
        return -1;
    json_error_t je;
    json_t *v = json_loads(eq + 1, JSON_DECODE_ANY, &je);
    if (!v)
        v = json_string(eq + 1);
    int rc = v ? json_object_set_new(obj, k, v) : -1;
    free(k);
    return rc;
}

static const char *str_field(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* GET every jwt credential of the consumer into *out (caller decrefs). */
static int fetch_creds(ctl_t *c, const char *consumer, json_t **out)
{
    *out = json_array();
    char *e = ctl_escape(consumer);
    aigw_sbuf_t p = { 0 };
    aigw_sbuf_addf(&p, "/consumers/%s/jwt", e ? e : "");
    free(e);
    int rc = *out && p.p ? ctl_list_all(c, p.p, *out) : CTL_ECONN;
    aigw_sbuf_free(&p);
    return rc;
}

/* The comma-separated keys of creds (for messages). Caller frees. */
static char *list_keys(json_t *creds)
{
    aigw_sbuf_t b = { 0 };
    size_t i;
    json_t *x;
    json_array_foreach(creds, i, x) {
        if (i)
            aigw_sbuf_add(&b, ", ");
        aigw_sbuf_add(&b, str_field(x, "key") ? str_field(x, "key") : "(no key)");
    }
    return b.p;
}

/* The credential to sign with: the one whose key is `key`, or the only one. Borrowed. */
static int pick_cred(const ctl_cmd_t *cmd, const char *consumer, json_t *creds, const char *key,
                     json_t **cred)
{
    size_t n = json_array_size(creds);
    if (n == 0) {
        fprintf(stderr,
                "aigwctl: consumer %s has no jwt credential; create one with: aigwctl jwt create "
                "--consumer %s\n",
                consumer, consumer);
        return CTL_EAPI;
    }
    if (key) {
        size_t i;
        json_t *x;
        json_array_foreach(creds, i, x) {
            const char *k = str_field(x, "key");
            if (k && strcmp(k, key) == 0) {
                *cred = x;
                return CTL_OK;
            }
        }
        char *keys = list_keys(creds);
        fprintf(stderr, "aigwctl: consumer %s has no jwt credential with key '%s' (its keys: %s)\n",
                consumer, key, keys ? keys : "");
        free(keys);
        return CTL_EAPI;
    }
    if (n > 1) {
        char *keys = list_keys(creds);
        int rc = ctl_usage_error(cmd, "consumer %s has %zu jwt credentials: choose one with --key (%s)",
                                 consumer, n, keys ? keys : "");
        free(keys);
        return rc;
    }
    *cred = json_array_get(creds, 0);
    return CTL_OK;
}

static int is_hmac(const char *alg)
{
    return alg && strncmp(alg, "HS", 2) == 0;
}

/* The HMAC key of a credential: its secret, base64-decoded when asked. 0 or -1 (message). */
static int hmac_key(json_t *cred, int secret_base64, unsigned char **key, size_t *len)
{
    const char *secret = str_field(cred, "secret");
    if (!secret || !*secret) {
        fprintf(stderr, "aigwctl: the jwt credential %s has no secret\n",
                str_field(cred, "key") ? str_field(cred, "key") : "");
        return -1;
    }
    if (secret_base64) {
        if (b64_decode(secret, strlen(secret), 0, key, len) != 0 || *len == 0) {
            fprintf(stderr, "aigwctl: --secret-base64: the secret of credential %s is not base64\n",
                    str_field(cred, "key") ? str_field(cred, "key") : "");
            return -1;
        }
        return 0;
    }
    *len = strlen(secret);
    *key = (unsigned char *)strdup(secret);
    return *key ? 0 : -1;
}

static void free_key(unsigned char *key, size_t len)
{
    if (key)
        OPENSSL_cleanse(key, len);
    free(key);
}

/* ---- mint ---- */

static int mint(ctl_t *c, const ctl_cmd_t *cmd, const mint_opts_t *o, char **token)
{
    *token = NULL;
    json_t *creds = NULL, *cred = NULL, *claims = NULL, *hdrs = NULL;
    unsigned char *key = NULL;
    size_t keylen = 0;
    jwt_t *j = NULL;
    char *cj = NULL, *hj = NULL;
    int rc = fetch_creds(c, o->consumer, &creds);
    if (rc != CTL_OK)
        goto out;
    rc = pick_cred(cmd, o->consumer, creds, o->key, &cred);
    if (rc != CTL_OK)
        goto out;
    rc = CTL_EAPI;
    const char *ckey = str_field(cred, "key");
    const char *alg_name = str_field(cred, "algorithm");
    if (!alg_name)
        alg_name = "HS256";
    jwt_alg_t alg = jwt_str_alg(alg_name);
    if (alg == JWT_ALG_INVAL || alg == JWT_ALG_NONE) {
        fprintf(stderr, "aigwctl: the jwt credential %s uses %s, which libjwt on this system cannot "
                        "sign (it signs HS256/384/512, RS256/384/512 and ES256/384/512)\n",
                ckey ? ckey : "", alg_name);
        goto out;
    }
    if (is_hmac(alg_name)) {
        if (o->private_key)
            fprintf(stderr, "aigwctl: warning: the credential uses %s: --private-key is ignored\n",
                    alg_name);
        if (hmac_key(cred, o->secret_base64, &key, &keylen) != 0)
            goto out;
    } else {
        if (!o->private_key) {
            rc = ctl_usage_error(cmd,
                                 "the jwt credential %s uses %s: give --private-key FILE (the PEM private "
                                 "key matching its rsa_public_key)",
                                 ckey ? ckey : "", alg_name);
            goto out;
        }
        char *pem = NULL;
        if (aigw_read_file(o->private_key, 1 << 20, &pem, &keylen) != 0) {
            fprintf(stderr, "aigwctl: cannot read the private key %s: %s\n", o->private_key,
                    strerror(errno));
            goto out;
        }
        key = (unsigned char *)pem;
    }
    if (jwt_new(&j) != 0) {
        fprintf(stderr, "aigwctl: out of memory\n");
        goto out;
    }
    if (jwt_set_alg(j, alg, key, (int)keylen) != 0) {
        fprintf(stderr, "aigwctl: libjwt refused the key for %s\n", alg_name);
        goto out;
    }
    long now = (long)time(NULL);
    claims = json_object();
    json_object_set_new(claims, "iss", json_string(ckey ? ckey : ""));
    json_object_set_new(claims, "iat", json_integer(now));
    json_object_set_new(claims, "exp", json_integer(now + o->ttl_s));
    if (o->claims)
        json_object_update(claims, o->claims);
    hdrs = json_object();
    if (o->kid && ckey)
        json_object_set_new(hdrs, "kid", json_string(ckey));
    if (o->headers)
        json_object_update(hdrs, o->headers);
    cj = json_dumps(claims, JSON_COMPACT);
    hj = json_object_size(hdrs) ? json_dumps(hdrs, JSON_COMPACT) : NULL;
    if (!cj || jwt_add_grants_json(j, cj) != 0 || (hj && jwt_add_headers_json(j, hj) != 0)) {
        fprintf(stderr, "aigwctl: cannot build the token's claims\n");
        goto out;
    }
    *token = jwt_encode_str(j);
    if (!*token) {
        fprintf(stderr, "aigwctl: signing with %s failed: %s\n", alg_name,
                is_hmac(alg_name) ? "libjwt error"
                                  : "is the private key of the right type (RSA for RS*, EC for ES*)?");
        goto out;
    }
    /* An RS/ES token the gateway will reject is worth a warning: check it with the public key. */
    const char *pub = str_field(cred, "rsa_public_key");
    if (!is_hmac(alg_name) && pub && *pub) {
        jwt_t *v = NULL;
        if (jwt_decode(&v, *token, (const unsigned char *)pub, (int)strlen(pub)) != 0)
            fprintf(stderr, "aigwctl: warning: the token does not verify with the credential's "
                            "rsa_public_key: %s is not its private key\n",
                    o->private_key);
        jwt_free(v);
    }
    rc = CTL_OK;
out:
    free(cj);
    free(hj);
    jwt_free(j);
    free_key(key, keylen);
    json_decref(claims);
    json_decref(hdrs);
    json_decref(creds);
    return rc;
}

int ctl_jwt_mint(ctl_t *c, const char *consumer, const char *key, const char *private_key_file,
                 long ttl_s, char **token)
{
    mint_opts_t o = { 0 };
    o.consumer = consumer;
    o.key = key;
    o.private_key = private_key_file;
    o.ttl_s = ttl_s;
    return mint(c, NULL, &o, token);
}

static int run_mint(ctl_t *c, const ctl_cmd_t *cmd, ctl_args_t *a)
{
    mint_opts_t o = { 0 };
    if (a->npos)
        return ctl_usage_error(cmd, "unexpected argument '%s'", a->pos[0]);
    o.consumer = ctl_opt(a, "consumer");
    if (!o.consumer || !*o.consumer)
        return ctl_usage_error(cmd, "name the consumer with --consumer NAME");
    o.key = ctl_opt(a, "key");
    o.private_key = ctl_opt(a, "private-key");
    o.secret_base64 = ctl_opt_on(a, "secret-base64");
    o.kid = ctl_opt_on(a, "kid");
    double ttl = 300;
    const char *t = ctl_opt(a, "ttl");
    if (t && (ctl_parse_duration(t, &ttl) != 0 || ttl < 1))
        return ctl_usage_error(cmd, "--ttl: '%s' is not a duration (30s, 5m, 2h, 1d or seconds)", t);
    o.ttl_s = (long)llround(ttl);
    const char *vals[64];
    int rc = CTL_OK;
    o.claims = json_object();
    o.headers = json_object();
    size_t n = ctl_opt_all(a, "claim", vals, 64);
    for (size_t i = 0; i < n && rc == CTL_OK; i++)
        if (add_kv(o.claims, vals[i]) != 0)
            rc = ctl_usage_error(cmd, "--claim: '%s' is not key=value", vals[i]);
    n = ctl_opt_all(a, "header", vals, 64);
    for (size_t i = 0; i < n && rc == CTL_OK; i++) {
        if (strncmp(vals[i], "alg=", 4) == 0)
            rc = ctl_usage_error(cmd, "--header: alg comes from the credential's algorithm");
        else if (add_kv(o.headers, vals[i]) != 0)
            rc = ctl_usage_error(cmd, "--header: '%s' is not key=value", vals[i]);
    }
    char *token = NULL;
    if (rc == CTL_OK)
        rc = mint(c, cmd, &o, &token);
    if (rc == CTL_OK)
        printf("%s\n", token);
    free(token);
    json_decref(o.claims);
    json_decref(o.headers);
    return rc;
}

/* ---- decode ---- */

/* Part i (0 header, 1 payload) of a compact JWS as a JSON object, or NULL. */
static json_t *decode_part(const char *p, size_t n)
{
    unsigned char *raw;
    size_t len;
    if (b64_decode(p, n, 1, &raw, &len) != 0)
        return NULL;
    json_error_t je;
    json_t *v = json_loadb((const char *)raw, len, 0, &je);
    free(raw);
    if (v && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

static void fmt_span(char *buf, size_t cap, long s)
{
    if (s < 0)
        s = -s;
    if (s >= 86400)
        snprintf(buf, cap, "%ldd %ldh", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(buf, cap, "%ldh %ldm", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(buf, cap, "%ldm %lds", s / 60, s % 60);
    else
        snprintf(buf, cap, "%lds", s);
}

static void fmt_utc(char *buf, size_t cap, long t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm))
        snprintf(buf, cap, "(out of range)");
}

/* Verify the signature of token with key (libjwt), after checking that the kind of key suits
 * the token's algorithm. 1 valid, 0 not (reason set). */
static int verify_with(const char *token, const char *alg, int hmac_key_given, const unsigned char *key,
                       size_t keylen, char *reason, size_t rcap)
{
    if (!alg || strcmp(alg, "none") == 0) {
        snprintf(reason, rcap, "the token is not signed (alg none)");
        return 0;
    }
    if (is_hmac(alg) != hmac_key_given) {
        snprintf(reason, rcap, "the token is signed with %s, which needs %s", alg,
                 is_hmac(alg) ? "a secret, not a public key" : "a public key, not a secret");
        return 0;
    }
    if (jwt_str_alg(alg) == JWT_ALG_INVAL) {
        snprintf(reason, rcap, "libjwt on this system cannot verify %s", alg);
        return 0;
    }
    jwt_t *j = NULL;
    int r = jwt_decode(&j, token, key, (int)keylen);
    jwt_free(j);
    if (r != 0) {
        snprintf(reason, rcap, "the %s signature does not match", alg);
        return 0;
    }
    return 1;
}

/* Find the credential of consumer that signed the token (its key is the iss claim, or the kid
 * header, or it is the only one) and verify with it. Returns an exit code when the admin API
 * failed, else CTL_OK with *valid and reason set. */
static int verify_consumer(ctl_t *c, const char *consumer, int secret_base64, const char *token,
                           json_t *header, json_t *claims, int *valid, char *reason, size_t rcap,
                           char *how, size_t hcap)
{
    json_t *creds;
    *valid = 0;
    int rc = fetch_creds(c, consumer, &creds);
    if (rc != CTL_OK) {
        json_decref(creds);
        return rc;
    }
    const char *cands[2] = { str_field(claims, "iss"), str_field(header, "kid") };
    json_t *cred = NULL;
    for (int k = 0; k < 2 && !cred; k++) {
        size_t i;
        json_t *x;
        json_array_foreach(creds, i, x) {
            const char *ck = str_field(x, "key");
            if (cands[k] && ck && strcmp(ck, cands[k]) == 0) {
                cred = x;
                break;
            }
        }
    }
    if (!cred && json_array_size(creds) == 1)
        cred = json_array_get(creds, 0);
    const char *alg = str_field(header, "alg");
    if (!cred) {
        if (json_array_size(creds) == 0)
            snprintf(reason, rcap, "consumer %s has no jwt credential", consumer);
        else
            snprintf(reason, rcap, "no jwt credential of consumer %s has the key '%s' (iss)", consumer,
                     cands[0] ? cands[0] : "");
    } else {
        const char *calg = str_field(cred, "algorithm") ? str_field(cred, "algorithm") : "HS256";
        const char *ck = str_field(cred, "key") ? str_field(cred, "key") : "";
        snprintf(how, hcap, "with consumer %s's credential %s", consumer, ck);
        if (!alg || strcmp(alg, calg) != 0) {
            snprintf(reason, rcap, "the token says alg %s, the credential %s uses %s", alg ? alg : "(none)",
                     ck, calg);
        } else if (is_hmac(calg)) {
            unsigned char *key = NULL;
            size_t kl = 0;
            if (hmac_key(cred, secret_base64, &key, &kl) == 0)
                *valid = verify_with(token, alg, 1, key, kl, reason, rcap);
            else
                snprintf(reason, rcap, "the credential's secret cannot be used");
            free_key(key, kl);
        } else {
            const char *pub = str_field(cred, "rsa_public_key");
            if (!pub)
                snprintf(reason, rcap, "the credential %s has no rsa_public_key", ck);
            else
                *valid = verify_with(token, alg, 0, (const unsigned char *)pub, strlen(pub), reason, rcap);
        }
    }
    json_decref(creds);
    return CTL_OK;
}

/* Read the token from stdin (for "-"): first non-blank text, at most 64 KiB. Caller frees. */
static char *read_stdin_token(void)
{
    aigw_sbuf_t b = { 0 };
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0 && b.n < 65536)
        aigw_sbuf_addn(&b, buf, n);
    return b.oom ? (free(b.p), NULL) : b.p;
}

static void print_time_claim(json_t *claims, const char *name, long now)
{
    json_t *v = json_object_get(claims, name);
    if (!json_is_number(v))
        return;
    long t = (long)json_number_value(v);
    char when[64], span[64];
    fmt_utc(when, sizeof(when), t);
    fmt_span(span, sizeof(span), t - now);
    const char *note;
    char extra[96];
    if (strcmp(name, "exp") == 0)
        snprintf(extra, sizeof(extra), t <= now ? "expired %s ago" : "valid for %s", span);
    else if (strcmp(name, "nbf") == 0)
        snprintf(extra, sizeof(extra), t > now ? "not valid for another %s" : "in effect since %s ago",
                 span);
    else
        snprintf(extra, sizeof(extra), t > now ? "in %s (in the future)" : "%s ago", span);
    note = extra;
    printf("  %-4s %ld = %s (%s)\n", name, t, when, note);
}

static int run_decode(ctl_t *c, const ctl_cmd_t *cmd, ctl_args_t *a)
{
    if (a->npos != 1)
        return ctl_usage_error(cmd, a->npos ? "give one token" : "give the token (or - to read it from stdin)");
    const char *secret = ctl_opt(a, "secret"), *pubfile = ctl_opt(a, "public-key");
    const char *consumer = ctl_opt(a, "consumer");
    int nchecks = (secret != NULL) + (pubfile != NULL) + (consumer != NULL);
    if (nchecks > 1)
        return ctl_usage_error(cmd, "give one of --consumer, --secret and --public-key");
    int secret_base64 = ctl_opt_on(a, "secret-base64");
    char *owned = NULL;
    const char *in = a->pos[0];
    if (strcmp(in, "-") == 0) {
        owned = read_stdin_token();
        in = owned ? owned : "";
    }
    /* Trim blanks and an "Authorization: Bearer" prefix a user may paste. */
    while (*in == ' ' || *in == '\t' || *in == '\n' || *in == '\r')
        in++;
    if (strncmp(in, "Bearer ", 7) == 0 || strncmp(in, "bearer ", 7) == 0)
        in += 7;
    size_t tl = strcspn(in, " \t\r\n");
    char *token = strndup(in, tl);
    free(owned);
    if (!token)
        return CTL_EAPI;
    int rc = CTL_OK;
    json_t *header = NULL, *claims = NULL, *out = NULL;
    const char *d1 = strchr(token, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2 || strchr(d2 + 1, '.')) {
        rc = ctl_usage_error(cmd, "not a JWT: a signed token has three parts separated by dots%s",
                             d2 && strchr(d2 + 1, '.') ? " (encrypted JWE tokens are not supported)" : "");
        goto done;
    }
    header = decode_part(token, (size_t)(d1 - token));
    claims = decode_part(d1 + 1, (size_t)(d2 - d1 - 1));
    if (!header || !claims) {
        rc = ctl_usage_error(cmd, "not a JWT: the %s is not base64url-encoded JSON",
                             !header ? "header" : "payload");
        goto done;
    }
    const char *alg = str_field(header, "alg");
    int valid = -1; /* -1 not checked, 0 invalid, 1 valid */
    char reason[256] = "", how[256] = "";
    if (secret) {
        unsigned char *key = NULL;
        size_t kl = 0;
        if (secret_base64) {
            if (b64_decode(secret, strlen(secret), 0, &key, &kl) != 0 || kl == 0) {
                rc = ctl_usage_error(cmd, "--secret-base64: the secret is not base64");
                goto done;
            }
        } else {
            key = (unsigned char *)strdup(secret);
            kl = strlen(secret);
        }
        snprintf(how, sizeof(how), "with the given secret");
        valid = key ? verify_with(token, alg, 1, key, kl, reason, sizeof(reason)) : 0;
        free_key(key, kl);
    } else if (pubfile) {
        char *pem = NULL;
        size_t pl = 0;
        if (aigw_read_file(pubfile, 1 << 20, &pem, &pl) != 0) {
            fprintf(stderr, "aigwctl: cannot read the public key %s: %s\n", pubfile, strerror(errno));
            rc = CTL_EAPI;
            goto done;
        }
        snprintf(how, sizeof(how), "with the public key %s", pubfile);
        valid = verify_with(token, alg, 0, (unsigned char *)pem, pl, reason, sizeof(reason));
        free(pem);
    } else if (consumer) {
        rc = verify_consumer(c, consumer, secret_base64, token, header, claims, &valid, reason,
                             sizeof(reason), how, sizeof(how));
        if (rc != CTL_OK)
            goto done;
    }
    long now = (long)time(NULL);
    json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
    int expired = json_is_number(exp) && (long)json_number_value(exp) <= now;
    int early = json_is_number(nbf) && (long)json_number_value(nbf) > now;
    if (c->output == CTL_OUT_HUMAN && (c->tty || c->output_set)) {
        printf("%sHeader%s\n", ctl_bold(c), ctl_reset(c));
        ctl_print_json(stdout, header);
        printf("%sClaims%s\n", ctl_bold(c), ctl_reset(c));
        ctl_print_json(stdout, claims);
        print_time_claim(claims, "iat", now);
        print_time_claim(claims, "nbf", now);
        print_time_claim(claims, "exp", now);
        if (expired)
            printf("%sexpired%s\n", ctl_red(c), ctl_reset(c));
        if (valid < 0)
            printf("Signature: not checked (give --consumer, --secret or --public-key)\n");
        else if (valid)
            printf("Signature: %svalid%s (%s %s)\n", ctl_green(c), ctl_reset(c), alg ? alg : "", how);
        else
            printf("Signature: %sINVALID%s (%s%s%s)\n", ctl_red(c), ctl_reset(c), reason,
                   *how ? ", " : "", how);
    } else {
        out = json_object();
        json_object_set(out, "header", header);
        json_object_set(out, "claims", claims);
        json_object_set_new(out, "signature_valid", valid < 0 ? json_null() : json_boolean(valid));
        json_object_set_new(out, "expired", json_boolean(expired));
        if (valid == 0)
            json_object_set_new(out, "reason", json_string(reason));
        if (c->output == CTL_OUT_YAML)
            ctl_print_yaml(stdout, out);
        else
            ctl_print_json(stdout, out);
    }
    if (valid >= 0) {
        if (!valid) {
            fprintf(stderr, "aigwctl: the token does not verify: %s\n", reason);
            rc = CTL_EAPI;
        } else if (expired || early) {
            fprintf(stderr, "aigwctl: the signature is valid but the token is %s\n",
                    expired ? "expired" : "not valid yet (nbf)");
            rc = CTL_EAPI;
        }
    }
done:
    json_decref(out);
    json_decref(header);
    json_decref(claims);
    free(token);
    return rc;
}

/* ---- the table ---- */

static const ctl_flag_t mint_flags[] = {
    { "consumer", 'c', "NAME", "the consumer (username or id) whose jwt credential signs", "consumer", 0 },
    { "key", 0, "KEY", "the credential's key, when the consumer has several", NULL, 0 },
    { "ttl", 0, "DURATION", "lifetime: exp = now + DURATION (30s, 5m, 2h, 1d or seconds; default 5m)",
      NULL, 0 },
    { "claim", 0, "KEY=VALUE", "add a claim; VALUE is JSON when it parses (42, true, [..]), else a string",
      NULL, 1 },
    { "header", 0, "KEY=VALUE", "add a field to the JWT header (same VALUE rule)", NULL, 1 },
    { "kid", 0, NULL, "put the credential's key in the header's kid too", NULL, 0 },
    { "private-key", 0, "FILE", "PEM private key, for RS* and ES* credentials", "file", 0 },
    { "secret-base64", 0, NULL,
      "the secret is base64 (for a jwt plugin with config.secret_is_base64=true)", NULL, 0 },
    { NULL, 0, NULL, NULL, NULL, 0 },
};

static const ctl_flag_t decode_flags[] = {
    { "consumer", 'c', "NAME", "verify with this consumer's jwt credential (read from the admin API)",
      "consumer", 0 },
    { "secret", 0, "SECRET", "verify an HS* token with this secret", NULL, 0 },
    { "public-key", 0, "FILE", "verify an RS*/ES* token with this PEM public key", "file", 0 },
    { "secret-base64", 0, NULL, "the secret (given or the credential's) is base64", NULL, 0 },
    { NULL, 0, NULL, NULL, NULL, 0 },
};

static const ctl_cmd_t cmds[] = {
    { "jwt mint", "", "Mint a JWT signed with a consumer's jwt credential and print only the token",
      "Reads the consumer's jwt credentials through the admin API (GET /consumers/NAME/jwt) and\n"
      "signs with the credential's algorithm: HS* with its secret, RS* and ES* with the private key\n"
      "given by --private-key. Claims: iss = the credential's key (the jwt plugin's default\n"
      "key_claim_name), iat = now, exp = now + --ttl, then every --claim (which may override them).\n"
      "Only the token and a newline are printed, so this works:\n"
      "  TOKEN=$(aigwctl jwt mint --consumer ai-client)\n"
      "  curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8000/ai-workflow\n"
      "A consumer with no jwt credential is an error (exit 1); one with several needs --key (exit 2).\n"
      "PS* and EdDSA credentials cannot be signed with this system's libjwt.",
      mint_flags, NULL, run_mint, NULL, 0 },
    { "jwt decode", "TOKEN|-", "Show a JWT's header and claims and whether it verifies",
      "TOKEN may be '-' to read it from stdin; an 'Authorization: Bearer' prefix is ignored.\n"
      "exp, iat and nbf are also shown as UTC dates with the time left or since. The signature is\n"
      "checked with --consumer NAME (the credential whose key is the token's iss, or its kid),\n"
      "--secret or --public-key; without those it is not checked. With -o json (or when stdout is\n"
      "not a terminal): {\"header\": ..., \"claims\": ..., \"signature_valid\": true|false|null,\n"
      "\"expired\": ...}. Exit 1 when a check was asked and failed: a bad signature, or a valid one\n"
      "on an expired (or not yet valid) token.",
      decode_flags, NULL, run_decode, NULL, 0 },
};

const ctl_cmd_t *ctl_cmds_jwt(size_t *n)
{
    *n = sizeof(cmds) / sizeof(cmds[0]);
    return cmds;
}
