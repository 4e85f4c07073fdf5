/* test_sim.c - unit tests of src/sim: the same options give the same bytes,
 * the requested number of events is written, every line is a valid Segment
 * message for the event parser, orders add up, the catalog is valid for the
 * catalog module, and the generator is fast. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "event/event.h"
#include "json/json.h"
#include "sim/sim.h"

/* Runs the simulator into memory; the caller frees *text. */
static void run_sim(const bsp_sim_opts *opts, char **text, size_t *len) {
    FILE *f = open_memstream(text, len);
    assert_non_null(f);
    assert_int_equal(sim_write(opts, f), BSP_OK);
    assert_int_equal(fclose(f), 0);
}

static size_t count_lines(const char *text, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += text[i] == '\n';
    return n;
}

static void test_deterministic(void **state) {
    (void)state;
    bsp_sim_opts opts = {.events = 20000, .seed = 42, .visitors = 1000};
    char *a, *b, *c;
    size_t la, lb, lc;
    run_sim(&opts, &a, &la);
    run_sim(&opts, &b, &lb);
    opts.seed = 43;
    run_sim(&opts, &c, &lc);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    assert_true(la != lc || memcmp(a, c, la) != 0);
    /* with the same visitors, a shorter run is a prefix of a longer one */
    free(c);
    opts = (bsp_sim_opts){.events = 5000, .seed = 42, .visitors = 1000};
    run_sim(&opts, &c, &lc);
    assert_true(lc < la);
    assert_memory_equal(a, c, lc);
    free(a);
    free(b);
    free(c);
}

typedef struct tally {
    size_t lines, track, page, identify, orders, views, searches, adds;
} tally;

static void check_order(const cJSON *props) {
    double sum = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, json_get_array(props, "products")) {
        sum += json_get_number(p, "price", 0) * json_get_number(p, "quantity", 0);
        assert_non_null(json_get_string(p, "product_id"));
    }
    assert_true(sum > 0);
    assert_true(fabs(sum - json_get_number(props, "revenue", -1)) < 0.005);
    assert_non_null(json_get_string(props, "order_id"));
}

/* Parses one line as the server would (route = its type). */
static void check_line(const char *line, size_t len, tally *t) {
    bsp_error err;
    cJSON *msg = json_parse(line, len, BSP_JSON_MAX_DEPTH, &err);
    assert_non_null(msg);
    bsp_event_type type;
    assert_true(event_type_from_string(json_get_string(msg, "type"), &type));
    bsp_event_list list = {0};
    if (event_parse_body(line, len, type, 0, &list, &err) != BSP_OK)
        fail_msg("line %zu rejected: %s at %s: %.*s", t->lines + 1, err.message, err.at, (int)len,
                 line);
    assert_int_equal(list.count, 1);
    assert_int_equal(list.reject_count, 0);
    const bsp_event *ev = &list.items[0];
    assert_non_null(ev->anonymous_id);
    assert_non_null(json_path(ev->json, "context.location.country"));
    assert_non_null(json_path(ev->json, "context.page.url"));
    assert_non_null(json_path(ev->json, "context.userAgent"));
    char want[64];
    snprintf(want, sizeof want, "sim-7-%zu", t->lines + 1);
    assert_string_equal(ev->message_id, want);
    if (type == BSP_EV_TRACK) t->track++;
    if (type == BSP_EV_PAGE) t->page++;
    if (type == BSP_EV_IDENTIFY) {
        t->identify++;
        assert_non_null(ev->user_id);
        assert_non_null(json_path(ev->json, "traits.plan"));
    }
    if (ev->name && strcmp(ev->name, "Order Completed") == 0) {
        t->orders++;
        assert_non_null(ev->user_id);
        check_order(json_get_object(ev->json, "properties"));
    }
    if (ev->name && strcmp(ev->name, "Product Viewed") == 0) t->views++;
    if (ev->name && strcmp(ev->name, "Products Searched") == 0) t->searches++;
    if (ev->name && strcmp(ev->name, "Product Added") == 0) t->adds++;
    event_list_free(&list);
    cJSON_Delete(msg);
    t->lines++;
}

static void test_events_valid(void **state) {
    (void)state;
    bsp_sim_opts opts = {.events = 20000, .seed = 7, .products = 500};
    char *text;
    size_t len;
    run_sim(&opts, &text, &len);
    assert_int_equal(count_lines(text, len), 20000);
    tally t = {0};
    for (char *p = text, *nl; (nl = memchr(p, '\n', len - (size_t)(p - text))); p = nl + 1)
        check_line(p, (size_t)(nl - p), &t);
    print_message("20000 events: %zu page, %zu track (%zu views, %zu searches, %zu adds, %zu "
                  "orders), %zu identify\n",
                  t.page, t.track, t.views, t.searches, t.adds, t.orders, t.identify);
    assert_int_equal(t.lines, 20000);
    assert_true(t.views > 2000);
    assert_true(t.searches > 100);
    assert_true(t.adds > 100);
    assert_true(t.orders > 20);
    assert_true(t.identify > 20);
    free(text);
}

/* Distinct anonymousIds in a run's text. */
static size_t distinct_visitors(const char *text, size_t len) {
    size_t cap = 1 << 16, n = 0;
    char(*seen)[24] = calloc(cap, sizeof *seen);
    assert_non_null(seen);
    const char *key = "\"anonymousId\":\"";
    for (const char *p = text; (p = memmem(p, len - (size_t)(p - text), key, strlen(key)));) {
        p += strlen(key);
        const char *end = memchr(p, '"', len - (size_t)(p - text));
        assert_non_null(end);
        assert_true(end - p < 24);
        char id[24] = {0};
        memcpy(id, p, (size_t)(end - p));
        uint64_t h = 1469598103934665603ull;
        for (const char *c = id; *c; c++)
            h = (h ^ (unsigned char)*c) * 1099511628211ull;
        size_t i = h & (cap - 1);
        while (seen[i][0] && strcmp(seen[i], id) != 0)
            i = (i + 1) & (cap - 1);
        if (!seen[i][0]) {
            memcpy(seen[i], id, sizeof id);
            n++;
            assert_true(n < cap / 2);
        }
        p = end;
    }
    free(seen);
    return n;
}

/* Short visits of visitors arriving over one day reach many more distinct
 * visitors with the same events; the defaults are unchanged by the new
 * options (the same bytes as when they are spelled out). */
static void test_short_visits(void **state) {
    (void)state;
    bsp_sim_opts base = {
        .events = 40000, .seed = 7, .visitors = 10000}; /* check_line expects seed 7 */
    bsp_sim_opts spelled = base;
    spelled.arrival_days = 14;
    spelled.extra_actions = 6;
    spelled.extra_actions_set = true;
    bsp_sim_opts shortv = base;
    shortv.arrival_days = 1;
    shortv.extra_actions_set = true; /* 0 more actions: a landing page and one action */
    char *a, *b, *c;
    size_t la, lb, lc;
    run_sim(&base, &a, &la);
    run_sim(&spelled, &b, &lb);
    run_sim(&shortv, &c, &lc);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    assert_int_equal(count_lines(c, lc), 40000);
    size_t many = distinct_visitors(c, lc), few = distinct_visitors(a, la);
    print_message("40000 events over 10000 visitors: %zu distinct by default, %zu with short "
                  "visits arriving in one day\n",
                  few, many);
    assert_true(many > 9000);
    assert_true(many > 2 * few);
    tally t = {0};
    for (char *p = c, *nl; (nl = memchr(p, '\n', lc - (size_t)(p - c))); p = nl + 1)
        check_line(p, (size_t)(nl - p), &t);
    assert_int_equal(t.lines, 40000);
    free(a);
    free(b);
    free(c);
}

static void test_catalog(void **state) {
    (void)state;
    bsp_sim_opts opts = {.seed = 3, .products = 300, .catalog_only = true};
    char *text;
    size_t len;
    run_sim(&opts, &text, &len);
    assert_int_equal(count_lines(text, len), 300);
    size_t n = 0;
    for (char *p = text, *nl; (nl = memchr(p, '\n', len - (size_t)(p - text))); p = nl + 1, n++) {
        bsp_error err;
        cJSON *body = json_parse(p, (size_t)(nl - p), BSP_JSON_MAX_DEPTH, &err);
        assert_non_null(body);
        cJSON *norm = NULL;
        if (catalog_product_from_json(body, NULL, 0, &norm, &err) != BSP_OK)
            fail_msg("product rejected: %s at %s", err.message, err.at);
        assert_non_null(json_get_string(norm, "category"));
        assert_true(json_get_number(norm, "price", -1) > 0);
        cJSON_Delete(norm);
        cJSON_Delete(body);
    }
    assert_int_equal(n, 300);
    free(text);
}

static void test_speed(void **state) {
    (void)state;
    FILE *f = fopen("/dev/null", "w");
    assert_non_null(f);
    bsp_sim_opts opts = {.events = 1000000, .seed = 1};
    uint64_t t0 = bsp_mono_ns();
    assert_int_equal(sim_write(&opts, f), BSP_OK);
    double secs = (double)(bsp_mono_ns() - t0) / 1e9;
    fclose(f);
    print_message("sim: 1000000 events in %.2f s (%.0f events/s)\n", secs, 1e6 / secs);
}

static void test_bad_options(void **state) {
    (void)state;
    bsp_sim_opts opts = {.events = 10, .products = 2000000};
    FILE *f = fopen("/dev/null", "w");
    assert_non_null(f);
    assert_int_equal(sim_write(&opts, f), BSP_ETOOBIG);
    assert_int_equal(sim_write(NULL, f), BSP_EINVAL);
    fclose(f);
    /* a zero-event run writes nothing */
    opts = (bsp_sim_opts){.events = 0};
    char *text;
    size_t len;
    run_sim(&opts, &text, &len);
    assert_int_equal(len, 0);
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic), cmocka_unit_test(test_events_valid),
        cmocka_unit_test(test_catalog),       cmocka_unit_test(test_speed),
        cmocka_unit_test(test_short_visits),  cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
