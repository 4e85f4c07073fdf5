/* catalog.c - the public catalog a storefront reads with its write key:
 * products by search text, category or ids, one product, and the category
 * list with counts. Product data is what the shop publishes anyway; nothing
 * about visitors is here. A request scans the stored catalog (a few
 * thousand products in a few milliseconds); a shop with a large catalog
 * keeps its own search and uses POST /v1/rank instead. */
#include "api/api_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json/json.h"

#define CATALOG_LIMIT_MAX 200
#define CATALOG_IDS_MAX 100
#define CATALOG_CATEGORIES_MAX 2000

typedef struct product_query {
    char q[256];
    char category[256];
    char ids[4096];
    const char *id_list[CATALOG_IDS_MAX];
    size_t nids;
    uint64_t limit, offset;
    uint64_t total;
    cJSON *out; /* array */
} product_query;

static bool contains_ci(const char *hay, const char *needle) {
    if (!hay) return false;
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++)
        if (strncasecmp(p, needle, n) == 0) return true;
    return false;
}

/* The category path "A > B > C" has category as one of its levels, or
 * starts with it. */
static bool in_category(const char *path, const char *category) {
    if (!path) return false;
    size_t n = strlen(category);
    if (strncasecmp(path, category, n) == 0) return true;
    for (const char *p = strstr(path, " > "); p; p = strstr(p + 3, " > "))
        if (strncasecmp(p + 3, category, n) == 0 && (p[3 + n] == '\0' || p[3 + n] == ' '))
            return true;
    return false;
}

static bool matches(const product_query *pq, bsp_slice id, const cJSON *p) {
    if (pq->nids) {
        bool listed = false;
        for (size_t i = 0; i < pq->nids && !listed; i++)
            listed =
                strlen(pq->id_list[i]) == id.len && memcmp(pq->id_list[i], id.data, id.len) == 0;
        if (!listed) return false;
    }
    if (pq->category[0] && !in_category(json_get_string(p, "category"), pq->category)) return false;
    if (pq->q[0] && !contains_ci(json_get_string(p, "name"), pq->q) &&
        !contains_ci(json_get_string(p, "category"), pq->q))
        return false;
    return true;
}

static bsp_err product_visit(void *ctx, bsp_slice id, bsp_slice json) {
    product_query *pq = ctx;
    bsp_error err;
    cJSON *p = json_parse(json.data, json.len, BSP_JSON_MAX_DEPTH, &err);
    if (!p) return BSP_OK;
    if (matches(pq, id, p)) {
        if (pq->total >= pq->offset && pq->total < pq->offset + pq->limit &&
            cJSON_AddItemToArray(pq->out, p))
            p = NULL;
        pq->total++;
    }
    cJSON_Delete(p);
    return BSP_OK;
}

static bsp_err query_number(api_req *req, const char *name, uint64_t max, uint64_t *out,
                            bsp_error *err) {
    char text[24];
    enum api_query_result q = api_query(req, name, text, sizeof text);
    if (q == QUERY_ABSENT) return BSP_OK;
    char *end = NULL;
    unsigned long long v =
        q == QUERY_FOUND && isdigit((unsigned char)text[0]) ? strtoull(text, &end, 10) : max + 1;
    if (q != QUERY_FOUND || (end && *end) || v > max)
        return bsp_error_set(err, BSP_EINVAL, name, "%s must be a whole number up to %llu", name,
                             (unsigned long long)max);
    *out = v;
    return BSP_OK;
}

static bsp_err query_text(api_req *req, const char *name, char *out, size_t cap, bsp_error *err) {
    if (api_query(req, name, out, cap) == QUERY_TOO_LONG)
        return bsp_error_set(err, BSP_EINVAL, name, "longer than %zu bytes", cap - 1);
    return BSP_OK;
}

static bsp_err parse_ids(product_query *pq, bsp_error *err) {
    for (char *save = NULL, *tok = strtok_r(pq->ids, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (pq->nids == CATALOG_IDS_MAX)
            return bsp_error_set(err, BSP_EINVAL, "ids", "at most %d ids", CATALOG_IDS_MAX);
        pq->id_list[pq->nids++] = tok;
    }
    return BSP_OK;
}

static enum MHD_Result products_query(api_req *req) {
    product_query *pq = calloc(1, sizeof *pq);
    if (!pq) return api_reply_errorf(req, BSP_ENOMEM, "", "out of memory");
    pq->limit = 24;
    bsp_error err;
    bsp_error_clear(&err);
    bsp_err rc = query_text(req, "q", pq->q, sizeof pq->q, &err);
    if (!rc) rc = query_text(req, "category", pq->category, sizeof pq->category, &err);
    if (!rc) rc = query_text(req, "ids", pq->ids, sizeof pq->ids, &err);
    if (!rc) rc = parse_ids(pq, &err);
    if (!rc) rc = query_number(req, "limit", CATALOG_LIMIT_MAX, &pq->limit, &err);
    if (!rc) rc = query_number(req, "offset", UINT32_MAX, &pq->offset, &err);
    pq->out = rc ? NULL : cJSON_CreateArray();
    if (!rc && !pq->out) rc = bsp_error_set(&err, BSP_ENOMEM, "", "out of memory");
    bsp_txn *txn = NULL;
    if (!rc) rc = store_txn_begin(req->srv->store, false, &txn);
    if (!rc) rc = store_products_scan(txn, product_visit, pq);
    if (txn) store_txn_abort(txn);
    cJSON *body = rc ? NULL : cJSON_CreateObject();
    enum MHD_Result ret;
    if (body && cJSON_AddItemToObject(body, "products", pq->out) &&
        cJSON_AddNumberToObject(body, "total", (double)pq->total)) {
        pq->out = NULL;
        ret = admin_reply_json(req, 200, body);
    } else {
        ret = err.code ? api_reply_error(req, &err)
                       : api_reply_errorf(req, rc ? rc : BSP_ENOMEM, "", "catalog unavailable");
    }
    cJSON_Delete(body);
    cJSON_Delete(pq->out);
    free(pq);
    return ret;
}

static enum MHD_Result product_one(api_req *req) {
    bsp_txn *txn;
    bsp_err rc = store_txn_begin(req->srv->store, false, &txn);
    if (rc) return api_reply_errorf(req, rc, "", "store error");
    bsp_slice raw;
    rc = store_product_get(txn, req->id, &raw);
    bsp_buf out = {0};
    if (!rc) rc = bsp_buf_append(&out, raw.data, raw.len);
    store_txn_abort(txn);
    if (rc == BSP_ENOTFOUND || rc == BSP_EINVAL)
        return api_reply_errorf(req, BSP_ENOTFOUND, "id", "no such product");
    if (rc) {
        bsp_buf_free(&out);
        return api_reply_errorf(req, rc, "", "store error");
    }
    return api_reply_buf(req, 200, &out);
}

/* --- categories ------------------------------------------------------------------- */

typedef struct category_count {
    char *name;
    uint64_t count;
} category_count;

typedef struct category_list {
    category_count *items;
    size_t n, cap;
} category_list;

static void category_add(category_list *cl, const char *path) {
    if (!path || !*path) return;
    const char *sep = strstr(path, " > ");
    size_t len = sep ? (size_t)(sep - path) : strlen(path); /* the top level */
    for (size_t i = 0; i < cl->n; i++)
        if (strlen(cl->items[i].name) == len && memcmp(cl->items[i].name, path, len) == 0) {
            cl->items[i].count++;
            return;
        }
    if (cl->n == CATALOG_CATEGORIES_MAX) return;
    if (cl->n == cl->cap) {
        size_t cap = cl->cap ? cl->cap * 2 : 32;
        category_count *grown = realloc(cl->items, cap * sizeof *grown);
        if (!grown) return;
        cl->items = grown;
        cl->cap = cap;
    }
    char *name = strndup(path, len);
    if (name) cl->items[cl->n++] = (category_count){name, 1};
}

static bsp_err category_visit(void *ctx, bsp_slice id, bsp_slice json) {
    (void)id;
    bsp_error err;
    cJSON *p = json_parse(json.data, json.len, BSP_JSON_MAX_DEPTH, &err);
    if (p) category_add(ctx, json_get_string(p, "category"));
    cJSON_Delete(p);
    return BSP_OK;
}

static int by_count(const void *a, const void *b) {
    const category_count *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    return strcmp(x->name, y->name);
}

static enum MHD_Result categories(api_req *req) {
    category_list cl = {0};
    bsp_txn *txn;
    bsp_err rc = store_txn_begin(req->srv->store, false, &txn);
    if (!rc) {
        rc = store_products_scan(txn, category_visit, &cl);
        store_txn_abort(txn);
    }
    if (cl.n) qsort(cl.items, cl.n, sizeof *cl.items, by_count);
    bsp_buf out = {0};
    bsp_buf_puts(&out, "{\"categories\":[");
    for (size_t i = 0; i < cl.n; i++) {
        bsp_buf_puts(&out, i ? ",{\"name\":" : "{\"name\":");
        json_write_string(&out, cl.items[i].name);
        bsp_buf_printf(&out, ",\"count\":%llu}", (unsigned long long)cl.items[i].count);
        free(cl.items[i].name);
    }
    free(cl.items);
    bsp_buf_puts(&out, "]}");
    if (rc) {
        bsp_buf_free(&out);
        return api_reply_errorf(req, rc, "", "store error");
    }
    return api_reply_buf(req, 200, &out);
}

enum MHD_Result catalog_handle(api_req *req) {
    bsp_error err;
    bsp_error_clear(&err);
    if (collect_check_key(req, NULL, &err) != BSP_OK) return api_reply_error(req, &err);
    switch (req->route) {
    case ROUTE_CATALOG_PRODUCTS:
        return products_query(req);
    case ROUTE_CATALOG_PRODUCT:
        return product_one(req);
    default:
        return categories(req);
    }
}
