/* parse.c - json_parse: JSON text into a cJSON tree, in one pass.
 *
 * Why not cJSON's parser: it reads each string twice (once to size it,
 * once to copy it), copies each number into a buffer for strtod, and needs
 * a separate pass to bound the nesting before its recursion. Request bodies
 * are the hottest input Bespoke has, so this parser does each in one pass:
 * strings are copied by runs between escapes, numbers with at most 15
 * digits are converted without strtod, and depth is counted as it goes.
 *
 * What it accepts is exactly what cJSON_ParseWithLengthOpts accepts, and the
 * trees are the same (tests/fuzz/fuzz_json.c compares the two on every
 * input): bytes up to 32 count as whitespace, a UTF-8 byte order mark may
 * open the text, raw control bytes may sit inside strings, a number is the
 * longest prefix strtod reads of the run of [0-9+-.eE] that starts it, and an invalid \u escape
 * reads as U+0000 (which ends the string where C reads it), as in cJSON. Nodes and strings come
 * from cJSON_malloc, so cJSON_Delete frees them and an entered arena holds them.
 *
 * Errors: the position is that of the first byte that cannot start or
 * continue what was expected, or of the last byte when the text ends too
 * soon (cJSON's convention), as "line L, column C". */
#include "json/json.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const char *start, *p, *end;
    int depth, max_depth;
    bsp_err failed; /* BSP_OK, BSP_EPARSE, BSP_ETOOBIG or BSP_ENOMEM */
    const char *fail_at;
    json_spans *spans; /* NULL: not recorded */
    size_t lenient;    /* values read so far that strict JSON would refuse */
} parser;

static cJSON *parse_value(parser *ps);

static cJSON *fail(parser *ps, bsp_err code, const char *at) {
    if (!ps->failed) {
        ps->failed = code;
        ps->fail_at = at;
    }
    return NULL;
}

static void skip_space(parser *ps) {
    while (ps->p < ps->end && (unsigned char)*ps->p <= 32)
        ps->p++;
}

static cJSON *new_node(parser *ps, int type) {
    cJSON *n = cJSON_malloc(sizeof *n);
    if (!n) return fail(ps, BSP_ENOMEM, ps->p);
    memset(n, 0, sizeof *n);
    n->type = type;
    return n;
}

/* ---- strings ------------------------------------------------------------- */

/* Four hex digits as a number; 0 when any is not one, as cJSON reads them
 * (counted in *lenient: strict JSON refuses it). */
static unsigned hex4(const char *s, size_t *lenient) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else {
            (*lenient)++;
            return 0;
        }
        v = v << 4 | d;
    }
    return v;
}

static char *put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* A \u escape at s (before end) into o: how many input bytes it took (6, or
 * 12 for a surrogate pair), or 0 when it is invalid. */
static size_t unicode_escape(const char *s, const char *end, char **o, size_t *lenient) {
    if (end - s < 6) return 0;
    unsigned first = hex4(s + 2, lenient);
    if (first >= 0xDC00 && first <= 0xDFFF) return 0;
    if (first < 0xD800 || first > 0xDBFF) {
        *o = put_utf8(*o, first);
        return 6;
    }
    const char *second = s + 6;
    if (end - second < 6 || second[0] != '\\' || second[1] != 'u') return 0;
    unsigned low = hex4(second + 2, lenient);
    if (low < 0xDC00 || low > 0xDFFF) return 0;
    *o = put_utf8(*o, 0x10000 + ((first & 0x3FF) << 10 | (low & 0x3FF)));
    return 12;
}

/* The end of the string whose opening quote is at q: its closing quote, or
 * NULL if the text ends first. *escapes counts its backslashes. */
static const char *closing_quote(const char *q, const char *end, size_t *escapes) {
    const char *p = q + 1;
    *escapes = 0;
    for (;;) {
        const char *quote = memchr(p, '"', (size_t)(end - p));
        if (!quote) return NULL;
        const char *bs = memchr(p, '\\', (size_t)(quote - p));
        if (!bs) return quote;
        /* An escape before the quote: step over it and look again. */
        (*escapes)++;
        if (bs + 1 >= end) return NULL;
        p = bs + 2;
    }
}

/* The string at ps->p (an opening quote), as a new NUL-terminated copy. */
static char *parse_string(parser *ps) {
    size_t escapes;
    const char *open = ps->p, *close = closing_quote(open, ps->end, &escapes);
    if (!close) return fail(ps, BSP_EPARSE, ps->end - 1), NULL;
    /* Escapes only shrink: 2 bytes give 1, 6 give at most 3, 12 give 4. */
    char *out = cJSON_malloc((size_t)(close - open - 1) + 1);
    if (!out) return fail(ps, BSP_ENOMEM, open), NULL;
    char *o = out;
    const char *p = open + 1;
    while (p < close) {
        const char *bs = escapes ? memchr(p, '\\', (size_t)(close - p)) : NULL;
        const char *run_end = bs ? bs : close;
        memcpy(o, p, (size_t)(run_end - p));
        o += run_end - p;
        p = run_end;
        if (!bs) break;
        size_t took = 2;
        switch (bs[1]) {
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 't':
            *o++ = '\t';
            break;
        case '"':
        case '\\':
        case '/':
            *o++ = bs[1];
            break;
        case 'u':
            took = unicode_escape(bs, close, &o, &ps->lenient);
            break;
        default:
            took = 0;
        }
        if (!took) {
            cJSON_free(out);
            return fail(ps, BSP_EPARSE, bs), NULL;
        }
        p = bs + took;
    }
    *o = '\0';
    ps->p = close + 1;
    return out;
}

/* ---- numbers ------------------------------------------------------------- */

static bool number_byte(char c) {
    return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == 'e' || c == 'E' || c == '.';
}

/* -?D+(.D+)? with at most 15 digits, ending where the run of number bytes
 * ends: its value is m / 10^k with both exact, so one division rounds it
 * as strtod does. false for anything else. */
static bool simple_number(const char *s, const char *end, double *value, const char **stop) {
    static const double pow10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    const char *p = s;
    bool negative = p < end && *p == '-';
    if (negative) p++;
    uint64_t m = 0;
    int digits = 0, decimals = 0;
    const char *first = p;
    while (p < end && *p >= '0' && *p <= '9' && digits < 16) {
        m = m * 10 + (uint64_t)(*p++ - '0');
        digits++;
    }
    if (p == first) return false;
    if (p < end && *p == '.') {
        const char *frac = ++p;
        while (p < end && *p >= '0' && *p <= '9' && digits < 16) {
            m = m * 10 + (uint64_t)(*p++ - '0');
            digits++;
        }
        decimals = (int)(p - frac);
        if (decimals == 0) return false;
    }
    if (digits > 15 || (p < end && number_byte(*p))) return false;
    double v = decimals ? (double)m / pow10[decimals] : (double)m;
    *value = negative ? -v : v;
    *stop = p;
    return true;
}

/* Whether the simple number at s has a leading zero ("007", "-01.5"),
 * which strict JSON refuses. */
static bool leading_zero(const char *s, const char *stop) {
    if (*s == '-') s++;
    return s + 1 < stop && s[0] == '0' && s[1] >= '0' && s[1] <= '9';
}

/* A number. Those strtod reads (exponents, more than 15 digits, and forms
 * strict JSON refuses such as "1." or "-.5") count as lenient, so spans
 * around them are not kept: their text is not known to be strict. */
static cJSON *parse_number(parser *ps) {
    double d;
    const char *stop;
    if (simple_number(ps->p, ps->end, &d, &stop)) {
        if (ps->spans && leading_zero(ps->p, stop)) ps->lenient++;
    } else {
        ps->lenient++;
        size_t n = 0;
        while (ps->p + n < ps->end && number_byte(ps->p[n]))
            n++;
        char small[64];
        char *run = n < sizeof small ? small : malloc(n + 1);
        if (!run) return fail(ps, BSP_ENOMEM, ps->p);
        memcpy(run, ps->p, n);
        run[n] = '\0';
        char *after;
        d = strtod(run, &after);
        size_t took = (size_t)(after - run);
        if (run != small) free(run);
        if (took == 0) return fail(ps, BSP_EPARSE, ps->p);
        stop = ps->p + took;
    }
    cJSON *n = new_node(ps, cJSON_Number);
    if (!n) return NULL;
    n->valuedouble = d;
    n->valueint = d >= INT_MAX ? INT_MAX : d <= (double)INT_MIN ? INT_MIN : (int)d;
    ps->p = stop;
    return n;
}

/* ---- spans ---------------------------------------------------------------- */

/* An open-addressing table from node to where its text sits, keyed by the
 * node's address: nodes are not moved, and in an arena not reused. */
typedef struct span_slot {
    const cJSON *node;
    uint32_t off, len;
    uint32_t gen; /* the slot is taken when this is the table's gen */
} span_slot;

/* A new text starts a new generation instead of clearing the slots, so a
 * table kept from a large body costs a small one nothing. */
struct json_spans {
    const char *text; /* what the last json_parse_spans read */
    span_slot *slots;
    size_t cap; /* a power of two, or 0 */
    size_t count;
    uint32_t gen; /* of the slots taken for text; never 0 (calloc's) */
};

#define SPANS_FIRST_CAP 64

static size_t span_home(const json_spans *s, const cJSON *node) {
    uint64_t h = ((uint64_t)(uintptr_t)node >> 4) * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (s->cap - 1);
}

static void span_place(json_spans *s, span_slot slot) {
    size_t i = span_home(s, slot.node);
    while (s->slots[i].gen == s->gen)
        i = (i + 1) & (s->cap - 1);
    slot.gen = s->gen;
    s->slots[i] = slot;
    s->count++;
}

/* Doubles the table; false when memory runs out (the span is then not
 * kept, which only costs printing that value). */
static bool spans_grow(json_spans *s) {
    size_t cap = s->cap ? s->cap * 2 : SPANS_FIRST_CAP;
    span_slot *old = s->slots, *slots = calloc(cap, sizeof *slots);
    if (!slots) return false;
    size_t old_cap = s->cap;
    s->slots = slots;
    s->cap = cap;
    s->count = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].gen == s->gen) span_place(s, old[i]);
    free(old);
    return true;
}

static void span_record(parser *ps, const cJSON *node, const char *open) {
    json_spans *s = ps->spans;
    size_t off = (size_t)(open - ps->start), len = (size_t)(ps->p - open);
    if (off > UINT32_MAX || len > UINT32_MAX) return;
    if ((s->count + 1) * 2 > s->cap && !spans_grow(s)) return;
    span_place(s, (span_slot){.node = node, .off = (uint32_t)off, .len = (uint32_t)len});
}

json_spans *json_spans_new(size_t expect) {
    json_spans *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->gen = 1; /* calloc's slots (generation 0) are free */
    size_t cap = SPANS_FIRST_CAP;
    while (cap < expect * 2 && cap < ((size_t)1 << 20))
        cap *= 2;
    if ((s->slots = calloc(cap, sizeof *s->slots))) s->cap = cap;
    return s;
}

void json_spans_free(json_spans *s) {
    if (!s) return;
    free(s->slots);
    free(s);
}

/* Whether n bytes at p hold a byte below 0x20: 8 at a time, as in
 * json.c's string writer. Strict JSON allows none inside strings, and
 * spans with whitespace other than spaces are simply printed again. */
static bool has_control_byte(const char *p, size_t n) {
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if ((w - ones * 0x20) & ~w & highs) return true;
    }
    for (; i < n; i++)
        if ((unsigned char)p[i] < 0x20) return true;
    return false;
}

bool json_span_text(const json_spans *s, const cJSON *node, const char **text, size_t *len) {
    if (!s || !s->cap || !node) return false;
    for (size_t i = span_home(s, node); s->slots[i].gen == s->gen; i = (i + 1) & (s->cap - 1)) {
        if (s->slots[i].node != node) continue;
        const char *p = s->text + s->slots[i].off;
        size_t n = s->slots[i].len;
        if (has_control_byte(p, n)) return false;
        *text = p;
        *len = n;
        return true;
    }
    return false;
}

/* ---- containers ---------------------------------------------------------- */

static void append(cJSON *parent, cJSON **last, cJSON *child) {
    if (*last) {
        (*last)->next = child;
        child->prev = *last;
    } else {
        parent->child = child;
    }
    *last = child;
    parent->child->prev = child; /* cJSON keeps the last child in the first's prev */
}

/* After '[' or '{': the members up to the closing byte, each read by
 * member(), separated by commas. */
static cJSON *parse_container(parser *ps, int type, char close) {
    if (++ps->depth > ps->max_depth) return fail(ps, BSP_ETOOBIG, ps->p);
    cJSON *node = new_node(ps, type);
    if (!node) return NULL;
    const char *open = ps->p;
    size_t lenient = ps->lenient;
    ps->p++;
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        if (ps->spans) span_record(ps, node, open);
        return node;
    }
    cJSON *last = NULL;
    for (;;) {
        skip_space(ps);
        char *key = NULL;
        if (type == cJSON_Object) {
            if (ps->p >= ps->end || *ps->p != '"') break;
            if (!(key = parse_string(ps))) break;
            skip_space(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                cJSON_free(key);
                break;
            }
            ps->p++;
            skip_space(ps);
        }
        cJSON *child = parse_value(ps);
        if (!child) {
            cJSON_free(key);
            break;
        }
        child->string = key;
        append(node, &last, child);
        skip_space(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            ps->depth--;
            if (ps->spans && ps->lenient == lenient) span_record(ps, node, open);
            return node;
        }
        break;
    }
    cJSON_Delete(node);
    return fail(ps, BSP_EPARSE, ps->p < ps->end ? ps->p : ps->end - 1);
}

static bool word_at(const parser *ps, const char *w, size_t n) {
    return (size_t)(ps->end - ps->p) >= n && memcmp(ps->p, w, n) == 0;
}

static cJSON *parse_word(parser *ps, const char *w, size_t n, int type) {
    if (!word_at(ps, w, n)) return fail(ps, BSP_EPARSE, ps->p);
    cJSON *node = new_node(ps, type);
    if (node) ps->p += n;
    if (node && type == cJSON_True) node->valueint = 1;
    return node;
}

static cJSON *parse_value(parser *ps) {
    if (ps->p >= ps->end) return fail(ps, BSP_EPARSE, ps->end - 1);
    char c = *ps->p;
    switch (c) {
    case 'n':
        return parse_word(ps, "null", 4, cJSON_NULL);
    case 'f':
        return parse_word(ps, "false", 5, cJSON_False);
    case 't':
        return parse_word(ps, "true", 4, cJSON_True);
    case '"': {
        cJSON *node = new_node(ps, cJSON_String);
        if (node && !(node->valuestring = parse_string(ps))) {
            cJSON_free(node);
            return NULL;
        }
        return node;
    }
    case '[':
        return parse_container(ps, cJSON_Array, ']');
    case '{':
        return parse_container(ps, cJSON_Object, '}');
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(ps);
        return fail(ps, BSP_EPARSE, ps->p);
    }
}

/* ---- the entry point ----------------------------------------------------- */

static void position_of(const char *s, size_t off, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (s[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static void set_position_error(bsp_error *err, const char *text, size_t off, const char *what) {
    int line, col;
    position_of(text, off, &line, &col);
    char at[64];
    snprintf(at, sizeof at, "line %d, column %d", line, col);
    bsp_error_set(err, BSP_EPARSE, at, "%s", what);
}

cJSON *json_parse(const char *text, size_t len, int max_depth, bsp_error *err) {
    return json_parse_spans(text, len, max_depth, NULL, err);
}

cJSON *json_parse_spans(const char *text, size_t len, int max_depth, json_spans *spans,
                        bsp_error *err) {
    parser ps = {
        .start = text, .p = text, .end = text + len, .max_depth = max_depth, .spans = spans};
    if (spans) {
        spans->text = text;
        if (++spans->gen == 0) { /* wrapped: old slots could look taken */
            if (spans->cap) memset(spans->slots, 0, spans->cap * sizeof *spans->slots);
            spans->gen = 1;
        }
        spans->count = 0;
    }
    if (len > 4 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) ps.p += 3;
    skip_space(&ps);
    cJSON *root = len ? parse_value(&ps) : fail(&ps, BSP_EPARSE, text);
    if (root) {
        /* Only whitespace may follow the value (and NUL bytes, which end a
         * C string anyway). */
        while (ps.p < ps.end &&
               (*ps.p == ' ' || *ps.p == '\n' || *ps.p == '\r' || *ps.p == '\t' || *ps.p == '\0'))
            ps.p++;
        if (ps.p == ps.end) return root;
        cJSON_Delete(root);
        set_position_error(err, text, (size_t)(ps.p - text),
                           "unexpected text after the JSON value");
        return NULL;
    }
    if (ps.failed == BSP_ETOOBIG)
        bsp_error_set(err, BSP_ETOOBIG, "", "JSON nested deeper than %d levels", max_depth);
    else if (ps.failed == BSP_ENOMEM)
        bsp_error_set(err, BSP_ENOMEM, "", "out of memory");
    else
        set_position_error(err, text, (size_t)(ps.fail_at - text), "invalid JSON");
    return NULL;
}
