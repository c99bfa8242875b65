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
 * pr=cluster: persistent reservations shared by every gateway that
 * exports the image, kept in a RADOS object beside it (rbd_pr.c). */
#include "backstore/bs_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <rados/librados.h>
#include <rbd/librbd.h>

#include "backstore/rbd_pr.h"
#include "util/log.h"

#define RBD_DEFAULT_TIMEOUT 30 /* seconds, when osd_op_timeout is not given */
#define RBD_DEFAULT_PR_LEASE 10 /* seconds, when pr_lease is not given */

struct bs_rbd {
	rados_t cluster;
	rados_ioctx_t ioctx;
	rbd_image_t image;
	uint64_t watch;
	bool watching;
	struct bs_dev *dev;
	struct rbd_pr *pr; /* pr=cluster */
};

/* ---- configuration string ---- */

struct rbd_cfg {
	char pool[256];
	char image[256];
	char conf[4096];
	char id[128];
	unsigned timeout;
	bool pr_cluster;   /* pr=cluster (default pr=local) */
	unsigned pr_lease; /* seconds */
};

static int parse_cfg(const char *s, struct rbd_cfg *c, char *err, size_t errlen)
{
	char buf[4096 + 512], *save = NULL, *tok, *slash;

	memset(c, 0, sizeof(*c));
	c->timeout = RBD_DEFAULT_TIMEOUT;
	c->pr_lease = RBD_DEFAULT_PR_LEASE;
	if (!s || !s[0]) {
		bs_seterr(err, errlen,
			  "cfgstring must be given: POOL/IMAGE[;conf=PATH][;id=USER][;osd_op_timeout=N][;pr=cluster[;pr_lease=N]]");
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
	struct bs_rbd *r = arg;
	struct bs_dev *dev = r->dev;
	uint64_t size, old;

	/* Runs on a librbd thread after the image header changed (resize,
	 * snapshot, lock change, ...); only a new size matters here. */
	if (rbd_get_size(r->image, &size) < 0)
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
static int rbd_resize_dev(struct bs_dev *dev, uint64_t want, uint64_t *size,
			  char *err, size_t errlen)
{
	struct bs_rbd *r = dev->priv;
	int e;

	if (want && (e = rbd_resize(r->image, want)) < 0) {
		bs_seterr(err, errlen, "rbd_resize of %s to %" PRIu64
			  " bytes: %s", dev->path, want, strerror(-e));
		return e;
	}
	if ((e = rbd_get_size(r->image, size)) < 0) {
		bs_seterr(err, errlen, "rbd_get_size of %s: %s", dev->path,
			  strerror(-e));
		return e;
	}
	return 0;
}

/* ---- open / close ---- */

static void rbd_teardown(struct bs_rbd *r)
{
	rbd_pr_close(r->pr);
	if (r->watching)
		rbd_update_unwatch(r->image, r->watch);
	if (r->image)
		rbd_close(r->image);
	if (r->ioctx)
		rados_ioctx_destroy(r->ioctx);
	if (r->cluster)
		rados_shutdown(r->cluster);
	free(r);
}

static int conf_set(struct bs_rbd *r, const char *k, const char *v,
		    char *err, size_t errlen)
{
	int e = rados_conf_set(r->cluster, k, v);

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
static void image_identity(struct bs_rbd *r, char out[37])
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

static int rbd_open_dev(struct bs_dev *dev, const struct bs_config *cfg,
			char *err, size_t errlen)
{
	struct rbd_cfg c;
	struct bs_rbd *r;
	rbd_image_info_t info;
	char tmo[16];
	int e;

	e = parse_cfg(cfg->dev, &c, err, errlen);
	if (e < 0)
		return e;
	if (strlen(cfg->dev) >= sizeof(dev->path)) {
		bs_seterr(err, errlen, "cfgstring is too long");
		return -ENAMETOOLONG;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->dev = dev;
	e = rados_create(&r->cluster, c.id[0] ? c.id : NULL);
	if (e < 0) {
		r->cluster = NULL;
		bs_seterr(err, errlen, "rados_create: %s", strerror(-e));
		goto fail;
	}
	/* NULL: the default search ($CEPH_CONF, /etc/ceph/ceph.conf, ...) */
	e = rados_conf_read_file(r->cluster, c.conf[0] ? c.conf : NULL);
	if (e < 0) {
		bs_seterr(err, errlen, "cannot read ceph config %s: %s",
			  c.conf[0] ? c.conf : "(default)", strerror(-e));
		goto fail;
	}
	snprintf(tmo, sizeof(tmo), "%u", c.timeout);
	/* Bound every wait on the cluster (connect, mon and OSD requests):
	 * a hung request is what makes an initiator's multipath give up on
	 * the whole path; an error it can retry is what it wants. The cache
	 * off makes an acknowledged write a durable one (see the top). */
	if ((e = conf_set(r, "rados_osd_op_timeout", tmo, err, errlen)) < 0 ||
	    (e = conf_set(r, "rados_mon_op_timeout", tmo, err, errlen)) < 0 ||
	    (e = conf_set(r, "client_mount_timeout", tmo, err, errlen)) < 0 ||
	    (e = conf_set(r, "rbd_cache", "false", err, errlen)) < 0 ||
	    /* UNMAP promises zeros on read (LBPRZ): partial-object discards
	     * must zero, not be skipped. */
	    (e = conf_set(r, "rbd_skip_partial_discard", "false", err, errlen)) < 0 ||
	    /* librbd may write straight from the task buffer instead of
	     * copying it (librbd's create_write_raw: with the cache off it
	     * then holds back the completion until its last reference to the
	     * buffer is gone). The buffer lives until the completion, so
	     * this is safe, and it is one copy of every byte fewer. */
	    (e = conf_set(r, "rbd_disable_zero_copy_writes", "false", err,
			  errlen)) < 0)
		goto fail;
	/* pr=cluster: the objecter pings watches once per tick; a tick of a
	 * second keeps rados_watch_check's age well under the lease */
	if (c.pr_cluster &&
	    (e = conf_set(r, "objecter_tick_interval", "1", err, errlen)) < 0)
		goto fail;
	e = rados_connect(r->cluster);
	if (e < 0) {
		bs_seterr(err, errlen, "cannot connect to the Ceph cluster%s%s: %s",
			  c.conf[0] ? " of " : "", c.conf, strerror(-e));
		rados_shutdown(r->cluster);
		r->cluster = NULL;
		goto fail;
	}
	e = rados_ioctx_create(r->cluster, c.pool, &r->ioctx);
	if (e < 0) {
		r->ioctx = NULL;
		bs_seterr(err, errlen, "pool %s: %s", c.pool, strerror(-e));
		goto fail;
	}
	e = rbd_open(r->ioctx, c.image, &r->image, NULL);
	if (e == -ENOENT && cfg->create) {
		int order = 0;

		if (!cfg->size) {
			bs_seterr(err, errlen, "size must be given to create image %s/%s",
				  c.pool, c.image);
			e = -EINVAL;
			goto fail;
		}
		e = rbd_create(r->ioctx, c.image, cfg->size, &order);
		if (e < 0) {
			bs_seterr(err, errlen, "cannot create image %s/%s: %s",
				  c.pool, c.image, strerror(-e));
			goto fail;
		}
		e = rbd_open(r->ioctx, c.image, &r->image, NULL);
	}
	if (e < 0) {
		r->image = NULL;
		bs_seterr(err, errlen, "cannot open image %s/%s: %s%s", c.pool,
			  c.image, strerror(-e),
			  e == -ENOENT ? " (create it with rbd create, or pass create_image=true)" : "");
		goto fail;
	}
	e = rbd_stat(r->image, &info, sizeof(info));
	if (e < 0) {
		bs_seterr(err, errlen, "rbd_stat %s/%s: %s", c.pool, c.image,
			  strerror(-e));
		goto fail;
	}
	dev->block_size = cfg->block_size ? cfg->block_size : 512;
	/* The LUN is the image: a size given at create time must not
	 * promise blocks that are not there. */
	if (cfg->size > info.size) {
		bs_seterr(err, errlen,
			  "size %" PRIu64 " is larger than image %s/%s (%" PRIu64
			  " bytes): grow it with rbd resize",
			  cfg->size, c.pool, c.image, info.size);
		e = -EINVAL;
		goto fail;
	}
	dev->size = info.size - info.size % dev->block_size;
	if (!dev->size) {
		bs_seterr(err, errlen, "image %s/%s is smaller than one block",
			  c.pool, c.image);
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
	atomic_store(&dev->write_back, false);
	image_identity(r, dev->ident_uuid);
	memcpy(dev->path, cfg->dev, strlen(cfg->dev) + 1);
	dev->priv = r;
	if (c.pr_cluster) {
		char id[128];

		e = rbd_get_id(r->image, id, sizeof(id));
		if (e < 0) {
			bs_seterr(err, errlen, "pr=cluster: rbd_get_id %s/%s: %s",
				  c.pool, c.image, strerror(-e));
			goto fail;
		}
		e = rbd_pr_open(dev, r->cluster, r->ioctx, id, c.pr_lease,
				&r->pr, err, errlen);
		if (e < 0)
			goto fail;
	}
	e = rbd_update_watch(r->image, &r->watch, update_cb, r);
	if (e < 0)
		log_warn("user:rbd %s: rbd_update_watch: %s (resizes by other clients will not be seen)",
			 dev->name, strerror(-e));
	else
		r->watching = true;
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
	 * background work. */
	if (r)
		rbd_teardown(r);
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

static int map_res(const struct bs_io *io, ssize_t res)
{
	if (res >= 0)
		return 0;
	if (io->op == BS_COMPARE_AND_WRITE && res == -EILSEQ)
		return -EILSEQ;
	return (int)res;
}

/* librbd thread: hand the result to the worker the request came from. */
static void aio_cb(rbd_completion_t c, void *arg)
{
	struct bs_io *io = arg;
	ssize_t res = rbd_aio_get_return_value(c);

	rbd_aio_release(c);
	io->bs_priv = (void *)(intptr_t)map_res(io, res);
	/* the node lives in the request: no allocation, cannot fail */
	io->post.fn = post_done;
	io->post.arg = io;
	io->post.owned = false;
	io_loop_post_node(io->loop, &io->post);
}

static int issue(struct bs_rbd *r, struct bs_io *io, rbd_completion_t c)
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

static void rbd_submit(struct bs_dev *dev, struct bs_io *io)
{
	struct bs_rbd *r = dev->priv;
	rbd_completion_t c;
	bool async = io->loop != NULL;
	int e = bs_io_check(dev, io);

	if (e <= 0) {
		io->done(io, e);
		return;
	}
	io->miscompare_off = 0;
	e = rbd_aio_create_completion(io, async ? aio_cb : NULL, &c);
	if (e < 0) {
		io->done(io, e);
		return;
	}
	e = issue(r, io, c);
	if (e < 0) {
		/* not queued: no callback will come */
		rbd_aio_release(c);
		io->done(io, e);
		return;
	}
	if (async)
		return;
	rbd_aio_wait_for_complete(c);
	e = map_res(io, rbd_aio_get_return_value(c));
	rbd_aio_release(c);
	io->done(io, e);
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
	int e;

	e = rbd_diff_iterate2(r->image, NULL, off, *len, 1, 1, diff_cb, &d);
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
