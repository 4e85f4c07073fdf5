/* test_rfm.c - RFM scores: quintiles checked by hand on small populations
 * (distinct values, ties, order independence, tiny n), the group rule
 * table, and a run over a real store: sections rfm.* on the profiles, the
 * automatic segments rfm_<group> with their members index, no rewrite when
 * nothing changed, and a buyer moving from one group to another. */
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

#include "testutil.h"

#include "ingest/ingest.h"
#include "json/json.h"
#include "segment/segment.h"

/* --- quintiles ------------------------------------------------------------ */

static void check_scores(const double *v, size_t n, const uint8_t *want) {
    uint8_t got[32];
    assert_int_equal(rfm_quintiles(v, n, got), BSP_OK);
    for (size_t i = 0; i < n; i++) {
        if (got[i] != want[i]) fail_msg("value %g: score %u, want %u", v[i], got[i], want[i]);
    }
}

static void test_quintiles_distinct(void **state) {
    (void)state;
    /* 1 + floor(5 * below / 10): two values a quintile. */
    const double v[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    const uint8_t want[] = {1, 1, 2, 2, 3, 3, 4, 4, 5, 5};
    check_scores(v, 10, want);
    /* five values: one a quintile, in any order */
    const double five[] = {50, 10, 40, 20, 30};
    const uint8_t want5[] = {5, 1, 4, 2, 3};
    check_scores(five, 5, want5);
}

static void test_quintiles_ties_share_the_lowest_rank(void **state) {
    (void)state;
    /* Four 1s have nobody below them: all score 1. The 2 has 4 below:
     * 1 + 20/10 = 3. */
    const double v[] = {1, 1, 1, 1, 2, 3, 4, 5, 6, 7};
    const uint8_t want[] = {1, 1, 1, 1, 3, 3, 4, 4, 5, 5};
    check_scores(v, 10, want);
    /* The same values shuffled get the same scores value for value. */
    const double shuffled[] = {6, 1, 4, 1, 7, 2, 1, 5, 3, 1};
    const uint8_t want_sh[] = {5, 1, 4, 1, 5, 3, 1, 4, 3, 1};
    check_scores(shuffled, 10, want_sh);
    /* A big tie at the top stops below 5: the three 9s have 3 below them,
     * 1 + 15/6 = 3. */
    const double top[] = {1, 2, 3, 9, 9, 9};
    const uint8_t want_top[] = {1, 1, 2, 3, 3, 3};
    check_scores(top, 6, want_top);
    const double same[] = {4, 4, 4};
    const uint8_t want_same[] = {1, 1, 1};
    check_scores(same, 3, want_same);
}

static void test_quintiles_small_n(void **state) {
    (void)state;
    const double one[] = {42};
    const uint8_t want1[] = {1};
    check_scores(one, 1, want1);
    const double three[] = {30, 10, 20}; /* below 2, 0, 1 -> 1 + 10/3, 1, 1 + 5/3 */
    const uint8_t want3[] = {4, 1, 2};
    check_scores(three, 3, want3);
    assert_int_equal(rfm_quintiles(NULL, 0, NULL), BSP_OK);
}

/* --- groups ------------------------------------------------------------------- */

static void expect_group(int r, int f, int m, const char *name) {
    const char *got = rfm_group_name(rfm_group_of(r, f, m));
    if (strcmp(got, name) != 0) fail_msg("R%d F%d M%d: %s, want %s", r, f, m, got, name);
}

static void test_group_rules(void **state) {
    (void)state;
    expect_group(5, 5, 5, "champions");
    expect_group(4, 4, 3, "champions"); /* FM = ceil(3.5) = 4 */
    expect_group(5, 1, 5, "new");       /* one order, however big */
    expect_group(4, 1, 1, "new");
    expect_group(3, 3, 3, "loyal");
    expect_group(4, 3, 2, "loyal");               /* FM 3 */
    expect_group(5, 2, 2, "potential_loyalists"); /* recent, F > 1, FM 2 */
    expect_group(3, 1, 1, "potential_loyalists"); /* R 3 and F 1 is not "new" */
    expect_group(1, 5, 5, "cant_lose");
    expect_group(1, 4, 3, "cant_lose");
    expect_group(2, 5, 5, "at_risk");
    expect_group(1, 3, 2, "at_risk");
    expect_group(2, 2, 2, "hibernating");
    expect_group(2, 1, 3, "hibernating"); /* FM 2 */
    expect_group(1, 1, 1, "lost");
    expect_group(1, 2, 2, "lost");
    /* every score has exactly one group, and every group occurs */
    int seen[RFM_GROUP_COUNT] = {0};
    for (int r = 1; r <= 5; r++)
        for (int f = 1; f <= 5; f++)
            for (int m = 1; m <= 5; m++) {
                rfm_group g = rfm_group_of(r, f, m);
                assert_true(g < RFM_GROUP_COUNT);
                seen[g]++;
            }
    for (int g = 0; g < RFM_GROUP_COUNT; g++)
        assert_true(seen[g] > 0);
    assert_null(rfm_group_name(RFM_GROUP_COUNT));
}

static void test_score_buyers(void **state) {
    (void)state;
    const rfm_buyer b[] = {{1, 1, 10}, {10, 2, 50}, {40, 3, 100}, {100, 4, 400}, {200, 5, 1000}};
    rfm_score s[5];
    assert_int_equal(rfm_score_buyers(b, 5, s), BSP_OK);
    const char *want[] = {"new", "potential_loyalists", "loyal", "at_risk", "cant_lose"};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(s[i].r, 5 - i);
        assert_int_equal(s[i].f, i + 1);
        assert_int_equal(s[i].m, i + 1);
        assert_string_equal(rfm_group_name(s[i].group), want[i]);
    }
    /* recency counts whole days: 1.2 and 1.9 days tie */
    const rfm_buyer t[] = {{1.2, 1, 1}, {1.9, 1, 1}, {5, 1, 1}};
    assert_int_equal(rfm_score_buyers(t, 3, s), BSP_OK);
    assert_int_equal(s[0].r, s[1].r);
    assert_true(s[2].r < s[0].r);
}

/* --- on a store ------------------------------------------------------------------ */

typedef struct fixture {
    char dir[64];
    bsp_store *st;
    bsp_ingest *ing;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    test_temp_dir(f->dir, "rfm");
    bsp_store_opts so = {.no_sync = true};
    assert_int_equal(store_open(f->dir, &so, &f->st), BSP_OK);
    assert_int_equal(ingest_start(f->st, NULL, &f->ing), BSP_OK);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    ingest_stop(f->ing);
    store_close(f->st);
    test_temp_dir_remove(f->dir);
    free(f);
    return 0;
}

#define REFERENCE "2024-01-31T00:00:00Z"

static void send(fixture *f, const char *batch) {
    test_send_batch(f->ing, batch);
}

/* n orders of amount each by user, the last on day (of January 2024). */
static int message_counter;

static void orders(fixture *f, const char *user, int n, double amount, int day) {
    char batch[4096] = "{\"batch\":[";
    size_t len = strlen(batch);
    for (int i = 0; i < n; i++)
        len +=
            (size_t)snprintf(batch + len, sizeof batch - len,
                             "%s{\"type\":\"track\",\"event\":\"Order Completed\",\"userId\":"
                             "\"%s\",\"messageId\":\"%s-%d\",\"timestamp\":\"2024-01-%02dT"
                             "12:00:00Z\",\"properties\":{\"order_id\":\"%s%d\",\"revenue\":%g}}",
                             i ? "," : "", user, user, message_counter++,
                             day - (n - 1 - i) > 0 ? day - (n - 1 - i) : 1, user, i, amount);
    snprintf(batch + len, sizeof batch - len, "]}");
    send(f, batch);
}

static bsp_profile *load(fixture *f, const char *user) {
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    bsp_txn *txn;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    uint64_t pid;
    assert_int_equal(ingest_resolve(txn, user, &pid), BSP_OK);
    bsp_slice raw;
    assert_int_equal(store_profile_get(txn, pid, &raw), BSP_OK);
    bsp_profile *p;
    assert_int_equal(profile_from_json(raw.data, raw.len, &p), BSP_OK);
    store_txn_abort(txn);
    return p;
}

static void expect_rfm(fixture *f, const char *user, const char *score, const char *group) {
    bsp_profile *p = load(f, user);
    const cJSON *rfm = profile_section(p, "rfm");
    assert_non_null(rfm);
    assert_string_equal(json_get_string(rfm, "score"), score);
    assert_string_equal(json_get_string(rfm, "segment"), group);
    assert_int_equal((int)json_get_number(rfm, "recency", 0), score[0] - '0');
    assert_int_equal((int)json_get_number(rfm, "frequency", 0), score[1] - '0');
    assert_int_equal((int)json_get_number(rfm, "monetary", 0), score[2] - '0');
    char seg[64];
    snprintf(seg, sizeof seg, "rfm_%s", group);
    assert_true(profile_in_segment(p, seg));
    size_t rfm_count = 0;
    for (size_t i = 0; i < profile_segment_count(p); i++)
        rfm_count += strncmp(profile_segment_at(p, i), "rfm_", 4) == 0;
    assert_int_equal(rfm_count, 1);
    bsp_txn *txn;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    assert_true(store_member_has(txn, seg, profile_pid(p)));
    store_txn_abort(txn);
    profile_free(p);
}

static uint64_t members(fixture *f, const char *seg) {
    bsp_txn *txn;
    uint64_t n = 0;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    assert_int_equal(store_members_count(txn, seg, &n), BSP_OK);
    store_txn_abort(txn);
    return n;
}

static rfm_summary run(fixture *f) {
    rfm_opts o = {0};
    assert_true(bsp_time_parse(REFERENCE, &o.reference_ms));
    rfm_summary s;
    assert_int_equal(rfm_run(f->ing, f->st, &o, &s), BSP_OK);
    return s;
}

static void test_run_on_store(void **state) {
    fixture *f = *state;
    /* last orders 1, 10, 40 (Dec 22), ... days before the reference */
    orders(f, "a", 1, 10, 30);
    orders(f, "b", 2, 25, 21);
    orders(f, "c", 3, 33.5, 1);
    send(f, "{\"batch\":[{\"type\":\"track\",\"event\":\"Order Completed\",\"userId\":\"d\","
            "\"messageId\":\"d1\",\"timestamp\":\"2023-10-23T12:00:00Z\",\"properties\":"
            "{\"revenue\":400}},{\"type\":\"track\",\"event\":\"Order Completed\",\"userId\":\"d\","
            "\"messageId\":\"d2\",\"timestamp\":\"2023-10-22T12:00:00Z\",\"properties\":"
            "{\"revenue\":0}},{\"type\":\"track\",\"event\":\"Order Completed\",\"userId\":\"d\","
            "\"messageId\":\"d3\",\"timestamp\":\"2023-10-21T12:00:00Z\",\"properties\":"
            "{\"revenue\":0}},{\"type\":\"track\",\"event\":\"Order Completed\",\"userId\":\"d\","
            "\"messageId\":\"d4\",\"timestamp\":\"2023-10-20T12:00:00Z\",\"properties\":"
            "{\"revenue\":0}},"
            "{\"type\":\"page\",\"anonymousId\":\"visitor\",\"messageId\":\"v1\","
            "\"timestamp\":\"2024-01-30T12:00:00Z\"}]}");
    char batch[2048] = "{\"batch\":[";
    for (int i = 0; i < 5; i++)
        snprintf(batch + strlen(batch), sizeof batch - strlen(batch),
                 "%s{\"type\":\"track\",\"event\":\"Order Completed\",\"userId\":\"e\","
                 "\"messageId\":\"e%d\",\"timestamp\":\"2023-07-%02dT12:00:00Z\","
                 "\"properties\":{\"revenue\":200}}",
                 i ? "," : "", i, 10 + i);
    strcat(batch, "]}");
    send(f, batch);

    rfm_summary s = run(f);
    assert_int_equal(s.buyers, 5);
    assert_int_equal(s.written, 5);
    expect_rfm(f, "a", "511", "new");
    expect_rfm(f, "b", "422", "potential_loyalists");
    expect_rfm(f, "c", "333", "loyal");
    expect_rfm(f, "d", "244", "at_risk");
    expect_rfm(f, "e", "155", "cant_lose");
    assert_int_equal(s.groups[RFM_NEW].size, 1);
    assert_int_equal(s.groups[RFM_CHAMPIONS].size, 0);
    assert_int_equal(members(f, "rfm_new"), 1);
    assert_int_equal(members(f, "rfm_cant_lose"), 1);
    bsp_profile *v = load(f, "visitor");
    assert_null(profile_section(v, "rfm"));
    assert_int_equal(profile_segment_count(v), 0);
    profile_free(v);
    /* the definitions exist, as automatic segments */
    bsp_txn *txn;
    bsp_slice def;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    assert_int_equal(store_config_get(txn, "segment", "rfm_champions", &def), BSP_OK);
    assert_non_null(memmem(def.data, def.len, "\"automatic\"", 11));
    store_txn_abort(txn);

    /* nothing changed: nothing rewritten */
    assert_int_equal(run(f).written, 0);

    /* a buys four more times, big: a and e tie on 5 orders (3 below them:
     * F 4 both), and the others move down a quintile of F and M. b now has
     * the fewest orders: R 4 and F 1 make it "new" by the rules. */
    orders(f, "a", 4, 1000, 30);
    s = run(f);
    assert_int_equal(s.written, 5);
    expect_rfm(f, "a", "545", "champions");
    expect_rfm(f, "b", "411", "new");
    expect_rfm(f, "c", "322", "potential_loyalists");
    expect_rfm(f, "d", "233", "at_risk");
    expect_rfm(f, "e", "144", "cant_lose");
    assert_int_equal(members(f, "rfm_new"), 1);
    assert_int_equal(members(f, "rfm_champions"), 1);
    assert_int_equal(members(f, "rfm_loyal"), 0);
}

static void test_run_on_empty_store(void **state) {
    fixture *f = *state;
    rfm_summary s;
    assert_int_equal(rfm_run(f->ing, f->st, NULL, &s), BSP_OK);
    assert_int_equal(s.buyers, 0);
    assert_int_equal(s.written, 0);
}

static void test_schedule_starts_and_stops(void **state) {
    fixture *f = *state;
    rfm_schedule *sch;
    assert_int_equal(rfm_schedule_start(f->ing, f->st, NULL, 0, &sch), BSP_OK);
    assert_null(sch);
    orders(f, "a", 1, 10, 30);
    assert_int_equal(rfm_schedule_start(f->ing, f->st, NULL, 50, &sch), BSP_OK);
    assert_non_null(sch);
    bsp_profile *p = NULL;
    for (int i = 0; i < 200; i++) { /* the first run comes after 50 ms */
        usleep(10000);
        p = load(f, "a");
        if (profile_section(p, "rfm")) break;
        profile_free(p);
        p = NULL;
    }
    rfm_schedule_stop(sch);
    assert_non_null(p);
    profile_free(p);
    rfm_schedule_stop(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quintiles_distinct),
        cmocka_unit_test(test_quintiles_ties_share_the_lowest_rank),
        cmocka_unit_test(test_quintiles_small_n),
        cmocka_unit_test(test_group_rules),
        cmocka_unit_test(test_score_buyers),
        cmocka_unit_test_setup_teardown(test_run_on_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_on_empty_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schedule_starts_and_stops, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
