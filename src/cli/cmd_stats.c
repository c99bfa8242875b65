/* utargetcli commands: sessions and stats, with rates from two samples
 * of stats.get. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"

/* Rates (issue 20): two `stats.get` samples RATE_MS apart. */
#define RATE_MS 1000

static json_t *stats_sample(struct shell *sh)
{
	json_t *r = NULL;

	if (ut_call(sh->ut, "stats.get", NULL, &r))
		return NULL;
	return r;
}

static json_t *find_by(json_t *arr, const char *key, json_t *like)
{
	json_t *v;
	size_t i;

	json_array_foreach(arr, i, v)
		if (json_equal(json_object_get(v, key), json_object_get(like, key)))
			return v;
	return NULL;
}

static double dnum(json_t *a, json_t *b, const char *key)
{
	return (double)(json_num(b, key, 0) - (a ? json_num(a, key, 0) : 0));
}

/* Mean latency of every command (all directions) between two samples of
 * a counter set (a NULL: since it began). */
static void lat_all(json_t *a, json_t *b, char *out, size_t n)
{
	static const char *const dirs[] = { "read", "write", "other" };
	double sum = 0, cnt = 0;
	size_t i;

	for (i = 0; i < 3; i++) {
		json_t *ha = a ? json_object_get(json_object_get(a, "latency"), dirs[i]) : NULL;
		json_t *hb = json_object_get(json_object_get(b, "latency"), dirs[i]);

		sum += dnum(ha, hb, "sum_us");
		cnt += dnum(ha, hb, "count");
	}
	if (cnt > 0)
		snprintf(out, n, "%.0f us", sum / cnt);
	else
		snprintf(out, n, "-");
}

static void session_rates(json_t *s0, json_t *s1, json_t *s)
{
	json_t *a = find_by(json_object_get(s0, "sessions"), "tsih", s);
	json_t *b = find_by(json_object_get(s1, "sessions"), "tsih", s);
	double secs = RATE_MS / 1000.0;

	if (!b)
		return;
	char now[32], ever[32];

	lat_all(a ? json_object_get(a, "io") : NULL, json_object_get(b, "io"),
		now, sizeof(now));
	lat_all(NULL, json_object_get(b, "io"), ever, sizeof(ever));
	printf("    rates (last %.0f s): IOPS: %.0f  read: %.2f MB/s  write: %.2f MB/s"
	       "  mean latency: %s\n",
	       secs, dnum(a, b, "cmd_pdus") / secs,
	       dnum(a, b, "tx_data_octets") / secs / 1e6,
	       dnum(a, b, "rx_data_octets") / secs / 1e6, now);
	printf("    totals: commands: %lld  read bytes: %lld  write bytes: %lld  "
	       "mean latency: %s  digest errors: %lld\n", json_num(b, "cmd_pdus", 0),
	       json_num(b, "tx_data_octets", 0), json_num(b, "rx_data_octets", 0),
	       ever, json_num(b, "digest_errors", 0));
}

static int c_sessions(struct shell *sh, struct node *n, struct cli_args *a)
{
	json_t *s0 = NULL, *s1 = NULL;
	const char *action = a->v[0] ? a->v[0] : "list";
	json_t *ss, *s, *v;
	long sid = -1;
	size_t i, j, shown = 0;

	if (strcmp(action, "list") && strcmp(action, "detail"))
		return cli_error(sh, "action must be one of: list, detail");
	if (a->v[1]) {
		char *end;

		errno = 0;
		sid = strtol(a->v[1], &end, 10);
		if (!*a->v[1] || *end || errno || sid < 0)
			return cli_error(sh, "sid must be a number, '%s' given",
					 a->v[1]);
	}
	if (!strcmp(action, "detail")) {
		s0 = stats_sample(sh);
		if (s0 && json_array_size(json_object_get(s0, "sessions"))) {
			fflush(stdout);
			usleep(RATE_MS * 1000);
			s1 = stats_sample(sh);
		}
	}
	if (ut_sessions(sh->ut, &ss)) {
		json_decref(s0);
		json_decref(s1);
		return cli_ut_error(sh);
	}
	json_array_foreach(ss, i, s) {
		if (sid >= 0 && json_num(s, "sid", -1) != sid)
			continue;
		shown++;
		printf("alias: %s\tsid: %lld type: %s session-state: %s\n",
		       json_str(s, "alias") ?: "",
		       json_num(s, "sid", 0), json_str(s, "type") ?: "Normal",
		       json_str(s, "state") ?: "");
		if (strcmp(action, "detail"))
			continue;
		printf("    name: %s (%s)\n", json_str(s, "initiator") ?: "",
		       json_flag(s, "authenticated") ? "authenticated" :
						       "NOT AUTHENTICATED");
		json_array_foreach(json_object_get(s, "mapped_luns"), j, v) {
			const char *so = json_str(v, "storage_object") ?: "";

			if (!strncmp(so, "/backstores/", 12))
				so += 12;
			printf("    mapped-lun: %lld backstore: %s mode: %s\n",
			       json_num(v, "mapped_lun", 0), so,
			       json_flag(v, "write_protect") ? "r" : "rw");
		}
		json_array_foreach(json_object_get(s, "connections"), j, v)
			printf("    address: %s (TCP)  cid: %lld "
			       "connection-state: %s\n",
			       json_str(v, "address") ?: "",
			       json_num(v, "cid", 0),
			       json_str(v, "state") ?: "");
		{
			const char *k;
			json_t *pv;

			printf("    negotiated parameters:\n");
			json_object_foreach(json_object_get(s, "parameters"), k, pv) {
				if (json_is_string(pv))
					printf("        %s=%s\n", k, json_string_value(pv));
				else
					printf("        %s=%lld\n", k,
					       (long long)json_integer_value(pv));
			}
		}
		if (s1)
			session_rates(s0, s1, s);
	}
	json_decref(ss);
	json_decref(s0);
	json_decref(s1);
	if (!shown) {
		if (sid >= 0)
			return cli_error(sh, "no session found with sid %ld",
					 sid);
		printf("(no open sessions)\n");
	}
	return 0;
}

/* stats [storage_object]: per storage object totals, and rates and mean
 * latency over the last second (two samples of stats.get). */
static void lat_mean(json_t *a, json_t *b, const char *dir, char *out, size_t n)
{
	json_t *ha = json_object_get(json_object_get(a, "latency"), dir);
	json_t *hb = json_object_get(json_object_get(b, "latency"), dir);
	double c = dnum(ha, hb, "count");

	if (c > 0)
		snprintf(out, n, "%.0f us", dnum(ha, hb, "sum_us") / c);
	else
		snprintf(out, n, "-");
}

/* The entry of the same TPG LUN (target, tpg, lun) in an earlier sample. */
static json_t *lun_sample(json_t *arr, json_t *like)
{
	json_t *v;
	size_t i;

	json_array_foreach(arr, i, v)
		if (json_equal(json_object_get(v, "target"),
			       json_object_get(like, "target")) &&
		    json_equal(json_object_get(v, "tpg"), json_object_get(like, "tpg")) &&
		    json_equal(json_object_get(v, "lun"), json_object_get(like, "lun")))
			return v;
	return NULL;
}

static int c_stats(struct shell *sh, struct node *n, struct cli_args *a)
{
	json_t *s0 = stats_sample(sh), *s1, *l;
	double secs = RATE_MS / 1000.0;
	size_t i, shown = 0;

	(void)n;
	if (!s0)
		return cli_ut_error(sh);
	fflush(stdout);
	usleep(RATE_MS * 1000);
	s1 = stats_sample(sh);
	if (!s1) {
		json_decref(s0);
		return cli_ut_error(sh);
	}
	json_array_foreach(json_object_get(s1, "storage_objects"), i, l) {
		json_t *p = find_by(json_object_get(s0, "storage_objects"),
				    "storage_object", l);
		char lr[32], lw[32];
		json_t *tl;
		size_t j;

		if (a->v[0] && strcmp(a->v[0], json_str(l, "name") ?: "") &&
		    strcmp(a->v[0], json_str(l, "storage_object") ?: ""))
			continue;
		shown++;
		lat_mean(p, l, "read", lr, sizeof(lr));
		lat_mean(p, l, "write", lw, sizeof(lw));
		printf("%s: commands: %lld (read %lld, write %lld, other %lld)  "
		       "read: %lld bytes  written: %lld bytes  errors: %lld  "
		       "task management: %lld\n", json_str(l, "storage_object") ?: "",
		       json_num(l, "commands", 0), json_num(l, "read_commands", 0),
		       json_num(l, "write_commands", 0),
		       json_num(l, "other_commands", 0), json_num(l, "read_bytes", 0),
		       json_num(l, "write_bytes", 0), json_num(l, "errors", 0),
		       json_num(l, "task_management", 0));
		printf("    last %.0f s: IOPS: %.0f  read: %.2f MB/s  write: %.2f MB/s  "
		       "mean latency: read %s, write %s\n", secs,
		       dnum(p, l, "commands") / secs,
		       dnum(p, l, "read_bytes") / secs / 1e6,
		       dnum(p, l, "write_bytes") / secs / 1e6, lr, lw);
		/* the same through each TPG LUN that exports it */
		json_array_foreach(json_object_get(s1, "luns"), j, tl) {
			if (!json_equal(json_object_get(tl, "storage_object"),
					json_object_get(l, "storage_object")))
				continue;
			p = lun_sample(json_object_get(s0, "luns"), tl);
			printf("    /iscsi/%s/tpg%lld/luns/lun%lld: commands: %lld  "
			       "read: %lld bytes  written: %lld bytes  errors: %lld  "
			       "IOPS: %.0f\n", json_str(tl, "target") ?: "",
			       json_num(tl, "tpg", 0), json_num(tl, "lun", 0),
			       json_num(tl, "commands", 0),
			       json_num(tl, "read_bytes", 0),
			       json_num(tl, "write_bytes", 0),
			       json_num(tl, "errors", 0),
			       dnum(p, tl, "commands") / secs);
		}
	}
	json_decref(s0);
	json_decref(s1);
	if (!shown && a->v[0])
		return cli_error(sh, "no storage object named %s", a->v[0]);
	if (!shown)
		printf("(no storage objects)\n");
	return 0;
}

const struct command cli_cmds_stats[] = {
	{ "sessions", T(N_ROOT), NULL, SIG(0, "action", "sid"), c_sessions,
	  "Display the open sessions: sessions [list|detail] [sid]; detail adds\n"
	  "the negotiated parameters and the rates over the last second." },
	{ "stats", T(N_ROOT), NULL, SIG(0, "storage_object"), c_stats,
	  "Per storage object counters, IOPS, MB/s and mean latency over the\n"
	  "last second: stats [storage_object]." },
	{ NULL, 0, NULL, SIG(0, NULL), NULL, NULL }
};
