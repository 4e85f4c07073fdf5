/* lmdb.c - the embedded store: every call of store.h on one LMDB environment.
 *
 * Why LMDB: it is memory-mapped and ACID, readers see a snapshot and never
 * block the single writer, and ordered keys written with MDB_APPEND go in at
 * over a million a second, which is what an append-only event log needs.
 *
 * Layout. One MDB_env per store directory holds nine named databases, all
 * opened (and created if missing) in one write transaction at store_open, so
 * that later transactions only use the handles:
 *
 *   meta      name                 -> bytes
 *   ids       kind(1) | id(1..255) -> pid (8 bytes big-endian)
 *   profiles  pid (8 BE)           -> profile JSON
 *   events    seq (8 BE)           -> event JSON, appended with MDB_APPEND;
 *                                     packed (pack.c) once meta holds the
 *                                     "event_dict" the store trained, alone
 *                                     or with other events of one visitor
 *                                     in a shared frame (a member's value
 *                                     then refers back to the holder's)
 *   pevents   pid (8 BE) | seq (8) -> a run of a profile's timeline: seq is
 *                                     its newest event, the value the gaps
 *                                     down to each older one (varints; empty:
 *                                     a run of one)
 *   msgids    XXH3-128(messageId)  -> seq (8 BE)
 *   products  product id bytes     -> product JSON
 *   config    kind | 0 | id        -> JSON (segments, campaigns, placements)
 *   members   segment | 0 | pid(8) -> empty, a segment's member index
 *
 * Numbers are big-endian so that LMDB's byte order is numeric order: the log
 * is read in sequence order and a timeline is a contiguous key range that is
 * walked backwards for "newest first".
 *
 * Counters. meta "last_seq" (the last sequence number handed out) and
 * "next_pid" (the next profile id) are persisted with the transaction, so a
 * sequence number is never reused, even after erasure deleted the tail of the
 * log. A write transaction reads each counter once and caches it.
 *
 * Errors. MDB_NOTFOUND is BSP_ENOTFOUND, MDB_KEYEXIST is BSP_EEXISTS (neither
 * spoils the transaction), bad key sizes and writes in a read transaction are
 * BSP_EINVAL; everything else, MDB_MAP_FULL included, is logged and becomes
 * BSP_ESTORE. After such an error LMDB refuses further writes in the
 * transaction, and its commit fails, so a transaction is all or nothing. */
#include "store/store_internal.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_DEFAULT_MAP_SIZE (64ULL << 30)
#define STORE_MIN_MAP_SIZE (1ULL << 30)
#define STORE_MAX_DBS 16
#define STORE_MAX_READERS 512
#define STORE_MAX_ID_LEN 255
#define STORE_DIR_MODE 0700
#define STORE_FILE_MODE 0600

#define META_LAST_SEQ "last_seq"
#define META_NEXT_PID "next_pid"
#define META_EVENT_DICT "event_dict" /* the zstd dictionary events are packed with */

#define EVENT_DICT_MAX (64 * 1024)
/* Samples a dictionary learns from, at most: training time grows with
 * them (35 ms for 1.2 MB of small events, 300 ms for 10 MB of orders). */
#define EVENT_DICT_SAMPLE_BYTES (2 * 1024 * 1024)

#define TIMELINE_KEY_LEN 16

/* Read transactions that ended, kept reset for the next reader: with
 * MDB_NOTLS every fresh read transaction takes LMDB's reader-table mutex to
 * find a slot, and a reset one keeps its slot (without pinning any page). */
#define STORE_IDLE_READERS 32

struct bsp_store {
    int lock_fd; /* DIR/bespoke.lock, flock'ed: one Bespoke process a store */
    char *dir;   /* DIR itself, for files that live beside the store */
    MDB_env *env;
    pthread_mutex_t idle_mu;
    bsp_txn *idle[STORE_IDLE_READERS]; /* reset read transactions */
    size_t idle_count;
    MDB_dbi meta, ids, profiles, events, pevents, msgids, products, config, members;
    size_t max_key; /* LMDB's largest key, 511 bytes in Debian's build */
    /* Packs and unpacks event values once the store has a dictionary
     * (pack.c); set at most once, after the transaction that stored the
     * dictionary committed, and freed at close. */
    _Atomic(store_packer *) packer;
    bool small_events; /* shared frames in zstd, not LZ4 (bsp_store_opts) */
};

struct bsp_txn {
    MDB_txn *mt;
    bsp_store *st;
    bool seq_known; /* last_seq holds the value for this transaction */
    bool pid_known; /* next_pid holds the value for this transaction */
    bool writable;
    bool seq_dirty; /* last_seq / next_pid changed: written once, at commit */
    bool pid_dirty;
    uint64_t last_seq;
    uint64_t next_pid;
    bsp_buf unpacked;   /* the last packed event read; kept with pooled readers */
    bsp_buf frame;      /* the content of the last shared frame read; kept likewise */
    uint64_t frame_seq; /* the seq of its holder; 0: none (reset with the txn) */
    void *new_dict;     /* a dictionary this transaction stored, used from its commit */
    size_t new_dict_len;
};

static void txn_free(bsp_txn *txn) {
    bsp_buf_free(&txn->unpacked);
    bsp_buf_free(&txn->frame);
    free(txn->new_dict);
    free(txn);
}

/* Starts packing events with dict, unless the store packs already (the
 * first dictionary stays: events packed with it must stay readable). */
static void packer_install(bsp_store *st, const void *dict, size_t len) {
    store_packer *p = packer_new(dict, len), *none = NULL;
    if (!p) {
        bsp_warn("store: the event dictionary (%zu bytes) could not be loaded", len);
        return;
    }
    if (!atomic_compare_exchange_strong(&st->packer, &none, p)) packer_free(p);
}

/* --- helpers ------------------------------------------------------------- */

static bsp_err map_err(int rc, const char *what) {
    switch (rc) {
    case MDB_SUCCESS:
        return BSP_OK;
    case MDB_NOTFOUND:
        return BSP_ENOTFOUND;
    case MDB_KEYEXIST:
        return BSP_EEXISTS;
    case EACCES: /* a write in a read transaction */
    case EINVAL:
    case MDB_BAD_VALSIZE:
        return BSP_EINVAL;
    case ENOMEM:
        return BSP_ENOMEM;
    case MDB_MAP_FULL:
        bsp_error_log("store: %s: map full, raise the map size: %s", what, mdb_strerror(rc));
        return BSP_ESTORE;
    default:
        bsp_error_log("store: %s: %s", what, mdb_strerror(rc));
        return BSP_ESTORE;
    }
}

static void be64_put(uint8_t *out, uint64_t v) {
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t be64_get(const void *p) {
    const uint8_t *b = p;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | b[i];
    return v;
}

static MDB_val val_of(const void *data, size_t len) {
    return (MDB_val){.mv_size = len, .mv_data = (void *)data};
}

static bsp_slice slice_of(MDB_val v) {
    return (bsp_slice){.data = v.mv_data, .len = v.mv_size};
}

static bool key_ok(const bsp_store *st, const char *key, size_t len) {
    return key != NULL && len > 0 && len <= st->max_key;
}

static void timeline_key(uint8_t out[TIMELINE_KEY_LEN], uint64_t pid, uint64_t seq) {
    be64_put(out, pid);
    be64_put(out + 8, seq);
}

/* True if key is a timeline key of pid; then *seq is its sequence number. */
static bool timeline_key_of(MDB_val key, uint64_t pid, uint64_t *seq) {
    if (key.mv_size != TIMELINE_KEY_LEN || be64_get(key.mv_data) != pid) return false;
    *seq = be64_get((const uint8_t *)key.mv_data + 8);
    return true;
}

static bsp_err db_get(bsp_txn *txn, MDB_dbi dbi, MDB_val key, MDB_val *val, const char *what) {
    return map_err(mdb_get(txn->mt, dbi, &key, val), what);
}

static bsp_err db_put(bsp_txn *txn, MDB_dbi dbi, MDB_val key, MDB_val val, unsigned flags,
                      const char *what) {
    return map_err(mdb_put(txn->mt, dbi, &key, &val, flags), what);
}

static bsp_err db_del(bsp_txn *txn, MDB_dbi dbi, MDB_val key, const char *what) {
    return map_err(mdb_del(txn->mt, dbi, &key, NULL), what);
}

static bsp_err cursor_open(bsp_txn *txn, MDB_dbi dbi, MDB_cursor **cur) {
    return map_err(mdb_cursor_open(txn->mt, dbi, cur), "cursor open");
}

/* Ends a cursor walk: NOTFOUND means the walk ran off the end, which is fine. */
static bsp_err walk_end(int rc, const char *what) {
    return rc == MDB_NOTFOUND ? BSP_OK : map_err(rc, what);
}

/* --- open and close ------------------------------------------------------ */

/* mkdir -p: creates dir and any missing parents. */
static bsp_err make_dirs(const char *dir) {
    char *path = strdup(dir);
    if (!path) return BSP_ENOMEM;
    bsp_err err = BSP_OK;
    for (char *p = path + 1; err == BSP_OK; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, STORE_DIR_MODE) != 0 && errno != EEXIST) {
            bsp_error_log("store: cannot create %s: %s", path, strerror(errno));
            err = BSP_EIO;
        }
        *p = c;
        if (c == '\0') break;
    }
    free(path);
    return err;
}

static bsp_err env_fail(int rc, const char *dir) {
    bsp_error_log("store: cannot open %s: %s", dir, mdb_strerror(rc));
    return rc > 0 ? BSP_EIO : BSP_ESTORE;
}

/* Creates st->env and opens it with map_size; on error st->env is NULL. */
static int env_try(bsp_store *st, const char *dir, uint64_t map_size, unsigned flags) {
    int rc = mdb_env_create(&st->env);
    if (rc != MDB_SUCCESS) {
        st->env = NULL;
        return rc;
    }
    if ((rc = mdb_env_set_maxdbs(st->env, STORE_MAX_DBS)) != MDB_SUCCESS ||
        (rc = mdb_env_set_mapsize(st->env, (size_t)map_size)) != MDB_SUCCESS ||
        (rc = mdb_env_set_maxreaders(st->env, STORE_MAX_READERS)) != MDB_SUCCESS ||
        (rc = mdb_env_open(st->env, dir, flags, STORE_FILE_MODE)) != MDB_SUCCESS) {
        mdb_env_close(st->env);
        st->env = NULL;
    }
    return rc;
}

static bsp_err env_open(bsp_store *st, const char *dir, const bsp_store_opts *opts) {
    unsigned flags = MDB_NOTLS | (opts && opts->no_sync ? MDB_NOSYNC : 0);
    bool default_size = !opts || !opts->map_size;
    uint64_t map_size = default_size ? STORE_DEFAULT_MAP_SIZE : opts->map_size;
    int rc = env_try(st, dir, map_size, flags);
    /* The default reservation may be more address space than the process is
     * allowed (ulimit -v, valgrind): halve it down to 1 GiB and say so. A
     * size the caller chose is never changed. */
    while (default_size && (rc == ENOMEM || rc == EINVAL) && map_size > STORE_MIN_MAP_SIZE) {
        map_size /= 2;
        rc = env_try(st, dir, map_size, flags);
        if (rc == MDB_SUCCESS)
            bsp_warn("store: %s: could only map %llu MiB", dir,
                     (unsigned long long)(map_size >> 20));
    }
    if (rc != MDB_SUCCESS) return env_fail(rc, dir);
    st->max_key = (size_t)mdb_env_get_maxkeysize(st->env);
    int dead = 0;
    mdb_reader_check(st->env, &dead); /* frees slots of readers that died */
    if (dead > 0) bsp_warn("store: cleared %d stale readers in %s", dead, dir);
    return BSP_OK;
}

static bsp_err dbs_open(bsp_store *st) {
    static const char *names[] = {"meta",   "ids",      "profiles", "events", "pevents",
                                  "msgids", "products", "config",   "members"};
    MDB_dbi *handles[] = {&st->meta,   &st->ids,      &st->profiles, &st->events, &st->pevents,
                          &st->msgids, &st->products, &st->config,   &st->members};
    MDB_txn *txn;
    int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc != MDB_SUCCESS) return map_err(rc, "open databases");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        rc = mdb_dbi_open(txn, names[i], MDB_CREATE, handles[i]);
        if (rc != MDB_SUCCESS) {
            mdb_txn_abort(txn);
            return map_err(rc, names[i]);
        }
    }
    return map_err(mdb_txn_commit(txn), "open databases");
}

/* The writer keeps state between transactions (its profile cache, the
 * checkpoint position), so two processes writing one store would undo each
 * other: the second one is refused with BSP_EBUSY. */
static bsp_err lock_dir(bsp_store *st, const char *dir) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/bespoke.lock", dir) >= (int)sizeof path) return BSP_EINVAL;
    st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (st->lock_fd < 0) return BSP_EIO;
    if (flock(st->lock_fd, LOCK_EX | LOCK_NB) == 0) return BSP_OK;
    bsp_err err = errno == EWOULDBLOCK ? BSP_EBUSY : BSP_EIO;
    if (err == BSP_EBUSY) bsp_error_log("store: %s is in use by another bespoke process", dir);
    close(st->lock_fd);
    st->lock_fd = -1;
    return err;
}

/* The dictionary a store packs events with, if it has one. */
static bsp_err event_dict_load(bsp_store *st) {
    MDB_txn *mt;
    int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &mt);
    if (rc != MDB_SUCCESS) return map_err(rc, "begin");
    MDB_val key = {strlen(META_EVENT_DICT), (void *)META_EVENT_DICT}, val;
    rc = mdb_get(mt, st->meta, &key, &val);
    if (rc == MDB_SUCCESS) packer_install(st, val.mv_data, val.mv_size);
    mdb_txn_abort(mt);
    if (rc == MDB_SUCCESS && !atomic_load(&st->packer)) return BSP_ESTORE; /* unreadable events */
    return rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? BSP_OK : map_err(rc, "event dictionary");
}

bsp_err store_open(const char *dir, const bsp_store_opts *opts, bsp_store **out) {
    *out = NULL;
    if (!dir || !*dir) return BSP_EINVAL;
    bsp_err err = make_dirs(dir);
    if (err != BSP_OK) return err;
    bsp_store *st = calloc(1, sizeof *st);
    if (!st) return BSP_ENOMEM;
    st->lock_fd = -1;
    st->small_events = opts && opts->small_events;
    pthread_mutex_init(&st->idle_mu, NULL);
    st->dir = strdup(dir);
    err = st->dir ? lock_dir(st, dir) : BSP_ENOMEM;
    if (err == BSP_OK) err = env_open(st, dir, opts);
    if (err == BSP_OK) err = dbs_open(st);
    if (err == BSP_OK) err = event_dict_load(st);
    if (err != BSP_OK) {
        if (st->env) mdb_env_close(st->env);
        if (st->lock_fd >= 0) close(st->lock_fd);
        pthread_mutex_destroy(&st->idle_mu);
        free(st->dir);
        free(st);
        return err;
    }
    *out = st;
    return BSP_OK;
}

void store_close(bsp_store *st) {
    if (!st) return;
    for (size_t i = 0; i < st->idle_count; i++) {
        mdb_txn_abort(st->idle[i]->mt);
        txn_free(st->idle[i]);
    }
    packer_free(atomic_load(&st->packer));
    pthread_mutex_destroy(&st->idle_mu);
    mdb_env_close(st->env);
    close(st->lock_fd); /* releases the lock */
    free(st->dir);
    free(st);
}

const char *store_dir(const bsp_store *st) {
    return st->dir;
}

/* --- transactions -------------------------------------------------------- */

/* A reset read transaction of the pool, renewed; NULL when none is idle
 * (or renewing failed: that one is dropped). */
static bsp_txn *reader_reuse(bsp_store *st) {
    pthread_mutex_lock(&st->idle_mu);
    bsp_txn *txn = st->idle_count ? st->idle[--st->idle_count] : NULL;
    pthread_mutex_unlock(&st->idle_mu);
    if (txn && mdb_txn_renew(txn->mt) != MDB_SUCCESS) {
        mdb_txn_abort(txn->mt);
        txn_free(txn);
        txn = NULL;
    }
    return txn;
}

/* Ends a read transaction: reset into the pool, or aborted when it is full. */
static void reader_release(bsp_txn *txn) {
    bsp_store *st = txn->st;
    mdb_txn_reset(txn->mt);
    *txn = (bsp_txn){.mt = txn->mt, .st = st, .unpacked = txn->unpacked, .frame = txn->frame};
    pthread_mutex_lock(&st->idle_mu);
    bool kept = st->idle_count < STORE_IDLE_READERS;
    if (kept) st->idle[st->idle_count++] = txn;
    pthread_mutex_unlock(&st->idle_mu);
    if (!kept) {
        mdb_txn_abort(txn->mt);
        txn_free(txn);
    }
}

bsp_err store_txn_begin(bsp_store *st, bool write, bsp_txn **out) {
    *out = NULL;
    if (!write && (*out = reader_reuse(st))) return BSP_OK;
    bsp_txn *txn = calloc(1, sizeof *txn);
    if (!txn) return BSP_ENOMEM;
    int rc = mdb_txn_begin(st->env, NULL, write ? 0 : MDB_RDONLY, &txn->mt);
    if (rc != MDB_SUCCESS) {
        free(txn);
        return map_err(rc, "begin");
    }
    txn->st = st;
    txn->writable = write;
    *out = txn;
    return BSP_OK;
}

static bsp_err counter_write(bsp_txn *txn, const char *name, uint64_t v);

/* The counters change with every event and every new profile; they are
 * written once a transaction (before commit, or before meta is touched). */
static bsp_err counters_flush(bsp_txn *txn) {
    bsp_err err = BSP_OK;
    if (txn->seq_dirty) err = counter_write(txn, META_LAST_SEQ, txn->last_seq);
    if (err == BSP_OK && txn->pid_dirty) err = counter_write(txn, META_NEXT_PID, txn->next_pid);
    if (err == BSP_OK) txn->seq_dirty = txn->pid_dirty = false;
    return err;
}

bsp_err store_txn_commit(bsp_txn *txn) {
    if (!txn->writable) {
        reader_release(txn);
        return BSP_OK;
    }
    bsp_err err = counters_flush(txn);
    if (err == BSP_OK && bsp_fault_hit(BSP_FAULT_STORE_COMMIT)) {
        bsp_error_log("store: commit: failed on purpose (an armed fault point)");
        err = BSP_ESTORE;
    }
    if (err != BSP_OK) {
        mdb_txn_abort(txn->mt);
        txn_free(txn);
        return err;
    }
    int rc = mdb_txn_commit(txn->mt); /* frees the MDB_txn even on error */
    if (rc == MDB_SUCCESS && txn->new_dict)
        packer_install(txn->st, txn->new_dict, txn->new_dict_len);
    txn_free(txn);
    return map_err(rc, "commit");
}

void store_txn_abort(bsp_txn *txn) {
    if (!txn) return;
    if (!txn->writable) {
        reader_release(txn);
        return;
    }
    mdb_txn_abort(txn->mt);
    txn_free(txn);
}

/* --- meta and counters --------------------------------------------------- */

bsp_err store_meta_get(bsp_txn *txn, const char *name, bsp_slice *out) {
    if (!name || !key_ok(txn->st, name, strlen(name))) return BSP_EINVAL;
    MDB_val val;
    bsp_err err = counters_flush(txn);
    if (err == BSP_OK)
        err = db_get(txn, txn->st->meta, val_of(name, strlen(name)), &val, "meta get");
    if (err == BSP_OK) *out = slice_of(val);
    return err;
}

bsp_err store_meta_put(bsp_txn *txn, const char *name, const void *val, size_t len) {
    if (!name || !key_ok(txn->st, name, strlen(name))) return BSP_EINVAL;
    bsp_err err = counters_flush(txn);
    if (err != BSP_OK) return err;
    txn->seq_known = txn->pid_known = false; /* the caller may have set a counter */
    return db_put(txn, txn->st->meta, val_of(name, strlen(name)), val_of(val, len), 0, "meta put");
}

/* Reads a counter; *v keeps its value (the default) if the counter is unset. */
static bsp_err counter_read(bsp_txn *txn, const char *name, uint64_t *v) {
    MDB_val val;
    bsp_err err = db_get(txn, txn->st->meta, val_of(name, strlen(name)), &val, name);
    if (err == BSP_ENOTFOUND) return BSP_OK;
    if (err != BSP_OK) return err;
    if (val.mv_size != 8) {
        bsp_error_log("store: meta %s has %zu bytes, not 8", name, val.mv_size);
        return BSP_ESTORE;
    }
    *v = be64_get(val.mv_data);
    return BSP_OK;
}

static bsp_err counter_write(bsp_txn *txn, const char *name, uint64_t v) {
    uint8_t buf[8];
    be64_put(buf, v);
    return db_put(txn, txn->st->meta, val_of(name, strlen(name)), val_of(buf, 8), 0, name);
}

/* The last sequence number: the meta counter, or the last key of the log if
 * that is higher (a log written before the counter existed). */
static bsp_err last_seq_load(bsp_txn *txn) {
    if (txn->seq_known) return BSP_OK;
    uint64_t last = 0;
    bsp_err err = counter_read(txn, META_LAST_SEQ, &last);
    if (err != BSP_OK) return err;
    MDB_cursor *cur;
    if ((err = cursor_open(txn, txn->st->events, &cur)) != BSP_OK) return err;
    MDB_val key, val;
    int rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
    if (rc == MDB_SUCCESS && key.mv_size == 8 && be64_get(key.mv_data) > last)
        last = be64_get(key.mv_data);
    mdb_cursor_close(cur);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) return map_err(rc, "last seq");
    txn->last_seq = last;
    txn->seq_known = true;
    return BSP_OK;
}

bsp_err store_pid_next(bsp_txn *txn, uint64_t *pid) {
    if (!txn->writable) return BSP_EINVAL;
    if (!txn->pid_known) {
        uint64_t next = 1;
        bsp_err err = counter_read(txn, META_NEXT_PID, &next);
        if (err != BSP_OK) return err;
        txn->next_pid = next;
        txn->pid_known = true;
    }
    *pid = txn->next_pid++;
    txn->pid_dirty = true;
    return BSP_OK;
}

/* --- identities ---------------------------------------------------------- */

/* Builds kind|id into buf (1 + STORE_MAX_ID_LEN bytes); 0 if invalid. */
static size_t id_key(char kind, const char *id, uint8_t *buf) {
    if ((kind != 'u' && kind != 'a') || !id) return 0;
    size_t len = strlen(id);
    if (len == 0 || len > STORE_MAX_ID_LEN) return 0;
    buf[0] = (uint8_t)kind;
    memcpy(buf + 1, id, len);
    return len + 1;
}

bsp_err store_id_get(bsp_txn *txn, char kind, const char *id, uint64_t *pid) {
    uint8_t buf[1 + STORE_MAX_ID_LEN];
    size_t klen = id_key(kind, id, buf);
    if (klen == 0) return BSP_EINVAL;
    MDB_val val;
    bsp_err err = db_get(txn, txn->st->ids, val_of(buf, klen), &val, "id get");
    if (err != BSP_OK) return err;
    if (val.mv_size != 8) return map_err(MDB_CORRUPTED, "id get");
    *pid = be64_get(val.mv_data);
    return BSP_OK;
}

bsp_err store_id_put(bsp_txn *txn, char kind, const char *id, uint64_t pid) {
    uint8_t buf[1 + STORE_MAX_ID_LEN], val[8];
    size_t klen = id_key(kind, id, buf);
    if (klen == 0) return BSP_EINVAL;
    be64_put(val, pid);
    return db_put(txn, txn->st->ids, val_of(buf, klen), val_of(val, 8), 0, "id put");
}

bsp_err store_id_del(bsp_txn *txn, char kind, const char *id) {
    uint8_t buf[1 + STORE_MAX_ID_LEN];
    size_t klen = id_key(kind, id, buf);
    if (klen == 0) return BSP_EINVAL;
    return db_del(txn, txn->st->ids, val_of(buf, klen), "id del");
}

/* --- profiles ------------------------------------------------------------ */

bsp_err store_profile_get(bsp_txn *txn, uint64_t pid, bsp_slice *out) {
    uint8_t key[8];
    be64_put(key, pid);
    MDB_val val;
    bsp_err err = db_get(txn, txn->st->profiles, val_of(key, 8), &val, "profile get");
    if (err == BSP_OK) *out = slice_of(val);
    return err;
}

bsp_err store_profile_put(bsp_txn *txn, uint64_t pid, const char *json, size_t len) {
    uint8_t key[8];
    be64_put(key, pid);
    return db_put(txn, txn->st->profiles, val_of(key, 8), val_of(json, len), 0, "profile put");
}

bsp_err store_profile_del(bsp_txn *txn, uint64_t pid) {
    uint8_t key[8];
    be64_put(key, pid);
    return db_del(txn, txn->st->profiles, val_of(key, 8), "profile del");
}

bsp_err store_profiles_scan(bsp_txn *txn, store_profile_fn fn, void *ctx) {
    return store_profiles_scan_from(txn, 0, fn, ctx);
}

bsp_err store_profiles_scan_from(bsp_txn *txn, uint64_t after_pid, store_profile_fn fn, void *ctx) {
    if (after_pid == UINT64_MAX) return BSP_OK;
    MDB_cursor *cur;
    bsp_err err = cursor_open(txn, txn->st->profiles, &cur);
    if (err != BSP_OK) return err;
    uint8_t start[8];
    be64_put(start, after_pid + 1);
    MDB_val key = val_of(start, 8), val;
    int rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == MDB_SUCCESS && err == BSP_OK) {
        if (key.mv_size == 8) err = fn(ctx, be64_get(key.mv_data), slice_of(val));
        if (err == BSP_OK) rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return err != BSP_OK ? err : walk_end(rc, "profiles scan");
}

/* --- events -------------------------------------------------------------- */

bsp_err store_event_append(bsp_txn *txn, uint64_t pid, const char *json, size_t len,
                           uint64_t *seq_out) {
    bsp_err err = last_seq_load(txn);
    if (err != BSP_OK) return err;
    uint64_t seq = txn->last_seq + 1;
    uint8_t key[8];
    be64_put(key, seq);
    err =
        db_put(txn, txn->st->events, val_of(key, 8), val_of(json, len), MDB_APPEND, "event append");
    if (err == BSP_OK && pid) err = store_event_link(txn, pid, seq);
    if (err != BSP_OK) return err;
    txn->last_seq = seq;
    txn->seq_dirty = true;
    if (seq_out) *seq_out = seq;
    return BSP_OK;
}

bsp_err store_event_next_seq(bsp_txn *txn, uint64_t *seq) {
    bsp_err err = last_seq_load(txn);
    if (err == BSP_OK) *seq = txn->last_seq + 1;
    return err;
}

/* --- timelines -------------------------------------------------------------
 * A profile's timeline is stored as runs: one key per run, pid | the run's
 * newest seq, and as value the gaps down to each older seq of the run, as
 * LEB128 varints (an empty value is a run of one, as every entry was before
 * runs). A checkpoint writes one run per profile, all its events since the
 * last checkpoint, so a profile's runs never interleave: walking its keys
 * backwards walks its events newest first. A merge that would interleave
 * two profiles' runs packs the runs concerned into one (store_events_rekey).
 * One put a profile and checkpoint, where there was one an event, and a
 * timeline an eighth of the pages. */

#define RUN_VARINT_MAX 10

/* The seqs of one run, newest first: run_start, then run_next until false. */
typedef struct run_iter {
    const uint8_t *p, *end;
    uint64_t seq;
    bool bad; /* a malformed value: the store is damaged */
} run_iter;

static void run_start(run_iter *it, MDB_val key, MDB_val val) {
    it->p = val.mv_data;
    it->end = it->p + val.mv_size;
    it->seq = be64_get((const uint8_t *)key.mv_data + 8);
    it->bad = false;
}

/* The next older seq of the run into it->seq; false at the end (or when the
 * value is malformed: it->bad). */
static bool run_next(run_iter *it) {
    if (it->p == it->end) return false;
    uint64_t gap = 0;
    for (int shift = 0; shift < 7 * RUN_VARINT_MAX; shift += 7) {
        if (it->p == it->end) break;
        uint8_t b = *it->p++;
        gap |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (gap == 0 || gap >= it->seq) break;
            it->seq -= gap;
            return true;
        }
    }
    it->bad = true;
    it->p = it->end;
    return false;
}

bsp_err store_event_links(bsp_txn *txn, uint64_t pid, const uint64_t *seqs, size_t n) {
    if (n == 0) return BSP_OK;
    for (size_t i = 1; i < n; i++)
        if (seqs[i] <= seqs[i - 1]) return BSP_EINVAL;
    uint8_t small[512], *buf = small;
    size_t cap = (n - 1) * RUN_VARINT_MAX;
    if (cap > sizeof small && !(buf = malloc(cap))) return BSP_ENOMEM;
    size_t len = 0;
    for (size_t i = n - 1; i > 0; i--)
        len += store_varint_put(buf + len, seqs[i] - seqs[i - 1]);
    uint8_t tkey[TIMELINE_KEY_LEN];
    timeline_key(tkey, pid, seqs[n - 1]);
    bsp_err err = db_put(txn, txn->st->pevents, val_of(tkey, sizeof tkey), val_of(buf, len), 0,
                         "timeline put");
    if (buf != small) free(buf);
    return err;
}

bsp_err store_event_link(bsp_txn *txn, uint64_t pid, uint64_t seq) {
    return store_event_links(txn, pid, &seq, 1);
}

/* A member of a shared frame as its JSON. The frame's content stays in
 * the transaction (txn->frame) for the next member read: a timeline reads
 * a frame's members one after another. */
static bsp_err shared_json(bsp_txn *txn, uint64_t seq, MDB_val val, bsp_slice *out) {
    store_packer *p = atomic_load_explicit(&txn->st->packer, memory_order_acquire);
    shared_parts m, h;
    if (!p || !packer_shared_parts(val.mv_data, val.mv_size, &m) || m.back >= seq)
        return BSP_ESTORE;
    uint64_t holder = seq - m.back;
    if (txn->frame_seq != holder) {
        txn->frame_seq = 0;
        h = m;
        if (m.back) {
            uint8_t key[8];
            be64_put(key, holder);
            MDB_val hval;
            bsp_err err = db_get(txn, txn->st->events, val_of(key, 8), &hval, "frame get");
            if (err == BSP_ENOTFOUND) return BSP_ESTORE; /* a member outlived its holder */
            if (err != BSP_OK) return err;
            if (!packer_shared_parts(hval.mv_data, hval.mv_size, &h) || h.back) return BSP_ESTORE;
        }
        bsp_err err = packer_unpack_frame(p, &h, &txn->frame);
        if (err != BSP_OK) return err;
        txn->frame_seq = holder;
    }
    return packer_frame_member(&txn->frame, m.index, out);
}

/* An event value as its JSON: as stored, or unpacked into the
 * transaction's buffers (valid until the next event read in it). */
static bsp_err event_json(bsp_txn *txn, uint64_t seq, MDB_val val, bsp_slice *out) {
    bsp_err err =
        packer_is_shared(val.mv_data, val.mv_size)
            ? shared_json(txn, seq, val, out)
            : store_event_unpack(txn->st, val.mv_data, val.mv_size, NULL, 0, &txn->unpacked, out);
    if (err == BSP_ESTORE)
        bsp_error_log("store: event %llu does not unpack", (unsigned long long)seq);
    return err;
}

bsp_err store_event_get(bsp_txn *txn, uint64_t seq, bsp_slice *out) {
    uint8_t key[8];
    be64_put(key, seq);
    MDB_val val;
    bsp_err err = db_get(txn, txn->st->events, val_of(key, 8), &val, "event get");
    if (err == BSP_OK) err = event_json(txn, seq, val, out);
    return err;
}

/* Passes event seq to fn and counts it; a timeline entry whose event is gone
 * from the log is skipped. */
static bsp_err timeline_emit(bsp_txn *txn, uint64_t seq, store_event_fn fn, void *ctx,
                             size_t *emitted) {
    bsp_slice json;
    bsp_err err = store_event_get(txn, seq, &json);
    if (err == BSP_ENOTFOUND) return BSP_OK;
    if (err != BSP_OK) return err;
    (*emitted)++;
    return fn(ctx, seq, json);
}

bsp_err store_profile_events(bsp_txn *txn, uint64_t pid, uint64_t before_seq, size_t limit,
                             store_event_fn fn, void *ctx) {
    if (limit == 0 || before_seq == 0) return BSP_OK;
    MDB_cursor *cur;
    bsp_err err = cursor_open(txn, txn->st->pevents, &cur);
    if (err != BSP_OK) return err;
    uint8_t start[TIMELINE_KEY_LEN];
    timeline_key(start, pid, before_seq);
    MDB_val key = val_of(start, sizeof start), val;
    /* SET_RANGE finds the first key >= pid|before_seq: a run of pid found
     * there may hold events below before_seq, else the run before it holds
     * the newest. Past the end, start from the last. */
    int rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    uint64_t seq;
    if (rc == MDB_NOTFOUND || (rc == MDB_SUCCESS && !timeline_key_of(key, pid, &seq)))
        rc = mdb_cursor_get(cur, &key, &val, rc == MDB_SUCCESS ? MDB_PREV : MDB_LAST);
    size_t emitted = 0;
    while (rc == MDB_SUCCESS && emitted < limit && timeline_key_of(key, pid, &seq)) {
        run_iter it;
        run_start(&it, key, val);
        do {
            if (it.seq < before_seq) err = timeline_emit(txn, it.seq, fn, ctx, &emitted);
        } while (err == BSP_OK && emitted < limit && run_next(&it));
        if (err == BSP_OK && it.bad) err = map_err(MDB_CORRUPTED, "timeline run");
        if (err != BSP_OK) break;
        rc = mdb_cursor_get(cur, &key, &val, MDB_PREV);
    }
    mdb_cursor_close(cur);
    return err != BSP_OK ? err : walk_end(rc, "timeline");
}

/* 64-bit numbers gathered in a growing array: a timeline's seqs, a
 * segment's members. */
typedef struct u64_vec {
    uint64_t *v;
    size_t n, cap;
} u64_vec;

static bsp_err u64_vec_add(u64_vec *s, uint64_t v) {
    uint64_t *grown = bsp_grow(s->v, &s->cap, s->n, sizeof *grown, 64);
    if (!grown) return BSP_ENOMEM;
    s->v = grown;
    s->v[s->n++] = v;
    return BSP_OK;
}

static int seq_order(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Moves the run under the cursor into out (its seqs) and deletes it; *oldest
 * is its oldest seq. */
static bsp_err run_take(MDB_cursor *cur, MDB_val key, MDB_val val, u64_vec *out, uint64_t *oldest) {
    run_iter it;
    run_start(&it, key, val);
    bsp_err err = BSP_OK;
    do {
        err = u64_vec_add(out, it.seq);
    } while (err == BSP_OK && run_next(&it));
    if (err == BSP_OK && it.bad) err = map_err(MDB_CORRUPTED, "timeline run");
    if (err == BSP_OK) err = map_err(mdb_cursor_del(cur, 0), "timeline del");
    *oldest = it.seq;
    return err;
}

/* The first run of pid at or after pid|from_seq, under the cursor;
 * BSP_ENOTFOUND when there is none. */
static bsp_err run_seek(MDB_cursor *cur, uint64_t pid, uint64_t from_seq, MDB_val *key,
                        MDB_val *val) {
    uint8_t start[TIMELINE_KEY_LEN];
    timeline_key(start, pid, from_seq);
    *key = val_of(start, sizeof start);
    int rc = mdb_cursor_get(cur, key, val, MDB_SET_RANGE);
    uint64_t seq;
    if (rc != MDB_SUCCESS) return map_err(rc, "timeline seek");
    return timeline_key_of(*key, pid, &seq) ? BSP_OK : BSP_ENOTFOUND;
}

bsp_err store_events_rekey(bsp_txn *txn, uint64_t from_pid, uint64_t to_pid) {
    if (from_pid == to_pid) return BSP_OK;
    MDB_cursor *cur;
    bsp_err err = cursor_open(txn, txn->st->pevents, &cur);
    if (err != BSP_OK) return err;
    u64_vec all = {0};
    MDB_val key, val;
    uint64_t oldest, lo = UINT64_MAX, hi = 0;
    while ((err = run_seek(cur, from_pid, 0, &key, &val)) == BSP_OK) {
        uint64_t newest = be64_get((const uint8_t *)key.mv_data + 8);
        if ((err = run_take(cur, key, val, &all, &oldest)) != BSP_OK) break;
        if (oldest < lo) lo = oldest;
        if (newest > hi) hi = newest;
    }
    /* to_pid's runs that reach into [lo, hi] are packed with them, so that
     * its runs do not interleave; runs are disjoint, so in key order their
     * oldest seqs ascend and the first that starts above hi ends the scan. */
    while (err == BSP_ENOTFOUND && all.n &&
           (err = run_seek(cur, to_pid, lo, &key, &val)) == BSP_OK) {
        run_iter it;
        run_start(&it, key, val);
        while (run_next(&it)) {
        }
        if (it.bad) {
            err = map_err(MDB_CORRUPTED, "timeline run");
            break;
        }
        if (it.seq > hi) {
            err = BSP_ENOTFOUND;
            break;
        }
        uint64_t newest = be64_get((const uint8_t *)key.mv_data + 8);
        if ((err = run_take(cur, key, val, &all, &oldest)) != BSP_OK) break;
        if (newest > hi) hi = newest;
        err = BSP_ENOTFOUND;
    }
    if (err == BSP_ENOTFOUND && all.n) {
        qsort(all.v, all.n, sizeof *all.v, seq_order);
        size_t unique = 0;
        for (size_t i = 0; i < all.n; i++)
            if (unique == 0 || all.v[unique - 1] != all.v[i]) all.v[unique++] = all.v[i];
        err = store_event_links(txn, to_pid, all.v, unique);
    } else if (err == BSP_ENOTFOUND)
        err = BSP_OK;
    free(all.v);
    mdb_cursor_close(cur);
    return err;
}

bsp_err store_events_delete(bsp_txn *txn, uint64_t pid, uint64_t *deleted) {
    MDB_cursor *cur;
    bsp_err err = cursor_open(txn, txn->st->pevents, &cur);
    if (err != BSP_OK) return err;
    uint64_t count = 0, oldest;
    u64_vec run = {0};
    MDB_val k, v;
    while ((err = run_seek(cur, pid, 0, &k, &v)) == BSP_OK) {
        run.n = 0;
        if ((err = run_take(cur, k, v, &run, &oldest)) != BSP_OK) break;
        for (size_t i = 0; i < run.n && err == BSP_OK; i++) {
            uint8_t key[8];
            be64_put(key, run.v[i]);
            err = db_del(txn, txn->st->events, val_of(key, 8), "event del");
            if (err == BSP_OK)
                count++;
            else if (err == BSP_ENOTFOUND)
                err = BSP_OK; /* already gone from the log */
        }
        if (err != BSP_OK) break;
    }
    free(run.v);
    mdb_cursor_close(cur);
    if (err != BSP_ENOTFOUND) return err;
    if (deleted) *deleted = count;
    return BSP_OK;
}

bsp_err store_events_scan(bsp_txn *txn, uint64_t from_seq, store_event_fn fn, void *ctx) {
    MDB_cursor *cur;
    bsp_err err = cursor_open(txn, txn->st->events, &cur);
    if (err != BSP_OK) return err;
    uint8_t start[8];
    be64_put(start, from_seq);
    MDB_val key = val_of(start, 8), val;
    int rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == MDB_SUCCESS && err == BSP_OK) {
        bsp_slice json;
        if (key.mv_size == 8) {
            uint64_t seq = be64_get(key.mv_data);
            err = event_json(txn, seq, val, &json);
            if (err == BSP_OK) err = fn(ctx, seq, json);
        }
        if (err == BSP_OK) rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return err != BSP_OK ? err : walk_end(rc, "events scan");
}

/* --- packed events -------------------------------------------------------- */

bool store_event_packing(bsp_store *st) {
    return atomic_load_explicit(&st->packer, memory_order_acquire) != NULL;
}

bsp_err store_event_pack(bsp_store *st, const char *json, size_t len, char **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    store_packer *p = atomic_load_explicit(&st->packer, memory_order_acquire);
    return p ? packer_pack(p, st->small_events, json, len, out, out_len) : BSP_ENOTFOUND;
}

bsp_err store_event_unpack(bsp_store *st, const char *val, size_t len, const char *holder,
                           size_t holder_len, bsp_buf *scratch, bsp_slice *out) {
    if (!packer_is_packed(val, len)) {
        *out = (bsp_slice){val, len};
        return BSP_OK;
    }
    store_packer *p = atomic_load_explicit(&st->packer, memory_order_acquire);
    if (!p) return BSP_ESTORE;
    if (!packer_is_shared(val, len)) return packer_unpack(p, val, len, scratch, out);
    shared_parts m, h;
    if (!packer_shared_parts(val, len, &m)) return BSP_ESTORE;
    h = m;
    if (m.back && (!holder || !packer_shared_parts(holder, holder_len, &h) || h.back))
        return BSP_ESTORE;
    bsp_err err = packer_unpack_frame(p, &h, scratch);
    return err ? err : packer_frame_member(scratch, m.index, out);
}

bsp_err store_event_pack_frame(bsp_store *st, const char *const *texts, const size_t *lens,
                               size_t n, char **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    store_packer *p = atomic_load_explicit(&st->packer, memory_order_acquire);
    return p ? packer_pack_frame(p, st->small_events, texts, lens, n, out, out_len) : BSP_ENOTFOUND;
}

void store_frame_value(char *frame, size_t frame_len, uint64_t holder, uint64_t seq, uint32_t index,
                       char *ref, const char **val, size_t *val_len) {
    packer_frame_value(frame, frame_len, holder ? seq - holder : 0, index, ref, val, val_len);
}

bool store_event_holds_frame(const char *val, size_t len) {
    shared_parts m;
    return packer_shared_parts(val, len, &m) && m.back == 0;
}

bool store_event_holder(const char *val, size_t len, uint64_t seq, uint64_t *holder) {
    shared_parts m;
    if (!packer_shared_parts(val, len, &m) || m.back == 0 || m.back >= seq) return false;
    *holder = seq - m.back;
    return true;
}

/* The newest unpacked events of the log, up to max of them and about
 * EVENT_DICT_SAMPLE_BYTES, laid end to end. */
static bsp_err dict_samples(bsp_txn *txn, size_t max, bsp_buf *all, size_t **sizes,
                            unsigned *count) {
    MDB_cursor *cur;
    bsp_err err = cursor_open(txn, txn->st->events, &cur);
    if (err != BSP_OK) return err;
    *sizes = malloc(max * sizeof **sizes);
    *count = 0;
    if (!*sizes) err = BSP_ENOMEM;
    MDB_val key, val;
    int rc = err == BSP_OK ? mdb_cursor_get(cur, &key, &val, MDB_LAST) : MDB_NOTFOUND;
    while (rc == MDB_SUCCESS && *count < max && all->len < EVENT_DICT_SAMPLE_BYTES &&
           err == BSP_OK) {
        if (!packer_is_packed(val.mv_data, val.mv_size) && val.mv_size > 0) {
            err = bsp_buf_append(all, val.mv_data, val.mv_size);
            if (err == BSP_OK) (*sizes)[(*count)++] = val.mv_size;
        }
        rc = mdb_cursor_get(cur, &key, &val, MDB_PREV);
    }
    mdb_cursor_close(cur);
    if (err == BSP_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = map_err(rc, "samples");
    return err;
}

bsp_err store_event_dict_train(bsp_txn *txn, size_t samples) {
    if (!txn->writable || samples == 0) return BSP_EINVAL;
    if (store_event_packing(txn->st) || txn->new_dict) return BSP_EEXISTS;
    bsp_buf all = {0};
    size_t *sizes = NULL;
    unsigned count = 0;
    bsp_err err = dict_samples(txn, samples, &all, &sizes, &count);
    void *dict = NULL;
    size_t len = 0;
    if (err == BSP_OK)
        err =
            count ? packer_train(all.data, sizes, count, EVENT_DICT_MAX, &dict, &len) : BSP_EINVAL;
    bsp_buf_free(&all);
    free(sizes);
    if (err == BSP_OK) err = store_meta_put(txn, META_EVENT_DICT, dict, len);
    if (err != BSP_OK) {
        free(dict);
        return err;
    }
    txn->new_dict = dict;
    txn->new_dict_len = len;
    return BSP_OK;
}

/* --- de-duplication ------------------------------------------------------ */

/* Key: the bucket (big-endian, so one time window's ids sit together and
 * inserts touch few pages) and 12 bytes of the id's XXH3-128. */
static void msgid_key(uint8_t key[16], uint32_t bucket, const char *msgid, size_t len) {
    uint8_t h[16];
    bsp_hash128(msgid, len, h);
    key[0] = (uint8_t)(bucket >> 24);
    key[1] = (uint8_t)(bucket >> 16);
    key[2] = (uint8_t)(bucket >> 8);
    key[3] = (uint8_t)bucket;
    memcpy(key + 4, h, 12);
}

bsp_err store_msgid_add(bsp_txn *txn, uint32_t bucket, const char *msgid, size_t len,
                        uint64_t seq) {
    if (!msgid && len) return BSP_EINVAL;
    uint8_t key[16], val[8];
    msgid_key(key, bucket, msgid, len);
    be64_put(val, seq);
    return db_put(txn, txn->st->msgids, val_of(key, 16), val_of(val, 8), MDB_NOOVERWRITE,
                  "msgid add");
}

bsp_err store_msgid_get(bsp_txn *txn, uint32_t bucket, const char *msgid, size_t len,
                        uint64_t *seq) {
    if (!msgid && len) return BSP_EINVAL;
    uint8_t key[16];
    msgid_key(key, bucket, msgid, len);
    MDB_val val;
    bsp_err err = db_get(txn, txn->st->msgids, val_of(key, 16), &val, "msgid get");
    if (err != BSP_OK) return err;
    if (val.mv_size != 8) return map_err(MDB_CORRUPTED, "msgid get");
    *seq = be64_get(val.mv_data);
    return BSP_OK;
}

/* --- products ------------------------------------------------------------ */

bsp_err store_product_get(bsp_txn *txn, const char *id, bsp_slice *out) {
    if (!id || !key_ok(txn->st, id, strlen(id))) return BSP_EINVAL;
    MDB_val val;
    bsp_err err = db_get(txn, txn->st->products, val_of(id, strlen(id)), &val, "product get");
    if (err == BSP_OK) *out = slice_of(val);
    return err;
}

bsp_err store_product_put(bsp_txn *txn, const char *id, const char *json, size_t len) {
    if (!id || !key_ok(txn->st, id, strlen(id))) return BSP_EINVAL;
    return db_put(txn, txn->st->products, val_of(id, strlen(id)), val_of(json, len), 0,
                  "product put");
}

bsp_err store_product_del(bsp_txn *txn, const char *id) {
    if (!id || !key_ok(txn->st, id, strlen(id))) return BSP_EINVAL;
    return db_del(txn, txn->st->products, val_of(id, strlen(id)), "product del");
}

bsp_err store_products_scan(bsp_txn *txn, store_product_fn fn, void *ctx) {
    MDB_cursor *cur;
    bsp_err err = cursor_open(txn, txn->st->products, &cur);
    if (err != BSP_OK) return err;
    MDB_val key, val;
    int rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    while (rc == MDB_SUCCESS && err == BSP_OK) {
        err = fn(ctx, slice_of(key), slice_of(val));
        if (err == BSP_OK) rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return err != BSP_OK ? err : walk_end(rc, "products scan");
}

/* --- configuration ------------------------------------------------------- */

#define CONFIG_KEY_MAX (2 * STORE_MAX_ID_LEN + 2)

/* kind | 0 | id; 0 when either part is empty, too long or holds a NUL. */
static size_t pair_key(const char *a, const char *b, uint8_t *out) {
    size_t la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0;
    if (la == 0 || la > STORE_MAX_ID_LEN || lb > STORE_MAX_ID_LEN) return 0;
    memcpy(out, a, la);
    out[la] = 0;
    if (b && lb) memcpy(out + la + 1, b, lb);
    return la + 1 + lb;
}

bsp_err store_config_get(bsp_txn *txn, const char *kind, const char *id, bsp_slice *out) {
    uint8_t key[CONFIG_KEY_MAX];
    size_t klen = pair_key(kind, id, key);
    if (klen == 0 || !id || !*id) return BSP_EINVAL;
    MDB_val val;
    bsp_err err = db_get(txn, txn->st->config, val_of(key, klen), &val, "config get");
    if (err == BSP_OK) *out = slice_of(val);
    return err;
}

bsp_err store_config_put(bsp_txn *txn, const char *kind, const char *id, const char *json,
                         size_t len) {
    uint8_t key[CONFIG_KEY_MAX];
    size_t klen = pair_key(kind, id, key);
    if (klen == 0 || !id || !*id) return BSP_EINVAL;
    return db_put(txn, txn->st->config, val_of(key, klen), val_of(json, len), 0, "config put");
}

bsp_err store_config_del(bsp_txn *txn, const char *kind, const char *id) {
    uint8_t key[CONFIG_KEY_MAX];
    size_t klen = pair_key(kind, id, key);
    if (klen == 0 || !id || !*id) return BSP_EINVAL;
    return db_del(txn, txn->st->config, val_of(key, klen), "config del");
}

bsp_err store_config_scan(bsp_txn *txn, const char *kind, store_config_fn fn, void *ctx) {
    uint8_t prefix[CONFIG_KEY_MAX];
    size_t plen = pair_key(kind, NULL, prefix);
    if (plen == 0) return BSP_EINVAL;
    MDB_cursor *cur;
    bsp_err err = cursor_open(txn, txn->st->config, &cur);
    if (err != BSP_OK) return err;
    MDB_val key = val_of(prefix, plen), val;
    int rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == MDB_SUCCESS && err == BSP_OK && key.mv_size >= plen &&
           memcmp(key.mv_data, prefix, plen) == 0) {
        bsp_slice id = {(const char *)key.mv_data + plen, key.mv_size - plen};
        err = fn(ctx, id, slice_of(val));
        if (err == BSP_OK) rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return err != BSP_OK ? err : walk_end(rc, "config scan");
}

/* --- segment members ----------------------------------------------------- */

static size_t member_key(const char *segment, uint64_t pid, uint8_t *out) {
    size_t plen = pair_key(segment, NULL, out);
    if (plen == 0) return 0;
    be64_put(out + plen, pid);
    return plen + 8;
}

bsp_err store_member_put(bsp_txn *txn, const char *segment, uint64_t pid) {
    uint8_t key[CONFIG_KEY_MAX + 8];
    size_t klen = member_key(segment, pid, key);
    if (klen == 0) return BSP_EINVAL;
    return db_put(txn, txn->st->members, val_of(key, klen), val_of(NULL, 0), 0, "member put");
}

bsp_err store_member_del(bsp_txn *txn, const char *segment, uint64_t pid) {
    uint8_t key[CONFIG_KEY_MAX + 8];
    size_t klen = member_key(segment, pid, key);
    if (klen == 0) return BSP_EINVAL;
    bsp_err err = db_del(txn, txn->st->members, val_of(key, klen), "member del");
    return err == BSP_ENOTFOUND ? BSP_OK : err;
}

bool store_member_has(bsp_txn *txn, const char *segment, uint64_t pid) {
    uint8_t key[CONFIG_KEY_MAX + 8];
    size_t klen = member_key(segment, pid, key);
    MDB_val val;
    return klen && db_get(txn, txn->st->members, val_of(key, klen), &val, "member get") == BSP_OK;
}

bsp_err store_members_scan(bsp_txn *txn, const char *segment, uint64_t after_pid,
                           store_member_fn fn, void *ctx) {
    uint8_t start[CONFIG_KEY_MAX + 8];
    size_t klen = member_key(segment, after_pid, start);
    if (klen == 0) return BSP_EINVAL;
    size_t plen = klen - 8;
    MDB_cursor *cur;
    bsp_err err = cursor_open(txn, txn->st->members, &cur);
    if (err != BSP_OK) return err;
    MDB_val key = val_of(start, klen), val;
    int rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == MDB_SUCCESS && err == BSP_OK && key.mv_size == klen &&
           memcmp(key.mv_data, start, plen) == 0) {
        uint64_t pid = be64_get((const uint8_t *)key.mv_data + plen);
        if (pid > after_pid) err = fn(ctx, pid);
        if (err == BSP_OK) rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return err != BSP_OK ? err : walk_end(rc, "members scan");
}

static bsp_err member_count_one(void *ctx, uint64_t pid) {
    (void)pid;
    (*(uint64_t *)ctx)++;
    return BSP_OK;
}

bsp_err store_members_count(bsp_txn *txn, const char *segment, uint64_t *count) {
    *count = 0;
    return store_members_scan(txn, segment, 0, member_count_one, count);
}

static bsp_err member_collect(void *ctx, uint64_t pid) {
    return u64_vec_add(ctx, pid);
}

bsp_err store_members_clear(bsp_txn *txn, const char *segment) {
    u64_vec pids = {0};
    bsp_err err = store_members_scan(txn, segment, 0, member_collect, &pids);
    for (size_t i = 0; err == BSP_OK && i < pids.n; i++)
        err = store_member_del(txn, segment, pids.v[i]);
    free(pids.v);
    return err;
}

/* --- statistics ---------------------------------------------------------- */

static bsp_err db_count(bsp_txn *txn, MDB_dbi dbi, uint64_t *out) {
    MDB_stat ms;
    int rc = mdb_stat(txn->mt, dbi, &ms);
    if (rc != MDB_SUCCESS) return map_err(rc, "stat");
    *out = ms.ms_entries;
    return BSP_OK;
}

bsp_err store_stats(bsp_txn *txn, bsp_store_stats *out) {
    bsp_store *st = txn->st;
    memset(out, 0, sizeof *out);
    bsp_err err = db_count(txn, st->profiles, &out->profiles);
    if (err == BSP_OK) err = db_count(txn, st->events, &out->events);
    if (err == BSP_OK) err = db_count(txn, st->products, &out->products);
    if (err == BSP_OK) err = db_count(txn, st->ids, &out->identities);
    if (err == BSP_OK) err = last_seq_load(txn);
    if (err != BSP_OK) return err;
    out->last_seq = txn->last_seq;
    MDB_envinfo info;
    MDB_stat est;
    int rc = mdb_env_info(st->env, &info);
    if (rc == MDB_SUCCESS) rc = mdb_env_stat(st->env, &est);
    if (rc != MDB_SUCCESS) return map_err(rc, "env stat");
    out->map_used_bytes = ((uint64_t)info.me_last_pgno + 1) * est.ms_psize;
    return BSP_OK;
}
