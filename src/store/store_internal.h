/* store_internal.h - what the files of store/ share and nothing else sees:
 * the packing of event values (pack.c) that the LMDB store (lmdb.c) uses. */
#ifndef BSP_STORE_INTERNAL_H
#define BSP_STORE_INTERNAL_H

#include "store/store.h"

typedef struct store_packer store_packer;

/* A packer for a zstd dictionary (copied); NULL if it is not one or memory
 * is short. */
store_packer *packer_new(const void *dict, size_t len);
void packer_free(store_packer *p);
/* Whether a stored event value is packed (else it is the event's JSON). */
bool packer_is_packed(const void *val, size_t len);
/* *out (malloc'd, caller frees) = the packed form of json. */
bsp_err packer_pack(const store_packer *p, const char *json, size_t len, char **out,
                    size_t *out_len);
/* Unpacks a packed value into scratch; *out points into scratch. A value
 * that does not unpack with this dictionary, or to over 1 MB, is BSP_ESTORE. */
bsp_err packer_unpack(const store_packer *p, const void *val, size_t len, bsp_buf *scratch,
                      bsp_slice *out);
/* A dictionary of at most capacity bytes (malloc'd) trained on count
 * samples laid end to end; BSP_EINVAL when zstd finds too little to learn. */
bsp_err packer_train(const void *samples, const size_t *sizes, unsigned count, size_t capacity,
                     void **dict, size_t *dict_len);

#endif
