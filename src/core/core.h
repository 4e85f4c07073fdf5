/* core.h - the foundations every module shares: the one error enum, error
 * details with a position, logging, time, hashing, growable buffers,
 * option lookup (flag, then environment, then default), periodic jobs and
 * the failure points tests arm.
 *
 * Nothing here knows about events, profiles or HTTP; every other folder may
 * include this header. */
#ifndef BSP_CORE_H
#define BSP_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The one error enum. Each code maps to one HTTP status and one stable name
 * that appears as `error.code` in JSON error bodies. */
typedef enum bsp_err {
    BSP_OK = 0,
    BSP_EINVAL,     /* bad argument or request shape           400 bad_request */
    BSP_EPARSE,     /* body or file is not valid JSON/CSV      400 bad_json */
    BSP_EAUTH,      /* no key or wrong key                     401 unauthorized */
    BSP_EFORBIDDEN, /* key valid but not for this              403 forbidden */
    BSP_ENOTFOUND,  /* no such profile/product/route           404 not_found */
    BSP_EMETHOD,    /* method not allowed on the route         405 method_not_allowed */
    BSP_EEXISTS,    /* conflict, duplicate                     409 conflict */
    BSP_ETOOBIG,    /* over a size or count limit              413 too_large */
    BSP_EMEDIA,     /* unsupported content encoding            415 unsupported_media */
    BSP_ETYPE,      /* a field has the wrong type or value     422 invalid_field */
    BSP_EBUSY,      /* queue full, retry later                 429 busy */
    BSP_ENOMEM,     /* out of memory                           503 out_of_memory */
    BSP_ESTORE,     /* storage failed                          503 store_failed */
    BSP_EUNAVAIL,   /* shutting down / not ready               503 unavailable */
    BSP_EIO,        /* file or socket I/O                      500 io_error */
    BSP_EINTERNAL,  /* a bug                                   500 internal */
    BSP_ERR_COUNT
} bsp_err;

const char *bsp_err_name(bsp_err e);
int bsp_err_http_status(bsp_err e);

/* An error with a human message and the position of the problem: a JSON path
 * such as "batch[3].userId", or "line 2, column 7" for parse errors. */
typedef struct bsp_error {
    bsp_err code;
    char message[256];
    char at[128];
} bsp_error;

void bsp_error_clear(bsp_error *e);
bsp_err bsp_error_set(bsp_error *e, bsp_err code, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Logging to stderr, one line each, with an ISO time and level. */
typedef enum { BSP_LOG_DEBUG, BSP_LOG_INFO, BSP_LOG_WARN, BSP_LOG_ERROR } bsp_log_level;
void bsp_log_set_level(bsp_log_level lvl);
void bsp_log(bsp_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define bsp_debug(...) bsp_log(BSP_LOG_DEBUG, __VA_ARGS__)
#define bsp_info(...) bsp_log(BSP_LOG_INFO, __VA_ARGS__)
#define bsp_warn(...) bsp_log(BSP_LOG_WARN, __VA_ARGS__)
#define bsp_error_log(...) bsp_log(BSP_LOG_ERROR, __VA_ARGS__)

/* Time. Wall-clock in milliseconds since the Unix epoch; monotonic in ns. */
int64_t bsp_now_ms(void);
uint64_t bsp_mono_ns(void);
void bsp_sleep_ms(unsigned ms); /* at least ms milliseconds, unless a signal ends it */
/* Parses ISO 8601 / RFC 3339 ("2024-01-02T03:04:05.678Z", "+02:00" offsets,
 * "2010-12-01 08:26:00" with a space and no zone = UTC). false if invalid. */
bool bsp_time_parse(const char *s, int64_t *out_ms);
/* Formats as "2024-01-02T03:04:05.678Z" into out (at least 32 bytes). */
void bsp_time_format(int64_t ms, char *out, size_t cap);
/* Whether bsp_time_format writes ms as ISO 8601 (years 0000 to 9999), the
 * text bsp_time_parse reads back as ms; other times are written as digits. */
bool bsp_time_is_iso(int64_t ms);

/* Hashing (xxHash XXH3): stable across runs and machines. */
uint64_t bsp_hash64(const void *data, size_t len);
void bsp_hash128(const void *data, size_t len, uint8_t out[16]);

/* Random bytes from the kernel, as lowercase hex (2*nbytes chars + NUL). */
bsp_err bsp_random_hex(char *out, size_t nbytes);
/* 32 lowercase hex chars + NUL, unique for ids (generated messageIds): a
 * per-thread generator seeded once from the kernel, no syscall per call. */
void bsp_unique_hex(char out[33]);

/* Room for one more item in a growable array: items (len in use, *cap
 * allocated, each size bytes) as it is when len < *cap, else reallocated to
 * twice *cap (first when *cap is 0), with *cap updated. NULL when out of
 * memory, items then unchanged. Typical use:
 *     T *grown = bsp_grow(v->items, &v->cap, v->n, sizeof *v->items, 1024);
 *     if (!grown) return BSP_ENOMEM;
 *     v->items = grown;
 *     v->items[v->n++] = x; */
void *bsp_grow(void *items, size_t *cap, size_t len, size_t size, size_t first);

/* A growable byte buffer, always NUL-terminated when data != NULL. */
typedef struct bsp_buf {
    char *data;
    size_t len;
    size_t cap;
} bsp_buf;

bsp_err bsp_buf_reserve(bsp_buf *b, size_t extra);
bsp_err bsp_buf_append_grow(bsp_buf *b, const void *data, size_t len);

/* Appends len bytes. Writers append many small pieces (a JSON text is
 * hundreds), so the common case, bytes that fit, is copied inline; only
 * growing the buffer is a call. */
static inline bsp_err bsp_buf_append(bsp_buf *b, const void *data, size_t len) {
    if (len && b->len + len < b->cap) {
        memcpy(b->data + b->len, data, len);
        b->len += len;
        b->data[b->len] = '\0';
        return BSP_OK;
    }
    return bsp_buf_append_grow(b, data, len);
}
bsp_err bsp_buf_puts(bsp_buf *b, const char *s);
bsp_err bsp_buf_printf(bsp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bsp_buf_reset(bsp_buf *b);
void bsp_buf_free(bsp_buf *b);

/* Option lookup: the flag's value if given, else the environment variable,
 * else the default. */
const char *bsp_opt(const char *flag_value, const char *env_name, const char *dflt);

/* Parses a whole decimal number with an optional K/M/G suffix; false if bad. */
bool bsp_parse_size(const char *s, uint64_t *out);

/* --- periodic jobs (periodic.c) -------------------------------------------- */

#include <stdatomic.h>

/* A job run on a thread of its own: first after first_ms, then every
 * interval_ms, until bsp_periodic_stop, which wakes the thread and waits for
 * a run in progress (the job may watch *stop to return early). */
typedef struct bsp_periodic bsp_periodic;
typedef void (*bsp_periodic_fn)(void *ctx, atomic_bool *stop);
bsp_err bsp_periodic_start(uint64_t first_ms, uint64_t interval_ms, bsp_periodic_fn fn, void *ctx,
                           bsp_periodic **out);
void bsp_periodic_stop(bsp_periodic *p); /* NULL is a no-op */

/* --- failure injection for tests (fault.c) ---------------------------------- */

/* Points where the disk can fail. A test arms one to make its calls fail as
 * the operating system would (the call reports EIO; a commit, the store's
 * failure); nothing else arms them. */
typedef enum bsp_fault_point {
    BSP_FAULT_WAL_WRITE,    /* each pwrite of the write-ahead file */
    BSP_FAULT_WAL_SYNC,     /* each fsync/fdatasync of the write-ahead file */
    BSP_FAULT_STORE_COMMIT, /* each commit of a store write transaction */
    BSP_FAULT_POINTS
} bsp_fault_point;

/* Lets the next `skip` calls at p pass, then fails `fail` of them; fail 0
 * disarms p. */
void bsp_fault_arm(bsp_fault_point p, unsigned skip, unsigned fail);
void bsp_fault_disarm_all(void);
/* Called by the point itself: whether this call is to fail. */
bool bsp_fault_hit(bsp_fault_point p);
/* How many calls at p failed since it was last armed. */
unsigned bsp_fault_fired(bsp_fault_point p);

#endif
