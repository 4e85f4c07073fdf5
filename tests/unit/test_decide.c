/* test_decide.c - the decision pipeline on a real store: request parsing
 * and its limits, tokens (sign, verify, tamper, expiry), priority,
 * schedule, frequency caps from Promotion Viewed events, the control
 * share's stability, consent (profile, request, --require-consent), the
 * seed's examples (first-order coupon, searched lantern, cart toggle),
 * product blocks filled by popularity, impression reports, and a coupon
 * pool handed out exactly once by many threads deciding at once. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "teststore.h"

#include "segment/segment.h"

#include <pthread.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "decide/decide.h"
#include "testutil.h"

/* --- requests ---------------------------------------------------------------------------- */

static bsp_err parse(const char *text, decide_request *req, bsp_error *err) {
    bsp_error_clear(err);
    return decide_request_parse(text, strlen(text), req, err);
}

static void expect_parse_error(const char *text, bsp_err code, const char *at) {
    decide_request req;
    bsp_error err;
    bsp_err rc = parse(text, &req, &err);
    decide_request_free(&req);
    if (rc != code || strcmp(err.at, at) != 0)
        fail_msg("%s: got %s at '%s' (%s)", text, bsp_err_name(rc), err.at, err.message);
}

static void test_request_parse(void **state) {
    (void)state;
    decide_request req;
    bsp_error err;
    assert_int_equal(parse("{\"userId\":42,\"context\":{\"page\":{\"type\":\"home\"}},"
                           "\"placements\":[\"a\",\"b\",\"a\"],\"writeKey\":\"wk\"}",
                           &req, &err),
                     BSP_OK);
    assert_string_equal(req.user_id, "42");
    assert_null(req.anonymous_id);
    assert_int_equal(req.placement_count, 2);
    assert_string_equal(req.placements[1], "b");
    assert_string_equal(req.write_key, "wk");
    assert_non_null(req.context);
    decide_request_free(&req);
    /* Neither id: allowed (defaults only). */
    assert_int_equal(parse("{\"placements\":[\"a\"]}", &req, &err), BSP_OK);
    assert_null(req.user_id);
    assert_null(req.anonymous_id);
    decide_request_free(&req);
    expect_parse_error("{\"anonymousId\":\"a\"}", BSP_ETYPE, "placements");
    expect_parse_error("{\"anonymousId\":\"a\",\"placements\":[\"ok\",\"no way\"]}", BSP_ETYPE,
                       "placements[1]");
    expect_parse_error("{\"anonymousId\":\"a\",\"context\":[],\"placements\":[]}", BSP_ETYPE,
                       "context");
    expect_parse_error("[1]", BSP_EINVAL, "");
    expect_parse_error("{\"anonymousId\":", BSP_EPARSE, "line 1, column 15");
    char many[512] = "{\"anonymousId\":\"a\",\"placements\":[";
    for (int i = 0; i < DECIDE_PLACEMENTS_MAX + 1; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s\"p%d\"", i ? "," : "", i);
    strcat(many, "]}");
    expect_parse_error(many, BSP_ETOOBIG, "placements");
    char *big = repeat(' ', DECIDE_BODY_MAX + 1);
    big[0] = '{';
    assert_int_equal(decide_request_parse(big, strlen(big), &req, &err), BSP_ETOOBIG);
    decide_request_free(&req);
    free(big);
}

/* --- tokens -------------------------------------------------------------------------------- */

static const uint8_t KEY[DECIDE_TOKEN_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

/* base64url without padding, written independently of token.c. */
static void b64url(const uint8_t *data, size_t len, char *out) {
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    while (n > 0 && out[n - 1] == '=')
        out[--n] = '\0';
    for (int i = 0; i < n; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
}

static void test_tokens(void **state) {
    (void)state;
    decide_token tok = {.campaign = "welcome",
                        .placement = "home_modal",
                        .variant = "treatment",
                        .pid = 7,
                        .t_ms = 1000000};
    char text[DECIDE_TOKEN_MAX];
    assert_int_equal(decide_token_sign(KEY, &tok, text, sizeof text), BSP_OK);
    /* The documented layout, and the MAC is RFC 2104 HMAC-SHA256 of the
     * payload's bytes (OpenSSL's own HMAC here), truncated to 16 bytes. */
    {
        uint8_t payload[64] = {2, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40, 7};
        size_t n = 19;
        memcpy(payload + n, "welcome", 7);
        n += 7;
        payload[n++] = 10;
        memcpy(payload + n, "home_modal", 10);
        n += 10;
        uint8_t want[32];
        unsigned int wlen = sizeof want;
        HMAC(EVP_sha256(), KEY, DECIDE_TOKEN_KEY_BYTES, payload, n, want, &wlen);
        char expect[DECIDE_TOKEN_MAX] = "v2.", b64[128];
        b64url(payload, n, b64);
        strcat(expect, b64);
        strcat(expect, ".");
        b64url(want, 16, b64);
        strcat(expect, b64);
        assert_string_equal(text, expect);
    }
    decide_token back;
    bsp_error err;
    assert_int_equal(decide_token_verify(KEY, text, 1000000 + 60000, &back, &err), BSP_OK);
    assert_string_equal(back.campaign, "welcome");
    assert_string_equal(back.placement, "home_modal");
    assert_string_equal(back.variant, "treatment");
    assert_int_equal(back.pid, 7);
    assert_int_equal(back.t_ms, 1000000);
    /* a control token, and the longest ids */
    decide_token ctl = {.variant = "control", .pid = UINT64_MAX, .t_ms = 5};
    memset(ctl.campaign, 'c', CAMPAIGN_ID_MAX);
    memset(ctl.placement, 'p', CAMPAIGN_ID_MAX);
    assert_int_equal(decide_token_sign(KEY, &ctl, text, sizeof text), BSP_OK);
    assert_int_equal(decide_token_verify(KEY, text, 60000, &back, &err), BSP_OK);
    assert_string_equal(back.variant, "control");
    assert_string_equal(back.campaign, ctl.campaign);
    assert_string_equal(back.placement, ctl.placement);
    assert_true(back.pid == UINT64_MAX);
    assert_int_equal(decide_token_sign(KEY, &tok, text, sizeof text), BSP_OK);
    /* tampering anywhere is refused: every character, including the unused
     * low bits of the last one of each part */
    for (size_t i = 0; i < strlen(text); i++) {
        char forged[DECIDE_TOKEN_MAX];
        strcpy(forged, text);
        if (forged[i] == '.') continue;
        forged[i] = forged[i] == 'A' ? 'B' : 'A';
        assert_int_equal(decide_token_verify(KEY, forged, 1000000, &back, &err), BSP_EFORBIDDEN);
    }
    uint8_t other[DECIDE_TOKEN_KEY_BYTES] = {9};
    assert_int_equal(decide_token_verify(other, text, 1000000, &back, &err), BSP_EFORBIDDEN);
    assert_int_equal(decide_token_verify(KEY, text, 1000000 + DECIDE_TOKEN_TTL_MS + 1, &back, &err),
                     BSP_EFORBIDDEN);
    assert_string_equal(err.at, "token");
    assert_int_equal(decide_token_verify(KEY, text, 1000000 - 300001, &back, &err), BSP_EFORBIDDEN);
    assert_int_equal(decide_token_sign(KEY, &tok, text, 40), BSP_ETOOBIG);
    const char *junk[] = {"",           "v1.",        "v1..",        "v2.",         "v2..",
                          "v2.abc.def", "v1.!!!.???", "v1.e30.AAAA", "v2.AgA.AAAA", "v3.AAAA.AAAA"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        assert_int_equal(decide_token_verify(KEY, junk[i], 1000000, &back, &err), BSP_EFORBIDDEN);
}

/* Tokens of the first form (made before v2) still verify until they expire. */
static void test_tokens_v1(void **state) {
    (void)state;
    const char *json = "{\"c\":\"welcome\",\"p\":\"home_modal\",\"v\":\"control\",\"pid\":7,"
                       "\"t\":1000000}";
    char text[DECIDE_TOKEN_MAX] = "v1.", b64[256];
    b64url((const uint8_t *)json, strlen(json), b64);
    strcat(text, b64);
    uint8_t want[32];
    unsigned int wlen = sizeof want;
    HMAC(EVP_sha256(), KEY, DECIDE_TOKEN_KEY_BYTES, (const unsigned char *)text, strlen(text), want,
         &wlen);
    strcat(text, ".");
    b64url(want, 32, b64);
    strcat(text, b64);
    decide_token back;
    bsp_error err;
    assert_int_equal(decide_token_verify(KEY, text, 1000000, &back, &err), BSP_OK);
    assert_string_equal(back.campaign, "welcome");
    assert_string_equal(back.variant, "control");
    assert_int_equal(back.pid, 7);
    for (size_t i = 3; i < strlen(text); i++) {
        char forged[DECIDE_TOKEN_MAX];
        strcpy(forged, text);
        if (forged[i] == '.') continue;
        forged[i] = forged[i] == 'A' ? 'B' : 'A';
        assert_int_equal(decide_token_verify(KEY, forged, 1000000, &back, &err), BSP_EFORBIDDEN);
    }
}

/* --- the pipeline ---------------------------------------------------------------------------- */

typedef struct fixture {
    char dir[64];
    bsp_store *st;
    bsp_ingest *ing;
    campaign_registry *reg;
    bsp_decider *d;
    int msg;
} fixture;

static int setup_with(void **state, bool require_consent) {
    fixture *f = calloc(1, sizeof *f);
    test_temp_dir(f->dir, "decide");
    bsp_store_opts so = {.no_sync = true};
    assert_int_equal(store_open(f->dir, &so, &f->st), BSP_OK);
    assert_int_equal(ingest_start(f->st, NULL, &f->ing), BSP_OK);
    assert_int_equal(campaign_registry_start(f->st, f->ing, &f->reg), BSP_OK);
    decide_opts opts = {.require_consent = require_consent};
    assert_int_equal(decider_new(f->st, f->ing, f->reg, &opts, &f->d), BSP_OK);
    *state = f;
    return 0;
}

static int setup(void **state) {
    return setup_with(state, false);
}

static int setup_consent(void **state) {
    return setup_with(state, true);
}

static int teardown(void **state) {
    fixture *f = *state;
    campaign_registry_stop(f->reg);
    ingest_stop(f->ing);
    decider_free(f->d);
    campaign_registry_free(f->reg);
    store_close(f->st);
    test_temp_dir_remove(f->dir);
    free(f);
    return 0;
}

static void add(fixture *f, const char *kind, const char *text) {
    cJSON *body = cJSON_Parse(text);
    if (!body) fail_msg("bad JSON in test: %s", text);
    cJSON *obj = NULL;
    bsp_error err;
    bsp_err rc = strcmp(kind, CAMPAIGN_KIND) == 0
                     ? campaign_from_json(body, NULL, bsp_now_ms(), &obj, &err)
                     : placement_from_json(body, NULL, bsp_now_ms(), &obj, &err);
    cJSON_Delete(body);
    if (rc != BSP_OK) fail_msg("%s: %s at %s", text, err.message, err.at);
    assert_int_equal(campaign_config_save(f->ing, kind, obj, false, NULL), BSP_OK);
    cJSON_Delete(obj);
    assert_int_equal(campaign_registry_reload(f->reg), BSP_OK);
}

/* Sends one track event for anonymousId anon and waits for the commit. */
static void track(fixture *f, const char *anon, const char *event, const char *props,
                  const char *context) {
    char body[1024];
    snprintf(body, sizeof body,
             "{\"type\":\"track\",\"anonymousId\":\"%s\",\"event\":\"%s\",\"messageId\":\"m%d\","
             "\"properties\":%s,\"context\":%s}",
             anon, event, ++f->msg, props ? props : "{}", context ? context : "{}");
    bsp_event_list list = {0};
    bsp_error err;
    assert_int_equal(event_parse_body(body, strlen(body), BSP_EV_TRACK, bsp_now_ms(), &list, &err),
                     BSP_OK);
    bsp_ingest_result res;
    assert_int_equal(ingest_submit_wait(f->ing, list.items, list.count, &res), BSP_OK);
    assert_int_equal(res.code, BSP_OK);
    event_list_free(&list);
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
}

/* Decides and returns the parsed answer's decision for placement. */
static cJSON *decide_json(fixture *f, const char *anon, const char *context, const char *placement,
                          cJSON **root) {
    char body[2048];
    snprintf(body, sizeof body, "{\"anonymousId\":\"%s\",\"context\":%s,\"placements\":[\"%s\"]}",
             anon, context ? context : "{}", placement);
    decide_request req;
    bsp_error err;
    assert_int_equal(decide_request_parse(body, strlen(body), &req, &err), BSP_OK);
    bsp_buf out = {0};
    if (decide_run(f->d, &req, bsp_now_ms(), &out, &err) != BSP_OK) fail_msg("%s", err.message);
    decide_request_free(&req);
    *root = cJSON_Parse(out.data);
    if (!*root) fail_msg("answer is not JSON: %s", out.data);
    bsp_buf_free(&out);
    cJSON *d = json_path(*root, "decisions");
    return cJSON_GetObjectItem(d, placement);
}

/* The campaign id chosen for the placement ("" for none) and its variant. */
static void expect(fixture *f, const char *anon, const char *context, const char *placement,
                   const char *campaign, const char *variant) {
    cJSON *root;
    cJSON *d = decide_json(f, anon, context, placement, &root);
    assert_non_null(d);
    const char *got = json_get_string(d, "campaign");
    if (strcmp(got ? got : "", campaign) != 0 ||
        strcmp(json_get_string(d, "variant"), variant) != 0) {
        char *text = cJSON_PrintUnformatted(d);
        fail_msg("%s on %s: want %s/%s, got %s", anon, placement, campaign, variant, text);
    }
    const cJSON *token = cJSON_GetObjectItem(d, "token");
    assert_true(campaign[0] ? cJSON_IsString(token) : cJSON_IsNull(token));
    cJSON_Delete(root);
}

#define HOME_DEFAULT "{\"id\":\"home_hero\",\"default\":{\"type\":\"banner\",\"title\":\"Hello\"}}"

static void test_priority_and_default(void **state) {
    fixture *f = *state;
    add(f, PLACEMENT_KIND, HOME_DEFAULT);
    expect(f, "v1", NULL, "home_hero", "", "default");
    add(f, CAMPAIGN_KIND,
        "{\"id\":\"low\",\"placement\":\"home_hero\",\"status\":\"active\","
        "\"priority\":1,\"content\":{\"type\":\"banner\",\"title\":\"L\"}}");
    add(f, CAMPAIGN_KIND,
        "{\"id\":\"high\",\"placement\":\"home_hero\",\"status\":\"active\","
        "\"priority\":5,\"condition\":\"context.page.type = \\\"home\\\"\","
        "\"content\":{\"type\":\"banner\",\"title\":\"H\"}}");
    add(f, CAMPAIGN_KIND,
        "{\"id\":\"paused\",\"placement\":\"home_hero\",\"status\":\"paused\","
        "\"priority\":50,\"content\":{\"type\":\"banner\",\"title\":\"P\"}}");
    expect(f, "v1", "{\"page\":{\"type\":\"home\"}}", "home_hero", "high", "treatment");
    expect(f, "v1", "{\"page\":{\"type\":\"product\"}}", "home_hero", "low", "treatment");
    cJSON *root;
    cJSON *d = decide_json(f, "v1", NULL, "unknown_spot", &root);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(d, "content")));
    assert_string_equal(json_get_string(d, "variant"), "default");
    cJSON_Delete(root);
}

static void test_schedule(void **state) {
    fixture *f = *state;
    char text[512];
    char past[32], future[32];
    bsp_time_format(bsp_now_ms() - 3600000, past, sizeof past);
    bsp_time_format(bsp_now_ms() + 3600000, future, sizeof future);
    snprintf(text, sizeof text,
             "{\"id\":\"later\",\"placement\":\"p\",\"status\":\"active\",\"priority\":9,"
             "\"start\":\"%s\",\"content\":{\"type\":\"banner\",\"title\":\"L\"}}",
             future);
    add(f, CAMPAIGN_KIND, text);
    snprintf(text, sizeof text,
             "{\"id\":\"over\",\"placement\":\"p\",\"status\":\"active\",\"priority\":8,"
             "\"end\":\"%s\",\"content\":{\"type\":\"banner\",\"title\":\"O\"}}",
             past);
    add(f, CAMPAIGN_KIND, text);
    snprintf(text, sizeof text,
             "{\"id\":\"now\",\"placement\":\"p\",\"status\":\"active\",\"priority\":1,"
             "\"start\":\"%s\",\"end\":\"%s\",\"content\":{\"type\":\"banner\",\"title\":\"N\"}}",
             past, future);
    add(f, CAMPAIGN_KIND, text);
    expect(f, "v1", NULL, "p", "now", "treatment");
}

static void test_caps(void **state) {
    fixture *f = *state;
    add(f, CAMPAIGN_KIND,
        "{\"id\":\"capped\",\"placement\":\"p\",\"status\":\"active\","
        "\"cap\":{\"per_day\":2,\"total\":3},"
        "\"content\":{\"type\":\"banner\",\"title\":\"C\"}}");
    expect(f, "v1", NULL, "p", "capped", "treatment");
    track(f, "v1", "Promotion Viewed", "{\"promotion_id\":\"capped\"}", NULL);
    expect(f, "v1", NULL, "p", "capped", "treatment");
    track(f, "v1", "Promotion Viewed", "{\"promotion_id\":\"capped\"}", NULL);
    expect(f, "v1", NULL, "p", "", "default"); /* two today */
    expect(f, "v2", NULL, "p", "capped", "treatment");
}

static void test_control_share(void **state) {
    fixture *f = *state;
    add(f, CAMPAIGN_KIND,
        "{\"id\":\"half\",\"placement\":\"p\",\"status\":\"active\","
        "\"control\":0.5,\"content\":{\"type\":\"banner\",\"title\":\"C\"}}");
    int control = 0;
    for (int v = 0; v < 200; v++) {
        char anon[16];
        snprintf(anon, sizeof anon, "c%d", v);
        cJSON *root;
        cJSON *d = decide_json(f, anon, NULL, "p", &root);
        char variant[16];
        snprintf(variant, sizeof variant, "%s", json_get_string(d, "variant"));
        assert_string_equal(json_get_string(d, "campaign"), "half");
        bool is_control = strcmp(variant, "control") == 0;
        control += is_control;
        cJSON_Delete(root);
        for (int again = 0; again < 3; again++) /* stable */
            expect(f, anon, NULL, "p", "half", variant);
    }
    assert_in_range(control, 70, 130);
}

static void test_consent(void **state) {
    fixture *f = *state;
    add(f, CAMPAIGN_KIND,
        "{\"id\":\"all\",\"placement\":\"p\",\"status\":\"active\","
        "\"content\":{\"type\":\"banner\",\"title\":\"A\"}}");
    expect(f, "v1", NULL, "p", "all", "treatment");
    track(f, "v1", "Page Viewed", NULL,
          "{\"consent\":{\"categoryPreferences\":{\"personalization\":false}}}");
    expect(f, "v1", NULL, "p", "", "default");
    expect(f, "v2", "{\"consent\":{\"categoryPreferences\":{\"personalization\":false}}}", "p", "",
           "default");
    expect(f, "v2", NULL, "p", "all", "treatment");
}

static void test_require_consent(void **state) {
    fixture *f = *state;
    add(f, CAMPAIGN_KIND,
        "{\"id\":\"all\",\"placement\":\"p\",\"status\":\"active\","
        "\"content\":{\"type\":\"banner\",\"title\":\"A\"}}");
    expect(f, "v1", NULL, "p", "", "default");
    track(f, "v1", "Page Viewed", NULL,
          "{\"consent\":{\"categoryPreferences\":{\"personalization\":true}}}");
    expect(f, "v1", NULL, "p", "all", "treatment");
    expect(f, "v2", "{\"consent\":{\"categoryPreferences\":{\"personalization\":true}}}", "p",
           "all", "treatment");
}

/* The seed's three examples, as written campaigns. */
static void test_seed_examples(void **state) {
    fixture *f = *state;
    add(f, CAMPAIGN_KIND,
        "{\"id\":\"welcome\",\"placement\":\"home_modal\",\"status\":\"active\","
        "\"condition\":\"computed.orders = 0\",\"content\":{\"type\":\"coupon\","
        "\"title\":\"Welcome\",\"code\":\"WELCOME10\"}}");
    add(f, CAMPAIGN_KIND,
        "{\"id\":\"lantern\",\"placement\":\"search_banner\",\"status\":"
        "\"active\",\"condition\":\"did(\\\"Products Searched\\\", 30m, "
        "properties.query contains \\\"lantern\\\")\","
        "\"content\":{\"type\":\"banner\",\"title\":\"Lanterns\"}}");
    add(f, PLACEMENT_KIND,
        "{\"id\":\"shipping\",\"default\":{\"type\":\"toggle\","
        "\"show\":[\"#free-shipping\"]}}");
    add(f, CAMPAIGN_KIND,
        "{\"id\":\"hide_teaser\",\"placement\":\"shipping\",\"status\":"
        "\"active\",\"condition\":\"computed.cart_items > 0\","
        "\"content\":{\"type\":\"toggle\",\"hide\":[\"#free-shipping\"]}}");
    expect(f, "s1", NULL, "home_modal", "welcome", "treatment");
    expect(f, "s1", NULL, "search_banner", "", "default");
    expect(f, "s1", NULL, "shipping", "", "default");
    track(f, "s1", "Products Searched", "{\"query\":\"brass lantern\"}", NULL);
    expect(f, "s1", NULL, "search_banner", "lantern", "treatment");
    track(f, "s1", "Product Added", "{\"product_id\":\"p1\",\"price\":5,\"quantity\":1}", NULL);
    expect(f, "s1", NULL, "shipping", "hide_teaser", "treatment");
    track(f, "s1", "Order Completed",
          "{\"order_id\":\"o1\",\"total\":5,\"products\":[{\"product_id\":\"p1\",\"price\":5}]}",
          NULL);
    expect(f, "s1", NULL, "home_modal", "", "default");
    expect(f, "s2", NULL, "search_banner", "", "default");
}

static void test_products_block(void **state) {
    fixture *f = *state;
    const char *products[] = {
        "{\"id\":\"p1\",\"name\":\"Black lamp\",\"price\":20,\"category\":\"Home > Lamps\","
        "\"attributes\":{\"color\":\"black\",\"popularity\":5}}",
        "{\"id\":\"p2\",\"name\":\"White lamp\",\"price\":25,\"category\":\"Home > Lamps\","
        "\"attributes\":{\"color\":\"white\",\"popularity\":9}}",
        "{\"id\":\"p3\",\"name\":\"Mug\",\"price\":5,\"category\":\"Kitchen\"}"};
    cJSON *objs[3];
    for (int i = 0; i < 3; i++) {
        cJSON *body = cJSON_Parse(products[i]);
        bsp_error err;
        assert_int_equal(catalog_product_from_json(body, NULL, bsp_now_ms(), &objs[i], &err),
                         BSP_OK);
        cJSON_Delete(body);
    }
    assert_int_equal(ingest_put_products(f->ing, objs, 3), BSP_OK);
    for (int i = 0; i < 3; i++)
        cJSON_Delete(objs[i]);
    add(f, CAMPAIGN_KIND,
        "{\"id\":\"lamps\",\"placement\":\"pdp\",\"status\":\"active\","
        "\"content\":{\"type\":\"products\",\"title\":\"Lamps\",\"n\":5,"
        "\"filters\":{\"category\":\"Home\"}}}");
    cJSON *root;
    cJSON *d = decide_json(f, "q1", NULL, "pdp", &root);
    cJSON *items = json_path(d, "content.items");
    assert_int_equal(cJSON_GetArraySize(items), 2);
    assert_string_equal(json_get_string(cJSON_GetArrayItem(items, 0), "id"), "p2");
    cJSON_Delete(root);
    /* a quiz answer leaves out what does not fit */
    char body[] = "{\"type\":\"identify\",\"anonymousId\":\"q1\",\"messageId\":\"i1\","
                  "\"traits\":{\"quiz\":{\"color\":\"black\"}}}";
    bsp_event_list list = {0};
    bsp_error err;
    assert_int_equal(
        event_parse_body(body, strlen(body), BSP_EV_IDENTIFY, bsp_now_ms(), &list, &err), BSP_OK);
    bsp_ingest_result res;
    assert_int_equal(ingest_submit_wait(f->ing, list.items, list.count, &res), BSP_OK);
    event_list_free(&list);
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    d = decide_json(f, "q1", NULL, "pdp", &root);
    items = json_path(d, "content.items");
    assert_int_equal(cJSON_GetArraySize(items), 1);
    assert_string_equal(json_get_string(cJSON_GetArrayItem(items, 0), "id"), "p1");
    cJSON_Delete(root);
}

static void test_impression_report(void **state) {
    fixture *f = *state;
    add(f, CAMPAIGN_KIND,
        "{\"id\":\"all\",\"placement\":\"p\",\"status\":\"active\","
        "\"content\":{\"type\":\"banner\",\"title\":\"A\"}}");
    cJSON *root;
    cJSON *d = decide_json(f, "v1", NULL, "p", &root);
    char body[1024];
    snprintf(body, sizeof body,
             "{\"type\":\"impression\",\"token\":\"%s\",\"anonymousId\":\"v1\",\"writeKey\":\"k\"}",
             json_get_string(d, "token"));
    cJSON_Delete(root);
    bsp_event ev;
    char key[BSP_WRITE_KEY_MAX_BYTES + 1];
    bsp_error err;
    const uint8_t *tk = decider_token_key(f->d);
    assert_int_equal(decide_event_parse(tk, body, strlen(body), bsp_now_ms(), &ev, key, &err),
                     BSP_OK);
    assert_string_equal(key, "k");
    assert_string_equal(ev.name, "Promotion Viewed");
    assert_string_equal(json_get_string(json_path(ev.json, "properties"), "promotion_id"), "all");
    assert_string_equal(json_get_string(json_path(ev.json, "properties"), "creative"), "p");
    event_free(&ev);
    char *dot = strrchr(body, '.'); /* tamper with the signature */
    dot[1] = dot[1] == 'x' ? 'y' : 'x';
    assert_int_equal(decide_event_parse(tk, body, strlen(body), bsp_now_ms(), &ev, key, &err),
                     BSP_EFORBIDDEN);
    event_free(&ev);
    const char *bad = "{\"type\":\"view\",\"token\":\"x\",\"anonymousId\":\"v1\"}";
    assert_int_equal(decide_event_parse(tk, bad, strlen(bad), bsp_now_ms(), &ev, key, &err),
                     BSP_ETYPE);
    assert_string_equal(err.at, "type");
    event_free(&ev);
}

/* --- coupon pool under concurrent decisions ------------------------------------------------ */

#define POOL 30
#define THREADS 6
#define EACH 15

typedef struct decider_thread {
    fixture *f;
    int index;
    char codes[EACH][CAMPAIGN_CODE_MAX + 1];
} decider_thread;

/* Notes on shared parsed profiles rule campaigns out only when the full
 * evaluation agrees: one campaign a placement, each condition a different
 * mix of stored numbers, context, traits, events and time, decided three
 * times in three contexts for visitors of different histories, checked
 * against cond_eval on the same profile and context. */
static const char *const note_conditions[] = {
    "computed.product_views >= 2",
    "computed.product_views >= 2 and context.page.type = \"home\"",
    "context.page.type = \"home\" or computed.add_to_carts > 0",
    "not (computed.product_views > 2)",
    "traits.plan = \"gold\" or context.page.type = \"cart\"",
    "computed.favorite_category = \"Toys\" and computed.product_views > 0",
    "in_segment(\"nobody_s\") and context.page.type = \"home\"",
    "computed.add_to_carts > 1 and computed.product_views < 100",
    "lower(context.campaign.name) = \"spring\" and computed.product_views > 0",
    "did(\"Product Viewed\", 30d) and computed.product_views > 1",
    "computed.product_views >= 1 and computed.orders = 0",
    "days_since(computed.last_seen) < 1 and computed.product_views > 2",
    "now() > 1000 and computed.product_views >= 0",
};
#define NOTE_CONDS (sizeof note_conditions / sizeof *note_conditions)

static bool reference_holds(fixture *f, const char *anon, const char *context, size_t i) {
    bsp_cond *c;
    bsp_error err;
    const char *text = note_conditions[i];
    assert_int_equal(cond_compile(text, strlen(text), &c, &err), BSP_OK);
    bsp_txn *txn;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    uint64_t pid;
    bsp_profile *p = NULL;
    if (ingest_resolve_fresh(f->ing, txn, 'a', anon, &pid) == BSP_OK)
        assert_int_equal(ingest_profile_read(f->ing, txn, pid, &p), BSP_OK);
    store_txn_abort(txn);
    if (!p) p = profile_new(0); /* a visitor not seen yet: an empty profile */
    cJSON *ctx = cJSON_Parse(context);
    segment_env se;
    segment_env_init(&se, p, ctx, bsp_now_ms());
    bool holds = cond_eval(c, &se.env);
    segment_env_free(&se);
    cJSON_Delete(ctx);
    profile_free(p);
    cond_free(c);
    return holds;
}

static void test_notes_agree_with_full_evaluation(void **state) {
    fixture *f = *state;
    for (size_t i = 0; i < NOTE_CONDS; i++) {
        char text[1024];
        cJSON *cond = cJSON_CreateString(note_conditions[i]);
        char *quoted = cJSON_PrintUnformatted(cond);
        snprintf(text, sizeof text,
                 "{\"id\":\"n%zu\",\"placement\":\"np%zu\",\"status\":\"active\",\"priority\":1,"
                 "\"condition\":%s,\"content\":{\"type\":\"banner\",\"title\":\"N\"}}",
                 i, i, quoted);
        cJSON_free(quoted);
        cJSON_Delete(cond);
        add(f, CAMPAIGN_KIND, text);
    }
    static const char *const visitors[] = {"nv0", "nv1", "nv2", "nv3"};
    for (int v = 0; v < 4; v++)
        for (int k = 0; k < v * 2; k++)
            track(f, visitors[v], k % 2 ? "Product Added" : "Product Viewed",
                  "{\"product_id\":\"p1\",\"category\":\"Toys\",\"price\":5}", NULL);
    static const char *const contexts[] = {"{\"page\":{\"type\":\"home\"}}",
                                           "{\"page\":{\"type\":\"cart\"}}",
                                           "{\"campaign\":{\"name\":\"SPRING\"}}"};
    for (int round = 0; round < 3; round++)
        for (int v = 0; v < 4; v++)
            for (int x = 0; x < 3; x++)
                for (size_t i = 0; i < NOTE_CONDS; i++) {
                    char placement[16], id[16];
                    snprintf(placement, sizeof placement, "np%zu", i);
                    snprintf(id, sizeof id, "n%zu", i);
                    bool want = reference_holds(f, visitors[v], contexts[x], i);
                    cJSON *root;
                    cJSON *d = decide_json(f, visitors[v], contexts[x], placement, &root);
                    const char *got = json_get_string(d, "campaign");
                    if (want != (got && strcmp(got, id) == 0))
                        fail_msg("%s in %s, round %d: \"%s\" %s", visitors[v], contexts[x], round,
                                 note_conditions[i],
                                 want ? "holds but was not chosen" : "chosen but does not hold");
                    cJSON_Delete(root);
                }
}

static void *decide_many(void *arg) {
    decider_thread *t = arg;
    for (int v = 0; v < EACH; v++) {
        char body[256];
        snprintf(body, sizeof body, "{\"anonymousId\":\"t%d-%d\",\"placements\":[\"modal\"]}",
                 t->index, v);
        decide_request req;
        bsp_error err;
        bsp_buf out = {0};
        t->codes[v][0] = '\0';
        if (decide_request_parse(body, strlen(body), &req, &err) == BSP_OK &&
            decide_run(t->f->d, &req, bsp_now_ms(), &out, &err) == BSP_OK) {
            cJSON *root = cJSON_Parse(out.data);
            const char *code = json_get_string(json_path(root, "decisions.modal.content"), "code");
            if (code) snprintf(t->codes[v], sizeof t->codes[v], "%s", code);
            cJSON_Delete(root);
        }
        bsp_buf_free(&out);
        decide_request_free(&req);
    }
    return NULL;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(a, b);
}

static void test_pool_concurrent_decisions(void **state) {
    fixture *f = *state;
    bsp_buf b = {0};
    bsp_buf_puts(&b, "{\"id\":\"coupons\",\"placement\":\"modal\",\"status\":\"active\","
                     "\"content\":{\"type\":\"coupon\",\"pool\":[");
    for (int i = 0; i < POOL; i++)
        bsp_buf_printf(&b, "%s\"C%02d\"", i ? "," : "", i);
    bsp_buf_puts(&b, "]}}");
    add(f, CAMPAIGN_KIND, b.data);
    bsp_buf_free(&b);
    decider_thread t[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        t[i] = (decider_thread){.f = f, .index = i};
        pthread_create(&th[i], NULL, decide_many, &t[i]);
    }
    char all[THREADS * EACH][CAMPAIGN_CODE_MAX + 1];
    size_t n = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        for (int v = 0; v < EACH; v++)
            if (t[i].codes[v][0]) memcpy(all[n++], t[i].codes[v], sizeof all[0]);
    }
    assert_int_equal(n, POOL);
    qsort(all, n, sizeof all[0], cmp_str);
    for (size_t i = 1; i < n; i++)
        assert_string_not_equal(all[i], all[i - 1]);
    /* the pool is out: the campaign no longer matches newcomers */
    expect(f, "newcomer", NULL, "modal", "", "default");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_parse),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_tokens_v1),
        cmocka_unit_test_setup_teardown(test_priority_and_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schedule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_control_share, setup, teardown),
        cmocka_unit_test_setup_teardown(test_consent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_require_consent, setup_consent, teardown),
        cmocka_unit_test_setup_teardown(test_seed_examples, setup, teardown),
        cmocka_unit_test_setup_teardown(test_products_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notes_agree_with_full_evaluation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_impression_report, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_concurrent_decisions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
