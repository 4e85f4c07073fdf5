/* decide_internal.h - private to src/decide/: the decider's state and the
 * popular-products list that fills product blocks until the
 * recommendation module is connected. */
#ifndef BSP_DECIDE_INTERNAL_H
#define BSP_DECIDE_INTERNAL_H

#include <stdatomic.h>

#include "decide/decide.h"

#define POPULAR_REFRESH_MS 60000 /* the list is rebuilt when older */
#define POPULAR_SCAN_MAX 20000   /* products read to build it */
#define POPULAR_KEEP 500         /* products kept, most popular first */

typedef struct popular_item {
    const cJSON *item;    /* {id, name, price, currency, image, url, category} */
    const char *category; /* into item, or NULL */
    const cJSON *attributes;
    bool in_stock;
    double price; /* NAN when unknown */
} popular_item;

typedef struct popular_list {
    int64_t built_ms;
    cJSON *items;      /* owns every item (an array) */
    cJSON *attributes; /* owns the attributes objects (an array) */
    popular_item *list;
    size_t count;
} popular_list;

void popular_list_free(popular_list *p);

struct bsp_decider {
    bsp_store *st;
    bsp_ingest *ing;
    campaign_registry *reg;
    bool require_consent;
    uint8_t key[DECIDE_TOKEN_KEY_BYTES];
    _Atomic(decide_products_fn) products_fn;
    _Atomic(void *) products_ctx;
    bsp_swap popular;             /* popular_list */
    atomic_bool popular_building; /* one request rebuilds at a time */
    _Atomic uint64_t m_decisions;
    _Atomic uint64_t m_lat[DECIDE_LAT_BUCKETS + 1];
    _Atomic uint64_t m_lat_sum_ns;
};

#endif
