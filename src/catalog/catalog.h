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
 * field's path in err->at ("price", "tags[2]", "category[1]").
 *
 * id is a non-empty string of at most BSP_PRODUCT_ID_MAX bytes (a number is
 * a wrong type here). A body that is not an object is BSP_EINVAL; a wrong
 * type or value BSP_ETYPE; a normalized product over BSP_PRODUCT_MAX_BYTES
 * BSP_ETOOBIG. currency is uppercased; null fields are dropped; a repeated
 * key keeps its first value; updated_at is always now_ms (ISO); unknown
 * top-level fields move under attributes (explicit attributes win). */
bsp_err catalog_product_from_json(const cJSON *body, const char *id_from_path, int64_t now_ms,
                                  cJSON **out, bsp_error *err);

/* Product facts found in a product event's properties (product_id or id or
 * sku; name, category, brand, price, url, image_url, currency). Calls fn for
 * each product the event mentions (one for Product Viewed, each of
 * products[] for Order Completed / cart events). fn gets a new normalized
 * object it must free.
 *
 * Single-product events: Product Viewed, Product Clicked, Product Added,
 * Product Removed, Product Added to Wishlist. products[] events: Order
 * Completed, Order Updated, Checkout Started, Cart Viewed, Order Refunded,
 * Order Cancelled (names compared ignoring case). Being sent by browsers,
 * values are taken leniently: numeric ids become strings, a numeric string
 * price is a price, the order's currency applies to products without one,
 * and a bad value is skipped rather than an error; a product with no usable
 * id is skipped. Learnt products carry "source":"events" and updated_at =
 * the event's time. */
typedef void (*catalog_learn_fn)(void *ctx, cJSON *product);
void catalog_learn_from_event(const bsp_event *ev, catalog_learn_fn fn, void *ctx);

/* A non-zero hash of everything catalog_learn_from_event would learn from
 * ev but the time it was seen: events with equal hashes teach the same
 * facts. 0 when ev teaches nothing. Reads ev's properties only, without
 * building the products, so a caller can skip events it has learnt from
 * before cheaply. */
uint64_t catalog_event_facts(const bsp_event *ev);

/* Merges learnt facts into a stored product (existing explicit values win
 * over learnt ones unless the stored one came only from events, i.e. has
 * "source":"events"; then learnt values replace them). A shop's product
 * never gains "source"; its updated_at moves to the learnt one only when a
 * field was added. Returns a new object; either argument may be NULL (both
 * NULL, or out of memory: NULL). */
cJSON *catalog_merge_learnt(const cJSON *stored, const cJSON *learnt);

#endif
