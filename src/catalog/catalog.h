/* catalog.h - products and their attributes: validation of products sent to
 * the admin API, the stored form, and learning products from the properties
 * of product events (Product Viewed/Added/..., Order Completed products[]).
 *
 * A product is a JSON object: id (string, required), name, category (a path
 * "Home > Lighting > Lanterns"; an array is joined with " > "), brand,
 * price (number >= 0), currency (3 letters), in_stock (bool), url, image,
 * tags (array of strings), attributes (object of free attributes), and
 * updated_at (set by Bespoke). */
#ifndef BSP_CATALOG_H
#define BSP_CATALOG_H

#include <cJSON.h>

#include "core/core.h"
#include "event/event.h"

#define BSP_PRODUCT_MAX_BYTES (16 * 1024)
#define BSP_PRODUCT_ID_MAX 200

/* Validates and normalizes a product sent by the shop. id_from_path, when not
 * NULL, is the id in the URL and must agree with the body's id (or fill it).
 * Returns a new normalized object in *out (caller owns) or an error with the
 * field's path in err->at. */
bsp_err catalog_product_from_json(const cJSON *body, const char *id_from_path, int64_t now_ms,
                                  cJSON **out, bsp_error *err);

/* Product facts found in a product event's properties (product_id or id or
 * sku; name, category, brand, price, url, image_url, currency). Calls fn for
 * each product the event mentions (one for Product Viewed, each of
 * products[] for Order Completed / cart events). fn gets a new normalized
 * object it must free. */
typedef void (*catalog_learn_fn)(void *ctx, cJSON *product);
void catalog_learn_from_event(const bsp_event *ev, catalog_learn_fn fn, void *ctx);

/* Merges learnt facts into a stored product (existing explicit values win
 * over learnt ones unless the stored one came only from events). Returns a
 * new object; either argument may be NULL. */
cJSON *catalog_merge_learnt(const cJSON *stored, const cJSON *learnt);

#endif
