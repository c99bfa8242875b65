/* Allowed initiator networks of a TPG or a node ACL. */

#include "control/ops_int.h"
#include "iscsi/target.h"

/* allowed_networks (issue 21): replaces the list; a bad entry changes
 * nothing. Sessions already logged in are not dropped: the list is
 * checked at login and in SendTargets (docs/control-api.md). */
static json_t *netlist_set(struct ut_netlist *l, json_t *p,
			   struct rpc_error *e)
{
	json_t *v = json_object_get(p, "allowed_networks");

	if (!v)
		return ops_fail(e, RPC_INVALID_PARAMS,
			    "missing parameter allowed_networks");
	if (ctl_netlist_from_json(v, l, e->message, sizeof(e->message))) {
		e->code = RPC_INVALID_PARAMS;
		return NULL;
	}
	iscsi_fabric.generation++;
	return json_object();
}

json_t *m_tpg_set_networks(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = ops_get_tpg(p, e);

	return tpg ? netlist_set(&tpg->allowed_networks, p, e) : NULL;
}

json_t *m_tpg_get_networks(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = ops_get_tpg(p, e);

	return tpg ? json_pack("{s:o}", "allowed_networks",
			       ctl_netlist_to_json(&tpg->allowed_networks))
		   : NULL;
}

json_t *m_acl_set_networks(json_t *p, struct rpc_error *e)
{
	struct iscsi_acl *acl = ops_get_acl(p, NULL, e);

	return acl ? netlist_set(&acl->allowed_networks, p, e) : NULL;
}

json_t *m_acl_get_networks(json_t *p, struct rpc_error *e)
{
	struct iscsi_acl *acl = ops_get_acl(p, NULL, e);

	return acl ? json_pack("{s:o}", "allowed_networks",
			       ctl_netlist_to_json(&acl->allowed_networks))
		   : NULL;
}
