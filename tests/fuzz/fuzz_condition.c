/* fuzz_condition.c - libFuzzer target for the condition language: every
 * input is compiled; errors must carry their code and a position, and a
 * condition that compiles is introspected and evaluated against a small
 * fixed profile with events (so paths through lists, filters, regexes and
 * every function run), then against a real profile twice: with the computed
 * texts and times read directly and through the computed object, which must
 * agree. Then it is freed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event/event.h"
#include "profile/profile.h"
#include "segment/segment.h"

#define NOW 1700000000000LL

static const char profile_text[] =
    "{\"traits\":{\"country\":\"DE\",\"email\":\"Ana@Example.com\",\"tags\":[\"vip\",\"eu\"],"
    "\"age\":34,\"quiz\":{\"style\":\"minimal\"},\"nested\":[[1,2],[{\"a\":[3]}]]},"
    "\"computed\":{\"orders\":3,\"last_seen\":\"2023-11-04T22:13:20Z\",\"first_seen\":1,"
    "\"purchased\":[\"85123A\"]},\"rfm\":{\"segment\":\"at_risk\"},\"predicted\":{\"churn\":0.8},"
    "\"context\":{\"page\":{\"type\":\"cart\"}}}";

static const char events_text[] =
    "[{\"event\":\"Order Completed\",\"at\":1699999000000,\"properties\":{\"revenue\":100,"
    "\"products\":[{\"product_id\":\"A1\",\"price\":10},{\"product_id\":\"B2\",\"price\":\"x\"}]}},"
    "{\"event\":\"Product Viewed\",\"at\":1699990000000,\"properties\":{\"category\":\"Shoes\"}},"
    "{\"event\":\"Product Viewed\",\"at\":1600000000000,\"properties\":null}]";

static cJSON *profile, *events;
static bsp_profile *real; /* a profile made by applying real_events */

static const char real_events[] =
    "{\"batch\":[{\"type\":\"page\",\"anonymousId\":\"v\",\"timestamp\":"
    "\"2023-11-14T20:00:00Z\",\"context\":{\"userAgent\":\"Mozilla/5.0 (iPhone) Mobile\","
    "\"location\":{\"country\":\"DE\"}}},{\"type\":\"track\",\"event\":\"Product Viewed\","
    "\"anonymousId\":\"v\",\"timestamp\":\"2023-11-14T21:00:00Z\",\"properties\":{"
    "\"product_id\":\"p1\",\"category\":\"Home > Lamps\",\"brand\":\"Lux\"}},"
    "{\"type\":\"track\",\"event\":\"Order Completed\",\"anonymousId\":\"v\","
    "\"timestamp\":\"2023-11-14T21:30:00Z\",\"properties\":{\"revenue\":5}}]}";

static bsp_profile *real_profile(void) {
    bsp_profile *p = profile_new(1);
    bsp_event_list list = {0};
    if (!p || event_parse_body(real_events, strlen(real_events), BSP_EV_TYPE_COUNT, NOW, &list,
                               NULL) != BSP_OK)
        abort();
    for (size_t i = 0; i < list.count; i++)
        profile_apply_event(p, &list.items[i]);
    event_list_free(&list);
    return p;
}

/* The real profile's answer with the direct reads, and without. */
static void check_direct_reads(const bsp_cond *c) {
    segment_env direct, viewed;
    segment_env_init(&direct, real, NULL, NOW);
    segment_env_init(&viewed, real, NULL, NOW);
    viewed.env.computed_text = NULL;
    viewed.env.computed_time = NULL;
    bool a = cond_eval(c, &direct.env);
    segment_env_free(&direct);
    bool b = cond_eval(c, &viewed.env);
    segment_env_free(&viewed);
    if (a != b) abort();
}

static const cJSON *env_root(void *ctx, const char *root) {
    (void)ctx;
    return cJSON_GetObjectItemCaseSensitive(profile, root);
}

static bool env_each_event(void *ctx, const char *name, int64_t since_ms,
                           bool (*visit)(void *vctx, const cJSON *event), void *vctx) {
    (void)ctx;
    const cJSON *event;
    cJSON_ArrayForEach(event, events) {
        const cJSON *event_name = cJSON_GetObjectItemCaseSensitive(event, "event");
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(event, "at");
        if (strcmp(event_name->valuestring, name) != 0 || at->valuedouble < (double)since_ms)
            continue;
        if (!visit(vctx, event)) break;
    }
    return true;
}

static int env_in_segment(void *ctx, const char *id, uint64_t id_hash) {
    (void)ctx;
    if (id_hash != bsp_hash64(id, strlen(id))) abort();
    return strcmp(id, "vip") == 0;
}

static void check_introspection(const bsp_cond *c) {
    const char *names[8];
    size_t n = cond_event_names(c, names, 8);
    for (size_t i = 0; i < n && i < 8; i++)
        if (!names[i]) abort();
    n = cond_segment_refs(c, names, 8);
    for (size_t i = 0; i < n && i < 8; i++)
        if (!names[i]) abort();
    if (n && !(cond_inputs(c) & COND_USES_SEGMENTS)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!profile) {
        profile = cJSON_Parse(profile_text);
        events = cJSON_Parse(events_text);
        real = real_profile();
        if (!profile || !events) abort();
    }
    bsp_cond *c = NULL;
    bsp_error err;
    bsp_err rc = cond_compile((const char *)data, size, &c, &err);
    if (rc != BSP_OK) {
        if (c || err.code != rc || !err.message[0]) abort();
        if (rc == BSP_ETYPE && strncmp(err.at, "line ", 5) != 0) abort();
        return 0;
    }
    check_introspection(c);
    cond_env env = {.ctx = NULL,
                    .now_ms = NOW,
                    .root = env_root,
                    .each_event = env_each_event,
                    .in_segment = env_in_segment};
    (void)cond_eval(c, &env);
    check_direct_reads(c);
    cond_free(c);
    return 0;
}
