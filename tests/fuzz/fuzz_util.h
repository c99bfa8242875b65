/* Shared helpers of the libFuzzer harnesses (tests/fuzz/fuzz_*.c). */
#ifndef UT_FUZZ_UTIL_H
#define UT_FUZZ_UTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"

/* The daemon's log is noise at fuzzing speed: errors only; FUZZ_LOG=1
 * adds warnings, FUZZ_LOG=3 shows everything. */
static inline void fuzz_quiet(void)
{
	const char *v = getenv("FUZZ_LOG");

	ut_log_level = v ? (enum ut_log_level)atoi(v) : UT_LOG_ERR;
}

/* A free TCP port on 127.0.0.1 (never 3260): bind port 0, read it back. */
static inline unsigned short fuzz_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(fd, (struct sockaddr *)&a, &l)) {
		perror("fuzz_free_port");
		abort();
	}
	close(fd);
	return ntohs(a.sin_port);
}

#endif
