/* token.c - the signed tokens of decisions: what was shown (campaign,
 * placement, variant) to whom and when, signed with HMAC-SHA256 (OpenSSL)
 * under a key made once and kept in the store's meta, so that impression
 * and click reports cannot be forged. Text form:
 *   v1.<base64url(payload JSON)>.<base64url(32-byte MAC)>  (no padding) */
#include "decide/decide.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "json/json.h"

#define KEY_META "decide_token_key"
#define PAYLOAD_MAX 320

/* --- the key ------------------------------------------------------------------------------ */

static bool key_from_hex(const bsp_slice *hex, uint8_t key[DECIDE_TOKEN_KEY_BYTES]) {
    if (hex->len != 2 * DECIDE_TOKEN_KEY_BYTES) return false;
    for (size_t i = 0; i < DECIDE_TOKEN_KEY_BYTES; i++) {
        unsigned byte;
        char two[3] = {hex->data[2 * i], hex->data[2 * i + 1], 0};
        if (sscanf(two, "%2x", &byte) != 1) return false;
        key[i] = (uint8_t)byte;
    }
    return true;
}

static bsp_err key_load(bsp_store *st, uint8_t key[DECIDE_TOKEN_KEY_BYTES], bool *found) {
    bsp_txn *txn = NULL;
    bsp_err rc = store_txn_begin(st, false, &txn);
    if (rc != BSP_OK) return rc;
    bsp_slice hex;
    rc = store_meta_get(txn, KEY_META, &hex);
    *found = rc == BSP_OK;
    if (rc == BSP_OK && !key_from_hex(&hex, key)) rc = BSP_EINTERNAL;
    store_txn_abort(txn);
    return rc == BSP_ENOTFOUND ? BSP_OK : rc;
}

bsp_err decide_token_key(bsp_store *st, uint8_t key[DECIDE_TOKEN_KEY_BYTES]) {
    bool found = false;
    bsp_err rc = key_load(st, key, &found);
    if (rc != BSP_OK || found) return rc;
    char hex[2 * DECIDE_TOKEN_KEY_BYTES + 1];
    rc = bsp_random_hex(hex, DECIDE_TOKEN_KEY_BYTES);
    bsp_txn *txn = NULL;
    if (rc == BSP_OK) rc = store_txn_begin(st, true, &txn);
    if (rc == BSP_OK) rc = store_meta_put(txn, KEY_META, hex, strlen(hex));
    if (rc == BSP_OK)
        rc = store_txn_commit(txn);
    else if (txn)
        store_txn_abort(txn);
    bsp_slice s = {hex, strlen(hex)};
    if (rc == BSP_OK && !key_from_hex(&s, key)) rc = BSP_EINTERNAL;
    explicit_bzero(hex, sizeof hex);
    return rc;
}

/* --- base64url ----------------------------------------------------------------------------- */

/* Appends base64url of data (no padding) at out; returns its length. */
static size_t b64url_encode(const uint8_t *data, size_t len, char *out) {
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    for (int i = 0; i < n; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    out[n] = '\0';
    return (size_t)n;
}

/* Decodes len chars of base64url into out (cap bytes); -1 if malformed. */
static long b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap) {
    char buf[DECIDE_TOKEN_MAX + 4];
    if (len % 4 == 1 || len + 3 > sizeof buf - 1 || (len + 3) / 4 * 3 > cap) return -1;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return -1;
        buf[i] = c;
    }
    size_t pad = (4 - len % 4) % 4;
    memset(buf + len, '=', pad);
    int n = EVP_DecodeBlock(out, (const unsigned char *)buf, (int)(len + pad));
    return n < 0 ? -1 : n - (long)pad;
}

/* --- sign and verify ---------------------------------------------------------------------------
 */

static void mac(const uint8_t *key, const char *data, size_t len, uint8_t out[32]) {
    unsigned int out_len = 32;
    HMAC(EVP_sha256(), key, DECIDE_TOKEN_KEY_BYTES, (const unsigned char *)data, len, out,
         &out_len);
}

bsp_err decide_token_sign(const uint8_t key[DECIDE_TOKEN_KEY_BYTES], const decide_token *tok,
                          char *out, size_t cap) {
    char payload[PAYLOAD_MAX];
    int plen = snprintf(payload, sizeof payload,
                        "{\"c\":\"%s\",\"p\":\"%s\",\"v\":\"%s\","
                        "\"pid\":%llu,\"t\":%lld}",
                        tok->campaign, tok->placement, tok->variant, (unsigned long long)tok->pid,
                        (long long)tok->t_ms);
    if (plen < 0 || (size_t)plen >= sizeof payload) return BSP_ETOOBIG;
    size_t need = 3 + ((size_t)plen + 2) / 3 * 4 + 1 + 44 + 1;
    if (cap < need) return BSP_ETOOBIG;
    memcpy(out, "v1.", 3);
    size_t used = 3 + b64url_encode((const uint8_t *)payload, (size_t)plen, out + 3);
    uint8_t sig[32];
    mac(key, out, used, sig); /* the MAC covers "v1.<payload>" */
    out[used++] = '.';
    b64url_encode(sig, sizeof sig, out + used);
    return BSP_OK;
}

static bsp_err forged(bsp_error *err, const char *why) {
    return bsp_error_set(err, BSP_EFORBIDDEN, "token", "%s", why);
}

/* Fills tok from the payload's JSON; false if a field is missing or odd. */
static bool payload_fields(const char *json, size_t len, decide_token *tok) {
    cJSON *p = cJSON_ParseWithLength(json, len);
    const char *c = json_get_string(p, "c"), *pl = json_get_string(p, "p");
    const char *v = json_get_string(p, "v");
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(p, "pid");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "t");
    bool ok = c && pl && v && cJSON_IsNumber(pid) && cJSON_IsNumber(t) && campaign_id_valid(c) &&
              campaign_id_valid(pl) && (!strcmp(v, "treatment") || !strcmp(v, "control"));
    if (ok) {
        snprintf(tok->campaign, sizeof tok->campaign, "%s", c);
        snprintf(tok->placement, sizeof tok->placement, "%s", pl);
        snprintf(tok->variant, sizeof tok->variant, "%s", v);
        tok->pid = pid->valuedouble > 0 ? (uint64_t)pid->valuedouble : 0;
        tok->t_ms = (int64_t)t->valuedouble;
    }
    cJSON_Delete(p);
    return ok;
}

bsp_err decide_token_verify(const uint8_t key[DECIDE_TOKEN_KEY_BYTES], const char *token,
                            int64_t now_ms, decide_token *out, bsp_error *err) {
    size_t len = strlen(token);
    if (len > DECIDE_TOKEN_MAX || strncmp(token, "v1.", 3) != 0)
        return forged(err, "not a decision token");
    const char *dot = memchr(token + 3, '.', len - 3);
    if (!dot) return forged(err, "not a decision token");
    size_t signed_len = (size_t)(dot - token);
    uint8_t given[40], want[32], payload[PAYLOAD_MAX];
    long glen = b64url_decode(dot + 1, len - signed_len - 1, given, sizeof given);
    if (glen != 32) return forged(err, "not a decision token");
    mac(key, token, signed_len, want);
    if (CRYPTO_memcmp(given, want, sizeof want) != 0)
        return forged(err, "the token's signature does not match");
    long plen = b64url_decode(token + 3, signed_len - 3, payload, sizeof payload);
    if (plen <= 0 || !payload_fields((const char *)payload, (size_t)plen, out))
        return forged(err, "the token's payload is not readable");
    if (out->t_ms > now_ms + 300000 || now_ms - out->t_ms > DECIDE_TOKEN_TTL_MS)
        return forged(err, "the token has expired");
    return BSP_OK;
}
