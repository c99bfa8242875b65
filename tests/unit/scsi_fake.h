/* Shared by the SCSI unit tests: the fake backstore (fake_bs.h), a
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

#include "fake_bs.h"
#include "scsi/scsi.h"
#include "util/bytes.h"

static struct scsi_lu *fake_lu(const char *wwn)
{
	struct scsi_lu *lu = scsi_lu_create(
		fake_dev("disk", (uint64_t)NBLK * BLK, false, true), "disk",
		"fileio", wwn, NULL);

	assert_non_null(lu);
	return lu;
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
