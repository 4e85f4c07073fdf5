/* sim.c - the clickstream generator behind `bespoke simulate`.
 *
 * A synthetic shop (catalog from sim_data.h: categories, brands, log-normal
 * prices) and visitors with hidden tastes: two or three favourite
 * categories and a price sensitivity. Visitors come back in sessions (hours
 * to days apart, taken in time order from a heap); within a session events
 * are seconds to minutes apart: a landing page, searches with words of their
 * categories, product views (mostly in favourite categories, cheaper ones
 * preferred by the price-sensitive), adds to and removals from a cart that
 * survives between sessions, sometimes a sign-in (identify, userId
 * "user-N"), and orders. Events of different visitors' sessions may overlap
 * in time; each visitor's own events are in order.
 *
 * Everything comes from one seeded xoshiro256** generator per stream
 * (catalog, visitors, behaviour), so the same options give the same bytes.
 * JSON is written by hand from precomputed fragments into a large buffer:
 * this runs at millions of events a second, far above what it feeds. */
#include "sim/sim.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim_data.h"

#define SITE "https://shop.example"
#define OUT_CAP (1u << 20)
#define OUT_SLACK (64u * 1024) /* flush when less room than this is left */
#define MAX_PRODUCTS 1000000u
#define MAX_VISITORS 20000000u
#define CART_MAX 8
#define DEFAULT_START_MS 1704067200000LL /* 2024-01-01T00:00:00Z */
#define HOUR_MS 3600000.0
#define DAY_MS 86400000.0

/* --- random numbers ------------------------------------------------------ */

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static inline double rng_unit(rng *r) {
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static inline uint32_t rng_below(rng *r, uint32_t n) {
    return (uint32_t)(((rng_next(r) >> 32) * n) >> 32);
}

static inline bool rng_chance(rng *r, double p) {
    return rng_unit(r) < p;
}

static double rng_exp(rng *r, double mean) {
    return -mean * log(1.0 - rng_unit(r));
}

static double rng_normal(rng *r) {
    double u1 = 1.0 - rng_unit(r), u2 = rng_unit(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* --- output -------------------------------------------------------------- */

typedef struct out {
    FILE *fp;
    char *buf;
    size_t len;
    bool failed;
    int64_t day;   /* day number cached in date[] */
    char date[11]; /* "YYYY-MM-DD" */
} out;

static void out_flush(out *o) {
    if (o->len && !o->failed && fwrite(o->buf, 1, o->len, o->fp) != o->len) o->failed = true;
    o->len = 0;
}

static inline void put(out *o, const char *s, size_t n) {
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

#define PUTS(o, lit) put((o), (lit), sizeof(lit) - 1)

static inline void put_str(out *o, const char *s) {
    put(o, s, strlen(s));
}

static void put_u64(out *o, uint64_t v) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        o->buf[o->len++] = tmp[--n];
}

static void put_cents(out *o, int64_t cents) {
    if (cents < 0) {
        o->buf[o->len++] = '-';
        cents = -cents;
    }
    put_u64(o, (uint64_t)(cents / 100));
    o->buf[o->len++] = '.';
    o->buf[o->len++] = (char)('0' + cents / 10 % 10);
    o->buf[o->len++] = (char)('0' + cents % 10);
}

static void put_digits(char *p, unsigned v, int n) {
    for (int i = n - 1; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
}

/* Days since 1970-01-01 to y-m-d (H. Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* "2024-01-02T03:04:05.678Z"; times before 1970 are not generated. */
static void put_time(out *o, int64_t ms) {
    int64_t day = ms / 86400000;
    unsigned rem = (unsigned)(ms % 86400000);
    if (day != o->day) {
        int64_t y;
        unsigned m, d;
        civil_from_days(day, &y, &m, &d);
        put_digits(o->date, (unsigned)(y % 10000), 4);
        o->date[4] = '-';
        put_digits(o->date + 5, m, 2);
        o->date[7] = '-';
        put_digits(o->date + 8, d, 2);
        o->day = day;
    }
    char *p = o->buf + o->len;
    memcpy(p, o->date, 10);
    p[10] = 'T';
    put_digits(p + 11, rem / 3600000, 2);
    p[13] = ':';
    put_digits(p + 14, rem / 60000 % 60, 2);
    p[16] = ':';
    put_digits(p + 17, rem / 1000 % 60, 2);
    p[19] = '.';
    put_digits(p + 20, rem % 1000, 3);
    p[23] = 'Z';
    o->len += 24;
}

/* --- catalog ------------------------------------------------------------- */

typedef struct product {
    char id[16];
    char name[96];
    uint8_t cat;
    int64_t cents;
    float rel_price; /* ln(price / category median): > 0 is dearer than usual */
    char *frag;      /* "product_id":...,"image_url":"..." for event properties */
    size_t frag_len;
    char *line; /* the catalog JSONL line, with its newline */
} product;

typedef struct catalog {
    product *items;
    uint32_t count;
    uint32_t *by_cat; /* product indices grouped by category */
    uint32_t cat_first[SIM_NCAT + 1];
    char slug[SIM_NCAT][48];
} catalog;

static void lower_into(char *dst, size_t cap, const char *src) {
    size_t i = 0;
    for (; src[i] && i + 1 < cap; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

/* "Home > Lighting" -> "home-lighting" */
static void slugify(char *dst, size_t cap, const char *src) {
    size_t n = 0;
    bool dash = false;
    for (; *src && n + 1 < cap; src++) {
        if (isalnum((unsigned char)*src)) {
            if (dash && n) dst[n++] = '-';
            dst[n++] = (char)tolower((unsigned char)*src);
            dash = false;
        } else {
            dash = true;
        }
    }
    dst[n] = '\0';
}

static const char *pick_noun(rng *r, const sim_category *c) {
    uint32_t n = 0;
    while (n < SIM_COUNT(c->nouns) && c->nouns[n])
        n++;
    return c->nouns[rng_below(r, n)];
}

static bsp_err product_texts(product *p, const char *brand, const char *adj, const char *colour,
                             bool in_stock) {
    const char *name = p->name;
    const sim_category *c = &SIM_CATEGORIES[p->cat];
    char price[32], tag_adj[32], tag_col[32], leaf[48];
    snprintf(price, sizeof price, "%lld.%02lld", (long long)(p->cents / 100),
             (long long)(p->cents % 100));
    lower_into(tag_adj, sizeof tag_adj, adj);
    lower_into(tag_col, sizeof tag_col, colour);
    const char *gt = strrchr(c->path, '>');
    lower_into(leaf, sizeof leaf, gt ? gt + 2 : c->path);
    bsp_buf f = {0}, l = {0};
    bsp_err rc = bsp_buf_printf(&f,
                                "\"product_id\":\"%s\",\"sku\":\"%s\",\"name\":\"%s\","
                                "\"category\":\"%s\",\"brand\":\"%s\",\"price\":%s,"
                                "\"currency\":\"GBP\",\"url\":\"" SITE "/p/%s\","
                                "\"image_url\":\"" SITE "/img/%s.jpg\"",
                                p->id, p->id, name, c->path, brand, price, p->id, p->id);
    if (rc == BSP_OK)
        rc = bsp_buf_printf(&l,
                            "{\"id\":\"%s\",\"name\":\"%s\",\"category\":\"%s\",\"brand\":\"%s\","
                            "\"price\":%s,\"currency\":\"GBP\",\"in_stock\":%s,"
                            "\"url\":\"" SITE "/p/%s\",\"image\":\"" SITE "/img/%s.jpg\","
                            "\"tags\":[\"%s\",\"%s\",\"%s\"]}\n",
                            p->id, name, c->path, brand, price, in_stock ? "true" : "false", p->id,
                            p->id, leaf, tag_col, tag_adj);
    if (rc != BSP_OK) {
        bsp_buf_free(&f);
        bsp_buf_free(&l);
        return BSP_ENOMEM;
    }
    p->frag = f.data;
    p->frag_len = f.len;
    p->line = l.data;
    return BSP_OK;
}

static bsp_err product_make(product *p, uint32_t i, rng *r) {
    p->cat = (uint8_t)rng_below(r, SIM_NCAT);
    const sim_category *c = &SIM_CATEGORIES[p->cat];
    snprintf(p->id, sizeof p->id, "sku-%05u", i + 1);
    const char *noun = pick_noun(r, c);
    const char *adj = SIM_ADJECTIVES[rng_below(r, SIM_COUNT(SIM_ADJECTIVES))];
    const char *colour = SIM_COLOURS[rng_below(r, SIM_COUNT(SIM_COLOURS))];
    const char *brand = SIM_BRANDS[rng_below(r, SIM_COUNT(SIM_BRANDS))];
    double price = c->median_price * exp(0.6 * rng_normal(r));
    p->cents = price >= 1.0 ? (int64_t)price * 100 + 99 : (int64_t)(price * 100) + 1;
    p->rel_price = (float)log((double)p->cents / 100.0 / c->median_price);
    bool in_stock = rng_chance(r, 0.93);
    snprintf(p->name, sizeof p->name, "%s %s %s", adj, colour, noun);
    return product_texts(p, brand, adj, colour, in_stock);
}

static void catalog_free(catalog *c) {
    if (c->items)
        for (uint32_t i = 0; i < c->count; i++) {
            free(c->items[i].frag);
            free(c->items[i].line);
        }
    free(c->items);
    free(c->by_cat);
    memset(c, 0, sizeof *c);
}

static bsp_err catalog_build(catalog *c, uint32_t count, uint64_t seed) {
    memset(c, 0, sizeof *c);
    c->items = calloc(count, sizeof *c->items);
    c->by_cat = calloc(count, sizeof *c->by_cat);
    if (!c->items || !c->by_cat) {
        catalog_free(c);
        return BSP_ENOMEM;
    }
    rng r;
    rng_seed(&r, seed, 1);
    for (uint32_t i = 0; i < count; i++) {
        c->count = i + 1;
        if (product_make(&c->items[i], i, &r) != BSP_OK) {
            catalog_free(c);
            return BSP_ENOMEM;
        }
        c->cat_first[c->items[i].cat + 1]++;
    }
    for (size_t k = 0; k < SIM_NCAT; k++) {
        c->cat_first[k + 1] += c->cat_first[k];
        slugify(c->slug[k], sizeof c->slug[k], SIM_CATEGORIES[k].path);
    }
    uint32_t fill[SIM_NCAT];
    memcpy(fill, c->cat_first, sizeof fill);
    for (uint32_t i = 0; i < count; i++)
        c->by_cat[fill[c->items[i].cat]++] = i;
    return BSP_OK;
}

/* --- visitors ------------------------------------------------------------ */

typedef struct visitor {
    int64_t next_ms;
    uint32_t cart[CART_MAX];
    uint8_t qty[CART_MAX];
    uint8_t cart_n;
    uint8_t fav[3], nfav;
    uint8_t country, agent;
    bool identified;
    float sens; /* 0 = ignores price .. 1 = strongly prefers cheap */
} visitor;

static uint8_t pick_country(rng *r) {
    int total = 0;
    for (size_t i = 0; i < SIM_COUNT(SIM_COUNTRIES); i++)
        total += SIM_COUNTRIES[i].weight;
    int x = (int)rng_below(r, (uint32_t)total);
    for (size_t i = 0; i < SIM_COUNT(SIM_COUNTRIES); i++) {
        if (x < SIM_COUNTRIES[i].weight) return (uint8_t)i;
        x -= SIM_COUNTRIES[i].weight;
    }
    return 0;
}

static void visitor_make(visitor *v, rng *r, int64_t start_ms, uint32_t arrival_days) {
    memset(v, 0, sizeof *v);
    v->nfav = (uint8_t)(2 + rng_below(r, 2));
    for (int i = 0; i < v->nfav; i++) {
        uint8_t c;
        bool again;
        do { /* distinct favourites */
            c = (uint8_t)rng_below(r, SIM_NCAT);
            again = false;
            for (int k = 0; k < i; k++)
                again |= v->fav[k] == c;
        } while (again);
        v->fav[i] = c;
    }
    v->sens = (float)rng_unit(r);
    v->country = pick_country(r);
    v->agent = (uint8_t)rng_below(r, SIM_COUNT(SIM_AGENTS));
    v->next_ms = start_ms + (int64_t)(rng_unit(r) * arrival_days * DAY_MS);
}

/* A min-heap of visitor indices by (next_ms, index). */
typedef struct heap {
    uint32_t *a;
    uint32_t n;
    const visitor *v;
} heap;

static inline bool heap_less(const heap *h, uint32_t x, uint32_t y) {
    int64_t tx = h->v[x].next_ms, ty = h->v[y].next_ms;
    return tx < ty || (tx == ty && x < y);
}

static void heap_down(heap *h, uint32_t i) {
    for (;;) {
        uint32_t l = 2 * i + 1, m = i;
        if (l < h->n && heap_less(h, h->a[l], h->a[m])) m = l;
        if (l + 1 < h->n && heap_less(h, h->a[l + 1], h->a[m])) m = l + 1;
        if (m == i) return;
        uint32_t t = h->a[i];
        h->a[i] = h->a[m];
        h->a[m] = t;
        i = m;
    }
}

/* --- the session --------------------------------------------------------- */

typedef struct sim {
    const bsp_sim_opts *opts;
    uint64_t seed, target, written, orders;
    catalog cat;
    visitor *vis;
    out o;
    rng r;
    /* the visitor and page of the session being written */
    visitor *v;
    uint32_t vi;
    int64_t t;
    char anon[24];
    char path[96], title[160];
} sim;

static bool sim_done(const sim *s) {
    return s->written >= s->target || s->o.failed;
}

static void ev_begin(sim *s, const char *type) {
    out *o = &s->o;
    PUTS(o, "{\"type\":\"");
    put_str(o, type);
    PUTS(o, "\",\"messageId\":\"sim-");
    put_u64(o, s->seed);
    o->buf[o->len++] = '-';
    put_u64(o, s->written + 1);
    PUTS(o, "\",\"anonymousId\":\"");
    put_str(o, s->anon);
    if (s->v->identified) {
        PUTS(o, "\",\"userId\":\"user-");
        put_u64(o, (uint64_t)s->vi + 1);
    }
    PUTS(o, "\",\"timestamp\":\"");
    put_time(o, s->t);
    o->buf[o->len++] = '"';
}

static void put_page(sim *s) {
    out *o = &s->o;
    PUTS(o, "{\"path\":\"");
    put_str(o, s->path);
    PUTS(o, "\",\"url\":\"" SITE);
    put_str(o, s->path);
    PUTS(o, "\",\"title\":\"");
    put_str(o, s->title);
    PUTS(o, "\"}");
}

static void ev_end(sim *s) {
    out *o = &s->o;
    PUTS(o, ",\"context\":{\"page\":");
    put_page(s);
    PUTS(o, ",\"userAgent\":\"");
    put_str(o, SIM_AGENTS[s->v->agent]);
    PUTS(o, "\",\"location\":{\"country\":\"");
    put_str(o, SIM_COUNTRIES[s->v->country].code);
    PUTS(o, "\"}}}\n");
    s->written++;
    if (o->len > OUT_CAP - OUT_SLACK) out_flush(o);
    s->t += 4000 + (int64_t)rng_exp(&s->r, 25000); /* the next action */
}

static void ev_page(sim *s, const char *name, const char *path, const char *title) {
    if (sim_done(s)) return;
    snprintf(s->path, sizeof s->path, "%s", path);
    snprintf(s->title, sizeof s->title, "%s", title);
    ev_begin(s, "page");
    PUTS(&s->o, ",\"name\":\"");
    put_str(&s->o, name);
    PUTS(&s->o, "\",\"properties\":");
    put_page(s);
    ev_end(s);
}

static void ev_track_product(sim *s, const char *event, uint32_t pi, int qty) {
    if (sim_done(s)) return;
    out *o = &s->o;
    const product *p = &s->cat.items[pi];
    ev_begin(s, "track");
    PUTS(o, ",\"event\":\"");
    put_str(o, event);
    PUTS(o, "\",\"properties\":{");
    put(o, p->frag, p->frag_len);
    if (qty > 0) {
        PUTS(o, ",\"quantity\":");
        put_u64(o, (uint64_t)qty);
    }
    PUTS(o, "}");
    ev_end(s);
}

static void ev_identify(sim *s) {
    if (sim_done(s)) return;
    s->v->identified = true;
    out *o = &s->o;
    uint64_t h = (uint64_t)s->vi * 0x9E3779B97F4A7C15ull ^ s->seed;
    ev_begin(s, "identify");
    PUTS(o, ",\"traits\":{\"name\":\"");
    put_str(o, SIM_FIRST[h % SIM_COUNT(SIM_FIRST)]);
    o->buf[o->len++] = ' ';
    put_str(o, SIM_LAST[(h >> 16) % SIM_COUNT(SIM_LAST)]);
    PUTS(o, "\",\"plan\":\"");
    put_str(o, SIM_PLANS[(h >> 32) % SIM_COUNT(SIM_PLANS)]);
    PUTS(o, "\"}");
    ev_end(s);
}

static uint8_t pick_category(sim *s) {
    if (rng_chance(&s->r, 0.8)) return s->v->fav[rng_below(&s->r, s->v->nfav)];
    return (uint8_t)rng_below(&s->r, SIM_NCAT);
}

/* A product the visitor looks at: in a favourite category most of the
 * time; dearer ones are passed over by the price-sensitive. */
static uint32_t pick_product(sim *s, uint8_t cat) {
    const catalog *c = &s->cat;
    uint32_t first = c->cat_first[cat], n = c->cat_first[cat + 1] - first, pi = 0;
    for (int tries = 0; tries < 3; tries++) {
        pi = n ? c->by_cat[first + rng_below(&s->r, n)] : rng_below(&s->r, c->count);
        float rel = c->items[pi].rel_price;
        if (rel <= 0 || rng_chance(&s->r, exp(-2.0 * s->v->sens * rel))) break;
    }
    return pi;
}

static void do_search(sim *s) {
    const sim_category *c = &SIM_CATEGORIES[pick_category(s)];
    char query[64] = "", path[128];
    if (rng_chance(&s->r, 0.3)) { /* "sage vase" */
        lower_into(query, 24, SIM_COLOURS[rng_below(&s->r, SIM_COUNT(SIM_COLOURS))]);
        strcat(query, " ");
    }
    size_t n = strlen(query);
    lower_into(query + n, sizeof query - n, pick_noun(&s->r, c));
    if (!sim_done(s)) {
        ev_begin(s, "track");
        PUTS(&s->o, ",\"event\":\"Products Searched\",\"properties\":{\"query\":\"");
        put_str(&s->o, query);
        PUTS(&s->o, "\"}");
        ev_end(s);
    }
    snprintf(path, sizeof path, "/search?q=%s", query);
    for (char *p = path; *p; p++)
        if (*p == ' ') *p = '+';
    ev_page(s, "Search", path, "Search results");
}

static void cart_add(visitor *v, uint32_t pi, int qty) {
    for (int i = 0; i < v->cart_n; i++)
        if (v->cart[i] == pi) {
            v->qty[i] = (uint8_t)(v->qty[i] + qty);
            return;
        }
    if (v->cart_n == CART_MAX) return;
    v->cart[v->cart_n] = pi;
    v->qty[v->cart_n++] = (uint8_t)qty;
}

static void do_view(sim *s) {
    uint8_t cat = pick_category(s);
    uint32_t pi = pick_product(s, cat);
    const product *p = &s->cat.items[pi];
    char path[64];
    snprintf(path, sizeof path, "/p/%s", p->id);
    ev_page(s, "Product", path, p->name);
    ev_track_product(s, "Product Viewed", pi, 0);
    bool fav = false;
    for (int i = 0; i < s->v->nfav; i++)
        fav |= s->v->fav[i] == p->cat;
    double p_add = (fav ? 0.25 : 0.06) * (p->rel_price > 0 ? exp(-s->v->sens * p->rel_price) : 1);
    if (s->v->cart_n < CART_MAX && rng_chance(&s->r, p_add)) {
        int qty = rng_chance(&s->r, 0.85) ? 1 : 2 + (int)rng_below(&s->r, 3);
        ev_track_product(s, "Product Added", pi, qty);
        cart_add(s->v, pi, qty);
    }
}

static void do_remove(sim *s) {
    visitor *v = s->v;
    uint32_t k = rng_below(&s->r, v->cart_n);
    ev_track_product(s, "Product Removed", v->cart[k], v->qty[k]);
    v->cart[k] = v->cart[v->cart_n - 1];
    v->qty[k] = v->qty[v->cart_n - 1];
    v->cart_n--;
}

static void do_order(sim *s) {
    visitor *v = s->v;
    ev_page(s, "Cart", "/cart", "Your cart");
    ev_page(s, "Checkout", "/checkout", "Checkout");
    if (!v->identified) ev_identify(s);
    if (sim_done(s)) return;
    out *o = &s->o;
    int64_t total = 0;
    for (int i = 0; i < v->cart_n; i++)
        total += s->cat.items[v->cart[i]].cents * v->qty[i];
    s->orders++;
    ev_begin(s, "track");
    PUTS(o, ",\"event\":\"Order Completed\",\"properties\":{\"order_id\":\"sim-");
    put_u64(o, s->seed);
    PUTS(o, "-o");
    put_u64(o, s->orders);
    PUTS(o, "\",\"total\":");
    put_cents(o, total);
    PUTS(o, ",\"revenue\":");
    put_cents(o, total);
    PUTS(o, ",\"currency\":\"GBP\",\"products\":[");
    for (int i = 0; i < v->cart_n; i++) {
        const product *p = &s->cat.items[v->cart[i]];
        if (i) o->buf[o->len++] = ',';
        o->buf[o->len++] = '{';
        put(o, p->frag, p->frag_len);
        PUTS(o, ",\"quantity\":");
        put_u64(o, v->qty[i]);
        PUTS(o, "}");
    }
    PUTS(o, "]}");
    ev_end(s);
    v->cart_n = 0;
}

static void session(sim *s, uint32_t vi) {
    visitor *v = &s->vis[vi];
    s->v = v;
    s->vi = vi;
    s->t = v->next_ms;
    uint64_t h = (uint64_t)vi + 1;
    uint64_t x = s->seed ^ (h * 0xA24BAED4963EE407ull);
    snprintf(s->anon, sizeof s->anon, "anon-%016llx", (unsigned long long)splitmix64(&x));
    if (rng_chance(&s->r, 0.6)) {
        ev_page(s, "Home", "/", "Home");
    } else {
        uint8_t c = pick_category(s);
        char path[64];
        snprintf(path, sizeof path, "/c/%s", s->cat.slug[c]);
        ev_page(s, "Category", path, SIM_CATEGORIES[c].path);
    }
    if (!v->identified && rng_chance(&s->r, 0.04)) ev_identify(s);
    double extra = s->opts->extra_actions_set ? s->opts->extra_actions : 6;
    int actions = 1 + (extra > 0 ? (int)rng_exp(&s->r, extra) : 0);
    for (int a = 0; a < actions && !sim_done(s); a++) {
        double r = rng_unit(&s->r);
        if (r < 0.15)
            do_search(s);
        else if (r < 0.22) {
            uint8_t c = pick_category(s);
            char path[64];
            snprintf(path, sizeof path, "/c/%s", s->cat.slug[c]);
            ev_page(s, "Category", path, SIM_CATEGORIES[c].path);
        } else
            do_view(s);
        if (v->cart_n && rng_chance(&s->r, 0.04)) do_remove(s);
    }
    double p_order = v->cart_n ? 0.3 + 0.05 * v->cart_n : 0;
    if (rng_chance(&s->r, p_order)) do_order(s);
    v->next_ms = s->t + (int64_t)(HOUR_MS + rng_exp(&s->r, 2.5 * DAY_MS));
}

/* --- entry points -------------------------------------------------------- */

static bsp_err write_catalog(sim *s) {
    for (uint32_t i = 0; i < s->cat.count && !s->o.failed; i++) {
        put_str(&s->o, s->cat.items[i].line);
        if (s->o.len > OUT_CAP - OUT_SLACK) out_flush(&s->o);
    }
    return BSP_OK;
}

static bsp_err write_events(sim *s, uint32_t nvis, int64_t start_ms) {
    s->vis = malloc((size_t)nvis * sizeof *s->vis);
    heap h = {.a = malloc((size_t)nvis * sizeof *h.a), .n = nvis, .v = s->vis};
    if (!s->vis || !h.a) {
        free(h.a);
        return BSP_ENOMEM;
    }
    rng vr;
    rng_seed(&vr, s->seed, 2);
    int64_t first = INT64_MAX;
    for (uint32_t i = 0; i < nvis; i++) {
        visitor_make(&s->vis[i], &vr, start_ms, s->opts->arrival_days ? s->opts->arrival_days : 14);
        if (s->vis[i].next_ms < first) first = s->vis[i].next_ms;
        h.a[i] = i;
    }
    for (uint32_t i = 0; i < nvis; i++)
        s->vis[i].next_ms -= first - start_ms; /* first at start */
    for (uint32_t i = nvis / 2; i-- > 0;)
        heap_down(&h, i);
    rng_seed(&s->r, s->seed, 3);
    while (!sim_done(s)) {
        session(s, h.a[0]); /* moves the visitor's next_ms later */
        heap_down(&h, 0);
    }
    free(h.a);
    return BSP_OK;
}

bsp_err sim_write(const bsp_sim_opts *opts, FILE *out_fp) {
    if (!opts || !out_fp) return BSP_EINVAL;
    uint32_t nprod = opts->products ? opts->products : 2000;
    uint64_t nvis = opts->visitors ? opts->visitors : opts->events / 20;
    if (nvis == 0) nvis = 1;
    if (nprod > MAX_PRODUCTS || (opts->visitors && nvis > MAX_VISITORS)) return BSP_ETOOBIG;
    if (nvis > MAX_VISITORS) nvis = MAX_VISITORS;
    sim s = {.opts = opts, .seed = opts->seed ? opts->seed : 1, .target = opts->events};
    s.o = (out){.fp = out_fp, .buf = malloc(OUT_CAP), .day = INT64_MIN};
    if (!s.o.buf) return BSP_ENOMEM;
    bsp_err rc = catalog_build(&s.cat, nprod, s.seed);
    if (rc == BSP_OK) {
        int64_t start = opts->start_ms > 0 ? opts->start_ms : DEFAULT_START_MS;
        rc = opts->catalog_only ? write_catalog(&s) : write_events(&s, (uint32_t)nvis, start);
    }
    out_flush(&s.o);
    if (rc == BSP_OK && (s.o.failed || fflush(out_fp) != 0)) rc = BSP_EIO;
    catalog_free(&s.cat);
    free(s.vis);
    free(s.o.buf);
    return rc;
}
