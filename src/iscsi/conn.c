/* iSCSI connection: the resumable receive state machine (BHS -> AHS and
 * header digest -> data segment -> padding and data digest, RFC 7143 §11),
 * the batched send queue, PDU dispatch, NOP-In pings and connection
 * teardown. A connection lives on one worker for life. */
#include "iscsi/conn.h"
#include "iscsi/mgmt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>
#include <netinet/tcp.h>

#include "iscsi/digest.h"
#include "util/log.h"

#define RX_BUDGET 64            /* PDUs handled per readiness event */
#define RX_DIRECT_MIN 16384     /* recv straight into the task buffer */
#define TX_IOV_MAX 192
#define LOGIN_TIMEOUT_MS 15000  /* LIO's login_timeout default */
#define NOP_CHECK_MS 1000

/* The input events a connection waits for: none once its final answer is
 * queued (rx_stop). */
static uint32_t rx_events(const struct iscsi_conn *c)
{
	return c->rx_stop ? 0 : EPOLLIN;
}

static void conn_flush(struct iscsi_conn *c);
static void conn_kick(struct iscsi_conn *c);
#define conn_put iscsi_conn_put

static _Thread_local struct list_head worker_conns;
static atomic_int conn_count;

int iscsi_conn_count(void)
{
	return atomic_load(&conn_count);
}

void iscsi_conn_close_all(void)
{
	struct iscsi_conn *c, *n;

	if (!worker_conns.next)
		return;
	list_for_each_entry_safe(c, n, &worker_conns, all_link)
		iscsi_conn_close(c, "target shutting down");
}

void iscsi_conn_foreach(void (*fn)(struct iscsi_conn *c, void *arg), void *arg)
{
	struct iscsi_conn *c, *n;

	if (!worker_conns.next)
		return;
	list_for_each_entry_safe(c, n, &worker_conns, all_link)
		fn(c, arg);
}

/* Graceful stop (SIGTERM), RFC 7143 §11.9: each logged-in initiator gets
 * an Asynchronous Message asking it to log out (AsyncEvent 1) within
 * ISCSI_LOGOUT_WAIT_S seconds. The connection keeps serving meanwhile, so the
 * commands already on the wire are answered; it ends with the initiator's
 * Logout, or when the daemon's grace period runs out. A connection still
 * logging in has nothing to lose and closes at once. */
static void drain_timeout(struct io_timer *t)
{
	struct iscsi_conn *c = container_of(t, struct iscsi_conn, drain_timer);

	iscsi_conn_close(c, "no logout after the target asked for one");
}

void iscsi_conn_request_logout(struct iscsi_conn *c, unsigned secs,
			       const char *why)
{
	uint8_t b[ISCSI_BHS_LEN] = { 0 };

	if (c->closing || c->draining)
		return;
	if (c->state != CONN_FFP || !c->sess) {
		iscsi_conn_close(c, why);
		return;
	}
	c->draining = true;
	b[0] = ISCSI_OP_ASYNC_MSG;
	b[1] = ISCSI_FLAG_FINAL;
	put_be32(b + BHS_ITT, ISCSI_RSVD_TAG);
	b[36] = 1; /* AsyncEvent: the target requests a logout */
	put_be16(b + BHS_ASYNC_P1, 0); /* Parameter1: reserved for event 1 */
	put_be16(b + BHS_ASYNC_P3, (uint16_t)secs); /* Parameter3: time to logout */
	iscsi_conn_send_simple(c, b, NULL, 0, true);
	iscsi_conn_log(c, UT_LOG_INFO, "%s: logout requested", why);
	/* the bound: whatever the initiator does, the connection ends */
	io_timer_arm(c->loop, &c->drain_timer, (uint64_t)(secs + 1) * 1000);
}

void iscsi_conn_drain_all(void)
{
	struct iscsi_conn *c, *n;

	if (!worker_conns.next)
		return;
	list_for_each_entry_safe(c, n, &worker_conns, all_link)
		iscsi_conn_request_logout(c, ISCSI_LOGOUT_WAIT_S,
					  "target shutting down");
}

void iscsi_conn_log(struct iscsi_conn *c, int lvl, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	if ((enum ut_log_level)lvl > ut_log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->sess && c->sess->initiator_name[0]) {
		const uint8_t *i = c->sess->isid;

		ut_log(lvl, "%s isid 0x%02x%02x%02x%02x%02x%02x cid %u (%s): %s",
		       c->sess->initiator_name, i[0], i[1], i[2], i[3], i[4],
		       i[5], c->cid, c->peer, msg);
	} else {
		ut_log(lvl, "connection from %s: %s", c->peer, msg);
	}
}

/* ---- send side ---- */

/* Entries without inline data (every SCSI Response without sense, every
 * Data-In) are reused on the worker that freed them, like tasks: no malloc
 * and free per PDU. Bounded; emptied when the worker goes idle. */
#define TXE_CACHE_MAX 256

static _Thread_local struct iscsi_txe *txe_cache;
static _Thread_local unsigned txe_cache_n;

void iscsi_txe_cache_drain(void)
{
	while (txe_cache) {
		struct iscsi_txe *e = txe_cache;

		txe_cache = (struct iscsi_txe *)(void *)e->link.next;
		free(e);
	}
	txe_cache_n = 0;
}

struct iscsi_txe *iscsi_txe_new(uint32_t dlen)
{
	struct iscsi_txe *e;

	if (!dlen && txe_cache) {
		e = txe_cache;
		txe_cache = (struct iscsi_txe *)(void *)e->link.next;
		txe_cache_n--;
		memset(e, 0, sizeof(*e));
	} else {
		e = calloc(1, sizeof(*e) + dlen);
		if (!e)
			return NULL;
	}
	list_init(&e->link);
	e->bare = !dlen;
	if (dlen) {
		e->data = (const uint8_t *)(e + 1);
		e->dlen = dlen;
	}
	return e;
}

static void txe_free(struct iscsi_txe *e)
{
	if (e->task)
		iscsi_task_put(e->task);
	if (e->bare && txe_cache_n < TXE_CACHE_MAX) {
		/* the link field chains the cache */
		e->link.next = (struct list_head *)(void *)txe_cache;
		txe_cache = e;
		txe_cache_n++;
		return;
	}
	free(e);
}

static void flush_deferred(struct io_deferred *d)
{
	struct iscsi_conn *c = container_of(d, struct iscsi_conn, flush_d);

	c->flush_queued = false;
	if (c->logout_rsp && !c->closing && c->sess->active_tasks == 0) {
		/* the last command before the Logout has been answered (its
		 * response was queued in this loop iteration, before us) */
		struct iscsi_txe *e = c->logout_rsp;

		c->logout_rsp = NULL;
		iscsi_conn_queue(c, e, true);
	}
	conn_flush(c);
	conn_put(c);
}

/* Sending happens once per loop iteration for everything queued during it:
 * one writev carries many PDUs (docs/architecture.md, the command path: one writev per loop iteration). */
void iscsi_conn_kick(struct iscsi_conn *c)
{
	conn_kick(c);
}

void iscsi_conn_flush_soon(struct iscsi_conn *c)
{
	c->tx_urgent = true;
}

static void conn_kick(struct iscsi_conn *c)
{
	if (c->flush_queued || c->want_out)
		return;
	c->flush_queued = true;
	c->refs++;
	io_loop_defer(c->loop, &c->flush_d);
}

void iscsi_conn_queue(struct iscsi_conn *c, struct iscsi_txe *e,
		      bool advance_statsn)
{
	uint8_t *bhs = e->hdr;
	uint32_t pad = pad4(e->dlen);

	if (c->closing) {
		txe_free(e);
		return;
	}
	put_be24(bhs + BHS_DLEN, e->dlen);
	if (c->state != CONN_LOGIN || bhs_opcode(bhs) != ISCSI_OP_LOGIN_RSP) {
		put_be32(bhs + BHS_CMDSN, c->stat_sn);
		if (advance_statsn)
			c->stat_sn++;
		if (c->sess)
			iscsi_session_fill_sn(c->sess, bhs);
	}
	e->hlen = ISCSI_BHS_LEN;
	if (c->hdigest) {
		iscsi_digest_put(e->hdr + ISCSI_BHS_LEN,
				 iscsi_crc32c(e->hdr, ISCSI_BHS_LEN));
		e->hlen += ISCSI_DIGEST_LEN;
	}
	memset(e->trailer, 0, sizeof(e->trailer));
	e->tlen = (uint8_t)pad;
	if (c->ddigest && e->dlen) {
		uint32_t crc = iscsi_crc32c_update(ISCSI_CRC_INIT, e->data,
						   e->dlen);

		crc = iscsi_crc32c_update(crc, e->trailer, pad);
		iscsi_digest_put(e->trailer + pad, iscsi_crc32c_final(crc));
		e->tlen += ISCSI_DIGEST_LEN;
	}
	list_add_tail(&e->link, &c->txq);
	conn_kick(c);
}

void iscsi_conn_send_simple(struct iscsi_conn *c, const uint8_t *bhs,
			    const void *data, uint32_t dlen, bool statsn)
{
	struct iscsi_txe *e = iscsi_txe_new(dlen);

	if (!e) {
		iscsi_conn_close(c, "out of memory");
		return;
	}
	memcpy(e->hdr, bhs, ISCSI_BHS_LEN);
	if (dlen)
		memcpy((uint8_t *)(e + 1), data, dlen);
	iscsi_conn_queue(c, e, statsn);
}

/* Reject (RFC 7143 §11.17): the rejected PDU's header is the data. */
void iscsi_conn_reject(struct iscsi_conn *c, uint8_t reason, const uint8_t *bhs)
{
	uint8_t r[ISCSI_BHS_LEN] = { 0 };

	iscsi_conn_log(c, UT_LOG_WARN, "reject opcode 0x%02x: reason 0x%02x",
		       bhs_opcode(bhs), reason);
	r[0] = ISCSI_OP_REJECT;
	r[1] = ISCSI_FLAG_FINAL;
	r[2] = reason;
	put_be32(r + BHS_ITT, ISCSI_RSVD_TAG);
	iscsi_conn_send_simple(c, r, bhs, ISCSI_BHS_LEN, true);
}

static void conn_flush(struct iscsi_conn *c)
{
	struct iovec iov[TX_IOV_MAX];
	struct iscsi_txe *e, *n;
	int cnt;
	ssize_t w;
	size_t skip;
	bool close_after = false;

	c->tx_urgent = false;
	while (!c->closing && !list_empty(&c->txq)) {
		cnt = 0;
		skip = c->tx_off;
		list_for_each_entry(e, &c->txq, link) {
			const void *p[3] = { e->hdr, e->data, e->trailer };
			size_t l[3] = { e->hlen, e->dlen, e->tlen };
			int k;

			if (cnt > TX_IOV_MAX - 3)
				break;
			for (k = 0; k < 3; k++) {
				if (skip >= l[k]) {
					skip -= l[k];
					continue;
				}
				iov[cnt].iov_base = (char *)p[k] + skip;
				iov[cnt].iov_len = l[k] - skip;
				skip = 0;
				cnt++;
			}
			if (e->close_after)
				break;
		}
		w = writev(c->h.fd, iov, cnt);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				if (!c->want_out) {
					c->want_out = true;
					io_loop_mod(c->loop, &c->h,
						    rx_events(c) | EPOLLOUT);
				}
				return;
			}
			iscsi_conn_close(c, strerror(errno));
			return;
		}
		/* retire what was fully sent */
		w += c->tx_off;
		list_for_each_entry_safe(e, n, &c->txq, link) {
			size_t len = (size_t)e->hlen + e->dlen + e->tlen;

			if ((size_t)w < len)
				break;
			w -= (ssize_t)len;
			list_del(&e->link);
			close_after = e->close_after;
			txe_free(e);
			if (close_after) {
				iscsi_conn_close(c, NULL);
				return;
			}
		}
		c->tx_off = (uint32_t)w;
	}
	if (c->want_out && !c->closing) {
		c->want_out = false;
		io_loop_mod(c->loop, &c->h, rx_events(c));
	}
}

/* ---- lifecycle ---- */

static void conn_free(struct io_deferred *d)
{
	struct iscsi_conn *c = container_of(d, struct iscsi_conn, free_d);

	if (c->sess)
		iscsi_session_destroy(c->sess);
	atomic_fetch_sub(&conn_count, 1);
	if (list_empty(&worker_conns))
		iscsi_task_cache_drain(); /* idle worker: give memory back */
	free(c->rbuf);
	free(c->scratch);
	iscsi_text_free(&c->text_out);
	iscsi_text_free(&c->text_in);
	free(c);
}

void iscsi_conn_get(struct iscsi_conn *c)
{
	c->refs++;
}

void iscsi_conn_put(struct iscsi_conn *c)
{
	if (--c->refs > 0)
		return;
	/* Never free inside our own callback: finish at the end of the loop
	 * iteration (docs/architecture.md, the command path). */
	c->free_d.fn = conn_free;
	io_loop_defer(c->loop, &c->free_d);
}

void iscsi_conn_close(struct iscsi_conn *c, const char *why)
{
	struct iscsi_txe *e, *n;

	if (c->closing)
		return;
	c->closing = true;
	/* RFC 4544 iscsiInstSsnFailures: a session ended without Logout */
	if (c->state == CONN_FFP && c->sess && !c->sess->discovery)
		iscsi_stats_session_failure(c->sess->target_name);
	if (why)
		iscsi_conn_log(c, UT_LOG_INFO, "connection closed: %s", why);
	else
		iscsi_conn_log(c, UT_LOG_DEBUG, "connection closed");
	io_timer_cancel(&c->login_timer);
	io_timer_cancel(&c->nop_timer);
	io_timer_cancel(&c->drain_timer);
	io_loop_del(c->loop, &c->h);
	close(c->h.fd);
	c->h.fd = -1;
	list_for_each_entry_safe(e, n, &c->txq, link) {
		list_del(&e->link);
		txe_free(e);
	}
	if (c->logout_rsp) {
		txe_free(c->logout_rsp);
		c->logout_rsp = NULL;
	}
	iscsi_login_free(c);
	if (c->sess) {
		struct iscsi_session *s = c->sess;

		/* Tasks still in a backstore keep the connection (and the
		 * session) alive through their references until they finish. */
		iscsi_session_abort_tasks(s, true, 0);
		iscsi_session_unlink(s);
	}
	io_loop_load_add(c->loop, -1);
	iscsi_listener_conn_gone(c->listener);
	c->listener = NULL;
	list_del(&c->all_link);
	c->state = CONN_CLOSED;
	conn_put(c);
}

static void login_timeout(struct io_timer *t)
{
	struct iscsi_conn *c = container_of(t, struct iscsi_conn, login_timer);

	iscsi_conn_close(c, "login timed out");
}

/* RFC 7143 §11.19: target NOP-In with a valid TTT asks for a NOP-Out; an
 * initiator silent for nopin_timeout gets pinged, and one that does not
 * answer within nopin_response_timeout loses the connection. */
static void nop_tick(struct io_timer *t)
{
	struct iscsi_conn *c = container_of(t, struct iscsi_conn, nop_timer);
	struct iscsi_session *s = c->sess;
	uint64_t now = io_now_ms();
	uint64_t idle = now - c->last_rx_ms;

	if (c->state != CONN_FFP || !s)
		return;
	if (c->nop_ttt) {
		if (idle >= (uint64_t)s->acl_attrs.nopin_response_timeout * 1000) {
			iscsi_conn_close(c, "no answer to NOP-In");
			return;
		}
	} else if (idle >= (uint64_t)s->acl_attrs.nopin_timeout * 1000) {
		uint8_t b[ISCSI_BHS_LEN] = { 0 };

		c->nop_ttt = ++s->next_ttt | 0x80000000u;
		b[0] = ISCSI_OP_NOP_IN;
		b[1] = ISCSI_FLAG_FINAL;
		put_be32(b + BHS_ITT, ISCSI_RSVD_TAG);
		put_be32(b + BHS_TTT, c->nop_ttt);
		/* StatSN is not advanced for a ping (§11.19.4) */
		iscsi_conn_send_simple(c, b, NULL, 0, false);
	}
	io_timer_arm(c->loop, t, NOP_CHECK_MS);
}

void iscsi_conn_enter_ffp(struct iscsi_conn *c)
{
	c->state = CONN_FFP;
	io_timer_cancel(&c->login_timer);
	c->last_rx_ms = io_now_ms();
	io_timer_arm(c->loop, &c->nop_timer, NOP_CHECK_MS);
	iscsi_conn_log(c, UT_LOG_DEBUG, "full feature phase");
}

/* ---- receive side ---- */

static int scratch_reserve(struct iscsi_conn *c, uint32_t n)
{
	uint8_t *p;

	if (n <= c->scratch_cap)
		return 0;
	p = realloc(c->scratch, n);
	if (!p)
		return -ENOMEM;
	c->scratch = p;
	c->scratch_cap = n;
	return 0;
}

static void handle_nop_out(struct iscsi_conn *c)
{
	const uint8_t *h = c->hdr;
	uint32_t itt = get_be32(h + BHS_ITT);
	uint32_t ttt = get_be32(h + BHS_TTT);
	uint8_t r[ISCSI_BHS_LEN] = { 0 };

	if (ttt != ISCSI_RSVD_TAG) {
		/* answer to our ping */
		if (ttt == c->nop_ttt)
			c->nop_ttt = 0;
		return;
	}
	if (!(h[0] & ISCSI_OP_IMMEDIATE) &&
	    iscsi_session_check_cmdsn(c->sess, get_be32(h + BHS_CMDSN),
				      false) < 0)
		return;
	if (itt == ISCSI_RSVD_TAG)
		return; /* no answer wanted (§11.18) */
	r[0] = ISCSI_OP_NOP_IN;
	r[1] = ISCSI_FLAG_FINAL;
	memcpy(r + BHS_LUN, h + BHS_LUN, 8);
	put_be32(r + BHS_ITT, itt);
	put_be32(r + BHS_TTT, ISCSI_RSVD_TAG);
	iscsi_conn_send_simple(c, r, c->dlen ? c->scratch : NULL, c->dlen, true);
}

/* RFC 4544 iscsiSsnDigestErrors / iscsiInstSsnDigestErrors */
static void count_digest_error(struct iscsi_conn *c)
{
	if (!c->sess)
		return;
	atomic_fetch_add_explicit(&c->sess->st.digest_errors, 1,
				  memory_order_relaxed);
	iscsi_stats_digest_error(c->sess->discovery ? "" : c->sess->target_name);
}

static void handle_logout(struct iscsi_conn *c)
{
	const uint8_t *h = c->hdr;
	uint8_t reason = h[1] & 0x7f;
	uint8_t r[ISCSI_BHS_LEN] = { 0 };
	struct iscsi_txe *e;

	if (!(h[0] & ISCSI_OP_IMMEDIATE))
		iscsi_session_check_cmdsn(c->sess, get_be32(h + BHS_CMDSN),
					  false);
	r[0] = ISCSI_OP_LOGOUT_RSP;
	r[1] = ISCSI_FLAG_FINAL;
	put_be32(r + BHS_ITT, get_be32(h + BHS_ITT));
	/* §11.15: 0 closes the session, 1 the connection; with one connection
	 * per session both end everything. 2 (recovery) needs ERL 2. */
	if (reason == 2) {
		r[2] = 2; /* connection recovery is not supported */
	} else if (reason == 1 && get_be16(h + BHS_CID) != c->cid) {
		r[2] = 1; /* CID not found */
	} else {
		r[2] = 0;
	}
	put_be16(r + BHS_T2W, (uint16_t)c->sess->params.time2wait);
	put_be16(r + BHS_T2R, (uint16_t)c->sess->params.time2retain);
	e = iscsi_txe_new(0);
	if (!e) {
		iscsi_conn_close(c, "out of memory");
		return;
	}
	memcpy(e->hdr, r, sizeof(r));
	if (r[2] == 0) {
		struct iscsi_task *t, *n;

		e->close_after = true;
		c->state = CONN_LOGOUT;
		iscsi_conn_log(c, UT_LOG_INFO, "logout (reason %u)", reason);
		/* RFC 4544 iscsiTgtLogoutNormals: reason 0 (close the session) */
		if (!c->sess->discovery)
			iscsi_stats_logout(c->sess->target_name, reason == 0);
		/* Commands sent before the Logout are answered first: the
		 * response waits until the ones in progress finish. A write
		 * still waiting for its Data-Out will never get it. */
		list_for_each_entry_safe(t, n, &c->sess->tasks, link)
			if (t->state != TASK_EXEC)
				iscsi_task_abort(t);
		if (c->sess->active_tasks) {
			c->logout_rsp = e;
			return;
		}
	}
	iscsi_conn_queue(c, e, true);
}

/* The whole PDU (header and data) is in: act on it. */
static void pdu_done(struct iscsi_conn *c)
{
	uint8_t op = bhs_opcode(c->hdr);

	c->last_rx_ms = io_now_ms();
	if (c->state == CONN_LOGIN) {
		iscsi_login_rx(c);
		return;
	}
	if (c->state != CONN_FFP)
		return; /* logging out: ignore what trails the Logout */
	c->exp_stat_sn = get_be32(c->hdr + BHS_EXPSTATSN);
	switch (op) {
	case ISCSI_OP_NOP_OUT:
		handle_nop_out(c);
		break;
	case ISCSI_OP_SCSI_CMD:
		iscsi_scsi_cmd_rx_done(c);
		break;
	case ISCSI_OP_DATA_OUT:
		iscsi_data_out_rx_done(c);
		break;
	case ISCSI_OP_TEXT_REQ:
		iscsi_text_rx(c);
		break;
	case ISCSI_OP_TMF_REQ:
		iscsi_tmf_rx(c);
		break;
	case ISCSI_OP_LOGOUT_REQ:
		handle_logout(c);
		break;
	case ISCSI_OP_LOGIN_REQ:
		/* §6.2: a Login Request in full feature phase is a protocol
		 * error. */
		iscsi_conn_reject(c, ISCSI_REJECT_PROTOCOL, c->hdr);
		break;
	case ISCSI_OP_SNACK_REQ:
		/* SNACK needs ERL >= 1, and we only agree to 0. */
		iscsi_conn_reject(c, ISCSI_REJECT_CMD_NOT_SUPPORTED, c->hdr);
		break;
	default:
		iscsi_conn_reject(c, ISCSI_REJECT_CMD_NOT_SUPPORTED, c->hdr);
		break;
	}
}

/* The 48-byte BHS is in: refuse what cannot be a valid PDU here before
 * waiting for any AHS or data it announces. */
static int bhs_check(struct iscsi_conn *c)
{
	uint32_t dlen = bhs_dlen(c->hdr);

	if (c->state == CONN_LOGIN && bhs_opcode(c->hdr) != ISCSI_OP_LOGIN_REQ) {
		/* §6.1: only Login Requests until the login completes */
		iscsi_conn_close(c, "non-login PDU before login completed");
		return -1;
	}
	if (c->state == CONN_LOGIN && bhs_ahslen(c->hdr)) {
		/* RFC 7143 §11.12: no AHS is defined for a Login Request.
		 * Answer now: waiting for AHS bytes the initiator may never
		 * send would hold the connection until login_timeout. */
		iscsi_login_refuse(c, "Login Request with TotalAHSLength != 0");
		if (!c->closing) {
			/* level-triggered: unread input must not wake us
			 * while the answer waits to go out */
			c->rx_stop = true;
			io_loop_mod(c->loop, &c->h,
				    c->want_out ? EPOLLOUT : 0);
		}
		return -1;
	}
	if (dlen > c->max_recv_dsl) {
		iscsi_conn_log(c, UT_LOG_WARN,
			       "data segment %u exceeds MaxRecvDataSegmentLength %u",
			       dlen, c->max_recv_dsl);
		iscsi_conn_close(c, "protocol error");
		return -1;
	}
	return 0;
}

/* Header (BHS + AHS) is in and its digest checked: decide where the data
 * segment goes. Returns -1 when the connection was closed. */
static int header_done(struct iscsi_conn *c)
{
	uint8_t op = bhs_opcode(c->hdr);
	uint32_t ahs = bhs_ahslen(c->hdr);

	if (c->hdigest) {
		uint32_t want = iscsi_digest_get(c->hdr + ISCSI_BHS_LEN + ahs);

		if (iscsi_crc32c(c->hdr, ISCSI_BHS_LEN + ahs) != want) {
			/* §7.8: with ERL 0 a header digest error ends the
			 * connection (the PDU's length cannot be trusted). */
			count_digest_error(c);
			iscsi_conn_close(c, "header digest error");
			return -1;
		}
	}
	c->rx_dst = NULL;
	c->rx_discard = false;
	c->rx_task = NULL;
	if (op != ISCSI_OP_DATA_OUT)
		c->rx_quiet = false;
	c->rx_got = 0;
	c->rx_crc = ISCSI_CRC_INIT;
	if (c->state == CONN_FFP && op == ISCSI_OP_SCSI_CMD)
		iscsi_scsi_cmd_rx_hdr(c);
	else if (c->state == CONN_FFP && op == ISCSI_OP_DATA_OUT)
		iscsi_data_out_rx_hdr(c);
	if (c->closing)
		return -1;
	if (!c->rx_dst && !c->rx_discard && c->dlen) {
		if (scratch_reserve(c, c->dlen)) {
			iscsi_conn_close(c, "out of memory");
			return -1;
		}
		c->rx_dst = c->scratch;
	}
	c->trail_got = 0;
	/* §11.1: a data digest follows a data segment; a PDU without data
	 * (READ command, NOP-Out, Logout...) has none even when DataDigest
	 * is on */
	c->trail_need = pad4(c->dlen) +
			(c->ddigest && c->dlen ? ISCSI_DIGEST_LEN : 0);
	c->rx_state = c->dlen ? RX_DATA : RX_TRAIL;
	return 0;
}

static void data_land(struct iscsi_conn *c, const uint8_t *src, uint32_t n)
{
	if (c->ddigest)
		c->rx_crc = iscsi_crc32c_update(c->rx_crc, src, n);
	if (!c->rx_discard && src != c->rx_dst + c->rx_got)
		memcpy(c->rx_dst + c->rx_got, src, n);
	c->rx_got += n;
}

/* Refill the receive buffer. Returns bytes read, 0 on EOF, -EAGAIN, or
 * another -errno. */
static int rx_fill(struct iscsi_conn *c)
{
	ssize_t r;

	if (c->rpos == c->rlen) {
		c->rpos = c->rlen = 0;
	} else if (c->rlen == ISCSI_RBUF_SIZE) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
	do
		r = recv(c->h.fd, c->rbuf + c->rlen, ISCSI_RBUF_SIZE - c->rlen, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN ? -EAGAIN : -errno;
	/* A short read emptied the socket: asking again would most likely
	 * just return EAGAIN. The socket is level-triggered in epoll, so
	 * stopping here loses nothing and saves that syscall per round. */
	if (r > 0 && (uint32_t)r < ISCSI_RBUF_SIZE - c->rlen)
		c->rx_drained = true;
	c->rlen += (uint32_t)r;
	return (int)r;
}

/* Returns true when the caller should stop (EAGAIN, closed, or a pass
 * over buffered bytes only). */
static bool rx_more(struct iscsi_conn *c)
{
	int r;

	if (c->rx_buffered_only || c->rx_drained)
		return true;
	r = rx_fill(c);

	if (r > 0)
		return false;
	if (r == 0)
		iscsi_conn_close(c, c->rx_state == RX_BHS && c->hdr_got == 0 ?
				 "closed by initiator" :
				 "closed by initiator mid-PDU");
	else if (r != -EAGAIN)
		iscsi_conn_close(c, strerror(-r));
	return true;
}

/* A large payload goes straight to its final buffer, with no copy
 * through rbuf. The same readv also takes this PDU's padding and data
 * digest, and then exactly one basic header (plus its digest) into the
 * empty rbuf, no more: when the next PDU is again a large one (a stream of
 * Data-Outs, or of write commands with immediate data), its payload is
 * then also read in place instead of arriving behind the header in rbuf.
 * Called with rbuf empty. Returns 1 when bytes arrived, 0 to retry (EINTR),
 * -1 when the caller should return (EAGAIN, or the connection closed). */
static int rx_direct(struct iscsi_conn *c, uint32_t n)
{
	struct iovec iov[3];
	uint32_t got, t;
	ssize_t r;

	iov[0].iov_base = c->rx_dst + c->rx_got;
	iov[0].iov_len = n;
	iov[1].iov_base = c->trail;
	iov[1].iov_len = c->trail_need;
	iov[2].iov_base = c->rbuf;
	iov[2].iov_len = ISCSI_BHS_LEN + (c->hdigest ? ISCSI_DIGEST_LEN : 0);
	c->rpos = c->rlen = 0;
	r = readv(c->h.fd, iov, 3);
	if (r <= 0) {
		if (r < 0 && errno == EINTR)
			return 0;
		if (r < 0 && errno == EAGAIN)
			return -1;
		iscsi_conn_close(c, r == 0 ? "closed by initiator mid-PDU" :
					     strerror(errno));
		return -1;
	}
	got = (uint32_t)r;
	if (got < n + c->trail_need + iov[2].iov_len)
		c->rx_drained = true; /* as in rx_fill */
	t = got < n ? got : n;
	data_land(c, c->rx_dst + c->rx_got, t);
	got -= t;
	t = got < c->trail_need ? got : c->trail_need;
	c->trail_got = t;   /* RX_TRAIL takes the rest, if any, from rbuf */
	c->rlen = got - t;
	return 1;
}

static void rx_reset(struct iscsi_conn *c)
{
	c->rx_state = RX_BHS;
	c->hdr_got = 0;
	c->hdr_need = ISCSI_BHS_LEN;
}

static void conn_rx(struct iscsi_conn *c)
{
	int budget = RX_BUDGET;

	while (!c->closing && !c->rx_stop && budget > 0) {
		uint32_t avail = c->rlen - c->rpos;
		uint32_t n;

		switch (c->rx_state) {
		case RX_BHS:
		case RX_AHS:
			n = c->hdr_need - c->hdr_got;
			if (n > avail)
				n = avail;
			memcpy(c->hdr + c->hdr_got, c->rbuf + c->rpos, n);
			c->rpos += n;
			c->hdr_got += n;
			if (c->hdr_got < c->hdr_need) {
				if (rx_more(c))
					return;
				continue;
			}
			if (c->rx_state == RX_BHS) {
				if (bhs_check(c))
					return;
				c->dlen = bhs_dlen(c->hdr);
				c->hdr_need = ISCSI_BHS_LEN + bhs_ahslen(c->hdr) +
					      (c->hdigest ? ISCSI_DIGEST_LEN : 0);
				c->rx_state = RX_AHS;
				if (c->hdr_need > c->hdr_got)
					continue;
			}
			if (header_done(c))
				return;
			continue;
		case RX_DATA:
			n = c->dlen - c->rx_got;
			if (avail) {
				if (n > avail)
					n = avail;
				data_land(c, c->rbuf + c->rpos, n);
				c->rpos += n;
			} else if (c->rx_buffered_only || c->rx_drained) {
				return;
			} else if (n >= RX_DIRECT_MIN && !c->rx_discard) {
				int r = rx_direct(c, n);

				if (r < 0)
					return;
				if (r == 0)
					continue;
			} else if (rx_more(c)) {
				return;
			}
			if (c->rx_got == c->dlen)
				c->rx_state = RX_TRAIL;
			continue;
		case RX_TRAIL:
			n = c->trail_need - c->trail_got;
			if (n > avail)
				n = avail;
			memcpy(c->trail + c->trail_got, c->rbuf + c->rpos, n);
			c->rpos += n;
			c->trail_got += n;
			if (c->trail_got < c->trail_need) {
				if (rx_more(c))
					return;
				continue;
			}
			if (c->ddigest && c->dlen) {
				uint32_t pad = pad4(c->dlen);
				uint32_t crc = iscsi_crc32c_final(
					iscsi_crc32c_update(c->rx_crc, c->trail,
							    pad));

				if (crc != iscsi_digest_get(c->trail + pad)) {
					/* §7.8.1: reject the PDU; at ERL 0
					 * we then drop the connection, since
					 * the command cannot be recovered. */
					iscsi_conn_reject(
						c, ISCSI_REJECT_DATA_DIGEST,
						c->hdr);
					conn_flush(c);
					count_digest_error(c);
					iscsi_conn_close(c, "data digest error");
					return;
				}
			}
			rx_reset(c);
			pdu_done(c);
			budget--;
			if (c->tx_urgent && !c->closing)
				conn_flush(c);
			continue;
		}
	}
	if (!c->closing && budget == 0 && c->rpos < c->rlen && !c->rx_queued) {
		c->rx_queued = true;
		c->refs++;
		io_loop_defer(c->loop, &c->rx_d);
	}
}

/* The budget ran out with whole PDUs possibly still in rbuf: the socket
 * may have nothing more to read, so no readiness event would come for
 * them. Finish them at the end of this loop round (after every other
 * handler of the batch had its turn), from the buffer only. */
static void rx_deferred(struct io_deferred *d)
{
	struct iscsi_conn *c = container_of(d, struct iscsi_conn, rx_d);

	c->rx_queued = false;
	if (!c->closing) {
		c->rx_buffered_only = true;
		conn_rx(c);
		c->rx_buffered_only = false;
	}
	conn_put(c);
}

static void conn_event(struct io_handler *h, uint32_t events)
{
	struct iscsi_conn *c = container_of(h, struct iscsi_conn, h);

	/* Closed by another handler in this epoll batch: the event is stale
	 * (the memory lives until the batch's deferred work runs). */
	if (c->closing)
		return;

	c->refs++;
	if (events & EPOLLOUT)
		conn_flush(c);
	if (!c->closing && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		c->rx_drained = false;
		conn_rx(c);
	}
	conn_put(c);
}

struct conn_start_msg {
	int fd;
	struct io_loop *loop;
	const struct iscsi_listener *ls;
};

static void sockaddr_str(const struct sockaddr_storage *ss, char *ip,
			 size_t iplen, uint16_t *port)
{
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, (socklen_t)iplen);
		*port = ntohs(s6->sin6_port);
	} else {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, ip, (socklen_t)iplen);
		*port = ntohs(s4->sin_port);
	}
}

/* Until a Login Request names its target, the TPG is not known: the
 * connection gets the longest login_timeout of the enabled TPGs with a
 * portal on the address it arrived at (LIO's default when none does).
 * login.c re-arms the timer with the TPG's own value once it is known. */
static uint64_t login_timeout_ms(const struct sockaddr_storage *la)
{
	struct iscsi_target *t;
	struct iscsi_tpg *tpg;
	struct iscsi_portal *p;
	uint32_t secs = 0;

	pthread_mutex_lock(&iscsi_fabric.lock);
	list_for_each_entry(t, &iscsi_fabric.targets, link)
		list_for_each_entry(tpg, &t->tpgs, link) {
			if (!iscsi_tpg_serving(tpg) ||
			    tpg->attrs.login_timeout <= secs)
				continue;
			list_for_each_entry(p, &tpg->portals, link)
				if (iscsi_portal_matches(p, la)) {
					secs = tpg->attrs.login_timeout;
					break;
				}
		}
	pthread_mutex_unlock(&iscsi_fabric.lock);
	return secs ? (uint64_t)secs * 1000 : LOGIN_TIMEOUT_MS;
}

void iscsi_conn_start(int fd, struct io_loop *loop, struct iscsi_listener *ls)
{
	struct iscsi_conn *c = calloc(1, sizeof(*c));
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN];
	uint16_t port = 0;
	int one = 1;

	if (!c || !(c->rbuf = malloc(ISCSI_RBUF_SIZE))) {
		free(c);
		close(fd);
		iscsi_listener_conn_gone(ls);
		log_err("out of memory accepting a connection");
		return;
	}
	c->h.fd = fd;
	c->h.fn = conn_event;
	c->loop = loop;
	c->listener = ls;
	c->refs = 1;
	c->state = CONN_LOGIN;
	c->max_recv_dsl = 8192; /* §13.12: the login phase default */
	c->max_xmit_dsl = 8192;
	list_init(&c->txq);
	c->flush_d.fn = flush_deferred;
	c->rx_d.fn = rx_deferred;
	io_timer_init(&c->login_timer, login_timeout);
	io_timer_init(&c->nop_timer, nop_tick);
	io_timer_init(&c->drain_timer, drain_timeout);
	iscsi_text_init(&c->text_out);
	iscsi_text_init(&c->text_in);
	rx_reset(c);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		c->peer_addr = ss;
		sockaddr_str(&ss, ip, sizeof(ip), &port);
		snprintf(c->peer, sizeof(c->peer),
			 ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip,
			 port);
	}
	sl = sizeof(c->local_addr);
	if (getsockname(fd, (struct sockaddr *)&c->local_addr, &sl) == 0) {
		sockaddr_str(&c->local_addr, c->local_ip, sizeof(c->local_ip),
			     &c->local_port);
		c->local_family = c->local_addr.ss_family;
	}
	io_loop_load_add(loop, 1);
	if (!worker_conns.next)
		list_init(&worker_conns);
	list_add_tail(&c->all_link, &worker_conns);
	atomic_fetch_add(&conn_count, 1);
	if (io_loop_add(loop, &c->h, EPOLLIN)) {
		iscsi_conn_close(c, "epoll registration failed");
		return;
	}
	io_timer_arm(loop, &c->login_timer, login_timeout_ms(&c->local_addr));
	iscsi_conn_log(c, UT_LOG_DEBUG, "accepted");
}
