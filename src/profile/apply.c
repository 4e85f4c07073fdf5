/* apply.c - one event into a profile: ids, traits (identify traits and
 * RudderStack's context.traits), consent, and the computed traits driven by
 * Segment's E-commerce Spec v2 event names. This runs for every ingested
 * event, so it reads the event's cJSON in place and allocates only when a
 * stored value actually changes. */
#include "profile/profile_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "json/json.h"

/* A product id as a string: ids may arrive as strings or numbers. buf holds
 * the formatted number. NULL when absent or empty. */
static const char *id_string(const cJSON *v, char *buf, size_t cap) {
    if (cJSON_IsString(v)) return v->valuestring[0] ? v->valuestring : NULL;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return NULL;
    double d = v->valuedouble;
    if (d == trunc(d) && fabs(d) < 1e15)
        snprintf(buf, cap, "%.0f", d);
    else
        snprintf(buf, cap, "%.17g", d);
    return buf;
}

/* Segment v2 names it product_id; v1 and some senders use id. */
static const char *product_id_of(const cJSON *product, char *buf, size_t cap) {
    const char *id = id_string(json_member(product, "product_id"), buf, cap);
    return id ? id : id_string(json_member(product, "id"), buf, cap);
}

/* A quantity: a number >= 1 (rounded), anything else counts as 1. */
static int64_t quantity_of(const cJSON *product) {
    double q = json_get_number(product, "quantity", 1);
    if (!(q >= 1)) return 1;
    return q > 1e9 ? 1000000000 : (int64_t)llround(q);
}

static bool price_of(const cJSON *product, double *price) {
    const cJSON *v = json_member(product, "price");
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return false;
    *price = v->valuedouble;
    return true;
}

/* properties.revenue if a number, else total, else sum of price * quantity
 * over products[]. */
static double order_amount(const cJSON *props) {
    const cJSON *v = json_member(props, "revenue");
    if (!cJSON_IsNumber(v)) v = json_member(props, "total");
    if (cJSON_IsNumber(v)) return isfinite(v->valuedouble) ? v->valuedouble : 0;
    money sum = {0};
    const cJSON *product;
    cJSON_ArrayForEach(product, json_get_array(props, "products")) {
        double price;
        if (price_of(product, &price)) money_add(&sum, price * (double)quantity_of(product));
    }
    return money_value(&sum);
}

/* --- traits and consent -------------------------------------------------- */

/* Deep merge that leaves unchanged values alone, so a sender that repeats
 * the same traits on every event costs comparisons, not allocations. */
static void merge_changed(cJSON *dst, const cJSON *src) {
    const cJSON *it;
    cJSON_ArrayForEach(it, src) {
        if (!it->string) continue;
        cJSON *cur = json_member(dst, it->string);
        if (cJSON_IsObject(cur) && cJSON_IsObject(it)) {
            merge_changed(cur, it);
            continue;
        }
        if (cur && cJSON_Compare(cur, it, true)) continue;
        cJSON *copy = cJSON_Duplicate(it, true);
        if (copy) json_set(dst, it->string, copy);
    }
}

static void apply_traits(bsp_profile *p, const cJSON *traits) {
    if (!cJSON_IsObject(traits) || !traits->child) return;
    if (!p->traits && !(p->traits = cJSON_CreateObject())) return;
    merge_changed(p->traits, traits);
}

/* Latest categoryPreferences wins, by event time. */
static void apply_consent(bsp_profile *p, const bsp_event_context *ctx, int64_t ts_ms) {
    const cJSON *prefs = json_get_object(ctx->consent, "categoryPreferences");
    if (!cJSON_IsObject(prefs)) return;
    if (p->consent && ts_ms < p->consent_ms) return;
    p->consent_ms = ts_ms;
    if (p->consent && cJSON_Compare(p->consent, prefs, true)) return;
    cJSON *copy = cJSON_Duplicate(prefs, true);
    if (!copy) return;
    cJSON_Delete(p->consent);
    p->consent = copy;
}

/* --- times --------------------------------------------------------------- */

/* first/last seen and sessions: a gap of more than the session gap since the
 * newest event starts a session; late (older) events never do. A profile's
 * first event brings every computed trait into being, at its first value
 * (0 orders is a value a condition may ask for), so it changes them all. */
static uint32_t apply_time(bsp_profile *p, int64_t ts_ms) {
    if (p->last_seen_ms == PROFILE_TIME_UNSET) {
        p->first_seen_ms = p->last_seen_ms = ts_ms;
        p->sessions = 1;
        return PROFILE_C_ALL;
    }
    uint32_t changed = 0;
    if (ts_ms > p->last_seen_ms) {
        if (ts_ms - p->last_seen_ms > BSP_PROFILE_SESSION_GAP_MS) {
            p->sessions++;
            changed |= PROFILE_C_SESSIONS;
        }
        p->last_seen_ms = ts_ms;
        changed |= PROFILE_C_LAST_SEEN;
    }
    if (ts_ms < p->first_seen_ms) {
        p->first_seen_ms = ts_ms;
        changed |= PROFILE_C_FIRST_SEEN;
    }
    return changed;
}

/* --- country and device -------------------------------------------------- */

static const char *country_of(const bsp_event_context *ctx, const cJSON *traits,
                              const cJSON *props) {
    const char *c = json_get_string(ctx->location, "country");
    if (!c || !*c) c = json_get_string(json_path(traits, "address"), "country");
    if (!c || !*c) c = json_get_string(props, "country");
    if (!c || !*c) c = json_get_string(traits, "country");
    return c && *c ? c : NULL;
}

static profile_device device_from_type(const char *type) {
    static const struct {
        const char *name;
        profile_device device;
    } known[] = {
        {"mobile", PROFILE_DEVICE_MOBILE},     {"phone", PROFILE_DEVICE_MOBILE},
        {"smartphone", PROFILE_DEVICE_MOBILE}, {"ios", PROFILE_DEVICE_MOBILE},
        {"android", PROFILE_DEVICE_MOBILE},    {"tablet", PROFILE_DEVICE_TABLET},
        {"ipad", PROFILE_DEVICE_TABLET},       {"desktop", PROFILE_DEVICE_DESKTOP},
        {"pc", PROFILE_DEVICE_DESKTOP},        {"computer", PROFILE_DEVICE_DESKTOP},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcasecmp(type, known[i].name) == 0) return known[i].device;
    return PROFILE_DEVICE_NONE;
}

static profile_device classify_user_agent(const char *ua) {
    if (strstr(ua, "iPad") || strstr(ua, "Tablet")) return PROFILE_DEVICE_TABLET;
    if (strstr(ua, "Mobi") || strstr(ua, "Android") || strstr(ua, "iPhone"))
        return PROFILE_DEVICE_MOBILE;
    return PROFILE_DEVICE_DESKTOP;
}

/* User agents classified lately on this thread (the writer's, in the
 * server), by hash: a shop's visitors share a few dozen agents and every
 * event repeats its visitor's, and up to five substring searches of a
 * 120-byte agent cost more than a hash and a compare. Agents longer than a
 * slot are classified each time. */
#define UA_MEMO_SLOTS 64
#define UA_MEMO_BYTES 256
typedef struct ua_slot {
    size_t len; /* 0: empty */
    profile_device device;
    char ua[UA_MEMO_BYTES];
} ua_slot;
static _Thread_local ua_slot ua_memo[UA_MEMO_SLOTS];

static profile_device device_from_user_agent(const char *ua) {
    size_t len = strlen(ua);
    if (len >= UA_MEMO_BYTES) return classify_user_agent(ua);
    ua_slot *slot = &ua_memo[bsp_hash64(ua, len) % UA_MEMO_SLOTS];
    if (slot->len == len && memcmp(slot->ua, ua, len) == 0) return slot->device;
    slot->device = classify_user_agent(ua);
    memcpy(slot->ua, ua, len);
    slot->len = len;
    return slot->device;
}

/* context.device.type when it names a kind of device, else the user agent. */
static profile_device device_of(const bsp_event_context *ctx) {
    const char *type = json_get_string(ctx->device, "type");
    profile_device d = type ? device_from_type(type) : PROFILE_DEVICE_NONE;
    if (d != PROFILE_DEVICE_NONE) return d;
    const char *ua = ctx->user_agent;
    return ua && *ua ? device_from_user_agent(ua) : PROFILE_DEVICE_NONE;
}

/* --- e-commerce events --------------------------------------------------- */

/* Adds to name's decayed count; true if that may have changed the name on
 * top (the favorite). Only name's score grows (a rebase scales all alike),
 * so the top moves only to name, or off a top that a full table dropped. */
static bool decay_add_moves_top(decay_table *t, const char *name, double weight, int64_t ts_ms) {
    const char *top = decay_top(t);
    bool was_top = top && strcmp(top, name) == 0;
    bool full = t->count >= PROFILE_DECAY_MAX;
    decay_add(t, name, weight, ts_ms);
    if (was_top) return false;
    top = decay_top(t);
    return !top || strcmp(top, name) == 0 || full;
}

static uint32_t add_affinity(bsp_profile *p, const cJSON *product, double weight, int64_t ts_ms) {
    const char *category = json_get_string(product, "category");
    const char *brand = json_get_string(product, "brand");
    uint32_t changed = 0;
    if (category && *category && decay_add_moves_top(&p->categories, category, weight, ts_ms))
        changed |= PROFILE_C_FAVORITE_CATEGORY;
    if (brand && *brand && decay_add_moves_top(&p->brands, brand, weight, ts_ms))
        changed |= PROFILE_C_FAVORITE_BRAND;
    return changed;
}

static uint32_t on_product_viewed(bsp_profile *p, const cJSON *props, int64_t ts_ms) {
    char buf[64];
    const char *id = product_id_of(props, buf, sizeof buf);
    uint32_t changed = PROFILE_C_PRODUCT_VIEWS;
    p->product_views++;
    if (id && strlist_push_front(&p->recently_viewed, id, BSP_PROFILE_RECENT_MAX))
        changed |= PROFILE_C_RECENTLY_VIEWED;
    return changed | add_affinity(p, props, PROFILE_WEIGHT_VIEW, ts_ms);
}

static uint32_t on_product_added(bsp_profile *p, const cJSON *props, int64_t ts_ms) {
    char buf[64];
    const char *id = product_id_of(props, buf, sizeof buf);
    double price = 0;
    bool has_price = price_of(props, &price);
    uint32_t changed = PROFILE_C_ADD_TO_CARTS;
    p->add_to_carts++;
    if (id) {
        cart_add(&p->cart, id, quantity_of(props), has_price, price);
        changed |= PROFILE_C_CART;
    }
    return changed | add_affinity(p, props, PROFILE_WEIGHT_ADD, ts_ms);
}

static uint32_t on_product_removed(bsp_profile *p, const cJSON *props) {
    char buf[64];
    const char *id = product_id_of(props, buf, sizeof buf);
    if (!id || !p->cart.count) return 0;
    cart_remove(&p->cart, id, quantity_of(props));
    return PROFILE_C_CART;
}

static uint32_t on_order_completed(bsp_profile *p, const cJSON *props, int64_t ts_ms) {
    uint32_t changed = PROFILE_C_ORDERS | PROFILE_C_REVENUE | PROFILE_C_AOV;
    p->orders++;
    money_add(&p->revenue, order_amount(props));
    if (p->last_order_ms == PROFILE_TIME_UNSET || ts_ms > p->last_order_ms) {
        p->last_order_ms = ts_ms;
        changed |= PROFILE_C_LAST_ORDER_AT;
    }
    if (p->cart.count) changed |= PROFILE_C_CART;
    cart_clear(&p->cart);
    const cJSON *product;
    cJSON_ArrayForEach(product, json_get_array(props, "products")) {
        char buf[64];
        const char *id = product_id_of(product, buf, sizeof buf);
        if (id && strlist_add_unique(&p->purchased, id, PROFILE_PURCHASED_MAX, true))
            changed |= PROFILE_C_PURCHASED;
        changed |= add_affinity(p, product, PROFILE_WEIGHT_PURCHASE, ts_ms);
    }
    return changed;
}

static uint32_t on_order_reversed(bsp_profile *p, const cJSON *props) {
    money_add(&p->revenue, -order_amount(props));
    return PROFILE_C_REVENUE | PROFILE_C_AOV;
}

/* Sets a "latest wins" text; true if it now holds another value. The copy
 * is made before the old text is freed, so a new value has a new address. */
static bool set_text(char **slot, const char *s) {
    const char *before = *slot;
    profile_set_string(slot, s);
    return *slot != before;
}

static uint32_t on_products_searched(bsp_profile *p, const cJSON *props, bool latest) {
    const char *query = json_get_string(props, "query");
    if (query && *query && (latest || !p->last_search) && set_text(&p->last_search, query))
        return PROFILE_C_LAST_SEARCH;
    return 0;
}

static uint32_t apply_track(bsp_profile *p, const char *name, const cJSON *props, int64_t ts_ms,
                            bool latest) {
    if (strcmp(name, "Product Viewed") == 0) return on_product_viewed(p, props, ts_ms);
    if (strcmp(name, "Product Added") == 0) return on_product_added(p, props, ts_ms);
    if (strcmp(name, "Product Removed") == 0) return on_product_removed(p, props);
    if (strcmp(name, "Order Completed") == 0) return on_order_completed(p, props, ts_ms);
    if (strcmp(name, "Order Refunded") == 0 || strcmp(name, "Order Cancelled") == 0)
        return on_order_reversed(p, props);
    if (strcmp(name, "Products Searched") == 0) return on_products_searched(p, props, latest);
    return 0;
}

/* --- the event ----------------------------------------------------------- */

/* Traits that describe the visitor: identify's traits (group traits describe
 * the group, so not those) and RudderStack's context.traits on any event. */
static const cJSON *apply_all_traits(bsp_profile *p, const bsp_event *ev,
                                     const bsp_event_context *ctx) {
    const cJSON *own = ev->type == BSP_EV_GROUP ? NULL : ev->traits;
    const cJSON *ctx_traits = ctx->traits;
    apply_traits(p, ctx_traits);
    apply_traits(p, own);
    return own ? own : ctx_traits;
}

static uint32_t apply_place(bsp_profile *p, const bsp_event_context *ctx, const cJSON *traits,
                            const cJSON *props, bool latest) {
    uint32_t changed = 0;
    const char *country = country_of(ctx, traits, props);
    if (country && (latest || !p->country) && set_text(&p->country, country))
        changed |= PROFILE_C_COUNTRY;
    profile_device device = device_of(ctx);
    if (device != PROFILE_DEVICE_NONE && device != p->device &&
        (latest || p->device == PROFILE_DEVICE_NONE)) {
        p->device = device;
        changed |= PROFILE_C_DEVICE;
    }
    return changed;
}

uint32_t profile_apply_event(bsp_profile *p, const bsp_event *ev) {
    if (!p || !ev) return 0;
    /* "Latest wins" values change only for events not older than the newest. */
    bool latest = p->last_seen_ms == PROFILE_TIME_UNSET || ev->ts_ms >= p->last_seen_ms;
    uint32_t changed = apply_time(p, ev->ts_ms);
    if (ev->user_id && *ev->user_id) profile_add_id(p, 'u', ev->user_id);
    if (ev->anonymous_id && *ev->anonymous_id) profile_add_id(p, 'a', ev->anonymous_id);
    if (!ev->json) return changed;

    const bsp_event_context *ctx = &ev->context_parts;
    const cJSON *props = ev->properties;
    const cJSON *traits = apply_all_traits(p, ev, ctx);
    apply_consent(p, ctx, ev->ts_ms);
    changed |= apply_place(p, ctx, traits, props, latest);

    if (ev->type == BSP_EV_PAGE || ev->type == BSP_EV_SCREEN) {
        p->page_views++;
        changed |= PROFILE_C_PAGE_VIEWS;
    }
    if (ev->type != BSP_EV_TRACK) return changed;
    const char *name = ev->name ? ev->name : json_get_string(ev->json, "event");
    if (!name) return changed;
    changed |= apply_track(p, name, props, ev->ts_ms, latest);
    return changed | extras_apply_track(p, ev, name, props);
}
