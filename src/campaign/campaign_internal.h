/* campaign_internal.h - private to src/campaign/: the registry's state,
 * the coupon pool's state and the worker that writes coupon records. */
#ifndef BSP_CAMPAIGN_INTERNAL_H
#define BSP_CAMPAIGN_INTERNAL_H

#include "campaign/campaign.h"

#define COUPON_USED_KIND "coupon_used"       /* campaign \x1f code -> time reserved */
#define COUPON_VISITOR_KIND "coupon_visitor" /* campaign \x1f hex(visitor hash) -> code */
#define COUPON_BLOCK 1024                    /* codes reserved by one job */

/* A coupon record to write (assignment) or delete (released reservation). */
typedef struct coupon_record {
    char campaign[CAMPAIGN_ID_MAX + 1];
    char code[CAMPAIGN_CODE_MAX + 1];
    uint64_t visitor; /* assignments only */
} coupon_record;

typedef struct record_list {
    coupon_record *items;
    size_t count, cap;
} record_list;

struct coupon_pool {
    campaign_registry *reg;
    char campaign[CAMPAIGN_ID_MAX + 1];
    pthread_mutex_t mu;
    char **codes; /* every code of the pool, owned */
    size_t code_count;
    uint32_t *avail; /* indexes of codes not used when loaded, in pool order */
    size_t avail_count;
    size_t reserved; /* avail[0..reserved) are durably reserved */
    size_t next;     /* avail[0..next) are handed out */
    bool closed;     /* replaced by a reload or stopping: hands out nothing new */
    bool refill_pending;
    /* visitor hash -> code (a pointer into codes or extras), open addressing */
    uint64_t *keys;
    const char **vals;
    size_t map_cap, map_count;
    char **extras; /* codes of restored assignments no longer in the pool */
    size_t extra_count;
};

struct campaign_registry {
    bsp_store *st;
    bsp_ingest *ing;
    bsp_swap swap;
    pthread_mutex_t reload_mu;
    uint64_t version;
    /* the coupon worker */
    pthread_t worker;
    bool worker_running;
    pthread_mutex_t jmu;
    pthread_cond_t jcv;      /* work for the worker */
    pthread_cond_t flush_cv; /* a flush finished */
    record_list journal;     /* assignments to write */
    record_list release;     /* reservations to delete */
    bool stop;
    bool refill;
    uint64_t flush_asked, flush_done;
};

/* set.c */
bsp_err campaign_set_build(campaign_registry *reg, bsp_txn *txn, campaign_set **out);
void campaign_set_free(campaign_set *set);

/* coupon.c */
bsp_err coupon_pool_load(campaign_registry *reg, bsp_txn *txn, const char *campaign,
                         const cJSON *codes, coupon_pool **out);
/* Reserves the next block: durably (an ingest job), then in memory. */
bsp_err coupon_pool_reserve(coupon_pool *pool);
bool coupon_pool_wants_refill(coupon_pool *pool);
/* Stops handing out and queues the reserved codes not handed out for release. */
void coupon_pool_close(coupon_pool *pool);
void coupon_pool_free(coupon_pool *pool);

bsp_err record_push(record_list *list, const char *campaign, const char *code, uint64_t visitor);
/* Writes assignments and deletes released reservations in one ingest job. */
bsp_err coupon_records_write(bsp_ingest *ing, const record_list *journal,
                             const record_list *release);

/* registry.c: the worker's queues (the pool calls these under its mutex). */
void registry_journal(campaign_registry *reg, const char *campaign, const char *code,
                      uint64_t visitor);
void registry_release(campaign_registry *reg, const char *campaign, const char *code);
void registry_want_refill(campaign_registry *reg);

#endif
