/* request.c - parsing what browsers send to the decision endpoints: the
 * /v1/decide body (ids, page context, placements) and the /v1/events
 * impression/click report, which becomes a Segment track event once its
 * token is verified. Both are outside input: limits first, then shapes,
 * with the field's path in every error. */
#include "decide/decide.h"

#include <stdio.h>
#include <string.h>

#include "json/json.h"

/* --- shared ---------------------------------------------------------------------------- */

static cJSON *parse_object(const char *body, size_t len, size_t max, bsp_error *err) {
    if (len > max) {
        bsp_error_set(err, BSP_ETOOBIG, "", "body larger than %zu bytes", max);
        return NULL;
    }
    cJSON *root = json_parse(body, len, BSP_JSON_MAX_DEPTH, err);
    if (root && !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        bsp_error_set(err, BSP_EINVAL, "", "body must be a JSON object");
        return NULL;
    }
    return root;
}

/* An id field: a string, or a number converted in place; NULL if absent. */
static bsp_err id_field(cJSON *root, const char *key, const char **out, bsp_error *err) {
    cJSON *v = json_member(root, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return BSP_OK;
    if (cJSON_IsNumber(v)) {
        char text[32];
        snprintf(text, sizeof text, "%.17g", v->valuedouble);
        cJSON *s = cJSON_CreateString(text);
        if (!s) return bsp_error_set(err, BSP_ENOMEM, "", "out of memory");
        cJSON_ReplaceItemInObjectCaseSensitive(root, key, s);
        v = s;
    }
    if (!cJSON_IsString(v)) return bsp_error_set(err, BSP_ETYPE, key, "must be a string");
    if (strlen(v->valuestring) > BSP_ID_MAX_BYTES)
        return bsp_error_set(err, BSP_ETYPE, key, "must be at most %d bytes", BSP_ID_MAX_BYTES);
    if (v->valuestring[0]) *out = v->valuestring;
    return BSP_OK;
}

static bsp_err ids(cJSON *root, const char **user_id, const char **anonymous_id, bsp_error *err) {
    /* Neither is allowed: a page that may not identify its visitor yet (no
     * consent) still gets every placement's default. */
    if (id_field(root, "userId", user_id, err) || id_field(root, "anonymousId", anonymous_id, err))
        return err->code;
    return BSP_OK;
}

static bsp_err write_key_field(const cJSON *root, char *out, bsp_error *err) {
    const cJSON *v = json_member(root, "writeKey");
    out[0] = '\0';
    if (!v || cJSON_IsNull(v)) return BSP_OK;
    if (!cJSON_IsString(v) || strlen(v->valuestring) > BSP_WRITE_KEY_MAX_BYTES)
        return bsp_error_set(err, BSP_ETYPE, "writeKey", "must be a string of at most %d bytes",
                             BSP_WRITE_KEY_MAX_BYTES);
    snprintf(out, BSP_WRITE_KEY_MAX_BYTES + 1, "%s", v->valuestring);
    return BSP_OK;
}

/* --- /v1/decide ------------------------------------------------------------------------- */

static bsp_err placements_field(decide_request *req, bsp_error *err) {
    const cJSON *list = json_member(req->root, "placements");
    if (!cJSON_IsArray(list))
        return bsp_error_set(err, BSP_ETYPE, "placements", "must be an array of placement ids");
    size_t i = 0;
    for (const cJSON *v = list->child; v; v = v->next, i++) {
        if (i >= DECIDE_PLACEMENTS_MAX)
            return bsp_error_set(err, BSP_ETOOBIG, "placements", "at most %d placements",
                                 DECIDE_PLACEMENTS_MAX);
        if (!cJSON_IsString(v) || !campaign_id_valid(v->valuestring)) {
            char at[32];
            snprintf(at, sizeof at, "placements[%zu]", i);
            return bsp_error_set(err, BSP_ETYPE, at,
                                 "must be a placement id ([A-Za-z0-9_.:-], 1..64)");
        }
        bool seen = false;
        for (size_t k = 0; k < req->placement_count && !seen; k++)
            seen = strcmp(req->placements[k], v->valuestring) == 0;
        if (!seen) req->placements[req->placement_count++] = v->valuestring;
    }
    return BSP_OK;
}

bsp_err decide_request_parse(const char *body, size_t len, decide_request *out, bsp_error *err) {
    memset(out, 0, sizeof *out);
    out->root = parse_object(body, len, DECIDE_BODY_MAX, err);
    if (!out->root) return err->code;
    if (write_key_field(out->root, out->write_key, err)) return err->code;
    if (ids(out->root, &out->user_id, &out->anonymous_id, err)) return err->code;
    const cJSON *context = json_member(out->root, "context");
    if (context && !cJSON_IsNull(context) && !cJSON_IsObject(context))
        return bsp_error_set(err, BSP_ETYPE, "context", "must be an object");
    out->context = cJSON_IsObject(context) ? context : NULL;
    return placements_field(out, err);
}

void decide_request_free(decide_request *req) {
    cJSON_Delete(req->root);
    memset(req, 0, sizeof *req);
}

/* --- /v1/events ------------------------------------------------------------------------- */

static const char *event_name(const cJSON *root, bsp_error *err) {
    const char *type = json_get_string(root, "type");
    if (type && strcmp(type, "impression") == 0) return "Promotion Viewed";
    if (type && strcmp(type, "click") == 0) return "Promotion Clicked";
    bsp_error_set(err, BSP_ETYPE, "type", "must be impression or click");
    return NULL;
}

static bsp_err optional_string(const cJSON *root, const char *key, bsp_error *err) {
    const cJSON *v = json_member(root, key);
    if (v && !cJSON_IsNull(v) && !cJSON_IsString(v))
        return bsp_error_set(err, BSP_ETYPE, key, "must be a string");
    return BSP_OK;
}

/* The track message, as collection would receive it. */
static cJSON *track_message(const cJSON *root, const char *name, const char *uid, const char *aid,
                            const decide_token *tok, const char *token) {
    cJSON *msg = cJSON_CreateObject();
    cJSON *props = cJSON_AddObjectToObject(msg, "properties");
    bool ok = msg && props && cJSON_AddStringToObject(msg, "event", name) &&
              (!uid || cJSON_AddStringToObject(msg, "userId", uid)) &&
              (!aid || cJSON_AddStringToObject(msg, "anonymousId", aid)) &&
              cJSON_AddStringToObject(props, "promotion_id", tok->campaign) &&
              cJSON_AddStringToObject(props, "creative", tok->placement) &&
              cJSON_AddStringToObject(props, "variant", tok->variant) &&
              cJSON_AddStringToObject(props, "token", token);
    static const char *passed[] = {"timestamp", "messageId", "context"};
    for (size_t i = 0; ok && i < 3; i++) {
        const cJSON *v = json_member(root, passed[i]);
        if (!v || cJSON_IsNull(v)) continue;
        cJSON *copy = cJSON_Duplicate(v, true);
        ok = copy != NULL;
        if (copy) cJSON_AddItemToObject(msg, passed[i], copy);
    }
    if (!ok) {
        cJSON_Delete(msg);
        return NULL;
    }
    return msg;
}

static bsp_err event_fields(const uint8_t *key, cJSON *root, int64_t now_ms, decide_token *tok,
                            const char **name, bsp_error *err) {
    *name = event_name(root, err);
    if (!*name) return err->code;
    const char *token = json_get_string(root, "token");
    if (!token) return bsp_error_set(err, BSP_ETYPE, "token", "is required (from /v1/decide)");
    if (optional_string(root, "messageId", err) || optional_string(root, "timestamp", err))
        return err->code;
    if (decide_token_verify(key, token, now_ms, tok, err)) return err->code;
    return BSP_OK;
}

bsp_err decide_event_parse(const uint8_t key[DECIDE_TOKEN_KEY_BYTES], const char *body, size_t len,
                           int64_t now_ms, bsp_event *out,
                           char write_key[BSP_WRITE_KEY_MAX_BYTES + 1], bsp_error *err) {
    memset(out, 0, sizeof *out);
    write_key[0] = '\0';
    cJSON *root = parse_object(body, len, DECIDE_EVENT_BODY_MAX, err);
    if (!root) return err->code;
    const char *uid = NULL, *aid = NULL, *name = NULL;
    decide_token tok;
    bsp_err rc = write_key_field(root, write_key, err);
    if (rc == BSP_OK) rc = ids(root, &uid, &aid, err);
    if (rc == BSP_OK) rc = event_fields(key, root, now_ms, &tok, &name, err);
    cJSON *msg = NULL;
    if (rc == BSP_OK) {
        msg = track_message(root, name, uid, aid, &tok, json_get_string(root, "token"));
        if (!msg) rc = bsp_error_set(err, BSP_ENOMEM, "", "out of memory");
    }
    /* msg is built only when all went well, and the event takes it. */
    if (rc == BSP_OK) rc = event_from_json(msg, BSP_EV_TRACK, NULL, NULL, now_ms, "", out, err);
    cJSON_Delete(root);
    return rc;
}
