/* test_cluster.c - k-means++ and the choice of k: planted, well separated
 * clusters are recovered exactly, the silhouette picks the planted k, the
 * same seed gives the same answer, standardizing behaves; and a run over a
 * real store saves cluster_<n> segments with readable descriptions,
 * memberships and members index, and removes clusters a later run no
 * longer makes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "teststore.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include "ingest/ingest.h"
#include "segment/segment.h"

/* --- planted data ------------------------------------------------------------ */

static uint64_t rng_state;

static double uniform(void) { /* [0, 1), xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ull) >> 11) * 0x1.0p-53;
}

static double normal(void) { /* Box-Muller */
    double u = uniform(), v = uniform();
    return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

/* k blobs of per points each in d dimensions, centres 10 apart on the axes
 * (and the origin), spread 0.5; truth[i] is the blob of point i. */
static double *planted(size_t k, size_t per, size_t d, int *truth) {
    rng_state = 88172645463325252ull;
    double *x = malloc(k * per * d * sizeof *x);
    assert_non_null(x);
    for (size_t c = 0; c < k; c++)
        for (size_t p = 0; p < per; p++) {
            size_t i = c * per + p;
            truth[i] = (int)c;
            for (size_t j = 0; j < d; j++)
                x[i * d + j] = (c > 0 && j == (c - 1) % d ? 10.0 * (double)((c + d - 1) / d) : 0) +
                               0.5 * normal();
        }
    return x;
}

/* Labels equal truth up to renaming. */
static void assert_same_partition(const int *labels, const int *truth, size_t n, size_t k) {
    int map[16];
    for (size_t c = 0; c < 16; c++)
        map[c] = -1;
    for (size_t i = 0; i < n; i++) {
        if (map[truth[i]] < 0) map[truth[i]] = labels[i];
        if (map[truth[i]] != labels[i])
            fail_msg("point %zu: label %d, its blob maps to %d", i, labels[i], map[truth[i]]);
    }
    for (size_t a = 0; a < k; a++)
        for (size_t b = a + 1; b < k; b++)
            assert_int_not_equal(map[a], map[b]);
}

static void test_kmeans_recovers_planted(void **state) {
    (void)state;
    enum { K = 3, PER = 100, D = 2, N = K * PER };
    int truth[N], labels[N];
    double *x = planted(K, PER, D, truth);
    double c[K * D], inertia;
    assert_int_equal(kmeans_fit(x, N, D, K, 7, labels, c, &inertia), BSP_OK);
    assert_same_partition(labels, truth, N, K);
    assert_true(inertia < N * D * 0.25 * 1.5); /* about the planted spread */
    double s = cluster_silhouette(x, N, D, labels, K, 0, 1);
    assert_true(s > 0.85);
    free(x);
}

static void test_silhouette_picks_planted_k(void **state) {
    (void)state;
    for (size_t k = 2; k <= 6; k++) {
        enum { PER = 60, D = 4 };
        size_t n = k * PER;
        int *truth = malloc(n * sizeof *truth), *labels = malloc(n * sizeof *labels);
        double *x = planted(k, PER, D, truth);
        double c[CLUSTER_K_MAX * D], sil[CLUSTER_K_MAX + 1] = {0};
        size_t chosen = 0;
        assert_int_equal(cluster_choose(x, n, D, 2, CLUSTER_K_MAX, 1, &chosen, sil, labels, c),
                         BSP_OK);
        if (chosen != k) fail_msg("planted %zu, chose %zu", k, chosen);
        assert_same_partition(labels, truth, n, k);
        for (size_t j = 2; j <= CLUSTER_K_MAX; j++)
            if (j != k) assert_true(sil[j] < sil[k]);
        free(truth);
        free(labels);
        free(x);
    }
}

static void test_sampled_silhouette_is_close(void **state) {
    (void)state;
    enum { K = 4, PER = 1500, D = 3, N = K * PER };
    int *truth = malloc(N * sizeof *truth);
    double *x = planted(K, PER, D, truth);
    double full = cluster_silhouette(x, N, D, truth, K, 0, 1);
    double sampled = cluster_silhouette(x, N, D, truth, K, 1000, 1);
    assert_true(fabs(full - sampled) < 0.02);
    assert_true(sampled == cluster_silhouette(x, N, D, truth, K, 1000, 1)); /* same seed */
    free(truth);
    free(x);
}

static void test_deterministic(void **state) {
    (void)state;
    enum { K = 5, PER = 80, D = 3, N = K * PER };
    int truth[N], a[N], b[N];
    double *x = planted(K, PER, D, truth);
    /* overlapping data, where the seed matters */
    for (size_t i = 0; i < N * D; i++)
        x[i] *= 0.05;
    double ca[K * D], cb[K * D];
    assert_int_equal(kmeans_fit(x, N, D, K, 99, a, ca, NULL), BSP_OK);
    assert_int_equal(kmeans_fit(x, N, D, K, 99, b, cb, NULL), BSP_OK);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_equal(ca, cb, sizeof ca);
    free(x);
}

static void test_bad_arguments(void **state) {
    (void)state;
    double x[4] = {0, 1, 2, 3};
    int labels[4];
    double c[16];
    size_t k;
    assert_int_equal(kmeans_fit(x, 4, 1, 5, 1, labels, c, NULL), BSP_EINVAL);
    assert_int_equal(kmeans_fit(x, 4, 1, 0, 1, labels, c, NULL), BSP_EINVAL);
    assert_int_equal(cluster_choose(x, 4, 1, 2, 4, 1, &k, NULL, labels, c), BSP_EINVAL);
    assert_int_equal(cluster_choose(x, 4, 1, 1, 3, 1, &k, NULL, labels, c), BSP_EINVAL);
}

static void test_standardize(void **state) {
    (void)state;
    double x[] = {1, 5, 2, 5, 3, 5, 4, 5}; /* column 1 constant */
    double mean[2], sd[2];
    cluster_standardize(x, 4, 2, mean, sd);
    assert_true(fabs(mean[0] - 2.5) < 1e-12);
    assert_true(fabs(sd[0] - sqrt(1.25)) < 1e-12);
    double sum = 0, sq = 0;
    for (int i = 0; i < 4; i++) {
        sum += x[i * 2];
        sq += x[i * 2] * x[i * 2];
        assert_true(x[i * 2 + 1] == 0);
    }
    assert_true(fabs(sum) < 1e-12);
    assert_true(fabs(sq / 4 - 1) < 1e-12);
}

/* --- on a store ---------------------------------------------------------------------- */

typedef struct fixture {
    char dir[64];
    bsp_store *st;
    bsp_ingest *ing;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    test_temp_dir(f->dir, "cluster");
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

static void send(fixture *f, const char *batch) {
    test_send_batch(f->ing, batch);
}

/* Buyers: several big orders of "Lamps"; browsers: product views of
 * "Garden" and no order. */
static void populate(fixture *f) {
    char batch[8192];
    for (int v = 0; v < 24; v++) {
        bool buyer = v % 2 == 0;
        size_t len = (size_t)snprintf(batch, sizeof batch, "{\"batch\":[");
        for (int e = 0; e < 6; e++)
            len += (size_t)snprintf(
                batch + len, sizeof batch - len,
                "%s{\"type\":\"track\",\"event\":\"%s\",\"userId\":\"u%d\",\"messageId\":\"m%d-%"
                "d\","
                "\"timestamp\":\"2024-01-%02dT1%d:00:00Z\",\"properties\":{\"product_id\":\"p%d\","
                "\"category\":\"%s\",\"price\":%d,\"revenue\":%d,\"order_id\":\"o%d-%d\","
                "\"products\":[{\"product_id\":\"p%d\",\"category\":\"%s\",\"price\":%d}]}}",
                e ? "," : "", buyer ? "Order Completed" : "Product Viewed", v, v, e,
                buyer ? 1 + e * 4 : 20 + e, e, e + v, buyer ? "Lamps" : "Garden", 300 + v, 300 + v,
                v, e, e + v, buyer ? "Lamps" : "Garden", 300 + v);
        snprintf(batch + len, sizeof batch - len, "]}");
        send(f, batch);
    }
}

static uint64_t members(fixture *f, const char *seg) {
    bsp_txn *txn;
    uint64_t n = 0;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    assert_int_equal(store_members_count(txn, seg, &n), BSP_OK);
    store_txn_abort(txn);
    return n;
}

static bool defined(fixture *f, const char *seg) {
    bsp_txn *txn;
    bsp_slice def;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    bool yes = store_config_get(txn, "segment", seg, &def) == BSP_OK;
    store_txn_abort(txn);
    return yes;
}

static void test_run_on_store(void **state) {
    fixture *f = *state;
    populate(f);
    cluster_opts o = {.seed = 3};
    cluster_summary s;
    assert_int_equal(cluster_run(f->ing, f->st, &o, &s), BSP_OK);
    assert_int_equal(s.population, 24);
    assert_int_equal(s.k, 2);
    assert_int_equal(s.sizes[0], 12);
    assert_int_equal(s.sizes[1], 12);
    assert_int_equal(s.written, 24);
    /* cluster_1 has the higher revenue: the buyers, mostly lamps */
    assert_non_null(strstr(s.descriptions[0], "mostly Lamps"));
    assert_non_null(strstr(s.descriptions[0], "frequent orders"));
    assert_non_null(strstr(s.descriptions[1], "mostly Garden"));
    assert_int_equal(members(f, "cluster_1"), 12);
    assert_int_equal(members(f, "cluster_2"), 12);
    assert_true(defined(f, "cluster_1") && defined(f, "cluster_2") && !defined(f, "cluster_3"));

    /* the same again: nothing to rewrite */
    assert_int_equal(cluster_run(f->ing, f->st, &o, &s), BSP_OK);
    assert_int_equal(s.written, 0);

    /* k = 3 then auto again: cluster_3 comes and goes, with its members */
    o.k = 3;
    assert_int_equal(cluster_run(f->ing, f->st, &o, &s), BSP_OK);
    assert_int_equal(s.k, 3);
    assert_true(defined(f, "cluster_3"));
    assert_int_equal(members(f, "cluster_1") + members(f, "cluster_2") + members(f, "cluster_3"),
                     24);
    o.k = 0;
    assert_int_equal(cluster_run(f->ing, f->st, &o, &s), BSP_OK);
    assert_int_equal(s.k, 2);
    assert_false(defined(f, "cluster_3"));
    assert_int_equal(members(f, "cluster_3"), 0);
    assert_int_equal(members(f, "cluster_1") + members(f, "cluster_2"), 24);

    o.k = 30;
    assert_int_equal(cluster_run(f->ing, f->st, &o, &s), BSP_EINVAL);
}

static void test_run_on_empty_store(void **state) {
    fixture *f = *state;
    cluster_summary s;
    assert_int_equal(cluster_run(f->ing, f->st, NULL, &s), BSP_OK);
    assert_int_equal(s.population, 0);
    assert_int_equal(s.k, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kmeans_recovers_planted),
        cmocka_unit_test(test_silhouette_picks_planted_k),
        cmocka_unit_test(test_sampled_silhouette_is_close),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_standardize),
        cmocka_unit_test_setup_teardown(test_run_on_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_on_empty_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
