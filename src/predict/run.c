/* run.c - a scoring run: read every profile's history in one read
 * transaction, train, score every profile at T1, then write the section
 * predicted.* through ingest jobs on the writer thread, PREDICT_CHUNK
 * profiles a transaction (the pattern of segment/autoseg.c), so events are
 * never held up for long and a profile erased or merged away since the
 * read is not written back. Also the periodic run in the server. */
#include "predict/predict_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "segment/segment.h"

#define VERSION_KEY "predict_version"

static double seconds_since(uint64_t t0) {
    return (double)(bsp_mono_ns() - t0) / 1e9;
}

/* --- the version counter ------------------------------------------------------- */

static bsp_err version_job(bsp_ingest *ing, bsp_txn *txn, void *arg) {
    (void)ing;
    uint64_t *version = arg, v = 0;
    bsp_slice old;
    bsp_err rc = store_meta_get(txn, VERSION_KEY, &old);
    if (rc == BSP_OK && old.len == 8)
        for (size_t i = 0; i < 8; i++)
            v = v << 8 | (uint8_t)old.data[i];
    if (rc != BSP_OK && rc != BSP_ENOTFOUND) return rc;
    *version = ++v;
    uint8_t be[8];
    for (size_t i = 0; i < 8; i++)
        be[i] = (uint8_t)(v >> (56 - 8 * i));
    return store_meta_put(txn, VERSION_KEY, be, sizeof be);
}

bsp_err predict_next_version(bsp_ingest *ing, uint64_t *version) {
    return ingest_run_job(ing, version_job, version);
}

/* --- writing ------------------------------------------------------------------------ */

typedef struct apply_job {
    const uint64_t *pids;
    const predict_scores *scores;
    size_t from, to;
    uint64_t version;
    char scored_at[40];
    size_t written;
} apply_job;

static double round_to(double v, double unit) {
    return round(v / unit) * unit;
}

static cJSON *section(const predict_scores *s, uint64_t version, const char *scored_at) {
    cJSON *o = cJSON_CreateObject();
    bool ok =
        o && cJSON_AddNumberToObject(o, "purchase", round_to(s->purchase, 1e-4)) &&
        cJSON_AddItemToObject(o, "churn",
                              isnan(s->churn) ? cJSON_CreateNull()
                                              : cJSON_CreateNumber(round_to(s->churn, 1e-4))) &&
        cJSON_AddNumberToObject(o, "ltv", round_to(s->ltv, 0.01)) &&
        cJSON_AddNumberToObject(o, "model_version", (double)version) &&
        cJSON_AddStringToObject(o, "scored_at", scored_at);
    if (ok) return o;
    cJSON_Delete(o);
    return NULL;
}

static bsp_err apply_one(bsp_ingest *ing, bsp_txn *txn, apply_job *job, size_t i) {
    bsp_profile *p;
    bsp_err rc = ingest_job_profile(ing, txn, job->pids[i], &p);
    if (rc == BSP_ENOTFOUND) return BSP_OK; /* erased or merged away since the read */
    if (rc != BSP_OK) return rc;
    cJSON *o = section(&job->scores[i], job->version, job->scored_at);
    if (!o) return BSP_ENOMEM;
    rc = profile_set_section(p, "predicted", o);
    if (rc == BSP_OK) rc = ingest_job_profile_changed(ing, job->pids[i]);
    if (rc == BSP_OK) job->written++;
    return rc;
}

static bsp_err apply_chunk(bsp_ingest *ing, bsp_txn *txn, void *arg) {
    apply_job *job = arg;
    bsp_err rc = BSP_OK;
    for (size_t i = job->from; i < job->to && rc == BSP_OK; i++)
        rc = apply_one(ing, txn, job, i);
    return rc;
}

static bool cancelled(const predict_ctl *ctl) {
    return ctl && ctl->cancel && atomic_load(ctl->cancel);
}

static void progress(const predict_ctl *ctl, const char *stage, size_t done, size_t total) {
    if (ctl && ctl->progress) ctl->progress(ctl->ctx, stage, done, total);
}

bsp_err predict_apply(bsp_ingest *ing, const uint64_t *pids, const predict_scores *scores, size_t n,
                      uint64_t version, const predict_ctl *ctl, size_t *written) {
    *written = 0;
    apply_job job = {.pids = pids, .scores = scores, .version = version};
    bsp_time_format(bsp_now_ms(), job.scored_at, sizeof job.scored_at);
    bsp_err rc = BSP_OK;
    for (size_t from = 0; from < n && rc == BSP_OK; from += PREDICT_CHUNK) {
        if (cancelled(ctl)) return BSP_EUNAVAIL;
        job.from = from;
        job.to = from + PREDICT_CHUNK < n ? from + PREDICT_CHUNK : n;
        job.written = 0;
        rc = ingest_run_job(ing, apply_chunk, &job);
        *written += job.written;
        progress(ctl, "writing", job.to, n);
    }
    return rc;
}

/* --- the run ---------------------------------------------------------------------------- */

static bsp_err load(bsp_ingest *ing, bsp_store *st, const predict_ctl *ctl, predict_corpus *c) {
    bsp_err rc = ing ? ingest_sync(ing) : BSP_OK;
    bsp_txn *txn = NULL;
    if (rc == BSP_OK) rc = store_txn_begin(st, false, &txn);
    if (rc != BSP_OK) return rc;
    rc = predict_corpus_load(txn, ctl, c);
    store_txn_abort(txn);
    return rc;
}

/* Trains at T1 - 2 horizons and reports on the window [T1 - horizon, T1). */
static void validate(const predict_corpus *c, const predict_run_opts *o, int64_t t1,
                     predict_summary *out) {
    predict_train_opts to = o->train;
    int horizon = to.horizon_days ? to.horizon_days : PREDICT_HORIZON_DAYS;
    to.reference_ms = t1 - horizon * PREDICT_DAY_MS;
    predict_model m;
    if (predict_train(c, &to, &m) != BSP_OK) return;
    predict_eval_opts eo = {.at_ms = to.reference_ms,
                            .purchase_days = m.purchase_days,
                            .horizon_days = m.horizon_days,
                            .identified_only = to.identified_only};
    out->validated = predict_evaluate(c, &m, &eo, &out->validation) == BSP_OK;
}

static void summarize(predict_summary *out, const predict_scores *sc, size_t n) {
    size_t buyers = 0;
    for (size_t i = 0; i < n; i++) {
        out->mean_purchase += sc[i].purchase;
        out->mean_ltv += sc[i].ltv;
        out->likely_buyers += sc[i].purchase > 0.5;
        if (isnan(sc[i].churn)) continue;
        out->mean_churn += sc[i].churn;
        out->at_risk += sc[i].churn > 0.7;
        buyers++;
    }
    out->mean_purchase = n ? out->mean_purchase / (double)n : 0;
    out->mean_ltv = n ? out->mean_ltv / (double)n : 0;
    out->mean_churn = buyers ? out->mean_churn / (double)buyers : 0;
}

/* Scores every profile of the corpus at t1 (pids ascending, as read). */
static bsp_err score_all(const predict_corpus *c, const predict_model *m, int64_t t1,
                         uint64_t *pids, predict_scores *sc) {
    predict_scratch s = {0};
    bsp_err rc = BSP_OK;
    for (size_t i = 0; i < c->n && rc == BSP_OK; i++) {
        pids[i] = c->profiles[i].pid;
        rc = predict_score(m, &c->profiles[i], t1, &sc[i], &s);
    }
    predict_scratch_free(&s);
    return rc;
}

static bsp_err score_and_write(bsp_ingest *ing, const predict_corpus *c, const predict_run_opts *o,
                               int64_t t1, predict_summary *out) {
    uint64_t *pids = malloc((c->n ? c->n : 1) * sizeof *pids);
    predict_scores *sc = malloc((c->n ? c->n : 1) * sizeof *sc);
    uint64_t t0 = bsp_mono_ns();
    bsp_err rc = pids && sc ? score_all(c, &out->model, t1, pids, sc) : BSP_ENOMEM;
    out->score_seconds = seconds_since(t0);
    t0 = bsp_mono_ns();
    if (rc == BSP_OK) rc = predict_next_version(ing, &out->model_version);
    if (rc == BSP_OK)
        rc = predict_apply(ing, pids, sc, c->n, out->model_version, &o->ctl, &out->written);
    out->write_seconds = seconds_since(t0);
    if (rc == BSP_OK) summarize(out, sc, c->n);
    out->scored = rc == BSP_OK ? c->n : 0;
    free(pids);
    free(sc);
    return rc;
}

bsp_err predict_run(bsp_ingest *ing, bsp_store *st, const predict_run_opts *o,
                    predict_summary *out) {
    memset(out, 0, sizeof *out);
    uint64_t start = bsp_mono_ns(), t0 = start;
    predict_corpus c;
    bsp_err rc = load(ing, st, &o->ctl, &c);
    if (rc != BSP_OK) return rc;
    out->load_seconds = seconds_since(t0);
    out->profiles = c.n;
    int64_t t1 = o->train.reference_ms ? o->train.reference_ms : c.last_ms + 1;
    out->reference_ms = t1;
    t0 = bsp_mono_ns();
    if (o->validate) validate(&c, o, t1, out);
    predict_train_opts to = o->train;
    to.reference_ms = t1;
    rc = predict_train(&c, &to, &out->model);
    out->train_seconds = seconds_since(t0);
    if (rc == BSP_OK) rc = score_and_write(ing, &c, o, t1, out);
    predict_corpus_free(&c);
    out->seconds = seconds_since(start);
    return rc;
}

/* --- periodic runs in the server ------------------------------------------------------------ */

#define SCHEDULE_FIRST_MS (60 * 1000) /* first run a minute after start, or sooner */

struct predict_schedule {
    bsp_ingest *ing;
    bsp_store *st;
    struct bsp_segments *segs;
    bsp_periodic *job;
};

static void schedule_once(void *arg, atomic_bool *stop) {
    predict_schedule *s = arg;
    predict_run_opts o = {.ctl = {.cancel = stop}};
    predict_summary *sum = malloc(sizeof *sum);
    bsp_err rc = sum ? predict_run(s->ing, s->st, &o, sum) : BSP_ENOMEM;
    if (rc == BSP_OK && s->segs) segments_refresh_reading(s->segs, COND_USES_PREDICTED);
    if (rc == BSP_OK)
        bsp_info("predict: %zu profiles scored (model %llu) in %.2f s", sum->scored,
                 (unsigned long long)sum->model_version, sum->seconds);
    else if (rc == BSP_ENOTFOUND)
        bsp_info("predict: not enough history to train on yet");
    else if (!atomic_load(stop))
        bsp_warn("predict: periodic run failed: %s", bsp_err_name(rc));
    free(sum);
}

bsp_err predict_schedule_start(bsp_ingest *ing, bsp_store *st, struct bsp_segments *segs,
                               uint64_t interval_ms, predict_schedule **out) {
    *out = NULL;
    if (interval_ms == 0) return BSP_OK;
    predict_schedule *s = calloc(1, sizeof *s);
    if (!s) return BSP_ENOMEM;
    *s = (predict_schedule){.ing = ing, .st = st, .segs = segs};
    uint64_t first = interval_ms < SCHEDULE_FIRST_MS ? interval_ms : SCHEDULE_FIRST_MS;
    bsp_err rc = bsp_periodic_start(first, interval_ms, schedule_once, s, &s->job);
    if (rc) {
        free(s);
        return rc;
    }
    *out = s;
    return BSP_OK;
}

void predict_schedule_stop(predict_schedule *s) {
    if (!s) return;
    bsp_periodic_stop(s->job);
    free(s);
}
