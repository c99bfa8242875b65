/* Per-worker event loop: epoll for sockets, an io_uring for backstore I/O
 * (completions arrive through an eventfd in the same epoll set, so a worker
 * never hands I/O to another thread), timers, cross-thread posts and
 * end-of-iteration deferred work. Everything here except io_loop_post and
 * io_loop_stop must be called on the loop's own thread. */
#ifndef UT_IO_LOOP_H
#define UT_IO_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "util/list.h"

struct io_loop;
struct io_uring;

/* Embed in an object that owns an fd; the callback gets it back via
 * container_of. events are EPOLLIN / EPOLLOUT / EPOLLERR / EPOLLHUP bits. */
struct io_handler {
	void (*fn)(struct io_handler *h, uint32_t events);
	int fd;
};

/* An io_uring submission's user_data points at one of these. res is the
 * CQE result (bytes or -errno). */
struct io_uring_cb {
	void (*fn)(struct io_uring_cb *cb, int res);
};

struct io_timer {
	struct list_head link;
	uint64_t deadline_ms;
	void (*fn)(struct io_timer *t);
};

/* Work run at the end of the current loop iteration (after all events of
 * this round): the way to free an object from inside its own callback. */
struct io_deferred {
	struct list_head link;
	void (*fn)(struct io_deferred *d);
};

int io_loop_create(struct io_loop **out, int id);
void io_loop_destroy(struct io_loop *l);
/* Runs until io_loop_stop. */
void io_loop_run(struct io_loop *l);
void io_loop_stop(struct io_loop *l); /* any thread */
/* One round of io_loop_run: wait for events (at most max_wait_ms; -1 = as
 * long as the timers allow), run their handlers, the timers due and the
 * deferred work. Returns 0 or -errno from epoll_wait. io_loop_run repeats
 * it; tests and fuzz harnesses (tests/fuzz/) drive a private loop with it,
 * so the code they exercise is the daemon's own. */
int io_loop_run_once(struct io_loop *l, int max_wait_ms);
int io_loop_id(const struct io_loop *l);

int io_loop_add(struct io_loop *l, struct io_handler *h, uint32_t events);
int io_loop_mod(struct io_loop *l, struct io_handler *h, uint32_t events);
void io_loop_del(struct io_loop *l, struct io_handler *h);

/* Thread-safe: fn(arg) runs on l's thread soon. Returns -ENOMEM on failure. */
int io_loop_post(struct io_loop *l, void (*fn)(void *arg), void *arg);

/* The same with a node the caller owns (embedded in a request: no malloc,
 * cannot fail). Set fn and arg; the node must stay valid until fn runs,
 * and may be reused from fn on. */
struct io_post {
	struct io_post *next;
	void (*fn)(void *arg);
	void *arg;
	bool owned; /* set by io_loop_post: freed after fn */
};
void io_loop_post_node(struct io_loop *l, struct io_post *p);

void io_loop_defer(struct io_loop *l, struct io_deferred *d);

void io_timer_init(struct io_timer *t, void (*fn)(struct io_timer *t));
void io_timer_arm(struct io_loop *l, struct io_timer *t, uint64_t ms);
void io_timer_cancel(struct io_timer *t);
static inline bool io_timer_armed(const struct io_timer *t)
{
	return list_linked(&t->link);
}

/* The worker's ring, or NULL when io_uring is unavailable (then callers do
 * synchronous I/O). Submissions prepared with io_loop_get_sqe are flushed in
 * one io_uring_submit per loop iteration. */
struct io_uring *io_loop_ring(struct io_loop *l);
/* Returns an SQE (submitting queued ones first if the ring is full), or
 * NULL if none could be had. */
struct io_uring_sqe *io_loop_get_sqe(struct io_loop *l);

/* The loop whose thread is running now, or NULL off any loop thread. */
struct io_loop *io_loop_current(void);

uint64_t io_now_ms(void);

/* Called on each loop's thread as io_loop_run returns: upper layers free
 * their per-thread caches there. */
void io_set_thread_exit_hook(void (*fn)(void));

/* Load accounting used to place new connections on the least-loaded
 * worker (docs/architecture.md "Threads"). */
void io_loop_load_add(struct io_loop *l, int delta);
int io_loop_load(const struct io_loop *l);

#endif
