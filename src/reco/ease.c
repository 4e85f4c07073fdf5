/* ease.c - EASE (Steck 2019), a linear item-to-item model with a closed
 * form: with G = X'X + lambda*I over the buyers x items matrix X (1 when
 * the visitor bought the item), P = G^-1 and B_ij = -P_ij / P_jj (B_ii = 0),
 * a visitor's scores are x_u B. G is accumulated sparsely (one visitor's
 * pairs at a time), then inverted with LAPACKE's Cholesky (spotrf, spotri)
 * on OpenBLAS, in single precision: lambda keeps G well conditioned. Only
 * the RECO_EASE_MAX most-bought items take part (memory is m^2 floats), and
 * each row keeps its k largest positive weights, so serving is sparse. */
#include "reco/reco_internal.h"

#include <lapacke.h>
#include <stdlib.h>
#include <string.h>

/* The m most-bought items: map[item] = column or RECO_NONE; cols[col] = item. */
static uint32_t choose_items(const reco_sets *buyers, uint32_t n_items, uint32_t *map,
                             uint32_t *cols) {
    float *count = calloc((size_t)n_items + 1, sizeof *count);
    if (!count) return 0;
    for (uint32_t p = 0; p < buyers->off[buyers->count]; p++)
        count[buyers->items[p]] += 1;
    uint32_t limit = n_items < RECO_EASE_MAX ? n_items : RECO_EASE_MAX;
    uint32_t m = reco_topk(count, n_items, limit, RECO_NONE, cols, count);
    free(count);
    memset(map, 0xff, ((size_t)n_items + 1) * sizeof *map);
    for (uint32_t c = 0; c < m; c++)
        map[cols[c]] = c;
    return m;
}

static void accumulate_gram(const reco_sets *buyers, const uint32_t *map, uint32_t m, float *g,
                            uint32_t *tmp) {
    for (uint32_t u = 0; u < buyers->count; u++) {
        uint32_t n = 0;
        for (uint32_t p = buyers->off[u]; p < buyers->off[u + 1]; p++)
            if (map[buyers->items[p]] != RECO_NONE) tmp[n++] = map[buyers->items[p]];
        for (uint32_t a = 0; a < n; a++)
            for (uint32_t b = 0; b < n; b++)
                g[(size_t)tmp[a] * m + tmp[b]] += 1.0f;
    }
}

/* Rows of B in item order: row i holds the weight item i gives to others. */
static bsp_err ease_rows(const float *p, uint32_t m, const uint32_t *map, const uint32_t *cols,
                         uint32_t n_items, uint32_t k, reco_graph *out) {
    float *row = malloc((size_t)m * sizeof *row);
    uint32_t *idx = malloc((size_t)k * sizeof *idx);
    float *val = malloc((size_t)k * sizeof *val);
    out->off = calloc((size_t)n_items + 1, sizeof *out->off);
    out->idx = malloc(((size_t)m * k + 1) * sizeof *out->idx);
    out->val = malloc(((size_t)m * k + 1) * sizeof *out->val);
    bsp_err rc = row && idx && val && out->off && out->idx && out->val ? BSP_OK : BSP_ENOMEM;
    size_t len = 0;
    for (uint32_t item = 0; rc == BSP_OK && item < n_items; item++) {
        uint32_t i = map[item];
        if (i != RECO_NONE) {
            for (uint32_t j = 0; j < m; j++) {
                size_t ij = i < j ? (size_t)i * m + j : (size_t)j * m + i; /* upper */
                row[j] = -p[ij] / p[(size_t)j * m + j];
            }
            uint32_t n = reco_topk(row, m, k, i, idx, val);
            for (uint32_t x = 0; x < n; x++) {
                out->idx[len + x] = cols[idx[x]];
                out->val[len + x] = val[x];
            }
            len += n;
        }
        out->off[item + 1] = (uint32_t)len;
    }
    free(row);
    free(idx);
    free(val);
    return rc;
}

static bsp_err invert_gram(float *g, uint32_t m, double lambda) {
    for (uint32_t i = 0; i < m; i++)
        g[(size_t)i * m + i] += (float)lambda;
    if (LAPACKE_spotrf(LAPACK_ROW_MAJOR, 'U', (lapack_int)m, g, (lapack_int)m) != 0)
        return BSP_EINTERNAL;
    if (LAPACKE_spotri(LAPACK_ROW_MAJOR, 'U', (lapack_int)m, g, (lapack_int)m) != 0)
        return BSP_EINTERNAL;
    return BSP_OK;
}

bsp_err reco_ease(const reco_sets *buyers, uint32_t n_items, double lambda, uint32_t k,
                  reco_graph *out, double *gflop) {
    memset(out, 0, sizeof *out);
    *gflop = 0;
    uint32_t *map = malloc(((size_t)n_items + 1) * sizeof *map);
    uint32_t *cols = malloc(((size_t)n_items + 1) * sizeof *cols);
    uint32_t *tmp = malloc(((size_t)n_items + 1) * sizeof *tmp);
    bsp_err rc = map && cols && tmp ? BSP_OK : BSP_ENOMEM;
    uint32_t m = rc == BSP_OK ? choose_items(buyers, n_items, map, cols) : 0;
    float *g = m ? calloc((size_t)m * m, sizeof *g) : NULL;
    if (m && !g) rc = BSP_ENOMEM;
    if (rc == BSP_OK && m) {
        accumulate_gram(buyers, map, m, g, tmp);
        rc = invert_gram(g, m, lambda);
        *gflop = (double)m * m * m / 1e9; /* potrf m^3/3 + potri 2m^3/3 */
    }
    if (rc == BSP_OK && !m) {
        out->off = calloc((size_t)n_items + 1, sizeof *out->off);
        if (!out->off) rc = BSP_ENOMEM;
    } else if (rc == BSP_OK) {
        rc = ease_rows(g, m, map, cols, n_items, k < m ? k : m, out);
    }
    free(map);
    free(cols);
    free(tmp);
    free(g);
    if (rc != BSP_OK) reco_graph_free(out);
    return rc;
}
