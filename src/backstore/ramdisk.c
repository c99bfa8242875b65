/* ramdisk: LIO's rd_mcp. The LUN is one anonymous private mapping of
 * cfg->size bytes, reserved but not committed (MAP_NORESERVE): the kernel
 * allocates a page on its first write, and untouched pages read as zeros,
 * so a large LUN costs nothing until written. UNMAP hands whole pages back
 * with MADV_DONTNEED (they read as zeros again) and zeroes partial ones.
 *
 * Why a mapping rather than a table of lazily calloc'd chunks: several
 * workers may do I/O on the same LUN at once, and freeing a chunk that
 * another worker is copying from would need a lock (or RCU) on the data
 * path. The mapping never goes away while the device is open, so
 * concurrent READ / WRITE / UNMAP are memory-safe without any lock; their
 * outcome on overlapping LBAs is whatever order they ran in, as with any
 * SCSI device given racing commands.
 *
 * Online resize: the mapping reserves address space past the LUN's end
 * (twice the size, at least RD_GROW_MIN more), which costs nothing until
 * written, so growing only moves dev->size; shrinking hands the pages past
 * the new end back, so a later growth reads zeros there. Under strict
 * overcommit (vm.overcommit_memory=2) a reservation is charged in full; the
 * mapping is then the exact size and cannot grow.
 *
 * Everything completes inline: done() runs before submit() returns. */
#include "backstore/bs_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RD_GROW_MIN (64ULL << 30)

struct rd_dev {
	bool nullio;
	uint8_t *mem;   /* NULL for nullio */
	size_t maplen;  /* length of the mapping */
	size_t pagesz;
};

static int rd_open(struct bs_dev *dev, const struct bs_config *cfg,
		   char *err, size_t errlen)
{
	struct rd_dev *rd;
	uint32_t bsz = cfg->block_size ? cfg->block_size : 512;
	uint64_t size = cfg->size - cfg->size % bsz;

	if (!cfg->size) {
		bs_seterr(err, errlen, "size must be given for a ramdisk");
		return -EINVAL;
	}
	if (!size) {
		bs_seterr(err, errlen,
			  "size %llu is smaller than one block (%u bytes)",
			  (unsigned long long)cfg->size, bsz);
		return -EINVAL;
	}
	if ((uint64_t)(size_t)size != size) { /* 32-bit hosts */
		bs_seterr(err, errlen, "size %llu is too large for this system",
			  (unsigned long long)size);
		return -EINVAL;
	}
	rd = calloc(1, sizeof(*rd));
	if (!rd) {
		bs_seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rd->nullio = cfg->nullio;
	rd->pagesz = (size_t)sysconf(_SC_PAGESIZE);
	if (!rd->nullio) {
		void *p;

		uint64_t room = size > RD_GROW_MIN ? size : RD_GROW_MIN;

		p = MAP_FAILED;
		if ((uint64_t)(size_t)(size + room) == size + room) {
			rd->maplen = (size_t)(size + room);
			p = mmap(NULL, rd->maplen, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				 -1, 0);
		}
		if (p == MAP_FAILED) {
			rd->maplen = (size_t)size;
			p = mmap(NULL, rd->maplen, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				 -1, 0);
		}
		if (p == MAP_FAILED) {
			int e = errno;

			bs_seterr(err, errlen,
				  "Could not reserve %llu bytes for ramdisk: %s",
				  (unsigned long long)size, strerror(e));
			free(rd);
			return -e;
		}
		rd->mem = p;
	}
	dev->priv = rd;
	dev->size = size;
	dev->block_size = bsz;
	dev->readonly = false;
	/* Memory is as durable as a ramdisk gets: no cache to flush. */
	atomic_store(&dev->write_back, false);
	dev->can_unmap = true;
	dev->rotational = false;
	dev->path[0] = '\0';
	return 0;
}

static void rd_close(struct bs_dev *dev)
{
	struct rd_dev *rd = dev->priv;

	if (!rd)
		return;
	if (rd->mem)
		munmap(rd->mem, rd->maplen);
	free(rd);
	dev->priv = NULL;
}

/* Zeroes [off, off+len): whole pages go back to the kernel, the partial
 * pages at either end are cleared by hand. */
static void rd_discard(struct rd_dev *rd, uint64_t off, uint64_t len)
{
	uint64_t end = off + len;
	uint64_t pg_start = (off + rd->pagesz - 1) / rd->pagesz * rd->pagesz;
	uint64_t pg_end = end / rd->pagesz * rd->pagesz;

	if (pg_start >= pg_end) {
		memset(rd->mem + off, 0, (size_t)len);
		return;
	}
	memset(rd->mem + off, 0, (size_t)(pg_start - off));
	/* MADV_DONTNEED on a private anonymous mapping cannot fail for a
	 * valid range, and later reads of the range see zero-fill pages. If
	 * it ever did fail, zeroing by hand keeps the "reads return zeros"
	 * promise. */
	if (madvise(rd->mem + pg_start, (size_t)(pg_end - pg_start),
		    MADV_DONTNEED))
		memset(rd->mem + pg_start, 0, (size_t)(pg_end - pg_start));
	memset(rd->mem + pg_end, 0, (size_t)(end - pg_end));
}

static void rd_submit(struct bs_dev *dev, struct bs_io *io)
{
	struct rd_dev *rd = dev->priv;
	int r = bs_io_check(dev, io);

	if (r <= 0) {
		io->done(io, r);
		return;
	}
	io->done_bytes = 0;
	switch (io->op) {
	case BS_READ:
		if (rd->nullio)
			memset(io->buf, 0, (size_t)io->len);
		else
			memcpy(io->buf, rd->mem + io->off, (size_t)io->len);
		break;
	case BS_WRITE:
		if (!rd->nullio)
			memcpy(rd->mem + io->off, io->buf, (size_t)io->len);
		break;
	case BS_UNMAP:
	case BS_WRITE_ZEROES:
		/* A ramdisk has no notion of "mapped": zero pages are as good
		 * as written zeros, and freeing them saves memory. */
		if (!rd->nullio)
			rd_discard(rd, io->off, io->len);
		break;
	case BS_FLUSH:
	default: /* optional ops: refused by bs_io_check (no can_*) */
		break;
	}
	io->done_bytes = io->op == BS_FLUSH ? 0 : io->len;
	io->done(io, 0);
}

static int rd_resize(struct bs_dev *dev, uint64_t want, uint64_t *size,
		     char *err, size_t errlen)
{
	struct rd_dev *rd = dev->priv;

	if (!want) {
		bs_seterr(err, errlen, "size must be given for a ramdisk");
		return -EINVAL;
	}
	if (!rd->nullio && want > rd->maplen) {
		bs_seterr(err, errlen, "this ramdisk can grow to %zu bytes while "
			  "it is in use (its reserved address space)",
			  rd->maplen);
		return -ENOSPC;
	}
	*size = want;
	return 0;
}

static void rd_shrink_tail(struct bs_dev *dev, uint64_t old_size)
{
	struct rd_dev *rd = dev->priv;
	uint64_t now = __atomic_load_n(&dev->size, __ATOMIC_RELAXED);

	if (!rd->nullio && old_size > now)
		rd_discard(rd, now, old_size - now);
}

const struct bs_ops bs_ramdisk_ops = {
	.plugin = "ramdisk",
	.open = rd_open,
	.close = rd_close,
	.submit = rd_submit,
	.resize = rd_resize,
	.shrink_tail = rd_shrink_tail,
};
