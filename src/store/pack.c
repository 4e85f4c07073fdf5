/* pack.c - packed event values: an event's JSON compressed with zstd and a
 * dictionary trained on the store's own events.
 *
 * Why: the event log is most of what a store writes (about 600 of the 1,000
 * bytes an event costs on disk), and events of one shop repeat the same
 * keys, user agents and URLs. With a dictionary of their common parts a
 * simulated event packs from about 580 bytes to 75, so the log takes a
 * seventh of the pages to write, copy and sync; zstd unpacks at over a
 * gigabyte a second, so readers barely notice.
 *
 * Format: a packed value is PACK_MAGIC followed by one zstd frame made with
 * the store's dictionary, with its content size and checksum. A value that
 * does not start with PACK_MAGIC is the event's JSON itself (it starts with
 * '{'), so events written before the dictionary existed stay as they are
 * and are read as before.
 *
 * Contexts: packing and unpacking need a zstd context each. They are kept
 * one a thread (pthread keys, freed when the thread ends), since HTTP
 * threads pack and every reading thread unpacks. */
#include "store/store_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zdict.h>
#include <zstd.h>

#define PACK_MAGIC 0x01
#define PACK_LEVEL 1                    /* zstd level: the fastest */
#define PACK_UNPACKED_MAX (1024 * 1024) /* an event unpacks to at most this */

struct store_packer {
    ZSTD_CDict *cdict;
    ZSTD_DDict *ddict;
};

static pthread_key_t cctx_key, dctx_key;
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;

static void cctx_destroy(void *c) {
    ZSTD_freeCCtx(c);
}

static void dctx_destroy(void *d) {
    ZSTD_freeDCtx(d);
}

static void keys_make(void) {
    pthread_key_create(&cctx_key, cctx_destroy);
    pthread_key_create(&dctx_key, dctx_destroy);
}

/* A frame carries a checksum of its content (4 bytes), so a damaged value
 * is an error when read, not a different event. */
static ZSTD_CCtx *thread_cctx(void) {
    pthread_once(&keys_once, keys_make);
    ZSTD_CCtx *c = pthread_getspecific(cctx_key);
    if (c) return c;
    c = ZSTD_createCCtx();
    if (c && (ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1)) ||
              pthread_setspecific(cctx_key, c) != 0)) {
        ZSTD_freeCCtx(c);
        c = NULL;
    }
    return c;
}

static ZSTD_DCtx *thread_dctx(void) {
    pthread_once(&keys_once, keys_make);
    ZSTD_DCtx *d = pthread_getspecific(dctx_key);
    if (!d && (d = ZSTD_createDCtx()) && pthread_setspecific(dctx_key, d) != 0) {
        ZSTD_freeDCtx(d);
        d = NULL;
    }
    return d;
}

store_packer *packer_new(const void *dict, size_t len) {
    if (!dict || len == 0) return NULL;
    store_packer *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->cdict = ZSTD_createCDict(dict, len, PACK_LEVEL);
    p->ddict = ZSTD_createDDict(dict, len);
    if (!p->cdict || !p->ddict) {
        packer_free(p);
        return NULL;
    }
    return p;
}

void packer_free(store_packer *p) {
    if (!p) return;
    ZSTD_freeCDict(p->cdict);
    ZSTD_freeDDict(p->ddict);
    free(p);
}

bool packer_is_packed(const void *val, size_t len) {
    return len > 0 && *(const unsigned char *)val == PACK_MAGIC;
}

bsp_err packer_pack(const store_packer *p, const char *json, size_t len, char **out,
                    size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    if (len == 0 || len > PACK_UNPACKED_MAX) return BSP_EINVAL;
    ZSTD_CCtx *c = thread_cctx();
    if (!c) return BSP_ENOMEM;
    size_t cap = 1 + ZSTD_compressBound(len);
    char *buf = malloc(cap);
    if (!buf) return BSP_ENOMEM;
    buf[0] = PACK_MAGIC;
    size_t n = ZSTD_CCtx_refCDict(c, p->cdict);
    if (!ZSTD_isError(n)) n = ZSTD_compress2(c, buf + 1, cap - 1, json, len);
    if (ZSTD_isError(n)) {
        free(buf);
        return BSP_EINVAL;
    }
    *out = buf;
    *out_len = 1 + n;
    return BSP_OK;
}

bsp_err packer_unpack(const store_packer *p, const void *val, size_t len, bsp_buf *scratch,
                      bsp_slice *out) {
    if (!packer_is_packed(val, len) || len < 2) return BSP_ESTORE;
    const char *frame = (const char *)val + 1;
    unsigned long long size = ZSTD_getFrameContentSize(frame, len - 1);
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
        size > PACK_UNPACKED_MAX)
        return BSP_ESTORE;
    ZSTD_DCtx *d = thread_dctx();
    if (!d) return BSP_ENOMEM;
    scratch->len = 0;
    if (bsp_buf_reserve(scratch, (size_t)size + 1) != BSP_OK) return BSP_ENOMEM;
    size_t n = ZSTD_decompress_usingDDict(d, scratch->data, (size_t)size, frame, len - 1, p->ddict);
    if (ZSTD_isError(n) || n != size) return BSP_ESTORE;
    scratch->len = n;
    scratch->data[n] = '\0';
    *out = (bsp_slice){scratch->data, n};
    return BSP_OK;
}

bsp_err packer_train(const void *samples, const size_t *sizes, unsigned count, size_t capacity,
                     void **dict, size_t *dict_len) {
    *dict = NULL;
    *dict_len = 0;
    void *buf = malloc(capacity);
    if (!buf) return BSP_ENOMEM;
    size_t n = ZDICT_trainFromBuffer(buf, capacity, samples, sizes, count);
    if (ZDICT_isError(n)) {
        free(buf);
        return BSP_EINVAL; /* too few or too uniform samples: try again later */
    }
    *dict = buf;
    *dict_len = n;
    return BSP_OK;
}
