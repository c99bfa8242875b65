/* TPG LUN methods (LIO: /iscsi/IQN/tpgN/luns/lunM). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

#include "control/ops_int.h"
#include "iscsi/mgmt.h"

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

json_t *m_lun_create(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = ops_get_tpg(p, e);
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
	path = ops_p_str(p, "storage_object", true, e, &bad);
	ualias = ops_p_str(p, "alias", false, e, &bad);
	/* absent means the lowest free LUN; a given one must be in range */
	if (ops_p_int(p, "lun", &lun, false, e, &bad) && (lun < 0 || lun > 65535))
		return ops_fail(e, RPC_REFUSED, "LUN must be 0 to 65535");
	add_mapped = ops_p_bool(p, "add_mapped_luns", true, e, &bad);
	if (bad)
		return NULL;
	if (sscanf(path, "/backstores/%31[^/]/%63s", plugin, name) != 2)
		return ops_fail(e, RPC_INVALID_PARAMS,
			    "storage_object must be /backstores/<type>/<name>");
	so = ctl_so_find(plugin, name);
	if (!so)
		return ops_fail(e, RPC_NOT_FOUND, "No storage object %s", path);
	if (lun < 0) {
		for (lun = 0; lun <= 65535 && iscsi_tpg_lun_find(tpg, (uint32_t)lun);
		     lun++)
			;
	}
	if (lun > 65535)
		return ops_fail(e, RPC_REFUSED, "LUN must be 0 to 65535");
	if (iscsi_tpg_lun_find(tpg, (uint32_t)lun))
		return ops_fail(e, RPC_EXISTS, "LUN %lld already exists", lun);
	list_for_each_entry(l, &tpg->luns, link)
		if (l->lu == so->lu)
			return ops_fail(e, RPC_REFUSED,
				    "Storage object %s is already a LUN of this TPG (lun%u)",
				    path, l->index);
	ctl_so_path(so, canon, sizeof(canon));
	l = iscsi_tpg_lun_new(tpg, (uint32_t)lun, so->lu, canon);
	if (!l)
		return ops_fail(e, RPC_REFUSED, "out of memory");
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

/* LIO's `set alua alua_tg_pt_gp_name=NAME` on a LUN: its target port
 * joins that group of the LUN's storage object. */
json_t *m_lun_set_alua(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = ops_get_tpg(p, e);
	bool bad = false;
	long long lun;
	const char *g;
	struct iscsi_tpg_lun *l;
	struct scsi_alua_gp *gp;

	if (!tpg || !ops_p_int(p, "lun", &lun, true, e, &bad))
		return NULL;
	g = ops_p_str(p, "alua_tg_pt_gp_name", true, e, &bad);
	if (bad)
		return NULL;
	l = lun >= 0 && lun <= 65535 ? iscsi_tpg_lun_find(tpg, (uint32_t)lun) :
				       NULL;
	if (!l)
		return ops_fail(e, RPC_NOT_FOUND, "No LUN with index %lld", lun);
	gp = scsi_alua_gp_find(l->lu, g);
	if (!gp)
		return ops_fail(e, RPC_NOT_FOUND, "No ALUA group %s on %s", g,
			    l->so_path);
	scsi_alua_port_set_gp(l->lu, l->alua, gp);
	return json_pack("{s:s}", "alua_tg_pt_gp_name", gp->name);
}

json_t *m_lun_delete(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = ops_get_tpg(p, e);
	bool bad = false;
	long long lun;
	struct iscsi_tpg_lun *l;
	struct iscsi_acl *acl;

	if (!tpg || !ops_p_int(p, "lun", &lun, true, e, &bad))
		return NULL;
	l = lun >= 0 && lun <= 65535 ? iscsi_tpg_lun_find(tpg, (uint32_t)lun) :
				       NULL;
	if (!l)
		return ops_fail(e, RPC_NOT_FOUND, "No LUN with index %lld", lun);
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
