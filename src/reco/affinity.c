/* affinity.c - a visitor's affinities for configured product attributes
 * (colour, size, material, price band, ...), learnt at request time from
 * the trained history in the snapshot, the profile's newer items and the
 * quiz answers in its traits, so that a change of the configured list needs
 * no retraining. They boost the personalized blend and rank, and decide
 * filters.match_affinity. Weights are described in reco.h. */
#include "reco/reco_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json/json.h"

#define CANDIDATES 32 /* distinct values weighed per attribute */
#define QUIZ_SHARE 0.5
#define W_CART 0.3
#define W_VIEW 0.1
#define W_ADD 0.3

static const char *const band_names[4] = {"low", "medium", "high", "premium"};

static const char *price_band(const reco_snapshot *s, uint32_t item) {
    float p = s->price[item];
    if (p < 0) return NULL;
    int b = 0;
    while (b < 3 && p >= s->price_q[b])
        b++;
    return band_names[b];
}

const char *reco_attr_value(const reco_snapshot *s, uint32_t item, const char *attr, char *buf,
                            size_t cap) {
    const cJSON *p = s->products[item];
    const cJSON *v = json_member(json_get_object(p, "attributes"), attr);
    if (!v) v = json_member(p, attr);
    if (cJSON_IsString(v) && v->valuestring[0]) return v->valuestring;
    if (cJSON_IsNumber(v)) {
        snprintf(buf, cap, "%g", v->valuedouble);
        return buf;
    }
    if (!v && strcmp(attr, "price_band") == 0) return price_band(s, item);
    return NULL;
}

/* --- attribute tables ------------------------------------------------------------
 * Scoring asks an item's attribute value for every candidate of every
 * request (thousands); looking it up in the product's JSON each time made
 * affinities cost 2/3 of a recommendation. A snapshot resolves each
 * attribute once, on first use, under a mutex; published tables are only
 * read afterwards (the count is incremented after the entry is written). */

static const struct reco_attr_table *attr_find(reco_snapshot *s, const char *attr) {
    unsigned n = atomic_load_explicit(&s->attr_tables, memory_order_acquire);
    for (unsigned t = 0; t < n; t++)
        if (strcmp(s->attr[t].name, attr) == 0) return &s->attr[t];
    return NULL;
}

uint32_t reco_attr_code(const struct reco_attr_table *t, const char *value) {
    for (uint32_t i = 0; value && i < t->n_distinct; i++)
        if (strcasecmp(t->distinct[i], value) == 0) return i;
    return UINT32_MAX;
}

/* Numbers value (lower case) in t, adding it when new; UINT32_MAX on OOM. */
static uint32_t attr_intern(struct reco_attr_table *t, const char *value, uint32_t *cap) {
    uint32_t code = reco_attr_code(t, value);
    if (code != UINT32_MAX) return code;
    if (t->n_distinct == *cap) {
        uint32_t grown_cap = *cap ? *cap * 2 : 16;
        char **grown = realloc(t->distinct, grown_cap * sizeof *grown);
        if (!grown) return UINT32_MAX;
        t->distinct = grown;
        *cap = grown_cap;
    }
    char *copy = strdup(value);
    if (!copy) return UINT32_MAX;
    for (char *c = copy; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    t->distinct[t->n_distinct] = copy;
    return t->n_distinct++;
}

static bool attr_build(reco_snapshot *s, struct reco_attr_table *t, const char *attr) {
    snprintf(t->name, sizeof t->name, "%s", attr);
    t->codes = malloc((s->n_items ? s->n_items : 1) * sizeof *t->codes);
    if (!t->codes) return false;
    uint32_t cap = 0;
    for (uint32_t i = 0; i < s->n_items; i++) {
        char buf[32];
        const char *v = reco_attr_value(s, i, attr, buf, sizeof buf);
        t->codes[i] = v && *v ? attr_intern(t, v, &cap) : UINT32_MAX;
    }
    return true;
}

const struct reco_attr_table *reco_attr_table_get(reco_snapshot *s, const char *attr) {
    const struct reco_attr_table *found = attr_find(s, attr);
    if (found || strlen(attr) >= RECO_AFF_TEXT_MAX) return found;
    pthread_mutex_lock(&s->attr_mu);
    found = attr_find(s, attr);
    unsigned n = atomic_load(&s->attr_tables);
    if (!found && n < sizeof s->attr / sizeof s->attr[0] && attr_build(s, &s->attr[n], attr)) {
        found = &s->attr[n];
        atomic_store_explicit(&s->attr_tables, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&s->attr_mu);
    return found;
}

/* --- learning ----------------------------------------------------------------- */

typedef struct tally {
    char value[RECO_AFF_TEXT_MAX];
    double w;
} tally;

typedef struct learner {
    const reco_snapshot *s;
    const char *attr;
    tally t[CANDIDATES + RECO_AFF_VALUES_MAX]; /* room for the quiz answers */
    size_t n, limit;
    double total;
} learner;

static void add_value(learner *l, const char *value, double w) {
    if (!value || !*value || w <= 0 || strlen(value) >= RECO_AFF_TEXT_MAX) return;
    l->total += w;
    for (size_t i = 0; i < l->n; i++)
        if (strcasecmp(l->t[i].value, value) == 0) {
            l->t[i].w += w;
            return;
        }
    if (l->n == l->limit) return;
    char *to = l->t[l->n].value; /* kept in lower case: "Red" and "red" are one */
    for (size_t i = 0; value[i]; i++)
        to[i] = (char)tolower((unsigned char)value[i]);
    to[strlen(value)] = '\0';
    l->t[l->n++].w = w;
}

static void add_item(learner *l, uint32_t item, double w) {
    char buf[32];
    if (item != RECO_NONE) add_value(l, reco_attr_value(l->s, item, l->attr, buf, sizeof buf), w);
}

static void add_list(learner *l, const char *const *ids, size_t count, double w) {
    for (size_t i = 0; i < count; i++)
        add_item(l, reco_item_find(l->s, ids[i]), w);
}

static void learn_behaviour(learner *l, const reco_visitor *v) {
    uint32_t n = 0;
    const reco_hist *h = v ? reco_find_history(l->s, v->pid, &n, NULL) : NULL;
    for (uint32_t i = 0; i < n; i++)
        add_item(l, h[i].item, (double)h[i].decayed + (double)h[i].views);
    if (!v) return;
    add_list(l, v->purchased, v->purchased_count, 1.0);
    add_list(l, v->cart, v->cart_count, W_CART);
    add_list(l, v->recently_viewed, v->recently_viewed_count, W_VIEW);
}

static int tally_cmp(const void *a, const void *b) {
    const tally *x = a, *y = b;
    return (x->w < y->w) - (x->w > y->w);
}

/* Behaviour shares, then quiz answers mixed in at QUIZ_SHARE. */
static void finish(learner *l, const cJSON *answer, reco_affinity *out) {
    size_t quiz_n = 0;
    const cJSON *e;
    const char *answers[RECO_AFF_VALUES_MAX];
    if (cJSON_IsString(answer)) answers[quiz_n++] = answer->valuestring;
    const cJSON *list = cJSON_IsArray(answer) ? answer : NULL;
    cJSON_ArrayForEach(e, list) {
        if (cJSON_IsString(e) && quiz_n < RECO_AFF_VALUES_MAX) answers[quiz_n++] = e->valuestring;
    }
    double behaviour = l->total > 0 ? 1.0 : 0.0;
    double stated = quiz_n ? (behaviour > 0 ? QUIZ_SHARE : 1.0) : 0;
    for (size_t i = 0; i < l->n; i++)
        l->t[i].w = l->total > 0 ? l->t[i].w / l->total * (1 - stated) : 0;
    l->limit = CANDIDATES + RECO_AFF_VALUES_MAX;
    for (size_t q = 0; q < quiz_n; q++) {
        if (!answers[q][0] || strlen(answers[q]) >= RECO_AFF_TEXT_MAX) continue;
        add_value(l, answers[q], stated / (double)quiz_n);
        out->quiz = true;
    }
    qsort(l->t, l->n, sizeof *l->t, tally_cmp);
    for (size_t i = 0; i < l->n && out->count < RECO_AFF_VALUES_MAX; i++) {
        reco_affinity_value *v = &out->values[out->count++];
        snprintf(v->value, sizeof v->value, "%s", l->t[i].value);
        v->share = l->t[i].w;
        v->quiz = false;
        for (size_t q = 0; q < quiz_n; q++)
            v->quiz = v->quiz || strcasecmp(answers[q], v->value) == 0;
    }
}

void reco_affinities_learn(const reco_snapshot *s, const reco_visitor *v, const cJSON *quiz,
                           const char *const *attrs, size_t attr_count, reco_affinities *out) {
    memset(out, 0, sizeof *out);
    for (size_t a = 0; a < attr_count && out->count < RECO_AFF_ATTRS_MAX; a++) {
        if (!attrs[a] || strlen(attrs[a]) >= RECO_AFF_TEXT_MAX) continue;
        learner *l = calloc(1, sizeof *l);
        if (!l) return;
        l->s = s;
        l->attr = attrs[a];
        l->limit = CANDIDATES;
        learn_behaviour(l, v);
        reco_affinity *af = &out->attrs[out->count++];
        snprintf(af->attribute, sizeof af->attribute, "%s", attrs[a]);
        /* the table is a cache inside the immutable snapshot */
        const struct reco_attr_table *t = reco_attr_table_get((reco_snapshot *)s, attrs[a]);
        finish(l, json_member(quiz, attrs[a]), af);
        af->codes = t ? t->codes : NULL;
        for (size_t i = 0; i < af->count; i++)
            af->values[i].code = t ? reco_attr_code(t, af->values[i].value) : UINT32_MAX;
        free(l);
    }
}

/* --- serving -------------------------------------------------------------------- */

static const reco_affinity_value *find_value(const reco_affinity *af, const char *value) {
    for (size_t i = 0; value && i < af->count; i++)
        if (strcasecmp(af->values[i].value, value) == 0) return &af->values[i];
    return NULL;
}

/* The affinity value item has, by number when the snapshot's table is
 * there (an integer compare per value), else by name. */
static const reco_affinity_value *value_of(const reco_snapshot *s, const reco_affinity *af,
                                           uint32_t item) {
    if (af->codes) {
        uint32_t code = af->codes[item];
        for (size_t i = 0; code != UINT32_MAX && i < af->count; i++)
            if (af->values[i].code == code) return &af->values[i];
        return NULL;
    }
    char buf[32];
    return find_value(af, reco_attr_value(s, item, af->attribute, buf, sizeof buf));
}

static bool item_has(const reco_snapshot *s, const reco_affinity *af, uint32_t item) {
    if (af->codes) return af->codes[item] != UINT32_MAX;
    char buf[32];
    return reco_attr_value(s, item, af->attribute, buf, sizeof buf) != NULL;
}

double reco_affinity_factor(const reco_snapshot *s, const reco_affinities *a, uint32_t item) {
    if (!a) return 1;
    double sum = 0;
    size_t known = 0;
    for (size_t k = 0; k < a->count; k++) {
        const reco_affinity *af = &a->attrs[k];
        if (!af->count) continue;
        known++;
        const reco_affinity_value *v = value_of(s, af, item);
        if (v) sum += v->share;
    }
    return known ? 1 + RECO_AFF_BOOST * sum / (double)known : 1;
}

bool reco_affinity_match(const reco_snapshot *s, const reco_affinities *a, uint32_t item) {
    for (size_t k = 0; a && k < a->count; k++) {
        const reco_affinity *af = &a->attrs[k];
        if (!af->count || !item_has(s, af, item)) continue;
        const reco_affinity_value *v = value_of(s, af, item);
        if (!v) return false;
        if (af->quiz ? !v->quiz : v->share < RECO_AFF_MATCH_MIN) return false;
    }
    return true;
}

cJSON *reco_affinities_json(const reco_affinities *a) {
    cJSON *root = cJSON_CreateObject();
    for (size_t k = 0; root && k < a->count; k++) {
        const reco_affinity *af = &a->attrs[k];
        if (!af->count) continue;
        cJSON *arr = cJSON_AddArrayToObject(root, af->attribute);
        for (size_t i = 0; arr && i < af->count; i++) {
            cJSON *o = cJSON_CreateObject();
            if (!o || !cJSON_AddItemToArray(arr, o)) {
                cJSON_Delete(o);
                break;
            }
            cJSON_AddStringToObject(o, "value", af->values[i].value);
            cJSON_AddNumberToObject(o, "share", round(af->values[i].share * 1000) / 1000);
            if (af->values[i].quiz) cJSON_AddTrueToObject(o, "quiz");
        }
    }
    return root;
}

int reco_affinity_attrs_parse(const char *list, char *buf, size_t buf_cap, const char **out,
                              size_t cap) {
    size_t len = list ? strlen(list) : 0, n = 0;
    if (len >= buf_cap) return -1;
    memcpy(buf, list ? list : "", len + 1);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && end[-1] == ' ')
            *--end = '\0';
        if (!*tok) continue;
        if (n == cap || strlen(tok) >= RECO_AFF_TEXT_MAX) return -1;
        out[n++] = tok;
    }
    return (int)n;
}
