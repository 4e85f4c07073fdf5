/* env.c - binds the condition language's inputs to one profile: the roots
 * traits/computed/rfm/predicted/context, the profile's kept recent events
 * for did()/count()/sum(), and its segment memberships for in_segment().
 * The computed traits that are plain numbers or texts, and the times that
 * days_since()/hours_since() read, are read straight from the profile; the
 * computed object is built only when a condition reads anything else of it
 * (a list, the cart, a time compared as text). */
#include <pthread.h>
#include <string.h>

#include "segment/segment.h"

/* One computed view a thread, reused by every evaluation on it and freed
 * when the thread ends. */
static pthread_key_t view_key;
static pthread_once_t view_once = PTHREAD_ONCE_INIT;

static void view_destroy(void *v) {
    profile_view_free(v);
}

static void view_key_make(void) {
    pthread_key_create(&view_key, view_destroy);
}

static profile_view *thread_view(void) {
    pthread_once(&view_once, view_key_make);
    profile_view *v = pthread_getspecific(view_key);
    if (!v && (v = profile_view_new())) pthread_setspecific(view_key, v);
    return v;
}

static const cJSON *env_root(void *ctx, const char *root) {
    segment_env *se = ctx;
    if (se->stored_only) {
        if (strcmp(root, "traits") == 0) return profile_traits(se->profile);
        se->read_other = true;
        return NULL;
    }
    if (root[0] == 'c' && root[1] == 'o' && root[2] == 'm' && strcmp(root, "computed") == 0) {
        if (!se->computed_ready) {
            profile_view *v = thread_view();
            se->computed_view = v ? profile_view_computed(v, se->profile) : NULL;
            se->computed_ready = true;
        }
        return se->computed_view;
    }
    if (strcmp(root, "traits") == 0) return profile_traits(se->profile);
    if (strcmp(root, "rfm") == 0) return profile_section(se->profile, "rfm");
    if (strcmp(root, "predicted") == 0) return profile_section(se->profile, "predicted");
    if (strcmp(root, "context") == 0) return se->context;
    return NULL;
}

static bool env_computed_number(void *ctx, const char *name, uint64_t name_hash, double *out) {
    segment_env *se = ctx;
    return profile_computed_number(se->profile, name, name_hash, out);
}

static bool env_computed_text(void *ctx, const char *name, uint64_t name_hash, const char **out) {
    segment_env *se = ctx;
    return profile_computed_text(se->profile, name, name_hash, out);
}

/* Not in a stored-only env, which does not answer the time. */
static bool env_computed_time(void *ctx, const char *name, uint64_t name_hash, bool *set,
                              int64_t *ms) {
    segment_env *se = ctx;
    return !se->stored_only && profile_computed_time(se->profile, name, name_hash, set, ms);
}

static bool env_each_event(void *ctx, const char *event_name, int64_t since_ms,
                           bool (*visit)(void *vctx, const cJSON *event), void *vctx) {
    segment_env *se = ctx;
    if (se->stored_only) {
        se->read_other = true;
        return true;
    }
    profile_each_recent(se->profile, event_name, since_ms, visit, vctx);
    return true;
}

static int env_in_segment(void *ctx, const char *segment_id, uint64_t id_hash) {
    segment_env *se = ctx;
    return profile_in_segment_hashed(se->profile, segment_id, id_hash) ? 1 : 0;
}

void segment_env_init(segment_env *se, const bsp_profile *p, const cJSON *context, int64_t now_ms) {
    *se = (segment_env){.profile = p, .context = context};
    se->env = (cond_env){.ctx = se,
                         .now_ms = now_ms,
                         .root = env_root,
                         .each_event = env_each_event,
                         .in_segment = env_in_segment,
                         .computed_number = env_computed_number,
                         .computed_text = env_computed_text,
                         .computed_time = env_computed_time};
}

void segment_env_stored_only(segment_env *se, const bsp_profile *p) {
    segment_env_init(se, p, NULL, 0);
    se->stored_only = true;
}

void segment_env_free(segment_env *se) {
    se->computed_view = NULL;
    se->computed_ready = false;
}
