/* linear.c - the two linear models the scores are made of, on OpenBLAS and
 * LAPACKE: L2-regularized logistic regression fitted by Newton's method
 * (iteratively reweighted least squares) and ridge regression in closed
 * form. Both work on a design matrix Z = [1, standardized x] (n x k, k =
 * d + 1, row-major), build the k x k normal matrix with cblas_dsyrk and
 * solve it by Cholesky (LAPACKE_dposv). k is small (PREDICT_MAX_DIM + 1),
 * so the cost is the passes over Z: O(n k^2) a Newton step. */
#include "predict/predict_internal.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NEWTON_MAX 100
#define NEWTON_TOL 1e-9
#define JITTER 1e-9 /* keeps constant (all-zero) columns solvable without lambda */

void predict_linear_scale(const double *x, size_t n, size_t d, predict_linear *m) {
    memset(m, 0, sizeof *m);
    m->d = d;
    m->clip = PREDICT_Z_CLIP;
    for (size_t j = 0; j < d; j++) {
        double sum = 0, sq = 0;
        for (size_t i = 0; i < n; i++)
            sum += x[i * d + j];
        double mean = n ? sum / (double)n : 0;
        for (size_t i = 0; i < n; i++)
            sq += (x[i * d + j] - mean) * (x[i * d + j] - mean);
        double sd = n ? sqrt(sq / (double)n) : 0;
        m->mean[j] = mean;
        m->sd[j] = sd > 1e-12 ? sd : 0;
    }
}

/* The raw columns: mean 0, sd 1, no clipping. */
static void unit_scale(size_t d, predict_linear *m) {
    memset(m, 0, sizeof *m);
    m->d = d;
    for (size_t j = 0; j < d; j++)
        m->sd[j] = 1;
}

static double z_of(const predict_linear *m, const double *x, size_t j) {
    if (m->sd[j] <= 0) return 0;
    double z = (x[j] - m->mean[j]) / m->sd[j];
    if (m->clip > 0 && z > m->clip) return m->clip;
    return m->clip > 0 && z < -m->clip ? -m->clip : z;
}

/* Z: n rows of [1, z_1 .. z_d]. */
static double *design(const double *x, size_t n, const predict_linear *m) {
    size_t k = m->d + 1;
    double *z = malloc(n * k * sizeof *z);
    if (!z) return NULL;
    for (size_t i = 0; i < n; i++) {
        z[i * k] = 1;
        for (size_t j = 0; j < m->d; j++)
            z[i * k + 1 + j] = z_of(m, x + i * m->d, j);
    }
    return z;
}

double predict_linear_value(const predict_linear *m, const double *x) {
    double v = m->b;
    for (size_t j = 0; j < m->d; j++)
        v += m->w[j] * z_of(m, x, j);
    return v;
}

static double sigmoid(double v) {
    return v >= 0 ? 1 / (1 + exp(-v)) : exp(v) / (1 + exp(v));
}

double predict_logreg_prob(const predict_linear *m, const double *x) {
    return sigmoid(predict_linear_value(m, x));
}

/* Solves (A + lambda I', with I' sparing the intercept) beta = rhs, in
 * place in rhs. A (k x k, upper triangle) is overwritten. */
static bsp_err solve(double *a, double *rhs, size_t k, double lambda) {
    for (size_t j = 1; j < k; j++)
        a[j * k + j] += lambda + JITTER;
    lapack_int info =
        LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', (lapack_int)k, 1, a, (lapack_int)k, rhs, 1);
    return info == 0 ? BSP_OK : BSP_EINTERNAL;
}

/* --- logistic regression ---------------------------------------------------- */

typedef struct newton {
    const double *z, *y;
    size_t n, k;
    double lambda;
    double *eta, *zw; /* n; n x k */
    double h[(PREDICT_MAX_DIM + 1) * (PREDICT_MAX_DIM + 1)];
    double g[PREDICT_MAX_DIM + 1];
} newton;

/* Penalized negative log-likelihood at beta (eta = Z beta left in nt->eta). */
static double objective(newton *nt, const double *beta) {
    cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)nt->n, (int)nt->k, 1.0, nt->z, (int)nt->k, beta,
                1, 0.0, nt->eta, 1);
    double loss = 0;
    for (size_t i = 0; i < nt->n; i++) {
        double e = nt->eta[i]; /* log(1 + exp(e)) - y e, stably */
        loss += (e > 0 ? e + log1p(exp(-e)) : log1p(exp(e))) - nt->y[i] * e;
    }
    for (size_t j = 1; j < nt->k; j++)
        loss += 0.5 * nt->lambda * beta[j] * beta[j];
    return loss;
}

/* Gradient and Hessian at the eta of the last objective() call; then the
 * Newton direction in nt->g. */
static bsp_err direction(newton *nt, const double *beta) {
    size_t n = nt->n, k = nt->k;
    for (size_t i = 0; i < n; i++) {
        double p = sigmoid(nt->eta[i]), w = sqrt(p * (1 - p) + 1e-12);
        nt->eta[i] = nt->y[i] - p; /* the residual, for the gradient */
        for (size_t j = 0; j < k; j++)
            nt->zw[i * k + j] = w * nt->z[i * k + j];
    }
    cblas_dgemv(CblasRowMajor, CblasTrans, (int)n, (int)k, 1.0, nt->z, (int)k, nt->eta, 1, 0.0,
                nt->g, 1);
    for (size_t j = 1; j < k; j++)
        nt->g[j] -= nt->lambda * beta[j];
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)k, (int)n, 1.0, nt->zw, (int)k, 0.0,
                nt->h, (int)k);
    return solve(nt->h, nt->g, k, nt->lambda);
}

/* Newton steps, halved while they do not lower the objective. */
static bsp_err newton_run(newton *nt, double *beta, int *iterations) {
    double f = objective(nt, beta), next[PREDICT_MAX_DIM + 1];
    for (int it = 1; it <= NEWTON_MAX; it++) {
        bsp_err rc = direction(nt, beta);
        if (rc != BSP_OK) return rc;
        double step = 1, fn = f, moved = 0;
        for (int half = 0; half < 30; half++, step /= 2) {
            for (size_t j = 0; j < nt->k; j++)
                next[j] = beta[j] + step * nt->g[j];
            fn = objective(nt, next);
            if (fn <= f + 1e-12 * fabs(f)) break;
        }
        for (size_t j = 0; j < nt->k; j++) {
            moved = fmax(moved, fabs(next[j] - beta[j]));
            beta[j] = next[j];
        }
        f = fn; /* and nt->eta is Z beta: the last objective() was at next */
        *iterations = it;
        if (moved < NEWTON_TOL) return BSP_OK;
    }
    return BSP_EINTERNAL;
}

static bsp_err check_shape(size_t n, size_t d) {
    return n == 0 || d == 0 || d > PREDICT_MAX_DIM ? BSP_EINVAL : BSP_OK;
}

bsp_err predict_logreg_fit_scaled(const double *x, const double *y, size_t n, double lambda,
                                  predict_linear *m) {
    bsp_err rc = check_shape(n, m->d);
    if (rc != BSP_OK) return rc;
    size_t k = m->d + 1;
    newton *nt = calloc(1, sizeof *nt);
    double *z = design(x, n, m);
    if (nt) *nt = (newton){.z = z, .y = y, .n = n, .k = k, .lambda = lambda};
    if (nt) nt->eta = malloc(n * sizeof *nt->eta);
    if (nt) nt->zw = malloc(n * k * sizeof *nt->zw);
    double beta[PREDICT_MAX_DIM + 1] = {0};
    rc = nt && z && nt->eta && nt->zw ? newton_run(nt, beta, &m->iterations) : BSP_ENOMEM;
    m->b = beta[0];
    memcpy(m->w, beta + 1, m->d * sizeof *beta);
    m->smear = 1;
    if (nt) free(nt->eta), free(nt->zw);
    free(nt);
    free(z);
    return rc;
}

bsp_err predict_logreg_fit(const double *x, const double *y, size_t n, size_t d, double lambda,
                           bool standardize, predict_linear *out) {
    bsp_err rc = check_shape(n, d);
    if (rc != BSP_OK) return rc;
    if (standardize)
        predict_linear_scale(x, n, d, out);
    else
        unit_scale(d, out);
    return predict_logreg_fit_scaled(x, y, n, lambda, out);
}

/* --- ridge regression ----------------------------------------------------------- */

static bsp_err ridge_solve(const double *z, const double *y, size_t n, size_t k, double lambda,
                           double *beta) {
    double a[(PREDICT_MAX_DIM + 1) * (PREDICT_MAX_DIM + 1)];
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)k, (int)n, 1.0, z, (int)k, 0.0, a,
                (int)k);
    cblas_dgemv(CblasRowMajor, CblasTrans, (int)n, (int)k, 1.0, z, (int)k, y, 1, 0.0, beta, 1);
    return solve(a, beta, k, lambda);
}

bsp_err predict_ridge_fit_scaled(const double *x, const double *y, size_t n, double lambda,
                                 predict_linear *m) {
    bsp_err rc = check_shape(n, m->d);
    if (rc != BSP_OK) return rc;
    double *z = design(x, n, m);
    double beta[PREDICT_MAX_DIM + 1] = {0};
    rc = z ? ridge_solve(z, y, n, m->d + 1, lambda, beta) : BSP_ENOMEM;
    free(z);
    if (rc != BSP_OK) return rc;
    m->b = beta[0];
    memcpy(m->w, beta + 1, m->d * sizeof *beta);
    double smear = 0;
    for (size_t i = 0; i < n; i++)
        smear += exp(y[i] - predict_linear_value(m, x + i * m->d));
    m->smear = smear / (double)n;
    m->iterations = 1;
    return BSP_OK;
}

bsp_err predict_ridge_fit(const double *x, const double *y, size_t n, size_t d, double lambda,
                          bool standardize, predict_linear *out) {
    bsp_err rc = check_shape(n, d);
    if (rc != BSP_OK) return rc;
    if (standardize)
        predict_linear_scale(x, n, d, out);
    else
        unit_scale(d, out);
    return predict_ridge_fit_scaled(x, y, n, lambda, out);
}
