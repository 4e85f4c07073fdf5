/* profile_internal.h - the profile's in-memory layout and the small
 * containers it is built from (string lists with hashes, cart lines, decayed
 * counts, compensated money sums). Private to src/profile: the files here
 * share it (model in profile.c, events in apply.c, storage and public forms
 * in codec.c, identity merge in merge.c); nothing outside includes it. */
#ifndef BSP_PROFILE_INTERNAL_H
#define BSP_PROFILE_INTERNAL_H

#include <stdatomic.h>
#include "profile/profile.h"

#define PROFILE_PURCHASED_MAX 1000 /* purchased product ids kept; oldest dropped */
#define PROFILE_DECAY_MAX 32       /* decayed counts kept per kind (category, brand) */
#define PROFILE_HALF_LIFE_MS (30LL * 24 * 3600 * 1000)
#define PROFILE_TIME_UNSET INT64_MIN /* a time that was never set */
/* Cart quantities saturate here, so the storage form (JSON numbers, exact
 * to 2^53) always reads back. */
#define PROFILE_QUANTITY_MAX (1LL << 53)

/* Weights of the decayed category/brand counts. */
#define PROFILE_WEIGHT_VIEW 1.0
#define PROFILE_WEIGHT_ADD 3.0
#define PROFILE_WEIGHT_PURCHASE 5.0

/* An ordered list of owned strings, each with its hash so that membership
 * tests compare 64-bit numbers before strings. */
typedef struct strlist {
    char **items;
    uint64_t *hashes;
    size_t count;
    size_t cap;
} strlist;

size_t strlist_find(const strlist *l, const char *s);                       /* index, or SIZE_MAX */
size_t strlist_find_hashed(const strlist *l, const char *s, uint64_t hash); /* hash_string(s) */
/* Inserts a copy of s at index at (0..count). */
bsp_err strlist_insert(strlist *l, size_t at, const char *s);
bsp_err strlist_insert_hashed(strlist *l, size_t at, const char *s,
                              uint64_t hash); /* hash_string(s) */
void strlist_remove(strlist *l, size_t at);
/* Appends s unless present; when full (count == max) drops the oldest
 * (index 0) if drop_oldest, else ignores s. False if the list is as it was. */
bool strlist_add_unique(strlist *l, const char *s, size_t max, bool drop_oldest);
/* Moves s to the front (inserting it if absent), keeping at most max. False
 * if s was already first. */
bool strlist_push_front(strlist *l, const char *s, size_t max);
void strlist_free(strlist *l);

typedef struct cart_line {
    char *product_id;
    int64_t quantity; /* > 0 */
    double price;     /* unit price; 0 when never sent */
} cart_line;

typedef struct cart {
    cart_line *lines;
    size_t count;
    size_t cap;
} cart;

size_t cart_find(const cart *c, const char *product_id); /* index, or SIZE_MAX */
/* Adds quantity of product_id; has_price updates the line's unit price. */
void cart_add(cart *c, const char *product_id, int64_t quantity, bool has_price, double price);
/* Removes quantity; the line vanishes when it reaches 0. */
void cart_remove(cart *c, const char *product_id, int64_t quantity);
void cart_clear(cart *c);
void cart_free(cart *c);

/* Exponentially decayed counts with forward decay: a score s stored with
 * reference time ref_ms is worth s * 2^-((t - ref_ms) / half-life) at time
 * t, so adding weight w at time t adds w * 2^((t - ref_ms) / half-life) and
 * nothing else changes. The reference moves forward (rebase) when the
 * factors would grow large. */
typedef struct decay_entry {
    char *name;
    double score; /* as of ref_ms */
} decay_entry;

typedef struct decay_table {
    int64_t ref_ms;
    decay_entry *entries; /* unordered; at most PROFILE_DECAY_MAX after any call */
    size_t count;
    size_t cap;
} decay_table;

void decay_add(decay_table *t, const char *name, double weight, int64_t ts_ms);
/* Expresses every score as of ref_ms instead of t->ref_ms. */
void decay_rebase(decay_table *t, int64_t ref_ms);
/* Appends an entry without any check (loading and merging); false on OOM. */
bool decay_append(decay_table *t, const char *name, double score);
/* Adds from's scores into into at the later of the two reference times,
 * then keeps the highest PROFILE_DECAY_MAX. */
void decay_merge(decay_table *into, const decay_table *from);
/* Keeps the PROFILE_DECAY_MAX highest scores, ordered by score descending. */
void decay_trim(decay_table *t);
/* The name with the highest score (ties: smaller name); NULL if none. */
const char *decay_top(const decay_table *t);
void decay_free(decay_table *t);

/* A sum of money with Neumaier compensation: thousands of additions stay
 * exact to far below a cent. The value is sum + comp. */
typedef struct money {
    double sum;
    double comp;
} money;

void money_add(money *m, double amount);
double money_value(const money *m);

typedef enum profile_device {
    PROFILE_DEVICE_NONE,
    PROFILE_DEVICE_MOBILE,
    PROFILE_DEVICE_TABLET,
    PROFILE_DEVICE_DESKTOP,
    PROFILE_DEVICE_COUNT
} profile_device;

const char *profile_device_name(profile_device d); /* NULL for NONE */

/* Exposure to one campaign, from Promotion Viewed / Promotion Clicked. */
typedef struct exposure {
    char *campaign;
    int64_t day; /* UTC day number of views_day */
    uint32_t views_day;
    uint32_t views_total;
    uint32_t clicks_total;
} exposure;
#define PROFILE_EXPOSURES_MAX 64       /* campaigns remembered; least viewed dropped */
#define PROFILE_RECENT_WINDOW_DAYS 400 /* recent events older than this are dropped */
#define PROFILE_DWELL_MAX_SECONDS 3600 /* one Product Engaged report counts at most this */

struct bsp_profile {
    uint64_t pid;
    strlist user_ids; /* first BSP_PROFILE_MAX_IDS kept */
    strlist anon_ids;
    cJSON *traits;      /* object, NULL until the first trait */
    cJSON *consent;     /* latest categoryPreferences object, or NULL */
    int64_t consent_ms; /* event time of that consent */

    int64_t first_seen_ms; /* PROFILE_TIME_UNSET before the first event */
    int64_t last_seen_ms;
    int64_t sessions;
    int64_t page_views;
    int64_t product_views;
    int64_t add_to_carts;
    int64_t orders;
    money revenue; /* net of refunds and cancellations, full precision */
    int64_t last_order_ms;
    cart cart;
    strlist recently_viewed; /* most recent first, at most BSP_PROFILE_RECENT_MAX */
    strlist purchased;       /* oldest first, at most PROFILE_PURCHASED_MAX */
    decay_table categories;
    decay_table brands;
    char *last_search; /* NULL when unset */
    char *country;
    profile_device device;
    int64_t applied_seq; /* newest event-log seq applied (ingest's checkpoints) */

    /* Kept by extras.c for segments, campaigns and scores. */
    cJSON *rfm; /* section objects set by jobs, or NULL */
    cJSON *predicted;
    strlist segments; /* ids of segments the profile is in */
    exposure *exposures;
    size_t exposure_count;
    size_t exposure_cap;
    decay_table dwell_products; /* seconds on product pages, decayed */
    decay_table dwell_categories;
    double dwell_seconds;          /* all seconds reported, not decayed */
    cJSON *recent;                 /* watched events, newest first, or NULL */
    _Atomic(profile_note *) notes; /* readers' notes (profile_note_add), newest first */
};

/* extras.c: the hooks the rest of the profile calls. */
/* Returns the computed traits it may have changed (PROFILE_C_*). */
uint32_t extras_apply_track(bsp_profile *p, const bsp_event *ev, const char *name,
                            const cJSON *props);
void extras_merge(bsp_profile *into, const bsp_profile *from);
void extras_free(bsp_profile *p);
/* The storage form of the extras ("x"); *out is NULL when there are none.
 * The tree borrows p's trees and strings: print and delete it before p
 * changes or is freed. */
bsp_err extras_to_storage(const bsp_profile *p, cJSON **out);
/* Reads "x"; BSP_ETYPE when its shape is wrong, BSP_ENOMEM. */
bsp_err extras_from_storage(bsp_profile *p, const cJSON *x);
/* Members of "x" as extras_from_storage takes them, shared with the
 * scanner (scan.c) so both readers give the same profile: a segment id
 * (kept once), an exposure row (the first row of a campaign wins; numbers
 * as stored), and the check of a "recent" array. */
bsp_err extras_load_segment(bsp_profile *p, const char *segment_id);
bsp_err extras_load_exposure(bsp_profile *p, const char *campaign, double day, double views_day,
                             double views_total, double clicks_total);
bool extras_recent_ok(const cJSON *arr);
/* Adds engaged_* to a computed object; segments, rfm, predicted and
 * campaigns to a public profile object. false on OOM. */
bool extras_public_computed(const bsp_profile *p, cJSON *computed);
bool extras_public(const bsp_profile *p, cJSON *profile);

/* Replaces *slot with a copy of s (NULL clears) unless it already equals s. */
void profile_set_string(char **slot, const char *s);

/* Derived values shared by the public form and tests. */
int64_t profile_cart_items(const bsp_profile *p);
double profile_cart_value(const bsp_profile *p);

#endif
