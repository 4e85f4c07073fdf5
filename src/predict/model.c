/* model.c - the scores from the features: training the four linear models
 * at T0 = T1 - horizon (features before T0, labels from the windows after
 * it, which end by T1 and so are fully observed), scoring a profile at any
 * time, and measuring a model against the labels that follow a reference
 * time, beside simple rules (recency only, frequency only) as baselines. */
#include "predict/predict_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LTV_EXP_MAX 30.0 /* exp() argument cap of the spend model */

/* Features and labels of the active profiles of a corpus at one time. */
typedef struct dataset {
    size_t n;
    double *x; /* n x PREDICT_FEATURES */
    predict_labels *y;
    size_t *who; /* index of the profile in the corpus */
} dataset;

static void dataset_free(dataset *ds) {
    free(ds->x);
    free(ds->y);
    free(ds->who);
    memset(ds, 0, sizeof *ds);
}

static bsp_err dataset_alloc(dataset *ds, size_t n) {
    memset(ds, 0, sizeof *ds);
    size_t m = n ? n : 1;
    ds->x = malloc(m * PREDICT_FEATURES * sizeof *ds->x);
    ds->y = malloc(m * sizeof *ds->y);
    ds->who = malloc(m * sizeof *ds->who);
    if (ds->x && ds->y && ds->who) return BSP_OK;
    dataset_free(ds);
    return BSP_ENOMEM;
}

static bsp_err dataset_build(const predict_corpus *c, int64_t t, int purchase_days,
                             int horizon_days, bool identified_only, dataset *ds) {
    bsp_err rc = dataset_alloc(ds, c->n);
    predict_scratch s = {0};
    for (size_t i = 0; i < c->n && rc == BSP_OK; i++) {
        const predict_history *h = &c->profiles[i];
        if (identified_only && !h->identified) continue;
        predict_labels *y = &ds->y[ds->n];
        predict_labels_at(h, t, purchase_days, horizon_days, y);
        if (!y->active) continue;
        rc = predict_features(h, t, &s, ds->x + ds->n * PREDICT_FEATURES);
        ds->who[ds->n++] = i;
    }
    predict_scratch_free(&s);
    if (rc != BSP_OK) dataset_free(ds);
    return rc;
}

/* --- training ------------------------------------------------------------------ */

typedef enum { PICK_ALL, PICK_BUYERS, PICK_SPENDERS } pick;

static bool picked(const predict_labels *y, pick which) {
    return which == PICK_ALL || (which == PICK_BUYERS ? y->buyer : y->spend > 0);
}

/* The rows of ds that which selects, with the target of what. */
typedef enum { TARGET_PURCHASE, TARGET_BUY, TARGET_CHURN, TARGET_LOG_SPEND } target;

static double target_of(const predict_labels *y, target what) {
    switch (what) {
    case TARGET_PURCHASE:
        return y->purchase;
    case TARGET_BUY:
        return y->buy_within;
    case TARGET_CHURN:
        return y->churn;
    default:
        return log(y->spend);
    }
}

typedef struct rows {
    double *x, *y;
    size_t n;
    double mean_y;
} rows;

static bsp_err rows_take(const dataset *ds, pick which, target what, rows *r) {
    memset(r, 0, sizeof *r);
    r->x = malloc((ds->n ? ds->n : 1) * PREDICT_FEATURES * sizeof *r->x);
    r->y = malloc((ds->n ? ds->n : 1) * sizeof *r->y);
    if (!r->x || !r->y) {
        free(r->x);
        free(r->y);
        return BSP_ENOMEM;
    }
    double sum = 0;
    for (size_t i = 0; i < ds->n; i++) {
        if (!picked(&ds->y[i], which)) continue;
        memcpy(r->x + r->n * PREDICT_FEATURES, ds->x + i * PREDICT_FEATURES,
               PREDICT_FEATURES * sizeof *r->x);
        r->y[r->n] = target_of(&ds->y[i], what);
        sum += r->y[r->n++];
    }
    r->mean_y = r->n ? sum / (double)r->n : 0;
    return BSP_OK;
}

static bsp_err fit(const dataset *ds, pick which, target what, double lambda, predict_linear *m,
                   size_t *n, double *rate) {
    rows r;
    bsp_err rc = rows_take(ds, which, what, &r);
    bool logistic = what != TARGET_LOG_SPEND;
    if (rc == BSP_OK && (r.n < 2 || (logistic && (r.mean_y <= 0 || r.mean_y >= 1))))
        rc = BSP_ENOTFOUND;                                  /* one class only: nothing to learn */
    predict_linear_scale(ds->x, ds->n, PREDICT_FEATURES, m); /* all active profiles' scale */
    if (rc == BSP_OK)
        rc = logistic ? predict_logreg_fit_scaled(r.x, r.y, r.n, lambda, m)
                      : predict_ridge_fit_scaled(r.x, r.y, r.n, lambda, m);
    if (n) *n = r.n;
    if (rate) *rate = r.mean_y;
    free(r.x);
    free(r.y);
    return rc;
}

bsp_err predict_train(const predict_corpus *c, const predict_train_opts *o, predict_model *out) {
    memset(out, 0, sizeof *out);
    out->purchase_days = o->purchase_days ? o->purchase_days : PREDICT_PURCHASE_DAYS;
    out->horizon_days = o->horizon_days ? o->horizon_days : PREDICT_HORIZON_DAYS;
    double lambda = o->lambda > 0 ? o->lambda : PREDICT_LAMBDA;
    int64_t t1 = o->reference_ms ? o->reference_ms : c->last_ms + 1;
    out->trained_at_ms = t1 - out->horizon_days * PREDICT_DAY_MS;
    dataset ds;
    bsp_err rc = dataset_build(c, out->trained_at_ms, out->purchase_days, out->horizon_days,
                               o->identified_only, &ds);
    if (rc != BSP_OK) return rc;
    rc = fit(&ds, PICK_ALL, TARGET_PURCHASE, lambda, &out->purchase, &out->n_active,
             &out->rate_purchase);
    if (rc == BSP_OK)
        rc = fit(&ds, PICK_BUYERS, TARGET_CHURN, lambda, &out->churn, &out->n_buyers,
                 &out->rate_churn);
    if (rc == BSP_OK) rc = fit(&ds, PICK_ALL, TARGET_BUY, lambda, &out->buy, NULL, NULL);
    if (rc == BSP_OK)
        rc = fit(&ds, PICK_SPENDERS, TARGET_LOG_SPEND, lambda, &out->spend, &out->n_spenders, NULL);
    dataset_free(&ds);
    return rc;
}

/* --- scoring -------------------------------------------------------------------- */

static void score_row(const predict_model *m, const double *x, predict_scores *out) {
    out->purchase = predict_logreg_prob(&m->purchase, x);
    out->churn = x[F_HAS_ORDERED] > 0 ? predict_logreg_prob(&m->churn, x) : NAN;
    double log_spend = predict_linear_value(&m->spend, x);
    double spend = m->spend.smear * exp(log_spend < LTV_EXP_MAX ? log_spend : LTV_EXP_MAX);
    out->ltv = predict_logreg_prob(&m->buy, x) * spend;
}

bsp_err predict_score(const predict_model *m, const predict_history *h, int64_t t_ms,
                      predict_scores *out, predict_scratch *s) {
    double x[PREDICT_FEATURES];
    bsp_err rc = predict_features(h, t_ms, s, x);
    if (rc == BSP_OK) score_row(m, x, out);
    return rc;
}

/* --- evaluation ------------------------------------------------------------------- */

/* One binary score: the model's AUC, Brier score and calibration, and the
 * AUC of each baseline rule. */
typedef struct binary_eval {
    double *p, *base[PREDICT_BASELINES];
    uint8_t *y;
    size_t n;
} binary_eval;

static void binary_free(binary_eval *b) {
    free(b->p);
    free(b->y);
    for (size_t k = 0; k < PREDICT_BASELINES; k++)
        free(b->base[k]);
}

static bsp_err binary_alloc(binary_eval *b, size_t n) {
    memset(b, 0, sizeof *b);
    size_t m = n ? n : 1;
    b->p = malloc(m * sizeof *b->p);
    b->y = malloc(m);
    bool ok = b->p && b->y;
    for (size_t k = 0; k < PREDICT_BASELINES; k++)
        ok = (b->base[k] = malloc(m * sizeof *b->base[k])) && ok;
    if (ok) return BSP_OK;
    binary_free(b);
    return BSP_ENOMEM;
}

static bsp_err binary_report(const binary_eval *b, predict_auc_row *row) {
    memset(row, 0, sizeof *row);
    row->n = b->n;
    row->model = predict_auc(b->p, b->y, b->n);
    for (size_t k = 0; k < PREDICT_BASELINES; k++)
        row->baseline[k] = predict_auc(b->base[k], b->y, b->n);
    double brier = 0, rate = 0;
    for (size_t i = 0; i < b->n; i++) {
        brier += (b->p[i] - b->y[i]) * (b->p[i] - b->y[i]);
        rate += b->y[i];
    }
    row->brier = b->n ? brier / (double)b->n : NAN;
    row->base_rate = b->n ? rate / (double)b->n : NAN;
    return predict_calibration(b->p, b->y, b->n, 10, row->bins);
}

typedef struct ltv_eval {
    double *truth, *pred[3];
} ltv_eval;

static void ltv_free(ltv_eval *l) {
    free(l->truth);
    for (size_t k = 0; k < 3; k++)
        free(l->pred[k]);
}

static bsp_err ltv_alloc(ltv_eval *l, size_t n) {
    memset(l, 0, sizeof *l);
    size_t m = n ? n : 1;
    bool ok = (l->truth = malloc(m * sizeof *l->truth)) != NULL;
    for (size_t k = 0; k < 3; k++)
        ok = (l->pred[k] = malloc(m * sizeof *l->pred[k])) && ok;
    if (ok) return BSP_OK;
    ltv_free(l);
    return BSP_ENOMEM;
}

static const char *const ltv_names[3] = {"two-part model", "last window again",
                                         "lifetime rate x horizon"};

static void ltv_report(const ltv_eval *l, size_t n, predict_report *r) {
    r->n_ltv = 3;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += l->truth[i];
    r->mean_spend = n ? sum / (double)n : NAN;
    for (size_t k = 0; k < 3; k++) {
        double ae = 0, se = 0;
        for (size_t i = 0; i < n; i++) {
            double e = l->pred[k][i] - l->truth[i];
            ae += fabs(e), se += e * e;
        }
        r->ltv[k] = (predict_ltv_row){ltv_names[k], n ? ae / (double)n : NAN,
                                      n ? sqrt(se / (double)n) : NAN,
                                      predict_spearman(l->pred[k], l->truth, n)};
    }
}

/* The baselines' guesses of spend: the last horizon's spend again, and
 * the lifetime spend rate (over at least one horizon) times the horizon. */
static void ltv_baselines(const predict_history *h, int64_t t, int horizon_days, double *last,
                          double *rate) {
    int64_t hz = horizon_days * PREDICT_DAY_MS;
    double before = predict_spend_between(h, INT64_MIN, t);
    double recent = predict_spend_between(h, t - hz, t);
    int64_t tenure = h->n_events ? t - h->events[0].ts_ms : 0;
    *last = recent > 0 ? recent : 0;
    *rate = before > 0 ? before * (double)hz / (double)(tenure > hz ? tenure : hz) : 0;
}

typedef struct eval_state {
    binary_eval purchase, churn;
    ltv_eval ltv;
} eval_state;

static void eval_row(eval_state *e, const predict_model *m, const predict_corpus *c,
                     const dataset *ds, size_t i, const predict_eval_opts *o) {
    const double *x = ds->x + i * PREDICT_FEATURES;
    const predict_labels *y = &ds->y[i];
    predict_scores sc;
    score_row(m, x, &sc);
    binary_eval *p = &e->purchase;
    p->p[p->n] = sc.purchase;
    p->y[p->n] = y->purchase;
    p->base[0][p->n] = -x[F_RECENCY];
    p->base[1][p->n++] = x[F_ORDERS];
    if (y->buyer) {
        binary_eval *ch = &e->churn;
        ch->p[ch->n] = sc.churn;
        ch->y[ch->n] = y->churn;
        ch->base[0][ch->n] = x[F_RECENCY];
        ch->base[1][ch->n++] = -x[F_ORDERS];
    }
    e->ltv.truth[i] = y->spend;
    e->ltv.pred[0][i] = sc.ltv;
    ltv_baselines(&c->profiles[ds->who[i]], o->at_ms, o->horizon_days, &e->ltv.pred[1][i],
                  &e->ltv.pred[2][i]);
}

bsp_err predict_evaluate(const predict_corpus *c, const predict_model *m,
                         const predict_eval_opts *o, predict_report *out) {
    memset(out, 0, sizeof *out);
    dataset ds;
    bsp_err rc =
        dataset_build(c, o->at_ms, o->purchase_days, o->horizon_days, o->identified_only, &ds);
    if (rc != BSP_OK) return rc;
    eval_state e;
    bsp_err a = binary_alloc(&e.purchase, ds.n), b = binary_alloc(&e.churn, ds.n);
    bsp_err l = ltv_alloc(&e.ltv, ds.n);
    rc = a ? a : b ? b : l;
    for (size_t i = 0; i < ds.n && rc == BSP_OK; i++)
        eval_row(&e, m, c, &ds, i, o);
    if (rc == BSP_OK) rc = binary_report(&e.purchase, &out->purchase);
    if (rc == BSP_OK) rc = binary_report(&e.churn, &out->churn);
    if (rc == BSP_OK) ltv_report(&e.ltv, ds.n, out);
    if (!a) binary_free(&e.purchase);
    if (!b) binary_free(&e.churn);
    if (!l) ltv_free(&e.ltv);
    dataset_free(&ds);
    return rc;
}

/* --- the report ---------------------------------------------------------------------- */

static void print_binary(FILE *f, const char *name, const predict_auc_row *r) {
    fprintf(f, "%-9s %8zu %9.3f %10.4f %8.4f %12.4f %12.4f\n", name, r->n, r->base_rate, r->model,
            r->brier, r->baseline[0], r->baseline[1]);
}

static void print_bins(FILE *f, const char *name, const predict_auc_row *r) {
    fprintf(f, "calibration of %s (deciles of the prediction): predicted / observed\n ", name);
    for (size_t b = 0; b < 10; b++)
        fprintf(f, " %.3f/%.3f", r->bins[b].predicted, r->bins[b].observed);
    fprintf(f, "\n");
}

void predict_report_print(FILE *f, const predict_report *r, const char *title) {
    fprintf(f, "%s\n", title);
    fprintf(f, "%-9s %8s %9s %10s %8s %12s %12s\n", "score", "n", "rate", "AUC", "Brier",
            "AUC recency", "AUC freq.");
    print_binary(f, "purchase", &r->purchase);
    print_binary(f, "churn", &r->churn);
    print_bins(f, "purchase", &r->purchase);
    print_bins(f, "churn", &r->churn);
    fprintf(f, "%-24s %10s %10s %10s   (mean actual spend %.2f)\n", "ltv", "MAE", "RMSE",
            "Spearman", r->mean_spend);
    for (size_t k = 0; k < r->n_ltv; k++)
        fprintf(f, "%-24s %10.2f %10.2f %10.4f\n", r->ltv[k].name, r->ltv[k].mae, r->ltv[k].rmse,
                r->ltv[k].spearman);
}
