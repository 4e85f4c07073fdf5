/* token.c - the signed tokens of decisions: what was shown (campaign,
 * placement, variant) to whom and when, signed with HMAC-SHA256 (OpenSSL)
 * under a key made once and kept in the store's meta, so that impression
 * and click reports cannot be forged. Text form:
 *   v1.<base64url(payload JSON)>.<base64url(32-byte MAC)>  (no padding) */
#include "decide/decide.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
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

/* HMAC-SHA256 (RFC 2104) over OpenSSL's SHA-256, with the digest fetched
 * once: the one-shot HMAC() looks the algorithm up in OpenSSL's provider
 * registry on every call, behind locks that the HTTP threads then fight
 * over (a fifth of a decision's time was spent there). */
static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

/* Per thread: the digest states after the key's inner and outer pads (so a
 * MAC costs the message's blocks and one more, not two pad blocks more),
 * for the last key used, and a working context; freed when the thread ends. */
typedef struct mac_state {
    uint8_t key[DECIDE_TOKEN_KEY_BYTES];
    bool ready;
    EVP_MD_CTX *inner, *outer, *work;
} mac_state;

static pthread_key_t mac_key;

static void mac_state_free(void *arg) {
    mac_state *m = arg;
    EVP_MD_CTX_free(m->inner);
    EVP_MD_CTX_free(m->outer);
    EVP_MD_CTX_free(m->work);
    explicit_bzero(m, sizeof *m);
    free(m);
}

static void sha256_fetch(void) {
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    pthread_key_create(&mac_key, mac_state_free);
}

static bool pad_state(EVP_MD_CTX *ctx, const uint8_t *key, uint8_t fill) {
    uint8_t pad[64];
    memset(pad, fill, sizeof pad);
    for (size_t i = 0; i < DECIDE_TOKEN_KEY_BYTES; i++)
        pad[i] ^= key[i];
    bool ok = EVP_DigestInit_ex(ctx, sha256, NULL) && EVP_DigestUpdate(ctx, pad, sizeof pad);
    explicit_bzero(pad, sizeof pad);
    return ok;
}

/* The thread's state, keyed for key; NULL on failure. */
static mac_state *mac_state_for(const uint8_t *key) {
    pthread_once(&sha256_once, sha256_fetch);
    if (!sha256) return NULL;
    mac_state *m = pthread_getspecific(mac_key);
    if (!m) {
        m = calloc(1, sizeof *m);
        if (!m) return NULL;
        m->inner = EVP_MD_CTX_new();
        m->outer = EVP_MD_CTX_new();
        m->work = EVP_MD_CTX_new();
        if (!m->inner || !m->outer || !m->work || pthread_setspecific(mac_key, m) != 0) {
            mac_state_free(m);
            return NULL;
        }
    }
    if (m->ready && memcmp(m->key, key, DECIDE_TOKEN_KEY_BYTES) == 0) return m;
    m->ready = pad_state(m->inner, key, 0x36) && pad_state(m->outer, key, 0x5c);
    memcpy(m->key, key, DECIDE_TOKEN_KEY_BYTES);
    return m->ready ? m : NULL;
}

static void mac(const uint8_t *key, const char *data, size_t len, uint8_t out[32]) {
    mac_state *m = mac_state_for(key);
    uint8_t inner[32];
    unsigned int n = 32;
    bool ok = m && EVP_MD_CTX_copy_ex(m->work, m->inner) && EVP_DigestUpdate(m->work, data, len) &&
              EVP_DigestFinal_ex(m->work, inner, &n) && EVP_MD_CTX_copy_ex(m->work, m->outer) &&
              EVP_DigestUpdate(m->work, inner, sizeof inner) &&
              EVP_DigestFinal_ex(m->work, out, &n);
    if (!ok) memset(out, 0, 32); /* verification then fails: never a valid MAC */
}

/* Appends s at *at within cap; false when it does not fit. */
static bool put(char *out, size_t cap, size_t *at, const char *s) {
    size_t n = strlen(s);
    if (*at + n >= cap) return false;
    memcpy(out + *at, s, n);
    *at += n;
    return true;
}

static bool put_u64(char *out, size_t cap, size_t *at, uint64_t v) {
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    char text[24];
    for (size_t i = 0; i < n; i++)
        text[i] = digits[n - 1 - i];
    text[n] = '\0';
    return put(out, cap, at, text);
}

/* {"c":..,"p":..,"v":..,"pid":N,"t":N} without printf (ids are
 * [A-Za-z0-9_.:-] and variants plain words: nothing to escape). Returns the
 * length, or -1 when it does not fit. */
static int payload_write(const decide_token *tok, char *out, size_t cap) {
    size_t at = 0;
    bool ok = put(out, cap, &at, "{\"c\":\"") && put(out, cap, &at, tok->campaign) &&
              put(out, cap, &at, "\",\"p\":\"") && put(out, cap, &at, tok->placement) &&
              put(out, cap, &at, "\",\"v\":\"") && put(out, cap, &at, tok->variant) &&
              put(out, cap, &at, "\",\"pid\":") && put_u64(out, cap, &at, tok->pid) &&
              put(out, cap, &at, ",\"t\":") && (tok->t_ms >= 0 || put(out, cap, &at, "-")) &&
              put_u64(out, cap, &at, tok->t_ms >= 0 ? (uint64_t)tok->t_ms : (uint64_t)-tok->t_ms) &&
              put(out, cap, &at, "}");
    if (!ok) return -1;
    out[at] = '\0';
    return (int)at;
}

bsp_err decide_token_sign(const uint8_t key[DECIDE_TOKEN_KEY_BYTES], const decide_token *tok,
                          char *out, size_t cap) {
    char payload[PAYLOAD_MAX];
    int plen = payload_write(tok, payload, sizeof payload);
    if (plen < 0) return BSP_ETOOBIG;
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
