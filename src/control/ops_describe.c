/* describe: the attribute rows of each object kind, as utargetcli's
 * help and completion and the schema test read them. */
#include <string.h>

#include "control/alua.h"
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
	if (!strcmp(kind, "tpg_parameter")) {
		static const char *const desc[ITK__COUNT] = {
			[ITK_AUTHMETHOD] = "Authentication methods offered (CHAP, None)",
			[ITK_HEADERDIGEST] = "Header digests offered (CRC32C, None)",
			[ITK_DATADIGEST] = "Data digests offered (CRC32C, None)",
			[ITK_MAXCONNECTIONS] = "Connections per session",
			[ITK_TARGETALIAS] = "Alias the target declares at login",
			[ITK_INITIALR2T] = "Wait for R2T before sending write data",
			[ITK_IMMEDIATEDATA] = "Write data may ride in the command PDU",
			[ITK_MAXRECVDATASEGMENTLENGTH] = "Largest data segment the target receives",
			[ITK_MAXXMITDATASEGMENTLENGTH] = "Largest data segment the target sends",
			[ITK_MAXBURSTLENGTH] = "Largest solicited data sequence",
			[ITK_FIRSTBURSTLENGTH] = "Largest unsolicited data",
			[ITK_DEFAULTTIME2WAIT] = "Seconds to wait before reconnecting",
			[ITK_DEFAULTTIME2RETAIN] = "Seconds task state is kept after a connection loss",
			[ITK_MAXOUTSTANDINGR2T] = "R2Ts outstanding per command",
			[ITK_DATAPDUINORDER] = "Data PDUs in order",
			[ITK_DATASEQUENCEINORDER] = "Data sequences in order",
			[ITK_ERRORRECOVERYLEVEL] = "Error recovery level (0 only)",
			[ITK_IFMARKER] = "Obsolete (RFC 7143): always No",
			[ITK_OFMARKER] = "Obsolete (RFC 7143): always No",
			[ITK_IFMARKINT] = "Obsolete (RFC 7143)",
			[ITK_OFMARKINT] = "Obsolete (RFC 7143)",
			[ITK_RDMAEXTENSIONS] = "iSER only (not used over TCP)",
			[ITK_INITIATORRECVDATASEGMENTLENGTH] = "iSER only (not used over TCP)",
			[ITK_TARGETRECVDATASEGMENTLENGTH] = "iSER only (not used over TCP)",
		};
		struct iscsi_tpg_params d;
		json_t *arr = json_array();
		int k;

		iscsi_tpg_params_default(&d);
		for (k = 0; k < ITK__COUNT; k++)
			json_array_append_new(arr, json_pack(
				"{s:s, s:s, s:b, s:b, s:s}", "name",
				iscsi_tpg_key_name(k), "default", d.val[k],
				"ro", 0, "honoured", 1, "description",
				desc[k] ? desc[k] : ""));
		return arr;
	}
	return ops_fail(e, RPC_INVALID_PARAMS,
		    "kind must be backstore, tpg, acl, alua or tpg_parameter");
}
