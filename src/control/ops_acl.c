/* Node ACL methods (LIO: /iscsi/IQN/tpgN/acls/WWN). */

#include <stdio.h>

#include "control/ops_int.h"
#include "iscsi/mgmt.h"

json_t *m_acl_create(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = ops_get_tpg(p, e);
	bool bad = false, add_mapped;
	const char *wwn;
	char err[256], norm[ISCSI_NAME_MAX];
	struct iscsi_acl *acl;
	struct iscsi_tpg_lun *l;
	json_t *mapped;

	if (!tpg)
		return NULL;
	wwn = ops_p_str(p, "node_wwn", true, e, &bad);
	add_mapped = ops_p_bool(p, "add_mapped_luns", true, e, &bad);
	if (bad)
		return NULL;
	if (ctl_wwn_normalize(wwn, norm, sizeof(norm), err, sizeof(err)))
		return ops_fail(e, RPC_REFUSED, "%s", err);
	wwn = norm;
	if (iscsi_acl_find(tpg, wwn))
		return ops_fail(e, RPC_EXISTS, "This NodeACL already exists in configFS");
	acl = iscsi_acl_new(tpg, wwn);
	if (!acl)
		return ops_fail(e, RPC_REFUSED, "out of memory");
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

json_t *m_acl_delete(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg;
	struct iscsi_acl *acl = ops_get_acl(p, &tpg, e);

	if (!acl)
		return NULL;
	iscsi_acl_free(acl);
	iscsi_sessions_refresh(tpg->target->wwn, tpg->tag);
	return json_object();
}

json_t *m_acl_set_attrs(json_t *p, struct rpc_error *e)
{
	struct iscsi_acl *acl = ops_get_acl(p, NULL, e);
	json_t *attrs = json_object_get(p, "attributes");

	if (!acl)
		return NULL;
	return ops_attrs_set(ctl_acl_attrs, &acl->attrs, sizeof(acl->attrs),
			 attrs, e) ? json_object() : NULL;
}

json_t *m_acl_get_attrs(json_t *p, struct rpc_error *e)
{
	struct iscsi_acl *acl = ops_get_acl(p, NULL, e);

	return acl ? ops_attrs_get(ctl_acl_attrs, &acl->attrs) : NULL;
}

json_t *m_acl_set_tag(json_t *p, struct rpc_error *e)
{
	struct iscsi_acl *acl = ops_get_acl(p, NULL, e);
	bool bad = false;
	const char *tag;

	if (!acl)
		return NULL;
	tag = ops_p_str(p, "acl_tag", false, e, &bad);
	if (bad)
		return NULL;
	snprintf(acl->tag, sizeof(acl->tag), "%s", tag ? tag : "");
	return json_object();
}
