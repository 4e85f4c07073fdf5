/* reco_internal.h - what the files of src/reco/ share and nothing outside
 * includes: the training data read from the store, the snapshot's layout,
 * the sparse neighbour graphs and the id map.
 *
 *   data.c      store -> items, users, interactions, baskets
 *   imap.c      product id -> item index (open addressing)
 *   models.c    popular, trending, repurchase statistics, user histories
 *   cooc.c      co-occurrence (bought/viewed together, item-kNN), content
 *   ease.c      EASE on OpenBLAS + LAPACKE
 *   train.c     reco_train: runs the models, timings
 *   snapshot.c  the snapshot's life, save/load, holder
 *   serve.c     strategies, blending, filters, fallbacks, rank
 *   factor.c    user vectors: low-rank factorization for lookalikes
 *   lookalike.c nearest profiles to a seed's centroid
 *   affinity.c  attribute affinities: learning, boost, match
 *   bundle.c    frequently bought together with the summed price
 *   request.c   the request bodies of /v1/recommendations and /v1/rank
 *   eval.c      offline metrics; evalcmd.c the train and eval commands */
#ifndef BSP_RECO_INTERNAL_H
#define BSP_RECO_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "reco/reco.h"

#define RECO_NONE UINT32_MAX
#define RECO_DAY_MS (24.0 * 3600 * 1000)

/* Tunables (docs/evaluation.md says how they were chosen, on the 2010-2011
 * file only). */
#define RECO_COOC_K 50       /* neighbours kept per item, co-occurrence */
#define RECO_KNN_K 100       /* item-kNN neighbours */
#define RECO_EASE_K 200      /* EASE weights kept per row */
#define RECO_CONTENT_K 30    /* content neighbours */
#define RECO_LIFT_SHRINK 3.0 /* lift * c / (c + shrink) */
#define RECO_BASKET_MAX 200  /* larger baskets are cut for co-occurrence */
#define RECO_SESSION_GAP_MS (30LL * 60 * 1000)
#define RECO_EASE_LAMBDA 200.0
#define RECO_BA_HALF_LIFE_DAYS 240.0 /* buy-again decay of an order's weight */
#define RECO_POP_HALF_LIFE_DAYS 60.0
#define RECO_TREND_HALF_LIFE_DAYS 7.0
#define RECO_TREND_BASE_DAYS 90.0

enum { RECO_KIND_VIEW = 1, RECO_KIND_ADD = 2, RECO_KIND_BUY = 4 };

/* --- id map ------------------------------------------------------------------ */

typedef struct reco_imap {
    uint32_t *slots; /* item index + 1, 0 = empty */
    uint64_t *hashes;
    size_t cap; /* power of two */
    size_t count;
} reco_imap;

/* ids[i] is item i's id; the map only stores indices. */
bsp_err imap_init(reco_imap *m, size_t expect);
void imap_free(reco_imap *m);
uint32_t imap_find(const reco_imap *m, const char *const *ids, const char *id);
bsp_err imap_put(reco_imap *m, const char *const *ids, uint32_t item);

/* --- training data --------------------------------------------------------------- */

typedef struct reco_inter {
    uint32_t item;
    uint32_t basket; /* order (purchases) or session (views, adds) */
    int64_t ts_ms;
    uint8_t kind; /* RECO_KIND_* */
} reco_inter;

typedef struct reco_data {
    /* items: ids (owned strings) and catalog JSON (owned, may be NULL) */
    char **ids;
    cJSON **products;
    uint32_t n_items, cap_items;
    reco_imap map;
    /* users in pid order, each with its interactions (chronological) */
    uint64_t *pids;
    uint32_t *user_off; /* n_users + 1 */
    uint32_t n_users, cap_users;
    reco_inter *inter;
    size_t n_inter, cap_inter;
    uint32_t n_baskets;
    uint64_t events, orders;
    int64_t end_ms; /* newest interaction */
} reco_data;

bsp_err reco_data_load(bsp_txn *txn, int64_t before_ms, reco_data *d);
void reco_data_free(reco_data *d);
/* Adds (or finds) an item; product is taken (may be NULL). RECO_NONE on OOM. */
uint32_t reco_data_item(reco_data *d, const char *id, cJSON *product);

/* Item sets (CSR): baskets of purchases, view sessions, or buyers' item sets. */
typedef struct reco_sets {
    uint32_t *off; /* count + 1 */
    uint32_t *items;
    uint32_t count;
} reco_sets;

typedef enum { SETS_ORDERS, SETS_SESSIONS, SETS_BUYERS } reco_sets_kind;
bsp_err reco_sets_build(const reco_data *d, reco_sets_kind kind, reco_sets *out);
void reco_sets_free(reco_sets *s);

/* --- snapshot ------------------------------------------------------------------------- */

/* Sparse neighbours (CSR over items). count may be NULL. */
typedef struct reco_graph {
    uint32_t *off; /* n_items + 1 */
    uint32_t *idx;
    float *val;
    uint32_t *count;
} reco_graph;

void reco_graph_free(reco_graph *g);
uint64_t reco_graph_entries(const reco_graph *g, uint32_t n_items);

/* One item of a visitor's trained history. */
typedef struct reco_hist {
    uint32_t item;
    uint16_t orders; /* distinct orders with it */
    uint8_t kinds;   /* RECO_KIND_* seen */
    uint8_t pad;
    float decayed;   /* sum over its orders of 2^-(age at data end / half-life) */
    float views;     /* views and adds, decayed the same way */
    int64_t last_ms; /* latest purchase (or interaction) */
} reco_hist;

struct reco_snapshot {
    atomic_uint refs;
    uint64_t version;
    int64_t created_ms, data_end_ms;
    uint32_t n_items;
    char **ids;       /* owned, item order */
    cJSON **products; /* owned, may be NULL */
    reco_imap map;
    /* derived from products at build/load */
    const char **category; /* borrowed from products */
    float *price;          /* < 0 unknown */
    int8_t *in_stock;      /* 1, 0, -1 unknown */
    uint32_t *topcat;      /* index of the top-level category, RECO_NONE if none */
    /* per-item models */
    float *pop, *trend, *repeat, *cycle_days;
    uint32_t *pop_order, *trend_order;
    reco_graph graph[RECO_REL_COUNT];
    /* visitors: sorted pids, CSR into hist */
    uint32_t n_users;
    uint64_t *pids;
    uint32_t *user_off;
    reco_hist *hist;
    /* user vectors (factor.c): n_users x dim, unit length or zero; dim 0 = none */
    uint32_t dim;
    float *uvec;
    float price_q[3]; /* quartiles of the known prices (price_band) */
    /* attribute values by item, built on first use (affinity.c) */
    pthread_mutex_t attr_mu;
    atomic_uint attr_tables; /* entries of attr published */
    struct reco_attr_table {
        char name[RECO_AFF_TEXT_MAX];
        uint32_t *codes; /* n_items: number of the item's value, UINT32_MAX if none */
        char **distinct; /* the distinct values, lower case, owned */
        uint32_t n_distinct;
    } attr[RECO_AFF_ATTRS_MAX * 2];
};

/* The table of attribute attr (its values numbered, and each item's
 * number), resolved once per snapshot; NULL if it cannot be built. */
const struct reco_attr_table *reco_attr_table_get(reco_snapshot *s, const char *attr);
/* The number of value (any case) in t, UINT32_MAX if no item has it. */
uint32_t reco_attr_code(const struct reco_attr_table *t, const char *value);

/* Allocates an empty snapshot with one reference. */
reco_snapshot *reco_snapshot_alloc(void);
/* Fills category, price, in_stock, topcat, map and the orders from ids,
 * products, pop and trend. */
bsp_err reco_snapshot_finish(reco_snapshot *s);
uint32_t reco_item_find(const reco_snapshot *s, const char *id);

/* --- models (train side) ------------------------------------------------------------------ */

bsp_err reco_model_popular(const reco_data *d, reco_snapshot *s);
bsp_err reco_model_trending(const reco_data *d, reco_snapshot *s);
bsp_err reco_model_history(const reco_data *d, reco_snapshot *s); /* histories + repeat */
/* User vectors from the histories (after reco_model_history); *gflop is the
 * floating-point work done. */
bsp_err reco_model_uvec(reco_snapshot *s, double *gflop);
/* The trained history of pid (NULL, *n = 0 if none); its index in *user
 * when user is not NULL. */
const reco_hist *reco_find_history(const reco_snapshot *s, uint64_t pid, uint32_t *n,
                                   uint32_t *user);

/* --- affinities (serve side) ------------------------------------------------------------- */

/* item's value of attribute attr (see reco.h), or NULL; may format into buf. */
const char *reco_attr_value(const reco_snapshot *s, uint32_t item, const char *attr, char *buf,
                            size_t cap);
/* 1 + RECO_AFF_BOOST x the mean share of item's values over the attributes
 * with something known (1 when a is NULL or empty). */
double reco_affinity_factor(const reco_snapshot *s, const reco_affinities *a, uint32_t item);
/* match_affinity: every attribute with something known either has no value
 * on item, or item's value equals the quiz answer (when there is one) or a
 * value with a share of at least RECO_AFF_MATCH_MIN. */
bool reco_affinity_match(const reco_snapshot *s, const reco_affinities *a, uint32_t item);

typedef enum { COOC_LIFT, COOC_COSINE } reco_cooc_score;
bsp_err reco_cooc(const reco_sets *sets, uint32_t n_items, reco_cooc_score how, uint32_t k,
                  reco_graph *out);
bsp_err reco_content(const reco_snapshot *s, uint32_t k, reco_graph *out);
bsp_err reco_ease(const reco_sets *buyers, uint32_t n_items, double lambda, uint32_t k,
                  reco_graph *out, double *gflop);

/* Top-k of scores (length n) with score > 0 into idx/val, best first;
 * returns how many. skip may be RECO_NONE. */
uint32_t reco_topk(const float *scores, uint32_t n, uint32_t k, uint32_t skip, uint32_t *idx,
                   float *val);

#endif
