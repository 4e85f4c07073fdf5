/* predict_internal.h - what the files of src/predict/ share and nothing
 * outside includes:
 *
 *   corpus.c    timelines -> compact histories
 *   features.c  features and labels at a reference time
 *   linear.c    logistic and ridge regression (OpenBLAS + LAPACKE)
 *   metrics.c   AUC, calibration bins, rank correlation
 *   model.c     training at T0, scoring, evaluation against baselines
 *   run.c       the scoring run, its ingest jobs and the periodic schedule
 *   cli.c       `bespoke predict` and the scores part of `bespoke eval` */
#ifndef BSP_PREDICT_INTERNAL_H
#define BSP_PREDICT_INTERNAL_H

#include "predict/predict.h"

#define PREDICT_LAMBDA 1.0
#define PREDICT_SESSION_GAP_MS (30LL * 60 * 1000)
#define PREDICT_NO_ORDER_DAYS 1000.0 /* recency of a profile that never ordered */

/* Column indices of the features the baselines and tests read. */
enum {
    F_HAS_ORDERED,
    F_RECENCY,
    F_LAST_ACTIVE,
    F_TENURE,
    F_ORDERS,
    F_ORDERS_30,
    F_ORDERS_90,
    F_ORDERS_365,
    F_REVENUE,
    F_REVENUE_90,
    F_AOV,
    F_GAP_MEAN,
    F_GAP_SD,
    F_OVERDUE,
    F_PRODUCTS,
    F_TOP_CATEGORY,
    F_SESSIONS_30,
    F_PAGES_30,
    F_ADDS_30,
    F_CART,
    F_REVERSALS,
};

/* Grows *arr (elements of size bytes) to hold need; BSP_ENOMEM. */
bsp_err predict_grow(void **arr, size_t *cap, size_t need, size_t size);

#define PREDICT_Z_CLIP 5.0 /* standardized features are kept within +-5 */

/* Sets m's d, mean, sd (0 for a constant column) and clip from the n x d
 * rows of x, clearing the rest. The *_scaled fits then keep that scale
 * (the models of a run share the scale of all active profiles, not of
 * their own subsets, which may vary little in some column). */
void predict_linear_scale(const double *x, size_t n, size_t d, predict_linear *m);
bsp_err predict_logreg_fit_scaled(const double *x, const double *y, size_t n, double lambda,
                                  predict_linear *m);
bsp_err predict_ridge_fit_scaled(const double *x, const double *y, size_t n, double lambda,
                                 predict_linear *m);

/* Net order amount in [from, to). */
double predict_spend_between(const predict_history *h, int64_t from, int64_t to);

#endif
