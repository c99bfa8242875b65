/* Reservations: persistent reservations (SPC-4 5.12, PERSISTENT RESERVE
 * IN 6.15 / OUT 6.16) and SPC-2 RESERVE / RELEASE 6/10 (SPC-2 7.21,
 * 7.13).
 *
 * State is per LU, shared by every nexus on every worker, guarded by
 * lu->lock (these commands are rare). The data path pays one atomic load:
 * lu->reserved is true only while a registration or an SPC-2 reservation
 * exists, and only then does scsi_pr_check take the lock.
 *
 * An I_T nexus is named by its initiator port ("iqn...,i,0x<ISID>", or the
 * initiator name alone when enforce_pr_isids is off) and its target port
 * (target name and TPGT), so a registration outlives the session that made
 * it and is found again when the initiator logs back in (SPC-4 5.12.1).
 * The SPC-2 reservation, on the contrary, belongs to the session: it ends
 * with the nexus (scsi_nexus_clear), a LUN reset or a target reset.
 *
 * With APTPL=1 the registrations and the reservation are written to
 * <scsi_pr_state_dir>/pr-<wwn> and read back when the LU is created
 * (SPC-4 5.12.5).
 *
 * Cluster state (issue 18; bs->pr_shared: user:rbd with pr=cluster, see
 * docs/rbd.md "Persistent reservations across gateways"): several
 * gateways serve the LU, each with its own target ports, and a
 * registration or reservation made through one must hold on all of them
 * and outlive any of them. The state then lives in the backstore's cluster
 * (bs_ops.pr_load / pr_store, a compare-and-swap on a version) as JSON
 * (pr_encode); lu->pr is a cache of it that the data path checks as
 * before, kept fresh by the backstore's changed hook (pr_changed) and
 * trusted only under the backstore's lease (pr_fresh). A PR OUT runs on a
 * helper thread, never on the worker: it loads the latest state, evaluates
 * the command against a copy of it (pr_out, as for a local LU), stores the
 * result if nobody stored another version meanwhile (else it starts over
 * with theirs) and completes only when every live gateway has it. Unit
 * attentions and PREEMPT AND ABORT's task aborts are recorded in the state
 * as events instead of raised, and every gateway raises those that concern
 * its own nexuses when it takes the state (pr_install_locked). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scsi/scsi_int.h"
#include "util/bytes.h"
#include "util/log.h"

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

static char *pr_state_dir;
static pthread_mutex_t pr_dir_lock = PTHREAD_MUTEX_INITIALIZER;

void scsi_set_pr_state_dir(const char *dir)
{
	char *d = dir && dir[0] ? strdup(dir) : NULL;

	pthread_mutex_lock(&pr_dir_lock);
	free(pr_state_dir);
	pr_state_dir = d;
	pthread_mutex_unlock(&pr_dir_lock);
}

static bool type_valid(uint8_t t)
{
	return t == PR_WE || t == PR_EA || t == PR_WE_RO || t == PR_EA_RO ||
	       t == PR_WE_AR || t == PR_EA_AR;
}

static bool type_all_reg(uint8_t t)
{
	return t == PR_WE_AR || t == PR_EA_AR;
}

static bool type_reg_only(uint8_t t)
{
	return t == PR_WE_RO || t == PR_EA_RO;
}

static bool type_excl_access(uint8_t t)
{
	return t == PR_EA || t == PR_EA_RO || t == PR_EA_AR;
}

static struct scsi_pr *pr_get(struct scsi_lu *lu)
{
	if (!lu->pr) {
		lu->pr = calloc(1, sizeof(*lu->pr));
		if (lu->pr)
			list_init(&lu->pr->regs);
	}
	return lu->pr;
}

static void update_reserved(struct scsi_lu *lu)
{
	struct scsi_pr *pr = lu->pr;
	bool active = pr && (pr->spc2 || pr->spc2_c || !list_empty(&pr->regs));

	if (lu->bs && lu->bs->pr_shared) {
		/* every command must see the lease (scsi_pr_check) */
		atomic_store(&lu->pr_active, active);
		atomic_store(&lu->reserved, true);
		return;
	}
	atomic_store(&lu->reserved, active);
}

static bool pr_shared(const struct scsi_lu *lu)
{
	return lu->bs && lu->bs->pr_shared;
}

static void nx_id(struct pr_nx *id, const struct scsi_nexus *nx)
{
	snprintf(id->iport, sizeof(id->iport), "%s", nx->initiator_port);
	snprintf(id->tname, sizeof(id->tname), "%s", nx->tport.target_name);
	id->tpgt = nx->tport.tpgt;
}

static bool nx_is(const struct pr_nx *id, const struct scsi_nexus *nx)
{
	return nx && id->tpgt == nx->tport.tpgt &&
	       !strcmp(id->iport, nx->initiator_port) &&
	       !strcmp(id->tname, nx->tport.target_name);
}

/* An SPC-2 reservation exists: this gateway's nexus (local state), or in
 * the cluster's state a nexus named by initiator and target port, which
 * may be on any gateway. */
static bool spc2_held(const struct scsi_pr *pr)
{
	return pr->spc2 || pr->spc2_c;
}

static bool spc2_is(const struct scsi_pr *pr, const struct scsi_nexus *nx)
{
	return pr->spc2_c ? nx_is(&pr->spc2_nx, nx) : pr->spc2 == nx;
}

static void spc2_clear_cluster(struct scsi_lu *lu, const struct scsi_nexus *nx);

/* May lu->pr be trusted: loaded once, and the backstore's lease on it
 * (renewed while its watch is confirmed) not run out. */
static bool pr_fresh(struct scsi_lu *lu)
{
	return atomic_load(&lu->pr_loaded) &&
	       io_now_ms() < atomic_load(&lu->bs->pr_valid_until_ms);
}

/* The command may not be served from a stale cache: NOT READY, LOGICAL
 * UNIT NOT ACCESSIBLE, ASYMMETRIC ACCESS STATE TRANSITION, which
 * initiators retry after a while and multipath takes as a path problem
 * (the same as user:rbd gives when the cluster does not answer). */
static void set_stale(struct scsi_cmd *cmd)
{
	scsi_set_sense(cmd, SK_NOT_READY, ASC_LU_NOT_ACCESSIBLE_TRANSITION);
}

/* Set while a cluster PR OUT is evaluated: unit attentions and aborts go
 * here instead of to the nexuses (they are raised once the state is
 * stored, on every gateway). */
static _Thread_local struct pr_evlog *recording;

static struct pr_ev *ev_add(struct pr_evlog *log)
{
	struct pr_ev *v = realloc(log->v, (log->n + 1) * sizeof(*v));

	if (!v)
		return NULL;
	log->v = v;
	memset(&v[log->n], 0, sizeof(*v));
	return &v[log->n++];
}

static void record(unsigned ua, const struct pr_reg *r,
		   const struct scsi_nexus *except)
{
	struct pr_ev *ev = ev_add(recording);

	if (!ev) {
		log_warn("persistent reservations: no memory for a unit attention");
		return;
	}
	ev->ua = ua;
	ev->reg = *r;
	list_init(&ev->reg.link);
	if (except) {
		snprintf(ev->x_iport, sizeof(ev->x_iport), "%s",
			 except->initiator_port);
		snprintf(ev->x_tname, sizeof(ev->x_tname), "%s",
			 except->tport.target_name);
		ev->x_tpgt = except->tport.tpgt;
	}
}

/* Does registration r belong to the I_T nexus nx? */
static bool reg_matches(const struct scsi_lu *lu, const struct pr_reg *r,
			const struct scsi_nexus *nx)
{
	if (lu->attrs.enforce_pr_isids ? strcmp(r->iport, nx->initiator_port) :
					 strcmp(r->iname, nx->initiator_name))
		return false;
	/* ALL_TG_PT: the registration holds for every target port */
	return r->all_tg_pt || (r->tpgt == nx->tport.tpgt &&
				strcmp(r->tname, nx->tport.target_name) == 0);
}

static struct pr_reg *reg_find(const struct scsi_lu *lu,
			       const struct scsi_nexus *nx)
{
	struct pr_reg *r;

	if (!lu->pr || !nx)
		return NULL;
	list_for_each_entry(r, &lu->pr->regs, link)
		if (reg_matches(lu, r, nx))
			return r;
	return NULL;
}

/* Is nx a reservation holder (SPC-4 5.12.10): for the all-registrants
 * types every registered nexus is one. */
static bool is_holder(const struct scsi_lu *lu, const struct pr_reg *r)
{
	const struct scsi_pr *pr = lu->pr;

	if (!pr || !pr->holder || !r)
		return false;
	return type_all_reg(pr->type) || pr->holder == r;
}

/* Unit attention for every nexus of lu that registration r covers (or
 * every nexus but 'except' when r is NULL). Called with lu->lock held. */
static void ua_for(struct scsi_lu *lu, const struct pr_reg *r,
		   const struct scsi_nexus *except, unsigned ua)
{
	struct scsi_lun_ent *e;

	if (recording && r) {
		record(ua, r, except);
		return;
	}
	list_for_each_entry(e, &lu->nexus_ents, lu_link) {
		if (e->nexus == except)
			continue;
		if (r && !reg_matches(lu, r, e->nexus))
			continue;
		atomic_fetch_or(&e->ua, ua);
	}
}

static void reg_free(struct scsi_lu *lu, struct pr_reg *r)
{
	if (lu->pr->holder == r) {
		/* SPC-4 5.12.11.2.2: an all-registrants reservation stays
		 * while any registrant remains. */
		lu->pr->holder = NULL;
		if (type_all_reg(lu->pr->type)) {
			struct pr_reg *o;

			list_for_each_entry(o, &lu->pr->regs, link)
				if (o != r) {
					lu->pr->holder = o;
					break;
				}
		}
		if (!lu->pr->holder)
			lu->pr->type = 0;
	}
	list_del(&r->link);
	free(r);
}

/* --- APTPL state file --- */

static void state_path(const struct scsi_lu *lu, const char *dir, char *out,
		       size_t outlen)
{
	snprintf(out, outlen, "%s/pr-%s", dir, lu->wwn[0] ? lu->wwn : lu->name);
}

/* Writes (or, with APTPL off, removes) the state file. lu->lock held. */
static void pr_save(struct scsi_lu *lu)
{
	struct scsi_pr *pr = lu->pr;
	char path[4200], tmp[4210];
	struct pr_reg *r;
	unsigned idx = 0, hidx = 0;
	FILE *f;

	if (pr_shared(lu)) /* kept in the cluster */
		return;
	pthread_mutex_lock(&pr_dir_lock);
	if (!pr_state_dir) {
		pthread_mutex_unlock(&pr_dir_lock);
		return;
	}
	state_path(lu, pr_state_dir, path, sizeof(path));
	pthread_mutex_unlock(&pr_dir_lock);
	if (!pr || !pr->aptpl || list_empty(&pr->regs)) {
		unlink(path);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f) {
		log_warn("persistent reservations of %s: cannot write %s: %s",
			 lu->name, tmp, strerror(errno));
		return;
	}
	fprintf(f, "generation %" PRIu32 "\n", pr->generation);
	list_for_each_entry(r, &pr->regs, link) {
		idx++;
		if (r == pr->holder)
			hidx = idx;
		fprintf(f, "reg %016" PRIx64 " %d %u %u %s %s %s\n", r->key,
			r->all_tg_pt, r->tpgt, r->rel_port_id, r->iport,
			r->iname, r->tname);
	}
	if (hidx)
		fprintf(f, "resv %u %u\n", hidx, pr->type);
	if (fflush(f) || fsync(fileno(f)))
		log_warn("persistent reservations of %s: %s", lu->name,
			 strerror(errno));
	fclose(f);
	if (rename(tmp, path))
		log_warn("persistent reservations of %s: %s", lu->name,
			 strerror(errno));
}

static void pr_cluster_attach(struct scsi_lu *lu);

void scsi_pr_restore(struct scsi_lu *lu)
{
	char path[4200], line[1200];
	struct pr_reg *regs[1024];
	unsigned n = 0;
	FILE *f;

	if (pr_shared(lu)) {
		pr_cluster_attach(lu);
		return;
	}
	pthread_mutex_lock(&pr_dir_lock);
	if (!pr_state_dir) {
		pthread_mutex_unlock(&pr_dir_lock);
		return;
	}
	state_path(lu, pr_state_dir, path, sizeof(path));
	pthread_mutex_unlock(&pr_dir_lock);
	f = fopen(path, "r");
	if (!f)
		return;
	pthread_mutex_lock(&lu->lock);
	if (!pr_get(lu))
		goto out;
	lu->pr->aptpl = true;
	while (fgets(line, sizeof(line), f)) {
		struct pr_reg *r;
		unsigned a, t, p, h, ty;
		int all;

		if (sscanf(line, "generation %u", &a) == 1) {
			lu->pr->generation = a;
		} else if (sscanf(line, "resv %u %u", &h, &ty) == 2) {
			if (h >= 1 && h <= n && type_valid((uint8_t)ty)) {
				lu->pr->holder = regs[h - 1];
				lu->pr->type = (uint8_t)ty;
			}
		} else if (strncmp(line, "reg ", 4) == 0 && n < 1024) {
			r = calloc(1, sizeof(*r));
			if (!r)
				break;
			/* widths: sizeof(iport) - 1, sizeof(iname) - 1 ... */
			if (sscanf(line, "reg %" SCNx64 " %d %u %u %287s %255s %255s",
				   &r->key, &all, &t, &p, r->iport, r->iname,
				   r->tname) != 7) {
				free(r);
				continue;
			}
			r->all_tg_pt = all;
			r->tpgt = (uint16_t)t;
			r->rel_port_id = (uint16_t)p;
			list_add_tail(&r->link, &lu->pr->regs);
			regs[n++] = r;
		}
	}
	update_reserved(lu);
	log_info("storage object %s: restored %u persistent reservation "
		 "registration(s)", lu->name, n);
out:
	pthread_mutex_unlock(&lu->lock);
	fclose(f);
}

static void pr_destroy(struct scsi_pr *pr)
{
	struct pr_reg *r, *n;

	if (!pr)
		return;
	list_for_each_entry_safe(r, n, &pr->regs, link)
		free(r);
	free(pr->log.v);
	free(pr);
}

void scsi_pr_free(struct scsi_lu *lu)
{
	pr_destroy(lu->pr);
	lu->pr = NULL;
}

/* --- nexus and reset events --- */

void scsi_pr_nexus_gone(struct scsi_lu *lu, const struct scsi_nexus *nx)
{
	pthread_mutex_lock(&lu->lock);
	if (lu->pr && lu->pr->spc2_c && spc2_is(lu->pr, nx))
		spc2_clear_cluster(lu, nx);
	if (lu->pr && lu->pr->spc2 == nx) {
		lu->pr->spc2 = NULL;
		update_reserved(lu);
	}
	pthread_mutex_unlock(&lu->lock);
}

/* SAM-5 6.3 / SPC-2 5.5.1: a LUN reset, target reset or power on ends
 * SPC-2 reservations; persistent reservations survive them. */
void scsi_pr_reset_locked(struct scsi_lu *lu)
{
	if (lu->pr && lu->pr->spc2_c)
		spc2_clear_cluster(lu, NULL);
	if (lu->pr && lu->pr->spc2) {
		lu->pr->spc2 = NULL;
		update_reserved(lu);
	}
}

/* --- conflict check on the command path (SPC-4 5.12.1 tables) --- */

enum pr_class {
	PRC_ALLOWED, /* allowed under every reservation */
	PRC_READ,    /* allowed for non-holders under Write Exclusive types */
	PRC_WRITE,   /* conflicts for non-holders */
	PRC_RESERVE, /* RESERVE / RELEASE 6/10 */
};

static enum pr_class pr_class(const uint8_t *cdb)
{
	switch (cdb[0]) {
	case 0x12: /* INQUIRY */
	case 0xa0: /* REPORT LUNS */
	case 0x03: /* REQUEST SENSE */
	case 0x00: /* TEST UNIT READY */
	case 0x25: /* READ CAPACITY(10) */
	case 0x9e: /* READ CAPACITY(16), GET LBA STATUS */
	case 0xa3: /* REPORT SUPPORTED OPCODES / TMFs */
	case 0x4d: /* LOG SENSE */
	case 0x5e: /* PERSISTENT RESERVE IN */
	case 0x5f: /* PERSISTENT RESERVE OUT: checked by the action */
		return PRC_ALLOWED;
	case 0x1e: /* PREVENT ALLOW: ALLOW (PREVENT 00b) is always allowed */
		return (cdb[4] & 0x03) ? PRC_WRITE : PRC_ALLOWED;
	case 0x08: case 0x28: case 0xa8: case 0x88: /* READ */
	case 0x2f: case 0xaf: case 0x8f:            /* VERIFY */
	case 0x34: case 0x90:                       /* PRE-FETCH */
	case 0x37: case 0xb7:                       /* READ DEFECT DATA */
	case 0x1a: case 0x5a:                       /* MODE SENSE */
		return PRC_READ;
	case 0x16: case 0x17: case 0x56: case 0x57:
		return PRC_RESERVE;
	default:
		return PRC_WRITE;
	}
}

/* SPC-2 7.21.1: under another nexus's RESERVE only these get through;
 * RELEASE from a non-holder is GOOD and changes nothing. */
static bool spc2_allowed(const uint8_t *cdb)
{
	switch (cdb[0]) {
	case 0x12: case 0xa0: case 0x03: case 0x17: case 0x57:
		return true;
	case 0x1e:
		return !(cdb[4] & 0x03);
	default:
		return false;
	}
}

static bool pr_conflict(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	struct scsi_pr *pr = lu->pr;
	enum pr_class c = pr_class(cmd->cdb);
	struct pr_reg *r;

	if (!pr)
		return false;
	if (spc2_held(pr))
		return !spc2_is(pr, cmd->nexus) && !spc2_allowed(cmd->cdb);
	if (list_empty(&pr->regs))
		return false;
	/* SPC-4 5.12.3: while registrations exist, RESERVE and RELEASE
	 * 6/10 are refused (compatible reservation handling, CRH=1). */
	if (c == PRC_RESERVE)
		return true;
	if (c == PRC_ALLOWED || !pr->holder)
		return false;
	r = reg_find(lu, cmd->nexus);
	if (is_holder(lu, r))
		return false;
	/* registrants have access under the registrants-only types */
	if (r && (type_reg_only(pr->type) || type_all_reg(pr->type)))
		return false;
	if (c == PRC_READ && !type_excl_access(pr->type))
		return false;
	return true;
}

int scsi_pr_check(struct scsi_cmd *cmd)
{
	bool conflict;

	if (pr_shared(cmd->lu)) {
		/* Only what does not depend on the reservation state gets by
		 * a cache that may be stale; PR OUT reads the cluster's. */
		if (!pr_fresh(cmd->lu) &&
		    (pr_class(cmd->cdb) != PRC_ALLOWED || cmd->cdb[0] == 0x5e)) {
			set_stale(cmd);
			return 1;
		}
		if (!atomic_load(&cmd->lu->pr_active))
			return 0;
	}
	pthread_mutex_lock(&cmd->lu->lock);
	conflict = pr_conflict(cmd);
	pthread_mutex_unlock(&cmd->lu->lock);
	if (!conflict)
		return 0;
	cmd->status = SAM_STAT_RESERVATION_CONFLICT;
	cmd->sense_len = 0;
	return 1;
}

static void set_conflict(struct scsi_cmd *cmd)
{
	cmd->status = SAM_STAT_RESERVATION_CONFLICT;
	cmd->sense_len = 0;
}

/* --- RESERVE / RELEASE 6/10 (SPC-2 7.21, 7.13) --- */

int spc_prepare_reserve(struct scsi_cmd *cmd)
{
	/* 3RDPTY and LONGID (RESERVE(10)) and extents are not supported */
	if ((cmd->cdb[0] == 0x56 || cmd->cdb[0] == 0x57) && (cmd->cdb[1] & 0x12)) {
		scsi_set_sense_field(cmd, true, 1, (cmd->cdb[1] & 0x10) ? 4 : 1);
		return 1;
	}
	if (cmd->cdb[0] == 0x16 && (cmd->cdb[1] & 0x01)) {
		scsi_set_sense_field(cmd, true, 1, 0);
		return 1;
	}
	return 0;
}

/* lu->lock held. With cluster state the holder is named, not pointed
 * at, so that every gateway enforces it. */
static void reserve_eval(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	bool reserve = cmd->cdb[0] == 0x16 || cmd->cdb[0] == 0x56;

	if (lu->pr && !list_empty(&lu->pr->regs)) {
		set_conflict(cmd);
	} else if (reserve) {
		if (!pr_get(lu)) {
			scsi_set_sense(cmd, SK_HARDWARE_ERROR,
				       ASC_INTERNAL_TARGET_FAILURE);
		} else if (spc2_held(lu->pr) && !spc2_is(lu->pr, cmd->nexus)) {
			set_conflict(cmd);
		} else if (pr_shared(lu)) {
			lu->pr->spc2_c = true;
			nx_id(&lu->pr->spc2_nx, cmd->nexus);
			scsi_set_good(cmd);
		} else {
			lu->pr->spc2 = cmd->nexus;
			scsi_set_good(cmd);
		}
	} else {
		/* RELEASE by a non-holder: GOOD, nothing released */
		if (lu->pr && spc2_is(lu->pr, cmd->nexus)) {
			lu->pr->spc2 = NULL;
			lu->pr->spc2_c = false;
		}
		scsi_set_good(cmd);
	}
}

static void pr_out_cluster_start(struct scsi_cmd *cmd);

void spc_exec_reserve(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;

	if (pr_shared(lu)) {
		pr_out_cluster_start(cmd);
		return;
	}
	pthread_mutex_lock(&lu->lock);
	reserve_eval(cmd);
	update_reserved(lu);
	pthread_mutex_unlock(&lu->lock);
	scsi_cmd_complete(cmd);
}

/* --- PERSISTENT RESERVE IN (SPC-4 6.15) --- */

int spc_prepare_pr_in(struct scsi_cmd *cmd)
{
	if (!cmd->lu->attrs.emulate_pr) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
		return 1;
	}
	if ((cmd->cdb[1] & 0x1f) > 0x03) {
		scsi_set_sense_field(cmd, true, 1, 4);
		return 1;
	}
	cmd->dir = SCSI_DIR_READ;
	cmd->xfer_len = get_be16(cmd->cdb + 7);
	return 0;
}

/* iSCSI TransportID, format 01b: "name,i,0x<ISID>" (SPC-4 7.6.4.6). */
static size_t put_transport_id(uint8_t *b, const struct pr_reg *r)
{
	size_t len = strlen(r->iport) + 1;

	len = (len + 3) & ~(size_t)3;
	memset(b, 0, 4 + len);
	b[0] = 0x40 | SCSI_PROTO_ISCSI;
	put_be16(b + 2, (uint16_t)len);
	memcpy(b + 4, r->iport, strlen(r->iport));
	return 4 + len;
}

#define PRIN_BUF 65536

static void pr_in(struct scsi_cmd *cmd, uint8_t *b)
{
	struct scsi_lu *lu = cmd->lu;
	struct scsi_pr *pr = lu->pr;
	uint32_t gen = pr ? pr->generation : 0;
	struct pr_reg *r;
	size_t n = 8;

	switch (cmd->cdb[1] & 0x1f) {
	case 0x00: /* READ KEYS */
		if (pr)
			list_for_each_entry(r, &pr->regs, link) {
				if (n + 8 > PRIN_BUF)
					break;
				put_be64(b + n, r->key);
				n += 8;
			}
		put_be32(b, gen);
		put_be32(b + 4, (uint32_t)(n - 8));
		break;
	case 0x01: /* READ RESERVATION */
		if (pr && pr->holder) {
			/* the key is 0 for the all-registrants types */
			if (!type_all_reg(pr->type))
				put_be64(b + 8, pr->holder->key);
			b[8 + 13] = pr->type; /* SCOPE 0h: logical unit */
			n += 16;
		}
		put_be32(b, gen);
		put_be32(b + 4, (uint32_t)(n - 8));
		break;
	case 0x02: /* REPORT CAPABILITIES */
		n = 8;
		put_be16(b, 8);
		b[2] = 0x10 | 0x04; /* CRH, ATP_C */
		pthread_mutex_lock(&pr_dir_lock);
		if (pr_state_dir || pr_shared(lu))
			b[2] |= 0x01; /* PTPL_C */
		pthread_mutex_unlock(&pr_dir_lock);
		/* TMV, ALLOW COMMANDS 001b (SPC-4 table 175) */
		b[3] = 0x80 | 0x10;
		if (pr && pr->aptpl)
			b[3] |= 0x01; /* PTPL_A */
		b[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02;
		b[5] = 0x01;
		break;
	default: /* READ FULL STATUS */
		if (pr)
			list_for_each_entry(r, &pr->regs, link) {
				uint8_t *d = b + n;
				size_t tl = (strlen(r->iport) + 1 + 3) & ~(size_t)3;

				if (n + 24 + 4 + tl > PRIN_BUF)
					break;
				memset(d, 0, 24);
				put_be64(d, r->key);
				if (r->all_tg_pt)
					d[12] |= 0x02;
				if (is_holder(lu, r)) {
					d[12] |= 0x01;
					d[13] = pr->type;
				}
				put_be16(d + 18, r->rel_port_id);
				tl = put_transport_id(d + 24, r);
				put_be32(d + 20, (uint32_t)tl);
				n += 24 + tl;
			}
		put_be32(b, gen);
		put_be32(b + 4, (uint32_t)(n - 8));
		break;
	}
	scsi_data_in(cmd, b, n);
}

void spc_exec_pr_in(struct scsi_cmd *cmd)
{
	uint8_t *b = calloc(1, PRIN_BUF);

	if (!b) {
		scsi_set_sense(cmd, SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
	} else if (pr_shared(cmd->lu) && !pr_fresh(cmd->lu)) {
		set_stale(cmd);
		free(b);
	} else {
		pthread_mutex_lock(&cmd->lu->lock);
		pr_in(cmd, b);
		pthread_mutex_unlock(&cmd->lu->lock);
		free(b);
	}
	scsi_cmd_complete(cmd);
}

/* --- PERSISTENT RESERVE OUT (SPC-4 6.16) --- */

enum {
	SA_REGISTER = 0,
	SA_RESERVE = 1,
	SA_RELEASE = 2,
	SA_CLEAR = 3,
	SA_PREEMPT = 4,
	SA_PREEMPT_ABORT = 5,
	SA_REGISTER_IGNORE = 6,
	SA_REGISTER_MOVE = 7,
};

int spc_prepare_pr_out(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	uint8_t sa = cdb[1] & 0x1f;
	uint32_t len = get_be32(cdb + 5);

	if (!cmd->lu->attrs.emulate_pr) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
		return 1;
	}
	if (sa > SA_REGISTER_MOVE) {
		scsi_set_sense_field(cmd, true, 1, 4);
		return 1;
	}
	/* SPC-4 6.16.3: 24 bytes, unless SPEC_I_PT (not supported) or
	 * REGISTER AND MOVE, which carry TransportIDs. */
	if (sa == SA_REGISTER_MOVE ? len < 24 || len > 4096 : len != 24) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_PARAM_LIST_LENGTH_ERROR);
		return 1;
	}
	cmd->dir = SCSI_DIR_WRITE;
	cmd->xfer_len = len;
	return 0;
}

static struct pr_reg *reg_new(const struct scsi_nexus *nx, uint64_t key,
			      bool all_tg_pt)
{
	struct pr_reg *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->key = key;
	snprintf(r->iport, sizeof(r->iport), "%s", nx->initiator_port);
	snprintf(r->iname, sizeof(r->iname), "%s", nx->initiator_name);
	snprintf(r->tname, sizeof(r->tname), "%s", nx->tport.target_name);
	r->tpgt = nx->tport.tpgt;
	r->rel_port_id = nx->tport.rel_port_id;
	r->all_tg_pt = all_tg_pt;
	return r;
}

/* LIO's force_pr_aptpl attribute: the state is kept across power loss
 * whatever APTPL the initiator asked for (when there is a directory to keep
 * it in). */
static bool forced_aptpl(const struct scsi_lu *lu, bool aptpl)
{
	bool dir;

	/* cluster state is kept whatever APTPL says (docs/rbd.md) */
	if (aptpl || !lu->attrs.force_pr_aptpl || pr_shared(lu))
		return aptpl;
	pthread_mutex_lock(&pr_dir_lock);
	dir = pr_state_dir != NULL;
	pthread_mutex_unlock(&pr_dir_lock);
	return dir;
}

static bool aptpl_ok(struct scsi_cmd *cmd, bool aptpl)
{
	bool ok;

	if (!aptpl || pr_shared(cmd->lu))
		return true;
	pthread_mutex_lock(&pr_dir_lock);
	ok = pr_state_dir != NULL;
	pthread_mutex_unlock(&pr_dir_lock);
	if (!ok) /* PTPL_C is 0 */
		scsi_set_sense_field(cmd, false, 20, 0);
	return ok;
}

/* Unregistration (SPC-4 5.12.11.2.3): a reservation of a registrants-only
 * type released this way tells the other registrants (RESERVATIONS
 * RELEASED). */
static void unregister(struct scsi_cmd *cmd, struct pr_reg *r)
{
	struct scsi_lu *lu = cmd->lu;
	struct scsi_pr *pr = lu->pr;
	bool released = pr->holder == r && !type_all_reg(pr->type);
	uint8_t type = pr->type;

	reg_free(lu, r);
	if (released && type_reg_only(type)) {
		struct pr_reg *o;

		list_for_each_entry(o, &pr->regs, link)
			ua_for(lu, o, cmd->nexus, SCSI_UA_RESV_RELEASED);
	}
}

static void pr_register(struct scsi_cmd *cmd, struct pr_reg *r, uint64_t rk,
			uint64_t sark, uint8_t flags, bool ignore)
{
	struct scsi_lu *lu = cmd->lu;
	struct scsi_pr *pr = lu->pr;
	bool aptpl = flags & 0x01, all_tg_pt = flags & 0x04;

	if (flags & 0x08) { /* SPEC_I_PT: SIP_C is 0 */
		scsi_set_sense_field(cmd, false, 20, 3);
		return;
	}
	if (!r) {
		if (!ignore && rk != 0) {
			set_conflict(cmd);
			return;
		}
		if (sark == 0) { /* nothing to register */
			scsi_set_good(cmd);
			return;
		}
		if (!aptpl_ok(cmd, aptpl))
			return;
		r = reg_new(cmd->nexus, sark, all_tg_pt);
		if (!r) {
			scsi_set_sense(cmd, SK_HARDWARE_ERROR,
				       ASC_INTERNAL_TARGET_FAILURE);
			return;
		}
		list_add_tail(&r->link, &pr->regs);
	} else {
		if (!ignore && rk != r->key) {
			set_conflict(cmd);
			return;
		}
		if (!aptpl_ok(cmd, aptpl))
			return;
		if (sark == 0)
			unregister(cmd, r);
		else
			r->key = sark;
	}
	pr->aptpl = forced_aptpl(lu, aptpl);
	pr->generation++;
	scsi_set_good(cmd);
}

static void pr_reserve(struct scsi_cmd *cmd, struct pr_reg *r, uint8_t type)
{
	struct scsi_pr *pr = cmd->lu->pr;

	if (pr->holder) {
		/* SPC-4 5.12.9: the holder may repeat its RESERVE with the
		 * same type; anything else conflicts. */
		if (is_holder(cmd->lu, r) && pr->type == type)
			scsi_set_good(cmd);
		else
			set_conflict(cmd);
		return;
	}
	pr->holder = r;
	pr->type = type;
	scsi_set_good(cmd);
}

static void pr_release(struct scsi_cmd *cmd, struct pr_reg *r, uint8_t type)
{
	struct scsi_lu *lu = cmd->lu;
	struct scsi_pr *pr = lu->pr;
	uint8_t old = pr->type;

	/* SPC-4 5.12.11.2.2: no reservation, or not the holder: GOOD and
	 * nothing happens. */
	if (!pr->holder || !is_holder(lu, r)) {
		scsi_set_good(cmd);
		return;
	}
	if (type != pr->type) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, 0x2604); /* INVALID RELEASE OF PERSISTENT RESERVATION */
		return;
	}
	pr->holder = NULL;
	pr->type = 0;
	/* The other registrants learn of it for the registrants-only and
	 * all-registrants types. */
	if (type_reg_only(old) || type_all_reg(old)) {
		struct pr_reg *o;

		list_for_each_entry(o, &pr->regs, link)
			if (o != r)
				ua_for(lu, o, cmd->nexus, SCSI_UA_RESV_RELEASED);
	}
	scsi_set_good(cmd);
}

static void pr_clear(struct scsi_cmd *cmd, struct pr_reg *r)
{
	struct scsi_lu *lu = cmd->lu;
	struct scsi_pr *pr = lu->pr;
	struct pr_reg *o, *n;

	/* SPC-4 5.12.11.6: every other registered nexus gets RESERVATIONS
	 * PREEMPTED. */
	list_for_each_entry_safe(o, n, &pr->regs, link) {
		if (o != r)
			ua_for(lu, o, cmd->nexus, SCSI_UA_RESV_PREEMPTED);
	}
	list_for_each_entry_safe(o, n, &pr->regs, link)
		free(o);
	list_init(&pr->regs);
	pr->holder = NULL;
	pr->type = 0;
	pr->generation++;
	scsi_set_good(cmd);
}

/* Set while a PREEMPT AND ABORT runs: preempted nexuses also lose their
 * tasks on the LU (SPC-4 5.12.11.5). */
static _Thread_local bool preempt_abort;

/* Removes every registration with key sark except 'keep'; returns how
 * many, with REGISTRATIONS PREEMPTED for their nexuses. */
static unsigned remove_key(struct scsi_cmd *cmd, uint64_t sark,
			   struct pr_reg *keep, bool all_but_keep)
{
	struct scsi_lu *lu = cmd->lu;
	struct pr_reg *o, *n;
	unsigned cnt = 0;

	list_for_each_entry_safe(o, n, &lu->pr->regs, link) {
		if (o == keep || (!all_but_keep && o->key != sark))
			continue;
		ua_for(lu, o, cmd->nexus, SCSI_UA_REG_PREEMPTED);
		if (preempt_abort && strcmp(o->iport, cmd->nexus->initiator_port)) {
			if (recording)
				record(0, o, cmd->nexus);
			else
				scsi_lu_abort_tasks(lu, o->iport, cmd->nexus);
		}
		if (lu->pr->holder == o)
			lu->pr->holder = NULL;
		list_del(&o->link);
		free(o);
		cnt++;
	}
	return cnt;
}

/* PREEMPT and PREEMPT AND ABORT (SPC-4 5.12.11.4, 5.12.11.5); for the
 * latter the preempted nexuses' tasks end through the transport's abort
 * hook (see remove_key). */
static void pr_preempt(struct scsi_cmd *cmd, struct pr_reg *r, uint64_t sark,
		       uint8_t type)
{
	struct scsi_lu *lu = cmd->lu;
	struct scsi_pr *pr = lu->pr;

	if (!pr->holder) {
		if (sark == 0) {
			scsi_set_sense_field(cmd, false, 8, -1);
			return;
		}
		if (!remove_key(cmd, sark, NULL, false)) {
			set_conflict(cmd);
			return;
		}
	} else if (type_all_reg(pr->type)) {
		if (sark == 0) {
			/* everyone else goes; r holds the new reservation */
			remove_key(cmd, 0, r, true);
			pr->holder = r;
			pr->type = type;
		} else if (!remove_key(cmd, sark, r, false)) {
			set_conflict(cmd);
			return;
		}
	} else if (sark == pr->holder->key) {
		uint8_t old = pr->type;

		remove_key(cmd, sark, r, false);
		pr->holder = r;
		pr->type = type;
		/* a changed type is news to the remaining registrants */
		if (old != type) {
			struct pr_reg *o;

			list_for_each_entry(o, &pr->regs, link)
				if (o != r)
					ua_for(lu, o, cmd->nexus,
					       SCSI_UA_RESV_RELEASED);
		}
	} else {
		if (sark == 0) {
			scsi_set_sense_field(cmd, false, 8, -1);
			return;
		}
		if (!remove_key(cmd, sark, r, false)) {
			set_conflict(cmd);
			return;
		}
	}
	pr->generation++;
	scsi_set_good(cmd);
}

/* REGISTER AND MOVE (SPC-4 5.12.8): the holder hands its reservation to
 * the I_T nexus named by a TransportID and a relative target port. */
static void pr_register_move(struct scsi_cmd *cmd, struct pr_reg *r,
			     const uint8_t *p, uint32_t len)
{
	struct scsi_lu *lu = cmd->lu;
	struct scsi_pr *pr = lu->pr;
	uint64_t sark = get_be64(p + 8);
	bool unreg = p[17] & 0x02, aptpl = p[17] & 0x01;
	uint16_t rtpi = get_be16(p + 18);
	uint32_t tlen = get_be32(p + 20);
	char iport[INITIATOR_PORT_MAX];
	const uint8_t *t = p + 24;
	struct pr_reg *dst, *o;
	struct scsi_alua_port *port, *pp;
	size_t nlen;

	if (!pr->holder || !is_holder(lu, r)) {
		set_conflict(cmd);
		return;
	}
	if (type_all_reg(pr->type)) { /* not movable */
		set_conflict(cmd);
		return;
	}
	if (sark == 0) {
		scsi_set_sense_field(cmd, false, 8, -1);
		return;
	}
	if (tlen < 4 || 24 + (uint64_t)tlen > len) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_PARAM_LIST_LENGTH_ERROR);
		return;
	}
	if ((t[0] & 0x0f) != SCSI_PROTO_ISCSI) {
		scsi_set_sense_field(cmd, false, 24, 3);
		return;
	}
	nlen = get_be16(t + 2);
	if (nlen + 4 > tlen || nlen == 0) {
		scsi_set_sense_field(cmd, false, 26, -1);
		return;
	}
	nlen = strnlen((const char *)t + 4, nlen);
	if (nlen >= sizeof(iport)) {
		scsi_set_sense_field(cmd, false, 28, -1);
		return;
	}
	memcpy(iport, t + 4, nlen);
	iport[nlen] = 0;
	if (!aptpl_ok(cmd, aptpl))
		return;
	/* RELATIVE TARGET PORT IDENTIFIER (SPC-4 6.16.4, table 218): one of
	 * the LU's ports (the RTPI is unique in the daemon, so it names the
	 * target and TPG); LIO (target_core_pr.c
	 * core_scsi3_emulate_register_and_move) also refuses an unknown one
	 * with INVALID FIELD IN PARAMETER LIST */
	port = NULL;
	list_for_each_entry(pp, &lu->alua_ports, link)
		if (!pp->deleted && pp->rtpi == rtpi) {
			port = pp;
			break;
		}
	if (!port) {
		scsi_set_sense_field(cmd, false, 18, -1);
		return;
	}
	/* the destination must be another I_T nexus than the source */
	dst = NULL;
	list_for_each_entry(o, &pr->regs, link)
		if (strcasecmp(o->iport, iport) == 0 && o->rel_port_id == rtpi) {
			dst = o;
			break;
		}
	if (dst == r) {
		scsi_set_sense_field(cmd, false, 24, -1);
		return;
	}
	if (!dst) {
		char *comma;

		dst = calloc(1, sizeof(*dst));
		if (!dst) {
			scsi_set_sense(cmd, SK_HARDWARE_ERROR,
				       ASC_INTERNAL_TARGET_FAILURE);
			return;
		}
		snprintf(dst->iport, sizeof(dst->iport), "%s", iport);
		snprintf(dst->iname, sizeof(dst->iname), "%.*s", SCSI_NAME_MAX - 1, iport);
		comma = strchr(dst->iname, ',');
		if (comma)
			*comma = 0;
		snprintf(dst->tname, sizeof(dst->tname), "%s",
			 port->target_name);
		dst->tpgt = port->tpgt;
		dst->rel_port_id = rtpi;
		list_add_tail(&dst->link, &pr->regs);
	}
	dst->key = sark;
	pr->holder = dst;
	if (unreg) {
		list_del(&r->link);
		free(r);
	}
	pr->aptpl = forced_aptpl(lu, aptpl);
	pr->generation++;
	scsi_set_good(cmd);
}

static void pr_out(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	const uint8_t *cdb = cmd->cdb;
	uint8_t sa = cdb[1] & 0x1f, scope = cdb[2] >> 4, type = cdb[2] & 0x0f;
	const uint8_t *p = cmd->buf;
	uint64_t rk, sark;
	struct pr_reg *r;

	if (sbc_data_out_short(cmd))
		return;
	if (!pr_get(lu)) {
		scsi_set_sense(cmd, SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
		return;
	}
	/* SPC-4 5.12.3: under an SPC-2 reservation PR OUT conflicts */
	if (spc2_held(lu->pr)) {
		set_conflict(cmd);
		return;
	}
	rk = get_be64(p);
	sark = get_be64(p + 8);
	r = reg_find(lu, cmd->nexus);
	if (sa == SA_REGISTER || sa == SA_REGISTER_IGNORE) {
		pr_register(cmd, r, rk, sark, p[20], sa == SA_REGISTER_IGNORE);
		goto out;
	}
	/* every other action needs a registration with this key */
	if (!r || r->key != rk) {
		set_conflict(cmd);
		return;
	}
	if (sa != SA_CLEAR && sa != SA_REGISTER_MOVE) {
		if (scope != 0) {
			scsi_set_sense_field(cmd, true, 2, 7);
			return;
		}
		if (!type_valid(type) && !(sa == SA_PREEMPT && !lu->pr->holder)) {
			scsi_set_sense_field(cmd, true, 2, 3);
			return;
		}
	}
	switch (sa) {
	case SA_RESERVE:
		pr_reserve(cmd, r, type);
		break;
	case SA_RELEASE:
		pr_release(cmd, r, type);
		break;
	case SA_CLEAR:
		pr_clear(cmd, r);
		break;
	case SA_PREEMPT:
	case SA_PREEMPT_ABORT:
		preempt_abort = sa == SA_PREEMPT_ABORT;
		pr_preempt(cmd, r, sark, type);
		preempt_abort = false;
		break;
	default:
		pr_register_move(cmd, r, p, cmd->xfer_len);
		break;
	}
out:
	if (cmd->status == SAM_STAT_GOOD)
		pr_save(lu);
}

void spc_exec_pr_out(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;

	if (pr_shared(lu)) {
		pr_out_cluster_start(cmd);
		return;
	}
	pthread_mutex_lock(&lu->lock);
	pr_out(cmd);
	update_reserved(lu);
	pthread_mutex_unlock(&lu->lock);
	scsi_cmd_complete(cmd);
}

/* --- cluster state (bs->pr_shared) --- */

static struct scsi_pr *pr_new(void)
{
	struct scsi_pr *pr = calloc(1, sizeof(*pr));

	if (pr)
		list_init(&pr->regs);
	return pr;
}

/* A deep copy, for evaluating a PR OUT without touching the cache. */
static struct scsi_pr *pr_dup(const struct scsi_pr *src)
{
	struct scsi_pr *pr = pr_new();
	const struct pr_reg *r;

	if (!pr)
		return NULL;
	pr->generation = src->generation;
	pr->type = src->type;
	pr->aptpl = src->aptpl;
	pr->spc2 = src->spc2;
	pr->spc2_c = src->spc2_c;
	pr->spc2_nx = src->spc2_nx;
	pr->version = src->version;
	pr->events_from = src->events_from;
	list_for_each_entry(r, &src->regs, link) {
		struct pr_reg *c = malloc(sizeof(*c));

		if (!c) {
			pr_destroy(pr);
			return NULL;
		}
		*c = *r;
		list_add_tail(&c->link, &pr->regs);
		if (src->holder == r)
			pr->holder = c;
	}
	if (src->log.n) {
		pr->log.v = malloc(src->log.n * sizeof(*pr->log.v));
		if (!pr->log.v) {
			pr_destroy(pr);
			return NULL;
		}
		memcpy(pr->log.v, src->log.v, src->log.n * sizeof(*pr->log.v));
		pr->log.n = src->log.n;
	}
	return pr;
}

/* The new version's events join the log; those older than
 * PR_EV_VERSIONS versions leave it. */
static int pr_log_add(struct scsi_pr *pr, const struct pr_evlog *evs)
{
	uint64_t from = pr->version > PR_EV_VERSIONS ?
			pr->version - PR_EV_VERSIONS + 1 : 1;
	unsigned i, k = 0;

	for (i = 0; i < pr->log.n; i++)
		if (pr->log.v[i].version >= from)
			pr->log.v[k++] = pr->log.v[i];
	pr->log.n = k;
	for (i = 0; i < evs->n; i++) {
		struct pr_ev *ev = ev_add(&pr->log);

		if (!ev)
			return -ENOMEM;
		*ev = evs->v[i];
		ev->version = pr->version;
	}
	pr->events_from = from;
	return 0;
}

static const char *ua_name(unsigned ua)
{
	switch (ua) {
	case SCSI_UA_RESV_PREEMPTED: return "reservations_preempted";
	case SCSI_UA_RESV_RELEASED: return "reservations_released";
	case SCSI_UA_REG_PREEMPTED: return "registrations_preempted";
	default: return "abort_tasks";
	}
}

static unsigned ua_bit(const char *s)
{
	if (!strcmp(s, "reservations_preempted"))
		return SCSI_UA_RESV_PREEMPTED;
	if (!strcmp(s, "reservations_released"))
		return SCSI_UA_RESV_RELEASED;
	if (!strcmp(s, "registrations_preempted"))
		return SCSI_UA_REG_PREEMPTED;
	if (!strcmp(s, "abort_tasks"))
		return 0;
	return ~0u; /* not ours to act on */
}

static json_t *reg_json(const struct pr_reg *r, bool with_key)
{
	json_t *o = json_object();
	char key[24];

	if (!o)
		return NULL;
	if (with_key) {
		snprintf(key, sizeof(key), "0x%016" PRIx64, r->key);
		json_object_set_new(o, "key", json_string(key));
	}
	json_object_set_new(o, "initiator_port", json_string(r->iport));
	json_object_set_new(o, "initiator_name", json_string(r->iname));
	json_object_set_new(o, "target_name", json_string(r->tname));
	json_object_set_new(o, "tpgt", json_integer(r->tpgt));
	if (with_key)
		json_object_set_new(o, "rtpi", json_integer(r->rel_port_id));
	json_object_set_new(o, "all_tg_pt", json_boolean(r->all_tg_pt));
	return o;
}

static bool str_get(json_t *o, const char *k, char *out, size_t outlen)
{
	const char *v = json_string_value(json_object_get(o, k));

	if (!v || strlen(v) >= outlen)
		return false;
	memcpy(out, v, strlen(v) + 1);
	return true;
}

static bool reg_from_json(json_t *o, struct pr_reg *r, bool with_key)
{
	char key[24];

	memset(r, 0, sizeof(*r));
	if (!json_is_object(o) ||
	    !str_get(o, "initiator_port", r->iport, sizeof(r->iport)) ||
	    !str_get(o, "initiator_name", r->iname, sizeof(r->iname)) ||
	    !str_get(o, "target_name", r->tname, sizeof(r->tname)))
		return false;
	r->tpgt = (uint16_t)json_integer_value(json_object_get(o, "tpgt"));
	r->all_tg_pt = json_is_true(json_object_get(o, "all_tg_pt"));
	if (with_key) {
		if (!str_get(o, "key", key, sizeof(key)))
			return false;
		r->key = strtoull(key, NULL, 16);
		r->rel_port_id =
			(uint16_t)json_integer_value(json_object_get(o, "rtpi"));
	}
	return true;
}

/* The stored form (docs/rbd.md): a JSON object, keys as hex strings (a
 * JSON number cannot hold every 64-bit key). */
static char *pr_encode(const struct scsi_pr *pr, size_t *len)
{
	json_t *root = json_object(), *regs = json_array(), *evs = json_array();
	const struct pr_reg *r;
	unsigned idx = 0, i;
	char *out = NULL;

	if (!root || !regs || !evs)
		goto done;
	json_object_set_new(root, "format", json_string("utarget-pr/1"));
	json_object_set_new(root, "version", json_integer((json_int_t)pr->version));
	json_object_set_new(root, "generation", json_integer(pr->generation));
	json_object_set_new(root, "aptpl", json_boolean(pr->aptpl));
	json_object_set(root, "registrations", regs);
	list_for_each_entry(r, &pr->regs, link) {
		json_array_append_new(regs, reg_json(r, true));
		if (r == pr->holder) {
			json_t *h = json_object();

			json_object_set_new(h, "holder", json_integer(idx));
			json_object_set_new(h, "type", json_integer(pr->type));
			json_object_set_new(root, "reservation", h);
		}
		idx++;
	}
	if (!pr->holder)
		json_object_set_new(root, "reservation", json_null());
	if (pr->spc2_c) {
		json_t *x = json_object();

		json_object_set_new(x, "initiator_port", json_string(pr->spc2_nx.iport));
		json_object_set_new(x, "target_name", json_string(pr->spc2_nx.tname));
		json_object_set_new(x, "tpgt", json_integer(pr->spc2_nx.tpgt));
		json_object_set_new(root, "spc2_reservation", x);
	} else {
		json_object_set_new(root, "spc2_reservation", json_null());
	}
	json_object_set_new(root, "events_from",
			    json_integer((json_int_t)pr->events_from));
	json_object_set(root, "events", evs);
	for (i = 0; i < pr->log.n; i++) {
		const struct pr_ev *ev = &pr->log.v[i];
		json_t *e = json_object(), *x = json_object();

		json_object_set_new(e, "version", json_integer((json_int_t)ev->version));
		json_object_set_new(e, "event", json_string(ua_name(ev->ua)));
		json_object_set_new(e, "for", reg_json(&ev->reg, false));
		json_object_set_new(x, "initiator_port", json_string(ev->x_iport));
		json_object_set_new(x, "target_name", json_string(ev->x_tname));
		json_object_set_new(x, "tpgt", json_integer(ev->x_tpgt));
		json_object_set_new(e, "except", x);
		json_array_append_new(evs, e);
	}
	out = json_dumps(root, JSON_COMPACT);
	if (out)
		*len = strlen(out);
done:
	json_decref(regs);
	json_decref(evs);
	json_decref(root);
	return out;
}

/* NULL when the bytes are not a state we understand (logged). An empty
 * object is the empty state of version 0. */
static struct scsi_pr *pr_decode(const struct scsi_lu *lu, const char *data,
				 size_t len)
{
	struct scsi_pr *pr = pr_new();
	struct pr_reg **byidx = NULL;
	json_t *root = NULL, *regs, *resv, *evs, *v;
	json_error_t je;
	size_t i, n;

	if (!pr || !len)
		return pr;
	root = json_loadb(data, len, 0, &je);
	if (!json_is_object(root) ||
	    !json_is_string(json_object_get(root, "format")) ||
	    strcmp(json_string_value(json_object_get(root, "format")),
		   "utarget-pr/1")) {
		log_warn("storage object %s: persistent reservation state in the "
			 "cluster is not utarget-pr/1 (%s)", lu->name,
			 root ? "format" : je.text);
		goto fail;
	}
	pr->version = (uint64_t)json_integer_value(json_object_get(root, "version"));
	pr->generation = (uint32_t)json_integer_value(json_object_get(root, "generation"));
	pr->aptpl = json_is_true(json_object_get(root, "aptpl"));
	pr->events_from =
		(uint64_t)json_integer_value(json_object_get(root, "events_from"));
	regs = json_object_get(root, "registrations");
	n = json_array_size(regs);
	byidx = calloc(n ? n : 1, sizeof(*byidx));
	if (!byidx)
		goto fail;
	json_array_foreach(regs, i, v) {
		struct pr_reg *r = malloc(sizeof(*r));

		if (!r || !reg_from_json(v, r, true)) {
			free(r);
			log_warn("storage object %s: bad registration %zu in the "
				 "cluster's persistent reservation state",
				 lu->name, i);
			goto fail;
		}
		list_add_tail(&r->link, &pr->regs);
		byidx[i] = r;
	}
	resv = json_object_get(root, "reservation");
	if (json_is_object(resv)) {
		json_int_t h = json_integer_value(json_object_get(resv, "holder"));
		uint8_t t = (uint8_t)json_integer_value(json_object_get(resv, "type"));

		if (h < 0 || (size_t)h >= n || !type_valid(t)) {
			log_warn("storage object %s: bad reservation in the cluster's "
				 "persistent reservation state", lu->name);
			goto fail;
		}
		pr->holder = byidx[h];
		pr->type = t;
	}
	v = json_object_get(root, "spc2_reservation");
	if (json_is_object(v)) {
		if (!str_get(v, "initiator_port", pr->spc2_nx.iport,
			     sizeof(pr->spc2_nx.iport)) ||
		    !str_get(v, "target_name", pr->spc2_nx.tname,
			     sizeof(pr->spc2_nx.tname)))
			goto fail;
		pr->spc2_nx.tpgt =
			(uint16_t)json_integer_value(json_object_get(v, "tpgt"));
		pr->spc2_c = true;
	}
	evs = json_object_get(root, "events");
	json_array_foreach(evs, i, v) {
		json_t *x = json_object_get(v, "except");
		struct pr_ev *ev = ev_add(&pr->log);

		if (!ev || !reg_from_json(json_object_get(v, "for"), &ev->reg, false))
			goto fail;
		list_init(&ev->reg.link);
		ev->version = (uint64_t)json_integer_value(json_object_get(v, "version"));
		ev->ua = json_is_string(json_object_get(v, "event")) ?
			 ua_bit(json_string_value(json_object_get(v, "event"))) : ~0u;
		if (ev->ua == ~0u)
			pr->log.n--; /* an event a later format added: skip */
		str_get(x, "initiator_port", ev->x_iport, sizeof(ev->x_iport));
		str_get(x, "target_name", ev->x_tname, sizeof(ev->x_tname));
		ev->x_tpgt = (uint16_t)json_integer_value(json_object_get(x, "tpgt"));
	}
	free(byidx);
	json_decref(root);
	return pr;
fail:
	free(byidx);
	json_decref(root);
	pr_destroy(pr);
	return NULL;
}

static bool nexus_is(const struct scsi_nexus *nx, const struct pr_ev *ev)
{
	return nx->tport.tpgt == ev->x_tpgt &&
	       !strcmp(nx->initiator_port, ev->x_iport) &&
	       !strcmp(nx->tport.target_name, ev->x_tname);
}

/* Raises one recorded event on this gateway's nexuses. lu->lock held. */
static void ev_apply(struct scsi_lu *lu, const struct pr_ev *ev)
{
	struct scsi_lun_ent *e;

	if (!ev->ua) {
		/* SPC-4 5.12.11.5: the preempted initiator's tasks end here
		 * too, whichever gateway its commands came through */
		scsi_lu_abort_tasks(lu, ev->reg.iport, NULL);
		return;
	}
	list_for_each_entry(e, &lu->nexus_ents, lu_link) {
		if (nexus_is(e->nexus, ev) || !reg_matches(lu, &ev->reg, e->nexus))
			continue;
		atomic_fetch_or(&e->ua, ev->ua);
	}
}

/* Without the events (more versions missed than the log keeps): a nexus
 * that had a registration and has none now was preempted
 * (REGISTRATIONS PREEMPTED, SPC-4 5.12.11.4). lu->lock held. */
static void diff_apply(struct scsi_lu *lu, const struct scsi_pr *old,
		       const struct scsi_pr *fresh)
{
	struct scsi_lun_ent *e;
	const struct pr_reg *r;

	list_for_each_entry(e, &lu->nexus_ents, lu_link) {
		bool had = false, has = false;

		list_for_each_entry(r, &old->regs, link)
			had = had || reg_matches(lu, r, e->nexus);
		list_for_each_entry(r, &fresh->regs, link)
			has = has || reg_matches(lu, r, e->nexus);
		if (had && !has)
			atomic_fetch_or(&e->ua, SCSI_UA_REG_PREEMPTED);
	}
}

/* Makes fresh (a state from the cluster, owned from now on) the LU's
 * cache if it is newer, raising the unit attentions of the versions in
 * between for this gateway's nexuses. lu->lock held. */
static void pr_install_locked(struct scsi_lu *lu, struct scsi_pr *fresh)
{
	struct scsi_pr *old = lu->pr;
	bool loaded = atomic_load(&lu->pr_loaded);
	unsigned i;

	/* versions only grow (compare-and-swap); an older one is a notify
	 * or a store overtaken by another gateway's */
	if (old && loaded && fresh->version <= old->version) {
		pr_destroy(fresh);
		return;
	}
	if (old && loaded) {
		if (fresh->events_from > old->version + 1)
			diff_apply(lu, old, fresh);
		for (i = 0; i < fresh->log.n; i++)
			if (fresh->log.v[i].version > old->version)
				ev_apply(lu, &fresh->log.v[i]);
	}
	lu->pr = fresh;
	pr_destroy(old);
	atomic_store(&lu->pr_loaded, true);
	update_reserved(lu);
}

/* The backstore's changed hook (its watch thread): another gateway stored
 * a state (data), or the watch came back and we must read it (NULL).
 * Taken before returning: the notifier's PR OUT waits for that. */
static int pr_changed(void *arg, const char *data, size_t len)
{
	struct scsi_lu *lu = arg;
	struct scsi_pr *fresh;
	char *buf = NULL;

	if (!data || !len) {
		int e = lu->bs->ops->pr_load(lu->bs, &buf, &len);

		if (e < 0)
			return e;
		data = buf;
	}
	fresh = pr_decode(lu, data, len);
	free(buf);
	if (!fresh)
		return -EINVAL;
	pthread_mutex_lock(&lu->lock);
	pr_install_locked(lu, fresh);
	pthread_mutex_unlock(&lu->lock);
	return 0;
}

static void pr_cluster_attach(struct scsi_lu *lu)
{
	int e;

	/* reads the state through pr_changed before it returns (and, if
	 * that fails, keeps trying: until then pr_loaded is false and
	 * nothing that depends on the state is served) */
	lu->bs->ops->pr_attach(lu->bs, pr_changed, lu);
	e = atomic_load(&lu->pr_loaded) ? 0 : -EAGAIN;
	pthread_mutex_lock(&lu->lock);
	if (e >= 0) {
		const struct pr_reg *r;
		unsigned n = 0;

		if (lu->pr)
			list_for_each_entry(r, &lu->pr->regs, link)
				n++;
		log_info("storage object %s: persistent reservations kept in "
			 "the cluster (%u registration(s))", lu->name, n);
	}
	update_reserved(lu);
	pthread_mutex_unlock(&lu->lock);
}

/* Evaluates a change against a copy of the state (lu->pr is the copy,
 * lu->lock held): 1 to store it, 0 to leave the state as it is. */
typedef int (*pr_eval_fn)(struct scsi_lu *lu, void *ctx);

/* One update of the cluster's state: load the latest, evaluate against it,
 * compare-and-swap; another gateway's store in between means doing it
 * all again against theirs. Blocks: helper threads only. 0, or -errno
 * when the cluster could not be read or written (-ENOMEM, -EINVAL: the
 * state is not ours to understand). */
static int cluster_update(struct scsi_lu *lu, pr_eval_fn eval, void *ctx)
{
	struct bs_dev *bs = lu->bs;
	unsigned tries;

	for (tries = 0;; tries++) {
		struct scsi_pr *fresh, *work, *cached;
		struct pr_evlog evs = { 0 };
		char *buf = NULL, *out;
		size_t len = 0;
		uint64_t base;
		int e, store;

		e = bs->ops->pr_load(bs, &buf, &len);
		fresh = e < 0 ? NULL : pr_decode(lu, buf, len);
		free(buf);
		if (!fresh) {
			log_warn("storage object %s: cannot read the persistent "
				 "reservation state from the cluster: %s", lu->name,
				 e < 0 ? strerror(-e) : "not understood");
			return e < 0 ? e : -EINVAL;
		}
		pthread_mutex_lock(&lu->lock);
		pr_install_locked(lu, fresh);
		cached = lu->pr;
		work = pr_dup(cached);
		if (!work) {
			pthread_mutex_unlock(&lu->lock);
			return -ENOMEM;
		}
		base = cached->version;
		/* the same rules as a local LU, on a copy nobody else sees
		 * (the lock is held throughout), with the unit attentions
		 * recorded instead of raised */
		lu->pr = work;
		recording = &evs;
		store = eval(lu, ctx);
		recording = NULL;
		lu->pr = cached;
		pthread_mutex_unlock(&lu->lock);
		if (!store) {
			free(evs.v);
			pr_destroy(work);
			return 0;
		}
		work->version = base + 1;
		e = pr_log_add(work, &evs);
		free(evs.v);
		out = e < 0 ? NULL : pr_encode(work, &len);
		if (!out) {
			pr_destroy(work);
			return -ENOMEM;
		}
		e = bs->ops->pr_store(bs, base, base + 1, out, len);
		free(out);
		if (e == -ECANCELED && tries < 1000) {
			/* another gateway stored first: evaluate again against
			 * its state (after a short random pause, so that many
			 * racing gateways do not keep colliding) */
			pr_destroy(work);
			usleep((useconds_t)(rand() % (1000 * (tries < 20 ? tries + 1 : 20))));
			continue;
		}
		if (e < 0) {
			log_warn("storage object %s: cannot store the persistent "
				 "reservation state in the cluster: %s", lu->name,
				 strerror(-e));
			pr_destroy(work);
			return e;
		}
		pthread_mutex_lock(&lu->lock);
		pr_install_locked(lu, work);
		pthread_mutex_unlock(&lu->lock);
		return 0;
	}
}

/* PERSISTENT RESERVE OUT (SPC-4 6.16), RESERVE / RELEASE (SPC-2 7.21,
 * 7.13): stored when it succeeded. */
static int eval_cmd(struct scsi_lu *lu, void *ctx)
{
	struct scsi_cmd *cmd = ctx;

	if (cmd->cdb[0] == 0x5f)
		pr_out(cmd);
	else
		reserve_eval(cmd);
	return cmd->status == SAM_STAT_GOOD;
}

static void pr_out_complete_post(void *arg)
{
	scsi_cmd_complete(arg);
}

static void *pr_out_cluster(void *arg)
{
	struct scsi_cmd *cmd = arg;
	int e = cluster_update(cmd->lu, eval_cmd, cmd);

	if (e == -ENOMEM)
		scsi_set_sense(cmd, SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
	else if (e < 0)
		set_stale(cmd); /* retryable; see docs/rbd.md for a lost reply */
	if (cmd->loop) {
		/* the completion belongs to the command's worker */
		cmd->bio.post.fn = pr_out_complete_post;
		cmd->bio.post.arg = cmd;
		cmd->bio.post.owned = false;
		io_loop_post_node(cmd->loop, &cmd->bio.post);
	} else {
		scsi_cmd_complete(cmd);
	}
	return NULL;
}

static bool spawn(void *(*fn)(void *), void *arg)
{
	pthread_attr_t a;
	pthread_t t;
	int e;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	e = pthread_create(&t, &a, fn, arg);
	pthread_attr_destroy(&a);
	return e == 0;
}

static void pr_out_cluster_start(struct scsi_cmd *cmd)
{
	if (!spawn(pr_out_cluster, cmd)) {
		cmd->status = SAM_STAT_BUSY;
		cmd->sense_len = 0;
		scsi_cmd_complete(cmd);
	}
}

/* The end of an SPC-2 reservation that nobody's command asked for: its
 * nexus ended (any: a LUN or target reset, SPC-2 5.5.1) */
struct spc2_clear {
	struct scsi_lu *lu;
	bool any;
	struct pr_nx nx;
};

static int eval_spc2_clear(struct scsi_lu *lu, void *ctx)
{
	struct spc2_clear *c = ctx;
	struct scsi_pr *pr = lu->pr;

	if (!pr->spc2_c)
		return 0;
	if (!c->any && (pr->spc2_nx.tpgt != c->nx.tpgt ||
			strcmp(pr->spc2_nx.iport, c->nx.iport) ||
			strcmp(pr->spc2_nx.tname, c->nx.tname)))
		return 0;
	pr->spc2_c = false;
	return 1;
}

static void *spc2_clear_thread(void *arg)
{
	struct spc2_clear *c = arg;
	int e = cluster_update(c->lu, eval_spc2_clear, c);

	if (e < 0)
		log_warn("storage object %s: the SPC-2 reservation could not be "
			 "released in the cluster: %s", c->lu->name, strerror(-e));
	scsi_lu_put(c->lu);
	free(c);
	return NULL;
}

/* lu->lock held, so nothing blocks here: the update runs on a thread of
 * its own. Until it is stored the reservation still holds (on every
 * gateway alike). */
static void spc2_clear_cluster(struct scsi_lu *lu, const struct scsi_nexus *nx)
{
	struct spc2_clear *c = calloc(1, sizeof(*c));

	if (!c) {
		log_warn("storage object %s: no memory to release an SPC-2 "
			 "reservation", lu->name);
		return;
	}
	c->lu = lu;
	c->any = nx == NULL;
	if (nx)
		nx_id(&c->nx, nx);
	scsi_lu_get(lu);
	if (!spawn(spc2_clear_thread, c)) {
		log_warn("storage object %s: cannot release an SPC-2 "
			 "reservation (no thread)", lu->name);
		scsi_lu_put(lu);
		free(c);
	}
}
