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
 * Cluster state (pr_cluster.c; issue 18, bs->pr_shared: user:rbd with pr=cluster, see
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

#include "scsi/pr_int.h"

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

bool pr_type_valid(uint8_t t)
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

void pr_update_reserved(struct scsi_lu *lu)
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

bool pr_lu_shared(const struct scsi_lu *lu)
{
	return lu->bs && lu->bs->pr_shared;
}

void pr_nx_id(struct pr_nx *id, const struct scsi_nexus *nx)
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
void pr_set_stale(struct scsi_cmd *cmd)
{
	scsi_set_sense(cmd, SK_NOT_READY, ASC_LU_NOT_ACCESSIBLE_TRANSITION);
}

/* Set while a cluster PR OUT is evaluated: unit attentions and aborts go
 * here instead of to the nexuses (they are raised once the state is
 * stored, on every gateway). */
_Thread_local struct pr_evlog *pr_recording;

struct pr_ev *pr_ev_add(struct pr_evlog *log)
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
	struct pr_ev *ev = pr_ev_add(pr_recording);

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
bool pr_reg_matches(const struct scsi_lu *lu, const struct pr_reg *r,
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
		if (pr_reg_matches(lu, r, nx))
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

	if (pr_recording && r) {
		record(ua, r, except);
		return;
	}
	list_for_each_entry(e, &lu->nexus_ents, lu_link) {
		if (e->nexus == except)
			continue;
		if (r && !pr_reg_matches(lu, r, e->nexus))
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

	if (pr_lu_shared(lu)) /* kept in the cluster */
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


void scsi_pr_restore(struct scsi_lu *lu)
{
	char path[4200], line[1200];
	struct pr_reg *regs[1024];
	unsigned n = 0;
	FILE *f;

	if (pr_lu_shared(lu)) {
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
			if (h >= 1 && h <= n && pr_type_valid((uint8_t)ty)) {
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
	pr_update_reserved(lu);
	log_info("storage object %s: restored %u persistent reservation "
		 "registration(s)", lu->name, n);
out:
	pthread_mutex_unlock(&lu->lock);
	fclose(f);
}

void pr_destroy(struct scsi_pr *pr)
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
		pr_spc2_clear_cluster(lu, nx);
	if (lu->pr && lu->pr->spc2 == nx) {
		lu->pr->spc2 = NULL;
		pr_update_reserved(lu);
	}
	pthread_mutex_unlock(&lu->lock);
}

/* SAM-5 6.3 / SPC-2 5.5.1: a LUN reset, target reset or power on ends
 * SPC-2 reservations; persistent reservations survive them. */
void scsi_pr_reset_locked(struct scsi_lu *lu)
{
	if (lu->pr && lu->pr->spc2_c)
		pr_spc2_clear_cluster(lu, NULL);
	if (lu->pr && lu->pr->spc2) {
		lu->pr->spc2 = NULL;
		pr_update_reserved(lu);
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

	if (pr_lu_shared(cmd->lu)) {
		/* Only what does not depend on the reservation state gets by
		 * a cache that may be stale; PR OUT reads the cluster's. */
		if (!pr_fresh(cmd->lu) &&
		    (pr_class(cmd->cdb) != PRC_ALLOWED || cmd->cdb[0] == 0x5e)) {
			pr_set_stale(cmd);
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
void pr_reserve_eval(struct scsi_cmd *cmd)
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
		} else if (pr_lu_shared(lu)) {
			lu->pr->spc2_c = true;
			pr_nx_id(&lu->pr->spc2_nx, cmd->nexus);
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


void spc_exec_reserve(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;

	if (pr_lu_shared(lu)) {
		pr_out_cluster_start(cmd);
		return;
	}
	pthread_mutex_lock(&lu->lock);
	pr_reserve_eval(cmd);
	pr_update_reserved(lu);
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
		if (pr_state_dir || pr_lu_shared(lu))
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
	} else if (pr_lu_shared(cmd->lu) && !pr_fresh(cmd->lu)) {
		pr_set_stale(cmd);
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
	if (aptpl || !lu->attrs.force_pr_aptpl || pr_lu_shared(lu))
		return aptpl;
	pthread_mutex_lock(&pr_dir_lock);
	dir = pr_state_dir != NULL;
	pthread_mutex_unlock(&pr_dir_lock);
	return dir;
}

static bool aptpl_ok(struct scsi_cmd *cmd, bool aptpl)
{
	bool ok;

	if (!aptpl || pr_lu_shared(cmd->lu))
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
			if (pr_recording)
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

void pr_out(struct scsi_cmd *cmd)
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
		if (!pr_type_valid(type) && !(sa == SA_PREEMPT && !lu->pr->holder)) {
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

	if (pr_lu_shared(lu)) {
		pr_out_cluster_start(cmd);
		return;
	}
	pthread_mutex_lock(&lu->lock);
	pr_out(cmd);
	pr_update_reserved(lu);
	pthread_mutex_unlock(&lu->lock);
	scsi_cmd_complete(cmd);
}
