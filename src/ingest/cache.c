/* cache.c - the writer's profile cache: parsed profiles kept between commits
 * so that a visitor's next events need no store read and no JSON parse, with
 * a dirty flag so each profile is written once per commit however many of
 * its events the commit holds. Only the writer thread touches it.
 *
 * A chained hash table on the profile id plus an LRU list; entries beyond
 * the capacity are evicted (clean ones only) after each commit. */
#include "ingest/ingest_internal.h"

#include <stdlib.h>

static size_t bucket_of(const pcache *c, uint64_t pid) {
    return (size_t)(bsp_hash64(&pid, sizeof pid) & (c->nbuckets - 1));
}

bsp_err pcache_init(pcache *c, size_t capacity) {
    size_t n = 1024;
    while (n < capacity * 2)
        n *= 2;
    c->buckets = calloc(n, sizeof *c->buckets);
    if (!c->buckets) return BSP_ENOMEM;
    c->nbuckets = n;
    c->capacity = capacity;
    c->count = 0;
    c->lru_head = c->lru_tail = NULL;
    return BSP_OK;
}

static void lru_unlink(pcache *c, pentry *e) {
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        c->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        c->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(pcache *c, pentry *e) {
    e->lru_prev = NULL;
    e->lru_next = c->lru_head;
    if (c->lru_head) c->lru_head->lru_prev = e;
    c->lru_head = e;
    if (!c->lru_tail) c->lru_tail = e;
}

pentry *pcache_get(pcache *c, uint64_t pid) {
    for (pentry *e = c->buckets[bucket_of(c, pid)]; e; e = e->hash_next) {
        if (e->pid == pid) {
            lru_unlink(c, e);
            lru_push_front(c, e);
            return e;
        }
    }
    return NULL;
}

/* Doubles the table when it holds more entries than buckets: the cache
 * exceeds its capacity between checkpoints (a backfill loads every
 * profile), and long chains made each look-up a run of cache misses. The
 * entries stay where they are if the bigger table cannot be allocated. */
static void grow(pcache *c) {
    size_t n = c->nbuckets * 2;
    pentry **buckets = calloc(n, sizeof *buckets);
    if (!buckets) return;
    for (size_t i = 0; i < c->nbuckets; i++) {
        pentry *e = c->buckets[i];
        while (e) {
            pentry *next = e->hash_next;
            size_t b = (size_t)(bsp_hash64(&e->pid, sizeof e->pid) & (n - 1));
            e->hash_next = buckets[b];
            buckets[b] = e;
            e = next;
        }
    }
    free(c->buckets);
    c->buckets = buckets;
    c->nbuckets = n;
}

pentry *pcache_put(pcache *c, bsp_profile *p) {
    if (c->count >= c->nbuckets) grow(c);
    pentry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->pid = profile_pid(p);
    e->profile = p;
    size_t b = bucket_of(c, e->pid);
    e->hash_next = c->buckets[b];
    c->buckets[b] = e;
    lru_push_front(c, e);
    c->count++;
    return e;
}

void pcache_remove(pcache *c, uint64_t pid) {
    pentry **link = &c->buckets[bucket_of(c, pid)];
    while (*link && (*link)->pid != pid)
        link = &(*link)->hash_next;
    pentry *e = *link;
    if (!e) return;
    *link = e->hash_next;
    lru_unlink(c, e);
    profile_free(e->profile);
    free(e);
    c->count--;
}

void pcache_evict(pcache *c) {
    pentry *e = c->lru_tail;
    while (c->count > c->capacity && e) {
        pentry *prev = e->lru_prev;
        if (!e->dirty) pcache_remove(c, e->pid);
        e = prev;
    }
}

void pcache_clear(pcache *c) {
    while (c->lru_head)
        pcache_remove(c, c->lru_head->pid);
}

void pcache_free(pcache *c) {
    if (!c->buckets) return;
    pcache_clear(c);
    free(c->buckets);
    c->buckets = NULL;
}
