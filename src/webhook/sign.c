/* sign.c - the webhook signature: HMAC-SHA256 (OpenSSL's EVP_MAC) of
 * "<t>.<body>" under the endpoint's secret, sent as "t=<t>,v1=<hex>", and
 * its check as a receiver would do it (constant-time comparison, bounded
 * clock skew). Kept apart from delivery so that tests and receivers can use
 * it without a delivery thread. */
#include "webhook/webhook.h"

#include <inttypes.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHA256_LEN 32

static EVP_MAC *hmac_alg;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void hmac_fetch(void) {
    hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

/* HMAC-SHA256 over the two parts a, b. */
static bsp_err hmac_sha256(const char *key, const void *a, size_t alen, const void *b, size_t blen,
                           unsigned char out[SHA256_LEN]) {
    pthread_once(&hmac_once, hmac_fetch);
    if (!hmac_alg) return BSP_EINTERNAL;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(hmac_alg);
    if (!ctx) return BSP_ENOMEM;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    size_t outlen = 0;
    int ok = EVP_MAC_init(ctx, (const unsigned char *)key, strlen(key), params) &&
             EVP_MAC_update(ctx, a, alen) && EVP_MAC_update(ctx, b, blen) &&
             EVP_MAC_final(ctx, out, &outlen, SHA256_LEN);
    EVP_MAC_CTX_free(ctx);
    return ok && outlen == SHA256_LEN ? BSP_OK : BSP_EINTERNAL;
}

static void to_hex(const unsigned char *in, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static bsp_err mac_hex(const char *secret, int64_t t, const char *body, size_t len,
                       char hex[2 * SHA256_LEN + 1]) {
    char prefix[32];
    int plen = snprintf(prefix, sizeof prefix, "%" PRId64 ".", t);
    unsigned char mac[SHA256_LEN];
    bsp_err rc = hmac_sha256(secret, prefix, (size_t)plen, body, len, mac);
    if (rc == BSP_OK) to_hex(mac, SHA256_LEN, hex);
    return rc;
}

bsp_err webhook_sign(const char *secret, int64_t t, const char *body, size_t len,
                     char out[WEBHOOK_SIGNATURE_MAX]) {
    if (!secret || (!body && len)) return BSP_EINVAL;
    char hex[2 * SHA256_LEN + 1];
    bsp_err rc = mac_hex(secret, t, body ? body : "", len, hex);
    if (rc == BSP_OK) snprintf(out, WEBHOOK_SIGNATURE_MAX, "t=%" PRId64 ",v1=%s", t, hex);
    return rc;
}

/* Reads "t=<digits>,v1=<64 hex>" exactly. */
static bool parse_header(const char *header, int64_t *t, const char **v1) {
    if (strncmp(header, "t=", 2) != 0) return false;
    const char *p = header + 2;
    int64_t v = 0;
    size_t digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 18; p++, digits++)
        v = v * 10 + (*p - '0');
    if (digits == 0 || strncmp(p, ",v1=", 4) != 0) return false;
    p += 4;
    if (strlen(p) != 2 * SHA256_LEN) return false;
    *t = v;
    *v1 = p;
    return true;
}

bool webhook_verify(const char *secret, const char *header, const char *body, size_t len,
                    int64_t now_s, int64_t tolerance_s) {
    int64_t t;
    const char *given;
    if (!secret || !header || !parse_header(header, &t, &given)) return false;
    if (t > now_s + tolerance_s || t < now_s - tolerance_s) return false;
    char want[2 * SHA256_LEN + 1];
    if (mac_hex(secret, t, body ? body : "", len, want) != BSP_OK) return false;
    return CRYPTO_memcmp(want, given, 2 * SHA256_LEN) == 0;
}
