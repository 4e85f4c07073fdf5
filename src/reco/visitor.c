/* visitor.c - the visitor as serving sees them: their profile's latest
 * items (recently viewed, cart, purchased) read from its computed traits,
 * and the call other modules use to recommend for a profile. */
#include "reco/reco_internal.h"

#include <string.h>

#include "json/json.h"

/* String items of arr (or product_id of object items), newest last kept
 * within RECO_ITEMS_IN_MAX; purchased keeps its newest. */
static size_t take_ids(const cJSON *arr, const char **out, bool newest_at_end) {
    int n = cJSON_GetArraySize(arr);
    int from = newest_at_end && n > RECO_ITEMS_IN_MAX ? n - RECO_ITEMS_IN_MAX : 0;
    size_t count = 0;
    for (int i = from; i < n && count < RECO_ITEMS_IN_MAX; i++) {
        const cJSON *e = cJSON_GetArrayItem(arr, i);
        const char *id = cJSON_IsString(e) ? e->valuestring : json_get_string(e, "product_id");
        if (id && *id) out[count++] = id;
    }
    return count;
}

void reco_visitor_from_computed(uint64_t pid, const cJSON *computed, reco_visitor_buf *out) {
    memset(out, 0, sizeof *out);
    out->v.pid = pid;
    if (!computed) return;
    out->v.recently_viewed = out->lists[0];
    out->v.recently_viewed_count =
        take_ids(json_get_array(computed, "recently_viewed"), out->lists[0], false);
    out->v.cart = out->lists[1];
    out->v.cart_count = take_ids(json_get_array(computed, "cart"), out->lists[1], false);
    out->v.purchased = out->lists[2];
    out->v.purchased_count = take_ids(json_get_array(computed, "purchased"), out->lists[2], true);
}

void reco_result_release(reco_result *r) {
    reco_snapshot_unref(r->held);
    r->held = NULL;
}

bsp_err reco_for_profile(reco_holder *h, const bsp_profile *p, reco_request *req,
                         reco_result *out) {
    out->count = 0;
    out->held = NULL;
    reco_snapshot *s = reco_holder_acquire(h);
    if (!s) return BSP_EUNAVAIL;
    cJSON *computed = p ? profile_computed_json(p) : NULL;
    if (p && !computed) {
        reco_snapshot_unref(s);
        return BSP_ENOMEM;
    }
    reco_visitor_buf vb;
    reco_visitor_from_computed(p ? profile_pid(p) : 0, computed, &vb);
    req->visitor = &vb.v;
    bsp_err rc = reco_recommend(s, req, out);
    req->visitor = NULL;
    cJSON_Delete(computed);
    if (rc != BSP_OK) {
        reco_snapshot_unref(s);
        return rc;
    }
    out->held = s;
    return BSP_OK;
}
