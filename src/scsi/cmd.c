/* Command dispatch: the opcode table, LUN lookup, unit attention reporting
 * and completion. The per-opcode work lives in spc.c and sbc.c. */
#include <string.h>
#include <time.h>

#include "scsi/scsi_int.h"
#include "util/log.h"

/* Opcodes (SPC-4 / SBC-3). */
enum {
	OP_TEST_UNIT_READY = 0x00,
	OP_REQUEST_SENSE = 0x03,
	OP_READ_6 = 0x08,
	OP_WRITE_6 = 0x0a,
	OP_INQUIRY = 0x12,
	OP_MODE_SELECT_6 = 0x15,
	OP_RESERVE_6 = 0x16,
	OP_RELEASE_6 = 0x17,
	OP_MODE_SENSE_6 = 0x1a,
	OP_START_STOP_UNIT = 0x1b,
	OP_PREVENT_ALLOW = 0x1e,
	OP_READ_CAPACITY_10 = 0x25,
	OP_READ_10 = 0x28,
	OP_WRITE_10 = 0x2a,
	OP_WRITE_VERIFY_10 = 0x2e,
	OP_VERIFY_10 = 0x2f,
	OP_PREFETCH_10 = 0x34,
	OP_SYNC_CACHE_10 = 0x35,
	OP_READ_DEFECT_10 = 0x37,
	OP_WRITE_SAME_10 = 0x41,
	OP_UNMAP = 0x42,
	OP_MODE_SELECT_10 = 0x55,
	OP_RESERVE_10 = 0x56,
	OP_RELEASE_10 = 0x57,
	OP_MODE_SENSE_10 = 0x5a,
	OP_PR_IN = 0x5e,
	OP_PR_OUT = 0x5f,
	OP_EXTENDED_COPY = 0x83,
	OP_RECEIVE_COPY_RESULTS = 0x84,
	OP_READ_16 = 0x88,
	OP_COMPARE_AND_WRITE = 0x89,
	OP_WRITE_16 = 0x8a,
	OP_ORWRITE_16 = 0x8b,
	OP_WRITE_VERIFY_16 = 0x8e,
	OP_VERIFY_16 = 0x8f,
	OP_PREFETCH_16 = 0x90,
	OP_SYNC_CACHE_16 = 0x91,
	OP_WRITE_SAME_16 = 0x93,
	OP_WRITE_ATOMIC_16 = 0x9c,
	OP_SERVICE_ACTION_IN_16 = 0x9e,
	OP_REPORT_LUNS = 0xa0,
	OP_MAINTENANCE_IN = 0xa3,
	OP_MAINTENANCE_OUT = 0xa4,
	OP_READ_12 = 0xa8,
	OP_WRITE_12 = 0xaa,
	OP_WRITE_VERIFY_12 = 0xae,
	OP_VERIFY_12 = 0xaf,
	OP_READ_DEFECT_12 = 0xb7,
};

#define ANY (SCSI_OPF_NO_UA | SCSI_OPF_ANY_LUN)

/* Indexed by operation code; an entry without prepare is unsupported. */
static const struct scsi_op scsi_ops[256] = {
	[OP_TEST_UNIT_READY] = { 0, spc_prepare_test_unit_ready, spc_exec_good },
	[OP_REQUEST_SENSE] = { ANY, spc_prepare_request_sense, spc_exec_request_sense },
	[OP_READ_6] = { 0, sbc_prepare_rw, sbc_exec_rw },
	[OP_WRITE_6] = { 0, sbc_prepare_rw, sbc_exec_rw },
	[OP_INQUIRY] = { ANY, spc_prepare_inquiry, spc_exec_inquiry },
	[OP_MODE_SELECT_6] = { 0, spc_prepare_mode_select, spc_exec_mode_select },
	[OP_RESERVE_6] = { 0, spc_prepare_reserve, spc_exec_reserve },
	[OP_RELEASE_6] = { 0, spc_prepare_reserve, spc_exec_reserve },
	[OP_MODE_SENSE_6] = { 0, spc_prepare_mode_sense, spc_exec_mode_sense },
	[OP_START_STOP_UNIT] = { 0, spc_prepare_start_stop, spc_exec_good },
	[OP_PREVENT_ALLOW] = { 0, spc_prepare_prevent_allow, spc_exec_good },
	[OP_READ_CAPACITY_10] = { 0, sbc_prepare_read_capacity10, sbc_exec_read_capacity10 },
	[OP_READ_10] = { 0, sbc_prepare_rw, sbc_exec_rw },
	[OP_WRITE_10] = { 0, sbc_prepare_rw, sbc_exec_rw },
	[OP_WRITE_VERIFY_10] = { 0, sbc_prepare_rw, sbc_exec_rw },
	[OP_VERIFY_10] = { 0, sbc_prepare_verify, sbc_exec_verify },
	[OP_PREFETCH_10] = { 0, sbc_prepare_prefetch, spc_exec_good },
	[OP_SYNC_CACHE_10] = { 0, sbc_prepare_sync_cache, sbc_exec_sync_cache },
	[OP_READ_DEFECT_10] = { 0, sbc_prepare_read_defect, sbc_exec_read_defect },
	[OP_WRITE_SAME_10] = { 0, sbc_prepare_write_same, sbc_exec_write_same },
	[OP_UNMAP] = { 0, sbc_prepare_unmap, sbc_exec_unmap },
	[OP_MODE_SELECT_10] = { 0, spc_prepare_mode_select, spc_exec_mode_select },
	[OP_RESERVE_10] = { 0, spc_prepare_reserve, spc_exec_reserve },
	[OP_RELEASE_10] = { 0, spc_prepare_reserve, spc_exec_reserve },
	[OP_MODE_SENSE_10] = { 0, spc_prepare_mode_sense, spc_exec_mode_sense },
	[OP_PR_IN] = { 0, spc_prepare_pr_in, spc_exec_pr_in },
	[OP_PR_OUT] = { 0, spc_prepare_pr_out, spc_exec_pr_out },
	[OP_EXTENDED_COPY] = { 0, spc_prepare_xcopy, spc_exec_xcopy },
	[OP_RECEIVE_COPY_RESULTS] = { 0, spc_prepare_rcr, spc_exec_rcr },
	[OP_READ_16] = { 0, sbc_prepare_rw, sbc_exec_rw },
	[OP_COMPARE_AND_WRITE] = { 0, sbc_prepare_caw, sbc_exec_caw },
	[OP_WRITE_16] = { 0, sbc_prepare_rw, sbc_exec_rw },
	[OP_ORWRITE_16] = { 0, sbc_prepare_orwrite, sbc_exec_orwrite },
	[OP_WRITE_VERIFY_16] = { 0, sbc_prepare_rw, sbc_exec_rw },
	[OP_VERIFY_16] = { 0, sbc_prepare_verify, sbc_exec_verify },
	[OP_PREFETCH_16] = { 0, sbc_prepare_prefetch, spc_exec_good },
	[OP_SYNC_CACHE_16] = { 0, sbc_prepare_sync_cache, sbc_exec_sync_cache },
	[OP_WRITE_SAME_16] = { 0, sbc_prepare_write_same, sbc_exec_write_same },
	[OP_WRITE_ATOMIC_16] = { 0, sbc_prepare_write_atomic, sbc_exec_write_atomic },
	[OP_SERVICE_ACTION_IN_16] = { 0, sbc_prepare_sai, sbc_exec_sai },
	[OP_REPORT_LUNS] = { ANY, spc_prepare_report_luns, spc_exec_report_luns },
	[OP_MAINTENANCE_IN] = { 0, spc_prepare_maint_in, spc_exec_maint_in },
	[OP_MAINTENANCE_OUT] = { 0, spc_prepare_stpg, spc_exec_stpg },
	[OP_READ_12] = { 0, sbc_prepare_rw, sbc_exec_rw },
	[OP_WRITE_12] = { 0, sbc_prepare_rw, sbc_exec_rw },
	[OP_WRITE_VERIFY_12] = { 0, sbc_prepare_rw, sbc_exec_rw },
	[OP_VERIFY_12] = { 0, sbc_prepare_verify, sbc_exec_verify },
	[OP_READ_DEFECT_12] = { 0, sbc_prepare_read_defect, sbc_exec_read_defect },
};

/* enum scsi_ua bit -> additional sense code, same order (SAM-5 5.14). */
static const uint16_t ua_asc[] = {
	ASC_POWER_ON_RESET,
	ASC_BUS_DEVICE_RESET,
	ASC_CAPACITY_DATA_CHANGED,
	ASC_MODE_PARAMETERS_CHANGED,
	ASC_REPORTED_LUNS_CHANGED,
	ASC_COMMANDS_CLEARED_BY_ANOTHER_INITIATOR,
	ASC_RESERVATIONS_PREEMPTED,
	ASC_RESERVATIONS_RELEASED,
	ASC_REGISTRATIONS_PREEMPTED,
	ASC_ALUA_STATE_CHANGED,
};

bool scsi_op_dispatched(uint8_t op)
{
	return scsi_ops[op].prepare != NULL;
}

uint16_t scsi_ua_asc(unsigned ua_bit)
{
	for (unsigned i = 0; i < sizeof(ua_asc) / sizeof(ua_asc[0]); i++)
		if (ua_bit == 1u << i)
			return ua_asc[i];
	return ASC_POWER_ON_RESET;
}

/* Several workers may race for the same I_T_L (one session, several
 * connections): the compare-and-swap makes exactly one of them report
 * each condition. */
unsigned scsi_ua_pop(struct scsi_lun_ent *ent)
{
	unsigned cur = atomic_load(&ent->ua);

	while (cur) {
		unsigned bit = cur & (~cur + 1u); /* lowest = highest priority */

		if (atomic_compare_exchange_weak(&ent->ua, &cur, cur & ~bit))
			return bit;
	}
	return 0;
}

uint32_t scsi_max_xfer_blocks(const struct scsi_lu *lu)
{
	uint32_t cap = SCSI_MAX_XFER_BYTES / lu->attrs.block_size;
	uint32_t hw = lu->attrs.hw_max_sectors;

	return hw && hw < cap ? hw : cap;
}

/* Called from prepare, while cmd->ent is the live map entry. */
bool scsi_lun_write_protected(const struct scsi_cmd *cmd)
{
	return cmd->ent &&
	       (cmd->ent->write_protect || cmd->ent->lu->bs->readonly);
}

void scsi_data_in(struct scsi_cmd *cmd, const void *data, size_t len)
{
	size_t n = len;

	if (n > cmd->xfer_len)
		n = cmd->xfer_len;
	if (n > cmd->buf_len)
		n = cmd->buf_len;
	if (!cmd->buf)
		n = 0;
	if (n)
		memcpy(cmd->buf, data, n);
	scsi_set_good(cmd);
	cmd->data_len = (uint32_t)n;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One shard per thread (see struct scsi_lu_shard), picked at first use. */
static atomic_uint next_shard;
static _Thread_local int my_shard = -1;
static atomic_bool stats_on = true;

void scsi_stats_enable(bool on)
{
	atomic_store(&stats_on, on);
}

bool scsi_stats_enabled(void)
{
	return atomic_load_explicit(&stats_on, memory_order_relaxed);
}

static inline struct scsi_lu_shard *shard_of(struct scsi_lu_shard *arr)
{
	if (my_shard < 0)
		my_shard = (int)(atomic_fetch_add_explicit(&next_shard, 1,
				memory_order_relaxed) % SCSI_STATS_SHARDS);
	return &arr[my_shard];
}

#define ST_ADD(field, v) \
	atomic_fetch_add_explicit(&(field), (v), memory_order_relaxed)

static void shard_add(struct scsi_lu_shard *sh, const struct scsi_cmd *cmd,
		      enum scsi_io_class c, unsigned b, uint64_t us)
{
	ST_ADD(sh->cmds[c], 1);
	if (cmd->status == SAM_STAT_GOOD) {
		if (c == SCSI_IO_READ)
			ST_ADD(sh->read_bytes, cmd->data_len);
		else if (c == SCSI_IO_WRITE)
			ST_ADD(sh->write_bytes, cmd->xfer_len);
	} else {
		ST_ADD(sh->errors, 1);
		if (cmd->status == SAM_STAT_CHECK_CONDITION && cmd->sense_len > 2)
			ST_ADD(sh->sense_keys[cmd->sense[2] & 0xf], 1);
	}
	ST_ADD(sh->lat[c][b], 1);
	ST_ADD(sh->lat_sum_us[c], us);
}

/* Account a command that ran on the LU: on the target port it came
 * through (the LU's totals are the sum of its ports, scsi_lu_stats_read;
 * the LU's own shards only take a command without a port) and on the
 * nexus. Reads and writes are the commands that move blocks (nblk set by
 * the SBC prepare); the rest (INQUIRY, READ CAPACITY, SYNCHRONIZE CACHE,
 * ...) are "other". */
static void lu_account(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	enum scsi_io_class c = SCSI_IO_OTHER;
	uint64_t us = (mono_ns() - cmd->t_exec_ns) / 1000;
	/* log2 buckets: bucket i counts latencies <= 2^i us */
	unsigned b = us <= 1 ? 0 : 64u - (unsigned)__builtin_clzll(us - 1);

	if (b > SCSI_LAT_BUCKETS - 1)
		b = SCSI_LAT_BUCKETS - 1;
	if (cmd->nblk && cmd->dir == SCSI_DIR_READ)
		c = SCSI_IO_READ;
	else if (cmd->nblk && cmd->dir == SCSI_DIR_WRITE)
		c = SCSI_IO_WRITE;
	shard_add(shard_of(cmd->port ? cmd->port->stats : lu->stats), cmd, c,
		  b, us);
	shard_add(&cmd->nexus->stats, cmd, c, b, us);
}

void scsi_lu_count_tmf(struct scsi_lun_ent *ent)
{
	if (!scsi_stats_enabled())
		return;
	ST_ADD(shard_of(ent->port ? ent->port->stats : ent->lu->stats)->tmf, 1);
	if (ent->nexus)
		ST_ADD(ent->nexus->stats.tmf, 1);
}

/* Adds n shards into out. */
static void shards_read(struct scsi_lu_shard *arr, unsigned n,
			struct scsi_lu_stats *out)
{
	unsigned i, k, b;

#define LD(f) atomic_load_explicit(&(f), memory_order_relaxed)
	for (i = 0; i < n; i++) {
		struct scsi_lu_shard *sh = &arr[i];

		for (k = 0; k < SCSI_IO_N; k++) {
			out->cmds[k] += LD(sh->cmds[k]);
			out->lat_sum_us[k] += LD(sh->lat_sum_us[k]);
			for (b = 0; b < SCSI_LAT_BUCKETS; b++)
				out->lat[k][b] += LD(sh->lat[k][b]);
		}
		for (k = 0; k < 16; k++)
			out->sense_keys[k] += LD(sh->sense_keys[k]);
		out->read_bytes += LD(sh->read_bytes);
		out->write_bytes += LD(sh->write_bytes);
		out->errors += LD(sh->errors);
		out->tmf += LD(sh->tmf);
	}
#undef LD
}

void scsi_lu_stats_read(struct scsi_lu *lu, struct scsi_lu_stats *out)
{
	struct scsi_alua_port *p;

	memset(out, 0, sizeof(*out));
	shards_read(lu->stats, SCSI_STATS_SHARDS, out);
	/* every port ever made on the LU, deleted ones too: they live as
	 * long as the LU, so its totals never go back */
	pthread_mutex_lock(&lu->lock);
	list_for_each_entry(p, &lu->alua_ports, link)
		shards_read(p->stats, SCSI_STATS_SHARDS, out);
	pthread_mutex_unlock(&lu->lock);
}

void scsi_port_stats_read(struct scsi_alua_port *port,
			  struct scsi_lu_stats *out)
{
	memset(out, 0, sizeof(*out));
	shards_read(port->stats, SCSI_STATS_SHARDS, out);
}

void scsi_nexus_stats_read(struct scsi_nexus *nx, struct scsi_lu_stats *out)
{
	memset(out, 0, sizeof(*out));
	shards_read(&nx->stats, 1, out);
}

void scsi_cmd_complete(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	struct io_loop *loop = cmd->loop;

	/* Only a read that succeeded returns data. */
	if (cmd->status != SAM_STAT_GOOD || cmd->dir != SCSI_DIR_READ)
		cmd->data_len = 0;
	if (lu && cmd->t_exec_ns)
		lu_account(lu, cmd);
	cmd->lu = NULL;
	cmd->port = NULL;
	cmd->done(cmd); /* cmd may be gone after this */
	scsi_lu_put_on(lu, loop);
}

/* SAM-5 5.14 / SPC-4 7.5.2: report the highest-priority pending unit
 * attention instead of running the command, and clear it (UA_INTLCK_CTRL
 * 00b). With LUICLR (VPD 0x86) a REPORTED LUNS DATA HAS CHANGED reported on
 * one LUN is cleared on every LUN of the nexus. */
static bool report_ua(struct scsi_cmd *cmd, struct scsi_lun_ent *ent)
{
	unsigned bit = scsi_ua_pop(ent);

	if (!bit)
		return false;
	if (bit == SCSI_UA_LUNS_CHANGED)
		scsi_nexus_clear_ua(cmd->nexus, bit);
	scsi_set_sense(cmd, SK_UNIT_ATTENTION, scsi_ua_asc(bit));
	return true;
}

int scsi_cmd_prepare(struct scsi_cmd *cmd)
{
	const struct scsi_op *op = &scsi_ops[cmd->cdb[0]];
	struct scsi_lun_ent *ent;
	int rc;

	scsi_set_good(cmd);
	cmd->data_len = 0;
	cmd->dir = SCSI_DIR_NONE;
	cmd->xfer_len = 0;
	cmd->state = 0;
	cmd->lba = 0;
	cmd->nblk = 0;
	cmd->lu = NULL;
	cmd->port = NULL;
	cmd->t_exec_ns = 0;
	cmd->delay_ms = 0;
	memset(&cmd->bio, 0, sizeof(cmd->bio));

	ent = scsi_nexus_lookup(cmd->nexus, cmd->lun);
	cmd->ent = ent;
	cmd->map_gen = cmd->nexus ? cmd->nexus->map_gen : 0;
	if (ent && ent->port)
		/* a delayed ALUA transition that is due ends first, so its
		 * unit attention is the one this command reports */
		scsi_alua_due(ent);
	if (!ent) {
		/* SPC-4 6.4.1 (INQUIRY PQ 011b), 6.33 (REPORT LUNS), 6.39
		 * (REQUEST SENSE) work on any LUN; the rest are refused. */
		if (!(op->flags & SCSI_OPF_ANY_LUN)) {
			scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
				       ASC_LUN_NOT_SUPPORTED);
			return 1;
		}
	} else if (!(op->flags & SCSI_OPF_NO_UA) && report_ua(cmd, ent)) {
		return 1;
	} else if (ent->port && scsi_alua_check(cmd)) {
		/* SPC-4 5.16.2.4: the port's access state refuses it */
		return 1;
	}
	if (!op->prepare) {
		log_debug("scsi: unsupported opcode 0x%02x", cmd->cdb[0]);
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
		return 1;
	}
	/* prepare functions use cmd->lu. No reference is taken yet: a
	 * transport may drop a prepared command without exec (task aborted
	 * while its Data-Out was arriving), and it must leak nothing. */
	cmd->lu = ent ? ent->lu : NULL;
	/* SPC-4 5.12.1: one atomic load unless someone uses reservations. */
	if (cmd->lu && atomic_load_explicit(&cmd->lu->reserved,
					    memory_order_acquire) &&
	    scsi_pr_check(cmd)) {
		cmd->lu = NULL;
		return 1;
	}
	rc = op->prepare(cmd);
	if (rc == 0 && cmd->xfer_len > SCSI_MAX_XFER_BYTES) {
		/* Each prepare checks its own length fields; this is the net
		 * under them. */
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
		rc = 1;
	}
	if (rc) {
		cmd->lu = NULL;
		cmd->xfer_len = 0;
		cmd->data_len = 0;
		return 1;
	}
	return 0;
}

void scsi_cmd_exec(struct scsi_cmd *cmd)
{
	if (cmd->lu) {
		/* The map may have changed while Data-Out arrived: then find
		 * the LUN again (cmd->ent may point into a freed map). Hold
		 * the LU until the command completes. The block commands
		 * check their LBA range again for the same reason. */
		struct scsi_lun_ent *ent = cmd->ent;

		if (!ent || cmd->map_gen != cmd->nexus->map_gen)
			ent = scsi_nexus_lookup(cmd->nexus, cmd->lun);
		if (!ent || ent->lu != cmd->lu) {
			cmd->ent = NULL;
			cmd->lu = NULL;
			scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
				       ASC_LUN_NOT_SUPPORTED);
			scsi_cmd_complete(cmd);
			return;
		}
		cmd->ent = ent;
		cmd->port = ent->port;
		scsi_lu_get(cmd->lu);
		/* 0: not timed (statistics off), so not accounted */
		cmd->t_exec_ns = scsi_stats_enabled() ? mono_ns() | 1 : 0;
	}
	scsi_ops[cmd->cdb[0]].exec(cmd);
}
