/* extras.c - what segments, campaigns and models keep on a profile, beside
 * the computed traits of phase 1: segment memberships, score sections
 * (rfm.*, predicted.*), exposure to campaigns (for frequency caps), time
 * spent on product pages ("Product Engaged"), and the recent events that
 * did()/count()/sum() in conditions read.
 *
 * Recent events are kept only for names that some condition uses (the
 * watch list), so a profile does not carry its whole history: the list is
 * process-wide, replaced under a lock by whoever compiles conditions, and
 * read under the same lock by the thread applying events. */
#include "profile/profile_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

#define DAY_MS (24LL * 3600 * 1000)

/* --- the watch list ------------------------------------------------------ */

static pthread_rwlock_t watch_lock = PTHREAD_RWLOCK_INITIALIZER;
static strlist watch_names;

bsp_err profile_watch_events(const char *const *names, size_t count, int64_t window_ms) {
    strlist fresh = {0};
    for (size_t i = 0; window_ms > 0 && i < count; i++) {
        if (strlist_find(&fresh, names[i]) != SIZE_MAX) continue;
        if (strlist_insert(&fresh, fresh.count, names[i]) != BSP_OK) {
            strlist_free(&fresh);
            return BSP_ENOMEM;
        }
    }
    pthread_rwlock_wrlock(&watch_lock);
    strlist old = watch_names;
    watch_names = fresh;
    pthread_rwlock_unlock(&watch_lock);
    strlist_free(&old);
    return BSP_OK;
}

static bool watched(const char *name) {
    pthread_rwlock_rdlock(&watch_lock);
    bool yes = watch_names.count > 0 && strlist_find(&watch_names, name) != SIZE_MAX;
    pthread_rwlock_unlock(&watch_lock);
    return yes;
}

/* --- sections ------------------------------------------------------------ */

static cJSON **section_slot(bsp_profile *p, const char *name) {
    if (!name) return NULL;
    if (strcmp(name, "rfm") == 0) return &p->rfm;
    if (strcmp(name, "predicted") == 0) return &p->predicted;
    return NULL;
}

const cJSON *profile_section(const bsp_profile *p, const char *name) {
    cJSON **slot = section_slot((bsp_profile *)p, name);
    return slot ? *slot : NULL;
}

bsp_err profile_set_section(bsp_profile *p, const char *name, cJSON *obj) {
    cJSON **slot = section_slot(p, name);
    if (!slot || (obj && !cJSON_IsObject(obj))) {
        cJSON_Delete(obj);
        return BSP_EINVAL;
    }
    cJSON_Delete(*slot);
    *slot = obj;
    return BSP_OK;
}

/* --- segments ------------------------------------------------------------ */

bool profile_in_segment(const bsp_profile *p, const char *segment_id) {
    return p->segments.count > 0 && strlist_find(&p->segments, segment_id) != SIZE_MAX;
}

bool profile_in_segment_hashed(const bsp_profile *p, const char *segment_id, uint64_t hash) {
    return p->segments.count > 0 && strlist_find_hashed(&p->segments, segment_id, hash) != SIZE_MAX;
}

bool profile_set_segment(bsp_profile *p, const char *segment_id, bool member) {
    return profile_set_segment_hashed(p, segment_id, bsp_hash64(segment_id, strlen(segment_id)),
                                      member);
}

bool profile_set_segment_hashed(bsp_profile *p, const char *segment_id, uint64_t hash,
                                bool member) {
    size_t at = strlist_find_hashed(&p->segments, segment_id, hash);
    if (member == (at != SIZE_MAX)) return false;
    if (!member) {
        strlist_remove(&p->segments, at);
        return true;
    }
    return strlist_insert_hashed(&p->segments, p->segments.count, segment_id, hash) == BSP_OK;
}

size_t profile_segment_count(const bsp_profile *p) {
    return p->segments.count;
}

const char *profile_segment_at(const bsp_profile *p, size_t i) {
    return i < p->segments.count ? p->segments.items[i] : NULL;
}

/* --- campaign exposure --------------------------------------------------- */

static exposure *exposure_find(const bsp_profile *p, const char *campaign) {
    for (size_t i = 0; i < p->exposure_count; i++)
        if (strcmp(p->exposures[i].campaign, campaign) == 0) return &p->exposures[i];
    return NULL;
}

/* Makes room by dropping the least viewed campaign when full. */
static exposure *exposure_add(bsp_profile *p, const char *campaign) {
    if (p->exposure_count >= PROFILE_EXPOSURES_MAX) {
        size_t least = 0;
        for (size_t i = 1; i < p->exposure_count; i++)
            if (p->exposures[i].views_total < p->exposures[least].views_total) least = i;
        free(p->exposures[least].campaign);
        p->exposures[least] = p->exposures[--p->exposure_count];
    }
    if (p->exposure_count == p->exposure_cap) {
        size_t cap = p->exposure_cap ? p->exposure_cap * 2 : 4;
        exposure *grown = realloc(p->exposures, cap * sizeof *grown);
        if (!grown) return NULL;
        p->exposures = grown;
        p->exposure_cap = cap;
    }
    char *id = strdup(campaign);
    if (!id) return NULL;
    exposure *e = &p->exposures[p->exposure_count++];
    *e = (exposure){.campaign = id, .day = INT64_MIN};
    return e;
}

static int64_t day_of(int64_t ms) {
    return ms >= 0 ? ms / DAY_MS : (ms - DAY_MS + 1) / DAY_MS;
}

static void count_view(exposure *e, int64_t ts_ms) {
    int64_t day = day_of(ts_ms);
    if (day > e->day) {
        e->day = day;
        e->views_day = 0;
    }
    if (day == e->day && e->views_day < UINT32_MAX) e->views_day++;
    if (e->views_total < UINT32_MAX) e->views_total++;
}

static void on_promotion(bsp_profile *p, const cJSON *props, int64_t ts_ms, bool click) {
    const char *campaign = json_get_string(props, "promotion_id");
    if (!campaign || !*campaign) return;
    exposure *e = exposure_find(p, campaign);
    if (!e) e = exposure_add(p, campaign);
    if (!e) return;
    if (!click)
        count_view(e, ts_ms);
    else if (e->clicks_total < UINT32_MAX)
        e->clicks_total++;
}

profile_exposure profile_campaign_exposure(const bsp_profile *p, const char *campaign_id,
                                           int64_t now_ms) {
    profile_exposure out = {0};
    const exposure *e = campaign_id ? exposure_find(p, campaign_id) : NULL;
    if (!e) return out;
    out.views_today = e->day == day_of(now_ms) ? e->views_day : 0;
    out.views_total = e->views_total;
    out.clicks_total = e->clicks_total;
    return out;
}

/* --- engagement ---------------------------------------------------------- */

static uint32_t on_engaged(bsp_profile *p, const cJSON *props, int64_t ts_ms) {
    double seconds = json_get_number(props, "seconds", 0);
    if (!(seconds > 0)) return 0;
    if (seconds > PROFILE_DWELL_MAX_SECONDS) seconds = PROFILE_DWELL_MAX_SECONDS;
    const char *product = json_get_string(props, "product_id");
    const char *category = json_get_string(props, "category");
    if (product && *product) decay_add(&p->dwell_products, product, seconds, ts_ms);
    if (category && *category) decay_add(&p->dwell_categories, category, seconds, ts_ms);
    p->dwell_seconds += seconds;
    return PROFILE_C_ENGAGED_SECONDS | PROFILE_C_ENGAGED_CATEGORY | PROFILE_C_ENGAGED_PRODUCT;
}

/* --- recent events ------------------------------------------------------- */

static int64_t recent_ts(const cJSON *item) {
    return (int64_t)json_get_number(item, "timestamp", 0);
}

static bool recent_is(const cJSON *item, const char *name) {
    const char *n = json_get_string(item, "event");
    return n && strcmp(n, name) == 0;
}

static cJSON *recent_item(const bsp_event *ev, const char *name, const cJSON *props) {
    cJSON *item = cJSON_CreateObject();
    if (!item) return NULL;
    bool small = ev->text_len <= PROFILE_RECENT_PROPS_MAX;
    cJSON *copy = props && small ? cJSON_Duplicate(props, true) : cJSON_CreateObject();
    if (!cJSON_AddStringToObject(item, "event", name) ||
        !cJSON_AddNumberToObject(item, "timestamp", (double)ev->ts_ms) || !copy ||
        !cJSON_AddItemToObject(item, "properties", copy)) {
        if (copy && !json_member(item, "properties")) cJSON_Delete(copy);
        cJSON_Delete(item);
        return NULL;
    }
    return item;
}

/* Links item into arr before the first element not newer than it (Debian's
 * cJSON 1.7.15 refuses cJSON_InsertItemInArray in the middle of a list).
 * cJSON keeps the tail in child->prev; that stays true here. */
static void recent_insert(cJSON *arr, cJSON *item) {
    int64_t ts = recent_ts(item);
    cJSON *before = arr->child;
    while (before && recent_ts(before) > ts)
        before = before->next;
    if (!before) {
        cJSON_AddItemToArray(arr, item);
        return;
    }
    item->next = before;
    item->prev = before->prev;
    if (before == arr->child)
        arr->child = item;
    else
        item->prev->next = item;
    before->prev = item;
}

/* Drops what is older than the window (relative to the newest event seen)
 * and, per name, what is beyond PROFILE_RECENT_PER_NAME. */
static void recent_trim(bsp_profile *p, const char *name) {
    int64_t oldest = p->last_seen_ms - PROFILE_RECENT_WINDOW_DAYS * DAY_MS;
    size_t same = 0;
    cJSON *it = p->recent->child;
    while (it) {
        cJSON *next = it->next;
        bool mine = recent_is(it, name);
        if (mine) same++;
        if (recent_ts(it) < oldest || (mine && same > PROFILE_RECENT_PER_NAME))
            cJSON_Delete(cJSON_DetachItemViaPointer(p->recent, it));
        it = next;
    }
}

static void recent_add(bsp_profile *p, const bsp_event *ev, const char *name, const cJSON *props) {
    if (!p->recent && !(p->recent = cJSON_CreateArray())) return;
    cJSON *item = recent_item(ev, name, props);
    if (!item) return;
    recent_insert(p->recent, item);
    recent_trim(p, name);
}

void profile_each_recent(const bsp_profile *p, const char *name, int64_t since_ms,
                         bool (*visit)(void *vctx, const cJSON *event), void *vctx) {
    if (!p->recent || !name) return;
    const cJSON *it;
    cJSON_ArrayForEach(it, p->recent) {
        if (recent_ts(it) < since_ms) return; /* newest first */
        if (recent_is(it, name) && !visit(vctx, it)) return;
    }
}

uint32_t extras_apply_track(bsp_profile *p, const bsp_event *ev, const char *name,
                            const cJSON *props) {
    uint32_t changed = 0;
    if (strcmp(name, "Promotion Viewed") == 0)
        on_promotion(p, props, ev->ts_ms, false);
    else if (strcmp(name, "Promotion Clicked") == 0)
        on_promotion(p, props, ev->ts_ms, true);
    else if (strcmp(name, "Product Engaged") == 0)
        changed = on_engaged(p, props, ev->ts_ms);
    if (watched(name)) recent_add(p, ev, name, props);
    return changed;
}

/* --- merge and free ------------------------------------------------------ */

static void merge_exposures(bsp_profile *into, const bsp_profile *from) {
    for (size_t i = 0; i < from->exposure_count; i++) {
        const exposure *src = &from->exposures[i];
        exposure *dst = exposure_find(into, src->campaign);
        if (!dst && !(dst = exposure_add(into, src->campaign))) return;
        if (src->day > dst->day) {
            dst->day = src->day;
            dst->views_day = src->views_day;
        } else if (src->day == dst->day) {
            dst->views_day += src->views_day;
        }
        dst->views_total += src->views_total;
        dst->clicks_total += src->clicks_total;
    }
}

static void merge_recent(bsp_profile *into, const bsp_profile *from) {
    if (!from->recent) return;
    if (!into->recent && !(into->recent = cJSON_CreateArray())) return;
    const cJSON *it;
    cJSON_ArrayForEach(it, from->recent) {
        cJSON *copy = cJSON_Duplicate(it, true);
        if (!copy) return;
        recent_insert(into->recent, copy);
        recent_trim(into, json_get_string(copy, "event"));
    }
}

static void merge_section(cJSON **into, const cJSON *from) {
    if (!*into && from) *into = cJSON_Duplicate(from, true);
}

void extras_merge(bsp_profile *into, const bsp_profile *from) {
    merge_section(&into->rfm, from->rfm);
    merge_section(&into->predicted, from->predicted);
    merge_exposures(into, from);
    decay_merge(&into->dwell_products, &from->dwell_products);
    decay_merge(&into->dwell_categories, &from->dwell_categories);
    into->dwell_seconds += from->dwell_seconds;
    merge_recent(into, from);
}

void extras_free(bsp_profile *p) {
    cJSON_Delete(p->rfm);
    cJSON_Delete(p->predicted);
    strlist_free(&p->segments);
    for (size_t i = 0; i < p->exposure_count; i++)
        free(p->exposures[i].campaign);
    free(p->exposures);
    decay_free(&p->dwell_products);
    decay_free(&p->dwell_categories);
    cJSON_Delete(p->recent);
}

/* --- storage form ---------------------------------------------------------
 *   "x": {"rfm": {...}, "pred": {...}, "seg": [ids],
 *         "exp": [[campaign, day, views_day, views_total, clicks]],
 *         "dp"/"dc": {"ref": ms, "e": [[name, score]]}, "ds": seconds,
 *         "recent": [{"event", "timestamp", "properties"}]} */

/* The storage tree borrows the profile's own trees and strings (cJSON
 * references: deleting the tree frees neither), as it is printed at once
 * and deleted while the profile is unchanged. */
static bool add_ref(cJSON *o, const char *key, const cJSON *v) {
    if (!v) return true;
    /* cJSON takes a non-const item but only copies its node header. */
    return cJSON_AddItemReferenceToObject(o, key, (cJSON *)v);
}

static bool add_strlist(cJSON *o, const char *key, const strlist *l) {
    if (l->count == 0) return true;
    cJSON *arr = cJSON_AddArrayToObject(o, key);
    for (size_t i = 0; arr && i < l->count; i++)
        if (!cJSON_AddItemToArray(arr, cJSON_CreateStringReference(l->items[i]))) return false;
    return arr != NULL;
}

static bool add_exposures(cJSON *o, const bsp_profile *p) {
    if (p->exposure_count == 0) return true;
    cJSON *arr = cJSON_AddArrayToObject(o, "exp");
    for (size_t i = 0; arr && i < p->exposure_count; i++) {
        const exposure *e = &p->exposures[i];
        cJSON *row = cJSON_CreateArray();
        if (!row || !cJSON_AddItemToArray(arr, row)) {
            cJSON_Delete(row);
            return false;
        }
        cJSON_AddItemToArray(row, cJSON_CreateStringReference(e->campaign));
        cJSON_AddItemToArray(row, cJSON_CreateNumber((double)(e->day == INT64_MIN ? -1 : e->day)));
        cJSON_AddItemToArray(row, cJSON_CreateNumber(e->views_day));
        cJSON_AddItemToArray(row, cJSON_CreateNumber(e->views_total));
        cJSON_AddItemToArray(row, cJSON_CreateNumber(e->clicks_total));
    }
    return arr != NULL;
}

static bool add_decay(cJSON *o, const char *key, const decay_table *t) {
    if (t->count == 0) return true;
    cJSON *obj = cJSON_AddObjectToObject(o, key);
    cJSON *arr = obj ? cJSON_AddArrayToObject(obj, "e") : NULL;
    if (!arr || !cJSON_AddNumberToObject(obj, "ref", (double)t->ref_ms)) return false;
    for (size_t i = 0; i < t->count; i++) {
        cJSON *row = cJSON_CreateArray();
        if (!row || !cJSON_AddItemToArray(arr, row)) {
            cJSON_Delete(row);
            return false;
        }
        cJSON_AddItemToArray(row, cJSON_CreateStringReference(t->entries[i].name));
        cJSON_AddItemToArray(row, cJSON_CreateNumber(t->entries[i].score));
    }
    return true;
}

static bool has_extras(const bsp_profile *p) {
    return p->rfm || p->predicted || p->segments.count || p->exposure_count ||
           p->dwell_products.count || p->dwell_categories.count || p->dwell_seconds > 0 ||
           (p->recent && p->recent->child);
}

bsp_err extras_to_storage(const bsp_profile *p, cJSON **out) {
    *out = NULL;
    if (!has_extras(p)) return BSP_OK;
    cJSON *x = cJSON_CreateObject();
    bool ok = x && add_ref(x, "rfm", p->rfm) && add_ref(x, "pred", p->predicted) &&
              add_strlist(x, "seg", &p->segments) && add_exposures(x, p) &&
              add_decay(x, "dp", &p->dwell_products) && add_decay(x, "dc", &p->dwell_categories);
    if (ok && p->dwell_seconds > 0) ok = cJSON_AddNumberToObject(x, "ds", p->dwell_seconds);
    if (ok && p->recent && p->recent->child) ok = add_ref(x, "recent", p->recent);
    if (ok) {
        *out = x;
        return BSP_OK;
    }
    cJSON_Delete(x);
    return BSP_ENOMEM;
}

static bsp_err read_section(const cJSON *x, const char *key, cJSON **out) {
    const cJSON *v = json_member(x, key);
    if (!v) return BSP_OK;
    if (!cJSON_IsObject(v)) return BSP_ETYPE;
    *out = cJSON_Duplicate(v, true);
    return *out ? BSP_OK : BSP_ENOMEM;
}

static bsp_err read_segments(bsp_profile *p, const cJSON *x) {
    const cJSON *arr = json_member(x, "seg"), *it;
    if (!arr) return BSP_OK;
    if (!cJSON_IsArray(arr)) return BSP_ETYPE;
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsString(it)) return BSP_ETYPE;
        if (extras_load_segment(p, it->valuestring) != BSP_OK) return BSP_ENOMEM;
    }
    return BSP_OK;
}

bsp_err extras_load_segment(bsp_profile *p, const char *segment_id) {
    if (profile_in_segment(p, segment_id)) return BSP_OK;
    return strlist_insert(&p->segments, p->segments.count, segment_id) == BSP_OK ? BSP_OK
                                                                                 : BSP_ENOMEM;
}

static double number_or_zero(const cJSON *v) {
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static uint32_t counter_of(double d) {
    return d > 0 ? (d >= UINT32_MAX ? UINT32_MAX : (uint32_t)d) : 0;
}

bsp_err extras_load_exposure(bsp_profile *p, const char *campaign, double day, double views_day,
                             double views_total, double clicks_total) {
    if (exposure_find(p, campaign)) return BSP_OK;
    exposure *e = exposure_add(p, campaign);
    if (!e) return BSP_ENOMEM;
    e->day = day < 0 ? INT64_MIN : day < 0x1p62 ? (int64_t)day : INT64_MAX; /* no overflow */
    e->views_day = counter_of(views_day);
    e->views_total = counter_of(views_total);
    e->clicks_total = counter_of(clicks_total);
    return BSP_OK;
}

static bsp_err read_exposures(bsp_profile *p, const cJSON *x) {
    const cJSON *arr = json_member(x, "exp"), *row;
    if (!arr) return BSP_OK;
    if (!cJSON_IsArray(arr)) return BSP_ETYPE;
    cJSON_ArrayForEach(row, arr) {
        const cJSON *id = cJSON_GetArrayItem(row, 0), *day = cJSON_GetArrayItem(row, 1);
        if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != 5 || !cJSON_IsString(id) ||
            !cJSON_IsNumber(day))
            return BSP_ETYPE;
        bsp_err err = extras_load_exposure(
            p, id->valuestring, day->valuedouble, number_or_zero(cJSON_GetArrayItem(row, 2)),
            number_or_zero(cJSON_GetArrayItem(row, 3)), number_or_zero(cJSON_GetArrayItem(row, 4)));
        if (err) return err;
    }
    return BSP_OK;
}

static bsp_err read_decay(const cJSON *x, const char *key, decay_table *t) {
    const cJSON *obj = json_member(x, key), *row;
    if (!obj) return BSP_OK;
    const cJSON *ref = json_member(obj, "ref");
    const cJSON *rows = json_member(obj, "e");
    /* beyond 2^53 the conversion to int64_t could overflow (undefined) */
    if (!cJSON_IsNumber(ref) || !(fabs(ref->valuedouble) <= 0x1p53) || !cJSON_IsArray(rows))
        return BSP_ETYPE;
    t->ref_ms = (int64_t)ref->valuedouble;
    cJSON_ArrayForEach(row, rows) {
        const cJSON *name = cJSON_GetArrayItem(row, 0), *score = cJSON_GetArrayItem(row, 1);
        if (!cJSON_IsString(name) || !cJSON_IsNumber(score) || !isfinite(score->valuedouble))
            return BSP_ETYPE;
        if (!decay_append(t, name->valuestring, score->valuedouble)) return BSP_ENOMEM;
    }
    if (t->count > PROFILE_DECAY_MAX) decay_trim(t);
    return BSP_OK;
}

bool extras_recent_ok(const cJSON *arr) {
    const cJSON *it;
    if (!cJSON_IsArray(arr)) return false;
    cJSON_ArrayForEach(it, arr) {
        const cJSON *ts = json_member(it, "timestamp");
        /* A time beyond 2^53 ms is no event's (and 1e400 would be written
         * back as null, leaving a profile that no longer reads). */
        if (!json_get_string(it, "event") || !cJSON_IsNumber(ts) ||
            !(fabs(ts->valuedouble) <= 0x1p53))
            return false;
    }
    return true;
}

static bsp_err read_recent(bsp_profile *p, const cJSON *x) {
    const cJSON *arr = json_member(x, "recent");
    if (!arr) return BSP_OK;
    if (!extras_recent_ok(arr)) return BSP_ETYPE;
    p->recent = cJSON_Duplicate(arr, true);
    return p->recent ? BSP_OK : BSP_ENOMEM;
}

bsp_err extras_from_storage(bsp_profile *p, const cJSON *x) {
    if (!cJSON_IsObject(x)) return BSP_ETYPE;
    bsp_err err = read_section(x, "rfm", &p->rfm);
    if (!err) err = read_section(x, "pred", &p->predicted);
    if (!err) err = read_segments(p, x);
    if (!err) err = read_exposures(p, x);
    if (!err) err = read_decay(x, "dp", &p->dwell_products);
    if (!err) err = read_decay(x, "dc", &p->dwell_categories);
    const cJSON *ds = json_member(x, "ds");
    if (!err && ds) {
        if (!cJSON_IsNumber(ds) || !(ds->valuedouble >= 0)) return BSP_ETYPE;
        p->dwell_seconds = ds->valuedouble;
    }
    if (!err) err = read_recent(p, x);
    return err;
}

/* --- public form --------------------------------------------------------- */

static cJSON *string_or_null(const char *s) {
    return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

bool extras_public_computed(const bsp_profile *p, cJSON *computed) {
    return cJSON_AddNumberToObject(computed, "engaged_seconds", round(p->dwell_seconds)) &&
           cJSON_AddItemToObject(computed, "engaged_category",
                                 string_or_null(decay_top(&p->dwell_categories))) &&
           cJSON_AddItemToObject(computed, "engaged_product",
                                 string_or_null(decay_top(&p->dwell_products)));
}

static cJSON *campaigns_json(const bsp_profile *p) {
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i < p->exposure_count; i++) {
        const exposure *e = &p->exposures[i];
        cJSON *c = cJSON_AddObjectToObject(o, e->campaign);
        if (!c || !cJSON_AddNumberToObject(c, "views", e->views_total) ||
            !cJSON_AddNumberToObject(c, "clicks", e->clicks_total)) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

bool extras_public(const bsp_profile *p, cJSON *profile) {
    cJSON *segs = cJSON_AddArrayToObject(profile, "segments");
    for (size_t i = 0; segs && i < p->segments.count; i++)
        if (!cJSON_AddItemToArray(segs, cJSON_CreateString(p->segments.items[i]))) return false;
    cJSON *rfm = p->rfm ? cJSON_Duplicate(p->rfm, true) : cJSON_CreateObject();
    cJSON *pred = p->predicted ? cJSON_Duplicate(p->predicted, true) : cJSON_CreateObject();
    cJSON *camp = campaigns_json(p);
    bool ok = segs && rfm && pred && camp;
    ok = ok && cJSON_AddItemToObject(profile, "rfm", rfm);
    if (!ok) cJSON_Delete(rfm);
    ok = ok && cJSON_AddItemToObject(profile, "predicted", pred);
    if (!ok) cJSON_Delete(pred);
    ok = ok && cJSON_AddItemToObject(profile, "campaigns", camp);
    if (!ok) cJSON_Delete(camp);
    return ok;
}
