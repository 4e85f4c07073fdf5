/* cli.c - `bespoke predict` (train on the time split, report on the
 * held-out window, score and store every profile, refresh the segments
 * that read predicted.*) and the scores part of `bespoke eval` (an Online
 * Retail file imported whole into a temporary store; features before the
 * cutoff, labels after it). */
#include "predict/predict_internal.h"

#include <ftw.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "import/import.h"
#include "json/json.h"
#include "segment/segment.h"

void predict_usage(FILE *out) {
    fprintf(out,
            "usage: bespoke predict --data DIR [flags]\n\n"
            "  --data DIR           store directory             BESPOKE_DATA (./bespoke-data)\n"
            "  --at TIME            score as of this ISO time (default: the newest event)\n"
            "  --identified-only    train on profiles with a userId only (all are scored)\n"
            "  --no-progress        no progress lines on stderr\n\n"
            "Trains purchase propensity (an order in the next %d days), churn (a buyer\n"
            "with no order in the next %d days) and LTV (net revenue in the next %d days)\n"
            "at T0 = T - %d days with labels from the window after it, reports AUC and\n"
            "calibration of the same training one window earlier on the window before T,\n"
            "then scores every profile at T and stores predicted.purchase, predicted.churn,\n"
            "predicted.ltv. Segments that read predicted.* are re-evaluated. The store must\n"
            "not be open in a running server, which runs the same job every\n"
            "--predict-interval.\n",
            PREDICT_PURCHASE_DAYS, PREDICT_HORIZON_DAYS, PREDICT_HORIZON_DAYS,
            PREDICT_HORIZON_DAYS);
}

typedef struct cli_flags {
    const char *data, *at;
    bool progress, identified_only;
} cli_flags;

static bool parse_flags(int argc, char **argv, cli_flags *f) {
    static const struct option longopts[] = {{"data", required_argument, 0, 'd'},
                                             {"at", required_argument, 0, 'a'},
                                             {"no-progress", no_argument, 0, 'n'},
                                             {"identified-only", no_argument, 0, 'i'},
                                             {0, 0, 0, 0}};
    *f = (cli_flags){.progress = true};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'd')
            f->data = optarg;
        else if (c == 'a')
            f->at = optarg;
        else if (c == 'n')
            f->progress = false;
        else if (c == 'i')
            f->identified_only = true;
        else
            return false;
    }
    f->data = bsp_opt(f->data, "BESPOKE_DATA", "./bespoke-data");
    return optind == argc;
}

static void show_progress(void *ctx, const char *stage, size_t done, size_t total) {
    (void)ctx;
    if (done == total || done % 10000 == 0)
        fprintf(stderr, "predict: %s %zu / %zu profiles\n", stage, done, total);
}

/* --- the summary ----------------------------------------------------------------- */

static void print_model_row(const char *name, const predict_linear *m, size_t n, double rate) {
    printf("%-10s %10zu %10.3f %10d\n", name, n, rate, m->iterations);
}

static void print_summary(const predict_summary *s) {
    char t0[40], t1[40];
    bsp_time_format(s->model.trained_at_ms, t0, sizeof t0);
    bsp_time_format(s->reference_ms, t1, sizeof t1);
    printf("\ntrained at %s (features before it, labels from the %d and %d days after)\n", t0,
           s->model.purchase_days, s->model.horizon_days);
    printf("%-10s %10s %10s %10s\n", "model", "trained on", "base rate", "iterations");
    print_model_row("purchase", &s->model.purchase, s->model.n_active, s->model.rate_purchase);
    print_model_row("churn", &s->model.churn, s->model.n_buyers, s->model.rate_churn);
    printf("%-10s %10zu %10s %10d   (log spend of those who bought; smearing %.3f)\n", "spend",
           s->model.n_spenders, "-", s->model.spend.iterations, s->model.spend.smear);
    printf("\nscored %zu profiles as of %s: %zu written, model version %llu\n", s->scored, t1,
           s->written, (unsigned long long)s->model_version);
    printf("%-10s %10s %22s\n", "score", "mean", "profiles over the bar");
    printf("%-10s %10.4f %14zu (> 0.5)\n", "purchase", s->mean_purchase, s->likely_buyers);
    printf("%-10s %10.4f %14zu (> 0.7, buyers only)\n", "churn", s->mean_churn, s->at_risk);
    printf("%-10s %10.2f\n", "ltv", s->mean_ltv);
    printf("time: read %.2f s, train %.2f s, score %.3f s, write %.2f s, total %.2f s\n",
           s->load_seconds, s->train_seconds, s->score_seconds, s->write_seconds, s->seconds);
}

/* --- bespoke predict ---------------------------------------------------------------- */

/* Waits for the backfills the refresh queued (their status is "building"). */
static void wait_segments(bsp_segments *segs, bsp_store *st) {
    for (int tries = 0; tries < 6000; tries++) {
        bsp_txn *txn;
        if (store_txn_begin(st, false, &txn) != BSP_OK) return;
        cJSON *list = segments_list(segs, txn);
        store_txn_abort(txn);
        bool building = false;
        const cJSON *d;
        cJSON_ArrayForEach(d, list) {
            const char *status = json_get_string(d, "status");
            building |= status && strcmp(status, "building") == 0;
        }
        cJSON_Delete(list);
        if (!building) return;
        usleep(20000);
    }
}

static bsp_err run(bsp_store *st, const cli_flags *f, predict_summary *sum) {
    bsp_segments *segs = NULL;
    bsp_err rc = segments_open(st, NULL, &segs);
    ingest_hooks hooks = segs ? segments_hooks(segs) : (ingest_hooks){0};
    bsp_ingest_opts iopts = {.hooks = segs ? &hooks : NULL};
    bsp_ingest *ing = NULL;
    if (rc == BSP_OK) rc = ingest_start(st, &iopts, &ing);
    if (rc == BSP_OK) rc = segments_attach(segs, ing);
    predict_run_opts o = {.train = {.identified_only = f->identified_only},
                          .ctl = {.progress = f->progress ? show_progress : NULL},
                          .validate = true};
    if (f->at && !bsp_time_parse(f->at, &o.train.reference_ms)) rc = BSP_EINVAL;
    if (rc == BSP_OK) rc = predict_run(ing, st, &o, sum);
    size_t queued = rc == BSP_OK ? segments_refresh_reading(segs, COND_USES_PREDICTED) : 0;
    if (queued && f->progress)
        fprintf(stderr, "predict: re-evaluating %zu segments on predicted.*\n", queued);
    if (queued) wait_segments(segs, st);
    segments_stop(segs);
    if (ing) ingest_stop(ing);
    segments_close(segs);
    return rc;
}

int predict_command(int argc, char **argv) {
    cli_flags f;
    if (!parse_flags(argc, argv, &f)) {
        predict_usage(stderr);
        return 2;
    }
    bsp_store *st;
    bsp_err rc = store_open(f.data, NULL, &st);
    if (rc != BSP_OK) {
        fprintf(stderr, "bespoke predict: cannot open store %s: %s (is a server running on it?)\n",
                f.data, bsp_err_name(rc));
        return 1;
    }
    predict_summary *sum = calloc(1, sizeof *sum);
    rc = sum ? run(st, &f, sum) : BSP_ENOMEM;
    store_close(st);
    if (rc == BSP_OK && sum->validated)
        predict_report_print(stdout, &sum->validation,
                             "held out: trained one window earlier, scored on the last window");
    else if (rc == BSP_OK)
        printf("held out: not enough history for a check one window earlier\n");
    if (rc == BSP_OK) print_summary(sum);
    free(sum);
    if (rc == BSP_ENOTFOUND)
        fprintf(stderr,
                "bespoke predict: not enough history: the %d days before the newest "
                "event hold no orders, or only orders\n",
                PREDICT_HORIZON_DAYS);
    else if (rc != BSP_OK)
        fprintf(stderr, "bespoke predict: %s\n", bsp_err_name(rc));
    return rc == BSP_OK ? 0 : 1;
}

/* --- the scores part of bespoke eval ----------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static bsp_err import_all(const char *file, const char *dir, bool progress, predict_corpus *c) {
    bsp_store_opts so = {.no_sync = true};
    bsp_store *st;
    bsp_err rc = store_open(dir, &so, &st);
    if (rc != BSP_OK) return rc;
    bsp_ingest *ing;
    rc = ingest_start(st, NULL, &ing);
    bsp_import_summary sum = {0};
    bsp_error err;
    bsp_error_clear(&err);
    if (rc == BSP_OK) {
        rc = import_run(ing, BSP_IMPORT_ONLINE_RETAIL, file, progress, &sum, &err);
        ingest_stop(ing);
    }
    bsp_txn *txn = NULL;
    if (rc == BSP_OK) rc = store_txn_begin(st, false, &txn);
    if (rc == BSP_OK) rc = predict_corpus_load(txn, NULL, c);
    if (txn) store_txn_abort(txn);
    store_close(st);
    return rc;
}

static void print_weights(const predict_model *m) {
    printf("standardized weights: %-22s %9s %9s %9s %9s\n", "feature", "purchase", "churn", "buy",
           "log spend");
    for (size_t j = 0; j < PREDICT_FEATURES; j++)
        printf("                      %-22s %9.3f %9.3f %9.3f %9.3f\n", predict_feature_names[j],
               m->purchase.w[j], m->churn.w[j], m->buy.w[j], m->spend.w[j]);
}

static bsp_err eval_scores(const predict_corpus *c, int64_t cutoff) {
    int days_after = (int)((c->last_ms - cutoff) / PREDICT_DAY_MS);
    if (days_after < 1) return BSP_ENOTFOUND;
    predict_train_opts to = {.reference_ms = cutoff, .identified_only = true};
    to.horizon_days = days_after < PREDICT_HORIZON_DAYS ? days_after : PREDICT_HORIZON_DAYS;
    to.purchase_days =
        to.horizon_days < PREDICT_PURCHASE_DAYS ? to.horizon_days : PREDICT_PURCHASE_DAYS;
    predict_model m;
    bsp_err rc = predict_train(c, &to, &m);
    if (rc != BSP_OK) return rc;
    predict_eval_opts eo = {cutoff, m.purchase_days, m.horizon_days, true};
    predict_report r;
    rc = predict_evaluate(c, &m, &eo, &r);
    if (rc != BSP_OK) return rc;
    char title[200];
    snprintf(title, sizeof title,
             "\npredictive scores: trained on %zu customers at cutoff - %d days; purchase in "
             "%d days, churn and ltv over %d days after the cutoff",
             m.n_active, m.horizon_days, m.purchase_days, m.horizon_days);
    predict_report_print(stdout, &r, title);
    print_weights(&m);
    return BSP_OK;
}

int predict_cmd_eval(const char *file, int64_t cutoff_ms, bool progress) {
    char dir[] = "/tmp/bespoke-predict-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("bespoke eval: temporary directory");
        return 1;
    }
    predict_corpus c = {0};
    uint64_t t0 = bsp_mono_ns();
    bsp_err rc = import_all(file, dir, progress, &c);
    if (rc == BSP_OK && progress)
        fprintf(stderr, "eval: %zu profiles, %zu events read for the scores in %.1f s\n", c.n,
                c.n_events, (double)(bsp_mono_ns() - t0) / 1e9);
    if (rc == BSP_OK) rc = eval_scores(&c, cutoff_ms);
    predict_corpus_free(&c);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (rc != BSP_OK) fprintf(stderr, "bespoke eval (scores): %s\n", bsp_err_name(rc));
    return rc == BSP_OK ? 0 : 1;
}
