/* A small HTTP/1.1 responder for Prometheus (issue 20), on the control
 * thread's event loop, never blocking it: GET (or HEAD) /metrics answers
 * the text exposition (control/stats.c); any other path 404, any other
 * method 405, a malformed request line 400, request headers over 8 KiB
 * 431. Every response carries `Connection: close` and the connection
 * closes after it (RFC 9112 §9.6). Hardening: at most METRICS_MAX_CLIENTS
 * connections at once (more are closed at accept), each given
 * METRICS_TIMEOUT_MS in all to send its request and take the answer
 * (slowloris), answered 408 if its request is not complete by then. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/stats.h"
#include "daemon/metrics_http.h"
#include "io/loop.h"
#include "util/list.h"
#include "util/log.h"

#define METRICS_MAX_HEADER 8192
#define METRICS_MAX_CLIENTS 16
#define METRICS_TIMEOUT_MS 5000

#ifndef container_of
#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))
#endif

struct mclient {
	struct io_handler h;
	struct io_timer timer;
	struct io_deferred free_d;
	struct list_head link;
	char req[METRICS_MAX_HEADER + 1];
	size_t req_len;
	char *out;      /* response (head + body), malloc'ed */
	size_t out_len, out_off;
	bool closing;
};

static struct {
	struct io_loop *loop;
	struct io_handler listen;
	struct list_head clients;
	unsigned n_clients;
} M = { .listen = { .fd = -1 } };

static void client_free(struct io_deferred *d)
{
	struct mclient *c = container_of(d, struct mclient, free_d);

	free(c->out);
	free(c);
}

static void client_close(struct mclient *c)
{
	if (c->closing)
		return;
	c->closing = true;
	io_timer_cancel(&c->timer);
	io_loop_del(M.loop, &c->h);
	close(c->h.fd);
	c->h.fd = -1;
	list_del(&c->link);
	M.n_clients--;
	io_loop_defer(M.loop, &c->free_d); /* maybe inside our own callback */
}

static void client_flush(struct mclient *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->h.fd, c->out + c->out_off,
				 c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			io_loop_mod(M.loop, &c->h, EPOLLOUT);
			return;
		}
		if (n <= 0) {
			client_close(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	/* all sent: we close (Connection: close) */
	shutdown(c->h.fd, SHUT_WR);
	client_close(c);
}

static void respond(struct mclient *c, int code, const char *reason,
		    const char *ctype, const char *body, size_t blen,
		    bool head_only, const char *extra)
{
	char head[512];
	int hl = snprintf(head, sizeof(head),
			  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
			  "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
			  code, reason, ctype, blen, extra ? extra : "");

	if (head_only)
		blen = 0;
	c->out = malloc((size_t)hl + blen);
	if (!c->out) {
		client_close(c);
		return;
	}
	memcpy(c->out, head, (size_t)hl);
	if (blen)
		memcpy(c->out + hl, body, blen);
	c->out_len = (size_t)hl + blen;
	c->out_off = 0;
	io_timer_arm(M.loop, &c->timer, METRICS_TIMEOUT_MS); /* to take it */
	client_flush(c);
}

static void respond_error(struct mclient *c, int code, const char *reason,
			  const char *extra)
{
	char body[64];
	int n = snprintf(body, sizeof(body), "%d %s\n", code, reason);

	respond(c, code, reason, "text/plain; charset=utf-8", body, (size_t)n,
		false, extra);
}

static bool token_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

/* The request line (RFC 9112 §3): METHOD SP request-target SP HTTP/1.x;
 * header fields are read past and ignored (nothing in them matters to a
 * GET of /metrics). */
static void handle_request(struct mclient *c, size_t line_end)
{
	char *line = c->req, *sp1, *sp2, *target;
	size_t i, mlen;
	bool head;

	line[line_end] = 0;
	if (line_end && line[line_end - 1] == '\r')
		line[line_end - 1] = 0;
	sp1 = strchr(line, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1 || strchr(sp2 + 1, ' ') ||
	    (strcmp(sp2 + 1, "HTTP/1.1") && strcmp(sp2 + 1, "HTTP/1.0"))) {
		respond_error(c, 400, "Bad Request", NULL);
		return;
	}
	mlen = (size_t)(sp1 - line);
	for (i = 0; i < mlen; i++)
		if (!token_char(line[i])) {
			respond_error(c, 400, "Bad Request", NULL);
			return;
		}
	target = sp1 + 1;
	*sp2 = 0;
	for (i = 0; target[i]; i++)
		if ((unsigned char)target[i] <= 0x20 || (unsigned char)target[i] >= 0x7f) {
			respond_error(c, 400, "Bad Request", NULL);
			return;
		}
	head = mlen == 4 && !memcmp(line, "HEAD", 4);
	if (!(mlen == 3 && !memcmp(line, "GET", 3)) && !head) {
		respond_error(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n");
		return;
	}
	if (strcmp(target, "/metrics") && strncmp(target, "/metrics?", 9)) {
		respond_error(c, 404, "Not Found", NULL);
		return;
	}
	{
		size_t len = 0;
		char *body = ctl_metrics_text(&len);

		if (!body) {
			respond_error(c, 500, "Internal Server Error", NULL);
			return;
		}
		respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
			body, len, head, NULL);
		free(body);
	}
}

/* End of the header section: an empty line (CRLF CRLF, or bare LF LF as
 * RFC 9112 §2.2 lets a recipient accept). */
static bool headers_done(const char *b, size_t n)
{
	size_t i;

	for (i = 1; i < n; i++)
		if (b[i] == '\n' && (b[i - 1] == '\n' ||
				     (i >= 2 && b[i - 1] == '\r' && b[i - 2] == '\n')))
			return true;
	return false;
}

static void on_client(struct io_handler *h, uint32_t events)
{
	struct mclient *c = container_of(h, struct mclient, h);

	if (c->closing)
		return;
	if (c->out) {
		if (events & (EPOLLERR | EPOLLHUP))
			client_close(c);
		else
			client_flush(c);
		return;
	}
	for (;;) {
		ssize_t n = recv(c->h.fd, c->req + c->req_len,
				 METRICS_MAX_HEADER - c->req_len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			client_close(c);
			return;
		}
		c->req_len += (size_t)n;
		if (memchr(c->req, 0, c->req_len)) {
			respond_error(c, 400, "Bad Request", NULL);
			return;
		}
		if (headers_done(c->req, c->req_len)) {
			char *nl = memchr(c->req, '\n', c->req_len);

			handle_request(c, (size_t)(nl - c->req));
			return;
		}
		if (c->req_len >= METRICS_MAX_HEADER) {
			respond_error(c, 431, "Request Header Fields Too Large", NULL);
			return;
		}
	}
}

static void on_timeout(struct io_timer *t)
{
	struct mclient *c = container_of(t, struct mclient, timer);

	if (c->out) { /* the answer was not taken in time */
		client_close(c);
		return;
	}
	respond_error(c, 408, "Request Timeout", NULL);
	if (!c->closing && c->out_off < c->out_len)
		client_close(c); /* no waiting on a client that does not read */
}

static void on_accept(struct io_handler *h, uint32_t events)
{
	(void)h;
	(void)events;
	for (;;) {
		int fd = accept4(M.listen.fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct mclient *c;

		if (fd < 0)
			return; /* EAGAIN, or out of fds: try at the next event */
		if (M.n_clients >= METRICS_MAX_CLIENTS) {
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->h.fd = fd;
		c->h.fn = on_client;
		list_init(&c->link);
		io_timer_init(&c->timer, on_timeout);
		c->free_d.fn = client_free;
		if (io_loop_add(M.loop, &c->h, EPOLLIN)) {
			close(fd);
			free(c);
			continue;
		}
		list_add_tail(&c->link, &M.clients);
		M.n_clients++;
		io_timer_arm(M.loop, &c->timer, METRICS_TIMEOUT_MS);
	}
}

static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *colon;
	char *end;
	unsigned long port;
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof(host))
			return -1;
		memcpy(host, s + 1, (size_t)(rb - s - 1));
		host[rb - s - 1] = 0;
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof(host))
			return -1;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = 0;
	}
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || !colon[1] || port == 0 || port > 65535)
		return -1;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		*len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
		return 0;
	}
	return -1;
}

int metrics_http_start(struct io_loop *loop, const char *addr, char *err,
		       size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, e;

	if (parse_addr(addr, &ss, &len)) {
		snprintf(err, errlen, "metrics_listen: '%s' is not IP:PORT", addr);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 16))
		goto fail;
	M.loop = loop;
	list_init(&M.clients);
	M.listen.fd = fd;
	M.listen.fn = on_accept;
	if (io_loop_add(loop, &M.listen, EPOLLIN))
		goto fail;
	log_info("metrics: listening on %s (GET /metrics)", addr);
	return 0;
fail:
	e = errno;
	if (fd >= 0)
		close(fd);
	M.listen.fd = -1;
	snprintf(err, errlen, "metrics_listen %s: %s", addr, strerror(e));
	return -e;
}

void metrics_http_stop(void)
{
	struct mclient *c, *n;

	if (M.listen.fd < 0)
		return;
	io_loop_del(M.loop, &M.listen);
	close(M.listen.fd);
	M.listen.fd = -1;
	/* the loop is done: free at once, nothing is deferred any more */
	list_for_each_entry_safe(c, n, &M.clients, link) {
		io_timer_cancel(&c->timer);
		io_loop_del(M.loop, &c->h);
		close(c->h.fd);
		list_del(&c->link);
		M.n_clients--;
		free(c->out);
		free(c);
	}
}
