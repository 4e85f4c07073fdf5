/* members.c - keeping segment membership current: the ingest hooks that
 * re-evaluate, after each transaction, only the segments a profile's new
 * events can change; entry/exit notifications sent after the commit; and a
 * background thread that backfills new segments and sweeps those that read
 * the clock. Every membership change happens on the ingest writer thread,
 * inside a transaction, so the profile, the members index and the event log
 * agree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json/json.h"
#include "segment/segment_internal.h"

#define CHUNK_PROFILES 2000 /* profiles a backfill or sweep job handles */
#define ACTIVE_MAX 200000   /* recently active pids remembered */

/* --- notifications ------------------------------------------------------------ */

static void notice_body(bsp_buf *out, const char *type, const char *segment, const bsp_profile *p,
                        int64_t now_ms) {
    char iso[40], pid[24];
    bsp_time_format(now_ms, iso, sizeof iso);
    snprintf(pid, sizeof pid, "%llu", (unsigned long long)profile_pid(p));
    bsp_buf_puts(out, "{\"type\":");
    json_write_string(out, type);
    bsp_buf_puts(out, ",\"segment\":");
    json_write_string(out, segment);
    bsp_buf_puts(out, ",\"profile_id\":");
    json_write_string(out, pid);
    bsp_buf_puts(out, ",\"userId\":");
    if (profile_id_count(p, 'u'))
        json_write_string(out, profile_id_at(p, 'u', 0));
    else
        bsp_buf_puts(out, "null");
    bsp_buf_puts(out, ",\"anonymousId\":");
    if (profile_id_count(p, 'a'))
        json_write_string(out, profile_id_at(p, 'a', 0));
    else
        bsp_buf_puts(out, "null");
    bsp_buf_puts(out, ",\"timestamp\":");
    json_write_string(out, iso);
    bsp_buf_puts(out, "}");
}

static void notice_queue(bsp_segments *s, const seg_def *d, bool entered, const bsp_profile *p,
                         int64_t now_ms) {
    if (!d->hook_url || !s->notify || (entered ? !d->hook_enter : !d->hook_exit)) return;
    if (s->notices_len == s->notices_cap) {
        size_t cap = s->notices_cap ? s->notices_cap * 2 : 16;
        seg_notice *grown = realloc(s->notices, cap * sizeof *grown);
        if (!grown) return;
        s->notices = grown;
        s->notices_cap = cap;
    }
    bsp_buf body = {0};
    notice_body(&body, entered ? "segment.entered" : "segment.exited", d->id, p, now_ms);
    seg_notice n = {strdup(d->hook_url), d->hook_secret ? strdup(d->hook_secret) : NULL, body.data,
                    body.len};
    if (!n.url || !n.body || (d->hook_secret && !n.secret)) {
        free(n.url);
        free(n.secret);
        bsp_buf_free(&body);
        return;
    }
    s->notices[s->notices_len++] = n;
}

static void notices_clear(bsp_segments *s, bool send) {
    for (size_t i = 0; i < s->notices_len; i++) {
        seg_notice *n = &s->notices[i];
        if (send && s->notify) s->notify(s->notify_ctx, n->url, n->secret, n->body, n->len);
        free(n->url);
        free(n->secret);
        free(n->body);
    }
    s->notices_len = 0;
}

void segments_set_notifier(bsp_segments *s, segment_notify_fn fn, void *ctx) {
    s->notify = fn;
    s->notify_ctx = ctx;
}

/* --- evaluation ------------------------------------------------------------------ */

/* Whether what happened to the profile (t; NULL: nothing) can change d's
 * answer, or that of a segment d names which changed already. */
static bool relevant(const seg_def *d, const ingest_touch *t, const bool *changed) {
    if (d->automatic || !d->cond) return false;
    if (t && (t->flags & INGEST_TOUCH_MERGED)) return true;
    unsigned in = d->inputs;
    if (t && (t->computed & d->computed_bits)) return true;
    if (t && (in & COND_USES_TRAITS) && (t->flags & INGEST_TOUCH_TRAITS)) return true;
    if (t && (in & COND_USES_EVENTS) && (t->names & d->event_bits)) return true;
    for (size_t k = 0; k < d->nrefs; k++)
        if (changed[d->refs[k]]) return true;
    return false;
}

/* Applies a membership answer: profile, members index, notification. */
static bsp_err set_member(bsp_segments *s, bsp_txn *txn, const seg_def *d, bsp_profile *p,
                          bool member, int64_t now_ms, bool *changed) {
    *changed = profile_set_segment_hashed(p, d->id, d->id_hash, member);
    if (!*changed) return BSP_OK;
    bsp_err rc = member ? store_member_put(txn, d->id, profile_pid(p))
                        : store_member_del(txn, d->id, profile_pid(p));
    if (rc) return rc;
    atomic_fetch_add(member ? &s->m_entered : &s->m_exited, 1);
    notice_queue(s, d, member, p, now_ms);
    return BSP_OK;
}

/* Drops memberships of segments that no longer exist. */
static void forget_deleted(const seg_set *set, bsp_profile *p) {
    for (size_t i = profile_segment_count(p); i-- > 0;) {
        const char *id = profile_segment_at(p, i);
        if (seg_set_find(set, id) == SIZE_MAX) profile_set_segment(p, id, false);
    }
}

/* Evaluates the segments selected by `only` (NULL: those relevant to
 * touch) in dependency order. only[i] true forces segment i. */
static bsp_err evaluate(bsp_segments *s, bsp_txn *txn, const seg_set *set, bsp_profile *p,
                        const ingest_touch *touch, const bool *only, bool *any) {
    bool stack_changed[64];
    bool *changed = set->count <= 64 ? stack_changed : calloc(set->count, sizeof *changed);
    if (!changed) return BSP_ENOMEM;
    memset(changed, 0, set->count * sizeof *changed);
    int64_t now_ms = bsp_now_ms();
    uint64_t t0 = bsp_mono_ns();
    segment_env se;
    segment_env_init(&se, p, NULL, now_ms);
    bsp_err rc = BSP_OK;
    uint64_t evals = 0;
    for (size_t i = 0; i < set->count && !rc; i++) {
        const seg_def *d = set->defs[i];
        bool go = only ? only[i] || relevant(d, NULL, changed) : relevant(d, touch, changed);
        if (!go || d->automatic) continue;
        evals++;
        bool member = cond_eval(d->cond, &se.env);
        rc = set_member(s, txn, d, p, member, now_ms, &changed[i]);
        if (changed[i] && any) *any = true;
        /* computed.* was built before this answer; it does not include
         * segments, so the cached object stays valid. */
    }
    segment_env_free(&se);
    if (changed != stack_changed) free(changed);
    atomic_fetch_add(&s->m_evals, evals);
    atomic_fetch_add(&s->m_eval_ns, bsp_mono_ns() - t0);
    return rc;
}

static void active_note(bsp_segments *s, uint64_t pid) {
    if (!s->cur->any_time) return;
    if (s->active_len < ACTIVE_MAX && s->active_len == s->active_cap) {
        size_t cap = s->active_cap ? s->active_cap * 2 : 1024;
        seg_active *grown = realloc(s->active, cap * sizeof *grown);
        if (!grown) return;
        s->active = grown;
        s->active_cap = cap;
    }
    seg_active a = {pid, bsp_now_ms()};
    if (s->active_len < s->active_cap) {
        s->active[(s->active_head + s->active_len++) % s->active_cap] = a;
        return;
    }
    s->active[s->active_head] = a; /* full: overwrite the oldest */
    s->active_head = (s->active_head + 1) % s->active_cap;
}

/* --- ingest hooks ------------------------------------------------------------------ */

static bsp_err hook_changed(void *ctx, bsp_txn *txn, bsp_profile *p, const ingest_touch *touch) {
    bsp_segments *s = ctx;
    if (profile_segment_count(p)) forget_deleted(s->cur, p);
    if (touch->flags & INGEST_TOUCH_EVENT) active_note(s, profile_pid(p));
    return evaluate(s, txn, s->cur, p, touch, NULL, NULL);
}

static bsp_err hook_gone(void *ctx, bsp_txn *txn, const bsp_profile *p) {
    (void)ctx;
    for (size_t i = 0; i < profile_segment_count(p); i++) {
        bsp_err rc = store_member_del(txn, profile_segment_at(p, i), profile_pid(p));
        if (rc) return rc;
    }
    return BSP_OK;
}

static void hook_committed(void *ctx) {
    notices_clear(ctx, true);
}

static void hook_aborted(void *ctx) {
    notices_clear(ctx, false);
}

ingest_hooks segments_hooks(bsp_segments *s) {
    return (ingest_hooks){.ctx = s,
                          .profile_changed = hook_changed,
                          .profile_gone = hook_gone,
                          .committed = hook_committed,
                          .aborted = hook_aborted};
}

/* --- jobs: one chunk of a backfill or a sweep ---------------------------------------- */

typedef enum { PASS_ALL, PASS_MEMBERS, PASS_LIST } pass_kind;

typedef struct pass_job {
    bsp_segments *s;
    pass_kind kind;
    const char *segment;  /* PASS_MEMBERS: whose members; PASS_ALL: NULL = every clock reader */
    uint64_t after;       /* cursor: the last pid handled */
    const uint64_t *list; /* PASS_LIST */
    size_t list_len;
    bool done;
    uint64_t pids[CHUNK_PROFILES];
    size_t npids;
    uint64_t changed;
} pass_job;

static bsp_err collect_pid(void *ctx, uint64_t pid) {
    pass_job *job = ctx;
    job->pids[job->npids++] = pid;
    return job->npids == CHUNK_PROFILES ? BSP_EEXISTS : BSP_OK; /* EEXISTS: chunk full */
}

static bsp_err collect_profile(void *ctx, uint64_t pid, bsp_slice json) {
    (void)json;
    return collect_pid(ctx, pid);
}

/* Which segments a pass re-evaluates: one (and what names it), or all
 * that read the clock. */
static bool *pass_selection(const seg_set *set, const char *segment) {
    bool *only = calloc(set->count ? set->count : 1, sizeof *only);
    if (!only) return NULL;
    for (size_t i = 0; i < set->count; i++) {
        const seg_def *d = set->defs[i];
        only[i] = segment ? strcmp(d->id, segment) == 0 : (d->inputs & COND_USES_TIME) != 0;
    }
    return only;
}

static bsp_err pass_collect(pass_job *job, bsp_txn *txn) {
    bsp_err rc = BSP_OK;
    if (job->kind == PASS_ALL)
        rc = store_profiles_scan_from(txn, job->after, collect_profile, job);
    else if (job->kind == PASS_MEMBERS)
        rc = store_members_scan(txn, job->segment, job->after, collect_pid, job);
    else
        for (size_t i = 0; i < job->list_len && job->npids < CHUNK_PROFILES; i++)
            job->pids[job->npids++] = job->list[i];
    if (rc == BSP_EEXISTS) rc = BSP_OK;
    job->done = job->kind == PASS_LIST || job->npids < CHUNK_PROFILES;
    return rc;
}

/* Whether the selected segments would change pid's memberships, answered
 * on a throwaway copy of the stored profile (a job runs after a checkpoint,
 * so the store holds what the writer holds): no index write, no notice, and
 * above all no profile loaded into the writer's cache, which a pass over
 * every profile (a new segment's backfill) would otherwise fill with the
 * whole store. Unreadable profiles are left to the writer's own path. */
static bool pass_would_change(bsp_txn *txn, const seg_set *set, const bool *only, uint64_t pid) {
    bsp_slice raw;
    bsp_profile *copy;
    bsp_err rc = store_profile_get(txn, pid, &raw);
    if (rc == BSP_ENOTFOUND) return false;
    if (rc || profile_from_json(raw.data, raw.len, &copy) != BSP_OK) return true;
    segment_env se;
    segment_env_init(&se, copy, NULL, bsp_now_ms());
    bool change = false;
    for (size_t i = 0; i < set->count && !change; i++) {
        const seg_def *d = set->defs[i];
        if (only[i] && !d->automatic && d->cond)
            change = profile_set_segment(copy, d->id, cond_eval(d->cond, &se.env));
    }
    segment_env_free(&se);
    profile_free(copy);
    return change;
}

static bsp_err pass_job_run(bsp_ingest *ing, bsp_txn *txn, void *arg) {
    pass_job *job = arg;
    job->npids = 0;
    bsp_err rc = pass_collect(job, txn);
    seg_set *set = job->s->cur;
    bool *only = rc ? NULL : pass_selection(set, job->segment);
    if (!rc && !only) rc = BSP_ENOMEM;
    for (size_t i = 0; i < job->npids && !rc; i++) {
        if (!pass_would_change(txn, set, only, job->pids[i])) continue;
        bsp_profile *p;
        rc = ingest_job_profile(ing, txn, job->pids[i], &p);
        if (rc == BSP_ENOTFOUND) {
            rc = BSP_OK;
            continue;
        }
        bool any = false;
        if (!rc) rc = evaluate(job->s, txn, set, p, NULL, only, &any);
        if (!rc && any) {
            job->changed++;
            rc = ingest_job_profile_changed(ing, job->pids[i]);
        }
    }
    if (job->npids) job->after = job->pids[job->npids - 1];
    free(only);
    return rc;
}

/* Runs a pass to its end, chunk by chunk, unless the thread is stopping. */
static bsp_err pass_run(bsp_segments *s, pass_kind kind, const char *segment, const uint64_t *list,
                        size_t list_len, uint64_t *changed) {
    pass_job *job = calloc(1, sizeof *job);
    if (!job) return BSP_ENOMEM;
    *job = (pass_job){.s = s, .kind = kind, .segment = segment, .list = list, .list_len = list_len};
    bsp_err rc = BSP_OK;
    while (!rc && !job->done) {
        pthread_mutex_lock(&s->bg_mu);
        bool stopping = s->bg_stopping;
        pthread_mutex_unlock(&s->bg_mu);
        if (stopping) break;
        rc = ingest_run_job(s->ing, pass_job_run, job);
        if (kind == PASS_LIST && !rc) {
            job->list += job->npids;
            job->list_len -= job->npids;
            job->done = job->list_len == 0;
        }
    }
    if (changed) *changed = job->changed;
    free(job);
    return rc;
}

/* --- backfills --------------------------------------------------------------------- */

void segs_backfill_request(bsp_segments *s, const char *id) {
    pthread_mutex_lock(&s->bg_mu);
    bool queued = false;
    for (size_t i = 0; i < s->backfills_len; i++)
        queued |= strcmp(s->backfills[i], id) == 0;
    if (!queued && s->backfills_len == s->backfills_cap) {
        size_t cap = s->backfills_cap ? s->backfills_cap * 2 : 8;
        char **grown = realloc(s->backfills, cap * sizeof *grown);
        if (grown) s->backfills = grown, s->backfills_cap = cap;
    }
    if (!queued && s->backfills_len < s->backfills_cap) {
        char *copy = strdup(id);
        if (copy) s->backfills[s->backfills_len++] = copy;
    }
    pthread_cond_signal(&s->bg_cv);
    pthread_mutex_unlock(&s->bg_mu);
}

bool segs_backfill_pending(bsp_segments *s, const char *id) {
    pthread_mutex_lock(&s->bg_mu);
    bool pending = strcmp(s->building, id) == 0;
    for (size_t i = 0; !pending && i < s->backfills_len; i++)
        pending = strcmp(s->backfills[i], id) == 0;
    pthread_mutex_unlock(&s->bg_mu);
    return pending;
}

size_t segments_refresh_reading(bsp_segments *s, unsigned cond_uses_mask) {
    seg_set *set = segs_acquire(s);
    size_t queued = 0;
    for (size_t i = 0; i < set->count; i++) {
        const seg_def *d = set->defs[i];
        if (d->automatic || !d->cond || !(d->inputs & cond_uses_mask)) continue;
        segs_backfill_request(s, d->id);
        queued++;
    }
    seg_set_release(set);
    return queued;
}

/* Takes the next queued backfill (caller frees), or NULL. Called with bg_mu. */
static char *backfill_take(bsp_segments *s) {
    if (!s->backfills_len) return NULL;
    char *id = s->backfills[0];
    memmove(s->backfills, s->backfills + 1, --s->backfills_len * sizeof *s->backfills);
    snprintf(s->building, sizeof s->building, "%s", id);
    return id;
}

static void backfill_run(bsp_segments *s, char *id) {
    uint64_t t0 = bsp_mono_ns(), changed = 0;
    bsp_err rc = pass_run(s, PASS_ALL, id, NULL, 0, &changed);
    if (rc && rc != BSP_EUNAVAIL)
        bsp_warn("segments: backfill of %s failed: %s", id, bsp_err_name(rc));
    else
        bsp_info("segments: %s filled in over every profile in %.1f ms (%llu changed)", id,
                 (double)(bsp_mono_ns() - t0) / 1e6, (unsigned long long)changed);
    pthread_mutex_lock(&s->bg_mu);
    s->building[0] = '\0';
    pthread_mutex_unlock(&s->bg_mu);
    free(id);
}

/* --- sweeps --------------------------------------------------------------------------- */

/* Members of every clock-reading segment, re-checked: windows that closed. */
static void sweep_members(bsp_segments *s) {
    seg_set *set = segs_acquire(s);
    for (size_t i = 0; i < set->count; i++)
        if (set->defs[i]->inputs & COND_USES_TIME)
            pass_run(s, PASS_MEMBERS, set->defs[i]->id, NULL, 0, NULL);
    seg_set_release(set);
}

typedef struct active_copy {
    bsp_segments *s;
    uint64_t *pids;
    size_t n;
} active_copy;

static bsp_err active_copy_job(bsp_ingest *ing, bsp_txn *txn, void *arg) {
    (void)ing;
    (void)txn;
    active_copy *ac = arg;
    bsp_segments *s = ac->s;
    int64_t since = bsp_now_ms() - (int64_t)s->active_ms;
    /* Drop what is too old from the front of the ring, then copy the rest. */
    while (s->active_len && s->active[s->active_head].ms < since) {
        s->active_head = (s->active_head + 1) % s->active_cap;
        s->active_len--;
    }
    if (!s->active_len) return BSP_OK;
    ac->pids = malloc(s->active_len * sizeof *ac->pids);
    if (!ac->pids) return BSP_OK;
    for (size_t i = 0; i < s->active_len; i++)
        ac->pids[ac->n++] = s->active[(s->active_head + i) % s->active_cap].pid;
    return BSP_OK;
}

static int pid_order(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Recently active visitors, re-checked: entries that time alone causes. */
static void sweep_active(bsp_segments *s) {
    active_copy ac = {s, NULL, 0};
    if (ingest_run_job(s->ing, active_copy_job, &ac) || !ac.n) {
        free(ac.pids);
        return;
    }
    qsort(ac.pids, ac.n, sizeof *ac.pids, pid_order);
    size_t unique = 0;
    for (size_t i = 0; i < ac.n; i++)
        if (unique == 0 || ac.pids[unique - 1] != ac.pids[i]) ac.pids[unique++] = ac.pids[i];
    pass_run(s, PASS_LIST, NULL, ac.pids, unique, NULL);
    free(ac.pids);
}

/* --- the high_value threshold ------------------------------------------------------------ */

#define HIGH_VALUE_ID "high_value"
#define HIGH_VALUE_PREFIX "computed.orders >= 1 and computed.revenue >= "
#define HIGH_VALUE_SHARE 0.10

typedef struct revenues {
    double *v;
    size_t n, cap;
} revenues;

static bsp_err revenue_collect(void *ctx, uint64_t pid, bsp_slice json) {
    (void)pid;
    revenues *r = ctx;
    bsp_profile *p;
    if (profile_from_json(json.data, json.len, &p) != BSP_OK) return BSP_OK;
    double orders = (double)profile_orders(p), revenue = profile_revenue(p);
    profile_free(p);
    if (orders < 1) return BSP_OK;
    double *grown = bsp_grow(r->v, &r->cap, r->n, sizeof *grown, 4096);
    if (!grown) return BSP_ENOMEM;
    r->v = grown;
    r->v[r->n++] = revenue;
    return BSP_OK;
}

static int double_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The revenue of the buyer at the top-10% boundary; false without buyers. */
static bool high_value_threshold(bsp_segments *s, double *out) {
    revenues r = {0};
    bsp_txn *txn;
    if (store_txn_begin(s->st, false, &txn)) return false;
    bsp_err rc = store_profiles_scan(txn, revenue_collect, &r);
    store_txn_abort(txn);
    bool ok = !rc && r.n > 0;
    if (ok) {
        qsort(r.v, r.n, sizeof *r.v, double_desc);
        size_t k = (size_t)((double)r.n * HIGH_VALUE_SHARE);
        *out = r.v[k > 0 ? k - 1 : 0];
    }
    free(r.v);
    return ok;
}

/* Rewrites the built-in high_value condition with the current threshold,
 * unless someone replaced that condition with their own. */
static void high_value_refresh(bsp_segments *s) {
    seg_set *set = segs_acquire(s);
    size_t at = seg_set_find(set, HIGH_VALUE_ID);
    bool ours =
        at != SIZE_MAX && set->defs[at]->condition &&
        strncmp(set->defs[at]->condition, HIGH_VALUE_PREFIX, strlen(HIGH_VALUE_PREFIX)) == 0;
    cJSON *body = ours ? seg_def_to_json(set->defs[at], true) : NULL; /* keeps a webhook secret */
    double old = ours ? strtod(set->defs[at]->condition + strlen(HIGH_VALUE_PREFIX), NULL) : 0;
    seg_set_release(set);
    double threshold;
    if (!body || !high_value_threshold(s, &threshold) || threshold == old) {
        cJSON_Delete(body);
        return;
    }
    char cond[128];
    snprintf(cond, sizeof cond, HIGH_VALUE_PREFIX "%.2f", threshold);
    cJSON_ReplaceItemInObjectCaseSensitive(body, "condition", cJSON_CreateString(cond));
    bsp_error err;
    bsp_error_clear(&err);
    if (segments_put(s, body, HIGH_VALUE_ID, false, NULL, &err) == BSP_OK)
        bsp_info("segments: high_value now means net revenue >= %.2f", threshold);
    cJSON_Delete(body);
}

/* --- the background thread ------------------------------------------------------------ */

/* When the threshold was last computed and what the scan cost, kept in the
 * store so that a restart (or the first start after an import, which
 * settles segments itself) does not scan again before it is due. Text:
 * "<wall clock ms> <scan ns>". */
#define HIGH_VALUE_MARK "segments_high_value_scan"

typedef struct high_value_mark {
    int64_t at_ms;
    uint64_t took_ns;
} high_value_mark;

/* How long to wait after a scan that took took_ns: at least a sweep, and
 * never more than 1% of the time spent scanning (a store whose scan takes
 * 5 s refreshes every 500 s). */
static uint64_t high_value_gap_ns(const bsp_segments *s, uint64_t took_ns) {
    uint64_t gap = s->sweep_ms * 1000000ull;
    return took_ns * 100 > gap ? took_ns * 100 : gap;
}

static bsp_err mark_job(bsp_ingest *ing, bsp_txn *txn, void *arg) {
    (void)ing;
    const high_value_mark *m = arg;
    char text[48];
    int n = snprintf(text, sizeof text, "%lld %llu", (long long)m->at_ms,
                     (unsigned long long)m->took_ns);
    return store_meta_put(txn, HIGH_VALUE_MARK, text, (size_t)n);
}

static bool mark_read(bsp_segments *s, high_value_mark *m) {
    bsp_txn *txn;
    if (store_txn_begin(s->st, false, &txn)) return false;
    bsp_slice v;
    bool ok = false;
    if (store_meta_get(txn, HIGH_VALUE_MARK, &v) == BSP_OK && v.len < 48) {
        char text[48];
        memcpy(text, v.data, v.len);
        text[v.len] = '\0';
        long long at;
        unsigned long long took;
        ok = sscanf(text, "%lld %llu", &at, &took) == 2 && at > 0;
        m->at_ms = at;
        m->took_ns = took;
    }
    store_txn_abort(txn);
    return ok;
}

/* The monotonic time of the first refresh: now, unless the store says a
 * scan ran recently enough that the next one is not due yet. */
static uint64_t high_value_first_due(bsp_segments *s) {
    uint64_t now = bsp_mono_ns();
    high_value_mark m;
    if (!mark_read(s, &m)) return now;
    int64_t age_ms = bsp_now_ms() - m.at_ms;
    if (age_ms < 0) return now; /* the clock went back: do not trust the mark */
    uint64_t age = (uint64_t)age_ms * 1000000ull, gap = high_value_gap_ns(s, m.took_ns);
    return age >= gap ? now : now + (gap - age);
}

/* Recomputes the high_value threshold when due, then records when. */
static void high_value_maybe(bsp_segments *s, uint64_t *next_ns) {
    uint64_t t0 = bsp_mono_ns();
    if (t0 < *next_ns) return;
    high_value_refresh(s);
    uint64_t took = bsp_mono_ns() - t0;
    high_value_mark m = {bsp_now_ms(), took};
    if (ingest_run_job(s->ing, mark_job, &m) != BSP_OK)
        bsp_warn("segments: could not record the high_value scan");
    *next_ns = bsp_mono_ns() + high_value_gap_ns(s, took);
}

bsp_err segments_settle(bsp_segments *s, bsp_ingest *ing) {
    if (s->bg_running) return BSP_EINVAL;
    s->ing = ing;
    uint64_t due = 0;
    high_value_maybe(s, &due);
    pthread_mutex_lock(&s->bg_mu);
    char *id;
    while ((id = backfill_take(s)) != NULL) {
        pthread_mutex_unlock(&s->bg_mu);
        backfill_run(s, id);
        pthread_mutex_lock(&s->bg_mu);
    }
    pthread_mutex_unlock(&s->bg_mu);
    s->ing = NULL;
    return BSP_OK;
}

static void *bg_main(void *arg) {
    bsp_segments *s = arg;
    uint64_t next_sweep = bsp_mono_ns() + s->sweep_ms * 1000000ull;
    uint64_t next_rescan = bsp_mono_ns() + s->rescan_ms * 1000000ull;
    uint64_t next_high_value = high_value_first_due(s);
    high_value_maybe(s, &next_high_value);
    pthread_mutex_lock(&s->bg_mu);
    while (!s->bg_stopping) {
        char *id = backfill_take(s);
        if (id) {
            pthread_mutex_unlock(&s->bg_mu);
            backfill_run(s, id);
            pthread_mutex_lock(&s->bg_mu);
            continue;
        }
        uint64_t now = bsp_mono_ns();
        if (now >= next_sweep || now >= next_rescan) {
            bool rescan = now >= next_rescan;
            pthread_mutex_unlock(&s->bg_mu);
            seg_set *set = segs_acquire(s);
            bool any_time = set->any_time;
            seg_set_release(set);
            high_value_maybe(s, &next_high_value);
            if (any_time && rescan)
                pass_run(s, PASS_ALL, NULL, NULL, 0, NULL);
            else if (any_time) {
                sweep_members(s);
                sweep_active(s);
            }
            next_sweep = bsp_mono_ns() + s->sweep_ms * 1000000ull;
            if (rescan) next_rescan = bsp_mono_ns() + s->rescan_ms * 1000000ull;
            pthread_mutex_lock(&s->bg_mu);
            continue;
        }
        uint64_t wake = next_sweep < next_rescan ? next_sweep : next_rescan;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        uint64_t wait_ns = wake - now;
        until.tv_sec += (time_t)(wait_ns / 1000000000u);
        until.tv_nsec += (long)(wait_ns % 1000000000u);
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&s->bg_cv, &s->bg_mu, &until);
    }
    pthread_mutex_unlock(&s->bg_mu);
    return NULL;
}

bsp_err segments_attach(bsp_segments *s, bsp_ingest *ing) {
    s->ing = ing;
    if (pthread_create(&s->bg, NULL, bg_main, s) != 0) return BSP_ENOMEM;
    s->bg_running = true;
    return BSP_OK;
}

void segments_stop(bsp_segments *s) {
    if (!s) return;
    pthread_mutex_lock(&s->bg_mu);
    s->bg_stopping = true;
    pthread_cond_broadcast(&s->bg_cv);
    pthread_mutex_unlock(&s->bg_mu);
    if (s->bg_running) pthread_join(s->bg, NULL);
    s->bg_running = false;
    s->ing = NULL; /* admin writes answer 503 from here on */
}

void segments_close(bsp_segments *s) {
    if (!s) return;
    segments_stop(s);
    notices_clear(s, false);
    free(s->notices);
    free(s->active);
    for (size_t i = 0; i < s->backfills_len; i++)
        free(s->backfills[i]);
    free(s->backfills);
    seg_set_release(s->cur);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->bg_mu);
    pthread_cond_destroy(&s->bg_cv);
    free(s);
}

void segments_metrics_get(bsp_segments *s, segments_metrics *out) {
    out->evaluations = atomic_load(&s->m_evals);
    out->entered = atomic_load(&s->m_entered);
    out->exited = atomic_load(&s->m_exited);
    out->eval_ns = atomic_load(&s->m_eval_ns);
    seg_set *set = segs_acquire(s);
    out->segments = set->count;
    seg_set_release(set);
}

/* --- automatic segments ------------------------------------------------------------------ */

bsp_err segment_save_automatic(bsp_txn *txn, const char *id, const char *name,
                               const char *description) {
    if (!segment_id_valid(id)) return BSP_EINVAL;
    cJSON *o = cJSON_CreateObject();
    int64_t now = bsp_now_ms();
    bool ok =
        o && cJSON_AddStringToObject(o, "id", id) &&
        cJSON_AddStringToObject(o, "kind", "automatic") &&
        cJSON_AddItemToObject(o, "name", name ? cJSON_CreateString(name) : cJSON_CreateNull()) &&
        cJSON_AddItemToObject(o, "description",
                              description ? cJSON_CreateString(description) : cJSON_CreateNull()) &&
        cJSON_AddNumberToObject(o, "created_ms", (double)now) &&
        cJSON_AddNumberToObject(o, "updated_ms", (double)now);
    bsp_buf text = {0};
    bsp_err rc = ok ? json_write(&text, o) : BSP_ENOMEM;
    if (!rc) rc = store_config_put(txn, "segment", id, text.data, text.len);
    bsp_buf_free(&text);
    cJSON_Delete(o);
    return rc;
}
