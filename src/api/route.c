/* route.c - the route table: which path is which endpoint, which methods
 * each accepts, and the template label that /metrics counts it under. Paths
 * are matched before percent-decoding so that an id may contain "%2F". */
#include "api/api_internal.h"

#include <stdio.h>
#include <string.h>

typedef struct route_info {
    const char *label;
    unsigned methods;
} route_info;

#define GET_HEAD (METHOD_GET | METHOD_HEAD)

static const route_info route_table[ROUTE_COUNT] = {
    [ROUTE_OTHER] = {"other", 0},
    [ROUTE_HEALTHZ] = {"/healthz", GET_HEAD},
    [ROUTE_METRICS] = {"/metrics", GET_HEAD},
    [ROUTE_TRACK] = {"/v1/track", METHOD_POST},
    [ROUTE_IDENTIFY] = {"/v1/identify", METHOD_POST},
    [ROUTE_PAGE] = {"/v1/page", METHOD_POST},
    [ROUTE_SCREEN] = {"/v1/screen", METHOD_POST},
    [ROUTE_GROUP] = {"/v1/group", METHOD_POST},
    [ROUTE_ALIAS] = {"/v1/alias", METHOD_POST},
    [ROUTE_BATCH] = {"/v1/batch", METHOD_POST},
    [ROUTE_BEACON_BATCH] = {"/beacon/v1/batch", METHOD_POST},
    [ROUTE_DECIDE] = {"/v1/decide", METHOD_POST},
    [ROUTE_EVENTS] = {"/v1/events", METHOD_POST},
    [ROUTE_RECOMMENDATIONS] = {"/v1/recommendations", METHOD_POST},
    [ROUTE_RANK] = {"/v1/rank", METHOD_POST},
    [ROUTE_ADMIN_PROFILE] = {"/v1/admin/profiles/{id}", GET_HEAD | METHOD_DELETE},
    [ROUTE_ADMIN_PROFILE_EVENTS] = {"/v1/admin/profiles/{id}/events", GET_HEAD},
    [ROUTE_ADMIN_PROFILE_EXPORT] = {"/v1/admin/profiles/{id}/export", GET_HEAD},
    [ROUTE_ADMIN_STATS] = {"/v1/admin/stats", GET_HEAD},
    [ROUTE_ADMIN_SEGMENTS] = {"/v1/admin/segments", GET_HEAD | METHOD_POST},
    [ROUTE_ADMIN_SEGMENTS_PREVIEW] = {"/v1/admin/segments/preview", METHOD_POST},
    [ROUTE_ADMIN_SEGMENT] = {"/v1/admin/segments/{id}", GET_HEAD | METHOD_PUT | METHOD_DELETE},
    [ROUTE_ADMIN_SEGMENT_MEMBERS] = {"/v1/admin/segments/{id}/members", GET_HEAD},
    [ROUTE_ADMIN_SEGMENT_LOOKALIKE] = {"/v1/admin/segments/{id}/lookalike", GET_HEAD | METHOD_POST},
    [ROUTE_ADMIN_CAMPAIGNS] = {"/v1/admin/campaigns", GET_HEAD | METHOD_POST},
    [ROUTE_ADMIN_CAMPAIGN] = {"/v1/admin/campaigns/{id}", GET_HEAD | METHOD_PUT | METHOD_DELETE},
    [ROUTE_ADMIN_PLACEMENTS] = {"/v1/admin/placements", GET_HEAD | METHOD_POST},
    [ROUTE_ADMIN_PLACEMENT] = {"/v1/admin/placements/{id}", GET_HEAD | METHOD_PUT | METHOD_DELETE},
    [ROUTE_ADMIN_PRODUCTS] = {"/v1/admin/products", GET_HEAD | METHOD_POST},
    [ROUTE_ADMIN_PRODUCT] = {"/v1/admin/products/{id}", GET_HEAD | METHOD_PUT | METHOD_DELETE},
    [ROUTE_CATALOG_PRODUCTS] = {"/v1/catalog/products", GET_HEAD},
    [ROUTE_CATALOG_PRODUCT] = {"/v1/catalog/products/{id}", GET_HEAD},
    [ROUTE_CATALOG_CATEGORIES] = {"/v1/catalog/categories", GET_HEAD},
    [ROUTE_STATIC] = {"static", GET_HEAD},
};

static const struct {
    const char *path;
    api_route route;
} exact_paths[] = {
    {"/v1/track", ROUTE_TRACK},
    {"/v1/t", ROUTE_TRACK},
    {"/v1/identify", ROUTE_IDENTIFY},
    {"/v1/i", ROUTE_IDENTIFY},
    {"/v1/page", ROUTE_PAGE},
    {"/v1/p", ROUTE_PAGE},
    {"/v1/screen", ROUTE_SCREEN},
    {"/v1/s", ROUTE_SCREEN},
    {"/v1/group", ROUTE_GROUP},
    {"/v1/g", ROUTE_GROUP},
    {"/v1/alias", ROUTE_ALIAS},
    {"/v1/a", ROUTE_ALIAS},
    {"/v1/batch", ROUTE_BATCH},
    {"/v1/b", ROUTE_BATCH},
    {"/beacon/v1/batch", ROUTE_BEACON_BATCH},
    {"/healthz", ROUTE_HEALTHZ},
    {"/metrics", ROUTE_METRICS},
    {"/v1/admin/stats", ROUTE_ADMIN_STATS},
    {"/v1/admin/products", ROUTE_ADMIN_PRODUCTS},
    {"/v1/admin/segments", ROUTE_ADMIN_SEGMENTS},
    {"/v1/admin/segments/preview", ROUTE_ADMIN_SEGMENTS_PREVIEW},
    {"/v1/catalog/products", ROUTE_CATALOG_PRODUCTS},
    {"/v1/catalog/categories", ROUTE_CATALOG_CATEGORIES},
    {"/v1/decide", ROUTE_DECIDE},
    {"/v1/events", ROUTE_EVENTS},
    {"/v1/recommendations", ROUTE_RECOMMENDATIONS},
    {"/v1/rank", ROUTE_RANK},
    {"/v1/admin/campaigns", ROUTE_ADMIN_CAMPAIGNS},
    {"/v1/admin/placements", ROUTE_ADMIN_PLACEMENTS},
};

unsigned api_method_parse(const char *method) {
    static const struct {
        const char *name;
        unsigned bit;
    } methods[] = {{"GET", METHOD_GET},   {"POST", METHOD_POST}, {"OPTIONS", METHOD_OPTIONS},
                   {"HEAD", METHOD_HEAD}, {"PUT", METHOD_PUT},   {"DELETE", METHOD_DELETE}};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(method, methods[i].name) == 0) return methods[i].bit;
    return METHOD_OTHER;
}

static bool ends_with(const char *s, size_t len, const char *suffix) {
    size_t n = strlen(suffix);
    return len > n && memcmp(s + len - n, suffix, n) == 0;
}

/* "/v1/admin/profiles/<id>[/events|/export]" */
static api_route match_profile(const char *rest, const char **id_raw, size_t *id_len) {
    size_t len = strlen(rest);
    api_route r = ROUTE_ADMIN_PROFILE;
    if (ends_with(rest, len, "/events")) {
        r = ROUTE_ADMIN_PROFILE_EVENTS;
        len -= strlen("/events");
    } else if (ends_with(rest, len, "/export")) {
        r = ROUTE_ADMIN_PROFILE_EXPORT;
        len -= strlen("/export");
    }
    if (len == 0 || memchr(rest, '/', len)) return ROUTE_OTHER;
    *id_raw = rest;
    *id_len = len;
    return r;
}

/* "<prefix><id>" with no further '/'. */
static api_route match_id(const char *path, const char *prefix, api_route r, const char **id_raw,
                          size_t *id_len) {
    size_t plen = strlen(prefix);
    if (strncmp(path, prefix, plen) != 0) return ROUTE_OTHER;
    const char *rest = path + plen;
    size_t len = strlen(rest);
    if (len == 0 || memchr(rest, '/', len)) return ROUTE_OTHER;
    *id_raw = rest;
    *id_len = len;
    return r;
}

static api_route match_prefixed(const char *path, const char **id_raw, size_t *id_len) {
    static const char profiles[] = "/v1/admin/profiles/";
    static const char products[] = "/v1/admin/products/";
    if (strncmp(path, profiles, sizeof profiles - 1) == 0)
        return match_profile(path + sizeof profiles - 1, id_raw, id_len);
    if (strncmp(path, products, sizeof products - 1) == 0) {
        const char *rest = path + sizeof products - 1;
        size_t len = strlen(rest);
        if (len == 0 || memchr(rest, '/', len)) return ROUTE_OTHER;
        *id_raw = rest;
        *id_len = len;
        return ROUTE_ADMIN_PRODUCT;
    }
    static const char segments[] = "/v1/admin/segments/";
    if (strncmp(path, segments, sizeof segments - 1) == 0) {
        const char *rest = path + sizeof segments - 1;
        size_t len = strlen(rest);
        api_route sr = ROUTE_ADMIN_SEGMENT;
        if (ends_with(rest, len, "/members")) {
            sr = ROUTE_ADMIN_SEGMENT_MEMBERS;
            len -= strlen("/members");
        } else if (ends_with(rest, len, "/lookalike")) {
            sr = ROUTE_ADMIN_SEGMENT_LOOKALIKE;
            len -= strlen("/lookalike");
        }
        if (len == 0 || memchr(rest, '/', len)) return ROUTE_OTHER;
        *id_raw = rest;
        *id_len = len;
        return sr;
    }
    api_route r = match_id(path, "/v1/catalog/products/", ROUTE_CATALOG_PRODUCT, id_raw, id_len);
    if (r != ROUTE_OTHER) return r;
    r = match_id(path, "/v1/admin/campaigns/", ROUTE_ADMIN_CAMPAIGN, id_raw, id_len);
    if (r == ROUTE_OTHER)
        r = match_id(path, "/v1/admin/placements/", ROUTE_ADMIN_PLACEMENT, id_raw, id_len);
    return r;
}

api_route api_route_match(const char *path, bool web_files, const char **id_raw, size_t *id_len) {
    *id_raw = NULL;
    *id_len = 0;
    for (size_t i = 0; i < sizeof exact_paths / sizeof exact_paths[0]; i++)
        if (strcmp(path, exact_paths[i].path) == 0) return exact_paths[i].route;
    api_route r = match_prefixed(path, id_raw, id_len);
    if (r != ROUTE_OTHER) return r;
    bool api_space = strncmp(path, "/v1/", 4) == 0 || strncmp(path, "/beacon/", 8) == 0;
    if (web_files && !api_space) return ROUTE_STATIC;
    return ROUTE_OTHER;
}

unsigned api_route_methods(api_route r) {
    return route_table[r].methods;
}

const char *api_route_label(api_route r) {
    return route_table[r].label;
}

bool api_route_is_collect(api_route r) {
    return r >= ROUTE_TRACK && r <= ROUTE_BEACON_BATCH;
}

bool api_route_is_admin(api_route r) {
    return r >= ROUTE_ADMIN_PROFILE && r <= ROUTE_ADMIN_PRODUCT;
}

void api_methods_text(unsigned methods, char *out, size_t cap) {
    static const char *names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"};
    size_t used = 0;
    out[0] = '\0';
    methods |= METHOD_OPTIONS;
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(methods & (1u << i))) continue;
        int n = snprintf(out + used, cap - used, "%s%s", used ? ", " : "", names[i]);
        if (n < 0 || (size_t)n >= cap - used) return;
        used += (size_t)n;
    }
}
