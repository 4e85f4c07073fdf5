/* ingest_internal.h - private to src/ingest/: the queue's work items, the
 * writer's profile cache, and identity resolution inside a transaction. */
#ifndef BSP_INGEST_INTERNAL_H
#define BSP_INGEST_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "catalog/catalog.h"
#include "json/json.h"
#include "ingest/ingest.h"
#include "profile/profile.h"

/* --- profile cache (cache.c) --------------------------------------------- */
typedef struct pentry {
    uint64_t pid;
    bsp_profile *profile;
    bool dirty;
    bool touched;       /* in ing->touched for this transaction */
    ingest_touch touch; /* what this transaction did to it (flags 0: seen) */
    struct pentry *hash_next;
    struct pentry *lru_prev, *lru_next;
} pentry;

typedef struct pcache {
    pentry **buckets;
    size_t nbuckets;
    size_t capacity;
    size_t count;
    pentry *lru_head, *lru_tail;
} pcache;

bsp_err pcache_init(pcache *c, size_t capacity);
pentry *pcache_get(pcache *c, uint64_t pid);
pentry *pcache_put(pcache *c, bsp_profile *p); /* takes p */
void pcache_remove(pcache *c, uint64_t pid);   /* frees the profile */
void pcache_evict(pcache *c);                  /* down to capacity, clean only */
void pcache_clear(pcache *c);
void pcache_free(pcache *c);

/* --- the queue ----------------------------------------------------------- */
typedef enum { WORK_EVENTS, WORK_JOB } work_kind;

typedef struct work {
    work_kind kind;
    bsp_event *events;
    size_t count;
    ingest_job_fn job;
    void *job_arg;
    bsp_err job_rc;
    ingest_done_fn done;
    void *done_ctx;
    bsp_ingest_result res;
    struct work *next;
} work;

/* --- the read overlay (overlay.c) -----------------------------------------
 * Profiles that readers such as decisions ask for are published here by the
 * writer after each commit, so they see an event's effect before the next
 * checkpoint stores it, without waiting for the writer. */
typedef struct oentry {
    uint64_t pid;
    int64_t read_ms; /* last time a reader asked for it */
    uint64_t gen;    /* checkpoint generation when json was published */
    char *json;      /* storage form, or NULL */
    size_t len;
    bool unasked; /* entered by the writer for a new profile, not read since */
    struct oentry *next;
} oentry;

/* An id whose link to a profile changed since a recent checkpoint: in
 * write-ahead mode the store shows it only after the next one. */
typedef struct oid {
    struct oid *next;
    uint64_t hash; /* of kind and id */
    uint64_t pid;
    uint64_t gen; /* checkpoint generation when published */
    char kind;    /* 'u' or 'a' */
    char id[];
} oid;

typedef struct overlay {
    pthread_mutex_t mu;
    oentry **buckets;
    size_t nbuckets;
    size_t count;
    uint64_t gen;
    int64_t last_read_ms;    /* the newest overlay_read, any pid */
    size_t unasked;          /* entries with unasked set */
    pthread_mutex_t id_mu;   /* guards the id links, apart from the profiles */
    oid **id_buckets;        /* OVERLAY_ID_BUCKETS chains */
    _Atomic size_t id_count; /* read without id_mu: none published, no lock */
} overlay;

bsp_err overlay_init(overlay *o);
void overlay_free(overlay *o);
/* Reader side: copies the published json (caller frees) or NULL, and marks
 * pid as read now. */
char *overlay_read(overlay *o, uint64_t pid, size_t *len);
/* Writer side: whether a copy of pid would be kept (it has an entry, or the
 * table has room for one more unasked copy); a copy costs a serialization. */
bool overlay_takes(overlay *o, uint64_t pid);
/* Whether any profile was read recently: while nobody reads (a bulk load),
 * nothing is published. */
bool overlay_readers_active(overlay *o, int64_t now_ms);
/* Takes json. Replaces the copy of pid, or enters one nobody asked for
 * (at most OVERLAY_MAX_UNASKED of those at a time). */
void overlay_publish(overlay *o, uint64_t pid, char *json, size_t len);
void overlay_forget(overlay *o, uint64_t pid);
/* After a checkpoint: drops copies older than the previous checkpoint and
 * entries nobody read for a while. */
void overlay_checkpointed(overlay *o, int64_t now_ms);
/* Id links: a new one made by the writer (NULL on OOM), published after
 * the group is durable (takes the list), or freed when it failed. */
oid *overlay_id_new(char kind, const char *id, uint64_t pid);
void overlay_publish_ids(overlay *o, oid *list);
void overlay_ids_free(oid *list);
/* Unlinks every published id link to pid (erasure). */
void overlay_forget_ids(overlay *o, uint64_t pid);
/* The pid the published link of (kind, id) names: BSP_ENOTFOUND if none. */
bsp_err overlay_id_get(overlay *o, char kind, const char *id, uint64_t *pid);
/* Marks pid as read now, as overlay_read does, without copying. */
void overlay_touch(overlay *o, uint64_t pid);

/* --- freshness stamps (fresh.c) -------------------------------------------
 * Counters the writer moves on after each change became readable, so a
 * reader knows what it read before is still the newest. */
#define FRESH_STAMPS (1u << 20) /* counters, a power of two (8 MB) */
#define FRESH_ID_WAYS 4         /* stamped id links a set */

typedef struct fresh_id {
    uint64_t hash; /* of kind and id */
    uint64_t pid;
    uint64_t stamp;     /* the id's counter when the link was read */
    int64_t touched_ms; /* when a read through it last marked pid as read */
    char kind;          /* 'u' or 'a'; 0: empty */
} fresh_id;

typedef struct fresh_id_set {
    fresh_id ways[FRESH_ID_WAYS];
    unsigned hand; /* the way the next replacement takes */
} fresh_id_set;

typedef struct fresh {
    _Atomic uint64_t *stamps; /* FRESH_STAMPS counters */
    _Atomic uint64_t gen;     /* commits so far (ingest_read_mark) */
    fresh_id_set *ids;
    size_t id_mask; /* sets - 1 */
    pthread_mutex_t locks[256];
} fresh;

bsp_err fresh_init(fresh *f, size_t visitors);
void fresh_free(fresh *f);
/* The counter a pid's profile or an id's link (either kind) hashes to. */
uint32_t fresh_pid_key(uint64_t pid);
uint32_t fresh_id_key(const char *id);
uint32_t fresh_id_key_hashed(uint64_t id_hash); /* id_hash: bsp_hash64 of the id */
uint64_t fresh_stamp(fresh *f, uint32_t key);
/* Writer side: after a change to key became readable. */
void fresh_bump(fresh *f, uint32_t key);
/* After the writer rebuilt its state: nothing stamped before holds. */
void fresh_bump_all(fresh *f);
/* Writer side: first thing after each commit. */
void fresh_committed(fresh *f);
/* Reader side: a mark taken before beginning a read transaction, and
 * whether no commit came since (else what it read may predate one). */
uint64_t fresh_mark(fresh *f);
bool fresh_unchanged_since(fresh *f, uint64_t mark);
/* id_hash is bsp_hash64 of the id. The pid of a link stamped with the id's current counter; touch
 * is set when the caller should mark the pid as read in the overlay. */
bool fresh_id_get(fresh *f, char kind, uint64_t id_hash, int64_t now_ms, uint64_t *pid,
                  bool *touch);
void fresh_id_put(fresh *f, char kind, uint64_t id_hash, uint64_t pid, uint64_t stamp,
                  int64_t now_ms);

/* --- the write-ahead file (wal.c) -----------------------------------------
 * Records of the events acknowledged since the last checkpoint, each group
 * made durable by one fdatasync; see wal.c for the format and its rules. */
typedef struct wal {
    int fd;          /* -1: not open */
    int dfd;         /* the file opened O_DIRECT|O_DSYNC; -1: groups go through fd */
    uint64_t gen;    /* generation new records carry (meta "wal_gen") */
    uint64_t off;    /* where the next record goes */
    uint64_t size;   /* bytes in the file (zeros beyond the records) */
    bsp_buf pending; /* records of the group being applied */
    uint8_t *stage;  /* direct writes: block-aligned; starts with the tail, the
                        bytes of off's block before off */
    size_t stage_cap;
    bool tail_known;      /* stage holds the tail (else it is read at the next flush) */
    uint64_t lazy_ns;     /* 0: each group synced before it is answered; else the
                             longest a written group waits for its fdatasync */
    uint64_t unsynced_ns; /* lazy: when the oldest unsynced group was written; 0: none */
    uint64_t syncs;       /* syncs made (a direct group write counts as one) */
    /* Direct groups are written asynchronously (Linux AIO) where the kernel
     * offers it, so the writer can apply the group while the device writes. */
    unsigned long aio;     /* aio_context_t; 0: none (direct groups use pwrite) */
    bool flying;           /* wal_flush_start began a group wal_flush_wait has not ended */
    bsp_err flight_rc;     /* a group written at once by wal_flush_start: its result */
    uint64_t flight_start; /* the in-flight write: file offset, bytes, bytes of records */
    size_t flight_span, flight_used;
} wal;

void wal_init(wal *w);
/* Opens DIR/events.wal; BSP_ENOTFOUND when it is absent and !create.
 * direct: write groups with O_DIRECT|O_DSYNC where the filesystem allows. */
bsp_err wal_open(wal *w, const char *dir, bool create, bool direct);
/* Whether groups are written directly (else through the page cache). */
bool wal_is_direct(const wal *w);
void wal_close(wal *w);
/* Adds a record of event seq (its stored text) to the pending group. */
#define WAL_TS_GIVEN 1u     /* the sender set the event's time */
#define WAL_ID_GENERATED 2u /* Bespoke made its messageId */
#define WAL_FLAGS (WAL_TS_GIVEN | WAL_ID_GENERATED)
bsp_err wal_add(wal *w, uint64_t seq, unsigned flags, const char *text, size_t len);
/* Answer groups once written, and sync within lazy_ms (0: sync each group,
 * the default). Set before the first flush; a lazy file is opened with
 * direct false (lazy groups go through the page cache). */
void wal_set_lazy(wal *w, uint64_t lazy_ms);
/* Writes the pending group at the end of the log and syncs it (lazily: syncs
 * only when the oldest unsynced group has waited lazy_ms). */
bsp_err wal_flush(wal *w);
/* wal_flush in two halves, so the caller can work while the device writes:
 * start submits the group's write and returns when wal_flush_async (else
 * it writes, and syncs as wal_flush would, at once); wait returns once the
 * group is durable, with the outcome. Every start is ended by a wait or an
 * abandon, and nothing is added to the pending group in between. */
bool wal_flush_async(const wal *w);
void wal_flush_start(wal *w);
bsp_err wal_flush_wait(wal *w);
/* Ends a started group that failed after all (the caller's own error):
 * waits for its write, then writes back what the file held where the group
 * went (the acknowledged bytes of its first block, then zeros), so no scan
 * finds its records; the group is dropped. Only an async group can be
 * taken back: BSP_EIO for one already written. */
bsp_err wal_flush_abandon(wal *w);
/* Lazy mode: when the unsynced groups must be synced (monotonic ns), or 0
 * when none wait; wal_sync syncs them. */
uint64_t wal_sync_due_ns(const wal *w);
bsp_err wal_sync(wal *w);
/* Forgets the pending group (its events were committed another way). */
void wal_drop(wal *w);
/* After a checkpoint stored everything: records of gen start over at 0. */
void wal_restart(wal *w, uint64_t gen);
/* Calls fn on each intact record of generation gen from the start, in
 * order, up to the first that starts at or after offset limit (UINT64_MAX:
 * all), and leaves the append position after the last one. */
typedef bsp_err (*wal_record_fn)(void *ctx, uint64_t seq, unsigned flags, const char *text,
                                 size_t len);
bsp_err wal_scan(wal *w, uint64_t gen, uint64_t limit, wal_record_fn fn, void *ctx, size_t *count);

#define INGEST_PEEK_MEMO_PROFILES 262144 /* default memo size; only visitors read are held */
#define LEARN_MEMO 65536                 /* slots of the learnt-products memo, a power of two */
#define ID_MEMO 32768                    /* slots of the writer's id memo, a power of two */
#define ID_MEMO_ID_MAX 50                /* longest id the memo holds (a UUID is 36) */

/* An id the writer looked up or linked lately (identity.c). */
typedef struct id_memo_entry {
    uint64_t pid;
    uint32_t gen; /* the memo's generation when filled; older ones are empty */
    char kind;    /* 'u' or 'a' */
    uint8_t len;
    char id[ID_MEMO_ID_MAX];
} id_memo_entry;

typedef struct timeline_link {
    uint64_t pid, seq;
} timeline_link;

struct bsp_ingest {
    bsp_store *st;
    size_t queue_max;
    size_t commit_max;
    uint64_t ckpt_interval_ns; /* longest time changes wait for a checkpoint */
    uint64_t ckpt_max_events;  /* most events between checkpoints */
    pthread_mutex_t mu;
    pthread_cond_t cv_work;   /* the writer waits for work */
    pthread_cond_t cv_room;   /* blocking submitters wait for room */
    pthread_cond_t cv_synced; /* ingest_sync callers wait for a checkpoint */
    work *head, *tail;
    size_t queued_events;
    bool stopping;
    size_t sync_waiters;
    uint64_t committed_seq;    /* newest seq durable in the log (under mu) */
    uint64_t checkpointed_seq; /* newest seq reflected in stored profiles (under mu) */
    pthread_t writer;

    /* Writer-thread state. */
    pcache cache;
    uint64_t *dirty; /* pids changed since the last checkpoint */
    size_t dirty_len, dirty_cap;
    timeline_link *links; /* timeline entries not yet stored */
    size_t links_len, links_cap;
    uint64_t log_seq;          /* newest seq appended (this transaction included) */
    uint64_t dict_next_try;    /* log_seq at which a checkpoint trains the event dictionary */
    uint64_t ckpt_seq;         /* newest seq covered by the last checkpoint */
    uint64_t last_ckpt_ns;     /* when it was taken */
    bool ckpt_asap;            /* checkpoint at once (answered groups failed to sync); under mu */
    atomic_bool unrecovered;   /* the last rebuild failed: nothing is applied until one works */
    uint64_t rebuild_failures; /* failed rebuilds so far (ingest_sync's waiters watch it); mu */
    size_t rebuild_asks;       /* ingest_sync calls since the last failed rebuild; mu */
    uint64_t *learnt;          /* hashes of product facts already merged (LEARN_MEMO slots) */
    id_memo_entry *id_memo;    /* ids and their profiles, by hash (ID_MEMO slots), or NULL */
    uint32_t id_memo_gen;      /* slots of another generation are empty */
    uint64_t *touched;         /* pids the current transaction's events changed */
    size_t touched_len, touched_cap;
    ingest_hooks hooks;
    bool has_hooks;
    overlay over;
    profile_memo *memo; /* parsed profiles the readers share (ingest_profile_peek) */
    fresh fresh;        /* stamps that let readers skip the store (ingest_visitor_peek) */
    uint32_t *stale;    /* stamp keys changed since the last checkpoint (fresh.c) */
    size_t stale_len, stale_cap;
    size_t stale_published; /* of them, bumped after a group commit already */
    bool stale_lost;        /* out of memory for the list: bump every counter */
    /* Write-ahead mode (opts->write_ahead): a group is durable once its
     * records are synced in the WAL; its LMDB writes stay in open_txn until
     * the next checkpoint commits them. */
    bool write_ahead;
    bool wal_buffered;    /* opts->wal_buffered: never O_DIRECT */
    uint64_t wal_sync_ms; /* opts->wal_sync_ms */
    bool wal_live;        /* appends to the log are recorded in wal.pending */
    wal wal;              /* open in write-ahead mode, or while replaying */
    bool replaying_log;   /* recovery replays the stored log: checkpoints keep wal.gen */
    bsp_txn *open_txn;    /* write-ahead mode: the transaction between checkpoints */
    oid *new_ids;         /* write-ahead mode: id links this group made, to publish */
    uint64_t *group_seqs; /* a group applied while its records are written: each event's seq */
    size_t group_seqs_cap;

    /* Metrics. */
    _Atomic uint64_t m_events, m_dups, m_commits, m_failures, m_checkpoints, m_ckpt_us;
    atomic_bool m_wal_direct; /* wal_is_direct, for readers of the metrics */
    _Atomic uint64_t m_wal_syncs;
    _Atomic uint64_t m_lat[BSP_INGEST_LAT_BUCKETS + 1];
    _Atomic uint64_t m_lat_sum_us;
};

/* --- writer helpers (writer.c, apply.c, identity.c) ------------------------ */
/* Loads pid's profile into the cache (from the store, or new when absent). */
bsp_err writer_profile(bsp_ingest *ing, bsp_txn *txn, uint64_t pid, pentry **out);
bsp_err writer_mark_dirty(bsp_ingest *ing, pentry *e);
/* Remembers that event seq belongs to pid's timeline (stored at checkpoint). */
bsp_err writer_link(bsp_ingest *ing, uint64_t pid, uint64_t seq);
/* Points the not yet stored timeline entries of from_pid at to_pid. */
void writer_relink(bsp_ingest *ing, uint64_t from_pid, uint64_t to_pid);
/* Writes every dirty profile and pending timeline entry into txn and
 * records the checkpoint's seq; ckpt_seq moves only after the commit. */
bsp_err writer_checkpoint(bsp_ingest *ing, bsp_txn *txn);
void writer_checkpoint_done(bsp_ingest *ing);
/* Forgets which product facts were merged (after a job changed products). */
void writer_forget_learnt(bsp_ingest *ing);
/* Forgets the id memo (after a job, which may delete ids, and a rebuild). */
void writer_forget_ids(bsp_ingest *ing);

/* Remembers that key's profile or id link changed: bumped after the group
 * commit makes it readable (stale_published on) and again after the next
 * checkpoint stores it. */
void writer_stale(bsp_ingest *ing, uint32_t key);
/* Bumps the stale keys of the group just committed / of the checkpoint. */
void writer_stale_published(bsp_ingest *ing);
void writer_stale_stored(bsp_ingest *ing);

/* Records what an event did to a cached profile (for hooks and the overlay). */
bsp_err writer_touch(bsp_ingest *ing, pentry *e, const ingest_touch *touch);
/* Runs the profile_changed hook over the touched profiles (before commit). */
bsp_err writer_touched_hooks(bsp_ingest *ing, bsp_txn *txn);
/* After commit: publishes touched profiles readers want; clears the list. */
void writer_touched_publish(bsp_ingest *ing);
/* After a failed transaction: forgets the list. */
void writer_touched_drop(bsp_ingest *ing);

/* An event in the writer (log.c), in two stages that a group of events can
 * run apart (all events logged, their records' write started, then all
 * applied): writer_log_event de-duplicates and appends it to the log and
 * the pending group (*seq 0: a resend already stored); writer_apply_event
 * applies what was logged. writer_ingest_event runs both. */
bsp_err writer_log_event(bsp_ingest *ing, bsp_txn *txn, const bsp_event *ev, uint64_t *seq);
bsp_err writer_apply_event(bsp_ingest *ing, bsp_txn *txn, const bsp_event *ev, uint64_t seq);
bsp_err writer_ingest_event(bsp_ingest *ing, bsp_txn *txn, const bsp_event *ev, bool *dup);

/* Applies an event already appended to the log as seq: identity, profile,
 * timeline. When replaying, a profile that already holds seq is left alone. */
bsp_err apply_logged_event(bsp_ingest *ing, bsp_txn *txn, const bsp_event *ev, uint64_t seq);
/* Replays the log after the last checkpoint into profiles and checkpoints:
 * at start, and after a failed transaction dropped the writer's state. */
bsp_err writer_recover(bsp_ingest *ing);

/* Stores the link of (kind, id) to pid and, in write-ahead mode, notes it
 * for readers (published with the group's profiles). */
bsp_err writer_id_put(bsp_ingest *ing, bsp_txn *txn, char kind, const char *id, uint64_t pid);

/* Finds or creates the profile an event belongs to, linking and merging
 * identities as Segment does. */
bsp_err identity_resolve_event(bsp_ingest *ing, bsp_txn *txn, const bsp_event *ev, uint64_t *pid);

#endif
