/* libutarget: connection and JSON-RPC framing (one request object per line,
 * one response per line, in order; docs/control-api.md "Transport"). */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/lib_internal.h"

/* The Makefile passes the configured one; programs that compile these
 * sources into themselves (docs/scripting.md) get the usual /run. */
#ifndef UTARGET_RUNSTATEDIR
#define UTARGET_RUNSTATEDIR "/run"
#endif

/* A response larger than this is not the daemon talking. */
#define UT_MAX_RESPONSE (64u << 20)

int ut_default_socket(char *buf, size_t len)
{
	const char *env = getenv("UTARGET_SOCKET"), *xr;
	int n;

	if (env && *env)
		n = snprintf(buf, len, "%s", env);
	else if (geteuid() == 0)
		n = snprintf(buf, len, UTARGET_RUNSTATEDIR "/utarget/utargetd.sock");
	else if ((xr = getenv("XDG_RUNTIME_DIR")) && *xr)
		n = snprintf(buf, len, "%s/utarget/utargetd.sock", xr);
	else /* utargetd's per-user fallback (src/daemon/main.c) */
		n = snprintf(buf, len, "/tmp/utarget-%u/utargetd.sock",
			     (unsigned)geteuid());
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

struct ut_ctx *ut_open(const char *socket_path)
{
	struct ut_ctx *ctx = calloc(1, sizeof(*ctx));
	char def[PATH_MAX];

	if (!ctx)
		return NULL;
	ctx->fd = -1;
	if (!socket_path) {
		if (ut_default_socket(def, sizeof(def)) < 0)
			def[0] = '\0';
		socket_path = def;
	}
	ctx->path = strdup(socket_path);
	if (!ctx->path) {
		free(ctx);
		return NULL;
	}
	return ctx;
}

static void ut_disconnect(struct ut_ctx *ctx)
{
	if (ctx->fd >= 0)
		close(ctx->fd);
	ctx->fd = -1;
	ctx->rlen = 0;
}

void ut_close(struct ut_ctx *ctx)
{
	if (!ctx)
		return;
	ut_disconnect(ctx);
	free(ctx->rbuf);
	free(ctx->path);
	free(ctx);
}

const char *ut_socket_path(const struct ut_ctx *ctx)
{
	return ctx->path;
}

const char *ut_last_error(const struct ut_ctx *ctx)
{
	return ctx->error.message;
}

const struct ut_error *ut_last_error_info(const struct ut_ctx *ctx)
{
	return &ctx->error;
}

int ut_fail(struct ut_ctx *ctx, int err, int rpc_code, const char *fmt, ...)
{
	va_list ap;

	ctx->error.err = err;
	ctx->error.rpc_code = rpc_code;
	va_start(ap, fmt);
	vsnprintf(ctx->error.message, sizeof(ctx->error.message), fmt, ap);
	va_end(ap);
	return err;
}

static void ut_ok(struct ut_ctx *ctx)
{
	ctx->error.err = 0;
	ctx->error.rpc_code = 0;
	ctx->error.message[0] = '\0';
}

int ut_connect(struct ut_ctx *ctx)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	int fd, err;

	if (ctx->fd >= 0)
		return 0;
	if (!ctx->path[0] || strlen(ctx->path) >= sizeof(sa.sun_path))
		return ut_fail(ctx, -ENAMETOOLONG, 0,
			       "Bad control socket path '%s'", ctx->path);
	memcpy(sa.sun_path, ctx->path, strlen(ctx->path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ut_fail(ctx, -errno, 0, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		close(fd);
		return ut_fail(ctx, err, 0,
			       "Cannot connect to utargetd at %s: %s "
			       "(is utargetd running? use -s or UTARGET_SOCKET)",
			       ctx->path, strerror(-err));
	}
	/* The daemon checks us; we check the daemon: only root or our own
	 * user may answer for the configuration. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0 &&
	    cred.uid != 0 && cred.uid != geteuid()) {
		close(fd);
		return ut_fail(ctx, -EACCES, 0,
			       "%s is served by uid %u, not root or uid %u",
			       ctx->path, (unsigned)cred.uid,
			       (unsigned)geteuid());
	}
	ctx->fd = fd;
	ctx->rlen = 0;
	return 0;
}

static int send_all(struct ut_ctx *ctx, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(ctx->fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads one line (without its '\n') into a malloc()ed string. */
static int recv_line(struct ut_ctx *ctx, char **line)
{
	size_t scanned = 0;

	for (;;) {
		char *nl = ctx->rlen > scanned ?
			memchr(ctx->rbuf + scanned, '\n', ctx->rlen - scanned) :
			NULL;
		ssize_t n;

		if (nl) {
			size_t l = (size_t)(nl - ctx->rbuf);

			*line = malloc(l + 1);
			if (!*line)
				return -ENOMEM;
			memcpy(*line, ctx->rbuf, l);
			(*line)[l] = '\0';
			memmove(ctx->rbuf, nl + 1, ctx->rlen - l - 1);
			ctx->rlen -= l + 1;
			return 0;
		}
		scanned = ctx->rlen;
		if (ctx->rlen == ctx->rcap) {
			size_t ncap = ctx->rcap ? ctx->rcap * 2 : 65536;
			char *nb;

			if (ncap > UT_MAX_RESPONSE)
				return -EMSGSIZE;
			nb = realloc(ctx->rbuf, ncap);
			if (!nb)
				return -ENOMEM;
			ctx->rbuf = nb;
			ctx->rcap = ncap;
		}
		n = recv(ctx->fd, ctx->rbuf + ctx->rlen, ctx->rcap - ctx->rlen,
			 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		ctx->rlen += (size_t)n;
	}
}

static int rpc_errno(int code)
{
	switch (code) {
	case UT_RPC_NOT_FOUND:
		return -ENOENT;
	case UT_RPC_EXISTS:
		return -EEXIST;
	case UT_RPC_REFUSED:
		return -EPERM;
	case UT_RPC_INVALID_PARAMS:
		return -EINVAL;
	case UT_RPC_METHOD_NOT_FOUND:
		return -ENOSYS;
	default:
		return -EPROTO;
	}
}

int ut_call(struct ut_ctx *ctx, const char *method, json_t *params,
	    json_t **result)
{
	json_t *req = NULL, *resp = NULL, *v;
	json_error_t jerr;
	char *text = NULL, *line = NULL;
	json_int_t id;
	int ret;

	if (result)
		*result = NULL;
	if (!method)
		return ut_fail(ctx, -EINVAL, 0, "No method given");
	ret = ut_connect(ctx);
	if (ret)
		return ret;
	id = ++ctx->next_id;
	req = json_pack("{s:s, s:I, s:s}", "jsonrpc", "2.0", "id", id,
			"method", method);
	if (!req || (params && json_object_set(req, "params", params))) {
		ret = ut_fail(ctx, -ENOMEM, 0, "Out of memory");
		goto out;
	}
	text = json_dumps(req, JSON_COMPACT);
	if (!text) {
		ret = ut_fail(ctx, -EINVAL, 0, "Cannot encode the request");
		goto out;
	}
	/* json_dumps never emits a raw newline (strings are escaped), so
	 * the line framing holds. */
	ret = send_all(ctx, text, strlen(text));
	if (!ret)
		ret = send_all(ctx, "\n", 1);
	if (ret) {
		ut_disconnect(ctx);
		ret = ut_fail(ctx, ret, 0, "Lost the connection to utargetd: %s",
			      strerror(-ret));
		goto out;
	}
	for (;;) {
		ret = recv_line(ctx, &line);
		if (ret) {
			ut_disconnect(ctx);
			if (ret == -ECONNRESET)
				ret = ut_fail(ctx, ret, 0,
					      "utargetd closed the connection");
			else
				ret = ut_fail(ctx, ret, 0,
					      "Reading utargetd's answer failed: %s",
					      strerror(-ret));
			goto out;
		}
		resp = json_loads(line, 0, &jerr);
		free(line);
		line = NULL;
		if (!resp || !json_is_object(resp)) {
			ut_disconnect(ctx);
			ret = ut_fail(ctx, -EPROTO, 0,
				      "utargetd sent a malformed answer");
			goto out;
		}
		v = json_object_get(resp, "id");
		if (json_is_integer(v) && json_integer_value(v) == id)
			break;
		if (json_is_null(v) && json_object_get(resp, "error"))
			break; /* the daemon could not read our id */
		json_decref(resp); /* an answer to an older request */
		resp = NULL;
	}
	v = json_object_get(resp, "error");
	if (v) {
		json_t *code = json_object_get(v, "code");
		json_t *msg = json_object_get(v, "message");
		int c = json_is_integer(code) ? (int)json_integer_value(code) :
						UT_RPC_INVALID_REQUEST;

		ret = ut_fail(ctx, rpc_errno(c), c, "%s",
			      json_is_string(msg) ? json_string_value(msg) :
						    "utargetd refused the request");
		goto out;
	}
	v = json_object_get(resp, "result");
	if (!v) {
		ret = ut_fail(ctx, -EPROTO, 0,
			      "utargetd's answer has no result");
		goto out;
	}
	ut_ok(ctx);
	if (result)
		*result = json_incref(v);
	ret = 0;
out:
	json_decref(resp);
	json_decref(req);
	free(text);
	return ret;
}

int ut_call_str(struct ut_ctx *ctx, const char *method,
		const char *params_json, char **result_json)
{
	json_t *params = NULL, *result = NULL;
	json_error_t jerr;
	int ret;

	if (result_json)
		*result_json = NULL;
	if (params_json) {
		params = json_loads(params_json, JSON_DECODE_ANY, &jerr);
		if (!params)
			return ut_fail(ctx, -EINVAL, 0,
				       "params are not JSON: %s", jerr.text);
	}
	ret = ut_call(ctx, method, params, result_json ? &result : NULL);
	json_decref(params);
	if (ret || !result_json)
		return ret;
	*result_json = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(result);
	if (!*result_json)
		return ut_fail(ctx, -ENOMEM, 0, "Out of memory");
	return 0;
}
