/* models.c - the per-item models and the visitors' histories: popularity
 * (distinct visitors, purchases weighing most, decayed by the age of their
 * latest interaction), trending (a one-week-half-life count over the item's
 * longer-term rate), each visitor's history of items (orders, decayed
 * weight, last time) and each item's repurchase rate and cycle. */
#include "reco/reco_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double age_weight(int64_t end_ms, int64_t ts_ms, double half_life_days) {
    double age_days = (double)(end_ms - ts_ms) / RECO_DAY_MS;
    if (age_days < 0) age_days = 0;
    return exp2(-age_days / half_life_days);
}

static double kind_weight(uint8_t kind) {
    return kind == RECO_KIND_BUY ? 1.0 : kind == RECO_KIND_ADD ? 0.3 : 0.1;
}

/* --- popular ----------------------------------------------------------------- */

typedef struct scratch {
    float *w;
    int64_t *ts;
    uint32_t *touched;
    uint32_t n_touched;
} scratch;

static bsp_err scratch_init(scratch *s, uint32_t n) {
    s->w = calloc(n + 1, sizeof *s->w);
    s->ts = calloc(n + 1, sizeof *s->ts);
    s->touched = malloc((n + 1) * sizeof *s->touched);
    s->n_touched = 0;
    return s->w && s->ts && s->touched ? BSP_OK : BSP_ENOMEM;
}

static void scratch_free(scratch *s) {
    free(s->w);
    free(s->ts);
    free(s->touched);
}

bsp_err reco_model_popular(const reco_data *d, reco_snapshot *s) {
    scratch sc;
    s->pop = calloc(d->n_items + 1, sizeof *s->pop);
    bsp_err rc = scratch_init(&sc, d->n_items);
    if (!s->pop) rc = BSP_ENOMEM;
    for (uint32_t u = 0; rc == BSP_OK && u < d->n_users; u++) {
        for (size_t i = d->user_off[u]; i < d->user_off[u + 1]; i++) {
            const reco_inter *in = &d->inter[i];
            float w = (float)kind_weight(in->kind);
            if (sc.w[in->item] == 0) sc.touched[sc.n_touched++] = in->item;
            if (w > sc.w[in->item]) sc.w[in->item] = w;
            if (in->ts_ms > sc.ts[in->item]) sc.ts[in->item] = in->ts_ms;
        }
        for (uint32_t t = 0; t < sc.n_touched; t++) {
            uint32_t it = sc.touched[t];
            s->pop[it] +=
                sc.w[it] * (float)age_weight(d->end_ms, sc.ts[it], RECO_POP_HALF_LIFE_DAYS);
            sc.w[it] = 0;
            sc.ts[it] = 0;
        }
        sc.n_touched = 0;
    }
    scratch_free(&sc);
    return rc;
}

/* --- trending ------------------------------------------------------------------ */

bsp_err reco_model_trending(const reco_data *d, reco_snapshot *s) {
    double *recent = calloc(d->n_items + 1, sizeof *recent);
    double *base = calloc(d->n_items + 1, sizeof *base);
    s->trend = calloc(d->n_items + 1, sizeof *s->trend);
    bsp_err rc = recent && base && s->trend ? BSP_OK : BSP_ENOMEM;
    for (size_t i = 0; rc == BSP_OK && i < d->n_inter; i++) {
        const reco_inter *in = &d->inter[i];
        double w = kind_weight(in->kind);
        recent[in->item] += w * age_weight(d->end_ms, in->ts_ms, RECO_TREND_HALF_LIFE_DAYS);
        base[in->item] += w * age_weight(d->end_ms, in->ts_ms, RECO_TREND_BASE_DAYS);
    }
    /* velocity: the recent rate against the long one, damped for small counts */
    double scale = RECO_TREND_HALF_LIFE_DAYS / RECO_TREND_BASE_DAYS;
    for (uint32_t i = 0; rc == BSP_OK && i < d->n_items; i++) {
        double ratio = (recent[i] + 1) / (base[i] * scale + 1);
        s->trend[i] = (float)(recent[i] * (ratio > 4 ? 4 : ratio));
    }
    free(recent);
    free(base);
    return rc;
}

/* --- histories and repurchase ------------------------------------------------------ */

typedef struct item_acc {
    uint32_t buyers, repeaters;
    double gap_days_sum;
} item_acc;

/* Collapses one user's interactions into one reco_hist per item. */
static uint32_t user_history(const reco_data *d, uint32_t u, reco_hist *out, uint32_t *slot,
                             int64_t *first_ms, uint32_t *last_basket) {
    uint32_t n = 0;
    for (size_t i = d->user_off[u]; i < d->user_off[u + 1]; i++) {
        const reco_inter *in = &d->inter[i];
        uint32_t k = slot[in->item];
        if (k == RECO_NONE) {
            k = slot[in->item] = n++;
            out[k] = (reco_hist){.item = in->item};
            first_ms[k] = INT64_MAX;
            last_basket[k] = RECO_NONE;
        }
        reco_hist *h = &out[k];
        h->kinds |= in->kind;
        double w = age_weight(d->end_ms, in->ts_ms, RECO_BA_HALF_LIFE_DAYS);
        if (in->kind != RECO_KIND_BUY) {
            h->views += (float)(w * kind_weight(in->kind));
            if (!(h->kinds & RECO_KIND_BUY) && in->ts_ms > h->last_ms) h->last_ms = in->ts_ms;
            continue;
        }
        if (last_basket[k] == in->basket) continue;
        last_basket[k] = in->basket;
        if (h->orders < UINT16_MAX) h->orders++;
        h->decayed += (float)w;
        if (in->ts_ms < first_ms[k]) first_ms[k] = in->ts_ms;
        h->last_ms = in->ts_ms;
    }
    for (uint32_t k = 0; k < n; k++)
        slot[out[k].item] = RECO_NONE;
    return n;
}

static void count_repeats(const reco_hist *h, uint32_t n, const int64_t *first_ms, item_acc *acc) {
    for (uint32_t k = 0; k < n; k++) {
        if (!h[k].orders) continue;
        item_acc *a = &acc[h[k].item];
        a->buyers++;
        if (h[k].orders < 2) continue;
        a->repeaters++;
        a->gap_days_sum += (double)(h[k].last_ms - first_ms[k]) / RECO_DAY_MS / (h[k].orders - 1);
    }
}

static void finish_repeats(const reco_data *d, reco_snapshot *s, const item_acc *acc) {
    uint64_t buyers = 0, repeaters = 0;
    for (uint32_t i = 0; i < d->n_items; i++) {
        buyers += acc[i].buyers;
        repeaters += acc[i].repeaters;
    }
    double global = buyers ? (double)repeaters / (double)buyers : 0;
    if (global < 0.05) global = 0.05; /* a floor, so buy-again never scores zero */
    for (uint32_t i = 0; i < d->n_items; i++) {
        const double m = 5.0; /* pseudo-buyers at the global rate */
        s->repeat[i] = (float)((acc[i].repeaters + m * global) / (acc[i].buyers + m));
        s->cycle_days[i] =
            acc[i].repeaters ? (float)(acc[i].gap_days_sum / acc[i].repeaters) : 0.0f;
    }
}

static bsp_err alloc_history(const reco_data *d, reco_snapshot *s) {
    s->n_users = d->n_users;
    s->pids = malloc((d->n_users + 1) * sizeof *s->pids);
    s->user_off = malloc((d->n_users + 1) * sizeof *s->user_off);
    s->hist = malloc((d->n_inter + 1) * sizeof *s->hist);
    s->repeat = calloc(d->n_items + 1, sizeof *s->repeat);
    s->cycle_days = calloc(d->n_items + 1, sizeof *s->cycle_days);
    bool ok = s->pids && s->user_off && s->hist && s->repeat && s->cycle_days;
    return ok ? BSP_OK : BSP_ENOMEM;
}

bsp_err reco_model_history(const reco_data *d, reco_snapshot *s) {
    bsp_err rc = alloc_history(d, s);
    uint32_t *slot = malloc((d->n_items + 1) * sizeof *slot);
    int64_t *first_ms = malloc((d->n_items + 1) * sizeof *first_ms);
    uint32_t *last_basket = malloc((d->n_items + 1) * sizeof *last_basket);
    item_acc *acc = calloc(d->n_items + 1, sizeof *acc);
    if (!slot || !first_ms || !last_basket || !acc) rc = BSP_ENOMEM;
    if (rc == BSP_OK) {
        memset(slot, 0xff, (d->n_items + 1) * sizeof *slot);
        uint32_t used = 0;
        s->user_off[0] = 0;
        for (uint32_t u = 0; u < d->n_users; u++) {
            uint32_t n = user_history(d, u, s->hist + used, slot, first_ms, last_basket);
            count_repeats(s->hist + used, n, first_ms, acc);
            used += n;
            s->pids[u] = d->pids[u];
            s->user_off[u + 1] = used;
        }
        finish_repeats(d, s, acc);
    }
    free(slot);
    free(first_ms);
    free(last_basket);
    free(acc);
    return rc;
}
