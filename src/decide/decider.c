/* decider.c - the decision pipeline (see decide.h): one read transaction,
 * one profile, one segment_env and one campaign snapshot per request; per
 * placement the first campaign by priority that is in schedule, under its
 * caps, whose condition holds, gives its content (or, for the visitor's
 * control share, the default with a control token). The answer is written
 * straight into the output buffer from contents serialized at snapshot
 * time, so evaluating and answering allocate nothing per campaign. */
#include "decide/decide_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "segment/segment.h"

const double decide_lat_bounds_us[DECIDE_LAT_BUCKETS] = {50,   100,  200,   500,   1000,
                                                         2000, 5000, 10000, 50000, 100000};

/* --- life ------------------------------------------------------------------------------ */

bsp_err decider_new(bsp_store *st, bsp_ingest *ing, campaign_registry *reg, const decide_opts *opts,
                    bsp_decider **out) {
    bsp_decider *d = calloc(1, sizeof *d);
    if (!d) return BSP_ENOMEM;
    d->st = st;
    d->ing = ing;
    d->reg = reg;
    d->require_consent = opts && opts->require_consent;
    swap_init(&d->popular, NULL);
    bsp_err rc = decide_token_key(st, d->key);
    if (rc != BSP_OK) {
        free(d);
        return rc;
    }
    *out = d;
    return BSP_OK;
}

void decider_free(bsp_decider *d) {
    if (!d) return;
    popular_list_free(swap_get(&d->popular));
    explicit_bzero(d->key, sizeof d->key);
    free(d);
}

void decider_set_products(bsp_decider *d, decide_products_fn fn, void *ctx) {
    atomic_store(&d->products_ctx, ctx);
    atomic_store(&d->products_fn, fn);
}

const uint8_t *decider_token_key(const bsp_decider *d) {
    return d->key;
}

/* --- one request's state ------------------------------------------------------------------ */

typedef struct decision {
    bsp_decider *d;
    const decide_request *req;
    uint64_t mark; /* ingest_read_mark before txn began */
    bsp_txn *txn;
    const bsp_profile *profile; /* the thread's memoized copy, or fresh */
    bsp_profile *fresh;         /* owned: a visitor with no profile yet */
    const campaign_set *set;
    profile_note *note; /* on the profile, for this set (ruled_out); NULL: none */
    segment_env env;
    int64_t now_ms;
    bool personalize;
    bsp_buf *out;
} decision;

/* The visitor's profile: the freshest stored one, or a new one with the
 * request's ids (and its profile id when the ids are known but the profile
 * is not stored yet: its first events wait for the next checkpoint). */
static bsp_err load_profile(decision *dc) {
    const decide_request *req = dc->req;
    const char *ids[2] = {req->user_id, req->anonymous_id};
    static const char kinds[2] = {'u', 'a'};
    uint64_t known_pid = 0;
    for (int i = 0; i < 2 && !dc->profile; i++) {
        uint64_t pid = 0;
        if (!ids[i]) continue;
        bsp_err rc = ingest_visitor_peek(dc->d->ing, dc->txn, dc->mark, kinds[i], ids[i], &pid,
                                         &dc->profile);
        if (pid) known_pid = pid;
        if (rc != BSP_OK && rc != BSP_ENOTFOUND) return rc;
    }
    if (dc->profile) return BSP_OK;
    dc->fresh = profile_new(known_pid);
    if (!dc->fresh) return BSP_ENOMEM;
    if (req->user_id) profile_add_id(dc->fresh, 'u', req->user_id);
    if (req->anonymous_id) profile_add_id(dc->fresh, 'a', req->anonymous_id);
    dc->profile = dc->fresh;
    return BSP_OK;
}

/* context.consent.categoryPreferences.personalization in the request wins
 * over the profile's latest statement. */
static bool may_personalize(const decision *dc) {
    if (!dc->req->user_id && !dc->req->anonymous_id) return false; /* nobody to personalize for */
    const cJSON *prefs = json_path(dc->req->context, "consent.categoryPreferences");
    const cJSON *now = json_member(prefs, "personalization");
    if (cJSON_IsBool(now)) return cJSON_IsTrue(now);
    int stated = profile_consent(dc->profile, "personalization");
    if (stated == 0) return false;
    return stated == 1 || !dc->d->require_consent;
}

/* The profile's note for the current campaign set, added if missing. */
static profile_note *note_of(decision *dc) {
    profile_note *n = profile_note_find(dc->profile, dc->set->serial);
    if (n) return n;
    n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->key = dc->set->serial;
    if (profile_note_add(dc->profile, n)) return n;
    free(n);
    return profile_note_find(dc->profile, dc->set->serial); /* another thread's, or none */
}

/* --- choosing -----------------------------------------------------------------------------------
 */

/* Stable share of [0, 1) for (visitor, campaign): the visitor is the
 * request's userId, else its anonymousId. */
static double visitor_share(const decide_request *req, const char *campaign) {
    char buf[CAMPAIGN_ID_MAX + BSP_ID_MAX_BYTES + 4];
    const char *id = req->user_id ? req->user_id : req->anonymous_id;
    size_t clen = strnlen(campaign, CAMPAIGN_ID_MAX), ilen = strnlen(id, BSP_ID_MAX_BYTES);
    /* campaign NUL kind id: the bytes hashed since the first version */
    memcpy(buf, campaign, clen);
    buf[clen] = '\0';
    buf[clen + 1] = req->user_id ? 'u' : 'a';
    memcpy(buf + clen + 2, id, ilen);
    return (double)(bsp_hash64(buf, clen + 2 + ilen) >> 11) * 0x1.0p-53;
}

static bool in_schedule(const campaign_rt *c, int64_t now_ms) {
    return now_ms >= c->start_ms && now_ms < c->end_ms;
}

static bool under_caps(const decision *dc, const campaign_rt *c) {
    if (!c->cap_per_day && !c->cap_total) return true;
    profile_exposure e = profile_campaign_exposure(dc->profile, c->id, dc->now_ms);
    if (c->cap_per_day && e.views_today >= c->cap_per_day) return false;
    return !c->cap_total || e.views_total < c->cap_total;
}

typedef enum { PICK_NONE, PICK_TREATMENT, PICK_CONTROL } pick_kind;

/* Whether what the profile stores alone rules the condition out: one of its
 * top-level operands is false without reading the request, the time or the
 * events. Remembered in a note on the shared parsed profile, per campaign
 * set, so a visitor read again is not evaluated again for campaigns that
 * can never match them. Conditions that read the time are not noted. */
static bool ruled_out(decision *dc, const campaign_rt *c) {
    size_t index = (size_t)(c - dc->set->campaigns);
    if (!dc->note || index >= PROFILE_NOTE_BITS || !c->cond_timeless) return false;
    int known = profile_note_get(dc->note, (unsigned)index);
    if (known >= 0) return known == 1;
    segment_env stored;
    segment_env_stored_only(&stored, dc->profile);
    bool out = false;
    for (size_t i = 0; i < c->cond_conjuncts && !out; i++) {
        stored.read_other = false;
        out = !cond_eval_conjunct(c->cond, i, &stored.env) && !stored.read_other;
    }
    segment_env_free(&stored);
    profile_note_put(dc->note, (unsigned)index, out);
    return out;
}

static pick_kind try_campaign(decision *dc, const campaign_rt *c, char *code) {
    if (c->cond && ruled_out(dc, c)) return PICK_NONE;
    if (!in_schedule(c, dc->now_ms) || !under_caps(dc, c)) return PICK_NONE;
    if (c->cond && !cond_eval(c->cond, &dc->env.env)) return PICK_NONE;
    if (c->control > 0 && visitor_share(dc->req, c->id) < c->control) return PICK_CONTROL;
    if (c->pool && !coupon_take(c->pool, dc->req->user_id, dc->req->anonymous_id, code))
        return PICK_NONE;
    return PICK_TREATMENT;
}

/* --- writing ---------------------------------------------------------------------------------- */

static bsp_err write_token(decision *dc, const campaign_rt *c, const char *placement,
                           const char *variant) {
    decide_token tok = {.pid = profile_pid(dc->profile), .t_ms = dc->now_ms};
    memcpy(tok.campaign, c->id, strlen(c->id) + 1);
    memcpy(tok.placement, placement, strlen(placement) + 1);
    memcpy(tok.variant, variant, strlen(variant) + 1);
    char text[DECIDE_TOKEN_MAX];
    bsp_err rc = decide_token_sign(dc->d->key, &tok, text, sizeof text);
    /* base64url and dots: nothing to escape */
    if (rc == BSP_OK) rc = bsp_buf_puts(dc->out, ",\"token\":\"");
    if (rc == BSP_OK) rc = bsp_buf_puts(dc->out, text);
    if (rc == BSP_OK) rc = bsp_buf_puts(dc->out, "\"}");
    return rc;
}

static bsp_err write_default(decision *dc, const placement_rt *pl, const campaign_rt *c,
                             const char *placement) {
    bsp_buf *out = dc->out;
    bsp_err rc =
        c ? bsp_buf_printf(out, "{\"campaign\":\"%s\",\"variant\":\"control\",\"content\":", c->id)
          : bsp_buf_puts(out, "{\"campaign\":null,\"variant\":\"default\",\"content\":");
    if (rc == BSP_OK && pl && pl->default_json)
        rc = bsp_buf_append(out, pl->default_json, pl->default_len);
    else if (rc == BSP_OK)
        rc = bsp_buf_puts(out, "null");
    if (rc != BSP_OK) return rc;
    return c ? write_token(dc, c, placement, "control") : bsp_buf_puts(out, ",\"token\":null}");
}

static bsp_err products_into(decision *dc, const campaign_rt *c, cJSON *items) {
    decide_products_fn fn = atomic_load(&dc->d->products_fn);
    bsp_err rc = BSP_OK;
    if (fn)
        rc = fn(atomic_load(&dc->d->products_ctx), dc->txn, dc->profile, dc->req->context,
                c->content, c->products_n, items);
    if (rc != BSP_OK || cJSON_GetArraySize(items) == 0)
        rc = decide_popular_products(dc->d, dc->txn, dc->profile, dc->req->context, c->content,
                                     c->products_n, items);
    return rc;
}

/* The content with what this visitor gets added: its coupon code or the
 * block's items, spliced in before the closing brace. */
static bsp_err write_content(decision *dc, const campaign_rt *c, const char *code) {
    bsp_buf *out = dc->out;
    if (!code[0] && c->type != CONTENT_PRODUCTS)
        return bsp_buf_append(out, c->content_json, c->content_len);
    bsp_err rc = bsp_buf_append(out, c->content_json, c->content_len - 1);
    if (rc == BSP_OK && code[0]) {
        rc = bsp_buf_puts(out, ",\"code\":");
        if (rc == BSP_OK) rc = json_write_string(out, code);
    } else if (rc == BSP_OK) {
        cJSON *items = cJSON_CreateArray();
        rc = items ? products_into(dc, c, items) : BSP_ENOMEM;
        if (rc == BSP_OK) rc = bsp_buf_puts(out, ",\"items\":");
        if (rc == BSP_OK) rc = json_write(out, items);
        cJSON_Delete(items);
    }
    return rc == BSP_OK ? bsp_buf_puts(out, "}") : rc;
}

static bsp_err write_treatment(decision *dc, const campaign_rt *c, const char *placement,
                               const char *code) {
    /* campaign and placement ids are [A-Za-z0-9_.:-]: nothing to escape */
    bsp_err rc = bsp_buf_puts(dc->out, "{\"campaign\":\"");
    if (rc == BSP_OK) rc = bsp_buf_puts(dc->out, c->id);
    if (rc == BSP_OK) rc = bsp_buf_puts(dc->out, "\",\"variant\":\"treatment\",\"content\":");
    if (rc == BSP_OK) rc = write_content(dc, c, code);
    return rc == BSP_OK ? write_token(dc, c, placement, "treatment") : rc;
}

static bsp_err decide_placement(decision *dc, const char *placement) {
    const placement_rt *pl = dc->set ? campaign_set_placement(dc->set, placement) : NULL;
    char code[CAMPAIGN_CODE_MAX + 1];
    for (size_t i = 0; dc->personalize && pl && i < pl->count; i++) {
        const campaign_rt *c = pl->campaigns[i];
        code[0] = '\0';
        pick_kind pick = try_campaign(dc, c, code);
        if (pick == PICK_CONTROL) return write_default(dc, pl, c, placement);
        if (pick == PICK_TREATMENT) return write_treatment(dc, c, placement, code);
    }
    return write_default(dc, pl, NULL, placement);
}

static bsp_err decide_all(decision *dc) {
    bsp_err rc = bsp_buf_puts(dc->out, "{\"decisions\":{");
    for (size_t i = 0; rc == BSP_OK && i < dc->req->placement_count; i++) {
        const char *placement = dc->req->placements[i];
        rc = bsp_buf_puts(dc->out, i ? ",\"" : "\"");
        if (rc == BSP_OK) rc = bsp_buf_puts(dc->out, placement);
        if (rc == BSP_OK) rc = bsp_buf_puts(dc->out, "\":");
        if (rc == BSP_OK) rc = decide_placement(dc, placement);
    }
    return rc == BSP_OK ? bsp_buf_puts(dc->out, "}}") : rc;
}

/* --- metrics -------------------------------------------------------------------------------- */

static void record_latency(bsp_decider *d, uint64_t ns) {
    double us = (double)ns / 1000.0;
    int b = 0;
    while (b < DECIDE_LAT_BUCKETS && us > decide_lat_bounds_us[b])
        b++;
    atomic_fetch_add_explicit(&d->m_lat[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&d->m_lat_sum_ns, ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&d->m_decisions, 1, memory_order_relaxed);
}

void decide_metrics_get(bsp_decider *d, decide_metrics *out) {
    memset(out, 0, sizeof *out);
    out->decisions = atomic_load_explicit(&d->m_decisions, memory_order_relaxed);
    for (int i = 0; i <= DECIDE_LAT_BUCKETS; i++)
        out->lat_counts[i] = atomic_load_explicit(&d->m_lat[i], memory_order_relaxed);
    out->lat_sum_us = (double)atomic_load_explicit(&d->m_lat_sum_ns, memory_order_relaxed) / 1e3;
}

/* --- the entry point ------------------------------------------------------------------------- */

bsp_err decide_run(bsp_decider *d, const decide_request *req, int64_t now_ms, bsp_buf *out,
                   bsp_error *err) {
    uint64_t t0 = bsp_mono_ns();
    decision dc = {.d = d, .req = req, .now_ms = now_ms, .out = out};
    dc.mark = ingest_read_mark(d->ing); /* before the snapshot: see fresh.c */
    bsp_err rc = store_txn_begin(d->st, false, &dc.txn);
    if (rc == BSP_OK) rc = load_profile(&dc);
    if (rc == BSP_OK) {
        unsigned slot;
        dc.set = campaign_acquire(d->reg, &slot);
        dc.personalize = may_personalize(&dc);
        if (dc.set && dc.personalize && !dc.fresh) dc.note = note_of(&dc);
        segment_env_init(&dc.env, dc.profile, req->context, now_ms);
        rc = decide_all(&dc);
        segment_env_free(&dc.env);
        campaign_release(d->reg, slot);
    }
    profile_free(dc.fresh);
    if (dc.txn) store_txn_abort(dc.txn);
    if (rc != BSP_OK)
        return bsp_error_set(err, rc, "", "the decision failed (%s)", bsp_err_name(rc));
    record_latency(d, bsp_mono_ns() - t0);
    return BSP_OK;
}
