/* test_json.c - the cJSON helpers: parsing with limits and positions, paths,
 * merges, and the compact writer (which must read back to the same value). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "strict_json.h"

static bsp_buf written_text; /* the last text written(), freed by the next */

static char *written(const cJSON *item) {
    bsp_buf_free(&written_text);
    assert_int_equal(json_write(&written_text, item), BSP_OK);
    return written_text.data;
}

static void test_parse_reports_line_and_column(void **state) {
    (void)state;
    bsp_error err;
    const char *text = "{\n  \"a\": 1,\n  \"b\": tru\n}";
    assert_null(json_parse(text, strlen(text), BSP_JSON_MAX_DEPTH, &err));
    assert_int_equal(err.code, BSP_EPARSE);
    assert_string_equal(err.at, "line 3, column 8");
}

static void test_parse_refuses_trailing_text_and_depth(void **state) {
    (void)state;
    bsp_error err;
    assert_null(json_parse("{} x", 4, BSP_JSON_MAX_DEPTH, &err));
    assert_int_equal(err.code, BSP_EPARSE);
    assert_string_equal(err.at, "line 1, column 4");
    char deep[80];
    memset(deep, '[', 40);
    memset(deep + 40, ']', 40);
    assert_null(json_parse(deep, sizeof deep, 32, &err));
    assert_int_equal(err.code, BSP_ETOOBIG);
    cJSON *ok = json_parse(deep, sizeof deep, 40, &err);
    assert_non_null(ok);
    cJSON_Delete(ok);
    /* Brackets inside strings do not count. */
    const char *s = "{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}";
    ok = json_parse(s, strlen(s), 2, &err);
    assert_non_null(ok);
    cJSON_Delete(ok);
}

static void test_paths_and_getters(void **state) {
    (void)state;
    cJSON *j = cJSON_Parse("{\"context\":{\"traits\":{\"email\":\"a@b\"}},\"n\":3,\"t\":true}");
    assert_string_equal(json_get_string(json_path(j, "context.traits"), "email"), "a@b");
    assert_null(json_path(j, "context.nope.email"));
    assert_null(json_path(j, "n.x"));
    assert_true(json_get_number(j, "n", 0) == 3);
    assert_true(json_get_number(j, "t", 7) == 7);
    assert_true(json_get_bool(j, "t", false));
    assert_null(json_get_object(j, "n"));
    cJSON_Delete(j);
}

static void test_merge_is_deep_and_src_wins(void **state) {
    (void)state;
    cJSON *dst = cJSON_Parse("{\"a\":{\"x\":1,\"y\":2},\"b\":1}");
    cJSON *src = cJSON_Parse("{\"a\":{\"y\":3,\"z\":4},\"b\":{\"k\":1}}");
    json_merge(dst, src);
    assert_string_equal(written(dst), "{\"a\":{\"x\":1,\"y\":3,\"z\":4},\"b\":{\"k\":1}}");
    cJSON_Delete(dst);
    cJSON_Delete(src);
}

static void test_write_numbers_read_back_exactly(void **state) {
    (void)state;
    const double values[] = {0,
                             -0.0,
                             1,
                             -1,
                             42,
                             2.55,
                             0.1,
                             1e300,
                             -1e-300,
                             123456789012345.0,
                             9007199254740993.0,
                             3.141592653589793,
                             9747747.93,
                             -17.5};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        cJSON *n = cJSON_CreateNumber(values[i]);
        char *text = written(n);
        assert_true(strtod(text, NULL) == values[i]);
        cJSON_Delete(n);
    }
    cJSON *n = cJSON_CreateNumber(42);
    assert_string_equal(written(n), "42");
    cJSON_Delete(n);
    n = cJSON_CreateNumber(2.55);
    assert_string_equal(written(n), "2.55");
    cJSON_Delete(n);
    n = cJSON_CreateNumber(NAN);
    assert_string_equal(written(n), "null");
    cJSON_Delete(n);
}

/* The text numbers had before the short-decimal path: the shortest of
 * %.15g / %.17g that reads back. */
static void number_reference(double d, char *out, size_t cap) {
    snprintf(out, cap, "%.15g", d);
    if (strtod(out, NULL) != d) snprintf(out, cap, "%.17g", d);
}

static void expect_number_text(double d) {
    cJSON *n = cJSON_CreateNumber(d);
    char want[40];
    if (d == trunc(d) && fabs(d) < 9007199254740992.0)
        snprintf(want, sizeof want, "%lld", (long long)d);
    else
        number_reference(d, want, sizeof want);
    const char *got = written(n);
    if (strcmp(got, want) != 0) fail_msg("%.17g written as %s, expected %s", d, got, want);
    assert_true(strtod(got, NULL) == d);
    cJSON_Delete(n);
}

/* Numbers written without printf are the same text as before, and read
 * back exactly: decimals of every length, magnitudes at the edges of the
 * fixed notation, and arbitrary bit patterns. */
static void test_write_numbers_as_printf_did(void **state) {
    (void)state;
    static const double edges[] = {0.1,
                                   0.2,
                                   0.30000000000000004,
                                   1.0 / 3,
                                   12.95,
                                   -12.95,
                                   0.5,
                                   -0.5,
                                   1.5,
                                   1e-4,
                                   0.0001,
                                   0.00009999,
                                   1e-5,
                                   1e15,
                                   1e15 - 0.5,
                                   999999999999999.9,
                                   2.55,
                                   1e14 + 0.25,
                                   123456.789,
                                   0.123456789,
                                   0.1234567891,
                                   5e-324,
                                   1.7976931348623157e308};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        expect_number_text(edges[i]);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int decimals = (int)(x % 11);
        double scale = pow(10, decimals);
        double magnitude = pow(10, (double)((x >> 8) % 16));
        double d = nearbyint((double)((x >> 16) % 1000000007ull) * magnitude / 1e6) / scale;
        if (x & (1ull << 60)) d = -d;
        expect_number_text(d);
        double bits;
        uint64_t pattern = x & ~(0x7ffull << 52) ? x : x | 1;
        memcpy(&bits, &pattern, sizeof bits);
        if (isfinite(bits)) expect_number_text(bits);
    }
}

static void test_write_escapes_strings(void **state) {
    (void)state;
    cJSON *s = cJSON_CreateString("a\"b\\c\n\t\x01 é");
    assert_string_equal(written(s), "\"a\\\"b\\\\c\\n\\t\\u0001 é\"");
    cJSON_Delete(s);
}

/* The writer scans 8 bytes at a time for bytes to escape: one such byte at
 * every position of strings of every length up to 24 is escaped (reads
 * back the same), and bytes that need none (space, DEL, UTF-8, just above
 * the control range) go out as they are. */
static void test_write_escapes_at_every_position(void **state) {
    (void)state;
    static const char special[] = {'"', '\\', '\n', '\x01', '\x1f'};
    static const char plain[] = {' ', '\x7f', '\xc3', 'z', '!'};
    char text[32];
    for (size_t len = 1; len <= 24; len++) {
        for (size_t at = 0; at < len; at++) {
            for (size_t k = 0; k < sizeof special; k++) {
                memset(text, 'a', len);
                text[len] = '\0';
                text[at] = special[k];
                cJSON *s = cJSON_CreateString(text);
                const char *out = written(s);
                assert_true(strlen(out) > len + 2); /* escaped */
                cJSON *back = json_parse(out, strlen(out), BSP_JSON_MAX_DEPTH, NULL);
                assert_non_null(back);
                assert_string_equal(back->valuestring, text);
                cJSON_Delete(back);
                cJSON_Delete(s);
                text[at] = plain[k];
                s = cJSON_CreateString(text);
                out = written(s);
                assert_int_equal(strlen(out), len + 2); /* as it is */
                assert_memory_equal(out + 1, text, len);
                cJSON_Delete(s);
            }
        }
    }
}

static void test_write_matches_cjson_round_trip(void **state) {
    (void)state;
    const char *text = "{\"type\":\"track\",\"n\":[1,2.5,-3,true,false,null,{}],\"o\":{\"k\":[]},"
                       "\"s\":\"x\\u0000y\",\"e\":\"\"}";
    cJSON *j = cJSON_Parse(text);
    cJSON *back = cJSON_Parse(written(j));
    assert_non_null(back);
    assert_true(cJSON_Compare(j, back, true));
    char *theirs = cJSON_PrintUnformatted(j);
    assert_string_equal(written(j), theirs);
    cJSON_free(theirs);
    cJSON_Delete(back);
    cJSON_Delete(j);
}

static uint64_t hash_of(const char *text) {
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    uint64_t h = json_hash(j);
    cJSON_Delete(j);
    return h;
}

/* json_hash: equal values hash equal, whatever the spacing; a change of a
 * value, a type, a member name, the order or the nesting changes it. */
static void test_hash_follows_the_value(void **state) {
    (void)state;
    const char *base = "{\"id\":\"p1\",\"price\":12.95,\"tags\":[\"a\",[1],2],\"x\":null}";
    uint64_t h = hash_of(base);
    assert_true(h == hash_of("{ \"id\": \"p1\", \"price\": 12.950, \"tags\": [\"a\", [1], 2], "
                             "\"x\": null }"));
    const char *others[] = {
        "{\"id\":\"p2\",\"price\":12.95,\"tags\":[\"a\",[1],2],\"x\":null}",
        "{\"id\":\"p1\",\"price\":12.96,\"tags\":[\"a\",[1],2],\"x\":null}",
        "{\"id\":\"p1\",\"price\":\"12.95\",\"tags\":[\"a\",[1],2],\"x\":null}",
        "{\"id\":\"p1\",\"cost\":12.95,\"tags\":[\"a\",[1],2],\"x\":null}",
        "{\"price\":12.95,\"id\":\"p1\",\"tags\":[\"a\",[1],2],\"x\":null}",
        "{\"id\":\"p1\",\"price\":12.95,\"tags\":[\"a\",[1,2]],\"x\":null}",
        "{\"id\":\"p1\",\"price\":12.95,\"tags\":[\"a\",[1],2],\"x\":false}",
        "{\"id\":\"p1\",\"price\":12.95,\"tags\":[\"a\",[1],2]}",
        "[\"p1\",12.95,[\"a\",[1],2],null]",
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        if (hash_of(others[i]) == h) fail_msg("same hash as the base: %s", others[i]);
    assert_true(hash_of("{\"a\":0}") == hash_of("{\"a\":-0}"));
    assert_true(json_hash(NULL) == 0);
}

static void test_error_body_shape(void **state) {
    (void)state;
    bsp_error err;
    bsp_error_set(&err, BSP_ETYPE, "batch[3].properties", "must be an \"object\"");
    bsp_buf out = {0};
    assert_int_equal(json_write_error(&out, &err), BSP_OK);
    assert_string_equal(out.data, "{\"error\":{\"code\":\"invalid_field\",\"message\":\"must be an "
                                  "\\\"object\\\"\",\"at\":\"batch[3].properties\"}}");
    bsp_buf_free(&out);
    bsp_error_set(&err, BSP_EAUTH, "", "no key");
    assert_int_equal(json_write_error(&out, &err), BSP_OK);
    assert_string_equal(
        out.data, "{\"error\":{\"code\":\"unauthorized\",\"message\":\"no key\",\"at\":null}}");
    bsp_buf_free(&out);
}

static int free_written(void **state) {
    (void)state;
    bsp_buf_free(&written_text);
    return 0;
}

/* The nesting scan as it was first written, one byte at a time: the
 * reference json_text_depth must agree with on any text. */
static int depth_reference(const char *s, size_t len) {
    int depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '{' || c == '[') {
            if (++depth > max) max = depth;
        } else if (c == '}' || c == ']')
            depth--;
    }
    return max;
}

/* 200,000 seeded texts of quotes, backslashes, brackets and letters,
 * unterminated strings and trailing backslashes included. */
static void test_text_depth_matches_the_reference(void **state) {
    (void)state;
    static const char alphabet[] = "\"\\{}[]a ";
    char text[64];
    unsigned seed = 99;
    for (int n = 0; n < 200000; n++) {
        seed = seed * 1103515245u + 12345u;
        size_t len = (seed >> 16) % sizeof text;
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            text[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        if (json_text_depth(text, len) != depth_reference(text, len))
            fail_msg("%.*s: %d, reference %d", (int)len, text, json_text_depth(text, len),
                     depth_reference(text, len));
    }
    const char *escaped = "{\"a\\\"[[[\":[1]}"; /* brackets inside a string */
    assert_int_equal(json_text_depth(escaped, strlen(escaped)), 2);
}

/* json_parse replaced cJSON's parser: on inputs at every edge it must
 * accept what cJSON accepts and build the same tree (fuzz_json does this
 * on random inputs; these are the edges, always checked). */
static void test_parse_agrees_with_cjson(void **state) {
    (void)state;
    static const char *const inputs[] = {
        "0",
        "-0",
        "-0.0",
        "22.99",
        "0.1",
        "123456789012345",
        "1234567890123456",
        "1e3",
        "1E-2",
        "1.",
        ".5",
        "-",
        "--1",
        "+1",
        "1.5e",
        "007",
        "0x1A",
        "1.25.3",
        "3.14159265358979",
        "9007199254740993",
        "1e400",
        "-1e400",
        "2147483648",
        "-2147483649",
        "[1,2.5,-3]",
        "{\"a\":{\"b\":[true,false,null]}}",
        "\"\\b\\f\\n\\r\\t\\/\\\\\\\"\"",
        "\"\\u00e9\\u20ac\\ud83d\\ude00\"",
        "\"\\uZZZZ tail\"",
        "\"\\ud83d\"",
        "\"\\ude00\"",
        "\"\\ud83d\\u0041\"",
        "\"\\u12\"",
        "\"\\x\"",
        "\"raw\ttab\"",
        "\"open",
        "[1,]",
        "{\"a\":1,}",
        "{,}",
        "{\"a\" 1}",
        "{1:2}",
        "[1 2]",
        "nul",
        "truex",
        "[true",
        "{\"a\":\"b\"} ",
        "{\"a\":\"b\"}\n\n",
        " \t[ ]",
        "{\"dup\":1,\"dup\":2}",
        "[\"a\\\"]\"]",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
        const char *t = inputs[i];
        size_t len = strlen(t);
        const char *end = NULL;
        cJSON *ref = cJSON_ParseWithLengthOpts(t, len, &end, false);
        if (ref && strspn(end, " \t\r\n") != strlen(end)) {
            cJSON_Delete(ref);
            ref = NULL;
        }
        bsp_error err;
        cJSON *mine = json_parse(t, len, BSP_JSON_MAX_DEPTH, &err);
        if (!mine != !ref)
            fail_msg("%s: json_parse %s, cJSON %s", t, mine ? "accepts" : "refuses",
                     ref ? "accepts" : "refuses");
        if (mine) {
            char *want = cJSON_PrintUnformatted(ref), *got = cJSON_PrintUnformatted(mine);
            if (strcmp(want, got) != 0) fail_msg("%s: %s, cJSON %s", t, got, want);
            assert_int_equal(mine->valueint, ref->valueint);
            assert_memory_equal(&mine->valuedouble, &ref->valuedouble, sizeof(double));
            cJSON_free(want);
            cJSON_free(got);
        } else {
            assert_int_equal(err.code, BSP_EPARSE);
        }
        cJSON_Delete(mine);
        cJSON_Delete(ref);
    }
    /* A byte order mark may open the text; NUL bytes may follow the value. */
    cJSON *bom = json_parse("\xEF\xBB\xBF{\"k\":1}\0\0", 11, BSP_JSON_MAX_DEPTH, NULL);
    assert_non_null(bom);
    assert_int_equal(json_member(bom, "k")->valueint, 1);
    cJSON_Delete(bom);
}

/* json_members finds what json_member finds for each key, in one walk. */
static void test_members_in_one_walk(void **state) {
    (void)state;
    cJSON *o = cJSON_Parse("{\"b\":1,\"a\":2,\"bb\":3,\"a\":4,\"\":5,\"c\":null}");
    assert_non_null(o);
    static const char *const keys[] = {"a", "bb", "missing", "", "c", "b"};
    const cJSON *found[6];
    json_members(o, keys, 6, found);
    for (size_t i = 0; i < 6; i++)
        assert_ptr_equal(found[i], json_member(o, keys[i]));
    assert_int_equal(found[0]->valueint, 2); /* the first of a repeated member */
    assert_null(found[2]);
    json_members(NULL, keys, 6, found);
    for (size_t i = 0; i < 6; i++)
        assert_null(found[i]);
    cJSON *list = cJSON_Parse("[1,{\"a\":1}]");
    json_members(list, keys, 1, found); /* not an object: nothing */
    assert_null(found[0]);
    cJSON_Delete(list);
    cJSON_Delete(o);
}

/* ---- arenas -------------------------------------------------------------- */

/* A tree parsed in an arena is its: the arena's bytes grow, the tree reads
 * the same after the thread has left, deleting its members inside the arena
 * frees nothing (under ASan a free of arena memory would be reported), and
 * json_arena_free takes it all (under LeakSanitizer a lost node would be). */
static void test_arena_holds_what_is_made_in_it(void **state) {
    (void)state;
    json_arena *a = json_arena_new(0);
    assert_non_null(a);
    assert_int_equal(json_arena_bytes(a), 0);
    const char *text = "{\"a\":[1,2,{\"b\":\"long enough to be a string of its own\"}],\"c\":null}";
    json_arena *outer = json_arena_enter(a);
    assert_null(outer);
    cJSON *tree = json_parse(text, strlen(text), BSP_JSON_MAX_DEPTH, NULL);
    assert_non_null(tree);
    size_t used = json_arena_bytes(a);
    assert_true(used >= 7 * sizeof(cJSON));
    cJSON_DeleteItemFromObjectCaseSensitive(tree, "c");
    cJSON_ReplaceItemInObjectCaseSensitive(tree, "d",
                                           cJSON_CreateString("x")); /* no "d": not added */
    json_set(tree, "e", cJSON_CreateNumber(5));
    json_set(tree, "e", cJSON_CreateNumber(6)); /* the 5 is deleted: nothing freed */
    assert_true(json_arena_bytes(a) > used);
    json_arena_leave(outer);
    assert_string_equal(written(tree),
                        "{\"a\":[1,2,{\"b\":\"long enough to be a string of its own\"}],\"e\":6}");
    /* Made after leaving: malloc'd, not the arena's. */
    used = json_arena_bytes(a);
    cJSON *own = cJSON_CreateString("outside");
    assert_int_equal(json_arena_bytes(a), used);
    cJSON_Delete(own);
    json_arena_free(a);
}

/* Inside an arena, a tree malloc'd before is freed for real when deleted
 * (LeakSanitizer would report it otherwise), and a value larger than a chunk
 * gets a chunk of its own. */
static void test_arena_frees_what_is_not_its(void **state) {
    (void)state;
    cJSON *before = cJSON_CreateObject();
    cJSON_AddStringToObject(before, "k", "made with malloc");
    json_arena *a = json_arena_new(0);
    json_arena *outer = json_arena_enter(a);
    cJSON_Delete(before);
    size_t big = 3 * 1024 * 1024;
    char *text = malloc(big + 3);
    text[0] = '"';
    memset(text + 1, 'z', big);
    text[big + 1] = '"';
    text[big + 2] = '\0';
    cJSON *s = json_parse(text, big + 2, BSP_JSON_MAX_DEPTH, NULL);
    assert_non_null(s);
    assert_true(json_arena_bytes(a) >= big + 1);
    assert_int_equal(strlen(s->valuestring), big);
    cJSON_Delete(s);
    json_arena_leave(outer);
    free(text);
    json_arena_free(a);
    json_arena_free(NULL);
}

/* Arenas nest: entering one hands back the one it replaces, and leaving
 * restores it. */
static void test_arena_enter_and_leave_nest(void **state) {
    (void)state;
    json_arena *a = json_arena_new(0), *b = json_arena_new(0);
    json_arena *outer = json_arena_enter(a);
    cJSON *in_a = cJSON_CreateString("a");
    size_t a_used = json_arena_bytes(a);
    assert_ptr_equal(json_arena_enter(b), a);
    cJSON *in_b = cJSON_CreateString("b");
    assert_int_equal(json_arena_bytes(a), a_used);
    assert_true(json_arena_bytes(b) > 0);
    json_arena_leave(a);
    cJSON *again_a = cJSON_CreateNumber(1);
    assert_true(json_arena_bytes(a) > a_used);
    json_arena_leave(outer);
    assert_string_equal(in_a->valuestring, "a");
    assert_string_equal(in_b->valuestring, "b");
    assert_true(again_a->valuedouble == 1);
    json_arena_free(b);
    json_arena_free(a);
}

/* json_format_double against snprintf's %.*g, byte for byte, at every
 * precision: random doubles in and around the range it handles, decimals
 * as shops write them, exact ties (which round half to even), the doubles
 * next to powers of ten, and numbers printf must write with an exponent. */
static void expect_format(double v, int digits) {
    char want[64], got[JSON_NUMBER_MAX];
    snprintf(want, sizeof want, "%.*g", digits, v);
    size_t n = json_format_double(got, v, digits);
    if (n != strlen(want) || strcmp(got, want) != 0)
        fail_msg("%.17g at %d digits: \"%s\", printf \"%s\"", v, digits, got, want);
}

static uint64_t rand_state = 0x9e3779b97f4a7c15ull;
static uint64_t rand64(void) {
    rand_state ^= rand_state << 13;
    rand_state ^= rand_state >> 7;
    rand_state ^= rand_state << 17;
    return rand_state;
}

static void test_format_double_as_printf(void **state) {
    (void)state;
    for (int i = 0; i < 200000; i++) {
        /* log-uniform over 1e-6 .. 1e17, all mantissa bits random */
        double v = pow(10, -6 + 23 * ((double)(rand64() >> 11) / 9007199254740992.0));
        uint64_t bits;
        memcpy(&bits, &v, sizeof bits);
        bits ^= rand64() & 0xfffffffffull;
        memcpy(&v, &bits, sizeof v);
        if (rand64() & 1) v = -v;
        expect_format(v, (int)(rand64() % 17) + 1);
        expect_format(v, 17);
        expect_format(v, 15);
    }
    for (int i = 0; i < 100000; i++) {
        double cents = (double)(rand64() % 100000000) / 100; /* prices */
        expect_format(cents, 15);
        expect_format(cents, 17);
        double tie = (double)(rand64() % 4096) / 64 + 0.5 / 64; /* ends in ...5 */
        for (int d = 1; d <= 8; d++)
            expect_format(tie, d);
    }
    for (int p = -6; p <= 16; p++) {
        double ten = pow(10, p);
        double near[] = {ten, nextafter(ten, 0), nextafter(ten, INFINITY), ten * (1 - 1e-16),
                         ten * 0.99999999999999994};
        for (size_t j = 0; j < sizeof near / sizeof near[0]; j++)
            for (int d = 1; d <= 17; d++)
                expect_format(near[j], d);
    }
    double odd[] = {0.1,          0.5,  0.125, 0.375, 2.5,    1e-4, 1e-5,     123456789012345.6,
                    0.0001000001, 0,    -0.0,  1e300, 5e-324, NAN,  INFINITY, -INFINITY,
                    9.5,          0.95, 99.5};
    for (size_t j = 0; j < sizeof odd / sizeof odd[0]; j++)
        for (int d = 1; d <= 17; d++)
            expect_format(odd[j], d);
}

/* ---- spans --------------------------------------------------------------- */

/* The text spans holds for node, or NULL; *len gets its length. */
static const char *span_of(const json_spans *spans, const cJSON *node, size_t *len) {
    const char *text;
    return json_span_text(spans, node, &text, len) ? text : NULL;
}

static void expect_span(const json_spans *spans, const cJSON *node, const char *want) {
    size_t len;
    const char *text = span_of(spans, node, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(text, want, len);
    assert_true(json_is_strict(text, len));
    cJSON *again = json_parse(text, len, BSP_JSON_MAX_DEPTH, NULL);
    assert_non_null(again);
    assert_true(cJSON_Compare(again, node, true));
    cJSON_Delete(again);
}

static void expect_no_span(const json_spans *spans, const cJSON *node) {
    size_t len;
    assert_null(span_of(spans, node, &len));
}

static void test_spans_are_the_text_as_written(void **state) {
    (void)state;
    const char *text = " {\"a\": {\"b\":[1, -0, 2.5,\"x\\\"y\\u00e9\"]}, \"c\":[], \"d\":{ } } ";
    json_spans *spans = json_spans_new(0);
    assert_non_null(spans);
    cJSON *root = json_parse_spans(text, strlen(text), BSP_JSON_MAX_DEPTH, spans, NULL);
    assert_non_null(root);
    expect_span(spans, root,
                "{\"a\": {\"b\":[1, -0, 2.5,\"x\\\"y\\u00e9\"]}, \"c\":[], \"d\":{ } }");
    expect_span(spans, json_member(root, "a"), "{\"b\":[1, -0, 2.5,\"x\\\"y\\u00e9\"]}");
    expect_span(spans, json_path(root, "a")->child, "[1, -0, 2.5,\"x\\\"y\\u00e9\"]");
    expect_span(spans, json_member(root, "c"), "[]");
    expect_span(spans, json_member(root, "d"), "{ }");
    /* Only objects and arrays have spans; and nothing without a table. */
    expect_no_span(spans, json_path(root, "a")->child->child);
    expect_no_span(NULL, root);
    /* A node made after parsing has none. */
    cJSON *made = cJSON_CreateObject();
    expect_no_span(spans, made);
    cJSON_Delete(made);
    cJSON_Delete(root);
    json_spans_free(spans);
    json_spans_free(NULL);
}

static void test_spans_only_of_strict_json(void **state) {
    (void)state;
    /* Each "bad" holds something only cJSON's leniency reads, or a byte
     * below 0x20; "good" beside it keeps its span, the root loses its. */
    static const char *const bad[] = {
        "[007]",         "[-01.5]",        "[1e5]",
        "[1E+2]",        "[1.5e-3]",       "[1234567890123456]",
        "[\"\\uZZZZ\"]", "[\"a\\u12G4\"]", "[\"\t\"]",
        "[\"\x01\"]",    "[1,\n2]",        "[\r]",
        "[\t1]",         "{\"k\":\x1f 1}",
    };
    json_spans *spans = json_spans_new(4);
    assert_non_null(spans);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "{\"good\":{\"n\":[0,10,-3.25]},\"bad\":%s}", bad[i]);
        cJSON *root = json_parse_spans(text, strlen(text), BSP_JSON_MAX_DEPTH, spans, NULL);
        if (!root) fail_msg("%s does not parse", text);
        expect_span(spans, json_member(root, "good"), "{\"n\":[0,10,-3.25]}");
        expect_no_span(spans, json_member(root, "bad"));
        expect_no_span(spans, root);
        cJSON_Delete(root);
    }
    json_spans_free(spans);
}

static void test_spans_forget_the_last_text_and_grow(void **state) {
    (void)state;
    json_spans *spans = json_spans_new(0);
    assert_non_null(spans);
    cJSON *first = json_parse_spans("{\"a\":{}}", 8, BSP_JSON_MAX_DEPTH, spans, NULL);
    assert_non_null(first);
    expect_span(spans, json_member(first, "a"), "{}");
    /* A thousand objects in one text: the table grows and keeps them all. */
    bsp_buf text = {0};
    assert_int_equal(bsp_buf_puts(&text, "["), BSP_OK);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(bsp_buf_printf(&text, "%s{\"i\":%d}", i ? "," : "", i), BSP_OK);
    assert_int_equal(bsp_buf_puts(&text, "]"), BSP_OK);
    cJSON *second = json_parse_spans(text.data, text.len, BSP_JSON_MAX_DEPTH, spans, NULL);
    assert_non_null(second);
    expect_no_span(spans, json_member(first, "a")); /* first is still alive */
    int i = 0;
    for (const cJSON *o = second->child; o; o = o->next, i++) {
        char want[32];
        snprintf(want, sizeof want, "{\"i\":%d}", i);
        expect_span(spans, o, want);
    }
    assert_int_equal(i, 1000);
    expect_span(spans, second, text.data);
    cJSON_Delete(first);
    cJSON_Delete(second);
    bsp_buf_free(&text);
    json_spans_free(spans);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_reports_line_and_column),
        cmocka_unit_test(test_text_depth_matches_the_reference),
        cmocka_unit_test(test_parse_refuses_trailing_text_and_depth),
        cmocka_unit_test(test_paths_and_getters),
        cmocka_unit_test(test_merge_is_deep_and_src_wins),
        cmocka_unit_test(test_write_numbers_read_back_exactly),
        cmocka_unit_test(test_write_escapes_strings),
        cmocka_unit_test(test_write_escapes_at_every_position),
        cmocka_unit_test(test_format_double_as_printf),
        cmocka_unit_test(test_write_matches_cjson_round_trip),
        cmocka_unit_test(test_hash_follows_the_value),
        cmocka_unit_test(test_write_numbers_as_printf_did),
        cmocka_unit_test(test_error_body_shape),
        cmocka_unit_test(test_parse_agrees_with_cjson),
        cmocka_unit_test(test_arena_holds_what_is_made_in_it),
        cmocka_unit_test(test_members_in_one_walk),
        cmocka_unit_test(test_arena_frees_what_is_not_its),
        cmocka_unit_test(test_arena_enter_and_leave_nest),
        cmocka_unit_test(test_spans_are_the_text_as_written),
        cmocka_unit_test(test_spans_only_of_strict_json),
        cmocka_unit_test(test_spans_forget_the_last_text_and_grow),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, free_written);
}
