/* webhook.h - outgoing webhooks: a bounded queue of JSON payloads and one
 * delivery thread that POSTs them with libcurl (many transfers at once
 * through a multi handle), retries failures with exponential backoff up to
 * a bounded number of attempts, and signs every attempt so that receivers
 * can check where a payload came from and when:
 *
 *   X-Bespoke-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 *
 * Also sent: Content-Type: application/json, X-Bespoke-Delivery (an id that
 * stays the same across the retries of one payload, for de-duplication) and
 * X-Bespoke-Attempt (1, 2, ...).
 *
 * A 2xx answer is a delivery. Transport errors, timeouts, 408, 429 and 5xx
 * are retried; any other status is final (the receiver refused it). Secrets
 * are never logged; logs name the delivery id and the URL's host only. */
#ifndef BSP_WEBHOOK_H
#define BSP_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

typedef struct bsp_webhook bsp_webhook;

typedef struct bsp_webhook_opts {
    size_t queue_max;            /* payloads held (waiting, retrying, in flight); 0 = 10000 */
    unsigned max_attempts;       /* attempts per payload, first included; 0 = 5 */
    uint64_t backoff_ms;         /* wait before the first retry, doubled each time; 0 = 1000 */
    uint64_t backoff_max_ms;     /* longest wait between attempts; 0 = 60000 */
    uint64_t timeout_ms;         /* whole request; 0 = 5000 */
    uint64_t connect_timeout_ms; /* 0 = 2000 */
    uint64_t flush_ms;           /* at stop, time left to deliver what is held; 0 = 5000 */
    unsigned max_inflight;       /* concurrent transfers; 0 = 8 */
} bsp_webhook_opts;

typedef struct bsp_webhook_metrics {
    uint64_t sent;    /* payloads delivered (2xx) */
    uint64_t failed;  /* payloads given up: final status, attempts spent, or stop */
    uint64_t retried; /* attempts that failed and were scheduled again */
    uint64_t dropped; /* payloads refused because the queue was full */
    uint64_t queued;  /* payloads held now */
} bsp_webhook_metrics;

/* Starts the delivery thread. opts may be NULL (all defaults). */
bsp_err webhook_start(const bsp_webhook_opts *opts, bsp_webhook **out);

/* Queues one POST of len bytes of body to url (http or https), signed with
 * secret unless it is NULL or empty. Everything is copied. BSP_EINVAL for a
 * missing or non-HTTP url, BSP_EBUSY when the queue is full (the payload is
 * dropped, counted and a warning logged), BSP_EUNAVAIL once stopping,
 * BSP_ENOMEM. Safe from any thread; never blocks on the network. */
bsp_err webhook_enqueue(bsp_webhook *w, const char *url, const char *secret, const char *body,
                        size_t len);

/* Stops taking payloads, tries for up to flush_ms to deliver what is held
 * (retries still honour their backoff), gives up on the rest (counted as
 * failed, with a warning), joins the thread and frees. NULL is a no-op. */
void webhook_stop(bsp_webhook *w);

void webhook_metrics(bsp_webhook *w, bsp_webhook_metrics *out);

/* The signature header value for body at unix time t:
 * "t=<t>,v1=<64 hex>" in out (WEBHOOK_SIGNATURE_MAX bytes). */
#define WEBHOOK_SIGNATURE_MAX 96
bsp_err webhook_sign(const char *secret, int64_t t, const char *body, size_t len,
                     char out[WEBHOOK_SIGNATURE_MAX]);

/* What a receiver does: true when header is a valid signature of body with
 * secret, made no more than tolerance_s seconds away from now_s. */
bool webhook_verify(const char *secret, const char *header, const char *body, size_t len,
                    int64_t now_s, int64_t tolerance_s);

#endif
