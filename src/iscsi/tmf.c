/* Task management (RFC 7143 §11.5-11.6, SAM-5 §7). */
#include "iscsi/conn.h"

#include <string.h>

#include "util/log.h"

static void tmf_respond(struct iscsi_conn *c, uint8_t response, bool close)
{
	struct iscsi_txe *e = iscsi_txe_new(0);

	if (!e) {
		iscsi_conn_close(c, "out of memory");
		return;
	}
	e->hdr[0] = ISCSI_OP_TMF_RSP;
	e->hdr[1] = ISCSI_FLAG_FINAL;
	e->hdr[2] = response;
	put_be32(e->hdr + BHS_ITT, get_be32(c->hdr + BHS_ITT));
	e->close_after = close;
	iscsi_conn_queue(c, e, true);
}

/* Unit attention for every LU this session sees (the target's LUs through
 * this portal group). */
static void reset_all_luns(struct iscsi_session *s)
{
	struct scsi_lun_map *m = s->nexus.map;
	unsigned i;

	for (i = 0; m && i < m->n; i++) {
		/* SAM-5 §7.9: a target reset ends every task on the target's
		 * LUs, other initiators' included */
		scsi_lu_abort_tasks(m->ent[i].lu, NULL, &s->nexus);
		scsi_lu_establish_ua(m->ent[i].lu, SCSI_UA_POWER_ON);
	}
}

void iscsi_tmf_rx(struct iscsi_conn *c)
{
	const uint8_t *h = c->hdr;
	struct iscsi_session *s = c->sess;
	uint8_t fn = h[1] & 0x7f;
	uint64_t lun = scsi_lun_decode(h + BHS_LUN);
	uint32_t rtt = get_be32(h + BHS_REFTT);
	struct scsi_lun_ent *ent;
	struct iscsi_task *t;

	if (!(h[0] & ISCSI_OP_IMMEDIATE) &&
	    iscsi_session_check_cmdsn(s, get_be32(h + BHS_CMDSN), false) < 0)
		return;
	if (s->discovery) {
		iscsi_conn_reject(c, ISCSI_REJECT_PROTOCOL, h);
		return;
	}
	iscsi_conn_log(c, UT_LOG_INFO, "task management function %u on LUN %llu",
		       fn, (unsigned long long)lun);
	atomic_fetch_add_explicit(&s->st.tmf, 1, memory_order_relaxed);
	ent = scsi_nexus_lookup(&s->nexus, lun);
	if (ent)
		scsi_lu_count_tmf(ent);
	switch (fn) {
	case ISCSI_TMF_ABORT_TASK:
		/* §11.5.1: RefCmdSN / RTT name the task; a task we do not
		 * have (already answered) is "does not exist", which the
		 * initiator treats as done. */
		t = iscsi_task_find(s, rtt);
		if (!t || t->cmd.lun != lun) {
			tmf_respond(c, ISCSI_TMF_RSP_NO_TASK, false);
			return;
		}
		iscsi_task_abort(t);
		tmf_respond(c, ISCSI_TMF_RSP_COMPLETE, false);
		return;
	case ISCSI_TMF_ABORT_TASK_SET:
	case ISCSI_TMF_CLEAR_TASK_SET:
		if (!scsi_nexus_lookup(&s->nexus, lun)) {
			tmf_respond(c, ISCSI_TMF_RSP_NO_LUN, false);
			return;
		}
		iscsi_session_abort_tasks(s, false, lun);
		tmf_respond(c, ISCSI_TMF_RSP_COMPLETE, false);
		return;
	case ISCSI_TMF_CLEAR_ACA:
		/* NACA is not supported, so there is never an ACA. */
		tmf_respond(c, ISCSI_TMF_RSP_COMPLETE, false);
		return;
	case ISCSI_TMF_LUN_RESET:
		ent = scsi_nexus_lookup(&s->nexus, lun);
		if (!ent) {
			tmf_respond(c, ISCSI_TMF_RSP_NO_LUN, false);
			return;
		}
		iscsi_session_abort_tasks(s, false, lun);
		/* SAM-5 §7.7: the other nexuses' tasks on the LU end too
		 * (TASK ABORTED to them with TAS) */
		scsi_lu_abort_tasks(ent->lu, NULL, &s->nexus);
		/* SAM-5 §7.7: a LUN reset establishes 29/03 for every I_T
		 * nexus of the LU. */
		scsi_lu_establish_ua(ent->lu, SCSI_UA_LUN_RESET);
		tmf_respond(c, ISCSI_TMF_RSP_COMPLETE, false);
		return;
	case ISCSI_TMF_TARGET_WARM_RESET:
		iscsi_session_abort_tasks(s, true, 0);
		reset_all_luns(s);
		tmf_respond(c, ISCSI_TMF_RSP_COMPLETE, false);
		return;
	case ISCSI_TMF_TARGET_COLD_RESET:
		/* §11.5.1: a cold reset also drops the connection, after the
		 * response is on its way. */
		iscsi_session_abort_tasks(s, true, 0);
		reset_all_luns(s);
		tmf_respond(c, ISCSI_TMF_RSP_COMPLETE, true);
		return;
	case ISCSI_TMF_TASK_REASSIGN:
		/* needs ErrorRecoveryLevel 2 */
		tmf_respond(c, ISCSI_TMF_RSP_NO_FAILOVER, false);
		return;
	default:
		tmf_respond(c, ISCSI_TMF_RSP_REJECTED, false);
		return;
	}
}
