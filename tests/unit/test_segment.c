/* test_segment.c - segments below HTTP: the store's config and members
 * databases, definition validation, the registry's set (references,
 * cycles, built-ins), membership kept by the ingest hooks (only relevant
 * segments evaluated, merges, erasure, failed transactions leave nothing),
 * backfill of a new segment, the read overlay, notifications after commit
 * only, and replay after a crash re-deriving memberships. Real LMDB in a
 * temp dir. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "teststore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest/ingest.h"
#include "json/json.h"
#include "segment/segment.h"

typedef struct fixture {
    char dir[64];
    bsp_store *st;
    bsp_segments *segs;
    bsp_ingest *ing;
    int notices;
    char last_notice[512];
} fixture;

static void on_notice(void *ctx, const char *url, const char *secret, const char *body,
                      size_t len) {
    fixture *f = ctx;
    (void)url;
    (void)secret;
    f->notices++;
    snprintf(f->last_notice, sizeof f->last_notice, "%.*s", (int)len, body);
}

/* Like bespoke import: the writer runs with the segment hooks, and no
 * background thread. */
static void start_unattached(fixture *f) {
    bsp_store_opts so = {.no_sync = true};
    assert_int_equal(store_open(f->dir, &so, &f->st), BSP_OK);
    segments_opts sg = {.sweep_ms = 3600000, .rescan_ms = 3600000};
    assert_int_equal(segments_open(f->st, &sg, &f->segs), BSP_OK);
    segments_set_notifier(f->segs, on_notice, f);
    ingest_hooks hooks = segments_hooks(f->segs);
    bsp_ingest_opts io = {.hooks = &hooks};
    assert_int_equal(ingest_start(f->st, &io, &f->ing), BSP_OK);
}

/* Like the server: with the background thread. */
static void start(fixture *f) {
    start_unattached(f);
    assert_int_equal(segments_attach(f->segs, f->ing), BSP_OK);
}

static void stop(fixture *f) {
    segments_stop(f->segs);
    ingest_stop(f->ing);
    segments_close(f->segs);
    store_close(f->st);
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    test_temp_dir(f->dir, "segment");
    start(f);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    stop(f);
    test_temp_dir_remove(f->dir);
    free(f);
    return 0;
}

static void send(fixture *f, const char *batch_json) {
    test_send_batch(f->ing, batch_json);
}

static bsp_err put(fixture *f, const char *id, const char *condition, bsp_error *err) {
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "condition", condition);
    bsp_error_clear(err);
    bsp_err rc = segments_put(f->segs, body, id, false, NULL, err);
    cJSON_Delete(body);
    return rc;
}

static void put_ok(fixture *f, const char *id, const char *condition) {
    bsp_error err;
    bsp_err rc = put(f, id, condition, &err);
    if (rc) fail_msg("put %s: %s at %s", id, err.message, err.at);
}

/* Membership as the profile says (after a checkpoint). */
static bool member(fixture *f, const char *uid, const char *segment) {
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    bsp_txn *txn;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    uint64_t pid;
    bool in = false;
    if (ingest_resolve(txn, uid, &pid) == BSP_OK) {
        bsp_slice raw;
        bsp_profile *p;
        assert_int_equal(store_profile_get(txn, pid, &raw), BSP_OK);
        assert_int_equal(profile_from_json(raw.data, raw.len, &p), BSP_OK);
        in = profile_in_segment(p, segment);
        assert_int_equal(in, store_member_has(txn, segment, pid)); /* index agrees */
        profile_free(p);
    }
    store_txn_abort(txn);
    return in;
}

static uint64_t count(fixture *f, const char *segment) {
    bsp_txn *txn;
    uint64_t n = 0;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    assert_int_equal(store_members_count(txn, segment, &n), BSP_OK);
    store_txn_abort(txn);
    return n;
}

/* Waits until the background thread finished filling segment id in. */
static void wait_ready(fixture *f, const char *id) {
    for (int i = 0; i < 2000; i++) {
        bsp_txn *txn;
        cJSON *o = NULL;
        assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
        assert_int_equal(segments_get(f->segs, txn, id, &o), BSP_OK);
        store_txn_abort(txn);
        bool ready = strcmp(json_get_string(o, "status"), "ready") == 0;
        cJSON_Delete(o);
        if (ready) return;
        usleep(5000);
    }
    fail_msg("segment %s never ready", id);
}

/* --- store: config and members ------------------------------------------------ */

static bsp_err count_config(void *ctx, bsp_slice id, bsp_slice json) {
    (void)id;
    (void)json;
    (*(int *)ctx)++;
    return BSP_OK;
}

static void test_store_config_and_members(void **state) {
    fixture *f = *state;
    bsp_txn *txn;
    assert_int_equal(store_txn_begin(f->st, true, &txn), BSP_OK);
    assert_int_equal(store_config_put(txn, "campaign", "c1", "{}", 2), BSP_OK);
    assert_int_equal(store_config_put(txn, "campaign", "c2", "{}", 2), BSP_OK);
    assert_int_equal(store_config_put(txn, "campaignx", "c3", "{}", 2), BSP_OK);
    assert_int_equal(store_config_put(txn, "", "c", "{}", 2), BSP_EINVAL);
    assert_int_equal(store_config_put(txn, "campaign", "", "{}", 2), BSP_EINVAL);
    int n = 0;
    assert_int_equal(store_config_scan(txn, "campaign", count_config, &n), BSP_OK);
    assert_int_equal(n, 2); /* "campaignx" is another kind */
    assert_int_equal(store_config_del(txn, "campaign", "c1"), BSP_OK);
    assert_int_equal(store_config_del(txn, "campaign", "c1"), BSP_ENOTFOUND);
    for (uint64_t pid = 1; pid <= 300; pid++)
        assert_int_equal(store_member_put(txn, "s", pid * 3), BSP_OK);
    assert_int_equal(store_member_put(txn, "s", 3), BSP_OK); /* idempotent */
    assert_int_equal(store_member_put(txn, "s2", 1), BSP_OK);
    assert_int_equal(store_member_del(txn, "s", 6), BSP_OK);
    assert_int_equal(store_member_del(txn, "s", 7), BSP_OK); /* absent: fine */
    uint64_t c;
    assert_int_equal(store_members_count(txn, "s", &c), BSP_OK);
    assert_int_equal(c, 299);
    assert_true(store_member_has(txn, "s", 9));
    assert_false(store_member_has(txn, "s", 6));
    assert_int_equal(store_members_clear(txn, "s"), BSP_OK);
    assert_int_equal(store_members_count(txn, "s", &c), BSP_OK);
    assert_int_equal(c, 0);
    assert_int_equal(store_members_count(txn, "s2", &c), BSP_OK);
    assert_int_equal(c, 1);
    store_txn_abort(txn);
}

/* --- definitions ------------------------------------------------------------------ */

static void test_validation(void **state) {
    fixture *f = *state;
    bsp_error err;
    assert_int_equal(put(f, "x", "computed.orders >=", &err), BSP_ETYPE);
    assert_non_null(strstr(err.at, "line 1"));
    assert_int_equal(put(f, "x", "context.page.type = \"cart\"", &err), BSP_ETYPE);
    assert_int_equal(put(f, "bad id", "true", &err), BSP_ETYPE);
    assert_string_equal(err.at, "id");
    assert_int_equal(put(f, "x", "in_segment(\"missing\")", &err), BSP_ETYPE);
    put_ok(f, "a", "computed.orders >= 0");
    put_ok(f, "b", "in_segment(\"a\")");
    assert_int_equal(put(f, "a", "in_segment(\"b\")", &err), BSP_ETYPE);
    assert_non_null(strstr(err.message, "cycle"));
    assert_int_equal(put(f, "a", "in_segment(\"a\")", &err), BSP_ETYPE);
    assert_int_equal(segments_delete(f->segs, "a", &err), BSP_EEXISTS);
    assert_int_equal(segments_delete(f->segs, "new_visitors", &err), BSP_EFORBIDDEN);
    assert_int_equal(segments_delete(f->segs, "nope", &err), BSP_ENOTFOUND);
    assert_int_equal(segments_delete(f->segs, "b", &err), BSP_OK);
    assert_int_equal(segments_delete(f->segs, "a", &err), BSP_OK);
    assert_false(segments_exists(f->segs, "a"));
    assert_true(segments_exists(f->segs, "high_value"));
}

/* --- membership ---------------------------------------------------------------------- */

static void test_membership_follows_events(void **state) {
    fixture *f = *state;
    put_ok(f, "searched", "did(\"Products Searched\", 1h, properties.query contains \"lamp\")");
    put_ok(f, "buyer_searched", "in_segment(\"searched\") and computed.orders >= 1");
    send(f, "{\"batch\":[{\"type\":\"track\",\"anonymousId\":\"a1\",\"event\":\"Products "
            "Searched\",\"properties\":{\"query\":\"lamp shade\"}}]}");
    assert_true(member(f, "a1", "searched"));
    assert_false(member(f, "a1", "buyer_searched"));
    assert_true(member(f, "a1", "new_visitors"));
    send(f, "{\"batch\":[{\"type\":\"track\",\"anonymousId\":\"a1\",\"event\":\"Order "
            "Completed\",\"properties\":{\"revenue\":9}}]}");
    assert_true(member(f, "a1", "buyer_searched"));
    assert_true(member(f, "a1", "first_time_buyers"));
    assert_false(member(f, "a1", "new_visitors"));
    assert_int_equal(count(f, "searched"), 1);
    assert_true(f->notices == 0); /* no webhooks configured */
}

static void test_merge_and_erasure(void **state) {
    fixture *f = *state;
    put_ok(f, "gold", "traits.tier = \"gold\"");
    send(f, "{\"batch\":[{\"type\":\"identify\",\"userId\":\"u1\",\"traits\":{\"tier\":\"gold\"}},"
            "{\"type\":\"track\",\"anonymousId\":\"an\",\"event\":\"Order Completed\","
            "\"properties\":{\"revenue\":1}}]}");
    assert_true(member(f, "an", "first_time_buyers"));
    assert_int_equal(count(f, "first_time_buyers"), 1);
    send(f, "{\"batch\":[{\"type\":\"identify\",\"userId\":\"u1\",\"anonymousId\":\"an\"}]}");
    assert_true(member(f, "u1", "gold"));
    assert_true(member(f, "u1", "first_time_buyers"));
    assert_int_equal(count(f, "first_time_buyers"), 1); /* the merged-away pid left */
    assert_int_equal(count(f, "gold"), 1);
    assert_int_equal(ingest_erase_profile(f->ing, "u1", NULL), BSP_OK);
    assert_int_equal(count(f, "gold"), 0);
    assert_int_equal(count(f, "first_time_buyers"), 0);
}

/* Memberships of deleted segments are dropped at a profile's next change,
 * and those of the segments left are found and kept: 40 segments, so the
 * set's index by id has collisions to walk. */
static void test_deleted_segments_dropped_others_kept(void **state) {
    fixture *f = *state;
    char id[16];
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof id, "s%d", i);
        put_ok(f, id, "computed.page_views >= 1");
    }
    send(f, "{\"batch\":[{\"type\":\"page\",\"anonymousId\":\"a1\",\"name\":\"Home\"}]}");
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof id, "s%d", i);
        assert_true(member(f, "a1", id));
    }
    bsp_error err;
    for (int i = 0; i < 40; i += 2) {
        snprintf(id, sizeof id, "s%d", i);
        assert_int_equal(segments_delete(f->segs, id, &err), BSP_OK);
    }
    send(f, "{\"batch\":[{\"type\":\"page\",\"anonymousId\":\"a1\",\"name\":\"Shop\"}]}");
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof id, "s%d", i);
        if (member(f, "a1", id) != (i % 2 == 1)) fail_msg("a1 in %s: %d", id, !(i % 2));
    }
}

static void test_backfill_and_notices(void **state) {
    fixture *f = *state;
    for (int i = 0; i < 30; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"batch\":[{\"type\":\"track\",\"anonymousId\":\"v%d\",\"event\":\"Product "
                 "Added\",\"properties\":{\"product_id\":\"p\",\"price\":%d}}]}",
                 i, i);
        send(f, body);
    }
    cJSON *body = cJSON_Parse("{\"condition\":\"computed.cart_value >= 10\",\"webhook\":"
                              "{\"url\":\"http://127.0.0.1:9/x\",\"on\":[\"enter\"]}}");
    bsp_error err;
    assert_int_equal(segments_put(f->segs, body, "big_cart", false, NULL, &err), BSP_OK);
    cJSON_Delete(body);
    wait_ready(f, "big_cart");
    assert_int_equal(count(f, "big_cart"), 20);
    assert_int_equal(f->notices, 20);
    assert_non_null(strstr(f->last_notice, "\"type\":\"segment.entered\""));
    send(f, "{\"batch\":[{\"type\":\"track\",\"anonymousId\":\"v0\",\"event\":\"Product "
            "Added\",\"properties\":{\"product_id\":\"q\",\"price\":50}}]}");
    assert_int_equal(f->notices, 21);
    assert_non_null(strstr(f->last_notice, "\"anonymousId\":\"v0\""));
    /* Exits are not announced for this segment (on: enter only). */
    send(f, "{\"batch\":[{\"type\":\"track\",\"anonymousId\":\"v0\",\"event\":\"Product "
            "Removed\",\"properties\":{\"product_id\":\"q\"}}]}");
    assert_false(member(f, "v0", "big_cart"));
    assert_int_equal(f->notices, 21);
}

/* Only segments whose inputs an event touched are evaluated. */
/* Sends a batch a few ms after the one before (so its events, timed on
 * receipt, move computed.last_seen) and returns the evaluations it caused. */
static uint64_t evaluations_of(fixture *f, const char *batch_json) {
    segments_metrics before, after;
    segments_metrics_get(f->segs, &before);
    bsp_sleep_ms(3);
    send(f, batch_json);
    segments_metrics_get(f->segs, &after);
    return after.evaluations - before.evaluations;
}

static void test_only_relevant_segments_run(void **state) {
    fixture *f = *state;
    put_ok(f, "t1", "traits.plan = \"pro\"");
    put_ok(f, "e1", "did(\"Signed Up\", 1d)");
    send(f, "{\"batch\":[{\"type\":\"track\",\"anonymousId\":\"r1\",\"event\":\"Warm\"}]}");
    wait_ready(f, "t1"); /* their backfills evaluate too: let them finish */
    wait_ready(f, "e1");
    /* A track event with no traits changes only computed.last_seen, which
     * one built-in reads (cart_abandoners); the traits segment, the Signed
     * Up segment and the six built-ins over sessions and orders do not run. */
    assert_int_equal(evaluations_of(f, "{\"batch\":[{\"type\":\"track\",\"anonymousId\":"
                                       "\"r1\",\"event\":\"Other\"}]}"),
                     1);
    assert_int_equal(evaluations_of(f, "{\"batch\":[{\"type\":\"track\",\"anonymousId\":"
                                       "\"r1\",\"event\":\"Signed Up\"}]}"),
                     2);
    assert_true(member(f, "r1", "e1"));
    /* An order changes orders and revenue: the five built-ins over them run
     * too, and the profile becomes a first-time buyer. */
    assert_int_equal(evaluations_of(f, "{\"batch\":[{\"type\":\"track\",\"anonymousId\":"
                                       "\"r1\",\"event\":\"Order Completed\","
                                       "\"properties\":{\"revenue\":5}}]}"),
                     6);
    assert_true(member(f, "r1", "first_time_buyers"));
    /* identify with traits: the traits segment and cart_abandoners run. */
    assert_int_equal(evaluations_of(f, "{\"batch\":[{\"type\":\"identify\",\"anonymousId\":"
                                       "\"r1\",\"traits\":{\"plan\":\"pro\"}}]}"),
                     2);
    assert_true(member(f, "r1", "t1"));
}

/* The overlay: a reader sees a commit before the checkpoint stores it. */
static void test_overlay_sees_commits(void **state) {
    fixture *f = *state;
    send(f, "{\"batch\":[{\"type\":\"track\",\"anonymousId\":\"o1\",\"event\":\"x\"}]}");
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    bsp_txn *txn;
    uint64_t pid;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    assert_int_equal(ingest_resolve(txn, "o1", &pid), BSP_OK);
    bsp_profile *p;
    assert_int_equal(ingest_profile_read(f->ing, txn, pid, &p), BSP_OK); /* now wanted */
    profile_free(p);
    store_txn_abort(txn);
    send(f, "{\"batch\":[{\"type\":\"track\",\"anonymousId\":\"o1\",\"event\":\"Order "
            "Completed\",\"properties\":{\"revenue\":3}}]}");
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    assert_int_equal(ingest_profile_read(f->ing, txn, pid, &p), BSP_OK);
    cJSON *c = profile_computed_json(p);
    assert_int_equal((int)json_get_number(c, "orders", -1), 1);
    assert_true(profile_in_segment(p, "first_time_buyers"));
    cJSON_Delete(c);
    profile_free(p);
    /* The memoized read sees the same, and again without parsing. */
    const bsp_profile *m1, *m2;
    assert_int_equal(ingest_profile_peek(f->ing, txn, pid, &m1), BSP_OK);
    assert_int_equal(ingest_profile_peek(f->ing, txn, pid, &m2), BSP_OK);
    assert_ptr_equal(m1, m2);
    assert_true(profile_in_segment(m1, "first_time_buyers"));
    store_txn_abort(txn);
}

/* A restart keeps definitions and memberships; replay re-derives what the
 * last checkpoint had not stored. */
static void test_restart(void **state) {
    fixture *f = *state;
    put_ok(f, "keep", "computed.orders >= 2");
    send(f, "{\"batch\":[{\"type\":\"track\",\"userId\":\"k\",\"event\":\"Order Completed\"},"
            "{\"type\":\"track\",\"userId\":\"k\",\"event\":\"Order Completed\"}]}");
    assert_true(member(f, "k", "keep"));
    stop(f);
    start(f);
    assert_true(segments_exists(f->segs, "keep"));
    assert_true(member(f, "k", "keep"));
    assert_int_equal(count(f, "keep"), 1);
}

/* --- settling after an import ---------------------------------------------------- */

static void send_buyer(fixture *f, const char *uid, int revenue) {
    char body[256];
    snprintf(body, sizeof body,
             "{\"batch\":[{\"type\":\"track\",\"userId\":\"%s\",\"event\":\"Order "
             "Completed\",\"properties\":{\"revenue\":%d}}]}",
             uid, revenue);
    send(f, body);
}

static void expect_condition(fixture *f, const char *id, const char *want) {
    bsp_txn *txn;
    cJSON *o = NULL;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    assert_int_equal(segments_get(f->segs, txn, id, &o), BSP_OK);
    store_txn_abort(txn);
    assert_string_equal(json_get_string(o, "condition"), want);
    cJSON_Delete(o);
}

/* Restarts like the server and lets the background thread's start-up step
 * run (segments_stop joins it), then expects the high_value condition. */
static void restart_expect_threshold(fixture *f, const char *condition) {
    stop(f);
    start(f);
    segments_stop(f->segs);
    expect_condition(f, "high_value", condition);
}

static void set_mark(fixture *f, const char *text) {
    bsp_txn *txn;
    assert_int_equal(store_txn_begin(f->st, true, &txn), BSP_OK);
    assert_int_equal(store_meta_put(txn, "segments_high_value_scan", text, strlen(text)), BSP_OK);
    assert_int_equal(store_txn_commit(txn), BSP_OK);
}

/* segments_settle recomputes the high_value threshold and fills the segment
 * in before it returns, and records the scan; a server started soon after
 * does not scan again, one started after the mark is stale does. */
static void test_settle_after_import(void **state) {
    fixture *f = *state;
    assert_int_equal(segments_settle(f->segs, f->ing), BSP_EINVAL); /* attached */
    stop(f);
    start_unattached(f);
    for (int i = 1; i <= 20; i++) {
        char uid[16];
        snprintf(uid, sizeof uid, "b%d", i);
        send_buyer(f, uid, i);
    }
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    assert_int_equal(count(f, "high_value"), 0); /* the placeholder threshold */
    assert_int_equal(segments_settle(f->segs, f->ing), BSP_OK);
    expect_condition(f, "high_value", "computed.orders >= 1 and computed.revenue >= 19.00");
    assert_int_equal(count(f, "high_value"), 2);
    assert_true(member(f, "b20", "high_value"));
    assert_false(member(f, "b18", "high_value"));
    bsp_txn *txn;
    bsp_slice mark;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    assert_int_equal(store_meta_get(txn, "segments_high_value_scan", &mark), BSP_OK);
    long long at = 0;
    char text[64];
    snprintf(text, sizeof text, "%.*s", (int)mark.len, mark.data);
    store_txn_abort(txn);
    assert_int_equal(sscanf(text, "%lld", &at), 1);
    assert_true(at > 0 && at <= bsp_now_ms());
    /* Three more big buyers would move the threshold to 100. */
    send_buyer(f, "c1", 100);
    send_buyer(f, "c2", 100);
    send_buyer(f, "c3", 100);
    /* Fresh mark: the background thread's first refresh is not due. */
    restart_expect_threshold(f, "computed.orders >= 1 and computed.revenue >= 19.00");
    stop(f);
    /* A mark from long ago (a scan of 1 s there, due 100 s later), or one
     * that cannot be read: the start-up step scans. */
    start_unattached(f);
    set_mark(f, "1 1000000000");
    restart_expect_threshold(f, "computed.orders >= 1 and computed.revenue >= 100.00");
    stop(f);
    start_unattached(f);
    set_mark(f, "garbage");
    send_buyer(f, "c4", 100);
    send_buyer(f, "c5", 200);
    send_buyer(f, "c6", 200);
    send_buyer(f, "c7", 200);
    restart_expect_threshold(f, "computed.orders >= 1 and computed.revenue >= 200.00");
}

/* Applies a body of events (as ingest would) to p. */
static void apply_body(bsp_profile *p, const char *body) {
    bsp_event_list list = {0};
    assert_int_equal(
        event_parse_body(body, strlen(body), BSP_EV_TYPE_COUNT, bsp_now_ms(), &list, NULL), BSP_OK);
    for (size_t i = 0; i < list.count; i++)
        profile_apply_event(p, &list.items[i]);
    event_list_free(&list);
}

/* Conditions read computed texts and, in days_since()/hours_since(), times
 * straight from the profile; each holds exactly when it holds read through
 * the computed object, on an empty profile, a browsing visitor and a buyer
 * with a time past ISO 8601's years. */
static void test_computed_read_directly_as_through_the_view(void **state) {
    (void)state;
    static const char *const conditions[] = {
        "computed.favorite_category = \"Home > Lamps\"",
        "computed.favorite_category starts_with \"Home\" and computed.page_views > 0",
        "computed.favorite_category = null",
        "computed.favorite_brand in [\"Lux\", \"Acme\"]",
        "lower(computed.favorite_brand) = \"lux\"",
        "computed.country = \"DE\"",
        "computed.device = \"mobile\"",
        "computed.device = null",
        "computed.last_search contains \"sofa\"",
        "computed.engaged_category = null",
        "days_since(computed.last_seen) <= 1",
        "days_since(computed.last_seen) > 1000",
        "hours_since(computed.last_order_at) >= 0",
        "days_since(computed.last_order_at) = null",
        "days_since(computed.first_seen) < 100000",
        "computed.last_seen starts_with \"20\"",
        "length(computed.favorite_category) > 3",
    };
    int64_t now = bsp_now_ms();
    char far_order[512];
    snprintf(far_order, sizeof far_order,
             "{\"batch\":[{\"type\":\"track\",\"event\":\"Order Completed\","
             "\"anonymousId\":\"z\",\"timestamp\":\"%s\",\"properties\":{\"revenue\":5}}]}",
             "9999-12-31T23:59:59.999Z");
    bsp_profile *profiles[3] = {profile_new(1), profile_new(2), profile_new(3)};
    apply_body(profiles[1],
               "{\"batch\":[{\"type\":\"page\",\"anonymousId\":\"v\",\"context\":{"
               "\"userAgent\":\"Mozilla/5.0 (iPhone) Mobile\",\"location\":{\"country\":\"DE\"}}},"
               "{\"type\":\"track\",\"event\":\"Product Viewed\",\"anonymousId\":\"v\","
               "\"properties\":{\"product_id\":\"p1\",\"category\":\"Home > Lamps\","
               "\"brand\":\"Lux\"}},"
               "{\"type\":\"track\",\"event\":\"Products Searched\",\"anonymousId\":\"v\","
               "\"properties\":{\"query\":\"red sofa\"}}]}");
    apply_body(profiles[2], far_order);
    for (size_t i = 0; i < sizeof conditions / sizeof conditions[0]; i++) {
        bsp_cond *c = NULL;
        assert_int_equal(cond_compile(conditions[i], strlen(conditions[i]), &c, NULL), BSP_OK);
        for (int k = 0; k < 3; k++) {
            segment_env direct, viewed;
            segment_env_init(&direct, profiles[k], NULL, now);
            segment_env_init(&viewed, profiles[k], NULL, now);
            viewed.env.computed_text = NULL;
            viewed.env.computed_time = NULL;
            bool a = cond_eval(c, &direct.env);
            segment_env_free(&direct);
            bool b = cond_eval(c, &viewed.env);
            segment_env_free(&viewed);
            if (a != b)
                fail_msg("profile %d: %s: %s read directly, %s through the view", k, conditions[i],
                         a ? "true" : "false", b ? "true" : "false");
        }
        cond_free(c);
    }
    /* Some of them hold, so the comparison is not between two falses. */
    segment_env se;
    segment_env_init(&se, profiles[1], NULL, now);
    bsp_cond *c = NULL;
    assert_int_equal(cond_compile(conditions[1], strlen(conditions[1]), &c, NULL), BSP_OK);
    assert_true(cond_eval(c, &se.env));
    cond_free(c);
    assert_int_equal(cond_compile(conditions[10], strlen(conditions[10]), &c, NULL), BSP_OK);
    assert_true(cond_eval(c, &se.env));
    cond_free(c);
    segment_env_free(&se);
    for (int k = 0; k < 3; k++)
        profile_free(profiles[k]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_config_and_members, setup, teardown),
        cmocka_unit_test(test_computed_read_directly_as_through_the_view),
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_membership_follows_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_and_erasure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_segments_dropped_others_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backfill_and_notices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_relevant_segments_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlay_sees_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settle_after_import, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
