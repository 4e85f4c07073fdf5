/* campaign.h - campaigns and placements: validation of what the admin API
 * receives (422 with the field's path), their storage in the store's config
 * table (kinds "campaign" and "placement"), and the compiled snapshot that
 * decisions read: active campaigns with their conditions compiled once,
 * grouped by placement and sorted by priority, swapped atomically so that
 * readers never block (see swap.c for the scheme).
 *
 * Coupon pools (coupon.c): a code is handed out once ever. Codes are
 * reserved durably in blocks through ingest jobs (config kind
 * "coupon_used") before any of them is handed out, then handed out from
 * memory; which visitor got which code is journaled ("coupon_visitor") by
 * a background worker, so a visitor asking again gets the same code, also
 * after a restart. Reserved codes not handed out are released on a clean
 * stop and on every reload; a crash (kill -9) can only waste reserved codes,
 * never hand one out twice. */
#ifndef BSP_CAMPAIGN_H
#define BSP_CAMPAIGN_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/core.h"
#include "ingest/ingest.h"
#include "json/json.h"
#include "segment/segment.h"
#include "store/store.h"

#define CAMPAIGN_ID_MAX 64         /* ids: [A-Za-z0-9_.:-]{1,64} */
#define CAMPAIGN_MAX_BYTES 65536   /* a normalized campaign or placement */
#define CAMPAIGN_POOL_MAX 50000    /* codes in one coupon pool */
#define CAMPAIGN_CODE_MAX 64       /* bytes of one coupon code */
#define CAMPAIGN_PRODUCTS_MAX_N 50 /* items of a product block */
#define CAMPAIGN_WATCH_MAX 64      /* event names the snapshot watches */

/* --- validation (validate.c) ------------------------------------------------ */

/* True if id matches [A-Za-z0-9_.:-]{1,64}. */
bool campaign_id_valid(const char *id);

/* Validates a campaign sent by the admin API and returns its normalized
 * stored form in *out (caller owns): id, name, description, placement,
 * status (draft|active|paused, default draft), priority (integer, default
 * 0), condition (string or null; compiled to check it), start/end (ISO 8601
 * or null, end after start), cap {per_day, total} (whole numbers >= 1 or
 * null), control (0..1, default 0), content (see below). id_from_path, when
 * not NULL, must agree with the body's id (or fills it).
 *
 * Content: {"type": banner|coupon|toggle|products|quiz, ...} as in the API
 * document; unknown extra keys are kept. A body that is not an object is
 * BSP_EINVAL; a wrong field BSP_ETYPE with at = its path ("content.pool[3]");
 * a condition error BSP_ETYPE with at = "condition, line L, column C"; over
 * CAMPAIGN_MAX_BYTES BSP_ETOOBIG. */
bsp_err campaign_from_json(const cJSON *body, const char *id_from_path, int64_t now_ms, cJSON **out,
                           bsp_error *err);

/* A placement: {"id", "name", "description", "default": CONTENT | null}.
 * The default may not be a coupon pool. */
bsp_err placement_from_json(const cJSON *body, const char *id_from_path, int64_t now_ms,
                            cJSON **out, bsp_error *err);

/* --- storage (config.c) -------------------------------------------------------- */

#define CAMPAIGN_KIND "campaign"
#define PLACEMENT_KIND "placement"

/* Writes a normalized object (campaign or placement: kind) through an
 * ingest job. create_only: BSP_EEXISTS if the id is taken. *created (may be
 * NULL) tells whether it is new. A stored created_at is kept. */
bsp_err campaign_config_save(bsp_ingest *ing, const char *kind, cJSON *obj, bool create_only,
                             bool *created);
/* Deletes through an ingest job; BSP_ENOTFOUND if absent. Coupon records of
 * a deleted campaign are kept: its codes stay handed out. */
bsp_err campaign_config_delete(bsp_ingest *ing, const char *kind, const char *id);

/* --- an atomically swapped pointer whose readers never block (swap.c) ----------- */

/* Readers: slot = swap_enter(s); p = swap_get(s); ...; swap_leave(s, slot).
 * Writers (serialized by the caller) call swap_publish, which stores the new
 * pointer, then waits until every reader that may still hold the old one
 * has left (a grace period over two reader counters and an epoch), and
 * returns the old pointer for the caller to free. */
typedef struct bsp_swap {
    _Atomic(void *) current;
    atomic_uint_fast64_t epoch;
    atomic_uint_fast64_t readers[2];
} bsp_swap;

void swap_init(bsp_swap *s, void *initial);
unsigned swap_enter(bsp_swap *s);
void *swap_get(bsp_swap *s);
void swap_leave(bsp_swap *s, unsigned slot);
void *swap_publish(bsp_swap *s, void *next);

/* --- the compiled snapshot (set.c) ------------------------------------------------ */

typedef enum campaign_content_type {
    CONTENT_BANNER,
    CONTENT_COUPON,
    CONTENT_TOGGLE,
    CONTENT_PRODUCTS,
    CONTENT_QUIZ,
} campaign_content_type;

typedef struct coupon_pool coupon_pool;

typedef struct campaign_rt {
    char *id;
    char *placement;
    int priority;
    int64_t start_ms, end_ms;        /* INT64_MIN / INT64_MAX when open */
    uint32_t cap_per_day, cap_total; /* 0: no cap */
    double control;                  /* share held out, 0..1 */
    bsp_cond *cond;                  /* NULL: everyone */
    uint32_t cond_conjuncts;         /* its top-level operands (cond_conjuncts) */
    bool cond_timeless;              /* it reads no time: what the profile rules out stays so */
    campaign_content_type type;
    cJSON *content;     /* the answer's content (a pool's codes removed) */
    char *content_json; /* the same, compact */
    size_t content_len;
    int products_n;    /* product blocks: items wanted */
    coupon_pool *pool; /* coupon pools only */
} campaign_rt;

typedef struct placement_rt {
    char *id;
    char *default_json; /* compact content, or NULL */
    size_t default_len;
    campaign_rt **campaigns; /* by priority (highest first), then id */
    size_t count;
} placement_rt;

typedef struct campaign_set {
    placement_rt *placements; /* sorted by id */
    size_t placement_count;
    campaign_rt *campaigns; /* active ones */
    size_t campaign_count;
    const char *event_names[CAMPAIGN_WATCH_MAX]; /* read by did()/count()/sum() */
    size_t event_name_count;
    uint64_t version;
    uint64_t serial; /* unique in the process: what readers' notes on profiles are keyed by */
} campaign_set;

/* The placement with that id, or NULL. */
const placement_rt *campaign_set_placement(const campaign_set *set, const char *id);

/* --- the registry: current snapshot and coupon worker (registry.c) ---------------- */

typedef struct campaign_registry campaign_registry;

/* Starts the registry on a store and its ingest (for coupon writes) and
 * loads the first snapshot. */
bsp_err campaign_registry_start(bsp_store *st, bsp_ingest *ing, campaign_registry **out);
/* Recompiles the snapshot from the store (after an admin change) and swaps
 * it in. Waits for the readers of the old one; never call while holding a
 * snapshot. */
bsp_err campaign_registry_reload(campaign_registry *reg);
/* Flushes coupon journals, releases reserved codes not handed out and
 * stops the worker; call before ingest_stop. Then free. */
void campaign_registry_stop(campaign_registry *reg);
void campaign_registry_free(campaign_registry *reg);

/* Readers: the snapshot stays valid until campaign_release. */
const campaign_set *campaign_acquire(campaign_registry *reg, unsigned *slot);
void campaign_release(campaign_registry *reg, unsigned slot);

/* --- coupon pools (coupon.c) -------------------------------------------------------- */

/* The code of the visitor named by (kind 'u'/'a', id): the one handed out
 * before, else a new one. Writes it to out (CAMPAIGN_CODE_MAX + 1 bytes).
 * false when the pool has no code for this visitor now (empty, or between
 * blocks). Never waits for I/O. */
bool coupon_take(coupon_pool *pool, const char *user_id, const char *anonymous_id, char *out);
/* Codes not handed out yet (reserved or not). */
size_t coupon_remaining(const coupon_pool *pool);

#endif
