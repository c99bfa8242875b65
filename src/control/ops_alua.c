/* ALUA target port group methods. */
#include <errno.h>
#include <string.h>

#include "control/alua.h"
#include "control/ops_int.h"
#include "iscsi/target.h"

static struct scsi_alua_gp *get_gp(json_t *p, struct ctl_so **sop,
				   struct rpc_error *e)
{
	struct ctl_so *so = ops_get_so(p, e);
	bool bad = false;
	const char *g = so ? ops_p_str(p, "group", true, e, &bad) : NULL;
	struct scsi_alua_gp *gp;

	if (!so || bad)
		return NULL;
	gp = scsi_alua_gp_find(so->lu, g);
	if (!gp)
		ops_fail(e, RPC_NOT_FOUND, "No ALUA group %s on %s/%s", g,
		     so->plugin, so->name);
	*sop = so;
	return gp;
}

/* LIO's members: TARGET/tpgt_N/lun_M of the LUNs in the group. */
static json_t *gp_members(const struct ctl_so *so, const struct scsi_alua_gp *gp)
{
	json_t *a = json_array();
	const struct iscsi_target *t;
	const struct iscsi_tpg *tpg;
	const struct iscsi_tpg_lun *l;

	list_for_each_entry(t, &iscsi_fabric.targets, link)
		list_for_each_entry(tpg, &t->tpgs, link)
			list_for_each_entry(l, &tpg->luns, link)
				if (l->lu == so->lu && atomic_load(&l->alua->gp) == gp)
					json_array_append_new(a, json_sprintf(
						"%s/tpgt_%u/lun_%u", t->wwn,
						tpg->tag, l->index));
	return a;
}

json_t *m_alua_create(json_t *p, struct rpc_error *e)
{
	struct ctl_so *so = ops_get_so(p, e);
	bool bad = false;
	const char *g = so ? ops_p_str(p, "group", true, e, &bad) : NULL;
	long long tag;
	struct scsi_alua_gp *gp;
	int rc;

	if (!so || bad || !ops_p_int(p, "tag", &tag, true, e, &bad))
		return NULL;
	if (tag < 1 || tag > 65535)
		return ops_fail(e, RPC_INVALID_PARAMS, "tag must be 1 to 65535 (0 is "
			    "default_tg_pt_gp's)");
	if (strlen(g) >= sizeof(gp->name) || !g[0] || strchr(g, '/'))
		return ops_fail(e, RPC_INVALID_PARAMS, "group must be a name of 1 to "
			    "%zu characters without '/'", sizeof(gp->name) - 1);
	rc = scsi_alua_gp_create(so->lu, g, (uint16_t)tag, &gp);
	if (rc == -EEXIST)
		return ops_fail(e, RPC_EXISTS, "An ALUA group named %s or with tag "
			    "%lld already exists on %s/%s", g, tag, so->plugin,
			    so->name);
	if (rc)
		return ops_fail(e, RPC_REFUSED, "out of memory");
	return ctl_alua_gp_json(so->lu, gp);
}

json_t *m_alua_delete(json_t *p, struct rpc_error *e)
{
	struct ctl_so *so = NULL;
	struct scsi_alua_gp *gp = get_gp(p, &so, e);
	int rc;

	if (!gp)
		return NULL;
	rc = scsi_alua_gp_delete(so->lu, gp);
	if (rc == -EPERM)
		return ops_fail(e, RPC_REFUSED, "default_tg_pt_gp cannot be deleted");
	if (rc == -EBUSY)
		return ops_fail(e, RPC_REFUSED, "ALUA group %s has LUNs in it: move "
			    "them out first (set alua alua_tg_pt_gp_name=...)",
			    gp->name);
	return json_object();
}

json_t *m_alua_get(json_t *p, struct rpc_error *e)
{
	struct ctl_so *so = NULL;
	struct scsi_alua_gp *gp = get_gp(p, &so, e);
	json_t *o;

	if (!gp)
		return NULL;
	o = ctl_alua_gp_json(so->lu, gp);
	json_object_del(o, "name");
	json_object_set_new(o, "members", gp_members(so, gp));
	return o;
}

json_t *m_alua_set(json_t *p, struct rpc_error *e)
{
	struct ctl_so *so = NULL;
	struct scsi_alua_gp *gp = get_gp(p, &so, e);
	char err[512];
	int rc;

	if (!gp)
		return NULL;
	rc = ctl_alua_set(so->lu, gp, json_object_get(p, "attributes"), false,
			  err, sizeof(err));
	if (rc == -EINVAL && !json_is_object(json_object_get(p, "attributes")))
		return ops_fail(e, RPC_INVALID_PARAMS, "%s", err);
	if (rc)
		return ops_fail(e, ops_rpc_code(rc), "%s", err);
	return m_alua_get(p, e);
}
