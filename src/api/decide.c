/* decide.c - the storefront's decision endpoints, with the write key as for
 * collection (HTTP Basic, body writeKey or ?writeKey=):
 *   POST /v1/decide  {userId|anonymousId, context, placements[]} -> per
 *                    placement the content to show and a signed token
 *   POST /v1/events  {type: impression|click, token, userId|anonymousId}
 *                    -> verifies the token and stores the matching
 *                    "Promotion Viewed" / "Promotion Clicked" track event
 *                    through ingest (answered once durable, as collection)
 * A decision runs on the HTTP thread in one read transaction and never
 * waits for the writer. */
#include "api/api_internal.h"

#include <stdlib.h>
#include <string.h>

#include "decide/decide.h"

static enum MHD_Result decide_post(api_req *req) {
    bsp_error err;
    decide_request dr;
    const char *body = req->body.data ? req->body.data : "";
    bsp_err rc = decide_request_parse(body, req->body.len, &dr, &err);
    if (rc == BSP_OK || dr.root) {
        bsp_error key_err;
        if (collect_check_key(req, dr.write_key, &key_err) != BSP_OK) {
            decide_request_free(&dr);
            return api_reply_error(req, &key_err);
        }
    }
    if (rc != BSP_OK) {
        decide_request_free(&dr);
        return api_reply_error(req, &err);
    }
    bsp_buf out = {0};
    rc = decide_run(req->srv->decider, &dr, bsp_now_ms(), &out, &err);
    decide_request_free(&dr);
    if (rc != BSP_OK) {
        bsp_buf_free(&out);
        return api_reply_error(req, &err);
    }
    return api_reply_buf(req, 200, &out);
}

static enum MHD_Result events_post(api_req *req) {
    bsp_error err;
    char body_key[BSP_WRITE_KEY_MAX_BYTES + 1];
    bsp_event ev;
    const char *body = req->body.data ? req->body.data : "";
    bsp_err rc = decide_event_parse(decider_token_key(req->srv->decider), body, req->body.len,
                                    bsp_now_ms(), &ev, body_key, &err);
    bsp_error key_err;
    if (collect_check_key(req, body_key, &key_err) != BSP_OK) {
        event_free(&ev);
        return api_reply_error(req, &key_err);
    }
    if (rc != BSP_OK) return api_reply_error(req, &err);
    bsp_event_list list;
    memset(&list, 0, sizeof list);
    list.items = malloc(sizeof *list.items);
    if (!list.items) {
        event_free(&ev);
        return api_reply_errorf(req, BSP_ENOMEM, "", "out of memory");
    }
    list.items[0] = ev;
    list.count = 1;
    enum MHD_Result ret = collect_submit(req, &list);
    event_list_free(&list);
    return ret;
}

enum MHD_Result decide_handle(api_req *req) {
    return req->route == ROUTE_EVENTS ? events_post(req) : decide_post(req);
}

bsp_err decide_write_metrics(api_server *srv, bsp_buf *out) {
    static const char name[] = "bespoke_decide_latency_seconds";
    if (!srv->decider) return BSP_OK;
    decide_metrics m;
    decide_metrics_get(srv->decider, &m);
    bsp_err rc = bsp_buf_printf(out,
                                "# HELP %s Server time of one POST /v1/decide, from the parsed "
                                "body to the answer written.\n# TYPE %s histogram\n",
                                name, name);
    uint64_t cumulative = 0;
    for (int i = 0; i < DECIDE_LAT_BUCKETS && rc == BSP_OK; i++) {
        cumulative += m.lat_counts[i];
        rc = bsp_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, decide_lat_bounds_us[i] / 1e6,
                            (unsigned long long)cumulative);
    }
    cumulative += m.lat_counts[DECIDE_LAT_BUCKETS];
    if (rc == BSP_OK)
        rc = bsp_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
                            (unsigned long long)cumulative, name, m.lat_sum_us / 1e6, name,
                            (unsigned long long)cumulative);
    return rc;
}
