/* data.c - the training input read from the store: the catalog's products,
 * then every profile's timeline turned into interactions (purchases from
 * "Order Completed" products[], views from "Product Viewed", adds from
 * "Product Added"), chronological per visitor, each tagged with its basket:
 * the order for purchases, the session (30 minutes of quiet end one) for
 * views and adds. Also the item sets the co-occurrence models read. */
#include "reco/reco_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event/event.h"
#include "json/json.h"

/* --- items ------------------------------------------------------------------- */

uint32_t reco_data_item(reco_data *d, const char *id, cJSON *product) {
    uint32_t found = imap_find(&d->map, (const char *const *)d->ids, id);
    if (found != RECO_NONE) {
        if (product && !d->products[found])
            d->products[found] = product;
        else
            cJSON_Delete(product);
        return found;
    }
    if (d->n_items == d->cap_items) {
        uint32_t cap = d->cap_items ? d->cap_items * 2 : 1024;
        char **ids = realloc(d->ids, cap * sizeof *ids);
        if (ids) d->ids = ids;
        cJSON **products = ids ? realloc(d->products, cap * sizeof *products) : NULL;
        if (!products) {
            cJSON_Delete(product);
            return RECO_NONE;
        }
        d->products = products;
        d->cap_items = cap;
    }
    char *copy = strdup(id);
    if (!copy) {
        cJSON_Delete(product);
        return RECO_NONE;
    }
    uint32_t item = d->n_items;
    d->ids[item] = copy;
    d->products[item] = product;
    if (imap_put(&d->map, (const char *const *)d->ids, item) != BSP_OK) {
        free(copy);
        cJSON_Delete(product);
        return RECO_NONE;
    }
    d->n_items++;
    return item;
}

static bsp_err on_product(void *ctx, bsp_slice id, bsp_slice json) {
    reco_data *d = ctx;
    char key[BSP_ID_MAX_BYTES * 2 + 2];
    if (id.len == 0 || id.len >= sizeof key) return BSP_OK;
    memcpy(key, id.data, id.len);
    key[id.len] = '\0';
    cJSON *product = cJSON_ParseWithLength(json.data, json.len);
    return reco_data_item(d, key, product) == RECO_NONE ? BSP_ENOMEM : BSP_OK;
}

/* --- interactions --------------------------------------------------------------- */

/* One visitor's interactions as read (newest event first). */
typedef struct user_buf {
    reco_data *d;
    int64_t before_ms;
    reco_inter *items;
    size_t count, cap;
    uint32_t event_no; /* counts events backwards; orders are told apart by it */
} user_buf;

static bsp_err user_push(user_buf *u, uint32_t item, int64_t ts, uint8_t kind) {
    reco_inter *items = bsp_grow(u->items, &u->cap, u->count, sizeof *items, 64);
    if (!items) return BSP_ENOMEM;
    u->items = items;
    u->items[u->count++] =
        (reco_inter){.item = item, .basket = u->event_no, .ts_ms = ts, .kind = kind};
    return BSP_OK;
}

/* product_id, else id, else sku; numbers become text. */
static const char *product_id_of(const cJSON *p, char *buf, size_t cap) {
    static const char *const keys[] = {"product_id", "id", "sku"};
    for (size_t i = 0; i < 3; i++) {
        const cJSON *v = json_member(p, keys[i]);
        if (cJSON_IsString(v) && v->valuestring[0]) return v->valuestring;
        if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
            snprintf(buf, cap, "%.15g", v->valuedouble);
            return buf;
        }
    }
    return NULL;
}

static bsp_err push_product(user_buf *u, const cJSON *p, int64_t ts, uint8_t kind) {
    char buf[64];
    const char *id = product_id_of(p, buf, sizeof buf);
    if (!id || strlen(id) > BSP_ID_MAX_BYTES) return BSP_OK;
    uint32_t item = reco_data_item(u->d, id, NULL);
    if (item == RECO_NONE) return BSP_ENOMEM;
    return user_push(u, item, ts, kind);
}

static uint8_t event_kind(const char *name) {
    if (!name) return 0;
    if (strcmp(name, "Order Completed") == 0) return RECO_KIND_BUY;
    if (strcmp(name, "Product Viewed") == 0) return RECO_KIND_VIEW;
    if (strcmp(name, "Product Added") == 0) return RECO_KIND_ADD;
    return 0;
}

static bsp_err read_event(user_buf *u, const cJSON *ev) {
    uint8_t kind = event_kind(json_get_string(ev, "event"));
    int64_t ts;
    const char *when = json_get_string(ev, "timestamp");
    if (!kind || !when || !bsp_time_parse(when, &ts)) return BSP_OK;
    if (u->before_ms && ts >= u->before_ms) return BSP_OK;
    const cJSON *props = json_get_object(ev, "properties");
    u->d->events++;
    u->event_no--;
    if (kind != RECO_KIND_BUY) return push_product(u, props, ts, kind);
    u->d->orders++;
    const cJSON *p;
    cJSON_ArrayForEach(p, json_get_array(props, "products")) {
        bsp_err rc = push_product(u, p, ts, kind);
        if (rc != BSP_OK) return rc;
    }
    return BSP_OK;
}

static bsp_err on_event(void *ctx, uint64_t seq, bsp_slice json) {
    (void)seq;
    cJSON *ev = cJSON_ParseWithLength(json.data, json.len);
    if (!ev) return BSP_OK; /* not ours to judge; the log is the shop's */
    bsp_err rc = read_event(ctx, ev);
    cJSON_Delete(ev);
    return rc;
}

static bsp_err reserve_inter(reco_data *d, size_t more) {
    if (d->n_inter + more <= d->cap_inter) return BSP_OK;
    size_t cap = d->cap_inter ? d->cap_inter : 4096;
    while (cap < d->n_inter + more)
        cap *= 2;
    reco_inter *inter = realloc(d->inter, cap * sizeof *inter);
    if (!inter) return BSP_ENOMEM;
    d->inter = inter;
    d->cap_inter = cap;
    return BSP_OK;
}

static bsp_err reserve_user(reco_data *d) {
    if (d->n_users + 1 < d->cap_users) return BSP_OK;
    uint32_t cap = d->cap_users ? d->cap_users * 2 : 1024;
    uint64_t *pids = realloc(d->pids, cap * sizeof *pids);
    if (pids) d->pids = pids;
    uint32_t *off = pids ? realloc(d->user_off, (cap + 1) * sizeof *off) : NULL;
    if (!off) return BSP_ENOMEM;
    d->user_off = off;
    d->cap_users = cap;
    return BSP_OK;
}

/* Appends u's interactions oldest first with global basket numbers: one an
 * order, one a session of views and adds. */
static bsp_err user_commit(reco_data *d, uint64_t pid, user_buf *u) {
    if (u->count == 0) return BSP_OK;
    if (reserve_inter(d, u->count) != BSP_OK || reserve_user(d) != BSP_OK) return BSP_ENOMEM;
    if (d->n_users == 0) d->user_off[0] = 0;
    uint32_t last_event = 0, order_basket = 0, session_basket = 0;
    int64_t last_browse = INT64_MIN / 2;
    for (size_t i = u->count; i-- > 0;) {
        reco_inter in = u->items[i];
        if (in.kind == RECO_KIND_BUY) {
            if (in.basket != last_event || i == u->count - 1) order_basket = d->n_baskets++;
            last_event = in.basket;
            in.basket = order_basket;
        } else {
            if (in.ts_ms - last_browse > RECO_SESSION_GAP_MS) session_basket = d->n_baskets++;
            last_browse = in.ts_ms;
            last_event = in.basket;
            in.basket = session_basket;
        }
        if (in.ts_ms > d->end_ms) d->end_ms = in.ts_ms;
        d->inter[d->n_inter++] = in;
    }
    d->pids[d->n_users++] = pid;
    d->user_off[d->n_users] = (uint32_t)d->n_inter;
    return BSP_OK;
}

typedef struct pid_list {
    uint64_t *pids;
    size_t count, cap;
} pid_list;

static bsp_err on_profile(void *ctx, uint64_t pid, bsp_slice json) {
    (void)json;
    pid_list *l = ctx;
    uint64_t *pids = bsp_grow(l->pids, &l->cap, l->count, sizeof *pids, 1024);
    if (!pids) return BSP_ENOMEM;
    l->pids = pids;
    l->pids[l->count++] = pid;
    return BSP_OK;
}

static bsp_err load_users(bsp_txn *txn, int64_t before_ms, reco_data *d) {
    pid_list l = {0};
    bsp_err rc = store_profiles_scan(txn, on_profile, &l);
    user_buf u = {.d = d, .before_ms = before_ms};
    for (size_t i = 0; i < l.count && rc == BSP_OK; i++) {
        u.count = 0;
        u.event_no = UINT32_MAX;
        rc = store_profile_events(txn, l.pids[i], UINT64_MAX, SIZE_MAX, on_event, &u);
        if (rc == BSP_OK) rc = user_commit(d, l.pids[i], &u);
    }
    free(u.items);
    free(l.pids);
    return rc;
}

bsp_err reco_data_load(bsp_txn *txn, int64_t before_ms, reco_data *d) {
    memset(d, 0, sizeof *d);
    d->end_ms = INT64_MIN;
    bsp_err rc = imap_init(&d->map, 4096);
    if (rc == BSP_OK) rc = store_products_scan(txn, on_product, d);
    if (rc == BSP_OK) rc = load_users(txn, before_ms, d);
    if (rc == BSP_OK && !d->user_off) {
        d->user_off = calloc(1, sizeof *d->user_off);
        if (!d->user_off) rc = BSP_ENOMEM;
    }
    if (d->end_ms == INT64_MIN) d->end_ms = 0;
    if (rc != BSP_OK) reco_data_free(d);
    return rc;
}

void reco_data_free(reco_data *d) {
    for (uint32_t i = 0; i < d->n_items; i++) {
        free(d->ids[i]);
        cJSON_Delete(d->products[i]);
    }
    free(d->ids);
    free(d->products);
    imap_free(&d->map);
    free(d->pids);
    free(d->user_off);
    free(d->inter);
    memset(d, 0, sizeof *d);
}

/* --- item sets -------------------------------------------------------------------- */

static bool wanted(const reco_inter *in, reco_sets_kind kind) {
    return kind == SETS_SESSIONS ? in->kind != RECO_KIND_BUY : in->kind == RECO_KIND_BUY;
}

/* Distinct items of one group (a user's interactions in [from, to) that
 * share a basket, or all of them for SETS_BUYERS), appended to out. */
static uint32_t add_distinct(const reco_data *d, size_t from, size_t to, reco_sets_kind kind,
                             uint32_t *out, uint8_t *seen) {
    uint32_t n = 0;
    for (size_t i = from; i < to; i++) {
        const reco_inter *in = &d->inter[i];
        if (!wanted(in, kind) || seen[in->item]) continue;
        seen[in->item] = 1;
        if (kind != SETS_BUYERS && n >= RECO_BASKET_MAX) continue;
        out[n++] = in->item;
    }
    for (size_t i = from; i < to; i++)
        seen[d->inter[i].item] = 0;
    return n;
}

/* Groups: per user (buyers) or per run of one basket within a user. */
static bsp_err fill_sets(const reco_data *d, reco_sets_kind kind, reco_sets *s, uint8_t *seen) {
    size_t used = 0;
    s->count = 0;
    s->off[0] = 0;
    for (uint32_t u = 0; u < d->n_users; u++) {
        size_t from = d->user_off[u], end = d->user_off[u + 1];
        while (from < end) {
            size_t to = end;
            if (kind != SETS_BUYERS) {
                uint32_t b = RECO_NONE;
                for (to = from; to < end; to++) {
                    if (!wanted(&d->inter[to], kind)) continue;
                    if (b == RECO_NONE)
                        b = d->inter[to].basket;
                    else if (d->inter[to].basket != b)
                        break;
                }
            }
            uint32_t n = add_distinct(d, from, to, kind, s->items + used, seen);
            if (n >= (kind == SETS_BUYERS ? 1u : 2u)) {
                used += n;
                s->off[++s->count] = (uint32_t)used;
            }
            from = to;
        }
    }
    return BSP_OK;
}

bsp_err reco_sets_build(const reco_data *d, reco_sets_kind kind, reco_sets *out) {
    memset(out, 0, sizeof *out);
    size_t groups = (size_t)d->n_baskets + d->n_users + 1;
    out->off = malloc((groups + 1) * sizeof *out->off);
    out->items = malloc((d->n_inter + 1) * sizeof *out->items);
    uint8_t *seen = calloc(d->n_items + 1, 1);
    bsp_err rc = out->off && out->items && seen ? fill_sets(d, kind, out, seen) : BSP_ENOMEM;
    free(seen);
    if (rc != BSP_OK) reco_sets_free(out);
    return rc;
}

void reco_sets_free(reco_sets *s) {
    free(s->off);
    free(s->items);
    memset(s, 0, sizeof *s);
}
