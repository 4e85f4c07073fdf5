/* swap.c - a pointer published atomically to readers that never block.
 *
 * Readers announce themselves on one of two counters, chosen by the parity
 * of an epoch, and check that the epoch did not move while they did so
 * (else they retry on the other counter). A writer stores the new pointer,
 * advances the epoch, and waits until the counter of the previous parity
 * drains: every reader that could have loaded the old pointer counted
 * itself there, and every reader arriving later sees the new one. Writers
 * must be serialized by the caller (the registry's mutex); a writer that
 * returns has finished its grace period, so the counters never mix two
 * generations of old pointers. Costs a reader three atomic operations. */
#include "campaign/campaign.h"

#include <sched.h>
#include <time.h>

void swap_init(bsp_swap *s, void *initial) {
    atomic_init(&s->current, initial);
    atomic_init(&s->epoch, 0);
    atomic_init(&s->readers[0], 0);
    atomic_init(&s->readers[1], 0);
}

unsigned swap_enter(bsp_swap *s) {
    for (;;) {
        uint_fast64_t e = atomic_load(&s->epoch);
        unsigned slot = (unsigned)(e & 1);
        atomic_fetch_add(&s->readers[slot], 1);
        if (atomic_load(&s->epoch) == e) return slot;
        atomic_fetch_sub(&s->readers[slot], 1);
    }
}

void *swap_get(bsp_swap *s) {
    return atomic_load(&s->current);
}

void swap_leave(bsp_swap *s, unsigned slot) {
    atomic_fetch_sub(&s->readers[slot], 1);
}

void *swap_publish(bsp_swap *s, void *next) {
    void *old = atomic_exchange(&s->current, next);
    uint_fast64_t e = atomic_fetch_add(&s->epoch, 1);
    unsigned slot = (unsigned)(e & 1);
    for (unsigned spins = 0; atomic_load(&s->readers[slot]) != 0; spins++) {
        if (spins < 64) {
            sched_yield();
        } else {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
    }
    return old;
}
