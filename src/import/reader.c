/* reader.c - the line reader under every import: a file or stdin, plain or
 * zstd-compressed (by the .zst suffix or the zstd magic number at the start),
 * decompressed with libzstd's streaming API and cut into lines of at most
 * BSP_CSV_MAX_LINE bytes. Lives apart from the parsers so they see only
 * NUL-terminated lines, whatever the source. */
#include "import/import.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

#define READ_CHUNK (128 * 1024)
/* Decoded text is kept in one buffer large enough for a whole line plus a
 * chunk of decompressed output. */
#define BUF_CAP (BSP_CSV_MAX_LINE + 2 * READ_CHUNK)

struct bsp_reader {
    FILE *fp;
    bool own_fp;
    bool zstd;
    bool eof_in;   /* no more raw bytes */
    bool done;     /* no more decoded bytes */
    bool skipping; /* discarding the rest of an over-long line */
    bsp_err err;
    ZSTD_DCtx *dctx;
    size_t zhint; /* last ZSTD_decompressStream result: 0 = frame complete */
    unsigned char *in;
    ZSTD_inBuffer zin;
    char *buf;
    size_t pos, end; /* undelivered decoded text is buf[pos, end) */
    uint64_t bytes_in, size;
};

static bool has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Reads the next raw chunk into r->in; false at end of input or on error. */
static bool read_raw(bsp_reader *r) {
    if (r->eof_in) return false;
    size_t n = fread(r->in, 1, READ_CHUNK, r->fp);
    if (n < READ_CHUNK) {
        if (ferror(r->fp)) r->err = BSP_EIO;
        r->eof_in = true;
    }
    r->bytes_in += n;
    r->zin.src = r->in;
    r->zin.size = n;
    r->zin.pos = 0;
    return n > 0;
}

static bool is_zstd_magic(const unsigned char *p, size_t n) {
    return n >= 4 && p[0] == 0x28 && p[1] == 0xB5 && p[2] == 0x2F && p[3] == 0xFD;
}

static void reader_free(bsp_reader *r) {
    if (!r) return;
    if (r->fp && r->own_fp) fclose(r->fp);
    ZSTD_freeDCtx(r->dctx);
    free(r->in);
    free(r->buf);
    free(r);
}

bsp_err reader_open(const char *path, bsp_reader **out) {
    *out = NULL;
    if (!path || !*path) return BSP_EINVAL;
    bsp_reader *r = calloc(1, sizeof *r);
    if (!r) return BSP_ENOMEM;
    r->in = malloc(READ_CHUNK);
    r->buf = malloc(BUF_CAP + 1);
    if (!r->in || !r->buf) {
        reader_free(r);
        return BSP_ENOMEM;
    }
    if (strcmp(path, "-") == 0) {
        r->fp = stdin;
    } else {
        r->fp = fopen(path, "rb");
        r->own_fp = true;
        if (!r->fp) {
            reader_free(r);
            return errno == ENOENT ? BSP_ENOTFOUND : BSP_EIO;
        }
        struct stat sb;
        if (fstat(fileno(r->fp), &sb) == 0 && S_ISREG(sb.st_mode)) r->size = (uint64_t)sb.st_size;
    }
    read_raw(r);
    if (r->err) {
        reader_free(r);
        return BSP_EIO;
    }
    r->zstd = has_suffix(path, ".zst") || is_zstd_magic(r->in, r->zin.size);
    if (r->zstd && !(r->dctx = ZSTD_createDCtx())) {
        reader_free(r);
        return BSP_ENOMEM;
    }
    *out = r;
    return BSP_OK;
}

/* Decodes what is pending in r->zin into buf[end, cap). */
static void decode_some(bsp_reader *r) {
    if (!r->zstd) {
        size_t n = r->zin.size - r->zin.pos;
        size_t room = BUF_CAP - r->end;
        if (n > room) n = room;
        memcpy(r->buf + r->end, (const char *)r->zin.src + r->zin.pos, n);
        r->zin.pos += n;
        r->end += n;
        return;
    }
    ZSTD_outBuffer zout = {r->buf, BUF_CAP, r->end};
    size_t rc = ZSTD_decompressStream(r->dctx, &zout, &r->zin);
    if (ZSTD_isError(rc)) {
        r->err = BSP_EPARSE;
        r->done = true;
        return;
    }
    r->zhint = rc;
    r->end = zout.pos;
}

/* Adds decoded text after buf[end]; sets done at the end of the input. */
static void fill(bsp_reader *r) {
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->end - r->pos);
        r->end -= r->pos;
        r->pos = 0;
    }
    size_t before = r->end;
    while (!r->done && r->end == before) {
        if (r->zin.pos < r->zin.size) {
            decode_some(r);
            continue;
        }
        /* zstd may still hold output with all input consumed. */
        if (r->zstd && r->zhint != 0 && r->end < BUF_CAP) {
            size_t was = r->end;
            decode_some(r);
            if (r->end != was || r->done) continue;
        }
        if (!read_raw(r)) {
            if (r->zstd && r->zhint != 0 && !r->err) r->err = BSP_EPARSE; /* truncated */
            r->done = true;
        }
    }
}

/* Cuts buf[pos, pos + n) out as a line ending at buf[pos + n] (the newline
 * or the end), drops a trailing \r and terminates it. */
static const char *take(bsp_reader *r, size_t n, size_t skip, size_t *len) {
    char *line = r->buf + r->pos;
    r->pos += n + skip;
    if (n > 0 && line[n - 1] == '\r') n--;
    line[n] = '\0';
    *len = n;
    return line;
}

const char *reader_line(bsp_reader *r, size_t *len, bool *too_long) {
    *len = 0;
    if (too_long) *too_long = false;
    for (;;) {
        size_t avail = r->end - r->pos;
        char *nl = avail ? memchr(r->buf + r->pos, '\n', avail) : NULL;
        if (r->skipping) {
            r->pos = nl ? (size_t)(nl - r->buf) + 1 : r->end;
            if (nl)
                r->skipping = false;
            else if (r->done)
                return NULL;
            else
                fill(r);
            continue;
        }
        if (nl) {
            size_t n = (size_t)(nl - (r->buf + r->pos));
            if (n <= BSP_CSV_MAX_LINE) return take(r, n, 1, len);
            if (too_long) *too_long = true;
            return take(r, BSP_CSV_MAX_LINE, n - BSP_CSV_MAX_LINE + 1, len);
        }
        if (avail > BSP_CSV_MAX_LINE) {
            if (too_long) *too_long = true;
            r->skipping = true;
            /* The byte after the kept part (not a newline, and inside the
             * data) becomes the NUL; it belongs to the discarded rest. */
            return take(r, BSP_CSV_MAX_LINE, 1, len);
        }
        if (r->done) return avail ? take(r, avail, 0, len) : NULL;
        fill(r);
    }
}

uint64_t reader_bytes_in(const bsp_reader *r) {
    return r->bytes_in;
}

uint64_t reader_size(const bsp_reader *r) {
    return r->size;
}

bsp_err reader_error(const bsp_reader *r) {
    return r->err;
}

void reader_close(bsp_reader *r) {
    reader_free(r);
}
