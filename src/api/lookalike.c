/* lookalike.c - lookalike audiences of a segment (admin key):
 *   GET  /v1/admin/segments/{id}/lookalike?n=20[&exclude_seed=false]
 *        the n profiles most like the segment's members, with scores;
 *   POST /v1/admin/segments/{id}/lookalike {"size", "into", "exclude_seed"}
 *        saves the best size of them as the automatic segment "into".
 * The seed is read from the members index; the scoring is the recommendation
 * snapshot's (user vectors, src/reco/lookalike.c); the new segment is
 * written through ingest jobs by src/segment/assign.c. */
#include "api/api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

#define LOOKALIKE_GET_MAX 100
#define LOOKALIKE_GET_DEFAULT 20
#define LOOKALIKE_SIZE_MAX 100000
#define LOOKALIKE_SIZE_DEFAULT 1000
#define SEED_MAX 1000000 /* members of the seed read */

typedef struct seed_list {
    uint64_t *pids;
    size_t n, cap;
} seed_list;

static bsp_err take_seed(void *ctx, uint64_t pid) {
    seed_list *l = ctx;
    if (l->n == SEED_MAX) return BSP_ETOOBIG;
    uint64_t *grown = bsp_grow(l->pids, &l->cap, l->n, sizeof *grown, 1024);
    if (!grown) return BSP_ENOMEM;
    l->pids = grown;
    l->pids[l->n++] = pid;
    return BSP_OK;
}

static bsp_err read_seed(api_req *req, seed_list *l) {
    bsp_txn *txn;
    bsp_err rc = store_txn_begin(req->srv->store, false, &txn);
    if (rc != BSP_OK) return rc;
    rc = store_members_scan(txn, req->id, 0, take_seed, l);
    store_txn_abort(txn);
    return rc == BSP_ETOOBIG ? BSP_OK : rc;
}

/* The state of one request: seed, snapshot, hits. */
typedef struct look {
    seed_list seed;
    reco_snapshot *s;
    reco_lookalike_hit *hits;
    size_t count, used;
} look;

static void look_free(look *lk) {
    free(lk->seed.pids);
    free(lk->hits);
    reco_snapshot_unref(lk->s);
}

static bsp_err look_run(api_req *req, look *lk, size_t n, bool exclude_seed, bsp_error *err) {
    if (!req->srv->segments || !segments_exists(req->srv->segments, req->id))
        return bsp_error_set(err, BSP_ENOTFOUND, "", "no segment '%.64s'", req->id);
    reco_holder *h = reco_service_holder(req->srv);
    if (!h || !(lk->s = reco_holder_acquire(h)))
        return bsp_error_set(err, BSP_EUNAVAIL, "", "no recommendation model yet");
    bsp_err rc = read_seed(req, &lk->seed);
    if (rc != BSP_OK) return bsp_error_set(err, rc, "", "could not read the segment");
    lk->hits = malloc((n + 1) * sizeof *lk->hits);
    if (!lk->hits) return bsp_error_set(err, BSP_ENOMEM, "", "out of memory");
    rc = reco_lookalike(lk->s, lk->seed.pids, lk->seed.n, exclude_seed, n, lk->hits, &lk->count,
                        &lk->used);
    if (rc == BSP_ENOTFOUND)
        return bsp_error_set(err, BSP_EINVAL, "",
                             "no member of '%.64s' is in the model yet (train after they "
                             "have some history)",
                             req->id);
    return rc ? bsp_error_set(err, rc, "", "lookalike failed") : BSP_OK;
}

static void add_common(cJSON *root, const api_req *req, const look *lk) {
    cJSON_AddStringToObject(root, "seed", req->id);
    cJSON_AddNumberToObject(root, "seed_size", (double)lk->seed.n);
    cJSON_AddNumberToObject(root, "seed_in_model", (double)lk->used);
    cJSON_AddNumberToObject(root, "model_version", (double)reco_snapshot_version(lk->s));
}

/* --- GET: the best n with scores ---------------------------------------------------------- */

static void add_profile(cJSON *arr, bsp_txn *txn, const reco_lookalike_hit *hit) {
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(arr, o)) {
        cJSON_Delete(o);
        return;
    }
    char pid[24];
    snprintf(pid, sizeof pid, "%llu", (unsigned long long)hit->pid);
    cJSON_AddStringToObject(o, "profile_id", pid);
    bsp_slice json;
    char u[256], a[256];
    bool ok = store_profile_get(txn, hit->pid, &json) == BSP_OK &&
              profile_peek_ids(json.data, json.len, u, sizeof u, a, sizeof a) == BSP_OK;
    cJSON_AddItemToObject(o, "userId", ok && u[0] ? cJSON_CreateString(u) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "anonymousId",
                          ok && a[0] ? cJSON_CreateString(a) : cJSON_CreateNull());
    cJSON_AddNumberToObject(o, "score", hit->score);
}

static bool query_flag(api_req *req, const char *name, bool dflt) {
    char text[8];
    if (api_query(req, name, text, sizeof text) != QUERY_FOUND) return dflt;
    return strcmp(text, "false") != 0 && strcmp(text, "0") != 0;
}

static enum MHD_Result lookalike_get(api_req *req) {
    char text[16];
    long n = LOOKALIKE_GET_DEFAULT;
    enum api_query_result q = api_query(req, "n", text, sizeof text);
    char *end = text;
    if (q == QUERY_FOUND) n = strtol(text, &end, 10);
    if (q == QUERY_TOO_LONG || (q == QUERY_FOUND && (*end || end == text)) || n < 1 ||
        n > LOOKALIKE_GET_MAX)
        return api_reply_errorf(req, BSP_EINVAL, "n", "n must be a whole number from 1 to %d",
                                LOOKALIKE_GET_MAX);
    look lk = {0};
    bsp_error err;
    bsp_error_clear(&err);
    bsp_err rc = look_run(req, &lk, (size_t)n, query_flag(req, "exclude_seed", true), &err);
    cJSON *root = rc == BSP_OK ? cJSON_CreateObject() : NULL;
    bsp_txn *txn = NULL;
    if (root && store_txn_begin(req->srv->store, false, &txn) == BSP_OK) {
        add_common(root, req, &lk);
        cJSON *arr = cJSON_AddArrayToObject(root, "profiles");
        for (size_t i = 0; arr && i < lk.count; i++)
            add_profile(arr, txn, &lk.hits[i]);
        store_txn_abort(txn);
    }
    look_free(&lk);
    enum MHD_Result ret;
    if (rc != BSP_OK)
        ret = api_reply_error(req, &err);
    else if (!root || !txn)
        ret = api_reply_errorf(req, BSP_ENOMEM, "", "could not build the answer");
    else
        ret = admin_reply_json(req, 200, root);
    cJSON_Delete(root);
    return ret;
}

/* --- POST: save as a segment -------------------------------------------------------------- */

typedef struct save_opts {
    double size;
    bool exclude_seed;
    char into[256];
    const char *name;
} save_opts;

static bsp_err parse_save(api_req *req, cJSON **body, save_opts *o, bsp_error *err) {
    o->size = LOOKALIKE_SIZE_DEFAULT;
    o->exclude_seed = true;
    snprintf(o->into, sizeof o->into, "%.200s_lookalike", req->id);
    const char *text = req->body.data ? req->body.data : "{}";
    *body = json_parse(text, req->body.data ? req->body.len : 2, BSP_JSON_MAX_DEPTH, err);
    if (!*body) return err->code;
    if (!cJSON_IsObject(*body))
        return bsp_error_set(err, BSP_EINVAL, "", "the body must be a JSON object");
    const cJSON *size = json_member(*body, "size");
    if (size && !(cJSON_IsNumber(size) && size->valuedouble >= 1 &&
                  size->valuedouble <= LOOKALIKE_SIZE_MAX))
        return bsp_error_set(err, BSP_ETYPE, "size", "size must be a number from 1 to %d",
                             LOOKALIKE_SIZE_MAX);
    if (size) o->size = size->valuedouble;
    const cJSON *ex = json_member(*body, "exclude_seed");
    if (ex && !cJSON_IsBool(ex))
        return bsp_error_set(err, BSP_ETYPE, "exclude_seed", "exclude_seed must be true or false");
    if (ex) o->exclude_seed = cJSON_IsTrue(ex);
    const cJSON *into = json_member(*body, "into");
    if (into && (!cJSON_IsString(into) || strlen(into->valuestring) >= sizeof o->into))
        return bsp_error_set(err, BSP_ETYPE, "into", "into must be a segment id");
    if (into) snprintf(o->into, sizeof o->into, "%s", into->valuestring);
    if (strcmp(o->into, req->id) == 0)
        return bsp_error_set(err, BSP_EINVAL, "into", "into must differ from the seed segment");
    o->name = json_get_string(*body, "name");
    return BSP_OK;
}

static int pid_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static bsp_err save_segment(api_req *req, const look *lk, const save_opts *o, uint64_t *size,
                            bsp_error *err) {
    uint64_t *pids = malloc((lk->count + 1) * sizeof *pids);
    if (!pids) return bsp_error_set(err, BSP_ENOMEM, "", "out of memory");
    for (size_t i = 0; i < lk->count; i++)
        pids[i] = lk->hits[i].pid;
    qsort(pids, lk->count, sizeof *pids, pid_cmp);
    char desc[320];
    snprintf(desc, sizeof desc, "lookalike of %.200s (model %llu)", req->id,
             (unsigned long long)reco_snapshot_version(lk->s));
    bsp_err rc = BSP_EUNAVAIL;
    if (api_ingest_acquire(req->srv)) {
        rc = segment_assign_automatic(req->srv->ingest, req->srv->store, req->srv->segments,
                                      o->into, o->name, desc, pids, lk->count, size);
        api_ingest_release(req->srv);
    }
    free(pids);
    if (rc == BSP_EEXISTS)
        return bsp_error_set(err, BSP_EEXISTS, "into",
                             "'%.64s' is a segment with a condition; pick another id", o->into);
    if (rc == BSP_EINVAL) return bsp_error_set(err, rc, "into", "into is not a valid segment id");
    return rc ? bsp_error_set(err, rc, "", "could not save the segment") : BSP_OK;
}

static enum MHD_Result lookalike_post(api_req *req) {
    bsp_error err;
    bsp_error_clear(&err);
    cJSON *body = NULL;
    save_opts o;
    look lk = {0};
    uint64_t size = 0;
    bsp_err rc = parse_save(req, &body, &o, &err);
    if (rc == BSP_OK) rc = look_run(req, &lk, (size_t)o.size, o.exclude_seed, &err);
    if (rc == BSP_OK) rc = save_segment(req, &lk, &o, &size, &err);
    cJSON *root = rc == BSP_OK ? cJSON_CreateObject() : NULL;
    if (root) {
        cJSON_AddStringToObject(root, "segment", o.into);
        cJSON_AddNumberToObject(root, "size", (double)size);
        add_common(root, req, &lk);
    }
    look_free(&lk);
    cJSON_Delete(body);
    enum MHD_Result ret;
    if (rc != BSP_OK)
        ret = api_reply_error(req, &err);
    else if (!root)
        ret = api_reply_errorf(req, BSP_ENOMEM, "", "out of memory");
    else
        ret = admin_reply_json(req, 200, root);
    cJSON_Delete(root);
    return ret;
}

enum MHD_Result lookalike_handle(api_req *req) {
    return req->method == METHOD_POST ? lookalike_post(req) : lookalike_get(req);
}
