/* writer.c - the ingest queue and its one writer thread (group commit).
 *
 * Submitters append work to a bounded queue; the writer takes everything
 * waiting (up to commit_max events), appends it to the event log in one write
 * transaction, commits durably and only then calls the submitters back.
 * Profiles and timelines follow in checkpoints (log.c): when changes are
 * older than the checkpoint interval, when many events wait, when the writer
 * is idle, when a reader asks for them (ingest_sync), before a job, and on
 * stop. A failed transaction fails every item in it and rebuilds the
 * writer's state from the log, so no half-applied update survives. */
#include "ingest/ingest_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static void ingest_free(bsp_ingest *ing);

const double bsp_ingest_lat_bounds_us[BSP_INGEST_LAT_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000};

static bsp_err apply_work(bsp_ingest *ing, bsp_txn *txn, work *w, bool *checkpointed) {
    if (w->kind == WORK_JOB) {
        /* Jobs see and change stored state: bring it up to date first. */
        bsp_err rc = writer_touched_hooks(ing, txn);
        if (!rc) rc = writer_checkpoint(ing, txn);
        if (rc) return rc;
        *checkpointed = true;
        writer_forget_learnt(ing); /* the job may change products */
        w->job_rc = w->job(ing, txn, w->job_arg);
        writer_forget_ids(ing); /* the job may have deleted ids */
        /* A job's own refusal (not found, invalid) leaves the txn usable. */
        return (w->job_rc == BSP_ESTORE || w->job_rc == BSP_ENOMEM) ? w->job_rc : BSP_OK;
    }
    for (size_t i = 0; i < w->count; i++) {
        bool dup;
        bsp_err rc = writer_ingest_event(ing, txn, &w->events[i], &dup);
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
    free(w); /* the events are the submitter's */
}

/* The transaction a group is applied in: in write-ahead mode the one left
 * open since the last checkpoint (or a new one, kept open), else new. */
static bsp_err group_txn(bsp_ingest *ing, bsp_txn **out) {
    if (ing->open_txn) {
        *out = ing->open_txn;
        return BSP_OK;
    }
    bsp_err rc = store_txn_begin(ing->st, true, out);
    if (!rc && ing->wal_live) ing->open_txn = *out;
    return rc;
}

/* Makes an applied group durable: in write-ahead mode by its WAL records,
 * the transaction staying open; else (or when it holds a checkpoint) by
 * committing the transaction, which then also holds the records' events. */
/* Mirrors the WAL's mode and sync count for readers of the metrics. */
static void publish_wal_state(bsp_ingest *ing) {
    atomic_store_explicit(&ing->m_wal_direct, wal_is_direct(&ing->wal), memory_order_relaxed);
    atomic_store_explicit(&ing->m_wal_syncs, ing->wal.syncs, memory_order_relaxed);
}

/* Lazy mode: whether the answered, unsynced groups are due for their sync. */
static bool lazy_sync_due(const bsp_ingest *ing, uint64_t now_ns) {
    uint64_t due = wal_sync_due_ns(&ing->wal);
    return due && due <= now_ns;
}

static bsp_err group_durable(bsp_ingest *ing, bsp_txn *txn, bool checkpointed) {
    if (ing->open_txn && !checkpointed) {
        bsp_err rc = wal_flush(&ing->wal);
        publish_wal_state(ing);
        return rc;
    }
    ing->open_txn = NULL;
    wal_drop(&ing->wal);
    return store_txn_commit(txn);
}

/* Gives up the group's transaction after a failure. */
static void group_abandon(bsp_ingest *ing, bsp_txn *txn) {
    if (txn) store_txn_abort(txn);
    ing->open_txn = NULL;
    wal_drop(&ing->wal);
}

/* Rebuilds the writer's state from the store after a failure. Until a
 * rebuild succeeds the writer applies nothing: what it holds in memory may
 * be ahead of the store (acknowledged groups only the write-ahead file has)
 * or behind it, and a group applied on top would be numbered and stored
 * wrongly. Each later group, and each ingest_sync, tries again first. */
static bsp_err writer_rebuild(bsp_ingest *ing) {
    bsp_err rc = writer_recover(ing);
    atomic_store(&ing->unrecovered, rc != BSP_OK);
    if (rc == BSP_OK) return BSP_OK;
    bsp_error_log("ingest: rebuilding failed: %s; events are refused until a rebuild works",
                  bsp_err_name(rc));
    pthread_mutex_lock(&ing->mu);
    ing->rebuild_failures++;
    ing->rebuild_asks = 0; /* each waiter asked for one attempt: this was it */
    pthread_cond_broadcast(&ing->cv_synced);
    pthread_mutex_unlock(&ing->mu);
    return rc;
}

/* Whether a group is applied while its records are written: events only
 * (a job checkpoints), in write-ahead mode, where the WAL writes
 * asynchronously. */
static bool group_overlaps(const bsp_ingest *ing, const work *list) {
    if (!ing->wal_live || !wal_flush_async(&ing->wal)) return false;
    for (const work *w = list; w; w = w->next)
        if (w->kind == WORK_JOB) return false;
    return true;
}

static bsp_err group_seqs_reserve(bsp_ingest *ing, size_t n) {
    if (n <= ing->group_seqs_cap) return BSP_OK;
    uint64_t *grown = realloc(ing->group_seqs, n * sizeof *grown);
    if (!grown) return BSP_ENOMEM;
    ing->group_seqs = grown;
    ing->group_seqs_cap = n;
    return BSP_OK;
}

/* Logs every event of the group (de-duplicated, appended, its WAL record
 * staged), starts the records' write, then applies the events and runs the
 * hooks while the device writes, and waits for it: the write's latency, not
 * the sum of both, is what a waiting caller sees. A group that fails after
 * its write started is taken back out of the file. */
static bsp_err apply_overlapped(bsp_ingest *ing, bsp_txn *txn, work *list) {
    size_t n = 0, k = 0;
    for (work *w = list; w; w = w->next)
        n += w->count;
    bsp_err rc = group_seqs_reserve(ing, n);
    for (work *w = list; w && !rc; w = w->next)
        for (size_t i = 0; i < w->count && !rc; i++, k++)
            rc = writer_log_event(ing, txn, &w->events[i], &ing->group_seqs[k]);
    if (rc) return rc;
    wal_flush_start(&ing->wal);
    k = 0;
    for (work *w = list; w && !rc; w = w->next) {
        for (size_t i = 0; i < w->count && !rc; i++, k++) {
            uint64_t seq = ing->group_seqs[k];
            if (!seq) {
                w->res.duplicates++;
                continue;
            }
            w->res.accepted++;
            rc = writer_apply_event(ing, txn, &w->events[i], seq);
        }
    }
    if (!rc) rc = writer_touched_hooks(ing, txn);
    if (rc) {
        wal_flush_abandon(&ing->wal);
    } else {
        rc = wal_flush_wait(&ing->wal);
    }
    publish_wal_state(ing);
    return rc;
}

/* Runs one transaction over the list of works; returns the outcome. */
static bsp_err commit_works(bsp_ingest *ing, work *list) {
    uint64_t t0 = bsp_mono_ns();
    if (atomic_load(&ing->unrecovered) && writer_rebuild(ing) != BSP_OK) {
        atomic_fetch_add(&ing->m_failures, 1);
        return BSP_ESTORE;
    }
    bsp_txn *txn;
    bool checkpointed = false;
    bsp_err rc = group_txn(ing, &txn);
    if (rc) return rc;
    bool overlap = group_overlaps(ing, list);
    if (overlap) {
        rc = apply_overlapped(ing, txn, list);
    } else {
        for (work *w = list; w && !rc; w = w->next)
            rc = apply_work(ing, txn, w, &checkpointed);
        if (!rc) rc = writer_touched_hooks(ing, txn);
        /* A job's checkpoint must cover what later works of the batch did. */
        if (!rc && checkpointed) rc = writer_checkpoint(ing, txn);
    }
    if (rc)
        group_abandon(ing, txn);
    else if (!overlap && (rc = group_durable(ing, txn, checkpointed)) != BSP_OK)
        group_abandon(ing, ing->open_txn); /* a failed commit freed txn itself */
    if (rc) {
        writer_touched_drop(ing);
        atomic_fetch_add(&ing->m_failures, 1);
        bsp_error_log("ingest: transaction failed: %s; rebuilding from the log", bsp_err_name(rc));
        writer_rebuild(ing);
        /* To the callers a failed write or sync is the store's failure. */
        return rc == BSP_ENOMEM ? rc : BSP_ESTORE;
    }
    writer_touched_publish(ing);
    if (checkpointed) writer_checkpoint_done(ing);
    pthread_mutex_lock(&ing->mu);
    ing->committed_seq = ing->log_seq;
    pthread_mutex_unlock(&ing->mu);
    record_latency(ing, (bsp_mono_ns() - t0) / 1000);
    atomic_fetch_add(&ing->m_commits, 1);
    return BSP_OK;
}

/* A checkpoint of its own, when one is due; after a failed rebuild, a new
 * attempt (which checkpoints when it works). */
static void checkpoint_now(bsp_ingest *ing) {
    if (atomic_load(&ing->unrecovered)) {
        writer_rebuild(ing);
        return;
    }
    uint64_t t0 = bsp_mono_ns();
    bsp_txn *txn = ing->open_txn;
    ing->open_txn = NULL;
    bsp_err rc = txn ? BSP_OK : store_txn_begin(ing->st, true, &txn);
    if (!rc) rc = writer_checkpoint(ing, txn);
    if (!rc)
        rc = store_txn_commit(txn);
    else
        store_txn_abort(txn);
    if (!rc) {
        writer_checkpoint_done(ing);
        atomic_fetch_add(&ing->m_ckpt_us, (bsp_mono_ns() - t0) / 1000);
        return;
    }
    atomic_fetch_add(&ing->m_failures, 1);
    bsp_error_log("ingest: checkpoint failed: %s; rebuilding from the log", bsp_err_name(rc));
    writer_rebuild(ing);
}

/* Whether to checkpoint now; called with mu held. After a failed rebuild
 * only a new group or a reader come to ingest_sync since makes the writer
 * try again. */
static bool checkpoint_due(const bsp_ingest *ing, uint64_t now_ns) {
    if (atomic_load(&ing->unrecovered)) return ing->rebuild_asks && !ing->stopping;
    uint64_t pending = ing->log_seq - ing->ckpt_seq;
    if (pending == 0 && ing->links_len == 0) return false;
    if (ing->sync_waiters || ing->stopping || ing->ckpt_asap || pending >= ing->ckpt_max_events)
        return true;
    /* The first checkpoint after enough events to learn the event
     * dictionary from comes at once: every event before it is stored (and
     * written ahead) unpacked, at about six times the bytes. */
    if (ing->log_seq >= ing->dict_next_try && !store_event_packing(ing->st)) return true;
    return now_ns - ing->last_ckpt_ns >= ing->ckpt_interval_ns;
}

/* Takes queued works up to commit_max events (at least one work). */
static work *take_batch(bsp_ingest *ing) {
    work *first = ing->head, *last = NULL;
    if (!first) return NULL;
    size_t events = 0;
    for (work *w = ing->head; w; w = w->next) {
        if (last && events + w->count > ing->commit_max) break;
        events += w->count;
        last = w;
    }
    if (!last) return NULL; /* cannot happen: first is taken */
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

static void wait_for_work(bsp_ingest *ing) {
    while (!ing->head && !ing->stopping) {
        if (checkpoint_due(ing, bsp_mono_ns())) return;
        if (ing->log_seq == ing->ckpt_seq && ing->links_len == 0) {
            pthread_cond_wait(&ing->cv_work, &ing->mu);
            continue;
        }
        uint64_t due_ns = ing->last_ckpt_ns + ing->ckpt_interval_ns;
        if (lazy_sync_due(ing, bsp_mono_ns())) return;
        uint64_t sync_ns = wal_sync_due_ns(&ing->wal);
        if (sync_ns && sync_ns < due_ns) due_ns = sync_ns;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        uint64_t wait_ns = due_ns > bsp_mono_ns() ? due_ns - bsp_mono_ns() : 0;
        until.tv_sec += (time_t)(wait_ns / 1000000000u);
        until.tv_nsec += (long)(wait_ns % 1000000000u);
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&ing->cv_work, &ing->mu, &until);
    }
}

/* A transaction left open with nothing to checkpoint (its groups were all
 * duplicates) is committed, so it does not hold LMDB's writer lock while
 * the writer sleeps. Called with mu held. */
static void release_idle_txn(bsp_ingest *ing) {
    if (!ing->open_txn || checkpoint_due(ing, bsp_mono_ns()) || ing->log_seq != ing->ckpt_seq ||
        ing->links_len)
        return;
    bsp_txn *txn = ing->open_txn;
    ing->open_txn = NULL;
    if (store_txn_commit(txn) != BSP_OK) bsp_error_log("ingest: idle commit failed");
}

/* Lazy mode: syncs the groups already answered once the oldest is due. They
 * were answered, so a failed sync cannot fail them: a checkpoint follows at
 * once instead (it commits them to the store durably, or fails and rebuilds
 * from the log and the file's records). Called with mu held. */
static void sync_lazy_groups(bsp_ingest *ing) {
    pthread_mutex_unlock(&ing->mu);
    bsp_err rc = wal_sync(&ing->wal);
    publish_wal_state(ing);
    pthread_mutex_lock(&ing->mu);
    if (rc == BSP_OK) return;
    atomic_fetch_add(&ing->m_failures, 1);
    bsp_error_log("ingest: answered groups failed to sync; checkpointing them now");
    ing->ckpt_asap = true;
}

static void *writer_main(void *arg) {
    bsp_ingest *ing = arg;
    pthread_mutex_lock(&ing->mu);
    for (;;) {
        wait_for_work(ing);
        if (ing->head) {
            work *batch = take_batch(ing);
            pthread_cond_broadcast(&ing->cv_room);
            pthread_mutex_unlock(&ing->mu);
            bsp_err rc = commit_works(ing, batch);
            finish_works(ing, batch, rc);
            pthread_mutex_lock(&ing->mu);
        }
        if (lazy_sync_due(ing, bsp_mono_ns())) sync_lazy_groups(ing);
        if (checkpoint_due(ing, bsp_mono_ns())) {
            ing->ckpt_asap = false; /* one attempt; if it fails the interval retries */
            pthread_mutex_unlock(&ing->mu);
            checkpoint_now(ing);
            pcache_evict(&ing->cache);
            pthread_mutex_lock(&ing->mu);
        }
        if (ing->stopping && !ing->head && !checkpoint_due(ing, bsp_mono_ns())) break;
        if (!ing->head) release_idle_txn(ing);
    }
    /* Stopping with nothing left to checkpoint: only lookups can be open. */
    if (ing->open_txn && store_txn_commit(ing->open_txn) != BSP_OK)
        bsp_error_log("ingest: final commit failed");
    ing->open_txn = NULL;
    pthread_mutex_unlock(&ing->mu);
    return NULL;
}

bsp_err ingest_sync(bsp_ingest *ing) {
    pthread_mutex_lock(&ing->mu);
    uint64_t target = ing->committed_seq, failures = ing->rebuild_failures;
    ing->sync_waiters++;
    ing->rebuild_asks++;
    pthread_cond_signal(&ing->cv_work);
    while (ing->checkpointed_seq < target && !ing->stopping && ing->rebuild_failures == failures)
        pthread_cond_wait(&ing->cv_synced, &ing->mu);
    ing->sync_waiters--;
    bsp_err rc = ing->checkpointed_seq >= target     ? BSP_OK
                 : ing->rebuild_failures != failures ? BSP_ESTORE
                                                     : BSP_EUNAVAIL;
    pthread_mutex_unlock(&ing->mu);
    return rc;
}

/* --- the public face ------------------------------------------------------ */

bsp_err ingest_start(bsp_store *st, const bsp_ingest_opts *opts, bsp_ingest **out) {
    bsp_ingest *ing = calloc(1, sizeof *ing);
    if (!ing) return BSP_ENOMEM;
    ing->st = st;
    ing->dict_next_try = INGEST_DICT_EVENTS;
    ing->queue_max = opts && opts->queue_max_events ? opts->queue_max_events : 200000;
    ing->commit_max = opts && opts->commit_max_events ? opts->commit_max_events : 20000;
    uint64_t interval_ms = opts && opts->checkpoint_ms ? opts->checkpoint_ms : 1000;
    ing->ckpt_interval_ns = interval_ms * 1000000u;
    ing->ckpt_max_events = opts && opts->checkpoint_events ? opts->checkpoint_events : 200000;
    size_t cache = opts && opts->cache_profiles ? opts->cache_profiles : 100000;
    if (pcache_init(&ing->cache, cache)) {
        free(ing);
        return BSP_ENOMEM;
    }
    if (overlay_init(&ing->over)) {
        pcache_free(&ing->cache);
        free(ing);
        return BSP_ENOMEM;
    }
    size_t memo = opts && opts->memo_profiles ? opts->memo_profiles : INGEST_PEEK_MEMO_PROFILES;
    if (!(ing->memo = profile_memo_new(memo))) {
        overlay_free(&ing->over);
        pcache_free(&ing->cache);
        free(ing);
        return BSP_ENOMEM;
    }
    if (fresh_init(&ing->fresh, memo)) {
        profile_memo_free(ing->memo);
        overlay_free(&ing->over);
        pcache_free(&ing->cache);
        free(ing);
        return BSP_ENOMEM;
    }
    pthread_mutex_init(&ing->mu, NULL);
    pthread_cond_init(&ing->cv_work, NULL);
    pthread_cond_init(&ing->cv_room, NULL);
    pthread_cond_init(&ing->cv_synced, NULL);
    wal_init(&ing->wal);
    ing->write_ahead = opts && opts->write_ahead;
    ing->wal_buffered = opts && opts->wal_buffered;
    ing->wal_sync_ms = opts ? opts->wal_sync_ms : 0;
    if (ing->wal_sync_ms > INGEST_WAL_SYNC_MAX_MS) ing->wal_sync_ms = INGEST_WAL_SYNC_MAX_MS;
    if (opts && opts->hooks) ingest_set_hooks(ing, opts->hooks);
    bsp_err rc = writer_recover(ing);
    if (!rc && pthread_create(&ing->writer, NULL, writer_main, ing) != 0) rc = BSP_ENOMEM;
    if (rc) {
        ingest_free(ing);
        return rc;
    }
    *out = ing;
    return BSP_OK;
}

static void ingest_free(bsp_ingest *ing) {
    wal_close(&ing->wal);
    pcache_free(&ing->cache);
    free(ing->dirty);
    free(ing->links);
    free(ing->learnt);
    free(ing->id_memo);
    free(ing->touched);
    free(ing->group_seqs);
    free(ing->stale);
    overlay_free(&ing->over);
    profile_memo_free(ing->memo);
    fresh_free(&ing->fresh);
    pthread_mutex_destroy(&ing->mu);
    pthread_cond_destroy(&ing->cv_work);
    pthread_cond_destroy(&ing->cv_room);
    pthread_cond_destroy(&ing->cv_synced);
    free(ing);
}

void ingest_stop(bsp_ingest *ing) {
    if (!ing) return;
    pthread_mutex_lock(&ing->mu);
    ing->stopping = true;
    pthread_cond_broadcast(&ing->cv_work);
    pthread_cond_broadcast(&ing->cv_room);
    pthread_cond_broadcast(&ing->cv_synced);
    pthread_mutex_unlock(&ing->mu);
    pthread_join(ing->writer, NULL);
    ingest_free(ing);
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

/* --- packing on the submitting thread ----------------------------------- */

#define FRAME_TEXT_MAX (64 * 1024) /* text bytes a shared frame holds, at most */

static bool same_id(const char *a, const char *b) {
    if (!a || !*a) return !b || !*b;
    return b && strcmp(a, b) == 0;
}

static bool same_visitor(const bsp_event *a, const bsp_event *b) {
    return same_id(a->anonymous_id, b->anonymous_id) && same_id(a->user_id, b->user_id);
}

static uint64_t visitor_hash(const bsp_event *ev) {
    const char *a = ev->anonymous_id && *ev->anonymous_id ? ev->anonymous_id : "";
    const char *u = ev->user_id && *ev->user_id ? ev->user_id : "";
    return bsp_hash64(a, strlen(a)) ^ (bsp_hash64(u, strlen(u)) * 0x9e3779b97f4a7c15u);
}

static bool frame_candidate(const bsp_event *ev) {
    return ev->text && !ev->packed && !ev->frame && ev->text_len <= FRAME_TEXT_MAX;
}

/* One frame of members[0, n) (n >= 2); on failure they stay unframed and
 * are packed alone. */
static void pack_frame(bsp_ingest *ing, bsp_event *events, const size_t *members, size_t n) {
    const char *texts[STORE_FRAME_EVENTS_MAX];
    size_t lens[STORE_FRAME_EVENTS_MAX];
    for (size_t k = 0; k < n; k++) {
        texts[k] = events[members[k]].text;
        lens[k] = events[members[k]].text_len;
    }
    bsp_event_frame *f = calloc(1, sizeof *f);
    if (!f) return;
    if (store_event_pack_frame(ing->st, texts, lens, n, &f->bytes, &f->len) != BSP_OK) {
        free(f);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        bsp_event *ev = &events[members[k]];
        ev->frame = f;
        ev->frame_index = (uint32_t)k;
        ev->frame_owner = k == 0;
    }
}

/* The events of each visitor (same anonymousId and userId) packed together,
 * in frames of at most STORE_FRAME_EVENTS_MAX events and FRAME_TEXT_MAX
 * bytes, in the order they came. The members of a frame resolve to one
 * profile, now and after any merge, as the store's frames require: the
 * same ids resolve alike, and merges only join profiles. */
static void pack_by_visitor(bsp_ingest *ing, bsp_event *events, size_t count) {
    size_t slots = 16;
    while (slots < 2 * count)
        slots *= 2;
    size_t *head = malloc(slots * sizeof *head), *next = malloc(count * sizeof *next);
    size_t *tail = malloc(slots * sizeof *tail);
    if (!head || !next || !tail) goto done;
    for (size_t s = 0; s < slots; s++)
        head[s] = SIZE_MAX;
    /* Chains of each visitor's events, first to last, by slot. */
    for (size_t i = 0; i < count; i++) {
        next[i] = SIZE_MAX;
        if (!frame_candidate(&events[i])) continue;
        size_t s = visitor_hash(&events[i]) & (slots - 1);
        while (head[s] != SIZE_MAX && !same_visitor(&events[head[s]], &events[i]))
            s = (s + 1) & (slots - 1);
        if (head[s] == SIZE_MAX)
            head[s] = i;
        else
            next[tail[s]] = i;
        tail[s] = i;
    }
    size_t members[STORE_FRAME_EVENTS_MAX];
    for (size_t s = 0; s < slots; s++) {
        size_t n = 0, bytes = 0;
        for (size_t i = head[s]; i != SIZE_MAX; i = next[i]) {
            if (n == STORE_FRAME_EVENTS_MAX || bytes + events[i].text_len > FRAME_TEXT_MAX) {
                if (n >= 2) pack_frame(ing, events, members, n);
                n = bytes = 0;
            }
            members[n++] = i;
            bytes += events[i].text_len;
        }
        if (n >= 2) pack_frame(ing, events, members, n);
    }
done:
    free(head);
    free(next);
    free(tail);
}

/* Work done on the submitting thread, so that the writer, which every
 * event waits for, does less: the texts packed for the log (the writer only
 * copies the smaller bytes), each visitor's events together, and the hash
 * of the product facts each event teaches the catalog (the writer only
 * looks it up). Without a dictionary yet, or short of memory, an event is
 * stored as its text. */
static void prepare_events(bsp_ingest *ing, bsp_event *events, size_t count) {
    bool packing = store_event_packing(ing->st);
    for (size_t i = 0; i < count; i++) {
        bsp_event *ev = &events[i];
        if (!ev->facts_known) {
            ev->facts = catalog_event_facts(ev);
            ev->facts_known = true;
        }
    }
    if (!packing) return;
    if (count >= 2) pack_by_visitor(ing, events, count);
    for (size_t i = 0; i < count; i++) {
        bsp_event *ev = &events[i];
        if (!ev->packed && !ev->frame && ev->text)
            store_event_pack(ing->st, ev->text, ev->text_len, &ev->packed, &ev->packed_len);
    }
}

bsp_err ingest_submit(bsp_ingest *ing, bsp_event *events, size_t count, ingest_done_fn done,
                      void *ctx) {
    prepare_events(ing, events, count);
    work *w = calloc(1, sizeof *w);
    if (!w) return BSP_ENOMEM;
    *w = (work){
        .kind = WORK_EVENTS, .events = events, .count = count, .done = done, .done_ctx = ctx};
    bsp_err rc = enqueue(ing, w, false);
    if (rc) free(w);
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
    /* wt outlives w: this function returns only after the writer called back. */
    // cppcheck-suppress autoVariables
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
    prepare_events(ing, events, count);
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
    overlay_forget(&ing->over, pid);
    profile_memo_forget(ing->memo, pid);
    writer_stale(ing, fresh_pid_key(pid));
}

void ingest_metrics(bsp_ingest *ing, bsp_ingest_metrics *out) {
    memset(out, 0, sizeof *out);
    out->events_ingested = atomic_load(&ing->m_events);
    out->events_duplicate = atomic_load(&ing->m_dups);
    out->commits = atomic_load(&ing->m_commits);
    out->commit_failures = atomic_load(&ing->m_failures);
    out->checkpoints = atomic_load(&ing->m_checkpoints);
    out->checkpoint_us = atomic_load(&ing->m_ckpt_us);
    out->wal_direct = atomic_load(&ing->m_wal_direct);
    out->wal_syncs = atomic_load(&ing->m_wal_syncs);
    profile_memo_stats(ing->memo, &out->memo_hits, &out->memo_misses, &out->memo_held,
                       &out->memo_stamped);
    pthread_mutex_lock(&ing->mu);
    out->queue_depth = ing->queued_events;
    pthread_mutex_unlock(&ing->mu);
    for (size_t i = 0; i <= BSP_INGEST_LAT_BUCKETS; i++)
        out->lat_counts[i] = atomic_load(&ing->m_lat[i]);
    out->lat_sum_us = (double)atomic_load(&ing->m_lat_sum_us);
}
