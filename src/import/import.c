/* import.c - import_run: reads Segment JSONL or Online Retail CSV through
 * the reader, turns what it reads into normalized events (event.h) and hands
 * them to the ingest writer in chunks, waiting for each commit, so an import
 * goes through exactly the same de-duplication, identity and profile code as
 * the server; at the end it waits for a checkpoint (ingest_sync), so profiles
 * are in the store when it returns. Also the progress bar and the summary.
 *
 * Online Retail grouping (retail.c): all rows of an invoice number form one
 * invoice and one event, even when a few rows of other invoices interrupt
 * them; see import.h. Rows that fail to
 * parse are rejected and left out of their invoice. */
#include "import/import.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "import/import_int.h"
#include "json/json.h"

#define CHUNK_EVENTS 2000
#define PROGRESS_EVERY_NS 100000000ull /* redraw at most 10 times a second */

/* --- progress and rejects ------------------------------------------------ */

static void progress_draw(bsp_importer *im, bool final) {
    if (!im->progress) return;
    uint64_t now = bsp_mono_ns();
    if (!final && now - im->last_draw_ns < PROGRESS_EVERY_NS) return;
    im->last_draw_ns = now;
    double secs = (double)(now - im->t0_ns) / 1e9;
    double rate = secs > 0 ? (double)im->sum->events / secs : 0;
    uint64_t size = reader_size(im->rd), in = reader_bytes_in(im->rd);
    double pct = size ? 100.0 * (double)(in > size ? size : in) / (double)size : 0;
    char bar[31];
    int fill = (int)(pct * 30 / 100);
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : ' ';
    bar[30] = '\0';
    if (size)
        fprintf(stderr, "\r[%s] %5.1f%%  %" PRIu64 " rows  %.0f events/s", bar, pct, im->sum->rows,
                rate);
    else
        fprintf(stderr, "\r%" PRIu64 " rows  %.0f events/s", im->sum->rows, rate);
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

void importer_tick(bsp_importer *im) {
    if (im->progress && (im->sum->rows & 1023) == 0) progress_draw(im, false);
}

void importer_reject(bsp_importer *im, uint64_t line_no, const bsp_error *e) {
    if (im->sum->rejects++ > 0) return;
    if (e->at[0])
        snprintf(im->sum->first_reject, sizeof im->sum->first_reject,
                 "line %" PRIu64 ": %.170s (at %.40s)", line_no, e->message, e->at);
    else
        snprintf(im->sum->first_reject, sizeof im->sum->first_reject, "line %" PRIu64 ": %.220s",
                 line_no, e->message);
}

/* --- chunks of events to the writer -------------------------------------- */

/* The first arena chunk of a batch: a simulated event makes about 2.5 KB
 * of tree. */
#define CHUNK_TREE_BYTES (CHUNK_EVENTS * 2048)

/* Without an arena (out of memory) the trees are malloc'd as usual. */
static bsp_err batch_new(bsp_importer *im) {
    im->batch = malloc(CHUNK_EVENTS * sizeof *im->batch);
    im->nbatch = 0;
    im->batch_arena = im->batch ? json_arena_new(CHUNK_TREE_BYTES) : NULL;
    return im->batch ? BSP_OK : BSP_ENOMEM;
}

json_arena *importer_arena_enter(bsp_importer *im) {
    if (!im->batch) batch_new(im); /* a failure is importer_add's to report */
    return json_arena_enter(im->batch_arena);
}

/* Writer thread: note the result; the importer frees the events. */
static void chunk_done(void *ctx, const bsp_ingest_result *res) {
    import_chunk *c = ctx;
    pthread_mutex_lock(&c->im->mu);
    c->res = *res;
    c->done = true;
    pthread_cond_signal(&c->im->cv);
    pthread_mutex_unlock(&c->im->mu);
}

/* Frees one stored chunk and counts its result. */
static bsp_err chunk_reap(bsp_importer *im, import_chunk *c) {
    for (size_t i = 0; i < c->n; i++)
        event_free(&c->evs[i]);
    free(c->evs);
    json_arena_free(c->arena);
    bsp_err rc = c->res.code;
    im->sum->accepted += c->res.accepted;
    im->sum->duplicates += c->res.duplicates;
    *c = (import_chunk){.im = im};
    if (rc != BSP_OK)
        return bsp_error_set(im->err, rc, "", "ingest failed after %" PRIu64 " events: %s",
                             im->sum->events, bsp_err_name(rc));
    progress_draw(im, false);
    return BSP_OK;
}

/* Reaps finished chunks; with all, waits for every busy one. Returns a
 * free slot (or NULL when none and !all) and the first failure in *rc. */
static import_chunk *chunks_reap(bsp_importer *im, bool all, bsp_err *rc) {
    import_chunk *free_slot = NULL;
    *rc = BSP_OK;
    for (size_t i = 0; i < IMPORT_INFLIGHT; i++) {
        import_chunk *c = &im->chunks[i];
        pthread_mutex_lock(&im->mu);
        while (all && c->busy && !c->done)
            pthread_cond_wait(&im->cv, &im->mu);
        bool finished = c->busy && c->done;
        pthread_mutex_unlock(&im->mu);
        if (finished) {
            bsp_err r = chunk_reap(im, c);
            if (*rc == BSP_OK) *rc = r;
        }
        if (!c->busy && !free_slot) free_slot = c;
    }
    return free_slot;
}

/* A free slot, waiting for the writer when all are busy. */
static import_chunk *chunk_slot(bsp_importer *im, bsp_err *rc) {
    import_chunk *slot;
    while (!(slot = chunks_reap(im, false, rc)) && *rc == BSP_OK) {
        pthread_mutex_lock(&im->mu);
        bool any_done = false;
        for (size_t i = 0; i < IMPORT_INFLIGHT; i++)
            any_done |= im->chunks[i].done;
        if (!any_done) pthread_cond_wait(&im->cv, &im->mu);
        pthread_mutex_unlock(&im->mu);
    }
    return slot;
}

bsp_err importer_drain(bsp_importer *im) {
    bsp_err rc;
    chunks_reap(im, true, &rc);
    return rc;
}

/* Hands the current batch to the writer and goes on parsing; at most
 * IMPORT_INFLIGHT chunks are in the writer's hands at once. */
bsp_err importer_flush(bsp_importer *im) {
    if (im->nbatch == 0) return BSP_OK;
    bsp_err rc;
    import_chunk *c = chunk_slot(im, &rc);
    if (rc != BSP_OK) return rc;
    *c = (import_chunk){
        .im = im, .evs = im->batch, .n = im->nbatch, .arena = im->batch_arena, .busy = true};
    im->batch = NULL;
    im->batch_arena = NULL;
    im->nbatch = 0;
    im->sum->events += c->n;
    rc = ingest_submit(im->ing, c->evs, c->n, chunk_done, c);
    if (rc == BSP_EBUSY) { /* the queue is full of others' work: wait our turn */
        rc = ingest_submit_wait(im->ing, c->evs, c->n, &c->res);
        if (rc == BSP_OK) rc = c->res.code;
        c->res.code = rc;
        c->done = true;
    } else if (rc != BSP_OK) {
        c->res.code = rc;
        c->done = true;
    }
    if (rc != BSP_OK) {
        bsp_err ignored;
        chunks_reap(im, true, &ignored);
        return im->err->code ? im->err->code : rc;
    }
    return batch_new(im) == BSP_OK ? BSP_OK
                                   : bsp_error_set(im->err, BSP_ENOMEM, "", "out of memory");
}

bsp_err importer_add(bsp_importer *im, bsp_event *ev) {
    if (!im->batch && batch_new(im) != BSP_OK) {
        event_free(ev);
        return bsp_error_set(im->err, BSP_ENOMEM, "", "out of memory");
    }
    im->batch[im->nbatch++] = *ev;
    memset(ev, 0, sizeof *ev);
    return im->nbatch == CHUNK_EVENTS ? importer_flush(im) : BSP_OK;
}

/* --- Segment JSONL ------------------------------------------------------- */

static bool blank(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t') return false;
    return true;
}

const char *importer_next_line(bsp_importer *im, size_t *len, uint64_t *line_no) {
    const char *line;
    bool too_long;
    while ((line = reader_line(im->rd, len, &too_long))) {
        (*line_no)++;
        if (blank(line, *len)) continue;
        im->sum->rows++;
        importer_tick(im);
        if (!too_long) return line;
        bsp_error e;
        bsp_error_set(&e, BSP_ETOOBIG, "", "line longer than %d bytes", BSP_CSV_MAX_LINE);
        importer_reject(im, *line_no, &e);
    }
    return NULL;
}

/* One line: a message; bad ones are rejects, not errors. */
static bsp_err jsonl_line(bsp_importer *im, const char *line, size_t len, uint64_t line_no) {
    bsp_error e;
    bsp_error_clear(&e);
    json_arena *outer = importer_arena_enter(im);
    bsp_event ev;
    /* Spans only for trees in the batch's arena (json.h). */
    json_spans *spans = im->batch_arena ? im->spans : NULL;
    bsp_err rc = event_from_text(line, len, spans, bsp_now_ms(), &ev, &e);
    json_arena_leave(outer);
    ev.json_in_arena = im->batch_arena != NULL; /* the batch frees the tree */
    if (rc != BSP_OK) {
        importer_reject(im, line_no, &e);
        return BSP_OK;
    }
    return importer_add(im, &ev);
}

static bsp_err import_jsonl(bsp_importer *im) {
    const char *line;
    size_t len;
    uint64_t line_no = 0;
    while ((line = importer_next_line(im, &len, &line_no))) {
        bsp_err rc = jsonl_line(im, line, len, line_no);
        if (rc != BSP_OK) return rc;
    }
    return BSP_OK;
}

/* --- the run ------------------------------------------------------------- */

static void importer_done(bsp_importer *im) {
    bsp_err ignored;
    chunks_reap(im, true, &ignored);
    pthread_mutex_destroy(&im->mu);
    pthread_cond_destroy(&im->cv);
    if (im->batch) {
        for (size_t i = 0; i < im->nbatch; i++)
            event_free(&im->batch[i]);
        free(im->batch);
    }
    json_arena_free(im->batch_arena);
    json_spans_free(im->spans);
    im->batch = NULL;
    im->batch_arena = NULL;
    im->spans = NULL;
    im->nbatch = 0;
}

static bsp_err open_reader(const char *path, bsp_reader **rd, bsp_error *err) {
    bsp_err rc = reader_open(path, rd);
    if (rc == BSP_OK) return BSP_OK;
    if (rc == BSP_ENOTFOUND) return bsp_error_set(err, BSP_EIO, path, "no such file: %s", path);
    return bsp_error_set(err, rc == BSP_ENOMEM ? BSP_ENOMEM : BSP_EIO, path, "cannot open %s: %s",
                         path, bsp_err_name(rc));
}

bsp_err import_run(bsp_ingest *ing, bsp_import_format fmt, const char *path, bool progress,
                   bsp_import_summary *sum, bsp_error *err) {
    memset(sum, 0, sizeof *sum);
    bsp_error_clear(err);
    if (!ing || !path) return bsp_error_set(err, BSP_EINVAL, "", "no ingest or no path");
    bsp_importer im = {.ing = ing, .sum = sum, .err = err, .t0_ns = bsp_mono_ns()};
    im.progress = progress && isatty(STDERR_FILENO);
    bsp_err rc = open_reader(path, &im.rd, err);
    if (rc != BSP_OK) return rc;
    pthread_mutex_init(&im.mu, NULL);
    pthread_cond_init(&im.cv, NULL);
    for (size_t i = 0; i < IMPORT_INFLIGHT; i++)
        im.chunks[i].im = &im;
    /* Without the table (out of memory) lines are printed again, no worse. */
    if (fmt == BSP_IMPORT_SEGMENT_JSONL) im.spans = json_spans_new(16);
    rc = fmt == BSP_IMPORT_ONLINE_RETAIL ? import_online_retail(&im) : import_jsonl(&im);
    if (rc == BSP_OK) rc = importer_flush(&im);
    if (rc == BSP_OK) rc = importer_drain(&im);
    if (rc == BSP_OK && reader_error(im.rd) != BSP_OK)
        rc = bsp_error_set(
            err, reader_error(im.rd), path, "read failed after %" PRIu64 " rows: %s", sum->rows,
            reader_error(im.rd) == BSP_EPARSE ? "corrupt or truncated zstd data" : "I/O error");
    if (rc == BSP_OK && fmt == BSP_IMPORT_ONLINE_RETAIL) rc = online_retail_catalog(&im);
    /* Profiles reach the store in checkpoints: wait for one, so whoever
     * reads after the import sees all of it. */
    if (rc == BSP_OK && (rc = ingest_sync(ing)) != BSP_OK)
        bsp_error_set(err, rc, "", "waiting for profiles to be stored failed: %s",
                      bsp_err_name(rc));
    progress_draw(&im, true);
    importer_done(&im);
    online_retail_state_free(&im);
    reader_close(im.rd);
    sum->seconds = (double)(bsp_mono_ns() - im.t0_ns) / 1e9;
    return rc;
}
