/* validate.c - campaign and placement validation: every field of what the
 * admin API receives is checked and normalized here, with the field's JSON
 * path in the error, so that compiling a snapshot never meets a bad value.
 * Content types share one validator (placement defaults use it too). */
#include "campaign/campaign.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NAME_MAX_BYTES 200
#define TEXT_MAX_BYTES 4096
#define HTML_MAX_BYTES 32768
#define SELECTOR_MAX_BYTES 256
#define SELECTORS_MAX 32
#define QUESTIONS_MAX 10
#define OPTIONS_MAX 12
#define PRIORITY_LIMIT 1000000

bool campaign_id_valid(const char *id) {
    size_t n = 0;
    for (; id[n]; n++) {
        char c = id[n];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == ':' || c == '-';
        if (!ok || n >= CAMPAIGN_ID_MAX) return false;
    }
    return n > 0;
}

/* --- field helpers ------------------------------------------------------------- */

static bsp_err bad(bsp_error *err, const char *at, const char *msg) {
    return bsp_error_set(err, BSP_ETYPE, at, "%s", msg);
}

/* Optional string field of at most max bytes; absent or null is fine. */
static bsp_err opt_string(const cJSON *obj, const char *key, const char *prefix, size_t max,
                          bsp_error *err) {
    const cJSON *v = json_member(obj, key);
    if (!v || cJSON_IsNull(v)) return BSP_OK;
    char at[96];
    snprintf(at, sizeof at, "%s%s", prefix, key);
    if (!cJSON_IsString(v)) return bad(err, at, "must be a string");
    if (strlen(v->valuestring) > max)
        return bsp_error_set(err, BSP_ETYPE, at, "must be at most %zu bytes", max);
    return BSP_OK;
}

/* "content" for the prefix "content." */
static const char *base_of(const char *p, char *buf, size_t cap) {
    snprintf(buf, cap, "%.*s", (int)strlen(p) - 1, p);
    return buf;
}

static bool is_text(const cJSON *obj, const char *key) {
    const cJSON *v = json_member(obj, key);
    return cJSON_IsString(v) && v->valuestring[0];
}

/* An array of 0..max_items strings of 1..max_len bytes each. */
static bsp_err string_array(const cJSON *arr, const char *at, size_t max_items, size_t max_len,
                            bsp_error *err) {
    if (!cJSON_IsArray(arr)) return bad(err, at, "must be an array of strings");
    size_t i = 0;
    for (const cJSON *v = arr->child; v; v = v->next, i++) {
        char item_at[128];
        snprintf(item_at, sizeof item_at, "%s[%zu]", at, i);
        if (i >= max_items)
            return bsp_error_set(err, BSP_ETYPE, at, "at most %zu items", max_items);
        if (!cJSON_IsString(v) || !v->valuestring[0])
            return bad(err, item_at, "must be a non-empty string");
        if (strlen(v->valuestring) > max_len)
            return bsp_error_set(err, BSP_ETYPE, item_at, "must be at most %zu bytes", max_len);
    }
    return BSP_OK;
}

/* A whole number in [lo, hi]. */
static bool whole(const cJSON *v, double lo, double hi) {
    return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= lo &&
           v->valuedouble <= hi;
}

/* --- content ---------------------------------------------------------------------- */

static bsp_err banner_check(const cJSON *c, const char *p, bsp_error *err) {
    static const char *fields[] = {"title", "text", "image", "link"};
    bool any = false;
    for (size_t i = 0; i < 4; i++) {
        if (opt_string(c, fields[i], p, TEXT_MAX_BYTES, err)) return err->code;
        any = any || is_text(c, fields[i]);
    }
    if (opt_string(c, "html", p, HTML_MAX_BYTES, err)) return err->code;
    any = any || is_text(c, "html");
    char base[32];
    if (!any)
        return bad(err, base_of(p, base, sizeof base),
                   "a banner needs title, text, image, link or html");
    return BSP_OK;
}

static bool printable_code(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e) return false;
    return true;
}

static bsp_err pool_check(const cJSON *pool, const char *p, bsp_error *err) {
    char at[64];
    snprintf(at, sizeof at, "%spool", p);
    if (string_array(pool, at, CAMPAIGN_POOL_MAX, CAMPAIGN_CODE_MAX, err)) return err->code;
    if (!pool->child) return bad(err, at, "a pool needs at least one code");
    size_t i = 0;
    for (const cJSON *v = pool->child; v; v = v->next, i++) {
        if (printable_code(v->valuestring)) continue;
        snprintf(at, sizeof at, "%spool[%zu]", p, i);
        return bad(err, at, "codes are printable ASCII without spaces");
    }
    return BSP_OK;
}

static bsp_err coupon_check(const cJSON *c, const char *p, bool pool_allowed, bsp_error *err) {
    if (opt_string(c, "title", p, TEXT_MAX_BYTES, err)) return err->code;
    if (opt_string(c, "text", p, TEXT_MAX_BYTES, err)) return err->code;
    const cJSON *code = json_member(c, "code");
    const cJSON *pool = json_member(c, "pool");
    char at[64];
    snprintf(at, sizeof at, "%s%s", p, pool ? "pool" : "code");
    if (code && pool) return bad(err, at, "give either code or pool, not both");
    if (pool && !pool_allowed) return bad(err, at, "a placement default cannot hand out a pool");
    if (pool) return pool_check(pool, p, err);
    if (!cJSON_IsString(code) || !code->valuestring[0] ||
        strlen(code->valuestring) > CAMPAIGN_CODE_MAX)
        return bad(err, at, "a coupon needs a code (1..64 bytes) or a pool of codes");
    return BSP_OK;
}

static bsp_err toggle_check(const cJSON *c, const char *p, bsp_error *err) {
    static const char *fields[] = {"hide", "show"};
    bool any = false;
    for (size_t i = 0; i < 2; i++) {
        const cJSON *v = json_member(c, fields[i]);
        if (!v || cJSON_IsNull(v)) continue;
        char at[64];
        snprintf(at, sizeof at, "%s%s", p, fields[i]);
        if (string_array(v, at, SELECTORS_MAX, SELECTOR_MAX_BYTES, err)) return err->code;
        any = any || v->child;
    }
    char base[32];
    if (!any)
        return bad(err, base_of(p, base, sizeof base), "a toggle needs hide or show selectors");
    return BSP_OK;
}

static bsp_err products_check(const cJSON *c, const char *p, bsp_error *err) {
    char at[64];
    if (opt_string(c, "title", p, TEXT_MAX_BYTES, err)) return err->code;
    const cJSON *strategy = json_member(c, "strategy");
    snprintf(at, sizeof at, "%sstrategy", p);
    if (strategy && !cJSON_IsNull(strategy) &&
        (!cJSON_IsString(strategy) || !campaign_id_valid(strategy->valuestring)))
        return bad(err, at, "must be a strategy name such as \"popular\"");
    const cJSON *n = json_member(c, "n");
    snprintf(at, sizeof at, "%sn", p);
    if (n && !cJSON_IsNull(n) && !whole(n, 1, CAMPAIGN_PRODUCTS_MAX_N))
        return bad(err, at, "must be a whole number from 1 to 50");
    const cJSON *filters = json_member(c, "filters");
    snprintf(at, sizeof at, "%sfilters", p);
    if (filters && !cJSON_IsNull(filters) && !cJSON_IsObject(filters))
        return bad(err, at, "must be an object");
    return BSP_OK;
}

static bsp_err option_check(const cJSON *o, const char *at, bsp_error *err) {
    char sub[192];
    if (!cJSON_IsObject(o)) return bad(err, at, "must be an object {value, label}");
    snprintf(sub, sizeof sub, "%s.", at);
    const cJSON *value = json_member(o, "value");
    if (!cJSON_IsString(value) || !value->valuestring[0] ||
        strlen(value->valuestring) > NAME_MAX_BYTES) {
        snprintf(sub, sizeof sub, "%s.value", at);
        return bad(err, sub, "must be a non-empty string");
    }
    return opt_string(o, "label", sub, NAME_MAX_BYTES, err);
}

static bsp_err question_check(const cJSON *q, const char *at, bsp_error *err) {
    char sub[128];
    if (!cJSON_IsObject(q)) return bad(err, at, "must be an object {id, text, options}");
    const cJSON *id = json_member(q, "id");
    snprintf(sub, sizeof sub, "%s.id", at);
    if (!cJSON_IsString(id) || !campaign_id_valid(id->valuestring))
        return bad(err, sub,
                   "must be an id ([A-Za-z0-9_.:-], 1..64): it names the trait "
                   "traits.quiz.<id>");
    snprintf(sub, sizeof sub, "%s.", at);
    if (opt_string(q, "text", sub, TEXT_MAX_BYTES, err)) return err->code;
    const cJSON *options = json_member(q, "options");
    snprintf(sub, sizeof sub, "%s.options", at);
    int n = cJSON_GetArraySize(options);
    if (!cJSON_IsArray(options) || n < 2 || n > OPTIONS_MAX)
        return bad(err, sub, "must be an array of 2 to 12 options");
    int i = 0;
    for (const cJSON *o = options->child; o; o = o->next, i++) {
        snprintf(sub, sizeof sub, "%s.options[%d]", at, i);
        if (option_check(o, sub, err)) return err->code;
    }
    return BSP_OK;
}

static bsp_err quiz_check(const cJSON *c, const char *p, bsp_error *err) {
    char at[64];
    if (opt_string(c, "title", p, TEXT_MAX_BYTES, err)) return err->code;
    const cJSON *qs = json_member(c, "questions");
    snprintf(at, sizeof at, "%squestions", p);
    int n = cJSON_GetArraySize(qs);
    if (!cJSON_IsArray(qs) || n < 1 || n > QUESTIONS_MAX)
        return bad(err, at, "must be an array of 1 to 10 questions");
    int i = 0;
    for (const cJSON *q = qs->child; q; q = q->next, i++) {
        snprintf(at, sizeof at, "%squestions[%d]", p, i);
        if (question_check(q, at, err)) return err->code;
    }
    return BSP_OK;
}

static const char *const type_names[] = {"banner", "coupon", "toggle", "products", "quiz"};

/* Validates content at path prefix p ("content." or "default."). */
static bsp_err content_check(const cJSON *c, const char *p, bool pool_allowed, bsp_error *err) {
    char at[64];
    if (!cJSON_IsObject(c))
        return bad(err, base_of(p, at, sizeof at), "must be an object with a type");
    const cJSON *type = json_member(c, "type");
    snprintf(at, sizeof at, "%stype", p);
    int t = -1;
    for (int i = 0; cJSON_IsString(type) && i < 5; i++)
        if (strcmp(type->valuestring, type_names[i]) == 0) t = i;
    switch (t) {
    case CONTENT_BANNER:
        return banner_check(c, p, err);
    case CONTENT_COUPON:
        return coupon_check(c, p, pool_allowed, err);
    case CONTENT_TOGGLE:
        return toggle_check(c, p, err);
    case CONTENT_PRODUCTS:
        return products_check(c, p, err);
    case CONTENT_QUIZ:
        return quiz_check(c, p, err);
    default:
        return bad(err, at, "must be banner, coupon, toggle, products or quiz");
    }
}

/* --- common top-level fields -------------------------------------------------------- */

static bsp_err id_check(const cJSON *body, const char *id_from_path, const char **id_out,
                        bsp_error *err) {
    const cJSON *id = json_member(body, "id");
    if (id && !cJSON_IsNull(id)) {
        if (!cJSON_IsString(id) || !campaign_id_valid(id->valuestring))
            return bad(err, "id", "must be 1..64 characters of A-Z a-z 0-9 _ . : -");
        if (id_from_path && strcmp(id_from_path, id->valuestring) != 0)
            return bad(err, "id", "differs from the id in the path");
        *id_out = id->valuestring;
        return BSP_OK;
    }
    if (!id_from_path) return bad(err, "id", "is required");
    if (!campaign_id_valid(id_from_path))
        return bsp_error_set(err, BSP_EINVAL, "id",
                             "ids are 1..64 characters of A-Z a-z 0-9 _ . : -");
    *id_out = id_from_path;
    return BSP_OK;
}

/* Starts the normalized object: id, name, description, timestamps. */
static bsp_err start_object(const cJSON *body, const char *id_from_path, int64_t now_ms,
                            cJSON **out, bsp_error *err) {
    *out = NULL;
    if (!cJSON_IsObject(body)) return bsp_error_set(err, BSP_EINVAL, "", "body must be an object");
    const char *id = NULL;
    if (id_check(body, id_from_path, &id, err)) return err->code;
    if (opt_string(body, "name", "", NAME_MAX_BYTES, err)) return err->code;
    if (opt_string(body, "description", "", TEXT_MAX_BYTES, err)) return err->code;
    cJSON *obj = cJSON_CreateObject();
    const char *name = json_get_string(body, "name");
    const char *desc = json_get_string(body, "description");
    char now[32];
    bsp_time_format(now_ms, now, sizeof now);
    if (!obj || !cJSON_AddStringToObject(obj, "id", id) ||
        !cJSON_AddStringToObject(obj, "name", name ? name : id) ||
        (desc && !cJSON_AddStringToObject(obj, "description", desc)) ||
        !cJSON_AddStringToObject(obj, "updated_at", now)) {
        cJSON_Delete(obj);
        return bsp_error_set(err, BSP_ENOMEM, "", "out of memory");
    }
    *out = obj;
    return BSP_OK;
}

/* Adds a copy of item under key; false on OOM. */
static bool add_copy(cJSON *obj, const char *key, const cJSON *item) {
    cJSON *copy = item ? cJSON_Duplicate(item, true) : cJSON_CreateNull();
    if (!copy) return false;
    cJSON_AddItemToObject(obj, key, copy);
    return true;
}

static bsp_err finish_object(cJSON **obj, bsp_error *err) {
    char *text = cJSON_PrintUnformatted(*obj);
    size_t len = text ? strlen(text) : 0;
    cJSON_free(text);
    if (!text) {
        cJSON_Delete(*obj);
        *obj = NULL;
        return bsp_error_set(err, BSP_ENOMEM, "", "out of memory");
    }
    if (len > CAMPAIGN_MAX_BYTES) {
        cJSON_Delete(*obj);
        *obj = NULL;
        return bsp_error_set(err, BSP_ETOOBIG, "", "larger than %d bytes once normalized",
                             CAMPAIGN_MAX_BYTES);
    }
    return BSP_OK;
}

/* --- placements ----------------------------------------------------------------------- */

bsp_err placement_from_json(const cJSON *body, const char *id_from_path, int64_t now_ms,
                            cJSON **out, bsp_error *err) {
    if (start_object(body, id_from_path, now_ms, out, err)) return err->code;
    const cJSON *deflt = json_member(body, "default");
    if (deflt && !cJSON_IsNull(deflt) && content_check(deflt, "default.", false, err)) {
        cJSON_Delete(*out);
        *out = NULL;
        return err->code;
    }
    if (!add_copy(*out, "default", cJSON_IsNull(deflt) ? NULL : deflt)) {
        cJSON_Delete(*out);
        *out = NULL;
        return bsp_error_set(err, BSP_ENOMEM, "", "out of memory");
    }
    return finish_object(out, err);
}

/* --- campaigns --------------------------------------------------------------------------- */

static bsp_err status_check(const cJSON *body, const char **status, bsp_error *err) {
    const cJSON *v = json_member(body, "status");
    *status = "draft";
    if (!v || cJSON_IsNull(v)) return BSP_OK;
    if (cJSON_IsString(v) &&
        (!strcmp(v->valuestring, "draft") || !strcmp(v->valuestring, "active") ||
         !strcmp(v->valuestring, "paused"))) {
        *status = v->valuestring;
        return BSP_OK;
    }
    return bad(err, "status", "must be draft, active or paused");
}

static bsp_err time_field(const cJSON *body, const char *key, int64_t *ms, bsp_error *err) {
    const cJSON *v = json_member(body, key);
    *ms = 0;
    if (!v || cJSON_IsNull(v)) return BSP_OK;
    if (!cJSON_IsString(v) || !bsp_time_parse(v->valuestring, ms) || *ms == 0)
        return bad(err, key, "must be an ISO 8601 time such as 2026-01-01T00:00:00Z, or null");
    return BSP_OK;
}

static bsp_err cap_check(const cJSON *body, bsp_error *err) {
    const cJSON *cap = json_member(body, "cap");
    if (!cap || cJSON_IsNull(cap)) return BSP_OK;
    if (!cJSON_IsObject(cap)) return bad(err, "cap", "must be an object {per_day, total}");
    static const char *keys[] = {"per_day", "total"};
    for (int i = 0; i < 2; i++) {
        const cJSON *v = json_member(cap, keys[i]);
        char at[32];
        snprintf(at, sizeof at, "cap.%s", keys[i]);
        if (v && !cJSON_IsNull(v) && !whole(v, 1, 1e9))
            return bad(err, at, "must be a whole number from 1, or null");
    }
    return BSP_OK;
}

static bsp_err condition_check(const cJSON *body, bsp_error *err) {
    const cJSON *v = json_member(body, "condition");
    if (!v || cJSON_IsNull(v)) return BSP_OK;
    if (!cJSON_IsString(v)) return bad(err, "condition", "must be a string, or null");
    bsp_cond *cond = NULL;
    bsp_error cerr;
    bsp_error_clear(&cerr);
    bsp_err rc = cond_compile(v->valuestring, strlen(v->valuestring), &cond, &cerr);
    cond_free(cond);
    if (rc == BSP_OK) return BSP_OK;
    bsp_error_set(err, rc, "", "%s", cerr.message);
    snprintf(err->at, sizeof err->at, "condition%s%.100s", cerr.at[0] ? ": " : "", cerr.at);
    return rc;
}

/* The fields after name/description, checked in the order a reader fixes them. */
static bsp_err campaign_fields(const cJSON *body, const char **status, int64_t *start, int64_t *end,
                               bsp_error *err) {
    const cJSON *placement = json_member(body, "placement");
    if (!cJSON_IsString(placement) || !campaign_id_valid(placement->valuestring))
        return bad(err, "placement", "is required: a placement id ([A-Za-z0-9_.:-], 1..64)");
    if (status_check(body, status, err)) return err->code;
    const cJSON *prio = json_member(body, "priority");
    if (prio && !cJSON_IsNull(prio) && !whole(prio, -PRIORITY_LIMIT, PRIORITY_LIMIT))
        return bad(err, "priority", "must be a whole number from -1000000 to 1000000");
    if (condition_check(body, err)) return err->code;
    if (time_field(body, "start", start, err) || time_field(body, "end", end, err))
        return err->code;
    if (*start && *end && *end <= *start) return bad(err, "end", "must be after start");
    if (cap_check(body, err)) return err->code;
    const cJSON *control = json_member(body, "control");
    if (control && !cJSON_IsNull(control) &&
        (!cJSON_IsNumber(control) || !(control->valuedouble >= 0 && control->valuedouble <= 1)))
        return bad(err, "control", "must be a share from 0 to 1");
    const cJSON *content = json_member(body, "content");
    if (!content) return bad(err, "content", "is required");
    return content_check(content, "content.", true, err);
}

static bool add_number_or_null(cJSON *obj, const char *key, const cJSON *v) {
    return (cJSON_IsNumber(v) ? cJSON_AddNumberToObject(obj, key, v->valuedouble)
                              : cJSON_AddNullToObject(obj, key)) != NULL;
}

static bool add_time_or_null(cJSON *obj, const char *key, int64_t ms) {
    char text[32];
    if (!ms) return cJSON_AddNullToObject(obj, key) != NULL;
    bsp_time_format(ms, text, sizeof text);
    return cJSON_AddStringToObject(obj, key, text) != NULL;
}

static bool add_cap(cJSON *obj, const cJSON *body) {
    const cJSON *cap = json_member(body, "cap");
    cJSON *out = cJSON_AddObjectToObject(obj, "cap");
    return out && add_number_or_null(out, "per_day", json_member(cap, "per_day")) &&
           add_number_or_null(out, "total", json_member(cap, "total"));
}

static bool add_campaign_fields(cJSON *obj, const cJSON *body, const char *status, int64_t start,
                                int64_t end) {
    const cJSON *cond = json_member(body, "condition");
    bool has_cond = cJSON_IsString(cond) && cond->valuestring[0];
    return cJSON_AddStringToObject(obj, "placement", json_get_string(body, "placement")) &&
           cJSON_AddStringToObject(obj, "status", status) &&
           cJSON_AddNumberToObject(obj, "priority", json_get_number(body, "priority", 0)) &&
           (has_cond ? cJSON_AddStringToObject(obj, "condition", cond->valuestring)
                     : cJSON_AddNullToObject(obj, "condition")) &&
           add_time_or_null(obj, "start", start) && add_time_or_null(obj, "end", end) &&
           add_cap(obj, body) &&
           cJSON_AddNumberToObject(obj, "control", json_get_number(body, "control", 0)) &&
           add_copy(obj, "content", json_member(body, "content"));
}

bsp_err campaign_from_json(const cJSON *body, const char *id_from_path, int64_t now_ms, cJSON **out,
                           bsp_error *err) {
    if (start_object(body, id_from_path, now_ms, out, err)) return err->code;
    const char *status = "draft";
    int64_t start = 0, end = 0;
    if (campaign_fields(body, &status, &start, &end, err)) {
        cJSON_Delete(*out);
        *out = NULL;
        return err->code;
    }
    if (!add_campaign_fields(*out, body, status, start, end)) {
        cJSON_Delete(*out);
        *out = NULL;
        return bsp_error_set(err, BSP_ENOMEM, "", "out of memory");
    }
    return finish_object(out, err);
}
