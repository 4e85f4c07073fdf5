/* fuzz_admin.c - libFuzzer target for the other parsers of outside input
 * behind the HTTP API: gzip/deflate bodies (api_body_inflate, with its
 * output limit) and products sent to the admin API (JSON parse with limits,
 * then catalog_product_from_json), whose results must obey their contracts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "catalog/catalog.h"
#include "json/json.h"

static void fuzz_inflate(const uint8_t *data, size_t size) {
    bsp_buf out = {0};
    bsp_error err;
    bsp_err rc = api_body_inflate((const char *)data, size, 64 * 1024, &out, &err);
    if (rc == BSP_OK && out.len > 64 * 1024) abort();
    if (rc != BSP_OK && rc != BSP_EINVAL && rc != BSP_ETOOBIG && rc != BSP_ENOMEM) abort();
    bsp_buf_free(&out);
}

static void fuzz_product(const uint8_t *data, size_t size) {
    bsp_error err;
    cJSON *body = json_parse((const char *)data, size, BSP_JSON_MAX_DEPTH, &err);
    if (!body) return;
    cJSON *product = NULL;
    bsp_err rc = catalog_product_from_json(body, size % 2 ? "p1" : NULL, 0, &product, &err);
    if (rc == BSP_OK) {
        const char *id = json_get_string(product, "id");
        if (!id || !*id) abort();
        if (size % 2 && strcmp(id, "p1") != 0) abort();
        cJSON_Delete(product);
    } else if (product) {
        abort();
    }
    cJSON_Delete(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_inflate(data, size);
    fuzz_product(data, size);
    return 0;
}
