/* writer.c - the ingest queue and its one writer thread (group commit).
 *
 * Submitters append work to a bounded queue; the writer takes everything
 * waiting (up to commit_max events), applies it in one write transaction,
 * writes each touched profile once, commits durably and only then calls the
 * submitters back. A failed commit fails every item of that transaction and
 * drops the profile cache, whose entries may hold the lost updates. */
#include "ingest/ingest_internal.h"

#include <stdlib.h>
#include <string.h>

const double bsp_ingest_lat_bounds_us[BSP_INGEST_LAT_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000};

/* --- the profile working set ---------------------------------------------- */

bsp_err writer_profile(bsp_ingest *ing, bsp_txn *txn, uint64_t pid, pentry **out) {
    pentry *e = pcache_get(&ing->cache, pid);
    if (e) {
        *out = e;
        return BSP_OK;
    }
    bsp_profile *p = NULL;
    bsp_slice raw;
    bsp_err rc = store_profile_get(txn, pid, &raw);
    if (rc == BSP_OK) {
        rc = profile_from_json(raw.data, raw.len, &p);
        if (rc) bsp_warn("profile %llu unreadable, starting afresh", (unsigned long long)pid);
    }
    if (rc == BSP_ENOTFOUND || (rc != BSP_OK && rc != BSP_ESTORE && rc != BSP_ENOMEM)) {
        p = profile_new(pid);
        rc = p ? BSP_OK : BSP_ENOMEM;
    }
    if (rc) return rc;
    e = pcache_put(&ing->cache, p);
    if (!e) {
        profile_free(p);
        return BSP_ENOMEM;
    }
    *out = e;
    return BSP_OK;
}

bsp_err writer_mark_dirty(bsp_ingest *ing, pentry *e) {
    if (e->dirty) return BSP_OK;
    if (ing->dirty_len == ing->dirty_cap) {
        size_t cap = ing->dirty_cap ? ing->dirty_cap * 2 : 1024;
        uint64_t *d = realloc(ing->dirty, cap * sizeof *d);
        if (!d) return BSP_ENOMEM; /* fails the transaction: no update is lost */
        ing->dirty = d;
        ing->dirty_cap = cap;
    }
    e->dirty = true;
    ing->dirty[ing->dirty_len++] = e->pid;
    return BSP_OK;
}

bsp_err writer_flush(bsp_ingest *ing, bsp_txn *txn) {
    bsp_buf text = {0};
    bsp_err rc = BSP_OK;
    for (size_t i = 0; i < ing->dirty_len && !rc; i++) {
        pentry *e = pcache_get(&ing->cache, ing->dirty[i]);
        if (!e || !e->dirty) continue; /* merged away, or already written */
        bsp_buf_reset(&text);
        rc = profile_to_json(e->profile, &text);
        if (!rc) rc = store_profile_put(txn, e->pid, text.data, text.len);
        e->dirty = false;
    }
    ing->dirty_len = 0;
    bsp_buf_free(&text);
    return rc;
}

/* --- applying events ------------------------------------------------------ */

typedef struct learn_ctx {
    bsp_txn *txn;
    bsp_err rc;
} learn_ctx;

/* Merges product facts an event carried into the catalog, writing only when
 * something changed and never over a product the shop sent explicitly. */
static void learn_product(void *arg, cJSON *learnt) {
    learn_ctx *lc = arg;
    const char *id = json_get_string(learnt, "id");
    if (lc->rc || !id) goto done;
    bsp_slice raw;
    cJSON *stored = NULL;
    bsp_err rc = store_product_get(lc->txn, id, &raw);
    if (rc == BSP_OK) {
        stored = json_parse(raw.data, raw.len, BSP_JSON_MAX_DEPTH, NULL);
        const char *source = json_get_string(stored, "source");
        if (stored && (!source || strcmp(source, "events") != 0)) {
            cJSON_Delete(stored);
            goto done;
        }
    } else if (rc != BSP_ENOTFOUND) {
        lc->rc = rc;
        goto done;
    }
    cJSON *merged = catalog_merge_learnt(stored, learnt);
    char *text = merged ? cJSON_PrintUnformatted(merged) : NULL;
    if (text && !(rc == BSP_OK && strlen(text) == raw.len && !memcmp(text, raw.data, raw.len)))
        lc->rc = store_product_put(lc->txn, id, text, strlen(text));
    cJSON_free(text);
    cJSON_Delete(merged);
    cJSON_Delete(stored);
done:
    cJSON_Delete(learnt);
}

static bool is_duplicate(bsp_txn *txn, const bsp_event *ev, bsp_err *rc) {
    uint64_t seq;
    *rc = store_msgid_get(txn, ev->message_id, strlen(ev->message_id), &seq);
    if (*rc == BSP_OK) return true;
    if (*rc == BSP_ENOTFOUND) *rc = BSP_OK;
    return false;
}

/* Applies one event; sets *dup when its messageId was already stored. */
static bsp_err apply_event(bsp_ingest *ing, bsp_txn *txn, const bsp_event *ev, bool *dup) {
    bsp_err rc;
    *dup = is_duplicate(txn, ev, &rc);
    if (*dup || rc) return rc;
    uint64_t pid, seq;
    rc = identity_resolve_event(ing, txn, ev, &pid);
    if (rc) return rc;
    pentry *e;
    rc = writer_profile(ing, txn, pid, &e);
    if (rc) return rc;
    profile_apply_event(e->profile, ev);
    rc = writer_mark_dirty(ing, e);
    if (!rc) rc = store_event_append(txn, pid, ev->text, ev->text_len, &seq);
    if (!rc) rc = store_msgid_add(txn, ev->message_id, strlen(ev->message_id), seq);
    if (rc) return rc;
    learn_ctx lc = {txn, BSP_OK};
    catalog_learn_from_event(ev, learn_product, &lc);
    return lc.rc;
}

static bsp_err apply_work(bsp_ingest *ing, bsp_txn *txn, work *w) {
    if (w->kind == WORK_JOB) {
        bsp_err rc = writer_flush(ing, txn);
        if (rc) return rc;
        w->job_rc = w->job(ing, txn, w->job_arg);
        /* A job's own refusal (not found, invalid) leaves the txn usable. */
        return (w->job_rc == BSP_ESTORE || w->job_rc == BSP_ENOMEM) ? w->job_rc : BSP_OK;
    }
    for (size_t i = 0; i < w->count; i++) {
        bool dup;
        bsp_err rc = apply_event(ing, txn, &w->events[i], &dup);
        if (rc) return rc;
        if (dup)
            w->res.duplicates++;
        else
            w->res.accepted++;
    }
    return BSP_OK;
}

/* --- the writer thread ---------------------------------------------------- */

static void record_latency(bsp_ingest *ing, uint64_t us) {
    size_t b = 0;
    while (b < BSP_INGEST_LAT_BUCKETS && (double)us > bsp_ingest_lat_bounds_us[b])
        b++;
    atomic_fetch_add(&ing->m_lat[b], 1);
    atomic_fetch_add(&ing->m_lat_sum_us, us);
}

static void free_work(work *w) {
    for (size_t i = 0; i < w->count; i++)
        event_free(&w->events[i]);
    free(w->events);
    free(w);
}

/* Runs one transaction over the list of works; returns the outcome. */
static bsp_err commit_works(bsp_ingest *ing, work *list) {
    uint64_t t0 = bsp_mono_ns();
    bsp_txn *txn;
    bsp_err rc = store_txn_begin(ing->st, true, &txn);
    if (rc) return rc;
    for (work *w = list; w && !rc; w = w->next)
        rc = apply_work(ing, txn, w);
    if (!rc) rc = writer_flush(ing, txn);
    if (rc) {
        store_txn_abort(txn);
    } else {
        rc = store_txn_commit(txn);
    }
    if (rc) {
        pcache_clear(&ing->cache);
        ing->dirty_len = 0;
        atomic_fetch_add(&ing->m_failures, 1);
        bsp_error_log("ingest: transaction failed: %s", bsp_err_name(rc));
        return rc;
    }
    record_latency(ing, (bsp_mono_ns() - t0) / 1000);
    atomic_fetch_add(&ing->m_commits, 1);
    return BSP_OK;
}

/* Takes queued works up to commit_max events (at least one work). */
static work *take_batch(bsp_ingest *ing) {
    work *first = ing->head, *last = NULL;
    size_t events = 0;
    for (work *w = ing->head; w; w = w->next) {
        if (last && events + w->count > ing->commit_max) break;
        events += w->count;
        last = w;
    }
    ing->head = last->next;
    if (!ing->head) ing->tail = NULL;
    last->next = NULL;
    ing->queued_events -= events;
    return first;
}

static void finish_works(bsp_ingest *ing, work *list, bsp_err rc) {
    while (list) {
        work *next = list->next;
        list->res.code = rc ? rc : (list->kind == WORK_JOB ? list->job_rc : BSP_OK);
        if (rc)
            list->res.accepted = list->res.duplicates = 0;
        else {
            atomic_fetch_add(&ing->m_events, list->res.accepted);
            atomic_fetch_add(&ing->m_dups, list->res.duplicates);
        }
        if (list->done) list->done(list->done_ctx, &list->res);
        free_work(list);
        list = next;
    }
}

static void *writer_main(void *arg) {
    bsp_ingest *ing = arg;
    pthread_mutex_lock(&ing->mu);
    for (;;) {
        while (!ing->head && !ing->stopping)
            pthread_cond_wait(&ing->cv_work, &ing->mu);
        if (!ing->head) break; /* stopping and drained */
        work *batch = take_batch(ing);
        pthread_cond_broadcast(&ing->cv_room);
        pthread_mutex_unlock(&ing->mu);
        bsp_err rc = commit_works(ing, batch);
        finish_works(ing, batch, rc);
        pcache_evict(&ing->cache);
        pthread_mutex_lock(&ing->mu);
    }
    pthread_mutex_unlock(&ing->mu);
    return NULL;
}

/* --- the public face ------------------------------------------------------ */

bsp_err ingest_start(bsp_store *st, const bsp_ingest_opts *opts, bsp_ingest **out) {
    bsp_ingest *ing = calloc(1, sizeof *ing);
    if (!ing) return BSP_ENOMEM;
    ing->st = st;
    ing->queue_max = opts && opts->queue_max_events ? opts->queue_max_events : 200000;
    ing->commit_max = opts && opts->commit_max_events ? opts->commit_max_events : 20000;
    size_t cache = opts && opts->cache_profiles ? opts->cache_profiles : 100000;
    if (pcache_init(&ing->cache, cache)) {
        free(ing);
        return BSP_ENOMEM;
    }
    pthread_mutex_init(&ing->mu, NULL);
    pthread_cond_init(&ing->cv_work, NULL);
    pthread_cond_init(&ing->cv_room, NULL);
    if (pthread_create(&ing->writer, NULL, writer_main, ing) != 0) {
        pcache_free(&ing->cache);
        free(ing);
        return BSP_ENOMEM;
    }
    *out = ing;
    return BSP_OK;
}

void ingest_stop(bsp_ingest *ing) {
    if (!ing) return;
    pthread_mutex_lock(&ing->mu);
    ing->stopping = true;
    pthread_cond_broadcast(&ing->cv_work);
    pthread_cond_broadcast(&ing->cv_room);
    pthread_mutex_unlock(&ing->mu);
    pthread_join(ing->writer, NULL);
    pcache_free(&ing->cache);
    free(ing->dirty);
    pthread_mutex_destroy(&ing->mu);
    pthread_cond_destroy(&ing->cv_work);
    pthread_cond_destroy(&ing->cv_room);
    free(ing);
}

/* Appends w to the queue; wait: block for room instead of failing. */
static bsp_err enqueue(bsp_ingest *ing, work *w, bool wait) {
    pthread_mutex_lock(&ing->mu);
    while (wait && !ing->stopping && ing->queued_events > 0 &&
           ing->queued_events + w->count > ing->queue_max)
        pthread_cond_wait(&ing->cv_room, &ing->mu);
    bsp_err rc = BSP_OK;
    if (ing->stopping)
        rc = BSP_EUNAVAIL;
    else if (ing->queued_events + w->count > ing->queue_max && (!wait || ing->queued_events > 0))
        rc = BSP_EBUSY; /* a waiting submitter larger than the bound goes alone */
    if (!rc) {
        if (ing->tail)
            ing->tail->next = w;
        else
            ing->head = w;
        ing->tail = w;
        ing->queued_events += w->count;
        pthread_cond_signal(&ing->cv_work);
    }
    pthread_mutex_unlock(&ing->mu);
    return rc;
}

bsp_err ingest_submit(bsp_ingest *ing, bsp_event *events, size_t count, ingest_done_fn done,
                      void *ctx) {
    work *w = calloc(1, sizeof *w);
    if (!w) return BSP_ENOMEM;
    *w = (work){
        .kind = WORK_EVENTS, .events = events, .count = count, .done = done, .done_ctx = ctx};
    bsp_err rc = enqueue(ing, w, false);
    if (rc) free(w); /* the caller keeps the events */
    return rc;
}

/* A one-shot completion a caller can wait on. */
typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    bsp_ingest_result res;
} waiter;

static void waiter_done(void *ctx, const bsp_ingest_result *res) {
    waiter *wt = ctx;
    pthread_mutex_lock(&wt->mu);
    wt->res = *res;
    wt->done = true;
    pthread_cond_signal(&wt->cv);
    pthread_mutex_unlock(&wt->mu);
}

static bsp_err submit_and_wait(bsp_ingest *ing, work *w, bsp_ingest_result *res) {
    waiter wt = {.done = false};
    pthread_mutex_init(&wt.mu, NULL);
    pthread_cond_init(&wt.cv, NULL);
    w->done = waiter_done;
    w->done_ctx = &wt;
    bsp_err rc = enqueue(ing, w, true);
    if (rc) free(w); /* not queued: the caller keeps what w pointed at */
    if (!rc) {
        pthread_mutex_lock(&wt.mu);
        while (!wt.done)
            pthread_cond_wait(&wt.cv, &wt.mu);
        pthread_mutex_unlock(&wt.mu);
        rc = wt.res.code;
        if (res) *res = wt.res;
    }
    pthread_mutex_destroy(&wt.mu);
    pthread_cond_destroy(&wt.cv);
    return rc;
}

bsp_err ingest_submit_wait(bsp_ingest *ing, bsp_event *events, size_t count,
                           bsp_ingest_result *res) {
    work *w = calloc(1, sizeof *w);
    if (!w) return BSP_ENOMEM;
    *w = (work){.kind = WORK_EVENTS, .events = events, .count = count};
    return submit_and_wait(ing, w, res);
}

bsp_err ingest_run_job(bsp_ingest *ing, ingest_job_fn fn, void *arg) {
    work *w = calloc(1, sizeof *w);
    if (!w) return BSP_ENOMEM;
    *w = (work){.kind = WORK_JOB, .job = fn, .job_arg = arg};
    return submit_and_wait(ing, w, NULL);
}

void ingest_forget_profile(bsp_ingest *ing, uint64_t pid) {
    pcache_remove(&ing->cache, pid);
}

void ingest_metrics(bsp_ingest *ing, bsp_ingest_metrics *out) {
    memset(out, 0, sizeof *out);
    out->events_ingested = atomic_load(&ing->m_events);
    out->events_duplicate = atomic_load(&ing->m_dups);
    out->commits = atomic_load(&ing->m_commits);
    out->commit_failures = atomic_load(&ing->m_failures);
    pthread_mutex_lock(&ing->mu);
    out->queue_depth = ing->queued_events;
    pthread_mutex_unlock(&ing->mu);
    for (size_t i = 0; i <= BSP_INGEST_LAT_BUCKETS; i++)
        out->lat_counts[i] = atomic_load(&ing->m_lat[i]);
    out->lat_sum_us = (double)atomic_load(&ing->m_lat_sum_us);
}
