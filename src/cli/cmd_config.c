/* utargetcli commands: saveconfig, restoreconfig, clearconfig on the root. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"

/* ---- root: save / restore / clear ---------------------------------------- */

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

int c_saveconfig(struct shell *sh, struct node *n, struct cli_args *a)
{
	char file[PATH_MAX], *end;
	json_t *r, *p, *mb = pref(sh, "max_backup_files");
	long long keep = 10;
	int ret;

	if (a->v[0])
		cmd_abspath(a->v[0], file, sizeof(file));
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

	if (cmd_bool_arg(sh, a->v[1], 0, &clear))
		return -1;
	if (a->v[0]) {
		cmd_abspath(a->v[0], file, sizeof(file));
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

	if (cmd_bool_arg(sh, a->v[0], 0, &confirm))
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

const struct command cli_cmds_config[] = {
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
	{ NULL, 0, NULL, SIG(0, NULL), NULL, NULL }
};
