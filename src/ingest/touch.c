/* touch.c - what the writer tells the rest of Bespoke about the profiles a
 * transaction changed: the hooks (segment membership re-evaluates only the
 * profiles and segments the events touched) and the read overlay (readers
 * that must not wait, such as decisions, see the change right after the
 * commit instead of after the next checkpoint). */
#include "ingest/ingest_internal.h"

#include <stdlib.h>
#include <string.h>

uint64_t ingest_name_bit(const char *event_name) {
    return 1ull << (bsp_hash64(event_name, strlen(event_name)) & 63);
}

void ingest_set_hooks(bsp_ingest *ing, const ingest_hooks *hooks) {
    ing->has_hooks = hooks != NULL;
    ing->hooks = hooks ? *hooks : (ingest_hooks){0};
}

bsp_err writer_touch(bsp_ingest *ing, pentry *e, const ingest_touch *touch) {
    e->touch.flags |= touch->flags;
    e->touch.names |= touch->names;
    e->touch.computed |= touch->computed;
    if (e->touched) return BSP_OK;
    if (ing->touched_len == ing->touched_cap) {
        size_t cap = ing->touched_cap ? ing->touched_cap * 2 : 256;
        uint64_t *grown = realloc(ing->touched, cap * sizeof *grown);
        if (!grown) return BSP_ENOMEM;
        ing->touched = grown;
        ing->touched_cap = cap;
    }
    ing->touched[ing->touched_len++] = e->pid;
    e->touched = true;
    return BSP_OK;
}

bsp_err writer_touched_hooks(bsp_ingest *ing, bsp_txn *txn) {
    if (!ing->has_hooks || !ing->hooks.profile_changed) return BSP_OK;
    for (size_t i = 0; i < ing->touched_len; i++) {
        pentry *e = pcache_get(&ing->cache, ing->touched[i]);
        if (!e || !e->touch.flags) continue; /* merged away, or already seen */
        bsp_err rc = ing->hooks.profile_changed(ing->hooks.ctx, txn, e->profile, &e->touch);
        if (rc) return rc;
        e->touch = (ingest_touch){0};
    }
    return BSP_OK;
}

/* While anyone reads, every profile the commit changed: a visitor nobody read
 * lately would otherwise read the store, which holds the profile only as of
 * the last checkpoint, and miss the event just acknowledged. While nobody
 * reads (a bulk load), nothing: nobody is waiting for the copies. */
static void publish_one(bsp_ingest *ing, pentry *e, bool readers) {
    if (!readers || !overlay_takes(&ing->over, e->pid)) return;
    bsp_buf text = {0};
    if (profile_to_json(e->profile, &text) == BSP_OK && text.data) {
        overlay_publish(&ing->over, e->pid, text.data, text.len); /* takes the bytes */
        return;
    }
    bsp_buf_free(&text);
}

void writer_touched_publish(bsp_ingest *ing) {
    fresh_committed(&ing->fresh);
    int64_t now_ms = bsp_now_ms();
    bool readers = ing->touched_len && overlay_readers_active(&ing->over, now_ms);
    for (size_t i = 0; i < ing->touched_len; i++) {
        pentry *e = pcache_get(&ing->cache, ing->touched[i]);
        if (!e) continue;
        e->touched = false;
        e->touch = (ingest_touch){0};
        publish_one(ing, e, readers);
        fresh_bump(&ing->fresh, fresh_pid_key(e->pid));
    }
    ing->touched_len = 0;
    overlay_publish_ids(&ing->over, ing->new_ids);
    ing->new_ids = NULL;
    writer_stale_published(ing);
    if (ing->has_hooks && ing->hooks.committed) ing->hooks.committed(ing->hooks.ctx);
}

void writer_touched_drop(bsp_ingest *ing) {
    for (size_t i = 0; i < ing->touched_len; i++) {
        pentry *e = pcache_get(&ing->cache, ing->touched[i]);
        if (e) e->touched = false, e->touch = (ingest_touch){0};
    }
    ing->touched_len = 0;
    overlay_ids_free(ing->new_ids);
    ing->new_ids = NULL;
    if (ing->has_hooks && ing->hooks.aborted) ing->hooks.aborted(ing->hooks.ctx);
}

/* --- freshness stamps ------------------------------------------------------ */

void writer_stale(bsp_ingest *ing, uint32_t key) {
    if (ing->stale_len == ing->stale_cap) {
        size_t cap = ing->stale_cap ? ing->stale_cap * 2 : 1024;
        uint32_t *grown = realloc(ing->stale, cap * sizeof *grown);
        if (!grown) {
            ing->stale_lost = true;
            return;
        }
        ing->stale = grown;
        ing->stale_cap = cap;
    }
    ing->stale[ing->stale_len++] = key;
}

static void stale_bump(bsp_ingest *ing, size_t from) {
    if (ing->stale_lost) {
        fresh_bump_all(&ing->fresh);
        return;
    }
    for (size_t i = from; i < ing->stale_len; i++)
        fresh_bump(&ing->fresh, ing->stale[i]);
}

void writer_stale_published(bsp_ingest *ing) {
    stale_bump(ing, ing->stale_published);
    ing->stale_published = ing->stale_len;
}

void writer_stale_stored(bsp_ingest *ing) {
    stale_bump(ing, 0);
    ing->stale_len = ing->stale_published = 0;
    ing->stale_lost = false;
}

/* --- jobs that change profiles -------------------------------------------- */

bsp_err ingest_job_profile(bsp_ingest *ing, bsp_txn *txn, uint64_t pid, bsp_profile **out) {
    bsp_slice raw;
    if (!pcache_get(&ing->cache, pid) && store_profile_get(txn, pid, &raw) == BSP_ENOTFOUND)
        return BSP_ENOTFOUND;
    pentry *e;
    bsp_err rc = writer_profile(ing, txn, pid, &e);
    if (rc) return rc;
    *out = e->profile;
    return BSP_OK;
}

bsp_err ingest_job_profile_changed(bsp_ingest *ing, uint64_t pid) {
    pentry *e = pcache_get(&ing->cache, pid);
    if (!e) return BSP_ENOTFOUND;
    bsp_err rc = writer_mark_dirty(ing, e);
    if (!rc && !e->touched) rc = writer_touch(ing, e, &(ingest_touch){0});
    return rc;
}
