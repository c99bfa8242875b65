/* The "global" group: shell preferences kept per user in
 * $UTARGETCLI_HOME (default ~/.utargetcli/) prefs.json, with bookmarks and
 * the path history (configshell keeps the same in prefs.bin). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

/* Sorted by name: get/set list them in this order. */
const struct gpref cli_globals[] = {
	{ "auto_add_default_portal", "bool",
	  "If true, adds a portal listening on all IPs to new targets." },
	{ "auto_add_mapped_luns", "bool",
	  "If true, automatically create node ACLs mapped LUNs after creating "
	  "a new target LUN or a new node ACL" },
	{ "auto_cd_after_create", "bool",
	  "If true, changes current path to newly created objects." },
	{ "auto_enable_tpgt", "bool",
	  "If true, automatically enables TPGTs upon creation." },
	{ "auto_save_on_exit", "bool",
	  "If true, saves configuration on exit." },
	{ "color_command", "color", "Color to use for command completions." },
	{ "color_default", "colordefault", "Default text display color." },
	{ "color_keyword", "color", "Color to use for keyword completions." },
	{ "color_mode", "bool", "Console color display mode." },
	{ "color_parameter", "color",
	  "Color to use for parameter completions." },
	{ "color_path", "color", "Color to use for path completions" },
	{ "export_backstore_name_as_model", "bool",
	  "If true, the backstore name is used for the scsi inquiry model "
	  "name." },
	{ "loglevel_console", "loglevel",
	  "Log level for messages going to the console." },
	{ "max_backup_files", "string",
	  "Max no. of configurations to be backed up in the backup/ "
	  "directory beside the saved file." },
	{ "prompt_length", "number",
	  "Max length of the shell prompt path, 0 for infinite." },
	{ "tree_max_depth", "number", "Maximum depth of displayed node tree." },
	{ "tree_round_nodes", "bool", "Tree node display style." },
	{ "tree_show_root", "bool", "Whether or not to display tree root." },
	{ "tree_status_mode", "bool",
	  "Whether or not to display status in tree." },
	{ NULL, NULL, NULL }
};

static const char *const colors[] = { "black", "red", "green", "yellow",
				      "blue", "magenta", "cyan", "white",
				      NULL };
static const char *const loglevels[] = { "critical", "error", "warning",
					 "info", "debug", NULL };

static json_t *defaults(void)
{
	return json_pack("{s:b, s:b, s:b, s:b, s:b, s:s, s:n, s:s, s:b, s:s,"
			 " s:s, s:b, s:s, s:s, s:i, s:i, s:b, s:b, s:b,"
			 " s:{}, s:[], s:i}",
			 "auto_add_default_portal", 1, "auto_add_mapped_luns",
			 1, "auto_cd_after_create", 0, "auto_enable_tpgt", 1,
			 "auto_save_on_exit", 1, "color_command", "cyan",
			 "color_default", "color_keyword", "cyan",
			 "color_mode", 1, "color_parameter", "magenta",
			 "color_path", "magenta",
			 "export_backstore_name_as_model", 1,
			 "loglevel_console", "info", "max_backup_files", "10",
			 "prompt_length", 30, "tree_max_depth", 0,
			 "tree_round_nodes", 1, "tree_show_root", 1,
			 "tree_status_mode", 1, "bookmarks", "path_history",
			 "path_history_index", 0);
}

const struct gpref *gpref_find(const char *name)
{
	for (const struct gpref *g = cli_globals; g->name; g++)
		if (!strcmp(g->name, name))
			return g;
	return NULL;
}

static void prefs_file(struct shell *sh, char *buf, size_t len)
{
	snprintf(buf, len, "%s/prefs.json", sh->home);
}

void prefs_load(struct shell *sh)
{
	const char *h = getenv("UTARGETCLI_HOME"), *home = getenv("HOME");
	char file[PATH_MAX + 16];
	json_t *saved, *v;
	const char *k;

	if (h && *h)
		snprintf(sh->home, sizeof(sh->home), "%s", h);
	else
		snprintf(sh->home, sizeof(sh->home), "%s/.utargetcli",
			 home && *home ? home : "/tmp");
	sh->prefs = defaults();
	if (!sh->prefs)
		abort();
	prefs_file(sh, file, sizeof(file));
	saved = json_load_file(file, 0, NULL);
	if (json_is_object(saved))
		json_object_foreach(saved, k, v) {
			json_t *d = json_object_get(sh->prefs, k);

			/* Keep the types the code expects. */
			if (d && json_typeof(d) != json_typeof(v) &&
			    !(json_is_boolean(d) && json_is_boolean(v)) &&
			    !json_is_null(d) && !json_is_null(v))
				continue;
			json_object_set(sh->prefs, k, v);
		}
	json_decref(saved);
}

void prefs_save(struct shell *sh)
{
	char file[PATH_MAX + 16], tmp[PATH_MAX + 32];

	if (mkdir(sh->home, 0700) && errno != EEXIST)
		return;
	prefs_file(sh, file, sizeof(file));
	snprintf(tmp, sizeof(tmp), "%s.tmp", file);
	if (json_dump_file(sh->prefs, tmp, JSON_INDENT(2) | JSON_SORT_KEYS))
		return;
	if (rename(tmp, file))
		unlink(tmp);
}

json_t *pref(struct shell *sh, const char *name)
{
	return json_object_get(sh->prefs, name);
}

bool pref_bool(struct shell *sh, const char *name)
{
	return json_is_true(pref(sh, name));
}

long long pref_num(struct shell *sh, const char *name)
{
	json_t *v = pref(sh, name);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return 0;
}

void pref_text(struct shell *sh, const struct gpref *g, char *buf,
	       size_t len)
{
	json_t *v = pref(sh, g->name);

	if (!strcmp(g->type, "bool"))
		snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
	else if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_string(v))
		snprintf(buf, len, "%s", json_string_value(v));
	else
		snprintf(buf, len, "%s",
			 !strcmp(g->type, "colordefault") ? "none" :
			 !strcmp(g->type, "color") ? "default" : "n/a");
}

static bool in_list(const char *const *l, const char *v)
{
	for (; *l; l++)
		if (!strcmp(*l, v))
			return true;
	return false;
}

static void join(const char *const *l, const char *extra, char *buf,
		 size_t len)
{
	buf[0] = '\0';
	for (; *l; l++)
		snprintf(buf + strlen(buf), len - strlen(buf), "%s|", *l);
	snprintf(buf + strlen(buf), len - strlen(buf), "%s", extra);
	if (!*extra && *buf)
		buf[strlen(buf) - 1] = '\0';
}

int pref_set(struct shell *sh, const struct gpref *g, const char *value,
	     char *err, size_t errlen)
{
	json_t *v = NULL;
	char syntax[256];

	if (!strcmp(g->type, "bool")) {
		if (!strcasecmp(value, "true"))
			v = json_true();
		else if (!strcasecmp(value, "false"))
			v = json_false();
		else {
			snprintf(err, errlen,
				 "Not setting %s! Syntax error, '%s' is not "
				 "true|false.", g->name, value);
			return -1;
		}
	} else if (!strcmp(g->type, "number")) {
		char *end;
		long long n = strtoll(value, &end, 10);

		if (!*value || *end) {
			snprintf(err, errlen,
				 "Not setting %s! Syntax error, '%s' is not a "
				 "NUMBER.", g->name, value);
			return -1;
		}
		v = json_integer(n);
	} else if (!strcmp(g->type, "loglevel")) {
		if (!in_list(loglevels, value)) {
			join(loglevels, "", syntax, sizeof(syntax));
			snprintf(err, errlen,
				 "Not setting %s! Syntax error, '%s' is not %s",
				 g->name, value, syntax);
			return -1;
		}
		v = json_string(value);
	} else if (!strcmp(g->type, "color") ||
		   !strcmp(g->type, "colordefault")) {
		const char *none = !strcmp(g->type, "color") ? "default" :
							       "none";

		if (!*value || !strcmp(value, none)) {
			v = json_null();
		} else if (in_list(colors, value)) {
			v = json_string(value);
		} else {
			join(colors, none, syntax, sizeof(syntax));
			snprintf(err, errlen,
				 "Not setting %s! Syntax error, '%s' is not %s",
				 g->name, value, syntax);
			return -1;
		}
	} else {
		v = json_string(value);
	}
	json_object_set_new(sh->prefs, g->name, v);
	prefs_save(sh);
	return 0;
}
