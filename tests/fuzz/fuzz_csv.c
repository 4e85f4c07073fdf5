/* fuzz_csv.c - libFuzzer target for the import parsers: csv_split on the
 * raw input, then each line of the input as an Online Retail header and
 * data row. Checks the invariants the importer relies on: field counts in
 * range, fields inside the line, parsed numbers within their limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "import/import.h"

static void check_split(const uint8_t *data, size_t size) {
    char *line = malloc(size + 1);
    if (!line) return;
    memcpy(line, data, size);
    char *f[BSP_CSV_MAX_FIELDS];
    int n = csv_split(line, size, f, BSP_CSV_MAX_FIELDS);
    if (n == 0 || n > BSP_CSV_MAX_FIELDS) abort();
    for (int i = 0; i < n; i++) {
        if (f[i] < line || f[i] > line + size) abort();
        if (f[i] + strlen(f[i]) > line + size) abort();
    }
    free(line);
}

static void check_row(const char *text, size_t len) {
    char *line = malloc(len + 1);
    if (!line) return;
    memcpy(line, text, len);
    line[len] = '\0';
    (void)online_retail_is_header(line, len);
    bsp_or_row row;
    bsp_error err;
    bsp_error_clear(&err);
    if (online_retail_parse_row(line, len, &row, &err) == BSP_OK) {
        if (row.quantity <= -10000000 || row.quantity >= 10000000) abort();
        if (row.unit_price <= -10000000LL * BSP_OR_PRICE_SCALE ||
            row.unit_price >= 10000000LL * BSP_OR_PRICE_SCALE)
            abort();
        if (!row.invoice[0] || !row.stock_code[0]) abort();
        (void)online_retail_is_product_code(row.stock_code);
    } else if (!err.message[0]) {
        abort();
    }
    free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > BSP_CSV_MAX_LINE) return 0;
    check_split(data, size);
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        check_row(p, len);
        p += len + 1;
    }
    return 0;
}
