/* aigwd/plugins/prompt_guard.c: see prompt_guard.h. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "plugins/prompt_guard.h"
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds on one pcre2_match call, so that a pattern that backtracks catastrophically costs a
 * few milliseconds and then fails (the plugin blocks the request) instead of holding a worker:
 * match_limit counts backtracking points (JIT and interpreter), depth_limit the interpreter's
 * nesting, heap_limit (KiB) the interpreter's frame vector; the JIT stack is PCRE2's default
 * 32 KiB. Legitimate prompt patterns on bodies of tens of KiB stay well below these. */
#define PGUARD_MATCH_LIMIT 1000000u
#define PGUARD_DEPTH_LIMIT 10000u
#define PGUARD_HEAP_LIMIT 20480u

/* The `injection` preset: common prompt-injection and jailbreak phrasings, matched without
 * regard to case. Every repetition is bounded or over disjoint alternatives, so none of them
 * can backtrack catastrophically. */
static const char *const preset_injection[] = {
    /* "ignore all previous instructions", "disregard the above rules", ... */
    "\\b(?:ignore|disregard|forget|skip|override|bypass|neglect)\\s+"
    "(?:(?:all|any|each|every|the|your|my|these|those|of|everything|what\\s+was)\\s+){0,4}"
    "(?:previous|prior|above|earlier|preceding|former|foregoing|original|initial|system|"
    "safety|existing)\\s+"
    "(?:instructions?|prompts?|rules|directions?|directives?|guidelines|guidance|context|"
    "messages?|commands?|orders|constraints|restrictions|policies|programming|text)",
    /* "disregard your instructions", "forget everything you were told" */
    "\\b(?:ignore|disregard|forget)\\s+(?:all\\s+|any\\s+)?(?:your|my|these|those|the)\\s+"
    "(?:instructions|rules|guidelines|restrictions|programming)\\b",
    "\\bforget\\s+(?:everything|all)\\s+(?:you\\s+(?:were|have\\s+been)\\s+told|above|before)",
    /* "you are now DAN", "you are now in developer mode" */
    "\\byou\\s+are\\s+now\\s+(?:DAN\\b|in\\s+(?:developer|dev|god|debug|jailbreak|jailbroken|"
    "unrestricted|admin|sudo)\\s+mode|an?\\s+(?:unrestricted|unfiltered|uncensored|"
    "unaligned)\\b|(?:unrestricted|unfiltered|uncensored|jailbroken|free\\s+from))",
    "\\b(?:enable|activate|enter|switch\\s+to)\\s+(?:the\\s+)?(?:developer|dev|god|debug|"
    "jailbreak|DAN)\\s+mode\\b",
    "\\bDAN\\s+mode\\b|\\bdo\\s+anything\\s+now\\b",
    "\\bjailbr(?:eak|oken)(?:s|ing|ed)?\\b",
    /* "reveal your system prompt", "print the hidden instructions" */
    "\\b(?:reveal|show|print|output|display|repeat|leak|dump|expose|disclose|tell\\s+me|"
    "give\\s+me|what\\s+(?:is|are))\\s+(?:me\\s+)?(?:your\\s+|the\\s+)?(?:full\\s+|entire\\s+|"
    "exact\\s+|complete\\s+|original\\s+|initial\\s+)?(?:system|hidden|secret|initial|original|"
    "developer|internal)\\s+(?:prompt|instructions?|message|rules)",
    /* "pretend you have no restrictions", "act as if you had no rules" */
    "\\b(?:pretend|imagine|act\\s+as\\s+if|behave\\s+as\\s+if)\\s+(?:that\\s+)?you\\s+"
    "(?:have|had|are|were)\\s+(?:no|not\\s+bound\\s+by(?:\\s+any)?|free\\s+of|without)\\s+"
    "(?:any\\s+)?(?:restrictions|rules|guidelines|filters|limitations|limits|policies|"
    "content\\s+polic(?:y|ies)|ethical\\s+guidelines)",
    "\\b(?:override|bypass|disable|turn\\s+off|ignore)\\s+(?:your\\s+|the\\s+|all\\s+)?"
    "(?:safety|content|security|moderation)\\s+(?:filters?|polic(?:y|ies)|guidelines|"
    "restrictions|measures|protocols?)",
    /* chat-template control tokens smuggled into a message */
    "<\\|(?:im_start|im_end|system|endoftext|begin_of_text|start_header_id)\\|>|<<SYS>>|"
    "\\[/?INST\\]",
};
#define N_PRESET (sizeof(preset_injection) / sizeof(preset_injection[0]))

typedef struct pat {
    pcre2_code *re;
} pat_t;

struct aigw_pguard {
    pat_t *deny, *allow;
    size_t n_deny, n_allow;
    pcre2_match_context *mctx;
};

size_t aigw_pguard_preset_count(void)
{
    return N_PRESET;
}

const char *aigw_pguard_preset_pattern(size_t i)
{
    return i < N_PRESET ? preset_injection[i] : NULL;
}

size_t aigw_pguard_n_deny(const aigw_pguard_t *g)
{
    return g->n_deny;
}

void aigw_pguard_free(aigw_pguard_t *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n_deny; i++)
        pcre2_code_free(g->deny[i].re);
    for (size_t i = 0; i < g->n_allow; i++)
        pcre2_code_free(g->allow[i].re);
    free(g->deny);
    free(g->allow);
    pcre2_match_context_free(g->mctx);
    free(g);
}

static int compile(pat_t *p, const char *s, uint32_t opts, char *err, size_t errlen)
{
    int ec = 0;
    PCRE2_SIZE off = 0;
    p->re = pcre2_compile((PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, opts, &ec, &off, NULL);
    if (!p->re) {
        PCRE2_UCHAR msg[160];
        if (pcre2_get_error_message(ec, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", ec);
        snprintf(err, errlen, "bad regex pattern '%.200s': %s at offset %zu", s,
                 (const char *)msg, (size_t)off);
        return -1;
    }
    /* Without JIT (unsupported platform, no executable memory) the interpreter is used. */
    (void)pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE);
    return 0;
}

aigw_pguard_t *aigw_pguard_new(const char *const *allow, size_t n_allow,
                               const char *const *deny, size_t n_deny, int preset,
                               char *err, size_t errlen)
{
    aigw_pguard_t *g = calloc(1, sizeof(*g));
    size_t nd = n_deny + (preset ? N_PRESET : 0);
    if (!g || !(g->deny = calloc(nd ? nd : 1, sizeof(pat_t))) ||
        !(g->allow = calloc(n_allow ? n_allow : 1, sizeof(pat_t))) ||
        !(g->mctx = pcre2_match_context_create(NULL)))
        goto oom;
    pcre2_set_match_limit(g->mctx, PGUARD_MATCH_LIMIT);
    pcre2_set_depth_limit(g->mctx, PGUARD_DEPTH_LIMIT);
    pcre2_set_heap_limit(g->mctx, PGUARD_HEAP_LIMIT);
    for (size_t i = 0; i < n_deny; i++, g->n_deny++)
        if (compile(&g->deny[i], deny[i], 0, err, errlen) != 0)
            goto fail;
    for (size_t i = 0; preset && i < N_PRESET; i++, g->n_deny++)
        if (compile(&g->deny[n_deny + i], preset_injection[i], PCRE2_CASELESS, err, errlen) != 0)
            goto fail;
    for (size_t i = 0; i < n_allow; i++, g->n_allow++)
        if (compile(&g->allow[i], allow[i], 0, err, errlen) != 0)
            goto fail;
    return g;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    aigw_pguard_free(g);
    return NULL;
}

/* 1 match, 0 no match, -1 limit, -2 other failure. */
static int search(const aigw_pguard_t *g, const pat_t *p, const char *s, size_t n,
                  pcre2_match_data *md)
{
    int rc = pcre2_match(p->re, (PCRE2_SPTR)(s ? s : ""), n, 0, 0, md, g->mctx);
    if (rc >= 0)
        return 1;
    switch (rc) {
    case PCRE2_ERROR_NOMATCH:
        return 0;
    case PCRE2_ERROR_MATCHLIMIT:
    case PCRE2_ERROR_DEPTHLIMIT:
    case PCRE2_ERROR_HEAPLIMIT:
    case PCRE2_ERROR_JIT_STACKLIMIT:
    case PCRE2_ERROR_NOMEMORY:
        return -1;
    default:
        return -2;
    }
}

aigw_pguard_verdict_t aigw_pguard_check(const aigw_pguard_t *g, const char *text, size_t n,
                                        int *which)
{
    if (which)
        *which = -1;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md)
        return AIGW_PGUARD_ERROR;
    aigw_pguard_verdict_t v = AIGW_PGUARD_PASS;
    for (size_t i = 0; i < g->n_deny; i++) {
        int r = search(g, &g->deny[i], text, n, md);
        if (r != 0) {
            v = r > 0 ? AIGW_PGUARD_DENIED : r == -1 ? AIGW_PGUARD_LIMIT : AIGW_PGUARD_ERROR;
            if (which)
                *which = (int)i;
            goto out;
        }
    }
    for (size_t i = 0; i < g->n_allow; i++) {
        int r = search(g, &g->allow[i], text, n, md);
        if (r > 0)
            goto out;
        if (r < 0) {
            v = r == -1 ? AIGW_PGUARD_LIMIT : AIGW_PGUARD_ERROR;
            if (which)
                *which = (int)(g->n_deny + i);
            goto out;
        }
    }
    if (g->n_allow)
        v = AIGW_PGUARD_NOT_ALLOWED;
out:
    pcre2_match_data_free(md);
    return v;
}

/* ---- collecting the prompt ------------------------------------------------------------------ */

typedef struct buf {
    char *p;
    size_t n, cap;
    int oom;
} buf_t;

static void put(buf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void put_str(buf_t *b, const json_t *s)
{
    put(b, json_string_value(s), json_string_length(s));
}

/* One message's content: a string, or an array of parts of which the text ones count
 * (OpenAI's {"type":"text","text":..}; a bare string part too). Parts of other types (images,
 * audio) carry no text to check. 0, or -1 for a shape the guard does not understand. */
static int put_content(buf_t *b, const json_t *content)
{
    if (json_is_string(content)) {
        put_str(b, content);
        return 0;
    }
    if (!json_is_array(content))
        return -1;
    size_t i;
    const json_t *part;
    int first = 1;
    json_array_foreach(content, i, part) {
        const json_t *text = NULL;
        if (json_is_string(part)) {
            text = part;
        } else if (json_is_object(part)) {
            const char *type = json_string_value(json_object_get(part, "type"));
            const json_t *t = json_object_get(part, "text");
            if (!type || strcmp(type, "text") == 0 || strcmp(type, "input_text") == 0) {
                if (t && !json_is_string(t))
                    return -1;
                if (!t && type)
                    return -1;
                text = t;
            }
        } else {
            return -1;
        }
        if (!text)
            continue;
        if (!first)
            put(b, " ", 1);
        put_str(b, text);
        first = 0;
    }
    return 0;
}

/* A string, or an array of strings joined by spaces (OpenAI's prompt / input). */
static int put_strings(buf_t *b, const json_t *v)
{
    if (json_is_string(v)) {
        put_str(b, v);
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) == 0)
        return -1;
    size_t i;
    const json_t *s;
    json_array_foreach(v, i, s) {
        if (!json_is_string(s))
            return -1;   /* token arrays carry no text we could check: fail closed */
        if (i)
            put(b, " ", 1);
        put_str(b, s);
    }
    return 0;
}

/* Moves the text of b into out as one more text. */
static void take(aigw_pguard_texts_t *out, buf_t *b)
{
    if (b->oom) {
        free(b->p);
        b->p = NULL;   /* collect_openai reports it */
    }
    out->p[out->count] = b->p;
    out->n[out->count] = b->n;
    out->count++;
    memset(b, 0, sizeof(*b));
}

static int collect_messages(buf_t *b, const json_t *messages, int all_roles, int latest_only)
{
    if (json_is_object(messages))
        return 0;   /* a Lua table without an array part: no messages, empty prompt */
    /* Newest first, as Kong, so that latest_only takes the last user prompt. */
    for (size_t i = json_array_size(messages); i-- > 0;) {
        const json_t *m = json_array_get(messages, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!role)
            return -1;
        if (!all_roles && strcmp(role, "user") != 0)
            continue;
        const json_t *content = json_object_get(m, "content");
        /* An assistant turn that only calls tools has a null content. */
        if ((!content || json_is_null(content)) && strcmp(role, "user") != 0)
            continue;
        if (put_content(b, content) != 0)
            return -1;
        if (latest_only)
            break;
        put(b, " ", 1);   /* keeps the words of two messages apart */
    }
    return 0;
}

static int collect_openai(aigw_pguard_texts_t *out, const json_t *req, int all_roles,
                          int latest_only)
{
    const json_t *messages = json_object_get(req, "messages");
    const json_t *prompt = json_object_get(req, "prompt");
    const json_t *input = json_object_get(req, "input");
    int rc = 0;
    buf_t b = {0};
    if (json_is_object(messages) || json_is_array(messages)) {
        put(&b, "", 0);
        rc = collect_messages(&b, messages, all_roles, latest_only);
        take(out, &b);
    }
    if (rc == 0 && prompt) {
        put(&b, "", 0);
        rc = put_strings(&b, prompt);
        take(out, &b);
    }
    if (rc == 0 && input) {
        put(&b, "", 0);
        rc = put_strings(&b, input);
        take(out, &b);
    }
    if (out->count == 0)
        return -1;
    for (size_t i = 0; i < out->count; i++)
        if (!out->p[i])
            return -1;   /* out of memory */
    return rc;
}

static json_t *text_part(json_t *text)
{
    return json_pack("{s:s,s:O}", "type", "text", "text", text);
}

/* Gemini: contents[] {role, parts: [{text}] or {text}}, system_instruction {parts}. */
static json_t *gemini_msg(const json_t *msg)
{
    if (!json_is_object(msg))
        return NULL;
    const char *role = json_string_value(json_object_get(msg, "role"));
    if (!role || strcmp(role, "human") == 0)
        role = "user";   /* Gemini takes a content without role as the user's */
    else if (strcmp(role, "model") == 0)
        role = "assistant";
    else if (strcmp(role, "function") == 0)
        role = "tool";
    json_t *content = json_array();
    const json_t *parts = json_object_get(msg, "parts");
    size_t i;
    const json_t *p;
    if (json_is_array(parts)) {
        json_array_foreach(parts, i, p) {
            json_t *t = json_object_get(p, "text");
            if (t)
                json_array_append_new(content, text_part(t));
        }
    } else if (json_is_object(parts) && json_object_get(parts, "text")) {
        json_array_append_new(content, text_part(json_object_get(parts, "text")));
    }
    return json_pack("{s:s,s:o}", "role", role, "content", content);
}

static json_t *first_text(const json_t *parts)
{
    if (json_is_array(parts))
        return json_object_get(json_array_get(parts, 0), "text");
    return json_object_get(parts, "text");
}

static json_t *from_gemini(const json_t *req)
{
    const json_t *contents = json_object_get(req, "contents");
    json_t *messages = json_array();
    if (json_is_array(contents)) {
        size_t i;
        const json_t *m;
        json_array_foreach(contents, i, m) {
            json_t *nm = gemini_msg(m);
            if (!nm) {
                json_decref(messages);
                return json_object();   /* no messages: bad request */
            }
            json_array_append_new(messages, nm);
        }
    } else if (json_is_object(contents)) {
        json_array_append_new(messages, gemini_msg(contents));
    } else {
        json_decref(messages);
        return json_object();
    }
    const json_t *si = json_object_get(req, "system_instruction");
    if (!si)
        si = json_object_get(req, "systemInstruction");
    json_t *st = si ? first_text(json_object_get(si, "parts")) : NULL;
    if (st)
        json_array_insert_new(messages, 0, json_pack("{s:s,s:[o]}", "role", "system",
                                                     "content", text_part(st)));
    return json_pack("{s:o}", "messages", messages);
}

/* Bedrock Converse: messages[] {role, content: [{text} | {toolResult: {content: [{text}]}} |
 * {toolUse} | {image}...]}, system [{text}]. */
static json_t *from_bedrock(const json_t *req)
{
    const json_t *msgs = json_object_get(req, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return json_object();
    json_t *messages = json_array();
    size_t i, j;
    const json_t *m, *p;
    json_array_foreach(msgs, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_array();
        const json_t *parts = json_object_get(m, "content");
        json_array_foreach(parts, j, p) {
            json_t *t = json_object_get(p, "text");
            const json_t *tr = json_object_get(p, "toolResult");
            if (t) {
                json_array_append_new(content, text_part(t));
            } else if (tr) {
                role = "tool";
                size_t k;
                const json_t *q;
                json_array_foreach(json_object_get(tr, "content"), k, q) {
                    json_t *tt = json_object_get(q, "text");
                    if (tt)
                        json_array_append_new(content, text_part(tt));
                }
            }
        }
        json_t *nm = json_pack("{s:o}", "content", content);
        if (role)
            json_object_set_new(nm, "role", json_string(role));
        json_array_append_new(messages, nm);
    }
    json_t *st = first_text(json_object_get(req, "system"));
    if (st && json_is_array(json_object_get(req, "system")))
        json_array_insert_new(messages, 0, json_pack("{s:s,s:[o]}", "role", "system",
                                                     "content", text_part(st)));
    return json_pack("{s:o}", "messages", messages);
}

void aigw_pguard_texts_free(aigw_pguard_texts_t *t)
{
    for (size_t i = 0; i < t->count; i++)
        free(t->p[i]);
    memset(t, 0, sizeof(*t));
}

int aigw_pguard_collect(const json_t *body, aigw_pguard_format_t format, int match_all_roles,
                        int latest_only, aigw_pguard_texts_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(body))
        return -1;   /* a JSON array has no prompt */
    json_t *conv = NULL;
    if (format == AIGW_PGUARD_GEMINI)
        body = conv = from_gemini(body);
    else if (format == AIGW_PGUARD_BEDROCK)
        body = conv = from_bedrock(body);
    int rc = json_is_object(body) ? collect_openai(out, body, match_all_roles, latest_only) : -1;
    json_decref(conv);
    if (rc != 0)
        aigw_pguard_texts_free(out);
    return rc;
}
