/* periodic.c - a job run on a thread of its own every so often (RFM
 * scoring, predictive scores): the first run after a delay, then at a fixed
 * interval, until stopped. Stopping wakes the thread at once; a run in
 * progress sees the stop flag (passed to the job) and can return early. */
#include "core/core.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct bsp_periodic {
    bsp_periodic_fn fn;
    void *ctx;
    uint64_t first_ms, interval_ms;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC */
    atomic_bool stop;
};

/* Waits ms or until stopped; true if stopped. */
static bool periodic_wait(bsp_periodic *p, uint64_t ms) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->mu);
    while (!atomic_load(&p->stop) && pthread_cond_timedwait(&p->cv, &p->mu, &until) == 0) {
    }
    pthread_mutex_unlock(&p->mu);
    return atomic_load(&p->stop);
}

static void *periodic_main(void *arg) {
    bsp_periodic *p = arg;
    uint64_t wait = p->first_ms;
    while (!periodic_wait(p, wait)) {
        p->fn(p->ctx, &p->stop);
        wait = p->interval_ms;
    }
    return NULL;
}

bsp_err bsp_periodic_start(uint64_t first_ms, uint64_t interval_ms, bsp_periodic_fn fn, void *ctx,
                           bsp_periodic **out) {
    *out = NULL;
    bsp_periodic *p = calloc(1, sizeof *p);
    if (!p) return BSP_ENOMEM;
    p->fn = fn;
    p->ctx = ctx;
    p->first_ms = first_ms;
    p->interval_ms = interval_ms;
    atomic_init(&p->stop, false);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&p->mu, NULL);
    if (pthread_create(&p->thread, NULL, periodic_main, p) != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return BSP_EINTERNAL;
    }
    *out = p;
    return BSP_OK;
}

void bsp_periodic_stop(bsp_periodic *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
