/* store.h - the storage interface: everything Bespoke keeps durably goes
 * through these calls, so that the embedded LMDB store (store/lmdb.c) and a
 * later Redis store are interchangeable.
 *
 * Model (all keys binary-safe; values are opaque bytes, mostly JSON):
 *   meta      name            -> bytes          keys, settings, counters
 *   ids       kind|id         -> pid (u64)      kind 'u' = userId, 'a' = anonymousId
 *   profiles  pid             -> profile JSON   (profile/ owns the format)
 *   events    seq             -> event JSON     the append-only event log (packed
 *                                               with zstd once the store has a
 *                                               dictionary, alone or in shared
 *                                               frames; readers see JSON)
 *   pevents   pid|seq         -> (empty)        a profile's timeline index
 *   msgids    bucket|hash(msgId) -> seq         de-duplication of resends
 *   products  product id      -> product JSON   (catalog/ owns the format)
 *   config    kind, id        -> JSON           segments, campaigns, placements, ...
 *   members   segment, pid    -> (empty)        who is in a segment
 *
 * Concurrency: one write transaction at a time (the ingest writer thread);
 * any number of read transactions that see a consistent snapshot and never
 * block the writer. A transaction belongs to the thread that began it.
 * Slices returned by getters point into the store's memory and stay valid
 * until the transaction ends or the same transaction writes. Scan callbacks
 * must not write in the transaction they are called from.
 *
 * Errors: BSP_ENOTFOUND for a missing key, BSP_EEXISTS for a duplicate,
 * BSP_EINVAL for a bad key (empty, too long) or a write in a read
 * transaction, BSP_ESTORE (logged) when storage fails, e.g. the map is full;
 * after BSP_ESTORE the write transaction can only be aborted. */
#ifndef BSP_STORE_H
#define BSP_STORE_H

#include "core/core.h"

typedef struct bsp_store bsp_store;
typedef struct bsp_txn bsp_txn;

typedef struct bsp_slice {
    const char *data;
    size_t len;
} bsp_slice;

typedef struct bsp_store_opts {
    uint64_t map_size; /* bytes of address space to reserve; 0 = 64 GiB */
    bool no_sync;      /* skip fsync on commit (tests/bench only, never serve) */
    bool small_events; /* pack shared frames with zstd: a third fewer bytes, more CPU */
} bsp_store_opts;

/* Opens (creating if needed) the store in directory dir. opts may be NULL. */
bsp_err store_open(const char *dir, const bsp_store_opts *opts, bsp_store **out);
/* The directory the store was opened in (for files kept beside it). */
const char *store_dir(const bsp_store *st);
void store_close(bsp_store *st);

bsp_err store_txn_begin(bsp_store *st, bool write, bsp_txn **out);
/* Commits (durably, unless no_sync) and frees the transaction, even on error. */
bsp_err store_txn_commit(bsp_txn *txn);
/* Aborts and frees. Read transactions end with abort. */
void store_txn_abort(bsp_txn *txn);

/* --- meta: small named values -------------------------------------------- */
/* Names are 1..511 bytes. "last_seq" and "next_pid" are the store's own
 * counters (8 bytes big-endian); do not write them. */
bsp_err store_meta_get(bsp_txn *txn, const char *name, bsp_slice *out); /* BSP_ENOTFOUND */
bsp_err store_meta_put(bsp_txn *txn, const char *name, const void *val, size_t len);

/* Allocates the next profile id (1, 2, 3, ...), persisted with the txn. */
bsp_err store_pid_next(bsp_txn *txn, uint64_t *pid);

/* --- identities ---------------------------------------------------------- */
/* kind is 'u' or 'a'; id is 1..255 bytes, else BSP_EINVAL. */
bsp_err store_id_get(bsp_txn *txn, char kind, const char *id, uint64_t *pid); /* BSP_ENOTFOUND */
bsp_err store_id_put(bsp_txn *txn, char kind, const char *id, uint64_t pid);
bsp_err store_id_del(bsp_txn *txn, char kind, const char *id);

/* --- profiles ------------------------------------------------------------ */
bsp_err store_profile_get(bsp_txn *txn, uint64_t pid, bsp_slice *out); /* BSP_ENOTFOUND */
bsp_err store_profile_put(bsp_txn *txn, uint64_t pid, const char *json, size_t len);
bsp_err store_profile_del(bsp_txn *txn, uint64_t pid);
/* Calls fn for every profile in pid order; a non-OK return stops the scan
 * and is returned. */
typedef bsp_err (*store_profile_fn)(void *ctx, uint64_t pid, bsp_slice json);
bsp_err store_profiles_scan(bsp_txn *txn, store_profile_fn fn, void *ctx);
/* The same, from the first pid above after_pid. */
bsp_err store_profiles_scan_from(bsp_txn *txn, uint64_t after_pid, store_profile_fn fn, void *ctx);

/* --- events -------------------------------------------------------------- */
/* Appends to the log under the next sequence number (1, 2, 3, ...; never
 * reused, even after the newest events were deleted) and indexes it under pid
 * (pid 0: log only, linked later with store_event_link). json is the event's
 * JSON or what store_event_pack made of it. seq_out may be NULL. */
bsp_err store_event_append(bsp_txn *txn, uint64_t pid, const char *json, size_t len,
                           uint64_t *seq_out);
/* The sequence number the next store_event_append in txn will give. */
bsp_err store_event_next_seq(bsp_txn *txn, uint64_t *seq);
/* Indexes event seq under pid's timeline (idempotent). */
bsp_err store_event_link(bsp_txn *txn, uint64_t pid, uint64_t seq);
/* Links the events seqs (ascending, n of them) to pid's timeline as one
 * run: one key, the seqs packed in its value. A profile's runs must not
 * interleave (a checkpoint writes the events since the last one; merges
 * re-pack through store_events_rekey). BSP_EINVAL unless ascending. */
bsp_err store_event_links(bsp_txn *txn, uint64_t pid, const uint64_t *seqs, size_t n);
/* The event's JSON; a packed event is unpacked into a buffer of the
 * transaction, valid until its next event read. BSP_ENOTFOUND. */
bsp_err store_event_get(bsp_txn *txn, uint64_t seq, bsp_slice *out);
/* A profile's events, newest first, starting strictly below before_seq
 * (UINT64_MAX = from the newest), at most limit (0 = none). fn returns non-OK
 * to stop, and that code is returned. To page, pass the last seq seen. */
typedef bsp_err (*store_event_fn)(void *ctx, uint64_t seq, bsp_slice json);
bsp_err store_profile_events(bsp_txn *txn, uint64_t pid, uint64_t before_seq, size_t limit,
                             store_event_fn fn, void *ctx);
/* Moves every timeline entry of from_pid to to_pid (identity merge). */
bsp_err store_events_rekey(bsp_txn *txn, uint64_t from_pid, uint64_t to_pid);
/* Deletes every event of pid from the log and the timeline (erasure);
 * *deleted (may be NULL) is the number of events removed from the log. */
bsp_err store_events_delete(bsp_txn *txn, uint64_t pid, uint64_t *deleted);
/* The whole log in sequence order from from_seq (inclusive); fn returns
 * non-OK to stop, and that code is returned. */
bsp_err store_events_scan(bsp_txn *txn, uint64_t from_seq, store_event_fn fn, void *ctx);

/* Packed events. Once the log has some events, store_event_dict_train (in
 * a write transaction) trains a zstd dictionary on the newest `samples` of
 * them (about 2 MB of them at most) and stores it; from that transaction's
 * commit on, store_event_pack packs an event's JSON (any thread; *out is
 * malloc'd, the caller frees it) for store_event_append, and readers unpack
 * what they read: with LZ4 as the holder of a frame of one, or with zstd
 * when the store was opened with small_events. Events stored
 * before stay as they are. A store has one dictionary for good:
 * store_event_dict_train is BSP_EEXISTS once there is one, and BSP_EINVAL
 * when the events are too few or too alike to learn from (try again with
 * more). store_event_pack is BSP_ENOTFOUND while there is none. */
bool store_event_packing(bsp_store *st);
bsp_err store_event_pack(bsp_store *st, const char *json, size_t len, char **out, size_t *out_len);
/* The JSON of a log value (a copy kept elsewhere, such as the write-ahead
 * file): bytes that are not packed are the JSON itself; packed ones unpack
 * into scratch. A member of a shared frame that refers back to its holder
 * (store_event_holder) needs the holder's value as holder; otherwise
 * holder is NULL. BSP_ESTORE if they do not unpack. */
bsp_err store_event_unpack(bsp_store *st, const char *val, size_t len, const char *holder,
                           size_t holder_len, bsp_buf *scratch, bsp_slice *out);

/* Shared frames. Events of one visitor in one request share most of their
 * bytes, and a zstd frame costs about as much to start as to fill: packing
 * them together takes about a third of the CPU and half the bytes of
 * packing each alone. store_event_pack_frame packs the texts of n events
 * (1 <= n <= STORE_FRAME_EVENTS_MAX) into one frame; *out (malloc'd, the
 * caller frees it) starts with STORE_FRAME_ROOM bytes of room. The frame
 * is LZ4 with the store's dictionary, or zstd when the store was opened
 * with small_events (about 47 against 69 bytes an event, at about twice
 * the CPU); readers take either.
 *
 * Each member is still one event of the log: the first member appended
 * (the holder) stores the frame in its value, each later one a reference
 * back to the holder (a few bytes). store_frame_value makes the value of
 * member index for the event about to get seq: with holder 0 it is the
 * holder (*val points into frame, whose room takes its head); otherwise it
 * refers back to event holder and is written into ref (STORE_FRAME_ROOM
 * bytes). Readers of the log see each member's JSON as if stored alone.
 * Invariant (the caller's): every member of a frame belongs to one profile
 * for good, so that an erasure deletes the holder with the rest. */
#define STORE_FRAME_EVENTS_MAX 64
#define STORE_FRAME_ROOM 24
bsp_err store_event_pack_frame(bsp_store *st, const char *const *texts, const size_t *lens,
                               size_t n, char **out, size_t *out_len);
void store_frame_value(char *frame, size_t frame_len, uint64_t holder, uint64_t seq, uint32_t index,
                       char *ref, const char **val, size_t *val_len);
/* Whether the log value of event seq refers back to another event's value
 * (a member of a shared frame that does not hold it): *holder is its seq. */
bool store_event_holder(const char *val, size_t len, uint64_t seq, uint64_t *holder);
/* Whether a log value is the holder of a shared frame. */
bool store_event_holds_frame(const char *val, size_t len);
bsp_err store_event_dict_train(bsp_txn *txn, size_t samples);

/* --- de-duplication ------------------------------------------------------ */
/* Records msgid with seq under a bucket (the ingest writer uses the hour of
 * the event's timestamp: resends carry the same timestamp, and ids of one
 * window stay together on disk). BSP_EEXISTS (nothing written) if present:
 * one lookup both finds a resend and records a new id. */
bsp_err store_msgid_add(bsp_txn *txn, uint32_t bucket, const char *msgid, size_t len, uint64_t seq);
bsp_err store_msgid_get(bsp_txn *txn, uint32_t bucket, const char *msgid, size_t len,
                        uint64_t *seq);

/* --- products ------------------------------------------------------------ */
/* Product ids are 1..511 bytes; the scan is in byte order of the id. */
bsp_err store_product_get(bsp_txn *txn, const char *id, bsp_slice *out); /* BSP_ENOTFOUND */
bsp_err store_product_put(bsp_txn *txn, const char *id, const char *json, size_t len);
bsp_err store_product_del(bsp_txn *txn, const char *id);
typedef bsp_err (*store_product_fn)(void *ctx, bsp_slice id, bsp_slice json);
bsp_err store_products_scan(bsp_txn *txn, store_product_fn fn, void *ctx);

/* --- configuration ------------------------------------------------------- */
/* Administrative objects by kind ("segment", "campaign", "placement", ...)
 * and id, each 1..255 bytes without NUL (else BSP_EINVAL). The scan visits
 * one kind in byte order of the id. */
bsp_err store_config_get(bsp_txn *txn, const char *kind, const char *id, bsp_slice *out);
bsp_err store_config_put(bsp_txn *txn, const char *kind, const char *id, const char *json,
                         size_t len);
bsp_err store_config_del(bsp_txn *txn, const char *kind, const char *id); /* BSP_ENOTFOUND */
typedef bsp_err (*store_config_fn)(void *ctx, bsp_slice id, bsp_slice json);
bsp_err store_config_scan(bsp_txn *txn, const char *kind, store_config_fn fn, void *ctx);

/* --- segment members ----------------------------------------------------- */
/* An index of who is in each segment (segment id 1..255 bytes). Put and del
 * are idempotent. The scan visits pids above after_pid in increasing order,
 * so a listing can be paged by passing the last pid seen. */
bsp_err store_member_put(bsp_txn *txn, const char *segment, uint64_t pid);
bsp_err store_member_del(bsp_txn *txn, const char *segment, uint64_t pid);
bool store_member_has(bsp_txn *txn, const char *segment, uint64_t pid);
typedef bsp_err (*store_member_fn)(void *ctx, uint64_t pid);
bsp_err store_members_scan(bsp_txn *txn, const char *segment, uint64_t after_pid,
                           store_member_fn fn, void *ctx);
bsp_err store_members_count(bsp_txn *txn, const char *segment, uint64_t *count);
bsp_err store_members_clear(bsp_txn *txn, const char *segment);

/* --- statistics ---------------------------------------------------------- */
typedef struct bsp_store_stats {
    uint64_t profiles;
    uint64_t events;
    uint64_t products;
    uint64_t identities;     /* userId and anonymousId entries */
    uint64_t last_seq;       /* the newest seq handed out, 0 if none */
    uint64_t map_used_bytes; /* file space in use as of the last commit */
} bsp_store_stats;
bsp_err store_stats(bsp_txn *txn, bsp_store_stats *out);

#endif
