/* iSCSI sessions: the global table (TSIH allocation, reinstatement of a
 * session with the same initiator name + ISID, RFC 7143 §6.3.5) and the
 * CmdSN window (§4.2.2.1). */
#include "iscsi/conn.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iscsi/mgmt.h"
#include "util/log.h"

static pthread_mutex_t sess_lock = PTHREAD_MUTEX_INITIALIZER;
static struct list_head sessions = LIST_HEAD_INIT(sessions);
static uint16_t next_tsih = 1;

struct iscsi_session *iscsi_session_new(void)
{
	struct iscsi_session *s = calloc(1, sizeof(*s));
	int i;

	if (!s)
		return NULL;
	list_init(&s->link);
	list_init(&s->tasks);
	for (i = 0; i < ISCSI_TASK_HASH; i++)
		list_init(&s->task_hash[i]);
	iscsi_sess_params_default(&s->params);
	iscsi_acl_attrs_default(&s->acl_attrs);
	s->cmdsn_depth = 64;
	return s;
}

static bool tsih_used(uint16_t tsih)
{
	struct iscsi_session *s;

	list_for_each_entry(s, &sessions, link)
		if (s->tsih == tsih)
			return true;
	return false;
}

/* Assigns a TSIH that no live session has (never 0, §11.12.6). */
void iscsi_session_register(struct iscsi_session *s)
{
	pthread_mutex_lock(&sess_lock);
	do {
		s->tsih = next_tsih++;
		if (next_tsih == 0)
			next_tsih = 1;
	} while (s->tsih == 0 || tsih_used(s->tsih));
	list_add_tail(&s->link, &sessions);
	pthread_mutex_unlock(&sess_lock);
}

void iscsi_session_unlink(struct iscsi_session *s)
{
	pthread_mutex_lock(&sess_lock);
	list_del(&s->link);
	pthread_mutex_unlock(&sess_lock);
	atomic_store(&s->closing, true);
}

void iscsi_session_destroy(struct iscsi_session *s)
{
	if (list_linked(&s->link))
		iscsi_session_unlink(s);
	scsi_nexus_clear(&s->nexus);
	free(s);
}

struct kill_msg {
	uint16_t tsih;
	struct io_loop *loop;
};

/* Runs on the old session's worker: only that worker frees its sessions,
 * so finding it in the table here means it is still alive. */
static void kill_on_worker(void *arg)
{
	struct kill_msg *m = arg;
	struct iscsi_session *s, *found = NULL;

	pthread_mutex_lock(&sess_lock);
	list_for_each_entry(s, &sessions, link)
		if (s->tsih == m->tsih && s->loop == m->loop) {
			found = s;
			break;
		}
	pthread_mutex_unlock(&sess_lock);
	if (found && found->conn)
		iscsi_conn_close(found->conn, "session reinstated");
	free(m);
}

/* A new leading login for the same I_T nexus (initiator name + ISID and
 * the same target portal group) replaces the old session: close it on its
 * worker. Returns the old session's presence only as a hint. */
struct iscsi_session *iscsi_session_reinstate_find(const char *initiator,
						   const uint8_t isid[6],
						   const char *target,
						   uint16_t tpgt)
{
	struct iscsi_session *s, *found = NULL;

	pthread_mutex_lock(&sess_lock);
	list_for_each_entry(s, &sessions, link) {
		if (!atomic_load(&s->closing) &&
		    !memcmp(s->isid, isid, 6) &&
		    !strcmp(s->initiator_name, initiator) &&
		    !strcmp(s->target_name, target) && s->tpgt == tpgt) {
			found = s;
			break;
		}
	}
	if (found) {
		struct kill_msg *m = malloc(sizeof(*m));

		atomic_store(&found->closing, true);
		if (m) {
			m->tsih = found->tsih;
			m->loop = found->loop;
			if (io_loop_post(found->loop, kill_on_worker, m))
				free(m);
		}
	}
	pthread_mutex_unlock(&sess_lock);
	return found;
}

/* ExpCmdSN / MaxCmdSN for a target PDU. The window shrinks by the number
 * of commands still in progress, so an initiator can never have more than
 * default_cmdsn_depth commands queued; it never moves backwards because a
 * new command raises ExpCmdSN as it takes a slot. */
void iscsi_session_fill_sn(struct iscsi_session *s, uint8_t *bhs)
{
	uint32_t room = s->cmdsn_depth > s->active_tasks ?
				s->cmdsn_depth - s->active_tasks : 0;
	uint32_t max = s->exp_cmdsn + room - 1;

	/* The window the initiator may use is what we last told it. */
	if (sn_cmp(max, s->max_cmdsn) > 0)
		s->max_cmdsn = max;
	put_be32(bhs + BHS_EXPSTATSN, s->exp_cmdsn);
	put_be32(bhs + BHS_MAXCMDSN, s->max_cmdsn);
}

/* §4.2.2.1: a non-immediate command must have ExpCmdSN <= CmdSN <=
 * MaxCmdSN; outside that it is silently ignored. Immediate commands carry
 * CmdSN but do not advance it. */
int iscsi_session_check_cmdsn(struct iscsi_session *s, uint32_t cmdsn,
			      bool immediate)
{
	uint32_t max = s->max_cmdsn;

	if (immediate)
		return 0;
	if (sn_cmp(cmdsn, s->exp_cmdsn) < 0 || sn_cmp(cmdsn, max) > 0) {
		log_debug("CmdSN %u outside window [%u, %u]: ignored", cmdsn,
			  s->exp_cmdsn, max);
		return -1;
	}
	if (cmdsn == s->exp_cmdsn)
		s->exp_cmdsn++;
	else
		/* A gap can only come from another connection of the session;
		 * with one connection the initiator skipped numbers: accept
		 * and resynchronise rather than stall. */
		s->exp_cmdsn = cmdsn + 1;
	return 0;
}

/* On the session's own worker only: the session is alive while listed. */
struct iscsi_session *iscsi_session_lookup(uint16_t tsih, struct io_loop *loop)
{
	struct iscsi_session *s, *found = NULL;

	pthread_mutex_lock(&sess_lock);
	list_for_each_entry(s, &sessions, link)
		if (s->tsih == tsih && s->loop == loop) {
			found = s;
			break;
		}
	pthread_mutex_unlock(&sess_lock);
	return found;
}

size_t iscsi_session_refs(struct iscsi_sess_ref *out, size_t max, size_t skip)
{
	struct iscsi_session *s;
	size_t n = 0, i = 0;

	pthread_mutex_lock(&sess_lock);
	list_for_each_entry(s, &sessions, link) {
		struct iscsi_sess_ref *r;

		if (i++ < skip)
			continue;
		if (n == max)
			break;
		r = &out[n++];
		memset(r, 0, sizeof(*r));
		r->tsih = s->tsih;
		r->loop = s->loop;
		r->discovery = s->discovery;
		r->tpgt = s->tpgt;
		memcpy(r->isid, s->isid, 6);
		snprintf(r->initiator, sizeof(r->initiator), "%s", s->initiator_name);
		snprintf(r->alias, sizeof(r->alias), "%s", s->initiator_alias);
		snprintf(r->target, sizeof(r->target), "%s", s->target_name);
		r->params = s->params;
		r->authenticated = s->authenticated;
		r->cid = s->cid;
		snprintf(r->peer, sizeof(r->peer), "%s", s->peer);
		snprintf(r->local, sizeof(r->local), "%s", s->local);
#define LD(f) atomic_load_explicit(&s->st.f, memory_order_relaxed)
		r->cmd_pdus = LD(cmd_pdus);
		r->rsp_pdus = LD(rsp_pdus);
		r->tx_data_octets = LD(tx_data_octets);
		r->rx_data_octets = LD(rx_data_octets);
		r->digest_errors = LD(digest_errors);
		r->tmf = LD(tmf);
#undef LD
		scsi_nexus_stats_read(&s->nexus, &r->io);
	}
	pthread_mutex_unlock(&sess_lock);
	return n;
}

/* Live Normal sessions on a target (for max_sessions_per_target). */
unsigned iscsi_session_count_target(const char *target)
{
	struct iscsi_session *s;
	unsigned n = 0;

	pthread_mutex_lock(&sess_lock);
	list_for_each_entry(s, &sessions, link)
		if (!s->discovery && !atomic_load(&s->closing) &&
		    !strcasecmp(s->target_name, target))
			n++;
	pthread_mutex_unlock(&sess_lock);
	return n;
}
