/* iSCSI connections, sessions and tasks (internal to src/iscsi). */
#ifndef UT_ISCSI_CONN_H
#define UT_ISCSI_CONN_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "io/loop.h"
#include "iscsi/iscsi.h"
#include "iscsi/params.h"
#include "iscsi/pdu.h"
#include "iscsi/target.h"
#include "scsi/scsi.h"
#include "util/list.h"

/* Headers and small payloads; payloads of 16 KiB and more are received
 * straight into their task buffer, so this need not be large. */
#define ISCSI_RBUF_SIZE (64 * 1024)
#define ISCSI_MAX_AHS 1020
#define ISCSI_TASK_HASH 256
#define ISCSI_MAX_R2T 16 /* MaxOutstandingR2T we agree to at most */

struct iscsi_session;
struct iscsi_conn;

/* A PDU queued for sending: header (+ header digest), an optional data
 * segment that points into a task buffer or into memory that follows the
 * entry, then padding and data digest. */
struct iscsi_txe {
	struct list_head link;
	uint8_t hdr[ISCSI_BHS_LEN + ISCSI_DIGEST_LEN];
	uint8_t hlen;
	uint8_t tlen;
	uint8_t trailer[3 + ISCSI_DIGEST_LEN];
	const uint8_t *data;
	uint32_t dlen;
	struct iscsi_task *task; /* reference held until sent */
	bool close_after;        /* close the connection once this is out */
	bool bare;               /* allocated without inline data: cacheable */
};

enum iscsi_task_state {
	TASK_NEW,
	TASK_DATA_OUT,  /* collecting Data-Out */
	TASK_EXEC,      /* in the SCSI core / backstore */
	TASK_DONE,      /* response queued */
};

struct iscsi_task {
	struct scsi_cmd cmd; /* the SCSI layer's view; container_of back */
	struct iscsi_conn *conn;
	struct list_head link;       /* session->tasks */
	struct list_head hash_link;  /* session->task_hash[] by ITT */
	enum iscsi_task_state state;
	int refs;
	uint32_t itt;
	uint32_t cmdsn;
	uint32_t edtl;
	uint8_t flags;               /* R / W / attr from the BHS */
	bool immediate;
	bool aborted;                /* no response will be sent */
	bool tas;                    /* answer TASK ABORTED when it ends */
	bool final_status;           /* prepare decided the status */
	/* write: data collection */
	uint32_t data_want;          /* bytes to collect: min(edtl, xfer_len) */
	uint32_t data_got;
	uint32_t unsol_end;          /* unsolicited data allowed up to here */
	uint32_t unsol_got;          /* immediate + unsolicited bytes in */
	uint32_t r2t_next;           /* next offset to solicit */
	uint32_t r2t_outstanding;
	uint32_t r2tsn;
	uint32_t ttt;
	uint32_t unsol_datasn;       /* next DataSN of the unsolicited burst */
	struct {                     /* outstanding R2Ts (§11.8) */
		uint32_t off, len, got, datasn;
	} r2t[ISCSI_MAX_R2T];
	/* read: Data-In */
	uint32_t datasn;
	uint8_t *buf;
	uint32_t buf_cap;
	bool buf_charged;            /* buf_cap counted in conn->buf_bytes */
	struct io_timer delay_timer; /* cmd.delay_ms: exec when it fires */
};

struct iscsi_session {
	struct list_head link;       /* global session list */
	uint16_t tsih;
	uint8_t isid[6];
	bool discovery;
	char initiator_name[ISCSI_NAME_MAX];
	char target_name[ISCSI_NAME_MAX];
	char initiator_alias[ISCSI_PARAM_VALUE_MAX];
	uint16_t tpgt;
	struct iscsi_sess_params params;
	struct iscsi_tpg_params tpg_params; /* for FFP Text negotiation */
	struct iscsi_acl_attrs acl_attrs;
	struct iscsi_conn *conn;     /* the one connection (MaxConnections 1) */
	struct io_loop *loop;
	struct scsi_nexus nexus;
	uint32_t exp_cmdsn;
	uint32_t max_cmdsn;          /* highest MaxCmdSN advertised */
	uint32_t cmdsn_depth;
	uint32_t active_tasks;
	uint32_t next_ttt;
	struct list_head tasks;
	struct list_head task_hash[ISCSI_TASK_HASH];
	atomic_bool closing;
	/* RFC 4544 iscsiSsnStatsTable: written by the session's worker only,
	 * read by the control thread (relaxed atomics, no lock) */
	struct iscsi_sess_stats {
		_Atomic uint64_t cmd_pdus;        /* iscsiSsnCmdPDUs */
		_Atomic uint64_t rsp_pdus;        /* iscsiSsnRspPDUs */
		_Atomic uint64_t tx_data_octets;  /* iscsiSsnTxDataOctets */
		_Atomic uint64_t rx_data_octets;  /* iscsiSsnRxDataOctets */
		_Atomic uint64_t digest_errors;   /* iscsiSsnDigestErrors */
		_Atomic uint64_t tmf;
	} st;
	/* fixed at login, read by the `sessions` listing */
	bool authenticated;
	uint16_t cid;
	char peer[64];
	char local[64];
};

enum iscsi_conn_state {
	CONN_LOGIN,
	CONN_FFP,
	CONN_LOGOUT,
	CONN_CLOSED,
};

enum iscsi_rx_state {
	RX_BHS,
	RX_AHS,   /* AHS + header digest */
	RX_DATA,  /* data segment */
	RX_TRAIL, /* padding + data digest */
};

struct iscsi_login_state;

struct iscsi_conn {
	struct io_handler h;
	struct list_head all_link; /* this worker's connections */
	struct io_loop *loop;
	enum iscsi_conn_state state;
	struct iscsi_session *sess;
	struct iscsi_listener *listener; /* counted in its connections */
	uint16_t cid;
	char peer[64];     /* "ip:port" */
	struct sockaddr_storage peer_addr; /* allowed_networks checks */
	char local_ip[64];
	uint16_t local_port;
	int local_family;
	struct sockaddr_storage local_addr;
	/* negotiated per connection */
	bool hdigest;
	bool ddigest;
	uint32_t max_recv_dsl;
	uint32_t max_xmit_dsl;
	uint32_t stat_sn;
	uint32_t exp_stat_sn;
	/* receive state machine (RFC 7143 §11 framing, resumable) */
	enum iscsi_rx_state rx_state;
	uint8_t *rbuf;
	uint32_t rpos, rlen;
	uint8_t hdr[ISCSI_BHS_LEN + ISCSI_MAX_AHS + ISCSI_DIGEST_LEN];
	uint32_t hdr_got, hdr_need;
	uint32_t dlen;
	uint8_t *rx_dst;       /* where the data segment goes */
	bool rx_discard;       /* data segment is read and dropped */
	bool rx_quiet;         /* drop trailing Data-Out without a Reject */
	uint32_t rx_got;
	uint8_t trail[3 + ISCSI_DIGEST_LEN];
	uint32_t trail_got, trail_need;
	uint32_t rx_crc;
	uint8_t *scratch;      /* control PDU data (login, text, nop) */
	uint32_t scratch_cap;
	struct iscsi_task *rx_task; /* task receiving this data segment */
	struct io_deferred rx_d;    /* finish buffered PDUs past the budget */
	bool rx_queued;
	bool rx_buffered_only;      /* rx_d's pass: no recv */
	bool rx_drained;            /* a short read this round: no more recv */
	bool rx_stop;               /* a final answer is queued: read no more */
	bool tx_urgent;             /* flush after the current PDU (R2T) */
	/* send queue */
	struct list_head txq;
	uint32_t tx_off;       /* bytes of the head entry already sent */
	bool want_out;
	struct io_deferred flush_d;
	bool flush_queued;
	/* lifecycle */
	int refs;              /* base + tasks + pending flush */
	uint64_t buf_bytes;    /* task buffers held by live tasks */
	bool closing;
	bool draining;         /* shutting down: logout requested */
	struct iscsi_txe *logout_rsp; /* sent once the commands before it end */
	struct io_deferred free_d;
	struct io_timer login_timer;
	struct io_timer nop_timer;
	struct io_timer drain_timer; /* logout requested: closes at the bound */
	uint32_t nop_ttt;       /* outstanding target NOP-In, 0 = none */
	uint64_t last_rx_ms;
	struct iscsi_login_state *login;
	/* Text exchange continuation (RFC 7143 §11.10 C bit) */
	struct iscsi_text text_out;
	uint32_t text_off;
	uint32_t text_itt;
	uint32_t text_ttt;
	struct iscsi_text text_in;
};

/* conn.c */
void iscsi_conn_start(int fd, struct io_loop *loop, struct iscsi_listener *ls);
/* portal.c: a connection accepted on ls ended. */
void iscsi_listener_conn_gone(struct iscsi_listener *ls);
void iscsi_conn_close(struct iscsi_conn *c, const char *why);
/* How long an initiator is given to log out when the target asks (SIGTERM,
 * its target or TPG deleted or disabled, its ACL removed). */
#define ISCSI_LOGOUT_WAIT_S 2

/* RFC 7143 §11.9.1 AsyncEvent 1: asks the initiator to log out within
 * secs seconds; the connection keeps serving meanwhile and is closed when
 * the initiator has not logged out a second after that. A connection not
 * in full feature phase is closed at once. why goes to the log. */
void iscsi_conn_request_logout(struct iscsi_conn *c, unsigned secs,
			       const char *why);
void iscsi_conn_get(struct iscsi_conn *c);
/* Schedule a flush of the send queue at the end of this loop iteration
 * (also where a deferred Logout Response goes out). */
void iscsi_conn_kick(struct iscsi_conn *c);
/* Send what is queued as soon as the PDU being received is handled, not
 * at the end of the loop round. */
void iscsi_conn_flush_soon(struct iscsi_conn *c);
void iscsi_conn_put(struct iscsi_conn *c);
struct iscsi_txe *iscsi_txe_new(uint32_t dlen);
void iscsi_txe_cache_drain(void);
/* Fills StatSN (when advance_statsn) / ExpCmdSN / MaxCmdSN, digests and
 * padding, then queues. */
void iscsi_conn_queue(struct iscsi_conn *c, struct iscsi_txe *e,
		      bool advance_statsn);
void iscsi_conn_send_simple(struct iscsi_conn *c, const uint8_t *bhs,
			    const void *data, uint32_t dlen, bool statsn);
void iscsi_conn_reject(struct iscsi_conn *c, uint8_t reason,
		       const uint8_t *bhs);
void iscsi_conn_enter_ffp(struct iscsi_conn *c);
/* Logging with the connection's identity. */
void iscsi_conn_log(struct iscsi_conn *c, int lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Calls fn for every live connection of the calling worker. */
void iscsi_conn_foreach(void (*fn)(struct iscsi_conn *c, void *arg), void *arg);

/* login.c */
void iscsi_login_rx(struct iscsi_conn *c);
/* Answers the Login Request in c->hdr (only its BHS read) with a login
 * reject (initiator error) and ends the connection; why goes to the log. */
void iscsi_login_refuse(struct iscsi_conn *c, const char *why);
void iscsi_login_free(struct iscsi_conn *c);

/* text.c / discovery.c */
void iscsi_text_rx(struct iscsi_conn *c);
int iscsi_sendtargets(struct iscsi_conn *c, const char *what,
		      struct iscsi_text *out);

/* session.c */
struct iscsi_session *iscsi_session_new(void);
void iscsi_session_register(struct iscsi_session *s);
/* Takes the session out of the global table (its TSIH is free again);
 * called when its connection closes. */
void iscsi_session_unlink(struct iscsi_session *s);
/* Frees it; called once no task refers to it any more. */
void iscsi_session_destroy(struct iscsi_session *s);
struct iscsi_session *iscsi_session_reinstate_find(const char *initiator,
						   const uint8_t isid[6],
						   const char *target,
						   uint16_t tpgt);
unsigned iscsi_session_count_target(const char *target);
struct iscsi_session *iscsi_session_lookup(uint16_t tsih, struct io_loop *loop);
void iscsi_session_fill_sn(struct iscsi_session *s, uint8_t *bhs);
/* CmdSN checks for a non-immediate command: 0 = accept, -1 = ignore. */
int iscsi_session_check_cmdsn(struct iscsi_session *s, uint32_t cmdsn,
			      bool immediate);

/* task.c: SCSI command, Data-Out, R2T, Data-In, response */
void iscsi_scsi_cmd_rx_hdr(struct iscsi_conn *c);
void iscsi_scsi_cmd_rx_done(struct iscsi_conn *c);
void iscsi_data_out_rx_hdr(struct iscsi_conn *c);
void iscsi_data_out_rx_done(struct iscsi_conn *c);
struct iscsi_task *iscsi_task_find(struct iscsi_session *s, uint32_t itt);
void iscsi_task_put(struct iscsi_task *t);
void iscsi_task_cache_drain(void);
void iscsi_task_abort(struct iscsi_task *t);
/* Ended by another nexus's task management or PREEMPT AND ABORT: with tas
 * the initiator gets TASK ABORTED status (SAM-5 §5.6), else nothing. */
void iscsi_task_abort_tas(struct iscsi_task *t, bool tas);
void iscsi_session_abort_tasks(struct iscsi_session *s, bool all,
			       uint64_t lun);

/* tmf.c */
void iscsi_tmf_rx(struct iscsi_conn *c);


#endif
