/* pack.c - packed event values: an event's JSON compressed with LZ4 or
 * zstd and a dictionary trained on the store's own events.
 *
 * Why: the event log is most of what a store writes (about 600 of the 1,000
 * bytes an event costs on disk), and events of one shop repeat the same
 * keys, user agents and URLs. With a dictionary of their common parts a
 * simulated event packs from about 580 bytes to 75, so the log takes a
 * seventh of the pages to write, copy and sync; zstd unpacks at over a
 * gigabyte a second, so readers barely notice.
 *
 * Format: an event packed alone with zstd is PACK_MAGIC followed by one zstd
 * frame made with the store's dictionary, with its content size and
 * checksum; the other packed values are members of shared frames (below).
 * A value that starts with '{' is the event's JSON itself, so events written
 * before the dictionary existed stay as they are and are read as before.
 *
 * Shared frames: the events of one visitor in one request repeat each
 * other's ids, context and pages, and most of what a zstd frame costs is
 * starting it (its tables and its checksum), not its bytes. So several such
 * events go into one frame: about a third of the CPU an event and half the
 * bytes (0.95 against 2.6-3.0 us and 47 against 97 bytes for the
 * benchmark's events, 11 to a frame). Each stays an event of the log: the
 * first member stored holds the frame in its value (a head, then the
 * frame), each later one refers back to it by the distance of their seqs
 * and gives its place in the frame. Readers unpack the holder's frame and
 * take their member; the LMDB store keeps the last frame it unpacked for
 * the next member read.
 *
 * Codecs of a frame: new frames are LZ4 blocks with the same dictionary
 * (PACK_SHARED_LZ4): in the server they took about 0.75 us an event less than
 * zstd, a tenth of the HTTP threads' CPU, for 69 bytes an event instead
 * of 47. LZ4 keeps no checksum, so the frame carries 4 bytes of the
 * content's XXH3 itself. Frames written before (PACK_SHARED, zstd) are read
 * as they are. The magic of the holder says how its frame is packed. An
 * event alone is the holder of an LZ4 frame of one (1.0 against 2.0 us and
 * 119 against 97 bytes); with small_events it stays PACK_MAGIC and zstd.
 *
 * Contexts: packing and unpacking need a context each (zstd's, or a copy of
 * the LZ4 stream that has the dictionary loaded). They are kept one a
 * thread, since HTTP threads pack and every reading thread unpacks. */
#include "store/store_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <lz4.h>
#include <zdict.h>
#include <zstd.h>

#define PACK_MAGIC 0x01
#define PACK_SHARED 0x02                /* a member of a zstd frame several events share */
#define PACK_SHARED_LZ4 0x03            /* a member of an LZ4 frame several events share */
#define PACK_LZ4_SUM 4                  /* bytes of the content's XXH3 an LZ4 frame keeps */
#define PACK_LZ4_DICT_MAX (64 * 1024)   /* LZ4 reads back this far: a dictionary's end */
#define PACK_LEVEL 1                    /* zstd level: the fastest */
#define PACK_UNPACKED_MAX (1024 * 1024) /* an event or a frame unpacks to at most this */
#define PACK_VARINT_MAX 10

struct store_packer {
    ZSTD_CDict *cdict;
    ZSTD_DDict *ddict;
    char *dict; /* LZ4 reads the dictionary where it lies */
    int dict_len;
    LZ4_stream_t *lz4_dict; /* a stream with the dictionary loaded, copied to pack */
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
    size_t keep = len < PACK_LZ4_DICT_MAX ? len : PACK_LZ4_DICT_MAX;
    p->dict = malloc(keep);
    p->lz4_dict = LZ4_createStream();
    if (!p->cdict || !p->ddict || !p->dict || !p->lz4_dict) {
        packer_free(p);
        return NULL;
    }
    memcpy(p->dict, (const char *)dict + len - keep, keep);
    p->dict_len = (int)keep;
    LZ4_loadDict(p->lz4_dict, p->dict, p->dict_len);
    return p;
}

void packer_free(store_packer *p) {
    if (!p) return;
    ZSTD_freeCDict(p->cdict);
    ZSTD_freeDDict(p->ddict);
    LZ4_freeStream(p->lz4_dict);
    free(p->dict);
    free(p);
}

bool packer_is_shared(const void *val, size_t len) {
    return len > 0 && (*(const unsigned char *)val == PACK_SHARED ||
                       *(const unsigned char *)val == PACK_SHARED_LZ4);
}

bool packer_is_packed(const void *val, size_t len) {
    return packer_is_shared(val, len) || (len > 0 && *(const unsigned char *)val == PACK_MAGIC);
}

size_t store_varint_put(uint8_t *out, uint64_t v) {
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        out[n++] = b | (v ? 0x80 : 0);
    } while (v);
    return n;
}

size_t store_varint_get(const uint8_t *p, const uint8_t *end, uint64_t *v) {
    uint64_t x = 0;
    for (size_t i = 0; i < PACK_VARINT_MAX && p + i < end; i++) {
        x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *v = x;
            return i + 1;
        }
    }
    return 0;
}

/* The thread's LZ4 stream, reset to the dictionary of p: copying the
 * prepared stream is what LZ4 offers in place of loading the dictionary
 * (hashing all of it) for each frame. */
static LZ4_stream_t *thread_lz4(const store_packer *p) {
    static _Thread_local LZ4_stream_t stream;
    memcpy(&stream, p->lz4_dict, sizeof stream);
    return &stream;
}

/* The LZ4 frame of data[0, len): varint its length, PACK_LZ4_SUM bytes of its
 * XXH3 (little-endian), the LZ4 block, into out from out + room. */
static bsp_err lz4_frame(const store_packer *p, const char *data, size_t len, size_t room,
                         char **out, size_t *out_len) {
    int bound = LZ4_compressBound((int)len);
    size_t cap = room + PACK_VARINT_MAX + PACK_LZ4_SUM + (size_t)bound;
    char *buf = bound > 0 ? malloc(cap) : NULL;
    if (!buf) return bound > 0 ? BSP_ENOMEM : BSP_EINVAL;
    size_t at = room + store_varint_put((uint8_t *)buf + room, len);
    uint64_t sum = bsp_hash64(data, len);
    for (size_t i = 0; i < PACK_LZ4_SUM; i++)
        buf[at++] = (char)(sum >> (8 * i));
    int k = LZ4_compress_fast_continue(thread_lz4(p), data, buf + at, (int)len, bound, 1);
    if (k <= 0) {
        free(buf);
        return BSP_EINVAL;
    }
    *out = buf;
    *out_len = at + (size_t)k;
    return BSP_OK;
}

/* The zstd frame of data[0, len) (with its size and checksum), into out
 * from out + room. */
static bsp_err zstd_frame(const store_packer *p, const char *data, size_t len, size_t room,
                          char **out, size_t *out_len) {
    ZSTD_CCtx *c = thread_cctx();
    if (!c) return BSP_ENOMEM;
    size_t cap = room + ZSTD_compressBound(len);
    char *buf = malloc(cap);
    if (!buf) return BSP_ENOMEM;
    size_t k = ZSTD_CCtx_refCDict(c, p->cdict);
    if (!ZSTD_isError(k)) k = ZSTD_compress2(c, buf + room, cap - room, data, len);
    if (ZSTD_isError(k)) {
        free(buf);
        return BSP_EINVAL;
    }
    *out = buf;
    *out_len = room + k;
    return BSP_OK;
}

/* An event alone: with zstd (PACK_MAGIC, then the frame) when small, else
 * as the holder of an LZ4 frame of one (about half zstd's CPU here too). */
bsp_err packer_pack(const store_packer *p, bool small, const char *json, size_t len, char **out,
                    size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    if (len == 0 || len > PACK_UNPACKED_MAX) return BSP_EINVAL;
    if (!small) {
        char *frame;
        size_t frame_len;
        const char *val;
        size_t val_len;
        bsp_err rc = packer_pack_frame(p, false, &json, &len, 1, &frame, &frame_len);
        if (rc) return rc;
        packer_frame_value(frame, frame_len, 0, 0, NULL, &val, &val_len);
        memmove(frame, val, val_len);
        *out = frame;
        *out_len = val_len;
        return BSP_OK;
    }
    bsp_err rc = zstd_frame(p, json, len, 1, out, out_len);
    if (!rc) (*out)[0] = PACK_MAGIC;
    return rc;
}

/* --- shared frames ---------------------------------------------------------
 * A frame's content: varint n, n varints (each text's length), then the n
 * texts, each followed by a NUL (so that a text read from it is a C string
 * too). A member's value: PACK_SHARED_LZ4 (or PACK_SHARED), varint back (its
 * seq minus the holder's; 0 for the holder itself), varint index, and for
 * the holder the LZ4 frame (lz4_frame; or the zstd frame) of the content. */

/* The content of a frame of texts[0, n) into b. */
static bsp_err frame_content(const char *const *texts, const size_t *lens, size_t n, bsp_buf *b) {
    size_t total = PACK_VARINT_MAX * (n + 1);
    for (size_t i = 0; i < n; i++) {
        if (lens[i] > PACK_UNPACKED_MAX || total > PACK_UNPACKED_MAX) return BSP_EINVAL;
        total += lens[i] + 1;
    }
    if (total > PACK_UNPACKED_MAX) return BSP_EINVAL;
    b->len = 0;
    if (bsp_buf_reserve(b, total) != BSP_OK) return BSP_ENOMEM;
    uint8_t *at = (uint8_t *)b->data;
    at += store_varint_put(at, n);
    for (size_t i = 0; i < n; i++)
        at += store_varint_put(at, lens[i]);
    for (size_t i = 0; i < n; i++) {
        memcpy(at, texts[i], lens[i]);
        at += lens[i];
        *at++ = '\0';
    }
    b->len = (size_t)(at - (uint8_t *)b->data);
    return BSP_OK;
}

bsp_err packer_pack_frame(const store_packer *p, bool small, const char *const *texts,
                          const size_t *lens, size_t n, char **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    if (n == 0 || n > STORE_FRAME_EVENTS_MAX) return BSP_EINVAL;
    bsp_buf content = {0};
    bsp_err rc = frame_content(texts, lens, n, &content);
    if (!rc)
        rc = small ? zstd_frame(p, content.data, content.len, STORE_FRAME_ROOM, out, out_len)
                   : lz4_frame(p, content.data, content.len, STORE_FRAME_ROOM, out, out_len);
    bsp_buf_free(&content);
    if (rc) return rc;
    /* The codec, for packer_frame_value; never part of a value. */
    (*out)[0] = small ? PACK_SHARED : PACK_SHARED_LZ4;
    return BSP_OK;
}

void packer_frame_value(char *frame, size_t frame_len, uint64_t back, uint32_t index, char *ref,
                        const char **val, size_t *val_len) {
    uint8_t head[STORE_FRAME_ROOM];
    size_t n = 0;
    head[n++] = (uint8_t)frame[0];
    n += store_varint_put(head + n, back);
    n += store_varint_put(head + n, index);
    if (back) {
        memcpy(ref, head, n);
        *val = ref;
        *val_len = n;
        return;
    }
    memcpy(frame + STORE_FRAME_ROOM - n, head, n);
    *val = frame + STORE_FRAME_ROOM - n;
    *val_len = frame_len - STORE_FRAME_ROOM + n;
}

bool packer_shared_parts(const void *val, size_t len, shared_parts *out) {
    const uint8_t *p = val, *end = p + len;
    if (len < 3 || !packer_is_shared(val, len)) return false;
    out->codec = *p++;
    uint64_t index;
    size_t k = store_varint_get(p, end, &out->back);
    if (k == 0) return false;
    p += k;
    if ((k = store_varint_get(p, end, &index)) == 0 || index >= STORE_FRAME_EVENTS_MAX)
        return false;
    p += k;
    out->index = (uint32_t)index;
    out->frame = out->back ? NULL : (const char *)p;
    out->frame_len = out->back ? 0 : (size_t)(end - p);
    return out->back ? p == end : out->frame_len > 0;
}

/* A zstd frame (of a lone event, or shared) into content. */
static bsp_err zstd_unpack(const store_packer *p, const char *frame, size_t len, bsp_buf *content) {
    unsigned long long size = ZSTD_getFrameContentSize(frame, len);
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
        size > PACK_UNPACKED_MAX)
        return BSP_ESTORE;
    ZSTD_DCtx *d = thread_dctx();
    if (!d) return BSP_ENOMEM;
    content->len = 0;
    if (bsp_buf_reserve(content, (size_t)size) != BSP_OK) return BSP_ENOMEM;
    size_t n = ZSTD_decompress_usingDDict(d, content->data, (size_t)size, frame, len, p->ddict);
    if (ZSTD_isError(n) || n != size) return BSP_ESTORE;
    content->len = n;
    return BSP_OK;
}

/* An LZ4 frame (lz4_frame) into content: the length it gives, and its sum. */
static bsp_err lz4_unpack(const store_packer *p, const char *frame, size_t len, bsp_buf *content) {
    const uint8_t *at = (const uint8_t *)frame, *end = at + len;
    uint64_t size;
    size_t k = store_varint_get(at, end, &size);
    if (k == 0 || size == 0 || size > PACK_UNPACKED_MAX || len - k < PACK_LZ4_SUM + 1)
        return BSP_ESTORE;
    at += k;
    uint64_t sum = 0;
    for (size_t i = 0; i < PACK_LZ4_SUM; i++)
        sum |= (uint64_t)at[i] << (8 * i);
    at += PACK_LZ4_SUM;
    content->len = 0;
    if (bsp_buf_reserve(content, (size_t)size) != BSP_OK) return BSP_ENOMEM;
    int n = LZ4_decompress_safe_usingDict((const char *)at, content->data, (int)(end - at),
                                          (int)size, p->dict, p->dict_len);
    if (n < 0 || (uint64_t)n != size) return BSP_ESTORE;
    uint64_t mask = (1ull << (8 * PACK_LZ4_SUM)) - 1;
    if ((bsp_hash64(content->data, (size_t)n) & mask) != sum) return BSP_ESTORE;
    content->len = (size_t)n;
    return BSP_OK;
}

bsp_err packer_unpack_frame(const store_packer *p, const shared_parts *h, bsp_buf *content) {
    if (h->back || !h->frame) return BSP_ESTORE;
    return h->codec == PACK_SHARED_LZ4 ? lz4_unpack(p, h->frame, h->frame_len, content)
                                       : zstd_unpack(p, h->frame, h->frame_len, content);
}

bsp_err packer_frame_member(const bsp_buf *content, uint32_t index, bsp_slice *out) {
    const uint8_t *p = (const uint8_t *)content->data, *end = p + content->len;
    uint64_t n, len = 0, skip = 0;
    size_t k = store_varint_get(p, end, &n);
    if (k == 0 || n == 0 || n > STORE_FRAME_EVENTS_MAX || index >= n) return BSP_ESTORE;
    p += k;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t l;
        if ((k = store_varint_get(p, end, &l)) == 0 || l > PACK_UNPACKED_MAX) return BSP_ESTORE;
        p += k;
        if (i < index) skip += l + 1;
        if (i == index) len = l;
    }
    if ((uint64_t)(end - p) < skip + len + 1 || p[skip + len] != '\0') return BSP_ESTORE;
    *out = (bsp_slice){(const char *)p + skip, (size_t)len};
    return BSP_OK;
}

bsp_err packer_unpack(const store_packer *p, const void *val, size_t len, bsp_buf *scratch,
                      bsp_slice *out) {
    if (!packer_is_packed(val, len) || packer_is_shared(val, len) || len < 2) return BSP_ESTORE;
    bsp_err err = zstd_unpack(p, (const char *)val + 1, len - 1, scratch);
    if (err != BSP_OK) return err;
    scratch->data[scratch->len] = '\0'; /* reserved by bsp_buf_reserve */
    *out = (bsp_slice){scratch->data, scratch->len};
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
