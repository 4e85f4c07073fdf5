/* cond_check.c - the parts of the parser that carry the language's rules:
 * paths and their roots, function calls with their arities and argument
 * roles (event name, window, property, filter), and the compile-time type
 * checks of comparisons, including compiling `matches` patterns once. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "segment/cond_check.h"

/* What is known about a node's value before evaluation. */
typedef enum cond_type { T_ANY, T_NUMBER, T_STRING, T_BOOL, T_NULL, T_DURATION, T_LIST } cond_type;

static const char *const type_names[] = {"value", "number",   "string", "boolean",
                                         "null",  "duration", "list"};

typedef struct fn_info {
    const char *name;
    cond_fn fn;
    int min_args, max_args;
    cond_type result;
} fn_info;

static const fn_info functions[] = {
    {"did", FN_DID, 2, 3, T_BOOL},
    {"count", FN_COUNT, 2, 3, T_NUMBER},
    {"sum", FN_SUM, 3, 4, T_NUMBER},
    {"in_segment", FN_IN_SEGMENT, 1, 1, T_BOOL},
    {"days_since", FN_DAYS_SINCE, 1, 1, T_NUMBER},
    {"hours_since", FN_HOURS_SINCE, 1, 1, T_NUMBER},
    {"now", FN_NOW, 0, 0, T_NUMBER},
    {"lower", FN_LOWER, 1, 1, T_STRING},
    {"length", FN_LENGTH, 1, 1, T_NUMBER},
};

static const char *const op_names[] = {"=",        "!=",          "<",         "<=",
                                       ">",        ">=",          "in",        "not in",
                                       "contains", "starts_with", "ends_with", "matches"};

static cond_type static_type(const cond_node *node) {
    switch ((cond_kind)node->kind) {
    case N_NUMBER:
        return T_NUMBER;
    case N_STRING:
        return T_STRING;
    case N_TRUE:
    case N_FALSE:
    case N_NOT:
    case N_AND:
    case N_OR:
    case N_COMPARE:
        return T_BOOL;
    case N_NULL:
        return T_NULL;
    case N_DURATION:
        return T_DURATION;
    case N_LIST:
        return T_LIST;
    case N_CALL:
        return functions[node->op].result;
    default:
        return T_ANY;
    }
}

static bool is_event_fn(cond_fn fn) {
    return fn == FN_DID || fn == FN_COUNT || fn == FN_SUM;
}

/* ---- paths ---- */

/* Points node->segs at the nsegs NUL-separated names in node->str. */
static bool set_segments(cond_parser *p, int32_t index, size_t nsegs) {
    cond_node *node = &p->cond->nodes[index];
    node->nsegs = (uint16_t)nsegs;
    if (nsegs == 0) return true;
    node->segs = malloc(nsegs * sizeof *node->segs);
    if (!node->segs) {
        bsp_error_set(p->err, BSP_ENOMEM, "", "out of memory");
        return false;
    }
    const char *name = node->str;
    for (size_t i = 0; i < nsegs; i++) {
        node->segs[i] = name;
        name += strlen(name) + 1;
    }
    node->hash = bsp_hash64(node->segs[0], strlen(node->segs[0])); /* cond_env.computed_number */
    return true;
}

static int root_of(const cond_parser *p) {
    for (int i = 0; i <= ROOT_PROPERTIES; i++)
        if (token_is(p, &p->tok, cond_root_names[i])) return i;
    return -1;
}

/* Reads ". name" pairs after the root into names ("a\0b\0"); -1 on error. */
static long read_segments(cond_parser *p, bsp_buf *names) {
    long nsegs = 0;
    while (p->tok.kind == TOK_DOT) {
        if (!parser_advance(p)) return -1;
        if (p->tok.kind != TOK_WORD) {
            char buf[40];
            parser_fail(p, p->tok.start, "expected a name after '.', not %s",
                        token_text(p, &p->tok, buf, sizeof buf));
            return -1;
        }
        if (bsp_buf_append(names, p->text + p->tok.start, p->tok.len) != BSP_OK ||
            bsp_buf_append(names, "", 1) != BSP_OK) {
            bsp_error_set(p->err, BSP_ENOMEM, "", "out of memory");
            return -1;
        }
        nsegs++;
        if (!parser_advance(p)) return -1;
    }
    return nsegs;
}

int32_t parse_path(cond_parser *p) {
    size_t start = p->tok.start;
    int root = root_of(p);
    if (root < 0)
        return parser_fail(p, start,
                           "unknown root '%.*s' (traits, computed, rfm, predicted, context, "
                           "properties)",
                           (int)p->tok.len, p->text + start);
    if (root == ROOT_PROPERTIES && !p->in_filter)
        return parser_fail(p, start,
                           "properties.* can only be used inside the filter of did(), count() "
                           "or sum()");
    if (!parser_advance(p)) return -1;
    bsp_buf names = {0};
    long nsegs = read_segments(p, &names);
    int32_t index = nsegs < 0 ? -1 : node_new(p, N_PATH, start);
    if (index < 0) {
        bsp_buf_free(&names);
        return -1;
    }
    cond_node *node = &p->cond->nodes[index];
    node->op = (uint8_t)root;
    node->str = names.data;
    node->len = names.len;
    return set_segments(p, index, (size_t)nsegs) ? index : -1;
}

/* Turns sum()'s property given as a string ("price", "item.price") into
 * the path properties.price. */
static bool string_to_property_path(cond_parser *p, int32_t index, size_t pos) {
    cond_node *node = &p->cond->nodes[index];
    size_t nsegs = 1;
    bool valid = node->len > 0 && node->str[0] != '.' && node->str[node->len - 1] != '.' &&
                 !strstr(node->str, "..");
    if (!valid) {
        parser_fail(p, pos, "\"%s\" is not a property name", node->str);
        return false;
    }
    for (char *dot = strchr(node->str, '.'); dot; dot = strchr(dot + 1, '.')) {
        *dot = '\0';
        nsegs++;
    }
    node->kind = N_PATH;
    node->op = ROOT_PROPERTIES;
    return set_segments(p, index, nsegs);
}

/* ---- calls ---- */

static const fn_info *find_function(const cond_parser *p) {
    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++)
        if (token_is(p, &p->tok, functions[i].name)) return &functions[i];
    return NULL;
}

static int32_t arity_fail(cond_parser *p, size_t pos, const fn_info *fi) {
    if (fi->max_args == 0) return parser_fail(p, pos, "%s() takes no arguments", fi->name);
    if (fi->max_args == 1) return parser_fail(p, pos, "%s() takes 1 argument", fi->name);
    return parser_fail(p, pos, "%s() takes %d or %d arguments", fi->name, fi->min_args,
                       fi->max_args);
}

static int window_arg(cond_fn fn) {
    return fn == FN_SUM ? 2 : is_event_fn(fn) ? 1 : -1;
}

static bool is_filter_arg(cond_fn fn, int index) {
    return is_event_fn(fn) && (index == window_arg(fn) + 1 || (fn == FN_SUM && index == 1));
}

static bool arg_type_fail(cond_parser *p, size_t pos, const fn_info *fi, const char *what) {
    parser_fail(p, pos, "%s() expects %s", fi->name, what);
    return false;
}

static bool check_event_arg(cond_parser *p, const fn_info *fi, int index, int32_t arg, size_t pos) {
    const cond_node *node = &p->cond->nodes[arg];
    if (index == 0 && node->kind != N_STRING)
        return arg_type_fail(p, pos, fi, "the event name as a string, such as \"Order Completed\"");
    if (index == window_arg(fi->fn) && node->kind != N_DURATION)
        return arg_type_fail(p, pos, fi,
                             fi->fn == FN_SUM ? "a window such as 7d as its third argument"
                                              : "a window such as 7d as its second argument");
    if (fi->fn != FN_SUM || index != 1) return true;
    if (node->kind == N_STRING) return string_to_property_path(p, arg, pos);
    if (node->kind == N_PATH && node->op == ROOT_PROPERTIES) return true;
    return arg_type_fail(p, pos, fi, "the property as a string, such as \"revenue\"");
}

/* The role and type rules of argument number index of a call. */
static bool check_arg(cond_parser *p, const fn_info *fi, int index, int32_t arg, size_t pos) {
    const cond_node *node = &p->cond->nodes[arg];
    cond_type type = static_type(node);
    switch (fi->fn) {
    case FN_DID:
    case FN_COUNT:
    case FN_SUM:
        return check_event_arg(p, fi, index, arg, pos);
    case FN_IN_SEGMENT:
        return node->kind == N_STRING || arg_type_fail(p, pos, fi, "a segment id as a string");
    case FN_DAYS_SINCE:
    case FN_HOURS_SINCE:
        return type == T_ANY || type == T_NUMBER || type == T_STRING ||
               arg_type_fail(p, pos, fi, "a time (a date string or milliseconds)");
    case FN_LOWER:
        return type == T_ANY || type == T_STRING || arg_type_fail(p, pos, fi, "a string");
    case FN_LENGTH:
        return type == T_ANY || type == T_STRING || type == T_LIST ||
               arg_type_fail(p, pos, fi, "a string or a list");
    default:
        return true;
    }
}

/* Parses one argument with its role's permissions (window, properties). */
static int32_t parse_arg(cond_parser *p, const fn_info *fi, int index) {
    size_t pos = p->tok.start;
    bool filter = is_filter_arg(fi->fn, index);
    p->window_next = index == window_arg(fi->fn);
    if (filter) p->in_filter++;
    int32_t arg = parse_expr(p);
    if (filter) p->in_filter--;
    p->window_next = false;
    if (arg < 0 || !check_arg(p, fi, index, arg, pos)) return -1;
    return arg;
}

static int32_t parse_args(cond_parser *p, const fn_info *fi, int32_t call) {
    int nargs = 0;
    int32_t last = -1;
    while (p->tok.kind != TOK_RPAREN) {
        if (nargs == fi->max_args) return arity_fail(p, p->tok.start, fi);
        int32_t arg = parse_arg(p, fi, nargs);
        if (arg < 0) return -1;
        if (last < 0)
            p->cond->nodes[call].first = arg;
        else
            p->cond->nodes[last].next = arg;
        last = arg;
        nargs++;
        if (p->tok.kind == TOK_RPAREN) break;
        if (p->tok.kind != TOK_COMMA) {
            char buf[40];
            return parser_fail(p, p->tok.start,
                               "expected ',' or ')' after an argument of %s(), "
                               "not %s",
                               fi->name, token_text(p, &p->tok, buf, sizeof buf));
        }
        if (!parser_advance(p)) return -1;
    }
    if (nargs < fi->min_args) return arity_fail(p, p->tok.start, fi);
    return call;
}

int32_t parse_call(cond_parser *p) {
    size_t start = p->tok.start;
    const fn_info *fi = find_function(p);
    if (!fi)
        return parser_fail(p, start, "unknown function '%.*s'", (int)p->tok.len, p->text + start);
    if (is_event_fn(fi->fn) && p->in_filter)
        return parser_fail(p, start, "%s() cannot be used inside another event function", fi->name);
    int32_t call = node_new(p, N_CALL, start);
    if (call < 0) return -1;
    p->cond->nodes[call].op = (uint8_t)fi->fn;
    if (++p->depth > COND_MAX_DEPTH) {
        cond_error_at(p->err, BSP_ETOOBIG, p->text, p->len, start,
                      "nesting is deeper than %d levels", COND_MAX_DEPTH);
        return -1;
    }
    if (!parser_advance(p) || !parser_advance(p)) return -1; /* the name and '(' */
    if (parse_args(p, fi, call) < 0) return -1;
    p->depth--;
    return parser_advance(p) ? call : -1;
}

/* ---- comparisons ---- */

static bool is_scalar(cond_type type) {
    return type == T_NUMBER || type == T_STRING || type == T_BOOL;
}

static bool is_ordering(cond_op op) {
    return op == OP_LT || op == OP_LE || op == OP_GT || op == OP_GE;
}

static bool check_equality(cond_parser *p, cond_op op, cond_type left, cond_type right,
                           size_t op_pos, size_t right_pos) {
    if (is_scalar(left) && is_scalar(right) && left != right) {
        parser_fail(p, right_pos, "cannot compare a %s with a %s", type_names[left],
                    type_names[right]);
        return false;
    }
    if (!is_ordering(op)) return true;
    cond_type bad = left == T_BOOL || right == T_BOOL   ? T_BOOL
                    : left == T_NULL || right == T_NULL ? T_NULL
                    : left == T_LIST || right == T_LIST ? T_LIST
                                                        : T_ANY;
    if (bad == T_ANY) return true;
    parser_fail(p, op_pos, "a %s can only be compared with = or !=", type_names[bad]);
    return false;
}

/* glibc's regcomp builds a tree that grows exponentially with stacked
 * quantifiers ("a++++...") and large repetition counts, enough to exhaust
 * memory from a short pattern: such patterns are refused before it sees
 * them. Returns NULL when the pattern is acceptable, else why not. */
#define PATTERN_MAX_BYTES 512
#define PATTERN_MAX_QUANTIFIERS 32
#define PATTERN_MAX_REPEAT 100

static const char *pattern_too_costly(const char *s) {
    if (strlen(s) > PATTERN_MAX_BYTES) return "longer than 512 bytes";
    size_t quantifiers = 0;
    bool after_quantifier = false;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        if (c == '\\' && s[i + 1]) {
            i++;
            after_quantifier = false;
        } else if (c == '[') { /* a bracket expression: its ']' may come first */
            size_t j = i + 1 + (s[i + 1] == '^');
            if (s[j] == ']') j++;
            while (s[j] && s[j] != ']')
                j++;
            i = s[j] ? j : i;
            after_quantifier = false;
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            if (after_quantifier) return "a quantifier follows another quantifier";
            if (++quantifiers > PATTERN_MAX_QUANTIFIERS) return "more than 32 quantifiers";
            if (c == '{') {
                char *end;
                long lo = strtol(s + i + 1, &end, 10), hi = lo;
                if (*end == ',')
                    hi = end[1] == '}' ? PATTERN_MAX_REPEAT : strtol(end + 1, &end, 10);
                if (lo > PATTERN_MAX_REPEAT || hi > PATTERN_MAX_REPEAT)
                    return "a repetition count above 100";
                const char *close = strchr(s + i, '}');
                if (close) i = (size_t)(close - s);
            }
            after_quantifier = true;
        } else {
            after_quantifier = false;
        }
    }
    return NULL;
}

static bool compile_pattern(cond_parser *p, int32_t node, const cond_node *pattern, size_t pos) {
    const char *costly = pattern_too_costly(pattern->str);
    if (costly) {
        parser_fail(p, pos, "regular expression refused: %s", costly);
        return false;
    }
    regex_t *re = malloc(sizeof *re);
    if (!re) {
        bsp_error_set(p->err, BSP_ENOMEM, "", "out of memory");
        return false;
    }
    int rc = regcomp(re, pattern->str, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char reason[160];
        regerror(rc, re, reason, sizeof reason);
        free(re);
        parser_fail(p, pos, "invalid regular expression: %s", reason);
        return false;
    }
    p->cond->nodes[node].re = re;
    return true;
}

static bool check_text_op(cond_parser *p, int32_t node, cond_type left, size_t left_pos,
                          size_t right_pos) {
    const cond_node *cmp = &p->cond->nodes[node];
    const cond_node *right = &p->cond->nodes[p->cond->nodes[cmp->first].next];
    const char *name = op_names[cmp->op];
    cond_type right_type = static_type(right);
    if (left != T_ANY && left != T_STRING)
        return parser_fail(p, left_pos, "'%s' needs a string on its left", name), false;
    if (cmp->op != OP_MATCHES) {
        if (right_type == T_ANY || right_type == T_STRING) return true;
        return parser_fail(p, right_pos, "'%s' needs a string on its right", name), false;
    }
    if (right->kind != N_STRING)
        return parser_fail(p, right_pos,
                           "'matches' needs a regular expression as a string, such as "
                           "\"^sofa\""),
               false;
    return compile_pattern(p, node, right, right_pos);
}

bool check_compare(cond_parser *p, int32_t node, size_t left_pos, size_t op_pos, size_t right_pos) {
    const cond_node *cmp = &p->cond->nodes[node];
    const cond_node *left = &p->cond->nodes[cmp->first];
    cond_type left_type = static_type(left);
    cond_type right_type = static_type(&p->cond->nodes[left->next]);
    cond_op op = (cond_op)cmp->op;
    switch (op) {
    case OP_IN:
    case OP_NOT_IN:
        if (right_type == T_ANY || right_type == T_LIST) return true;
        parser_fail(p, right_pos, "'%s' needs a list on its right, such as [\"a\", \"b\"]",
                    op_names[op]);
        return false;
    case OP_CONTAINS:
        if (left_type != T_NUMBER && left_type != T_BOOL && left_type != T_NULL) return true;
        parser_fail(p, left_pos, "'contains' needs a string or a list on its left");
        return false;
    case OP_STARTS_WITH:
    case OP_ENDS_WITH:
    case OP_MATCHES:
        return check_text_op(p, node, left_type, left_pos, right_pos);
    default:
        return check_equality(p, op, left_type, right_type, op_pos, right_pos);
    }
}
