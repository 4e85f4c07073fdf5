/* registry.c - the current campaign snapshot and the coupon worker.
 *
 * Reload (admin thread, serialized by reload_mu): close the coupon pools of
 * the current snapshot, let the worker flush their journals and releases,
 * build the new snapshot from one read transaction, reserve the first block
 * of each new pool, publish it (swap.c), wait for the old snapshot's
 * readers, free it.
 *
 * The worker thread writes what decisions must not wait for: visitor
 * assignments (journal) and released reservations, in one ingest job a
 * round, and reserves the next block of pools that run low. */
#include "campaign/campaign_internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WORKER_TICK_MS 100

/* --- queues (called by pools under their mutex; never block on I/O) ------------------- */

void registry_journal(campaign_registry *reg, const char *campaign, const char *code,
                      uint64_t visitor) {
    pthread_mutex_lock(&reg->jmu);
    if (record_push(&reg->journal, campaign, code, visitor) != BSP_OK)
        bsp_warn("coupons of %s: out of memory journaling an assignment", campaign);
    pthread_cond_signal(&reg->jcv);
    pthread_mutex_unlock(&reg->jmu);
}

void registry_release(campaign_registry *reg, const char *campaign, const char *code) {
    pthread_mutex_lock(&reg->jmu);
    if (record_push(&reg->release, campaign, code, 0) != BSP_OK)
        bsp_warn("coupons of %s: out of memory releasing a code", campaign);
    pthread_cond_signal(&reg->jcv);
    pthread_mutex_unlock(&reg->jmu);
}

void registry_want_refill(campaign_registry *reg) {
    pthread_mutex_lock(&reg->jmu);
    reg->refill = true;
    pthread_cond_signal(&reg->jcv);
    pthread_mutex_unlock(&reg->jmu);
}

/* --- the worker ------------------------------------------------------------------------- */

static void refill_pools(campaign_registry *reg) {
    unsigned slot = swap_enter(&reg->swap);
    campaign_set *set = swap_get(&reg->swap);
    for (size_t i = 0; set && i < set->campaign_count; i++) {
        coupon_pool *pool = set->campaigns[i].pool;
        if (pool && coupon_pool_wants_refill(pool)) coupon_pool_reserve(pool);
    }
    swap_leave(&reg->swap, slot);
}

static void wait_for_work(campaign_registry *reg) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += WORKER_TICK_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (!reg->stop && !reg->refill && !reg->journal.count && !reg->release.count &&
           reg->flush_asked == reg->flush_done)
        if (pthread_cond_timedwait(&reg->jcv, &reg->jmu, &until) != 0) break;
}

/* One round: write what is queued, refill. Returns with jmu held. */
static void worker_round(campaign_registry *reg, uint64_t *flush_seen) {
    record_list journal = reg->journal, release = reg->release;
    bool refill = reg->refill;
    memset(&reg->journal, 0, sizeof reg->journal);
    memset(&reg->release, 0, sizeof reg->release);
    reg->refill = false;
    *flush_seen = reg->flush_asked;
    pthread_mutex_unlock(&reg->jmu);
    if (journal.count || release.count) {
        bsp_err rc = coupon_records_write(reg->ing, &journal, &release);
        if (rc != BSP_OK)
            bsp_warn("coupons: could not write %zu assignments and %zu releases (%s)",
                     journal.count, release.count, bsp_err_name(rc));
    }
    free(journal.items);
    free(release.items);
    if (refill) refill_pools(reg);
    pthread_mutex_lock(&reg->jmu);
}

static void *worker_main(void *arg) {
    campaign_registry *reg = arg;
    pthread_mutex_lock(&reg->jmu);
    for (;;) {
        wait_for_work(reg);
        uint64_t flush_seen = 0;
        worker_round(reg, &flush_seen);
        bool idle = !reg->journal.count && !reg->release.count && !reg->refill;
        if (idle && flush_seen != reg->flush_done) {
            reg->flush_done = flush_seen;
            pthread_cond_broadcast(&reg->flush_cv);
        }
        if (reg->stop && idle && reg->flush_done == reg->flush_asked) break;
    }
    pthread_mutex_unlock(&reg->jmu);
    return NULL;
}

/* Waits until everything queued before the call is written. */
static void worker_flush(campaign_registry *reg) {
    pthread_mutex_lock(&reg->jmu);
    uint64_t ticket = ++reg->flush_asked;
    pthread_cond_signal(&reg->jcv);
    while (reg->worker_running && reg->flush_done < ticket)
        pthread_cond_wait(&reg->flush_cv, &reg->jmu);
    pthread_mutex_unlock(&reg->jmu);
}

/* --- snapshots ---------------------------------------------------------------------------- */

static void close_pools(campaign_set *set) {
    for (size_t i = 0; set && i < set->campaign_count; i++)
        if (set->campaigns[i].pool) coupon_pool_close(set->campaigns[i].pool);
}

static bsp_err build(campaign_registry *reg, campaign_set **out) {
    bsp_txn *txn = NULL;
    bsp_err rc = store_txn_begin(reg->st, false, &txn);
    if (rc != BSP_OK) return rc;
    rc = campaign_set_build(reg, txn, out);
    store_txn_abort(txn);
    if (rc != BSP_OK) return rc;
    for (size_t i = 0; i < (*out)->campaign_count; i++)
        if ((*out)->campaigns[i].pool) coupon_pool_reserve((*out)->campaigns[i].pool);
    (*out)->version = ++reg->version;
    static _Atomic uint64_t serials;
    (*out)->serial = atomic_fetch_add(&serials, 1) + 1;
    return BSP_OK;
}

bsp_err campaign_registry_reload(campaign_registry *reg) {
    pthread_mutex_lock(&reg->reload_mu);
    campaign_set *old = swap_get(&reg->swap);
    close_pools(old);
    worker_flush(reg);
    campaign_set *set = NULL;
    bsp_err rc = build(reg, &set);
    if (rc == BSP_OK) {
        old = swap_publish(&reg->swap, set);
        campaign_set_free(old);
        /* did()/count()/sum() of campaign conditions need the profiles to
         * keep those events; the segment registry unites every owner's. */
        if (segment_watch_names("campaigns", set->event_names, set->event_name_count) != BSP_OK)
            bsp_warn("campaigns: could not update the watched event names");
        bsp_info("campaigns: %zu active over %zu placements (version %llu)", set->campaign_count,
                 set->placement_count, (unsigned long long)set->version);
    } else {
        bsp_error_log("campaigns: could not load (%s); keeping the previous set", bsp_err_name(rc));
    }
    pthread_mutex_unlock(&reg->reload_mu);
    return rc;
}

const campaign_set *campaign_acquire(campaign_registry *reg, unsigned *slot) {
    *slot = swap_enter(&reg->swap);
    return swap_get(&reg->swap);
}

void campaign_release(campaign_registry *reg, unsigned slot) {
    swap_leave(&reg->swap, slot);
}

/* --- life ------------------------------------------------------------------------------------ */

bsp_err campaign_registry_start(bsp_store *st, bsp_ingest *ing, campaign_registry **out) {
    campaign_registry *reg = calloc(1, sizeof *reg);
    if (!reg) return BSP_ENOMEM;
    reg->st = st;
    reg->ing = ing;
    swap_init(&reg->swap, NULL);
    pthread_mutex_init(&reg->reload_mu, NULL);
    pthread_mutex_init(&reg->jmu, NULL);
    pthread_cond_init(&reg->jcv, NULL);
    pthread_cond_init(&reg->flush_cv, NULL);
    if (pthread_create(&reg->worker, NULL, worker_main, reg) != 0) {
        campaign_registry_free(reg);
        return BSP_ENOMEM;
    }
    reg->worker_running = true;
    bsp_err rc = campaign_registry_reload(reg);
    if (rc != BSP_OK) {
        campaign_registry_stop(reg);
        campaign_registry_free(reg);
        return rc;
    }
    *out = reg;
    return BSP_OK;
}

void campaign_registry_stop(campaign_registry *reg) {
    if (!reg || !reg->worker_running) return;
    pthread_mutex_lock(&reg->reload_mu);
    close_pools(swap_get(&reg->swap));
    pthread_mutex_unlock(&reg->reload_mu);
    worker_flush(reg);
    pthread_mutex_lock(&reg->jmu);
    reg->stop = true;
    pthread_cond_signal(&reg->jcv);
    pthread_mutex_unlock(&reg->jmu);
    pthread_join(reg->worker, NULL);
    reg->worker_running = false;
}

void campaign_registry_free(campaign_registry *reg) {
    if (!reg) return;
    campaign_registry_stop(reg);
    campaign_set_free(swap_get(&reg->swap));
    free(reg->journal.items);
    free(reg->release.items);
    pthread_mutex_destroy(&reg->reload_mu);
    pthread_mutex_destroy(&reg->jmu);
    pthread_cond_destroy(&reg->jcv);
    pthread_cond_destroy(&reg->flush_cv);
    free(reg);
}
