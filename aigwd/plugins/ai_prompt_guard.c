/* aigwd/plugins/ai_prompt_guard.c: ai-prompt-guard (priority 771), as Kong 3.9's
 * kong/plugins/ai-prompt-guard (parse-request + guard-prompt filters), with aigw's additions.
 *
 * The request body is decoded as Kong's kong.request.get_body does with the Content-Type
 * (absent: application/json):
 *   - application/json* (prefix, case-insensitive, parameters ignored): a JSON object or
 *     array, else 400 {"error":{"message":"this LLM route only supports application/json
 *     requests"}} (malformed payloads are blocked). aigw also refuses an object with a
 *     duplicate key there: the guard would see the last value, and an upstream parser that
 *     keeps the first would get a prompt nobody checked;
 *   - application/x-www-form-urlencoded: Kong's post args, where only a single `prompt`
 *     field can carry a prompt;
 *   - anything else (text/plain, multipart/form-data, ...): Kong refuses it with the same
 *     "only supports application/json" 400. aigw decision: keep that by default, because an
 *     LLM route takes JSON and a guard that silently let other bodies through would be
 *     bypassed by changing the Content-Type; `allow_plain_body=true` (aigw extension) instead
 *     checks the whole body as one prompt (for plain-text LLM endpoints).
 * A body longer than max_request_body_size gets that same 400 (Kong refuses bodies that do
 * not fit in client_body_buffer_size and exceed max_request_body_size; both are 8 KiB by
 * default, aigw applies max_request_body_size alone).
 *
 * The prompt texts (prompt_guard.c): messages[].content of role `user` (all roles with
 * match_all_roles; only the newest with allow_all_conversation_history), content strings or
 * arrays of text parts; `prompt` (string or array of strings); `input` (embeddings /
 * moderation). Kong looks at `prompt` only without messages; aigw checks each field that is
 * present as its own text, so a prompt cannot hide in the field the guard would skip.
 * No such field, or one of another shape: 400 {"error":{"message":"bad request"}}.
 * A deny match (configured, or the opt-in `preset: ["injection"]` list), or no allow match
 * when allow_patterns is set: the same vague 400, which names no pattern.
 * Patterns are compiled in configure (once per snapshot); a pattern that does not compile makes
 * the instance unusable, so its requests are answered 500 as in Kong. A pattern that hits the
 * PCRE2 match limits at request time fails closed: 400 "bad request", and a warning in the
 * error log naming the plugin id and the pattern's list and position (never the pattern text
 * in the response). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "plugins/impl.h"
#include "plugins/prompt_guard.h"

#define MSG_BAD_REQUEST "bad request"
#define MSG_JSON_ONLY "this LLM route only supports application/json requests"

typedef struct conf {
    aigw_pguard_t *guard;
    aigw_pguard_format_t format;
    int match_all_roles;
    int latest_only;           /* allow_all_conversation_history */
    int allow_plain_body;
    json_int_t max_body;
    size_t n_deny;             /* configured deny patterns (preset ones follow) */
} conf_t;

static void conf_free(void *p)
{
    conf_t *k = p;
    if (!k)
        return;
    aigw_pguard_free(k->guard);
    free(k);
}

/* The strings of an array field, borrowed from the config json. */
static const char **strings(const json_t *arr, size_t *n)
{
    *n = json_is_array(arr) ? json_array_size(arr) : 0;
    const char **v = calloc(*n ? *n : 1, sizeof(*v));
    if (!v)
        return NULL;
    size_t m = 0;
    for (size_t i = 0; i < *n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (s)
            v[m++] = s;
    }
    *n = m;
    return v;
}

static void *configure(const json_t *c, char *err, size_t errlen)
{
    conf_t *k = calloc(1, sizeof(*k));
    size_t na = 0, nd = 0;
    const char **allow = strings(json_object_get(c, "allow_patterns"), &na);
    const char **deny = strings(json_object_get(c, "deny_patterns"), &nd);
    if (!k || !allow || !deny) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    int preset = 0;
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(c, "preset"), i, v) {
        const char *s = json_string_value(v);
        if (s && strcmp(s, "injection") == 0)
            preset = 1;
    }
    k->guard = aigw_pguard_new(allow, na, deny, nd, preset, err, errlen);
    if (!k->guard)
        goto fail;
    k->n_deny = nd;
    const char *fmt = json_string_value(json_object_get(c, "llm_format"));
    k->format = fmt && strcmp(fmt, "bedrock") == 0  ? AIGW_PGUARD_BEDROCK
                : fmt && strcmp(fmt, "gemini") == 0 ? AIGW_PGUARD_GEMINI
                                                    : AIGW_PGUARD_OPENAI;
    k->match_all_roles = json_is_true(json_object_get(c, "match_all_roles"));
    k->latest_only = json_is_true(json_object_get(c, "allow_all_conversation_history"));
    k->allow_plain_body = json_is_true(json_object_get(c, "allow_plain_body"));
    const json_t *mb = json_object_get(c, "max_request_body_size");
    k->max_body = json_is_integer(mb) ? json_integer_value(mb) : 8192;
    free(allow);
    free(deny);
    return k;
fail:
    free(allow);
    free(deny);
    conf_free(k);
    return NULL;
}

/* The instance being run, for log lines (collected just before its access ran). */
static const char *instance_id(const aigw_plugin_run_t *run, const void *conf)
{
    for (size_t i = run->n_active; i-- > 0;)
        if (run->active[i]->conf == conf)
            return run->active[i]->id;
    return "?";
}

static aigw_plugin_rc_t exit_error(aigw_plugin_run_t *run, const char *msg)
{
    json_t *o = json_pack("{s:{s:s}}", "error", "message", msg);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s)
        return aigw_plugin_error(run, 500, "An unexpected error occurred");
    aigw_plugin_rc_t rc = aigw_plugin_exit(run, 400, aigw_str_c(s),
                                           AIGW_STR("application/json; charset=utf-8"));
    free(s);
    return rc;
}

/* 1 if the media type (before ';', case-insensitive) starts with prefix, as Kong's
 * find(content_type_lower, CONTENT_TYPE_JSON, 1, true) == 1. */
static int type_is(aigw_str_t ct, const char *prefix)
{
    size_t n = strlen(prefix);
    const char *semi = ct.p ? memchr(ct.p, ';', ct.n) : NULL;
    size_t len = semi ? (size_t)(semi - ct.p) : ct.n;
    if (len < n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = ct.p[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch + 32);
        if (ch != prefix[i])
            return 0;
    }
    return 1;
}

static aigw_plugin_rc_t judge(aigw_plugin_run_t *run, const conf_t *k, const char *text,
                              size_t n)
{
    int which = -1;
    aigw_pguard_verdict_t v = aigw_pguard_check(k->guard, text, n, &which);
    switch (v) {
    case AIGW_PGUARD_PASS:
        return AIGW_PLUGIN_NEXT;
    case AIGW_PGUARD_DENIED:
    case AIGW_PGUARD_NOT_ALLOWED:
        /* The answer is deliberately vague: the client must not learn about the guard. */
        AIGW_LOG(AIGW_LOG_INFO, "ai-prompt-guard plugin %s: prompt %s; request blocked",
                 instance_id(run, k), v == AIGW_PGUARD_DENIED ? "matches a deny pattern"
                                                              : "matches no allow pattern");
        return exit_error(run, MSG_BAD_REQUEST);
    case AIGW_PGUARD_LIMIT: {
        /* Fail closed. The log names the instance and the pattern's place, not its text. */
        size_t total_deny = aigw_pguard_n_deny(k->guard), w = which >= 0 ? (size_t)which : 0;
        const char *list = w < k->n_deny ? "deny_patterns" : w < total_deny ? "preset"
                                                                              : "allow_patterns";
        size_t pos = w < k->n_deny ? w : w < total_deny ? w - k->n_deny : w - total_deny;
        AIGW_LOG(AIGW_LOG_WARN, "ai-prompt-guard plugin %s: pattern %s[%zu] hit the regex "
                 "match limit on a %zu-byte prompt; request blocked",
                 instance_id(run, k), list, pos + 1, n);
        return exit_error(run, MSG_BAD_REQUEST);
    }
    case AIGW_PGUARD_ERROR:
    default:
        AIGW_LOG(AIGW_LOG_ERR, "ai-prompt-guard plugin %s: pattern matching failed",
                 instance_id(run, k));
        return aigw_plugin_error(run, 500, "An unexpected error occurred");
    }
}

static aigw_plugin_rc_t guard_access(aigw_plugin_run_t *run, void *conf)
{
    const conf_t *k = conf;
    aigw_str_t ct = aigw_plugin_req_header(run, "content-type");
    aigw_str_t body = aigw_plugin_body(run);
    uint64_t len = run->body_set ? body.n : run->req->body_len;
    if (k->max_body > 0 && len > (uint64_t)k->max_body)
        return exit_error(run, MSG_JSON_ONLY);
    if (len && !body.p)
        return exit_error(run, MSG_JSON_ONLY);   /* not buffered: nothing to inspect */

    if (!ct.p || type_is(ct, "application/json")) {
        json_error_t jerr;
        json_t *j = json_loadb(body.p ? body.p : "", body.n,
                               JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL |
                                   JSON_REJECT_DUPLICATES,
                               &jerr);
        if (!json_is_object(j) && !json_is_array(j)) {
            json_decref(j);
            return exit_error(run, MSG_JSON_ONLY);
        }
        aigw_pguard_texts_t texts;
        int rc = aigw_pguard_collect(j, k->format, k->match_all_roles, k->latest_only, &texts);
        json_decref(j);
        if (rc != 0)
            return exit_error(run, MSG_BAD_REQUEST);
        aigw_plugin_rc_t r = AIGW_PLUGIN_NEXT;
        for (size_t i = 0; i < texts.count && r == AIGW_PLUGIN_NEXT; i++)
            r = judge(run, k, texts.p[i], texts.n[i]);
        aigw_pguard_texts_free(&texts);
        return r;
    }
    if (type_is(ct, "application/x-www-form-urlencoded")) {
        /* Kong's post args: `messages` can only be a string there, so the prompt is a single
         * `prompt` field. */
        size_t count = 0;
        aigw_str_t p = aigw_plugin_form_field(run, "prompt", &count);
        if (count != 1 || !p.p)
            return exit_error(run, MSG_BAD_REQUEST);
        return judge(run, k, p.p, p.n);
    }
    if (k->allow_plain_body)
        return judge(run, k, body.p ? body.p : "", body.n);
    return exit_error(run, MSG_JSON_ONLY);
}

static int always_reads_body(const void *conf)
{
    (void)conf;
    return 1;
}

const aigw_plugin_def_t aigw_plugin_def_ai_prompt_guard = {
    .reads_body = always_reads_body,
    .name = "ai-prompt-guard",
    .priority = 771,
    .configure = configure,
    .free_conf = conf_free,
    .access = guard_access,
};
