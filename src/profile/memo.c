/* memo.c - parsed profiles remembered by the bytes they were parsed from.
 * Decisions and recommendations read the same visitors' profiles page after
 * page, and parsing the stored JSON was a third of a decision's time. A
 * memo is direct-mapped by profile id: a slot holds the profile parsed from
 * storage bytes with a given 64-bit hash and length; the same bytes again
 * give the same parsed profile without parsing, other bytes replace it.
 *
 * One memo serves every reading thread: a visitor's pages are answered by
 * whichever HTTP thread their connection landed on, and a memo per thread
 * parsed each visitor once per thread and held as many copies. Slots are
 * guarded by striped mutexes held only to compare and to swap a pointer.
 * A parsed profile is reference-counted: the slot holds one reference and
 * each reader its hold's, so a profile replaced in its slot lives until the
 * last reader that borrowed it moves on. */
#include "profile/profile_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define MEMO_LOCKS 256 /* mutex stripes, a power of two */

struct profile_memo_ref {
    atomic_uint refs;
    bsp_profile *profile;
};

typedef struct memo_slot {
    uint64_t pid;
    uint64_t hash;
    size_t len;
    profile_memo_ref *ref; /* NULL: empty */
} memo_slot;

struct profile_memo {
    memo_slot *slots;
    size_t mask;
    pthread_mutex_t locks[MEMO_LOCKS];
    atomic_uint_fast64_t hits, misses;
};

static void ref_drop(profile_memo_ref *r) {
    if (r && atomic_fetch_sub(&r->refs, 1) == 1) {
        profile_free(r->profile);
        free(r);
    }
}

profile_memo *profile_memo_new(size_t capacity) {
    size_t n = 16;
    while (n < capacity && n < ((size_t)1 << 24))
        n <<= 1;
    profile_memo *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->slots = calloc(n, sizeof *m->slots);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    m->mask = n - 1;
    for (size_t i = 0; i < MEMO_LOCKS; i++)
        pthread_mutex_init(&m->locks[i], NULL);
    return m;
}

void profile_memo_free(profile_memo *m) {
    if (!m) return;
    for (size_t i = 0; i <= m->mask; i++)
        ref_drop(m->slots[i].ref);
    for (size_t i = 0; i < MEMO_LOCKS; i++)
        pthread_mutex_destroy(&m->locks[i]);
    free(m->slots);
    free(m);
}

void profile_hold_release(profile_hold *hold) {
    ref_drop(hold->ref);
    hold->ref = NULL;
}

bsp_err profile_memo_parse(profile_memo *m, profile_hold *hold, uint64_t pid, const char *json,
                           size_t len, const bsp_profile **out) {
    *out = NULL;
    profile_hold_release(hold);
    size_t at = bsp_hash64(&pid, sizeof pid) & m->mask;
    memo_slot *s = &m->slots[at];
    pthread_mutex_t *lock = &m->locks[at & (MEMO_LOCKS - 1)];
    uint64_t hash = bsp_hash64(json, len);
    pthread_mutex_lock(lock);
    if (s->ref && s->pid == pid && s->hash == hash && s->len == len) {
        atomic_fetch_add(&s->ref->refs, 1);
        hold->ref = s->ref;
        pthread_mutex_unlock(lock);
        atomic_fetch_add_explicit(&m->hits, 1, memory_order_relaxed);
        *out = hold->ref->profile;
        return BSP_OK;
    }
    pthread_mutex_unlock(lock);
    atomic_fetch_add_explicit(&m->misses, 1, memory_order_relaxed);
    bsp_profile *p = NULL;
    bsp_err rc = profile_from_json(json, len, &p);
    if (rc) return rc;
    profile_memo_ref *r = malloc(sizeof *r);
    if (!r) {
        profile_free(p);
        return BSP_ENOMEM;
    }
    atomic_init(&r->refs, 2); /* the slot's and the hold's */
    r->profile = p;
    pthread_mutex_lock(lock);
    profile_memo_ref *old = s->ref;
    *s = (memo_slot){.pid = pid, .hash = hash, .len = len, .ref = r};
    pthread_mutex_unlock(lock);
    ref_drop(old);
    hold->ref = r;
    *out = p;
    return BSP_OK;
}

void profile_memo_stats(const profile_memo *m, uint64_t *hits, uint64_t *misses) {
    *hits = atomic_load_explicit(&m->hits, memory_order_relaxed);
    *misses = atomic_load_explicit(&m->misses, memory_order_relaxed);
}
