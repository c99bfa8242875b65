#include "iscsi/digest.h"

#include <isa-l/crc.h>

uint32_t iscsi_crc32c_update(uint32_t crc, const void *buf, size_t len)
{
	/* ISA-L takes an int length; digests cover at most one PDU segment
	 * (< 16 MiB) but loop anyway to stay correct for any size. */
	const unsigned char *p = buf;

	while (len) {
		int n = len > (1u << 30) ? (1 << 30) : (int)len;

		crc = crc32_iscsi((unsigned char *)p, n, crc);
		p += n;
		len -= (size_t)n;
	}
	return crc;
}
