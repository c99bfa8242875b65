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
	struct iscsi_tpg *tpg = ops_get_tpg(p, e);
	bool bad = false;
	long long lun;
	struct iscsi_tpg_lun *l;

	if (!tpg || !ops_p_int(p, "lun", &lun, true, e, &bad))
		return NULL;
	l = lun >= 0 && lun <= 65535 ? iscsi_tpg_lun_find(tpg, (uint32_t)lun) :
				       NULL;
	if (!l)
		ops_fail(e, RPC_NOT_FOUND, "No LUN with index %lld", lun);
	return l;
}

/* LIO's `set alua alua_tg_pt_gp_name=NAME` on a LUN: its target port
 * joins that group of the LUN's storage object. With it (or alone) the
 * port's secondary state as LIO's configfs takes it
 * (target_core_alua.c core_alua_store_offline_bit, _secondary_status,
 * _secondary_write_metadata): alua_tg_pt_offline 0/1, alua_tg_pt_status
 * 0/1/2, alua_tg_pt_write_md 0/1; all checked before any is set. */
json_t *m_lun_set_alua(json_t *p, struct rpc_error *e)
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
	g = ops_p_str(p, "alua_tg_pt_gp_name", false, e, &bad);
	for (int i = 0; i < 3 && !bad; i++) {
		have[i] = ops_p_int(p, sec[i].k, &v[i], false, e, &bad);
		if (have[i] && (v[i] < 0 || v[i] > sec[i].max))
			return ops_fail(e, RPC_INVALID_PARAMS, "Illegal value "
					"for %s: %lld (0 to %lld)", sec[i].k,
					v[i], sec[i].max);
	}
	if (bad)
		return NULL;
	if (!g && !have[0] && !have[1] && !have[2])
		return ops_fail(e, RPC_INVALID_PARAMS, "Missing parameter "
				"alua_tg_pt_gp_name");
	if (g) {
		gp = scsi_alua_gp_find(l->lu, g);
		if (!gp)
			return ops_fail(e, RPC_NOT_FOUND, "No ALUA group %s on "
					"%s", g, l->so_path);
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

json_t *m_lun_get_alua(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg_lun *l = lun_of(p, e);

	return l ? lun_alua_json(l) : NULL;
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
