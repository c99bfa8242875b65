/* describe: the attribute rows of each object kind, as utargetcli's
 * help and completion and the schema test read them. */
#include <string.h>

#include "control/alua.h"
#include "control/auth.h"
#include "control/ops_int.h"
#include "iscsi/target.h"

json_t *m_describe(json_t *p, struct rpc_error *e)
{
	bool bad = false;
	const char *kind = ops_p_str(p, "kind", true, e, &bad);

	if (bad)
		return NULL;
	if (!strcmp(kind, "tpg")) {
		struct iscsi_tpg_attrs d;

		iscsi_tpg_attrs_default(&d);
		return ops_describe_tab(ctl_tpg_attrs, &d);
	}
	if (!strcmp(kind, "acl")) {
		struct iscsi_acl_attrs d;

		iscsi_acl_attrs_default(&d);
		return ops_describe_tab(ctl_acl_attrs, &d);
	}
	if (!strcmp(kind, "backstore")) {
		struct scsi_lu_attrs d;
		struct bs_dev fake = { .block_size = 512, .rotational = false };

		scsi_lu_attrs_default(&d, &fake);
		return ops_describe_tab(ctl_so_attrs, &d);
	}
	if (!strcmp(kind, "alua"))
		return ctl_alua_describe();
	if (!strcmp(kind, "auth"))
		return ctl_auth_describe();
	if (!strcmp(kind, "tpg_parameter")) {
		/* the rows are the negotiation table's (iscsi/params.c) */
		struct iscsi_tpg_params d;
		json_t *arr = json_array();

		iscsi_tpg_params_default(&d);
		for (int k = 0; k < ITK__COUNT; k++) {
			struct iscsi_tpg_key_info ki;
			json_t *row;

			iscsi_tpg_key_describe(k, &ki);
			row = json_pack("{s:s, s:s, s:b, s:b, s:s}", "name",
					ki.name, "default", d.val[k], "ro", 0,
					"honoured", ki.honoured, "description",
					ki.desc ? ki.desc : "");
			if (ki.numeric) {
				json_object_set_new(row, "min",
						    json_integer(ki.min));
				json_object_set_new(row, "max",
						    json_integer(ki.max));
			}
			if (ki.values) {
				json_t *vs = json_array();

				for (const char *const *v = ki.values; *v; v++)
					json_array_append_new(vs,
							      json_string(*v));
				json_object_set_new(row, "values", vs);
			}
			json_array_append(arr, row);
			json_decref(row);
		}
		return arr;
	}
	return ops_fail(e, RPC_INVALID_PARAMS,
		    "kind must be backstore, tpg, acl, alua, auth or "
			"tpg_parameter");
}
