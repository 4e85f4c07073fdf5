/* metrics.c - request counters (one relaxed atomic add per answer, no lock)
 * and the two operational endpoints: /metrics in the Prometheus text
 * exposition format, and /healthz. */
#include "api/api_internal.h"

#include <stdio.h>

/* The statuses we answer with; anything else lands in the last slot. */
static const int status_slots[API_STATUS_SLOTS] = {200, 204, 400, 401, 403, 404, 405, 409,
                                                   413, 415, 422, 429, 500, 503, 201, 0};
#define STATUS_SLOT_OTHER (API_STATUS_SLOTS - 1)

static int status_slot(int status) {
    for (int i = 0; i < STATUS_SLOT_OTHER; i++)
        if (status_slots[i] == status) return i;
    return STATUS_SLOT_OTHER;
}

void metrics_count(api_server *srv, api_route route, int status) {
    atomic_fetch_add_explicit(&srv->requests[route][status_slot(status)], 1, memory_order_relaxed);
}

static bsp_err write_requests(api_server *srv, bsp_buf *out) {
    bsp_err rc = bsp_buf_puts(out, "# HELP bespoke_http_requests_total HTTP requests answered, "
                                   "by route template and status.\n"
                                   "# TYPE bespoke_http_requests_total counter\n");
    for (int r = 0; r < ROUTE_COUNT && rc == BSP_OK; r++) {
        for (int s = 0; s < API_STATUS_SLOTS && rc == BSP_OK; s++) {
            uint64_t n = atomic_load_explicit(&srv->requests[r][s], memory_order_relaxed);
            if (n == 0 || (s != STATUS_SLOT_OTHER && status_slots[s] == 0)) continue;
            char status[8];
            if (s == STATUS_SLOT_OTHER)
                snprintf(status, sizeof status, "other");
            else
                snprintf(status, sizeof status, "%d", status_slots[s]);
            rc = bsp_buf_printf(out,
                                "bespoke_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                                api_route_label((api_route)r), status, (unsigned long long)n);
        }
    }
    return rc;
}

static bsp_err write_metric(bsp_buf *out, const char *name, const char *type, const char *help,
                            uint64_t value) {
    return bsp_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type,
                          name, (unsigned long long)value);
}

static bsp_err write_ingest(const bsp_ingest_metrics *m, bsp_buf *out) {
    bsp_err rc = write_metric(out, "bespoke_events_ingested_total", "counter",
                              "Events newly stored.", m->events_ingested);
    if (!rc)
        rc = write_metric(out, "bespoke_events_duplicate_total", "counter",
                          "Events dropped as resends of a stored messageId.", m->events_duplicate);
    if (!rc)
        rc = write_metric(out, "bespoke_ingest_queue_depth", "gauge",
                          "Events waiting for the writer.", m->queue_depth);
    if (!rc)
        rc = write_metric(out, "bespoke_ingest_commits_total", "counter",
                          "Groups of events the writer made durable.", m->commits);
    if (!rc)
        rc = write_metric(out, "bespoke_ingest_commit_failures_total", "counter",
                          "Store transactions that failed.", m->commit_failures);
    if (!rc)
        rc = write_metric(out, "bespoke_ingest_checkpoints_total", "counter",
                          "Checkpoints that wrote changed profiles and timelines.", m->checkpoints);
    if (!rc)
        rc = bsp_buf_printf(out,
                            "# HELP bespoke_ingest_checkpoint_seconds_total Time the writer spent "
                            "in checkpoints of its own (no group is applied meanwhile).\n"
                            "# TYPE bespoke_ingest_checkpoint_seconds_total counter\n"
                            "bespoke_ingest_checkpoint_seconds_total %.6f\n",
                            (double)m->checkpoint_us / 1e6);
    if (!rc)
        rc = write_metric(out, "bespoke_ingest_wal_direct", "gauge",
                          "1 when groups reach the write-ahead file by O_DIRECT|O_DSYNC writes, "
                          "0 when through the page cache and fdatasync.",
                          m->wal_direct);
    if (!rc)
        rc = write_metric(out, "bespoke_ingest_wal_syncs_total", "counter",
                          "Syncs of the write-ahead file (each direct group write is one).",
                          m->wal_syncs);
    if (!rc)
        rc = write_metric(out, "bespoke_profile_memo_hits_total", "counter",
                          "Profile reads of decisions and recommendations answered from the "
                          "memo of parsed profiles.",
                          m->memo_hits);
    if (!rc)
        rc = write_metric(out, "bespoke_profile_memo_unread_hits_total", "counter",
                          "Memo hits of decisions answered on freshness stamps, without "
                          "reading the store.",
                          m->memo_stamped);
    if (!rc)
        rc = write_metric(out, "bespoke_profile_memo_misses_total", "counter",
                          "Profile reads of decisions and recommendations that parsed the "
                          "profile.",
                          m->memo_misses);
    if (!rc)
        rc = write_metric(out, "bespoke_profile_memo_profiles", "gauge",
                          "Profiles the memo holds parsed (at most --profile-memo).", m->memo_held);
    return rc;
}

static bsp_err write_latency(const bsp_ingest_metrics *m, bsp_buf *out) {
    static const char name[] = "bespoke_commit_latency_seconds";
    bsp_err rc = bsp_buf_printf(out,
                                "# HELP %s Time from a batch's arrival at the writer to its "
                                "durable commit.\n# TYPE %s histogram\n",
                                name, name);
    uint64_t cumulative = 0;
    for (int i = 0; i < BSP_INGEST_LAT_BUCKETS && rc == BSP_OK; i++) {
        cumulative += m->lat_counts[i];
        rc = bsp_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name,
                            bsp_ingest_lat_bounds_us[i] / 1e6, (unsigned long long)cumulative);
    }
    cumulative += m->lat_counts[BSP_INGEST_LAT_BUCKETS];
    if (!rc)
        rc = bsp_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
                            (unsigned long long)cumulative, name, m->lat_sum_us / 1e6, name,
                            (unsigned long long)cumulative);
    return rc;
}

static bsp_err write_segments(api_server *srv, bsp_buf *out) {
    if (!srv->segments) return BSP_OK;
    segments_metrics m;
    segments_metrics_get(srv->segments, &m);
    bsp_err rc = write_metric(out, "bespoke_segments", "gauge", "Segments defined.", m.segments);
    if (!rc)
        rc = write_metric(out, "bespoke_segment_evaluations_total", "counter",
                          "Segment conditions evaluated for changed profiles.", m.evaluations);
    if (!rc)
        rc = bsp_buf_printf(out,
                            "# HELP bespoke_segment_evaluation_seconds_total Time spent in them.\n"
                            "# TYPE bespoke_segment_evaluation_seconds_total counter\n"
                            "bespoke_segment_evaluation_seconds_total %.6f\n",
                            (double)m.eval_ns / 1e9);
    if (!rc)
        rc = write_metric(out, "bespoke_segment_entries_total", "counter",
                          "Profiles that entered a segment.", m.entered);
    if (!rc)
        rc = write_metric(out, "bespoke_segment_exits_total", "counter",
                          "Profiles that left a segment.", m.exited);
    return rc;
}

static bsp_err write_webhooks(api_server *srv, bsp_buf *out) {
    if (!srv->webhooks) return BSP_OK;
    bsp_webhook_metrics m;
    webhook_metrics(srv->webhooks, &m);
    bsp_err rc = write_metric(out, "bespoke_webhooks_sent_total", "counter",
                              "Webhook payloads delivered (2xx).", m.sent);
    if (!rc)
        rc = write_metric(out, "bespoke_webhooks_failed_total", "counter",
                          "Webhook payloads given up on.", m.failed);
    if (!rc)
        rc = write_metric(out, "bespoke_webhooks_retried_total", "counter",
                          "Webhook attempts that failed and were retried.", m.retried);
    if (!rc)
        rc = write_metric(out, "bespoke_webhooks_dropped_total", "counter",
                          "Webhook payloads refused because the queue was full.", m.dropped);
    if (!rc)
        rc = write_metric(out, "bespoke_webhooks_queued", "gauge", "Webhook payloads held now.",
                          m.queued);
    return rc;
}

/* The listener gives each lane its share (listener.c); this shows it. */
static bsp_err write_connections(api_server *srv, bsp_buf *out) {
    bsp_err rc = bsp_buf_puts(out, "# HELP bespoke_http_connections Connections open, by HTTP "
                                   "lane and worker (near: poll, far: epoll).\n"
                                   "# TYPE bespoke_http_connections gauge\n");
    for (unsigned i = 0; i < srv->lane_count && rc == BSP_OK; i++) {
        rc = bsp_buf_printf(out,
                            "bespoke_http_connections{lane=\"%u\",worker=\"near\"} %u\n"
                            "bespoke_http_connections{lane=\"%u\",worker=\"far\"} %u\n",
                            i, api_daemon_connections(srv->lanes[i].near), i,
                            api_daemon_connections(srv->lanes[i].far));
    }
    return rc;
}

enum MHD_Result metrics_handle(api_req *req) {
    api_server *srv = req->srv;
    bsp_buf out = {0};
    bsp_err rc = write_requests(srv, &out);
    if (rc == BSP_OK) rc = write_connections(srv, &out);
    if (rc == BSP_OK && api_ingest_acquire(srv)) {
        bsp_ingest_metrics m;
        ingest_metrics(srv->ingest, &m);
        api_ingest_release(srv);
        rc = write_ingest(&m, &out);
        if (rc == BSP_OK) rc = write_latency(&m, &out);
    }
    if (rc == BSP_OK) rc = decide_write_metrics(srv, &out);
    if (rc == BSP_OK) rc = write_segments(srv, &out);
    if (rc == BSP_OK) rc = write_webhooks(srv, &out);
    if (rc == BSP_OK) rc = reco_write_metrics(srv, &out);
    if (rc != BSP_OK) {
        bsp_buf_free(&out);
        return api_reply_errorf(req, rc, "", "could not render metrics");
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(out.len, out.data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        bsp_buf_free(&out);
        return MHD_NO;
    }
    return api_queue(req, 200, resp, "text/plain; version=0.0.4; charset=utf-8");
}

enum MHD_Result health_handle(api_req *req) {
    if (atomic_load(&req->srv->draining))
        return api_reply_static(req, 503, "{\"status\":\"draining\"}");
    return api_reply_static(req, 200, "{\"status\":\"ok\"}");
}
