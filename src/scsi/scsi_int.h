/* Private to the SCSI core: shared between cmd.c (dispatch), spc.c (primary
 * commands), sbc.c (block commands), sense.c and lun.c. Not for transports. */
#ifndef UT_SCSI_INT_H
#define UT_SCSI_INT_H

#include <stddef.h>

#include "scsi/scsi.h"

/* Additional sense codes only the core produces. */
#define ASC_MISCOMPARE_VERIFY 0x1d00       /* MISCOMPARE DURING VERIFY OPERATION */
#define ASC_INVALID_FIELD_IN_CMD_IU 0x0e03 /* INVALID FIELD IN COMMAND INFORMATION UNIT */
#define ASC_NO_ADDITIONAL_SENSE 0x0000

/* The largest data transfer one command may ask for. */
#define SCSI_MAX_XFER_BYTES (64u << 20)

/* LIO's IEEE company id (OUI 00-14-05), used for the NAA designator. */
#define SCSI_LIO_COMPANY_ID 0x001405u

#define SCSI_VENDOR "LIO-ORG "
#define SCSI_REVISION "4.0 "

/* Opcode table entry. prepare returns 0 (execute) or 1 (status final). */
struct scsi_op {
	unsigned flags;
	int (*prepare)(struct scsi_cmd *cmd);
	void (*exec)(struct scsi_cmd *cmd);
};

/* SPC-4 5.14 / SAM-5 5.14: INQUIRY, REPORT LUNS and REQUEST SENSE neither
 * report nor clear a pending unit attention through CHECK CONDITION. */
#define SCSI_OPF_NO_UA 0x1u
/* Allowed on a LUN the nexus does not see (SPC-4 6.4.1 / 6.33 / 6.39). */
#define SCSI_OPF_ANY_LUN 0x2u

/* --- alua.c --- */
int scsi_alua_init(struct scsi_lu *lu);     /* default_tg_pt_gp */
void scsi_alua_free(struct scsi_lu *lu);
/* The command's port is in a state that refuses it: NOT READY set. */
bool scsi_alua_check(struct scsi_cmd *cmd);
void scsi_alua_due(struct scsi_lun_ent *ent);   /* see scsi_alua_gp_state */
uint8_t scsi_alua_tpgs(const struct scsi_cmd *cmd);  /* INQUIRY byte 5 */
uint16_t scsi_alua_gp_id(const struct scsi_cmd *cmd); /* VPD 0x83 type 5 */
int spc_prepare_rtpg(struct scsi_cmd *cmd);
void spc_exec_rtpg(struct scsi_cmd *cmd);
int spc_prepare_stpg(struct scsi_cmd *cmd);
void spc_exec_stpg(struct scsi_cmd *cmd);

/* --- cmd.c --- */
/* The dispatcher has a prepare function for this opcode. */
bool scsi_op_dispatched(uint8_t op);
/* Completes cmd: runs cmd->done and drops the LU reference prepare took. */
void scsi_cmd_complete(struct scsi_cmd *cmd);
/* GOOD with min(len, xfer_len, buf_len) bytes of data copied to buf. */
void scsi_data_in(struct scsi_cmd *cmd, const void *data, size_t len);
/* Takes the highest-priority pending UA off ent; 0 when none. */
unsigned scsi_ua_pop(struct scsi_lun_ent *ent);
uint16_t scsi_ua_asc(unsigned ua_bit);
/* Largest transfer length in logical blocks (VPD B0 MAXIMUM TRANSFER LENGTH). */
uint32_t scsi_max_xfer_blocks(const struct scsi_lu *lu);
/* Write protection of the LUN as this nexus sees it. */
bool scsi_lun_write_protected(const struct scsi_cmd *cmd);

/* Logical block provisioning is offered when the attribute asks for it and
 * the backstore can deallocate (SBC-3 4.7). */
static inline bool scsi_lu_tpu(const struct scsi_lu *lu)
{
	return lu->attrs.emulate_tpu && lu->bs->can_unmap;
}

static inline bool scsi_lu_tpws(const struct scsi_lu *lu)
{
	return lu->attrs.emulate_tpws && lu->bs->can_unmap;
}

/* LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT (SBC-3 5.16.2): log2 of the
 * backstore's block size over the exported one. */
static inline unsigned scsi_lbppbe(const struct scsi_lu *lu)
{
	unsigned e = 0;
	uint32_t phys = lu->bs->block_size;

	while (phys > lu->attrs.block_size && e < 15) {
		phys >>= 1;
		e++;
	}
	return e;
}

/* --- sense.c --- */
/* 18 bytes of fixed-format sense data (SPC-4 4.5.3). */
#define SCSI_FIXED_SENSE_LEN 18
void scsi_sense_fill(uint8_t *s, uint8_t key, uint16_t asc);
/* CHECK CONDITION with the INFORMATION field valid (e.g. MISCOMPARE). */
void scsi_set_sense_info(struct scsi_cmd *cmd, uint8_t key, uint16_t asc,
			 uint32_t info);

/* --- lun.c --- */
/* A UA for every nexus that sees lu except nx (SPC-4 7.5.2: MODE SELECT). */
void scsi_lu_establish_ua_except(struct scsi_lu *lu, unsigned ua,
				 const struct scsi_nexus *nx);
/* Clears ua bits on every LUN of the nexus (LUICLR, REPORT LUNS). */
void scsi_nexus_clear_ua(struct scsi_nexus *nx, unsigned ua);
/* Drops a reference; a last put on a worker defers the close to the end of
 * the loop iteration, so a backstore is never closed inside its own
 * completion callback. */
void scsi_lu_put_on(struct scsi_lu *lu, struct io_loop *loop);

/* --- spc.c --- */
int spc_prepare_inquiry(struct scsi_cmd *cmd);
void spc_exec_inquiry(struct scsi_cmd *cmd);
int spc_prepare_report_luns(struct scsi_cmd *cmd);
void spc_exec_report_luns(struct scsi_cmd *cmd);
int spc_prepare_test_unit_ready(struct scsi_cmd *cmd);
void spc_exec_good(struct scsi_cmd *cmd);
int spc_prepare_request_sense(struct scsi_cmd *cmd);
void spc_exec_request_sense(struct scsi_cmd *cmd);
int spc_prepare_mode_sense(struct scsi_cmd *cmd);
void spc_exec_mode_sense(struct scsi_cmd *cmd);
int spc_prepare_mode_select(struct scsi_cmd *cmd);
void spc_exec_mode_select(struct scsi_cmd *cmd);
int spc_prepare_start_stop(struct scsi_cmd *cmd);
int spc_prepare_prevent_allow(struct scsi_cmd *cmd);

/* --- rsoc.c: MAINTENANCE IN (REPORT SUPPORTED OPERATION CODES, REPORT
 * SUPPORTED TASK MANAGEMENT FUNCTIONS) --- */
int spc_prepare_maint_in(struct scsi_cmd *cmd);
void spc_exec_maint_in(struct scsi_cmd *cmd);
/* The descriptor table, for the unit tests. */
size_t scsi_rsoc_count(void);
void scsi_rsoc_entry(size_t i, uint8_t *op, uint16_t *sa, bool *servactv);

/* --- pr.c: persistent reservations, RESERVE / RELEASE 6/10 --- */
/* 1 with RESERVATION CONFLICT set when cmd may not run; called only
 * while lu->reserved. */
int scsi_pr_check(struct scsi_cmd *cmd);
void scsi_pr_restore(struct scsi_lu *lu);      /* APTPL state, at create */
void scsi_pr_free(struct scsi_lu *lu);
/* The I_T nexus ended: its SPC-2 reservation goes with it. */
void scsi_pr_nexus_gone(struct scsi_lu *lu, const struct scsi_nexus *nx);
/* LUN reset / power on (lu->lock held): SPC-2 reservations end. */
void scsi_pr_reset_locked(struct scsi_lu *lu);
int spc_prepare_reserve(struct scsi_cmd *cmd);
void spc_exec_reserve(struct scsi_cmd *cmd);
int spc_prepare_pr_in(struct scsi_cmd *cmd);
void spc_exec_pr_in(struct scsi_cmd *cmd);
int spc_prepare_pr_out(struct scsi_cmd *cmd);
void spc_exec_pr_out(struct scsi_cmd *cmd);

/* --- xcopy.c: EXTENDED COPY, RECEIVE COPY RESULTS, VPD 0x8F --- */
int spc_prepare_xcopy(struct scsi_cmd *cmd);
void spc_exec_xcopy(struct scsi_cmd *cmd);
int spc_prepare_rcr(struct scsi_cmd *cmd);
void spc_exec_rcr(struct scsi_cmd *cmd);
size_t scsi_vpd_3pc(const struct scsi_lu *lu, uint8_t *b);
void scsi_xcopy_free(struct scsi_lu *lu);

/* --- spc.c --- */
/* The LU's NAA IEEE Registered Extended designator (VPD 0x83). */
void scsi_lu_naa(const struct scsi_lu *lu, uint8_t d[16]);

/* --- lun.c: registry of live LUs --- */
/* The LU whose NAA designator is naa, with a reference; NULL if none. */
struct scsi_lu *scsi_lu_find_naa(const uint8_t naa[16]);

/* --- sbc.c --- */
int sbc_prepare_rw(struct scsi_cmd *cmd);
void sbc_exec_rw(struct scsi_cmd *cmd);
int sbc_prepare_read_capacity10(struct scsi_cmd *cmd);
void sbc_exec_read_capacity10(struct scsi_cmd *cmd);
int sbc_prepare_sai(struct scsi_cmd *cmd);
void sbc_exec_sai(struct scsi_cmd *cmd);
int sbc_prepare_sync_cache(struct scsi_cmd *cmd);
void sbc_exec_sync_cache(struct scsi_cmd *cmd);
int sbc_prepare_verify(struct scsi_cmd *cmd);
void sbc_exec_verify(struct scsi_cmd *cmd);
int sbc_prepare_write_same(struct scsi_cmd *cmd);
void sbc_exec_write_same(struct scsi_cmd *cmd);
int sbc_prepare_unmap(struct scsi_cmd *cmd);
void sbc_exec_unmap(struct scsi_cmd *cmd);
/* Checks shared by the SBC files: each returns 1 (or true) with the sense
 * set when the command must stop. */
int sbc_check_lba(struct scsi_cmd *cmd, uint64_t lba, uint64_t nblk);
int sbc_check_wp(struct scsi_cmd *cmd);
void sbc_io_error(struct scsi_cmd *cmd, enum bs_op op, int res);
bool sbc_range_gone(struct scsi_cmd *cmd); /* completes cmd when true */
bool sbc_data_out_short(struct scsi_cmd *cmd);

/* --- sbc_cmp.c: COMPARE AND WRITE, ORWRITE, WRITE ATOMIC(16) --- */
/* MAXIMUM COMPARE AND WRITE LENGTH (VPD B0) in blocks. */
#define SCSI_CAW_MAX_BLOCKS 255u
/* MAXIMUM ATOMIC TRANSFER LENGTH (VPD B0) in bytes. */
#define SCSI_ATOMIC_MAX_BYTES (1u << 20)
/* One synchronous backstore I/O on the calling thread (bs_io.loop NULL);
 * returns 0 or -errno. Used under lu->cmp_lock only, for short I/Os. */
int sbc_sync_io(struct scsi_lu *lu, enum bs_op op, uint64_t off,
		uint64_t len, void *buf, bool fua);
int sbc_prepare_caw(struct scsi_cmd *cmd);
void sbc_exec_caw(struct scsi_cmd *cmd);
int sbc_prepare_orwrite(struct scsi_cmd *cmd);
void sbc_exec_orwrite(struct scsi_cmd *cmd);
int sbc_prepare_write_atomic(struct scsi_cmd *cmd);
void sbc_exec_write_atomic(struct scsi_cmd *cmd);

/* --- sbc_info.c: PRE-FETCH, READ DEFECT DATA, GET LBA STATUS --- */
int sbc_prepare_prefetch(struct scsi_cmd *cmd);
int sbc_prepare_read_defect(struct scsi_cmd *cmd);
void sbc_exec_read_defect(struct scsi_cmd *cmd);
int sbc_prepare_get_lba_status(struct scsi_cmd *cmd);
void sbc_exec_get_lba_status(struct scsi_cmd *cmd);

#endif
