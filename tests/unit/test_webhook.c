/* test_webhook.c - webhook delivery against a receiver on 127.0.0.1 run by
 * the test itself (libmicrohttpd): the payload and headers arrive as sent,
 * the signature verifies (and a known HMAC vector matches), a 500 is
 * retried with the same delivery id, attempts are bounded, a refusal (4xx)
 * is final, a full queue drops and counts, a slow receiver times out, and
 * stop flushes what is queued. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#include "webhook/webhook.h"

#define SECRET "whsec_test"
#define MAX_SEEN 64

/* --- the receiver ---------------------------------------------------------- */

typedef struct seen {
    char body[512];
    char signature[128];
    char delivery[40];
    char content_type[64];
    int attempt;
} seen;

typedef struct receiver {
    struct MHD_Daemon *d;
    unsigned port;
    pthread_mutex_t mu;
    const int *statuses; /* answer of the i-th request; past the end: last one */
    size_t nstatuses;
    unsigned delay_ms; /* before answering */
    seen seen[MAX_SEEN];
    size_t count;
} receiver;

typedef struct upload {
    char data[512];
    size_t len;
} upload;

static const char *header(struct MHD_Connection *c, const char *name) {
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    return v ? v : "";
}

static int record(receiver *r, struct MHD_Connection *c, const upload *u) {
    pthread_mutex_lock(&r->mu);
    size_t i = r->count++;
    if (i < MAX_SEEN) {
        seen *s = &r->seen[i];
        snprintf(s->body, sizeof s->body, "%.*s", (int)u->len, u->data);
        snprintf(s->signature, sizeof s->signature, "%s", header(c, "X-Bespoke-Signature"));
        snprintf(s->delivery, sizeof s->delivery, "%s", header(c, "X-Bespoke-Delivery"));
        snprintf(s->content_type, sizeof s->content_type, "%s", header(c, "Content-Type"));
        s->attempt = atoi(header(c, "X-Bespoke-Attempt"));
    }
    int status = 200;
    if (r->nstatuses) status = r->statuses[i < r->nstatuses ? i : r->nstatuses - 1];
    pthread_mutex_unlock(&r->mu);
    return status;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **state) {
    (void)url, (void)method, (void)version;
    receiver *r = cls;
    upload *u = *state;
    if (!u) {
        *state = calloc(1, sizeof *u);
        return *state ? MHD_YES : MHD_NO;
    }
    if (*size) {
        size_t n = *size < sizeof u->data - u->len ? *size : sizeof u->data - u->len;
        memcpy(u->data + u->len, data, n);
        u->len += n;
        *size = 0;
        return MHD_YES;
    }
    int status = record(r, c, u);
    if (r->delay_ms) usleep(r->delay_ms * 1000);
    struct MHD_Response *resp = MHD_create_response_from_buffer(2, "ok", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode code) {
    (void)cls, (void)c, (void)code;
    free(*state);
    *state = NULL;
}

static void receiver_start(receiver *r, const int *statuses, size_t n) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    r->statuses = statuses;
    r->nstatuses = n;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                            NULL, NULL, on_request, r, MHD_OPTION_SOCK_ADDR, &addr,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    assert_non_null(r->d);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(r->d, MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(info);
    r->port = info->port;
}

static void receiver_stop(receiver *r) {
    MHD_stop_daemon(r->d);
    pthread_mutex_destroy(&r->mu);
}

static size_t receiver_count(receiver *r) {
    pthread_mutex_lock(&r->mu);
    size_t n = r->count;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void url_of(const receiver *r, char *out, size_t cap) {
    snprintf(out, cap, "http://127.0.0.1:%u/hooks/bespoke?token=abc", r->port);
}

/* --- helpers -------------------------------------------------------------------- */

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits up to 10 s until sent + failed reaches n. */
static bsp_webhook_metrics wait_settled(bsp_webhook *w, uint64_t n) {
    bsp_webhook_metrics m;
    for (int i = 0; i < 1000; i++) {
        webhook_metrics(w, &m);
        if (m.sent + m.failed >= n) break;
        sleep_ms(10);
    }
    return m;
}

static const bsp_webhook_opts fast = {.backoff_ms = 20, .backoff_max_ms = 100, .timeout_ms = 2000};

static const char payload[] = "{\"type\":\"segment.entered\",\"segment\":\"cart_abandoners\","
                              "\"profile_id\":\"42\",\"userId\":\"u1\",\"anonymousId\":null,"
                              "\"timestamp\":\"2026-01-02T03:04:05.000Z\"}";

/* --- tests --------------------------------------------------------------------------- */

static void test_signature_known_vector(void **state) {
    (void)state;
    const char body[] = "{\"type\":\"segment.entered\"}";
    char sig[WEBHOOK_SIGNATURE_MAX];
    assert_int_equal(webhook_sign(SECRET, 1700000000, body, strlen(body), sig), BSP_OK);
    assert_string_equal(
        sig, "t=1700000000,v1=54fb31b0b25aedfc99623f3e93bafcf553147479b789e186d467bc6ce55c7928");
    assert_true(webhook_verify(SECRET, sig, body, strlen(body), 1700000000, 300));
    assert_true(webhook_verify(SECRET, sig, body, strlen(body), 1700000299, 300));
    assert_false(webhook_verify(SECRET, sig, body, strlen(body), 1700000301, 300)); /* stale */
    assert_false(webhook_verify("other", sig, body, strlen(body), 1700000000, 300));
    assert_false(webhook_verify(SECRET, sig, body, strlen(body) - 1, 1700000000, 300));
    assert_false(webhook_verify(SECRET, "t=1700000000", body, strlen(body), 1700000000, 300));
    assert_false(webhook_verify(SECRET, "v1=00,t=1", body, strlen(body), 1, 300));
    assert_false(webhook_verify(SECRET, NULL, body, strlen(body), 1700000000, 300));
}

static void test_delivers_signed_payload(void **state) {
    (void)state;
    receiver r;
    receiver_start(&r, NULL, 0);
    bsp_webhook *w;
    assert_int_equal(webhook_start(&fast, &w), BSP_OK);
    char url[128];
    url_of(&r, url, sizeof url);
    assert_int_equal(webhook_enqueue(w, url, SECRET, payload, strlen(payload)), BSP_OK);
    bsp_webhook_metrics m = wait_settled(w, 1);
    assert_int_equal(m.sent, 1);
    assert_int_equal(m.failed + m.retried + m.dropped + m.queued, 0);
    webhook_stop(w);
    assert_int_equal(receiver_count(&r), 1);
    seen *s = &r.seen[0];
    assert_string_equal(s->body, payload);
    assert_string_equal(s->content_type, "application/json");
    assert_int_equal(s->attempt, 1);
    assert_int_equal(strlen(s->delivery), 32);
    int64_t now = (int64_t)time(NULL);
    assert_true(webhook_verify(SECRET, s->signature, s->body, strlen(s->body), now, 60));
    assert_false(webhook_verify("wrong", s->signature, s->body, strlen(s->body), now, 60));
    receiver_stop(&r);
}

static void test_unsigned_without_secret(void **state) {
    (void)state;
    receiver r;
    receiver_start(&r, NULL, 0);
    bsp_webhook *w;
    assert_int_equal(webhook_start(&fast, &w), BSP_OK);
    char url[128];
    url_of(&r, url, sizeof url);
    assert_int_equal(webhook_enqueue(w, url, NULL, "{}", 2), BSP_OK);
    assert_int_equal(wait_settled(w, 1).sent, 1);
    webhook_stop(w);
    assert_string_equal(r.seen[0].signature, "");
    assert_string_equal(r.seen[0].body, "{}");
    receiver_stop(&r);
}

static void test_retries_after_500(void **state) {
    (void)state;
    static const int statuses[] = {500, 200};
    receiver r;
    receiver_start(&r, statuses, 2);
    bsp_webhook *w;
    assert_int_equal(webhook_start(&fast, &w), BSP_OK);
    char url[128];
    url_of(&r, url, sizeof url);
    assert_int_equal(webhook_enqueue(w, url, SECRET, payload, strlen(payload)), BSP_OK);
    bsp_webhook_metrics m = wait_settled(w, 1);
    webhook_stop(w);
    assert_int_equal(m.sent, 1);
    assert_int_equal(m.retried, 1);
    assert_int_equal(m.failed, 0);
    assert_int_equal(receiver_count(&r), 2);
    assert_string_equal(r.seen[0].delivery, r.seen[1].delivery);
    assert_int_equal(r.seen[0].attempt, 1);
    assert_int_equal(r.seen[1].attempt, 2);
    assert_string_equal(r.seen[1].body, payload);
    int64_t now = (int64_t)time(NULL);
    assert_true(webhook_verify(SECRET, r.seen[1].signature, payload, strlen(payload), now, 60));
    receiver_stop(&r);
}

static void test_gives_up_after_max_attempts(void **state) {
    (void)state;
    static const int statuses[] = {503};
    receiver r;
    receiver_start(&r, statuses, 1);
    bsp_webhook_opts o = fast;
    o.max_attempts = 3;
    bsp_webhook *w;
    assert_int_equal(webhook_start(&o, &w), BSP_OK);
    char url[128];
    url_of(&r, url, sizeof url);
    assert_int_equal(webhook_enqueue(w, url, SECRET, payload, strlen(payload)), BSP_OK);
    bsp_webhook_metrics m = wait_settled(w, 1);
    assert_int_equal(m.failed, 1);
    assert_int_equal(m.retried, 2);
    assert_int_equal(m.sent, 0);
    assert_int_equal(m.queued, 0);
    sleep_ms(150); /* no fourth attempt comes */
    assert_int_equal(receiver_count(&r), 3);
    webhook_stop(w);
    receiver_stop(&r);
}

static void test_refusal_is_final(void **state) {
    (void)state;
    static const int statuses[] = {410};
    receiver r;
    receiver_start(&r, statuses, 1);
    bsp_webhook *w;
    assert_int_equal(webhook_start(&fast, &w), BSP_OK);
    char url[128];
    url_of(&r, url, sizeof url);
    assert_int_equal(webhook_enqueue(w, url, SECRET, payload, strlen(payload)), BSP_OK);
    bsp_webhook_metrics m = wait_settled(w, 1);
    webhook_stop(w);
    assert_int_equal(m.failed, 1);
    assert_int_equal(m.retried, 0);
    assert_int_equal(receiver_count(&r), 1);
    receiver_stop(&r);
}

static void test_timeout_is_retried(void **state) {
    (void)state;
    receiver r;
    receiver_start(&r, NULL, 0);
    r.delay_ms = 400;
    bsp_webhook_opts o = fast;
    o.timeout_ms = 100;
    o.max_attempts = 2;
    bsp_webhook *w;
    assert_int_equal(webhook_start(&o, &w), BSP_OK);
    char url[128];
    url_of(&r, url, sizeof url);
    assert_int_equal(webhook_enqueue(w, url, SECRET, "{}", 2), BSP_OK);
    bsp_webhook_metrics m = wait_settled(w, 1);
    webhook_stop(w);
    assert_int_equal(m.failed, 1);
    assert_int_equal(m.retried, 1);
    receiver_stop(&r);
}

static void test_full_queue_drops(void **state) {
    (void)state;
    receiver r; /* started then stopped: its port now refuses connections */
    receiver_start(&r, NULL, 0);
    char url[128];
    url_of(&r, url, sizeof url);
    receiver_stop(&r);
    bsp_webhook_opts o = {.queue_max = 2, .backoff_ms = 60000, .flush_ms = 100};
    bsp_webhook *w;
    assert_int_equal(webhook_start(&o, &w), BSP_OK);
    assert_int_equal(webhook_enqueue(w, url, SECRET, "{}", 2), BSP_OK);
    assert_int_equal(webhook_enqueue(w, url, SECRET, "{}", 2), BSP_OK);
    assert_int_equal(webhook_enqueue(w, url, SECRET, "{}", 2), BSP_EBUSY);
    bsp_webhook_metrics m;
    webhook_metrics(w, &m);
    assert_int_equal(m.dropped, 1);
    assert_int_equal(m.queued, 2);
    webhook_stop(w); /* both wait a minute for a retry: given up at stop */
}

static void test_stop_flushes_queue(void **state) {
    (void)state;
    receiver r;
    receiver_start(&r, NULL, 0);
    bsp_webhook *w;
    assert_int_equal(webhook_start(&fast, &w), BSP_OK);
    char url[128], body[64];
    url_of(&r, url, sizeof url);
    for (int i = 0; i < 40; i++) {
        int n = snprintf(body, sizeof body, "{\"n\":%d}", i);
        assert_int_equal(webhook_enqueue(w, url, SECRET, body, (size_t)n), BSP_OK);
    }
    webhook_stop(w);
    assert_int_equal(receiver_count(&r), 40);
    receiver_stop(&r);
}

static void test_rejects_bad_input(void **state) {
    (void)state;
    bsp_webhook *w;
    assert_int_equal(webhook_start(NULL, &w), BSP_OK);
    assert_int_equal(webhook_enqueue(w, "ftp://example.invalid/x", NULL, "{}", 2), BSP_EINVAL);
    assert_int_equal(webhook_enqueue(w, NULL, NULL, "{}", 2), BSP_EINVAL);
    assert_int_equal(webhook_enqueue(w, "http://127.0.0.1:1/", NULL, NULL, 3), BSP_EINVAL);
    webhook_stop(w);
    webhook_stop(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_known_vector),
        cmocka_unit_test(test_delivers_signed_payload),
        cmocka_unit_test(test_unsigned_without_secret),
        cmocka_unit_test(test_retries_after_500),
        cmocka_unit_test(test_gives_up_after_max_attempts),
        cmocka_unit_test(test_refusal_is_final),
        cmocka_unit_test(test_timeout_is_retried),
        cmocka_unit_test(test_full_queue_drops),
        cmocka_unit_test(test_stop_flushes_queue),
        cmocka_unit_test(test_rejects_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
