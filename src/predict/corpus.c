/* corpus.c - the models' input: every profile's timeline read once from
 * the store into compact histories (24 bytes an event, 32 a product line),
 * so that features can be computed at any reference time without reading
 * the log again. Orders keep their net amount (properties.revenue, else
 * total, else the sum of price x quantity, as the profile's computed
 * revenue counts it) and their products; refunds and cancellations are
 * reversals; views, adds, removes and pages are kept for engagement. */
#include "predict/predict_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

bsp_err predict_grow(void **arr, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return BSP_OK;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *grown = realloc(*arr, n * size);
    if (!grown) return BSP_ENOMEM;
    *arr = grown;
    *cap = n;
    return BSP_OK;
}

/* The histories point into the shared arrays: re-aim them after a move. */
static void aim(const predict_corpus *c, predict_history *h) {
    h->events = c->events ? c->events + h->events_from : NULL;
    h->lines = c->lines ? c->lines + h->lines_from : NULL;
}

static void rebase(predict_corpus *c) {
    for (size_t i = 0; i < c->n; i++)
        aim(c, &c->profiles[i]);
}

bsp_err predict_corpus_begin(predict_corpus *c, uint64_t pid, bool identified) {
    bsp_err rc = predict_grow((void **)&c->profiles, &c->cap, c->n + 1, sizeof *c->profiles);
    if (rc != BSP_OK) return rc;
    predict_history *h = &c->profiles[c->n++];
    *h = (predict_history){
        .pid = pid, .identified = identified, .events_from = c->n_events, .lines_from = c->n_lines};
    aim(c, h);
    return BSP_OK;
}

static bsp_err push_event(predict_corpus *c, int64_t ts, double amount, predict_kind kind) {
    predict_event *old = c->events;
    bsp_err rc =
        predict_grow((void **)&c->events, &c->cap_events, c->n_events + 1, sizeof *c->events);
    if (rc != BSP_OK) return rc;
    if (c->events != old) rebase(c);
    c->events[c->n_events++] = (predict_event){ts, amount, (uint8_t)kind};
    c->profiles[c->n - 1].n_events++;
    return BSP_OK;
}

/* product_id, else id, else sku (numbers as text), hashed; 0 if none. */
static uint64_t product_hash(const cJSON *p) {
    static const char *const keys[] = {"product_id", "id", "sku"};
    for (size_t i = 0; i < 3; i++) {
        const cJSON *v = json_member(p, keys[i]);
        if (cJSON_IsString(v) && v->valuestring[0])
            return bsp_hash64(v->valuestring, strlen(v->valuestring)) | 1;
        if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
            char buf[64];
            int len = snprintf(buf, sizeof buf, "%.15g", v->valuedouble);
            return bsp_hash64(buf, (size_t)len) | 1;
        }
    }
    return 0;
}

static bsp_err push_line(predict_corpus *c, int64_t ts, const cJSON *product, bool bought) {
    uint64_t id = product_hash(product);
    if (!id) return BSP_OK;
    const char *cat = json_get_string(product, "category");
    predict_line *old = c->lines;
    bsp_err rc = predict_grow((void **)&c->lines, &c->cap_lines, c->n_lines + 1, sizeof *c->lines);
    if (rc != BSP_OK) return rc;
    if (c->lines != old) rebase(c);
    c->lines[c->n_lines++] =
        (predict_line){ts, id, cat && *cat ? bsp_hash64(cat, strlen(cat)) | 1 : 0, bought};
    c->profiles[c->n - 1].n_lines++;
    return BSP_OK;
}

static double number_or(const cJSON *obj, const char *key, double dflt) {
    const cJSON *v = json_member(obj, key);
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : dflt;
}

/* properties.revenue, else total, else the sum of price x quantity. */
static double order_amount(const cJSON *props) {
    const cJSON *v = json_member(props, "revenue");
    if (!cJSON_IsNumber(v)) v = json_member(props, "total");
    if (cJSON_IsNumber(v)) return isfinite(v->valuedouble) ? v->valuedouble : 0;
    double sum = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, json_get_array(props, "products")) {
        sum += number_or(p, "price", 0) * number_or(p, "quantity", 1);
    }
    return sum;
}

static predict_kind track_kind(const char *name) {
    if (strcmp(name, "Order Completed") == 0) return PREDICT_ORDER;
    if (strcmp(name, "Order Refunded") == 0 || strcmp(name, "Order Cancelled") == 0)
        return PREDICT_REVERSAL;
    if (strcmp(name, "Product Viewed") == 0) return PREDICT_VIEW;
    if (strcmp(name, "Product Added") == 0) return PREDICT_ADD;
    if (strcmp(name, "Product Removed") == 0) return PREDICT_REMOVE;
    return PREDICT_OTHER;
}

static bsp_err add_track(predict_corpus *c, const cJSON *ev, int64_t ts) {
    const char *name = json_get_string(ev, "event");
    if (!name) return BSP_OK;
    const cJSON *props = json_get_object(ev, "properties");
    predict_kind kind = track_kind(name);
    if (kind == PREDICT_VIEW) {
        bsp_err rc = push_line(c, ts, props, false);
        return rc ? rc : push_event(c, ts, 0, kind);
    }
    if (kind == PREDICT_ADD || kind == PREDICT_REMOVE)
        return push_event(c, ts, number_or(props, "quantity", 1), kind);
    if (kind != PREDICT_ORDER)
        return push_event(c, ts, kind == PREDICT_REVERSAL ? order_amount(props) : 0, kind);
    const cJSON *p;
    cJSON_ArrayForEach(p, json_get_array(props, "products")) {
        bsp_err rc = push_line(c, ts, p, true);
        if (rc != BSP_OK) return rc;
    }
    return push_event(c, ts, order_amount(props), kind);
}

bsp_err predict_corpus_add(predict_corpus *c, const cJSON *ev) {
    if (!c->n) return BSP_EINVAL;
    const char *type = json_get_string(ev, "type"), *when = json_get_string(ev, "timestamp");
    int64_t ts;
    if (!type || !when || !bsp_time_parse(when, &ts)) return BSP_OK;
    if (json_get_string(ev, "userId")) c->profiles[c->n - 1].identified = true;
    if (strcmp(type, "page") == 0 || strcmp(type, "screen") == 0)
        return push_event(c, ts, 0, PREDICT_PAGE);
    return strcmp(type, "track") == 0 ? add_track(c, ev, ts) : BSP_OK;
}

static int event_order(const void *a, const void *b) {
    const predict_event *x = a, *y = b;
    return x->ts_ms < y->ts_ms ? -1 : x->ts_ms > y->ts_ms;
}

static int line_order(const void *a, const void *b) {
    const predict_line *x = a, *y = b;
    return x->ts_ms < y->ts_ms ? -1 : x->ts_ms > y->ts_ms;
}

void predict_corpus_end(predict_corpus *c) {
    if (!c->n) return;
    predict_history *h = &c->profiles[c->n - 1];
    if (h->n_lines) qsort(c->lines + h->lines_from, h->n_lines, sizeof *c->lines, line_order);
    if (!h->n_events) return;
    predict_event *ev = c->events + h->events_from;
    qsort(ev, h->n_events, sizeof *ev, event_order);
    if (c->first_ms == 0 || ev[0].ts_ms < c->first_ms) c->first_ms = ev[0].ts_ms;
    if (ev[h->n_events - 1].ts_ms > c->last_ms) c->last_ms = ev[h->n_events - 1].ts_ms;
}

void predict_corpus_free(predict_corpus *c) {
    free(c->profiles);
    free(c->events);
    free(c->lines);
    memset(c, 0, sizeof *c);
}

/* --- reading the store ------------------------------------------------------ */

typedef struct pid_list {
    uint64_t *pids;
    size_t n, cap;
} pid_list;

static bsp_err collect_pid(void *ctx, uint64_t pid, bsp_slice json) {
    (void)json;
    pid_list *l = ctx;
    bsp_err rc = predict_grow((void **)&l->pids, &l->cap, l->n + 1, sizeof *l->pids);
    if (rc == BSP_OK) l->pids[l->n++] = pid;
    return rc;
}

static bsp_err on_event(void *ctx, uint64_t seq, bsp_slice json) {
    (void)seq;
    cJSON *ev = cJSON_ParseWithLength(json.data, json.len);
    if (!ev) return BSP_OK; /* the log is the shop's: skip what does not parse */
    bsp_err rc = predict_corpus_add(ctx, ev);
    cJSON_Delete(ev);
    return rc;
}

static bool cancelled(const predict_ctl *ctl) {
    return ctl && ctl->cancel && atomic_load(ctl->cancel);
}

static void progress(const predict_ctl *ctl, const char *stage, size_t done, size_t total) {
    if (ctl && ctl->progress) ctl->progress(ctl->ctx, stage, done, total);
}

bsp_err predict_corpus_load(bsp_txn *txn, const predict_ctl *ctl, predict_corpus *out) {
    memset(out, 0, sizeof *out);
    pid_list l = {0};
    bsp_err rc = store_profiles_scan(txn, collect_pid, &l);
    for (size_t i = 0; i < l.n && rc == BSP_OK; i++) {
        rc = predict_corpus_begin(out, l.pids[i], false);
        if (rc == BSP_OK)
            rc = store_profile_events(txn, l.pids[i], UINT64_MAX, SIZE_MAX, on_event, out);
        predict_corpus_end(out);
        if ((i + 1) % 10000 == 0) {
            progress(ctl, "reading", i + 1, l.n);
            if (cancelled(ctl)) rc = BSP_EUNAVAIL;
        }
    }
    if (rc == BSP_OK) progress(ctl, "reading", l.n, l.n);
    free(l.pids);
    if (rc != BSP_OK) predict_corpus_free(out);
    return rc;
}
