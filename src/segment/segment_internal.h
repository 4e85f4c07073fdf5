/* segment_internal.h - private to src/segment/ (segments, not the condition
 * language, whose own private header is cond_internal.h): a segment
 * definition, the immutable set of them the registry publishes, and the
 * registry's state. */
#ifndef BSP_SEGMENT_INTERNAL_H
#define BSP_SEGMENT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "segment/segment.h"

#define SEGMENT_NAME_MAX 200
#define SEGMENT_DESC_MAX 2000
#define SEGMENT_URL_MAX 2048
#define SEGMENT_SECRET_MAX 256

typedef struct seg_def {
    char *id;
    uint64_t id_hash; /* bsp_hash64 of id, for the profile's membership list */
    char *name;
    char *description;
    char *condition; /* NULL for automatic segments */
    char *hook_url;  /* NULL: no webhook */
    char *hook_secret;
    bool hook_enter, hook_exit;
    bool automatic; /* members assigned by a job, not a condition */
    bool builtin;
    bsp_cond *cond;
    unsigned inputs;        /* COND_USES_* */
    uint32_t computed_bits; /* PROFILE_C_* of the computed traits it reads */
    uint64_t event_bits;    /* ingest_name_bit of the event names it reads */
    size_t nevents;
    size_t *refs; /* indices (in the set) of the segments in_segment() names */
    size_t nrefs;
    int64_t created_ms, updated_ms;
} seg_def;

bool segment_id_valid(const char *id);
/* Reads a definition. path_id (may be NULL) is the id from the URL; trusted
 * (read from the store) also accepts "builtin". */
bsp_err seg_def_from_json(const cJSON *body, const char *path_id, bool trusted, seg_def **out,
                          bsp_error *err);
/* stored: with the webhook secret and times in ms; else the public form. */
cJSON *seg_def_to_json(const seg_def *d, bool stored);
void seg_def_free(seg_def *d);

/* The segments in force, ordered so that a segment comes after those its
 * condition names; shared by readers through a reference count. */
typedef struct seg_set {
    atomic_int refcount;
    seg_def **defs;
    size_t count;
    bool any_time; /* some segment's condition reads the clock */
    /* Open addressing by the hash of an id: index + 1 of its def, 0 empty;
     * mask + 1 slots (at least twice count). NULL while the set is built. */
    uint32_t *index;
    size_t index_mask;
} seg_set;

void seg_set_release(seg_set *set);
/* The index of id in set, or SIZE_MAX. */
size_t seg_set_find(const seg_set *set, const char *id);

/* Queued entry/exit notification, sent after the commit. */
typedef struct seg_notice {
    char *url;
    char *secret;
    char *body;
    size_t len;
} seg_notice;

/* Recently active profiles, for entries that time alone causes. */
typedef struct seg_active {
    uint64_t pid;
    int64_t ms;
} seg_active;

struct bsp_segments {
    bsp_store *st;
    bsp_ingest *ing;
    uint64_t sweep_ms, rescan_ms, active_ms;

    pthread_mutex_t mu; /* guards cur for readers; only the writer swaps it */
    seg_set *cur;

    /* Writer-thread state. */
    seg_notice *notices;
    size_t notices_len, notices_cap;
    seg_active *active; /* ring */
    size_t active_len, active_cap, active_head;
    segment_notify_fn notify;
    void *notify_ctx;

    /* The background thread and its queue of backfills (under bg_mu). */
    pthread_t bg;
    bool bg_running, bg_stopping;
    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cv;
    char **backfills;
    size_t backfills_len, backfills_cap;
    char building[SEGMENT_ID_MAX + 1]; /* the backfill in progress */

    _Atomic uint64_t m_evals, m_entered, m_exited, m_eval_ns;
};

seg_set *segs_acquire(bsp_segments *s);
/* Queues a backfill of segment id over every profile (members.c). */
void segs_backfill_request(bsp_segments *s, const char *id);
bool segs_backfill_pending(bsp_segments *s, const char *id);

#endif
