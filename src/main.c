/* main.c - the `bespoke` command: subcommand dispatch and flag parsing only.
 * Every flag has an environment variable; the work is done in the library. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api/api.h"
#include "import/import.h"
#include "ingest/ingest.h"
#include "predict/predict.h"
#include "reco/reco.h"
#include "segment/segment.h"
#include "sim/sim.h"
#include "store/store.h"

#define BESPOKE_VERSION "0.1.0"

static void usage_main(FILE *out) {
    fprintf(out, "usage: bespoke <command> [flags]\n\n"
                 "commands:\n"
                 "  serve      run the HTTP server (collection and admin API)\n"
                 "  import     bulk-import history (Segment JSONL or Online Retail CSV)\n"
                 "  simulate   write a synthetic clickstream as Segment JSONL\n"
                 "  segment    RFM scores and behavioural clusters (rfm | cluster)\n"
                 "  train      train the recommendation models into a snapshot\n"
                 "  predict    purchase, churn and LTV scores on every profile\n"
                 "  eval       offline evaluation of the recommendations on a dated history\n"
                 "  version    print the version\n\n"
                 "'bespoke <command> --help' lists a command's flags.\n");
}

static void usage_serve(FILE *out) {
    fprintf(out,
            "usage: bespoke serve [flags]\n\n"
            "  --listen HOST:PORT   address to listen on        BESPOKE_LISTEN (127.0.0.1:8080)\n"
            "  --data DIR           store directory             BESPOKE_DATA (./bespoke-data)\n"
            "  --write-key KEY      key for collection calls    BESPOKE_WRITE_KEY (generated)\n"
            "  --admin-key KEY      key for /v1/admin           BESPOKE_ADMIN_KEY (generated)\n"
            "  --threads N          HTTP lanes (2 threads each) BESPOKE_THREADS (cores)\n"
            "  --queue-max N        ingest queue, in events     BESPOKE_QUEUE_MAX (200000)\n"
            "  --profile-memo N     visitors' profiles kept     BESPOKE_PROFILE_MEMO (262144)\n"
            "                       parsed for decisions\n"
            "  --wal-sync WHEN      always: answer events once  BESPOKE_WAL_SYNC (always)\n"
            "                       on disk; Nms: once written,\n"
            "                       on disk within N ms (1-1000)\n"
            "  --event-packing HOW  fast: LZ4, small: zstd      BESPOKE_EVENT_PACKING (fast)\n"
            "                       (a third fewer bytes, more CPU)\n"
            "  --web DIR            static files served at /    BESPOKE_WEB (none)\n"
            "  --segment-sweep S    re-check clock-reading      BESPOKE_SEGMENT_SWEEP (60)\n"
            "                       segments every S seconds\n"
            "  --segment-rescan S   full pass over every profile BESPOKE_SEGMENT_RESCAN (21600)\n"
            "                       for them every S seconds\n"
            "  --require-consent    personalize decisions only  BESPOKE_REQUIRE_CONSENT (0)\n"
            "                       with stated consent\n"
            "  --rfm-interval S     RFM scoring every S seconds BESPOKE_RFM_INTERVAL (3600)\n"
            "                       (0 = off; see bespoke segment rfm)\n"
            "  --train-interval T   train recommendations every BESPOKE_TRAIN_INTERVAL (1h)\n"
            "                       T (s, m, h suffixes; 0 = off)\n"
            "  --predict-interval T score purchase, churn, LTV BESPOKE_PREDICT_INTERVAL (6h)\n"
            "                       every T (s, m, h; 0 = off)\n"
            "  --affinity-attributes LIST  product attributes   BESPOKE_AFFINITY_ATTRIBUTES\n"
            "                       whose affinities are learnt (colour,color,size,\n"
            "                       and used (comma-separated)  material,price_band)\n"
            "  --log-level LEVEL    debug|info|warn|error       BESPOKE_LOG_LEVEL (info)\n\n"
            "Keys not given are generated on first start, kept in DIR and printed once.\n"
            "SIGTERM or SIGINT drains in-flight work and exits 0.\n");
}

static void usage_import(FILE *out) {
    fprintf(out,
            "usage: bespoke import --data DIR --format FORMAT FILE\n\n"
            "  --data DIR           store directory             BESPOKE_DATA (./bespoke-data)\n"
            "  --format FORMAT      segment-jsonl | online-retail\n"
            "  --event-packing HOW  fast: LZ4, small: zstd      BESPOKE_EVENT_PACKING (fast)\n"
            "  --no-progress        no progress bar (it is drawn only on a terminal anyway)\n\n"
            "FILE may be '-' for standard input; a .zst file is decompressed on the fly.\n"
            "Re-importing the same file adds nothing (messageIds are derived from it).\n");
}

static void usage_simulate(FILE *out) {
    fprintf(out, "usage: bespoke simulate --events N --out FILE [flags]\n\n"
                 "  --events N           events to write (K/M suffixes allowed)\n"
                 "  --out FILE           output file, '-' for standard output\n"
                 "  --seed N             random seed (1); same seed, same output\n"
                 "  --products N         catalog size (2000)\n"
                 "  --visitors N         distinct shoppers (events / 20)\n"
                 "  --arrival-days N     first visits spread over N days (14)\n"
                 "  --actions N          a session is a landing page, one action and on\n"
                 "                       average N more (6); --arrival-days 1 --actions 0\n"
                 "                       gives short visits of many distinct visitors\n"
                 "  --catalog            write the catalog as product JSONL instead\n");
}

static bool wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return true;
    return false;
}

static void apply_log_level(const char *lvl) {
    if (!lvl) return;
    if (!strcmp(lvl, "debug"))
        bsp_log_set_level(BSP_LOG_DEBUG);
    else if (!strcmp(lvl, "warn"))
        bsp_log_set_level(BSP_LOG_WARN);
    else if (!strcmp(lvl, "error"))
        bsp_log_set_level(BSP_LOG_ERROR);
    else
        bsp_log_set_level(BSP_LOG_INFO);
}

/* "1", "true", "yes", "on" (any case). */
static bool is_yes(const char *s) {
    return s && (!strcmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "yes") ||
                 !strcasecmp(s, "on"));
}

/* "90", "90s", "15m", "1h" -> milliseconds. */
static bool parse_interval(const char *s, uint64_t *ms) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *s == '-') return false;
    unsigned long long unit = 1000;
    if (*end == 'm')
        unit = 60000;
    else if (*end == 'h')
        unit = 3600000;
    else if (*end && *end != 's')
        return false;
    if (*end && end[1]) return false;
    if (v > 10ull * 365 * 24 * 3600) return false;
    *ms = v * unit;
    return true;
}

/* --event-packing: "fast" (LZ4 frames) or "small" (zstd frames). */
static bool parse_event_packing(const char *s, bool *small) {
    if (!strcmp(s, "fast") || !strcmp(s, "small")) {
        *small = !strcmp(s, "small");
        return true;
    }
    fprintf(stderr, "bespoke: --event-packing takes 'fast' or 'small', not '%s'\n", s);
    return false;
}

/* --wal-sync: "always" (0) or a number of milliseconds, "ms" optional. */
static bool parse_wal_sync(const char *s, uint64_t *ms) {
    if (strcmp(s, "always") == 0) {
        *ms = 0;
        return true;
    }
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *s == '-' || (*end && strcmp(end, "ms") != 0)) return false;
    if (v < 1 || v > INGEST_WAL_SYNC_MAX_MS) return false;
    *ms = v;
    return true;
}

static int cmd_serve(int argc, char **argv) {
    enum {
        O_LISTEN = 1,
        O_DATA,
        O_WKEY,
        O_AKEY,
        O_THREADS,
        O_QUEUE,
        O_MEMO,
        O_WEB,
        O_SWEEP,
        O_RESCAN,
        O_CONSENT,
        O_RFM,
        O_TRAIN,
        O_PREDICT,
        O_AFFINITY,
        O_WALSYNC,
        O_PACKING,
        O_LOG
    };
    static const struct option longopts[] = {
        {"listen", required_argument, 0, O_LISTEN},
        {"data", required_argument, 0, O_DATA},
        {"write-key", required_argument, 0, O_WKEY},
        {"admin-key", required_argument, 0, O_AKEY},
        {"threads", required_argument, 0, O_THREADS},
        {"queue-max", required_argument, 0, O_QUEUE},
        {"profile-memo", required_argument, 0, O_MEMO},
        {"web", required_argument, 0, O_WEB},
        {"segment-sweep", required_argument, 0, O_SWEEP},
        {"segment-rescan", required_argument, 0, O_RESCAN},
        {"require-consent", no_argument, 0, O_CONSENT},
        {"rfm-interval", required_argument, 0, O_RFM},
        {"train-interval", required_argument, 0, O_TRAIN},
        {"predict-interval", required_argument, 0, O_PREDICT},
        {"affinity-attributes", required_argument, 0, O_AFFINITY},
        {"wal-sync", required_argument, 0, O_WALSYNC},
        {"event-packing", required_argument, 0, O_PACKING},
        {"log-level", required_argument, 0, O_LOG},
        {0, 0, 0, 0}};
    const char *flag[O_LOG + 1] = {0};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c < 1 || c > O_LOG) {
            usage_serve(stderr);
            return 2;
        }
        flag[c] = c == O_CONSENT ? "1" : optarg;
    }
    apply_log_level(bsp_opt(flag[O_LOG], "BESPOKE_LOG_LEVEL", "info"));
    uint64_t threads = 0, queue = 0, memo = 0, sweep = 0, rescan = 0, rfm = 0;
    const char *threads_s = bsp_opt(flag[O_THREADS], "BESPOKE_THREADS", NULL);
    const char *queue_s = bsp_opt(flag[O_QUEUE], "BESPOKE_QUEUE_MAX", NULL);
    const char *memo_s = bsp_opt(flag[O_MEMO], "BESPOKE_PROFILE_MEMO", NULL);
    const char *sweep_s = bsp_opt(flag[O_SWEEP], "BESPOKE_SEGMENT_SWEEP", NULL);
    const char *rescan_s = bsp_opt(flag[O_RESCAN], "BESPOKE_SEGMENT_RESCAN", NULL);
    if ((threads_s && !bsp_parse_size(threads_s, &threads)) ||
        (queue_s && !bsp_parse_size(queue_s, &queue)) ||
        (memo_s && !bsp_parse_size(memo_s, &memo)) ||
        (sweep_s && !bsp_parse_size(sweep_s, &sweep)) ||
        (rescan_s && !bsp_parse_size(rescan_s, &rescan)) ||
        !bsp_parse_size(bsp_opt(flag[O_RFM], "BESPOKE_RFM_INTERVAL", "3600"), &rfm)) {
        fprintf(stderr, "bespoke serve: --threads, --queue-max, --profile-memo, --segment-sweep, "
                        "--segment-rescan and --rfm-interval take whole numbers\n");
        return 2;
    }
    if (threads > BSP_SERVE_MAX_THREADS) {
        fprintf(stderr, "bespoke serve: --threads takes at most %d\n", BSP_SERVE_MAX_THREADS);
        return 2;
    }
    uint64_t train_ms;
    if (!parse_interval(bsp_opt(flag[O_TRAIN], "BESPOKE_TRAIN_INTERVAL", "1h"), &train_ms)) {
        fprintf(stderr, "bespoke serve: --train-interval takes seconds, or a number with s, m "
                        "or h (0 = off)\n");
        return 2;
    }
    uint64_t predict_ms;
    if (!parse_interval(bsp_opt(flag[O_PREDICT], "BESPOKE_PREDICT_INTERVAL", "6h"), &predict_ms)) {
        fprintf(stderr, "bespoke serve: --predict-interval takes seconds, or a number with s, m "
                        "or h (0 = off)\n");
        return 2;
    }
    uint64_t wal_sync_ms;
    if (!parse_wal_sync(bsp_opt(flag[O_WALSYNC], "BESPOKE_WAL_SYNC", "always"), &wal_sync_ms)) {
        fprintf(stderr,
                "bespoke serve: --wal-sync takes 'always' or milliseconds from 1 to %d "
                "(such as 10ms)\n",
                INGEST_WAL_SYNC_MAX_MS);
        return 2;
    }
    bool small_events;
    if (!parse_event_packing(bsp_opt(flag[O_PACKING], "BESPOKE_EVENT_PACKING", "fast"),
                             &small_events))
        return 2;
    bsp_serve_opts opts = {
        .listen = bsp_opt(flag[O_LISTEN], "BESPOKE_LISTEN", "127.0.0.1:8080"),
        .data_dir = bsp_opt(flag[O_DATA], "BESPOKE_DATA", "./bespoke-data"),
        .write_key = bsp_opt(flag[O_WKEY], "BESPOKE_WRITE_KEY", NULL),
        .admin_key = bsp_opt(flag[O_AKEY], "BESPOKE_ADMIN_KEY", NULL),
        .threads = (unsigned)threads,
        .queue_max = (size_t)queue,
        .profile_memo = (size_t)memo,
        .web_dir = bsp_opt(flag[O_WEB], "BESPOKE_WEB", NULL),
        .segment_sweep_ms = sweep * 1000,
        .segment_rescan_ms = rescan * 1000,
        .rfm_interval_ms = rfm * 1000,
        .train_interval_ms = train_ms,
        .predict_interval_ms = predict_ms,
        .affinity_attributes = bsp_opt(flag[O_AFFINITY], "BESPOKE_AFFINITY_ATTRIBUTES", NULL),
        .require_consent = is_yes(bsp_opt(flag[O_CONSENT], "BESPOKE_REQUIRE_CONSENT", "0")),
        .wal_sync_ms = wal_sync_ms,
        .small_events = small_events,
    };
    return api_serve(&opts);
}

static void print_import_summary(const bsp_import_summary *s) {
    double rate = s->seconds > 0 ? (double)s->rows / s->seconds : 0;
    double erate = s->seconds > 0 ? (double)s->events / s->seconds : 0;
    printf("imported: %llu rows, %llu events (%llu new, %llu already present), %llu products, "
           "%llu rejects in %.2f s (%.0f rows/s, %.0f events/s)\n",
           (unsigned long long)s->rows, (unsigned long long)s->events,
           (unsigned long long)s->accepted, (unsigned long long)s->duplicates,
           (unsigned long long)s->products, (unsigned long long)s->rejects, s->seconds, rate,
           erate);
    if (s->rejects) printf("first reject: %s\n", s->first_reject);
}

/* After the rows: the built-in high_value threshold recomputed over the
 * imported buyers and every membership it moves updated, here rather than
 * in the first minute of the next server start. */
static bsp_err settle_segments(bsp_segments *segs, bsp_ingest *ing, double *seconds,
                               bsp_error *err) {
    uint64_t t0 = bsp_mono_ns();
    bsp_err rc = segments_settle(segs, ing);
    *seconds = (double)(bsp_mono_ns() - t0) / 1e9;
    if (rc) bsp_error_set(err, rc, "", "could not bring segments up to date");
    return rc;
}

static int cmd_import(int argc, char **argv) {
    static const struct option longopts[] = {{"data", required_argument, 0, 'd'},
                                             {"format", required_argument, 0, 'f'},
                                             {"no-progress", no_argument, 0, 'n'},
                                             {"event-packing", required_argument, 0, 'p'},
                                             {0, 0, 0, 0}};
    const char *data = NULL, *format = NULL, *packing = NULL;
    bool progress = true;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'd')
            data = optarg;
        else if (c == 'f')
            format = optarg;
        else if (c == 'n')
            progress = false;
        else if (c == 'p')
            packing = optarg;
        else {
            usage_import(stderr);
            return 2;
        }
    }
    data = bsp_opt(data, "BESPOKE_DATA", "./bespoke-data");
    bsp_store_opts so = {0};
    if (!parse_event_packing(bsp_opt(packing, "BESPOKE_EVENT_PACKING", "fast"), &so.small_events))
        return 2;
    if (!format || optind != argc - 1) {
        usage_import(stderr);
        return 2;
    }
    bsp_import_format fmt;
    if (!strcmp(format, "segment-jsonl"))
        fmt = BSP_IMPORT_SEGMENT_JSONL;
    else if (!strcmp(format, "online-retail"))
        fmt = BSP_IMPORT_ONLINE_RETAIL;
    else {
        fprintf(stderr, "bespoke import: unknown format '%s' (segment-jsonl, online-retail)\n",
                format);
        return 2;
    }
    bsp_store *st;
    bsp_err rc = store_open(data, &so, &st);
    if (rc) {
        fprintf(stderr, "bespoke import: cannot open store %s: %s\n", data, bsp_err_name(rc));
        return 1;
    }
    /* Imported visitors join segments as they would live. */
    bsp_segments *segs = NULL;
    rc = segments_open(st, NULL, &segs);
    ingest_hooks hooks = segs ? segments_hooks(segs) : (ingest_hooks){0};
    bsp_ingest_opts iopts = {.hooks = segs ? &hooks : NULL};
    bsp_ingest *ing;
    if (!rc) rc = ingest_start(st, &iopts, &ing);
    if (rc) {
        segments_close(segs);
        store_close(st);
        fprintf(stderr, "bespoke import: cannot start the writer: %s\n", bsp_err_name(rc));
        return 1;
    }
    bsp_import_summary sum = {0};
    bsp_error err;
    bsp_error_clear(&err);
    rc = import_run(ing, fmt, argv[optind], progress, &sum, &err);
    double settle_s = 0;
    if (!rc && segs) rc = settle_segments(segs, ing, &settle_s, &err);
    ingest_stop(ing);
    bool segs_opened = segs != NULL;
    segments_close(segs);
    store_close(st);
    if (rc) {
        fprintf(stderr, "bespoke import: %s%s%s\n", err.message[0] ? err.message : bsp_err_name(rc),
                err.at[0] ? " at " : "", err.at);
        return 1;
    }
    print_import_summary(&sum);
    if (segs_opened) printf("segments brought up to date in %.2f s\n", settle_s);
    return 0;
}

static int cmd_simulate(int argc, char **argv) {
    static const struct option longopts[] = {{"events", required_argument, 0, 'e'},
                                             {"out", required_argument, 0, 'o'},
                                             {"seed", required_argument, 0, 's'},
                                             {"products", required_argument, 0, 'p'},
                                             {"visitors", required_argument, 0, 'v'},
                                             {"arrival-days", required_argument, 0, 'a'},
                                             {"actions", required_argument, 0, 'n'},
                                             {"catalog", no_argument, 0, 'c'},
                                             {0, 0, 0, 0}};
    bsp_sim_opts opts = {.seed = 1};
    const char *out_path = NULL;
    uint64_t v;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        bool ok = true;
        if (c == 'o')
            out_path = optarg;
        else if (c == 'c')
            opts.catalog_only = true;
        else if (c == 'e' || c == 's' || c == 'p' || c == 'v' || c == 'a' || c == 'n') {
            ok = bsp_parse_size(optarg, &v);
            if ((c == 'a' && (v < 1 || v > 1000)) || (c == 'n' && v > 1000)) ok = false;
            if (c == 'a')
                opts.arrival_days = (uint32_t)v;
            else if (c == 'n') {
                opts.extra_actions = (uint32_t)v;
                opts.extra_actions_set = true;
            } else if (c == 'e')
                opts.events = v;
            else if (c == 's')
                opts.seed = v;
            else if (c == 'p')
                opts.products = (uint32_t)v;
            else
                opts.visitors = (uint32_t)v;
        } else
            ok = false;
        if (!ok) {
            usage_simulate(stderr);
            return 2;
        }
    }
    if (!out_path || (!opts.events && !opts.catalog_only)) {
        usage_simulate(stderr);
        return 2;
    }
    FILE *out = strcmp(out_path, "-") ? fopen(out_path, "w") : stdout;
    if (!out) {
        perror(out_path);
        return 1;
    }
    bsp_err rc = sim_write(&opts, out);
    if (out != stdout && fclose(out) != 0) rc = BSP_EIO;
    if (rc) {
        fprintf(stderr, "bespoke simulate: %s\n", bsp_err_name(rc));
        return 1;
    }
    return 0;
}

static void usage_train(FILE *out) {
    fprintf(out,
            "usage: bespoke train --data DIR [flags]\n\n"
            "  --data DIR           store directory             BESPOKE_DATA (./bespoke-data)\n"
            "  --holdout-days N     also report quality on the last N days, trained on what\n"
            "                       came before (30; 0 = skip)   BESPOKE_HOLDOUT_DAYS\n"
            "  --no-progress        no per-model progress lines on stderr\n\n"
            "Trains every recommendation model from the store's event log and saves an\n"
            "immutable snapshot under DIR/models/ (the server loads the newest). The store\n"
            "must not be open in a running server.\n");
}

static void usage_eval(FILE *out) {
    fprintf(out, "usage: bespoke eval --format online-retail --cutoff DATE FILE [flags]\n\n"
                 "  --format FORMAT      online-retail (the UCI Online Retail CSV, .zst ok)\n"
                 "  --cutoff DATE        ISO date: history before it, truth after it\n"
                 "  --k N                list length scored (20)\n"
                 "  --only WHAT          recommendations | scores (default: both)\n"
                 "  --no-progress        no progress output on stderr\n\n"
                 "Imports what lies before the cutoff into a temporary store, trains, and scores\n"
                 "every customer with orders on both sides: recall@k, NDCG@k and catalog coverage\n"
                 "of each strategy against the distinct products bought after the cutoff;\n"
                 "then AUC and calibration of the purchase and churn scores and the error of\n"
                 "predicted LTV, against recency and frequency rules (docs/evaluation.md).\n");
}

static int cmd_train(int argc, char **argv) {
    static const struct option longopts[] = {{"data", required_argument, 0, 'd'},
                                             {"holdout-days", required_argument, 0, 'h'},
                                             {"no-progress", no_argument, 0, 'n'},
                                             {0, 0, 0, 0}};
    const char *data = NULL, *holdout = NULL;
    reco_cmd_opts o = {.progress = true};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'd')
            data = optarg;
        else if (c == 'h')
            holdout = optarg;
        else if (c == 'n')
            o.progress = false;
        else {
            usage_train(stderr);
            return 2;
        }
    }
    uint64_t days = 30;
    holdout = bsp_opt(holdout, "BESPOKE_HOLDOUT_DAYS", NULL);
    if (optind != argc || (holdout && (!bsp_parse_size(holdout, &days) || days > 3650))) {
        usage_train(stderr);
        return 2;
    }
    o.data_dir = bsp_opt(data, "BESPOKE_DATA", "./bespoke-data");
    o.holdout = days > 0;
    o.holdout_days = (int)days;
    return reco_cmd_train(&o);
}

static int cmd_eval(int argc, char **argv) {
    static const struct option longopts[] = {
        {"format", required_argument, 0, 'f'}, {"cutoff", required_argument, 0, 'c'},
        {"k", required_argument, 0, 'k'},      {"no-progress", no_argument, 0, 'n'},
        {"only", required_argument, 0, 'o'},   {0, 0, 0, 0}};
    const char *format = NULL, *cutoff = NULL, *only = "";
    reco_cmd_opts o = {.progress = true, .k = 20};
    uint64_t k = 20;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        bool ok = true;
        if (c == 'f')
            format = optarg;
        else if (c == 'c')
            cutoff = optarg;
        else if (c == 'k')
            ok = bsp_parse_size(optarg, &k) && k >= 1 && k <= 100;
        else if (c == 'n')
            o.progress = false;
        else if (c == 'o')
            ok = !strcmp(only = optarg, "recommendations") || !strcmp(optarg, "scores");
        else
            ok = false;
        if (!ok) {
            usage_eval(stderr);
            return 2;
        }
    }
    if (!format || strcmp(format, "online-retail") != 0 || !cutoff || optind != argc - 1 ||
        !bsp_time_parse(cutoff, &o.cutoff_ms)) {
        usage_eval(stderr);
        return 2;
    }
    o.file = argv[optind];
    o.k = (size_t)k;
    int code = strcmp(only, "scores") ? reco_cmd_eval(&o) : 0;
    if (code == 0 && strcmp(only, "recommendations"))
        code = predict_cmd_eval(o.file, o.cutoff_ms, o.progress);
    return code;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage_main(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    typedef struct {
        const char *name;
        int (*run)(int, char **);
        void (*usage)(FILE *);
    } command;
    static const command commands[] = {{"serve", cmd_serve, usage_serve},
                                       {"import", cmd_import, usage_import},
                                       {"simulate", cmd_simulate, usage_simulate},
                                       {"segment", segment_command, segment_usage},
                                       {"predict", predict_command, predict_usage},
                                       {"train", cmd_train, usage_train},
                                       {"eval", cmd_eval, usage_eval}};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(cmd, commands[i].name) != 0) continue;
        if (wants_help(argc - 1, argv + 1)) {
            commands[i].usage(stdout);
            return 0;
        }
        return commands[i].run(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("bespoke %s\n", BESPOKE_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage_main(stdout);
        return 0;
    }
    fprintf(stderr, "bespoke: unknown command '%s'\n\n", cmd);
    usage_main(stderr);
    return 2;
}
