/* cli.c - `bespoke segment rfm|cluster`: flags, opening the store with its
 * own writer (so the server must not be running on it: the store is
 * locked), progress on a terminal, and the summary table. Lives here rather
 * than in main.c so that main.c stays a dispatcher. */
#include "segment/segment.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest/ingest.h"

void segment_usage(FILE *out) {
    fprintf(out,
            "usage: bespoke segment rfm --data DIR [flags]\n"
            "       bespoke segment cluster --data DIR [--k auto|N] [flags]\n\n"
            "  rfm                  score buyers 1..5 on recency, frequency, monetary value and\n"
            "                       assign the groups rfm_champions, rfm_loyal, ... (rfm.* paths)\n"
            "  cluster              k-means++ on behavioural features; segments "
            "cluster_1..cluster_k\n\n"
            "  --data DIR           store directory             BESPOKE_DATA (./bespoke-data)\n"
            "  --k auto|N           clusters, 2..%d (auto: best silhouette of 2..%d)\n"
            "  --seed N             clustering seed (1)\n"
            "  --at TIME            reference time for recency (ISO 8601; default: newest event)\n"
            "  --identified-only    only profiles with a userId (leave guests out)\n"
            "  --no-progress        no progress line (drawn only on a terminal anyway)\n\n"
            "The server must not be running on DIR (it holds the store); it runs RFM itself\n"
            "every --rfm-interval.\n",
            CLUSTER_K_MAX, CLUSTER_K_MAX);
}

typedef struct cli_flags {
    const char *data, *k, *at;
    uint64_t seed;
    bool progress, identified_only;
} cli_flags;

static bool parse_flags(int argc, char **argv, cli_flags *f) {
    static const struct option longopts[] = {{"data", required_argument, 0, 'd'},
                                             {"k", required_argument, 0, 'k'},
                                             {"seed", required_argument, 0, 's'},
                                             {"at", required_argument, 0, 'a'},
                                             {"no-progress", no_argument, 0, 'n'},
                                             {"identified-only", no_argument, 0, 'i'},
                                             {0, 0, 0, 0}};
    *f = (cli_flags){.seed = 1, .progress = isatty(STDERR_FILENO)};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'd')
            f->data = optarg;
        else if (c == 'k')
            f->k = optarg;
        else if (c == 'a')
            f->at = optarg;
        else if (c == 'n')
            f->progress = false;
        else if (c == 'i')
            f->identified_only = true;
        else if (c != 's' || !bsp_parse_size(optarg, &f->seed))
            return false;
    }
    f->data = bsp_opt(f->data, "BESPOKE_DATA", "./bespoke-data");
    return optind == argc;
}

static void show_progress(void *ctx, const char *stage, size_t done, size_t total) {
    const char *job = ctx;
    if (total)
        fprintf(stderr, "\r%s: %s %zu / %zu profiles   ", job, stage, done, total);
    else
        fprintf(stderr, "\r%s: %s %zu profiles   ", job, stage, done);
    if (done == total) fputc('\n', stderr);
}

static void print_rfm(const rfm_summary *s) {
    char ref[32];
    bsp_time_format(s->reference_ms, ref, sizeof ref);
    printf("RFM: %zu buyers scored against %s, %zu profiles rewritten in %.2f s\n\n", s->buyers,
           ref, s->written, s->seconds);
    printf("%-22s %8s %7s %12s %10s %12s\n", "segment", "buyers", "share", "recency(d)", "orders",
           "revenue");
    for (int g = 0; g < RFM_GROUP_COUNT; g++) {
        const rfm_group_stats *st = &s->groups[g];
        double share = s->buyers ? 100.0 * (double)st->size / (double)s->buyers : 0;
        printf("rfm_%-18s %8zu %6.1f%% %12.0f %10.1f %12.0f\n", rfm_group_name((rfm_group)g),
               st->size, share, st->recency_days, st->orders, st->revenue);
    }
    printf("(recency, orders, revenue: means over the group)\n");
}

static void print_clusters(const cluster_summary *s) {
    printf("clusters: %zu profiles with activity, k = %zu, %zu profiles rewritten in %.2f s\n",
           s->population, s->k, s->written, s->seconds);
    printf("silhouette by k:");
    for (size_t k = 2; k <= CLUSTER_K_MAX; k++)
        if (s->silhouette[k] != 0) printf(" %zu:%.3f", k, s->silhouette[k]);
    printf("\n\n");
    for (size_t m = 0; m < s->k; m++)
        printf("cluster_%zu %8zu  %s\n", m + 1, s->sizes[m], s->descriptions[m]);
}

/* Opens the store and a writer of its own, runs the job, closes. */
typedef bsp_err (*job_fn)(bsp_ingest *ing, bsp_store *st, const cli_flags *f, void *out);

static int with_store(const char *what, const cli_flags *f, job_fn job, void *out) {
    bsp_store *st;
    bsp_err rc = store_open(f->data, NULL, &st);
    if (rc) {
        fprintf(stderr, "bespoke segment %s: cannot open store %s: %s%s\n", what, f->data,
                bsp_err_name(rc), rc == BSP_EBUSY ? " (is the server running on it?)" : "");
        return 1;
    }
    bsp_ingest *ing;
    rc = ingest_start(st, NULL, &ing);
    if (rc == BSP_OK) {
        rc = job(ing, st, f, out);
        ingest_stop(ing);
    }
    store_close(st);
    if (rc) fprintf(stderr, "bespoke segment %s: %s\n", what, bsp_err_name(rc));
    return rc ? 1 : 0;
}

static bool parse_at(const cli_flags *f, int64_t *ms) {
    *ms = 0;
    if (f->at && !bsp_time_parse(f->at, ms)) {
        fprintf(stderr, "bespoke segment: --at wants an ISO 8601 time\n");
        return false;
    }
    return true;
}

static bsp_err run_rfm(bsp_ingest *ing, bsp_store *st, const cli_flags *f, void *out) {
    rfm_opts o = {.identified_only = f->identified_only,
                  .ctl = {.progress = f->progress ? show_progress : NULL, .ctx = "rfm"}};
    if (!parse_at(f, &o.reference_ms)) return BSP_EINVAL;
    return rfm_run(ing, st, &o, out);
}

static bsp_err run_cluster(bsp_ingest *ing, bsp_store *st, const cli_flags *f, void *out) {
    cluster_opts o = {.seed = f->seed,
                      .identified_only = f->identified_only,
                      .ctl = {.progress = f->progress ? show_progress : NULL, .ctx = "cluster"}};
    if (!parse_at(f, &o.reference_ms)) return BSP_EINVAL;
    if (f->k && strcmp(f->k, "auto") != 0) {
        uint64_t k;
        if (!bsp_parse_size(f->k, &k) || k < 2 || k > CLUSTER_K_MAX) {
            fprintf(stderr, "bespoke segment cluster: --k is auto or 2..%d\n", CLUSTER_K_MAX);
            return BSP_EINVAL;
        }
        o.k = (size_t)k;
    }
    return cluster_run(ing, st, &o, out);
}

int segment_command(int argc, char **argv) {
    cli_flags f;
    const char *sub = argc > 1 ? argv[1] : "";
    bool rfm = strcmp(sub, "rfm") == 0, cluster = strcmp(sub, "cluster") == 0;
    if ((!rfm && !cluster) || !parse_flags(argc - 1, argv + 1, &f)) {
        segment_usage(stderr);
        return 2;
    }
    if (rfm) {
        rfm_summary s;
        int code = with_store("rfm", &f, run_rfm, &s);
        if (code == 0) print_rfm(&s);
        return code;
    }
    cluster_summary s;
    int code = with_store("cluster", &f, run_cluster, &s);
    if (code == 0) print_clusters(&s);
    return code;
}
