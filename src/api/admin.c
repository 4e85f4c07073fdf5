/* admin.c - the admin API under /v1/admin/: profile look-up, timeline,
 * export and erasure; catalog products one by one or in bulk (JSONL); store
 * statistics. Authenticated by "Authorization: Bearer <admin key>".
 *
 * Reads run in their own read transactions on the HTTP thread and never
 * touch the writer; every write goes through ingest (jobs on the writer
 * thread), so admin changes are serialized with collection. */
#include "api/api_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "catalog/catalog.h"
#include "json/json.h"
#include "profile/profile.h"

#define PAGE_DEFAULT 50
#define PAGE_MAX 1000
#define BULK_FLUSH 500        /* products per ingest job in a bulk upload */
#define BULK_REJECTS_MAX 1000 /* rejected lines listed in a bulk answer */

/* --- authentication ------------------------------------------------------------ */

bsp_err admin_authenticate(api_req *req, bsp_error *err) {
    api_server *srv = req->srv;
    const char *auth = api_header(req, "Authorization");
    if (!auth)
        return bsp_error_set(err, BSP_EAUTH, "", "missing admin key (Authorization: Bearer <key>)");
    if (strncasecmp(auth, "Bearer ", 7) != 0)
        return bsp_error_set(err, BSP_EAUTH, "", "expected Authorization: Bearer <admin key>");
    const char *token = auth + 7;
    while (*token == ' ')
        token++;
    size_t len = strlen(token);
    if (api_key_equal(token, len, srv->admin_key, srv->admin_key_len)) return BSP_OK;
    if (api_key_equal(token, len, srv->write_key, srv->write_key_len))
        return bsp_error_set(err, BSP_EFORBIDDEN, "", "the write key cannot use the admin API");
    return bsp_error_set(err, BSP_EAUTH, "", "wrong admin key");
}

/* --- small helpers ----------------------------------------------------------------- */

static enum MHD_Result reply_oom(api_req *req) {
    return api_reply_errorf(req, BSP_ENOMEM, "", "out of memory");
}

static enum MHD_Result reply_store_error(api_req *req, bsp_err rc) {
    return api_reply_errorf(req, rc, "", "store error (%s)", bsp_err_name(rc));
}

enum MHD_Result admin_reply_json(api_req *req, int status, const cJSON *item) {
    bsp_buf out = {0};
    if (json_write(&out, item) != BSP_OK) {
        bsp_buf_free(&out);
        return reply_oom(req);
    }
    return api_reply_buf(req, status, &out);
}

/* Parses a decimal query value in [lo, hi]; *out keeps dflt when absent. */
static bsp_err query_u64(api_req *req, const char *name, uint64_t lo, uint64_t hi, uint64_t *out,
                         bsp_error *err) {
    char text[32];
    enum api_query_result q = api_query(req, name, text, sizeof text);
    if (q == QUERY_ABSENT) return BSP_OK;
    char *end = text;
    errno = 0;
    unsigned long long v =
        q == QUERY_FOUND && text[0] >= '0' && text[0] <= '9' ? strtoull(text, &end, 10) : 0;
    if (q != QUERY_FOUND || end == text || *end || errno || v < lo || v > hi)
        return bsp_error_set(err, BSP_EINVAL, name, "%s must be a whole number from %llu to %llu",
                             name, (unsigned long long)lo, (unsigned long long)hi);
    *out = v;
    return BSP_OK;
}

static const char *body_text(api_req *req) {
    return req->body.data ? req->body.data : "";
}

/* Writes one stored event with its sequence number first:
 * {"seq":N, ...the stored object...}. */
static bsp_err write_seq_event(bsp_buf *out, uint64_t seq, bsp_slice json) {
    size_t i = 0;
    while (i < json.len && (json.data[i] == ' ' || json.data[i] == '\n'))
        i++;
    if (i == json.len || json.data[i] != '{') {
        if (bsp_buf_printf(out, "{\"seq\":%llu,\"event\":", (unsigned long long)seq))
            return BSP_ENOMEM;
        if (bsp_buf_append(out, json.data, json.len)) return BSP_ENOMEM;
        return bsp_buf_puts(out, "}");
    }
    i++;
    size_t j = i;
    while (j < json.len && (json.data[j] == ' ' || json.data[j] == '\n'))
        j++;
    bool empty = j < json.len && json.data[j] == '}';
    if (bsp_buf_printf(out, "{\"seq\":%llu%s", (unsigned long long)seq, empty ? "" : ","))
        return BSP_ENOMEM;
    return bsp_buf_append(out, json.data + i, json.len - i);
}

/* --- profiles -------------------------------------------------------------------------- */

static bsp_err id_check(api_req *req, bsp_error *err) {
    if (strlen(req->id) > BSP_ID_MAX_BYTES)
        return bsp_error_set(err, BSP_EINVAL, "id", "ids are at most %d bytes", BSP_ID_MAX_BYTES);
    return BSP_OK;
}

/* Resolves the path id and loads the profile in its public form. */
static bsp_err load_profile(bsp_txn *txn, const char *id, uint64_t *pid, cJSON **public_out,
                            bsp_error *err) {
    bsp_err rc = ingest_resolve(txn, id, pid);
    bsp_slice stored = {0};
    if (rc == BSP_OK) rc = store_profile_get(txn, *pid, &stored);
    if (rc == BSP_ENOTFOUND)
        return bsp_error_set(err, rc, "id", "no profile has this userId or anonymousId");
    if (rc != BSP_OK) return bsp_error_set(err, rc, "", "store error (%s)", bsp_err_name(rc));
    bsp_profile *profile = NULL;
    rc = profile_from_json(stored.data, stored.len, &profile);
    if (rc != BSP_OK) return bsp_error_set(err, BSP_EINTERNAL, "", "stored profile is unreadable");
    *public_out = profile_public_json(profile);
    profile_free(profile);
    if (!*public_out) return bsp_error_set(err, BSP_ENOMEM, "", "out of memory");
    return BSP_OK;
}

/* A read transaction that sees every event acknowledged before the request:
 * waits for the writer's next checkpoint (the server's writer makes events
 * durable in its write-ahead file and stores the log, profiles, timelines
 * and learnt products in checkpoints). */
bsp_err admin_read_begin(api_req *req, bsp_txn **txn) {
    if (api_ingest_acquire(req->srv)) {
        bsp_err rc = ingest_sync(req->srv->ingest);
        api_ingest_release(req->srv);
        if (rc) return rc;
    }
    return store_txn_begin(req->srv->store, false, txn);
}

static enum MHD_Result profile_get(api_req *req) {
    bsp_error err;
    bsp_txn *txn = NULL;
    bsp_err rc = admin_read_begin(req, &txn);
    if (rc != BSP_OK) return reply_store_error(req, rc);
    uint64_t pid;
    cJSON *profile = NULL;
    rc = load_profile(txn, req->id, &pid, &profile, &err);
    store_txn_abort(txn);
    if (rc != BSP_OK) return api_reply_error(req, &err);
    enum MHD_Result ret = admin_reply_json(req, 200, profile);
    cJSON_Delete(profile);
    return ret;
}

typedef struct events_page {
    bsp_buf *out;
    size_t count;
    size_t limit;
    uint64_t last_seq;
    bool more;
} events_page;

static bsp_err page_event(void *ctx, uint64_t seq, bsp_slice json) {
    events_page *page = ctx;
    if (page->count == page->limit) {
        page->more = true;
        return BSP_OK;
    }
    if (page->count && bsp_buf_puts(page->out, ",")) return BSP_ENOMEM;
    page->count++;
    page->last_seq = seq;
    return write_seq_event(page->out, seq, json);
}

/* Appends "[...events...]" of pid, newest first, below before_seq. */
static bsp_err write_events(bsp_txn *txn, uint64_t pid, uint64_t before_seq, events_page *page) {
    if (bsp_buf_puts(page->out, "[")) return BSP_ENOMEM;
    size_t ask = page->limit == SIZE_MAX ? SIZE_MAX : page->limit + 1;
    bsp_err rc = store_profile_events(txn, pid, before_seq, ask, page_event, page);
    if (rc == BSP_OK) rc = bsp_buf_puts(page->out, "]");
    return rc;
}

static bsp_err profile_events_body(api_req *req, bsp_txn *txn, bsp_buf *out, bsp_error *err) {
    uint64_t limit = PAGE_DEFAULT, cursor = UINT64_MAX;
    if (query_u64(req, "limit", 1, PAGE_MAX, &limit, err)) return err->code;
    if (query_u64(req, "cursor", 0, UINT64_MAX - 1, &cursor, err)) return err->code;
    uint64_t pid;
    bsp_err rc = ingest_resolve(txn, req->id, &pid);
    if (rc == BSP_ENOTFOUND)
        return bsp_error_set(err, rc, "id", "no profile has this userId or anonymousId");
    if (rc != BSP_OK) return bsp_error_set(err, rc, "", "store error (%s)", bsp_err_name(rc));
    events_page page = {.out = out, .limit = (size_t)limit};
    rc = bsp_buf_puts(out, "{\"events\":");
    if (rc == BSP_OK) rc = write_events(txn, pid, cursor, &page);
    if (rc == BSP_OK && page.more)
        rc = bsp_buf_printf(out, ",\"next_cursor\":\"%llu\"}", (unsigned long long)page.last_seq);
    else if (rc == BSP_OK)
        rc = bsp_buf_puts(out, ",\"next_cursor\":null}");
    if (rc != BSP_OK)
        return bsp_error_set(err, rc, "", "could not list events (%s)", bsp_err_name(rc));
    return BSP_OK;
}

static enum MHD_Result profile_events(api_req *req) {
    bsp_error err;
    bsp_txn *txn = NULL;
    bsp_err rc = admin_read_begin(req, &txn);
    if (rc != BSP_OK) return reply_store_error(req, rc);
    bsp_buf out = {0};
    rc = profile_events_body(req, txn, &out, &err);
    store_txn_abort(txn);
    if (rc != BSP_OK) {
        bsp_buf_free(&out);
        return api_reply_error(req, &err);
    }
    return api_reply_buf(req, 200, &out);
}

/* {"exported_at", "profile", "events" (all, newest first)} in one snapshot. */
static bsp_err profile_export_body(api_req *req, bsp_txn *txn, bsp_buf *out, bsp_error *err) {
    uint64_t pid;
    cJSON *profile = NULL;
    if (load_profile(txn, req->id, &pid, &profile, err) != BSP_OK) return err->code;
    char now[32];
    bsp_time_format(bsp_now_ms(), now, sizeof now);
    bsp_err rc = bsp_buf_printf(out, "{\"exported_at\":\"%s\",\"profile\":", now);
    if (rc == BSP_OK) rc = json_write(out, profile);
    cJSON_Delete(profile);
    events_page page = {.out = out, .limit = SIZE_MAX};
    if (rc == BSP_OK) rc = bsp_buf_puts(out, ",\"events\":");
    if (rc == BSP_OK) rc = write_events(txn, pid, UINT64_MAX, &page);
    if (rc == BSP_OK) rc = bsp_buf_puts(out, "}");
    if (rc != BSP_OK) return bsp_error_set(err, rc, "", "could not export (%s)", bsp_err_name(rc));
    return BSP_OK;
}

static enum MHD_Result profile_export(api_req *req) {
    bsp_error err;
    bsp_txn *txn = NULL;
    bsp_err rc = admin_read_begin(req, &txn);
    if (rc != BSP_OK) return reply_store_error(req, rc);
    bsp_buf out = {0};
    rc = profile_export_body(req, txn, &out, &err);
    store_txn_abort(txn);
    if (rc != BSP_OK) {
        bsp_buf_free(&out);
        return api_reply_error(req, &err);
    }
    return api_reply_buf(req, 200, &out);
}

static enum MHD_Result profile_delete(api_req *req) {
    api_server *srv = req->srv;
    if (!api_ingest_acquire(srv))
        return api_reply_errorf(req, BSP_EUNAVAIL, "", "the server is shutting down");
    uint64_t deleted = 0;
    bsp_err rc = ingest_erase_profile(srv->ingest, req->id, &deleted);
    api_ingest_release(srv);
    if (rc == BSP_ENOTFOUND)
        return api_reply_errorf(req, rc, "id", "no profile has this userId or anonymousId");
    if (rc != BSP_OK) return reply_store_error(req, rc);
    bsp_buf out = {0};
    if (bsp_buf_printf(&out, "{\"deleted\":true,\"events_deleted\":%llu}",
                       (unsigned long long)deleted)) {
        bsp_buf_free(&out);
        return reply_oom(req);
    }
    return api_reply_buf(req, 200, &out);
}

static enum MHD_Result profile_route(api_req *req) {
    bsp_error err;
    if (id_check(req, &err) != BSP_OK) return api_reply_error(req, &err);
    switch (req->route) {
    case ROUTE_ADMIN_PROFILE_EVENTS:
        return profile_events(req);
    case ROUTE_ADMIN_PROFILE_EXPORT:
        return profile_export(req);
    default:
        return req->method == METHOD_DELETE ? profile_delete(req) : profile_get(req);
    }
}

/* --- stats ------------------------------------------------------------------------------------ */

static enum MHD_Result stats_get(api_req *req) {
    bsp_txn *txn = NULL;
    bsp_err rc = admin_read_begin(req, &txn);
    if (rc != BSP_OK) return reply_store_error(req, rc);
    bsp_store_stats stats;
    memset(&stats, 0, sizeof stats);
    rc = store_stats(txn, &stats);
    store_txn_abort(txn);
    if (rc != BSP_OK) return reply_store_error(req, rc);
    bsp_buf out = {0};
    if (bsp_buf_printf(&out,
                       "{\"profiles\":%llu,\"events\":%llu,\"products\":%llu,"
                       "\"identities\":%llu,\"last_seq\":%llu}",
                       (unsigned long long)stats.profiles, (unsigned long long)stats.events,
                       (unsigned long long)stats.products, (unsigned long long)stats.identities,
                       (unsigned long long)stats.last_seq)) {
        bsp_buf_free(&out);
        return reply_oom(req);
    }
    return api_reply_buf(req, 200, &out);
}

/* --- products, one at a time -------------------------------------------------------------- */

static enum MHD_Result product_get(api_req *req) {
    bsp_txn *txn = NULL;
    bsp_err rc = admin_read_begin(req, &txn); /* products learnt from events included */
    if (rc != BSP_OK) return reply_store_error(req, rc);
    bsp_slice stored = {0};
    bsp_buf out = {0};
    rc = store_product_get(txn, req->id, &stored);
    if (rc == BSP_OK && bsp_buf_append(&out, stored.data, stored.len)) rc = BSP_ENOMEM;
    store_txn_abort(txn);
    if (rc == BSP_OK) return api_reply_buf(req, 200, &out);
    bsp_buf_free(&out);
    if (rc == BSP_ENOTFOUND) return api_reply_errorf(req, rc, "id", "no product has this id");
    return reply_store_error(req, rc);
}

static enum MHD_Result product_put(api_req *req) {
    bsp_error err;
    cJSON *body = json_parse(body_text(req), req->body.len, BSP_JSON_MAX_DEPTH, &err);
    if (!body) return api_reply_error(req, &err);
    cJSON *product = NULL;
    bsp_err rc = catalog_product_from_json(body, req->id, bsp_now_ms(), &product, &err);
    cJSON_Delete(body);
    if (rc != BSP_OK) return api_reply_error(req, &err);
    if (!api_ingest_acquire(req->srv)) {
        cJSON_Delete(product);
        return api_reply_errorf(req, BSP_EUNAVAIL, "", "the server is shutting down");
    }
    rc = ingest_put_products(req->srv->ingest, &product, 1);
    api_ingest_release(req->srv);
    enum MHD_Result ret =
        rc == BSP_OK ? admin_reply_json(req, 200, product) : reply_store_error(req, rc);
    cJSON_Delete(product);
    return ret;
}

typedef struct product_del_job {
    const char *id;
    bool found;
} product_del_job;

/* Writer thread. Never fails for a missing product, so that a 404 does not
 * abort the transaction other work shares. */
static bsp_err product_del_run(bsp_ingest *ing, bsp_txn *txn, void *arg) {
    (void)ing;
    product_del_job *job = arg;
    bsp_slice stored;
    bsp_err rc = store_product_get(txn, job->id, &stored);
    if (rc == BSP_ENOTFOUND) return BSP_OK;
    if (rc != BSP_OK) return rc;
    job->found = true;
    return store_product_del(txn, job->id);
}

static enum MHD_Result product_delete(api_req *req) {
    if (!api_ingest_acquire(req->srv))
        return api_reply_errorf(req, BSP_EUNAVAIL, "", "the server is shutting down");
    product_del_job job = {.id = req->id};
    bsp_err rc = ingest_run_job(req->srv->ingest, product_del_run, &job);
    api_ingest_release(req->srv);
    if (rc != BSP_OK) return reply_store_error(req, rc);
    if (!job.found) return api_reply_errorf(req, BSP_ENOTFOUND, "id", "no product has this id");
    return api_reply_static(req, 200, "{\"deleted\":true}");
}

static enum MHD_Result product_route(api_req *req) {
    if (strlen(req->id) > BSP_PRODUCT_ID_MAX)
        return api_reply_errorf(req, BSP_EINVAL, "id", "product ids are at most %d bytes",
                                BSP_PRODUCT_ID_MAX);
    switch (req->method) {
    case METHOD_PUT:
        return product_put(req);
    case METHOD_DELETE:
        return product_delete(req);
    default:
        return product_get(req);
    }
}

/* --- products, listed ----------------------------------------------------------------------- */

typedef struct products_page {
    bsp_buf *out;
    const char *after; /* cursor: list ids strictly greater */
    size_t after_len;
    size_t count;
    size_t limit;
    bsp_slice last_id;
    bool more;
} products_page;

static int id_compare(bsp_slice a, const char *b, size_t b_len) {
    size_t n = a.len < b_len ? a.len : b_len;
    int c = memcmp(a.data, b, n);
    if (c) return c;
    return a.len < b_len ? -1 : a.len > b_len;
}

static bsp_err page_product(void *ctx, bsp_slice id, bsp_slice json) {
    products_page *page = ctx;
    if (page->after && id_compare(id, page->after, page->after_len) <= 0) return BSP_OK;
    if (page->count == page->limit) {
        page->more = true;
        return BSP_EEXISTS; /* stop the scan */
    }
    if (page->count && bsp_buf_puts(page->out, ",")) return BSP_ENOMEM;
    page->count++;
    page->last_id = id;
    return bsp_buf_append(page->out, json.data, json.len);
}

static bsp_err write_cursor(bsp_buf *out, const products_page *page) {
    if (!page->more) return bsp_buf_puts(out, ",\"next_cursor\":null}");
    char *id = strndup(page->last_id.data, page->last_id.len);
    if (!id) return BSP_ENOMEM;
    bsp_err rc = bsp_buf_puts(out, ",\"next_cursor\":");
    if (rc == BSP_OK) rc = json_write_string(out, id);
    if (rc == BSP_OK) rc = bsp_buf_puts(out, "}");
    free(id);
    return rc;
}

static bsp_err products_list_body(api_req *req, bsp_txn *txn, bsp_buf *out, bsp_error *err) {
    uint64_t limit = PAGE_DEFAULT;
    if (query_u64(req, "limit", 1, PAGE_MAX, &limit, err)) return err->code;
    char cursor[BSP_PRODUCT_ID_MAX * 3 + 1];
    enum api_query_result q = api_query(req, "cursor", cursor, sizeof cursor);
    if (q == QUERY_TOO_LONG) return bsp_error_set(err, BSP_EINVAL, "cursor", "cursor too long");
    products_page page = {.out = out, .limit = (size_t)limit};
    if (q == QUERY_FOUND) {
        page.after = cursor;
        page.after_len = strlen(cursor);
    }
    bsp_err rc = bsp_buf_puts(out, "{\"products\":[");
    if (rc == BSP_OK) rc = store_products_scan(txn, page_product, &page);
    if (rc == BSP_EEXISTS && page.more) rc = BSP_OK;
    if (rc == BSP_OK) rc = bsp_buf_puts(out, "]");
    if (rc == BSP_OK) rc = write_cursor(out, &page);
    if (rc != BSP_OK)
        return bsp_error_set(err, rc, "", "could not list products (%s)", bsp_err_name(rc));
    return BSP_OK;
}

static enum MHD_Result products_list(api_req *req) {
    bsp_error err;
    bsp_txn *txn = NULL;
    bsp_err rc = admin_read_begin(req, &txn);
    if (rc != BSP_OK) return reply_store_error(req, rc);
    bsp_buf out = {0};
    rc = products_list_body(req, txn, &out, &err);
    store_txn_abort(txn);
    if (rc != BSP_OK) {
        bsp_buf_free(&out);
        return api_reply_error(req, &err);
    }
    return api_reply_buf(req, 200, &out);
}

/* --- products, bulk JSONL upload ------------------------------------------------------------- */

typedef struct bulk_upload {
    api_server *srv;
    cJSON *pending[BULK_FLUSH];
    size_t pending_count;
    size_t upserted;
    size_t rejected;
    bsp_buf rejects; /* the listed ones, comma separated */
} bulk_upload;

static bsp_err bulk_flush(bulk_upload *bulk) {
    bsp_err rc = BSP_OK;
    if (bulk->pending_count)
        rc = ingest_put_products(bulk->srv->ingest, bulk->pending, bulk->pending_count);
    if (rc == BSP_OK) bulk->upserted += bulk->pending_count;
    for (size_t i = 0; i < bulk->pending_count; i++)
        cJSON_Delete(bulk->pending[i]);
    bulk->pending_count = 0;
    return rc;
}

static bsp_err bulk_reject(bulk_upload *bulk, size_t line, const bsp_error *err) {
    if (bulk->rejected++ >= BULK_REJECTS_MAX) return BSP_OK;
    bsp_buf *out = &bulk->rejects;
    if (out->len && bsp_buf_puts(out, ",")) return BSP_ENOMEM;
    if (bsp_buf_printf(out, "{\"line\":%zu,", line)) return BSP_ENOMEM;
    size_t brace = out->len;
    if (json_write_error(out, err)) return BSP_ENOMEM;
    memmove(out->data + brace, out->data + brace + 1, out->len - brace); /* drop "{" */
    out->len--;
    return BSP_OK;
}

static bool blank(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

/* One line: a product, or a reject. Fails only on memory or store errors. */
static bsp_err bulk_line(bulk_upload *bulk, const char *text, size_t len, size_t line,
                         int64_t now_ms) {
    bsp_error err;
    cJSON *obj = json_parse(text, len, BSP_JSON_MAX_DEPTH, &err);
    if (!obj) return bulk_reject(bulk, line, &err);
    cJSON *product = NULL;
    bsp_err rc = catalog_product_from_json(obj, NULL, now_ms, &product, &err);
    cJSON_Delete(obj);
    if (rc != BSP_OK) return bulk_reject(bulk, line, &err);
    bulk->pending[bulk->pending_count++] = product;
    return bulk->pending_count == BULK_FLUSH ? bulk_flush(bulk) : BSP_OK;
}

static bsp_err bulk_run(bulk_upload *bulk, const char *body, size_t len) {
    int64_t now_ms = bsp_now_ms();
    size_t line = 0;
    bsp_err rc = BSP_OK;
    for (size_t start = 0; start < len && rc == BSP_OK;) {
        const char *nl = memchr(body + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - body) : len;
        line++;
        if (!blank(body + start, end - start))
            rc = bulk_line(bulk, body + start, end - start, line, now_ms);
        start = end + 1;
    }
    bsp_err flushed = bulk_flush(bulk);
    return rc != BSP_OK ? rc : flushed;
}

static enum MHD_Result products_bulk(api_req *req) {
    bulk_upload *bulk = calloc(1, sizeof *bulk);
    if (!bulk) return reply_oom(req);
    bulk->srv = req->srv;
    if (!api_ingest_acquire(req->srv)) {
        free(bulk);
        return api_reply_errorf(req, BSP_EUNAVAIL, "", "the server is shutting down");
    }
    bsp_err rc = bulk_run(bulk, body_text(req), req->body.len);
    api_ingest_release(req->srv);
    bsp_buf out = {0};
    if (rc == BSP_OK)
        rc = bsp_buf_printf(&out, "{\"upserted\":%zu,\"rejected_count\":%zu,\"rejected\":[%s]}",
                            bulk->upserted, bulk->rejected,
                            bulk->rejects.data ? bulk->rejects.data : "");
    bsp_buf_free(&bulk->rejects);
    size_t upserted = bulk->upserted;
    free(bulk);
    if (rc == BSP_OK) return api_reply_buf(req, 200, &out);
    bsp_buf_free(&out);
    return api_reply_errorf(req, rc, "", "upload stopped after %zu products (%s)", upserted,
                            bsp_err_name(rc));
}

/* --- dispatch ----------------------------------------------------------------------------------
 */

enum MHD_Result admin_handle(api_req *req) {
    switch (req->route) {
    case ROUTE_ADMIN_PROFILE:
    case ROUTE_ADMIN_PROFILE_EVENTS:
    case ROUTE_ADMIN_PROFILE_EXPORT:
        return profile_route(req);
    case ROUTE_ADMIN_STATS:
        return stats_get(req);
    case ROUTE_ADMIN_PRODUCT:
        return product_route(req);
    case ROUTE_ADMIN_PRODUCTS:
        return req->method == METHOD_POST ? products_bulk(req) : products_list(req);
    default:
        return api_reply_errorf(req, BSP_ENOTFOUND, "", "no such endpoint");
    }
}
