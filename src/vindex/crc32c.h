/* CRC-32C (Castagnoli), the checksum of every snapshot section, snapshot header and WAL record.
 * Uses the SSE4.2 crc32 instruction when the CPU has it (chosen at run time) and an 8-way
 * sliced table otherwise; both give the same value. */
#ifndef VINDEX_CRC32C_H
#define VINDEX_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends `crc` (0 for a fresh checksum, or a previous result) over `len` bytes.
 * vindex_crc32c(0, "123456789", 9) == 0xE3069283. */
uint32_t vindex_crc32c(uint32_t crc, const void *buf, size_t len);

/* The portable table-driven path, exposed so tests can compare it with the hardware one. */
uint32_t vindex_crc32c_sw(uint32_t crc, const void *buf, size_t len);

#endif
