/* Internal to the control methods (ops*.c): the helpers every method
 * uses and the methods the table in ops.c lists. Not for other layers:
 * they reach the methods through ctl_methods (rpc.h). */
#ifndef UT_CONTROL_OPS_INT_H
#define UT_CONTROL_OPS_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "control/attrs.h"
#include "control/model.h"
#include "control/rpc.h"

struct iscsi_acl;
struct iscsi_auth;
struct iscsi_target;
struct iscsi_tpg;
struct ut_netlist;

/* Sets e and returns NULL, so a method can `return ops_fail(...)`. */
json_t *ops_fail(struct rpc_error *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The RPC error code of a model error (-errno). */
int ops_rpc_code(int err);

/* Request parameters; *bad is set (and e filled) when one is missing
 * though required, or of the wrong type. */
const char *ops_p_str(json_t *p, const char *k, bool req, struct rpc_error *e,
		      bool *bad);
bool ops_p_int(json_t *p, const char *k, long long *out, bool req,
	       struct rpc_error *e, bool *bad);
bool ops_p_bool(json_t *p, const char *k, bool dflt, struct rpc_error *e,
		bool *bad);

/* The object a request names, or NULL with e set (RPC_NOT_FOUND). */
struct ctl_so *ops_get_so(json_t *p, struct rpc_error *e);
struct iscsi_target *ops_get_target(json_t *p, struct rpc_error *e);
struct iscsi_tpg *ops_get_tpg(json_t *p, struct rpc_error *e);
struct iscsi_acl *ops_get_acl(json_t *p, struct iscsi_tpg **tpgp,
			      struct rpc_error *e);

/* Attribute rows (attrs.h) of an object: all as a JSON object, set all or
 * none, and the rows' description with the defaults of dflt. */
json_t *ops_attrs_get(const struct ctl_attr *tab, const void *obj);
bool ops_attrs_set(const struct ctl_attr *tab, void *obj, size_t objsize,
		   json_t *attrs, struct rpc_error *e);
json_t *ops_describe_tab(const struct ctl_attr *tab, const void *dflt);

/* Whether a storage object is some TPG's LUN (ops_storage.c). */
bool ops_so_in_use(const struct ctl_so *so);

/* The methods, per object kind. */
/* ops_config.c */
json_t *m_version(json_t *p, struct rpc_error *e);
json_t *m_get_config(json_t *p, struct rpc_error *e);
json_t *m_save_config(json_t *p, struct rpc_error *e);
json_t *m_restore_config(json_t *p, struct rpc_error *e);
json_t *m_clear_config(json_t *p, struct rpc_error *e);
/* ops_describe.c */
json_t *m_describe(json_t *p, struct rpc_error *e);
/* ops_stats.c */
json_t *m_sessions(json_t *p, struct rpc_error *e);
json_t *m_stats(json_t *p, struct rpc_error *e);
json_t *m_stats_get(json_t *p, struct rpc_error *e);
/* ops_storage.c */
json_t *m_bs_create(json_t *p, struct rpc_error *e);
json_t *m_bs_delete(json_t *p, struct rpc_error *e);
json_t *m_bs_resize(json_t *p, struct rpc_error *e);
json_t *m_bs_set_attrs(json_t *p, struct rpc_error *e);
json_t *m_bs_get_attrs(json_t *p, struct rpc_error *e);
/* ops_target.c */
json_t *m_target_create(json_t *p, struct rpc_error *e);
json_t *m_target_delete(json_t *p, struct rpc_error *e);
/* ops_tpg.c */
json_t *m_tpg_create(json_t *p, struct rpc_error *e);
json_t *m_tpg_delete(json_t *p, struct rpc_error *e);
json_t *m_tpg_enable(json_t *p, struct rpc_error *e);
json_t *m_tpg_set_attrs(json_t *p, struct rpc_error *e);
json_t *m_tpg_get_attrs(json_t *p, struct rpc_error *e);
json_t *m_tpg_set_params(json_t *p, struct rpc_error *e);
json_t *m_tpg_get_params(json_t *p, struct rpc_error *e);
/* ops_auth.c */
json_t *m_tpg_set_auth(json_t *p, struct rpc_error *e);
json_t *m_tpg_get_auth(json_t *p, struct rpc_error *e);
json_t *m_acl_set_auth(json_t *p, struct rpc_error *e);
json_t *m_acl_get_auth(json_t *p, struct rpc_error *e);
json_t *m_disc_set(json_t *p, struct rpc_error *e);
json_t *m_disc_get(json_t *p, struct rpc_error *e);
/* ops_networks.c */
json_t *m_tpg_set_networks(json_t *p, struct rpc_error *e);
json_t *m_tpg_get_networks(json_t *p, struct rpc_error *e);
json_t *m_acl_set_networks(json_t *p, struct rpc_error *e);
json_t *m_acl_get_networks(json_t *p, struct rpc_error *e);
/* ops_lun.c */
json_t *m_lun_create(json_t *p, struct rpc_error *e);
json_t *m_lun_set_alua(json_t *p, struct rpc_error *e);
json_t *m_lun_get_alua(json_t *p, struct rpc_error *e);
json_t *m_lun_delete(json_t *p, struct rpc_error *e);
/* ops_alua.c */
json_t *m_alua_create(json_t *p, struct rpc_error *e);
json_t *m_alua_delete(json_t *p, struct rpc_error *e);
json_t *m_alua_get(json_t *p, struct rpc_error *e);
json_t *m_alua_set(json_t *p, struct rpc_error *e);
/* ops_portal.c */
json_t *m_portal_create(json_t *p, struct rpc_error *e);
json_t *m_portal_delete(json_t *p, struct rpc_error *e);
/* ops_acl.c */
json_t *m_acl_create(json_t *p, struct rpc_error *e);
json_t *m_acl_delete(json_t *p, struct rpc_error *e);
json_t *m_acl_set_attrs(json_t *p, struct rpc_error *e);
json_t *m_acl_get_attrs(json_t *p, struct rpc_error *e);
json_t *m_acl_set_tag(json_t *p, struct rpc_error *e);
/* ops_mlun.c */
json_t *m_mlun_create(json_t *p, struct rpc_error *e);
json_t *m_mlun_delete(json_t *p, struct rpc_error *e);
json_t *m_mlun_set_wp(json_t *p, struct rpc_error *e);

#endif
