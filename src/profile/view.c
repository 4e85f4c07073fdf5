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

static uint64_t computed_num_hashes[CN_COUNT];
static pthread_once_t computed_num_once = PTHREAD_ONCE_INIT;

static void computed_num_hash_all(void) {
    for (int i = 0; i < CN_COUNT; i++)
        computed_num_hashes[i] = bsp_hash64(computed_num_names[i], strlen(computed_num_names[i]));
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
    pthread_once(&computed_num_once, computed_num_hash_all);
    for (int i = 0; i < CN_COUNT; i++) {
        if (computed_num_hashes[i] != name_hash || strcmp(computed_num_names[i], name) != 0)
            continue;
        *out = computed_value(p, (computed_num)i);
        return true;
    }
    return false;
}

static void put_computed(profile_view *v, cJSON *o, const bsp_profile *p, computed_num which) {
    put_number(v, o, computed_num_names[which], computed_value(p, which));
}

const cJSON *profile_view_computed(profile_view *v, const bsp_profile *p) {
    v->cur = NULL;
    v->used = 0;
    v->failed = false;
    v->ntimes = 0;
    cJSON *o = v->root = node(v, cJSON_Object);
    if (!o) return NULL;
    put_time(v, o, "first_seen", p->first_seen_ms);
    put_time(v, o, "last_seen", p->last_seen_ms);
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
    put_time(v, o, "last_order_at", p->last_order_ms);
    put_string(v, o, "favorite_category", decay_top(&p->categories));
    put_string(v, o, "favorite_brand", decay_top(&p->brands));
    put_list(v, o, "recently_viewed", &p->recently_viewed);
    put_list(v, o, "purchased", &p->purchased);
    put_string(v, o, "last_search", p->last_search);
    put_string(v, o, "country", p->country);
    put_string(v, o, "device", profile_device_name(p->device));
    put_computed(v, o, p, CN_ENGAGED_SECONDS);
    put_string(v, o, "engaged_category", decay_top(&p->dwell_categories));
    put_string(v, o, "engaged_product", decay_top(&p->dwell_products));
    return v->failed ? NULL : o;
}
