/* fault.c - failure injection: named points on the paths where the disk
 * can fail (the write-ahead file's writes and syncs, the store's commits)
 * that a test arms to fail on purpose, so that what happens after a failed
 * write is tested as hard as what happens after a good one. Nothing arms a
 * point outside the tests: no flag, no environment variable. Disarmed, a
 * point costs one relaxed atomic load. */
#include "core/core.h"

#include <pthread.h>

typedef struct fault_state {
    unsigned skip;  /* calls still to let pass */
    unsigned fail;  /* calls to fail after those */
    unsigned fired; /* calls failed since arming */
} fault_state;

static atomic_bool fault_armed[BSP_FAULT_POINTS];
static fault_state fault_states[BSP_FAULT_POINTS];
static pthread_mutex_t fault_mu = PTHREAD_MUTEX_INITIALIZER;

void bsp_fault_arm(bsp_fault_point p, unsigned skip, unsigned fail) {
    if ((unsigned)p >= BSP_FAULT_POINTS) return;
    pthread_mutex_lock(&fault_mu);
    fault_states[p] = (fault_state){.skip = skip, .fail = fail};
    atomic_store(&fault_armed[p], fail > 0);
    pthread_mutex_unlock(&fault_mu);
}

void bsp_fault_disarm_all(void) {
    for (unsigned p = 0; p < BSP_FAULT_POINTS; p++)
        bsp_fault_arm((bsp_fault_point)p, 0, 0);
}

bool bsp_fault_hit(bsp_fault_point p) {
    if ((unsigned)p >= BSP_FAULT_POINTS ||
        !atomic_load_explicit(&fault_armed[p], memory_order_relaxed))
        return false;
    bool hit = false;
    pthread_mutex_lock(&fault_mu);
    fault_state *s = &fault_states[p];
    if (s->skip)
        s->skip--;
    else if (s->fail) {
        s->fail--;
        s->fired++;
        hit = true;
    }
    pthread_mutex_unlock(&fault_mu);
    return hit;
}

unsigned bsp_fault_fired(bsp_fault_point p) {
    if ((unsigned)p >= BSP_FAULT_POINTS) return 0;
    pthread_mutex_lock(&fault_mu);
    unsigned fired = fault_states[p].fired;
    pthread_mutex_unlock(&fault_mu);
    return fired;
}
