/* user:rbd: a Ceph RBD image served through librbd (what LIO does with
 * tcmu-runner's rbd handler, without the kernel's TCMU ring in between).
 *
 * cfg->dev is LIO's saveconfig "config": "rbd/" + targetcli's user:rbd
 * cfgstring  POOL/IMAGE[;conf=PATH][;id=USER][;osd_op_timeout=N]
 *
 * I/O: every request is one librbd aio call. librbd completes it on one of
 * its own threads; the completion callback only posts the bs_io back to the
 * worker loop it came from (io_loop_post_node: a queue and the loop's
 * eventfd, in its epoll set, written once per batch), where done() runs. So no thread per command, nothing
 * on a worker ever blocks on the cluster, and the SCSI layer sees the same
 * completion context as with the io_uring plugins. A request with no loop
 * (the control thread, unit tests) waits for its completion instead.
 *
 * Durability: the librbd cache is turned off, so a write is on the OSDs
 * when it is acknowledged: the LU runs write-through (WCE=0, SBC-3 6.5.5)
 * and FUA needs nothing extra; SYNCHRONIZE CACHE still issues a flush.
 *
 * Faults: rados_osd_op_timeout makes requests to an unreachable cluster
 * fail with -ETIMEDOUT instead of waiting forever; the SCSI layer turns that
 * into a retryable sense (sbc.c io_error).
 *
 * Resize: rbd_update_watch tells us when another client changed the image
 * header; a new size goes to bs_dev.resized (the LU raises CAPACITY DATA
 * HAS CHANGED, SBC-3 4.13 / SPC-4 6.37 table).
 *
 * HA (;ha=1, docs/rbd.md): several gateways export the image; the one
 * holding its exclusive lock (managed: rbd_lock_acquire) is active/
 * optimized, the others standby. A thread of our own (never a worker)
 * runs once a second: the owner records its ports in the image metadata,
 * the others read them, and when the owner's watch on the header is gone
 * (it died or lost the cluster) a survivor breaks the lock, which
 * blocklists the old owner, and takes it. A gateway that finds itself
 * blocklisted goes standby and reconnects with a new rados client.
 *
 * pr=cluster: persistent reservations shared by every gateway that
 * exports the image, kept in a RADOS object beside it (rbd_pr.c), on a
 * rados client of their own: HA's fencing blocklists and replaces the
 * image's client, and the reservation state must stay reachable. */
#include "backstore/bs_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <rados/librados.h>
#include <rbd/librbd.h>

#include "backstore/rbd_pr.h"
#include "util/log.h"

#define RBD_DEFAULT_TIMEOUT 30 /* seconds, when osd_op_timeout is not given */
#define RBD_DEFAULT_PR_LEASE 10 /* seconds, when pr_lease is not given */

#define HA_TICK_MS 1000   /* how often the HA thread looks at the lock */
#define HA_KEY "utarget.ha_owner" /* image metadata: "ADDR RTPI,RTPI..." */
#define HA_MAX_PORTS 64

/* ---- configuration string ---- */

struct rbd_cfg {
	char pool[256];
	char image[256];
	char conf[4096];
	char id[128];
	unsigned timeout;
	bool ha;
	bool pr_cluster;   /* pr=cluster (default pr=local) */
	unsigned pr_lease; /* seconds */
};

/* One cluster connection with the image open on it. A blocklisted client
 * can never talk to the cluster again, so HA replaces the whole thing. */
struct rbd_conn {
	rados_t cluster;
	rados_ioctx_t ioctx;
	rbd_image_t image;
	uint64_t watch;
	bool watching;
	char addr[256];        /* our client address: what lock owners show */
	struct bs_rbd *r;
};

/* The data path finds the connection in conn[gen & 1] and counts itself
 * in users[] of that slot for the length of the request (conn_enter: the
 * count first, then gen again, all sequentially consistent, so the HA
 * thread that moves gen on either sees the count or the reader sees the
 * new gen). The HA thread closes an old connection only when its count
 * is back to 0. Two atomic adds per request, no lock; none without HA,
 * where conn[0] is all there is. */
struct bs_rbd {
	struct rbd_conn *_Atomic conn[2];
	atomic_uint gen;
	atomic_uint users[2];
	struct bs_dev *dev;
	struct rbd_cfg cfg;
	/* HA, all but the wake-up the HA thread's own */
	pthread_t thread;
	bool thread_on;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;             /* under mu */
	atomic_bool poke;      /* a request saw -EBLOCKLISTED: look now */
	bool owner;            /* we hold the lock */
	bool fenced;           /* blocklisted: reconnect pending */
	char published[512];   /* the HA_KEY value we wrote */
	char last_owner[256];  /* for the log: the owner we last saw */
	/* pr=cluster: its own client (never blocklisted by HA's fencing) */
	rados_t pr_cluster;
	rados_ioctx_t pr_ioctx;
	struct rbd_pr *pr;
	/* admission (see "Admission" below), under fl_lock */
	pthread_mutex_t fl_lock;
	uint32_t fl_ops, fl_ops_max;      /* object requests in flight, cap */
	uint64_t fl_bytes, fl_bytes_max;  /* their data bytes, cap */
	uint64_t obj_size;
	struct io_post *fl_head, **fl_tail; /* waiting, in arrival order */
};

static int parse_cfg(const char *s, struct rbd_cfg *c, char *err, size_t errlen)
{
	char buf[4096 + 512], *save = NULL, *tok, *slash;

	memset(c, 0, sizeof(*c));
	c->timeout = RBD_DEFAULT_TIMEOUT;
	c->pr_lease = RBD_DEFAULT_PR_LEASE;
	if (!s || !s[0]) {
		bs_seterr(err, errlen,
			  "cfgstring must be given: POOL/IMAGE[;conf=PATH][;id=USER][;osd_op_timeout=N][;ha=0|1][;pr=cluster[;pr_lease=N]]");
		return -EINVAL;
	}
	if (strlen(s) >= sizeof(buf)) {
		bs_seterr(err, errlen, "cfgstring is too long");
		return -ENAMETOOLONG;
	}
	/* cfg->dev is LIO's config: the handler name, then the cfgstring.
	 * Required, since a pool may itself be called "rbd". */
	if (strncmp(s, "rbd/", 4)) {
		bs_seterr(err, errlen, "config '%s' must start with rbd/", s);
		return -EINVAL;
	}
	s += 4;
	snprintf(buf, sizeof(buf), "%s", s);
	tok = strtok_r(buf, ";", &save);
	if (!tok || !(slash = strchr(tok, '/')) || slash == tok || !slash[1] ||
	    strchr(slash + 1, '/')) {
		bs_seterr(err, errlen,
			  "cfgstring '%s' must start with POOL/IMAGE", s);
		return -EINVAL;
	}
	*slash = 0;
	if (strlen(tok) >= sizeof(c->pool) || strlen(slash + 1) >= sizeof(c->image)) {
		bs_seterr(err, errlen, "pool or image name too long");
		return -ENAMETOOLONG;
	}
	snprintf(c->pool, sizeof(c->pool), "%s", tok);
	snprintf(c->image, sizeof(c->image), "%s", slash + 1);
	while ((tok = strtok_r(NULL, ";", &save))) {
		char *eq = strchr(tok, '=');

		if (!eq) {
			bs_seterr(err, errlen, "cfgstring option '%s' has no value",
				  tok);
			return -EINVAL;
		}
		*eq++ = 0;
		if (!strcmp(tok, "conf")) {
			snprintf(c->conf, sizeof(c->conf), "%s", eq);
		} else if (!strcmp(tok, "id")) {
			snprintf(c->id, sizeof(c->id), "%s", eq);
		} else if (!strcmp(tok, "osd_op_timeout")) {
			char *end;
			unsigned long v = strtoul(eq, &end, 10);

			if (!*eq || *end || v > 86400) {
				bs_seterr(err, errlen,
					  "osd_op_timeout '%s' is not a number of seconds",
					  eq);
				return -EINVAL;
			}
			c->timeout = (unsigned)v;
		} else if (!strcmp(tok, "ha")) {
			/* ours (tcmu-runner has no such option; LIO's
			 * cfgstrings without it mean what they did) */
			if (strcmp(eq, "0") && strcmp(eq, "1")) {
				bs_seterr(err, errlen, "ha '%s' must be 0 or 1", eq);
				return -EINVAL;
			}
			c->ha = eq[0] == '1';
		} else if (!strcmp(tok, "pr")) {
			if (strcmp(eq, "cluster") && strcmp(eq, "local")) {
				bs_seterr(err, errlen,
					  "pr '%s' must be cluster or local", eq);
				return -EINVAL;
			}
			c->pr_cluster = !strcmp(eq, "cluster");
		} else if (!strcmp(tok, "pr_lease")) {
			char *end;
			unsigned long v = strtoul(eq, &end, 10);

			if (!*eq || *end || v < 2 || v > 300) {
				bs_seterr(err, errlen,
					  "pr_lease '%s' is not a number of seconds (2-300)",
					  eq);
				return -EINVAL;
			}
			c->pr_lease = (unsigned)v;
		} else {
			bs_seterr(err, errlen, "unknown cfgstring option '%s'", tok);
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- resize ---- */

static void update_cb(void *arg)
{
	struct rbd_conn *cn = arg;
	struct bs_dev *dev = cn->r->dev;
	uint64_t size, old;

	/* Runs on a librbd thread after the image header changed (resize,
	 * snapshot, lock change, ...); only a new size matters here. */
	if (rbd_get_size(cn->image, &size) < 0)
		return;
	size -= size % dev->block_size;
	old = __atomic_load_n(&dev->size, __ATOMIC_RELAXED);
	if (size == old || !size)
		return;
	__atomic_store_n(&dev->size, size, __ATOMIC_RELAXED);
	log_info("user:rbd %s: image size changed from %" PRIu64 " to %" PRIu64
		 " bytes", dev->name, old, size);
	if (dev->resized)
		dev->resized(dev, size, dev->resized_arg);
}

/* The resize command: rbd_resize on the image (blocking, on the control
 * thread; librbd discards what a shrink cuts off). No size: the image's
 * own, if another client resized it and the watch missed it. */
static struct rbd_conn *conn_enter(struct bs_rbd *r, unsigned *slot)
{
	/* without HA the connection never changes: no shared counter to
	 * bounce between the workers' caches */
	if (!r->cfg.ha) {
		*slot = 0;
		return atomic_load_explicit(&r->conn[0], memory_order_relaxed);
	}
	for (;;) {
		unsigned g = atomic_load(&r->gen), s = g & 1;

		atomic_fetch_add(&r->users[s], 1);
		if (atomic_load(&r->gen) == g) {
			*slot = s;
			return atomic_load(&r->conn[s]);
		}
		atomic_fetch_sub(&r->users[s], 1);
	}
}

static void conn_leave(struct bs_rbd *r, unsigned slot)
{
	if (r->cfg.ha)
		atomic_fetch_sub(&r->users[slot], 1);
}

static int rbd_resize_dev(struct bs_dev *dev, uint64_t want, uint64_t *size,
			  char *err, size_t errlen)
{
	struct bs_rbd *r = dev->priv;
	unsigned slot;
	struct rbd_conn *cn = conn_enter(r, &slot);
	int e;

	if (want && (e = rbd_resize(cn->image, want)) < 0) {
		bs_seterr(err, errlen, "rbd_resize of %s to %" PRIu64
			  " bytes: %s", dev->path, want, strerror(-e));
		goto out;
	}
	if ((e = rbd_get_size(cn->image, size)) < 0) {
		bs_seterr(err, errlen, "rbd_get_size of %s: %s", dev->path,
			  strerror(-e));
		goto out;
	}
	e = 0;
out:
	conn_leave(r, slot);
	return e;
}

/* ---- open / close ---- */

static void conn_close(struct rbd_conn *cn)
{
	if (!cn)
		return;
	if (cn->watching)
		rbd_update_unwatch(cn->image, cn->watch);
	if (cn->image)
		rbd_close(cn->image);
	if (cn->ioctx)
		rados_ioctx_destroy(cn->ioctx);
	if (cn->cluster)
		rados_shutdown(cn->cluster);
	free(cn);
}

static void rbd_teardown(struct bs_rbd *r)
{
	rbd_pr_close(r->pr);
	if (r->pr_ioctx)
		rados_ioctx_destroy(r->pr_ioctx);
	if (r->pr_cluster)
		rados_shutdown(r->pr_cluster);
	conn_close(atomic_load(&r->conn[0]));
	conn_close(atomic_load(&r->conn[1]));
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	pthread_mutex_destroy(&r->fl_lock);
	free(r);
}

static int conf_set(rados_t cl, const char *k, const char *v,
		    char *err, size_t errlen)
{
	int e = rados_conf_set(cl, k, v);

	if (e < 0)
		bs_seterr(err, errlen, "ceph option %s=%s: %s", k, v,
			  strerror(-e));
	return e;
}

/* The image's identity as a name-based UUID (RFC 9562 §5.5, version 5:
 * SHA-1 over a namespace of our own and the name), the name being the
 * cluster's fsid, the pool id and the image's id. Every gateway that opens
 * the image computes the same one, and it survives renames of the image
 * or the pool; a copy or clone of the image has another id. "" when
 * librados cannot tell (then the caller makes a random one). */
static void image_identity(struct rbd_conn *r, char out[37])
{
	static const uint8_t ns[16] = { /* utarget's RBD namespace */
		0x6f, 0x1c, 0x2e, 0x58, 0x93, 0x0b, 0x4d, 0x71,
		0xa4, 0x35, 0x8e, 0x1d, 0x70, 0xc2, 0x4b, 0x19 };
	char fsid[64], id[128], name[256];
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_MD_CTX *ctx;
	int n;

	out[0] = 0;
	if (rados_cluster_fsid(r->cluster, fsid, sizeof(fsid)) < 0 ||
	    rbd_get_id(r->image, id, sizeof(id)) < 0)
		return;
	n = snprintf(name, sizeof(name), "%s/%" PRId64 "/%s", fsid,
		     rados_ioctx_get_id(r->ioctx), id);
	if (n < 0 || (size_t)n >= sizeof(name))
		return;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return;
	if (EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, ns, sizeof(ns)) != 1 ||
	    EVP_DigestUpdate(ctx, name, (size_t)n) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen < 16) {
		EVP_MD_CTX_free(ctx);
		return;
	}
	EVP_MD_CTX_free(ctx);
	md[6] = (uint8_t)((md[6] & 0x0f) | 0x50); /* version 5 */
	md[8] = (uint8_t)((md[8] & 0x3f) | 0x80); /* RFC 9562 variant */
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 md[0], md[1], md[2], md[3], md[4], md[5], md[6], md[7], md[8],
		 md[9], md[10], md[11], md[12], md[13], md[14], md[15]);
}

/* Connects to the cluster and opens the image (creating it of size when
 * create and it is missing). The whole of it again on an HA reconnect. */
/* A connected rados client with the gateway's settings; *out NULL on
 * error. */
static int cluster_connect(const struct rbd_cfg *c, rados_t *out, char *err,
			   size_t errlen)
{
	rados_t cl;
	char tmo[16];
	int e;

	*out = NULL;
	e = rados_create(&cl, c->id[0] ? c->id : NULL);
	if (e < 0) {
		bs_seterr(err, errlen, "rados_create: %s", strerror(-e));
		return e;
	}
	/* NULL: the default search ($CEPH_CONF, /etc/ceph/ceph.conf, ...) */
	e = rados_conf_read_file(cl, c->conf[0] ? c->conf : NULL);
	if (e < 0) {
		bs_seterr(err, errlen, "cannot read ceph config %s: %s",
			  c->conf[0] ? c->conf : "(default)", strerror(-e));
		goto fail;
	}
	snprintf(tmo, sizeof(tmo), "%u", c->timeout);
	/* Bound every wait on the cluster (connect, mon and OSD requests):
	 * a hung request is what makes an initiator's multipath give up on
	 * the whole path; an error it can retry is what it wants. The cache
	 * off makes an acknowledged write a durable one (see the top). */
	if ((e = conf_set(cl, "rados_osd_op_timeout", tmo, err, errlen)) < 0 ||
	    (e = conf_set(cl, "rados_mon_op_timeout", tmo, err, errlen)) < 0 ||
	    (e = conf_set(cl, "client_mount_timeout", tmo, err, errlen)) < 0 ||
	    (e = conf_set(cl, "rbd_cache", "false", err, errlen)) < 0 ||
	    /* UNMAP promises zeros on read (LBPRZ): partial-object discards
	     * must zero, not be skipped. */
	    (e = conf_set(cl, "rbd_skip_partial_discard", "false", err, errlen)) < 0 ||
	    /* librbd may write straight from the task buffer instead of
	     * copying it (librbd's create_write_raw: with the cache off it
	     * then holds back the completion until its last reference to the
	     * buffer is gone). The buffer lives until the completion, so
	     * this is safe, and it is one copy of every byte fewer. */
	    (e = conf_set(cl, "rbd_disable_zero_copy_writes", "false", err,
			  errlen)) < 0 ||
	    /* librbd runs the request's dispatch (down to the Objecter's
	     * send) in the caller's thread instead of queueing it for its
	     * io_context thread: one thread hand-off fewer per request
	     * (bench/rbd_bench.py: 4 KiB QD1 writes ~30-50 µs faster).
	     * What could then block a worker, the Objecter's in-flight
	     * throttle, admission keeps clear of (below). */
	    (e = conf_set(cl, "rbd_non_blocking_aio", "false", err,
			  errlen)) < 0)
		goto fail;
	/* HA: breaking a dead owner's lock must fence it (librbd's default,
	 * made sure of: without it a stale owner could still write) */
	if (c->ha && (e = conf_set(cl, "rbd_blocklist_on_break_lock",
				   "true", err, errlen)) < 0)
		goto fail;
	/* pr=cluster: the objecter pings watches once per tick; a tick of a
	 * second keeps rados_watch_check's age well under the lease */
	if (c->pr_cluster &&
	    (e = conf_set(cl, "objecter_tick_interval", "1", err, errlen)) < 0)
		goto fail;
	e = rados_connect(cl);
	if (e < 0) {
		bs_seterr(err, errlen, "cannot connect to the Ceph cluster%s%s: %s",
			  c->conf[0] ? " of " : "", c->conf, strerror(-e));
		goto fail;
	}
	*out = cl;
	return 0;
fail:
	rados_shutdown(cl);
	return e;
}

static int conn_open(struct bs_rbd *r, bool create, uint64_t size,
		     struct rbd_conn **out, char *err, size_t errlen)
{
	const struct rbd_cfg *c = &r->cfg;
	struct rbd_conn *cn = calloc(1, sizeof(*cn));
	char *addrs = NULL;
	int e;

	*out = NULL;
	if (!cn)
		return -ENOMEM;
	cn->r = r;
	e = cluster_connect(c, &cn->cluster, err, errlen);
	if (e < 0)
		goto fail;
	if (rados_getaddrs(cn->cluster, &addrs) == 0 && addrs) {
		snprintf(cn->addr, sizeof(cn->addr), "%s", addrs);
		free(addrs);
	}
	e = rados_ioctx_create(cn->cluster, c->pool, &cn->ioctx);
	if (e < 0) {
		cn->ioctx = NULL;
		bs_seterr(err, errlen, "pool %s: %s", c->pool, strerror(-e));
		goto fail;
	}
	e = rbd_open(cn->ioctx, c->image, &cn->image, NULL);
	if (e == -ENOENT && create) {
		int order = 0;

		if (!size) {
			bs_seterr(err, errlen, "size must be given to create image %s/%s",
				  c->pool, c->image);
			e = -EINVAL;
			goto fail;
		}
		e = rbd_create(cn->ioctx, c->image, size, &order);
		if (e < 0) {
			bs_seterr(err, errlen, "cannot create image %s/%s: %s",
				  c->pool, c->image, strerror(-e));
			goto fail;
		}
		e = rbd_open(cn->ioctx, c->image, &cn->image, NULL);
	}
	if (e < 0) {
		cn->image = NULL;
		bs_seterr(err, errlen, "cannot open image %s/%s: %s%s", c->pool,
			  c->image, strerror(-e),
			  e == -ENOENT ? " (create it with rbd create, or pass create_image=true)" : "");
		goto fail;
	}
	if (c->ha) {
		uint64_t features = 0;

		e = rbd_get_features(cn->image, &features);
		if (e == 0 && !(features & RBD_FEATURE_EXCLUSIVE_LOCK)) {
			bs_seterr(err, errlen, "ha=1 needs the exclusive-lock "
				  "feature on image %s/%s (rbd feature enable "
				  "%s/%s exclusive-lock)", c->pool, c->image,
				  c->pool, c->image);
			e = -EINVAL;
		}
		if (e < 0) {
			if (e != -EINVAL)
				bs_seterr(err, errlen, "rbd_get_features %s/%s: %s",
					  c->pool, c->image, strerror(-e));
			goto fail;
		}
	}
	*out = cn;
	return 0;
fail:
	conn_close(cn);
	return e;
}

static void conn_watch(struct rbd_conn *cn)
{
	int e = rbd_update_watch(cn->image, &cn->watch, update_cb, cn);

	if (e < 0)
		log_warn("user:rbd %s: rbd_update_watch: %s (resizes by other clients will not be seen)",
			 cn->r->dev->name, strerror(-e));
	else
		cn->watching = true;
}

/* ---- HA: the exclusive lock decides who is optimized ---- */

static void ha_apply(struct bs_rbd *r, const uint16_t *rtpi, unsigned n)
{
	void (*fn)(struct bs_dev *, const uint16_t *, unsigned, void *) =
		__atomic_load_n(&r->dev->owner_ports, __ATOMIC_ACQUIRE);

	if (fn)
		fn(r->dev, rtpi, n, r->dev->resized_arg);
}

static unsigned ha_local(struct bs_rbd *r, uint16_t *rtpi, unsigned max)
{
	unsigned (*fn)(struct bs_dev *, uint16_t *, unsigned, void *) =
		__atomic_load_n(&r->dev->local_ports, __ATOMIC_ACQUIRE);

	return fn ? fn(r->dev, rtpi, max, r->dev->resized_arg) : 0;
}

/* The lock's owner (its client address) in out, "" when unlocked. */
static int lock_owner(struct rbd_conn *cn, char *out, size_t len)
{
	rbd_lock_mode_t mode;
	char *owners[4];
	size_t n = 4;
	int e;

	out[0] = 0;
	e = rbd_lock_get_owners(cn->image, &mode, owners, &n);
	if (e == -ENOENT)
		return 0;
	if (e < 0)
		return e;
	if (n)
		snprintf(out, len, "%s", owners[0]);
	rbd_lock_get_owners_cleanup(owners, n);
	return 0;
}

/* Does the client at addr still watch the image header? A gateway that
 * died or lost the cluster loses its watch after the OSDs' `osd client
 * watch timeout` (30 s by default); that is what "dead" means here, as in
 * librbd's own lock breaking (managed_lock::BreakRequest). */
static int owner_alive(struct rbd_conn *cn, const char *addr)
{
	rbd_image_watcher_t w[32];
	size_t n = 32;
	int e, alive = 0;

	e = rbd_watchers_list(cn->image, w, &n);
	if (e < 0)
		return e;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(w[i].addr, addr))
			alive = 1;
	rbd_watchers_list_cleanup(w, n);
	return alive;
}

static size_t fmt_ports(char *b, size_t len, const char *addr,
			const uint16_t *rtpi, unsigned n)
{
	size_t at = (size_t)snprintf(b, len, "%s ", addr);

	for (unsigned i = 0; i < n && at < len; i++)
		at += (size_t)snprintf(b + at, len - at, "%s%u", i ? "," : "",
				       rtpi[i]);
	return at;
}

/* The owner's ports from its record, if the record is the owner's own
 * (a dead owner's record stays behind until the next one writes). */
static unsigned read_owner_ports(struct rbd_conn *cn, const char *owner,
				 uint16_t *rtpi, unsigned max)
{
	char v[512], *sp, *tok, *save = NULL;
	size_t len = sizeof(v);
	unsigned n = 0;

	if (rbd_metadata_get(cn->image, HA_KEY, v, &len) < 0)
		return 0;
	v[sizeof(v) - 1] = 0;
	sp = strchr(v, ' ');
	if (!sp)
		return 0;
	*sp++ = 0;
	if (strcmp(v, owner))
		return 0;
	for (tok = strtok_r(sp, ",", &save); tok && n < max;
	     tok = strtok_r(NULL, ",", &save)) {
		unsigned long p = strtoul(tok, NULL, 10);

		if (p && p <= 65535)
			rtpi[n++] = (uint16_t)p;
	}
	return n;
}

static bool is_fenced(int e)
{
	/* librados' EBLOCKLISTED is ESHUTDOWN on Linux */
	return e == -ESHUTDOWN;
}

/* Blocklisted: nothing this client sends will be served again. Standby
 * first (the data path refuses before it reaches librbd), then a new
 * client; the old one goes when its last request is back. */
static void ha_reconnect(struct bs_rbd *r)
{
	unsigned g = atomic_load(&r->gen), old = g & 1;
	struct rbd_conn *cn = NULL, *was;
	char err[512];
	int e;

	r->owner = false;
	r->published[0] = 0;
	ha_apply(r, NULL, 0);
	e = conn_open(r, false, 0, &cn, err, sizeof(err));
	if (e < 0) {
		log_warn("user:rbd %s: reconnecting after being fenced: %s "
			 "(retrying)", r->dev->name, err);
		return;
	}
	conn_watch(cn);
	/* a resize while we were cut off: the watch of the old client
	 * never heard it */
	update_cb(cn);
	atomic_store(&r->conn[old ^ 1], cn);
	atomic_store(&r->gen, g + 1);
	/* requests on the old client fail fast (blocklisted) or time out
	 * within osd_op_timeout: wait for them, then close it */
	while (atomic_load(&r->users[old]))
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000000 }, NULL);
	was = atomic_load(&r->conn[old]);
	atomic_store(&r->conn[old], NULL);
	conn_close(was);
	r->fenced = false;
	log_info("user:rbd %s: reconnected to the cluster as %s; rejoining "
		 "as a non-owner", r->dev->name, cn->addr);
}

static void ha_fenced(struct bs_rbd *r, int e)
{
	log_warn("user:rbd %s: this gateway was fenced (%s): its ports go "
		 "standby", r->dev->name, strerror(-e));
	r->fenced = true;
	ha_reconnect(r);
}

/* One look at the lock (the HA thread, once a second and when a request
 * came back blocklisted). Every gateway runs the same rules, so they
 * agree: the lock's owner is optimized; nobody else takes the lock while
 * the owner's watch lives; when it is gone, the first survivor to get
 * the lock (it is a RADOS object lock: one wins) is the new owner. */
static void ha_tick(struct bs_rbd *r)
{
	struct rbd_conn *cn;
	uint16_t local[HA_MAX_PORTS], own[HA_MAX_PORTS];
	unsigned nl, no;
	char owner[256], rec[512];
	int e, tries = 2;

	if (r->fenced) {
		ha_reconnect(r);
		if (r->fenced)
			return;
	}
again:
	cn = atomic_load(&r->conn[atomic_load(&r->gen) & 1]);
	e = lock_owner(cn, owner, sizeof(owner));
	if (e < 0) {
		if (is_fenced(e))
			ha_fenced(r, e);
		/* else the cluster is unreachable: keep the states; if we
		 * are the owner our watch will lapse and another takes
		 * over, which we learn when we are back */
		return;
	}
	if (owner[0] && !strcmp(owner, cn->addr)) {
		if (!r->owner)
			log_info("user:rbd %s: this gateway (%s) owns the "
				 "image's lock: its ports are active/optimized",
				 r->dev->name, cn->addr);
		r->owner = true;
		nl = ha_local(r, local, HA_MAX_PORTS);
		fmt_ports(rec, sizeof(rec), cn->addr, local, nl);
		if (strcmp(rec, r->published)) {
			e = rbd_metadata_set(cn->image, HA_KEY, rec);
			if (is_fenced(e)) {
				ha_fenced(r, e);
				return;
			}
			if (e == 0)
				snprintf(r->published, sizeof(r->published),
					 "%s", rec);
		}
		ha_apply(r, local, nl);
		return;
	}
	if (r->owner) {
		log_warn("user:rbd %s: this gateway lost the image's lock to "
			 "%s: its ports go standby", r->dev->name,
			 owner[0] ? owner : "nobody");
		r->owner = false;
		r->published[0] = 0;
	}
	if (owner[0]) {
		e = owner_alive(cn, owner);
		if (is_fenced(e)) {
			ha_fenced(r, e);
			return;
		}
		if (e) {	/* alive, or we cannot tell: it stays owner */
			if (strcmp(owner, r->last_owner))
				log_info("user:rbd %s: the image's lock is "
					 "held by %s", r->dev->name, owner);
			snprintf(r->last_owner, sizeof(r->last_owner), "%s",
				 owner);
			no = read_owner_ports(cn, owner, own, HA_MAX_PORTS);
			ha_apply(r, own, no);
			return;
		}
		/* the owner has no watch: dead or cut off. Break its lock;
		 * librbd blocklists it first (rbd_blocklist_on_break_lock),
		 * so it can never write again, even if it comes back. */
		ha_apply(r, NULL, 0);
		log_warn("user:rbd %s: lock owner %s has no watch on the image: "
			 "breaking its lock (it is blocklisted)", r->dev->name,
			 owner);
		e = rbd_lock_break(cn->image, RBD_LOCK_MODE_EXCLUSIVE, owner);
		if (e < 0 && e != -ENOENT) {
			if (is_fenced(e))
				ha_fenced(r, e);
			else
				log_warn("user:rbd %s: rbd_lock_break: %s",
					 r->dev->name, strerror(-e));
			return;
		}
	}
	/* free: whoever gets it first owns it; the others see it next time */
	e = rbd_lock_acquire(cn->image, RBD_LOCK_MODE_EXCLUSIVE);
	if (is_fenced(e)) {
		ha_fenced(r, e);
		return;
	}
	if (e < 0) {
		ha_apply(r, NULL, 0);
		return;
	}
	if (--tries)
		goto again;
}

static void *ha_thread(void *arg)
{
	struct bs_rbd *r = arg;
	struct timespec t;

	pthread_mutex_lock(&r->mu);
	while (!r->stop) {
		pthread_mutex_unlock(&r->mu);
		atomic_store(&r->poke, false);
		ha_tick(r);
		pthread_mutex_lock(&r->mu);
		if (r->stop || atomic_load(&r->poke))
			continue;
		clock_gettime(CLOCK_MONOTONIC, &t);
		t.tv_sec += HA_TICK_MS / 1000;
		t.tv_nsec += (HA_TICK_MS % 1000) * 1000000L;
		if (t.tv_nsec >= 1000000000L) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&r->cv, &r->mu, &t);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* A request came back blocklisted: have the HA thread look now rather
 * than at its next tick. Any thread (librbd's completion threads). */
static void ha_poke(struct bs_rbd *r)
{
	if (!r->cfg.ha || atomic_exchange(&r->poke, true))
		return;
	pthread_mutex_lock(&r->mu);
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static int ha_start(struct bs_rbd *r, char *err, size_t errlen)
{
	pthread_condattr_t ca;
	int e;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_destroy(&r->cv);
	e = pthread_cond_init(&r->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (e == 0)
		e = pthread_create(&r->thread, NULL, ha_thread, r);
	if (e) {
		bs_seterr(err, errlen, "cannot start the HA thread: %s",
			  strerror(e));
		return -e;
	}
	r->thread_on = true;
	return 0;
}

static void ha_stop(struct bs_rbd *r)
{
	if (!r->thread_on)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL);
	r->thread_on = false;
}

/* pr=cluster: the state object's client and the watch on it (rbd_pr.c),
 * named by the image's id so renames keep it */
static int pr_open(struct bs_rbd *r, struct rbd_conn *cn, char *err,
		   size_t errlen)
{
	char id[128];
	int e = rbd_get_id(cn->image, id, sizeof(id));

	if (e < 0) {
		bs_seterr(err, errlen, "pr=cluster: rbd_get_id %s/%s: %s",
			  r->cfg.pool, r->cfg.image, strerror(-e));
		return e;
	}
	e = cluster_connect(&r->cfg, &r->pr_cluster, err, errlen);
	if (e < 0)
		return e;
	e = rados_ioctx_create(r->pr_cluster, r->cfg.pool, &r->pr_ioctx);
	if (e < 0) {
		r->pr_ioctx = NULL;
		bs_seterr(err, errlen, "pr=cluster: pool %s: %s", r->cfg.pool,
			  strerror(-e));
		return e;
	}
	return rbd_pr_open(r->dev, r->pr_cluster, r->pr_ioctx, id,
			   r->cfg.pr_lease, &r->pr, err, errlen);
}

/* ---- Admission ----
 *
 * With rbd_non_blocking_aio off, rbd_aio_*() run librbd's dispatch in the
 * worker's own thread, down to Objecter::op_submit, and that one blocks
 * when the client has objecter_inflight_ops object requests or
 * objecter_inflight_op_bytes of data in flight (its throttle). So requests
 * are admitted only while what is in flight on the image's client stays
 * under three quarters of both (the rest is left to librbd's own header,
 * watch and object map requests); the others wait here, in arrival order,
 * and are posted back to their worker as earlier ones complete. Requests
 * are at most 8 MiB (MAXIMUM TRANSFER LENGTH, WRITE SAME and UNMAP limits),
 * a few objects each; one that alone exceeds the cap (an image with tiny
 * objects) goes when nothing else is in flight. */
static void admission_limits(struct bs_rbd *r, rados_t cl)
{
	char v[32];

	r->fl_ops_max = UINT32_MAX;
	r->fl_bytes_max = UINT64_MAX;
	/* 0 = unlimited, as for the Objecter */
	if (rados_conf_get(cl, "objecter_inflight_ops", v, sizeof(v)) == 0 &&
	    strtoull(v, NULL, 10))
		r->fl_ops_max = (uint32_t)(strtoull(v, NULL, 10) / 4 * 3);
	if (rados_conf_get(cl, "objecter_inflight_op_bytes", v, sizeof(v)) == 0 &&
	    strtoull(v, NULL, 10))
		r->fl_bytes_max = strtoull(v, NULL, 10) / 4 * 3;
}

/* Object requests and Objecter budget bytes one bs_io turns into: one
 * per object the range touches; data bytes for reads and writes (the
 * Objecter budgets both), counted in full for the WRITE SAME kinds too
 * (librbd may send them as plain writes). */
static void io_cost(const struct bs_rbd *r, const struct bs_io *io,
		    uint32_t *ops, uint64_t *bytes)
{
	uint64_t os = r->obj_size ? r->obj_size : 1;

	*ops = 1;
	*bytes = 0;
	if (io->op == BS_FLUSH || !io->len)
		return;
	*ops = (uint32_t)((io->off + io->len - 1) / os - io->off / os + 1);
	if (io->op != BS_UNMAP)
		*bytes = io->op == BS_COMPARE_AND_WRITE ? 2 * io->len : io->len;
}

static bool admit_fits(const struct bs_rbd *r, uint32_t ops, uint64_t bytes)
{
	if (!r->fl_ops)
		return true;
	return r->fl_ops + ops <= r->fl_ops_max &&
	       r->fl_bytes + bytes <= r->fl_bytes_max;
}

static void admit_take(struct bs_rbd *r, const struct bs_io *io)
{
	uint32_t ops;
	uint64_t bytes;

	io_cost(r, io, &ops, &bytes);
	r->fl_ops += ops;
	r->fl_bytes += bytes;
}

static void post_issue(void *arg);

/* A request completed (librbd's thread): give its share back and send the
 * waiting requests that now fit to their workers. */
static void admit_release(struct bs_rbd *r, const struct bs_io *io)
{
	uint32_t ops;
	uint64_t bytes;

	io_cost(r, io, &ops, &bytes);
	pthread_mutex_lock(&r->fl_lock);
	r->fl_ops -= ops;
	r->fl_bytes -= bytes;
	while (r->fl_head) {
		struct bs_io *w = r->fl_head->arg;

		io_cost(r, w, &ops, &bytes);
		if (!admit_fits(r, ops, bytes))
			break;
		r->fl_head = r->fl_head->next;
		if (!r->fl_head)
			r->fl_tail = &r->fl_head;
		admit_take(r, w);
		w->post.fn = post_issue;
		io_loop_post_node(w->loop, &w->post);
	}
	pthread_mutex_unlock(&r->fl_lock);
}

/* Admitted now (true), or queued to be posted back when it fits; the
 * waiting request's post node is free until then and links the queue. */
static bool admit(struct bs_rbd *r, struct bs_io *io)
{
	uint32_t ops;
	uint64_t bytes;
	bool now;

	io_cost(r, io, &ops, &bytes);
	pthread_mutex_lock(&r->fl_lock);
	now = !r->fl_head && admit_fits(r, ops, bytes);
	if (now) {
		admit_take(r, io);
	} else {
		io->post.next = NULL;
		io->post.arg = io;
		io->post.owned = false;
		*r->fl_tail = &io->post;
		r->fl_tail = &io->post.next;
	}
	pthread_mutex_unlock(&r->fl_lock);
	return now;
}

static int rbd_open_dev(struct bs_dev *dev, const struct bs_config *cfg,
			char *err, size_t errlen)
{
	struct bs_rbd *r;
	struct rbd_conn *cn;
	rbd_image_info_t info;
	int e;

	if (cfg->dev && strlen(cfg->dev) >= sizeof(dev->path)) {
		bs_seterr(err, errlen, "cfgstring is too long");
		return -ENAMETOOLONG;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	pthread_mutex_init(&r->fl_lock, NULL);
	r->fl_tail = &r->fl_head;
	r->dev = dev;
	e = parse_cfg(cfg->dev, &r->cfg, err, errlen);
	if (e < 0)
		goto fail;
	e = conn_open(r, cfg->create, cfg->size, &cn, err, errlen);
	if (e < 0)
		goto fail;
	atomic_store(&r->conn[0], cn);
	e = rbd_stat(cn->image, &info, sizeof(info));
	if (e < 0) {
		bs_seterr(err, errlen, "rbd_stat %s/%s: %s", r->cfg.pool,
			  r->cfg.image, strerror(-e));
		goto fail;
	}
	dev->block_size = cfg->block_size ? cfg->block_size : 512;
	/* The LUN is the image: a size given at create time must not
	 * promise blocks that are not there. */
	if (cfg->size > info.size) {
		bs_seterr(err, errlen,
			  "size %" PRIu64 " is larger than image %s/%s (%" PRIu64
			  " bytes): grow it with rbd resize",
			  cfg->size, r->cfg.pool, r->cfg.image, info.size);
		e = -EINVAL;
		goto fail;
	}
	dev->size = info.size - info.size % dev->block_size;
	if (!dev->size) {
		bs_seterr(err, errlen, "image %s/%s is smaller than one block",
			  r->cfg.pool, r->cfg.image);
		e = -EINVAL;
		goto fail;
	}
	dev->readonly = cfg->readonly;
	dev->rotational = false;
	dev->can_unmap = !cfg->readonly;
	dev->can_write_same = true;
	dev->can_caw = true;
	/* librbd 16's compare-and-write takes one 512-byte sector at most
	 * (longer ones get -EINVAL, measured); the SCSI layer does longer
	 * ones itself */
	dev->caw_max_len = 512;
	/* Whole objects are what a discard frees (rbd du shrinks by them):
	 * the granularity an initiator should align UNMAP to (SBC-3 6.6.4). */
	dev->unmap_granularity = (uint32_t)(info.obj_size > UINT32_MAX ? 0 : info.obj_size);
	r->obj_size = info.obj_size;
	admission_limits(r, cn->cluster);
	atomic_store(&dev->write_back, false);
	image_identity(cn, dev->ident_uuid);
	memcpy(dev->path, cfg->dev, strlen(cfg->dev) + 1);
	dev->alua_managed = r->cfg.ha;
	dev->priv = r;
	if (r->cfg.pr_cluster && (e = pr_open(r, cn, err, errlen)) < 0)
		goto fail;
	conn_watch(cn);
	if (r->cfg.ha && (e = ha_start(r, err, errlen)) < 0)
		goto fail;
	return 0;
fail:
	rbd_teardown(r);
	dev->priv = NULL;
	return e;
}

static void rbd_close_dev(struct bs_dev *dev)
{
	struct bs_rbd *r = dev->priv;

	/* Every bs_io holds a reference on the LU above us until done(), so
	 * nothing is in flight here; rbd_close still waits for librbd's own
	 * background work (and releases the lock an HA owner holds, so a
	 * survivor takes over at once). */
	if (r) {
		ha_stop(r);
		rbd_teardown(r);
	}
	dev->priv = NULL;
}

struct rbd_pr *rbd_dev_pr(struct bs_dev *dev)
{
	struct bs_rbd *r = dev->priv;

	return r ? r->pr : NULL;
}

/* ---- I/O ---- */

static void post_done(void *arg)
{
	struct bs_io *io = arg;

	io->done(io, (int)(intptr_t)io->bs_priv);
}

static int map_res(struct bs_rbd *r, const struct bs_io *io, ssize_t res)
{
	if (res >= 0)
		return 0;
	if (io->op == BS_COMPARE_AND_WRITE && res == -EILSEQ)
		return -EILSEQ;
	if (r->cfg.ha && (res == -EROFS || res == -ESHUTDOWN)) {
		/* HA: a write without the lock (managed mode: -EROFS) or
		 * from a fenced gateway (-EBLOCKLISTED): never success, and
		 * the sense multipath retries on another path (NOT READY,
		 * ASYMMETRIC ACCESS STATE TRANSITION, sbc.c io_error) while
		 * the HA thread turns our ports standby. */
		ha_poke(r);
		return -ESHUTDOWN;
	}
	return (int)res;
}

/* librbd thread: hand the result to the worker the request came from.
 * Until then bs_priv holds the backstore and done_bytes the slot of the
 * connection the request went to. */
static void aio_cb(rbd_completion_t c, void *arg)
{
	struct bs_io *io = arg;
	struct bs_rbd *r = io->bs_priv;
	ssize_t res = rbd_aio_get_return_value(c);

	rbd_aio_release(c);
	admit_release(r, io);
	io->bs_priv = (void *)(intptr_t)map_res(r, io, res);
	conn_leave(r, (unsigned)io->done_bytes);
	/* the node lives in the request: no allocation, cannot fail */
	io->post.fn = post_done;
	io->post.arg = io;
	io->post.owned = false;
	io_loop_post_node(io->loop, &io->post);
}

static int issue(struct rbd_conn *r, struct bs_io *io, rbd_completion_t c)
{
	switch (io->op) {
	case BS_READ:
		return rbd_aio_read(r->image, io->off, io->len, io->buf, c);
	case BS_WRITE:
		/* durable when acknowledged (cache off): FUA is implied */
		return rbd_aio_write(r->image, io->off, io->len, io->buf, c);
	case BS_FLUSH:
		return rbd_aio_flush(r->image, c);
	case BS_UNMAP:
		return rbd_aio_discard(r->image, io->off, io->len, c);
	case BS_WRITE_ZEROES:
		/* WRITE SAME without UNMAP: the blocks stay mapped (SBC-3
		 * 4.7.3.4), hence the thick zeroing. */
		return rbd_aio_write_zeroes(r->image, io->off, io->len, c,
					    RBD_WRITE_ZEROES_FLAG_THICK_PROVISION,
					    0);
	case BS_WRITE_SAME:
		return rbd_aio_writesame(r->image, io->off, io->len, io->buf,
					 io->same_len, c, 0);
	case BS_COMPARE_AND_WRITE: {
		ssize_t e = rbd_aio_compare_and_write(r->image, io->off,
						      io->len, io->cmp_buf,
						      io->buf, c,
						      &io->miscompare_off, 0);
		return e < 0 ? (int)e : 0;
	}
	}
	return -EINVAL;
}

/* Send an admitted request to librbd (on its worker, or synchronously). */
static void start(struct bs_rbd *r, struct bs_io *io)
{
	struct rbd_conn *cn;
	rbd_completion_t c;
	bool async = io->loop != NULL;
	unsigned slot;
	int e;

	cn = conn_enter(r, &slot);
	io->bs_priv = r;
	io->done_bytes = slot;
	e = rbd_aio_create_completion(io, async ? aio_cb : NULL, &c);
	if (e < 0) {
		conn_leave(r, slot);
		if (async)
			admit_release(r, io);
		io->done(io, e);
		return;
	}
	e = issue(cn, io, c);
	if (e < 0) {
		/* not queued: no callback will come */
		rbd_aio_release(c);
		conn_leave(r, slot);
		if (async)
			admit_release(r, io);
		io->done(io, map_res(r, io, e));
		return;
	}
	if (async)
		return;
	rbd_aio_wait_for_complete(c);
	e = map_res(r, io, rbd_aio_get_return_value(c));
	rbd_aio_release(c);
	conn_leave(r, slot);
	io->done(io, e);
}

/* A waiting request admitted by a completion, back on its worker. */
static void post_issue(void *arg)
{
	struct bs_io *io = arg;

	start(io->bs_priv, io);
}

static void rbd_submit(struct bs_dev *dev, struct bs_io *io)
{
	struct bs_rbd *r = dev->priv;
	int e = bs_io_check(dev, io);

	if (e <= 0) {
		io->done(io, e);
		return;
	}
	io->miscompare_off = 0;
	/* a synchronous caller (control thread, tests) may wait, and is
	 * not counted */
	if (io->loop) {
		io->bs_priv = r;
		if (!admit(r, io))
			return;
	}
	start(r, io);
}

/* ---- GET LBA STATUS (SBC-3 5.7) ---- */

struct diff_state {
	uint64_t off;   /* asked about */
	uint64_t first; /* start of the first allocated extent at or after off */
	uint64_t end;   /* its end */
	bool found;
};

static int diff_cb(uint64_t off, size_t len, int exists, void *arg)
{
	struct diff_state *d = arg;

	if (!exists || d->found)
		return d->found ? -EEXIST : 0;
	d->first = off;
	d->end = off + len;
	d->found = true;
	/* the first extent is all we need: stop the iteration */
	return -EEXIST;
}

/* Allocation from the image itself: with fast-diff (object map) this is a
 * local lookup; without it librbd asks the OSDs, so it runs synchronously
 * only for GET LBA STATUS, which initiators issue rarely. */
static int rbd_map_status(struct bs_dev *dev, uint64_t off, uint64_t *len,
			  bool *mapped)
{
	struct bs_rbd *r = dev->priv;
	struct diff_state d = { .off = off };
	unsigned slot;
	struct rbd_conn *cn = conn_enter(r, &slot);
	int e;

	e = rbd_diff_iterate2(cn->image, NULL, off, *len, 1, 1, diff_cb, &d);
	conn_leave(r, slot);
	if (e < 0 && e != -EEXIST)
		return e;
	if (!d.found) {
		*mapped = false;
		return 0;
	}
	if (d.first <= off) {
		*mapped = true;
		if (d.end - off < *len)
			*len = d.end - off;
	} else {
		*mapped = false;
		if (d.first - off < *len)
			*len = d.first - off;
	}
	return 0;
}

const struct bs_ops bs_rbd_ops = {
	.plugin = "user:rbd",
	.open = rbd_open_dev,
	.close = rbd_close_dev,
	.submit = rbd_submit,
	.map_status = rbd_map_status,
	.resize = rbd_resize_dev,
	.pr_load = rbd_pr_load,
	.pr_store = rbd_pr_store,
	.pr_attach = rbd_pr_attach,
};
