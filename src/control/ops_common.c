/* What every control method shares: refusing with an RPC error, reading
 * typed request parameters, finding the object a request names, and
 * reading / writing / describing attribute rows (attrs.c). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "control/ops_int.h"
#include "iscsi/target.h"

json_t *ops_fail(struct rpc_error *e, int code, const char *fmt, ...)
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
int ops_rpc_code(int err)
{
	return err == -EEXIST ? RPC_EXISTS : RPC_REFUSED;
}

const char *ops_p_str(json_t *p, const char *k, bool req,
			 struct rpc_error *e, bool *bad)
{
	json_t *v = json_object_get(p, k);

	if (!v || json_is_null(v)) {
		if (req) {
			ops_fail(e, RPC_INVALID_PARAMS, "Missing parameter %s", k);
			*bad = true;
		}
		return NULL;
	}
	if (!json_is_string(v)) {
		ops_fail(e, RPC_INVALID_PARAMS, "Parameter %s must be a string", k);
		*bad = true;
		return NULL;
	}
	return json_string_value(v);
}

/* Integers may come as numbers or numeric strings (the CLI passes what
 * the user typed). */
bool ops_p_int(json_t *p, const char *k, long long *out, bool req,
		  struct rpc_error *e, bool *bad)
{
	json_t *v = json_object_get(p, k);
	char *end;

	if (!v || json_is_null(v)) {
		if (req) {
			ops_fail(e, RPC_INVALID_PARAMS, "Missing parameter %s", k);
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
	ops_fail(e, RPC_INVALID_PARAMS, "Parameter %s must be an integer", k);
	*bad = true;
	return false;
}

bool ops_p_bool(json_t *p, const char *k, bool dflt, struct rpc_error *e,
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
	ops_fail(e, RPC_INVALID_PARAMS, "Parameter %s must be true or false", k);
	*bad = true;
	return dflt;
}

struct ctl_so *ops_get_so(json_t *p, struct rpc_error *e)
{
	bool bad = false;
	const char *plugin = ops_p_str(p, "plugin", true, e, &bad);
	const char *name = ops_p_str(p, "name", true, e, &bad);
	struct ctl_so *so;

	if (bad)
		return NULL;
	so = ctl_so_find(plugin, name);
	if (!so)
		ops_fail(e, RPC_NOT_FOUND, "No storage object named %s in %s", name,
		     plugin);
	return so;
}

struct iscsi_target *ops_get_target(json_t *p, struct rpc_error *e)
{
	bool bad = false;
	const char *wwn = ops_p_str(p, "wwn", true, e, &bad);
	struct iscsi_target *t;

	if (bad)
		return NULL;
	t = iscsi_target_find(wwn);
	if (!t)
		ops_fail(e, RPC_NOT_FOUND, "No such Target in configfs: %s", wwn);
	return t;
}

struct iscsi_tpg *ops_get_tpg(json_t *p, struct rpc_error *e)
{
	struct iscsi_target *t = ops_get_target(p, e);
	bool bad = false;
	long long tag;
	struct iscsi_tpg *tpg;

	if (!t || !ops_p_int(p, "tag", &tag, true, e, &bad))
		return NULL;
	tpg = tag >= 1 && tag <= 65535 ? iscsi_tpg_find(t, (uint16_t)tag) : NULL;
	if (!tpg)
		ops_fail(e, RPC_NOT_FOUND, "No such TPG: %s tpg%lld", t->wwn, tag);
	return tpg;
}

struct iscsi_acl *ops_get_acl(json_t *p, struct iscsi_tpg **tpgp,
				 struct rpc_error *e)
{
	struct iscsi_tpg *tpg = ops_get_tpg(p, e);
	bool bad = false;
	const char *wwn;
	struct iscsi_acl *acl;

	if (!tpg)
		return NULL;
	wwn = ops_p_str(p, "node_wwn", true, e, &bad);
	if (bad)
		return NULL;
	acl = iscsi_acl_find(tpg, wwn);
	if (!acl)
		ops_fail(e, RPC_NOT_FOUND, "No such NodeACL in configfs: %s", wwn);
	if (tpgp)
		*tpgp = tpg;
	return acl;
}

json_t *ops_attrs_get(const struct ctl_attr *tab, const void *obj)
{
	json_t *o = json_object();

	for (; tab->name; tab++)
		json_object_set_new(o, tab->name,
				    json_integer(ctl_attr_get(tab, obj)));
	return o;
}

/* All or none: values are checked on a copy, then copied back. */
bool ops_attrs_set(const struct ctl_attr *tab, void *obj, size_t objsize,
		      json_t *attrs, struct rpc_error *e)
{
	unsigned char copy[1024];
	const char *k;
	json_t *v;

	if (!attrs)
		return true; /* no "attributes": nothing to change */
	if (!json_is_object(attrs)) {
		ops_fail(e, RPC_INVALID_PARAMS, "attributes must be an object");
		return false;
	}
	if (objsize > sizeof(copy)) {
		ops_fail(e, RPC_REFUSED, "internal: attribute block too large");
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
			ops_fail(e, RPC_REFUSED, "Cannot find attribute: %s", k);
			return false;
		}
		if (json_is_boolean(v))
			n = json_is_true(v);
		else
			ops_p_int(one, "v", &n, true, e, &bad);
		json_decref(one);
		if (bad) {
			ops_fail(e, RPC_INVALID_PARAMS,
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

json_t *ops_describe_tab(const struct ctl_attr *tab, const void *dflt)
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
