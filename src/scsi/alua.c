/* Asymmetric logical unit access (SPC-4 5.16): target port groups of an
 * LU, the ports in them, the commands each access state allows, REPORT
 * TARGET PORT GROUPS (SPC-4 6.35 in r37: 6.37) and SET TARGET PORT GROUPS
 * (6.45), the way LIO's target_core_alua.c does.
 *
 * Lifetime: a session's LUN map entry points at its port and the port at
 * its group, read without a lock on every command. Neither is freed while
 * the LU lives: deleting marks it and takes it out of every report; the
 * memory goes with the LU (lu_destroy -> scsi_alua_free). Administrators
 * create a handful of groups per LU, so this costs nothing in practice. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scsi/scsi_int.h"
#include "util/bytes.h"
#include "util/log.h"

#define ALUA_DEFAULT_GP "default_tg_pt_gp"

void scsi_alua_gp_defaults(struct scsi_alua_gp *gp)
{
	/* LIO's core_alua_allocate_tg_pt_gp: implicit and explicit, every
	 * state but LBA dependent supported, 100 ms non-optimized delay. */
	atomic_init(&gp->state, SCSI_ALUA_AO);
	atomic_init(&gp->status, 0);
	gp->access_type = 3;
	gp->supported = SCSI_ALUA_T_SUP | SCSI_ALUA_O_SUP | SCSI_ALUA_U_SUP |
			SCSI_ALUA_S_SUP | SCSI_ALUA_AN_SUP | SCSI_ALUA_AO_SUP;
	gp->nonop_delay_ms = 100;
	atomic_init(&gp->pending, SCSI_ALUA_NONE);
	atomic_init(&gp->pending_status, 0);
	atomic_init(&gp->trans_deadline_ms, 0);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct scsi_alua_gp *find_locked(struct scsi_lu *lu, const char *name,
					int id)
{
	struct scsi_alua_gp *gp;

	list_for_each_entry(gp, &lu->alua_gps, link)
		if (!gp->deleted && ((name && !strcmp(gp->name, name)) ||
				     (id >= 0 && gp->id == id)))
			return gp;
	return NULL;
}

int scsi_alua_init(struct scsi_lu *lu)
{
	list_init(&lu->alua_gps);
	list_init(&lu->alua_ports);
	return scsi_alua_gp_create(lu, ALUA_DEFAULT_GP, 0, NULL);
}

void scsi_alua_free(struct scsi_lu *lu)
{
	struct scsi_alua_gp *gp, *gn;
	struct scsi_alua_port *p, *pn;

	list_for_each_entry_safe(p, pn, &lu->alua_ports, link)
		free(p);
	list_for_each_entry_safe(gp, gn, &lu->alua_gps, link)
		free(gp);
}

int scsi_alua_gp_create(struct scsi_lu *lu, const char *name, uint16_t id,
			struct scsi_alua_gp **out)
{
	struct scsi_alua_gp *gp, *at;
	int rc = 0;

	if (!name || !name[0] || strlen(name) >= sizeof(gp->name))
		return -EINVAL;
	gp = calloc(1, sizeof(*gp));
	if (!gp)
		return -ENOMEM;
	snprintf(gp->name, sizeof(gp->name), "%s", name);
	gp->id = id;
	scsi_alua_gp_defaults(gp);
	/* A backstore that derives the states (HA) makes them optimized
	 * only where it owns the LU: until it has looked, standby, so a
	 * gateway never starts out serving I/O it may not do. */
	if (lu->bs && lu->bs->alua_managed)
		atomic_init(&gp->state, SCSI_ALUA_STANDBY);
	pthread_mutex_lock(&lu->lock);
	if (find_locked(lu, name, id)) {
		rc = -EEXIST;
	} else {
		/* sorted by id, as REPORT TARGET PORT GROUPS lists them */
		list_for_each_entry(at, &lu->alua_gps, link)
			if (at->id > id)
				break;
		list_add_tail(&gp->link, &at->link);
	}
	pthread_mutex_unlock(&lu->lock);
	if (rc) {
		free(gp);
		return rc;
	}
	if (out)
		*out = gp;
	return 0;
}

struct scsi_alua_gp *scsi_alua_gp_find(struct scsi_lu *lu, const char *name)
{
	struct scsi_alua_gp *gp;

	pthread_mutex_lock(&lu->lock);
	gp = find_locked(lu, name, -1);
	pthread_mutex_unlock(&lu->lock);
	return gp;
}

static unsigned members_locked(struct scsi_lu *lu, const struct scsi_alua_gp *gp)
{
	struct scsi_alua_port *p;
	unsigned n = 0;

	list_for_each_entry(p, &lu->alua_ports, link)
		if (!p->deleted && atomic_load(&p->gp) == gp)
			n++;
	return n;
}

unsigned scsi_alua_gp_members(struct scsi_lu *lu, const struct scsi_alua_gp *gp)
{
	unsigned n;

	pthread_mutex_lock(&lu->lock);
	n = members_locked(lu, gp);
	pthread_mutex_unlock(&lu->lock);
	return n;
}

int scsi_alua_gp_delete(struct scsi_lu *lu, struct scsi_alua_gp *gp)
{
	int rc = 0;

	pthread_mutex_lock(&lu->lock);
	/* LIO refuses to remove default_tg_pt_gp; a group with LUNs in it
	 * would leave them without a state */
	if (!strcmp(gp->name, ALUA_DEFAULT_GP))
		rc = -EPERM;
	else if (members_locked(lu, gp))
		rc = -EBUSY;
	else
		gp->deleted = true;
	pthread_mutex_unlock(&lu->lock);
	return rc;
}

/* The state is in place: tell every I_T nexus (SPC-4 5.16.2.6; the LU's
 * entries: the ones through other groups lose nothing by hearing it) but
 * the one whose SET TARGET PORT GROUPS made the change. */
static void announce(struct scsi_lu *lu, struct scsi_alua_gp *gp,
		     uint8_t state, const struct scsi_nexus *except)
{
	scsi_lu_establish_ua_except(lu, SCSI_UA_ALUA_CHANGED, except);
	log_info("storage object %s: ALUA group %s (id %u) is now state 0x%x",
		 lu->name, gp->name, gp->id, state);
}

/* LIO's core_alua_do_transition_tg_pt: the group reads TRANSITIONING (and
 * its nexuses hear so) for trans_delay_msecs, then the new state (heard
 * again). LIO sleeps in the caller; here the state carries a deadline and
 * the first reader after it finishes the move (scsi_alua_gp_state), so no
 * thread waits and a command or report after the deadline never sees the
 * old state. */
static int set_state(struct scsi_lu *lu, struct scsi_alua_gp *gp,
		     uint8_t state, uint8_t status,
		     const struct scsi_nexus *except, bool delayed)
{
	uint32_t delay = delayed ? gp->trans_delay_ms : 0;

	switch (state) {
	case SCSI_ALUA_AO: case SCSI_ALUA_ANO: case SCSI_ALUA_STANDBY:
	case SCSI_ALUA_UNAVAILABLE: case SCSI_ALUA_OFFLINE:
	case SCSI_ALUA_TRANSITIONING:
		break;
	default:	/* LBA dependent needs an LBA map LIO users never set */
		return -EINVAL;
	}
	/* a transition still under way is replaced by this one */
	atomic_store(&gp->pending, SCSI_ALUA_NONE);
	if (atomic_load(&gp->state) == state) {
		atomic_store(&gp->status, status);
		return 0;
	}
	if (delay && state != SCSI_ALUA_TRANSITIONING) {
		atomic_store(&gp->pending_status, status);
		atomic_store(&gp->trans_deadline_ms, now_ms() + delay);
		atomic_store(&gp->state, SCSI_ALUA_TRANSITIONING);
		atomic_store(&gp->status, status);
		atomic_store(&gp->pending, state);
		announce(lu, gp, SCSI_ALUA_TRANSITIONING, except);
		return 0;
	}
	atomic_store(&gp->state, state);
	atomic_store(&gp->status, status);
	announce(lu, gp, state, except);
	return 0;
}

/* Finish gp's delayed transition when it is due; true when this caller did
 * it (and must announce it, outside lu->lock). */
static bool finish_due(struct scsi_alua_gp *gp)
{
	uint8_t p = atomic_load(&gp->pending);

	if (p == SCSI_ALUA_NONE || now_ms() < atomic_load(&gp->trans_deadline_ms) ||
	    !atomic_compare_exchange_strong(&gp->pending, &p, SCSI_ALUA_NONE))
		return false;
	atomic_store(&gp->state, p);
	atomic_store(&gp->status, atomic_load(&gp->pending_status));
	return true;
}

uint8_t scsi_alua_gp_state(struct scsi_lu *lu, struct scsi_alua_gp *gp)
{
	if (finish_due(gp))
		announce(lu, gp, atomic_load(&gp->state), NULL);
	return atomic_load(&gp->state);
}

int scsi_alua_gp_set_state(struct scsi_lu *lu, struct scsi_alua_gp *gp,
			   uint8_t state, uint8_t status, bool delayed)
{
	return set_state(lu, gp, state, status, NULL, delayed);
}

struct scsi_alua_port *scsi_alua_port_add(struct scsi_lu *lu, uint16_t rtpi)
{
	struct scsi_alua_port *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->rtpi = rtpi;
	pthread_mutex_lock(&lu->lock);
	atomic_init(&p->gp, find_locked(lu, ALUA_DEFAULT_GP, -1));
	list_add_tail(&p->link, &lu->alua_ports);
	pthread_mutex_unlock(&lu->lock);
	return p;
}

void scsi_alua_port_set_name(struct scsi_alua_port *port, const char *target,
			     uint16_t tpgt)
{
	snprintf(port->target_name, sizeof(port->target_name), "%s", target);
	port->tpgt = tpgt;
}

void scsi_alua_port_set_offline(struct scsi_lu *lu, struct scsi_alua_port *port,
				bool offline)
{
	/* LIO's core_alua_set_tg_pt_secondary_state(lun, explicit=0, offline)
	 * as alua_tg_pt_offline's store calls it: the bit and the status
	 * ALUA_STATUS_ALTERED_BY_IMPLICIT_ALUA, no unit attention. (LIO then
	 * sleeps the group's trans_delay_msecs in the writer; the change is
	 * in force at once all the same, so nothing waits here.) */
	atomic_store(&port->offline, offline);
	atomic_store(&port->sec_status, 2);
	log_info("storage object %s: target port %u (%s tpgt %u) secondary "
		 "state %s", lu->name, port->rtpi, port->target_name, port->tpgt,
		 offline ? "offline" : "online");
}

void scsi_alua_port_del(struct scsi_lu *lu, struct scsi_alua_port *port)
{
	if (!port)
		return;
	pthread_mutex_lock(&lu->lock);
	port->deleted = true;
	pthread_mutex_unlock(&lu->lock);
}

void scsi_alua_port_set_gp(struct scsi_lu *lu, struct scsi_alua_port *port,
			   struct scsi_alua_gp *gp)
{
	pthread_mutex_lock(&lu->lock);
	atomic_store(&port->gp, gp);
	pthread_mutex_unlock(&lu->lock);
	scsi_lu_establish_ua(lu, SCSI_UA_ALUA_CHANGED);
}

void scsi_alua_port_set_local(struct scsi_alua_port *port, bool local)
{
	if (port)
		atomic_store(&port->local, local);
}

unsigned scsi_alua_local_ports(struct scsi_lu *lu, uint16_t *rtpi,
			       unsigned max)
{
	struct scsi_alua_port *p;
	unsigned n = 0;

	pthread_mutex_lock(&lu->lock);
	list_for_each_entry(p, &lu->alua_ports, link) {
		unsigned i;

		if (p->deleted || !atomic_load(&p->local) || n == max)
			continue;
		/* insertion sort: a handful of ports, and a stable order
		 * makes the owner record in the cluster compare equal */
		for (i = n; i > 0 && rtpi[i - 1] > p->rtpi; i--)
			rtpi[i] = rtpi[i - 1];
		rtpi[i] = p->rtpi;
		n++;
	}
	pthread_mutex_unlock(&lu->lock);
	return n;
}

#define HA_MAX_GPS 64

void scsi_alua_ha_apply(struct scsi_lu *lu, const uint16_t *rtpi, unsigned n)
{
	struct scsi_alua_gp *gp, *todo[HA_MAX_GPS];
	struct scsi_alua_port *p;
	uint8_t want[HA_MAX_GPS];
	unsigned k = 0;

	/* Decide under the lock (groups and memberships are the control
	 * thread's), change outside it: announcing takes the LU's lock. */
	pthread_mutex_lock(&lu->lock);
	list_for_each_entry(gp, &lu->alua_gps, link) {
		uint8_t st = SCSI_ALUA_STANDBY;

		if (gp->deleted || k == HA_MAX_GPS)
			continue;
		list_for_each_entry(p, &lu->alua_ports, link) {
			if (p->deleted || atomic_load(&p->gp) != gp)
				continue;
			for (unsigned i = 0; i < n; i++)
				if (rtpi[i] == p->rtpi)
					st = SCSI_ALUA_AO;
		}
		if (atomic_load(&gp->state) == st &&
		    atomic_load(&gp->pending) == SCSI_ALUA_NONE)
			continue;
		todo[k] = gp;
		want[k++] = st;
	}
	pthread_mutex_unlock(&lu->lock);
	/* implicit (SPC-4 5.16.2.5: the device server changed it), not
	 * delayed: the lock already moved, the ports must follow now */
	for (unsigned i = 0; i < k; i++)
		set_state(lu, todo[i], want[i], 2, NULL, false);
}

/* ---- the data path ---- */

static struct scsi_alua_gp *cmd_gp(const struct scsi_cmd *cmd)
{
	return cmd->ent && cmd->ent->port ? atomic_load(&cmd->ent->port->gp)
					  : NULL;
}

void scsi_alua_due(struct scsi_lun_ent *ent)
{
	struct scsi_alua_gp *gp = atomic_load(&ent->port->gp);

	/* one relaxed load when no transition is pending */
	if (gp && atomic_load_explicit(&gp->pending, memory_order_relaxed) !=
		  SCSI_ALUA_NONE)
		scsi_alua_gp_state(ent->lu, gp);
}

uint8_t scsi_alua_tpgs(const struct scsi_cmd *cmd)
{
	const struct scsi_alua_gp *gp = cmd_gp(cmd);
	/* States a backstore derives from its cluster lock cannot be set
	 * by SET TARGET PORT GROUPS: implicit only, so scsi_dh_alua does
	 * not try (SPC-4 6.4.2, TPGS 01b). */
	uint8_t mask;

	if (!gp)	/* no port: not an ALUA LUN (or no LUN at all) */
		return 0;
	mask = cmd->lu->bs->alua_managed ? 1 : 3;
	/* INQUIRY TPGS (SPC-4 6.4.2): 01b implicit, 10b explicit */
	return (uint8_t)((gp->access_type & mask) << 4);
}

uint16_t scsi_alua_gp_id(const struct scsi_cmd *cmd)
{
	const struct scsi_alua_gp *gp = cmd_gp(cmd);

	return gp ? gp->id : 0;
}

/* SPC-4 5.16.2.4: what each state lets through (LIO's lists:
 * core_alua_state_standby / _unavailable / _transition). */
static bool allowed(uint8_t state, const uint8_t *cdb)
{
	uint8_t op = cdb[0], sa = cdb[1] & 0x1f;

	switch (op) {
	case 0x12: case 0xa0: case 0x03: case 0x3c: case 0x3b:
		/* INQUIRY, REPORT LUNS, REQUEST SENSE, READ / WRITE BUFFER */
		return true;
	case 0xa3: /* MAINTENANCE IN: REPORT TARGET PORT GROUPS */
		return sa == 0x0a;
	case 0xa4: /* MAINTENANCE OUT: SET TARGET PORT GROUPS */
		return sa == 0x0a && state != SCSI_ALUA_TRANSITIONING &&
		       state != SCSI_ALUA_OFFLINE;
	}
	if (state != SCSI_ALUA_STANDBY)
		return false;
	switch (op) {
	case 0x4c: case 0x4d: case 0x15: case 0x55: case 0x1a: case 0x5a:
	case 0x1c: case 0x1d: case 0x25: case 0x5e: case 0x5f:
		/* LOG SELECT / SENSE, MODE SELECT / SENSE, RECEIVE / SEND
		 * DIAGNOSTIC, READ CAPACITY (10), PERSISTENT RESERVE IN / OUT */
		return true;
	case 0x9e: /* SERVICE ACTION IN: READ CAPACITY (16) */
		return sa == 0x10;
	}
	return false;
}

bool scsi_alua_check(struct scsi_cmd *cmd)
{
	const struct scsi_alua_gp *gp = cmd_gp(cmd);
	uint8_t state;
	uint16_t asc;

	/* The port's own (secondary) offline state first, before the group's:
	 * LIO's target_alua_state_check answers every command through an
	 * offline se_lun, INQUIRY and REPORT LUNS included, with
	 * TCM_ALUA_OFFLINE: NOT READY, LOGICAL UNIT NOT ACCESSIBLE, TARGET
	 * PORT IN OFFLINE STATE (04/12). SPC-4 5.16.2.4.6 would still let
	 * INQUIRY, REPORT LUNS, REPORT TARGET PORT GROUPS, REQUEST SENSE
	 * through; LIO's behaviour is kept. The other ports of the LU serve
	 * on. */
	if (cmd->ent->port &&
	    atomic_load_explicit(&cmd->ent->port->offline, memory_order_relaxed)) {
		scsi_set_sense(cmd, SK_NOT_READY, ASC_LU_NOT_ACCESSIBLE_OFFLINE);
		return true;
	}
	if (!gp)
		return false;
	state = atomic_load_explicit(&gp->state, memory_order_relaxed);
	if (state == SCSI_ALUA_ANO) {
		/* LIO's core_alua_state_nonoptimized + target_submit's
		 * core_alua_check_nonop_delay: every command through an
		 * active/non-optimized port waits nonop_delay_msecs (the
		 * transport's timer; no thread sleeps) */
		cmd->delay_ms = gp->nonop_delay_ms;
		return false;
	}
	if (state == SCSI_ALUA_AO || allowed(state, cmd->cdb))
		return false;
	switch (state) {
	case SCSI_ALUA_STANDBY: asc = ASC_LU_NOT_ACCESSIBLE_STANDBY; break;
	case SCSI_ALUA_UNAVAILABLE: asc = ASC_LU_NOT_ACCESSIBLE_UNAVAILABLE; break;
	case SCSI_ALUA_OFFLINE: asc = ASC_LU_NOT_ACCESSIBLE_OFFLINE; break;
	default: asc = ASC_LU_NOT_ACCESSIBLE_TRANSITION; break;
	}
	scsi_set_sense(cmd, SK_NOT_READY, asc);
	return true;
}

/* ---- REPORT TARGET PORT GROUPS (MAINTENANCE IN, service action 0Ah) ---- */

int spc_prepare_rtpg(struct scsi_cmd *cmd)
{
	uint8_t fmt = cmd->cdb[1] >> 5;

	/* PARAMETER DATA FORMAT: 000b length only, 001b extended header */
	if (fmt > 1) {
		scsi_set_sense_field(cmd, true, 1, 7);
		return 1;
	}
	cmd->dir = SCSI_DIR_READ;
	cmd->xfer_len = get_be32(cmd->cdb + 6);
	return 0;
}

#define RTPG_BUF 4096

void spc_exec_rtpg(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	bool ext = (cmd->cdb[1] >> 5) == 1;
	const struct scsi_alua_gp *mine = cmd_gp(cmd);
	struct scsi_alua_gp *gp, *done = NULL;
	struct scsi_alua_port *p;
	uint8_t *b = calloc(1, RTPG_BUF);
	size_t n = ext ? 8 : 4;

	if (!b) {
		scsi_set_sense(cmd, SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
		scsi_cmd_complete(cmd);
		return;
	}
	pthread_mutex_lock(&lu->lock);
	list_for_each_entry(gp, &lu->alua_gps, link) {
		size_t at = n;
		unsigned cnt = 0;

		if (!gp->deleted && finish_due(gp))
			done = gp;
		if (gp->deleted || n + 8 > RTPG_BUF)
			continue;
		/* target port group descriptor (SPC-4 table 166) */
		b[n] = (uint8_t)((gp->preferred ? 0x80 : 0) |
				 (atomic_load(&gp->state) & 0x0f));
		b[n + 1] = gp->supported;
		put_be16(b + n + 2, gp->id);
		b[n + 5] = atomic_load(&gp->status);
		n += 8;
		list_for_each_entry(p, &lu->alua_ports, link) {
			if (p->deleted || atomic_load(&p->gp) != gp ||
			    n + 4 > RTPG_BUF)
				continue;
			put_be16(b + n + 2, p->rtpi);
			n += 4;
			cnt++;
		}
		b[at + 7] = (uint8_t)cnt;
	}
	pthread_mutex_unlock(&lu->lock);
	if (done)	/* one UA bit covers every group that finished */
		announce(lu, done, atomic_load(&done->state), NULL);
	/* RETURN DATA LENGTH: what follows the header */
	put_be32(b, (uint32_t)(n - (ext ? 8 : 4)));
	if (ext) {
		b[4] = 0x10; /* FORMAT TYPE 001b */
		b[5] = mine ? (uint8_t)(mine->implicit_trans_secs > 255 ? 255 :
					mine->implicit_trans_secs) : 0;
	}
	scsi_data_in(cmd, b, n);
	free(b);
	scsi_cmd_complete(cmd);
}

/* ---- SET TARGET PORT GROUPS (MAINTENANCE OUT, service action 0Ah) ---- */

int spc_prepare_stpg(struct scsi_cmd *cmd)
{
	const struct scsi_alua_gp *gp = cmd_gp(cmd);

	if ((cmd->cdb[1] & 0x1f) != 0x0a) {
		scsi_set_sense_field(cmd, true, 1, 4);
		return 1;
	}
	/* Explicit transitions only where the group allows them (LIO
	 * answers INVALID FIELD IN CDB through its unsupported-opcode path
	 * here; the issue asks for that sense too). */
	if (!gp || !(gp->access_type & 2) || cmd->lu->bs->alua_managed) {
		scsi_set_sense_field(cmd, true, 0, 7);
		return 1;
	}
	cmd->dir = SCSI_DIR_WRITE;
	cmd->xfer_len = get_be32(cmd->cdb + 6);
	return 0;
}

void spc_exec_stpg(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	const struct scsi_alua_gp *mine = cmd_gp(cmd);
	uint32_t len = cmd->xfer_len < cmd->buf_len ? cmd->xfer_len : cmd->buf_len;
	struct scsi_alua_gp *todo[64];
	uint8_t states[64];
	unsigned k = 0;

	if (len < 4 || (len - 4) % 4) {
		if (len)
			scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
				       ASC_PARAM_LIST_LENGTH_ERROR);
		else
			scsi_set_good(cmd);
		scsi_cmd_complete(cmd);
		return;
	}
	/* Check every descriptor first: a refused list changes nothing. */
	pthread_mutex_lock(&lu->lock);
	for (uint32_t off = 4; off + 4 <= len; off += 4) {
		const uint8_t *d = cmd->buf + off;
		uint8_t st = d[0] & 0x0f;
		uint8_t bit = st == SCSI_ALUA_AO ? SCSI_ALUA_AO_SUP :
			      st == SCSI_ALUA_ANO ? SCSI_ALUA_AN_SUP :
			      st == SCSI_ALUA_STANDBY ? SCSI_ALUA_S_SUP :
			      st == SCSI_ALUA_UNAVAILABLE ? SCSI_ALUA_U_SUP :
			      st == SCSI_ALUA_OFFLINE ? SCSI_ALUA_O_SUP : 0;
		struct scsi_alua_gp *gp = find_locked(lu, NULL, get_be16(d + 2));

		/* transitioning and LBA dependent cannot be asked for; the
		 * target port asymmetric states (offline) are per port in
		 * SPC-4 and not offered here */
		if (!bit || st == SCSI_ALUA_OFFLINE || !gp ||
		    !(mine->supported & bit) || k == 64) {
			pthread_mutex_unlock(&lu->lock);
			scsi_set_sense_field(cmd, false, (uint16_t)off, 7);
			scsi_cmd_complete(cmd);
			return;
		}
		todo[k] = gp;
		states[k++] = st;
	}
	pthread_mutex_unlock(&lu->lock);
	for (unsigned i = 0; i < k; i++)
		set_state(lu, todo[i], states[i], 1, cmd->nexus, true);
	scsi_set_good(cmd);
	scsi_cmd_complete(cmd);
}
