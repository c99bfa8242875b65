#include "control/attrs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "iscsi/target.h"
#include "scsi/scsi.h"

#define U32(st, f, lo, hi, ro, hon, d) \
	{ #f, CTL_U32, offsetof(st, f), lo, hi, ro, hon, d }
#define BOOL(st, f, ro, hon, d) \
	{ #f, CTL_BOOL, offsetof(st, f), 0, 1, ro, hon, d }

#define T struct iscsi_tpg_attrs
const struct ctl_attr ctl_tpg_attrs[] = {
	U32(T, authentication, 0, 1, false, true, "Require CHAP authentication"),
	U32(T, cache_dynamic_acls, 0, 1, false, true, "Keep generated ACLs after the session ends"),
	U32(T, default_cmdsn_depth, 1, 512, false, true, "Commands an initiator may queue (CmdSN window)"),
	U32(T, default_erl, 0, 2, false, false, "Default error recovery level"),
	U32(T, demo_mode_discovery, 0, 1, false, true, "Demo-mode initiators may discover this TPG"),
	U32(T, demo_mode_write_protect, 0, 1, false, true, "Demo-mode LUNs are read-only"),
	U32(T, fabric_prot_type, 0, 3, false, false, "T10-PI protection type (not supported)"),
	U32(T, generate_node_acls, 0, 1, false, true, "Any initiator may log in (demo mode)"),
	U32(T, login_keys_workaround, 0, 1, false, false, "Answer keys the initiator did not offer"),
	U32(T, login_timeout, 5, 30, false, true, "Seconds a login may take"),
	U32(T, netif_timeout, 2, 15, false, false, "Network interface timeout"),
	U32(T, prod_mode_write_protect, 0, 1, false, true, "Explicit-ACL LUNs are read-only"),
	U32(T, t10_pi, 0, 1, false, false, "T10-PI (not supported)"),
	U32(T, tpg_enabled_sendtargets, 0, 1, false, true, "SendTargets lists only enabled TPGs"),
	{ 0 },
};
#undef T

#define T struct iscsi_acl_attrs
const struct ctl_attr ctl_acl_attrs[] = {
	U32(T, dataout_timeout, 2, 60, false, false, "Seconds to wait for Data-Out"),
	U32(T, dataout_timeout_retries, 1, 15, false, false, "Data-Out timeout retries"),
	U32(T, default_erl, 0, 2, false, false, "Error recovery level"),
	U32(T, nopin_response_timeout, 3, 60, false, true, "Seconds to wait for the answer to a NOP-In"),
	U32(T, nopin_timeout, 3, 60, false, true, "Idle seconds before the target sends a NOP-In"),
	U32(T, random_datain_pdu_offsets, 0, 1, false, false, "Random Data-In PDU offsets"),
	U32(T, random_datain_seq_offsets, 0, 1, false, false, "Random Data-In sequence offsets"),
	U32(T, random_r2t_offsets, 0, 1, false, false, "Random R2T offsets"),
	{ 0 },
};
#undef T

#define T struct scsi_lu_attrs
const struct ctl_attr ctl_so_attrs[] = {
	U32(T, block_size, 512, 4096, false, true, "Logical block size in bytes"),
	BOOL(T, emulate_3pc, false, false, "Third-party copy (XCOPY)"),
	BOOL(T, emulate_caw, false, false, "COMPARE AND WRITE"),
	BOOL(T, emulate_dpo, false, false, "Disable page out"),
	BOOL(T, emulate_fua_read, false, true, "FUA on reads"),
	BOOL(T, emulate_fua_write, false, true, "FUA on writes"),
	BOOL(T, emulate_model_alias, false, true, "Storage object name as INQUIRY model"),
	BOOL(T, emulate_pr, false, false, "Persistent reservations"),
	U32(T, emulate_rest_reord, 0, 0, false, true, "Restricted task reordering (0 only: unrestricted)"),
	BOOL(T, emulate_rsoc, false, false, "REPORT SUPPORTED OPERATION CODES"),
	BOOL(T, emulate_tas, false, false, "Task aborted status"),
	BOOL(T, emulate_tpu, false, true, "Thin provisioning: UNMAP"),
	BOOL(T, emulate_tpws, false, true, "Thin provisioning: WRITE SAME with UNMAP"),
	BOOL(T, emulate_ua_intlck_ctrl, false, false, "Unit attention interlock"),
	BOOL(T, emulate_write_cache, false, true, "Volatile write cache (WCE)"),
	BOOL(T, enforce_pr_isids, false, false, "Reservations tied to the ISID"),
	BOOL(T, force_pr_aptpl, false, true, "Persist reservations as if APTPL were always set"),
	U32(T, hw_max_sectors, 1, 65535, true, true, "Largest transfer in blocks"),
	BOOL(T, is_nonrot, false, true, "Non-rotational medium"),
	U32(T, max_unmap_block_desc_count, 0, 1u << 31, false, true, "UNMAP descriptors per command"),
	U32(T, max_unmap_lba_count, 0, 1u << 31, false, true, "Blocks per UNMAP"),
	U32(T, max_write_same_len, 0, 0xffff, false, true, "Blocks per WRITE SAME"),
	U32(T, optimal_sectors, 1, 65535, false, true, "Optimal transfer length in blocks"),
	U32(T, pi_prot_format, 0, 0, false, true, "Format T10 protection information (not implemented: 0)"),
	U32(T, pi_prot_type, 0, 0, false, true, "T10 protection information type (not implemented: 0)"),
	BOOL(T, pi_prot_verify, false, false, "Verify T10 protection information"),
	U32(T, queue_depth, 1, 1024, false, false, "Commands queued on the device"),
	U32(T, unmap_granularity, 0, 1u << 31, false, true, "UNMAP granularity in blocks"),
	U32(T, unmap_granularity_alignment, 0, 1u << 31, false, true, "UNMAP granularity alignment"),
	BOOL(T, unmap_zeroes_data, false, true, "Unmapped blocks read as zeros (LBPRZ)"),
	{ 0 },
};
#undef T

const struct ctl_attr *ctl_attr_find(const struct ctl_attr *tab,
				     const char *name)
{
	for (; tab->name; tab++)
		if (!strcmp(tab->name, name))
			return tab;
	return NULL;
}

uint32_t ctl_attr_get(const struct ctl_attr *a, const void *obj)
{
	const char *p = (const char *)obj + a->off;

	if (a->type == CTL_BOOL)
		return *(const bool *)(const void *)p;
	return *(const uint32_t *)(const void *)p;
}

int ctl_attr_set(const struct ctl_attr *a, void *obj, long long v,
		 bool allow_ro, char *err, size_t errlen)
{
	char *p = (char *)obj + a->off;

	if (a->ro && !allow_ro) {
		snprintf(err, errlen, "Attribute %s is read-only", a->name);
		return -EPERM;
	}
	if (v < (long long)a->min || v > (long long)a->max) {
		snprintf(err, errlen,
			 "Invalid value %lld for attribute %s: must be from %u to %u",
			 v, a->name, a->min, a->max);
		return -EINVAL;
	}
	if (a->type == CTL_BOOL)
		*(bool *)(void *)p = v != 0;
	else
		*(uint32_t *)(void *)p = (uint32_t)v;
	return 0;
}

int ctl_netlist_from_json(json_t *arr, struct ut_netlist *out, char *err,
			  size_t errlen)
{
	struct ut_netlist copy;
	size_t i;
	json_t *v;

	memset(&copy, 0, sizeof(copy));
	if (!json_is_array(arr)) {
		snprintf(err, errlen, "allowed_networks must be a list of "
			 "CIDR strings");
		return -1;
	}
	if (json_array_size(arr) > UT_NETLIST_MAX) {
		snprintf(err, errlen, "allowed_networks: at most %d entries",
			 UT_NETLIST_MAX);
		return -1;
	}
	json_array_foreach(arr, i, v) {
		const char *s = json_string_value(v);

		if (!s || ut_cidr_parse(s, &copy.v[copy.n])) {
			snprintf(err, errlen,
				 "allowed_networks: invalid CIDR '%.64s' "
				 "(expected e.g. 127.0.0.0/8, ::1/128, 10.1.2.3)",
				 s ? s : "(not a string)");
			return -1;
		}
		copy.n++;
	}
	*out = copy;
	return 0;
}

json_t *ctl_netlist_to_json(const struct ut_netlist *l)
{
	json_t *a = json_array();
	unsigned i;

	for (i = 0; i < l->n; i++)
		json_array_append_new(a, json_string(l->v[i].text));
	return a;
}
