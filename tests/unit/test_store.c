/* test_store.c - the LMDB store against the contract of store.h: each call's
 * success and failure paths, persistence across reopen, snapshots and aborts.
 * Each test gets a fresh store in its own temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "store/store.h"

typedef struct fixture {
    char dir[256];
    bsp_store *st;
} fixture;

static const bsp_store_opts fast_opts = {.map_size = 0, .no_sync = true};

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir) {
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/bsp-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    bsp_err err = store_open(f->dir, &fast_opts, &f->st);
    if (err != BSP_OK) {
        fprintf(stderr, "store_open %s: %s\n", f->dir, bsp_err_name(err));
        remove_tree(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    store_close(f->st);
    remove_tree(f->dir);
    free(f);
    return 0;
}

static void reopen(fixture *f) {
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(store_open(f->dir, &fast_opts, &f->st), BSP_OK);
}

static bsp_txn *begin(fixture *f, bool write) {
    bsp_txn *txn = NULL;
    assert_int_equal(store_txn_begin(f->st, write, &txn), BSP_OK);
    assert_non_null(txn);
    return txn;
}

static void assert_slice(bsp_slice s, const char *want) {
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.data, want, s.len);
}

/* Collects the seqs a scan or timeline call reports; stops after stop_after. */
typedef struct seq_list {
    uint64_t seqs[64];
    size_t n;
    size_t stop_after;
} seq_list;

static bsp_err collect_seq(void *ctx, uint64_t seq, bsp_slice json) {
    seq_list *l = ctx;
    assert_true(json.len > 0);
    if (l->n < 64) l->seqs[l->n++] = seq;
    return l->stop_after && l->n >= l->stop_after ? BSP_EBUSY : BSP_OK;
}

static uint64_t append(bsp_txn *txn, uint64_t pid, const char *json) {
    uint64_t seq = 0;
    assert_int_equal(store_event_append(txn, pid, json, strlen(json), &seq), BSP_OK);
    return seq;
}

/* --- open, close, transactions ------------------------------------------- */

static void test_open_creates_nested_dirs(void **state) {
    fixture *f = *state;
    char dir[320];
    snprintf(dir, sizeof dir, "%s/a/b/c", f->dir);
    bsp_store *st = NULL;
    assert_int_equal(store_open(dir, NULL, &st), BSP_OK);
    assert_non_null(st);
    store_close(st);
    assert_int_equal(access(dir, F_OK), 0);
    store_close(NULL); /* a no-op */
}

/* One process at a time: a second open of the same store is refused until
 * the first closes it. */
static void test_second_open_refused(void **state) {
    fixture *f = *state;
    bsp_store *other = NULL;
    assert_int_equal(store_open(f->dir, &fast_opts, &other), BSP_EBUSY);
    assert_null(other);
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(store_open(f->dir, &fast_opts, &other), BSP_OK);
    f->st = other;
}

static void test_open_fails_on_bad_dir(void **state) {
    fixture *f = *state;
    char file[320], under[400];
    snprintf(file, sizeof file, "%s/plain-file", f->dir);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    bsp_store *st = (bsp_store *)1;
    assert_int_not_equal(store_open(file, NULL, &st), BSP_OK);
    assert_null(st);
    snprintf(under, sizeof under, "%s/sub", file);
    assert_int_equal(store_open(under, NULL, &st), BSP_EIO);
    assert_null(st);
    assert_int_equal(store_open("", NULL, &st), BSP_EINVAL);
}

static void test_abort_discards_writes(void **state) {
    fixture *f = *state;
    bsp_txn *txn = begin(f, true);
    assert_int_equal(store_meta_put(txn, "k", "v", 1), BSP_OK);
    assert_int_equal(store_profile_put(txn, 7, "{}", 2), BSP_OK);
    append(txn, 7, "{\"e\":1}");
    store_txn_abort(txn);
    store_txn_abort(NULL); /* a no-op */

    txn = begin(f, false);
    bsp_slice s;
    assert_int_equal(store_meta_get(txn, "k", &s), BSP_ENOTFOUND);
    assert_int_equal(store_profile_get(txn, 7, &s), BSP_ENOTFOUND);
    assert_int_equal(store_event_get(txn, 1, &s), BSP_ENOTFOUND);
    store_txn_abort(txn);
}

static void test_read_txn_sees_snapshot(void **state) {
    fixture *f = *state;
    bsp_txn *w = begin(f, true);
    assert_int_equal(store_profile_put(w, 1, "old", 3), BSP_OK);
    assert_int_equal(store_txn_commit(w), BSP_OK);

    bsp_txn *r = begin(f, false);
    bsp_slice s;
    assert_int_equal(store_profile_get(r, 1, &s), BSP_OK);
    assert_slice(s, "old");

    w = begin(f, true);
    assert_int_equal(store_profile_put(w, 1, "new", 3), BSP_OK);
    assert_int_equal(store_profile_put(w, 2, "two", 3), BSP_OK);
    assert_int_equal(store_txn_commit(w), BSP_OK);

    assert_int_equal(store_profile_get(r, 1, &s), BSP_OK);
    assert_slice(s, "old");
    assert_int_equal(store_profile_get(r, 2, &s), BSP_ENOTFOUND);
    store_txn_abort(r);

    r = begin(f, false);
    assert_int_equal(store_profile_get(r, 1, &s), BSP_OK);
    assert_slice(s, "new");
    store_txn_abort(r);
}

static void *abort_in_thread(void *arg) {
    store_txn_abort(arg);
    return NULL;
}

static void test_read_txn_ends_on_other_thread(void **state) {
    fixture *f = *state;
    bsp_txn *r = begin(f, false);
    bsp_slice s;
    assert_int_equal(store_meta_get(r, "nothing", &s), BSP_ENOTFOUND);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, abort_in_thread, r), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    bsp_txn *w = begin(f, true);
    assert_int_equal(store_meta_put(w, "x", "1", 1), BSP_OK);
    assert_int_equal(store_txn_commit(w), BSP_OK);
}

static void test_write_in_read_txn_rejected(void **state) {
    fixture *f = *state;
    bsp_txn *r = begin(f, false);
    uint64_t pid, seq;
    assert_int_equal(store_meta_put(r, "k", "v", 1), BSP_EINVAL);
    assert_int_equal(store_profile_put(r, 1, "{}", 2), BSP_EINVAL);
    assert_int_equal(store_id_put(r, 'u', "alice", 1), BSP_EINVAL);
    assert_int_equal(store_pid_next(r, &pid), BSP_EINVAL);
    assert_int_equal(store_event_append(r, 1, "{}", 2, &seq), BSP_EINVAL);
    assert_int_equal(store_product_put(r, "p", "{}", 2), BSP_EINVAL);
    assert_int_equal(store_msgid_add(r, 7, "m", 1, 1), BSP_EINVAL);
    store_txn_abort(r);
}

static void test_map_full_is_store_error(void **state) {
    fixture *f = *state;
    char dir[320];
    snprintf(dir, sizeof dir, "%s/small", f->dir);
    bsp_store_opts opts = {.map_size = 1 << 20, .no_sync = true};
    bsp_store *st = NULL;
    assert_int_equal(store_open(dir, &opts, &st), BSP_OK);
    size_t len = 2 << 20;
    char *big = malloc(len);
    assert_non_null(big);
    memset(big, 'x', len);
    bsp_txn *txn = NULL;
    assert_int_equal(store_txn_begin(st, true, &txn), BSP_OK);
    assert_int_equal(store_profile_put(txn, 1, big, len), BSP_ESTORE);
    assert_int_equal(store_txn_commit(txn), BSP_ESTORE); /* and it is freed */
    free(big);
    assert_int_equal(store_txn_begin(st, false, &txn), BSP_OK);
    bsp_slice s;
    assert_int_equal(store_profile_get(txn, 1, &s), BSP_ENOTFOUND);
    store_txn_abort(txn);
    store_close(st);
}

/* --- meta and counters ---------------------------------------------------- */

static void test_meta_round_trip(void **state) {
    fixture *f = *state;
    bsp_txn *txn = begin(f, true);
    bsp_slice s;
    assert_int_equal(store_meta_get(txn, "write_key", &s), BSP_ENOTFOUND);
    assert_int_equal(store_meta_put(txn, "write_key", "abc\0def", 7), BSP_OK);
    assert_int_equal(store_meta_get(txn, "write_key", &s), BSP_OK);
    assert_int_equal(s.len, 7);
    assert_memory_equal(s.data, "abc\0def", 7);
    assert_int_equal(store_meta_put(txn, "empty", "", 0), BSP_OK);
    assert_int_equal(store_meta_put(txn, "", "v", 1), BSP_EINVAL);
    assert_int_equal(store_meta_get(txn, "", &s), BSP_EINVAL);
    assert_int_equal(store_meta_get(txn, NULL, &s), BSP_EINVAL);
    assert_int_equal(store_txn_commit(txn), BSP_OK);

    reopen(f);
    txn = begin(f, false);
    assert_int_equal(store_meta_get(txn, "write_key", &s), BSP_OK);
    assert_memory_equal(s.data, "abc\0def", 7);
    assert_int_equal(store_meta_get(txn, "empty", &s), BSP_OK);
    assert_int_equal(s.len, 0);
    store_txn_abort(txn);
}

static void test_pid_counter_persists(void **state) {
    fixture *f = *state;
    bsp_txn *txn = begin(f, true);
    uint64_t pid;
    for (uint64_t want = 1; want <= 3; want++) {
        assert_int_equal(store_pid_next(txn, &pid), BSP_OK);
        assert_int_equal(pid, want);
    }
    assert_int_equal(store_txn_commit(txn), BSP_OK);

    txn = begin(f, true); /* an aborted allocation is not persisted */
    assert_int_equal(store_pid_next(txn, &pid), BSP_OK);
    assert_int_equal(pid, 4);
    store_txn_abort(txn);

    reopen(f);
    txn = begin(f, true);
    assert_int_equal(store_pid_next(txn, &pid), BSP_OK);
    assert_int_equal(pid, 4);
    assert_int_equal(store_txn_commit(txn), BSP_OK);

    txn = begin(f, false);
    bsp_slice s;
    assert_int_equal(store_meta_get(txn, "next_pid", &s), BSP_OK);
    assert_int_equal(s.len, 8);
    store_txn_abort(txn);
}

/* --- identities ------------------------------------------------------------ */

static void test_id_put_get_del(void **state) {
    fixture *f = *state;
    bsp_txn *txn = begin(f, true);
    uint64_t pid = 0;
    assert_int_equal(store_id_get(txn, 'u', "alice", &pid), BSP_ENOTFOUND);
    assert_int_equal(store_id_put(txn, 'u', "alice", 42), BSP_OK);
    assert_int_equal(store_id_put(txn, 'a', "alice", 7), BSP_OK);
    assert_int_equal(store_id_get(txn, 'u', "alice", &pid), BSP_OK);
    assert_int_equal(pid, 42);
    assert_int_equal(store_id_get(txn, 'a', "alice", &pid), BSP_OK);
    assert_int_equal(pid, 7);
    assert_int_equal(store_id_put(txn, 'u', "alice", 43), BSP_OK); /* overwrite */
    assert_int_equal(store_txn_commit(txn), BSP_OK);

    txn = begin(f, true);
    assert_int_equal(store_id_get(txn, 'u', "alice", &pid), BSP_OK);
    assert_int_equal(pid, 43);
    assert_int_equal(store_id_del(txn, 'u', "alice"), BSP_OK);
    assert_int_equal(store_id_get(txn, 'u', "alice", &pid), BSP_ENOTFOUND);
    assert_int_equal(store_id_del(txn, 'u', "alice"), BSP_ENOTFOUND);
    assert_int_equal(store_id_get(txn, 'a', "alice", &pid), BSP_OK);
    assert_int_equal(store_txn_commit(txn), BSP_OK);
}

static void test_id_invalid(void **state) {
    fixture *f = *state;
    char id[300];
    memset(id, 'x', sizeof id);
    id[256] = '\0'; /* 256 bytes: too long */
    bsp_txn *txn = begin(f, true);
    uint64_t pid;
    assert_int_equal(store_id_put(txn, 'u', id, 1), BSP_EINVAL);
    assert_int_equal(store_id_get(txn, 'u', id, &pid), BSP_EINVAL);
    assert_int_equal(store_id_del(txn, 'u', id), BSP_EINVAL);
    id[255] = '\0'; /* 255 bytes: the longest allowed */
    assert_int_equal(store_id_put(txn, 'u', id, 1), BSP_OK);
    assert_int_equal(store_id_get(txn, 'u', id, &pid), BSP_OK);
    assert_int_equal(pid, 1);
    assert_int_equal(store_id_put(txn, 'x', "bob", 1), BSP_EINVAL);
    assert_int_equal(store_id_get(txn, 'x', "bob", &pid), BSP_EINVAL);
    assert_int_equal(store_id_put(txn, 'u', "", 1), BSP_EINVAL);
    assert_int_equal(store_id_put(txn, 'u', NULL, 1), BSP_EINVAL);
    assert_int_equal(store_txn_commit(txn), BSP_OK);
}

/* --- profiles ---------------------------------------------------------------- */

typedef struct pid_list {
    uint64_t pids[16];
    size_t n;
    size_t stop_after;
} pid_list;

static bsp_err collect_pid(void *ctx, uint64_t pid, bsp_slice json) {
    pid_list *l = ctx;
    (void)json;
    if (l->n < 16) l->pids[l->n++] = pid;
    return l->stop_after && l->n >= l->stop_after ? BSP_EBUSY : BSP_OK;
}

static void test_profile_put_get_del_scan(void **state) {
    fixture *f = *state;
    bsp_txn *txn = begin(f, true);
    bsp_slice s;
    assert_int_equal(store_profile_get(txn, 1, &s), BSP_ENOTFOUND);
    assert_int_equal(store_profile_del(txn, 1), BSP_ENOTFOUND);
    /* 256 sorts after 2 only if keys are big-endian */
    assert_int_equal(store_profile_put(txn, 256, "{\"p\":256}", 9), BSP_OK);
    assert_int_equal(store_profile_put(txn, 2, "{\"p\":2}", 7), BSP_OK);
    assert_int_equal(store_profile_put(txn, 1, "{\"p\":1}", 7), BSP_OK);
    assert_int_equal(store_profile_get(txn, 2, &s), BSP_OK);
    assert_slice(s, "{\"p\":2}");
    assert_int_equal(store_txn_commit(txn), BSP_OK);

    txn = begin(f, false);
    pid_list all = {0};
    assert_int_equal(store_profiles_scan(txn, collect_pid, &all), BSP_OK);
    assert_int_equal(all.n, 3);
    assert_int_equal(all.pids[0], 1);
    assert_int_equal(all.pids[1], 2);
    assert_int_equal(all.pids[2], 256);
    pid_list two = {.stop_after = 2};
    assert_int_equal(store_profiles_scan(txn, collect_pid, &two), BSP_EBUSY);
    assert_int_equal(two.n, 2);
    store_txn_abort(txn);

    txn = begin(f, true);
    assert_int_equal(store_profile_del(txn, 2), BSP_OK);
    assert_int_equal(store_profile_get(txn, 2, &s), BSP_ENOTFOUND);
    assert_int_equal(store_txn_commit(txn), BSP_OK);
}

static void test_profiles_scan_empty(void **state) {
    fixture *f = *state;
    bsp_txn *txn = begin(f, false);
    pid_list all = {0};
    assert_int_equal(store_profiles_scan(txn, collect_pid, &all), BSP_OK);
    assert_int_equal(all.n, 0);
    store_txn_abort(txn);
}

/* --- events ---------------------------------------------------------------- */

static void test_event_append_and_get(void **state) {
    fixture *f = *state;
    bsp_txn *txn = begin(f, true);
    bsp_slice s;
    assert_int_equal(store_event_get(txn, 1, &s), BSP_ENOTFOUND);
    assert_int_equal(append(txn, 1, "{\"n\":1}"), 1);
    assert_int_equal(append(txn, 2, "{\"n\":2}"), 2);
    assert_int_equal(store_event_append(txn, 1, "{\"n\":3}", 7, NULL), BSP_OK);
    assert_int_equal(store_event_get(txn, 2, &s), BSP_OK);
    assert_slice(s, "{\"n\":2}");
    assert_int_equal(store_txn_commit(txn), BSP_OK);

    reopen(f);
    txn = begin(f, true);
    assert_int_equal(append(txn, 1, "{\"n\":4}"), 4);
    assert_int_equal(store_event_get(txn, 3, &s), BSP_OK);
    assert_slice(s, "{\"n\":3}");
    assert_int_equal(store_event_get(txn, 5, &s), BSP_ENOTFOUND);
    assert_int_equal(store_txn_commit(txn), BSP_OK);
}

static void test_seq_never_reused_after_delete(void **state) {
    fixture *f = *state;
    bsp_txn *txn = begin(f, true);
    append(txn, 1, "{\"a\":1}");
    append(txn, 2, "{\"b\":1}");
    append(txn, 2, "{\"b\":2}");
    assert_int_equal(store_txn_commit(txn), BSP_OK);

    txn = begin(f, true);
    uint64_t deleted = 0;
    assert_int_equal(store_events_delete(txn, 2, &deleted), BSP_OK);
    assert_int_equal(deleted, 2);
    assert_int_equal(store_txn_commit(txn), BSP_OK);

    reopen(f);
    txn = begin(f, true);
    assert_int_equal(append(txn, 1, "{\"a\":2}"), 4);
    assert_int_equal(store_txn_commit(txn), BSP_OK);
}

/* The seqs pid's timeline lists below before (UINT64_MAX: all), newest
 * first, limit at a time, all pages joined; checks each page's order. */
static size_t timeline_of(bsp_txn *txn, uint64_t pid, uint64_t before, size_t limit,
                          uint64_t *out) {
    size_t n = 0;
    for (;;) {
        seq_list page = {0};
        assert_int_equal(store_profile_events(txn, pid, before, limit, collect_seq, &page), BSP_OK);
        assert_true(page.n <= limit);
        for (size_t i = 0; i < page.n; i++) {
            assert_true(page.seqs[i] < before);
            before = page.seqs[i];
            out[n++] = page.seqs[i];
        }
        if (page.n < limit) return n;
    }
}

/* Runs: one key for many events of a profile, read newest first, paged
 * inside a run and across runs, with neighbours on both sides. */
static void test_timeline_runs(void **state) {
    fixture *f = *state;
    bsp_txn *txn = begin(f, true);
    uint64_t s[12];
    for (int i = 0; i < 12; i++)
        s[i] = append(txn, 0, "{\"e\":1}");
    uint64_t first[] = {s[0], s[2], s[4]}, second[] = {s[6], s[7], s[9]};
    assert_int_equal(store_event_links(txn, 10, first, 3), BSP_OK);
    assert_int_equal(store_event_links(txn, 10, second, 3), BSP_OK);
    assert_int_equal(store_event_link(txn, 9, s[1]), BSP_OK);
    uint64_t later[] = {s[3], s[11]};
    assert_int_equal(store_event_links(txn, 11, later, 2), BSP_OK);
    uint64_t bad[] = {s[5], s[5]};
    assert_int_equal(store_event_links(txn, 12, bad, 2), BSP_EINVAL);
    assert_int_equal(store_event_links(txn, 12, bad, 0), BSP_OK);
    assert_int_equal(store_txn_commit(txn), BSP_OK);

    txn = begin(f, false);
    uint64_t want[] = {s[9], s[7], s[6], s[4], s[2], s[0]}, got[16];
    for (size_t limit = 1; limit <= 7; limit++) {
        assert_int_equal(timeline_of(txn, 10, UINT64_MAX, limit, got), 6);
        assert_memory_equal(got, want, sizeof want);
    }
    /* before_seq inside a run, between runs, at a run's newest */
    assert_int_equal(timeline_of(txn, 10, s[7], 10, got), 4);
    assert_int_equal(got[0], s[6]);
    assert_int_equal(timeline_of(txn, 10, s[5], 10, got), 3);
    assert_int_equal(got[0], s[4]);
    assert_int_equal(timeline_of(txn, 10, s[9], 2, got), 5);
    assert_int_equal(got[0], s[7]);
    assert_int_equal(timeline_of(txn, 10, s[0], 10, got), 0);
    assert_int_equal(timeline_of(txn, 11, UINT64_MAX, 1, got), 2);
    assert_int_equal(got[0], s[11]);
    assert_int_equal(timeline_of(txn, 9, UINT64_MAX, 5, got), 1);
    store_txn_abort(txn);
}

/* A merge whose runs interleave with the other profile's: one timeline,
 * newest first, nothing lost or doubled; runs outside the overlap stay. */
static void test_timeline_rekey_interleaved_runs(void **state) {
    fixture *f = *state;
    bsp_txn *txn = begin(f, true);
    uint64_t s[16];
    for (int i = 0; i < 16; i++)
        s[i] = append(txn, 0, "{\"e\":1}");
    uint64_t a1[] = {s[0], s[1]}, a2[] = {s[2], s[6]}, a3[] = {s[10], s[12]}, a4[] = {s[14]};
    uint64_t b1[] = {s[4], s[8]}, b2[] = {s[9], s[11]};
    assert_int_equal(store_event_links(txn, 20, a1, 2), BSP_OK);
    assert_int_equal(store_event_links(txn, 20, a2, 2), BSP_OK);
    assert_int_equal(store_event_links(txn, 20, a3, 2), BSP_OK);
    assert_int_equal(store_event_links(txn, 20, a4, 1), BSP_OK);
    assert_int_equal(store_event_links(txn, 21, b1, 2), BSP_OK);
    assert_int_equal(store_event_links(txn, 21, b2, 2), BSP_OK);
    assert_int_equal(store_events_rekey(txn, 21, 20), BSP_OK);
    assert_int_equal(store_events_rekey(txn, 22, 20), BSP_OK); /* nothing to move */
    assert_int_equal(store_txn_commit(txn), BSP_OK);

    txn = begin(f, false);
    uint64_t want[] = {s[14], s[12], s[11], s[10], s[9], s[8], s[6], s[4], s[2], s[1], s[0]};
    uint64_t got[32];
    for (size_t limit = 1; limit <= 4; limit++) {
        assert_int_equal(timeline_of(txn, 20, UINT64_MAX, limit, got), 11);
        assert_memory_equal(got, want, sizeof want);
    }
    assert_int_equal(timeline_of(txn, 21, UINT64_MAX, 10, got), 0);
    store_txn_abort(txn);

    /* Erasure deletes every event of every run. */
    txn = begin(f, true);
    uint64_t deleted = 0;
    assert_int_equal(store_events_delete(txn, 20, &deleted), BSP_OK);
    assert_int_equal(deleted, 11);
    bsp_slice json;
    assert_int_equal(store_event_get(txn, s[9], &json), BSP_ENOTFOUND);
    assert_int_equal(store_event_get(txn, s[3], &json), BSP_OK); /* in no timeline */
    assert_int_equal(timeline_of(txn, 20, UINT64_MAX, 10, got), 0);
    assert_int_equal(store_txn_commit(txn), BSP_OK);
}

static void test_timeline_newest_first(void **state) {
    fixture *f = *state;
    bsp_txn *txn = begin(f, true);
    uint64_t mine[5];
    for (int i = 0; i < 5; i++) {
        mine[i] = append(txn, 10, "{\"mine\":1}");
        append(txn, 9, "{\"before\":1}"); /* neighbours on both sides */
        append(txn, 11, "{\"after\":1}");
    }
    assert_int_equal(store_txn_commit(txn), BSP_OK);

    txn = begin(f, false);
    seq_list all = {0};
    assert_int_equal(store_profile_events(txn, 10, UINT64_MAX, 100, collect_seq, &all), BSP_OK);
    assert_int_equal(all.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(all.seqs[i], mine[4 - i]);

    /* paging: two at a time, each page strictly below the last seq seen */
    seq_list page = {0};
    assert_int_equal(store_profile_events(txn, 10, UINT64_MAX, 2, collect_seq, &page), BSP_OK);
    assert_int_equal(page.n, 2);
    assert_int_equal(page.seqs[1], mine[3]);
    seq_list next = {0};
    assert_int_equal(store_profile_events(txn, 10, page.seqs[1], 2, collect_seq, &next), BSP_OK);
    assert_int_equal(next.n, 2);
    assert_int_equal(next.seqs[0], mine[2]);
    assert_int_equal(next.seqs[1], mine[1]);

    /* before_seq between entries, below all, limit 0 */
    seq_list mid = {0};
    assert_int_equal(store_profile_events(txn, 10, mine[2] + 1, 10, collect_seq, &mid), BSP_OK);
    assert_int_equal(mid.n, 3);
    assert_int_equal(mid.seqs[0], mine[2]);
    seq_list none = {0};
    assert_int_equal(store_profile_events(txn, 10, mine[0], 10, collect_seq, &none), BSP_OK);
    assert_int_equal(none.n, 0);
    assert_int_equal(store_profile_events(txn, 10, UINT64_MAX, 0, collect_seq, &none), BSP_OK);
    assert_int_equal(store_profile_events(txn, 99, UINT64_MAX, 10, collect_seq, &none), BSP_OK);
    assert_int_equal(store_profile_events(txn, 0, UINT64_MAX, 10, collect_seq, &none), BSP_OK);
    assert_int_equal(none.n, 0);

    /* the last profile in the index, reached from past the end */
    seq_list last = {0};
    assert_int_equal(store_profile_events(txn, 11, UINT64_MAX, 10, collect_seq, &last), BSP_OK);
    assert_int_equal(last.n, 5);

    /* the callback stops the walk */
    seq_list stop = {.stop_after = 1};
    assert_int_equal(store_profile_events(txn, 10, UINT64_MAX, 10, collect_seq, &stop), BSP_EBUSY);
    assert_int_equal(stop.n, 1);
    store_txn_abort(txn);
}

static void test_events_rekey(void **state) {
    fixture *f = *state;
    bsp_txn *txn = begin(f, true);
    uint64_t a1 = append(txn, 5, "{\"anon\":1}");
    uint64_t b1 = append(txn, 3, "{\"user\":1}");
    uint64_t a2 = append(txn, 5, "{\"anon\":2}");
    uint64_t c1 = append(txn, 4, "{\"other\":1}");
    assert_int_equal(store_events_rekey(txn, 5, 3), BSP_OK);
    assert_int_equal(store_events_rekey(txn, 3, 3), BSP_OK);  /* a no-op */
    assert_int_equal(store_events_rekey(txn, 77, 3), BSP_OK); /* nothing to move */
    assert_int_equal(store_txn_commit(txn), BSP_OK);

    txn = begin(f, false);
    seq_list to = {0}, from = {0}, other = {0};
    assert_int_equal(store_profile_events(txn, 3, UINT64_MAX, 10, collect_seq, &to), BSP_OK);
    assert_int_equal(to.n, 3);
    assert_int_equal(to.seqs[0], a2);
    assert_int_equal(to.seqs[1], b1);
    assert_int_equal(to.seqs[2], a1);
    assert_int_equal(store_profile_events(txn, 5, UINT64_MAX, 10, collect_seq, &from), BSP_OK);
    assert_int_equal(from.n, 0);
    assert_int_equal(store_profile_events(txn, 4, UINT64_MAX, 10, collect_seq, &other), BSP_OK);
    assert_int_equal(other.n, 1);
    assert_int_equal(other.seqs[0], c1);
    store_txn_abort(txn);

    txn = begin(f, true); /* towards a higher pid too */
    assert_int_equal(store_events_rekey(txn, 3, 9), BSP_OK);
    seq_list nine = {0};
    assert_int_equal(store_profile_events(txn, 9, UINT64_MAX, 10, collect_seq, &nine), BSP_OK);
    assert_int_equal(nine.n, 3);
    assert_int_equal(store_txn_commit(txn), BSP_OK);
}

static void test_events_delete(void **state) {
    fixture *f = *state;
    bsp_txn *txn = begin(f, true);
    uint64_t gone1 = append(txn, 8, "{\"x\":1}");
    uint64_t kept = append(txn, 9, "{\"y\":1}");
    uint64_t gone2 = append(txn, 8, "{\"x\":2}");
    assert_int_equal(store_txn_commit(txn), BSP_OK);

    txn = begin(f, true);
    uint64_t deleted = 99;
    assert_int_equal(store_events_delete(txn, 8, &deleted), BSP_OK);
    assert_int_equal(deleted, 2);
    assert_int_equal(store_events_delete(txn, 8, NULL), BSP_OK);
    assert_int_equal(store_events_delete(txn, 8, &deleted), BSP_OK);
    assert_int_equal(deleted, 0);
    assert_int_equal(store_txn_commit(txn), BSP_OK);

    txn = begin(f, false);
    bsp_slice s;
    assert_int_equal(store_event_get(txn, gone1, &s), BSP_ENOTFOUND);
    assert_int_equal(store_event_get(txn, gone2, &s), BSP_ENOTFOUND);
    assert_int_equal(store_event_get(txn, kept, &s), BSP_OK);
    seq_list l = {0};
    assert_int_equal(store_profile_events(txn, 8, UINT64_MAX, 10, collect_seq, &l), BSP_OK);
    assert_int_equal(l.n, 0);
    assert_int_equal(store_profile_events(txn, 9, UINT64_MAX, 10, collect_seq, &l), BSP_OK);
    assert_int_equal(l.n, 1);
    store_txn_abort(txn);
}

static void test_events_scan(void **state) {
    fixture *f = *state;
    bsp_txn *txn = begin(f, true);
    for (int i = 0; i < 300; i++)
        append(txn, (uint64_t)(i % 7), "{\"i\":1}");
    assert_int_equal(store_txn_commit(txn), BSP_OK);

    txn = begin(f, false);
    seq_list from = {0};
    assert_int_equal(store_events_scan(txn, 255, collect_seq, &from), BSP_OK);
    assert_int_equal(from.n, 46); /* 255..300, across the one-byte boundary */
    for (size_t i = 0; i < from.n; i++)
        assert_int_equal(from.seqs[i], 255 + i);
    seq_list stop = {.stop_after = 3};
    assert_int_equal(store_events_scan(txn, 0, collect_seq, &stop), BSP_EBUSY);
    assert_int_equal(stop.n, 3);
    assert_int_equal(stop.seqs[0], 1);
    seq_list past = {0};
    assert_int_equal(store_events_scan(txn, 301, collect_seq, &past), BSP_OK);
    assert_int_equal(past.n, 0);
    store_txn_abort(txn);
}

/* --- de-duplication ---------------------------------------------------------- */

static void test_msgid_duplicate(void **state) {
    fixture *f = *state;
    bsp_txn *txn = begin(f, true);
    uint64_t seq = 0;
    assert_int_equal(store_msgid_get(txn, 7, "m-1", 3, &seq), BSP_ENOTFOUND);
    assert_int_equal(store_msgid_add(txn, 7, "m-1", 3, 11), BSP_OK);
    assert_int_equal(store_msgid_add(txn, 7, "m-1", 3, 12), BSP_EEXISTS);
    assert_int_equal(store_msgid_get(txn, 7, "m-1", 3, &seq), BSP_OK);
    assert_int_equal(seq, 11);
    /* a duplicate does not spoil the transaction */
    assert_int_equal(store_msgid_add(txn, 7, "m-2", 3, 13), BSP_OK);
    assert_int_equal(store_msgid_add(txn, 7, NULL, 3, 1), BSP_EINVAL);
    assert_int_equal(store_txn_commit(txn), BSP_OK);

    reopen(f);
    txn = begin(f, true);
    assert_int_equal(store_msgid_add(txn, 7, "m-2", 3, 14), BSP_EEXISTS);
    assert_int_equal(store_msgid_get(txn, 7, "m-2", 3, &seq), BSP_OK);
    assert_int_equal(seq, 13);
    /* The number the next append gives is known before it. */
    uint64_t next = 0;
    assert_int_equal(store_event_next_seq(txn, &next), BSP_OK);
    assert_int_equal(store_event_append(txn, 0, "{}", 2, &seq), BSP_OK);
    assert_int_equal(seq, next);
    assert_int_equal(store_event_next_seq(txn, &next), BSP_OK);
    assert_int_equal(next, seq + 1);
    assert_int_equal(store_msgid_get(txn, 7, "m-2x", 4, &seq), BSP_ENOTFOUND);
    assert_int_equal(store_txn_commit(txn), BSP_OK);
}

/* --- products -------------------------------------------------------------- */

typedef struct product_list {
    char ids[8][16];
    size_t n;
    size_t stop_after;
} product_list;

static bsp_err collect_product(void *ctx, bsp_slice id, bsp_slice json) {
    product_list *l = ctx;
    assert_true(json.len > 0);
    assert_true(id.len < 16);
    if (l->n < 8) {
        memcpy(l->ids[l->n], id.data, id.len);
        l->ids[l->n++][id.len] = '\0';
    }
    return l->stop_after && l->n >= l->stop_after ? BSP_EBUSY : BSP_OK;
}

static void test_products(void **state) {
    fixture *f = *state;
    bsp_txn *txn = begin(f, true);
    bsp_slice s;
    assert_int_equal(store_product_get(txn, "sku-2", &s), BSP_ENOTFOUND);
    assert_int_equal(store_product_del(txn, "sku-2"), BSP_ENOTFOUND);
    assert_int_equal(store_product_put(txn, "sku-2", "{\"n\":2}", 7), BSP_OK);
    assert_int_equal(store_product_put(txn, "sku-1", "{\"n\":1}", 7), BSP_OK);
    assert_int_equal(store_product_put(txn, "sku-3", "{\"n\":3}", 7), BSP_OK);
    assert_int_equal(store_product_put(txn, "", "{}", 2), BSP_EINVAL);
    assert_int_equal(store_product_get(txn, NULL, &s), BSP_EINVAL);
    char longid[600];
    memset(longid, 'p', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_int_equal(store_product_put(txn, longid, "{}", 2), BSP_EINVAL);
    assert_int_equal(store_txn_commit(txn), BSP_OK);

    txn = begin(f, true);
    assert_int_equal(store_product_get(txn, "sku-2", &s), BSP_OK);
    assert_slice(s, "{\"n\":2}");
    assert_int_equal(store_product_put(txn, "sku-2", "{\"n\":22}", 8), BSP_OK);
    assert_int_equal(store_product_get(txn, "sku-2", &s), BSP_OK);
    assert_slice(s, "{\"n\":22}");
    assert_int_equal(store_product_del(txn, "sku-3"), BSP_OK);
    assert_int_equal(store_product_get(txn, "sku-3", &s), BSP_ENOTFOUND);
    product_list all = {0};
    assert_int_equal(store_products_scan(txn, collect_product, &all), BSP_OK);
    assert_int_equal(all.n, 2);
    assert_string_equal(all.ids[0], "sku-1");
    assert_string_equal(all.ids[1], "sku-2");
    product_list one = {.stop_after = 1};
    assert_int_equal(store_products_scan(txn, collect_product, &one), BSP_EBUSY);
    assert_int_equal(one.n, 1);
    assert_int_equal(store_txn_commit(txn), BSP_OK);
}

/* --- statistics -------------------------------------------------------------- */

static void test_stats(void **state) {
    fixture *f = *state;
    bsp_txn *txn = begin(f, false);
    bsp_store_stats st;
    assert_int_equal(store_stats(txn, &st), BSP_OK);
    assert_int_equal(st.profiles + st.events + st.products + st.identities + st.last_seq, 0);
    assert_true(st.map_used_bytes > 0);
    store_txn_abort(txn);

    txn = begin(f, true);
    assert_int_equal(store_profile_put(txn, 1, "{}", 2), BSP_OK);
    assert_int_equal(store_profile_put(txn, 2, "{}", 2), BSP_OK);
    assert_int_equal(store_id_put(txn, 'u', "u1", 1), BSP_OK);
    assert_int_equal(store_id_put(txn, 'a', "a1", 1), BSP_OK);
    assert_int_equal(store_id_put(txn, 'a', "a2", 2), BSP_OK);
    assert_int_equal(store_product_put(txn, "p", "{}", 2), BSP_OK);
    for (int i = 0; i < 4; i++)
        append(txn, 1, "{}");
    assert_int_equal(store_txn_commit(txn), BSP_OK);

    txn = begin(f, true);
    assert_int_equal(store_events_delete(txn, 1, NULL), BSP_OK);
    append(txn, 2, "{}");
    assert_int_equal(store_stats(txn, &st), BSP_OK); /* sees its own writes */
    assert_int_equal(st.events, 1);
    assert_int_equal(st.last_seq, 5);
    assert_int_equal(store_txn_commit(txn), BSP_OK);

    txn = begin(f, false);
    assert_int_equal(store_stats(txn, &st), BSP_OK);
    assert_int_equal(st.profiles, 2);
    assert_int_equal(st.events, 1);
    assert_int_equal(st.products, 1);
    assert_int_equal(st.identities, 3);
    assert_int_equal(st.last_seq, 5);
    assert_true(st.map_used_bytes >= 4096);
    store_txn_abort(txn);
}

/* --- packed events ------------------------------------------------------------ */

/* A shop-like event: the same keys and user agent, ids and paths that vary. */
static void shop_event(char *out, size_t cap, int i) {
    snprintf(out, cap,
             "{\"type\":\"track\",\"event\":\"Product Viewed\",\"messageId\":\"m-%d\","
             "\"anonymousId\":\"anon-%08x\",\"timestamp\":\"2024-01-01T00:%02d:%02d.000Z\","
             "\"properties\":{\"product_id\":\"sku-%05d\",\"price\":%d.99,"
             "\"category\":\"Home > Decor\"},\"context\":{\"userAgent\":\"Mozilla/5.0 "
             "(X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0\","
             "\"page\":{\"path\":\"/p/sku-%05d\"}}}",
             i, (unsigned)(i * 2654435761u), i / 60 % 60, i % 60, i % 997, i % 90, i % 997);
}

/* Appends n shop events (pid i % 5) and commits. */
static void append_shop_events(fixture *f, int from, int n) {
    bsp_txn *txn = begin(f, true);
    char json[512];
    for (int i = from; i < from + n; i++) {
        shop_event(json, sizeof json, i);
        append(txn, (uint64_t)(i % 5) + 1, json);
    }
    assert_int_equal(store_txn_commit(txn), BSP_OK);
}

/* Trains the store's dictionary on its events and commits it. */
static void train_dictionary(fixture *f) {
    bsp_txn *txn = begin(f, true);
    assert_int_equal(store_event_dict_train(txn, 2000), BSP_OK);
    assert_int_equal(store_event_dict_train(txn, 2000), BSP_EEXISTS);
    assert_int_equal(store_txn_commit(txn), BSP_OK);
    assert_true(store_event_packing(f->st));
}

typedef struct json_check {
    int first; /* the shop event number of seq 1 */
    size_t seen;
} json_check;

/* Every event a scan or timeline reports is the JSON that was appended. */
static bsp_err check_json(void *ctx, uint64_t seq, bsp_slice json) {
    json_check *c = ctx;
    char want[512];
    shop_event(want, sizeof want, c->first + (int)seq - 1);
    assert_slice(json, want);
    c->seen++;
    return BSP_OK;
}

/* Every reader agrees: the log from seq `from` holds `all` events and pid's
 * timeline `mine`, each the JSON appended (check_json). */
static void expect_log_and_timeline(bsp_txn *txn, uint64_t from, size_t all, uint64_t pid,
                                    size_t mine) {
    json_check log = {1, 0}, timeline = {1, 0};
    assert_int_equal(store_events_scan(txn, from, check_json, &log), BSP_OK);
    assert_int_equal(log.seen, all);
    assert_int_equal(store_profile_events(txn, pid, UINT64_MAX, 100, check_json, &timeline),
                     BSP_OK);
    assert_int_equal(timeline.seen, mine);
}

static void test_pack_needs_a_dictionary(void **state) {
    fixture *f = *state;
    char *packed = NULL;
    size_t len = 1;
    assert_false(store_event_packing(f->st));
    assert_int_equal(store_event_pack(f->st, "{}", 2, &packed, &len), BSP_ENOTFOUND);
    assert_null(packed);
    assert_int_equal(len, 0);
    bsp_txn *txn = begin(f, false); /* training writes */
    assert_int_equal(store_event_dict_train(txn, 100), BSP_EINVAL);
    store_txn_abort(txn);
    txn = begin(f, true); /* an empty log teaches nothing */
    assert_int_equal(store_event_dict_train(txn, 100), BSP_EINVAL);
    store_txn_abort(txn);
    assert_false(store_event_packing(f->st));
}

/* Trained, committed, then: packed events are a fraction of their JSON,
 * every reader gets the JSON back, the raw events before stay readable,
 * and all of it survives a reopen. An aborted training leaves nothing. */
static void test_packed_events_round_trip(void **state) {
    fixture *f = *state;
    append_shop_events(f, 1, 2000);
    bsp_txn *txn = begin(f, true);
    assert_int_equal(store_event_dict_train(txn, 2000), BSP_OK);
    assert_false(store_event_packing(f->st)); /* not before the commit */
    store_txn_abort(txn);
    assert_false(store_event_packing(f->st));
    train_dictionary(f);
    txn = begin(f, true);
    assert_int_equal(store_event_dict_train(txn, 2000), BSP_EEXISTS); /* one for good */
    store_txn_abort(txn);

    txn = begin(f, true);
    size_t json_bytes = 0, packed_bytes = 0;
    for (int i = 2001; i <= 2300; i++) {
        char json[512], *packed = NULL;
        size_t len = 0;
        shop_event(json, sizeof json, i);
        assert_int_equal(store_event_pack(f->st, json, strlen(json), &packed, &len), BSP_OK);
        json_bytes += strlen(json);
        packed_bytes += len;
        uint64_t seq = 0;
        assert_int_equal(store_event_append(txn, (uint64_t)(i % 5) + 1, packed, len, &seq), BSP_OK);
        assert_int_equal(seq, (uint64_t)i);
        free(packed);
    }
    assert_int_equal(store_txn_commit(txn), BSP_OK);
    assert_true(packed_bytes * 3 < json_bytes);

    for (int round = 0; round < 2; round++) {
        txn = begin(f, false);
        expect_log_and_timeline(txn, 1, 2300, 2, 100);
        bsp_slice a, b;
        char want[512];
        assert_int_equal(store_event_get(txn, 2300, &a), BSP_OK); /* packed */
        shop_event(want, sizeof want, 2300);
        assert_slice(a, want);
        assert_int_equal(store_event_get(txn, 5, &b), BSP_OK); /* stored as JSON */
        shop_event(want, sizeof want, 5);
        assert_slice(b, want);
        store_txn_abort(txn);
        reopen(f); /* the dictionary comes back from the store */
        assert_true(store_event_packing(f->st));
    }
}

/* A packed value that does not unpack is a store error for every reader,
 * not a crash or garbage. */
static void test_packed_event_damaged(void **state) {
    fixture *f = *state;
    append_shop_events(f, 1, 2000);
    train_dictionary(f);
    char json[512], *packed = NULL;
    size_t len = 0;
    shop_event(json, sizeof json, 2001);
    assert_int_equal(store_event_pack(f->st, json, strlen(json), &packed, &len), BSP_OK);
    packed[len / 2] ^= 0x5a;
    bsp_txn *txn = begin(f, true);
    assert_int_equal(store_event_append(txn, 1, packed, len, NULL), BSP_OK);
    assert_int_equal(store_event_append(txn, 1, packed, 1, NULL), BSP_OK); /* the mark alone */
    assert_int_equal(store_txn_commit(txn), BSP_OK);
    free(packed);
    txn = begin(f, false);
    bsp_slice s;
    assert_int_equal(store_event_get(txn, 2001, &s), BSP_ESTORE);
    assert_int_equal(store_event_get(txn, 2002, &s), BSP_ESTORE);
    json_check all = {1, 0};
    assert_int_equal(store_events_scan(txn, 1995, check_json, &all), BSP_ESTORE);
    assert_int_equal(all.seen, 6);
    store_txn_abort(txn);
}

/* --- shared frames ------------------------------------------------------------ */

/* Shop events first..first+n-1 packed as one frame; *out malloc'd. */
static size_t pack_shop_frame(fixture *f, int first, size_t n, char **out) {
    char texts[STORE_FRAME_EVENTS_MAX][512];
    const char *ptrs[STORE_FRAME_EVENTS_MAX];
    size_t lens[STORE_FRAME_EVENTS_MAX], len = 0;
    for (size_t k = 0; k < n; k++) {
        shop_event(texts[k], sizeof texts[k], first + (int)k);
        ptrs[k] = texts[k];
        lens[k] = strlen(texts[k]);
    }
    assert_int_equal(store_event_pack_frame(f->st, ptrs, lens, n, out, &len), BSP_OK);
    return len;
}

/* Appends members [0, n) of frame as the next events, the first (holding
 * it) in pid's timeline, the others in member_pid's; returns the holder's
 * seq. */
static uint64_t append_frame(bsp_txn *txn, uint64_t pid, uint64_t member_pid, char *frame,
                             size_t len, size_t n) {
    uint64_t holder = 0;
    for (size_t k = 0; k < n; k++) {
        uint64_t next, seq;
        char ref[STORE_FRAME_ROOM];
        const char *val;
        size_t val_len;
        assert_int_equal(store_event_next_seq(txn, &next), BSP_OK);
        store_frame_value(frame, len, holder, next, (uint32_t)k, ref, &val, &val_len);
        assert_int_equal(store_event_append(txn, k ? member_pid : pid, val, val_len, &seq), BSP_OK);
        assert_int_equal(seq, next);
        if (k == 0) {
            assert_true(store_event_holds_frame(val, val_len));
            holder = seq;
        } else {
            uint64_t h = 0;
            assert_true(val_len < 8); /* a reference: a few bytes */
            assert_true(store_event_holder(val, val_len, seq, &h));
            assert_int_equal(h, holder);
        }
    }
    return holder;
}

/* Members of a frame read back as the texts packed, by every reader, in
 * any order, with frames of other profiles in between; a copy kept
 * elsewhere unpacks with its holder's copy; an erasure takes the frame
 * with its members; the frames take a fraction of the events packed alone. */
static void test_shared_frames_round_trip(void **state) {
    fixture *f = *state;
    append_shop_events(f, 1, 2000);
    train_dictionary(f);
    /* Events 2001-2012 for pid 7 and 2013-2016 for pid 8, frames of 12 and 4. */
    char *a, *b;
    size_t a_len = pack_shop_frame(f, 2001, 12, &a), b_len = pack_shop_frame(f, 2013, 4, &b);
    size_t alone = 0;
    for (int i = 2001; i <= 2016; i++) {
        char json[512], *packed;
        size_t len;
        shop_event(json, sizeof json, i);
        assert_int_equal(store_event_pack(f->st, json, strlen(json), &packed, &len), BSP_OK);
        alone += len;
        free(packed);
    }
    assert_true(a_len + b_len < alone); /* LZ4 frames against zstd alone: 724 and 852 bytes */
    bsp_txn *txn = begin(f, true);
    assert_int_equal(append_frame(txn, 7, 7, a, a_len, 12), 2001);
    assert_int_equal(append_frame(txn, 8, 8, b, b_len, 4), 2013);
    /* The writer's own transaction reads them before the commit. */
    json_check mine = {1, 0};
    assert_int_equal(store_events_scan(txn, 2001, check_json, &mine), BSP_OK);
    assert_int_equal(mine.seen, 16);
    assert_int_equal(store_txn_commit(txn), BSP_OK);

    for (int round = 0; round < 2; round++) {
        txn = begin(f, false);
        json_check all = {1, 0};
        assert_int_equal(store_events_scan(txn, 1990, check_json, &all), BSP_OK);
        assert_int_equal(all.seen, 27);
        json_check seven = {1, 0}, eight = {1, 0};
        assert_int_equal(store_profile_events(txn, 7, UINT64_MAX, 100, check_json, &seven), BSP_OK);
        assert_int_equal(store_profile_events(txn, 8, UINT64_MAX, 100, check_json, &eight), BSP_OK);
        assert_int_equal(eight.seen, 4);
        assert_int_equal(seven.seen, 12);
        /* Members out of order, frames alternating. */
        static const uint64_t order[] = {2012, 2013, 2001, 2016, 2006, 2006, 2014, 2002};
        for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
            bsp_slice s;
            char want[512];
            assert_int_equal(store_event_get(txn, order[i], &s), BSP_OK);
            shop_event(want, sizeof want, (int)order[i]);
            assert_slice(s, want);
            assert_int_equal(s.data[s.len], '\0');
        }
        store_txn_abort(txn);
        reopen(f);
    }

    /* Copies (as in the write-ahead file): a member needs its holder's. */
    const char *hval, *mval;
    size_t hlen, mlen;
    char ref[STORE_FRAME_ROOM];
    store_frame_value(a, a_len, 0, 2001, 0, ref, &hval, &hlen);
    store_frame_value(a, a_len, 2001, 2005, 4, ref, &mval, &mlen);
    bsp_buf scratch = {0};
    bsp_slice s;
    char want[512];
    assert_int_equal(store_event_unpack(f->st, mval, mlen, hval, hlen, &scratch, &s), BSP_OK);
    shop_event(want, sizeof want, 2005);
    assert_slice(s, want);
    assert_int_equal(store_event_unpack(f->st, hval, hlen, NULL, 0, &scratch, &s), BSP_OK);
    shop_event(want, sizeof want, 2001);
    assert_slice(s, want);
    assert_int_equal(store_event_unpack(f->st, mval, mlen, NULL, 0, &scratch, &s), BSP_ESTORE);
    assert_int_equal(store_event_unpack(f->st, mval, mlen, mval, mlen, &scratch, &s), BSP_ESTORE);
    bsp_buf_free(&scratch);
    free(a);
    free(b);

    /* Erasure: the frame goes with its members; the other frame stays. */
    txn = begin(f, true);
    uint64_t deleted = 0;
    assert_int_equal(store_events_delete(txn, 7, &deleted), BSP_OK);
    assert_int_equal(deleted, 12);
    assert_int_equal(store_txn_commit(txn), BSP_OK);
    txn = begin(f, false);
    assert_int_equal(store_event_get(txn, 2001, &s), BSP_ENOTFOUND);
    json_check eight = {1, 0};
    assert_int_equal(store_profile_events(txn, 8, UINT64_MAX, 100, check_json, &eight), BSP_OK);
    assert_int_equal(eight.seen, 4);
    store_txn_abort(txn);
}

/* v as a LEB128 varint at out; the bytes written. */
static size_t leb128(char *out, uint64_t v) {
    size_t n = 0;
    do {
        out[n++] = (char)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* A frame as stores before LZ4 frames wrote it, made here with zstd itself:
 * PACK_SHARED (0x02), the head, a zstd frame (content size, checksum) of
 * the content made with the store's dictionary. */
static size_t old_zstd_frame(fixture *f, int first, size_t n, char *out, size_t cap) {
    bsp_txn *txn = begin(f, false);
    bsp_slice dict;
    assert_int_equal(store_meta_get(txn, "event_dict", &dict), BSP_OK);
    char content[8192];
    size_t at = leb128(content, n);
    char texts[16][512];
    for (size_t i = 0; i < n; i++) {
        shop_event(texts[i], sizeof texts[i], first + (int)i);
        at += leb128(content + at, strlen(texts[i]));
    }
    for (size_t i = 0; i < n; i++) {
        memcpy(content + at, texts[i], strlen(texts[i]) + 1);
        at += strlen(texts[i]) + 1;
    }
    ZSTD_CCtx *c = ZSTD_createCCtx();
    assert_non_null(c);
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1)));
    assert_false(ZSTD_isError(ZSTD_CCtx_loadDictionary(c, dict.data, dict.len)));
    out[0] = 0x02; /* PACK_SHARED, holder (back 0), index 0 */
    out[1] = 0;
    out[2] = 0;
    size_t k = ZSTD_compress2(c, out + 3, cap - 3, content, at);
    assert_false(ZSTD_isError(k));
    ZSTD_freeCCtx(c);
    store_txn_abort(txn);
    return 3 + k;
}

/* Frames in zstd, as earlier versions stored them, read as before beside
 * the LZ4 frames written now: by the log, a timeline and a copy. */
static void test_shared_frames_zstd_still_read(void **state) {
    fixture *f = *state;
    append_shop_events(f, 1, 2000);
    train_dictionary(f);
    char old[8192];
    size_t old_len = old_zstd_frame(f, 2001, 3, old, sizeof old);
    char *lz4;
    size_t lz4_len = pack_shop_frame(f, 2004, 2, &lz4);
    bsp_txn *txn = begin(f, true);
    uint64_t seq;
    assert_int_equal(store_event_append(txn, 40, old, old_len, &seq), BSP_OK);
    assert_int_equal(seq, 2001);
    const char refs[2][3] = {{0x02, 1, 1}, {0x02, 2, 2}}; /* back 1 and 2 */
    for (int i = 0; i < 2; i++)
        assert_int_equal(store_event_append(txn, 40, refs[i], 3, NULL), BSP_OK);
    assert_int_equal(append_frame(txn, 40, 40, lz4, lz4_len, 2), 2004);
    assert_int_equal(store_txn_commit(txn), BSP_OK);
    txn = begin(f, false);
    expect_log_and_timeline(txn, 1995, 11, 40, 5);
    store_txn_abort(txn);
    bsp_buf scratch = {0};
    bsp_slice s;
    char want[512];
    assert_int_equal(store_event_unpack(f->st, refs[1], 3, old, old_len, &scratch, &s), BSP_OK);
    shop_event(want, sizeof want, 2003);
    assert_slice(s, want);
    old[old_len / 2] ^= 0x5a; /* its checksum catches a damaged byte */
    assert_int_equal(store_event_unpack(f->st, refs[1], 3, old, old_len, &scratch, &s), BSP_ESTORE);
    bsp_buf_free(&scratch);
    free(lz4);
}

/* A store opened with small_events packs its frames with zstd (PACK_SHARED,
 * 0x02), others with LZ4 (0x03); the zstd frame is the smaller, and a store
 * reads both whichever way it was opened. */
static void test_shared_frames_small_events(void **state) {
    fixture *f = *state;
    append_shop_events(f, 1, 2000);
    train_dictionary(f);
    char *fast, *small;
    size_t fast_len = pack_shop_frame(f, 2001, 12, &fast);
    store_close(f->st);
    bsp_store_opts small_opts = fast_opts;
    small_opts.small_events = true;
    assert_int_equal(store_open(f->dir, &small_opts, &f->st), BSP_OK);
    size_t small_len = pack_shop_frame(f, 2013, 12, &small);
    assert_true(small_len < fast_len);
    char ref[STORE_FRAME_ROOM];
    const char *val;
    size_t val_len;
    store_frame_value(fast, fast_len, 0, 2001, 0, ref, &val, &val_len);
    assert_int_equal(val[0], 0x03);
    store_frame_value(small, small_len, 2013, 2014, 1, ref, &val, &val_len);
    assert_int_equal(val[0], 0x02);
    bsp_txn *txn = begin(f, true);
    assert_int_equal(append_frame(txn, 7, 7, fast, fast_len, 12), 2001);
    assert_int_equal(append_frame(txn, 7, 7, small, small_len, 12), 2013);
    assert_int_equal(store_txn_commit(txn), BSP_OK);
    free(fast);
    free(small);
    for (int round = 0; round < 2; round++) {
        txn = begin(f, false);
        json_check all = {1, 0};
        assert_int_equal(store_events_scan(txn, 2001, check_json, &all), BSP_OK);
        assert_int_equal(all.seen, 24);
        store_txn_abort(txn);
        reopen(f); /* the default: fast */
    }
}

/* What a frame refuses to pack, and members that do not read: a damaged
 * frame, a member whose holder is gone, a member pointing at an event that
 * holds no frame, an index past the frame's end, a head cut short. Each is
 * a store error, not a crash or another event's text. */
static void test_shared_frames_damaged(void **state) {
    fixture *f = *state;
    char *frame = NULL;
    size_t len = 0;
    const char *one = "{}";
    size_t one_len = 2;
    assert_int_equal(store_event_pack_frame(f->st, &one, &one_len, 1, &frame, &len),
                     BSP_ENOTFOUND); /* no dictionary yet */
    append_shop_events(f, 1, 2000);
    train_dictionary(f);
    const char *many[STORE_FRAME_EVENTS_MAX + 1];
    size_t lens[STORE_FRAME_EVENTS_MAX + 1];
    for (size_t i = 0; i <= STORE_FRAME_EVENTS_MAX; i++) {
        many[i] = one;
        lens[i] = one_len;
    }
    assert_int_equal(
        store_event_pack_frame(f->st, many, lens, STORE_FRAME_EVENTS_MAX + 1, &frame, &len),
        BSP_EINVAL);
    assert_int_equal(store_event_pack_frame(f->st, many, lens, 0, &frame, &len), BSP_EINVAL);
    assert_null(frame);

    char *a, *b;
    size_t a_len = pack_shop_frame(f, 2001, 3, &a), b_len = pack_shop_frame(f, 2004, 2, &b);
    bsp_txn *txn = begin(f, true);
    append_frame(txn, 1, 9, a, a_len, 3); /* 2001-2003: the members in another timeline */
    b[STORE_FRAME_ROOM + (b_len - STORE_FRAME_ROOM) / 2] ^= 0x5a;
    append_frame(txn, 2, 2, b, b_len, 2); /* 2004-2005: damaged */
    char ref[STORE_FRAME_ROOM];
    const char *val;
    size_t val_len;
    assert_int_equal(store_txn_commit(txn), BSP_OK);
    free(a);
    free(b);

    txn = begin(f, false);
    bsp_slice s;
    assert_int_equal(store_event_get(txn, 2003, &s), BSP_OK); /* before the holder goes */
    store_txn_abort(txn);
    txn = begin(f, true);
    assert_int_equal(store_events_delete(txn, 1, NULL), BSP_OK); /* the holder, 2001 */
    assert_int_equal(store_txn_commit(txn), BSP_OK);
    txn = begin(f, false);
    for (uint64_t seq = 2002; seq <= 2005; seq++)
        if (store_event_get(txn, seq, &s) != BSP_ESTORE)
            fail_msg("event %llu read", (unsigned long long)seq);
    store_txn_abort(txn);
    /* The malformed members, read while their holder was there. */
    txn = begin(f, true);
    a_len = pack_shop_frame(f, 2010, 3, &a);
    uint64_t h = append_frame(txn, 3, 3, a, a_len, 1);
    store_frame_value(a, a_len, h, h + 1, 7, ref, &val, &val_len); /* index 7 of 3 */
    assert_int_equal(store_event_append(txn, 3, val, val_len, NULL), BSP_OK);
    store_frame_value(a, a_len, 2002, h + 2, 0, ref, &val, &val_len); /* 2002 holds none */
    assert_int_equal(store_event_append(txn, 3, val, val_len, NULL), BSP_OK);
    store_frame_value(a, a_len, h, h + 3, 1, ref, &val, &val_len); /* its head cut short */
    assert_int_equal(store_event_append(txn, 3, val, 1, NULL), BSP_OK);
    assert_int_equal(store_txn_commit(txn), BSP_OK);
    free(a);
    txn = begin(f, false);
    assert_int_equal(store_event_get(txn, h, &s), BSP_OK);
    for (uint64_t seq = h + 1; seq <= h + 3; seq++)
        if (store_event_get(txn, seq, &s) != BSP_ESTORE)
            fail_msg("event %llu read", (unsigned long long)seq);
    store_txn_abort(txn);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
    if (!getenv("BSP_TEST_LOG")) bsp_log_set_level(BSP_LOG_ERROR + 1); /* failure tests log */
    const struct CMUnitTest tests[] = {
        T(test_open_creates_nested_dirs),
        T(test_open_fails_on_bad_dir),
        T(test_second_open_refused),
        T(test_abort_discards_writes),
        T(test_read_txn_sees_snapshot),
        T(test_read_txn_ends_on_other_thread),
        T(test_write_in_read_txn_rejected),
        T(test_map_full_is_store_error),
        T(test_meta_round_trip),
        T(test_pid_counter_persists),
        T(test_id_put_get_del),
        T(test_id_invalid),
        T(test_profile_put_get_del_scan),
        T(test_profiles_scan_empty),
        T(test_event_append_and_get),
        T(test_seq_never_reused_after_delete),
        T(test_timeline_newest_first),
        T(test_timeline_runs),
        T(test_timeline_rekey_interleaved_runs),
        T(test_events_rekey),
        T(test_events_delete),
        T(test_events_scan),
        T(test_pack_needs_a_dictionary),
        T(test_packed_events_round_trip),
        T(test_packed_event_damaged),
        T(test_shared_frames_round_trip),
        T(test_shared_frames_damaged),
        T(test_shared_frames_zstd_still_read),
        T(test_shared_frames_small_events),
        T(test_msgid_duplicate),
        T(test_products),
        T(test_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
