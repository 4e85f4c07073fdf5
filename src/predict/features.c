/* features.c - what the models see of a profile at a reference time t,
 * computed from its events strictly before t only (so a model trained at
 * T0 never sees the window its labels come from), and the labels that
 * follow t. Counts, days and money enter as log1p: their distributions
 * are long-tailed, and the logistic models are linear in the features. */
#include "predict/predict_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const predict_feature_names[PREDICT_FEATURES] = {
    "has_ordered",        "log_recency_days",  "log_last_active_days",
    "log_tenure_days",    "log_orders",        "log_orders_30d",
    "log_orders_90d",     "log_orders_365d",   "log_revenue",
    "log_revenue_90d",    "log_aov",           "log_gap_mean_days",
    "log_gap_sd_days",    "log_overdue_ratio", "log_distinct_products",
    "top_category_share", "log_sessions_30d",  "log_page_views_30d",
    "log_adds_30d",       "log_cart_items",    "log_reversals"};

void predict_scratch_free(predict_scratch *s) {
    free(s->keys);
    memset(s, 0, sizeof *s);
}

static double days(int64_t ms) {
    return ms > 0 ? (double)ms / (double)PREDICT_DAY_MS : 0;
}

static double lg(double v) {
    return log1p(v > 0 ? v : 0);
}

/* Orders before t: counts by window, money, gaps between them. */
typedef struct order_stats {
    size_t orders, o30, o90, o365, reversals;
    double revenue, revenue90;
    int64_t first_ms, last_ms;
    double gap_sum, gap_sq;
} order_stats;

static void count_orders(const predict_history *h, int64_t t, order_stats *o) {
    memset(o, 0, sizeof *o);
    for (size_t i = 0; i < h->n_events && h->events[i].ts_ms < t; i++) {
        const predict_event *e = &h->events[i];
        int64_t age = t - e->ts_ms;
        bool recent90 = age <= 90 * PREDICT_DAY_MS;
        if (e->kind == PREDICT_REVERSAL) {
            o->reversals++;
            o->revenue -= e->amount;
            if (recent90) o->revenue90 -= e->amount;
        }
        if (e->kind != PREDICT_ORDER) continue;
        if (o->orders) {
            double gap = days(e->ts_ms - o->last_ms);
            o->gap_sum += gap;
            o->gap_sq += gap * gap;
        } else {
            o->first_ms = e->ts_ms;
        }
        o->orders++;
        o->last_ms = e->ts_ms;
        o->revenue += e->amount;
        o->o30 += age <= 30 * PREDICT_DAY_MS;
        o->o90 += recent90;
        o->o365 += age <= 365 * PREDICT_DAY_MS;
        if (recent90) o->revenue90 += e->amount;
    }
}

/* Activity in the 30 days before t: sessions (30 minutes of quiet end
 * one), pages and product views, adds; and the cart left since the last
 * order. */
typedef struct activity {
    size_t sessions, pages, adds;
    double cart;
    int64_t first_ms, last_ms;
} activity;

static void count_activity(const predict_history *h, int64_t t, activity *a) {
    memset(a, 0, sizeof *a);
    int64_t prev = INT64_MIN / 2, since = t - 30 * PREDICT_DAY_MS;
    for (size_t i = 0; i < h->n_events && h->events[i].ts_ms < t; i++) {
        const predict_event *e = &h->events[i];
        if (i == 0) a->first_ms = e->ts_ms;
        a->last_ms = e->ts_ms;
        if (e->kind == PREDICT_ORDER) a->cart = 0;
        if (e->kind == PREDICT_ADD) a->cart += e->amount;
        if (e->kind == PREDICT_REMOVE) a->cart = a->cart > e->amount ? a->cart - e->amount : 0;
        if (e->ts_ms < since) {
            prev = e->ts_ms;
            continue;
        }
        if (e->ts_ms - prev > PREDICT_SESSION_GAP_MS) a->sessions++;
        prev = e->ts_ms;
        a->pages += e->kind == PREDICT_PAGE || e->kind == PREDICT_VIEW;
        a->adds += e->kind == PREDICT_ADD;
    }
}

static int key_order(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts n keys in s and returns the number of distinct ones and, in
 * *top, the size of the largest run of equal non-zero keys. */
static size_t distinct(predict_scratch *s, size_t n, size_t *top) {
    qsort(s->keys, n, sizeof *s->keys, key_order);
    size_t count = 0, run = 0;
    *top = 0;
    for (size_t i = 0; i < n; i++) {
        bool same = i > 0 && s->keys[i] == s->keys[i - 1];
        run = same ? run + 1 : 1;
        count += !same;
        if (s->keys[i] && run > *top) *top = run;
    }
    return count;
}

/* Distinct products bought before t, and the share of the favourite
 * category among the products bought or viewed that name one. */
static bsp_err products(const predict_history *h, int64_t t, predict_scratch *s, double *x) {
    size_t n = 0;
    while (n < h->n_lines && h->lines[n].ts_ms < t)
        n++;
    bsp_err rc = predict_grow((void **)&s->keys, &s->cap, n + 1, sizeof *s->keys);
    if (rc != BSP_OK) return rc;
    size_t bought = 0, with_cat = 0, top;
    for (size_t i = 0; i < n; i++)
        if (h->lines[i].bought) s->keys[bought++] = h->lines[i].product;
    x[F_PRODUCTS] = lg((double)distinct(s, bought, &top));
    for (size_t i = 0; i < n; i++)
        if (h->lines[i].category) s->keys[with_cat++] = h->lines[i].category;
    distinct(s, with_cat, &top);
    x[F_TOP_CATEGORY] = with_cat ? (double)top / (double)with_cat : 0;
    return BSP_OK;
}

static void order_features(const order_stats *o, int64_t t, double *x) {
    double recency = o->orders ? days(t - o->last_ms) : PREDICT_NO_ORDER_DAYS;
    x[F_HAS_ORDERED] = o->orders > 0;
    x[F_RECENCY] = lg(recency);
    x[F_ORDERS] = lg((double)o->orders);
    x[F_ORDERS_30] = lg((double)o->o30);
    x[F_ORDERS_90] = lg((double)o->o90);
    x[F_ORDERS_365] = lg((double)o->o365);
    x[F_REVENUE] = lg(o->revenue);
    x[F_REVENUE_90] = lg(o->revenue90);
    x[F_AOV] = o->orders ? lg(o->revenue / (double)o->orders) : 0;
    x[F_REVERSALS] = lg((double)o->reversals);
    if (o->orders < 2) return;
    double gaps = (double)(o->orders - 1), mean = o->gap_sum / gaps;
    double var = o->gap_sq / gaps - mean * mean;
    x[F_GAP_MEAN] = lg(mean);
    x[F_GAP_SD] = lg(var > 0 ? sqrt(var) : 0);
    double overdue = recency / (mean > 1 ? mean : 1);
    x[F_OVERDUE] = lg(overdue < 20 ? overdue : 20);
}

bsp_err predict_features(const predict_history *h, int64_t t_ms, predict_scratch *s, double *x) {
    memset(x, 0, PREDICT_FEATURES * sizeof *x);
    order_stats o;
    activity a;
    count_orders(h, t_ms, &o);
    count_activity(h, t_ms, &a);
    order_features(&o, t_ms, x);
    bool any = h->n_events && h->events[0].ts_ms < t_ms;
    x[F_LAST_ACTIVE] = any ? lg(days(t_ms - a.last_ms)) : lg(PREDICT_NO_ORDER_DAYS);
    x[F_TENURE] = any ? lg(days(t_ms - a.first_ms)) : 0;
    x[F_SESSIONS_30] = lg((double)a.sessions);
    x[F_PAGES_30] = lg((double)a.pages);
    x[F_ADDS_30] = lg((double)a.adds);
    x[F_CART] = lg(a.cart);
    return products(h, t_ms, s, x);
}

/* --- labels ------------------------------------------------------------------- */

double predict_spend_between(const predict_history *h, int64_t from, int64_t to) {
    double sum = 0;
    for (size_t i = 0; i < h->n_events; i++) {
        const predict_event *e = &h->events[i];
        if (e->ts_ms < from || e->ts_ms >= to) continue;
        if (e->kind == PREDICT_ORDER) sum += e->amount;
        if (e->kind == PREDICT_REVERSAL) sum -= e->amount;
    }
    return sum;
}

void predict_labels_at(const predict_history *h, int64_t t_ms, int purchase_days, int horizon_days,
                       predict_labels *out) {
    memset(out, 0, sizeof *out);
    int64_t p_end = t_ms + purchase_days * PREDICT_DAY_MS;
    int64_t h_end = t_ms + horizon_days * PREDICT_DAY_MS;
    for (size_t i = 0; i < h->n_events; i++) {
        const predict_event *e = &h->events[i];
        bool order = e->kind == PREDICT_ORDER;
        if (e->ts_ms < t_ms) {
            out->active = true;
            out->buyer |= order;
            continue;
        }
        out->purchase |= order && e->ts_ms < p_end;
        out->buy_within |= order && e->ts_ms < h_end;
    }
    out->churn = out->buyer && !out->buy_within;
    double spend = predict_spend_between(h, t_ms, h_end);
    out->spend = spend > 0 ? spend : 0;
}
