/* libutarget internals shared by client.c and api.c. */
#ifndef UT_LIB_INTERNAL_H
#define UT_LIB_INTERNAL_H

#include "utarget/utarget.h"

struct ut_ctx {
	char *path;
	int fd;
	long long next_id;
	char *rbuf;		/* bytes received, not yet consumed */
	size_t rlen, rcap;
	struct ut_error error;
};

/* Records an error; returns err. Hidden: the export map (libutarget.map)
 * publishes ut_* by pattern, and this one is not API. */
__attribute__((visibility("hidden")))
int ut_fail(struct ut_ctx *ctx, int err, int rpc_code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
