/* utargetcli commands: the rows every node offers (get, set, help, info,
 * version), the join of the per-file tables (cmd_*.c: targetcli-fb's
 * names, arguments and defaults, on top of libutarget; get / set live in
 * groups.c), help, and the line dispatcher. Messages are
 * targetcli's words (docs/utargetcli.md). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"

/* ---- small helpers ------------------------------------------------------ */

int cmd_bool_arg(struct shell *sh, const char *v, int dflt, int *out)
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
int cmd_index_arg(struct shell *sh, const char *v, const char *prefix,
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
void cmd_abspath(const char *in, char *out, size_t len)
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

void cmd_new_node(struct shell *sh, const char *path)
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

static int c_help(struct shell *sh, struct node *n, struct cli_args *a);
static int c_info(struct shell *sh, struct node *n, struct cli_args *a);
static int c_version(struct shell *sh, struct node *n, struct cli_args *a);

/* ---- the table: the rows every node has, then each file's ------------- */

static const struct command cli_cmds_core[] = {
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
	{ "set", T_ALL, NULL,
	  { .params = { "group" }, .nreq = 0, .kwargs = true }, cli_cmd_set,
	  "Set one or more parameters of a group: set GROUP p=v [p=v...].\n"
	  "Groups: global (shell preferences, kept per user), attribute,\n"
	  "parameter, auth (TPGs, ACLs), discovery_auth (/iscsi).\n"
	  "Example: set auth userid=user password=secret123456" },
	{ "version", T(N_ROOT), NULL, SIG(0, NULL), c_version,
	  "Display the version of utargetcli." },
	{ NULL, 0, NULL, SIG(0, NULL), NULL, NULL }
};

static const struct command *const tables[] = {
	cli_cmds_core, cli_cmds_nav, cli_cmds_config, cli_cmds_stats,
	cli_cmds_storage, cli_cmds_target,
};
#define NTABLES (sizeof(tables) / sizeof(tables[0]))

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

	for (size_t t = 0; t < NTABLES; t++)
		for (const struct command *c = tables[t]; c->name && k < max;
		     c++)
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
	for (size_t t = 0; t < NTABLES; t++)
		for (const struct command *c = tables[t]; c->name; c++)
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
		ret = t ? cmd_do_cd(sh, t, ".") : cli_error(sh, "%s", err);
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
			cmd_do_cd(sh, sh->root, sh->pending_cd);
		sh->pending_cd[0] = '\0';
	}
out:
	cli_line_free(&l);
	return ret;
}
