/* cond_parse.c - the recursive-descent parser of the condition language
 * (grammar in CONDITIONS.md): or/and/not chains, comparisons and values,
 * built into the node array of a bsp_cond under the text, depth and node
 * limits. Paths, calls and type rules live in cond_check.c. Also
 * cond_compile/cond_free and the introspection of what a condition reads. */
#include <stdlib.h>
#include <string.h>

#include "segment/cond_check.h"

const char *const cond_root_names[] = {"traits",    "computed", "rfm",
                                       "predicted", "context",  "properties"};

static const char *const reserved_words[] = {"or",       "and",         "not",       "in",
                                             "contains", "starts_with", "ends_with", "matches"};

/* ---- tokens ---- */

bool parser_advance(cond_parser *p) {
    p->prev = p->tok;
    p->has_prev = true;
    return cond_lex(p->text, p->len, p->tok.start + p->tok.len, &p->tok, p->err);
}

static bool parser_peek(cond_parser *p, cond_token *next) {
    return cond_lex(p->text, p->len, p->tok.start + p->tok.len, next, p->err);
}

bool token_is(const cond_parser *p, const cond_token *tok, const char *word) {
    size_t n = strlen(word);
    return tok->kind == TOK_WORD && tok->len == n && memcmp(p->text + tok->start, word, n) == 0;
}

static bool is_reserved(const cond_parser *p, const cond_token *tok) {
    for (size_t i = 0; i < sizeof reserved_words / sizeof reserved_words[0]; i++)
        if (token_is(p, tok, reserved_words[i])) return true;
    return false;
}

/* The token as it reads in a message: 'text' (shortened) or "the end". */
const char *token_text(const cond_parser *p, const cond_token *tok, char *buf, size_t cap) {
    if (tok->kind == TOK_END) return "the end";
    int n = tok->len > 24 ? 24 : (int)tok->len;
    snprintf(buf, cap, "'%.*s%s'", n, p->text + tok->start, tok->len > 24 ? "..." : "");
    return buf;
}

int32_t parser_fail(cond_parser *p, size_t pos, const char *fmt, ...) {
    char message[sizeof p->err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    cond_error_at(p->err, BSP_ETYPE, p->text, p->len, pos, "%s", message);
    return -1;
}

/* ---- nodes ---- */

int32_t node_new(cond_parser *p, cond_kind kind, size_t pos) {
    bsp_cond *c = p->cond;
    if (c->count >= COND_MAX_NODES) {
        cond_error_at(p->err, BSP_ETOOBIG, p->text, p->len, pos,
                      "the condition has more than %d parts", COND_MAX_NODES);
        return -1;
    }
    if (c->count == c->cap) {
        int32_t cap = c->cap ? c->cap * 2 : 16;
        cond_node *nodes = realloc(c->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes) {
            bsp_error_set(p->err, BSP_ENOMEM, "", "out of memory");
            return -1;
        }
        c->nodes = nodes;
        c->cap = cap;
    }
    cond_node *node = &c->nodes[c->count];
    memset(node, 0, sizeof *node);
    node->kind = (uint8_t)kind;
    node->first = node->next = -1;
    return c->count++;
}

/* Appends child after *last (or as parent's first child when *last < 0). */
static void node_link(cond_parser *p, int32_t parent, int32_t *last, int32_t child) {
    if (*last < 0)
        p->cond->nodes[parent].first = child;
    else
        p->cond->nodes[*last].next = child;
    *last = child;
}

static bool enter(cond_parser *p) {
    if (++p->depth <= COND_MAX_DEPTH) return true;
    cond_error_at(p->err, BSP_ETOOBIG, p->text, p->len, p->tok.start,
                  "nesting is deeper than %d levels", COND_MAX_DEPTH);
    return false;
}

/* ---- expressions ---- */

static int32_t parse_or(cond_parser *p);

/* A chain of operands joined by one keyword ("and" / "or"), as one node. */
static int32_t parse_chain(cond_parser *p, const char *keyword, cond_kind kind,
                           int32_t (*operand)(cond_parser *)) {
    size_t start = p->tok.start;
    int32_t left = operand(p);
    if (left < 0 || !token_is(p, &p->tok, keyword)) return left;
    int32_t chain = node_new(p, kind, start), last = -1;
    if (chain < 0) return -1;
    node_link(p, chain, &last, left);
    while (token_is(p, &p->tok, keyword)) {
        if (!parser_advance(p)) return -1;
        int32_t right = operand(p);
        if (right < 0) return -1;
        node_link(p, chain, &last, right);
    }
    return chain;
}

static int32_t parse_compare(cond_parser *p);

static int32_t parse_unary(cond_parser *p) {
    if (!token_is(p, &p->tok, "not")) return parse_compare(p);
    size_t start = p->tok.start;
    if (!enter(p) || !parser_advance(p)) return -1;
    int32_t operand = parse_unary(p);
    if (operand < 0) return -1;
    p->depth--;
    int32_t node = node_new(p, N_NOT, start);
    if (node >= 0) p->cond->nodes[node].first = operand;
    return node;
}

static int32_t parse_and(cond_parser *p) {
    return parse_chain(p, "and", N_AND, parse_unary);
}

static int32_t parse_or(cond_parser *p) {
    return parse_chain(p, "or", N_OR, parse_and);
}

/* The operator at the current token: its cond_op and how many tokens it
 * takes (2 for "not in"), or 0 if there is none. */
static int read_operator(cond_parser *p, cond_op *op) {
    static const struct {
        cond_tok_kind kind;
        const char *word;
        cond_op op;
    } ops[] = {
        {TOK_EQ, NULL, OP_EQ},
        {TOK_NE, NULL, OP_NE},
        {TOK_LT, NULL, OP_LT},
        {TOK_LE, NULL, OP_LE},
        {TOK_GT, NULL, OP_GT},
        {TOK_GE, NULL, OP_GE},
        {TOK_WORD, "in", OP_IN},
        {TOK_WORD, "contains", OP_CONTAINS},
        {TOK_WORD, "starts_with", OP_STARTS_WITH},
        {TOK_WORD, "ends_with", OP_ENDS_WITH},
        {TOK_WORD, "matches", OP_MATCHES},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        bool hit = ops[i].word ? token_is(p, &p->tok, ops[i].word) : p->tok.kind == ops[i].kind;
        if (hit) {
            *op = ops[i].op;
            return 1;
        }
    }
    if (!token_is(p, &p->tok, "not")) return 0;
    cond_token next;
    if (!parser_peek(p, &next)) return -1;
    if (!token_is(p, &next, "in")) {
        char buf[40];
        parser_fail(p, next.start, "expected 'in' after 'not', not %s",
                    token_text(p, &next, buf, sizeof buf));
        return -1;
    }
    *op = OP_NOT_IN;
    return 2;
}

static int32_t parse_compare(cond_parser *p) {
    size_t start = p->tok.start;
    int32_t left = parse_value(p);
    if (left < 0) return -1;
    cond_op op = OP_EQ;
    int ntokens = read_operator(p, &op);
    if (ntokens <= 0) return ntokens < 0 ? -1 : left;
    size_t op_start = p->tok.start;
    for (int i = 0; i < ntokens; i++)
        if (!parser_advance(p)) return -1;
    size_t right_start = p->tok.start;
    int32_t right = parse_value(p);
    if (right < 0) return -1;
    int32_t node = node_new(p, N_COMPARE, op_start);
    if (node < 0) return -1;
    cond_node *cmp = &p->cond->nodes[node];
    cmp->op = (uint8_t)op;
    cmp->first = left;
    p->cond->nodes[left].next = right;
    if (!check_compare(p, node, start, op_start, right_start)) return -1;
    return node;
}

/* ---- values ---- */

static int32_t parse_string(cond_parser *p) {
    int32_t index = node_new(p, N_STRING, p->tok.start);
    if (index < 0) return -1;
    cond_node *node = &p->cond->nodes[index];
    node->str = malloc(p->tok.value_len + 1);
    if (!node->str) {
        bsp_error_set(p->err, BSP_ENOMEM, "", "out of memory");
        return -1;
    }
    cond_decode_string(p->text, &p->tok, node->str);
    node->str[p->tok.value_len] = '\0';
    node->len = p->tok.value_len;
    node->hash = bsp_hash64(node->str, node->len);
    return parser_advance(p) ? index : -1;
}

static int32_t parse_literal(cond_parser *p, cond_kind kind) {
    int32_t index = node_new(p, kind, p->tok.start);
    if (index < 0) return -1;
    p->cond->nodes[index].num = p->tok.num;
    return parser_advance(p) ? index : -1;
}

static int32_t parse_list(cond_parser *p) {
    int32_t list = node_new(p, N_LIST, p->tok.start), last = -1;
    if (list < 0 || !enter(p) || !parser_advance(p)) return -1;
    while (p->tok.kind != TOK_RBRACKET) {
        int32_t item = parse_value(p);
        if (item < 0) return -1;
        node_link(p, list, &last, item);
        if (p->tok.kind == TOK_RBRACKET) break;
        if (p->tok.kind != TOK_COMMA) {
            char buf[40];
            return parser_fail(p, p->tok.start, "expected ',' or ']' in the list, not %s",
                               token_text(p, &p->tok, buf, sizeof buf));
        }
        if (!parser_advance(p)) return -1;
        if (p->tok.kind == TOK_RBRACKET) return parse_value(p); /* "expected a value" */
    }
    p->depth--;
    return parser_advance(p) ? list : -1;
}

static int32_t parse_group(cond_parser *p) {
    if (!enter(p) || !parser_advance(p)) return -1;
    int32_t inner = parse_or(p);
    if (inner < 0) return -1;
    if (p->tok.kind != TOK_RPAREN) {
        char buf[40];
        return parser_fail(p, p->tok.start, "expected ')', not %s",
                           token_text(p, &p->tok, buf, sizeof buf));
    }
    p->depth--;
    return parser_advance(p) ? inner : -1;
}

static int32_t expected_value(cond_parser *p) {
    char buf[40];
    if (!p->has_prev && p->tok.kind == TOK_END)
        return parser_fail(p, p->tok.start, "the condition is empty");
    if (!p->has_prev)
        return parser_fail(p, p->tok.start, "expected a value, not %s",
                           token_text(p, &p->tok, buf, sizeof buf));
    return parser_fail(p, p->tok.start, "expected a value after %s",
                       token_text(p, &p->prev, buf, sizeof buf));
}

static int32_t parse_word(cond_parser *p) {
    if (token_is(p, &p->tok, "true")) return parse_literal(p, N_TRUE);
    if (token_is(p, &p->tok, "false")) return parse_literal(p, N_FALSE);
    if (token_is(p, &p->tok, "null")) return parse_literal(p, N_NULL);
    if (is_reserved(p, &p->tok)) return expected_value(p);
    cond_token next;
    if (!parser_peek(p, &next)) return -1;
    if (next.kind == TOK_LPAREN) return parse_call(p);
    return parse_path(p);
}

int32_t parse_value(cond_parser *p) {
    bool window_allowed = p->window_next;
    p->window_next = false;
    switch (p->tok.kind) {
    case TOK_NUMBER:
        return parse_literal(p, N_NUMBER);
    case TOK_STRING:
        return parse_string(p);
    case TOK_DURATION:
        if (!window_allowed)
            return parser_fail(p, p->tok.start,
                               "a duration such as 7d can only be the window of did(), "
                               "count() or sum()");
        return parse_literal(p, N_DURATION);
    case TOK_LBRACKET:
        return parse_list(p);
    case TOK_LPAREN:
        return parse_group(p);
    case TOK_WORD:
        return parse_word(p);
    default:
        return expected_value(p);
    }
}

int32_t parse_expr(cond_parser *p) {
    return parse_or(p);
}

/* ---- compile, free, introspection ---- */

static void node_free(cond_node *node) {
    free(node->str);
    free((void *)node->segs);
    if (node->re) {
        regfree(node->re);
        free(node->re);
    }
}

void cond_free(bsp_cond *c) {
    if (!c) return;
    for (int32_t i = 0; i < c->count; i++)
        node_free(&c->nodes[i]);
    free(c->nodes);
    free((void *)c->events);
    free((void *)c->segments);
    free(c);
}

/* Adds name to a list of distinct names (room for every node is reserved). */
static void add_distinct(const char **names, size_t *count, const char *name) {
    for (size_t i = 0; i < *count; i++)
        if (strcmp(names[i], name) == 0) return;
    names[(*count)++] = name;
}

static unsigned call_inputs(cond_fn fn) {
    switch (fn) {
    case FN_DID:
    case FN_COUNT:
    case FN_SUM:
        return COND_USES_EVENTS | COND_USES_TIME;
    case FN_IN_SEGMENT:
        return COND_USES_SEGMENTS;
    case FN_DAYS_SINCE:
    case FN_HOURS_SINCE:
    case FN_NOW:
        return COND_USES_TIME;
    default:
        return 0;
    }
}

static unsigned path_inputs(cond_root root) {
    static const unsigned bits[] = {COND_USES_TRAITS,    COND_USES_COMPUTED, COND_USES_RFM,
                                    COND_USES_PREDICTED, COND_USES_CONTEXT,  0};
    return bits[root];
}

/* Fills inputs, events and segments from the finished node array. */
static bsp_err collect_inputs(bsp_cond *c, bsp_error *err) {
    c->events = calloc((size_t)c->count, sizeof *c->events);
    c->segments = calloc((size_t)c->count, sizeof *c->segments);
    if (!c->events || !c->segments) return bsp_error_set(err, BSP_ENOMEM, "", "out of memory");
    for (int32_t i = 0; i < c->count; i++) {
        const cond_node *node = &c->nodes[i];
        if (node->kind == N_PATH) c->inputs |= path_inputs((cond_root)node->op);
        if (node->kind == N_PATH && node->op == ROOT_COMPUTED)
            c->computed |= node->nsegs ? profile_computed_bit(node->segs[0]) : PROFILE_C_ALL;
        if (node->kind != N_CALL) continue;
        c->inputs |= call_inputs((cond_fn)node->op);
        const char *first_arg = node->first >= 0 ? c->nodes[node->first].str : NULL;
        if (node->op == FN_IN_SEGMENT)
            add_distinct(c->segments, &c->nsegments, first_arg);
        else if (call_inputs((cond_fn)node->op) & COND_USES_EVENTS)
            add_distinct(c->events, &c->nevents, first_arg);
    }
    return BSP_OK;
}

static bsp_err parse_all(cond_parser *p) {
    if (!cond_lex(p->text, p->len, 0, &p->tok, p->err)) return p->err->code;
    p->cond->root = parse_expr(p);
    if (p->cond->root < 0) return p->err->code;
    if (p->tok.kind != TOK_END) {
        char buf[40];
        parser_fail(p, p->tok.start, "unexpected %s: expected 'and', 'or' or the end",
                    token_text(p, &p->tok, buf, sizeof buf));
        return p->err->code;
    }
    return collect_inputs(p->cond, p->err);
}

bsp_err cond_compile(const char *text, size_t len, bsp_cond **out, bsp_error *err) {
    *out = NULL;
    bsp_error_clear(err);
    if (len > COND_MAX_TEXT)
        return bsp_error_set(err, BSP_ETOOBIG, "", "the condition is longer than %d bytes",
                             COND_MAX_TEXT);
    bsp_cond *c = calloc(1, sizeof *c);
    if (!c) return bsp_error_set(err, BSP_ENOMEM, "", "out of memory");
    cond_parser p = {.text = text ? text : "", .len = len, .cond = c, .err = err};
    bsp_err rc = parse_all(&p);
    if (rc != BSP_OK) {
        if (err->code == BSP_OK) err->code = rc;
        cond_free(c);
        return rc;
    }
    *out = c;
    return BSP_OK;
}

unsigned cond_inputs(const bsp_cond *c) {
    return c ? c->inputs : 0;
}

uint32_t cond_computed_reads(const bsp_cond *c) {
    return c ? c->computed : 0;
}

static size_t copy_names(const char **from, size_t count, const char **to, size_t max) {
    for (size_t i = 0; i < count && i < max; i++)
        to[i] = from[i];
    return count;
}

size_t cond_event_names(const bsp_cond *c, const char **names, size_t max) {
    return c ? copy_names(c->events, c->nevents, names, max) : 0;
}

size_t cond_segment_refs(const bsp_cond *c, const char **ids, size_t max) {
    return c ? copy_names(c->segments, c->nsegments, ids, max) : 0;
}
