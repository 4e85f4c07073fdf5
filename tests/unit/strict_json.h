/* strict_json.h - json_is_strict: whether a text is JSON as RFC 8259 writes
 * it (no leniency: no control bytes in strings, no leading zeros, no
 * invalid escapes, only space, tab, CR and LF as whitespace). UTF-8 is not
 * checked. For the unit tests and fuzz targets that check that what Bespoke
 * stores and serves is JSON any parser reads. */
#ifndef BSP_TEST_STRICT_JSON_H
#define BSP_TEST_STRICT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct strict_reader {
    const char *p, *end;
    int depth;
} strict_reader;

static inline bool strict_value(strict_reader *r);

static inline void strict_space(strict_reader *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static inline bool strict_at(const strict_reader *r, char c) {
    return r->p < r->end && *r->p == c;
}

static inline bool strict_word(strict_reader *r, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0) return false;
    r->p += n;
    return true;
}

static inline bool strict_digits(strict_reader *r) {
    const char *start = r->p;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
        r->p++;
    return r->p > start;
}

static inline bool strict_number(strict_reader *r) {
    if (strict_at(r, '-')) r->p++;
    if (strict_at(r, '0'))
        r->p++;
    else if (!strict_digits(r))
        return false;
    if (strict_at(r, '.')) {
        r->p++;
        if (!strict_digits(r)) return false;
    }
    if (strict_at(r, 'e') || strict_at(r, 'E')) {
        r->p++;
        if (strict_at(r, '+') || strict_at(r, '-')) r->p++;
        if (!strict_digits(r)) return false;
    }
    return true;
}

static inline bool strict_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static inline bool strict_string(strict_reader *r) {
    r->p++; /* the opening quote */
    while (r->p < r->end) {
        unsigned char c = (unsigned char)*r->p++;
        if (c == '"') return true;
        if (c < 0x20) return false;
        if (c != '\\') continue;
        if (r->p >= r->end) return false;
        c = (unsigned char)*r->p++;
        if (c == 'u') {
            for (int i = 0; i < 4; i++, r->p++)
                if (r->p >= r->end || !strict_hex(*r->p)) return false;
        } else if (c == '\0' || !strchr("\"\\/bfnrt", c)) {
            return false;
        }
    }
    return false;
}

static inline bool strict_container(strict_reader *r, char close, bool object) {
    if (++r->depth > 512) return false;
    r->p++;
    strict_space(r);
    if (strict_at(r, close)) {
        r->p++;
        r->depth--;
        return true;
    }
    for (;;) {
        strict_space(r);
        if (object) {
            if (!strict_at(r, '"') || !strict_string(r)) return false;
            strict_space(r);
            if (!strict_at(r, ':')) return false;
            r->p++;
            strict_space(r);
        }
        if (!strict_value(r)) return false;
        strict_space(r);
        if (strict_at(r, ',')) {
            r->p++;
            continue;
        }
        if (!strict_at(r, close)) return false;
        r->p++;
        r->depth--;
        return true;
    }
}

static inline bool strict_value(strict_reader *r) {
    if (r->p >= r->end) return false;
    switch (*r->p) {
    case '{':
        return strict_container(r, '}', true);
    case '[':
        return strict_container(r, ']', false);
    case '"':
        return strict_string(r);
    case 't':
        return strict_word(r, "true");
    case 'f':
        return strict_word(r, "false");
    case 'n':
        return strict_word(r, "null");
    default:
        return strict_number(r);
    }
}

static inline bool json_is_strict(const char *text, size_t len) {
    strict_reader r = {.p = text, .end = text + len};
    strict_space(&r);
    if (!strict_value(&r)) return false;
    strict_space(&r);
    return r.p == r.end;
}

#endif
