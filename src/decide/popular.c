/* popular.c - the product-block fallback used until the recommendation
 * module is connected (decider_set_products), and as its last resort when
 * it returns nothing: catalog products ordered by popularity, filtered by
 * the block's filters and the visitor's quiz answers.
 *
 * Popularity is what the catalog knows: a numeric "popularity" (top level
 * or under attributes) first, in-stock before out-of-stock, then the
 * catalog's order. The list is built from at most POPULAR_SCAN_MAX
 * products, kept POPULAR_REFRESH_MS, rebuilt by one request at a time
 * while the others keep reading the previous list (swap.c). */
#include "decide/decide_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json/json.h"

void popular_list_free(popular_list *p) {
    if (!p) return;
    cJSON_Delete(p->items);
    cJSON_Delete(p->attributes);
    free(p->list);
    free(p);
}

/* --- building ------------------------------------------------------------------------- */

typedef struct scored {
    cJSON *product;
    double score;
    size_t order;
} scored;

typedef struct scan_ctx {
    scored *all;
    size_t count, cap;
} scan_ctx;

static double popularity(const cJSON *product) {
    const cJSON *v = json_member(product, "popularity");
    if (!cJSON_IsNumber(v)) v = json_path(product, "attributes.popularity");
    double score = cJSON_IsNumber(v) ? v->valuedouble : 0;
    if (cJSON_IsFalse(json_member(product, "in_stock"))) score -= 1e12;
    return score;
}

static bsp_err scan_product(void *ctx, bsp_slice id, bsp_slice json) {
    (void)id;
    scan_ctx *s = ctx;
    if (s->count == POPULAR_SCAN_MAX) return BSP_EEXISTS; /* enough: stop */
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        scored *all = realloc(s->all, cap * sizeof *all);
        if (!all) return BSP_ENOMEM;
        s->all = all;
        s->cap = cap;
    }
    cJSON *product = cJSON_ParseWithLength(json.data, json.len);
    if (!product) return BSP_OK;
    s->all[s->count] = (scored){product, popularity(product), s->count};
    s->count++;
    return BSP_OK;
}

static int by_score(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* The answer's item: {id, name, price, currency, image, url, category}. */
static cJSON *item_of(const cJSON *product) {
    static const char *fields[] = {"id", "name", "price", "currency", "image", "url", "category"};
    cJSON *item = cJSON_CreateObject();
    for (size_t i = 0; item && i < sizeof fields / sizeof fields[0]; i++) {
        const cJSON *v = json_member(product, fields[i]);
        if (!v) continue;
        cJSON *copy = cJSON_Duplicate(v, false);
        if (!copy) {
            cJSON_Delete(item);
            return NULL;
        }
        cJSON_AddItemToObject(item, fields[i], copy);
    }
    return item;
}

static bsp_err keep_one(popular_list *p, cJSON *product) {
    cJSON *item = item_of(product);
    if (!item) return BSP_ENOMEM;
    cJSON_AddItemToArray(p->items, item);
    cJSON *attrs = cJSON_DetachItemFromObjectCaseSensitive(product, "attributes");
    if (!attrs) attrs = cJSON_CreateObject();
    if (!attrs) return BSP_ENOMEM;
    cJSON_AddItemToArray(p->attributes, attrs);
    const cJSON *price = json_member(item, "price");
    p->list[p->count++] = (popular_item){
        .item = item,
        .category = json_get_string(item, "category"),
        .attributes = attrs,
        .in_stock = !cJSON_IsFalse(json_member(product, "in_stock")),
        .price = cJSON_IsNumber(price) ? price->valuedouble : NAN,
    };
    return BSP_OK;
}

static bsp_err popular_build(bsp_txn *txn, int64_t now_ms, popular_list **out) {
    scan_ctx s = {0};
    bsp_err rc = store_products_scan(txn, scan_product, &s);
    if (rc == BSP_EEXISTS) rc = BSP_OK;
    popular_list *p = calloc(1, sizeof *p);
    size_t keep = s.count < POPULAR_KEEP ? s.count : POPULAR_KEEP;
    if (rc == BSP_OK && p) {
        p->built_ms = now_ms;
        p->items = cJSON_CreateArray();
        p->attributes = cJSON_CreateArray();
        p->list = calloc(keep ? keep : 1, sizeof *p->list);
        if (!p->items || !p->attributes || !p->list) rc = BSP_ENOMEM;
    } else if (rc == BSP_OK) {
        rc = BSP_ENOMEM;
    }
    if (s.count) qsort(s.all, s.count, sizeof *s.all, by_score);
    for (size_t i = 0; rc == BSP_OK && i < keep; i++)
        rc = keep_one(p, s.all[i].product);
    for (size_t i = 0; i < s.count; i++)
        cJSON_Delete(s.all[i].product);
    free(s.all);
    if (rc != BSP_OK) {
        popular_list_free(p);
        return rc;
    }
    *out = p;
    return BSP_OK;
}

/* Rebuilds the list when stale, unless another request is doing it. */
static void popular_refresh(bsp_decider *d, bsp_txn *txn, int64_t now_ms) {
    unsigned slot = swap_enter(&d->popular);
    const popular_list *cur = swap_get(&d->popular);
    bool stale = !cur || now_ms - cur->built_ms >= POPULAR_REFRESH_MS || now_ms < cur->built_ms;
    swap_leave(&d->popular, slot);
    bool idle = false;
    if (!stale || !atomic_compare_exchange_strong(&d->popular_building, &idle, true)) return;
    popular_list *fresh = NULL;
    if (popular_build(txn, now_ms, &fresh) == BSP_OK)
        popular_list_free(swap_publish(&d->popular, fresh));
    atomic_store(&d->popular_building, false);
}

/* --- filtering ------------------------------------------------------------------------------ */

typedef struct block_filter {
    const char *category;
    bool in_stock_only;
    double price_min, price_max;
    const char *exclude_id; /* the product being viewed */
    const cJSON *quiz;      /* traits.quiz: {question: answer} */
} block_filter;

static void filter_from(block_filter *f, const bsp_profile *profile, const cJSON *context,
                        const cJSON *block) {
    const cJSON *filters = json_member(block, "filters");
    f->category = json_get_string(filters, "category");
    f->in_stock_only = json_get_bool(filters, "in_stock", false);
    f->price_min = json_get_number(filters, "price_min", -INFINITY);
    f->price_max = json_get_number(filters, "price_max", INFINITY);
    const cJSON *pid = json_path(context, "product.id");
    f->exclude_id = cJSON_IsString(pid) ? pid->valuestring : NULL;
    f->quiz = json_get_object(profile_traits(profile), "quiz");
}

/* A quiz answer rules a product out when the product has that attribute
 * with another value ("color": "black" leaves out white products). */
static bool fits_quiz(const popular_item *it, const cJSON *quiz) {
    for (const cJSON *a = quiz ? quiz->child : NULL; a; a = a->next) {
        const char *have = json_get_string(it->attributes, a->string);
        if (cJSON_IsString(a) && have && strcasecmp(have, a->valuestring) != 0) return false;
    }
    return true;
}

static bool passes(const popular_item *it, const block_filter *f) {
    if (f->in_stock_only && !it->in_stock) return false;
    if (f->category &&
        (!it->category || strncasecmp(it->category, f->category, strlen(f->category)) != 0))
        return false;
    if (!isnan(it->price) && (it->price < f->price_min || it->price > f->price_max)) return false;
    const char *id = json_get_string(it->item, "id");
    if (f->exclude_id && id && !strcmp(id, f->exclude_id)) return false;
    return fits_quiz(it, f->quiz);
}

bsp_err decide_popular_products(bsp_decider *d, bsp_txn *txn, const bsp_profile *profile,
                                const cJSON *context, const cJSON *block, int n, cJSON *items) {
    popular_refresh(d, txn, bsp_now_ms());
    block_filter f;
    filter_from(&f, profile, context, block);
    unsigned slot = swap_enter(&d->popular);
    const popular_list *list = swap_get(&d->popular);
    bsp_err rc = BSP_OK;
    int have = cJSON_GetArraySize(items);
    for (size_t i = 0; list && i < list->count && have < n && rc == BSP_OK; i++) {
        if (!passes(&list->list[i], &f)) continue;
        cJSON *copy = cJSON_Duplicate(list->list[i].item, true);
        if (!copy) {
            rc = BSP_ENOMEM;
            break;
        }
        cJSON_AddItemToArray(items, copy);
        have++;
    }
    swap_leave(&d->popular, slot);
    return rc;
}
