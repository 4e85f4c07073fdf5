/* memo.c - parsed profiles remembered by the bytes they were parsed from.
 * Decisions and recommendations read the same visitors' profiles page after
 * page, and parsing the stored JSON was a third of a decision's time. A
 * memo is direct-mapped by profile id: a slot holds the profile parsed from
 * storage bytes with a given 64-bit hash and length; the same bytes again
 * give the same parsed profile without parsing, other bytes replace it. One
 * memo belongs to one thread. */
#include "profile/profile_internal.h"

#include <stdlib.h>

typedef struct memo_slot {
    uint64_t pid;
    uint64_t hash;
    size_t len;
    bsp_profile *profile; /* NULL: empty */
} memo_slot;

struct profile_memo {
    memo_slot *slots;
    size_t mask;
    uint64_t hits, misses;
};

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
    return m;
}

void profile_memo_free(profile_memo *m) {
    if (!m) return;
    for (size_t i = 0; i <= m->mask; i++)
        profile_free(m->slots[i].profile);
    free(m->slots);
    free(m);
}

bsp_err profile_memo_parse(profile_memo *m, uint64_t pid, const char *json, size_t len,
                           const bsp_profile **out) {
    *out = NULL;
    memo_slot *s = &m->slots[bsp_hash64(&pid, sizeof pid) & m->mask];
    uint64_t hash = bsp_hash64(json, len);
    if (s->profile && s->pid == pid && s->hash == hash && s->len == len) {
        m->hits++;
        *out = s->profile;
        return BSP_OK;
    }
    m->misses++;
    bsp_profile *p = NULL;
    bsp_err rc = profile_from_json(json, len, &p);
    if (rc) return rc;
    profile_free(s->profile);
    *s = (memo_slot){.pid = pid, .hash = hash, .len = len, .profile = p};
    *out = p;
    return BSP_OK;
}

void profile_memo_stats(const profile_memo *m, uint64_t *hits, uint64_t *misses) {
    *hits = m->hits;
    *misses = m->misses;
}
