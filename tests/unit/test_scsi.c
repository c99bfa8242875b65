/* Unit tests of the SCSI core against a fake, synchronous in-memory
 * backstore (no ramdisk plugin, no event loop). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_bs.h"
#include "scsi/scsi.h"
#include "util/bytes.h"

/* ---- fake backstore: fake_bs.h ---- */

/* The real bs_close and io_loop_defer live in layers these tests do not
 * link; weak, so a full build's strong definitions win. */
__attribute__((weak)) void bs_close(struct bs_dev *dev)
{
	if (!dev)
		return;
	dev->ops->close(dev);
	free(dev);
}

__attribute__((weak)) void io_loop_defer(struct io_loop *l,
					 struct io_deferred *d)
{
	d->fn(d);
}

#define WWN "3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"

/* ---- environment: one LU behind LUN 0 of a nexus ---- */

struct env {
	struct scsi_lu *lu;
	struct scsi_nexus nx;
	unsigned ndone;
};

static struct scsi_lu *make_lu(bool readonly, bool can_unmap)
{
	struct bs_dev *dev = fake_dev("disk1", (uint64_t)NBLK * BLK, readonly,
				       can_unmap);
	struct scsi_lu *lu = scsi_lu_create(dev, "disk1", "fileio", WWN, NULL);

	assert_non_null(lu);
	return lu;
}

static void nexus_init(struct scsi_nexus *nx)
{
	memset(nx, 0, sizeof(*nx));
	strcpy(nx->initiator_name, "iqn.1994-05.com.example:init");
	strcpy(nx->tport.target_name, "iqn.2003-01.org.example:target");
	nx->tport.tpgt = 1;
	nx->tport.rel_port_id = 1;
	nx->tport.proto_id = SCSI_PROTO_ISCSI;
}

/* Maps lu at each of the given LUNs (write protected when wp). */
static void map_luns(struct scsi_nexus *nx, struct scsi_lu *lu,
		     const uint64_t *luns, unsigned n, bool wp)
{
	struct scsi_lun_map *map = scsi_lun_map_new(n);

	assert_non_null(map);
	for (unsigned i = 0; i < n; i++) {
		map->ent[i].lun = luns[i];
		map->ent[i].lu = lu;
		map->ent[i].write_protect = wp;
		scsi_lu_get(lu);
	}
	scsi_nexus_set_map(nx, map);
}

static struct env *env_new(bool readonly, bool can_unmap, bool wp)
{
	struct env *e = calloc(1, sizeof(*e));
	uint64_t lun0 = 0;

	assert_non_null(e);
	e->lu = make_lu(readonly, can_unmap);
	nexus_init(&e->nx);
	map_luns(&e->nx, e->lu, &lun0, 1, wp);
	return e;
}

static void env_free(struct env *e)
{
	scsi_nexus_clear(&e->nx);
	scsi_lu_put(e->lu);
	free(e);
}

static int setup(void **state)
{
	*state = env_new(false, false, false);
	return 0;
}

static int setup_unmap(void **state)
{
	*state = env_new(false, true, false);
	return 0;
}

static int teardown(void **state)
{
	env_free(*state);
	return 0;
}

static unsigned g_done;

static void on_done(struct scsi_cmd *cmd)
{
	g_done++;
}

/* Runs one command the way a transport would. buf is the data buffer (in
 * or out), blen its size (for a write: the bytes received). Returns the
 * status. */
static uint8_t run_nx(struct scsi_nexus *nx, struct scsi_cmd *cmd,
		      uint64_t lun, const uint8_t *cdb, size_t cdblen,
		      uint8_t *buf, uint32_t blen)
{
	unsigned before = g_done;

	memset(cmd, 0xa5, sizeof(*cmd)); /* prepare must not trust junk */
	cmd->nexus = nx;
	cmd->lun = lun;
	memset(cmd->cdb, 0, sizeof(cmd->cdb));
	memcpy(cmd->cdb, cdb, cdblen);
	cmd->edtl = blen;
	cmd->loop = NULL;
	cmd->done = on_done;
	cmd->buf = NULL;
	cmd->buf_len = 0;
	if (scsi_cmd_prepare(cmd)) {
		assert_int_equal(cmd->data_len, 0);
		assert_null(cmd->lu);
		return cmd->status;
	}
	cmd->buf = buf;
	cmd->buf_len = cmd->dir == SCSI_DIR_WRITE ?
			       (blen < cmd->xfer_len ? blen : cmd->xfer_len) :
			       blen;
	scsi_cmd_exec(cmd);
	assert_int_equal(g_done, before + 1);
	assert_null(cmd->lu);
	if (cmd->status != SAM_STAT_GOOD || cmd->dir != SCSI_DIR_READ)
		assert_int_equal(cmd->data_len, 0);
	return cmd->status;
}

static uint8_t run(struct env *e, struct scsi_cmd *cmd, const uint8_t *cdb,
		   size_t cdblen, uint8_t *buf, uint32_t blen)
{
	return run_nx(&e->nx, cmd, 0, cdb, cdblen, buf, blen);
}

static void assert_sense(const struct scsi_cmd *cmd, uint8_t key, uint16_t asc)
{
	assert_int_equal(cmd->status, SAM_STAT_CHECK_CONDITION);
	assert_int_equal(cmd->sense_len, 18);
	assert_int_equal(cmd->sense[0] & 0x7f, 0x70);
	assert_int_equal(cmd->sense[7], 10);
	assert_int_equal(cmd->sense[2] & 0x0f, key);
	assert_int_equal(cmd->sense[12], asc >> 8);
	assert_int_equal(cmd->sense[13], asc & 0xff);
}

/* Consumes the POWER ON unit attention of a fresh nexus. */
static void clear_ua(struct env *e)
{
	static const uint8_t tur[6] = { 0x00 };
	struct scsi_cmd cmd;

	while (run(e, &cmd, tur, 6, NULL, 0) != SAM_STAT_GOOD)
		assert_int_equal(cmd.sense[2] & 0x0f, SK_UNIT_ATTENTION);
}

static void cdb_rw10(uint8_t *cdb, uint8_t op, uint32_t lba, uint16_t n)
{
	memset(cdb, 0, 10);
	cdb[0] = op;
	put_be32(cdb + 2, lba);
	put_be16(cdb + 7, n);
}

/* ---- tests ---- */

static void test_inquiry_std(void **state)
{
	struct env *e = *state;
	uint8_t cdb[6] = { 0x12, 0, 0, 0, 255, 0 };
	uint8_t buf[255];
	struct scsi_cmd cmd;

	memset(buf, 0xee, sizeof(buf));
	/* INQUIRY never reports the pending POWER ON UA */
	assert_int_equal(run(e, &cmd, cdb, 6, buf, sizeof(buf)), SAM_STAT_GOOD);
	assert_int_equal(cmd.dir, SCSI_DIR_READ);
	assert_int_equal(cmd.data_len, 96);
	assert_int_equal(buf[0], 0x00);         /* PQ 0, direct access */
	assert_int_equal(buf[2], 0x06);         /* SPC-4 */
	assert_int_equal(buf[3], 0x12);         /* HISUP, format 2 */
	assert_int_equal(buf[4], 91);
	assert_int_equal(buf[7] & 0x02, 0x02);  /* CMDQUE */
	assert_memory_equal(buf + 8, "LIO-ORG ", 8);
	assert_memory_equal(buf + 16, "disk1           ", 16);
	assert_memory_equal(buf + 32, "4.0 ", 4);

	/* allocation length truncates */
	cdb[4] = 5;
	assert_int_equal(run(e, &cmd, cdb, 6, buf, 5), SAM_STAT_GOOD);
	assert_int_equal(cmd.data_len, 5);

	/* without the model alias: the plugin's LIO model */
	e->lu->attrs.emulate_model_alias = false;
	cdb[4] = 36;
	assert_int_equal(run(e, &cmd, cdb, 6, buf, 36), SAM_STAT_GOOD);
	assert_memory_equal(buf + 16, "FILEIO          ", 16);

	/* the UA is still there */
	{
		uint8_t tur[6] = { 0 };

		assert_int_equal(run(e, &cmd, tur, 6, NULL, 0),
				 SAM_STAT_CHECK_CONDITION);
		assert_sense(&cmd, SK_UNIT_ATTENTION, ASC_POWER_ON_RESET);
	}
}

static const uint8_t *find_desig(const uint8_t *page, uint8_t b1)
{
	size_t len = get_be16(page + 2) + 4;

	for (size_t off = 4; off + 4 <= len; off += 4 + page[off + 3])
		if (page[off + 1] == b1)
			return page + off;
	return NULL;
}

static void test_inquiry_vpd(void **state)
{
	struct env *e = *state;
	uint8_t cdb[6] = { 0x12, 0x01, 0x00, 0x01, 0x00, 0 };
	uint8_t buf[256];
	struct scsi_cmd cmd;
	const uint8_t *d;

	/* 0x00: supported pages, no B2 without thin provisioning; 8F
	 * (third-party copy) since emulate_3pc is on by default */
	assert_int_equal(run(e, &cmd, cdb, 6, buf, sizeof(buf)), SAM_STAT_GOOD);
	assert_int_equal(buf[1], 0x00);
	assert_int_equal(get_be16(buf + 2), 7);
	assert_memory_equal(buf + 4, "\x00\x80\x83\x86\x8f\xb0\xb1", 7);

	/* 0x80: the unit serial is the wwn */
	cdb[2] = 0x80;
	assert_int_equal(run(e, &cmd, cdb, 6, buf, sizeof(buf)), SAM_STAT_GOOD);
	assert_int_equal(get_be16(buf + 2), strlen(WWN));
	assert_memory_equal(buf + 4, WWN, strlen(WWN));

	/* 0x83: LIO's NAA 6 from the serial's hex digits */
	cdb[2] = 0x83;
	assert_int_equal(run(e, &cmd, cdb, 6, buf, sizeof(buf)), SAM_STAT_GOOD);
	assert_int_equal(cmd.data_len, get_be16(buf + 2) + 4);
	d = find_desig(buf, 0x03);
	assert_non_null(d);
	assert_int_equal(d[0], 0x01);
	assert_int_equal(d[3], 16);
	assert_memory_equal(d + 4,
			    "\x60\x01\x40\x53\xf1\xb2\xc4\xd5\xe6\xf4\xa7\xb8"
			    "\xc9\xd0\xe1\xf2", 16);
	d = find_desig(buf, 0x01); /* T10 vendor id */
	assert_non_null(d);
	assert_memory_equal(d + 4, "LIO-ORG disk1:" WWN, 14 + strlen(WWN));
	d = find_desig(buf, 0x94); /* relative target port */
	assert_non_null(d);
	assert_int_equal(d[0], 0x51);
	assert_int_equal(get_be16(d + 6), 1);
	assert_non_null(find_desig(buf, 0x95)); /* target port group */
	d = find_desig(buf, 0x98);              /* target port name */
	assert_non_null(d);
	assert_int_equal(d[3] % 4, 0);
	assert_string_equal((const char *)d + 4,
			    "iqn.2003-01.org.example:target,t,0x0001");

	/* 0xB0: block limits */
	cdb[2] = 0xb0;
	assert_int_equal(run(e, &cmd, cdb, 6, buf, sizeof(buf)), SAM_STAT_GOOD);
	assert_int_equal(get_be16(buf + 2), 0x3c);
	assert_int_equal(buf[4] & 1, 1);          /* WSNZ */
	assert_int_equal(get_be32(buf + 8), 16384); /* MAXIMUM TRANSFER LENGTH */
	assert_int_equal(get_be32(buf + 20), 0);  /* no UNMAP */

	/* 0xB1: non-rotating */
	cdb[2] = 0xb1;
	assert_int_equal(run(e, &cmd, cdb, 6, buf, sizeof(buf)), SAM_STAT_GOOD);
	assert_int_equal(get_be16(buf + 4), 1);

	/* 0xB2 is not offered */
	cdb[2] = 0xb2;
	assert_int_equal(run(e, &cmd, cdb, 6, buf, sizeof(buf)),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
}

static void test_inquiry_vpd_thin(void **state)
{
	struct env *e = *state;
	uint8_t cdb[6] = { 0x12, 0x01, 0xb2, 0x00, 0xff, 0 };
	uint8_t buf[255];
	struct scsi_cmd cmd;

	assert_int_equal(run(e, &cmd, cdb, 6, buf, sizeof(buf)), SAM_STAT_GOOD);
	assert_int_equal(buf[5] & 0xe4, 0xe4); /* LBPU LBPWS LBPWS10 LBPRZ */
	/* LIO's unmap_zeroes_data attribute turns LBPRZ off */
	e->lu->attrs.unmap_zeroes_data = false;
	assert_int_equal(run(e, &cmd, cdb, 6, buf, sizeof(buf)), SAM_STAT_GOOD);
	assert_int_equal(buf[5] & 0xe4, 0xe0);
	e->lu->attrs.unmap_zeroes_data = true;
	cdb[2] = 0xb0;
	assert_int_equal(run(e, &cmd, cdb, 6, buf, sizeof(buf)), SAM_STAT_GOOD);
	assert_int_equal(get_be32(buf + 20), 8192);
	assert_int_equal(get_be32(buf + 24), 1);
	assert_int_equal(get_be64(buf + 36), 0x1000);
}

static void test_read_capacity(void **state)
{
	struct env *e = *state;
	uint8_t rc10[10] = { 0x25 };
	uint8_t rc16[16] = { 0x9e, 0x10 };
	uint8_t buf[32];
	struct scsi_cmd cmd;

	clear_ua(e);
	assert_int_equal(run(e, &cmd, rc10, 10, buf, 8), SAM_STAT_GOOD);
	assert_int_equal(cmd.data_len, 8);
	assert_int_equal(get_be32(buf), NBLK - 1);
	assert_int_equal(get_be32(buf + 4), BLK);

	put_be32(rc16 + 10, 32);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(run(e, &cmd, rc16, 16, buf, 32), SAM_STAT_GOOD);
	assert_int_equal(cmd.data_len, 32);
	assert_int_equal(get_be64(buf), NBLK - 1);
	assert_int_equal(get_be32(buf + 8), BLK);
	assert_int_equal(buf[14] & 0x80, 0); /* no LBPME */

	/* other service actions are refused */
	rc16[1] = 0x11;
	assert_int_equal(run(e, &cmd, rc16, 16, buf, 32),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
}

static void test_rw_roundtrip(void **state)
{
	struct env *e = *state;
	uint8_t cdb[16];
	uint8_t *wbuf = malloc(8 * BLK), *rbuf = malloc(8 * BLK);
	struct scsi_cmd cmd;

	clear_ua(e);
	for (unsigned i = 0; i < 8 * BLK; i++)
		wbuf[i] = (uint8_t)(i * 7 + 3);
	cdb_rw10(cdb, 0x2a, 100, 8);
	cdb[1] = 0x08; /* FUA */
	assert_int_equal(run(e, &cmd, cdb, 10, wbuf, 8 * BLK), SAM_STAT_GOOD);
	assert_int_equal(cmd.dir, SCSI_DIR_WRITE);
	assert_int_equal(cmd.xfer_len, 8 * BLK);
	assert_true(fake_of(e->lu)->last_fua);
	assert_int_equal(fake_of(e->lu)->last_off, 100 * BLK);

	/* READ(16) */
	memset(cdb, 0, 16);
	cdb[0] = 0x88;
	put_be64(cdb + 2, 100);
	put_be32(cdb + 10, 8);
	memset(rbuf, 0, 8 * BLK);
	assert_int_equal(run(e, &cmd, cdb, 16, rbuf, 8 * BLK), SAM_STAT_GOOD);
	assert_int_equal(cmd.data_len, 8 * BLK);
	assert_memory_equal(rbuf, wbuf, 8 * BLK);

	/* READ(6) of one block at 103 and READ(12) */
	memset(cdb, 0, 16);
	cdb[0] = 0x08;
	cdb[3] = 103;
	cdb[4] = 1;
	assert_int_equal(run(e, &cmd, cdb, 6, rbuf, BLK), SAM_STAT_GOOD);
	assert_memory_equal(rbuf, wbuf + 3 * BLK, BLK);
	memset(cdb, 0, 16);
	cdb[0] = 0xa8;
	put_be32(cdb + 2, 104);
	put_be32(cdb + 6, 2);
	assert_int_equal(run(e, &cmd, cdb, 12, rbuf, 2 * BLK), SAM_STAT_GOOD);
	assert_memory_equal(rbuf, wbuf + 4 * BLK, 2 * BLK);

	/* zero blocks: GOOD, no data, no I/O */
	{
		unsigned n = fake_of(e->lu)->nsubmit;

		cdb_rw10(cdb, 0x28, 5, 0);
		assert_int_equal(run(e, &cmd, cdb, 10, rbuf, 0), SAM_STAT_GOOD);
		assert_int_equal(cmd.data_len, 0);
		assert_int_equal(fake_of(e->lu)->nsubmit, n);
	}

	/* SYNCHRONIZE CACHE(10) flushes */
	memset(cdb, 0, 16);
	cdb[0] = 0x35;
	assert_int_equal(run(e, &cmd, cdb, 10, NULL, 0), SAM_STAT_GOOD);
	assert_int_equal(fake_of(e->lu)->nflush, 1);

	/* a write whose Data-Out is short (iSCSI EDTL < transfer length)
	 * writes only the whole blocks that arrived, as LIO does; the
	 * transport reports the residual */
	{
		unsigned n = fake_of(e->lu)->nsubmit;

		cdb_rw10(cdb, 0x2a, 200, 2);
		assert_int_equal(run(e, &cmd, cdb, 10, wbuf, BLK), SAM_STAT_GOOD);
		assert_int_equal(fake_of(e->lu)->nsubmit, n + 1);
		assert_int_equal(fake_of(e->lu)->last_off, 200 * BLK);
		cdb_rw10(cdb, 0x2a, 200, 2);
		assert_int_equal(run(e, &cmd, cdb, 10, wbuf, BLK / 2), SAM_STAT_GOOD);
		assert_int_equal(fake_of(e->lu)->nsubmit, n + 1);
	}

	/* backstore errors */
	fake_of(e->lu)->fail_res = -EIO;
	cdb_rw10(cdb, 0x28, 0, 1);
	assert_int_equal(run(e, &cmd, cdb, 10, rbuf, BLK),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_MEDIUM_ERROR, ASC_READ_ERROR);
	cdb_rw10(cdb, 0x2a, 0, 1);
	assert_int_equal(run(e, &cmd, cdb, 10, wbuf, BLK),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_MEDIUM_ERROR, ASC_WRITE_ERROR);
	fake_of(e->lu)->fail_res = -ENOSPC;
	assert_int_equal(run(e, &cmd, cdb, 10, wbuf, BLK),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_DATA_PROTECT, ASC_SPACE_ALLOC_FAILED);
	fake_of(e->lu)->fail_res = 0;

	free(wbuf);
	free(rbuf);
}

static void test_lba_out_of_range(void **state)
{
	struct env *e = *state;
	uint8_t cdb[16];
	uint8_t buf[2 * BLK];
	struct scsi_cmd cmd;

	clear_ua(e);
	cdb_rw10(cdb, 0x28, NBLK - 1, 2);
	assert_int_equal(run(e, &cmd, cdb, 10, buf, sizeof(buf)),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
	assert_int_equal(cmd.xfer_len, 0);

	/* the last block is fine */
	cdb_rw10(cdb, 0x28, NBLK - 1, 1);
	assert_int_equal(run(e, &cmd, cdb, 10, buf, sizeof(buf)), SAM_STAT_GOOD);

	/* 64-bit wrap-around */
	memset(cdb, 0, 16);
	cdb[0] = 0x8a;
	put_be64(cdb + 2, UINT64_MAX);
	put_be32(cdb + 10, 2);
	assert_int_equal(run(e, &cmd, cdb, 16, buf, sizeof(buf)),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);

	/* transfer longer than the limit */
	memset(cdb, 0, 16);
	cdb[0] = 0x88;
	put_be32(cdb + 10, 16385);
	e->lu->attrs.hw_max_sectors = 16384;
	atomic_store(&e->lu->nblocks, 1u << 20);
	assert_int_equal(run(e, &cmd, cdb, 16, buf, sizeof(buf)),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
	assert_int_equal(get_be16(cmd.sense + 16), 10);
	atomic_store(&e->lu->nblocks, NBLK);
}

static void test_invalid_opcode(void **state)
{
	struct env *e = *state;
	uint8_t cdb[10] = { 0x02 };
	struct scsi_cmd cmd;

	clear_ua(e);
	assert_int_equal(run(e, &cmd, cdb, 6, NULL, 0), SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
	cdb[0] = 0xff;
	assert_int_equal(run(e, &cmd, cdb, 6, NULL, 0), SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
	/* UNMAP without thin provisioning */
	cdb[0] = 0x42;
	assert_int_equal(run(e, &cmd, cdb, 10, NULL, 0), SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
}

static void test_invalid_field(void **state)
{
	struct env *e = *state;
	uint8_t inq[6] = { 0x12, 0x00, 0x80, 0x00, 0xff, 0 };
	uint8_t cdb[10];
	uint8_t buf[255];
	struct scsi_cmd cmd;

	/* INQUIRY with EVPD=0 and a page code: byte 2 */
	assert_int_equal(run(e, &cmd, inq, 6, buf, sizeof(buf)),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
	assert_int_equal(cmd.sense[15], 0x80 | 0x40 | 0x08 | 7);
	assert_int_equal(get_be16(cmd.sense + 16), 2);

	clear_ua(e);
	/* READ(10) with RDPROTECT: byte 1 bit 7 */
	cdb_rw10(cdb, 0x28, 0, 1);
	cdb[1] = 0x20;
	assert_int_equal(run(e, &cmd, cdb, 10, buf, BLK),
			 SAM_STAT_CHECK_CONDITION);
	assert_int_equal(cmd.sense[15], 0xcf);
	assert_int_equal(get_be16(cmd.sense + 16), 1);

	/* FUA refused when emulate_fua_write is off: byte 1 bit 3 */
	e->lu->attrs.emulate_fua_write = false;
	cdb_rw10(cdb, 0x2a, 0, 1);
	cdb[1] = 0x08;
	assert_int_equal(run(e, &cmd, cdb, 10, buf, BLK),
			 SAM_STAT_CHECK_CONDITION);
	assert_int_equal(cmd.sense[15], 0xcb);

	/* MODE SENSE of a page we lack: byte 2 bit 5 */
	memset(cdb, 0, 10);
	cdb[0] = 0x1a;
	cdb[2] = 0x05;
	cdb[4] = 0xff;
	assert_int_equal(run(e, &cmd, cdb, 6, buf, sizeof(buf)),
			 SAM_STAT_CHECK_CONDITION);
	assert_int_equal(cmd.sense[15], 0xcd);
	assert_int_equal(get_be16(cmd.sense + 16), 2);

	/* saved values */
	cdb[2] = 0xc8;
	assert_int_equal(run(e, &cmd, cdb, 6, buf, sizeof(buf)),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, ASC_SAVING_PARAMS_UNSUP);
}

static void test_ua_power_on(void **state)
{
	struct env *e = *state;
	uint8_t tur[6] = { 0 };
	uint8_t rs[6] = { 0x03, 0, 0, 0, 18, 0 };
	uint8_t buf[18];
	struct scsi_cmd cmd;

	assert_int_equal(run(e, &cmd, tur, 6, NULL, 0), SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_UNIT_ATTENTION, ASC_POWER_ON_RESET);
	assert_int_equal(run(e, &cmd, tur, 6, NULL, 0), SAM_STAT_GOOD);
	assert_int_equal(cmd.sense_len, 0);

	/* REQUEST SENSE returns a pending UA as data, and clears it */
	scsi_lu_establish_ua(e->lu, SCSI_UA_CAPACITY_CHANGED);
	assert_int_equal(run(e, &cmd, rs, 6, buf, sizeof(buf)), SAM_STAT_GOOD);
	assert_int_equal(cmd.data_len, 18);
	assert_int_equal(buf[2], SK_UNIT_ATTENTION);
	assert_int_equal(get_be16(buf + 12), ASC_CAPACITY_DATA_CHANGED);
	assert_int_equal(run(e, &cmd, tur, 6, NULL, 0), SAM_STAT_GOOD);
	assert_int_equal(run(e, &cmd, rs, 6, buf, sizeof(buf)), SAM_STAT_GOOD);
	assert_int_equal(buf[2], SK_NO_SENSE);

	/* priority: POWER ON before MODE PARAMETERS CHANGED */
	scsi_lu_establish_ua(e->lu, SCSI_UA_MODE_CHANGED | SCSI_UA_POWER_ON);
	run(e, &cmd, tur, 6, NULL, 0);
	assert_sense(&cmd, SK_UNIT_ATTENTION, ASC_POWER_ON_RESET);
	run(e, &cmd, tur, 6, NULL, 0);
	assert_sense(&cmd, SK_UNIT_ATTENTION, ASC_MODE_PARAMETERS_CHANGED);
	assert_int_equal(run(e, &cmd, tur, 6, NULL, 0), SAM_STAT_GOOD);
}

static void test_report_luns(void **state)
{
	struct env *e = *state;
	uint64_t luns[] = { 300, 0, 3, 20000 };
	uint8_t cdb[12] = { 0xa0 };
	uint8_t buf[64];
	struct scsi_cmd cmd;

	map_luns(&e->nx, e->lu, luns, 4, false);
	put_be32(cdb + 6, sizeof(buf));
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(run(e, &cmd, cdb, 12, buf, sizeof(buf)), SAM_STAT_GOOD);
	assert_int_equal(cmd.data_len, 8 + 32);
	assert_int_equal(get_be32(buf), 32);
	assert_memory_equal(buf + 8, "\0\0\0\0\0\0\0\0", 8);
	assert_memory_equal(buf + 16, "\0\x03\0\0\0\0\0\0", 8);
	assert_memory_equal(buf + 24, "\x41\x2c\0\0\0\0\0\0", 8);
	assert_memory_equal(buf + 32, "\xd2\x00\x4e\x20\0\0\0\0", 8);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(scsi_lun_decode(buf + 8 + 8 * i),
				 i == 0 ? 0 : i == 1 ? 3 : i == 2 ? 300 : 20000);

	/* allocation length truncates; LUN LIST LENGTH still says 32 */
	put_be32(cdb + 6, 16);
	assert_int_equal(run(e, &cmd, cdb, 12, buf, sizeof(buf)), SAM_STAT_GOOD);
	assert_int_equal(cmd.data_len, 16);
	assert_int_equal(get_be32(buf), 32);

	/* well known LUs only: none */
	cdb[2] = 0x01;
	put_be32(cdb + 6, sizeof(buf));
	assert_int_equal(run(e, &cmd, cdb, 12, buf, sizeof(buf)), SAM_STAT_GOOD);
	assert_int_equal(cmd.data_len, 8);
	assert_int_equal(get_be32(buf), 0);
	cdb[2] = 0x03;
	assert_int_equal(run(e, &cmd, cdb, 12, buf, sizeof(buf)),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);

	/* LUN 3 is new: POWER ON; LUN 0 was there: REPORTED LUNS DATA HAS
	 * CHANGED, which REPORT LUNS clears */
	{
		uint8_t tur[6] = { 0 };
		uint64_t two[] = { 0, 7 };

		run_nx(&e->nx, &cmd, 3, tur, 6, NULL, 0);
		assert_sense(&cmd, SK_UNIT_ATTENTION, ASC_POWER_ON_RESET);
		map_luns(&e->nx, e->lu, two, 2, false);
		run(e, &cmd, tur, 6, NULL, 0);
		assert_sense(&cmd, SK_UNIT_ATTENTION, ASC_POWER_ON_RESET);
		run(e, &cmd, tur, 6, NULL, 0);
		assert_sense(&cmd, SK_UNIT_ATTENTION, ASC_REPORTED_LUNS_CHANGED);
		map_luns(&e->nx, e->lu, two, 1, false);
		cdb[2] = 0;
		assert_int_equal(run(e, &cmd, cdb, 12, buf, sizeof(buf)),
				 SAM_STAT_GOOD);
		assert_int_equal(run(e, &cmd, tur, 6, NULL, 0), SAM_STAT_GOOD);
	}
}

static void test_lun_codec(void **state)
{
	uint8_t b[8];
	static const uint64_t v[] = { 0, 1, 255, 256, 16383, 16384, 65535 };

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		scsi_lun_encode(v[i], b);
		assert_int_equal(scsi_lun_decode(b), v[i]);
	}
	memcpy(b, "\x01\x2c\0\0\0\0\0\0", 8); /* bus 1: not ours */
	assert_int_equal(scsi_lun_decode(b), UINT64_MAX);
	memcpy(b, "\x00\x01\x00\x02\0\0\0\0", 8); /* second level */
	assert_int_equal(scsi_lun_decode(b), UINT64_MAX);
}

static void test_mode_sense(void **state)
{
	struct env *e = *state;
	uint8_t ms6[6] = { 0x1a, 0, 0x3f, 0, 0xff, 0 };
	uint8_t ms10[10] = { 0x5a, 0x10, 0x08, 0, 0, 0, 0, 0, 0xff, 0 };
	uint8_t buf[255];
	struct scsi_cmd cmd;
	uint64_t lun0 = 0;

	clear_ua(e);
	assert_int_equal(run(e, &cmd, ms6, 6, buf, sizeof(buf)), SAM_STAT_GOOD);
	assert_int_equal(cmd.data_len, buf[0] + 1);
	assert_int_equal(cmd.data_len, 4 + 8 + 12 + 20 + 12 + 12);
	assert_int_equal(buf[2] & 0x80, 0);     /* not WP */
	assert_int_equal(buf[3], 8);            /* block descriptor */
	assert_int_equal(get_be32(buf + 4), NBLK);
	assert_int_equal(get_be24(buf + 9), BLK);
	assert_int_equal(buf[12], 0x01);
	assert_int_equal(buf[24], 0x08);
	assert_int_equal(buf[26] & 0x04, 0x04); /* WCE = write_back */
	assert_int_equal(buf[44], 0x0a);
	assert_int_equal(buf[56], 0x1c);

	/* MODE SENSE(10), LLBAA, caching page */
	assert_int_equal(run(e, &cmd, ms10, 10, buf, sizeof(buf)), SAM_STAT_GOOD);
	assert_int_equal(get_be16(buf) + 2, cmd.data_len);
	assert_int_equal(buf[4] & 1, 1);
	assert_int_equal(get_be16(buf + 6), 16);
	assert_int_equal(get_be64(buf + 8), NBLK);
	assert_int_equal(buf[24], 0x08);

	/* DBD, changeable values */
	ms6[1] = 0x08;
	ms6[2] = 0x48;
	assert_int_equal(run(e, &cmd, ms6, 6, buf, sizeof(buf)), SAM_STAT_GOOD);
	assert_int_equal(buf[3], 0);
	assert_int_equal(buf[4], 0x08);
	assert_int_equal(buf[6], 0x04);

	/* write protected mapping: WP */
	map_luns(&e->nx, e->lu, &lun0, 1, true);
	ms6[2] = 0x08;
	assert_int_equal(run(e, &cmd, ms6, 6, buf, sizeof(buf)), SAM_STAT_GOOD);
	assert_int_equal(buf[2] & 0x80, 0x80);
}

static void test_write_protect(void **state)
{
	struct env *e = env_new(false, false, true);
	uint8_t cdb[16];
	uint8_t buf[BLK] = { 1 };
	struct scsi_cmd cmd;

	clear_ua(e);
	cdb_rw10(cdb, 0x2a, 0, 1);
	assert_int_equal(run(e, &cmd, cdb, 10, buf, BLK), SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_DATA_PROTECT, ASC_WRITE_PROTECTED);
	assert_int_equal(fake_of(e->lu)->nsubmit, 0);
	/* reads are fine */
	cdb_rw10(cdb, 0x28, 0, 1);
	assert_int_equal(run(e, &cmd, cdb, 10, buf, BLK), SAM_STAT_GOOD);
	env_free(e);

	/* a read-only backstore */
	e = env_new(true, false, false);
	clear_ua(e);
	memset(cdb, 0, 16);
	cdb[0] = 0x93; /* WRITE SAME(16) */
	put_be32(cdb + 10, 1);
	assert_int_equal(run(e, &cmd, cdb, 16, buf, BLK), SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_DATA_PROTECT, ASC_WRITE_PROTECTED);
	env_free(e);
}

static void test_unmapped_lun(void **state)
{
	struct env *e = *state;
	uint8_t inq[6] = { 0x12, 0, 0, 0, 96, 0 };
	uint8_t tur[6] = { 0 };
	uint8_t rs[6] = { 0x03, 0, 0, 0, 18, 0 };
	uint8_t rl[12] = { 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64 };
	uint8_t buf[96];
	struct scsi_cmd cmd;

	assert_int_equal(run_nx(&e->nx, &cmd, 9, inq, 6, buf, 96), SAM_STAT_GOOD);
	assert_int_equal(buf[0], 0x7f);
	assert_null(cmd.ent);
	assert_int_equal(run_nx(&e->nx, &cmd, 9, tur, 6, NULL, 0),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, ASC_LUN_NOT_SUPPORTED);
	assert_int_equal(run_nx(&e->nx, &cmd, 9, rs, 6, buf, 18), SAM_STAT_GOOD);
	assert_int_equal(buf[2], SK_ILLEGAL_REQUEST);
	assert_int_equal(get_be16(buf + 12), ASC_LUN_NOT_SUPPORTED);
	assert_int_equal(run_nx(&e->nx, &cmd, 9, rl, 12, buf, 64), SAM_STAT_GOOD);
	assert_int_equal(get_be32(buf), 8);
	assert_int_equal(cmd.data_len, 16);
	/* the VPD page list answers, the rest does not exist */
	inq[1] = 1;
	assert_int_equal(run_nx(&e->nx, &cmd, 9, inq, 6, buf, 96), SAM_STAT_GOOD);
	assert_int_equal(buf[0], 0x7f);
	inq[2] = 0x80;
	assert_int_equal(run_nx(&e->nx, &cmd, 9, inq, 6, buf, 96),
			 SAM_STAT_CHECK_CONDITION);

	/* a nexus with no map at all */
	{
		struct scsi_nexus nx;

		nexus_init(&nx);
		inq[1] = 0;
		inq[2] = 0;
		assert_int_equal(run_nx(&nx, &cmd, 0, inq, 6, buf, 96),
				 SAM_STAT_GOOD);
		assert_int_equal(buf[0], 0x7f);
		assert_int_equal(run_nx(&nx, &cmd, 0, rl, 12, buf, 64),
				 SAM_STAT_GOOD);
		assert_int_equal(get_be32(buf), 8); /* LUN 0 */
	}
}

static void test_mode_select(void **state)
{
	struct env *e = *state;
	struct scsi_nexus other;
	uint64_t lun0 = 0;
	uint8_t ms[6] = { 0x1a, 0x08, 0x08, 0, 0xff, 0 };
	uint8_t sel[6] = { 0x15, 0x10, 0, 0, 0, 0 };
	uint8_t tur[6] = { 0 };
	uint8_t buf[255], param[64];
	struct scsi_cmd cmd;

	nexus_init(&other);
	map_luns(&other, e->lu, &lun0, 1, false);
	run_nx(&other, &cmd, 0, tur, 6, NULL, 0); /* POWER ON */
	clear_ua(e);

	assert_int_equal(run(e, &cmd, ms, 6, buf, sizeof(buf)), SAM_STAT_GOOD);
	assert_int_equal(buf[6] & 0x04, 0x04);
	/* turn WCE off: header (4) + caching page (20), mode data length 0 */
	memset(param, 0, sizeof(param));
	memcpy(param + 4, buf + 4, 20);
	param[4] |= 0x80; /* PS as sensed: ignored */
	param[6] &= (uint8_t)~0x04;
	sel[4] = 24;
	assert_int_equal(run(e, &cmd, sel, 6, param, 24), SAM_STAT_GOOD);
	assert_false(atomic_load(&e->lu->bs->write_back));
	/* the other nexus learns of it, this one does not */
	assert_int_equal(run(e, &cmd, tur, 6, NULL, 0), SAM_STAT_GOOD);
	run_nx(&other, &cmd, 0, tur, 6, NULL, 0);
	assert_sense(&cmd, SK_UNIT_ATTENTION, ASC_MODE_PARAMETERS_CHANGED);

	/* any other change is refused with a pointer to it */
	param[6] |= 0x04;
	param[16] = 0x01; /* a byte of the caching page we do not change */
	assert_int_equal(run(e, &cmd, sel, 6, param, 24),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAM_LIST);
	assert_int_equal(get_be16(cmd.sense + 16), 16);
	assert_int_equal(cmd.sense[15] & 0x40, 0);
	assert_false(atomic_load(&e->lu->bs->write_back)); /* unchanged */

	/* truncated list */
	assert_int_equal(run(e, &cmd, sel, 6, param, 10),
			 SAM_STAT_CHECK_CONDITION);

	/* SP=1 */
	sel[1] = 0x11;
	assert_int_equal(run(e, &cmd, sel, 6, param, 24),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
	scsi_nexus_clear(&other);
}

static void test_verify_write_same_unmap(void **state)
{
	struct env *e = *state;
	uint8_t cdb[16];
	uint8_t *buf = calloc(1, 4 * BLK), *rbuf = calloc(1, 4 * BLK);
	uint8_t param[24];
	struct scsi_cmd cmd;

	clear_ua(e);
	/* WRITE SAME(10) with a pattern over 3000 blocks (two 1 MiB chunks) */
	memset(cdb, 0, 16);
	cdb[0] = 0x41;
	put_be32(cdb + 2, 10);
	put_be16(cdb + 7, 3000);
	memset(buf, 0x5a, BLK);
	assert_int_equal(run(e, &cmd, cdb, 10, buf, BLK), SAM_STAT_GOOD);
	assert_int_equal(fake_of(e->lu)->last_len, (3000 - 2048) * BLK);
	cdb_rw10(cdb, 0x28, 3008, 4);
	assert_int_equal(run(e, &cmd, cdb, 10, rbuf, 4 * BLK), SAM_STAT_GOOD);
	assert_int_equal(rbuf[0], 0x5a);
	assert_int_equal(rbuf[2 * BLK - 1], 0x5a);
	assert_int_equal(rbuf[2 * BLK], 0);

	/* VERIFY(10) BYTCHK=1: match, then miscompare */
	memset(buf, 0x5a, 2 * BLK);
	cdb_rw10(cdb, 0x2f, 20, 2);
	cdb[1] = 0x02;
	assert_int_equal(run(e, &cmd, cdb, 10, buf, 2 * BLK), SAM_STAT_GOOD);
	buf[BLK + 3] = 0;
	assert_int_equal(run(e, &cmd, cdb, 10, buf, 2 * BLK),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_MISCOMPARE, 0x1d00);
	/* BYTCHK=0: range check only */
	cdb[1] = 0;
	assert_int_equal(run(e, &cmd, cdb, 10, NULL, 0), SAM_STAT_GOOD);

	/* WRITE SAME(16) UNMAP with zeros, then UNMAP */
	memset(cdb, 0, 16);
	cdb[0] = 0x93;
	cdb[1] = 0x08;
	put_be64(cdb + 2, 10);
	put_be32(cdb + 10, 4);
	memset(buf, 0, BLK);
	assert_int_equal(run(e, &cmd, cdb, 16, buf, BLK), SAM_STAT_GOOD);
	assert_int_equal(fake_of(e->lu)->last_op, BS_UNMAP);
	/* UNMAP one descriptor */
	memset(cdb, 0, 16);
	cdb[0] = 0x42;
	cdb[8] = 24;
	memset(param, 0, sizeof(param));
	put_be16(param, 22);
	put_be16(param + 2, 16);
	put_be64(param + 8, 100);
	put_be32(param + 16, 50);
	assert_int_equal(run(e, &cmd, cdb, 10, param, 24), SAM_STAT_GOOD);
	assert_int_equal(fake_of(e->lu)->last_op, BS_UNMAP);
	assert_int_equal(fake_of(e->lu)->last_off, 100 * BLK);
	assert_int_equal(fake_of(e->lu)->last_len, 50 * BLK);
	/* past the end */
	put_be64(param + 8, NBLK - 10);
	assert_int_equal(run(e, &cmd, cdb, 10, param, 24),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
	/* READ CAPACITY(16) says LBPME */
	memset(cdb, 0, 16);
	cdb[0] = 0x9e;
	cdb[1] = 0x10;
	cdb[13] = 32;
	assert_int_equal(run(e, &cmd, cdb, 16, rbuf, 32), SAM_STAT_GOOD);
	assert_int_equal(rbuf[14] & 0xc0, 0xc0);
	free(buf);
	free(rbuf);
}

/* The LUN map or the capacity changes while a write's Data-Out arrives. */
static void test_change_before_exec(void **state)
{
	struct env *e = *state;
	uint8_t buf[BLK] = { 0 };
	struct scsi_cmd cmd;
	uint64_t lun5 = 5, lun0 = 0;
	unsigned before;

	clear_ua(e);
	memset(&cmd, 0, sizeof(cmd));
	cmd.nexus = &e->nx;
	cmd.done = on_done;
	cdb_rw10(cmd.cdb, 0x2a, NBLK - 1, 1);
	assert_int_equal(scsi_cmd_prepare(&cmd), 0);
	map_luns(&e->nx, e->lu, &lun5, 1, false); /* LUN 0 goes away */
	cmd.buf = buf;
	cmd.buf_len = BLK;
	before = g_done;
	scsi_cmd_exec(&cmd);
	assert_int_equal(g_done, before + 1);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, ASC_LUN_NOT_SUPPORTED);
	assert_int_equal(fake_of(e->lu)->nsubmit, 0);

	map_luns(&e->nx, e->lu, &lun0, 1, false);
	clear_ua(e);
	assert_int_equal(scsi_cmd_prepare(&cmd), 0);
	atomic_store(&e->lu->nblocks, NBLK - 1); /* shrunk */
	cmd.buf = buf;
	cmd.buf_len = BLK;
	scsi_cmd_exec(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
	assert_int_equal(fake_of(e->lu)->nsubmit, 0);
	atomic_store(&e->lu->nblocks, NBLK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_inquiry_std, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inquiry_vpd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inquiry_vpd_thin, setup_unmap,
						teardown),
		cmocka_unit_test_setup_teardown(test_read_capacity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rw_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lba_out_of_range, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_invalid_opcode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_field, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ua_power_on, setup, teardown),
		cmocka_unit_test_setup_teardown(test_report_luns, setup, teardown),
		cmocka_unit_test(test_lun_codec),
		cmocka_unit_test_setup_teardown(test_mode_sense, setup, teardown),
		cmocka_unit_test(test_write_protect),
		cmocka_unit_test_setup_teardown(test_unmapped_lun, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mode_select, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_write_same_unmap,
						setup_unmap, teardown),
		cmocka_unit_test_setup_teardown(test_change_before_exec, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
