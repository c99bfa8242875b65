/* Read-only runtime views: sessions, daemon stats, stats.get. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "control/ops_int.h"
#include "control/stats.h"
#include "iscsi/iscsi.h"
#include "iscsi/mgmt.h"

json_t *m_sessions(json_t *p, struct rpc_error *e)
{
	struct iscsi_sess_ref *refs = calloc(1024, sizeof(*refs));
	json_t *arr = json_array();
	size_t n, i;

	(void)p;
	if (!refs)
		return ops_fail(e, RPC_REFUSED, "out of memory");
	n = iscsi_session_refs(refs, 1024, 0);
	for (i = 0; i < n; i++) {
		struct iscsi_sess_ref *r = &refs[i];
		char isid[16];
		json_t *luns = json_array(), *params;
		const struct iscsi_sess_params *sp = &r->params;

		snprintf(isid, sizeof(isid), "%02x%02x%02x%02x%02x%02x",
			 r->isid[0], r->isid[1], r->isid[2], r->isid[3],
			 r->isid[4], r->isid[5]);
		if (!r->discovery) {
			struct iscsi_target *t = iscsi_target_find(r->target);
			struct iscsi_tpg *tpg = t ? iscsi_tpg_find(t, r->tpgt) : NULL;
			bool denied;
			struct scsi_lun_map *map = tpg ?
				iscsi_tpg_build_map(tpg, r->initiator, &denied) : NULL;
			unsigned k;

			for (k = 0; map && k < map->n; k++) {
				char so[128];

				snprintf(so, sizeof(so), "%s/%s",
					 map->ent[k].lu->plugin, map->ent[k].lu->name);
				json_array_append_new(luns, json_pack(
					"{s:I, s:s, s:b}", "mapped_lun",
					(json_int_t)map->ent[k].lun,
					"storage_object", so, "write_protect",
					map->ent[k].write_protect));
			}
			if (map)
				scsi_lun_map_free(map);
		}
		params = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:s, s:I, s:I, s:I, s:I}",
			"HeaderDigest", sp->header_digest ? "CRC32C" : "None",
			"DataDigest", sp->data_digest ? "CRC32C" : "None",
			"MaxRecvDataSegmentLength", (json_int_t)sp->max_recv_dsl,
			"MaxXmitDataSegmentLength", (json_int_t)sp->max_xmit_dsl,
			"MaxBurstLength", (json_int_t)sp->max_burst,
			"FirstBurstLength", (json_int_t)sp->first_burst,
			"InitialR2T", sp->initial_r2t ? "Yes" : "No",
			"ImmediateData", sp->immediate_data ? "Yes" : "No",
			"MaxOutstandingR2T", (json_int_t)sp->max_outstanding_r2t,
			"ErrorRecoveryLevel", (json_int_t)sp->erl,
			"DefaultTime2Wait", (json_int_t)sp->time2wait,
			"DefaultTime2Retain", (json_int_t)sp->time2retain);
		json_array_append_new(arr, json_pack(
			"{s:i, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:b, s:[{s:i, s:s, s:s, s:s}], s:o, s:o}",
			"tsih", r->tsih, "sid", r->tsih,
			"type", r->discovery ? "Discovery" : "Normal",
			"state", "LOGGED_IN", "initiator", r->initiator,
			"alias", r->alias, "isid", isid,
			"target", r->discovery ? "" : r->target, "tpg", r->tpgt,
			"authenticated", r->authenticated, "connections",
			"cid", r->cid, "address", r->peer, "local_address",
			r->local, "state", "LOGGED_IN", "parameters", params,
			"mapped_luns", luns));
	}
	free(refs);
	return arr;
}

/* Counters for leak checks from outside: connections, sessions and tasks
 * alive, open fds, resident memory. */
static long count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	long n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* not the directory's own fd */
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size, res = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &res) != 2)
		res = -1;
	fclose(f);
	return res < 0 ? -1 : res * (sysconf(_SC_PAGESIZE) / 1024);
}

json_t *m_stats(json_t *p, struct rpc_error *e)
{
	enum { CHUNK = 256 };
	struct iscsi_sess_ref *refs = calloc(CHUNK, sizeof(*refs));
	size_t n, sessions = 0;

	(void)p;
	if (!refs)
		return ops_fail(e, RPC_REFUSED, "out of memory");
	while ((n = iscsi_session_refs(refs, CHUNK, sessions)) > 0)
		sessions += n;
	free(refs);
	return json_pack("{s:i, s:I, s:i, s:I, s:I}",
			 "connections", iscsi_conn_count(),
			 "sessions", (json_int_t)sessions,
			 "tasks", iscsi_task_count(),
			 "fds", (json_int_t)count_fds(),
			 "rss_kib", (json_int_t)rss_kib());
}

/* issue 20: live counters, docs/control-api.md "Statistics" */
json_t *m_stats_get(json_t *p, struct rpc_error *e)
{
	json_t *r;

	(void)p;
	r = ctl_stats_json();
	return r ? r : ops_fail(e, RPC_REFUSED, "out of memory");
}
