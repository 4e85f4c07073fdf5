/* testutil.h - small helpers the unit suites share (after cmocka.h). */
#ifndef BSP_TESTUTIL_H
#define BSP_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A string of n copies of c; the caller frees it. */
static inline char *repeat(char c, size_t n) {
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* fmt with its one %s replaced by arg; the caller frees it. */
static inline char *format_body(const char *fmt, const char *arg) {
    size_t cap = strlen(fmt) + strlen(arg) + 1;
    char *body = malloc(cap);
    assert_non_null(body);
    snprintf(body, cap, fmt, arg);
    return body;
}

#endif
