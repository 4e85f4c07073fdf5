/* webhook.c - the webhook queue and its delivery thread.
 *
 * Callers append to a FIFO under a mutex and wake the thread with
 * curl_multi_wakeup. The thread alone owns everything else: payloads ready
 * to send, retries waiting for their time (a list sorted by due time) and
 * transfers in flight on one curl multi handle (which also keeps
 * connections alive between deliveries). Each loop starts what is due, up
 * to max_inflight, lets curl work, settles finished transfers (delivered,
 * retried later or given up) and polls until the next due time or a
 * wake-up. `held` counts every payload from enqueue to its end; it is what
 * the queue bound limits. */
#include "webhook/webhook.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DROP_WARN_INTERVAL_NS 10000000000ull /* one "queue full" warning per 10 s */
#define POLL_MAX_MS 1000

typedef struct hook {
    struct hook *next;
    char *url, *secret, *body;
    size_t len;
    unsigned attempts; /* made so far */
    uint64_t due_ns;   /* monotonic time of the next attempt */
    char id[33];       /* X-Bespoke-Delivery */
    CURL *easy;        /* while in flight */
    struct curl_slist *headers;
    char errbuf[CURL_ERROR_SIZE];
} hook;

typedef struct hook_list {
    hook *head, *tail;
} hook_list;

struct bsp_webhook {
    bsp_webhook_opts o;
    pthread_t thread;
    CURLM *multi;
    pthread_mutex_t mu; /* guards incoming, held, stopping, stop_deadline_ns */
    hook_list incoming;
    size_t held;
    bool stopping;
    uint64_t stop_deadline_ns;
    uint64_t last_drop_warn_ns;
    /* the delivery thread's own */
    hook_list ready;
    hook *waiting; /* retries, earliest due first */
    hook *active;  /* in flight (linked through next) */
    unsigned inflight;
    atomic_uint_fast64_t sent, failed, retried, dropped;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static bool curl_ok;

static void curl_init_once(void) {
    curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

/* --- payloads -------------------------------------------------------------- */

static void hook_free(hook *h) {
    if (!h) return;
    if (h->secret) explicit_bzero(h->secret, strlen(h->secret));
    free(h->url);
    free(h->secret);
    free(h->body);
    free(h);
}

static char *dup_bytes(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static hook *hook_new(const char *url, const char *secret, const char *body, size_t len) {
    hook *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->url = dup_bytes(url, strlen(url));
    h->secret = secret && *secret ? dup_bytes(secret, strlen(secret)) : NULL;
    h->body = dup_bytes(body ? body : "", body ? len : 0);
    h->len = body ? len : 0;
    if (!h->url || !h->body || (secret && *secret && !h->secret)) {
        hook_free(h);
        return NULL;
    }
    bsp_unique_hex(h->id);
    return h;
}

static void list_push(hook_list *l, hook *h) {
    h->next = NULL;
    if (l->tail)
        l->tail->next = h;
    else
        l->head = h;
    l->tail = h;
}

static hook *list_pop(hook_list *l) {
    hook *h = l->head;
    if (h) {
        l->head = h->next;
        if (!l->head) l->tail = NULL;
        h->next = NULL;
    }
    return h;
}

static void list_append(hook_list *into, hook_list *from) {
    if (!from->head) return;
    if (into->tail)
        into->tail->next = from->head;
    else
        into->head = from->head;
    into->tail = from->tail;
    from->head = from->tail = NULL;
}

static void waiting_insert(bsp_webhook *w, hook *h) {
    hook **at = &w->waiting;
    while (*at && (*at)->due_ns <= h->due_ns)
        at = &(*at)->next;
    h->next = *at;
    *at = h;
}

/* The URL's host for logs (never the path or query, which may hold tokens). */
static void url_host(const char *url, char *out, size_t cap) {
    snprintf(out, cap, "?");
    CURLU *u = curl_url();
    char *host = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
        snprintf(out, cap, "%s", host);
    curl_free(host);
    curl_url_cleanup(u);
}

/* --- one attempt ------------------------------------------------------------ */

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *ud) {
    (void)ptr, (void)ud;
    return size * nmemb;
}

static bsp_err add_header(struct curl_slist **list, const char *line) {
    struct curl_slist *next = curl_slist_append(*list, line);
    if (!next) return BSP_ENOMEM;
    *list = next;
    return BSP_OK;
}

static bsp_err build_headers(hook *h) {
    char line[160];
    bsp_err rc = add_header(&h->headers, "Content-Type: application/json");
    snprintf(line, sizeof line, "X-Bespoke-Delivery: %s", h->id);
    if (!rc) rc = add_header(&h->headers, line);
    snprintf(line, sizeof line, "X-Bespoke-Attempt: %u", h->attempts);
    if (!rc) rc = add_header(&h->headers, line);
    if (!rc) rc = add_header(&h->headers, "Expect:"); /* no 100-continue round trip */
    if (!rc && h->secret) {
        char sig[WEBHOOK_SIGNATURE_MAX];
        rc = webhook_sign(h->secret, bsp_now_ms() / 1000, h->body, h->len, sig);
        snprintf(line, sizeof line, "X-Bespoke-Signature: %s", sig);
        if (!rc) rc = add_header(&h->headers, line);
        explicit_bzero(sig, sizeof sig);
    }
    return rc;
}

static void set_options(bsp_webhook *w, hook *h) {
    CURL *e = h->easy;
    curl_easy_setopt(e, CURLOPT_URL, h->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, h->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)h->len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "bespoke-webhook/1");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)w->o.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)w->o.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, h);
}

static void attempt_clear(hook *h) {
    if (h->easy) curl_easy_cleanup(h->easy);
    curl_slist_free_all(h->headers);
    h->easy = NULL;
    h->headers = NULL;
}

/* Starts the next attempt; false (with the hook cleared) if it cannot. */
static bool attempt_start(bsp_webhook *w, hook *h) {
    h->attempts++;
    h->errbuf[0] = '\0';
    h->easy = curl_easy_init();
    if (!h->easy || build_headers(h) != BSP_OK) {
        attempt_clear(h);
        return false;
    }
    set_options(w, h);
    if (curl_multi_add_handle(w->multi, h->easy) != CURLM_OK) {
        attempt_clear(h);
        return false;
    }
    h->next = w->active;
    w->active = h;
    w->inflight++;
    return true;
}

/* Takes h off the multi handle and the in-flight list. */
static void active_remove(bsp_webhook *w, hook *h) {
    for (hook **at = &w->active; *at; at = &(*at)->next) {
        if (*at != h) continue;
        *at = h->next;
        break;
    }
    h->next = NULL;
    curl_multi_remove_handle(w->multi, h->easy);
    attempt_clear(h);
    w->inflight--;
}

/* --- outcomes ---------------------------------------------------------------- */

static void hook_done(bsp_webhook *w, hook *h) {
    pthread_mutex_lock(&w->mu);
    w->held--;
    pthread_mutex_unlock(&w->mu);
    hook_free(h);
}

static void give_up(bsp_webhook *w, hook *h, const char *why) {
    char host[256];
    url_host(h->url, host, sizeof host);
    bsp_warn("webhook %s to %s given up after %u attempt(s): %s", h->id, host, h->attempts, why);
    atomic_fetch_add(&w->failed, 1);
    hook_done(w, h);
}

static uint64_t backoff_ns(const bsp_webhook *w, unsigned attempts) {
    uint64_t ms = w->o.backoff_ms;
    for (unsigned i = 1; i < attempts && ms < w->o.backoff_max_ms; i++)
        ms *= 2;
    if (ms > w->o.backoff_max_ms) ms = w->o.backoff_max_ms;
    return ms * 1000000ull;
}

static void retry_later(bsp_webhook *w, hook *h, const char *why) {
    if (h->attempts >= w->o.max_attempts) {
        give_up(w, h, why);
        return;
    }
    atomic_fetch_add(&w->retried, 1);
    h->due_ns = bsp_mono_ns() + backoff_ns(w, h->attempts);
    bsp_debug("webhook %s: attempt %u failed (%s), retrying", h->id, h->attempts, why);
    waiting_insert(w, h);
}

static bool status_retryable(long status) {
    return status == 408 || status == 429 || status >= 500;
}

static bool curl_error_final(CURLcode cc) {
    return cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL;
}

static void settle(bsp_webhook *w, hook *h, CURLcode cc) {
    long status = 0;
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
    char why[CURL_ERROR_SIZE + 32];
    if (cc != CURLE_OK)
        snprintf(why, sizeof why, "%s", h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc));
    else
        snprintf(why, sizeof why, "HTTP %ld", status);
    active_remove(w, h);
    if (cc == CURLE_OK && status >= 200 && status < 300) {
        atomic_fetch_add(&w->sent, 1);
        hook_done(w, h);
    } else if (cc == CURLE_OK ? status_retryable(status) : !curl_error_final(cc)) {
        retry_later(w, h, why);
    } else {
        give_up(w, h, why);
    }
}

/* Settles finished transfers; returns how many. */
static size_t collect_finished(bsp_webhook *w) {
    CURLMsg *msg;
    int left;
    size_t n = 0;
    while ((msg = curl_multi_info_read(w->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        hook *h = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&h);
        if (h) settle(w, h, msg->data.result);
        n++;
    }
    return n;
}

/* --- the loop ------------------------------------------------------------------- */

/* Starts what is due: fresh payloads first, then retries whose time came. */
static void start_due(bsp_webhook *w, uint64_t now) {
    while (w->inflight < w->o.max_inflight) {
        hook *h = list_pop(&w->ready);
        if (!h && w->waiting && w->waiting->due_ns <= now) {
            h = w->waiting;
            w->waiting = h->next;
            h->next = NULL;
        }
        if (!h) return;
        if (!attempt_start(w, h)) retry_later(w, h, "could not start the request");
    }
}

static long ms_until(uint64_t t, uint64_t now) {
    return t <= now ? 0 : (long)((t - now) / 1000000ull) + 1;
}

/* How long to sleep: until the next retry is due, the stop deadline
 * passes, or curl or an enqueue wakes us. */
static long poll_timeout_ms(const bsp_webhook *w, bool stopping, uint64_t deadline) {
    if (w->ready.head && w->inflight < w->o.max_inflight) return 0;
    uint64_t now = bsp_mono_ns();
    long ms = POLL_MAX_MS;
    if (w->waiting && ms_until(w->waiting->due_ns, now) < ms)
        ms = ms_until(w->waiting->due_ns, now);
    if (stopping && ms_until(deadline, now) < ms) ms = ms_until(deadline, now);
    return ms;
}

/* Gives up on everything still held (stop deadline passed). */
static void abandon_all(bsp_webhook *w) {
    size_t n = 0;
    hook *h;
    while ((h = list_pop(&w->ready))) {
        n++;
        atomic_fetch_add(&w->failed, 1);
        hook_done(w, h);
    }
    while ((h = w->waiting)) {
        w->waiting = h->next;
        n++;
        atomic_fetch_add(&w->failed, 1);
        hook_done(w, h);
    }
    while ((h = w->active)) {
        active_remove(w, h);
        n++;
        atomic_fetch_add(&w->failed, 1);
        hook_done(w, h);
    }
    if (n) bsp_warn("webhook: stopping with %zu payload(s) undelivered", n);
}

/* At stop: true when nothing more can be delivered before the deadline. */
static bool stop_now(const bsp_webhook *w, uint64_t now, uint64_t deadline) {
    if (now >= deadline) return true;
    if (w->inflight || w->ready.head) return false;
    return !w->waiting || w->waiting->due_ns > deadline;
}

static void *delivery_thread(void *arg) {
    bsp_webhook *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        list_append(&w->ready, &w->incoming);
        bool stopping = w->stopping;
        uint64_t deadline = w->stop_deadline_ns;
        pthread_mutex_unlock(&w->mu);
        uint64_t now = bsp_mono_ns();
        if (stopping && stop_now(w, now, deadline)) break;
        start_due(w, now);
        int running = 0;
        curl_multi_perform(w->multi, &running);
        if (collect_finished(w)) continue; /* retries or room to start more */
        curl_multi_poll(w->multi, NULL, 0, (int)poll_timeout_ms(w, stopping, deadline), NULL);
    }
    abandon_all(w);
    return NULL;
}

/* --- the public face ------------------------------------------------------------ */

static void apply_defaults(bsp_webhook_opts *o) {
    if (!o->queue_max) o->queue_max = 10000;
    if (!o->max_attempts) o->max_attempts = 5;
    if (!o->backoff_ms) o->backoff_ms = 1000;
    if (!o->backoff_max_ms) o->backoff_max_ms = 60000;
    if (o->backoff_max_ms < o->backoff_ms) o->backoff_max_ms = o->backoff_ms;
    if (!o->timeout_ms) o->timeout_ms = 5000;
    if (!o->connect_timeout_ms) o->connect_timeout_ms = 2000;
    if (!o->flush_ms) o->flush_ms = 5000;
    if (!o->max_inflight) o->max_inflight = 8;
}

bsp_err webhook_start(const bsp_webhook_opts *opts, bsp_webhook **out) {
    *out = NULL;
    pthread_once(&curl_once, curl_init_once);
    if (!curl_ok) return BSP_EINTERNAL;
    bsp_webhook *w = calloc(1, sizeof *w);
    if (!w) return BSP_ENOMEM;
    if (opts) w->o = *opts;
    apply_defaults(&w->o);
    w->multi = curl_multi_init();
    if (!w->multi) {
        free(w);
        return BSP_ENOMEM;
    }
    curl_multi_setopt(w->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)w->o.max_inflight);
    pthread_mutex_init(&w->mu, NULL);
    if (pthread_create(&w->thread, NULL, delivery_thread, w) != 0) {
        pthread_mutex_destroy(&w->mu);
        curl_multi_cleanup(w->multi);
        free(w);
        return BSP_EINTERNAL;
    }
    *out = w;
    return BSP_OK;
}

static bool url_ok(const char *url) {
    return url && (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0);
}

static void warn_dropped(bsp_webhook *w) {
    uint64_t now = bsp_mono_ns();
    pthread_mutex_lock(&w->mu);
    bool warn = !w->last_drop_warn_ns || now - w->last_drop_warn_ns >= DROP_WARN_INTERVAL_NS;
    if (warn) w->last_drop_warn_ns = now;
    pthread_mutex_unlock(&w->mu);
    if (warn)
        bsp_warn("webhook: queue full (%zu payloads), dropping; %llu dropped so far",
                 w->o.queue_max, (unsigned long long)atomic_load(&w->dropped));
}

bsp_err webhook_enqueue(bsp_webhook *w, const char *url, const char *secret, const char *body,
                        size_t len) {
    if (!w || !url_ok(url) || (!body && len)) return BSP_EINVAL;
    hook *h = hook_new(url, secret, body, len);
    if (!h) return BSP_ENOMEM;
    pthread_mutex_lock(&w->mu);
    bsp_err rc = w->stopping ? BSP_EUNAVAIL : w->held >= w->o.queue_max ? BSP_EBUSY : BSP_OK;
    if (rc == BSP_OK) {
        list_push(&w->incoming, h);
        w->held++;
    }
    pthread_mutex_unlock(&w->mu);
    if (rc == BSP_OK) {
        curl_multi_wakeup(w->multi);
        return BSP_OK;
    }
    hook_free(h);
    if (rc == BSP_EBUSY) {
        atomic_fetch_add(&w->dropped, 1);
        warn_dropped(w);
    }
    return rc;
}

void webhook_stop(bsp_webhook *w) {
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    w->stop_deadline_ns = bsp_mono_ns() + w->o.flush_ms * 1000000ull;
    pthread_mutex_unlock(&w->mu);
    curl_multi_wakeup(w->multi);
    pthread_join(w->thread, NULL);
    curl_multi_cleanup(w->multi);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

void webhook_metrics(bsp_webhook *w, bsp_webhook_metrics *out) {
    memset(out, 0, sizeof *out);
    if (!w) return;
    out->sent = atomic_load(&w->sent);
    out->failed = atomic_load(&w->failed);
    out->retried = atomic_load(&w->retried);
    out->dropped = atomic_load(&w->dropped);
    pthread_mutex_lock(&w->mu);
    out->queued = w->held;
    pthread_mutex_unlock(&w->mu);
}
