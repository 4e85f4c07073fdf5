/* cond_eval.c - evaluates a compiled condition against one profile's
 * inputs (cond_env). Values are small structs that borrow from the
 * condition or the profile's JSON, so evaluation does not allocate; a path
 * that runs through a list is kept as (array, rest of path) and walked
 * lazily by the operators that need its values. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "segment/cond_internal.h"

typedef enum val_kind {
    V_NULL,
    V_NUMBER,
    V_STRING,
    V_BOOL,
    V_JSON,      /* a borrowed JSON array or object */
    V_LIST,      /* a list literal: node holds its elements */
    V_PATH_LIST, /* values found by path->segs[seg..] under each item of json */
} val_kind;

typedef struct cond_val {
    val_kind kind;
    bool boolean;
    bool lowered; /* a string read through lower(): compare it ASCII-lowercased */
    double num;
    const char *str; /* NUL-terminated */
    size_t len;
    const cJSON *json;
    const cond_node *node;
    unsigned seg;
} cond_val;

typedef struct eval_ctx {
    const bsp_cond *cond;
    const cond_env *env;
    const cJSON *properties; /* the current event's properties in a filter */
} eval_ctx;

static void eval_node(const eval_ctx *x, int32_t index, cond_val *out);

/* ---- values ---- */

static void value_from_json(const cJSON *item, cond_val *out) {
    memset(out, 0, sizeof *out);
    if (!item || cJSON_IsNull(item)) {
        out->kind = V_NULL;
    } else if (cJSON_IsNumber(item)) {
        out->kind = V_NUMBER;
        out->num = item->valuedouble;
    } else if (cJSON_IsString(item) && item->valuestring) {
        out->kind = V_STRING;
        out->str = item->valuestring;
        out->len = strlen(item->valuestring);
    } else if (cJSON_IsBool(item)) {
        out->kind = V_BOOL;
        out->boolean = cJSON_IsTrue(item);
    } else if (cJSON_IsArray(item) || cJSON_IsObject(item)) {
        out->kind = V_JSON;
        out->json = item;
    } else {
        out->kind = V_NULL;
    }
}

static void value_number(double num, cond_val *out) {
    memset(out, 0, sizeof *out);
    out->kind = V_NUMBER;
    out->num = num;
}

static void value_bool(bool boolean, cond_val *out) {
    memset(out, 0, sizeof *out);
    out->kind = V_BOOL;
    out->boolean = boolean;
}

static bool is_list(const cond_val *v) {
    return v->kind == V_LIST || v->kind == V_PATH_LIST ||
           (v->kind == V_JSON && cJSON_IsArray(v->json));
}

/* ---- iterating over list values ---- */

/* Called per item; returns true to stop (found). */
typedef bool (*item_fn)(const eval_ctx *x, const cond_val *item, void *arg);

static bool each_json_item(const eval_ctx *x, const cJSON *array, item_fn fn, void *arg) {
    const cJSON *item;
    cJSON_ArrayForEach(item, array) {
        cond_val v;
        value_from_json(item, &v);
        if (fn(x, &v, arg)) return true;
    }
    return false;
}

/* The values path->segs[seg..] finds under item, flattening lists. */
static bool each_path_value(const eval_ctx *x, const cJSON *item, const cond_node *path,
                            unsigned seg, item_fn fn, void *arg) {
    for (; seg < path->nsegs; seg++) {
        if (cJSON_IsArray(item)) {
            const cJSON *child;
            cJSON_ArrayForEach(child, item) {
                if (each_path_value(x, child, path, seg, fn, arg)) return true;
            }
            return false;
        }
        if (!cJSON_IsObject(item)) return false;
        item = json_member(item, path->segs[seg]);
        if (!item) return false;
    }
    if (cJSON_IsArray(item)) return each_json_item(x, item, fn, arg);
    cond_val v;
    value_from_json(item, &v);
    return fn(x, &v, arg);
}

/* Calls fn for each value of a list value; true if fn stopped it. */
static bool each_item(const eval_ctx *x, const cond_val *list, item_fn fn, void *arg) {
    if (list->kind == V_JSON) return each_json_item(x, list->json, fn, arg);
    if (list->kind == V_PATH_LIST) {
        const cJSON *item;
        cJSON_ArrayForEach(item, list->json) {
            if (each_path_value(x, item, list->node, list->seg, fn, arg)) return true;
        }
        return false;
    }
    for (int32_t i = list->node->first; i >= 0; i = x->cond->nodes[i].next) {
        cond_val v;
        eval_node(x, i, &v);
        if (fn(x, &v, arg)) return true;
    }
    return false;
}

static bool count_item(const eval_ctx *x, const cond_val *item, void *arg) {
    (void)x;
    (void)item;
    (*(size_t *)arg)++;
    return false;
}

static bool stop_at_item(const eval_ctx *x, const cond_val *item, void *arg) {
    (void)x;
    (void)item;
    (void)arg;
    return true;
}

/* ---- strings ---- */

static unsigned char fold(char ch, bool lowered) {
    unsigned char byte = (unsigned char)ch;
    return lowered && byte >= 'A' && byte <= 'Z' ? (unsigned char)(byte + 32) : byte;
}

static int text_compare(const cond_val *a, const cond_val *b) {
    size_t n = a->len < b->len ? a->len : b->len;
    for (size_t i = 0; i < n; i++) {
        int diff = fold(a->str[i], a->lowered) - fold(b->str[i], b->lowered);
        if (diff) return diff;
    }
    return a->len < b->len ? -1 : a->len > b->len ? 1 : 0;
}

static bool text_equal_at(const cond_val *hay, size_t at, const cond_val *needle) {
    for (size_t i = 0; i < needle->len; i++)
        if (fold(hay->str[at + i], hay->lowered) != fold(needle->str[i], needle->lowered))
            return false;
    return true;
}

static bool text_contains(const cond_val *hay, const cond_val *needle) {
    if (needle->len > hay->len) return false;
    for (size_t at = 0; at + needle->len <= hay->len; at++)
        if (text_equal_at(hay, at, needle)) return true;
    return false;
}

/* Characters, not bytes: UTF-8 continuation bytes are not counted. */
static size_t text_length(const cond_val *s) {
    size_t n = 0;
    for (size_t i = 0; i < s->len; i++)
        if (((unsigned char)s->str[i] & 0xC0) != 0x80) n++;
    return n;
}

static bool text_matches(const cond_val *s, const regex_t *re) {
    if (!s->lowered) return regexec(re, s->str, 0, NULL, 0) == 0;
    char small[512];
    char *copy = s->len < sizeof small ? small : malloc(s->len + 1); /* rare: long text */
    if (!copy) return false;
    for (size_t i = 0; i < s->len; i++)
        copy[i] = (char)fold(s->str[i], true);
    copy[s->len] = '\0';
    bool hit = regexec(re, copy, 0, NULL, 0) == 0;
    if (copy != small) free(copy);
    return hit;
}

/* ---- truthiness and comparisons ---- */

static bool truthy(const eval_ctx *x, const cond_val *v) {
    switch (v->kind) {
    case V_BOOL:
        return v->boolean;
    case V_NUMBER:
        return v->num != 0 && !isnan(v->num);
    case V_STRING:
        return v->len > 0;
    case V_JSON:
        return !cJSON_IsArray(v->json) || cJSON_GetArraySize(v->json) > 0;
    case V_LIST:
    case V_PATH_LIST:
        return each_item(x, v, stop_at_item, NULL);
    default:
        return false;
    }
}

static bool values_equal(const cond_val *a, const cond_val *b) {
    if (a->kind != b->kind) return false;
    switch (a->kind) {
    case V_NUMBER:
        return a->num == b->num;
    case V_STRING:
        return text_compare(a, b) == 0;
    case V_BOOL:
        return a->boolean == b->boolean;
    default:
        return false;
    }
}

/* Orders numbers with numbers and strings with strings; false otherwise. */
static bool values_order(const cond_val *a, const cond_val *b, int *order) {
    if (a->kind == V_NUMBER && b->kind == V_NUMBER) {
        if (isnan(a->num) || isnan(b->num)) return false;
        *order = a->num < b->num ? -1 : a->num > b->num ? 1 : 0;
        return true;
    }
    if (a->kind == V_STRING && b->kind == V_STRING) {
        *order = text_compare(a, b);
        return true;
    }
    return false;
}

static bool equals_item(const eval_ctx *x, const cond_val *item, void *arg) {
    (void)x;
    return values_equal(item, arg);
}

static bool is_member(const eval_ctx *x, const cond_val *value, const cond_val *list) {
    if (value->kind == V_NULL || !is_list(list)) return false;
    return each_item(x, list, equals_item, (void *)value);
}

/* = and != where one side is null: only "= null" and "!= null" can hold. */
static bool compare_null(const eval_ctx *x, const cond_node *cmp, const cond_val *a,
                         const cond_val *b) {
    const cond_node *left = &x->cond->nodes[cmp->first];
    const cond_node *right = &x->cond->nodes[left->next];
    const cond_val *other = right->kind == N_NULL ? a : left->kind == N_NULL ? b : NULL;
    if (!other || (cmp->op != OP_EQ && cmp->op != OP_NE)) return false;
    return cmp->op == OP_EQ ? other->kind == V_NULL : other->kind != V_NULL;
}

static bool compare_order(cond_op op, const cond_val *a, const cond_val *b) {
    int order = 0;
    if (!values_order(a, b, &order)) return false;
    switch (op) {
    case OP_LT:
        return order < 0;
    case OP_LE:
        return order <= 0;
    case OP_GT:
        return order > 0;
    default:
        return order >= 0;
    }
}

static bool compare_text(const cond_node *cmp, const cond_val *a, const cond_val *b) {
    if (a->kind != V_STRING) return false;
    if (cmp->op == OP_MATCHES) return cmp->re && text_matches(a, cmp->re);
    if (b->kind != V_STRING || b->len > a->len) return false;
    if (cmp->op == OP_STARTS_WITH) return text_equal_at(a, 0, b);
    return text_equal_at(a, a->len - b->len, b);
}

static bool compare(const eval_ctx *x, const cond_node *cmp, const cond_val *a, const cond_val *b) {
    if (a->kind == V_NULL || b->kind == V_NULL) return compare_null(x, cmp, a, b);
    switch ((cond_op)cmp->op) {
    case OP_EQ:
        return values_equal(a, b);
    case OP_NE:
        return !values_equal(a, b);
    case OP_IN:
        return is_member(x, a, b);
    case OP_NOT_IN:
        return is_list(b) && !is_member(x, a, b);
    case OP_CONTAINS:
        if (a->kind == V_STRING) return b->kind == V_STRING && text_contains(a, b);
        return is_member(x, b, a);
    case OP_STARTS_WITH:
    case OP_ENDS_WITH:
    case OP_MATCHES:
        return compare_text(cmp, a, b);
    default:
        return compare_order((cond_op)cmp->op, a, b);
    }
}

/* ---- paths ---- */

static const cJSON *root_object(const eval_ctx *x, cond_root root) {
    if (root == ROOT_PROPERTIES) return x->properties;
    if (!x->env->root) return NULL;
    return x->env->root(x->env->ctx, cond_root_names[root]);
}

/* computed.NAME served by the env without building the computed object:
 * a plain number or a text. */
static bool eval_computed_direct(const eval_ctx *x, const cond_node *path, cond_val *out) {
    if (path->op != ROOT_COMPUTED || path->nsegs != 1) return false;
    const cond_env *env = x->env;
    double num;
    if (env->computed_number && env->computed_number(env->ctx, path->segs[0], path->hash, &num)) {
        value_number(num, out);
        return true;
    }
    const char *text;
    if (!env->computed_text || !env->computed_text(env->ctx, path->segs[0], path->hash, &text))
        return false;
    memset(out, 0, sizeof *out);
    out->kind = text ? V_STRING : V_NULL;
    out->str = text;
    out->len = text ? strlen(text) : 0;
    return true;
}

static void eval_path(const eval_ctx *x, const cond_node *path, cond_val *out) {
    if (eval_computed_direct(x, path, out)) return;
    const cJSON *item = root_object(x, (cond_root)path->op);
    for (unsigned seg = 0; item && seg < path->nsegs; seg++) {
        if (cJSON_IsArray(item)) {
            memset(out, 0, sizeof *out);
            out->kind = V_PATH_LIST;
            out->json = item;
            out->node = path;
            out->seg = seg;
            return;
        }
        item = cJSON_IsObject(item) ? json_member(item, path->segs[seg]) : NULL;
    }
    value_from_json(item, out);
}

/* ---- functions ---- */

typedef struct event_scan {
    const eval_ctx *outer;
    int32_t property; /* sum(): the path node, or -1 */
    int32_t filter;   /* or -1 */
    bool first_only;  /* did(): stop at the first match */
    double count;
    double sum;
} event_scan;

static bool add_number(const eval_ctx *x, const cond_val *item, void *arg) {
    (void)x;
    if (item->kind == V_NUMBER && isfinite(item->num)) *(double *)arg += item->num;
    return false;
}

static bool visit_event(void *vctx, const cJSON *event) {
    event_scan *scan = vctx;
    eval_ctx inner = *scan->outer;
    inner.properties = json_member(event, "properties");
    cond_val v;
    if (scan->filter >= 0) {
        eval_node(&inner, scan->filter, &v);
        if (!truthy(&inner, &v)) return true;
    }
    scan->count++;
    if (scan->property >= 0) {
        eval_node(&inner, scan->property, &v);
        if (is_list(&v))
            each_item(&inner, &v, add_number, &scan->sum);
        else
            add_number(&inner, &v, &scan->sum);
    }
    return !scan->first_only;
}

/* now_ms - window without overflow (windows may be absurdly long). */
static int64_t ms_before(int64_t now_ms, double window_ms) {
    double since = (double)now_ms - window_ms;
    return since <= -9.2e18 ? INT64_MIN : (int64_t)since;
}

/* did(), count() and sum(): arguments are name, [property,] window, [filter]. */
static void eval_events(const eval_ctx *x, const cond_node *call, cond_val *out) {
    const bsp_cond *c = x->cond;
    const cond_node *name = &c->nodes[call->first];
    int32_t property = call->op == FN_SUM ? name->next : -1;
    const cond_node *window = &c->nodes[property >= 0 ? c->nodes[property].next : name->next];
    event_scan scan = {
        .outer = x, .property = property, .filter = window->next, .first_only = call->op == FN_DID};
    int64_t since = ms_before(x->env->now_ms, window->num);
    if (x->env->each_event) x->env->each_event(x->env->ctx, name->str, since, visit_event, &scan);
    if (call->op == FN_DID)
        value_bool(scan.count > 0, out);
    else
        value_number(call->op == FN_SUM ? scan.sum : scan.count, out);
}

/* days_since() and hours_since(): a date string or milliseconds. */
/* The argument of days_since() or hours_since() when it is one of the
 * computed times the env serves as milliseconds: true, *set (false where the
 * time is null) and *ms. */
static bool since_computed_time(const eval_ctx *x, int32_t arg, bool *set, int64_t *ms) {
    const cond_node *path = &x->cond->nodes[arg];
    const cond_env *env = x->env;
    return path->kind == N_PATH && path->op == ROOT_COMPUTED && path->nsegs == 1 &&
           env->computed_time && env->computed_time(env->ctx, path->segs[0], path->hash, set, ms);
}

static void eval_since(const eval_ctx *x, const cond_node *call, cond_val *out) {
    int64_t ms = 0;
    double unit = call->op == FN_DAYS_SINCE ? 86400000.0 : 3600000.0;
    bool set;
    if (since_computed_time(x, call->first, &set, &ms)) {
        if (set)
            value_number(((double)x->env->now_ms - (double)ms) / unit, out);
        else
            value_from_json(NULL, out);
        return;
    }
    cond_val time;
    eval_node(x, call->first, &time);
    if (time.kind == V_NUMBER && fabs(time.num) < 9.2e18)
        ms = (int64_t)time.num;
    else if (time.kind != V_STRING || !bsp_time_parse(time.str, &ms)) {
        value_from_json(NULL, out);
        return;
    }
    value_number(((double)x->env->now_ms - (double)ms) / unit, out);
}

static void eval_length(const eval_ctx *x, const cond_node *call, cond_val *out) {
    cond_val v;
    eval_node(x, call->first, &v);
    size_t n = 0;
    if (v.kind == V_STRING)
        n = text_length(&v);
    else if (is_list(&v))
        each_item(x, &v, count_item, &n);
    else {
        value_from_json(NULL, out);
        return;
    }
    value_number((double)n, out);
}

static bool in_segment_call(const eval_ctx *x, const cond_node *call) {
    const cond_node *id = &x->cond->nodes[call->first];
    return x->env->in_segment && x->env->in_segment(x->env->ctx, id->str, id->hash) == 1;
}

static void eval_call(const eval_ctx *x, const cond_node *call, cond_val *out) {
    switch ((cond_fn)call->op) {
    case FN_IN_SEGMENT:
        value_bool(in_segment_call(x, call), out);
        return;
    case FN_DAYS_SINCE:
    case FN_HOURS_SINCE:
        eval_since(x, call, out);
        return;
    case FN_NOW:
        value_number((double)x->env->now_ms, out);
        return;
    case FN_LOWER:
        eval_node(x, call->first, out);
        if (out->kind == V_STRING)
            out->lowered = true;
        else
            value_from_json(NULL, out);
        return;
    case FN_LENGTH:
        eval_length(x, call, out);
        return;
    default:
        eval_events(x, call, out);
        return;
    }
}

/* ---- nodes ---- */

static bool eval_chain(const eval_ctx *x, const cond_node *chain, bool stop_on);
static bool eval_compare(const eval_ctx *x, const cond_node *cmp);

/* Whether node index is truthy. The logical operators, comparisons and
 * in_segment() answer without building a value: most of a decision's
 * evaluations are of those. */
static bool eval_truthy(const eval_ctx *x, int32_t index) {
    const cond_node *node = &x->cond->nodes[index];
    switch ((cond_kind)node->kind) {
    case N_AND:
        return eval_chain(x, node, false);
    case N_OR:
        return eval_chain(x, node, true);
    case N_NOT:
        return !eval_truthy(x, node->first);
    case N_COMPARE:
        return eval_compare(x, node);
    case N_CALL:
        if (node->op == FN_IN_SEGMENT) return in_segment_call(x, node);
        break;
    default:
        break;
    }
    cond_val v;
    eval_node(x, index, &v);
    return truthy(x, &v);
}

/* and (stop at the first false) / or (stop at the first true). */
static bool eval_chain(const eval_ctx *x, const cond_node *chain, bool stop_on) {
    for (int32_t i = chain->first; i >= 0; i = x->cond->nodes[i].next)
        if (eval_truthy(x, i) == stop_on) return stop_on;
    return !stop_on;
}

static bool eval_compare(const eval_ctx *x, const cond_node *cmp) {
    cond_val left, right;
    eval_node(x, cmp->first, &left);
    eval_node(x, x->cond->nodes[cmp->first].next, &right);
    return compare(x, cmp, &left, &right);
}

static void eval_node(const eval_ctx *x, int32_t index, cond_val *out) {
    const cond_node *node = &x->cond->nodes[index];
    memset(out, 0, sizeof *out);
    switch ((cond_kind)node->kind) {
    case N_NUMBER:
    case N_DURATION:
        value_number(node->num, out);
        return;
    case N_STRING:
        out->kind = V_STRING;
        out->str = node->str;
        out->len = node->len;
        return;
    case N_TRUE:
    case N_FALSE:
        value_bool(node->kind == N_TRUE, out);
        return;
    case N_NULL:
        return;
    case N_LIST:
        out->kind = V_LIST;
        out->node = node;
        return;
    case N_PATH:
        eval_path(x, node, out);
        return;
    case N_CALL:
        eval_call(x, node, out);
        return;
    case N_NOT:
        value_bool(!eval_truthy(x, node->first), out);
        return;
    case N_AND:
        value_bool(eval_chain(x, node, false), out);
        return;
    case N_OR:
        value_bool(eval_chain(x, node, true), out);
        return;
    case N_COMPARE:
        value_bool(eval_compare(x, node), out);
        return;
    }
}

/* The i-th top-level operand of an `and` at the root, else the root for
 * i 0; -1 past the last. */
static int32_t conjunct_at(const bsp_cond *c, size_t i) {
    const cond_node *root = &c->nodes[c->root];
    if (root->kind != N_AND) return i == 0 ? c->root : -1;
    int32_t at = root->first;
    while (at >= 0 && i--)
        at = c->nodes[at].next;
    return at;
}

size_t cond_conjuncts(const bsp_cond *c) {
    size_t n = 0;
    if (c && c->root >= 0)
        while (conjunct_at(c, n) >= 0)
            n++;
    return n;
}

bool cond_eval_conjunct(const bsp_cond *c, size_t i, const cond_env *env) {
    if (!c || !env || c->root < 0) return false;
    int32_t at = conjunct_at(c, i);
    if (at < 0) return false;
    eval_ctx x = {.cond = c, .env = env, .properties = NULL};
    return eval_truthy(&x, at);
}

bool cond_eval(const bsp_cond *c, const cond_env *env) {
    if (!c || !env || c->root < 0) return false;
    eval_ctx x = {.cond = c, .env = env, .properties = NULL};
    return eval_truthy(&x, c->root);
}
