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
		if (tpg && tpg->enable)
			map = iscsi_tpg_build_map(tpg, s->initiator_name, &denied);
		pthread_mutex_unlock(&iscsi_fabric.lock);
	}
	if (!map) {
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
	struct iscsi_sess_ref refs[256];
	size_t n, i, skip = 0;

	do {
		n = iscsi_session_refs(refs, 256, skip);
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
	} while (n == 256);
}

void iscsi_sessions_refresh(const char *target, int tpgt)
{
	post_matching(target, tpgt, NULL, false);
}

void iscsi_sessions_close(const char *target, int tpgt, const char *initiator)
{
	post_matching(target, tpgt, initiator, true);
}
