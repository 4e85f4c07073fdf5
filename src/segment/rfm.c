/* rfm.c - RFM scores: every buyer (computed.orders > 0) gets 1..5 on
 * recency (whole days since the last order, fewer is better), frequency
 * (orders) and monetary value (revenue) by quintiles of the buyers, and one
 * of eight named groups from a fixed rule table. The scores land on the
 * profile as the section read by conditions as rfm.* and each group is an
 * automatic segment rfm_<group>. docs/segments.md gives the rules in full.
 *
 * Also the periodic run in the server (rfm_schedule_*): a thread that
 * wakes every interval and runs the same job. */
#include "segment/auto_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"

#define DAY_MS (24LL * 3600 * 1000)
#define NO_ORDER_DAYS 1e9 /* recency of a buyer without last_order_at: the worst */

static const char *const group_ids[RFM_GROUP_COUNT] = {
    "rfm_champions", "rfm_loyal",     "rfm_potential_loyalists", "rfm_new",
    "rfm_at_risk",   "rfm_cant_lose", "rfm_hibernating",         "rfm_lost"};

static const char *const group_titles[RFM_GROUP_COUNT] = {
    "RFM: champions", "RFM: loyal",           "RFM: potential loyalists", "RFM: new customers",
    "RFM: at risk",   "RFM: can't lose them", "RFM: hibernating",         "RFM: lost"};

static const char *const group_descriptions[RFM_GROUP_COUNT] = {
    "Bought recently, buy often and spend the most (R 4-5, FM 4-5)",
    "Buy regularly and spend well (R 3-5, FM 3-5, not champions)",
    "Recent buyers with modest frequency and spend (R 3-5, FM 1-3, not new or loyal)",
    "Their only order so far is recent (R 4-5, F 1)",
    "Good buyers slipping away (R 1-2, FM 3-5, not can't lose)",
    "Were among the best buyers, gone the longest (R 1, FM 4-5)",
    "Low frequency and spend, last order a while ago (R 2, FM 1-2)",
    "Lowest recency, frequency and spend (R 1, FM 1-2)"};

const char *rfm_group_name(rfm_group g) {
    return g < RFM_GROUP_COUNT ? group_ids[g] + 4 : NULL;
}

rfm_group rfm_group_of(int r, int f, int m) {
    int fm = (f + m + 1) / 2; /* mean of F and M, halves rounded up */
    if (r >= 4 && fm >= 4) return RFM_CHAMPIONS;
    if (r >= 4 && f == 1) return RFM_NEW;
    if (r >= 3 && fm >= 3) return RFM_LOYAL;
    if (r >= 3) return RFM_POTENTIAL_LOYALISTS;
    if (r == 1 && fm >= 4) return RFM_CANT_LOSE;
    if (fm >= 3) return RFM_AT_RISK;
    if (r == 2) return RFM_HIBERNATING;
    return RFM_LOST;
}

/* --- quintiles --------------------------------------------------------------- */

typedef struct ranked {
    double value;
    size_t index;
} ranked;

static int ranked_cmp(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->value != y->value) return x->value < y->value ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

bsp_err rfm_quintiles(const double *values, size_t n, uint8_t *scores) {
    if (n == 0) return BSP_OK;
    ranked *r = malloc(n * sizeof *r);
    if (!r) return BSP_ENOMEM;
    for (size_t i = 0; i < n; i++)
        r[i] = (ranked){values[i], i};
    qsort(r, n, sizeof *r, ranked_cmp);
    size_t below = 0; /* values strictly lower than the current run of equal ones */
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && r[i].value != r[i - 1].value) below = i;
        scores[r[i].index] = (uint8_t)(1 + (5 * (uint64_t)below) / n);
    }
    free(r);
    return BSP_OK;
}

/* The value of column c (0 recency, 1 frequency, 2 monetary), higher is better. */
static double column(const rfm_buyer *b, int c) {
    if (c == 0) return -floor(b->recency_days); /* fewer days is better */
    return c == 1 ? b->orders : b->revenue;
}

bsp_err rfm_score_buyers(const rfm_buyer *buyers, size_t n, rfm_score *out) {
    double *v = calloc(n ? n : 1, sizeof *v);
    uint8_t *s = calloc(n ? 3 * n : 1, 1);
    bsp_err rc = v && s ? BSP_OK : BSP_ENOMEM;
    for (int c = 0; c < 3 && rc == BSP_OK; c++) {
        for (size_t i = 0; i < n; i++)
            v[i] = column(&buyers[i], c);
        rc = rfm_quintiles(v, n, s + (size_t)c * n);
    }
    for (size_t i = 0; i < n && rc == BSP_OK; i++) {
        out[i] = (rfm_score){s[i], s[n + i], s[2 * n + i], 0};
        out[i].group = rfm_group_of(out[i].r, out[i].f, out[i].m);
    }
    free(v);
    free(s);
    return rc;
}

/* --- the job ---------------------------------------------------------------------- */

/* What the scan keeps of one profile: a buyer, or a former one whose
 * stale rfm section and memberships must go. */
typedef struct rfm_row {
    uint64_t pid;
    int64_t last_order_ms; /* 0 when unknown */
    double orders, revenue;
    bool buyer;
} rfm_row;

typedef struct rfm_state {
    bool identified_only;
    rfm_row *rows;
    size_t n, cap, buyers;
    int64_t newest_ms; /* the newest last_seen */
    uint64_t *pids;
    int8_t *which;
    rfm_score *scores; /* per row (buyers only meaningful) */
} rfm_state;

static bool in_family(const bsp_profile *p) {
    if (profile_section(p, "rfm")) return true;
    for (size_t g = 0; g < RFM_GROUP_COUNT; g++)
        if (profile_in_segment(p, group_ids[g])) return true;
    return false;
}

static bsp_err rfm_visit(void *ctx, uint64_t pid, const bsp_profile *p, const cJSON *computed) {
    rfm_state *s = ctx;
    int64_t seen = auto_time(computed, "last_seen");
    if (seen > s->newest_ms) s->newest_ms = seen;
    double orders = auto_number(computed, "orders");
    if (s->identified_only && profile_id_count(p, 'u') == 0) orders = 0;
    if (orders <= 0 && !in_family(p)) return BSP_OK;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        rfm_row *grown = realloc(s->rows, cap * sizeof *grown);
        if (!grown) return BSP_ENOMEM;
        s->rows = grown;
        s->cap = cap;
    }
    s->rows[s->n++] = (rfm_row){pid, auto_time(computed, "last_order_at"), orders,
                                auto_number(computed, "revenue"), orders > 0};
    if (orders > 0) s->buyers++;
    return BSP_OK;
}

static double recency_days(const rfm_row *row, int64_t reference_ms) {
    if (row->last_order_ms == 0) return NO_ORDER_DAYS;
    double days = floor((double)(reference_ms - row->last_order_ms) / (double)DAY_MS);
    return days < 0 ? 0 : days;
}

/* Scores the buyers among the rows and fills the plan arrays. */
static bsp_err rfm_plan(rfm_state *s, int64_t reference_ms, rfm_summary *sum) {
    size_t n = s->n ? s->n : 1;
    rfm_buyer *b = malloc(n * sizeof *b);
    rfm_score *sc = malloc(n * sizeof *sc);
    s->pids = malloc(n * sizeof *s->pids);
    s->which = malloc(n);
    s->scores = calloc(n, sizeof *s->scores);
    bsp_err rc = b && sc && s->pids && s->which && s->scores ? BSP_OK : BSP_ENOMEM;
    size_t nb = 0;
    for (size_t i = 0; rc == BSP_OK && i < s->n; i++)
        if (s->rows[i].buyer)
            b[nb++] = (rfm_buyer){recency_days(&s->rows[i], reference_ms), s->rows[i].orders,
                                  s->rows[i].revenue};
    if (rc == BSP_OK) rc = rfm_score_buyers(b, nb, sc);
    for (size_t i = 0, k = 0; rc == BSP_OK && i < s->n; i++) {
        s->pids[i] = s->rows[i].pid;
        s->which[i] = -1;
        if (!s->rows[i].buyer) continue;
        s->scores[i] = sc[k];
        s->which[i] = (int8_t)sc[k].group;
        rfm_group_stats *g = &sum->groups[sc[k].group];
        g->size++;
        g->recency_days += b[k].recency_days;
        g->orders += b[k].orders;
        g->revenue += b[k].revenue;
        k++;
    }
    free(b);
    free(sc);
    return rc;
}

static cJSON *rfm_section(void *ctx, size_t i) {
    const rfm_state *s = ctx;
    if (s->which[i] < 0) return NULL;
    const rfm_score *sc = &s->scores[i];
    char digits[4] = {(char)('0' + sc->r), (char)('0' + sc->f), (char)('0' + sc->m), 0};
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddNumberToObject(o, "recency", sc->r) ||
        !cJSON_AddNumberToObject(o, "frequency", sc->f) ||
        !cJSON_AddNumberToObject(o, "monetary", sc->m) ||
        !cJSON_AddStringToObject(o, "score", digits) ||
        !cJSON_AddStringToObject(o, "segment", rfm_group_name(sc->group))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static void rfm_state_free(rfm_state *s) {
    free(s->rows);
    free(s->pids);
    free(s->which);
    free(s->scores);
}

static void finish_summary(rfm_summary *sum) {
    for (size_t g = 0; g < RFM_GROUP_COUNT; g++) {
        rfm_group_stats *st = &sum->groups[g];
        if (!st->size) continue;
        st->recency_days /= (double)st->size;
        st->orders /= (double)st->size;
        st->revenue /= (double)st->size;
    }
}

bsp_err rfm_run(bsp_ingest *ing, bsp_store *st, const rfm_opts *opts, rfm_summary *out) {
    memset(out, 0, sizeof *out);
    uint64_t t0 = bsp_mono_ns();
    const autoseg_ctl *ctl = opts ? &opts->ctl : NULL;
    rfm_state s = {.identified_only = opts && opts->identified_only};
    bsp_err rc = auto_scan(ing, st, ctl, "reading", rfm_visit, &s);
    int64_t reference = opts && opts->reference_ms ? opts->reference_ms : s.newest_ms;
    if (!reference) reference = bsp_now_ms();
    if (rc == BSP_OK) rc = rfm_plan(&s, reference, out);
    auto_plan plan = {.ids = group_ids,
                      .names = group_titles,
                      .descriptions = group_descriptions,
                      .nids = RFM_GROUP_COUNT,
                      .nsave = RFM_GROUP_COUNT,
                      .pids = s.pids,
                      .which = s.which,
                      .n = s.n,
                      .section = "rfm",
                      .make_section = rfm_section,
                      .ctx = &s};
    if (rc == BSP_OK) rc = auto_apply(ing, &plan, ctl, &out->written);
    out->buyers = s.buyers;
    out->reference_ms = reference;
    finish_summary(out);
    out->seconds = (double)(bsp_mono_ns() - t0) / 1e9;
    rfm_state_free(&s);
    return rc;
}

/* --- periodic runs in the server --------------------------------------------------- */

#define SCHEDULE_FIRST_MS (60 * 1000) /* first run a minute after start, or sooner */

struct rfm_schedule {
    bsp_ingest *ing;
    bsp_store *st;
    bsp_segments *segs; /* told about new rfm_* definitions; may be NULL */
    bsp_periodic *job;
};

/* The registry learns the rfm_* definitions (and keeps their members). */
static bsp_err reload_job(bsp_ingest *ing, bsp_txn *txn, void *arg) {
    (void)ing;
    return segments_reload(arg, txn);
}

static void schedule_once(void *arg, atomic_bool *stop) {
    rfm_schedule *s = arg;
    rfm_opts opts = {.ctl = {.cancel = stop}};
    rfm_summary sum;
    bsp_err rc = rfm_run(s->ing, s->st, &opts, &sum);
    if (rc == BSP_OK && s->segs) rc = ingest_run_job(s->ing, reload_job, s->segs);
    if (rc == BSP_OK && s->segs) segments_refresh_reading(s->segs, COND_USES_RFM);
    if (rc == BSP_OK)
        bsp_info("rfm: %zu buyers scored, %zu profiles rewritten in %.2f s", sum.buyers,
                 sum.written, sum.seconds);
    else if (!atomic_load(stop))
        bsp_warn("rfm: periodic run failed: %s", bsp_err_name(rc));
}

bsp_err rfm_schedule_start(bsp_ingest *ing, bsp_store *st, bsp_segments *segs, uint64_t interval_ms,
                           rfm_schedule **out) {
    *out = NULL;
    if (interval_ms == 0) return BSP_OK;
    rfm_schedule *s = calloc(1, sizeof *s);
    if (!s) return BSP_ENOMEM;
    *s = (rfm_schedule){.ing = ing, .st = st, .segs = segs};
    uint64_t first = interval_ms < SCHEDULE_FIRST_MS ? interval_ms : SCHEDULE_FIRST_MS;
    bsp_err rc = bsp_periodic_start(first, interval_ms, schedule_once, s, &s->job);
    if (rc) {
        free(s);
        return rc;
    }
    *out = s;
    return BSP_OK;
}

void rfm_schedule_stop(rfm_schedule *s) {
    if (!s) return;
    bsp_periodic_stop(s->job);
    free(s);
}
