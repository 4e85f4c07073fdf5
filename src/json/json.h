/* json.h - helpers over cJSON: parsing with size/depth limits and an error
 * position (line, column), typed getters by dotted path, and writers that
 * print into a bsp_buf. Every module that reads or writes JSON uses these. */
#ifndef BSP_JSON_H
#define BSP_JSON_H

#include <cJSON.h>

#include "core/core.h"

/* Largest nesting depth accepted in any JSON input. */
#define BSP_JSON_MAX_DEPTH 32

/* Parses len bytes (need not be NUL-terminated). On failure returns NULL and
 * fills err with BSP_EPARSE and at = "line L, column C" (1-based), or
 * BSP_ETOOBIG when nesting exceeds max_depth. The caller owns the result. */
cJSON *json_parse(const char *text, size_t len, int max_depth, bsp_error *err);
/* Where json_parse_spans found each object and array in its text, so that
 * a value can be copied out as the sender wrote it instead of being printed
 * again from its tree (ingest stores each event's text; its properties and
 * context are most of its bytes). A span is kept only when the value's text
 * is strict JSON (no number or \u escape that only cJSON's leniency reads),
 * and json_span_text also refuses spans holding a byte below 0x20 (a raw
 * control byte in a string, or whitespace other than spaces): so what it
 * returns parses, by any JSON parser, to the node's value. The spans point
 * into the text, which must outlive them. They describe the tree as parsed:
 * a node that has since gained, lost or changed a member anywhere below it
 * must not be looked up, and nodes must come from an arena (json_arena_*)
 * so that no freed node's address is reused by a new one. */
typedef struct json_spans json_spans;
/* Room for about expect values without growing; NULL when out of memory. */
json_spans *json_spans_new(size_t expect);
void json_spans_free(json_spans *s);
/* json_parse, recording spans (forgetting those of any earlier text). */
cJSON *json_parse_spans(const char *text, size_t len, int max_depth, json_spans *spans,
                        bsp_error *err);
/* node's text as parsed, if spans holds it; false otherwise. */
bool json_span_text(const json_spans *s, const cJSON *node, const char **text, size_t *len);
/* The nesting depth json_parse measures: the deepest run of open objects
 * and arrays in len bytes of text, strings skipped. */
int json_text_depth(const char *text, size_t len);

/* Typed getters on an object member (one level, not a path). Missing or
 * null gives the default / NULL. */
/* obj's first member named key (NULL if none, or obj is not an object):
 * cJSON_GetObjectItemCaseSensitive, comparing the first byte before the
 * rest, which spares most strcmp calls on messages with many members. */
cJSON *json_member(const cJSON *obj, const char *key);
/* out[i] = json_member(obj, keys[i]) for each of the n keys, found in one
 * walk over obj's members: for reading a few members of an object whose
 * member list is long or not in the cache. */
void json_members(const cJSON *obj, const char *const *keys, size_t n, const cJSON **out);
const char *json_get_string(const cJSON *obj, const char *key);
double json_get_number(const cJSON *obj, const char *key, double dflt);
bool json_get_bool(const cJSON *obj, const char *key, bool dflt);
cJSON *json_get_object(const cJSON *obj, const char *key);
cJSON *json_get_array(const cJSON *obj, const char *key);

/* Walks a dotted path ("context.traits.email"); NULL if any step is missing
 * or not an object. */
cJSON *json_path(const cJSON *root, const char *dotted);

/* Replaces (or adds) obj[key] with item, taking ownership of item. */
void json_set(cJSON *obj, const char *key, cJSON *item);

/* Deep-merges src into dst: objects merge key by key, anything else in src
 * replaces dst's value. src is not modified. */
void json_merge(cJSON *dst, const cJSON *src);

/* Appends the compact text of item to out. */
bsp_err json_write(bsp_buf *out, const cJSON *item);

/* A 64-bit hash of item's value (types, member names and order, strings,
 * numbers), without printing it: equal trees hash equal. For memo keys. */
uint64_t json_hash(const cJSON *item);
/* Mixes v into the running hash h, as json_hash mixes a tree's parts: for
 * hashes of several values in order. */
uint64_t json_hash_mix(uint64_t h, uint64_t v);

/* Appends s as a JSON string literal (with quotes and escapes) to out. */
bsp_err json_write_string(bsp_buf *out, const char *s);

/* v as snprintf(out, JSON_NUMBER_MAX, "%.*g", digits, v) writes it (digits
 * 1..17), byte for byte, without printf for |v| in [1e-4, 1e15) (number.c).
 * Returns the length. */
#define JSON_NUMBER_MAX 32
size_t json_format_double(char out[JSON_NUMBER_MAX], double v, int digits);

/* Arenas for cJSON trees made and dropped together (arena.c). While a
 * thread has entered an arena, the cJSON nodes and strings it makes (by
 * parsing, creating or duplicating) come from the arena, and deleting any of
 * them frees nothing; json_arena_free frees them all at once. Such a tree
 * may be read by any thread, but deleted, or have members deleted or
 * replaced, only by a thread that has entered its arena, and never after
 * json_arena_free. json_init installs cJSON's allocation hooks: call it
 * before threads share cJSON (json_arena_new calls it too; idempotent). */
typedef struct json_arena json_arena;
void json_init(void);
/* expect: the bytes the trees are likely to take, the size of the first
 * chunk (clamped to 4 KB .. 1 MB). NULL when out of memory. */
json_arena *json_arena_new(size_t expect);
void json_arena_free(json_arena *a);
/* Makes a (or NULL: malloc) the calling thread's arena; returns the one it
 * replaces, to hand back to json_arena_leave. */
json_arena *json_arena_enter(json_arena *a);
void json_arena_leave(json_arena *prev);
size_t json_arena_bytes(const json_arena *a); /* bytes handed out so far */

/* Builds the standard error body {"error":{"code","message","at"}}. */
bsp_err json_write_error(bsp_buf *out, const bsp_error *err);

#endif
