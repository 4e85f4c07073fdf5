/* test_reco.c - unit tests of src/reco on small hand-checked stores built
 * through the real import + ingest path: co-occurrence counts and lift,
 * popularity, EASE recovering a planted two-block structure, buy-again,
 * filters and business rules, fallbacks, rank, the snapshot's save/load
 * round trip and holder, and erasure leaving the next snapshot; lookalikes
 * on planted groups, bundles and their price, attribute affinities from
 * events and quiz answers, popularity within a segment, the request
 * parser's limits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "import/import.h"
#include "ingest/ingest.h"
#include "json/json.h"
#include "reco/reco.h"
#include "store/store.h"

/* --- a store built from JSONL ---------------------------------------------- */

typedef struct world {
    char dir[64];
    bsp_store *st;
    bsp_ingest *ing;
    bsp_buf jsonl;
    int seq;
} world;

static void world_open(world *w) {
    memset(w, 0, sizeof *w);
    snprintf(w->dir, sizeof w->dir, "/tmp/bsp-reco-test-XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    bsp_store_opts so = {.no_sync = true};
    assert_int_equal(store_open(w->dir, &so, &w->st), BSP_OK);
    assert_int_equal(ingest_start(w->st, NULL, &w->ing), BSP_OK);
}

static void world_close(world *w) {
    ingest_stop(w->ing);
    store_close(w->st);
    bsp_buf_free(&w->jsonl);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", w->dir);
    assert_int_equal(system(cmd), 0);
}

/* One order of user on day (2024-01-01 + day) with the given products. */
static void order(world *w, const char *user, int day, const char *const *products, size_t n) {
    char ts[40];
    snprintf(ts, sizeof ts, "2024-%02d-%02dT10:%02d:00Z", 1 + day / 28, 1 + day % 28, w->seq % 60);
    bsp_buf_printf(&w->jsonl,
                   "{\"type\":\"track\",\"messageId\":\"m%d\",\"userId\":\"%s\",\"timestamp\":"
                   "\"%s\",\"event\":\"Order Completed\",\"properties\":{\"products\":[",
                   w->seq++, user, ts);
    for (size_t i = 0; i < n; i++)
        bsp_buf_printf(&w->jsonl, "%s{\"product_id\":\"%s\",\"quantity\":1}", i ? "," : "",
                       products[i]);
    bsp_buf_puts(&w->jsonl, "]}}\n");
}

static void view(world *w, const char *user, int day, const char *product) {
    bsp_buf_printf(&w->jsonl,
                   "{\"type\":\"track\",\"messageId\":\"m%d\",\"userId\":\"%s\",\"timestamp\":"
                   "\"2024-01-%02dT09:00:00Z\",\"event\":\"Product Viewed\",\"properties\":"
                   "{\"product_id\":\"%s\"}}\n",
                   w->seq++, user, 1 + day % 28, product);
}

static void world_load(world *w) {
    char path[128];
    snprintf(path, sizeof path, "%s/events.jsonl", w->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(w->jsonl.data, 1, w->jsonl.len, f), w->jsonl.len);
    assert_int_equal(fclose(f), 0);
    bsp_import_summary sum = {0};
    bsp_error err;
    assert_int_equal(import_run(w->ing, BSP_IMPORT_SEGMENT_JSONL, path, false, &sum, &err), BSP_OK);
    assert_int_equal(sum.rejects, 0);
    bsp_buf_reset(&w->jsonl);
}

static void product(world *w, const char *json) {
    bsp_error err;
    cJSON *body = json_parse(json, strlen(json), 8, &err);
    assert_non_null(body);
    cJSON *norm = NULL;
    assert_int_equal(catalog_product_from_json(body, NULL, bsp_now_ms(), &norm, &err), BSP_OK);
    assert_int_equal(ingest_put_products(w->ing, &norm, 1), BSP_OK);
    cJSON_Delete(norm);
    cJSON_Delete(body);
}

static reco_snapshot *train(world *w) {
    assert_int_equal(ingest_sync(w->ing), BSP_OK);
    bsp_txn *txn;
    assert_int_equal(store_txn_begin(w->st, false, &txn), BSP_OK);
    reco_snapshot *s = NULL;
    assert_int_equal(reco_train(txn, NULL, &s, NULL), BSP_OK);
    store_txn_abort(txn);
    assert_non_null(s);
    return s;
}

static uint64_t pid_of(world *w, const char *user) {
    bsp_txn *txn;
    uint64_t pid = 0;
    assert_int_equal(store_txn_begin(w->st, false, &txn), BSP_OK);
    assert_int_equal(ingest_resolve(txn, user, &pid), BSP_OK);
    store_txn_abort(txn);
    return pid;
}

static void recommend(const reco_snapshot *s, reco_request *req, reco_result *out) {
    assert_int_equal(reco_recommend(s, req, out), BSP_OK);
}

static reco_request request(reco_strategy st, const reco_visitor *v, size_t n) {
    reco_request r = {.strategy = st, .visitor = v, .n = n};
    reco_filters_init(&r.filters);
    return r;
}

static bool listed(const reco_result *r, const char *id) {
    for (size_t i = 0; i < r->count; i++)
        if (strcmp(r->items[i].product_id, id) == 0) return true;
    return false;
}

#define L(...) ((const char *const[]){__VA_ARGS__})
#define N(...) (sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))
#define ORDER(w, u, d, ...) order(w, u, d, L(__VA_ARGS__), N(__VA_ARGS__))

/* --- co-occurrence and popularity -------------------------------------------- */

/* Four orders of two or more items: {A,B} {A,B} {A,C} {B,C}; one of {D}.
 * c(A)=3 c(B)=3 c(C)=2, c(AB)=2 c(AC)=1; lift(A,B) = 2*4/(3*3), shrunk by
 * 2/(2+3); lift(A,C) = 1*4/(3*2), shrunk by 1/(1+3). */
static void test_cooccurrence_lift(void **state) {
    (void)state;
    world w;
    world_open(&w);
    ORDER(&w, "u1", 1, "A", "B");
    ORDER(&w, "u2", 2, "A", "B");
    ORDER(&w, "u3", 3, "A", "C");
    ORDER(&w, "u4", 4, "B", "C");
    ORDER(&w, "u5", 5, "D");
    world_load(&w);
    reco_snapshot *s = train(&w);
    reco_neighbor nb[8];
    size_t n = reco_related(s, RECO_REL_BOUGHT, "A", nb, 8);
    assert_int_equal(n, 2);
    assert_string_equal(nb[0].product_id, "B");
    assert_int_equal(nb[0].count, 2);
    assert_float_equal(nb[0].score, 2.0 * 4 / 9 * 2 / 5, 1e-5);
    assert_string_equal(nb[1].product_id, "C");
    assert_int_equal(nb[1].count, 1);
    assert_float_equal(nb[1].score, 1.0 * 4 / 6 * 1 / 4, 1e-5);
    /* item-kNN: cosine of buyer sets: A {u1,u2,u3}, B {u1,u2,u4} share 2 */
    n = reco_related(s, RECO_REL_KNN, "A", nb, 8);
    assert_true(n >= 1);
    assert_string_equal(nb[0].product_id, "B");
    assert_float_equal(nb[0].score, 2 / sqrt(9.0), 1e-5);
    assert_int_equal(reco_related(s, RECO_REL_BOUGHT, "D", nb, 8), 0);
    reco_snapshot_unref(s);
    world_close(&w);
}

static void test_popular(void **state) {
    (void)state;
    world w;
    world_open(&w);
    ORDER(&w, "u1", 10, "A", "B");
    ORDER(&w, "u2", 10, "A");
    ORDER(&w, "u3", 10, "A", "C");
    ORDER(&w, "u3", 11, "C"); /* the same buyer twice counts once */
    view(&w, "u4", 10, "D");  /* a view counts far less than a purchase */
    world_load(&w);
    reco_snapshot *s = train(&w);
    reco_request req = request(RECO_POPULAR, NULL, 4);
    req.no_fallback = true;
    reco_result r;
    recommend(s, &req, &r);
    assert_int_equal(r.count, 4);
    assert_string_equal(r.items[0].product_id, "A");
    assert_string_equal(r.items[3].product_id, "D");
    assert_true(r.items[0].score > r.items[1].score);
    reco_snapshot_unref(s);
    world_close(&w);
}

/* --- EASE ------------------------------------------------------------------------ */

/* Two hidden tastes: shoppers of block P buy only p*, of block Q only q*.
 * EASE must recover the blocks: a visitor with two p items gets p items. */
static void test_ease_planted_blocks(void **state) {
    (void)state;
    world w;
    world_open(&w);
    srand(7);
    char user[16], items[2][5][4];
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < 5; i++)
            snprintf(items[b][i], sizeof items[b][i], "%c%d", b ? 'q' : 'p', i);
    for (int u = 0; u < 60; u++) {
        snprintf(user, sizeof user, "s%d", u);
        int b = u % 2;
        const char *basket[3];
        int first = rand() % 5;
        for (int k = 0; k < 3; k++)
            basket[k] = items[b][(first + k * (1 + u % 2)) % 5];
        order(&w, user, u % 20, basket, 3);
    }
    world_load(&w);
    reco_snapshot *s = train(&w);
    for (int b = 0; b < 2; b++) {
        const char *mine[2] = {items[b][0], items[b][1]};
        reco_visitor v = {.purchased = mine, .purchased_count = 2};
        reco_request req = request(RECO_EASE, &v, 3);
        req.filters.exclude_purchased = true;
        reco_result r;
        recommend(s, &req, &r);
        assert_int_equal(r.count, 3);
        for (size_t i = 0; i < r.count; i++)
            assert_int_equal(r.items[i].product_id[0], b ? 'q' : 'p');
    }
    reco_snapshot_unref(s);
    world_close(&w);
}

/* --- buy-again and the personalized blend --------------------------------------------- */

static void test_buy_again(void **state) {
    (void)state;
    world w;
    world_open(&w);
    ORDER(&w, "me", 1, "X", "Y");
    ORDER(&w, "me", 30, "X");
    ORDER(&w, "me", 60, "X", "Z");
    ORDER(&w, "other", 2, "W");
    ORDER(&w, "other2", 3, "W");
    world_load(&w);
    reco_snapshot *s = train(&w);
    reco_visitor v = {.pid = pid_of(&w, "me")};
    reco_request req = request(RECO_BUY_AGAIN, &v, 5);
    req.no_fallback = true;
    reco_result r;
    recommend(s, &req, &r);
    assert_int_equal(r.count, 3);
    assert_string_equal(r.items[0].product_id, "X"); /* bought three times */
    assert_false(listed(&r, "W"));
    /* with fallbacks the list fills up, X still first */
    req.no_fallback = false;
    recommend(s, &req, &r);
    assert_int_equal(r.count, 4);
    assert_string_equal(r.items[0].product_id, "X");
    assert_int_equal(r.items[3].source, RECO_PERSONALIZED);
    /* personalized: own purchases first, excluded when asked */
    req = request(RECO_PERSONALIZED, &v, 2);
    req.filters.exclude_purchased = true;
    recommend(s, &req, &r);
    assert_int_equal(r.count, 1);
    assert_string_equal(r.items[0].product_id, "W");
    reco_snapshot_unref(s);
    world_close(&w);
}

/* --- filters and rules ------------------------------------------------------------------- */

static void catalog(world *w) {
    product(w, "{\"id\":\"k1\",\"category\":\"Kitchen > Mugs\",\"price\":5,\"brand\":\"Acme\"}");
    product(w, "{\"id\":\"k2\",\"category\":\"Kitchen > Mugs\",\"price\":15,\"in_stock\":false}");
    product(w, "{\"id\":\"k3\",\"category\":\"Kitchen > Pans\",\"price\":25,\"brand\":\"Acme\"}");
    product(w, "{\"id\":\"g1\",\"category\":\"Garden\",\"price\":8,\"tags\":[\"sale\"]}");
    product(w, "{\"id\":\"g2\",\"category\":\"Garden\",\"price\":30}");
}

static void test_filters(void **state) {
    (void)state;
    world w;
    world_open(&w);
    catalog(&w);
    /* popularity: k2 > k1 > g2 > k3 > g1 */
    const char *by_pop[] = {"k2", "k2", "k2", "k2", "k2", "k1", "k1", "k1",
                            "k1", "g2", "g2", "g2", "k3", "k3", "g1"};
    for (int i = 0; i < 15; i++) {
        char user[8];
        snprintf(user, sizeof user, "b%d", i);
        order(&w, user, 5, &by_pop[i], 1);
    }
    world_load(&w);
    reco_snapshot *s = train(&w);
    reco_result r;
    reco_request req = request(RECO_POPULAR, NULL, 5);
    recommend(s, &req, &r);
    assert_string_equal(r.items[0].product_id, "k2");
    req.filters.in_stock = true;
    recommend(s, &req, &r);
    assert_int_equal(r.count, 4);
    assert_false(listed(&r, "k2"));
    req = request(RECO_POPULAR, NULL, 5);
    const char *cats[] = {"Garden", "Kitchen > Pans"};
    req.filters.categories = cats;
    req.filters.category_count = 2;
    recommend(s, &req, &r);
    assert_int_equal(r.count, 3);
    assert_string_equal(r.items[0].product_id, "g2");
    assert_false(listed(&r, "k1"));
    req = request(RECO_POPULAR, NULL, 5);
    req.filters.price_min = 6;
    req.filters.price_max = 26;
    recommend(s, &req, &r);
    assert_int_equal(r.count, 3); /* k2 15, k3 25, g1 8 */
    assert_false(listed(&r, "k1"));
    req = request(RECO_POPULAR, NULL, 5);
    const char *ex[] = {"k2", "k1"};
    req.filters.exclude_ids = ex;
    req.filters.exclude_count = 2;
    recommend(s, &req, &r);
    assert_int_equal(r.count, 3);
    assert_string_equal(r.items[0].product_id, "g2");
    /* diversity: one per top-level category */
    req = request(RECO_POPULAR, NULL, 5);
    req.filters.max_per_category = 1;
    recommend(s, &req, &r);
    assert_int_equal(r.count, 2);
    assert_string_equal(r.items[0].product_id, "k2");
    assert_string_equal(r.items[1].product_id, "g2");
    /* boost the sale tag to the top, bury the Acme brand to the bottom */
    reco_boost rules[] = {{"tags", "sale", 100}, {"brand", "Acme", 0.01}};
    req = request(RECO_POPULAR, NULL, 5);
    req.filters.boosts = rules;
    req.filters.boost_count = 2;
    recommend(s, &req, &r);
    assert_string_equal(r.items[0].product_id, "g1");
    assert_string_equal(r.items[4].product_id, "k3");
    reco_snapshot_unref(s);
    world_close(&w);
}

static void test_rank_and_similar(void **state) {
    (void)state;
    world w;
    world_open(&w);
    catalog(&w);
    ORDER(&w, "a", 1, "k1", "k3");
    ORDER(&w, "b", 2, "k1", "k3");
    ORDER(&w, "c", 3, "g1", "g2");
    ORDER(&w, "me", 4, "k1");
    world_load(&w);
    reco_snapshot *s = train(&w);
    reco_visitor v = {.pid = pid_of(&w, "me")};
    const char *ids[] = {"g1", "nope", "k3", "k1"};
    size_t order_out[4];
    double scores[4];
    assert_int_equal(reco_rank(s, &v, ids, 4, 0, order_out, scores), BSP_OK);
    assert_string_equal(ids[order_out[0]], "k1"); /* bought it */
    assert_string_equal(ids[order_out[1]], "k3"); /* bought with it */
    assert_string_equal(ids[order_out[3]], "nope");
    /* similar to k1: k3 first; the list is filled by fallbacks */
    const char *ctx[] = {"k1"};
    reco_request req = request(RECO_SIMILAR, NULL, 4);
    req.items = ctx;
    req.item_count = 1;
    reco_result r;
    recommend(s, &req, &r);
    assert_int_equal(r.count, 4);
    assert_string_equal(r.items[0].product_id, "k3");
    assert_false(listed(&r, "k1"));
    /* a new visitor's recently viewed item is folded in at request time */
    const char *seen[] = {"g1"};
    reco_visitor fresh = {.recently_viewed = seen, .recently_viewed_count = 1};
    req = request(RECO_SIMILAR, &fresh, 1);
    recommend(s, &req, &r);
    assert_string_equal(r.items[0].product_id, "g2");
    reco_snapshot_unref(s);
    world_close(&w);
}

/* --- snapshots --------------------------------------------------------------------------- */

static void test_snapshot_round_trip(void **state) {
    (void)state;
    world w;
    world_open(&w);
    catalog(&w);
    ORDER(&w, "a", 1, "k1", "k3", "g1");
    ORDER(&w, "b", 2, "k1", "k3");
    ORDER(&w, "b", 9, "k1", "g2");
    world_load(&w);
    reco_snapshot *s = train(&w);
    assert_int_equal(reco_snapshot_load_latest(w.dir, &(reco_snapshot *){NULL}), BSP_ENOTFOUND);
    assert_int_equal(reco_snapshot_save(s, w.dir), BSP_OK);
    assert_int_equal(reco_snapshot_version(s), 1);
    reco_snapshot *t = NULL;
    assert_int_equal(reco_snapshot_load_latest(w.dir, &t), BSP_OK);
    assert_int_equal(reco_snapshot_version(t), 1);
    assert_int_equal(reco_snapshot_items(t), reco_snapshot_items(s));
    assert_int_equal(reco_snapshot_users(t), reco_snapshot_users(s));
    assert_int_equal(reco_snapshot_data_end_ms(t), reco_snapshot_data_end_ms(s));
    reco_visitor v = {.pid = pid_of(&w, "b")};
    for (int st = 0; st < RECO_STRATEGY_COUNT; st++) {
        reco_request req = request((reco_strategy)st, &v, 5);
        reco_result a, b;
        recommend(s, &req, &a);
        recommend(t, &req, &b);
        assert_int_equal(a.count, b.count);
        for (size_t i = 0; i < a.count; i++) {
            assert_string_equal(a.items[i].product_id, b.items[i].product_id);
            assert_float_equal(a.items[i].score, b.items[i].score, 1e-6);
        }
    }
    const cJSON *p = reco_product(t, "k2");
    assert_non_null(p);
    assert_string_equal(json_get_string(p, "category"), "Kitchen > Mugs");
    /* versions grow; only the newest three stay */
    for (int i = 0; i < 4; i++)
        assert_int_equal(reco_snapshot_save(s, w.dir), BSP_OK);
    assert_int_equal(reco_snapshot_version(s), 5);
    char path[160];
    snprintf(path, sizeof path, "%s/models/reco-%010d.bin", w.dir, 2);
    assert_int_not_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/models/reco-%010d.bin", w.dir, 3);
    assert_int_equal(access(path, F_OK), 0);
    /* a damaged file is refused */
    snprintf(path, sizeof path, "%s/models/reco-%010d.bin", w.dir, 6);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("BSPRECO1 but not really", f);
    fclose(f);
    reco_snapshot *bad = NULL;
    assert_int_equal(reco_snapshot_load_latest(w.dir, &bad), BSP_EPARSE);
    assert_null(bad);
    /* the holder: a reader's snapshot outlives a swap */
    reco_holder *h = reco_holder_new();
    assert_null(reco_holder_acquire(h));
    reco_holder_swap(h, t);
    reco_snapshot *held = reco_holder_acquire(h);
    assert_ptr_equal(held, t);
    reco_holder_swap(h, reco_snapshot_ref(s));
    assert_int_equal(reco_snapshot_items(held), reco_snapshot_items(s));
    reco_snapshot_unref(held);
    reco_snapshot *now = reco_holder_acquire(h);
    assert_ptr_equal(now, s);
    reco_snapshot_unref(now);
    reco_holder_free(h);
    reco_snapshot_unref(s);
    world_close(&w);
}

/* --- erasure --------------------------------------------------------------------------------- */

static void test_erased_person_leaves_snapshot(void **state) {
    (void)state;
    world w;
    world_open(&w);
    ORDER(&w, "keep1", 1, "A", "B");
    ORDER(&w, "keep2", 2, "A", "B");
    ORDER(&w, "gone", 3, "A", "SECRET");
    ORDER(&w, "gone", 4, "SECRET");
    world_load(&w);
    reco_snapshot *s = train(&w);
    uint64_t gone = pid_of(&w, "gone");
    reco_neighbor nb[8];
    size_t n = reco_related(s, RECO_REL_BOUGHT, "A", nb, 8);
    assert_int_equal(n, 2);
    reco_visitor v = {.pid = gone};
    reco_request req = request(RECO_BUY_AGAIN, &v, 3);
    req.no_fallback = true;
    reco_result r;
    recommend(s, &req, &r);
    assert_string_equal(r.items[0].product_id, "SECRET");
    assert_int_equal(reco_snapshot_users(s), 3);
    reco_snapshot_unref(s);

    uint64_t deleted = 0;
    assert_int_equal(ingest_erase_profile(w.ing, "gone", &deleted), BSP_OK);
    assert_int_equal(deleted, 2);
    s = train(&w);
    assert_int_equal(reco_snapshot_users(s), 2);
    n = reco_related(s, RECO_REL_BOUGHT, "A", nb, 8);
    assert_int_equal(n, 1);
    assert_string_equal(nb[0].product_id, "B");
    assert_int_equal(reco_related(s, RECO_REL_KNN, "SECRET", nb, 8), 0);
    recommend(s, &req, &r);
    assert_int_equal(r.count, 0); /* no history under that profile id any more */
    req = request(RECO_POPULAR, NULL, 5);
    req.no_fallback = true;
    recommend(s, &req, &r);
    assert_false(listed(&r, "SECRET"));
    reco_snapshot_unref(s);
    world_close(&w);
}

static void test_bad_requests(void **state) {
    (void)state;
    world w;
    world_open(&w);
    ORDER(&w, "a", 1, "A", "B");
    world_load(&w);
    reco_snapshot *s = train(&w);
    reco_result r;
    reco_request req = request(RECO_POPULAR, NULL, 0);
    assert_int_equal(reco_recommend(s, &req, &r), BSP_EINVAL);
    req.n = RECO_MAX_N + 1;
    assert_int_equal(reco_recommend(s, &req, &r), BSP_EINVAL);
    size_t order_out[1];
    const char *ids[1] = {"A"};
    assert_int_equal(reco_rank(s, NULL, ids, RECO_RANK_MAX + 1, 0, order_out, NULL), BSP_ETOOBIG);
    reco_strategy st;
    assert_true(reco_strategy_parse("bought_together", &st));
    assert_int_equal(st, RECO_BOUGHT_TOGETHER);
    assert_false(reco_strategy_parse("nope", &st));
    assert_string_equal(reco_strategy_name(RECO_BUY_AGAIN), "buy_again");
    reco_snapshot_unref(s);
    world_close(&w);
}

/* --- lookalikes -------------------------------------------------------------------------- */

/* Two planted tastes: the a-shoppers buy a0..a5, the b-shoppers b0..b5,
 * everyone buys "pop". "mix" buys two of each. Seeded with four
 * a-shoppers, the other a-shoppers come first, then mix, then the
 * b-shoppers. */
static void test_lookalike_planted_groups(void **state) {
    (void)state;
    world w;
    world_open(&w);
    char user[16], item[3][8];
    for (int u = 0; u < 24; u++) {
        char g = u % 2 ? 'b' : 'a';
        snprintf(user, sizeof user, "%c%d", g, u);
        for (int k = 0; k < 3; k++)
            snprintf(item[k], sizeof item[k], "%c%d", g, (u / 2 + k * 2) % 6);
        const char *basket[4] = {item[0], item[1], item[2], "pop"};
        order(&w, user, u % 20, basket, 4);
    }
    ORDER(&w, "mix", 5, "a0", "a1", "b0", "b1", "pop");
    world_load(&w);
    reco_snapshot *s = train(&w);
    assert_true(reco_snapshot_dims(s) >= 2);
    uint64_t seed[5] = {pid_of(&w, "a0"), pid_of(&w, "a2"), pid_of(&w, "a4"), pid_of(&w, "a6"),
                        987654321 /* not in the model: ignored */};
    reco_lookalike_hit hits[32];
    size_t count, used;
    assert_int_equal(reco_lookalike(s, seed, 5, true, 32, hits, &count, &used), BSP_OK);
    assert_int_equal(used, 4);
    assert_int_equal(count, 25 - 4); /* everyone else */
    for (size_t i = 0; i < 8; i++) { /* the 8 other a-shoppers first */
        bool is_a = false;
        for (int u = 8; u < 24; u += 2) {
            snprintf(user, sizeof user, "a%d", u);
            is_a |= hits[i].pid == pid_of(&w, user);
        }
        assert_true(is_a);
        if (i) assert_true(hits[i].score <= hits[i - 1].score);
    }
    assert_int_equal(hits[8].pid, pid_of(&w, "mix"));
    assert_true(hits[8].score > hits[9].score);
    for (size_t i = 0; i < count; i++)
        for (int k = 0; k < 4; k++)
            assert_int_not_equal(hits[i].pid, seed[k]);
    /* with the seed: its members are among the 12 a-shoppers on top */
    assert_int_equal(reco_lookalike(s, seed, 4, false, 12, hits, &count, &used), BSP_OK);
    assert_int_equal(count, 12);
    for (int k = 0; k < 4; k++) {
        bool found = false;
        for (size_t i = 0; i < count; i++)
            found |= hits[i].pid == seed[k];
        assert_true(found);
    }
    /* a seed nobody in the model belongs to */
    assert_int_equal(reco_lookalike(s, seed + 4, 1, true, 4, hits, &count, &used), BSP_ENOTFOUND);
    /* the vectors survive a save and load */
    assert_int_equal(reco_snapshot_save(s, w.dir), BSP_OK);
    reco_snapshot *t = NULL;
    assert_int_equal(reco_snapshot_load_latest(w.dir, &t), BSP_OK);
    assert_int_equal(reco_snapshot_dims(t), reco_snapshot_dims(s));
    reco_lookalike_hit again[32];
    assert_int_equal(reco_lookalike(t, seed, 4, true, 32, again, &count, &used), BSP_OK);
    assert_int_equal(reco_lookalike(s, seed, 4, true, 32, hits, &count, &used), BSP_OK);
    for (size_t i = 0; i < count; i++)
        assert_int_equal(again[i].pid, hits[i].pid);
    reco_snapshot_unref(t);
    reco_snapshot_unref(s);
    world_close(&w);
}

/* --- bundles ------------------------------------------------------------------------------ */

/* k1 is bought with k3 twice and with g1 once: lift(k1,k3) = 2*3/(3*2) *
 * 2/(2+3) = 0.4 > lift(k1,g1) = 1*3/(3*1) * 1/(1+3) = 0.25. The bundle is
 * k1 + k3 + g1 at 5 + 25 + 8. */
static void test_bundle_price(void **state) {
    (void)state;
    world w;
    world_open(&w);
    catalog(&w);
    product(&w, "{\"id\":\"np\",\"category\":\"Garden\"}");
    ORDER(&w, "a", 1, "k1", "k3");
    ORDER(&w, "b", 2, "k1", "k3");
    ORDER(&w, "c", 3, "k1", "g1");
    ORDER(&w, "d", 4, "g2", "np");
    world_load(&w);
    reco_snapshot *s = train(&w);
    reco_bundle bd;
    assert_int_equal(reco_bundle_for(s, "k1", NULL, 3, &bd), BSP_OK);
    assert_int_equal(bd.count, 3);
    assert_string_equal(bd.product_ids[0], "k1");
    assert_string_equal(bd.product_ids[1], "k3");
    assert_string_equal(bd.product_ids[2], "g1");
    assert_float_equal(bd.price, 38.0, 1e-6);
    assert_true(bd.price_complete);
    /* one complement only */
    assert_int_equal(reco_bundle_for(s, "k1", NULL, 1, &bd), BSP_OK);
    assert_int_equal(bd.count, 2);
    assert_float_equal(bd.price, 30.0, 1e-6);
    /* filters apply to complements: nothing over 10 */
    reco_filters f;
    reco_filters_init(&f);
    f.price_max = 10;
    assert_int_equal(reco_bundle_for(s, "k1", &f, 3, &bd), BSP_OK);
    assert_int_equal(bd.count, 2);
    assert_string_equal(bd.product_ids[1], "g1");
    /* a product without a price: the sum is of what is known */
    assert_int_equal(reco_bundle_for(s, "g2", NULL, 3, &bd), BSP_OK);
    assert_int_equal(bd.count, 2);
    assert_float_equal(bd.price, 30.0, 1e-6);
    assert_false(bd.price_complete);
    assert_int_equal(reco_bundle_for(s, "nope", NULL, 3, &bd), BSP_ENOTFOUND);
    /* the strategy: only bought-together complements, never the anchor */
    const char *anchor[] = {"k1"};
    reco_request req = request(RECO_BUNDLE, NULL, 3);
    req.items = anchor;
    req.item_count = 1;
    reco_result r;
    recommend(s, &req, &r);
    assert_int_equal(r.count, 2);
    assert_false(listed(&r, "k1"));
    reco_snapshot_unref(s);
    world_close(&w);
}

/* --- affinities ----------------------------------------------------------------------------- */

static void colour_catalog(world *w) {
    product(w, "{\"id\":\"r1\",\"price\":5,\"attributes\":{\"colour\":\"red\"}}");
    product(w, "{\"id\":\"r2\",\"price\":6,\"attributes\":{\"colour\":\"Red\"}}");
    product(w, "{\"id\":\"r3\",\"price\":7,\"attributes\":{\"colour\":\"red\"}}");
    product(w, "{\"id\":\"b1\",\"price\":5,\"attributes\":{\"colour\":\"blue\"}}");
    product(w, "{\"id\":\"b2\",\"price\":6,\"attributes\":{\"colour\":\"blue\"}}");
    product(w, "{\"id\":\"g1\",\"price\":50,\"attributes\":{\"colour\":\"green\"}}");
    product(w, "{\"id\":\"plain\",\"price\":8}");
}

/* "me" bought two red things (weight 1 each, at the data's end) and viewed
 * a blue one (0.1): red 2/2.1, blue 0.1/2.1. A quiz answer "green" takes
 * half: green 0.5, red 0.476, blue 0.024. */
static void test_affinity_learning(void **state) {
    (void)state;
    world w;
    world_open(&w);
    colour_catalog(&w);
    ORDER(&w, "me", 27, "r1", "r2");
    view(&w, "me", 27, "b1");
    ORDER(&w, "x1", 27, "r3"); /* r3 and b2 equally popular, unrelated to me's */
    ORDER(&w, "x2", 27, "b2");
    ORDER(&w, "x3", 27, "g1");
    world_load(&w);
    reco_snapshot *s = train(&w);
    const char *attrs[] = {"colour", "price_band", "material"};
    reco_visitor v = {.pid = pid_of(&w, "me")};
    reco_affinities aff;
    reco_affinities_learn(s, &v, NULL, attrs, 3, &aff);
    assert_int_equal(aff.count, 3);
    const reco_affinity *c = &aff.attrs[0];
    assert_string_equal(c->attribute, "colour");
    assert_int_equal(c->count, 2);
    assert_string_equal(c->values[0].value, "red");
    assert_float_equal(c->values[0].share, 2 / 2.1, 1e-3);
    assert_string_equal(c->values[1].value, "blue");
    assert_float_equal(c->values[1].share, 0.1 / 2.1, 1e-3);
    assert_int_equal(aff.attrs[2].count, 0); /* nothing known of material */
    assert_true(aff.attrs[1].count >= 1);    /* price bands derived from prices */
    /* the boost: r3 ranks above b2, equal otherwise */
    v.affinities = &aff;
    const char *ids[] = {"b2", "r3"};
    size_t order_out[2];
    double scores[2];
    assert_int_equal(reco_rank(s, &v, ids, 2, 0, order_out, scores), BSP_OK);
    assert_string_equal(ids[order_out[0]], "r3");
    /* match_affinity: red, and products without a colour; not blue or green */
    reco_request req = request(RECO_POPULAR, &v, 10);
    req.filters.match_affinity = true;
    const char *drop_band[] = {"colour"};
    reco_affinities_learn(s, &v, NULL, drop_band, 1, &aff);
    reco_result r;
    recommend(s, &req, &r);
    assert_true(listed(&r, "r3") && listed(&r, "r1") && listed(&r, "plain"));
    assert_false(listed(&r, "b2") || listed(&r, "g1"));
    /* a quiz answer */
    bsp_error err;
    cJSON *quiz = json_parse("{\"colour\":\"green\"}", 18, 4, &err);
    assert_non_null(quiz);
    reco_affinities_learn(s, &v, quiz, drop_band, 1, &aff);
    assert_string_equal(c->values[0].value, "green");
    assert_true(c->values[0].quiz);
    assert_float_equal(c->values[0].share, 0.5, 1e-6);
    assert_float_equal(c->values[1].share, 0.5 * 2 / 2.1, 1e-3);
    recommend(s, &req, &r); /* the quiz decides the filter */
    assert_true(listed(&r, "g1") && listed(&r, "plain"));
    assert_false(listed(&r, "r3") || listed(&r, "b2"));
    cJSON *out = reco_affinities_json(&aff);
    assert_non_null(out);
    assert_string_equal(
        json_get_string(cJSON_GetArrayItem(json_get_array(out, "colour"), 0), "value"), "green");
    cJSON_Delete(out);
    cJSON_Delete(quiz);
    /* a visitor nobody knows: from the quiz alone */
    reco_visitor fresh = {0};
    quiz = json_parse("{\"colour\":[\"blue\",\"red\"]}", 25, 4, &err);
    reco_affinities_learn(s, &fresh, quiz, drop_band, 1, &aff);
    assert_int_equal(c->count, 2);
    assert_float_equal(c->values[0].share, 0.5, 1e-6);
    cJSON_Delete(quiz);
    /* the configured list */
    char buf[64];
    const char *names[RECO_AFF_ATTRS_MAX];
    assert_int_equal(reco_affinity_attrs_parse(" colour, size ,,material", buf, sizeof buf, names,
                                               RECO_AFF_ATTRS_MAX),
                     3);
    assert_string_equal(names[1], "size");
    assert_int_equal(reco_affinity_attrs_parse("a,b,c", buf, sizeof buf, names, 2), -1);
    reco_snapshot_unref(s);
    world_close(&w);
}

/* --- popularity within a segment ------------------------------------------------------------- */

static void test_segment_popular(void **state) {
    (void)state;
    world w;
    world_open(&w);
    char user[8];
    for (int i = 0; i < 6; i++) {
        snprintf(user, sizeof user, "y%d", i);
        ORDER(&w, user, 10, "Y");
    }
    ORDER(&w, "s1", 10, "X", "Z");
    ORDER(&w, "s2", 10, "X");
    ORDER(&w, "s3", 10, "Z");
    ORDER(&w, "s3", 11, "X");
    world_load(&w);
    reco_snapshot *s = train(&w);
    uint64_t members[] = {pid_of(&w, "s1"), pid_of(&w, "s2"), pid_of(&w, "s3")};
    reco_request req = request(RECO_POPULAR, NULL, 3);
    reco_result r;
    recommend(s, &req, &r);
    assert_string_equal(r.items[0].product_id, "Y"); /* globally */
    req.segment_pids = members;
    req.segment_count = 3;
    recommend(s, &req, &r);
    assert_int_equal(r.count, 3);
    assert_string_equal(r.items[0].product_id, "X"); /* 3 members */
    assert_string_equal(r.items[1].product_id, "Z"); /* 2 members */
    assert_string_equal(r.items[2].product_id, "Y"); /* the global list fills */
    req.no_fallback = true;
    req.n = 5;
    recommend(s, &req, &r);
    assert_int_equal(r.count, 2);
    reco_snapshot_unref(s);
    world_close(&w);
}

/* --- the request parser ------------------------------------------------------------------------
 */

static bsp_err parse(const char *text, bool rank, reco_body *b, bsp_error *err) {
    bsp_err rc = reco_body_parse(text, strlen(text), rank, b, err);
    reco_body_free(b);
    return rc;
}

static void test_request_parser(void **state) {
    (void)state;
    reco_body *b = malloc(sizeof *b);
    assert_non_null(b);
    bsp_error err;
    const char *ok = "{\"userId\":\"u\",\"strategy\":\"popular\",\"segment\":\"vip\",\"n\":3,"
                     "\"filters\":{\"match_affinity\":true}}";
    assert_int_equal(reco_body_parse(ok, strlen(ok), false, b, &err), BSP_OK);
    assert_string_equal(b->segment, "vip");
    assert_string_equal(b->user_id, "u");
    assert_int_equal(b->req.n, 3);
    assert_true(b->req.filters.match_affinity);
    reco_body_free(b);
    assert_int_equal(parse("{\"strategy\":\"bundle\",\"items\":[\"k1\"]}", false, b, &err), BSP_OK);
    assert_int_equal(parse("{\"strategy\":\"bundle\"}", false, b, &err), BSP_EINVAL);
    assert_int_equal(parse("{\"segment\":\"vip\"}", false, b, &err), BSP_EINVAL);
    assert_int_equal(parse("{\"n\":1e9}", false, b, &err), BSP_ETYPE);
    assert_int_equal(parse("[1]", false, b, &err), BSP_EINVAL);
    assert_int_equal(parse("{", false, b, &err), BSP_EPARSE);
    char big[600];
    memset(big, 'x', sizeof big);
    snprintf(big, sizeof big, "{\"items\":[\"%0300d\"]}", 1);
    assert_int_equal(parse(big, true, b, &err), BSP_ETOOBIG);
    bsp_buf many = {0};
    bsp_buf_puts(&many, "{\"items\":[");
    for (int i = 0; i <= RECO_RANK_MAX; i++)
        bsp_buf_printf(&many, "%s\"p%d\"", i ? "," : "", i);
    bsp_buf_puts(&many, "]}");
    assert_int_equal(parse(many.data, true, b, &err), BSP_ETOOBIG);
    assert_int_equal(parse(many.data, false, b, &err), BSP_ETOOBIG);
    bsp_buf_free(&many);
    assert_int_equal(reco_body_parse("{}", RECO_BODY_MAX_BYTES + 1, false, b, &err), BSP_ETOOBIG);
    reco_body_free(b);
    free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cooccurrence_lift),
        cmocka_unit_test(test_popular),
        cmocka_unit_test(test_ease_planted_blocks),
        cmocka_unit_test(test_buy_again),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_rank_and_similar),
        cmocka_unit_test(test_snapshot_round_trip),
        cmocka_unit_test(test_erased_person_leaves_snapshot),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_lookalike_planted_groups),
        cmocka_unit_test(test_bundle_price),
        cmocka_unit_test(test_affinity_learning),
        cmocka_unit_test(test_segment_popular),
        cmocka_unit_test(test_request_parser),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
