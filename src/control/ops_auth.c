/* CHAP credentials: per TPG, per node ACL and for discovery sessions
 * (one parser and one getter for all three). */
#include <stdio.h>
#include <string.h>

#include "control/ops_int.h"
#include "iscsi/target.h"

static const char *const auth_keys[] = { "userid", "password",
					 "mutual_userid", "mutual_password" };

static bool auth_set(struct iscsi_auth *a, json_t *p, struct rpc_error *e)
{
	struct iscsi_auth copy = *a;
	char *dst[] = { copy.userid, copy.password, copy.mutual_userid,
			copy.mutual_password };
	int i;

	for (i = 0; i < 4; i++) {
		bool bad = false;
		const char *v = ops_p_str(p, auth_keys[i], false, e, &bad);

		if (bad)
			return false;
		if (!v)
			continue;
		if (strlen(v) >= ISCSI_SECRET_MAX) {
			ops_fail(e, RPC_REFUSED, "%s is longer than %d bytes",
			     auth_keys[i], ISCSI_SECRET_MAX - 1);
			return false;
		}
		snprintf(dst[i], ISCSI_SECRET_MAX, "%s", v);
	}
	*a = copy;
	return true;
}

static json_t *auth_get(const struct iscsi_auth *a)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "userid", a->userid,
			 "password", a->password, "mutual_userid",
			 a->mutual_userid, "mutual_password", a->mutual_password);
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
