/* server.c - api_serve: the daemon's life from start to a drained stop.
 *
 * Start: block SIGINT/SIGTERM (every thread started later inherits the
 * mask), open the store, settle the keys (flag/env, else stored, else
 * generated and stored before ingest starts), start ingest, start
 * the HTTP workers (lanes of two libmicrohttpd daemons, poll and epoll,
 * suspend/resume) fed by our own listener (listener.c says why).
 *
 * Stop (first SIGINT/SIGTERM, taken with sigwait on this thread): close the
 * listener (connection attempts are refused from then on), refuse new
 * ingest work, let ingest commit what is queued (each waiting request is
 * resumed with its answer), give in-flight requests up to API_DRAIN_SECONDS
 * to be answered, stop the workers, close the store.
 *
 * Also here: constant-time key comparison and the guard that keeps HTTP
 * threads from calling into ingest once it is being stopped. */
#include "api/api_internal.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define API_CONNECTION_LIMIT 10000
#define API_CONNECTION_TIMEOUT_S 30
/* Each connection's buffer for the request line, headers and a chunk of the
 * body (bodies are copied out as they arrive). libmicrohttpd zeroes it for
 * every request, so its default of 32 KiB cost more than a decision's
 * tokens; 16 KiB still takes request headers of over 10 KB. */
#define API_CONNECTION_MEMORY (16 * 1024)
#define API_DRAIN_SECONDS 10

/* --- keys ---------------------------------------------------------------------- */

bool api_key_equal(const char *given, size_t given_len, const char *want, size_t want_len) {
    if (want_len == 0) return false;
    volatile unsigned char diff = given_len != want_len;
    for (size_t i = 0; i < want_len; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
        diff |= g ^ (unsigned char)want[i];
    }
    return diff == 0;
}

typedef struct key_slot {
    const char *meta_name; /* "write_key" */
    const char *prefix;    /* "wk_" */
    const char *label;     /* "write key" */
    const char *given;     /* from flag/env, or NULL */
    char *value;           /* API_KEY_MAX bytes in api_server */
    size_t *len;
    bool generated;
} key_slot;

static bool key_set(key_slot *k, const char *value, size_t len) {
    if (len == 0 || len >= API_KEY_MAX) return false;
    memcpy(k->value, value, len);
    k->value[len] = '\0';
    *k->len = len;
    return true;
}

/* Keys given by flag/env, else already stored. */
static bsp_err keys_load(bsp_store *st, key_slot *keys, size_t n) {
    bsp_txn *txn = NULL;
    bsp_err rc = store_txn_begin(st, false, &txn);
    if (rc != BSP_OK) return rc;
    for (size_t i = 0; i < n && rc == BSP_OK; i++) {
        key_slot *k = &keys[i];
        if (k->given) {
            if (!key_set(k, k->given, strlen(k->given))) rc = BSP_EINVAL;
            continue;
        }
        bsp_slice stored;
        bsp_err got = store_meta_get(txn, k->meta_name, &stored);
        if (got == BSP_OK && !key_set(k, stored.data, stored.len))
            rc = BSP_EINVAL;
        else if (got != BSP_OK && got != BSP_ENOTFOUND)
            rc = got;
    }
    store_txn_abort(txn);
    return rc;
}

/* Generates the keys still missing and stores them in one transaction. */
static bsp_err keys_generate(bsp_store *st, key_slot *keys, size_t n) {
    bsp_txn *txn = NULL;
    bsp_err rc = BSP_OK;
    for (size_t i = 0; i < n && rc == BSP_OK; i++) {
        key_slot *k = &keys[i];
        if (*k->len) continue;
        char hex[2 * 24 + 1];
        rc = bsp_random_hex(hex, 24);
        if (rc != BSP_OK) break;
        snprintf(k->value, API_KEY_MAX, "%s%s", k->prefix, hex);
        *k->len = strlen(k->value);
        k->generated = true;
        if (!txn) rc = store_txn_begin(st, true, &txn);
        if (rc == BSP_OK) rc = store_meta_put(txn, k->meta_name, k->value, *k->len);
    }
    if (!txn) return rc;
    if (rc != BSP_OK) {
        store_txn_abort(txn);
        return rc;
    }
    return store_txn_commit(txn);
}

static bsp_err keys_setup(api_server *srv, bsp_store *st, const bsp_serve_opts *opts) {
    key_slot keys[2] = {
        {"write_key", "wk_", "write key", opts->write_key, srv->write_key, &srv->write_key_len,
         false},
        {"admin_key", "ak_", "admin key", opts->admin_key, srv->admin_key, &srv->admin_key_len,
         false},
    };
    bsp_err rc = keys_load(st, keys, 2);
    if (rc == BSP_EINVAL) {
        bsp_error_log("a write or admin key is empty or longer than %d bytes", API_KEY_MAX - 1);
        return rc;
    }
    if (rc == BSP_OK) rc = keys_generate(st, keys, 2);
    if (rc != BSP_OK) {
        bsp_error_log("could not read or store the keys: %s", bsp_err_name(rc));
        return rc;
    }
    if (srv->write_key_len == srv->admin_key_len &&
        memcmp(srv->write_key, srv->admin_key, srv->write_key_len) == 0) {
        bsp_error_log("the write key and the admin key must differ");
        return BSP_EINVAL;
    }
    for (int i = 0; i < 2; i++)
        if (keys[i].generated) printf("%s: %s\n", keys[i].label, keys[i].value);
    fflush(stdout);
    return BSP_OK;
}

/* --- ingest guard --------------------------------------------------------------- */

bool api_ingest_acquire(api_server *srv) {
    atomic_fetch_add(&srv->ingest_users, 1);
    if (!atomic_load(&srv->draining)) return true;
    atomic_fetch_sub(&srv->ingest_users, 1);
    return false;
}

void api_ingest_release(api_server *srv) {
    atomic_fetch_sub(&srv->ingest_users, 1);
}

/* --- daemon --------------------------------------------------------------------- */

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t len = strlen(line);
    while (len && line[len - 1] == '\n')
        line[--len] = '\0';
    bsp_warn("http: %s", line);
}

/* The path is matched raw and ids are decoded by us, so that "%2F" in an id
 * stays inside the id; query values are decoded by api_query. */
static size_t keep_escaped(void *cls, struct MHD_Connection *conn, char *uri) {
    (void)cls;
    (void)conn;
    return strlen(uri);
}

static unsigned thread_count(const bsp_serve_opts *opts) {
    if (opts->threads) return opts->threads;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores > BSP_SERVE_MAX_THREADS) return BSP_SERVE_MAX_THREADS;
    return cores > 0 ? (unsigned)cores : 1;
}

/* A worker of a lane: near ones wait with poll(2) and report closed
 * connections to their lane's count, far ones wait with epoll. */
static struct MHD_Daemon *worker_start(api_server *srv, api_lane *near_of,
                                       unsigned connection_limit) {
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | (near_of ? MHD_USE_POLL : MHD_USE_EPOLL) |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    return MHD_start_daemon(flags, 0, NULL, NULL, api_on_request, srv, MHD_OPTION_EXTERNAL_LOGGER,
                            mhd_log, NULL, MHD_OPTION_CONNECTION_LIMIT, connection_limit,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)API_CONNECTION_TIMEOUT_S,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)API_CONNECTION_MEMORY,
                            MHD_OPTION_NOTIFY_COMPLETED, api_on_completed, srv,
                            MHD_OPTION_NOTIFY_CONNECTION, near_of ? api_lane_notify : NULL, near_of,
                            MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL, MHD_OPTION_END);
}

static void workers_stop(api_server *srv) {
    for (unsigned i = 0; i < srv->lane_count; i++) {
        if (srv->lanes[i].near) MHD_stop_daemon(srv->lanes[i].near);
        if (srv->lanes[i].far) MHD_stop_daemon(srv->lanes[i].far);
    }
    free(srv->lanes);
    srv->lanes = NULL;
    srv->lane_count = 0;
}

/* The listener first, so that a taken port fails before any thread starts;
 * then one lane of two libmicrohttpd daemons per HTTP thread asked for, fed
 * by the listener. A near daemon's limit is four times what the listener
 * gives it (listener.c says why it must never be reached). */
static bool http_start(api_server *srv, const bsp_serve_opts *opts) {
    const char *listen = opts->listen ? opts->listen : "127.0.0.1:8080";
    if (api_listener_open(listen, &srv->listener) != BSP_OK) return false;
    unsigned n = thread_count(opts);
    srv->lanes = calloc(n, sizeof *srv->lanes);
    bool ok = srv->lanes != NULL;
    for (unsigned i = 0; ok && i < n; i++) {
        api_lane *lane = &srv->lanes[i];
        srv->lane_count++;
        lane->near = worker_start(srv, lane, 4 * API_LANE_NEAR_MAX);
        lane->far = worker_start(srv, NULL, API_CONNECTION_LIMIT / n + 1);
        ok = lane->near && lane->far;
    }
    if (ok) ok = api_listener_start(srv->listener, srv->lanes, n) == BSP_OK;
    if (!ok) {
        bsp_error_log("could not start the HTTP threads on %s", listen);
        api_listener_close(srv->listener);
        srv->listener = NULL;
        workers_stop(srv);
        return false;
    }
    bsp_info("listening on %s (port %u, %u lanes of 2 threads)", listen,
             api_listener_port(srv->listener), n);
    return true;
}

/* Many connections need many descriptors: raise the soft limit. */
static void raise_fd_limit(void) {
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max) return;
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
}

/* --- stop ----------------------------------------------------------------------- */

static void drain(api_server *srv) {
    atomic_store(&srv->draining, true);
    api_listener_close(srv->listener); /* new connections are refused from here on */
    srv->listener = NULL;
    while (atomic_load(&srv->ingest_users))
        bsp_sleep_ms(1);
    rfm_schedule_stop(srv->rfm); /* it runs ingest jobs */
    srv->rfm = NULL;
    predict_schedule_stop(srv->predict); /* so does it */
    srv->predict = NULL;
    campaigns_stop(srv);          /* its worker runs ingest jobs */
    reco_service_stop(srv);       /* training waits for checkpoints */
    segments_stop(srv->segments); /* its thread runs ingest jobs */
    ingest_stop(srv->ingest);     /* commits the queue; every waiting request is resumed */
    srv->ingest = NULL;
    uint64_t deadline = bsp_mono_ns() + (uint64_t)API_DRAIN_SECONDS * 1000000000ull;
    while (atomic_load(&srv->requests_open) && bsp_mono_ns() < deadline)
        bsp_sleep_ms(5);
    unsigned left = atomic_load(&srv->requests_open);
    if (left) bsp_warn("stopping with %u requests unanswered", left);
}

static int wait_for_signal(const sigset_t *set) {
    int sig = 0;
    while (sigwait(set, &sig) != 0) {
    }
    return sig;
}

/* Drops signals that arrived during the drain, so restoring the mask does
 * not kill us on the way out. */
static void restore_signals(const sigset_t *set, const sigset_t *old) {
    struct timespec zero = {0, 0};
    while (sigtimedwait(set, NULL, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* Segment entry/exit notifications go out through the webhook queue. */
static void notify_webhook(void *ctx, const char *url, const char *secret, const char *body,
                           size_t len) {
    webhook_enqueue(ctx, url, secret, body, len);
}

static int serve(api_server *srv, const bsp_serve_opts *opts, const sigset_t *set) {
    bsp_store_opts store_opts = {.small_events = opts->small_events};
    bsp_err rc = store_open(opts->data_dir, &store_opts, &srv->store);
    if (rc != BSP_OK) {
        bsp_error_log("could not open the store: %s", bsp_err_name(rc));
        return 1;
    }
    int exit_code = 1;
    if (keys_setup(srv, srv->store, opts) != BSP_OK) goto close_store;
    segments_opts seg_opts = {.sweep_ms = opts->segment_sweep_ms,
                              .rescan_ms = opts->segment_rescan_ms};
    rc = segments_open(srv->store, &seg_opts, &srv->segments);
    if (!rc) rc = webhook_start(NULL, &srv->webhooks);
    if (rc != BSP_OK) {
        bsp_error_log("could not load segments: %s", bsp_err_name(rc));
        goto close_store;
    }
    segments_set_notifier(srv->segments, notify_webhook, srv->webhooks);
    ingest_hooks hooks = segments_hooks(srv->segments);
    bsp_ingest_opts ingest_opts = {.queue_max_events = opts->queue_max,
                                   .memo_profiles = opts->profile_memo,
                                   .hooks = &hooks,
                                   .write_ahead = true,
                                   .wal_sync_ms = opts->wal_sync_ms};
    rc = ingest_start(srv->store, &ingest_opts, &srv->ingest);
    if (!rc && opts->wal_sync_ms)
        bsp_info("--wal-sync %llums: events are answered once written, and are on disk within "
                 "%llu ms (a killed process loses none; a power cut can lose that much)",
                 (unsigned long long)opts->wal_sync_ms, (unsigned long long)opts->wal_sync_ms);
    if (!rc) rc = segments_attach(srv->segments, srv->ingest);
    if (!rc) rc = campaigns_start(srv, opts->require_consent);
    if (!rc)
        rc = reco_service_start(srv, opts->data_dir, opts->train_interval_ms,
                                opts->affinity_attributes);
    if (!rc) decider_set_products(srv->decider, reco_block_products, srv);
    if (!rc)
        rc = rfm_schedule_start(srv->ingest, srv->store, srv->segments, opts->rfm_interval_ms,
                                &srv->rfm);
    if (!rc)
        rc = predict_schedule_start(srv->ingest, srv->store, srv->segments,
                                    opts->predict_interval_ms, &srv->predict);
    if (rc != BSP_OK) {
        bsp_error_log("could not start ingest: %s", bsp_err_name(rc));
        rfm_schedule_stop(srv->rfm);
        reco_service_stop(srv);
        if (srv->ingest) ingest_stop(srv->ingest);
        goto close_store;
    }
    srv->success = api_make_success_response();
    if (!srv->success || !http_start(srv, opts)) {
        campaigns_stop(srv);
        rfm_schedule_stop(srv->rfm);
        predict_schedule_stop(srv->predict);
        reco_service_stop(srv);
        segments_stop(srv->segments);
        ingest_stop(srv->ingest);
        goto free_response;
    }
    int sig = wait_for_signal(set);
    bsp_info("%s received: draining", sig == SIGINT ? "SIGINT" : "SIGTERM");
    drain(srv);
    workers_stop(srv);
    bsp_info("stopped");
    exit_code = 0;
free_response:
    if (srv->success) MHD_destroy_response(srv->success);
close_store:
    campaigns_close(srv);
    reco_service_close(srv);
    segments_close(srv->segments);
    webhook_stop(srv->webhooks);
    store_close(srv->store);
    return exit_code;
}

int api_serve(const bsp_serve_opts *opts) {
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    json_init(); /* cJSON's hooks, before any thread uses cJSON */
    api_server *srv = calloc(1, sizeof *srv);
    int exit_code = 1;
    if (srv) {
        srv->web_dir = opts->web_dir;
        exit_code = serve(srv, opts, &set);
        explicit_bzero(srv->write_key, sizeof srv->write_key);
        explicit_bzero(srv->admin_key, sizeof srv->admin_key);
        free(srv);
    }
    restore_signals(&set, &old);
    return exit_code;
}
