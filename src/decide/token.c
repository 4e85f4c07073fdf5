/* token.c - the signed tokens of decisions: what was shown (campaign,
 * placement, variant) to whom and when, signed with HMAC-SHA256 under a key
 * made once and kept in the store's meta, so that impression and click
 * reports cannot be forged. Text form (no base64 padding):
 *   v2.<base64url(payload)>.<base64url(first 16 bytes of the MAC)>
 * payload: byte 2 (the version), variant (0 treatment, 1 control), profile
 * id and time in ms as 8 bytes big-endian each, then the campaign and the
 * placement id, each a length byte and its bytes. The MAC covers the
 * payload's bytes; a payload of ids up to 36 bytes in all is one SHA-256
 * block, so a token costs two compressions (a decision signs one a
 * placement). Tokens of the first form, v1.<base64url(JSON)>.<full MAC of
 * "v1.<base64url(JSON)>">, made by earlier versions, are still accepted
 * until they expire. */
/* The low-level SHA-256 context is a plain struct: a keyed pad state is
 * copied by assignment, where EVP's context copies cost more than the
 * hashing itself. Deprecated since OpenSSL 3.0, still supported. */
#define OPENSSL_API_COMPAT 10101
#include "decide/decide.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

#define KEY_META "decide_token_key"
#define PAYLOAD_MAX 320 /* v1: bytes of the payload JSON */
#define TOKEN2_PAYLOAD_MAX (2 + 8 + 8 + 2 * (1 + CAMPAIGN_ID_MAX))
#define TOKEN2_MAC_BYTES 16 /* the MAC truncated to 128 bits (RFC 2104, section 5) */

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

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Writes base64url of data (no padding) and a NUL at out; returns its
 * length. */
static size_t b64url_encode(const uint8_t *data, size_t len, char *out) {
    size_t n = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        out[n++] = B64URL[v >> 18];
        out[n++] = B64URL[(v >> 12) & 63];
        out[n++] = B64URL[(v >> 6) & 63];
        out[n++] = B64URL[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0);
        out[n++] = B64URL[v >> 18];
        out[n++] = B64URL[(v >> 12) & 63];
        if (i + 1 < len) out[n++] = B64URL[(v >> 6) & 63];
    }
    out[n] = '\0';
    return n;
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
    if (n < 0) return -1;
    n -= (int)pad;
    /* Only the canonical text: unused low bits of the last character must
     * be zero, so one token has one spelling. */
    char again[DECIDE_TOKEN_MAX + 4];
    if (b64url_encode(out, (size_t)n, again) != len || memcmp(again, in, len) != 0) return -1;
    return n;
}

/* --- sign and verify ---------------------------------------------------------------------------
 */

/* HMAC-SHA256 (RFC 2104): per thread, the SHA-256 states after the key's
 * inner and outer pads, for the last key used, so a MAC costs the
 * message's blocks and one more. */
typedef struct mac_state {
    uint8_t key[DECIDE_TOKEN_KEY_BYTES];
    bool ready;
    SHA256_CTX inner, outer;
} mac_state;

static _Thread_local mac_state thread_mac;

static void pad_state(SHA256_CTX *ctx, const uint8_t *key, uint8_t fill) {
    uint8_t pad[64];
    memset(pad, fill, sizeof pad);
    for (size_t i = 0; i < DECIDE_TOKEN_KEY_BYTES; i++)
        pad[i] ^= key[i];
    SHA256_Init(ctx);
    SHA256_Update(ctx, pad, sizeof pad);
    explicit_bzero(pad, sizeof pad);
}

static void mac(const uint8_t *key, const void *data, size_t len, uint8_t out[32]) {
    mac_state *m = &thread_mac;
    if (!m->ready || memcmp(m->key, key, DECIDE_TOKEN_KEY_BYTES) != 0) {
        pad_state(&m->inner, key, 0x36);
        pad_state(&m->outer, key, 0x5c);
        memcpy(m->key, key, DECIDE_TOKEN_KEY_BYTES);
        m->ready = true;
    }
    SHA256_CTX work = m->inner;
    uint8_t inner[32];
    SHA256_Update(&work, data, len);
    SHA256_Final(inner, &work);
    work = m->outer;
    SHA256_Update(&work, inner, sizeof inner);
    SHA256_Final(out, &work);
    explicit_bzero(&work, sizeof work);
}

static size_t put_be64(uint8_t *at, uint64_t v) {
    for (int i = 7; i >= 0; i--, v >>= 8)
        at[i] = (uint8_t)v;
    return 8;
}

static uint64_t get_be64(const uint8_t *at) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | at[i];
    return v;
}

/* The v2 payload of tok at out; its length, or 0 when an id is too long. */
static size_t payload2_write(const decide_token *tok, uint8_t out[TOKEN2_PAYLOAD_MAX]) {
    size_t clen = strlen(tok->campaign), plen = strlen(tok->placement);
    if (clen > CAMPAIGN_ID_MAX || plen > CAMPAIGN_ID_MAX) return 0;
    size_t at = 0;
    out[at++] = 2;
    out[at++] = strcmp(tok->variant, "control") == 0 ? 1 : 0;
    at += put_be64(out + at, tok->pid);
    at += put_be64(out + at, (uint64_t)tok->t_ms);
    out[at++] = (uint8_t)clen;
    memcpy(out + at, tok->campaign, clen);
    at += clen;
    out[at++] = (uint8_t)plen;
    memcpy(out + at, tok->placement, plen);
    return at + plen;
}

bsp_err decide_token_sign(const uint8_t key[DECIDE_TOKEN_KEY_BYTES], const decide_token *tok,
                          char *out, size_t cap) {
    uint8_t payload[TOKEN2_PAYLOAD_MAX];
    size_t plen = payload2_write(tok, payload);
    if (!plen) return BSP_ETOOBIG;
    size_t need = 3 + (plen + 2) / 3 * 4 + 1 + (TOKEN2_MAC_BYTES + 2) / 3 * 4 + 1;
    if (cap < need) return BSP_ETOOBIG;
    memcpy(out, "v2.", 3);
    size_t used = 3 + b64url_encode(payload, plen, out + 3);
    uint8_t sig[32];
    mac(key, payload, plen, sig);
    out[used++] = '.';
    b64url_encode(sig, TOKEN2_MAC_BYTES, out + used);
    explicit_bzero(sig, sizeof sig);
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
    const cJSON *pid = json_member(p, "pid");
    const cJSON *t = json_member(p, "t");
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

/* Fills tok from a v2 payload; false if its shape is wrong. */
static bool payload2_fields(const uint8_t *p, size_t len, decide_token *tok) {
    if (len < 20 || p[0] != 2 || p[1] > 1) return false;
    size_t clen = p[18];
    if (19 + clen + 1 > len) return false;
    size_t plen = p[19 + clen];
    if (19 + clen + 1 + plen != len || !clen || !plen || clen > CAMPAIGN_ID_MAX ||
        plen > CAMPAIGN_ID_MAX)
        return false;
    memcpy(tok->campaign, p + 19, clen);
    tok->campaign[clen] = '\0';
    memcpy(tok->placement, p + 20 + clen, plen);
    tok->placement[plen] = '\0';
    snprintf(tok->variant, sizeof tok->variant, "%s", p[1] ? "control" : "treatment");
    tok->pid = get_be64(p + 2);
    tok->t_ms = (int64_t)get_be64(p + 10);
    return campaign_id_valid(tok->campaign) && campaign_id_valid(tok->placement);
}

/* v2: the MAC covers the decoded payload. */
static bsp_err verify_v2(const uint8_t *key, const char *token, size_t len, decide_token *out,
                         bsp_error *err) {
    const char *dot = memchr(token + 3, '.', len - 3);
    if (!dot) return forged(err, "not a decision token");
    size_t text_len = (size_t)(dot - token) - 3;
    uint8_t given[24], want[32], payload[TOKEN2_PAYLOAD_MAX + 3];
    long glen = b64url_decode(dot + 1, len - text_len - 4, given, sizeof given);
    long plen = b64url_decode(token + 3, text_len, payload, sizeof payload);
    if (glen != TOKEN2_MAC_BYTES || plen <= 0) return forged(err, "not a decision token");
    mac(key, payload, (size_t)plen, want);
    bool same = CRYPTO_memcmp(given, want, TOKEN2_MAC_BYTES) == 0;
    explicit_bzero(want, sizeof want);
    if (!same) return forged(err, "the token's signature does not match");
    if (!payload2_fields(payload, (size_t)plen, out))
        return forged(err, "the token's payload is not readable");
    return BSP_OK;
}

/* v1: the MAC covers "v1.<base64url(payload JSON)>". */
static bsp_err verify_v1(const uint8_t *key, const char *token, size_t len, decide_token *out,
                         bsp_error *err) {
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
    return BSP_OK;
}

bsp_err decide_token_verify(const uint8_t key[DECIDE_TOKEN_KEY_BYTES], const char *token,
                            int64_t now_ms, decide_token *out, bsp_error *err) {
    size_t len = strlen(token);
    bsp_err rc;
    if (len > DECIDE_TOKEN_MAX || len < 3)
        rc = forged(err, "not a decision token");
    else if (strncmp(token, "v2.", 3) == 0)
        rc = verify_v2(key, token, len, out, err);
    else if (strncmp(token, "v1.", 3) == 0)
        rc = verify_v1(key, token, len, out, err);
    else
        rc = forged(err, "not a decision token");
    if (rc != BSP_OK) return rc;
    if (out->t_ms > now_ms + 300000 || now_ms - out->t_ms > DECIDE_TOKEN_TTL_MS)
        return forged(err, "the token has expired");
    return BSP_OK;
}
