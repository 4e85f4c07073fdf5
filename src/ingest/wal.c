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
 * Groups are written with O_DIRECT|O_DSYNC where the filesystem allows it:
 * the write goes from the buffer to the device and the call returns once
 * the device has flushed it, with no page-cache copy, no writeback pass and
 * no separate fdatasync (measured: a quarter less CPU and a sixth less wall
 * time a group). Direct writes must cover whole aligned blocks, so the file
 * keeps the bytes of its last partial block (`tail`) and each group
 * rewrites that block with the records after it, zeros padding the last
 * block. That rewrites acknowledged bytes, as the page cache does when it
 * writes back the page they share, so a torn block costs no more than it
 * did. Where O_DIRECT is refused (tmpfs, some network filesystems) or the
 * caller asks, groups go through the page cache and one fdatasync.
 *
 * A direct write is submitted with Linux AIO where the kernel offers it
 * (io_setup), so the writer applies a group's events while the device
 * writes its records (wal_flush_start, then wal_flush_wait). A group that
 * fails after its write began is taken back: its block is written again
 * as it was before, with zeros after (wal_flush_abandon), so no later scan
 * replays records whose events were refused.
 *
 * A record, little-endian: u64 check (XXH3 of everything after it), u32
 * payload length, u32 flags (WAL_TS_GIVEN, WAL_ID_GENERATED: how the event
 * arrived, which its text alone does not tell and de-duplication needs),
 * u64 generation, u64 seq, then the payload (the event's stored JSON
 * text). */
#include "ingest/ingest_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define WAL_FILE "events.wal"
#define WAL_HEAD 32                /* bytes before a record's payload */
#define WAL_MAX_PAYLOAD (1u << 20) /* larger lengths mark the end */
#define WAL_READ_CHUNK (1u << 20)  /* bytes read at a time when scanning */
#define WAL_GROW (8u << 20)        /* zeros written ahead of the records */
#define WAL_GROW_CHUNK (1u << 20)  /* zeros written in one call; divides WAL_GROW */
#define WAL_ALIGN 4096u            /* direct writes cover whole blocks of this */

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
    *w = (wal){.fd = -1, .dfd = -1};
}

/* Linux AIO, by system call: glibc has no wrappers for the kernel's own. */
static void aio_open(wal *w) {
    aio_context_t ctx = 0;
    if (syscall(SYS_io_setup, 1, &ctx) == 0) w->aio = (unsigned long)ctx;
}

static void aio_close(wal *w) {
    if (w->aio) syscall(SYS_io_destroy, (aio_context_t)w->aio);
    w->aio = 0;
}

/* Opens the second, direct descriptor; without it groups are buffered. */
static void open_direct(wal *w, const char *path) {
    w->dfd = open(path, O_RDWR | O_CLOEXEC | O_DIRECT | O_DSYNC);
    if (w->dfd < 0) {
        bsp_info("wal: %s refuses O_DIRECT (%s): groups are written through the page cache", path,
                 strerror(errno));
        return;
    }
    if (posix_memalign((void **)&w->stage, WAL_ALIGN, WAL_ALIGN) != 0) {
        close(w->dfd);
        w->dfd = -1;
        return;
    }
    w->stage_cap = WAL_ALIGN;
    aio_open(w);
}

bsp_err wal_open(wal *w, const char *dir, bool create, bool direct) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, WAL_FILE) >= (int)sizeof path) return BSP_EINVAL;
    int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
    w->fd = open(path, flags, 0600);
    struct stat sb;
    if (w->fd >= 0 && fstat(w->fd, &sb) == 0) {
        w->size = (uint64_t)sb.st_size;
        if (direct) open_direct(w, path);
        return BSP_OK;
    }
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    if (errno == ENOENT && !create) return BSP_ENOTFOUND;
    bsp_error_log("wal: cannot open %s: %s", path, strerror(errno));
    return BSP_EIO;
}

static void close_direct(wal *w) {
    aio_close(w);
    if (w->dfd >= 0) close(w->dfd);
    w->dfd = -1;
    free(w->stage);
    w->stage = NULL;
    w->stage_cap = 0;
    w->tail_known = false;
}

void wal_close(wal *w) {
    if (w->fd >= 0) close(w->fd);
    close_direct(w);
    bsp_buf_free(&w->pending);
    wal_init(w);
}

bool wal_is_direct(const wal *w) {
    return w->dfd >= 0;
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

static bsp_err write_all(int fd, const char *data, size_t len, uint64_t off) {
    while (len) {
        ssize_t n = bsp_fault_hit(BSP_FAULT_WAL_WRITE) ? (errno = EIO, -1)
                                                       : pwrite(fd, data, len, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int err = n < 0 ? errno : 0;
            bsp_error_log("wal: write failed: %s", err ? strerror(err) : "short write");
            errno = err; /* flush_direct tells a refused direct write by it */
            return BSP_EIO;
        }
        data += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return BSP_OK;
}

/* Makes the file at least `need` bytes long with zeros, synced. The zeros
 * go WAL_GROW_CHUNK at a time (few calls, and few failure points for the
 * tests to sweep) from a zeroed buffer held only meanwhile. */
static bsp_err grow_to(wal *w, uint64_t need) {
    char *zeros = calloc(1, WAL_GROW_CHUNK);
    if (!zeros) return BSP_ENOMEM;
    uint64_t size = w->size;
    bsp_err rc = BSP_OK;
    uint64_t target = (need - size + WAL_GROW - 1) / WAL_GROW * WAL_GROW + size;
    for (; size < target && !rc; size += WAL_GROW_CHUNK)
        rc = write_all(w->fd, zeros, WAL_GROW_CHUNK, size);
    free(zeros);
    if (rc) return rc;
    if (bsp_fault_hit(BSP_FAULT_WAL_SYNC) ? (errno = EIO, true) : fsync(w->fd) != 0) {
        bsp_error_log("wal: fsync failed: %s", strerror(errno));
        return BSP_EIO;
    }
    /* Direct writes would only have to drop these zeros from the cache. */
    if (w->dfd >= 0)
        posix_fadvise(w->fd, (off_t)w->size, (off_t)(size - w->size), POSIX_FADV_DONTNEED);
    w->size = size;
    return BSP_OK;
}

static bsp_err datasync(int fd) {
    if (bsp_fault_hit(BSP_FAULT_WAL_SYNC))
        errno = EIO;
    else if (fdatasync(fd) == 0)
        return BSP_OK;
    bsp_error_log("wal: fdatasync failed: %s", strerror(errno));
    return BSP_EIO;
}

/* Through the page cache: one write, one fdatasync. */
static bsp_err flush_buffered(wal *w) {
    bsp_err rc = write_all(w->fd, w->pending.data, w->pending.len, w->off);
    return rc ? rc : datasync(w->fd);
}

/* Makes the staging buffer hold at least need bytes, keeping its first
 * keep bytes (the tail). */
static bsp_err stage_reserve(wal *w, size_t need, size_t keep) {
    if (need <= w->stage_cap) return BSP_OK;
    size_t cap = w->stage_cap;
    while (cap < need)
        cap *= 2;
    uint8_t *stage;
    if (posix_memalign((void **)&stage, WAL_ALIGN, cap) != 0) return BSP_ENOMEM;
    memcpy(stage, w->stage, keep);
    free(w->stage);
    w->stage = stage;
    w->stage_cap = cap;
    return BSP_OK;
}

/* The bytes of the block holding off that come before it: what a direct
 * write of that block must put back. Read from the file after a scan. */
static bsp_err load_tail(wal *w, size_t lead) {
    if (w->tail_known || lead == 0) return BSP_OK;
    size_t got;
    bsp_err rc = read_at(w->fd, w->stage, lead, w->off - lead, &got);
    if (!rc && got != lead) rc = BSP_EIO;
    if (!rc) w->tail_known = true;
    return rc;
}

/* Stages a direct write: the tail block and the pending records after it,
 * padded with zeros to whole blocks, to go at *start (*span bytes, of which
 * *used are the tail's and the records'). */
static bsp_err stage_group(wal *w, uint64_t *start, size_t *span, size_t *used) {
    *start = w->off & ~(uint64_t)(WAL_ALIGN - 1);
    size_t lead = (size_t)(w->off - *start);
    *used = lead + w->pending.len;
    *span = (*used + WAL_ALIGN - 1) & ~(size_t)(WAL_ALIGN - 1);
    bsp_err rc = load_tail(w, lead);
    if (!rc) rc = stage_reserve(w, *span, lead);
    if (rc) return rc;
    memcpy(w->stage + lead, w->pending.data, w->pending.len);
    memset(w->stage + *used, 0, *span - *used);
    return BSP_OK;
}

/* After a staged group landed: its last partial block moves to the front
 * of the stage, the tail of the next group. */
static void keep_tail(wal *w, size_t used) {
    size_t keep_from = used & ~(size_t)(WAL_ALIGN - 1);
    memmove(w->stage, w->stage + keep_from, used - keep_from);
    w->tail_known = true;
}

/* The filesystem took O_DIRECT but not such writes: from now on groups go
 * through the page cache, starting with this one. */
static bsp_err direct_refused(wal *w) {
    bsp_info("wal: direct writes refused: groups are written through the page cache");
    close_direct(w);
    return flush_buffered(w);
}

/* Directly, in one write that returns once the device has it. */
static bsp_err flush_direct(wal *w) {
    uint64_t start;
    size_t span, used;
    bsp_err rc = stage_group(w, &start, &span, &used);
    if (rc) return rc;
    rc = write_all(w->dfd, (const char *)w->stage, span, start);
    if (rc && errno == EINVAL) return direct_refused(w);
    if (!rc) keep_tail(w, used);
    return rc;
}

/* Stages the group and submits its direct write to the kernel (the stage
 * must then stay as it is until aio_wait). *submitted stays false when
 * the kernel would not take it: the caller then writes at once. */
static bsp_err aio_start(wal *w, bool *submitted) {
    *submitted = false;
    uint64_t start;
    size_t span, used;
    bsp_err rc = stage_group(w, &start, &span, &used);
    if (rc) return rc;
    if (bsp_fault_hit(BSP_FAULT_WAL_WRITE)) {
        bsp_error_log("wal: write failed: %s", strerror(EIO));
        return BSP_EIO;
    }
    struct iocb cb = {.aio_fildes = (uint32_t)w->dfd,
                      .aio_lio_opcode = IOCB_CMD_PWRITE,
                      .aio_buf = (uint64_t)(uintptr_t)w->stage,
                      .aio_nbytes = span,
                      .aio_offset = (int64_t)start};
    struct iocb *list[1] = {&cb};
    if (syscall(SYS_io_submit, (aio_context_t)w->aio, 1L, list) != 1) return BSP_OK;
    *submitted = true;
    w->flight_start = start;
    w->flight_span = span;
    w->flight_used = used;
    return BSP_OK;
}

/* Waits for the submitted write; *landed when all of it was written.
 * io_getevents fails only on a bad context or buffer, which this file
 * never passes. */
static bsp_err aio_wait(wal *w, bool *landed) {
    struct io_event ev;
    long n;
    do
        n = syscall(SYS_io_getevents, (aio_context_t)w->aio, 1L, 1L, &ev, NULL);
    while (n < 0 && errno == EINTR);
    size_t span = w->flight_span;
    w->flight_span = 0;
    *landed = n == 1 && ev.res == (int64_t)span;
    if (*landed) return BSP_OK;
    int err = n != 1 ? errno : ev.res < 0 ? (int)-ev.res : 0;
    if (err == EINVAL) return BSP_EINVAL; /* the caller falls back to the page cache */
    bsp_error_log("wal: write failed: %s", err ? strerror(err) : "short write");
    return BSP_EIO;
}

void wal_set_lazy(wal *w, uint64_t lazy_ms) {
    w->lazy_ns = lazy_ms * 1000000u;
}

bsp_err wal_sync(wal *w) {
    if (!w->unsynced_ns) return BSP_OK;
    bsp_err rc = datasync(w->fd);
    if (rc) return rc;
    w->unsynced_ns = 0;
    w->syncs++;
    return BSP_OK;
}

uint64_t wal_sync_due_ns(const wal *w) {
    return w->unsynced_ns ? w->unsynced_ns + w->lazy_ns : 0;
}

/* Lazily: written to the page cache (which a killed process leaves to the
 * kernel to write), synced once the oldest unsynced group is due. */
static bsp_err flush_lazy(wal *w) {
    bsp_err rc = write_all(w->fd, w->pending.data, w->pending.len, w->off);
    if (rc) return rc;
    uint64_t now = bsp_mono_ns();
    if (!w->unsynced_ns) w->unsynced_ns = now;
    return now >= wal_sync_due_ns(w) ? wal_sync(w) : BSP_OK;
}

/* The pending group written (and synced, as the mode says) at once. */
static bsp_err flush_now(wal *w) {
    if (w->lazy_ns) return flush_lazy(w);
    bsp_err rc = w->dfd >= 0 ? flush_direct(w) : flush_buffered(w);
    if (!rc) w->syncs++;
    return rc;
}

bool wal_flush_async(const wal *w) {
    return w->dfd >= 0 && w->aio && !w->lazy_ns;
}

void wal_flush_start(wal *w) {
    w->flying = true;
    w->flight_span = 0;
    w->flight_rc = BSP_OK;
    if (!w->pending.len) return;
    bsp_err rc = BSP_OK;
    if (w->off + w->pending.len > w->size) rc = grow_to(w, w->off + w->pending.len);
    bool submitted = false;
    if (!rc && wal_flush_async(w)) rc = aio_start(w, &submitted);
    if (!submitted) w->flight_rc = rc ? rc : flush_now(w);
}

bsp_err wal_flush_wait(wal *w) {
    if (!w->flying) return BSP_OK;
    w->flying = false;
    bsp_err rc = w->flight_rc;
    if (w->flight_span) {
        bool landed;
        size_t used = w->flight_used;
        rc = aio_wait(w, &landed);
        if (landed) {
            keep_tail(w, used);
            w->syncs++;
        } else if (rc == BSP_EINVAL && (rc = direct_refused(w)) == BSP_OK) {
            w->syncs++;
        }
    }
    if (!rc) w->off += w->pending.len;
    bsp_buf_reset(&w->pending);
    return rc;
}

bsp_err wal_flush_abandon(wal *w) {
    if (!w->flying) {
        bsp_buf_reset(&w->pending);
        return BSP_OK;
    }
    w->flying = false;
    bsp_err rc = BSP_OK;
    if (w->flight_span) {
        /* Whatever of it reached the file goes: the stage still holds the
         * block's acknowledged bytes before the group's, then zeros. */
        uint64_t start = w->flight_start;
        size_t span = w->flight_span, lead = w->flight_used - w->pending.len;
        bool landed;
        aio_wait(w, &landed);
        memset(w->stage + lead, 0, span - lead);
        rc = write_all(w->dfd, (const char *)w->stage, span, start);
    } else if (w->flight_rc == BSP_OK && w->pending.len) {
        rc = BSP_EIO; /* written at once: only async groups can be taken back */
    }
    bsp_buf_reset(&w->pending);
    return rc;
}

bsp_err wal_flush(wal *w) {
    wal_flush_start(w);
    return wal_flush_wait(w);
}

void wal_drop(wal *w) {
    bsp_buf_reset(&w->pending);
}

void wal_restart(wal *w, uint64_t gen) {
    w->gen = gen;
    w->off = 0;
    w->tail_known = true; /* offset 0 has no bytes before it */
    w->unsynced_ns = 0;   /* the checkpoint stored every group durably */
    bsp_buf_reset(&w->pending);
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

bsp_err wal_scan(wal *w, uint64_t gen, uint64_t limit, wal_record_fn fn, void *ctx, size_t *count) {
    *count = 0;
    w->off = 0;
    w->tail_known = false;
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
        while (w->off + pos < limit && (size = record_size(buf + pos, got - pos, gen, &need)) > 0) {
            const uint8_t *rec = buf + pos;
            rc = fn(ctx, get_u64(rec + 24), get_u32(rec + 12), (const char *)rec + WAL_HEAD,
                    size - WAL_HEAD);
            if (rc) break;
            (*count)++;
            pos += size;
        }
        w->off += pos;
        /* Stop at a bad record or the limit, or when even a fresh read cannot
         * hold more. */
        if (rc || !need || got < cap || pos == 0 || w->off >= limit) break;
    }
    free(buf);
    return rc;
}
