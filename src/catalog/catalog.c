/* catalog.c - products: validation of what the shop sends to the admin API
 * (catalog_product_from_json), learning product facts from the properties
 * of Segment E-commerce events (catalog_learn_from_event), and merging the
 * two (catalog_merge_learnt).
 *
 * Both paths produce the same normalized product object (see catalog.h), so
 * the store, recommendations and decisions read one shape. A product learnt
 * from events carries "source":"events"; one sent by the shop has no source
 * and its values win over learnt ones. */
#include "catalog/catalog.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json/json.h"

/* Learnt string values longer than this are dropped: events are sent by
 * browsers, and one long name should not push a product over its limit. */
#define LEARNT_STRING_MAX 1024

/* ---- shared value helpers ------------------------------------------------ */

static bool valid_price(const cJSON *v) {
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= 0;
}

/* Three ASCII letters, uppercased into out (4 bytes). */
static bool currency_code(const cJSON *v, char out[4]) {
    if (!cJSON_IsString(v) || strlen(v->valuestring) != 3) return false;
    for (int i = 0; i < 3; i++) {
        unsigned char c = (unsigned char)v->valuestring[i];
        if (!isascii(c) || !isalpha(c)) return false;
        out[i] = (char)toupper(c);
    }
    out[3] = '\0';
    return true;
}

/* Joins an array of strings with " > ". Returns the index of the first
 * element that is not a string in *bad (and NULL), or a malloc'd string. */
static char *join_category(const cJSON *arr, int *bad) {
    bsp_buf buf = {0};
    int i = 0;
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        if (!cJSON_IsString(it)) {
            *bad = i;
            bsp_buf_free(&buf);
            return NULL;
        }
        if ((i > 0 && bsp_buf_puts(&buf, " > ")) || bsp_buf_puts(&buf, it->valuestring)) {
            *bad = -1;
            bsp_buf_free(&buf);
            return NULL;
        }
    }
    if (!buf.data && bsp_buf_puts(&buf, "")) {
        *bad = -1;
        return NULL;
    }
    return buf.data;
}

/* Adds item (owned) as obj[key]; on failure item is freed. */
static bool add_owned(cJSON *obj, const char *key, cJSON *item) {
    if (item && cJSON_AddItemToObject(obj, key, item)) return true;
    cJSON_Delete(item);
    return false;
}

static bool add_string(cJSON *obj, const char *key, const char *value) {
    return cJSON_AddStringToObject(obj, key, value) != NULL;
}

static bool add_iso_time(cJSON *obj, const char *key, int64_t ms) {
    char iso[40];
    bsp_time_format(ms, iso, sizeof iso);
    return add_string(obj, key, iso);
}

/* ---- products sent by the shop ------------------------------------------- */

static bsp_err type_error(bsp_error *err, const char *at, const char *message) {
    return bsp_error_set(err, BSP_ETYPE, at, "%s", message);
}

static bsp_err check_product_id(const char *id, const char *where, bsp_error *err) {
    if (!id[0]) return bsp_error_set(err, BSP_ETYPE, "id", "%s id is empty", where);
    if (strlen(id) > BSP_PRODUCT_ID_MAX)
        return bsp_error_set(err, BSP_ETYPE, "id", "%s id is longer than %d bytes", where,
                             BSP_PRODUCT_ID_MAX);
    return BSP_OK;
}

/* The product id: the body's, the URL's, or both when they agree. */
static bsp_err product_id(const cJSON *body, const char *id_from_path, const char **id,
                          bsp_error *err) {
    const cJSON *v = json_member(body, "id");
    if (id_from_path && check_product_id(id_from_path, "the URL's", err)) return err->code;
    if (!v || cJSON_IsNull(v)) {
        if (!id_from_path) return type_error(err, "id", "id is required");
        *id = id_from_path;
        return BSP_OK;
    }
    if (!cJSON_IsString(v)) return type_error(err, "id", "id must be a string");
    if (check_product_id(v->valuestring, "the", err)) return err->code;
    if (id_from_path && strcmp(id_from_path, v->valuestring) != 0)
        return type_error(err, "id", "id differs from the id in the URL");
    *id = v->valuestring;
    return BSP_OK;
}

static bsp_err put_category(cJSON *out, const cJSON *v, bsp_error *err) {
    if (cJSON_IsString(v)) return add_string(out, "category", v->valuestring) ? BSP_OK : BSP_ENOMEM;
    if (!cJSON_IsArray(v))
        return type_error(err, "category", "category must be a string or an array of strings");
    int bad = -1;
    char *joined = join_category(v, &bad);
    if (!joined) {
        if (bad < 0) return BSP_ENOMEM;
        char at[32];
        snprintf(at, sizeof at, "category[%d]", bad);
        return type_error(err, at, "category elements must be strings");
    }
    bool ok = add_string(out, "category", joined);
    free(joined);
    return ok ? BSP_OK : BSP_ENOMEM;
}

static bsp_err put_tags(cJSON *out, const cJSON *v, bsp_error *err) {
    if (!cJSON_IsArray(v)) return type_error(err, "tags", "tags must be an array of strings");
    int i = 0;
    for (const cJSON *it = v->child; it; it = it->next, i++) {
        if (cJSON_IsString(it)) continue;
        char at[32];
        snprintf(at, sizeof at, "tags[%d]", i);
        return type_error(err, at, "tags must be strings");
    }
    return add_owned(out, "tags", cJSON_Duplicate(v, true)) ? BSP_OK : BSP_ENOMEM;
}

static bsp_err put_price(cJSON *out, const cJSON *v, bsp_error *err) {
    if (!valid_price(v)) return type_error(err, "price", "price must be a number >= 0");
    return cJSON_AddNumberToObject(out, "price", v->valuedouble) ? BSP_OK : BSP_ENOMEM;
}

static bsp_err put_currency(cJSON *out, const cJSON *v, bsp_error *err) {
    char code[4];
    if (!currency_code(v, code))
        return type_error(err, "currency", "currency must be a 3-letter code such as \"EUR\"");
    return add_string(out, "currency", code) ? BSP_OK : BSP_ENOMEM;
}

static bsp_err put_in_stock(cJSON *out, const cJSON *v, bsp_error *err) {
    if (!cJSON_IsBool(v)) return type_error(err, "in_stock", "in_stock must be true or false");
    return cJSON_AddBoolToObject(out, "in_stock", cJSON_IsTrue(v)) ? BSP_OK : BSP_ENOMEM;
}

static bsp_err put_plain_string(cJSON *out, const cJSON *v, bsp_error *err) {
    if (!cJSON_IsString(v)) {
        char message[64];
        snprintf(message, sizeof message, "%s must be a string", v->string);
        return type_error(err, v->string, message);
    }
    return add_string(out, v->string, v->valuestring) ? BSP_OK : BSP_ENOMEM;
}

static bsp_err put_attributes(cJSON *out, const cJSON *v, bsp_error *err) {
    if (!cJSON_IsObject(v)) return type_error(err, "attributes", "attributes must be an object");
    return add_owned(out, "attributes", cJSON_Duplicate(v, true)) ? BSP_OK : BSP_ENOMEM;
}

typedef bsp_err (*put_fn)(cJSON *out, const cJSON *v, bsp_error *err);

static const struct {
    const char *key;
    put_fn put; /* NULL: handled elsewhere (id) or set by Bespoke (updated_at) */
} known_fields[] = {
    {"id", NULL},
    {"updated_at", NULL},
    {"name", put_plain_string},
    {"brand", put_plain_string},
    {"url", put_plain_string},
    {"image", put_plain_string},
    {"category", put_category},
    {"price", put_price},
    {"currency", put_currency},
    {"in_stock", put_in_stock},
    {"tags", put_tags},
    {"attributes", put_attributes},
};

/* The known field named key, or -1. */
static int known_field(const char *key) {
    for (size_t i = 0; i < sizeof known_fields / sizeof known_fields[0]; i++)
        if (strcmp(key, known_fields[i].key) == 0) return (int)i;
    return -1;
}

/* Unknown top-level fields go under attributes; explicit attributes win. */
static bsp_err put_unknown(cJSON *out, const cJSON *v) {
    cJSON *attrs = json_member(out, "attributes");
    if (!attrs) {
        attrs = cJSON_AddObjectToObject(out, "attributes");
        if (!attrs) return BSP_ENOMEM;
    }
    if (json_member(attrs, v->string)) return BSP_OK;
    return add_owned(attrs, v->string, cJSON_Duplicate(v, true)) ? BSP_OK : BSP_ENOMEM;
}

/* Known fields first (so explicit attributes exist before unknown ones
 * join them), each once: a repeated key keeps its first value. */
static bsp_err put_fields(cJSON *out, const cJSON *body, bool known, bsp_error *err) {
    for (const cJSON *it = body->child; it; it = it->next) {
        if (!it->string || cJSON_IsNull(it)) continue;
        int k = known_field(it->string);
        if ((k >= 0) != known || (k >= 0 && !known_fields[k].put)) continue;
        if (k >= 0 && json_member(out, it->string)) continue;
        bsp_err rc = k >= 0 ? known_fields[k].put(out, it, err) : put_unknown(out, it);
        if (rc == BSP_ENOMEM) return bsp_error_set(err, BSP_ENOMEM, "", "out of memory");
        if (rc) return rc;
    }
    return BSP_OK;
}

static bsp_err check_product_size(const cJSON *product, bsp_error *err) {
    char *text = cJSON_PrintUnformatted(product);
    if (!text) return bsp_error_set(err, BSP_ENOMEM, "", "out of memory");
    size_t len = strlen(text);
    cJSON_free(text);
    if (len > BSP_PRODUCT_MAX_BYTES)
        return bsp_error_set(err, BSP_ETOOBIG, "", "product is %zu bytes, over the limit of %d",
                             len, BSP_PRODUCT_MAX_BYTES);
    return BSP_OK;
}

bsp_err catalog_product_from_json(const cJSON *body, const char *id_from_path, int64_t now_ms,
                                  cJSON **out, bsp_error *err) {
    bsp_error scratch;
    if (!err) err = &scratch;
    *out = NULL;
    if (!cJSON_IsObject(body))
        return bsp_error_set(err, BSP_EINVAL, "", "a product must be a JSON object");
    const char *id = NULL;
    if (product_id(body, id_from_path, &id, err)) return err->code;
    cJSON *p = cJSON_CreateObject();
    if (!p || !add_string(p, "id", id)) {
        cJSON_Delete(p);
        return bsp_error_set(err, BSP_ENOMEM, "", "out of memory");
    }
    bsp_err rc = put_fields(p, body, true, err);
    if (!rc) rc = put_fields(p, body, false, err);
    if (!rc && !add_iso_time(p, "updated_at", now_ms))
        rc = bsp_error_set(err, BSP_ENOMEM, "", "out of memory");
    if (!rc) rc = check_product_size(p, err);
    if (rc) {
        cJSON_Delete(p);
        return rc;
    }
    *out = p;
    return BSP_OK;
}

/* ---- products learnt from events ----------------------------------------- */

static const char *const single_product_events[] = {
    "Product Viewed",  "Product Clicked",           "Product Added",
    "Product Removed", "Product Added to Wishlist",
};

static const char *const product_list_events[] = {
    "Order Completed", "Order Updated",  "Checkout Started",
    "Cart Viewed",     "Order Refunded", "Order Cancelled",
};

static bool name_in(const char *name, const char *const *names, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(name, names[i]) == 0) return true;
    return false;
}

/* A learnt string: a non-empty string no longer than LEARNT_STRING_MAX. */
static const char *learnt_string(const cJSON *props, const char *key) {
    const char *s = json_get_string(props, key);
    if (!s || !s[0] || strlen(s) > LEARNT_STRING_MAX) return NULL;
    return s;
}

/* The product id as text into out: product_id, else id, else sku; strings
 * or numbers (SDKs often send numeric ids). */
static bool learnt_id(const cJSON *props, char *out, size_t cap) {
    static const char *const keys[] = {"product_id", "id", "sku"};
    for (size_t i = 0; i < 3; i++) {
        const cJSON *v = json_member(props, keys[i]);
        if (cJSON_IsString(v) && v->valuestring[0]) {
            if (strlen(v->valuestring) > BSP_PRODUCT_ID_MAX) return false;
            snprintf(out, cap, "%s", v->valuestring);
            return true;
        }
        if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
            double d = v->valuedouble;
            if (fabs(d) < 9007199254740992.0 && d == floor(d))
                snprintf(out, cap, "%.0f", d);
            else
                snprintf(out, cap, "%.17g", d);
            return true;
        }
    }
    return false;
}

/* A price as a number, or as a numeric string ("19.99"), >= 0. */
static bool learnt_price(const cJSON *props, double *price) {
    const cJSON *v = json_member(props, "price");
    if (valid_price(v)) {
        *price = v->valuedouble;
        return true;
    }
    if (!cJSON_IsString(v) || !v->valuestring[0]) return false;
    char *end;
    double d = strtod(v->valuestring, &end);
    if (*end || !isfinite(d) || d < 0) return false;
    *price = d;
    return true;
}

static bool learnt_category(const cJSON *props, cJSON *out) {
    const cJSON *v = json_member(props, "category");
    if (cJSON_IsArray(v)) {
        int bad = -1;
        char *joined = join_category(v, &bad);
        if (!joined) return bad >= 0; /* a non-string element: skip the field */
        bool ok =
            !joined[0] || strlen(joined) > LEARNT_STRING_MAX || add_string(out, "category", joined);
        free(joined);
        return ok;
    }
    const char *s = learnt_string(props, "category");
    return !s || add_string(out, "category", s);
}

static bool learnt_strings(const cJSON *props, cJSON *out) {
    static const struct {
        const char *from, *to;
    } map[] = {{"name", "name"}, {"brand", "brand"}, {"url", "url"}, {"image_url", "image"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        const char *s = learnt_string(props, map[i].from);
        if (s && !add_string(out, map[i].to, s)) return false;
    }
    return true;
}

/* One product from an object of product properties; NULL when it names no
 * product (or memory runs out). order_currency applies when the product has
 * none of its own. */
static cJSON *learn_product(const cJSON *props, const char *order_currency, int64_t ts_ms) {
    char id[BSP_PRODUCT_ID_MAX + 1];
    if (!cJSON_IsObject(props) || !learnt_id(props, id, sizeof id)) return NULL;
    cJSON *p = cJSON_CreateObject();
    bool ok = p && add_string(p, "id", id) && learnt_strings(props, p) && learnt_category(props, p);
    double price;
    if (ok && learnt_price(props, &price)) ok = cJSON_AddNumberToObject(p, "price", price) != NULL;
    char code[4];
    const cJSON *own_currency = json_member(props, "currency");
    const char *currency = currency_code(own_currency, code) ? code : order_currency;
    if (ok && currency) ok = add_string(p, "currency", currency);
    ok = ok && add_string(p, "source", "events") && add_iso_time(p, "updated_at", ts_ms);
    if (!ok) {
        cJSON_Delete(p);
        return NULL;
    }
    return p;
}

static void learn_one(const cJSON *props, const char *order_currency, int64_t ts_ms,
                      catalog_learn_fn fn, void *ctx) {
    cJSON *p = learn_product(props, order_currency, ts_ms);
    if (p) fn(ctx, p);
}

void catalog_learn_from_event(const bsp_event *ev, catalog_learn_fn fn, void *ctx) {
    if (!ev || !fn || ev->type != BSP_EV_TRACK || !ev->name || !ev->json) return;
    const cJSON *props = ev->properties;
    if (!props) return;
    size_t n_single = sizeof single_product_events / sizeof single_product_events[0];
    size_t n_list = sizeof product_list_events / sizeof product_list_events[0];
    if (name_in(ev->name, single_product_events, n_single)) {
        learn_one(props, NULL, ev->ts_ms, fn, ctx);
        return;
    }
    if (!name_in(ev->name, product_list_events, n_list)) return;
    char code[4];
    const char *order_currency = currency_code(json_member(props, "currency"), code) ? code : NULL;
    const cJSON *products = json_get_array(props, "products");
    for (const cJSON *it = products ? products->child : NULL; it; it = it->next)
        learn_one(it, order_currency, ev->ts_ms, fn, ctx);
}

/* The members of a product's properties that learn_product reads, and the
 * order's own currency: catalog_event_facts hashes exactly these, so two
 * events with equal hashes teach the catalog the same facts. A field
 * learn_product comes to read must be added here. */
static const char *const learnt_inputs[] = {"product_id", "id",      "sku",       "name",
                                            "brand",      "url",     "image_url", "category",
                                            "price",      "currency"};

/* What learn_product reads of one product's properties, hashed member by
 * member (an absent member hashes as 0, which no present value gives). */
static uint64_t product_facts(const cJSON *props, uint64_t h) {
    if (!cJSON_IsObject(props)) return json_hash_mix(h, 1);
    for (size_t i = 0; i < sizeof learnt_inputs / sizeof learnt_inputs[0]; i++)
        h = json_hash_mix(h, json_hash(json_member(props, learnt_inputs[i])));
    return json_hash_mix(h, 2);
}

uint64_t catalog_event_facts(const bsp_event *ev) {
    if (!ev || ev->type != BSP_EV_TRACK || !ev->name || !ev->json) return 0;
    const cJSON *props = ev->properties;
    if (!props) return 0;
    size_t n_single = sizeof single_product_events / sizeof single_product_events[0];
    size_t n_list = sizeof product_list_events / sizeof product_list_events[0];
    uint64_t h = 0x6a09e667f3bcc908ull;
    if (name_in(ev->name, single_product_events, n_single)) return product_facts(props, h) | 1;
    if (!name_in(ev->name, product_list_events, n_list)) return 0;
    h = json_hash_mix(h, json_hash(json_member(props, "currency")));
    const cJSON *products = json_get_array(props, "products");
    uint64_t n = 0;
    for (const cJSON *it = products ? products->child : NULL; it; it = it->next, n++)
        h = product_facts(it, h);
    return json_hash_mix(h, n) | 1;
}

/* ---- merging learnt facts into stored products --------------------------- */

static bool from_events_only(const cJSON *product) {
    const char *source = json_get_string(product, "source");
    return source && strcmp(source, "events") == 0;
}

/* Sets dst[key] to a copy of v; false on ENOMEM. */
static bool set_copy(cJSON *dst, const cJSON *v) {
    cJSON *copy = cJSON_Duplicate(v, true);
    if (!copy) return false;
    json_set(dst, v->string, copy);
    return true;
}

/* Learnt values fill what the stored product lacks; with overwrite they
 * replace it too. "source" and "updated_at" are handled by the caller. */
static bool apply_learnt(cJSON *dst, const cJSON *learnt, bool overwrite, bool *changed) {
    for (const cJSON *it = learnt->child; it; it = it->next) {
        if (!it->string || strcmp(it->string, "source") == 0 ||
            strcmp(it->string, "updated_at") == 0)
            continue;
        if (!overwrite && json_member(dst, it->string)) continue;
        if (!set_copy(dst, it)) return false;
        *changed = true;
    }
    return true;
}

cJSON *catalog_merge_learnt(const cJSON *stored, const cJSON *learnt) {
    if (!stored) return learnt ? cJSON_Duplicate(learnt, true) : NULL;
    cJSON *merged = cJSON_Duplicate(stored, true);
    if (!merged || !learnt) return merged;
    bool changed = false;
    if (!apply_learnt(merged, learnt, from_events_only(stored), &changed)) {
        cJSON_Delete(merged);
        return NULL;
    }
    const cJSON *learnt_at = json_member(learnt, "updated_at");
    if (changed && cJSON_IsString(learnt_at) && !set_copy(merged, learnt_at)) {
        cJSON_Delete(merged);
        return NULL;
    }
    return merged;
}
