/* serve.c - answering with a snapshot: each strategy scores the catalog
 * into a dense array, a common selection applies the filters, boosts and
 * the per-category limit and takes the best, and a chain of fallbacks per
 * strategy fills what is left. The visitor's trained history is found by
 * profile id; their latest items (recently viewed, cart, purchased) are
 * folded in as extra seed items of the item-to-item models, so a visitor
 * the snapshot never saw is personalized too. Nothing here writes to the
 * snapshot: any number of threads serve from one. */
#include "reco/reco_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

/* Blend of the personalized strategy (docs/evaluation.md). */
#define W_BUY_AGAIN 1.0
#define W_EASE 0.2
#define W_POP 0.05
#define BA_REPEAT_POWER 0.5 /* buy-again: repurchase rate ^ this */
#define BA_TREND_POWER 0.2  /* buy-again: (trend + 1) ^ this (what sells now) */
#define SEED_VIEW_WEIGHT 0.3
#define CONTEXT_RECENT_MAX 5

static const char *const strategy_names[RECO_STRATEGY_COUNT] = {
    [RECO_PERSONALIZED] = "personalized",
    [RECO_SIMILAR] = "similar",
    [RECO_BOUGHT_TOGETHER] = "bought_together",
    [RECO_VIEWED_TOGETHER] = "viewed_together",
    [RECO_CART] = "cart",
    [RECO_POPULAR] = "popular",
    [RECO_TRENDING] = "trending",
    [RECO_RECENTLY_VIEWED] = "recently_viewed",
    [RECO_BUY_AGAIN] = "buy_again",
    [RECO_EASE] = "ease",
    [RECO_ITEM_KNN] = "item_knn",
    [RECO_CONTENT] = "content",
    [RECO_RANDOM] = "random",
    [RECO_BUNDLE] = "bundle",
};

const char *reco_strategy_name(reco_strategy s) {
    return s < RECO_STRATEGY_COUNT ? strategy_names[s] : "unknown";
}

bool reco_strategy_parse(const char *name, reco_strategy *out) {
    for (int i = 0; name && i < RECO_STRATEGY_COUNT; i++)
        if (strcmp(name, strategy_names[i]) == 0) {
            *out = (reco_strategy)i;
            return true;
        }
    return false;
}

void reco_filters_init(reco_filters *f) {
    memset(f, 0, sizeof *f);
    f->price_min = -1;
    f->price_max = -1;
}

/* --- per-request state ---------------------------------------------------------- */

typedef struct seed {
    uint32_t item;
    float w;
} seed;

typedef struct rctx {
    const reco_snapshot *s;
    const reco_request *req;
    const reco_visitor *v;
    double now_factor; /* decay of history weights from data end to now */
    const reco_hist *hist;
    uint32_t n_hist;
    float *score, *part; /* dense scratch */
    uint8_t *blocked, *chosen;
    seed *seeds; /* the visitor's items */
    uint32_t n_seeds;
    seed *context; /* the request's items (or the visitor's latest) */
    uint32_t n_context;
    bool segment_pass; /* popular: the segment's members first */
    const reco_affinities *aff;
    reco_result *out;
} rctx;

const reco_hist *reco_find_history(const reco_snapshot *s, uint64_t pid, uint32_t *n,
                                   uint32_t *user) {
    *n = 0;
    if (!pid || !s->n_users) return NULL;
    uint32_t lo = 0, hi = s->n_users;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->pids[mid] < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == s->n_users || s->pids[lo] != pid) return NULL;
    *n = s->user_off[lo + 1] - s->user_off[lo];
    if (user) *user = lo;
    return s->hist + s->user_off[lo];
}

static void add_seed(seed *list, uint32_t *n, uint32_t cap, uint32_t item, float w) {
    if (item == RECO_NONE) return;
    for (uint32_t i = 0; i < *n; i++)
        if (list[i].item == item) {
            if (w > list[i].w) list[i].w = w;
            return;
        }
    if (*n < cap) list[(*n)++] = (seed){item, w};
}

static void block_list(rctx *c, const char *const *ids, size_t count) {
    for (size_t i = 0; i < count; i++) {
        uint32_t item = reco_item_find(c->s, ids[i]);
        if (item != RECO_NONE) c->blocked[item] = 1;
    }
}

static void build_blocked(rctx *c) {
    const reco_filters *f = &c->req->filters;
    const reco_visitor *v = c->v;
    block_list(c, f->exclude_ids, f->exclude_count);
    if (f->exclude_purchased) {
        for (uint32_t i = 0; i < c->n_hist; i++)
            if (c->hist[i].orders) c->blocked[c->hist[i].item] = 1;
        if (v) block_list(c, v->purchased, v->purchased_count);
    }
    if (f->exclude_cart && v) block_list(c, v->cart, v->cart_count);
}

static uint32_t seeds_cap(const rctx *c) {
    const reco_visitor *v = c->v;
    size_t n = c->n_hist + 1;
    if (v) n += v->recently_viewed_count + v->cart_count + v->purchased_count;
    return (uint32_t)n;
}

static void add_visitor_list(rctx *c, const char *const *ids, size_t count, float w, float step) {
    for (size_t i = 0; i < count; i++) {
        float wi = w - step * (float)i;
        add_seed(c->seeds, &c->n_seeds, seeds_cap(c), reco_item_find(c->s, ids[i]),
                 wi > 0.1f ? wi : 0.1f);
    }
}

/* The visitor's items: trained history (purchases 1, browsing less), then
 * the profile's latest (fold-in). */
static void build_seeds(rctx *c) {
    uint32_t cap = seeds_cap(c);
    for (uint32_t i = 0; i < c->n_hist; i++) {
        const reco_hist *h = &c->hist[i];
        float w = h->orders ? 1.0f : (float)SEED_VIEW_WEIGHT;
        add_seed(c->seeds, &c->n_seeds, cap, h->item, w);
    }
    const reco_visitor *v = c->v;
    if (!v) return;
    add_visitor_list(c, v->purchased, v->purchased_count, 1.0f, 0);
    add_visitor_list(c, v->cart, v->cart_count, 1.0f, 0);
    add_visitor_list(c, v->recently_viewed, v->recently_viewed_count, 0.8f, 0.03f);
}

/* The request's items; else the cart (cart strategy) or what the visitor
 * saw last; else their latest purchases. */
static void build_context(rctx *c) {
    const reco_request *r = c->req;
    const reco_visitor *v = c->v;
    uint32_t cap = RECO_ITEMS_IN_MAX + CONTEXT_RECENT_MAX * 2;
    for (size_t i = 0; i < r->item_count && i < RECO_ITEMS_IN_MAX; i++)
        add_seed(c->context, &c->n_context, cap, reco_item_find(c->s, r->items[i]), 1.0f);
    if (c->n_context || !v) goto history;
    for (size_t i = 0; i < v->cart_count && i < RECO_ITEMS_IN_MAX; i++)
        add_seed(c->context, &c->n_context, cap, reco_item_find(c->s, v->cart[i]), 1.0f);
    if (c->n_context && r->strategy == RECO_CART) return;
    for (size_t i = 0; i < v->recently_viewed_count && i < CONTEXT_RECENT_MAX; i++)
        add_seed(c->context, &c->n_context, cap, reco_item_find(c->s, v->recently_viewed[i]),
                 1.0f - 0.1f * (float)i);
history:
    if (c->n_context) return;
    /* the latest purchases of the trained history */
    for (uint32_t k = 0; k < CONTEXT_RECENT_MAX && k < c->n_hist; k++) {
        uint32_t best = RECO_NONE;
        for (uint32_t i = 0; i < c->n_hist; i++) {
            bool taken = false;
            for (uint32_t j = 0; j < c->n_context; j++)
                taken |= c->context[j].item == c->hist[i].item;
            if (!taken && (best == RECO_NONE || c->hist[i].last_ms > c->hist[best].last_ms))
                best = i;
        }
        if (best == RECO_NONE) break;
        add_seed(c->context, &c->n_context, cap, c->hist[best].item, 1.0f);
    }
}

/* --- scorers -------------------------------------------------------------------------- */

static void spread(const reco_graph *g, const seed *seeds, uint32_t n, float scale, float *score) {
    if (!g->off) return;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = seeds[k].item;
        float w = seeds[k].w * scale;
        for (uint32_t p = g->off[i]; p < g->off[i + 1]; p++)
            score[g->idx[p]] += w * g->val[p];
    }
}

static double buy_again_score(const rctx *c, const reco_hist *h) {
    double rep = pow(c->s->repeat[h->item], BA_REPEAT_POWER);
    double season = pow(c->s->trend[h->item] + 1, BA_TREND_POWER);
    return h->decayed * c->now_factor * rep * season;
}

static void score_buy_again(rctx *c, float *score) {
    for (uint32_t i = 0; i < c->n_hist; i++)
        if (c->hist[i].orders) score[c->hist[i].item] += (float)buy_again_score(c, &c->hist[i]);
    const reco_visitor *v = c->v;
    if (!v) return;
    /* purchases newer than the snapshot: a fresh order, weight one */
    for (size_t i = 0; i < v->purchased_count; i++) {
        uint32_t item = reco_item_find(c->s, v->purchased[i]);
        if (item != RECO_NONE && score[item] == 0)
            score[item] = (float)pow(c->s->repeat[item], BA_REPEAT_POWER) * 0.5f;
    }
}

static void normalize_into(const float *part, uint32_t n, double weight, float *score) {
    float max = 0;
    for (uint32_t i = 0; i < n; i++)
        if (part[i] > max) max = part[i];
    if (max <= 0) return;
    float f = (float)(weight / max);
    for (uint32_t i = 0; i < n; i++)
        if (part[i] > 0) score[i] += part[i] * f;
}

static void score_personalized(rctx *c, float *score) {
    uint32_t n = c->s->n_items;
    float *part = c->part;
    memset(part, 0, n * sizeof *part);
    score_buy_again(c, part);
    normalize_into(part, n, W_BUY_AGAIN, score);
    memset(part, 0, n * sizeof *part);
    spread(&c->s->graph[RECO_REL_EASE], c->seeds, c->n_seeds, 1, part);
    normalize_into(part, n, W_EASE, score);
    normalize_into(c->s->pop, n, W_POP, score);
}

static void score_random(const rctx *c, float *score) {
    for (uint32_t i = 0; i < c->s->n_items; i++) {
        uint64_t key[2] = {c->req->seed, i};
        score[i] = (float)((bsp_hash64(key, sizeof key) >> 11) * 0x1p-53) + 1e-9f;
    }
}

static void score_recent(const rctx *c, float *score) {
    const reco_visitor *v = c->v;
    for (size_t i = 0; v && i < v->recently_viewed_count; i++) {
        uint32_t item = reco_item_find(c->s, v->recently_viewed[i]);
        if (item != RECO_NONE && score[item] == 0) score[item] = 1.0f / (float)(i + 1);
    }
}

/* Popularity among a segment's members, as the global model counts it: each
 * member adds, per item of their trained history, the weight of their
 * strongest interaction (purchase 1, add 0.3, view 0.1) decayed by its age
 * (60-day half-life). */
static void score_segment_popular(const rctx *c, float *score) {
    const reco_snapshot *s = c->s;
    const reco_request *r = c->req;
    for (size_t m = 0; m < r->segment_count && m < RECO_SEGMENT_MAX; m++) {
        uint32_t n;
        const reco_hist *h = reco_find_history(s, r->segment_pids[m], &n, NULL);
        for (uint32_t i = 0; i < n; i++) {
            double w = h[i].orders ? 1.0 : h[i].kinds & RECO_KIND_ADD ? 0.3 : 0.1;
            double age = (double)(s->data_end_ms - h[i].last_ms) / RECO_DAY_MS;
            score[h[i].item] += (float)(w * exp2(-(age > 0 ? age : 0) / RECO_POP_HALF_LIFE_DAYS));
        }
    }
}

static void score_strategy(rctx *c, reco_strategy st, float *score) {
    const reco_graph *g = c->s->graph;
    uint32_t n = c->s->n_items;
    switch (st) {
    case RECO_PERSONALIZED:
        return score_personalized(c, score);
    case RECO_SIMILAR:
        spread(&g[RECO_REL_KNN], c->context, c->n_context, 1, score);
        return spread(&g[RECO_REL_CONTENT], c->context, c->n_context, 0.3f, score);
    case RECO_BOUGHT_TOGETHER:
    case RECO_BUNDLE:
        return spread(&g[RECO_REL_BOUGHT], c->context, c->n_context, 1, score);
    case RECO_VIEWED_TOGETHER:
        return spread(&g[RECO_REL_VIEWED], c->context, c->n_context, 1, score);
    case RECO_CART:
        spread(&g[RECO_REL_BOUGHT], c->context, c->n_context, 1, score);
        return spread(&g[RECO_REL_VIEWED], c->context, c->n_context, 0.5f, score);
    case RECO_POPULAR:
        if (c->segment_pass) return score_segment_popular(c, score);
        return (void)memcpy(score, c->s->pop, n * sizeof *score);
    case RECO_TRENDING:
        return (void)memcpy(score, c->s->trend, n * sizeof *score);
    case RECO_RECENTLY_VIEWED:
        return score_recent(c, score);
    case RECO_BUY_AGAIN:
        return score_buy_again(c, score);
    case RECO_EASE:
        return spread(&g[RECO_REL_EASE], c->seeds, c->n_seeds, 1, score);
    case RECO_ITEM_KNN:
        return spread(&g[RECO_REL_KNN], c->seeds, c->n_seeds, 1, score);
    case RECO_CONTENT:
        return spread(&g[RECO_REL_CONTENT], c->context, c->n_context, 1, score);
    case RECO_RANDOM:
    case RECO_STRATEGY_COUNT:
        return score_random(c, score);
    }
}

/* --- filters and selection -------------------------------------------------------------- */

static bool category_match(const char *cat, const char *want) {
    if (!cat) return false;
    size_t n = strlen(want);
    return strncmp(cat, want, n) == 0 && (cat[n] == '\0' || cat[n] == ' ');
}

static bool passes(const rctx *c, uint32_t i) {
    const reco_filters *f = &c->req->filters;
    const reco_snapshot *s = c->s;
    if (c->blocked[i] || c->chosen[i]) return false;
    if (f->in_stock && s->in_stock[i] == 0) return false;
    if (f->price_min >= 0 && !(s->price[i] >= f->price_min)) return false;
    if (f->price_max >= 0 && !(s->price[i] >= 0 && s->price[i] <= f->price_max)) return false;
    if (f->match_affinity && !reco_affinity_match(s, c->aff, i)) return false;
    if (!f->category_count) return true;
    for (size_t k = 0; k < f->category_count; k++)
        if (category_match(s->category[i], f->categories[k])) return true;
    return false;
}

static bool attribute_has(const cJSON *product, const reco_boost *b) {
    const cJSON *v = json_path(product, b->attribute);
    if (cJSON_IsArray(v)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, v) if (cJSON_IsString(e) &&
                                     strcmp(e->valuestring, b->value) == 0) return true;
        return false;
    }
    if (cJSON_IsBool(v)) return strcmp(b->value, cJSON_IsTrue(v) ? "true" : "false") == 0;
    if (!cJSON_IsString(v)) return false;
    if (strcmp(b->attribute, "category") == 0) return category_match(v->valuestring, b->value);
    return strcmp(v->valuestring, b->value) == 0;
}

static double boost_factor(const rctx *c, uint32_t i) {
    const reco_filters *f = &c->req->filters;
    double factor = 1;
    for (size_t k = 0; k < f->boost_count && c->s->products[i]; k++)
        if (attribute_has(c->s->products[i], &f->boosts[k])) factor *= f->boosts[k].factor;
    return factor;
}

typedef struct pick {
    float score;
    uint32_t item;
} pick;

static int pick_cmp(const void *a, const void *b) {
    const pick *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->item < y->item ? -1 : x->item > y->item;
}

/* Moves the k best picks to p[0..k) (in no order): quickselect. */
static void partition_best(pick *p, size_t m, size_t k) {
    size_t lo = 0, hi = m;
    while (k < m && hi - lo > 1) {
        pick pivot = p[lo + (hi - lo) / 2];
        size_t i = lo, j = hi - 1;
        while (i <= j) {
            while (pick_cmp(&p[i], &pivot) < 0)
                i++;
            while (pick_cmp(&p[j], &pivot) > 0)
                j--;
            if (i > j) break;
            pick t = p[i];
            p[i++] = p[j];
            p[j] = t;
            if (j == 0) break;
            j--;
        }
        if (k <= j + 1 && j + 1 > lo)
            hi = j + 1;
        else if (k >= i)
            lo = i;
        else
            return;
    }
}

static bool category_full(const rctx *c, uint32_t item) {
    size_t max = c->req->filters.max_per_category;
    if (!max || c->s->topcat[item] == RECO_NONE) return false;
    size_t n = 0;
    for (size_t k = 0; k < c->out->count; k++) {
        uint32_t other = reco_item_find(c->s, c->out->items[k].product_id);
        n += c->s->topcat[other] == c->s->topcat[item];
    }
    return n >= max;
}

static void take(rctx *c, const pick *p, size_t count, reco_strategy st) {
    for (size_t k = 0; k < count && c->out->count < c->req->n; k++) {
        if (category_full(c, p[k].item)) continue;
        c->chosen[p[k].item] = 1;
        c->out->items[c->out->count++] = (reco_item){c->s->ids[p[k].item], p[k].score, st};
    }
}

/* Candidates of score past the filters, boosted, best first into the result. */
static bsp_err select_into(rctx *c, const float *score, reco_strategy st) {
    uint32_t n = c->s->n_items, m = 0;
    pick *p = malloc(((size_t)n + 1) * sizeof *p);
    if (!p) return BSP_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        if (!(score[i] > 0) || !passes(c, i)) continue;
        double b = c->req->filters.boost_count ? boost_factor(c, i) : 1;
        if (st == RECO_PERSONALIZED && c->aff) b *= reco_affinity_factor(c->s, c->aff, i);
        if (b > 0) p[m++] = (pick){(float)(score[i] * b), i};
    }
    /* most lists need only the best few: select them, sort only those */
    size_t want = (c->req->n - c->out->count) * 4 + 32;
    if (c->req->filters.max_per_category || m <= want) want = m;
    partition_best(p, m, want);
    qsort(p, want, sizeof *p, pick_cmp);
    take(c, p, want, st);
    if (c->out->count < c->req->n && want < m) {
        qsort(p + want, m - want, sizeof *p, pick_cmp);
        take(c, p + want, m - want, st);
    }
    free(p);
    return BSP_OK;
}

/* --- chains ------------------------------------------------------------------------------ */

/* Each strategy, then its fallbacks; entries are strategy + 1, 0 ends. */
#define CHAIN_MAX 5
#define S(x) ((uint8_t)((x) + 1))
static const uint8_t chains[RECO_STRATEGY_COUNT][CHAIN_MAX] = {
    [RECO_PERSONALIZED] = {S(RECO_PERSONALIZED), S(RECO_POPULAR), S(RECO_RANDOM)},
    [RECO_SIMILAR] = {S(RECO_SIMILAR), S(RECO_BOUGHT_TOGETHER), S(RECO_CONTENT), S(RECO_POPULAR),
                      S(RECO_RANDOM)},
    [RECO_BOUGHT_TOGETHER] = {S(RECO_BOUGHT_TOGETHER), S(RECO_VIEWED_TOGETHER), S(RECO_SIMILAR),
                              S(RECO_POPULAR), S(RECO_RANDOM)},
    [RECO_VIEWED_TOGETHER] = {S(RECO_VIEWED_TOGETHER), S(RECO_BOUGHT_TOGETHER), S(RECO_SIMILAR),
                              S(RECO_POPULAR), S(RECO_RANDOM)},
    [RECO_CART] = {S(RECO_CART), S(RECO_SIMILAR), S(RECO_PERSONALIZED), S(RECO_POPULAR),
                   S(RECO_RANDOM)},
    [RECO_POPULAR] = {S(RECO_POPULAR), S(RECO_RANDOM)},
    [RECO_TRENDING] = {S(RECO_TRENDING), S(RECO_POPULAR), S(RECO_RANDOM)},
    [RECO_RECENTLY_VIEWED] = {S(RECO_RECENTLY_VIEWED), S(RECO_PERSONALIZED), S(RECO_POPULAR),
                              S(RECO_RANDOM)},
    [RECO_BUY_AGAIN] = {S(RECO_BUY_AGAIN), S(RECO_PERSONALIZED), S(RECO_POPULAR), S(RECO_RANDOM)},
    [RECO_EASE] = {S(RECO_EASE)},
    [RECO_ITEM_KNN] = {S(RECO_ITEM_KNN)},
    [RECO_CONTENT] = {S(RECO_CONTENT)},
    [RECO_RANDOM] = {S(RECO_RANDOM)},
    [RECO_BUNDLE] = {S(RECO_BUNDLE)},
};

static bsp_err run_chain(rctx *c) {
    const uint8_t *chain = chains[c->req->strategy];
    uint32_t n = c->s->n_items;
    if (c->req->strategy == RECO_POPULAR && c->req->segment_count) {
        c->segment_pass = true; /* the segment's own, then the global list */
        memset(c->score, 0, n * sizeof *c->score);
        score_strategy(c, RECO_POPULAR, c->score);
        bsp_err rc = select_into(c, c->score, RECO_POPULAR);
        c->segment_pass = false;
        if (rc != BSP_OK || c->req->no_fallback) return rc;
    }
    for (int k = 0; k < CHAIN_MAX && chain[k] && c->out->count < c->req->n; k++) {
        if (k > 0 && c->req->no_fallback) break;
        reco_strategy st = (reco_strategy)(chain[k] - 1);
        memset(c->score, 0, n * sizeof *c->score);
        score_strategy(c, st, c->score);
        bsp_err rc = select_into(c, c->score, st);
        if (rc != BSP_OK) return rc;
    }
    return BSP_OK;
}

static bool item_based(reco_strategy st) {
    return st == RECO_SIMILAR || st == RECO_BOUGHT_TOGETHER || st == RECO_VIEWED_TOGETHER ||
           st == RECO_CART || st == RECO_CONTENT || st == RECO_BUNDLE;
}

static bsp_err ctx_init(rctx *c, const reco_snapshot *s, const reco_request *req,
                        reco_result *out) {
    memset(c, 0, sizeof *c);
    c->s = s;
    c->req = req;
    c->v = req->visitor;
    c->aff = c->v && c->v->affinities && c->v->affinities->count ? c->v->affinities : NULL;
    c->out = out;
    int64_t now = req->now_ms ? req->now_ms : s->data_end_ms;
    double age = (double)(now - s->data_end_ms) / RECO_DAY_MS;
    c->now_factor = exp2(-(age > 0 ? age : 0) / RECO_BA_HALF_LIFE_DAYS);
    c->hist = reco_find_history(s, c->v ? c->v->pid : 0, &c->n_hist, NULL);
    size_t n = s->n_items + 1;
    c->score = malloc(n * sizeof *c->score);
    c->part = malloc(n * sizeof *c->part);
    c->blocked = calloc(n, 2);
    c->seeds = malloc(seeds_cap(c) * sizeof *c->seeds);
    c->context = malloc((RECO_ITEMS_IN_MAX + CONTEXT_RECENT_MAX * 2) * sizeof *c->context);
    if (!c->score || !c->part || !c->blocked || !c->seeds || !c->context) return BSP_ENOMEM;
    c->chosen = c->blocked + n;
    build_blocked(c);
    build_seeds(c);
    build_context(c);
    if (item_based(req->strategy)) /* never recommend what the page is about */
        for (uint32_t i = 0; i < c->n_context; i++)
            c->blocked[c->context[i].item] = 1;
    return BSP_OK;
}

static void ctx_free(rctx *c) {
    free(c->score);
    free(c->part);
    free(c->blocked);
    free(c->seeds);
    free(c->context);
}

bsp_err reco_recommend(const reco_snapshot *s, const reco_request *req, reco_result *out) {
    out->count = 0;
    out->held = NULL;
    if (req->n < 1 || req->n > RECO_MAX_N || req->strategy >= RECO_STRATEGY_COUNT)
        return BSP_EINVAL;
    if (!s->n_items) return BSP_OK;
    rctx c;
    bsp_err rc = ctx_init(&c, s, req, out);
    if (rc == BSP_OK) rc = run_chain(&c);
    ctx_free(&c);
    return rc;
}

/* --- rank ------------------------------------------------------------------------------- */

typedef struct ranked {
    double score;
    size_t pos;
} ranked;

static int ranked_cmp(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

bsp_err reco_rank(const reco_snapshot *s, const reco_visitor *v, const char *const *ids,
                  size_t count, int64_t now_ms, size_t *order, double *scores) {
    if (count > RECO_RANK_MAX) return BSP_ETOOBIG;
    reco_request req = {.strategy = RECO_PERSONALIZED, .visitor = v, .n = 1, .now_ms = now_ms};
    reco_filters_init(&req.filters);
    reco_result unused = {0};
    rctx c;
    ranked *r = malloc((count + 1) * sizeof *r);
    bsp_err rc = r ? ctx_init(&c, s, &req, &unused) : BSP_ENOMEM;
    if (rc == BSP_OK) {
        memset(c.score, 0, (s->n_items + 1) * sizeof *c.score);
        score_personalized(&c, c.score);
        for (size_t i = 0; i < count; i++) {
            uint32_t item = reco_item_find(s, ids[i]);
            double f = item != RECO_NONE && c.aff ? reco_affinity_factor(s, c.aff, item) : 1;
            r[i] = (ranked){item == RECO_NONE ? -1.0 : c.score[item] * f, i};
        }
        qsort(r, count, sizeof *r, ranked_cmp);
        for (size_t i = 0; i < count; i++) {
            order[i] = r[i].pos;
            if (scores) scores[i] = r[i].score < 0 ? 0 : r[i].score;
        }
    }
    if (r) ctx_free(&c);
    free(r);
    return rc;
}

/* --- look-ups ------------------------------------------------------------------------------ */

size_t reco_related(const reco_snapshot *s, reco_relation rel, const char *product_id,
                    reco_neighbor *out, size_t cap) {
    uint32_t i = reco_item_find(s, product_id);
    if (i == RECO_NONE || rel >= RECO_REL_COUNT || !s->graph[rel].off) return 0;
    const reco_graph *g = &s->graph[rel];
    size_t n = 0;
    for (uint32_t p = g->off[i]; p < g->off[i + 1] && n < cap; p++, n++)
        out[n] = (reco_neighbor){s->ids[g->idx[p]], g->val[p], g->count ? g->count[p] : 0};
    return n;
}

const cJSON *reco_product(const reco_snapshot *s, const char *product_id) {
    uint32_t i = reco_item_find(s, product_id);
    return i == RECO_NONE ? NULL : s->products[i];
}
