/* predict.h - predictive scores on profiles: purchase propensity (an order
 * in the next 30 days), churn (a buyer with no order in the next 90 days)
 * and predicted LTV (net revenue in the next 90 days), learnt from the
 * event log with a time split and stored on every profile as the section
 * predicted = {"purchase", "churn", "ltv", "model_version", "scored_at"},
 * which conditions read as predicted.* ("likely to buy", "at risk").
 *
 * How (docs/evaluation.md has the protocol and the figures):
 *   - a corpus: every profile's timeline read once into compact histories
 *     (orders with their amount and products, refunds, views, adds, pages);
 *   - features at a reference time T from events strictly before T only
 *     (PREDICT_FEATURES: recency, frequency, monetary, tenure, windowed
 *     order counts, inter-order gaps, distinct products, sessions, cart...),
 *     labels from the windows [T, T+30d) and [T, T+90d);
 *   - training at T0 = T1 - 90 days, where T1 is the newest event, so the
 *     labels are fully observed; the models are then applied at T1;
 *   - models written here on OpenBLAS + LAPACKE: L2-regularized logistic
 *     regression on standardized features, fitted by Newton's method
 *     (IRLS) with a Cholesky solve per step, for purchase and churn; LTV
 *     is a two-part model, P(an order within 90 days) from a third
 *     logistic regression times the expected spend of a buyer from a ridge
 *     regression on log spend (Duan's smearing for the back-transform).
 * Writes happen on the ingest writer thread, a few hundred profiles a job,
 * so events are never held up for long and an erased profile is never
 * written back. */
#ifndef BSP_PREDICT_H
#define BSP_PREDICT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cJSON.h>

#include "core/core.h"
#include "ingest/ingest.h"
#include "store/store.h"

#define PREDICT_DAY_MS (24LL * 3600 * 1000)
#define PREDICT_PURCHASE_DAYS 30
#define PREDICT_HORIZON_DAYS 90
#define PREDICT_MAX_DIM 32 /* features a linear model may take */
#define PREDICT_BINS_MAX 20

/* --- histories ------------------------------------------------------------ */

typedef enum predict_kind {
    PREDICT_ORDER,    /* Order Completed: amount = revenue (else total, else sum of lines) */
    PREDICT_REVERSAL, /* Order Refunded / Order Cancelled: amount as for orders */
    PREDICT_VIEW,     /* Product Viewed */
    PREDICT_ADD,      /* Product Added: amount = quantity */
    PREDICT_REMOVE,   /* Product Removed: amount = quantity */
    PREDICT_PAGE,     /* page and screen calls */
    PREDICT_OTHER     /* any other track event (searches, promotions, ...) */
} predict_kind;

typedef struct predict_event {
    int64_t ts_ms;
    double amount;
    uint8_t kind; /* predict_kind */
} predict_event;

/* A product of an order, or a viewed product: hashes of its id and of its
 * category (0 when the event names none). */
typedef struct predict_line {
    int64_t ts_ms;
    uint64_t product;
    uint64_t category;
    bool bought;
} predict_line;

/* One profile's behaviour, chronological (both arrays sorted by time). */
typedef struct predict_history {
    uint64_t pid;
    bool identified; /* the profile has a userId */
    const predict_event *events;
    size_t n_events;
    const predict_line *lines;
    size_t n_lines;
    size_t events_from, lines_from; /* where they start in the corpus's arrays */
} predict_history;

/* Every profile's history, in pid order, in two shared arrays. */
typedef struct predict_corpus {
    predict_history *profiles;
    size_t n, cap;
    predict_event *events;
    size_t n_events, cap_events;
    predict_line *lines;
    size_t n_lines, cap_lines;
    int64_t first_ms, last_ms; /* oldest and newest event (0 when empty) */
} predict_corpus;

/* Progress and cancellation of long runs (all optional): progress(ctx,
 * stage, done, total) now and then; the run ends with BSP_EUNAVAIL once
 * *cancel is true. */
typedef struct predict_ctl {
    void (*progress)(void *ctx, const char *stage, size_t done, size_t total);
    void *ctx;
    atomic_bool *cancel;
} predict_ctl;

/* Adds one normalized event (event.h) to the profile being built, the
 * last one begun with predict_corpus_begin. Events that say nothing of
 * behaviour (identify, alias, group) are skipped. */
bsp_err predict_corpus_begin(predict_corpus *c, uint64_t pid, bool identified);
bsp_err predict_corpus_add(predict_corpus *c, const cJSON *event);
/* Sorts the profile begun last by time; call after its last event. */
void predict_corpus_end(predict_corpus *c);
/* Reads every stored profile's timeline (in txn). ctl may be NULL. */
bsp_err predict_corpus_load(bsp_txn *txn, const predict_ctl *ctl, predict_corpus *out);
void predict_corpus_free(predict_corpus *c);

/* --- features and labels ---------------------------------------------------- */

#define PREDICT_FEATURES 21
/* Column names, in order (log_* are log1p of days, counts or money). */
extern const char *const predict_feature_names[PREDICT_FEATURES];

/* A buffer features reuse between profiles; zero it before first use. */
typedef struct predict_scratch {
    uint64_t *keys;
    size_t cap;
} predict_scratch;
void predict_scratch_free(predict_scratch *s);

/* The features of h as of t_ms, from its events strictly before t_ms. */
bsp_err predict_features(const predict_history *h, int64_t t_ms, predict_scratch *s, double *x);

typedef struct predict_labels {
    bool active;     /* some event before t */
    bool buyer;      /* some order before t */
    bool purchase;   /* an order in [t, t + purchase_days) */
    bool buy_within; /* an order in [t, t + horizon_days) */
    bool churn;      /* buyer and no order in [t, t + horizon_days) */
    double spend;    /* net order amount in [t, t + horizon_days), at least 0 */
} predict_labels;
void predict_labels_at(const predict_history *h, int64_t t_ms, int purchase_days, int horizon_days,
                       predict_labels *out);

/* --- models ---------------------------------------------------------------------- */

/* A linear model on standardized features: z_j = (x_j - mean_j) / sd_j
 * (0 for a constant column; kept within +-clip when clip > 0, so a
 * profile far outside the training range does not extrapolate wildly),
 * value = b + w . z. */
typedef struct predict_linear {
    size_t d;
    double mean[PREDICT_MAX_DIM], sd[PREDICT_MAX_DIM], w[PREDICT_MAX_DIM];
    double clip;
    double b;
    double smear; /* ridge on logs: mean of exp(residual), Duan's smearing */
    int iterations;
} predict_linear;

/* L2-regularized logistic regression: minimizes the negative
 * log-likelihood + lambda/2 |w|^2 (the intercept is not penalized) by
 * Newton's method, each step a Cholesky solve (LAPACKE_dposv) of the
 * (d+1)-square Hessian built with cblas_dsyrk. x is n x d row-major, y 0/1.
 * standardize false keeps the raw columns (mean 0, sd 1). BSP_EINVAL for
 * d over PREDICT_MAX_DIM or n = 0, BSP_EINTERNAL when it does not converge. */
bsp_err predict_logreg_fit(const double *x, const double *y, size_t n, size_t d, double lambda,
                           bool standardize, predict_linear *out);
double predict_logreg_prob(const predict_linear *m, const double *x);

/* Ridge regression (closed form, the same Cholesky solve) of y on x; also
 * sets smear. predict_linear_value gives b + w . z. */
bsp_err predict_ridge_fit(const double *x, const double *y, size_t n, size_t d, double lambda,
                          bool standardize, predict_linear *out);
double predict_linear_value(const predict_linear *m, const double *x);

/* The four models of a run and what they were trained on. */
typedef struct predict_model {
    predict_linear purchase; /* P(order in purchase_days), over active profiles */
    predict_linear churn;    /* P(no order in horizon_days), over buyers */
    predict_linear buy;      /* P(order in horizon_days), over active profiles */
    predict_linear spend;    /* log net spend of those who bought within the horizon */
    int purchase_days, horizon_days;
    int64_t trained_at_ms; /* T0: features before it, labels after it */
    size_t n_active, n_buyers, n_spenders;
    double rate_purchase, rate_churn; /* base rates of the training labels */
} predict_model;

typedef struct predict_train_opts {
    int64_t reference_ms; /* T1, when the model will be applied; 0 = newest event + 1 ms */
    int purchase_days;    /* 0 = PREDICT_PURCHASE_DAYS */
    int horizon_days;     /* 0 = PREDICT_HORIZON_DAYS */
    double lambda;        /* 0 = 1.0 (on standardized features) */
    bool identified_only; /* train on profiles with a userId only */
} predict_train_opts;

/* Trains at T0 = T1 - horizon. BSP_ENOTFOUND when the training labels
 * lack a class (no buyer, or nobody came back): nothing to learn. */
bsp_err predict_train(const predict_corpus *c, const predict_train_opts *o, predict_model *out);

typedef struct predict_scores {
    double purchase, churn, ltv; /* churn is NaN for a profile that never ordered */
} predict_scores;
bsp_err predict_score(const predict_model *m, const predict_history *h, int64_t t_ms,
                      predict_scores *out, predict_scratch *s);

/* --- metrics --------------------------------------------------------------------- */

/* Area under the ROC curve (Mann-Whitney, ties count a half); NaN when a
 * class is empty. */
double predict_auc(const double *score, const uint8_t *label, size_t n);

/* Calibration: the n predictions sorted and cut into bins of equal count
 * (bin i holds ranks [i*n/bins, (i+1)*n/bins)), each with its mean
 * prediction and observed rate. bins 1..PREDICT_BINS_MAX. */
typedef struct predict_bin {
    size_t n;
    double predicted, observed;
} predict_bin;
bsp_err predict_calibration(const double *p, const uint8_t *label, size_t n, size_t bins,
                            predict_bin *out);

/* Spearman's rank correlation (average ranks for ties); NaN if a side is
 * constant. */
double predict_spearman(const double *a, const double *b, size_t n);

/* --- evaluation -------------------------------------------------------------------- */

typedef struct predict_eval_opts {
    int64_t at_ms; /* features before it, labels after it */
    int purchase_days, horizon_days;
    bool identified_only;
} predict_eval_opts;

#define PREDICT_BASELINES 2
typedef struct predict_auc_row {
    double model;
    double baseline[PREDICT_BASELINES]; /* recency only, frequency only */
    double brier, base_rate;
    size_t n;
    predict_bin bins[10];
} predict_auc_row;

typedef struct predict_ltv_row {
    const char *name;
    double mae, rmse, spearman;
} predict_ltv_row;

typedef struct predict_report {
    predict_auc_row purchase, churn;
    predict_ltv_row ltv[3]; /* the model, last horizon's spend again, tenure rate x horizon */
    size_t n_ltv;
    double mean_spend;
} predict_report;

/* Scores the corpus at o->at_ms with m and measures it against the labels
 * that follow, with the baselines. */
bsp_err predict_evaluate(const predict_corpus *c, const predict_model *m,
                         const predict_eval_opts *o, predict_report *out);
void predict_report_print(FILE *out, const predict_report *r, const char *title);

/* --- the run: score every profile and store the scores ------------------------------ */

typedef struct predict_run_opts {
    predict_train_opts train;
    predict_ctl ctl;
    bool validate; /* also train at T1 - 2 x horizon and report on [T1 - horizon, T1) */
} predict_run_opts;

typedef struct predict_summary {
    predict_model model;
    bool validated;
    predict_report validation;
    size_t profiles, scored, written;
    uint64_t model_version;
    int64_t reference_ms;
    double mean_purchase, mean_churn, mean_ltv;
    size_t likely_buyers, at_risk; /* purchase > 0.5; churn > 0.7 */
    double load_seconds, train_seconds, score_seconds, write_seconds, seconds;
} predict_summary;

/* Reads every profile (after ingest_sync), trains, scores and writes the
 * section "predicted" of each profile through ingest jobs (PREDICT_CHUNK a
 * transaction). The version counts runs (meta "predict_version"). */
#define PREDICT_CHUNK 500
bsp_err predict_run(bsp_ingest *ing, bsp_store *st, const predict_run_opts *o,
                    predict_summary *out);

/* Writes the scores of pids (ascending) through ingest jobs: profiles gone
 * since (erased, merged away) are skipped. For predict_run and tests. */
bsp_err predict_apply(bsp_ingest *ing, const uint64_t *pids, const predict_scores *scores, size_t n,
                      uint64_t version, const predict_ctl *ctl, size_t *written);
/* Increments and returns the run counter, in a job. */
bsp_err predict_next_version(bsp_ingest *ing, uint64_t *version);

/* Runs predict_run every interval_ms on a thread of its own (the first run
 * after a minute, or after interval_ms if shorter), then asks segs (may be
 * NULL) to re-evaluate the segments that read predicted.*. interval_ms 0
 * starts nothing. Stop before stopping ingest. */
struct bsp_segments;
typedef struct predict_schedule predict_schedule;
bsp_err predict_schedule_start(bsp_ingest *ing, bsp_store *st, struct bsp_segments *segs,
                               uint64_t interval_ms, predict_schedule **out);
void predict_schedule_stop(predict_schedule *s); /* NULL is a no-op */

/* --- commands ------------------------------------------------------------------------ */

/* `bespoke predict`: argv[0] is "predict". Returns the exit code. */
int predict_command(int argc, char **argv);
void predict_usage(FILE *out);
/* The scores part of `bespoke eval`: imports file (Online Retail CSV) into
 * a temporary store, trains before the cutoff and reports against what
 * follows it. Prints to stdout; returns the exit code. */
int predict_cmd_eval(const char *file, int64_t cutoff_ms, bool progress);

#endif
