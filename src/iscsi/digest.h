/* CRC32C header / data digests (RFC 7143 §12.1, Castagnoli polynomial),
 * computed by ISA-L. */
#ifndef UT_ISCSI_DIGEST_H
#define UT_ISCSI_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define ISCSI_CRC_INIT 0xffffffffu

uint32_t iscsi_crc32c_update(uint32_t crc, const void *buf, size_t len);
static inline uint32_t iscsi_crc32c_final(uint32_t crc)
{
	return crc ^ 0xffffffffu;
}
static inline uint32_t iscsi_crc32c(const void *buf, size_t len)
{
	return iscsi_crc32c_final(iscsi_crc32c_update(ISCSI_CRC_INIT, buf, len));
}
/* Digests go on the wire least significant byte first. */
static inline void iscsi_digest_put(uint8_t *p, uint32_t crc)
{
	p[0] = (uint8_t)crc;
	p[1] = (uint8_t)(crc >> 8);
	p[2] = (uint8_t)(crc >> 16);
	p[3] = (uint8_t)(crc >> 24);
}
static inline uint32_t iscsi_digest_get(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

#endif
