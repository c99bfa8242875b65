/* Shared by the SCSI unit tests: a fake synchronous in-memory backstore, a
 * nexus with LUN 0 mapped, and a runner that drives a command the way a
 * transport does (prepare, data, exec). Include once per test program. */
#ifndef UT_TEST_SCSI_FAKE_H
#define UT_TEST_SCSI_FAKE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "scsi/scsi.h"
#include "util/bytes.h"

#define BLK 512
#define NBLK 8192u

struct fake_bs {
	uint8_t *data;
};

static void fake_submit(struct bs_dev *dev, struct bs_io *io)
{
	struct fake_bs *f = dev->priv;

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
		break;
	case BS_UNMAP:
	case BS_WRITE_ZEROES:
		memset(f->data + io->off, 0, io->len);
		break;
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

static struct scsi_lu *fake_lu(const char *wwn)
{
	struct bs_dev *dev = calloc(1, sizeof(*dev));
	struct fake_bs *f = calloc(1, sizeof(*f));
	struct scsi_lu *lu;

	assert_non_null(dev);
	assert_non_null(f);
	f->data = calloc(1, (size_t)NBLK * BLK);
	assert_non_null(f->data);
	dev->ops = &fake_ops;
	strcpy(dev->name, "disk");
	dev->size = (uint64_t)NBLK * BLK;
	dev->block_size = BLK;
	atomic_init(&dev->write_back, true);
	dev->can_unmap = true;
	dev->priv = f;
	lu = scsi_lu_create(dev, "disk", "fileio", wwn, NULL);
	assert_non_null(lu);
	return lu;
}

static inline uint8_t *fake_data(struct scsi_lu *lu)
{
	return ((struct fake_bs *)lu->bs->priv)->data;
}

/* A nexus for initiator 'init' with ISID 'isid' seeing lu as LUN 0. */
static void nexus_init(struct scsi_nexus *nx, const char *init, unsigned isid,
		       struct scsi_lu *lu)
{
	struct scsi_lun_map *map = scsi_lun_map_new(1);

	memset(nx, 0, sizeof(*nx));
	snprintf(nx->initiator_name, sizeof(nx->initiator_name), "%s", init);
	snprintf(nx->initiator_port, sizeof(nx->initiator_port),
		 "%s,i,0x%012x", init, isid);
	strcpy(nx->tport.target_name, "iqn.2003-01.org.example:target");
	nx->tport.tpgt = 1;
	nx->tport.rel_port_id = 1;
	nx->tport.proto_id = SCSI_PROTO_ISCSI;
	assert_non_null(map);
	map->ent[0].lun = 0;
	map->ent[0].lu = lu;
	scsi_lu_get(lu);
	scsi_nexus_set_map(nx, map);
}

static unsigned g_done;

static void on_done(struct scsi_cmd *cmd)
{
	(void)cmd;
	g_done++;
}

/* Runs one command; buf holds the Data-Out (blen bytes) or receives the
 * Data-In. Returns the status. */
static uint8_t run(struct scsi_nexus *nx, struct scsi_cmd *cmd,
		   const uint8_t *cdb, size_t cdblen, uint8_t *buf,
		   uint32_t blen)
{
	unsigned before = g_done;

	memset(cmd, 0xa5, sizeof(*cmd));
	cmd->nexus = nx;
	cmd->lun = 0;
	memset(cmd->cdb, 0, sizeof(cmd->cdb));
	memcpy(cmd->cdb, cdb, cdblen);
	cmd->edtl = blen;
	cmd->loop = NULL;
	cmd->done = on_done;
	cmd->buf = NULL;
	cmd->buf_len = 0;
	if (scsi_cmd_prepare(cmd))
		return cmd->status;
	cmd->buf = buf;
	cmd->buf_len = cmd->dir == SCSI_DIR_WRITE ?
			       (blen < cmd->xfer_len ? blen : cmd->xfer_len) :
			       blen;
	scsi_cmd_exec(cmd);
	assert_int_equal(g_done, before + 1);
	return cmd->status;
}

/* TEST UNIT READY until no unit attention is left. */
static void clear_ua(struct scsi_nexus *nx)
{
	static const uint8_t tur[6] = { 0 };
	struct scsi_cmd cmd;

	for (int i = 0; i < 16; i++)
		if (run(nx, &cmd, tur, 6, NULL, 0) == SAM_STAT_GOOD)
			return;
	fail();
}

static void assert_sense(const struct scsi_cmd *cmd, uint8_t key, uint16_t asc)
{
	assert_int_equal(cmd->status, SAM_STAT_CHECK_CONDITION);
	assert_int_equal(cmd->sense[2] & 0x0f, key);
	assert_int_equal(cmd->sense[12], asc >> 8);
	assert_int_equal(cmd->sense[13], asc & 0xff);
}

/* 4096-aligned buffers, as scsi.h promises commands. */
static uint8_t *abuf(size_t n)
{
	uint8_t *p = aligned_alloc(4096, (n + 4095) & ~(size_t)4095);

	assert_non_null(p);
	memset(p, 0, (n + 4095) & ~(size_t)4095);
	return p;
}

#endif
