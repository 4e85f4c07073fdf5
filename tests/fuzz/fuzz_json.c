/* fuzz_json.c - libFuzzer target for json/parse.c: every input is parsed
 * by json_parse and by the reference it replaced (the nesting bound measured
 * on the text, then cJSON_ParseWithLengthOpts, then only whitespace after
 * the value). Both accept or both refuse; what both accept is the same tree,
 * node for node (types, names, strings, the bits of every number), and
 * writes the same text. The input is parsed again inside an arena, and the
 * tree is deleted member by member there, as the event parser does. Parsed
 * a third time with spans, every span json_span_text gives is strict JSON
 * that reads back as its node. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "../unit/strict_json.h"

static cJSON *reference_parse(const char *text, size_t len, int max_depth) {
    if (json_text_depth(text, len) > max_depth) return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root) return NULL;
    for (size_t off = (size_t)(end - text); off < len; off++) {
        char c = text[off];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t' && c != '\0') {
            cJSON_Delete(root);
            return NULL;
        }
    }
    return root;
}

static bool same_string(const char *a, const char *b) {
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

static bool same_tree(const cJSON *a, const cJSON *b) {
    for (; a && b; a = a->next, b = b->next) {
        if ((a->type & 0xFF) != (b->type & 0xFF) || !same_string(a->string, b->string) ||
            !same_string(a->valuestring, b->valuestring) || a->valueint != b->valueint ||
            memcmp(&a->valuedouble, &b->valuedouble, sizeof a->valuedouble) != 0)
            return false;
        if (a->child && a->child->prev != cJSON_GetArrayItem(a, cJSON_GetArraySize(a) - 1))
            return false; /* the first child's prev is the last child */
        if (!same_tree(a->child, b->child)) return false;
    }
    return a == NULL && b == NULL;
}

/* a and b as values: same_tree without their names and next siblings. */
static bool same_value(const cJSON *a, const cJSON *b) {
    cJSON x = *a, y = *b;
    x.next = y.next = NULL;
    x.string = y.string = NULL;
    return same_tree(&x, &y);
}

static void check_spans(const cJSON *node, const json_spans *spans) {
    for (; node; node = node->next) {
        const char *text;
        size_t len;
        if (json_span_text(spans, node, &text, &len)) {
            if (!json_is_strict(text, len)) abort();
            cJSON *again = json_parse(text, len, BSP_JSON_MAX_DEPTH, NULL);
            if (!again || !same_value(again, node)) abort();
            cJSON_Delete(again);
        }
        check_spans(node->child, spans);
    }
}

static void compare(const char *text, size_t len, int max_depth) {
    bsp_error err;
    cJSON *mine = json_parse(text, len, max_depth, &err);
    cJSON *ref = reference_parse(text, len, max_depth);
    if (!mine != !ref) abort();
    if (!mine && err.code != BSP_EPARSE && err.code != BSP_ETOOBIG) abort();
    if (mine && !same_tree(mine, ref)) abort();
    if (mine) {
        bsp_buf x = {0}, y = {0};
        if (json_write(&x, mine) != BSP_OK || json_write(&y, ref) != BSP_OK) abort();
        if (x.len != y.len || memcmp(x.data, y.data, x.len) != 0) abort();
        bsp_buf_free(&x);
        bsp_buf_free(&y);
    }
    cJSON_Delete(mine);
    cJSON_Delete(ref);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    compare(text, size, BSP_JSON_MAX_DEPTH);
    compare(text, size, 3);
    json_arena *arena = json_arena_new(0);
    if (!arena) return 0;
    json_arena *outer = json_arena_enter(arena);
    cJSON *tree = json_parse(text, size, BSP_JSON_MAX_DEPTH, NULL);
    while (tree && tree->child)
        cJSON_Delete(cJSON_DetachItemViaPointer(tree, tree->child));
    cJSON_Delete(tree);
    json_arena_leave(outer);
    json_arena_free(arena);
    json_spans *spans = json_spans_new(size / 64);
    if (!spans) return 0;
    tree = json_parse_spans(text, size, BSP_JSON_MAX_DEPTH, spans, NULL);
    check_spans(tree, spans);
    cJSON_Delete(tree);
    json_spans_free(spans);
    return 0;
}
