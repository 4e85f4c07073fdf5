/* reco.c - the recommendation endpoints and the model service of the
 * server. POST /v1/recommendations and POST /v1/rank (write key, like the
 * collection calls) answer from the snapshot the holder publishes; the
 * visitor's profile is read without waiting for the writer. The service
 * loads the newest saved snapshot at start and, every train_interval_ms,
 * trains a new one on its own thread (after a checkpoint, in a read
 * transaction that never blocks the writer), saves it and swaps it in. */
#include "api/api_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "json/json.h"
#include "profile/profile.h"
#include "reco/reco.h"

#define RECO_DEFAULT_N 10

/* --- the service -------------------------------------------------------------- */

struct reco_service {
    api_server *srv;
    reco_holder *holder;
    const char *data_dir;
    uint64_t interval_ms;
    pthread_t thread;
    bool running;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
};

/* One training run: checkpoint, train in a read transaction, save, swap. */
static void train_once(reco_service *rs) {
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

/* Waits ms or until stopped; true when stopped. */
static bool wait_or_stop(reco_service *rs, uint64_t ms) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&rs->lock);
    while (!rs->stop && pthread_cond_timedwait(&rs->wake, &rs->lock, &until) == 0) {
    }
    bool stop = rs->stop;
    pthread_mutex_unlock(&rs->lock);
    return stop;
}

static void *trainer_main(void *arg) {
    reco_service *rs = arg;
    reco_snapshot *have = reco_holder_acquire(rs->holder);
    reco_snapshot_unref(have);
    if (!have && !wait_or_stop(rs, 0)) train_once(rs); /* nothing saved yet */
    while (!wait_or_stop(rs, rs->interval_ms))
        train_once(rs);
    return NULL;
}

bsp_err reco_service_start(api_server *srv, const char *data_dir, uint64_t interval_ms) {
    reco_service *rs = calloc(1, sizeof *rs);
    if (!rs) return BSP_ENOMEM;
    rs->srv = srv;
    rs->data_dir = data_dir;
    rs->interval_ms = interval_ms;
    rs->holder = reco_holder_new();
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&rs->lock, NULL);
    pthread_cond_init(&rs->wake, &ca);
    pthread_condattr_destroy(&ca);
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
    if (pthread_create(&rs->thread, NULL, trainer_main, rs) != 0) return BSP_ENOMEM;
    rs->running = true;
    return BSP_OK;
}

void reco_service_stop(api_server *srv) {
    reco_service *rs = srv->reco;
    if (!rs || !rs->running) return;
    pthread_mutex_lock(&rs->lock);
    rs->stop = true;
    pthread_cond_signal(&rs->wake);
    pthread_mutex_unlock(&rs->lock);
    pthread_join(rs->thread, NULL);
    rs->running = false;
}

void reco_service_close(api_server *srv) {
    reco_service *rs = srv->reco;
    if (!rs) return;
    reco_service_stop(srv);
    reco_holder_free(rs->holder);
    pthread_mutex_destroy(&rs->lock);
    pthread_cond_destroy(&rs->wake);
    free(rs);
    srv->reco = NULL;
}

reco_holder *reco_service_holder(api_server *srv) {
    return srv->reco ? srv->reco->holder : NULL;
}

/* --- request parsing -------------------------------------------------------------- */

#define STR_LIST_MAX RECO_RANK_MAX

typedef struct reco_body {
    cJSON *json;
    const char *user_id, *anonymous_id, *write_key;
    reco_request req;
    const char *items[STR_LIST_MAX];
    const char *categories[RECO_FILTER_LIST_MAX];
    const char *exclude[RECO_FILTER_LIST_MAX];
    reco_boost boosts[RECO_FILTER_LIST_MAX];
} reco_body;

static bsp_err string_list(const cJSON *arr, const char *at, const char **out, size_t max,
                           size_t *count, bsp_error *err) {
    *count = 0;
    if (!arr || cJSON_IsNull(arr)) return BSP_OK;
    if (!cJSON_IsArray(arr)) return bsp_error_set(err, BSP_ETYPE, at, "%s must be an array", at);
    if ((size_t)cJSON_GetArraySize(arr) > max)
        return bsp_error_set(err, BSP_ETOOBIG, at, "%s has more than %zu entries", at, max);
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        if (!cJSON_IsString(e) || !e->valuestring[0])
            return bsp_error_set(err, BSP_ETYPE, at, "%s must hold non-empty strings", at);
        out[(*count)++] = e->valuestring;
    }
    return BSP_OK;
}

static bsp_err opt_bool(const cJSON *obj, const char *key, bool *out, bsp_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) return BSP_OK;
    if (!cJSON_IsBool(v))
        return bsp_error_set(err, BSP_ETYPE, key, "filters.%s must be true or false", key);
    *out = cJSON_IsTrue(v);
    return BSP_OK;
}

static bsp_err opt_number(const cJSON *obj, const char *key, double lo, double hi, double *out,
                          bsp_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) return BSP_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi)
        return bsp_error_set(err, BSP_ETYPE, key, "%s must be a number from %g to %g", key, lo, hi);
    *out = v->valuedouble;
    return BSP_OK;
}

/* boost / bury: [{"attribute", "value", "factor"}]; bury's factor is < 1. */
static bsp_err parse_boosts(reco_body *b, const cJSON *arr, bool bury, bsp_error *err) {
    const char *at = bury ? "filters.bury" : "filters.boost";
    if (!arr || cJSON_IsNull(arr)) return BSP_OK;
    if (!cJSON_IsArray(arr)) return bsp_error_set(err, BSP_ETYPE, at, "%s must be an array", at);
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        reco_filters *f = &b->req.filters;
        if (f->boost_count == RECO_FILTER_LIST_MAX)
            return bsp_error_set(err, BSP_ETOOBIG, at, "at most %d boosts and buries",
                                 RECO_FILTER_LIST_MAX);
        const char *attr = json_get_string(e, "attribute"), *value = json_get_string(e, "value");
        double factor = bury ? 0.5 : 2.0;
        if (!attr || !value || opt_number(e, "factor", 0, 1000, &factor, err) != BSP_OK)
            return bsp_error_set(err, BSP_ETYPE, at,
                                 "%s entries are {\"attribute\", \"value\", \"factor\"}", at);
        if (bury && factor > 1) factor = 1 / factor;
        b->boosts[f->boost_count++] = (reco_boost){attr, value, factor};
    }
    return BSP_OK;
}

static bsp_err parse_filters(reco_body *b, const cJSON *f, bsp_error *err) {
    reco_filters *rf = &b->req.filters;
    if (!f || cJSON_IsNull(f)) return BSP_OK;
    if (!cJSON_IsObject(f)) return bsp_error_set(err, BSP_ETYPE, "filters", "must be an object");
    double max_cat = 0;
    bsp_err rc = opt_bool(f, "in_stock", &rf->in_stock, err);
    if (!rc) rc = opt_bool(f, "exclude_purchased", &rf->exclude_purchased, err);
    if (!rc) rc = opt_bool(f, "exclude_cart", &rf->exclude_cart, err);
    if (!rc) rc = opt_number(f, "price_min", 0, 1e12, &rf->price_min, err);
    if (!rc) rc = opt_number(f, "price_max", 0, 1e12, &rf->price_max, err);
    if (!rc) rc = opt_number(f, "max_per_category", 0, RECO_MAX_N, &max_cat, err);
    if (!rc)
        rc = string_list(cJSON_GetObjectItemCaseSensitive(f, "categories"), "filters.categories",
                         b->categories, RECO_FILTER_LIST_MAX, &rf->category_count, err);
    if (!rc)
        rc = string_list(cJSON_GetObjectItemCaseSensitive(f, "exclude"), "filters.exclude",
                         b->exclude, RECO_FILTER_LIST_MAX, &rf->exclude_count, err);
    if (!rc) rc = parse_boosts(b, cJSON_GetObjectItemCaseSensitive(f, "boost"), false, err);
    if (!rc) rc = parse_boosts(b, cJSON_GetObjectItemCaseSensitive(f, "bury"), true, err);
    rf->max_per_category = (size_t)max_cat;
    return rc;
}

static bsp_err parse_common(reco_body *b, api_req *req, bsp_error *err) {
    const char *text = req->body.data ? req->body.data : "";
    b->json = json_parse(text, req->body.len, BSP_JSON_MAX_DEPTH, err);
    if (!b->json) return err->code;
    if (!cJSON_IsObject(b->json))
        return bsp_error_set(err, BSP_EINVAL, "", "the body must be a JSON object");
    b->user_id = json_get_string(b->json, "userId");
    b->anonymous_id = json_get_string(b->json, "anonymousId");
    b->write_key = json_get_string(b->json, "writeKey");
    reco_filters_init(&b->req.filters);
    b->req.filters.categories = b->categories;
    b->req.filters.exclude_ids = b->exclude;
    b->req.filters.boosts = b->boosts;
    b->req.items = b->items;
    return BSP_OK;
}

static bsp_err parse_recommend(reco_body *b, bsp_error *err) {
    const char *strategy = json_get_string(b->json, "strategy");
    b->req.strategy = RECO_PERSONALIZED;
    if (strategy && !reco_strategy_parse(strategy, &b->req.strategy))
        return bsp_error_set(err, BSP_ETYPE, "strategy", "unknown strategy '%.64s'", strategy);
    double n = RECO_DEFAULT_N;
    bsp_err rc = opt_number(b->json, "n", 1, RECO_MAX_N, &n, err);
    b->req.n = (size_t)n;
    if (!rc)
        rc = string_list(cJSON_GetObjectItemCaseSensitive(b->json, "items"), "items", b->items,
                         RECO_ITEMS_IN_MAX, &b->req.item_count, err);
    if (!rc) rc = parse_filters(b, cJSON_GetObjectItemCaseSensitive(b->json, "filters"), err);
    return rc;
}

/* --- the visitor ------------------------------------------------------------------------- */

/* The visitor's profile (freshest copy, without waiting for the writer);
 * NULL for a visitor nobody knows yet. */
static bsp_profile *load_visitor(api_req *req, const reco_body *b) {
    const char *ids[2] = {b->user_id, b->anonymous_id};
    bsp_txn *txn;
    if (store_txn_begin(req->srv->store, false, &txn) != BSP_OK) return NULL;
    bsp_profile *p = NULL;
    for (int i = 0; i < 2 && !p; i++) {
        uint64_t pid;
        if (!ids[i] || ingest_resolve(txn, ids[i], &pid) != BSP_OK) continue;
        if (api_ingest_acquire(req->srv)) {
            ingest_profile_read(req->srv->ingest, txn, pid, &p);
            api_ingest_release(req->srv);
        }
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
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(product, keys[i]);
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
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(product, keys[i]);
        if (v) cJSON_AddItemToObject(o, keys[i], cJSON_Duplicate(v, true));
    }
}

static cJSON *result_json(const reco_snapshot *s, const reco_result *r, const char *strategy) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "strategy", strategy);
    cJSON_AddNumberToObject(root, "model_version", (double)reco_snapshot_version(s));
    cJSON *items = cJSON_AddArrayToObject(root, "items");
    for (size_t i = 0; items && i < r->count; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(items, o);
        cJSON_AddStringToObject(o, "product_id", r->items[i].product_id);
        cJSON_AddNumberToObject(o, "score", r->items[i].score);
        cJSON_AddStringToObject(o, "source", reco_strategy_name(r->items[i].source));
        add_product_fields(o, reco_product(s, r->items[i].product_id));
    }
    return root;
}

static enum MHD_Result reply_and_free(api_req *req, cJSON *root) {
    enum MHD_Result ret = root ? admin_reply_json(req, 200, root)
                               : api_reply_errorf(req, BSP_ENOMEM, "", "out of memory");
    cJSON_Delete(root);
    return ret;
}

static enum MHD_Result recommend(api_req *req, reco_body *b, reco_snapshot *s) {
    bsp_profile *p = load_visitor(req, b);
    cJSON *computed = p ? profile_computed_json(p) : NULL;
    reco_visitor_buf vb;
    reco_visitor_from_computed(p ? profile_pid(p) : 0, computed, &vb);
    b->req.visitor = &vb.v;
    b->req.seed = bsp_now_ms();
    reco_result r;
    bsp_err rc = reco_recommend(s, &b->req, &r);
    cJSON *root = rc == BSP_OK ? result_json(s, &r, reco_strategy_name(b->req.strategy)) : NULL;
    cJSON_Delete(computed);
    profile_free(p);
    if (rc != BSP_OK)
        return api_reply_errorf(req, rc, "", "could not recommend (%s)", bsp_err_name(rc));
    return reply_and_free(req, root);
}

static enum MHD_Result rank(api_req *req, reco_body *b, reco_snapshot *s) {
    size_t count;
    bsp_error err;
    if (string_list(cJSON_GetObjectItemCaseSensitive(b->json, "items"), "items", b->items,
                    RECO_RANK_MAX, &count, &err) != BSP_OK)
        return api_reply_error(req, &err);
    bsp_profile *p = load_visitor(req, b);
    cJSON *computed = p ? profile_computed_json(p) : NULL;
    reco_visitor_buf vb;
    reco_visitor_from_computed(p ? profile_pid(p) : 0, computed, &vb);
    size_t *order = malloc((count + 1) * sizeof *order);
    double *scores = malloc((count + 1) * sizeof *scores);
    bsp_err rc =
        order && scores ? reco_rank(s, &vb.v, b->items, count, 0, order, scores) : BSP_ENOMEM;
    cJSON *root = NULL;
    if (rc == BSP_OK && (root = cJSON_CreateObject())) {
        cJSON_AddNumberToObject(root, "model_version", (double)reco_snapshot_version(s));
        cJSON *items = cJSON_AddArrayToObject(root, "items");
        for (size_t i = 0; items && i < count; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToArray(items, o);
            cJSON_AddStringToObject(o, "product_id", b->items[order[i]]);
            cJSON_AddNumberToObject(o, "score", scores[i]);
        }
    }
    free(order);
    free(scores);
    cJSON_Delete(computed);
    profile_free(p);
    if (rc != BSP_OK) return api_reply_errorf(req, rc, "", "could not rank (%s)", bsp_err_name(rc));
    return reply_and_free(req, root);
}

enum MHD_Result reco_handle(api_req *req) {
    reco_body *b = calloc(1, sizeof *b);
    if (!b) return api_reply_errorf(req, BSP_ENOMEM, "", "out of memory");
    bsp_error err;
    bsp_error_clear(&err);
    bsp_err rc = parse_common(b, req, &err);
    if (!rc) rc = collect_check_key(req, b->write_key, &err);
    if (!rc && req->route == ROUTE_RECOMMENDATIONS) rc = parse_recommend(b, &err);
    reco_snapshot *s = NULL;
    reco_holder *h = reco_service_holder(req->srv);
    if (!rc && !(h && (s = reco_holder_acquire(h))))
        rc = bsp_error_set(&err, BSP_EUNAVAIL, "",
                           "no recommendation model yet (bespoke train, or the server's "
                           "periodic training)");
    enum MHD_Result ret;
    if (rc)
        ret = api_reply_error(req, &err);
    else if (req->route == ROUTE_RECOMMENDATIONS)
        ret = recommend(req, b, s);
    else
        ret = rank(req, b, s);
    reco_snapshot_unref(s);
    cJSON_Delete(b->json);
    free(b);
    return ret;
}
