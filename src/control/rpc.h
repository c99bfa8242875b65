/* JSON-RPC 2.0 control server on a UNIX socket (docs/control-api.md). */
#ifndef UT_CONTROL_RPC_H
#define UT_CONTROL_RPC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/loop.h"

#define RPC_PARSE_ERROR -32700
#define RPC_INVALID_REQUEST -32600
#define RPC_METHOD_NOT_FOUND -32601
#define RPC_INVALID_PARAMS -32602
#define RPC_REFUSED -32000
#define RPC_NOT_FOUND -32001
#define RPC_EXISTS -32002
#define RPC_CONFLICT -32003	/* if_version is stale */

struct rpc_error {
	int code;
	char message[1024];
};

typedef json_t *(*rpc_fn)(json_t *params, struct rpc_error *e);

struct rpc_method {
	const char *name;
	rpc_fn fn;
	bool reads;	/* never changes the configuration */
};

/* Bumped by every configuration change (a successful method that is not
 * .reads, a SIGHUP reload): what a client's optional if_version compares
 * with, so a change based on a stale read is refused, not applied. Under
 * the fabric lock. */
extern uint64_t ctl_config_version;

/* The methods (table in ops.c, methods in ops_KIND.c). */
extern const struct rpc_method ctl_methods[];

/* Daemon settings the methods need. */
struct ctl_settings {
	char config_file[4096];
	unsigned max_backup_files;
};
extern struct ctl_settings ctl_settings;

int ctl_rpc_start(struct io_loop *loop, const char *path, char *err,
		  size_t errlen);
void ctl_rpc_stop(void);
/* Runs one request (a parsed JSON object); returns the response or NULL
 * for a notification. Used by the server and by tests / fuzzers. */
json_t *ctl_rpc_handle(json_t *req);

#endif
