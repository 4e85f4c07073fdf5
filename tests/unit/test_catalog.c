/* test_catalog.c - unit tests of catalog/: validation and normalization of
 * products sent by the shop (each field's type with its error path, the id
 * rules, the size limit), products learnt from E-commerce events, and the
 * merge of learnt facts into stored products. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "json/json.h"

#define NOW 1700000000000LL /* 2023-11-14T22:13:20.000Z */
#define NOW_ISO "2023-11-14T22:13:20.000Z"

/* ---- helpers ------------------------------------------------------------- */

static cJSON *product_ok(const char *text, const char *id_from_path) {
    cJSON *body = cJSON_Parse(text);
    assert_non_null(body);
    cJSON *out = NULL;
    bsp_error err;
    bsp_err rc = catalog_product_from_json(body, id_from_path, NOW, &out, &err);
    if (rc) fail_msg("%s at %s: %s", bsp_err_name(rc), err.at, err.message);
    assert_non_null(out);
    cJSON_Delete(body);
    return out;
}

static void product_fails(const char *text, const char *id_from_path, bsp_err code,
                          const char *at) {
    cJSON *body = cJSON_Parse(text);
    assert_non_null(body);
    cJSON *out = (cJSON *)1;
    bsp_error err;
    bsp_err rc = catalog_product_from_json(body, id_from_path, NOW, &out, &err);
    if (rc != code)
        fail_msg("%s: expected %s, got %s at %s", text, bsp_err_name(code), bsp_err_name(rc),
                 err.at);
    assert_int_equal(err.code, code);
    assert_string_equal(err.at, at);
    assert_true(err.message[0] != '\0');
    assert_null(out);
    cJSON_Delete(body);
}

static const char *str_at(const cJSON *obj, const char *path) {
    const cJSON *v = json_path(obj, path);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- catalog_product_from_json ------------------------------------------- */

static void test_product_normalized(void **state) {
    (void)state;
    cJSON *p = product_ok(
        "{\"id\":\"sku-1\",\"name\":\"Lantern\",\"category\":[\"Home\",\"Lighting\",\"Lanterns\"],"
        "\"brand\":\"Glow\",\"price\":12.5,\"currency\":\"eur\",\"in_stock\":true,"
        "\"url\":\"https://shop/l\",\"image\":\"https://shop/l.jpg\",\"tags\":[\"new\",\"sale\"],"
        "\"attributes\":{\"color\":\"red\"},\"material\":\"tin\",\"color\":\"blue\","
        "\"updated_at\":\"1999-01-01T00:00:00Z\",\"name_fr\":null}",
        NULL);
    assert_string_equal(str_at(p, "id"), "sku-1");
    assert_string_equal(str_at(p, "name"), "Lantern");
    assert_string_equal(str_at(p, "category"), "Home > Lighting > Lanterns");
    assert_string_equal(str_at(p, "brand"), "Glow");
    assert_true(json_get_number(p, "price", -1) == 12.5);
    assert_string_equal(str_at(p, "currency"), "EUR");
    assert_true(json_get_bool(p, "in_stock", false));
    assert_string_equal(str_at(p, "url"), "https://shop/l");
    assert_string_equal(str_at(p, "image"), "https://shop/l.jpg");
    assert_int_equal(cJSON_GetArraySize(json_get_array(p, "tags")), 2);
    /* Unknown fields join attributes; explicit attributes win. */
    assert_string_equal(str_at(p, "attributes.color"), "red");
    assert_string_equal(str_at(p, "attributes.material"), "tin");
    assert_null(cJSON_GetObjectItem(p, "material"));
    assert_null(json_path(p, "attributes.name_fr"));
    assert_string_equal(str_at(p, "updated_at"), NOW_ISO);
    assert_null(cJSON_GetObjectItem(p, "source"));
    cJSON_Delete(p);
}

static void test_product_minimal(void **state) {
    (void)state;
    cJSON *p = product_ok("{\"id\":\"x\",\"category\":\"Home > Garden\",\"price\":0}", NULL);
    assert_string_equal(str_at(p, "category"), "Home > Garden");
    assert_true(json_get_number(p, "price", -1) == 0);
    assert_null(cJSON_GetObjectItem(p, "attributes"));
    assert_int_equal(cJSON_GetArraySize(p), 4); /* id, category, price, updated_at */
    cJSON_Delete(p);
}

static void test_product_id_rules(void **state) {
    (void)state;
    product_fails("{\"name\":\"x\"}", NULL, BSP_ETYPE, "id");
    product_fails("{\"id\":null}", NULL, BSP_ETYPE, "id");
    product_fails("{\"id\":42}", NULL, BSP_ETYPE, "id");
    product_fails("{\"id\":\"\"}", NULL, BSP_ETYPE, "id");
    product_fails("{\"id\":\"a\"}", "b", BSP_ETYPE, "id");
    product_fails("{\"id\":\"a\"}", "", BSP_ETYPE, "id");

    char *id = repeat('i', BSP_PRODUCT_ID_MAX);
    char *body = format_body("{\"id\":\"%s\"}", id);
    cJSON *p = product_ok(body, NULL);
    assert_int_equal(strlen(str_at(p, "id")), BSP_PRODUCT_ID_MAX);
    cJSON_Delete(p);
    free(body);
    free(id);
    id = repeat('i', BSP_PRODUCT_ID_MAX + 1);
    body = format_body("{\"id\":\"%s\"}", id);
    product_fails(body, NULL, BSP_ETYPE, "id");
    free(body);
    product_fails("{\"name\":\"n\"}", id, BSP_ETYPE, "id");
    free(id);
}

static void test_product_id_from_path(void **state) {
    (void)state;
    cJSON *p = product_ok("{\"name\":\"n\"}", "from-url");
    assert_string_equal(str_at(p, "id"), "from-url");
    cJSON_Delete(p);
    p = product_ok("{\"id\":\"same\"}", "same");
    assert_string_equal(str_at(p, "id"), "same");
    cJSON_Delete(p);
}

static void test_product_wrong_types(void **state) {
    (void)state;
    product_fails("{\"id\":\"a\",\"price\":-1}", NULL, BSP_ETYPE, "price");
    product_fails("{\"id\":\"a\",\"price\":\"12.00\"}", NULL, BSP_ETYPE, "price");
    product_fails("{\"id\":\"a\",\"currency\":\"eu\"}", NULL, BSP_ETYPE, "currency");
    product_fails("{\"id\":\"a\",\"currency\":\"E1R\"}", NULL, BSP_ETYPE, "currency");
    product_fails("{\"id\":\"a\",\"currency\":978}", NULL, BSP_ETYPE, "currency");
    product_fails("{\"id\":\"a\",\"category\":[\"Home\",1]}", NULL, BSP_ETYPE, "category[1]");
    product_fails("{\"id\":\"a\",\"category\":7}", NULL, BSP_ETYPE, "category");
    product_fails("{\"id\":\"a\",\"tags\":[\"a\",\"b\",3]}", NULL, BSP_ETYPE, "tags[2]");
    product_fails("{\"id\":\"a\",\"tags\":\"a,b\"}", NULL, BSP_ETYPE, "tags");
    product_fails("{\"id\":\"a\",\"in_stock\":\"yes\"}", NULL, BSP_ETYPE, "in_stock");
    product_fails("{\"id\":\"a\",\"name\":5}", NULL, BSP_ETYPE, "name");
    product_fails("{\"id\":\"a\",\"brand\":{}}", NULL, BSP_ETYPE, "brand");
    product_fails("{\"id\":\"a\",\"url\":[]}", NULL, BSP_ETYPE, "url");
    product_fails("{\"id\":\"a\",\"image\":true}", NULL, BSP_ETYPE, "image");
    product_fails("{\"id\":\"a\",\"attributes\":[]}", NULL, BSP_ETYPE, "attributes");
}

static void test_product_not_object(void **state) {
    (void)state;
    product_fails("[]", NULL, BSP_EINVAL, "");
    product_fails("\"p\"", NULL, BSP_EINVAL, "");
}

static void test_product_too_big(void **state) {
    (void)state;
    char *big = repeat('d', BSP_PRODUCT_MAX_BYTES);
    char *body = format_body("{\"id\":\"a\",\"description\":\"%s\"}", big);
    product_fails(body, NULL, BSP_ETOOBIG, "");
    free(body);
    free(big);
    big = repeat('d', BSP_PRODUCT_MAX_BYTES - 200);
    body = format_body("{\"id\":\"a\",\"description\":\"%s\"}", big);
    cJSON *p = product_ok(body, NULL);
    assert_non_null(str_at(p, "attributes.description"));
    cJSON_Delete(p);
    free(body);
    free(big);
}

/* ---- catalog_learn_from_event --------------------------------------------- */

typedef struct learnt {
    cJSON *items[16];
    int count;
} learnt;

static void collect(void *ctx, cJSON *product) {
    learnt *l = ctx;
    assert_true(l->count < 16);
    l->items[l->count++] = product;
}

static void learnt_free(learnt *l) {
    for (int i = 0; i < l->count; i++)
        cJSON_Delete(l->items[i]);
    l->count = 0;
}

/* Learns from one message (route type), into l. */
static void learn(const char *msg_text, bsp_event_type type, learnt *l) {
    bsp_event_list list;
    bsp_error err;
    bsp_err rc = event_parse_body(msg_text, strlen(msg_text), type, NOW, &list, &err);
    if (rc) fail_msg("%s at %s: %s", bsp_err_name(rc), err.at, err.message);
    memset(l, 0, sizeof *l);
    catalog_learn_from_event(&list.items[0], collect, l);
    event_list_free(&list);
}

static void test_learn_product_viewed(void **state) {
    (void)state;
    learnt l;
    learn("{\"userId\":\"u\",\"event\":\"Product Viewed\",\"timestamp\":\"2024-03-04T05:06:07Z\","
          "\"properties\":{\"product_id\":\"p-1\",\"sku\":\"S1\",\"name\":\"Lamp\","
          "\"category\":[\"Home\",\"Lighting\"],\"brand\":\"Glow\",\"price\":\"19.90\","
          "\"currency\":\"usd\",\"url\":\"https://s/p-1\",\"image_url\":\"https://s/p-1.jpg\","
          "\"quantity\":1}}",
          BSP_EV_TRACK, &l);
    assert_int_equal(l.count, 1);
    const cJSON *p = l.items[0];
    assert_string_equal(str_at(p, "id"), "p-1");
    assert_string_equal(str_at(p, "name"), "Lamp");
    assert_string_equal(str_at(p, "category"), "Home > Lighting");
    assert_string_equal(str_at(p, "brand"), "Glow");
    assert_true(json_get_number(p, "price", -1) == 19.9);
    assert_string_equal(str_at(p, "currency"), "USD");
    assert_string_equal(str_at(p, "url"), "https://s/p-1");
    assert_string_equal(str_at(p, "image"), "https://s/p-1.jpg");
    assert_string_equal(str_at(p, "source"), "events");
    assert_string_equal(str_at(p, "updated_at"), "2024-03-04T05:06:07.000Z");
    assert_null(cJSON_GetObjectItem(p, "quantity"));
    learnt_free(&l);
}

static void test_learn_id_fallbacks(void **state) {
    (void)state;
    learnt l;
    learn("{\"userId\":\"u\",\"event\":\"Product Clicked\",\"properties\":{\"id\":\"i-1\","
          "\"sku\":\"S\"}}",
          BSP_EV_TRACK, &l);
    assert_int_equal(l.count, 1);
    assert_string_equal(str_at(l.items[0], "id"), "i-1");
    learnt_free(&l);

    learn("{\"userId\":\"u\",\"event\":\"Product Added\",\"properties\":{\"sku\":\"S-9\"}}",
          BSP_EV_TRACK, &l);
    assert_int_equal(l.count, 1);
    assert_string_equal(str_at(l.items[0], "id"), "S-9");
    learnt_free(&l);

    learn("{\"userId\":\"u\",\"event\":\"Product Removed\",\"properties\":{\"product_id\":507,"
          "\"price\":-3,\"name\":\"\"}}",
          BSP_EV_TRACK, &l);
    assert_int_equal(l.count, 1);
    assert_string_equal(str_at(l.items[0], "id"), "507");
    assert_null(cJSON_GetObjectItem(l.items[0], "price"));
    assert_null(cJSON_GetObjectItem(l.items[0], "name"));
    learnt_free(&l);

    /* No id at all: nothing learnt. */
    learn("{\"userId\":\"u\",\"event\":\"Product Added to Wishlist\",\"properties\":"
          "{\"name\":\"Lamp\",\"product_id\":\"\"}}",
          BSP_EV_TRACK, &l);
    assert_int_equal(l.count, 0);
}

static void test_learn_order_products(void **state) {
    (void)state;
    learnt l;
    learn("{\"userId\":\"u\",\"event\":\"Order Completed\",\"properties\":{\"order_id\":\"o1\","
          "\"currency\":\"gbp\",\"total\":30,\"products\":[{\"product_id\":\"a\",\"price\":10},"
          "{\"name\":\"no id\"},\"junk\",{\"sku\":\"b\",\"currency\":\"EUR\",\"price\":20}]}}",
          BSP_EV_TRACK, &l);
    assert_int_equal(l.count, 2);
    assert_string_equal(str_at(l.items[0], "id"), "a");
    assert_string_equal(str_at(l.items[0], "currency"), "GBP");
    assert_string_equal(str_at(l.items[1], "id"), "b");
    assert_string_equal(str_at(l.items[1], "currency"), "EUR");
    assert_true(json_get_number(l.items[1], "price", -1) == 20);
    learnt_free(&l);
}

static void test_learn_event_names(void **state) {
    (void)state;
    static const char *const list_events[] = {"Order Completed",  "Order Updated",
                                              "Checkout Started", "Cart Viewed",
                                              "Order Refunded",   "Order Cancelled"};
    static const char *const single_events[] = {"Product Viewed", "Product Clicked",
                                                "Product Added", "Product Removed",
                                                "Product Added to Wishlist"};
    static const char *const other_events[] = {"Products Searched", "Signed Up",
                                               "Product List Viewed", "Coupon Applied"};
    char body[512];
    learnt l;
    for (size_t i = 0; i < 6; i++) {
        snprintf(body, sizeof body,
                 "{\"userId\":\"u\",\"event\":\"%s\",\"properties\":{\"products\":"
                 "[{\"product_id\":\"a\"},{\"product_id\":\"b\"}]}}",
                 list_events[i]);
        learn(body, BSP_EV_TRACK, &l);
        assert_int_equal(l.count, 2);
        learnt_free(&l);
    }
    for (size_t i = 0; i < 5; i++) {
        snprintf(body, sizeof body,
                 "{\"userId\":\"u\",\"event\":\"%s\",\"properties\":{\"product_id\":\"a\"}}",
                 single_events[i]);
        learn(body, BSP_EV_TRACK, &l);
        assert_int_equal(l.count, 1);
        learnt_free(&l);
    }
    for (size_t i = 0; i < 4; i++) {
        snprintf(body, sizeof body,
                 "{\"userId\":\"u\",\"event\":\"%s\",\"properties\":{\"product_id\":\"a\","
                 "\"products\":[{\"product_id\":\"b\"}]}}",
                 other_events[i]);
        learn(body, BSP_EV_TRACK, &l);
        assert_int_equal(l.count, 0);
    }
    /* Not a track event, or no properties: nothing. */
    learn("{\"userId\":\"u\",\"name\":\"Product Viewed\",\"properties\":{\"product_id\":\"a\"}}",
          BSP_EV_PAGE, &l);
    assert_int_equal(l.count, 0);
    learn("{\"userId\":\"u\",\"event\":\"Product Viewed\"}", BSP_EV_TRACK, &l);
    assert_int_equal(l.count, 0);
    catalog_learn_from_event(NULL, collect, &l);
    assert_int_equal(l.count, 0);
}

/* ---- catalog_merge_learnt ------------------------------------------------- */

static void test_merge_explicit_wins(void **state) {
    (void)state;
    cJSON *stored = cJSON_Parse("{\"id\":\"a\",\"name\":\"Shop name\",\"price\":10,"
                                "\"updated_at\":\"2024-01-01T00:00:00.000Z\"}");
    cJSON *learnt = cJSON_Parse("{\"id\":\"a\",\"name\":\"Event name\",\"price\":9,"
                                "\"brand\":\"Glow\",\"source\":\"events\","
                                "\"updated_at\":\"2024-02-02T00:00:00.000Z\"}");
    cJSON *m = catalog_merge_learnt(stored, learnt);
    assert_string_equal(str_at(m, "name"), "Shop name");
    assert_true(json_get_number(m, "price", -1) == 10);
    assert_string_equal(str_at(m, "brand"), "Glow");
    assert_null(cJSON_GetObjectItem(m, "source"));
    assert_string_equal(str_at(m, "updated_at"), "2024-02-02T00:00:00.000Z");
    cJSON_Delete(m);

    /* Nothing new learnt: the stored product is unchanged. */
    cJSON_DeleteItemFromObject(learnt, "brand");
    m = catalog_merge_learnt(stored, learnt);
    assert_true(cJSON_Compare(m, stored, true));
    cJSON_Delete(m);
    cJSON_Delete(stored);
    cJSON_Delete(learnt);
}

/* ---- catalog_event_facts --------------------------------------------------- */

static uint64_t facts_of(const char *msg_text) {
    bsp_event_list list;
    bsp_error err;
    bsp_err rc = event_parse_body(msg_text, strlen(msg_text), BSP_EV_TRACK, NOW, &list, &err);
    if (rc) fail_msg("%s at %s: %s", bsp_err_name(rc), err.at, err.message);
    uint64_t facts = catalog_event_facts(&list.items[0]);
    event_list_free(&list);
    return facts;
}

/* What an event teaches, as text, the time it was seen left out. */
static char *learnt_text(const char *msg_text) {
    learnt l;
    learn(msg_text, BSP_EV_TRACK, &l);
    cJSON *all = cJSON_CreateArray();
    for (int i = 0; i < l.count; i++) {
        cJSON_DeleteItemFromObject(l.items[i], "updated_at");
        cJSON_AddItemToArray(all, l.items[i]);
    }
    l.count = 0;
    char *text = cJSON_PrintUnformatted(all);
    cJSON_Delete(all);
    return text;
}

static void test_facts_ignore_time_and_other_properties(void **state) {
    (void)state;
    uint64_t a = facts_of("{\"userId\":\"u\",\"event\":\"Product Viewed\",\"timestamp\":"
                          "\"2024-03-04T05:06:07Z\",\"properties\":{\"product_id\":\"p1\","
                          "\"name\":\"Lamp\",\"price\":20,\"position\":3}}");
    uint64_t b = facts_of("{\"userId\":\"v\",\"event\":\"product viewed\",\"timestamp\":"
                          "\"2025-01-01T00:00:00Z\",\"properties\":{\"position\":9,"
                          "\"product_id\":\"p1\",\"name\":\"Lamp\",\"price\":20}}");
    assert_true(a != 0);
    assert_true(a == b);
    /* Events that teach nothing. */
    assert_true(facts_of("{\"userId\":\"u\",\"event\":\"Signed Up\",\"properties\":"
                         "{\"product_id\":\"p1\"}}") == 0);
    assert_true(facts_of("{\"userId\":\"u\",\"event\":\"Product Viewed\"}") == 0);
}

/* Whenever two events teach different facts their hashes differ: every
 * member learning reads, changed, removed or of another type, for a single
 * product and for an order's products. */
static void test_facts_differ_when_learnt_differs(void **state) {
    (void)state;
    static const char *const variants[] = {
        "\"product_id\":\"p1\",\"sku\":\"S\",\"name\":\"Lamp\",\"brand\":\"B\",\"url\":\"/l\","
        "\"image_url\":\"/l.png\",\"category\":\"Home/Light\",\"price\":20,\"currency\":\"EUR\"",
        "\"product_id\":\"p2\",\"sku\":\"S\",\"name\":\"Lamp\",\"brand\":\"B\",\"url\":\"/l\","
        "\"image_url\":\"/l.png\",\"category\":\"Home/Light\",\"price\":20,\"currency\":\"EUR\"",
        "\"product_id\":7,\"name\":\"Lamp\",\"price\":20",
        "\"product_id\":\"7\",\"name\":\"Lamp\",\"price\":20",
        "\"id\":\"p1\",\"name\":\"Lamp\",\"price\":20",
        "\"sku\":\"p1\",\"name\":\"Lamp\",\"price\":20",
        "\"product_id\":\"p1\",\"name\":\"Lump\",\"price\":20",
        "\"product_id\":\"p1\",\"price\":20",
        "\"product_id\":\"p1\",\"name\":\"Lamp\",\"price\":\"20\"",
        "\"product_id\":\"p1\",\"name\":\"Lamp\",\"price\":21",
        "\"product_id\":\"p1\",\"name\":\"Lamp\"",
        "\"product_id\":\"p1\",\"name\":\"Lamp\",\"brand\":\"C\"",
        "\"product_id\":\"p1\",\"name\":\"Lamp\",\"url\":\"/m\"",
        "\"product_id\":\"p1\",\"name\":\"Lamp\",\"image_url\":\"/m.png\"",
        "\"product_id\":\"p1\",\"name\":\"Lamp\",\"category\":\"Home\"",
        "\"product_id\":\"p1\",\"name\":\"Lamp\",\"category\":[\"Home\",\"Light\"]",
        "\"product_id\":\"p1\",\"name\":\"Lamp\",\"currency\":\"USD\"",
    };
    enum { N = sizeof variants / sizeof variants[0] };
    char *text[2 * N + 2];
    uint64_t facts[2 * N + 2];
    for (size_t i = 0; i < N; i++) {
        char msg[512];
        snprintf(msg, sizeof msg,
                 "{\"userId\":\"u\",\"event\":\"Product Added\",\"properties\":{%s}}", variants[i]);
        text[i] = learnt_text(msg);
        facts[i] = facts_of(msg);
        snprintf(msg, sizeof msg,
                 "{\"userId\":\"u\",\"event\":\"Order Completed\",\"properties\":{\"currency\":"
                 "\"GBP\",\"products\":[{\"product_id\":\"x\"},{%s}]}}",
                 variants[i]);
        text[N + i] = learnt_text(msg);
        facts[N + i] = facts_of(msg);
    }
    /* The order's currency, and the order of its products. */
    const char *other_currency = "{\"userId\":\"u\",\"event\":\"Order Completed\",\"properties\":"
                                 "{\"currency\":\"CHF\",\"products\":[{\"product_id\":\"x\"},"
                                 "{\"product_id\":\"p1\",\"name\":\"Lamp\"}]}}";
    const char *swapped = "{\"userId\":\"u\",\"event\":\"Order Completed\",\"properties\":"
                          "{\"currency\":\"GBP\",\"products\":[{\"product_id\":\"p1\","
                          "\"name\":\"Lamp\"},{\"product_id\":\"x\"}]}}";
    text[2 * N] = learnt_text(other_currency);
    facts[2 * N] = facts_of(other_currency);
    text[2 * N + 1] = learnt_text(swapped);
    facts[2 * N + 1] = facts_of(swapped);
    size_t differing = 0;
    for (size_t i = 0; i < 2 * N + 2; i++) {
        assert_true(facts[i] != 0);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(text[i], text[j]) == 0) continue;
            differing++;
            if (facts[i] == facts[j]) fail_msg("same facts hash for %s and %s", text[i], text[j]);
        }
    }
    assert_true(differing > 2 * N * N);
    for (size_t i = 0; i < 2 * N + 2; i++)
        free(text[i]);
}

static void test_merge_learnt_over_learnt(void **state) {
    (void)state;
    cJSON *stored =
        cJSON_Parse("{\"id\":\"a\",\"name\":\"Old\",\"price\":10,\"brand\":\"B\","
                    "\"source\":\"events\",\"updated_at\":\"2024-01-01T00:00:00.000Z\"}");
    cJSON *learnt =
        cJSON_Parse("{\"id\":\"a\",\"name\":\"New\",\"price\":12,"
                    "\"source\":\"events\",\"updated_at\":\"2024-02-02T00:00:00.000Z\"}");
    cJSON *m = catalog_merge_learnt(stored, learnt);
    assert_string_equal(str_at(m, "name"), "New");
    assert_true(json_get_number(m, "price", -1) == 12);
    assert_string_equal(str_at(m, "brand"), "B");
    assert_string_equal(str_at(m, "source"), "events");
    assert_string_equal(str_at(m, "updated_at"), "2024-02-02T00:00:00.000Z");
    cJSON_Delete(m);
    cJSON_Delete(stored);
    cJSON_Delete(learnt);
}

static void test_merge_null_arguments(void **state) {
    (void)state;
    cJSON *p = cJSON_Parse("{\"id\":\"a\",\"source\":\"events\"}");
    cJSON *m = catalog_merge_learnt(NULL, p);
    assert_true(cJSON_Compare(m, p, true));
    assert_ptr_not_equal(m, p);
    cJSON_Delete(m);
    m = catalog_merge_learnt(p, NULL);
    assert_true(cJSON_Compare(m, p, true));
    cJSON_Delete(m);
    assert_null(catalog_merge_learnt(NULL, NULL));
    cJSON_Delete(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_product_normalized),
        cmocka_unit_test(test_product_minimal),
        cmocka_unit_test(test_product_id_rules),
        cmocka_unit_test(test_product_id_from_path),
        cmocka_unit_test(test_product_wrong_types),
        cmocka_unit_test(test_product_not_object),
        cmocka_unit_test(test_product_too_big),
        cmocka_unit_test(test_learn_product_viewed),
        cmocka_unit_test(test_learn_id_fallbacks),
        cmocka_unit_test(test_learn_order_products),
        cmocka_unit_test(test_learn_event_names),
        cmocka_unit_test(test_facts_ignore_time_and_other_properties),
        cmocka_unit_test(test_facts_differ_when_learnt_differs),
        cmocka_unit_test(test_merge_explicit_wins),
        cmocka_unit_test(test_merge_learnt_over_learnt),
        cmocka_unit_test(test_merge_null_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
