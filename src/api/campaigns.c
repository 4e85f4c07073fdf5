/* campaigns.c - the admin API of campaigns and placements:
 *   POST /v1/admin/campaigns            create (409 if the id is taken)
 *   GET  /v1/admin/campaigns            list (?placement=, ?status=; pools as sizes)
 *   GET|PUT|DELETE /v1/admin/campaigns/{id}
 *   GET|POST /v1/admin/placements, GET|PUT|DELETE /v1/admin/placements/{id}
 * Validation is campaign/'s; writes are ingest jobs; after each write the
 * registry recompiles the snapshot that decisions read, so the next
 * decision sees the change. */
#include "api/api_internal.h"

#include <stdio.h>
#include <string.h>

#include "campaign/campaign.h"
#include "json/json.h"

typedef struct kind_info {
    const char *kind;   /* store kind */
    const char *plural; /* list key */
    const char *label;  /* for messages */
} kind_info;

static const kind_info CAMPAIGNS = {CAMPAIGN_KIND, "campaigns", "campaign"};
static const kind_info PLACEMENTS = {PLACEMENT_KIND, "placements", "placement"};

static enum MHD_Result reply_json(api_req *req, int status, const cJSON *item) {
    bsp_buf out = {0};
    if (json_write(&out, item) != BSP_OK) {
        bsp_buf_free(&out);
        return api_reply_errorf(req, BSP_ENOMEM, "", "out of memory");
    }
    return api_reply_buf(req, status, &out);
}

/* --- reading -------------------------------------------------------------------------- */

/* A campaign's pool as counts in listings: pool_size, and pool_remaining
 * from the live snapshot when the campaign is active. */
static void summarize_pool(api_server *srv, cJSON *obj, bool keep_codes) {
    cJSON *content = json_get_object(obj, "content");
    cJSON *pool = json_get_array(content, "pool");
    if (!pool) return;
    cJSON_AddNumberToObject(content, "pool_size", cJSON_GetArraySize(pool));
    if (!keep_codes) cJSON_DeleteItemFromObjectCaseSensitive(content, "pool");
    unsigned slot;
    const campaign_set *set = campaign_acquire(srv->campaigns, &slot);
    const char *id = json_get_string(obj, "id");
    for (size_t i = 0; set && id && i < set->campaign_count; i++)
        if (set->campaigns[i].pool && !strcmp(set->campaigns[i].id, id))
            cJSON_AddNumberToObject(content, "pool_remaining",
                                    (double)coupon_remaining(set->campaigns[i].pool));
    campaign_release(srv->campaigns, slot);
}

static enum MHD_Result get_one(api_req *req, const kind_info *k) {
    bsp_txn *txn = NULL;
    bsp_err rc = store_txn_begin(req->srv->store, false, &txn);
    if (rc != BSP_OK) return api_reply_errorf(req, rc, "", "store error (%s)", bsp_err_name(rc));
    bsp_slice stored;
    cJSON *obj = NULL;
    rc = store_config_get(txn, k->kind, req->id, &stored);
    if (rc == BSP_OK) obj = cJSON_ParseWithLength(stored.data, stored.len);
    store_txn_abort(txn);
    if (rc == BSP_ENOTFOUND || rc == BSP_EINVAL)
        return api_reply_errorf(req, BSP_ENOTFOUND, "id", "no %s has this id", k->label);
    if (!obj) return api_reply_errorf(req, BSP_EINTERNAL, "", "stored %s is unreadable", k->label);
    if (k == &CAMPAIGNS) summarize_pool(req->srv, obj, true);
    enum MHD_Result ret = reply_json(req, 200, obj);
    cJSON_Delete(obj);
    return ret;
}

typedef struct list_ctx {
    api_server *srv;
    const kind_info *k;
    cJSON *array;
    const char *placement; /* filters, or NULL */
    const char *status;
} list_ctx;

static bsp_err list_one(void *ctx, bsp_slice id, bsp_slice json) {
    (void)id;
    list_ctx *l = ctx;
    cJSON *obj = cJSON_ParseWithLength(json.data, json.len);
    if (!obj) return BSP_OK;
    const char *placement = json_get_string(obj, "placement");
    const char *status = json_get_string(obj, "status");
    if ((l->placement && (!placement || strcmp(placement, l->placement))) ||
        (l->status && (!status || strcmp(status, l->status)))) {
        cJSON_Delete(obj);
        return BSP_OK;
    }
    if (l->k == &CAMPAIGNS) summarize_pool(l->srv, obj, false);
    cJSON_AddItemToArray(l->array, obj);
    return BSP_OK;
}

static enum MHD_Result list_all(api_req *req, const kind_info *k) {
    char placement[CAMPAIGN_ID_MAX + 1], status[16];
    list_ctx l = {.srv = req->srv, .k = k};
    if (api_query(req, "placement", placement, sizeof placement) == QUERY_FOUND)
        l.placement = placement;
    if (api_query(req, "status", status, sizeof status) == QUERY_FOUND) l.status = status;
    cJSON *root = cJSON_CreateObject();
    l.array = cJSON_AddArrayToObject(root, k->plural);
    if (!l.array) {
        cJSON_Delete(root);
        return api_reply_errorf(req, BSP_ENOMEM, "", "out of memory");
    }
    bsp_txn *txn = NULL;
    bsp_err rc = store_txn_begin(req->srv->store, false, &txn);
    if (rc == BSP_OK) rc = store_config_scan(txn, k->kind, list_one, &l);
    if (txn) store_txn_abort(txn);
    enum MHD_Result ret =
        rc == BSP_OK ? reply_json(req, 200, root)
                     : api_reply_errorf(req, rc, "", "could not list (%s)", bsp_err_name(rc));
    cJSON_Delete(root);
    return ret;
}

/* --- writing ---------------------------------------------------------------------------- */

static enum MHD_Result reload_and_reply(api_req *req, int status, const cJSON *obj) {
    bsp_err rc = campaign_registry_reload(req->srv->campaigns);
    if (rc != BSP_OK)
        return api_reply_errorf(req, rc, "", "saved, but the campaigns could not be reloaded (%s)",
                                bsp_err_name(rc));
    return obj ? reply_json(req, status, obj) : api_reply_static(req, 200, "{\"deleted\":true}");
}

static bsp_err validate(api_req *req, const kind_info *k, cJSON **out, bsp_error *err) {
    const char *text = req->body.data ? req->body.data : "";
    cJSON *body = json_parse(text, req->body.len, BSP_JSON_MAX_DEPTH, err);
    if (!body) return err->code;
    bsp_err rc = k == &CAMPAIGNS ? campaign_from_json(body, req->id, bsp_now_ms(), out, err)
                                 : placement_from_json(body, req->id, bsp_now_ms(), out, err);
    cJSON_Delete(body);
    return rc;
}

static enum MHD_Result save(api_req *req, const kind_info *k, bool create_only) {
    bsp_error err;
    cJSON *obj = NULL;
    if (validate(req, k, &obj, &err) != BSP_OK) return api_reply_error(req, &err);
    if (!api_ingest_acquire(req->srv)) {
        cJSON_Delete(obj);
        return api_reply_errorf(req, BSP_EUNAVAIL, "", "the server is shutting down");
    }
    bool created = false;
    bsp_err rc = campaign_config_save(req->srv->ingest, k->kind, obj, create_only, &created);
    api_ingest_release(req->srv);
    enum MHD_Result ret;
    if (rc == BSP_EEXISTS)
        ret =
            api_reply_errorf(req, rc, "id", "a %s with this id exists (PUT replaces it)", k->label);
    else if (rc != BSP_OK)
        ret = api_reply_errorf(req, rc, "", "store error (%s)", bsp_err_name(rc));
    else
        ret = reload_and_reply(req, created ? 201 : 200, obj);
    cJSON_Delete(obj);
    return ret;
}

static enum MHD_Result delete_one(api_req *req, const kind_info *k) {
    if (!api_ingest_acquire(req->srv))
        return api_reply_errorf(req, BSP_EUNAVAIL, "", "the server is shutting down");
    bsp_err rc = campaign_config_delete(req->srv->ingest, k->kind, req->id);
    api_ingest_release(req->srv);
    if (rc == BSP_ENOTFOUND || rc == BSP_EINVAL)
        return api_reply_errorf(req, BSP_ENOTFOUND, "id", "no %s has this id", k->label);
    if (rc != BSP_OK) return api_reply_errorf(req, rc, "", "store error (%s)", bsp_err_name(rc));
    return reload_and_reply(req, 200, NULL);
}

/* --- dispatch ------------------------------------------------------------------------------ */

static enum MHD_Result one(api_req *req, const kind_info *k) {
    if (!campaign_id_valid(req->id))
        return api_reply_errorf(req, BSP_EINVAL, "id",
                                "ids are 1..64 characters of A-Z a-z 0-9 _ . : -");
    switch (req->method) {
    case METHOD_PUT:
        return save(req, k, false);
    case METHOD_DELETE:
        return delete_one(req, k);
    default:
        return get_one(req, k);
    }
}

enum MHD_Result campaigns_handle(api_req *req) {
    switch (req->route) {
    case ROUTE_ADMIN_CAMPAIGNS:
        return req->method == METHOD_POST ? save(req, &CAMPAIGNS, true) : list_all(req, &CAMPAIGNS);
    case ROUTE_ADMIN_CAMPAIGN:
        return one(req, &CAMPAIGNS);
    case ROUTE_ADMIN_PLACEMENTS:
        return req->method == METHOD_POST ? save(req, &PLACEMENTS, true)
                                          : list_all(req, &PLACEMENTS);
    case ROUTE_ADMIN_PLACEMENT:
        return one(req, &PLACEMENTS);
    default:
        return api_reply_errorf(req, BSP_ENOTFOUND, "", "no such endpoint");
    }
}

/* --- life -------------------------------------------------------------------------------- */

bsp_err campaigns_start(api_server *srv, bool require_consent) {
    bsp_err rc = campaign_registry_start(srv->store, srv->ingest, &srv->campaigns);
    decide_opts opts = {.require_consent = require_consent};
    if (rc == BSP_OK)
        rc = decider_new(srv->store, srv->ingest, srv->campaigns, &opts, &srv->decider);
    if (rc != BSP_OK) {
        bsp_error_log("could not start campaigns: %s", bsp_err_name(rc));
        campaigns_stop(srv);
        campaigns_close(srv);
    }
    return rc;
}

void campaigns_stop(api_server *srv) {
    campaign_registry_stop(srv->campaigns);
}

void campaigns_close(api_server *srv) {
    decider_free(srv->decider);
    srv->decider = NULL;
    campaign_registry_free(srv->campaigns);
    srv->campaigns = NULL;
}
