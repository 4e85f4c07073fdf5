/* registry.c - the segments in force: loading and validating definitions,
 * the compiled set (swapped whole, shared with readers by a reference
 * count), admin operations, and preview. Membership upkeep is in
 * members.c; both share struct bsp_segments from segment_internal.h. */
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "segment/segment_internal.h"

#define CONFIG_KIND "segment"

/* --- sets ------------------------------------------------------------------ */

void seg_set_release(seg_set *set) {
    if (!set || atomic_fetch_sub(&set->refcount, 1) != 1) return;
    for (size_t i = 0; i < set->count; i++)
        seg_def_free(set->defs[i]);
    free(set->defs);
    free(set->index);
    free(set);
}

static size_t id_home(const seg_set *set, const char *id) {
    return (size_t)bsp_hash64(id, strlen(id)) & set->index_mask;
}

/* Indexes the defs by id, once they are in their final order. Without
 * memory the set is searched one def at a time, as while it is built. */
static void set_index(seg_set *set) {
    size_t slots = 16;
    while (slots < 2 * set->count)
        slots *= 2;
    set->index = calloc(slots, sizeof *set->index);
    if (!set->index) return;
    set->index_mask = slots - 1;
    for (size_t i = 0; i < set->count; i++) {
        size_t at = id_home(set, set->defs[i]->id);
        while (set->index[at])
            at = (at + 1) & set->index_mask;
        set->index[at] = (uint32_t)(i + 1);
    }
}

/* Every membership of every changed profile is looked up here (members.c
 * drops those of deleted segments), so the built set answers by hash. */
size_t seg_set_find(const seg_set *set, const char *id) {
    if (!set) return SIZE_MAX;
    if (!set->index) {
        for (size_t i = 0; i < set->count; i++)
            if (strcmp(set->defs[i]->id, id) == 0) return i;
        return SIZE_MAX;
    }
    for (size_t at = id_home(set, id); set->index[at]; at = (at + 1) & set->index_mask) {
        size_t i = set->index[at] - 1;
        if (strcmp(set->defs[i]->id, id) == 0) return i;
    }
    return SIZE_MAX;
}

seg_set *segs_acquire(bsp_segments *s) {
    pthread_mutex_lock(&s->mu);
    seg_set *set = s->cur;
    atomic_fetch_add(&set->refcount, 1);
    pthread_mutex_unlock(&s->mu);
    return set;
}

static void segs_swap(bsp_segments *s, seg_set *fresh) {
    pthread_mutex_lock(&s->mu);
    seg_set *old = s->cur;
    s->cur = fresh;
    pthread_mutex_unlock(&s->mu);
    seg_set_release(old);
}

/* --- building a set -------------------------------------------------------- */

typedef struct builder {
    seg_def **defs;
    size_t count, cap;
    const char *skip_id; /* replaced or deleted */
    bsp_error *err;
} builder;

static bsp_err builder_add(builder *b, seg_def *d) {
    if (b->count == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        seg_def **grown = realloc(b->defs, cap * sizeof *grown);
        if (!grown) {
            seg_def_free(d);
            return BSP_ENOMEM;
        }
        b->defs = grown;
        b->cap = cap;
    }
    b->defs[b->count++] = d;
    return BSP_OK;
}

static bsp_err builder_scan(void *ctx, bsp_slice id, bsp_slice json) {
    builder *b = ctx;
    if (b->skip_id && strlen(b->skip_id) == id.len && memcmp(b->skip_id, id.data, id.len) == 0)
        return BSP_OK;
    bsp_error err;
    cJSON *body = json_parse(json.data, json.len, BSP_JSON_MAX_DEPTH, &err);
    seg_def *d = NULL;
    bsp_err rc = body ? seg_def_from_json(body, NULL, true, &d, &err) : BSP_EPARSE;
    cJSON_Delete(body);
    if (rc == BSP_ENOMEM) return rc;
    if (rc) {
        bsp_warn("segment %.*s unreadable (%s), ignored", (int)id.len, id.data, err.message);
        return BSP_OK;
    }
    return builder_add(b, d);
}

/* Resolves in_segment() ids to indices; unknown ids are an error. */
static bsp_err resolve_refs(seg_set *set, bsp_error *err) {
    for (size_t i = 0; i < set->count; i++) {
        seg_def *d = set->defs[i];
        if (!d->cond) continue;
        const char *ids[64];
        size_t n = cond_segment_refs(d->cond, ids, 64);
        if (n > 64)
            return bsp_error_set(err, BSP_ETYPE, "condition", "names more than 64 segments");
        free(d->refs);
        d->refs = n ? malloc(n * sizeof *d->refs) : NULL;
        if (n && !d->refs) return BSP_ENOMEM;
        d->nrefs = n;
        for (size_t k = 0; k < n; k++) {
            d->refs[k] = seg_set_find(set, ids[k]);
            if (d->refs[k] == SIZE_MAX)
                return bsp_error_set(err, BSP_ETYPE, "condition",
                                     "segment %s (in %s) names unknown segment \"%s\"", d->id,
                                     d->id, ids[k]);
        }
    }
    return BSP_OK;
}

/* Depth-first topological order; a cycle is an error naming a member. */
typedef struct topo {
    seg_set *set;
    unsigned char *state; /* 0 new, 1 visiting, 2 done */
    seg_def **out;
    size_t n;
    bsp_error *err;
} topo;

static bsp_err topo_visit(topo *t, size_t i) {
    if (t->state[i] == 2) return BSP_OK;
    if (t->state[i] == 1)
        return bsp_error_set(t->err, BSP_ETYPE, "condition",
                             "in_segment() makes a cycle through segment \"%s\"",
                             t->set->defs[i]->id);
    t->state[i] = 1;
    seg_def *d = t->set->defs[i];
    for (size_t k = 0; k < d->nrefs; k++) {
        bsp_err rc = topo_visit(t, d->refs[k]);
        if (rc) return rc;
    }
    t->state[i] = 2;
    t->out[t->n++] = d;
    return BSP_OK;
}

static bsp_err topo_sort(seg_set *set, bsp_error *err) {
    topo t = {set, calloc(set->count + 1, 1), malloc((set->count + 1) * sizeof(seg_def *)), 0, err};
    bsp_err rc = t.state && t.out ? BSP_OK : BSP_ENOMEM;
    for (size_t i = 0; !rc && i < set->count; i++)
        rc = topo_visit(&t, i);
    if (!rc && set->count) {
        memcpy(set->defs, t.out, set->count * sizeof *set->defs);
        rc = resolve_refs(set, err); /* indices moved with the order */
    }
    free(t.state);
    free(t.out);
    return rc;
}

/* Builds the set from the store, leaving out skip_id and adding extra
 * (taken, may be NULL). */
static bsp_err set_build(bsp_txn *txn, const char *skip_id, seg_def *extra, seg_set **out,
                         bsp_error *err) {
    *out = NULL;
    builder b = {.skip_id = skip_id, .err = err};
    bsp_err rc = store_config_scan(txn, CONFIG_KIND, builder_scan, &b);
    if (!rc && extra)
        rc = builder_add(&b, extra);
    else
        seg_def_free(extra);
    seg_set *set = calloc(1, sizeof *set);
    if (!set) rc = rc ? rc : BSP_ENOMEM;
    if (set) {
        atomic_init(&set->refcount, 1);
        set->defs = b.defs;
        set->count = b.count;
    } else {
        for (size_t i = 0; i < b.count; i++)
            seg_def_free(b.defs[i]);
        free(b.defs);
    }
    if (!rc) rc = resolve_refs(set, err);
    if (!rc) rc = topo_sort(set, err);
    for (size_t i = 0; !rc && i < set->count; i++)
        if (set->defs[i]->inputs & COND_USES_TIME) set->any_time = true;
    if (!rc) set_index(set);
    if (rc) {
        seg_set_release(set);
        return rc;
    }
    *out = set;
    return BSP_OK;
}

/* Event names every segment reads, for the profiles' recent events. */
static bsp_err set_watch(const seg_set *set) {
    const char **names = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < set->count; i++) {
        const seg_def *d = set->defs[i];
        if (!d->cond || !d->nevents) continue;
        if (n + d->nevents > cap) {
            cap = (n + d->nevents) * 2;
            const char **grown = realloc(names, cap * sizeof *grown);
            if (!grown) {
                free(names);
                return BSP_ENOMEM;
            }
            names = grown;
        }
        n += cond_event_names(d->cond, names + n, d->nevents);
    }
    bsp_err rc = segment_watch_names("segments", names, n);
    free(names);
    return rc;
}

bsp_err segments_reload(bsp_segments *s, bsp_txn *txn) {
    bsp_error err;
    bsp_error_clear(&err);
    seg_set *set;
    bsp_err rc = set_build(txn, NULL, NULL, &set, &err);
    if (rc) {
        bsp_error_log("segments: cannot load definitions: %s", err.message);
        return rc;
    }
    rc = set_watch(set);
    segs_swap(s, set);
    return rc;
}

/* --- the watch list shared with other owners ------------------------------- */

#define WATCH_OWNERS 8

static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char owner[32];
    char **names;
    size_t count;
} watch_owners[WATCH_OWNERS];

static void watch_owner_clear(size_t i) {
    for (size_t k = 0; k < watch_owners[i].count; k++)
        free(watch_owners[i].names[k]);
    free(watch_owners[i].names);
    watch_owners[i].names = NULL;
    watch_owners[i].count = 0;
}

static size_t watch_owner_slot(const char *owner) {
    size_t free_slot = SIZE_MAX;
    for (size_t i = 0; i < WATCH_OWNERS; i++) {
        if (strcmp(watch_owners[i].owner, owner) == 0) return i;
        if (!watch_owners[i].owner[0] && free_slot == SIZE_MAX) free_slot = i;
    }
    if (free_slot != SIZE_MAX)
        snprintf(watch_owners[free_slot].owner, sizeof watch_owners[free_slot].owner, "%s", owner);
    return free_slot;
}

static bsp_err watch_publish(void) {
    size_t total = 0;
    for (size_t i = 0; i < WATCH_OWNERS; i++)
        total += watch_owners[i].count;
    const char **all = malloc((total + 1) * sizeof *all);
    if (!all) return BSP_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < WATCH_OWNERS; i++)
        for (size_t k = 0; k < watch_owners[i].count; k++)
            all[n++] = watch_owners[i].names[k];
    bsp_err rc = profile_watch_events(all, n, n ? INT64_MAX : 0);
    free(all);
    return rc;
}

bsp_err segment_watch_names(const char *owner, const char *const *names, size_t count) {
    pthread_mutex_lock(&watch_mu);
    size_t slot = watch_owner_slot(owner);
    bsp_err rc = slot == SIZE_MAX ? BSP_ETOOBIG : BSP_OK;
    if (!rc) {
        watch_owner_clear(slot);
        watch_owners[slot].names = count ? calloc(count, sizeof(char *)) : NULL;
        if (count && !watch_owners[slot].names) rc = BSP_ENOMEM;
        for (size_t i = 0; !rc && i < count; i++) {
            watch_owners[slot].names[i] = strdup(names[i]);
            if (!watch_owners[slot].names[i]) rc = BSP_ENOMEM;
            watch_owners[slot].count = i + 1;
        }
    }
    if (!rc) rc = watch_publish();
    pthread_mutex_unlock(&watch_mu);
    return rc;
}

/* --- built-in segments ------------------------------------------------------ */

static const struct {
    const char *id, *name, *description, *condition;
} builtins[] = {
    {"new_visitors", "New visitors", "In their first session and never bought",
     "computed.sessions <= 1 and computed.orders = 0"},
    {"returning_visitors", "Returning visitors", "Came back for a second session or more",
     "computed.sessions >= 2"},
    {"first_time_buyers", "First-time buyers", "Exactly one order so far", "computed.orders = 1"},
    {"repeat_buyers", "Repeat buyers", "Two orders or more", "computed.orders >= 2"},
    {"cart_abandoners", "Cart abandoners", "Something in the cart and no activity for an hour",
     "computed.cart_items > 0 and hours_since(computed.last_seen) >= 1"},
    {"high_value", "High value",
     "Top 10% of buyers by net revenue; the threshold is recomputed as the population changes",
     "computed.orders >= 1 and computed.revenue >= 1000000000"},
    {"lapsed_buyers", "Lapsed buyers", "Bought before, but not in the last 90 days",
     "computed.orders >= 1 and days_since(computed.last_order_at) > 90"},
};

static bsp_err builtin_put(bsp_txn *txn, size_t i, int64_t now_ms) {
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "id", builtins[i].id) &&
              cJSON_AddStringToObject(o, "name", builtins[i].name) &&
              cJSON_AddStringToObject(o, "description", builtins[i].description) &&
              cJSON_AddStringToObject(o, "condition", builtins[i].condition) &&
              cJSON_AddBoolToObject(o, "builtin", true) &&
              cJSON_AddNumberToObject(o, "created_ms", (double)now_ms) &&
              cJSON_AddNumberToObject(o, "updated_ms", (double)now_ms);
    bsp_buf text = {0};
    bsp_err rc = ok ? json_write(&text, o) : BSP_ENOMEM;
    if (!rc) rc = store_config_put(txn, CONFIG_KIND, builtins[i].id, text.data, text.len);
    bsp_buf_free(&text);
    cJSON_Delete(o);
    return rc;
}

/* Creates the built-in segments once per store (meta "segments_builtin"). */
static bsp_err builtins_create(bsp_store *st) {
    bsp_txn *txn;
    bsp_err rc = store_txn_begin(st, true, &txn);
    if (rc) return rc;
    bsp_slice done;
    if (store_meta_get(txn, "segments_builtin", &done) == BSP_OK) {
        store_txn_abort(txn);
        return BSP_OK;
    }
    int64_t now = bsp_now_ms();
    for (size_t i = 0; !rc && i < sizeof builtins / sizeof builtins[0]; i++)
        rc = builtin_put(txn, i, now);
    if (!rc) rc = store_meta_put(txn, "segments_builtin", "1", 1);
    if (rc) {
        store_txn_abort(txn);
        return rc;
    }
    return store_txn_commit(txn);
}

/* --- opening ---------------------------------------------------------------- */

bsp_err segments_open(bsp_store *st, const segments_opts *opts, bsp_segments **out) {
    *out = NULL;
    bsp_segments *s = calloc(1, sizeof *s);
    if (!s) return BSP_ENOMEM;
    s->st = st;
    s->sweep_ms = opts && opts->sweep_ms ? opts->sweep_ms : 60000;
    s->rescan_ms = opts && opts->rescan_ms ? opts->rescan_ms : 6 * 3600000ull;
    s->active_ms = opts && opts->active_ms ? opts->active_ms : 3 * 3600000ull;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->bg_mu, NULL);
    pthread_cond_init(&s->bg_cv, NULL);
    bsp_err rc = opts && opts->no_builtins ? BSP_OK : builtins_create(st);
    bsp_txn *txn = NULL;
    if (!rc) rc = store_txn_begin(st, false, &txn);
    bsp_error err;
    bsp_error_clear(&err);
    if (!rc) rc = set_build(txn, NULL, NULL, &s->cur, &err);
    if (txn) store_txn_abort(txn);
    if (!rc) rc = set_watch(s->cur);
    if (rc) {
        bsp_error_log("segments: cannot load definitions: %s", err.message[0] ? err.message : "");
        segments_close(s);
        return rc;
    }
    *out = s;
    return BSP_OK;
}

bool segments_exists(bsp_segments *s, const char *id) {
    seg_set *set = segs_acquire(s);
    bool found = seg_set_find(set, id) != SIZE_MAX;
    seg_set_release(set);
    return found;
}

/* --- admin writes (jobs on the writer thread) ------------------------------- */

typedef struct put_job {
    bsp_segments *s;
    seg_def *def; /* taken by the job */
    bool create_only;
    bsp_error *err;
} put_job;

static bsp_err put_job_run(bsp_ingest *ing, bsp_txn *txn, void *arg) {
    (void)ing;
    put_job *job = arg;
    seg_def *d = job->def;
    job->def = NULL;
    seg_set *cur = job->s->cur; /* the writer thread is the only one that swaps */
    size_t at = seg_set_find(cur, d->id);
    if (at != SIZE_MAX && job->create_only) {
        bsp_error_set(job->err, BSP_EEXISTS, "id", "segment \"%s\" exists", d->id);
        seg_def_free(d);
        return BSP_EEXISTS;
    }
    if (at != SIZE_MAX && cur->defs[at]->builtin) d->builtin = true;
    int64_t now = bsp_now_ms();
    d->created_ms = at != SIZE_MAX ? cur->defs[at]->created_ms : now;
    d->updated_ms = now;
    char id[SEGMENT_ID_MAX + 1];
    snprintf(id, sizeof id, "%s", d->id);
    /* Validate against the others first: a refused job must write nothing,
     * since its transaction still commits the rest of the batch. */
    cJSON *stored = seg_def_to_json(d, true);
    seg_set *fresh = NULL;
    bsp_err rc = stored ? set_build(txn, id, d, &fresh, job->err) : BSP_ENOMEM;
    if (!stored) seg_def_free(d);
    bsp_buf text = {0};
    if (!rc) rc = json_write(&text, stored);
    if (!rc) rc = store_config_put(txn, CONFIG_KIND, id, text.data, text.len);
    bsp_buf_free(&text);
    cJSON_Delete(stored);
    if (rc) {
        seg_set_release(fresh);
        return rc;
    }
    rc = set_watch(fresh);
    segs_swap(job->s, fresh);
    segs_backfill_request(job->s, id);
    return rc;
}

bsp_err segments_put(bsp_segments *s, const cJSON *body, const char *path_id, bool create_only,
                     cJSON **out, bsp_error *err) {
    if (out) *out = NULL;
    seg_def *d;
    bsp_err rc = seg_def_from_json(body, path_id, false, &d, err);
    if (rc) return rc;
    if (!s->ing) {
        seg_def_free(d);
        return BSP_EUNAVAIL;
    }
    char id[SEGMENT_ID_MAX + 1];
    snprintf(id, sizeof id, "%s", d->id);
    put_job job = {s, d, create_only, err};
    rc = ingest_run_job(s->ing, put_job_run, &job);
    seg_def_free(job.def);
    if (rc || !out) return rc;
    seg_set *set = segs_acquire(s);
    size_t at = seg_set_find(set, id);
    *out = at == SIZE_MAX ? NULL : seg_def_to_json(set->defs[at], false);
    seg_set_release(set);
    return *out ? BSP_OK : BSP_ENOMEM;
}

typedef struct del_job {
    bsp_segments *s;
    const char *id;
    bsp_error *err;
} del_job;

static bsp_err del_job_run(bsp_ingest *ing, bsp_txn *txn, void *arg) {
    (void)ing;
    del_job *job = arg;
    seg_set *cur = job->s->cur;
    size_t at = seg_set_find(cur, job->id);
    if (at == SIZE_MAX)
        return bsp_error_set(job->err, BSP_ENOTFOUND, "id", "no segment \"%s\"", job->id);
    if (cur->defs[at]->builtin)
        return bsp_error_set(job->err, BSP_EFORBIDDEN, "id", "built-in segments stay");
    for (size_t i = 0; i < cur->count; i++)
        for (size_t k = 0; k < cur->defs[i]->nrefs; k++)
            if (cur->defs[i]->refs[k] == at)
                return bsp_error_set(job->err, BSP_EEXISTS, "id",
                                     "segment \"%s\" names it in its condition", cur->defs[i]->id);
    bsp_err rc = store_config_del(txn, CONFIG_KIND, job->id);
    if (!rc) rc = store_members_clear(txn, job->id);
    seg_set *fresh = NULL;
    if (!rc) rc = set_build(txn, NULL, NULL, &fresh, job->err);
    if (rc) return rc;
    rc = set_watch(fresh);
    segs_swap(job->s, fresh);
    return rc;
}

bsp_err segments_delete(bsp_segments *s, const char *id, bsp_error *err) {
    if (!s->ing) return BSP_EUNAVAIL;
    del_job job = {s, id, err};
    return ingest_run_job(s->ing, del_job_run, &job);
}

/* --- admin reads ------------------------------------------------------------ */

static cJSON *public_with_size(const seg_def *d, bsp_txn *rtxn, const bsp_segments *s) {
    cJSON *o = seg_def_to_json(d, false);
    uint64_t size = 0;
    if (o && store_members_count(rtxn, d->id, &size) == BSP_OK)
        cJSON_AddNumberToObject(o, "size", (double)size);
    if (o) {
        bool building = segs_backfill_pending((bsp_segments *)s, d->id);
        cJSON_AddStringToObject(o, "status", building ? "building" : "ready");
    }
    return o;
}

bsp_err segments_get(bsp_segments *s, bsp_txn *rtxn, const char *id, cJSON **out) {
    seg_set *set = segs_acquire(s);
    size_t at = seg_set_find(set, id);
    *out = at == SIZE_MAX ? NULL : public_with_size(set->defs[at], rtxn, s);
    seg_set_release(set);
    if (at == SIZE_MAX) return BSP_ENOTFOUND;
    return *out ? BSP_OK : BSP_ENOMEM;
}

cJSON *segments_list(bsp_segments *s, bsp_txn *rtxn) {
    seg_set *set = segs_acquire(s);
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < set->count; i++) {
        cJSON *o = public_with_size(set->defs[i], rtxn, s);
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            cJSON_Delete(arr);
            arr = NULL;
        }
    }
    seg_set_release(set);
    return arr;
}

/* --- preview ------------------------------------------------------------------ */

#define PREVIEW_SAMPLE 10

typedef struct preview {
    const bsp_cond *cond;
    bsp_segments *s;
    int64_t now_ms;
    uint64_t size, profiles;
    cJSON *sample;
} preview;

static const char *display_id(const bsp_profile *p) {
    if (profile_id_count(p, 'u')) return profile_id_at(p, 'u', 0);
    if (profile_id_count(p, 'a')) return profile_id_at(p, 'a', 0);
    return NULL;
}

static bsp_err preview_one(void *ctx, uint64_t pid, bsp_slice json) {
    (void)pid;
    preview *pv = ctx;
    bsp_profile *p;
    if (profile_from_json(json.data, json.len, &p) != BSP_OK) return BSP_OK;
    segment_env se;
    segment_env_init(&se, p, NULL, pv->now_ms);
    bool match = cond_eval(pv->cond, &se.env);
    segment_env_free(&se);
    pv->profiles++;
    if (match) {
        pv->size++;
        const char *id = display_id(p);
        if (id && cJSON_GetArraySize(pv->sample) < PREVIEW_SAMPLE)
            cJSON_AddItemToArray(pv->sample, cJSON_CreateString(id));
    }
    profile_free(p);
    return BSP_OK;
}

bsp_err segments_preview(bsp_segments *s, bsp_txn *rtxn, const char *condition, cJSON **out,
                         bsp_error *err) {
    *out = NULL;
    cJSON *body = cJSON_CreateObject();
    if (!body || !cJSON_AddStringToObject(body, "id", "preview") ||
        !cJSON_AddStringToObject(body, "condition", condition ? condition : "")) {
        cJSON_Delete(body);
        return BSP_ENOMEM;
    }
    seg_def *d;
    bsp_err rc = seg_def_from_json(body, NULL, false, &d, err);
    cJSON_Delete(body);
    if (rc) return rc;
    /* in_segment() ids must exist, as when saving. */
    seg_set *set = segs_acquire(s);
    const char *ids[64];
    size_t n = cond_segment_refs(d->cond, ids, 64);
    for (size_t i = 0; !rc && i < n && i < 64; i++)
        if (seg_set_find(set, ids[i]) == SIZE_MAX)
            rc = bsp_error_set(err, BSP_ETYPE, "condition", "unknown segment \"%s\"", ids[i]);
    seg_set_release(set);
    preview pv = {d->cond, s, bsp_now_ms(), 0, 0, cJSON_CreateArray()};
    if (!rc && !pv.sample) rc = BSP_ENOMEM;
    if (!rc) rc = store_profiles_scan(rtxn, preview_one, &pv);
    seg_def_free(d);
    if (!rc) {
        *out = cJSON_CreateObject();
        if (*out && cJSON_AddNumberToObject(*out, "size", (double)pv.size) &&
            cJSON_AddNumberToObject(*out, "profiles", (double)pv.profiles) &&
            cJSON_AddItemToObject(*out, "sample", pv.sample))
            return BSP_OK;
        cJSON_Delete(*out);
        *out = NULL;
        rc = BSP_ENOMEM;
    }
    cJSON_Delete(pv.sample);
    return rc;
}
