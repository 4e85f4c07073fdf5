/* wal.c - the write-ahead file that makes a group of events durable with
 * one small sequential write and one fdatasync, instead of an LMDB commit
 * (scattered page writes and two syncs) per group.
 *
 * The file DIR/events.wal holds records of the events acknowledged since
 * the last checkpoint. Each checkpoint commits the writer's LMDB
 * transaction durably together with a new generation number (meta
 * "wal_gen"); from then on records carry that generation and are written
 * from offset 0 again, over the older ones. Recovery replays the records
 * from offset 0 while they are intact and of the stored generation: a torn
 * or older record ends the scan. No truncation or sync is needed when a
 * generation starts. The file is grown ahead of the records by writing
 * zeros (WAL_GROW bytes at a time, synced once), so a group's sync flushes
 * data blocks only: no size change, no extent to convert, hence no journal
 * commit, which on ext4 would also wait for the store's own dirty pages.
 *
 * A record, little-endian: u64 check (XXH3 of everything after it), u32
 * payload length, u32 flags (WAL_TS_GIVEN, WAL_ID_GENERATED: how the event
 * arrived, which its text alone does not tell and de-duplication needs),
 * u64 generation, u64 seq, then the payload (the event's stored JSON
 * text). */
#include "ingest/ingest_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WAL_FILE "events.wal"
#define WAL_HEAD 32                /* bytes before a record's payload */
#define WAL_MAX_PAYLOAD (1u << 20) /* larger lengths mark the end */
#define WAL_READ_CHUNK (1u << 20)  /* bytes read at a time when scanning */
#define WAL_GROW (8u << 20)        /* zeros written ahead of the records */

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void wal_init(wal *w) {
    *w = (wal){.fd = -1};
}

bsp_err wal_open(wal *w, const char *dir, bool create) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, WAL_FILE) >= (int)sizeof path) return BSP_EINVAL;
    int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
    w->fd = open(path, flags, 0600);
    struct stat sb;
    if (w->fd >= 0 && fstat(w->fd, &sb) == 0) {
        w->size = (uint64_t)sb.st_size;
        return BSP_OK;
    }
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    if (errno == ENOENT && !create) return BSP_ENOTFOUND;
    bsp_error_log("wal: cannot open %s: %s", path, strerror(errno));
    return BSP_EIO;
}

void wal_close(wal *w) {
    if (w->fd >= 0) close(w->fd);
    bsp_buf_free(&w->pending);
    wal_init(w);
}

bsp_err wal_add(wal *w, uint64_t seq, unsigned flags, const char *text, size_t len) {
    if (len > WAL_MAX_PAYLOAD) return BSP_ETOOBIG;
    bsp_err rc = bsp_buf_reserve(&w->pending, WAL_HEAD + len);
    if (rc) return rc;
    uint8_t *rec = (uint8_t *)w->pending.data + w->pending.len;
    put_u32(rec + 8, (uint32_t)len);
    put_u32(rec + 12, flags & WAL_FLAGS);
    put_u64(rec + 16, w->gen);
    put_u64(rec + 24, seq);
    memcpy(rec + WAL_HEAD, text, len);
    put_u64(rec, bsp_hash64(rec + 8, WAL_HEAD - 8 + len));
    w->pending.len += WAL_HEAD + len;
    w->pending.data[w->pending.len] = '\0';
    return BSP_OK;
}

static bsp_err write_all(int fd, const char *data, size_t len, uint64_t off) {
    while (len) {
        ssize_t n = pwrite(fd, data, len, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            bsp_error_log("wal: write failed: %s", n < 0 ? strerror(errno) : "short write");
            return BSP_EIO;
        }
        data += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return BSP_OK;
}

/* Makes the file at least `need` bytes long with zeros, synced. */
static bsp_err grow_to(wal *w, uint64_t need) {
    static const char zeros[1 << 16];
    uint64_t size = w->size;
    while (size < need) {
        uint64_t target = (need - size + WAL_GROW - 1) / WAL_GROW * WAL_GROW + size;
        for (; size < target; size += sizeof zeros) {
            bsp_err rc = write_all(w->fd, zeros, sizeof zeros, size);
            if (rc) return rc;
        }
    }
    if (fsync(w->fd) != 0) {
        bsp_error_log("wal: fsync failed: %s", strerror(errno));
        return BSP_EIO;
    }
    w->size = size;
    return BSP_OK;
}

bsp_err wal_flush(wal *w) {
    if (!w->pending.len) return BSP_OK;
    bsp_err rc = BSP_OK;
    if (w->off + w->pending.len > w->size) rc = grow_to(w, w->off + w->pending.len);
    if (!rc) rc = write_all(w->fd, w->pending.data, w->pending.len, w->off);
    if (!rc && fdatasync(w->fd) != 0) {
        bsp_error_log("wal: fdatasync failed: %s", strerror(errno));
        rc = BSP_EIO;
    }
    if (!rc) w->off += w->pending.len;
    bsp_buf_reset(&w->pending);
    return rc;
}

void wal_drop(wal *w) {
    bsp_buf_reset(&w->pending);
}

void wal_restart(wal *w, uint64_t gen) {
    w->gen = gen;
    w->off = 0;
    bsp_buf_reset(&w->pending);
}

/* Reads up to cap bytes at off; *got is short only at the end of the file. */
static bsp_err read_at(int fd, uint8_t *buf, size_t cap, uint64_t off, size_t *got) {
    *got = 0;
    while (*got < cap) {
        ssize_t n = pread(fd, buf + *got, cap - *got, (off_t)(off + *got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            bsp_error_log("wal: read failed: %s", strerror(errno));
            return BSP_EIO;
        }
        if (n == 0) break;
        *got += (size_t)n;
    }
    return BSP_OK;
}

/* The record at buf (avail bytes): its total size, or 0 if it is not an
 * intact record of generation gen (the end of the log). *need is set when
 * more bytes than avail are needed to tell. */
static size_t record_size(const uint8_t *buf, size_t avail, uint64_t gen, size_t *need) {
    *need = 0;
    if (avail < WAL_HEAD) {
        *need = WAL_HEAD;
        return 0;
    }
    uint32_t len = get_u32(buf + 8);
    if (len > WAL_MAX_PAYLOAD || (get_u32(buf + 12) & ~WAL_FLAGS) || get_u64(buf + 16) != gen)
        return 0;
    if (avail < WAL_HEAD + (size_t)len) {
        *need = WAL_HEAD + (size_t)len;
        return 0;
    }
    if (bsp_hash64(buf + 8, WAL_HEAD - 8 + len) != get_u64(buf)) return 0;
    return WAL_HEAD + (size_t)len;
}

bsp_err wal_scan(wal *w, uint64_t gen, wal_record_fn fn, void *ctx, size_t *count) {
    *count = 0;
    w->off = 0;
    bsp_buf_reset(&w->pending);
    size_t cap = WAL_READ_CHUNK + WAL_HEAD + WAL_MAX_PAYLOAD;
    uint8_t *buf = malloc(cap);
    if (!buf) return BSP_ENOMEM;
    bsp_err rc = BSP_OK;
    for (;;) {
        size_t got;
        rc = read_at(w->fd, buf, cap, w->off, &got);
        if (rc) break;
        size_t pos = 0, need = 0, size;
        while ((size = record_size(buf + pos, got - pos, gen, &need)) > 0) {
            const uint8_t *rec = buf + pos;
            rc = fn(ctx, get_u64(rec + 24), get_u32(rec + 12), (const char *)rec + WAL_HEAD,
                    size - WAL_HEAD);
            if (rc) break;
            (*count)++;
            pos += size;
        }
        w->off += pos;
        /* Stop at a bad record, or when even a fresh read cannot hold more. */
        if (rc || !need || got < cap || pos == 0) break;
    }
    free(buf);
    return rc;
}
