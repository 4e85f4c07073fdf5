/* profile.h - a visitor's profile: the ids that resolve to it, traits sent
 * with identify (nested objects kept), consent, and the computed traits
 * Bespoke keeps current on every event, driven by Segment's E-commerce Spec
 * v2 event names. Also the merge of two profiles (identity resolution).
 *
 * Storage form (profile_to_json/profile_from_json) is a JSON object; the
 * public form (profile_public_json) is what the admin API returns:
 *   {"profile_id", "ids": {"userId": [...], "anonymousId": [...]},
 *    "traits": {...}, "computed": {...}, "consent": {...}}
 *
 * Computed traits: first_seen, last_seen, sessions (30 min of inactivity ends
 * one), page_views, product_views, add_to_carts, cart_items, cart_value,
 * orders, revenue (net of Order Refunded / Order Cancelled), aov,
 * last_order_at, favorite_category, favorite_brand (decayed counts),
 * recently_viewed (last 20 product ids), purchased (product ids),
 * last_search, country, device, engaged_seconds / engaged_category /
 * engaged_product (time on product pages from "Product Engaged" events with
 * properties.seconds, decayed). Times are ISO 8601 strings in the public
 * form. */
#ifndef BSP_PROFILE_H
#define BSP_PROFILE_H

#include <cJSON.h>
#include <stdatomic.h>

#include "core/core.h"
#include "event/event.h"

#define BSP_PROFILE_SESSION_GAP_MS (30 * 60 * 1000)
#define BSP_PROFILE_RECENT_MAX 20
#define BSP_PROFILE_MAX_IDS 64 /* ids of one kind kept on a profile */

typedef struct bsp_profile bsp_profile;

bsp_profile *profile_new(uint64_t pid);
void profile_free(bsp_profile *p);
uint64_t profile_pid(const bsp_profile *p);

/* Reads the storage form. BSP_EPARSE if json is not JSON, BSP_ETYPE if it is
 * not a profile in the storage form, BSP_ENOMEM; *out is NULL on error. */
bsp_err profile_from_json(const char *json, size_t len, bsp_profile **out);
/* The two readers behind profile_from_json, public for tests and the
 * fuzzer. profile_scan_json reads only the layout profile_to_json writes,
 * straight from the bytes, and returns false (*out NULL) for anything else
 * or when memory runs out; profile_from_json_tree reads any layout through
 * a cJSON tree. Where the scanner answers, both give the same profile. */
bool profile_scan_json(const char *json, size_t len, bsp_profile **out);
bsp_err profile_from_json_tree(const char *json, size_t len, bsp_profile **out);
/* Appends the storage form to out: compact, everything needed to continue
 * computing; from_json then to_json gives the same bytes. */
bsp_err profile_to_json(const bsp_profile *p, bsp_buf *out);
/* A new cJSON object in the public form; the caller owns it. NULL on OOM. */
cJSON *profile_public_json(const bsp_profile *p);
/* Just the "computed" object of the public form (what conditions read as
 * computed.*); the caller owns it. NULL on OOM. */
cJSON *profile_computed_json(const bsp_profile *p);

/* computed.orders and computed.revenue (net, rounded to cents), read
 * without building the computed object (scans over every profile). */
int64_t profile_orders(const bsp_profile *p);
double profile_revenue(const bsp_profile *p);

/* The computed object for conditions, built without allocating: a view
 * reuses its nodes for every profile it shows. The result is valid until
 * the next call on the same view or profile_view_free, holds pointers into
 * p (keep p unchanged meanwhile), and must not be passed to cJSON_Delete.
 * Same members and values as profile_computed_json. NULL on OOM. One view
 * belongs to one thread at a time. */
typedef struct profile_view profile_view;
profile_view *profile_view_new(void);
void profile_view_free(profile_view *v);
const cJSON *profile_view_computed(profile_view *v, const bsp_profile *p);
/* computed.NAME when NAME is one of the traits that are plain numbers
 * (sessions, page_views, product_views, add_to_carts, cart_items,
 * cart_value, orders, revenue, aov, engaged_seconds): true and the value
 * the computed view shows, else false. name_hash is bsp_hash64 of name. */
bool profile_computed_number(const bsp_profile *p, const char *name, uint64_t name_hash,
                             double *out);
/* computed.NAME when NAME is one of the texts (favorite_category,
 * favorite_brand, last_search, country, device, engaged_category,
 * engaged_product): true and the text the view shows, NULL where it shows
 * null; else false. */
bool profile_computed_text(const bsp_profile *p, const char *name, uint64_t name_hash,
                           const char **out);
/* computed.NAME when NAME is one of the times (first_seen, last_seen,
 * last_order_at): true, *set, and *ms the time the view's text reads back
 * as (*set false where the view shows null, or a text that is not a time);
 * else false. */
bool profile_computed_time(const bsp_profile *p, const char *name, uint64_t name_hash, bool *set,
                           int64_t *ms);

/* Parsed profiles remembered by the storage bytes they came from, for
 * readers that see the same visitors again and again (decisions): parse
 * returns the remembered profile when pid's bytes are unchanged (same
 * 64-bit hash and length), else parses and remembers them. One memo serves
 * any number of threads; capacity (profiles at most) is rounded up to a
 * power of two, at least 16 (sets of 4 slots, see memo.c). The result is
 * borrowed through the caller's hold (one per thread): valid until the
 * next parse with the same hold or profile_hold_release, even if the memo
 * replaces or frees it meanwhile. */
typedef struct profile_memo profile_memo;
typedef struct profile_memo_ref profile_memo_ref;
typedef struct profile_hold {
    profile_memo_ref *ref; /* what the holder borrows; NULL: nothing */
} profile_hold;
profile_memo *profile_memo_new(size_t capacity);
void profile_memo_free(profile_memo *m);
/* stamp, when not 0, is a number the caller vouches for: json was the
 * newest form of pid anyone could read while stamp was current. The slot
 * keeps it (also on a hit, the bytes being the same). */
bsp_err profile_memo_parse(profile_memo *m, profile_hold *hold, uint64_t pid, const char *json,
                           size_t len, uint64_t stamp, const bsp_profile **out);
/* pid's parsed profile if its slot carries stamp (not 0), with no bytes to
 * compare; BSP_ENOTFOUND otherwise. Borrowed as with profile_memo_parse. */
bsp_err profile_memo_peek(profile_memo *m, profile_hold *hold, uint64_t pid, uint64_t stamp,
                          const bsp_profile **out);
void profile_hold_release(profile_hold *hold);
/* Drops pid's parsed profile, if held (erasure; readers holding it keep
 * their reference until they move on). */
void profile_memo_forget(profile_memo *m, uint64_t pid);
/* Reads answered from the memo, reads that parsed, profiles held now, and
 * of the hits those answered by profile_memo_peek on a stamp. */
void profile_memo_stats(const profile_memo *m, uint64_t *hits, uint64_t *misses, uint64_t *held,
                        uint64_t *stamped);

/* Notes readers keep on a parsed profile they share, such as which
 * campaigns it can never match (decide): 256 bits of what is known and 256
 * of the answers, under a key of the reader's choosing (a configuration's
 * version). Set bits are never cleared; what a note says must follow from
 * the profile's content alone, which a parsed profile never changes.
 * profile_note_add publishes n (allocated with malloc; the profile frees
 * it) unless a note of that key is there already or PROFILE_NOTES_MAX are;
 * false then, and n stays the caller's. */
#define PROFILE_NOTE_BITS 256
#define PROFILE_NOTES_MAX 4
typedef struct profile_note {
    struct profile_note *next; /* an older note */
    uint64_t key;
    _Atomic uint64_t known[PROFILE_NOTE_BITS / 64];
    _Atomic uint64_t yes[PROFILE_NOTE_BITS / 64];
} profile_note;
profile_note *profile_note_find(const bsp_profile *p, uint64_t key);
bool profile_note_add(const bsp_profile *p, profile_note *n);
/* Bit i of a note: -1 not known yet, else 0 or 1; and recording it. */
int profile_note_get(const profile_note *n, unsigned i);
void profile_note_put(profile_note *n, unsigned i, bool yes);

/* Borrowed views for conditions and decisions. traits is NULL until the
 * first trait arrives. profile_consent answers for one category of the
 * latest context.consent.categoryPreferences: 1 granted, 0 denied, -1 not
 * stated. profile_last_seen_ms is 0 before the first event. */
const cJSON *profile_traits(const bsp_profile *p);
int profile_consent(const bsp_profile *p, const char *category);
int64_t profile_last_seen_ms(const bsp_profile *p);

/* The newest event-log sequence number applied to this profile, kept in the
 * storage form so that replaying the log after a crash skips what a stored
 * profile already holds. profile_merge keeps the larger. */
uint64_t profile_applied_seq(const bsp_profile *p);
void profile_set_applied_seq(bsp_profile *p, uint64_t seq);

/* Ids: kind 'u' (userId) or 'a' (anonymousId). Adding a present id is a
 * no-op; beyond BSP_PROFILE_MAX_IDS of a kind, new ids are not kept. */
void profile_add_id(bsp_profile *p, char kind, const char *id);
size_t profile_id_count(const bsp_profile *p, char kind);
const char *profile_id_at(const bsp_profile *p, char kind, size_t i);
/* Whether p lists id as either kind; hash is bsp_hash64 of id's bytes. */
bool profile_has_id(const bsp_profile *p, const char *id, uint64_t hash);
/* The first userId and anonymousId of a profile's storage form, read
 * without parsing the rest of it (listings that show many profiles' ids):
 * copied into uid/aid ("" when none or longer than cap). BSP_EPARSE if the
 * bytes are not a stored profile. (peek.c) */
bsp_err profile_peek_ids(const char *json, size_t len, char *uid, size_t uid_cap, char *aid,
                         size_t aid_cap);

/* The computed traits as bits: which of them applying an event may have
 * changed (profile_apply_event's answer) and which of them a condition
 * reads (profile_computed_bit). A trait derived from others changes with
 * them: aov with orders and revenue, cart_items and cart_value with cart. */
enum {
    PROFILE_C_FIRST_SEEN = 1u << 0,
    PROFILE_C_LAST_SEEN = 1u << 1,
    PROFILE_C_SESSIONS = 1u << 2,
    PROFILE_C_PAGE_VIEWS = 1u << 3,
    PROFILE_C_PRODUCT_VIEWS = 1u << 4,
    PROFILE_C_ADD_TO_CARTS = 1u << 5,
    PROFILE_C_CART = 1u << 6, /* cart, cart_items, cart_value */
    PROFILE_C_ORDERS = 1u << 7,
    PROFILE_C_REVENUE = 1u << 8,
    PROFILE_C_AOV = 1u << 9,
    PROFILE_C_LAST_ORDER_AT = 1u << 10,
    PROFILE_C_FAVORITE_CATEGORY = 1u << 11,
    PROFILE_C_FAVORITE_BRAND = 1u << 12,
    PROFILE_C_RECENTLY_VIEWED = 1u << 13,
    PROFILE_C_PURCHASED = 1u << 14,
    PROFILE_C_LAST_SEARCH = 1u << 15,
    PROFILE_C_COUNTRY = 1u << 16,
    PROFILE_C_DEVICE = 1u << 17,
    PROFILE_C_ENGAGED_SECONDS = 1u << 18,
    PROFILE_C_ENGAGED_CATEGORY = 1u << 19,
    PROFILE_C_ENGAGED_PRODUCT = 1u << 20,
    PROFILE_C_ALL = (1u << 21) - 1,
};
/* The bit of computed.NAME, or 0 when NAME is not a computed trait (such a
 * path is always null, so nothing an event does changes it). */
uint32_t profile_computed_bit(const char *name);

/* Applies one event: its userId/anonymousId (added as ids), traits
 * (identify, and RudderStack's context.traits on any event), consent
 * (context.consent.categoryPreferences, latest event time wins), computed
 * traits. Values that are "latest wins" (last_search, country, device)
 * change only for events not older than last_seen. Returns the computed
 * traits (PROFILE_C_*) the event may have changed: every one that did, and
 * perhaps a few that kept their value. */
uint32_t profile_apply_event(bsp_profile *p, const bsp_event *ev);

/* Merges from into into (Segment semantics: the anonymous history joins the
 * known profile): ids united, traits filled in where into lacks them,
 * counters summed, carts and product lists united, times min/max. */
void profile_merge(bsp_profile *into, const bsp_profile *from);

/* --- what later phases keep on a profile (extras.c) ----------------------- */

/* Score sections written by batch jobs and read by conditions as rfm.* and
 * predicted.*: name is "rfm" or "predicted" (else BSP_EINVAL). set takes
 * ownership of obj (an object; NULL removes the section). */
const cJSON *profile_section(const bsp_profile *p, const char *name);
bsp_err profile_set_section(bsp_profile *p, const char *name, cJSON *obj);

/* Segment membership as last evaluated (segment/ decides; the profile only
 * remembers). set returns true when membership changed. profile_merge does
 * not unite memberships: the merged profile is evaluated afresh. */
bool profile_in_segment(const bsp_profile *p, const char *segment_id);
/* The same, given hash = bsp_hash64(segment_id, strlen(segment_id)). */
bool profile_in_segment_hashed(const bsp_profile *p, const char *segment_id, uint64_t hash);
bool profile_set_segment(bsp_profile *p, const char *segment_id, bool member);
/* The same with hash = bsp_hash64(segment_id, strlen(segment_id)) given,
 * for callers that keep it (segment upkeep, once per evaluation). */
bool profile_set_segment_hashed(bsp_profile *p, const char *segment_id, uint64_t hash, bool member);
size_t profile_segment_count(const bsp_profile *p);
const char *profile_segment_at(const bsp_profile *p, size_t i);

/* Campaign exposure, counted from "Promotion Viewed" and "Promotion
 * Clicked" events by properties.promotion_id (the campaign id): views on
 * the UTC day of now_ms, views in total, clicks in total. Zeros if none. */
typedef struct profile_exposure {
    uint32_t views_today;
    uint32_t views_total;
    uint32_t clicks_total;
} profile_exposure;
profile_exposure profile_campaign_exposure(const bsp_profile *p, const char *campaign_id,
                                           int64_t now_ms);

/* Recent events for the event functions of conditions (did, count, sum).
 * Only events whose name is watched are kept: at most
 * PROFILE_RECENT_PER_NAME of each name, none older than the watch window.
 * The watch list is process-wide and must be set from the thread that
 * applies events (the ingest writer) or before any is applied. names are
 * copied; window_ms 0 keeps nothing. */
#define PROFILE_RECENT_PER_NAME 200
#define PROFILE_RECENT_PROPS_MAX 4096 /* properties larger than this are kept as {} */
bsp_err profile_watch_events(const char *const *names, size_t count, int64_t window_ms);
/* Visits kept events of that name at or after since_ms, newest first, as
 * objects {"event", "timestamp" (ms), "properties"}; stops when visit
 * returns false. */
void profile_each_recent(const bsp_profile *p, const char *name, int64_t since_ms,
                         bool (*visit)(void *vctx, const cJSON *event), void *vctx);

#endif
