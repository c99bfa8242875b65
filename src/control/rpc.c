/* The control socket: mode 0600, peer uid checked with SO_PEERCRED,
 * requests capped at 1 MiB, one JSON-RPC object per line, accept backing
 * off on EMFILE (OpenBSD control.c). Runs on the control thread. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/group.h"
#include "control/rpc.h"
#include "iscsi/target.h"
#include "util/list.h"
#include "util/log.h"

#define RPC_MAX_REQUEST (1u << 20)

struct ctl_settings ctl_settings = { .max_backup_files = 10 };

struct rpc_client {
	struct io_handler h;
	struct list_head link;
	char *in;
	size_t inlen, incap;
	char *out;
	size_t outlen, outoff, outcap;
	bool closing;
};

static struct io_handler lsock = { .fd = -1 };
static struct io_loop *rpc_loop;
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static struct list_head clients = LIST_HEAD_INIT(clients);
static struct io_timer accept_resume;

uint64_t ctl_config_version;

static json_t *error_obj(json_t *id, int code, const char *msg)
{
	return json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id",
			 id ? id : json_null(), "error", "code", code,
			 "message", msg);
}

static const struct rpc_method *find_method(const char *name)
{
	const struct rpc_method *m;

	for (m = ctl_methods; m->name; m++)
		if (!strcmp(m->name, name))
			return m;
	return NULL;
}

json_t *ctl_rpc_handle(json_t *req)
{
	json_t *id, *params, *result;
	const char *method;
	const struct rpc_method *m;
	struct rpc_error e = { 0 };
	json_t *iv;
	uint64_t want = 0;

	if (!json_is_object(req))
		return error_obj(NULL, RPC_INVALID_REQUEST,
				 "Invalid request: not an object");
	id = json_object_get(req, "id");
	method = json_string_value(json_object_get(req, "method"));
	if (!method)
		return error_obj(id, RPC_INVALID_REQUEST,
				 "Invalid request: no method");
	m = find_method(method);
	if (!m)
		return id ? error_obj(id, RPC_METHOD_NOT_FOUND, "Method not found") :
			    NULL;
	params = json_object_get(req, "params");
	if (params && !json_is_object(params))
		return error_obj(id, RPC_INVALID_PARAMS,
				 "params must be an object");
	if (!params)
		params = json_object();
	else
		params = json_copy(params);	/* if_version is taken out */
	if (!params)
		return error_obj(id, RPC_REFUSED, "out of memory");
	iv = json_object_get(params, "if_version");
	if (iv && (!json_is_integer(iv) || json_integer_value(iv) < 0)) {
		json_decref(params);
		return error_obj(id, RPC_INVALID_PARAMS,
				 "if_version must be a configuration version "
				 "(a non-negative integer)");
	}
	if (iv) {
		want = (uint64_t)json_integer_value(iv);
		json_object_del(params, "if_version");
	}
	/* Model changes happen under the fabric lock, so a login on a
	 * worker sees a configuration either before or after a change.
	 * Clients are served one request at a time: a change is whole
	 * before the next one starts. */
	pthread_mutex_lock(&iscsi_fabric.lock);
	if (iv && want != ctl_config_version) {
		e.code = RPC_CONFLICT;
		snprintf(e.message, sizeof(e.message),
			 "The configuration changed since version %llu (it is "
			 "now %llu): read it again and retry",
			 (unsigned long long)want,
			 (unsigned long long)ctl_config_version);
		result = NULL;
	} else {
		/* in a gateway group a change goes through the group's
		 * document first (control/group.c) */
		if (!m->reads && ctl_group_active())
			result = ctl_group_run(m, params, &e);
		else
			result = m->fn(params, &e);
		if (result && !m->reads)
			ctl_config_version++;
	}
	/* A client that gave if_version learns the version its call left,
	 * to chain its next change on. */
	if (result && iv && json_is_object(result))
		json_object_set_new(result, "config_version",
				    json_integer((json_int_t)ctl_config_version));
	pthread_mutex_unlock(&iscsi_fabric.lock);
	json_decref(params);
	if (!id) {
		json_decref(result);
		return NULL;
	}
	if (!result)
		return error_obj(id, e.code ? e.code : RPC_REFUSED,
				 e.message[0] ? e.message : "Operation failed");
	return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id,
			 "result", result);
}

static void client_free(struct rpc_client *c)
{
	list_del(&c->link);
	io_loop_del(rpc_loop, &c->h);
	close(c->h.fd);
	free(c->in);
	free(c->out);
	free(c);
}

static int out_append(struct rpc_client *c, const char *s, size_t n)
{
	if (c->outlen + n + 1 > c->outcap) {
		size_t cap = (c->outlen + n + 1) * 2;
		char *p = realloc(c->out, cap);

		if (!p)
			return -ENOMEM;
		c->out = p;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, s, n);
	c->outlen += n;
	c->out[c->outlen++] = '\n';
	return 0;
}

/* Returns -1 when the client is gone. */
static int client_flush(struct rpc_client *c)
{
	while (c->outoff < c->outlen) {
		ssize_t w = send(c->h.fd, c->out + c->outoff,
				 c->outlen - c->outoff, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				io_loop_mod(rpc_loop, &c->h, EPOLLIN | EPOLLOUT);
				return 0;
			}
			client_free(c);
			return -1;
		}
		c->outoff += (size_t)w;
	}
	c->outoff = c->outlen = 0;
	io_loop_mod(rpc_loop, &c->h, EPOLLIN);
	if (c->closing) {
		client_free(c);
		return -1;
	}
	return 0;
}

static void handle_line(struct rpc_client *c, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *req, *resp;
	char *text;

	if (len == 0)
		return;
	/* JSON_DECODE_ANY: "42" is JSON but not a request (-32600), not a
	 * parse error */
	req = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
			 &jerr);
	if (!req)
		resp = error_obj(NULL, RPC_PARSE_ERROR, "Parse error");
	else
		resp = ctl_rpc_handle(req);
	json_decref(req);
	if (!resp)
		return;
	text = json_dumps(resp, JSON_COMPACT);
	json_decref(resp);
	if (!text || out_append(c, text, strlen(text)))
		c->closing = true;
	free(text);
}

static void client_event(struct io_handler *h, uint32_t events)
{
	struct rpc_client *c = container_of(h, struct rpc_client, h);
	char *nl;
	size_t start = 0;

	if (events & EPOLLOUT) {
		if (client_flush(c))
			return;
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (;;) {
		ssize_t r;

		if (c->incap - c->inlen < 4096) {
			size_t cap = c->incap ? c->incap * 2 : 8192;
			char *p;

			if (cap > RPC_MAX_REQUEST + 4096) {
				log_warn("control: request over %u bytes, closing",
					 RPC_MAX_REQUEST);
				client_free(c);
				return;
			}
			p = realloc(c->in, cap);
			if (!p) {
				client_free(c);
				return;
			}
			c->in = p;
			c->incap = cap;
		}
		r = recv(h->fd, c->in + c->inlen, c->incap - c->inlen, 0);
		if (r == 0) {
			c->closing = true;
			break;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				c->closing = true;
			break;
		}
		c->inlen += (size_t)r;
	}
	while ((nl = memchr(c->in + start, '\n', c->inlen - start))) {
		handle_line(c, c->in + start, (size_t)(nl - (c->in + start)));
		start = (size_t)(nl - c->in) + 1;
	}
	memmove(c->in, c->in + start, c->inlen - start);
	c->inlen -= start;
	if (c->inlen > RPC_MAX_REQUEST) {
		log_warn("control: request over %u bytes, closing",
			 RPC_MAX_REQUEST);
		c->closing = true;
		c->outlen = c->outoff = 0;
	}
	client_flush(c);
}

static void accept_resume_fn(struct io_timer *t)
{
	(void)t;
	io_loop_mod(rpc_loop, &lsock, EPOLLIN);
}

static void accept_event(struct io_handler *h, uint32_t events)
{
	(void)events;
	for (;;) {
		int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct ucred cred;
		socklen_t cl = sizeof(cred);
		struct rpc_client *c;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				log_warn("control: accept: %s; pausing",
					 strerror(errno));
				io_loop_mod(rpc_loop, &lsock, 0);
				io_timer_arm(rpc_loop, &accept_resume, 1000);
			}
			return;
		}
		/* Only root and the daemon's own user may configure it. */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) ||
		    (cred.uid != 0 && cred.uid != geteuid())) {
			log_warn("control: refused a client with uid %d",
				 (int)cred.uid);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->h.fd = fd;
		c->h.fn = client_event;
		list_add_tail(&c->link, &clients);
		if (io_loop_add(rpc_loop, &c->h, EPOLLIN))
			client_free(c);
	}
}

static int mkdir_parent(const char *path)
{
	char buf[PATH_MAX], *p;

	snprintf(buf, sizeof(buf), "%s", path);
	p = dirname(buf);
	if (!strcmp(p, ".") || !strcmp(p, "/"))
		return 0;
	for (char *q = p + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = 0;
		mkdir(p, 0700);
		*q = '/';
	}
	if (mkdir(p, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

int ctl_rpc_start(struct io_loop *loop, const char *path, char *err,
		  size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, rc;

	rpc_loop = loop;
	io_timer_init(&accept_resume, accept_resume_fn);
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "control socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	mkdir_parent(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	/* A live daemon on the same socket must not be robbed of it. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		snprintf(err, errlen, "another utargetd is serving %s", path);
		return -EADDRINUSE;
	}
	close(fd);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	{
		mode_t old = umask(0177);

		rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		umask(old);
	}
	if (rc || chmod(path, 0600) || listen(fd, 16))
		goto fail;
	lsock.fd = fd;
	lsock.fn = accept_event;
	if (io_loop_add(loop, &lsock, EPOLLIN))
		goto fail;
	snprintf(sock_path, sizeof(sock_path), "%s", path);
	return 0;
fail:
	rc = -errno;
	snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

void ctl_rpc_stop(void)
{
	struct rpc_client *c, *n;

	list_for_each_entry_safe(c, n, &clients, link)
		client_free(c);
	if (lsock.fd >= 0) {
		io_loop_del(rpc_loop, &lsock);
		close(lsock.fd);
		lsock.fd = -1;
		unlink(sock_path);
	}
	io_timer_cancel(&accept_resume);
}
