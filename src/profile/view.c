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

const cJSON *profile_view_computed(profile_view *v, const bsp_profile *p) {
    v->cur = NULL;
    v->used = 0;
    v->failed = false;
    v->ntimes = 0;
    cJSON *o = v->root = node(v, cJSON_Object);
    if (!o) return NULL;
    double revenue = money_value(&p->revenue);
    put_time(v, o, "first_seen", p->first_seen_ms);
    put_time(v, o, "last_seen", p->last_seen_ms);
    put_number(v, o, "sessions", (double)p->sessions);
    put_number(v, o, "page_views", (double)p->page_views);
    put_number(v, o, "product_views", (double)p->product_views);
    put_number(v, o, "add_to_carts", (double)p->add_to_carts);
    put_number(v, o, "cart_items", (double)profile_cart_items(p));
    put_number(v, o, "cart_value", cents(profile_cart_value(p)));
    put_cart(v, o, &p->cart);
    put_number(v, o, "orders", (double)p->orders);
    put_number(v, o, "revenue", cents(revenue));
    put_number(v, o, "aov", p->orders > 0 ? cents(revenue / (double)p->orders) : 0);
    put_time(v, o, "last_order_at", p->last_order_ms);
    put_string(v, o, "favorite_category", decay_top(&p->categories));
    put_string(v, o, "favorite_brand", decay_top(&p->brands));
    put_list(v, o, "recently_viewed", &p->recently_viewed);
    put_list(v, o, "purchased", &p->purchased);
    put_string(v, o, "last_search", p->last_search);
    put_string(v, o, "country", p->country);
    put_string(v, o, "device", profile_device_name(p->device));
    put_number(v, o, "engaged_seconds", round(p->dwell_seconds));
    put_string(v, o, "engaged_category", decay_top(&p->dwell_categories));
    put_string(v, o, "engaged_product", decay_top(&p->dwell_products));
    return v->failed ? NULL : o;
}
