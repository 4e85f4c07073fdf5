/* segment.h - the condition language of segments, campaign rules and
 * experiment targeting (see CONDITIONS.md): a condition is compiled once
 * from its text into a compact tree, type-checked, and then evaluated per
 * profile against inputs the caller provides through callbacks, so this
 * module needs nothing from profile/ or store/.
 *
 * Evaluation is read-only on the compiled condition and does not allocate,
 * so one bsp_cond may be evaluated from many threads at once. */
#ifndef BSP_SEGMENT_H
#define BSP_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json/json.h"

/* Limits on what cond_compile accepts. */
#define COND_MAX_TEXT 16384 /* bytes of condition text (BSP_ETOOBIG) */
#define COND_MAX_DEPTH 64   /* nesting of (), [], calls and not (BSP_ETOOBIG) */
#define COND_MAX_NODES 4096 /* values, operators and calls (BSP_ETOOBIG) */

typedef struct bsp_cond bsp_cond;

/* Compiles len bytes of condition text. On failure returns the error, sets
 * *out to NULL and fills err: BSP_ETYPE for syntax and type errors with
 * at = "line L, column C" (1-based, at the offending character) and a
 * message saying what was expected; BSP_ETOOBIG for the limits above;
 * BSP_ENOMEM. */
bsp_err cond_compile(const char *text, size_t len, bsp_cond **out, bsp_error *err);

void cond_free(bsp_cond *c);

/* The inputs of one evaluation. Any callback may be NULL (no data). */
typedef struct cond_env {
    void *ctx;
    int64_t now_ms;
    /* "traits", "computed", "rfm", "predicted", "context": an object or NULL. */
    const cJSON *(*root)(void *ctx, const char *root);
    /* Calls visit for the profile's events of that name at or after since_ms;
     * visit returns false to stop. The return value is ignored. */
    bool (*each_event)(void *ctx, const char *event_name, int64_t since_ms,
                       bool (*visit)(void *vctx, const cJSON *event), void *vctx);
    /* 1 if the profile is in that segment, else 0. */
    int (*in_segment)(void *ctx, const char *segment_id);
} cond_env;

/* True if the condition holds; a value-only condition holds when truthy
 * (not null, not false, not 0, not an empty string or list). */
bool cond_eval(const bsp_cond *c, const cond_env *env);

/* Which inputs a condition reads: a bit set of these. COND_USES_TIME is set
 * by now(), days_since(), hours_since() and the windowed event functions. */
enum {
    COND_USES_TRAITS = 1u << 0,
    COND_USES_COMPUTED = 1u << 1,
    COND_USES_RFM = 1u << 2,
    COND_USES_PREDICTED = 1u << 3,
    COND_USES_CONTEXT = 1u << 4,
    COND_USES_EVENTS = 1u << 5,
    COND_USES_SEGMENTS = 1u << 6,
    COND_USES_TIME = 1u << 7,
};
unsigned cond_inputs(const bsp_cond *c);

/* The distinct event names read by did()/count()/sum() and the distinct
 * segment ids of in_segment(), in order of first appearance. Each stores at
 * most max pointers (valid while c lives) and returns the total number,
 * which may exceed max, as snprintf does. */
size_t cond_event_names(const bsp_cond *c, const char **names, size_t max);
size_t cond_segment_refs(const bsp_cond *c, const char **ids, size_t max);

/* --- conditions over a profile (env.c) ------------------------------------ */

#include "profile/profile.h"

/* Binds a cond_env to one profile and, for decisions, the request context
 * (context.*; may be NULL): traits, computed (built on first use), rfm,
 * predicted, the profile's recent events and its segment memberships.
 * Free with segment_env_free; the profile and context must outlive it. */
typedef struct segment_env {
    cond_env env;
    const bsp_profile *profile;
    const cJSON *context;
    cJSON *computed; /* owned, built lazily */
} segment_env;
void segment_env_init(segment_env *se, const bsp_profile *p, const cJSON *context, int64_t now_ms);
void segment_env_free(segment_env *se);

/* --- automatic segments (clusters, RFM groups) ---------------------------- */

#include "store/store.h"

/* Creates or replaces, in a write transaction, the definition of a segment
 * whose members a job assigns itself (kind "automatic", no condition). The
 * job then marks members with profile_set_segment and store_member_put and
 * removes leavers likewise. A running server picks the definition up on
 * its next segment reload (segment_registry_reload). */
bsp_err segment_save_automatic(bsp_txn *txn, const char *id, const char *name,
                               const char *description);

#endif
