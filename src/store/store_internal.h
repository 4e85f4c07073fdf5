/* store_internal.h - what the files of store/ share and nothing else sees:
 * the packing of event values (pack.c) that the LMDB store (lmdb.c) uses. */
#ifndef BSP_STORE_INTERNAL_H
#define BSP_STORE_INTERNAL_H

#include "store/store.h"

typedef struct store_packer store_packer;

/* A packer for a zstd dictionary (copied; LZ4 frames use it too); NULL if it is not one or memory
 * is short. */
store_packer *packer_new(const void *dict, size_t len);
void packer_free(store_packer *p);
/* Whether a stored event value is packed, alone or in a shared frame (else
 * it is the event's JSON); whether it is a member of a shared frame. */
bool packer_is_packed(const void *val, size_t len);
bool packer_is_shared(const void *val, size_t len);
/* *out (malloc'd, caller frees) = the packed form of json: with zstd when
 * small, else an LZ4 frame of one that json's value holds. */
bsp_err packer_pack(const store_packer *p, bool small, const char *json, size_t len, char **out,
                    size_t *out_len);
/* Unpacks a packed value into scratch; *out points into scratch. A value
 * that does not unpack with this dictionary, or to over 1 MB, is BSP_ESTORE. */
bsp_err packer_unpack(const store_packer *p, const void *val, size_t len, bsp_buf *scratch,
                      bsp_slice *out);
/* LEB128 varints: put returns the bytes written (at most 10); get the bytes
 * read, 0 when p does not hold a whole one before end. */
size_t store_varint_put(uint8_t *out, uint64_t v);
size_t store_varint_get(const uint8_t *p, const uint8_t *end, uint64_t *v);

/* Shared frames (store.h, store_event_pack_frame): with zstd when small,
 * else with LZ4. */
bsp_err packer_pack_frame(const store_packer *p, bool small, const char *const *texts,
                          const size_t *lens, size_t n, char **out, size_t *out_len);
/* The value of member index (see store_frame_value). */
void packer_frame_value(char *frame, size_t frame_len, uint64_t back, uint32_t index, char *ref,
                        const char **val, size_t *val_len);
/* A member's value taken apart: back (0: it holds the frame, which is then
 * frame[0, frame_len)) and its index. False if it is not a well-formed one. */
typedef struct shared_parts {
    uint8_t codec; /* the value's first byte: which codec packed the frame */
    uint64_t back;
    uint32_t index;
    const char *frame;
    size_t frame_len;
} shared_parts;
bool packer_shared_parts(const void *val, size_t len, shared_parts *out);
/* The content of the frame a holder's parts h give into content
 * (BSP_ESTORE if it does not unpack or its sum differs), and the text of
 * member index of that content (pointing into it). */
bsp_err packer_unpack_frame(const store_packer *p, const shared_parts *h, bsp_buf *content);
bsp_err packer_frame_member(const bsp_buf *content, uint32_t index, bsp_slice *out);

/* A dictionary of at most capacity bytes (malloc'd) trained on count
 * samples laid end to end; BSP_EINVAL when zstd finds too little to learn. */
bsp_err packer_train(const void *samples, const size_t *sizes, unsigned count, size_t capacity,
                     void **dict, size_t *dict_len);

#endif
