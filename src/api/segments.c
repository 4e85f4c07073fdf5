/* segments.c - the admin API of segments: create, replace, read (with
 * size), delete, preview an unsaved condition, and stream the members with
 * chosen traits as JSON lines or CSV for e-mail tools. The rules live in
 * src/segment/; this file is HTTP only. */
#include "api/api_internal.h"

#include <stdlib.h>
#include <string.h>

#include "json/json.h"

#define MEMBERS_CHUNK 512     /* members read per refill of the stream */
#define MEMBERS_TRAITS_MAX 32 /* traits= names */
#define MEMBERS_BLOCK 65536   /* MHD's read block */

static enum MHD_Result reply_err(api_req *req, bsp_err rc, const bsp_error *err) {
    if (err->code != BSP_OK) return api_reply_error(req, err);
    return api_reply_errorf(req, rc, "", "%s", bsp_err_name(rc));
}

static bsp_err parse_body(api_req *req, cJSON **out, bsp_error *err) {
    *out = json_parse(req->body.data ? req->body.data : "", req->body.len, BSP_JSON_MAX_DEPTH, err);
    return *out ? BSP_OK : err->code;
}

/* --- definitions ------------------------------------------------------------------- */

static enum MHD_Result segment_write(api_req *req, bool create) {
    bsp_error err;
    bsp_error_clear(&err);
    cJSON *body;
    if (parse_body(req, &body, &err)) return api_reply_error(req, &err);
    cJSON *out = NULL;
    bsp_err rc = BSP_EUNAVAIL;
    if (api_ingest_acquire(req->srv)) {
        rc = segments_put(req->srv->segments, body, create ? NULL : req->id, create, &out, &err);
        api_ingest_release(req->srv);
    }
    cJSON_Delete(body);
    if (rc) return reply_err(req, rc, &err);
    enum MHD_Result ret = admin_reply_json(req, create ? 201 : 200, out);
    cJSON_Delete(out);
    return ret;
}

static enum MHD_Result segment_delete(api_req *req) {
    bsp_error err;
    bsp_error_clear(&err);
    bsp_err rc = BSP_EUNAVAIL;
    if (api_ingest_acquire(req->srv)) {
        rc = segments_delete(req->srv->segments, req->id, &err);
        api_ingest_release(req->srv);
    }
    if (rc) return reply_err(req, rc, &err);
    bsp_buf out = {0};
    bsp_buf_puts(&out, "{\"deleted\":");
    json_write_string(&out, req->id);
    bsp_buf_puts(&out, "}");
    return api_reply_buf(req, 200, &out);
}

static enum MHD_Result segment_get(api_req *req) {
    bsp_txn *txn;
    bsp_err rc = admin_read_begin(req, &txn);
    if (rc) return api_reply_errorf(req, rc, "", "store error (%s)", bsp_err_name(rc));
    cJSON *out = NULL;
    rc = segments_get(req->srv->segments, txn, req->id, &out);
    store_txn_abort(txn);
    if (rc == BSP_ENOTFOUND) return api_reply_errorf(req, rc, "id", "no such segment");
    if (rc) return api_reply_errorf(req, rc, "", "%s", bsp_err_name(rc));
    enum MHD_Result ret = admin_reply_json(req, 200, out);
    cJSON_Delete(out);
    return ret;
}

static enum MHD_Result segments_list_reply(api_req *req) {
    bsp_txn *txn;
    bsp_err rc = admin_read_begin(req, &txn);
    if (rc) return api_reply_errorf(req, rc, "", "store error (%s)", bsp_err_name(rc));
    cJSON *list = segments_list(req->srv->segments, txn);
    store_txn_abort(txn);
    cJSON *out = cJSON_CreateObject();
    if (!list || !out || !cJSON_AddItemToObject(out, "segments", list)) {
        cJSON_Delete(list);
        cJSON_Delete(out);
        return api_reply_errorf(req, BSP_ENOMEM, "", "out of memory");
    }
    enum MHD_Result ret = admin_reply_json(req, 200, out);
    cJSON_Delete(out);
    return ret;
}

static enum MHD_Result segment_preview(api_req *req) {
    bsp_error err;
    bsp_error_clear(&err);
    cJSON *body;
    if (parse_body(req, &body, &err)) return api_reply_error(req, &err);
    const cJSON *cond = json_member(body, "condition");
    if (!cJSON_IsString(cond)) {
        cJSON_Delete(body);
        return api_reply_errorf(req, BSP_ETYPE, "condition", "must be a string");
    }
    bsp_txn *txn;
    bsp_err rc = admin_read_begin(req, &txn);
    cJSON *out = NULL;
    if (!rc) {
        rc = segments_preview(req->srv->segments, txn, cond->valuestring, &out, &err);
        store_txn_abort(txn);
    }
    cJSON_Delete(body);
    if (rc) return reply_err(req, rc, &err);
    enum MHD_Result ret = admin_reply_json(req, 200, out);
    cJSON_Delete(out);
    return ret;
}

/* --- members: a streamed response ---------------------------------------------------- */

typedef struct members_stream {
    bsp_store *store;
    char segment[SEGMENT_ID_MAX + 1];
    bool csv;
    char *traits[MEMBERS_TRAITS_MAX]; /* NULL-terminated; empty: all traits (JSON lines) */
    size_t ntraits;
    uint64_t after; /* the last pid written */
    bool done;
    bsp_buf pending; /* formatted, not yet handed to MHD */
    size_t sent;     /* bytes of pending already handed over */
    uint64_t pids[MEMBERS_CHUNK];
    size_t npids;
} members_stream;

static void stream_free(void *cls) {
    members_stream *ms = cls;
    for (size_t i = 0; i < ms->ntraits; i++)
        free(ms->traits[i]);
    bsp_buf_free(&ms->pending);
    free(ms);
}

static bsp_err collect_member(void *ctx, uint64_t pid) {
    members_stream *ms = ctx;
    ms->pids[ms->npids++] = pid;
    return ms->npids == MEMBERS_CHUNK ? BSP_EEXISTS : BSP_OK;
}

/* A CSV field: quoted when needed; a leading = + - @ is neutralized so a
 * spreadsheet does not run it as a formula. */
static void csv_field(bsp_buf *out, const char *s) {
    if (!s) return;
    bool formula = s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@';
    bool quote = formula || strpbrk(s, ",\"\r\n") != NULL;
    if (!quote) {
        bsp_buf_puts(out, s);
        return;
    }
    bsp_buf_puts(out, formula ? "\"'" : "\"");
    for (const char *p = s; *p; p++) {
        if (*p == '"') bsp_buf_puts(out, "\"");
        bsp_buf_append(out, p, 1);
    }
    bsp_buf_puts(out, "\"");
}

static const char *first_id(const bsp_profile *p, char kind) {
    return profile_id_count(p, kind) ? profile_id_at(p, kind, 0) : NULL;
}

static void csv_trait(bsp_buf *out, const cJSON *v) {
    if (cJSON_IsString(v)) {
        csv_field(out, v->valuestring);
    } else if (v && !cJSON_IsNull(v)) {
        bsp_buf text = {0};
        json_write(&text, v);
        if (text.data) csv_field(out, text.data);
        bsp_buf_free(&text);
    }
}

static void write_csv_row(members_stream *ms, const bsp_profile *p) {
    char pid[24];
    snprintf(pid, sizeof pid, "%llu", (unsigned long long)profile_pid(p));
    bsp_buf *out = &ms->pending;
    csv_field(out, pid);
    bsp_buf_puts(out, ",");
    csv_field(out, first_id(p, 'u'));
    bsp_buf_puts(out, ",");
    csv_field(out, first_id(p, 'a'));
    for (size_t i = 0; i < ms->ntraits; i++) {
        bsp_buf_puts(out, ",");
        csv_trait(out, json_path(profile_traits(p), ms->traits[i]));
    }
    bsp_buf_puts(out, "\r\n");
}

static void write_json_line(members_stream *ms, const bsp_profile *p) {
    bsp_buf *out = &ms->pending;
    bsp_buf_printf(out, "{\"profile_id\":\"%llu\",\"userId\":", (unsigned long long)profile_pid(p));
    const char *u = first_id(p, 'u'), *a = first_id(p, 'a');
    if (u)
        json_write_string(out, u);
    else
        bsp_buf_puts(out, "null");
    bsp_buf_puts(out, ",\"anonymousId\":");
    if (a)
        json_write_string(out, a);
    else
        bsp_buf_puts(out, "null");
    bsp_buf_puts(out, ",\"traits\":");
    const cJSON *traits = profile_traits(p);
    if (ms->ntraits == 0) {
        if (traits)
            json_write(out, traits);
        else
            bsp_buf_puts(out, "{}");
    } else {
        bsp_buf_puts(out, "{");
        for (size_t i = 0; i < ms->ntraits; i++) {
            if (i) bsp_buf_puts(out, ",");
            json_write_string(out, ms->traits[i]);
            bsp_buf_puts(out, ":");
            const cJSON *v = json_path(traits, ms->traits[i]);
            if (v)
                json_write(out, v);
            else
                bsp_buf_puts(out, "null");
        }
        bsp_buf_puts(out, "}");
    }
    bsp_buf_puts(out, "}\n");
}

/* Reads the next chunk of members and formats them into pending. */
static bsp_err stream_refill(members_stream *ms) {
    bsp_txn *txn;
    bsp_err rc = store_txn_begin(ms->store, false, &txn);
    if (rc) return rc;
    ms->npids = 0;
    rc = store_members_scan(txn, ms->segment, ms->after, collect_member, ms);
    if (rc == BSP_EEXISTS) rc = BSP_OK;
    for (size_t i = 0; !rc && i < ms->npids; i++) {
        bsp_slice raw;
        bsp_profile *p;
        if (store_profile_get(txn, ms->pids[i], &raw) != BSP_OK) continue;
        if (profile_from_json(raw.data, raw.len, &p) != BSP_OK) continue;
        if (ms->csv)
            write_csv_row(ms, p);
        else
            write_json_line(ms, p);
        profile_free(p);
    }
    store_txn_abort(txn);
    if (ms->npids) ms->after = ms->pids[ms->npids - 1];
    if (ms->npids < MEMBERS_CHUNK) ms->done = true;
    return rc;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    members_stream *ms = cls;
    while (ms->sent == ms->pending.len) {
        if (ms->done) return MHD_CONTENT_READER_END_OF_STREAM;
        bsp_buf_reset(&ms->pending);
        ms->sent = 0;
        if (stream_refill(ms) != BSP_OK) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = ms->pending.len - ms->sent;
    if (n > max) n = max;
    memcpy(buf, ms->pending.data + ms->sent, n);
    ms->sent += n;
    return (ssize_t)n;
}

/* traits=a,b.c: names of traits (dotted paths) to export. */
static bsp_err parse_traits(api_req *req, members_stream *ms, bsp_error *err) {
    char list[1024];
    enum api_query_result q = api_query(req, "traits", list, sizeof list);
    if (q == QUERY_TOO_LONG) return bsp_error_set(err, BSP_EINVAL, "traits", "too long");
    if (q == QUERY_ABSENT) {
        if (!ms->csv) return BSP_OK;
        snprintf(list, sizeof list, "email");
    }
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (!*tok) continue;
        if (ms->ntraits == MEMBERS_TRAITS_MAX)
            return bsp_error_set(err, BSP_EINVAL, "traits", "at most %d traits",
                                 MEMBERS_TRAITS_MAX);
        if (!(ms->traits[ms->ntraits++] = strdup(tok))) return BSP_ENOMEM;
    }
    return BSP_OK;
}

static bsp_err parse_format(api_req *req, members_stream *ms, bsp_error *err) {
    char format[16];
    enum api_query_result q = api_query(req, "format", format, sizeof format);
    if (q == QUERY_ABSENT || (q == QUERY_FOUND && strcmp(format, "jsonl") == 0)) return BSP_OK;
    if (q == QUERY_FOUND && strcmp(format, "csv") == 0) {
        ms->csv = true;
        return BSP_OK;
    }
    return bsp_error_set(err, BSP_EINVAL, "format", "format is jsonl or csv");
}

static void csv_header(members_stream *ms) {
    bsp_buf_puts(&ms->pending, "profile_id,userId,anonymousId");
    for (size_t i = 0; i < ms->ntraits; i++) {
        bsp_buf_puts(&ms->pending, ",");
        csv_field(&ms->pending, ms->traits[i]);
    }
    bsp_buf_puts(&ms->pending, "\r\n");
}

static enum MHD_Result segment_members(api_req *req) {
    if (!segments_exists(req->srv->segments, req->id))
        return api_reply_errorf(req, BSP_ENOTFOUND, "id", "no such segment");
    members_stream *ms = calloc(1, sizeof *ms);
    if (!ms) return api_reply_errorf(req, BSP_ENOMEM, "", "out of memory");
    ms->store = req->srv->store;
    snprintf(ms->segment, sizeof ms->segment, "%s", req->id);
    bsp_error err;
    bsp_error_clear(&err);
    bsp_err rc = parse_format(req, ms, &err);
    if (!rc) rc = parse_traits(req, ms, &err);
    bsp_txn *txn = NULL;
    if (!rc) rc = admin_read_begin(req, &txn); /* every acknowledged event counted */
    if (txn) store_txn_abort(txn);
    if (rc) {
        stream_free(ms);
        return reply_err(req, rc, &err);
    }
    if (ms->csv) csv_header(ms);
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, MEMBERS_BLOCK,
                                                                  stream_read, ms, stream_free);
    if (!resp) {
        stream_free(ms);
        return api_reply_errorf(req, BSP_ENOMEM, "", "out of memory");
    }
    return api_queue(req, 200, resp, ms->csv ? "text/csv; charset=utf-8" : "application/x-ndjson");
}

/* --- dispatch ------------------------------------------------------------------------------- */

enum MHD_Result segments_handle(api_req *req) {
    if (!req->srv->segments) return api_reply_errorf(req, BSP_EUNAVAIL, "", "segments not loaded");
    switch (req->route) {
    case ROUTE_ADMIN_SEGMENTS:
        return req->method == METHOD_POST ? segment_write(req, true) : segments_list_reply(req);
    case ROUTE_ADMIN_SEGMENTS_PREVIEW:
        return segment_preview(req);
    case ROUTE_ADMIN_SEGMENT_MEMBERS:
        return segment_members(req);
    case ROUTE_ADMIN_SEGMENT:
        if (req->method == METHOD_PUT) return segment_write(req, false);
        if (req->method == METHOD_DELETE) return segment_delete(req);
        return segment_get(req);
    default:
        return api_reply_errorf(req, BSP_ENOTFOUND, "", "no such endpoint");
    }
}
