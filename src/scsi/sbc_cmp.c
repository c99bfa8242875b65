/* Read-modify-write block commands: COMPARE AND WRITE (SBC-3 5.2),
 * ORWRITE (SBC-3 5.8) and WRITE ATOMIC(16) (SBC-4 5.48).
 *
 * Each runs its read, compare or merge, and write under the LU's cmp_lock
 * with synchronous backstore I/O, so two of them on the same LU never
 * interleave, whichever worker or session they arrive on (LIO serializes
 * COMPARE AND WRITE the same way, with its per-device caw_sem). Plain
 * WRITEs stay lock-free: they are not serialized against these, as in
 * LIO. The I/Os are short (at most SCSI_CAW_MAX_BLOCKS or
 * SCSI_ATOMIC_MAX_BYTES, or one ORWRITE), so blocking the worker for one
 * of them costs less than a lock on the data path would. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi/scsi_int.h"
#include "util/bytes.h"

static int bad_cdb_field(struct scsi_cmd *cmd, uint16_t byte, int bit)
{
	scsi_set_sense_field(cmd, true, byte, bit);
	return 1;
}

struct sync_io {
	struct bs_io io;
	int res;
	bool done;
};

static void sync_done(struct bs_io *io, int res)
{
	struct sync_io *s = container_of(io, struct sync_io, io);

	s->res = res;
	s->done = true;
}

int sbc_sync_io(struct scsi_lu *lu, enum bs_op op, uint64_t off,
		uint64_t len, void *buf, bool fua)
{
	struct sync_io s;

	memset(&s, 0, sizeof(s));
	s.io.op = op;
	s.io.off = off;
	s.io.len = len;
	s.io.buf = buf;
	s.io.fua = fua;
	s.io.loop = NULL; /* backstore.h: NULL = synchronous */
	s.io.done = sync_done;
	bs_submit(lu->bs, &s.io);
	return s.done ? s.res : -EIO;
}

static void *alloc_io_buf(size_t len)
{
	return aligned_alloc(4096, (len + 4095) & ~(size_t)4095);
}

/* Flags byte shared by the three commands: WRPROTECT / ORPROTECT (no
 * protection information: must be 0), DPO, FUA. */
static int check_flags(struct scsi_cmd *cmd)
{
	const struct scsi_lu_attrs *a = &cmd->lu->attrs;
	uint8_t f = cmd->cdb[1];

	if (f & 0xe0)
		return bad_cdb_field(cmd, 1, 7);
	if ((f & 0x10) && !a->emulate_dpo)
		return bad_cdb_field(cmd, 1, 4);
	if ((f & 0x08) && !a->emulate_fua_write)
		return bad_cdb_field(cmd, 1, 3);
	return 0;
}

static void internal_error(struct scsi_cmd *cmd)
{
	scsi_set_sense(cmd, SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
}

/* --- COMPARE AND WRITE (SBC-3 5.2) --- */

int sbc_prepare_caw(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	uint64_t lba = get_be64(cdb + 2);
	uint32_t nblk = cdb[13];

	if (!cmd->lu->attrs.emulate_caw) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
		return 1;
	}
	if (sbc_check_wp(cmd) || check_flags(cmd))
		return 1;
	/* More than MAXIMUM COMPARE AND WRITE LENGTH (VPD B0) */
	if (nblk > SCSI_CAW_MAX_BLOCKS)
		return bad_cdb_field(cmd, 13, -1);
	if (sbc_check_lba(cmd, lba, nblk))
		return 1;
	cmd->lba = lba;
	cmd->nblk = nblk;
	/* The Data-Out holds the verify instance, then the write instance. */
	cmd->dir = SCSI_DIR_WRITE;
	cmd->xfer_len = 2 * nblk * cmd->lu->attrs.block_size;
	/* A Data-Out of any other size cannot be split into the two
	 * instances: refuse it rather than compare or write a guess (LIO
	 * rejects a CAW whose expected length differs from the CDB's). */
	if (cmd->edtl != cmd->xfer_len) {
		cmd->xfer_len = 0;
		return bad_cdb_field(cmd, 13, -1);
	}
	return 0;
}

/* Read-modify-write of the command's blocks under the LU's cmp_lock, so it
 * is atomic against the other commands that take it (CAW, ORWRITE, WRITE
 * ATOMIC). modify() gets the medium image and turns it into what is to be
 * written; it returns false (with the status set) when nothing is to be
 * written. */
static void read_modify_write(struct scsi_cmd *cmd,
			      bool (*modify)(struct scsi_cmd *cmd,
					     uint8_t *medium, size_t len))
{
	struct scsi_lu *lu = cmd->lu;
	size_t len = (size_t)cmd->nblk * lu->attrs.block_size;
	uint64_t off = cmd->lba * lu->attrs.block_size;
	uint8_t *medium;
	int res;

	/* SBC-3 5.2, 5.8: zero blocks is not an error, and nothing is done. */
	if (cmd->nblk == 0) {
		scsi_set_good(cmd);
		return;
	}
	if (sbc_data_out_short(cmd))
		return;
	medium = alloc_io_buf(len);
	if (!medium) {
		internal_error(cmd);
		return;
	}
	pthread_mutex_lock(&lu->cmp_lock);
	res = sbc_sync_io(lu, BS_READ, off, len, medium, false);
	if (res < 0) {
		sbc_io_error(cmd, BS_READ, res);
	} else if (modify(cmd, medium, len)) {
		res = sbc_sync_io(lu, BS_WRITE, off, len, medium,
				  cmd->cdb[1] & 0x08);
		if (res < 0)
			sbc_io_error(cmd, BS_WRITE, res);
		else
			scsi_set_good(cmd);
	}
	pthread_mutex_unlock(&lu->cmp_lock);
	free(medium);
}

static bool caw_modify(struct scsi_cmd *cmd, uint8_t *medium, size_t len)
{
	if (memcmp(medium, cmd->buf, len) != 0) {
		size_t i = 0;

		while (medium[i] == cmd->buf[i])
			i++;
		/* MISCOMPARE DURING VERIFY OPERATION; INFORMATION is the
		 * offset of the first byte that differs, from the start of
		 * the Data-Out buffer. Nothing is written. */
		scsi_set_sense_info(cmd, SK_MISCOMPARE, ASC_MISCOMPARE_VERIFY,
				    (uint32_t)i);
		return false;
	}
	/* The write instance is not 4096-aligned inside the Data-Out
	 * (backstore.h wants aligned buffers): copy it over the medium
	 * image, which is no longer needed. */
	memcpy(medium, cmd->buf + len, len);
	return true;
}

static void caw_done(struct bs_io *io, int res)
{
	struct scsi_cmd *cmd = container_of(io, struct scsi_cmd, bio);

	if (res == -EILSEQ)
		/* as caw_modify: INFORMATION = offset of the first byte that
		 * differs; the backstore wrote nothing */
		scsi_set_sense_info(cmd, SK_MISCOMPARE, ASC_MISCOMPARE_VERIFY,
				    (uint32_t)io->miscompare_off);
	else if (res < 0)
		sbc_io_error(cmd, BS_WRITE, res);
	else
		scsi_set_good(cmd);
	scsi_cmd_complete(cmd);
}

void sbc_exec_caw(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	uint32_t len = cmd->nblk * lu->attrs.block_size;

	if (sbc_range_gone(cmd))
		return;
	if (lu->bs->can_caw && cmd->nblk &&
	    (!lu->bs->caw_max_len || len <= lu->bs->caw_max_len) &&
	    !sbc_data_out_short(cmd)) {
		/* The backstore compares and writes atomically itself (an
		 * RBD image shared by several gateways: a lock here could
		 * not serialize against the others), asynchronously.
		 * Longer ones than it can take fall back to the
		 * read-modify-write below: atomic against this gateway's
		 * commands only (docs/conformance.md). */
		memset(&cmd->bio, 0, sizeof(cmd->bio));
		cmd->bio.op = BS_COMPARE_AND_WRITE;
		cmd->bio.off = cmd->lba * lu->attrs.block_size;
		cmd->bio.len = len;
		cmd->bio.cmp_buf = cmd->buf;
		cmd->bio.buf = cmd->buf + len;
		cmd->bio.fua = cmd->cdb[1] & 0x08;
		cmd->bio.loop = cmd->loop;
		cmd->bio.done = caw_done;
		bs_submit(lu->bs, &cmd->bio);
		return;
	}
	read_modify_write(cmd, caw_modify);
	scsi_cmd_complete(cmd);
}

/* --- ORWRITE (SBC-3 5.8): the medium becomes medium OR Data-Out --- */

int sbc_prepare_orwrite(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	uint64_t lba = get_be64(cdb + 2);
	uint32_t nblk = get_be32(cdb + 10);

	if (sbc_check_wp(cmd) || check_flags(cmd))
		return 1;
	if (sbc_check_lba(cmd, lba, nblk))
		return 1;
	if (nblk > scsi_max_xfer_blocks(cmd->lu))
		return bad_cdb_field(cmd, 10, -1);
	cmd->lba = lba;
	cmd->nblk = nblk;
	cmd->dir = SCSI_DIR_WRITE;
	cmd->xfer_len = nblk * cmd->lu->attrs.block_size;
	return 0;
}

static bool orwrite_modify(struct scsi_cmd *cmd, uint8_t *medium, size_t len)
{
	for (size_t i = 0; i < len; i++)
		medium[i] |= cmd->buf[i];
	return true;
}

void sbc_exec_orwrite(struct scsi_cmd *cmd)
{
	if (sbc_range_gone(cmd))
		return;
	read_modify_write(cmd, orwrite_modify);
	scsi_cmd_complete(cmd);
}

/* --- WRITE ATOMIC(16) (SBC-4 5.48) ---
 * VPD B0 advertises MAXIMUM ATOMIC TRANSFER LENGTH with no alignment,
 * granularity or boundary rules (ATOMIC BOUNDARY must be 0). The write is
 * one synchronous backstore write under cmp_lock. */

int sbc_prepare_write_atomic(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	uint64_t lba = get_be64(cdb + 2);
	uint32_t nblk = get_be16(cdb + 12);
	uint32_t bsz = cmd->lu->attrs.block_size;

	if (sbc_check_wp(cmd) || check_flags(cmd))
		return 1;
	/* MAXIMUM ATOMIC BOUNDARY SIZE is 0: no boundaries */
	if (get_be16(cdb + 10))
		return bad_cdb_field(cmd, 10, -1);
	if (sbc_check_lba(cmd, lba, nblk))
		return 1;
	if ((uint64_t)nblk * bsz > SCSI_ATOMIC_MAX_BYTES)
		return bad_cdb_field(cmd, 12, -1);
	cmd->lba = lba;
	cmd->nblk = nblk;
	cmd->dir = SCSI_DIR_WRITE;
	cmd->xfer_len = nblk * bsz;
	return 0;
}

void sbc_exec_write_atomic(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	int res;

	if (sbc_range_gone(cmd))
		return;
	if (cmd->nblk == 0) {
		scsi_set_good(cmd);
	} else if (!sbc_data_out_short(cmd)) {
		pthread_mutex_lock(&lu->cmp_lock);
		res = sbc_sync_io(lu, BS_WRITE,
				  cmd->lba * lu->attrs.block_size,
				  cmd->xfer_len, cmd->buf, cmd->cdb[1] & 0x08);
		pthread_mutex_unlock(&lu->cmp_lock);
		if (res < 0)
			sbc_io_error(cmd, BS_WRITE, res);
		else
			scsi_set_good(cmd);
	}
	scsi_cmd_complete(cmd);
}
