/* auto_internal.h - what the jobs that assign automatic segments (RFM
 * groups in rfm.c, behavioural clusters in cluster.c) share, private to
 * src/segment: a read-only scan of every stored profile, and the
 * application of a membership plan through ingest jobs (autoseg.c). */
#ifndef BSP_SEGMENT_AUTO_INTERNAL_H
#define BSP_SEGMENT_AUTO_INTERNAL_H

#include "segment/segment.h"

#define AUTO_CHUNK 500 /* profiles rewritten per ingest job (one transaction) */

/* Reports progress through opts' callback, if any. */
void auto_progress(const autoseg_ctl *ctl, const char *stage, size_t done, size_t total);

/* A number (0 if absent) and an ISO time in ms (0 if absent) of an object. */
double auto_number(const cJSON *obj, const char *key);
int64_t auto_time(const cJSON *obj, const char *key);

/* Calls fn for every stored profile (after ingest_sync, so that the store
 * holds everything acknowledged), in increasing pid order, with the parsed
 * profile and its computed traits (both borrowed for the call). Profiles
 * that do not parse are skipped with a warning. */
typedef bsp_err (*auto_visit_fn)(void *ctx, uint64_t pid, const bsp_profile *p,
                                 const cJSON *computed);
bsp_err auto_scan(bsp_ingest *ing, bsp_store *st, const autoseg_ctl *ctl, const char *stage,
                  auto_visit_fn fn, void *ctx);

/* A family of automatic segments (ids[0..nids), of which the first nsave
 * are defined by this run; the rest only lose their members) and who
 * belongs where:
 * pids ascending, which[i] the index into ids of pids[i]'s segment, or -1
 * for none of them. When section is set, make_section(ctx, i) builds the
 * profile's new section (a cJSON object the plan's user owns until given;
 * NULL removes the section). */
typedef struct auto_plan {
    const char *const *ids;
    const char *const *names;
    const char *const *descriptions;
    size_t nids, nsave;
    const uint64_t *pids;
    const int8_t *which;
    size_t n;
    const char *section;
    cJSON *(*make_section)(void *ctx, size_t i);
    void *ctx;
} auto_plan;

/* Saves the first nsave definitions (segment_save_automatic) and deletes
 * those of the other ids if they are automatic segments, then rewrites,
 * AUTO_CHUNK profiles a job, each planned profile whose memberships or
 * section differ (profile_set_segment, profile_set_section, the members
 * index, ingest_forget_profile), then removes from the members index every
 * pid the plan does not put there (erased or moved profiles). *written
 * counts profiles rewritten. Stops early with BSP_EUNAVAIL when *cancel
 * becomes true. */
bsp_err auto_apply(bsp_ingest *ing, const auto_plan *plan, const autoseg_ctl *ctl, size_t *written);

#endif
