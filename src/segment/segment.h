/* segment.h - the condition language of segments, campaign rules and
 * experiment targeting (see CONDITIONS.md): a condition is compiled once
 * from its text into a compact tree, type-checked, and then evaluated per
 * profile against inputs the caller provides through callbacks, so this
 * module needs nothing from profile/ or store/.
 *
 * Evaluation is read-only on the compiled condition and does not allocate,
 * so one bsp_cond may be evaluated from many threads at once. */
#ifndef BSP_SEGMENT_H
#define BSP_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json/json.h"

/* Limits on what cond_compile accepts. */
#define COND_MAX_TEXT 16384 /* bytes of condition text (BSP_ETOOBIG) */
#define COND_MAX_DEPTH 64   /* nesting of (), [], calls and not (BSP_ETOOBIG) */
#define COND_MAX_NODES 4096 /* values, operators and calls (BSP_ETOOBIG) */

typedef struct bsp_cond bsp_cond;

/* Compiles len bytes of condition text. On failure returns the error, sets
 * *out to NULL and fills err: BSP_ETYPE for syntax and type errors with
 * at = "line L, column C" (1-based, at the offending character) and a
 * message saying what was expected; BSP_ETOOBIG for the limits above;
 * BSP_ENOMEM. */
bsp_err cond_compile(const char *text, size_t len, bsp_cond **out, bsp_error *err);

void cond_free(bsp_cond *c);

/* The inputs of one evaluation. Any callback may be NULL (no data). */
typedef struct cond_env {
    void *ctx;
    int64_t now_ms;
    /* "traits", "computed", "rfm", "predicted", "context": an object or NULL. */
    const cJSON *(*root)(void *ctx, const char *root);
    /* Calls visit for the profile's events of that name at or after since_ms;
     * visit returns false to stop. The return value is ignored. */
    bool (*each_event)(void *ctx, const char *event_name, int64_t since_ms,
                       bool (*visit)(void *vctx, const cJSON *event), void *vctx);
    /* 1 if the profile is in that segment, else 0. id_hash is
     * bsp_hash64(segment_id, strlen(segment_id)), computed once when the
     * condition was compiled. */
    int (*in_segment)(void *ctx, const char *segment_id, uint64_t id_hash);
    /* computed.NAME read directly, when NAME is one of the plain numbers:
     * true and *out, else false and the path is read from root("computed").
     * name_hash is bsp_hash64(name, strlen(name)), computed at compile time.
     * May be NULL. */
    bool (*computed_number)(void *ctx, const char *name, uint64_t name_hash, double *out);
    /* Likewise for the texts (profile_computed_text: *out NULL for null) and,
     * as the argument of days_since() and hours_since(), the times
     * (profile_computed_time). Either may be NULL. */
    bool (*computed_text)(void *ctx, const char *name, uint64_t name_hash, const char **out);
    bool (*computed_time)(void *ctx, const char *name, uint64_t name_hash, bool *set, int64_t *ms);
} cond_env;

/* True if the condition holds; a value-only condition holds when truthy
 * (not null, not false, not 0, not an empty string or list). */
bool cond_eval(const bsp_cond *c, const cond_env *env);

/* The operands of the `and` at a condition's root (else the whole
 * condition, as one), evaluated one at a time: any false one makes the
 * condition false. */
size_t cond_conjuncts(const bsp_cond *c);
bool cond_eval_conjunct(const bsp_cond *c, size_t i, const cond_env *env);

/* Which inputs a condition reads: a bit set of these. COND_USES_TIME is set
 * by now(), days_since(), hours_since() and the windowed event functions. */
enum {
    COND_USES_TRAITS = 1u << 0,
    COND_USES_COMPUTED = 1u << 1,
    COND_USES_RFM = 1u << 2,
    COND_USES_PREDICTED = 1u << 3,
    COND_USES_CONTEXT = 1u << 4,
    COND_USES_EVENTS = 1u << 5,
    COND_USES_SEGMENTS = 1u << 6,
    COND_USES_TIME = 1u << 7,
};
unsigned cond_inputs(const bsp_cond *c);
/* The computed traits a condition reads, as PROFILE_C_* bits (all of them
 * for a bare `computed` path; none for names that are not computed traits,
 * which are always null). */
uint32_t cond_computed_reads(const bsp_cond *c);

/* The distinct event names read by did()/count()/sum() and the distinct
 * segment ids of in_segment(), in order of first appearance. Each stores at
 * most max pointers (valid while c lives) and returns the total number,
 * which may exceed max, as snprintf does. */
size_t cond_event_names(const bsp_cond *c, const char **names, size_t max);
size_t cond_segment_refs(const bsp_cond *c, const char **ids, size_t max);

/* --- conditions over a profile (env.c) ------------------------------------ */

#include "profile/profile.h"

/* Binds a cond_env to one profile and, for decisions, the request context
 * (context.*; may be NULL): traits, computed (built on first use in the
 * calling thread's reusable view, without allocating), rfm, predicted, the
 * profile's recent events and its segment memberships. Free with
 * segment_env_free; the profile and context must outlive it, and one
 * thread evaluates one segment_env at a time (the view is per thread). Do
 * not copy a segment_env: env.ctx points at it. */
typedef struct segment_env {
    cond_env env;
    const bsp_profile *profile;
    const cJSON *context;
    const cJSON *computed_view; /* the thread's view, filled on first use */
    bool computed_ready;
    bool stored_only; /* segment_env_stored_only */
    bool read_other;  /* ... and something else was asked for */
} segment_env;
void segment_env_init(segment_env *se, const bsp_profile *p, const cJSON *context, int64_t now_ms);
void segment_env_free(segment_env *se);

/* An env that answers only from what the profile stores and nothing else
 * changes: segment memberships, traits and the computed numbers and texts.
 * Anything else asked for (context, other computed traits, rfm, predicted,
 * events) answers as absent and sets read_other; a result obtained with
 * read_other still false holds whatever the request, for as long as the
 * profile stays the same. It does not answer the time: use it only for
 * conditions without COND_USES_TIME. */
void segment_env_stored_only(segment_env *se, const bsp_profile *p);

/* --- segments: the registry (registry.c) ----------------------------------
 *
 * Segments are stored as config kind "segment" (store.h). The registry keeps
 * the compiled set in force and:
 *   - on the ingest writer thread (ingest hooks), re-evaluates after each
 *     transaction only the segments whose inputs that transaction's events
 *     touched, keeping membership on the profile and in the store's members
 *     index, and sends entry/exit webhooks after the commit;
 *   - in its own thread, fills in a new or changed segment over every
 *     profile (backfill), re-checks members of segments that read the clock
 *     (a did(..., 7d) membership ends when its window does), re-checks
 *     recently active visitors for entries that time alone causes ("cart
 *     abandoned for an hour"), and rescans everything for those segments
 *     every rescan interval.
 * All changes to memberships and definitions run as ingest jobs, so they
 * are serialized with events. */

#include "ingest/ingest.h"

#define SEGMENT_ID_MAX 64 /* [A-Za-z0-9_.:-] */

typedef struct bsp_segments bsp_segments;

/* Entry/exit notifications: called after the commit on the writer thread;
 * must not block (queue the delivery). body is the JSON payload. */
typedef void (*segment_notify_fn)(void *ctx, const char *url, const char *secret, const char *body,
                                  size_t len);

typedef struct segments_opts {
    uint64_t sweep_ms;  /* member and recent-activity checks; 0 = 60 s */
    uint64_t rescan_ms; /* full pass over clock-reading segments; 0 = 6 h */
    uint64_t active_ms; /* how far back "recently active" reaches; 0 = 3 h */
    bool no_builtins;   /* do not create the built-in segments */
} segments_opts;

/* Loads the definitions from the store (creating the built-in segments on
 * first use). Then pass segments_hooks() to ingest_start and call
 * segments_attach with the running ingest. */
bsp_err segments_open(bsp_store *st, const segments_opts *opts, bsp_segments **out);
ingest_hooks segments_hooks(bsp_segments *s);
/* Starts the background thread (backfills, sweeps). */
bsp_err segments_attach(bsp_segments *s, bsp_ingest *ing);
void segments_set_notifier(bsp_segments *s, segment_notify_fn fn, void *ctx);
/* Without the background thread (bespoke import): recomputes the
 * high_value threshold and runs every queued backfill to the end in the
 * calling thread, so that the next server start finds memberships current
 * and nothing to catch up on. BSP_EINVAL once segments_attach ran. */
bsp_err segments_settle(bsp_segments *s, bsp_ingest *ing);
/* Stops the background thread (before ingest_stop); idempotent. */
void segments_stop(bsp_segments *s);
/* Stops the thread if still running and frees. */
void segments_close(bsp_segments *s);

/* Admin operations. put validates body (422 with the field or the
 * condition's line and column), refuses unknown in_segment() ids and
 * cycles (422), then stores the definition and starts its backfill;
 * create_only gives BSP_EEXISTS for an existing id. *out (may be NULL) is
 * the public form. del refuses (BSP_EEXISTS) while another segment names
 * it, and built-in segments (BSP_EFORBIDDEN). */
bsp_err segments_put(bsp_segments *s, const cJSON *body, const char *path_id, bool create_only,
                     cJSON **out, bsp_error *err);
bsp_err segments_delete(bsp_segments *s, const char *id, bsp_error *err);
/* Public forms: one (with "size" and "status") or all. */
bsp_err segments_get(bsp_segments *s, bsp_txn *rtxn, const char *id, cJSON **out);
cJSON *segments_list(bsp_segments *s, bsp_txn *rtxn);
/* Sizes an unsaved condition over every stored profile: {"size", "profiles",
 * "sample": [ids]} (sample: up to 10 userIds or anonymousIds). */
bsp_err segments_preview(bsp_segments *s, bsp_txn *rtxn, const char *condition, cJSON **out,
                         bsp_error *err);
bool segments_exists(bsp_segments *s, const char *id);
/* Checks a definition body as segments_put would, without a registry (no
 * reference or cycle checks): for tools and the fuzzer. */
bsp_err segment_validate(const cJSON *body, const char *path_id, bsp_error *err);

/* Counters for /metrics. */
typedef struct segments_metrics {
    uint64_t evaluations; /* condition evaluations on the writer thread */
    uint64_t entered, exited;
    uint64_t eval_ns; /* time spent in them */
    uint64_t segments;
} segments_metrics;
void segments_metrics_get(bsp_segments *s, segments_metrics *out);

/* Conditions of other modules (campaigns) that read events: the union of
 * every owner's names is what profiles keep recent events for. */
bsp_err segment_watch_names(const char *owner, const char *const *names, size_t count);

/* --- automatic segments (clusters, RFM groups) ---------------------------- */

/* Creates or replaces, in a write transaction, the definition of a segment
 * whose members a job assigns itself (kind "automatic", no condition). The
 * job then marks members with profile_set_segment and store_member_put
 * (and removes leavers likewise). A running server picks new definitions up
 * with segments_reload. */
bsp_err segment_save_automatic(bsp_txn *txn, const char *id, const char *name,
                               const char *description);
/* Re-reads the definitions (in a job, on the writer thread). */
bsp_err segments_reload(bsp_segments *s, bsp_txn *txn);

/* After a batch job rewrote the sections conditions read (rfm.*, predicted.*),
 * which no event tells the registry about: queues a backfill of every
 * segment whose condition reads one of cond_uses_mask (COND_USES_*), run by
 * the registry's thread. Returns how many were queued. Any thread. */
size_t segments_refresh_reading(bsp_segments *s, unsigned cond_uses_mask);

/* Makes id an automatic segment whose members are exactly pids (ascending,
 * no repeats; pids no longer stored are skipped): saves the definition,
 * marks and indexes the members and removes everyone else, in ingest jobs
 * of a few hundred profiles, then has segs (may be NULL) re-read its
 * definitions so a running server knows it. BSP_EEXISTS if id is a segment
 * with a condition (only automatic ones are replaced), BSP_EINVAL for a bad
 * id. *size is the number of members afterwards. (assign.c) */
bsp_err segment_assign_automatic(bsp_ingest *ing, bsp_store *st, bsp_segments *segs, const char *id,
                                 const char *name, const char *description, const uint64_t *pids,
                                 size_t n, uint64_t *size);

/* --- RFM scores and behavioural clusters (rfm.c, cluster.c, autoseg.c) ---- */

#include <stdatomic.h>

/* What a long job reports and how it is stopped: progress(ctx, stage, done,
 * total) now and then (stage "reading" or "writing"; total 0 if unknown);
 * the job ends early with BSP_EUNAVAIL once *cancel is true. All optional. */
typedef struct autoseg_ctl {
    void (*progress)(void *ctx, const char *stage, size_t done, size_t total);
    void *ctx;
    atomic_bool *cancel;
} autoseg_ctl;

/* RFM: every buyer (computed.orders > 0) is scored 1..5 on recency (whole
 * days from last_order_at to the reference time; fewer is better),
 * frequency (orders) and monetary value (revenue) by quintiles of all
 * buyers, and named by the first rule that holds, with FM = ceil((F+M)/2):
 *   champions           R >= 4 and FM >= 4
 *   new                 R >= 4 and F = 1
 *   loyal               R >= 3 and FM >= 3
 *   potential_loyalists R >= 3
 *   cant_lose           R = 1 and FM >= 4
 *   at_risk             FM >= 3
 *   hibernating         R = 2
 *   lost                otherwise (R = 1, FM <= 2)
 * The profile gets the section rfm = {"recency", "frequency", "monetary",
 * "score": "545", "segment": "champions"} and membership of the automatic
 * segment rfm_<segment>; a profile that is no longer a buyer loses both. */
typedef enum rfm_group {
    RFM_CHAMPIONS,
    RFM_LOYAL,
    RFM_POTENTIAL_LOYALISTS,
    RFM_NEW,
    RFM_AT_RISK,
    RFM_CANT_LOSE,
    RFM_HIBERNATING,
    RFM_LOST,
    RFM_GROUP_COUNT
} rfm_group;

const char *rfm_group_name(rfm_group g); /* "champions", ...; NULL if out of range */
rfm_group rfm_group_of(int r, int f, int m);

/* Quintile scores: scores[i] = 1 + floor(5 * below / n), where below counts
 * the values strictly lower than values[i]. Equal values share a score (the
 * one of the lowest rank among them), whatever their order. */
bsp_err rfm_quintiles(const double *values, size_t n, uint8_t *scores);

typedef struct rfm_buyer {
    double recency_days; /* whole days since the last order */
    double orders;
    double revenue;
} rfm_buyer;
typedef struct rfm_score {
    uint8_t r, f, m;
    rfm_group group;
} rfm_score;
bsp_err rfm_score_buyers(const rfm_buyer *buyers, size_t n, rfm_score *out);

typedef struct rfm_opts {
    int64_t reference_ms; /* 0: the newest computed.last_seen of any profile (now if none) */
    bool identified_only; /* score only profiles with a userId (not guests) */
    autoseg_ctl ctl;
} rfm_opts;

typedef struct rfm_group_stats {
    size_t size;
    double recency_days, orders, revenue; /* means over the group */
} rfm_group_stats;

typedef struct rfm_summary {
    size_t buyers;
    size_t written; /* profiles rewritten (scores or group changed) */
    int64_t reference_ms;
    rfm_group_stats groups[RFM_GROUP_COUNT];
    double seconds;
} rfm_summary;

/* Scores every stored buyer and applies the result through ingest jobs
 * (profile writes on the writer thread, a few hundred a transaction).
 * opts may be NULL. */
bsp_err rfm_run(bsp_ingest *ing, bsp_store *st, const rfm_opts *opts, rfm_summary *out);

/* Runs rfm_run every interval_ms (the first run after a minute, or after
 * interval_ms if shorter) on a thread of its own. interval_ms 0 starts
 * nothing (*out NULL). Stop before stopping ingest; stop cancels a run in
 * progress between transactions. */
typedef struct rfm_schedule rfm_schedule;
bsp_err rfm_schedule_start(bsp_ingest *ing, bsp_store *st, bsp_segments *segs, uint64_t interval_ms,
                           rfm_schedule **out);
void rfm_schedule_stop(rfm_schedule *s); /* NULL is a no-op */

/* Behavioural clusters: k-means++ on standardized features of every profile
 * with activity (CLUSTER_FEATURES below), k chosen by the mean silhouette
 * over k = 2..CLUSTER_K_MAX unless given; each cluster becomes the
 * automatic segment cluster_<n> (n = 1..k, by falling mean revenue) whose
 * description summarizes its centroid ("high AOV, rare visits, mostly
 * Kitchen"). */
#define CLUSTER_K_MAX 8
#define CLUSTER_FEATURES 10

/* The feature names, in column order (log1p of counts and amounts). */
extern const char *const cluster_feature_names[CLUSTER_FEATURES];

/* Standardizes the n x d row-major matrix x in place, column by column, to
 * mean 0 and standard deviation 1; a constant column becomes 0. mean and sd
 * (d each) may be NULL. */
void cluster_standardize(double *x, size_t n, size_t d, double *mean, double *sd);

/* k-means++ seeding and Lloyd iterations (best of a few seeded starts, by
 * inertia). labels: n; centroids: k x d. Deterministic for a given seed. */
bsp_err kmeans_fit(const double *x, size_t n, size_t d, size_t k, uint64_t seed, int *labels,
                   double *centroids, double *inertia);

/* Mean silhouette of a labelling, over all points, or over sample_max of
 * them drawn with seed when n is larger (0 = all). */
double cluster_silhouette(const double *x, size_t n, size_t d, const int *labels, size_t k,
                          size_t sample_max, uint64_t seed);

/* Fits k = k_min..k_max and keeps the k with the highest silhouette (ties:
 * the smaller k). silhouettes (k_max + 1 entries, may be NULL) receives each
 * k's score. labels: n; centroids: k_max x d. */
bsp_err cluster_choose(const double *x, size_t n, size_t d, size_t k_min, size_t k_max,
                       uint64_t seed, size_t *k_out, double *silhouettes, int *labels,
                       double *centroids);

typedef struct cluster_opts {
    size_t k;             /* 0: chosen by silhouette */
    uint64_t seed;        /* 0: 1 */
    int64_t reference_ms; /* for recency; 0: the newest last_seen (now if none) */
    bool identified_only; /* cluster only profiles with a userId */
    autoseg_ctl ctl;
} cluster_opts;

typedef struct cluster_summary {
    size_t population; /* profiles with activity */
    size_t k;
    size_t written;
    double silhouette[CLUSTER_K_MAX + 1]; /* by k, when chosen; else only [k] */
    size_t sizes[CLUSTER_K_MAX];
    char descriptions[CLUSTER_K_MAX][256];
    double seconds;
} cluster_summary;

bsp_err cluster_run(bsp_ingest *ing, bsp_store *st, const cluster_opts *opts, cluster_summary *out);

/* `bespoke segment rfm|cluster ...` (cli.c): argv[0] is "segment". Returns
 * the exit code. segment_usage prints its help. */
#include <stdio.h>
int segment_command(int argc, char **argv);
void segment_usage(FILE *out);

#endif
