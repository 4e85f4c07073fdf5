/* arena.c - arenas for cJSON trees that are made and dropped together.
 *
 * Why: an ingest request's body becomes a tree of about fifty cJSON nodes
 * and strings an event, each a malloc, and each a free when the request is
 * answered. Under batch ingest those calls were a fifth of the HTTP
 * threads' time. A tree made in an arena costs a pointer bump a node and
 * one free a chunk.
 *
 * How: cJSON allocates through hooks (cJSON_InitHooks), installed once by
 * json_init. While a thread has entered an arena, the hooks take memory from
 * it, and freeing memory of that arena does nothing (cJSON_Delete of a
 * detached member, a replaced value, a half-parsed tree). Otherwise they are
 * malloc and free. So a tree made in an arena must not be deleted, nor have
 * members deleted or replaced, on a thread that has not entered it: that
 * would pass arena memory to free. Reading it from any thread is fine.
 *
 * Chunks: the first is what the caller expects the trees to take (at least
 * ARENA_MIN bytes, so a small track call does not pay for a large block),
 * each next one twice the last up to ARENA_MAX; a request larger than a
 * chunk gets a chunk of its own. */
#include "json/json.h"

#include <pthread.h>
#include <stdlib.h>

#define ARENA_MIN (4 * 1024)
#define ARENA_MAX (1024 * 1024)
#define ARENA_ALIGN 16 /* as malloc's: cJSON nodes hold doubles and pointers */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t cap;  /* bytes in data */
    size_t used; /* bytes handed out */
    _Alignas(ARENA_ALIGN) char data[];
} arena_chunk;

struct json_arena {
    arena_chunk *chunks; /* newest first: allocation happens in the head */
    size_t next_cap;     /* size of the next chunk */
};

static _Thread_local json_arena *current;
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static arena_chunk *chunk_add(json_arena *a, size_t need) {
    size_t cap = a->next_cap > need ? a->next_cap : need;
    arena_chunk *c = malloc(sizeof *c + cap);
    if (!c) return NULL;
    c->cap = cap;
    c->used = 0;
    c->next = a->chunks;
    a->chunks = c;
    if (a->next_cap < ARENA_MAX) a->next_cap *= 2;
    return c;
}

static void *arena_alloc(json_arena *a, size_t n) {
    n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    arena_chunk *c = a->chunks;
    if (!c || c->cap - c->used < n) {
        if (n > SIZE_MAX / 2 || !(c = chunk_add(a, n))) return NULL;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

static bool arena_holds(const json_arena *a, const void *p) {
    const char *q = p;
    for (const arena_chunk *c = a->chunks; c; c = c->next)
        if (q >= c->data && q < c->data + c->cap) return true;
    return false;
}

static void *hook_malloc(size_t n) {
    json_arena *a = current;
    return a ? arena_alloc(a, n) : malloc(n);
}

static void hook_free(void *p) {
    json_arena *a = current;
    if (a && arena_holds(a, p)) return;
    free(p);
}

static void hooks_install(void) {
    cJSON_Hooks hooks = {.malloc_fn = hook_malloc, .free_fn = hook_free};
    cJSON_InitHooks(&hooks);
}

void json_init(void) {
    pthread_once(&hooks_once, hooks_install);
}

json_arena *json_arena_new(size_t expect) {
    json_init();
    json_arena *a = calloc(1, sizeof *a);
    if (a) a->next_cap = expect < ARENA_MIN ? ARENA_MIN : expect > ARENA_MAX ? ARENA_MAX : expect;
    return a;
}

void json_arena_free(json_arena *a) {
    if (!a) return;
    for (arena_chunk *c = a->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(a);
}

json_arena *json_arena_enter(json_arena *a) {
    json_arena *prev = current;
    current = a;
    return prev;
}

void json_arena_leave(json_arena *prev) {
    current = prev;
}

size_t json_arena_bytes(const json_arena *a) {
    size_t n = 0;
    for (const arena_chunk *c = a ? a->chunks : NULL; c; c = c->next)
        n += c->used;
    return n;
}
