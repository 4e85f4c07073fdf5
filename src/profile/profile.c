/* profile.c - the profile model: creating and freeing profiles, their ids,
 * and the containers the computed traits live in (string lists, the cart,
 * decayed counts, compensated money). Event handling is in apply.c, the
 * storage and public forms in codec.c, identity merges in merge.c. */
#include "profile/profile_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

/* --- string lists -------------------------------------------------------- */

static uint64_t hash_string(const char *s) {
    return bsp_hash64(s, strlen(s));
}

size_t strlist_find_hashed(const strlist *l, const char *s, uint64_t h) {
    for (size_t i = 0; i < l->count; i++)
        if (l->hashes[i] == h && strcmp(l->items[i], s) == 0) return i;
    return SIZE_MAX;
}

size_t strlist_find(const strlist *l, const char *s) {
    return strlist_find_hashed(l, s, hash_string(s));
}

static bsp_err strlist_grow(strlist *l) {
    if (l->count < l->cap) return BSP_OK;
    size_t cap = l->cap ? l->cap * 2 : 4;
    char **items = realloc(l->items, cap * sizeof *items);
    if (!items) return BSP_ENOMEM;
    l->items = items;
    uint64_t *hashes = realloc(l->hashes, cap * sizeof *hashes);
    if (!hashes) return BSP_ENOMEM;
    l->hashes = hashes;
    l->cap = cap;
    return BSP_OK;
}

bsp_err strlist_insert(strlist *l, size_t at, const char *s) {
    return strlist_insert_hashed(l, at, s, hash_string(s));
}

bsp_err strlist_insert_hashed(strlist *l, size_t at, const char *s, uint64_t h) {
    if (strlist_grow(l) != BSP_OK) return BSP_ENOMEM;
    char *copy = strdup(s);
    if (!copy) return BSP_ENOMEM;
    size_t tail = l->count - at;
    memmove(l->items + at + 1, l->items + at, tail * sizeof *l->items);
    memmove(l->hashes + at + 1, l->hashes + at, tail * sizeof *l->hashes);
    l->items[at] = copy;
    l->hashes[at] = h;
    l->count++;
    return BSP_OK;
}

void strlist_remove(strlist *l, size_t at) {
    free(l->items[at]);
    size_t tail = l->count - at - 1;
    memmove(l->items + at, l->items + at + 1, tail * sizeof *l->items);
    memmove(l->hashes + at, l->hashes + at + 1, tail * sizeof *l->hashes);
    l->count--;
}

bool strlist_add_unique(strlist *l, const char *s, size_t max, bool drop_oldest) {
    if (strlist_find(l, s) != SIZE_MAX) return false;
    if (l->count >= max) {
        if (!drop_oldest) return false;
        while (l->count >= max)
            strlist_remove(l, 0);
    }
    strlist_insert(l, l->count, s);
    return true;
}

bool strlist_push_front(strlist *l, const char *s, size_t max) {
    size_t at = strlist_find(l, s);
    if (at == 0) return false;
    if (at != SIZE_MAX) {
        /* Rotate the existing entry to the front; no allocation. */
        char *item = l->items[at];
        uint64_t hash = l->hashes[at];
        memmove(l->items + 1, l->items, at * sizeof *l->items);
        memmove(l->hashes + 1, l->hashes, at * sizeof *l->hashes);
        l->items[0] = item;
        l->hashes[0] = hash;
        return true;
    }
    while (l->count >= max && l->count > 0)
        strlist_remove(l, l->count - 1);
    if (max > 0) strlist_insert(l, 0, s);
    return true;
}

void strlist_free(strlist *l) {
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i]);
    free(l->items);
    free(l->hashes);
    *l = (strlist){0};
}

/* --- cart ---------------------------------------------------------------- */

size_t cart_find(const cart *c, const char *product_id) {
    for (size_t i = 0; i < c->count; i++)
        if (strcmp(c->lines[i].product_id, product_id) == 0) return i;
    return SIZE_MAX;
}

static cart_line *cart_append_line(cart *c, const char *product_id) {
    if (c->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4;
        cart_line *lines = realloc(c->lines, cap * sizeof *lines);
        if (!lines) return NULL;
        c->lines = lines;
        c->cap = cap;
    }
    char *id = strdup(product_id);
    if (!id) return NULL;
    cart_line *line = &c->lines[c->count++];
    *line = (cart_line){.product_id = id, .quantity = 0, .price = 0};
    return line;
}

void cart_add(cart *c, const char *product_id, int64_t quantity, bool has_price, double price) {
    size_t at = cart_find(c, product_id);
    cart_line *line = at != SIZE_MAX ? &c->lines[at] : cart_append_line(c, product_id);
    if (!line) return;
    if (quantity > PROFILE_QUANTITY_MAX - line->quantity)
        line->quantity = PROFILE_QUANTITY_MAX;
    else
        line->quantity += quantity;
    if (has_price) line->price = price;
}

static void cart_remove_line(cart *c, size_t at) {
    free(c->lines[at].product_id);
    memmove(c->lines + at, c->lines + at + 1, (c->count - at - 1) * sizeof *c->lines);
    c->count--;
}

void cart_remove(cart *c, const char *product_id, int64_t quantity) {
    size_t at = cart_find(c, product_id);
    if (at == SIZE_MAX) return;
    c->lines[at].quantity -= quantity;
    if (c->lines[at].quantity <= 0) cart_remove_line(c, at);
}

void cart_clear(cart *c) {
    for (size_t i = 0; i < c->count; i++)
        free(c->lines[i].product_id);
    c->count = 0;
}

void cart_free(cart *c) {
    cart_clear(c);
    free(c->lines);
    *c = (cart){0};
}

/* --- decayed counts ------------------------------------------------------ */

/* Rebase once the newest event is this many half-lives past the reference,
 * so that forward-decay factors stay below 2^16. */
#define DECAY_REBASE_HALF_LIVES 16

static double decay_factor(int64_t from_ms, int64_t to_ms) {
    return exp2((double)(to_ms - from_ms) / (double)PROFILE_HALF_LIFE_MS);
}

void decay_rebase(decay_table *t, int64_t ref_ms) {
    double factor = decay_factor(ref_ms, t->ref_ms);
    for (size_t i = 0; i < t->count; i++)
        t->entries[i].score *= factor;
    t->ref_ms = ref_ms;
}

bool decay_append(decay_table *t, const char *name, double score) {
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4;
        decay_entry *entries = realloc(t->entries, cap * sizeof *entries);
        if (!entries) return false;
        t->entries = entries;
        t->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) return false;
    t->entries[t->count++] = (decay_entry){.name = copy, .score = score};
    return true;
}

static size_t decay_find(const decay_table *t, const char *name) {
    for (size_t i = 0; i < t->count; i++)
        if (strcmp(t->entries[i].name, name) == 0) return i;
    return SIZE_MAX;
}

static size_t decay_min_index(const decay_table *t) {
    size_t min = 0;
    for (size_t i = 1; i < t->count; i++)
        if (t->entries[i].score < t->entries[min].score) min = i;
    return min;
}

/* Full table: the new name replaces the lowest score if it beats it. */
static void decay_replace_min(decay_table *t, const char *name, double score) {
    size_t min = decay_min_index(t);
    if (score <= t->entries[min].score) return;
    char *copy = strdup(name);
    if (!copy) return;
    free(t->entries[min].name);
    t->entries[min] = (decay_entry){.name = copy, .score = score};
}

void decay_add(decay_table *t, const char *name, double weight, int64_t ts_ms) {
    if (t->count == 0) t->ref_ms = ts_ms;
    if (ts_ms - t->ref_ms > DECAY_REBASE_HALF_LIVES * PROFILE_HALF_LIFE_MS) decay_rebase(t, ts_ms);
    double score = weight * decay_factor(t->ref_ms, ts_ms);
    size_t at = decay_find(t, name);
    if (at != SIZE_MAX)
        t->entries[at].score += score;
    else if (t->count < PROFILE_DECAY_MAX)
        decay_append(t, name, score);
    else
        decay_replace_min(t, name, score);
}

void decay_merge(decay_table *into, const decay_table *from) {
    if (from->count == 0) return;
    if (into->count == 0) into->ref_ms = from->ref_ms;
    if (from->ref_ms > into->ref_ms) decay_rebase(into, from->ref_ms);
    double factor = decay_factor(into->ref_ms, from->ref_ms);
    for (size_t i = 0; i < from->count; i++) {
        const decay_entry *e = &from->entries[i];
        size_t at = decay_find(into, e->name);
        if (at != SIZE_MAX)
            into->entries[at].score += e->score * factor;
        else
            decay_append(into, e->name, e->score * factor);
    }
    decay_trim(into);
}

static int decay_compare(const void *a, const void *b) {
    const decay_entry *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return strcmp(x->name, y->name);
}

void decay_trim(decay_table *t) {
    if (t->count > 1) qsort(t->entries, t->count, sizeof *t->entries, decay_compare);
    while (t->count > PROFILE_DECAY_MAX)
        free(t->entries[--t->count].name);
}

const char *decay_top(const decay_table *t) {
    const decay_entry *best = NULL;
    for (size_t i = 0; i < t->count; i++) {
        const decay_entry *e = &t->entries[i];
        if (!(e->score > 0)) continue;
        if (!best || decay_compare(e, best) < 0) best = e;
    }
    return best ? best->name : NULL;
}

void decay_free(decay_table *t) {
    for (size_t i = 0; i < t->count; i++)
        free(t->entries[i].name);
    free(t->entries);
    *t = (decay_table){0};
}

/* --- money --------------------------------------------------------------- */

void money_add(money *m, double amount) {
    if (!isfinite(amount)) return;
    double sum = m->sum + amount;
    if (fabs(m->sum) >= fabs(amount))
        m->comp += (m->sum - sum) + amount;
    else
        m->comp += (amount - sum) + m->sum;
    m->sum = sum;
}

double money_value(const money *m) {
    return m->sum + m->comp;
}

/* --- the profile --------------------------------------------------------- */

bsp_profile *profile_new(uint64_t pid) {
    bsp_profile *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->pid = pid;
    p->first_seen_ms = PROFILE_TIME_UNSET;
    p->last_seen_ms = PROFILE_TIME_UNSET;
    p->last_order_ms = PROFILE_TIME_UNSET;
    p->consent_ms = PROFILE_TIME_UNSET;
    return p;
}

void profile_free(bsp_profile *p) {
    if (!p) return;
    strlist_free(&p->user_ids);
    strlist_free(&p->anon_ids);
    cJSON_Delete(p->traits);
    cJSON_Delete(p->consent);
    cart_free(&p->cart);
    strlist_free(&p->recently_viewed);
    strlist_free(&p->purchased);
    decay_free(&p->categories);
    decay_free(&p->brands);
    free(p->last_search);
    free(p->country);
    extras_free(p);
    for (profile_note *n = atomic_load(&p->notes), *next; n; n = next) {
        next = n->next;
        free(n);
    }
    free(p);
}

/* --- readers' notes --------------------------------------------------------- */

profile_note *profile_note_find(const bsp_profile *p, uint64_t key) {
    for (profile_note *n = atomic_load_explicit(&p->notes, memory_order_acquire); n; n = n->next)
        if (n->key == key) return n;
    return NULL;
}

bool profile_note_add(const bsp_profile *p, profile_note *n) {
    bsp_profile *shared = (bsp_profile *)p; /* notes are the readers' cache, not content */
    profile_note *head = atomic_load_explicit(&shared->notes, memory_order_acquire);
    for (;;) {
        size_t count = 0;
        for (profile_note *m = head; m; m = m->next, count++)
            if (m->key == n->key) return false;
        if (count >= PROFILE_NOTES_MAX) return false;
        n->next = head;
        if (atomic_compare_exchange_weak_explicit(&shared->notes, &head, n, memory_order_acq_rel,
                                                  memory_order_acquire))
            return true;
    }
}

int profile_note_get(const profile_note *n, unsigned i) {
    if (i >= PROFILE_NOTE_BITS) return -1;
    uint64_t bit = 1ull << (i % 64);
    if (!(atomic_load_explicit(&n->known[i / 64], memory_order_acquire) & bit)) return -1;
    return (atomic_load_explicit(&n->yes[i / 64], memory_order_relaxed) & bit) != 0;
}

void profile_note_put(profile_note *n, unsigned i, bool yes) {
    if (i >= PROFILE_NOTE_BITS) return;
    uint64_t bit = 1ull << (i % 64);
    if (yes) atomic_fetch_or_explicit(&n->yes[i / 64], bit, memory_order_relaxed);
    atomic_fetch_or_explicit(&n->known[i / 64], bit, memory_order_release);
}

uint64_t profile_pid(const bsp_profile *p) {
    return p->pid;
}

static strlist *ids_of_kind(bsp_profile *p, char kind) {
    if (kind == 'u') return &p->user_ids;
    if (kind == 'a') return &p->anon_ids;
    return NULL;
}

void profile_add_id(bsp_profile *p, char kind, const char *id) {
    strlist *ids = ids_of_kind(p, kind);
    if (!ids || !id || !*id) return;
    strlist_add_unique(ids, id, BSP_PROFILE_MAX_IDS, false);
}

size_t profile_id_count(const bsp_profile *p, char kind) {
    const strlist *ids = ids_of_kind((bsp_profile *)p, kind);
    return ids ? ids->count : 0;
}

const char *profile_id_at(const bsp_profile *p, char kind, size_t i) {
    const strlist *ids = ids_of_kind((bsp_profile *)p, kind);
    return ids && i < ids->count ? ids->items[i] : NULL;
}

bool profile_has_id(const bsp_profile *p, const char *id, uint64_t hash) {
    return strlist_find_hashed(&p->user_ids, id, hash) != SIZE_MAX ||
           strlist_find_hashed(&p->anon_ids, id, hash) != SIZE_MAX;
}

const cJSON *profile_traits(const bsp_profile *p) {
    return p->traits;
}

int profile_consent(const bsp_profile *p, const char *category) {
    const cJSON *v = json_member(p->consent, category);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : -1;
}

int64_t profile_last_seen_ms(const bsp_profile *p) {
    return p->last_seen_ms == PROFILE_TIME_UNSET ? 0 : p->last_seen_ms;
}

void profile_set_string(char **slot, const char *s) {
    if (*slot && s && strcmp(*slot, s) == 0) return;
    char *copy = NULL;
    if (s && !(copy = strdup(s))) return;
    free(*slot);
    *slot = copy;
}

const char *profile_device_name(profile_device d) {
    static const char *const names[PROFILE_DEVICE_COUNT] = {NULL, "mobile", "tablet", "desktop"};
    return (unsigned)d < PROFILE_DEVICE_COUNT ? names[d] : NULL;
}

int64_t profile_cart_items(const bsp_profile *p) {
    int64_t items = 0;
    for (size_t i = 0; i < p->cart.count; i++)
        items += p->cart.lines[i].quantity;
    return items;
}

double profile_cart_value(const bsp_profile *p) {
    money value = {0};
    for (size_t i = 0; i < p->cart.count; i++)
        money_add(&value, (double)p->cart.lines[i].quantity * p->cart.lines[i].price);
    return money_value(&value);
}

uint64_t profile_applied_seq(const bsp_profile *p) {
    return (uint64_t)p->applied_seq;
}

void profile_set_applied_seq(bsp_profile *p, uint64_t seq) {
    p->applied_seq = (int64_t)seq;
}
