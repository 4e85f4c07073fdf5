/* autoseg.c - the machinery shared by the jobs that assign automatic
 * segments (RFM groups, behavioural clusters): read every profile in one
 * read transaction, then apply the computed memberships through ingest jobs
 * on the writer thread, AUTO_CHUNK profiles a transaction so that event
 * ingestion is never held up for long, forgetting each rewritten profile
 * from the writer's cache so that its next event starts from the new
 * stored copy. Profiles untouched by the result are not rewritten, so a
 * periodic run over a quiet shop costs reads only. */
#include "segment/auto_internal.h"

#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"

#define PROGRESS_EVERY 10000

void auto_progress(const autoseg_ctl *ctl, const char *stage, size_t done, size_t total) {
    if (ctl && ctl->progress) ctl->progress(ctl->ctx, stage, done, total);
}

double auto_number(const cJSON *obj, const char *key) {
    const cJSON *v = json_member(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

int64_t auto_time(const cJSON *obj, const char *key) {
    const cJSON *v = json_member(obj, key);
    int64_t ms = 0;
    if (cJSON_IsString(v) && !bsp_time_parse(v->valuestring, &ms)) ms = 0;
    return ms;
}

static bool cancelled(const autoseg_ctl *ctl) {
    return ctl && ctl->cancel && atomic_load(ctl->cancel);
}

/* --- reading ------------------------------------------------------------- */

typedef struct scan_state {
    auto_visit_fn fn;
    void *ctx;
    const autoseg_ctl *ctl;
    const char *stage;
    size_t done, total;
} scan_state;

static bsp_err scan_one(void *vctx, uint64_t pid, bsp_slice json) {
    scan_state *s = vctx;
    bsp_profile *p;
    if (profile_from_json(json.data, json.len, &p) != BSP_OK) {
        bsp_warn("segment: profile %llu does not parse; skipped", (unsigned long long)pid);
        return BSP_OK;
    }
    cJSON *computed = profile_computed_json(p);
    bsp_err rc = computed ? s->fn(s->ctx, pid, p, computed) : BSP_ENOMEM;
    cJSON_Delete(computed);
    profile_free(p);
    if (++s->done % PROGRESS_EVERY == 0) {
        auto_progress(s->ctl, s->stage, s->done, s->total);
        if (cancelled(s->ctl)) return BSP_EUNAVAIL;
    }
    return rc;
}

bsp_err auto_scan(bsp_ingest *ing, bsp_store *st, const autoseg_ctl *ctl, const char *stage,
                  auto_visit_fn fn, void *ctx) {
    bsp_err rc = ing ? ingest_sync(ing) : BSP_OK;
    bsp_txn *txn = NULL;
    if (rc == BSP_OK) rc = store_txn_begin(st, false, &txn);
    if (rc != BSP_OK) return rc;
    scan_state s = {.fn = fn, .ctx = ctx, .ctl = ctl, .stage = stage};
    bsp_store_stats stats;
    if (store_stats(txn, &stats) == BSP_OK) s.total = (size_t)stats.profiles;
    rc = store_profiles_scan(txn, scan_one, &s);
    store_txn_abort(txn);
    if (rc == BSP_OK) auto_progress(ctl, stage, s.done, s.done);
    return rc;
}

/* --- writing --------------------------------------------------------------- */

typedef struct apply_job {
    const auto_plan *plan;
    size_t from, to;
    size_t written;
} apply_job;

static bool section_same(const cJSON *old, const cJSON *fresh) {
    if (!old || !fresh) return old == fresh;
    return cJSON_Compare(old, fresh, true);
}

/* Sets the section and memberships of p; true if anything changed. */
static bsp_err update_profile(bsp_txn *txn, const auto_plan *plan, size_t i, bsp_profile *p,
                              bool *changed) {
    if (plan->section) {
        cJSON *fresh = plan->make_section(plan->ctx, i);
        if (section_same(profile_section(p, plan->section), fresh)) {
            cJSON_Delete(fresh);
        } else {
            bsp_err rc = profile_set_section(p, plan->section, fresh);
            if (rc != BSP_OK) return rc;
            *changed = true;
        }
    }
    for (size_t j = 0; j < plan->nids; j++) {
        bool member = plan->which[i] == (int8_t)j;
        if (profile_set_segment(p, plan->ids[j], member)) *changed = true;
        if (member && profile_in_segment(p, plan->ids[j]) == false) return BSP_ENOMEM;
        bsp_err rc = member ? store_member_put(txn, plan->ids[j], plan->pids[i]) : BSP_OK;
        if (rc != BSP_OK) return rc;
    }
    return BSP_OK;
}

static bsp_err apply_one(bsp_ingest *ing, bsp_txn *txn, const auto_plan *plan, size_t i,
                         size_t *written) {
    uint64_t pid = plan->pids[i];
    bsp_slice json;
    bsp_err rc = store_profile_get(txn, pid, &json);
    if (rc == BSP_ENOTFOUND) return BSP_OK; /* erased since the scan */
    bsp_profile *p = NULL;
    if (rc == BSP_OK) rc = profile_from_json(json.data, json.len, &p);
    if (rc == BSP_EPARSE || rc == BSP_ETYPE) return BSP_OK; /* warned about at the scan */
    if (rc != BSP_OK) return rc;
    bool changed = false;
    rc = update_profile(txn, plan, i, p, &changed);
    if (rc == BSP_OK && changed) {
        bsp_buf buf = {0};
        rc = profile_to_json(p, &buf);
        if (rc == BSP_OK) rc = store_profile_put(txn, pid, buf.data, buf.len);
        bsp_buf_free(&buf);
        ingest_forget_profile(ing, pid);
        if (rc == BSP_OK) (*written)++;
    }
    profile_free(p);
    return rc;
}

static bsp_err apply_chunk(bsp_ingest *ing, bsp_txn *txn, void *arg) {
    apply_job *job = arg;
    bsp_err rc = BSP_OK;
    for (size_t i = job->from; i < job->to && rc == BSP_OK; i++)
        rc = apply_one(ing, txn, job->plan, i, &job->written);
    return rc;
}

/* Deletes the definition of id if it is an automatic segment (a family
 * member this run does not make, such as cluster_6 after k fell to 5). */
static bsp_err drop_definition(bsp_txn *txn, const char *id) {
    bsp_slice def;
    bsp_err rc = store_config_get(txn, "segment", id, &def);
    if (rc == BSP_ENOTFOUND) return BSP_OK;
    if (rc != BSP_OK) return rc;
    cJSON *o = cJSON_ParseWithLength(def.data, def.len);
    const cJSON *kind = json_member(o, "kind");
    bool automatic = cJSON_IsString(kind) && strcmp(kind->valuestring, "automatic") == 0;
    cJSON_Delete(o);
    return automatic ? store_config_del(txn, "segment", id) : BSP_OK;
}

static bsp_err save_definitions(bsp_ingest *ing, bsp_txn *txn, void *arg) {
    (void)ing;
    const auto_plan *plan = arg;
    bsp_err rc = BSP_OK;
    for (size_t j = 0; j < plan->nids && rc == BSP_OK; j++)
        rc = j < plan->nsave
                 ? segment_save_automatic(txn, plan->ids[j], plan->names[j], plan->descriptions[j])
                 : drop_definition(txn, plan->ids[j]);
    return rc;
}

/* --- the members index: entries the plan does not make ---------------------- */

typedef struct pid_list {
    uint64_t *pids;
    size_t n, cap;
} pid_list;

static bsp_err collect_member(void *ctx, uint64_t pid) {
    pid_list *l = ctx;
    uint64_t *grown = bsp_grow(l->pids, &l->cap, l->n, sizeof *grown, 1024);
    if (!grown) return BSP_ENOMEM;
    l->pids = grown;
    l->pids[l->n++] = pid;
    return BSP_OK;
}

/* Index of pid in the plan, or -1. */
static ptrdiff_t plan_find(const auto_plan *plan, uint64_t pid) {
    size_t lo = 0, hi = plan->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (plan->pids[mid] < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < plan->n && plan->pids[lo] == pid ? (ptrdiff_t)lo : -1;
}

static bsp_err sweep_index(bsp_ingest *ing, bsp_txn *txn, void *arg) {
    (void)ing;
    const auto_plan *plan = arg;
    bsp_err rc = BSP_OK;
    for (size_t j = 0; j < plan->nids && rc == BSP_OK; j++) {
        pid_list members = {0};
        rc = store_members_scan(txn, plan->ids[j], 0, collect_member, &members);
        for (size_t m = 0; m < members.n && rc == BSP_OK; m++) {
            ptrdiff_t at = plan_find(plan, members.pids[m]);
            if (at < 0 || plan->which[at] != (int8_t)j)
                rc = store_member_del(txn, plan->ids[j], members.pids[m]);
        }
        free(members.pids);
    }
    return rc;
}

bsp_err auto_apply(bsp_ingest *ing, const auto_plan *plan, const autoseg_ctl *ctl,
                   size_t *written) {
    *written = 0;
    bsp_err rc = ingest_run_job(ing, save_definitions, (void *)plan);
    for (size_t from = 0; rc == BSP_OK && from < plan->n; from += AUTO_CHUNK) {
        if (cancelled(ctl)) return BSP_EUNAVAIL;
        apply_job job = {plan, from, from + AUTO_CHUNK < plan->n ? from + AUTO_CHUNK : plan->n, 0};
        rc = ingest_run_job(ing, apply_chunk, &job);
        *written += job.written;
        auto_progress(ctl, "writing", job.to, plan->n);
    }
    if (rc == BSP_OK) rc = ingest_run_job(ing, sweep_index, (void *)plan);
    return rc;
}
