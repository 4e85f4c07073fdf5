/* test_predict.c - predictive scores: logistic regression recovering the
 * coefficients synthetic data was drawn from and matching a case solved by
 * hand, ridge regression on exact data, features of a hand-made event
 * history (only events before the reference time count), labels by time
 * window, AUC, calibration bins and rank correlation checked by hand, and
 * on a real store: scores written on profiles through ingest jobs,
 * segments on predicted.* filling after a run, an erased profile getting
 * no score, and the periodic schedule. */
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
#include "json/json.h"
#include "predict/predict.h"
#include "segment/segment.h"

#define DAY PREDICT_DAY_MS

/* --- linear models --------------------------------------------------------- */

/* A deterministic generator: uniform in (0, 1), and standard normal. */
static uint64_t rng_state = 88172645463325252ull;

static double uniform(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(void) {
    return sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform());
}

static void test_logreg_recovers_known_coefficients(void **state) {
    (void)state;
    enum { N = 40000, D = 3 };
    const double b = -0.5, w[D] = {1.0, -2.0, 0.5};
    double *x = malloc(N * D * sizeof *x), *y = malloc(N * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    for (size_t i = 0; i < N; i++) {
        double v = b;
        for (size_t j = 0; j < D; j++) {
            x[i * D + j] = normal() * (1 + (double)j) + (double)j; /* scales and shifts */
            v += w[j] * x[i * D + j];
        }
        y[i] = uniform() < 1 / (1 + exp(-v));
    }
    predict_linear raw, std;
    assert_int_equal(predict_logreg_fit(x, y, N, D, 0, false, &raw), BSP_OK);
    if (fabs(raw.b - b) > 0.08) fail_msg("intercept %g, drawn with %g", raw.b, b);
    for (size_t j = 0; j < D; j++)
        if (fabs(raw.w[j] - w[j]) > 0.06) fail_msg("w%zu = %g, drawn with %g", j, raw.w[j], w[j]);
    assert_true(raw.iterations > 2 && raw.iterations < 30);
    /* standardized, the weights are w * sd and the probabilities the same */
    assert_int_equal(predict_logreg_fit(x, y, N, D, 0, true, &std), BSP_OK);
    for (size_t j = 0; j < D; j++)
        assert_true(fabs(std.w[j] - raw.w[j] * std.sd[j]) < 1e-5);
    for (size_t i = 0; i < 50; i++)
        assert_true(fabs(predict_logreg_prob(&std, x + i * D) -
                         predict_logreg_prob(&raw, x + i * D)) < 1e-7);
    free(x);
    free(y);
}

static void test_logreg_hand_case(void **state) {
    (void)state;
    /* One binary feature: at x = 0, 1 of 4 bought; at x = 1, 3 of 4. The
     * maximum likelihood puts each group's probability at its rate, so
     * b = logit(1/4) = -ln 3 and w = logit(3/4) - logit(1/4) = 2 ln 3. */
    const double x[8] = {0, 0, 0, 0, 1, 1, 1, 1}, y[8] = {1, 0, 0, 0, 1, 1, 1, 0};
    predict_linear m;
    assert_int_equal(predict_logreg_fit(x, y, 8, 1, 0, false, &m), BSP_OK);
    assert_true(fabs(m.b + log(3)) < 1e-6);
    assert_true(fabs(m.w[0] - 2 * log(3)) < 1e-6);
    const double one = 1;
    assert_true(fabs(predict_logreg_prob(&m, &one) - 0.75) < 1e-6);
    /* the penalty shrinks the weight, not the intercept's freedom */
    predict_linear shrunk;
    assert_int_equal(predict_logreg_fit(x, y, 8, 1, 2, false, &shrunk), BSP_OK);
    assert_true(shrunk.w[0] > 0 && shrunk.w[0] < m.w[0]);
    /* bad shapes */
    assert_int_equal(predict_logreg_fit(x, y, 0, 1, 0, false, &m), BSP_EINVAL);
    assert_int_equal(predict_logreg_fit(x, y, 8, PREDICT_MAX_DIM + 1, 0, false, &m), BSP_EINVAL);
}

static void test_ridge_exact(void **state) {
    (void)state;
    enum { N = 50 };
    double x[N * 2], y[N];
    for (size_t i = 0; i < N; i++) {
        x[i * 2] = (double)i / 10;
        x[i * 2 + 1] = sin((double)i);
        y[i] = 2 + 3 * x[i * 2] - x[i * 2 + 1];
    }
    predict_linear m;
    assert_int_equal(predict_ridge_fit(x, y, N, 2, 0, false, &m), BSP_OK);
    assert_true(fabs(m.b - 2) < 1e-6 && fabs(m.w[0] - 3) < 1e-6 && fabs(m.w[1] + 1) < 1e-6);
    assert_true(fabs(m.smear - 1) < 1e-6); /* no residuals: exp(0) */
    assert_true(fabs(predict_linear_value(&m, x + 6) - y[3]) < 1e-6);
}

/* --- features and labels --------------------------------------------------------- */

static int64_t t_base;

static void add(predict_corpus *c, const char *fmt, double day) {
    char when[40], text[1024];
    bsp_time_format(t_base + (int64_t)(day * (double)DAY), when, sizeof when);
    snprintf(text, sizeof text, fmt, when);
    cJSON *ev = cJSON_Parse(text);
    assert_non_null(ev);
    assert_int_equal(predict_corpus_add(c, ev), BSP_OK);
    cJSON_Delete(ev);
}

#define ORDER(rev, products)                                                                       \
    "{\"type\":\"track\",\"event\":\"Order Completed\",\"userId\":\"u\",\"timestamp\":\"%s\","     \
    "\"properties\":{\"revenue\":" #rev ",\"products\":[" products "]}}"
#define P(id, cat) "{\"product_id\":\"" id "\",\"category\":\"" cat "\"}"

/* An order on days 0, 10 and 40 (revenue 10, 30, 20), 5 refunded on day
 * 41, views and an add on day 45, and an order on day 60 (after t). */
static void history(predict_corpus *c) {
    assert_true(bsp_time_parse("2024-01-01T00:00:00Z", &t_base));
    assert_int_equal(predict_corpus_begin(c, 7, false), BSP_OK);
    add(c, ORDER(30, P("a", "Kitchen") "," P("b", "Kitchen")), 10);
    add(c, ORDER(10, P("a", "Kitchen")), 0);
    add(c, ORDER(20, P("c", "Garden") "," P("a", "Kitchen")), 40);
    add(c,
        "{\"type\":\"track\",\"event\":\"Order Refunded\",\"timestamp\":\"%s\",\"properties\":"
        "{\"revenue\":5}}",
        41);
    add(c, "{\"type\":\"page\",\"anonymousId\":\"x\",\"timestamp\":\"%s\"}", 45);
    add(c,
        "{\"type\":\"track\",\"event\":\"Product Viewed\",\"timestamp\":\"%s\",\"properties\":"
        "{\"product_id\":\"d\",\"category\":\"Garden\"}}",
        45.001);
    add(c,
        "{\"type\":\"track\",\"event\":\"Product Added\",\"timestamp\":\"%s\",\"properties\":"
        "{\"product_id\":\"d\",\"quantity\":2}}",
        45.002);
    add(c, "{\"type\":\"identify\",\"userId\":\"u\",\"timestamp\":\"%s\"}", 46);
    add(c, ORDER(100, P("e", "Garden")), 60);
    add(c, ORDER(7, P("e", "Garden")), 95);
    predict_corpus_end(c);
}

static void test_features_by_hand(void **state) {
    (void)state;
    predict_corpus c = {0};
    history(&c);
    assert_int_equal(c.n, 1);
    const predict_history *h = &c.profiles[0];
    assert_true(h->identified);
    assert_int_equal(h->n_events, 9);             /* identify is not behaviour */
    assert_int_equal(h->events[0].ts_ms, t_base); /* sorted */
    double x[PREDICT_FEATURES];
    predict_scratch s = {0};
    int64_t t = t_base + 50 * DAY;
    assert_int_equal(predict_features(h, t, &s, x), BSP_OK);
    const double tol = 1e-9;
    assert_true(x[0] == 1);                              /* has_ordered */
    assert_true(fabs(x[1] - log1p(10)) < tol);           /* last order on day 40 */
    assert_true(fabs(x[2] - log1p(50 - 45.002)) < 1e-6); /* the add */
    assert_true(fabs(x[3] - log1p(50)) < tol);           /* tenure */
    assert_true(fabs(x[4] - log1p(3)) < tol);            /* the day-60 order is after t */
    assert_true(fabs(x[5] - log1p(1)) < tol);            /* orders in 30 days: day 40 */
    assert_true(fabs(x[6] - log1p(3)) < tol);
    assert_true(fabs(x[8] - log1p(55)) < tol);         /* 10 + 30 + 20 - 5 */
    assert_true(fabs(x[10] - log1p(55.0 / 3)) < tol);  /* aov */
    assert_true(fabs(x[11] - log1p(20)) < tol);        /* gaps 10 and 30 */
    assert_true(fabs(x[12] - log1p(10)) < tol);        /* their sd */
    assert_true(fabs(x[13] - log1p(10.0 / 20)) < tol); /* overdue: 10 days of a 20-day cycle */
    assert_true(fabs(x[14] - log1p(3)) < tol);         /* a, b, c */
    assert_true(fabs(x[15] - 4.0 / 6) < tol);          /* 4 Kitchen of 6 lines with a category */
    /* sessions in 30 days: the day-40 order, the refund, the day-45 visit */
    assert_true(fabs(x[16] - log1p(3)) < tol);
    assert_true(fabs(x[17] - log1p(2)) < tol); /* page + product view */
    assert_true(fabs(x[18] - log1p(1)) < tol);
    assert_true(fabs(x[19] - log1p(2)) < tol); /* two in the cart since the last order */
    assert_true(fabs(x[20] - log1p(1)) < tol);
    /* before anything happened: no activity at all */
    assert_int_equal(predict_features(h, t_base, &s, x), BSP_OK);
    assert_true(x[0] == 0 && x[4] == 0 && x[3] == 0);
    /* after day 60 the cart is empty again (an order clears it) */
    assert_int_equal(predict_features(h, t_base + 61 * DAY, &s, x), BSP_OK);
    assert_true(x[19] == 0);
    assert_string_equal(predict_feature_names[PREDICT_FEATURES - 1], "log_reversals");
    predict_scratch_free(&s);
    predict_corpus_free(&c);
}

static void test_labels_by_window(void **state) {
    (void)state;
    predict_corpus c = {0};
    history(&c);
    const predict_history *h = &c.profiles[0];
    predict_labels y;
    /* at day 50: the day-60 order is within 30 days, the day-95 one within 90 */
    predict_labels_at(h, t_base + 50 * DAY, 30, 90, &y);
    assert_true(y.active && y.buyer && y.purchase && y.buy_within && !y.churn);
    assert_true(fabs(y.spend - 107) < 1e-9);
    /* at day 30: windows are half-open, [30, 60) holds day 40 but not 60 */
    predict_labels_at(h, t_base + 30 * DAY, 30, 30, &y);
    assert_true(y.purchase && fabs(y.spend - 15) < 1e-9); /* 20 - 5 refunded */
    /* at day 96: a buyer with nothing after: churned, spend 0 */
    predict_labels_at(h, t_base + 96 * DAY, 30, 90, &y);
    assert_true(y.buyer && !y.purchase && y.churn && y.spend == 0);
    /* before the first event: not active, not a buyer, so no churn */
    predict_labels_at(h, t_base - DAY, 30, 90, &y);
    assert_true(!y.active && !y.buyer && y.purchase && !y.churn);
    predict_corpus_free(&c);
}

/* --- metrics ------------------------------------------------------------------------ */

static void test_auc_by_hand(void **state) {
    (void)state;
    /* positives 0.35 and 0.8, negatives 0.1 and 0.4: of the four pairs,
     * three rank the positive higher -> 0.75 */
    const double s[] = {0.1, 0.4, 0.35, 0.8};
    const uint8_t y[] = {0, 0, 1, 1};
    assert_true(fabs(predict_auc(s, y, 4) - 0.75) < 1e-12);
    /* a tie counts a half */
    const double tie[] = {0.5, 0.5, 0.9};
    const uint8_t yt[] = {0, 1, 1};
    assert_true(fabs(predict_auc(tie, yt, 3) - 0.75) < 1e-12);
    const uint8_t all[] = {1, 1, 1};
    assert_true(isnan(predict_auc(tie, all, 3)));
    const double perfect[] = {3, 1, 2};
    const uint8_t yp[] = {1, 0, 1};
    assert_true(predict_auc(perfect, yp, 3) == 1.0);
}

static void test_calibration_bins(void **state) {
    (void)state;
    /* ten predictions, shuffled; five bins of two, in order of prediction */
    const double p[] = {0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 1.0, 0.4, 0.6, 0.8};
    const uint8_t y[] = {1, 0, 1, 0, 1, 0, 1, 0, 0, 1};
    predict_bin b[5];
    assert_int_equal(predict_calibration(p, y, 10, 5, b), BSP_OK);
    const double want_p[] = {0.15, 0.35, 0.55, 0.75, 0.95}, want_y[] = {0, 0, 0.5, 1, 1};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(b[i].n, 2);
        assert_true(fabs(b[i].predicted - want_p[i]) < 1e-12);
        assert_true(fabs(b[i].observed - want_y[i]) < 1e-12);
    }
    /* uneven: 7 into 3 bins -> 2, 2, 3 */
    assert_int_equal(predict_calibration(p, y, 7, 3, b), BSP_OK);
    assert_int_equal(b[0].n + b[1].n + b[2].n, 7);
    assert_int_equal(b[2].n, 3);
    assert_int_equal(predict_calibration(p, y, 10, 0, b), BSP_EINVAL);
}

static void test_spearman(void **state) {
    (void)state;
    const double a[] = {1, 2, 3, 4, 5}, up[] = {10, 20, 35, 36, 1000}, down[] = {5, 4, 3, 2, 1};
    assert_true(fabs(predict_spearman(a, up, 5) - 1) < 1e-12);
    assert_true(fabs(predict_spearman(a, down, 5) + 1) < 1e-12);
    const double flat[] = {1, 1, 1, 1, 1};
    assert_true(isnan(predict_spearman(a, flat, 5)));
}

/* --- on a store ------------------------------------------------------------------------ */

typedef struct fixture {
    char dir[64];
    bsp_store *st;
    bsp_segments *segs;
    bsp_ingest *ing;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    test_temp_dir(f->dir, "predict");
    bsp_store_opts so = {.no_sync = true};
    assert_int_equal(store_open(f->dir, &so, &f->st), BSP_OK);
    segments_opts sg = {.sweep_ms = 3600000, .rescan_ms = 3600000};
    assert_int_equal(segments_open(f->st, &sg, &f->segs), BSP_OK);
    ingest_hooks hooks = segments_hooks(f->segs);
    bsp_ingest_opts io = {.hooks = &hooks};
    assert_int_equal(ingest_start(f->st, &io, &f->ing), BSP_OK);
    assert_int_equal(segments_attach(f->segs, f->ing), BSP_OK);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    segments_stop(f->segs);
    ingest_stop(f->ing);
    segments_close(f->segs);
    store_close(f->st);
    test_temp_dir_remove(f->dir);
    free(f);
    return 0;
}

static void send(fixture *f, const char *batch) {
    test_send_batch(f->ing, batch);
}

/* Orders by user every `every` days from day `from` to day `to` (of 2024). */
static void orders(fixture *f, const char *user, int from, int to, int every) {
    bsp_buf b = {0};
    bsp_buf_puts(&b, "{\"batch\":[");
    for (int d = from, i = 0; d <= to; d += every, i++) {
        char when[40];
        bsp_time_format(t_base + d * DAY, when, sizeof when);
        bsp_buf_printf(&b,
                       "%s{\"type\":\"track\",\"event\":\"Order Completed\",\"userId\":\"%s\","
                       "\"messageId\":\"%s-%d\",\"timestamp\":\"%s\",\"properties\":{\"revenue\":"
                       "%d}}",
                       i ? "," : "", user, user, d, when, 20 + d % 7);
    }
    bsp_buf_puts(&b, "]}");
    send(f, b.data);
    bsp_buf_free(&b);
}

/* Weekly buyers to the end (day 300), monthly buyers who stopped at day
 * 180, and early buyers who stopped at day 100, 12 of each; a visitor who
 * only browsed. */
static void shop(fixture *f) {
    assert_true(bsp_time_parse("2024-01-01T00:00:00Z", &t_base));
    char user[32];
    for (int i = 0; i < 12; i++) {
        snprintf(user, sizeof user, "weekly%d", i);
        orders(f, user, i % 7, 300, 7);
        snprintf(user, sizeof user, "lapsed%d", i);
        orders(f, user, i, 180, 30);
        snprintf(user, sizeof user, "early%d", i);
        orders(f, user, i, 100, 14);
    }
    char when[40], batch[512];
    bsp_time_format(t_base + 299 * DAY, when, sizeof when);
    snprintf(batch, sizeof batch,
             "{\"batch\":[{\"type\":\"page\",\"anonymousId\":\"browser\",\"messageId\":\"pg1\","
             "\"timestamp\":\"%s\"}]}",
             when);
    send(f, batch);
}

static bsp_profile *load(fixture *f, const char *user) {
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    bsp_txn *txn;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    uint64_t pid;
    bsp_profile *p = NULL;
    if (ingest_resolve(txn, user, &pid) == BSP_OK) {
        bsp_slice raw;
        assert_int_equal(store_profile_get(txn, pid, &raw), BSP_OK);
        assert_int_equal(profile_from_json(raw.data, raw.len, &p), BSP_OK);
    }
    store_txn_abort(txn);
    return p;
}

static double score(fixture *f, const char *user, const char *key) {
    bsp_profile *p = load(f, user);
    assert_non_null(p);
    const cJSON *pred = profile_section(p, "predicted");
    if (!pred) fail_msg("%s has no predicted section", user);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(pred, key);
    double out = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    profile_free(p);
    return out;
}

static void put_segment(fixture *f, const char *id, const char *condition) {
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "condition", condition);
    bsp_error err;
    bsp_error_clear(&err);
    bsp_err rc = segments_put(f->segs, body, id, false, NULL, &err);
    cJSON_Delete(body);
    if (rc) fail_msg("put %s: %s", id, err.message);
}

static uint64_t members(fixture *f, const char *seg) {
    bsp_txn *txn;
    uint64_t n = 0;
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    assert_int_equal(store_members_count(txn, seg, &n), BSP_OK);
    store_txn_abort(txn);
    return n;
}

/* Until no segment is being filled in. */
static void wait_ready(fixture *f) {
    for (int i = 0; i < 500; i++) {
        bsp_txn *txn;
        assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
        cJSON *list = segments_list(f->segs, txn);
        store_txn_abort(txn);
        bool building = false;
        const cJSON *d;
        cJSON_ArrayForEach(d, list) {
            const char *status = json_get_string(d, "status");
            building |= status && strcmp(status, "building") == 0;
        }
        cJSON_Delete(list);
        if (!building) return;
        usleep(10000);
    }
    fail_msg("segments still building");
}

static void test_scores_on_profiles_and_segments(void **state) {
    fixture *f = *state;
    shop(f);
    put_segment(f, "likely_to_buy", "predicted.purchase > 0.5");
    put_segment(f, "at_risk", "predicted.churn > 0.7");
    wait_ready(f);
    assert_int_equal(members(f, "likely_to_buy"), 0);

    predict_run_opts o = {.validate = true};
    predict_summary *sum = calloc(1, sizeof *sum);
    assert_non_null(sum);
    assert_int_equal(predict_run(f->ing, f->st, &o, sum), BSP_OK);
    assert_int_equal(sum->profiles, 37);
    assert_int_equal(sum->scored, 37);
    assert_int_equal(sum->written, 37);
    assert_int_equal(sum->model_version, 1);
    assert_int_equal(sum->model.n_active, 36); /* the browser came after T0 */
    assert_int_equal(sum->model.n_buyers, 36);
    assert_true(sum->validated);
    for (int i = 0; i < 12; i++) {
        char user[32];
        snprintf(user, sizeof user, "weekly%d", i);
        if (score(f, user, "purchase") <= 0.5) fail_msg("%s: %g", user, score(f, user, "purchase"));
        assert_true(score(f, user, "churn") < 0.3);
        assert_true(score(f, user, "ltv") > 20);
        snprintf(user, sizeof user, "lapsed%d", i);
        assert_true(score(f, user, "purchase") < 0.5);
        if (score(f, user, "churn") <= 0.7) fail_msg("%s: %g", user, score(f, user, "churn"));
        if (score(f, user, "ltv") >= score(f, "weekly0", "ltv"))
            fail_msg("%s ltv %g vs %g p %g", user, score(f, user, "ltv"),
                     score(f, "weekly0", "ltv"), score(f, user, "purchase"));
    }
    /* the browser never ordered: a purchase score, no churn score */
    assert_true(score(f, "browser", "purchase") >= 0);
    assert_true(isnan(score(f, "browser", "churn")));
    assert_true(score(f, "weekly0", "model_version") == 1);
    bsp_profile *p = load(f, "weekly0");
    const char *at = json_get_string(profile_section(p, "predicted"), "scored_at");
    int64_t ms;
    assert_true(at && bsp_time_parse(at, &ms) && llabs(ms - bsp_now_ms()) < 60000);
    profile_free(p);

    /* nothing re-evaluates segments on predicted.* until asked */
    assert_int_equal(members(f, "likely_to_buy"), 0);
    assert_int_equal(segments_refresh_reading(f->segs, COND_USES_PREDICTED), 2);
    wait_ready(f);
    assert_int_equal(members(f, "likely_to_buy"), sum->likely_buyers);
    assert_true(members(f, "likely_to_buy") >= 12);
    assert_int_equal(members(f, "at_risk"), sum->at_risk);
    assert_true(members(f, "at_risk") >= 12);
    p = load(f, "weekly3");
    assert_true(profile_in_segment(p, "likely_to_buy"));
    assert_false(profile_in_segment(p, "at_risk"));
    profile_free(p);
    assert_int_equal(segments_refresh_reading(f->segs, COND_USES_RFM), 0);

    /* a second run is version 2 */
    assert_int_equal(predict_run(f->ing, f->st, &o, sum), BSP_OK);
    assert_int_equal(sum->model_version, 2);
    free(sum);
}

static void test_erased_profile_gets_no_score(void **state) {
    fixture *f = *state;
    shop(f);
    /* read the histories (as a run does), then erase one before writing */
    bsp_txn *txn;
    predict_corpus c;
    assert_int_equal(ingest_sync(f->ing), BSP_OK);
    assert_int_equal(store_txn_begin(f->st, false, &txn), BSP_OK);
    assert_int_equal(predict_corpus_load(txn, NULL, &c), BSP_OK);
    store_txn_abort(txn);
    predict_train_opts to = {0};
    predict_model m;
    assert_int_equal(predict_train(&c, &to, &m), BSP_OK);
    uint64_t *pids = calloc(c.n, sizeof *pids);
    predict_scores *sc = calloc(c.n, sizeof *sc);
    predict_scratch s = {0};
    for (size_t i = 0; i < c.n; i++) {
        pids[i] = c.profiles[i].pid;
        assert_int_equal(predict_score(&m, &c.profiles[i], c.last_ms + 1, &sc[i], &s), BSP_OK);
    }
    uint64_t deleted = 0;
    assert_int_equal(ingest_erase_profile(f->ing, "lapsed4", &deleted), BSP_OK);
    assert_true(deleted > 0);
    size_t written = 0;
    assert_int_equal(predict_apply(f->ing, pids, sc, c.n, 1, NULL, &written), BSP_OK);
    assert_int_equal(written, c.n - 1);
    assert_null(load(f, "lapsed4")); /* not written back */
    assert_true(score(f, "lapsed5", "churn") > 0.5);
    /* and the next run does not know the erased person at all */
    predict_run_opts o = {0};
    predict_summary *sum = calloc(1, sizeof *sum);
    assert_int_equal(predict_run(f->ing, f->st, &o, sum), BSP_OK);
    assert_int_equal(sum->profiles, c.n - 1);
    free(sum);
    predict_scratch_free(&s);
    free(pids);
    free(sc);
    predict_corpus_free(&c);
}

static void test_not_enough_history(void **state) {
    fixture *f = *state;
    assert_true(bsp_time_parse("2024-01-01T00:00:00Z", &t_base));
    orders(f, "solo", 0, 20, 5); /* nothing 90 days before the newest event */
    predict_run_opts o = {0};
    predict_summary *sum = calloc(1, sizeof *sum);
    assert_int_equal(predict_run(f->ing, f->st, &o, sum), BSP_ENOTFOUND);
    assert_int_equal(sum->written, 0);
    free(sum);
}

static void test_schedule_starts_and_stops(void **state) {
    fixture *f = *state;
    predict_schedule *sch;
    assert_int_equal(predict_schedule_start(f->ing, f->st, f->segs, 0, &sch), BSP_OK);
    assert_null(sch);
    shop(f);
    put_segment(f, "likely_to_buy", "predicted.purchase > 0.5");
    assert_int_equal(predict_schedule_start(f->ing, f->st, f->segs, 50, &sch), BSP_OK);
    assert_non_null(sch);
    uint64_t n = 0;
    for (int i = 0; i < 500 && n == 0; i++) { /* the first run comes after 50 ms */
        usleep(10000);
        n = members(f, "likely_to_buy");
    }
    predict_schedule_stop(sch);
    assert_true(n > 0); /* scored, then the segment refreshed */
    predict_schedule_stop(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logreg_recovers_known_coefficients),
        cmocka_unit_test(test_logreg_hand_case),
        cmocka_unit_test(test_ridge_exact),
        cmocka_unit_test(test_features_by_hand),
        cmocka_unit_test(test_labels_by_window),
        cmocka_unit_test(test_auc_by_hand),
        cmocka_unit_test(test_calibration_bins),
        cmocka_unit_test(test_spearman),
        cmocka_unit_test_setup_teardown(test_scores_on_profiles_and_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_erased_profile_gets_no_score, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_enough_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schedule_starts_and_stops, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
