/* assign.c - an automatic segment with a given member list (a lookalike
 * audience, or any list a job computed elsewhere): the plan machinery of
 * autoseg.c with one segment, after checking that the id does not belong
 * to a segment defined by a condition. */
#include "segment/auto_internal.h"

#include <stdlib.h>
#include <string.h>

#include "segment/segment_internal.h"

/* BSP_EEXISTS when id is stored as a segment other than an automatic one. */
static bsp_err check_replaceable(bsp_store *st, const char *id) {
    bsp_txn *txn;
    bsp_err rc = store_txn_begin(st, false, &txn);
    if (rc != BSP_OK) return rc;
    bsp_slice def;
    rc = store_config_get(txn, "segment", id, &def);
    if (rc == BSP_OK) {
        cJSON *o = cJSON_ParseWithLength(def.data, def.len);
        const char *kind = json_get_string(o, "kind");
        rc = kind && strcmp(kind, "automatic") == 0 ? BSP_OK : BSP_EEXISTS;
        cJSON_Delete(o);
    } else if (rc == BSP_ENOTFOUND) {
        rc = BSP_OK;
    }
    store_txn_abort(txn);
    return rc;
}

static bsp_err reload_job(bsp_ingest *ing, bsp_txn *txn, void *arg) {
    (void)ing;
    return segments_reload(arg, txn);
}

typedef struct count_job {
    const char *id;
    uint64_t *size;
} count_job;

static bsp_err count_members(bsp_ingest *ing, bsp_txn *txn, void *arg) {
    (void)ing;
    count_job *c = arg;
    return store_members_count(txn, c->id, c->size);
}

bsp_err segment_assign_automatic(bsp_ingest *ing, bsp_store *st, bsp_segments *segs, const char *id,
                                 const char *name, const char *description, const uint64_t *pids,
                                 size_t n, uint64_t *size) {
    *size = 0;
    if (!segment_id_valid(id)) return BSP_EINVAL;
    bsp_err rc = check_replaceable(st, id);
    int8_t *which = rc == BSP_OK ? calloc(n + 1, 1) : NULL; /* all 0: the one segment */
    if (rc == BSP_OK && !which) rc = BSP_ENOMEM;
    const char *ids[1] = {id}, *names[1] = {name}, *descs[1] = {description};
    auto_plan plan = {.ids = ids,
                      .names = names,
                      .descriptions = descs,
                      .nids = 1,
                      .nsave = 1,
                      .pids = pids,
                      .which = which,
                      .n = n};
    size_t written = 0;
    if (rc == BSP_OK) rc = auto_apply(ing, &plan, NULL, &written);
    if (rc == BSP_OK && segs) rc = ingest_run_job(ing, reload_job, segs);
    count_job cj = {id, size};
    if (rc == BSP_OK) rc = ingest_run_job(ing, count_members, &cj);
    free(which);
    return rc;
}
