/* A fake synchronous in-memory backstore for the SCSI unit tests: counts
 * what it is asked to do, can be told to fail (fail_res), and reports
 * everything below LBA 64 as mapped. Include once per test program
 * (scsi_fake.h includes it). */
#ifndef UT_TEST_FAKE_BS_H
#define UT_TEST_FAKE_BS_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scsi/scsi.h"

#define BLK 512
#define NBLK 8192u /* 4 MiB */

struct fake_bs {
	uint8_t *data;
	int fail_res;      /* returned by the next I/Os when non-zero */
	unsigned nsubmit;
	unsigned nflush;
	enum bs_op last_op;
	bool last_fua;
	uint64_t last_off, last_len;
};

static void fake_submit(struct bs_dev *dev, struct bs_io *io)
{
	struct fake_bs *f = dev->priv;

	f->nsubmit++;
	f->last_op = io->op;
	f->last_fua = io->fua;
	f->last_off = io->off;
	f->last_len = io->len;
	if (f->fail_res) {
		io->done(io, f->fail_res);
		return;
	}
	switch (io->op) {
	case BS_READ:
		assert_true(io->off + io->len <= dev->size);
		memcpy(io->buf, f->data + io->off, io->len);
		break;
	case BS_WRITE:
		assert_true(io->off + io->len <= dev->size);
		memcpy(f->data + io->off, io->buf, io->len);
		break;
	case BS_FLUSH:
		f->nflush++;
		break;
	case BS_UNMAP:
	case BS_WRITE_ZEROES:
		assert_true(io->off + io->len <= dev->size);
		memset(f->data + io->off, 0, io->len);
		break;
	default: /* optional ops: the fake does not offer them */
		io->done(io, -EINVAL);
		return;
	}
	io->done(io, 0);
}

static void fake_close(struct bs_dev *dev)
{
	struct fake_bs *f = dev->priv;

	free(f->data);
	free(f);
}

/* Everything below LBA 64 is mapped, the rest deallocated. */
static int fake_map_status(struct bs_dev *dev, uint64_t off, uint64_t *len,
			   bool *mapped)
{
	uint64_t edge = 64 * BLK, n;

	*mapped = off < edge;
	n = *mapped ? edge - off : dev->size - off;
	if (n < *len)
		*len = n;
	return 0;
}

static const struct bs_ops fake_ops = {
	.plugin = "fileio",
	.close = fake_close,
	.submit = fake_submit,
	.map_status = fake_map_status,
};

static struct bs_dev *fake_dev(const char *name, uint64_t size, bool readonly,
			       bool can_unmap)
{
	struct bs_dev *dev = calloc(1, sizeof(*dev));
	struct fake_bs *f = calloc(1, sizeof(*f));

	assert_non_null(dev);
	assert_non_null(f);
	f->data = calloc(1, size);
	assert_non_null(f->data);
	dev->ops = &fake_ops;
	snprintf(dev->name, sizeof(dev->name), "%s", name);
	dev->size = size;
	dev->block_size = BLK;
	dev->readonly = readonly;
	atomic_init(&dev->write_back, true);
	dev->can_unmap = can_unmap;
	dev->rotational = false;
	dev->priv = f;
	return dev;
}

static inline struct fake_bs *fake_of(struct scsi_lu *lu)
{
	return lu->bs->priv;
}

static inline uint8_t *fake_data(struct scsi_lu *lu)
{
	return fake_of(lu)->data;
}

#endif
