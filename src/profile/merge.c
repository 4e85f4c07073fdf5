/* merge.c - merging two profiles when identity resolution finds they are
 * one visitor (Segment semantics: the anonymous history joins the known
 * profile). The profile merged into keeps its own values where both have
 * one; counts add up, lists and carts are united, times take min/max, and
 * "latest" values come from whichever profile was seen later. */
#include "profile/profile_internal.h"

#include "json/json.h"

/* Copies into dst the members of src that dst lacks, recursing where both
 * hold objects; dst's values win. */
static void merge_missing(cJSON *dst, const cJSON *src) {
    const cJSON *it;
    cJSON_ArrayForEach(it, src) {
        if (!it->string) continue;
        cJSON *cur = json_member(dst, it->string);
        if (cJSON_IsObject(cur) && cJSON_IsObject(it)) {
            merge_missing(cur, it);
        } else if (!cur) {
            cJSON *copy = cJSON_Duplicate(it, true);
            if (copy) cJSON_AddItemToObject(dst, it->string, copy);
        }
    }
}

static void merge_traits(bsp_profile *into, const bsp_profile *from) {
    if (!from->traits) return;
    if (into->traits)
        merge_missing(into->traits, from->traits);
    else
        into->traits = cJSON_Duplicate(from->traits, true);
}

static void merge_consent(bsp_profile *into, const bsp_profile *from) {
    if (!from->consent || (into->consent && from->consent_ms <= into->consent_ms)) return;
    cJSON *copy = cJSON_Duplicate(from->consent, true);
    if (!copy) return;
    cJSON_Delete(into->consent);
    into->consent = copy;
    into->consent_ms = from->consent_ms;
}

static void merge_ids(bsp_profile *into, const bsp_profile *from) {
    for (size_t i = 0; i < from->user_ids.count; i++)
        profile_add_id(into, 'u', from->user_ids.items[i]);
    for (size_t i = 0; i < from->anon_ids.count; i++)
        profile_add_id(into, 'a', from->anon_ids.items[i]);
}

static int64_t time_min(int64_t a, int64_t b) {
    if (a == PROFILE_TIME_UNSET) return b;
    if (b == PROFILE_TIME_UNSET) return a;
    return a < b ? a : b;
}

static int64_t time_max(int64_t a, int64_t b) {
    return a > b ? a : b; /* PROFILE_TIME_UNSET is the smallest value */
}

static void merge_activity(bsp_profile *into, const bsp_profile *from) {
    into->first_seen_ms = time_min(into->first_seen_ms, from->first_seen_ms);
    into->last_seen_ms = time_max(into->last_seen_ms, from->last_seen_ms);
    into->last_order_ms = time_max(into->last_order_ms, from->last_order_ms);
    into->sessions += from->sessions;
    into->page_views += from->page_views;
    into->product_views += from->product_views;
    into->add_to_carts += from->add_to_carts;
    into->orders += from->orders;
    money_add(&into->revenue, from->revenue.sum);
    money_add(&into->revenue, from->revenue.comp);
}

/* Quantities add up per product; into's unit price is kept when both have
 * the line. */
static void merge_cart(bsp_profile *into, const bsp_profile *from) {
    for (size_t i = 0; i < from->cart.count; i++) {
        const cart_line *line = &from->cart.lines[i];
        bool known = cart_find(&into->cart, line->product_id) != SIZE_MAX;
        cart_add(&into->cart, line->product_id, line->quantity, !known, line->price);
    }
}

/* into's entries first, then from's that into lacks; purchased keeps its
 * cap by dropping its oldest entries, as it does for new purchases. */
static void merge_products(bsp_profile *into, const bsp_profile *from) {
    strlist *recent = &into->recently_viewed;
    for (size_t i = 0; i < from->recently_viewed.count && recent->count < BSP_PROFILE_RECENT_MAX;
         i++) {
        const char *id = from->recently_viewed.items[i];
        if (strlist_find(recent, id) == SIZE_MAX) strlist_insert(recent, recent->count, id);
    }
    for (size_t i = 0; i < from->purchased.count; i++)
        strlist_add_unique(&into->purchased, from->purchased.items[i], PROFILE_PURCHASED_MAX, true);
    decay_merge(&into->categories, &from->categories);
    decay_merge(&into->brands, &from->brands);
}

/* last_search, country and device of the profile seen later, falling back
 * to the other's where one has none. */
static void merge_latest(bsp_profile *into, const bsp_profile *from) {
    bool from_later = from->last_seen_ms > into->last_seen_ms;
    if (from->last_search && (from_later || !into->last_search))
        profile_set_string(&into->last_search, from->last_search);
    if (from->country && (from_later || !into->country))
        profile_set_string(&into->country, from->country);
    if (from->device != PROFILE_DEVICE_NONE && (from_later || into->device == PROFILE_DEVICE_NONE))
        into->device = from->device;
}

void profile_merge(bsp_profile *into, const bsp_profile *from) {
    if (!into || !from || into == from) return;
    merge_latest(into, from); /* before last_seen takes the max */
    merge_ids(into, from);
    if (from->applied_seq > into->applied_seq) into->applied_seq = from->applied_seq;
    merge_traits(into, from);
    merge_consent(into, from);
    merge_activity(into, from);
    merge_cart(into, from);
    merge_products(into, from);
    extras_merge(into, from);
}
