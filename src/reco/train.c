/* train.c - reco_train: reads the store (data.c), runs every model in turn
 * with its wall time and size, and finishes the snapshot. Progress is one
 * line a model on stderr. */
#include "reco/reco_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct trainer {
    const reco_train_opts *opts;
    reco_train_stats *st;
    reco_data d;
    reco_snapshot *s;
    reco_sets orders, sessions, buyers;
    uint64_t t0;
} trainer;

static void step_begin(trainer *t) {
    t->t0 = bsp_mono_ns();
}

static void step_end(trainer *t, const char *name, uint64_t entries) {
    double sec = (double)(bsp_mono_ns() - t->t0) / 1e9;
    if (t->st->model_count < RECO_MODEL_STATS)
        t->st->models[t->st->model_count++] = (reco_model_stat){name, sec, entries};
    if (t->opts->progress)
        fprintf(stderr, "  %-16s %8.3f s  %10llu entries\n", name, sec,
                (unsigned long long)entries);
}

/* Moves the items (ids and catalog) from the training data to the snapshot. */
static bsp_err take_items(trainer *t) {
    reco_snapshot *s = t->s;
    s->n_items = t->d.n_items;
    s->ids = t->d.ids;
    s->products = t->d.products;
    t->d.ids = NULL;
    t->d.products = NULL;
    t->d.n_items = 0;
    return BSP_OK;
}

static bsp_err run_cooc(trainer *t) {
    uint32_t n = t->d.n_items;
    reco_snapshot *s = t->s;
    step_begin(t);
    bsp_err rc = reco_sets_build(&t->d, SETS_ORDERS, &t->orders);
    if (rc == BSP_OK)
        rc = reco_cooc(&t->orders, n, COOC_LIFT, RECO_COOC_K, &s->graph[RECO_REL_BOUGHT]);
    if (rc != BSP_OK) return rc;
    step_end(t, "bought_together", reco_graph_entries(&s->graph[RECO_REL_BOUGHT], n));
    step_begin(t);
    rc = reco_sets_build(&t->d, SETS_SESSIONS, &t->sessions);
    if (rc == BSP_OK)
        rc = reco_cooc(&t->sessions, n, COOC_LIFT, RECO_COOC_K, &s->graph[RECO_REL_VIEWED]);
    if (rc != BSP_OK) return rc;
    step_end(t, "viewed_together", reco_graph_entries(&s->graph[RECO_REL_VIEWED], n));
    step_begin(t);
    rc = reco_sets_build(&t->d, SETS_BUYERS, &t->buyers);
    if (rc == BSP_OK)
        rc = reco_cooc(&t->buyers, n, COOC_COSINE, RECO_KNN_K, &s->graph[RECO_REL_KNN]);
    if (rc != BSP_OK) return rc;
    step_end(t, "item_knn", reco_graph_entries(&s->graph[RECO_REL_KNN], n));
    return BSP_OK;
}

static bsp_err run_models(trainer *t) {
    uint32_t n = t->d.n_items;
    reco_snapshot *s = t->s;
    step_begin(t);
    bsp_err rc = reco_model_popular(&t->d, s);
    if (rc == BSP_OK) rc = reco_model_trending(&t->d, s);
    if (rc != BSP_OK) return rc;
    step_end(t, "popular+trending", 2ull * n);
    step_begin(t);
    if ((rc = reco_model_history(&t->d, s)) != BSP_OK) return rc;
    step_end(t, "buy_again", s->user_off[s->n_users] + 2ull * n);
    if ((rc = run_cooc(t)) != BSP_OK) return rc;
    step_begin(t);
    double lambda = t->opts->ease_lambda > 0 ? t->opts->ease_lambda : RECO_EASE_LAMBDA;
    rc =
        reco_ease(&t->buyers, n, lambda, RECO_EASE_K, &s->graph[RECO_REL_EASE], &t->st->ease_gflop);
    if (rc != BSP_OK) return rc;
    step_end(t, "ease", reco_graph_entries(&s->graph[RECO_REL_EASE], n));
    return BSP_OK;
}

/* after take_items: the vectors need the snapshot's item count */
static bsp_err run_uvec(trainer *t) {
    step_begin(t);
    double gflop;
    bsp_err rc = reco_model_uvec(t->s, &gflop);
    if (rc == BSP_OK) step_end(t, "user_vectors", (uint64_t)t->s->n_users * t->s->dim);
    return rc;
}

static bsp_err run_content(trainer *t) {
    step_begin(t);
    bsp_err rc = reco_content(t->s, RECO_CONTENT_K, &t->s->graph[RECO_REL_CONTENT]);
    if (rc == BSP_OK)
        step_end(t, "content", reco_graph_entries(&t->s->graph[RECO_REL_CONTENT], t->s->n_items));
    return rc;
}

static bsp_err train(trainer *t, bsp_txn *txn) {
    step_begin(t);
    bsp_err rc = reco_data_load(txn, t->opts->before_ms, &t->d);
    if (rc != BSP_OK) return rc;
    t->st->events = t->d.events;
    t->st->orders = t->d.orders;
    t->st->interactions = t->d.n_inter;
    t->st->items = t->d.n_items;
    t->st->users = t->d.n_users;
    step_end(t, "read log", t->d.n_inter);
    t->s->data_end_ms = t->d.end_ms;
    rc = run_models(t);
    if (rc == BSP_OK) rc = take_items(t);
    if (rc == BSP_OK) rc = run_uvec(t);
    /* content needs the derived fields (category, price) */
    if (rc == BSP_OK) rc = reco_snapshot_finish(t->s);
    if (rc == BSP_OK) rc = run_content(t);
    return rc;
}

bsp_err reco_train(bsp_txn *txn, const reco_train_opts *opts, reco_snapshot **out,
                   reco_train_stats *stats) {
    reco_train_stats local = {0};
    reco_train_opts dflt = {0};
    trainer t = {.opts = opts ? opts : &dflt, .st = stats ? stats : &local};
    memset(t.st, 0, sizeof *t.st);
    uint64_t start = bsp_mono_ns();
    *out = NULL;
    t.s = reco_snapshot_alloc();
    if (!t.s) return BSP_ENOMEM;
    t.s->created_ms = bsp_now_ms();
    bsp_err rc = train(&t, txn);
    reco_sets_free(&t.orders);
    reco_sets_free(&t.sessions);
    reco_sets_free(&t.buyers);
    reco_data_free(&t.d);
    t.st->seconds = (double)(bsp_mono_ns() - start) / 1e9;
    if (rc != BSP_OK) {
        reco_snapshot_unref(t.s);
        return rc;
    }
    *out = t.s;
    return BSP_OK;
}
