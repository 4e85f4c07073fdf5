/* fuzz_event.c - libFuzzer target for event/: every input is parsed as a
 * /v1/batch body and as a /v1/track body, and every event produced is
 * checked against the invariants the rest of Bespoke relies on (ids inside
 * the normalized json, text within the size limit, no writeKey stored, the
 * text strict JSON with the value json_write prints of the tree, whatever
 * of it was copied from the body).
 * Each event then goes through catalog/'s product learning and merging, as
 * it does on the write path. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "event/event.h"
#include "json/json.h"
#include "../unit/strict_json.h"

/* Merges each learnt product into the previous one, as ingest does. */
static void merge_learnt(void *ctx, cJSON *product) {
    cJSON **stored = ctx;
    if (!cJSON_GetObjectItemCaseSensitive(product, "id")) abort();
    cJSON *merged = catalog_merge_learnt(*stored, product);
    cJSON_Delete(product);
    if (!merged) abort();
    cJSON_Delete(*stored);
    *stored = merged;
}

/* The stored text means what printing the event's tree would. */
static void check_text(const bsp_event *ev) {
    if (!json_is_strict(ev->text, ev->text_len)) abort();
    bsp_buf printed = {0};
    if (json_write(&printed, ev->json) != BSP_OK) abort();
    cJSON *stored = json_parse(ev->text, ev->text_len, BSP_JSON_MAX_DEPTH, NULL);
    cJSON *reprinted = json_parse(printed.data, printed.len, BSP_JSON_MAX_DEPTH, NULL);
    if (!stored || !reprinted) abort();
    bsp_buf a = {0}, b = {0};
    if (json_write(&a, stored) != BSP_OK || json_write(&b, reprinted) != BSP_OK) abort();
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) abort();
    bsp_buf_free(&a);
    bsp_buf_free(&b);
    bsp_buf_free(&printed);
    cJSON_Delete(stored);
    cJSON_Delete(reprinted);
}

static void check_list(const bsp_event_list *list, bsp_err rc) {
    if (rc != BSP_OK && list->count != 0) abort();
    if (strlen(list->write_key) >= sizeof list->write_key) abort();
    for (size_t i = 0; i < list->count; i++) {
        const bsp_event *ev = &list->items[i];
        if (!ev->json || !ev->text || strlen(ev->text) != ev->text_len) abort();
        if (ev->text_len > BSP_EVENT_MAX_BYTES) abort();
        if (!ev->message_id || (!ev->user_id && !ev->anonymous_id)) abort();
        if (cJSON_GetObjectItemCaseSensitive(ev->json, "writeKey")) abort();
        check_text(ev);
        cJSON *stored = NULL;
        catalog_learn_from_event(ev, merge_learnt, &stored);
        cJSON_Delete(stored);
    }
    for (size_t i = 0; i < list->reject_count; i++)
        if (list->rejects[i].error.code == BSP_OK) abort();
}

static void parse_as(const uint8_t *data, size_t size, bsp_event_type route) {
    bsp_event_list list;
    bsp_error err;
    bsp_err rc = event_parse_body((const char *)data, size, route, 1700000000000LL, &list, &err);
    if (rc != BSP_OK && err.code != rc) abort();
    check_list(&list, rc);
    event_list_free(&list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    parse_as(data, size, BSP_EV_TYPE_COUNT);
    parse_as(data, size, BSP_EV_TRACK);
    return 0;
}
