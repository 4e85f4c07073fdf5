/* cond_check.h - the parser state shared by cond_parse.c (expressions,
 * values, compile) and cond_check.c (paths, calls and the compile-time
 * type rules). Private to src/segment/. */
#ifndef BSP_COND_CHECK_H
#define BSP_COND_CHECK_H

#include <stdarg.h>
#include <stdio.h>

#include "segment/cond_internal.h"

typedef struct cond_parser {
    const char *text;
    size_t len;
    cond_token tok;  /* the current token */
    cond_token prev; /* the last token consumed, for messages */
    bool has_prev;
    bsp_cond *cond;
    bsp_error *err;
    int depth;
    bool window_next; /* the next value may be a duration (an event window) */
    int in_filter;    /* > 0 inside an event function's filter or property */
} cond_parser;

/* cond_parse.c */
bool parser_advance(cond_parser *p);
bool token_is(const cond_parser *p, const cond_token *tok, const char *word);
const char *token_text(const cond_parser *p, const cond_token *tok, char *buf, size_t cap);
int32_t parser_fail(cond_parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int32_t node_new(cond_parser *p, cond_kind kind, size_t pos);
int32_t parse_value(cond_parser *p);
int32_t parse_expr(cond_parser *p);

/* cond_check.c */
int32_t parse_path(cond_parser *p);
int32_t parse_call(cond_parser *p);
/* Type rules of a comparison node (compiling its regular expression);
 * false (err set) if it is refused. The positions are where its left
 * operand, operator and right operand start. */
bool check_compare(cond_parser *p, int32_t node, size_t left_pos, size_t op_pos, size_t right_pos);

#endif
