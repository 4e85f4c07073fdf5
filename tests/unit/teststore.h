/* teststore.h - what the suites that run on a real store share (after
 * cmocka.h): a temporary directory made and removed, and a batch body
 * parsed and submitted to ingest, waiting for its commit. */
#ifndef BSP_TESTSTORE_H
#define BSP_TESTSTORE_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event/event.h"
#include "ingest/ingest.h"

/* A fresh directory /tmp/bsp-<name>-XXXXXX into dir. */
static inline void test_temp_dir(char dir[64], const char *name) {
    snprintf(dir, 64, "/tmp/bsp-%s-XXXXXX", name);
    assert_non_null(mkdtemp(dir));
}

static inline int test_remove_entry(const char *path, const struct stat *sb, int flag,
                                    struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes dir and everything below it. */
static inline void test_temp_dir_remove(const char *dir) {
    assert_int_equal(nftw(dir, test_remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* Parses a batch body ({"batch":[...]}) and submits its events, waiting
 * for the commit; a body that does not parse fails the test. */
static inline bsp_ingest_result test_send_batch(bsp_ingest *ing, const char *batch) {
    bsp_event_list list = {0};
    bsp_error err;
    bsp_error_clear(&err);
    if (event_parse_body(batch, strlen(batch), BSP_EV_TYPE_COUNT, bsp_now_ms(), &list, &err))
        fail_msg("parse: %s at %s", err.message, err.at);
    bsp_ingest_result res = {0};
    assert_int_equal(ingest_submit_wait(ing, list.items, list.count, &res), BSP_OK);
    event_list_free(&list); /* lent only until the commit */
    return res;
}

#endif
