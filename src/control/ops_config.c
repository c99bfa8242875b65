/* Whole-configuration methods: version, get / save / restore / clear.
 * Restore, selective or not, goes through config.c (the same code the
 * daemon's startup load uses). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "control/ops_int.h"
#include "control/plugins.h"
#include "control/saveconfig.h"
#include "iscsi/mgmt.h"
#include "util/log.h"

json_t *m_version(json_t *p, struct rpc_error *e)
{
	(void)p;
	(void)e;
	return json_pack("{s:s}", "version", UTARGET_VERSION);
}

json_t *m_get_config(json_t *p, struct rpc_error *e)
{
	json_t *cfg, *o;
	bool bad = false, live = ops_p_bool(p, "live", false, e, &bad);
	bool with_version = ops_p_bool(p, "with_version", false, e, &bad);
	size_t i;

	if (bad)
		return NULL;
	cfg = ctl_config_dump();
	/* the version to pass as if_version to changes based on this read */
	if (with_version)
		json_object_set_new(cfg, "config_version",
				    json_integer((json_int_t)ctl_config_version));
	/* get_config is what saveconfig writes. live=true (utargetcli's `ls`)
	 * adds what the saved file leaves out: a block device's size (LIO's
	 * saveconfig.json has none: rtslib-fb's restore hands an object's keys
	 * to its constructor, which takes none), the object's node under
	 * /backstores (LIO saves tcmu objects as plugin "user") and the
	 * plugin's own `ls` summary, so the shell branches on no plugin. */
	json_array_foreach(json_object_get(cfg, "storage_objects"), i, o) {
		if (!live)
			break;
		const char *pl = json_string_value(json_object_get(o, "plugin"));
		const char *nm = json_string_value(json_object_get(o, "name"));
		const struct ctl_plugin *plug = ctl_plugin_find(pl);
		struct ctl_so *so = plug && nm ? ctl_so_find(plug->name, nm) :
						 NULL;
		char sum[1024];

		if (!so)
			continue;
		if (plug->live_size)
			json_object_set_new(o, "size",
					    json_integer((json_int_t)so->size));
		plug->summary(so, sum, sizeof(sum));
		json_object_set_new(o, "backstore", json_string(plug->name));
		json_object_set_new(o, "summary", json_string(sum));
	}
	return cfg;
}

json_t *m_save_config(json_t *p, struct rpc_error *e)
{
	bool bad = false;
	const char *file = ops_p_str(p, "file", false, e, &bad);
	long long keep = ctl_settings.max_backup_files;
	char bdir[4096], err[1024];
	json_t *prev, *now, *changes;
	bool replaced;

	/* max_backup_files: the caller's (utargetcli's global of that name)
	 * instead of the daemon's own setting, for this save only. */
	ops_p_int(p, "max_backup_files", &keep, false, e, &bad);
	if (bad)
		return NULL;
	if (keep < 0 || keep > 1000)
		return ops_fail(e, RPC_INVALID_PARAMS,
			    "Parameter max_backup_files must be 0 to 1000");
	if (!file || !file[0])
		file = ctl_settings.config_file;
	/* what this save changes in the file: against what it held */
	prev = json_load_file(file, 0, NULL);
	if (ctl_config_save(file, (unsigned)keep, bdir, sizeof(bdir), err,
			    sizeof(err))) {
		json_decref(prev);
		return ops_fail(e, RPC_REFUSED, "%s", err);
	}
	now = ctl_config_dump();
	changes = ctl_config_diff(prev, now);
	replaced = prev != NULL;
	json_decref(prev);
	json_decref(now);
	return json_pack("{s:s, s:s, s:i, s:b, s:o}", "file", file,
			 "backup_dir", bdir, "backups_kept", (int)keep,
			 "replaced", replaced, "changes", changes);
}

static bool config_empty(void)
{
	return list_empty(&ctl_sos) && list_empty(&iscsi_fabric.targets);
}

static void clear_all(void)
{
	struct iscsi_target *t, *tn;
	struct ctl_so *so, *sn;

	list_for_each_entry_safe(t, tn, &iscsi_fabric.targets, link)
		iscsi_target_free(t);
	list_for_each_entry_safe(so, sn, &ctl_sos, link)
		ctl_so_free(so);
	memset(&iscsi_fabric.discovery_auth, 0,
	       sizeof(iscsi_fabric.discovery_auth));
	iscsi_fabric.discovery_enable_auth = false;
	iscsi_sessions_refresh(NULL, -1);
}

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* "NAME", "PLUGIN/NAME" or "/backstores/PLUGIN/NAME" (LIO saves user:rbd
 * as plugin "user"). */
static bool so_sel_matches(const char *sel, const char *plugin,
			   const char *name)
{
	const char *slash;
	size_t pl;

	if (!plugin || !name)
		return false;
	if (!strncmp(sel, "/backstores/", 12))
		sel += 12;
	slash = strrchr(sel, '/');
	if (!slash)
		return !strcmp(sel, name);
	pl = (size_t)(slash - sel);
	if (strcmp(slash + 1, name))
		return false;
	{
		/* either of the plugin's names (plugins.c) */
		char want[32];

		if (pl >= sizeof(want))
			return false;
		memcpy(want, sel, pl);
		want[pl] = '\0';
		return !strcmp(ctl_plugin_tree_name(want),
			       ctl_plugin_tree_name(plugin));
	}
}

/* Selective restore (targetcli-fb's restoreconfig target= /
 * storage_object=): the part of root to load, the rest of the running
 * configuration left alone. A target comes with the storage objects of
 * its LUNs that do not exist yet. A selected object that already runs is
 * refused unless clear, which replaces just it (*drop_t, *drop_so: what to
 * delete once every check passed). NULL with e set when refused. */
static json_t *restore_select(json_t *root, const char *file, const char *tsel,
			      const char *ssel, bool clear,
			      struct iscsi_target **drop_t,
			      struct ctl_so **drop_so, struct rpc_error *e)
{
	json_t *sos = json_array(), *tgts = json_array(), *o, *t = NULL;
	json_t *sel_so = NULL;
	size_t i;

	json_array_foreach(json_object_get(root, "storage_objects"), i, o)
		if (ssel && so_sel_matches(ssel, jstr(o, "plugin"),
					   jstr(o, "name")))
			sel_so = o;
	json_array_foreach(json_object_get(root, "targets"), i, o)
		if (tsel && jstr(o, "wwn") && !strcasecmp(jstr(o, "wwn"), tsel))
			t = o;
	if ((ssel && !sel_so) || (tsel && !t)) {
		json_decref(sos);
		json_decref(tgts);
		return ops_fail(e, RPC_NOT_FOUND, "%s %s is not in %s",
			    ssel && !sel_so ? "Storage object" : "Target",
			    ssel && !sel_so ? ssel : tsel, file);
	}
	*drop_t = t ? iscsi_target_find(jstr(t, "wwn")) : NULL;
	*drop_so = sel_so ? ctl_so_find(jstr(sel_so, "plugin"),
					jstr(sel_so, "name")) : NULL;
	if ((*drop_t || *drop_so) && !clear) {
		json_decref(sos);
		json_decref(tgts);
		return ops_fail(e, RPC_EXISTS, "%s %s already exists: use "
			    "clear_existing=true to replace it",
			    *drop_t ? "Target" : "Storage object",
			    *drop_t ? (*drop_t)->wwn : jstr(sel_so, "name"));
	}
	if (*drop_so && ops_so_in_use(*drop_so)) {
		/* only the target being replaced may hold it */
		const struct iscsi_tpg *tpg;
		const struct iscsi_tpg_lun *l;
		const struct iscsi_target *x;
		bool other = false;

		list_for_each_entry(x, &iscsi_fabric.targets, link)
			list_for_each_entry(tpg, &x->tpgs, link)
				list_for_each_entry(l, &tpg->luns, link)
					if (l->lu == (*drop_so)->lu &&
					    x != *drop_t)
						other = true;
		if (other) {
			json_decref(sos);
			json_decref(tgts);
			return ops_fail(e, RPC_REFUSED, "Storage object %s/%s is in "
				    "use by a LUN; delete the LUN first",
				    (*drop_so)->plugin, (*drop_so)->name);
		}
	}
	if (sel_so)
		json_array_append(sos, sel_so);
	if (t) {
		json_t *tpg, *lun;
		size_t j, k;

		json_array_append(tgts, t);
		json_array_foreach(json_object_get(t, "tpgs"), j, tpg)
			json_array_foreach(json_object_get(tpg, "luns"), k, lun) {
			const char *path = jstr(lun, "storage_object");

			json_array_foreach(json_object_get(root, "storage_objects"),
					   i, o) {
				char want[512];
				struct ctl_so *have;

				snprintf(want, sizeof(want), "/backstores/%s/%s",
					 jstr(o, "plugin") ? jstr(o, "plugin") : "",
					 jstr(o, "name") ? jstr(o, "name") : "");
				if (!path || strcmp(path, want) || o == sel_so)
					continue;
				have = ctl_so_find(jstr(o, "plugin"),
						   jstr(o, "name"));
				if (!have || have == *drop_so)
					json_array_append(sos, o);
			}
		}
	}
	return json_pack("{s:o, s:o}", "storage_objects", sos, "targets", tgts);
}

json_t *m_restore_config(json_t *p, struct rpc_error *e)
{
	bool bad = false;
	const char *file = ops_p_str(p, "file", false, e, &bad);
	bool clear = ops_p_bool(p, "clear_existing", false, e, &bad);
	bool abort_on_error = ops_p_bool(p, "abort_on_error", false, e, &bad);
	const char *tsel = ops_p_str(p, "target", false, e, &bad);
	const char *ssel = ops_p_str(p, "storage_object", false, e, &bad);
	json_t *config = json_object_get(p, "config");
	json_t *root, *errors, *before, *after, *changes;
	bool held = false;
	json_error_t jerr;
	char err[1024];
	int rc;

	if (bad)
		return NULL;
	if ((tsel && !tsel[0]) || (ssel && !ssel[0]))
		return ops_fail(e, RPC_INVALID_PARAMS, "Parameter %s must not be "
			    "empty", tsel && !tsel[0] ? "target" : "storage_object");
	if (config) {
		root = json_incref(config);
	} else {
		if (!file || !file[0])
			file = ctl_settings.config_file;
		root = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
		if (!root)
			return ops_fail(e, RPC_REFUSED, "Cannot load %s: %s", file,
				    jerr.text);
	}
	before = ctl_config_dump();
	if (tsel || ssel) {
		struct iscsi_target *drop_t = NULL;
		struct ctl_so *drop_so = NULL;
		json_t *part = restore_select(root, config ? "the given config" : file,
					      tsel, ssel, clear, &drop_t, &drop_so, e);

		json_decref(root);
		if (!part) {
			json_decref(before);
			return NULL;
		}
		root = part;
		/* the replaced target's portals keep listening (portal.c) */
		iscsi_portals_hold();
		held = true;
		if (drop_t) {
			char wwn[ISCSI_NAME_MAX];

			snprintf(wwn, sizeof(wwn), "%s", drop_t->wwn);
			iscsi_target_free(drop_t);
			iscsi_sessions_refresh(wwn, -1);
		}
		if (drop_so)
			ctl_so_free(drop_so);
	} else if (!clear && !config_empty()) {
		json_decref(root);
		json_decref(before);
		return ops_fail(e, RPC_REFUSED,
			    "Configuration is not empty: use clear_existing=true to replace it");
	} else if (clear) {
		iscsi_portals_hold();
		held = true;
		clear_all();
	}
	errors = json_array();
	rc = ctl_config_restore(root, abort_on_error, errors, err, sizeof(err));
	json_decref(root);
	if (rc && (tsel || ssel)) {
		/* abort_on_error took back what this call made; put back what
		 * it replaced, so a refused restore changes nothing */
		struct iscsi_target *x;
		struct ctl_so *y;
		struct rpc_error e2 = { 0 };
		json_t *old = restore_select(before, "", tsel, ssel, false,
					     &x, &y, &e2);
		char err2[256];

		if (old && ctl_config_restore(old, false, NULL, err2,
					      sizeof(err2)))
			log_err("restore_config: could not put back the "
				"replaced objects: %s", err2);
		json_decref(old);
	}
	if (held)
		iscsi_portals_release();
	iscsi_sessions_refresh(NULL, -1);
	after = ctl_config_dump();
	changes = ctl_config_diff(before, after);
	json_decref(before);
	json_decref(after);
	if (rc) {
		json_decref(errors);
		json_decref(changes);
		return ops_fail(e, RPC_REFUSED, "%s", err);
	}
	return json_pack("{s:o, s:o}", "errors", errors, "changes", changes);
}

json_t *m_clear_config(json_t *p, struct rpc_error *e)
{
	bool bad = false;

	if (!ops_p_bool(p, "confirm", false, e, &bad) || bad)
		return ops_fail(e, RPC_REFUSED,
			    "Please set confirm=True to clear the configuration");
	clear_all();
	return json_object();
}
