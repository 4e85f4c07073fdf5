/* event.c - turns Segment Tracking API messages (as analytics.js,
 * analytics-node and RudderStack's SDKs send them) into normalized events,
 * and whole HTTP bodies (one message or a batch) into event lists.
 *
 * Each message goes through two steps. validate_message only reads the
 * message, so a bad message costs no allocation, and finds its type and
 * time. normalize_in_place then rewrites the message's tree: ids become
 * strings, writeKey goes, batch-level context and integrations are merged
 * under the message's own, RudderStack's context.traits feed identify
 * traits, timestamps become ISO strings. That tree is the body's own (a
 * batch message is detached from the parsed body; nothing is copied) or
 * the message event_from_json was given (taken, not copied). ev->text, what
 * gets stored, is written from it once: a body's message that normalization
 * only added members to (the usual case: receivedAt) is copied from the body
 * and the added members printed after; otherwise the message is printed,
 * with the objects and arrays normalization did not touch (properties, and
 * context when the batch has none) copied from the body (json_parse_spans).
 * A body's events, their texts and the array of a batch's events live in
 * the body's arena: a request makes a few large allocations, not several an
 * event. */
#include "event/event.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

static const struct {
    const char *name;
    const char *short_name;
} type_names[BSP_EV_TYPE_COUNT] = {
    [BSP_EV_TRACK] = {"track", "t"}, [BSP_EV_IDENTIFY] = {"identify", "i"},
    [BSP_EV_PAGE] = {"page", "p"},   [BSP_EV_SCREEN] = {"screen", "s"},
    [BSP_EV_GROUP] = {"group", "g"}, [BSP_EV_ALIAS] = {"alias", "a"},
};

bool event_type_from_string(const char *s, bsp_event_type *out) {
    if (!s) return false;
    for (int t = 0; t < BSP_EV_TYPE_COUNT; t++) {
        if (strcmp(s, type_names[t].name) == 0 || strcmp(s, type_names[t].short_name) == 0) {
            *out = (bsp_event_type)t;
            return true;
        }
    }
    return false;
}

const char *event_type_name(bsp_event_type t) {
    if ((int)t < 0 || t >= BSP_EV_TYPE_COUNT) return "unknown";
    return type_names[t].name;
}

/* ---- the fields of a message, found in one pass ------------------------- */

/* The members Bespoke reads. When a key repeats, the first one counts, as
 * with cJSON_GetObjectItem. */
typedef struct msg_fields {
    cJSON *type, *message_id, *user_id, *anonymous_id, *previous_id, *group_id;
    cJSON *event, *name, *timestamp, *original_timestamp, *received_at;
    cJSON *traits, *context, *properties, *integrations, *write_key;
} msg_fields;

/* The slot of f a member named key goes to, or NULL for any other member:
 * picked by the first letter, so each member costs at most three string
 * comparisons (every message passes here three times). */
static cJSON **field_slot(msg_fields *f, const char *key) {
    switch (key[0]) {
    case 't':
        if (strcmp(key, "type") == 0) return &f->type;
        if (strcmp(key, "timestamp") == 0) return &f->timestamp;
        return strcmp(key, "traits") == 0 ? &f->traits : NULL;
    case 'p':
        if (strcmp(key, "properties") == 0) return &f->properties;
        return strcmp(key, "previousId") == 0 ? &f->previous_id : NULL;
    case 'm':
        return strcmp(key, "messageId") == 0 ? &f->message_id : NULL;
    case 'u':
        return strcmp(key, "userId") == 0 ? &f->user_id : NULL;
    case 'a':
        return strcmp(key, "anonymousId") == 0 ? &f->anonymous_id : NULL;
    case 'g':
        return strcmp(key, "groupId") == 0 ? &f->group_id : NULL;
    case 'e':
        return strcmp(key, "event") == 0 ? &f->event : NULL;
    case 'n':
        return strcmp(key, "name") == 0 ? &f->name : NULL;
    case 'o':
        return strcmp(key, "originalTimestamp") == 0 ? &f->original_timestamp : NULL;
    case 'r':
        return strcmp(key, "receivedAt") == 0 ? &f->received_at : NULL;
    case 'c':
        return strcmp(key, "context") == 0 ? &f->context : NULL;
    case 'i':
        return strcmp(key, "integrations") == 0 ? &f->integrations : NULL;
    case 'w':
        return strcmp(key, "writeKey") == 0 ? &f->write_key : NULL;
    default:
        return NULL;
    }
}

/* obj is only read here; the pointers are non-const so that normalize_copy
 * can use the same struct on its own copy. The first of repeated members
 * counts, as json_member finds it. */
static void collect_fields(const cJSON *obj, msg_fields *f) {
    memset(f, 0, sizeof *f);
    for (cJSON *it = obj->child; it; it = it->next) {
        cJSON **slot = it->string ? field_slot(f, it->string) : NULL;
        if (slot && !*slot) *slot = it;
    }
}

/* ---- validation of the borrowed message --------------------------------- */

/* "prefix.field", or "field" when the prefix is empty. */
static void at_join(char *out, size_t cap, const char *prefix, const char *field) {
    snprintf(out, cap, "%s%s%s", prefix, *prefix && *field ? "." : "", field);
}

static bsp_err field_error(bsp_error *err, bsp_err code, const char *prefix, const char *field,
                           const char *message) {
    char at[sizeof err->at];
    at_join(at, sizeof at, prefix, field);
    return bsp_error_set(err, code, at, "%s", message);
}

static bool is_absent(const cJSON *v) {
    return !v || cJSON_IsNull(v);
}

/* An id is given when it is a non-empty string or a finite number; absent,
 * null and "" (RudderStack's anonymous userId) are not given. */
static bsp_err check_id(const cJSON *v, const char *field, const char *prefix, bool *given,
                        bsp_error *err) {
    *given = false;
    if (is_absent(v)) return BSP_OK;
    if (cJSON_IsNumber(v)) {
        if (!isfinite(v->valuedouble))
            return field_error(err, BSP_ETYPE, prefix, field, "id must be a finite number");
        *given = true;
        return BSP_OK;
    }
    if (!cJSON_IsString(v))
        return field_error(err, BSP_ETYPE, prefix, field, "id must be a string or a number");
    size_t len = strlen(v->valuestring);
    if (len > BSP_ID_MAX_BYTES)
        return field_error(err, BSP_ETYPE, prefix, field, "id is longer than 255 bytes");
    *given = len > 0;
    return BSP_OK;
}

static bsp_err check_object(const cJSON *v, const char *field, const char *prefix, bsp_error *err) {
    if (is_absent(v) || cJSON_IsObject(v)) return BSP_OK;
    char message[64];
    snprintf(message, sizeof message, "%s must be an object", field);
    return field_error(err, BSP_ETYPE, prefix, field, message);
}

/* An optional string of at most max bytes; required adds "and not empty". */
static bsp_err check_string(const cJSON *v, const char *field, size_t max, bool required,
                            const char *prefix, bsp_error *err) {
    char message[96];
    if (is_absent(v) || (cJSON_IsString(v) && !v->valuestring[0])) {
        if (!required) return BSP_OK;
        snprintf(message, sizeof message, "%s is required", field);
        return field_error(err, BSP_ETYPE, prefix, field, message);
    }
    if (!cJSON_IsString(v)) {
        snprintf(message, sizeof message, "%s must be a string", field);
        return field_error(err, BSP_ETYPE, prefix, field, message);
    }
    if (strlen(v->valuestring) > max) {
        snprintf(message, sizeof message, "%s is longer than %zu bytes", field, max);
        return field_error(err, BSP_ETYPE, prefix, field, message);
    }
    return BSP_OK;
}

static bsp_err resolve_type(const msg_fields *f, bsp_event_type forced, const char *prefix,
                            bsp_event_type *type, bsp_error *err) {
    if (forced < BSP_EV_TYPE_COUNT) {
        *type = forced;
        return BSP_OK;
    }
    if (is_absent(f->type)) return field_error(err, BSP_ETYPE, prefix, "type", "type is required");
    if (!cJSON_IsString(f->type))
        return field_error(err, BSP_ETYPE, prefix, "type", "type must be a string");
    if (!event_type_from_string(f->type->valuestring, type))
        return field_error(err, BSP_ETYPE, prefix, "type",
                           "type must be track, identify, page, screen, group or alias");
    return BSP_OK;
}

static bsp_err check_ids(const msg_fields *f, bsp_event_type type, const char *prefix,
                         bsp_error *err) {
    bool has_user, has_anon, has_prev, has_group;
    if (check_id(f->user_id, "userId", prefix, &has_user, err) ||
        check_id(f->anonymous_id, "anonymousId", prefix, &has_anon, err) ||
        check_id(f->previous_id, "previousId", prefix, &has_prev, err) ||
        check_id(f->group_id, "groupId", prefix, &has_group, err))
        return err->code;
    if (!has_user && !has_anon)
        return field_error(err, BSP_ETYPE, prefix, "userId", "userId or anonymousId is required");
    if (type == BSP_EV_ALIAS && !has_prev)
        return field_error(err, BSP_ETYPE, prefix, "previousId", "alias needs previousId");
    if (type == BSP_EV_ALIAS && !has_user)
        return field_error(err, BSP_ETYPE, prefix, "userId", "alias needs userId");
    if (type == BSP_EV_GROUP && !has_group)
        return field_error(err, BSP_ETYPE, prefix, "groupId", "group needs groupId");
    return BSP_OK;
}

/* A message id is optional ("" counts as absent); when given, a string. */
static bsp_err check_message_id(const cJSON *v, const char *prefix, bsp_error *err) {
    return check_string(v, "messageId", BSP_ID_MAX_BYTES, false, prefix, err);
}

static bsp_err check_objects(const msg_fields *f, const char *prefix, bsp_error *err) {
    if (check_object(f->traits, "traits", prefix, err) ||
        check_object(f->context, "context", prefix, err) ||
        check_object(f->properties, "properties", prefix, err) ||
        check_object(f->integrations, "integrations", prefix, err))
        return err->code;
    return BSP_OK;
}

static bsp_err check_names(const msg_fields *f, bsp_event_type type, const char *prefix,
                           bsp_error *err) {
    if (type == BSP_EV_TRACK)
        return check_string(f->event, "event", BSP_NAME_MAX_BYTES, true, prefix, err);
    if (type == BSP_EV_PAGE || type == BSP_EV_SCREEN)
        return check_string(f->name, "name", BSP_NAME_MAX_BYTES, false, prefix, err);
    return BSP_OK;
}

/* The event time: timestamp, else originalTimestamp, else received_ms. */
static bsp_err event_time(const msg_fields *f, int64_t received_ms, const char *prefix,
                          int64_t *ts_ms, bool *ts_given, bsp_error *err) {
    const cJSON *v = f->timestamp;
    const char *field = "timestamp";
    if (is_absent(v)) v = f->original_timestamp, field = "originalTimestamp";
    *ts_given = !is_absent(v);
    if (!*ts_given) {
        *ts_ms = received_ms;
        return BSP_OK;
    }
    char message[96];
    if (!cJSON_IsString(v) || !bsp_time_parse(v->valuestring, ts_ms)) {
        snprintf(message, sizeof message, "%s must be an ISO 8601 date string", field);
        return field_error(err, BSP_ETYPE, prefix, field, message);
    }
    return BSP_OK;
}

static bsp_err check_write_key(const cJSON *v, const char *prefix, bsp_error *err) {
    return check_string(v, "writeKey", BSP_WRITE_KEY_MAX_BYTES, false, prefix, err);
}

/* What a message is normalized with: what validation found (type, event
 * time) and what the body around it gives (receipt time, batch defaults). */
typedef struct norm_args {
    bsp_event_type type;
    int64_t ts_ms;
    bool ts_given;
    bool id_generated;
    int64_t received_ms;
    const cJSON *batch_ctx;
    const cJSON *batch_integrations;
    const char *prefix;
    const json_spans *spans; /* where the body's values sit in it, or NULL */
    bsp_buf *scratch;        /* with spans: where the text is written before the arena copy */
    const cJSON *changed[3]; /* the message's objects normalization merged into */
    /* What normalization did besides adding members after the sender's:
     * removed, replaced or changed one (a string in place, an object by a
     * merge). When it did not, the message's text is the body's. */
    bool edited;
    size_t added; /* members it added, all after the sender's */
} norm_args;

/* Checks msg without changing it; fills a->type and a->ts_ms. */
static bsp_err validate_message(const cJSON *msg, bsp_event_type forced, norm_args *a,
                                bsp_error *err) {
    const char *prefix = a->prefix;
    if (!cJSON_IsObject(msg))
        return bsp_error_set(err, BSP_ETYPE, prefix, "a message must be a JSON object");
    msg_fields f;
    collect_fields(msg, &f);
    if (resolve_type(&f, forced, prefix, &a->type, err) || check_ids(&f, a->type, prefix, err) ||
        check_message_id(f.message_id, prefix, err) || check_objects(&f, prefix, err) ||
        check_names(&f, a->type, prefix, err) || check_write_key(f.write_key, prefix, err) ||
        event_time(&f, a->received_ms, prefix, &a->ts_ms, &a->ts_given, err))
        return err->code;
    return BSP_OK;
}

/* ---- normalization in place --------------------------------------------- */

static void delete_item(cJSON *obj, cJSON *item, norm_args *a) {
    if (!item) return;
    cJSON_Delete(cJSON_DetachItemViaPointer(obj, item));
    a->edited = true;
}

/* Adds item (owned) as obj[key]; on failure item is freed. */
static bool add_owned(cJSON *obj, const char *key, cJSON *item) {
    if (item && cJSON_AddItemToObject(obj, key, item)) return true;
    cJSON_Delete(item);
    return false;
}

/* Makes item, obj's first member named key (NULL: adds one), the string
 * value; false on ENOMEM. */
static bool put_string(cJSON *obj, cJSON *item, const char *key, const char *value, norm_args *a) {
    if (cJSON_IsString(item) && !(item->type & cJSON_IsReference) && item->valuestring) {
        /* Already a string: its text is changed in place (no new node, no
         * search by name), or left when it is the same. */
        if (strcmp(item->valuestring, value) == 0) return true;
        size_t n = strlen(value) + 1;
        char *copy = cJSON_malloc(n);
        if (!copy) return false;
        memcpy(copy, value, n);
        cJSON_free(item->valuestring);
        item->valuestring = copy;
        a->edited = true;
        return true;
    }
    cJSON *s = cJSON_CreateString(value);
    if (!s) return false;
    /* By key, so the new item gets its name; item is the key's first match. */
    if (item) {
        a->edited = true;
        return cJSON_ReplaceItemInObjectCaseSensitive(obj, key, s);
    }
    a->added++;
    return add_owned(obj, key, s);
}

/* A number id as text: integers without a fraction, others round-tripping. */
static void number_text(double v, char *out, size_t cap) {
    if (fabs(v) < 9007199254740992.0 && v == floor(v)) {
        snprintf(out, cap, "%.0f", v);
        return;
    }
    snprintf(out, cap, "%.15g", v);
    if (strtod(out, NULL) != v) snprintf(out, cap, "%.17g", v);
}

/* Ids become strings; null and "" are removed. */
static bool normalize_id(cJSON *obj, cJSON *item, norm_args *a) {
    if (!item) return true;
    if (cJSON_IsNumber(item)) {
        char text[40];
        number_text(item->valuedouble, text, sizeof text);
        return put_string(obj, item, item->string, text, a);
    }
    if (cJSON_IsNull(item) || !item->valuestring[0]) delete_item(obj, item, a);
    return true;
}

static void delete_if_null(cJSON *obj, cJSON *item, norm_args *a) {
    if (item && cJSON_IsNull(item)) delete_item(obj, item, a);
}

/* Adds to dst what only src has, recursing where both hold objects: src's
 * values sit under dst's, dst wins. */
static bool merge_under(cJSON *dst, const cJSON *src) {
    for (const cJSON *it = src->child; it; it = it->next) {
        if (!it->string) continue;
        cJSON *cur = json_member(dst, it->string);
        if (cur) {
            if (cJSON_IsObject(cur) && cJSON_IsObject(it) && !merge_under(cur, it)) return false;
            continue;
        }
        if (!add_owned(dst, it->string, cJSON_Duplicate(it, true))) return false;
    }
    return true;
}

/* obj[key] (the item found, may be NULL) gets defaults under it. */
static bool merge_defaults(cJSON *obj, cJSON *item, const char *key, const cJSON *defaults,
                           norm_args *a) {
    if (!cJSON_IsObject(defaults)) return true;
    if (item) {
        a->edited = true;
        return merge_under(item, defaults);
    }
    a->added++;
    return add_owned(obj, key, cJSON_Duplicate(defaults, true));
}

static void remove_write_keys(cJSON *obj, norm_args *a) {
    cJSON *it = obj->child;
    while (it) {
        cJSON *next = it->next;
        if (it->string && strcmp(it->string, "writeKey") == 0) delete_item(obj, it, a);
        it = next;
    }
}

/* A message without messageId gets one; a->id_generated tells the writer
 * that no resend can carry it, so it needs no de-duplication. */
static bool put_message_id(cJSON *obj, cJSON *item, norm_args *a) {
    a->id_generated = false;
    if (cJSON_IsString(item) && item->valuestring[0]) return true;
    char id[4 + 32 + 1] = "bsp-";
    bsp_unique_hex(id + 4);
    a->id_generated = true;
    return put_string(obj, item, "messageId", id, a);
}

static bool put_time(cJSON *obj, cJSON *item, const char *key, int64_t ms, norm_args *a) {
    char iso[40];
    bsp_time_format(ms, iso, sizeof iso);
    return put_string(obj, item, key, iso, a);
}

/* receivedAt is the same for every message of a body and for the bodies of
 * one millisecond: formatted once per thread and millisecond. */
static bool put_received_at(cJSON *obj, cJSON *item, int64_t ms, norm_args *a) {
    static _Thread_local int64_t cached_ms = INT64_MIN;
    static _Thread_local char cached_iso[40];
    if (ms != cached_ms) {
        bsp_time_format(ms, cached_iso, sizeof cached_iso);
        cached_ms = ms;
    }
    return put_string(obj, item, "receivedAt", cached_iso, a);
}

/* Rewrites a validated message in place; false only when memory runs out. */
static bool normalize_in_place(cJSON *j, norm_args *a) {
    bsp_event_type type = a->type;
    msg_fields f;
    remove_write_keys(j, a);
    collect_fields(j, &f);
    delete_if_null(j, f.traits, a);
    delete_if_null(j, f.context, a);
    delete_if_null(j, f.properties, a);
    delete_if_null(j, f.integrations, a);
    if (!put_string(j, f.type, "type", event_type_name(type), a) ||
        !normalize_id(j, f.user_id, a) || !normalize_id(j, f.anonymous_id, a) ||
        !normalize_id(j, f.previous_id, a) || !normalize_id(j, f.group_id, a) ||
        !put_message_id(j, f.message_id, a) ||
        !put_time(j, f.timestamp, "timestamp", a->ts_ms, a) ||
        !put_received_at(j, f.received_at, a->received_ms, a))
        return false;
    cJSON *context = json_get_object(j, "context");
    cJSON *integrations = json_get_object(j, "integrations");
    if (cJSON_IsObject(a->batch_ctx)) a->changed[0] = context;
    if (cJSON_IsObject(a->batch_integrations)) a->changed[1] = integrations;
    if (!merge_defaults(j, context, "context", a->batch_ctx, a) ||
        !merge_defaults(j, integrations, "integrations", a->batch_integrations, a))
        return false;
    if (type != BSP_EV_IDENTIFY) return true;
    /* RudderStack sends identify traits in context.traits. */
    cJSON *traits = json_get_object(j, "traits");
    const cJSON *context_traits = json_path(j, "context.traits");
    if (cJSON_IsObject(context_traits)) a->changed[2] = traits;
    return merge_defaults(j, traits, "traits", context_traits, a);
}

/* Whether normalization merged anything into member m. */
static bool member_changed(const cJSON *m, const norm_args *a) {
    return m == a->changed[0] || m == a->changed[1] || m == a->changed[2];
}

/* Member m: its name, and its value copied from the body when it is an
 * object or array normalization merged nothing into, else printed. */
static bsp_err write_member(bsp_buf *out, const cJSON *m, const norm_args *a) {
    const char *raw;
    size_t raw_len;
    bsp_err rc = json_write_string(out, m->string ? m->string : "");
    if (!rc) rc = bsp_buf_append(out, ":", 1);
    if (rc) return rc;
    if ((m->type & (cJSON_Object | cJSON_Array)) && !member_changed(m, a) &&
        json_span_text(a->spans, m, &raw, &raw_len))
        return bsp_buf_append(out, raw, raw_len);
    return json_write(out, m);
}

/* The message as sent, when normalization only added members after its
 * own (a->edited false): its text up to the closing brace, then the added
 * members. false when the body's text of it is not kept (out untouched). */
static bool write_as_sent(bsp_buf *out, const cJSON *j, const norm_args *a, bsp_err *rc) {
    const char *raw;
    size_t raw_len;
    if (a->edited || !json_span_text(a->spans, j, &raw, &raw_len)) return false;
    size_t members = 0;
    const cJSON *m = j->child;
    for (; m; m = m->next)
        members++;
    /* The sender's members come first; skip them. */
    bool any = members > a->added;
    m = j->child;
    for (size_t i = a->added; i < members; i++)
        m = m->next;
    *rc = bsp_buf_append(out, raw, raw_len - 1); /* without '}' */
    for (; m && !*rc; m = m->next, any = true) {
        if (any) *rc = bsp_buf_append(out, ",", 1);
        if (!*rc) *rc = write_member(out, m, a);
    }
    if (!*rc) *rc = bsp_buf_append(out, "}", 1);
    return true;
}

/* The event's text. A message normalization only added to (the usual case:
 * receivedAt) is its text in the body and the added members. Otherwise
 * j's members in order, each object or array that normalization left as it
 * came copied from the body as the sender wrote it (json_span_text keeps
 * only strict JSON), the rest printed. The value is json_write(j)'s;
 * properties and context, most of an event's bytes, are then copies
 * instead of walks over their trees. */
static bsp_err write_event_text(bsp_buf *out, const cJSON *j, const norm_args *a) {
    if (!a->spans) return json_write(out, j);
    bsp_err rc = BSP_OK;
    if (write_as_sent(out, j, a, &rc)) return rc;
    char sep = '{';
    for (const cJSON *m = j->child; m && !rc; m = m->next, sep = ',') {
        rc = bsp_buf_append(out, &sep, 1);
        if (!rc) rc = write_member(out, m, a);
    }
    if (rc) return rc;
    return bsp_buf_append(out, j->child ? "}" : "{}", j->child ? 1 : 2);
}

static const char *string_in(const cJSON *v) {
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *object_in(const cJSON *v) {
    return cJSON_IsObject(v) ? v : NULL;
}

/* The context's members that applying reads, in one walk over them, on the
 * thread that just built the tree (the writer would walk it cold). */
static void context_parts_of(const cJSON *context, bsp_event_context *out) {
    static const char *const keys[] = {"traits", "location", "device", "consent", "userAgent"};
    const cJSON *found[sizeof keys / sizeof keys[0]] = {0};
    if (context) json_members(context, keys, sizeof keys / sizeof keys[0], found);
    *out = (bsp_event_context){.traits = object_in(found[0]),
                               .location = object_in(found[1]),
                               .device = object_in(found[2]),
                               .consent = object_in(found[3]),
                               .user_agent = string_in(found[4])};
}

void event_point_into_json(bsp_event *ev) {
    msg_fields f;
    if (ev->json)
        collect_fields(ev->json, &f); /* one walk over the members for all of them */
    else
        memset(&f, 0, sizeof f);
    ev->message_id = string_in(f.message_id);
    ev->user_id = string_in(f.user_id);
    ev->anonymous_id = string_in(f.anonymous_id);
    ev->previous_id = ev->type == BSP_EV_ALIAS ? string_in(f.previous_id) : NULL;
    if (ev->type == BSP_EV_TRACK)
        ev->name = string_in(f.event);
    else if (ev->type == BSP_EV_PAGE || ev->type == BSP_EV_SCREEN)
        ev->name = string_in(f.name);
    else
        ev->name = NULL;
    ev->context = object_in(f.context);
    ev->properties = object_in(f.properties);
    ev->traits = object_in(f.traits);
    context_parts_of(ev->context, &ev->context_parts);
}

/* The event's text, written by write_event_text: with spans (so in an
 * arena) into the caller's scratch buffer and then copied to the arena at
 * its size, a pointer bump instead of a malloc an event; else into a
 * malloc'd buffer of its own. NULL when memory runs out. */
static char *event_text(const cJSON *j, const norm_args *a, size_t *len, bool *in_arena) {
    *in_arena = a->spans && a->scratch;
    if (*in_arena) {
        a->scratch->len = 0;
        if (write_event_text(a->scratch, j, a) != BSP_OK) return NULL;
        char *text = cJSON_malloc(a->scratch->len + 1);
        if (!text) return NULL;
        memcpy(text, a->scratch->data, a->scratch->len + 1);
        *len = a->scratch->len;
        return text;
    }
    /* One allocation for a typical event (cJSON's printer doubles from 256
     * bytes); the buffer becomes ev->text. */
    bsp_buf printed = {0};
    if (bsp_buf_reserve(&printed, 1024) == BSP_OK && write_event_text(&printed, j, a) == BSP_OK) {
        *len = printed.len;
        return printed.data;
    }
    bsp_buf_free(&printed);
    return NULL;
}

/* Turns a validated message into *out, taking ownership of j (kept in the
 * event, or freed on error). */
static bsp_err finish_event(cJSON *j, norm_args *a, bsp_event *out, bsp_error *err) {
    size_t text_len = 0;
    bool in_arena = false;
    char *text = normalize_in_place(j, a) ? event_text(j, a, &text_len, &in_arena) : NULL;
    if (!text) {
        cJSON_Delete(j);
        return bsp_error_set(err, BSP_ENOMEM, a->prefix, "out of memory");
    }
    if (text_len > BSP_EVENT_MAX_BYTES) {
        if (!in_arena) free(text);
        cJSON_Delete(j);
        return bsp_error_set(err, BSP_ETOOBIG, a->prefix,
                             "event is %zu bytes, over the limit of %d", text_len,
                             BSP_EVENT_MAX_BYTES);
    }
    *out = (bsp_event){.type = a->type,
                       .ts_ms = a->ts_ms,
                       .ts_given = a->ts_given,
                       .id_generated = a->id_generated,
                       .json = j,
                       .text = text,
                       .text_len = text_len,
                       .text_in_arena = in_arena};
    event_point_into_json(out);
    return BSP_OK;
}

/* event_from_json, with the spans of the text msg was parsed from. */
static bsp_err event_from_parsed(cJSON *msg, bsp_event_type forced_type, const cJSON *batch_ctx,
                                 const cJSON *batch_integrations, int64_t received_ms,
                                 const char *at_prefix, const json_spans *spans, bsp_event *out,
                                 bsp_error *err) {
    bsp_error scratch;
    if (!err) err = &scratch;
    memset(out, 0, sizeof *out);
    norm_args a = {.received_ms = received_ms,
                   .batch_ctx = batch_ctx,
                   .batch_integrations = batch_integrations,
                   .prefix = at_prefix ? at_prefix : "",
                   .spans = spans};
    if (!msg) return bsp_error_set(err, BSP_EINVAL, a.prefix, "no message");
    if (validate_message(msg, forced_type, &a, err)) {
        cJSON_Delete(msg);
        return err->code;
    }
    return finish_event(msg, &a, out, err);
}

bsp_err event_from_json(cJSON *msg, bsp_event_type forced_type, const cJSON *batch_ctx,
                        const cJSON *batch_integrations, int64_t received_ms, const char *at_prefix,
                        bsp_event *out, bsp_error *err) {
    return event_from_parsed(msg, forced_type, batch_ctx, batch_integrations, received_ms,
                             at_prefix, NULL, out, err);
}

bsp_err event_from_text(const char *text, size_t len, json_spans *spans, int64_t received_ms,
                        bsp_event *out, bsp_error *err) {
    bsp_error scratch;
    if (!err) err = &scratch;
    memset(out, 0, sizeof *out);
    bsp_error_clear(err);
    cJSON *msg = json_parse_spans(text, len, BSP_JSON_MAX_DEPTH, spans, err);
    if (!msg) return err->code ? err->code : BSP_EPARSE;
    return event_from_parsed(msg, BSP_EV_TYPE_COUNT, NULL, NULL, received_ms, "", spans, out, err);
}

void event_free(bsp_event *ev) {
    if (!ev) return;
    if (!ev->json_in_arena) cJSON_Delete(ev->json);
    if (!ev->text_in_arena) free(ev->text);
    free(ev->packed);
    if (ev->frame_owner) {
        free(ev->frame->bytes);
        free(ev->frame);
    }
    memset(ev, 0, sizeof *ev);
}

/* ---- whole bodies -------------------------------------------------------- */

void event_list_free(bsp_event_list *list) {
    if (!list) return;
    for (size_t i = 0; i < list->count; i++)
        event_free(&list->items[i]);
    if (!list->items_in_arena) free(list->items);
    free(list->rejects);
    json_arena_free(list->arena);
    memset(list, 0, sizeof *list);
}

/* Copies v into the list's write key if it is a usable string and none was
 * found before. */
static void take_write_key(bsp_event_list *list, const cJSON *v) {
    if (list->write_key[0] || !cJSON_IsString(v)) return;
    size_t len = strlen(v->valuestring);
    if (len == 0 || len > BSP_WRITE_KEY_MAX_BYTES) return;
    memcpy(list->write_key, v->valuestring, len + 1);
}

/* The rejects array grows geometrically: its capacity is 4, 8, 16, ...
 * whenever count reaches 4 or a larger power of two. */
static bsp_err add_reject(bsp_event_list *list, size_t index, const bsp_error *e) {
    size_t n = list->reject_count;
    if (n == 0 || (n >= 4 && (n & (n - 1)) == 0)) {
        size_t cap = n == 0 ? 4 : n * 2;
        bsp_event_reject *grown = realloc(list->rejects, cap * sizeof *list->rejects);
        if (!grown) return BSP_ENOMEM;
        list->rejects = grown;
    }
    list->rejects[list->reject_count++] = (bsp_event_reject){.index = index, .error = *e};
    return BSP_OK;
}

/* One message, the whole body. The body's tree becomes the event's (no
 * copy): *root is taken when the message is valid. */
static bsp_err parse_single(cJSON **root, bsp_event_type type, int64_t received_ms,
                            const json_spans *spans, bsp_buf *scratch, bsp_event_list *out,
                            bsp_error *err) {
    if (!cJSON_IsObject(*root))
        return bsp_error_set(err, BSP_EINVAL, "", "the body must be a JSON object (one message)");
    take_write_key(out, json_member(*root, "writeKey"));
    norm_args a = {.received_ms = received_ms, .prefix = "", .spans = spans, .scratch = scratch};
    if (validate_message(*root, type, &a, err)) return err->code;
    out->items = calloc(1, sizeof *out->items);
    if (!out->items) return bsp_error_set(err, BSP_ENOMEM, "", "out of memory");
    cJSON *msg = *root;
    *root = NULL;
    if (finish_event(msg, &a, &out->items[0], err)) return err->code;
    out->count = 1;
    return BSP_OK;
}

/* The batch envelope: the messages, the batch-level context and
 * integrations, and the name errors use for the array ("batch" or ""). */
typedef struct batch_envelope {
    cJSON *messages;
    const cJSON *context;
    const cJSON *integrations;
    const char *array_name;
} batch_envelope;

static bsp_err open_envelope(cJSON *root, batch_envelope *env, bsp_event_list *out,
                             bsp_error *err) {
    memset(env, 0, sizeof *env);
    if (cJSON_IsArray(root)) {
        env->messages = root;
        env->array_name = "";
        return BSP_OK;
    }
    if (!cJSON_IsObject(root))
        return bsp_error_set(err, BSP_EINVAL, "",
                             "a batch body must be {\"batch\": [...]} or an array of messages");
    const cJSON *write_key = json_member(root, "writeKey");
    if (check_write_key(write_key, "", err)) return err->code;
    take_write_key(out, write_key);
    env->messages = json_member(root, "batch");
    env->context = json_member(root, "context");
    env->integrations = json_member(root, "integrations");
    env->array_name = "batch";
    if (!env->messages)
        return bsp_error_set(err, BSP_EINVAL, "batch", "a batch body needs a \"batch\" array");
    if (!cJSON_IsArray(env->messages))
        return bsp_error_set(err, BSP_ETYPE, "batch", "batch must be an array");
    if (check_object(env->context, "context", "", err) ||
        check_object(env->integrations, "integrations", "", err))
        return err->code;
    return BSP_OK;
}

/* "batch[12]" (or "[12]") into out, which has room for 48 bytes: what
 * snprintf would write, without its cost for every message of a batch. */
static void index_prefix(char out[48], const char *array_name, size_t index) {
    char digits[24];
    char *d = digits + sizeof digits;
    do {
        *--d = (char)('0' + index % 10);
        index /= 10;
    } while (index);
    size_t name_len = strlen(array_name), n = (size_t)(digits + sizeof digits - d);
    memcpy(out, array_name, name_len);
    out[name_len] = '[';
    memcpy(out + name_len + 1, d, n);
    memcpy(out + name_len + 1 + n, "]", 2);
}

/* Validates one message of a batch; a valid one is detached from the body
 * and becomes the next event (no copy), an invalid one a reject. Fails only
 * when memory runs out. */
static bsp_err add_batch_message(const batch_envelope *env, cJSON *msg, size_t index,
                                 int64_t received_ms, const json_spans *spans, bsp_buf *scratch,
                                 bsp_event_list *out) {
    if (cJSON_IsObject(msg)) take_write_key(out, json_member(msg, "writeKey"));
    char prefix[48];
    index_prefix(prefix, env->array_name, index);
    norm_args a = {.received_ms = received_ms,
                   .batch_ctx = env->context,
                   .batch_integrations = env->integrations,
                   .prefix = prefix,
                   .spans = spans,
                   .scratch = scratch};
    bsp_error e;
    bsp_error_clear(&e);
    if (validate_message(msg, BSP_EV_TYPE_COUNT, &a, &e) == BSP_OK) {
        cJSON_DetachItemViaPointer(env->messages, msg);
        if (finish_event(msg, &a, &out->items[out->count], &e) == BSP_OK) {
            out->count++;
            return BSP_OK;
        }
    }
    if (e.code == BSP_ENOMEM) return BSP_ENOMEM;
    return add_reject(out, index, &e);
}

static bsp_err parse_batch(cJSON *root, int64_t received_ms, const json_spans *spans,
                           bsp_buf *scratch, bsp_event_list *out, bsp_error *err) {
    batch_envelope env;
    if (open_envelope(root, &env, out, err)) return err->code;
    size_t n = (size_t)cJSON_GetArraySize(env.messages);
    if (n > BSP_BATCH_MAX_EVENTS)
        return bsp_error_set(err, BSP_ETOOBIG, env.array_name,
                             "batch has %zu messages, over the limit of %d", n,
                             BSP_BATCH_MAX_EVENTS);
    if (n == 0) return BSP_OK;
    /* In the body's arena when there is one (entered: cJSON_malloc takes
     * from it): a hundred events' structs are a large allocation. */
    out->items_in_arena = out->arena != NULL;
    out->items =
        out->items_in_arena ? cJSON_malloc(n * sizeof *out->items) : malloc(n * sizeof *out->items);
    if (!out->items) return bsp_error_set(err, BSP_ENOMEM, "", "out of memory");
    memset(out->items, 0, n * sizeof *out->items);
    size_t index = 0;
    for (cJSON *msg = env.messages->child, *next; msg; msg = next, index++) {
        next = msg->next;
        if (add_batch_message(&env, msg, index, received_ms, spans, scratch, out))
            return bsp_error_set(err, BSP_ENOMEM, "", "out of memory");
    }
    if (out->count == 0) {
        *err = out->rejects[0].error;
        return err->code;
    }
    return BSP_OK;
}

/* Each thread keeps its span table from body to body (freed when the
 * thread ends): a table for a batch of a hundred events is a large
 * allocation, and a new one each body had its pages faulted in each time,
 * which cost more than the copies it saves. */
static pthread_key_t spans_key;
static pthread_once_t spans_once = PTHREAD_ONCE_INIT;
static bool spans_key_made;

static void spans_drop(void *spans) {
    json_spans_free(spans);
}

static void spans_key_make(void) {
    spans_key_made = pthread_key_create(&spans_key, spans_drop) == 0;
}

/* The calling thread's table, or NULL when memory runs out. */
static json_spans *thread_spans(size_t expect) {
    pthread_once(&spans_once, spans_key_make);
    if (!spans_key_made) return NULL;
    json_spans *s = pthread_getspecific(spans_key);
    if (s) return s;
    if (!(s = json_spans_new(expect))) return NULL;
    if (pthread_setspecific(spans_key, s) != 0) {
        json_spans_free(s);
        return NULL;
    }
    return s;
}

/* The body into out while the caller's arena is entered: everything freed
 * here on the way (the envelope, a failed batch's events) is freed inside
 * it. */
static bsp_err parse_in_arena(const char *body, size_t len, bsp_event_type route_type,
                              int64_t received_ms, bsp_event_list *out, bsp_error *err) {
    /* Spans only with an arena, which never hands out a freed node's
     * address again; without them (or their memory) events are printed. */
    json_spans *spans = out->arena ? thread_spans(len / 32) : NULL;
    cJSON *root = json_parse_spans(body, len, BSP_JSON_MAX_DEPTH, spans, err);
    if (!root) return err->code;
    bsp_buf scratch = {0}; /* the texts are written here, then copied to the arena */
    bsp_err rc = route_type < BSP_EV_TYPE_COUNT
                     ? parse_single(&root, route_type, received_ms, spans, &scratch, out, err)
                     : parse_batch(root, received_ms, spans, &scratch, out, err);
    bsp_buf_free(&scratch);
    cJSON_Delete(root);
    if (rc) {
        /* Keep the write key and the rejects for the caller's answer. */
        for (size_t i = 0; i < out->count; i++)
            event_free(&out->items[i]);
        if (!out->items_in_arena) free(out->items);
        out->items = NULL;
        out->count = 0;
    }
    return rc;
}

bsp_err event_parse_body(const char *body, size_t len, bsp_event_type route_type,
                         int64_t received_ms, bsp_event_list *out, bsp_error *err) {
    bsp_error scratch;
    if (!err) err = &scratch;
    memset(out, 0, sizeof *out);
    bsp_error_clear(err);
    if (len > BSP_REQUEST_MAX_BYTES)
        return bsp_error_set(err, BSP_ETOOBIG, "", "body is %zu bytes, over the limit of %d", len,
                             BSP_REQUEST_MAX_BYTES);
    if (!body && len) return bsp_error_set(err, BSP_EINVAL, "", "no body");
    /* Without an arena (out of memory) the trees are malloc'd as usual. */
    /* The trees take about 4.3 times the text (a simulated batch of 56 KB:
     * 242 KB) and the events' texts about as much as the body, so one chunk
     * usually holds them all. */
    out->arena = json_arena_new(len * 6);
    json_arena *outer = json_arena_enter(out->arena);
    bsp_err rc = parse_in_arena(body ? body : "", len, route_type, received_ms, out, err);
    json_arena_leave(outer);
    for (size_t i = 0; i < out->count; i++)
        out->items[i].json_in_arena = out->arena != NULL;
    return rc;
}
