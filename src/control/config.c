/* Loading a LIO saveconfig.json (rtslib's schema: storage_objects, targets,
 * fabric_modules). The file is applied whole: any error clears what the
 * load created and reports which object failed. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "control/alua.h"
#include "control/attrs.h"
#include "control/auth.h"
#include "control/model.h"
#include "control/plugins.h"
#include "iscsi/target.h"
#include "util/log.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -EINVAL)

/* One restore: errors are collected per object ("..., skipped") and the
 * objects this restore created are remembered, so abort_on_error can take
 * them all away again. */
struct restore {
	json_t *errors;
	bool abort_on_error;
	bool failed;
	struct ctl_so **sos;
	size_t nsos;
	struct iscsi_target **tgts;
	size_t ntgts;
};

static void skip(struct restore *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void skip(struct restore *r, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->failed = true;
	log_warn("restore: %s, skipped", msg);
	if (r->errors)
		json_array_append_new(r->errors, json_sprintf("%s, skipped", msg));
}

/* A setting this daemon does not have: the object is still restored, and
 * the name is reported the way rtslib reports it ("Cannot find attribute:
 * X"), so a typo does not pass silently. Counts as an error for
 * abort_on_error, as in rtslib. */
static void ignored(struct restore *r, const char *what, const char *kind,
		    const char *name)
{
	char msg[768];

	snprintf(msg, sizeof(msg), "%s: Cannot find %s: %.128s", what, kind,
		 name);
	r->failed = true;
	log_warn("restore: %s, ignored", msg);
	if (r->errors)
		json_array_append_new(r->errors, json_sprintf("%s, ignored", msg));
}

static void remember(void ***arr, size_t *n, void *p)
{
	void **a = realloc(*arr, (*n + 1) * sizeof(void *));

	if (!a)
		return;
	a[(*n)++] = p;
	*arr = a;
}

static const char *jstr(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Numbers may be JSON integers, booleans or numeric strings (rtslib writes
 * integers; hand-written files vary). */
static int jnum(json_t *v, long long *out)
{
	char *end;

	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return 0;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);

		if (!strcmp(s, "true") || !strcmp(s, "yes")) {
			*out = 1;
			return 0;
		}
		if (!strcmp(s, "false") || !strcmp(s, "no")) {
			*out = 0;
			return 0;
		}
		errno = 0;
		*out = strtoll(s, &end, 0);
		if (!errno && end != s && !*end)
			return 0;
	}
	return -EINVAL;
}

static bool jbool(json_t *o, const char *k, bool dflt)
{
	long long v;

	return jnum(json_object_get(o, k), &v) ? dflt : v != 0;
}

/* Unknown names are reported and ignored; values out of range are
 * reported and skipped. */
static void apply_attrs(struct restore *r, json_t *attrs,
			const struct ctl_attr *tab, void *obj, const char *what)
{
	const char *k;
	json_t *v;

	if (!attrs)
		return;
	if (!json_is_object(attrs)) {
		skip(r, "%s: attributes must be an object", what);
		return;
	}
	json_object_foreach(attrs, k, v) {
		const struct ctl_attr *a = ctl_attr_find(tab, k);
		long long n;
		char e[256];

		if (!a) {
			ignored(r, what, "attribute", k);
			continue;
		}
		if (a->ro)
			continue; /* read-only values are facts, not settings */
		if (jnum(v, &n)) {
			skip(r, "%s: attribute %s is not a number", what, k);
			continue;
		}
		if (ctl_attr_set(a, obj, n, true, e, sizeof(e)))
			skip(r, "%s: %s", what, e);
	}
}

/* the same rows the RPC methods read (auth.c); a field restore cannot
 * take is reported and the object keeps the others */
static void load_auth(struct restore *r, json_t *o, struct iscsi_auth *a,
		      const char *prefix, const char *what)
{
	char e[256];

	if (ctl_auth_from_json(o, prefix, a, e, sizeof(e)))
		skip(r, "%s: %s", what, e);
}

static void load_so(struct restore *r, json_t *j)
{
	struct ctl_so_spec spec = { 0 };
	const struct ctl_plugin *pl;
	struct ctl_so *so;
	json_t *attrs = json_object_get(j, "attributes");
	long long n;
	char what[128], err[512];

	spec.plugin = jstr(j, "plugin");
	spec.name = jstr(j, "name");
	spec.dev = jstr(j, "dev");
	spec.wwn = jstr(j, "wwn");
	if (!spec.plugin || !spec.name) {
		skip(r, "storage object without plugin or name");
		return;
	}
	pl = ctl_plugin_find(spec.plugin);
	if (pl) {
		/* utargetd's name for it (LIO's "user" is user:rbd) */
		spec.plugin = pl->name;
		if (pl->load && pl->load(j, &spec, err, sizeof(err))) {
			skip(r, "Storage object %s/%s: %s", pl->lio, spec.name,
			     err);
			return;
		}
	}
	snprintf(what, sizeof(what), "Storage object %s/%s", spec.plugin,
		 spec.name);
	if (!jnum(json_object_get(j, "size"), &n)) {
		if (n < 0) {
			skip(r, "%s: negative size", what);
			return;
		}
		spec.size = (uint64_t)n;
	}
	spec.write_back = jbool(j, "write_back", pl && pl->write_back_default);
	spec.readonly = jbool(j, "readonly", false);
	spec.nullio = jbool(j, "nullio", false);
	spec.sparse = jbool(j, "sparse", true);
	if (attrs && !jnum(json_object_get(attrs, "block_size"), &n))
		spec.block_size = (uint32_t)n;
	if (ctl_so_create(&spec, &so, err, sizeof(err))) {
		skip(r, "%s: %s", what, err);
		return;
	}
	remember((void ***)&r->sos, &r->nsos, so);
	apply_attrs(r, attrs, ctl_so_attrs, &so->lu->attrs, what);
	/* as backstore.set_attributes does: the saved emulate_write_cache is
	 * what the backstore reports (a block device's own cache setting is
	 * only the default) */
	if (attrs && json_object_get(attrs, "emulate_write_cache"))
		atomic_store(&so->lu->bs->write_back,
			     so->lu->attrs.emulate_write_cache);
	if (ctl_alua_restore(so->lu, json_object_get(j, "alua_tpgs"),
			     r->errors, what))
		r->failed = true;
}

/* "allowed_networks" (issue 21, absent in LIO's files: everyone). */
static int load_networks(struct restore *r, json_t *j, struct ut_netlist *out,
			 const char *what)
{
	json_t *v = json_object_get(j, "allowed_networks");
	char e[160];

	memset(out, 0, sizeof(*out));
	if (!v || json_is_null(v))
		return 0;
	if (ctl_netlist_from_json(v, out, e, sizeof(e))) {
		skip(r, "%s: %s", what, e);
		return -1;
	}
	return 0;
}

static void load_acl(struct restore *r, struct iscsi_tpg *tpg, json_t *j,
		     const char *tpgname)
{
	const char *wwn = jstr(j, "node_wwn");
	struct iscsi_acl *acl;
	json_t *m;
	size_t i;
	char what[768], norm[ISCSI_NAME_MAX];
	struct ut_netlist nets;

	if (!wwn) {
		skip(r, "%s: node ACL without node_wwn", tpgname);
		return;
	}
	if (ctl_wwn_normalize(wwn, norm, sizeof(norm), what, sizeof(what))) {
		skip(r, "%s ACL %s: %s", tpgname, wwn, what);
		return;
	}
	wwn = norm;
	snprintf(what, sizeof(what), "%s ACL %s", tpgname, wwn);
	if (iscsi_acl_find(tpg, wwn)) {
		skip(r, "%s: defined twice", what);
		return;
	}
	/* a bad allowed_networks entry skips the whole ACL: restoring it
	 * open to every address would fail open (issue 21) */
	if (load_networks(r, j, &nets, what))
		return;
	acl = iscsi_acl_new(tpg, wwn);
	if (!acl) {
		skip(r, "%s: out of memory", what);
		return;
	}
	acl->allowed_networks = nets;
	if (jstr(j, "tag"))
		snprintf(acl->tag, sizeof(acl->tag), "%s", jstr(j, "tag"));
	load_auth(r, j, &acl->auth, "chap_", what);
	apply_attrs(r, json_object_get(j, "attributes"), ctl_acl_attrs,
		    &acl->attrs, what);
	json_array_foreach(json_object_get(j, "mapped_luns"), i, m) {
		long long idx, tl;
		struct iscsi_mapped_lun *ml;

		if (jnum(json_object_get(m, "index"), &idx) ||
		    jnum(json_object_get(m, "tpg_lun"), &tl) || idx < 0 ||
		    idx > 65535 || tl < 0 || tl > 65535) {
			skip(r, "%s: mapped LUN needs index and tpg_lun (0-65535)",
			     what);
			continue;
		}
		if (!iscsi_tpg_lun_find(tpg, (uint32_t)tl)) {
			skip(r, "%s: mapped LUN %lld refers to missing TPG LUN %lld",
			     what, idx, tl);
			continue;
		}
		ml = iscsi_mapped_lun_new(acl, (uint32_t)idx, (uint32_t)tl,
					  jbool(m, "write_protect", false));
		if (ml && jstr(m, "alias"))
			snprintf(ml->alias, sizeof(ml->alias), "%s",
				 jstr(m, "alias"));
	}
}

static void load_tpg(struct restore *r, struct iscsi_target *t, json_t *j)
{
	struct iscsi_tpg *tpg;
	long long tag = 1;
	json_t *v, *params;
	const char *k;
	size_t i;
	char what[300];
	struct ut_netlist nets;

	if (json_object_get(j, "tag") && jnum(json_object_get(j, "tag"), &tag)) {
		skip(r, "Target %s: TPG tag is not a number", t->wwn);
		return;
	}
	if (tag < 1 || tag > 65535) {
		skip(r, "Target %s: TPG tag %lld out of range (1-65535)", t->wwn,
		     tag);
		return;
	}
	snprintf(what, sizeof(what), "%s tpg%lld", t->wwn, tag);
	if (iscsi_tpg_find(t, (uint16_t)tag)) {
		skip(r, "%s: defined twice", what);
		return;
	}
	/* as for ACLs: a bad allowed_networks entry skips the TPG */
	if (load_networks(r, j, &nets, what))
		return;
	tpg = iscsi_tpg_new(t, (uint16_t)tag);
	if (!tpg) {
		skip(r, "%s: out of memory", what);
		return;
	}
	tpg->allowed_networks = nets;
	apply_attrs(r, json_object_get(j, "attributes"), ctl_tpg_attrs,
		    &tpg->attrs, what);
	params = json_object_get(j, "parameters");
	json_object_foreach(params, k, v) {
		char e[300];

		if (!json_is_string(v)) {
			skip(r, "%s: parameter %s must be a string", what, k);
			continue;
		}
		if (iscsi_tpg_key_find(k) < 0) {
			ignored(r, what, "parameter", k);
			continue;
		}
		if (iscsi_tpg_param_set(&tpg->params, k, json_string_value(v),
					e, sizeof(e)))
			skip(r, "%s: %s", what, e);
	}
	load_auth(r, j, &tpg->auth, "chap_", what);
	json_array_foreach(json_object_get(j, "luns"), i, v) {
		long long idx;
		const char *so_path = jstr(v, "storage_object");
		char plugin[32], name[64];
		struct ctl_so *so;
		struct iscsi_tpg_lun *l;

		if (jnum(json_object_get(v, "index"), &idx) || idx < 0 ||
		    idx > 65535) {
			skip(r, "%s: LUN index missing or out of range (0-65535)",
			     what);
			continue;
		}
		if (!so_path ||
		    sscanf(so_path, "/backstores/%31[^/]/%63s", plugin, name) != 2) {
			skip(r, "%s: LUN %lld: bad storage_object path", what, idx);
			continue;
		}
		so = ctl_so_find(plugin, name);
		if (!so) {
			skip(r, "%s: LUN %lld: storage object %s does not exist",
			     what, idx, so_path);
			continue;
		}
		if (iscsi_tpg_lun_find(tpg, (uint32_t)idx)) {
			skip(r, "%s: LUN %lld defined twice", what, idx);
			continue;
		}
		{
			char canon[256];

			ctl_so_path(so, canon, sizeof(canon));
			l = iscsi_tpg_lun_new(tpg, (uint32_t)idx, so->lu, canon);
		}
		if (l && jstr(v, "alias"))
			snprintf(l->alias, sizeof(l->alias), "%s",
				 jstr(v, "alias"));
		if (l && jstr(v, "alua_tg_pt_gp_name")) {
			struct scsi_alua_gp *gp = scsi_alua_gp_find(
				so->lu, jstr(v, "alua_tg_pt_gp_name"));

			if (gp)
				scsi_alua_port_set_gp(so->lu, l->alua, gp);
			else
				skip(r, "%s: LUN %lld: alua_tg_pt_gp_name %s (no "
				     "such group on %s; the LUN stays in "
				     "default_tg_pt_gp)", what, idx,
				     jstr(v, "alua_tg_pt_gp_name"), so_path);
		}
	}
	json_array_foreach(json_object_get(j, "portals"), i, v) {
		const char *ip = jstr(v, "ip_address");
		long long port = 3260;
		struct iscsi_portal *p;
		char e[256];

		if (json_object_get(v, "port") &&
		    jnum(json_object_get(v, "port"), &port)) {
			skip(r, "%s: portal port is not a number", what);
			continue;
		}
		if (!ip || port < 1 || port > 65535) {
			skip(r, "%s: portal needs ip_address and a port 1-65535",
			     what);
			continue;
		}
		if (iscsi_portal_new(tpg, ip, (uint16_t)port, &p, e, sizeof(e)))
			skip(r, "%s: portal %s:%lld: %s", what, ip, port, e);
	}
	json_array_foreach(json_object_get(j, "node_acls"), i, v)
		load_acl(r, tpg, v, what);
	iscsi_tpg_set_enable(tpg, jbool(j, "enable", true));
}

static void load_targets(struct restore *r, json_t *root)
{
	json_t *t, *tpg;
	size_t i, k;

	json_array_foreach(json_object_get(root, "targets"), i, t) {
		const char *fabric = jstr(t, "fabric"), *wwn = jstr(t, "wwn");
		struct iscsi_target *tgt;
		char e[256], norm[ISCSI_NAME_MAX];

		if (fabric && strcmp(fabric, "iscsi")) {
			skip(r, "Target %s: fabric %s is not supported",
			     wwn ? wwn : "?", fabric);
			continue;
		}
		if (!wwn || ctl_wwn_normalize(wwn, norm, sizeof(norm), e,
					      sizeof(e))) {
			skip(r, "Target %s: %s", wwn ? wwn : "?",
			     wwn ? e : "no wwn");
			continue;
		}
		wwn = norm;
		if (iscsi_target_find(wwn)) {
			skip(r, "Target %s already exists", wwn);
			continue;
		}
		tgt = iscsi_target_new(wwn);
		if (!tgt) {
			skip(r, "Target %s: out of memory", wwn);
			continue;
		}
		remember((void ***)&r->tgts, &r->ntgts, tgt);
		json_array_foreach(json_object_get(t, "tpgs"), k, tpg)
			load_tpg(r, tgt, tpg);
	}
}

static void load_fabric(struct restore *r, json_t *root)
{
	json_t *f;
	size_t i;

	json_array_foreach(json_object_get(root, "fabric_modules"), i, f) {
		if (!jstr(f, "name") || strcmp(jstr(f, "name"), "iscsi"))
			continue;
		iscsi_fabric.discovery_enable_auth =
			jbool(f, "discovery_enable_auth", false);
		load_auth(r, f, &iscsi_fabric.discovery_auth, "discovery_",
			  "discovery auth");
	}
}

int ctl_config_restore(json_t *root, bool abort_on_error, json_t *errors,
		       char *err, size_t errlen)
{
	struct restore r = { .errors = errors, .abort_on_error = abort_on_error };
	bool disc_auth = iscsi_fabric.discovery_enable_auth;
	struct iscsi_auth disc = iscsi_fabric.discovery_auth;
	json_t *so;
	size_t i;
	int rc = 0;

	if (!json_is_object(root))
		return ERR("not a saveconfig.json object");
	/* caller holds iscsi_fabric.lock */
	json_array_foreach(json_object_get(root, "storage_objects"), i, so)
		load_so(&r, so);
	load_fabric(&r, root);
	load_targets(&r, root);
	if (r.failed && abort_on_error) {
		/* take back everything this restore created */
		for (i = r.ntgts; i-- > 0;)
			iscsi_target_free(r.tgts[i]);
		for (i = r.nsos; i-- > 0;)
			ctl_so_free(r.sos[i]);
		iscsi_fabric.discovery_enable_auth = disc_auth;
		iscsi_fabric.discovery_auth = disc;
		/* the first problem, so the refusal says what is wrong */
		rc = ERR("Configuration not restored: %zu errors (first: %s)",
			 errors ? json_array_size(errors) : (size_t)1,
			 errors && json_string_value(json_array_get(errors, 0)) ?
			 json_string_value(json_array_get(errors, 0)) : "?");
	}
	free(r.sos);
	free(r.tgts);
	return rc;
}

int ctl_config_load_file(const char *path, bool abort_on_error,
			 json_t *errors, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root;
	FILE *f = fopen(path, "r");
	int rc;

	if (!f) {
		if (errno == ENOENT)
			return -ENOENT;
		return ERR("Cannot open %s: %s", path, strerror(errno));
	}
	root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
	fclose(f);
	if (!root)
		return ERR("%s: line %d: %s", path, jerr.line, jerr.text);
	pthread_mutex_lock(&iscsi_fabric.lock);
	rc = ctl_config_restore(root, abort_on_error, errors, err, errlen);
	pthread_mutex_unlock(&iscsi_fabric.lock);
	json_decref(root);
	return rc;
}
