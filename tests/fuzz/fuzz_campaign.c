/* fuzz_campaign.c - libFuzzer target for the parsers of campaigns and
 * decisions: campaign and placement validation (admin API bodies), the
 * /v1/decide body, the /v1/events report and decision tokens. Each result
 * must obey its contract: an object out exactly on success, ids that are
 * valid ids, at most DECIDE_PLACEMENTS_MAX distinct placements. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "campaign/campaign.h"
#include "decide/decide.h"
#include "json/json.h"

static const uint8_t KEY[DECIDE_TOKEN_KEY_BYTES] = {7};

static void fuzz_admin(const char *text, size_t size) {
    bsp_error err;
    cJSON *body = json_parse(text, size, BSP_JSON_MAX_DEPTH, &err);
    if (!body) return;
    cJSON *out = NULL;
    bsp_err rc = campaign_from_json(body, size % 2 ? "path_id" : NULL, 0, &out, &err);
    if ((rc == BSP_OK) != (out != NULL)) abort();
    if (out && !campaign_id_valid(json_get_string(out, "id"))) abort();
    if (out && !campaign_id_valid(json_get_string(out, "placement"))) abort();
    cJSON_Delete(out);
    out = NULL;
    rc = placement_from_json(body, size % 3 ? NULL : "p", 0, &out, &err);
    if ((rc == BSP_OK) != (out != NULL)) abort();
    cJSON_Delete(out);
    cJSON_Delete(body);
}

static void fuzz_decide(const char *text, size_t size) {
    decide_request req;
    bsp_error err;
    if (decide_request_parse(text, size, &req, &err) == BSP_OK) {
        if (req.placement_count > DECIDE_PLACEMENTS_MAX) abort();
        for (size_t i = 0; i < req.placement_count; i++)
            if (!campaign_id_valid(req.placements[i])) abort();
    }
    decide_request_free(&req);
    bsp_event ev;
    char key[BSP_WRITE_KEY_MAX_BYTES + 1];
    if (decide_event_parse(KEY, text, size, 0, &ev, key, &err) == BSP_OK &&
        strncmp(ev.name, "Promotion ", 10) != 0)
        abort();
    event_free(&ev);
}

static void fuzz_token(const char *text) {
    decide_token tok;
    bsp_error err;
    if (decide_token_verify(KEY, text, 0, &tok, &err) == BSP_OK && !campaign_id_valid(tok.campaign))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    fuzz_admin(text, size);
    fuzz_decide(text, size);
    fuzz_token(text);
    free(text);
    return 0;
}
