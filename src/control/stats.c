/* Live statistics (issue 20): counters summed from the data path's shards
 * (src/scsi per LU, src/iscsi per session and per target), as JSON for
 * `stats.get` and as Prometheus text for the metrics listener. Names
 * follow RFC 4544 (iSCSI MIB) where it has one. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/stats.h"
#include "iscsi/iscsi.h"
#include "iscsi/mgmt.h"
#include "scsi/scsi.h"

static const char *const sense_names[16] = {
	"NO_SENSE", "RECOVERED_ERROR", "NOT_READY", "MEDIUM_ERROR",
	"HARDWARE_ERROR", "ILLEGAL_REQUEST", "UNIT_ATTENTION", "DATA_PROTECT",
	"BLANK_CHECK", "VENDOR_SPECIFIC", "COPY_ABORTED", "ABORTED_COMMAND",
	"RESERVED_C", "VOLUME_OVERFLOW", "MISCOMPARE", "COMPLETED",
};
static const char *const dir_names[SCSI_IO_N] = { "read", "write", "other" };

static json_t *lat_json(const struct scsi_lu_stats *st, int k)
{
	json_t *b = json_array();
	uint64_t cum = 0;
	int i;

	for (i = 0; i < SCSI_LAT_BUCKETS; i++) {
		cum += st->lat[k][i];
		json_array_append_new(b, json_pack("[I, I]",
			i == SCSI_LAT_BUCKETS - 1 ? (json_int_t)-1 :
						    (json_int_t)(1ll << i),
			(json_int_t)cum));
	}
	return json_pack("{s:o, s:I, s:I}", "buckets_us", b,
			 "sum_us", (json_int_t)st->lat_sum_us[k],
			 "count", (json_int_t)cum);
}

static void lu_cb(struct scsi_lu *lu, void *arg)
{
	json_t *arr = arg, *sk = json_object(), *lat = json_object();
	struct scsi_lu_stats st;
	char so[96];
	int k;

	scsi_lu_stats_read(lu, &st);
	for (k = 0; k < 16; k++)
		json_object_set_new(sk, sense_names[k],
				    json_integer((json_int_t)st.sense_keys[k]));
	for (k = 0; k < SCSI_IO_N; k++)
		json_object_set_new(lat, dir_names[k], lat_json(&st, k));
	snprintf(so, sizeof(so), "%s/%s", lu->plugin, lu->name);
	json_array_append_new(arr, json_pack(
		"{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o}",
		"storage_object", so, "plugin", lu->plugin, "name", lu->name,
		"commands", (json_int_t)(st.cmds[0] + st.cmds[1] + st.cmds[2]),
		"read_commands", (json_int_t)st.cmds[SCSI_IO_READ],
		"write_commands", (json_int_t)st.cmds[SCSI_IO_WRITE],
		"other_commands", (json_int_t)st.cmds[SCSI_IO_OTHER],
		"read_bytes", (json_int_t)st.read_bytes,
		"write_bytes", (json_int_t)st.write_bytes,
		"errors", (json_int_t)st.errors,
		"task_management", (json_int_t)st.tmf,
		"sense_keys", sk, "latency", lat));
}

json_t *ctl_stats_json(void)
{
	enum { MAXS = 4096, MAXT = 256 };
	struct iscsi_sess_ref *refs = calloc(MAXS, sizeof(*refs));
	struct iscsi_tgt_stats *ts = calloc(MAXT, sizeof(*ts));
	json_t *sessions = json_array(), *targets = json_array();
	json_t *luns = json_array(), *inst;
	struct iscsi_tgt_stats sum = { .target = "" };
	size_t ns = 0, nt, i, j;

	if (!refs || !ts) {
		free(refs);
		free(ts);
		json_decref(sessions);
		json_decref(targets);
		json_decref(luns);
		return NULL;
	}
	ns = iscsi_session_refs(refs, MAXS, 0);
	nt = iscsi_stats_targets(ts, MAXT);
	for (i = 0; i < ns; i++) {
		const struct iscsi_sess_ref *r = &refs[i];

		json_array_append_new(sessions, json_pack(
			"{s:i, s:s, s:s, s:i, s:s, s:I, s:I, s:I, s:I, s:I, s:I}",
			"tsih", r->tsih, "initiator", r->initiator,
			"target", r->discovery ? "" : r->target, "tpg", r->tpgt,
			"type", r->discovery ? "Discovery" : "Normal",
			"cmd_pdus", (json_int_t)r->cmd_pdus,
			"rsp_pdus", (json_int_t)r->rsp_pdus,
			"tx_data_octets", (json_int_t)r->tx_data_octets,
			"rx_data_octets", (json_int_t)r->rx_data_octets,
			"digest_errors", (json_int_t)r->digest_errors,
			"task_management", (json_int_t)r->tmf));
	}
	for (i = 0; i < nt; i++) {
		const struct iscsi_tgt_stats *t = &ts[i];
		unsigned nsess = 0;

		for (j = 0; j < ns; j++)
			if (!strcmp(refs[j].discovery ? "" : refs[j].target,
				    t->target))
				nsess++;
		sum.login_accepts += t->login_accepts;
		sum.login_authenticate_fails += t->login_authenticate_fails;
		sum.login_authorize_fails += t->login_authorize_fails;
		sum.login_not_found += t->login_not_found;
		sum.login_other_fails += t->login_other_fails;
		sum.logout_normals += t->logout_normals;
		sum.logout_others += t->logout_others;
		sum.digest_errors += t->digest_errors;
		sum.session_failures += t->session_failures;
		json_array_append_new(targets, json_pack(
			"{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:i}",
			"target", t->target,
			"login_accepts", (json_int_t)t->login_accepts,
			"login_authenticate_fails",
			(json_int_t)t->login_authenticate_fails,
			"login_authorize_fails", (json_int_t)t->login_authorize_fails,
			"login_not_found", (json_int_t)t->login_not_found,
			"login_other_fails", (json_int_t)t->login_other_fails,
			"logout_normals", (json_int_t)t->logout_normals,
			"logout_others", (json_int_t)t->logout_others,
			"digest_errors", (json_int_t)t->digest_errors,
			"session_failures", (json_int_t)t->session_failures,
			"sessions", nsess, "connections", nsess));
	}
	scsi_lu_foreach(lu_cb, luns);
	inst = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i}",
		"login_accepts", (json_int_t)sum.login_accepts,
		"login_authenticate_fails", (json_int_t)sum.login_authenticate_fails,
		"login_authorize_fails", (json_int_t)sum.login_authorize_fails,
		"login_not_found", (json_int_t)sum.login_not_found,
		"login_other_fails", (json_int_t)sum.login_other_fails,
		"logout_normals", (json_int_t)sum.logout_normals,
		"logout_others", (json_int_t)sum.logout_others,
		"digest_errors", (json_int_t)sum.digest_errors,
		"session_failures", (json_int_t)sum.session_failures,
		"sessions", (json_int_t)ns, "connections", iscsi_conn_count());
	free(refs);
	free(ts);
	return json_pack("{s:o, s:o, s:o, s:o}", "instance", inst,
			 "targets", targets, "luns", luns, "sessions", sessions);
}

/* ---- Prometheus text exposition (format 0.0.4) ---- */

struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL,
			      b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = (b->cap ? b->cap * 2 : 65536) + (size_t)n;
			char *np = realloc(b->p, cap);

			if (!np) {
				b->oom = true;
				return;
			}
			b->p = np;
			b->cap = cap;
		}
	}
}

/* A label value: backslash, double quote and newline escaped. Names come
 * from the configuration and from initiators (target names asked for at
 * login never reach here: those count under ""). */
static const char *esc(const char *s, char *out, size_t n)
{
	size_t o = 0;

	for (; *s && o + 3 < n; s++) {
		if (*s == '\\' || *s == '"') {
			out[o++] = '\\';
			out[o++] = *s;
		} else if (*s == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *s;
		}
	}
	out[o] = 0;
	return out;
}

static void head(struct buf *b, const char *name, const char *type,
		 const char *help)
{
	put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static json_int_t ji(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static void lun_counter(struct buf *b, json_t *luns, const char *name,
			const char *help, const char *key)
{
	size_t i;
	json_t *l;
	char e1[256], e2[256];

	head(b, name, "counter", help);
	json_array_foreach(luns, i, l)
		put(b, "%s{backstore=\"%s\",name=\"%s\"} %lld\n", name,
		    esc(json_string_value(json_object_get(l, "plugin")), e1, sizeof(e1)),
		    esc(json_string_value(json_object_get(l, "name")), e2, sizeof(e2)),
		    (long long)ji(l, key));
}

static void tgt_metric(struct buf *b, json_t *tg, const char *name,
		       const char *type, const char *help, const char *key)
{
	size_t i;
	json_t *t;
	char e[1024];

	head(b, name, type, help);
	json_array_foreach(tg, i, t)
		put(b, "%s{target=\"%s\"} %lld\n", name,
		    esc(json_string_value(json_object_get(t, "target")), e, sizeof(e)),
		    (long long)ji(t, key));
}

char *ctl_metrics_text(size_t *len)
{
	json_t *doc = ctl_stats_json(), *luns, *tg, *l, *t, *inst;
	struct buf b = { 0 };
	char e1[256], e2[256], e3[1024];
	size_t i;
	int k, n;

	if (!doc)
		return NULL;
	luns = json_object_get(doc, "luns");
	tg = json_object_get(doc, "targets");
	inst = json_object_get(doc, "instance");

	lun_counter(&b, luns, "utarget_lun_read_bytes_total",
		    "Bytes read by READ commands that succeeded.", "read_bytes");
	lun_counter(&b, luns, "utarget_lun_write_bytes_total",
		    "Bytes written by WRITE commands that succeeded.", "write_bytes");
	lun_counter(&b, luns, "utarget_lun_errors_total",
		    "Commands that ended with a status other than GOOD.", "errors");
	lun_counter(&b, luns, "utarget_lun_task_management_total",
		    "Task management functions addressed to the LUN.",
		    "task_management");
	head(&b, "utarget_lun_commands_total", "counter",
	     "SCSI commands executed, by direction (read/write move blocks).");
	json_array_foreach(luns, i, l)
		for (k = 0; k < SCSI_IO_N; k++) {
			char key[32];

			snprintf(key, sizeof(key), "%s_commands", dir_names[k]);
			put(&b, "utarget_lun_commands_total{backstore=\"%s\",name=\"%s\",direction=\"%s\"} %lld\n",
			    esc(json_string_value(json_object_get(l, "plugin")), e1, sizeof(e1)),
			    esc(json_string_value(json_object_get(l, "name")), e2, sizeof(e2)),
			    dir_names[k], (long long)ji(l, key));
		}
	head(&b, "utarget_lun_check_conditions_total", "counter",
	     "CHECK CONDITION status, by sense key.");
	json_array_foreach(luns, i, l) {
		json_t *sk = json_object_get(l, "sense_keys");

		for (k = 0; k < 16; k++) {
			json_int_t v = json_integer_value(
				json_object_get(sk, sense_names[k]));

			if (!v)
				continue;
			put(&b, "utarget_lun_check_conditions_total{backstore=\"%s\",name=\"%s\",sense_key=\"%s\"} %lld\n",
			    esc(json_string_value(json_object_get(l, "plugin")), e1, sizeof(e1)),
			    esc(json_string_value(json_object_get(l, "name")), e2, sizeof(e2)),
			    sense_names[k], (long long)v);
		}
	}
	head(&b, "utarget_lun_latency_seconds", "histogram",
	     "Command latency from execution to completion, by direction.");
	json_array_foreach(luns, i, l) {
		esc(json_string_value(json_object_get(l, "plugin")), e1, sizeof(e1));
		esc(json_string_value(json_object_get(l, "name")), e2, sizeof(e2));
		for (k = 0; k < SCSI_IO_N; k++) {
			json_t *h = json_object_get(json_object_get(l, "latency"),
						    dir_names[k]);
			json_t *bk = json_object_get(h, "buckets_us");

			for (n = 0; n < (int)json_array_size(bk); n++) {
				json_t *p = json_array_get(bk, (size_t)n);
				json_int_t le = json_integer_value(json_array_get(p, 0));
				char les[32];

				if (le < 0)
					snprintf(les, sizeof(les), "+Inf");
				else
					snprintf(les, sizeof(les), "%.6g", (double)le / 1e6);
				put(&b, "utarget_lun_latency_seconds_bucket{backstore=\"%s\",name=\"%s\",direction=\"%s\",le=\"%s\"} %lld\n",
				    e1, e2, dir_names[k], les,
				    (long long)json_integer_value(json_array_get(p, 1)));
			}
			put(&b, "utarget_lun_latency_seconds_sum{backstore=\"%s\",name=\"%s\",direction=\"%s\"} %.6f\n",
			    e1, e2, dir_names[k], (double)ji(h, "sum_us") / 1e6);
			put(&b, "utarget_lun_latency_seconds_count{backstore=\"%s\",name=\"%s\",direction=\"%s\"} %lld\n",
			    e1, e2, dir_names[k], (long long)ji(h, "count"));
		}
	}
	head(&b, "utarget_logins_total", "counter",
	     "Logins by result (RFC 4544 iscsiTgtLoginStatsTable); target \"\": discovery, unknown targets.");
	json_array_foreach(tg, i, t) {
		static const char *const res[][2] = {
			{ "accepted", "login_accepts" },
			{ "authenticate_failed", "login_authenticate_fails" },
			{ "authorize_failed", "login_authorize_fails" },
			{ "target_not_found", "login_not_found" },
			{ "other_failure", "login_other_fails" },
		};

		esc(json_string_value(json_object_get(t, "target")), e3, sizeof(e3));
		for (k = 0; k < 5; k++)
			put(&b, "utarget_logins_total{target=\"%s\",result=\"%s\"} %lld\n",
			    e3, res[k][0], (long long)ji(t, res[k][1]));
	}
	head(&b, "utarget_logouts_total", "counter",
	     "Logout requests by reason (RFC 4544 iscsiTgtLogoutNormals / Others).");
	json_array_foreach(tg, i, t) {
		esc(json_string_value(json_object_get(t, "target")), e3, sizeof(e3));
		put(&b, "utarget_logouts_total{target=\"%s\",reason=\"normal\"} %lld\n",
		    e3, (long long)ji(t, "logout_normals"));
		put(&b, "utarget_logouts_total{target=\"%s\",reason=\"other\"} %lld\n",
		    e3, (long long)ji(t, "logout_others"));
	}
	tgt_metric(&b, tg, "utarget_digest_errors_total", "counter",
		   "Header or data digest errors (RFC 4544 iscsiInstSsnDigestErrors).",
		   "digest_errors");
	tgt_metric(&b, tg, "utarget_session_failures_total", "counter",
		   "Sessions that ended without a Logout (RFC 4544 iscsiInstSsnFailures).",
		   "session_failures");
	tgt_metric(&b, tg, "utarget_target_sessions", "gauge",
		   "Sessions logged in to the target now.", "sessions");
	head(&b, "utarget_sessions", "gauge", "Sessions logged in now (Normal and Discovery).");
	put(&b, "utarget_sessions %lld\n", (long long)ji(inst, "sessions"));
	head(&b, "utarget_connections", "gauge",
	     "iSCSI connections alive now (logging in or logged in).");
	put(&b, "utarget_connections %lld\n", (long long)ji(inst, "connections"));
	json_decref(doc);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	if (!b.p)
		put(&b, "%s", "");
	*len = b.len;
	return b.p;
}
