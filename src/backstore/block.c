/* block: LIO's iblock. Exports a whole block device (or partition) with
 * O_DIRECT, so the page cache neither doubles memory nor hides the
 * device's own write cache; durability is the device's (see write_back).
 * I/O goes through the shared io_uring engine (uring_io.c). */
#include "backstore/bs_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Reads /sys/dev/block/MAJ:MIN/queue/<attr>. A partition has no queue
 * directory of its own; its parent disk's is one level up. Returns the
 * first line without the newline, or "" when unreadable. */
static void sysfs_queue_attr(dev_t rdev, const char *attr, char *buf,
			     size_t len)
{
	static const char *const fmts[] = {
		"/sys/dev/block/%u:%u/queue/%s",
		"/sys/dev/block/%u:%u/../queue/%s",
	};

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		char path[256];
		FILE *fp;

		snprintf(path, sizeof(path), fmts[i], major(rdev), minor(rdev),
			 attr);
		fp = fopen(path, "re");
		if (!fp)
			continue;
		if (!fgets(buf, (int)len, fp))
			buf[0] = '\0';
		fclose(fp);
		buf[strcspn(buf, "\n")] = '\0';
		return;
	}
}

int bs_blkdev_query(int fd, const struct stat *st, const char *path,
		    struct bs_blkinfo *bi, char *err, size_t errlen)
{
	char v[64];
	int lbs;

	memset(bi, 0, sizeof(*bi));
	if (ioctl(fd, BLKGETSIZE64, &bi->size) || ioctl(fd, BLKSSZGET, &lbs)) {
		int e = errno;

		bs_seterr(err, errlen, "Could not get the size of %s: %s", path,
			  strerror(e));
		return -e;
	}
	bi->lbs = lbs > 0 ? (uint32_t)lbs : 512;

	/* Missing sysfs (containers) leaves the conservative defaults:
	 * not rotational, no volatile cache, no write-zeroes. */
	sysfs_queue_attr(st->st_rdev, "rotational", v, sizeof(v));
	bi->rotational = strcmp(v, "1") == 0;
	sysfs_queue_attr(st->st_rdev, "write_cache", v, sizeof(v));
	bi->write_cache = strcmp(v, "write back") == 0;
	sysfs_queue_attr(st->st_rdev, "write_zeroes_max_bytes", v, sizeof(v));
	bi->write_zeroes = strtoull(v, NULL, 10) > 0;
	return 0;
}

static int block_open(struct bs_dev *dev, const struct bs_config *cfg,
		      char *err, size_t errlen)
{
	struct bs_blkinfo bi;
	struct bs_fd *f;
	struct stat st;
	int fd, flags, r, e;

	if (!cfg->dev || !cfg->dev[0]) {
		bs_seterr(err, errlen, "a block device must be given");
		return -EINVAL;
	}
	if (strlen(cfg->dev) >= sizeof(dev->path)) {
		bs_seterr(err, errlen, "device path is too long");
		return -ENAMETOOLONG;
	}
	/* stat first: O_DIRECT on a regular file would fail with a less
	 * helpful EINVAL on some file systems. */
	if (stat(cfg->dev, &st)) {
		e = errno;
		bs_seterr(err, errlen, "Could not open %s: %s", cfg->dev,
			  strerror(e));
		return -e;
	}
	if (!S_ISBLK(st.st_mode)) {
		bs_seterr(err, errlen, "%s is not a block device", cfg->dev);
		return -ENOTBLK;
	}

	/* O_EXCL on a block device fails with EBUSY while it is mounted or
	 * held by another exclusive opener (LIO's iblock claims the device
	 * the same way): exporting a mounted file system read-write would
	 * corrupt it. Read-only exports skip the claim, as they cannot. */
	flags = O_DIRECT | O_CLOEXEC | (cfg->readonly ? O_RDONLY : O_RDWR | O_EXCL);
	fd = open(cfg->dev, flags);
	if (fd < 0) {
		e = errno;
		bs_seterr(err, errlen, "Could not open %s: %s%s", cfg->dev,
			  strerror(e),
			  e == EBUSY ? " (mounted, or in use by another backstore?)"
				     : "");
		return -e;
	}
	/* The path may have changed between stat and open. */
	if (fstat(fd, &st) || !S_ISBLK(st.st_mode)) {
		bs_seterr(err, errlen, "%s is not a block device", cfg->dev);
		r = -ENOTBLK;
		goto fail;
	}
	r = bs_blkdev_query(fd, &st, cfg->dev, &bi, err, errlen);
	if (r < 0)
		goto fail;

	dev->block_size = cfg->block_size ? cfg->block_size : bi.lbs;
	/* O_DIRECT transfers must be multiples of the logical block size,
	 * so a LUN block smaller than the device's cannot work. */
	if (dev->block_size % bi.lbs) {
		bs_seterr(err, errlen,
			  "block_size %u is not a multiple of %s's logical block size %u",
			  dev->block_size, cfg->dev, bi.lbs);
		r = -EINVAL;
		goto fail;
	}
	if (!bs_block_size_valid(dev->block_size)) {
		bs_seterr(err, errlen,
			  "%s has a logical block size of %u, which is not supported",
			  cfg->dev, dev->block_size);
		r = -EINVAL;
		goto fail;
	}
	dev->size = bi.size - bi.size % dev->block_size;
	if (!dev->size) {
		bs_seterr(err, errlen, "%s is empty", cfg->dev);
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
	f->blkdev = true;
	dev->priv = f;
	dev->readonly = cfg->readonly;
	/* With O_DIRECT the only volatile cache is the device's own: report
	 * it as it is (SBC-3 WCE), so initiators send SYNCHRONIZE CACHE
	 * exactly when the device needs it. */
	atomic_store(&dev->write_back, bi.write_cache);
	/* UNMAP is a write-zeroes request that may deallocate (uring_io.c);
	 * without device support it would degrade into writing zeros over
	 * whatever range the initiator discards (mkfs discards everything),
	 * so only advertise it when the device can do it cheaply. */
	dev->can_unmap = bi.write_zeroes && !cfg->readonly;
	dev->rotational = bi.rotational;
	memcpy(dev->path, cfg->dev, strlen(cfg->dev) + 1);
	return 0;
fail:
	close(fd);
	return r;
}

/* Picks up a device that grew under us (lvextend, losetup -c, a SAN LUN
 * grown and rescanned): its size is the LUN's, as at open. */
int bs_blkdev_resize(struct bs_dev *dev, uint64_t want, uint64_t *size,
		     char *err, size_t errlen)
{
	const struct bs_fd *f = dev->priv;
	uint64_t now;
	int e;

	if (want) {
		bs_seterr(err, errlen, "the size of %s is the device's: grow the "
			  "device, then resize without a size", dev->path);
		return -EINVAL;
	}
	if (ioctl(f->fd, BLKGETSIZE64, &now)) {
		e = errno;
		bs_seterr(err, errlen, "Could not get the size of %s: %s",
			  dev->path, strerror(e));
		return -e;
	}
	*size = now;
	return 0;
}

const struct bs_ops bs_block_ops = {
	.plugin = "block",
	.open = block_open,
	.close = bs_fd_close,
	.submit = bs_fd_submit,
	.resize = bs_blkdev_resize,
};
