/* Backstore registry and the generic open/close around each plugin's ops. */
#include "backstore/bs_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct bs_ops *const bs_plugins[] = {
	&bs_fileio_ops,
	&bs_block_ops,
	&bs_ramdisk_ops,
	&bs_pscsi_ops,
	&bs_rbd_ops,
};

void bs_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

bool bs_block_size_valid(uint32_t block_size)
{
	return block_size == 512 || block_size == 1024 ||
	       block_size == 2048 || block_size == 4096;
}

int bs_io_check(const struct bs_dev *dev, const struct bs_io *io)
{
	switch (io->op) {
	case BS_FLUSH:
		/* SYNCHRONIZE CACHE's range is advisory (SBC-3 5.22): we
		 * always flush the whole device, so off/len do not matter. */
		return 1;
	case BS_READ:
	case BS_WRITE:
		if (io->len && !io->buf)
			return -EINVAL;
		break;
	case BS_UNMAP:
	case BS_WRITE_ZEROES:
		break;
	case BS_WRITE_SAME:
		if (!dev->can_write_same || !io->buf || !io->same_len ||
		    io->len % io->same_len)
			return -EINVAL;
		break;
	case BS_COMPARE_AND_WRITE:
		if (!dev->can_caw || !io->buf || !io->cmp_buf ||
		    (dev->caw_max_len && io->len > dev->caw_max_len))
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	/* Written so that off + len cannot overflow. The size may change
	 * under us (bs_dev.resized): read it once. */
	uint64_t size = __atomic_load_n(&dev->size, __ATOMIC_RELAXED);

	if (io->off > size || io->len > size - io->off)
		return -EINVAL;
	if (io->op != BS_READ && dev->readonly)
		return -EROFS;
	return io->len ? 1 : 0;
}

const struct bs_ops *bs_find(const char *plugin)
{
	if (!plugin)
		return NULL;
	for (size_t i = 0; i < sizeof(bs_plugins) / sizeof(bs_plugins[0]); i++)
		if (strcmp(bs_plugins[i]->plugin, plugin) == 0)
			return bs_plugins[i];
	return NULL;
}

int bs_open(const char *plugin, const struct bs_config *cfg,
	    struct bs_dev **out, char *err, size_t errlen)
{
	const struct bs_ops *ops = bs_find(plugin);
	struct bs_dev *dev;
	int r;

	*out = NULL;
	bs_seterr(err, errlen, "%s", "");
	if (!ops) {
		bs_seterr(err, errlen, "unknown backstore plugin '%s'",
			  plugin ? plugin : "(null)");
		return -EINVAL;
	}
	if (!cfg) {
		bs_seterr(err, errlen, "no configuration given");
		return -EINVAL;
	}
	if (cfg->name && strlen(cfg->name) >= sizeof(dev->name)) {
		bs_seterr(err, errlen,
			  "backstore name '%s' is too long (at most %zu characters)",
			  cfg->name, sizeof(dev->name) - 1);
		return -ENAMETOOLONG;
	}
	/* 0 means "the plugin's default" (512, or the device's own). */
	if (cfg->block_size && !bs_block_size_valid(cfg->block_size)) {
		bs_seterr(err, errlen,
			  "block_size %u is not supported (use 512, 1024, 2048 or 4096)",
			  cfg->block_size);
		return -EINVAL;
	}

	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		bs_seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	dev->ops = ops;
	if (cfg->name)
		memcpy(dev->name, cfg->name, strlen(cfg->name) + 1);
	atomic_init(&dev->write_back, false);

	r = ops->open(dev, cfg, err, errlen);
	if (r < 0) {
		if (err && errlen && !err[0])
			bs_seterr(err, errlen, "could not open %s backstore: %s",
				  ops->plugin, strerror(-r));
		free(dev);
		return r;
	}
	*out = dev;
	return 0;
}

void bs_close(struct bs_dev *dev)
{
	if (!dev)
		return;
	dev->ops->close(dev);
	free(dev);
}

int bs_resize(struct bs_dev *dev, uint64_t size, bool force, uint64_t *out,
	      char *err, size_t errlen)
{
	uint64_t old = __atomic_load_n(&dev->size, __ATOMIC_RELAXED), now;
	int r;

	if (!dev->ops->resize) {
		bs_seterr(err, errlen, "a %s storage object cannot be resized",
			  dev->ops->plugin);
		return -EOPNOTSUPP;
	}
	if (size) {
		size -= size % dev->block_size;
		if (!size) {
			bs_seterr(err, errlen, "size is smaller than one block "
				  "(%u bytes)", dev->block_size);
			return -EINVAL;
		}
		if (size < old && !force) {
			bs_seterr(err, errlen, "shrinking from %llu to %llu bytes "
				  "drops the data past the new end: add force=true "
				  "to do it", (unsigned long long)old,
				  (unsigned long long)size);
			return -EINVAL;
		}
	}
	r = dev->ops->resize(dev, size, &now, err, errlen);
	if (r < 0)
		return r;
	now -= now % dev->block_size;
	if (!now || (now < old && !force)) {
		bs_seterr(err, errlen, "%s is now %llu bytes, smaller than the "
			  "LUN's %llu: add force=true to shrink it", dev->path,
			  (unsigned long long)now, (unsigned long long)old);
		return -EINVAL;
	}
	/* New I/O sees the new end from here on (bs_io_check); commands in
	 * flight past a shrunk end finish against the old medium. */
	__atomic_store_n(&dev->size, now, __ATOMIC_RELAXED);
	if (now < old && dev->ops->shrink_tail)
		dev->ops->shrink_tail(dev, old);
	if (now != old && dev->resized)
		dev->resized(dev, now, dev->resized_arg);
	if (out)
		*out = now;
	return 0;
}

