/* aigwctl/output.c: entities and lists as a human table, JSON, YAML (libyaml's emitter) or ids. */
#include "ctl.h"

#include <stdint.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <yaml.h>

#include "common/sbuf.h"

const char *ctl_bold(const ctl_t *c) { return c->color ? "\033[1m" : ""; }
const char *ctl_red(const ctl_t *c) { return c->color ? "\033[31m" : ""; }
const char *ctl_green(const ctl_t *c) { return c->color ? "\033[32m" : ""; }
const char *ctl_reset(const ctl_t *c) { return c->color ? "\033[0m" : ""; }

void ctl_print_json(FILE *f, json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_REAL_PRECISION(15) | JSON_ENCODE_ANY);
    if (s)
        fprintf(f, "%s\n", s);
    free(s);
}

/* ---- YAML ---- */

static int yaml_out(void *ud, unsigned char *buf, size_t n)
{
    return fwrite(buf, 1, n, ud) == n;
}

static int emit_scalar(yaml_emitter_t *e, const char *s, int plain_ok, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)(uintptr_t)s, (int)strlen(s),
                                      plain_ok, 1, style))
        return 0;
    return yaml_emitter_emit(e, &ev);
}

static int emit_value(yaml_emitter_t *e, json_t *v)
{
    yaml_event_t ev;
    char num[64];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_ANY_MAPPING_STYLE) ||
            !yaml_emitter_emit(e, &ev))
            return 0;
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            if (!emit_scalar(e, k, 1, YAML_ANY_SCALAR_STYLE) || !emit_value(e, x))
                return 0;
        }
        return yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev);
    }
    case JSON_ARRAY: {
        if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                                  json_array_size(v) ? YAML_ANY_SEQUENCE_STYLE
                                                                     : YAML_FLOW_SEQUENCE_STYLE) ||
            !yaml_emitter_emit(e, &ev))
            return 0;
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            if (!emit_value(e, x))
                return 0;
        }
        return yaml_sequence_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev);
    }
    case JSON_STRING: {
        /* A string that YAML would read back as another type is quoted. */
        const char *s = json_string_value(v);
        int plain = 1;
        static const char *const words[] = { "true", "false", "null", "yes", "no", "on", "off", "~", "" };
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
            if (strcasecmp(s, words[i]) == 0)
                plain = 0;
        char *end;
        if (*s && (strtod(s, &end), *end == '\0'))
            plain = 0;
        return emit_scalar(e, s, plain, plain ? YAML_ANY_SCALAR_STYLE : YAML_DOUBLE_QUOTED_SCALAR_STYLE);
    }
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return emit_scalar(e, num, 1, YAML_PLAIN_SCALAR_STYLE);
    case JSON_REAL:
        snprintf(num, sizeof(num), "%.15g", json_real_value(v));
        return emit_scalar(e, num, 1, YAML_PLAIN_SCALAR_STYLE);
    case JSON_TRUE:
        return emit_scalar(e, "true", 1, YAML_PLAIN_SCALAR_STYLE);
    case JSON_FALSE:
        return emit_scalar(e, "false", 1, YAML_PLAIN_SCALAR_STYLE);
    default:
        return emit_scalar(e, "null", 1, YAML_PLAIN_SCALAR_STYLE);
    }
}

void ctl_print_yaml(FILE *f, json_t *v)
{
    yaml_emitter_t e;
    yaml_event_t ev;
    if (!yaml_emitter_initialize(&e))
        return;
    yaml_emitter_set_output(&e, yaml_out, f);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_width(&e, -1);
    int ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) && yaml_emitter_emit(&e, &ev) &&
             yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) &&
             yaml_emitter_emit(&e, &ev) && emit_value(&e, v) &&
             yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&e, &ev) &&
             yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&e, &ev);
    if (!ok)
        fprintf(stderr, "aigwctl: cannot write YAML: %s\n", e.problem ? e.problem : "emitter error");
    yaml_emitter_delete(&e);
}

/* ---- the human table ---- */

/* A cell's text: scalars as is, arrays joined by ',', a reference {"id": ...} as its id. */
static void cell(aigw_sbuf_t *b, json_t *v)
{
    char num[64];
    switch (json_typeof(v)) {
    case JSON_STRING:
        aigw_sbuf_add(b, json_string_value(v));
        break;
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        aigw_sbuf_add(b, num);
        break;
    case JSON_REAL:
        snprintf(num, sizeof(num), "%g", json_real_value(v));
        aigw_sbuf_add(b, num);
        break;
    case JSON_TRUE:
        aigw_sbuf_add(b, "true");
        break;
    case JSON_FALSE:
        aigw_sbuf_add(b, "false");
        break;
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            if (i)
                aigw_sbuf_add(b, ",");
            cell(b, x);
        }
        break;
    }
    case JSON_OBJECT: {
        json_t *id = json_object_get(v, "id");
        if (id && json_object_size(v) == 1) {
            cell(b, id);
        } else {
            char *s = json_dumps(v, JSON_COMPACT);
            aigw_sbuf_add(b, s ? s : "");
            free(s);
        }
        break;
    }
    default:
        aigw_sbuf_add(b, "-");
        break;
    }
}

static const char *const default_cols[] = {
    "id", "name", "username", "custom_id", "key", "group", "algorithm", "client_id", "protocol",
    "host", "port", "path", "protocols", "paths", "hosts", "methods", "target", "weight", "cert",
    "service", "route", "consumer", "upstream", "enabled", "tags", NULL
};

#define MAX_COLS 9
#define MAX_CELL 48

static void print_table(ctl_t *c, json_t *rows, const char *const *columns)
{
    const char *cols[MAX_COLS];
    size_t nc = 0;
    json_t *first = json_array_get(rows, 0);
    const char *const *want = columns ? columns : default_cols;
    for (size_t i = 0; want[i] && nc < MAX_COLS; i++) {
        int present = columns != NULL;
        size_t r;
        json_t *row;
        json_array_foreach(rows, r, row) {
            if (json_object_get(row, want[i]))
                present = 1;
        }
        if (present)
            cols[nc++] = want[i];
    }
    if (!nc && first) {
        const char *k;
        json_t *x;
        json_object_foreach(first, k, x) {
            if (nc < MAX_COLS)
                cols[nc++] = k;
        }
    }
    size_t nr = json_array_size(rows);
    char **cells = calloc((nr + 1) * (nc ? nc : 1), sizeof(char *));
    size_t width[MAX_COLS] = { 0 };
    if (!cells)
        return;
    for (size_t j = 0; j < nc; j++) {
        char *h = strdup(cols[j]);
        for (char *p = h; p && *p; p++)
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        cells[j] = h;
        width[j] = h ? strlen(h) : 0;
    }
    for (size_t r = 0; r < nr; r++) {
        json_t *row = json_array_get(rows, r);
        for (size_t j = 0; j < nc; j++) {
            aigw_sbuf_t b = { 0 };
            json_t *v = json_object_get(row, cols[j]);
            if (v && !json_is_null(v))
                cell(&b, v);
            else
                aigw_sbuf_add(&b, "-");
            if (b.p && b.n > MAX_CELL) {
                memcpy(b.p + MAX_CELL - 3, "...", 4);
                b.n = MAX_CELL;
            }
            cells[(r + 1) * nc + j] = b.p;
            if (b.n > width[j])
                width[j] = b.n;
        }
    }
    for (size_t r = 0; r <= nr; r++) {
        if (r == 0)
            fputs(ctl_bold(c), stdout);
        for (size_t j = 0; j < nc; j++) {
            const char *s = cells[r * nc + j] ? cells[r * nc + j] : "";
            if (j + 1 < nc)
                printf("%-*s  ", (int)width[j], s);
            else
                printf("%s", s);
        }
        if (r == 0)
            fputs(ctl_reset(c), stdout);
        putchar('\n');
    }
    for (size_t k = 0; k < (nr + 1) * nc; k++)
        free(cells[k]);
    free(cells);
}

static void print_object_human(ctl_t *c, json_t *o)
{
    size_t w = 0;
    const char *k;
    json_t *x;
    json_object_foreach(o, k, x) {
        if (strlen(k) > w)
            w = strlen(k);
    }
    json_object_foreach(o, k, x) {
        aigw_sbuf_t b = { 0 };
        if (json_is_object(x) && !(json_object_get(x, "id") && json_object_size(x) == 1)) {
            char *s = json_dumps(x, JSON_COMPACT);
            aigw_sbuf_add(&b, s ? s : "");
            free(s);
        } else if (json_is_null(x)) {
            aigw_sbuf_add(&b, "-");
        } else {
            cell(&b, x);
        }
        printf("%s%-*s%s  %s\n", ctl_bold(c), (int)w, k, ctl_reset(c), b.p ? b.p : "");
        aigw_sbuf_free(&b);
    }
}

void ctl_print(ctl_t *c, json_t *v, const char *const *columns)
{
    if (!v)
        return;
    json_t *list = json_is_array(v) ? v : NULL;
    if (!list && json_is_object(v) && json_is_array(json_object_get(v, "data")))
        list = json_object_get(v, "data");
    switch (c->output) {
    case CTL_OUT_JSON:
        ctl_print_json(stdout, v);
        return;
    case CTL_OUT_YAML:
        ctl_print_yaml(stdout, v);
        return;
    case CTL_OUT_IDS:
        if (list) {
            size_t i;
            json_t *x;
            json_array_foreach(list, i, x) {
                const char *id = json_string_value(json_object_get(x, "id"));
                if (id)
                    printf("%s\n", id);
            }
        } else if (json_string_value(json_object_get(v, "id"))) {
            printf("%s\n", json_string_value(json_object_get(v, "id")));
        }
        return;
    case CTL_OUT_HUMAN:
        /* Not a terminal and no -o: JSON, which scripts can parse. */
        if (!c->tty && !c->output_set) {
            ctl_print_json(stdout, v);
            return;
        }
        if (list) {
            if (json_array_size(list) == 0)
                printf("(none)\n");
            else
                print_table(c, list, columns);
        } else if (json_is_object(v)) {
            print_object_human(c, v);
        } else {
            ctl_print_json(stdout, v);
        }
        return;
    }
}
