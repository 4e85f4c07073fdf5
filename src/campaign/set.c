/* set.c - compiling the stored campaigns and placements into one immutable
 * snapshot for decisions: only active campaigns, conditions compiled once,
 * answer contents serialized once, campaigns grouped by placement and
 * sorted by priority (highest first, then id), placements sorted by id for
 * binary search. A campaign may name a placement that has no record: it
 * then exists with no default. */
#include "campaign/campaign_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct builder {
    campaign_registry *reg;
    bsp_txn *txn;
    campaign_set *set;
    size_t campaign_cap, placement_cap;
    bsp_err rc;
} builder;

/* --- placements --------------------------------------------------------------------- */

static placement_rt *placement_find(campaign_set *set, const char *id) {
    for (size_t i = 0; i < set->placement_count; i++)
        if (strcmp(set->placements[i].id, id) == 0) return &set->placements[i];
    return NULL;
}

static placement_rt *placement_add(builder *b, const char *id) {
    campaign_set *set = b->set;
    if (set->placement_count == b->placement_cap) {
        size_t cap = b->placement_cap ? b->placement_cap * 2 : 16;
        placement_rt *p = realloc(set->placements, cap * sizeof *p);
        if (!p) return NULL;
        set->placements = p;
        b->placement_cap = cap;
    }
    placement_rt *p = &set->placements[set->placement_count];
    memset(p, 0, sizeof *p);
    p->id = strdup(id);
    if (!p->id) return NULL;
    set->placement_count++;
    return p;
}

static bsp_err placement_visit(void *ctx, bsp_slice id, bsp_slice json) {
    (void)id;
    builder *b = ctx;
    cJSON *obj = cJSON_ParseWithLength(json.data, json.len);
    const char *pid = json_get_string(obj, "id");
    const cJSON *deflt = json_member(obj, "default");
    bsp_err rc = BSP_OK;
    placement_rt *p = pid ? placement_add(b, pid) : NULL;
    if (!obj || !pid) {
        bsp_warn("campaigns: skipping an unreadable placement record");
    } else if (!p) {
        rc = BSP_ENOMEM;
    } else if (cJSON_IsObject(deflt)) {
        p->default_json = cJSON_PrintUnformatted(deflt);
        if (!p->default_json) rc = BSP_ENOMEM;
        p->default_len = p->default_json ? strlen(p->default_json) : 0;
    }
    cJSON_Delete(obj);
    return rc;
}

/* --- campaigns ---------------------------------------------------------------------- */

static int64_t time_or(const cJSON *obj, const char *key, int64_t dflt) {
    const char *text = json_get_string(obj, key);
    int64_t ms;
    return text && bsp_time_parse(text, &ms) ? ms : dflt;
}

static campaign_content_type content_type(const cJSON *content) {
    static const char *const names[] = {"banner", "coupon", "toggle", "products", "quiz"};
    const char *t = json_get_string(content, "type");
    for (int i = 0; t && i < 5; i++)
        if (strcmp(t, names[i]) == 0) return (campaign_content_type)i;
    return CONTENT_BANNER;
}

/* The answer's content: the stored one without a pool's codes. */
static bsp_err content_compile(builder *b, campaign_rt *c, const cJSON *content) {
    c->type = content_type(content);
    c->content = cJSON_Duplicate(content, true);
    if (!c->content) return BSP_ENOMEM;
    cJSON *pool = cJSON_DetachItemFromObjectCaseSensitive(c->content, "pool");
    bsp_err rc = BSP_OK;
    if (pool) rc = coupon_pool_load(b->reg, b->txn, c->id, pool, &c->pool);
    cJSON_Delete(pool);
    if (rc != BSP_OK) return rc;
    c->products_n = (int)json_get_number(content, "n", 8);
    c->content_json = cJSON_PrintUnformatted(c->content);
    if (!c->content_json) return BSP_ENOMEM;
    c->content_len = strlen(c->content_json);
    return BSP_OK;
}

static bsp_err condition_compile(campaign_rt *c, const cJSON *obj) {
    const char *text = json_get_string(obj, "condition");
    if (!text || !*text) return BSP_OK;
    bsp_error err;
    bsp_err rc = cond_compile(text, strlen(text), &c->cond, &err);
    if (rc == BSP_ENOMEM) return rc;
    if (rc != BSP_OK) {
        /* Saved conditions were checked; a newer parser may disagree. */
        bsp_warn("campaign %s: condition no longer compiles (%s at %s); campaign skipped", c->id,
                 err.message, err.at);
        return BSP_EINVAL;
    }
    /* Kept beside the campaign, so a decision that finds the answer in the
     * profile's note does not read the compiled condition at all. */
    c->cond_conjuncts = (uint32_t)cond_conjuncts(c->cond);
    c->cond_timeless = !(cond_inputs(c->cond) & COND_USES_TIME);
    return BSP_OK;
}

static bsp_err campaign_compile(builder *b, campaign_rt *c, const cJSON *obj) {
    const cJSON *cap = json_member(obj, "cap");
    c->id = strdup(json_get_string(obj, "id"));
    c->placement = strdup(json_get_string(obj, "placement"));
    if (!c->id || !c->placement) return BSP_ENOMEM;
    c->priority = (int)json_get_number(obj, "priority", 0);
    c->start_ms = time_or(obj, "start", INT64_MIN);
    c->end_ms = time_or(obj, "end", INT64_MAX);
    c->cap_per_day = (uint32_t)json_get_number(cap, "per_day", 0);
    c->cap_total = (uint32_t)json_get_number(cap, "total", 0);
    c->control = json_get_number(obj, "control", 0);
    bsp_err rc = condition_compile(c, obj);
    if (rc != BSP_OK) return rc;
    return content_compile(b, c, json_member(obj, "content"));
}

static void campaign_rt_free(campaign_rt *c) {
    free(c->id);
    free(c->placement);
    cond_free(c->cond);
    cJSON_Delete(c->content);
    cJSON_free(c->content_json);
    coupon_pool_free(c->pool);
    memset(c, 0, sizeof *c);
}

static bool readable_campaign(const cJSON *obj) {
    const char *status = json_get_string(obj, "status");
    return obj && json_get_string(obj, "id") && json_get_string(obj, "placement") && status &&
           cJSON_IsObject(json_member(obj, "content"));
}

static bsp_err campaign_visit(void *ctx, bsp_slice id, bsp_slice json) {
    (void)id;
    builder *b = ctx;
    campaign_set *set = b->set;
    cJSON *obj = cJSON_ParseWithLength(json.data, json.len);
    if (!readable_campaign(obj) || strcmp(json_get_string(obj, "status"), "active") != 0) {
        cJSON_Delete(obj);
        return BSP_OK;
    }
    if (set->campaign_count == b->campaign_cap) {
        size_t cap = b->campaign_cap ? b->campaign_cap * 2 : 32;
        campaign_rt *c = realloc(set->campaigns, cap * sizeof *c);
        if (!c) {
            cJSON_Delete(obj);
            return BSP_ENOMEM;
        }
        set->campaigns = c;
        b->campaign_cap = cap;
    }
    campaign_rt *c = &set->campaigns[set->campaign_count];
    memset(c, 0, sizeof *c);
    bsp_err rc = campaign_compile(b, c, obj);
    cJSON_Delete(obj);
    if (rc == BSP_OK)
        set->campaign_count++;
    else
        campaign_rt_free(c);
    return rc == BSP_ENOMEM ? rc : BSP_OK;
}

/* --- grouping -------------------------------------------------------------------------- */

static int by_priority(const void *a, const void *b) {
    const campaign_rt *x = *(campaign_rt *const *)a, *y = *(campaign_rt *const *)b;
    if (x->priority != y->priority) return x->priority > y->priority ? -1 : 1;
    return strcmp(x->id, y->id);
}

static int by_id(const void *a, const void *b) {
    return strcmp(((const placement_rt *)a)->id, ((const placement_rt *)b)->id);
}

static bsp_err group(builder *b) {
    campaign_set *set = b->set;
    for (size_t i = 0; i < set->campaign_count; i++) {
        campaign_rt *c = &set->campaigns[i];
        placement_rt *p = placement_find(set, c->placement);
        if (!p) p = placement_add(b, c->placement);
        if (!p) return BSP_ENOMEM;
        campaign_rt **list = realloc(p->campaigns, (p->count + 1) * sizeof *list);
        if (!list) return BSP_ENOMEM;
        p->campaigns = list;
        p->campaigns[p->count++] = c;
    }
    for (size_t i = 0; i < set->placement_count; i++)
        if (set->placements[i].count > 1)
            qsort(set->placements[i].campaigns, set->placements[i].count, sizeof(campaign_rt *),
                  by_priority);
    if (set->placement_count > 1)
        qsort(set->placements, set->placement_count, sizeof *set->placements, by_id);
    return BSP_OK;
}

static void collect_event_names(campaign_set *set) {
    for (size_t i = 0; i < set->campaign_count; i++) {
        const char *names[CAMPAIGN_WATCH_MAX];
        if (!set->campaigns[i].cond) continue;
        size_t n = cond_event_names(set->campaigns[i].cond, names, CAMPAIGN_WATCH_MAX);
        for (size_t k = 0; k < n && k < CAMPAIGN_WATCH_MAX; k++) {
            bool seen = false;
            for (size_t j = 0; j < set->event_name_count && !seen; j++)
                seen = strcmp(set->event_names[j], names[k]) == 0;
            if (!seen && set->event_name_count < CAMPAIGN_WATCH_MAX)
                set->event_names[set->event_name_count++] = names[k];
        }
    }
}

bsp_err campaign_set_build(campaign_registry *reg, bsp_txn *txn, campaign_set **out) {
    builder b = {.reg = reg, .txn = txn};
    b.set = calloc(1, sizeof *b.set);
    if (!b.set) return BSP_ENOMEM;
    bsp_err rc = store_config_scan(txn, PLACEMENT_KIND, placement_visit, &b);
    if (rc == BSP_OK) rc = store_config_scan(txn, CAMPAIGN_KIND, campaign_visit, &b);
    if (rc == BSP_OK) rc = group(&b);
    if (rc != BSP_OK) {
        campaign_set_free(b.set);
        return rc;
    }
    collect_event_names(b.set);
    *out = b.set;
    return BSP_OK;
}

void campaign_set_free(campaign_set *set) {
    if (!set) return;
    for (size_t i = 0; i < set->placement_count; i++) {
        free(set->placements[i].id);
        cJSON_free(set->placements[i].default_json);
        free(set->placements[i].campaigns);
    }
    for (size_t i = 0; i < set->campaign_count; i++)
        campaign_rt_free(&set->campaigns[i]);
    free(set->placements);
    free(set->campaigns);
    free(set);
}

const placement_rt *campaign_set_placement(const campaign_set *set, const char *id) {
    size_t lo = 0, hi = set->placement_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(id, set->placements[mid].id);
        if (c == 0) return &set->placements[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
