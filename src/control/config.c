/* Loading a LIO saveconfig.json (rtslib's schema: storage_objects, targets,
 * fabric_modules). The file is applied whole: any error clears what the
 * load created and reports which object failed. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "control/attrs.h"
#include "control/model.h"
#include "iscsi/target.h"
#include "util/log.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -EINVAL)

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

static int apply_attrs(json_t *attrs, const struct ctl_attr *tab, void *obj,
		       const char *what, char *err, size_t errlen)
{
	const char *k;
	json_t *v;

	if (!attrs)
		return 0;
	if (!json_is_object(attrs))
		return ERR("%s: attributes must be an object", what);
	json_object_foreach(attrs, k, v) {
		const struct ctl_attr *a = ctl_attr_find(tab, k);
		long long n;
		char e[256];

		if (!a) {
			log_warn("%s: unknown attribute %s ignored", what, k);
			continue;
		}
		if (jnum(v, &n))
			return ERR("%s: attribute %s is not a number", what, k);
		if (a->ro)
			continue; /* read-only values are facts, not settings */
		if (ctl_attr_set(a, obj, n, true, e, sizeof(e)))
			return ERR("%s: %s", what, e);
	}
	return 0;
}

static void load_auth(json_t *o, struct iscsi_auth *a, const char *prefix)
{
	static const char *const f[] = { "userid", "password", "mutual_userid",
					 "mutual_password" };
	char *dst[] = { a->userid, a->password, a->mutual_userid,
			a->mutual_password };
	char key[64];
	int i;

	for (i = 0; i < 4; i++) {
		const char *v;

		snprintf(key, sizeof(key), "%s%s", prefix, f[i]);
		v = jstr(o, key);
		if (v)
			snprintf(dst[i], ISCSI_SECRET_MAX, "%s", v);
	}
}

static int load_so(json_t *j, char *err, size_t errlen)
{
	struct ctl_so_spec spec = { 0 };
	struct ctl_so *so;
	json_t *attrs = json_object_get(j, "attributes");
	long long n;
	char what[128];
	int rc;

	spec.plugin = jstr(j, "plugin");
	spec.name = jstr(j, "name");
	spec.dev = jstr(j, "dev");
	spec.wwn = jstr(j, "wwn");
	if (!spec.plugin || !spec.name)
		return ERR("storage object without plugin or name");
	snprintf(what, sizeof(what), "storage object %s/%s", spec.plugin,
		 spec.name);
	if (!jnum(json_object_get(j, "size"), &n)) {
		if (n < 0)
			return ERR("%s: negative size", what);
		spec.size = (uint64_t)n;
	}
	spec.write_back = jbool(j, "write_back", !strcmp(spec.plugin, "fileio"));
	spec.readonly = jbool(j, "readonly", false);
	spec.nullio = jbool(j, "nullio", false);
	spec.sparse = jbool(j, "sparse", true);
	if (attrs && !jnum(json_object_get(attrs, "block_size"), &n))
		spec.block_size = (uint32_t)n;
	rc = ctl_so_create(&spec, &so, err, errlen);
	if (rc) {
		char e2[512];

		snprintf(e2, sizeof(e2), "%s", err);
		return ERR("%s: %s", what, e2);
	}
	return apply_attrs(attrs, ctl_so_attrs, &so->lu->attrs, what, err,
			   errlen);
}

static int load_acl(struct iscsi_tpg *tpg, json_t *j, char *err, size_t errlen)
{
	const char *wwn = jstr(j, "node_wwn");
	struct iscsi_acl *acl;
	json_t *m;
	size_t i;
	char what[300];

	if (!wwn)
		return ERR("node ACL without node_wwn");
	snprintf(what, sizeof(what), "ACL %s", wwn);
	if (iscsi_acl_find(tpg, wwn))
		return ERR("%s: defined twice", what);
	acl = iscsi_acl_new(tpg, wwn);
	if (!acl)
		return -ENOMEM;
	if (jstr(j, "tag"))
		snprintf(acl->tag, sizeof(acl->tag), "%s", jstr(j, "tag"));
	load_auth(j, &acl->auth, "chap_");
	if (apply_attrs(json_object_get(j, "attributes"), ctl_acl_attrs,
			&acl->attrs, what, err, errlen))
		return -EINVAL;
	json_array_foreach(json_object_get(j, "mapped_luns"), i, m) {
		long long idx, tl;

		if (jnum(json_object_get(m, "index"), &idx) ||
		    jnum(json_object_get(m, "tpg_lun"), &tl) || idx < 0 ||
		    idx > 65535 || tl < 0 || tl > 65535)
			return ERR("%s: mapped LUN needs index and tpg_lun (0-65535)",
				   what);
		if (!iscsi_tpg_lun_find(tpg, (uint32_t)tl))
			return ERR("%s: mapped LUN %lld refers to missing TPG LUN %lld",
				   what, idx, tl);
		if (!iscsi_mapped_lun_new(acl, (uint32_t)idx, (uint32_t)tl,
					  jbool(m, "write_protect", false)))
			return -ENOMEM;
	}
	return 0;
}

static int load_tpg(struct iscsi_target *t, json_t *j, char *err, size_t errlen)
{
	struct iscsi_tpg *tpg;
	long long tag = 1;
	json_t *v, *params;
	const char *k;
	size_t i;
	char what[300];

	if (json_object_get(j, "tag") && jnum(json_object_get(j, "tag"), &tag))
		return ERR("target %s: TPG tag is not a number", t->wwn);
	if (tag < 1 || tag > 65535)
		return ERR("target %s: TPG tag %lld out of range (1-65535)",
			   t->wwn, tag);
	snprintf(what, sizeof(what), "%s tpg%lld", t->wwn, tag);
	if (iscsi_tpg_find(t, (uint16_t)tag))
		return ERR("%s: defined twice", what);
	tpg = iscsi_tpg_new(t, (uint16_t)tag);
	if (!tpg)
		return -ENOMEM;
	if (apply_attrs(json_object_get(j, "attributes"), ctl_tpg_attrs,
			&tpg->attrs, what, err, errlen))
		return -EINVAL;
	params = json_object_get(j, "parameters");
	json_object_foreach(params, k, v) {
		char e[300];

		if (!json_is_string(v))
			return ERR("%s: parameter %s must be a string", what, k);
		if (iscsi_tpg_key_find(k) < 0) {
			log_warn("%s: unknown parameter %s ignored", what, k);
			continue;
		}
		if (iscsi_tpg_param_set(&tpg->params, k, json_string_value(v),
					e, sizeof(e)))
			return ERR("%s: %s", what, e);
	}
	load_auth(j, &tpg->auth, "chap_");
	json_array_foreach(json_object_get(j, "luns"), i, v) {
		long long idx;
		const char *so_path = jstr(v, "storage_object");
		char plugin[32], name[64];
		struct ctl_so *so;
		struct iscsi_tpg_lun *l;

		if (jnum(json_object_get(v, "index"), &idx) || idx < 0 ||
		    idx > 65535)
			return ERR("%s: LUN index missing or out of range (0-65535)",
				   what);
		if (!so_path ||
		    sscanf(so_path, "/backstores/%31[^/]/%63s", plugin, name) != 2)
			return ERR("%s: LUN %lld: bad storage_object path", what,
				   idx);
		so = ctl_so_find(plugin, name);
		if (!so)
			return ERR("%s: LUN %lld: storage object %s does not exist",
				   what, idx, so_path);
		if (iscsi_tpg_lun_find(tpg, (uint32_t)idx))
			return ERR("%s: LUN %lld defined twice", what, idx);
		l = iscsi_tpg_lun_new(tpg, (uint32_t)idx, so->lu, so_path);
		if (!l)
			return -ENOMEM;
		if (jstr(v, "alias"))
			snprintf(l->alias, sizeof(l->alias), "%s",
				 jstr(v, "alias"));
	}
	json_array_foreach(json_object_get(j, "portals"), i, v) {
		const char *ip = jstr(v, "ip_address");
		long long port = 3260;
		struct iscsi_portal *p;
		char e[256];

		if (json_object_get(v, "port") &&
		    jnum(json_object_get(v, "port"), &port))
			return ERR("%s: portal port is not a number", what);
		if (!ip || port < 1 || port > 65535)
			return ERR("%s: portal needs ip_address and a port 1-65535",
				   what);
		if (iscsi_portal_new(tpg, ip, (uint16_t)port, &p, e, sizeof(e)))
			return ERR("%s: portal %s:%lld: %s", what, ip, port, e);
	}
	json_array_foreach(json_object_get(j, "node_acls"), i, v)
		if (load_acl(tpg, v, err, errlen))
			return -EINVAL;
	tpg->enable = jbool(j, "enable", true);
	return 0;
}

static int load_targets(json_t *root, char *err, size_t errlen)
{
	json_t *t, *tpg;
	size_t i, k;

	json_array_foreach(json_object_get(root, "targets"), i, t) {
		const char *fabric = jstr(t, "fabric"), *wwn = jstr(t, "wwn");
		struct iscsi_target *tgt;

		if (fabric && strcmp(fabric, "iscsi")) {
			log_warn("target %s: fabric %s is not supported, skipped",
				 wwn ? wwn : "?", fabric);
			continue;
		}
		if (!wwn)
			return ERR("target without wwn");
		if (iscsi_target_find(wwn))
			return ERR("target %s defined twice", wwn);
		tgt = iscsi_target_new(wwn);
		if (!tgt)
			return -ENOMEM;
		json_array_foreach(json_object_get(t, "tpgs"), k, tpg)
			if (load_tpg(tgt, tpg, err, errlen))
				return -EINVAL;
	}
	return 0;
}

static void load_fabric(json_t *root)
{
	json_t *f;
	size_t i;

	json_array_foreach(json_object_get(root, "fabric_modules"), i, f) {
		if (!jstr(f, "name") || strcmp(jstr(f, "name"), "iscsi"))
			continue;
		iscsi_fabric.discovery_enable_auth =
			jbool(f, "discovery_enable_auth", false);
		load_auth(f, &iscsi_fabric.discovery_auth, "discovery_");
	}
}

int ctl_config_load(const char *path, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root, *so;
	size_t i;
	int rc = 0;
	FILE *f = fopen(path, "r");

	if (!f) {
		if (errno == ENOENT)
			return 0; /* no file: empty configuration */
		return ERR("Cannot open %s: %s", path, strerror(errno));
	}
	root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
	fclose(f);
	if (!root)
		return ERR("%s: line %d: %s", path, jerr.line, jerr.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return ERR("%s: not a saveconfig.json object", path);
	}
	pthread_mutex_lock(&iscsi_fabric.lock);
	json_array_foreach(json_object_get(root, "storage_objects"), i, so) {
		rc = load_so(so, err, errlen);
		if (rc)
			break;
	}
	if (!rc) {
		load_fabric(root);
		rc = load_targets(root, err, errlen);
	}
	pthread_mutex_unlock(&iscsi_fabric.lock);
	json_decref(root);
	if (rc)
		ctl_config_clear();
	return rc;
}
