/* The control API's methods (docs/control-api.md). Each validates its
 * whole request before changing anything, so a refused call leaves the
 * configuration as it was; live sessions then get what the change means
 * for them (new LUN maps, or their end). Called with iscsi_fabric.lock
 * held, on the control thread. */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "control/alua.h"
#include "control/attrs.h"
#include "control/model.h"
#include "control/plugins.h"
#include "control/rpc.h"
#include "control/saveconfig.h"
#include "control/stats.h"
#include "iscsi/iscsi.h"
#include "iscsi/mgmt.h"
#include "iscsi/target.h"
#include "util/log.h"

static json_t *fail(struct rpc_error *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static json_t *fail(struct rpc_error *e, int code, const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return NULL;
}

/* The model returns -errno, -EEXIST only for "an object of that name / key
 * exists"; the RPC error code follows from it, never from the message's
 * words. Other errors (a missing file is -ENOENT, but not a missing
 * configuration object) are refusals. */
static int rpc_code(int err)
{
	return err == -EEXIST ? RPC_EXISTS : RPC_REFUSED;
}

/* ---- parameter access ---- */

static const char *p_str(json_t *p, const char *k, bool req,
			 struct rpc_error *e, bool *bad)
{
	json_t *v = json_object_get(p, k);

	if (!v || json_is_null(v)) {
		if (req) {
			fail(e, RPC_INVALID_PARAMS, "Missing parameter %s", k);
			*bad = true;
		}
		return NULL;
	}
	if (!json_is_string(v)) {
		fail(e, RPC_INVALID_PARAMS, "Parameter %s must be a string", k);
		*bad = true;
		return NULL;
	}
	return json_string_value(v);
}

/* Integers may come as numbers or numeric strings (the CLI passes what
 * the user typed). */
static bool p_int(json_t *p, const char *k, long long *out, bool req,
		  struct rpc_error *e, bool *bad)
{
	json_t *v = json_object_get(p, k);
	char *end;

	if (!v || json_is_null(v)) {
		if (req) {
			fail(e, RPC_INVALID_PARAMS, "Missing parameter %s", k);
			*bad = true;
		}
		return false;
	}
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return true;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);

		errno = 0;
		*out = strtoll(s, &end, 0);
		if (!errno && end != s && !*end)
			return true;
	}
	fail(e, RPC_INVALID_PARAMS, "Parameter %s must be an integer", k);
	*bad = true;
	return false;
}

static bool p_bool(json_t *p, const char *k, bool dflt, struct rpc_error *e,
		   bool *bad)
{
	json_t *v = json_object_get(p, k);

	if (!v || json_is_null(v))
		return dflt;
	if (json_is_boolean(v))
		return json_is_true(v);
	if (json_is_integer(v))
		return json_integer_value(v) != 0;
	if (json_is_string(v)) {
		const char *s = json_string_value(v);

		if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") ||
		    !strcmp(s, "1"))
			return true;
		if (!strcasecmp(s, "false") || !strcasecmp(s, "no") ||
		    !strcmp(s, "0"))
			return false;
	}
	fail(e, RPC_INVALID_PARAMS, "Parameter %s must be true or false", k);
	*bad = true;
	return dflt;
}

/* ---- object lookup ---- */

static struct ctl_so *get_so(json_t *p, struct rpc_error *e)
{
	bool bad = false;
	const char *plugin = p_str(p, "plugin", true, e, &bad);
	const char *name = p_str(p, "name", true, e, &bad);
	struct ctl_so *so;

	if (bad)
		return NULL;
	so = ctl_so_find(plugin, name);
	if (!so)
		fail(e, RPC_NOT_FOUND, "No storage object named %s in %s", name,
		     plugin);
	return so;
}

static struct iscsi_target *get_target(json_t *p, struct rpc_error *e)
{
	bool bad = false;
	const char *wwn = p_str(p, "wwn", true, e, &bad);
	struct iscsi_target *t;

	if (bad)
		return NULL;
	t = iscsi_target_find(wwn);
	if (!t)
		fail(e, RPC_NOT_FOUND, "No such Target in configfs: %s", wwn);
	return t;
}

static struct iscsi_tpg *get_tpg(json_t *p, struct rpc_error *e)
{
	struct iscsi_target *t = get_target(p, e);
	bool bad = false;
	long long tag;
	struct iscsi_tpg *tpg;

	if (!t || !p_int(p, "tag", &tag, true, e, &bad))
		return NULL;
	tpg = tag >= 1 && tag <= 65535 ? iscsi_tpg_find(t, (uint16_t)tag) : NULL;
	if (!tpg)
		fail(e, RPC_NOT_FOUND, "No such TPG: %s tpg%lld", t->wwn, tag);
	return tpg;
}

static struct iscsi_acl *get_acl(json_t *p, struct iscsi_tpg **tpgp,
				 struct rpc_error *e)
{
	struct iscsi_tpg *tpg = get_tpg(p, e);
	bool bad = false;
	const char *wwn;
	struct iscsi_acl *acl;

	if (!tpg)
		return NULL;
	wwn = p_str(p, "node_wwn", true, e, &bad);
	if (bad)
		return NULL;
	acl = iscsi_acl_find(tpg, wwn);
	if (!acl)
		fail(e, RPC_NOT_FOUND, "No such NodeACL in configfs: %s", wwn);
	if (tpgp)
		*tpgp = tpg;
	return acl;
}

/* ---- attributes (shared by backstores, TPGs, ACLs) ---- */

static json_t *attrs_get(const struct ctl_attr *tab, const void *obj)
{
	json_t *o = json_object();

	for (; tab->name; tab++)
		json_object_set_new(o, tab->name,
				    json_integer(ctl_attr_get(tab, obj)));
	return o;
}

/* All or none: values are checked on a copy, then copied back. */
static bool attrs_set(const struct ctl_attr *tab, void *obj, size_t objsize,
		      json_t *attrs, struct rpc_error *e)
{
	unsigned char copy[1024];
	const char *k;
	json_t *v;

	if (!attrs)
		return true; /* no "attributes": nothing to change */
	if (!json_is_object(attrs)) {
		fail(e, RPC_INVALID_PARAMS, "attributes must be an object");
		return false;
	}
	if (objsize > sizeof(copy)) {
		fail(e, RPC_REFUSED, "internal: attribute block too large");
		return false;
	}
	memcpy(copy, obj, objsize);
	json_object_foreach(attrs, k, v) {
		const struct ctl_attr *a = ctl_attr_find(tab, k);
		long long n = 0;
		bool bad = false;
		json_t *one = json_pack("{s:O}", "v", v);

		if (!a) {
			json_decref(one);
			fail(e, RPC_REFUSED, "Cannot find attribute: %s", k);
			return false;
		}
		if (json_is_boolean(v))
			n = json_is_true(v);
		else
			p_int(one, "v", &n, true, e, &bad);
		json_decref(one);
		if (bad) {
			fail(e, RPC_INVALID_PARAMS,
			     "Attribute %s must be an integer", k);
			return false;
		}
		if (ctl_attr_set(a, copy, n, false, e->message,
				 sizeof(e->message))) {
			e->code = RPC_REFUSED;
			return false;
		}
	}
	memcpy(obj, copy, objsize);
	return true;
}

static json_t *describe_tab(const struct ctl_attr *tab, const void *dflt)
{
	json_t *arr = json_array();

	for (; tab->name; tab++)
		json_array_append_new(arr, json_pack(
			"{s:s, s:I, s:I, s:I, s:b, s:b, s:s}", "name", tab->name,
			"default", (json_int_t)ctl_attr_get(tab, dflt),
			"min", (json_int_t)tab->min, "max", (json_int_t)tab->max,
			"ro", tab->ro, "honoured", tab->honoured,
			"description", tab->desc));
	return arr;
}

/* ---- whole configuration ---- */

static json_t *m_version(json_t *p, struct rpc_error *e)
{
	(void)p;
	(void)e;
	return json_pack("{s:s}", "version", UTARGET_VERSION);
}

static json_t *m_get_config(json_t *p, struct rpc_error *e)
{
	json_t *cfg, *o;
	bool bad = false, live = p_bool(p, "live", false, e, &bad);
	bool with_version = p_bool(p, "with_version", false, e, &bad);
	size_t i;

	if (bad)
		return NULL;
	cfg = ctl_config_dump();
	/* the version to pass as if_version to changes based on this read */
	if (with_version)
		json_object_set_new(cfg, "config_version",
				    json_integer((json_int_t)ctl_config_version));
	/* get_config is what saveconfig writes. LIO's saveconfig.json has
	 * no size for block objects (the device has one; rtslib-fb's restore
	 * hands an object's keys to its constructor, which takes none);
	 * live=true (utargetcli's `ls`) adds the device's size. */
	json_array_foreach(json_object_get(cfg, "storage_objects"), i, o) {
		if (!live)
			break;
		const char *pl = json_string_value(json_object_get(o, "plugin"));
		const char *nm = json_string_value(json_object_get(o, "name"));
		const struct ctl_plugin *plug = ctl_plugin_find(pl);
		struct ctl_so *so = plug && plug->live_size && nm ?
					    ctl_so_find(pl, nm) : NULL;

		if (so)
			json_object_set_new(o, "size",
					    json_integer((json_int_t)so->size));
	}
	return cfg;
}

static json_t *m_save_config(json_t *p, struct rpc_error *e)
{
	bool bad = false;
	const char *file = p_str(p, "file", false, e, &bad);
	long long keep = ctl_settings.max_backup_files;
	char bdir[4096], err[1024];
	json_t *prev, *now, *changes;
	bool replaced;

	/* max_backup_files: the caller's (utargetcli's global of that name)
	 * instead of the daemon's own setting, for this save only. */
	p_int(p, "max_backup_files", &keep, false, e, &bad);
	if (bad)
		return NULL;
	if (keep < 0 || keep > 1000)
		return fail(e, RPC_INVALID_PARAMS,
			    "Parameter max_backup_files must be 0 to 1000");
	if (!file || !file[0])
		file = ctl_settings.config_file;
	/* what this save changes in the file: against what it held */
	prev = json_load_file(file, 0, NULL);
	if (ctl_config_save(file, (unsigned)keep, bdir, sizeof(bdir), err,
			    sizeof(err))) {
		json_decref(prev);
		return fail(e, RPC_REFUSED, "%s", err);
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

static bool so_in_use(const struct ctl_so *so);

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
		return fail(e, RPC_NOT_FOUND, "%s %s is not in %s",
			    ssel && !sel_so ? "Storage object" : "Target",
			    ssel && !sel_so ? ssel : tsel, file);
	}
	*drop_t = t ? iscsi_target_find(jstr(t, "wwn")) : NULL;
	*drop_so = sel_so ? ctl_so_find(jstr(sel_so, "plugin"),
					jstr(sel_so, "name")) : NULL;
	if ((*drop_t || *drop_so) && !clear) {
		json_decref(sos);
		json_decref(tgts);
		return fail(e, RPC_EXISTS, "%s %s already exists: use "
			    "clear_existing=true to replace it",
			    *drop_t ? "Target" : "Storage object",
			    *drop_t ? (*drop_t)->wwn : jstr(sel_so, "name"));
	}
	if (*drop_so && so_in_use(*drop_so)) {
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
			return fail(e, RPC_REFUSED, "Storage object %s/%s is in "
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

static json_t *m_restore_config(json_t *p, struct rpc_error *e)
{
	bool bad = false;
	const char *file = p_str(p, "file", false, e, &bad);
	bool clear = p_bool(p, "clear_existing", false, e, &bad);
	bool abort_on_error = p_bool(p, "abort_on_error", false, e, &bad);
	const char *tsel = p_str(p, "target", false, e, &bad);
	const char *ssel = p_str(p, "storage_object", false, e, &bad);
	json_t *config = json_object_get(p, "config");
	json_t *root, *errors, *before, *after, *changes;
	json_error_t jerr;
	char err[1024];
	int rc;

	if (bad)
		return NULL;
	if ((tsel && !tsel[0]) || (ssel && !ssel[0]))
		return fail(e, RPC_INVALID_PARAMS, "Parameter %s must not be "
			    "empty", tsel && !tsel[0] ? "target" : "storage_object");
	if (config) {
		root = json_incref(config);
	} else {
		if (!file || !file[0])
			file = ctl_settings.config_file;
		root = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
		if (!root)
			return fail(e, RPC_REFUSED, "Cannot load %s: %s", file,
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
		return fail(e, RPC_REFUSED,
			    "Configuration is not empty: use clear_existing=true to replace it");
	} else if (clear) {
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
	iscsi_sessions_refresh(NULL, -1);
	after = ctl_config_dump();
	changes = ctl_config_diff(before, after);
	json_decref(before);
	json_decref(after);
	if (rc) {
		json_decref(errors);
		json_decref(changes);
		return fail(e, RPC_REFUSED, "%s", err);
	}
	return json_pack("{s:o, s:o}", "errors", errors, "changes", changes);
}

static json_t *m_clear_config(json_t *p, struct rpc_error *e)
{
	bool bad = false;

	if (!p_bool(p, "confirm", false, e, &bad) || bad)
		return fail(e, RPC_REFUSED,
			    "Please set confirm=True to clear the configuration");
	clear_all();
	return json_object();
}

static json_t *m_describe(json_t *p, struct rpc_error *e)
{
	bool bad = false;
	const char *kind = p_str(p, "kind", true, e, &bad);

	if (bad)
		return NULL;
	if (!strcmp(kind, "tpg")) {
		struct iscsi_tpg_attrs d;

		iscsi_tpg_attrs_default(&d);
		return describe_tab(ctl_tpg_attrs, &d);
	}
	if (!strcmp(kind, "acl")) {
		struct iscsi_acl_attrs d;

		iscsi_acl_attrs_default(&d);
		return describe_tab(ctl_acl_attrs, &d);
	}
	if (!strcmp(kind, "backstore")) {
		struct scsi_lu_attrs d;
		struct bs_dev fake = { .block_size = 512, .rotational = false };

		scsi_lu_attrs_default(&d, &fake);
		return describe_tab(ctl_so_attrs, &d);
	}
	if (!strcmp(kind, "alua"))
		return ctl_alua_describe();
	if (!strcmp(kind, "tpg_parameter")) {
		static const char *const desc[ITK__COUNT] = {
			[ITK_AUTHMETHOD] = "Authentication methods offered (CHAP, None)",
			[ITK_HEADERDIGEST] = "Header digests offered (CRC32C, None)",
			[ITK_DATADIGEST] = "Data digests offered (CRC32C, None)",
			[ITK_MAXCONNECTIONS] = "Connections per session",
			[ITK_TARGETALIAS] = "Alias the target declares at login",
			[ITK_INITIALR2T] = "Wait for R2T before sending write data",
			[ITK_IMMEDIATEDATA] = "Write data may ride in the command PDU",
			[ITK_MAXRECVDATASEGMENTLENGTH] = "Largest data segment the target receives",
			[ITK_MAXXMITDATASEGMENTLENGTH] = "Largest data segment the target sends",
			[ITK_MAXBURSTLENGTH] = "Largest solicited data sequence",
			[ITK_FIRSTBURSTLENGTH] = "Largest unsolicited data",
			[ITK_DEFAULTTIME2WAIT] = "Seconds to wait before reconnecting",
			[ITK_DEFAULTTIME2RETAIN] = "Seconds task state is kept after a connection loss",
			[ITK_MAXOUTSTANDINGR2T] = "R2Ts outstanding per command",
			[ITK_DATAPDUINORDER] = "Data PDUs in order",
			[ITK_DATASEQUENCEINORDER] = "Data sequences in order",
			[ITK_ERRORRECOVERYLEVEL] = "Error recovery level (0 only)",
			[ITK_IFMARKER] = "Obsolete (RFC 7143): always No",
			[ITK_OFMARKER] = "Obsolete (RFC 7143): always No",
			[ITK_IFMARKINT] = "Obsolete (RFC 7143)",
			[ITK_OFMARKINT] = "Obsolete (RFC 7143)",
			[ITK_RDMAEXTENSIONS] = "iSER only (not used over TCP)",
			[ITK_INITIATORRECVDATASEGMENTLENGTH] = "iSER only (not used over TCP)",
			[ITK_TARGETRECVDATASEGMENTLENGTH] = "iSER only (not used over TCP)",
		};
		struct iscsi_tpg_params d;
		json_t *arr = json_array();
		int k;

		iscsi_tpg_params_default(&d);
		for (k = 0; k < ITK__COUNT; k++)
			json_array_append_new(arr, json_pack(
				"{s:s, s:s, s:b, s:b, s:s}", "name",
				iscsi_tpg_key_name(k), "default", d.val[k],
				"ro", 0, "honoured", 1, "description",
				desc[k] ? desc[k] : ""));
		return arr;
	}
	return fail(e, RPC_INVALID_PARAMS,
		    "kind must be backstore, tpg, acl, alua or tpg_parameter");
}

static json_t *m_sessions(json_t *p, struct rpc_error *e)
{
	struct iscsi_sess_ref *refs = calloc(1024, sizeof(*refs));
	json_t *arr = json_array();
	size_t n, i;

	(void)p;
	if (!refs)
		return fail(e, RPC_REFUSED, "out of memory");
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

static json_t *m_stats(json_t *p, struct rpc_error *e)
{
	enum { CHUNK = 256 };
	struct iscsi_sess_ref *refs = calloc(CHUNK, sizeof(*refs));
	size_t n, sessions = 0;

	(void)p;
	if (!refs)
		return fail(e, RPC_REFUSED, "out of memory");
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
static json_t *m_stats_get(json_t *p, struct rpc_error *e)
{
	json_t *r;

	(void)p;
	r = ctl_stats_json();
	return r ? r : fail(e, RPC_REFUSED, "out of memory");
}

/* ---- storage objects ---- */

static bool so_in_use(const struct ctl_so *so)
{
	const struct iscsi_target *t;
	const struct iscsi_tpg *tpg;
	const struct iscsi_tpg_lun *l;

	list_for_each_entry(t, &iscsi_fabric.targets, link)
		list_for_each_entry(tpg, &t->tpgs, link)
			list_for_each_entry(l, &tpg->luns, link)
				if (l->lu == so->lu)
					return true;
	return false;
}

static json_t *m_bs_create(json_t *p, struct rpc_error *e)
{
	struct ctl_so_spec spec = { 0 };
	const struct ctl_plugin *plug;
	bool bad = false;
	long long size = 0;
	struct ctl_so *so;
	int rc;
	json_t *attrs = json_object_get(p, "attributes");
	char err[1024], cfgbuf[4096];

	spec.plugin = p_str(p, "plugin", true, e, &bad);
	spec.name = p_str(p, "name", true, e, &bad);
	spec.dev = p_str(p, "dev", false, e, &bad);
	spec.wwn = p_str(p, "wwn", false, e, &bad);
	if (p_int(p, "size", &size, false, e, &bad) && size < 0)
		return fail(e, RPC_INVALID_PARAMS, "size must not be negative");
	spec.size = (uint64_t)size;
	spec.write_back = p_bool(p, "write_back", true, e, &bad);
	spec.sparse = p_bool(p, "sparse", true, e, &bad);
	spec.readonly = p_bool(p, "readonly", false, e, &bad);
	spec.nullio = p_bool(p, "nullio", false, e, &bad);
	spec.create = p_bool(p, "create_image", false, e, &bad);
	if (bad)
		return NULL;
	plug = ctl_plugin_find(spec.plugin);
	if (plug && plug->needs == CTL_NEEDS_CONFIG) {
		/* rtslib's UserBackedStorageObject takes config
		 * "rbd/POOL/IMAGE..."; targetcli's user:rbd create takes the
		 * cfgstring without the handler: accept either. */
		const char *c = p_str(p, "config", false, e, &bad);
		const char *cs = p_str(p, "cfgstring", false, e, &bad);

		if (bad)
			return NULL;
		if (c && strncmp(c, "rbd/", 4))
			return fail(e, RPC_INVALID_PARAMS,
				    "config '%s': only the rbd handler is supported (rbd/POOL/IMAGE...)",
				    c);
		if (!c && cs) {
			snprintf(cfgbuf, sizeof(cfgbuf), "rbd/%s", cs);
			c = cfgbuf;
		}
		if (!c || !c[4])
			return fail(e, RPC_INVALID_PARAMS,
				    "Missing parameter cfgstring (POOL/IMAGE[;conf=PATH][;id=USER][;osd_op_timeout=N])");
		spec.plugin = plug->name;
		spec.dev = c;
	}
	if (plug && plug->needs == CTL_NEEDS_SIZE && size <= 0)
		return fail(e, RPC_INVALID_PARAMS, "A %s needs a size", plug->name);
	if (plug && plug->needs == CTL_NEEDS_DEV && (!spec.dev || !spec.dev[0]))
		return fail(e, RPC_INVALID_PARAMS, "Missing parameter dev");
	if ((rc = ctl_so_create(&spec, &so, err, sizeof(err))))
		return fail(e, rpc_code(rc), "%s", err);
	if (attrs && !attrs_set(ctl_so_attrs, &so->lu->attrs,
				sizeof(so->lu->attrs), attrs, e)) {
		ctl_so_free(so);
		return NULL;
	}
	return ctl_so_json(so);
}

static json_t *m_bs_delete(json_t *p, struct rpc_error *e)
{
	struct ctl_so *so = get_so(p, e);

	if (!so)
		return NULL;
	if (so_in_use(so))
		return fail(e, RPC_REFUSED,
			    "Storage object %s/%s is in use by a LUN; delete the LUN first",
			    so->plugin, so->name);
	ctl_so_free(so);
	return json_object();
}

/* Online resize (beyond LIO, whose storage objects keep the size they were
 * made with): the backstore grows first, then every I_T nexus gets
 * CAPACITY DATA HAS CHANGED (SBC-3 4.6) through the LU's resized hook.
 * No size: the medium's own (a grown block device). A smaller size needs
 * force. */
static json_t *m_bs_resize(json_t *p, struct rpc_error *e)
{
	struct ctl_so *so = get_so(p, e);
	bool bad = false, force;
	long long size = 0;
	uint64_t old, now;
	char err[1024];
	int rc;

	if (!so)
		return NULL;
	if (p_int(p, "size", &size, false, e, &bad) && size <= 0)
		return fail(e, RPC_INVALID_PARAMS, "size must be positive");
	force = p_bool(p, "force", false, e, &bad);
	if (bad)
		return NULL;
	old = __atomic_load_n(&so->lu->bs->size, __ATOMIC_RELAXED);
	rc = bs_resize(so->lu->bs, (uint64_t)size, force, &now, err,
		       sizeof(err));
	if (rc)
		return fail(e, RPC_REFUSED, "%s/%s: %s", so->plugin, so->name,
			    err);
	so->size = now;
	if (now != old)
		log_info("storage object %s/%s resized from %llu to %llu bytes",
			 so->plugin, so->name, (unsigned long long)old,
			 (unsigned long long)now);
	return json_pack("{s:I,s:I}", "old_size", (json_int_t)old, "size",
			 (json_int_t)now);
}

static json_t *m_bs_set_attrs(json_t *p, struct rpc_error *e)
{
	struct ctl_so *so = get_so(p, e);
	struct scsi_lu_attrs before;
	json_t *attrs = json_object_get(p, "attributes");

	if (!so)
		return NULL;
	before = so->lu->attrs;
	if (!attrs_set(ctl_so_attrs, &so->lu->attrs, sizeof(so->lu->attrs),
		       attrs, e))
		return NULL;
	if (so->lu->attrs.block_size != before.block_size &&
	    (so->lu->attrs.block_size & (so->lu->attrs.block_size - 1))) {
		so->lu->attrs = before;
		return fail(e, RPC_REFUSED,
			    "block_size %u is not supported (use 512, 1024, 2048 or 4096)",
			    (unsigned)so->lu->attrs.block_size);
	}
	if (so->lu->attrs.optimal_sectors > so->lu->attrs.hw_max_sectors) {
		so->lu->attrs = before;
		return fail(e, RPC_REFUSED,
			    "optimal_sectors cannot be larger than hw_max_sectors (%u)",
			    (unsigned)before.hw_max_sectors);
	}
	if (so->lu->attrs.block_size != before.block_size &&
	    (so_in_use(so) || so->lu->bs->size % so->lu->attrs.block_size)) {
		so->lu->attrs = before;
		return fail(e, RPC_REFUSED,
			    "block_size can change only while the storage object is not exported and divides its size");
	}
	if (so->lu->attrs.block_size != before.block_size)
		atomic_store(&so->lu->nblocks,
			     so->lu->bs->size / so->lu->attrs.block_size);
	if (so->lu->attrs.emulate_write_cache != before.emulate_write_cache)
		atomic_store(&so->lu->bs->write_back,
			     so->lu->attrs.emulate_write_cache);
	return json_object();
}

static json_t *m_bs_get_attrs(json_t *p, struct rpc_error *e)
{
	struct ctl_so *so = get_so(p, e);

	return so ? attrs_get(ctl_so_attrs, &so->lu->attrs) : NULL;
}

/* ---- targets and TPGs ---- */

static void default_iqn(char *out, size_t n)
{
	char host[256] = "localhost", h2[128], arch[32];
	struct utsname u;
	uint8_t r[6];
	size_t i, j = 0;

	gethostname(host, sizeof(host) - 1);
	for (i = 0; host[i] && j < sizeof(h2) - 1; i++)
		if (isalnum((unsigned char)host[i]) || host[i] == '.' ||
		    host[i] == '-')
			h2[j++] = (char)tolower((unsigned char)host[i]);
	h2[j] = 0;
	j = 0;
	arch[0] = 0;
	if (uname(&u) == 0)
		for (i = 0; u.machine[i] && j < sizeof(arch) - 1; i++)
			if (isalnum((unsigned char)u.machine[i]))
				arch[j++] = (char)tolower((unsigned char)u.machine[i]);
	arch[j] = 0;
	while (getrandom(r, sizeof(r), 0) != sizeof(r))
		;
	/* the host part is bounded so the name stays within 223 bytes */
	snprintf(out, n,
		 "iqn.2003-01.org.linux-iscsi.%.120s.%.20s:sn.%02x%02x%02x%02x%02x%02x",
		 h2[0] ? h2 : "localhost", arch[0] ? arch : "unknown", r[0], r[1],
		 r[2], r[3], r[4], r[5]);
}

static json_t *m_target_create(json_t *p, struct rpc_error *e)
{
	bool bad = false;
	const char *wwn = p_str(p, "wwn", false, e, &bad);
	char gen[ISCSI_NAME_MAX], norm[ISCSI_NAME_MAX], err[256];

	if (bad)
		return NULL;
	if (!wwn || !wwn[0]) {
		default_iqn(gen, sizeof(gen));
		wwn = gen;
	}
	/* stored in lower case, as rtslib normalises (RFC 3722 §3) */
	if (ctl_wwn_normalize(wwn, norm, sizeof(norm), err, sizeof(err)))
		return fail(e, RPC_REFUSED, "%s", err);
	wwn = norm;
	if (iscsi_target_find(wwn))
		return fail(e, RPC_EXISTS, "Target %s already exists", wwn);
	if (!iscsi_target_new(wwn))
		return fail(e, RPC_REFUSED, "out of memory");
	return json_pack("{s:s}", "wwn", wwn);
}

static json_t *m_target_delete(json_t *p, struct rpc_error *e)
{
	struct iscsi_target *t = get_target(p, e);
	char wwn[ISCSI_NAME_MAX];

	if (!t)
		return NULL;
	snprintf(wwn, sizeof(wwn), "%s", t->wwn);
	iscsi_target_free(t);
	iscsi_sessions_refresh(wwn, -1);
	return json_object();
}

static json_t *m_tpg_create(json_t *p, struct rpc_error *e)
{
	struct iscsi_target *t = get_target(p, e);
	bool bad = false;
	long long tag = 0;

	if (!t)
		return NULL;
	if (p_int(p, "tag", &tag, false, e, &bad)) {
		if (tag < 1 || tag > 65535)
			return fail(e, RPC_REFUSED, "Invalid TPG tag %lld (1-65535)",
				    tag);
		if (iscsi_tpg_find(t, (uint16_t)tag))
			return fail(e, RPC_EXISTS, "TPG %lld already exists", tag);
	} else if (bad) {
		return NULL;
	} else {
		for (tag = 1; tag <= 65535 && iscsi_tpg_find(t, (uint16_t)tag);
		     tag++)
			;
		if (tag > 65535)
			return fail(e, RPC_REFUSED, "No free TPG tag");
	}
	if (!iscsi_tpg_new(t, (uint16_t)tag))
		return fail(e, RPC_REFUSED, "out of memory");
	return json_pack("{s:i}", "tag", (int)tag);
}

static json_t *m_tpg_delete(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = get_tpg(p, e);
	char wwn[ISCSI_NAME_MAX];
	int tag;

	if (!tpg)
		return NULL;
	snprintf(wwn, sizeof(wwn), "%s", tpg->target->wwn);
	tag = tpg->tag;
	iscsi_tpg_free(tpg);
	iscsi_sessions_refresh(wwn, tag);
	return json_object();
}

static json_t *m_tpg_enable(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = get_tpg(p, e);
	bool bad = false, en;

	if (!tpg)
		return NULL;
	en = p_bool(p, "enable", true, e, &bad);
	if (bad)
		return NULL;
	tpg->enable = en;
	iscsi_fabric.generation++;
	if (!en)
		iscsi_sessions_refresh(tpg->target->wwn, tpg->tag);
	return json_object();
}

static json_t *m_tpg_set_attrs(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = get_tpg(p, e);
	json_t *attrs = json_object_get(p, "attributes");

	if (!tpg)
		return NULL;
	if (!attrs_set(ctl_tpg_attrs, &tpg->attrs, sizeof(tpg->attrs),
		       attrs, e))
		return NULL;
	/* generate_node_acls and the write-protect attributes change what
	 * sessions see */
	iscsi_sessions_refresh(tpg->target->wwn, tpg->tag);
	return json_object();
}

static json_t *m_tpg_get_attrs(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = get_tpg(p, e);

	return tpg ? attrs_get(ctl_tpg_attrs, &tpg->attrs) : NULL;
}

static json_t *m_tpg_set_params(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = get_tpg(p, e);
	json_t *params = json_object_get(p, "parameters"), *v;
	struct iscsi_tpg_params copy;
	const char *k;

	if (!tpg)
		return NULL;
	if (!json_is_object(params))
		return fail(e, RPC_INVALID_PARAMS, "parameters must be an object");
	copy = tpg->params;
	json_object_foreach(params, k, v) {
		char buf[32];
		const char *s = json_string_value(v);

		if (json_is_integer(v)) {
			snprintf(buf, sizeof(buf), "%lld",
				 (long long)json_integer_value(v));
			s = buf;
		}
		if (!s)
			return fail(e, RPC_INVALID_PARAMS,
				    "Parameter %s must be a string", k);
		if (iscsi_tpg_param_set(&copy, k, s, e->message,
					sizeof(e->message))) {
			e->code = RPC_REFUSED;
			return NULL;
		}
	}
	tpg->params = copy;
	return json_object();
}

static json_t *m_tpg_get_params(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = get_tpg(p, e);
	json_t *o;
	int k;

	if (!tpg)
		return NULL;
	o = json_object();
	for (k = 0; k < ITK__COUNT; k++)
		json_object_set_new(o, iscsi_tpg_key_name(k),
				    json_string(tpg->params.val[k]));
	return o;
}

static const char *const auth_keys[] = { "userid", "password",
					 "mutual_userid", "mutual_password" };

static bool auth_set(struct iscsi_auth *a, json_t *p, struct rpc_error *e)
{
	struct iscsi_auth copy = *a;
	char *dst[] = { copy.userid, copy.password, copy.mutual_userid,
			copy.mutual_password };
	int i;

	for (i = 0; i < 4; i++) {
		bool bad = false;
		const char *v = p_str(p, auth_keys[i], false, e, &bad);

		if (bad)
			return false;
		if (!v)
			continue;
		if (strlen(v) >= ISCSI_SECRET_MAX) {
			fail(e, RPC_REFUSED, "%s is longer than %d bytes",
			     auth_keys[i], ISCSI_SECRET_MAX - 1);
			return false;
		}
		snprintf(dst[i], ISCSI_SECRET_MAX, "%s", v);
	}
	*a = copy;
	return true;
}

static json_t *auth_get(const struct iscsi_auth *a)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "userid", a->userid,
			 "password", a->password, "mutual_userid",
			 a->mutual_userid, "mutual_password", a->mutual_password);
}

static json_t *m_tpg_set_auth(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = get_tpg(p, e);

	return tpg && auth_set(&tpg->auth, p, e) ? json_object() : NULL;
}

static json_t *m_tpg_get_auth(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = get_tpg(p, e);

	return tpg ? auth_get(&tpg->auth) : NULL;
}

/* allowed_networks (issue 21): replaces the list; a bad entry changes
 * nothing. Sessions already logged in are not dropped: the list is
 * checked at login and in SendTargets (docs/control-api.md). */
static json_t *netlist_set(struct ut_netlist *l, json_t *p,
			   struct rpc_error *e)
{
	json_t *v = json_object_get(p, "allowed_networks");

	if (!v)
		return fail(e, RPC_INVALID_PARAMS,
			    "missing parameter allowed_networks");
	if (ctl_netlist_from_json(v, l, e->message, sizeof(e->message))) {
		e->code = RPC_INVALID_PARAMS;
		return NULL;
	}
	iscsi_fabric.generation++;
	return json_object();
}

static json_t *m_tpg_set_networks(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = get_tpg(p, e);

	return tpg ? netlist_set(&tpg->allowed_networks, p, e) : NULL;
}

static json_t *m_tpg_get_networks(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = get_tpg(p, e);

	return tpg ? json_pack("{s:o}", "allowed_networks",
			       ctl_netlist_to_json(&tpg->allowed_networks))
		   : NULL;
}

static json_t *m_acl_set_networks(json_t *p, struct rpc_error *e)
{
	struct iscsi_acl *acl = get_acl(p, NULL, e);

	return acl ? netlist_set(&acl->allowed_networks, p, e) : NULL;
}

static json_t *m_acl_get_networks(json_t *p, struct rpc_error *e)
{
	struct iscsi_acl *acl = get_acl(p, NULL, e);

	return acl ? json_pack("{s:o}", "allowed_networks",
			       ctl_netlist_to_json(&acl->allowed_networks))
		   : NULL;
}

static json_t *m_disc_set(json_t *p, struct rpc_error *e)
{
	bool bad = false;
	bool en = p_bool(p, "enable", iscsi_fabric.discovery_enable_auth, e,
			 &bad);

	if (bad || !auth_set(&iscsi_fabric.discovery_auth, p, e))
		return NULL;
	iscsi_fabric.discovery_enable_auth = en;
	return json_object();
}

static json_t *m_disc_get(json_t *p, struct rpc_error *e)
{
	json_t *o = auth_get(&iscsi_fabric.discovery_auth);

	(void)p;
	(void)e;
	json_object_set_new(o, "enable",
			    json_boolean(iscsi_fabric.discovery_enable_auth));
	return o;
}

/* ---- LUNs ---- */

static uint32_t lowest_free_mapped(struct iscsi_acl *acl, uint32_t want)
{
	const struct iscsi_mapped_lun *m;
	uint32_t i;

	for (i = want;; i = (i == want ? 0 : i + 1)) {
		bool used = false;

		list_for_each_entry(m, &acl->mapped_luns, link)
			if (m->index == i)
				used = true;
		if (!used)
			return i;
		if (i != want && i >= 65535)
			return UINT32_MAX;
	}
}

static json_t *m_lun_create(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = get_tpg(p, e);
	bool bad = false;
	const char *path, *ualias;
	long long lun = -1;
	bool add_mapped;
	char plugin[32], name[64], alias[16], canon[256];
	struct ctl_so *so;
	struct iscsi_tpg_lun *l;
	struct iscsi_acl *acl;
	json_t *mapped;
	uint8_t r[5];

	if (!tpg)
		return NULL;
	path = p_str(p, "storage_object", true, e, &bad);
	ualias = p_str(p, "alias", false, e, &bad);
	/* absent means the lowest free LUN; a given one must be in range */
	if (p_int(p, "lun", &lun, false, e, &bad) && (lun < 0 || lun > 65535))
		return fail(e, RPC_REFUSED, "LUN must be 0 to 65535");
	add_mapped = p_bool(p, "add_mapped_luns", true, e, &bad);
	if (bad)
		return NULL;
	if (sscanf(path, "/backstores/%31[^/]/%63s", plugin, name) != 2)
		return fail(e, RPC_INVALID_PARAMS,
			    "storage_object must be /backstores/<type>/<name>");
	so = ctl_so_find(plugin, name);
	if (!so)
		return fail(e, RPC_NOT_FOUND, "No storage object %s", path);
	if (lun < 0) {
		for (lun = 0; lun <= 65535 && iscsi_tpg_lun_find(tpg, (uint32_t)lun);
		     lun++)
			;
	}
	if (lun > 65535)
		return fail(e, RPC_REFUSED, "LUN must be 0 to 65535");
	if (iscsi_tpg_lun_find(tpg, (uint32_t)lun))
		return fail(e, RPC_EXISTS, "LUN %lld already exists", lun);
	list_for_each_entry(l, &tpg->luns, link)
		if (l->lu == so->lu)
			return fail(e, RPC_REFUSED,
				    "Storage object %s is already a LUN of this TPG (lun%u)",
				    path, l->index);
	ctl_so_path(so, canon, sizeof(canon));
	l = iscsi_tpg_lun_new(tpg, (uint32_t)lun, so->lu, canon);
	if (!l)
		return fail(e, RPC_REFUSED, "out of memory");
	while (getrandom(r, sizeof(r), 0) != sizeof(r))
		;
	snprintf(alias, sizeof(alias), "%02x%02x%02x%02x%02x", r[0], r[1], r[2],
		 r[3], r[4]);
	snprintf(l->alias, sizeof(l->alias), "%s",
		 ualias && ualias[0] ? ualias : alias);
	mapped = json_array();
	if (add_mapped) {
		list_for_each_entry(acl, &tpg->acls, link) {
			uint32_t idx = lowest_free_mapped(acl, (uint32_t)lun);

			if (idx == UINT32_MAX ||
			    !iscsi_mapped_lun_new(acl, idx, (uint32_t)lun, false))
				continue;
			json_array_append_new(mapped, json_pack("{s:s, s:i}",
				"node_wwn", acl->node_wwn, "mapped_lun", (int)idx));
		}
	}
	iscsi_sessions_refresh(tpg->target->wwn, tpg->tag);
	return json_pack("{s:i, s:o}", "lun", (int)lun, "mapped", mapped);
}

/* ---- ALUA target port groups (LIO: /backstores/TYPE/NAME/alua/GROUP) ---- */

static struct scsi_alua_gp *get_gp(json_t *p, struct ctl_so **sop,
				   struct rpc_error *e)
{
	struct ctl_so *so = get_so(p, e);
	bool bad = false;
	const char *g = so ? p_str(p, "group", true, e, &bad) : NULL;
	struct scsi_alua_gp *gp;

	if (!so || bad)
		return NULL;
	gp = scsi_alua_gp_find(so->lu, g);
	if (!gp)
		fail(e, RPC_NOT_FOUND, "No ALUA group %s on %s/%s", g,
		     so->plugin, so->name);
	*sop = so;
	return gp;
}

/* LIO's members: TARGET/tpgt_N/lun_M of the LUNs in the group. */
static json_t *gp_members(const struct ctl_so *so, const struct scsi_alua_gp *gp)
{
	json_t *a = json_array();
	const struct iscsi_target *t;
	const struct iscsi_tpg *tpg;
	const struct iscsi_tpg_lun *l;

	list_for_each_entry(t, &iscsi_fabric.targets, link)
		list_for_each_entry(tpg, &t->tpgs, link)
			list_for_each_entry(l, &tpg->luns, link)
				if (l->lu == so->lu && atomic_load(&l->alua->gp) == gp)
					json_array_append_new(a, json_sprintf(
						"%s/tpgt_%u/lun_%u", t->wwn,
						tpg->tag, l->index));
	return a;
}

static json_t *m_alua_create(json_t *p, struct rpc_error *e)
{
	struct ctl_so *so = get_so(p, e);
	bool bad = false;
	const char *g = so ? p_str(p, "group", true, e, &bad) : NULL;
	long long tag;
	struct scsi_alua_gp *gp;
	int rc;

	if (!so || bad || !p_int(p, "tag", &tag, true, e, &bad))
		return NULL;
	if (tag < 1 || tag > 65535)
		return fail(e, RPC_INVALID_PARAMS, "tag must be 1 to 65535 (0 is "
			    "default_tg_pt_gp's)");
	if (strlen(g) >= sizeof(gp->name) || !g[0] || strchr(g, '/'))
		return fail(e, RPC_INVALID_PARAMS, "group must be a name of 1 to "
			    "%zu characters without '/'", sizeof(gp->name) - 1);
	rc = scsi_alua_gp_create(so->lu, g, (uint16_t)tag, &gp);
	if (rc == -EEXIST)
		return fail(e, RPC_EXISTS, "An ALUA group named %s or with tag "
			    "%lld already exists on %s/%s", g, tag, so->plugin,
			    so->name);
	if (rc)
		return fail(e, RPC_REFUSED, "out of memory");
	return ctl_alua_gp_json(so->lu, gp);
}

static json_t *m_alua_delete(json_t *p, struct rpc_error *e)
{
	struct ctl_so *so = NULL;
	struct scsi_alua_gp *gp = get_gp(p, &so, e);
	int rc;

	if (!gp)
		return NULL;
	rc = scsi_alua_gp_delete(so->lu, gp);
	if (rc == -EPERM)
		return fail(e, RPC_REFUSED, "default_tg_pt_gp cannot be deleted");
	if (rc == -EBUSY)
		return fail(e, RPC_REFUSED, "ALUA group %s has LUNs in it: move "
			    "them out first (set alua alua_tg_pt_gp_name=...)",
			    gp->name);
	return json_object();
}

static json_t *m_alua_get(json_t *p, struct rpc_error *e)
{
	struct ctl_so *so = NULL;
	struct scsi_alua_gp *gp = get_gp(p, &so, e);
	json_t *o;

	if (!gp)
		return NULL;
	o = ctl_alua_gp_json(so->lu, gp);
	json_object_del(o, "name");
	json_object_set_new(o, "members", gp_members(so, gp));
	return o;
}

static json_t *m_alua_set(json_t *p, struct rpc_error *e)
{
	struct ctl_so *so = NULL;
	struct scsi_alua_gp *gp = get_gp(p, &so, e);
	char err[512];
	int rc;

	if (!gp)
		return NULL;
	rc = ctl_alua_set(so->lu, gp, json_object_get(p, "attributes"), false,
			  err, sizeof(err));
	if (rc == -EINVAL && !json_is_object(json_object_get(p, "attributes")))
		return fail(e, RPC_INVALID_PARAMS, "%s", err);
	if (rc)
		return fail(e, rpc_code(rc), "%s", err);
	return m_alua_get(p, e);
}

/* The LUN's ALUA settings in LIO's configfs names (tpgt_N/lun/lun_M/
 * alua_tg_pt_gp, alua_tg_pt_offline, alua_tg_pt_status,
 * alua_tg_pt_write_md). */
static json_t *lun_alua_json(struct iscsi_tpg_lun *l)
{
	struct scsi_alua_gp *gp = atomic_load(&l->alua->gp);

	return json_pack("{s:s, s:i, s:i, s:i}", "alua_tg_pt_gp_name",
			 gp ? gp->name : "", "alua_tg_pt_offline",
			 (int)atomic_load(&l->alua->offline), "alua_tg_pt_status",
			 (int)atomic_load(&l->alua->sec_status),
			 "alua_tg_pt_write_md", (int)l->alua->sec_write_md);
}

static struct iscsi_tpg_lun *lun_of(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = get_tpg(p, e);
	bool bad = false;
	long long lun;
	struct iscsi_tpg_lun *l;

	if (!tpg || !p_int(p, "lun", &lun, true, e, &bad))
		return NULL;
	l = lun >= 0 && lun <= 65535 ? iscsi_tpg_lun_find(tpg, (uint32_t)lun) :
				       NULL;
	if (!l)
		fail(e, RPC_NOT_FOUND, "No LUN with index %lld", lun);
	return l;
}

/* LIO's `set alua alua_tg_pt_gp_name=NAME` on a LUN: its target port
 * joins that group of the LUN's storage object. With it (or alone) the
 * port's secondary state as LIO's configfs takes it
 * (target_core_alua.c core_alua_store_offline_bit, _secondary_status,
 * _secondary_write_metadata): alua_tg_pt_offline 0/1, alua_tg_pt_status
 * 0/1/2, alua_tg_pt_write_md 0/1; all checked before any is set. */
static json_t *m_lun_set_alua(json_t *p, struct rpc_error *e)
{
	static const struct { const char *k; long long max; } sec[] = {
		{ "alua_tg_pt_offline", 1 }, { "alua_tg_pt_status", 2 },
		{ "alua_tg_pt_write_md", 1 },
	};
	bool bad = false, have[3] = { false };
	long long v[3];
	const char *g;
	struct iscsi_tpg_lun *l = lun_of(p, e);
	struct scsi_alua_gp *gp = NULL;

	if (!l)
		return NULL;
	g = p_str(p, "alua_tg_pt_gp_name", false, e, &bad);
	for (int i = 0; i < 3 && !bad; i++) {
		have[i] = p_int(p, sec[i].k, &v[i], false, e, &bad);
		if (have[i] && (v[i] < 0 || v[i] > sec[i].max))
			return fail(e, RPC_INVALID_PARAMS, "Illegal value for "
				    "%s: %lld (0 to %lld)", sec[i].k, v[i],
				    sec[i].max);
	}
	if (bad)
		return NULL;
	if (!g && !have[0] && !have[1] && !have[2])
		return fail(e, RPC_INVALID_PARAMS, "Missing parameter "
			    "alua_tg_pt_gp_name");
	if (g) {
		gp = scsi_alua_gp_find(l->lu, g);
		if (!gp)
			return fail(e, RPC_NOT_FOUND, "No ALUA group %s on %s",
				    g, l->so_path);
		scsi_alua_port_set_gp(l->lu, l->alua, gp);
	}
	if (have[2])
		l->alua->sec_write_md = v[2];
	if (have[0])	/* sets the status to 2, as LIO's does */
		scsi_alua_port_set_offline(l->lu, l->alua, v[0]);
	if (have[1])
		atomic_store(&l->alua->sec_status, (uint8_t)v[1]);
	return lun_alua_json(l);
}

static json_t *m_lun_get_alua(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg_lun *l = lun_of(p, e);

	return l ? lun_alua_json(l) : NULL;
}

static json_t *m_lun_delete(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = get_tpg(p, e);
	bool bad = false;
	long long lun;
	struct iscsi_tpg_lun *l;
	struct iscsi_acl *acl;

	if (!tpg || !p_int(p, "lun", &lun, true, e, &bad))
		return NULL;
	l = lun >= 0 && lun <= 65535 ? iscsi_tpg_lun_find(tpg, (uint32_t)lun) :
				       NULL;
	if (!l)
		return fail(e, RPC_NOT_FOUND, "No LUN with index %lld", lun);
	/* mapped LUNs that point at it go with it (LIO does the same) */
	list_for_each_entry(acl, &tpg->acls, link) {
		struct iscsi_mapped_lun *m, *n;

		list_for_each_entry_safe(m, n, &acl->mapped_luns, link)
			if (m->tpg_lun == l->index) {
				list_del(&m->link);
				free(m);
			}
	}
	iscsi_tpg_lun_free(l);
	iscsi_sessions_refresh(tpg->target->wwn, tpg->tag);
	return json_object();
}

/* ---- portals ---- */

static json_t *m_portal_create(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = get_tpg(p, e);
	bool bad = false;
	const char *ip;
	long long port = 3260;
	struct iscsi_portal *pt;
	int rc;
	char err[512];

	if (!tpg)
		return NULL;
	ip = p_str(p, "ip_address", false, e, &bad);
	p_int(p, "port", &port, false, e, &bad);
	if (bad)
		return NULL;
	if (!ip || !ip[0])
		ip = "0.0.0.0";
	if (port < 1 || port > 65535)
		return fail(e, RPC_REFUSED, "Invalid port %lld (1-65535)", port);
	if ((rc = iscsi_portal_new(tpg, ip, (uint16_t)port, &pt, err, sizeof(err))))
		return fail(e, rpc_code(rc), "%s", err);
	return json_pack("{s:s, s:i}", "ip_address", pt->ip, "port", (int)port);
}

static bool parse_ip(const char *ip, unsigned char out[17])
{
	char buf[64];
	size_t n = strlen(ip);

	if (n >= 2 && ip[0] == '[' && ip[n - 1] == ']' && n - 2 < sizeof(buf)) {
		memcpy(buf, ip + 1, n - 2);
		buf[n - 2] = 0;
		ip = buf;
	}
	memset(out, 0, 17);
	if (inet_pton(AF_INET, ip, out + 1) == 1) {
		out[0] = 4;
		return true;
	}
	if (inet_pton(AF_INET6, ip, out + 1) == 1) {
		out[0] = 6;
		return true;
	}
	return false;
}

static bool same_addr(const char *a, const char *b)
{
	unsigned char x[17], y[17];

	if (!parse_ip(a, x) || !parse_ip(b, y))
		return !strcmp(a, b);
	return !memcmp(x, y, sizeof(x));
}

static json_t *m_portal_delete(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = get_tpg(p, e);
	bool bad = false;
	const char *ip;
	long long port = 3260;
	struct iscsi_portal *pt;

	if (!tpg)
		return NULL;
	ip = p_str(p, "ip_address", true, e, &bad);
	p_int(p, "port", &port, false, e, &bad);
	if (bad)
		return NULL;
	list_for_each_entry(pt, &tpg->portals, link) {
		/* "::1", "[::1]" and "0::1" name one portal, as in create */
		if (pt->port == port && same_addr(pt->ip, ip)) {
			iscsi_portal_free(pt);
			return json_object();
		}
	}
	return fail(e, RPC_NOT_FOUND, "No such NetworkPortal in configfs: %s:%lld",
		    ip, port);
}

/* ---- ACLs and mapped LUNs ---- */

static json_t *m_acl_create(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = get_tpg(p, e);
	bool bad = false, add_mapped;
	const char *wwn;
	char err[256], norm[ISCSI_NAME_MAX];
	struct iscsi_acl *acl;
	struct iscsi_tpg_lun *l;
	json_t *mapped;

	if (!tpg)
		return NULL;
	wwn = p_str(p, "node_wwn", true, e, &bad);
	add_mapped = p_bool(p, "add_mapped_luns", true, e, &bad);
	if (bad)
		return NULL;
	if (ctl_wwn_normalize(wwn, norm, sizeof(norm), err, sizeof(err)))
		return fail(e, RPC_REFUSED, "%s", err);
	wwn = norm;
	if (iscsi_acl_find(tpg, wwn))
		return fail(e, RPC_EXISTS, "This NodeACL already exists in configFS");
	acl = iscsi_acl_new(tpg, wwn);
	if (!acl)
		return fail(e, RPC_REFUSED, "out of memory");
	mapped = json_array();
	if (add_mapped) {
		list_for_each_entry(l, &tpg->luns, link) {
			if (iscsi_mapped_lun_new(acl, l->index, l->index, false))
				json_array_append_new(mapped,
						      json_integer(l->index));
		}
	}
	iscsi_sessions_refresh(tpg->target->wwn, tpg->tag);
	return json_pack("{s:s, s:o}", "node_wwn", acl->node_wwn, "mapped",
			 mapped);
}

static json_t *m_acl_delete(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg;
	struct iscsi_acl *acl = get_acl(p, &tpg, e);

	if (!acl)
		return NULL;
	iscsi_acl_free(acl);
	iscsi_sessions_refresh(tpg->target->wwn, tpg->tag);
	return json_object();
}

static json_t *m_acl_set_attrs(json_t *p, struct rpc_error *e)
{
	struct iscsi_acl *acl = get_acl(p, NULL, e);
	json_t *attrs = json_object_get(p, "attributes");

	if (!acl)
		return NULL;
	return attrs_set(ctl_acl_attrs, &acl->attrs, sizeof(acl->attrs),
			 attrs, e) ? json_object() : NULL;
}

static json_t *m_acl_get_attrs(json_t *p, struct rpc_error *e)
{
	struct iscsi_acl *acl = get_acl(p, NULL, e);

	return acl ? attrs_get(ctl_acl_attrs, &acl->attrs) : NULL;
}

static json_t *m_acl_set_auth(json_t *p, struct rpc_error *e)
{
	struct iscsi_acl *acl = get_acl(p, NULL, e);

	return acl && auth_set(&acl->auth, p, e) ? json_object() : NULL;
}

static json_t *m_acl_get_auth(json_t *p, struct rpc_error *e)
{
	struct iscsi_acl *acl = get_acl(p, NULL, e);

	return acl ? auth_get(&acl->auth) : NULL;
}

static json_t *m_acl_set_tag(json_t *p, struct rpc_error *e)
{
	struct iscsi_acl *acl = get_acl(p, NULL, e);
	bool bad = false;
	const char *tag;

	if (!acl)
		return NULL;
	tag = p_str(p, "acl_tag", false, e, &bad);
	if (bad)
		return NULL;
	snprintf(acl->tag, sizeof(acl->tag), "%s", tag ? tag : "");
	return json_object();
}

static struct iscsi_mapped_lun *find_mapped(struct iscsi_acl *acl, long long i)
{
	struct iscsi_mapped_lun *m;

	list_for_each_entry(m, &acl->mapped_luns, link)
		if (m->index == i)
			return m;
	return NULL;
}

static json_t *m_mlun_create(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg;
	struct iscsi_acl *acl = get_acl(p, &tpg, e);
	bool bad = false, wp;
	long long idx, tl;

	if (!acl)
		return NULL;
	p_int(p, "mapped_lun", &idx, true, e, &bad);
	p_int(p, "tpg_lun", &tl, true, e, &bad);
	wp = p_bool(p, "write_protect", false, e, &bad);
	if (bad)
		return NULL;
	if (idx < 0 || idx > 65535)
		return fail(e, RPC_REFUSED, "Mapped LUN must be 0 to 65535");
	if (tl < 0 || tl > 65535 || !iscsi_tpg_lun_find(tpg, (uint32_t)tl))
		return fail(e, RPC_NOT_FOUND, "No TPG LUN %lld", tl);
	if (find_mapped(acl, idx))
		return fail(e, RPC_EXISTS, "Mapped LUN %lld already exists", idx);
	if (!iscsi_mapped_lun_new(acl, (uint32_t)idx, (uint32_t)tl, wp))
		return fail(e, RPC_REFUSED, "out of memory");
	iscsi_sessions_refresh(tpg->target->wwn, tpg->tag);
	return json_object();
}

static json_t *m_mlun_delete(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg;
	struct iscsi_acl *acl = get_acl(p, &tpg, e);
	bool bad = false;
	long long idx;
	struct iscsi_mapped_lun *m;

	if (!acl || !p_int(p, "mapped_lun", &idx, true, e, &bad))
		return NULL;
	m = find_mapped(acl, idx);
	if (!m)
		return fail(e, RPC_NOT_FOUND, "No mapped LUN %lld", idx);
	list_del(&m->link);
	free(m);
	iscsi_fabric.generation++;
	iscsi_sessions_refresh(tpg->target->wwn, tpg->tag);
	return json_object();
}

static json_t *m_mlun_set_wp(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg;
	struct iscsi_acl *acl = get_acl(p, &tpg, e);
	bool bad = false, wp;
	long long idx;
	struct iscsi_mapped_lun *m;

	if (!acl || !p_int(p, "mapped_lun", &idx, true, e, &bad))
		return NULL;
	wp = p_bool(p, "write_protect", false, e, &bad);
	if (bad)
		return NULL;
	m = find_mapped(acl, idx);
	if (!m)
		return fail(e, RPC_NOT_FOUND, "No mapped LUN %lld", idx);
	m->write_protect = wp;
	iscsi_sessions_refresh(tpg->target->wwn, tpg->tag);
	return json_object();
}

const struct rpc_method ctl_methods[] = {
	{ "version", m_version, true },
	{ "get_config", m_get_config, true },
	{ "save_config", m_save_config, true },
	{ "restore_config", m_restore_config, false },
	{ "clear_config", m_clear_config, false },
	{ "sessions", m_sessions, true },
	{ "stats", m_stats, true },
	{ "stats.get", m_stats_get, true },
	{ "describe", m_describe, true },
	{ "backstore.create", m_bs_create, false },
	{ "backstore.delete", m_bs_delete, false },
	{ "backstore.resize", m_bs_resize, false },
	{ "backstore.set_attributes", m_bs_set_attrs, false },
	{ "backstore.get_attributes", m_bs_get_attrs, true },
	{ "target.create", m_target_create, false },
	{ "target.delete", m_target_delete, false },
	{ "tpg.create", m_tpg_create, false },
	{ "tpg.delete", m_tpg_delete, false },
	{ "tpg.enable", m_tpg_enable, false },
	{ "tpg.set_attributes", m_tpg_set_attrs, false },
	{ "tpg.get_attributes", m_tpg_get_attrs, true },
	{ "tpg.set_parameters", m_tpg_set_params, false },
	{ "tpg.get_parameters", m_tpg_get_params, true },
	{ "tpg.set_auth", m_tpg_set_auth, false },
	{ "tpg.get_auth", m_tpg_get_auth, true },
	{ "tpg.set_allowed_networks", m_tpg_set_networks, false },
	{ "tpg.get_allowed_networks", m_tpg_get_networks, true },
	{ "discovery_auth.set", m_disc_set, false },
	{ "discovery_auth.get", m_disc_get, true },
	{ "lun.create", m_lun_create, false },
	{ "lun.delete", m_lun_delete, false },
	{ "lun.set_alua", m_lun_set_alua, false },
	{ "lun.get_alua", m_lun_get_alua, true },
	{ "alua.create", m_alua_create, false },
	{ "alua.delete", m_alua_delete, false },
	{ "alua.set_attributes", m_alua_set, false },
	{ "alua.get_attributes", m_alua_get, true },
	{ "portal.create", m_portal_create, false },
	{ "portal.delete", m_portal_delete, false },
	{ "acl.create", m_acl_create, false },
	{ "acl.delete", m_acl_delete, false },
	{ "acl.set_attributes", m_acl_set_attrs, false },
	{ "acl.get_attributes", m_acl_get_attrs, true },
	{ "acl.set_auth", m_acl_set_auth, false },
	{ "acl.get_auth", m_acl_get_auth, true },
	{ "acl.set_allowed_networks", m_acl_set_networks, false },
	{ "acl.get_allowed_networks", m_acl_get_networks, true },
	{ "acl.set_tag", m_acl_set_tag, false },
	{ "mapped_lun.create", m_mlun_create, false },
	{ "mapped_lun.delete", m_mlun_delete, false },
	{ "mapped_lun.set_write_protect", m_mlun_set_wp, false },
	{ NULL, NULL, false },
};
