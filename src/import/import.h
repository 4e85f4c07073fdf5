/* import.h - bulk import of history into the store through the same writer
 * as the server: Segment JSONL (one message per line) and the UCI Online
 * Retail CSV files (both releases' headers), read plain, from stdin, or
 * zstd-compressed (.zst) with libzstd; progress on a terminal and a summary.
 *
 * Online Retail mapping: each invoice becomes one Order Completed
 * (userId = CustomerID, order_id, products[], revenue = sum of
 * Quantity x UnitPrice over all its lines, currency GBP, timestamp, country);
 * invoices starting with 'C' become Order Cancelled with the cancelled amount
 * as a positive revenue; rows without a customer become anonymous orders
 * (anonymousId "guest-<invoice>"); stock codes become catalog products.
 * messageIds are derived from the file's content, so re-importing adds
 * nothing. */
#ifndef BSP_IMPORT_H
#define BSP_IMPORT_H

#include <stdio.h>

#include "core/core.h"
#include "ingest/ingest.h"

typedef enum bsp_import_format { BSP_IMPORT_SEGMENT_JSONL, BSP_IMPORT_ONLINE_RETAIL } bsp_import_format;

typedef struct bsp_import_summary {
    uint64_t rows;       /* lines or CSV rows read */
    uint64_t events;     /* events submitted */
    uint64_t accepted;   /* newly stored */
    uint64_t duplicates; /* already stored (re-import) */
    uint64_t rejects;    /* rows or lines refused */
    uint64_t products;   /* catalog products written */
    double seconds;
    char first_reject[256]; /* reason of the first reject, for the summary */
} bsp_import_summary;

/* Opens path ("-" = stdin), transparently decompressing .zst. */
typedef struct bsp_reader bsp_reader;
bsp_err reader_open(const char *path, bsp_reader **out);
/* Next line without the newline, NUL-terminated; NULL at end. *len gets its
 * length. Lines over max_len are returned truncated with *too_long = true. */
const char *reader_line(bsp_reader *r, size_t *len, bool *too_long);
uint64_t reader_bytes_in(const bsp_reader *r); /* compressed bytes consumed */
uint64_t reader_size(const bsp_reader *r);     /* file size, 0 if unknown */
bsp_err reader_error(const bsp_reader *r);
void reader_close(bsp_reader *r);

/* CSV: splits one record (RFC 4180 quoting; a quoted field may not span
 * lines in these files) into at most max_fields fields, in place. Returns
 * the field count, or -1 if quoting is broken. */
#define BSP_CSV_MAX_FIELDS 64
#define BSP_CSV_MAX_LINE (64 * 1024)
int csv_split(char *line, size_t len, char **fields, int max_fields);

/* Runs an import into an open ingest pipeline. progress: draw a progress bar
 * on stderr (when it is a terminal). */
bsp_err import_run(bsp_ingest *ing, bsp_import_format fmt, const char *path, bool progress,
                   bsp_import_summary *sum, bsp_error *err);

#endif
