/* util.c - growable buffers, hashing, randomness and option lookup. */
#include "core/core.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <xxhash.h>

void *bsp_grow(void *items, size_t *cap, size_t len, size_t size, size_t first) {
    if (len < *cap) return items;
    size_t n = *cap ? *cap * 2 : first ? first : 1;
    if (n < *cap || n > SIZE_MAX / (size ? size : 1)) return NULL;
    void *grown = realloc(items, n * size);
    if (grown) *cap = n;
    return grown;
}

bsp_err bsp_buf_reserve(bsp_buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return BSP_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data) return BSP_ENOMEM;
    b->data = data;
    b->cap = cap;
    return BSP_OK;
}

/* The out-of-line part of bsp_buf_append (core.h): grows, then copies. */
bsp_err bsp_buf_append_grow(bsp_buf *b, const void *data, size_t len) {
    if (bsp_buf_reserve(b, len) != BSP_OK) return BSP_ENOMEM;
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return BSP_OK;
}

bsp_err bsp_buf_puts(bsp_buf *b, const char *s) {
    return bsp_buf_append(b, s, strlen(s));
}

bsp_err bsp_buf_printf(bsp_buf *b, const char *fmt, ...) {
    /* Format straight into the free space; only when it does not fit,
     * grow and format again (one pass in the common case). */
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0) return BSP_EINVAL;
    if ((size_t)n >= room) {
        if (bsp_buf_reserve(b, (size_t)n) != BSP_OK) {
            if (b->data) b->data[b->len] = '\0';
            return BSP_ENOMEM;
        }
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
    return BSP_OK;
}

void bsp_buf_reset(bsp_buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

void bsp_buf_free(bsp_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

uint64_t bsp_hash64(const void *data, size_t len) {
    return XXH3_64bits(data, len);
}

void bsp_hash128(const void *data, size_t len, uint8_t out[16]) {
    XXH128_hash_t h = XXH3_128bits(data, len);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    memcpy(out, c.digest, 16);
}

bsp_err bsp_random_hex(char *out, size_t nbytes) {
    unsigned char raw[64];
    if (nbytes > sizeof raw) return BSP_EINVAL;
    size_t got = 0;
    while (got < nbytes) {
        ssize_t n = getrandom(raw + got, nbytes - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return BSP_EIO;
        }
        got += (size_t)n;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * nbytes] = '\0';
    return BSP_OK;
}

/* splitmix64: a full-period 64-bit generator; two of them, seeded from the
 * kernel per thread, give 128 bits an id. */
static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void bsp_unique_hex(char out[33]) {
    static _Thread_local uint64_t state[2];
    static _Thread_local bool seeded;
    if (!seeded) {
        size_t got = 0;
        while (got < sizeof state) {
            ssize_t n = getrandom((char *)state + got, sizeof state - got, 0);
            if (n < 0 && errno != EINTR) {
                state[0] ^= bsp_mono_ns(); /* no kernel randomness: time and address */
                state[1] ^= (uint64_t)(uintptr_t)&state ^ (uint64_t)bsp_now_ms();
                break;
            }
            if (n > 0) got += (size_t)n;
        }
        seeded = true;
    }
    static const char hex[] = "0123456789abcdef";
    uint64_t parts[2] = {splitmix64(&state[0]), splitmix64(&state[1])};
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < 16; i++)
            out[p * 16 + i] = hex[(parts[p] >> (60 - 4 * i)) & 15];
    out[32] = '\0';
}

const char *bsp_opt(const char *flag_value, const char *env_name, const char *dflt) {
    if (flag_value) return flag_value;
    const char *env = env_name ? getenv(env_name) : NULL;
    if (env && *env) return env;
    return dflt;
}

bool bsp_parse_size(const char *s, uint64_t *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) return false;
    uint64_t mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1000, end++;
    else if (*end == 'm' || *end == 'M')
        mul = 1000000, end++;
    else if (*end == 'g' || *end == 'G')
        mul = 1000000000, end++;
    if (*end) return false;
    *out = (uint64_t)v * mul;
    return true;
}
