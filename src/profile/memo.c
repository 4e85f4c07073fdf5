/* memo.c - parsed profiles remembered by the bytes they were parsed from.
 * Decisions and recommendations read the same visitors' profiles page after
 * page, and parsing the stored JSON was a third of a decision's time. A
 * slot holds the profile of one pid parsed from storage bytes with a given
 * 64-bit hash and length; the same bytes again give the same parsed
 * profile without parsing, other bytes replace it.
 *
 * Slots come in sets of MEMO_WAYS, and a pid can only live in the set its
 * hash picks. A direct-mapped memo (one slot a set) lost a third of its
 * hits to two busy visitors sharing a slot: with 131,072 slots and 200,000
 * visitors in turn 46% of reads were hits, with four ways 58% (measured on
 * the decision benchmark's million profiles). A miss replaces the set's
 * slot of the same pid (an older version), else the first slot not used
 * since the hand last passed it (second chance), so the visitors of the
 * moment stay and one-off readers go.
 *
 * One memo serves every reading thread: a visitor's pages are answered by
 * whichever HTTP thread their connection landed on, and a memo per thread
 * parsed each visitor once per thread and held as many copies. Sets are
 * guarded by striped mutexes held only to compare and to swap a pointer.
 * A parsed profile is reference-counted: the slot holds one reference and
 * each reader its hold's, so a profile replaced in its slot lives until the
 * last reader that borrowed it moves on.
 *
 * A slot may also carry a stamp, an opaque number its reader vouches for:
 * the bytes were the newest readable when the stamp was current (ingest's
 * freshness stamps, fresh.c). profile_memo_peek hands the profile out for
 * the same stamp without any bytes to compare, so a visitor whose profile
 * did not change is answered without reading the store at all. */
#include "profile/profile_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define MEMO_WAYS 4    /* slots a set */
#define MEMO_LOCKS 256 /* mutex stripes, a power of two */

struct profile_memo_ref {
    atomic_uint refs;
    bsp_profile *profile;
};

typedef struct memo_slot {
    uint64_t pid;
    uint64_t hash;
    size_t len;
    uint64_t stamp;        /* the reader's freshness stamp for these bytes; 0: none */
    profile_memo_ref *ref; /* NULL: empty */
    bool used;             /* read since the hand last passed (second chance) */
} memo_slot;

typedef struct memo_set {
    memo_slot ways[MEMO_WAYS];
    unsigned hand; /* the way a miss looks at first */
} memo_set;

struct profile_memo {
    memo_set *sets;
    size_t mask; /* sets - 1 */
    pthread_mutex_t locks[MEMO_LOCKS];
    atomic_uint_fast64_t hits, misses, held, stamped;
};

static void ref_drop(profile_memo_ref *r) {
    if (r && atomic_fetch_sub(&r->refs, 1) == 1) {
        profile_free(r->profile);
        free(r);
    }
}

profile_memo *profile_memo_new(size_t capacity) {
    size_t sets = 4;
    while (sets * MEMO_WAYS < capacity && sets < ((size_t)1 << 24))
        sets <<= 1;
    profile_memo *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->sets = calloc(sets, sizeof *m->sets);
    if (!m->sets) {
        free(m);
        return NULL;
    }
    m->mask = sets - 1;
    for (size_t i = 0; i < MEMO_LOCKS; i++)
        pthread_mutex_init(&m->locks[i], NULL);
    return m;
}

void profile_memo_free(profile_memo *m) {
    if (!m) return;
    for (size_t i = 0; i <= m->mask; i++)
        for (int w = 0; w < MEMO_WAYS; w++)
            ref_drop(m->sets[i].ways[w].ref);
    for (size_t i = 0; i < MEMO_LOCKS; i++)
        pthread_mutex_destroy(&m->locks[i]);
    free(m->sets);
    free(m);
}

void profile_hold_release(profile_hold *hold) {
    ref_drop(hold->ref);
    hold->ref = NULL;
}

/* The slot holding pid in set, or NULL. Called with the set's lock held. */
static memo_slot *slot_of(memo_set *set, uint64_t pid) {
    for (int w = 0; w < MEMO_WAYS; w++)
        if (set->ways[w].ref && set->ways[w].pid == pid) return &set->ways[w];
    return NULL;
}

/* The slot a new version of pid goes to: its own, an empty one, else the
 * first the hand finds unused, clearing the marks it passes. Called with
 * the set's lock held. */
static memo_slot *slot_victim(memo_set *set, uint64_t pid) {
    memo_slot *own = slot_of(set, pid);
    if (own) return own;
    for (int w = 0; w < MEMO_WAYS; w++)
        if (!set->ways[w].ref) return &set->ways[w];
    for (;;) {
        memo_slot *s = &set->ways[set->hand];
        set->hand = (set->hand + 1) % MEMO_WAYS;
        if (!s->used) return s;
        s->used = false;
    }
}

/* Lends the hold a reference to slot s's profile. Called with the set's
 * lock held. */
static const bsp_profile *slot_lend(memo_slot *s, profile_hold *hold) {
    s->used = true;
    atomic_fetch_add(&s->ref->refs, 1);
    hold->ref = s->ref;
    return s->ref->profile;
}

bsp_err profile_memo_peek(profile_memo *m, profile_hold *hold, uint64_t pid, uint64_t stamp,
                          const bsp_profile **out) {
    *out = NULL;
    profile_hold_release(hold);
    if (!stamp) return BSP_ENOTFOUND;
    size_t at = bsp_hash64(&pid, sizeof pid) & m->mask;
    pthread_mutex_t *lock = &m->locks[at & (MEMO_LOCKS - 1)];
    pthread_mutex_lock(lock);
    memo_slot *s = slot_of(&m->sets[at], pid);
    if (s && s->stamp == stamp) *out = slot_lend(s, hold);
    pthread_mutex_unlock(lock);
    if (!*out) return BSP_ENOTFOUND;
    atomic_fetch_add_explicit(&m->hits, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->stamped, 1, memory_order_relaxed);
    return BSP_OK;
}

bsp_err profile_memo_parse(profile_memo *m, profile_hold *hold, uint64_t pid, const char *json,
                           size_t len, uint64_t stamp, const bsp_profile **out) {
    *out = NULL;
    profile_hold_release(hold);
    size_t at = bsp_hash64(&pid, sizeof pid) & m->mask;
    memo_set *set = &m->sets[at];
    pthread_mutex_t *lock = &m->locks[at & (MEMO_LOCKS - 1)];
    uint64_t hash = bsp_hash64(json, len);
    pthread_mutex_lock(lock);
    memo_slot *s = slot_of(set, pid);
    if (s && s->hash == hash && s->len == len) {
        /* The same bytes: a stamp given now vouches for them too. */
        if (stamp) s->stamp = stamp;
        *out = slot_lend(s, hold);
        pthread_mutex_unlock(lock);
        atomic_fetch_add_explicit(&m->hits, 1, memory_order_relaxed);
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
    s = slot_victim(set, pid);
    profile_memo_ref *old = s->ref;
    /* unused until read again */
    *s = (memo_slot){.pid = pid, .hash = hash, .len = len, .stamp = stamp, .ref = r};
    pthread_mutex_unlock(lock);
    if (!old) atomic_fetch_add_explicit(&m->held, 1, memory_order_relaxed);
    ref_drop(old);
    hold->ref = r;
    *out = p;
    return BSP_OK;
}

void profile_memo_forget(profile_memo *m, uint64_t pid) {
    size_t at = bsp_hash64(&pid, sizeof pid) & m->mask;
    pthread_mutex_t *lock = &m->locks[at & (MEMO_LOCKS - 1)];
    pthread_mutex_lock(lock);
    memo_slot *s = slot_of(&m->sets[at], pid);
    profile_memo_ref *old = s ? s->ref : NULL;
    if (s) *s = (memo_slot){0};
    pthread_mutex_unlock(lock);
    if (old) atomic_fetch_sub_explicit(&m->held, 1, memory_order_relaxed);
    ref_drop(old);
}

void profile_memo_stats(const profile_memo *m, uint64_t *hits, uint64_t *misses, uint64_t *held,
                        uint64_t *stamped) {
    *hits = atomic_load_explicit(&m->hits, memory_order_relaxed);
    *stamped = atomic_load_explicit(&m->stamped, memory_order_relaxed);
    *misses = atomic_load_explicit(&m->misses, memory_order_relaxed);
    *held = atomic_load_explicit(&m->held, memory_order_relaxed);
}
