/* overlay.c - the read overlay: the writer's newest copy of the profiles
 * changed since the last checkpoints, so a decision made right after an event
 * was acknowledged sees that event, although profiles reach the store only
 * at checkpoints.
 *
 * A reader (ingest_profile_read) marks the pid as wanted and copies the
 * published bytes under a mutex held only for the lookup and the copy; it
 * never waits for a transaction. While anyone reads at all (a read in the
 * last OVERLAY_WANT_MS), the writer publishes, after each commit, the
 * storage form of every profile the commit changed: a profile nobody read
 * lately would otherwise be read from the store, which holds it only as of
 * the last checkpoint, and a decision right after its event would miss it.
 * A bulk load nobody reads from does not pay for the copies. Copies of
 * wanted pids are replaced commit after commit; any copy is dropped two
 * checkpoints after it was published: by then the store holds it, even for
 * a read transaction that began just before the first of those checkpoints. */
#include "ingest/ingest_internal.h"

#include <stdlib.h>
#include <string.h>

#define OVERLAY_BUCKETS 65536              /* a power of two */
#define OVERLAY_MAX_ENTRIES 1000000        /* pids remembered as wanted */
#define OVERLAY_MAX_UNASKED 65536          /* copies of pids nobody asked for (~200 MB) */
#define OVERLAY_WANT_MS (30LL * 60 * 1000) /* a visitor's page views within a session */
#define OVERLAY_ID_BUCKETS 65536           /* a power of two */

bsp_err overlay_init(overlay *o) {
    o->buckets = calloc(OVERLAY_BUCKETS, sizeof *o->buckets);
    o->id_buckets = calloc(OVERLAY_ID_BUCKETS, sizeof *o->id_buckets);
    o->id_count = 0;
    if (!o->buckets || !o->id_buckets) {
        free(o->buckets);
        free(o->id_buckets);
        o->buckets = NULL;
        o->id_buckets = NULL;
        return BSP_ENOMEM;
    }
    o->nbuckets = OVERLAY_BUCKETS;
    o->count = 0;
    o->unasked = 0;
    o->last_read_ms = 0;
    o->gen = 0;
    pthread_mutex_init(&o->mu, NULL);
    pthread_mutex_init(&o->id_mu, NULL);
    return BSP_OK;
}

void overlay_free(overlay *o) {
    if (!o->buckets) return;
    for (size_t i = 0; i < o->nbuckets; i++) {
        oentry *e = o->buckets[i];
        while (e) {
            oentry *next = e->next;
            free(e->json);
            free(e);
            e = next;
        }
    }
    free(o->buckets);
    o->buckets = NULL;
    for (size_t i = 0; i < OVERLAY_ID_BUCKETS; i++)
        overlay_ids_free(o->id_buckets[i]);
    free(o->id_buckets);
    o->id_buckets = NULL;
    pthread_mutex_destroy(&o->mu);
    pthread_mutex_destroy(&o->id_mu);
}

static oentry **slot_of(overlay *o, uint64_t pid) {
    oentry **slot = &o->buckets[bsp_hash64(&pid, sizeof pid) & (o->nbuckets - 1)];
    while (*slot && (*slot)->pid != pid)
        slot = &(*slot)->next;
    return slot;
}

/* The entry of pid marked as read now, entered if absent (NULL when the
 * table is full or memory is short). Called with mu held. */
static oentry *want(overlay *o, uint64_t pid) {
    oentry **slot = slot_of(o, pid);
    oentry *e = *slot;
    if (!e && o->count < OVERLAY_MAX_ENTRIES && (e = calloc(1, sizeof *e))) {
        e->pid = pid;
        *slot = e;
        o->count++;
    }
    if (e) {
        e->read_ms = bsp_now_ms();
        o->last_read_ms = e->read_ms;
        if (e->unasked) e->unasked = false, o->unasked--;
    }
    return e;
}

char *overlay_read(overlay *o, uint64_t pid, size_t *len) {
    char *copy = NULL;
    pthread_mutex_lock(&o->mu);
    oentry *e = want(o, pid);
    /* Older than two checkpoints: the store holds something as new. */
    if (e && e->json && e->gen + 2 > o->gen && (copy = malloc(e->len + 1))) {
        memcpy(copy, e->json, e->len);
        copy[e->len] = '\0';
        *len = e->len;
    }
    pthread_mutex_unlock(&o->mu);
    return copy;
}

void overlay_touch(overlay *o, uint64_t pid) {
    pthread_mutex_lock(&o->mu);
    want(o, pid);
    pthread_mutex_unlock(&o->mu);
}

bool overlay_readers_active(overlay *o, int64_t now_ms) {
    pthread_mutex_lock(&o->mu);
    bool active = o->last_read_ms && now_ms - o->last_read_ms < OVERLAY_WANT_MS;
    pthread_mutex_unlock(&o->mu);
    return active;
}

/* Whether a copy of pid would be kept: it has an entry (read lately, or
 * published since the last checkpoint), or there is room for one more. */
static bool has_room(overlay *o, oentry *e) {
    return e || (o->count < OVERLAY_MAX_ENTRIES && o->unasked < OVERLAY_MAX_UNASKED);
}

bool overlay_takes(overlay *o, uint64_t pid) {
    pthread_mutex_lock(&o->mu);
    bool takes = has_room(o, *slot_of(o, pid));
    pthread_mutex_unlock(&o->mu);
    return takes;
}

void overlay_publish(overlay *o, uint64_t pid, char *json, size_t len) {
    pthread_mutex_lock(&o->mu);
    oentry **slot = slot_of(o, pid);
    oentry *e = *slot;
    if (!e && has_room(o, e) && (e = calloc(1, sizeof *e))) {
        e->pid = pid; /* read_ms 0: not wanted, swept once the store holds it */
        e->unasked = true;
        *slot = e;
        o->count++;
        o->unasked++;
    }
    if (e) {
        free(e->json);
        e->json = json;
        e->len = len;
        e->gen = o->gen;
        json = NULL;
    }
    pthread_mutex_unlock(&o->mu);
    free(json);
}

/* Unlinks the published id links to pid or, when pid is 0, those older
 * than two checkpoints (the store holds them). A full pass: for checkpoints
 * and erasure, not for every merge. Called with id_mu held. */
static void sweep_ids(overlay *o, uint64_t pid) {
    for (size_t i = 0; o->id_count && i < OVERLAY_ID_BUCKETS; i++) {
        oid **slot = &o->id_buckets[i];
        while (*slot) {
            oid *l = *slot;
            if ((pid && l->pid == pid) || (!pid && l->gen + 2 <= o->gen)) {
                *slot = l->next;
                free(l);
                o->id_count--;
                continue;
            }
            slot = &l->next;
        }
    }
}

void overlay_forget_ids(overlay *o, uint64_t pid) {
    pthread_mutex_lock(&o->id_mu);
    if (pid) sweep_ids(o, pid);
    pthread_mutex_unlock(&o->id_mu);
}

void overlay_forget(overlay *o, uint64_t pid) {
    pthread_mutex_lock(&o->mu);
    oentry **slot = slot_of(o, pid);
    oentry *e = *slot;
    if (e) {
        *slot = e->next;
        if (e->unasked) o->unasked--;
        free(e->json);
        free(e);
        o->count--;
    }
    pthread_mutex_unlock(&o->mu);
}

/* Drops old copies; unlinks entries neither published nor read lately. */
static void sweep_bucket(overlay *o, oentry **slot, int64_t now_ms) {
    while (*slot) {
        oentry *e = *slot;
        if (e->json && e->gen + 2 <= o->gen) {
            free(e->json);
            e->json = NULL;
        }
        if (!e->json && now_ms - e->read_ms >= OVERLAY_WANT_MS) {
            *slot = e->next;
            if (e->unasked) o->unasked--;
            free(e);
            o->count--;
            continue;
        }
        slot = &e->next;
    }
}

void overlay_checkpointed(overlay *o, int64_t now_ms) {
    pthread_mutex_lock(&o->mu);
    o->gen++;
    /* A full sweep is cheap while few pids are wanted; with many, one
     * sixteenth of the table per checkpoint. */
    size_t step = o->count < 4096 ? 1 : 16;
    for (size_t i = o->gen % step; i < o->nbuckets; i += step)
        sweep_bucket(o, &o->buckets[i], now_ms);
    pthread_mutex_unlock(&o->mu);
    pthread_mutex_lock(&o->id_mu);
    sweep_ids(o, 0);
    pthread_mutex_unlock(&o->id_mu);
}

/* --- id links ------------------------------------------------------------- */

static uint64_t id_hash(char kind, const char *id) {
    return bsp_hash64(id, strlen(id)) ^ (uint64_t)(unsigned char)kind;
}

oid *overlay_id_new(char kind, const char *id, uint64_t pid) {
    size_t len = strlen(id);
    oid *l = malloc(sizeof *l + len + 1);
    if (!l) return NULL;
    *l = (oid){.hash = id_hash(kind, id), .pid = pid, .kind = kind};
    memcpy(l->id, id, len + 1);
    return l;
}

void overlay_ids_free(oid *list) {
    while (list) {
        oid *next = list->next;
        free(list);
        list = next;
    }
}

static oid **id_slot(overlay *o, uint64_t hash, char kind, const char *id) {
    oid **slot = &o->id_buckets[hash & (OVERLAY_ID_BUCKETS - 1)];
    while (*slot && !((*slot)->hash == hash && (*slot)->kind == kind && !strcmp((*slot)->id, id)))
        slot = &(*slot)->next;
    return slot;
}

void overlay_publish_ids(overlay *o, oid *list) {
    if (!list) return;
    /* The list is newest first: link oldest first so the newest wins. */
    oid *reversed = NULL;
    while (list) {
        oid *next = list->next;
        list->next = reversed;
        reversed = list;
        list = next;
    }
    pthread_mutex_lock(&o->id_mu);
    while (reversed) {
        oid *l = reversed;
        reversed = l->next;
        l->gen = o->gen;
        oid **slot = id_slot(o, l->hash, l->kind, l->id);
        if (*slot) {
            l->next = (*slot)->next;
            free(*slot);
        } else {
            l->next = NULL;
            o->id_count++;
        }
        *slot = l;
    }
    pthread_mutex_unlock(&o->id_mu);
}

bsp_err overlay_id_get(overlay *o, char kind, const char *id, uint64_t *pid) {
    if (!atomic_load(&o->id_count)) return BSP_ENOTFOUND; /* the common case: no lock */
    uint64_t hash = id_hash(kind, id);
    bsp_err rc = BSP_ENOTFOUND;
    pthread_mutex_lock(&o->id_mu);
    const oid *l = *id_slot(o, hash, kind, id);
    if (l) {
        *pid = l->pid;
        rc = BSP_OK;
    }
    pthread_mutex_unlock(&o->id_mu);
    return rc;
}

bsp_err ingest_resolve_fresh(bsp_ingest *ing, bsp_txn *txn, char kind, const char *id,
                             uint64_t *pid) {
    char other = kind == 'a' ? 'u' : 'a';
    if (kind != 'a') kind = 'u';
    bsp_err rc = overlay_id_get(&ing->over, kind, id, pid);
    if (rc == BSP_ENOTFOUND) rc = store_id_get(txn, kind, id, pid);
    if (rc == BSP_ENOTFOUND) rc = overlay_id_get(&ing->over, other, id, pid);
    if (rc == BSP_ENOTFOUND) rc = store_id_get(txn, other, id, pid);
    return rc;
}

/* Each reading thread's hold on the memoized profile it last peeked (the
 * memo itself, ing->memo, is shared), released when the thread ends. */
static pthread_key_t hold_key;
static pthread_once_t hold_once = PTHREAD_ONCE_INIT;

static void hold_destroy(void *h) {
    profile_hold_release(h);
    free(h);
}

static void hold_key_make(void) {
    pthread_key_create(&hold_key, hold_destroy);
}

static profile_hold *thread_hold(void) {
    pthread_once(&hold_once, hold_key_make);
    profile_hold *h = pthread_getspecific(hold_key);
    if (!h && (h = calloc(1, sizeof *h)) && pthread_setspecific(hold_key, h) != 0) {
        free(h);
        h = NULL;
    }
    return h;
}

/* The memo's profile of pid parsed from the overlay's copy or the store's
 * bytes; stamp (0: none) vouches for them when no commit came since mark. */
static bsp_err peek_stamped(bsp_ingest *ing, bsp_txn *rtxn, uint64_t pid, uint64_t stamp,
                            uint64_t mark, const bsp_profile **out) {
    *out = NULL;
    profile_hold *hold = thread_hold();
    if (!hold) return BSP_ENOMEM;
    size_t len = 0;
    char *copy = overlay_read(&ing->over, pid, &len);
    if (copy) {
        if (stamp && !fresh_unchanged_since(&ing->fresh, mark)) stamp = 0;
        bsp_err rc = profile_memo_parse(ing->memo, hold, pid, copy, len, stamp, out);
        free(copy);
        return rc;
    }
    bsp_slice raw;
    bsp_err rc = store_profile_get(rtxn, pid, &raw);
    if (rc) {
        profile_hold_release(hold);
        return rc;
    }
    if (stamp && !fresh_unchanged_since(&ing->fresh, mark)) stamp = 0;
    return profile_memo_parse(ing->memo, hold, pid, raw.data, raw.len, stamp, out);
}

bsp_err ingest_profile_peek(bsp_ingest *ing, bsp_txn *rtxn, uint64_t pid, const bsp_profile **out) {
    return peek_stamped(ing, rtxn, pid, 0, 0, out);
}

uint64_t ingest_read_mark(bsp_ingest *ing) {
    return fresh_mark(&ing->fresh);
}

/* Through a stamped id link: the parsed profile when its stamp is current
 * too (no store read at all), else the profile read as ingest_profile_peek
 * does, without resolving the id again. false when the link is not stamped,
 * or the profile is gone or does not list the id (the link is found by a
 * 64-bit hash): the caller then resolves the id itself. */
static bool visitor_by_link(bsp_ingest *ing, bsp_txn *rtxn, uint64_t mark, char kind,
                            const char *id, uint64_t id_hash, uint64_t *pid,
                            const bsp_profile **out) {
    bool touch;
    if (!fresh_id_get(&ing->fresh, kind, id_hash, bsp_now_ms(), pid, &touch)) return false;
    profile_hold *hold = thread_hold();
    if (!hold) return false;
    uint64_t stamp = fresh_stamp(&ing->fresh, fresh_pid_key(*pid));
    bool unread = profile_memo_peek(ing->memo, hold, *pid, stamp, out) == BSP_OK;
    if (!unread && peek_stamped(ing, rtxn, *pid, stamp, mark, out) != BSP_OK) return false;
    if (!profile_has_id(*out, id, id_hash)) {
        profile_hold_release(hold);
        *out = NULL;
        return false;
    }
    /* A read from the overlay or the store marked it as read already. */
    if (unread && touch) overlay_touch(&ing->over, *pid); /* the writer goes on publishing it */
    return true;
}

bsp_err ingest_visitor_peek(bsp_ingest *ing, bsp_txn *rtxn, uint64_t mark, char kind,
                            const char *id, uint64_t *pid, const bsp_profile **out) {
    *out = NULL;
    if (kind != 'a') kind = 'u';
    uint64_t id_hash = bsp_hash64(id, strlen(id));
    uint64_t id_stamp = fresh_stamp(&ing->fresh, fresh_id_key_hashed(id_hash));
    if (visitor_by_link(ing, rtxn, mark, kind, id, id_hash, pid, out)) return BSP_OK;
    *pid = 0;
    bsp_err rc = ingest_resolve_fresh(ing, rtxn, kind, id, pid);
    if (rc) return rc;
    if (fresh_unchanged_since(&ing->fresh, mark))
        fresh_id_put(&ing->fresh, kind, id_hash, *pid, id_stamp, bsp_now_ms());
    uint64_t stamp = fresh_stamp(&ing->fresh, fresh_pid_key(*pid));
    return peek_stamped(ing, rtxn, *pid, stamp, mark, out);
}

bsp_err ingest_profile_read(bsp_ingest *ing, bsp_txn *rtxn, uint64_t pid, bsp_profile **out) {
    *out = NULL;
    size_t len = 0;
    char *copy = overlay_read(&ing->over, pid, &len);
    if (copy) {
        bsp_err rc = profile_from_json(copy, len, out);
        free(copy);
        return rc;
    }
    bsp_slice raw;
    bsp_err rc = store_profile_get(rtxn, pid, &raw);
    if (rc) return rc;
    return profile_from_json(raw.data, raw.len, out);
}
