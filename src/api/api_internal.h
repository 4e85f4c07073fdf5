/* api_internal.h - what the files of src/api/ share and nothing outside
 * includes: the server state, the per-request state, the route table, the
 * response helpers and the entry points of each endpoint family.
 *
 *   server.c   daemon, lifecycle, signals, keys and the ingest guard
 *   listener.c the listening socket and its accept thread
 *   http.c     access handler: body accumulation, gzip, CORS, responses
 *   route.c    path -> route, allowed methods, metric labels
 *   collect.c  the Segment collection endpoints (suspend/resume on ingest)
 *   admin.c    the admin API (profiles, products, stats)
 *   segments.c the admin API of segments (CRUD, preview, members)
 *   catalog.c  the public catalog a storefront reads (write key)
 *   campaigns.c the admin API of campaigns and placements
 *   decide.c   /v1/decide and /v1/events (decisions and their reports)
 *   reco.c     /v1/recommendations, /v1/rank, the model service
 *   lookalike.c lookalike audiences of a segment (admin)
 *   metrics.c  request counters, /metrics and /healthz
 *   static.c   plain files under web_dir */
#ifndef BSP_API_INTERNAL_H
#define BSP_API_INTERNAL_H

#include <microhttpd.h>
#include <stdatomic.h>

#include "api/api.h"
#include "campaign/campaign.h"
#include "core/core.h"
#include "decide/decide.h"
#include "event/event.h"
#include "ingest/ingest.h"
#include "predict/predict.h"
#include "reco/reco.h"
#include "segment/segment.h"
#include "webhook/webhook.h"
#include "store/store.h"

#define API_KEY_MAX 128                           /* longest accepted key, with NUL */
#define API_BULK_MAX_BYTES (16u * 1024 * 1024)    /* POST /v1/admin/products, decoded */
#define API_DISCARD_MAX_BYTES (64u * 1024 * 1024) /* body thrown away before we hang up */

/* --- routes ---------------------------------------------------------------- */

typedef enum api_route {
    ROUTE_OTHER, /* no such path */
    ROUTE_HEALTHZ,
    ROUTE_METRICS,
    ROUTE_TRACK,
    ROUTE_IDENTIFY,
    ROUTE_PAGE,
    ROUTE_SCREEN,
    ROUTE_GROUP,
    ROUTE_ALIAS,
    ROUTE_BATCH,
    ROUTE_BEACON_BATCH,
    ROUTE_DECIDE,
    ROUTE_EVENTS,
    ROUTE_RECOMMENDATIONS,
    ROUTE_RANK,
    ROUTE_ADMIN_PROFILE,
    ROUTE_ADMIN_PROFILE_EVENTS,
    ROUTE_ADMIN_PROFILE_EXPORT,
    ROUTE_ADMIN_STATS,
    ROUTE_ADMIN_SEGMENTS,
    ROUTE_ADMIN_SEGMENTS_PREVIEW,
    ROUTE_ADMIN_SEGMENT,
    ROUTE_ADMIN_SEGMENT_MEMBERS,
    ROUTE_ADMIN_SEGMENT_LOOKALIKE,
    ROUTE_ADMIN_CAMPAIGNS,
    ROUTE_ADMIN_CAMPAIGN,
    ROUTE_ADMIN_PLACEMENTS,
    ROUTE_ADMIN_PLACEMENT,
    ROUTE_ADMIN_PRODUCTS,
    ROUTE_ADMIN_PRODUCT,
    ROUTE_CATALOG_PRODUCTS,
    ROUTE_CATALOG_PRODUCT,
    ROUTE_CATALOG_CATEGORIES,
    ROUTE_STATIC,
    ROUTE_COUNT
} api_route;

enum api_method {
    METHOD_GET = 1 << 0,
    METHOD_HEAD = 1 << 1,
    METHOD_POST = 1 << 2,
    METHOD_PUT = 1 << 3,
    METHOD_DELETE = 1 << 4,
    METHOD_OPTIONS = 1 << 5,
    METHOD_OTHER = 1 << 6,
};

unsigned api_method_parse(const char *method);
/* Matches a raw (still percent-encoded) path. For routes with an id, *id_raw
 * and *id_len give the id's undecoded bytes inside path. */
api_route api_route_match(const char *path, bool web_files, const char **id_raw, size_t *id_len);
unsigned api_route_methods(api_route r);  /* METHOD_* bits */
const char *api_route_label(api_route r); /* "/v1/admin/profiles/{id}" */
bool api_route_is_collect(api_route r);
bool api_route_is_admin(api_route r);
/* "GET, HEAD, DELETE" for the Allow header. */
void api_methods_text(unsigned methods, char *out, size_t cap);

/* --- listener ------------------------------------------------------------------ */

/* One lane of HTTP workers per HTTP thread asked for: a near worker that
 * waits with poll(2) and takes the lane's first API_LANE_NEAR_MAX
 * connections, and a far worker that waits with epoll and takes the rest
 * (listener.c says why two). Each is a libmicrohttpd daemon with one thread
 * and no listen socket. near_held counts the connections the listener gave
 * near and libmicrohttpd has not closed yet: it is raised by the listener
 * before the hand-over and lowered by the near daemon's close notification,
 * so it never counts fewer than near holds. */
#define API_LANE_NEAR_MAX 64

typedef struct api_lane {
    struct MHD_Daemon *near;
    struct MHD_Daemon *far;
    atomic_uint near_held;
} api_lane;

typedef struct api_listener api_listener;

/* Binds and listens on "host:port" ("[v6]:port", ":port"); logs why not. */
bsp_err api_listener_open(const char *address, api_listener **out);
uint16_t api_listener_port(const api_listener *l); /* the bound one, when 0 was asked */
/* Accepts on a thread of its own and hands each connection to a worker of
 * one of the count lanes, which must outlive l. */
bsp_err api_listener_start(api_listener *l, api_lane *lanes, unsigned count);
/* Refuses new connections from now on, ends the thread, frees. NULL is fine. */
void api_listener_close(api_listener *l);
/* Connections a worker holds, by libmicrohttpd's own count (which lags a
 * burst of hand-overs). */
unsigned api_daemon_connections(struct MHD_Daemon *d);
/* The near worker's close notification (MHD_OPTION_NOTIFY_CONNECTION), cls
 * being its lane. */
void api_lane_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                     enum MHD_ConnectionNotificationCode code);

/* --- server state ------------------------------------------------------------ */

#define API_STATUS_SLOTS 16

typedef struct api_server {
    api_lane *lanes; /* HTTP workers: two daemons, one thread each, a lane */
    unsigned lane_count;
    api_listener *listener; /* accepts for the workers; closed when draining begins */
    bsp_store *store;
    bsp_ingest *ingest;
    bsp_segments *segments;
    bsp_webhook *webhooks;
    rfm_schedule *rfm;         /* periodic RFM scoring, NULL when off */
    predict_schedule *predict; /* periodic predictive scores, NULL when off */
    const char *web_dir;
    char write_key[API_KEY_MAX];
    size_t write_key_len;
    char admin_key[API_KEY_MAX];
    size_t admin_key_len;
    atomic_bool draining;         /* shutting down: no new ingest work */
    atomic_uint ingest_users;     /* HTTP threads inside an ingest_* call */
    atomic_uint requests_open;    /* requests begun and not yet completed */
    struct MHD_Response *success; /* shared {"success":true} for callers without Origin */
    campaign_registry *campaigns; /* the campaign snapshot decisions read */
    bsp_decider *decider;
    struct reco_service *reco; /* recommendation snapshots and their training */
    _Atomic uint64_t requests[ROUTE_COUNT][API_STATUS_SLOTS];
} api_server;

/* Constant-time comparison of a presented key with a configured one. */
bool api_key_equal(const char *given, size_t given_len, const char *want, size_t want_len);
/* Enter/leave a call into ingest; false (and nothing held) while draining. */
bool api_ingest_acquire(api_server *srv);
void api_ingest_release(api_server *srv);

/* --- per-request state --------------------------------------------------------- */

enum api_encoding { ENCODING_NONE, ENCODING_ZLIB };

enum api_async { ASYNC_NONE, ASYNC_WAITING, ASYNC_DONE };

typedef struct api_req {
    api_server *srv;
    struct MHD_Connection *conn;
    const char *url; /* raw path, owned by MHD for the request's life */
    api_route route;
    unsigned method;
    char *id;        /* decoded id from the path (admin), owned */
    bsp_buf body;    /* the upload as received, then decoded in place */
    size_t body_max; /* decoded size limit */
    enum api_encoding encoding;
    size_t discarded;  /* upload bytes dropped because an answer is decided */
    bsp_error pending; /* code != BSP_OK: the answer is this error */
    /* Collection, while the writer commits. */
    atomic_int async;
    bsp_ingest_result result;
    size_t submitted;
    bsp_event *events;      /* lent to ingest until it calls back; freed here */
    json_arena *json_arena; /* owned: holds the events' json, freed after them */
    bool events_in_arena;   /* events itself is in json_arena (see event_parse_body) */
    bsp_event_reject *rejects;
    size_t reject_count;
} api_req;

/* Looks up a query argument and percent-decodes it into out. */
enum api_query_result { QUERY_ABSENT, QUERY_FOUND, QUERY_TOO_LONG };
enum api_query_result api_query(api_req *req, const char *name, char *out, size_t cap);
const char *api_header(api_req *req, const char *name);

/* --- responses (http.c): each queues the answer and counts it ------------------- */

/* Takes body->data (must be malloc'd through bsp_buf). */
enum MHD_Result api_reply_buf(api_req *req, int status, bsp_buf *body);
/* text must outlive the response (a literal). */
enum MHD_Result api_reply_static(api_req *req, int status, const char *text);
enum MHD_Result api_reply_error(api_req *req, const bsp_error *err);
enum MHD_Result api_reply_errorf(api_req *req, bsp_err code, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
enum MHD_Result api_reply_success(api_req *req); /* 200 {"success":true} */
/* Adds the common headers (CORS, Content-Type) and queues. Takes resp. */
enum MHD_Result api_queue(api_req *req, int status, struct MHD_Response *resp,
                          const char *content_type);
struct MHD_Response *api_make_success_response(void);

/* The MHD callbacks. */
enum MHD_Result api_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls);
void api_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe);

/* --- endpoint families ------------------------------------------------------------ */

enum MHD_Result collect_handle(api_req *req);
enum MHD_Result collect_answer(api_req *req); /* after the writer resumed us */
/* Suspends and hands the list's events to ingest (taking them from list);
 * answered by collect_answer once durable. */
enum MHD_Result collect_submit(api_req *req, bsp_event_list *list);
/* The write key of a non-Segment endpoint: HTTP Basic username, else
 * body_key (may be NULL or ""), else ?writeKey=. */
bsp_err collect_check_key(api_req *req, const char *body_key, bsp_error *err);
void collect_req_free(api_req *req);

bsp_err admin_authenticate(api_req *req, bsp_error *err);
enum MHD_Result admin_handle(api_req *req);
/* A read transaction that sees every event acknowledged before the call
 * (waits for the writer's next checkpoint). */
bsp_err admin_read_begin(api_req *req, bsp_txn **txn);
enum MHD_Result admin_reply_json(api_req *req, int status, const cJSON *item);

enum MHD_Result segments_handle(api_req *req);
enum MHD_Result catalog_handle(api_req *req);

enum MHD_Result campaigns_handle(api_req *req);
/* The campaign registry and the decider: started after ingest, stopped
 * before it (the registry's worker runs ingest jobs), freed at the end. */
bsp_err campaigns_start(api_server *srv, bool require_consent);
void campaigns_stop(api_server *srv);
void campaigns_close(api_server *srv);
enum MHD_Result decide_handle(api_req *req);
/* The decision latency histogram for /metrics. */
bsp_err decide_write_metrics(api_server *srv, bsp_buf *out);

/* Recommendations (reco.c): the newest saved snapshot loaded at start, a
 * training thread every interval_ms (0 = none); stop before ingest stops
 * (training waits for checkpoints), close at the end. */
typedef struct reco_service reco_service;
bsp_err reco_service_start(api_server *srv, const char *data_dir, uint64_t interval_ms,
                           const char *affinity_attributes);
void reco_service_stop(api_server *srv);
void reco_service_close(api_server *srv);
/* The holder other modules recommend from (reco_for_profile); may be NULL. */
reco_holder *reco_service_holder(api_server *srv);
enum MHD_Result reco_handle(api_req *req); /* /v1/recommendations, /v1/rank */
/* Request counters, latency histogram and snapshot version/age for /metrics. */
bsp_err reco_write_metrics(api_server *srv, bsp_buf *out);
/* GET/POST /v1/admin/segments/{id}/lookalike (lookalike.c). */
enum MHD_Result lookalike_handle(api_req *req);
/* Fills campaign product blocks from the recommendation module (ctx = the
 * server): a decide_products_fn. */
bsp_err reco_block_products(void *ctx, bsp_txn *txn, const bsp_profile *profile,
                            const cJSON *context, const cJSON *block, int n, cJSON *items);

void metrics_count(api_server *srv, api_route route, int status);
enum MHD_Result metrics_handle(api_req *req);
enum MHD_Result health_handle(api_req *req);

enum MHD_Result static_handle(api_req *req, const char *path);

#endif
