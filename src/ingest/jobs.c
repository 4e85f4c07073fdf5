/* jobs.c - the built-in writer jobs (catalog writes, erasure) and id
 * resolution for readers. Jobs run on the writer thread inside its
 * transaction, after the profiles it holds have been written, so they see
 * and change the same state events do. */
#include "ingest/ingest_internal.h"

#include <stdlib.h>
#include <string.h>

bsp_err ingest_resolve(bsp_txn *txn, const char *id, uint64_t *pid) {
    bsp_err rc = store_id_get(txn, 'u', id, pid);
    if (rc == BSP_ENOTFOUND) rc = store_id_get(txn, 'a', id, pid);
    return rc;
}

typedef struct products_job {
    cJSON *const *products;
    size_t count;
} products_job;

static bsp_err put_products_job(bsp_ingest *ing, bsp_txn *txn, void *arg) {
    (void)ing;
    products_job *job = arg;
    for (size_t i = 0; i < job->count; i++) {
        const char *id = json_get_string(job->products[i], "id");
        if (!id) return BSP_EINVAL;
        char *text = cJSON_PrintUnformatted(job->products[i]);
        if (!text) return BSP_ENOMEM;
        bsp_err rc = store_product_put(txn, id, text, strlen(text));
        cJSON_free(text);
        if (rc) return rc;
    }
    return BSP_OK;
}

bsp_err ingest_put_products(bsp_ingest *ing, cJSON *const *products, size_t count) {
    products_job job = {products, count};
    return ingest_run_job(ing, put_products_job, &job);
}

typedef struct erase_job {
    const char *id;
    uint64_t events_deleted;
} erase_job;

static bsp_err delete_ids(bsp_ingest *ing, bsp_txn *txn, const bsp_profile *p) {
    static const char kinds[] = {'u', 'a'};
    for (size_t k = 0; k < sizeof kinds; k++) {
        size_t n = profile_id_count(p, kinds[k]);
        for (size_t i = 0; i < n; i++) {
            writer_stale(ing, fresh_id_key(profile_id_at(p, kinds[k], i)));
            bsp_err rc = store_id_del(txn, kinds[k], profile_id_at(p, kinds[k], i));
            if (rc && rc != BSP_ENOTFOUND) return rc;
        }
    }
    return BSP_OK;
}

static bsp_err erase_job_run(bsp_ingest *ing, bsp_txn *txn, void *arg) {
    erase_job *job = arg;
    uint64_t pid;
    bsp_err rc = ingest_resolve(txn, job->id, &pid);
    if (rc) return rc;
    pentry *e;
    rc = writer_profile(ing, txn, pid, &e);
    if (rc) return rc;
    if (ing->has_hooks && ing->hooks.profile_gone)
        rc = ing->hooks.profile_gone(ing->hooks.ctx, txn, e->profile);
    if (!rc) rc = delete_ids(ing, txn, e->profile);
    /* The id asked for goes too, even if the profile no longer lists it. */
    writer_stale(ing, fresh_id_key(job->id));
    if (!rc) rc = store_id_del(txn, 'u', job->id);
    if (rc == BSP_ENOTFOUND) rc = store_id_del(txn, 'a', job->id);
    if (rc == BSP_ENOTFOUND) rc = BSP_OK;
    if (!rc) rc = store_events_delete(txn, pid, &job->events_deleted);
    if (!rc) rc = store_profile_del(txn, pid);
    if (rc == BSP_ENOTFOUND) rc = BSP_OK;
    ingest_forget_profile(ing, pid);
    overlay_forget_ids(&ing->over, pid);
    if (!rc)
        bsp_info("erased profile %llu (%llu events)", (unsigned long long)pid,
                 (unsigned long long)job->events_deleted);
    return rc;
}

bsp_err ingest_erase_profile(bsp_ingest *ing, const char *id, uint64_t *events_deleted) {
    erase_job job = {id, 0};
    bsp_err rc = ingest_run_job(ing, erase_job_run, &job);
    if (events_deleted) *events_deleted = job.events_deleted;
    return rc;
}
