/* scan.c - the storage form read straight from its bytes: the fast path of
 * profile_from_json. Building a cJSON tree of the whole profile, looking
 * each field up in it by name and copying the strings out again was most of
 * the cost of reading a profile that was not parsed before (decisions over
 * many visitors, the high_value scan, backfills).
 *
 * The scanner accepts only the layout profile_to_json writes: members in
 * the writer's order, each at most once, no whitespace, strings without
 * escapes or control characters, integers as plain digits (at most 15, so
 * exact), other numbers in JSON's grammar. It applies every check of the
 * tree reader (codec.c) through the same setters (strlist, cart, decay,
 * extras_load_*). Anything else - another layout, an escape, a value the
 * tree reader refuses, an allocation failure - makes it decline, and
 * profile_from_json reads the bytes with the tree reader, so the two agree
 * on every input. What a profile keeps as cJSON (traits, consent, rfm,
 * pred, recent events) is parsed by cJSON from its own bytes, with the
 * depth limit json_parse applies to the whole text. */
#include "profile/profile_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

#define SCAN_STR_MAX 512   /* longer strings decline */
#define SCAN_NUM_MAX 40    /* longer numbers decline */
#define SCAN_INT_DIGITS 15 /* integers of more digits decline (exact below 2^53) */

typedef struct scan {
    const char *at, *end;
    bsp_profile *p;
    bool ok;                    /* false once anything is off: decline */
    bool comma;                 /* a member came before in this object */
    char str[SCAN_STR_MAX + 1]; /* the last string read, NUL-terminated */
} scan;

/* --- tokens -------------------------------------------------------------- */

static bool fail(scan *s) {
    s->ok = false;
    return false;
}

static bool peek(const scan *s, char c) {
    return s->ok && s->at < s->end && *s->at == c;
}

static bool take(scan *s, char c) {
    if (!peek(s, c)) return fail(s);
    s->at++;
    return true;
}

static bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* The next member of the object is key: consumes `,"key":` (no comma
 * before the first member) and returns true; else moves nothing. */
static bool member(scan *s, const char *key, size_t n) {
    const char *a = s->at;
    if (!s->ok || (s->comma && (a == s->end || *a++ != ','))) return false;
    if ((size_t)(s->end - a) < n + 3 || a[0] != '"' || memcmp(a + 1, key, n) != 0 ||
        a[n + 1] != '"' || a[n + 2] != ':')
        return false;
    s->at = a + n + 3;
    s->comma = true;
    return true;
}

#define MEMBER(s, key) member(s, key, sizeof key - 1)

static bool open_object(scan *s) {
    s->comma = false;
    return take(s, '{');
}

/* After the last member: the enclosing object continues after a member. */
static bool close_object(scan *s) {
    s->comma = true;
    return take(s, '}');
}

/* Inside an array after '[': true when an element follows (its comma
 * consumed), false at the end (']' consumed) or on an error. */
static bool more(scan *s, bool *first) {
    if (!s->ok) return false;
    if (peek(s, ']')) {
        s->at++;
        return false;
    }
    if (!*first && !take(s, ',')) return false;
    *first = false;
    return true;
}

/* A string without escapes or control characters, into s->str. */
static const char *string(scan *s) {
    if (!take(s, '"')) return NULL;
    const char *a = s->at;
    size_t n = 0, room = (size_t)(s->end - a);
    while (n < room && (unsigned char)a[n] >= 0x20 && a[n] != '"' && a[n] != '\\')
        n++;
    if (n == room || a[n] != '"' || n > SCAN_STR_MAX) {
        fail(s);
        return NULL;
    }
    memcpy(s->str, a, n);
    s->str[n] = '\0';
    s->at = a + n + 1;
    return s->str;
}

/* -?(0|[1-9][0-9]*) of at most SCAN_INT_DIGITS digits, not followed by a
 * fraction or an exponent. */
static bool integer(scan *s, int64_t *out) {
    const char *a = s->at, *e = s->end;
    bool neg = a < e && *a == '-';
    int64_t v = 0;
    int digits = 0;
    if (neg) a++;
    if (a < e && *a == '0') {
        a++;
        digits = 1;
    } else {
        for (; a < e && is_digit(*a) && digits <= SCAN_INT_DIGITS; a++, digits++)
            v = v * 10 + (*a - '0');
    }
    if (!s->ok || digits == 0 || digits > SCAN_INT_DIGITS) return fail(s);
    if (a < e && (is_digit(*a) || *a == '.' || *a == 'e' || *a == 'E')) return fail(s);
    *out = neg ? -v : v;
    s->at = a;
    return true;
}

static const char *digits(const char *a, const char *e) {
    while (a < e && is_digit(*a))
        a++;
    return a;
}

/* The end of a number in JSON's grammar starting at a, or NULL. */
static const char *number_end(const char *a, const char *e) {
    if (a < e && *a == '-') a++;
    if (a == e || !is_digit(*a)) return NULL;
    a = *a == '0' ? a + 1 : digits(a, e);
    if (a < e && *a == '.') {
        const char *d = a + 1;
        if ((a = digits(d, e)) == d) return NULL;
    }
    if (a < e && (*a == 'e' || *a == 'E')) {
        a++;
        if (a < e && (*a == '+' || *a == '-')) a++;
        const char *d = a;
        if ((a = digits(d, e)) == d) return NULL;
    }
    return a;
}

/* A finite number, converted as cJSON does (strtod of the same digits). */
static bool number(scan *s, double *out) {
    const char *end = s->ok ? number_end(s->at, s->end) : NULL;
    size_t n = end ? (size_t)(end - s->at) : 0;
    if (!end || n > SCAN_NUM_MAX) return fail(s);
    char buf[SCAN_NUM_MAX + 1], *stop = NULL;
    memcpy(buf, s->at, n);
    buf[n] = '\0';
    double d = strtod(buf, &stop);
    if (stop != buf + n || !isfinite(d)) return fail(s);
    *out = d;
    s->at = end;
    return true;
}

/* An object or array the profile keeps as cJSON, parsed by cJSON from its
 * own bytes; level is the number of containers around it. */
static cJSON *tree(scan *s, int level, char open) {
    if (!peek(s, open)) {
        fail(s);
        return NULL;
    }
    const char *stop = NULL;
    cJSON *t = cJSON_ParseWithLengthOpts(s->at, (size_t)(s->end - s->at), &stop, false);
    if (!t || !stop || stop <= s->at || stop > s->end ||
        level + json_text_depth(s->at, (size_t)(stop - s->at)) > BSP_JSON_MAX_DEPTH + 2) {
        cJSON_Delete(t);
        fail(s);
        return NULL;
    }
    s->at = stop;
    return t;
}

/* --- fields -------------------------------------------------------------- */

static void count(scan *s, int64_t *out) {
    if (integer(s, out) && *out < 0) fail(s);
}

static void owned_string(scan *s, char **out) {
    const char *v = string(s);
    if (v && !(*out = strdup(v))) fail(s);
}

/* Appends each string, without duplicates and up to max (r_strlist). */
static void string_list(scan *s, strlist *l, size_t max) {
    bool first = true;
    if (!take(s, '[')) return;
    while (more(s, &first)) {
        const char *v = string(s);
        if (!v || l->count >= max || strlist_find(l, v) != SIZE_MAX) continue;
        if (strlist_insert(l, l->count, v) != BSP_OK) fail(s);
    }
}

static void pid(scan *s) {
    uint64_t v = 0;
    int n = 0;
    for (; s->at < s->end && is_digit(*s->at) && n < 20; s->at++, n++)
        v = v * 10 + (uint64_t)(*s->at - '0');
    /* 19 digits cannot overflow; strtoull would saturate longer ones */
    if (n == 0 || n > 19 || !take(s, '"')) fail(s);
    s->p->pid = v;
    s->comma = true;
}

static void revenue(scan *s) {
    double sum = 0, comp = 0;
    if (take(s, '[') && number(s, &sum) && take(s, ',') && number(s, &comp) && take(s, ']'))
        s->p->revenue = (money){.sum = sum, .comp = comp};
}

/* [product_id, quantity >= 1, price]; a product twice declines. */
static void cart_line_of(scan *s) {
    int64_t qty = 0;
    double price = 0;
    const char *id = take(s, '[') ? string(s) : NULL; /* s->str: numbers leave it */
    if (id && take(s, ',') && integer(s, &qty) && take(s, ',') && number(s, &price) &&
        take(s, ']') && qty >= 1) {
        cart *c = &s->p->cart;
        size_t before = c->count;
        cart_add(c, id, qty, true, price);
        if (cart_find(c, id) == SIZE_MAX || c->count == before) fail(s);
    } else {
        fail(s);
    }
}

static void cart_of(scan *s) {
    bool first = true;
    if (!take(s, '[')) return;
    while (more(s, &first))
        cart_line_of(s);
}

static void decay_entries(scan *s, decay_table *t) {
    bool first = true;
    double score = 0;
    if (!take(s, '[')) return;
    while (more(s, &first)) {
        const char *name = take(s, '[') ? string(s) : NULL;
        if (name && take(s, ',') && number(s, &score) && take(s, ']') &&
            !decay_append(t, name, score))
            fail(s);
    }
    if (s->ok && t->count > PROFILE_DECAY_MAX) decay_trim(t);
}

/* {"ref": ms, "e": [[name, score]...]} (cat, brand) */
static void decay_of(scan *s, decay_table *t) {
    if (!open_object(s) || !MEMBER(s, "ref") || !integer(s, &t->ref_ms) || !MEMBER(s, "e")) fail(s);
    decay_entries(s, t);
    close_object(s);
}

static void device(scan *s) {
    const char *name = string(s);
    for (int d = PROFILE_DEVICE_MOBILE; name && d < PROFILE_DEVICE_COUNT; d++)
        if (strcmp(name, profile_device_name((profile_device)d)) == 0) {
            s->p->device = (profile_device)d;
            return;
        }
    fail(s);
}

/* --- extras ("x") ---------------------------------------------------------- */

static void x_segments(scan *s) {
    bool first = true;
    if (!take(s, '[')) return;
    while (more(s, &first)) {
        const char *id = string(s);
        if (id && extras_load_segment(s->p, id) != BSP_OK) fail(s);
    }
}

/* [campaign, day, views_day, views_total, clicks_total] */
static void x_exposure(scan *s) {
    int64_t v[4] = {0};
    const char *id = take(s, '[') ? string(s) : NULL; /* s->str: numbers leave it */
    for (int i = 0; i < 4; i++)
        if (take(s, ',')) integer(s, &v[i]);
    if (id && take(s, ']') &&
        extras_load_exposure(s->p, id, (double)v[0], (double)v[1], (double)v[2], (double)v[3]) !=
            BSP_OK)
        fail(s);
}

static void x_exposures(scan *s) {
    bool first = true;
    if (!take(s, '[')) return;
    while (more(s, &first))
        x_exposure(s);
}

/* {"e": [[name, score]...], "ref": ms} (dp, dc: the order cJSON keeps) */
static void x_decay(scan *s, decay_table *t) {
    if (!open_object(s) || !MEMBER(s, "e")) fail(s);
    decay_entries(s, t);
    if (!MEMBER(s, "ref")) fail(s);
    integer(s, &t->ref_ms);
    close_object(s);
}

static void x_recent(scan *s) {
    cJSON *arr = tree(s, 2, '[');
    if (arr && !extras_recent_ok(arr)) fail(s);
    if (s->ok) s->p->recent = arr;
    if (!s->ok) cJSON_Delete(arr);
}

static void extras(scan *s) {
    bsp_profile *p = s->p;
    if (!open_object(s)) return;
    if (MEMBER(s, "rfm")) p->rfm = tree(s, 2, '{');
    if (MEMBER(s, "pred")) p->predicted = tree(s, 2, '{');
    if (MEMBER(s, "seg")) x_segments(s);
    if (MEMBER(s, "exp")) x_exposures(s);
    if (MEMBER(s, "dp")) x_decay(s, &p->dwell_products);
    if (MEMBER(s, "dc")) x_decay(s, &p->dwell_categories);
    if (MEMBER(s, "ds") && number(s, &p->dwell_seconds) && !(p->dwell_seconds >= 0)) fail(s);
    if (MEMBER(s, "recent")) x_recent(s);
    close_object(s);
}

/* --- the profile ----------------------------------------------------------- */

static void identity(scan *s) {
    bsp_profile *p = s->p;
    if (MEMBER(s, "uid")) string_list(s, &p->user_ids, BSP_PROFILE_MAX_IDS);
    if (MEMBER(s, "aid")) string_list(s, &p->anon_ids, BSP_PROFILE_MAX_IDS);
    if (MEMBER(s, "traits")) p->traits = tree(s, 1, '{');
    if (MEMBER(s, "consent")) p->consent = tree(s, 1, '{');
    if (MEMBER(s, "consent_ms")) integer(s, &p->consent_ms);
}

static void activity(scan *s) {
    bsp_profile *p = s->p;
    if (MEMBER(s, "first")) integer(s, &p->first_seen_ms);
    if (MEMBER(s, "last")) integer(s, &p->last_seen_ms);
    if ((p->first_seen_ms == PROFILE_TIME_UNSET) != (p->last_seen_ms == PROFILE_TIME_UNSET))
        fail(s);
    if (MEMBER(s, "seq")) count(s, &p->applied_seq);
    if (MEMBER(s, "sessions")) count(s, &p->sessions);
    if (MEMBER(s, "pages")) count(s, &p->page_views);
    if (MEMBER(s, "views")) count(s, &p->product_views);
    if (MEMBER(s, "adds")) count(s, &p->add_to_carts);
    if (MEMBER(s, "orders")) count(s, &p->orders);
    if (MEMBER(s, "revenue")) revenue(s);
    if (MEMBER(s, "last_order")) integer(s, &p->last_order_ms);
}

static void shopping(scan *s) {
    bsp_profile *p = s->p;
    if (MEMBER(s, "cart")) cart_of(s);
    if (MEMBER(s, "recent")) string_list(s, &p->recently_viewed, BSP_PROFILE_RECENT_MAX);
    if (MEMBER(s, "purchased")) string_list(s, &p->purchased, PROFILE_PURCHASED_MAX);
    if (MEMBER(s, "cat")) decay_of(s, &p->categories);
    if (MEMBER(s, "brand")) decay_of(s, &p->brands);
    if (MEMBER(s, "search")) owned_string(s, &p->last_search);
    if (MEMBER(s, "country")) owned_string(s, &p->country);
    if (MEMBER(s, "device")) device(s);
}

bool profile_scan_json(const char *json, size_t len, bsp_profile **out) {
    static const char head[] = "{\"v\":1,\"pid\":\"";
    *out = NULL;
    if (!json || len < sizeof head - 1 || memcmp(json, head, sizeof head - 1) != 0) return false;
    scan s = {.at = json + sizeof head - 1, .end = json + len, .p = profile_new(0), .ok = true};
    if (!s.p) return false;
    pid(&s);
    identity(&s);
    activity(&s);
    shopping(&s);
    if (MEMBER(&s, "x")) extras(&s);
    if (take(&s, '}') && s.at == s.end) {
        *out = s.p;
        return true;
    }
    profile_free(s.p);
    return false;
}
