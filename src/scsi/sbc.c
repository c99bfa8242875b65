/* Block commands (SBC-3): READ / WRITE 6/10/12/16, READ CAPACITY 10/16,
 * SYNCHRONIZE CACHE 10/16, VERIFY 10/12/16, WRITE AND VERIFY 10/12/16,
 * WRITE SAME 10/16, UNMAP. Data
 * moves through bs_submit with the struct bs_io embedded in the command;
 * the I/O completion completes the command. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi/scsi_int.h"
#include "util/bytes.h"

/* cmd->state bits private to this file */
#define ST_FUA 0x00010000u       /* READ / WRITE: FUA bit honoured */
#define ST_BYTCHK 0x00020000u    /* VERIFY: compare the Data-Out */
#define ST_WS_UNMAP 0x00040000u  /* WRITE SAME: UNMAP bit */
#define ST_WS_NDOB 0x00080000u   /* WRITE SAME(16): no Data-Out buffer */
#define ST_IN_SUBMIT 0x40000000u /* chain: inside bs_submit */
#define ST_SYNC_DONE 0x80000000u /* chain: I/O completed inside bs_submit */
#define ST_CHUNK_MASK 0x0000ffffu /* WRITE SAME: blocks per write */

#define WS_CHUNK_BYTES (1u << 20)

static int bad_cdb_field(struct scsi_cmd *cmd, uint16_t byte, int bit)
{
	scsi_set_sense_field(cmd, true, byte, bit);
	return 1;
}

/* SBC-3 4.5: the range must lie within the medium; a transfer of zero
 * blocks may start right after the last block (LIO does the same). */
static int check_lba(struct scsi_cmd *cmd, uint64_t lba, uint64_t nblk)
{
	uint64_t nb = atomic_load(&cmd->lu->nblocks);

	if (lba > nb || nblk > nb - lba) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		return 1;
	}
	return 0;
}

/* At exec: the capacity may have shrunk since prepare (see scsi_cmd_exec).
 * Completes the command when the range no longer fits. */
static bool range_gone(struct scsi_cmd *cmd)
{
	if (!check_lba(cmd, cmd->lba, cmd->nblk))
		return false;
	scsi_cmd_complete(cmd);
	return true;
}

static int check_wp(struct scsi_cmd *cmd)
{
	/* SBC-3 4.11: writes to a write-protected medium */
	if (scsi_lun_write_protected(cmd)) {
		scsi_set_sense(cmd, SK_DATA_PROTECT, ASC_WRITE_PROTECTED);
		return 1;
	}
	return 0;
}

static void io_error(struct scsi_cmd *cmd, enum bs_op op, int res)
{
	if (res == -ENOSPC)
		/* thin provisioning ran out of space (SBC-3 4.7.3.6) */
		scsi_set_sense(cmd, SK_DATA_PROTECT, ASC_SPACE_ALLOC_FAILED);
	else if (res == -ETIMEDOUT || res == -ESHUTDOWN || res == -ENOTCONN ||
		 res == -EAGAIN)
		/* The medium is out of reach (a network backstore's cluster
		 * did not answer in time), not broken: NOT READY, LOGICAL
		 * UNIT NOT ACCESSIBLE, ASYMMETRIC ACCESS STATE TRANSITION
		 * (SPC-4 5.15.2.4) is the sense initiators retry after a
		 * delay and multipath treats as a path to try elsewhere,
		 * where MEDIUM ERROR would fail the I/O to the application. */
		scsi_set_sense(cmd, SK_NOT_READY, ASC_LU_NOT_ACCESSIBLE_TRANSITION);
	else if (op == BS_READ)
		scsi_set_sense(cmd, SK_MEDIUM_ERROR, ASC_READ_ERROR);
	else
		scsi_set_sense(cmd, SK_MEDIUM_ERROR, ASC_WRITE_ERROR);
}

/* The Data-Out buffer must hold everything the CDB asked for. */
static bool data_out_short(struct scsi_cmd *cmd)
{
	if (cmd->xfer_len && (!cmd->buf || cmd->buf_len < cmd->xfer_len)) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_INVALID_FIELD_IN_CMD_IU);
		return true;
	}
	return false;
}

static void bio_setup(struct scsi_cmd *cmd, enum bs_op op, uint64_t lba,
		      uint64_t nblk, void *buf,
		      void (*done)(struct bs_io *io, int res))
{
	uint32_t bsz = cmd->lu->attrs.block_size;

	memset(&cmd->bio, 0, sizeof(cmd->bio));
	cmd->bio.op = op;
	cmd->bio.off = lba * bsz;
	cmd->bio.len = nblk * bsz;
	cmd->bio.buf = buf;
	cmd->bio.loop = cmd->loop;
	cmd->bio.done = done;
}

/* Shared with the other SBC files (scsi_int.h). */
int sbc_check_lba(struct scsi_cmd *cmd, uint64_t lba, uint64_t nblk)
{
	return check_lba(cmd, lba, nblk);
}

int sbc_check_wp(struct scsi_cmd *cmd)
{
	return check_wp(cmd);
}

void sbc_io_error(struct scsi_cmd *cmd, enum bs_op op, int res)
{
	io_error(cmd, op, res);
}

bool sbc_range_gone(struct scsi_cmd *cmd)
{
	return range_gone(cmd);
}

bool sbc_data_out_short(struct scsi_cmd *cmd)
{
	return data_out_short(cmd);
}

/* --- READ / WRITE (SBC-3 5.8-5.11, 5.32-5.35) --- */

int sbc_prepare_rw(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	const struct scsi_lu_attrs *a = &cmd->lu->attrs;
	bool write = cdb[0] & 0x02; /* 0Ah 2Ah AAh 8Ah vs 08h 28h A8h 88h */
	uint64_t lba;
	uint32_t nblk;
	uint16_t len_byte;
	bool has_flags = true, wav = false;

	switch (cdb[0]) {
	case 0x08:
	case 0x0a:
		lba = get_be24(cdb + 1) & 0x1fffff;
		nblk = cdb[4] ? cdb[4] : 256; /* 0 means 256 blocks */
		len_byte = 4;
		has_flags = false;
		break;
	case 0x28:
	case 0x2a:
		lba = get_be32(cdb + 2);
		nblk = get_be16(cdb + 7);
		len_byte = 7;
		break;
	case 0xa8:
	case 0xaa:
		lba = get_be32(cdb + 2);
		nblk = get_be32(cdb + 6);
		len_byte = 6;
		break;
	case 0x2e: /* WRITE AND VERIFY (10) */
		lba = get_be32(cdb + 2);
		nblk = get_be16(cdb + 7);
		len_byte = 7;
		wav = true;
		break;
	case 0xae: /* WRITE AND VERIFY (12) */
		lba = get_be32(cdb + 2);
		nblk = get_be32(cdb + 6);
		len_byte = 6;
		wav = true;
		break;
	case 0x8e: /* WRITE AND VERIFY (16) */
		lba = get_be64(cdb + 2);
		nblk = get_be32(cdb + 10);
		len_byte = 10;
		wav = true;
		break;
	default: /* 0x88, 0x8a */
		lba = get_be64(cdb + 2);
		nblk = get_be32(cdb + 10);
		len_byte = 10;
		break;
	}
	if (write && check_wp(cmd))
		return 1;
	if (wav) {
		/* SBC-3 5.38-5.40: no FUA bit; BYTCHK 00b (verify the
		 * medium) and 01b (compare with the Data-Out) both hold once
		 * the data is durably written, so the write is done with
		 * FUA; 10b is reserved and 11b is not supported. */
		uint8_t f = cdb[1];

		if (f & 0xe0)
			return bad_cdb_field(cmd, 1, 7);
		if ((f & 0x10) && !a->emulate_dpo)
			return bad_cdb_field(cmd, 1, 4);
		if (f & 0x04)
			return bad_cdb_field(cmd, 1, 2);
		cmd->state |= ST_FUA;
	} else if (has_flags) {
		uint8_t f = cdb[1];

		/* RDPROTECT / WRPROTECT: no protection information */
		if (f & 0xe0)
			return bad_cdb_field(cmd, 1, 7);
		/* DPO and FUA are refused when not advertised (DPOFUA in the
		 * MODE SENSE device-specific parameter), as LIO does. */
		if ((f & 0x10) && !a->emulate_dpo)
			return bad_cdb_field(cmd, 1, 4);
		if (f & 0x08) {
			if (!(write ? a->emulate_fua_write : a->emulate_fua_read))
				return bad_cdb_field(cmd, 1, 3);
			cmd->state |= ST_FUA;
		}
	}
	if (check_lba(cmd, lba, nblk))
		return 1;
	if (nblk > scsi_max_xfer_blocks(cmd->lu))
		return bad_cdb_field(cmd, len_byte, -1);
	cmd->lba = lba;
	cmd->nblk = nblk;
	cmd->dir = write ? SCSI_DIR_WRITE : SCSI_DIR_READ;
	cmd->xfer_len = nblk * a->block_size;
	return 0;
}

static void rw_done(struct bs_io *io, int res)
{
	struct scsi_cmd *cmd = container_of(io, struct scsi_cmd, bio);

	if (res < 0) {
		io_error(cmd, io->op, res);
	} else {
		scsi_set_good(cmd);
		cmd->data_len = cmd->dir == SCSI_DIR_READ ? cmd->xfer_len : 0;
	}
	scsi_cmd_complete(cmd);
}

void sbc_exec_rw(struct scsi_cmd *cmd)
{
	bool write = cmd->dir == SCSI_DIR_WRITE;

	if (range_gone(cmd))
		return;
	if (cmd->nblk == 0) { /* SBC-3: zero blocks is not an error */
		scsi_set_good(cmd);
		scsi_cmd_complete(cmd);
		return;
	}
	if (write && cmd->buf_len < cmd->xfer_len) {
		/* The initiator's expected transfer length was shorter than
		 * the CDB's: write only the whole blocks that arrived (as LIO
		 * does); the transport reports the residual overflow. */
		cmd->nblk = cmd->buf ? cmd->buf_len / cmd->lu->attrs.block_size : 0;
		if (cmd->nblk == 0) {
			scsi_set_good(cmd);
			scsi_cmd_complete(cmd);
			return;
		}
	} else if (!write && (!cmd->buf || cmd->buf_len < cmd->xfer_len)) {
		/* the transport broke its side of scsi.h */
		scsi_set_sense(cmd, SK_HARDWARE_ERROR,
			       ASC_INTERNAL_TARGET_FAILURE);
		scsi_cmd_complete(cmd);
		return;
	}
	bio_setup(cmd, write ? BS_WRITE : BS_READ, cmd->lba, cmd->nblk,
		  cmd->buf, rw_done);
	/* FUA on a read needs nothing more: reads always see the data that
	 * writes completed (there is no cache of ours in between). */
	cmd->bio.fua = write && (cmd->state & ST_FUA);
	bs_submit(cmd->lu->bs, &cmd->bio);
}

/* --- READ CAPACITY (SBC-3 5.15, 5.16) --- */

static uint64_t last_lba(const struct scsi_lu *lu)
{
	uint64_t nb = atomic_load(&lu->nblocks);

	return nb ? nb - 1 : 0;
}

int sbc_prepare_read_capacity10(struct scsi_cmd *cmd)
{
	cmd->dir = SCSI_DIR_READ;
	cmd->xfer_len = 8;
	return 0;
}

void sbc_exec_read_capacity10(struct scsi_cmd *cmd)
{
	uint8_t b[8];
	uint64_t last = last_lba(cmd->lu);

	/* FFFFFFFFh tells the initiator to use READ CAPACITY(16) */
	put_be32(b, last > 0xffffffffu ? 0xffffffffu : (uint32_t)last);
	put_be32(b + 4, cmd->lu->attrs.block_size);
	scsi_data_in(cmd, b, sizeof(b));
	scsi_cmd_complete(cmd);
}

/* SERVICE ACTION IN(16): READ CAPACITY(16), GET LBA STATUS (sbc_info.c). */
int sbc_prepare_sai(struct scsi_cmd *cmd)
{
	uint32_t alloc = get_be32(cmd->cdb + 10);

	if ((cmd->cdb[1] & 0x1f) == 0x12)
		return sbc_prepare_get_lba_status(cmd);
	if ((cmd->cdb[1] & 0x1f) != 0x10)
		return bad_cdb_field(cmd, 1, 4);
	cmd->dir = SCSI_DIR_READ;
	cmd->xfer_len = alloc < 32 ? alloc : 32;
	return 0;
}

void sbc_exec_sai(struct scsi_cmd *cmd)
{
	const struct scsi_lu *lu = cmd->lu;
	uint8_t b[32];

	if ((cmd->cdb[1] & 0x1f) == 0x12) {
		sbc_exec_get_lba_status(cmd);
		return;
	}

	memset(b, 0, sizeof(b));
	put_be64(b, last_lba(lu));
	put_be32(b + 8, lu->attrs.block_size);
	b[13] = (uint8_t)(scsi_lbppbe(lu) & 0x0f);
	/* LBPME: logical block provisioning on; LBPRZ: unmapped blocks read
	 * as zeros (SBC-3 5.16.2) */
	if (scsi_lu_tpu(lu) || scsi_lu_tpws(lu))
		b[14] = 0x80 | (lu->attrs.unmap_zeroes_data ? 0x40 : 0);
	scsi_data_in(cmd, b, sizeof(b));
	scsi_cmd_complete(cmd);
}

/* --- SYNCHRONIZE CACHE (SBC-3 5.22, 5.23) --- */

int sbc_prepare_sync_cache(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	uint64_t lba;
	uint32_t nblk;

	if (cdb[0] == 0x35) {
		lba = get_be32(cdb + 2);
		nblk = get_be16(cdb + 7);
	} else {
		lba = get_be64(cdb + 2);
		nblk = get_be32(cdb + 10);
	}
	/* nblk 0: from lba to the end of the medium. IMMED is accepted; we
	 * report status when the cache is flushed, which is allowed. */
	if (check_lba(cmd, lba, nblk))
		return 1;
	cmd->lba = lba;
	cmd->nblk = nblk;
	return 0;
}

static void status_done(struct bs_io *io, int res)
{
	struct scsi_cmd *cmd = container_of(io, struct scsi_cmd, bio);

	if (res < 0)
		io_error(cmd, io->op, res);
	else
		scsi_set_good(cmd);
	scsi_cmd_complete(cmd);
}

void sbc_exec_sync_cache(struct scsi_cmd *cmd)
{
	if (range_gone(cmd))
		return;
	bio_setup(cmd, BS_FLUSH, cmd->lba, cmd->nblk, NULL, status_done);
	bs_submit(cmd->lu->bs, &cmd->bio);
}

/* --- VERIFY (SBC-3 5.29-5.31) --- */

int sbc_prepare_verify(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	bool v16 = cdb[0] == 0x8f, v12 = cdb[0] == 0xaf;
	uint64_t lba = v16 ? get_be64(cdb + 2) : get_be32(cdb + 2);
	uint32_t nblk = v16 ? get_be32(cdb + 10) :
			v12 ? get_be32(cdb + 6) : get_be16(cdb + 7);
	uint16_t len_byte = v16 ? 10 : v12 ? 6 : 7;
	unsigned bytchk = (cdb[1] >> 1) & 3;

	if (cdb[1] & 0xe0) /* VRPROTECT */
		return bad_cdb_field(cmd, 1, 7);
	/* BYTCHK 00b: medium check only (our medium cannot fail it);
	 * 01b: compare with the Data-Out; 10b reserved; 11b (one block
	 * compared against each) is not supported. */
	if (bytchk > 1)
		return bad_cdb_field(cmd, 1, 2);
	if (check_lba(cmd, lba, nblk))
		return 1;
	cmd->lba = lba;
	cmd->nblk = nblk;
	if (bytchk) {
		if (nblk > scsi_max_xfer_blocks(cmd->lu))
			return bad_cdb_field(cmd, len_byte, -1);
		cmd->state |= ST_BYTCHK;
		cmd->dir = SCSI_DIR_WRITE;
		cmd->xfer_len = nblk * cmd->lu->attrs.block_size;
	}
	return 0;
}

static void verify_done(struct bs_io *io, int res)
{
	struct scsi_cmd *cmd = container_of(io, struct scsi_cmd, bio);

	if (res < 0) {
		io_error(cmd, BS_READ, res);
	} else if (memcmp(io->buf, cmd->buf, cmd->xfer_len) != 0) {
		scsi_set_sense(cmd, SK_MISCOMPARE, ASC_MISCOMPARE_VERIFY);
	} else {
		scsi_set_good(cmd);
	}
	free(io->buf);
	io->buf = NULL;
	scsi_cmd_complete(cmd);
}

static size_t round_up_4k(size_t n)
{
	return (n + 4095) & ~(size_t)4095;
}

void sbc_exec_verify(struct scsi_cmd *cmd)
{
	void *medium;

	if (range_gone(cmd))
		return;
	if (!(cmd->state & ST_BYTCHK) || cmd->nblk == 0) {
		scsi_set_good(cmd);
		scsi_cmd_complete(cmd);
		return;
	}
	if (data_out_short(cmd)) {
		scsi_cmd_complete(cmd);
		return;
	}
	medium = aligned_alloc(4096, round_up_4k(cmd->xfer_len));
	if (!medium) {
		scsi_set_sense(cmd, SK_HARDWARE_ERROR,
			       ASC_INTERNAL_TARGET_FAILURE);
		scsi_cmd_complete(cmd);
		return;
	}
	bio_setup(cmd, BS_READ, cmd->lba, cmd->nblk, medium, verify_done);
	bs_submit(cmd->lu->bs, &cmd->bio);
}

/* --- I/O chains: several backstore I/Os for one command ---
 * A synchronous backstore completes inside bs_submit; instead of recursing
 * once per I/O, the completion only notes it and the loop below goes on. */

static bool chain_next_io(struct scsi_cmd *cmd);
static void chain_finish(struct scsi_cmd *cmd);

static void chain_run(struct scsi_cmd *cmd)
{
	for (;;) {
		if (cmd->status != SAM_STAT_GOOD || !chain_next_io(cmd)) {
			chain_finish(cmd);
			return;
		}
		cmd->state = (cmd->state | ST_IN_SUBMIT) & ~ST_SYNC_DONE;
		bs_submit(cmd->lu->bs, &cmd->bio);
		cmd->state &= ~ST_IN_SUBMIT;
		if (!(cmd->state & ST_SYNC_DONE))
			return; /* chain_done continues later */
	}
}

static void chain_done(struct bs_io *io, int res)
{
	struct scsi_cmd *cmd = container_of(io, struct scsi_cmd, bio);

	if (res < 0)
		io_error(cmd, io->op, res);
	if (cmd->state & ST_IN_SUBMIT) {
		cmd->state |= ST_SYNC_DONE;
		return;
	}
	chain_run(cmd);
}

/* WRITE SAME with a pattern: cmd->lba / cmd->nblk are what is left to
 * write, the pattern buffer rides in bio.buf. */
static bool ws_next_io(struct scsi_cmd *cmd)
{
	uint32_t chunk = cmd->state & ST_CHUNK_MASK;
	void *buf = cmd->bio.buf;

	if (cmd->nblk == 0)
		return false;
	if (chunk > cmd->nblk)
		chunk = cmd->nblk;
	bio_setup(cmd, BS_WRITE, cmd->lba, chunk, buf, chain_done);
	cmd->lba += chunk;
	cmd->nblk -= chunk;
	return true;
}

/* UNMAP: cmd->lba is the next block descriptor, cmd->nblk their count. */
static bool unmap_next_io(struct scsi_cmd *cmd)
{
	while (cmd->lba < cmd->nblk) {
		const uint8_t *d = cmd->buf + 8 + 16 * cmd->lba;
		uint64_t lba = get_be64(d);
		uint32_t n = get_be32(d + 8);

		cmd->lba++;
		if (n == 0)
			continue;
		bio_setup(cmd, BS_UNMAP, lba, n, NULL, chain_done);
		return true;
	}
	return false;
}

static bool chain_next_io(struct scsi_cmd *cmd)
{
	return cmd->cdb[0] == 0x42 ? unmap_next_io(cmd) : ws_next_io(cmd);
}

static void chain_finish(struct scsi_cmd *cmd)
{
	if (cmd->cdb[0] != 0x42) {
		free(cmd->bio.buf);
		cmd->bio.buf = NULL;
	}
	scsi_cmd_complete(cmd);
}

/* --- WRITE SAME (SBC-3 5.41, 5.42) --- */

int sbc_prepare_write_same(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	bool ws16 = cdb[0] == 0x93;
	uint64_t lba = ws16 ? get_be64(cdb + 2) : get_be32(cdb + 2);
	uint32_t nblk = ws16 ? get_be32(cdb + 10) : get_be16(cdb + 7);
	uint16_t len_byte = ws16 ? 10 : 7;
	uint8_t f = cdb[1];

	if (check_wp(cmd))
		return 1;
	if (f & 0xe0) /* WRPROTECT */
		return bad_cdb_field(cmd, 1, 7);
	if (f & 0x10) /* ANCHOR: ANC_SUP is 0 */
		return bad_cdb_field(cmd, 1, 4);
	if (f & 0x06) /* PBDATA / LBDATA: no address substitution */
		return bad_cdb_field(cmd, 1, (f & 0x04) ? 2 : 1);
	if ((f & 0x08) && !scsi_lu_tpws(cmd->lu))
		return bad_cdb_field(cmd, 1, 3);
	/* WSNZ=1 in VPD B0: zero blocks is refused, as is more than
	 * MAXIMUM WRITE SAME LENGTH */
	if (nblk == 0 || nblk > cmd->lu->attrs.max_write_same_len)
		return bad_cdb_field(cmd, len_byte, -1);
	if (check_lba(cmd, lba, nblk))
		return 1;
	cmd->lba = lba;
	cmd->nblk = nblk;
	if (f & 0x08)
		cmd->state |= ST_WS_UNMAP;
	cmd->dir = SCSI_DIR_WRITE;
	if (ws16 && (f & 0x01)) { /* NDOB: the block is all zeros */
		cmd->state |= ST_WS_NDOB;
		cmd->xfer_len = 0;
	} else {
		cmd->xfer_len = cmd->lu->attrs.block_size;
	}
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

void sbc_exec_write_same(struct scsi_cmd *cmd)
{
	uint32_t bsz = cmd->lu->attrs.block_size;
	uint32_t chunk;
	uint8_t *pat;
	bool zero;

	if (range_gone(cmd))
		return;
	if (data_out_short(cmd)) {
		scsi_cmd_complete(cmd);
		return;
	}
	zero = (cmd->state & ST_WS_NDOB) || all_zero(cmd->buf, bsz);
	if (zero) {
		/* SBC-3 4.7.3.4: with UNMAP the blocks may be deallocated,
		 * since they read back as zeros (LBPRZ) */
		bio_setup(cmd,
			  (cmd->state & ST_WS_UNMAP) ? BS_UNMAP : BS_WRITE_ZEROES,
			  cmd->lba, cmd->nblk, NULL, status_done);
		bs_submit(cmd->lu->bs, &cmd->bio);
		return;
	}
	if (cmd->lu->bs->can_write_same) {
		/* One request: the backstore repeats the block itself
		 * (librbd's writesame), no pattern buffer here. */
		bio_setup(cmd, BS_WRITE_SAME, cmd->lba, cmd->nblk, cmd->buf,
			  status_done);
		cmd->bio.same_len = bsz;
		bs_submit(cmd->lu->bs, &cmd->bio);
		return;
	}
	chunk = WS_CHUNK_BYTES / bsz;
	if (chunk > cmd->nblk)
		chunk = cmd->nblk;
	pat = aligned_alloc(4096, round_up_4k((size_t)chunk * bsz));
	if (!pat) {
		scsi_set_sense(cmd, SK_HARDWARE_ERROR,
			       ASC_INTERNAL_TARGET_FAILURE);
		scsi_cmd_complete(cmd);
		return;
	}
	for (uint32_t i = 0; i < chunk; i++)
		memcpy(pat + (size_t)i * bsz, cmd->buf, bsz);
	cmd->state = (cmd->state & ~ST_CHUNK_MASK) | chunk;
	cmd->bio.buf = pat;
	scsi_set_good(cmd);
	chain_run(cmd);
}

/* --- UNMAP (SBC-3 5.28) --- */

int sbc_prepare_unmap(struct scsi_cmd *cmd)
{
	if (!scsi_lu_tpu(cmd->lu)) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
		return 1;
	}
	if (check_wp(cmd))
		return 1;
	if (cmd->cdb[1] & 0x01) /* ANCHOR: ANC_SUP is 0 */
		return bad_cdb_field(cmd, 1, 0);
	cmd->dir = SCSI_DIR_WRITE;
	cmd->xfer_len = get_be16(cmd->cdb + 7);
	return 0;
}

/* Every descriptor is checked before any block is deallocated, so a bad
 * list changes nothing. */
void sbc_exec_unmap(struct scsi_cmd *cmd)
{
	const struct scsi_lu_attrs *a = &cmd->lu->attrs;
	const uint8_t *b = cmd->buf;
	size_t n = cmd->xfer_len < cmd->buf_len ? cmd->xfer_len : cmd->buf_len;
	size_t size, ndesc;

	if (cmd->xfer_len == 0) { /* no parameter data: nothing to do */
		scsi_set_good(cmd);
		scsi_cmd_complete(cmd);
		return;
	}
	if (!b || n < 8) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_PARAM_LIST_LENGTH_ERROR);
		scsi_cmd_complete(cmd);
		return;
	}
	size = n - 8;
	if (get_be16(b + 2) < size)
		size = get_be16(b + 2); /* BLOCK DESCRIPTOR DATA LENGTH */
	ndesc = size / 16;
	if (ndesc > a->max_unmap_block_desc_count) {
		scsi_set_sense_field(cmd, false, 2, -1);
		scsi_cmd_complete(cmd);
		return;
	}
	for (size_t i = 0; i < ndesc; i++) {
		const uint8_t *d = b + 8 + 16 * i;

		if (get_be32(d + 8) > a->max_unmap_lba_count) {
			scsi_set_sense_field(cmd, false,
					     (uint16_t)(8 + 16 * i + 8), -1);
			scsi_cmd_complete(cmd);
			return;
		}
		if (check_lba(cmd, get_be64(d), get_be32(d + 8))) {
			scsi_cmd_complete(cmd);
			return;
		}
	}
	cmd->lba = 0;
	cmd->nblk = (uint32_t)ndesc;
	scsi_set_good(cmd);
	chain_run(cmd);
}
