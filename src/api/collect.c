/* collect.c - the Segment (and RudderStack) collection endpoints: find and
 * check the write key, parse the body into events, hand them to the ingest
 * writer and hold the connection (suspended) until the commit is durable.
 *
 * Ordering matters: the connection is suspended BEFORE ingest_submit, so
 * the writer's MHD_resume_connection can never come before the suspension.
 * The done callback runs on the writer thread; it only stores the result
 * and resumes. The answer is queued on the HTTP thread in the next call of
 * the access handler (collect_answer). */
#include "api/api_internal.h"

#include <stdlib.h>
#include <string.h>

#include "json/json.h"

static bsp_event_type route_event_type(api_route r) {
    switch (r) {
    case ROUTE_TRACK:
        return BSP_EV_TRACK;
    case ROUTE_IDENTIFY:
        return BSP_EV_IDENTIFY;
    case ROUTE_PAGE:
        return BSP_EV_PAGE;
    case ROUTE_SCREEN:
        return BSP_EV_SCREEN;
    case ROUTE_GROUP:
        return BSP_EV_GROUP;
    case ROUTE_ALIAS:
        return BSP_EV_ALIAS;
    default:
        return BSP_EV_TYPE_COUNT; /* batch: each message names its type */
    }
}

/* The events go back to the allocator on the HTTP thread that made them:
 * freeing them on the writer thread would make every free a cross-thread
 * one, which glibc serializes on the arena lock. */
static void free_events(api_req *req) {
    for (size_t i = 0; req->events && i < req->submitted; i++)
        event_free(&req->events[i]);
    if (!req->events_in_arena) free(req->events);
    req->events = NULL;
    json_arena_free(req->json_arena); /* after the events: it holds their json */
    req->json_arena = NULL;
}

void collect_req_free(api_req *req) {
    free_events(req);
    free(req->rejects);
    req->rejects = NULL;
    req->reject_count = 0;
}

/* --- write key ------------------------------------------------------------------ */

static bsp_err check_write_key(api_server *srv, const char *key, bsp_error *err) {
    if (!key || !*key)
        return bsp_error_set(err, BSP_EAUTH, "",
                             "missing write key (HTTP Basic username, writeKey in the body "
                             "or ?writeKey=)");
    size_t len = strlen(key);
    if (api_key_equal(key, len, srv->write_key, srv->write_key_len)) return BSP_OK;
    if (api_key_equal(key, len, srv->admin_key, srv->admin_key_len))
        return bsp_error_set(err, BSP_EFORBIDDEN, "", "the admin key cannot send events");
    return bsp_error_set(err, BSP_EAUTH, "", "wrong write key");
}

/* The username of HTTP Basic auth (Segment's and RudderStack's SDKs put the
 * write key there); NULL when absent. Free with MHD_free. */
static char *basic_auth_key(api_req *req) {
    char *password = NULL;
    char *user = MHD_basic_auth_get_username_password(req->conn, &password);
    if (password) MHD_free(password);
    return user;
}

/* Body key first, then ?writeKey=. */
static bsp_err check_body_or_query_key(api_req *req, const bsp_event_list *list, bsp_error *err) {
    if (list->write_key[0]) return check_write_key(req->srv, list->write_key, err);
    char query_key[API_KEY_MAX];
    enum api_query_result q = api_query(req, "writeKey", query_key, sizeof query_key);
    if (q == QUERY_TOO_LONG) return bsp_error_set(err, BSP_EAUTH, "", "wrong write key");
    return check_write_key(req->srv, q == QUERY_FOUND ? query_key : NULL, err);
}

bsp_err collect_check_key(api_req *req, const char *body_key, bsp_error *err) {
    char *basic_key = basic_auth_key(req);
    if (basic_key) {
        bsp_err rc = check_write_key(req->srv, basic_key, err);
        MHD_free(basic_key);
        return rc;
    }
    if (body_key && body_key[0]) return check_write_key(req->srv, body_key, err);
    char query_key[API_KEY_MAX];
    enum api_query_result q = api_query(req, "writeKey", query_key, sizeof query_key);
    if (q == QUERY_TOO_LONG) return bsp_error_set(err, BSP_EAUTH, "", "wrong write key");
    return check_write_key(req->srv, q == QUERY_FOUND ? query_key : NULL, err);
}

/* --- answers ------------------------------------------------------------------------ */

/* {"index":i,"error":{...}} */
static bsp_err write_reject(bsp_buf *out, const bsp_event_reject *rej) {
    if (bsp_buf_printf(out, "{\"index\":%zu,", rej->index)) return BSP_ENOMEM;
    size_t brace = out->len;
    if (json_write_error(out, &rej->error)) return BSP_ENOMEM;
    /* json_write_error wrote {"error":{...}}: drop its opening brace. */
    memmove(out->data + brace, out->data + brace + 1, out->len - brace);
    out->len--;
    return BSP_OK;
}

static enum MHD_Result reply_accepted(api_req *req, size_t accepted) {
    if (req->reject_count == 0) return api_reply_success(req);
    bsp_buf out = {0};
    bsp_err rc =
        bsp_buf_printf(&out, "{\"success\":true,\"accepted\":%zu,\"rejected\":[", accepted);
    for (size_t i = 0; i < req->reject_count && rc == BSP_OK; i++) {
        if (i) rc = bsp_buf_puts(&out, ",");
        if (rc == BSP_OK) rc = write_reject(&out, &req->rejects[i]);
    }
    if (rc == BSP_OK) rc = bsp_buf_puts(&out, "]}");
    if (rc != BSP_OK) {
        bsp_buf_free(&out);
        return api_reply_errorf(req, BSP_ENOMEM, "", "out of memory");
    }
    return api_reply_buf(req, 200, &out);
}

enum MHD_Result collect_answer(api_req *req) {
    bsp_err code = req->result.code;
    atomic_store(&req->async, ASYNC_NONE);
    free_events(req);
    switch (code) {
    case BSP_OK:
        return reply_accepted(req, req->submitted);
    case BSP_EBUSY:
        return api_reply_errorf(req, code, "", "too many events waiting; retry in a second");
    case BSP_EUNAVAIL:
        return api_reply_errorf(req, code, "", "the server is shutting down");
    default:
        return api_reply_errorf(req, code, "", "the events could not be stored (%s)",
                                bsp_err_name(code));
    }
}

/* --- submission ------------------------------------------------------------------------ */

/* Writer thread: record and wake the connection. */
static void on_ingest_done(void *ctx, const bsp_ingest_result *res) {
    api_req *req = ctx;
    req->result = *res;
    atomic_store(&req->async, ASYNC_DONE);
    MHD_resume_connection(req->conn);
}

/* Suspends, submits, and resumes at once if ingest refused the events.
 * The request keeps the events; ingest borrows them until it calls back. */
enum MHD_Result collect_submit(api_req *req, bsp_event_list *list) {
    api_server *srv = req->srv;
    if (!api_ingest_acquire(srv))
        return api_reply_errorf(req, BSP_EUNAVAIL, "", "the server is shutting down");
    req->rejects = list->rejects;
    req->reject_count = list->reject_count;
    list->rejects = NULL;
    list->reject_count = 0;
    req->submitted = list->count;
    req->events = list->items;
    req->events_in_arena = list->items_in_arena;
    list->items = NULL;
    req->json_arena = list->arena;
    list->arena = NULL;
    list->count = 0;
    atomic_store(&req->async, ASYNC_WAITING);
    MHD_suspend_connection(req->conn);
    bsp_err rc = ingest_submit(srv->ingest, req->events, req->submitted, on_ingest_done, req);
    api_ingest_release(srv);
    if (rc == BSP_OK) return MHD_YES;
    req->result = (bsp_ingest_result){.code = rc};
    atomic_store(&req->async, ASYNC_DONE);
    MHD_resume_connection(req->conn);
    return MHD_YES;
}

enum MHD_Result collect_handle(api_req *req) {
    bsp_error err;
    char *basic_key = basic_auth_key(req);
    bool had_basic_key = basic_key != NULL;
    if (basic_key) {
        bsp_err rc = check_write_key(req->srv, basic_key, &err);
        MHD_free(basic_key);
        if (rc != BSP_OK) return api_reply_error(req, &err);
    }
    bsp_event_list list;
    memset(&list, 0, sizeof list);
    const char *body = req->body.data ? req->body.data : "";
    if (event_parse_body(body, req->body.len, route_event_type(req->route), bsp_now_ms(), &list,
                         &err) != BSP_OK) {
        event_list_free(&list);
        return api_reply_error(req, &err);
    }
    if (!had_basic_key && check_body_or_query_key(req, &list, &err) != BSP_OK) {
        event_list_free(&list);
        return api_reply_error(req, &err);
    }
    enum MHD_Result ret;
    if (list.count == 0) {
        req->rejects = list.rejects;
        req->reject_count = list.reject_count;
        list.rejects = NULL;
        list.reject_count = 0;
        ret = reply_accepted(req, 0);
    } else {
        ret = collect_submit(req, &list);
    }
    event_list_free(&list);
    return ret;
}
