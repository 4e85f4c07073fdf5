/* retail.c - the UCI Online Retail mapping: rows grouped into invoices, each
 * invoice one Order Completed (or Order Cancelled for 'C' invoices) built as
 * a Segment message and normalized by event_from_json, and the stock codes
 * that are products collected into a catalog written once at the end.
 *
 * Money is summed exactly in 1/10000 of a pound (BSP_OR_PRICE_SCALE), so the
 * revenue of an invoice is the exact sum of Quantity x UnitPrice over all its
 * rows, products or not; 'A' (bad-debt adjustment) invoices keep their
 * negative revenue so that totals match the file. An event may hold at most
 * BSP_EVENT_MAX_BYTES, so a very large invoice lists only its first products
 * (properties.products_omitted counts the rest); its revenue stays whole.
 * Catalog products: name = first non-empty description, price = unit price
 * of the latest row with a positive price. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "import/import_int.h"

#define INVOICE_MAX 64
#define OPEN_MAX 16 /* invoices collected at once */
#define COUNTRY_MAX 100
#define PRODUCTS_BUDGET (20 * 1024) /* bytes of products[] in one event */
#define CATALOG_MAX 1000000         /* distinct product codes remembered */
#define CATALOG_CHUNK 1000          /* products per ingest_put_products */

typedef struct or_product {
    char *code; /* NULL = empty slot */
    char *name;
    int64_t price, price_ts;
} or_product;

/* One invoice being collected. */
typedef struct or_invoice {
    char invoice[INVOICE_MAX + 1];
    char customer[BSP_ID_MAX_BYTES + 1];
    char country[COUNTRY_MAX + 1];
    uint64_t first_line, hash;
    int64_t ts_ms, total;
    cJSON *products;
    size_t products_bytes, omitted;
} or_invoice;

struct or_state {
    /* Invoices still open, oldest first. The files list an invoice's rows
     * together, but now and then another invoice's rows interrupt them
     * (542806 around C542805 in the 2010-2011 file): an invoice stays open
     * until OPEN_MAX newer ones have started, so such a split joins up. */
    or_invoice open[OPEN_MAX];
    size_t open_count;
    /* the catalog, open addressing on the code's hash */
    or_product *slots;
    size_t cap, count;
};

static void copy_str(char *dst, size_t cap, const char *src) {
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* --- catalog ------------------------------------------------------------- */

static bool catalog_grow(or_state *s) {
    size_t cap = s->cap ? s->cap * 2 : 8192;
    or_product *slots = calloc(cap, sizeof *slots);
    if (!slots) return false;
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->slots[i].code) continue;
        size_t j = bsp_hash64(s->slots[i].code, strlen(s->slots[i].code)) & (cap - 1);
        while (slots[j].code)
            j = (j + 1) & (cap - 1);
        slots[j] = s->slots[i];
    }
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return true;
}

/* The slot of code, inserted if new; NULL when full or out of memory. */
static or_product *catalog_slot(or_state *s, const char *code) {
    if ((s->count + 1) * 2 > s->cap) {
        if (s->count >= CATALOG_MAX || !catalog_grow(s)) return NULL;
    }
    size_t j = bsp_hash64(code, strlen(code)) & (s->cap - 1);
    while (s->slots[j].code) {
        if (strcmp(s->slots[j].code, code) == 0) return &s->slots[j];
        j = (j + 1) & (s->cap - 1);
    }
    char *copy = strdup(code);
    if (!copy) return NULL;
    s->slots[j].code = copy;
    s->count++;
    return &s->slots[j];
}

static void catalog_note(or_state *s, const bsp_or_row *row) {
    or_product *p = catalog_slot(s, row->stock_code);
    if (!p) return; /* over the limit: the product is left out of the catalog */
    if (!p->name && row->description[0]) p->name = strdup(row->description);
    if (row->unit_price > 0 && row->ts_ms >= p->price_ts) {
        p->price = row->unit_price;
        p->price_ts = row->ts_ms;
    }
}

static cJSON *catalog_object(const or_product *p) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    bool ok = cJSON_AddStringToObject(o, "id", p->code) &&
              (!p->name || cJSON_AddStringToObject(o, "name", p->name)) &&
              cJSON_AddNumberToObject(o, "price", (double)p->price / BSP_OR_PRICE_SCALE) &&
              cJSON_AddStringToObject(o, "currency", "GBP");
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static bsp_err put_chunk(bsp_importer *im, cJSON **objs, size_t n) {
    bsp_err rc = ingest_put_products(im->ing, objs, n);
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(objs[i]);
    if (rc != BSP_OK)
        return bsp_error_set(im->err, rc, "", "writing products failed: %s", bsp_err_name(rc));
    im->sum->products += n;
    return BSP_OK;
}

bsp_err online_retail_catalog(bsp_importer *im) {
    or_state *s = im->retail;
    if (!s) return BSP_OK;
    cJSON *objs[CATALOG_CHUNK];
    size_t n = 0;
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->slots[i].code) continue;
        if (!(objs[n] = catalog_object(&s->slots[i]))) {
            for (size_t k = 0; k < n; k++)
                cJSON_Delete(objs[k]);
            return bsp_error_set(im->err, BSP_ENOMEM, "", "out of memory");
        }
        if (++n == CATALOG_CHUNK) {
            bsp_err rc = put_chunk(im, objs, n);
            n = 0;
            if (rc != BSP_OK) return rc;
        }
    }
    return n ? put_chunk(im, objs, n) : BSP_OK;
}

void online_retail_state_free(bsp_importer *im) {
    or_state *s = im->retail;
    if (!s) return;
    for (size_t i = 0; i < s->cap; i++) {
        free(s->slots[i].code);
        free(s->slots[i].name);
    }
    free(s->slots);
    for (size_t i = 0; i < s->open_count; i++)
        cJSON_Delete(s->open[i].products);
    free(s);
    im->retail = NULL;
}

/* --- invoices ------------------------------------------------------------ */

static bool add_line_item(or_invoice *inv, const bsp_or_row *row) {
    bool cancel = inv->invoice[0] == 'C';
    int64_t qty = cancel ? -row->quantity : row->quantity;
    if (qty <= 0 || !online_retail_is_product_code(row->stock_code)) return true;
    size_t cost = strlen(row->stock_code) + strlen(row->description) * 2 + 80;
    if (inv->products_bytes + cost > PRODUCTS_BUDGET) {
        inv->omitted++;
        return true;
    }
    inv->products_bytes += cost;
    cJSON *p = cJSON_CreateObject();
    if (!p) return false;
    cJSON_AddItemToArray(inv->products, p);
    return cJSON_AddStringToObject(p, "product_id", row->stock_code) &&
           (!row->description[0] || cJSON_AddStringToObject(p, "name", row->description)) &&
           cJSON_AddNumberToObject(p, "price", (double)row->unit_price / BSP_OR_PRICE_SCALE) &&
           cJSON_AddNumberToObject(p, "quantity", (double)qty);
}

static bool invoice_open(or_invoice *inv, const bsp_or_row *row, uint64_t line_no) {
    memset(inv, 0, sizeof *inv);
    copy_str(inv->invoice, sizeof inv->invoice, row->invoice);
    copy_str(inv->country, sizeof inv->country, row->country);
    inv->first_line = line_no;
    inv->hash = 0x9E3779B97F4A7C15ull;
    inv->ts_ms = row->ts_ms;
    inv->products = cJSON_CreateArray();
    return inv->products != NULL;
}

/* Adds a row to an open invoice; false when its money overflows. */
static bool invoice_add(or_invoice *inv, const bsp_or_row *row, uint64_t row_hash) {
    int64_t amount;
    if (__builtin_mul_overflow(row->quantity, row->unit_price, &amount) ||
        __builtin_add_overflow(inv->total, amount, &amount))
        return false;
    inv->total = amount;
    inv->hash = (inv->hash ^ row_hash) * 0x100000001B3ull + 1;
    if (!inv->customer[0] && row->customer[0])
        copy_str(inv->customer, sizeof inv->customer, row->customer);
    return true;
}

/* The Segment message of an invoice; takes its products array. */
static cJSON *invoice_message(or_invoice *inv) {
    bool cancel = inv->invoice[0] == 'C';
    char mid[INVOICE_MAX + 32], ts[40], anon[INVOICE_MAX + 8];
    snprintf(mid, sizeof mid, "or-%s-%016" PRIx64, inv->invoice, inv->hash);
    bsp_time_format(inv->ts_ms, ts, sizeof ts);
    cJSON *products = inv->products;
    inv->products = NULL;
    cJSON *m = cJSON_CreateObject(), *props = cJSON_CreateObject(), *ctx = cJSON_CreateObject();
    cJSON *loc = cJSON_CreateObject();
    if (!m || !props || !ctx || !loc || !products) {
        cJSON_Delete(m);
        cJSON_Delete(props);
        cJSON_Delete(ctx);
        cJSON_Delete(loc);
        cJSON_Delete(products);
        return NULL;
    }
    cJSON_AddItemToObject(m, "properties", props);
    cJSON_AddItemToObject(m, "context", ctx);
    cJSON_AddItemToObject(ctx, "location", loc);
    cJSON_AddItemToObject(props, "products", products);
    cJSON_AddStringToObject(m, "type", "track");
    cJSON_AddStringToObject(m, "event", cancel ? "Order Cancelled" : "Order Completed");
    cJSON_AddStringToObject(m, "messageId", mid);
    if (inv->customer[0]) {
        cJSON_AddStringToObject(m, "userId", inv->customer);
    } else {
        snprintf(anon, sizeof anon, "guest-%s", inv->invoice);
        cJSON_AddStringToObject(m, "anonymousId", anon);
    }
    cJSON_AddStringToObject(m, "timestamp", ts);
    cJSON_AddStringToObject(props, "order_id", inv->invoice);
    double revenue = (double)(cancel ? -inv->total : inv->total) / BSP_OR_PRICE_SCALE;
    cJSON_AddNumberToObject(props, "revenue", revenue);
    cJSON_AddStringToObject(props, "currency", "GBP");
    if (inv->omitted) cJSON_AddNumberToObject(props, "products_omitted", (double)inv->omitted);
    if (inv->country[0]) cJSON_AddStringToObject(loc, "country", inv->country);
    return m;
}

/* Emits the oldest open invoice as one event. */
static bsp_err invoice_close_oldest(bsp_importer *im) {
    or_state *s = im->retail;
    if (s->open_count == 0) return BSP_OK;
    or_invoice inv = s->open[0];
    memmove(&s->open[0], &s->open[1], (s->open_count - 1) * sizeof s->open[0]);
    s->open_count--;
    cJSON *msg = invoice_message(&inv);
    if (!msg) return bsp_error_set(im->err, BSP_ENOMEM, "", "out of memory");
    bsp_event ev = {0};
    bsp_error e;
    bsp_error_clear(&e);
    bsp_err rc = event_from_json(msg, BSP_EV_TRACK, NULL, NULL, bsp_now_ms(), "", &ev, &e);
    if (rc == BSP_ENOMEM) return bsp_error_set(im->err, rc, "", "out of memory");
    if (rc != BSP_OK) {
        importer_reject(im, inv.first_line, &e);
        return BSP_OK;
    }
    return importer_add(im, &ev);
}

/* The open invoice a row belongs to, opening one (and closing the oldest
 * when all slots are taken) if needed. *fresh tells whether it is new. */
static bsp_err invoice_for(bsp_importer *im, const bsp_or_row *row, uint64_t line_no,
                           or_invoice **out, bool *fresh) {
    or_state *s = im->retail;
    for (size_t i = s->open_count; i-- > 0;) {
        if (strcmp(s->open[i].invoice, row->invoice) == 0) {
            *out = &s->open[i];
            *fresh = false;
            return BSP_OK;
        }
    }
    if (s->open_count == OPEN_MAX) {
        bsp_err rc = invoice_close_oldest(im);
        if (rc != BSP_OK) return rc;
    }
    or_invoice *inv = &s->open[s->open_count];
    if (!invoice_open(inv, row, line_no))
        return bsp_error_set(im->err, BSP_ENOMEM, "", "out of memory");
    s->open_count++;
    *out = inv;
    *fresh = true;
    return BSP_OK;
}

/* Forgets the newest open invoice (its only row was refused). */
static void invoice_drop_newest(or_state *s) {
    s->open_count--;
    cJSON_Delete(s->open[s->open_count].products);
}

/* --- rows ---------------------------------------------------------------- */

static bsp_err retail_row(bsp_importer *im, char *line, size_t len, uint64_t line_no) {
    or_state *s = im->retail;
    uint64_t row_hash = bsp_hash64(line, len);
    bsp_or_row row;
    bsp_error e;
    bsp_error_clear(&e);
    if (online_retail_parse_row(line, len, &row, &e) != BSP_OK) {
        importer_reject(im, line_no, &e);
        return BSP_OK;
    }
    or_invoice *inv = NULL;
    bool fresh = false;
    bsp_err rc = invoice_for(im, &row, line_no, &inv, &fresh);
    if (rc != BSP_OK) return rc;
    if (!invoice_add(inv, &row, row_hash)) {
        bsp_error_set(&e, BSP_EPARSE, "", "amount overflows the invoice total");
        importer_reject(im, line_no, &e);
        if (fresh) invoice_drop_newest(s);
        return BSP_OK;
    }
    if (!add_line_item(inv, &row)) return bsp_error_set(im->err, BSP_ENOMEM, "", "out of memory");
    if (online_retail_is_product_code(row.stock_code)) catalog_note(s, &row);
    return BSP_OK;
}

static bsp_err read_header(bsp_importer *im) {
    size_t len;
    bool too_long;
    const char *line = reader_line(im->rd, &len, &too_long);
    if (line && online_retail_is_header(line, len)) return BSP_OK;
    if (reader_error(im->rd) != BSP_OK)
        return bsp_error_set(im->err, reader_error(im->rd), "line 1", "cannot read the header");
    return bsp_error_set(im->err, BSP_EPARSE, "line 1",
                         "not an Online Retail CSV: the header must be "
                         "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,"
                         "CustomerID,Country or Invoice,StockCode,Description,Quantity,"
                         "InvoiceDate,Price,Customer ID,Country");
}

bsp_err import_online_retail(bsp_importer *im) {
    or_state *s = calloc(1, sizeof *s);
    if (!s) return bsp_error_set(im->err, BSP_ENOMEM, "", "out of memory");
    im->retail = s;
    if (!catalog_grow(s)) return bsp_error_set(im->err, BSP_ENOMEM, "", "out of memory");
    bsp_err rc = read_header(im);
    uint64_t line_no = 1;
    const char *line;
    size_t len;
    while (rc == BSP_OK && (line = importer_next_line(im, &len, &line_no)))
        rc = retail_row(im, (char *)line, len, line_no);
    while (rc == BSP_OK && s->open_count)
        rc = invoice_close_oldest(im);
    return rc;
}
