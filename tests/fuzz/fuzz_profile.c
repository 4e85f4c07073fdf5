/* fuzz_profile.c - libFuzzer target for the profile's storage form: every
 * input is read by the scanner (scan.c), by the cJSON tree reader and by
 * profile_from_json. The scanner either declines or reads exactly what the
 * tree reader reads; profile_from_json answers as the tree reader; what is
 * read writes again and reads back the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "profile/profile.h"

static void same_or_abort(const bsp_profile *a, const bsp_profile *b) {
    bsp_buf x = {0}, y = {0};
    if (profile_to_json(a, &x) != BSP_OK || profile_to_json(b, &y) != BSP_OK) abort();
    if (x.len != y.len || memcmp(x.data, y.data, x.len) != 0) abort();
    cJSON *pa = profile_public_json(a), *pb = profile_public_json(b);
    bsp_buf_reset(&x);
    bsp_buf_reset(&y);
    if (!pa || !pb || json_write(&x, pa) != BSP_OK || json_write(&y, pb) != BSP_OK) abort();
    if (x.len != y.len || memcmp(x.data, y.data, x.len) != 0) abort();
    cJSON_Delete(pa);
    cJSON_Delete(pb);
    bsp_buf_free(&x);
    bsp_buf_free(&y);
}

/* What was read writes again, and that reads back the same. */
static void round_trip(const bsp_profile *p) {
    bsp_buf text = {0};
    if (profile_to_json(p, &text) != BSP_OK) abort();
    bsp_profile *again = NULL;
    if (profile_from_json(text.data, text.len, &again) != BSP_OK) abort();
    same_or_abort(p, again);
    profile_free(again);
    bsp_buf_free(&text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    bsp_profile *tree = NULL, *scanned = NULL, *both = NULL;
    bsp_err rc_tree = profile_from_json_tree(text, size, &tree);
    bool read = profile_scan_json(text, size, &scanned);
    bsp_err rc = profile_from_json(text, size, &both);
    if (rc != rc_tree || (read && rc_tree != BSP_OK)) abort();
    if ((rc == BSP_OK) != (both != NULL) || (rc_tree == BSP_OK) != (tree != NULL)) abort();
    if (read != (scanned != NULL)) abort();
    if (read) same_or_abort(tree, scanned);
    if (rc == BSP_OK) {
        same_or_abort(tree, both);
        round_trip(both);
    }
    profile_free(tree);
    profile_free(scanned);
    profile_free(both);
    return 0;
}
