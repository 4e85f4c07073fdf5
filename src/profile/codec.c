/* codec.c - the two JSON forms of a profile.
 *
 * Storage form (profile_to_json / profile_from_json): a compact object that
 * holds everything needed to continue computing, written straight into a
 * buffer (no cJSON tree) and read back exactly: doubles are printed with the
 * fewest digits that parse back to the same bits. Zero, empty and unset
 * fields are left out. Keys:
 *   v, pid (decimal string), uid, aid, traits, consent, consent_ms, first,
 *   last, sessions, pages, views, adds, orders, revenue [sum, compensation],
 *   last_order, cart [[product_id, quantity, price]...], recent, purchased,
 *   cat / brand {"ref": ms, "e": [[name, score]...]}, search, country, device
 *
 * Reading goes through scan.c for the layout written here, and through a
 * cJSON tree (profile_from_json_tree) for anything else.
 *
 * Public form (profile_public_json): what the admin API shows, with ISO
 * times, money rounded to cents and missing strings as null. */
#include "profile/profile_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

#define STORAGE_VERSION 1

/* --- writing the storage form -------------------------------------------- */

/* A small JSON writer: remembers the first error and where commas go. */
typedef struct writer {
    bsp_buf *out;
    bsp_err rc;
    bool need_comma;
} writer;

static void w_raw(writer *w, const char *s, size_t len) {
    if (!w->rc) w->rc = bsp_buf_append(w->out, s, len);
}

static void w_comma(writer *w) {
    if (w->need_comma) w_raw(w, ",", 1);
    w->need_comma = true;
}

static void w_open(writer *w, char c) {
    w_comma(w);
    w_raw(w, &c, 1);
    w->need_comma = false;
}

static void w_close(writer *w, char c) {
    w_raw(w, &c, 1);
    w->need_comma = true;
}

/* Keys are this file's own constants: nothing to escape. Those of up to
 * KEY_SHORT bytes (all of them) go in one piece with their comma. */
#define KEY_SHORT 16

static void w_key(writer *w, const char *key) {
    size_t len = strlen(key);
    if (len > KEY_SHORT) {
        w_comma(w);
        w_raw(w, "\"", 1);
        w_raw(w, key, len);
        w_raw(w, "\":", 2);
    } else {
        char tmp[KEY_SHORT + 4];
        size_t n = 0;
        if (w->need_comma) tmp[n++] = ',';
        tmp[n++] = '"';
        memcpy(tmp + n, key, len);
        n += len;
        tmp[n++] = '"';
        tmp[n++] = ':';
        w_raw(w, tmp, n);
    }
    w->need_comma = false;
}

/* A string: json_write_string copies one without anything to escape
 * (nearly all) in one piece, checking 8 bytes at a time. */
static void w_str(writer *w, const char *s) {
    w_comma(w);
    if (!w->rc) w->rc = json_write_string(w->out, s);
}

/* v in decimal, written backwards to end from the byte before it (20
 * bytes at most); returns where it starts. */
static char *int_text(char *end, int64_t v) {
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    char *p = end;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    return p;
}

static void w_int(writer *w, int64_t v) {
    char tmp[24];
    const char *p = int_text(tmp + sizeof tmp, v);
    w_comma(w);
    w_raw(w, p, (size_t)(tmp + sizeof tmp - p));
}

#define JSON_SAFE_INT 9007199254740992.0 /* 2^53: larger integers lose bits */

/* Formats v so that strtod gives back the same bits: whole numbers as
 * integers; money with the shortest of %.15g, %.16g, %.17g (19.99 stays
 * 19.99); scores, which rarely have a short form, with %.17g at once, as
 * each failed attempt costs a printf and a strtod. */
static size_t format_double(char tmp[JSON_NUMBER_MAX], double v, bool shortest) {
    if (!isfinite(v)) {
        memcpy(tmp, "0", 2);
        return 1;
    }
    if (v == trunc(v) && fabs(v) < JSON_SAFE_INT && !(v == 0 && signbit(v))) {
        char digits[24];
        const char *p = int_text(digits + sizeof digits, (int64_t)v);
        size_t n = (size_t)(digits + sizeof digits - p);
        memcpy(tmp, p, n);
        tmp[n] = '\0';
        return n;
    }
    size_t n = 0;
    for (int digits = shortest ? 15 : 17; digits <= 17; digits++) {
        n = json_format_double(tmp, v, digits);
        if (digits == 17 || strtod(tmp, NULL) == v) break;
    }
    return n;
}

static void w_double(writer *w, double v, bool shortest) {
    char tmp[JSON_NUMBER_MAX];
    size_t n = format_double(tmp, v, shortest);
    w_comma(w);
    w_raw(w, tmp, n);
}

static void w_num(writer *w, double v) {
    w_double(w, v, true);
}

static void w_score(writer *w, double v) {
    w_double(w, v, false);
}

static void w_json(writer *w, const cJSON *item) {
    w_comma(w);
    if (!w->rc) w->rc = json_write(w->out, item);
}

static void w_int_field(writer *w, const char *key, int64_t v) {
    if (v == 0) return;
    w_key(w, key);
    w_int(w, v);
}

static void w_time_field(writer *w, const char *key, int64_t ms) {
    if (ms == PROFILE_TIME_UNSET) return;
    w_key(w, key);
    w_int(w, ms);
}

static void w_str_field(writer *w, const char *key, const char *s) {
    if (!s) return;
    w_key(w, key);
    w_str(w, s);
}

static void w_list_field(writer *w, const char *key, const strlist *l) {
    if (l->count == 0) return;
    w_key(w, key);
    w_open(w, '[');
    for (size_t i = 0; i < l->count; i++)
        w_str(w, l->items[i]);
    w_close(w, ']');
}

static void w_cart(writer *w, const cart *c) {
    if (c->count == 0) return;
    w_key(w, "cart");
    w_open(w, '[');
    for (size_t i = 0; i < c->count; i++) {
        w_open(w, '[');
        w_str(w, c->lines[i].product_id);
        w_int(w, c->lines[i].quantity);
        w_num(w, c->lines[i].price);
        w_close(w, ']');
    }
    w_close(w, ']');
}

static void w_decay(writer *w, const char *key, const decay_table *t) {
    if (t->count == 0) return;
    w_key(w, key);
    w_open(w, '{');
    w_key(w, "ref");
    w_int(w, t->ref_ms);
    w_key(w, "e");
    w_open(w, '[');
    for (size_t i = 0; i < t->count; i++) {
        w_open(w, '[');
        w_str(w, t->entries[i].name);
        w_score(w, t->entries[i].score);
        w_close(w, ']');
    }
    w_close(w, ']');
    w_close(w, '}');
}

static void w_identity(writer *w, const bsp_profile *p) {
    char pid[24];
    snprintf(pid, sizeof pid, "%" PRIu64, p->pid);
    w_key(w, "v");
    w_int(w, STORAGE_VERSION);
    w_str_field(w, "pid", pid);
    w_list_field(w, "uid", &p->user_ids);
    w_list_field(w, "aid", &p->anon_ids);
    if (p->traits) {
        w_key(w, "traits");
        w_json(w, p->traits);
    }
    if (p->consent) {
        w_key(w, "consent");
        w_json(w, p->consent);
        w_time_field(w, "consent_ms", p->consent_ms);
    }
}

static void w_activity(writer *w, const bsp_profile *p) {
    w_time_field(w, "first", p->first_seen_ms);
    w_time_field(w, "last", p->last_seen_ms);
    w_int_field(w, "seq", p->applied_seq);
    w_int_field(w, "sessions", p->sessions);
    w_int_field(w, "pages", p->page_views);
    w_int_field(w, "views", p->product_views);
    w_int_field(w, "adds", p->add_to_carts);
    w_int_field(w, "orders", p->orders);
    if (p->revenue.sum != 0 || p->revenue.comp != 0) {
        w_key(w, "revenue");
        w_open(w, '[');
        w_num(w, p->revenue.sum);
        w_num(w, p->revenue.comp);
        w_close(w, ']');
    }
    w_time_field(w, "last_order", p->last_order_ms);
}

static void w_shopping(writer *w, const bsp_profile *p) {
    w_cart(w, &p->cart);
    w_list_field(w, "recent", &p->recently_viewed);
    w_list_field(w, "purchased", &p->purchased);
    w_decay(w, "cat", &p->categories);
    w_decay(w, "brand", &p->brands);
    w_str_field(w, "search", p->last_search);
    w_str_field(w, "country", p->country);
    w_str_field(w, "device", profile_device_name(p->device));
}

bsp_err profile_to_json(const bsp_profile *p, bsp_buf *out) {
    writer w = {.out = out};
    w_open(&w, '{');
    w_identity(&w, p);
    w_activity(&w, p);
    w_shopping(&w, p);
    cJSON *extras = NULL;
    if (!w.rc) w.rc = extras_to_storage(p, &extras);
    if (extras) {
        w_key(&w, "x");
        w_json(&w, extras);
        cJSON_Delete(extras);
    }
    w_close(&w, '}');
    return w.rc;
}

/* --- reading the storage form -------------------------------------------- */

/* Reads fields of root into p; the first problem sets rc and later reads
 * are skipped. */
typedef struct reader {
    cJSON *root;
    bsp_profile *p;
    bsp_err rc;
} reader;

static bool is_int(const cJSON *v) {
    return cJSON_IsNumber(v) && v->valuedouble == trunc(v->valuedouble) &&
           fabs(v->valuedouble) <= JSON_SAFE_INT;
}

static bool is_finite_number(const cJSON *v) {
    return cJSON_IsNumber(v) && isfinite(v->valuedouble);
}

static const cJSON *r_get(reader *r, const char *key) {
    return r->rc ? NULL : json_member(r->root, key);
}

static void r_fail(reader *r) {
    if (!r->rc) r->rc = BSP_ETYPE;
}

static void r_int(reader *r, const char *key, int64_t *out) {
    const cJSON *v = r_get(r, key);
    if (!v) return;
    if (!is_int(v)) return r_fail(r);
    *out = (int64_t)v->valuedouble;
}

static void r_count(reader *r, const char *key, int64_t *out) {
    r_int(r, key, out);
    if (*out < 0) r_fail(r);
}

static void r_string(reader *r, const char *key, char **out) {
    const cJSON *v = r_get(r, key);
    if (!v) return;
    if (!cJSON_IsString(v)) return r_fail(r);
    if (!(*out = strdup(v->valuestring))) r->rc = BSP_ENOMEM;
}

static void r_pid(reader *r) {
    const char *s = json_get_string(r->root, "pid");
    char *end = NULL;
    if (!s || *s < '0' || *s > '9') return r_fail(r);
    r->p->pid = strtoull(s, &end, 10);
    if (*end) r_fail(r);
}

/* Appends each string of an array, without duplicates and up to max. */
static void r_strlist(reader *r, const char *key, strlist *l, size_t max) {
    const cJSON *arr = r_get(r, key), *it;
    if (!arr) return;
    if (!cJSON_IsArray(arr)) return r_fail(r);
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsString(it)) return r_fail(r);
        if (l->count >= max || strlist_find(l, it->valuestring) != SIZE_MAX) continue;
        if (strlist_insert(l, l->count, it->valuestring)) return (void)(r->rc = BSP_ENOMEM);
    }
}

/* Takes an object member out of the parsed tree instead of copying it. */
static void r_object(reader *r, const char *key, cJSON **out) {
    const cJSON *v = r_get(r, key);
    if (!v) return;
    if (!cJSON_IsObject(v)) return r_fail(r);
    *out = cJSON_DetachItemFromObjectCaseSensitive(r->root, key);
}

static void r_cart_line(reader *r, const cJSON *line) {
    const cJSON *id = cJSON_GetArrayItem(line, 0), *qty = cJSON_GetArrayItem(line, 1),
                *price = cJSON_GetArrayItem(line, 2);
    if (!cJSON_IsArray(line) || cJSON_GetArraySize(line) != 3 || !cJSON_IsString(id) ||
        !is_int(qty) || qty->valuedouble < 1 || !is_finite_number(price))
        return r_fail(r);
    size_t before = r->p->cart.count;
    cart_add(&r->p->cart, id->valuestring, (int64_t)qty->valuedouble, true, price->valuedouble);
    if (cart_find(&r->p->cart, id->valuestring) == SIZE_MAX)
        r->rc = BSP_ENOMEM;
    else if (r->p->cart.count == before)
        r_fail(r); /* duplicate product */
}

static void r_cart(reader *r) {
    const cJSON *arr = r_get(r, "cart"), *line;
    if (!arr) return;
    if (!cJSON_IsArray(arr)) return r_fail(r);
    cJSON_ArrayForEach(line, arr) {
        if (r->rc) return;
        r_cart_line(r, line);
    }
}

static void r_decay_entry(reader *r, decay_table *t, const cJSON *entry) {
    const cJSON *name = cJSON_GetArrayItem(entry, 0), *score = cJSON_GetArrayItem(entry, 1);
    if (!cJSON_IsArray(entry) || cJSON_GetArraySize(entry) != 2 || !cJSON_IsString(name) ||
        !is_finite_number(score))
        return r_fail(r);
    if (!decay_append(t, name->valuestring, score->valuedouble)) r->rc = BSP_ENOMEM;
}

static void r_decay(reader *r, const char *key, decay_table *t) {
    const cJSON *obj = r_get(r, key), *entry;
    if (!obj) return;
    const cJSON *ref = json_member(obj, "ref");
    const cJSON *entries = json_member(obj, "e");
    if (!cJSON_IsObject(obj) || !is_int(ref) || !cJSON_IsArray(entries)) return r_fail(r);
    t->ref_ms = (int64_t)ref->valuedouble;
    cJSON_ArrayForEach(entry, entries) {
        if (r->rc) return;
        r_decay_entry(r, t, entry);
    }
    if (t->count > PROFILE_DECAY_MAX) decay_trim(t);
}

static void r_device(reader *r) {
    const char *name = json_get_string(r->root, "device");
    if (!r_get(r, "device")) return;
    for (int d = PROFILE_DEVICE_MOBILE; d < PROFILE_DEVICE_COUNT; d++)
        if (name && strcmp(name, profile_device_name((profile_device)d)) == 0) {
            r->p->device = (profile_device)d;
            return;
        }
    r_fail(r);
}

static void r_revenue(reader *r) {
    const cJSON *v = r_get(r, "revenue");
    if (!v) return;
    const cJSON *sum = cJSON_GetArrayItem(v, 0), *comp = cJSON_GetArrayItem(v, 1);
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !is_finite_number(sum) ||
        !is_finite_number(comp))
        return r_fail(r);
    r->p->revenue = (money){.sum = sum->valuedouble, .comp = comp->valuedouble};
}

static void r_identity(reader *r) {
    bsp_profile *p = r->p;
    int64_t version = 0;
    r_int(r, "v", &version);
    if (version != STORAGE_VERSION) r_fail(r);
    r_pid(r);
    r_strlist(r, "uid", &p->user_ids, BSP_PROFILE_MAX_IDS);
    r_strlist(r, "aid", &p->anon_ids, BSP_PROFILE_MAX_IDS);
    r_object(r, "traits", &p->traits);
    r_object(r, "consent", &p->consent);
    r_int(r, "consent_ms", &p->consent_ms);
}

static void r_activity(reader *r) {
    bsp_profile *p = r->p;
    r_int(r, "first", &p->first_seen_ms);
    r_int(r, "last", &p->last_seen_ms);
    if ((p->first_seen_ms == PROFILE_TIME_UNSET) != (p->last_seen_ms == PROFILE_TIME_UNSET))
        r_fail(r);
    r_count(r, "seq", &p->applied_seq);
    r_count(r, "sessions", &p->sessions);
    r_count(r, "pages", &p->page_views);
    r_count(r, "views", &p->product_views);
    r_count(r, "adds", &p->add_to_carts);
    r_count(r, "orders", &p->orders);
    r_revenue(r);
    r_int(r, "last_order", &p->last_order_ms);
}

static void r_shopping(reader *r) {
    bsp_profile *p = r->p;
    r_cart(r);
    r_strlist(r, "recent", &p->recently_viewed, BSP_PROFILE_RECENT_MAX);
    r_strlist(r, "purchased", &p->purchased, PROFILE_PURCHASED_MAX);
    r_decay(r, "cat", &p->categories);
    r_decay(r, "brand", &p->brands);
    r_string(r, "search", &p->last_search);
    r_string(r, "country", &p->country);
    r_device(r);
}

bsp_err profile_from_json_tree(const char *json, size_t len, bsp_profile **out) {
    *out = NULL;
    bsp_error err;
    cJSON *root = json ? json_parse(json, len, BSP_JSON_MAX_DEPTH + 2, &err) : NULL;
    if (!root) return BSP_EPARSE;
    reader r = {.root = root, .p = profile_new(0), .rc = BSP_OK};
    if (!r.p) {
        cJSON_Delete(root);
        return BSP_ENOMEM;
    }
    if (!cJSON_IsObject(root)) r.rc = BSP_ETYPE;
    r_identity(&r);
    r_activity(&r);
    r_shopping(&r);
    const cJSON *extras = r.rc ? NULL : json_member(root, "x");
    if (extras) r.rc = extras_from_storage(r.p, extras);
    cJSON_Delete(root);
    if (r.rc) {
        profile_free(r.p);
        return r.rc;
    }
    *out = r.p;
    return BSP_OK;
}

/* The writer's own layout is scanned (scan.c); anything else, and whatever
 * the scanner declines, goes through the tree. */
bsp_err profile_from_json(const char *json, size_t len, bsp_profile **out) {
    if (profile_scan_json(json, len, out)) return BSP_OK;
    return profile_from_json_tree(json, len, out);
}

/* --- the public form ----------------------------------------------------- */

/* Builds an object member by member; the first failure is remembered and
 * every later item is freed instead of added. */
typedef struct builder {
    bool ok;
} builder;

static void b_add(builder *b, cJSON *obj, const char *key, cJSON *item) {
    if (b->ok && item && cJSON_AddItemToObject(obj, key, item)) return;
    b->ok = false;
    cJSON_Delete(item);
}

static double round_cents(double v) {
    double r = round(v * 100) / 100;
    return r == 0 ? 0 : r; /* no -0 */
}

static cJSON *string_or_null(const char *s) {
    return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static cJSON *time_or_null(int64_t ms) {
    if (ms == PROFILE_TIME_UNSET) return cJSON_CreateNull();
    char iso[40];
    bsp_time_format(ms, iso, sizeof iso);
    return cJSON_CreateString(iso);
}

static cJSON *string_array(const strlist *l) {
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < l->count; i++) {
        cJSON *item = cJSON_CreateString(l->items[i]);
        if (!item || !cJSON_AddItemToArray(arr, item)) {
            cJSON_Delete(item);
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

static cJSON *cart_json(const cart *c) {
    cJSON *arr = cJSON_CreateArray();
    builder b = {.ok = arr != NULL};
    for (size_t i = 0; b.ok && i < c->count; i++) {
        cJSON *line = cJSON_CreateObject();
        if (!line || !cJSON_AddItemToArray(arr, line)) {
            cJSON_Delete(line);
            b.ok = false;
            break;
        }
        b_add(&b, line, "product_id", cJSON_CreateString(c->lines[i].product_id));
        b_add(&b, line, "quantity", cJSON_CreateNumber((double)c->lines[i].quantity));
        b_add(&b, line, "price", cJSON_CreateNumber(c->lines[i].price));
    }
    if (!b.ok) cJSON_Delete(arr);
    return b.ok ? arr : NULL;
}

static void computed_activity(builder *b, cJSON *o, const bsp_profile *p) {
    b_add(b, o, "first_seen", time_or_null(p->first_seen_ms));
    b_add(b, o, "last_seen", time_or_null(p->last_seen_ms));
    b_add(b, o, "sessions", cJSON_CreateNumber((double)p->sessions));
    b_add(b, o, "page_views", cJSON_CreateNumber((double)p->page_views));
    b_add(b, o, "product_views", cJSON_CreateNumber((double)p->product_views));
    b_add(b, o, "add_to_carts", cJSON_CreateNumber((double)p->add_to_carts));
    b_add(b, o, "cart_items", cJSON_CreateNumber((double)profile_cart_items(p)));
    b_add(b, o, "cart_value", cJSON_CreateNumber(round_cents(profile_cart_value(p))));
    b_add(b, o, "cart", cart_json(&p->cart));
}

int64_t profile_orders(const bsp_profile *p) {
    return p->orders;
}

double profile_revenue(const bsp_profile *p) {
    return round_cents(money_value(&p->revenue));
}

static void computed_orders(builder *b, cJSON *o, const bsp_profile *p) {
    double revenue = money_value(&p->revenue);
    double aov = p->orders > 0 ? revenue / (double)p->orders : 0;
    b_add(b, o, "orders", cJSON_CreateNumber((double)p->orders));
    b_add(b, o, "revenue", cJSON_CreateNumber(round_cents(revenue)));
    b_add(b, o, "aov", cJSON_CreateNumber(round_cents(aov)));
    b_add(b, o, "last_order_at", time_or_null(p->last_order_ms));
}

static void computed_tastes(builder *b, cJSON *o, const bsp_profile *p) {
    b_add(b, o, "favorite_category", string_or_null(decay_top(&p->categories)));
    b_add(b, o, "favorite_brand", string_or_null(decay_top(&p->brands)));
    b_add(b, o, "recently_viewed", string_array(&p->recently_viewed));
    b_add(b, o, "purchased", string_array(&p->purchased));
    b_add(b, o, "last_search", string_or_null(p->last_search));
    b_add(b, o, "country", string_or_null(p->country));
    b_add(b, o, "device", string_or_null(profile_device_name(p->device)));
}

cJSON *profile_computed_json(const bsp_profile *p) {
    cJSON *o = cJSON_CreateObject();
    builder b = {.ok = o != NULL};
    computed_activity(&b, o, p);
    computed_orders(&b, o, p);
    computed_tastes(&b, o, p);
    if (b.ok && !extras_public_computed(p, o)) b.ok = false;
    if (b.ok) return o;
    cJSON_Delete(o);
    return NULL;
}

static cJSON *ids_json(const bsp_profile *p) {
    cJSON *o = cJSON_CreateObject();
    builder b = {.ok = o != NULL};
    b_add(&b, o, "userId", string_array(&p->user_ids));
    b_add(&b, o, "anonymousId", string_array(&p->anon_ids));
    if (b.ok) return o;
    cJSON_Delete(o);
    return NULL;
}

static cJSON *object_or_empty(const cJSON *obj) {
    return obj ? cJSON_Duplicate(obj, true) : cJSON_CreateObject();
}

static cJSON *consent_json(const bsp_profile *p) {
    cJSON *o = object_or_empty(p->consent);
    if (!o || !p->consent) return o;
    builder b = {.ok = true};
    cJSON_DeleteItemFromObjectCaseSensitive(o, "updated_at");
    b_add(&b, o, "updated_at", time_or_null(p->consent_ms));
    if (b.ok) return o;
    cJSON_Delete(o);
    return NULL;
}

cJSON *profile_public_json(const bsp_profile *p) {
    char pid[24];
    snprintf(pid, sizeof pid, "%" PRIu64, p->pid);
    cJSON *o = cJSON_CreateObject();
    builder b = {.ok = o != NULL};
    b_add(&b, o, "profile_id", cJSON_CreateString(pid));
    b_add(&b, o, "ids", ids_json(p));
    b_add(&b, o, "traits", object_or_empty(p->traits));
    b_add(&b, o, "computed", profile_computed_json(p));
    b_add(&b, o, "consent", consent_json(p));
    if (b.ok && !extras_public(p, o)) b.ok = false;
    if (b.ok) return o;
    cJSON_Delete(o);
    return NULL;
}
