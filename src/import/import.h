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
 * nothing.
 *
 * Grouping: the rows of one invoice number are one invoice and one event.
 * The files keep an invoice's rows together except where a few rows of other
 * invoices interrupt them (once in 2010-2011, some 700 times in 2009-2010,
 * never more than 6 invoices apart), so an invoice stays open until 16 newer
 * ones have started. Its messageId, "or-<invoice>-<16 hex of a hash of the
 * rows' text>", makes a re-import of the same file add nothing.
 * Revenue is summed exactly (1/10000 of a pound) over every row of the
 * invoice, product or not; 'A' (bad-debt adjustment) invoices stay Order
 * Completed with their negative revenue, so the net total matches the file.
 * products[] lists only product-like stock codes (5 digits and optional
 * letters) with a positive quantity (cancelled quantity for 'C'), and is cut
 * short (properties.products_omitted) to keep an event under
 * BSP_EVENT_MAX_BYTES. Catalog: name = first non-empty description, price =
 * latest positive unit price, currency GBP, written after the events. Rows
 * that fail to parse are rejected (counted, first reason kept) and left out.
 *
 * Segment JSONL: one message per line with its own "type"; blank lines are
 * skipped; bad lines are rejects ("line N: reason"). */
#ifndef BSP_IMPORT_H
#define BSP_IMPORT_H

#include <stdio.h>

#include "core/core.h"
#include "ingest/ingest.h"

typedef enum bsp_import_format {
    BSP_IMPORT_SEGMENT_JSONL,
    BSP_IMPORT_ONLINE_RETAIL
} bsp_import_format;

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
 * the field count, or -1 if quoting is broken (an unterminated quoted field,
 * or anything but a comma after a closing quote) or there are more than
 * max_fields fields. line[len] must be writable: it is set to NUL. A quote
 * inside an unquoted field is taken literally. */
#define BSP_CSV_MAX_FIELDS 64
#define BSP_CSV_MAX_LINE (64 * 1024)
int csv_split(char *line, size_t len, char **fields, int max_fields);

/* One parsed Online Retail row. Strings point into the line that was split
 * (trimmed of surrounding blanks); customer is "" when absent, with a
 * trailing ".0" removed. Money is in 1/10000 of a pound, exact. */
#define BSP_OR_PRICE_SCALE 10000
typedef struct bsp_or_row {
    const char *invoice;
    const char *stock_code;
    const char *description;
    const char *customer;
    const char *country;
    int64_t quantity;   /* |quantity| < 10^7 */
    int64_t unit_price; /* |price| < 10^7 pounds, at most 4 decimals */
    int64_t ts_ms;      /* InvoiceDate, UTC */
} bsp_or_row;

/* True when header (one line, any case, optional UTF-8 BOM) is the header of
 * either Online Retail release. Both have the same column order. */
bool online_retail_is_header(const char *line, size_t len);
/* Splits and parses one data row in place (line[len] must be writable). On
 * a bad row returns BSP_EPARSE with a reason in err. */
bsp_err online_retail_parse_row(char *line, size_t len, bsp_or_row *row, bsp_error *err);
/* True for stock codes that name a product: 5 digits optionally followed by
 * letters (85123A); false for POST, D, M, C2, BANK CHARGES, gift_0001_10... */
bool online_retail_is_product_code(const char *code);

/* Runs an import into an open ingest pipeline: events go in chunks of 2000
 * through ingest_submit_wait, products through ingest_put_products, and it
 * returns after ingest_sync, so profiles are stored. progress: draw a
 * progress bar on stderr (when it is a terminal). Rejected rows or lines do
 * not make it fail (see sum->rejects); failing to open or read the input
 * (BSP_EIO, BSP_EPARSE for corrupt zstd data or an unknown CSV header) or
 * the ingest does, with err filled. */
bsp_err import_run(bsp_ingest *ing, bsp_import_format fmt, const char *path, bool progress,
                   bsp_import_summary *sum, bsp_error *err);

#endif
