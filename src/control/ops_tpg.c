/* TPG methods (LIO: /iscsi/IQN/tpgN): create, delete, enable,
 * attributes and login parameters. */

#include <stdio.h>

#include "control/ops_int.h"
#include "iscsi/mgmt.h"

json_t *m_tpg_create(json_t *p, struct rpc_error *e)
{
	struct iscsi_target *t = ops_get_target(p, e);
	bool bad = false;
	long long tag = 0;

	if (!t)
		return NULL;
	if (ops_p_int(p, "tag", &tag, false, e, &bad)) {
		if (tag < 1 || tag > 65535)
			return ops_fail(e, RPC_REFUSED, "Invalid TPG tag %lld (1-65535)",
				    tag);
		if (iscsi_tpg_find(t, (uint16_t)tag))
			return ops_fail(e, RPC_EXISTS, "TPG %lld already exists", tag);
	} else if (bad) {
		return NULL;
	} else {
		for (tag = 1; tag <= 65535 && iscsi_tpg_find(t, (uint16_t)tag);
		     tag++)
			;
		if (tag > 65535)
			return ops_fail(e, RPC_REFUSED, "No free TPG tag");
	}
	if (!iscsi_tpg_new(t, (uint16_t)tag))
		return ops_fail(e, RPC_REFUSED, "out of memory");
	return json_pack("{s:i}", "tag", (int)tag);
}

json_t *m_tpg_delete(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = ops_get_tpg(p, e);
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

json_t *m_tpg_enable(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = ops_get_tpg(p, e);
	bool bad = false, en;

	if (!tpg)
		return NULL;
	en = ops_p_bool(p, "enable", true, e, &bad);
	if (bad)
		return NULL;
	iscsi_tpg_set_enable(tpg, en);
	if (!en)
		iscsi_sessions_refresh(tpg->target->wwn, tpg->tag);
	return json_object();
}

json_t *m_tpg_set_attrs(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = ops_get_tpg(p, e);
	json_t *attrs = json_object_get(p, "attributes");

	if (!tpg)
		return NULL;
	if (!ops_attrs_set(ctl_tpg_attrs, &tpg->attrs, sizeof(tpg->attrs),
		       attrs, e))
		return NULL;
	/* generate_node_acls and the write-protect attributes change what
	 * sessions see */
	iscsi_sessions_refresh(tpg->target->wwn, tpg->tag);
	return json_object();
}

json_t *m_tpg_get_attrs(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = ops_get_tpg(p, e);

	return tpg ? ops_attrs_get(ctl_tpg_attrs, &tpg->attrs) : NULL;
}

json_t *m_tpg_set_params(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = ops_get_tpg(p, e);
	json_t *params = json_object_get(p, "parameters"), *v;
	struct iscsi_tpg_params copy;
	const char *k;

	if (!tpg)
		return NULL;
	if (!json_is_object(params))
		return ops_fail(e, RPC_INVALID_PARAMS, "parameters must be an object");
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
			return ops_fail(e, RPC_INVALID_PARAMS,
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

json_t *m_tpg_get_params(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = ops_get_tpg(p, e);
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
