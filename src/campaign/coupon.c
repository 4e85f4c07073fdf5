/* coupon.c - coupon pools: each code handed out once ever, the same visitor
 * always getting the same code back.
 *
 * Durability without waiting in decisions: a code is first reserved in a
 * block, durably (an ingest job writes a "coupon_used" record for each
 * code of the block), and only then handed out from memory. Handing out
 * takes the pool's mutex for a few hundred nanoseconds (look the visitor
 * up, take the next reserved code, remember it) and never does I/O; the
 * assignment is journaled to the registry's worker, which writes it
 * ("coupon_visitor", keyed by a hash of the visitor's id) in batches. When
 * the reserved block runs low the worker reserves the next one. At a reload
 * or a clean stop a pool is closed and the codes it reserved but did not
 * hand out are released (their records deleted), so only a crash can waste
 * a block, and nothing can hand a code out twice. */
#include "campaign/campaign_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- record lists and writing them ----------------------------------------------------- */

bsp_err record_push(record_list *list, const char *campaign, const char *code, uint64_t visitor) {
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 64;
        coupon_record *items = realloc(list->items, cap * sizeof *items);
        if (!items) return BSP_ENOMEM;
        list->items = items;
        list->cap = cap;
    }
    coupon_record *r = &list->items[list->count++];
    snprintf(r->campaign, sizeof r->campaign, "%s", campaign);
    snprintf(r->code, sizeof r->code, "%s", code);
    r->visitor = visitor;
    return BSP_OK;
}

static void used_key(char *out, size_t cap, const char *campaign, const char *code) {
    snprintf(out, cap, "%s\x1f%s", campaign, code);
}

static void visitor_key(char *out, size_t cap, const char *campaign, uint64_t visitor) {
    snprintf(out, cap, "%s\x1f%016llx", campaign, (unsigned long long)visitor);
}

typedef struct records_job {
    const record_list *journal;
    const record_list *release;
} records_job;

static bsp_err records_run(bsp_ingest *ing, bsp_txn *txn, void *arg) {
    (void)ing;
    records_job *job = arg;
    char key[CAMPAIGN_ID_MAX + CAMPAIGN_CODE_MAX + 4];
    for (size_t i = 0; job->journal && i < job->journal->count; i++) {
        const coupon_record *r = &job->journal->items[i];
        visitor_key(key, sizeof key, r->campaign, r->visitor);
        bsp_err rc = store_config_put(txn, COUPON_VISITOR_KIND, key, r->code, strlen(r->code));
        if (rc != BSP_OK) return rc;
    }
    for (size_t i = 0; job->release && i < job->release->count; i++) {
        const coupon_record *r = &job->release->items[i];
        used_key(key, sizeof key, r->campaign, r->code);
        bsp_err rc = store_config_del(txn, COUPON_USED_KIND, key);
        if (rc != BSP_OK && rc != BSP_ENOTFOUND) return rc;
    }
    return BSP_OK;
}

bsp_err coupon_records_write(bsp_ingest *ing, const record_list *journal,
                             const record_list *release) {
    records_job job = {journal, release};
    return ingest_run_job(ing, records_run, &job);
}

/* --- the visitor map (callers hold the mutex) ------------------------------------------ */

static uint64_t visitor_hash(char kind, const char *id) {
    char buf[BSP_ID_MAX_BYTES + 2];
    size_t len = strlen(id);
    if (len > BSP_ID_MAX_BYTES) len = BSP_ID_MAX_BYTES;
    buf[0] = kind;
    memcpy(buf + 1, id, len);
    uint64_t h = bsp_hash64(buf, len + 1);
    return h ? h : 1; /* 0 marks an empty slot */
}

static size_t map_slot(const coupon_pool *pool, uint64_t key) {
    size_t mask = pool->map_cap - 1, i = (size_t)key & mask;
    while (pool->keys[i] && pool->keys[i] != key)
        i = (i + 1) & mask;
    return i;
}

static const char *map_get(const coupon_pool *pool, uint64_t key) {
    if (!pool->map_cap) return NULL;
    size_t i = map_slot(pool, key);
    return pool->keys[i] ? pool->vals[i] : NULL;
}

static bool map_grow(coupon_pool *pool) {
    size_t cap = pool->map_cap ? pool->map_cap * 2 : 64;
    uint64_t *keys = calloc(cap, sizeof *keys);
    const char **vals = calloc(cap, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return false;
    }
    coupon_pool old = *pool;
    pool->keys = keys;
    pool->vals = vals;
    pool->map_cap = cap;
    for (size_t i = 0; i < old.map_cap; i++) {
        if (!old.keys[i]) continue;
        size_t j = map_slot(pool, old.keys[i]);
        pool->keys[j] = old.keys[i];
        pool->vals[j] = old.vals[i];
    }
    free(old.keys);
    free(old.vals);
    return true;
}

static bool map_put(coupon_pool *pool, uint64_t key, const char *code) {
    if ((pool->map_count + 1) * 2 > pool->map_cap && !map_grow(pool)) return false;
    size_t i = map_slot(pool, key);
    if (!pool->keys[i]) pool->map_count++;
    pool->keys[i] = key;
    pool->vals[i] = code;
    return true;
}

/* --- handing out ------------------------------------------------------------------------- */

static void maybe_refill(coupon_pool *pool) {
    size_t left = pool->reserved - pool->next;
    if (pool->refill_pending || pool->reserved >= pool->avail_count || left > COUPON_BLOCK / 2)
        return;
    pool->refill_pending = true;
    registry_want_refill(pool->reg);
}

/* Remembers (and journals) code for the visitor's ids. */
static void assign(coupon_pool *pool, uint64_t ku, uint64_t ka, const char *code) {
    uint64_t keys[2] = {ku, ka};
    for (int i = 0; i < 2; i++) {
        if (!keys[i] || map_get(pool, keys[i]) == code) continue;
        if (map_put(pool, keys[i], code))
            registry_journal(pool->reg, pool->campaign, code, keys[i]);
    }
}

bool coupon_take(coupon_pool *pool, const char *user_id, const char *anonymous_id, char *out) {
    uint64_t ku = user_id ? visitor_hash('u', user_id) : 0;
    uint64_t ka = anonymous_id ? visitor_hash('a', anonymous_id) : 0;
    if (!ku && !ka) return false;
    pthread_mutex_lock(&pool->mu);
    const char *code = ku ? map_get(pool, ku) : NULL;
    if (!code && ka) code = map_get(pool, ka);
    if (!code && !pool->closed && pool->next < pool->reserved) {
        code = pool->codes[pool->avail[pool->next++]];
        maybe_refill(pool);
    }
    if (code) {
        assign(pool, ku, ka, code);
        snprintf(out, CAMPAIGN_CODE_MAX + 1, "%s", code);
    }
    pthread_mutex_unlock(&pool->mu);
    return code != NULL;
}

size_t coupon_remaining(const coupon_pool *pool) {
    coupon_pool *p = (coupon_pool *)pool;
    pthread_mutex_lock(&p->mu);
    size_t left = p->avail_count - p->next;
    pthread_mutex_unlock(&p->mu);
    return left;
}

/* --- loading ----------------------------------------------------------------------------- */

static int code_cmp(const void *a, const void *b, void *codes) {
    char *const *c = codes;
    return strcmp(c[*(const uint32_t *)a], c[*(const uint32_t *)b]);
}

/* The index of code in the pool, or -1; sorted holds the indexes by code. */
static long code_index(const coupon_pool *pool, const uint32_t *sorted, const char *code) {
    size_t lo = 0, hi = pool->code_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(code, pool->codes[sorted[mid]]);
        if (c == 0) return sorted[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

static bool has_prefix(bsp_slice id, const char *campaign, size_t len) {
    return id.len > len + 1 && memcmp(id.data, campaign, len) == 0 && id.data[len] == '\x1f';
}

/* Indexes sorted by code; a repeated code is marked used past its first. */
static uint32_t *sorted_codes(const coupon_pool *pool, uint8_t *used) {
    uint32_t *sorted = malloc((pool->code_count ? pool->code_count : 1) * sizeof *sorted);
    if (!sorted) return NULL;
    for (size_t i = 0; i < pool->code_count; i++)
        sorted[i] = (uint32_t)i;
    if (pool->code_count > 1)
        qsort_r(sorted, pool->code_count, sizeof *sorted, code_cmp, pool->codes);
    for (size_t i = 1; i < pool->code_count; i++)
        if (strcmp(pool->codes[sorted[i]], pool->codes[sorted[i - 1]]) == 0) used[sorted[i]] = 1;
    return sorted;
}

typedef struct mark_ctx {
    coupon_pool *pool;
    uint32_t *sorted;
    uint8_t *used;
} mark_ctx;

static bsp_err mark_used(void *ctx, bsp_slice id, bsp_slice json) {
    (void)json;
    mark_ctx *m = ctx;
    size_t plen = strlen(m->pool->campaign);
    if (!has_prefix(id, m->pool->campaign, plen) || id.len - plen - 1 > CAMPAIGN_CODE_MAX)
        return BSP_OK;
    char code[CAMPAIGN_CODE_MAX + 1];
    memcpy(code, id.data + plen + 1, id.len - plen - 1);
    code[id.len - plen - 1] = '\0';
    long i = code_index(m->pool, m->sorted, code);
    if (i >= 0) m->used[i] = 1;
    return BSP_OK;
}

/* The pool's string for code, adding it to extras when the pool lost it. */
static const char *own_code(coupon_pool *pool, const uint32_t *sorted, const char *code) {
    long i = code_index(pool, sorted, code);
    if (i >= 0) return pool->codes[i];
    char **extras = realloc(pool->extras, (pool->extra_count + 1) * sizeof *extras);
    if (!extras) return NULL;
    pool->extras = extras;
    char *copy = strdup(code);
    if (copy) pool->extras[pool->extra_count++] = copy;
    return copy;
}

static bsp_err restore_visitor(void *ctx, bsp_slice id, bsp_slice json) {
    mark_ctx *m = ctx;
    size_t plen = strlen(m->pool->campaign);
    if (!has_prefix(id, m->pool->campaign, plen) || id.len - plen - 1 != 16 || !json.len ||
        json.len > CAMPAIGN_CODE_MAX)
        return BSP_OK;
    char hex[17], code[CAMPAIGN_CODE_MAX + 1];
    memcpy(hex, id.data + plen + 1, 16);
    hex[16] = '\0';
    memcpy(code, json.data, json.len);
    code[json.len] = '\0';
    uint64_t visitor = strtoull(hex, NULL, 16);
    const char *owned = own_code(m->pool, m->sorted, code);
    if (!visitor) return BSP_OK;
    if (!owned || !map_put(m->pool, visitor, owned)) return BSP_ENOMEM;
    return BSP_OK;
}

static bsp_err pool_copy_codes(coupon_pool *pool, const cJSON *codes) {
    size_t n = (size_t)cJSON_GetArraySize(codes);
    pool->codes = calloc(n ? n : 1, sizeof *pool->codes);
    pool->avail = calloc(n ? n : 1, sizeof *pool->avail);
    if (!pool->codes || !pool->avail) return BSP_ENOMEM;
    for (const cJSON *v = codes->child; v; v = v->next) {
        if (!cJSON_IsString(v)) continue;
        pool->codes[pool->code_count] = strdup(v->valuestring);
        if (!pool->codes[pool->code_count]) return BSP_ENOMEM;
        pool->code_count++;
    }
    return BSP_OK;
}

static bsp_err pool_read_state(coupon_pool *pool, bsp_txn *txn) {
    uint8_t *used = calloc(pool->code_count ? pool->code_count : 1, 1);
    uint32_t *sorted = used ? sorted_codes(pool, used) : NULL;
    bsp_err rc = sorted ? BSP_OK : BSP_ENOMEM;
    mark_ctx m = {pool, sorted, used};
    if (rc == BSP_OK) rc = store_config_scan(txn, COUPON_USED_KIND, mark_used, &m);
    if (rc == BSP_OK) rc = store_config_scan(txn, COUPON_VISITOR_KIND, restore_visitor, &m);
    for (size_t i = 0; rc == BSP_OK && i < pool->code_count; i++)
        if (!used[i]) pool->avail[pool->avail_count++] = (uint32_t)i;
    free(sorted);
    free(used);
    return rc;
}

bsp_err coupon_pool_load(campaign_registry *reg, bsp_txn *txn, const char *campaign,
                         const cJSON *codes, coupon_pool **out) {
    *out = NULL;
    coupon_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return BSP_ENOMEM;
    pool->reg = reg;
    snprintf(pool->campaign, sizeof pool->campaign, "%s", campaign);
    pthread_mutex_init(&pool->mu, NULL);
    bsp_err rc = pool_copy_codes(pool, codes);
    if (rc == BSP_OK) rc = pool_read_state(pool, txn);
    if (rc != BSP_OK) {
        coupon_pool_free(pool);
        return rc;
    }
    *out = pool;
    return BSP_OK;
}

/* --- reserving and releasing ------------------------------------------------------------- */

typedef struct reserve_job {
    coupon_pool *pool;
    const char **codes;
    size_t count;
    char time[32];
} reserve_job;

static bsp_err reserve_run(bsp_ingest *ing, bsp_txn *txn, void *arg) {
    (void)ing;
    reserve_job *job = arg;
    char key[CAMPAIGN_ID_MAX + CAMPAIGN_CODE_MAX + 4];
    for (size_t i = 0; i < job->count; i++) {
        used_key(key, sizeof key, job->pool->campaign, job->codes[i]);
        bsp_err rc = store_config_put(txn, COUPON_USED_KIND, key, job->time, strlen(job->time));
        if (rc != BSP_OK) return rc;
    }
    return BSP_OK;
}

bool coupon_pool_wants_refill(coupon_pool *pool) {
    pthread_mutex_lock(&pool->mu);
    bool wants = pool->refill_pending && !pool->closed;
    pthread_mutex_unlock(&pool->mu);
    return wants;
}

/* After the job: extend the block, or release it if the pool closed meanwhile. */
static void reserve_finish(coupon_pool *pool, size_t from, size_t count, bsp_err rc) {
    pthread_mutex_lock(&pool->mu);
    pool->refill_pending = false;
    if (rc == BSP_OK && !pool->closed && pool->reserved == from) {
        pool->reserved += count;
    } else if (rc == BSP_OK) {
        for (size_t i = 0; i < count; i++)
            registry_release(pool->reg, pool->campaign, pool->codes[pool->avail[from + i]]);
    }
    pthread_mutex_unlock(&pool->mu);
}

bsp_err coupon_pool_reserve(coupon_pool *pool) {
    pthread_mutex_lock(&pool->mu);
    size_t from = pool->reserved;
    size_t count = pool->avail_count - from;
    if (count > COUPON_BLOCK) count = COUPON_BLOCK;
    bool skip = pool->closed || count == 0;
    pthread_mutex_unlock(&pool->mu);
    if (skip) return BSP_OK;
    reserve_job job = {.pool = pool, .count = count};
    job.codes = malloc(count * sizeof *job.codes);
    if (!job.codes) return BSP_ENOMEM;
    for (size_t i = 0; i < count; i++) /* avail and codes never change after load */
        job.codes[i] = pool->codes[pool->avail[from + i]];
    bsp_time_format(bsp_now_ms(), job.time, sizeof job.time);
    bsp_err rc = ingest_run_job(pool->reg->ing, reserve_run, &job);
    free(job.codes);
    reserve_finish(pool, from, count, rc);
    if (rc != BSP_OK)
        bsp_warn("coupons of %s: could not reserve codes (%s)", pool->campaign, bsp_err_name(rc));
    return rc;
}

void coupon_pool_close(coupon_pool *pool) {
    pthread_mutex_lock(&pool->mu);
    if (!pool->closed) {
        pool->closed = true;
        for (size_t i = pool->next; i < pool->reserved; i++)
            registry_release(pool->reg, pool->campaign, pool->codes[pool->avail[i]]);
        pool->reserved = pool->next;
    }
    pthread_mutex_unlock(&pool->mu);
}

void coupon_pool_free(coupon_pool *pool) {
    if (!pool) return;
    for (size_t i = 0; i < pool->code_count; i++)
        free(pool->codes[i]);
    for (size_t i = 0; i < pool->extra_count; i++)
        free(pool->extras[i]);
    free(pool->codes);
    free(pool->avail);
    free(pool->extras);
    free(pool->keys);
    free(pool->vals);
    pthread_mutex_destroy(&pool->mu);
    free(pool);
}
