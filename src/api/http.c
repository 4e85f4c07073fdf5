/* http.c - the access handler and everything generic about a request: its
 * state across libmicrohttpd's calls, body accumulation under a size limit,
 * Content-Encoding (gzip/deflate through zlib), CORS, JSON error bodies, and
 * queueing responses with the common headers.
 *
 * libmicrohttpd calls the handler several times per request: once when the
 * headers are in (we only look at them), once per chunk of body, and once
 * at the end (we answer). An answer is never queued in the first call,
 * because 0.9.75 then closes the connection after it; the one exception is
 * a Content-Length over the limit, where closing is what we want. */
#include "api/api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "json/json.h"

static const char CORS_METHODS[] = "GET, POST, PUT, DELETE, OPTIONS";
static const char CORS_HEADERS[] = "Content-Type, Content-Encoding, Authorization";
static const char JSON_TYPE[] = "application/json";

/* --- small lookups -------------------------------------------------------- */

const char *api_header(api_req *req, const char *name) {
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

enum api_query_result api_query(api_req *req, const char *name, char *out, size_t cap) {
    const char *raw = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
    if (!raw) return QUERY_ABSENT;
    size_t len = strlen(raw);
    if (len >= cap) return QUERY_TOO_LONG;
    memcpy(out, raw, len + 1);
    MHD_http_unescape(out);
    return QUERY_FOUND;
}

/* --- responses -------------------------------------------------------------- */

static void add_cors_headers(api_req *req, struct MHD_Response *resp) {
    const char *origin = api_header(req, "Origin");
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin ? origin : "*");
    if (origin) MHD_add_response_header(resp, "Vary", "Origin");
    MHD_add_response_header(resp, "Access-Control-Expose-Headers", "Retry-After");
}

enum MHD_Result api_queue(api_req *req, int status, struct MHD_Response *resp,
                          const char *content_type) {
    if (!resp) return MHD_NO;
    add_cors_headers(req, resp);
    if (content_type) MHD_add_response_header(resp, "Content-Type", content_type);
    if (atomic_load(&req->srv->draining)) MHD_add_response_header(resp, "Connection", "close");
    enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    metrics_count(req->srv, req->route, status);
    return ret;
}

enum MHD_Result api_reply_buf(api_req *req, int status, bsp_buf *body) {
    struct MHD_Response *resp;
    if (body->data) {
        resp = MHD_create_response_from_buffer(body->len, body->data, MHD_RESPMEM_MUST_FREE);
        if (!resp) free(body->data);
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    body->data = NULL;
    body->len = body->cap = 0;
    return api_queue(req, status, resp, JSON_TYPE);
}

enum MHD_Result api_reply_static(api_req *req, int status, const char *text) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    return api_queue(req, status, resp, JSON_TYPE);
}

static const char SUCCESS_BODY[] = "{\"success\":true}";

struct MHD_Response *api_make_success_response(void) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        sizeof SUCCESS_BODY - 1, (void *)SUCCESS_BODY, MHD_RESPMEM_PERSISTENT);
    if (!resp) return NULL;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
    MHD_add_response_header(resp, "Access-Control-Expose-Headers", "Retry-After");
    MHD_add_response_header(resp, "Content-Type", JSON_TYPE);
    return resp;
}

/* The common answer of collection: one shared response object when no
 * Origin needs echoing, so the hot path allocates nothing for it. */
enum MHD_Result api_reply_success(api_req *req) {
    api_server *srv = req->srv;
    if (srv->success && !atomic_load(&srv->draining) && !api_header(req, "Origin")) {
        enum MHD_Result ret = MHD_queue_response(req->conn, 200, srv->success);
        metrics_count(srv, req->route, 200);
        return ret;
    }
    return api_reply_static(req, 200, SUCCESS_BODY);
}

static void add_error_headers(api_req *req, struct MHD_Response *resp, bsp_err code) {
    if (code == BSP_EBUSY) MHD_add_response_header(resp, "Retry-After", "1");
    if (code == BSP_EMETHOD) {
        char allow[96];
        api_methods_text(api_route_methods(req->route), allow, sizeof allow);
        MHD_add_response_header(resp, "Allow", allow);
    }
}

enum MHD_Result api_reply_error(api_req *req, const bsp_error *err) {
    static const char fallback[] =
        "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\",\"at\":null}}";
    int status = bsp_err_http_status(err->code);
    bsp_buf body = {0};
    struct MHD_Response *resp;
    if (json_write_error(&body, err) == BSP_OK) {
        resp = MHD_create_response_from_buffer(body.len, body.data, MHD_RESPMEM_MUST_FREE);
        if (!resp) free(body.data);
    } else {
        bsp_buf_free(&body);
        resp = MHD_create_response_from_buffer(sizeof fallback - 1, (void *)fallback,
                                               MHD_RESPMEM_PERSISTENT);
    }
    if (!resp) return MHD_NO;
    add_error_headers(req, resp, err->code);
    return api_queue(req, status, resp, JSON_TYPE);
}

enum MHD_Result api_reply_errorf(api_req *req, bsp_err code, const char *at, const char *fmt, ...) {
    bsp_error err;
    bsp_error_clear(&err);
    err.code = code;
    snprintf(err.at, sizeof err.at, "%s", at ? at : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    return api_reply_error(req, &err);
}

static enum MHD_Result reply_preflight(api_req *req) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    const char *asked = api_header(req, "Access-Control-Request-Headers");
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", CORS_METHODS);
    MHD_add_response_header(resp, "Access-Control-Allow-Headers", asked ? asked : CORS_HEADERS);
    MHD_add_response_header(resp, "Access-Control-Max-Age", "86400");
    if (!api_header(req, "Origin")) MHD_add_response_header(resp, "Vary", "Origin");
    return api_queue(req, 204, resp, NULL);
}

/* --- request state -------------------------------------------------------------- */

static void req_free(api_req *req) {
    collect_req_free(req);
    free(req->id);
    bsp_buf_free(&req->body);
    free(req);
}

/* The path id, percent-decoded. An id with an encoded NUL is refused. */
static bsp_err decode_id(api_req *req, const char *raw, size_t len) {
    req->id = malloc(len + 1);
    if (!req->id) return bsp_error_set(&req->pending, BSP_ENOMEM, "", "out of memory");
    memcpy(req->id, raw, len);
    req->id[len] = '\0';
    size_t decoded = MHD_http_unescape(req->id);
    if (decoded != strlen(req->id) || decoded == 0)
        return bsp_error_set(&req->pending, BSP_EINVAL, "id", "invalid id in the path");
    return BSP_OK;
}

static bsp_err check_encoding(api_req *req) {
    const char *enc = api_header(req, "Content-Encoding");
    if (!enc || !*enc || strcasecmp(enc, "identity") == 0) return BSP_OK;
    if (strcasecmp(enc, "gzip") == 0 || strcasecmp(enc, "x-gzip") == 0 ||
        strcasecmp(enc, "deflate") == 0) {
        req->encoding = ENCODING_ZLIB;
        return BSP_OK;
    }
    return bsp_error_set(&req->pending, BSP_EMEDIA, "Content-Encoding",
                         "unsupported Content-Encoding (use gzip, deflate or none)");
}

/* Content-Length over the limit: answer now (and close), else reserve the
 * body buffer once. Returns false when the request was answered. */
static bool check_length(api_req *req, enum MHD_Result *ret) {
    const char *text = api_header(req, "Content-Length");
    if (!text) return true;
    char *end;
    unsigned long long declared = strtoull(text, &end, 10);
    if (declared > req->body_max) {
        *ret = api_reply_errorf(req, BSP_ETOOBIG, "", "request body larger than %zu bytes",
                                req->body_max);
        return false;
    }
    if (declared > 0 && bsp_buf_reserve(&req->body, (size_t)declared) != BSP_OK)
        bsp_error_set(&req->pending, BSP_ENOMEM, "", "out of memory");
    return true;
}

/* First call: route, method, id, admin key, encoding, declared length. Any
 * problem found here is kept in req->pending and answered at the end. */
static enum MHD_Result begin_request(api_server *srv, struct MHD_Connection *conn, const char *url,
                                     const char *method, void **con_cls) {
    api_req *req = calloc(1, sizeof *req);
    if (!req) return MHD_NO;
    req->srv = srv;
    req->conn = conn;
    req->url = url;
    *con_cls = req;
    atomic_fetch_add(&srv->requests_open, 1);
    req->method = api_method_parse(method);
    const char *id_raw;
    size_t id_len;
    req->route = api_route_match(url, srv->web_dir != NULL, &id_raw, &id_len);
    bool bulk = req->route == ROUTE_ADMIN_PRODUCTS && req->method == METHOD_POST;
    req->body_max = bulk ? API_BULK_MAX_BYTES : BSP_REQUEST_MAX_BYTES;
    if (req->route == ROUTE_DECIDE) req->body_max = DECIDE_BODY_MAX;
    if (req->route == ROUTE_EVENTS) req->body_max = DECIDE_EVENT_BODY_MAX;
    if (req->method == METHOD_OPTIONS) return MHD_YES;
    if (req->route == ROUTE_OTHER) {
        bsp_error_set(&req->pending, BSP_ENOTFOUND, "", "no such endpoint");
        return MHD_YES;
    }
    if (!(api_route_methods(req->route) & req->method)) {
        bsp_error_set(&req->pending, BSP_EMETHOD, "", "method %s not allowed here", method);
        return MHD_YES;
    }
    if (id_raw && decode_id(req, id_raw, id_len) != BSP_OK) return MHD_YES;
    if (api_route_is_admin(req->route) && admin_authenticate(req, &req->pending) != BSP_OK)
        return MHD_YES;
    if (check_encoding(req) != BSP_OK) return MHD_YES;
    enum MHD_Result ret = MHD_YES;
    check_length(req, &ret);
    return ret;
}

/* A chunk of body. Once an answer is decided the rest is read and dropped,
 * so the connection stays usable; past API_DISCARD_MAX_BYTES we hang up. */
static enum MHD_Result take_upload(api_req *req, const char *data, size_t size) {
    if (req->pending.code != BSP_OK || req->method == METHOD_OPTIONS) {
        req->discarded += size;
        return req->discarded > API_DISCARD_MAX_BYTES ? MHD_NO : MHD_YES;
    }
    if (size > req->body_max - req->body.len) {
        bsp_error_set(&req->pending, BSP_ETOOBIG, "", "request body larger than %zu bytes",
                      req->body_max);
        bsp_buf_free(&req->body);
        req->discarded += size;
        return MHD_YES;
    }
    if (bsp_buf_append(&req->body, data, size) != BSP_OK) {
        bsp_error_set(&req->pending, BSP_ENOMEM, "", "out of memory");
        bsp_buf_free(&req->body);
    }
    return MHD_YES;
}

/* --- Content-Encoding ------------------------------------------------------------- */

/* Inflates src into out, at most max bytes. window_bits 15+32 reads zlib and
 * gzip; -15 reads raw deflate (what some clients send as "deflate"). */
static bsp_err inflate_into(const bsp_buf *src, int window_bits, size_t max, bsp_buf *out,
                            bsp_error *err) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, window_bits) != Z_OK)
        return bsp_error_set(err, BSP_ENOMEM, "", "out of memory");
    zs.next_in = (Bytef *)src->data;
    zs.avail_in = (uInt)src->len;
    bsp_err rc = BSP_OK;
    int zrc = Z_OK;
    while (zrc != Z_STREAM_END && rc == BSP_OK) {
        if (out->len > max) break; /* reported below */
        size_t room = max + 1 - out->len;
        size_t chunk = room < 65536 ? room : 65536;
        if (bsp_buf_reserve(out, chunk) != BSP_OK) {
            rc = bsp_error_set(err, BSP_ENOMEM, "", "out of memory");
            break;
        }
        zs.next_out = (Bytef *)out->data + out->len;
        zs.avail_out = (uInt)chunk;
        zrc = inflate(&zs, Z_NO_FLUSH);
        out->len += chunk - zs.avail_out;
        out->data[out->len] = '\0';
        if (zrc == Z_STREAM_END) break;
        if (zrc == Z_BUF_ERROR && zs.avail_in == 0)
            rc = bsp_error_set(err, BSP_EINVAL, "", "compressed body is truncated");
        else if (zrc != Z_OK && zrc != Z_BUF_ERROR)
            rc = bsp_error_set(err, BSP_EINVAL, "", "compressed body is not valid gzip/deflate");
    }
    if (rc == BSP_OK && out->len > max)
        rc = bsp_error_set(err, BSP_ETOOBIG, "", "decoded body larger than %zu bytes", max);
    inflateEnd(&zs);
    return rc;
}

bsp_err api_body_inflate(const char *data, size_t len, size_t max, bsp_buf *out, bsp_error *err) {
    bsp_buf src = {.data = (char *)data, .len = len, .cap = len};
    return inflate_into(&src, 15 + 32, max, out, err);
}

static bsp_err decode_body(api_req *req, bsp_error *err) {
    if (req->encoding == ENCODING_NONE || req->body.len == 0) return BSP_OK;
    bsp_buf out = {0};
    bsp_err rc = inflate_into(&req->body, 15 + 32, req->body_max, &out, err);
    if (rc == BSP_EINVAL) {
        bsp_buf_reset(&out);
        bsp_error err_raw;
        if (inflate_into(&req->body, -15, req->body_max, &out, &err_raw) == BSP_OK) rc = BSP_OK;
    }
    if (rc != BSP_OK) {
        bsp_buf_free(&out);
        return rc;
    }
    bsp_buf_free(&req->body);
    req->body = out;
    return BSP_OK;
}

/* --- dispatch ------------------------------------------------------------------------ */

static enum MHD_Result dispatch(api_req *req) {
    switch (req->route) {
    case ROUTE_HEALTHZ:
        return health_handle(req);
    case ROUTE_METRICS:
        return metrics_handle(req);
    case ROUTE_STATIC:
        return static_handle(req, req->url);
    case ROUTE_DECIDE:
    case ROUTE_EVENTS:
        return decide_handle(req);
    case ROUTE_RECOMMENDATIONS:
    case ROUTE_RANK:
        return reco_handle(req);
    case ROUTE_ADMIN_SEGMENTS:
    case ROUTE_ADMIN_SEGMENTS_PREVIEW:
    case ROUTE_ADMIN_SEGMENT:
    case ROUTE_ADMIN_SEGMENT_MEMBERS:
        return segments_handle(req);
    case ROUTE_ADMIN_SEGMENT_LOOKALIKE:
        return lookalike_handle(req);
    case ROUTE_CATALOG_PRODUCTS:
    case ROUTE_CATALOG_PRODUCT:
    case ROUTE_CATALOG_CATEGORIES:
        return catalog_handle(req);
    case ROUTE_ADMIN_CAMPAIGNS:
    case ROUTE_ADMIN_CAMPAIGN:
    case ROUTE_ADMIN_PLACEMENTS:
    case ROUTE_ADMIN_PLACEMENT:
        return campaigns_handle(req);
    case ROUTE_OTHER:
    case ROUTE_COUNT:
        break;
    default:
        if (api_route_is_collect(req->route)) return collect_handle(req);
        if (api_route_is_admin(req->route)) return admin_handle(req);
    }
    return api_reply_errorf(req, BSP_ENOTFOUND, "", "no such endpoint");
}

static enum MHD_Result finish_request(api_req *req) {
    if (req->method == METHOD_OPTIONS) return reply_preflight(req);
    if (req->pending.code != BSP_OK) return api_reply_error(req, &req->pending);
    bsp_error err;
    if (decode_body(req, &err) != BSP_OK) return api_reply_error(req, &err);
    return dispatch(req);
}

enum MHD_Result api_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls) {
    (void)version;
    api_req *req = *con_cls;
    if (!req) return begin_request(cls, conn, url, method, con_cls);
    if (*upload_size) {
        enum MHD_Result ret = take_upload(req, upload, *upload_size);
        *upload_size = 0;
        return ret;
    }
    int async = atomic_load(&req->async);
    if (async == ASYNC_DONE) return collect_answer(req);
    if (async == ASYNC_WAITING) return MHD_YES;
    return finish_request(req);
}

void api_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
    (void)conn;
    (void)toe;
    api_server *srv = cls;
    api_req *req = *con_cls;
    if (!req) return;
    req_free(req);
    *con_cls = NULL;
    atomic_fetch_sub(&srv->requests_open, 1);
}
