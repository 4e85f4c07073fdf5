/* reco.c - the recommendation endpoints and the model service of the
 * server. POST /v1/recommendations and POST /v1/rank (write key, like the
 * collection calls) answer from the snapshot the holder publishes; the
 * visitor's profile is read without waiting for the writer. The service
 * loads the newest saved snapshot at start and, every train_interval_ms,
 * trains a new one on its own thread (after a checkpoint, in a read
 * transaction that never blocks the writer), saves it and swaps it in. */
#include "api/api_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json/json.h"
#include "profile/profile.h"
#include "reco/reco.h"

#define AFFINITY_LIST_MAX 512 /* --affinity-attributes, bytes */
#define SEGMENT_READ_CHUNK 4096

/* /metrics: requests by strategy (and rank), server time in buckets. */
#define REQ_RANK RECO_STRATEGY_COUNT
#define REQ_KINDS (RECO_STRATEGY_COUNT + 1)
#define LAT_BUCKETS 12
static const double lat_bounds_us[LAT_BUCKETS] = {50,   100,   250,   500,   1000,   2500,
                                                  5000, 10000, 25000, 50000, 100000, 250000};

/* --- the service -------------------------------------------------------------- */

struct reco_service {
    api_server *srv;
    reco_holder *holder;
    const char *data_dir;
    bsp_periodic *trainer; /* NULL when periodic training is off */
    /* affinities: the configured attribute names (pointers into attr_buf) */
    char attr_buf[AFFINITY_LIST_MAX];
    const char *attrs[RECO_AFF_ATTRS_MAX];
    size_t attr_count;
    _Atomic uint64_t requests[REQ_KINDS];
    _Atomic uint64_t lat_counts[LAT_BUCKETS + 1];
    _Atomic uint64_t lat_sum_us;
};

/* One training run: checkpoint, train in a read transaction, save, swap. */
static void train_once(void *arg, atomic_bool *stop) {
    (void)stop; /* one training is seconds: a stop waits for it */
    reco_service *rs = arg;
    api_server *srv = rs->srv;
    if (api_ingest_acquire(srv)) {
        ingest_sync(srv->ingest);
        api_ingest_release(srv);
    }
    bsp_txn *txn;
    if (store_txn_begin(srv->store, false, &txn) != BSP_OK) return;
    reco_snapshot *s = NULL;
    reco_train_stats st;
    bsp_err rc = reco_train(txn, NULL, &s, &st);
    store_txn_abort(txn);
    if (rc == BSP_OK && reco_snapshot_save(s, rs->data_dir) != BSP_OK)
        bsp_warn("reco: could not save the snapshot under %s/models", rs->data_dir);
    if (rc != BSP_OK) {
        bsp_warn("reco: training failed: %s", bsp_err_name(rc));
        return;
    }
    bsp_info("reco: snapshot %llu trained in %.2f s (%llu visitors, %llu products)",
             (unsigned long long)reco_snapshot_version(s), st.seconds, (unsigned long long)st.users,
             (unsigned long long)st.items);
    reco_holder_swap(rs->holder, s);
}

bsp_err reco_service_start(api_server *srv, const char *data_dir, uint64_t interval_ms,
                           const char *affinity_attributes) {
    reco_service *rs = calloc(1, sizeof *rs);
    if (!rs) return BSP_ENOMEM;
    int nattr =
        reco_affinity_attrs_parse(affinity_attributes ? affinity_attributes : RECO_AFFINITY_DEFAULT,
                                  rs->attr_buf, sizeof rs->attr_buf, rs->attrs, RECO_AFF_ATTRS_MAX);
    if (nattr < 0) {
        bsp_warn("reco: --affinity-attributes: at most %d names of under %d bytes",
                 RECO_AFF_ATTRS_MAX, RECO_AFF_TEXT_MAX);
        free(rs);
        return BSP_EINVAL;
    }
    rs->attr_count = (size_t)nattr;
    rs->srv = srv;
    rs->data_dir = data_dir;
    rs->holder = reco_holder_new();
    srv->reco = rs;
    if (!rs->holder) return BSP_ENOMEM;
    reco_snapshot *s = NULL;
    bsp_err rc = reco_snapshot_load_latest(data_dir, &s);
    if (rc == BSP_OK) {
        bsp_info("reco: loaded snapshot %llu (%zu products, %zu visitors)",
                 (unsigned long long)reco_snapshot_version(s), reco_snapshot_items(s),
                 reco_snapshot_users(s));
        reco_holder_swap(rs->holder, s);
    }
    if (interval_ms == 0) return BSP_OK;
    /* With nothing saved yet, the first training runs at once. */
    return bsp_periodic_start(rc == BSP_OK ? interval_ms : 0, interval_ms, train_once, rs,
                              &rs->trainer);
}

void reco_service_stop(api_server *srv) {
    reco_service *rs = srv->reco;
    if (!rs) return;
    bsp_periodic_stop(rs->trainer);
    rs->trainer = NULL;
}

void reco_service_close(api_server *srv) {
    reco_service *rs = srv->reco;
    if (!rs) return;
    reco_service_stop(srv);
    reco_holder_free(rs->holder);
    free(rs);
    srv->reco = NULL;
}

reco_holder *reco_service_holder(api_server *srv) {
    return srv->reco ? srv->reco->holder : NULL;
}

/* --- the visitor ------------------------------------------------------------------------- */

/* The visitor's profile (freshest copy, without waiting for the writer);
 * NULL for a visitor nobody knows yet. */
static const bsp_profile *load_visitor(api_req *req, const reco_body *b) {
    const char *ids[2] = {b->user_id, b->anonymous_id};
    static const char kinds[2] = {'u', 'a'};
    bsp_txn *txn;
    if (store_txn_begin(req->srv->store, false, &txn) != BSP_OK) return NULL;
    const bsp_profile *p = NULL; /* the thread's memoized copy: valid for this request */
    for (int i = 0; i < 2 && !p; i++) {
        uint64_t pid;
        if (!ids[i] || !api_ingest_acquire(req->srv)) continue;
        if (ingest_resolve_fresh(req->srv->ingest, txn, kinds[i], ids[i], &pid) == BSP_OK)
            ingest_profile_peek(req->srv->ingest, txn, pid, &p);
        api_ingest_release(req->srv);
    }
    store_txn_abort(txn);
    return p;
}

/* --- campaign product blocks ----------------------------------------------------------
 * decide_products_fn for the decider: a block {strategy, n, filters} on a
 * placement is answered by the recommendation module (the visitor's
 * profile folded in, the viewed product or the cart as the items of
 * item-to-item strategies), then the visitor's quiz answers leave out
 * products with another value of that attribute. Without a snapshot yet,
 * the decider's popularity fallback answers. */

#define BLOCK_OVERFETCH 3 /* ask for more so quiz answers can leave some out */

static bool block_fits_quiz(const cJSON *product, const cJSON *quiz) {
    const cJSON *attrs = json_get_object(product, "attributes");
    for (const cJSON *a = quiz ? quiz->child : NULL; a; a = a->next) {
        const char *have = json_get_string(attrs, a->string);
        if (!have) have = json_get_string(product, a->string);
        if (cJSON_IsString(a) && have && strcasecmp(have, a->valuestring) != 0) return false;
    }
    return true;
}

/* The block's filters in the decider's vocabulary (category, in_stock,
 * price_min, price_max), plus the product being viewed left out. */
static void block_filters(reco_request *req, const cJSON *block, const cJSON *context,
                          const char **category, const char **exclude) {
    const cJSON *f = json_get_object(block, "filters");
    reco_filters_init(&req->filters);
    *category = json_get_string(f, "category");
    if (*category) {
        req->filters.categories = category;
        req->filters.category_count = 1;
    }
    req->filters.in_stock = json_get_bool(f, "in_stock", false);
    req->filters.price_min = json_get_number(f, "price_min", -1);
    req->filters.price_max = json_get_number(f, "price_max", -1);
    req->filters.exclude_cart = json_get_bool(f, "exclude_cart", false);
    req->filters.exclude_purchased = json_get_bool(f, "exclude_purchased", false);
    *exclude = json_get_string(json_get_object(context, "product"), "id");
    if (*exclude) {
        req->filters.exclude_ids = exclude;
        req->filters.exclude_count = 1;
    }
}

static void block_item(cJSON *items, const char *id, const cJSON *product) {
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(items, o)) {
        cJSON_Delete(o);
        return;
    }
    cJSON_AddStringToObject(o, "id", id);
    static const char *const keys[] = {"name", "price", "currency", "image", "url", "category"};
    for (size_t i = 0; product && i < sizeof keys / sizeof keys[0]; i++) {
        const cJSON *v = json_member(product, keys[i]);
        if (v) cJSON_AddItemToObject(o, keys[i], cJSON_Duplicate(v, true));
    }
}

bsp_err reco_block_products(void *ctx, bsp_txn *txn, const bsp_profile *profile,
                            const cJSON *context, const cJSON *block, int n, cJSON *items) {
    api_server *srv = ctx;
    reco_holder *h = reco_service_holder(srv);
    reco_request req = {.strategy = RECO_PERSONALIZED, .seed = (uint64_t)bsp_now_ms()};
    const char *strategy = json_get_string(block, "strategy");
    if (strategy && !reco_strategy_parse(strategy, &req.strategy)) req.strategy = RECO_PERSONALIZED;
    const char *category = NULL, *exclude = NULL;
    block_filters(&req, block, context, &category, &exclude);
    if (exclude) { /* the viewed product anchors similar / together blocks */
        req.items = &exclude;
        req.item_count = 1;
    }
    size_t want = n > 0 ? (size_t)n : 1;
    req.n = want * BLOCK_OVERFETCH > RECO_MAX_N ? RECO_MAX_N : want * BLOCK_OVERFETCH;
    reco_result r = {0};
    bsp_err rc = h ? reco_for_profile(h, profile, &req, &r) : BSP_EUNAVAIL;
    if (rc == BSP_EUNAVAIL)
        return decide_popular_products(srv->decider, txn, profile, context, block, n, items);
    if (rc) return rc;
    const cJSON *quiz = json_get_object(profile_traits(profile), "quiz");
    size_t added = 0;
    for (size_t i = 0; i < r.count && added < want; i++) {
        const cJSON *product = reco_product(r.held, r.items[i].product_id);
        if (!block_fits_quiz(product, quiz)) continue;
        block_item(items, r.items[i].product_id, product);
        added++;
    }
    reco_result_release(&r);
    if (added == 0) /* everything left out: popularity with the same filters */
        return decide_popular_products(srv->decider, txn, profile, context, block, n, items);
    return BSP_OK;
}

/* --- answers ------------------------------------------------------------------------------ */

static void add_product_fields(cJSON *o, const cJSON *product) {
    static const char *const keys[] = {"name", "category", "brand", "price", "url", "image"};
    for (size_t i = 0; product && i < sizeof keys / sizeof keys[0]; i++) {
        const cJSON *v = json_member(product, keys[i]);
        if (v) cJSON_AddItemToObject(o, keys[i], cJSON_Duplicate(v, true));
    }
}

static void add_item_json(cJSON *items, const reco_snapshot *s, const char *id, double score,
                          const char *source) {
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(items, o)) {
        cJSON_Delete(o);
        return;
    }
    cJSON_AddStringToObject(o, "product_id", id);
    cJSON_AddNumberToObject(o, "score", score);
    cJSON_AddStringToObject(o, "source", source);
    add_product_fields(o, reco_product(s, id));
}

static cJSON *result_json(const reco_snapshot *s, const reco_result *r, const char *strategy) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "strategy", strategy);
    cJSON_AddNumberToObject(root, "model_version", (double)reco_snapshot_version(s));
    cJSON *items = cJSON_AddArrayToObject(root, "items");
    for (size_t i = 0; items && i < r->count; i++)
        add_item_json(items, s, r->items[i].product_id, r->items[i].score,
                      reco_strategy_name(r->items[i].source));
    return root;
}

/* "bundle": {"product_ids", "price", "price_complete", "currency"} */
static void add_bundle_json(cJSON *root, const reco_bundle *bd) {
    cJSON *o = cJSON_AddObjectToObject(root, "bundle");
    cJSON *ids = o ? cJSON_AddArrayToObject(o, "product_ids") : NULL;
    for (size_t i = 0; ids && i < bd->count; i++)
        cJSON_AddItemToArray(ids, cJSON_CreateString(bd->product_ids[i]));
    if (!o) return;
    cJSON_AddNumberToObject(o, "price", round(bd->price * 100) / 100);
    cJSON_AddBoolToObject(o, "price_complete", bd->price_complete);
    if (bd->currency) cJSON_AddStringToObject(o, "currency", bd->currency);
}

static enum MHD_Result reply_and_free(api_req *req, cJSON *root) {
    enum MHD_Result ret = root ? admin_reply_json(req, 200, root)
                               : api_reply_errorf(req, BSP_ENOMEM, "", "out of memory");
    cJSON_Delete(root);
    return ret;
}

/* --- the visitor as a request sees them --------------------------------------------------- */

typedef struct visitor_ctx {
    const bsp_profile *p; /* borrowed: the thread's memoized copy */
    cJSON *computed;
    reco_visitor_buf vb;
    reco_affinities aff;
} visitor_ctx;

/* Profile, latest items and the configured attributes' affinities. */
static void visitor_load(api_req *req, const reco_body *b, const reco_snapshot *s,
                         visitor_ctx *vc) {
    const reco_service *rs = req->srv->reco;
    vc->p = load_visitor(req, b);
    vc->computed = vc->p ? profile_computed_json(vc->p) : NULL;
    reco_visitor_from_computed(vc->p ? profile_pid(vc->p) : 0, vc->computed, &vc->vb);
    const cJSON *quiz = vc->p ? json_get_object(profile_traits(vc->p), "quiz") : NULL;
    reco_affinities_learn(s, &vc->vb.v, quiz, rs->attrs, rs->attr_count, &vc->aff);
    vc->vb.v.affinities = &vc->aff;
}

static void visitor_free(visitor_ctx *vc) {
    cJSON_Delete(vc->computed);
    free(vc);
}

/* --- per-segment popularity: the members read at request time ---------------------------- */

typedef struct pid_list {
    uint64_t *pids;
    size_t n, cap;
} pid_list;

static bsp_err take_member(void *ctx, uint64_t pid) {
    pid_list *l = ctx;
    if (l->n == RECO_SEGMENT_MAX) return BSP_ETOOBIG; /* enough: stop the scan */
    uint64_t *grown = bsp_grow(l->pids, &l->cap, l->n, sizeof *grown, SEGMENT_READ_CHUNK);
    if (!grown) return BSP_ENOMEM;
    l->pids = grown;
    l->pids[l->n++] = pid;
    return BSP_OK;
}

/* The first RECO_SEGMENT_MAX members (by profile id) of the request's segment. */
static bsp_err segment_members(api_req *req, reco_body *b, pid_list *l, bsp_error *err) {
    if (!b->segment) return BSP_OK;
    if (!req->srv->segments || !segments_exists(req->srv->segments, b->segment))
        return bsp_error_set(err, BSP_ENOTFOUND, "segment", "no segment '%.64s'", b->segment);
    bsp_txn *txn;
    bsp_err rc = store_txn_begin(req->srv->store, false, &txn);
    if (rc != BSP_OK) return bsp_error_set(err, rc, "", "could not read the segment");
    rc = store_members_scan(txn, b->segment, 0, take_member, l);
    store_txn_abort(txn);
    if (rc == BSP_ETOOBIG) rc = BSP_OK;
    if (rc != BSP_OK) return bsp_error_set(err, rc, "", "could not read the segment");
    b->req.segment_pids = l->pids;
    b->req.segment_count = l->n;
    return BSP_OK;
}

/* --- endpoints ------------------------------------------------------------------------------ */

static void count_request(reco_service *rs, size_t kind, uint64_t t0) {
    double us = (double)(bsp_mono_ns() - t0) / 1e3;
    int b = 0;
    while (b < LAT_BUCKETS && us > lat_bounds_us[b])
        b++;
    atomic_fetch_add_explicit(&rs->requests[kind], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rs->lat_counts[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rs->lat_sum_us, (uint64_t)us, memory_order_relaxed);
}

/* strategy "bundle": the anchor and its complements; bought_together
 * answers carry the same bundle beside their list. */
static cJSON *bundle_answer(const reco_snapshot *s, reco_body *b, bsp_error *err) {
    reco_bundle bd;
    size_t max = b->req.n < RECO_BUNDLE_MAX ? b->req.n : RECO_BUNDLE_MAX;
    bsp_err rc = reco_bundle_for(s, b->items[0], &b->req.filters, max, &bd);
    if (rc == BSP_ENOTFOUND) {
        bsp_error_set(err, BSP_ENOTFOUND, "items", "no product '%.64s' in the model", b->items[0]);
        return NULL;
    }
    cJSON *root = rc == BSP_OK ? cJSON_CreateObject() : NULL;
    if (!root) {
        bsp_error_set(err, rc ? rc : BSP_ENOMEM, "", "could not build the bundle");
        return NULL;
    }
    cJSON_AddStringToObject(root, "strategy", "bundle");
    cJSON_AddNumberToObject(root, "model_version", (double)reco_snapshot_version(s));
    cJSON *items = cJSON_AddArrayToObject(root, "items");
    for (size_t i = 0; items && i < bd.count; i++)
        add_item_json(items, s, bd.product_ids[i], i ? 1 : 0, i ? "bought_together" : "anchor");
    add_bundle_json(root, &bd);
    return root;
}

static cJSON *list_answer(const reco_snapshot *s, reco_body *b, bsp_error *err) {
    reco_result r;
    bsp_err rc = reco_recommend(s, &b->req, &r);
    if (rc != BSP_OK) {
        bsp_error_set(err, rc, "", "could not recommend (%s)", bsp_err_name(rc));
        return NULL;
    }
    cJSON *root = result_json(s, &r, reco_strategy_name(b->req.strategy));
    reco_bundle bd;
    if (root && b->req.strategy == RECO_BOUGHT_TOGETHER && b->req.item_count &&
        reco_bundle_for(s, b->items[0], &b->req.filters, RECO_BUNDLE_MAX, &bd) == BSP_OK)
        add_bundle_json(root, &bd);
    if (root && b->segment) cJSON_AddStringToObject(root, "segment", b->segment);
    return root;
}

static enum MHD_Result recommend(api_req *req, reco_body *b, reco_snapshot *s) {
    uint64_t t0 = bsp_mono_ns();
    bsp_error err;
    bsp_error_clear(&err);
    pid_list members = {0};
    visitor_ctx *vc = calloc(1, sizeof *vc);
    if (!vc) return api_reply_errorf(req, BSP_ENOMEM, "", "out of memory");
    bsp_err rc = segment_members(req, b, &members, &err);
    cJSON *root = NULL;
    if (rc == BSP_OK) {
        visitor_load(req, b, s, vc);
        b->req.visitor = &vc->vb.v;
        b->req.seed = (uint64_t)bsp_now_ms();
        root = b->bundle ? bundle_answer(s, b, &err) : list_answer(s, b, &err);
        cJSON *aff = root ? reco_affinities_json(&vc->aff) : NULL;
        if (aff) cJSON_AddItemToObject(root, "affinities", aff);
    }
    visitor_free(vc);
    free(members.pids);
    if (!root) return err.code ? api_reply_error(req, &err) : reply_and_free(req, NULL);
    count_request(req->srv->reco, b->req.strategy, t0);
    return reply_and_free(req, root);
}

static cJSON *rank_json(const reco_snapshot *s, const reco_body *b, const size_t *order,
                        const double *scores) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddNumberToObject(root, "model_version", (double)reco_snapshot_version(s));
    cJSON *items = cJSON_AddArrayToObject(root, "items");
    for (size_t i = 0; items && i < b->req.item_count; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(items, o)) {
            cJSON_Delete(o);
            break;
        }
        cJSON_AddStringToObject(o, "product_id", b->items[order[i]]);
        cJSON_AddNumberToObject(o, "score", scores[i]);
    }
    return root;
}

static enum MHD_Result rank(api_req *req, reco_body *b, reco_snapshot *s) {
    uint64_t t0 = bsp_mono_ns();
    size_t count = b->req.item_count;
    visitor_ctx *vc = calloc(1, sizeof *vc);
    size_t *order = malloc((count + 1) * sizeof *order);
    double *scores = malloc((count + 1) * sizeof *scores);
    bsp_err rc = vc && order && scores ? BSP_OK : BSP_ENOMEM;
    cJSON *root = NULL;
    if (rc == BSP_OK) {
        visitor_load(req, b, s, vc);
        rc = reco_rank(s, &vc->vb.v, b->items, count, 0, order, scores);
    }
    if (rc == BSP_OK && (root = rank_json(s, b, order, scores))) {
        cJSON *aff = reco_affinities_json(&vc->aff);
        if (aff) cJSON_AddItemToObject(root, "affinities", aff);
    }
    free(order);
    free(scores);
    if (vc) visitor_free(vc);
    if (rc != BSP_OK) return api_reply_errorf(req, rc, "", "could not rank (%s)", bsp_err_name(rc));
    count_request(req->srv->reco, REQ_RANK, t0);
    return reply_and_free(req, root);
}

enum MHD_Result reco_handle(api_req *req) {
    reco_body *b = malloc(sizeof *b);
    if (!b) return api_reply_errorf(req, BSP_ENOMEM, "", "out of memory");
    bsp_error err, key_err;
    bool is_rank = req->route == ROUTE_RANK;
    bsp_err rc = reco_body_parse(req->body.data, req->body.len, is_rank, b, &err);
    /* a wrong key is told before a bad field, as for the other endpoints */
    if (b->json && collect_check_key(req, b->write_key, &key_err) != BSP_OK) {
        err = key_err;
        rc = key_err.code;
    }
    reco_snapshot *s = NULL;
    reco_holder *h = reco_service_holder(req->srv);
    if (!rc && !(h && (s = reco_holder_acquire(h))))
        rc = bsp_error_set(&err, BSP_EUNAVAIL, "",
                           "no recommendation model yet (bespoke train, or the server's "
                           "periodic training)");
    enum MHD_Result ret;
    if (rc)
        ret = api_reply_error(req, &err);
    else if (!is_rank)
        ret = recommend(req, b, s);
    else
        ret = rank(req, b, s);
    reco_snapshot_unref(s);
    reco_body_free(b);
    free(b);
    return ret;
}

/* --- /metrics ------------------------------------------------------------------------------ */

static bsp_err write_requests(reco_service *rs, bsp_buf *out) {
    bsp_err rc = bsp_buf_puts(out, "# HELP bespoke_reco_requests_total Recommendation requests "
                                   "answered, by strategy (rank for /v1/rank).\n"
                                   "# TYPE bespoke_reco_requests_total counter\n");
    for (int k = 0; k < REQ_KINDS && rc == BSP_OK; k++) {
        uint64_t n = atomic_load_explicit(&rs->requests[k], memory_order_relaxed);
        const char *name = k == REQ_RANK ? "rank" : reco_strategy_name((reco_strategy)k);
        if (n)
            rc = bsp_buf_printf(out, "bespoke_reco_requests_total{strategy=\"%s\"} %llu\n", name,
                                (unsigned long long)n);
    }
    return rc;
}

static bsp_err write_latency(reco_service *rs, bsp_buf *out) {
    static const char name[] = "bespoke_reco_latency_seconds";
    bsp_err rc = bsp_buf_printf(out,
                                "# HELP %s Server time of one recommendation or rank request, "
                                "from the parsed body to the answer built.\n# TYPE %s histogram\n",
                                name, name);
    uint64_t cumulative = 0;
    for (int i = 0; i <= LAT_BUCKETS && rc == BSP_OK; i++) {
        cumulative += atomic_load_explicit(&rs->lat_counts[i], memory_order_relaxed);
        if (i < LAT_BUCKETS)
            rc = bsp_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, lat_bounds_us[i] / 1e6,
                                (unsigned long long)cumulative);
    }
    double sum = (double)atomic_load_explicit(&rs->lat_sum_us, memory_order_relaxed) / 1e6;
    if (rc == BSP_OK)
        rc = bsp_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
                            (unsigned long long)cumulative, name, sum, name,
                            (unsigned long long)cumulative);
    return rc;
}

static bsp_err write_snapshot(reco_service *rs, bsp_buf *out) {
    reco_snapshot *s = reco_holder_acquire(rs->holder);
    uint64_t version = s ? reco_snapshot_version(s) : 0;
    double age = s ? (double)(bsp_now_ms() - reco_snapshot_created_ms(s)) / 1e3 : 0;
    uint64_t bytes = s ? reco_snapshot_bytes(s) : 0;
    reco_snapshot_unref(s);
    return bsp_buf_printf(out,
                          "# HELP bespoke_reco_snapshot_version Version of the model snapshot "
                          "served (0: none yet).\n# TYPE bespoke_reco_snapshot_version gauge\n"
                          "bespoke_reco_snapshot_version %llu\n"
                          "# HELP bespoke_reco_snapshot_age_seconds Time since that snapshot "
                          "was trained.\n# TYPE bespoke_reco_snapshot_age_seconds gauge\n"
                          "bespoke_reco_snapshot_age_seconds %.3f\n"
                          "# HELP bespoke_reco_snapshot_bytes Memory the snapshot holds, "
                          "roughly.\n# TYPE bespoke_reco_snapshot_bytes gauge\n"
                          "bespoke_reco_snapshot_bytes %llu\n",
                          (unsigned long long)version, age, (unsigned long long)bytes);
}

bsp_err reco_write_metrics(api_server *srv, bsp_buf *out) {
    reco_service *rs = srv->reco;
    if (!rs || !rs->holder) return BSP_OK;
    bsp_err rc = write_requests(rs, out);
    if (rc == BSP_OK) rc = write_latency(rs, out);
    if (rc == BSP_OK) rc = write_snapshot(rs, out);
    return rc;
}
