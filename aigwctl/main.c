/* aigwctl/main.c: the operator's CLI, a client of the admin API only (libcurl).
 * This first version has `status`, `info` and `version`; the full command table
 * (entities, jwt mint, loadtest, shell) comes with its own issue. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct buf {
    char *p;
    size_t n;
} buf_t;

static size_t on_data(char *d, size_t sz, size_t nm, void *ud)
{
    buf_t *b = ud;
    size_t n = sz * nm;
    char *np = realloc(b->p, b->n + n + 1);
    if (!np)
        return 0;
    memcpy(np + b->n, d, n);
    b->p = np;
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: aigwctl [--admin-url URL] COMMAND\n\n"
               "Commands:\n"
               "  status     show the node's /status (connections, database)\n"
               "  info       show the node's GET / (version, node id, configuration)\n"
               "  version    print aigwctl's version\n\n"
               "Options:\n"
               "  --admin-url URL   admin API (env AIGW_ADMIN_URL, default http://127.0.0.1:8001)\n"
               "  -h, --help        show this help\n\n"
               "Exit codes: 0 ok, 1 the admin API answered with an error, 2 usage, "
               "3 cannot connect.\n");
}

/* GET path from the admin API and print the JSON pretty. Exit code as documented. */
static int get_and_print(const char *base, const char *path)
{
    char url[2048];
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        bl--;
    snprintf(url, sizeof(url), "%.*s%s", (int)bl, base, path);
    CURL *c = curl_easy_init();
    if (!c)
        return 3;
    buf_t b = { NULL, 0 };
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    CURLcode r = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (r != CURLE_OK) {
        fprintf(stderr, "aigwctl: cannot reach the admin API at %s: %s\n", url,
                curl_easy_strerror(r));
        free(b.p);
        return 3;
    }
    json_error_t je;
    json_t *j = b.p ? json_loads(b.p, 0, &je) : NULL;
    if (j) {
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(j);
    } else if (b.p) {
        printf("%s\n", b.p);
    }
    free(b.p);
    if (status >= 400) {
        fprintf(stderr, "aigwctl: the admin API answered %ld\n", status);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *admin = getenv("AIGW_ADMIN_URL");
    if (!admin || !*admin)
        admin = "http://127.0.0.1:8001";
    const char *cmd = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--admin-url") == 0 && i + 1 < argc) {
            admin = argv[++i];
        } else if (!cmd && argv[i][0] != '-') {
            cmd = argv[i];
        } else {
            fprintf(stderr, "aigwctl: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!cmd) {
        usage(stderr);
        return 2;
    }
    if (strcmp(cmd, "version") == 0) {
        printf("aigwctl %s\n", AIGW_VERSION);
        return 0;
    }
    if (strcmp(cmd, "status") != 0 && strcmp(cmd, "info") != 0) {
        fprintf(stderr, "aigwctl: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = get_and_print(admin, strcmp(cmd, "status") == 0 ? "/status" : "/");
    curl_global_cleanup();
    return rc;
}
