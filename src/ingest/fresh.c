/* fresh.c - freshness stamps, so a reader can trust what it parsed before
 * without reading the store again.
 *
 * A decision reads a visitor's id link and profile: two B-tree look-ups in
 * a store of millions, then a hash of the profile's bytes to find its
 * parsed copy in the memo. Most visitors' profiles have not changed since
 * their last decision; these stamps let the reader know that.
 *
 * The stamps are FRESH_STAMPS counters; a pid and an id (either kind) each
 * hash to one. The writer adds one to a key's counter after every change
 * to that key became readable: after a group is published (the profiles
 * its events touched, the ids it linked) and after a checkpoint committed
 * (every profile it stored, erased or merged away). A reader takes a
 * counter's value before it reads a key; if the value is still current
 * later, nothing about the key became readable since, so what it read then
 * is what it would read now. Two keys sharing a counter only cost an extra
 * read.
 *
 * The store's snapshot is the catch: a read transaction begun before a
 * commit shows the older bytes even after the counter moved on. So the
 * writer also counts commits (gen), first thing after each, and a reader
 * stamps nothing when a commit came between the mark it took before
 * beginning its transaction and its reads (ingest_read_mark).
 *
 * Stamped id links are kept here (sets of FRESH_ID_WAYS by id hash); stamped
 * profiles in the memo (memo.c). A reader answered from them still marks the
 * pid as read in the overlay now and then (FRESH_TOUCH_MS), so the writer
 * goes on publishing the visitor's changes. */
#include "ingest/ingest_internal.h"

#include <stdlib.h>
#include <string.h>

#define FRESH_LOCKS 256        /* mutex stripes over the id sets, a power of two */
#define FRESH_TOUCH_MS 60000LL /* how often a stamped read marks its pid as read */

bsp_err fresh_init(fresh *f, size_t visitors) {
    memset(f, 0, sizeof *f);
    size_t sets = 4;
    while (sets * FRESH_ID_WAYS < visitors && sets < ((size_t)1 << 22))
        sets <<= 1;
    f->stamps = malloc(FRESH_STAMPS * sizeof *f->stamps);
    f->ids = calloc(sets, sizeof *f->ids);
    if (!f->stamps || !f->ids) {
        free(f->stamps);
        free(f->ids);
        f->stamps = NULL;
        f->ids = NULL;
        return BSP_ENOMEM;
    }
    for (size_t i = 0; i < FRESH_STAMPS; i++)
        atomic_init(&f->stamps[i], 1); /* 0 means "no stamp" to the memo */
    f->id_mask = sets - 1;
    atomic_init(&f->gen, 0);
    for (size_t i = 0; i < FRESH_LOCKS; i++)
        pthread_mutex_init(&f->locks[i], NULL);
    return BSP_OK;
}

void fresh_free(fresh *f) {
    if (!f->stamps) return;
    for (size_t i = 0; i < FRESH_LOCKS; i++)
        pthread_mutex_destroy(&f->locks[i]);
    free(f->stamps);
    free(f->ids);
    f->stamps = NULL;
    f->ids = NULL;
}

uint32_t fresh_pid_key(uint64_t pid) {
    return (uint32_t)(bsp_hash64(&pid, sizeof pid) & (FRESH_STAMPS - 1));
}

uint32_t fresh_id_key(const char *id) {
    return fresh_id_key_hashed(bsp_hash64(id, strlen(id)));
}

uint32_t fresh_id_key_hashed(uint64_t id_hash) {
    return (uint32_t)(id_hash & (FRESH_STAMPS - 1));
}

uint64_t fresh_stamp(fresh *f, uint32_t key) {
    return atomic_load(&f->stamps[key]);
}

void fresh_bump(fresh *f, uint32_t key) {
    atomic_fetch_add(&f->stamps[key], 1);
}

void fresh_bump_all(fresh *f) {
    atomic_fetch_add(&f->gen, 1);
    for (size_t i = 0; i < FRESH_STAMPS; i++)
        atomic_fetch_add_explicit(&f->stamps[i], 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
}

void fresh_committed(fresh *f) {
    atomic_fetch_add(&f->gen, 1);
}

uint64_t fresh_mark(fresh *f) {
    return atomic_load(&f->gen);
}

bool fresh_unchanged_since(fresh *f, uint64_t mark) {
    return atomic_load(&f->gen) == mark;
}

/* --- stamped id links ----------------------------------------------------- */

static uint64_t link_hash(char kind, uint64_t id_hash) {
    return id_hash ^ ((uint64_t)(unsigned char)kind << 56);
}

static pthread_mutex_t *set_lock(fresh *f, size_t at) {
    return &f->locks[at & (FRESH_LOCKS - 1)];
}

bool fresh_id_get(fresh *f, char kind, uint64_t id_hash, int64_t now_ms, uint64_t *pid,
                  bool *touch) {
    uint64_t hash = link_hash(kind, id_hash);
    uint64_t stamp = fresh_stamp(f, fresh_id_key_hashed(id_hash));
    size_t at = hash & f->id_mask;
    fresh_id_set *set = &f->ids[at];
    bool found = false;
    *touch = false;
    pthread_mutex_lock(set_lock(f, at));
    for (int w = 0; w < FRESH_ID_WAYS; w++) {
        fresh_id *l = &set->ways[w];
        if (l->stamp != stamp || l->hash != hash || l->kind != kind) continue;
        *pid = l->pid;
        if (now_ms - l->touched_ms >= FRESH_TOUCH_MS) {
            l->touched_ms = now_ms;
            *touch = true;
        }
        found = true;
        break;
    }
    pthread_mutex_unlock(set_lock(f, at));
    return found;
}

void fresh_id_put(fresh *f, char kind, uint64_t id_hash, uint64_t pid, uint64_t stamp,
                  int64_t now_ms) {
    uint64_t hash = link_hash(kind, id_hash);
    size_t at = hash & f->id_mask;
    fresh_id_set *set = &f->ids[at];
    pthread_mutex_lock(set_lock(f, at));
    fresh_id *slot = NULL;
    for (int w = 0; w < FRESH_ID_WAYS && !slot; w++)
        if (set->ways[w].hash == hash && set->ways[w].kind == kind) slot = &set->ways[w];
    for (int w = 0; w < FRESH_ID_WAYS && !slot; w++)
        if (!set->ways[w].kind) slot = &set->ways[w];
    if (!slot) {
        slot = &set->ways[set->hand];
        set->hand = (set->hand + 1) % FRESH_ID_WAYS;
    }
    *slot =
        (fresh_id){.hash = hash, .pid = pid, .stamp = stamp, .touched_ms = now_ms, .kind = kind};
    pthread_mutex_unlock(set_lock(f, at));
}
