/* sim.h - the clickstream generator: synthetic shoppers with hidden tastes
 * (favourite categories, price sensitivity) browse, search, add to and
 * remove from carts, identify themselves and order over a synthetic catalog,
 * written as Segment-format JSONL. Seeded and reproducible: the same seed and
 * count give the same bytes. */
#ifndef BSP_SIM_H
#define BSP_SIM_H

#include <stdio.h>

#include "core/core.h"

typedef struct bsp_sim_opts {
    uint64_t events;       /* how many events to write */
    uint64_t seed;         /* 0 = 1 */
    uint32_t products;     /* catalog size; 0 = 2000 */
    uint32_t visitors;     /* distinct shoppers; 0 = events / 20 */
    int64_t start_ms;      /* time of the first event; <= 0 = 2024-01-01 */
    uint32_t arrival_days; /* first visits spread over this many days; 0 = 14 */
    /* A session is a landing page, one action, and on average this many
     * more (exponentially distributed); used when extra_actions_set, else 6. */
    uint32_t extra_actions;
    bool extra_actions_set;
    bool catalog_only; /* write the catalog (products JSONL) instead */
} bsp_sim_opts;

/* Writes the stream to out. Returns BSP_EIO on a write error. */
bsp_err sim_write(const bsp_sim_opts *opts, FILE *out);

#endif
