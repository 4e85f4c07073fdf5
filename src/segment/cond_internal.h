/* cond_internal.h - what the condition lexer, parser and evaluator share:
 * tokens, the compiled node array and the names of operators, functions
 * and roots. Private to src/segment/. */
#ifndef BSP_COND_INTERNAL_H
#define BSP_COND_INTERNAL_H

#include <regex.h>

#include "segment/segment.h"

/* ---- tokens (cond_lex.c) ---- */

typedef enum cond_tok_kind {
    TOK_END,
    TOK_WORD,     /* identifier or keyword */
    TOK_NUMBER,   /* num holds the value */
    TOK_DURATION, /* num holds milliseconds */
    TOK_STRING,   /* value_len is the decoded length */
    TOK_LPAREN,
    TOK_RPAREN,
    TOK_LBRACKET,
    TOK_RBRACKET,
    TOK_COMMA,
    TOK_DOT,
    TOK_EQ,
    TOK_NE,
    TOK_LT,
    TOK_LE,
    TOK_GT,
    TOK_GE,
} cond_tok_kind;

typedef struct cond_token {
    cond_tok_kind kind;
    size_t start; /* byte offset in the text */
    size_t len;   /* bytes of source text */
    double num;
    size_t value_len;
} cond_token;

/* Reads the token at or after byte pos (skipping blanks and comments). On a
 * lexical error fills err (BSP_ETYPE with the position) and returns false. */
bool cond_lex(const char *text, size_t len, size_t pos, cond_token *tok, bsp_error *err);

/* Writes the decoded bytes of a TOK_STRING (tok->value_len of them) to out. */
void cond_decode_string(const char *text, const cond_token *tok, char *out);

/* Sets err to code with at = "line L, column C" of byte offset pos. */
bsp_err cond_error_at(bsp_error *err, bsp_err code, const char *text, size_t len, size_t pos,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* ---- the compiled tree (cond_parse.c builds it, cond_eval.c reads it) ---- */

typedef enum cond_kind {
    N_NUMBER,
    N_STRING,
    N_TRUE,
    N_FALSE,
    N_NULL,
    N_DURATION,
    N_LIST, /* elements are the children */
    N_PATH,
    N_CALL, /* op is a cond_fn; arguments are the children */
    N_NOT,
    N_AND,
    N_OR,
    N_COMPARE, /* op is a cond_op; children are left, right */
} cond_kind;

typedef enum cond_op {
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_IN,
    OP_NOT_IN,
    OP_CONTAINS,
    OP_STARTS_WITH,
    OP_ENDS_WITH,
    OP_MATCHES,
} cond_op;

typedef enum cond_fn {
    FN_DID,
    FN_COUNT,
    FN_SUM,
    FN_IN_SEGMENT,
    FN_DAYS_SINCE,
    FN_HOURS_SINCE,
    FN_NOW,
    FN_LOWER,
    FN_LENGTH,
} cond_fn;

typedef enum cond_root {
    ROOT_TRAITS,
    ROOT_COMPUTED,
    ROOT_RFM,
    ROOT_PREDICTED,
    ROOT_CONTEXT,
    ROOT_PROPERTIES,
} cond_root;

/* Root names indexed by cond_root. */
extern const char *const cond_root_names[];

typedef struct cond_node {
    uint8_t kind;      /* cond_kind */
    uint8_t op;        /* cond_op, cond_fn or cond_root (paths) */
    uint16_t nsegs;    /* path: segments after the root */
    int32_t first;     /* first child, or -1 */
    int32_t next;      /* next sibling, or -1 */
    double num;        /* number; duration in milliseconds */
    char *str;         /* string literal (NUL-terminated); owned */
    size_t len;        /* bytes of str */
    uint64_t hash;     /* string: bsp_hash64 of str; path: of its first segment */
    const char **segs; /* path: nsegs names after the root, into str; owned */
    regex_t *re;       /* compare with matches: the compiled pattern; owned */
} cond_node;

struct bsp_cond {
    cond_node *nodes;
    int32_t count;
    int32_t cap;
    int32_t root;
    unsigned inputs;
    uint32_t computed;   /* PROFILE_C_* of the computed.* paths it reads */
    const char **events; /* distinct event names, into nodes' strings */
    size_t nevents;
    const char **segments; /* distinct in_segment ids */
    size_t nsegments;
};

#endif
