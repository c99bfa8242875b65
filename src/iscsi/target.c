/* iSCSI fabric objects (see target.h). */
#include "iscsi/target.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

#include "util/log.h"

struct iscsi_fabric iscsi_fabric = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.targets = LIST_HEAD_INIT(iscsi_fabric.targets),
};

void iscsi_tpg_attrs_default(struct iscsi_tpg_attrs *a)
{
	/* LIO's defaults (drivers/target/iscsi/iscsi_target_tpg.c) */
	*a = (struct iscsi_tpg_attrs){
		.authentication = 1,
		.generate_node_acls = 0,
		.cache_dynamic_acls = 0,
		.demo_mode_write_protect = 1,
		.prod_mode_write_protect = 0,
		.demo_mode_discovery = 1,
		.default_cmdsn_depth = 64,
		.login_timeout = 15,
		.netif_timeout = 2,
		.default_erl = 0,
		.tpg_enabled_sendtargets = 1,
		.login_keys_workaround = 1,
	};
}

void iscsi_acl_attrs_default(struct iscsi_acl_attrs *a)
{
	*a = (struct iscsi_acl_attrs){
		.dataout_timeout = 3,
		.dataout_timeout_retries = 5,
		.default_erl = 0,
		.nopin_timeout = 15,
		.nopin_response_timeout = 30,
	};
}

static void copy_str(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

struct iscsi_target *iscsi_target_new(const char *wwn)
{
	struct iscsi_target *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	copy_str(t->wwn, sizeof(t->wwn), wwn);
	list_init(&t->tpgs);
	list_add_tail(&t->link, &iscsi_fabric.targets);
	iscsi_fabric.generation++;
	return t;
}

void iscsi_target_free(struct iscsi_target *t)
{
	struct iscsi_tpg *tpg, *n;

	list_for_each_entry_safe(tpg, n, &t->tpgs, link)
		iscsi_tpg_free(tpg);
	list_del(&t->link);
	iscsi_fabric.generation++;
	free(t);
}

/* The lowest relative target port identifier no TPG of any target has.
 *
 * SPC-4 7.8.6.7 / 6.35: the RTPI names a target port uniquely within the
 * SCSI target device; the TPG tag is only unique within its target, so two
 * targets' tpg 1 exporting one storage object would both be port 1 in
 * VPD 0x83, REPORT TARGET PORT GROUPS and PR. Linux since 6.3 (Dmitry
 * Bogdanov's "scsi: target: core: Add RTPI field to target port" series)
 * does the same: target_core_tpg.c target_tpg_register_rtpi takes the
 * lowest free id in 1..USHRT_MAX from one daemon-wide xarray (tpg_xa,
 * xa_alloc with XA_LIMIT(1, USHRT_MAX)) and target_tpg_deregister_rtpi
 * gives it back. LIO does it at enable and frees it at disable; here it
 * is taken when the TPG is created and freed with it, so a disabled TPG
 * keeps its port id. LIO's tpgt_N/rtpi (target_core_fabric_configfs.c
 * target_fabric_tpg_base_rtpi_store, settable while disabled) is not in
 * rtslib-fb's TPG dump, so saveconfig.json holds none: the ids follow the
 * order the configuration creates TPGs in, the same after every restore.
 * Caller holds iscsi_fabric.lock; 0 when all are taken. */
static uint16_t rtpi_alloc(void)
{
	static uint8_t used[65536 / 8];
	struct iscsi_target *t;
	struct iscsi_tpg *tpg;

	memset(used, 0, sizeof(used));
	list_for_each_entry(t, &iscsi_fabric.targets, link)
		list_for_each_entry(tpg, &t->tpgs, link)
			used[tpg->rtpi / 8] |= (uint8_t)(1u << (tpg->rtpi % 8));
	for (unsigned id = 1; id <= 65535; id++)
		if (!(used[id / 8] & (1u << (id % 8))))
			return (uint16_t)id;
	return 0;
}

struct iscsi_tpg *iscsi_tpg_new(struct iscsi_target *t, uint16_t tag)
{
	struct iscsi_tpg *tpg, *pos;
	uint16_t rtpi = rtpi_alloc();

	if (!rtpi) {
		log_warn("target %s: no relative target port identifier left "
			 "for tpg %u", t->wwn, tag);
		return NULL;
	}
	tpg = calloc(1, sizeof(*tpg));
	if (!tpg)
		return NULL;
	tpg->target = t;
	tpg->tag = tag;
	tpg->rtpi = rtpi;
	tpg->remote = iscsi_fabric.tpg_remote &&
		      iscsi_fabric.tpg_remote(t->wwn, tag);
	iscsi_tpg_attrs_default(&tpg->attrs);
	iscsi_tpg_params_default(&tpg->params);
	list_init(&tpg->luns);
	list_init(&tpg->portals);
	list_init(&tpg->acls);
	list_for_each_entry(pos, &t->tpgs, link)
		if (pos->tag > tag)
			break;
	list_add_tail(&tpg->link, &pos->link);
	iscsi_fabric.generation++;
	return tpg;
}

void iscsi_tpg_free(struct iscsi_tpg *tpg)
{
	struct iscsi_portal *p, *pn;
	struct iscsi_tpg_lun *l, *ln;
	struct iscsi_acl *a, *an;

	list_for_each_entry_safe(p, pn, &tpg->portals, link)
		iscsi_portal_free(p);
	list_for_each_entry_safe(a, an, &tpg->acls, link)
		iscsi_acl_free(a);
	list_for_each_entry_safe(l, ln, &tpg->luns, link)
		iscsi_tpg_lun_free(l);
	list_del(&tpg->link);
	iscsi_fabric.generation++;
	free(tpg);
}

struct iscsi_acl *iscsi_acl_new(struct iscsi_tpg *tpg, const char *wwn)
{
	struct iscsi_acl *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	copy_str(a->node_wwn, sizeof(a->node_wwn), wwn);
	iscsi_acl_attrs_default(&a->attrs);
	list_init(&a->mapped_luns);
	list_add_tail(&a->link, &tpg->acls);
	iscsi_fabric.generation++;
	return a;
}

void iscsi_acl_free(struct iscsi_acl *acl)
{
	struct iscsi_mapped_lun *m, *n;

	list_for_each_entry_safe(m, n, &acl->mapped_luns, link) {
		list_del(&m->link);
		free(m);
	}
	list_del(&acl->link);
	iscsi_fabric.generation++;
	free(acl);
}

struct iscsi_tpg_lun *iscsi_tpg_lun_new(struct iscsi_tpg *tpg, uint32_t index,
					struct scsi_lu *lu, const char *so_path)
{
	struct iscsi_tpg_lun *l = calloc(1, sizeof(*l)), *pos;

	if (!l)
		return NULL;
	l->index = index;
	l->lu = lu;
	/* the TPG is the target port, named by its RTPI (iscsi_tpg_new), as
	 * the nexus reports in VPD 0x83 (login.c) */
	l->alua = scsi_alua_port_add(lu, tpg->rtpi);
	if (!l->alua) {
		free(l);
		return NULL;
	}
	scsi_alua_port_set_name(l->alua, tpg->target->wwn, tpg->tag);
	scsi_alua_port_set_local(l->alua, iscsi_tpg_serving(tpg));
	scsi_lu_get(lu);
	copy_str(l->so_path, sizeof(l->so_path), so_path);
	list_for_each_entry(pos, &tpg->luns, link)
		if (pos->index > index)
			break;
	list_add_tail(&l->link, &pos->link);
	iscsi_fabric.generation++;
	return l;
}

void iscsi_tpg_set_enable(struct iscsi_tpg *tpg, bool en)
{
	struct iscsi_tpg_lun *l;

	tpg->enable = en;
	/* the LUs' ports follow: an HA backstore's lock owner makes the
	 * groups of the ports it serves optimized (scsi_alua_port.local);
	 * another gateway's TPG of a group (remote) is never ours */
	list_for_each_entry(l, &tpg->luns, link)
		scsi_alua_port_set_local(l->alua, iscsi_tpg_serving(tpg));
	iscsi_fabric.generation++;
}

void iscsi_tpg_lun_free(struct iscsi_tpg_lun *l)
{
	list_del(&l->link);
	scsi_alua_port_del(l->lu, l->alua);
	scsi_lu_put(l->lu);
	iscsi_fabric.generation++;
	free(l);
}

struct iscsi_mapped_lun *iscsi_mapped_lun_new(struct iscsi_acl *acl,
					      uint32_t index, uint32_t tpg_lun,
					      bool wp)
{
	struct iscsi_mapped_lun *m = calloc(1, sizeof(*m)), *pos;

	if (!m)
		return NULL;
	m->index = index;
	m->tpg_lun = tpg_lun;
	m->write_protect = wp;
	list_for_each_entry(pos, &acl->mapped_luns, link)
		if (pos->index > index)
			break;
	list_add_tail(&m->link, &pos->link);
	iscsi_fabric.generation++;
	return m;
}

struct iscsi_target *iscsi_target_find(const char *wwn)
{
	struct iscsi_target *t;

	/* iSCSI names compare case-insensitively after stringprep
	 * (RFC 3722); LIO compares them as given, lowercase by rule. */
	list_for_each_entry(t, &iscsi_fabric.targets, link)
		if (!strcasecmp(t->wwn, wwn))
			return t;
	return NULL;
}

struct iscsi_tpg *iscsi_tpg_find(struct iscsi_target *t, uint16_t tag)
{
	struct iscsi_tpg *tpg;

	list_for_each_entry(tpg, &t->tpgs, link)
		if (tpg->tag == tag)
			return tpg;
	return NULL;
}

struct iscsi_acl *iscsi_acl_find(struct iscsi_tpg *tpg, const char *wwn)
{
	struct iscsi_acl *a;

	list_for_each_entry(a, &tpg->acls, link)
		if (!strcasecmp(a->node_wwn, wwn))
			return a;
	return NULL;
}

struct iscsi_tpg_lun *iscsi_tpg_lun_find(struct iscsi_tpg *tpg, uint32_t index)
{
	struct iscsi_tpg_lun *l;

	list_for_each_entry(l, &tpg->luns, link)
		if (l->index == index)
			return l;
	return NULL;
}

/* Is there an enabled TPG with a portal on exactly la's address and port? */
bool iscsi_fabric_has_exact_portal(const struct sockaddr_storage *la)
{
	struct iscsi_target *t;
	struct iscsi_tpg *tpg;
	struct iscsi_portal *p;

	list_for_each_entry(t, &iscsi_fabric.targets, link)
		list_for_each_entry(tpg, &t->tpgs, link) {
			if (!iscsi_tpg_serving(tpg))
				continue;
			list_for_each_entry(p, &tpg->portals, link)
				if (!iscsi_portal_is_wildcard(p) &&
				    iscsi_portal_matches(p, la))
					return true;
		}
	return false;
}

/* A connection belongs to the most specific portal matching its local
 * address: a portal on exactly that address beats a wildcard of the same
 * port (and with it the TPGs having it), so 0.0.0.0:P in one target and
 * 127.0.0.1:P in another split the connections between them. A target
 * without a portal at that level is not reachable through this
 * connection (the login answers 0203, "target not found" as for a TPG
 * without a matching portal, RFC 7143 §11.13.5). */
struct iscsi_tpg *iscsi_tpg_for_addr(struct iscsi_target *t,
				     const struct sockaddr_storage *la)
{
	struct iscsi_tpg *tpg;
	struct iscsi_portal *p;
	bool exact = iscsi_fabric_has_exact_portal(la);

	list_for_each_entry(tpg, &t->tpgs, link) {
		if (!iscsi_tpg_serving(tpg))
			continue;
		list_for_each_entry(p, &tpg->portals, link)
			if (iscsi_portal_matches(p, la) &&
			    (!exact || !iscsi_portal_is_wildcard(p)))
				return tpg;
	}
	return NULL;
}

struct scsi_lun_map *iscsi_tpg_build_map(struct iscsi_tpg *tpg,
					 const char *initiator, bool *denied)
{
	struct iscsi_acl *acl = iscsi_acl_find(tpg, initiator);
	struct scsi_lun_map *map;
	unsigned n = 0;

	*denied = false;
	if (acl) {
		struct iscsi_mapped_lun *m;

		list_for_each_entry(m, &acl->mapped_luns, link)
			n++;
		map = scsi_lun_map_new(n);
		if (!map)
			return NULL;
		n = 0;
		list_for_each_entry(m, &acl->mapped_luns, link) {
			struct iscsi_tpg_lun *l =
				iscsi_tpg_lun_find(tpg, m->tpg_lun);

			if (!l)
				continue; /* dangling link: not visible */
			map->ent[n].lun = m->index;
			map->ent[n].lu = l->lu;
			map->ent[n].port = l->alua;
			scsi_lu_get(l->lu);
			map->ent[n].write_protect =
				m->write_protect ||
				tpg->attrs.prod_mode_write_protect;
			n++;
		}
		map->n = n;
		return map;
	}
	if (!tpg->attrs.generate_node_acls) {
		*denied = true;
		return NULL;
	}
	{
		struct iscsi_tpg_lun *l;

		list_for_each_entry(l, &tpg->luns, link)
			n++;
		map = scsi_lun_map_new(n);
		if (!map)
			return NULL;
		n = 0;
		list_for_each_entry(l, &tpg->luns, link) {
			map->ent[n].lun = l->index;
			map->ent[n].lu = l->lu;
			map->ent[n].port = l->alua;
			scsi_lu_get(l->lu);
			map->ent[n].write_protect =
				tpg->attrs.demo_mode_write_protect;
			n++;
		}
		map->n = n;
	}
	return map;
}

void iscsi_fabric_clear(void)
{
	struct iscsi_target *t, *n;

	pthread_mutex_lock(&iscsi_fabric.lock);
	list_for_each_entry_safe(t, n, &iscsi_fabric.targets, link)
		iscsi_target_free(t);
	memset(&iscsi_fabric.discovery_auth, 0,
	       sizeof(iscsi_fabric.discovery_auth));
	iscsi_fabric.discovery_enable_auth = false;
	pthread_mutex_unlock(&iscsi_fabric.lock);
}

bool iscsi_tpg_addr_allowed(struct iscsi_tpg *tpg, const char *initiator,
			    const struct sockaddr_storage *peer)
{
	struct iscsi_acl *acl;

	if (!ut_netlist_allows(&tpg->allowed_networks, peer))
		return false;
	acl = initiator ? iscsi_acl_find(tpg, initiator) : NULL;
	return !acl || ut_netlist_allows(&acl->allowed_networks, peer);
}
