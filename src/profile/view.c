/* view.c - the computed traits as a JSON tree for conditions, built without
 * allocating: a view keeps a pool of cJSON nodes and time-string buffers
 * that are reused for every profile it shows, keys are constant strings and
 * string values point into the profile (cJSON's reference flags keep cJSON
 * from ever freeing them; the view is never passed to cJSON_Delete).
 * Segment evaluation on every ingested event and every decision read
 * computed.*; building it with profile_computed_json cost a few hundred
 * allocations each time, which halved the import rate. */
#include "profile/profile_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define VIEW_BLOCK 256 /* nodes per pool block */
#define VIEW_TIMES 4   /* ISO time strings shown */

typedef struct view_block {
    cJSON nodes[VIEW_BLOCK];
    struct view_block *next;
} view_block;

struct profile_view {
    view_block *first;
    view_block *cur; /* block being handed out */
    size_t used;     /* nodes used in cur */
    bool failed;     /* a block could not be allocated during this fill */
    char times[VIEW_TIMES][40];
    size_t ntimes;
    cJSON *root;
};

profile_view *profile_view_new(void) {
    return calloc(1, sizeof(profile_view));
}

void profile_view_free(profile_view *v) {
    if (!v) return;
    view_block *b = v->first;
    while (b) {
        view_block *next = b->next;
        free(b);
        b = next;
    }
    free(v);
}

static cJSON *node(profile_view *v, int type) {
    if (!v->cur || v->used == VIEW_BLOCK) {
        view_block *next = v->cur ? v->cur->next : v->first;
        if (!next) {
            next = malloc(sizeof *next);
            if (!next) {
                v->failed = true;
                return NULL;
            }
            next->next = NULL;
            if (v->cur)
                v->cur->next = next;
            else
                v->first = next;
        }
        v->cur = next;
        v->used = 0;
    }
    cJSON *n = &v->cur->nodes[v->used++];
    memset(n, 0, sizeof *n);
    n->type = type;
    return n;
}

/* Links child as the last member of parent (cJSON keeps the last child in
 * the first child's prev). */
static void link(cJSON *parent, cJSON *child, const char *key) {
    if (!parent || !child) return;
    if (key) {
        child->string = (char *)key;
        child->type |= cJSON_StringIsConst;
    }
    cJSON *first = parent->child;
    if (!first) {
        parent->child = child;
        child->prev = child;
        return;
    }
    cJSON *last = first->prev;
    last->next = child;
    child->prev = last;
    first->prev = child;
}

static void put_number(profile_view *v, cJSON *o, const char *key, double d) {
    cJSON *n = node(v, cJSON_Number);
    if (!n) return;
    n->valuedouble = d;
    n->valueint = d >= INT32_MAX ? INT32_MAX : d <= (double)INT32_MIN ? INT32_MIN : (int)d;
    link(o, n, key);
}

static void put_string(profile_view *v, cJSON *o, const char *key, const char *s) {
    cJSON *n = node(v, s ? cJSON_String | cJSON_IsReference : cJSON_NULL);
    if (!n) return;
    n->valuestring = (char *)s;
    link(o, n, key);
}

static void put_time(profile_view *v, cJSON *o, const char *key, int64_t ms) {
    if (ms == PROFILE_TIME_UNSET || v->ntimes == VIEW_TIMES) {
        put_string(v, o, key, NULL);
        return;
    }
    char *buf = v->times[v->ntimes++];
    bsp_time_format(ms, buf, sizeof v->times[0]);
    put_string(v, o, key, buf);
}

static void put_list(profile_view *v, cJSON *o, const char *key, const strlist *l) {
    cJSON *arr = node(v, cJSON_Array);
    for (size_t i = 0; arr && i < l->count; i++) {
        cJSON *item = node(v, cJSON_String | cJSON_IsReference);
        if (!item) break;
        item->valuestring = l->items[i];
        link(arr, item, NULL);
    }
    link(o, arr, key);
}

static void put_cart(profile_view *v, cJSON *o, const cart *c) {
    cJSON *arr = node(v, cJSON_Array);
    for (size_t i = 0; arr && i < c->count; i++) {
        cJSON *line = node(v, cJSON_Object);
        if (!line) break;
        put_string(v, line, "product_id", c->lines[i].product_id);
        put_number(v, line, "quantity", (double)c->lines[i].quantity);
        put_number(v, line, "price", c->lines[i].price);
        link(arr, line, NULL);
    }
    link(o, arr, "cart");
}

static double cents(double x) {
    double r = round(x * 100) / 100;
    return r == 0 ? 0 : r;
}

/* --- the computed traits that are plain numbers ----------------------------
 * One function gives each value, to the view and to conditions that read
 * it directly (profile_computed_number), so the two cannot differ. */

typedef enum computed_num {
    CN_SESSIONS,
    CN_PAGE_VIEWS,
    CN_PRODUCT_VIEWS,
    CN_ADD_TO_CARTS,
    CN_CART_ITEMS,
    CN_CART_VALUE,
    CN_ORDERS,
    CN_REVENUE,
    CN_AOV,
    CN_ENGAGED_SECONDS,
    CN_COUNT
} computed_num;

static const char *const computed_num_names[CN_COUNT] = {
    "sessions",   "page_views", "product_views", "add_to_carts", "cart_items",
    "cart_value", "orders",     "revenue",       "aov",          "engaged_seconds"};

/* The computed traits that are texts (NULL shows as null) and times (shown
 * as ISO 8601 text), likewise one function each. */
typedef enum computed_text {
    CT_FAVORITE_CATEGORY,
    CT_FAVORITE_BRAND,
    CT_LAST_SEARCH,
    CT_COUNTRY,
    CT_DEVICE,
    CT_ENGAGED_CATEGORY,
    CT_ENGAGED_PRODUCT,
    CT_COUNT
} computed_text;

static const char *const computed_text_names[CT_COUNT] = {
    "favorite_category", "favorite_brand", "last_search", "country", "device",
    "engaged_category",  "engaged_product"};

typedef enum computed_time {
    CM_FIRST_SEEN,
    CM_LAST_SEEN,
    CM_LAST_ORDER_AT,
    CM_COUNT
} computed_time;

static const char *const computed_time_names[CM_COUNT] = {"first_seen", "last_seen",
                                                          "last_order_at"};

static uint64_t computed_num_hashes[CN_COUNT];
static uint64_t computed_text_hashes[CT_COUNT];
static uint64_t computed_time_hashes[CM_COUNT];
static pthread_once_t computed_hashes_once = PTHREAD_ONCE_INIT;

static void hash_names(const char *const *names, uint64_t *hashes, int n) {
    for (int i = 0; i < n; i++)
        hashes[i] = bsp_hash64(names[i], strlen(names[i]));
}

static void computed_hash_all(void) {
    hash_names(computed_num_names, computed_num_hashes, CN_COUNT);
    hash_names(computed_text_names, computed_text_hashes, CT_COUNT);
    hash_names(computed_time_names, computed_time_hashes, CM_COUNT);
}

/* The index of name among names (hashes: theirs), or -1. */
static int find_name(const char *const *names, const uint64_t *hashes, int n, const char *name,
                     uint64_t name_hash) {
    pthread_once(&computed_hashes_once, computed_hash_all);
    for (int i = 0; i < n; i++)
        if (hashes[i] == name_hash && strcmp(names[i], name) == 0) return i;
    return -1;
}

static double computed_value(const bsp_profile *p, computed_num which) {
    switch (which) {
    case CN_SESSIONS:
        return (double)p->sessions;
    case CN_PAGE_VIEWS:
        return (double)p->page_views;
    case CN_PRODUCT_VIEWS:
        return (double)p->product_views;
    case CN_ADD_TO_CARTS:
        return (double)p->add_to_carts;
    case CN_CART_ITEMS:
        return (double)profile_cart_items(p);
    case CN_CART_VALUE:
        return cents(profile_cart_value(p));
    case CN_ORDERS:
        return (double)p->orders;
    case CN_REVENUE:
        return cents(money_value(&p->revenue));
    case CN_AOV:
        return p->orders > 0 ? cents(money_value(&p->revenue) / (double)p->orders) : 0;
    case CN_ENGAGED_SECONDS:
        return round(p->dwell_seconds);
    default:
        return 0;
    }
}

bool profile_computed_number(const bsp_profile *p, const char *name, uint64_t name_hash,
                             double *out) {
    int i = find_name(computed_num_names, computed_num_hashes, CN_COUNT, name, name_hash);
    if (i < 0) return false;
    *out = computed_value(p, (computed_num)i);
    return true;
}

static const char *text_value(const bsp_profile *p, computed_text which) {
    switch (which) {
    case CT_FAVORITE_CATEGORY:
        return decay_top(&p->categories);
    case CT_FAVORITE_BRAND:
        return decay_top(&p->brands);
    case CT_LAST_SEARCH:
        return p->last_search;
    case CT_COUNTRY:
        return p->country;
    case CT_DEVICE:
        return profile_device_name(p->device);
    case CT_ENGAGED_CATEGORY:
        return decay_top(&p->dwell_categories);
    case CT_ENGAGED_PRODUCT:
        return decay_top(&p->dwell_products);
    default:
        return NULL;
    }
}

bool profile_computed_text(const bsp_profile *p, const char *name, uint64_t name_hash,
                           const char **out) {
    int i = find_name(computed_text_names, computed_text_hashes, CT_COUNT, name, name_hash);
    if (i < 0) return false;
    *out = text_value(p, (computed_text)i);
    return true;
}

static int64_t time_value(const bsp_profile *p, computed_time which) {
    switch (which) {
    case CM_FIRST_SEEN:
        return p->first_seen_ms;
    case CM_LAST_SEEN:
        return p->last_seen_ms;
    case CM_LAST_ORDER_AT:
        return p->last_order_ms;
    default:
        return PROFILE_TIME_UNSET;
    }
}

bool profile_computed_time(const bsp_profile *p, const char *name, uint64_t name_hash, bool *set,
                           int64_t *ms) {
    int i = find_name(computed_time_names, computed_time_hashes, CM_COUNT, name, name_hash);
    if (i < 0) return false;
    *ms = time_value(p, (computed_time)i);
    *set = *ms != PROFILE_TIME_UNSET && bsp_time_is_iso(*ms);
    return true;
}

static void put_computed(profile_view *v, cJSON *o, const bsp_profile *p, computed_num which) {
    put_number(v, o, computed_num_names[which], computed_value(p, which));
}

static void put_text(profile_view *v, cJSON *o, const bsp_profile *p, computed_text which) {
    put_string(v, o, computed_text_names[which], text_value(p, which));
}

static void put_computed_time(profile_view *v, cJSON *o, const bsp_profile *p,
                              computed_time which) {
    put_time(v, o, computed_time_names[which], time_value(p, which));
}

const cJSON *profile_view_computed(profile_view *v, const bsp_profile *p) {
    v->cur = NULL;
    v->used = 0;
    v->failed = false;
    v->ntimes = 0;
    cJSON *o = v->root = node(v, cJSON_Object);
    if (!o) return NULL;
    put_computed_time(v, o, p, CM_FIRST_SEEN);
    put_computed_time(v, o, p, CM_LAST_SEEN);
    put_computed(v, o, p, CN_SESSIONS);
    put_computed(v, o, p, CN_PAGE_VIEWS);
    put_computed(v, o, p, CN_PRODUCT_VIEWS);
    put_computed(v, o, p, CN_ADD_TO_CARTS);
    put_computed(v, o, p, CN_CART_ITEMS);
    put_computed(v, o, p, CN_CART_VALUE);
    put_cart(v, o, &p->cart);
    put_computed(v, o, p, CN_ORDERS);
    put_computed(v, o, p, CN_REVENUE);
    put_computed(v, o, p, CN_AOV);
    put_computed_time(v, o, p, CM_LAST_ORDER_AT);
    put_text(v, o, p, CT_FAVORITE_CATEGORY);
    put_text(v, o, p, CT_FAVORITE_BRAND);
    put_list(v, o, "recently_viewed", &p->recently_viewed);
    put_list(v, o, "purchased", &p->purchased);
    put_text(v, o, p, CT_LAST_SEARCH);
    put_text(v, o, p, CT_COUNTRY);
    put_text(v, o, p, CT_DEVICE);
    put_computed(v, o, p, CN_ENGAGED_SECONDS);
    put_text(v, o, p, CT_ENGAGED_CATEGORY);
    put_text(v, o, p, CT_ENGAGED_PRODUCT);
    return v->failed ? NULL : o;
}

uint32_t profile_computed_bit(const char *name) {
    static const struct {
        const char *name;
        uint32_t bit;
    } bits[] = {
        {"first_seen", PROFILE_C_FIRST_SEEN},
        {"last_seen", PROFILE_C_LAST_SEEN},
        {"sessions", PROFILE_C_SESSIONS},
        {"page_views", PROFILE_C_PAGE_VIEWS},
        {"product_views", PROFILE_C_PRODUCT_VIEWS},
        {"add_to_carts", PROFILE_C_ADD_TO_CARTS},
        {"cart_items", PROFILE_C_CART},
        {"cart_value", PROFILE_C_CART},
        {"cart", PROFILE_C_CART},
        {"orders", PROFILE_C_ORDERS},
        {"revenue", PROFILE_C_REVENUE},
        {"aov", PROFILE_C_AOV},
        {"last_order_at", PROFILE_C_LAST_ORDER_AT},
        {"favorite_category", PROFILE_C_FAVORITE_CATEGORY},
        {"favorite_brand", PROFILE_C_FAVORITE_BRAND},
        {"recently_viewed", PROFILE_C_RECENTLY_VIEWED},
        {"purchased", PROFILE_C_PURCHASED},
        {"last_search", PROFILE_C_LAST_SEARCH},
        {"country", PROFILE_C_COUNTRY},
        {"device", PROFILE_C_DEVICE},
        {"engaged_seconds", PROFILE_C_ENGAGED_SECONDS},
        {"engaged_category", PROFILE_C_ENGAGED_CATEGORY},
        {"engaged_product", PROFILE_C_ENGAGED_PRODUCT},
    };
    for (size_t i = 0; name && i < sizeof bits / sizeof bits[0]; i++)
        if (strcmp(bits[i].name, name) == 0) return bits[i].bit;
    return 0;
}
