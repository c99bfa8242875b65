/* Live statistics (issue 20): counters summed from the data path's shards
 * (src/scsi per LU, src/iscsi per session and per target), as JSON for
 * `stats.get` and as Prometheus text for the metrics listener. Names
 * follow RFC 4544 (iSCSI MIB) where it has one. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/stats.h"
#include "iscsi/iscsi.h"
#include "iscsi/mgmt.h"
#include "iscsi/target.h"
#include "scsi/scsi.h"

static const char *const sense_names[16] = {
	"NO_SENSE", "RECOVERED_ERROR", "NOT_READY", "MEDIUM_ERROR",
	"HARDWARE_ERROR", "ILLEGAL_REQUEST", "UNIT_ATTENTION", "DATA_PROTECT",
	"BLANK_CHECK", "VENDOR_SPECIFIC", "COPY_ABORTED", "ABORTED_COMMAND",
	"RESERVED_C", "VOLUME_OVERFLOW", "MISCOMPARE", "COMPLETED",
};
static const char *const dir_names[SCSI_IO_N] = { "read", "write", "other" };

/* Adds x's members to o and drops x. */
static json_t *merge(json_t *o, json_t *x)
{
	json_object_update(o, x);
	json_decref(x);
	return o;
}

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

/* The I/O counters of a storage object, a LUN or a session, added to o
 * (lu: the storage object's names, NULL for a session). */
static json_t *io_json(json_t *o, const struct scsi_lu *lu,
		       const struct scsi_lu_stats *st)
{
	json_t *sk = json_object(), *lat = json_object();
	int k;

	for (k = 0; k < 16; k++)
		json_object_set_new(sk, sense_names[k],
				    json_integer((json_int_t)st->sense_keys[k]));
	for (k = 0; k < SCSI_IO_N; k++)
		json_object_set_new(lat, dir_names[k], lat_json(st, k));
	if (lu) {
		char so[96];

		snprintf(so, sizeof(so), "%s/%s", lu->plugin, lu->name);
		merge(o, json_pack("{s:s, s:s, s:s}", "storage_object", so,
				   "plugin", lu->plugin, "name", lu->name));
	}
	return merge(o, json_pack(
		"{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o}",
		"commands", (json_int_t)(st->cmds[0] + st->cmds[1] + st->cmds[2]),
		"read_commands", (json_int_t)st->cmds[SCSI_IO_READ],
		"write_commands", (json_int_t)st->cmds[SCSI_IO_WRITE],
		"other_commands", (json_int_t)st->cmds[SCSI_IO_OTHER],
		"read_bytes", (json_int_t)st->read_bytes,
		"write_bytes", (json_int_t)st->write_bytes,
		"errors", (json_int_t)st->errors,
		"task_management", (json_int_t)st->tmf,
		"sense_keys", sk, "latency", lat));
}

static void lu_cb(struct scsi_lu *lu, void *arg)
{
	struct scsi_lu_stats st;

	scsi_lu_stats_read(lu, &st);
	json_array_append_new(arg, io_json(json_object(), lu, &st));
}

/* Every TPG LUN (LIO's se_lun, the LU seen through one target port):
 * the commands that came through it. Caller holds iscsi_fabric.lock. */
static json_t *tpg_luns_json(void)
{
	json_t *arr = json_array();
	struct iscsi_target *t;
	struct iscsi_tpg *tpg;
	struct iscsi_tpg_lun *l;

	list_for_each_entry(t, &iscsi_fabric.targets, link)
		list_for_each_entry(tpg, &t->tpgs, link)
			list_for_each_entry(l, &tpg->luns, link) {
				struct scsi_lu_stats st;

				scsi_port_stats_read(l->alua, &st);
				json_array_append_new(arr, io_json(json_pack(
					"{s:s, s:i, s:I}", "target", t->wwn,
					"tpg", tpg->tag, "lun",
					(json_int_t)l->index), l->lu, &st));
			}
	return arr;
}

static json_t *login_json(json_t *o, const struct iscsi_login_counts *c)
{
	return merge(o, json_pack("{s:I, s:I, s:I, s:I, s:I}",
		"login_accepts", (json_int_t)c->accepts,
		"login_authenticate_fails", (json_int_t)c->authenticate_fails,
		"login_authorize_fails", (json_int_t)c->authorize_fails,
		"login_not_found", (json_int_t)c->not_found,
		"login_other_fails", (json_int_t)c->other_fails));
}

json_t *ctl_stats_json(void)
{
	enum { MAXS = 4096, MAXT = 256 };
	struct iscsi_sess_ref *refs = calloc(MAXS, sizeof(*refs));
	struct iscsi_tgt_stats *ts = calloc(MAXT, sizeof(*ts));
	struct iscsi_portal_stats *ps = calloc(ISCSI_PORTAL_STATS_MAX,
					       sizeof(*ps));
	json_t *sessions, *targets, *portals, *sos, *inst;
	struct iscsi_tgt_stats sum = { .target = "" };
	size_t ns = 0, nt, np, i, j;

	if (!refs || !ts || !ps) {
		free(refs);
		free(ts);
		free(ps);
		return NULL;
	}
	sessions = json_array();
	targets = json_array();
	portals = json_array();
	sos = json_array();
	ns = iscsi_session_refs(refs, MAXS, 0);
	nt = iscsi_stats_targets(ts, MAXT);
	np = iscsi_stats_portals(ps, ISCSI_PORTAL_STATS_MAX);
	for (i = 0; i < ns; i++) {
		const struct iscsi_sess_ref *r = &refs[i];

		/* the session's SCSI counters under "io" (its
		 * task_management there counts the TMFs on a mapped LUN,
		 * the one above every TMF request) */
		json_array_append_new(sessions, json_pack(
			"{s:i, s:s, s:s, s:i, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
			"tsih", r->tsih, "initiator", r->initiator,
			"target", r->discovery ? "" : r->target, "tpg", r->tpgt,
			"type", r->discovery ? "Discovery" : "Normal",
			"cmd_pdus", (json_int_t)r->cmd_pdus,
			"rsp_pdus", (json_int_t)r->rsp_pdus,
			"tx_data_octets", (json_int_t)r->tx_data_octets,
			"rx_data_octets", (json_int_t)r->rx_data_octets,
			"digest_errors", (json_int_t)r->digest_errors,
			"task_management", (json_int_t)r->tmf,
			"io", io_json(json_object(), NULL, &r->io)));
	}
	for (i = 0; i < nt; i++) {
		const struct iscsi_tgt_stats *t = &ts[i];
		unsigned nsess = 0;

		for (j = 0; j < ns; j++)
			if (!strcmp(refs[j].discovery ? "" : refs[j].target,
				    t->target))
				nsess++;
		sum.login.accepts += t->login.accepts;
		sum.login.authenticate_fails += t->login.authenticate_fails;
		sum.login.authorize_fails += t->login.authorize_fails;
		sum.login.not_found += t->login.not_found;
		sum.login.other_fails += t->login.other_fails;
		sum.logout_normals += t->logout_normals;
		sum.logout_others += t->logout_others;
		sum.digest_errors += t->digest_errors;
		sum.session_failures += t->session_failures;
		/* one connection per session: MC/S is not offered */
		json_array_append_new(targets, login_json(json_pack(
			"{s:s, s:I, s:I, s:I, s:I, s:i, s:i}",
			"target", t->target,
			"logout_normals", (json_int_t)t->logout_normals,
			"logout_others", (json_int_t)t->logout_others,
			"digest_errors", (json_int_t)t->digest_errors,
			"session_failures", (json_int_t)t->session_failures,
			"sessions", nsess, "connections", nsess), &t->login));
	}
	for (i = 0; i < np; i++) {
		unsigned nsess = 0;

		/* s->local is written as the portal key is (login.c) */
		for (j = 0; j < ns; j++)
			if (!strcmp(refs[j].local, ps[i].portal))
				nsess++;
		json_array_append_new(portals, login_json(json_pack(
			"{s:s, s:i}", "portal", ps[i].portal, "sessions", nsess),
			&ps[i].login));
	}
	scsi_lu_foreach(lu_cb, sos);
	inst = login_json(json_pack("{s:I, s:I, s:I, s:I, s:I, s:i, s:b}",
		"logout_normals", (json_int_t)sum.logout_normals,
		"logout_others", (json_int_t)sum.logout_others,
		"digest_errors", (json_int_t)sum.digest_errors,
		"session_failures", (json_int_t)sum.session_failures,
		"sessions", (json_int_t)ns, "connections", iscsi_conn_count(),
		"io_counters", scsi_stats_enabled()), &sum.login);
	free(refs);
	free(ts);
	free(ps);
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "instance", inst,
			 "targets", targets, "portals", portals,
			 "storage_objects", sos, "luns", tpg_luns_json(),
			 "sessions", sessions);
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

static const char *js(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));

	return v ? v : "";
}

/* The label set of a storage object or LUN entry, without braces:
 * backstore="fileio",name="d" (plus target, tpg, lun for a LUN). */
static void io_labels(json_t *l, bool lun, char *out, size_t n)
{
	char e1[256], e2[256], e3[1024];

	esc(js(l, "plugin"), e1, sizeof(e1));
	esc(js(l, "name"), e2, sizeof(e2));
	if (lun)
		snprintf(out, n, "target=\"%s\",tpg=\"%lld\",lun=\"%lld\",backstore=\"%s\",name=\"%s\"",
			 esc(js(l, "target"), e3, sizeof(e3)),
			 (long long)ji(l, "tpg"), (long long)ji(l, "lun"), e1, e2);
	else
		snprintf(out, n, "backstore=\"%s\",name=\"%s\"", e1, e2);
}

/* One family of I/O metrics: fam is "utarget_lun" (per TPG LUN, the
 * commands through that target port) or "utarget_storage_object" (the
 * device's own, whatever port they came through). */
static void io_metrics(struct buf *b, json_t *arr, const char *fam, bool lun,
		       const char *what)
{
	static const struct { const char *name, *key, *help; } ctr[] = {
		{ "read_bytes_total", "read_bytes",
		  "Bytes read by READ commands that succeeded" },
		{ "write_bytes_total", "write_bytes",
		  "Bytes written by WRITE commands that succeeded" },
		{ "errors_total", "errors",
		  "Commands that ended with a status other than GOOD" },
		{ "task_management_total", "task_management",
		  "Task management functions addressed to the LUN" },
	};
	char lab[2048];
	size_t i, c;
	json_t *l;
	int k, n;

	for (c = 0; c < sizeof(ctr) / sizeof(ctr[0]); c++) {
		put(b, "# HELP %s_%s %s, %s.\n# TYPE %s_%s counter\n", fam,
		    ctr[c].name, ctr[c].help, what, fam, ctr[c].name);
		json_array_foreach(arr, i, l) {
			io_labels(l, lun, lab, sizeof(lab));
			put(b, "%s_%s{%s} %lld\n", fam, ctr[c].name, lab,
			    (long long)ji(l, ctr[c].key));
		}
	}
	put(b, "# HELP %s_commands_total SCSI commands executed by direction (read/write move blocks), %s.\n# TYPE %s_commands_total counter\n",
	    fam, what, fam);
	json_array_foreach(arr, i, l) {
		io_labels(l, lun, lab, sizeof(lab));
		for (k = 0; k < SCSI_IO_N; k++) {
			char key[32];

			snprintf(key, sizeof(key), "%s_commands", dir_names[k]);
			put(b, "%s_commands_total{%s,direction=\"%s\"} %lld\n",
			    fam, lab, dir_names[k], (long long)ji(l, key));
		}
	}
	put(b, "# HELP %s_check_conditions_total CHECK CONDITION status by sense key, %s.\n# TYPE %s_check_conditions_total counter\n",
	    fam, what, fam);
	json_array_foreach(arr, i, l) {
		json_t *sk = json_object_get(l, "sense_keys");

		io_labels(l, lun, lab, sizeof(lab));
		for (k = 0; k < 16; k++) {
			json_int_t v = ji(sk, sense_names[k]);

			if (v)
				put(b, "%s_check_conditions_total{%s,sense_key=\"%s\"} %lld\n",
				    fam, lab, sense_names[k], (long long)v);
		}
	}
	put(b, "# HELP %s_latency_seconds Command latency from execution to completion by direction, %s.\n# TYPE %s_latency_seconds histogram\n",
	    fam, what, fam);
	json_array_foreach(arr, i, l) {
		io_labels(l, lun, lab, sizeof(lab));
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
				put(b, "%s_latency_seconds_bucket{%s,direction=\"%s\",le=\"%s\"} %lld\n",
				    fam, lab, dir_names[k], les,
				    (long long)json_integer_value(json_array_get(p, 1)));
			}
			put(b, "%s_latency_seconds_sum{%s,direction=\"%s\"} %.6f\n",
			    fam, lab, dir_names[k], (double)ji(h, "sum_us") / 1e6);
			put(b, "%s_latency_seconds_count{%s,direction=\"%s\"} %lld\n",
			    fam, lab, dir_names[k], (long long)ji(h, "count"));
		}
	}
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
		    esc(js(t, "target"), e, sizeof(e)), (long long)ji(t, key));
}

static const char *const login_res[][2] = {
	{ "accepted", "login_accepts" },
	{ "authenticate_failed", "login_authenticate_fails" },
	{ "authorize_failed", "login_authorize_fails" },
	{ "target_not_found", "login_not_found" },
	{ "other_failure", "login_other_fails" },
};

char *ctl_metrics_text(size_t *len)
{
	json_t *doc, *tg, *pt, *t, *inst;
	struct buf b = { 0 };
	char e3[1024];
	size_t i;
	int k;

	pthread_mutex_lock(&iscsi_fabric.lock);
	doc = ctl_stats_json();
	pthread_mutex_unlock(&iscsi_fabric.lock);
	if (!doc)
		return NULL;
	tg = json_object_get(doc, "targets");
	pt = json_object_get(doc, "portals");
	inst = json_object_get(doc, "instance");

	io_metrics(&b, json_object_get(doc, "luns"), "utarget_lun", true,
		   "through this target port");
	io_metrics(&b, json_object_get(doc, "storage_objects"),
		   "utarget_storage_object", false, "through every port");
	head(&b, "utarget_logins_total", "counter",
	     "Logins by result (RFC 4544 iscsiTgtLoginStatsTable); target \"\": discovery, unknown targets.");
	json_array_foreach(tg, i, t) {
		esc(js(t, "target"), e3, sizeof(e3));
		for (k = 0; k < 5; k++)
			put(&b, "utarget_logins_total{target=\"%s\",result=\"%s\"} %lld\n",
			    e3, login_res[k][0], (long long)ji(t, login_res[k][1]));
	}
	head(&b, "utarget_portal_logins_total", "counter",
	     "Logins by result and by the network portal (address:port) the initiator reached.");
	json_array_foreach(pt, i, t) {
		esc(js(t, "portal"), e3, sizeof(e3));
		for (k = 0; k < 5; k++)
			put(&b, "utarget_portal_logins_total{portal=\"%s\",result=\"%s\"} %lld\n",
			    e3, login_res[k][0], (long long)ji(t, login_res[k][1]));
	}
	head(&b, "utarget_portal_sessions", "gauge",
	     "Sessions (Normal and Discovery) logged in through the network portal now.");
	json_array_foreach(pt, i, t)
		put(&b, "utarget_portal_sessions{portal=\"%s\"} %lld\n",
		    esc(js(t, "portal"), e3, sizeof(e3)), (long long)ji(t, "sessions"));
	head(&b, "utarget_logouts_total", "counter",
	     "Logout requests by reason (RFC 4544 iscsiTgtLogoutNormals / Others).");
	json_array_foreach(tg, i, t) {
		esc(js(t, "target"), e3, sizeof(e3));
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
