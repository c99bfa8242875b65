/* Per-worker event loop. See loop.h. */
#include "io/loop.h"

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define IO_RING_ENTRIES 256
#define IO_MAX_EVENTS 128

struct io_loop {
	int id;
	int epfd;
	struct io_handler wake; /* eventfd: posts and stop */
	atomic_bool stop;
	pthread_mutex_t post_lock;
	struct io_post *post_head, *post_tail;
	struct list_head timers;   /* sorted by deadline */
	struct list_head deferred;
	struct io_uring ring;
	bool have_ring;
	struct io_handler ring_ev; /* eventfd the ring signals completions on */
	unsigned ring_pending;     /* SQEs prepared, not yet submitted */
	atomic_int load;
};

static _Thread_local struct io_loop *current_loop;
static void (*thread_exit_hook)(void);

void io_set_thread_exit_hook(void (*fn)(void))
{
	thread_exit_hook = fn;
}

uint64_t io_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct io_loop *io_loop_current(void)
{
	return current_loop;
}

int io_loop_id(const struct io_loop *l)
{
	return l->id;
}

static void drain_eventfd(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) > 0)
		;
}

static void run_posts(struct io_loop *l)
{
	struct io_post *p;

	pthread_mutex_lock(&l->post_lock);
	p = l->post_head;
	l->post_head = l->post_tail = NULL;
	pthread_mutex_unlock(&l->post_lock);
	while (p) {
		struct io_post *next = p->next;
		bool owned = p->owned;

		/* fn may reuse a caller's node (io_loop_post_node) at once:
		 * nothing here touches p after the call. */
		p->fn(p->arg);
		if (owned)
			free(p);
		p = next;
	}
}

static void wake_cb(struct io_handler *h, uint32_t events)
{
	struct io_loop *l = container_of(h, struct io_loop, wake);

	(void)events;
	drain_eventfd(h->fd);
	run_posts(l);
}

static void ring_reap(struct io_loop *l)
{
	struct io_uring_cqe *cqe;

	/* Mark each CQE seen before its callback: the callback may prepare
	 * and even submit new SQEs. */
	while (io_uring_peek_cqe(&l->ring, &cqe) == 0) {
		struct io_uring_cb *cb = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&l->ring, cqe);
		if (cb)
			cb->fn(cb, res);
	}
}

static void ring_cb(struct io_handler *h, uint32_t events)
{
	struct io_loop *l = container_of(h, struct io_loop, ring_ev);

	(void)events;
	drain_eventfd(h->fd);
	ring_reap(l);
}

int io_loop_create(struct io_loop **out, int id)
{
	struct io_loop *l = calloc(1, sizeof(*l));
	struct epoll_event ev = { .events = EPOLLIN };
	int rc;

	*out = NULL;
	if (!l)
		return -ENOMEM;
	l->id = id;
	pthread_mutex_init(&l->post_lock, NULL);
	list_init(&l->timers);
	list_init(&l->deferred);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		rc = -errno;
		free(l);
		return rc;
	}
	l->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	l->wake.fn = wake_cb;
	ev.data.ptr = &l->wake;
	if (l->wake.fd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake.fd, &ev)) {
		rc = -errno;
		goto fail;
	}
	/* io_uring is an optimisation: without it (old kernel, seccomp) the
	 * backstores fall back to synchronous I/O. */
	rc = io_uring_queue_init(IO_RING_ENTRIES, &l->ring, 0);
	if (rc == 0) {
		l->ring_ev.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		l->ring_ev.fn = ring_cb;
		ev.data.ptr = &l->ring_ev;
		if (l->ring_ev.fd >= 0 &&
		    io_uring_register_eventfd(&l->ring, l->ring_ev.fd) == 0 &&
		    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->ring_ev.fd, &ev) == 0) {
			l->have_ring = true;
		} else {
			if (l->ring_ev.fd >= 0)
				close(l->ring_ev.fd);
			io_uring_queue_exit(&l->ring);
		}
	}
	if (!l->have_ring && id == 0)
		log_warn("io_uring unavailable (%s): file I/O is synchronous",
			 strerror(-rc));
	*out = l;
	return 0;
fail:
	if (l->wake.fd >= 0)
		close(l->wake.fd);
	close(l->epfd);
	free(l);
	return rc;
}

void io_loop_destroy(struct io_loop *l)
{
	if (!l)
		return;
	run_posts(l);
	if (l->have_ring) {
		io_uring_queue_exit(&l->ring);
		close(l->ring_ev.fd);
	}
	close(l->wake.fd);
	close(l->epfd);
	pthread_mutex_destroy(&l->post_lock);
	free(l);
}

int io_loop_add(struct io_loop *l, struct io_handler *h, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = h };

	return epoll_ctl(l->epfd, EPOLL_CTL_ADD, h->fd, &ev) ? -errno : 0;
}

int io_loop_mod(struct io_loop *l, struct io_handler *h, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = h };

	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, h->fd, &ev) ? -errno : 0;
}

void io_loop_del(struct io_loop *l, struct io_handler *h)
{
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, h->fd, NULL);
}

void io_loop_post_node(struct io_loop *l, struct io_post *p)
{
	uint64_t one = 1;
	bool was_empty;

	p->next = NULL;
	pthread_mutex_lock(&l->post_lock);
	was_empty = !l->post_head;
	if (l->post_tail)
		l->post_tail->next = p;
	else
		l->post_head = p;
	l->post_tail = p;
	pthread_mutex_unlock(&l->post_lock);
	/* One wake-up per batch: a non-empty queue means an earlier post
	 * already wrote the eventfd and the loop has not yet taken the queue
	 * (run_posts takes it whole, under the lock, after draining the
	 * eventfd), so it will see this node too. Under load (librbd
	 * completing many requests while the worker is busy) this saves a
	 * write(2) per completion and the worker an epoll round per
	 * completion. */
	if (was_empty && write(l->wake.fd, &one, sizeof(one)) < 0 &&
	    errno != EAGAIN)
		log_err("io_loop_post: eventfd write: %s", strerror(errno));
}

int io_loop_post(struct io_loop *l, void (*fn)(void *arg), void *arg)
{
	struct io_post *p = malloc(sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->fn = fn;
	p->arg = arg;
	p->owned = true;
	io_loop_post_node(l, p);
	return 0;
}

void io_loop_stop(struct io_loop *l)
{
	uint64_t one = 1;

	atomic_store(&l->stop, true);
	if (write(l->wake.fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_err("io_loop_stop: eventfd write: %s", strerror(errno));
}

void io_loop_defer(struct io_loop *l, struct io_deferred *d)
{
	list_add_tail(&d->link, &l->deferred);
}

void io_timer_init(struct io_timer *t, void (*fn)(struct io_timer *t))
{
	list_init(&t->link);
	t->fn = fn;
	t->deadline_ms = 0;
}

void io_timer_arm(struct io_loop *l, struct io_timer *t, uint64_t ms)
{
	struct io_timer *pos;

	list_del(&t->link);
	t->deadline_ms = io_now_ms() + ms;
	/* Timers are few per connection and long (seconds): a sorted list
	 * is enough; insert from the tail since new deadlines tend to be
	 * the latest. */
	for (pos = list_entry(l->timers.prev, struct io_timer, link);
	     &pos->link != &l->timers;
	     pos = list_entry(pos->link.prev, struct io_timer, link)) {
		if (pos->deadline_ms <= t->deadline_ms)
			break;
	}
	list__insert(&t->link, &pos->link, pos->link.next);
}

void io_timer_cancel(struct io_timer *t)
{
	list_del(&t->link);
}

static int next_timeout(struct io_loop *l)
{
	struct io_timer *t;
	uint64_t now;

	if (!list_empty(&l->deferred))
		return 0;
	if (list_empty(&l->timers))
		return 1000;
	t = list_first_entry(&l->timers, struct io_timer, link);
	now = io_now_ms();
	if (t->deadline_ms <= now)
		return 0;
	return t->deadline_ms - now > 1000 ? 1000 : (int)(t->deadline_ms - now);
}

static void run_timers(struct io_loop *l)
{
	uint64_t now = io_now_ms();

	while (!list_empty(&l->timers)) {
		struct io_timer *t =
			list_first_entry(&l->timers, struct io_timer, link);

		if (t->deadline_ms > now)
			break;
		list_del(&t->link);
		t->fn(t);
	}
}

static void run_deferred(struct io_loop *l)
{
	/* A deferred function may defer more work; it runs in this pass. */
	while (!list_empty(&l->deferred)) {
		struct io_deferred *d =
			list_first_entry(&l->deferred, struct io_deferred, link);

		list_del(&d->link);
		d->fn(d);
	}
}

struct io_uring *io_loop_ring(struct io_loop *l)
{
	return l && l->have_ring ? &l->ring : NULL;
}

static void ring_flush(struct io_loop *l)
{
	int rc;

	if (!l->ring_pending)
		return;
	rc = io_uring_submit(&l->ring);
	if (rc < 0) {
		/* SQEs stay in the ring and go out with the next flush */
		log_err("io_uring_submit: %s", strerror(-rc));
		return;
	}
	l->ring_pending = 0;
}

struct io_uring_sqe *io_loop_get_sqe(struct io_loop *l)
{
	struct io_uring_sqe *sqe;

	if (!l || !l->have_ring)
		return NULL;
	sqe = io_uring_get_sqe(&l->ring);
	if (!sqe) {
		ring_flush(l);
		sqe = io_uring_get_sqe(&l->ring);
	}
	if (sqe)
		l->ring_pending++;
	return sqe;
}

void io_loop_load_add(struct io_loop *l, int delta)
{
	atomic_fetch_add(&l->load, delta);
}

int io_loop_load(const struct io_loop *l)
{
	return atomic_load(&l->load);
}

int io_loop_run_once(struct io_loop *l, int max_wait_ms)
{
	struct epoll_event evs[IO_MAX_EVENTS];
	int n, i, wait;

	current_loop = l;
	/* Everything prepared during the last round goes to the kernel in
	 * one submit (batching), before we sleep. */
	if (l->have_ring)
		ring_flush(l);
	wait = next_timeout(l);
	if (max_wait_ms >= 0 && wait > max_wait_ms)
		wait = max_wait_ms;
	n = epoll_wait(l->epfd, evs, IO_MAX_EVENTS, wait);
	if (n < 0 && errno != EINTR) {
		log_err("epoll_wait: %s", strerror(errno));
		return -errno;
	}
	for (i = 0; i < n; i++) {
		struct io_handler *h = evs[i].data.ptr;

		h->fn(h, evs[i].events);
	}
	run_timers(l);
	run_deferred(l);
	return 0;
}

void io_loop_run(struct io_loop *l)
{
	current_loop = l;
	while (!atomic_load(&l->stop))
		if (io_loop_run_once(l, -1))
			break;
	run_posts(l);
	run_deferred(l);
	if (thread_exit_hook)
		thread_exit_hook();
	current_loop = NULL;
}
