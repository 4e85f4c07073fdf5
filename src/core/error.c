/* error.c - names and HTTP statuses of the error enum, and error details. */
#include "core/core.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int status;
} err_table[BSP_ERR_COUNT] = {
    [BSP_OK] = {"ok", 200},
    [BSP_EINVAL] = {"bad_request", 400},
    [BSP_EPARSE] = {"bad_json", 400},
    [BSP_EAUTH] = {"unauthorized", 401},
    [BSP_EFORBIDDEN] = {"forbidden", 403},
    [BSP_ENOTFOUND] = {"not_found", 404},
    [BSP_EMETHOD] = {"method_not_allowed", 405},
    [BSP_EEXISTS] = {"conflict", 409},
    [BSP_ETOOBIG] = {"too_large", 413},
    [BSP_EMEDIA] = {"unsupported_media", 415},
    [BSP_ETYPE] = {"invalid_field", 422},
    [BSP_EBUSY] = {"busy", 429},
    [BSP_ENOMEM] = {"out_of_memory", 503},
    [BSP_ESTORE] = {"store_failed", 503},
    [BSP_EUNAVAIL] = {"unavailable", 503},
    [BSP_EIO] = {"io_error", 500},
    [BSP_EINTERNAL] = {"internal", 500},
};

const char *bsp_err_name(bsp_err e) {
    if ((int)e < 0 || e >= BSP_ERR_COUNT) return "internal";
    return err_table[e].name;
}

int bsp_err_http_status(bsp_err e) {
    if ((int)e < 0 || e >= BSP_ERR_COUNT) return 500;
    return err_table[e].status;
}

void bsp_error_clear(bsp_error *e) {
    if (!e) return;
    e->code = BSP_OK;
    e->message[0] = '\0';
    e->at[0] = '\0';
}

bsp_err bsp_error_set(bsp_error *e, bsp_err code, const char *at, const char *fmt, ...) {
    if (!e) return code;
    e->code = code;
    snprintf(e->at, sizeof e->at, "%s", at ? at : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return code;
}
