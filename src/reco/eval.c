/* eval.c - offline metrics: for each visitor with a trained history and a
 * ground truth (the distinct products bought after the cutoff), each
 * strategy's top k scored as recall@k = hits / min(k, |truth|) and NDCG@k
 * with binary gains, plus the share of the catalog recommended to anyone. */
#include "reco/reco_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct eval_acc {
    double recall, ndcg;
    size_t users;
    uint8_t *shown; /* items recommended to anyone */
} eval_acc;

static bool has_purchases(const reco_snapshot *s, uint64_t pid) {
    uint32_t lo = 0, hi = s->n_users;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->pids[mid] < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == s->n_users || s->pids[lo] != pid) return false;
    for (uint32_t p = s->user_off[lo]; p < s->user_off[lo + 1]; p++)
        if (s->hist[p].orders) return true;
    return false;
}

static void score_list(const reco_snapshot *s, const reco_result *r, const uint8_t *truth,
                       size_t truth_count, size_t k, eval_acc *acc) {
    double dcg = 0, idcg = 0;
    size_t hits = 0;
    for (size_t i = 0; i < r->count && i < k; i++) {
        uint32_t item = reco_item_find(s, r->items[i].product_id);
        if (item == RECO_NONE) continue;
        acc->shown[item] = 1;
        if (!truth[item]) continue;
        hits++;
        dcg += 1.0 / log2((double)i + 2);
    }
    size_t ideal = truth_count < k ? truth_count : k;
    for (size_t i = 0; i < ideal; i++)
        idcg += 1.0 / log2((double)i + 2);
    acc->recall += (double)hits / (double)ideal;
    acc->ndcg += dcg / idcg;
    acc->users++;
}

static bsp_err eval_user(const reco_snapshot *s, const reco_truth *t, size_t k, int64_t now_ms,
                         const reco_strategy *st, size_t n_st, eval_acc *acc, uint8_t *truth) {
    for (size_t i = 0; i < t->count; i++) {
        uint32_t item = reco_item_find(s, t->products[i]);
        if (item != RECO_NONE) truth[item] = 1;
    }
    reco_visitor v = {.pid = t->pid};
    bsp_err rc = BSP_OK;
    for (size_t j = 0; j < n_st && rc == BSP_OK; j++) {
        reco_request req = {
            .strategy = st[j], .visitor = &v, .n = k, .now_ms = now_ms, .seed = t->pid};
        reco_filters_init(&req.filters);
        reco_result res;
        rc = reco_recommend(s, &req, &res);
        if (rc == BSP_OK) score_list(s, &res, truth, t->count, k, &acc[j]);
    }
    for (size_t i = 0; i < t->count; i++) {
        uint32_t item = reco_item_find(s, t->products[i]);
        if (item != RECO_NONE) truth[item] = 0;
    }
    return rc;
}

bsp_err reco_evaluate(const reco_snapshot *s, const reco_truth *truth, size_t truth_count, size_t k,
                      int64_t now_ms, const reco_strategy *strategies, size_t strategy_count,
                      reco_eval_row *rows) {
    if (k < 1 || k > RECO_MAX_N) return BSP_EINVAL;
    eval_acc *acc = calloc(strategy_count + 1, sizeof *acc);
    uint8_t *mark = calloc((size_t)s->n_items + 1, 1);
    bsp_err rc = acc && mark ? BSP_OK : BSP_ENOMEM;
    for (size_t j = 0; j < strategy_count && rc == BSP_OK; j++)
        if (!(acc[j].shown = calloc((size_t)s->n_items + 1, 1))) rc = BSP_ENOMEM;
    for (size_t u = 0; u < truth_count && rc == BSP_OK; u++) {
        if (!truth[u].count || !has_purchases(s, truth[u].pid)) continue;
        rc = eval_user(s, &truth[u], k, now_ms, strategies, strategy_count, acc, mark);
    }
    for (size_t j = 0; j < strategy_count && acc; j++) {
        size_t shown = 0;
        for (uint32_t i = 0; acc[j].shown && i < s->n_items; i++)
            shown += acc[j].shown[i];
        size_t n = acc[j].users ? acc[j].users : 1;
        rows[j] = (reco_eval_row){strategies[j], acc[j].recall / n, acc[j].ndcg / n,
                                  s->n_items ? (double)shown / s->n_items : 0, acc[j].users};
        free(acc[j].shown);
    }
    free(acc);
    free(mark);
    return rc;
}
