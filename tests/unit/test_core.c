/* test_core.c - core/: the error table, ISO 8601 parsing and formatting,
 * buffers, option lookup, sizes and generated ids. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"

static void test_error_table(void **state) {
    (void)state;
    assert_string_equal(bsp_err_name(BSP_EPARSE), "bad_json");
    assert_int_equal(bsp_err_http_status(BSP_EPARSE), 400);
    assert_int_equal(bsp_err_http_status(BSP_EAUTH), 401);
    assert_int_equal(bsp_err_http_status(BSP_EFORBIDDEN), 403);
    assert_int_equal(bsp_err_http_status(BSP_ENOTFOUND), 404);
    assert_int_equal(bsp_err_http_status(BSP_EEXISTS), 409);
    assert_int_equal(bsp_err_http_status(BSP_ETOOBIG), 413);
    assert_int_equal(bsp_err_http_status(BSP_EMEDIA), 415);
    assert_int_equal(bsp_err_http_status(BSP_ETYPE), 422);
    assert_int_equal(bsp_err_http_status(BSP_EBUSY), 429);
    assert_int_equal(bsp_err_http_status(BSP_EUNAVAIL), 503);
    assert_string_equal(bsp_err_name((bsp_err)999), "internal");
    assert_int_equal(bsp_err_http_status((bsp_err)-1), 500);
    for (int e = 0; e < BSP_ERR_COUNT; e++)
        assert_non_null(bsp_err_name((bsp_err)e));
    bsp_error err;
    assert_int_equal(bsp_error_set(&err, BSP_ETYPE, "a.b", "bad %d", 7), BSP_ETYPE);
    assert_string_equal(err.message, "bad 7");
    assert_string_equal(err.at, "a.b");
    bsp_error_clear(&err);
    assert_int_equal(err.code, BSP_OK);
}

static void test_time_parse_forms(void **state) {
    (void)state;
    int64_t ms;
    assert_true(bsp_time_parse("1970-01-01T00:00:00Z", &ms));
    assert_int_equal(ms, 0);
    assert_true(bsp_time_parse("2024-01-02T03:04:05.678Z", &ms));
    assert_int_equal(ms, 1704164645678);
    assert_true(bsp_time_parse("2024-01-02T05:04:05.678+02:00", &ms));
    assert_int_equal(ms, 1704164645678);
    assert_true(bsp_time_parse("2024-01-01T22:04:05.678-0500", &ms));
    assert_int_equal(ms, 1704164645678);
    assert_true(bsp_time_parse("2010-12-01 08:26:00", &ms)); /* Online Retail, UTC */
    assert_int_equal(ms, 1291191960000);
    assert_true(bsp_time_parse("2024-01-02", &ms));
    assert_int_equal(ms, 1704153600000);
    assert_true(bsp_time_parse("2024-01-02T03:04:05.6789123Z", &ms)); /* extra digits cut */
    assert_int_equal(ms % 1000, 678);
    const char *bad[] = {"",
                         "2024",
                         "2024-13-01",
                         "2024-01-32",
                         "2024-01-02T25:00:00Z",
                         "2024-01-02T03:04:05.Z",
                         "2024-01-02T03:04:05Zjunk",
                         "yesterday",
                         "2024-1-2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(bsp_time_parse(bad[i], &ms));
    assert_false(bsp_time_parse(NULL, &ms));
}

/* bsp_time_is_iso says exactly which times bsp_time_format's text reads
 * back as themselves, at both ends of the 4-digit years. */
static void test_time_is_iso_at_the_ends(void **state) {
    (void)state;
    static const int64_t ends[] = {-62167219200000LL, 253402300799999LL};
    for (size_t e = 0; e < 2; e++)
        for (int64_t d = -2; d <= 2; d++) {
            int64_t ms = ends[e] + d, back = 0;
            char text[40];
            bsp_time_format(ms, text, sizeof text);
            bool round_trip = bsp_time_parse(text, &back) && back == ms;
            assert_int_equal(bsp_time_is_iso(ms), round_trip);
        }
    assert_true(bsp_time_is_iso(0));
}

static void test_time_format_matches_libc_and_round_trips(void **state) {
    (void)state;
    char mine[40], libc[40];
    for (int64_t ms = -86400000LL * 700000; ms < 86400000LL * 2900000;
         ms += 86400000LL * 13 + 3600123 + 977) {
        bsp_time_format(ms, mine, sizeof mine);
        time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        if (tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) continue;
        snprintf(libc, sizeof libc, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(ms - (int64_t)secs * 1000));
        assert_string_equal(mine, libc);
        int64_t back;
        assert_true(bsp_time_parse(mine, &back));
        assert_true(back == ms);
    }
    bsp_time_format(-1, mine, sizeof mine);
    assert_string_equal(mine, "1969-12-31T23:59:59.999Z");
}

/* bsp_grow: the first capacity, no move while there is room, doubling with
 * the contents kept, and a size that cannot be allocated refused with the
 * array untouched. */
static void test_grow_array(void **state) {
    (void)state;
    uint32_t *v = NULL;
    size_t n = 0, cap = 0;
    for (uint32_t i = 0; i < 1000; i++) {
        size_t before = cap;
        uint32_t *grown = bsp_grow(v, &cap, n, sizeof *v, 16);
        assert_non_null(grown);
        if (i < 16) assert_int_equal(cap, 16);
        if (n < before) { /* room: neither moved nor grown */
            assert_ptr_equal(grown, v);
            assert_int_equal(cap, before);
        }
        v = grown;
        v[n++] = i;
    }
    assert_int_equal(cap, 1024);
    for (uint32_t i = 0; i < 1000; i++)
        assert_int_equal(v[i], i);
    size_t huge = SIZE_MAX / 2 + 1;
    assert_null(bsp_grow(v, &huge, huge, sizeof *v, 16));
    assert_int_equal(huge, SIZE_MAX / 2 + 1);
    assert_int_equal(v[999], 999);
    free(v);
}

static void test_buf_grows_and_stays_terminated(void **state) {
    (void)state;
    bsp_buf b = {0};
    for (int i = 0; i < 1000; i++)
        assert_int_equal(bsp_buf_puts(&b, "ab"), BSP_OK);
    assert_int_equal(b.len, 2000);
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(bsp_buf_printf(&b, "%d-%s", 42, "x"), BSP_OK);
    assert_string_equal(b.data + 2000, "42-x");
    bsp_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(bsp_buf_append(&b, "", 0), BSP_OK);
    bsp_buf_free(&b);
    assert_null(b.data);
}

static void test_options_and_sizes(void **state) {
    (void)state;
    setenv("BSP_TEST_OPT", "from-env", 1);
    assert_string_equal(bsp_opt("flag", "BSP_TEST_OPT", "d"), "flag");
    assert_string_equal(bsp_opt(NULL, "BSP_TEST_OPT", "d"), "from-env");
    setenv("BSP_TEST_OPT", "", 1);
    assert_string_equal(bsp_opt(NULL, "BSP_TEST_OPT", "d"), "d");
    unsetenv("BSP_TEST_OPT");
    uint64_t v;
    assert_true(bsp_parse_size("20000", &v));
    assert_int_equal(v, 20000);
    assert_true(bsp_parse_size("1M", &v));
    assert_int_equal(v, 1000000);
    assert_true(bsp_parse_size("3k", &v));
    assert_int_equal(v, 3000);
    assert_false(bsp_parse_size("", &v));
    assert_false(bsp_parse_size("12x", &v));
    assert_false(bsp_parse_size("M", &v));
    assert_false(bsp_parse_size(NULL, &v));
}

static void test_generated_ids(void **state) {
    (void)state;
    char a[33], b[33], hex[65];
    bsp_unique_hex(a);
    bsp_unique_hex(b);
    assert_int_equal(strlen(a), 32);
    assert_string_not_equal(a, b);
    for (const char *p = a; *p; p++)
        assert_non_null(strchr("0123456789abcdef", *p));
    assert_int_equal(bsp_random_hex(hex, 32), BSP_OK);
    assert_int_equal(strlen(hex), 64);
    assert_int_equal(bsp_random_hex(hex, 65), BSP_EINVAL);
    uint8_t h1[16], h2[16];
    bsp_hash128("x", 1, h1);
    bsp_hash128("x", 1, h2);
    assert_memory_equal(h1, h2, 16);
    assert_true(bsp_hash64("a", 1) != bsp_hash64("b", 1));
}

/* A point lets `skip` calls pass, fails `fail`, then passes again; the
 * others stay disarmed; disarming forgets the count. */
static void test_fault_points(void **state) {
    (void)state;
    assert_false(bsp_fault_hit(BSP_FAULT_WAL_WRITE)); /* nothing armed */
    bsp_fault_arm(BSP_FAULT_WAL_WRITE, 2, 2);
    bool seen[6];
    for (int i = 0; i < 6; i++)
        seen[i] = bsp_fault_hit(BSP_FAULT_WAL_WRITE);
    assert_false(seen[0] || seen[1] || seen[4] || seen[5]);
    assert_true(seen[2] && seen[3]);
    assert_int_equal(bsp_fault_fired(BSP_FAULT_WAL_WRITE), 2);
    assert_false(bsp_fault_hit(BSP_FAULT_WAL_SYNC));
    assert_false(bsp_fault_hit(BSP_FAULT_STORE_COMMIT));
    assert_false(bsp_fault_hit(BSP_FAULT_POINTS)); /* out of range */
    bsp_fault_arm(BSP_FAULT_STORE_COMMIT, 0, 1);
    bsp_fault_disarm_all();
    assert_false(bsp_fault_hit(BSP_FAULT_STORE_COMMIT));
    assert_int_equal(bsp_fault_fired(BSP_FAULT_WAL_WRITE), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_time_parse_forms),
        cmocka_unit_test(test_time_is_iso_at_the_ends),
        cmocka_unit_test(test_time_format_matches_libc_and_round_trips),
        cmocka_unit_test(test_grow_array),
        cmocka_unit_test(test_buf_grows_and_stays_terminated),
        cmocka_unit_test(test_options_and_sizes),
        cmocka_unit_test(test_generated_ids),
        cmocka_unit_test(test_fault_points),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
