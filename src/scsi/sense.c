/* Sense data. Only the fixed format is produced (SPC-4 4.5.3): every
 * initiator understands it, and D_SENSE in the control mode page is 0. */
#include <string.h>

#include "scsi/scsi_int.h"
#include "util/bytes.h"

void scsi_sense_fill(uint8_t *s, uint8_t key, uint16_t asc)
{
	memset(s, 0, SCSI_FIXED_SENSE_LEN);
	s[0] = 0x70;                           /* current error, fixed format */
	s[2] = key & 0x0f;
	s[7] = SCSI_FIXED_SENSE_LEN - 8;       /* additional sense length: 10 */
	s[12] = (uint8_t)(asc >> 8);
	s[13] = (uint8_t)asc;
}

void scsi_set_sense(struct scsi_cmd *cmd, uint8_t key, uint16_t asc)
{
	cmd->status = SAM_STAT_CHECK_CONDITION;
	scsi_sense_fill(cmd->sense, key, asc);
	cmd->sense_len = SCSI_FIXED_SENSE_LEN;
	/* A command that fails returns no data (SAM-5 5.3.1: the Data-In of a
	 * CHECK CONDITION is not to be relied on; we send none). */
	cmd->data_len = 0;
}

void scsi_set_sense_info(struct scsi_cmd *cmd, uint8_t key, uint16_t asc,
			 uint32_t info)
{
	scsi_set_sense(cmd, key, asc);
	cmd->sense[0] |= 0x80; /* VALID: the INFORMATION field is defined */
	put_be32(cmd->sense + 3, info);
}

/* SPC-4 4.5.2.4.2: field pointer sense-key specific data. SKSV says the
 * bytes are valid, C/D tells CDB from parameter list, BPV says the bit
 * pointer names the most significant bit of the field in error. */
void scsi_set_sense_field(struct scsi_cmd *cmd, bool in_cdb, uint16_t byte,
			  int bit)
{
	uint8_t *s = cmd->sense;

	scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
		       in_cdb ? ASC_INVALID_FIELD_IN_CDB :
				ASC_INVALID_FIELD_IN_PARAM_LIST);
	s[15] = 0x80;
	if (in_cdb)
		s[15] |= 0x40;
	if (bit >= 0)
		s[15] |= (uint8_t)(0x08 | (bit & 7));
	put_be16(s + 16, byte);
}
