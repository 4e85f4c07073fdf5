/* cooc.c - item-to-item neighbours from item sets: co-occurrence counted
 * one item at a time through an inverted index (memory linear in the
 * catalog), scored by lift (bought / viewed together) or cosine (item-kNN),
 * the best k kept per item; and content similarity, a TF-IDF cosine of the
 * catalog's attributes (category path, brand, price band, name words). */
#include "reco/reco_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

/* --- graph building ---------------------------------------------------------- */

typedef struct cand {
    float score;
    uint32_t idx;
    uint32_t count;
} cand;

typedef struct graph_builder {
    reco_graph *g;
    size_t len, cap;
    bool counts;
} graph_builder;

static bsp_err gb_init(graph_builder *b, reco_graph *g, uint32_t n_items, bool counts) {
    memset(g, 0, sizeof *g);
    b->g = g;
    b->len = 0;
    b->cap = 0;
    b->counts = counts;
    g->off = calloc((size_t)n_items + 1, sizeof *g->off);
    return g->off ? BSP_OK : BSP_ENOMEM;
}

static bsp_err gb_row(graph_builder *b, uint32_t row, const cand *c, uint32_t n) {
    reco_graph *g = b->g;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 65536;
        while (cap < b->len + n)
            cap *= 2;
        uint32_t *idx = realloc(g->idx, cap * sizeof *idx);
        if (idx) g->idx = idx;
        float *val = idx ? realloc(g->val, cap * sizeof *val) : NULL;
        if (val) g->val = val;
        uint32_t *cnt = val && b->counts ? realloc(g->count, cap * sizeof *cnt) : NULL;
        if (cnt) g->count = cnt;
        if (!val || (b->counts && !cnt)) return BSP_ENOMEM;
        b->cap = cap;
    }
    for (uint32_t i = 0; i < n; i++) {
        g->idx[b->len] = c[i].idx;
        g->val[b->len] = c[i].score;
        if (b->counts) g->count[b->len] = c[i].count;
        b->len++;
    }
    g->off[row + 1] = (uint32_t)b->len;
    return BSP_OK;
}

static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Moves the k best of c[0..n) to the front, best first; returns min(k, n). */
static uint32_t select_best(cand *c, uint32_t n, uint32_t k) {
    if (n > k) {
        uint32_t lo = 0, hi = n - 1;
        while (lo < hi) { /* quickselect: c[0..k) hold the k best after */
            cand pivot = c[(lo + hi) / 2];
            uint32_t i = lo, j = hi;
            while (i <= j) {
                while (cand_cmp(&c[i], &pivot) < 0)
                    i++;
                while (cand_cmp(&c[j], &pivot) > 0)
                    j--;
                if (i <= j) {
                    cand t = c[i];
                    c[i++] = c[j];
                    c[j] = t;
                    if (j == 0) break;
                    j--;
                }
            }
            if (k - 1 <= j)
                hi = j;
            else if (k - 1 >= i)
                lo = i;
            else
                break;
        }
        n = k;
    }
    qsort(c, n, sizeof *c, cand_cmp);
    return n;
}

uint32_t reco_topk(const float *scores, uint32_t n, uint32_t k, uint32_t skip, uint32_t *idx,
                   float *val) {
    cand *c = malloc(((size_t)n + 1) * sizeof *c);
    if (!c) return 0;
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++)
        if (scores[i] > 0 && i != skip) c[m++] = (cand){scores[i], i, 0};
    m = select_best(c, m, k);
    for (uint32_t i = 0; i < m; i++) {
        idx[i] = c[i].idx;
        val[i] = c[i].score;
    }
    free(c);
    return m;
}

/* --- co-occurrence -------------------------------------------------------------- */

typedef struct inverted {
    uint32_t *off; /* n_items + 1 */
    uint32_t *sets;
} inverted;

static bsp_err invert(const reco_sets *s, uint32_t n_items, inverted *inv) {
    inv->off = calloc((size_t)n_items + 2, sizeof *inv->off);
    inv->sets = malloc(((size_t)s->off[s->count] + 1) * sizeof *inv->sets);
    if (!inv->off || !inv->sets) return BSP_ENOMEM;
    for (uint32_t i = 0; i < s->off[s->count]; i++)
        inv->off[s->items[i] + 2]++;
    for (uint32_t i = 2; i <= n_items + 1; i++)
        inv->off[i] += inv->off[i - 1];
    for (uint32_t set = 0; set < s->count; set++)
        for (uint32_t p = s->off[set]; p < s->off[set + 1]; p++)
            inv->sets[inv->off[s->items[p] + 1]++] = set;
    return BSP_OK;
}

typedef struct cooc_ctx {
    const reco_sets *sets;
    inverted inv;
    reco_cooc_score how;
    uint32_t *cnt;
    uint32_t *touched;
    cand *cands;
} cooc_ctx;

static double pair_score(const cooc_ctx *c, uint32_t ci, uint32_t cj, uint32_t cij) {
    if (c->how == COOC_COSINE) return cij / sqrt((double)ci * cj);
    double lift = (double)cij * c->sets->count / ((double)ci * cj);
    return lift * cij / (cij + RECO_LIFT_SHRINK);
}

static uint32_t item_row(cooc_ctx *c, uint32_t item, uint32_t k) {
    uint32_t n_touched = 0;
    for (uint32_t p = c->inv.off[item]; p < c->inv.off[item + 1]; p++) {
        uint32_t set = c->inv.sets[p];
        for (uint32_t q = c->sets->off[set]; q < c->sets->off[set + 1]; q++) {
            uint32_t j = c->sets->items[q];
            if (j == item) continue;
            if (c->cnt[j]++ == 0) c->touched[n_touched++] = j;
        }
    }
    uint32_t ci = c->inv.off[item + 1] - c->inv.off[item];
    for (uint32_t t = 0; t < n_touched; t++) {
        uint32_t j = c->touched[t], cj = c->inv.off[j + 1] - c->inv.off[j];
        c->cands[t] = (cand){(float)pair_score(c, ci, cj, c->cnt[j]), j, c->cnt[j]};
        c->cnt[j] = 0;
    }
    return select_best(c->cands, n_touched, k);
}

bsp_err reco_cooc(const reco_sets *sets, uint32_t n_items, reco_cooc_score how, uint32_t k,
                  reco_graph *out) {
    cooc_ctx c = {.sets = sets, .how = how};
    graph_builder b;
    bsp_err rc = gb_init(&b, out, n_items, how == COOC_LIFT);
    if (rc == BSP_OK) rc = invert(sets, n_items, &c.inv);
    c.cnt = calloc((size_t)n_items + 1, sizeof *c.cnt);
    c.touched = malloc(((size_t)n_items + 1) * sizeof *c.touched);
    c.cands = malloc(((size_t)n_items + 1) * sizeof *c.cands);
    if (!c.cnt || !c.touched || !c.cands) rc = BSP_ENOMEM;
    for (uint32_t i = 0; rc == BSP_OK && i < n_items; i++)
        rc = gb_row(&b, i, c.cands, item_row(&c, i, k));
    free(c.inv.off);
    free(c.inv.sets);
    free(c.cnt);
    free(c.touched);
    free(c.cands);
    if (rc != BSP_OK) reco_graph_free(out);
    return rc;
}

void reco_graph_free(reco_graph *g) {
    free(g->off);
    free(g->idx);
    free(g->val);
    free(g->count);
    memset(g, 0, sizeof *g);
}

uint64_t reco_graph_entries(const reco_graph *g, uint32_t n_items) {
    return g->off ? g->off[n_items] : 0;
}

/* --- content ------------------------------------------------------------------------ */

typedef struct tokens {
    char **names; /* token dictionary */
    uint32_t *df;
    uint32_t n, cap;
    reco_imap map;
    uint32_t *item_off; /* CSR: item -> token ids */
    uint32_t *item_tok;
    size_t len, tcap;
} tokens;

static uint32_t token_id(tokens *t, const char *name) {
    uint32_t id = imap_find(&t->map, (const char *const *)t->names, name);
    if (id != RECO_NONE) return id;
    if (t->n == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 1024;
        char **names = realloc(t->names, cap * sizeof *names);
        if (names) t->names = names;
        uint32_t *df = names ? realloc(t->df, cap * sizeof *df) : NULL;
        if (!df) return RECO_NONE;
        t->df = df;
        t->cap = cap;
    }
    t->names[t->n] = strdup(name);
    if (!t->names[t->n]) return RECO_NONE;
    t->df[t->n] = 0;
    if (imap_put(&t->map, (const char *const *)t->names, t->n) != BSP_OK) {
        free(t->names[t->n]);
        return RECO_NONE;
    }
    return t->n++;
}

static bsp_err add_token(tokens *t, const char *name, size_t row_start) {
    uint32_t id = token_id(t, name);
    if (id == RECO_NONE) return BSP_ENOMEM;
    for (size_t i = row_start; i < t->len; i++)
        if (t->item_tok[i] == id) return BSP_OK;
    uint32_t *tok = bsp_grow(t->item_tok, &t->tcap, t->len, sizeof *tok, 16384);
    if (!tok) return BSP_ENOMEM;
    t->item_tok = tok;
    t->item_tok[t->len++] = id;
    t->df[id]++;
    return BSP_OK;
}

/* Lowercase words of at least 3 letters or digits, "w:" prefixed. */
static bsp_err add_words(tokens *t, const char *text, size_t row_start) {
    char word[48];
    size_t n = 0;
    for (const char *p = text;; p++) {
        if (*p && isalnum((unsigned char)*p)) {
            if (n < sizeof word - 1) word[n++] = (char)tolower((unsigned char)*p);
            continue;
        }
        if (n >= 3) {
            char tok[56];
            snprintf(tok, sizeof tok, "w:%.*s", (int)n, word);
            if (add_token(t, tok, row_start) != BSP_OK) return BSP_ENOMEM;
        }
        n = 0;
        if (!*p) return BSP_OK;
    }
}

/* Category path prefixes ("c:Home", "c:Home > Lighting"), brand, price band. */
static bsp_err add_attributes(tokens *t, const reco_snapshot *s, uint32_t i, size_t row_start) {
    char tok[300];
    bsp_err rc = BSP_OK;
    const char *cat = s->category[i], *pos = cat;
    while (cat && rc == BSP_OK) {
        const char *next = strstr(pos, " > ");
        size_t len = next ? (size_t)(next - cat) : strlen(cat);
        snprintf(tok, sizeof tok, "c:%.*s", (int)(len > 250 ? 250 : len), cat);
        rc = add_token(t, tok, row_start);
        if (!next) break;
        pos = next + 3;
    }
    const char *brand = json_get_string(s->products[i], "brand");
    if (rc == BSP_OK && brand) {
        snprintf(tok, sizeof tok, "b:%.200s", brand);
        rc = add_token(t, tok, row_start);
    }
    if (rc == BSP_OK && s->price[i] > 0) {
        snprintf(tok, sizeof tok, "p:%d", (int)floor(log2(s->price[i]) * 2));
        rc = add_token(t, tok, row_start);
    }
    const char *name = json_get_string(s->products[i], "name");
    if (rc == BSP_OK && name) rc = add_words(t, name, row_start);
    return rc;
}

static void tokens_free(tokens *t) {
    for (uint32_t i = 0; i < t->n; i++)
        free(t->names[i]);
    free(t->names);
    free(t->df);
    imap_free(&t->map);
    free(t->item_off);
    free(t->item_tok);
}

static bsp_err tokenize(const reco_snapshot *s, tokens *t) {
    t->item_off = calloc((size_t)s->n_items + 1, sizeof *t->item_off);
    bsp_err rc = t->item_off ? imap_init(&t->map, 4096) : BSP_ENOMEM;
    for (uint32_t i = 0; rc == BSP_OK && i < s->n_items; i++) {
        if (s->products[i]) rc = add_attributes(t, s, i, t->len);
        t->item_off[i + 1] = (uint32_t)t->len;
    }
    return rc;
}

/* Cosine of TF-IDF vectors through the token postings; tokens held by more
 * than a tenth of the catalog are skipped (they say little and cost much). */
static bsp_err content_rows(const reco_snapshot *s, tokens *t, uint32_t k, graph_builder *b) {
    uint32_t n = s->n_items;
    inverted inv = {0};
    reco_sets as_sets = {.off = t->item_off, .items = t->item_tok, .count = n};
    float *w = malloc((t->len + 1) * sizeof *w), *norm = calloc((size_t)n + 1, sizeof *norm);
    float *acc = calloc((size_t)n + 1, sizeof *acc);
    uint32_t *touched = malloc(((size_t)n + 1) * sizeof *touched);
    cand *cands = malloc(((size_t)n + 1) * sizeof *cands);
    bsp_err rc = w && norm && acc && touched && cands ? invert(&as_sets, t->n, &inv) : BSP_ENOMEM;
    for (size_t p = 0; rc == BSP_OK && p < t->len; p++)
        w[p] = (float)log((double)(n + 1) / t->df[t->item_tok[p]]);
    for (uint32_t i = 0; rc == BSP_OK && i < n; i++) {
        for (uint32_t p = t->item_off[i]; p < t->item_off[i + 1]; p++)
            norm[i] += w[p] * w[p];
        norm[i] = norm[i] > 0 ? 1.0f / sqrtf(norm[i]) : 0;
    }
    for (uint32_t i = 0; rc == BSP_OK && i < n; i++) {
        uint32_t nt = 0;
        for (uint32_t p = t->item_off[i]; p < t->item_off[i + 1]; p++) {
            uint32_t tok = t->item_tok[p];
            if (t->df[tok] > n / 10 + 2) continue;
            for (uint32_t q = inv.off[tok]; q < inv.off[tok + 1]; q++) {
                uint32_t j = inv.sets[q];
                if (j == i) continue;
                if (acc[j] == 0) touched[nt++] = j;
                acc[j] += w[p] * w[p];
            }
        }
        for (uint32_t x = 0; x < nt; x++) {
            uint32_t j = touched[x];
            cands[x] = (cand){acc[j] * norm[i] * norm[j], j, 0};
            acc[j] = 0;
        }
        rc = gb_row(b, i, cands, select_best(cands, nt, k));
    }
    free(inv.off);
    free(inv.sets);
    free(w);
    free(norm);
    free(acc);
    free(touched);
    free(cands);
    return rc;
}

bsp_err reco_content(const reco_snapshot *s, uint32_t k, reco_graph *out) {
    tokens t = {0};
    graph_builder b;
    bsp_err rc = gb_init(&b, out, s->n_items, false);
    if (rc == BSP_OK) rc = tokenize(s, &t);
    if (rc == BSP_OK) rc = content_rows(s, &t, k, &b);
    tokens_free(&t);
    if (rc != BSP_OK) reco_graph_free(out);
    return rc;
}
