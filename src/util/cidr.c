#include "util/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ut_cidr_parse(const char *s, struct ut_cidr *out)
{
	char buf[64], *slash, *end;
	unsigned long pfx;
	unsigned max, i;
	size_t n = s ? strlen(s) : 0;

	if (!n || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n + 1);
	memset(out, 0, sizeof(*out));
	slash = strchr(buf, '/');
	if (slash)
		*slash = 0;
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	pfx = max;
	if (slash) {
		if (!slash[1] || slash[1] < '0' || slash[1] > '9')
			return -1;
		pfx = strtoul(slash + 1, &end, 10);
		if (*end || pfx > max || end - (slash + 1) > 3)
			return -1;
	}
	out->prefix = (unsigned)pfx;
	for (i = 0; i < max / 8; i++) {
		unsigned bits = i * 8;

		if (bits >= pfx)
			out->addr[i] = 0;
		else if (pfx - bits < 8)
			out->addr[i] &= (uint8_t)(0xff << (8 - (pfx - bits)));
	}
	inet_ntop(out->family, out->addr, buf, sizeof(buf));
	snprintf(out->text, sizeof(out->text), "%s/%u", buf, out->prefix);
	return 0;
}

bool ut_cidr_match(const struct ut_cidr *c, const struct sockaddr_storage *a)
{
	const uint8_t *ip;
	unsigned full, rest;

	if (a->ss_family == AF_INET) {
		ip = (const uint8_t *)&((const struct sockaddr_in *)(const void *)a)
			     ->sin_addr;
		if (c->family != AF_INET)
			return false;
	} else if (a->ss_family == AF_INET6) {
		const struct in6_addr *a6 =
			&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr;

		ip = a6->s6_addr;
		if (c->family == AF_INET) {
			if (!IN6_IS_ADDR_V4MAPPED(a6))
				return false;
			ip += 12;
		}
	} else {
		return false;
	}
	full = c->prefix / 8;
	rest = c->prefix % 8;
	if (memcmp(ip, c->addr, full))
		return false;
	return !rest ||
	       ((ip[full] ^ c->addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

bool ut_netlist_allows(const struct ut_netlist *l,
		       const struct sockaddr_storage *a)
{
	unsigned i;

	if (!l->n)
		return true;
	for (i = 0; i < l->n; i++)
		if (ut_cidr_match(&l->v[i], a))
			return true;
	return false;
}
