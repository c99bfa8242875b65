/* Persistent reservations' state and the pieces pr.c (SPC-4 rules, the
 * local state) and pr_cluster.c (the state kept in the backstore's
 * cluster, issue 18) share. */
#ifndef UT_SCSI_PR_INT_H
#define UT_SCSI_PR_INT_H

#include "scsi/scsi_int.h"

#define INITIATOR_PORT_MAX (SCSI_NAME_MAX + 32)

struct pr_reg {
	struct list_head link;
	uint64_t key;
	char iport[INITIATOR_PORT_MAX]; /* initiator port name, with ISID */
	char iname[SCSI_NAME_MAX];      /* initiator name */
	char tname[SCSI_NAME_MAX];      /* target name */
	uint16_t tpgt;
	uint16_t rel_port_id;
	bool all_tg_pt;
};

/* Cluster state: a unit attention (ua != 0) for the nexuses registration
 * reg covers, or (ua == 0) an abort of the tasks of initiator port
 * reg.iport, from the update that made state 'version'; never for the
 * nexus x_* (the one whose command caused it). */
struct pr_ev {
	uint64_t version;
	unsigned ua;
	struct pr_reg reg;
	char x_iport[INITIATOR_PORT_MAX];
	char x_tname[SCSI_NAME_MAX];
	uint16_t x_tpgt;
};

struct pr_evlog {
	struct pr_ev *v;
	unsigned n;
};

/* Events of this many versions back are kept in the state: a gateway
 * that missed more (its watch was down) compares registrations instead. */
#define PR_EV_VERSIONS 16

struct scsi_pr {
	struct list_head regs;
	uint32_t generation;
	struct pr_reg *holder; /* NULL: no persistent reservation */
	uint8_t type;
	bool aptpl;
	const struct scsi_nexus *spc2; /* SPC-2 RESERVE holder */
	/* cluster state only */
	bool spc2_c;           /* SPC-2 RESERVE held by the nexus spc2_nx */
	struct pr_nx {
		char iport[INITIATOR_PORT_MAX];
		char tname[SCSI_NAME_MAX];
		uint16_t tpgt;
	} spc2_nx;
	uint64_t version;      /* of the stored state this is a copy of */
	uint64_t events_from;  /* log holds every event of versions >= this */
	struct pr_evlog log;
};

/* Reservation types (SPC-4 table 169) */
enum {
	PR_WE = 1,
	PR_EA = 3,
	PR_WE_RO = 5,
	PR_EA_RO = 6,
	PR_WE_AR = 7,
	PR_EA_AR = 8,
};

/* pr.c */
/* cluster updates record the unit attentions and aborts they cause here
 * (the evaluating thread's) instead of raising them */
extern _Thread_local struct pr_evlog *pr_recording;
struct pr_ev *pr_ev_add(struct pr_evlog *log);
void pr_nx_id(struct pr_nx *id, const struct scsi_nexus *nx);
void pr_destroy(struct scsi_pr *pr);
void pr_out(struct scsi_cmd *cmd);
bool pr_lu_shared(const struct scsi_lu *lu);
bool pr_reg_matches(const struct scsi_lu *lu, const struct pr_reg *r,
		    const struct scsi_nexus *nx);
void pr_reserve_eval(struct scsi_cmd *cmd);
void pr_set_stale(struct scsi_cmd *cmd);
bool pr_type_valid(uint8_t t);
void pr_update_reserved(struct scsi_lu *lu);

/* pr_cluster.c */
void pr_cluster_attach(struct scsi_lu *lu);
void pr_out_cluster_start(struct scsi_cmd *cmd);
void pr_spc2_clear_cluster(struct scsi_lu *lu, const struct scsi_nexus *nx);

#endif
