/* Network portals and their listening sockets. Portals of several TPGs on
 * one address share one listener; when a wildcard of a family and port is
 * configured there is one listener for that (port, family) and the specific
 * addresses ride on it, whichever was created first (LIO users trip over
 * EADDRINUSE there). Each connection is routed by its local address
 * (getsockname) to the most specific matching portal: iscsi_tpg_for_addr.
 * Accepted connections go to the least-loaded worker. */
#include "iscsi/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/workers.h"
#include "util/log.h"

struct iscsi_listener {
	struct io_handler h;
	struct list_head link;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int refs;    /* portals using it */
	int conns;   /* connections accepted on it and still alive */
	bool dead;   /* no portal left: freed when its last connection ends */
	bool paused; /* accept backs off on EMFILE */
	struct io_timer resume;
	struct io_deferred gone; /* the free, at the end of the loop iteration */
};

struct iscsi_limits iscsi_limits = {
	.max_sessions_per_target = 1024,
	.max_connections_per_portal = 4096,
	.max_connection_buffers = 256u << 20,
};

static pthread_mutex_t ls_lock = PTHREAD_MUTEX_INITIALIZER;
static struct list_head listeners = LIST_HEAD_INIT(listeners);
static struct io_loop *accept_loop;
static int ls_holds; /* iscsi_portals_hold() depth: idle listeners stay open */

void iscsi_listeners_set_loop(struct io_loop *l)
{
	accept_loop = l;
}

static bool is_wildcard(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr ==
		       htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(
		&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr);
}

static uint16_t addr_port(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)a)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)(const void *)a)->sin6_port);
}

static bool same_ip(const struct sockaddr_storage *a,
		    const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)(const void *)b)->sin_addr.s_addr;
	return !memcmp(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr,
		       &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr,
		       sizeof(struct in6_addr));
}

/* A v4-mapped address (::ffff:a.b.c.d) seen on a v6 socket compares as v4. */
static void unmap_v4(const struct sockaddr_storage *in,
		     struct sockaddr_storage *out)
{
	const struct sockaddr_in6 *s6 = (const void *)in;

	*out = *in;
	if (in->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		struct sockaddr_in *s4 = (void *)out;
		uint16_t port = s6->sin6_port;
		struct in_addr a4;

		memcpy(&a4, &s6->sin6_addr.s6_addr[12], 4);
		memset(out, 0, sizeof(*out));
		s4->sin_family = AF_INET;
		s4->sin_port = port;
		s4->sin_addr = a4;
	}
}

bool iscsi_portal_is_wildcard(const struct iscsi_portal *p)
{
	return is_wildcard(&p->addr);
}

bool iscsi_portal_matches(const struct iscsi_portal *p,
			  const struct sockaddr_storage *la_in)
{
	struct sockaddr_storage la;

	unmap_v4(la_in, &la);
	if (addr_port(&p->addr) != addr_port(&la))
		return false;
	if (is_wildcard(&p->addr))
		return p->addr.ss_family == la.ss_family ||
		       p->addr.ss_family == AF_INET6;
	return same_ip(&p->addr, &la);
}

static void listener_resume(struct io_timer *t)
{
	struct iscsi_listener *ls = container_of(t, struct iscsi_listener, resume);

	ls->paused = false;
	io_loop_mod(accept_loop, &ls->h, EPOLLIN);
}

struct start_msg_ls {
	int fd;
	struct io_loop *loop;
	struct iscsi_listener *ls;
};

static void start_on_worker(void *arg)
{
	struct start_msg_ls *m = arg;

	iscsi_conn_start(m->fd, m->loop, m->ls);
	free(m);
}

/* A connection accepted on ls ended (any thread). */
void iscsi_listener_conn_gone(struct iscsi_listener *ls)
{
	bool free_it;

	if (!ls)
		return;
	pthread_mutex_lock(&ls_lock);
	free_it = --ls->conns == 0 && ls->dead;
	pthread_mutex_unlock(&ls_lock);
	if (free_it)
		free(ls);
}

static void listener_event(struct io_handler *h, uint32_t events)
{
	struct iscsi_listener *ls = container_of(h, struct iscsi_listener, h);
	int i;

	(void)events;
	/* closed by a configuration change earlier in this loop iteration,
	 * its event still in the same epoll batch (its fd number may be a
	 * new listener's already) */
	if (ls->dead || h->fd < 0)
		return;
	for (i = 0; i < 64; i++) {
		int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct io_loop *w;
		struct start_msg_ls *m;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				/* Out of fds: stop accepting for a moment
				 * instead of spinning (OpenBSD control.c). */
				log_warn("accept: %s; pausing for 1 s",
					 strerror(errno));
				ls->paused = true;
				io_loop_mod(accept_loop, &ls->h, 0);
				io_timer_arm(accept_loop, &ls->resume, 1000);
			}
			return;
		}
		pthread_mutex_lock(&ls_lock);
		if ((unsigned)ls->conns >= iscsi_limits.max_connections_per_portal) {
			pthread_mutex_unlock(&ls_lock);
			log_warn("portal: %d connections already, the limit "
				 "(max_connections_per_portal): refused one",
				 ls->conns);
			close(fd);
			continue;
		}
		ls->conns++;
		pthread_mutex_unlock(&ls_lock);
		w = io_workers_pick();
		m = malloc(sizeof(*m));
		if (!w || !m) {
			free(m);
			close(fd);
			iscsi_listener_conn_gone(ls);
			continue;
		}
		m->fd = fd;
		m->loop = w;
		m->ls = ls;
		if (io_loop_post(w, start_on_worker, m)) {
			free(m);
			close(fd);
			iscsi_listener_conn_gone(ls);
		}
	}
}

static int parse_addr(const char *ip, uint16_t port,
		      struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *s4 = (void *)ss;
	struct sockaddr_in6 *s6 = (void *)ss;
	char buf[64];
	size_t n = strlen(ip);

	memset(ss, 0, sizeof(*ss));
	/* accept "[::1]" as well as "::1" */
	if (n >= 2 && ip[0] == '[' && ip[n - 1] == ']' && n - 2 < sizeof(buf)) {
		memcpy(buf, ip + 1, n - 2);
		buf[n - 2] = 0;
		ip = buf;
	}
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
		return 0;
	}
	return -EINVAL;
}

static struct iscsi_listener *listener_find(const struct sockaddr_storage *a)
{
	struct iscsi_listener *ls;

	list_for_each_entry(ls, &listeners, link)
		if (addr_port(&ls->addr) == addr_port(a) &&
		    (same_ip(&ls->addr, a) ||
		     (is_wildcard(&ls->addr) &&
		      ls->addr.ss_family == a->ss_family)))
			return ls;
	return NULL;
}

static int listener_open(const struct sockaddr_storage *a, socklen_t alen,
			 struct iscsi_listener **out, char *err, size_t errlen)
{
	struct iscsi_listener *ls;
	int fd, one = 1, rc;

	fd = socket(a->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)a, alen) || listen(fd, 128))
		goto fail;
	ls = calloc(1, sizeof(*ls));
	if (!ls) {
		errno = ENOMEM;
		goto fail;
	}
	ls->h.fd = fd;
	ls->h.fn = listener_event;
	ls->addr = *a;
	ls->addrlen = alen;
	io_timer_init(&ls->resume, listener_resume);
	if (accept_loop && io_loop_add(accept_loop, &ls->h, EPOLLIN)) {
		free(ls);
		goto fail;
	}
	list_add_tail(&ls->link, &listeners);
	*out = ls;
	return 0;
fail:
	rc = -errno;
	snprintf(err, errlen, "Could not listen on the portal: %s",
		 strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

static void listener_free_deferred(struct io_deferred *d)
{
	free(container_of(d, struct iscsi_listener, gone));
}

/* ls has no portal any more (ls_lock held): freed when its last
 * connection ends, or, with none, once the accept loop has dispatched
 * the events it already has (a change made from an event handler — an
 * RPC, a gateway group's apply — may close a listener whose event comes
 * later in the same epoll batch). */
static void listener_release(struct iscsi_listener *ls)
{
	ls->dead = true;
	if (ls->conns)
		return;
	if (accept_loop) {
		ls->gone.fn = listener_free_deferred;
		io_loop_defer(accept_loop, &ls->gone);
	} else {
		free(ls);
	}
}

/* Stop listening on ls (ls_lock held): connections accepted on it carry on
 * and still point at it; it is freed when the last of them ends. */
static void listener_close(struct iscsi_listener *ls)
{
	if (ls->h.fd >= 0) {
		if (accept_loop)
			io_loop_del(accept_loop, &ls->h);
		io_timer_cancel(&ls->resume);
		close(ls->h.fd);
		ls->h.fd = -1;
	}
	list_del(&ls->link);
	listener_release(ls);
}

/* Every portal using from uses to instead (iscsi_fabric.lock held). */
static void move_portals(struct iscsi_listener *from, struct iscsi_listener *to)
{
	struct iscsi_target *t;
	struct iscsi_tpg *tpg;
	struct iscsi_portal *p;

	list_for_each_entry(t, &iscsi_fabric.targets, link)
		list_for_each_entry(tpg, &t->tpgs, link)
			list_for_each_entry(p, &tpg->portals, link)
				if (p->listener == from) {
					p->listener = to;
					to->refs++;
				}
	from->refs = 0;
}

/* A wildcard portal on a port where specific addresses of its family
 * already listen: bind() would fail with EADDRINUSE (what LIO users hit),
 * so the specific listeners close, one wildcard listener opens and their
 * portals move onto it. Connections are then routed by their local address
 * to the most specific portal (iscsi_tpg_for_addr). If the wildcard cannot
 * be opened the specific listeners are opened again. Caller holds
 * iscsi_fabric.lock and ls_lock. */
static int wildcard_open(struct iscsi_portal *np, struct iscsi_listener **out,
			 char *err, size_t errlen)
{
	struct iscsi_listener *ls, *tmp, *nl;
	struct list_head old = LIST_HEAD_INIT(old);
	int rc;

	list_for_each_entry_safe(ls, tmp, &listeners, link)
		if (ls->addr.ss_family == np->addr.ss_family &&
		    addr_port(&ls->addr) == addr_port(&np->addr)) {
			list_del(&ls->link);
			list_add_tail(&ls->link, &old);
			if (accept_loop)
				io_loop_del(accept_loop, &ls->h);
			io_timer_cancel(&ls->resume);
			close(ls->h.fd);
			ls->h.fd = -1;
		}
	rc = listener_open(&np->addr, np->addrlen, &nl, err, errlen);
	if (rc) {
		/* put the specific listeners back as they were */
		list_for_each_entry_safe(ls, tmp, &old, link) {
			struct iscsi_listener *re;
			char e2[128];

			list_del(&ls->link);
			if (listener_open(&ls->addr, ls->addrlen, &re, e2,
					  sizeof(e2))) {
				/* stays, deaf, until its portals go */
				log_err("portal: could not listen again on a "
					"specific address: %s", e2);
				list_add_tail(&ls->link, &listeners);
				continue;
			}
			move_portals(ls, re);
			listener_release(ls);
		}
		return rc;
	}
	list_for_each_entry_safe(ls, tmp, &old, link) {
		list_del(&ls->link);
		move_portals(ls, nl);
		listener_release(ls);
	}
	*out = nl;
	return 0;
}

int iscsi_portal_new(struct iscsi_tpg *tpg, const char *ip, uint16_t port,
		     struct iscsi_portal **out, char *err, size_t errlen)
{
	struct iscsi_portal *p, *q;
	struct iscsi_listener *ls;
	int rc;

	*out = NULL;
	if (port == 0) {
		snprintf(err, errlen, "Invalid port 0");
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	if (parse_addr(ip, port, &p->addr, &p->addrlen)) {
		snprintf(err, errlen, "Invalid IP address %s", ip);
		free(p);
		return -EINVAL;
	}
	list_for_each_entry(q, &tpg->portals, link) {
		if (q->port == port && same_ip(&q->addr, &p->addr)) {
			snprintf(err, errlen,
				 "This NetworkPortal already exists in configFS");
			free(p);
			return -EEXIST;
		}
	}
	snprintf(p->ip, sizeof(p->ip), "%s", ip);
	p->port = port;
	p->tpg = tpg;
	if (tpg->remote) {
		/* another gateway's address: it listens there, not us */
		list_add_tail(&p->link, &tpg->portals);
		iscsi_fabric.generation++;
		*out = p;
		return 0;
	}
	pthread_mutex_lock(&ls_lock);
	ls = listener_find(&p->addr);
	if (!ls && is_wildcard(&p->addr))
		rc = wildcard_open(p, &ls, err, errlen);
	else if (!ls)
		rc = listener_open(&p->addr, p->addrlen, &ls, err, errlen);
	else
		rc = 0;
	if (rc) {
		pthread_mutex_unlock(&ls_lock);
		free(p);
		return rc;
	}
	ls->refs++;
	pthread_mutex_unlock(&ls_lock);
	p->listener = ls;
	list_add_tail(&p->link, &tpg->portals);
	iscsi_fabric.generation++;
	*out = p;
	return 0;
}

void iscsi_portal_free(struct iscsi_portal *p)
{
	struct iscsi_listener *ls = p->listener;

	pthread_mutex_lock(&ls_lock);
	/* The last portal using a listener (shared by a wildcard and the
	 * specific addresses riding on it, or by the same address in
	 * several TPGs) closes it; connections already accepted carry on. */
	if (ls && --ls->refs == 0 && !ls_holds)
		listener_close(ls);
	pthread_mutex_unlock(&ls_lock);
	list_del(&p->link);
	iscsi_fabric.generation++;
	free(p);
}

/* A reload or a gateway group's apply frees a changed target and creates
 * it again from the new document in one step. Closing the listening
 * socket in between would reset every connection still in its accept
 * queue (a SYN the kernel already answered: the initiator sees its login
 * cut off, not refused) and refuse new ones for a moment, on a portal the
 * change never touched. While held, a listener whose last portal goes
 * stays open and listening, and a portal created on the same address
 * takes it over; at the last release the ones still without a portal
 * close. Connections accepted meanwhile log in against whatever the
 * configuration is by then (iscsi_tpg_for_addr at login). */
void iscsi_portals_hold(void)
{
	pthread_mutex_lock(&ls_lock);
	ls_holds++;
	pthread_mutex_unlock(&ls_lock);
}

void iscsi_portals_release(void)
{
	struct iscsi_listener *ls, *tmp;

	pthread_mutex_lock(&ls_lock);
	if (--ls_holds == 0)
		list_for_each_entry_safe(ls, tmp, &listeners, link)
			if (ls->refs == 0)
				listener_close(ls);
	pthread_mutex_unlock(&ls_lock);
}
