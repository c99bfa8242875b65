/* Network lists for initiator address ACLs (issue 21): "127.0.0.0/8",
 * "::1/128", "10.1.2.3" (= /32), "fe80::/10". A v4-mapped IPv6 source
 * (::ffff:a.b.c.d) matches IPv4 entries. */
#ifndef UT_UTIL_CIDR_H
#define UT_UTIL_CIDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define UT_NETLIST_MAX 64

struct ut_cidr {
	int family;        /* AF_INET / AF_INET6 */
	uint8_t addr[16];  /* network, host bits cleared */
	unsigned prefix;
	char text[72];     /* canonical "a.b.c.d/n", "x::/n" */
};

struct ut_netlist {
	unsigned n;        /* 0: everyone */
	struct ut_cidr v[UT_NETLIST_MAX];
};

/* Parses one entry; -1 if it is not an address with an optional /prefix
 * in range. Host bits set are cleared (10.1.2.3/8 -> 10.0.0.0/8). */
int ut_cidr_parse(const char *s, struct ut_cidr *out);
bool ut_cidr_match(const struct ut_cidr *c, const struct sockaddr_storage *a);
/* Empty list: true. */
bool ut_netlist_allows(const struct ut_netlist *l,
		       const struct sockaddr_storage *a);

#endif
