/* json.c - cJSON with limits, positions, paths and writers. */
#include "json/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Maximum nesting measured on the raw text, so a hostile body never reaches
 * cJSON's recursive parser deeper than we allow. Strings are skipped. */
static int text_depth(const char *s, size_t len) {
    int depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '{' || c == '[') {
            if (++depth > max) max = depth;
        } else if (c == '}' || c == ']')
            depth--;
    }
    return max;
}

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

cJSON *json_parse(const char *text, size_t len, int max_depth, bsp_error *err) {
    if (text_depth(text, len) > max_depth) {
        bsp_error_set(err, BSP_ETOOBIG, "", "JSON nested deeper than %d levels", max_depth);
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root) {
        size_t off = end && end >= text ? (size_t)(end - text) : 0;
        if (off > len) off = len;
        int line, col;
        position_of(text, off, &line, &col);
        char at[64];
        snprintf(at, sizeof at, "line %d, column %d", line, col);
        bsp_error_set(err, BSP_EPARSE, at, "invalid JSON");
        return NULL;
    }
    /* Only whitespace may follow the value. */
    if (end) {
        size_t off = (size_t)(end - text);
        while (off < len && (text[off] == ' ' || text[off] == '\n' || text[off] == '\r' ||
                             text[off] == '\t' || text[off] == '\0'))
            off++;
        if (off < len) {
            int line, col;
            position_of(text, off, &line, &col);
            char at[64];
            snprintf(at, sizeof at, "line %d, column %d", line, col);
            bsp_error_set(err, BSP_EPARSE, at, "unexpected text after the JSON value");
            cJSON_Delete(root);
            return NULL;
        }
    }
    return root;
}

const char *json_get_string(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

double json_get_number(const cJSON *obj, const char *key, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

bool json_get_bool(const cJSON *obj, const char *key, bool dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

cJSON *json_get_object(const cJSON *obj, const char *key) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsObject(v) ? v : NULL;
}

cJSON *json_get_array(const cJSON *obj, const char *key) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
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
        cur = cJSON_GetObjectItemCaseSensitive(cur, key);
        p = dot ? dot + 1 : p + n;
    }
    return (cJSON *)cur;
}

void json_set(cJSON *obj, const char *key, cJSON *item) {
    if (cJSON_GetObjectItemCaseSensitive(obj, key))
        cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item);
    else
        cJSON_AddItemToObject(obj, key, item);
}

void json_merge(cJSON *dst, const cJSON *src) {
    const cJSON *it;
    cJSON_ArrayForEach(it, src) {
        if (!it->string) continue;
        cJSON *cur = cJSON_GetObjectItemCaseSensitive(dst, it->string);
        if (cJSON_IsObject(cur) && cJSON_IsObject(it)) {
            json_merge(cur, it);
        } else {
            cJSON *copy = cJSON_Duplicate(it, true);
            if (copy) json_set(dst, it->string, copy);
        }
    }
}

bsp_err json_write(bsp_buf *out, const cJSON *item) {
    char *s = cJSON_PrintUnformatted(item);
    if (!s) return BSP_ENOMEM;
    bsp_err rc = bsp_buf_puts(out, s);
    cJSON_free(s);
    return rc;
}

bsp_err json_write_string(bsp_buf *out, const char *s) {
    static const char hex[] = "0123456789abcdef";
    if (bsp_buf_append(out, "\"", 1)) return BSP_ENOMEM;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[7];
        const char *piece = NULL;
        size_t n = 0;
        switch (*p) {
        case '"':
            piece = "\\\"", n = 2;
            break;
        case '\\':
            piece = "\\\\", n = 2;
            break;
        case '\n':
            piece = "\\n", n = 2;
            break;
        case '\r':
            piece = "\\r", n = 2;
            break;
        case '\t':
            piece = "\\t", n = 2;
            break;
        default:
            if (*p < 0x20) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[*p >> 4];
                esc[5] = hex[*p & 15];
                piece = esc, n = 6;
            }
        }
        bsp_err rc = piece ? bsp_buf_append(out, piece, n) : bsp_buf_append(out, p, 1);
        if (rc) return rc;
    }
    return bsp_buf_append(out, "\"", 1);
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
