/* test_import.c - unit tests of src/import: CSV splitting, the line reader
 * (plain and zstd), the Online Retail row parser, and the whole import of
 * small hand-written files through a real store + ingest pipeline, read back
 * through the store and profile APIs. When the UCI Online Retail file is
 * present in ../shared/data (relative to the project root, where the tests
 * run), it is imported too and checked against its known facts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "import/import.h"
#include "json/json.h"
#include "profile/profile.h"
#include "sim/sim.h"
#include "store/store.h"

#define REAL_DATA "../shared/data/online-retail/online_retail.csv.zst"

/* --- helpers ------------------------------------------------------------- */

static char tmpdir[] = "/tmp/bsp-import-test-XXXXXX";

static int setup_dir(void **state) {
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *name, const void *data, size_t len, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_zst(const char *name, const char *text, char *path, size_t cap) {
    size_t len = strlen(text), bound = ZSTD_compressBound(len);
    void *z = malloc(bound);
    assert_non_null(z);
    size_t n = ZSTD_compress(z, bound, text, len, 3);
    assert_false(ZSTD_isError(n));
    write_file(name, z, n, path, cap);
    free(z);
}

static int split(const char *text, char **f, char *buf) {
    size_t len = strlen(text);
    memcpy(buf, text, len + 1);
    return csv_split(buf, len, f, BSP_CSV_MAX_FIELDS);
}

/* --- csv_split ----------------------------------------------------------- */

static void test_csv_plain(void **state) {
    (void)state;
    char buf[256], *f[BSP_CSV_MAX_FIELDS];
    assert_int_equal(split("a,b,,c", f, buf), 4);
    assert_string_equal(f[0], "a");
    assert_string_equal(f[1], "b");
    assert_string_equal(f[2], "");
    assert_string_equal(f[3], "c");
    assert_int_equal(split("", f, buf), 1);
    assert_string_equal(f[0], "");
    assert_int_equal(split("x,", f, buf), 2);
    assert_string_equal(f[1], "");
}

static void test_csv_quotes(void **state) {
    (void)state;
    char buf[256], *f[BSP_CSV_MAX_FIELDS];
    assert_int_equal(split("1,\"TEST LAMP,METAL SHADE\",2", f, buf), 3);
    assert_string_equal(f[1], "TEST LAMP,METAL SHADE");
    assert_string_equal(f[2], "2");
    assert_int_equal(split("\"PHOTO FRAME 5\"\" SQUARE \",x", f, buf), 2);
    assert_string_equal(f[0], "PHOTO FRAME 5\" SQUARE ");
    assert_int_equal(split("\"\",\"\"\"\"", f, buf), 2);
    assert_string_equal(f[0], "");
    assert_string_equal(f[1], "\"");
    /* a quote inside an unquoted field is literal */
    assert_int_equal(split("ab\"c,d", f, buf), 2);
    assert_string_equal(f[0], "ab\"c");
}

static void test_csv_broken(void **state) {
    (void)state;
    char buf[256], *f[BSP_CSV_MAX_FIELDS];
    assert_int_equal(split("\"unterminated,a", f, buf), -1);
    assert_int_equal(split("\"ab\"c,d", f, buf), -1);
    assert_int_equal(split("a,\"", f, buf), -1);
    char *two[2];
    strcpy(buf, "a,b,c");
    assert_int_equal(csv_split(buf, 5, two, 2), -1);
}

/* --- reader -------------------------------------------------------------- */

static void expect_lines(const char *path) {
    bsp_reader *r;
    assert_int_equal(reader_open(path, &r), BSP_OK);
    size_t len;
    bool too_long;
    const char *l = reader_line(r, &len, &too_long);
    assert_non_null(l);
    assert_string_equal(l, "first");
    assert_int_equal(len, 5);
    assert_string_equal(reader_line(r, &len, &too_long), "second");
    assert_string_equal(reader_line(r, &len, &too_long), "");
    assert_string_equal(reader_line(r, &len, &too_long), "last no newline");
    assert_null(reader_line(r, &len, &too_long));
    assert_int_equal(reader_error(r), BSP_OK);
    assert_true(reader_bytes_in(r) > 0);
    assert_int_equal(reader_bytes_in(r), reader_size(r));
    reader_close(r);
}

static const char *const LINES = "first\r\nsecond\n\nlast no newline";

static void test_reader_plain(void **state) {
    (void)state;
    char path[512];
    write_file("plain.txt", LINES, strlen(LINES), path, sizeof path);
    expect_lines(path);
}

static void test_reader_zstd(void **state) {
    (void)state;
    char path[512];
    write_zst("lines.zst", LINES, path, sizeof path);
    expect_lines(path);
    /* detected by the magic number too */
    write_zst("lines.bin", LINES, path, sizeof path);
    expect_lines(path);
}

static void test_reader_long_line(void **state) {
    (void)state;
    size_t n = BSP_CSV_MAX_LINE + 1000;
    char *text = malloc(n + 16);
    assert_non_null(text);
    memset(text, 'x', n);
    strcpy(text + n, "\nok\n");
    char path[512];
    write_zst("long.zst", text, path, sizeof path);
    free(text);
    bsp_reader *r;
    assert_int_equal(reader_open(path, &r), BSP_OK);
    size_t len;
    bool too_long;
    assert_non_null(reader_line(r, &len, &too_long));
    assert_true(too_long);
    assert_int_equal(len, BSP_CSV_MAX_LINE);
    assert_string_equal(reader_line(r, &len, &too_long), "ok");
    assert_false(too_long);
    assert_null(reader_line(r, &len, &too_long));
    reader_close(r);
}

static void test_reader_truncated_zstd(void **state) {
    (void)state;
    const char *text = "some text that compresses into a frame we then cut short\n";
    char path[512];
    write_zst("cut.zst", text, path, sizeof path);
    assert_int_equal(truncate(path, 12), 0);
    bsp_reader *r;
    assert_int_equal(reader_open(path, &r), BSP_OK);
    size_t len;
    bool too_long;
    while (reader_line(r, &len, &too_long)) {
    }
    assert_int_equal(reader_error(r), BSP_EPARSE);
    reader_close(r);
    assert_int_equal(reader_open("/nonexistent/file.csv", &r), BSP_ENOTFOUND);
}

/* --- Online Retail rows -------------------------------------------------- */

static bsp_err parse_row(const char *text, char *buf, bsp_or_row *row, bsp_error *e) {
    size_t len = strlen(text);
    memcpy(buf, text, len + 1);
    return online_retail_parse_row(buf, len, row, e);
}

static void test_row_parse(void **state) {
    (void)state;
    char buf[512];
    bsp_or_row row;
    bsp_error e;
    assert_int_equal(parse_row("900001,10001A,BLUE SPOTTY TEST MUG ,6,2010-12-01 08:26:00,2.55,"
                               "90001.0,United Kingdom",
                               buf, &row, &e),
                     BSP_OK);
    assert_string_equal(row.invoice, "900001");
    assert_string_equal(row.stock_code, "10001A");
    assert_string_equal(row.description, "BLUE SPOTTY TEST MUG");
    assert_string_equal(row.customer, "90001");
    assert_string_equal(row.country, "United Kingdom");
    assert_int_equal(row.quantity, 6);
    assert_int_equal(row.unit_price, 25500);
    assert_int_equal(row.ts_ms, 1291191960000LL);
    assert_int_equal(
        parse_row("A900005,B,Adjust bad debt,1,2011-08-12 14:50:00,-1062.06,,UK", buf, &row, &e),
        BSP_OK);
    assert_int_equal(row.unit_price, -10620600);
    assert_string_equal(row.customer, "");
    assert_int_equal(parse_row("1,2,3,-4,2011-01-01 00:00:00,0.001,,x", buf, &row, &e), BSP_OK);
    assert_int_equal(row.unit_price, 10);
    assert_int_equal(row.quantity, -4);
}

static void test_row_bad(void **state) {
    (void)state;
    char buf[512];
    bsp_or_row row;
    bsp_error e;
    const char *bad[] = {
        "1,2,3,abc,2011-01-01 00:00:00,1.0,,x",
        "1,2,3,4,2011-13-01 00:00:00,1.0,,x",
        "1,2,3,4,2011-01-01 00:00:00,1.2.3,,x",
        "1,2,3,4,2011-01-01 00:00:00,1.23456,,x",
        "1,2,3,4,2011-01-01 00:00:00,,,x",
        "1,2,3,4,2011-01-01 00:00:00,1",
        ",2,3,4,2011-01-01 00:00:00,1,,x",
        "1,2,\"3,4,2011-01-01 00:00:00,1,,x",
        "1,2,3,99999999999,2011-01-01 00:00:00,1,,x",
        "1,2,3,4,2011-01-01 00:00:00,1e5,,x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        bsp_error_clear(&e);
        assert_int_equal(parse_row(bad[i], buf, &row, &e), BSP_EPARSE);
        assert_true(e.message[0] != '\0');
    }
    assert_true(online_retail_is_product_code("10001A"));
    assert_true(online_retail_is_product_code("22041"));
    assert_false(online_retail_is_product_code("POST"));
    assert_false(online_retail_is_product_code("C2"));
    assert_false(online_retail_is_product_code("gift_0001_20"));
    assert_false(online_retail_is_product_code("1234"));
    assert_false(online_retail_is_product_code("12345 "));
    const char *h1 = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,"
                     "Country";
    const char *h2 = "\xEF\xBB\xBFInvoice,StockCode,Description,Quantity,InvoiceDate,Price,"
                     "Customer ID,Country";
    assert_true(online_retail_is_header(h1, strlen(h1)));
    assert_true(online_retail_is_header(h2, strlen(h2)));
    assert_false(online_retail_is_header("a,b,c", 5));
}

/* --- end to end through store + ingest ----------------------------------- */

typedef struct pipeline {
    bsp_store *st;
    bsp_ingest *ing;
} pipeline;

static void pipeline_open(pipeline *p, const char *name) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    assert_int_equal(mkdir(dir, 0700), 0);
    bsp_store_opts so = {.map_size = 1ull << 30, .no_sync = true};
    assert_int_equal(store_open(dir, &so, &p->st), BSP_OK);
    assert_int_equal(ingest_start(p->st, NULL, &p->ing), BSP_OK);
}

static void pipeline_close(pipeline *p) {
    ingest_stop(p->ing);
    store_close(p->st);
}

/* The public form of the profile id resolves to; NULL if none. */
static cJSON *profile_of(bsp_store *st, char kind, const char *id) {
    bsp_txn *txn;
    assert_int_equal(store_txn_begin(st, false, &txn), BSP_OK);
    uint64_t pid;
    cJSON *pub = NULL;
    if (store_id_get(txn, kind, id, &pid) == BSP_OK) {
        bsp_slice s;
        assert_int_equal(store_profile_get(txn, pid, &s), BSP_OK);
        bsp_profile *p;
        assert_int_equal(profile_from_json(s.data, s.len, &p), BSP_OK);
        pub = profile_public_json(p);
        profile_free(p);
    }
    store_txn_abort(txn);
    return pub;
}

static double revenue_of(bsp_store *st, char kind, const char *id) {
    cJSON *pub = profile_of(st, kind, id);
    assert_non_null(pub);
    cJSON *rev = json_path(pub, "computed.revenue");
    assert_true(cJSON_IsNumber(rev));
    double v = rev->valuedouble;
    cJSON_Delete(pub);
    return v;
}

/* Hand-written rows in the files' format (not taken from them): a product,
 * a non-product, a quoted description with a comma and a doubled quote and
 * a 3-decimal price; an anonymous invoice; a "90002.0" customer; a bad row;
 * a cancellation; a bad-debt adjustment with a negative price. */
static const char RETAIL_2011[] =
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    "900001,10001A,BLUE SPOTTY TEST MUG,6,2011-02-03 10:15:00,2.55,90001,United Kingdom\n"
    "900001,POST,POSTAGE,1,2011-02-03 10:15:00,18.00,90001,United Kingdom\n"
    "900001,20002,\"PICTURE FRAME 5\"\" SQUARE, OAK \",2,2011-02-03 10:15:00,1.005,90001,United "
    "Kingdom\n"
    "900002,30003,KNITTED TEST COSY,6,2011-02-03 10:20:00,1.85,,United Kingdom\n"
    "900003,40004B,PAPER TEST LANTERN,32,2011-02-03 10:30:00,1.69,90002.0,France\n"
    "900003,50005,BROKEN QUANTITY ROW,abc,2011-02-03 10:30:00,2.10,90002,France\n"
    "C900004,10001A,BLUE SPOTTY TEST MUG,-2,2011-02-04 09:00:00,2.55,90001,United Kingdom\n"
    "A900005,B,Adjust bad debt,1,2011-08-12 14:50:00,-1062.06,,United Kingdom\n";

static const char RETAIL_II[] =
    "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\r\n"
    "800001,60006,GLASS TEST BAUBLE,12,2009-12-01 07:45:00,6.95,80001,United Kingdom\r\n"
    "800001,70007P,PINK TEST LIGHTS,12,2009-12-01 07:45:00,6.75,80001,United Kingdom\r\n"
    "800002,80008,TEST CAT BOWL ,12,2009-12-01 07:46:00,2.55,80001.0,United Kingdom\r\n";

static void run_import(pipeline *p, bsp_import_format fmt, const char *path,
                       bsp_import_summary *sum) {
    bsp_error err;
    bsp_err rc = import_run(p->ing, fmt, path, false, sum, &err);
    if (rc != BSP_OK) print_error("import failed: %s (%s)\n", err.message, err.at);
    assert_int_equal(rc, BSP_OK);
}

static void check_retail_catalog(bsp_store *st) {
    bsp_txn *txn;
    assert_int_equal(store_txn_begin(st, false, &txn), BSP_OK);
    bsp_slice s;
    assert_int_equal(store_product_get(txn, "10001A", &s), BSP_OK);
    bsp_error e;
    cJSON *prod = json_parse(s.data, s.len, 8, &e);
    assert_non_null(prod);
    assert_string_equal(json_get_string(prod, "name"), "BLUE SPOTTY TEST MUG");
    assert_true(fabs(json_get_number(prod, "price", 0) - 2.55) < 1e-9);
    cJSON_Delete(prod);
    assert_int_equal(store_product_get(txn, "POST", &s), BSP_ENOTFOUND);
    assert_int_equal(store_product_get(txn, "50005", &s), BSP_ENOTFOUND); /* only a bad row */
    store_txn_abort(txn);
}

static void test_retail_end_to_end(void **state) {
    (void)state;
    char path[512];
    write_file("retail.csv", RETAIL_2011, strlen(RETAIL_2011), path, sizeof path);
    pipeline p;
    pipeline_open(&p, "store-retail");
    bsp_import_summary sum;
    run_import(&p, BSP_IMPORT_ONLINE_RETAIL, path, &sum);
    assert_int_equal(sum.rows, 8);
    assert_int_equal(sum.events, 5);
    assert_int_equal(sum.accepted, 5);
    assert_int_equal(sum.duplicates, 0);
    assert_int_equal(sum.rejects, 1);
    assert_non_null(strstr(sum.first_reject, "line 7"));
    assert_non_null(strstr(sum.first_reject, "quantity"));
    assert_int_equal(sum.products, 4);
    /* 6 x 2.55 + 18.00 + 2 x 1.005 - 2 x 2.55 */
    assert_true(fabs(revenue_of(p.st, 'u', "90001") - 30.21) < 1e-9);
    assert_true(fabs(revenue_of(p.st, 'u', "90002") - 54.08) < 1e-9);
    assert_true(fabs(revenue_of(p.st, 'a', "guest-900002") - 11.10) < 1e-9);
    assert_true(fabs(revenue_of(p.st, 'a', "guest-A900005") + 1062.06) < 1e-9);
    check_retail_catalog(p.st);
    /* the same file again adds nothing */
    bsp_import_summary again;
    run_import(&p, BSP_IMPORT_ONLINE_RETAIL, path, &again);
    assert_int_equal(again.events, 5);
    assert_int_equal(again.duplicates, again.events);
    assert_int_equal(again.accepted, 0);
    assert_true(fabs(revenue_of(p.st, 'u', "90001") - 30.21) < 1e-9);
    pipeline_close(&p);
}

static void test_retail_ii_zstd(void **state) {
    (void)state;
    char path[512];
    write_zst("retail_ii.csv.zst", RETAIL_II, path, sizeof path);
    pipeline p;
    pipeline_open(&p, "store-retail-ii");
    bsp_import_summary sum;
    run_import(&p, BSP_IMPORT_ONLINE_RETAIL, path, &sum);
    assert_int_equal(sum.rows, 3);
    assert_int_equal(sum.events, 2);
    assert_int_equal(sum.rejects, 0);
    assert_int_equal(sum.products, 3);
    assert_true(fabs(revenue_of(p.st, 'u', "80001") - (12 * 6.95 + 12 * 6.75 + 12 * 2.55)) < 1e-9);
    cJSON *pub = profile_of(p.st, 'u', "80001");
    assert_non_null(pub);
    assert_int_equal((int)json_get_number(json_get_object(pub, "computed"), "orders", 0), 2);
    cJSON_Delete(pub);
    pipeline_close(&p);
}

static void test_retail_bad_header(void **state) {
    (void)state;
    char path[512];
    const char *text = "Date,Amount\n2011-01-01,3\n";
    write_file("bad.csv", text, strlen(text), path, sizeof path);
    pipeline p;
    pipeline_open(&p, "store-bad");
    bsp_import_summary sum;
    bsp_error err;
    assert_int_equal(import_run(p.ing, BSP_IMPORT_ONLINE_RETAIL, path, false, &sum, &err),
                     BSP_EPARSE);
    assert_non_null(strstr(err.message, "not an Online Retail CSV"));
    assert_int_equal(
        import_run(p.ing, BSP_IMPORT_ONLINE_RETAIL, "/nonexistent.csv", false, &sum, &err),
        BSP_EIO);
    pipeline_close(&p);
}

static void test_jsonl(void **state) {
    (void)state;
    const char *text =
        "{\"type\":\"identify\",\"messageId\":\"m1\",\"userId\":\"u1\","
        "\"timestamp\":\"2024-01-01T00:00:00Z\",\"traits\":{\"name\":\"Ann\"}}\n"
        "\n"
        "{\"type\":\"track\",\"messageId\":\"m2\",\"userId\":\"u1\",\"event\":\"Order Completed\","
        "\"timestamp\":\"2024-01-01T00:01:00Z\",\"properties\":{\"revenue\": 12.5, \"n\": [ 1 ]}}\n"
        "not json\n"
        "{\"type\":\"nonsense\",\"messageId\":\"m3\",\"userId\":\"u1\"}\n";
    char path[512];
    write_file("events.jsonl", text, strlen(text), path, sizeof path);
    pipeline p;
    pipeline_open(&p, "store-jsonl");
    bsp_import_summary sum;
    run_import(&p, BSP_IMPORT_SEGMENT_JSONL, path, &sum);
    assert_int_equal(sum.rows, 4);
    assert_int_equal(sum.events, 2);
    assert_int_equal(sum.accepted, 2);
    assert_int_equal(sum.rejects, 2);
    assert_non_null(strstr(sum.first_reject, "line 4"));
    assert_true(fabs(revenue_of(p.st, 'u', "u1") - 12.5) < 1e-9);
    /* The properties are stored as the line wrote them (copied, not
     * printed again: the spaces show it). */
    bsp_txn *txn;
    assert_int_equal(store_txn_begin(p.st, false, &txn), BSP_OK);
    bsp_slice stored;
    assert_int_equal(store_event_get(txn, 2, &stored), BSP_OK);
    char *event = strndup(stored.data, stored.len);
    assert_non_null(strstr(event, "\"properties\":{\"revenue\": 12.5, \"n\": [ 1 ]}"));
    assert_non_null(strstr(event, "\"messageId\":\"m2\""));
    free(event);
    store_txn_abort(txn);
    run_import(&p, BSP_IMPORT_SEGMENT_JSONL, path, &sum);
    assert_int_equal(sum.duplicates, 2);
    assert_int_equal(sum.accepted, 0);
    pipeline_close(&p);
}

/* The simulator's stream imports without a reject, and again as duplicates. */
static void test_jsonl_from_sim(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/sim.jsonl", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    bsp_sim_opts opts = {.events = 5000, .seed = 11, .products = 200};
    assert_int_equal(sim_write(&opts, f), BSP_OK);
    assert_int_equal(fclose(f), 0);
    pipeline p;
    pipeline_open(&p, "store-sim");
    bsp_import_summary sum;
    run_import(&p, BSP_IMPORT_SEGMENT_JSONL, path, &sum);
    assert_int_equal(sum.rows, 5000);
    assert_int_equal(sum.rejects, 0);
    assert_int_equal(sum.accepted, 5000);
    run_import(&p, BSP_IMPORT_SEGMENT_JSONL, path, &sum);
    assert_int_equal(sum.duplicates, 5000);
    pipeline_close(&p);
}

/* --- the real file ------------------------------------------------------- */

typedef struct totals {
    uint64_t customers, profiles;
    long double revenue;
} totals;

static bsp_err add_profile(void *ctx, uint64_t pid, bsp_slice json) {
    (void)pid;
    totals *t = ctx;
    bsp_profile *p;
    assert_int_equal(profile_from_json(json.data, json.len, &p), BSP_OK);
    t->profiles++;
    if (profile_id_count(p, 'u') > 0) t->customers++;
    cJSON *pub = profile_public_json(p);
    cJSON *rev = json_path(pub, "computed.revenue");
    if (cJSON_IsNumber(rev)) t->revenue += rev->valuedouble;
    cJSON_Delete(pub);
    profile_free(p);
    return BSP_OK;
}

static void test_real_online_retail(void **state) {
    (void)state;
    if (access(REAL_DATA, R_OK) != 0) {
        print_message("skipping: %s not found (run from the project root with the shared "
                      "data next to it)\n",
                      REAL_DATA);
        skip();
    }
    pipeline p;
    pipeline_open(&p, "store-real");
    bsp_import_summary sum;
    run_import(&p, BSP_IMPORT_ONLINE_RETAIL, REAL_DATA, &sum);
    print_message("online_retail: %llu rows, %llu events, %llu rejects, %llu products in %.1f s "
                  "(%.0f rows/s)\n",
                  (unsigned long long)sum.rows, (unsigned long long)sum.events,
                  (unsigned long long)sum.rejects, (unsigned long long)sum.products, sum.seconds,
                  (double)sum.rows / sum.seconds);
    assert_int_equal(sum.rows, 541909);
    assert_int_equal(sum.rejects, 0);
    assert_int_equal(sum.accepted, sum.events);
    assert_true(sum.events >= 25900); /* one invoice's rows are split in two */
    bsp_txn *txn;
    assert_int_equal(store_txn_begin(p.st, false, &txn), BSP_OK);
    totals t = {0};
    assert_int_equal(store_profiles_scan(txn, add_profile, &t), BSP_OK);
    store_txn_abort(txn);
    print_message("online_retail: %llu customers, %llu profiles, revenue %.2Lf\n",
                  (unsigned long long)t.customers, (unsigned long long)t.profiles, t.revenue);
    assert_int_equal(t.customers, 4372);
    assert_int_equal((int64_t)llroundl(t.revenue * 100), 974774793LL);
    pipeline_close(&p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_plain),
        cmocka_unit_test(test_csv_quotes),
        cmocka_unit_test(test_csv_broken),
        cmocka_unit_test(test_reader_plain),
        cmocka_unit_test(test_reader_zstd),
        cmocka_unit_test(test_reader_long_line),
        cmocka_unit_test(test_reader_truncated_zstd),
        cmocka_unit_test(test_row_parse),
        cmocka_unit_test(test_row_bad),
        cmocka_unit_test(test_retail_end_to_end),
        cmocka_unit_test(test_retail_ii_zstd),
        cmocka_unit_test(test_retail_bad_header),
        cmocka_unit_test(test_jsonl),
        cmocka_unit_test(test_jsonl_from_sim),
        cmocka_unit_test(test_real_online_retail),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
