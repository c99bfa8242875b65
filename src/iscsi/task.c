/* SCSI over iSCSI (RFC 7143 §11.3-11.8): SCSI Command, immediate and
 * unsolicited data, R2T / Data-Out, Data-In with the status in the last
 * Data-In, SCSI Response with sense and residual counts. */
#include "iscsi/conn.h"
#include "iscsi/mgmt.h"

#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define TASK_BUF_ALIGN 4096

static unsigned itt_hash(uint32_t itt)
{
	return (itt ^ (itt >> 8) ^ (itt >> 16)) & (ISCSI_TASK_HASH - 1);
}

struct iscsi_task *iscsi_task_find(struct iscsi_session *s, uint32_t itt)
{
	struct iscsi_task *t;

	list_for_each_entry(t, &s->task_hash[itt_hash(itt)], hash_link)
		if (t->itt == itt)
			return t;
	return NULL;
}

/* Tasks and their buffers are reused on the worker that freed them: a
 * command then costs no malloc, no page faults and no munmap (whose TLB
 * shootdowns interrupt the other workers). Bounded so an idle daemon gives
 * the memory back (see iscsi_task_cache_drain). */
#define TASK_CACHE_MAX 128
#define TASK_CACHE_BUF_MAX (16u << 20)   /* larger buffers are not kept */
#define TASK_CACHE_BYTES_MAX (64u << 20) /* per worker, buffers included */

static _Thread_local struct iscsi_task *task_cache;
static _Thread_local unsigned task_cache_n;
static _Thread_local size_t task_cache_bytes;

void iscsi_task_cache_drain(void)
{
	while (task_cache) {
		struct iscsi_task *t = task_cache;

		task_cache = *(struct iscsi_task **)(void *)t;
		free(t->buf);
		free(t);
	}
	task_cache_n = 0;
	task_cache_bytes = 0;
	iscsi_txe_cache_drain();
	/* an idle worker gives its memory back to the system, not just to
	 * malloc's free lists */
	malloc_trim(0);
}

static struct iscsi_task *task_alloc(void)
{
	struct iscsi_task *t = task_cache;
	uint8_t *buf;
	uint32_t cap;

	if (!t)
		return calloc(1, sizeof(*t));
	task_cache = *(struct iscsi_task **)(void *)t;
	task_cache_n--;
	task_cache_bytes -= t->buf_cap;
	buf = t->buf;
	cap = t->buf_cap;
	memset(t, 0, sizeof(*t));
	t->buf = buf;
	t->buf_cap = cap;
	return t;
}

static void task_release(struct iscsi_task *t)
{
	/* 1 MiB transfers are common (sequential I/O, qemu-img): keeping
	 * their buffers saves a map, a fault per page and an munmap (with its
	 * TLB shootdown) per command */
	if (task_cache_n >= TASK_CACHE_MAX || t->buf_cap > TASK_CACHE_BUF_MAX ||
	    task_cache_bytes + t->buf_cap > TASK_CACHE_BYTES_MAX) {
		free(t->buf);
		free(t);
		return;
	}
	task_cache_bytes += t->buf_cap;
	/* the first word of a cached task links the cache */
	*(struct iscsi_task **)(void *)t = task_cache;
	task_cache = t;
	task_cache_n++;
}

/* Tasks alive in the whole daemon (created, not yet released): the stats
 * method shows it so tests can see that killed initiators leak none. */
static atomic_int task_count;

int iscsi_task_count(void)
{
	return atomic_load(&task_count);
}

static void task_delayed(struct io_timer *tm)
{
	struct iscsi_task *t = container_of(tm, struct iscsi_task, delay_timer);

	scsi_cmd_exec(&t->cmd);
}

static struct iscsi_task *task_new(struct iscsi_conn *c, uint32_t itt)
{
	struct iscsi_task *t = task_alloc();
	struct iscsi_session *s = c->sess;

	if (!t)
		return NULL;
	atomic_fetch_add(&task_count, 1);
	t->conn = c;
	t->refs = 1;
	t->itt = itt;
	io_timer_init(&t->delay_timer, task_delayed);
	iscsi_conn_get(c);
	list_add_tail(&t->link, &s->tasks);
	list_add_tail(&t->hash_link, &s->task_hash[itt_hash(itt)]);
	s->active_tasks++;
	return t;
}

void iscsi_task_put(struct iscsi_task *t)
{
	struct iscsi_conn *c;

	if (--t->refs > 0)
		return;
	c = t->conn;
	if (t->buf_charged)
		c->buf_bytes -= t->buf_cap;
	task_release(t);
	atomic_fetch_sub(&task_count, 1);
	iscsi_conn_put(c);
}

/* The task leaves the session's tables: its CmdSN slot opens again (so
 * the response that follows already advertises the larger window). */
static void task_unlink(struct iscsi_task *t)
{
	list_del(&t->link);
	list_del(&t->hash_link);
	t->conn->sess->active_tasks--;
	t->state = TASK_DONE;
	/* a Logout waiting for this task (an aborted one sends nothing that
	 * would flush the queue otherwise) */
	if (t->conn->logout_rsp)
		iscsi_conn_kick(t->conn);
}

static void task_finish(struct iscsi_task *t)
{
	if (!list_linked(&t->link))
		return;
	task_unlink(t);
	iscsi_task_put(t);
}

void iscsi_task_abort(struct iscsi_task *t)
{
	t->aborted = true;
	if (t->state == TASK_EXEC) {
		/* the backstore still owns the buffer: drop the task when it
		 * completes, but let no Data-Out find it any more */
		list_del(&t->hash_link);
		return;
	}
	task_finish(t);
}

/* RFC 4544 iscsiSsnRspPDUs / TxDataOctets / RxDataOctets (one writer:
 * this worker; relaxed atomics for the control thread's reader). */
static void count_response(struct iscsi_sess_stats *st,
			   const struct iscsi_task *t)
{
	atomic_fetch_add_explicit(&st->rsp_pdus, 1, memory_order_relaxed);
	if (t->cmd.dir == SCSI_DIR_WRITE)
		atomic_fetch_add_explicit(&st->rx_data_octets, t->data_got,
					  memory_order_relaxed);
	if ((t->flags & ISCSI_FLAG_CMD_READ) && t->cmd.data_len && t->edtl)
		atomic_fetch_add_explicit(&st->tx_data_octets,
			t->cmd.data_len < t->edtl ? t->cmd.data_len : t->edtl,
			memory_order_relaxed);
}

static void task_complete(struct iscsi_task *t);

void iscsi_task_abort_tas(struct iscsi_task *t, bool tas)
{
	if (!tas) {
		iscsi_task_abort(t);
		return;
	}
	t->tas = true;
	if (t->state == TASK_EXEC) {
		/* answered when the backstore is done with the buffer; no
		 * Data-Out may reach it any more */
		list_del(&t->hash_link);
		return;
	}
	task_complete(t);
}

void iscsi_session_abort_tasks(struct iscsi_session *s, bool all, uint64_t lun)
{
	struct iscsi_task *t, *n;

	list_for_each_entry_safe(t, n, &s->tasks, link)
		if (!t->aborted && (all || t->cmd.lun == lun))
			iscsi_task_abort(t);
}

/* Residual count and O/U flags (§11.4.5.2). */
static uint32_t residual(const struct iscsi_task *t, uint8_t *flags)
{
	uint32_t want;

	if (t->flags & ISCSI_FLAG_CMD_READ)
		want = t->cmd.data_len;
	else if ((t->flags & ISCSI_FLAG_CMD_WRITE) && !t->final_status)
		want = t->cmd.xfer_len;
	else
		want = 0;
	if (want > t->edtl) {
		*flags |= ISCSI_FLAG_RSP_OVERFLOW;
		return want - t->edtl;
	}
	if (want < t->edtl) {
		*flags |= ISCSI_FLAG_RSP_UNDERFLOW;
		return t->edtl - want;
	}
	return 0;
}

static void send_response(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;
	struct scsi_cmd *cmd = &t->cmd;
	uint32_t dlen = cmd->sense_len ? 2u + cmd->sense_len : 0;
	struct iscsi_txe *e = iscsi_txe_new(dlen);
	uint8_t *b;

	if (!e) {
		iscsi_conn_close(c, "out of memory");
		return;
	}
	b = e->hdr;
	b[0] = ISCSI_OP_SCSI_RSP;
	b[1] = ISCSI_FLAG_FINAL;
	b[2] = 0; /* command completed at target */
	b[3] = cmd->status;
	put_be32(b + BHS_ITT, t->itt);
	put_be32(b + BHS_DATASN, t->datasn); /* ExpDataSN: Data-Ins sent */
	put_be32(b + BHS_RESIDUAL, residual(t, &b[1]));
	if (dlen) {
		uint8_t *d = (uint8_t *)(e + 1);

		/* §11.4.7: SenseLength, then the sense data */
		put_be16(d, cmd->sense_len);
		memcpy(d + 2, cmd->sense, cmd->sense_len);
	}
	iscsi_conn_queue(c, e, true);
}

/* Data-In PDUs of at most MaxRecvDataSegmentLength (the initiator's), F at
 * every MaxBurstLength boundary; the status rides in the last one when
 * there is no sense data (§11.7.4). */
static void send_data_in(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;
	struct scsi_cmd *cmd = &t->cmd;
	uint32_t total = cmd->data_len < t->edtl ? cmd->data_len : t->edtl;
	uint32_t burst = c->sess->params.max_burst ? c->sess->params.max_burst :
						     UINT32_MAX;
	bool status_in_data = cmd->sense_len == 0;
	uint32_t off = 0;

	while (off < total) {
		uint32_t n = total - off, in_burst = burst - off % burst;
		struct iscsi_txe *e;
		uint8_t *b;
		bool last;

		if (n > c->max_xmit_dsl && c->max_xmit_dsl >= 512)
			n = c->max_xmit_dsl;
		if (n > in_burst)
			n = in_burst;
		last = off + n == total;
		e = iscsi_txe_new(0);
		if (!e) {
			iscsi_conn_close(c, "out of memory");
			return;
		}
		b = e->hdr;
		b[0] = ISCSI_OP_DATA_IN;
		if (last || n == in_burst)
			b[1] |= ISCSI_FLAG_FINAL;
		put_be32(b + BHS_ITT, t->itt);
		put_be32(b + BHS_TTT, ISCSI_RSVD_TAG);
		put_be32(b + BHS_DATASN, t->datasn++);
		put_be32(b + BHS_BUFOFF, off);
		if (last && status_in_data) {
			b[1] |= ISCSI_FLAG_DATA_STATUS | ISCSI_FLAG_FINAL;
			b[3] = cmd->status;
			put_be32(b + BHS_RESIDUAL, residual(t, &b[1]));
		}
		e->data = t->buf + off;
		e->dlen = n;
		e->task = t;
		t->refs++;
		iscsi_conn_queue(c, e, last && status_in_data);
		off += n;
	}
	if (!total || !status_in_data)
		send_response(t);
}

static void task_complete(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;

	if (!list_linked(&t->link))
		return;
	task_unlink(t);
	if (t->tas) {
		/* SAM-5 §5.6: TASK ABORTED, no data, no sense */
		t->cmd.status = SAM_STAT_TASK_ABORTED;
		t->cmd.sense_len = 0;
		t->cmd.data_len = 0;
		t->flags &= (uint8_t)~ISCSI_FLAG_CMD_READ;
	}
	if (!t->aborted && !c->closing) {
		if (scsi_stats_enabled())
			count_response(&c->sess->st, t);
		if ((t->flags & ISCSI_FLAG_CMD_READ) && t->cmd.data_len &&
		    t->edtl) {
			send_data_in(t);
		} else {
			send_response(t);
		}
	}
	iscsi_task_put(t);
}

static void scsi_done(struct scsi_cmd *cmd)
{
	struct iscsi_task *t = container_of(cmd, struct iscsi_task, cmd);

	task_complete(t);
}

static void task_exec(struct iscsi_task *t)
{
	t->state = TASK_EXEC;
	t->cmd.buf = t->buf;
	if (t->cmd.dir == SCSI_DIR_WRITE)
		t->cmd.buf_len = t->data_got < t->data_want ? t->data_got :
							      t->data_want;
	else
		t->cmd.buf_len = t->buf_cap;
	if (t->cmd.delay_ms) {
		/* the SCSI layer asked for a pause (ALUA non-optimized
		 * delay): the task is in the SCSI core's hands already
		 * (TASK_EXEC), so an abort or a logout waits for it like for
		 * any command in the backstore, and the worker serves on */
		io_timer_arm(t->cmd.loop, &t->delay_timer, t->cmd.delay_ms);
		return;
	}
	scsi_cmd_exec(&t->cmd);
}

/* Solicit what is still missing, MaxOutstandingR2T at a time (we use at
 * most ISCSI_MAX_R2T), each at most MaxBurstLength (§11.8). Each R2T is its
 * own Data-Out sequence with DataSN counting from 0 (§11.7.5). */
static void send_r2ts(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;
	struct iscsi_session *s = c->sess;
	uint32_t max = s->params.max_outstanding_r2t;
	bool sent = false;

	if (max > ISCSI_MAX_R2T)
		max = ISCSI_MAX_R2T;
	while (t->r2t_outstanding < max && t->r2t_next < t->data_want) {
		uint32_t len = t->data_want - t->r2t_next;
		uint8_t b[ISCSI_BHS_LEN] = { 0 };
		unsigned i;

		for (i = 0; i < ISCSI_MAX_R2T && t->r2t[i].len; i++)
			;
		if (len > s->params.max_burst)
			len = s->params.max_burst;
		t->r2t[i].off = t->r2t_next;
		t->r2t[i].len = len;
		t->r2t[i].got = 0;
		t->r2t[i].datasn = 0;
		b[0] = ISCSI_OP_R2T;
		b[1] = ISCSI_FLAG_FINAL;
		scsi_lun_encode(t->cmd.lun, b + BHS_LUN);
		put_be32(b + BHS_ITT, t->itt);
		put_be32(b + BHS_TTT, t->ttt);
		put_be32(b + BHS_DATASN, t->r2tsn++);
		put_be32(b + BHS_BUFOFF, t->r2t_next);
		put_be32(b + BHS_RESIDUAL, len);
		iscsi_conn_send_simple(c, b, NULL, 0, false);
		t->r2t_next += len;
		t->r2t_outstanding++;
		sent = true;
	}
	/* The initiator is idle on this command until the R2T reaches it:
	 * send it now instead of after the rest of this round's input (a
	 * round may receive several MiB of other commands' data). */
	if (sent)
		iscsi_conn_flush_soon(c);
}

/* Called as data arrives: once the unsolicited part is in, either answer
 * the status prepare already decided, run the command when everything is
 * in, or solicit the rest. */
static void task_data_progress(struct iscsi_task *t)
{
	if (t->unsol_got < t->unsol_end) {
		if (!t->final_status)
			send_r2ts(t);
		return;
	}
	if (t->final_status) {
		task_complete(t);
		return;
	}
	if (t->data_got >= t->data_want) {
		task_exec(t);
		return;
	}
	send_r2ts(t);
}

void iscsi_scsi_cmd_rx_hdr(struct iscsi_conn *c)
{
	const uint8_t *h = c->hdr;
	struct iscsi_session *s = c->sess;
	struct iscsi_sess_params *sp = &s->params;
	bool immediate = h[0] & ISCSI_OP_IMMEDIATE;
	uint32_t itt = get_be32(h + BHS_ITT);
	uint32_t edtl = get_be32(h + BHS_EDTL);
	struct iscsi_task *t;
	uint32_t unsol, cap;

	c->rx_discard = true; /* unless a task takes the data */
	if (s->discovery) {
		c->rx_task = NULL;
		return; /* rejected when the PDU is complete */
	}
	if (iscsi_session_check_cmdsn(s, get_be32(h + BHS_CMDSN), immediate))
		return;
	if (immediate && s->active_tasks >= s->cmdsn_depth) {
		/* Immediate commands bypass the CmdSN window; without this an
		 * initiator could queue tasks (and their buffers) without
		 * bound. §11.17.1: Reject 0x06, too many immediate commands. */
		iscsi_conn_reject(c, ISCSI_REJECT_IMM_CMD, h);
		return;
	}
	if (bhs_ahslen(h)) {
		/* The AHS of a SCSI Command (§11.2.2) carry a CDB longer than
		 * 16 bytes (type 1) or a bidirectional read length (type 2);
		 * we support neither. Entries running past TotalAHSLength make
		 * the header malformed. Both are answered with a Reject. */
		uint32_t total = bhs_ahslen(h), off = 0;
		uint8_t reason = ISCSI_REJECT_CMD_NOT_SUPPORTED;

		/* each entry: AHSLength (2), AHSType (1), then AHSLength
		 * bytes counted from byte 3, padded to 4 (§11.2.2.1) */
		while (off < total) {
			uint32_t len = get_be16(h + ISCSI_BHS_LEN + off);
			uint32_t ent = (3 + len + 3) & ~3u;

			if (ent > total - off) {
				reason = ISCSI_REJECT_PROTOCOL;
				break;
			}
			off += ent;
		}
		iscsi_conn_log(c, UT_LOG_WARN, "SCSI command with %s AHS",
			       reason == ISCSI_REJECT_PROTOCOL ? "malformed" :
			       "unsupported");
		iscsi_conn_reject(c, reason, h);
		return;
	}
	/* The two refusals below answer with a Reject (§11.17.1) rather than
	 * silence: the CmdSN is spent, and an initiator must learn that this
	 * command will never get a response. Its data is dropped. */
	if (iscsi_task_find(s, itt)) {
		iscsi_conn_log(c, UT_LOG_WARN, "ITT 0x%08x already in use", itt);
		iscsi_conn_reject(c, ISCSI_REJECT_TASK_IN_PROGRESS, h);
		return;
	}
	if (c->dlen && (!(h[1] & ISCSI_FLAG_CMD_WRITE) || !sp->immediate_data ||
			c->dlen > sp->first_burst || c->dlen > edtl)) {
		/* §11.3: immediate data only with W, ImmediateData=Yes, and
		 * within FirstBurstLength and the EDTL */
		iscsi_conn_reject(c, ISCSI_REJECT_PROTOCOL, h);
		return;
	}
	t = task_new(c, itt);
	if (!t) {
		iscsi_conn_close(c, "out of memory");
		return;
	}
	if (scsi_stats_enabled())
		atomic_fetch_add_explicit(&s->st.cmd_pdus, 1,
					  memory_order_relaxed);
	t->edtl = edtl;
	t->flags = h[1];
	t->immediate = immediate;
	t->cmdsn = get_be32(h + BHS_CMDSN);
	t->ttt = ++s->next_ttt & 0x7fffffffu;
	t->state = TASK_NEW;
	t->cmd.nexus = &s->nexus;
	t->cmd.lun = scsi_lun_decode(h + BHS_LUN);
	memcpy(t->cmd.cdb, h + 32, SCSI_CDB_MAX);
	t->cmd.edtl = edtl;
	t->cmd.loop = c->loop;
	t->cmd.done = scsi_done;
	c->rx_task = t;

	/* unsolicited data: immediate, plus Data-Out up to FirstBurstLength
	 * when InitialR2T=No (§13.10-13.11) */
	unsol = 0;
	if (h[1] & ISCSI_FLAG_CMD_WRITE) {
		if (!(h[1] & ISCSI_FLAG_FINAL) && !sp->initial_r2t)
			unsol = edtl < sp->first_burst ? edtl : sp->first_burst;
		else
			unsol = c->dlen;
	}
	t->unsol_end = unsol;

	if (scsi_cmd_prepare(&t->cmd)) {
		t->final_status = true;
		return; /* data, if any, is discarded */
	}
	if (t->cmd.dir == SCSI_DIR_WRITE) {
		t->data_want = edtl < t->cmd.xfer_len ? edtl : t->cmd.xfer_len;
		if (!(h[1] & ISCSI_FLAG_CMD_WRITE))
			t->data_want = 0;
	}
	cap = t->cmd.xfer_len > unsol ? t->cmd.xfer_len : unsol;
	if (cap) {
		/* 4096-aligned: block backstores use O_DIRECT */
		if (c->buf_bytes + (cap > t->buf_cap ? cap : t->buf_cap) >
		    iscsi_limits.max_connection_buffers) {
			/* SAM-5 §5.3: TASK SET FULL — the initiator retries
			 * once earlier commands (and their buffers) are done */
			t->final_status = true;
			t->cmd.status = SAM_STAT_TASK_SET_FULL;
			t->cmd.sense_len = 0;
			return;
		}
		if (cap > t->buf_cap) {
			free(t->buf);
			t->buf = NULL;
			t->buf_cap = 0;
			if (posix_memalign((void **)&t->buf, TASK_BUF_ALIGN, cap)) {
				t->buf = NULL;
				iscsi_conn_close(c, "out of memory");
				return;
			}
			t->buf_cap = cap;
		}
		c->buf_bytes += t->buf_cap;
		t->buf_charged = true;
	}
	t->r2t_next = unsol < t->data_want ? unsol : t->data_want;
	if (c->dlen) {
		c->rx_dst = t->buf;
		c->rx_discard = false;
	}
}

void iscsi_scsi_cmd_rx_done(struct iscsi_conn *c)
{
	struct iscsi_task *t = c->rx_task;

	if (c->sess->discovery) {
		iscsi_conn_reject(c, ISCSI_REJECT_PROTOCOL, c->hdr);
		return;
	}
	if (!t)
		return; /* ignored (CmdSN window) or invalid */
	c->rx_task = NULL;
	t->data_got = c->dlen;
	t->unsol_got = c->dlen;
	if (t->cmd.dir != SCSI_DIR_WRITE && !t->final_status) {
		task_exec(t);
		return;
	}
	t->state = TASK_DATA_OUT;
	task_data_progress(t);
}

/* A Data-Out that breaks the sequence rules (DataSN, offsets; §11.7) cannot
 * be recovered within the command at ErrorRecoveryLevel 0: the command ends
 * with CHECK CONDITION, ABORTED COMMAND (SPC-4: 4B/00 DATA PHASE ERROR,
 * 4B/05 DATA OFFSET ERROR) and the rest of its data is dropped; the
 * session carries on. */
static void data_out_seq_error(struct iscsi_conn *c, struct iscsi_task *t,
			       uint16_t asc, const char *what)
{
	iscsi_conn_log(c, UT_LOG_WARN, "Data-Out for ITT 0x%08x: %s", t->itt,
		       what);
	scsi_set_sense(&t->cmd, SK_ABORTED_COMMAND, asc);
	t->final_status = true;
	t->cmd.data_len = 0;
	c->rx_quiet = true;
	task_complete(t);
}

void iscsi_data_out_rx_hdr(struct iscsi_conn *c)
{
	const uint8_t *h = c->hdr;
	uint32_t itt = get_be32(h + BHS_ITT), ttt = get_be32(h + BHS_TTT);
	uint32_t off = get_be32(h + BHS_BUFOFF);
	uint32_t datasn = get_be32(h + BHS_DATASN);
	struct iscsi_task *t = iscsi_task_find(c->sess, itt);
	unsigned i;

	c->rx_discard = true;
	c->rx_task = NULL;
	if (!t || (t->state != TASK_DATA_OUT && t->state != TASK_NEW))
		return;
	if (ttt == ISCSI_RSVD_TAG) {
		if ((uint64_t)off + c->dlen > t->unsol_end)
			return;
		if (datasn != t->unsol_datasn) {
			data_out_seq_error(c, t, 0x4b00, "unsolicited DataSN out of order");
			return;
		}
		if (off != t->unsol_got) {
			data_out_seq_error(c, t, 0x4b05, "unsolicited offset out of order");
			return;
		}
		t->unsol_datasn++;
	} else {
		if (ttt != t->ttt)
			return;
		for (i = 0; i < ISCSI_MAX_R2T; i++)
			if (t->r2t[i].len && off >= t->r2t[i].off &&
			    off < t->r2t[i].off + t->r2t[i].len)
				break;
		if (i == ISCSI_MAX_R2T ||
		    (uint64_t)off + c->dlen > t->r2t[i].off + t->r2t[i].len)
			return;
		if (datasn != t->r2t[i].datasn) {
			data_out_seq_error(c, t, 0x4b00, "DataSN out of order");
			return;
		}
		if (off != t->r2t[i].off + t->r2t[i].got) {
			data_out_seq_error(c, t, 0x4b05, "offset out of order");
			return;
		}
		t->r2t[i].datasn++;
		t->r2t[i].got += c->dlen;
	}
	c->rx_task = t;
	if (!t->final_status && t->buf && (uint64_t)off + c->dlen <= t->buf_cap) {
		c->rx_dst = t->buf + off;
		c->rx_discard = false;
	}
}

void iscsi_data_out_rx_done(struct iscsi_conn *c)
{
	const uint8_t *h = c->hdr;
	struct iscsi_task *t = c->rx_task;

	if (!t) {
		/* unknown ITT, wrong TTT or data past what was asked for
		 * (§11.7): reject the PDU, unless it trails a command that
		 * already ended on a sequence error */
		if (!c->rx_quiet)
			iscsi_conn_reject(c, ISCSI_REJECT_INVALID_PDU_FIELD, h);
		return;
	}
	c->rx_task = NULL;
	t->data_got += c->dlen;
	if (get_be32(h + BHS_TTT) == ISCSI_RSVD_TAG) {
		t->unsol_got += c->dlen;
		/* F ends the unsolicited sequence, even if short */
		if (h[1] & ISCSI_FLAG_FINAL)
			t->unsol_end = t->unsol_got;
	} else {
		unsigned i;

		/* the sequence of an R2T ends when all it asked for is in
		 * (the F bit marks the same point) */
		for (i = 0; i < ISCSI_MAX_R2T; i++)
			if (t->r2t[i].len && t->r2t[i].got == t->r2t[i].len) {
				t->r2t[i].len = 0;
				t->r2t_outstanding--;
			}
	}
	task_data_progress(t);
}
