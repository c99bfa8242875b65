/* fileio: LIO's fileio. The LUN is a regular file (created on first use)
 * or a block device, through the page cache. write_back=false is
 * write-through: every WRITE is issued with RWF_DSYNC, so the initiator
 * sees WCE=0 and never needs SYNCHRONIZE CACHE. I/O goes through the
 * shared io_uring engine (uring_io.c).
 *
 * Size of a regular file: a new file is created at cfg->size. An existing
 * file keeps its contents; the LUN is max(file size, cfg->size): a larger
 * cfg->size grows the file (how an administrator resizes a LUN), a
 * smaller one never truncates data. The size is rounded down to whole
 * blocks. */
#include "backstore/bs_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "util/log.h"

/* Grows the regular file on fd from cur to size bytes. */
static int grow(int fd, const char *path, uint64_t cur, uint64_t size,
		bool sparse, char *err, size_t errlen)
{
	int e;

	if (sparse) {
		if (ftruncate(fd, (off_t)size) == 0)
			return 0;
		e = errno;
	} else {
		/* Allocating up front trades creation time for never seeing
		 * ENOSPC on a WRITE later (a thick LUN). */
		e = posix_fallocate(fd, (off_t)cur, (off_t)(size - cur));
		if (!e)
			return 0;
	}
	bs_seterr(err, errlen, "Could not %s %s to %llu bytes: %s",
		  sparse ? "size" : "allocate", path,
		  (unsigned long long)size, strerror(e));
	return -e;
}

static int fileio_open(struct bs_dev *dev, const struct bs_config *cfg,
		       char *err, size_t errlen)
{
	const char *path = cfg->dev;
	bool created = false;
	uint64_t size;
	struct bs_fd *f;
	struct stat st;
	int fd, flags, r, e;

	if (!path || !path[0]) {
		bs_seterr(err, errlen, "a file must be given");
		return -EINVAL;
	}
	if (strlen(path) >= sizeof(dev->path)) {
		bs_seterr(err, errlen, "file path is too long");
		return -ENAMETOOLONG;
	}
	/* No silent fallback to O_RDONLY: an export the administrator
	 * thinks is writable must not turn read-only on a permission
	 * problem. Read-only is only ever asked for explicitly. */
	flags = (cfg->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	/* A block device opened for writing is claimed with O_EXCL (EBUSY
	 * while mounted), as block.c does. O_EXCL without O_CREAT is only
	 * defined for block devices, hence the stat first. */
	if (!cfg->readonly && stat(path, &st) == 0 && S_ISBLK(st.st_mode))
		flags |= O_EXCL;
	fd = open(path, flags);
	if (fd < 0 && errno == ENOENT && !cfg->readonly) {
		if (!cfg->size) {
			bs_seterr(err, errlen, "size must be given to create %s",
				  path);
			return -EINVAL;
		}
		/* O_EXCL: if someone creates it meanwhile, we must not
		 * believe the file is ours to size and remove on error. */
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			e = errno;
			bs_seterr(err, errlen, "Could not create %s: %s", path,
				  strerror(e));
			return -e;
		}
		created = true;
	} else if (fd < 0) {
		e = errno;
		bs_seterr(err, errlen, "Could not open %s: %s%s", path,
			  strerror(e),
			  e == EBUSY ? " (mounted, or in use by another backstore?)"
				     : "");
		return -e;
	}
	if (fstat(fd, &st)) {
		e = errno;
		bs_seterr(err, errlen, "Could not stat %s: %s", path,
			  strerror(e));
		r = -e;
		goto fail;
	}

	if (S_ISBLK(st.st_mode)) {
		struct bs_blkinfo bi;

		r = bs_blkdev_query(fd, &st, path, &bi, err, errlen);
		if (r < 0)
			goto fail;
		/* The device's size is the LUN's: cfg->size cannot grow a
		 * device, and LIO ignores it here too. */
		size = bi.size;
		dev->block_size = cfg->block_size ? cfg->block_size
			: bs_block_size_valid(bi.lbs) ? bi.lbs : 512;
		dev->rotational = bi.rotational;
		/* See block.c: UNMAP on a device is only cheap with
		 * write-zeroes support. */
		dev->can_unmap = bi.write_zeroes;
	} else if (S_ISREG(st.st_mode)) {
		uint64_t cur = (uint64_t)st.st_size;

		size = cur > cfg->size ? cur : cfg->size;
		if (!size) {
			bs_seterr(err, errlen,
				  "%s is empty: size must be given", path);
			r = -EINVAL;
			goto fail;
		}
		if (size > cur) {
			if (cfg->readonly) {
				bs_seterr(err, errlen,
					  "%s is smaller than size and read-only",
					  path);
				r = -EROFS;
				goto fail;
			}
			r = grow(fd, path, cur, size, cfg->sparse, err, errlen);
			if (r < 0)
				goto fail;
		}
		dev->block_size = cfg->block_size ? cfg->block_size : 512;
		dev->rotational = false;
		dev->can_unmap = !cfg->readonly && bs_fd_can_punch(fd, size);
	} else {
		bs_seterr(err, errlen, "%s is not a regular file or block device",
			  path);
		r = -EINVAL;
		goto fail;
	}

	dev->size = size - size % dev->block_size;
	if (!dev->size) {
		bs_seterr(err, errlen, "%s is smaller than one block (%u bytes)",
			  path, dev->block_size);
		r = -EINVAL;
		goto fail;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		bs_seterr(err, errlen, "out of memory");
		r = -ENOMEM;
		goto fail;
	}
	f->fd = fd;
	f->blkdev = S_ISBLK(st.st_mode);
	f->thick = !cfg->sparse;
	{
		struct statfs sfs;

		f->memfs = !f->blkdev && fstatfs(fd, &sfs) == 0 &&
			   (sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC);
	}
	dev->priv = f;
	dev->readonly = cfg->readonly;
	atomic_store(&dev->write_back, cfg->write_back);
	memcpy(dev->path, path, strlen(path) + 1);
	return 0;
fail:
	close(fd);
	/* Leave no half-made file behind (e.g. posix_fallocate ENOSPC). */
	if (created)
		unlink(path);
	return r;
}

/* SEEK_DATA / SEEK_HOLE tell a hole from data in a regular file; a block
 * device reports everything as data. */
static int fileio_map_status(struct bs_dev *dev, uint64_t off, uint64_t *len,
			     bool *mapped)
{
	const struct bs_fd *f = dev->priv;
	off_t data, hole;
	uint64_t n;

	data = lseek(f->fd, (off_t)off, SEEK_DATA);
	if (data < 0 && errno == ENXIO) {
		/* a hole up to the end of the file */
		*mapped = false;
		return 0;
	}
	if (data < 0)
		return -errno;
	if ((uint64_t)data > off) {
		n = (uint64_t)data - off;
		*mapped = false;
	} else {
		hole = lseek(f->fd, (off_t)off, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		n = (uint64_t)hole - off;
		*mapped = true;
	}
	if (n < *len)
		*len = n;
	return 0;
}

/* Online resize of a file: a larger size grows the file as creation did
 * (sparse, or allocated for a thick LUN); no size takes the file's own
 * (grown by someone else); a forced shrink truncates it once bs_resize
 * has moved the end (fileio_shrink_tail). On a block device: the
 * device's size (block.c). */
static int fileio_resize(struct bs_dev *dev, uint64_t want, uint64_t *size,
			 char *err, size_t errlen)
{
	const struct bs_fd *f = dev->priv;
	struct stat st;
	int e;

	if (f->blkdev)
		return bs_blkdev_resize(dev, want, size, err, errlen);
	if (fstat(f->fd, &st)) {
		e = errno;
		bs_seterr(err, errlen, "Could not stat %s: %s", dev->path,
			  strerror(e));
		return -e;
	}
	if (!want) {
		*size = (uint64_t)st.st_size;
		return 0;
	}
	if (want > (uint64_t)st.st_size) {
		int r;

		if (dev->readonly) {
			bs_seterr(err, errlen, "%s is read-only", dev->path);
			return -EROFS;
		}
		r = grow(f->fd, dev->path, (uint64_t)st.st_size, want,
			 !f->thick, err, errlen);
		if (r < 0)
			return r;
	}
	*size = want;
	return 0;
}

static void fileio_shrink_tail(struct bs_dev *dev, uint64_t old_size)
{
	const struct bs_fd *f = dev->priv;
	uint64_t now = __atomic_load_n(&dev->size, __ATOMIC_RELAXED);

	(void)old_size;
	if (!f->blkdev && !dev->readonly && ftruncate(f->fd, (off_t)now))
		log_warn("fileio %s: could not truncate %s to %llu bytes: %s",
			 dev->name, dev->path, (unsigned long long)now,
			 strerror(errno));
}

const struct bs_ops bs_fileio_ops = {
	.plugin = "fileio",
	.open = fileio_open,
	.close = bs_fd_close,
	.submit = bs_fd_submit,
	.map_status = fileio_map_status,
	.resize = fileio_resize,
	.shrink_tail = fileio_shrink_tail,
};
