/* CHAP credentials: per TPG, per node ACL and for discovery sessions
 * (one parser and one getter for all three). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "control/auth.h"
#include "control/ops_int.h"
#include "iscsi/target.h"

/* the same rows restore and saveconfig read (auth.c) */
static bool auth_set(struct iscsi_auth *a, json_t *p, struct rpc_error *e)
{
	char err[256];
	int rc = ctl_auth_from_json(p, "", a, err, sizeof(err));

	if (rc)
		ops_fail(e, rc == -E2BIG ? RPC_REFUSED : RPC_INVALID_PARAMS,
			 "%s", err);
	return !rc;
}

static json_t *auth_get(const struct iscsi_auth *a)
{
	json_t *o = json_object();

	ctl_auth_to_json(o, "", a, false);
	return o;
}

json_t *m_tpg_set_auth(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = ops_get_tpg(p, e);

	return tpg && auth_set(&tpg->auth, p, e) ? json_object() : NULL;
}

json_t *m_tpg_get_auth(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = ops_get_tpg(p, e);

	return tpg ? auth_get(&tpg->auth) : NULL;
}

json_t *m_acl_set_auth(json_t *p, struct rpc_error *e)
{
	struct iscsi_acl *acl = ops_get_acl(p, NULL, e);

	return acl && auth_set(&acl->auth, p, e) ? json_object() : NULL;
}

json_t *m_acl_get_auth(json_t *p, struct rpc_error *e)
{
	struct iscsi_acl *acl = ops_get_acl(p, NULL, e);

	return acl ? auth_get(&acl->auth) : NULL;
}

json_t *m_disc_set(json_t *p, struct rpc_error *e)
{
	bool bad = false;
	bool en = ops_p_bool(p, "enable", iscsi_fabric.discovery_enable_auth, e,
			 &bad);

	if (bad || !auth_set(&iscsi_fabric.discovery_auth, p, e))
		return NULL;
	iscsi_fabric.discovery_enable_auth = en;
	return json_object();
}

json_t *m_disc_get(json_t *p, struct rpc_error *e)
{
	json_t *o = auth_get(&iscsi_fabric.discovery_auth);

	(void)p;
	(void)e;
	json_object_set_new(o, "enable",
			    json_boolean(iscsi_fabric.discovery_enable_auth));
	return o;
}
