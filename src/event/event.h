/* event.h - the event model: parsing and validating Segment Tracking API
 * messages (and RudderStack's variant) into normalized events, batch bodies
 * with batch-level context, size limits, and the write key found in a body.
 *
 * A normalized event is a JSON object in Segment's shape with:
 *   type        "track" | "identify" | "page" | "screen" | "group" | "alias"
 *   messageId   as sent, or generated ("bsp-" + 32 hex) when absent or ""
 *   userId / anonymousId   strings (numbers are converted; "" and null mean
 *               absent and are removed); at least one is required
 *   timestamp   ISO 8601 UTC ("...T...Z"): timestamp, else originalTimestamp,
 *               else receivedAt; an unparsable one is an error
 *   receivedAt  when Bespoke received it (a client's value is replaced)
 *   traits      identify/group traits; for RudderStack identify,
 *               context.traits fill what top-level traits lack
 *   event, name, properties, context, integrations, previousId, groupId
 *               (groupId and previousId numbers are converted to strings)
 * Required: track needs event; alias needs previousId and userId; group needs
 * groupId. traits, context, properties and integrations must be objects when
 * present (null is dropped). Unknown top-level fields (sentAt, channel, ...)
 * are kept: they are the sender's data. writeKey is removed so the key never
 * reaches storage.
 *
 * Errors: a wrong type, a missing required field or a value over a length
 * limit (ids, names, writeKey) is BSP_ETYPE with `at` the field's JSON path;
 * an event whose normalized text is over BSP_EVENT_MAX_BYTES is BSP_ETOOBIG. */
#ifndef BSP_EVENT_H
#define BSP_EVENT_H

#include <cJSON.h>

#include "core/core.h"
#include "json/json.h"

#define BSP_EVENT_MAX_BYTES (32 * 1024)    /* one event, normalized (ev->text) */
#define BSP_REQUEST_MAX_BYTES (500 * 1024) /* one request body, decoded */
#define BSP_BATCH_MAX_EVENTS 2500          /* events in one batch */
#define BSP_ID_MAX_BYTES 255               /* userId, anonymousId, messageId, previousId */
#define BSP_NAME_MAX_BYTES 200             /* track event name, page/screen name */
#define BSP_WRITE_KEY_MAX_BYTES 127        /* a body's writeKey (fits write_key) */

typedef enum bsp_event_type {
    BSP_EV_TRACK,
    BSP_EV_IDENTIFY,
    BSP_EV_PAGE,
    BSP_EV_SCREEN,
    BSP_EV_GROUP,
    BSP_EV_ALIAS,
    BSP_EV_TYPE_COUNT
} bsp_event_type;

/* Bytes several events of one list share (see frame below): what the
 * store's store_event_pack_frame made, and the seq of the member whose log
 * value holds them (the writer's; 0 until one does). */
typedef struct bsp_event_frame {
    char *bytes;
    size_t len;
    uint64_t holder;
} bsp_event_frame;

/* The members of an event's context that applying it to a profile reads:
 * objects, and a string; NULL when absent or of another type. */
typedef struct bsp_event_context {
    const cJSON *traits, *location, *device, *consent;
    const char *user_agent;
} bsp_event_context;

typedef struct bsp_event {
    bsp_event_type type;
    int64_t ts_ms;          /* event time (see timestamp above) */
    bool ts_given;          /* the sender set timestamp/originalTimestamp */
    bool id_generated;      /* messageId made by Bespoke: no resend can repeat it */
    const char *message_id; /* the strings below point into json */
    const char *user_id;    /* NULL when anonymous */
    const char *anonymous_id;
    const char *previous_id; /* alias only */
    const char *name;        /* track: event; page/screen: name; else NULL */
    /* Members of json that appliers read, found when the event is made (the
     * writer then walks no member list of a tree another thread built);
     * NULL when absent or not an object. */
    const cJSON *context;
    const cJSON *properties;
    const cJSON *traits;
    bsp_event_context context_parts; /* of context, found likewise */
    cJSON *json;                     /* owned: the normalized event */
    bool json_in_arena;              /* json lives in its list's arena: event_free leaves it */
    char *text;                      /* owned: compact JSON of json, what is stored */
    size_t text_len;
    bool text_in_arena; /* text lives in the arena json came from: event_free leaves it */
    char *packed;       /* owned, or NULL: text packed by the store (ingest_submit) */
    size_t packed_len;
    /* Or the event's text is packed with those of other events of its list
     * (the same visitor's) in one frame (ingest_submit), which the first
     * member owns and event_free frees with it. */
    struct bsp_event_frame *frame;
    uint32_t frame_index; /* this event's place in the frame */
    bool frame_owner;
    /* catalog_event_facts of the event, worked out by ingest_submit on the
     * submitting thread so the writer does not; valid when facts_known. */
    uint64_t facts;
    bool facts_known;
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
 * for a wrong field with its path, or at at_prefix itself when msg is not an
 * object; BSP_ETOOBIG over the size limits) and the event is left empty
 * (all zero; event_free is safe). err may be NULL. The event owns its json
 * and text; moving the struct (e.g. into ingest) keeps its pointers valid.
 * msg is taken, not copied: it becomes the event's json, or is freed on
 * error. It must be a malloc'd tree, or one of the arena the calling thread
 * has entered (json.h), with ev->json_in_arena then set by the caller. */
bsp_err event_from_json(cJSON *msg, bsp_event_type forced_type, const cJSON *batch_ctx,
                        const cJSON *batch_integrations, int64_t received_ms, const char *at_prefix,
                        bsp_event *out, bsp_error *err);

/* One message's text (a line of a Segment JSONL file) parsed and made an
 * event as event_from_json makes it. With spans (a table the caller keeps
 * from line to line), objects normalization leaves alone are copied from
 * the text into ev->text as event_parse_body copies them; spans may be
 * given only while the calling thread has entered an arena (json.h), which
 * then holds the tree (ev->json_in_arena is the caller's to set). */
bsp_err event_from_text(const char *text, size_t len, json_spans *spans, int64_t received_ms,
                        bsp_event *out, bsp_error *err);

void event_free(bsp_event *ev); /* frees contents, not ev itself */

/* Points ev's ids, name, context, properties and traits at the members of
 * ev->json, as event_from_json does; for an event made by hand (tests).
 * ev->type must be set. */
void event_point_into_json(bsp_event *ev);

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
    char write_key[BSP_WRITE_KEY_MAX_BYTES + 1]; /* body's writeKey, "" if none */
    json_arena *arena;   /* owned, or NULL: holds the events' json (see json.h) */
    bool items_in_arena; /* items lives in arena: whoever frees the arena frees it */
} bsp_event_list;

/* Parses a whole body (already decompressed). The events' json and text,
 * and the items of a batch, live in an arena the list owns (when one can be
 * had): they last as long as the list, or whatever takes the arena over,
 * and are only to be read (json.h). Moving items elsewhere moves
 * items_in_arena with it.
 * route_type is the route's type, or BSP_EV_TYPE_COUNT for /v1/batch, whose body is {"batch":[...],
 * context, integrations, writeKey} (a bare array of messages is accepted too). In a batch every
 * message needs a valid `type`; errors are placed at "batch[i].field" ("[i].field" for a bare
 * array). Batch-level context and integrations are deep-merged under each message's own (the
 * message wins).
 *
 * Limits: a body over BSP_REQUEST_MAX_BYTES or a batch of more than
 * BSP_BATCH_MAX_EVENTS messages is BSP_ETOOBIG; bad JSON is BSP_EPARSE at
 * "line L, column C"; nesting deeper than BSP_JSON_MAX_DEPTH is BSP_ETOOBIG.
 * A single-type route needs an object body and a batch route an object with
 * a "batch" array or an array (else BSP_EINVAL; "batch" of the wrong type,
 * or a batch-level context/integrations that is not an object, BSP_ETYPE).
 *
 * Policy: in a batch, valid messages are kept and invalid ones listed in
 * rejects (with their index and error); the call fails only when the body
 * itself is bad or no message at all is valid (then err is the first
 * reject's error). An empty batch is valid and yields no events.
 *
 * write_key is the body's top-level writeKey, else the first message's that
 * has one. It is filled as soon as the body parses, even when the call then
 * fails, so the caller can answer 401 before 422. On failure out holds no
 * events but may hold rejects; event_list_free is always safe to call. */
bsp_err event_parse_body(const char *body, size_t len, bsp_event_type route_type,
                         int64_t received_ms, bsp_event_list *out, bsp_error *err);
void event_list_free(bsp_event_list *list);

#endif
