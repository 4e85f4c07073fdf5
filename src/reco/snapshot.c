/* snapshot.c - a snapshot's life: allocation, the derived per-item fields,
 * reference counting, saving to DATA_DIR/models/reco-<version>.bin and
 * loading (with every index checked, so a damaged file is refused rather
 * than trusted), and the holder the server answers from.
 *
 * The holder: `current` is an atomic pointer and `entering` counts readers
 * between loading it and taking their reference. acquire = entering++,
 * load current, ref it, entering--; swap = exchange current, wait until
 * entering is 0 (only the swapping thread waits; any reader that saw the
 * old pointer has its reference by then), drop the holder's reference. The
 * last release frees, on whichever thread that is. */
#include "reco/reco_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json/json.h"

#define SNAP_MAGIC "BSPRECO1"
#define SNAP_KEEP 3

/* --- life -------------------------------------------------------------------- */

reco_snapshot *reco_snapshot_alloc(void) {
    reco_snapshot *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    atomic_init(&s->refs, 1);
    atomic_init(&s->attr_tables, 0);
    pthread_mutex_init(&s->attr_mu, NULL);
    return s;
}

static void snapshot_free(reco_snapshot *s) {
    for (uint32_t i = 0; s->ids && i < s->n_items; i++)
        free(s->ids[i]);
    for (uint32_t i = 0; s->products && i < s->n_items; i++)
        cJSON_Delete(s->products[i]);
    free(s->ids);
    free(s->products);
    imap_free(&s->map);
    free(s->category);
    free(s->price);
    free(s->in_stock);
    free(s->topcat);
    free(s->pop);
    free(s->trend);
    free(s->repeat);
    free(s->cycle_days);
    free(s->pop_order);
    free(s->trend_order);
    for (int r = 0; r < RECO_REL_COUNT; r++)
        reco_graph_free(&s->graph[r]);
    free(s->pids);
    free(s->user_off);
    free(s->hist);
    free(s->uvec);
    for (unsigned t = 0; t < atomic_load(&s->attr_tables); t++) {
        for (uint32_t i = 0; i < s->attr[t].n_distinct; i++)
            free(s->attr[t].distinct[i]);
        free(s->attr[t].distinct);
        free(s->attr[t].codes);
    }
    pthread_mutex_destroy(&s->attr_mu);
    free(s);
}

reco_snapshot *reco_snapshot_ref(reco_snapshot *s) {
    if (s) atomic_fetch_add(&s->refs, 1);
    return s;
}

void reco_snapshot_unref(reco_snapshot *s) {
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) snapshot_free(s);
}

uint64_t reco_snapshot_version(const reco_snapshot *s) {
    return s->version;
}
int64_t reco_snapshot_created_ms(const reco_snapshot *s) {
    return s->created_ms;
}
int64_t reco_snapshot_data_end_ms(const reco_snapshot *s) {
    return s->data_end_ms;
}
size_t reco_snapshot_items(const reco_snapshot *s) {
    return s->n_items;
}
size_t reco_snapshot_users(const reco_snapshot *s) {
    return s->n_users;
}
size_t reco_snapshot_dims(const reco_snapshot *s) {
    return s->dim;
}

uint64_t reco_snapshot_bytes(const reco_snapshot *s) {
    uint64_t b = (uint64_t)s->n_items * (8 * sizeof(float) + 48);
    for (int r = 0; r < RECO_REL_COUNT; r++)
        b += reco_graph_entries(&s->graph[r], s->n_items) * 12;
    if (s->user_off) b += (uint64_t)s->user_off[s->n_users] * sizeof(reco_hist);
    b += (uint64_t)s->n_users * s->dim * sizeof(float);
    return b + (uint64_t)s->n_users * 12;
}

uint32_t reco_item_find(const reco_snapshot *s, const char *id) {
    return imap_find(&s->map, (const char *const *)s->ids, id);
}

/* --- derived fields ---------------------------------------------------------------- */

static const float *sort_key;
static int by_key_desc(const void *a, const void *b) {
    float x = sort_key[*(const uint32_t *)a], y = sort_key[*(const uint32_t *)b];
    if (x != y) return x > y ? -1 : 1;
    return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

static uint32_t *order_by(const float *key, uint32_t n) {
    uint32_t *order = malloc(((size_t)n + 1) * sizeof *order);
    if (!order) return NULL;
    for (uint32_t i = 0; i < n; i++)
        order[i] = i;
    sort_key = key; /* snapshots are finished one at a time (train, load) */
    qsort(order, n, sizeof *order, by_key_desc);
    return order;
}

static uint32_t top_category_hash(const char *cat) {
    if (!cat || !*cat) return RECO_NONE;
    const char *end = strstr(cat, " > ");
    size_t len = end ? (size_t)(end - cat) : strlen(cat);
    return (uint32_t)(bsp_hash64(cat, len) % 0xfffffffbu);
}

static void derive_item(reco_snapshot *s, uint32_t i) {
    const cJSON *p = s->products[i];
    s->category[i] = json_get_string(p, "category");
    s->price[i] = (float)json_get_number(p, "price", -1);
    const cJSON *stock = json_member(p, "in_stock");
    s->in_stock[i] = cJSON_IsBool(stock) ? (int8_t)cJSON_IsTrue(stock) : -1;
    s->topcat[i] = top_category_hash(s->category[i]);
}

static int float_cmp(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Quartiles of the known prices, for the derived attribute price_band. */
static bsp_err price_quartiles(reco_snapshot *s) {
    float *known = malloc(((size_t)s->n_items + 1) * sizeof *known);
    if (!known) return BSP_ENOMEM;
    size_t n = 0;
    for (uint32_t i = 0; i < s->n_items; i++)
        if (s->price[i] >= 0) known[n++] = s->price[i];
    qsort(known, n, sizeof *known, float_cmp);
    for (int q = 0; q < 3; q++)
        s->price_q[q] = n ? known[n * (size_t)(q + 1) / 4] : 0;
    free(known);
    return BSP_OK;
}

bsp_err reco_snapshot_finish(reco_snapshot *s) {
    uint32_t n = s->n_items;
    s->category = calloc((size_t)n + 1, sizeof *s->category);
    s->price = malloc(((size_t)n + 1) * sizeof *s->price);
    s->in_stock = malloc((size_t)n + 1);
    s->topcat = malloc(((size_t)n + 1) * sizeof *s->topcat);
    if (!s->category || !s->price || !s->in_stock || !s->topcat) return BSP_ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        derive_item(s, i);
    if (price_quartiles(s) != BSP_OK) return BSP_ENOMEM;
    if (imap_init(&s->map, n) != BSP_OK) return BSP_ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        if (imap_put(&s->map, (const char *const *)s->ids, i) != BSP_OK) return BSP_ENOMEM;
    s->pop_order = order_by(s->pop, n);
    s->trend_order = order_by(s->trend, n);
    return s->pop_order && s->trend_order ? BSP_OK : BSP_ENOMEM;
}

/* --- save ------------------------------------------------------------------------------ */

typedef struct snap_header {
    char magic[8];
    uint32_t hist_size, n_items, n_users, dim; /* dim 0: no user vectors (older files) */
    uint64_t version;
    int64_t created_ms, data_end_ms;
} snap_header;

static bool put(FILE *f, const void *data, size_t elem, size_t count) {
    uint64_t bytes = (uint64_t)elem * count;
    if (fwrite(&bytes, sizeof bytes, 1, f) != 1) return false;
    return bytes == 0 || fwrite(data, 1, bytes, f) == bytes;
}

/* ids and products as NUL-separated text */
static bool put_strings(FILE *f, const reco_snapshot *s, bool products) {
    bsp_buf b = {0};
    bool ok = true;
    for (uint32_t i = 0; ok && i < s->n_items; i++) {
        if (products && s->products[i])
            ok = json_write(&b, s->products[i]) == BSP_OK;
        else if (!products)
            ok = bsp_buf_puts(&b, s->ids[i]) == BSP_OK;
        ok = ok && bsp_buf_append(&b, "", 1) == BSP_OK;
    }
    ok = ok && put(f, b.data, 1, b.len);
    bsp_buf_free(&b);
    return ok;
}

static bool put_graph(FILE *f, const reco_graph *g, uint32_t n) {
    uint32_t len = g->off ? g->off[n] : 0;
    uint32_t zero[1] = {0};
    bool ok = g->off ? put(f, g->off, 4, (size_t)n + 1) : put(f, zero, 4, 0);
    ok = ok && put(f, g->idx, 4, len) && put(f, g->val, 4, len);
    return ok && put(f, g->count, 4, g->count ? len : 0);
}

static bool write_body(FILE *f, const reco_snapshot *s) {
    snap_header h = {.hist_size = sizeof(reco_hist),
                     .n_items = s->n_items,
                     .n_users = s->n_users,
                     .dim = s->dim,
                     .version = s->version,
                     .created_ms = s->created_ms,
                     .data_end_ms = s->data_end_ms};
    memcpy(h.magic, SNAP_MAGIC, 8);
    bool ok =
        fwrite(&h, sizeof h, 1, f) == 1 && put_strings(f, s, false) && put_strings(f, s, true);
    size_t n = s->n_items;
    ok = ok && put(f, s->pop, 4, n) && put(f, s->trend, 4, n) && put(f, s->repeat, 4, n) &&
         put(f, s->cycle_days, 4, n);
    for (int r = 0; ok && r < RECO_REL_COUNT; r++)
        ok = put_graph(f, &s->graph[r], s->n_items);
    uint32_t hist_len = s->user_off[s->n_users];
    ok = ok && put(f, s->pids, 8, s->n_users) && put(f, s->user_off, 4, (size_t)s->n_users + 1);
    ok = ok && put(f, s->hist, sizeof(reco_hist), hist_len);
    return ok && (!s->dim || put(f, s->uvec, 4, (size_t)s->n_users * s->dim));
}

/* Newest version among dir's reco-*.bin; and deletes all but the newest
 * keep (when keep > 0). */
static uint64_t scan_versions(const char *dir, int keep) {
    uint64_t found[64];
    size_t n = 0;
    uint64_t newest = 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        unsigned long long v;
        char tail[8];
        if (sscanf(e->d_name, "reco-%llu.%4s", &v, tail) != 2 || strcmp(tail, "bin") != 0) continue;
        if (v > newest) newest = v;
        if (n < 64) found[n++] = v;
    }
    closedir(d);
    for (size_t i = 0; keep > 0 && i < n; i++) {
        size_t newer = 0;
        for (size_t j = 0; j < n; j++)
            newer += found[j] > found[i];
        if (newer < (size_t)keep) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/reco-%010llu.bin", dir, (unsigned long long)found[i]);
        unlink(path);
    }
    return newest;
}

static bsp_err write_file(const char *tmp, const char *path, const reco_snapshot *s) {
    FILE *f = fopen(tmp, "wb");
    if (!f) return BSP_EIO;
    bool ok = write_body(f, s) && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0) ok = false;
    if (ok && rename(tmp, path) == 0) return BSP_OK;
    unlink(tmp);
    return BSP_EIO;
}

bsp_err reco_snapshot_save(reco_snapshot *s, const char *data_dir) {
    char dir[4096], path[4200], tmp[4300];
    snprintf(dir, sizeof dir, "%s/models", data_dir);
    if (mkdir(data_dir, 0755) != 0 && errno != EEXIST) return BSP_EIO;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return BSP_EIO;
    s->version = scan_versions(dir, 0) + 1;
    snprintf(path, sizeof path, "%s/reco-%010llu.bin", dir, (unsigned long long)s->version);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    bsp_err rc = write_file(tmp, path, s);
    if (rc != BSP_OK) return rc;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    scan_versions(dir, SNAP_KEEP);
    return BSP_OK;
}

/* --- load --------------------------------------------------------------------------------- */

/* Reads one array of exactly want bytes (want == SIZE_MAX: any size, *got
 * set) into a new buffer. */
static void *get(FILE *f, size_t want, size_t *got) {
    uint64_t bytes;
    if (fread(&bytes, sizeof bytes, 1, f) != 1) return NULL;
    if (want != SIZE_MAX && bytes != want) return NULL;
    if (bytes > (1ull << 36)) return NULL;
    void *p = malloc(bytes + 1);
    if (!p) return NULL;
    if (bytes && fread(p, 1, bytes, f) != bytes) {
        free(p);
        return NULL;
    }
    if (got) *got = bytes;
    return p;
}

static bool get_strings(FILE *f, reco_snapshot *s, bool products) {
    size_t len;
    char *text = get(f, SIZE_MAX, &len);
    if (!text) return false;
    text[len] = '\0';
    char *p = text, *end = text + len;
    bool ok = true;
    for (uint32_t i = 0; ok && i < s->n_items; i++) {
        size_t l = p < end ? strnlen(p, (size_t)(end - p)) : 0;
        if (p + l >= end)
            ok = false;
        else if (products)
            s->products[i] = l ? cJSON_ParseWithLength(p, l) : NULL;
        else
            ok = (s->ids[i] = strdup(p)) != NULL;
        p += l + 1;
    }
    free(text);
    return ok;
}

static bool graph_valid(const reco_graph *g, uint32_t n) {
    if (g->off[0] != 0) return false;
    for (uint32_t i = 0; i < n; i++)
        if (g->off[i + 1] < g->off[i]) return false;
    for (uint32_t p = 0; p < g->off[n]; p++)
        if (g->idx[p] >= n) return false;
    return true;
}

static bool get_graph(FILE *f, reco_graph *g, uint32_t n) {
    g->off = get(f, ((size_t)n + 1) * 4, NULL);
    if (!g->off) return false;
    size_t len = (size_t)g->off[n] * 4, count_len;
    g->idx = get(f, len, NULL);
    g->val = get(f, len, NULL);
    g->count = get(f, SIZE_MAX, &count_len);
    if (!g->idx || !g->val || !g->count || (count_len != 0 && count_len != len)) return false;
    if (count_len == 0) {
        free(g->count);
        g->count = NULL;
    }
    return graph_valid(g, n);
}

static bool users_valid(const reco_snapshot *s) {
    if (s->user_off[0] != 0) return false;
    for (uint32_t u = 0; u < s->n_users; u++)
        if (s->user_off[u + 1] < s->user_off[u] || (u && s->pids[u] <= s->pids[u - 1]))
            return false;
    for (uint32_t p = 0; p < s->user_off[s->n_users]; p++)
        if (s->hist[p].item >= s->n_items) return false;
    return true;
}

static bool read_body(FILE *f, reco_snapshot *s) {
    size_t n = s->n_items;
    s->ids = calloc(n + 1, sizeof *s->ids);
    s->products = calloc(n + 1, sizeof *s->products);
    if (!s->ids || !s->products || !get_strings(f, s, false) || !get_strings(f, s, true))
        return false;
    s->pop = get(f, n * 4, NULL);
    s->trend = get(f, n * 4, NULL);
    s->repeat = get(f, n * 4, NULL);
    s->cycle_days = get(f, n * 4, NULL);
    if (!s->pop || !s->trend || !s->repeat || !s->cycle_days) return false;
    for (int r = 0; r < RECO_REL_COUNT; r++)
        if (!get_graph(f, &s->graph[r], s->n_items)) return false;
    s->pids = get(f, (size_t)s->n_users * 8, NULL);
    s->user_off = get(f, ((size_t)s->n_users + 1) * 4, NULL);
    if (!s->pids || !s->user_off) return false;
    s->hist = get(f, (size_t)s->user_off[s->n_users] * sizeof(reco_hist), NULL);
    if (!s->hist || !users_valid(s)) return false;
    if (s->dim && !(s->uvec = get(f, (size_t)s->n_users * s->dim * 4, NULL))) return false;
    return true;
}

bsp_err reco_snapshot_load_file(const char *path, reco_snapshot **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return errno == ENOENT ? BSP_ENOTFOUND : BSP_EIO;
    snap_header h;
    reco_snapshot *s = reco_snapshot_alloc();
    bool ok = s && fread(&h, sizeof h, 1, f) == 1 && memcmp(h.magic, SNAP_MAGIC, 8) == 0 &&
              h.hist_size == sizeof(reco_hist) && h.dim <= RECO_UVEC_DIM;
    if (ok) {
        s->n_items = h.n_items;
        s->n_users = h.n_users;
        s->dim = h.dim <= RECO_UVEC_DIM ? h.dim : 0;
        s->version = h.version;
        s->created_ms = h.created_ms;
        s->data_end_ms = h.data_end_ms;
        ok = read_body(f, s) && reco_snapshot_finish(s) == BSP_OK;
    }
    fclose(f);
    if (!ok) {
        if (s) snapshot_free(s);
        bsp_warn("model snapshot %s is unreadable", path);
        return s ? BSP_EPARSE : BSP_ENOMEM;
    }
    *out = s;
    return BSP_OK;
}

bsp_err reco_snapshot_load_latest(const char *data_dir, reco_snapshot **out) {
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/models", data_dir);
    uint64_t v = scan_versions(dir, 0);
    *out = NULL;
    if (!v) return BSP_ENOTFOUND;
    snprintf(path, sizeof path, "%s/reco-%010llu.bin", dir, (unsigned long long)v);
    return reco_snapshot_load_file(path, out);
}

/* --- holder ---------------------------------------------------------------------------------- */

struct reco_holder {
    _Atomic(reco_snapshot *) current;
    atomic_uint entering;
};

reco_holder *reco_holder_new(void) {
    reco_holder *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    atomic_init(&h->current, NULL);
    atomic_init(&h->entering, 0);
    return h;
}

void reco_holder_free(reco_holder *h) {
    if (!h) return;
    reco_snapshot_unref(atomic_load(&h->current));
    free(h);
}

reco_snapshot *reco_holder_acquire(reco_holder *h) {
    atomic_fetch_add(&h->entering, 1);
    reco_snapshot *s = atomic_load(&h->current);
    if (s) atomic_fetch_add(&s->refs, 1);
    atomic_fetch_sub(&h->entering, 1);
    return s;
}

void reco_holder_swap(reco_holder *h, reco_snapshot *s) {
    reco_snapshot *old = atomic_exchange(&h->current, s);
    while (atomic_load(&h->entering) != 0)
        sched_yield();
    reco_snapshot_unref(old);
}
