/* Content-addressed image files under a data directory, shared by catalogue backends that keep
 * images on the local file system. Layout and crash safety are described in lookalike.h. */
#ifndef LOOKALIKE_IMAGE_STORE_H
#define LOOKALIKE_IMAGE_STORE_H

#include <stddef.h>

/* Creates <dir>/images if missing. */
int image_store_init(const char *dir, char *err, size_t errlen);

/* Stores len bytes (1..LOOKALIKE_IMAGE_MAX) as <dir>/images/ab/<sha256>, unless that file is
 * already there; sha256 gets the hex hash. */
int image_store_put(const char *dir, const void *data, size_t len, char sha256[65], char *err, size_t errlen);

/* Reads <dir>/images/ab/<sha256> into a malloc'd buffer. LOOKALIKE_ENOTFOUND if absent. */
int image_store_get(const char *dir, const char *sha256, void **data, size_t *len, char *err, size_t errlen);

/* 1 if s is 64 lowercase hex digits. */
int image_store_hash_valid(const char *s);

#endif
