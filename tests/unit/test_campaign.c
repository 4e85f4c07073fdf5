/* test_campaign.c - campaigns and placements: validation errors with their
 * paths, normalization, storage through ingest jobs, the compiled snapshot
 * (priority order, drafts left out, implicit placements, watched events),
 * the reader-never-blocks swap under concurrent publishing, and coupon
 * pools: each code handed out exactly once by many threads at once, the
 * same code for a visitor asking again, also after a restart and a reload. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "teststore.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "campaign/campaign.h"
#include "testutil.h"

#define NOW 1767225600000LL /* 2026-01-01T00:00:00Z */

/* --- validation ---------------------------------------------------------------------- */

/* Validates text as a campaign; returns the error code and fills err. */
static bsp_err check(const char *text, const char *path_id, cJSON **out, bsp_error *err) {
    cJSON *body = cJSON_Parse(text);
    assert_non_null(body);
    bsp_error_clear(err);
    cJSON *obj = NULL;
    bsp_err rc = campaign_from_json(body, path_id, NOW, &obj, err);
    cJSON_Delete(body);
    if (out)
        *out = obj;
    else
        cJSON_Delete(obj);
    return rc;
}

static void expect_error(const char *text, bsp_err code, const char *at) {
    bsp_error err;
    bsp_err rc = check(text, NULL, NULL, &err);
    if (rc != code || strcmp(err.at, at) != 0)
        fail_msg("%s: got %s at '%s' (%s), want %s at '%s'", text, bsp_err_name(rc), err.at,
                 err.message, bsp_err_name(code), at);
    assert_true(err.message[0] != '\0');
}

#define BANNER "\"content\":{\"type\":\"banner\",\"title\":\"Hi\"}"

static void test_campaign_errors(void **state) {
    (void)state;
    expect_error("[]", BSP_EINVAL, "");
    expect_error("{\"placement\":\"home\"," BANNER "}", BSP_ETYPE, "id");
    expect_error("{\"id\":\"bad id\",\"placement\":\"home\"," BANNER "}", BSP_ETYPE, "id");
    expect_error("{\"id\":\"c\"," BANNER "}", BSP_ETYPE, "placement");
    expect_error("{\"id\":\"c\",\"placement\":\"home\",\"status\":\"live\"," BANNER "}", BSP_ETYPE,
                 "status");
    expect_error("{\"id\":\"c\",\"placement\":\"home\",\"priority\":1.5," BANNER "}", BSP_ETYPE,
                 "priority");
    expect_error("{\"id\":\"c\",\"placement\":\"home\",\"condition\":\"computed.orders = \"," BANNER
                 "}",
                 BSP_ETYPE, "condition: line 1, column 19");
    expect_error("{\"id\":\"c\",\"placement\":\"home\",\"condition\":\"foo(1)\"," BANNER "}",
                 BSP_ETYPE, "condition: line 1, column 1");
    expect_error("{\"id\":\"c\",\"placement\":\"home\",\"start\":\"yesterday\"," BANNER "}",
                 BSP_ETYPE, "start");
    expect_error("{\"id\":\"c\",\"placement\":\"home\",\"start\":\"2026-02-01T00:00:00Z\","
                 "\"end\":\"2026-01-01T00:00:00Z\"," BANNER "}",
                 BSP_ETYPE, "end");
    expect_error("{\"id\":\"c\",\"placement\":\"home\",\"cap\":{\"per_day\":0}," BANNER "}",
                 BSP_ETYPE, "cap.per_day");
    expect_error("{\"id\":\"c\",\"placement\":\"home\",\"control\":1.5," BANNER "}", BSP_ETYPE,
                 "control");
    expect_error("{\"id\":\"c\",\"placement\":\"home\"}", BSP_ETYPE, "content");
    expect_error("{\"id\":\"c\",\"placement\":\"home\",\"content\":{\"type\":\"popup\"}}",
                 BSP_ETYPE, "content.type");
    expect_error("{\"id\":\"c\",\"placement\":\"home\",\"content\":{\"type\":\"banner\"}}",
                 BSP_ETYPE, "content");
    expect_error("{\"id\":\"c\",\"placement\":\"home\",\"content\":{\"type\":\"coupon\","
                 "\"pool\":[\"A1\",\"has space\"]}}",
                 BSP_ETYPE, "content.pool[1]");
    expect_error("{\"id\":\"c\",\"placement\":\"home\",\"content\":{\"type\":\"coupon\","
                 "\"code\":\"X\",\"pool\":[\"A1\"]}}",
                 BSP_ETYPE, "content.pool");
    expect_error("{\"id\":\"c\",\"placement\":\"home\",\"content\":{\"type\":\"toggle\","
                 "\"hide\":[\"#a\",3]}}",
                 BSP_ETYPE, "content.hide[1]");
    expect_error("{\"id\":\"c\",\"placement\":\"home\",\"content\":{\"type\":\"products\","
                 "\"n\":500}}",
                 BSP_ETYPE, "content.n");
    expect_error("{\"id\":\"c\",\"placement\":\"home\",\"content\":{\"type\":\"quiz\","
                 "\"questions\":[{\"id\":\"color\",\"options\":[{\"value\":\"black\"},"
                 "{\"label\":\"White\"}]}]}}",
                 BSP_ETYPE, "content.questions[0].options[1].value");
}

static void test_campaign_normalized(void **state) {
    (void)state;
    bsp_error err;
    cJSON *c = NULL;
    assert_int_equal(check("{\"placement\":\"home_hero\",\"condition\":\"computed.orders = 0\","
                           "\"start\":\"2026-01-01T01:00:00+01:00\"," BANNER ",\"extra\":1}",
                           "welcome", &c, &err),
                     BSP_OK);
    assert_string_equal(json_get_string(c, "id"), "welcome");
    assert_string_equal(json_get_string(c, "name"), "welcome");
    assert_string_equal(json_get_string(c, "status"), "draft");
    assert_int_equal((int)json_get_number(c, "priority", -1), 0);
    assert_string_equal(json_get_string(c, "start"), "2026-01-01T00:00:00.000Z");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(c, "end")));
    assert_true(cJSON_IsNull(json_path(c, "cap.per_day")));
    assert_null(cJSON_GetObjectItem(c, "extra"));
    cJSON_Delete(c);
    assert_int_equal(
        check("{\"id\":\"other\",\"placement\":\"p\"," BANNER "}", "welcome", NULL, &err),
        BSP_ETYPE);
    assert_string_equal(err.at, "id");
}

static void test_placement(void **state) {
    (void)state;
    bsp_error err;
    cJSON *body = cJSON_Parse("{\"default\":{\"type\":\"coupon\",\"pool\":[\"A\"]}}");
    cJSON *out = NULL;
    assert_int_equal(placement_from_json(body, "home", NOW, &out, &err), BSP_ETYPE);
    assert_string_equal(err.at, "default.pool");
    assert_null(out);
    cJSON_Delete(body);
    body = cJSON_Parse("{\"default\":null}");
    assert_int_equal(placement_from_json(body, "home", NOW, &out, &err), BSP_OK);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(out, "default")));
    cJSON_Delete(out);
    cJSON_Delete(body);
    assert_true(campaign_id_valid("a.b:c-d_9"));
    assert_false(campaign_id_valid(""));
    char *long_id = repeat('x', 65);
    assert_false(campaign_id_valid(long_id));
    free(long_id);
}

/* --- the swap ---------------------------------------------------------------------------- */

typedef struct swap_test {
    bsp_swap swap;
    atomic_bool stop;
    atomic_long reads;
} swap_test;

static void *swap_reader(void *arg) {
    swap_test *t = arg;
    while (!atomic_load(&t->stop)) {
        unsigned slot = swap_enter(&t->swap);
        long *v = swap_get(&t->swap);
        long seen = v[0];
        for (int i = 1; i < 16; i++)
            if (v[i] != seen) fail_msg("torn or freed value");
        swap_leave(&t->swap, slot);
        atomic_fetch_add(&t->reads, 1);
    }
    return NULL;
}

static long *make_value(long n) {
    long *v = malloc(16 * sizeof *v);
    for (int i = 0; i < 16; i++)
        v[i] = n;
    return v;
}

static void test_swap_readers(void **state) {
    (void)state;
    swap_test t;
    swap_init(&t.swap, make_value(0));
    atomic_init(&t.stop, false);
    atomic_init(&t.reads, 0);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, swap_reader, &t);
    /* Publish until the readers have overlapped many swaps: on a loaded
     * machine they may not even start during the first 2,000. */
    for (long n = 1; n <= 2000 || (atomic_load(&t.reads) < 1000 && n < 50000000); n++) {
        long *old = swap_publish(&t.swap, make_value(n));
        memset(old, 0xff, 16 * sizeof *old); /* a reader still on it would notice */
        free(old);
    }
    atomic_store(&t.stop, true);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    free(swap_get(&t.swap));
    assert_true(atomic_load(&t.reads) > 0);
}

/* --- store and registry ------------------------------------------------------------------ */

typedef struct fixture {
    char dir[64];
    bsp_store *st;
    bsp_ingest *ing;
    campaign_registry *reg;
} fixture;

static void open_all(fixture *f) {
    bsp_store_opts so = {.no_sync = true};
    assert_int_equal(store_open(f->dir, &so, &f->st), BSP_OK);
    assert_int_equal(ingest_start(f->st, NULL, &f->ing), BSP_OK);
    assert_int_equal(campaign_registry_start(f->st, f->ing, &f->reg), BSP_OK);
}

static void close_all(fixture *f) {
    campaign_registry_stop(f->reg);
    ingest_stop(f->ing);
    campaign_registry_free(f->reg);
    store_close(f->st);
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    test_temp_dir(f->dir, "campaign");
    open_all(f);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    close_all(f);
    test_temp_dir_remove(f->dir);
    free(f);
    return 0;
}

static bsp_err save(fixture *f, const char *kind, const char *text, bool create_only) {
    cJSON *body = cJSON_Parse(text);
    assert_non_null(body);
    cJSON *obj = NULL;
    bsp_error err;
    bsp_err rc = strcmp(kind, CAMPAIGN_KIND) == 0
                     ? campaign_from_json(body, NULL, NOW, &obj, &err)
                     : placement_from_json(body, NULL, NOW, &obj, &err);
    cJSON_Delete(body);
    if (rc != BSP_OK) fail_msg("%s: %s at %s", text, err.message, err.at);
    rc = campaign_config_save(f->ing, kind, obj, create_only, NULL);
    cJSON_Delete(obj);
    if (rc == BSP_OK) assert_int_equal(campaign_registry_reload(f->reg), BSP_OK);
    return rc;
}

static void test_snapshot(void **state) {
    fixture *f = *state;
    save(f, PLACEMENT_KIND, "{\"id\":\"home\",\"default\":{\"type\":\"banner\",\"title\":\"D\"}}",
         false);
    save(f, CAMPAIGN_KIND,
         "{\"id\":\"low\",\"placement\":\"home\",\"status\":\"active\",\"priority\":1," BANNER "}",
         false);
    save(f, CAMPAIGN_KIND,
         "{\"id\":\"high\",\"placement\":\"home\",\"status\":\"active\",\"priority\":9,"
         "\"condition\":\"did(\\\"Products Searched\\\", 30m)\"," BANNER "}",
         false);
    save(f, CAMPAIGN_KIND, "{\"id\":\"draft\",\"placement\":\"home\",\"priority\":99," BANNER "}",
         false);
    save(f, CAMPAIGN_KIND,
         "{\"id\":\"cart1\",\"placement\":\"cart\",\"status\":\"active\"," BANNER "}", false);
    assert_int_equal(save(f, CAMPAIGN_KIND,
                          "{\"id\":\"low\",\"placement\":\"x\",\"status\":\"active\"," BANNER "}",
                          true),
                     BSP_EEXISTS);
    unsigned slot;
    const campaign_set *set = campaign_acquire(f->reg, &slot);
    assert_int_equal(set->campaign_count, 3);
    const placement_rt *home = campaign_set_placement(set, "home");
    assert_non_null(home);
    assert_non_null(home->default_json);
    assert_int_equal(home->count, 2);
    assert_string_equal(home->campaigns[0]->id, "high");
    assert_string_equal(home->campaigns[1]->id, "low");
    const placement_rt *cart = campaign_set_placement(set, "cart");
    assert_non_null(cart);
    assert_null(cart->default_json);
    assert_null(campaign_set_placement(set, "nowhere"));
    assert_int_equal(set->event_name_count, 1);
    assert_string_equal(set->event_names[0], "Products Searched");
    campaign_release(f->reg, slot);
    assert_int_equal(campaign_config_delete(f->ing, CAMPAIGN_KIND, "high"), BSP_OK);
    assert_int_equal(campaign_config_delete(f->ing, CAMPAIGN_KIND, "high"), BSP_ENOTFOUND);
    assert_int_equal(campaign_registry_reload(f->reg), BSP_OK);
    set = campaign_acquire(f->reg, &slot);
    assert_int_equal(campaign_set_placement(set, "home")->count, 1);
    campaign_release(f->reg, slot);
}

/* --- coupon pools ------------------------------------------------------------------------- */

#define POOL_CODES 50
#define TAKERS 8
#define VISITORS_EACH 25

static char *pool_campaign(int codes, const char *prefix) {
    bsp_buf b = {0};
    bsp_buf_puts(&b, "{\"id\":\"welcome\",\"placement\":\"modal\",\"status\":\"active\","
                     "\"content\":{\"type\":\"coupon\",\"title\":\"10%\",\"pool\":[");
    for (int i = 0; i < codes; i++)
        bsp_buf_printf(&b, "%s\"%s%03d\"", i ? "," : "", prefix, i);
    bsp_buf_puts(&b, "]}}");
    return b.data;
}

static coupon_pool *current_pool(fixture *f, unsigned *slot) {
    const campaign_set *set = campaign_acquire(f->reg, slot);
    assert_int_equal(set->campaign_count, 1);
    assert_non_null(set->campaigns[0].pool);
    return set->campaigns[0].pool;
}

typedef struct taker {
    coupon_pool *pool;
    int index;
    char codes[VISITORS_EACH][CAMPAIGN_CODE_MAX + 1];
} taker;

static void *take_codes(void *arg) {
    taker *t = arg;
    for (int v = 0; v < VISITORS_EACH; v++) {
        char anon[32];
        snprintf(anon, sizeof anon, "visitor-%d-%d", t->index, v);
        if (!coupon_take(t->pool, NULL, anon, t->codes[v])) t->codes[v][0] = '\0';
    }
    return NULL;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(a, b);
}

static void test_pool_exactly_once(void **state) {
    fixture *f = *state;
    char *text = pool_campaign(POOL_CODES, "W");
    save(f, CAMPAIGN_KIND, text, false);
    free(text);
    unsigned slot;
    coupon_pool *pool = current_pool(f, &slot);
    taker takers[TAKERS];
    pthread_t th[TAKERS];
    for (int i = 0; i < TAKERS; i++) {
        takers[i] = (taker){.pool = pool, .index = i};
        pthread_create(&th[i], NULL, take_codes, &takers[i]);
    }
    char all[TAKERS * VISITORS_EACH][CAMPAIGN_CODE_MAX + 1];
    size_t handed = 0;
    for (int i = 0; i < TAKERS; i++) {
        pthread_join(th[i], NULL);
        for (int v = 0; v < VISITORS_EACH; v++)
            if (takers[i].codes[v][0]) memcpy(all[handed++], takers[i].codes[v], sizeof all[0]);
    }
    assert_int_equal(handed, POOL_CODES);
    qsort(all, handed, sizeof all[0], cmp_str);
    for (size_t i = 1; i < handed; i++)
        assert_string_not_equal(all[i], all[i - 1]);
    assert_int_equal(coupon_remaining(pool), 0);
    /* a visitor who got one gets the same one back; the pool is empty for others */
    char again[CAMPAIGN_CODE_MAX + 1], first[CAMPAIGN_CODE_MAX + 1] = "";
    for (int i = 0; i < TAKERS && !first[0]; i++)
        for (int v = 0; v < VISITORS_EACH && !first[0]; v++)
            if (takers[i].codes[v][0]) {
                char anon[32];
                snprintf(anon, sizeof anon, "visitor-%d-%d", i, v);
                memcpy(first, takers[i].codes[v], sizeof first);
                assert_true(coupon_take(pool, "now-known", anon, again));
                assert_string_equal(again, first);
            }
    assert_false(coupon_take(pool, NULL, "latecomer", again));
    campaign_release(f->reg, slot);
    /* after a restart the visitor, now known by userId, still gets it */
    close_all(f);
    open_all(f);
    pool = current_pool(f, &slot);
    assert_true(coupon_take(pool, "now-known", NULL, again));
    assert_string_equal(again, first);
    assert_false(coupon_take(pool, NULL, "latecomer", again));
    campaign_release(f->reg, slot);
}

static void test_pool_release_on_reload(void **state) {
    fixture *f = *state;
    char *text = pool_campaign(10, "R");
    save(f, CAMPAIGN_KIND, text, false);
    unsigned slot;
    coupon_pool *pool = current_pool(f, &slot);
    char codes[10][CAMPAIGN_CODE_MAX + 1];
    for (int i = 0; i < 3; i++) {
        char anon[16];
        snprintf(anon, sizeof anon, "a%d", i);
        assert_true(coupon_take(pool, NULL, anon, codes[i]));
    }
    campaign_release(f->reg, slot);
    save(f, CAMPAIGN_KIND, text, false); /* a reload: the 7 reserved codes come back */
    free(text);
    pool = current_pool(f, &slot);
    assert_int_equal(coupon_remaining(pool), 7);
    char again[CAMPAIGN_CODE_MAX + 1];
    assert_true(coupon_take(pool, NULL, "a1", again));
    assert_string_equal(again, codes[1]);
    for (int i = 3; i < 10; i++) {
        char anon[16];
        snprintf(anon, sizeof anon, "a%d", i);
        assert_true(coupon_take(pool, NULL, anon, codes[i]));
    }
    assert_false(coupon_take(pool, NULL, "a10", again));
    qsort(codes, 10, sizeof codes[0], cmp_str);
    for (int i = 1; i < 10; i++)
        assert_string_not_equal(codes[i], codes[i - 1]);
    campaign_release(f->reg, slot);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_campaign_errors),
        cmocka_unit_test(test_campaign_normalized),
        cmocka_unit_test(test_placement),
        cmocka_unit_test(test_swap_readers),
        cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_release_on_reload, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
