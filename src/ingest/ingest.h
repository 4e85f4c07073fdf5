/* ingest.h - the write path: a bounded queue in front of one writer thread
 * that applies batches of work in one store transaction each (group commit):
 * de-duplicating on messageId, appending to the event log, resolving
 * identities (merging anonymous profiles into known ones), updating profiles
 * and learning products. Callers are told only after the log is durable;
 * profiles and timelines reach the store in checkpoints that coalesce many
 * events of one visitor into one write, and are rebuilt from the log after a
 * crash (see log.c). ingest_sync waits for a checkpoint.
 *
 * Admin writes (products, erasure) run on the same thread as jobs, so every
 * write is serialized and no reader ever waits. */
#ifndef BSP_INGEST_H
#define BSP_INGEST_H

#include "core/core.h"
#include "event/event.h"
#include "profile/profile.h"
#include "store/store.h"

typedef struct bsp_ingest bsp_ingest;

typedef struct bsp_ingest_opts {
    size_t queue_max_events;    /* events waiting before submit says BSP_EBUSY; 0 = 200000 */
    size_t commit_max_events;   /* most events in one transaction; 0 = 20000 */
    size_t cache_profiles;      /* profiles kept parsed between commits; 0 = 100000 */
    size_t memo_profiles;       /* readers' parsed profiles (ingest_profile_peek); 0 = 262144 */
    uint64_t checkpoint_ms;     /* longest wait before profiles are stored; 0 = 1000 */
    uint64_t checkpoint_events; /* most events between checkpoints; 0 = 200000 */
    const struct ingest_hooks *hooks; /* installed before the log is replayed; may be NULL */
    /* true: each group is made durable by one append and fdatasync of the
     * write-ahead file DIR/events.wal, and reaches LMDB at checkpoints
     * (the server). false: one durable LMDB commit per group (imports).
     * Either way, records a crash left in the file are replayed at start. */
    bool write_ahead;
    /* Write-ahead mode writes each group with O_DIRECT|O_DSYNC (one call,
     * no page-cache copy) where the filesystem allows, else through the
     * page cache and fdatasync. true: always the latter (tests). */
    bool wal_buffered;
    /* Write-ahead mode: 0 syncs each group before its submitters are told
     * (it survives power loss). N answers a group once it is written to the
     * operating system (it survives the process being killed) and syncs it
     * at most N ms later, so a power cut or kernel crash can lose the last
     * N ms of answered events; never direct. At most INGEST_WAL_SYNC_MAX_MS. */
    uint64_t wal_sync_ms;
} bsp_ingest_opts;

#define INGEST_WAL_SYNC_MAX_MS 1000 /* a checkpoint stores everything each second anyway */

/* What a completed submission reports. accepted counts events newly stored,
 * duplicates those whose messageId was already stored. */
typedef struct bsp_ingest_result {
    bsp_err code;
    size_t accepted;
    size_t duplicates;
} bsp_ingest_result;

/* Called on the writer thread after the commit (or failure). Must be quick. */
typedef void (*ingest_done_fn)(void *ctx, const bsp_ingest_result *res);

bsp_err ingest_start(bsp_store *st, const bsp_ingest_opts *opts, bsp_ingest **out);
/* Stops taking work, finishes everything queued, joins the writer, frees. */
void ingest_stop(bsp_ingest *ing);

/* Queues events. They stay the caller's: ingest borrows them until it
 * calls done, and the caller frees them after that (on its own thread,
 * where they were allocated). Before queueing, the calling thread works
 * out each event's catalog facts (ev->facts) and packs its text, so the
 * writer does not. BSP_EBUSY when they do not fit the queue
 * bound, BSP_EUNAVAIL when stopping; done is then never called. */
bsp_err ingest_submit(bsp_ingest *ing, bsp_event *events, size_t count, ingest_done_fn done,
                      void *ctx);
/* Like ingest_submit but waits for room, then for the commit (import); the
 * events may be freed when it returns. */
bsp_err ingest_submit_wait(bsp_ingest *ing, bsp_event *events, size_t count,
                           bsp_ingest_result *res);

/* Waits until everything committed before the call is reflected in stored
 * profiles and timelines (a checkpoint), so a reader sees its own writes.
 * BSP_EUNAVAIL if ingest stops first. */
bsp_err ingest_sync(bsp_ingest *ing);

/* A job runs on the writer thread inside the current write transaction. */
typedef bsp_err (*ingest_job_fn)(bsp_ingest *ing, bsp_txn *txn, void *arg);
/* Runs fn and waits until its transaction committed; returns fn's result or
 * the commit's failure. */
bsp_err ingest_run_job(bsp_ingest *ing, ingest_job_fn fn, void *arg);

/* For jobs: forget a cached profile (after erasing or rewriting it): the
 * writer's copy, the readers' overlay copy and the memo's parsed one. */
void ingest_forget_profile(bsp_ingest *ing, uint64_t pid);

/* Built-in jobs. */
/* Stores products (normalized catalog objects, borrowed). */
bsp_err ingest_put_products(bsp_ingest *ing, cJSON *const *products, size_t count);
/* Erases the profile that id (a userId or anonymousId) resolves to: the
 * profile, every id pointing at it, and its events. BSP_ENOTFOUND if none. */
bsp_err ingest_erase_profile(bsp_ingest *ing, const char *id, uint64_t *events_deleted);

/* Packed events (store.h): when the log reaches INGEST_DICT_EVENTS events a
 * checkpoint comes at once (not at the interval) and trains the store's
 * dictionary on the newest INGEST_DICT_SAMPLES of them; from then on
 * ingest_submit and ingest_submit_wait pack each event on the submitting
 * thread. */
#define INGEST_DICT_EVENTS 2000
#define INGEST_DICT_SAMPLES 4000

/* Resolves a userId or anonymousId to a profile id in a read transaction. */
bsp_err ingest_resolve(bsp_txn *txn, const char *id, uint64_t *pid);
/* Like ingest_resolve, but also sees the ids the writer linked since its
 * last checkpoint (readers that must not wait for one, such as decisions).
 * kind is what the caller was given the id as, 'u' (a userId) or 'a' (an
 * anonymousId): that kind is looked up first and the other after, so a
 * visitor sent by the field the SDKs use costs one lookup, not two. */
bsp_err ingest_resolve_fresh(bsp_ingest *ing, bsp_txn *txn, char kind, const char *id,
                             uint64_t *pid);

/* --- hooks: segment membership and the like ------------------------------ */

/* What the events of one transaction did to a profile, so that a hook
 * re-evaluates only what those events can change: INGEST_TOUCH_* flags, a
 * 64-bit set of event names (ingest_name_bit of each track event's name)
 * and the computed traits the events may have changed (PROFILE_C_*). */
enum {
    INGEST_TOUCH_EVENT = 1u << 0,  /* any event was applied */
    INGEST_TOUCH_TRAITS = 1u << 1, /* identify, or traits in context */
    INGEST_TOUCH_MERGED = 1u << 2, /* another profile was merged into it */
};
uint64_t ingest_name_bit(const char *event_name);

typedef struct ingest_touch {
    unsigned flags;    /* INGEST_TOUCH_* */
    uint64_t names;    /* ingest_name_bit of the track events applied */
    uint32_t computed; /* PROFILE_C_* the events may have changed */
} ingest_touch;

typedef struct ingest_hooks {
    void *ctx;
    /* On the writer thread inside the write transaction, once per profile
     * the transaction's events changed, after all of them were applied (and
     * also while the log is replayed after a crash). May change p (it is the
     * writer's working copy and is stored by the next checkpoint) and write
     * in txn; an error fails the transaction. */
    bsp_err (*profile_changed)(void *ctx, bsp_txn *txn, bsp_profile *p, const ingest_touch *touch);
    /* A profile leaves the store (merged into another, or erased), inside
     * the transaction that removes it. */
    bsp_err (*profile_gone)(void *ctx, bsp_txn *txn, const bsp_profile *p);
    /* After the transaction committed, or after it failed (nothing it did
     * persists): a hook that queued side effects sends or drops them. */
    void (*committed)(void *ctx);
    void (*aborted)(void *ctx);
} ingest_hooks;

/* Installs hooks (copied; NULL removes them). Call before submitting work
 * or from a job. */
void ingest_set_hooks(bsp_ingest *ing, const ingest_hooks *hooks);

/* For jobs that change profiles themselves (a segment saved, RFM scores):
 * the writer's working copy of pid, loaded if needed, which the next
 * checkpoint stores. BSP_ENOTFOUND if the profile does not exist. */
bsp_err ingest_job_profile(bsp_ingest *ing, bsp_txn *txn, uint64_t pid, bsp_profile **out);
/* Tells the writer a job changed that working copy, so it is stored and
 * readers of ingest_profile_read see it. */
bsp_err ingest_job_profile_changed(bsp_ingest *ing, uint64_t pid);

/* The freshest copy of a profile for a reader that must not wait for the
 * writer (decisions): the version published by the writer's last commit
 * when there is one, else the stored one read through rtxn. The caller owns
 * *out. BSP_ENOTFOUND when the profile exists in neither. */
bsp_err ingest_profile_read(bsp_ingest *ing, bsp_txn *rtxn, uint64_t pid, bsp_profile **out);

/* Like ingest_profile_read, but the profile is the memoized copy every
 * reading thread shares (profile_memo): parsed only when its stored or
 * published bytes changed since any reader last parsed it. Borrowed: valid
 * until the calling thread's next ingest_profile_peek, whatever other
 * threads do meanwhile. Never waits for the writer. */
bsp_err ingest_profile_peek(bsp_ingest *ing, bsp_txn *rtxn, uint64_t pid, const bsp_profile **out);

/* A visitor's profile for a decision: ingest_resolve_fresh, then
 * ingest_profile_peek, except that a visitor whose id link and profile
 * have not changed since a reader last saw them is answered without
 * reading the store (freshness stamps, fresh.c). mark is ingest_read_mark,
 * taken before beginning rtxn. *pid is set whenever the id resolved, even
 * when the profile is not found (BSP_ENOTFOUND). */
uint64_t ingest_read_mark(bsp_ingest *ing);
bsp_err ingest_visitor_peek(bsp_ingest *ing, bsp_txn *rtxn, uint64_t mark, char kind,
                            const char *id, uint64_t *pid, const bsp_profile **out);

/* Counters for /metrics. Latency buckets are upper bounds in microseconds. */
#define BSP_INGEST_LAT_BUCKETS 12
extern const double bsp_ingest_lat_bounds_us[BSP_INGEST_LAT_BUCKETS];
typedef struct bsp_ingest_metrics {
    uint64_t events_ingested;
    uint64_t events_duplicate;
    uint64_t commits;
    uint64_t commit_failures;
    uint64_t checkpoints;
    uint64_t queue_depth;                            /* events waiting now */
    uint64_t lat_counts[BSP_INGEST_LAT_BUCKETS + 1]; /* last = +Inf */
    double lat_sum_us;
    uint64_t checkpoint_us; /* time the writer spent in its own checkpoints */
    uint64_t memo_hits;     /* ingest_profile_peek answered without parsing */
    uint64_t memo_misses;   /* ... and by parsing */
    uint64_t memo_held;     /* profiles the memo holds parsed now */
    uint64_t memo_stamped;  /* of the hits, visitors answered on stamps alone */
    bool wal_direct;        /* groups are written to the WAL with O_DIRECT|O_DSYNC */
    uint64_t wal_syncs;     /* syncs of the WAL (a direct group write is one) */
} bsp_ingest_metrics;
void ingest_metrics(bsp_ingest *ing, bsp_ingest_metrics *out);

#endif
