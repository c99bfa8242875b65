/* Backstores: one ops table per plugin (LIO's fileio, iblock, rd_mcp,
 * pscsi). The core never branches on a backstore's type. */
#ifndef UT_BACKSTORE_H
#define UT_BACKSTORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/loop.h"

enum bs_op {
	BS_READ,
	BS_WRITE,
	BS_FLUSH,        /* make everything written so far durable */
	BS_UNMAP,        /* deallocate [off, off+len); reads return zeros */
	BS_WRITE_ZEROES, /* write zeros over [off, off+len) */
	/* Optional ops: only issued when the device's can_write_same /
	 * can_caw says the plugin does them itself. */
	BS_WRITE_SAME,   /* repeat buf[0, same_len) over [off, off+len) */
	BS_COMPARE_AND_WRITE, /* atomically: if [off, off+len) == cmp_buf
			       * write buf there, else -EILSEQ with
			       * miscompare_off (SBC-3 5.2) */
};

/* One I/O. The caller owns it until done() runs; done() may run before
 * submit() returns (ramdisk, synchronous fallback). */
struct bs_io {
	enum bs_op op;
	uint64_t off;         /* bytes */
	uint64_t len;         /* bytes */
	void *buf;            /* READ / WRITE data; 4096-byte aligned */
	bool fua;             /* WRITE: durable before done() (SBC-3 FUA) */
	struct io_loop *loop; /* worker to run on; NULL = synchronous */
	void (*done)(struct bs_io *io, int res); /* res: 0 or -errno */
	uint32_t same_len;    /* BS_WRITE_SAME: bytes of pattern in buf */
	const void *cmp_buf;  /* BS_COMPARE_AND_WRITE: verify instance */
	uint64_t miscompare_off; /* out: first differing byte (from off) */
	/* private to the backstore */
	struct io_uring_cb ucb;
	struct io_post post;  /* completion hand-off to loop (user:rbd) */
	uint64_t done_bytes;
	void *bs_priv;
};

struct bs_config {
	const char *name;
	const char *dev;   /* fileio: file or block device; block: device */
	uint64_t size;     /* bytes; fileio: size of a new file; ramdisk */
	bool write_back;   /* fileio: cache writes (false = write-through) */
	bool readonly;     /* block */
	bool nullio;       /* ramdisk: reads zeros, drops writes */
	bool sparse;       /* fileio: create with ftruncate (else fallocate) */
	uint32_t block_size;
	bool create;       /* user:rbd: create the image (of size) if missing */
};

struct bs_dev;

struct bs_ops {
	const char *plugin; /* "fileio", "block", "ramdisk", "pscsi" */
	/* Fills dev->size, dev->readonly, dev->write_back, dev->can_unmap,
	 * dev->rotational, dev->path, dev->priv. err gets a message
	 * fit for an administrator on failure. */
	int (*open)(struct bs_dev *dev, const struct bs_config *cfg,
		    char *err, size_t errlen);
	void (*close)(struct bs_dev *dev);
	void (*submit)(struct bs_dev *dev, struct bs_io *io);
	/* Optional (NULL: everything is mapped). Provisioning state at byte
	 * off: *mapped, and in *len (in: the most to look at) how many
	 * bytes from off share it. Synchronous; 0 or -errno. For GET LBA
	 * STATUS (SBC-3 5.7). */
	int (*map_status)(struct bs_dev *dev, uint64_t off, uint64_t *len,
			  bool *mapped);
	/* Optional (NULL: the size is fixed). Online resize, from the
	 * control thread while I/O goes on. want: new size in bytes, whole
	 * blocks; 0 = the size the medium has now (a grown block device).
	 * The plugin makes [0, new size) usable before returning and puts
	 * it in *size; shrinking (new < dev->size) is only asked for with
	 * force, and the plugin may then drop what lies past the new end
	 * once bs_resize has stopped new I/O there (shrink_tail). */
	int (*resize)(struct bs_dev *dev, uint64_t want, uint64_t *size,
		      char *err, size_t errlen);
	void (*shrink_tail)(struct bs_dev *dev, uint64_t old_size);
	/* Optional, only when the plugin set dev->pr_shared: persistent
	 * reservation state kept in the medium's cluster, shared by every
	 * gateway that serves it (user:rbd with pr=cluster, docs/rbd.md).
	 * The bytes are the SCSI layer's (src/scsi/pr.c encodes them); the
	 * plugin stores them with a version. Both calls block (never call
	 * them on a worker or with the LU's lock held).
	 * pr_load: the stored state, malloc'd in *buf (NUL-terminated, *len
	 * bytes, 0 = nothing stored yet); 0 or -errno.
	 * pr_store: compare-and-swap: replaces the state if the stored one
	 * is still the one the caller loaded (version: its "version"
	 * member, 0 for none), else -ECANCELED. On success it returns only
	 * once every other live gateway has taken the new state (the
	 * changed hook ran there) or can no longer serve the old one (its
	 * lease ran out). */
	int (*pr_load)(struct bs_dev *dev, char **buf, size_t *len);
	int (*pr_store)(struct bs_dev *dev, uint64_t version, uint64_t new_version,
			const char *buf, size_t len);
	/* Who to tell when another gateway stored a new state: changed runs
	 * on a plugin thread with that state (data NULL: call pr_load), and
	 * must have taken it when it returns; 0 or -errno. pr_attach calls
	 * changed(NULL) once before it returns, for the current state; if
	 * that fails the plugin retries on its own until it succeeds. */
	void (*pr_attach)(struct bs_dev *dev,
			  int (*changed)(void *arg, const char *data, size_t len),
			  void *arg);
};

struct bs_dev {
	const struct bs_ops *ops;
	char name[64];
	char path[4096];       /* backing file / device, "" for ramdisk */
	uint64_t size;         /* bytes */
	uint32_t block_size;
	bool readonly;
	atomic_bool write_back; /* volatile write cache on (MODE SELECT WCE) */
	bool can_unmap;
	bool rotational;
	bool can_write_same;   /* BS_WRITE_SAME offloaded to the plugin */
	bool can_caw;          /* BS_COMPARE_AND_WRITE offloaded to the plugin */
	uint32_t caw_max_len;  /* ... for at most this many bytes (0: any) */
	uint32_t unmap_granularity; /* bytes; 0 = none to report (VPD B0) */
	/* Set by the layer above (the SCSI LU) before I/O starts: the plugin
	 * calls it, from any thread, when the medium's size changed under
	 * it (an RBD image resized by another client). */
	void (*resized)(struct bs_dev *dev, uint64_t new_size, void *arg);
	void *resized_arg;
	/* The medium's own identity, when it has one that every process
	 * opening it sees (an RBD image: cluster fsid, pool, image id): a
	 * UUID the storage object takes as its unit serial when none is
	 * given, so every gateway exporting it reports the same LU (VPD
	 * 0x80 / 0x83). "" for media without one (a random one is made). */
	char ident_uuid[37];
	/* The plugin decides the LU's ALUA states (user:rbd ;ha=1: the
	 * owner of the image's exclusive lock is optimized, docs/rbd.md):
	 * administrators and SET TARGET PORT GROUPS may not set them. The
	 * layer above sets the two calls (as resized, with resized_arg,
	 * before I/O starts; read with acquire since the plugin's thread
	 * may already run); the plugin calls them from its own thread.
	 * local_ports: the RTPIs this process serves the LU through, at most
	 * max, ascending; owner_ports: the owner's ports, n == 0 none. */
	bool alua_managed;
	unsigned (*local_ports)(struct bs_dev *dev, uint16_t *rtpi,
				unsigned max, void *arg);
	void (*owner_ports)(struct bs_dev *dev, const uint16_t *rtpi,
			    unsigned n, void *arg);
	/* The persistent reservation state lives in the medium (pr_load /
	 * pr_store above). pr_valid_until_ms (CLOCK_MONOTONIC, io_now_ms) is
	 * the plugin's lease on the copy the SCSI layer caches: past it (a
	 * lost watch, a frozen process) the cache may be stale and commands
	 * that depend on it must not be served from it. */
	bool pr_shared;
	_Atomic uint64_t pr_valid_until_ms;
	void *priv;
};

const struct bs_ops *bs_find(const char *plugin);

/* Allocates and opens; *out is NULL on failure. */
int bs_open(const char *plugin, const struct bs_config *cfg,
	    struct bs_dev **out, char *err, size_t errlen);
void bs_close(struct bs_dev *dev);

/* Resizes dev live (see bs_ops.resize): size in bytes (rounded down to
 * whole blocks), 0 = re-read the medium's size. A smaller size is refused
 * unless force. On success dev->size holds the new size and
 * dev->resized has told the layer above; *out (if not NULL) is the size.
 * -EOPNOTSUPP when the plugin cannot resize. */
int bs_resize(struct bs_dev *dev, uint64_t size, bool force, uint64_t *out,
	      char *err, size_t errlen);

static inline void bs_submit(struct bs_dev *dev, struct bs_io *io)
{
	dev->ops->submit(dev, io);
}

extern const struct bs_ops bs_ramdisk_ops;
extern const struct bs_ops bs_fileio_ops;
extern const struct bs_ops bs_block_ops;
extern const struct bs_ops bs_pscsi_ops;
extern const struct bs_ops bs_rbd_ops;

#endif
