/* decide.h - the decision pipeline: for one visitor and the page's context,
 * pick per placement the campaign to show (or the placement's default),
 * with a signed token to report impressions and clicks with.
 *
 * One decision reads one store read transaction (identity, profile,
 * products) and the campaign snapshot of the registry; it never waits for
 * the writer. Per placement, campaigns are tried by priority: schedule,
 * frequency cap (profile_campaign_exposure), condition (cond_eval on one
 * segment_env for the whole request), then the control share (a stable
 * hash of profile and campaign) and, for coupon pools, a code for the
 * visitor. Without personalization consent every placement gets its
 * default.
 *
 * Tokens: "v1.<base64url(payload)>.<base64url(HMAC-SHA256(key, payload))>"
 * with payload {"c": campaign, "p": placement, "v": variant, "pid": profile
 * id (0 for a visitor not stored yet), "t": ms}; the 32-byte key is made on
 * first start and kept in the store's meta ("decide_token_key"). */
#ifndef BSP_DECIDE_H
#define BSP_DECIDE_H

#include "campaign/campaign.h"
#include "core/core.h"
#include "event/event.h"
#include "ingest/ingest.h"
#include "profile/profile.h"
#include "store/store.h"

#define DECIDE_BODY_MAX (32 * 1024) /* bytes of a /v1/decide body */
#define DECIDE_PLACEMENTS_MAX 16    /* placements in one request */
#define DECIDE_EVENT_BODY_MAX 8192  /* bytes of a /v1/events body */
#define DECIDE_TOKEN_MAX 512        /* bytes of a token */
#define DECIDE_TOKEN_KEY_BYTES 32
#define DECIDE_TOKEN_TTL_MS (30LL * 24 * 3600 * 1000) /* tokens older are refused */

/* --- requests ---------------------------------------------------------------------- */

typedef struct decide_request {
    cJSON *root;         /* owned: the parsed body */
    const char *user_id; /* point into root; NULL when absent */
    const char *anonymous_id;
    const cJSON *context; /* object or NULL */
    const char *placements[DECIDE_PLACEMENTS_MAX];
    size_t placement_count;                      /* distinct, in request order */
    char write_key[BSP_WRITE_KEY_MAX_BYTES + 1]; /* body's writeKey, "" if none */
} decide_request;

/* Parses {"userId"|"anonymousId", "context", "placements": [...], "writeKey"}.
 * Ids are strings (numbers are converted) of at most BSP_ID_MAX_BYTES; one
 * is required. Errors: bad JSON BSP_EPARSE; not an object BSP_EINVAL; a
 * wrong field BSP_ETYPE with at = its path; over DECIDE_BODY_MAX or
 * DECIDE_PLACEMENTS_MAX BSP_ETOOBIG. decide_request_free is always safe. */
bsp_err decide_request_parse(const char *body, size_t len, decide_request *out, bsp_error *err);
void decide_request_free(decide_request *req);

/* --- tokens ------------------------------------------------------------------------ */

typedef struct decide_token {
    char campaign[CAMPAIGN_ID_MAX + 1];
    char placement[CAMPAIGN_ID_MAX + 1];
    char variant[16]; /* treatment | control */
    uint64_t pid;
    int64_t t_ms;
} decide_token;

/* Loads the key from the store's meta, or makes and stores it. */
bsp_err decide_token_key(bsp_store *st, uint8_t key[DECIDE_TOKEN_KEY_BYTES]);
/* Writes the token (NUL-terminated) to out; BSP_ETOOBIG if cap is short. */
bsp_err decide_token_sign(const uint8_t key[DECIDE_TOKEN_KEY_BYTES], const decide_token *tok,
                          char *out, size_t cap);
/* Checks shape, signature (constant time) and age; BSP_EFORBIDDEN with a
 * message when the token is not one of ours or too old. */
bsp_err decide_token_verify(const uint8_t key[DECIDE_TOKEN_KEY_BYTES], const char *token,
                            int64_t now_ms, decide_token *out, bsp_error *err);

/* --- impression and click reports (POST /v1/events) -------------------------------- */

/* Parses {"type": "impression"|"click", "token", "userId"|"anonymousId",
 * "timestamp"?, "messageId"?, "writeKey"?}, verifies the token, and builds
 * the track event "Promotion Viewed" / "Promotion Clicked" with properties
 * {promotion_id, creative, variant, token} in *out (free with event_free).
 * write_key receives the body's writeKey ("" if none). */
bsp_err decide_event_parse(const uint8_t key[DECIDE_TOKEN_KEY_BYTES], const char *body, size_t len,
                           int64_t now_ms, bsp_event *out,
                           char write_key[BSP_WRITE_KEY_MAX_BYTES + 1], bsp_error *err);

/* --- the decider ------------------------------------------------------------------- */

/* Fills a product block: appends up to n item objects {id, name, price,
 * currency, image, url, category} to items (a cJSON array). block is the
 * campaign's content ({strategy, n, filters}); profile and context describe
 * the visitor. Runs inside the decision's read transaction. */
typedef bsp_err (*decide_products_fn)(void *ctx, bsp_txn *txn, const bsp_profile *profile,
                                      const cJSON *context, const cJSON *block, int n,
                                      cJSON *items);

typedef struct decide_opts {
    bool require_consent; /* no stated personalization consent = defaults only */
} decide_opts;

typedef struct bsp_decider bsp_decider;

bsp_err decider_new(bsp_store *st, bsp_ingest *ing, campaign_registry *reg, const decide_opts *opts,
                    bsp_decider **out);
void decider_free(bsp_decider *d);
/* Connects the recommendation module; until then product blocks are
 * filled by popularity over the catalog. fn NULL restores that. */
void decider_set_products(bsp_decider *d, decide_products_fn fn, void *ctx);
const uint8_t *decider_token_key(const bsp_decider *d);

/* Decides every placement of req and appends the answer object
 * {"decisions": {...}} to out. */
bsp_err decide_run(bsp_decider *d, const decide_request *req, int64_t now_ms, bsp_buf *out,
                   bsp_error *err);

/* The product fallback on its own (tests, and the recommendation module's
 * last resort): most popular catalog products passing the block's filters. */
bsp_err decide_popular_products(bsp_decider *d, bsp_txn *txn, const bsp_profile *profile,
                                const cJSON *context, const cJSON *block, int n, cJSON *items);

/* Decision latency histogram for /metrics (bounds in microseconds). */
#define DECIDE_LAT_BUCKETS 10
extern const double decide_lat_bounds_us[DECIDE_LAT_BUCKETS];
typedef struct decide_metrics {
    uint64_t decisions;
    uint64_t lat_counts[DECIDE_LAT_BUCKETS + 1]; /* last = +Inf */
    double lat_sum_us;
} decide_metrics;
void decide_metrics_get(bsp_decider *d, decide_metrics *out);

#endif
