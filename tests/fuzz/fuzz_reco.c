/* fuzz_reco.c - libFuzzer target for the request parser of
 * /v1/recommendations and /v1/rank (reco_body_parse, src/reco/request.c).
 * Each result must obey its contract: on success n within 1..RECO_MAX_N,
 * at most RECO_ITEMS_IN_MAX items (RECO_RANK_MAX for rank), every list
 * within its limit, ids within RECO_ID_MAX_BYTES, a known strategy, a
 * bundle with its anchor, a segment only with "popular"; json set exactly
 * when the text was a JSON object. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reco/reco.h"

static void check_ids(const char *const *ids, size_t count, size_t max) {
    if (count > max) abort();
    for (size_t i = 0; i < count; i++)
        if (!ids[i] || !ids[i][0] || strlen(ids[i]) > RECO_ID_MAX_BYTES) abort();
}

static void check(const reco_body *b, bool rank) {
    const reco_request *r = &b->req;
    if (!b->json) abort();
    check_ids(r->items, r->item_count, rank ? RECO_RANK_MAX : RECO_ITEMS_IN_MAX);
    check_ids(r->filters.categories, r->filters.category_count, RECO_FILTER_LIST_MAX);
    check_ids(r->filters.exclude_ids, r->filters.exclude_count, RECO_FILTER_LIST_MAX);
    if (r->filters.boost_count > RECO_FILTER_LIST_MAX) abort();
    if (rank) return;
    if (r->n < 1 || r->n > RECO_MAX_N || r->strategy >= RECO_STRATEGY_COUNT) abort();
    if (b->bundle && (r->strategy != RECO_BUNDLE || r->item_count == 0)) abort();
    if (b->segment && (r->strategy != RECO_POPULAR || strlen(b->segment) > RECO_ID_MAX_BYTES))
        abort();
    if (r->filters.max_per_category > RECO_MAX_N) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static reco_body b; /* large: not on the stack */
    for (int rank = 0; rank < 2; rank++) {
        bsp_error err;
        bsp_err rc = reco_body_parse((const char *)data, size, rank, &b, &err);
        if (rc == BSP_OK) check(&b, rank);
        if (rc != BSP_OK && err.code == BSP_OK) abort();
        reco_body_free(&b);
    }
    return 0;
}
