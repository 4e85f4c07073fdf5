/* api.h - the HTTP server (libmicrohttpd, thread pool, suspend/resume while
 * the writer commits): routing, authentication by write key and admin key,
 * CORS, gzip bodies, size limits, JSON errors, /healthz and /metrics, the
 * Segment collection endpoints and the admin API. */
#ifndef BSP_API_H
#define BSP_API_H

#include "core/core.h"

#define BSP_SERVE_MAX_THREADS 1024 /* HTTP worker threads at most */

typedef struct bsp_serve_opts {
    const char *listen;              /* "127.0.0.1:8080" */
    const char *data_dir;            /* store directory */
    const char *write_key;           /* NULL: from store, or generated */
    const char *admin_key;           /* NULL: from store, or generated */
    unsigned threads;                /* HTTP threads; 0 = number of cores */
    size_t queue_max;                /* ingest queue bound in events; 0 = default */
    size_t profile_memo;             /* profiles kept parsed for decisions; 0 = default */
    const char *web_dir;             /* static files served under / (may be NULL) */
    bool require_consent;            /* decisions personalize only with stated consent */
    uint64_t wal_sync_ms;            /* 0: answer events once synced; else sync within this */
    bool small_events;               /* --event-packing small: zstd frames, not LZ4 */
    uint64_t segment_sweep_ms;       /* clock-reading segments re-checked; 0 = 60 s */
    uint64_t segment_rescan_ms;      /* full pass over them; 0 = 6 h */
    uint64_t rfm_interval_ms;        /* periodic RFM scoring (segment/rfm.c); 0 = off */
    uint64_t train_interval_ms;      /* periodic recommendation training; 0 = off */
    uint64_t predict_interval_ms;    /* periodic predictive scores (predict/); 0 = off */
    const char *affinity_attributes; /* "colour,size,..."; NULL = RECO_AFFINITY_DEFAULT */
} bsp_serve_opts;

/* Inflates a gzip or zlib body (what Content-Encoding: gzip/deflate
 * requests carry) into out, refusing more than max bytes of output with
 * BSP_ETOOBIG and broken streams with BSP_EINVAL. Public for the fuzzer. */
bsp_err api_body_inflate(const char *data, size_t len, size_t max, bsp_buf *out, bsp_error *err);

/* Runs until SIGTERM or SIGINT, then drains in-flight work. Returns the
 * process exit code (0 on a clean stop). */
int api_serve(const bsp_serve_opts *opts);

#endif
