/* Storage object methods (LIO: /backstores/PLUGIN/NAME); what a plugin
 * takes and reports comes from its ops (plugins.c). */
#include <stdio.h>
#include <string.h>

#include "control/ops_int.h"
#include "control/plugins.h"
#include "control/saveconfig.h"
#include "iscsi/target.h"
#include "util/log.h"

bool ops_so_in_use(const struct ctl_so *so)
{
	const struct iscsi_target *t;
	const struct iscsi_tpg *tpg;
	const struct iscsi_tpg_lun *l;

	list_for_each_entry(t, &iscsi_fabric.targets, link)
		list_for_each_entry(tpg, &t->tpgs, link)
			list_for_each_entry(l, &tpg->luns, link)
				if (l->lu == so->lu)
					return true;
	return false;
}

json_t *m_bs_create(json_t *p, struct rpc_error *e)
{
	struct ctl_so_spec spec = { 0 };
	const struct ctl_plugin *plug;
	bool bad = false;
	long long size = 0;
	struct ctl_so *so;
	int rc;
	json_t *attrs = json_object_get(p, "attributes");
	char err[1024], cfgbuf[4096];

	spec.plugin = ops_p_str(p, "plugin", true, e, &bad);
	spec.name = ops_p_str(p, "name", true, e, &bad);
	spec.dev = ops_p_str(p, "dev", false, e, &bad);
	spec.wwn = ops_p_str(p, "wwn", false, e, &bad);
	if (ops_p_int(p, "size", &size, false, e, &bad) && size < 0)
		return ops_fail(e, RPC_INVALID_PARAMS, "size must not be negative");
	spec.size = (uint64_t)size;
	spec.write_back = ops_p_bool(p, "write_back", true, e, &bad);
	spec.sparse = ops_p_bool(p, "sparse", true, e, &bad);
	spec.readonly = ops_p_bool(p, "readonly", false, e, &bad);
	spec.nullio = ops_p_bool(p, "nullio", false, e, &bad);
	spec.create = ops_p_bool(p, "create_image", false, e, &bad);
	if (bad)
		return NULL;
	plug = ctl_plugin_find(spec.plugin);
	if (plug && plug->needs == CTL_NEEDS_CONFIG) {
		/* rtslib's UserBackedStorageObject takes config
		 * "rbd/POOL/IMAGE..."; targetcli's user:rbd create takes the
		 * cfgstring without the handler: accept either. */
		const char *c = ops_p_str(p, "config", false, e, &bad);
		const char *cs = ops_p_str(p, "cfgstring", false, e, &bad);

		if (bad)
			return NULL;
		if (c && strncmp(c, "rbd/", 4))
			return ops_fail(e, RPC_INVALID_PARAMS,
				    "config '%s': only the rbd handler is supported (rbd/POOL/IMAGE...)",
				    c);
		if (!c && cs) {
			snprintf(cfgbuf, sizeof(cfgbuf), "rbd/%s", cs);
			c = cfgbuf;
		}
		if (!c || !c[4])
			return ops_fail(e, RPC_INVALID_PARAMS,
				    "Missing parameter cfgstring (POOL/IMAGE[;conf=PATH][;id=USER][;osd_op_timeout=N][;ha=1])");
		spec.plugin = plug->name;
		spec.dev = c;
	}
	if (plug && plug->needs == CTL_NEEDS_SIZE && size <= 0)
		return ops_fail(e, RPC_INVALID_PARAMS, "A %s needs a size", plug->name);
	if (plug && plug->needs == CTL_NEEDS_DEV && (!spec.dev || !spec.dev[0]))
		return ops_fail(e, RPC_INVALID_PARAMS, "Missing parameter dev");
	if ((rc = ctl_so_create(&spec, &so, err, sizeof(err))))
		return ops_fail(e, ops_rpc_code(rc), "%s", err);
	if (attrs && !ops_attrs_set(ctl_so_attrs, &so->lu->attrs,
				sizeof(so->lu->attrs), attrs, e)) {
		ctl_so_free(so);
		return NULL;
	}
	return ctl_so_json(so);
}

json_t *m_bs_delete(json_t *p, struct rpc_error *e)
{
	struct ctl_so *so = ops_get_so(p, e);

	if (!so)
		return NULL;
	if (ops_so_in_use(so))
		return ops_fail(e, RPC_REFUSED,
			    "Storage object %s/%s is in use by a LUN; delete the LUN first",
			    so->plugin, so->name);
	ctl_so_free(so);
	return json_object();
}

/* Online resize (beyond LIO, whose storage objects keep the size they were
 * made with): the backstore grows first, then every I_T nexus gets
 * CAPACITY DATA HAS CHANGED (SBC-3 4.6) through the LU's resized hook.
 * No size: the medium's own (a grown block device). A smaller size needs
 * force. */
json_t *m_bs_resize(json_t *p, struct rpc_error *e)
{
	struct ctl_so *so = ops_get_so(p, e);
	bool bad = false, force;
	long long size = 0;
	uint64_t old, now;
	char err[1024];
	int rc;

	if (!so)
		return NULL;
	if (ops_p_int(p, "size", &size, false, e, &bad) && size <= 0)
		return ops_fail(e, RPC_INVALID_PARAMS, "size must be positive");
	force = ops_p_bool(p, "force", false, e, &bad);
	if (bad)
		return NULL;
	old = __atomic_load_n(&so->lu->bs->size, __ATOMIC_RELAXED);
	rc = bs_resize(so->lu->bs, (uint64_t)size, force, &now, err,
		       sizeof(err));
	if (rc)
		return ops_fail(e, RPC_REFUSED, "%s/%s: %s", so->plugin, so->name,
			    err);
	so->size = now;
	if (now != old)
		log_info("storage object %s/%s resized from %llu to %llu bytes",
			 so->plugin, so->name, (unsigned long long)old,
			 (unsigned long long)now);
	return json_pack("{s:I,s:I}", "old_size", (json_int_t)old, "size",
			 (json_int_t)now);
}

json_t *m_bs_set_attrs(json_t *p, struct rpc_error *e)
{
	struct ctl_so *so = ops_get_so(p, e);
	struct scsi_lu_attrs before;
	json_t *attrs = json_object_get(p, "attributes");

	if (!so)
		return NULL;
	before = so->lu->attrs;
	if (!ops_attrs_set(ctl_so_attrs, &so->lu->attrs, sizeof(so->lu->attrs),
		       attrs, e))
		return NULL;
	if (so->lu->attrs.block_size != before.block_size &&
	    (so->lu->attrs.block_size & (so->lu->attrs.block_size - 1))) {
		so->lu->attrs = before;
		return ops_fail(e, RPC_REFUSED,
			    "block_size %u is not supported (use 512, 1024, 2048 or 4096)",
			    (unsigned)so->lu->attrs.block_size);
	}
	if (so->lu->attrs.optimal_sectors > so->lu->attrs.hw_max_sectors) {
		so->lu->attrs = before;
		return ops_fail(e, RPC_REFUSED,
			    "optimal_sectors cannot be larger than hw_max_sectors (%u)",
			    (unsigned)before.hw_max_sectors);
	}
	if (so->lu->attrs.block_size != before.block_size &&
	    (ops_so_in_use(so) || so->lu->bs->size % so->lu->attrs.block_size)) {
		so->lu->attrs = before;
		return ops_fail(e, RPC_REFUSED,
			    "block_size can change only while the storage object is not exported and divides its size");
	}
	if (so->lu->attrs.block_size != before.block_size)
		atomic_store(&so->lu->nblocks,
			     so->lu->bs->size / so->lu->attrs.block_size);
	if (so->lu->attrs.emulate_write_cache != before.emulate_write_cache)
		atomic_store(&so->lu->bs->write_back,
			     so->lu->attrs.emulate_write_cache);
	return json_object();
}

json_t *m_bs_get_attrs(json_t *p, struct rpc_error *e)
{
	struct ctl_so *so = ops_get_so(p, e);

	return so ? ops_attrs_get(ctl_so_attrs, &so->lu->attrs) : NULL;
}
