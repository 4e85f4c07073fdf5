/* reco.h - product recommendations: training immutable model snapshots from
 * the store's event log, saving and loading them, a holder that swaps a new
 * snapshot in while readers keep using the old one, serving (recommend and
 * rank with filters, business rules and fallbacks) and offline evaluation.
 *
 * Training input: every profile's timeline (so merged identities count as
 * one person and erased people are absent), with "Order Completed"
 * properties.products[] as purchases (one basket an order), "Product Viewed"
 * and "Product Added" as views and adds, and the catalog's products.
 *
 * Models in a snapshot (see docs/evaluation.md for how they score):
 *   popular      distinct buyers (views and adds count less), per item;
 *                per category by filtering
 *   trending     time-decayed velocity: a 7-day half-life count of
 *                interactions over the item's longer-term rate
 *   bought_together / viewed_together   co-occurrence in one order / one
 *                session, scored by lift shrunk towards 1 for rare pairs
 *   item_knn     cosine similarity of the items' buyer sets
 *   ease         EASE (a closed-form linear item-item model) on OpenBLAS +
 *                LAPACKE, on the most-bought items (at most RECO_EASE_MAX)
 *   content      TF-IDF cosine of catalog attributes (category, brand, price
 *                band, name tokens), so new products have neighbours
 *   buy_again    the visitor's own purchases decayed by age, times the
 *                product's repurchase rate and cycle
 *   personalized a blend of buy_again, ease and popular, each scaled to its
 *                best item (weights tuned offline, docs/evaluation.md), with the
 *                visitor's latest items (recently viewed, cart, purchased)
 *                folded in at request time.
 *   user vectors a low-rank factorization of the user-item matrix (subspace
 *                iteration on OpenBLAS + LAPACKE), centred and unit length,
 *                for lookalike audiences (lookalike.c)
 *
 * Computed at request time from the snapshot: popularity within a segment's
 * members, bundles (an anchor and its best bought-together complements with
 * the summed price), and the visitor's affinities for configured product
 * attributes (affinity.c). The request parser of /v1/recommendations and
 * /v1/rank lives here too (request.c), so that it can be fuzzed.
 *
 * Snapshots carry no personal ids: a visitor's history is keyed by profile
 * id only, so erasing the profile and retraining removes it. */
#ifndef BSP_RECO_H
#define BSP_RECO_H

#include <cJSON.h>

#include "core/core.h"
#include "profile/profile.h"
#include "store/store.h"

#define RECO_MAX_N 100          /* longest list recommend returns */
#define RECO_RANK_MAX 1000      /* ids one rank call accepts */
#define RECO_EASE_MAX 8000      /* items EASE models (the most bought) */
#define RECO_ITEMS_IN_MAX 100   /* items[] one request may name */
#define RECO_FILTER_LIST_MAX 64 /* categories, exclude ids, boosts */
#define RECO_BUNDLE_MAX 3       /* complements in a bundle */
#define RECO_SEGMENT_MAX 100000 /* members a per-segment popularity reads */
#define RECO_UVEC_DIM 32        /* dimensions of the user vectors */

typedef struct reco_snapshot reco_snapshot;

/* --- strategies ------------------------------------------------------------- */

typedef enum reco_strategy {
    RECO_PERSONALIZED,
    RECO_SIMILAR,
    RECO_BOUGHT_TOGETHER,
    RECO_VIEWED_TOGETHER,
    RECO_CART,
    RECO_POPULAR,
    RECO_TRENDING,
    RECO_RECENTLY_VIEWED,
    RECO_BUY_AGAIN,
    /* single models, for evaluation and comparisons */
    RECO_EASE,
    RECO_ITEM_KNN,
    RECO_CONTENT,
    RECO_RANDOM,
    RECO_BUNDLE, /* bought together, at most RECO_BUNDLE_MAX (see reco_bundle) */
    RECO_STRATEGY_COUNT
} reco_strategy;

const char *reco_strategy_name(reco_strategy s);
bool reco_strategy_parse(const char *name, reco_strategy *out);

/* --- training ----------------------------------------------------------------- */

typedef struct reco_train_opts {
    int64_t before_ms;  /* only interactions strictly before this (0 = all) */
    bool progress;      /* one line a model on stderr */
    double ease_lambda; /* 0 = default */
} reco_train_opts;

/* Wall time and size of each model, for the train summary and the bench. */
typedef struct reco_model_stat {
    const char *name;
    double seconds;
    uint64_t entries; /* stored numbers (neighbours, scores, histories) */
} reco_model_stat;

#define RECO_MODEL_STATS 12
typedef struct reco_train_stats {
    reco_model_stat models[RECO_MODEL_STATS];
    size_t model_count;
    uint64_t events, profiles, interactions, orders, items, users;
    double ease_gflop; /* floating-point work of EASE's BLAS/LAPACK calls */
    double seconds;
} reco_train_stats;

/* Builds a snapshot from everything txn sees. stats may be NULL. */
bsp_err reco_train(bsp_txn *txn, const reco_train_opts *opts, reco_snapshot **out,
                   reco_train_stats *stats);

/* --- snapshots ----------------------------------------------------------------- */

/* A snapshot is immutable once built; it is reference counted. */
reco_snapshot *reco_snapshot_ref(reco_snapshot *s);
void reco_snapshot_unref(reco_snapshot *s); /* frees at the last reference; NULL ok */
uint64_t reco_snapshot_version(const reco_snapshot *s);
int64_t reco_snapshot_created_ms(const reco_snapshot *s);
int64_t reco_snapshot_data_end_ms(const reco_snapshot *s); /* newest interaction used */
size_t reco_snapshot_items(const reco_snapshot *s);
size_t reco_snapshot_users(const reco_snapshot *s);
size_t reco_snapshot_dims(const reco_snapshot *s);    /* of the user vectors; 0 = none */
uint64_t reco_snapshot_bytes(const reco_snapshot *s); /* memory held, roughly */

/* Saves under dir/models/ as reco-<version>.bin (version = one more than the
 * newest there, set on s), written to a temporary name, fsynced and renamed,
 * so a reader never sees half a file. Keeps the newest 3, deletes older. */
bsp_err reco_snapshot_save(reco_snapshot *s, const char *data_dir);
/* Loads the newest snapshot in dir/models/; BSP_ENOTFOUND if none. */
bsp_err reco_snapshot_load_latest(const char *data_dir, reco_snapshot **out);
bsp_err reco_snapshot_load_file(const char *path, reco_snapshot **out);

/* The holder: the snapshot the server answers with. Readers acquire it with
 * two atomic operations and never wait; a swap publishes the new pointer and
 * then waits (on the swapping thread only) until no reader is between
 * loading the old pointer and taking its reference, then drops the holder's
 * reference. The old snapshot is freed by whoever releases it last. */
typedef struct reco_holder reco_holder;
reco_holder *reco_holder_new(void);
void reco_holder_free(reco_holder *h); /* drops its snapshot */
/* The current snapshot with a reference (release it), or NULL if none. */
reco_snapshot *reco_holder_acquire(reco_holder *h);
/* Installs s (takes the caller's reference). */
void reco_holder_swap(reco_holder *h, reco_snapshot *s);

/* --- serving ------------------------------------------------------------------------ */

/* What is known of the visitor right now (all borrowed). pid finds the
 * history trained into the snapshot; the lists are folded in on top, so a
 * visitor the snapshot has never seen is personalized from their latest
 * items. Build one from a profile with reco_visitor_from_profile. */
typedef struct reco_affinities reco_affinities;
typedef struct reco_visitor {
    uint64_t pid;                       /* 0 = unknown */
    const char *const *recently_viewed; /* newest first */
    size_t recently_viewed_count;
    const char *const *cart;
    size_t cart_count;
    const char *const *purchased; /* oldest first */
    size_t purchased_count;
    /* learnt attribute affinities (reco_affinities_learn), or NULL: boost
     * personalized scores and rank, and feed filters.match_affinity */
    const reco_affinities *affinities;
} reco_visitor;

typedef struct reco_boost {
    const char *attribute; /* "brand", "category", "tags", "attributes.colour" */
    const char *value;     /* equal (tags: contains; category: path prefix) */
    double factor;         /* score multiplier: > 1 boosts, < 1 buries */
} reco_boost;

typedef struct reco_filters {
    bool in_stock;                 /* drop products marked "in_stock": false */
    const char *const *categories; /* any of these category paths (prefix) */
    size_t category_count;
    double price_min, price_max; /* < 0 = no bound */
    bool exclude_purchased;      /* visitor's purchases (history and profile) */
    bool exclude_cart;
    const char *const *exclude_ids;
    size_t exclude_count;
    const reco_boost *boosts;
    size_t boost_count;
    size_t max_per_category; /* 0 = no limit (top-level category) */
    bool match_affinity;     /* only values the visitor has an affinity for */
} reco_filters;

void reco_filters_init(reco_filters *f); /* no filter at all */

typedef struct reco_request {
    reco_strategy strategy;
    const reco_visitor *visitor; /* may be NULL */
    const char *const *items;    /* context items (similar, *_together, cart) */
    size_t item_count;
    size_t n; /* 1..RECO_MAX_N */
    reco_filters filters;
    int64_t now_ms;   /* 0 = the snapshot's newest data */
    uint64_t seed;    /* random strategy */
    bool no_fallback; /* only the strategy itself (evaluation) */
    /* popular: scored over these profiles' trained histories (a segment's
     * members), then the global list fills the rest. */
    const uint64_t *segment_pids;
    size_t segment_count;
} reco_request;

typedef struct reco_item {
    const char *product_id; /* points into the snapshot */
    double score;
    reco_strategy source; /* the strategy (or fallback) that placed it */
} reco_item;

typedef struct reco_result {
    reco_item items[RECO_MAX_N];
    size_t count;
    reco_snapshot *held; /* set by reco_for_profile: release with reco_result_release */
} reco_result;

/* Drops the snapshot reference a result holds (the product ids point into
 * it); a no-op for results of reco_recommend. */
void reco_result_release(reco_result *r);

/* Recommends req->n products. When the strategy finds fewer than asked
 * after filters, its fallbacks fill the list (personalized -> popular;
 * similar -> bought together -> content -> popular in the items' categories
 * -> popular; ...); only filters can leave it shorter. BSP_EINVAL for n out
 * of range. Thread-safe: s is only read. */
bsp_err reco_recommend(const reco_snapshot *s, const reco_request *req, reco_result *out);

/* Orders ids for the visitor (personalized scores; ids unknown to the
 * snapshot keep their relative order after the known ones). order[i] is the
 * index in ids of the i-th product; scores[i] its score (may be NULL).
 * BSP_ETOOBIG over RECO_RANK_MAX. */
bsp_err reco_rank(const reco_snapshot *s, const reco_visitor *v, const char *const *ids,
                  size_t count, int64_t now_ms, size_t *order, double *scores);

/* The stored neighbours of one product in one model, best first: score,
 * and for co-occurrence models the number of orders (sessions, buyers) the
 * two share. Returns how many were written (at most cap). */
typedef enum reco_relation {
    RECO_REL_BOUGHT,  /* bought together: lift */
    RECO_REL_VIEWED,  /* viewed together: lift */
    RECO_REL_KNN,     /* cosine of buyer sets */
    RECO_REL_EASE,    /* EASE weight */
    RECO_REL_CONTENT, /* attribute cosine */
    RECO_REL_COUNT
} reco_relation;
typedef struct reco_neighbor {
    const char *product_id;
    double score;
    uint32_t count;
} reco_neighbor;
size_t reco_related(const reco_snapshot *s, reco_relation rel, const char *product_id,
                    reco_neighbor *out, size_t cap);

/* Product attributes as trained (the catalog's JSON object), or NULL. */
const cJSON *reco_product(const reco_snapshot *s, const char *product_id);

/* A visitor from the "computed" object of a profile (profile_computed_json):
 * its lists point into computed, which must outlive v. */
typedef struct reco_visitor_buf {
    reco_visitor v;
    const char *lists[3][RECO_ITEMS_IN_MAX];
} reco_visitor_buf;
void reco_visitor_from_computed(uint64_t pid, const cJSON *computed, reco_visitor_buf *out);

/* For other modules (campaign product blocks, decisions): recommendations
 * for a profile (NULL = a visitor nobody knows) with the current snapshot
 * of h: the profile's trained history and its latest items (recently
 * viewed, cart, purchased) folded in. req->visitor is set here; the rest of
 * req (strategy, items, n, filters) is the caller's. The product ids in out
 * point into the snapshot, which out holds until reco_result_release.
 * BSP_EUNAVAIL when no snapshot has been trained or loaded yet. */
bsp_err reco_for_profile(reco_holder *h, const bsp_profile *p, reco_request *req, reco_result *out);

/* --- affinities (affinity.c) ----------------------------------------------------------
 * How much the visitor leans to each value of a configured product attribute
 * (colour, size, material, price_band, ...). A product's value is
 * attributes.<name>, else the top-level <name>; "price_band" is derived
 * from the price when the product has none (quartiles of the catalog's
 * prices: low, medium, high, premium). Behaviour: each item of the trained
 * history weighs its decayed orders (1 an order, halved every 240 days)
 * plus its decayed views and adds (0.1 and 0.3 each); the profile's newer
 * items count 1 (purchased), 0.3 (cart), 0.1 (recently viewed); shares
 * within an attribute sum to 1. Quiz answers (traits.quiz.<name>, a string
 * or an array of strings) are stated preferences: they take half of the
 * attribute's weight (all of it without behaviour). */

#define RECO_AFF_ATTRS_MAX 8   /* configured attributes */
#define RECO_AFF_VALUES_MAX 8  /* values kept per attribute, best first */
#define RECO_AFF_TEXT_MAX 64   /* longest attribute name or value kept */
#define RECO_AFF_BOOST 0.5     /* personalized x (1 + this x mean share) */
#define RECO_AFF_MATCH_MIN 0.2 /* match_affinity: a share at least this */
/* The server's attributes when --affinity-attributes is not given. */
#define RECO_AFFINITY_DEFAULT "colour,color,size,material,price_band"

typedef struct reco_affinity_value {
    char value[RECO_AFF_TEXT_MAX];
    double share;  /* 0..1 */
    bool quiz;     /* stated in a quiz answer */
    uint32_t code; /* the value's number in the snapshot's table, UINT32_MAX if none */
} reco_affinity_value;

typedef struct reco_affinity {
    char attribute[RECO_AFF_TEXT_MAX];
    reco_affinity_value values[RECO_AFF_VALUES_MAX];
    size_t count;          /* 0: nothing known for this attribute */
    bool quiz;             /* a quiz answer decides match_affinity */
    const uint32_t *codes; /* the snapshot's value number of every item, or NULL */
} reco_affinity;

struct reco_affinities {
    reco_affinity attrs[RECO_AFF_ATTRS_MAX];
    size_t count;
};

/* Learns v's affinities for attrs (at most RECO_AFF_ATTRS_MAX are used)
 * from s and v and the profile's traits.quiz object (may be NULL). */
void reco_affinities_learn(const reco_snapshot *s, const reco_visitor *v, const cJSON *quiz,
                           const char *const *attrs, size_t attr_count, reco_affinities *out);
/* {"colour": [{"value": "red", "share": 0.8, "quiz": true}, ...], ...};
 * attributes with nothing known are left out. NULL on OOM. */
cJSON *reco_affinities_json(const reco_affinities *a);
/* Splits a comma-separated list of attribute names (spaces trimmed, empty
 * names dropped) into out (pointers into buf, which it fills). Returns the
 * count; BSP_EINVAL (as -1) if a name is too long or there are too many. */
int reco_affinity_attrs_parse(const char *list, char *buf, size_t buf_cap, const char **out,
                              size_t cap);

/* --- bundles (bundle.c) ----------------------------------------------------------------- */

typedef struct reco_bundle {
    const char *product_ids[RECO_BUNDLE_MAX + 1]; /* the anchor first; into the snapshot */
    double prices[RECO_BUNDLE_MAX + 1];           /* < 0 unknown */
    size_t count;                                 /* anchor + complements */
    double price;                                 /* sum of the known prices */
    bool price_complete;                          /* every product had a price */
    const char *currency;                         /* the anchor's, or NULL */
} reco_bundle;

/* "Frequently bought together": the anchor plus its best max (1..3)
 * bought-together complements (lift, shrunk for rare pairs) that pass f
 * (f may be NULL), with the summed catalog price. BSP_ENOTFOUND if the
 * anchor is unknown to s; a bundle of the anchor alone if it has no
 * complement. */
bsp_err reco_bundle_for(const reco_snapshot *s, const char *anchor, const reco_filters *f,
                        size_t max, reco_bundle *out);

/* --- lookalikes (lookalike.c) ------------------------------------------------------------ */

typedef struct reco_lookalike_hit {
    uint64_t pid;
    double score; /* cosine to the seed's centroid, -1..1 */
} reco_lookalike_hit;

/* The n profiles whose user vectors are nearest (cosine) to the centroid of
 * the seed's (seed: profile ids in any order; those without a trained
 * history are ignored), best first, seed members left out when
 * exclude_seed. *count is how many were written (fewer when the snapshot
 * has fewer visitors), *seed_used how many seed members had a vector.
 * BSP_ENOTFOUND when no seed member has one (or the snapshot has none). */
bsp_err reco_lookalike(const reco_snapshot *s, const uint64_t *seed, size_t seed_count,
                       bool exclude_seed, size_t n, reco_lookalike_hit *out, size_t *count,
                       size_t *seed_used);

/* --- request bodies (request.c) ---------------------------------------------------------- */

#define RECO_BODY_MAX_BYTES (512 * 1024) /* a /v1/recommendations or /v1/rank body */
#define RECO_ID_MAX_BYTES 255            /* a product, user or segment id */

/* A parsed POST /v1/recommendations or /v1/rank body. Strings point into
 * json; free with reco_body_free. */
typedef struct reco_body {
    cJSON *json;
    const char *user_id, *anonymous_id, *write_key;
    const char *segment; /* popular within this segment */
    bool bundle;         /* strategy "bundle" */
    reco_request req;
    const char *items[RECO_RANK_MAX];
    const char *categories[RECO_FILTER_LIST_MAX];
    const char *exclude[RECO_FILTER_LIST_MAX];
    reco_boost boosts[RECO_FILTER_LIST_MAX];
} reco_body;

/* Parses text (len bytes, need not be NUL-terminated) as a recommendations
 * body (rank false: strategy, n, items up to RECO_ITEMS_IN_MAX, filters,
 * segment) or a rank body (rank true: items up to RECO_RANK_MAX). On error
 * err says where; b->json is still set when the text was a JSON object, so
 * that the caller can check the body's writeKey first. Limits: the body
 * RECO_BODY_MAX_BYTES, ids RECO_ID_MAX_BYTES, nesting BSP_JSON_MAX_DEPTH. */
bsp_err reco_body_parse(const char *text, size_t len, bool rank, reco_body *b, bsp_error *err);
void reco_body_free(reco_body *b);

/* --- offline evaluation --------------------------------------------------------------- */

/* Ground truth: for each profile id, the distinct products it bought after
 * the cutoff (ids borrowed). */
typedef struct reco_truth {
    uint64_t pid;
    const char *const *products;
    size_t count;
} reco_truth;

typedef struct reco_eval_row {
    reco_strategy strategy;
    double recall, ndcg, coverage; /* recall@k and NDCG@k averaged; coverage of the catalog */
    size_t users;
} reco_eval_row;

/* Scores every truth entry whose pid has history in s with each strategy,
 * at k (20): recall@k = hits / min(k, |truth|), NDCG@k with binary gains,
 * coverage = distinct products recommended / catalog size. now_ms is the
 * cutoff. rows has one entry per strategy asked. */
bsp_err reco_evaluate(const reco_snapshot *s, const reco_truth *truth, size_t truth_count, size_t k,
                      int64_t now_ms, const reco_strategy *strategies, size_t strategy_count,
                      reco_eval_row *rows);

/* --- commands (bespoke train / bespoke eval) ------------------------------------------- */

typedef struct reco_cmd_opts {
    const char *data_dir;
    bool progress;
    bool holdout;      /* train: report quality on the last holdout_days */
    int holdout_days;  /* 0 = 30 */
    const char *file;  /* eval: Online Retail CSV (.zst ok) */
    int64_t cutoff_ms; /* eval */
    size_t k;          /* eval: list length (20) */
} reco_cmd_opts;

/* Train and save a snapshot; prints the summary to stdout. Exit code. */
int reco_cmd_train(const reco_cmd_opts *o);
/* Offline evaluation; prints the table to stdout. Exit code. */
int reco_cmd_eval(const reco_cmd_opts *o);

#endif
