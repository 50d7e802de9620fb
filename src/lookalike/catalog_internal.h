/* What the catalogue backends share besides the interface in lookalike.h: helpers kept in
 * catalog.c so that both backends apply the contract's rules the same way. */
#ifndef LOOKALIKE_CATALOG_INTERNAL_H
#define LOOKALIKE_CATALOG_INTERNAL_H

#include "lookalike/lookalike.h"

#include <stddef.h>
#include <stdint.h>

/* Wall-clock time in ms since the Unix epoch (created_at, updated_at). */
int64_t catalog_now_ms(void);

/* 1 when the stored product `body` (len bytes of STORED JSON) is the product *p would write:
 * the same caller-set fields and the same image. An insert of such a product is a retry of
 * one that already happened, answered with what is stored instead of LOOKALIKE_EEXIST. */
int catalog_same_product(const char *body, size_t len, const lookalike_product_t *p);

#endif
