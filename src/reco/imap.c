/* imap.c - product id -> item index: open addressing over a power-of-two
 * table of indices with their 64-bit hashes, so a look-up compares numbers
 * before it compares strings. The ids live in the caller's array. */
#include "reco/reco_internal.h"

#include <stdlib.h>
#include <string.h>

bsp_err imap_init(reco_imap *m, size_t expect) {
    size_t cap = 64;
    while (cap < expect * 2)
        cap <<= 1;
    m->slots = calloc(cap, sizeof *m->slots);
    m->hashes = calloc(cap, sizeof *m->hashes);
    m->cap = cap;
    if (m->slots && m->hashes) return BSP_OK;
    imap_free(m);
    return BSP_ENOMEM;
}

void imap_free(reco_imap *m) {
    free(m->slots);
    free(m->hashes);
    memset(m, 0, sizeof *m);
}

static size_t probe(const reco_imap *m, const char *const *ids, const char *id, uint64_t h) {
    size_t mask = m->cap - 1, i = (size_t)h & mask;
    while (m->slots[i]) {
        if (m->hashes[i] == h && strcmp(ids[m->slots[i] - 1], id) == 0) return i;
        i = (i + 1) & mask;
    }
    return i;
}

uint32_t imap_find(const reco_imap *m, const char *const *ids, const char *id) {
    if (!m->cap || !id) return RECO_NONE;
    size_t i = probe(m, ids, id, bsp_hash64(id, strlen(id)));
    return m->slots[i] ? m->slots[i] - 1 : RECO_NONE;
}

static bsp_err grow(reco_imap *m, const char *const *ids) {
    reco_imap bigger = {0};
    if (imap_init(&bigger, m->cap) != BSP_OK) return BSP_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i]) continue;
        size_t j = probe(&bigger, ids, ids[m->slots[i] - 1], m->hashes[i]);
        bigger.slots[j] = m->slots[i];
        bigger.hashes[j] = m->hashes[i];
        bigger.count++;
    }
    imap_free(m);
    *m = bigger;
    return BSP_OK;
}

bsp_err imap_put(reco_imap *m, const char *const *ids, uint32_t item) {
    if (!m->cap && imap_init(m, 16) != BSP_OK) return BSP_ENOMEM;
    if ((m->count + 1) * 2 > m->cap && grow(m, ids) != BSP_OK) return BSP_ENOMEM;
    uint64_t h = bsp_hash64(ids[item], strlen(ids[item]));
    size_t i = probe(m, ids, ids[item], h);
    if (!m->slots[i]) m->count++;
    m->slots[i] = item + 1;
    m->hashes[i] = h;
    return BSP_OK;
}
