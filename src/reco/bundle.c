/* bundle.c - "frequently bought together" as a bundle: an anchor product
 * and its best bought-together complements (the co-occurrence model's lift,
 * after the request's filters), with the summed catalog price, so that a
 * product page can offer "all three for £X". */
#include "reco/reco_internal.h"

#include <string.h>

#include "json/json.h"

static void add_member(const reco_snapshot *s, reco_bundle *out, uint32_t item) {
    size_t k = out->count++;
    out->product_ids[k] = s->ids[item];
    out->prices[k] = s->price[item];
    if (s->price[item] >= 0)
        out->price += s->price[item];
    else
        out->price_complete = false;
}

bsp_err reco_bundle_for(const reco_snapshot *s, const char *anchor, const reco_filters *f,
                        size_t max, reco_bundle *out) {
    memset(out, 0, sizeof *out);
    uint32_t a = anchor ? reco_item_find(s, anchor) : RECO_NONE;
    if (a == RECO_NONE) return BSP_ENOTFOUND;
    if (max < 1 || max > RECO_BUNDLE_MAX) max = RECO_BUNDLE_MAX;
    out->price_complete = true;
    add_member(s, out, a);
    out->currency = json_get_string(s->products[a], "currency");
    reco_request req = {.strategy = RECO_BUNDLE, .items = &anchor, .item_count = 1, .n = max};
    if (f)
        req.filters = *f;
    else
        reco_filters_init(&req.filters);
    reco_result r;
    bsp_err rc = reco_recommend(s, &req, &r);
    for (size_t i = 0; rc == BSP_OK && i < r.count; i++)
        add_member(s, out, reco_item_find(s, r.items[i].product_id));
    return rc;
}
