/* import_int.h - private to src/import: the state of one import run shared
 * by the generic driver (import.c) and the Online Retail mapping
 * (retail.c). Nothing outside this folder includes it. */
#ifndef BSP_IMPORT_INT_H
#define BSP_IMPORT_INT_H

#include <pthread.h>

#include "import/import.h"
#include "json/json.h"

typedef struct or_state or_state;
typedef struct bsp_importer bsp_importer;

/* A chunk of events the writer is working on; the importer parses the next
 * ones meanwhile, and frees these on its own thread once they are stored. */
#define IMPORT_INFLIGHT 4
typedef struct import_chunk {
    bsp_importer *im;
    bsp_event *evs;
    size_t n;
    json_arena *arena; /* the events' trees (NULL: malloc'd one by one) */
    bool busy;         /* submitted, not yet reaped */
    bool done;         /* the writer called back */
    bsp_ingest_result res;
} import_chunk;

struct bsp_importer {
    bsp_ingest *ing;
    bsp_reader *rd;
    bsp_import_summary *sum;
    bsp_error *err;
    bool progress;
    uint64_t t0_ns, last_draw_ns;
    bsp_event *batch; /* malloc'd, CHUNK_EVENTS long; moves to ingest */
    size_t nbatch;
    json_arena *batch_arena; /* the batch's trees; moves with it */
    json_spans *spans;       /* where a JSONL line's objects sit in it (event_from_text) */
    or_state *retail;        /* Online Retail state, NULL otherwise */
    import_chunk chunks[IMPORT_INFLIGHT];
    pthread_mutex_t mu; /* guards chunks[].done and .res */
    pthread_cond_t cv;
};

/* Makes the current batch's arena the calling thread's, so the trees of the
 * events made until importer_add are freed with the batch at once (not
 * node by node); returns what json_arena_leave wants back. */
json_arena *importer_arena_enter(bsp_importer *im);
/* Queues one event (its contents move into the batch, *ev is zeroed);
 * submits the batch when full. Errors are filled into im->err. An event made
 * inside importer_arena_enter must have json_in_arena set. */
bsp_err importer_add(bsp_importer *im, bsp_event *ev);
bsp_err importer_flush(bsp_importer *im);
/* Waits until every submitted chunk is stored; the first failure, if any. */
bsp_err importer_drain(bsp_importer *im);
void importer_reject(bsp_importer *im, uint64_t line_no, const bsp_error *e);
void importer_tick(bsp_importer *im);
/* The next non-blank line, counted as a row (progress drawn); lines over
 * BSP_CSV_MAX_LINE are rejected and skipped. *line_no counts every line
 * read. NULL at the end (or on a read error: see reader_error). */
const char *importer_next_line(bsp_importer *im, size_t *len, uint64_t *line_no);

bsp_err import_online_retail(bsp_importer *im);
/* Writes the products collected by import_online_retail. */
bsp_err online_retail_catalog(bsp_importer *im);
void online_retail_state_free(bsp_importer *im);

#endif
