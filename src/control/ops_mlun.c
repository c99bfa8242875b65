/* Mapped LUN methods (LIO: .../acls/WWN/mapped_lunM). */

#include <stdlib.h>

#include "control/ops_int.h"
#include "iscsi/mgmt.h"

static struct iscsi_mapped_lun *find_mapped(struct iscsi_acl *acl, long long i)
{
	struct iscsi_mapped_lun *m;

	list_for_each_entry(m, &acl->mapped_luns, link)
		if (m->index == i)
			return m;
	return NULL;
}

json_t *m_mlun_create(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg;
	struct iscsi_acl *acl = ops_get_acl(p, &tpg, e);
	bool bad = false, wp;
	long long idx, tl;

	if (!acl)
		return NULL;
	ops_p_int(p, "mapped_lun", &idx, true, e, &bad);
	ops_p_int(p, "tpg_lun", &tl, true, e, &bad);
	wp = ops_p_bool(p, "write_protect", false, e, &bad);
	if (bad)
		return NULL;
	if (idx < 0 || idx > 65535)
		return ops_fail(e, RPC_REFUSED, "Mapped LUN must be 0 to 65535");
	if (tl < 0 || tl > 65535 || !iscsi_tpg_lun_find(tpg, (uint32_t)tl))
		return ops_fail(e, RPC_NOT_FOUND, "No TPG LUN %lld", tl);
	if (find_mapped(acl, idx))
		return ops_fail(e, RPC_EXISTS, "Mapped LUN %lld already exists", idx);
	if (!iscsi_mapped_lun_new(acl, (uint32_t)idx, (uint32_t)tl, wp))
		return ops_fail(e, RPC_REFUSED, "out of memory");
	iscsi_sessions_refresh(tpg->target->wwn, tpg->tag);
	return json_object();
}

json_t *m_mlun_delete(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg;
	struct iscsi_acl *acl = ops_get_acl(p, &tpg, e);
	bool bad = false;
	long long idx;
	struct iscsi_mapped_lun *m;

	if (!acl || !ops_p_int(p, "mapped_lun", &idx, true, e, &bad))
		return NULL;
	m = find_mapped(acl, idx);
	if (!m)
		return ops_fail(e, RPC_NOT_FOUND, "No mapped LUN %lld", idx);
	list_del(&m->link);
	free(m);
	iscsi_fabric.generation++;
	iscsi_sessions_refresh(tpg->target->wwn, tpg->tag);
	return json_object();
}

json_t *m_mlun_set_wp(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg;
	struct iscsi_acl *acl = ops_get_acl(p, &tpg, e);
	bool bad = false, wp;
	long long idx;
	struct iscsi_mapped_lun *m;

	if (!acl || !ops_p_int(p, "mapped_lun", &idx, true, e, &bad))
		return NULL;
	wp = ops_p_bool(p, "write_protect", false, e, &bad);
	if (bad)
		return NULL;
	m = find_mapped(acl, idx);
	if (!m)
		return ops_fail(e, RPC_NOT_FOUND, "No mapped LUN %lld", idx);
	m->write_protect = wp;
	iscsi_sessions_refresh(tpg->target->wwn, tpg->tag);
	return json_object();
}
