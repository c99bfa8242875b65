/* The iSCSI fabric's objects as LIO has them: targets, TPGs, portals, TPG
 * LUNs, node ACLs and mapped LUNs, plus discovery authentication. The
 * control layer creates and changes them under iscsi_fabric.lock; workers
 * read them under the same lock at login (never on the data path: a session
 * copies what it needs into its own LUN map). */
#ifndef UT_ISCSI_TARGET_H
#define UT_ISCSI_TARGET_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "iscsi/params.h"
#include "scsi/scsi.h"
#include "util/cidr.h"
#include "util/list.h"

#define ISCSI_NAME_MAX 224 /* RFC 7143 §4.2.7.1: 223 bytes + NUL */
#define ISCSI_SECRET_MAX 256

struct iscsi_auth {
	char userid[ISCSI_SECRET_MAX];
	char password[ISCSI_SECRET_MAX];
	char mutual_userid[ISCSI_SECRET_MAX];
	char mutual_password[ISCSI_SECRET_MAX];
};

/* TPG attributes (LIO names and defaults). */
struct iscsi_tpg_attrs {
	uint32_t authentication;
	uint32_t generate_node_acls;
	uint32_t cache_dynamic_acls;
	uint32_t demo_mode_write_protect;
	uint32_t prod_mode_write_protect;
	uint32_t demo_mode_discovery;
	uint32_t default_cmdsn_depth;
	uint32_t login_timeout;
	uint32_t netif_timeout;
	uint32_t default_erl;
	uint32_t t10_pi;
	uint32_t fabric_prot_type;
	uint32_t tpg_enabled_sendtargets;
	uint32_t login_keys_workaround;
};

/* Node ACL attributes. */
struct iscsi_acl_attrs {
	uint32_t dataout_timeout;
	uint32_t dataout_timeout_retries;
	uint32_t default_erl;
	uint32_t nopin_timeout;
	uint32_t nopin_response_timeout;
	uint32_t random_datain_pdu_offsets;
	uint32_t random_datain_seq_offsets;
	uint32_t random_r2t_offsets;
};

struct iscsi_listener;
struct iscsi_tpg;

struct iscsi_portal {
	struct list_head link; /* tpg->portals */
	struct iscsi_tpg *tpg;
	char ip[64];           /* as configured: "127.0.0.1", "::1", "0.0.0.0" */
	uint16_t port;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	struct iscsi_listener *listener;
};

struct iscsi_tpg_lun {
	struct list_head link; /* tpg->luns, sorted by index */
	uint32_t index;
	struct scsi_lu *lu;    /* holds a reference */
	struct scsi_alua_port *alua; /* this target port's ALUA membership */
	char so_path[128];     /* "/backstores/<plugin>/<name>" */
	char alias[64];
};

struct iscsi_mapped_lun {
	struct list_head link; /* acl->mapped_luns, sorted by index */
	uint32_t index;
	uint32_t tpg_lun;
	bool write_protect;
	char alias[64];
};

struct iscsi_acl {
	struct list_head link; /* tpg->acls */
	char node_wwn[ISCSI_NAME_MAX];
	char tag[64];
	struct iscsi_acl_attrs attrs;
	struct iscsi_auth auth;
	struct ut_netlist allowed_networks; /* issue 21; empty: everyone */
	struct list_head mapped_luns;
};

struct iscsi_target;

struct iscsi_tpg {
	struct list_head link; /* target->tpgs, sorted by tag */
	struct iscsi_target *target;
	uint16_t tag;
	/* relative target port identifier (SPC-4 7.8.6.7): this TPG is a
	 * target port; unique among every TPG of the daemon (target.c) */
	uint16_t rtpi;
	bool enable;
	/* Another gateway of a gateway group serves this TPG (issue 18,
	 * docs/gateway-group.md): it is kept for its RTPI, LUNs, ACLs and
	 * ALUA membership, and listed by SendTargets as its owner has it,
	 * but it takes no login here and its portals bind no listener.
	 * Set at creation (iscsi_fabric.tpg_remote), never changed after. */
	bool remote;
	struct iscsi_tpg_attrs attrs;
	struct iscsi_tpg_params params;
	struct iscsi_auth auth;
	struct ut_netlist allowed_networks; /* issue 21; empty: everyone */
	struct list_head luns;
	struct list_head portals;
	struct list_head acls;
};

struct iscsi_target {
	struct list_head link; /* fabric targets */
	char wwn[ISCSI_NAME_MAX];
	struct list_head tpgs;
};

struct iscsi_fabric {
	pthread_mutex_t lock;
	struct list_head targets;
	bool discovery_enable_auth;
	struct iscsi_auth discovery_auth;
	uint32_t generation; /* bumped on every change */
	/* Gateway groups: is TPG (wwn, tag) another gateway's? Asked once
	 * when a TPG is created; NULL (no group) = every TPG is local. */
	bool (*tpg_remote)(const char *wwn, uint16_t tag);
};

extern struct iscsi_fabric iscsi_fabric;

/* Does this daemon serve logins on tpg (enabled and not another
 * gateway's)? */
static inline bool iscsi_tpg_serving(const struct iscsi_tpg *tpg)
{
	return tpg->enable && !tpg->remote;
}

void iscsi_tpg_attrs_default(struct iscsi_tpg_attrs *a);
void iscsi_acl_attrs_default(struct iscsi_acl_attrs *a);

/* Object constructors / destructors (caller holds iscsi_fabric.lock). */
struct iscsi_target *iscsi_target_new(const char *wwn);
void iscsi_target_free(struct iscsi_target *t);
/* NULL also when every RTPI (1..65535) is taken. */
struct iscsi_tpg *iscsi_tpg_new(struct iscsi_target *t, uint16_t tag);
void iscsi_tpg_free(struct iscsi_tpg *tpg);
struct iscsi_acl *iscsi_acl_new(struct iscsi_tpg *tpg, const char *wwn);
void iscsi_acl_free(struct iscsi_acl *acl);
struct iscsi_tpg_lun *iscsi_tpg_lun_new(struct iscsi_tpg *tpg, uint32_t index,
					struct scsi_lu *lu, const char *so_path);
void iscsi_tpg_lun_free(struct iscsi_tpg_lun *l);
/* tpg->enable, and the local bit of its LUNs' ALUA ports. */
void iscsi_tpg_set_enable(struct iscsi_tpg *tpg, bool en);
struct iscsi_mapped_lun *iscsi_mapped_lun_new(struct iscsi_acl *acl,
					      uint32_t index, uint32_t tpg_lun,
					      bool wp);
/* Parses ip / port; opens (or shares) the listening socket. */
int iscsi_portal_new(struct iscsi_tpg *tpg, const char *ip, uint16_t port,
		     struct iscsi_portal **out, char *err, size_t errlen);
void iscsi_portal_free(struct iscsi_portal *p);
/* Keep listening sockets open while portals are freed and created again
 * (reload, group apply): see portal.c. Caller holds iscsi_fabric.lock. */
void iscsi_portals_hold(void);
void iscsi_portals_release(void);

/* Lookups (caller holds the lock). */
struct iscsi_target *iscsi_target_find(const char *wwn);
struct iscsi_tpg *iscsi_tpg_find(struct iscsi_target *t, uint16_t tag);
struct iscsi_acl *iscsi_acl_find(struct iscsi_tpg *tpg, const char *wwn);
struct iscsi_tpg_lun *iscsi_tpg_lun_find(struct iscsi_tpg *tpg, uint32_t index);
/* Does portal p serve connections that arrived at local address la (the
 * same address and port, or p is the wildcard of la's family and port)? */
bool iscsi_portal_matches(const struct iscsi_portal *p,
			  const struct sockaddr_storage *la);
bool iscsi_portal_is_wildcard(const struct iscsi_portal *p);
bool iscsi_fabric_has_exact_portal(const struct sockaddr_storage *la);
/* The enabled TPG of t with the most specific portal matching la (an exact
 * address beats a wildcard fabric-wide), or NULL. */
struct iscsi_tpg *iscsi_tpg_for_addr(struct iscsi_target *t,
				     const struct sockaddr_storage *la);

/* Builds the LUN map an initiator sees through tpg: its ACL's mapped LUNs
 * (write protected per mapped LUN or prod_mode_write_protect), or with
 * generate_node_acls every TPG LUN (demo_mode_write_protect). Returns NULL
 * and sets *denied when the initiator may not log in. */
struct scsi_lun_map *iscsi_tpg_build_map(struct iscsi_tpg *tpg,
					 const char *initiator, bool *denied);

/* Initiator address ACLs (issue 21): may a connection from peer log in
 * to tpg as initiator? The TPG's list and, when the initiator has an
 * explicit ACL, the ACL's list must both allow it (an empty list allows
 * everyone). Caller holds the lock. */
bool iscsi_tpg_addr_allowed(struct iscsi_tpg *tpg, const char *initiator,
			    const struct sockaddr_storage *peer);

/* Tear down every object (shutdown = "apply the empty config"). */
void iscsi_fabric_clear(void);

#endif
