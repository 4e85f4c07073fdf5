/* test_event.c - unit tests of event/: Segment and RudderStack messages,
 * required fields per type, wrong types with their JSON paths, ids,
 * timestamps, message ids, write keys, batches (context merge, partial
 * rejects) and every size and nesting limit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event/event.h"
#include "json/json.h"
#include "strict_json.h"

#define NOW 1700000000000LL /* 2023-11-14T22:13:20.000Z */
#define NOW_ISO "2023-11-14T22:13:20.000Z"

/* ---- helpers ------------------------------------------------------------- */

static bsp_err parse(const char *body, bsp_event_type route, bsp_event_list *list, bsp_error *err) {
    return event_parse_body(body, strlen(body), route, NOW, list, err);
}

/* Parses one body that must succeed with n events. */
static bsp_event_list parse_ok(const char *body, bsp_event_type route, size_t n) {
    bsp_event_list list;
    bsp_error err;
    bsp_err rc = parse(body, route, &list, &err);
    if (rc) fail_msg("%s at %s: %s", bsp_err_name(rc), err.at, err.message);
    assert_int_equal(list.count, n);
    return list;
}

/* Parses one body that must fail with code at `at`. */
static void parse_fails(const char *body, bsp_event_type route, bsp_err code, const char *at) {
    bsp_event_list list;
    bsp_error err;
    bsp_err rc = parse(body, route, &list, &err);
    if (rc != code)
        fail_msg("expected %s, got %s at %s: %s", bsp_err_name(code), bsp_err_name(rc), err.at,
                 err.message);
    assert_int_equal(err.code, code);
    assert_string_equal(err.at, at);
    assert_true(err.message[0] != '\0');
    assert_int_equal(list.count, 0);
    assert_null(list.items);
    event_list_free(&list);
}

static void track_fails(const char *body, bsp_err code, const char *at) {
    parse_fails(body, BSP_EV_TRACK, code, at);
}

/* Whether a and b hold the same value, member by member in order (unlike
 * cJSON_Compare, which finds members by name and so fails on repeats). */
static bool same_json(const cJSON *a, const cJSON *b) {
    if ((a->type & 0xFF) != (b->type & 0xFF)) return false;
    if ((a->string || b->string) && (!a->string || !b->string || strcmp(a->string, b->string)))
        return false;
    if (cJSON_IsNumber(a)) return a->valuedouble == b->valuedouble;
    if (cJSON_IsString(a)) return strcmp(a->valuestring, b->valuestring) == 0;
    const cJSON *x = a->child, *y = b->child;
    for (; x && y; x = x->next, y = y->next)
        if (!same_json(x, y)) return false;
    return !x && !y;
}

/* Checks the invariants every good event has. */
static void check_event(const bsp_event *ev) {
    assert_non_null(ev->json);
    assert_non_null(ev->text);
    assert_int_equal(ev->text_len, strlen(ev->text));
    /* The text is strict JSON that reads back as the event's tree, whether
     * printed from it or (untouched objects) copied from the body. */
    assert_true(json_is_strict(ev->text, ev->text_len));
    cJSON *again = json_parse(ev->text, ev->text_len, BSP_JSON_MAX_DEPTH, NULL);
    assert_non_null(again);
    assert_true(same_json(again, ev->json));
    cJSON_Delete(again);
    assert_string_equal(json_get_string(ev->json, "type"), event_type_name(ev->type));
    assert_ptr_equal(ev->message_id, json_get_string(ev->json, "messageId"));
    assert_ptr_equal(ev->user_id, json_get_string(ev->json, "userId"));
    assert_ptr_equal(ev->anonymous_id, json_get_string(ev->json, "anonymousId"));
    assert_true(ev->user_id || ev->anonymous_id);
    assert_ptr_equal(ev->context, json_get_object(ev->json, "context"));
    assert_ptr_equal(ev->properties, json_get_object(ev->json, "properties"));
    assert_ptr_equal(ev->traits, json_get_object(ev->json, "traits"));
    assert_null(cJSON_GetObjectItem(ev->json, "writeKey"));
    int64_t ts;
    assert_true(bsp_time_parse(json_get_string(ev->json, "timestamp"), &ts));
    assert_true(ts == ev->ts_ms);
    assert_string_equal(json_get_string(ev->json, "receivedAt"), NOW_ISO);
}

/* ---- types --------------------------------------------------------------- */

static void test_type_names(void **state) {
    (void)state;
    static const char *const longs[] = {"track", "identify", "page", "screen", "group", "alias"};
    static const char *const shorts[] = {"t", "i", "p", "s", "g", "a"};
    for (int t = 0; t < BSP_EV_TYPE_COUNT; t++) {
        bsp_event_type got;
        assert_true(event_type_from_string(longs[t], &got));
        assert_int_equal(got, t);
        assert_true(event_type_from_string(shorts[t], &got));
        assert_int_equal(got, t);
        assert_string_equal(event_type_name((bsp_event_type)t), longs[t]);
    }
    bsp_event_type got;
    assert_false(event_type_from_string("Track", &got));
    assert_false(event_type_from_string("", &got));
    assert_false(event_type_from_string(NULL, &got));
    assert_string_equal(event_type_name(BSP_EV_TYPE_COUNT), "unknown");
}

/* ---- track --------------------------------------------------------------- */

static void test_track_normalized(void **state) {
    (void)state;
    bsp_event_list list = parse_ok(
        "{\"userId\":\"u1\",\"event\":\"Product Viewed\",\"properties\":{\"product_id\":\"p1\"},"
        "\"messageId\":\"m-1\",\"timestamp\":\"2024-01-02T03:04:05.678+02:00\","
        "\"sentAt\":\"2024-01-02T01:04:06.000Z\",\"custom\":{\"a\":1},"
        "\"receivedAt\":\"1999-01-01T00:00:00Z\"}",
        BSP_EV_TRACK, 1);
    const bsp_event *ev = &list.items[0];
    check_event(ev);
    assert_int_equal(ev->type, BSP_EV_TRACK);
    assert_string_equal(ev->user_id, "u1");
    assert_null(ev->anonymous_id);
    assert_null(ev->previous_id);
    assert_string_equal(ev->name, "Product Viewed");
    assert_ptr_equal(ev->name, json_get_string(ev->json, "event"));
    assert_string_equal(ev->message_id, "m-1");
    assert_string_equal(json_get_string(ev->json, "timestamp"), "2024-01-02T01:04:05.678Z");
    assert_true(ev->ts_ms == 1704157445678LL);
    assert_string_equal(json_get_string(ev->json, "sentAt"), "2024-01-02T01:04:06.000Z");
    assert_non_null(json_path(ev->json, "custom.a"));
    assert_string_equal(json_path(ev->json, "properties.product_id")->valuestring, "p1");
    assert_int_equal(list.reject_count, 0);
    assert_string_equal(list.write_key, "");
    event_list_free(&list);
}

static void test_track_needs_event(void **state) {
    (void)state;
    track_fails("{\"userId\":\"u1\"}", BSP_ETYPE, "event");
    track_fails("{\"userId\":\"u1\",\"event\":\"\"}", BSP_ETYPE, "event");
    track_fails("{\"userId\":\"u1\",\"event\":null}", BSP_ETYPE, "event");
    track_fails("{\"userId\":\"u1\",\"event\":42}", BSP_ETYPE, "event");
    track_fails("{\"userId\":\"u1\",\"event\":[\"a\"]}", BSP_ETYPE, "event");
}

static void test_track_event_name_length(void **state) {
    (void)state;
    char *name = repeat('n', BSP_NAME_MAX_BYTES);
    char *body = format_body("{\"userId\":\"u1\",\"event\":\"%s\"}", name);
    bsp_event_list list = parse_ok(body, BSP_EV_TRACK, 1);
    assert_int_equal(strlen(list.items[0].name), BSP_NAME_MAX_BYTES);
    event_list_free(&list);
    free(body);
    free(name);

    name = repeat('n', BSP_NAME_MAX_BYTES + 1);
    body = format_body("{\"userId\":\"u1\",\"event\":\"%s\"}", name);
    track_fails(body, BSP_ETYPE, "event");
    free(body);
    free(name);
}

static void test_route_type_wins(void **state) {
    (void)state;
    bsp_event_list list = parse_ok(
        "{\"type\":\"identify\",\"userId\":\"u1\",\"event\":\"Signed Up\"}", BSP_EV_TRACK, 1);
    assert_int_equal(list.items[0].type, BSP_EV_TRACK);
    check_event(&list.items[0]);
    event_list_free(&list);
}

/* ---- identify, page, screen, group, alias ------------------------------- */

static void test_identify(void **state) {
    (void)state;
    bsp_event_list list =
        parse_ok("{\"userId\":\"u1\",\"traits\":{\"email\":\"a@b.c\",\"plan\":\"pro\"}}",
                 BSP_EV_IDENTIFY, 1);
    const bsp_event *ev = &list.items[0];
    check_event(ev);
    assert_int_equal(ev->type, BSP_EV_IDENTIFY);
    assert_null(ev->name);
    assert_string_equal(json_path(ev->json, "traits.plan")->valuestring, "pro");
    event_list_free(&list);
    parse_fails("{\"userId\":\"u1\",\"traits\":\"vip\"}", BSP_EV_IDENTIFY, BSP_ETYPE, "traits");
    parse_fails("{\"traits\":{}}", BSP_EV_IDENTIFY, BSP_ETYPE, "userId");
}

static void test_page_and_screen(void **state) {
    (void)state;
    bsp_event_list list =
        parse_ok("{\"anonymousId\":\"a1\",\"name\":\"Home\",\"properties\":{\"path\":\"/\"}}",
                 BSP_EV_PAGE, 1);
    check_event(&list.items[0]);
    assert_int_equal(list.items[0].type, BSP_EV_PAGE);
    assert_string_equal(list.items[0].name, "Home");
    assert_ptr_equal(list.items[0].name, json_get_string(list.items[0].json, "name"));
    event_list_free(&list);

    list = parse_ok("{\"anonymousId\":\"a1\"}", BSP_EV_SCREEN, 1);
    check_event(&list.items[0]);
    assert_int_equal(list.items[0].type, BSP_EV_SCREEN);
    assert_null(list.items[0].name);
    event_list_free(&list);

    parse_fails("{\"anonymousId\":\"a1\",\"name\":7}", BSP_EV_PAGE, BSP_ETYPE, "name");
    parse_fails("{\"anonymousId\":\"a1\",\"name\":{}}", BSP_EV_SCREEN, BSP_ETYPE, "name");
    char *name = repeat('x', BSP_NAME_MAX_BYTES + 1);
    char *body = format_body("{\"anonymousId\":\"a1\",\"name\":\"%s\"}", name);
    parse_fails(body, BSP_EV_PAGE, BSP_ETYPE, "name");
    free(body);
    free(name);
}

static void test_group(void **state) {
    (void)state;
    bsp_event_list list = parse_ok(
        "{\"userId\":\"u1\",\"groupId\":\"g1\",\"traits\":{\"name\":\"Acme\"}}", BSP_EV_GROUP, 1);
    check_event(&list.items[0]);
    assert_string_equal(json_get_string(list.items[0].json, "groupId"), "g1");
    event_list_free(&list);

    list = parse_ok("{\"userId\":\"u1\",\"groupId\":314}", BSP_EV_GROUP, 1);
    assert_string_equal(json_get_string(list.items[0].json, "groupId"), "314");
    event_list_free(&list);

    parse_fails("{\"userId\":\"u1\"}", BSP_EV_GROUP, BSP_ETYPE, "groupId");
    parse_fails("{\"userId\":\"u1\",\"groupId\":\"\"}", BSP_EV_GROUP, BSP_ETYPE, "groupId");
    parse_fails("{\"userId\":\"u1\",\"groupId\":true}", BSP_EV_GROUP, BSP_ETYPE, "groupId");
}

static void test_alias(void **state) {
    (void)state;
    bsp_event_list list =
        parse_ok("{\"userId\":\"u1\",\"previousId\":\"anon-9\"}", BSP_EV_ALIAS, 1);
    const bsp_event *ev = &list.items[0];
    check_event(ev);
    assert_string_equal(ev->previous_id, "anon-9");
    assert_ptr_equal(ev->previous_id, json_get_string(ev->json, "previousId"));
    event_list_free(&list);

    list = parse_ok("{\"userId\":\"u1\",\"previousId\":77}", BSP_EV_ALIAS, 1);
    assert_string_equal(list.items[0].previous_id, "77");
    event_list_free(&list);

    parse_fails("{\"userId\":\"u1\"}", BSP_EV_ALIAS, BSP_ETYPE, "previousId");
    parse_fails("{\"userId\":\"u1\",\"previousId\":\"\"}", BSP_EV_ALIAS, BSP_ETYPE, "previousId");
    parse_fails("{\"anonymousId\":\"a1\",\"previousId\":\"p\"}", BSP_EV_ALIAS, BSP_ETYPE, "userId");
    parse_fails("{\"userId\":\"u1\",\"previousId\":[1]}", BSP_EV_ALIAS, BSP_ETYPE, "previousId");
}

/* ---- ids ------------------------------------------------------------------ */

static void test_needs_an_id(void **state) {
    (void)state;
    track_fails("{\"event\":\"E\"}", BSP_ETYPE, "userId");
    track_fails("{\"event\":\"E\",\"userId\":null,\"anonymousId\":null}", BSP_ETYPE, "userId");
    track_fails("{\"event\":\"E\",\"userId\":\"\",\"anonymousId\":\"\"}", BSP_ETYPE, "userId");
}

static void test_empty_user_id_is_anonymous(void **state) {
    (void)state;
    /* RudderStack sends userId "" for anonymous visitors. */
    bsp_event_list list =
        parse_ok("{\"event\":\"E\",\"userId\":\"\",\"anonymousId\":\"a1\"}", BSP_EV_TRACK, 1);
    check_event(&list.items[0]);
    assert_null(list.items[0].user_id);
    assert_string_equal(list.items[0].anonymous_id, "a1");
    assert_null(cJSON_GetObjectItem(list.items[0].json, "userId"));
    event_list_free(&list);
}

static void test_numeric_ids(void **state) {
    (void)state;
    bsp_event_list list =
        parse_ok("{\"event\":\"E\",\"userId\":12345,\"anonymousId\":1.5}", BSP_EV_TRACK, 1);
    check_event(&list.items[0]);
    assert_string_equal(list.items[0].user_id, "12345");
    assert_string_equal(list.items[0].anonymous_id, "1.5");
    assert_true(cJSON_IsString(cJSON_GetObjectItem(list.items[0].json, "userId")));
    event_list_free(&list);

    list = parse_ok("{\"event\":\"E\",\"userId\":-9007199254740991}", BSP_EV_TRACK, 1);
    assert_string_equal(list.items[0].user_id, "-9007199254740991");
    event_list_free(&list);
}

static void test_wrong_id_types(void **state) {
    (void)state;
    track_fails("{\"event\":\"E\",\"userId\":true}", BSP_ETYPE, "userId");
    track_fails("{\"event\":\"E\",\"userId\":{\"id\":1}}", BSP_ETYPE, "userId");
    track_fails("{\"event\":\"E\",\"userId\":\"u\",\"anonymousId\":[]}", BSP_ETYPE, "anonymousId");
}

static void test_id_length(void **state) {
    (void)state;
    char *id = repeat('i', BSP_ID_MAX_BYTES);
    char *body = format_body("{\"event\":\"E\",\"userId\":\"%s\"}", id);
    bsp_event_list list = parse_ok(body, BSP_EV_TRACK, 1);
    assert_int_equal(strlen(list.items[0].user_id), BSP_ID_MAX_BYTES);
    event_list_free(&list);
    free(body);
    free(id);

    id = repeat('i', BSP_ID_MAX_BYTES + 1);
    body = format_body("{\"event\":\"E\",\"anonymousId\":\"%s\"}", id);
    track_fails(body, BSP_ETYPE, "anonymousId");
    free(body);
    body = format_body("{\"event\":\"E\",\"userId\":\"u\",\"messageId\":\"%s\"}", id);
    track_fails(body, BSP_ETYPE, "messageId");
    free(body);
    free(id);
}

/* ---- objects ------------------------------------------------------------- */

static void test_objects_must_be_objects(void **state) {
    (void)state;
    track_fails("{\"event\":\"E\",\"userId\":\"u\",\"properties\":[]}", BSP_ETYPE, "properties");
    track_fails("{\"event\":\"E\",\"userId\":\"u\",\"properties\":\"x\"}", BSP_ETYPE, "properties");
    track_fails("{\"event\":\"E\",\"userId\":\"u\",\"context\":1}", BSP_ETYPE, "context");
    track_fails("{\"event\":\"E\",\"userId\":\"u\",\"traits\":true}", BSP_ETYPE, "traits");
    track_fails("{\"event\":\"E\",\"userId\":\"u\",\"integrations\":[true]}", BSP_ETYPE,
                "integrations");
}

/* The members an event points at are the first of each name, found in one
 * walk; a hand-made event gets the same with event_point_into_json. */
static void test_points_into_json(void **state) {
    (void)state;
    bsp_event_list list = parse_ok("{\"event\":\"E\",\"userId\":\"u\",\"context\":{\"n\":1},"
                                   "\"properties\":{\"n\":2},\"traits\":{\"n\":3},"
                                   "\"context\":{\"n\":4},\"userId\":\"v\"}",
                                   BSP_EV_TRACK, 1);
    const bsp_event *ev = &list.items[0];
    check_event(ev);
    assert_string_equal(ev->user_id, "u");
    assert_int_equal((int)json_get_number(ev->context, "n", 0), 1);
    assert_int_equal((int)json_get_number(ev->properties, "n", 0), 2);
    assert_int_equal((int)json_get_number(ev->traits, "n", 0), 3);
    event_list_free(&list);

    bsp_event made = {.type = BSP_EV_PAGE};
    made.json = cJSON_Parse("{\"anonymousId\":\"a\",\"name\":\"Home\",\"properties\":\"x\","
                            "\"context\":{\"ip\":\"0.0.0.0\"}}");
    assert_non_null(made.json);
    event_point_into_json(&made);
    assert_string_equal(made.anonymous_id, "a");
    assert_null(made.user_id);
    assert_string_equal(made.name, "Home");
    assert_null(made.properties); /* not an object */
    assert_null(made.traits);
    assert_ptr_equal(made.context, json_get_object(made.json, "context"));
    cJSON_Delete(made.json);
    made.json = NULL;
    event_point_into_json(&made);
    assert_null(made.anonymous_id);
    assert_null(made.context);
}

static void test_null_objects_dropped(void **state) {
    (void)state;
    bsp_event_list list = parse_ok(
        "{\"event\":\"E\",\"userId\":\"u\",\"properties\":null,\"context\":null}", BSP_EV_TRACK, 1);
    check_event(&list.items[0]);
    assert_null(cJSON_GetObjectItem(list.items[0].json, "properties"));
    assert_null(cJSON_GetObjectItem(list.items[0].json, "context"));
    event_list_free(&list);
}

static void test_wrong_type_path_in_batch(void **state) {
    (void)state;
    bsp_event_list list;
    bsp_error err;
    assert_int_equal(parse("{\"batch\":["
                           "{\"type\":\"track\",\"event\":\"A\",\"userId\":\"u\"},"
                           "{\"type\":\"page\",\"userId\":\"u\"},"
                           "{\"type\":\"identify\",\"userId\":\"u\"},"
                           "{\"type\":\"track\",\"event\":\"B\",\"userId\":\"u\","
                           "\"properties\":[1,2]}]}",
                           BSP_EV_TYPE_COUNT, &list, &err),
                     BSP_OK);
    assert_int_equal(list.count, 3);
    assert_int_equal(list.reject_count, 1);
    assert_int_equal(list.rejects[0].index, 3);
    assert_int_equal(list.rejects[0].error.code, BSP_ETYPE);
    assert_string_equal(list.rejects[0].error.at, "batch[3].properties");
    event_list_free(&list);
}

/* ---- timestamps ---------------------------------------------------------- */

static void test_timestamp_sources(void **state) {
    (void)state;
    /* RudderStack: originalTimestamp. */
    bsp_event_list list = parse_ok("{\"event\":\"E\",\"userId\":\"u\","
                                   "\"originalTimestamp\":\"2024-05-06T07:08:09.010Z\"}",
                                   BSP_EV_TRACK, 1);
    check_event(&list.items[0]);
    assert_string_equal(json_get_string(list.items[0].json, "timestamp"),
                        "2024-05-06T07:08:09.010Z");
    assert_string_equal(json_get_string(list.items[0].json, "originalTimestamp"),
                        "2024-05-06T07:08:09.010Z");
    event_list_free(&list);

    /* timestamp wins over originalTimestamp. */
    list = parse_ok("{\"event\":\"E\",\"userId\":\"u\",\"timestamp\":\"2024-01-01 00:00:00\","
                    "\"originalTimestamp\":\"2024-05-06T07:08:09.010Z\"}",
                    BSP_EV_TRACK, 1);
    assert_string_equal(json_get_string(list.items[0].json, "timestamp"),
                        "2024-01-01T00:00:00.000Z");
    event_list_free(&list);

    /* Neither: the time of receipt. */
    list = parse_ok("{\"event\":\"E\",\"userId\":\"u\",\"timestamp\":null}", BSP_EV_TRACK, 1);
    check_event(&list.items[0]);
    assert_true(list.items[0].ts_ms == NOW);
    assert_string_equal(json_get_string(list.items[0].json, "timestamp"), NOW_ISO);
    event_list_free(&list);
}

static void test_bad_timestamps(void **state) {
    (void)state;
    track_fails("{\"event\":\"E\",\"userId\":\"u\",\"timestamp\":\"yesterday\"}", BSP_ETYPE,
                "timestamp");
    track_fails("{\"event\":\"E\",\"userId\":\"u\",\"timestamp\":\"2024-13-01T00:00:00Z\"}",
                BSP_ETYPE, "timestamp");
    track_fails("{\"event\":\"E\",\"userId\":\"u\",\"timestamp\":1700000000}", BSP_ETYPE,
                "timestamp");
    track_fails("{\"event\":\"E\",\"userId\":\"u\",\"originalTimestamp\":\"soon\"}", BSP_ETYPE,
                "originalTimestamp");
}

/* ---- messageId ----------------------------------------------------------- */

static bool is_generated_id(const char *id) {
    if (strncmp(id, "bsp-", 4) != 0 || strlen(id) != 36) return false;
    for (const char *p = id + 4; *p; p++)
        if (!strchr("0123456789abcdef", *p)) return false;
    return true;
}

static void test_message_id_generated(void **state) {
    (void)state;
    bsp_event_list list =
        parse_ok("[{\"type\":\"t\",\"event\":\"E\",\"userId\":\"u\"},"
                 "{\"type\":\"t\",\"event\":\"E\",\"userId\":\"u\",\"messageId\":\"\"},"
                 "{\"type\":\"t\",\"event\":\"E\",\"userId\":\"u\",\"messageId\":null}]",
                 BSP_EV_TYPE_COUNT, 3);
    for (size_t i = 0; i < 3; i++) {
        check_event(&list.items[i]);
        assert_true(is_generated_id(list.items[i].message_id));
        assert_true(list.items[i].id_generated);
    }
    assert_string_not_equal(list.items[0].message_id, list.items[1].message_id);
    assert_string_not_equal(list.items[1].message_id, list.items[2].message_id);
    event_list_free(&list);
}

static void test_message_id_sent_is_not_generated(void **state) {
    (void)state;
    bsp_event_list list =
        parse_ok("{\"event\":\"E\",\"userId\":\"u\",\"messageId\":\"m-1\"}", BSP_EV_TRACK, 1);
    assert_false(list.items[0].id_generated);
    assert_string_equal(list.items[0].message_id, "m-1");
    event_list_free(&list);
}

static void test_message_id_must_be_string(void **state) {
    (void)state;
    track_fails("{\"event\":\"E\",\"userId\":\"u\",\"messageId\":12}", BSP_ETYPE, "messageId");
    track_fails("{\"event\":\"E\",\"userId\":\"u\",\"messageId\":{}}", BSP_ETYPE, "messageId");
}

/* ---- RudderStack ----------------------------------------------------------- */

static void test_rudderstack_context_traits(void **state) {
    (void)state;
    bsp_event_list list = parse_ok(
        "{\"type\":\"identify\",\"userId\":\"\",\"anonymousId\":\"r-1\","
        "\"context\":{\"traits\":{\"email\":\"ctx@x.y\",\"city\":\"Oslo\","
        "\"address\":{\"zip\":\"0150\",\"street\":\"A\"}},\"library\":{\"name\":\"rudder\"}},"
        "\"traits\":{\"email\":\"top@x.y\",\"address\":{\"street\":\"B\"}},"
        "\"originalTimestamp\":\"2024-02-03T04:05:06.007Z\",\"channel\":\"web\"}",
        BSP_EV_IDENTIFY, 1);
    const bsp_event *ev = &list.items[0];
    check_event(ev);
    assert_null(ev->user_id);
    assert_string_equal(ev->anonymous_id, "r-1");
    assert_string_equal(json_path(ev->json, "traits.email")->valuestring, "top@x.y");
    assert_string_equal(json_path(ev->json, "traits.city")->valuestring, "Oslo");
    assert_string_equal(json_path(ev->json, "traits.address.street")->valuestring, "B");
    assert_string_equal(json_path(ev->json, "traits.address.zip")->valuestring, "0150");
    /* context is kept as sent. */
    assert_string_equal(json_path(ev->json, "context.traits.email")->valuestring, "ctx@x.y");
    assert_string_equal(json_path(ev->json, "context.library.name")->valuestring, "rudder");
    assert_true(ev->ts_ms == 1706933106007LL);
    event_list_free(&list);
}

static void test_context_traits_only_for_identify(void **state) {
    (void)state;
    bsp_event_list list = parse_ok(
        "{\"userId\":\"u\",\"event\":\"E\",\"context\":{\"traits\":{\"email\":\"a@b.c\"}}}",
        BSP_EV_TRACK, 1);
    assert_null(cJSON_GetObjectItem(list.items[0].json, "traits"));
    event_list_free(&list);

    /* identify without top-level traits gets them from context. */
    list = parse_ok("{\"userId\":\"u\",\"context\":{\"traits\":{\"email\":\"a@b.c\"}}}",
                    BSP_EV_IDENTIFY, 1);
    assert_string_equal(json_path(list.items[0].json, "traits.email")->valuestring, "a@b.c");
    event_list_free(&list);
}

/* ---- write keys ------------------------------------------------------------ */

static void test_write_key_single(void **state) {
    (void)state;
    bsp_event_list list =
        parse_ok("{\"userId\":\"u\",\"event\":\"E\",\"writeKey\":\"wk_live_1\"}", BSP_EV_TRACK, 1);
    assert_string_equal(list.write_key, "wk_live_1");
    check_event(&list.items[0]);
    assert_null(strstr(list.items[0].text, "wk_live_1"));
    event_list_free(&list);
}

static void test_write_key_batch(void **state) {
    (void)state;
    /* From the first message that has one, removed from every event. */
    bsp_event_list list =
        parse_ok("{\"batch\":[{\"type\":\"track\",\"event\":\"E\",\"userId\":\"u\"},"
                 "{\"type\":\"track\",\"event\":\"E\",\"userId\":\"u\",\"writeKey\":\"k2\"},"
                 "{\"type\":\"track\",\"event\":\"E\",\"userId\":\"u\",\"writeKey\":\"k3\"}]}",
                 BSP_EV_TYPE_COUNT, 3);
    assert_string_equal(list.write_key, "k2");
    for (size_t i = 0; i < list.count; i++)
        check_event(&list.items[i]);
    event_list_free(&list);

    /* The body's own writeKey comes first. */
    list = parse_ok("{\"writeKey\":\"top\",\"batch\":[{\"type\":\"track\",\"event\":\"E\","
                    "\"userId\":\"u\",\"writeKey\":\"inner\"}]}",
                    BSP_EV_TYPE_COUNT, 1);
    assert_string_equal(list.write_key, "top");
    assert_null(strstr(list.items[0].text, "inner"));
    event_list_free(&list);
}

static void test_write_key_kept_on_failure(void **state) {
    (void)state;
    /* So the API can answer 401 before 422. */
    bsp_event_list list;
    bsp_error err;
    assert_int_equal(parse("{\"writeKey\":\"k\",\"event\":\"E\"}", BSP_EV_TRACK, &list, &err),
                     BSP_ETYPE);
    assert_string_equal(list.write_key, "k");
    event_list_free(&list);
}

static void test_write_key_wrong(void **state) {
    (void)state;
    track_fails("{\"userId\":\"u\",\"event\":\"E\",\"writeKey\":5}", BSP_ETYPE, "writeKey");
    char *key = repeat('k', 200);
    char *body = format_body("{\"userId\":\"u\",\"event\":\"E\",\"writeKey\":\"%s\"}", key);
    track_fails(body, BSP_ETYPE, "writeKey");
    free(body);
    body = format_body(
        "{\"writeKey\":\"%s\",\"batch\":[{\"type\":\"t\",\"event\":\"E\",\"userId\":\"u\"}]}", key);
    parse_fails(body, BSP_EV_TYPE_COUNT, BSP_ETYPE, "writeKey");
    free(body);
    free(key);
}

/* ---- batches ------------------------------------------------------------- */

static void test_batch_context_merge(void **state) {
    (void)state;
    bsp_event_list list = parse_ok(
        "{\"context\":{\"library\":{\"name\":\"analytics-node\",\"version\":\"1\"},\"ip\":\"1\"},"
        "\"integrations\":{\"All\":true,\"Mixpanel\":false},"
        "\"batch\":[{\"type\":\"track\",\"event\":\"E\",\"userId\":\"u\","
        "\"context\":{\"library\":{\"version\":\"2\"},\"ip\":\"2\"},"
        "\"integrations\":{\"Mixpanel\":true}},"
        "{\"type\":\"page\",\"anonymousId\":\"a\"}]}",
        BSP_EV_TYPE_COUNT, 2);
    const cJSON *first = list.items[0].json, *second = list.items[1].json;
    check_event(&list.items[0]);
    check_event(&list.items[1]);
    assert_string_equal(json_path(first, "context.library.name")->valuestring, "analytics-node");
    assert_string_equal(json_path(first, "context.library.version")->valuestring, "2");
    assert_string_equal(json_path(first, "context.ip")->valuestring, "2");
    assert_true(cJSON_IsTrue(json_path(first, "integrations.Mixpanel")));
    assert_true(cJSON_IsTrue(json_path(first, "integrations.All")));
    assert_string_equal(json_path(second, "context.library.version")->valuestring, "1");
    assert_string_equal(json_path(second, "context.ip")->valuestring, "1");
    assert_true(cJSON_IsFalse(json_path(second, "integrations.Mixpanel")));
    event_list_free(&list);
}

/* ---- the stored text ----------------------------------------------------- */

/* Whether the event's text holds want. */
static void expect_in_text(const bsp_event *ev, const char *want) {
    if (!strstr(ev->text, want)) fail_msg("%s is not in %s", want, ev->text);
}

static void test_untouched_objects_copied_as_sent(void **state) {
    (void)state;
    /* The spaces show the bytes were copied, not printed again. */
    const char *msg = "{\"type\":\"track\",\"event\":\"E\",\"userId\":\"u\","
                      "\"properties\":{\"a\": 1, \"b\": [true, null, \"\\u00e9\"]},"
                      "\"context\":{\"ip\": \"1\"},\"extra\":[ 1 ]}";
    char body[512];
    snprintf(body, sizeof body, "{\"batch\":[%s,%s]}", msg, msg);
    bsp_event_list list = parse_ok(body, BSP_EV_TYPE_COUNT, 2);
    for (size_t i = 0; i < list.count; i++) {
        check_event(&list.items[i]);
        expect_in_text(&list.items[i],
                       "\"properties\":{\"a\": 1, \"b\": [true, null, \"\\u00e9\"]}");
        expect_in_text(&list.items[i], "\"context\":{\"ip\": \"1\"}");
        expect_in_text(&list.items[i], "\"extra\":[ 1 ]");
    }
    event_list_free(&list);
    list = parse_ok(msg, BSP_EV_TRACK, 1);
    check_event(&list.items[0]);
    expect_in_text(&list.items[0], "\"properties\":{\"a\": 1, \"b\": [true, null, \"\\u00e9\"]}");
    event_list_free(&list);
}

/* A message normalization only added to (receivedAt, a generated
 * messageId) is stored as the sender wrote it, spaces and escapes kept,
 * with the added members after; one it removed, replaced or changed a
 * member of is printed member by member. */
static void test_message_copied_when_only_added_to(void **state) {
    (void)state;
    const char *sent = "{\"type\": \"track\", \"event\":\"E\\u0041\",\"userId\":\"u\","
                       "\"messageId\":\"m1\",\"timestamp\":\"2023-11-14T22:13:20.000Z\","
                       "\"n\": 1.50 }";
    char body[512];
    snprintf(body, sizeof body, "{\"batch\":[%s]}", sent);
    bsp_event_list list = parse_ok(body, BSP_EV_TYPE_COUNT, 1);
    const bsp_event *ev = &list.items[0];
    check_event(ev);
    assert_string_equal(ev->name, "EA");
    size_t head = strlen(sent) - 1; /* all but the closing brace */
    assert_true(ev->text_len > head);
    assert_memory_equal(ev->text, sent, head);
    assert_string_equal(ev->text + head, ",\"receivedAt\":\"" NOW_ISO "\"}");
    event_list_free(&list);
    /* Without a messageId: one is generated and added after the rest. */
    list = parse_ok("{\"event\":\"E\", \"userId\":\"u\"}", BSP_EV_TRACK, 1);
    check_event(&list.items[0]);
    assert_true(list.items[0].id_generated);
    assert_memory_equal(list.items[0].text, "{\"event\":\"E\", \"userId\":\"u\",", 27);
    event_list_free(&list);
    /* Each of these edits a member in place or drops one: printed again,
     * so the sender's spacing is gone while the value is the same. */
    static const char *const edited[] = {
        "{\"event\": \"E\", \"userId\": 7}", /* number id made a string */
        "{\"event\": \"E\", \"userId\": \"u\", \"anonymousId\": \"\"}",  /* "" id dropped */
        "{\"event\": \"E\", \"userId\": \"u\", \"writeKey\": \"k\"}",    /* writeKey dropped */
        "{\"event\": \"E\", \"userId\": \"u\", \"traits\": null}",       /* null object dropped */
        "{\"event\": \"E\", \"userId\": \"u\", \"type\": \"identify\"}", /* route's type wins */
        "{\"event\": \"E\", \"userId\": \"u\", \"timestamp\": \"2023-11-14T22:13:20Z\"}",
        "{\"event\": \"E\", \"userId\": \"u\", \"receivedAt\": \"2020-01-01T00:00:00Z\"}",
    };
    for (size_t i = 0; i < sizeof edited / sizeof edited[0]; i++) {
        list = parse_ok(edited[i], BSP_EV_TRACK, 1);
        check_event(&list.items[0]);
        assert_null(strstr(list.items[0].text, "\"event\": "));
        expect_in_text(&list.items[0], "\"event\":\"E\"");
        event_list_free(&list);
    }
}

static void test_changed_or_lenient_objects_printed(void **state) {
    (void)state;
    /* Merged into from the batch's context and integrations: printed. */
    bsp_event_list list =
        parse_ok("{\"context\":{\"ip\": \"0\"},\"integrations\":{\"All\": true},"
                 "\"batch\":[{\"type\":\"track\",\"event\":\"E\",\"userId\":\"u\","
                 "\"context\":{\"page\": {\"path\": \"/\"}},\"integrations\":{\"X\": false},"
                 "\"properties\":{\"p\": 1}}]}",
                 BSP_EV_TYPE_COUNT, 1);
    check_event(&list.items[0]);
    expect_in_text(&list.items[0], "\"context\":{\"page\":{\"path\":\"/\"},\"ip\":\"0\"}");
    expect_in_text(&list.items[0], "\"integrations\":{\"X\":false,\"All\":true}");
    expect_in_text(&list.items[0], "\"properties\":{\"p\": 1}");
    event_list_free(&list);
    /* identify traits merged with context.traits: printed; context copied. */
    list = parse_ok("{\"userId\":\"u\",\"traits\":{\"a\": 1},\"context\":{\"traits\": {\"b\": 2}}}",
                    BSP_EV_IDENTIFY, 1);
    check_event(&list.items[0]);
    expect_in_text(&list.items[0], "\"traits\":{\"a\":1,\"b\":2}");
    expect_in_text(&list.items[0], "\"context\":{\"traits\": {\"b\": 2}}");
    event_list_free(&list);
    /* Text only a lenient parser reads, and control bytes: printed. */
    static const struct {
        const char *props, *printed;
    } lenient[] = {
        {"{\"n\": 007}", "{\"n\":7}"},
        {"{\"n\": 1E2}", "{\"n\":100}"},
        {"{\"s\": \"a\tb\"}", "{\"s\":\"a\\tb\"}"},
        {"{\"n\":\n1}", "{\"n\":1}"},
        {"{\"s\": \"\\u00zz\"}", "{\"s\":\"\"}"},
    };
    for (size_t i = 0; i < sizeof lenient / sizeof lenient[0]; i++) {
        char body[256], want[128];
        snprintf(body, sizeof body, "{\"userId\":\"u\",\"event\":\"E\",\"properties\":%s}",
                 lenient[i].props);
        snprintf(want, sizeof want, "\"properties\":%s", lenient[i].printed);
        list = parse_ok(body, BSP_EV_TRACK, 1);
        check_event(&list.items[0]);
        expect_in_text(&list.items[0], want);
        event_list_free(&list);
    }
}

static void test_batch_types(void **state) {
    (void)state;
    bsp_event_list list =
        parse_ok("{\"batch\":[{\"type\":\"t\",\"event\":\"E\",\"userId\":\"u\"},"
                 "{\"type\":\"identify\",\"userId\":\"u\"},{\"type\":\"p\",\"userId\":\"u\"},"
                 "{\"type\":\"screen\",\"userId\":\"u\"},{\"type\":\"g\",\"userId\":\"u\","
                 "\"groupId\":\"g\"},"
                 "{\"type\":\"alias\",\"userId\":\"u\",\"previousId\":\"a\"}]}",
                 BSP_EV_TYPE_COUNT, 6);
    for (size_t i = 0; i < list.count; i++) {
        check_event(&list.items[i]);
        assert_int_equal(list.items[i].type, (bsp_event_type)i);
    }
    event_list_free(&list);
}

static void test_batch_type_required(void **state) {
    (void)state;
    bsp_event_list list;
    bsp_error err;
    assert_int_equal(parse("{\"batch\":[{\"event\":\"E\",\"userId\":\"u\"},"
                           "{\"type\":\"t\",\"event\":\"E\",\"userId\":\"u\"},"
                           "{\"type\":\"click\",\"userId\":\"u\"},"
                           "{\"type\":7,\"userId\":\"u\"},\"just text\","
                           "{\"type\":\"track\",\"userId\":\"u\"}]}",
                           BSP_EV_TYPE_COUNT, &list, &err),
                     BSP_OK);
    assert_int_equal(list.count, 1);
    assert_int_equal(list.reject_count, 5);
    static const char *const ats[] = {"batch[0].type", "batch[2].type", "batch[3].type", "batch[4]",
                                      "batch[5].event"};
    static const size_t indexes[] = {0, 2, 3, 4, 5};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(list.rejects[i].index, indexes[i]);
        assert_int_equal(list.rejects[i].error.code, BSP_ETYPE);
        assert_string_equal(list.rejects[i].error.at, ats[i]);
    }
    event_list_free(&list);
}

static void test_batch_all_bad_fails(void **state) {
    (void)state;
    bsp_event_list list;
    bsp_error err;
    assert_int_equal(parse("{\"batch\":[{\"type\":\"track\",\"userId\":\"u\"},"
                           "{\"type\":\"alias\",\"userId\":\"u\"}]}",
                           BSP_EV_TYPE_COUNT, &list, &err),
                     BSP_ETYPE);
    assert_string_equal(err.at, "batch[0].event");
    assert_int_equal(list.count, 0);
    assert_null(list.items);
    assert_int_equal(list.reject_count, 2);
    assert_string_equal(list.rejects[1].error.at, "batch[1].previousId");
    event_list_free(&list);
    assert_null(list.rejects);
}

static void test_bare_array_batch(void **state) {
    (void)state;
    bsp_event_list list;
    bsp_error err;
    assert_int_equal(parse("[{\"type\":\"track\",\"event\":\"E\",\"anonymousId\":\"a\"},"
                           "{\"type\":\"nope\",\"anonymousId\":\"a\"}]",
                           BSP_EV_TYPE_COUNT, &list, &err),
                     BSP_OK);
    assert_int_equal(list.count, 1);
    assert_int_equal(list.reject_count, 1);
    assert_string_equal(list.rejects[0].error.at, "[1].type");
    event_list_free(&list);
}

static void test_empty_batch(void **state) {
    (void)state;
    bsp_event_list list = parse_ok("[]", BSP_EV_TYPE_COUNT, 0);
    assert_int_equal(list.reject_count, 0);
    event_list_free(&list);
    list = parse_ok("{\"batch\":[],\"writeKey\":\"k\"}", BSP_EV_TYPE_COUNT, 0);
    assert_string_equal(list.write_key, "k");
    event_list_free(&list);
}

static void test_batch_body_shape(void **state) {
    (void)state;
    parse_fails("\"text\"", BSP_EV_TYPE_COUNT, BSP_EINVAL, "");
    parse_fails("42", BSP_EV_TYPE_COUNT, BSP_EINVAL, "");
    parse_fails("{\"type\":\"track\",\"event\":\"E\",\"userId\":\"u\"}", BSP_EV_TYPE_COUNT,
                BSP_EINVAL, "batch");
    parse_fails("{\"batch\":{}}", BSP_EV_TYPE_COUNT, BSP_ETYPE, "batch");
    parse_fails("{\"batch\":[],\"context\":[]}", BSP_EV_TYPE_COUNT, BSP_ETYPE, "context");
    parse_fails("{\"batch\":[],\"integrations\":\"all\"}", BSP_EV_TYPE_COUNT, BSP_ETYPE,
                "integrations");
}

static void test_single_body_shape(void **state) {
    (void)state;
    parse_fails("[{\"event\":\"E\",\"userId\":\"u\"}]", BSP_EV_TRACK, BSP_EINVAL, "");
    parse_fails("null", BSP_EV_IDENTIFY, BSP_EINVAL, "");
    parse_fails("\"x\"", BSP_EV_PAGE, BSP_EINVAL, "");
}

/* ---- limits and bad JSON ------------------------------------------------- */

static void test_event_too_big(void **state) {
    (void)state;
    char *big = repeat('x', BSP_EVENT_MAX_BYTES);
    char *body =
        format_body("{\"userId\":\"u\",\"event\":\"E\",\"properties\":{\"b\":\"%s\"}}", big);
    track_fails(body, BSP_ETOOBIG, "");
    free(body);
    /* In a batch, only that message is rejected. */
    body = format_body("{\"batch\":[{\"type\":\"t\",\"userId\":\"u\",\"event\":\"E\"},"
                       "{\"type\":\"t\",\"userId\":\"u\",\"event\":\"E\",\"name\":\"%s\"}]}",
                       big);
    bsp_event_list list = parse_ok(body, BSP_EV_TYPE_COUNT, 1);
    assert_int_equal(list.reject_count, 1);
    assert_int_equal(list.rejects[0].error.code, BSP_ETOOBIG);
    assert_string_equal(list.rejects[0].error.at, "batch[1]");
    event_list_free(&list);
    free(body);
    free(big);

    /* Just under the limit passes. */
    big = repeat('x', BSP_EVENT_MAX_BYTES - 400);
    body = format_body("{\"userId\":\"u\",\"event\":\"E\",\"properties\":{\"b\":\"%s\"}}", big);
    list = parse_ok(body, BSP_EV_TRACK, 1);
    assert_true(list.items[0].text_len <= BSP_EVENT_MAX_BYTES);
    event_list_free(&list);
    free(body);
    free(big);
}

static void test_body_too_big(void **state) {
    (void)state;
    size_t len = BSP_REQUEST_MAX_BYTES + 1;
    char *body = repeat(' ', len);
    body[0] = '{';
    body[len - 1] = '}';
    bsp_event_list list;
    bsp_error err;
    assert_int_equal(event_parse_body(body, len, BSP_EV_TYPE_COUNT, NOW, &list, &err), BSP_ETOOBIG);
    assert_int_equal(err.code, BSP_ETOOBIG);
    assert_int_equal(list.count, 0);
    event_list_free(&list);
    free(body);
}

static char *batch_of(size_t n) {
    static const char msg[] = "{\"type\":\"t\",\"event\":\"E\",\"userId\":\"u\"},";
    bsp_buf buf = {0};
    assert_int_equal(bsp_buf_puts(&buf, "{\"batch\":["), BSP_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(bsp_buf_puts(&buf, msg), BSP_OK);
    if (n) buf.data[--buf.len] = '\0';
    assert_int_equal(bsp_buf_puts(&buf, "]}"), BSP_OK);
    return buf.data;
}

static void test_batch_count_limit(void **state) {
    (void)state;
    char *body = batch_of(BSP_BATCH_MAX_EVENTS);
    bsp_event_list list = parse_ok(body, BSP_EV_TYPE_COUNT, BSP_BATCH_MAX_EVENTS);
    event_list_free(&list);
    free(body);
    body = batch_of(BSP_BATCH_MAX_EVENTS + 1);
    parse_fails(body, BSP_EV_TYPE_COUNT, BSP_ETOOBIG, "batch");
    free(body);
}

static void test_full_batch_all_rejected(void **state) {
    (void)state;
    bsp_buf buf = {0};
    assert_int_equal(bsp_buf_puts(&buf, "["), BSP_OK);
    for (int i = 0; i < BSP_BATCH_MAX_EVENTS; i++)
        assert_int_equal(bsp_buf_puts(&buf, i ? ",{\"type\":\"t\"}" : "{\"type\":\"t\"}"), BSP_OK);
    assert_int_equal(bsp_buf_puts(&buf, "]"), BSP_OK);
    bsp_event_list list;
    bsp_error err;
    assert_int_equal(parse(buf.data, BSP_EV_TYPE_COUNT, &list, &err), BSP_ETYPE);
    assert_string_equal(err.at, "[0].userId");
    assert_int_equal(list.reject_count, BSP_BATCH_MAX_EVENTS);
    assert_int_equal(list.rejects[BSP_BATCH_MAX_EVENTS - 1].index, BSP_BATCH_MAX_EVENTS - 1);
    assert_string_equal(list.rejects[BSP_BATCH_MAX_EVENTS - 1].error.at, "[2499].userId");
    event_list_free(&list);
    bsp_buf_free(&buf);
}

static void test_bad_json_position(void **state) {
    (void)state;
    track_fails("{\n  \"userId\": \"u\",\n  \"event\": ,\n}", BSP_EPARSE, "line 3, column 12");
    track_fails("{\"userId\":\"u\",\"event\":\"E\"} x", BSP_EPARSE, "line 1, column 28");
    track_fails("", BSP_EPARSE, "line 1, column 1");
    /* Cut short: cJSON points at the last character. */
    parse_fails("[{\"type\":\"t\"", BSP_EV_TYPE_COUNT, BSP_EPARSE, "line 1, column 12");
}

static void test_deep_nesting_rejected(void **state) {
    (void)state;
    bsp_buf buf = {0};
    assert_int_equal(bsp_buf_puts(&buf, "{\"userId\":\"u\",\"event\":\"E\",\"properties\":"),
                     BSP_OK);
    for (int i = 0; i < BSP_JSON_MAX_DEPTH + 5; i++)
        bsp_buf_puts(&buf, "{\"a\":");
    bsp_buf_puts(&buf, "1");
    for (int i = 0; i < BSP_JSON_MAX_DEPTH + 5; i++)
        bsp_buf_puts(&buf, "}");
    bsp_buf_puts(&buf, "}");
    bsp_event_list list;
    bsp_error err;
    assert_int_equal(parse(buf.data, BSP_EV_TRACK, &list, &err), BSP_ETOOBIG);
    assert_int_equal(list.count, 0);
    event_list_free(&list);
    bsp_buf_free(&buf);
}

/* ---- event_from_json directly --------------------------------------------- */

static void test_event_from_json_direct(void **state) {
    (void)state;
    cJSON *msg = cJSON_Parse("{\"type\":\"track\",\"event\":\"E\",\"userId\":\"u\","
                             "\"context\":{\"page\":{\"path\":\"/\"}}}");
    cJSON *ctx = cJSON_Parse("{\"page\":{\"title\":\"T\"},\"locale\":\"en\"}");
    bsp_event ev;
    bsp_error err;
    assert_int_equal(event_from_json(msg, BSP_EV_TYPE_COUNT, ctx, NULL, NOW, "batch[9]", &ev, &err),
                     BSP_OK);
    check_event(&ev);
    assert_false(ev.json_in_arena); /* the message is malloc'd: event_free frees it */
    assert_ptr_equal(ev.json, msg); /* taken, not copied */
    assert_string_equal(json_path(ev.json, "context.page.title")->valuestring, "T");
    assert_string_equal(json_path(ev.json, "context.page.path")->valuestring, "/");
    event_free(&ev);
    assert_null(ev.json);
    event_free(&ev);

    cJSON *bad = cJSON_Parse("{\"type\":\"track\",\"userId\":\"u\"}");
    assert_int_equal(
        event_from_json(bad, BSP_EV_TYPE_COUNT, NULL, NULL, NOW, "batch[9]", &ev, &err), BSP_ETYPE);
    assert_string_equal(err.at, "batch[9].event");
    assert_null(ev.json);
    assert_null(ev.text);
    /* bad was freed with the error (the sanitizer build finds a leak). */
    cJSON_Delete(ctx);
}

/* A body's events live in an arena the list owns, and stay whole when the
 * events and the arena move together out of the list (as the collect
 * handler hands them to ingest). event_free leaves arena trees alone: under
 * ASan a free of arena memory, and under LeakSanitizer a lost arena, would
 * be reported. */
static void test_body_events_live_in_the_list_arena(void **state) {
    (void)state;
    bsp_event_list list =
        parse_ok("{\"batch\":[{\"type\":\"track\",\"event\":\"A\",\"userId\":\"u\"},"
                 "{\"type\":\"track\",\"userId\":\"u\"},"
                 "{\"type\":\"page\",\"anonymousId\":\"a\",\"name\":\"P\"}]}",
                 BSP_EV_TYPE_COUNT, 2);
    assert_int_equal(list.reject_count, 1);
    assert_non_null(list.arena);
    assert_true(json_arena_bytes(list.arena) > 0);
    /* The events' array, trees and texts are all in the arena: taking the
     * arena takes them, and freeing it after the events frees them. */
    assert_true(list.items_in_arena);
    bsp_event *events = list.items;
    json_arena *arena = list.arena;
    size_t count = list.count;
    list.items = NULL;
    list.count = 0;
    list.arena = NULL;
    event_list_free(&list);
    for (size_t i = 0; i < count; i++) {
        assert_true(events[i].json_in_arena);
        assert_true(events[i].text_in_arena);
        check_event(&events[i]);
    }
    assert_string_equal(events[0].name, "A");
    assert_string_equal(json_get_string(events[1].json, "name"), "P");
    for (size_t i = 0; i < count; i++)
        event_free(&events[i]);
    json_arena_free(arena);
    /* A failed body keeps its arena (and rejects) until the list is freed. */
    bsp_error err;
    assert_int_equal(parse("{\"batch\":[{\"type\":\"track\",\"userId\":\"u\"}]}", BSP_EV_TYPE_COUNT,
                           &list, &err),
                     BSP_ETYPE);
    assert_int_equal(list.count, 0);
    event_list_free(&list);
    assert_null(list.arena);
}

static void test_free_empty(void **state) {
    (void)state;
    bsp_event_list list = {0};
    event_list_free(&list);
    event_list_free(NULL);
    bsp_event ev = {0};
    event_free(&ev);
    event_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_track_normalized),
        cmocka_unit_test(test_track_needs_event),
        cmocka_unit_test(test_track_event_name_length),
        cmocka_unit_test(test_route_type_wins),
        cmocka_unit_test(test_identify),
        cmocka_unit_test(test_page_and_screen),
        cmocka_unit_test(test_group),
        cmocka_unit_test(test_alias),
        cmocka_unit_test(test_needs_an_id),
        cmocka_unit_test(test_empty_user_id_is_anonymous),
        cmocka_unit_test(test_numeric_ids),
        cmocka_unit_test(test_wrong_id_types),
        cmocka_unit_test(test_id_length),
        cmocka_unit_test(test_objects_must_be_objects),
        cmocka_unit_test(test_points_into_json),
        cmocka_unit_test(test_null_objects_dropped),
        cmocka_unit_test(test_wrong_type_path_in_batch),
        cmocka_unit_test(test_timestamp_sources),
        cmocka_unit_test(test_bad_timestamps),
        cmocka_unit_test(test_message_id_generated),
        cmocka_unit_test(test_message_id_sent_is_not_generated),
        cmocka_unit_test(test_message_id_must_be_string),
        cmocka_unit_test(test_rudderstack_context_traits),
        cmocka_unit_test(test_context_traits_only_for_identify),
        cmocka_unit_test(test_write_key_single),
        cmocka_unit_test(test_write_key_batch),
        cmocka_unit_test(test_write_key_kept_on_failure),
        cmocka_unit_test(test_write_key_wrong),
        cmocka_unit_test(test_batch_context_merge),
        cmocka_unit_test(test_untouched_objects_copied_as_sent),
        cmocka_unit_test(test_message_copied_when_only_added_to),
        cmocka_unit_test(test_changed_or_lenient_objects_printed),
        cmocka_unit_test(test_batch_types),
        cmocka_unit_test(test_batch_type_required),
        cmocka_unit_test(test_batch_all_bad_fails),
        cmocka_unit_test(test_bare_array_batch),
        cmocka_unit_test(test_empty_batch),
        cmocka_unit_test(test_batch_body_shape),
        cmocka_unit_test(test_single_body_shape),
        cmocka_unit_test(test_event_too_big),
        cmocka_unit_test(test_body_too_big),
        cmocka_unit_test(test_batch_count_limit),
        cmocka_unit_test(test_full_batch_all_rejected),
        cmocka_unit_test(test_bad_json_position),
        cmocka_unit_test(test_deep_nesting_rejected),
        cmocka_unit_test(test_event_from_json_direct),
        cmocka_unit_test(test_body_events_live_in_the_list_arena),
        cmocka_unit_test(test_free_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
