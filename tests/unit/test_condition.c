/* test_condition.c - the condition language of segment/: every example of
 * CONDITIONS.md, each grammar rule and operator, null and list-path
 * semantics, functions, regular expressions, every compile error with its
 * exact line and column, the limits, and the introspection used for
 * dependency and cycle checks. Conditions run against a hand-built profile
 * and a small list of timed events. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include "segment/segment.h"

#define NOW 1700000000000LL /* 2023-11-14T22:13:20Z */
#define MINUTE 60000LL
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)

static const char profile_json[] =
    "{\"traits\":{\"country\":\"DE\",\"email\":\"Ana@Example.com\",\"quiz\":{\"style\":"
    "\"minimal\"},\"tags\":[\"vip\",\"eu\"],\"age\":34,\"newsletter\":true,\"nothing\":null,"
    "\"escaped\":\"a\\\"b\\\\c\\n\\t\\u00e9\\ud83d\\ude00\",\"addresses\":[{\"city\":\"Berlin\"},"
    "{\"city\":\"Wien\"}],\"in\":\"keyword\"},"
    "\"computed\":{\"orders\":3,\"revenue\":750,\"last_seen\":\"2023-11-04T22:13:20Z\","
    "\"first_seen\":1699827200000,\"cart_value\":120,\"purchased\":[\"85123A\",\"22423\"]},"
    "\"rfm\":{\"segment\":\"at_risk\",\"recency\":2},"
    "\"predicted\":{\"churn\":0.8,\"purchase\":0.1},"
    "\"context\":{\"page\":{\"type\":\"cart\"}}}";

typedef struct test_env {
    cJSON *profile;
    cJSON *events; /* [{"event", "at" (ms), "properties"}] */
} test_env;

static test_env fixture;

static cJSON *event_at(const char *name, int64_t ago_ms, const char *properties) {
    cJSON *event = cJSON_CreateObject();
    cJSON_AddStringToObject(event, "event", name);
    cJSON_AddNumberToObject(event, "at", (double)(NOW - ago_ms));
    cJSON_AddItemToObject(event, "properties", cJSON_Parse(properties));
    return event;
}

static int setup(void **state) {
    (void)state;
    fixture.profile = cJSON_Parse(profile_json);
    assert_non_null(fixture.profile);
    cJSON *events = fixture.events = cJSON_CreateArray();
    cJSON_AddItemToArray(events,
                         event_at("Products Searched", 10 * MINUTE, "{\"query\":\"red sofa\"}"));
    cJSON_AddItemToArray(events,
                         event_at("Product Viewed", 30 * MINUTE, "{\"category\":\"Bags\"}"));
    cJSON_AddItemToArray(events, event_at("Product Viewed", DAY, "{\"category\":\"Shoes\"}"));
    cJSON_AddItemToArray(events, event_at("Product Viewed", 2 * DAY, "{\"category\":\"Shoes\"}"));
    cJSON_AddItemToArray(events, event_at("Product Viewed", 6 * DAY, "{\"category\":\"Shoes\"}"));
    cJSON_AddItemToArray(events, event_at("Product Viewed", 8 * DAY, "{\"category\":\"Shoes\"}"));
    cJSON_AddItemToArray(events, event_at("Order Completed", 2 * DAY,
                                          "{\"revenue\":100,\"products\":[{\"product_id\":\"A1\","
                                          "\"price\":10},{\"product_id\":\"B2\",\"price\":20}]}"));
    cJSON_AddItemToArray(events, event_at("Order Completed", 40 * DAY, "{\"revenue\":50}"));
    cJSON_AddItemToArray(events, event_at("Signed Up", 3 * DAY, "null"));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    cJSON_Delete(fixture.profile);
    cJSON_Delete(fixture.events);
    return 0;
}

static const cJSON *env_root(void *ctx, const char *root) {
    const test_env *env = ctx;
    return cJSON_GetObjectItemCaseSensitive(env->profile, root);
}

static bool env_each_event(void *ctx, const char *name, int64_t since_ms,
                           bool (*visit)(void *vctx, const cJSON *event), void *vctx) {
    const test_env *env = ctx;
    const cJSON *event;
    cJSON_ArrayForEach(event, env->events) {
        const char *event_name = cJSON_GetObjectItemCaseSensitive(event, "event")->valuestring;
        double at = cJSON_GetObjectItemCaseSensitive(event, "at")->valuedouble;
        if (strcmp(event_name, name) != 0 || at < (double)since_ms) continue;
        if (!visit(vctx, event)) break;
    }
    return true;
}

static int env_in_segment(void *ctx, const char *id, uint64_t id_hash) {
    (void)ctx;
    assert_true(id_hash == bsp_hash64(id, strlen(id)));
    return strcmp(id, "vip") == 0 || strcmp(id, "newsletter") == 0;
}

static cond_env make_env(void) {
    cond_env env = {.ctx = &fixture,
                    .now_ms = NOW,
                    .root = env_root,
                    .each_event = env_each_event,
                    .in_segment = env_in_segment};
    return env;
}

/* A computed_number that knows "orders" only (7, where the computed object
 * of the fixture has another value), and counts its calls. */
static int direct_calls;
static bool direct_number(void *ctx, const char *name, uint64_t name_hash, double *out) {
    (void)ctx;
    direct_calls++;
    assert_true(name_hash == bsp_hash64(name, strlen(name)));
    if (strcmp(name, "orders") != 0) return false;
    *out = 7;
    return true;
}

static bsp_cond *compile_ok(const char *text) {
    bsp_cond *c = NULL;
    bsp_error err;
    bsp_err rc = cond_compile(text, strlen(text), &c, &err);
    if (rc != BSP_OK) fail_msg("%s: %s at %s", text, err.message, err.at);
    assert_non_null(c);
    return c;
}

static bool holds(const char *text) {
    bsp_cond *c = compile_ok(text);
    cond_env env = make_env();
    bool result = cond_eval(c, &env);
    cond_free(c);
    return result;
}

#define assert_holds(text)                                                                         \
    do {                                                                                           \
        if (!holds(text)) fail_msg("expected true: %s", text);                                     \
    } while (0)
#define assert_fails(text)                                                                         \
    do {                                                                                           \
        if (holds(text)) fail_msg("expected false: %s", text);                                     \
    } while (0)

/* The compile error of text: code, position and exact message. */
static void assert_error(const char *text, bsp_err code, const char *at, const char *message) {
    bsp_cond *c = (bsp_cond *)1;
    bsp_error err;
    bsp_err rc = cond_compile(text, strlen(text), &c, &err);
    if (rc == BSP_OK) {
        cond_free(c);
        fail_msg("compiled but should not: %s", text);
    }
    assert_null(c);
    assert_int_equal(rc, code);
    assert_int_equal(err.code, code);
    if (strcmp(err.at, at) != 0 || strcmp(err.message, message) != 0)
        fail_msg("%s\n  got:      %s | %s\n  expected: %s | %s", text, err.at, err.message, at,
                 message);
}

/* ---- CONDITIONS.md ---- */

static void test_spec_examples(void **state) {
    (void)state;
    assert_fails("computed.orders = 0                                          # never bought: "
                 "first-order coupon");
    assert_holds("computed.orders = 3");
    assert_holds("did(\"Products Searched\", 30m, properties.query contains \"sofa\")   # "
                 "searched sofa in the last 30 minutes");
    assert_holds("count(\"Product Viewed\", 7d, properties.category = \"Shoes\") >= 3");
    assert_holds("computed.revenue >= 500 and days_since(computed.last_seen) <= 30");
    assert_holds("traits.country in [\"DE\", \"AT\", \"CH\"] and not in_segment(\"churn_risk\")");
    assert_holds("context.page.type = \"cart\" and computed.cart_value > 100");
    assert_holds("predicted.churn > 0.7 or rfm.segment = \"at_risk\"");
    assert_holds("traits.quiz.style = \"minimal\"                                # zero-party "
                 "data from a shopping quiz");
    assert_holds("computed.purchased contains \"85123A\"");
    /* The same examples on the other side of their thresholds. */
    assert_fails("did(\"Products Searched\", 5m, properties.query contains \"sofa\")");
    assert_fails("count(\"Product Viewed\", 7d, properties.category = \"Shoes\") >= 4");
    assert_fails("computed.revenue >= 500 and days_since(computed.last_seen) <= 9");
    assert_fails("traits.country in [\"AT\", \"CH\"] and not in_segment(\"churn_risk\")");
    assert_fails("traits.country in [\"DE\"] and not in_segment(\"vip\")");
    assert_fails("predicted.churn > 0.9 or rfm.segment = \"loyal\"");
}

/* computed.NAME goes to computed_number first: a number it knows wins over
 * the computed object; any other name, a longer path or no callback reads
 * the object. */
static void test_computed_number_callback(void **state) {
    (void)state;
    const char *cases[][2] = {
        {"computed.orders = 7", "1"},      /* the callback's value */
        {"computed.orders = 3", "0"},      /* not the object's */
        {"computed.revenue = 750", "1"},   /* unknown to it: the object */
        {"computed.orders.x = null", "1"}, /* a longer path: the object */
        {"days_since(computed.last_seen) = 10", "1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bsp_cond *c = compile_ok(cases[i][0]);
        cond_env env = make_env();
        env.computed_number = direct_number;
        direct_calls = 0;
        if (cond_eval(c, &env) != (cases[i][1][0] == '1')) fail_msg("%s", cases[i][0]);
        assert_int_equal(direct_calls, i < 3 || i == 4 ? 1 : 0);
        cond_free(c);
    }
    assert_holds("computed.orders = 3"); /* without the callback */
}

/* ---- grammar ---- */

static void test_precedence(void **state) {
    (void)state;
    assert_holds("true or false and false");   /* and binds tighter than or */
    assert_fails("(true or false) and false"); /* parentheses override */
    assert_fails("not false and false");       /* not binds tighter than and */
    assert_holds("not (false and false)");
    assert_holds("not traits.country = \"FR\""); /* not applies to the comparison */
    assert_holds("not not true");
    assert_holds("false or false or true");
    assert_fails("true and true and false");
    assert_holds("false and false or true");
}

static void test_literals_and_comments(void **state) {
    (void)state;
    assert_holds("-1 < 0");
    assert_holds("0.5 = 0.50");
    assert_holds("predicted.purchase = 0.1");
    assert_holds("traits.escaped = \"a\\\"b\\\\c\\n\\t\\u00e9\\ud83d\\ude00\"");
    assert_holds("traits.escaped = \"a\\\"b\\\\c\\n\\t\\u00E9\xf0\x9f\x98\x80\"");
    assert_holds("traits.newsletter = true and traits.newsletter != false");
    assert_holds("traits.nothing = null");
    assert_holds("# a comment line\n\n  traits.country   =\n\"DE\"   # trailing\n");
    assert_holds("traits.in = \"keyword\""); /* keywords are fine after a dot */
    assert_holds("traits.country in [[\"x\"], \"DE\"]");
    assert_fails("traits.country in []");
    assert_holds("length ( traits.tags ) = 2");
    assert_holds("\"DE\" = traits.country");
    assert_holds("traits.quiz"); /* an object is truthy */
    assert_holds("traits.tags"); /* a non-empty list is truthy */
    assert_fails("traits.missing");
    assert_fails("\"\"");
    assert_fails("0");
    assert_holds("42");
    assert_holds("traits.country");
}

static void test_operators(void **state) {
    (void)state;
    assert_holds("traits.age = 34");
    assert_holds("traits.age != 35");
    assert_holds("traits.age < 35 and traits.age <= 34 and traits.age > 33 and traits.age >= 34");
    assert_fails("traits.age < 34 or traits.age > 34");
    assert_holds("\"abc\" < \"abd\" and \"b\" > \"abc\" and \"a\" < \"ab\"");
    assert_fails("traits.country = \"de\""); /* case-sensitive */
    assert_holds("traits.country in [\"AT\", \"DE\"]");
    assert_holds("traits.country not in [\"AT\", \"CH\"]");
    assert_fails("traits.country not in [\"DE\"]");
    assert_holds("traits.email contains \"Example\"");
    assert_fails("traits.email contains \"example\"");
    assert_holds("traits.tags contains \"vip\"");
    assert_fails("traits.tags contains \"vi\"");
    assert_holds("traits.email starts_with \"Ana@\" and traits.email ends_with \".com\"");
    assert_fails("traits.email starts_with \"ana\" or traits.email ends_with \"Example\"");
    assert_holds("traits.email matches \"^[A-Z][a-z]+@\"");
    assert_fails("traits.email matches \"^[a-z]+@\"");
    assert_holds("traits.newsletter = true");
    assert_fails("traits.age = \"34\"");
    /* Values of different types at run time are never equal. */
    assert_fails("traits.age = traits.country");
    assert_holds("traits.age != traits.country");
    assert_fails("traits.age < traits.country");
    assert_fails("traits.tags = \"vip\"");
}

static void test_null_semantics(void **state) {
    (void)state;
    assert_holds("traits.missing = null");
    assert_holds("null = traits.missing");
    assert_fails("traits.missing != null");
    assert_holds("traits.country != null");
    assert_fails("traits.country = null");
    assert_holds("traits.nothing = null and traits.quiz.missing.deeper = null");
    assert_holds("traits.country.deeper = null"); /* through a string: missing */
    assert_fails("traits.missing = \"x\"");
    assert_fails("traits.missing != \"x\"");
    assert_fails("traits.missing < 5 or traits.missing >= 5");
    assert_fails("traits.missing in [\"x\"]");
    assert_fails("traits.missing not in [\"x\"]");
    assert_fails("traits.missing contains \"x\"");
    assert_fails("traits.tags contains traits.missing");
    assert_fails("traits.missing = traits.also_missing");
    assert_fails("traits.missing != traits.country");
    assert_fails("traits.missing starts_with \"a\" or traits.missing matches \"a\"");
    assert_holds("not traits.missing");
    assert_holds("null = null");
    assert_fails("lower(traits.age) = null and false");
    assert_holds("lower(traits.age) = null");
    assert_holds("length(traits.age) = null");
}

static void test_list_paths(void **state) {
    (void)state;
    assert_holds("traits.addresses.city contains \"Wien\"");
    assert_fails("traits.addresses.city contains \"Paris\"");
    assert_holds("\"Berlin\" in traits.addresses.city");
    assert_holds("\"Paris\" not in traits.addresses.city");
    assert_holds("length(traits.addresses.city) = 2");
    assert_holds("length(traits.addresses.missing) = 0");
    assert_fails("traits.addresses.missing");
    assert_holds("traits.addresses.city");
    assert_holds("did(\"Order Completed\", 7d, properties.products.product_id contains \"B2\")");
    assert_fails("did(\"Order Completed\", 7d, properties.products.product_id contains \"Z9\")");
    assert_holds("did(\"Order Completed\", 7d, \"A1\" in properties.products.product_id)");
    assert_holds("count(\"Order Completed\", 7d, length(properties.products.product_id) = 2) = 1");
}

/* ---- durations and functions ---- */

static void test_durations(void **state) {
    (void)state;
    assert_holds("count(\"Product Viewed\", 10s) = 0");
    assert_holds("count(\"Product Viewed\", 30m) = 1");
    assert_holds("count(\"Product Viewed\", 1h) = 1");
    assert_holds("count(\"Product Viewed\", 25h) = 2");
    assert_holds("count(\"Product Viewed\", 7d) = 4");
    assert_holds("count(\"Product Viewed\", 2w) = 5");
    assert_holds("count(\"Product Viewed\", 1.5d) = 2");
    assert_holds("did(\"Signed Up\", 3d) and not did(\"Signed Up\", 2d)");
    assert_fails("did(\"Never Happened\", 52w)");
    /* Absurd windows and times neither overflow nor match by accident. */
    assert_holds("count(\"Product Viewed\", 99999999999999999999999999w) = 5");
    assert_holds("days_since(99999999999999999999999999) = null");
    assert_holds("days_since(-99999) > 19000");
}

static void test_functions(void **state) {
    (void)state;
    assert_holds("lower(traits.email) = \"ana@example.com\"");
    assert_holds("lower(traits.email) contains \"example\"");
    assert_holds("lower(traits.email) starts_with \"ana\" and lower(\"ABC\") < \"abd\"");
    assert_holds("lower(traits.email) matches \"^ana@example[.]com$\"");
    assert_holds("\"ana@example.com\" = lower(traits.email)");
    assert_holds(
        "length(traits.tags) = 2 and length(\"abc\") = 3 and length(\"\\u00e9t\\u00e9\") = 3");
    assert_holds("length([1, 2, 3]) = 3");
    assert_holds("now() = 1700000000000");
    assert_holds("days_since(\"2023-11-13T22:13:20Z\") = 1");
    assert_holds("days_since(computed.last_seen) = 10");
    assert_holds("hours_since(computed.first_seen) = 48");
    assert_holds("hours_since(1699999999999) > 0 and hours_since(1699999999999) < 0.001");
    assert_fails("days_since(traits.missing) >= 0 or days_since(\"not a date\") >= 0");
    assert_holds("days_since(traits.missing) = null");
    assert_holds("in_segment(\"vip\") and not in_segment(\"churn_risk\")");
    assert_holds("sum(\"Order Completed\", \"revenue\", 7d) = 100");
    assert_holds("sum(\"Order Completed\", \"revenue\", 52w) = 150");
    assert_holds(
        "sum(\"Order Completed\", properties.revenue, 52w, properties.revenue > 60) = 100");
    assert_holds("sum(\"Order Completed\", \"products.price\", 7d) = 30");
    assert_holds("sum(\"Product Viewed\", \"revenue\", 7d) = 0");
    assert_holds("count(\"Order Completed\", 52w) = 2 and did(\"Order Completed\", 3d)");
    assert_holds("count(\"Signed Up\", 7d, properties.x = null) = 1");
}

static void test_missing_callbacks(void **state) {
    (void)state;
    bsp_cond *c = compile_ok("traits.country = \"DE\" or did(\"x\", 1d) or in_segment(\"vip\")");
    cond_env env = {.now_ms = NOW};
    assert_false(cond_eval(c, &env));
    cond_free(c);
    c = compile_ok("traits.country = null and count(\"x\", 1d) = 0");
    assert_true(cond_eval(c, &env));
    cond_free(c);
}

/* ---- errors ---- */

static void test_syntax_errors(void **state) {
    (void)state;
    assert_error("computed.orders = ", BSP_ETYPE, "line 1, column 19",
                 "expected a value after '='");
    assert_error("traits.country = \"DE\" and\n  ", BSP_ETYPE, "line 2, column 3",
                 "expected a value after 'and'");
    assert_error("traits.x = and", BSP_ETYPE, "line 1, column 12", "expected a value after '='");
    assert_error("", BSP_ETYPE, "line 1, column 1", "the condition is empty");
    assert_error("# nothing", BSP_ETYPE, "line 1, column 10", "the condition is empty");
    assert_error(")", BSP_ETYPE, "line 1, column 1", "expected a value, not ')'");
    assert_error("traits.x = 1 2", BSP_ETYPE, "line 1, column 14",
                 "unexpected '2': expected 'and', 'or' or the end");
    assert_error("traits.x = 1 = 2", BSP_ETYPE, "line 1, column 14",
                 "unexpected '=': expected 'and', 'or' or the end");
    assert_error("(traits.x = 1", BSP_ETYPE, "line 1, column 14", "expected ')', not the end");
    assert_error("traits.x not 1", BSP_ETYPE, "line 1, column 14",
                 "expected 'in' after 'not', not '1'");
    assert_error("traits.x in [1 2]", BSP_ETYPE, "line 1, column 16",
                 "expected ',' or ']' in the list, not '2'");
    assert_error("traits.x in [1,]", BSP_ETYPE, "line 1, column 16", "expected a value after ','");
    assert_error("traits. = 1", BSP_ETYPE, "line 1, column 9",
                 "expected a name after '.', not '='");
    assert_error("did(\"x\", 1d; true)", BSP_ETYPE, "line 1, column 12",
                 "unexpected character ';'");
    assert_error("count(\"x\", 1d true)", BSP_ETYPE, "line 1, column 15",
                 "expected ',' or ')' after an argument of count(), not 'true'");
    assert_error("traits.x @ 1", BSP_ETYPE, "line 1, column 10", "unexpected character '@'");
    assert_error("traits.x = \"\x01\" or \x7f", BSP_ETYPE, "line 1, column 19",
                 "unexpected character (byte 0x7F)");
    assert_error("# comment\n\ttraits.x = \"unterminated", BSP_ETYPE, "line 2, column 13",
                 "unterminated string: expected '\"'");
    assert_error("traits.x = \"two\nlines\"", BSP_ETYPE, "line 1, column 12",
                 "unterminated string: expected '\"'");
    assert_error("traits.x = \"a\\qb\"", BSP_ETYPE, "line 1, column 14",
                 "invalid escape in string (use \\\" \\\\ \\n \\t or \\uXXXX, not \\u0000)");
    assert_error("traits.x = \"\\u00\"", BSP_ETYPE, "line 1, column 13",
                 "invalid escape in string (use \\\" \\\\ \\n \\t or \\uXXXX, not \\u0000)");
    assert_error("traits.x = \"\\ud83d\"", BSP_ETYPE, "line 1, column 13",
                 "invalid escape in string (use \\\" \\\\ \\n \\t or \\uXXXX, not \\u0000)");
    assert_error("traits.x = \"\\u0000\"", BSP_ETYPE, "line 1, column 13",
                 "invalid escape in string (use \\\" \\\\ \\n \\t or \\uXXXX, not \\u0000)");
    assert_error("traits.x = \"\xc3\xa9\" and ?", BSP_ETYPE, "line 1, column 20",
                 "unexpected character '?'");
    assert_error("traits.country = \"DE\"\n  and (computed.orders > 1\n   or foo(2))", BSP_ETYPE,
                 "line 3, column 7", "unknown function 'foo'");
}

static void test_type_errors(void **state) {
    (void)state;
    assert_error("foo(1)", BSP_ETYPE, "line 1, column 1", "unknown function 'foo'");
    assert_error("did(\"x\")", BSP_ETYPE, "line 1, column 8", "did() takes 2 or 3 arguments");
    assert_error("did(\"x\", 1d, true, 4)", BSP_ETYPE, "line 1, column 20",
                 "did() takes 2 or 3 arguments");
    assert_error("sum(\"x\", \"v\")", BSP_ETYPE, "line 1, column 13",
                 "sum() takes 3 or 4 arguments");
    assert_error("now(1)", BSP_ETYPE, "line 1, column 5", "now() takes no arguments");
    assert_error("lower()", BSP_ETYPE, "line 1, column 7", "lower() takes 1 argument");
    assert_error("\"a\" = 1", BSP_ETYPE, "line 1, column 7",
                 "cannot compare a string with a number");
    assert_error("count(\"x\", 1d) >\n  \"3\"", BSP_ETYPE, "line 2, column 3",
                 "cannot compare a number with a string");
    assert_error("did(\"x\", 1d) = 1", BSP_ETYPE, "line 1, column 16",
                 "cannot compare a boolean with a number");
    assert_error("true < false", BSP_ETYPE, "line 1, column 6",
                 "a boolean can only be compared with = or !=");
    assert_error("traits.x > null", BSP_ETYPE, "line 1, column 10",
                 "a null can only be compared with = or !=");
    assert_error("trait.country = \"DE\"", BSP_ETYPE, "line 1, column 1",
                 "unknown root 'trait' (traits, computed, rfm, predicted, context, properties)");
    assert_error("country", BSP_ETYPE, "line 1, column 1",
                 "unknown root 'country' (traits, computed, rfm, predicted, context, properties)");
    assert_error("properties.x = 1", BSP_ETYPE, "line 1, column 1",
                 "properties.* can only be used inside the filter of did(), count() or sum()");
    assert_error("did(\"x\", 7d) and properties.x = 1", BSP_ETYPE, "line 1, column 18",
                 "properties.* can only be used inside the filter of did(), count() or sum()");
    assert_error("did(properties.x, 7d)", BSP_ETYPE, "line 1, column 5",
                 "properties.* can only be used inside the filter of did(), count() or sum()");
    assert_error("did(\"x\", 7d, did(\"y\", 1d))", BSP_ETYPE, "line 1, column 14",
                 "did() cannot be used inside another event function");
    assert_error("did(x, 7d)", BSP_ETYPE, "line 1, column 5",
                 "unknown root 'x' (traits, computed, rfm, predicted, context, properties)");
    assert_error("did(traits.x, 7d)", BSP_ETYPE, "line 1, column 5",
                 "did() expects the event name as a string, such as \"Order Completed\"");
    assert_error("in_segment(traits.x)", BSP_ETYPE, "line 1, column 12",
                 "in_segment() expects a segment id as a string");
    assert_error("sum(\"x\", traits.revenue, 7d)", BSP_ETYPE, "line 1, column 10",
                 "sum() expects the property as a string, such as \"revenue\"");
    assert_error("sum(\"x\", \"a..b\", 7d)", BSP_ETYPE, "line 1, column 10",
                 "\"a..b\" is not a property name");
    assert_error("days_since(true)", BSP_ETYPE, "line 1, column 12",
                 "days_since() expects a time (a date string or milliseconds)");
    assert_error("lower(1) = \"1\"", BSP_ETYPE, "line 1, column 7", "lower() expects a string");
    assert_error("length(1) = 1", BSP_ETYPE, "line 1, column 8",
                 "length() expects a string or a list");
    assert_error("traits.x in \"DE\"", BSP_ETYPE, "line 1, column 13",
                 "'in' needs a list on its right, such as [\"a\", \"b\"]");
    assert_error("traits.x not in 5", BSP_ETYPE, "line 1, column 17",
                 "'not in' needs a list on its right, such as [\"a\", \"b\"]");
    assert_error("5 contains \"a\"", BSP_ETYPE, "line 1, column 1",
                 "'contains' needs a string or a list on its left");
    assert_error("traits.x starts_with 5", BSP_ETYPE, "line 1, column 22",
                 "'starts_with' needs a string on its right");
    assert_error("[1] ends_with \"a\"", BSP_ETYPE, "line 1, column 1",
                 "'ends_with' needs a string on its left");
}

static void test_duration_and_regex_errors(void **state) {
    (void)state;
    assert_error("computed.orders > 7d", BSP_ETYPE, "line 1, column 19",
                 "a duration such as 7d can only be the window of did(), count() or sum()");
    assert_error("did(\"x\", [7d])", BSP_ETYPE, "line 1, column 11",
                 "a duration such as 7d can only be the window of did(), count() or sum()");
    assert_error("did(\"x\", 7d, 7d)", BSP_ETYPE, "line 1, column 14",
                 "a duration such as 7d can only be the window of did(), count() or sum()");
    assert_error("did(\"x\", 7)", BSP_ETYPE, "line 1, column 10",
                 "did() expects a window such as 7d as its second argument");
    assert_error("sum(\"x\", \"v\", \"7d\")", BSP_ETYPE, "line 1, column 15",
                 "sum() expects a window such as 7d as its third argument");
    assert_error("traits.x = 3x", BSP_ETYPE, "line 1, column 13",
                 "unknown duration unit 'x' (s, m, h, d, w)");
    assert_error("did(\"x\", 30ms)", BSP_ETYPE, "line 1, column 12",
                 "unknown duration unit 'ms' (s, m, h, d, w)");
    assert_error("did(\"x\", -1d)", BSP_ETYPE, "line 1, column 10",
                 "a duration cannot be negative");
    assert_error("traits.x matches traits.y", BSP_ETYPE, "line 1, column 18",
                 "'matches' needs a regular expression as a string, such as \"^sofa\"");
}

/* The wording after the prefix is the C library's own (regerror). */
static void test_regex_message_names_the_problem(void **state) {
    (void)state;
    bsp_cond *c = NULL;
    bsp_error err;
    const char *text = "traits.x = 1 or\n  traits.email matches \"(unclosed\"";
    assert_int_equal(cond_compile(text, strlen(text), &c, &err), BSP_ETYPE);
    assert_null(c);
    assert_string_equal(err.at, "line 2, column 24");
    assert_true(strncmp(err.message, "invalid regular expression: ", 28) == 0);
    assert_true(strlen(err.message) > 28);
}

/* Patterns whose compilation would blow up (glibc's regcomp grows
 * exponentially with stacked quantifiers; a fuzzer found "a++++..." using
 * 2 GB) are refused before compiling; ordinary ones are not. */
static void test_costly_regex_refused(void **state) {
    (void)state;
    assert_error("traits.e matches \"^a++\"", BSP_ETYPE, "line 1, column 18",
                 "regular expression refused: a quantifier follows another quantifier");
    assert_error("traits.e matches \"x{2}*\"", BSP_ETYPE, "line 1, column 18",
                 "regular expression refused: a quantifier follows another quantifier");
    assert_error("traits.e matches \"a{1,1000}\"", BSP_ETYPE, "line 1, column 18",
                 "regular expression refused: a repetition count above 100");
    char *many = malloc(3 * 40 + 1);
    assert_non_null(many);
    many[0] = '\0';
    for (int i = 0; i < 40; i++)
        strcat(many, "a+b");
    char *text = format_body("traits.e matches \"%s\"", many);
    assert_error(text, BSP_ETYPE, "line 1, column 18",
                 "regular expression refused: more than 32 quantifiers");
    free(text);
    free(many);
    assert_holds("traits.email matches \"^[A-Za-z+*]+@[+]?\\\\+?Example\"");
    assert_holds("traits.email matches \"^A(n|m){1,3}a@\"");
}

/* ---- limits ---- */

static char *nested(const char *open, const char *inner, const char *close, size_t levels) {
    size_t cap = levels * (strlen(open) + strlen(close)) + strlen(inner) + 1;
    char *text = malloc(cap);
    assert_non_null(text);
    text[0] = '\0';
    for (size_t i = 0; i < levels; i++)
        strcat(text, open);
    strcat(text, inner);
    for (size_t i = 0; i < levels; i++)
        strcat(text, close);
    return text;
}

static void test_limits(void **state) {
    (void)state;
    char *text = nested("(", "true", ")", COND_MAX_DEPTH);
    assert_holds(text);
    free(text);
    text = nested("(", "true", ")", COND_MAX_DEPTH + 1);
    assert_error(text, BSP_ETOOBIG, "line 1, column 65", "nesting is deeper than 64 levels");
    free(text);
    text = nested("not ", "false", "", COND_MAX_DEPTH + 1);
    assert_error(text, BSP_ETOOBIG, "line 1, column 257", "nesting is deeper than 64 levels");
    free(text);
    text = nested("length(", "\"x\"", ")", COND_MAX_DEPTH + 1);
    assert_error(text, BSP_ETOOBIG, "line 1, column 449", "nesting is deeper than 64 levels");
    free(text);
    text = nested("[", "1", "]", COND_MAX_DEPTH + 1);
    assert_error(text, BSP_ETOOBIG, "line 1, column 65", "nesting is deeper than 64 levels");
    free(text);

    text = repeat(' ', COND_MAX_TEXT);
    memcpy(text, "true", 4);
    assert_holds(text);
    free(text);
    text = repeat(' ', COND_MAX_TEXT + 1);
    memcpy(text, "true", 4);
    assert_error(text, BSP_ETOOBIG, "", "the condition is longer than 16384 bytes");
    free(text);
}

static char *long_list(size_t items) {
    char *items_text = repeat('x', items * 2 - 1);
    for (size_t i = 0; i < items; i++) {
        items_text[2 * i] = '1';
        if (i + 1 < items) items_text[2 * i + 1] = ',';
    }
    char *text = format_body("traits.age in [%s]", items_text);
    free(items_text);
    return text;
}

static void test_node_limit(void **state) {
    (void)state;
    char *text = long_list(COND_MAX_NODES - 3); /* path, list, compare and the items */
    assert_fails(text);
    free(text);
    text = long_list(COND_MAX_NODES - 2);
    assert_error(text, BSP_ETOOBIG, "line 1, column 12", "the condition has more than 4096 parts");
    free(text);
}

/* ---- introspection ---- */

static void test_introspection(void **state) {
    (void)state;
    bsp_cond *c = compile_ok("traits.a = 1 and computed.b = 2 or rfm.c = 3 or predicted.d = 4 "
                             "or context.e = 5 or did(\"Order Completed\", 7d) or "
                             "count(\"Product Viewed\", 1d, properties.x = 1) > sum(\"Order "
                             "Completed\", \"revenue\", 1d) or in_segment(\"vip\") or "
                             "in_segment(\"churn\") or in_segment(\"vip\")");
    unsigned all = COND_USES_TRAITS | COND_USES_COMPUTED | COND_USES_RFM | COND_USES_PREDICTED |
                   COND_USES_CONTEXT | COND_USES_EVENTS | COND_USES_SEGMENTS | COND_USES_TIME;
    assert_int_equal(cond_inputs(c), all);
    const char *names[4] = {0};
    assert_int_equal(cond_event_names(c, names, 4), 2);
    assert_string_equal(names[0], "Order Completed");
    assert_string_equal(names[1], "Product Viewed");
    assert_null(names[2]);
    const char *first[1] = {0};
    assert_int_equal(cond_event_names(c, first, 1), 2); /* the total, storing one */
    assert_string_equal(first[0], "Order Completed");
    const char *ids[4] = {0};
    assert_int_equal(cond_segment_refs(c, ids, 4), 2);
    assert_string_equal(ids[0], "vip");
    assert_string_equal(ids[1], "churn");
    cond_free(c);

    c = compile_ok("traits.country = \"DE\"");
    assert_int_equal(cond_inputs(c), COND_USES_TRAITS);
    assert_int_equal(cond_event_names(c, names, 4), 0);
    assert_int_equal(cond_segment_refs(c, ids, 4), 0);
    cond_free(c);
    c = compile_ok("days_since(\"2024-01-01\") > 3 or now() > 0");
    assert_int_equal(cond_inputs(c), COND_USES_TIME);
    assert_int_equal(cond_computed_reads(c), 0);
    cond_free(c);
    cond_free(NULL);
    assert_int_equal(cond_computed_reads(NULL), 0);
}

/* Which computed traits a condition reads: by the first name after
 * computed, cart_items and cart_value as the cart, names that are not
 * computed traits as nothing (they are always null). */
static void test_computed_reads(void **state) {
    (void)state;
    static const struct {
        const char *text;
        uint32_t bits;
    } cases[] = {
        {"computed.orders >= 1 and days_since(computed.last_seen) < 3",
         PROFILE_C_ORDERS | PROFILE_C_LAST_SEEN},
        {"computed.cart_value > 3 or computed.cart_items > 1", PROFILE_C_CART},
        {"\"p1\" in computed.recently_viewed", PROFILE_C_RECENTLY_VIEWED},
        {"\"p1\" in computed.cart.product_id", PROFILE_C_CART},
        {"lower(computed.favorite_brand) = \"lux\" and traits.plan = \"pro\"",
         PROFILE_C_FAVORITE_BRAND},
        {"count(\"Order Completed\", 7d, properties.revenue > computed.aov) > 1", PROFILE_C_AOV},
        {"computed.no_such_trait = 1 or traits.orders = 1 or rfm.orders = 1", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bsp_cond *c = compile_ok(cases[i].text);
        if (cond_computed_reads(c) != cases[i].bits)
            fail_msg("%s: 0x%x, expected 0x%x", cases[i].text, cond_computed_reads(c),
                     cases[i].bits);
        cond_free(c);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_examples),
        cmocka_unit_test(test_computed_reads),
        cmocka_unit_test(test_computed_number_callback),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_literals_and_comments),
        cmocka_unit_test(test_operators),
        cmocka_unit_test(test_null_semantics),
        cmocka_unit_test(test_list_paths),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_functions),
        cmocka_unit_test(test_missing_callbacks),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_type_errors),
        cmocka_unit_test(test_duration_and_regex_errors),
        cmocka_unit_test(test_regex_message_names_the_problem),
        cmocka_unit_test(test_costly_regex_refused),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_node_limit),
        cmocka_unit_test(test_introspection),
    };
    return cmocka_run_group_tests_name("condition", tests, setup, teardown);
}
