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
    bool touched;         /* in ing->touched for this transaction */
    unsigned touch_flags; /* INGEST_TOUCH_* */
    uint64_t touch_names; /* ingest_name_bit of the events applied */
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
    struct oentry *next;
} oentry;

typedef struct overlay {
    pthread_mutex_t mu;
    oentry **buckets;
    size_t nbuckets;
    size_t count;
    uint64_t gen;
} overlay;

bsp_err overlay_init(overlay *o);
void overlay_free(overlay *o);
/* Reader side: copies the published json (caller frees) or NULL, and marks
 * pid as read now. */
char *overlay_read(overlay *o, uint64_t pid, size_t *len);
/* Writer side: whether pid was read recently enough to publish. */
bool overlay_wanted(overlay *o, uint64_t pid, int64_t now_ms);
void overlay_publish(overlay *o, uint64_t pid, char *json, size_t len); /* takes json */
void overlay_forget(overlay *o, uint64_t pid);
/* After a checkpoint: drops copies older than the previous checkpoint and
 * entries nobody read for a while. */
void overlay_checkpointed(overlay *o, int64_t now_ms);

#define LEARN_MEMO 65536 /* slots of the learnt-products memo, a power of two */

typedef struct link {
    uint64_t pid, seq;
} link;

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
    link *links; /* timeline entries not yet stored */
    size_t links_len, links_cap;
    uint64_t log_seq;      /* newest seq appended (this transaction included) */
    uint64_t ckpt_seq;     /* newest seq covered by the last checkpoint */
    uint64_t last_ckpt_ns; /* when it was taken */
    uint64_t *learnt;      /* hashes of product facts already merged (LEARN_MEMO slots) */
    uint64_t *touched;     /* pids the current transaction's events changed */
    size_t touched_len, touched_cap;
    ingest_hooks hooks;
    bool has_hooks;
    overlay over;

    /* Metrics. */
    _Atomic uint64_t m_events, m_dups, m_commits, m_failures, m_checkpoints;
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

/* Records what an event did to a cached profile (for hooks and the overlay). */
bsp_err writer_touch(bsp_ingest *ing, pentry *e, unsigned flags, uint64_t names);
/* Runs the profile_changed hook over the touched profiles (before commit). */
bsp_err writer_touched_hooks(bsp_ingest *ing, bsp_txn *txn);
/* After commit: publishes touched profiles readers want; clears the list. */
void writer_touched_publish(bsp_ingest *ing);
/* After a failed transaction: forgets the list. */
void writer_touched_drop(bsp_ingest *ing);

/* Applies an event already appended to the log as seq: identity, profile,
 * timeline. When replaying, a profile that already holds seq is left alone. */
bsp_err apply_logged_event(bsp_ingest *ing, bsp_txn *txn, const bsp_event *ev, uint64_t seq);
/* Replays the log after the last checkpoint into profiles and checkpoints:
 * at start, and after a failed transaction dropped the writer's state. */
bsp_err writer_recover(bsp_ingest *ing);

/* Finds or creates the profile an event belongs to, linking and merging
 * identities as Segment does. */
bsp_err identity_resolve_event(bsp_ingest *ing, bsp_txn *txn, const bsp_event *ev, uint64_t *pid);

#endif
