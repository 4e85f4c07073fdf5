/* event.h - the event model: parsing and validating Segment Tracking API
 * messages (and RudderStack's variant) into normalized events, batch bodies
 * with batch-level context, size limits, and the write key found in a body.
 *
 * A normalized event is a JSON object in Segment's shape with:
 *   type        "track" | "identify" | "page" | "screen" | "group" | "alias"
 *   messageId   as sent, or generated ("bsp-" + 32 hex) when absent
 *   userId / anonymousId   strings (numbers are converted; "" means absent)
 *   timestamp   ISO 8601: timestamp, else originalTimestamp, else receivedAt
 *   receivedAt  when Bespoke received it
 *   traits      identify/group traits; for RudderStack, context.traits too
 *   event, name, properties, context, integrations, previousId, groupId
 * Unknown top-level fields are kept (they are the sender's data); writeKey is
 * removed so the key never reaches storage. */
#ifndef BSP_EVENT_H
#define BSP_EVENT_H

#include <cJSON.h>

#include "core/core.h"

#define BSP_EVENT_MAX_BYTES (32 * 1024)   /* one event, as received */
#define BSP_REQUEST_MAX_BYTES (500 * 1024) /* one request body, decoded */
#define BSP_BATCH_MAX_EVENTS 2500          /* events in one batch */
#define BSP_ID_MAX_BYTES 255               /* userId, anonymousId, messageId, previousId */
#define BSP_NAME_MAX_BYTES 200             /* track event name, page name */

typedef enum bsp_event_type {
    BSP_EV_TRACK,
    BSP_EV_IDENTIFY,
    BSP_EV_PAGE,
    BSP_EV_SCREEN,
    BSP_EV_GROUP,
    BSP_EV_ALIAS,
    BSP_EV_TYPE_COUNT
} bsp_event_type;

typedef struct bsp_event {
    bsp_event_type type;
    int64_t ts_ms;           /* event time (see timestamp above) */
    const char *message_id;  /* the strings below point into json */
    const char *user_id;     /* NULL when anonymous */
    const char *anonymous_id;
    const char *previous_id; /* alias only */
    const char *name;        /* track: event; page/screen: name; else NULL */
    cJSON *json;             /* owned: the normalized event */
    char *text;              /* owned: compact JSON of json, what is stored */
    size_t text_len;
} bsp_event;

/* Type from a route or type string: "track"/"t", "identify"/"i", "page"/"p",
 * "screen"/"s", "group"/"g", "alias"/"a". false if unknown. */
bool event_type_from_string(const char *s, bsp_event_type *out);
const char *event_type_name(bsp_event_type t);

/* Normalizes one message. msg is borrowed (copied as needed). forced_type
 * (from the route) wins over msg.type unless it is BSP_EV_TYPE_COUNT, which
 * means "read msg.type" (batches). batch_ctx and batch_integrations (may be
 * NULL) are merged under the message's own context/integrations. at_prefix
 * ("" or "batch[3]") prefixes error positions. On error fills err (BSP_ETYPE
 * for a wrong field with its path, BSP_ETOOBIG over the size limits) and the
 * event is left empty. */
bsp_err event_from_json(const cJSON *msg, bsp_event_type forced_type, const cJSON *batch_ctx,
                        const cJSON *batch_integrations, int64_t received_ms,
                        const char *at_prefix, bsp_event *out, bsp_error *err);

void event_free(bsp_event *ev); /* frees contents, not ev itself */

/* One rejected message of a batch. */
typedef struct bsp_event_reject {
    size_t index;
    bsp_error error;
} bsp_event_reject;

/* The result of parsing one HTTP body. */
typedef struct bsp_event_list {
    bsp_event *items;
    size_t count;
    bsp_event_reject *rejects; /* messages of a batch that were invalid */
    size_t reject_count;
    char write_key[128];       /* body's writeKey, "" if none */
} bsp_event_list;

/* Parses a whole body (already decompressed). route_type is the route's type,
 * or BSP_EV_TYPE_COUNT for /v1/batch, whose body is {"batch":[...], context,
 * integrations, writeKey} (a bare array is accepted too). Policy: in a batch,
 * valid messages are kept and invalid ones listed in rejects; the call fails
 * only when the body itself is bad (not JSON, too large, not an object) or no
 * message at all is valid (then err describes the first reject). */
bsp_err event_parse_body(const char *body, size_t len, bsp_event_type route_type,
                         int64_t received_ms, bsp_event_list *out, bsp_error *err);
void event_list_free(bsp_event_list *list);

#endif
