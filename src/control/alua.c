/* ALUA target port groups in LIO's words (tg_pt_gp attributes as configfs
 * and saveconfig.json name them): one object per group, read by get,
 * saveconfig and restore, written by set and restore through the same
 * table, so the API and the file can never disagree. */
#include "control/alua.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

static void problem(json_t *errors, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void problem(json_t *errors, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warn("restore: %s, skipped", msg);
	if (errors)
		json_array_append_new(errors, json_sprintf("%s, skipped", msg));
}

enum fk { F_STATE, F_STATUS, F_TYPE, F_SUP, F_PREF, F_META, F_NONOP,
	  F_TRANS, F_IMPL, F_ID, F_MEMBERS };

static const struct alua_field {
	const char *name;
	enum fk kind;
	uint8_t bit;          /* F_SUP: the supported-state bit */
	long long max;
	const char *desc;
} fields[] = {
	{ "alua_access_state", F_STATE, 0, 15,
	  "Asymmetric access state: 0 active/optimized, 1 active/non-optimized, "
	  "2 standby, 3 unavailable, 14 offline, 15 transitioning." },
	{ "alua_access_status", F_STATUS, 0, 2,
	  "Why the state last changed: 0 none, 1 by SET TARGET PORT GROUPS, "
	  "2 implicitly." },
	{ "alua_access_type", F_TYPE, 0, 3,
	  "Transitions allowed: 0 none, 1 implicit, 2 explicit (SET TARGET PORT "
	  "GROUPS), 3 both; INQUIRY TPGS reports it." },
	{ "alua_support_active_nonoptimized", F_SUP, SCSI_ALUA_AN_SUP, 1,
	  "Whether the active/non-optimized state is supported." },
	{ "alua_support_active_optimized", F_SUP, SCSI_ALUA_AO_SUP, 1,
	  "Whether the active/optimized state is supported." },
	{ "alua_support_lba_dependent", F_SUP, SCSI_ALUA_LBD_SUP, 0,
	  "Whether the LBA dependent state is supported (never: no LBA map)." },
	{ "alua_support_offline", F_SUP, SCSI_ALUA_O_SUP, 1,
	  "Whether the offline state is supported." },
	{ "alua_support_standby", F_SUP, SCSI_ALUA_S_SUP, 1,
	  "Whether the standby state is supported." },
	{ "alua_support_transitioning", F_SUP, SCSI_ALUA_T_SUP, 1,
	  "Whether the transitioning state is supported." },
	{ "alua_support_unavailable", F_SUP, SCSI_ALUA_U_SUP, 1,
	  "Whether the unavailable state is supported." },
	{ "alua_write_metadata", F_META, 0, 1,
	  "LIO writes the state to /var/target/alua; utargetd keeps it in "
	  "saveconfig.json, so this is stored only." },
	{ "implicit_trans_secs", F_IMPL, 0, 255,
	  "Implicit transition time reported by REPORT TARGET PORT GROUPS "
	  "(extended header), seconds." },
	{ "nonop_delay_msecs", F_NONOP, 0, 10000,
	  "Every command through a port in the active/non-optimized state "
	  "waits this long first, as LIO's does (LIO's limit: 10 s)." },
	{ "preferred", F_PREF, 0, 1,
	  "The PREF bit of REPORT TARGET PORT GROUPS." },
	{ "tg_pt_gp_id", F_ID, 0, 65535,
	  "The target port group identifier (VPD 0x83, REPORT TARGET PORT "
	  "GROUPS)." },
	{ "trans_delay_msecs", F_TRANS, 0, 30000,
	  "A state change shows Transitioning (with its unit attention) this long first, as LIO's does." },
	{ "members", F_MEMBERS, 0, -1,
	  "The LUNs in this group, as TARGET/tpgt_N/lun_M (read-only)." },
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static long long get_field(struct scsi_lu *lu, struct scsi_alua_gp *gp,
			   const struct alua_field *f)
{
	switch (f->kind) {
	case F_STATE: return lu ? scsi_alua_gp_state(lu, gp) : atomic_load(&gp->state);
	case F_STATUS: return atomic_load(&gp->status);
	case F_TYPE: return gp->access_type;
	case F_SUP: return (gp->supported & f->bit) != 0;
	case F_PREF: return gp->preferred;
	case F_META: return gp->write_metadata;
	case F_NONOP: return gp->nonop_delay_ms;
	case F_TRANS: return gp->trans_delay_ms;
	case F_IMPL: return gp->implicit_trans_secs;
	case F_ID: return gp->id;
	case F_MEMBERS: return scsi_alua_gp_members(lu, gp);
	}
	return 0;
}

json_t *ctl_alua_gp_json(struct scsi_lu *lu, struct scsi_alua_gp *gp)
{
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(gp->name));
	for (size_t i = 0; i < NFIELDS; i++)
		if (fields[i].kind != F_MEMBERS)
			json_object_set_new(o, fields[i].name, json_integer(
				(json_int_t)get_field(lu, gp, &fields[i])));
	return o;
}

json_t *ctl_alua_json(struct scsi_lu *lu)
{
	json_t *a = json_array();
	struct scsi_alua_gp *gp;

	/* the list changes only on the control thread, which this is */
	list_for_each_entry(gp, &lu->alua_gps, link) {
		json_t *o;
		uint8_t pending;

		if (gp->deleted)
			continue;
		o = ctl_alua_gp_json(lu, gp);
		/* a group in a delayed transition is saved in the state it
		 * is going to: restored, it must not stay transitioning */
		pending = atomic_load(&gp->pending);
		if (pending != SCSI_ALUA_NONE)
			json_object_set_new(o, "alua_access_state",
					    json_integer(pending));
		/* states the backstore derives (user:rbd ha=1: from the
		 * image's lock) are facts of the moment, not settings: saved
		 * as LIO's defaults, so every gateway of a group writes the
		 * same document and applying another gateway's never sees a
		 * "changed" object to re-create (reload.c) */
		if (lu->bs->alua_managed) {
			json_object_set_new(o, "alua_access_state",
					    json_integer(0));
			json_object_set_new(o, "alua_access_status",
					    json_integer(0));
		}
		json_array_append_new(a, o);
	}
	return a;
}

json_t *ctl_alua_describe(void)
{
	json_t *t = json_array();
	struct scsi_alua_gp d;

	/* the defaults: LIO's for a new group (alua.c in the SCSI layer) */
	memset(&d, 0, sizeof(d));
	scsi_alua_gp_defaults(&d);
	for (size_t i = 0; i < NFIELDS; i++) {
		json_t *row = json_pack("{s:s, s:s, s:b, s:b}", "name",
			fields[i].name, "description", fields[i].desc, "ro",
			fields[i].kind == F_MEMBERS, "honoured",
			fields[i].kind != F_NONOP && fields[i].kind != F_TRANS &&
			fields[i].kind != F_META);

		if (fields[i].kind != F_MEMBERS) {
			json_object_set_new(row, "default", json_integer(
				(json_int_t)get_field(NULL, &d, &fields[i])));
			json_object_set_new(row, "min", json_integer(0));
			json_object_set_new(row, "max", json_integer(fields[i].max));
		}
		json_array_append_new(t, row);
	}
	return t;
}

static const struct alua_field *find_field(const char *name)
{
	for (size_t i = 0; i < NFIELDS; i++)
		if (!strcmp(fields[i].name, name))
			return &fields[i];
	return NULL;
}

/* JSON integer, boolean, or a string of digits (configfs takes "1"). */
static bool num_value(json_t *v, long long *out)
{
	char *end;

	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return true;
	}
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return true;
	}
	if (json_is_string(v) && *json_string_value(v)) {
		*out = strtoll(json_string_value(v), &end, 10);
		return !*end;
	}
	return false;
}

int ctl_alua_set(struct scsi_lu *lu, struct scsi_alua_gp *gp, json_t *attrs,
		 bool restoring, char *err, size_t errlen)
{
	const char *k;
	json_t *v;
	long long val[NFIELDS];
	bool have[NFIELDS] = { false };

	if (!json_is_object(attrs)) {
		snprintf(err, errlen, "attributes must be an object");
		return -EINVAL;
	}
	/* all checked before any is applied */
	json_object_foreach(attrs, k, v) {
		const struct alua_field *f = find_field(k);
		size_t i;

		if (!strcmp(k, "name") && restoring)
			continue;
		if (!f) {
			snprintf(err, errlen, "Cannot find attribute: %s", k);
			return -ENOENT;
		}
		i = (size_t)(f - fields);
		if (f->kind == F_MEMBERS) {
			snprintf(err, errlen, "Attribute %s is read-only", k);
			return -EPERM;
		}
		if (!num_value(v, &val[i]) || val[i] < 0 || val[i] > f->max) {
			snprintf(err, errlen, "Invalid value for %s: an integer "
				 "from 0 to %lld", k, f->max);
			return -EINVAL;
		}
		if (f->kind == F_STATE && !restoring && lu->bs->alua_managed) {
			snprintf(err, errlen, "alua_access_state of %s is "
				 "derived from the RBD image's lock (ha=1): "
				 "not settable", lu->name);
			return -EPERM;
		}
		if (f->kind == F_STATE && val[i] != SCSI_ALUA_AO &&
		    val[i] != SCSI_ALUA_ANO && val[i] != SCSI_ALUA_STANDBY &&
		    val[i] != SCSI_ALUA_UNAVAILABLE && val[i] != SCSI_ALUA_OFFLINE &&
		    val[i] != SCSI_ALUA_TRANSITIONING) {
			snprintf(err, errlen, "Invalid alua_access_state %lld: "
				 "0, 1, 2, 3, 14 or 15 (LBA dependent needs an "
				 "LBA map, which is not offered)", val[i]);
			return -EINVAL;
		}
		if (f->kind == F_ID && val[i] != gp->id) {
			struct scsi_alua_gp *o;
			bool taken = false;

			pthread_mutex_lock(&lu->lock);
			list_for_each_entry(o, &lu->alua_gps, link)
				if (!o->deleted && o != gp && o->id == val[i])
					taken = true;
			pthread_mutex_unlock(&lu->lock);
			if (taken) {
				snprintf(err, errlen, "tg_pt_gp_id %lld is used "
					 "by another group", val[i]);
				return -EEXIST;
			}
		}
		have[i] = true;
	}
	pthread_mutex_lock(&lu->lock);
	for (size_t i = 0; i < NFIELDS; i++) {
		const struct alua_field *f = &fields[i];

		if (!have[i])
			continue;
		switch (f->kind) {
		case F_TYPE: gp->access_type = (uint8_t)val[i]; break;
		case F_SUP:
			if (val[i])
				gp->supported |= f->bit;
			else
				gp->supported &= (uint8_t)~f->bit;
			break;
		case F_PREF: gp->preferred = val[i]; break;
		case F_META: gp->write_metadata = val[i]; break;
		case F_NONOP: gp->nonop_delay_ms = (uint32_t)val[i]; break;
		case F_TRANS: gp->trans_delay_ms = (uint32_t)val[i]; break;
		case F_IMPL: gp->implicit_trans_secs = (uint32_t)val[i]; break;
		case F_ID: gp->id = (uint16_t)val[i]; break;
		default: break;
		}
	}
	pthread_mutex_unlock(&lu->lock);
	/* the state last: it raises the unit attention; a restore sets it
	 * before any session exists */
	{
		size_t si = (size_t)(find_field("alua_access_state") - fields);
		size_t ti = (size_t)(find_field("alua_access_status") - fields);
		uint8_t status = have[ti] ? (uint8_t)val[ti] :
				 restoring ? atomic_load(&gp->status) : 2;

		/* derived states (HA): a saved one is not restored, the
		 * backstore sets them from the lock */
		if (have[si] && !lu->bs->alua_managed)
			scsi_alua_gp_set_state(lu, gp, (uint8_t)val[si], status,
					       !restoring);
		else if (have[ti])
			atomic_store(&gp->status, status);
	}
	return 0;
}

int ctl_alua_restore(struct scsi_lu *lu, json_t *groups, json_t *errors,
		     const char *what)
{
	json_t *g;
	size_t i;
	int bad = 0;

	json_array_foreach(groups, i, g) {
		const char *name = json_string_value(json_object_get(g, "name"));
		json_t *idv = json_object_get(g, "tg_pt_gp_id");
		struct scsi_alua_gp *gp;
		char err[256];
		int rc;

		if (!name) {
			problem(errors, "%s: ALUA group without a name", what);
			bad++;
			continue;
		}
		gp = scsi_alua_gp_find(lu, name);
		if (!gp) {
			rc = json_is_integer(idv) &&
			     json_integer_value(idv) >= 0 &&
			     json_integer_value(idv) <= 65535 ?
			     scsi_alua_gp_create(lu, name,
				(uint16_t)json_integer_value(idv), &gp) : -EINVAL;
			if (rc) {
				problem(errors, "%s: ALUA group %s: %s", what, name,
					rc == -EEXIST ? "its name or id is taken" :
					"no valid tg_pt_gp_id");
				bad++;
				continue;
			}
		}
		if (ctl_alua_set(lu, gp, g, true, err, sizeof(err))) {
			problem(errors, "%s: ALUA group %s: %s", what, name, err);
			bad++;
		}
	}
	return bad;
}
