/* aigwd/plugins/prompt_guard.h: the pure part of ai-prompt-guard: which text of an LLM
 * request is checked (Kong's guard-prompt filter, plus content-part arrays, `input`, and the
 * bedrock / gemini request formats) and the compiled allow / deny PCRE2 patterns.
 *
 * A guard is built once per config snapshot (loader thread) and then only read: any number of
 * worker threads may call aigw_pguard_check on it at once (each call has its own match data). */
#ifndef AIGW_PLUGINS_PROMPT_GUARD_H
#define AIGW_PLUGINS_PROMPT_GUARD_H
#include <jansson.h>
#include <stddef.h>

typedef struct aigw_pguard aigw_pguard_t;

/* The request formats of `llm_format`. */
typedef enum {
    AIGW_PGUARD_OPENAI = 0,
    AIGW_PGUARD_BEDROCK,
    AIGW_PGUARD_GEMINI,
} aigw_pguard_format_t;

typedef enum {
    AIGW_PGUARD_PASS = 0,      /* no deny pattern matched, and an allow pattern did (if any) */
    AIGW_PGUARD_DENIED,        /* a deny pattern (configured or preset) matched */
    AIGW_PGUARD_NOT_ALLOWED,   /* allow patterns are set and none matched */
    AIGW_PGUARD_LIMIT,         /* a pattern hit the match / depth / heap / JIT stack limit */
    AIGW_PGUARD_ERROR,         /* any other matching failure (out of memory) */
} aigw_pguard_verdict_t;

/* Loader thread. Compiles allow[0..n_allow) and deny[0..n_deny) as ngx.re.find(s, p, "jo")
 * would (PCRE2, byte mode, case sensitive, unanchored); preset_injection adds the built-in
 * case-insensitive list of common prompt-injection phrasings to the deny list. Returns NULL
 * with "bad regex pattern '<p>': <why>" in err when a pattern does not compile, or on OOM. */
aigw_pguard_t *aigw_pguard_new(const char *const *allow, size_t n_allow,
                               const char *const *deny, size_t n_deny, int preset_injection,
                               char *err, size_t errlen);
void aigw_pguard_free(aigw_pguard_t *g);   /* NULL is fine */
/* How many deny patterns (configured + preset) the guard holds. */
size_t aigw_pguard_n_deny(const aigw_pguard_t *g);

/* Any thread. Checks text[0..n) against the deny patterns (configured, then preset) and then
 * the allow patterns. *which (may be NULL) gets the index of the deciding pattern (DENIED,
 * LIMIT, ERROR) in the list configured deny ++ preset ++ allow, or -1. */
aigw_pguard_verdict_t aigw_pguard_check(const aigw_pguard_t *g, const char *text, size_t n,
                                        int *which);

/* The number of patterns in the built-in injection preset, and one of them (for tests). */
size_t aigw_pguard_preset_count(void);
const char *aigw_pguard_preset_pattern(size_t i);

/* The texts of one request that are checked, each NUL-terminated and malloc'd. */
#define AIGW_PGUARD_MAX_TEXTS 3
typedef struct aigw_pguard_texts {
    char *p[AIGW_PGUARD_MAX_TEXTS];
    size_t n[AIGW_PGUARD_MAX_TEXTS];
    size_t count;
} aigw_pguard_texts_t;

/* Any thread. Collects the prompt texts of a decoded request body. `messages` as Kong's
 * guard-prompt does: newest first, the `user` role's content (every role's with
 * match_all_roles), each followed by a space, or only the newest one with latest_only; a
 * content may be a string or an array of parts ({"type":"text","text":..}). Kong reads
 * `prompt` only when there are no messages; aigw checks every field an upstream may read as
 * the prompt, each as its own text: messages, then `prompt`, then `input` (a string or an array
 * of strings), so that none of them escapes the guard and an allow pattern must match each.
 * For bedrock / gemini the native request is read as Kong's adapters convert it. Returns 0
 * with out filled (aigw_pguard_texts_free it), or -1 (out empty) when the body has no prompt
 * in a shape the guard supports (Kong's "bad request"). */
int aigw_pguard_collect(const json_t *body, aigw_pguard_format_t format, int match_all_roles,
                        int latest_only, aigw_pguard_texts_t *out);
void aigw_pguard_texts_free(aigw_pguard_texts_t *t);

#endif
