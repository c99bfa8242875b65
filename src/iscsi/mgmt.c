/* What the control layer asks of live sessions: a new LUN map after a
 * configuration change, the end of sessions that lost access, and a
 * snapshot for the `sessions` listing. Sessions belong to their worker:
 * every change to one runs there, posted as a message that looks the
 * session up again by TSIH (it may have ended meanwhile). */
#include "iscsi/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

#include "io/workers.h"
#include "iscsi/mgmt.h"
#include "util/log.h"

struct sess_msg {
	uint16_t tsih;
	struct io_loop *loop;
	bool close;
};

/* On the session's worker. */
static void refresh_on_worker(void *arg)
{
	struct sess_msg *m = arg;
	struct iscsi_session *s = iscsi_session_lookup(m->tsih, m->loop);
	struct scsi_lun_map *map = NULL;
	struct iscsi_target *t;
	struct iscsi_tpg *tpg;
	bool denied = true;

	if (!s || !s->conn || s->discovery) {
		free(m);
		return;
	}
	if (!m->close) {
		pthread_mutex_lock(&iscsi_fabric.lock);
		t = iscsi_target_find(s->target_name);
		tpg = t ? iscsi_tpg_find(t, s->tpgt) : NULL;
		if (tpg && iscsi_tpg_serving(tpg))
			map = iscsi_tpg_build_map(tpg, s->initiator_name, &denied);
		pthread_mutex_unlock(&iscsi_fabric.lock);
	}
	if (!map && denied && !m->close &&
	    (map = scsi_lun_map_new(0)) != NULL) {
		/* Its target, TPG or ACL is gone: no LUN is reachable any more
		 * (an empty map), and the initiator is asked to log out; the
		 * connection ends within ISCSI_LOGOUT_WAIT_S + 1 s whatever it
		 * does, so a delete never waits on an initiator. */
		scsi_nexus_set_map(&s->nexus, map);
		iscsi_conn_request_logout(s->conn, ISCSI_LOGOUT_WAIT_S,
					  "access removed by configuration");
	} else if (!map) {
		iscsi_conn_close(s->conn, denied ? "access removed by configuration" :
				 "out of memory");
	} else {
		/* new LUNs get POWER ON, a changed set REPORTED LUNS DATA
		 * HAS CHANGED (SPC-4 6.37) */
		scsi_nexus_set_map(&s->nexus, map);
	}
	free(m);
}

static void post_matching(const char *target, int tpgt, const char *initiator,
			  bool close)
{
	enum { CHUNK = 32 }; /* a ref carries the session's counters: ~2 KiB */
	struct iscsi_sess_ref refs[CHUNK];
	size_t n, i, skip = 0;

	do {
		n = iscsi_session_refs(refs, CHUNK, skip);
		for (i = 0; i < n; i++) {
			struct sess_msg *m;

			if (refs[i].discovery ||
			    (target && strcasecmp(refs[i].target, target)) ||
			    (tpgt >= 0 && refs[i].tpgt != tpgt) ||
			    (initiator && strcasecmp(refs[i].initiator, initiator)))
				continue;
			m = malloc(sizeof(*m));
			if (!m)
				continue;
			m->tsih = refs[i].tsih;
			m->loop = refs[i].loop;
			m->close = close;
			if (io_loop_post(refs[i].loop, refresh_on_worker, m))
				free(m);
		}
		skip += n;
	} while (n == CHUNK);
}

void iscsi_sessions_refresh(const char *target, int tpgt)
{
	post_matching(target, tpgt, NULL, false);
}

void iscsi_sessions_close(const char *target, int tpgt, const char *initiator)
{
	post_matching(target, tpgt, initiator, true);
}

/* ---- ending other nexuses' tasks (LUN / target reset, PREEMPT AND
 * ABORT): the SCSI core's abort hook, run on every worker ---- */

struct abort_msg {
	struct scsi_lu *lu;             /* reference held by the message */
	const struct scsi_nexus *except;
	bool tas;
	bool any_port;
	char port[SCSI_NAME_MAX + 32];
	int *pending;                   /* workers still to run it */
};

static void abort_conn(struct iscsi_conn *c, void *arg)
{
	struct abort_msg *m = arg;
	struct iscsi_session *s = c->sess;
	struct iscsi_task *t, *n;

	if (!s || s->discovery || c->closing || &s->nexus == m->except)
		return;
	if (!m->any_port && strcmp(s->nexus.initiator_port, m->port))
		return;
	list_for_each_entry_safe(t, n, &s->tasks, link) {
		struct scsi_lun_ent *ent;

		if (t->aborted)
			continue;
		ent = scsi_nexus_lookup(&s->nexus, t->cmd.lun);
		if (ent && ent->lu == m->lu)
			iscsi_task_abort_tas(t, m->tas);
	}
}

static void abort_on_worker(void *arg)
{
	struct abort_msg *m = arg;

	iscsi_conn_foreach(abort_conn, m);
	if (__atomic_sub_fetch(m->pending, 1, __ATOMIC_ACQ_REL) == 0) {
		scsi_lu_put(m->lu);
		free(m->pending);
	}
	free(m);
}

static void abort_hook(struct scsi_lu *lu, const char *port,
		       const struct scsi_nexus *except, bool tas)
{
	int i, n = io_workers_count();
	int *pending = malloc(sizeof(*pending));

	if (!pending || n == 0) {
		free(pending);
		return;
	}
	*pending = n;
	scsi_lu_get(lu);
	for (i = 0; i < n; i++) {
		struct abort_msg *m = calloc(1, sizeof(*m));

		if (m) {
			m->lu = lu;
			m->except = except;
			m->tas = tas;
			m->any_port = port == NULL;
			if (port)
				snprintf(m->port, sizeof(m->port), "%s", port);
			m->pending = pending;
		}
		if (!m || io_loop_post(io_workers_get(i), abort_on_worker, m)) {
			free(m);
			if (__atomic_sub_fetch(pending, 1, __ATOMIC_ACQ_REL) == 0) {
				scsi_lu_put(lu);
				free(pending);
			}
		}
	}
}

void iscsi_install_abort_hook(void)
{
	scsi_set_abort_hook(abort_hook);
}
