/* Block commands that move no user data: PRE-FETCH 10/16 (SBC-3 5.10,
 * 5.11), READ DEFECT DATA 10/12 (SBC-3 5.17, 5.18) and GET LBA STATUS
 * (SBC-3 5.7). */
#include <string.h>

#include "scsi/scsi_int.h"
#include "util/bytes.h"

/* --- PRE-FETCH (SBC-3 5.10, 5.11) ---
 * There is no cache of ours to load (the backstore's page cache does its
 * own read-ahead), so after the range check the command completes with
 * GOOD, which SBC-3 prescribes when the blocks are not (all) cached.
 * IMMED makes no difference. Executed by spc_exec_good. */
int sbc_prepare_prefetch(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	bool p16 = cdb[0] == 0x90;
	uint64_t lba = p16 ? get_be64(cdb + 2) : get_be32(cdb + 2);
	uint32_t nblk = p16 ? get_be32(cdb + 10) : get_be16(cdb + 7);

	return sbc_check_lba(cmd, lba, nblk);
}

/* --- READ DEFECT DATA (SBC-3 5.17, 5.18) ---
 * A virtual medium has no defects: the header only, echoing the
 * requested lists and format, with a DEFECT LIST LENGTH of zero. */
int sbc_prepare_read_defect(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	bool r12 = cdb[0] == 0xb7;

	cmd->dir = SCSI_DIR_READ;
	cmd->xfer_len = r12 ? get_be32(cdb + 6) : get_be16(cdb + 7);
	return 0;
}

void sbc_exec_read_defect(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	bool r12 = cdb[0] == 0xb7;
	uint8_t b[8];

	memset(b, 0, sizeof(b));
	/* REQ_PLIST, REQ_GLIST and DEFECT LIST FORMAT: byte 2 of the 10-byte
	 * CDB, byte 1 of the 12-byte one; reported in byte 1 of the header. */
	b[1] = (r12 ? cdb[1] : cdb[2]) & 0x1f;
	scsi_data_in(cmd, b, r12 ? 8 : 4);
	scsi_cmd_complete(cmd);
}

/* --- GET LBA STATUS (SBC-3 5.7) --- */

#define LBAS_MAX_DESC 64u

int sbc_prepare_get_lba_status(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	uint64_t lba = get_be64(cdb + 2);
	uint32_t alloc = get_be32(cdb + 10);

	/* The starting LBA must be on the medium (SBC-3 5.7.1). */
	if (lba >= atomic_load(&cmd->lu->nblocks)) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		return 1;
	}
	cmd->lba = lba;
	cmd->dir = SCSI_DIR_READ;
	cmd->xfer_len = alloc < 8 + 16 * LBAS_MAX_DESC ? alloc :
							 8 + 16 * LBAS_MAX_DESC;
	return 0;
}

/* One extent from lba: its length in blocks and whether it is mapped. A
 * block with any allocated byte counts as mapped. */
static int lba_extent(struct scsi_lu *lu, uint64_t lba, uint64_t nb,
		      uint64_t *count, bool *mapped)
{
	uint32_t bsz = lu->attrs.block_size;
	uint64_t len = (nb - lba) * bsz, blocks;
	int r;

	*mapped = true;
	if (!lu->bs->ops->map_status) {
		*count = nb - lba;
		return 0;
	}
	r = lu->bs->ops->map_status(lu->bs, lba * bsz, &len, mapped);
	if (r < 0)
		return r;
	if (*mapped) {
		blocks = (len + bsz - 1) / bsz;
	} else {
		blocks = len / bsz;
		if (blocks == 0) { /* a hole inside one block: mapped */
			*mapped = true;
			blocks = 1;
		}
	}
	if (blocks > nb - lba)
		blocks = nb - lba;
	*count = blocks;
	return 0;
}

void sbc_exec_get_lba_status(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	uint64_t nb = atomic_load(&lu->nblocks);
	uint64_t lba = cmd->lba;
	uint8_t b[8 + 16 * LBAS_MAX_DESC];
	size_t n = 8;
	unsigned ndesc = 0;
	/* Descriptors beyond the allocation length are not worth finding. */
	unsigned want = cmd->xfer_len <= 8 ? 1 : (cmd->xfer_len - 8 + 15) / 16;

	if (want > LBAS_MAX_DESC)
		want = LBAS_MAX_DESC;
	memset(b, 0, sizeof(b));
	while (lba < nb && ndesc < want) {
		uint64_t count;
		bool mapped;

		if (lba_extent(lu, lba, nb, &count, &mapped) < 0) {
			scsi_set_sense(cmd, SK_MEDIUM_ERROR, ASC_READ_ERROR);
			scsi_cmd_complete(cmd);
			return;
		}
		/* Coalesce with the previous descriptor when the state is
		 * the same (map_status may split an extent). */
		if (ndesc && (b[n - 4] == 0) == mapped &&
		    get_be32(b + n - 8) + count <= 0xffffffffu) {
			put_be32(b + n - 8, (uint32_t)(get_be32(b + n - 8) + count));
		} else {
			if (count > 0xffffffffu)
				count = 0xffffffffu;
			put_be64(b + n, lba);
			put_be32(b + n + 8, (uint32_t)count);
			/* PROVISIONING STATUS: 0 mapped, 1 deallocated */
			b[n + 12] = mapped ? 0 : 1;
			n += 16;
			ndesc++;
		}
		lba += count;
	}
	put_be32(b, (uint32_t)(n - 4)); /* PARAMETER DATA LENGTH */
	scsi_data_in(cmd, b, n);
	scsi_cmd_complete(cmd);
}
