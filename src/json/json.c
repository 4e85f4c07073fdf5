/* json.c - helpers over cJSON: getters, paths, merges, hashes and the
 * compact writer. Parsing is in parse.c, arenas in arena.c. */
#include "json/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The end of the string whose first character is at p: just past its
 * closing quote, the first one after an even run of backslashes; end if it
 * never closes. Strings are most of a body's bytes, so they go by memchr. */
static const char *string_end(const char *p, const char *end) {
    for (;;) {
        const char *quote = memchr(p, '"', (size_t)(end - p));
        if (!quote) return end;
        const char *run = quote;
        while (run > p && run[-1] == '\\')
            run--;
        p = quote + 1;
        if ((quote - run) % 2 == 0) return p;
    }
}

/* Maximum nesting measured on the raw text, so a hostile body never reaches
 * cJSON's recursive parser deeper than we allow. Strings are skipped. */
int json_text_depth(const char *s, size_t len) {
    int depth = 0, max = 0;
    const char *p = s, *end = s + len;
    while (p < end) {
        char c = *p++;
        if (c == '"')
            p = string_end(p, end);
        else if (c == '{' || c == '[') {
            if (++depth > max) max = depth;
        } else if (c == '}' || c == ']')
            depth--;
    }
    return max;
}

cJSON *json_member(const cJSON *obj, const char *key) {
    if (!obj || !key) return NULL;
    for (cJSON *it = obj->child; it && it->string; it = it->next)
        if (it->string[0] == key[0] && strcmp(it->string, key) == 0) return it;
    return NULL;
}

void json_members(const cJSON *obj, const char *const *keys, size_t n, const cJSON **out) {
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    for (const cJSON *it = obj ? obj->child : NULL; it && it->string; it = it->next)
        for (size_t i = 0; i < n; i++)
            if (!out[i] && it->string[0] == keys[i][0] && strcmp(it->string, keys[i]) == 0) {
                out[i] = it;
                break;
            }
}

const char *json_get_string(const cJSON *obj, const char *key) {
    const cJSON *v = json_member(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

double json_get_number(const cJSON *obj, const char *key, double dflt) {
    const cJSON *v = json_member(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

bool json_get_bool(const cJSON *obj, const char *key, bool dflt) {
    const cJSON *v = json_member(obj, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

cJSON *json_get_object(const cJSON *obj, const char *key) {
    cJSON *v = json_member(obj, key);
    return cJSON_IsObject(v) ? v : NULL;
}

cJSON *json_get_array(const cJSON *obj, const char *key) {
    cJSON *v = json_member(obj, key);
    return cJSON_IsArray(v) ? v : NULL;
}

cJSON *json_path(const cJSON *root, const char *dotted) {
    const cJSON *cur = root;
    const char *p = dotted;
    char key[128];
    while (cur && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof key || !cJSON_IsObject(cur)) return NULL;
        memcpy(key, p, n);
        key[n] = '\0';
        cur = json_member(cur, key);
        p = dot ? dot + 1 : p + n;
    }
    return (cJSON *)cur;
}

void json_set(cJSON *obj, const char *key, cJSON *item) {
    if (json_member(obj, key))
        cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item);
    else
        cJSON_AddItemToObject(obj, key, item);
}

void json_merge(cJSON *dst, const cJSON *src) {
    const cJSON *it;
    cJSON_ArrayForEach(it, src) {
        if (!it->string) continue;
        cJSON *cur = json_member(dst, it->string);
        if (cJSON_IsObject(cur) && cJSON_IsObject(it)) {
            json_merge(cur, it);
        } else {
            cJSON *copy = cJSON_Duplicate(it, true);
            if (copy) json_set(dst, it->string, copy);
        }
    }
}

/* Writes u's digits ending at end, with a '.' before the last point digits
 * (and leading zeros as needed); returns where the text starts. */
static char *digits_before(char *end, uint64_t u, int point) {
    char *p = end;
    int written = 0;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
        if (++written == point) *--p = '.';
    } while (u || written < point);
    if (point && written == point) *--p = '0'; /* 0.xx */
    return p;
}

/* A number with at most 9 decimals and 15 significant digits whose decimal
 * form reads back exactly (prices, shares, ratings): the same text %.15g
 * gives, without printf. False for anything else. */
static bool write_short_decimal(bsp_buf *out, double d, bsp_err *rc) {
    static const double scale[] = {1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
    double a = fabs(d);
    if (!(a >= 1e-4 && a < 1e15)) return false; /* %.15g would use an exponent */
    for (int k = 0; k < 9; k++) {
        double scaled = a * scale[k];
        if (scaled >= 1e15) return false; /* more than 15 significant digits */
        double v = nearbyint(scaled);
        if (v / scale[k] != a) continue;
        char tmp[40];
        char *end = tmp + sizeof tmp;
        char *p = digits_before(end, (uint64_t)v, k + 1);
        if (d < 0) *--p = '-';
        *rc = bsp_buf_append(out, p, (size_t)(end - p));
        return true;
    }
    return false;
}

/* Integers (the common case: counts, prices in whole units, ids) and short
 * decimals without printf; other numbers in the shortest of %.15g / %.17g
 * that reads back exactly, as cJSON does; NaN and infinities, which JSON
 * lacks, as null. */
static bsp_err write_number(bsp_buf *out, double d) {
    if (isnan(d) || isinf(d)) return bsp_buf_append(out, "null", 4);
    char tmp[JSON_NUMBER_MAX];
    if (d == trunc(d) && fabs(d) < 9007199254740992.0) {
        int64_t v = (int64_t)d;
        uint64_t u = v < 0 ? (uint64_t)(-v) : (uint64_t)v;
        char *p = tmp + sizeof tmp;
        do {
            *--p = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (v < 0) *--p = '-';
        return bsp_buf_append(out, p, (size_t)(tmp + sizeof tmp - p));
    }
    bsp_err rc;
    if (write_short_decimal(out, d, &rc)) return rc;
    size_t n = json_format_double(tmp, d, 15);
    if (strtod(tmp, NULL) != d) n = json_format_double(tmp, d, 17);
    return bsp_buf_append(out, tmp, n);
}

static bsp_err write_item(bsp_buf *out, const cJSON *item);

/* One byte: the punctuation of every member, without a call when it fits. */
static inline bsp_err put_char(bsp_buf *out, char c) {
    if (out->len + 2 > out->cap) return bsp_buf_append(out, &c, 1);
    out->data[out->len++] = c;
    out->data[out->len] = '\0';
    return BSP_OK;
}

static bsp_err write_container(bsp_buf *out, const cJSON *item, bool object) {
    bsp_err rc = put_char(out, object ? '{' : '[');
    for (const cJSON *it = item->child; it && !rc; it = it->next) {
        if (it != item->child) rc = put_char(out, ',');
        if (!rc && object) {
            rc = json_write_string(out, it->string ? it->string : "");
            if (!rc) rc = put_char(out, ':');
        }
        if (!rc) rc = write_item(out, it);
    }
    return rc ? rc : put_char(out, object ? '}' : ']');
}

static bsp_err write_item(bsp_buf *out, const cJSON *item) {
    switch (item->type & 0xFF) {
    case cJSON_False:
        return bsp_buf_append(out, "false", 5);
    case cJSON_True:
        return bsp_buf_append(out, "true", 4);
    case cJSON_NULL:
        return bsp_buf_append(out, "null", 4);
    case cJSON_Number:
        return write_number(out, item->valuedouble);
    case cJSON_String:
        return json_write_string(out, item->valuestring ? item->valuestring : "");
    case cJSON_Raw:
        return bsp_buf_puts(out, item->valuestring ? item->valuestring : "");
    case cJSON_Array:
        return write_container(out, item, false);
    case cJSON_Object:
        return write_container(out, item, true);
    default:
        return BSP_EINVAL;
    }
}

uint64_t json_hash_mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

static uint64_t hash_text(const char *s) {
    return s ? bsp_hash64(s, strlen(s)) : 0x5bd1e995ull;
}

static uint64_t hash_item(const cJSON *item, uint64_t h) {
    h = json_hash_mix(h, (uint64_t)(item->type & 0xff));
    if (cJSON_IsNumber(item)) {
        uint64_t bits;
        double d = item->valuedouble == 0 ? 0 : item->valuedouble; /* -0 as 0 */
        memcpy(&bits, &d, sizeof bits);
        return json_hash_mix(h, bits);
    }
    if (cJSON_IsString(item) || cJSON_IsRaw(item))
        return json_hash_mix(h, hash_text(item->valuestring));
    if (!cJSON_IsArray(item) && !cJSON_IsObject(item)) return h;
    uint64_t n = 0;
    for (const cJSON *c = item->child; c; c = c->next, n++) {
        if (cJSON_IsObject(item)) h = json_hash_mix(h, hash_text(c->string));
        h = hash_item(c, h);
    }
    return json_hash_mix(h, n); /* [[1],2] and [[1,2]] differ */
}

uint64_t json_hash(const cJSON *item) {
    return item ? hash_item(item, 0x243f6a8885a308d3ull) : 0;
}

bsp_err json_write(bsp_buf *out, const cJSON *item) {
    if (!item) return BSP_EINVAL;
    return write_item(out, item);
}

/* Whether any of the 8 bytes in w is below 0x20, a quote or a backslash:
 * the bytes a JSON string must escape. (w - n) & ~w & 0x80.. is non-zero
 * exactly when some byte of w is below n; a byte equal to c is a byte of
 * w ^ c equal to zero, that is below 1. */
static inline bool word_needs_escape(uint64_t w) {
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
    return (((w - ones * 0x20) & ~w) | ((quote - ones) & ~quote) |
            ((backslash - ones) & ~backslash)) &
           highs;
}

/* How many bytes of s (len bytes long) go out as they are before the
 * first that needs an escape: 8 at a time, then one by one. */
static size_t plain_prefix(const char *s, size_t len) {
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (word_needs_escape(w)) break;
    }
    for (; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\') break;
    }
    return i;
}

bsp_err json_write_string(bsp_buf *out, const char *s) {
    static const char hex[] = "0123456789abcdef";
    size_t len = strlen(s), plain = plain_prefix(s, len);
    if (plain == len) { /* the common case: nothing to escape */
        if (bsp_buf_reserve(out, len + 2)) return BSP_ENOMEM;
        char *o = out->data + out->len;
        o[0] = '"';
        memcpy(o + 1, s, len);
        o[len + 1] = '"';
        out->len += len + 2;
        out->data[out->len] = '\0';
        return BSP_OK;
    }
    if (put_char(out, '"')) return BSP_ENOMEM;
    const unsigned char *run = (const unsigned char *)s, *p = run + plain;
    for (;; p++) {
        unsigned char c = *p;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        if (p > run && bsp_buf_append(out, run, (size_t)(p - run))) return BSP_ENOMEM;
        run = p + 1;
        if (c == '\0') break;
        char esc[7] = {'\\', (char)c, 0};
        size_t n = 2;
        switch (c) {
        case '"':
        case '\\':
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        if (bsp_buf_append(out, esc, n)) return BSP_ENOMEM;
    }
    return put_char(out, '"');
}

bsp_err json_write_error(bsp_buf *out, const bsp_error *err) {
    bsp_err rc =
        bsp_buf_printf(out, "{\"error\":{\"code\":\"%s\",\"message\":", bsp_err_name(err->code));
    if (!rc) rc = json_write_string(out, err->message[0] ? err->message : bsp_err_name(err->code));
    if (!rc) rc = bsp_buf_puts(out, ",\"at\":");
    if (!rc) rc = err->at[0] ? json_write_string(out, err->at) : bsp_buf_puts(out, "null");
    if (!rc) rc = bsp_buf_puts(out, "}}");
    return rc;
}
