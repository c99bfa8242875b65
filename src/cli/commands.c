/* utargetcli commands: the table of what each node offers (targetcli-fb's
 * names, arguments and defaults), their implementations on top of
 * libutarget (get / set live in groups.c), and the line dispatcher. Messages are
 * targetcli's words (reference/lio-targetcli.md). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

typedef int (*cmd_fn)(struct shell *sh, struct node *n, struct cli_args *a);

struct command {
	const char *name;
	unsigned types;
	const char *plugin;	/* N_PLUGIN create: which plugin */
	struct cli_sig sig;
	cmd_fn fn;
	const char *desc;
};

static const struct command commands[];

/* ---- small helpers ------------------------------------------------------ */

static int bool_arg(struct shell *sh, const char *v, int dflt, int *out)
{
	if (!v) {
		*out = dflt;
		return 0;
	}
	*out = cli_parse_bool(v);
	if (*out < 0)
		return cli_error(sh, "Syntax error, '%s' is not true|false.", v);
	return 0;
}

/* "3", "lun3" (prefix) -> 3. */
static int index_arg(struct shell *sh, const char *v, const char *prefix,
		     const char *what, long max, long *out)
{
	char *end;
	size_t pl = prefix ? strlen(prefix) : 0;

	if (pl && !strncasecmp(v, prefix, pl))
		v += pl;
	errno = 0;
	*out = strtol(v, &end, 10);
	if (!*v || *end || errno || *out < 0 || *out > max)
		return cli_error(sh, "Invalid %s: %s", what, v);
	return 0;
}

/* Paths given to the daemon are resolved here: its cwd is not ours. */
static void abspath(const char *in, char *out, size_t len)
{
	const char *home = getenv("HOME");
	char cwd[PATH_MAX];

	if (in[0] == '/')
		snprintf(out, len, "%s", in);
	else if (in[0] == '~' && (in[1] == '/' || !in[1]) && home)
		snprintf(out, len, "%s%s", home, in + 1);
	else if (getcwd(cwd, sizeof(cwd))) {
		if (snprintf(out, len, "%s/%s", strcmp(cwd, "/") ? cwd : "",
			     in) >= (int)len)
			out[len - 1] = '\0';
	} else
		snprintf(out, len, "%s", in);
}

static void new_node(struct shell *sh, const char *path)
{
	json_t *bm = json_object_get(sh->prefs, "bookmarks");

	if (json_is_object(bm))
		json_object_set_new(bm, "last", json_string(path));
	if (pref_bool(sh, "auto_cd_after_create")) {
		cli_info(sh, "Entering new node %s", path);
		snprintf(sh->pending_cd, sizeof(sh->pending_cd), "%s", path);
	}
}

json_t *cli_describe(struct shell *sh, const char *kind)
{
	json_t *t = json_object_get(sh->describe, kind);

	if (t)
		return json_is_array(t) ? t : NULL;
	if (ut_describe(sh->ut, kind, &t))
		t = json_null();
	json_object_set_new(sh->describe, kind, t);
	return json_is_array(t) ? t : NULL;
}

/* ---- navigation --------------------------------------------------------- */

static void history_push(struct shell *sh, const char *path)
{
	json_t *h = pref(sh, "path_history");
	size_t idx = (size_t)pref_num(sh, "path_history_index");

	if (!json_is_array(h) || !json_array_size(h)) {
		h = json_pack("[s]", sh->cwd);
		json_object_set_new(sh->prefs, "path_history", h);
		idx = 0;
	}
	if (idx >= json_array_size(h))
		idx = json_array_size(h) - 1;
	if (!strcmp(json_string_value(json_array_get(h, idx)) ?: "", path))
		return;
	while (json_array_size(h) > idx + 1)
		json_array_remove(h, json_array_size(h) - 1);
	json_array_append_new(h, json_string(path));
	/* Bounded: the history lives in prefs.json. */
	while (json_array_size(h) > 100)
		json_array_remove(h, 0);
	json_object_set_new(sh->prefs, "path_history_index",
			    json_integer((json_int_t)json_array_size(h) - 1));
}

static int do_cd(struct shell *sh, struct node *n, const char *path)
{
	char err[512];
	struct node *t;
	json_t *h = pref(sh, "path_history");
	long idx = (long)pref_num(sh, "path_history_index");

	if (path && (!strcmp(path, "<") || !strcmp(path, ">"))) {
		bool back = path[0] == '<';
		long size = json_is_array(h) ? (long)json_array_size(h) : 0;

		if (back ? idx <= 0 || size == 0 : idx >= size - 1) {
			cli_info(sh, back ? "Reached begining of path history."
					  : "Reached the end of path history.");
			return 0;
		}
		for (;;) {
			idx += back ? -1 : 1;
			if (idx < 0 || idx >= size) {
				idx = back ? 0 : size - 1;
				t = back ? sh->root : n;
				break;
			}
			t = tree_lookup(sh, sh->root,
					json_string_value(json_array_get(h,
							  (size_t)idx)),
					err, sizeof(err));
			if (t)
				break;
		}
		json_object_set_new(sh->prefs, "path_history_index",
				    json_integer(idx));
		cli_info(sh, "Taking you back to %s.", t->path);
		snprintf(sh->cwd, sizeof(sh->cwd), "%s", t->path);
		return 0;
	}
	if (!path)
		path = "/";
	t = tree_lookup(sh, n, path, err, sizeof(err));
	if (!t)
		return cli_error(sh, "%s", err);
	history_push(sh, t->path);
	snprintf(sh->cwd, sizeof(sh->cwd), "%s", t->path);
	return 0;
}

static int c_cd(struct shell *sh, struct node *n, struct cli_args *a)
{
	return do_cd(sh, n, a->v[0]);
}

static int c_ls(struct shell *sh, struct node *n, struct cli_args *a)
{
	char err[512];
	struct node *t = tree_lookup(sh, n, a->v[0], err, sizeof(err));
	long long depth = pref_num(sh, "tree_max_depth");

	if (!t)
		return cli_error(sh, "%s", err);
	if (a->v[1]) {
		char *end;

		depth = strtoll(a->v[1], &end, 10);
		if (!*a->v[1] || *end)
			return cli_error(sh, "The tree depth must be a number.");
	}
	render_tree(sh, t, depth <= 0 ? -1 : (int)depth);
	return 0;
}

static int c_pwd(struct shell *sh, struct node *n, struct cli_args *a)
{
	printf("%s\n", n->path);
	return 0;
}

static int c_exit(struct shell *sh, struct node *n, struct cli_args *a)
{
	sh->exit = true;
	return 0;
}

static int c_refresh(struct shell *sh, struct node *n, struct cli_args *a)
{
	sh->changed = true;
	return 0;
}

static int c_status(struct shell *sh, struct node *n, struct cli_args *a)
{
	char d[1024];
	int h;

	node_summary(sh, n, d, sizeof(d), &h);
	cli_info(sh, "Status for %s: %s", n->path, d);
	return 0;
}

static int c_bookmarks(struct shell *sh, struct node *n, struct cli_args *a)
{
	const char *act = a->v[0], *bm = a->v[1];
	json_t *b = json_object_get(sh->prefs, "bookmarks"), *v;
	const char *k;

	if (!json_is_object(b)) {
		b = json_object();
		json_object_set_new(sh->prefs, "bookmarks", b);
	}
	if (!strcmp(act, "add") && bm) {
		if (json_object_get(b, bm))
			return cli_error(sh, "Bookmark %s already exists.", bm);
		json_object_set_new(b, bm, json_string(n->path));
		prefs_save(sh);
		cli_info(sh, "Bookmarked %s as %s.", n->path, bm);
	} else if (!strcmp(act, "del") && bm) {
		if (!json_object_get(b, bm))
			return cli_error(sh, "No such bookmark %s.", bm);
		json_object_del(b, bm);
		prefs_save(sh);
		cli_info(sh, "Deleted bookmark %s.", bm);
	} else if (!strcmp(act, "go") && bm) {
		if (!json_is_string(json_object_get(b, bm)))
			return cli_error(sh, "No such bookmark %s.", bm);
		return do_cd(sh, n, json_string_value(json_object_get(b, bm)));
	} else if (!strcmp(act, "show")) {
		printf("BOOKMARKS\n=========\n\n");
		if (!json_object_size(b))
			printf("No bookmarks yet.\n");
		json_object_foreach(b, k, v) {
			size_t l = strlen(k);

			printf("%s\n", k);
			while (l--)
				putchar('-');
			printf("\n%s\n\n", json_string_value(v) ?: "");
		}
	} else {
		return cli_error(sh, "Syntax error, see 'help bookmarks'.");
	}
	return 0;
}

/* ---- help, info, version ------------------------------------------------- */

static void syntax(const struct command *c, char *buf, size_t len)
{
	size_t o;
	int np = 0;

	snprintf(buf, len, "%s ", c->name);
	while (np < CLI_MAX_PARAMS && c->sig.params[np])
		np++;
	for (int i = 0; i < np; i++) {
		o = strlen(buf);
		snprintf(buf + o, len - o, i < c->sig.nreq ? "%s " : "[%s] ",
			 c->sig.params[i]);
	}
	o = strlen(buf);
	if (c->sig.varargs)
		snprintf(buf + o, len - o, "[%s...] ",
			 !strcmp(c->name, "get") ? "parameter" : "args");
	o = strlen(buf);
	if (c->sig.kwargs)
		snprintf(buf + o, len - o, "[parameter=value...] ");
}

static bool cmd_on(const struct command *c, struct node *n)
{
	return (c->types & T(n->type)) &&
	       (!c->plugin || (n->plugin && !strcmp(c->plugin, n->plugin)));
}

static int cmd_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct command *const *)a)->name,
		      (*(const struct command *const *)b)->name);
}

static size_t node_commands(struct node *n, const struct command **out,
			    size_t max)
{
	size_t k = 0;

	for (const struct command *c = commands; c->name && k < max; c++)
		if (cmd_on(c, n))
			out[k++] = c;
	qsort(out, k, sizeof(*out), cmd_cmp);
	return k;
}

size_t cmd_names(struct node *n, const char **out, size_t max)
{
	const struct command *cs[64];
	size_t k = node_commands(n, cs, max < 64 ? max : 64);

	for (size_t i = 0; i < k; i++)
		out[i] = cs[i]->name;
	return k;
}

const struct command *cmd_find(struct node *n, const char *name)
{
	for (const struct command *c = commands; c->name; c++)
		if (cmd_on(c, n) && !strcmp(c->name, name))
			return c;
	return NULL;
}

const struct cli_sig *cmd_sig(const struct command *c)
{
	return &c->sig;
}

const char *cmd_name(const struct command *c)
{
	return c->name;
}

static int c_help(struct shell *sh, struct node *n, struct cli_args *a)
{
	const struct command *cs[64];
	size_t k = node_commands(n, cs, 64);
	char buf[512];

	if (!a->v[0]) {
		printf("GENERALITIES\n============\n"
		       "This is a shell in which you can create, delete and "
		       "configure\nconfiguration objects of utargetd, the "
		       "userspace iSCSI target.\n\n"
		       "The available commands depend on the current path or "
		       "target path\nyou want to run a command in. The prompt "
		       "shows the current path;\n'pwd' displays it in full, "
		       "'cd' moves, 'ls' shows the tree.\n\n"
		       "COMMAND SYNTAX\n==============\n"
		       "[TARGET_PATH] COMMAND_NAME [OPTIONS]\n\n"
		       "Options are positional, or keyword=value in any "
		       "order.\n\n"
		       "AVAILABLE COMMANDS\n==================\n"
		       "The following commands are available in the\n"
		       "current path:\n\n");
		for (size_t i = 0; i < k; i++) {
			syntax(cs[i], buf, sizeof(buf));
			printf("  - %s\n", buf);
		}
		return 0;
	}
	for (size_t i = 0; i < k; i++) {
		if (strcmp(cs[i]->name, a->v[0]))
			continue;
		syntax(cs[i], buf, sizeof(buf));
		printf("SYNTAX\n======\n%s\n\nDESCRIPTION\n===========\n%s\n",
		       buf, cs[i]->desc);
		return 0;
	}
	return cli_error(sh, "Cannot find help topic %s.", a->v[0]);
}

static int c_version(struct shell *sh, struct node *n, struct cli_args *a)
{
	printf("utargetcli version %s\n", UTARGETCLI_VERSION);
	return 0;
}

static int c_info(struct shell *sh, struct node *n, struct cli_args *a)
{
	char d[1024];
	int h;
	char *ver = NULL;

	switch (n->type) {
	case N_ROOT:
		if (ut_version(sh->ut, &ver))
			return cli_ut_error(sh);
		cli_info(sh, "utargetcli version: %s", UTARGETCLI_VERSION);
		cli_info(sh, "utargetd version: %s", ver);
		cli_info(sh, "Control socket: %s", ut_socket_path(sh->ut));
		cli_info(sh, "Preferences: %s/prefs.json", sh->home);
		free(ver);
		return 0;
	case N_ISCSI:
		/* The wiki's `iscsi/ info` lines; what LIO keeps in configfs
		 * and a spec file, utargetd keeps in its own model behind
		 * the control socket. */
		cli_info(sh, "Fabric module name: iscsi");
		cli_info(sh, "Configuration held by: utargetd, control socket "
			     "%s (no ConfigFS)", ut_socket_path(sh->ut));
		cli_info(sh, "Allowed WWNs list type: iqn");
		cli_info(sh, "Also accepted as target names: naa, eui "
			     "(RFC 7143 4.2.7)");
		cli_info(sh, "Fabric module features: discovery_auth, acls, "
			     "acls_auth, nps, tpgts");
		cli_info(sh, "Corresponding kernel module: none (userspace: "
			     "utargetd)");
		return 0;
	case N_SO: {
		json_t *o = n->obj;

		cli_info(sh, "Storage object: %s/%s", n->plugin, n->so_name);
		if (json_str(o, "dev"))
			cli_info(sh, "Device: %s", json_str(o, "dev"));
		cli_info(sh, "Size: %lld bytes", json_num(o, "size", 0));
		if (json_str(o, "wwn"))
			cli_info(sh, "Unit serial: %s", json_str(o, "wwn"));
		break;
	}
	case N_TARGET:
		cli_info(sh, "WWN: %s", n->wwn);
		break;
	case N_TPG:
		cli_info(sh, "Target: %s", n->wwn);
		cli_info(sh, "TPG tag: %u", n->tag);
		cli_info(sh, "Enabled: %s",
			 json_flag(n->obj, "enable") ? "true" : "false");
		break;
	case N_ACL:
		cli_info(sh, "Initiator: %s", n->node_wwn);
		if (json_str(n->obj, "tag"))
			cli_info(sh, "Tag: %s", json_str(n->obj, "tag"));
		break;
	default:
		break;
	}
	node_summary(sh, n, d, sizeof(d), &h);
	cli_info(sh, "Path: %s", n->path);
	cli_info(sh, "Status: %s", d[0] ? d : "n/a");
	return 0;
}

/* ---- root: save / restore / clear / sessions ----------------------------- */

/* The "changes" of save_config / restore_config, a line per object:
 * "Added /iscsi/...", "Removed ...", "Changed ...". */
static void print_changes(struct shell *sh, json_t *changes)
{
	static const char *const kinds[][2] = {
		{ "added", "Added" }, { "removed", "Removed" },
		{ "changed", "Changed" },
	};
	json_t *v;
	size_t i;

	for (size_t k = 0; k < 3; k++)
		json_array_foreach(json_object_get(changes, kinds[k][0]), i, v)
			cli_info(sh, "%s %s", kinds[k][1],
				 json_string_value(v) ?: "");
}

static int c_saveconfig(struct shell *sh, struct node *n, struct cli_args *a)
{
	char file[PATH_MAX], *end;
	json_t *r, *p, *mb = pref(sh, "max_backup_files");
	long long keep = 10;
	int ret;

	if (a->v[0])
		abspath(a->v[0], file, sizeof(file));
	/* The global max_backup_files (a string, as in targetcli) goes to
	 * the daemon, which keeps that many backups beside the file. */
	if (json_is_integer(mb)) {
		keep = json_integer_value(mb);
	} else if (json_is_string(mb)) {
		errno = 0;
		keep = strtoll(json_string_value(mb), &end, 10);
		if (errno || end == json_string_value(mb) || *end)
			keep = -1;
	}
	if (keep < 0 || keep > 1000)
		return cli_error(sh, "Invalid global max_backup_files: expected "
				 "a number from 0 to 1000");
	p = json_pack("{s:I}", "max_backup_files", (json_int_t)keep);
	if (a->v[0])
		json_object_set_new(p, "file", json_string(file));
	ret = ut_call(sh->ut, "save_config", p, &r);
	json_decref(p);
	if (ret)
		return cli_ut_error(sh);
	if (json_str(r, "backup_dir"))
		cli_info(sh, "Last %lld configs saved in %s.",
			 json_num(r, "backups_kept", keep),
			 json_str(r, "backup_dir"));
	cli_info(sh, "Configuration saved to %s",
		 json_str(r, "file") ? json_str(r, "file") : file);
	/* what the save changed in a file that was there: on a first save
	 * everything would be "added", which says nothing */
	if (json_is_true(json_object_get(r, "replaced")))
		print_changes(sh, json_object_get(r, "changes"));
	json_decref(r);
	return 0;
}

static int c_restoreconfig(struct shell *sh, struct node *n,
			   struct cli_args *a)
{
	char file[PATH_MAX];
	json_t *r, *errs, *e;
	int clear;
	size_t i;

	if (bool_arg(sh, a->v[1], 0, &clear))
		return -1;
	if (a->v[0]) {
		abspath(a->v[0], file, sizeof(file));
		if (access(file, R_OK))
			return cli_error(sh, "Restore file %s not found", file);
	}
	if (ut_restore_config_part(sh->ut, a->v[0] ? file : NULL, clear, false,
				   a->v[2], a->v[3], &r))
		return cli_ut_error(sh);
	sh->changed = true;
	errs = json_object_get(r, "errors");
	if (json_array_size(errs)) {
		cli_error(sh, "Configuration restored, %zu recoverable errors:",
			  json_array_size(errs));
		json_array_foreach(errs, i, e)
			cli_error(sh, "%s", json_string_value(e) ?: "");
		print_changes(sh, json_object_get(r, "changes"));
		json_decref(r);
		return -1;
	}
	cli_info(sh, "Configuration restored from %s",
		 a->v[0] ? file : "utargetd's configuration file");
	print_changes(sh, json_object_get(r, "changes"));
	json_decref(r);
	return 0;
}

static int c_clearconfig(struct shell *sh, struct node *n, struct cli_args *a)
{
	int confirm;

	if (bool_arg(sh, a->v[0], 0, &confirm))
		return -1;
	if (!confirm)
		return cli_error(sh, "As a precaution, confirm=True needs to "
				 "be set");
	if (ut_clear_config(sh->ut))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "All configuration cleared");
	return 0;
}

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

/* ---- backstores ----------------------------------------------------------- */

static void model_alias(struct shell *sh, const char *plugin, const char *name)
{
	/* targetcli: export_backstore_name_as_model sets emulate_model_alias
	 * so INQUIRY's product id is the object's name. */
	if (pref_bool(sh, "export_backstore_name_as_model"))
		ut_backstore_set_attribute(sh->ut, plugin, name,
					   "emulate_model_alias", 1);
}

static int so_created(struct shell *sh, const char *plugin, const char *name)
{
	char path[PATH_MAX];

	model_alias(sh, plugin, name);
	sh->changed = true;
	snprintf(path, sizeof(path), "/backstores/%s/%s", plugin, name);
	new_node(sh, path);
	return 0;
}

static int c_fileio_create(struct shell *sh, struct node *n,
			   struct cli_args *a)
{
	struct ut_so_spec s = { .plugin = "fileio", .name = a->v[0],
				.write_back = UT_DEFAULT,
				.sparse = UT_DEFAULT, .readonly = UT_DEFAULT,
				.nullio = UT_DEFAULT, .wwn = a->v[5] };
	char dev[PATH_MAX];
	long long size = 0;
	json_t *r;

	abspath(a->v[1], dev, sizeof(dev));
	s.dev = dev;
	if (a->v[2]) {
		size = cli_human_to_bytes(a->v[2]);
		if (size < 0)
			return cli_error(sh, "Cannot interpret size, wrong "
					 "format: %s", a->v[2]);
		s.size = (uint64_t)size;
	}
	if ((a->v[3] && bool_arg(sh, a->v[3], 1, &s.write_back)) ||
	    (a->v[4] && bool_arg(sh, a->v[4], 1, &s.sparse)))
		return -1;
	if (ut_backstore_create(sh->ut, &s, &r))
		return cli_ut_error(sh);
	cli_info(sh, "Created fileio %s with size %lld", a->v[0],
		 json_num(r, "size", size));
	json_decref(r);
	return so_created(sh, "fileio", a->v[0]);
}

static int c_block_create(struct shell *sh, struct node *n,
			  struct cli_args *a)
{
	struct ut_so_spec s = { .plugin = "block", .name = a->v[0],
				.write_back = UT_DEFAULT,
				.sparse = UT_DEFAULT, .readonly = UT_DEFAULT,
				.nullio = UT_DEFAULT, .wwn = a->v[3] };
	char dev[PATH_MAX];

	abspath(a->v[1], dev, sizeof(dev));
	s.dev = dev;
	if (a->v[2] && bool_arg(sh, a->v[2], 0, &s.readonly))
		return -1;
	if (ut_backstore_create(sh->ut, &s, NULL))
		return cli_ut_error(sh);
	cli_info(sh, "Created block storage object %s using %s.", a->v[0],
		 dev);
	return so_created(sh, "block", a->v[0]);
}

static int c_ramdisk_create(struct shell *sh, struct node *n,
			    struct cli_args *a)
{
	struct ut_so_spec s = { .plugin = "ramdisk", .name = a->v[0],
				.write_back = UT_DEFAULT,
				.sparse = UT_DEFAULT, .readonly = UT_DEFAULT,
				.nullio = UT_DEFAULT, .wwn = a->v[3] };
	long long size = cli_human_to_bytes(a->v[1]);

	if (size <= 0)
		return cli_error(sh, "Cannot interpret size, wrong format: %s",
				 a->v[1]);
	s.size = (uint64_t)size;
	if (a->v[2] && bool_arg(sh, a->v[2], 0, &s.nullio))
		return -1;
	if (ut_backstore_create(sh->ut, &s, NULL))
		return cli_ut_error(sh);
	cli_info(sh, "Created ramdisk %s with size %s.", a->v[0], a->v[1]);
	return so_created(sh, "ramdisk", a->v[0]);
}

static int c_pscsi_create(struct shell *sh, struct node *n,
			  struct cli_args *a)
{
	struct ut_so_spec s = { .plugin = "pscsi", .name = a->v[0],
				.dev = a->v[1], .write_back = UT_DEFAULT,
				.sparse = UT_DEFAULT, .readonly = UT_DEFAULT,
				.nullio = UT_DEFAULT };

	if (ut_backstore_create(sh->ut, &s, NULL))
		return cli_ut_error(sh);
	cli_info(sh, "Created pscsi storage object %s using %s", a->v[0],
		 a->v[1]);
	sh->changed = true;
	return 0;
}

/* targetcli-fb UIUserBackedBackstore.ui_command_create(name, size,
 * cfgstring, wwn, ...): size is optional here (the image's size), and
 * create_image=true makes a missing image of that size. */
static int c_rbd_create(struct shell *sh, struct node *n, struct cli_args *a)
{
	struct ut_so_spec s = { .plugin = "user:rbd", .name = a->v[0],
				.write_back = UT_DEFAULT,
				.sparse = UT_DEFAULT, .readonly = UT_DEFAULT,
				.nullio = UT_DEFAULT, .wwn = a->v[3],
				.cfgstring = a->v[2], .create_image = UT_DEFAULT };
	long long size = 0;
	json_t *r;

	if (a->v[1] && a->v[1][0]) {
		size = cli_human_to_bytes(a->v[1]);
		if (size < 0)
			return cli_error(sh, "Cannot interpret size, wrong "
					 "format: %s", a->v[1]);
		s.size = (uint64_t)size;
	}
	if (!s.cfgstring)
		return cli_error(sh, "cfgstring must be given: "
				 "POOL/IMAGE[;conf=PATH][;id=USER][;osd_op_timeout=N][;ha=1]");
	if (a->v[4] && bool_arg(sh, a->v[4], 0, &s.create_image))
		return -1;
	if (ut_backstore_create(sh->ut, &s, &r))
		return cli_ut_error(sh);
	cli_info(sh, "Created user-backed storage object %s size %lld.",
		 a->v[0], json_num(r, "size", size));
	json_decref(r);
	return so_created(sh, "user:rbd", a->v[0]);
}

static int c_so_delete(struct shell *sh, struct node *n, struct cli_args *a)
{
	if (ut_backstore_delete(sh->ut, n->plugin, a->v[0]))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Deleted storage object %s.", a->v[0]);
	return 0;
}

/* resize [size] [force]: beyond targetcli (LIO cannot resize a storage
 * object live). Without a size a block device's new size is taken. */
static int c_so_resize(struct shell *sh, struct node *n, struct cli_args *a)
{
	long long size = 0;
	int force = 0;
	uint64_t was, now;

	if (a->v[0]) {
		size = cli_human_to_bytes(a->v[0]);
		if (size <= 0)
			return cli_error(sh, "Cannot interpret size, wrong "
					 "format: %s", a->v[0]);
	}
	if (a->v[1] && bool_arg(sh, a->v[1], 0, &force))
		return -1;
	if (ut_backstore_resize(sh->ut, n->plugin, n->so_name,
				(uint64_t)size, force, &was, &now))
		return cli_ut_error(sh);
	sh->changed = true;
	if (was == now)
		cli_info(sh, "Storage object %s keeps its size of %llu bytes.",
			 n->so_name, (unsigned long long)now);
	else
		cli_info(sh, "Resized storage object %s from %llu to %llu "
			 "bytes.", n->so_name, (unsigned long long)was,
			 (unsigned long long)now);
	return 0;
}

/* ---- ALUA groups (/backstores/TYPE/NAME/alua) ------------------------------ */

/* UIALUATargetPortGroups.ui_command_create / _delete. */
static int c_alua_create(struct shell *sh, struct node *n, struct cli_args *a)
{
	char *end;
	long tag = strtol(a->v[1], &end, 10);
	json_t *p, *r = NULL;
	int ret;

	if (*end || end == a->v[1] || tag < 1 || tag > 65535)
		return cli_error(sh, "Invalid tag %s: a number from 1 to 65535",
				 a->v[1]);
	p = json_pack("{s:s?, s:s?, s:s, s:i}", "plugin", n->parent->plugin,
		      "name", n->parent->so_name, "group", a->v[0], "tag",
		      (int)tag);
	ret = ut_call(sh->ut, "alua.create", p, &r);
	json_decref(p);
	json_decref(r);
	if (ret)
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Created ALUA group %s with tag %ld.", a->v[0], tag);
	return 0;
}

static int c_alua_delete(struct shell *sh, struct node *n, struct cli_args *a)
{
	json_t *p = json_pack("{s:s?, s:s?, s:s}", "plugin", n->parent->plugin,
			      "name", n->parent->so_name, "group", a->v[0]);
	json_t *r = NULL;
	int ret = ut_call(sh->ut, "alua.delete", p, &r);

	json_decref(p);
	json_decref(r);
	if (ret)
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Deleted ALUA group %s.", a->v[0]);
	return 0;
}

/* ---- targets, TPGs -------------------------------------------------------- */

/* UITarget.ui_command_create: TPG, enable, authentication=0, portal. */
static int tpg_create(struct shell *sh, const char *wwn, unsigned tag)
{
	unsigned got = tag;
	char path[PATH_MAX];
	int ret = ut_tpg_create(sh->ut, wwn, tag, &got);

	if (ret == -EEXIST && tag == 1)
		got = 1; /* the daemon made TPG 1 with the target */
	else if (ret)
		return cli_ut_error(sh);
	sh->changed = true;
	if (pref_bool(sh, "auto_enable_tpgt") &&
	    ut_tpg_enable(sh->ut, wwn, got, true))
		return cli_ut_error(sh);
	if (ut_tpg_set_attribute(sh->ut, wwn, got, "authentication", 0))
		return cli_ut_error(sh);
	cli_info(sh, "Created TPG %u.", got);
	if (pref_bool(sh, "auto_add_default_portal")) {
		if (!ut_portal_create(sh->ut, wwn, got, "0.0.0.0", 3260,
				      NULL)) {
			cli_info(sh, "Global pref auto_add_default_portal=true");
			cli_info(sh, "Created default portal listening on all "
				     "IPs (0.0.0.0), port 3260.");
		} else {
			cli_info(sh, "Default portal not created, TPGs within "
				     "a target cannot share ip:port.");
		}
	}
	snprintf(path, sizeof(path), "/iscsi/%s/tpg%u", wwn, got);
	new_node(sh, path);
	return 0;
}

static int c_target_create(struct shell *sh, struct node *n,
			   struct cli_args *a)
{
	char *wwn = NULL;
	int ret;

	if (ut_target_create(sh->ut, a->v[0], &wwn))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Created target %s.", wwn);
	ret = tpg_create(sh, wwn, 1);
	free(wwn);
	return ret;
}

static int c_target_delete(struct shell *sh, struct node *n,
			   struct cli_args *a)
{
	if (ut_target_delete(sh->ut, a->v[0]))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Deleted Target %s.", a->v[0]);
	return 0;
}

static int c_tpg_create(struct shell *sh, struct node *n, struct cli_args *a)
{
	long tag = 0;

	if (a->v[0] && index_arg(sh, a->v[0], "tpg", "tag", 65535, &tag))
		return -1;
	if (a->v[0] && tag == 0)
		return cli_error(sh, "Invalid tag: %s", a->v[0]);
	return tpg_create(sh, n->wwn, (unsigned)tag);
}

static int c_tpg_delete(struct shell *sh, struct node *n, struct cli_args *a)
{
	long tag;

	if (index_arg(sh, a->v[0], "tpg", "tag", 65535, &tag))
		return -1;
	if (ut_tpg_delete(sh->ut, n->wwn, (unsigned)tag))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Deleted TPGT %ld.", tag);
	return 0;
}

static int tpg_enable(struct shell *sh, struct node *n, bool on)
{
	if (json_flag(n->obj, "enable") == on) {
		cli_info(sh, "The TPGT is already %s.",
			 on ? "enabled" : "disabled");
		return 0;
	}
	if (ut_tpg_enable(sh->ut, n->wwn, n->tag, on))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "The TPGT has been %s.", on ? "enabled" : "disabled");
	return 0;
}

static int c_enable(struct shell *sh, struct node *n, struct cli_args *a)
{
	return tpg_enable(sh, n, true);
}

static int c_disable(struct shell *sh, struct node *n, struct cli_args *a)
{
	return tpg_enable(sh, n, false);
}

/* ---- LUNs, portals ------------------------------------------------------- */

/* rtslib-fb's StorageObjectFactory: a regular file becomes a fileio object
 * of the file's size, a block device a block object, named after the path
 * as typed with the slashes turned into dashes ("/tmp/a.img" ->
 * "tmp-a.img"). Writes "/backstores/PLUGIN/NAME" to so_path. */
static int so_from_path(struct shell *sh, const char *arg, char *so_path,
			size_t len)
{
	struct ut_so_spec s = { .write_back = UT_DEFAULT, .sparse = UT_DEFAULT,
				.readonly = UT_DEFAULT, .nullio = UT_DEFAULT };
	char dev[PATH_MAX], name[256];
	const char *p = arg;
	struct stat st;
	size_t o = 0, i;
	json_t *so;

	abspath(arg, dev, sizeof(dev));
	if (stat(dev, &st) || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
		return cli_error(sh, "storage object or path not valid: %s",
				 arg);
	/* Better than rtslib (which refuses the second time): a file that
	 * already backs an object means that object. */
	json_array_foreach(json_object_get(sh->config, "storage_objects"), i,
			   so) {
		const char *d = json_str(so, "dev");
		struct stat st2;

		if (d && json_str(so, "plugin") && json_str(so, "name") &&
		    (!strcmp(d, dev) || (!stat(d, &st2) &&
					 st2.st_dev == st.st_dev &&
					 st2.st_ino == st.st_ino))) {
			snprintf(so_path, len, "/backstores/%s/%.200s",
				 json_str(so, "plugin"), json_str(so, "name"));
			return 0;
		}
	}
	while (*p == '/')
		p++;
	for (; *p && o < sizeof(name) - 1; p++)
		name[o++] = *p == '/' ? '-' : *p;
	while (o && name[o - 1] == '-')
		o--;
	name[o] = '\0';
	/* utargetd's names are shorter than 64 bytes: past that, the file's
	 * own name. */
	if (o >= 64) {
		const char *b = strrchr(dev, '/');

		snprintf(name, 64, "%.63s", b ? b + 1 : dev);
		o = strlen(name);
	}
	if (!o)
		return cli_error(sh, "storage object or path not valid: %s",
				 arg);
	s.name = name;
	s.dev = dev;
	if (S_ISBLK(st.st_mode)) {
		s.plugin = "block";
		s.readonly = 0;
	} else {
		s.plugin = "fileio";
		s.size = (uint64_t)st.st_size;
		s.write_back = 0;	/* FileIOStorageObject's default */
	}
	if (ut_backstore_create(sh->ut, &s, NULL))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Created storage object %s.", name);
	if (snprintf(so_path, len, "/backstores/%s/%.200s", s.plugin, name) >=
	    (int)len)
		return cli_error(sh, "storage object or path not valid: %s",
				 arg);
	return 0;
}

/* The TPG LUN (of n's TPG) that uses storage object so_path, or -1. */
static long tpg_lun_of(struct node *n, const char *so_path)
{
	json_t *l;
	size_t i;

	json_array_foreach(json_object_get(n->tpg, "luns"), i, l)
		if (json_str(l, "storage_object") &&
		    !strcmp(json_str(l, "storage_object"), so_path))
			return (long)json_num(l, "index", -1);
	return -1;
}

/* Resolves storage_object as targetcli does: a node of the tree (absolute,
 * or relative to from) that is a storage object, else a file or block
 * device path (a storage object is created for it). */
static int resolve_so(struct shell *sh, struct node *from, const char *arg,
		      char *so_path, size_t len)
{
	char err[512];
	struct node *so = tree_lookup(sh, from, arg, err, sizeof(err));

	if (so) {
		if (so->type != N_SO)
			return cli_error(sh, "Invalid storage object %s.", arg);
		snprintf(so_path, len, "%s", so->path);
		return 0;
	}
	if (!strncmp(arg, "/backstores/", 12) || !strcmp(arg, "/backstores"))
		return cli_error(sh, "Invalid storage object %s.", arg);
	return so_from_path(sh, arg, so_path, len);
}

/* n: a node of the TPG (tpg, luns, ACL); so_path: /backstores/PLUGIN/NAME
 * (resolve_so). Returns the new LUN's number or -1. */
static int lun_create(struct shell *sh, struct node *n, const char *so_path,
		      long lun, int add_mapped)
{
	char path[PATH_MAX];
	json_t *r, *m;
	size_t i;

	if (tpg_lun_of(n, so_path) >= 0)
		return cli_error(sh, "lun for storage object %s already exists",
				 so_path + strlen("/backstores/"));
	if (ut_lun_create(sh->ut, n->wwn, n->tag, so_path, (int)lun,
			  add_mapped, &r))
		return cli_ut_error(sh);
	sh->changed = true;
	lun = (long)json_num(r, "lun", lun);
	cli_info(sh, "Created LUN %ld.", lun);
	json_array_foreach(json_object_get(r, "mapped"), i, m)
		cli_info(sh, "Created LUN %ld->%lld mapping in node ACL %s",
			 lun, json_num(m, "mapped_lun", 0),
			 json_str(m, "node_wwn") ?: "");
	json_decref(r);
	snprintf(path, sizeof(path), "/iscsi/%s/tpg%u/luns/lun%ld", n->wwn,
		 n->tag, lun);
	new_node(sh, path);
	return (int)lun;
}

static int c_lun_create(struct shell *sh, struct node *n, struct cli_args *a)
{
	long lun = -1;
	char so_path[PATH_MAX];
	int add;

	if (a->v[1] && index_arg(sh, a->v[1], "lun", "LUN", 65535, &lun))
		return -1;
	if (bool_arg(sh, a->v[2], pref_bool(sh, "auto_add_mapped_luns"),
		     &add))
		return -1;
	if (resolve_so(sh, n, a->v[0], so_path, sizeof(so_path)))
		return -1;
	return lun_create(sh, n, so_path, lun, add) < 0 ? -1 : 0;
}

static int c_lun_delete(struct shell *sh, struct node *n, struct cli_args *a)
{
	long lun;

	if (index_arg(sh, a->v[0], "lun", "LUN", 65535, &lun))
		return -1;
	if (ut_lun_delete(sh->ut, n->wwn, n->tag, (unsigned)lun))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Deleted LUN %ld.", lun);
	return 0;
}

static int c_portal_create(struct shell *sh, struct node *n,
			   struct cli_args *a)
{
	const char *ip = a->v[0];
	long port = 3260;
	char path[PATH_MAX];
	json_t *r;

	if (!a->v[1])
		cli_info(sh, "Using default IP port %ld", port);
	else if (index_arg(sh, a->v[1], NULL, "IP port", 65535, &port) ||
		 port == 0)
		return port ? -1 : cli_error(sh, "Invalid IP port: 0");
	if (!ip) {
		ip = "0.0.0.0";
		cli_info(sh, "Binding to INADDR_ANY (%s)", ip);
	}
	if (ut_portal_create(sh->ut, n->wwn, n->tag, ip, (unsigned)port, &r))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Created network portal %s:%ld.",
		 json_str(r, "ip_address") ?: ip, port);
	json_decref(r);
	snprintf(path, sizeof(path), "/iscsi/%s/tpg%u/portals/%s%s%s:%ld",
		 n->wwn, n->tag, strchr(ip, ':') ? "[" : "", ip,
		 strchr(ip, ':') ? "]" : "", port);
	new_node(sh, path);
	return 0;
}

static int c_portal_delete(struct shell *sh, struct node *n,
			   struct cli_args *a)
{
	long port;
	char ip[256];
	size_t l;

	if (index_arg(sh, a->v[1], NULL, "IP port", 65535, &port))
		return -1;
	snprintf(ip, sizeof(ip), "%s", a->v[0]);
	l = strlen(ip);
	if (ip[0] == '[' && l > 1 && ip[l - 1] == ']') {
		memmove(ip, ip + 1, l - 2);
		ip[l - 2] = '\0';
	}
	if (ut_portal_delete(sh->ut, n->wwn, n->tag, ip, (unsigned)port))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Deleted network portal %s:%ld", a->v[0], port);
	return 0;
}

/* ---- ACLs, mapped LUNs ----------------------------------------------------- */

static int c_acl_create(struct shell *sh, struct node *n, struct cli_args *a)
{
	char path[PATH_MAX];
	json_t *r, *m;
	size_t i;
	int add;

	if (bool_arg(sh, a->v[1], pref_bool(sh, "auto_add_mapped_luns"),
		     &add))
		return -1;
	if (ut_acl_create(sh->ut, n->wwn, n->tag, a->v[0], add, &r))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Created Node ACL for %s",
		 json_str(r, "node_wwn") ?: a->v[0]);
	json_array_foreach(json_object_get(r, "mapped"), i, m)
		cli_info(sh, "Created mapped LUN %lld.",
			 json_is_integer(m) ? json_integer_value(m) :
					      json_num(m, "mapped_lun", 0));
	snprintf(path, sizeof(path), "/iscsi/%s/tpg%u/acls/%s", n->wwn,
		 n->tag, json_str(r, "node_wwn") ?: a->v[0]);
	json_decref(r);
	new_node(sh, path);
	return 0;
}

static int c_acl_delete(struct shell *sh, struct node *n, struct cli_args *a)
{
	if (ut_acl_delete(sh->ut, n->wwn, n->tag, a->v[0]))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Deleted Node ACL %s.", a->v[0]);
	return 0;
}

/* tag / untag name an ACL by its wwn or by its current tag. */
static int acl_tag(struct shell *sh, struct node *n, const char *which,
		   const char *new_tag)
{
	bool found = false;

	for (size_t i = 0; i < n->nkids; i++) {
		struct node *c = n->kids[i];
		const char *t = json_str(c->obj, "tag");

		if (strcmp(c->node_wwn, which) && !(t && !strcmp(t, which)))
			continue;
		found = true;
		if (ut_acl_set_tag(sh->ut, n->wwn, n->tag, c->node_wwn,
				   new_tag))
			return cli_ut_error(sh);
		sh->changed = true;
	}
	if (!found)
		return cli_error(sh, "No such ACL or tag: %s", which);
	return 0;
}

static int c_acl_tag(struct shell *sh, struct node *n, struct cli_args *a)
{
	return acl_tag(sh, n, a->v[0], a->v[1]);
}

static int c_acl_untag(struct shell *sh, struct node *n, struct cli_args *a)
{
	return acl_tag(sh, n, a->v[0], NULL);
}

static int c_mlun_create(struct shell *sh, struct node *n, struct cli_args *a)
{
	long ml, tl;
	int wp;
	char path[PATH_MAX];
	struct node *tpgn = n->parent->parent;

	if (index_arg(sh, a->v[0], "mapped_lun", "mapped LUN", 65535, &ml) ||
	    bool_arg(sh, a->v[2], 0, &wp))
		return -1;
	if (strspn(a->v[1] + (strncmp(a->v[1], "lun", 3) ? 0 : 3),
		   "0123456789") ==
	    strlen(a->v[1] + (strncmp(a->v[1], "lun", 3) ? 0 : 3))) {
		if (index_arg(sh, a->v[1], "lun", "TPG LUN", 65535, &tl))
			return -1;
	} else {
		/* targetcli: a backstore (or a file or block device, which
		 * gets a backstore) is mapped through the TPG LUN that
		 * already uses it, or a new one. */
		char so_path[PATH_MAX];
		int r;

		if (resolve_so(sh, n, a->v[1], so_path, sizeof(so_path)))
			return -1;
		tl = tpg_lun_of(tpgn, so_path);
		if (tl < 0) {
			r = lun_create(sh, tpgn, so_path, -1, 0);
			if (r < 0)
				return -1;
			tl = r;
		}
	}
	sh->pending_cd[0] = '\0';
	if (ut_mapped_lun_create(sh->ut, n->wwn, n->tag, n->node_wwn,
				 (unsigned)ml, (unsigned)tl, wp))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Created Mapped LUN %ld.", ml);
	snprintf(path, sizeof(path), "%s/mapped_lun%ld", n->path, ml);
	new_node(sh, path);
	return 0;
}

static int c_mlun_delete(struct shell *sh, struct node *n, struct cli_args *a)
{
	long ml;

	if (index_arg(sh, a->v[0], "mapped_lun", "mapped LUN", 65535, &ml))
		return -1;
	if (ut_mapped_lun_delete(sh->ut, n->wwn, n->tag, n->node_wwn,
				 (unsigned)ml))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Deleted Mapped LUN %ld.", ml);
	return 0;
}

/* ---- the table ------------------------------------------------------------ */

#define SIG(n, ...) { .params = { __VA_ARGS__ }, .nreq = n }

static const struct command commands[] = {
	{ "bookmarks", T_ALL, NULL, SIG(1, "action", "bookmark"), c_bookmarks,
	  "Manage your bookmarks: add NAME (the current path), del NAME,\n"
	  "go NAME, show. Use a bookmark as a path with @NAME (cd @NAME);\n"
	  "@last is the last object created." },
	{ "cd", T_ALL, NULL, SIG(0, "path"), c_cd,
	  "Change the current path. Paths work like unix paths: '/' root,\n"
	  "'.' this node, '..' the parent, @NAME a bookmark. 'cd <' and\n"
	  "'cd >' go back and forth in the path history.\n"
	  "Older targetcli names work too: /backstores/iblock (= block),\n"
	  "rd_mcp and rd_dr (= ramdisk), tpgtN (= tpgN)." },
	{ "exit", T_ALL, NULL, SIG(0, NULL), c_exit,
	  "Exit the shell (saving the configuration first when the global\n"
	  "auto_save_on_exit is true; one-shot commands and batch input save\n"
	  "only when they changed the configuration)." },
	{ "get", T_ALL, NULL,
	  { .params = { "group" }, .nreq = 0, .varargs = true }, cli_cmd_get,
	  "Get the value of one or more parameters of a group. Without a\n"
	  "group, list the groups; with a group alone, show every\n"
	  "parameter of it with its description.\n"
	  "Example: get attribute authentication" },
	{ "help", T_ALL, NULL, SIG(0, "topic"), c_help,
	  "Display the manual page of a command, or list the commands." },
	{ "info", T_ALL, NULL, SIG(0, NULL), c_info,
	  "Display information about this node." },
	{ "ls", T_ALL, NULL, SIG(0, "path", "depth"), c_ls,
	  "Display the tree of objects under path (default: here), down\n"
	  "to depth levels (0: all, the default)." },
	{ "pwd", T_ALL, NULL, SIG(0, NULL), c_pwd, "Display the current path." },
	{ "refresh", T_ALL, NULL, SIG(0, NULL), c_refresh,
	  "Re-read the configuration from utargetd." },
	{ "set", T_ALL, NULL,
	  { .params = { "group" }, .nreq = 0, .kwargs = true }, cli_cmd_set,
	  "Set one or more parameters of a group: set GROUP p=v [p=v...].\n"
	  "Groups: global (shell preferences, kept per user), attribute,\n"
	  "parameter, auth (TPGs, ACLs), discovery_auth (/iscsi).\n"
	  "Example: set auth userid=user password=secret123456" },
	{ "status", T_ALL, NULL, SIG(0, NULL), c_status,
	  "Display the status of this node." },
	{ "saveconfig", T(N_ROOT), NULL, SIG(0, "savefile"), c_saveconfig,
	  "Save the configuration (utargetd writes it; default: its own\n"
	  "configuration file), keeping backups in backup/ beside it." },
	{ "restoreconfig", T(N_ROOT), NULL,
	  SIG(0, "savefile", "clear_existing", "target", "storage_object"),
	  c_restoreconfig,
	  "Restore a saved configuration. Refused while objects exist\n"
	  "unless clear_existing=true. target=WWN and / or\n"
	  "storage_object=NAME restore only that object (a target with the\n"
	  "storage objects its LUNs need), leaving the rest; clear_existing\n"
	  "then replaces just it. Says what was added, removed, changed." },
	{ "clearconfig", T(N_ROOT), NULL, SIG(0, "confirm"), c_clearconfig,
	  "Remove the whole configuration: clearconfig confirm=True" },
	{ "sessions", T(N_ROOT), NULL, SIG(0, "action", "sid"), c_sessions,
	  "Display the open sessions: sessions [list|detail] [sid]; detail adds\n"
	  "the negotiated parameters and the rates over the last second." },
	{ "stats", T(N_ROOT), NULL, SIG(0, "storage_object"), c_stats,
	  "Per storage object counters, IOPS, MB/s and mean latency over the\n"
	  "last second: stats [storage_object]." },
	{ "version", T(N_ROOT), NULL, SIG(0, NULL), c_version,
	  "Display the version of utargetcli." },
	{ "create", T(N_PLUGIN), "fileio",
	  SIG(2, "name", "file_or_dev", "size", "write_back", "sparse", "wwn"),
	  c_fileio_create,
	  "Create a fileio storage object on a file (made when missing:\n"
	  "sparse unless sparse=false; size N[k|m|g|t][b], 1024-based) or a\n"
	  "block device. write_back=true by default." },
	{ "create", T(N_PLUGIN), "block",
	  SIG(2, "name", "dev", "readonly", "wwn"), c_block_create,
	  "Create a block storage object on a block device." },
	{ "create", T(N_PLUGIN), "ramdisk",
	  SIG(2, "name", "size", "nullio", "wwn"), c_ramdisk_create,
	  "Create a ramdisk storage object of size N[k|m|g|t][b]; nullio\n"
	  "discards writes and reads zeroes." },
	{ "create", T(N_PLUGIN), "pscsi", SIG(2, "name", "dev"),
	  c_pscsi_create, "Create a pscsi storage object on a SCSI device." },
	{ "create", T(N_PLUGIN), "user:rbd",
	  SIG(1, "name", "size", "cfgstring", "wwn", "create_image"),
	  c_rbd_create,
	  "Create a Ceph RBD storage object: cfgstring=POOL/IMAGE[;conf=PATH]\n"
	  "[;id=USER][;osd_op_timeout=N][;ha=1]. size defaults to the image's;\n"
	  "create_image=true creates a missing image of size; ha=1: one of\n"
	  "several gateways, ALUA states from the image's lock (docs/rbd.md)." },
	{ "delete", T(N_PLUGIN), NULL, SIG(1, "name"), c_so_delete,
	  "Delete a storage object (refused while a LUN uses it)." },
	{ "create", T(N_ALUA), NULL, SIG(2, "name", "tag"), c_alua_create,
	  "Create an ALUA target port group of this storage object, with\n"
	  "the group id tag (1-65535). LUNs join it with\n"
	  "set alua alua_tg_pt_gp_name=NAME on the LUN." },
	{ "delete", T(N_ALUA), NULL, SIG(1, "name"), c_alua_delete,
	  "Delete an ALUA target port group (refused while LUNs are in it)." },
	{ "resize", T(N_SO), NULL, SIG(0, "size", "force"), c_so_resize,
	  "Resize the storage object live: size N[k|m|g|t][b]; without a\n"
	  "size a block device's (or file's) current size is taken. Every\n"
	  "initiator is told (CAPACITY DATA HAS CHANGED). Shrinking drops the\n"
	  "data past the new end and needs force=true." },
	{ "create", T(N_ISCSI), NULL, SIG(0, "wwn"), c_target_create,
	  "Create an iSCSI target (default name: iqn.2003-01.org.linux-\n"
	  "iscsi.HOST.ARCH:sn.HEX), with TPG 1 and, when the global\n"
	  "auto_add_default_portal is true, the portal 0.0.0.0:3260." },
	{ "delete", T(N_ISCSI), NULL, SIG(1, "wwn"), c_target_delete,
	  "Delete a target and everything under it; its sessions end." },
	{ "create", T(N_TARGET), NULL, SIG(0, "tag"), c_tpg_create,
	  "Create a TPG (default tag: the lowest free)." },
	{ "delete", T(N_TARGET), NULL, SIG(1, "tag"), c_tpg_delete,
	  "Delete a TPG." },
	{ "enable", T(N_TPG), NULL, SIG(0, NULL), c_enable,
	  "Enable the TPG." },
	{ "disable", T(N_TPG), NULL, SIG(0, NULL), c_disable,
	  "Disable the TPG (its sessions end)." },
	{ "create", T(N_LUNS), NULL,
	  SIG(1, "storage_object", "lun", "add_mapped_luns"), c_lun_create,
	  "Create a LUN on a storage object (/backstores/PLUGIN/NAME), or on\n"
	  "a file or block device path: a fileio / block storage object is\n"
	  "made for it first, named after the path (/tmp/a.img: tmp-a.img).\n"
	  "lun defaults to the lowest free. With add_mapped_luns (default:\n"
	  "the global auto_add_mapped_luns) every ACL gets a mapped LUN." },
	{ "delete", T(N_LUNS), NULL, SIG(1, "lun"), c_lun_delete,
	  "Delete a LUN (lun3 or 3) and the mapped LUNs pointing at it." },
	{ "create", T(N_PORTALS), NULL, SIG(0, "ip_address", "ip_port"),
	  c_portal_create,
	  "Create a network portal (default 0.0.0.0, port 3260)." },
	{ "delete", T(N_PORTALS), NULL, SIG(2, "ip_address", "ip_port"),
	  c_portal_delete, "Delete a network portal." },
	{ "create", T(N_ACLS), NULL, SIG(1, "wwn", "add_mapped_luns"),
	  c_acl_create,
	  "Create a node ACL for an initiator; with add_mapped_luns\n"
	  "(default: the global auto_add_mapped_luns) it maps every LUN." },
	{ "delete", T(N_ACLS), NULL, SIG(1, "wwn"), c_acl_delete,
	  "Delete a node ACL (the initiator's sessions end)." },
	{ "tag", T(N_ACLS), NULL, SIG(2, "wwn_or_tag", "new_tag"), c_acl_tag,
	  "Tag a node ACL (or every ACL with a tag) with new_tag." },
	{ "untag", T(N_ACLS), NULL, SIG(1, "wwn_or_tag"), c_acl_untag,
	  "Remove the tag of a node ACL." },
	{ "create", T(N_ACL), NULL,
	  SIG(2, "mapped_lun", "tpg_lun_or_backstore", "write_protect"),
	  c_mlun_create,
	  "Map a TPG LUN to this initiator as mapped_lun: a number (lun3 or\n"
	  "3), or a storage object or file path (mapped through the TPG LUN\n"
	  "that uses it, made when none does); write_protect=false." },
	{ "delete", T(N_ACL), NULL, SIG(1, "mapped_lun"), c_mlun_delete,
	  "Delete a mapped LUN." },
	{ NULL, 0, NULL, SIG(0, NULL), NULL, NULL }
};

/* ---- dispatcher ----------------------------------------------------------- */

/* auto_save_on_exit. The interactive shell saves on every exit, as
 * targetcli does. One-shot commands and batch input save too (targetcli's
 * one-shot mode never does, so `targetcli /iscsi create ...` is lost at the
 * next boot - a long-standing complaint), but only when a command of the run
 * changed the configuration: `utargetcli ls` must not rotate the backups. */
void cli_exit_actions(struct shell *sh)
{
	if (!pref_bool(sh, "auto_save_on_exit"))
		return;
	if (!sh->interactive && !sh->modified)
		return;
	cli_info(sh, "Global pref auto_save_on_exit=true");
	if (!sh->root && tree_refresh(sh))
		return (void)cli_ut_error(sh);
	{
		struct cli_args a;

		memset(&a, 0, sizeof(a));
		c_saveconfig(sh, sh->root, &a);
	}
}

static int run_on(struct shell *sh, struct node *t, const char *cmd,
		  struct cli_line *l)
{
	const struct command *c = cmd_find(t, cmd);
	struct cli_args a;
	char err[512];
	int ret;

	if (!c)
		return cli_error(sh, "Command not found %s", cmd);
	if (cli_bind(&c->sig, l, &a, err, sizeof(err)))
		return cli_error(sh, "%s", err);
	ret = c->fn(sh, t, &a);
	cli_args_free(&a);
	return ret;
}

int cli_run_line(struct shell *sh, const char *line)
{
	struct cli_line l;
	char err[512], path[PATH_MAX];
	const char *cmd;
	struct node *cwd, *t;
	bool iterall = false;
	int ret = 0;

	while (*line == ' ' || *line == '\t')
		line++;
	if (!*line || *line == '#')
		return 0;
	if (cli_parse(line, &l, err, sizeof(err)))
		return cli_error(sh, "%s", err);
	if (tree_refresh(sh)) {
		cli_line_free(&l);
		return cli_ut_error(sh);
	}
	cwd = tree_cwd(sh);
	snprintf(path, sizeof(path), "%s", l.path ? l.path : ".");
	if (path[0] && path[strlen(path) - 1] == '*') {
		iterall = true;
		path[strlen(path) - 1] = '\0';
		if (!path[0])
			snprintf(path, sizeof(path), ".");
	}
	cmd = l.command;
	if (!cmd && iterall) {
		cmd = "ls";
	} else if (!cmd && (l.npp || l.nkp)) {
		/* "a=b", "/iscsi a=b": parameters need a command. */
		ret = cli_error(sh, "Syntax error: parameters without a "
				"command (%s%s%s).", l.nkp ? l.kparams[0].key : "",
				l.nkp ? "=..." : "",
				l.nkp ? "" : l.pparams[0]);
		goto out;
	} else if (!cmd) {
		/* A path alone: cd there. */
		t = tree_lookup(sh, cwd, path, err, sizeof(err));
		ret = t ? do_cd(sh, t, ".") : cli_error(sh, "%s", err);
		goto out;
	}
	t = tree_lookup(sh, cwd, path, err, sizeof(err));
	if (!t) {
		ret = cli_error(sh, "%s", err);
		goto out;
	}
	sh->pending_cd[0] = '\0';
	if (iterall) {
		for (size_t i = 0; i < t->nkids; i++) {
			printf("[%s]\n", t->kids[i]->path);
			if (run_on(sh, t->kids[i], cmd, &l))
				ret = -1;
		}
	} else {
		ret = run_on(sh, t, cmd, &l);
	}
	if (sh->changed)
		sh->modified = true;
	if (sh->changed || sh->pending_cd[0]) {
		if (tree_refresh(sh)) {
			ret = cli_ut_error(sh);
			goto out;
		}
		if (sh->pending_cd[0])
			do_cd(sh, sh->root, sh->pending_cd);
		sh->pending_cd[0] = '\0';
	}
out:
	cli_line_free(&l);
	return ret;
}
