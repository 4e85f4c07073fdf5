/* cluster.c - behavioural clusters as automatic segments: k-means++ on
 * standardized features of every profile with activity, k chosen by the
 * mean silhouette (sampled for large populations), each cluster saved as
 * cluster_<n> with a description a person can read ("high AOV, rare
 * visits, mostly Kitchen").
 *
 * The numerical part (standardize, kmeans_fit, cluster_silhouette,
 * cluster_choose) works on plain row-major matrices so that tests can plant
 * clusters; cluster_run gathers the features from the store and hands the
 * memberships to autoseg.c. Everything is deterministic for a given seed:
 * a splitmix64 generator, profiles visited in pid order. */
#include "segment/auto_internal.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS (24LL * 3600 * 1000)
#define KMEANS_STARTS 3
#define KMEANS_MAX_ITER 100
#define SILHOUETTE_SAMPLE 3000 /* points the silhouette is measured on */
#define CHOOSE_SAMPLE 50000    /* above this many, k is chosen on a sample */
#define DESCRIBE_MIN_Z 0.5     /* a feature this far from the mean is worth naming */
#define DESCRIBE_MAX 3
#define CATEGORY_MAX 4096
#define CATEGORY_NONE UINT16_MAX

const char *const cluster_feature_names[CLUSTER_FEATURES] = {
    "orders",   "revenue",    "aov",           "days_since_seen", "tenure_days",
    "sessions", "page_views", "product_views", "cart_adds",       "products_bought"};

/* How each feature reads when high and when low. */
static const char *const feature_high[CLUSTER_FEATURES] = {
    "frequent orders", "big spenders",    "high AOV",     "lapsed",         "long-standing",
    "frequent visits", "many page views", "browse a lot", "many cart adds", "buy a wide range"};
static const char *const feature_low[CLUSTER_FEATURES] = {
    "few orders",  "low spend",      "low AOV",       "recently active", "short history",
    "rare visits", "few page views", "browse little", "few cart adds",   "buy few products"};

/* --- random numbers (splitmix64) -------------------------------------------- */

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s) { /* [0, 1) */
    return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

/* --- standardizing ------------------------------------------------------------ */

void cluster_standardize(double *x, size_t n, size_t d, double *mean, double *sd) {
    for (size_t j = 0; j < d; j++) {
        double sum = 0, sq = 0;
        for (size_t i = 0; i < n; i++)
            sum += x[i * d + j];
        double mu = n ? sum / (double)n : 0;
        for (size_t i = 0; i < n; i++)
            sq += (x[i * d + j] - mu) * (x[i * d + j] - mu);
        double sigma = n ? sqrt(sq / (double)n) : 0;
        for (size_t i = 0; i < n; i++)
            x[i * d + j] = sigma > 1e-12 ? (x[i * d + j] - mu) / sigma : 0;
        if (mean) mean[j] = mu;
        if (sd) sd[j] = sigma;
    }
}

/* --- k-means ---------------------------------------------------------------------- */

static double dist2(const double *a, const double *b, size_t d) {
    double s = 0;
    for (size_t j = 0; j < d; j++)
        s += (a[j] - b[j]) * (a[j] - b[j]);
    return s;
}

static size_t nearest(const double *p, const double *c, size_t k, size_t d, double *best_d) {
    size_t best = 0;
    double bd = DBL_MAX;
    for (size_t c_i = 0; c_i < k; c_i++) {
        double dd = dist2(p, c + c_i * d, d);
        if (dd < bd) {
            bd = dd;
            best = c_i;
        }
    }
    if (best_d) *best_d = bd;
    return best;
}

/* k-means++: the first centre uniformly, each next one with probability
 * proportional to the squared distance to the nearest centre so far. */
static void seed_plusplus(const double *x, size_t n, size_t d, size_t k, uint64_t *rng, double *c,
                          double *dmin) {
    size_t first = (size_t)(rng_unit(rng) * (double)n);
    memcpy(c, x + first * d, d * sizeof *c);
    for (size_t i = 0; i < n; i++)
        dmin[i] = dist2(x + i * d, c, d);
    for (size_t m = 1; m < k; m++) {
        double total = 0;
        for (size_t i = 0; i < n; i++)
            total += dmin[i];
        double target = rng_unit(rng) * total;
        size_t pick = n - 1;
        for (size_t i = 0; i < n && total > 0; i++) {
            target -= dmin[i];
            if (target < 0) {
                pick = i;
                break;
            }
        }
        memcpy(c + m * d, x + pick * d, d * sizeof *c);
        for (size_t i = 0; i < n; i++) {
            double dd = dist2(x + i * d, c + m * d, d);
            if (dd < dmin[i]) dmin[i] = dd;
        }
    }
}

/* Moves each centre to the mean of its points; an empty cluster takes the
 * point farthest from its own centre. */
static void update_centres(const double *x, size_t n, size_t d, size_t k, int *labels, double *c,
                           size_t *count) {
    memset(c, 0, k * d * sizeof *c);
    memset(count, 0, k * sizeof *count);
    for (size_t i = 0; i < n; i++) {
        count[labels[i]]++;
        for (size_t j = 0; j < d; j++)
            c[(size_t)labels[i] * d + j] += x[i * d + j];
    }
    for (size_t m = 0; m < k; m++)
        for (size_t j = 0; count[m] && j < d; j++)
            c[m * d + j] /= (double)count[m];
    for (size_t m = 0; m < k; m++) {
        if (count[m]) continue;
        size_t far = 0;
        double fd = -1;
        for (size_t i = 0; i < n; i++) {
            double dd = dist2(x + i * d, c + (size_t)labels[i] * d, d);
            if (count[labels[i]] > 1 && dd > fd) {
                fd = dd;
                far = i;
            }
        }
        count[labels[far]]--;
        labels[far] = (int)m;
        count[m] = 1;
        memcpy(c + m * d, x + far * d, d * sizeof *c);
    }
}

/* One seeded run of Lloyd's algorithm; returns the inertia. */
static double lloyd(const double *x, size_t n, size_t d, size_t k, uint64_t *rng, int *labels,
                    double *c, double *scratch, size_t *count) {
    seed_plusplus(x, n, d, k, rng, c, scratch);
    for (size_t i = 0; i < n; i++)
        labels[i] = -1;
    for (int iter = 0; iter < KMEANS_MAX_ITER; iter++) {
        bool moved = false;
        for (size_t i = 0; i < n; i++) {
            int l = (int)nearest(x + i * d, c, k, d, NULL);
            moved |= l != labels[i];
            labels[i] = l;
        }
        if (!moved) break;
        update_centres(x, n, d, k, labels, c, count);
    }
    double inertia = 0;
    for (size_t i = 0; i < n; i++)
        inertia += dist2(x + i * d, c + (size_t)labels[i] * d, d);
    return inertia;
}

bsp_err kmeans_fit(const double *x, size_t n, size_t d, size_t k, uint64_t seed, int *labels,
                   double *centroids, double *inertia) {
    if (k == 0 || k > n || d == 0) return BSP_EINVAL;
    int *lab = malloc(n * sizeof *lab);
    double *c = malloc(k * d * sizeof *c);
    double *scratch = malloc(n * sizeof *scratch);
    size_t *count = malloc(k * sizeof *count);
    bsp_err rc = lab && c && scratch && count ? BSP_OK : BSP_ENOMEM;
    uint64_t rng = seed;
    double best = DBL_MAX;
    for (int s = 0; s < KMEANS_STARTS && rc == BSP_OK; s++) {
        double in = lloyd(x, n, d, k, &rng, lab, c, scratch, count);
        if (in >= best) continue;
        best = in;
        memcpy(labels, lab, n * sizeof *lab);
        memcpy(centroids, c, k * d * sizeof *c);
    }
    if (rc == BSP_OK && inertia) *inertia = best;
    free(lab);
    free(c);
    free(scratch);
    free(count);
    return rc;
}

/* --- silhouette ------------------------------------------------------------------------ */

/* Silhouette of point i among the m points idx[] (labels by point). */
static double silhouette_one(const double *x, size_t d, const int *labels, size_t k,
                             const size_t *idx, size_t m, size_t i, double *sum, size_t *cnt) {
    memset(sum, 0, k * sizeof *sum);
    memset(cnt, 0, k * sizeof *cnt);
    const double *p = x + idx[i] * d;
    for (size_t o = 0; o < m; o++) {
        if (o == i) continue;
        int l = labels[idx[o]];
        sum[l] += sqrt(dist2(p, x + idx[o] * d, d));
        cnt[l]++;
    }
    int own = labels[idx[i]];
    if (cnt[own] == 0) return 0; /* alone in its cluster */
    double a = sum[own] / (double)cnt[own], b = DBL_MAX;
    for (size_t l = 0; l < k; l++)
        if ((int)l != own && cnt[l] && sum[l] / (double)cnt[l] < b) b = sum[l] / (double)cnt[l];
    if (b == DBL_MAX) return 0;
    double den = a > b ? a : b;
    return den > 0 ? (b - a) / den : 0;
}

/* Picks m of n indices without repetition (partial Fisher-Yates), sorted. */
static size_t *sample_indices(size_t n, size_t m, uint64_t seed) {
    size_t *all = malloc(n * sizeof *all);
    if (!all) return NULL;
    for (size_t i = 0; i < n; i++)
        all[i] = i;
    uint64_t rng = seed;
    for (size_t i = 0; i < m && i < n; i++) {
        size_t j = i + (size_t)(rng_unit(&rng) * (double)(n - i));
        size_t t = all[i];
        all[i] = all[j];
        all[j] = t;
    }
    return all;
}

double cluster_silhouette(const double *x, size_t n, size_t d, const int *labels, size_t k,
                          size_t sample_max, uint64_t seed) {
    size_t m = sample_max && n > sample_max ? sample_max : n;
    size_t *idx = sample_indices(n, m, seed ^ 0x5157u);
    double *sum = malloc(k * sizeof *sum);
    size_t *cnt = malloc(k * sizeof *cnt);
    double total = 0;
    for (size_t i = 0; idx && sum && cnt && i < m; i++)
        total += silhouette_one(x, d, labels, k, idx, m, i, sum, cnt);
    bool ok = idx && sum && cnt;
    free(idx);
    free(sum);
    free(cnt);
    return ok && m ? total / (double)m : 0;
}

bsp_err cluster_choose(const double *x, size_t n, size_t d, size_t k_min, size_t k_max,
                       uint64_t seed, size_t *k_out, double *silhouettes, int *labels,
                       double *centroids) {
    if (k_min < 2 || k_max < k_min || k_max >= n) return BSP_EINVAL;
    int *lab = malloc(n * sizeof *lab);
    double *c = malloc(k_max * d * sizeof *c);
    bsp_err rc = lab && c ? BSP_OK : BSP_ENOMEM;
    double best = -2;
    for (size_t k = k_min; k <= k_max && rc == BSP_OK; k++) {
        rc = kmeans_fit(x, n, d, k, seed, lab, c, NULL);
        double s = rc == BSP_OK ? cluster_silhouette(x, n, d, lab, k, SILHOUETTE_SAMPLE, seed) : 0;
        if (silhouettes) silhouettes[k] = s;
        if (rc != BSP_OK || s <= best) continue;
        best = s;
        *k_out = k;
        memcpy(labels, lab, n * sizeof *lab);
        memcpy(centroids, c, k * d * sizeof *c);
    }
    free(lab);
    free(c);
    return rc;
}

/* --- the job: features from the store --------------------------------------------------- */

static const char *const cluster_ids[CLUSTER_K_MAX] = {"cluster_1", "cluster_2", "cluster_3",
                                                       "cluster_4", "cluster_5", "cluster_6",
                                                       "cluster_7", "cluster_8"};

typedef struct cl_state {
    bool identified_only;
    double *raw; /* n x CLUSTER_FEATURES; column 3 holds last_seen (ms) until the scan ends */
    uint16_t *cat;
    size_t n, cap;
    uint64_t *plan_pids; /* the population and former members, pid order */
    ptrdiff_t *plan_row; /* row in raw, or -1 for a former member */
    int8_t *which;
    size_t nplan, plan_cap;
    char *cats[CATEGORY_MAX]; /* interned favorite categories */
    int64_t newest_ms;
} cl_state;

static uint16_t intern_category(cl_state *s, const char *name) {
    if (!name) return CATEGORY_NONE;
    size_t h = (size_t)(bsp_hash64(name, strlen(name)) % CATEGORY_MAX);
    for (size_t probe = 0; probe < CATEGORY_MAX; probe++, h = (h + 1) % CATEGORY_MAX) {
        if (!s->cats[h]) {
            s->cats[h] = strdup(name);
            return s->cats[h] ? (uint16_t)h : CATEGORY_NONE;
        }
        if (strcmp(s->cats[h], name) == 0) return (uint16_t)h;
    }
    return CATEGORY_NONE; /* table full: counted as none */
}

static bool cl_grow_rows(cl_state *s) {
    if (s->n < s->cap) return true;
    size_t cap = s->cap ? s->cap * 2 : 4096;
    double *raw = realloc(s->raw, cap * CLUSTER_FEATURES * sizeof *raw);
    if (!raw) return false;
    s->raw = raw;
    uint16_t *cat = realloc(s->cat, cap * sizeof *cat);
    if (!cat) return false;
    s->cat = cat;
    s->cap = cap;
    return true;
}

static bool cl_grow_plan(cl_state *s) {
    if (s->nplan < s->plan_cap) return true;
    size_t cap = s->plan_cap ? s->plan_cap * 2 : 4096;
    uint64_t *pids = realloc(s->plan_pids, cap * sizeof *pids);
    if (!pids) return false;
    s->plan_pids = pids;
    ptrdiff_t *rows = realloc(s->plan_row, cap * sizeof *rows);
    if (!rows) return false;
    s->plan_row = rows;
    s->plan_cap = cap;
    return true;
}

static bool in_cluster_family(const bsp_profile *p) {
    for (size_t c = 0; c < CLUSTER_K_MAX; c++)
        if (profile_in_segment(p, cluster_ids[c])) return true;
    return false;
}

static void fill_row(double *row, const cJSON *computed, int64_t first, int64_t last) {
    const cJSON *bought = json_member(computed, "purchased");
    double revenue = auto_number(computed, "revenue"), aov = auto_number(computed, "aov");
    row[0] = auto_number(computed, "orders");
    row[1] = revenue > 0 ? revenue : 0;
    row[2] = aov > 0 ? aov : 0;
    row[3] = (double)last;
    row[4] = first && last > first ? (double)(last - first) / (double)DAY_MS : 0;
    row[5] = auto_number(computed, "sessions");
    row[6] = auto_number(computed, "page_views");
    row[7] = auto_number(computed, "product_views");
    row[8] = auto_number(computed, "add_to_carts");
    row[9] = (double)cJSON_GetArraySize(bought);
}

static bsp_err cl_visit(void *ctx, uint64_t pid, const bsp_profile *p, const cJSON *computed) {
    cl_state *s = ctx;
    int64_t last = auto_time(computed, "last_seen");
    bool active = last != 0 && (!s->identified_only || profile_id_count(p, 'u') > 0);
    if (!active && !in_cluster_family(p)) return BSP_OK;
    if (!cl_grow_plan(s) || (active && !cl_grow_rows(s))) return BSP_ENOMEM;
    s->plan_pids[s->nplan] = pid;
    s->plan_row[s->nplan++] = active ? (ptrdiff_t)s->n : -1;
    if (!active) return BSP_OK;
    if (last > s->newest_ms) s->newest_ms = last;
    fill_row(s->raw + s->n * CLUSTER_FEATURES, computed, auto_time(computed, "first_seen"), last);
    const cJSON *fav = json_member(computed, "favorite_category");
    s->cat[s->n++] = intern_category(s, cJSON_IsString(fav) ? fav->valuestring : NULL);
    return BSP_OK;
}

/* Days since last seen, then log1p of every column, into x. */
static void features_from_raw(cl_state *s, int64_t reference, double *x) {
    for (size_t i = 0; i < s->n; i++) {
        double *row = s->raw + i * CLUSTER_FEATURES;
        double days = ((double)reference - row[3]) / (double)DAY_MS;
        row[3] = days > 0 ? days : 0;
        for (size_t j = 0; j < CLUSTER_FEATURES; j++)
            x[i * CLUSTER_FEATURES + j] = log1p(row[j] > 0 ? row[j] : 0);
    }
}

/* --- choosing and ordering ------------------------------------------------------------ */

/* Fits on x (standardized): a given k, or the best by silhouette, choosing
 * on a sample when the population is large. */
static bsp_err fit(const double *x, size_t n, size_t k, uint64_t seed, int *labels, double *c,
                   cluster_summary *sum) {
    const size_t d = CLUSTER_FEATURES;
    if (k) {
        bsp_err rc = kmeans_fit(x, n, d, k, seed, labels, c, NULL);
        if (rc == BSP_OK)
            sum->silhouette[k] = cluster_silhouette(x, n, d, labels, k, SILHOUETTE_SAMPLE, seed);
        sum->k = k;
        return rc;
    }
    size_t k_max = n - 1 < CLUSTER_K_MAX ? n - 1 : CLUSTER_K_MAX;
    if (n <= CHOOSE_SAMPLE)
        return cluster_choose(x, n, d, 2, k_max, seed, &sum->k, sum->silhouette, labels, c);
    size_t *idx = sample_indices(n, CHOOSE_SAMPLE, seed);
    double *sub = malloc(CHOOSE_SAMPLE * d * sizeof *sub);
    int *sub_labels = malloc(CHOOSE_SAMPLE * sizeof *sub_labels);
    bsp_err rc = idx && sub && sub_labels ? BSP_OK : BSP_ENOMEM;
    for (size_t i = 0; rc == BSP_OK && i < CHOOSE_SAMPLE; i++)
        memcpy(sub + i * d, x + idx[i] * d, d * sizeof *sub);
    if (rc == BSP_OK)
        rc = cluster_choose(sub, CHOOSE_SAMPLE, d, 2, k_max, seed, &sum->k, sum->silhouette,
                            sub_labels, c);
    if (rc == BSP_OK) rc = kmeans_fit(x, n, d, sum->k, seed, labels, c, NULL);
    free(idx);
    free(sub);
    free(sub_labels);
    return rc;
}

typedef struct cl_order {
    double revenue;
    size_t size, label;
} cl_order;

static int order_cmp(const void *a, const void *b) {
    const cl_order *x = a, *y = b;
    if (x->revenue != y->revenue) return x->revenue > y->revenue ? -1 : 1;
    if (x->size != y->size) return x->size > y->size ? -1 : 1;
    return x->label < y->label ? -1 : 1;
}

/* Renumbers clusters by falling mean revenue (then size); moves centroids. */
static void order_clusters(const cl_state *s, size_t k, int *labels, double *c) {
    cl_order ord[CLUSTER_K_MAX] = {{0}};
    for (size_t m = 0; m < k; m++)
        ord[m].label = m;
    for (size_t i = 0; i < s->n; i++) {
        ord[labels[i]].size++;
        ord[labels[i]].revenue += s->raw[i * CLUSTER_FEATURES + 1];
    }
    for (size_t m = 0; m < k; m++)
        if (ord[m].size) ord[m].revenue /= (double)ord[m].size;
    qsort(ord, k, sizeof *ord, order_cmp);
    int new_of[CLUSTER_K_MAX] = {0};
    double moved[CLUSTER_K_MAX * CLUSTER_FEATURES];
    for (size_t m = 0; m < k; m++) {
        new_of[ord[m].label] = (int)m;
        memcpy(moved + m * CLUSTER_FEATURES, c + ord[m].label * CLUSTER_FEATURES,
               CLUSTER_FEATURES * sizeof *c);
    }
    memcpy(c, moved, k * CLUSTER_FEATURES * sizeof *c);
    for (size_t i = 0; i < s->n; i++)
        labels[i] = new_of[labels[i]];
}

/* --- describing ----------------------------------------------------------------------- */

static size_t strongest_features(const double *centre, size_t *out) {
    size_t n = 0;
    bool used[CLUSTER_FEATURES] = {false};
    while (n < DESCRIBE_MAX) {
        size_t best = CLUSTER_FEATURES;
        for (size_t j = 0; j < CLUSTER_FEATURES; j++)
            if (!used[j] && fabs(centre[j]) >= DESCRIBE_MIN_Z &&
                (best == CLUSTER_FEATURES || fabs(centre[j]) > fabs(centre[best])))
                best = j;
        if (best == CLUSTER_FEATURES) break;
        used[best] = true;
        out[n++] = best;
    }
    return n;
}

/* The most common favorite category of cluster m if it covers 30% of it. */
static const char *main_category(const cl_state *s, const int *labels, int m, size_t size) {
    size_t *count = calloc(CATEGORY_MAX, sizeof *count);
    if (!count) return NULL;
    for (size_t i = 0; i < s->n; i++)
        if (labels[i] == m && s->cat[i] != CATEGORY_NONE) count[s->cat[i]]++;
    size_t best = 0;
    for (size_t c = 1; c < CATEGORY_MAX; c++)
        if (count[c] > count[best]) best = c;
    const char *name = count[best] * 10 >= size * 3 && count[best] ? s->cats[best] : NULL;
    free(count);
    return name;
}

static void describe(const cl_state *s, const int *labels, const double *c, int m, size_t size,
                     char *out, size_t cap) {
    size_t feats[DESCRIBE_MAX], nf = strongest_features(c + (size_t)m * CLUSTER_FEATURES, feats);
    size_t len = 0;
    for (size_t f = 0; f < nf && len < cap; f++) {
        double z = c[(size_t)m * CLUSTER_FEATURES + feats[f]];
        len += (size_t)snprintf(out + len, cap - len, "%s%s", f ? ", " : "",
                                z > 0 ? feature_high[feats[f]] : feature_low[feats[f]]);
    }
    if (nf == 0) len = (size_t)snprintf(out, cap, "close to the average");
    const char *cat = main_category(s, labels, m, size);
    if (cat && len < cap) len += (size_t)snprintf(out + len, cap - len, ", mostly %s", cat);
    double orders = 0, revenue = 0, days = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (labels[i] != m) continue;
        orders += s->raw[i * CLUSTER_FEATURES];
        revenue += s->raw[i * CLUSTER_FEATURES + 1];
        days += s->raw[i * CLUSTER_FEATURES + 3];
    }
    double k = size ? (double)size : 1;
    if (len < cap)
        snprintf(out + len, cap - len,
                 " (%zu profiles; mean %.1f orders, revenue %.0f, last seen %.0f days ago)", size,
                 orders / k, revenue / k, days / k);
}

/* --- the whole run ------------------------------------------------------------------------ */

static void cl_state_free(cl_state *s) {
    free(s->raw);
    free(s->cat);
    free(s->plan_pids);
    free(s->plan_row);
    free(s->which);
    for (size_t i = 0; i < CATEGORY_MAX; i++)
        free(s->cats[i]);
}

/* Clusters the population; labels (s->n) end up numbered for the plan. */
static bsp_err cluster_population(cl_state *s, const cluster_opts *o, int *labels,
                                  cluster_summary *sum) {
    int64_t reference = o->reference_ms ? o->reference_ms : s->newest_ms;
    double *x = malloc((s->n ? s->n : 1) * CLUSTER_FEATURES * sizeof *x);
    double c[CLUSTER_K_MAX * CLUSTER_FEATURES];
    if (!x) return BSP_ENOMEM;
    features_from_raw(s, reference ? reference : bsp_now_ms(), x);
    cluster_standardize(x, s->n, CLUSTER_FEATURES, NULL, NULL);
    bsp_err rc = fit(x, s->n, o->k, o->seed ? o->seed : 1, labels, c, sum);
    free(x);
    if (rc != BSP_OK) return rc;
    order_clusters(s, sum->k, labels, c);
    for (size_t i = 0; i < s->n; i++)
        sum->sizes[labels[i]]++;
    for (size_t m = 0; m < sum->k; m++)
        describe(s, labels, c, (int)m, sum->sizes[m], sum->descriptions[m],
                 sizeof sum->descriptions[m]);
    return BSP_OK;
}

static bsp_err cluster_apply(bsp_ingest *ing, cl_state *s, const int *labels,
                             const autoseg_ctl *ctl, cluster_summary *sum) {
    s->which = malloc(s->nplan ? s->nplan : 1);
    if (!s->which) return BSP_ENOMEM;
    for (size_t i = 0; i < s->nplan; i++)
        s->which[i] = s->plan_row[i] >= 0 && labels ? (int8_t)labels[s->plan_row[i]] : -1;
    char names[CLUSTER_K_MAX][32];
    const char *name_ptrs[CLUSTER_K_MAX], *desc_ptrs[CLUSTER_K_MAX];
    for (size_t m = 0; m < CLUSTER_K_MAX; m++) {
        snprintf(names[m], sizeof names[m], "Cluster %zu", m + 1);
        name_ptrs[m] = names[m];
        desc_ptrs[m] = sum->descriptions[m];
    }
    auto_plan plan = {.ids = cluster_ids,
                      .names = name_ptrs,
                      .descriptions = desc_ptrs,
                      .nids = CLUSTER_K_MAX,
                      .nsave = sum->k,
                      .pids = s->plan_pids,
                      .which = s->which,
                      .n = s->nplan};
    return auto_apply(ing, &plan, ctl, &sum->written);
}

bsp_err cluster_run(bsp_ingest *ing, bsp_store *st, const cluster_opts *opts,
                    cluster_summary *out) {
    memset(out, 0, sizeof *out);
    uint64_t t0 = bsp_mono_ns();
    cluster_opts o = opts ? *opts : (cluster_opts){0};
    if (o.k > CLUSTER_K_MAX || o.k == 1) return BSP_EINVAL;
    cl_state s = {.identified_only = o.identified_only};
    bsp_err rc = auto_scan(ing, st, &o.ctl, "reading", cl_visit, &s);
    out->population = s.n;
    if (rc == BSP_OK && o.k && o.k > s.n) rc = BSP_EINVAL;
    int *labels = rc == BSP_OK ? malloc((s.n ? s.n : 1) * sizeof *labels) : NULL;
    if (rc == BSP_OK && !labels) rc = BSP_ENOMEM;
    bool enough = s.n >= 3 || (o.k && o.k <= s.n);
    if (rc == BSP_OK && enough) rc = cluster_population(&s, &o, labels, out);
    if (rc == BSP_OK) rc = cluster_apply(ing, &s, enough ? labels : NULL, &o.ctl, out);
    free(labels);
    cl_state_free(&s);
    out->seconds = (double)(bsp_mono_ns() - t0) / 1e9;
    return rc;
}
