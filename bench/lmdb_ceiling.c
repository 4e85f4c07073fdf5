/* lmdb_ceiling.c - LMDB's raw batched put rate on this machine, the ceiling
 * that the store's ingest rate is compared with. Uses only LMDB and libc.
 *
 *   lmdb_ceiling [N [SECONDS]]
 *
 * In a fresh temporary directory, durably (fsync on every commit, no
 * MDB_NOSYNC), 1000 puts a transaction, 300-byte values:
 *   1. N puts of sequential 8-byte big-endian keys with MDB_APPEND;
 *   2. up to N puts of random keys over the same 0..N-1 keyspace, into the
 *      tree that phase 1 filled, stopping after SECONDS (default 10) since
 *      each commit rewrites about a thousand pages.
 * Prints `lmdb_append_puts_per_s <n>` and `lmdb_random_puts_per_s <n>`. */
#include <errno.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PUTS_PER_TXN 1000
#define VALUE_LEN 300

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void be64_put(uint8_t *out, uint64_t v) {
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* splitmix64: a fixed seed, so that every run writes the same keys. */
static uint64_t next_random(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int check(int rc, const char *what) {
    if (rc != MDB_SUCCESS) fprintf(stderr, "lmdb_ceiling: %s: %s\n", what, mdb_strerror(rc));
    return rc;
}

typedef struct run {
    MDB_env *env;
    MDB_dbi dbi;
    uint64_t n;
    double max_seconds; /* 0 = no limit */
    int random;         /* 0: sequential keys with MDB_APPEND; 1: random keys */
} run;

/* Writes up to r->n puts; *done is how many were committed, *secs the time. */
static int put_all(const run *r, uint64_t *done, double *secs) {
    uint8_t key[8], value[VALUE_LEN];
    memset(value, 'v', sizeof value);
    uint64_t rng = 42;
    unsigned flags = r->random ? 0 : MDB_APPEND;
    double start = now_s();
    *done = 0;
    while (*done < r->n) {
        if (r->max_seconds > 0 && now_s() - start > r->max_seconds) break;
        MDB_txn *txn;
        if (check(mdb_txn_begin(r->env, NULL, 0, &txn), "begin")) return -1;
        uint64_t batch = r->n - *done < PUTS_PER_TXN ? r->n - *done : PUTS_PER_TXN;
        for (uint64_t i = 0; i < batch; i++) {
            be64_put(key, r->random ? next_random(&rng) % r->n : *done + i);
            MDB_val k = {sizeof key, key}, v = {sizeof value, value};
            if (check(mdb_put(txn, r->dbi, &k, &v, flags), "put")) {
                mdb_txn_abort(txn);
                return -1;
            }
        }
        if (check(mdb_txn_commit(txn), "commit")) return -1;
        *done += batch;
    }
    *secs = now_s() - start;
    return 0;
}

static int open_env(const char *dir, uint64_t n, MDB_env **env, MDB_dbi *dbi) {
    size_t map_size = (size_t)n * 1024 + ((size_t)64 << 20);
    MDB_txn *txn;
    if (check(mdb_env_create(env), "env create")) return -1;
    if (check(mdb_env_set_mapsize(*env, map_size), "mapsize") ||
        check(mdb_env_open(*env, dir, 0, 0600), "env open") ||
        check(mdb_txn_begin(*env, NULL, 0, &txn), "begin")) {
        mdb_env_close(*env);
        return -1;
    }
    if (check(mdb_dbi_open(txn, NULL, 0, dbi), "dbi open")) {
        mdb_txn_abort(txn);
        mdb_env_close(*env);
        return -1;
    }
    if (check(mdb_txn_commit(txn), "commit")) {
        mdb_env_close(*env);
        return -1;
    }
    return 0;
}

static void remove_env_dir(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    unlink(path);
    rmdir(dir);
}

static int measure(MDB_env *env, MDB_dbi dbi, uint64_t n, double max_seconds) {
    run seq = {env, dbi, n, 0, 0}, rnd = {env, dbi, n, max_seconds, 1};
    uint64_t done;
    double secs;
    if (put_all(&seq, &done, &secs)) return -1;
    printf("lmdb_append_puts_per_s %.0f\n", (double)done / secs);
    fflush(stdout);
    if (put_all(&rnd, &done, &secs)) return -1;
    printf("lmdb_random_puts_per_s %.0f\n", (double)done / secs);
    fprintf(stderr, "lmdb_ceiling: %llu random puts in %.1f s\n", (unsigned long long)done, secs);
    return 0;
}

int main(int argc, char **argv) {
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    double max_seconds = argc > 2 ? strtod(argv[2], NULL) : 10.0;
    if (n == 0 || max_seconds <= 0) {
        fprintf(stderr, "usage: lmdb_ceiling [N [SECONDS]]\n");
        return 2;
    }
    const char *tmp = getenv("TMPDIR");
    char dir[4000];
    snprintf(dir, sizeof dir, "%s/lmdb-ceiling-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "lmdb_ceiling: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    MDB_env *env;
    MDB_dbi dbi;
    int rc = open_env(dir, n, &env, &dbi);
    if (rc == 0) {
        rc = measure(env, dbi, n, max_seconds);
        mdb_env_close(env);
    }
    remove_env_dir(dir);
    return rc == 0 ? 0 : 1;
}
