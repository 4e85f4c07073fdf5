/* test_ingest.c - the write path end to end below HTTP: group commit,
 * de-duplication, identity resolution and merges, catalog learning, erasure,
 * back-pressure and drain on stop, on a real LMDB store in a temp dir. Every
 * test runs twice: with a durable LMDB commit per group, and in write-ahead
 * mode (groups durable in DIR/events.wal, LMDB written at checkpoints);
 * the last tests are about the write-ahead file itself. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "teststore.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "ingest/ingest.h"
#include "json/json.h"
#include "profile/profile.h"

typedef struct fixture {
    char dir[64];
    bsp_store *st;
    bsp_ingest *ing;
} fixture;

static bool write_ahead;  /* the mode of the group being run */
static bool wal_buffered; /* ... and whether its WAL may not use O_DIRECT */
static uint64_t wal_sync; /* ... and its wal_sync_ms (0: each group synced) */

/* Starts ingest in the group's mode; opts may be NULL. */
static bsp_err start_ingest(fixture *f, const bsp_ingest_opts *opts) {
    bsp_ingest_opts io = opts ? *opts : (bsp_ingest_opts){0};
    io.write_ahead = write_ahead;
    io.wal_buffered = wal_buffered;
    if (!io.wal_sync_ms) io.wal_sync_ms = wal_sync;
    return ingest_start(f->st, &io, &f->ing);
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    test_temp_dir(f->dir, "ingest");
    bsp_store_opts so = {.no_sync = true};
    assert_int_equal(store_open(f->dir, &so, &f->st), BSP_OK);
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    bsp_fault_disarm_all();
    ingest_stop(f->ing);
    store_close(f->st);
    test_temp_dir_remove(f->dir);
    free(f);
    return 0;
}

/* Restarts ingest so that no checkpoint comes by itself during a test
 * (only ingest_sync or a job makes one). */
static void restart_without_checkpoints(fixture *f) {
    ingest_stop(f->ing);
    bsp_ingest_opts io = {.checkpoint_ms = 600000, .checkpoint_events = 1000000};
    assert_int_equal(start_ingest(f, &io), BSP_OK);
}

/* Parses a batch body and submits its events, waiting for the commit. */
static bsp_ingest_result send(fixture *f, const char *batch_json) {
    return test_send_batch(f->ing, batch_json);
}

/* Loads the public form of the profile that id resolves to (NULL if none). */
static cJSON *profile_of(fixture *f, const char *id) {
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    bsp_txn *txn;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    uint64_t pid;
    cJSON *out = NULL;
    if (ingest_resolve(txn, id, &pid) == BSP_OK) {
        bsp_slice raw;
        if (store_profile_get(txn, pid, &raw) == BSP_OK) {
            bsp_profile *p;
            assert_int_equal(profile_from_json(raw.data, raw.len, &p), BSP_OK);
            out = profile_public_json(p);
            profile_free(p);
        }
    }
    store_txn_abort(txn);
    return out;
}

static double computed_num(const cJSON *prof, const char *key) {
    return json_get_number(json_get_object(prof, "computed"), key, -1);
}

static bsp_store_stats stats_of(fixture *f) {
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    bsp_txn *txn;
    bsp_store_stats s;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    assert_int_equal(store_stats(txn, &s), BSP_OK);
    store_txn_abort(txn);
    return s;
}

static bsp_err count(void *ctx, uint64_t seq, bsp_slice json) {
    (void)seq;
    (void)json;
    (*(size_t *)ctx)++;
    return BSP_OK;
}

static bsp_err last_seq_of(void *ctx, uint64_t seq, bsp_slice json) {
    (void)json;
    *(uint64_t *)ctx = seq;
    return BSP_OK;
}

static void test_events_reach_profile(void **state) {
    fixture *f = *state;
    bsp_ingest_result r =
        send(f, "{\"batch\":["
                "{\"type\":\"page\",\"anonymousId\":\"a1\",\"messageId\":\"m1\"},"
                "{\"type\":\"track\",\"event\":\"Product "
                "Viewed\",\"anonymousId\":\"a1\",\"messageId\":\"m2\","
                "\"properties\":{\"product_id\":\"p1\",\"name\":\"Lamp\",\"price\":10}}]}");
    assert_int_equal(r.accepted, 2);
    assert_int_equal(r.duplicates, 0);
    cJSON *p = profile_of(f, "a1");
    assert_non_null(p);
    assert_int_equal((int)computed_num(p, "page_views"), 1);
    assert_int_equal((int)computed_num(p, "product_views"), 1);
    cJSON_Delete(p);
    bsp_store_stats s = stats_of(f);
    assert_int_equal(s.events, 2);
    assert_int_equal(s.profiles, 1);
    assert_int_equal(s.products, 1); /* learnt from the event */
}

/* The submitting thread works out what each event teaches the catalog, so
 * the writer only looks it up. */
static const char facts_body[] =
    "{\"batch\":["
    "{\"type\":\"track\",\"event\":\"Product Viewed\",\"anonymousId\":\"c1\","
    "\"properties\":{\"product_id\":\"lamp\",\"name\":\"Lamp\",\"price\":10}},"
    "{\"type\":\"page\",\"anonymousId\":\"c1\"},"
    "{\"type\":\"track\",\"event\":\"Order Completed\",\"anonymousId\":\"c1\","
    "\"properties\":{\"products\":[{\"product_id\":\"desk\",\"price\":90}]}}]}";

static void test_catalog_facts_worked_out_on_submit(void **state) {
    fixture *f = *state;
    bsp_event_list list = {0};
    assert_int_equal(event_parse_body(facts_body, strlen(facts_body), BSP_EV_TYPE_COUNT,
                                      bsp_now_ms(), &list, NULL),
                     BSP_OK);
    assert_int_equal(list.count, 3);
    for (size_t i = 0; i < 3; i++)
        assert_false(list.items[i].facts_known);
    assert_int_equal(ingest_submit_wait(f->ing, list.items, list.count, NULL), BSP_OK);
    for (size_t i = 0; i < 3; i++) {
        assert_true(list.items[i].facts_known);
        assert_true(list.items[i].facts == catalog_event_facts(&list.items[i]));
    }
    assert_true(list.items[0].facts != 0); /* names a product */
    assert_true(list.items[1].facts == 0); /* a page view teaches nothing */
    assert_true(list.items[2].facts != 0);
    event_list_free(&list);
    assert_int_equal(stats_of(f).products, 2);
}

static void test_resend_is_deduplicated(void **state) {
    fixture *f = *state;
    const char *body =
        "{\"batch\":[{\"type\":\"page\",\"anonymousId\":\"a1\",\"messageId\":\"m1\"},"
        "{\"type\":\"page\",\"anonymousId\":\"a1\",\"messageId\":\"m1\"}]}";
    bsp_ingest_result r = send(f, body);
    assert_int_equal(r.accepted, 1); /* the same id twice in one batch */
    assert_int_equal(r.duplicates, 1);
    r = send(f, body);
    assert_int_equal(r.accepted, 0);
    assert_int_equal(r.duplicates, 2);
    assert_int_equal(stats_of(f).events, 1);
}

static void test_identify_merges_anonymous_history(void **state) {
    fixture *f = *state;
    send(f, "{\"batch\":[{\"type\":\"page\",\"anonymousId\":\"anon\",\"messageId\":\"m1\"},"
            "{\"type\":\"page\",\"userId\":\"u1\",\"messageId\":\"m2\"}]}");
    assert_int_equal(stats_of(f).profiles, 2);
    send(f, "{\"batch\":[{\"type\":\"identify\",\"userId\":\"u1\",\"anonymousId\":\"anon\","
            "\"messageId\":\"m3\",\"traits\":{\"quiz\":{\"style\":\"minimal\"}}}]}");
    assert_int_equal(stats_of(f).profiles, 1);
    cJSON *p = profile_of(f, "anon");
    cJSON *q = profile_of(f, "u1");
    assert_non_null(p);
    assert_non_null(q);
    assert_string_equal(json_get_string(p, "profile_id"), json_get_string(q, "profile_id"));
    assert_int_equal((int)computed_num(p, "page_views"), 2);
    assert_string_equal(json_get_string(json_path(p, "traits.quiz"), "style"), "minimal");
    cJSON_Delete(p);
    cJSON_Delete(q);
    /* The timeline holds all three events under the merged profile. */
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    bsp_txn *txn;
    uint64_t pid;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    assert_int_equal(ingest_resolve(txn, "u1", &pid), BSP_OK);
    size_t n = 0;
    assert_int_equal(store_profile_events(txn, pid, UINT64_MAX, 100, count, &n), BSP_OK);
    store_txn_abort(txn);
    assert_int_equal(n, 3);
}

static void test_alias_merges_previous_id(void **state) {
    fixture *f = *state;
    send(f, "{\"batch\":[{\"type\":\"track\",\"event\":\"Order Completed\",\"userId\":\"old\","
            "\"messageId\":\"m1\",\"properties\":{\"revenue\":30}},"
            "{\"type\":\"track\",\"event\":\"Order Completed\",\"userId\":\"new\","
            "\"messageId\":\"m2\",\"properties\":{\"revenue\":12.5}}]}");
    send(f, "{\"batch\":[{\"type\":\"alias\",\"previousId\":\"old\",\"userId\":\"new\","
            "\"messageId\":\"m3\"}]}");
    cJSON *p = profile_of(f, "old");
    assert_non_null(p);
    assert_int_equal((int)computed_num(p, "orders"), 2);
    assert_true(computed_num(p, "revenue") > 42.49 && computed_num(p, "revenue") < 42.51);
    cJSON_Delete(p);
    assert_int_equal(stats_of(f).profiles, 1);
}

static void test_two_known_users_do_not_merge_on_identify(void **state) {
    fixture *f = *state;
    send(f, "{\"batch\":[{\"type\":\"identify\",\"userId\":\"alice\",\"anonymousId\":\"dev\","
            "\"messageId\":\"m1\"},"
            "{\"type\":\"identify\",\"userId\":\"bob\",\"anonymousId\":\"dev\","
            "\"messageId\":\"m2\"}]}");
    assert_int_equal(stats_of(f).profiles, 2);
    cJSON *a = profile_of(f, "alice");
    cJSON *d = profile_of(f, "dev");
    cJSON *b = profile_of(f, "bob");
    /* The shared device now follows the person who identified last. */
    assert_string_equal(json_get_string(d, "profile_id"), json_get_string(b, "profile_id"));
    assert_string_not_equal(json_get_string(a, "profile_id"), json_get_string(b, "profile_id"));
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(d);
}

static void test_erasure_removes_everything(void **state) {
    fixture *f = *state;
    send(f, "{\"batch\":[{\"type\":\"identify\",\"userId\":\"u9\",\"anonymousId\":\"a9\","
            "\"messageId\":\"m1\",\"traits\":{\"email\":\"x@example.com\"}},"
            "{\"type\":\"page\",\"userId\":\"u9\",\"messageId\":\"m2\"},"
            "{\"type\":\"page\",\"anonymousId\":\"other\",\"messageId\":\"m3\"}]}");
    uint64_t deleted = 0;
    assert_int_equal(ingest_erase_profile(f->ing, "a9", &deleted), BSP_OK);
    assert_int_equal(deleted, 2);
    assert_null(profile_of(f, "u9"));
    assert_null(profile_of(f, "a9"));
    cJSON *other = profile_of(f, "other");
    assert_non_null(other);
    cJSON_Delete(other);
    bsp_store_stats s = stats_of(f);
    assert_int_equal(s.events, 1);
    assert_int_equal(s.profiles, 1);
    assert_int_equal(s.identities, 1);
    assert_int_equal(ingest_erase_profile(f->ing, "u9", NULL), BSP_ENOTFOUND);
    /* The person may come back later as someone new. */
    send(f, "{\"batch\":[{\"type\":\"page\",\"userId\":\"u9\",\"messageId\":\"m4\"}]}");
    cJSON *p = profile_of(f, "u9");
    assert_non_null(p);
    assert_int_equal((int)computed_num(p, "page_views"), 1);
    cJSON_Delete(p);
}

static void test_products_job(void **state) {
    fixture *f = *state;
    cJSON *prod = cJSON_Parse("{\"id\":\"sku1\",\"name\":\"Chair\",\"price\":99}");
    cJSON *const list[] = {prod};
    assert_int_equal(ingest_put_products(f->ing, list, 1), BSP_OK);
    cJSON_Delete(prod);
    /* An event about the product does not overwrite what the shop sent. */
    send(f, "{\"batch\":[{\"type\":\"track\",\"event\":\"Product Viewed\",\"anonymousId\":\"a\","
            "\"messageId\":\"m1\",\"properties\":{\"product_id\":\"sku1\",\"price\":1}}]}");
    bsp_txn *txn;
    bsp_slice raw;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    assert_int_equal(store_product_get(txn, "sku1", &raw), BSP_OK);
    cJSON *stored = cJSON_ParseWithLength(raw.data, raw.len);
    store_txn_abort(txn);
    assert_int_equal((int)json_get_number(stored, "price", 0), 99);
    cJSON_Delete(stored);
}

static void test_queue_bound_and_busy(void **state) {
    fixture *f = *state;
    ingest_stop(f->ing);
    bsp_ingest_opts opts = {.queue_max_events = 1};
    assert_int_equal(start_ingest(f, &opts), BSP_OK);
    bsp_event_list list = {0};
    bsp_error err;
    const char *body = "[{\"type\":\"page\",\"anonymousId\":\"a\"},"
                       "{\"type\":\"page\",\"anonymousId\":\"b\"}]";
    assert_int_equal(
        event_parse_body(body, strlen(body), BSP_EV_TYPE_COUNT, bsp_now_ms(), &list, &err), BSP_OK);
    assert_int_equal(ingest_submit(f->ing, list.items, list.count, NULL, NULL), BSP_EBUSY);
    /* Refused submissions stay the caller's; a waiting one goes alone. */
    bsp_ingest_result res;
    assert_int_equal(ingest_submit_wait(f->ing, list.items, list.count, &res), BSP_OK);
    assert_int_equal(res.accepted, 2);
    event_list_free(&list);
}

/* Sends one page view for each of the visitors v<from>..v<to - 1>. */
static void send_pages(fixture *f, int from, int to, int round) {
    bsp_buf body = {0};
    assert_int_equal(bsp_buf_puts(&body, "{\"batch\":["), BSP_OK);
    for (int i = from; i < to; i++)
        assert_int_equal(bsp_buf_printf(&body,
                                        "%s{\"type\":\"page\",\"anonymousId\":\"v%d\","
                                        "\"messageId\":\"m%d-%d\"}",
                                        i > from ? "," : "", i, round, i),
                         BSP_OK);
    assert_int_equal(bsp_buf_puts(&body, "]}"), BSP_OK);
    assert_int_equal(send(f, body.data).accepted, (size_t)(to - from));
    bsp_buf_free(&body);
}

/* Sends enough pages of other visitors for the store's dictionary, so
 * that later events are packed; returns the events the store then holds. */
static uint64_t fill_until_packing(fixture *f) {
    send_pages(f, 0, INGEST_DICT_EVENTS + 10, 0);
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    assert_true(store_event_packing(f->st));
    return stats_of(f).events;
}

/* The event of v<i>'s timeline (one event each), as JSON. */
static void assert_one_page_of(fixture *f, int i) {
    char id[32];
    snprintf(id, sizeof id, "v%d", i);
    bsp_txn *txn;
    uint64_t pid;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    assert_int_equal(ingest_resolve(txn, id, &pid), BSP_OK);
    size_t n = 0;
    assert_int_equal(store_profile_events(txn, pid, UINT64_MAX, 10, count, &n), BSP_OK);
    assert_int_equal(n, 1);
    bsp_slice json;
    uint64_t seq = 0;
    assert_int_equal(store_profile_events(txn, pid, UINT64_MAX, 1, last_seq_of, &seq), BSP_OK);
    assert_int_equal(store_event_get(txn, seq, &json), BSP_OK);
    cJSON *ev = cJSON_ParseWithLength(json.data, json.len);
    assert_non_null(ev);
    assert_string_equal(json_get_string(ev, "anonymousId"), id);
    cJSON_Delete(ev);
    store_txn_abort(txn);
}

/* A checkpoint of many changed profiles prints part of them on a helper
 * thread: every one is stored, each with its own numbers, and stays so
 * after the next checkpoint. */
static void test_checkpoint_of_many_profiles(void **state) {
    fixture *f = *state;
    send_pages(f, 0, 1000, 1);
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    send_pages(f, 0, 1000, 2);
    send_pages(f, 500, 1000, 3);
    for (int i = 0; i < 1000; i++) {
        char id[32];
        snprintf(id, sizeof id, "v%d", i);
        cJSON *p = profile_of(f, id);
        assert_non_null(p);
        int views = (int)json_get_number(json_get_object(p, "computed"), "page_views", -1);
        if (views != (i < 500 ? 2 : 3)) fail_msg("%s has %d page views", id, views);
        const cJSON *anon =
            cJSON_GetArrayItem(json_get_array(json_get_object(p, "ids"), "anonymousId"), 0);
        assert_string_equal(cJSON_GetStringValue(anon), id);
        cJSON_Delete(p);
    }
}

/* Once the log holds INGEST_DICT_EVENTS events, a checkpoint gives the
 * store its dictionary; later events are packed by the submitting thread,
 * and what was stored before and after reads back the same. */
static void test_events_packed_once_the_log_grows(void **state) {
    fixture *f = *state;
    send_pages(f, 0, INGEST_DICT_EVENTS / 2, 0);
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    assert_false(store_event_packing(f->st)); /* too few yet */
    send_pages(f, INGEST_DICT_EVENTS / 2, INGEST_DICT_EVENTS + 10, 0);
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    assert_true(store_event_packing(f->st));

    bsp_event_list list = {0};
    bsp_error err;
    const char *body = "[{\"type\":\"page\",\"anonymousId\":\"v-packed\",\"messageId\":\"p1\"}]";
    assert_int_equal(
        event_parse_body(body, strlen(body), BSP_EV_TYPE_COUNT, bsp_now_ms(), &list, &err), BSP_OK);
    bsp_ingest_result res;
    assert_int_equal(ingest_submit_wait(f->ing, list.items, list.count, &res), BSP_OK);
    assert_int_equal(res.accepted, 1);
    assert_non_null(list.items[0].packed);
    assert_true(list.items[0].packed_len < list.items[0].text_len);
    event_list_free(&list);
    send_pages(f, 5000, 5010, 1);
    assert_int_equal(send(f, "[{\"type\":\"page\",\"anonymousId\":\"v-packed\","
                             "\"messageId\":\"p1\"}]")
                         .duplicates,
                     1);
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    assert_one_page_of(f, 3);    /* stored as JSON */
    assert_one_page_of(f, 5004); /* stored packed */
    assert_int_equal(stats_of(f).events, INGEST_DICT_EVENTS + 10 + 1 + 10);
}

/* The dictionary does not wait for the checkpoint interval (ten minutes
 * here): the first INGEST_DICT_EVENTS events bring a checkpoint of their
 * own, so a new store packs its events from then on. */
static void test_dictionary_learnt_without_waiting(void **state) {
    fixture *f = *state;
    restart_without_checkpoints(f);
    send_pages(f, 0, INGEST_DICT_EVENTS + 10, 0);
    for (int i = 0; i < 500 && !store_event_packing(f->st); i++)
        bsp_sleep_ms(10);
    assert_true(store_event_packing(f->st));
}

/* Far more profiles than the writer's cache holds between two checkpoints:
 * its table grows, and every visitor's second event still finds the
 * profile its first one made. */
static void test_cache_grows_between_checkpoints(void **state) {
    fixture *f = *state;
    ingest_stop(f->ing);
    bsp_ingest_opts opts = {.cache_profiles = 10, .checkpoint_ms = 600000};
    assert_int_equal(ingest_start(f->st, &opts, &f->ing), BSP_OK);
    enum { VISITORS = 3000, PER_BATCH = 500 };
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < VISITORS; i += PER_BATCH)
            send_pages(f, i, i + PER_BATCH, round);
    assert_int_equal(stats_of(f).profiles, VISITORS);
    for (int i = 0; i < VISITORS; i += 499) {
        char id[16];
        snprintf(id, sizeof id, "v%d", i);
        cJSON *p = profile_of(f, id);
        assert_non_null(p);
        assert_int_equal((int)computed_num(p, "page_views"), 2);
        cJSON_Delete(p);
    }
}

static int done_calls;
static void on_done(void *ctx, const bsp_ingest_result *res) {
    (void)ctx;
    if (res->code == BSP_OK) done_calls++;
}

static void test_stop_drains_queue(void **state) {
    fixture *f = *state;
    done_calls = 0;
    bsp_event_list lists[50];
    for (int i = 0; i < 50; i++) {
        char body[128];
        snprintf(body, sizeof body, "[{\"type\":\"page\",\"anonymousId\":\"v%d\"}]", i);
        bsp_error err;
        memset(&lists[i], 0, sizeof lists[i]);
        assert_int_equal(
            event_parse_body(body, strlen(body), BSP_EV_TYPE_COUNT, bsp_now_ms(), &lists[i], &err),
            BSP_OK);
        assert_int_equal(ingest_submit(f->ing, lists[i].items, lists[i].count, on_done, NULL),
                         BSP_OK);
    }
    ingest_stop(f->ing); /* every callback has run when it returns */
    assert_int_equal(done_calls, 50);
    for (int i = 0; i < 50; i++)
        event_list_free(&lists[i]);
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    assert_int_equal(stats_of(f).events, 50);
}

/* Runs fn in a child process on the fixture's store, which dies without a
 * checkpoint when fn returns 0 (fn's other values are its exit status);
 * then reopens the store, ingest stopped. */
static void in_crashing_child(fixture *f, int (*fn)(fixture *f, const void *ctx), const void *ctx) {
    ingest_stop(f->ing);
    store_close(f->st);
    f->ing = NULL; /* a check that fails before the restart leaves teardown nothing to stop */
    f->st = NULL;
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        alarm(120); /* a child that hangs fails the test (killed) instead of stalling it */
        bsp_store_opts so = {.no_sync = false};
        bsp_ingest_opts io = {.checkpoint_ms = 600000, .checkpoint_events = 1000000};
        if (store_open(f->dir, &so, &f->st) || start_ingest(f, &io)) _exit(3);
        _exit(fn(f, ctx));
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    bsp_store_opts so = {.no_sync = true};
    assert_int_equal(store_open(f->dir, &so, &f->st), BSP_OK);
}

typedef struct batch_list {
    const char *const *batches;
    size_t n;
} batch_list;

static int send_all(fixture *f, const void *ctx) {
    const batch_list *list = ctx;
    for (size_t i = 0; i < list->n; i++)
        send(f, list->batches[i]);
    return 0; /* acknowledged, never checkpointed */
}

/* A child process sends the batches, each acknowledged, and dies before any
 * checkpoint; the store is reopened, ingest stopped. */
static void crash_after_groups(fixture *f, const char *const *batches, size_t n) {
    batch_list list = {batches, n};
    in_crashing_child(f, send_all, &list);
}

/* A writer that dies after acknowledging events but before any checkpoint:
 * the next start rebuilds profiles and timelines from the log, merges
 * included, without counting anything twice. */
static void test_replay_after_crash(void **state) {
    fixture *f = *state;
    send(f, "{\"batch\":[{\"type\":\"page\",\"anonymousId\":\"x\",\"messageId\":\"m0\"}]}");
    assert_int_equal(stats_of(f).profiles, 1); /* checkpointed */
    static const char *const batch[] = {
        "{\"batch\":[{\"type\":\"page\",\"anonymousId\":\"x\",\"messageId\":\"m1\"},"
        "{\"type\":\"page\",\"userId\":\"y\",\"messageId\":\"m2\"},"
        "{\"type\":\"identify\",\"userId\":\"y\",\"anonymousId\":\"x\",\"messageId\":\"m3\"},"
        "{\"type\":\"page\",\"anonymousId\":\"x\",\"messageId\":\"m4\"}]}"};
    crash_after_groups(f, batch, 1);
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    cJSON *p = profile_of(f, "x");
    assert_non_null(p);
    assert_int_equal((int)computed_num(p, "page_views"), 4);
    cJSON_Delete(p);
    bsp_store_stats s = stats_of(f);
    assert_int_equal(s.profiles, 1);
    assert_int_equal(s.events, 5);
    bsp_txn *txn;
    uint64_t pid;
    size_t n = 0;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    assert_int_equal(ingest_resolve(txn, "y", &pid), BSP_OK);
    assert_int_equal(store_profile_events(txn, pid, UINT64_MAX, 100, count, &n), BSP_OK);
    store_txn_abort(txn);
    assert_int_equal(n, 5);
    /* Starting again replays nothing more. */
    ingest_stop(f->ing);
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    p = profile_of(f, "y");
    assert_int_equal((int)computed_num(p, "page_views"), 4);
    cJSON_Delete(p);
}

/* --- replay equals live: a mixed stream with merges, half checkpointed ---- */

#define MIX_EVENTS 2000
#define MIX_ANON 30  /* anonymous visitors at a time; new ones every 500 events */
#define MIX_USERS 10 /* known users at a time; new ones every 1000 events */
#define MIX_ANON_ALL (MIX_ANON * (MIX_EVENTS / 500))
#define MIX_USERS_ALL (MIX_USERS * (MIX_EVENTS / 1000))

static uint64_t mix_hash(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Event i of a deterministic stream: pages, product views, cart adds,
 * orders, searches, identifies and aliases over a few visitors. */
static void mix_event(int i, bsp_buf *out) {
    uint64_t r = mix_hash((uint64_t)i);
    int anon = (int)(r % MIX_ANON) + i / 500 * MIX_ANON;
    int user = (int)(r / MIX_ANON % MIX_USERS) + i / 1000 * MIX_USERS;
    char ts[40];
    bsp_time_format(1700000000000LL + (int64_t)i * 97000, ts, sizeof ts);
    bsp_buf_printf(out, "%s{\"messageId\":\"mix-%d\",\"timestamp\":\"%s\",", i % 100 ? "," : "", i,
                   ts);
    switch (r / 7 % 10) {
    case 0:
        bsp_buf_printf(out,
                       "\"type\":\"identify\",\"userId\":\"u%d\",\"anonymousId\":\"a%d\","
                       "\"traits\":{\"n\":%d,\"quiz\":{\"style\":\"s%d\"}}}",
                       user, anon, i, i % 3);
        break;
    case 1:
        bsp_buf_printf(out, "\"type\":\"alias\",\"previousId\":\"a%d\",\"userId\":\"u%d\"}", anon,
                       user);
        break;
    case 5:
        bsp_buf_printf(out,
                       "\"type\":\"track\",\"event\":\"Product Viewed\",\"anonymousId\":"
                       "\"a%d\",\"properties\":{\"product_id\":\"p%d\",\"price\":%d.5,"
                       "\"category\":\"c%d\"}}",
                       anon, (int)(r % 7), (int)(r % 40), (int)(r % 3));
        break;
    case 6:
        bsp_buf_printf(out,
                       "\"type\":\"track\",\"event\":\"Product Added\",\"%s\":\"%c%d\","
                       "\"properties\":{\"product_id\":\"p%d\",\"price\":4,\"quantity\":2}}",
                       r & 1 ? "userId" : "anonymousId", r & 1 ? 'u' : 'a', r & 1 ? user : anon,
                       (int)(r % 7));
        break;
    case 7:
        bsp_buf_printf(out,
                       "\"type\":\"track\",\"event\":\"Order Completed\",\"userId\":\"u%d\","
                       "\"properties\":{\"revenue\":%d,\"products\":[{\"product_id\":\"p%d\","
                       "\"price\":3,\"quantity\":1}]}}",
                       user, i % 50, (int)(r % 7));
        break;
    case 8:
        bsp_buf_printf(out,
                       "\"type\":\"track\",\"event\":\"Products Searched\",\"anonymousId\":"
                       "\"a%d\",\"properties\":{\"query\":\"q%d\"}}",
                       anon, i);
        break;
    case 9:
        bsp_buf_printf(out, "\"type\":\"page\",\"userId\":\"u%d\"}", user);
        break;
    default:
        bsp_buf_printf(out, "\"type\":\"page\",\"anonymousId\":\"a%d\"}", anon);
    }
}

static void mix_send(fixture *f, int from, int to) {
    for (int start = from; start < to; start += 100) {
        bsp_buf body = {0};
        bsp_buf_puts(&body, "{\"batch\":[");
        for (int i = start; i < start + 100 && i < to; i++)
            mix_event(i, &body);
        bsp_buf_puts(&body, "]}");
        send(f, body.data);
        bsp_buf_free(&body);
    }
}

/* Every visitor's public profile, in id order, as one text. */
static char *mix_snapshot(fixture *f) {
    bsp_buf all = {0};
    char id[16];
    for (int k = 0; k < MIX_ANON_ALL + MIX_USERS_ALL; k++) {
        snprintf(id, sizeof id, k < MIX_ANON_ALL ? "a%d" : "u%d",
                 k < MIX_ANON_ALL ? k : k - MIX_ANON_ALL);
        cJSON *p = profile_of(f, id);
        bsp_buf_printf(&all, "%s=", id);
        if (p) json_write(&all, p);
        bsp_buf_puts(&all, "\n");
        cJSON_Delete(p);
    }
    bsp_buf_printf(&all, "events=%llu profiles=%llu\n", (unsigned long long)stats_of(f).events,
                   (unsigned long long)stats_of(f).profiles);
    return all.data;
}

static void test_replay_equals_live(void **state) {
    fixture *f = *state;
    mix_send(f, 0, MIX_EVENTS);
    char *live = mix_snapshot(f);
    ingest_stop(f->ing);
    store_close(f->st);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir %s", f->dir, f->dir);
    assert_int_equal(system(cmd), 0);

    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        bsp_store_opts so = {.no_sync = true}; /* a process crash keeps written pages */
        bsp_ingest_opts io = {.checkpoint_ms = 600000, .checkpoint_events = 10000000};
        if (store_open(f->dir, &so, &f->st) || start_ingest(f, &io)) _exit(3);
        mix_send(f, 0, MIX_EVENTS / 2);
        if (ingest_sync(f->ing) != BSP_OK) _exit(4); /* one checkpoint half-way */
        mix_send(f, MIX_EVENTS / 2, MIX_EVENTS);
        _exit(0); /* the second half only in the log */
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    bsp_store_opts so = {.no_sync = true};
    assert_int_equal(store_open(f->dir, &so, &f->st), BSP_OK);
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    char *replayed = mix_snapshot(f);
    assert_string_equal(replayed, live);
    /* And once more: a second start replays nothing twice. */
    ingest_stop(f->ing);
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    char *again = mix_snapshot(f);
    assert_string_equal(again, live);
    free(live);
    free(replayed);
    free(again);
}

/* --- the write-ahead file ----------------------------------------------- */

static const char *const wal_batches[] = {
    "{\"batch\":[{\"type\":\"page\",\"anonymousId\":\"w1\"},"
    "{\"type\":\"page\",\"anonymousId\":\"w1\",\"messageId\":\"k1\"}]}",
    "{\"batch\":[{\"type\":\"page\",\"anonymousId\":\"w1\"},"
    "{\"type\":\"page\",\"anonymousId\":\"w2\"}]}",
};

/* Acknowledged events that only the WAL holds come back after a crash, once:
 * starting again replays nothing (the events without a messageId would be
 * counted twice otherwise), in either mode. */
static void test_wal_replay_after_crash(void **state) {
    fixture *f = *state;
    crash_after_groups(f, wal_batches, 2);
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    assert_int_equal(stats_of(f).events, 4);
    cJSON *p = profile_of(f, "w1");
    assert_non_null(p);
    assert_int_equal((int)computed_num(p, "page_views"), 3);
    cJSON_Delete(p);
    ingest_stop(f->ing);
    assert_int_equal(ingest_start(f->st, NULL, &f->ing), BSP_OK); /* without the WAL */
    assert_int_equal(stats_of(f).events, 4);
    ingest_stop(f->ing);
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    assert_int_equal(stats_of(f).events, 4);
    /* A resend of the event with an id is still known. */
    bsp_ingest_result r =
        send(f, "[{\"type\":\"page\",\"anonymousId\":\"w1\",\"messageId\":\"k1\"}]");
    assert_int_equal(r.duplicates, 1);
}

/* Events read back from the write-ahead file or the log come without the
 * facts: the writer works them out and learns the same products. */
static void test_catalog_facts_worked_out_on_replay(void **state) {
    fixture *f = *state;
    const char *const batches[] = {facts_body};
    crash_after_groups(f, batches, 1);
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    bsp_store_stats s = stats_of(f);
    assert_int_equal(s.events, 3);
    assert_int_equal(s.products, 2);
}

/* The offset just past the last nonzero byte of the WAL (the records' end:
 * the file is zeros beyond them). */
static long wal_end(const fixture *f) {
    char path[128];
    snprintf(path, sizeof path, "%s/events.wal", f->dir);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    long end = 0, pos = 0;
    int c;
    while ((c = fgetc(fp)) != EOF) {
        pos++;
        if (c) end = pos;
    }
    fclose(fp);
    return end;
}

/* Packed events in the WAL: a writer that dies after acknowledging them
 * leaves packed records, and the next start unpacks and stores them. */
static void test_wal_replay_packed(void **state) {
    fixture *f = *state;
    send_pages(f, 0, INGEST_DICT_EVENTS + 10, 0);
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    assert_true(store_event_packing(f->st));
    static const char *const batch[] = {
        "[{\"type\":\"page\",\"anonymousId\":\"v7001\",\"messageId\":\"c1\"},"
        "{\"type\":\"page\",\"anonymousId\":\"v7002\",\"messageId\":\"c2\"}]",
        "[{\"type\":\"page\",\"anonymousId\":\"v7001\",\"messageId\":\"c3\"}]"};
    crash_after_groups(f, batch, 2);
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    assert_int_equal(stats_of(f).events, INGEST_DICT_EVENTS + 10 + 3);
    cJSON *p = profile_of(f, "v7001");
    assert_non_null(p);
    assert_int_equal((int)computed_num(p, "page_views"), 2);
    cJSON_Delete(p);
    assert_one_page_of(f, 7002);
    assert_int_equal(send(f, "[{\"type\":\"page\",\"anonymousId\":\"v7002\","
                             "\"messageId\":\"c2\"}]")
                         .duplicates,
                     1);
}

/* --- shared frames -------------------------------------------------------- */

/* A request with several events of each visitor, a merge among them, a
 * resend first in its visitor's run, and a visitor with one event. */
static const char *const frame_batches[] = {
    "{\"batch\":[{\"type\":\"page\",\"anonymousId\":\"fw\",\"messageId\":\"w1\"}]}",
    "{\"batch\":[{\"type\":\"page\",\"anonymousId\":\"fx\",\"messageId\":\"f1\"},"
    "{\"type\":\"page\",\"userId\":\"fy\",\"messageId\":\"f2\"},"
    "{\"type\":\"page\",\"anonymousId\":\"fw\",\"messageId\":\"w1\"},"
    "{\"type\":\"page\",\"anonymousId\":\"fx\",\"messageId\":\"f3\"},"
    "{\"type\":\"identify\",\"userId\":\"fy\",\"anonymousId\":\"fx\",\"messageId\":\"f4\"},"
    "{\"type\":\"page\",\"anonymousId\":\"fw\",\"messageId\":\"w2\"},"
    "{\"type\":\"page\",\"anonymousId\":\"fx\",\"messageId\":\"f5\"},"
    "{\"type\":\"page\",\"userId\":\"fy\",\"messageId\":\"f6\"},"
    "{\"type\":\"page\",\"anonymousId\":\"fz\",\"messageId\":\"f7\"},"
    "{\"type\":\"page\",\"anonymousId\":\"fw\",\"messageId\":\"w3\"}]}"};

static bsp_err add_message_id(void *ctx, uint64_t seq, bsp_slice json) {
    (void)seq;
    bsp_buf *out = ctx;
    cJSON *ev = cJSON_ParseWithLength(json.data, json.len);
    assert_non_null(ev);
    const char *id = json_get_string(ev, "messageId");
    assert_non_null(id);
    bsp_buf_printf(out, "%s%s", out->len ? "," : "", id);
    cJSON_Delete(ev);
    return BSP_OK;
}

/* id's timeline, newest first, is the messageIds of want. */
static void assert_timeline(fixture *f, const char *id, const char *want) {
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    bsp_txn *txn;
    uint64_t pid;
    bsp_buf got = {0};
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    assert_int_equal(ingest_resolve(txn, id, &pid), BSP_OK);
    assert_int_equal(store_profile_events(txn, pid, UINT64_MAX, 100, add_message_id, &got), BSP_OK);
    store_txn_abort(txn);
    if (strcmp(got.data ? got.data : "", want) != 0)
        fail_msg("%s: timeline %s, not %s", id, got.data, want);
    bsp_buf_free(&got);
}

static void assert_frame_batches_stored(fixture *f, uint64_t before) {
    assert_timeline(f, "fy", "f6,f5,f4,f3,f2,f1");
    assert_timeline(f, "fx", "f6,f5,f4,f3,f2,f1");
    assert_timeline(f, "fw", "w3,w2,w1");
    assert_timeline(f, "fz", "f7");
    assert_int_equal(stats_of(f).events, before + 10); /* w1 came twice */
    cJSON *p = profile_of(f, "fx");
    assert_int_equal((int)computed_num(p, "page_views"), 5);
    cJSON_Delete(p);
    uint64_t deleted = 0;
    assert_int_equal(ingest_erase_profile(f->ing, "fx", &deleted), BSP_OK);
    assert_int_equal(deleted, 6);
    assert_int_equal(stats_of(f).events, before + 4);
    assert_timeline(f, "fw", "w3,w2,w1");
    assert_timeline(f, "fz", "f7");
}

/* Once events are packed, each visitor's events of a request share one
 * frame; every reader gets each event back as sent, merges and resends
 * included, and an erasure takes the whole frame. */
static void test_visitor_events_share_a_frame(void **state) {
    fixture *f = *state;
    uint64_t before = fill_until_packing(f);
    send(f, frame_batches[0]);
    bsp_event_list list = {0};
    bsp_error err;
    const char *body = frame_batches[1];
    assert_int_equal(
        event_parse_body(body, strlen(body), BSP_EV_TYPE_COUNT, bsp_now_ms(), &list, &err), BSP_OK);
    bsp_ingest_result res;
    assert_int_equal(ingest_submit_wait(f->ing, list.items, list.count, &res), BSP_OK);
    assert_int_equal(res.accepted, 9);
    assert_int_equal(res.duplicates, 1);
    const bsp_event *ev = list.items;
    /* fx: f1 f3 f5; fy: f2 f6; fw: w1 (resent) w2 w3; f4 and f7 alone. */
    assert_non_null(ev[0].frame);
    assert_ptr_equal(ev[0].frame, ev[3].frame);
    assert_ptr_equal(ev[0].frame, ev[6].frame);
    assert_int_equal(ev[6].frame_index, 2);
    assert_non_null(ev[1].frame);
    assert_ptr_equal(ev[1].frame, ev[7].frame);
    assert_ptr_equal(ev[2].frame, ev[5].frame);
    assert_ptr_equal(ev[2].frame, ev[9].frame);
    assert_true(ev[0].frame != ev[1].frame && ev[1].frame != ev[2].frame);
    assert_null(ev[4].frame);
    assert_non_null(ev[4].packed);
    assert_null(ev[8].frame);
    assert_true(ev[0].frame_owner && !ev[3].frame_owner);
    event_list_free(&list);
    assert_frame_batches_stored(f, before);
}

/* The same requests acknowledged and never checkpointed: the restart reads
 * the frames back from the write-ahead file (members refer back to a
 * record before them) or the stored log, and stores the same events. */
static void test_frames_replayed_after_crash(void **state) {
    fixture *f = *state;
    uint64_t before = fill_until_packing(f);
    crash_after_groups(f, frame_batches, 2);
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    assert_frame_batches_stored(f, before);
}

static void wal_flip_byte(const fixture *f, long at) {
    char path[128];
    snprintf(path, sizeof path, "%s/events.wal", f->dir);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, at, SEEK_SET), 0);
    int c = fgetc(fp);
    assert_int_equal(fseek(fp, at, SEEK_SET), 0);
    fputc(c ^ 0xff, fp);
    fclose(fp);
}

/* A damaged record ends the replay there: what came before it is kept. */
static void test_wal_torn_tail(void **state) {
    fixture *f = *state;
    crash_after_groups(f, wal_batches, 2);
    long end = wal_end(f);
    assert_true(end > 0);
    wal_flip_byte(f, end - 1); /* the last record's last byte */
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    assert_int_equal(stats_of(f).events, 3);
    cJSON *p = profile_of(f, "w2");
    assert_null(p); /* its event was the damaged one */
    p = profile_of(f, "w1");
    assert_int_equal((int)computed_num(p, "page_views"), 3);
    cJSON_Delete(p);
}

/* After a clean stop the file still holds the records, of a retired
 * generation: they are not replayed. */
static void test_wal_clean_stop_retires_records(void **state) {
    fixture *f = *state;
    send(f, wal_batches[0]);
    send(f, wal_batches[1]);
    ingest_stop(f->ing);
    assert_true(wal_end(f) > 0);
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    assert_int_equal(stats_of(f).events, 4);
    ingest_stop(f->ing);
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    send(f, "[{\"type\":\"page\",\"anonymousId\":\"w3\"}]");
    assert_int_equal(stats_of(f).events, 5);
}

/* Groups of one to three events with padding of every length, so records
 * start and end anywhere in a block, the last block is rewritten by the
 * next group, and the records span several blocks. */
#define WAL_GROUPS 60
static char **wal_padded_batches(size_t n, const char *visitor) {
    char **batches = calloc(n, sizeof *batches);
    assert_non_null(batches);
    for (size_t i = 0; i < n; i++) {
        bsp_buf b = {0};
        bsp_buf_puts(&b, "[");
        for (size_t k = 0; k <= i % 3; k++) {
            size_t pad = (i * 173 + k * 59) % 900;
            bsp_buf_printf(&b,
                           "%s{\"type\":\"page\",\"anonymousId\":\"%s%zu\",\"properties\":"
                           "{\"pad\":\"%*s\"}}",
                           k ? "," : "", visitor, i % 5, (int)pad, "");
        }
        bsp_buf_puts(&b, "]");
        batches[i] = b.data;
    }
    return batches;
}

static void free_batches(char **batches, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(batches[i]);
    free(batches);
}

/* Events of groups 0..n-1 of wal_padded_batches for visitor number v. */
static int padded_views(size_t n, size_t v) {
    int views = 0;
    for (size_t i = v; i < n; i += 5)
        views += (int)(i % 3) + 1;
    return views;
}

/* Every group written comes back after a crash, however its records fall
 * on blocks; after the checkpoint that stored them, the next generation is
 * written from the start of the file over them, and a second crash
 * replays exactly its own groups. */
static void test_wal_groups_across_blocks(void **state) {
    fixture *f = *state;
    char **first = wal_padded_batches(WAL_GROUPS, "p");
    crash_after_groups(f, (const char *const *)first, WAL_GROUPS);
    assert_true(wal_end(f) > 3 * 4096);
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    size_t events = 0;
    for (size_t i = 0; i < WAL_GROUPS; i++)
        events += i % 3 + 1;
    assert_int_equal(stats_of(f).events, events);
    for (size_t v = 0; v < 5; v++) {
        char id[8];
        snprintf(id, sizeof id, "p%zu", v);
        cJSON *p = profile_of(f, id);
        assert_non_null(p);
        assert_int_equal((int)computed_num(p, "page_views"), padded_views(WAL_GROUPS, v));
        cJSON_Delete(p);
    }
    char **second = wal_padded_batches(7, "q");
    crash_after_groups(f, (const char *const *)second, 7);
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    assert_int_equal(stats_of(f).events, events + 1 + 2 + 3 + 1 + 2 + 3 + 1);
    cJSON *p = profile_of(f, "q1");
    assert_non_null(p);
    assert_int_equal((int)computed_num(p, "page_views"), padded_views(7, 1));
    cJSON_Delete(p);
    p = profile_of(f, "p1");
    assert_int_equal((int)computed_num(p, "page_views"), padded_views(WAL_GROUPS, 1));
    cJSON_Delete(p);
    free_batches(first, WAL_GROUPS);
    free_batches(second, 7);
}

/* Whether this directory's filesystem takes O_DIRECT opens. */
static bool dir_allows_direct(const char *dir) {
    char path[128];
    snprintf(path, sizeof path, "%s/direct-probe", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_DIRECT, 0600);
    if (fd >= 0) close(fd);
    unlink(path);
    return fd >= 0;
}

/* The metric tells how groups reach the file: directly wherever the
 * filesystem allows it, unless the caller asked for the page cache. */
static void test_wal_direct_where_allowed(void **state) {
    fixture *f = *state;
    send(f, wal_batches[0]);
    bsp_ingest_metrics m;
    ingest_metrics(f->ing, &m);
    assert_int_equal(m.wal_direct, !wal_buffered && !wal_sync && dir_allows_direct(f->dir));
}

static uint64_t wal_syncs_of(fixture *f) {
    bsp_ingest_metrics m;
    ingest_metrics(f->ing, &m);
    return m.wal_syncs;
}

/* Each group is synced before it is answered; with wal_sync_ms a group is
 * answered unsynced, and the writer syncs it that much later even when no
 * other group comes (well before the next checkpoint). */
static void test_wal_syncs(void **state) {
    fixture *f = *state;
    if (!wal_sync) {
        send(f, wal_batches[0]);
        send(f, wal_batches[1]);
        assert_int_equal(wal_syncs_of(f), 2);
        return;
    }
    ingest_stop(f->ing);
    bsp_ingest_opts io = {.checkpoint_ms = 60000, .wal_sync_ms = 300};
    assert_int_equal(start_ingest(f, &io), BSP_OK);
    send(f, wal_batches[0]);
    send(f, wal_batches[1]);
    assert_int_equal(wal_syncs_of(f), 0); /* answered, not yet synced */
    for (int i = 0; i < 300 && wal_syncs_of(f) == 0; i++)
        usleep(10000);
    assert_int_equal(wal_syncs_of(f), 1); /* both groups in one sync */
    assert_int_equal(stats_of(f).events, 4);
}

/* --- failures of the disk, injected (core.h: bsp_fault_arm) -------------------------- */

/* The point where a group's write fails in the group's mode: its LMDB
 * commit, or its record's write in the write-ahead file. */
static bsp_fault_point group_write_point(void) {
    return write_ahead ? BSP_FAULT_WAL_WRITE : BSP_FAULT_STORE_COMMIT;
}

/* Sends a batch expected to fail; returns its result. */
static bsp_ingest_result send_failing(fixture *f, const char *batch_json) {
    bsp_event_list list = {0};
    bsp_error err;
    bsp_error_clear(&err);
    assert_int_equal(event_parse_body(batch_json, strlen(batch_json), BSP_EV_TYPE_COUNT,
                                      bsp_now_ms(), &list, &err),
                     BSP_OK);
    bsp_ingest_result res = {0};
    bsp_err rc = ingest_submit_wait(f->ing, list.items, list.count, &res);
    event_list_free(&list);
    assert_int_equal(rc, res.code);
    return res;
}

static const char fault_ok1[] = "[{\"type\":\"page\",\"anonymousId\":\"fa\",\"messageId\":\"f1\"}]";
static const char fault_bad[] = "[{\"type\":\"page\",\"anonymousId\":\"fz\",\"messageId\":\"f2\"},"
                                "{\"type\":\"page\",\"anonymousId\":\"fa\",\"messageId\":\"f3\"}]";
static const char fault_ok2[] = "[{\"type\":\"page\",\"anonymousId\":\"fa\",\"messageId\":\"f4\"}]";

static int views_of(fixture *f, const char *id) {
    cJSON *p = profile_of(f, id);
    int views = p ? (int)computed_num(p, "page_views") : 0;
    cJSON_Delete(p);
    return views;
}

/* A group whose write fails is answered with the store's failure and leaves
 * no trace: not stored, not counted, its messageIds not remembered (a
 * resend is a new event, not a duplicate); the groups around it are kept,
 * and the writer goes on. */
static void test_failed_group_leaves_no_trace(void **state) {
    fixture *f = *state;
    restart_without_checkpoints(f); /* the armed point is for the group's write alone */
    assert_int_equal(send(f, fault_ok1).accepted, 1);
    bsp_fault_arm(group_write_point(), 0, 1);
    bsp_ingest_result r = send_failing(f, fault_bad);
    assert_int_equal(r.code, BSP_ESTORE);
    assert_int_equal(r.accepted, 0);
    assert_int_equal(bsp_fault_fired(group_write_point()), 1);
    assert_int_equal(send(f, fault_ok2).accepted, 1);
    assert_int_equal(stats_of(f).events, 2);
    assert_int_equal(views_of(f, "fa"), 2);
    assert_null(profile_of(f, "fz"));
    r = send(f, fault_bad); /* the client's retry */
    assert_int_equal(r.accepted, 2);
    assert_int_equal(r.duplicates, 0);
    assert_int_equal(stats_of(f).events, 4);
    assert_int_equal(views_of(f, "fa"), 3);
    assert_int_equal(views_of(f, "fz"), 1);
    bsp_ingest_metrics m;
    ingest_metrics(f->ing, &m);
    assert_int_equal(m.commit_failures, 1);
}

static int good_failed_good(fixture *f, const void *ctx) {
    (void)ctx;
    send(f, fault_ok1);
    bsp_fault_arm(group_write_point(), 0, 1);
    if (send_failing(f, fault_bad).code != BSP_ESTORE) return 4;
    send(f, fault_ok2);
    return 0;
}

/* The same in a process that dies after it: the next start finds the
 * acknowledged groups on both sides of the failed one, and not it. */
static void test_failed_group_then_crash(void **state) {
    fixture *f = *state;
    in_crashing_child(f, good_failed_good, NULL);
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    assert_int_equal(stats_of(f).events, 2);
    assert_int_equal(views_of(f, "fa"), 2);
    assert_null(profile_of(f, "fz"));
}

/* A hook that fails the group it runs in while hook_fails is set. */
static atomic_bool hook_fails;
static bsp_err failing_hook(void *ctx, bsp_txn *txn, bsp_profile *p, const ingest_touch *t) {
    (void)ctx;
    (void)txn;
    (void)p;
    (void)t;
    return atomic_load(&hook_fails) ? BSP_ESTORE : BSP_OK;
}

typedef struct hook_round {
    const char *ok, *bad; /* a group that goes through, one the hook fails */
    bool rebuild_fails;   /* every store commit fails from the failed group on */
} hook_round;

/* round->ok, round->bad failed by the hook, then (unless the rebuild
 * fails) fault_ok2; a rebuild that cannot checkpoint keeps the generation,
 * which otherwise would hide the failed group's records from later scans
 * whatever the file held. */
static int good_hook_failed_good(fixture *f, const void *ctx) {
    const hook_round *round = ctx;
    ingest_hooks hooks = {.profile_changed = failing_hook};
    ingest_set_hooks(f->ing, &hooks);
    if (send(f, round->ok).accepted != 1) return 4;
    atomic_store(&hook_fails, true);
    if (round->rebuild_fails) bsp_fault_arm(BSP_FAULT_STORE_COMMIT, 0, 1000000);
    bsp_ingest_result r = send_failing(f, round->bad);
    atomic_store(&hook_fails, false);
    if (r.code != BSP_ESTORE || r.accepted) return 5;
    if (round->rebuild_fails) return 0;
    if (send(f, fault_ok2).accepted != 1) return 6;
    return 0;
}

/* A group that fails after its records' write may have begun (a hook's
 * error: hooks run while the device writes, where the WAL writes
 * asynchronously) leaves none of them in the file: a process that dies
 * after it, its rebuild failed or not, comes back with the groups around
 * the failed one only. */
static void test_group_failed_while_written_then_crash(void **state) {
    fixture *f = *state;
    atomic_store(&hook_fails, false);
    const hook_round first = {fault_ok1, fault_bad, false};
    in_crashing_child(f, good_hook_failed_good, &first);
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    assert_int_equal(stats_of(f).events, 2);
    assert_int_equal(views_of(f, "fa"), 2);
    assert_null(profile_of(f, "fz"));
    const hook_round second = {"[{\"type\":\"page\",\"anonymousId\":\"fa\",\"messageId\":\"f5\"}]",
                               "[{\"type\":\"page\",\"anonymousId\":\"fz\",\"messageId\":\"f6\"},"
                               "{\"type\":\"page\",\"anonymousId\":\"fa\",\"messageId\":\"f7\"}]",
                               true};
    in_crashing_child(f, good_hook_failed_good, &second);
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    assert_int_equal(stats_of(f).events, 3);
    assert_int_equal(views_of(f, "fa"), 3);
    assert_null(profile_of(f, "fz"));
}

/* The first group of a generation fails its sync after its two records
 * reached the file; the next group's one record is exactly as long as the
 * first of them and is written where they were. */
static int failed_first_group(fixture *f, const void *ctx) {
    (void)ctx;
    send(f, fault_ok1);                          /* grows the file (a sync of its own) */
    if (ingest_sync(f->ing) != BSP_OK) return 5; /* a checkpoint: a new generation */
    bsp_fault_arm(BSP_FAULT_WAL_SYNC, 0, 1);
    if (send_failing(f, "[{\"type\":\"page\",\"anonymousId\":\"fz\",\"messageId\":\"f2\"},"
                        "{\"type\":\"page\",\"anonymousId\":\"fy\",\"messageId\":\"f5\"}]")
            .code != BSP_ESTORE)
        return 4;
    send(f, "[{\"type\":\"page\",\"anonymousId\":\"fx\",\"messageId\":\"f6\"}]");
    return 0;
}

/* The failed group's second record, intact in the file and starting where
 * the acknowledged record ends, is not replayed after a crash: the failure
 * retired its generation. */
static void test_failed_first_group_then_crash(void **state) {
    fixture *f = *state;
    if (!wal_buffered || wal_sync) return; /* only there does a failed group reach the file */
    in_crashing_child(f, failed_first_group, NULL);
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    assert_int_equal(stats_of(f).events, 2);
    assert_int_equal(views_of(f, "fx"), 1);
    assert_null(profile_of(f, "fy"));
}

/* A checkpoint whose commit fails loses nothing acknowledged and counts
 * nothing twice: the writer rebuilds from the stored log and the
 * write-ahead file's records, and stores them with the next checkpoint. */
static void test_failed_checkpoint_keeps_groups(void **state) {
    fixture *f = *state;
    restart_without_checkpoints(f);
    send(f, wal_batches[0]);
    send(f, wal_batches[1]);
    bsp_fault_arm(BSP_FAULT_STORE_COMMIT, 0, 1);
    assert_int_equal(stats_of(f).events, 4); /* its ingest_sync asks for the checkpoint */
    assert_int_equal(bsp_fault_fired(BSP_FAULT_STORE_COMMIT), 1);
    assert_int_equal(views_of(f, "w1"), 3);
    assert_int_equal(views_of(f, "w2"), 1);
    assert_int_equal(send(f, wal_batches[0]).duplicates, 1); /* k1 is still known */
    static const char *const more[] = {"[{\"type\":\"page\",\"anonymousId\":\"w2\"}]"};
    crash_after_groups(f, more, 1);
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    assert_int_equal(stats_of(f).events, 6);
    assert_int_equal(views_of(f, "w1"), 4);
    assert_int_equal(views_of(f, "w2"), 2);
}

/* A failed sync: in the default way the group is not acknowledged and
 * leaves no trace, though its records reached the file (the rebuild
 * replays the records of acknowledged groups only); answered
 * before their sync (--wal-sync), the groups were acknowledged already, so
 * a checkpoint stores them at once instead of at the next interval. With
 * direct writes a sync is part of each write: the write's failure is
 * test_failed_group_leaves_no_trace. */
static void test_failed_sync(void **state) {
    fixture *f = *state;
    if (!wal_buffered && !wal_sync) return;
    ingest_stop(f->ing);
    bsp_ingest_opts io = {.checkpoint_ms = 600000, .checkpoint_events = 1000000};
    assert_int_equal(start_ingest(f, &io), BSP_OK);
    assert_int_equal(send(f, fault_ok1).accepted, 1);
    bsp_ingest_metrics m;
    ingest_metrics(f->ing, &m);
    uint64_t checkpoints = m.checkpoints;
    bsp_fault_arm(BSP_FAULT_WAL_SYNC, 0, 1);
    if (!wal_sync) {
        bsp_ingest_result r = send_failing(f, fault_bad);
        assert_int_equal(r.code, BSP_ESTORE);
        assert_int_equal(stats_of(f).events, 1);
        assert_null(profile_of(f, "fz"));
        r = send(f, fault_bad); /* the client's retry */
        assert_int_equal(r.accepted, 2);
    } else {
        assert_int_equal(send(f, fault_bad).accepted, 2);
        for (int i = 0; i < 500 && m.checkpoints == checkpoints; i++) {
            usleep(10000);
            ingest_metrics(f->ing, &m);
        }
        assert_int_equal(bsp_fault_fired(BSP_FAULT_WAL_SYNC), 1);
        assert_int_equal(m.checkpoints, checkpoints + 1); /* not 10 minutes later */
        assert_int_equal(m.commit_failures, 1);
        assert_int_equal(m.wal_syncs, 0);
    }
    assert_int_equal(stats_of(f).events, 3);
    assert_int_equal(views_of(f, "fa"), 2);
    assert_int_equal(views_of(f, "fz"), 1);
}

typedef struct sync_call {
    bsp_ingest *ing;
    bsp_err rc;
    atomic_bool done;
} sync_call;

static void *sync_thread(void *arg) {
    sync_call *c = arg;
    c->rc = ingest_sync(c->ing);
    atomic_store(&c->done, true);
    return NULL;
}

/* ingest_sync, failing the test if it has not returned within 10 s (the
 * thread is then left to the fixture's stop, which ends every wait). */
static bsp_err sync_within_10s(fixture *f) {
    sync_call *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->ing = f->ing;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, sync_thread, c), 0);
    for (int i = 0; i < 1000 && !atomic_load(&c->done); i++)
        usleep(10000);
    if (!atomic_load(&c->done)) fail_msg("ingest_sync still waiting after 10 s");
    pthread_join(t, NULL);
    bsp_err rc = c->rc;
    free(c);
    return rc;
}

/* After the disk healed (faults disarmed): the next group is stored after
 * fault_ok1, which was acknowledged before the failure, fault_bad left no
 * trace, and a crash before the next checkpoint loses nothing either. */
static void assert_healed_and_crash_safe(fixture *f) {
    bsp_fault_disarm_all();
    assert_int_equal(send(f, fault_ok2).accepted, 1);
    assert_int_equal(sync_within_10s(f), BSP_OK);
    assert_int_equal(stats_of(f).events, 2);
    assert_int_equal(views_of(f, "fa"), 2);
    assert_null(profile_of(f, "fz"));
    static const char *const more[] = {"[{\"type\":\"page\",\"anonymousId\":\"fa\"}]"};
    crash_after_groups(f, more, 1);
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    assert_int_equal(stats_of(f).events, 3);
    assert_int_equal(views_of(f, "fa"), 3);
    assert_int_equal(send(f, fault_ok1).duplicates, 1);
}

/* A rebuild stores what the log held before it replays the write-ahead
 * file, in a transaction of its own. When that first commit works and the
 * second fails, the file's records must still be the live ones: the next
 * rebuild replays them, and no acknowledged event is lost, live or after a
 * crash. */
static void test_rebuild_half_done_keeps_the_file(void **state) {
    fixture *f = *state;
    restart_without_checkpoints(f);
    assert_int_equal(send(f, fault_ok1).accepted, 1);
    bsp_fault_arm(BSP_FAULT_WAL_WRITE, 0, 1);
    bsp_fault_arm(BSP_FAULT_STORE_COMMIT, 1, 1); /* the log's commit works, the file's fails */
    assert_int_equal(send_failing(f, fault_bad).code, BSP_ESTORE);
    assert_int_equal(bsp_fault_fired(BSP_FAULT_STORE_COMMIT), 1);
    assert_healed_and_crash_safe(f);
}

/* The disk fails for a while: every write and commit, the writer's rebuild
 * included. Meanwhile each group is refused and a reader waiting for a
 * checkpoint is told the store failed instead of waiting for ever; once
 * the disk works again the next group rebuilds first and is stored after
 * everything acknowledged before the failure, which is all there, live and
 * after a crash. */
static void test_rebuild_fails_until_the_disk_heals(void **state) {
    fixture *f = *state;
    restart_without_checkpoints(f);
    assert_int_equal(send(f, fault_ok1).accepted, 1);
    bsp_fault_arm(BSP_FAULT_STORE_COMMIT, 0, 1000);
    bsp_fault_arm(BSP_FAULT_WAL_WRITE, 0, 1000);
    assert_int_equal(send_failing(f, fault_bad).code, BSP_ESTORE);
    assert_int_equal(sync_within_10s(f), BSP_ESTORE);
    assert_int_equal(send_failing(f, fault_bad).code, BSP_ESTORE);
    assert_healed_and_crash_safe(f);
}

/* --- every failure point in turn ------------------------------------------------------ */

#define SWEEP_GROUPS 6
#define SWEEP_SWE (SWEEP_GROUPS - 1)   /* the group of visitor swe, erased after it */
#define SWEEP_ERASED SWEEP_GROUPS      /* where the run notes the erasure of swe */
#define SWEEP_MARKS (SWEEP_GROUPS + 4) /* groups, erasure, the two points fired, NUL */
#define SWEEP_NEVER 1000u              /* a skip no run reaches: the point is not armed in effect */

/* One run of the sweep: the first write-ahead write (or sync) to fail, and
 * the first store commit to fail, counted from when they are armed. */
typedef struct sweep_run {
    bsp_fault_point wal_point;
    unsigned wal_skip, commit_skip;
    bool wal_fired, commit_fired; /* what the child's run hit */
    bool refused_after_acked;     /* a group was refused after one was acknowledged */
} sweep_run;

/* The sweep's groups, three events each (the first two with ids):
 * visitors sw0 and sw3 browse anonymously and user swu signed in; the third
 * group identifies sw0 as swu, merging the two histories, and the fifth
 * aliases sw3 to swu. Visitor swe of the last group is then erased. */
static const char *const sweep_groups[SWEEP_GROUPS] = {
    "[{\"type\":\"page\",\"anonymousId\":\"sw0\",\"messageId\":\"g0a\"},"
    "{\"type\":\"page\",\"anonymousId\":\"sw0\",\"messageId\":\"g0b\"},"
    "{\"type\":\"page\",\"anonymousId\":\"sw0\"}]",
    "[{\"type\":\"page\",\"userId\":\"swu\",\"messageId\":\"g1a\"},"
    "{\"type\":\"page\",\"userId\":\"swu\",\"messageId\":\"g1b\"},"
    "{\"type\":\"page\",\"userId\":\"swu\"}]",
    "[{\"type\":\"identify\",\"userId\":\"swu\",\"anonymousId\":\"sw0\",\"messageId\":\"g2a\"},"
    "{\"type\":\"page\",\"anonymousId\":\"sw0\",\"messageId\":\"g2b\"},"
    "{\"type\":\"page\",\"anonymousId\":\"sw0\"}]",
    "[{\"type\":\"page\",\"anonymousId\":\"sw3\",\"messageId\":\"g3a\"},"
    "{\"type\":\"page\",\"anonymousId\":\"sw3\",\"messageId\":\"g3b\"},"
    "{\"type\":\"page\",\"anonymousId\":\"sw3\"}]",
    "[{\"type\":\"alias\",\"previousId\":\"sw3\",\"userId\":\"swu\",\"messageId\":\"g4a\"},"
    "{\"type\":\"page\",\"userId\":\"swu\",\"messageId\":\"g4b\"},"
    "{\"type\":\"page\",\"userId\":\"swu\"}]",
    "[{\"type\":\"page\",\"anonymousId\":\"swe\",\"messageId\":\"g5a\"},"
    "{\"type\":\"page\",\"anonymousId\":\"swe\",\"messageId\":\"g5b\"},"
    "{\"type\":\"page\",\"anonymousId\":\"swe\"}]",
};

/* The page views each id must show after a run that acknowledged the groups
 * marked 'y' in acked: swu's profile holds what reached it directly and
 * what the merges brought; sw0 and sw3 are swu's once merged. */
static void sweep_expected(const char *acked, int *sw0, int *swu, int *sw3) {
    int g[SWEEP_GROUPS];
    for (int i = 0; i < SWEEP_GROUPS; i++)
        g[i] = acked[i] == 'y';
    *swu = 3 * g[1] + g[2] * (2 + 3 * g[0]) + g[4] * (2 + 3 * g[3]);
    *sw0 = g[2] ? *swu : 3 * g[0];
    *sw3 = g[4] ? *swu : 3 * g[3];
}

static void sweep_path(const fixture *f, char *path, size_t cap) {
    snprintf(path, cap, "%s/sweep.acked", f->dir);
}

/* The child: arms both points, sends the groups (a checkpoint after the
 * second and the fourth), writes which were acknowledged and which points
 * fired to DIR/sweep.acked, and dies without a checkpoint. */
static int sweep_child(fixture *f, const void *ctx) {
    const sweep_run *run = ctx;
    bsp_fault_arm(run->wal_point, run->wal_skip, 1);
    bsp_fault_arm(BSP_FAULT_STORE_COMMIT, run->commit_skip, 1);
    char acked[SWEEP_MARKS] = {0};
    for (int i = 0; i < SWEEP_GROUPS; i++) {
        acked[i] = send_failing(f, sweep_groups[i]).code == BSP_OK ? 'y' : 'n';
        if (i == 1 || i == 3) (void)ingest_sync(f->ing); /* a refusal is fine here */
    }
    acked[SWEEP_ERASED] = ingest_erase_profile(f->ing, "swe", NULL) == BSP_OK ? 'e' : '-';
    acked[SWEEP_ERASED + 1] = bsp_fault_fired(run->wal_point) ? 'w' : '-';
    acked[SWEEP_ERASED + 2] = bsp_fault_fired(BSP_FAULT_STORE_COMMIT) ? 'c' : '-';
    char path[128];
    sweep_path(f, path, sizeof path);
    FILE *fp = fopen(path, "w");
    if (!fp || fputs(acked, fp) < 0 || fclose(fp) != 0) return 5;
    return 0;
}

/* Whether the sweep runs on a store that packs events (shared frames for
 * each group's visitor), and the events each run's store held before it. */
static bool sweep_packed;
static uint64_t sweep_seeded;

/* A fresh store made ready for a run: with sweep_packed, enough events of
 * other visitors for its dictionary. */
static void sweep_seed(fixture *f) {
    sweep_seeded = sweep_packed ? fill_until_packing(f) : 0;
}

/* Runs one child, restarts, and checks: each acknowledged group is stored
 * once with its merges (the page views of each id, its ids known), each
 * refused one left no trace (its views and merge missing, its ids new),
 * and the erasure is whole or not at all. Leaves a fresh store. */
static void sweep_once(fixture *f, sweep_run *run) {
    in_crashing_child(f, sweep_child, run);
    char path[128], acked[SWEEP_MARKS] = {0};
    sweep_path(f, path, sizeof path);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(acked, sizeof acked, fp));
    fclose(fp);
    run->wal_fired = acked[SWEEP_ERASED + 1] == 'w';
    run->commit_fired = acked[SWEEP_ERASED + 2] == 'c';
    bool erased = acked[SWEEP_ERASED] == 'e';
    const char *yes = strchr(acked, 'y');
    run->refused_after_acked = yes && memchr(yes, 'n', (size_t)(acked + SWEEP_GROUPS - yes));
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    int want[3], got[3];
    static const char *const ids[3] = {"sw0", "swu", "sw3"};
    sweep_expected(acked, &want[0], &want[1], &want[2]);
    for (int k = 0; k < 3; k++)
        if ((got[k] = views_of(f, ids[k])) != want[k])
            fail_msg("wal skip %u, commit skip %u, groups acknowledged %.7s: %s has %d views, "
                     "not %d",
                     run->wal_skip, run->commit_skip, acked, ids[k], got[k], want[k]);
    /* The erasure, whole or not at all: swe's views and events. */
    int swe = views_of(f, "swe");
    if (swe != (acked[SWEEP_SWE] == 'y' && !erased ? 3 : 0))
        fail_msg("wal skip %u, commit skip %u, groups acknowledged %.7s: swe has %d views",
                 run->wal_skip, run->commit_skip, acked, swe);
    size_t stored = 0;
    for (int i = 0; i < SWEEP_GROUPS; i++)
        stored += acked[i] == 'y' && !(i == SWEEP_SWE && erased) ? 3 : 0;
    assert_int_equal(stats_of(f).events, stored + sweep_seeded);
    for (int i = 0; i < SWEEP_GROUPS; i++) {
        char body[128];
        snprintf(body, sizeof body,
                 "[{\"type\":\"page\",\"anonymousId\":\"again\",\"messageId\":\"g%da\"}]", i);
        assert_int_equal(send(f, body).duplicates, acked[i] == 'y' ? 1 : 0);
    }
    ingest_stop(f->ing);
    store_close(f->st);
    test_temp_dir_remove(f->dir);
    test_temp_dir(f->dir, "ingest");
    bsp_store_opts so = {.no_sync = true};
    assert_int_equal(store_open(f->dir, &so, &f->st), BSP_OK);
    assert_int_equal(start_ingest(f, NULL), BSP_OK);
    sweep_seed(f);
}

/* Runs the sweep with the write-ahead point failing at wal_skip and, if
 * all, each store commit failing in turn from the first on (else none);
 * returns, of the last run, whether the write-ahead point fired and whether
 * a group was refused after one was acknowledged (a rebuild ran with
 * groups only the write-ahead file held). */
static void sweep_commits(fixture *f, bsp_fault_point wal_point, unsigned wal_skip, bool all,
                          unsigned *runs, bool *wal_fired, bool *rebuilt) {
    for (unsigned c = all ? 0 : SWEEP_NEVER;; c++) {
        sweep_run run = {.wal_point = wal_point, .wal_skip = wal_skip, .commit_skip = c};
        sweep_once(f, &run);
        (*runs)++;
        *wal_fired = run.wal_fired;
        *rebuilt = run.refused_after_acked;
        if (!run.commit_fired) break;
        assert_true(c < 100);
    }
}

/* Every store commit and, in write-ahead mode, every write-ahead write and
 * sync fails in turn while groups arrive (merges among them), checkpoints
 * run and a visitor is erased; and where a group's write fails after
 * others were acknowledged, each later commit fails in turn too, which
 * reaches the rebuild's own commits. Whatever fails, a process that then
 * dies and starts again holds each acknowledged event once, no trace of a
 * refused one, and the erasure whole or not at all. */
static void sweep_every_failure_point(fixture *f) {
    alarm(600); /* a hang anywhere in the sweep ends the run with a signal */
    sweep_seed(f);
    unsigned runs = 0;
    bool wal_fired, rebuilt;
    sweep_commits(f, BSP_FAULT_WAL_WRITE, SWEEP_NEVER, true, &runs, &wal_fired, &rebuilt);
    const bsp_fault_point wal_points[] = {BSP_FAULT_WAL_WRITE, BSP_FAULT_WAL_SYNC};
    bool swept_rebuild = false;
    for (size_t k = 0; write_ahead && k < 2; k++)
        for (unsigned w = 0;; w++) {
            sweep_commits(f, wal_points[k], w, false, &runs, &wal_fired, &rebuilt);
            if (rebuilt && !swept_rebuild) {
                sweep_commits(f, wal_points[k], w, true, &runs, &wal_fired, &rebuilt);
                swept_rebuild = true;
            }
            if (!wal_fired) break;
            assert_true(w < 100);
        }
    assert_true(!write_ahead || swept_rebuild);
    assert_true(runs >= 5);
    alarm(0);
}

static void test_every_failure_point(void **state) {
    sweep_every_failure_point(*state);
}

/* The same on a store that packs each group's visitor's events in a shared
 * frame: members refer back to their holder in the write-ahead file and
 * the log, through failures, rebuilds and the erasure. */
static void test_every_failure_point_packed(void **state) {
    sweep_packed = true;
    sweep_every_failure_point(*state);
    sweep_packed = false;
}

/* Ids the writer linked are visible to readers that must not wait (such as
 * decisions) as soon as their group is durable, before any checkpoint. */
static void test_wal_fresh_ids(void **state) {
    fixture *f = *state;
    restart_without_checkpoints(f);
    send(f, "[{\"type\":\"page\",\"anonymousId\":\"fresh1\"}]");
    send(f, "[{\"type\":\"identify\",\"anonymousId\":\"fresh1\",\"userId\":\"U1\"}]");
    bsp_txn *txn;
    uint64_t pid = 0, upid = 0;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    assert_int_equal(ingest_resolve(txn, "fresh1", &pid), BSP_ENOTFOUND); /* not stored yet */
    assert_int_equal(ingest_resolve_fresh(f->ing, txn, 'a', "fresh1", &pid), BSP_OK);
    assert_int_equal(ingest_resolve_fresh(f->ing, txn, 'u', "U1", &upid), BSP_OK);
    uint64_t none;
    assert_int_equal(ingest_resolve_fresh(f->ing, txn, 'u', "nobody", &none), BSP_ENOTFOUND);
    store_txn_abort(txn);
    assert_true(pid != 0);
    assert_int_equal(upid, pid);
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    assert_int_equal(ingest_resolve(txn, "U1", &upid), BSP_OK); /* stored by the checkpoint */
    store_txn_abort(txn);
    assert_int_equal(upid, pid);
}

/* One string that is one visitor's userId and another's anonymousId: a
 * reader finds the profile of the kind it was given the id as, before and
 * after the checkpoint; an id of one kind only is found whichever is asked. */
static void resolve_both_kinds(fixture *f, uint64_t *as_user, uint64_t *as_anon, uint64_t *only) {
    bsp_txn *txn;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    assert_int_equal(ingest_resolve_fresh(f->ing, txn, 'u', "twin", as_user), BSP_OK);
    assert_int_equal(ingest_resolve_fresh(f->ing, txn, 'a', "twin", as_anon), BSP_OK);
    uint64_t other;
    assert_int_equal(ingest_resolve_fresh(f->ing, txn, 'a', "solo-user", only), BSP_OK);
    assert_int_equal(ingest_resolve_fresh(f->ing, txn, 'u', "solo-user", &other), BSP_OK);
    assert_int_equal(other, *only);
    store_txn_abort(txn);
}

static void test_fresh_resolve_prefers_the_given_kind(void **state) {
    fixture *f = *state;
    restart_without_checkpoints(f);
    send(f, "[{\"type\":\"identify\",\"userId\":\"twin\",\"anonymousId\":\"a-of-twin\"},"
            "{\"type\":\"page\",\"anonymousId\":\"twin\"},"
            "{\"type\":\"identify\",\"userId\":\"solo-user\"}]");
    uint64_t user = 0, anon = 0, solo = 0;
    resolve_both_kinds(f, &user, &anon, &solo); /* from the writer's fresh links */
    assert_true(user != 0 && anon != 0 && user != anon);
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    uint64_t user2 = 0, anon2 = 0, solo2 = 0;
    resolve_both_kinds(f, &user2, &anon2, &solo2); /* from the store */
    assert_int_equal(user2, user);
    assert_int_equal(anon2, anon);
    assert_int_equal(solo2, solo);
}

/* The computed traits a reader that must not wait sees for id (NULL: no
 * profile), without a checkpoint. */
static cJSON *computed_now(fixture *f, const char *id, bool *stored) {
    bsp_txn *txn;
    uint64_t pid;
    cJSON *out = NULL;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    if (ingest_resolve_fresh(f->ing, txn, 'u', id, &pid) == BSP_OK) {
        bsp_slice raw;
        *stored = store_profile_get(txn, pid, &raw) == BSP_OK;
        bsp_profile *p;
        if (ingest_profile_read(f->ing, txn, pid, &p) == BSP_OK) {
            out = profile_computed_json(p);
            profile_free(p);
        }
    }
    store_txn_abort(txn);
    return out;
}

/* While anyone reads, a new visitor's profile reaches readers that must not
 * wait as soon as its events are acknowledged, although nobody read it
 * before and the store holds it only from the next checkpoint. While nobody
 * reads (a bulk load), new profiles are not published. */
static void test_new_profile_visible_before_checkpoint(void **state) {
    fixture *f = *state;
    restart_without_checkpoints(f);
    send(f, "[{\"type\":\"page\",\"anonymousId\":\"nv0\"}]");
    bool stored = true;
    assert_null(computed_now(f, "nv0", &stored)); /* no reader yet: not published */
    assert_false(stored);
    send(f, "[{\"type\":\"page\",\"anonymousId\":\"nv1\"},{\"type\":\"track\",\"anonymousId\":"
            "\"nv1\",\"event\":\"Products Searched\",\"properties\":{\"query\":\"lantern\"}}]");
    cJSON *c = computed_now(f, "nv1", &stored);
    assert_non_null(c);
    assert_false(stored); /* no checkpoint yet */
    assert_int_equal((int)json_get_number(c, "page_views", -1), 1);
    assert_string_equal(json_get_string(c, "last_search"), "lantern");
    cJSON_Delete(c);
    /* Later events of the visitor, still before any checkpoint. */
    send(f, "[{\"type\":\"page\",\"anonymousId\":\"nv1\"}]");
    c = computed_now(f, "nv1", &stored);
    assert_non_null(c);
    assert_int_equal((int)json_get_number(c, "page_views", -1), 2);
    cJSON_Delete(c);
    /* After the checkpoint the store holds the same. */
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    c = computed_now(f, "nv1", &stored);
    assert_true(stored);
    assert_int_equal((int)json_get_number(c, "page_views", -1), 2);
    cJSON_Delete(c);
    cJSON *pub = profile_of(f, "nv1");
    assert_int_equal((int)computed_num(pub, "page_views"), 2);
    cJSON_Delete(pub);
}

/* --- freshness stamps: visitors read without the store ----------------------- */

typedef struct visitor_read {
    bsp_err rc;
    uint64_t pid;
    int page_views; /* -1: no profile */
    bool stamped;   /* answered on stamps alone */
} visitor_read;

/* Reads a visitor as a decision does, with the mark taken before the read
 * transaction began (or mark, when given). */
static visitor_read read_visitor_marked(fixture *f, char kind, const char *id, const uint64_t *mark,
                                        bsp_txn *txn) {
    bsp_ingest_metrics before, after;
    ingest_metrics(f->ing, &before);
    visitor_read r = {.page_views = -1};
    bool own = !txn;
    uint64_t m = mark ? *mark : ingest_read_mark(f->ing);
    if (own) assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    const bsp_profile *p = NULL;
    r.rc = ingest_visitor_peek(f->ing, txn, m, kind, id, &r.pid, &p);
    if (p) {
        cJSON *c = profile_computed_json(p);
        r.page_views = (int)json_get_number(c, "page_views", -1);
        cJSON_Delete(c);
    }
    if (own) store_txn_abort(txn);
    ingest_metrics(f->ing, &after);
    r.stamped = after.memo_stamped > before.memo_stamped;
    return r;
}

static visitor_read read_visitor(fixture *f, char kind, const char *id) {
    return read_visitor_marked(f, kind, id, NULL, NULL);
}

/* A visitor read again with nothing changed is answered on stamps; any
 * change to it (published, or stored by a checkpoint) is seen by the next
 * read, which stamps again; other visitors' changes do not matter. */
static void test_stamps_answer_unchanged_visitors(void **state) {
    fixture *f = *state;
    restart_without_checkpoints(f);
    send(f, "[{\"type\":\"page\",\"anonymousId\":\"sv1\"}]");
    assert_int_equal(ingest_sync(f->ing), BSP_OK); /* stored: nobody read before */
    visitor_read r = read_visitor(f, 'a', "sv1");
    assert_int_equal(r.rc, BSP_OK);
    assert_int_equal(r.page_views, 1);
    assert_false(r.stamped); /* first read: from the writer's copy or the store */
    uint64_t pid = r.pid;
    r = read_visitor(f, 'a', "sv1");
    assert_true(r.stamped);
    assert_int_equal(r.page_views, 1);
    assert_int_equal(r.pid, pid);
    send(f, "[{\"type\":\"page\",\"anonymousId\":\"sv1\"}]");
    r = read_visitor(f, 'a', "sv1");
    assert_false(r.stamped);
    assert_int_equal(r.page_views, 2);
    r = read_visitor(f, 'a', "sv1");
    assert_true(r.stamped);
    assert_int_equal(r.page_views, 2);
    send(f, "[{\"type\":\"page\",\"anonymousId\":\"sv2\"}]");
    r = read_visitor(f, 'a', "sv1");
    assert_true(r.stamped);
    assert_int_equal(ingest_sync(f->ing), BSP_OK); /* the checkpoint stores sv1 */
    r = read_visitor(f, 'a', "sv1");
    assert_false(r.stamped);
    assert_int_equal(r.page_views, 2);
    assert_true(read_visitor(f, 'a', "sv1").stamped);
    /* An id nobody has: not found, nothing remembered. */
    r = read_visitor(f, 'u', "nobody");
    assert_int_equal(r.rc, BSP_ENOTFOUND);
    assert_int_equal(r.pid, 0);
    assert_int_equal(read_visitor(f, 'u', "nobody").rc, BSP_ENOTFOUND);
}

/* A stamped anonymous visitor merged into a known one is read as the known
 * one at once; its id moved to another person (a shared device), as that
 * person; once erased, as nobody. */
static void test_stamps_follow_merges_and_erasure(void **state) {
    fixture *f = *state;
    restart_without_checkpoints(f);
    send(f,
         "[{\"type\":\"page\",\"anonymousId\":\"ma1\"},{\"type\":\"page\",\"anonymousId\":\"ma1\"},"
         "{\"type\":\"identify\",\"userId\":\"mu1\"}]");
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    visitor_read user = read_visitor(f, 'u', "mu1");
    assert_int_equal(user.rc, BSP_OK);
    assert_int_equal(read_visitor(f, 'a', "ma1").rc, BSP_OK);
    visitor_read anon = read_visitor(f, 'a', "ma1");
    assert_true(anon.stamped);
    assert_int_equal(anon.page_views, 2);
    assert_true(anon.pid != user.pid);
    send(f, "[{\"type\":\"identify\",\"userId\":\"mu1\",\"anonymousId\":\"ma1\"}]");
    visitor_read merged = read_visitor(f, 'a', "ma1");
    assert_int_equal(merged.rc, BSP_OK);
    assert_int_equal(merged.pid, user.pid);
    assert_int_equal(merged.page_views, 2);
    assert_true(read_visitor(f, 'a', "ma1").stamped);
    /* A shared device: the anonymousId follows the next person to log in,
     * while the profile it named stays as it was (and still lists it). */
    send(f, "[{\"type\":\"identify\",\"userId\":\"mu2\",\"anonymousId\":\"ma1\"}]");
    visitor_read moved = read_visitor(f, 'a', "ma1");
    assert_int_equal(moved.rc, BSP_OK);
    assert_true(moved.pid != user.pid);
    assert_int_equal(moved.pid, read_visitor(f, 'u', "mu2").pid);
    send(f, "[{\"type\":\"identify\",\"userId\":\"mu1\",\"anonymousId\":\"ma1\"}]");
    assert_int_equal(read_visitor(f, 'a', "ma1").pid, user.pid);
    assert_true(read_visitor(f, 'a', "ma1").stamped);
    assert_int_equal(ingest_erase_profile(f->ing, "mu1", NULL), BSP_OK);
    visitor_read gone = read_visitor(f, 'a', "ma1");
    assert_int_equal(gone.rc, BSP_ENOTFOUND);
    assert_int_equal(gone.pid, 0);
    assert_int_equal(read_visitor(f, 'u', "mu1").rc, BSP_ENOTFOUND);
}

/* A read whose transaction began before a commit may see older bytes than
 * the stamps it took: it stamps nothing, so the next read goes to the
 * store again. */
static void test_no_stamps_across_a_commit(void **state) {
    fixture *f = *state;
    restart_without_checkpoints(f);
    send(f, "[{\"type\":\"page\",\"anonymousId\":\"cv1\"}]");
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    uint64_t mark = ingest_read_mark(f->ing);
    bsp_txn *txn;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    send(f, "[{\"type\":\"page\",\"anonymousId\":\"cv2\"}]"); /* a commit meanwhile */
    visitor_read r = read_visitor_marked(f, 'a', "cv1", &mark, txn);
    store_txn_abort(txn);
    assert_int_equal(r.rc, BSP_OK);
    assert_int_equal(r.page_views, 1);
    assert_false(read_visitor(f, 'a', "cv1").stamped); /* nothing stamped before */
    assert_true(read_visitor(f, 'a', "cv1").stamped);
    /* The same for an id link: one that moves meanwhile (a shared device)
     * may be read as it was, but not remembered so. */
    send(f, "[{\"type\":\"identify\",\"userId\":\"cu1\",\"anonymousId\":\"ca\"}]");
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    uint64_t first = read_visitor(f, 'a', "ca").pid;
    mark = ingest_read_mark(f->ing);
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    send(f, "[{\"type\":\"identify\",\"userId\":\"cu2\",\"anonymousId\":\"ca\"}]");
    r = read_visitor_marked(f, 'a', "ca", &mark, txn);
    store_txn_abort(txn);
    assert_int_equal(r.rc, BSP_OK);
    uint64_t second = read_visitor(f, 'u', "cu2").pid;
    assert_true(second != first);
    assert_int_equal(read_visitor(f, 'a', "ca").pid, second);
    assert_int_equal(read_visitor(f, 'a', "ca").pid, second);
}

/* Readers on other threads keep reading (and stamping) a visitor while its
 * events are acknowledged one by one: a read right after each
 * acknowledgement sees that event, never a copy stamped before it. */
typedef struct stamp_reader {
    fixture *f;
    atomic_bool stop;
    atomic_long reads;
} stamp_reader;

static void *stamp_reader_main(void *arg) {
    stamp_reader *r = arg;
    while (!atomic_load(&r->stop)) {
        uint64_t mark = ingest_read_mark(r->f->ing), pid = 0;
        bsp_txn *txn;
        if (store_txn_begin(r->f->st, false, &txn) != BSP_OK) continue;
        const bsp_profile *p;
        ingest_visitor_peek(r->f->ing, txn, mark, 'a', "busy", &pid, &p);
        store_txn_abort(txn);
        atomic_fetch_add(&r->reads, 1);
    }
    return NULL;
}

static void test_stamps_under_concurrent_readers(void **state) {
    fixture *f = *state;
    send(f, "[{\"type\":\"page\",\"anonymousId\":\"busy\"}]");
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    assert_int_equal(read_visitor(f, 'a', "busy").page_views, 1);
    stamp_reader r = {.f = f};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, stamp_reader_main, &r), 0);
    while (atomic_load(&r.reads) == 0)
        sched_yield(); /* the readers are under way */
    /* No assertion while the readers run: a failed one would end the test
     * and free the fixture under them. */
    int seen = -1, wanted = -1;
    for (int n = 2; n <= 150 && seen == wanted; n++) {
        send(f, "[{\"type\":\"page\",\"anonymousId\":\"busy\"}]");
        if (n % 50 == 0 && ingest_sync(f->ing) != BSP_OK) break;
        seen = read_visitor(f, 'a', "busy").page_views;
        wanted = n;
    }
    atomic_store(&r.stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(seen, wanted);
    assert_int_equal(wanted, 150);
}

/* While anyone reads, a visitor nobody read lately sees the event just
 * acknowledged at once, although the store holds its profile only as of
 * the last checkpoint. */
static void test_unread_visitor_sees_its_event_at_once(void **state) {
    fixture *f = *state;
    restart_without_checkpoints(f);
    send(f, "[{\"type\":\"page\",\"anonymousId\":\"cold\"},"
            "{\"type\":\"page\",\"anonymousId\":\"warm\"}]");
    assert_int_equal(ingest_sync(f->ing), BSP_OK);                /* both stored, nobody read yet */
    assert_int_equal(read_visitor(f, 'a', "warm").page_views, 1); /* someone reads */
    send(f, "[{\"type\":\"page\",\"anonymousId\":\"cold\"}]");
    assert_int_equal(read_visitor(f, 'a', "cold").page_views, 2);
    send(f, "[{\"type\":\"page\",\"anonymousId\":\"cold\"}]");
    assert_int_equal(read_visitor(f, 'a', "cold").page_views, 3);
}

#define BOTH_MODES                                                                                 \
    cmocka_unit_test_setup_teardown(test_events_reach_profile, setup, teardown),                   \
        cmocka_unit_test_setup_teardown(test_resend_is_deduplicated, setup, teardown),             \
        cmocka_unit_test_setup_teardown(test_catalog_facts_worked_out_on_submit, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_identify_merges_anonymous_history, setup, teardown),  \
        cmocka_unit_test_setup_teardown(test_alias_merges_previous_id, setup, teardown),           \
        cmocka_unit_test_setup_teardown(test_two_known_users_do_not_merge_on_identify, setup,      \
                                        teardown),                                                 \
        cmocka_unit_test_setup_teardown(test_erasure_removes_everything, setup, teardown),         \
        cmocka_unit_test_setup_teardown(test_products_job, setup, teardown),                       \
        cmocka_unit_test_setup_teardown(test_queue_bound_and_busy, setup, teardown),               \
        cmocka_unit_test_setup_teardown(test_checkpoint_of_many_profiles, setup, teardown),        \
        cmocka_unit_test_setup_teardown(test_events_packed_once_the_log_grows, setup, teardown),   \
        cmocka_unit_test_setup_teardown(test_dictionary_learnt_without_waiting, setup, teardown),  \
        cmocka_unit_test_setup_teardown(test_cache_grows_between_checkpoints, setup, teardown),    \
        cmocka_unit_test_setup_teardown(test_stop_drains_queue, setup, teardown),                  \
        cmocka_unit_test_setup_teardown(test_replay_after_crash, setup, teardown),                 \
        cmocka_unit_test_setup_teardown(test_replay_equals_live, setup, teardown),                 \
        cmocka_unit_test_setup_teardown(test_new_profile_visible_before_checkpoint, setup,         \
                                        teardown),                                                 \
        cmocka_unit_test_setup_teardown(test_stamps_answer_unchanged_visitors, setup, teardown),   \
        cmocka_unit_test_setup_teardown(test_stamps_follow_merges_and_erasure, setup, teardown),   \
        cmocka_unit_test_setup_teardown(test_no_stamps_across_a_commit, setup, teardown),          \
        cmocka_unit_test_setup_teardown(test_stamps_under_concurrent_readers, setup, teardown),    \
        cmocka_unit_test_setup_teardown(test_unread_visitor_sees_its_event_at_once, setup,         \
                                        teardown),                                                 \
        cmocka_unit_test_setup_teardown(test_failed_group_leaves_no_trace, setup, teardown),       \
        cmocka_unit_test_setup_teardown(test_failed_group_then_crash, setup, teardown),            \
        cmocka_unit_test_setup_teardown(test_group_failed_while_written_then_crash, setup,         \
                                        teardown),                                                 \
        cmocka_unit_test_setup_teardown(test_rebuild_fails_until_the_disk_heals, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_every_failure_point, setup, teardown),                \
        cmocka_unit_test_setup_teardown(test_every_failure_point_packed, setup, teardown)

/* The write-ahead file's own tests, run in each of its ways of writing. */
#define WAL_TESTS                                                                                  \
    cmocka_unit_test_setup_teardown(test_wal_replay_after_crash, setup, teardown),                 \
        cmocka_unit_test_setup_teardown(test_catalog_facts_worked_out_on_replay, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_wal_torn_tail, setup, teardown),                      \
        cmocka_unit_test_setup_teardown(test_wal_clean_stop_retires_records, setup, teardown),     \
        cmocka_unit_test_setup_teardown(test_wal_replay_packed, setup, teardown),                  \
        cmocka_unit_test_setup_teardown(test_visitor_events_share_a_frame, setup, teardown),       \
        cmocka_unit_test_setup_teardown(test_frames_replayed_after_crash, setup, teardown),        \
        cmocka_unit_test_setup_teardown(test_wal_groups_across_blocks, setup, teardown),           \
        cmocka_unit_test_setup_teardown(test_wal_direct_where_allowed, setup, teardown),           \
        cmocka_unit_test_setup_teardown(test_wal_syncs, setup, teardown),                          \
        cmocka_unit_test_setup_teardown(test_failed_checkpoint_keeps_groups, setup, teardown),     \
        cmocka_unit_test_setup_teardown(test_failed_sync, setup, teardown),                        \
        cmocka_unit_test_setup_teardown(test_failed_first_group_then_crash, setup, teardown),      \
        cmocka_unit_test_setup_teardown(test_rebuild_half_done_keeps_the_file, setup, teardown)

int main(void) {
    const struct CMUnitTest per_commit[] = {BOTH_MODES};
    const struct CMUnitTest ahead[] = {
        BOTH_MODES,
        WAL_TESTS,
        cmocka_unit_test_setup_teardown(test_fresh_resolve_prefers_the_given_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_fresh_ids, setup, teardown),
    };
    /* The WAL's own tests once more with groups through the page cache, then
     * answered before their sync (a killed process must lose none either). */
    const struct CMUnitTest wal_only[] = {
        WAL_TESTS,
        cmocka_unit_test_setup_teardown(test_failed_group_leaves_no_trace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_group_then_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_failed_while_written_then_crash, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rebuild_fails_until_the_disk_heals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_failure_point, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_failure_point_packed, setup, teardown),
    };
    write_ahead = false;
    int failed = cmocka_run_group_tests_name("ingest", per_commit, NULL, NULL);
    write_ahead = true;
    failed += cmocka_run_group_tests_name("ingest write-ahead", ahead, NULL, NULL);
    wal_buffered = true;
    failed += cmocka_run_group_tests_name("ingest write-ahead, page cache", wal_only, NULL, NULL);
    wal_buffered = false;
    wal_sync = 5;
    return failed + cmocka_run_group_tests_name("ingest write-ahead, synced within 5 ms", wal_only,
                                                NULL, NULL);
}
