/* request.c - the bodies of POST /v1/recommendations and POST /v1/rank,
 * parsed into a reco_request with every limit checked (body size, nesting,
 * id lengths, list lengths, number ranges). Pure (no store, no server), so
 * that the HTTP layer and the fuzzer (tests/fuzz/fuzz_reco.c) share it. */
#include "reco/reco_internal.h"

#include <stdlib.h>
#include <string.h>

#include "json/json.h"

#define DEFAULT_N 10

static bsp_err string_list(const cJSON *arr, const char *at, const char **out, size_t max,
                           size_t *count, bsp_error *err) {
    *count = 0;
    if (!arr || cJSON_IsNull(arr)) return BSP_OK;
    if (!cJSON_IsArray(arr)) return bsp_error_set(err, BSP_ETYPE, at, "%s must be an array", at);
    if ((size_t)cJSON_GetArraySize(arr) > max)
        return bsp_error_set(err, BSP_ETOOBIG, at, "%s has more than %zu entries", at, max);
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        if (!cJSON_IsString(e) || !e->valuestring[0])
            return bsp_error_set(err, BSP_ETYPE, at, "%s must hold non-empty strings", at);
        if (strlen(e->valuestring) > RECO_ID_MAX_BYTES)
            return bsp_error_set(err, BSP_ETOOBIG, at, "%s holds a string over %d bytes", at,
                                 RECO_ID_MAX_BYTES);
        out[(*count)++] = e->valuestring;
    }
    return BSP_OK;
}

static bsp_err opt_bool(const cJSON *obj, const char *key, bool *out, bsp_error *err) {
    const cJSON *v = json_member(obj, key);
    if (!v || cJSON_IsNull(v)) return BSP_OK;
    if (!cJSON_IsBool(v))
        return bsp_error_set(err, BSP_ETYPE, key, "filters.%s must be true or false", key);
    *out = cJSON_IsTrue(v);
    return BSP_OK;
}

static bsp_err opt_number(const cJSON *obj, const char *key, double lo, double hi, double *out,
                          bsp_error *err) {
    const cJSON *v = json_member(obj, key);
    if (!v || cJSON_IsNull(v)) return BSP_OK;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
        return bsp_error_set(err, BSP_ETYPE, key, "%s must be a number from %g to %g", key, lo, hi);
    *out = v->valuedouble;
    return BSP_OK;
}

/* An optional string member of at most RECO_ID_MAX_BYTES. */
static bsp_err opt_id(const cJSON *obj, const char *key, const char **out, bsp_error *err) {
    const cJSON *v = json_member(obj, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return BSP_OK;
    if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) > RECO_ID_MAX_BYTES)
        return bsp_error_set(err, BSP_ETYPE, key, "%s must be a string of 1 to %d bytes", key,
                             RECO_ID_MAX_BYTES);
    *out = v->valuestring;
    return BSP_OK;
}

/* boost / bury: [{"attribute", "value", "factor"}]; bury's factor is < 1. */
static bsp_err parse_boosts(reco_body *b, const cJSON *arr, bool bury, bsp_error *err) {
    const char *at = bury ? "filters.bury" : "filters.boost";
    if (!arr || cJSON_IsNull(arr)) return BSP_OK;
    if (!cJSON_IsArray(arr)) return bsp_error_set(err, BSP_ETYPE, at, "%s must be an array", at);
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        reco_filters *f = &b->req.filters;
        if (f->boost_count == RECO_FILTER_LIST_MAX)
            return bsp_error_set(err, BSP_ETOOBIG, at, "at most %d boosts and buries",
                                 RECO_FILTER_LIST_MAX);
        const char *attr = json_get_string(e, "attribute"), *value = json_get_string(e, "value");
        double factor = bury ? 0.5 : 2.0;
        if (!attr || !value || opt_number(e, "factor", 0, 1000, &factor, err) != BSP_OK)
            return bsp_error_set(err, BSP_ETYPE, at,
                                 "%s entries are {\"attribute\", \"value\", \"factor\"}", at);
        if (bury && factor > 1) factor = 1 / factor;
        b->boosts[f->boost_count++] = (reco_boost){attr, value, factor};
    }
    return BSP_OK;
}

static bsp_err parse_filters(reco_body *b, const cJSON *f, bsp_error *err) {
    reco_filters *rf = &b->req.filters;
    if (!f || cJSON_IsNull(f)) return BSP_OK;
    if (!cJSON_IsObject(f)) return bsp_error_set(err, BSP_ETYPE, "filters", "must be an object");
    double max_cat = 0;
    bsp_err rc = opt_bool(f, "in_stock", &rf->in_stock, err);
    if (!rc) rc = opt_bool(f, "exclude_purchased", &rf->exclude_purchased, err);
    if (!rc) rc = opt_bool(f, "exclude_cart", &rf->exclude_cart, err);
    if (!rc) rc = opt_bool(f, "match_affinity", &rf->match_affinity, err);
    if (!rc) rc = opt_number(f, "price_min", 0, 1e12, &rf->price_min, err);
    if (!rc) rc = opt_number(f, "price_max", 0, 1e12, &rf->price_max, err);
    if (!rc) rc = opt_number(f, "max_per_category", 0, RECO_MAX_N, &max_cat, err);
    if (!rc)
        rc = string_list(json_member(f, "categories"), "filters.categories", b->categories,
                         RECO_FILTER_LIST_MAX, &rf->category_count, err);
    if (!rc)
        rc = string_list(json_member(f, "exclude"), "filters.exclude", b->exclude,
                         RECO_FILTER_LIST_MAX, &rf->exclude_count, err);
    if (!rc) rc = parse_boosts(b, json_member(f, "boost"), false, err);
    if (!rc) rc = parse_boosts(b, json_member(f, "bury"), true, err);
    rf->max_per_category = (size_t)max_cat;
    return rc;
}

static bsp_err parse_recommend(reco_body *b, bsp_error *err) {
    const char *strategy = json_get_string(b->json, "strategy");
    b->req.strategy = RECO_PERSONALIZED;
    if (strategy && !reco_strategy_parse(strategy, &b->req.strategy))
        return bsp_error_set(err, BSP_ETYPE, "strategy", "unknown strategy '%.64s'", strategy);
    b->bundle = b->req.strategy == RECO_BUNDLE;
    double n = DEFAULT_N;
    bsp_err rc = opt_number(b->json, "n", 1, RECO_MAX_N, &n, err);
    b->req.n = (size_t)n;
    if (!rc) rc = opt_id(b->json, "segment", &b->segment, err);
    if (!rc && b->segment && b->req.strategy != RECO_POPULAR)
        rc = bsp_error_set(err, BSP_EINVAL, "segment", "segment goes with strategy \"popular\"");
    if (!rc)
        rc = string_list(json_member(b->json, "items"), "items", b->items, RECO_ITEMS_IN_MAX,
                         &b->req.item_count, err);
    if (!rc && b->bundle && b->req.item_count == 0)
        rc = bsp_error_set(err, BSP_EINVAL, "items", "a bundle needs its anchor in items");
    if (!rc) rc = parse_filters(b, json_member(b->json, "filters"), err);
    return rc;
}

/* userId, anonymousId (other types are ignored, as before), writeKey. */
static bsp_err parse_ids(reco_body *b, bsp_error *err) {
    b->user_id = json_get_string(b->json, "userId");
    b->anonymous_id = json_get_string(b->json, "anonymousId");
    b->write_key = json_get_string(b->json, "writeKey");
    if (b->user_id && strlen(b->user_id) > RECO_ID_MAX_BYTES)
        return bsp_error_set(err, BSP_ETOOBIG, "userId", "userId over %d bytes", RECO_ID_MAX_BYTES);
    if (b->anonymous_id && strlen(b->anonymous_id) > RECO_ID_MAX_BYTES)
        return bsp_error_set(err, BSP_ETOOBIG, "anonymousId", "anonymousId over %d bytes",
                             RECO_ID_MAX_BYTES);
    return BSP_OK;
}

bsp_err reco_body_parse(const char *text, size_t len, bool rank, reco_body *b, bsp_error *err) {
    memset(b, 0, sizeof *b);
    bsp_error_clear(err);
    if (len > RECO_BODY_MAX_BYTES)
        return bsp_error_set(err, BSP_ETOOBIG, "", "body larger than %d bytes",
                             RECO_BODY_MAX_BYTES);
    b->json = json_parse(text ? text : "", len, BSP_JSON_MAX_DEPTH, err);
    if (!b->json) return err->code;
    if (!cJSON_IsObject(b->json)) {
        cJSON_Delete(b->json);
        b->json = NULL;
        return bsp_error_set(err, BSP_EINVAL, "", "the body must be a JSON object");
    }
    reco_filters_init(&b->req.filters);
    b->req.filters.categories = b->categories;
    b->req.filters.exclude_ids = b->exclude;
    b->req.filters.boosts = b->boosts;
    b->req.items = b->items;
    b->req.n = DEFAULT_N;
    bsp_err rc = parse_ids(b, err);
    if (rc) return rc;
    if (!rank) return parse_recommend(b, err);
    return string_list(json_member(b->json, "items"), "items", b->items, RECO_RANK_MAX,
                       &b->req.item_count, err);
}

void reco_body_free(reco_body *b) {
    cJSON_Delete(b->json);
    b->json = NULL;
}
