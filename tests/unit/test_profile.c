/* test_profile.c - unit tests of src/profile: every computed trait with
 * hand-checked values, traits and consent, the storage round trip, the
 * public form, merges and malformed storage input. Events are built by hand
 * in Segment's shape, so these tests do not depend on src/event. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "profile/profile.h"
#include "sim/sim.h"

#define T0 1700000000000LL /* 2023-11-14T22:13:20.000Z */
#define MINUTE (60LL * 1000)
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)

/* --- helpers -------------------------------------------------------------- */

/* Applies an event whose JSON is given whole; ids and the track name are
 * read from it as the event module would. */
static void apply_json(bsp_profile *p, bsp_event_type type, int64_t ts, const char *json) {
    bsp_event ev = {.type = type, .ts_ms = ts};
    ev.json = cJSON_Parse(json);
    assert_non_null(ev.json);
    event_point_into_json(&ev);
    profile_apply_event(p, &ev);
    cJSON_Delete(ev.json);
}

static void track(bsp_profile *p, int64_t ts, const char *name, const char *props) {
    char json[8192];
    snprintf(json, sizeof json, "{\"type\":\"track\",\"event\":\"%s\",\"properties\":%s}", name,
             props ? props : "{}");
    apply_json(p, BSP_EV_TRACK, ts, json);
}

static void track_ctx(bsp_profile *p, int64_t ts, const char *name, const char *context) {
    char json[8192];
    snprintf(json, sizeof json, "{\"type\":\"track\",\"event\":\"%s\",\"context\":%s}", name,
             context);
    apply_json(p, BSP_EV_TRACK, ts, json);
}

static void identify(bsp_profile *p, int64_t ts, const char *traits) {
    char json[8192];
    snprintf(json, sizeof json, "{\"type\":\"identify\",\"userId\":\"u1\",\"traits\":%s}", traits);
    apply_json(p, BSP_EV_IDENTIFY, ts, json);
}

static void view(bsp_profile *p, int64_t ts, const char *id, const char *category,
                 const char *brand) {
    char props[512];
    snprintf(props, sizeof props, "{\"product_id\":\"%s\",\"category\":\"%s\",\"brand\":\"%s\"}",
             id, category, brand);
    track(p, ts, "Product Viewed", props);
}

/* The computed object; the caller frees it. */
static cJSON *computed(const bsp_profile *p) {
    cJSON *c = profile_computed_json(p);
    assert_non_null(c);
    return c;
}

static double num(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static void assert_str(const cJSON *obj, const char *key, const char *expected) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!expected) {
        assert_true(cJSON_IsNull(v));
        return;
    }
    assert_true(cJSON_IsString(v));
    assert_string_equal(v->valuestring, expected);
}

static void assert_num_near(double actual, double expected) {
    assert_true(fabs(actual - expected) < 1e-9);
}

/* Compares a string array with expected, given as a NULL-terminated list. */
static void assert_list(const cJSON *obj, const char *key, const char *const *expected) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, key);
    assert_true(cJSON_IsArray(arr));
    size_t n = 0;
    while (expected[n])
        n++;
    assert_int_equal(cJSON_GetArraySize(arr), n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(cJSON_GetArrayItem(arr, (int)i)->valuestring, expected[i]);
}

static cJSON *storage_tree(const bsp_profile *p) {
    bsp_buf buf = {0};
    assert_int_equal(profile_to_json(p, &buf), BSP_OK);
    cJSON *tree = cJSON_Parse(buf.data);
    bsp_buf_free(&buf);
    assert_non_null(tree);
    return tree;
}

/* --- times and sessions ---------------------------------------------------- */

static void test_sessions_31_minute_gap(void **state) {
    (void)state;
    bsp_profile *p = profile_new(1);
    track(p, T0, "Anything", NULL);
    track(p, T0 + 31 * MINUTE, "Anything", NULL);
    cJSON *c = computed(p);
    assert_int_equal(num(c, "sessions"), 2);
    assert_str(c, "first_seen", "2023-11-14T22:13:20.000Z");
    assert_str(c, "last_seen", "2023-11-14T22:44:20.000Z");
    cJSON_Delete(c);
    profile_free(p);
}

static void test_sessions_29_minute_gap(void **state) {
    (void)state;
    bsp_profile *p = profile_new(1);
    track(p, T0, "Anything", NULL);
    track(p, T0 + 29 * MINUTE, "Anything", NULL);
    track(p, T0 + 58 * MINUTE, "Anything", NULL); /* 29 minutes after the previous */
    cJSON *c = computed(p);
    assert_int_equal(num(c, "sessions"), 1);
    cJSON_Delete(c);
    profile_free(p);
}

static void test_late_events_start_no_session(void **state) {
    (void)state;
    bsp_profile *p = profile_new(1);
    track(p, T0, "Anything", NULL);
    track(p, T0 + 2 * HOUR, "Anything", NULL); /* session 2 */
    track(p, T0 + 1 * HOUR, "Anything", NULL); /* late: older than last_seen */
    track(p, T0 - 3 * HOUR, "Anything", NULL); /* late and earliest */
    track(p, T0 + 2 * HOUR + 5 * MINUTE, "Anything", NULL);
    cJSON *c = computed(p);
    assert_int_equal(num(c, "sessions"), 2);
    assert_str(c, "first_seen", "2023-11-14T19:13:20.000Z");
    assert_str(c, "last_seen", "2023-11-15T00:18:20.000Z");
    cJSON_Delete(c);
    profile_free(p);
}

static void test_page_and_screen_views(void **state) {
    (void)state;
    bsp_profile *p = profile_new(1);
    apply_json(p, BSP_EV_PAGE, T0, "{\"type\":\"page\",\"name\":\"Home\"}");
    apply_json(p, BSP_EV_SCREEN, T0 + 1, "{\"type\":\"screen\",\"name\":\"Cart\"}");
    track(p, T0 + 2, "Product Viewed", "{\"product_id\":\"p1\"}");
    cJSON *c = computed(p);
    assert_int_equal(num(c, "page_views"), 2);
    assert_int_equal(num(c, "product_views"), 1);
    cJSON_Delete(c);
    profile_free(p);
}

/* --- cart ----------------------------------------------------------------- */

static void test_cart_add_remove_clear(void **state) {
    (void)state;
    bsp_profile *p = profile_new(1);
    track(p, T0, "Product Added", "{\"product_id\":\"p1\",\"quantity\":2,\"price\":10}");
    track(p, T0 + 1, "Product Added", "{\"product_id\":\"p2\",\"price\":5.5}");
    track(p, T0 + 2, "Product Added", "{\"product_id\":\"p1\",\"quantity\":1,\"price\":10}");
    cJSON *c = computed(p);
    assert_int_equal(num(c, "add_to_carts"), 3);
    assert_int_equal(num(c, "cart_items"), 4);
    assert_num_near(num(c, "cart_value"), 35.5);
    const cJSON *line = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "cart"), 0);
    assert_str(line, "product_id", "p1");
    assert_int_equal(num(line, "quantity"), 3);
    assert_num_near(num(line, "price"), 10);
    cJSON_Delete(c);

    track(p, T0 + 3, "Product Removed", "{\"product_id\":\"p1\",\"quantity\":2}");
    track(p, T0 + 4, "Product Removed", "{\"product_id\":\"p2\"}"); /* default 1: vanishes */
    track(p, T0 + 5, "Product Removed", "{\"product_id\":\"nope\"}");
    c = computed(p);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(c, "cart")), 1);
    assert_int_equal(num(c, "cart_items"), 1);
    assert_num_near(num(c, "cart_value"), 10);
    cJSON_Delete(c);

    track(p, T0 + 6, "Order Completed", "{\"revenue\":10}");
    c = computed(p);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(c, "cart")), 0);
    assert_int_equal(num(c, "cart_items"), 0);
    assert_num_near(num(c, "cart_value"), 0);
    cJSON_Delete(c);
    profile_free(p);
}

/* --- orders and revenue --------------------------------------------------- */

static void test_revenue_from_revenue_total_products(void **state) {
    (void)state;
    bsp_profile *p = profile_new(1);
    track(p, T0, "Order Completed", "{\"revenue\":100,\"total\":120}");
    track(p, T0 + HOUR, "Order Completed", "{\"revenue\":\"100\",\"total\":50}");
    track(p, T0 + 30 * MINUTE, "Order Completed",
          "{\"products\":[{\"product_id\":\"a\",\"price\":10,\"quantity\":2},"
          "{\"product_id\":\"b\",\"price\":2.5}]}");
    cJSON *c = computed(p);
    assert_int_equal(num(c, "orders"), 3);
    assert_num_near(num(c, "revenue"), 172.5);
    assert_num_near(num(c, "aov"), 57.5);
    assert_str(c, "last_order_at", "2023-11-14T23:13:20.000Z");
    cJSON_Delete(c);
    profile_free(p);
}

static void test_refund_and_cancel_subtract(void **state) {
    (void)state;
    bsp_profile *p = profile_new(1);
    track(p, T0, "Order Completed", "{\"revenue\":100}");
    track(p, T0 + 1, "Order Completed", "{\"total\":50}");
    track(p, T0 + 2, "Order Completed", "{\"revenue\":0.7}");
    track(p, T0 + 3, "Order Refunded", "{\"revenue\":20}");
    track(p, T0 + 4, "Order Cancelled", "{\"products\":[{\"price\":2.5,\"quantity\":3}]}");
    track(p, T0 + 5, "Order Refunded", "{\"total\":0.1}");
    track(p, T0 + 6, "Order Refunded", "{\"order_id\":\"x\"}"); /* no amount: nothing */
    cJSON *c = computed(p);
    assert_int_equal(num(c, "orders"), 3);
    assert_num_near(num(c, "revenue"), 123.1); /* 150.7 - 20 - 7.5 - 0.1 */
    assert_num_near(num(c, "aov"), 41.03);     /* 123.1 / 3 = 41.0333 */
    cJSON_Delete(c);
    profile_free(p);
}

static void test_aov_without_orders(void **state) {
    (void)state;
    bsp_profile *p = profile_new(1);
    track(p, T0, "Order Refunded", "{\"revenue\":5}");
    cJSON *c = computed(p);
    assert_int_equal(num(c, "orders"), 0);
    assert_num_near(num(c, "aov"), 0);
    assert_num_near(num(c, "revenue"), -5);
    assert_str(c, "last_order_at", NULL);
    cJSON_Delete(c);
    profile_free(p);
}

/* Thousands of orders with awkward cents, spread over profiles: the sum of
 * the public revenues matches the exact total to the cent. */
static void test_revenue_sums_to_the_cent(void **state) {
    (void)state;
    enum { PROFILES = 7, ORDERS = 7000 };
    bsp_profile *ps[PROFILES];
    for (int i = 0; i < PROFILES; i++)
        ps[i] = profile_new((uint64_t)i + 1);
    int64_t total_cents = 0;
    for (int i = 0; i < ORDERS; i++) {
        int64_t cents = 1 + (i * 7919) % 100000; /* 0.01 .. 1000.00 */
        char props[64];
        snprintf(props, sizeof props, "{\"revenue\":%lld.%02lld}", (long long)(cents / 100),
                 (long long)(cents % 100));
        track(ps[i % PROFILES], T0 + i, "Order Completed", props);
        total_cents += cents;
    }
    int64_t sum_cents = 0;
    for (int i = 0; i < PROFILES; i++) {
        cJSON *c = computed(ps[i]);
        double revenue = num(c, "revenue");
        assert_num_near(revenue * 100, (double)llround(revenue * 100)); /* whole cents */
        sum_cents += llround(revenue * 100);
        cJSON_Delete(c);
        profile_free(ps[i]);
    }
    assert_int_equal(sum_cents, total_cents);
}

/* --- product lists -------------------------------------------------------- */

static void test_recently_viewed_order_and_cap(void **state) {
    (void)state;
    bsp_profile *p = profile_new(1);
    char id[16];
    for (int i = 1; i <= 25; i++) {
        snprintf(id, sizeof id, "p%d", i);
        view(p, T0 + i, id, "c", "b");
    }
    track(p, T0 + 30, "Product Viewed", "{\"product_id\":\"p10\"}"); /* moves to front */
    track(p, T0 + 31, "Product Viewed", "{\"product_id\":\"p25\"}");
    track(p, T0 + 32, "Product Viewed", "{\"product_id\":507}"); /* numeric id */
    cJSON *c = computed(p);
    const cJSON *rv = cJSON_GetObjectItem(c, "recently_viewed");
    assert_int_equal(cJSON_GetArraySize(rv), BSP_PROFILE_RECENT_MAX);
    static const char *const expected_head[] = {"507", "p25", "p10", "p24", "p23"};
    for (int i = 0; i < 5; i++)
        assert_string_equal(cJSON_GetArrayItem(rv, i)->valuestring, expected_head[i]);
    /* p1..p6 fell off when p21..p25 and then 507 came in; p7 is last. */
    assert_string_equal(cJSON_GetArrayItem(rv, 19)->valuestring, "p7");
    assert_int_equal(num(c, "product_views"), 28);
    cJSON_Delete(c);
    profile_free(p);
}

static void test_purchased_set_and_cap(void **state) {
    (void)state;
    bsp_profile *p = profile_new(1);
    track(p, T0, "Order Completed",
          "{\"products\":[{\"product_id\":\"a\"},{\"product_id\":\"b\"}]}");
    track(p, T0 + 1, "Order Completed",
          "{\"products\":[{\"product_id\":\"b\"},{\"product_id\":\"c\"}]}");
    cJSON *c = computed(p);
    assert_list(c, "purchased", (const char *const[]){"a", "b", "c", NULL});
    cJSON_Delete(c);

    char props[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(props, sizeof props, "{\"products\":[{\"product_id\":\"q%d\"}]}", i);
        track(p, T0 + 2 + i, "Order Completed", props);
    }
    c = computed(p);
    const cJSON *bought = cJSON_GetObjectItem(c, "purchased");
    assert_int_equal(cJSON_GetArraySize(bought), 1000);
    assert_string_equal(cJSON_GetArrayItem(bought, 0)->valuestring, "q0"); /* a, b, c gone */
    assert_string_equal(cJSON_GetArrayItem(bought, 999)->valuestring, "q999");
    cJSON_Delete(c);
    profile_free(p);
}

/* --- favorites ------------------------------------------------------------ */

static void test_old_burst_loses_to_recent_views(void **state) {
    (void)state;
    bsp_profile *p = profile_new(1);
    /* 10 views 120 days (4 half-lives) ago are worth 10/16 = 0.625 today. */
    for (int i = 0; i < 10; i++)
        view(p, T0 - 120 * DAY + i, "x", "Chairs", "Old");
    view(p, T0, "y", "Lamps", "New");
    cJSON *c = computed(p);
    assert_str(c, "favorite_category", "Lamps");
    assert_str(c, "favorite_brand", "New");
    cJSON_Delete(c);

    /* 20 such views are worth 1.25: more than one view today (Lamps: 1). */
    for (int i = 0; i < 10; i++)
        view(p, T0 - 120 * DAY + 100 + i, "x", "Chairs", "Old");
    c = computed(p);
    assert_str(c, "favorite_category", "Chairs");
    cJSON_Delete(c);
    profile_free(p);
}

static void test_favorite_weights(void **state) {
    (void)state;
    bsp_profile *p = profile_new(1);
    view(p, T0, "a", "Shoes", "Acme");
    view(p, T0 + 1, "a", "Shoes", "Acme"); /* Shoes 2, Acme 2 */
    track(p, T0 + 2, "Product Added",
          "{\"product_id\":\"b\",\"category\":\"Bags\",\"brand\":\"Zeta\"}"); /* 3 */
    cJSON *c = computed(p);
    assert_str(c, "favorite_category", "Bags");
    assert_str(c, "favorite_brand", "Zeta");
    cJSON_Delete(c);
    track(p, T0 + 3, "Order Completed",
          "{\"products\":[{\"product_id\":\"h\",\"category\":\"Hats\",\"brand\":\"Acme\"}]}");
    c = computed(p);
    assert_str(c, "favorite_category", "Hats"); /* purchase: 5 */
    assert_str(c, "favorite_brand", "Acme");    /* 2 + 5 */
    cJSON_Delete(c);
    profile_free(p);
}

static void test_decayed_counts_keep_top_32(void **state) {
    (void)state;
    bsp_profile *p = profile_new(1);
    char category[16];
    for (int i = 0; i < 40; i++) {
        snprintf(category, sizeof category, "c%d", i);
        view(p, T0 + i, "x", category, "b");
    }
    view(p, T0 + 100, "x", "c39", "b");
    cJSON *tree = storage_tree(p);
    const cJSON *entries = json_path(tree, "cat.e");
    assert_int_equal(cJSON_GetArraySize(entries), 32);
    cJSON_Delete(tree);
    cJSON *c = computed(p);
    assert_str(c, "favorite_category", "c39");
    cJSON_Delete(c);
    profile_free(p);
}

/* --- latest values -------------------------------------------------------- */

static void test_last_search_and_country(void **state) {
    (void)state;
    bsp_profile *p = profile_new(1);
    track(p, T0, "Products Searched", "{\"query\":\"sofa\"}");
    track_ctx(p, T0 + 1, "Anything", "{\"location\":{\"country\":\"DE\"}}");
    cJSON *c = computed(p);
    assert_str(c, "last_search", "sofa");
    assert_str(c, "country", "DE");
    cJSON_Delete(c);

    identify(p, T0 + 2, "{\"address\":{\"country\":\"FR\"},\"country\":\"IT\"}");
    c = computed(p);
    assert_str(c, "country", "FR"); /* address.country before traits.country */
    cJSON_Delete(c);

    track(p, T0 + 3, "Anything", "{\"country\":\"AT\"}");
    identify(p, T0 + 4, "{\"country\":\"CH\"}");
    track(p, T0 - DAY, "Products Searched", "{\"query\":\"old\",\"country\":\"US\"}");
    c = computed(p);
    assert_str(c, "country", "CH"); /* the late US event does not win */
    assert_str(c, "last_search", "sofa");
    cJSON_Delete(c);
    profile_free(p);
}

static void test_device(void **state) {
    (void)state;
    static const struct {
        const char *context;
        const char *device;
    } cases[] = {
        {"{\"userAgent\":\"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile/15E148\"}", "mobile"},
        {"{\"userAgent\":\"Mozilla/5.0 (iPad; CPU OS 16_0) Mobile/15E148\"}", "tablet"},
        {"{\"userAgent\":\"Mozilla/5.0 (Linux; Android 13; SM-G991B) Mobile\"}", "mobile"},
        {"{\"userAgent\":\"Mozilla/5.0 (Linux; Android 12; Tablet) Safari\"}", "tablet"},
        {"{\"userAgent\":\"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120\"}", "desktop"},
        {"{\"device\":{\"type\":\"tablet\"},\"userAgent\":\"iPhone\"}", "tablet"},
        {"{\"device\":{\"type\":\"ios\"}}", "mobile"},
        {"{\"page\":{\"url\":\"https://x\"}}", NULL},
        /* The first of repeated members counts; a device that is not an
         * object leaves the user agent to tell. */
        {"{\"device\":{\"type\":\"tablet\"},\"device\":{\"type\":\"desktop\"}}", "tablet"},
        {"{\"device\":\"tablet\",\"userAgent\":\"Mozilla/5.0 (iPhone)\"}", "mobile"},
        {"{\"userAgent\":7}", NULL},
        /* Same length and the same memo slot (their hashes agree modulo
         * 64): the memo of agents compares the bytes. */
        {"{\"userAgent\":\"Mozilla/5.0 (iPad; 000)\"}", "tablet"},
        {"{\"userAgent\":\"Mozilla/5.0 (iMac; 043)\"}", "desktop"},
        /* Longer than a memo slot: classified each time. */
        {"{\"userAgent\":\"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/120.0.0.0 Safari/537.36 Extension/1.0 Extension/1.0 Extension/1.0 Extension/1.0 "
         "Extension/1.0 Extension/1.0 Extension/1.0 Extension/1.0 Extension/1.0 Extension/1.0 "
         "Extension/1.0 Extension/1.0 Android\"}",
         "mobile"},
    };
    /* Twice: the second pass is answered by the memo of user agents. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            bsp_profile *p = profile_new(1);
            track_ctx(p, T0, "Anything", cases[i].context);
            cJSON *c = computed(p);
            assert_str(c, "device", cases[i].device);
            cJSON_Delete(c);
            profile_free(p);
        }
    }
}

/* --- traits, consent, ids ------------------------------------------------- */

static void test_identify_traits_nested_quiz(void **state) {
    (void)state;
    bsp_profile *p = profile_new(1);
    identify(p, T0,
             "{\"email\":\"a@example.com\",\"quiz\":{\"style\":\"minimal\",\"budget\":\"mid\"}}");
    identify(p, T0 + 1, "{\"name\":\"Ann\",\"quiz\":{\"style\":\"bold\"}}");
    apply_json(p, BSP_EV_TRACK, T0 + 2,
               "{\"type\":\"track\",\"event\":\"X\",\"context\":{\"traits\":{\"plan\":\"gold\"}}}");
    apply_json(p, BSP_EV_GROUP, T0 + 3,
               "{\"type\":\"group\",\"groupId\":\"g\",\"traits\":{\"employees\":50}}");
    const cJSON *traits = profile_traits(p);
    assert_string_equal(json_get_string(traits, "email"), "a@example.com");
    assert_string_equal(json_get_string(traits, "name"), "Ann");
    assert_string_equal(json_get_string(json_path(traits, "quiz"), "style"), "bold");
    assert_string_equal(json_get_string(json_path(traits, "quiz"), "budget"), "mid");
    assert_string_equal(json_get_string(traits, "plan"), "gold");
    assert_null(cJSON_GetObjectItem(traits, "employees"));
    assert_int_equal(profile_id_count(p, 'u'), 1);
    assert_string_equal(profile_id_at(p, 'u', 0), "u1");
    profile_free(p);
}

static void test_consent_latest_wins(void **state) {
    (void)state;
    bsp_profile *p = profile_new(1);
    assert_int_equal(profile_consent(p, "Advertising"), -1);
    track_ctx(p, T0 + 10, "X",
              "{\"consent\":{\"categoryPreferences\":{\"Advertising\":true,\"Analytics\":false}}}");
    track_ctx(p, T0, "X", "{\"consent\":{\"categoryPreferences\":{\"Advertising\":false}}}");
    assert_int_equal(profile_consent(p, "Advertising"), 1);
    assert_int_equal(profile_consent(p, "Analytics"), 0);
    cJSON *pub = profile_public_json(p);
    const cJSON *consent = cJSON_GetObjectItem(pub, "consent");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(consent, "Advertising")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(consent, "Analytics")));
    assert_str(consent, "updated_at", "2023-11-14T22:13:20.010Z");
    cJSON_Delete(pub);

    track_ctx(p, T0 + 20, "X", "{\"consent\":{\"categoryPreferences\":{\"Advertising\":false}}}");
    assert_int_equal(profile_consent(p, "Advertising"), 0);
    assert_int_equal(profile_consent(p, "Analytics"), -1); /* replaced, not merged */
    profile_free(p);
}

static void test_ids_unique_and_capped(void **state) {
    (void)state;
    bsp_profile *p = profile_new(1);
    profile_add_id(p, 'a', "anon-1");
    profile_add_id(p, 'a', "anon-1");
    profile_add_id(p, 'u', "user-1");
    profile_add_id(p, 'x', "ignored");
    profile_add_id(p, 'u', "");
    assert_int_equal(profile_id_count(p, 'a'), 1);
    assert_int_equal(profile_id_count(p, 'u'), 1);
    assert_null(profile_id_at(p, 'u', 1));
    char id[16];
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "a%d", i);
        profile_add_id(p, 'a', id);
    }
    assert_int_equal(profile_id_count(p, 'a'), BSP_PROFILE_MAX_IDS);
    assert_string_equal(profile_id_at(p, 'a', 0), "anon-1");
    apply_json(p, BSP_EV_TRACK, T0, "{\"type\":\"track\",\"event\":\"X\",\"userId\":\"user-2\"}");
    assert_int_equal(profile_id_count(p, 'u'), 2);
    profile_free(p);
}

/* --- storage and public forms --------------------------------------------- */

/* A profile with every field set. */
static bsp_profile *rich_profile(void) {
    bsp_profile *p = profile_new(12345678901ULL);
    apply_json(p, BSP_EV_IDENTIFY, T0,
               "{\"type\":\"identify\",\"userId\":\"u1\",\"anonymousId\":\"a1\","
               "\"traits\":{\"email\":\"a@example.com\",\"quiz\":{\"style\":\"minimal\"},"
               "\"age\":41,\"score\":0.1,\"tags\":[\"x\",\"y\\\"\"],\"vip\":true,\"n\":null},"
               "\"context\":{\"consent\":{\"categoryPreferences\":{\"Advertising\":true}},"
               "\"location\":{\"country\":\"DE\"},\"userAgent\":\"iPhone\"}}");
    view(p, T0 - 200 * DAY, "p1", "Chairs", "Acme");
    view(p, T0 + MINUTE, "p2", "Lamps \\\"bright\\\"", "Lux"); /* JSON-escaped */
    track(p, T0 + 2 * MINUTE, "Product Added", "{\"product_id\":\"p2\",\"price\":19.99}");
    track(p, T0 + 3 * MINUTE, "Product Added",
          "{\"product_id\":\"p3\",\"price\":0.1,\"quantity\":3}");
    track(p, T0 + 2 * HOUR, "Order Completed",
          "{\"products\":[{\"product_id\":\"p9\",\"price\":0.1,\"quantity\":3,"
          "\"category\":\"Misc\"}]}");
    track(p, T0 + 3 * HOUR, "Product Added", "{\"product_id\":\"p4\",\"price\":1e-7}");
    track(p, T0 + 4 * HOUR, "Products Searched", "{\"query\":\"sofa\\nbed ü\"}");
    apply_json(p, BSP_EV_PAGE, T0 + 5 * HOUR, "{\"type\":\"page\"}");
    return p;
}

static void assert_round_trip(const bsp_profile *p) {
    bsp_buf first = {0}, second = {0};
    assert_int_equal(profile_to_json(p, &first), BSP_OK);
    bsp_profile *copy = NULL;
    assert_int_equal(profile_from_json(first.data, first.len, &copy), BSP_OK);
    assert_non_null(copy);
    assert_int_equal(profile_to_json(copy, &second), BSP_OK);
    assert_string_equal(first.data, second.data);
    cJSON *a = profile_public_json(p), *b = profile_public_json(copy);
    assert_true(cJSON_Compare(a, b, true));
    cJSON_Delete(a);
    cJSON_Delete(b);
    profile_free(copy);
    bsp_buf_free(&first);
    bsp_buf_free(&second);
}

static void test_storage_round_trip(void **state) {
    (void)state;
    bsp_profile *p = rich_profile();
    assert_round_trip(p);
    bsp_profile *empty = profile_new(7);
    assert_round_trip(empty);
    profile_free(empty);
    profile_free(p);
}

/* A profile read back keeps computing as if it had never been stored. */
static void test_storage_continues_computing(void **state) {
    (void)state;
    bsp_profile *p = rich_profile();
    bsp_buf buf = {0};
    assert_int_equal(profile_to_json(p, &buf), BSP_OK);
    bsp_profile *copy = NULL;
    assert_int_equal(profile_from_json(buf.data, buf.len, &copy), BSP_OK);
    bsp_profile *both[2] = {p, copy};
    for (int i = 0; i < 2; i++) {
        track(both[i], T0 + 6 * HOUR, "Product Viewed",
              "{\"product_id\":\"p1\",\"category\":\"Chairs\"}");
        track(both[i], T0 + 6 * HOUR, "Order Completed", "{\"revenue\":0.2}");
    }
    bsp_buf a = {0}, b = {0};
    assert_int_equal(profile_to_json(p, &a), BSP_OK);
    assert_int_equal(profile_to_json(copy, &b), BSP_OK);
    assert_string_equal(a.data, b.data);
    bsp_buf_free(&a);
    bsp_buf_free(&b);
    bsp_buf_free(&buf);
    profile_free(copy);
    profile_free(p);
}

static void test_public_form_shape(void **state) {
    (void)state;
    bsp_profile *empty = profile_new(42);
    cJSON *pub = profile_public_json(empty);
    assert_str(pub, "profile_id", "42");
    const cJSON *ids = cJSON_GetObjectItem(pub, "ids");
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(ids, "userId")));
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(ids, "anonymousId")));
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(pub, "traits")));
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(pub, "consent")));
    const cJSON *c = cJSON_GetObjectItem(pub, "computed");
    static const char *const null_keys[] = {
        "first_seen",        "last_seen",   "last_order_at", "favorite_brand",
        "favorite_category", "last_search", "country",       "device"};
    for (size_t i = 0; i < sizeof null_keys / sizeof null_keys[0]; i++)
        assert_true(cJSON_IsNull(cJSON_GetObjectItem(c, null_keys[i])));
    static const char *const zero_keys[] = {"sessions",     "page_views", "product_views",
                                            "add_to_carts", "cart_items", "cart_value",
                                            "orders",       "revenue",    "aov"};
    for (size_t i = 0; i < sizeof zero_keys / sizeof zero_keys[0]; i++)
        assert_int_equal(num(c, zero_keys[i]), 0);
    static const char *const list_keys[] = {"cart", "recently_viewed", "purchased"};
    for (size_t i = 0; i < sizeof list_keys / sizeof list_keys[0]; i++)
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(c, list_keys[i])), 0);
    assert_int_equal(cJSON_GetArraySize(c), 23); /* 20 + engaged_* */
    cJSON_Delete(pub);
    profile_free(empty);

    bsp_profile *p = rich_profile();
    pub = profile_public_json(p);
    assert_str(pub, "profile_id", "12345678901");
    assert_list(cJSON_GetObjectItem(pub, "ids"), "userId", (const char *const[]){"u1", NULL});
    c = cJSON_GetObjectItem(pub, "computed");
    assert_str(c, "device", "mobile");
    assert_str(c, "country", "DE");
    assert_str(c, "last_search", "sofa\nbed ü");
    assert_num_near(num(c, "revenue"), 0.3);
    assert_num_near(num(c, "cart_value"), 0); /* cleared by the order, then 1e-7 */
    assert_int_equal(num(c, "cart_items"), 1);
    assert_str(c, "favorite_category", "Misc");
    assert_list(c, "recently_viewed", (const char *const[]){"p2", "p1", NULL});
    cJSON_Delete(pub);
    profile_free(p);
}

static void test_from_json_rejects_malformed(void **state) {
    (void)state;
    static const char *const bad[] = {
        "",
        "{",
        "[]",
        "null",
        "\"text\"",
        "{\"v\":1}",
        "{\"pid\":\"1\"}",
        "{\"v\":2,\"pid\":\"1\"}",
        "{\"v\":1,\"pid\":1}",
        "{\"v\":1,\"pid\":\"1x\"}",
        "{\"v\":1,\"pid\":\"-1\"}",
        "{\"v\":1,\"pid\":\"1\",\"uid\":5}",
        "{\"v\":1,\"pid\":\"1\",\"aid\":[1]}",
        "{\"v\":1,\"pid\":\"1\",\"traits\":[]}",
        "{\"v\":1,\"pid\":\"1\",\"consent\":true}",
        "{\"v\":1,\"pid\":\"1\",\"first\":\"x\",\"last\":1}",
        "{\"v\":1,\"pid\":\"1\",\"first\":1}",
        "{\"v\":1,\"pid\":\"1\",\"sessions\":-1}",
        "{\"v\":1,\"pid\":\"1\",\"orders\":1.5}",
        "{\"v\":1,\"pid\":\"1\",\"revenue\":5}",
        "{\"v\":1,\"pid\":\"1\",\"revenue\":[5]}",
        "{\"v\":1,\"pid\":\"1\",\"cart\":{}}",
        "{\"v\":1,\"pid\":\"1\",\"cart\":[[\"p\",0,1]]}",
        "{\"v\":1,\"pid\":\"1\",\"cart\":[[\"p\",1]]}",
        "{\"v\":1,\"pid\":\"1\",\"cart\":[[\"p\",1,1],[\"p\",1,1]]}",
        "{\"v\":1,\"pid\":\"1\",\"cart\":[5]}",
        "{\"v\":1,\"pid\":\"1\",\"recent\":[null]}",
        "{\"v\":1,\"pid\":\"1\",\"cat\":{\"ref\":1}}",
        "{\"v\":1,\"pid\":\"1\",\"cat\":{\"ref\":1,\"e\":[[\"a\"]]}}",
        "{\"v\":1,\"pid\":\"1\",\"brand\":{\"ref\":1,\"e\":[[1,2]]}}",
        "{\"v\":1,\"pid\":\"1\",\"search\":3}",
        "{\"v\":1,\"pid\":\"1\",\"device\":\"phone\"}",
        "{\"v\":1,\"pid\":\"1\",\"device\":null}",
        "{\"v\":1,\"pid\":\"1\"} trailing",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bsp_profile *p = (bsp_profile *)&p; /* must be reset to NULL */
        bsp_err rc = profile_from_json(bad[i], strlen(bad[i]), &p);
        if (rc == BSP_OK) fail_msg("accepted: %s", bad[i]);
        assert_null(p);
    }
    char deep[200];
    memset(deep, '[', sizeof deep);
    bsp_profile *p = NULL;
    assert_int_not_equal(profile_from_json(deep, sizeof deep, &p), BSP_OK);
    assert_int_not_equal(profile_from_json(NULL, 0, &p), BSP_OK);
    assert_null(p);
    const char *minimal = "{\"v\":1,\"pid\":\"9\"}";
    assert_int_equal(profile_from_json(minimal, strlen(minimal), &p), BSP_OK);
    assert_int_equal(profile_pid(p), 9);
    profile_free(p);
}

/* Every truncation and many one-byte corruptions of a real storage form:
 * each is either read (and then writes again) or refused, never a crash. */
static void test_from_json_survives_corruption(void **state) {
    (void)state;
    bsp_profile *p = rich_profile();
    bsp_buf good = {0}, again = {0};
    assert_int_equal(profile_to_json(p, &good), BSP_OK);
    profile_free(p);
    static const char replacements[] = {'0', '"', '[', '{', '}', ',', '-', 'x', '\\'};
    char *text = malloc(good.len + 1);
    assert_non_null(text);
    for (size_t at = 0; at < good.len; at++) {
        for (size_t r = 0; r <= sizeof replacements; r++) {
            memcpy(text, good.data, good.len + 1);
            size_t len = r == sizeof replacements ? at : good.len; /* last: truncate */
            if (r < sizeof replacements) text[at] = replacements[r];
            bsp_profile *q = NULL;
            if (profile_from_json(text, len, &q) != BSP_OK) {
                assert_null(q);
                continue;
            }
            bsp_buf_reset(&again);
            assert_int_equal(profile_to_json(q, &again), BSP_OK);
            profile_free(q);
        }
    }
    free(text);
    bsp_buf_free(&good);
    bsp_buf_free(&again);
}

/* --- the scanner (scan.c) against the tree reader --------------------------- */

/* Every field and every extra set, with escapes only inside what a profile
 * keeps as cJSON (traits, consent, sections, recent events): the layout the
 * scanner reads itself. */
static bsp_profile *scannable_profile(void) {
    const char *watch[] = {"Order Completed"};
    assert_int_equal(profile_watch_events(watch, 1, 400 * DAY), BSP_OK);
    bsp_profile *p = profile_new(98765);
    apply_json(p, BSP_EV_IDENTIFY, T0,
               "{\"type\":\"identify\",\"userId\":\"u1\",\"anonymousId\":\"a1\","
               "\"traits\":{\"name\":\"Q \\\"the\\\" \\u00e9\",\"quiz\":{\"style\":\"min\"},"
               "\"n\":null,\"tags\":[1,2.5,true]},"
               "\"context\":{\"consent\":{\"categoryPreferences\":{\"Advertising\":true}},"
               "\"location\":{\"country\":\"DE\"},\"userAgent\":\"iPhone\"}}");
    profile_add_id(p, 'a', "a2");
    view(p, T0 + MINUTE, "p1", "Chairs > Office", "Acme");
    view(p, T0 + 2 * MINUTE, "p2", "Lamps", "Lux ü");
    track(p, T0 + 3 * MINUTE, "Product Added", "{\"product_id\":\"p2\",\"price\":19.99}");
    track(p, T0 + 4 * MINUTE, "Product Added",
          "{\"product_id\":\"p3\",\"price\":0.1,\"quantity\":3}");
    track(p, T0 + 2 * HOUR, "Order Completed",
          "{\"revenue\":12.34,\"products\":[{\"product_id\":\"p9\",\"price\":0.1,"
          "\"quantity\":3,\"category\":\"Misc\"}],\"note\":\"tab\\there\"}");
    track(p, T0 + 3 * HOUR, "Products Searched", "{\"query\":\"sofa bed\"}");
    track(p, T0 + 3 * HOUR, "Product Added", "{\"product_id\":\"p4\",\"price\":1e-7}");
    track(p, T0 + 3 * HOUR, "Product Added", "{\"product_id\":\"p5\",\"quantity\":2}");
    track(p, T0 + 3 * HOUR, "Promotion Viewed", "{\"promotion_id\":\"c1\"}");
    track(p, T0 + 3 * HOUR, "Promotion Clicked", "{\"promotion_id\":\"c1\"}");
    track(p, T0 + 4 * HOUR, "Product Engaged",
          "{\"product_id\":\"p1\",\"category\":\"Chairs > Office\",\"seconds\":12.5}");
    assert_int_equal(profile_set_section(p, "rfm", cJSON_Parse("{\"r\":5,\"label\":\"a\\\"b\"}")),
                     BSP_OK);
    assert_int_equal(profile_set_section(p, "predicted", cJSON_Parse("{\"churn\":0.25}")), BSP_OK);
    profile_set_segment(p, "vip", true);
    profile_set_segment(p, "new", true);
    profile_set_applied_seq(p, 77);
    assert_int_equal(profile_watch_events(NULL, 0, 0), BSP_OK);
    return p;
}

static void assert_same_profile(const bsp_profile *a, const bsp_profile *b) {
    bsp_buf x = {0}, y = {0};
    assert_int_equal(profile_to_json(a, &x), BSP_OK);
    assert_int_equal(profile_to_json(b, &y), BSP_OK);
    assert_int_equal(x.len, y.len);
    assert_memory_equal(x.data, y.data, x.len);
    cJSON *pa = profile_public_json(a), *pb = profile_public_json(b);
    bsp_buf_reset(&x);
    bsp_buf_reset(&y);
    assert_int_equal(json_write(&x, pa), BSP_OK); /* cJSON_Compare is exponential in depth */
    assert_int_equal(json_write(&y, pb), BSP_OK);
    assert_int_equal(x.len, y.len);
    assert_memory_equal(x.data, y.data, x.len);
    cJSON_Delete(pa);
    cJSON_Delete(pb);
    bsp_buf_free(&x);
    bsp_buf_free(&y);
}

/* Both readers on the same bytes, and profile_from_json: the same code and,
 * when read, the same profile. scan: 1 the scanner must read it, 0 it must
 * decline, -1 either (it must then agree). */
static void assert_readers_agree(const char *text, size_t len, int scan) {
    bsp_profile *tree = NULL, *scanned = NULL, *both = NULL;
    bsp_err rc_tree = profile_from_json_tree(text, len, &tree);
    bool read = profile_scan_json(text, len, &scanned);
    bsp_err rc = profile_from_json(text, len, &both);
    if (scan >= 0 && read != (scan == 1))
        fail_msg("scanner %s: %.*s", read ? "read" : "declined", (int)len, text);
    if (read && rc_tree != BSP_OK) fail_msg("only the scanner read: %.*s", (int)len, text);
    assert_int_equal(rc, rc_tree);
    if (read) assert_same_profile(tree, scanned);
    if (rc == BSP_OK) assert_same_profile(tree, both);
    if (!read) assert_null(scanned);
    if (rc != BSP_OK) assert_true(!tree && !both);
    profile_free(tree);
    profile_free(scanned);
    profile_free(both);
}

static void test_scan_reads_the_writers_layout(void **state) {
    (void)state;
    bsp_profile *p = scannable_profile();
    bsp_buf text = {0};
    assert_int_equal(profile_to_json(p, &text), BSP_OK);
    static const char *const keys[] = {
        "\"uid\"", "\"aid\"",      "\"traits\"",  "\"consent\"", "\"consent_ms\"", "\"first\"",
        "\"seq\"", "\"orders\"",   "\"revenue\"", "\"cart\"",    "\"recent\"",     "\"purchased\"",
        "\"cat\"", "\"brand\"",    "\"search\"",  "\"country\"", "\"device\"",     "\"x\"",
        "\"rfm\"", "\"pred\"",     "\"seg\"",     "\"exp\"",     "\"dp\"",         "\"dc\"",
        "\"ds\"",  "\"recent\":[{"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strstr(text.data, keys[i])) fail_msg("no %s in %s", keys[i], text.data);
    assert_readers_agree(text.data, text.len, 1);
    bsp_profile *empty = profile_new(7);
    bsp_buf_reset(&text);
    assert_int_equal(profile_to_json(empty, &text), BSP_OK);
    assert_readers_agree(text.data, text.len, 1);
    bsp_profile *rich = rich_profile(); /* escapes in a category and the search */
    bsp_buf_reset(&text);
    assert_int_equal(profile_to_json(rich, &text), BSP_OK);
    assert_readers_agree(text.data, text.len, 0);
    profile_free(rich);
    profile_free(empty);
    profile_free(p);
    bsp_buf_free(&text);
}

/* Layouts the writer does not produce: the scanner declines and the tree
 * reader answers (reads or refuses). */
static void test_scan_declines_other_layouts(void **state) {
    (void)state;
    static const char *const other[] = {
        "{ \"v\":1,\"pid\":\"1\"}",
        "{\"v\":1,\"pid\":\"1\" }",
        "{\"v\":1,\"pid\":\"1\"}\n",
        "{\"v\":1,\"pid\":\"1\",\"uid\":[\"a\\u0062\"]}",
        "{\"v\":1,\"pid\":\"1\",\"uid\":[\"a\"],\"uid\":[\"b\"]}",
        "{\"v\":1,\"pid\":\"1\",\"aid\":[\"a\"],\"uid\":[\"b\"]}",
        "{\"v\":1,\"pid\":\"1\",\"zzz\":1}",
        "{\"pid\":\"1\",\"v\":1}",
        "{\"v\":1.0,\"pid\":\"1\"}",
        "{\"v\":1,\"pid\":\"1\",\"orders\":1.0}",
        "{\"v\":1,\"pid\":\"1\",\"orders\":1e2}",
        "{\"v\":1,\"pid\":\"1\",\"orders\":01}",
        "{\"v\":1,\"pid\":\"1\",\"first\":1234567890123456,\"last\":1234567890123456}",
        "{\"v\":1,\"pid\":\"1\",\"first\":99999999999999999999,\"last\":1}",
        "{\"v\":1,\"pid\":\"123456789012345678901\"}",
        "{\"v\":1,\"pid\":\"1\",\"revenue\":[1e999,0]}",
        "{\"v\":1,\"pid\":\"1\",\"revenue\":[.5,0]}",
        "{\"v\":1,\"pid\":\"1\",\"search\":\"a\\nb\"}",
        "{\"v\":1,\"pid\":\"1\",\"search\":\"a\tb\"}",
        "{\"v\":1,\"pid\":\"1\",\"cart\":[[\"p\",1,1,4]]}",
        "{\"v\":1,\"pid\":\"1\",\"cat\":{\"e\":[[\"a\",1]],\"ref\":1}}",
        "{\"v\":1,\"pid\":\"1\",\"x\":{\"seg\":[\"a\"],\"rfm\":{}}}",
        "{\"v\":1,\"pid\":\"1\",\"x\":{\"exp\":[[\"c\",1.5,1,1,1]]}}",
        "{\"v\":1,\"pid\":\"1\",\"x\":{\"exp\":[[\"c\",1,\"x\",1,1]]}}",
        "{\"v\":1,\"pid\":\"1\",\"x\":{\"dp\":{\"e\":[[\"a\",1,2]],\"ref\":1}}}",
        "{\"v\":1,\"pid\":\"1\",\"x\":{\"ds\":null}}",
        "{\"v\":1,\"pid\":\"1\",\"x\":{\"ds\":-1}}",
        "{\"v\":1,\"pid\":\"1\",\"x\":{\"recent\":[{\"event\":\"a\"}]}}",
        "{\"v\":1,\"pid\":\"1\",\"x\":{\"zzz\":[]}}",
        "\xef\xbb\xbf{\"v\":1,\"pid\":\"1\"}",
    };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        assert_readers_agree(other[i], strlen(other[i]), 0);
    static const char *const same[] = {
        "{\"v\":1,\"pid\":\"007\",\"uid\":[\"a\",\"a\"],\"aid\":[]}",
        "{\"v\":1,\"pid\":\"1\",\"orders\":-0,\"first\":-5,\"last\":0}",
        "{\"v\":1,\"pid\":\"18446744073709551615\"}",
        "{\"v\":1,\"pid\":\"1\",\"revenue\":[-0,1.5E-3],\"x\":{}}",
        "{\"v\":1,\"pid\":\"1\",\"traits\":{ \"a\" : [ 1 , {} ] }}",
        "{\"v\":1,\"pid\":\"1\",\"x\":{\"exp\":[[\"c\",-1,0,5,1],[\"c\",2,2,2,2]],\"ds\":0}}",
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
        assert_readers_agree(same[i], strlen(same[i]), -1);
}

/* The depth limit json_parse applies to the whole text holds for the
 * objects the scanner hands to cJSON, at their depth in the profile. */
static void test_scan_depth_limit(void **state) {
    (void)state;
    char text[512];
    for (int depth = BSP_JSON_MAX_DEPTH - 2; depth <= BSP_JSON_MAX_DEPTH + 3; depth++) {
        char nest[256] = "";
        for (int i = 1; i < depth; i++)
            strcat(nest, "{\"a\":");
        strcat(nest, "{}");
        for (int i = 1; i < depth; i++)
            strcat(nest, "}");
        snprintf(text, sizeof text, "{\"v\":1,\"pid\":\"1\",\"traits\":%s}", nest);
        assert_readers_agree(text, strlen(text), -1);
        snprintf(text, sizeof text, "{\"v\":1,\"pid\":\"1\",\"x\":{\"rfm\":%s}}", nest);
        assert_readers_agree(text, strlen(text), -1);
    }
}

/* Every truncation, one-byte change, deletion and inserted space of the
 * writer's layout: the scanner declines or reads exactly what the tree
 * reader reads, and profile_from_json answers as the tree reader. */
static void test_scan_agrees_on_corruption(void **state) {
    (void)state;
    bsp_profile *p = scannable_profile();
    bsp_buf good = {0};
    assert_int_equal(profile_to_json(p, &good), BSP_OK);
    profile_free(p);
    static const char repl[] = {'0', '1', '9', '"', '[', ']',  '{',  '}',  ',',   ':',
                                '-', '.', 'e', 'x', ' ', '\\', '\0', '\n', '\x80'};
    char *text = malloc(good.len + 2);
    assert_non_null(text);
    for (size_t at = 0; at < good.len; at++) {
        for (size_t r = 0; r < sizeof repl; r++) {
            memcpy(text, good.data, good.len);
            text[at] = repl[r];
            assert_readers_agree(text, good.len, -1);
        }
        assert_readers_agree(good.data, at, -1); /* truncated */
        memcpy(text, good.data, at);             /* one byte deleted */
        memcpy(text + at, good.data + at + 1, good.len - at - 1);
        assert_readers_agree(text, good.len - 1, -1);
        memcpy(text, good.data, at); /* a space inserted */
        text[at] = ' ';
        memcpy(text + at + 1, good.data + at, good.len - at);
        assert_readers_agree(text, good.len + 1, -1);
    }
    free(text);
    bsp_buf_free(&good);
}

/* --- merge ---------------------------------------------------------------- */

static void build_merge_pair(bsp_profile *into, bsp_profile *from) {
    apply_json(into, BSP_EV_IDENTIFY, T0,
               "{\"type\":\"identify\",\"userId\":\"u1\",\"anonymousId\":\"a1\","
               "\"traits\":{\"email\":\"known@example.com\",\"quiz\":{\"style\":\"minimal\"}},"
               "\"context\":{\"location\":{\"country\":\"DE\"}}}");
    track(into, T0 + MINUTE, "Product Added",
          "{\"product_id\":\"p1\",\"price\":10,\"category\":\"Chairs\"}");
    view(into, T0 + 2 * MINUTE, "v1", "Chairs", "Acme");
    track(into, T0 + HOUR, "Order Completed", "{\"revenue\":50}");
    track(into, T0 + HOUR + MINUTE, "Product Added", "{\"product_id\":\"p1\",\"price\":10}");

    apply_json(
        from, BSP_EV_IDENTIFY, T0 - DAY,
        "{\"type\":\"identify\",\"anonymousId\":\"a2\",\"traits\":{\"email\":"
        "\"anon@example.com\",\"name\":\"Zed\",\"quiz\":{\"style\":\"bold\",\"size\":\"M\"}}}");
    apply_json(from, BSP_EV_PAGE, T0 - DAY + 1, "{\"type\":\"page\",\"anonymousId\":\"a2\"}");
    view(from, T0 - DAY + 2, "v2", "Lamps", "Lux");
    view(from, T0 - DAY + 3, "v1", "Lamps", "Lux");
    track(from, T0 + 2 * HOUR, "Order Completed", "{\"revenue\":30}");
    track(from, T0 + 2 * HOUR + 1, "Order Completed", "{\"revenue\":30.01}");
    track(from, T0 + 3 * HOUR, "Product Added",
          "{\"product_id\":\"p1\",\"price\":12,\"quantity\":2}");
    track(from, T0 + 3 * HOUR, "Product Added", "{\"product_id\":\"p2\",\"price\":5}");
    track(from, T0 + 3 * HOUR, "Products Searched", "{\"query\":\"lamp\"}");
    track_ctx(from, T0 + 3 * HOUR, "X", "{\"location\":{\"country\":\"FR\"}}");
}

static void test_merge(void **state) {
    (void)state;
    bsp_profile *into = profile_new(1), *from = profile_new(2);
    build_merge_pair(into, from);
    profile_merge(into, from);
    assert_int_equal(profile_pid(into), 1);

    assert_int_equal(profile_id_count(into, 'u'), 1);
    assert_int_equal(profile_id_count(into, 'a'), 2);
    assert_string_equal(profile_id_at(into, 'a', 1), "a2");

    const cJSON *traits = profile_traits(into);
    assert_string_equal(json_get_string(traits, "email"), "known@example.com");
    assert_string_equal(json_get_string(traits, "name"), "Zed");
    assert_string_equal(json_get_string(json_path(traits, "quiz"), "style"), "minimal");
    assert_string_equal(json_get_string(json_path(traits, "quiz"), "size"), "M");

    cJSON *c = computed(into);
    assert_int_equal(num(c, "orders"), 3);
    assert_num_near(num(c, "revenue"), 110.01);
    assert_num_near(num(c, "aov"), 36.67);
    assert_int_equal(num(c, "page_views"), 1);
    assert_int_equal(num(c, "product_views"), 3);
    assert_int_equal(num(c, "add_to_carts"), 4);
    assert_int_equal(num(c, "sessions"), 2 + 3); /* into: T0, T0+1h; from: T0-1d, T0+2h, T0+3h */
    assert_str(c, "first_seen", "2023-11-13T22:13:20.000Z");
    assert_str(c, "last_seen", "2023-11-15T01:13:20.000Z");
    assert_str(c, "last_order_at", "2023-11-15T00:13:20.001Z");
    assert_str(c, "country", "FR"); /* from was seen later */
    assert_str(c, "last_search", "lamp");
    assert_int_equal(num(c, "cart_items"), 4); /* p1: 1 + 2, p2: 1 */
    const cJSON *cart = cJSON_GetObjectItem(c, "cart");
    assert_int_equal(cJSON_GetArraySize(cart), 2);
    assert_str(cJSON_GetArrayItem(cart, 0), "product_id", "p1");
    assert_int_equal(num(cJSON_GetArrayItem(cart, 0), "quantity"), 3);
    assert_num_near(num(cJSON_GetArrayItem(cart, 0), "price"), 10); /* into's price */
    assert_num_near(num(c, "cart_value"), 35);
    assert_list(c, "recently_viewed", (const char *const[]){"v1", "v2", NULL});
    /* Chairs: add 3 + view 1 at T0; Lamps: 2 views a day earlier. */
    assert_str(c, "favorite_category", "Chairs");
    assert_str(c, "favorite_brand", "Lux"); /* Acme: 1 view at T0; Lux: 2 * 2^(-1/30) */
    cJSON_Delete(c);
    profile_free(from);
    profile_free(into);
}

static void test_merge_into_empty_and_decay_reference(void **state) {
    (void)state;
    bsp_profile *into = profile_new(1), *from = profile_new(2);
    /* into: one Chairs view now; from: three Lamps views 60 days (two
     * half-lives) earlier, worth 0.75 now, so Chairs stays the favorite. */
    view(into, T0, "a", "Chairs", "A");
    for (int i = 0; i < 3; i++)
        view(from, T0 - 60 * DAY, "b", "Lamps", "B");
    profile_merge(into, from);
    cJSON *c = computed(into);
    assert_str(c, "favorite_category", "Chairs");
    cJSON_Delete(c);

    /* Five more fresh Lamps views in from: 0.75 + 5 beats 1. */
    bsp_profile *later = profile_new(3);
    for (int i = 0; i < 5; i++)
        view(later, T0 + DAY, "b", "Lamps", "B");
    profile_merge(into, later);
    c = computed(into);
    assert_str(c, "favorite_category", "Lamps");
    cJSON_Delete(c);

    bsp_profile *empty = profile_new(4);
    profile_merge(empty, into);
    c = computed(empty);
    cJSON *d = computed(into);
    assert_true(cJSON_Compare(c, d, true));
    cJSON_Delete(c);
    cJSON_Delete(d);
    profile_free(empty);
    profile_free(later);
    profile_free(from);
    profile_free(into);
}

/* The allocation-free view shows exactly what profile_computed_json does,
 * reusing its nodes across profiles of different sizes. */
static void test_view_equals_computed_json(void **state) {
    (void)state;
    profile_view *v = profile_view_new();
    assert_non_null(v);
    bsp_profile *rich = rich_profile(), *empty = profile_new(3), *big = profile_new(4);
    for (int i = 0; i < 600; i++) {
        char props[128];
        snprintf(props, sizeof props,
                 "{\"products\":[{\"product_id\":\"p%d\",\"price\":1}],\"revenue\":1}", i);
        track(big, T0 + i, "Order Completed", props);
    }
    track(big, T0 + 700, "Product Engaged", "{\"product_id\":\"e\",\"seconds\":7}");
    bsp_profile *all[] = {rich, big, empty, rich};
    for (size_t i = 0; i < 4; i++) {
        cJSON *want = profile_computed_json(all[i]);
        const cJSON *got = profile_view_computed(v, all[i]);
        assert_non_null(got);
        if (!cJSON_Compare(want, got, true)) {
            char *a = cJSON_PrintUnformatted(want), *b = cJSON_PrintUnformatted(got);
            fail_msg("view differs:\n%s\n%s", a, b);
        }
        cJSON_Delete(want);
    }
    profile_free(rich);
    profile_free(empty);
    profile_free(big);
    profile_view_free(v);
}

/* A rich profile's JSON in a, and in b after one more order. */
static bsp_profile *two_versions(bsp_buf *a, bsp_buf *b) {
    bsp_profile *p = rich_profile();
    assert_int_equal(profile_to_json(p, a), BSP_OK);
    track(p, T0 + DAY, "Order Completed", "{\"revenue\":1}");
    assert_int_equal(profile_to_json(p, b), BSP_OK);
    return p;
}

/* The memo parses once per distinct bytes of a pid; another pid in the same
 * slot, or changed bytes, parse again; broken bytes are refused. */
static void test_memo_reuses_parsed_profiles(void **state) {
    (void)state;
    profile_memo *m = profile_memo_new(1); /* rounded up to 16 slots */
    assert_non_null(m);
    profile_hold hold = {0};
    bsp_buf a = {0}, b = {0};
    bsp_profile *p = two_versions(&a, &b);
    const bsp_profile *x, *y, *z;
    assert_int_equal(profile_memo_parse(m, &hold, 5, a.data, a.len, 0, &x), BSP_OK);
    assert_int_equal(profile_memo_parse(m, &hold, 5, a.data, a.len, 0, &y), BSP_OK);
    assert_ptr_equal(x, y);
    assert_int_equal(profile_memo_parse(m, &hold, 5, b.data, b.len, 0, &z), BSP_OK);
    cJSON *c = profile_computed_json(z);
    assert_int_equal(num(c, "orders"), 2);
    cJSON_Delete(c);
    for (uint64_t pid = 6; pid < 200; pid++) /* every slot replaced at least once */
        assert_int_equal(profile_memo_parse(m, &hold, pid, a.data, a.len, 0, &x), BSP_OK);
    assert_int_equal(profile_memo_parse(m, &hold, 7, "{not json", 9, 0, &x), BSP_EPARSE);
    assert_null(x);
    assert_null(hold.ref); /* a failed parse holds nothing */
    uint64_t hits, misses, held, stamped;
    profile_memo_stats(m, &hits, &misses, &held, &stamped);
    assert_int_equal(hits, 1);
    assert_int_equal(held, 16);
    bsp_buf_free(&a);
    bsp_buf_free(&b);
    profile_free(p);
    profile_memo_free(m);
}

/* A stamp given with a parse lets a peek with the same stamp answer without
 * bytes; another stamp, none, new bytes or erasure do not. The same bytes
 * parsed again without a stamp keep the one given before. */
static void test_memo_peek_answers_on_its_stamp(void **state) {
    (void)state;
    profile_memo *m = profile_memo_new(16);
    profile_hold hold = {0};
    bsp_buf a = {0}, b = {0};
    bsp_profile *p = two_versions(&a, &b);
    const bsp_profile *x, *y;
    assert_int_equal(profile_memo_peek(m, &hold, 5, 7, &x), BSP_ENOTFOUND); /* empty */
    assert_int_equal(profile_memo_parse(m, &hold, 5, a.data, a.len, 7, &x), BSP_OK);
    assert_int_equal(profile_memo_peek(m, &hold, 5, 7, &y), BSP_OK);
    assert_ptr_equal(x, y);
    assert_non_null(hold.ref); /* borrowed through the hold */
    assert_int_equal(profile_memo_peek(m, &hold, 5, 8, &y), BSP_ENOTFOUND);
    assert_null(y);
    assert_null(hold.ref);
    assert_int_equal(profile_memo_peek(m, &hold, 5, 0, &y), BSP_ENOTFOUND);
    assert_int_equal(profile_memo_peek(m, &hold, 6, 7, &y), BSP_ENOTFOUND); /* other pid */
    assert_int_equal(profile_memo_parse(m, &hold, 5, a.data, a.len, 0, &y), BSP_OK);
    assert_int_equal(profile_memo_peek(m, &hold, 5, 7, &y), BSP_OK); /* kept */
    assert_int_equal(profile_memo_parse(m, &hold, 5, a.data, a.len, 9, &y), BSP_OK);
    assert_int_equal(profile_memo_peek(m, &hold, 5, 7, &y), BSP_ENOTFOUND); /* moved on */
    assert_int_equal(profile_memo_peek(m, &hold, 5, 9, &y), BSP_OK);
    assert_int_equal(profile_memo_parse(m, &hold, 5, b.data, b.len, 0, &y), BSP_OK);
    assert_int_equal(profile_memo_peek(m, &hold, 5, 9, &y), BSP_ENOTFOUND); /* new bytes */
    assert_int_equal(profile_memo_parse(m, &hold, 5, b.data, b.len, 11, &y), BSP_OK);
    profile_memo_forget(m, 5);
    assert_int_equal(profile_memo_peek(m, &hold, 5, 11, &y), BSP_ENOTFOUND);
    uint64_t hits, misses, held, stamped;
    profile_memo_stats(m, &hits, &misses, &held, &stamped);
    assert_int_equal(stamped, 3);
    assert_int_equal(hits, 6); /* the stamped ones and three parses of bytes held */
    profile_hold_release(&hold);
    bsp_buf_free(&a);
    bsp_buf_free(&b);
    profile_free(p);
    profile_memo_free(m);
}

/* Notes: found by key, one a key, at most PROFILE_NOTES_MAX, bits unknown
 * until put, freed with the profile (ASan and valgrind would see a leak). */
static void test_profile_notes(void **state) {
    (void)state;
    bsp_profile *p = profile_new(3);
    assert_null(profile_note_find(p, 1));
    profile_note *n = calloc(1, sizeof *n);
    n->key = 1;
    assert_true(profile_note_add(p, n));
    assert_ptr_equal(profile_note_find(p, 1), n);
    profile_note *twin = calloc(1, sizeof *twin);
    twin->key = 1;
    assert_false(profile_note_add(p, twin)); /* one a key: stays the caller's */
    free(twin);
    assert_int_equal(profile_note_get(n, 5), -1);
    profile_note_put(n, 5, true);
    profile_note_put(n, 200, false);
    assert_int_equal(profile_note_get(n, 5), 1);
    assert_int_equal(profile_note_get(n, 200), 0);
    assert_int_equal(profile_note_get(n, 6), -1);
    assert_int_equal(profile_note_get(n, PROFILE_NOTE_BITS), -1); /* out of range */
    profile_note_put(n, PROFILE_NOTE_BITS, true);                 /* ignored */
    for (uint64_t key = 2; key <= PROFILE_NOTES_MAX; key++) {
        profile_note *m = calloc(1, sizeof *m);
        m->key = key;
        assert_true(profile_note_add(p, m));
    }
    profile_note *extra = calloc(1, sizeof *extra);
    extra->key = 99;
    assert_false(profile_note_add(p, extra)); /* full */
    free(extra);
    assert_non_null(profile_note_find(p, PROFILE_NOTES_MAX));
    assert_ptr_equal(profile_note_find(p, 1), n);
    profile_free(p);
}

/* A profile a reader borrows stays valid while other readers replace it in
 * its slot, and even after the memo is freed, until its holder moves on. */
static void test_memo_borrowed_profile_outlives_its_slot(void **state) {
    (void)state;
    profile_memo *m = profile_memo_new(16);
    profile_hold first = {0}, second = {0};
    bsp_buf a = {0}, b = {0};
    bsp_profile *p = two_versions(&a, &b);
    const bsp_profile *old, *fresh, *same;
    assert_int_equal(profile_memo_parse(m, &first, 5, a.data, a.len, 0, &old), BSP_OK);
    assert_int_equal(profile_memo_parse(m, &second, 5, a.data, a.len, 0, &same), BSP_OK);
    assert_ptr_equal(old, same); /* shared, not parsed twice */
    assert_int_equal(profile_memo_parse(m, &second, 5, b.data, b.len, 0, &fresh), BSP_OK);
    assert_ptr_not_equal(old, fresh);
    profile_memo_free(m);
    cJSON *c = profile_computed_json(old); /* the slot and the memo are gone */
    assert_int_equal(num(c, "orders"), 1);
    cJSON_Delete(c);
    c = profile_computed_json(fresh);
    assert_int_equal(num(c, "orders"), 2);
    cJSON_Delete(c);
    profile_hold_release(&first);
    profile_hold_release(&second);
    profile_hold_release(&second); /* twice is harmless */
    bsp_buf_free(&a);
    bsp_buf_free(&b);
    profile_free(p);
}

/* Memberships against a plain model, through joins and leaves of 200
 * segment ids in a seeded order and reloads from storage: every id is
 * found exactly when the model has it. */
static void test_memberships_match_a_model(void **state) {
    (void)state;
    bsp_profile *p = profile_new(3);
    bool model[200] = {false};
    char id[32];
    unsigned seed = 12345;
    for (int step = 0; step < 3000; step++) {
        seed = seed * 1103515245u + 12345u;
        int which = (int)((seed >> 8) % 200);
        bool join = ((seed >> 20) & 3) != 0; /* mostly joins, so the list grows */
        snprintf(id, sizeof id, "seg_%03d", which);
        assert_int_equal(profile_set_segment(p, id, join), model[which] != join);
        model[which] = join;
        if (step % 500 == 499) {
            bsp_buf text = {0};
            bsp_profile *back = NULL;
            assert_int_equal(profile_to_json(p, &text), BSP_OK);
            assert_int_equal(profile_from_json(text.data, text.len, &back), BSP_OK);
            profile_free(p);
            p = back;
            bsp_buf_free(&text);
        }
        for (int i = 0; i < 200; i++) {
            snprintf(id, sizeof id, "seg_%03d", i);
            if (profile_in_segment(p, id) != model[i])
                fail_msg("step %d: %s is %s", step, id, model[i] ? "lost" : "kept");
        }
    }
    profile_free(p);
}

/* Every member of the computed view that is a number is served directly by
 * profile_computed_number with the same value, and nothing else is, on an
 * empty profile, a rich one and one with a cart and two orders. */
static void test_computed_numbers_match_the_view(void **state) {
    (void)state;
    bsp_buf a = {0}, b = {0};
    bsp_profile *profiles[3] = {profile_new(1), rich_profile(), two_versions(&a, &b)};
    track(profiles[2], T0 + DAY, "Product Added",
          "{\"product_id\":\"p9\",\"price\":3.333,\"quantity\":3}");
    profile_view *v = profile_view_new();
    for (int i = 0; i < 3; i++) {
        const cJSON *view = profile_view_computed(v, profiles[i]);
        assert_non_null(view);
        int numbers = 0;
        for (const cJSON *it = view->child; it; it = it->next) {
            double direct = -1;
            bool found = profile_computed_number(
                profiles[i], it->string, bsp_hash64(it->string, strlen(it->string)), &direct);
            assert_int_equal(found, cJSON_IsNumber(it));
            if (!found) continue;
            numbers++;
            if (direct != it->valuedouble)
                fail_msg("computed.%s: %g direct, %g in the view", it->string, direct,
                         it->valuedouble);
        }
        assert_int_equal(numbers, 10);
    }
    double x;
    assert_false(profile_computed_number(profiles[1], "nope", bsp_hash64("nope", 4), &x));
    assert_false(profile_computed_number(profiles[1], "orders", 12345, &x)); /* wrong hash */
    profile_view_free(v);
    for (int i = 0; i < 3; i++)
        profile_free(profiles[i]);
    bsp_buf_free(&a);
    bsp_buf_free(&b);
}

/* Every text of the computed view (a string or null) is served by
 * profile_computed_text with the same value, and every time by
 * profile_computed_time as the milliseconds its text reads back as; a time
 * the view cannot show as ISO 8601 (after 9999) is served as not set, as
 * days_since() reads its text. */
static void test_computed_texts_and_times_match_the_view(void **state) {
    (void)state;
    bsp_buf a = {0}, b = {0};
    bsp_profile *far = profile_new(3);
    track(far, 253402300800000LL, "Product Viewed", "{\"product_id\":\"p1\",\"brand\":\"B\"}");
    bsp_profile *profiles[4] = {profile_new(1), rich_profile(), two_versions(&a, &b), far};
    profile_view *v = profile_view_new();
    for (int i = 0; i < 4; i++) {
        const cJSON *view = profile_view_computed(v, profiles[i]);
        assert_non_null(view);
        int texts = 0, times = 0;
        for (const cJSON *it = view->child; it; it = it->next) {
            uint64_t h = bsp_hash64(it->string, strlen(it->string));
            const char *text = "unset";
            if (profile_computed_text(profiles[i], it->string, h, &text)) {
                texts++;
                if (cJSON_IsNull(it))
                    assert_null(text);
                else
                    assert_string_equal(text, it->valuestring);
            }
            bool set = true;
            int64_t ms = -1, parsed = -2;
            if (profile_computed_time(profiles[i], it->string, h, &set, &ms)) {
                times++;
                bool readable = cJSON_IsString(it) && bsp_time_parse(it->valuestring, &parsed);
                assert_int_equal(set, readable);
                if (set) assert_true(ms == parsed);
            }
        }
        assert_int_equal(texts, 7);
        assert_int_equal(times, 3);
    }
    const char *text;
    bool set;
    int64_t ms;
    assert_false(profile_computed_text(profiles[1], "orders", bsp_hash64("orders", 6), &text));
    assert_false(
        profile_computed_time(profiles[1], "country", bsp_hash64("country", 7), &set, &ms));
    assert_false(profile_computed_text(profiles[1], "country", 12345, &text)); /* wrong hash */
    profile_view_free(v);
    for (int i = 0; i < 4; i++)
        profile_free(profiles[i]);
    bsp_buf_free(&a);
    bsp_buf_free(&b);
}

/* Fills pids[] with n pids that a memo of 16 (4 sets of 4) puts in one set. */
static void pids_of_one_set(uint64_t *pids, int n) {
    int found = 0;
    for (uint64_t pid = 1; found < n; pid++)
        if ((bsp_hash64(&pid, sizeof pid) & 3) == 0) pids[found++] = pid;
}

static bool memo_hit(profile_memo *m, uint64_t pid, const bsp_buf *text) {
    uint64_t before, after, misses, held, stamped;
    profile_memo_stats(m, &before, &misses, &held, &stamped);
    profile_hold hold = {0};
    const bsp_profile *p;
    assert_int_equal(profile_memo_parse(m, &hold, pid, text->data, text->len, 0, &p), BSP_OK);
    assert_non_null(p);
    profile_hold_release(&hold);
    profile_memo_stats(m, &after, &misses, &held, &stamped);
    return after > before;
}

/* Four visitors whose pids share a set all stay (direct-mapped, each would
 * push the last one out). A fifth takes the slot of the one not read since
 * it came (second chance); a new version of a pid takes that pid's own
 * slot and pushes nobody out; an erased pid's profile is dropped. */
static void test_memo_sets_keep_visitors_read_again(void **state) {
    (void)state;
    profile_memo *m = profile_memo_new(16);
    bsp_buf a = {0}, b = {0};
    bsp_profile *p = two_versions(&a, &b);
    uint64_t pid[5];
    pids_of_one_set(pid, 5);
    for (int i = 0; i < 4; i++)
        assert_false(memo_hit(m, pid[i], &a));
    for (int i = 0; i < 3; i++) /* pid[3] is not read again */
        assert_true(memo_hit(m, pid[i], &a));
    assert_false(memo_hit(m, pid[4], &a)); /* takes pid[3]'s slot */
    for (int i = 0; i < 3; i++)
        assert_true(memo_hit(m, pid[i], &a));
    assert_true(memo_hit(m, pid[4], &a));
    assert_false(memo_hit(m, pid[0], &b)); /* a new version, in its own slot */
    assert_true(memo_hit(m, pid[0], &b));
    assert_true(memo_hit(m, pid[1], &a));
    assert_true(memo_hit(m, pid[2], &a));
    assert_true(memo_hit(m, pid[4], &a));
    assert_false(memo_hit(m, pid[3], &a)); /* gone: parsed again */
    profile_memo_forget(m, pid[3]);        /* erasure */
    profile_memo_forget(m, 123456789);     /* not held: nothing to do */
    uint64_t before_hits, before_misses, before_held, stamped;
    profile_memo_stats(m, &before_hits, &before_misses, &before_held, &stamped);
    assert_int_equal(before_held, 3);
    assert_false(memo_hit(m, pid[3], &a)); /* parsed again after the erasure */
    uint64_t hits, misses, held;
    profile_memo_stats(m, &hits, &misses, &held, &stamped);
    assert_int_equal(held, 4); /* one set, full: replacing never counts twice */
    profile_memo_free(m);
    bsp_buf_free(&a);
    bsp_buf_free(&b);
    profile_free(p);
}

typedef struct memo_worker {
    profile_memo *m;
    const bsp_buf *texts; /* [2]: one order, two orders */
    unsigned seed;
    int wrong;
} memo_worker;

static void *memo_work(void *arg) {
    memo_worker *w = arg;
    profile_hold hold = {0};
    for (int i = 0; i < 20000; i++) {
        w->seed = w->seed * 1103515245u + 12345u;
        uint64_t pid = (w->seed >> 8) % 48;
        int v = (int)((w->seed >> 20) & 1);
        const bsp_profile *p;
        if (profile_memo_parse(w->m, &hold, pid, w->texts[v].data, w->texts[v].len, 0, &p) !=
                BSP_OK ||
            profile_orders(p) != (int64_t)(v + 1))
            w->wrong++;
    }
    profile_hold_release(&hold);
    return NULL;
}

/* Four threads on one small memo, each pid's bytes changing all the time:
 * every answer is the profile of the bytes given (and ASan sees no profile
 * freed while borrowed). */
static void test_memo_shared_by_threads(void **state) {
    (void)state;
    profile_memo *m = profile_memo_new(16);
    bsp_profile *p = rich_profile();
    bsp_buf texts[2] = {{0}, {0}};
    assert_int_equal(profile_to_json(p, &texts[0]), BSP_OK);
    track(p, T0 + DAY, "Order Completed", "{\"revenue\":1}");
    assert_int_equal(profile_to_json(p, &texts[1]), BSP_OK);
    pthread_t t[4];
    memo_worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (memo_worker){m, texts, 77u + (unsigned)i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, memo_work, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].wrong, 0);
    }
    uint64_t hits, misses, held, stamped;
    profile_memo_stats(m, &hits, &misses, &held, &stamped);
    assert_int_equal(hits + misses, 80000);
    assert_true(held <= 16);
    profile_memo_free(m);
    bsp_buf_free(&texts[0]);
    bsp_buf_free(&texts[1]);
    profile_free(p);
}

/* --- extras: segments, sections, exposure, engagement, recent events ------ */

static bool count_visit(void *vctx, const cJSON *ev) {
    (void)ev;
    (*(int *)vctx)++;
    return true;
}

static int recent_count(const bsp_profile *p, const char *name, int64_t since) {
    int n = 0;
    profile_each_recent(p, name, since, count_visit, &n);
    return n;
}

static void test_sections_and_segments(void **state) {
    (void)state;
    bsp_profile *p = profile_new(9);
    assert_null(profile_section(p, "rfm"));
    assert_int_equal(profile_set_section(p, "rfm", cJSON_Parse("{\"segment\":\"champions\"}")),
                     BSP_OK);
    assert_int_equal(profile_set_section(p, "nope", cJSON_CreateObject()), BSP_EINVAL);
    assert_int_equal(profile_set_section(p, "predicted", cJSON_CreateArray()), BSP_EINVAL);
    assert_str(profile_section(p, "rfm"), "segment", "champions");
    assert_true(profile_set_segment(p, "vip", true));
    assert_false(profile_set_segment(p, "vip", true));
    assert_true(profile_set_segment(p, "new", true));
    assert_true(profile_in_segment(p, "vip"));
    assert_int_equal(profile_segment_count(p), 2);
    assert_true(profile_set_segment(p, "vip", false));
    assert_false(profile_set_segment(p, "vip", false));
    assert_false(profile_in_segment(p, "vip"));
    assert_string_equal(profile_segment_at(p, 0), "new");
    assert_null(profile_segment_at(p, 1));
    assert_round_trip(p);
    cJSON *pub = profile_public_json(p);
    assert_list(pub, "segments", (const char *const[]){"new", NULL});
    assert_str(cJSON_GetObjectItem(pub, "rfm"), "segment", "champions");
    cJSON_Delete(pub);
    assert_int_equal(profile_set_section(p, "rfm", NULL), BSP_OK);
    assert_null(profile_section(p, "rfm"));
    profile_free(p);
}

static void test_campaign_exposure_by_day(void **state) {
    (void)state;
    bsp_profile *p = profile_new(1);
    const char *props = "{\"promotion_id\":\"c1\",\"creative\":\"home_hero\"}";
    track(p, T0, "Promotion Viewed", props);
    track(p, T0 + HOUR, "Promotion Viewed", props);
    track(p, T0 + HOUR, "Promotion Clicked", props);
    track(p, T0 + DAY, "Promotion Viewed", props);
    track(p, T0 + DAY, "Promotion Viewed", "{\"creative\":\"no id\"}");
    profile_exposure e = profile_campaign_exposure(p, "c1", T0 + DAY + HOUR);
    assert_int_equal(e.views_today, 1);
    assert_int_equal(e.views_total, 3);
    assert_int_equal(e.clicks_total, 1);
    e = profile_campaign_exposure(p, "c1", T0 + 3 * DAY);
    assert_int_equal(e.views_today, 0);
    e = profile_campaign_exposure(p, "other", T0);
    assert_int_equal(e.views_total, 0);
    assert_round_trip(p);
    bsp_profile *q = profile_new(2);
    track(q, T0 + DAY, "Promotion Viewed", props);
    profile_merge(q, p);
    e = profile_campaign_exposure(q, "c1", T0 + DAY);
    assert_int_equal(e.views_today, 2);
    assert_int_equal(e.views_total, 4);
    profile_free(q);
    profile_free(p);
}

static void test_engagement(void **state) {
    (void)state;
    bsp_profile *p = profile_new(1);
    track(p, T0, "Product Engaged", "{\"product_id\":\"a\",\"category\":\"Lamps\",\"seconds\":30}");
    track(p, T0, "Product Engaged", "{\"product_id\":\"b\",\"category\":\"Rugs\",\"seconds\":10}");
    track(p, T0, "Product Engaged", "{\"product_id\":\"b\",\"seconds\":-5}");
    track(p, T0, "Product Engaged", "{\"product_id\":\"c\",\"seconds\":99999}");
    cJSON *c = computed(p);
    assert_int_equal(num(c, "engaged_seconds"), 30 + 10 + 3600);
    assert_str(c, "engaged_category", "Lamps");
    assert_str(c, "engaged_product", "c");
    cJSON_Delete(c);
    assert_round_trip(p);
    profile_free(p);
}

static void test_recent_events_watched_only(void **state) {
    (void)state;
    const char *names[] = {"Products Searched", "Order Completed"};
    assert_int_equal(profile_watch_events(names, 2, 30 * DAY), BSP_OK);
    bsp_profile *p = profile_new(1);
    track(p, T0, "Products Searched", "{\"query\":\"lamp\"}");
    track(p, T0 + 2 * HOUR, "Products Searched", "{\"query\":\"rug\"}");
    track(p, T0 + HOUR, "Product Viewed", "{\"product_id\":\"x\"}");
    track(p, T0 + HOUR, "Order Completed", "{\"revenue\":5}");
    assert_int_equal(recent_count(p, "Products Searched", 0), 2);
    assert_int_equal(recent_count(p, "Products Searched", T0 + HOUR), 1);
    assert_int_equal(recent_count(p, "Product Viewed", 0), 0);
    assert_int_equal(recent_count(p, "Order Completed", 0), 1);
    assert_round_trip(p);
    /* Per-name cap and the age window. */
    for (int i = 0; i < PROFILE_RECENT_PER_NAME + 10; i++)
        track(p, T0 + 3 * HOUR + i, "Products Searched", "{}");
    assert_int_equal(recent_count(p, "Products Searched", 0), PROFILE_RECENT_PER_NAME);
    track(p, T0 + 500 * DAY, "Products Searched", "{\"query\":\"new\"}");
    assert_int_equal(recent_count(p, "Products Searched", 0), 1);
    assert_int_equal(recent_count(p, "Order Completed", 0), 0);
    /* Merging interleaves by time. */
    bsp_profile *q = profile_new(2);
    track(q, T0 + 499 * DAY, "Products Searched", "{\"query\":\"older\"}");
    profile_merge(q, p);
    assert_int_equal(recent_count(q, "Products Searched", T0 + 499 * DAY), 2);
    profile_free(q);
    assert_int_equal(profile_watch_events(NULL, 0, 0), BSP_OK);
    track(p, T0 + 501 * DAY, "Products Searched", "{}");
    assert_int_equal(recent_count(p, "Products Searched", 0), 1);
    profile_free(p);
}

/* A recent event's time must be a plausible number of milliseconds: 1e400
 * (infinity once read) would be written back as null and the profile would
 * no longer read, so both readers refuse it, and any time beyond 2^53. */
static void test_recent_event_time_bounded(void **state) {
    (void)state;
    static const char *const times[] = {"1e400", "-1e400", "9007199254740994"};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "{\"v\":1,\"pid\":\"7\",\"x\":{\"recent\":[{\"event\":\"Order "
                 "Completed\",\"timestamp\":%s,\"properties\":{}}]}}",
                 times[i]);
        bsp_profile *p = NULL;
        assert_int_equal(profile_from_json(text, strlen(text), &p), BSP_ETYPE);
        assert_null(p);
        assert_int_equal(profile_from_json_tree(text, strlen(text), &p), BSP_ETYPE);
    }
    const char *ok = "{\"v\":1,\"pid\":\"7\",\"x\":{\"recent\":[{\"event\":\"Order "
                     "Completed\",\"timestamp\":1700000000000,\"properties\":{}}]}}";
    bsp_profile *p = NULL;
    assert_int_equal(profile_from_json(ok, strlen(ok), &p), BSP_OK);
    profile_free(p);
}

/* --- what applying says it changed ---------------------------------------- */

/* Applies ev to p and checks what profile_apply_event answers against the
 * computed object before and after: every member whose value changed has
 * its bit in the answer, and every member has a bit. Returns the answer. */
static uint32_t apply_checked(bsp_profile *p, const bsp_event *ev) {
    cJSON *before = profile_computed_json(p);
    assert_non_null(before);
    uint32_t bits = profile_apply_event(p, ev);
    cJSON *after = profile_computed_json(p);
    assert_non_null(after);
    const cJSON *m;
    cJSON_ArrayForEach(m, after) {
        uint32_t bit = profile_computed_bit(m->string);
        if (!bit) fail_msg("computed.%s has no bit", m->string);
        const cJSON *old = cJSON_GetObjectItemCaseSensitive(before, m->string);
        if (!old || !cJSON_Compare(old, m, true))
            if (!(bits & bit)) fail_msg("computed.%s changed but its bit is not set", m->string);
    }
    cJSON_Delete(before);
    cJSON_Delete(after);
    return bits;
}

static uint32_t apply_line(bsp_profile *p, const char *line) {
    bsp_event ev;
    assert_int_equal(event_from_text(line, strlen(line), NULL, T0, &ev, NULL), BSP_OK);
    uint32_t bits = apply_checked(p, &ev);
    event_free(&ev);
    return bits;
}

/* Over a simulated clickstream (every kind of event the generator writes,
 * onto a few dozen profiles so each sees many), no change goes unreported. */
static void test_apply_reports_every_computed_change(void **state) {
    (void)state;
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    assert_non_null(out);
    bsp_sim_opts opts = {.events = 6000, .seed = 11, .visitors = 300, .products = 200};
    assert_int_equal(sim_write(&opts, out), BSP_OK);
    assert_int_equal(fclose(out), 0);
    enum { NPROFILES = 37 };
    bsp_profile *profiles[NPROFILES];
    for (int i = 0; i < NPROFILES; i++)
        profiles[i] = profile_new((uint64_t)i + 1);
    size_t lines = 0;
    uint32_t seen = 0;
    for (char *line = text, *end; line && *line; line = end ? end + 1 : NULL) {
        end = strchr(line, '\n');
        if (end) *end = '\0';
        seen |= apply_line(profiles[bsp_hash64(line, 40) % NPROFILES], line);
        lines++;
    }
    assert_int_equal(lines, 6000);
    /* The stream moved the traits the bench segments read. */
    uint32_t want = PROFILE_C_PAGE_VIEWS | PROFILE_C_PRODUCT_VIEWS | PROFILE_C_ADD_TO_CARTS |
                    PROFILE_C_CART | PROFILE_C_ORDERS | PROFILE_C_REVENUE |
                    PROFILE_C_FAVORITE_CATEGORY | PROFILE_C_LAST_SEEN | PROFILE_C_LAST_SEARCH;
    assert_int_equal(seen & want, want);
    for (int i = 0; i < NPROFILES; i++)
        profile_free(profiles[i]);
    free(text);
}

/* The events the generator does not write, late events, and events that
 * change nothing a condition could see. */
static void test_apply_reports_only_what_may_change(void **state) {
    (void)state;
    bsp_profile *p = profile_new(1);
    const char *first = "{\"type\":\"page\",\"anonymousId\":\"a\",\"timestamp\":"
                        "\"2023-11-14T22:13:20Z\"}";
    /* A first event brings every computed trait into being. */
    assert_int_equal(apply_line(p, first), PROFILE_C_ALL);
    assert_int_equal(apply_line(p, first), PROFILE_C_PAGE_VIEWS);
    const char *viewed = "{\"type\":\"track\",\"anonymousId\":\"a\",\"event\":\"Product Viewed\","
                         "\"timestamp\":\"2023-11-14T22:20:00Z\",\"properties\":"
                         "{\"product_id\":\"p1\",\"category\":\"Lamps\",\"brand\":\"Lux\"}}";
    assert_int_equal(apply_line(p, viewed),
                     PROFILE_C_LAST_SEEN | PROFILE_C_PRODUCT_VIEWS | PROFILE_C_RECENTLY_VIEWED |
                         PROFILE_C_FAVORITE_CATEGORY | PROFILE_C_FAVORITE_BRAND);
    /* The same product again: already first, already the favourite. */
    assert_int_equal(apply_line(p, viewed), PROFILE_C_PRODUCT_VIEWS);
    /* Late: older than the newest, so last_seen stays; first_seen moves. */
    assert_int_equal(apply_line(p, "{\"type\":\"track\",\"anonymousId\":\"a\",\"event\":\"x\","
                                   "\"timestamp\":\"2023-11-14T20:00:00Z\"}"),
                     PROFILE_C_FIRST_SEEN);
    const char *late = "{\"type\":\"track\",\"anonymousId\":\"a\",\"event\":\"Products "
                       "Searched\",\"timestamp\":\"2023-11-14T21:00:00Z\","
                       "\"properties\":{\"query\":\"rug\"}}";
    assert_int_equal(apply_line(p, late), PROFILE_C_LAST_SEARCH); /* none yet: taken */
    assert_int_equal(apply_line(p, late), 0);
    const char *kinds[] = {
        "{\"type\":\"track\",\"anonymousId\":\"a\",\"event\":\"Product Added\",\"timestamp\":"
        "\"2023-11-14T22:21:00Z\",\"properties\":{\"product_id\":\"p2\",\"price\":5}}",
        "{\"type\":\"track\",\"anonymousId\":\"a\",\"event\":\"Product Removed\",\"timestamp\":"
        "\"2023-11-14T22:22:00Z\",\"properties\":{\"product_id\":\"p2\"}}",
        "{\"type\":\"track\",\"anonymousId\":\"a\",\"event\":\"Product Removed\",\"timestamp\":"
        "\"2023-11-14T22:22:00Z\",\"properties\":{\"product_id\":\"p2\"}}",
        "{\"type\":\"track\",\"anonymousId\":\"a\",\"event\":\"Order Completed\",\"timestamp\":"
        "\"2023-11-14T22:23:00Z\",\"properties\":{\"revenue\":20,\"products\":[{\"product_id\":"
        "\"p3\",\"category\":\"Rugs\",\"brand\":\"Acme\"}]}}",
        "{\"type\":\"track\",\"anonymousId\":\"a\",\"event\":\"Order Refunded\",\"timestamp\":"
        "\"2023-11-14T22:24:00Z\",\"properties\":{\"revenue\":20}}",
        "{\"type\":\"track\",\"anonymousId\":\"a\",\"event\":\"Product Engaged\",\"timestamp\":"
        "\"2023-11-14T22:25:00Z\",\"properties\":{\"product_id\":\"p1\",\"seconds\":30}}",
        "{\"type\":\"track\",\"anonymousId\":\"a\",\"event\":\"Promotion Viewed\",\"timestamp\":"
        "\"2023-11-14T22:25:00Z\",\"properties\":{\"promotion_id\":\"c1\"}}",
        "{\"type\":\"screen\",\"anonymousId\":\"a\",\"timestamp\":\"2023-11-15T09:00:00Z\","
        "\"context\":{\"location\":{\"country\":\"DE\"},\"device\":{\"type\":\"mobile\"}}}",
        "{\"type\":\"screen\",\"anonymousId\":\"a\",\"timestamp\":\"2023-11-15T09:00:00Z\","
        "\"context\":{\"location\":{\"country\":\"DE\"},\"device\":{\"type\":\"mobile\"}}}",
        "{\"type\":\"identify\",\"userId\":\"u\",\"anonymousId\":\"a\",\"timestamp\":"
        "\"2023-11-15T09:00:00Z\",\"traits\":{\"plan\":\"pro\"}}",
    };
    const uint32_t expect[] = {
        PROFILE_C_LAST_SEEN | PROFILE_C_ADD_TO_CARTS | PROFILE_C_CART,
        PROFILE_C_LAST_SEEN | PROFILE_C_CART,
        0, /* nothing left in the cart to remove */
        PROFILE_C_LAST_SEEN | PROFILE_C_ORDERS | PROFILE_C_REVENUE | PROFILE_C_AOV |
            PROFILE_C_LAST_ORDER_AT | PROFILE_C_PURCHASED | PROFILE_C_FAVORITE_CATEGORY |
            PROFILE_C_FAVORITE_BRAND, /* a purchase outweighs two views */
        PROFILE_C_LAST_SEEN | PROFILE_C_REVENUE | PROFILE_C_AOV,
        PROFILE_C_LAST_SEEN | PROFILE_C_ENGAGED_SECONDS | PROFILE_C_ENGAGED_CATEGORY |
            PROFILE_C_ENGAGED_PRODUCT,
        0,
        PROFILE_C_LAST_SEEN | PROFILE_C_SESSIONS | PROFILE_C_PAGE_VIEWS | PROFILE_C_COUNTRY |
            PROFILE_C_DEVICE,
        PROFILE_C_PAGE_VIEWS,
        0,
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        uint32_t got = apply_line(p, kinds[i]);
        if (got != expect[i]) fail_msg("event %zu: 0x%x, expected 0x%x", i, got, expect[i]);
    }
    assert_int_equal(profile_computed_bit("cart_value"), PROFILE_C_CART);
    assert_int_equal(profile_computed_bit("no_such_trait"), 0);
    assert_int_equal(profile_computed_bit(NULL), 0);
    profile_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recent_event_time_bounded),
        cmocka_unit_test(test_sessions_31_minute_gap),
        cmocka_unit_test(test_sessions_29_minute_gap),
        cmocka_unit_test(test_late_events_start_no_session),
        cmocka_unit_test(test_page_and_screen_views),
        cmocka_unit_test(test_cart_add_remove_clear),
        cmocka_unit_test(test_revenue_from_revenue_total_products),
        cmocka_unit_test(test_refund_and_cancel_subtract),
        cmocka_unit_test(test_aov_without_orders),
        cmocka_unit_test(test_revenue_sums_to_the_cent),
        cmocka_unit_test(test_recently_viewed_order_and_cap),
        cmocka_unit_test(test_purchased_set_and_cap),
        cmocka_unit_test(test_old_burst_loses_to_recent_views),
        cmocka_unit_test(test_favorite_weights),
        cmocka_unit_test(test_decayed_counts_keep_top_32),
        cmocka_unit_test(test_last_search_and_country),
        cmocka_unit_test(test_device),
        cmocka_unit_test(test_identify_traits_nested_quiz),
        cmocka_unit_test(test_consent_latest_wins),
        cmocka_unit_test(test_ids_unique_and_capped),
        cmocka_unit_test(test_storage_round_trip),
        cmocka_unit_test(test_storage_continues_computing),
        cmocka_unit_test(test_public_form_shape),
        cmocka_unit_test(test_from_json_rejects_malformed),
        cmocka_unit_test(test_from_json_survives_corruption),
        cmocka_unit_test(test_scan_reads_the_writers_layout),
        cmocka_unit_test(test_scan_declines_other_layouts),
        cmocka_unit_test(test_scan_depth_limit),
        cmocka_unit_test(test_scan_agrees_on_corruption),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_merge_into_empty_and_decay_reference),
        cmocka_unit_test(test_view_equals_computed_json),
        cmocka_unit_test(test_computed_numbers_match_the_view),
        cmocka_unit_test(test_computed_texts_and_times_match_the_view),
        cmocka_unit_test(test_memberships_match_a_model),
        cmocka_unit_test(test_memo_reuses_parsed_profiles),
        cmocka_unit_test(test_memo_borrowed_profile_outlives_its_slot),
        cmocka_unit_test(test_memo_sets_keep_visitors_read_again),
        cmocka_unit_test(test_memo_peek_answers_on_its_stamp),
        cmocka_unit_test(test_profile_notes),
        cmocka_unit_test(test_memo_shared_by_threads),
        cmocka_unit_test(test_sections_and_segments),
        cmocka_unit_test(test_campaign_exposure_by_day),
        cmocka_unit_test(test_engagement),
        cmocka_unit_test(test_recent_events_watched_only),
        cmocka_unit_test(test_apply_reports_every_computed_change),
        cmocka_unit_test(test_apply_reports_only_what_may_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
