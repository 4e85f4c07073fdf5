/* lookalike.c - lookalike audiences: the centroid of the seed members' user
 * vectors (factor.c), then every visitor of the snapshot scored by cosine
 * to it (one dot product of RECO_UVEC_DIM floats a visitor: linear in the
 * visitors, independent of the catalog), the best n kept in a min-heap. */
#include "reco/reco_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct heap {
    reco_lookalike_hit *h;
    size_t n, cap;
} heap;

static bool worse(const reco_lookalike_hit *a, const reco_lookalike_hit *b) {
    return a->score < b->score || (a->score == b->score && a->pid > b->pid);
}

static void sift_down(heap *hp, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < hp->n && worse(&hp->h[l], &hp->h[m])) m = l;
        if (r < hp->n && worse(&hp->h[r], &hp->h[m])) m = r;
        if (m == i) return;
        reco_lookalike_hit t = hp->h[i];
        hp->h[i] = hp->h[m];
        hp->h[m] = t;
        i = m;
    }
}

static void heap_offer(heap *hp, reco_lookalike_hit x) {
    if (hp->n < hp->cap) {
        size_t i = hp->n++;
        hp->h[i] = x;
        while (i > 0 && worse(&hp->h[i], &hp->h[(i - 1) / 2])) {
            reco_lookalike_hit t = hp->h[i];
            hp->h[i] = hp->h[(i - 1) / 2];
            hp->h[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
    } else if (hp->cap && worse(&hp->h[0], &x)) {
        hp->h[0] = x;
        sift_down(hp, 0);
    }
}

static int hit_cmp(const void *a, const void *b) {
    const reco_lookalike_hit *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* Sums the seed's vectors into c and marks the seed; how many had one. */
static size_t seed_centroid(const reco_snapshot *s, const uint64_t *seed, size_t seed_count,
                            uint8_t *in_seed, double *c) {
    size_t used = 0;
    for (size_t i = 0; i < seed_count; i++) {
        uint32_t n, u;
        if (!reco_find_history(s, seed[i], &n, &u) || in_seed[u]) continue;
        in_seed[u] = 1;
        const float *v = s->uvec + (size_t)u * s->dim;
        double norm = 0;
        for (uint32_t j = 0; j < s->dim; j++)
            norm += (double)v[j] * v[j];
        if (norm == 0) continue;
        used++;
        for (uint32_t j = 0; j < s->dim; j++)
            c[j] += v[j];
    }
    return used;
}

static void score_all(const reco_snapshot *s, const float *c, const uint8_t *skip, heap *hp) {
    uint32_t k = s->dim;
    for (uint32_t u = 0; u < s->n_users; u++) {
        if (skip && skip[u]) continue;
        const float *v = s->uvec + (size_t)u * k;
        float dot = 0;
        for (uint32_t j = 0; j < k; j++)
            dot += v[j] * c[j];
        heap_offer(hp, (reco_lookalike_hit){s->pids[u], dot});
    }
}

bsp_err reco_lookalike(const reco_snapshot *s, const uint64_t *seed, size_t seed_count,
                       bool exclude_seed, size_t n, reco_lookalike_hit *out, size_t *count,
                       size_t *seed_used) {
    *count = 0;
    *seed_used = 0;
    if (!s->dim || !s->uvec) return BSP_ENOTFOUND;
    uint8_t *in_seed = calloc((size_t)s->n_users + 1, 1);
    if (!in_seed) return BSP_ENOMEM;
    double c[RECO_UVEC_DIM] = {0};
    *seed_used = seed_centroid(s, seed, seed_count, in_seed, c);
    double norm = 0;
    for (uint32_t j = 0; j < s->dim; j++)
        norm += c[j] * c[j];
    if (!*seed_used || norm <= 0) {
        free(in_seed);
        return BSP_ENOTFOUND;
    }
    float cf[RECO_UVEC_DIM];
    for (uint32_t j = 0; j < s->dim; j++)
        cf[j] = (float)(c[j] / sqrt(norm));
    heap hp = {out, 0, n};
    score_all(s, cf, exclude_seed ? in_seed : NULL, &hp);
    free(in_seed);
    qsort(out, hp.n, sizeof *out, hit_cmp);
    *count = hp.n;
    return BSP_OK;
}
