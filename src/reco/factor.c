/* factor.c - user vectors for lookalike audiences: a rank-k factorization
 * of the user-item matrix X, computed at training time and kept in the
 * snapshot. X holds, per visitor and item of their trained history, 1 for a
 * purchase, 0.3 for an add to cart, 0.1 for a view, times the item's
 * inverse document frequency log(1 + users / (1 + users with it)), each row
 * scaled to unit length. Subspace iteration (V <- orth(X'X V), on OpenBLAS
 * through LAPACKE's QR) finds the top-k right singular subspace; a visitor's
 * vector is x_u V, centred on the mean visitor (which removes what everyone
 * shares, mostly popularity) and scaled to unit length, so that cosine
 * similarity is a dot product. Visitors with no history keep a zero vector. */
#include "reco/reco_internal.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define UVEC_ITERATIONS 8

typedef struct factor {
    const reco_snapshot *s;
    uint32_t k;
    float *w;   /* one weight per history entry: X's values, CSR as hist */
    float *v;   /* n_items x k */
    float *y;   /* n_users x k */
    float *tau; /* k */
    double flop;
} factor;

static float entry_weight(const reco_hist *h) {
    if (h->orders) return 1.0f;
    return h->kinds & RECO_KIND_ADD ? 0.3f : 0.1f;
}

/* X's values: idf-weighted, rows of unit length. */
static bsp_err build_weights(factor *f) {
    const reco_snapshot *s = f->s;
    uint32_t *df = calloc((size_t)s->n_items + 1, sizeof *df);
    if (!df) return BSP_ENOMEM;
    size_t nnz = s->user_off[s->n_users];
    for (size_t p = 0; p < nnz; p++)
        df[s->hist[p].item]++;
    for (uint32_t u = 0; u < s->n_users; u++) {
        double norm = 0;
        for (uint32_t p = s->user_off[u]; p < s->user_off[u + 1]; p++) {
            double idf = log(1.0 + (double)s->n_users / (1.0 + df[s->hist[p].item]));
            f->w[p] = (float)(entry_weight(&s->hist[p]) * idf);
            norm += (double)f->w[p] * f->w[p];
        }
        float scale = norm > 0 ? (float)(1 / sqrt(norm)) : 0;
        for (uint32_t p = s->user_off[u]; p < s->user_off[u + 1]; p++)
            f->w[p] *= scale;
    }
    free(df);
    return BSP_OK;
}

/* y = X v */
static void project_users(factor *f) {
    const reco_snapshot *s = f->s;
    uint32_t k = f->k;
    memset(f->y, 0, (size_t)s->n_users * k * sizeof *f->y);
    for (uint32_t u = 0; u < s->n_users; u++) {
        float *yu = f->y + (size_t)u * k;
        for (uint32_t p = s->user_off[u]; p < s->user_off[u + 1]; p++) {
            const float *vi = f->v + (size_t)s->hist[p].item * k;
            for (uint32_t j = 0; j < k; j++)
                yu[j] += f->w[p] * vi[j];
        }
    }
    f->flop += 2.0 * s->user_off[s->n_users] * k;
}

/* v = X' y, then orthonormalized */
static bsp_err back_and_orth(factor *f) {
    const reco_snapshot *s = f->s;
    uint32_t k = f->k;
    memset(f->v, 0, (size_t)s->n_items * k * sizeof *f->v);
    for (uint32_t u = 0; u < s->n_users; u++) {
        const float *yu = f->y + (size_t)u * k;
        for (uint32_t p = s->user_off[u]; p < s->user_off[u + 1]; p++) {
            float *vi = f->v + (size_t)s->hist[p].item * k;
            for (uint32_t j = 0; j < k; j++)
                vi[j] += f->w[p] * yu[j];
        }
    }
    f->flop += 2.0 * s->user_off[s->n_users] * k + 4.0 * s->n_items * k * k;
    lapack_int m = (lapack_int)s->n_items, n = (lapack_int)k;
    if (LAPACKE_sgeqrf(LAPACK_ROW_MAJOR, m, n, f->v, n, f->tau) != 0) return BSP_EINTERNAL;
    if (LAPACKE_sorgqr(LAPACK_ROW_MAJOR, m, n, n, f->v, n, f->tau) != 0) return BSP_EINTERNAL;
    return BSP_OK;
}

static void random_start(factor *f) {
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < (size_t)f->s->n_items * f->k; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        f->v[i] = (float)((x >> 40) * 0x1p-24) - 0.5f;
    }
}

/* Centres the rows with history on their mean and scales them to unit length. */
static void centre_and_normalize(const reco_snapshot *s, float *y, uint32_t k) {
    double mean[RECO_UVEC_DIM] = {0};
    uint32_t with = 0;
    for (uint32_t u = 0; u < s->n_users; u++) {
        if (s->user_off[u + 1] == s->user_off[u]) continue;
        with++;
        for (uint32_t j = 0; j < k; j++)
            mean[j] += y[(size_t)u * k + j];
    }
    for (uint32_t j = 0; with && j < k; j++)
        mean[j] /= with;
    for (uint32_t u = 0; u < s->n_users; u++) {
        float *yu = y + (size_t)u * k;
        bool empty = s->user_off[u + 1] == s->user_off[u];
        double norm = 0;
        for (uint32_t j = 0; j < k; j++) {
            yu[j] = empty ? 0 : (float)(yu[j] - mean[j]);
            norm += (double)yu[j] * yu[j];
        }
        float scale = norm > 1e-12 ? (float)(1 / sqrt(norm)) : 0;
        for (uint32_t j = 0; j < k; j++)
            yu[j] *= scale;
    }
}

static bsp_err iterate(factor *f) {
    bsp_err rc = build_weights(f);
    random_start(f);
    for (int it = 0; rc == BSP_OK && it < UVEC_ITERATIONS; it++) {
        project_users(f);
        rc = back_and_orth(f);
    }
    if (rc == BSP_OK) project_users(f);
    return rc;
}

bsp_err reco_model_uvec(reco_snapshot *s, double *gflop) {
    *gflop = 0;
    uint32_t k = RECO_UVEC_DIM;
    if (s->n_items < k) k = s->n_items;
    if (s->n_users < k) k = s->n_users;
    s->dim = 0;
    s->uvec = NULL;
    if (k < 2) return BSP_OK; /* nothing to tell visitors apart with */
    factor f = {.s = s, .k = k};
    f.w = malloc(((size_t)s->user_off[s->n_users] + 1) * sizeof *f.w);
    f.v = malloc(((size_t)s->n_items * k + 1) * sizeof *f.v);
    f.y = malloc(((size_t)s->n_users * k + 1) * sizeof *f.y);
    f.tau = malloc(k * sizeof *f.tau);
    bsp_err rc = f.w && f.v && f.y && f.tau ? iterate(&f) : BSP_ENOMEM;
    if (rc == BSP_OK) {
        centre_and_normalize(s, f.y, k);
        s->dim = k;
        s->uvec = f.y;
        f.y = NULL;
    }
    *gflop = f.flop / 1e9;
    free(f.w);
    free(f.v);
    free(f.y);
    free(f.tau);
    return rc;
}
