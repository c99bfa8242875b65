/* libutarget: one typed wrapper per control API method
 * (docs/control-api.md "Methods"). Each builds the params object, calls
 * ut_call() and hands back the result under the rules in utarget.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/lib_internal.h"

/* Calls method with params (stolen, may be NULL = out of memory while
 * building them). */
static int call(struct ut_ctx *ctx, const char *method, json_t *params,
		json_t **result)
{
	int ret;

	if (result)
		*result = NULL;
	if (!params)
		return ut_fail(ctx, -ENOMEM, 0, "Out of memory");
	ret = ut_call(ctx, method, params, result);
	json_decref(params);
	return ret;
}

static json_t *tpg_params(const char *wwn, unsigned tag)
{
	return json_pack("{s:s?, s:i}", "wwn", wwn, "tag", (int)tag);
}

static json_t *acl_params(const char *wwn, unsigned tag, const char *node)
{
	return json_pack("{s:s?, s:i, s:s?}", "wwn", wwn, "tag", (int)tag,
			 "node_wwn", node);
}

/* Adds key: value when value is not NULL; false on allocation failure. */
static bool set_str(json_t *o, const char *key, const char *value)
{
	return !o || !value || !json_object_set_new(o, key, json_string(value));
}

static bool set_tri(json_t *o, const char *key, int v)
{
	return !o || v == UT_DEFAULT ||
	       !json_object_set_new(o, key, json_boolean(v));
}

static json_t *with_auth(json_t *o, const struct ut_auth *a)
{
	if (o && a &&
	    !(set_str(o, "userid", a->userid) &&
	      set_str(o, "password", a->password) &&
	      set_str(o, "mutual_userid", a->mutual_userid) &&
	      set_str(o, "mutual_password", a->mutual_password))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* params plus {key: {name: value}} for the one-value setters. */
static json_t *with_one(json_t *o, const char *group, const char *name,
			json_t *value)
{
	json_t *g = json_object();

	if (!o || !g || !value || !name ||
	    json_object_set_new(g, name, value) ||
	    json_object_set_new(o, group, g)) {
		json_decref(o);
		if (!g)
			json_decref(value);
		else
			json_decref(g);
		return NULL;
	}
	return o;
}

/* ---- whole configuration ---------------------------------------------- */

int ut_version(struct ut_ctx *ctx, char **version)
{
	json_t *r;
	const char *v;
	int ret;

	if (version)
		*version = NULL;
	ret = ut_call(ctx, "version", NULL, &r);
	if (ret)
		return ret;
	v = json_string_value(json_object_get(r, "version"));
	if (version)
		*version = strdup(v ? v : "unknown");
	json_decref(r);
	if (version && !*version)
		return ut_fail(ctx, -ENOMEM, 0, "Out of memory");
	return 0;
}

int ut_get_config(struct ut_ctx *ctx, json_t **config)
{
	return ut_call(ctx, "get_config", NULL, config);
}

int ut_save_config(struct ut_ctx *ctx, const char *file, json_t **result)
{
	json_t *p = json_object();

	if (!set_str(p, "file", file)) {
		json_decref(p);
		p = NULL;
	}
	return call(ctx, "save_config", p, result);
}

int ut_restore_config_part(struct ut_ctx *ctx, const char *file,
			   bool clear_existing, bool abort_on_error,
			   const char *target, const char *storage_object,
			   json_t **result)
{
	json_t *p = json_pack("{s:b, s:b}", "clear_existing", clear_existing,
			      "abort_on_error", abort_on_error);

	if (!set_str(p, "file", file) || !set_str(p, "target", target) ||
	    !set_str(p, "storage_object", storage_object)) {
		json_decref(p);
		p = NULL;
	}
	return call(ctx, "restore_config", p, result);
}

int ut_restore_config(struct ut_ctx *ctx, const char *file,
		      bool clear_existing, bool abort_on_error,
		      json_t **errors)
{
	json_t *p = json_pack("{s:b, s:b}", "clear_existing", clear_existing,
			      "abort_on_error", abort_on_error);
	json_t *r;
	int ret;

	if (!set_str(p, "file", file)) {
		json_decref(p);
		p = NULL;
	}
	ret = call(ctx, "restore_config", p, &r);
	if (errors)
		*errors = NULL;
	if (ret)
		return ret;
	if (errors) {
		json_t *e = json_object_get(r, "errors");

		*errors = json_is_array(e) ? json_incref(e) : json_array();
	}
	json_decref(r);
	return 0;
}

int ut_clear_config(struct ut_ctx *ctx)
{
	return call(ctx, "clear_config", json_pack("{s:b}", "confirm", 1),
		    NULL);
}

int ut_sessions(struct ut_ctx *ctx, json_t **sessions)
{
	return ut_call(ctx, "sessions", NULL, sessions);
}

int ut_describe(struct ut_ctx *ctx, const char *kind, json_t **table)
{
	return call(ctx, "describe", json_pack("{s:s?}", "kind", kind), table);
}

/* ---- storage objects ---------------------------------------------------- */

int ut_backstore_create(struct ut_ctx *ctx, const struct ut_so_spec *spec,
			json_t **so)
{
	json_t *p;

	if (!spec || !spec->plugin || !spec->name)
		return ut_fail(ctx, -EINVAL, 0,
			       "A storage object needs a plugin and a name");
	p = json_pack("{s:s, s:s}", "plugin", spec->plugin, "name",
		      spec->name);
	if (p && spec->size &&
	    json_object_set_new(p, "size", json_integer((json_int_t)spec->size))) {
		json_decref(p);
		p = NULL;
	}
	if (!(set_str(p, "dev", spec->dev) && set_str(p, "wwn", spec->wwn) &&
	      set_tri(p, "write_back", spec->write_back) &&
	      set_tri(p, "sparse", spec->sparse) &&
	      set_tri(p, "readonly", spec->readonly) &&
	      set_tri(p, "nullio", spec->nullio) &&
	      set_tri(p, "create_image", spec->create_image) &&
	      set_str(p, "cfgstring", spec->cfgstring))) {
		json_decref(p);
		p = NULL;
	}
	return call(ctx, "backstore.create", p, so);
}

int ut_backstore_delete(struct ut_ctx *ctx, const char *plugin,
			const char *name)
{
	return call(ctx, "backstore.delete",
		    json_pack("{s:s?, s:s?}", "plugin", plugin, "name", name),
		    NULL);
}

int ut_backstore_resize(struct ut_ctx *ctx, const char *plugin,
			const char *name, uint64_t size, bool force,
			uint64_t *old_size, uint64_t *new_size)
{
	json_t *p = json_pack("{s:s?, s:s?, s:b}", "plugin", plugin, "name",
			      name, "force", force), *r;
	int ret;

	if (p && size)
		json_object_set_new(p, "size", json_integer((json_int_t)size));
	ret = call(ctx, "backstore.resize", p, &r);
	if (!ret) {
		if (old_size)
			*old_size = (uint64_t)json_integer_value(
				json_object_get(r, "old_size"));
		if (new_size)
			*new_size = (uint64_t)json_integer_value(
				json_object_get(r, "size"));
		json_decref(r);
	}
	return ret;
}

int ut_backstore_get_attributes(struct ut_ctx *ctx, const char *plugin,
				const char *name, json_t **attrs)
{
	return call(ctx, "backstore.get_attributes",
		    json_pack("{s:s?, s:s?}", "plugin", plugin, "name", name),
		    attrs);
}

int ut_backstore_set_attributes(struct ut_ctx *ctx, const char *plugin,
				const char *name, json_t *attrs)
{
	return call(ctx, "backstore.set_attributes",
		    json_pack("{s:s?, s:s?, s:O}", "plugin", plugin, "name",
			      name, "attributes", attrs ? attrs : json_null()),
		    NULL);
}

int ut_backstore_set_attribute(struct ut_ctx *ctx, const char *plugin,
			       const char *name, const char *attr,
			       long long value)
{
	return call(ctx, "backstore.set_attributes",
		    with_one(json_pack("{s:s?, s:s?}", "plugin", plugin,
				       "name", name),
			     "attributes", attr, json_integer(value)),
		    NULL);
}

/* ---- targets and TPGs --------------------------------------------------- */

int ut_target_create(struct ut_ctx *ctx, const char *wwn, char **wwn_out)
{
	json_t *p = json_object(), *r;
	const char *w;
	int ret;

	if (wwn_out)
		*wwn_out = NULL;
	if (!set_str(p, "wwn", wwn)) {
		json_decref(p);
		p = NULL;
	}
	ret = call(ctx, "target.create", p, &r);
	if (ret)
		return ret;
	w = json_string_value(json_object_get(r, "wwn"));
	if (wwn_out)
		*wwn_out = strdup(w ? w : (wwn ? wwn : ""));
	json_decref(r);
	if (wwn_out && !*wwn_out)
		return ut_fail(ctx, -ENOMEM, 0, "Out of memory");
	return 0;
}

int ut_target_delete(struct ut_ctx *ctx, const char *wwn)
{
	return call(ctx, "target.delete", json_pack("{s:s?}", "wwn", wwn),
		    NULL);
}

int ut_tpg_create(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		  unsigned *tag_out)
{
	json_t *p = json_pack("{s:s?}", "wwn", wwn), *r;
	int ret;

	if (p && tag && json_object_set_new(p, "tag", json_integer(tag))) {
		json_decref(p);
		p = NULL;
	}
	ret = call(ctx, "tpg.create", p, &r);
	if (ret)
		return ret;
	if (tag_out)
		*tag_out = (unsigned)json_integer_value(
			json_object_get(r, "tag"));
	json_decref(r);
	return 0;
}

int ut_tpg_delete(struct ut_ctx *ctx, const char *wwn, unsigned tag)
{
	return call(ctx, "tpg.delete", tpg_params(wwn, tag), NULL);
}

int ut_tpg_enable(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		  bool enable)
{
	json_t *p = tpg_params(wwn, tag);

	if (p && json_object_set_new(p, "enable", json_boolean(enable))) {
		json_decref(p);
		p = NULL;
	}
	return call(ctx, "tpg.enable", p, NULL);
}

int ut_tpg_get_attributes(struct ut_ctx *ctx, const char *wwn, unsigned tag,
			  json_t **attrs)
{
	return call(ctx, "tpg.get_attributes", tpg_params(wwn, tag), attrs);
}

static json_t *with_obj(json_t *p, const char *key, json_t *v)
{
	if (p && json_object_set(p, key, v ? v : json_null())) {
		json_decref(p);
		return NULL;
	}
	return p;
}

int ut_tpg_set_attributes(struct ut_ctx *ctx, const char *wwn, unsigned tag,
			  json_t *attrs)
{
	return call(ctx, "tpg.set_attributes",
		    with_obj(tpg_params(wwn, tag), "attributes", attrs), NULL);
}

int ut_tpg_set_attribute(struct ut_ctx *ctx, const char *wwn, unsigned tag,
			 const char *attr, long long value)
{
	return call(ctx, "tpg.set_attributes",
		    with_one(tpg_params(wwn, tag), "attributes", attr,
			     json_integer(value)),
		    NULL);
}

int ut_tpg_get_parameters(struct ut_ctx *ctx, const char *wwn, unsigned tag,
			  json_t **params)
{
	return call(ctx, "tpg.get_parameters", tpg_params(wwn, tag), params);
}

int ut_tpg_set_parameters(struct ut_ctx *ctx, const char *wwn, unsigned tag,
			  json_t *params)
{
	return call(ctx, "tpg.set_parameters",
		    with_obj(tpg_params(wwn, tag), "parameters", params), NULL);
}

int ut_tpg_set_parameter(struct ut_ctx *ctx, const char *wwn, unsigned tag,
			 const char *key, const char *value)
{
	return call(ctx, "tpg.set_parameters",
		    with_one(tpg_params(wwn, tag), "parameters", key,
			     value ? json_string(value) : NULL),
		    NULL);
}

int ut_tpg_set_auth(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		    const struct ut_auth *auth)
{
	return call(ctx, "tpg.set_auth", with_auth(tpg_params(wwn, tag), auth),
		    NULL);
}

int ut_tpg_get_auth(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		    json_t **auth)
{
	return call(ctx, "tpg.get_auth", tpg_params(wwn, tag), auth);
}

static json_t *with_nets(json_t *p, const char *const *nets, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_string(nets[i]))) {
			json_decref(a);
			a = NULL;
		}
	if (!p || !a || json_object_set_new(p, "allowed_networks", a)) {
		if (p && a)
			json_decref(a);
		json_decref(p);
		return NULL;
	}
	return p;
}

int ut_tpg_set_allowed_networks(struct ut_ctx *ctx, const char *wwn,
				unsigned tag, const char *const *nets, size_t n)
{
	return call(ctx, "tpg.set_allowed_networks",
		    with_nets(tpg_params(wwn, tag), nets, n), NULL);
}

int ut_tpg_get_allowed_networks(struct ut_ctx *ctx, const char *wwn,
				unsigned tag, json_t **nets)
{
	return call(ctx, "tpg.get_allowed_networks", tpg_params(wwn, tag), nets);
}

int ut_acl_set_allowed_networks(struct ut_ctx *ctx, const char *wwn,
				unsigned tag, const char *node_wwn,
				const char *const *nets, size_t n)
{
	return call(ctx, "acl.set_allowed_networks",
		    with_nets(acl_params(wwn, tag, node_wwn), nets, n), NULL);
}

int ut_acl_get_allowed_networks(struct ut_ctx *ctx, const char *wwn,
				unsigned tag, const char *node_wwn,
				json_t **nets)
{
	return call(ctx, "acl.get_allowed_networks",
		    acl_params(wwn, tag, node_wwn), nets);
}

int ut_discovery_auth_set(struct ut_ctx *ctx, int enable,
			  const struct ut_auth *auth)
{
	json_t *p = json_object();

	if (!set_tri(p, "enable", enable)) {
		json_decref(p);
		p = NULL;
	}
	return call(ctx, "discovery_auth.set", with_auth(p, auth), NULL);
}

int ut_discovery_auth_get(struct ut_ctx *ctx, json_t **auth)
{
	return call(ctx, "discovery_auth.get", json_object(), auth);
}

/* ---- LUNs, portals ------------------------------------------------------ */

int ut_lun_create(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		  const char *storage_object, int lun, int add_mapped_luns,
		  json_t **result)
{
	json_t *p = tpg_params(wwn, tag);

	if (!set_str(p, "storage_object", storage_object) ||
	    !set_tri(p, "add_mapped_luns", add_mapped_luns) ||
	    (p && lun >= 0 &&
	     json_object_set_new(p, "lun", json_integer(lun)))) {
		json_decref(p);
		p = NULL;
	}
	return call(ctx, "lun.create", p, result);
}

int ut_lun_delete(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		  unsigned lun)
{
	return call(ctx, "lun.delete",
		    json_pack("{s:s?, s:i, s:i}", "wwn", wwn, "tag", (int)tag,
			      "lun", (int)lun),
		    NULL);
}

int ut_portal_create(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		     const char *ip, unsigned port, json_t **result)
{
	json_t *p = tpg_params(wwn, tag);

	if (!set_str(p, "ip_address", ip) ||
	    (p && port && json_object_set_new(p, "port", json_integer(port)))) {
		json_decref(p);
		p = NULL;
	}
	return call(ctx, "portal.create", p, result);
}

int ut_portal_delete(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		     const char *ip, unsigned port)
{
	return call(ctx, "portal.delete",
		    json_pack("{s:s?, s:i, s:s?, s:i}", "wwn", wwn, "tag",
			      (int)tag, "ip_address", ip, "port", (int)port),
		    NULL);
}

/* ---- node ACLs and mapped LUNs ------------------------------------------ */

int ut_acl_create(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		  const char *node_wwn, int add_mapped_luns, json_t **result)
{
	json_t *p = acl_params(wwn, tag, node_wwn);

	if (!set_tri(p, "add_mapped_luns", add_mapped_luns)) {
		json_decref(p);
		p = NULL;
	}
	return call(ctx, "acl.create", p, result);
}

int ut_acl_delete(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		  const char *node_wwn)
{
	return call(ctx, "acl.delete", acl_params(wwn, tag, node_wwn), NULL);
}

int ut_acl_get_attributes(struct ut_ctx *ctx, const char *wwn, unsigned tag,
			  const char *node_wwn, json_t **attrs)
{
	return call(ctx, "acl.get_attributes", acl_params(wwn, tag, node_wwn),
		    attrs);
}

int ut_acl_set_attributes(struct ut_ctx *ctx, const char *wwn, unsigned tag,
			  const char *node_wwn, json_t *attrs)
{
	return call(ctx, "acl.set_attributes",
		    with_obj(acl_params(wwn, tag, node_wwn), "attributes",
			     attrs),
		    NULL);
}

int ut_acl_set_attribute(struct ut_ctx *ctx, const char *wwn, unsigned tag,
			 const char *node_wwn, const char *attr,
			 long long value)
{
	return call(ctx, "acl.set_attributes",
		    with_one(acl_params(wwn, tag, node_wwn), "attributes", attr,
			     json_integer(value)),
		    NULL);
}

int ut_acl_set_auth(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		    const char *node_wwn, const struct ut_auth *auth)
{
	return call(ctx, "acl.set_auth",
		    with_auth(acl_params(wwn, tag, node_wwn), auth), NULL);
}

int ut_acl_get_auth(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		    const char *node_wwn, json_t **auth)
{
	return call(ctx, "acl.get_auth", acl_params(wwn, tag, node_wwn), auth);
}

int ut_acl_set_tag(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		   const char *node_wwn, const char *acl_tag)
{
	json_t *p = acl_params(wwn, tag, node_wwn);

	if (p && json_object_set_new(p, "acl_tag", acl_tag ?
				     json_string(acl_tag) : json_null())) {
		json_decref(p);
		p = NULL;
	}
	return call(ctx, "acl.set_tag", p, NULL);
}

static json_t *mlun_params(const char *wwn, unsigned tag, const char *node,
			   unsigned mapped_lun)
{
	return json_pack("{s:s?, s:i, s:s?, s:i}", "wwn", wwn, "tag", (int)tag,
			 "node_wwn", node, "mapped_lun", (int)mapped_lun);
}

int ut_mapped_lun_create(struct ut_ctx *ctx, const char *wwn, unsigned tag,
			 const char *node_wwn, unsigned mapped_lun,
			 unsigned tpg_lun, bool write_protect)
{
	json_t *p = mlun_params(wwn, tag, node_wwn, mapped_lun);

	if (p && (json_object_set_new(p, "tpg_lun", json_integer(tpg_lun)) ||
		  json_object_set_new(p, "write_protect",
				      json_boolean(write_protect)))) {
		json_decref(p);
		p = NULL;
	}
	return call(ctx, "mapped_lun.create", p, NULL);
}

int ut_mapped_lun_delete(struct ut_ctx *ctx, const char *wwn, unsigned tag,
			 const char *node_wwn, unsigned mapped_lun)
{
	return call(ctx, "mapped_lun.delete",
		    mlun_params(wwn, tag, node_wwn, mapped_lun), NULL);
}

int ut_mapped_lun_set_write_protect(struct ut_ctx *ctx, const char *wwn,
				    unsigned tag, const char *node_wwn,
				    unsigned mapped_lun, bool write_protect)
{
	json_t *p = mlun_params(wwn, tag, node_wwn, mapped_lun);

	if (p && json_object_set_new(p, "write_protect",
				     json_boolean(write_protect))) {
		json_decref(p);
		p = NULL;
	}
	return call(ctx, "mapped_lun.set_write_protect", p, NULL);
}
