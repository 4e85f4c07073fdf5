/* evalcmd.c - the work behind `bespoke train` and `bespoke eval`.
 *
 * train: opens the store, trains on everything, optionally measures the
 * quality of the same training on a held-out slice (the last N days: a
 * second training on what lies before them, scored against the purchases
 * in them), saves the snapshot and prints a summary.
 *
 * eval: splits an Online Retail file at the cutoff: rows before it go to a
 * temporary CSV that is imported into a temporary store (so profiles and
 * the catalog know nothing of the future), rows after it become the ground
 * truth (each customer's distinct products in non-cancelled invoices);
 * trains, scores every strategy and prints the table. */
#include "reco/reco_internal.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "import/import.h"
#include "ingest/ingest.h"

static const reco_strategy eval_strategies[] = {
    RECO_PERSONALIZED,    RECO_BUY_AGAIN,       RECO_EASE,    RECO_ITEM_KNN,
    RECO_SIMILAR,         RECO_BOUGHT_TOGETHER, RECO_CART,    RECO_CONTENT,
    RECO_VIEWED_TOGETHER, RECO_TRENDING,        RECO_POPULAR, RECO_RANDOM,
};
#define EVAL_STRATEGIES (sizeof eval_strategies / sizeof eval_strategies[0])

static void print_table(const reco_eval_row *rows, size_t n, size_t k) {
    printf("%-18s %10s %10s %10s %8s\n", "strategy", "recall@", "ndcg@", "coverage", "users");
    for (size_t i = 0; i < n; i++)
        printf("%-18s %10.4f %10.4f %10.4f %8zu\n", reco_strategy_name(rows[i].strategy),
               rows[i].recall, rows[i].ndcg, rows[i].coverage, rows[i].users);
    printf("(k = %zu; recall@k = hits / min(k, products bought after the cutoff))\n", k);
}

/* --- ground truth ------------------------------------------------------------- */

typedef struct pair {
    char *customer;
    char *product;
} pair;

typedef struct truth_set {
    pair *pairs;
    size_t count, cap;
    reco_truth *users;
    size_t n_users;
    const char **products; /* borrowed from pairs, grouped by user */
} truth_set;

static bsp_err truth_add(truth_set *t, const char *customer, const char *product) {
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4096;
        pair *p = realloc(t->pairs, cap * sizeof *p);
        if (!p) return BSP_ENOMEM;
        t->pairs = p;
        t->cap = cap;
    }
    pair *p = &t->pairs[t->count];
    p->customer = strdup(customer);
    p->product = strdup(product);
    if (!p->customer || !p->product) {
        free(p->customer);
        free(p->product);
        return BSP_ENOMEM;
    }
    t->count++;
    return BSP_OK;
}

static int pair_cmp(const void *a, const void *b) {
    const pair *x = a, *y = b;
    int c = strcmp(x->customer, y->customer);
    return c ? c : strcmp(x->product, y->product);
}

static void truth_free(truth_set *t) {
    for (size_t i = 0; i < t->count; i++) {
        free(t->pairs[i].customer);
        free(t->pairs[i].product);
    }
    free(t->pairs);
    free(t->users);
    free(t->products);
    memset(t, 0, sizeof *t);
}

/* Groups the pairs by customer (distinct products) and resolves customers
 * to profile ids; customers unknown before the cutoff are left out. */
static bsp_err truth_resolve(truth_set *t, bsp_txn *txn) {
    qsort(t->pairs, t->count, sizeof *t->pairs, pair_cmp);
    t->users = calloc(t->count + 1, sizeof *t->users);
    t->products = calloc(t->count + 1, sizeof *t->products);
    if (!t->users || !t->products) return BSP_ENOMEM;
    size_t np = 0;
    for (size_t i = 0; i < t->count;) {
        size_t j = i, start = np;
        for (; j < t->count && strcmp(t->pairs[j].customer, t->pairs[i].customer) == 0; j++)
            if (j == i || strcmp(t->pairs[j].product, t->pairs[j - 1].product) != 0)
                t->products[np++] = t->pairs[j].product;
        uint64_t pid;
        if (ingest_resolve(txn, t->pairs[i].customer, &pid) == BSP_OK)
            t->users[t->n_users++] = (reco_truth){pid, t->products + start, np - start};
        i = j;
    }
    return BSP_OK;
}

/* --- eval: split the file ---------------------------------------------------------- */

static bool truth_row(const bsp_or_row *row) {
    return row->customer[0] && row->invoice[0] != 'C' && row->quantity > 0 &&
           online_retail_is_product_code(row->stock_code);
}

static bsp_err split_rows(bsp_reader *r, FILE *before, int64_t cutoff, truth_set *t,
                          size_t *rows_before) {
    static char copy[BSP_CSV_MAX_LINE + 1];
    size_t len;
    bool too_long;
    const char *line;
    while ((line = reader_line(r, &len, &too_long))) {
        if (too_long || len >= sizeof copy) continue;
        memcpy(copy, line, len + 1);
        bsp_or_row row;
        bsp_error err;
        if (online_retail_parse_row(copy, len, &row, &err) != BSP_OK) continue;
        if (row.ts_ms < cutoff) {
            (*rows_before)++;
            if (fwrite(line, 1, len, before) != len || fputc('\n', before) == EOF) return BSP_EIO;
        } else if (truth_row(&row) && truth_add(t, row.customer, row.stock_code) != BSP_OK) {
            return BSP_ENOMEM;
        }
    }
    return reader_error(r);
}

static bsp_err split_file(const char *path, const char *out_path, int64_t cutoff, truth_set *t,
                          size_t *rows_before) {
    bsp_reader *r;
    bsp_err rc = reader_open(path, &r);
    if (rc != BSP_OK) return rc;
    FILE *before = fopen(out_path, "w");
    size_t len;
    bool too_long;
    const char *header = reader_line(r, &len, &too_long);
    if (!before || !header || !online_retail_is_header(header, len))
        rc = before ? BSP_EPARSE : BSP_EIO;
    else if (fwrite(header, 1, len, before) != len || fputc('\n', before) == EOF)
        rc = BSP_EIO;
    if (rc == BSP_OK) rc = split_rows(r, before, cutoff, t, rows_before);
    if (before && fclose(before) != 0 && rc == BSP_OK) rc = BSP_EIO;
    reader_close(r);
    return rc;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* --- eval ----------------------------------------------------------------------------- */

static bsp_err import_before(const char *csv, const char *store_dir, bool progress,
                             bsp_store **st) {
    bsp_store_opts so = {.no_sync = true};
    bsp_err rc = store_open(store_dir, &so, st);
    if (rc != BSP_OK) return rc;
    bsp_ingest *ing;
    rc = ingest_start(*st, NULL, &ing);
    if (rc != BSP_OK) return rc;
    bsp_import_summary sum = {0};
    bsp_error err;
    bsp_error_clear(&err);
    rc = import_run(ing, BSP_IMPORT_ONLINE_RETAIL, csv, progress, &sum, &err);
    ingest_stop(ing);
    fprintf(stderr, "eval: imported %llu rows before the cutoff (%llu orders) in %.1f s\n",
            (unsigned long long)sum.rows, (unsigned long long)sum.events, sum.seconds);
    return rc;
}

static void print_train_stats(const reco_train_stats *st) {
    fprintf(stderr,
            "trained on %llu events: %llu visitors, %llu products, %llu interactions "
            "in %.2f s\n",
            (unsigned long long)st->events, (unsigned long long)st->users,
            (unsigned long long)st->items, (unsigned long long)st->interactions, st->seconds);
}

static bsp_err train_and_score(bsp_store *st, truth_set *t, const reco_cmd_opts *o) {
    bsp_txn *txn;
    bsp_err rc = store_txn_begin(st, false, &txn);
    if (rc != BSP_OK) return rc;
    reco_snapshot *s = NULL;
    reco_train_stats stats;
    reco_train_opts to = {.progress = o->progress};
    rc = reco_train(txn, &to, &s, &stats);
    if (rc == BSP_OK) rc = truth_resolve(t, txn);
    store_txn_abort(txn);
    if (rc != BSP_OK) return rc;
    print_train_stats(&stats);
    reco_eval_row rows[EVAL_STRATEGIES];
    size_t k = o->k ? o->k : 20;
    rc = reco_evaluate(s, t->users, t->n_users, k, o->cutoff_ms, eval_strategies, EVAL_STRATEGIES,
                       rows);
    if (rc == BSP_OK) print_table(rows, EVAL_STRATEGIES, k);
    reco_snapshot_unref(s);
    return rc;
}

int reco_cmd_eval(const reco_cmd_opts *o) {
    char dir[] = "/tmp/bespoke-eval-XXXXXX", csv[64], store_dir[64];
    if (!mkdtemp(dir)) {
        perror("bespoke eval: temporary directory");
        return 1;
    }
    snprintf(csv, sizeof csv, "%s/before.csv", dir);
    snprintf(store_dir, sizeof store_dir, "%s/store", dir);
    truth_set t = {0};
    size_t rows_before = 0;
    bsp_store *st = NULL;
    bsp_err rc = split_file(o->file, csv, o->cutoff_ms, &t, &rows_before);
    if (rc == BSP_OK) rc = import_before(csv, store_dir, o->progress, &st);
    if (rc == BSP_OK) rc = train_and_score(st, &t, o);
    if (st) store_close(st);
    truth_free(&t);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (rc != BSP_OK) {
        fprintf(stderr, "bespoke eval: %s\n", bsp_err_name(rc));
        return 1;
    }
    return 0;
}

/* --- train ------------------------------------------------------------------------------ */

static void print_summary(const reco_snapshot *s, const reco_train_stats *st) {
    printf("%-18s %10s %12s\n", "model", "seconds", "entries");
    for (size_t i = 0; i < st->model_count; i++)
        printf("%-18s %10.3f %12llu\n", st->models[i].name, st->models[i].seconds,
               (unsigned long long)st->models[i].entries);
    printf("trained in %.2f s on %llu events (%llu orders): %llu visitors, %llu products, "
           "%llu interactions\n",
           st->seconds, (unsigned long long)st->events, (unsigned long long)st->orders,
           (unsigned long long)st->users, (unsigned long long)st->items,
           (unsigned long long)st->interactions);
    for (size_t i = 0; i < st->model_count; i++)
        if (strcmp(st->models[i].name, "ease") == 0 && st->models[i].seconds > 0)
            printf("ease: %.1f GFLOP of Cholesky and inverse in %.3f s (%.1f GFLOP/s)\n",
                   st->ease_gflop, st->models[i].seconds, st->ease_gflop / st->models[i].seconds);
    printf("snapshot version %llu, about %.1f MB in memory\n",
           (unsigned long long)reco_snapshot_version(s), (double)reco_snapshot_bytes(s) / 1e6);
    if (st->interactions)
        printf("memory per 1M interactions: %.1f MB\n",
               (double)reco_snapshot_bytes(s) / 1e6 / ((double)st->interactions / 1e6));
}

/* The purchases on or after cutoff, per visitor, from the training data. */
static bsp_err holdout_truth(const reco_data *d, int64_t cutoff, truth_set *t) {
    t->users = calloc((size_t)d->n_users + 1, sizeof *t->users);
    t->products = calloc(d->n_inter + 1, sizeof *t->products);
    if (!t->users || !t->products) return BSP_ENOMEM;
    uint8_t *seen = calloc((size_t)d->n_items + 1, 1);
    if (!seen) return BSP_ENOMEM;
    size_t np = 0;
    for (uint32_t u = 0; u < d->n_users; u++) {
        size_t start = np;
        for (size_t i = d->user_off[u]; i < d->user_off[u + 1]; i++) {
            const reco_inter *in = &d->inter[i];
            if (in->kind != RECO_KIND_BUY || in->ts_ms < cutoff || seen[in->item]) continue;
            seen[in->item] = 1;
            t->products[np++] = d->ids[in->item];
        }
        for (size_t i = start; i < np; i++)
            seen[imap_find(&d->map, (const char *const *)d->ids, t->products[i])] = 0;
        if (np > start)
            t->users[t->n_users++] = (reco_truth){d->pids[u], t->products + start, np - start};
    }
    free(seen);
    return BSP_OK;
}

static const reco_strategy holdout_strategies[] = {RECO_PERSONALIZED, RECO_BUY_AGAIN, RECO_EASE,
                                                   RECO_ITEM_KNN, RECO_POPULAR};

static bsp_err holdout(bsp_txn *txn, const reco_snapshot *full, const reco_cmd_opts *o) {
    int days = o->holdout_days ? o->holdout_days : 30;
    int64_t cutoff = reco_snapshot_data_end_ms(full) - (int64_t)days * 24 * 3600 * 1000;
    reco_data d;
    bsp_err rc = reco_data_load(txn, 0, &d);
    truth_set t = {0};
    if (rc != BSP_OK) return rc;
    rc = holdout_truth(&d, cutoff, &t);
    reco_snapshot *s = NULL;
    reco_train_opts to = {.before_ms = cutoff};
    if (rc == BSP_OK) rc = reco_train(txn, &to, &s, NULL);
    size_t n = sizeof holdout_strategies / sizeof holdout_strategies[0];
    reco_eval_row rows[sizeof holdout_strategies / sizeof holdout_strategies[0]];
    if (rc == BSP_OK)
        rc = reco_evaluate(s, t.users, t.n_users, 20, cutoff, holdout_strategies, n, rows);
    if (rc == BSP_OK) {
        printf("\nheld out: purchases of the last %d days, model trained on what came before\n",
               days);
        print_table(rows, n, 20);
    }
    reco_snapshot_unref(s);
    truth_free(&t);
    reco_data_free(&d);
    return rc;
}

int reco_cmd_train(const reco_cmd_opts *o) {
    bsp_store *st;
    bsp_err rc = store_open(o->data_dir, NULL, &st);
    if (rc != BSP_OK) {
        fprintf(stderr, "bespoke train: cannot open store %s: %s (is a server running on it?)\n",
                o->data_dir, bsp_err_name(rc));
        return 1;
    }
    bsp_txn *txn;
    reco_snapshot *s = NULL;
    reco_train_stats stats;
    reco_train_opts to = {.progress = o->progress};
    rc = store_txn_begin(st, false, &txn);
    if (rc == BSP_OK) {
        if (o->progress) fprintf(stderr, "training from %s\n", o->data_dir);
        rc = reco_train(txn, &to, &s, &stats);
        if (rc == BSP_OK) rc = reco_snapshot_save(s, o->data_dir);
        if (rc == BSP_OK) print_summary(s, &stats);
        if (rc == BSP_OK && o->holdout) rc = holdout(txn, s, o);
        store_txn_abort(txn);
    }
    reco_snapshot_unref(s);
    store_close(st);
    if (rc != BSP_OK) {
        fprintf(stderr, "bespoke train: %s\n", bsp_err_name(rc));
        return 1;
    }
    return 0;
}
