/* user:rbd with pr=cluster: SCSI persistent reservations (SPC-4 5.14)
 * shared by every gateway that exports the image (issue 18). The state is
 * a RADOS object beside the image, utarget.pr.<image id>, in the image's
 * pool; its bytes are the SCSI layer's JSON (src/scsi/pr.c, docs/rbd.md),
 * its xattr utarget.pr.version the version they carry.
 *
 * Atomicity: an update is one RADOS write op, cmpxattr(version == the one
 * the caller evaluated against) + write_full + setxattr(new version), so
 * two gateways racing cannot both win: the loser gets -ECANCELED and
 * evaluates its PR OUT again against what the winner stored.
 *
 * Freshness: every gateway watches the object. The winner then notifies
 * with the new state as payload and waits for the acks; a watcher takes
 * the state in its watch callback before it acks, so when the PR OUT
 * returns every live gateway enforces it. A gateway that cannot hear
 * from the OSD must not go on enforcing an old state: its cache is valid
 * only under a lease, renewed from rados_watch_check (the time since the
 * OSD last confirmed the watch) by the thread below, and ended at once by
 * a watch error; the SCSI layer refuses commands that need the cache
 * while the lease is out (dev->pr_valid_until_ms), and this thread
 * re-watches and reloads before renewing it. The notifier, when a watcher
 * did not ack in time, waits one lease before completing: by then that
 * watcher stopped serving its copy (or it is dead: the OSD drops a watch
 * unpinged for the lease, which rados_watch3 sets as the watch timeout). */
#include "backstore/rbd_pr.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backstore/bs_internal.h"
#include "io/loop.h"
#include "util/log.h"

#define PR_XATTR "utarget.pr.version"
#define PR_MAX_BYTES (16u << 20) /* refuse to read more state than this */
#define PR_NOTIFY_MAX_MS 5000u

struct rbd_pr {
	struct bs_dev *dev;
	rados_t cluster;
	rados_ioctx_t ioctx;
	char oid[160];
	unsigned lease_ms;
	/* guards changed / arg, and is held while changed runs so that a
	 * detach waits for a callback in progress */
	pthread_mutex_t cb_lock;
	int (*changed)(void *arg, const char *data, size_t len);
	void *arg;
	/* the watch; cookie and watching belong to the lease thread after
	 * open */
	uint64_t cookie;
	bool watching;
	atomic_bool broken; /* watch error reported: re-watch and reload */
	pthread_t thr;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
};

static void lease_end(struct rbd_pr *p)
{
	atomic_store(&p->dev->pr_valid_until_ms, 0);
}

static void wake(struct rbd_pr *p)
{
	pthread_mutex_lock(&p->lock);
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

/* librados' watch thread: another gateway (or we) stored a new state. It
 * is taken before the ack, which is what the notifier waits for. */
static void watch_cb(void *arg, uint64_t notify_id, uint64_t handle,
		     uint64_t notifier_id, void *data, size_t len)
{
	struct rbd_pr *p = arg;
	int e = 0;

	pthread_mutex_lock(&p->cb_lock);
	if (p->changed)
		e = p->changed(p->arg, data, len);
	pthread_mutex_unlock(&p->cb_lock);
	if (e < 0) {
		/* not taken: do not ack (the notifier then waits out our
		 * lease) and stop serving the copy we have */
		log_warn("user:rbd %s: persistent reservation state from the "
			 "cluster not taken: %s", p->dev->name, strerror(-e));
		lease_end(p);
		atomic_store(&p->broken, true);
		wake(p);
		return;
	}
	rados_notify_ack(p->ioctx, p->oid, notify_id, handle, NULL, 0);
}

/* The watch is gone (OSD session reset, timed out after a pause): notifies
 * may have been missed, so the cache is not to be trusted any more. */
static void watch_err_cb(void *arg, uint64_t cookie, int err)
{
	struct rbd_pr *p = arg;

	log_warn("user:rbd %s: watch on %s lost: %s; persistent reservations "
		 "wait for a reload", p->dev->name, p->oid, strerror(-err));
	lease_end(p);
	atomic_store(&p->broken, true);
	wake(p);
}

static int do_watch(struct rbd_pr *p)
{
	return rados_watch3(p->ioctx, p->oid, &p->cookie, watch_cb,
			    watch_err_cb, (p->lease_ms + 999) / 1000, p);
}

/* Re-watch, then reload, then (only then) the lease starts again. */
static int rewatch(struct rbd_pr *p)
{
	int e;

	lease_end(p);
	if (p->watching) {
		rados_unwatch2(p->ioctx, p->cookie);
		p->watching = false;
	}
	e = do_watch(p);
	if (e < 0)
		return e;
	p->watching = true;
	atomic_store(&p->broken, false);
	pthread_mutex_lock(&p->cb_lock);
	if (p->changed)
		e = p->changed(p->arg, NULL, 0);
	pthread_mutex_unlock(&p->cb_lock);
	if (e < 0) {
		atomic_store(&p->broken, true);
		return e;
	}
	log_info("user:rbd %s: watching %s again, persistent reservations "
		 "reloaded", p->dev->name, p->oid);
	return 0;
}

/* One look at the watch: re-watch (and reload) when it is broken, else
 * renew the lease from the OSD's last confirmation of it. */
static void lease_tick(struct rbd_pr *p, bool *warned)
{
	int age;

	if (atomic_load(&p->broken) || !p->watching) {
		int e = rewatch(p);

		if (e < 0) {
			if (!*warned)
				log_warn("user:rbd %s: cannot watch %s: %s "
					 "(retrying)", p->dev->name, p->oid,
					 strerror(-e));
			*warned = true;
			return;
		}
		*warned = false;
	}
	age = rados_watch_check(p->ioctx, p->cookie);
	if (age < 0 || (unsigned)age >= p->lease_ms - p->lease_ms / 10) {
		/* an error, or the OSD has not confirmed the watch for a
		 * lease (we were frozen, or cut off): it may have dropped it
		 * and notified without us */
		lease_end(p);
		atomic_store(&p->broken, true);
		return;
	}
	/* librados counts the age from when the last confirmed ping was
	 * sent, so the OSD (which drops the watch a watch timeout after it
	 * received a ping) never forgets us before our lease ends; a tenth
	 * off covers the coarse clocks on both sides. A notifier whose notify
	 * completed because the OSD dropped our watch therefore finds us
	 * past our lease. */
	atomic_store(&p->dev->pr_valid_until_ms,
		     io_now_ms() - (uint64_t)age + p->lease_ms - p->lease_ms / 10);
}

static void *lease_thread(void *arg)
{
	struct rbd_pr *p = arg;
	unsigned tick = p->lease_ms / 5 < 1000 ? p->lease_ms / 5 : 1000;
	bool warned = false;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		struct timespec ts;
		bool again;

		pthread_mutex_unlock(&p->lock);
		lease_tick(p, &warned);
		/* broken just now and not yet retried: go round at once */
		again = atomic_load(&p->broken) && !warned;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(tick % 1000) * 1000000L;
		ts.tv_sec += tick / 1000 + ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_mutex_lock(&p->lock);
		if (!p->stop && !again)
			pthread_cond_timedwait(&p->cond, &p->lock, &ts);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int rbd_pr_open(struct bs_dev *dev, rados_t cluster, rados_ioctx_t ioctx,
		const char *image_id, unsigned lease_s, struct rbd_pr **out,
		char *err, size_t errlen)
{
	struct rbd_pr *p = calloc(1, sizeof(*p));
	rados_write_op_t op;
	int e;

	*out = NULL;
	if (!p)
		return -ENOMEM;
	p->dev = dev;
	p->cluster = cluster;
	p->ioctx = ioctx;
	p->lease_ms = lease_s * 1000;
	snprintf(p->oid, sizeof(p->oid), "utarget.pr.%s", image_id);
	pthread_mutex_init(&p->cb_lock, NULL);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	/* An empty object at version 0, so there is something to watch and
	 * to compare the version of; EEXIST: another gateway made it. */
	op = rados_create_write_op();
	if (!op) {
		e = -ENOMEM;
		goto fail;
	}
	rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
	rados_write_op_setxattr(op, PR_XATTR, "0", 1);
	e = rados_write_op_operate(op, ioctx, p->oid, NULL, 0);
	rados_release_write_op(op);
	if (e < 0 && e != -EEXIST) {
		bs_seterr(err, errlen, "pr=cluster: cannot create object %s: %s",
			  p->oid, strerror(-e));
		goto fail;
	}
	e = do_watch(p);
	if (e < 0) {
		bs_seterr(err, errlen, "pr=cluster: cannot watch object %s: %s",
			  p->oid, strerror(-e));
		goto fail;
	}
	p->watching = true;
	/* the layer above loads the state when it attaches; until then
	 * nothing is served */
	atomic_store(&dev->pr_valid_until_ms, io_now_ms() + p->lease_ms);
	e = -pthread_create(&p->thr, NULL, lease_thread, p);
	if (e < 0) {
		rados_unwatch2(ioctx, p->cookie);
		bs_seterr(err, errlen, "pr=cluster: thread: %s", strerror(-e));
		goto fail;
	}
	dev->pr_shared = true;
	*out = p;
	return 0;
fail:
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->cb_lock);
	free(p);
	return e;
}

void rbd_pr_close(struct rbd_pr *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thr, NULL);
	if (p->watching)
		rados_unwatch2(p->ioctx, p->cookie);
	/* no callback may run once we are freed */
	rados_watch_flush(p->cluster);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->cb_lock);
	free(p);
}

int rbd_pr_load(struct bs_dev *dev, char **buf, size_t *len)
{
	struct rbd_pr *p = rbd_dev_pr(dev);
	size_t cap = 64 * 1024;

	if (!p)
		return -EOPNOTSUPP;
	for (;;) {
		char *b = malloc(cap + 1);
		int n;

		if (!b)
			return -ENOMEM;
		/* one read is one consistent version (write ops are atomic) */
		n = rados_read(p->ioctx, p->oid, b, cap, 0);
		if (n < 0) {
			free(b);
			return n;
		}
		if ((size_t)n < cap) {
			b[n] = 0;
			*buf = b;
			*len = (size_t)n;
			return 0;
		}
		free(b);
		if (cap >= PR_MAX_BYTES)
			return -EFBIG;
		cap *= 4;
	}
}

int rbd_pr_store(struct bs_dev *dev, uint64_t version, uint64_t new_version,
		 const char *buf, size_t len)
{
	struct rbd_pr *p = rbd_dev_pr(dev);
	char v[24], nv[24], *reply = NULL;
	size_t rlen = 0;
	rados_write_op_t op;
	unsigned tmo;
	int e;

	if (!p)
		return -EOPNOTSUPP;
	if (len > PR_MAX_BYTES)
		return -EFBIG;
	snprintf(v, sizeof(v), "%" PRIu64, version);
	snprintf(nv, sizeof(nv), "%" PRIu64, new_version);
	op = rados_create_write_op();
	if (!op)
		return -ENOMEM;
	rados_write_op_cmpxattr(op, PR_XATTR, LIBRADOS_CMPXATTR_OP_EQ, v,
				strlen(v));
	rados_write_op_write_full(op, buf, len);
	rados_write_op_setxattr(op, PR_XATTR, nv, strlen(nv));
	e = rados_write_op_operate(op, p->ioctx, p->oid, NULL, 0);
	rados_release_write_op(op);
	if (e < 0)
		return e; /* -ECANCELED: someone else stored first */
	/* Stored: now every live gateway must have it before the initiator
	 * hears GOOD. Our own watch gets it too (and takes it, harmless). */
	tmo = p->lease_ms < PR_NOTIFY_MAX_MS ? p->lease_ms : PR_NOTIFY_MAX_MS;
	e = rados_notify2(p->ioctx, p->oid, buf, (int)len, tmo, &reply, &rlen);
	if (reply)
		rados_buffer_free(reply);
	if (e < 0) {
		/* Someone did not ack (dead, frozen, cut off, or could not
		 * take it): after one lease it no longer serves its copy. */
		log_warn("user:rbd %s: not every gateway acknowledged the new "
			 "persistent reservation state (%s): waiting %u ms, their "
			 "lease", dev->name, strerror(-e), p->lease_ms);
		struct timespec ts = { .tv_sec = p->lease_ms / 1000,
				       .tv_nsec = (long)(p->lease_ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
	}
	return 0;
}

void rbd_pr_attach(struct bs_dev *dev,
		   int (*changed)(void *arg, const char *data, size_t len),
		   void *arg)
{
	struct rbd_pr *p = rbd_dev_pr(dev);

	if (!p)
		return;
	int e = 0;

	pthread_mutex_lock(&p->cb_lock);
	p->changed = changed;
	p->arg = arg;
	if (changed)
		e = changed(arg, NULL, 0);
	pthread_mutex_unlock(&p->cb_lock);
	if (e < 0) {
		/* the lease thread re-watches and reloads until it works;
		 * nothing that needs the state is served meanwhile */
		log_warn("user:rbd %s: cannot read %s: %s (retrying)", dev->name,
			 p->oid, strerror(-e));
		lease_end(p);
		atomic_store(&p->broken, true);
		wake(p);
	}
}
