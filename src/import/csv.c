/* csv.c - RFC 4180 field splitting and the parser of one UCI Online Retail
 * row (both releases): exact decimal money, integer quantities, dates, and
 * which stock codes are products. Kept free of I/O and of the ingest path so
 * the fuzzer and the unit tests can drive it directly. */
#include "import/import.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* Splits a quoted field starting at *p (just after the opening quote):
 * unescapes "" in place and leaves *p after the closing quote. */
static bool split_quoted(char **p, char *end, char **field) {
    char *r = *p, *w = *p;
    *field = w;
    for (;;) {
        if (r >= end) return false; /* unterminated */
        if (*r == '"') {
            if (r + 1 < end && r[1] == '"') {
                *w++ = '"';
                r += 2;
                continue;
            }
            r++;
            break;
        }
        *w++ = *r++;
    }
    if (r < end && *r != ',') return false; /* text after the closing quote */
    *w = '\0';
    *p = r;
    return true;
}

int csv_split(char *line, size_t len, char **fields, int max_fields) {
    char *p = line, *end = line + len;
    int n = 0;
    *end = '\0';
    for (;;) {
        if (n >= max_fields) return -1;
        if (p < end && *p == '"') {
            p++;
            if (!split_quoted(&p, end, &fields[n])) return -1;
        } else {
            fields[n] = p;
            char *comma = memchr(p, ',', (size_t)(end - p));
            p = comma ? comma : end;
        }
        n++;
        if (p >= end) break;
        *p++ = '\0';    /* the comma */
        if (p == end) { /* a trailing comma: one more, empty field */
            if (n >= max_fields) return -1;
            fields[n++] = p;
            break;
        }
    }
    return n;
}

/* --- Online Retail ------------------------------------------------------- */

enum { OR_INVOICE, OR_STOCK, OR_DESC, OR_QTY, OR_DATE, OR_PRICE, OR_CUSTOMER, OR_COUNTRY, OR_N };

static const char *const or_header_2011[OR_N] = {"InvoiceNo",  "StockCode",   "Description",
                                                 "Quantity",   "InvoiceDate", "UnitPrice",
                                                 "CustomerID", "Country"};
static const char *const or_header_ii[OR_N] = {"Invoice",     "StockCode",   "Description",
                                               "Quantity",    "InvoiceDate", "Price",
                                               "Customer ID", "Country"};

#define MAX_QTY 10000000LL                          /* exclusive */
#define MAX_PRICE (10000000LL * BSP_OR_PRICE_SCALE) /* exclusive, scaled */
#define MAX_FIELD_ID 64                             /* invoice, stock code */

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

static bool header_matches(char **f, const char *const *names) {
    for (int i = 0; i < OR_N; i++)
        if (strcasecmp(trim(f[i]), names[i]) != 0) return false;
    return true;
}

bool online_retail_is_header(const char *line, size_t len) {
    if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3;
        len -= 3;
    }
    if (len > 1024) return false;
    char copy[1025];
    memcpy(copy, line, len);
    char *f[BSP_CSV_MAX_FIELDS];
    if (csv_split(copy, len, f, BSP_CSV_MAX_FIELDS) != OR_N) return false;
    return header_matches(f, or_header_2011) || header_matches(f, or_header_ii);
}

/* An optionally signed integer below limit in absolute value. */
static bool parse_int(const char *s, int64_t limit, int64_t *out) {
    bool neg = *s == '-';
    if (*s == '-' || *s == '+') s++;
    if (!isdigit((unsigned char)*s)) return false;
    int64_t v = 0;
    for (; isdigit((unsigned char)*s); s++) {
        v = v * 10 + (*s - '0');
        if (v >= limit) return false;
    }
    if (*s) return false;
    *out = neg ? -v : v;
    return true;
}

/* A decimal number ("2.55", "-11062.06", ".5", "3.") scaled by
 * BSP_OR_PRICE_SCALE; more decimals than the scale holds must be zeros. */
static bool parse_money(const char *s, int64_t *out) {
    bool neg = *s == '-';
    if (*s == '-' || *s == '+') s++;
    int64_t v = 0;
    int digits = 0, decimals = -1;
    for (; *s; s++) {
        if (*s == '.' && decimals < 0) {
            decimals = 0;
            continue;
        }
        if (!isdigit((unsigned char)*s)) return false;
        digits++;
        if (decimals >= 0 && decimals >= 4) {
            if (*s != '0') return false;
            continue;
        }
        v = v * 10 + (*s - '0');
        if (decimals >= 0) decimals++;
        if (v >= MAX_PRICE) return false;
    }
    if (digits == 0) return false;
    for (int d = decimals < 0 ? 0 : decimals; d < 4; d++)
        v *= 10;
    if (v >= MAX_PRICE) return false;
    *out = neg ? -v : v;
    return true;
}

static bool valid_id(const char *s, size_t max) {
    size_t n = strlen(s);
    if (n == 0 || n > max) return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20) return false;
    return true;
}

static bsp_err bad(bsp_error *err, const char *fmt, const char *what) {
    return bsp_error_set(err, BSP_EPARSE, "", fmt, what);
}

bsp_err online_retail_parse_row(char *line, size_t len, bsp_or_row *row, bsp_error *err) {
    char *f[BSP_CSV_MAX_FIELDS];
    int n = csv_split(line, len, f, BSP_CSV_MAX_FIELDS);
    if (n < 0) return bsp_error_set(err, BSP_EPARSE, "", "broken CSV quoting");
    if (n != OR_N) return bsp_error_set(err, BSP_EPARSE, "", "%d fields, expected 8", n);
    for (int i = 0; i < OR_N; i++)
        f[i] = trim(f[i]);
    memset(row, 0, sizeof *row);
    row->invoice = f[OR_INVOICE];
    row->stock_code = f[OR_STOCK];
    row->description = f[OR_DESC];
    row->country = f[OR_COUNTRY];
    if (!valid_id(row->invoice, MAX_FIELD_ID)) return bad(err, "bad invoice number%s", "");
    if (!valid_id(row->stock_code, MAX_FIELD_ID)) return bad(err, "bad stock code%s", "");
    if (!parse_int(f[OR_QTY], MAX_QTY, &row->quantity))
        return bad(err, "bad quantity \"%.40s\"", f[OR_QTY]);
    if (!parse_money(f[OR_PRICE], &row->unit_price))
        return bad(err, "bad unit price \"%.40s\"", f[OR_PRICE]);
    if (!bsp_time_parse(f[OR_DATE], &row->ts_ms))
        return bad(err, "bad invoice date \"%.40s\"", f[OR_DATE]);
    char *cust = f[OR_CUSTOMER];
    size_t cl = strlen(cust);
    if (cl > 2 && strcmp(cust + cl - 2, ".0") == 0) cust[cl - 2] = '\0';
    if (*cust && !valid_id(cust, BSP_ID_MAX_BYTES))
        return bad(err, "bad customer id \"%.40s\"", cust);
    row->customer = cust;
    return BSP_OK;
}

bool online_retail_is_product_code(const char *code) {
    for (int i = 0; i < 5; i++)
        if (!isdigit((unsigned char)code[i])) return false;
    for (const char *p = code + 5; *p; p++)
        if (!isalpha((unsigned char)*p)) return false;
    return true;
}
