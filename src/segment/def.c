/* def.c - one segment definition: reading it from an admin request or from
 * the store, checking every field (422 with the field's path, or the
 * condition's line and column), compiling its condition, and writing its
 * stored and public JSON forms. The registry (registry.c) holds them. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "segment/segment_internal.h"

bool segment_id_valid(const char *id) {
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > SEGMENT_ID_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!isalnum(c) && c != '_' && c != '-' && c != '.' && c != ':') return false;
    }
    return true;
}

void seg_def_free(seg_def *d) {
    if (!d) return;
    free(d->id);
    free(d->name);
    free(d->description);
    free(d->condition);
    free(d->hook_url);
    free(d->hook_secret);
    cond_free(d->cond);
    free(d->refs);
    free(d);
}

/* An optional string member no longer than max; NULL when absent. */
static bsp_err opt_string(const cJSON *body, const char *key, size_t max, char **out,
                          bsp_error *err) {
    const cJSON *v = json_member(body, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return BSP_OK;
    if (!cJSON_IsString(v)) return bsp_error_set(err, BSP_ETYPE, key, "must be a string");
    if (strlen(v->valuestring) > max)
        return bsp_error_set(err, BSP_ETYPE, key, "longer than %zu bytes", max);
    *out = strdup(v->valuestring);
    return *out ? BSP_OK : BSP_ENOMEM;
}

static bool url_ok(const char *url) {
    return strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0;
}

static bsp_err read_webhook(seg_def *d, const cJSON *hook, bsp_error *err) {
    if (!hook || cJSON_IsNull(hook)) return BSP_OK;
    if (!cJSON_IsObject(hook)) return bsp_error_set(err, BSP_ETYPE, "webhook", "must be an object");
    bsp_err rc = opt_string(hook, "url", SEGMENT_URL_MAX, &d->hook_url, err);
    if (!rc) rc = opt_string(hook, "secret", SEGMENT_SECRET_MAX, &d->hook_secret, err);
    if (rc) return rc;
    if (!d->hook_url || !url_ok(d->hook_url))
        return bsp_error_set(err, BSP_ETYPE, "webhook.url", "must be an http:// or https:// URL");
    const cJSON *on = json_member(hook, "on"), *it;
    if (!on) {
        d->hook_enter = d->hook_exit = true;
        return BSP_OK;
    }
    if (!cJSON_IsArray(on))
        return bsp_error_set(err, BSP_ETYPE, "webhook.on", "must be a list of \"enter\"/\"exit\"");
    cJSON_ArrayForEach(it, on) {
        const char *s = cJSON_IsString(it) ? it->valuestring : "";
        if (strcmp(s, "enter") == 0)
            d->hook_enter = true;
        else if (strcmp(s, "exit") == 0)
            d->hook_exit = true;
        else
            return bsp_error_set(err, BSP_ETYPE, "webhook.on",
                                 "must be a list of \"enter\"/\"exit\"");
    }
    return BSP_OK;
}

/* Compiles the condition and checks that a segment may use what it reads:
 * context.* exists only in decisions. */
static bsp_err compile_condition(seg_def *d, bsp_error *err) {
    bsp_error cerr;
    bsp_error_clear(&cerr);
    bsp_err rc = cond_compile(d->condition, strlen(d->condition), &d->cond, &cerr);
    if (rc) {
        *err = cerr;
        if (rc == BSP_ETYPE && cerr.at[0])
            snprintf(err->at, sizeof err->at, "condition: %.100s", cerr.at);
        return rc;
    }
    d->inputs = cond_inputs(d->cond);
    d->computed_bits = cond_computed_reads(d->cond);
    if (d->inputs & COND_USES_CONTEXT)
        return bsp_error_set(err, BSP_ETYPE, "condition",
                             "context.* is only known in campaign conditions, not in segments");
    const char *names[64];
    size_t n = cond_event_names(d->cond, names, 64);
    if (n > 64) return bsp_error_set(err, BSP_ETOOBIG, "condition", "more than 64 event names");
    for (size_t i = 0; i < n; i++)
        d->event_bits |= ingest_name_bit(names[i]);
    d->nevents = n;
    return BSP_OK;
}

static bsp_err read_kind(seg_def *d, const cJSON *body, bsp_error *err) {
    const char *kind = json_get_string(body, "kind");
    if (!kind || strcmp(kind, "condition") == 0) return BSP_OK;
    if (strcmp(kind, "automatic") == 0) {
        d->automatic = true;
        return BSP_OK;
    }
    return bsp_error_set(err, BSP_ETYPE, "kind", "must be \"condition\" or \"automatic\"");
}

bsp_err seg_def_from_json(const cJSON *body, const char *path_id, bool trusted, seg_def **out,
                          bsp_error *err) {
    *out = NULL;
    if (!cJSON_IsObject(body)) return bsp_error_set(err, BSP_ETYPE, "", "must be a JSON object");
    seg_def *d = calloc(1, sizeof *d);
    if (!d) return BSP_ENOMEM;
    bsp_err rc = opt_string(body, "id", SEGMENT_ID_MAX, &d->id, err);
    if (!rc && path_id && d->id && strcmp(path_id, d->id) != 0)
        rc = bsp_error_set(err, BSP_ETYPE, "id", "differs from the id in the path");
    if (!rc && !d->id && path_id && !(d->id = strdup(path_id))) rc = BSP_ENOMEM;
    if (!rc && !segment_id_valid(d->id))
        rc = bsp_error_set(err, BSP_ETYPE, "id",
                           "must be 1..%d of A-Z a-z 0-9 _ - . :", SEGMENT_ID_MAX);
    if (!rc) d->id_hash = bsp_hash64(d->id, strlen(d->id));
    if (!rc) rc = opt_string(body, "name", SEGMENT_NAME_MAX, &d->name, err);
    if (!rc) rc = opt_string(body, "description", SEGMENT_DESC_MAX, &d->description, err);
    if (!rc) rc = opt_string(body, "condition", COND_MAX_TEXT, &d->condition, err);
    if (!rc) rc = read_kind(d, body, err);
    if (!rc && trusted) d->builtin = json_get_bool(body, "builtin", false);
    if (!rc && !d->automatic && (!d->condition || !*d->condition))
        rc = bsp_error_set(err, BSP_ETYPE, "condition", "is required");
    if (!rc && d->automatic && d->condition)
        rc = bsp_error_set(err, BSP_ETYPE, "condition", "an automatic segment has none");
    if (!rc) rc = read_webhook(d, json_member(body, "webhook"), err);
    if (!rc && !d->automatic) rc = compile_condition(d, err);
    if (!rc) {
        d->created_ms = (int64_t)json_get_number(body, "created_ms", 0);
        d->updated_ms = (int64_t)json_get_number(body, "updated_ms", 0);
    }
    if (rc) {
        seg_def_free(d);
        return rc;
    }
    *out = d;
    return BSP_OK;
}

bsp_err segment_validate(const cJSON *body, const char *path_id, bsp_error *err) {
    seg_def *d;
    bsp_err rc = seg_def_from_json(body, path_id, false, &d, err);
    if (rc) return rc;
    cJSON *stored = seg_def_to_json(d, true), *shown = seg_def_to_json(d, false);
    rc = stored && shown ? BSP_OK : BSP_ENOMEM;
    cJSON_Delete(stored);
    cJSON_Delete(shown);
    seg_def_free(d);
    return rc;
}

static bool add_string(cJSON *o, const char *key, const char *s) {
    return cJSON_AddItemToObject(o, key, s ? cJSON_CreateString(s) : cJSON_CreateNull());
}

static bool add_time(cJSON *o, const char *key, int64_t ms) {
    char iso[40];
    bsp_time_format(ms, iso, sizeof iso);
    return cJSON_AddStringToObject(o, key, iso) != NULL;
}

static bool add_webhook(cJSON *o, const seg_def *d, bool with_secret) {
    if (!d->hook_url) return cJSON_AddNullToObject(o, "webhook") != NULL;
    cJSON *h = cJSON_AddObjectToObject(o, "webhook");
    cJSON *on = h ? cJSON_AddArrayToObject(h, "on") : NULL;
    if (!on || !cJSON_AddStringToObject(h, "url", d->hook_url)) return false;
    if (d->hook_enter && !cJSON_AddItemToArray(on, cJSON_CreateString("enter"))) return false;
    if (d->hook_exit && !cJSON_AddItemToArray(on, cJSON_CreateString("exit"))) return false;
    if (with_secret && d->hook_secret) return cJSON_AddStringToObject(h, "secret", d->hook_secret);
    return cJSON_AddBoolToObject(h, "signed", d->hook_secret != NULL) != NULL;
}

cJSON *seg_def_to_json(const seg_def *d, bool stored) {
    cJSON *o = cJSON_CreateObject();
    bool ok = o && add_string(o, "id", d->id) && add_string(o, "name", d->name) &&
              add_string(o, "description", d->description) &&
              add_string(o, "kind", d->automatic ? "automatic" : "condition") &&
              add_string(o, "condition", d->condition) &&
              cJSON_AddBoolToObject(o, "builtin", d->builtin) && add_webhook(o, d, stored);
    if (ok && stored)
        ok = cJSON_AddNumberToObject(o, "created_ms", (double)d->created_ms) &&
             cJSON_AddNumberToObject(o, "updated_ms", (double)d->updated_ms);
    if (ok && !stored)
        ok = add_time(o, "created_at", d->created_ms) && add_time(o, "updated_at", d->updated_ms);
    if (ok) return o;
    cJSON_Delete(o);
    return NULL;
}
