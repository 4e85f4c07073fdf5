/* config.c - campaigns and placements in the store's config table. Every
 * write is an ingest job, so admin changes are serialized with collection
 * on the writer thread and readers never wait; a replaced object keeps the
 * created_at of the first version. */
#include "campaign/campaign.h"

#include <string.h>

typedef struct save_job {
    const char *kind;
    cJSON *obj;
    bool create_only;
    bool created;
    bool exists; /* create_only and taken: nothing written */
} save_job;

/* Carries the stored created_at over, or sets it to updated_at. */
static bsp_err keep_created_at(bsp_txn *txn, save_job *job, const char *id) {
    bsp_slice old;
    bsp_err rc = store_config_get(txn, job->kind, id, &old);
    if (rc != BSP_OK && rc != BSP_ENOTFOUND) return rc;
    job->created = rc == BSP_ENOTFOUND;
    const char *created = NULL;
    cJSON *prev = NULL;
    if (!job->created) {
        prev = cJSON_ParseWithLength(old.data, old.len);
        created = json_get_string(prev, "created_at");
    }
    if (!created) created = json_get_string(job->obj, "updated_at");
    cJSON *copy = cJSON_CreateString(created ? created : "");
    cJSON_Delete(prev);
    if (!copy) return BSP_ENOMEM;
    json_set(job->obj, "created_at", copy);
    return BSP_OK;
}

static bsp_err save_run(bsp_ingest *ing, bsp_txn *txn, void *arg) {
    (void)ing;
    save_job *job = arg;
    const char *id = json_get_string(job->obj, "id");
    if (!id) return BSP_EINVAL;
    bsp_err rc = keep_created_at(txn, job, id);
    if (rc != BSP_OK) return rc;
    if (job->create_only && !job->created) {
        job->exists = true; /* not an error for the transaction others share */
        return BSP_OK;
    }
    char *text = cJSON_PrintUnformatted(job->obj);
    if (!text) return BSP_ENOMEM;
    rc = store_config_put(txn, job->kind, id, text, strlen(text));
    cJSON_free(text);
    return rc;
}

bsp_err campaign_config_save(bsp_ingest *ing, const char *kind, cJSON *obj, bool create_only,
                             bool *created) {
    save_job job = {.kind = kind, .obj = obj, .create_only = create_only};
    bsp_err rc = ingest_run_job(ing, save_run, &job);
    if (rc == BSP_OK && job.exists) rc = BSP_EEXISTS;
    if (created) *created = job.created;
    return rc;
}

typedef struct delete_job {
    const char *kind;
    const char *id;
    bool found;
} delete_job;

static bsp_err delete_run(bsp_ingest *ing, bsp_txn *txn, void *arg) {
    (void)ing;
    delete_job *job = arg;
    bsp_err rc = store_config_del(txn, job->kind, job->id);
    if (rc == BSP_ENOTFOUND) return BSP_OK; /* a 404, not a failed transaction */
    job->found = rc == BSP_OK;
    return rc;
}

bsp_err campaign_config_delete(bsp_ingest *ing, const char *kind, const char *id) {
    delete_job job = {.kind = kind, .id = id};
    bsp_err rc = ingest_run_job(ing, delete_run, &job);
    if (rc == BSP_OK && !job.found) rc = BSP_ENOTFOUND;
    return rc;
}
