/* Reload (SIGHUP, `systemctl reload utargetd`): re-read saveconfig.json and
 * apply only what changed. LIO's target.service reloads with a full clear +
 * restore, which drops every session; here initiators stay logged in.
 *
 * Granularity is the storage object and the target. One that the file
 * still describes the same way is kept as it runs, untouched (no unit
 * attention, no reopened file); one the file changed is torn down and
 * created again from the file; one the file no longer has is removed; new
 * ones are created. A target using a storage object that is re-created is
 * re-created too, since its LUNs point at the old object. Sessions are
 * refreshed once, after the whole file is applied, as after the same
 * changes made live: a session whose target and ACL still let it in goes
 * on with its new LUN map, the others end (iscsi_sessions_refresh).
 *
 * "The same way" means every setting the file gives equals the running
 * value (the running config may have more keys: defaults, generated WWNs).
 * So deleting a key from the file does not reset it on reload; writing the
 * default value explicitly does. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "control/model.h"
#include "control/rpc.h"
#include "control/saveconfig.h"
#include "iscsi/mgmt.h"
#include "iscsi/target.h"
#include "util/log.h"

/* Every value in `file` is present and equal in `cur` (objects: key by
 * key; arrays: same length, element by element). */
static bool described_by(json_t *file, json_t *cur)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_object(file)) {
		if (!json_is_object(cur))
			return false;
		json_object_foreach(file, k, v)
			if (!described_by(v, json_object_get(cur, k)))
				return false;
		return true;
	}
	if (json_is_array(file)) {
		if (!json_is_array(cur) || json_array_size(file) != json_array_size(cur))
			return false;
		json_array_foreach(file, i, v)
			if (!described_by(v, json_array_get(cur, i)))
				return false;
		return true;
	}
	return cur && json_equal(file, cur);
}

static json_t *find_by(json_t *arr, const char *k1, const char *v1,
		       const char *k2, const char *v2)
{
	json_t *o;
	size_t i;

	json_array_foreach(arr, i, o) {
		json_t *a = json_object_get(o, k1), *b = k2 ? json_object_get(o, k2) : NULL;

		if (!json_is_string(a) || strcmp(json_string_value(a), v1))
			continue;
		if (k2 && (!json_is_string(b) || strcmp(json_string_value(b), v2)))
			continue;
		return o;
	}
	return NULL;
}

/* Does a target (in saveconfig form) have a LUN on a storage object that
 * is not among the kept ones? */
static bool uses_dropped_so(json_t *t, json_t *kept_paths)
{
	json_t *tpg, *lun;
	size_t i, j;

	json_array_foreach(json_object_get(t, "tpgs"), i, tpg)
		json_array_foreach(json_object_get(tpg, "luns"), j, lun) {
			json_t *so = json_object_get(lun, "storage_object");

			if (!json_is_string(so) ||
			    !json_object_get(kept_paths, json_string_value(so)))
				return true;
		}
	return false;
}

/* A growable list of pointers: what the reload takes away. */
struct ptrs {
	void **p;
	size_t n;
};

static int ptrs_add(struct ptrs *l, void *p)
{
	void **a = realloc(l->p, (l->n + 1) * sizeof(*a));

	if (!a)
		return -ENOMEM;
	a[l->n++] = p;
	l->p = a;
	return 0;
}

/* Decide, under the fabric lock, what stays: fills kept_paths (storage
 * object paths) and kept_wwns, and the lists of what goes. */
static int classify(json_t *fsos, json_t *ftgts, json_t *kept_paths,
		    json_t *kept_wwns, struct ptrs *drop_sos, struct ptrs *drop_tgts,
		    bool (*stale)(const struct iscsi_target *))
{
	json_t *cur = ctl_config_dump(), *ctgts;
	struct iscsi_target *t;
	struct ctl_so *so;
	int rc = 0;

	if (!cur)
		return -ENOMEM;
	ctgts = json_object_get(cur, "targets");
	list_for_each_entry(so, &ctl_sos, link) {
		json_t *cj = ctl_so_json(so);
		const char *plugin = json_string_value(json_object_get(cj, "plugin"));
		const char *name = json_string_value(json_object_get(cj, "name"));
		json_t *fj = plugin && name ?
			find_by(fsos, "plugin", plugin, "name", name) : NULL;

		if (fj && described_by(fj, cj)) {
			char p[160];

			snprintf(p, sizeof(p), "/backstores/%s/%s", plugin, name);
			json_object_set_new(kept_paths, p, json_true());
		} else if (ptrs_add(drop_sos, so)) {
			rc = -ENOMEM;
		}
		json_decref(cj);
	}
	list_for_each_entry(t, &iscsi_fabric.targets, link) {
		json_t *ct = find_by(ctgts, "wwn", t->wwn, NULL, NULL);
		json_t *ft = find_by(ftgts, "wwn", t->wwn, NULL, NULL);

		if (ct && ft && described_by(ft, ct) && !uses_dropped_so(ct, kept_paths) &&
		    !(stale && stale(t)))
			json_object_set_new(kept_wwns, t->wwn, json_true());
		else if (ptrs_add(drop_tgts, t))
			rc = -ENOMEM;
	}
	json_decref(cur);
	return rc;
}

/* The part of the file that still has to be created: everything but what
 * is kept. */
static json_t *to_create(json_t *root, json_t *kept_paths, json_t *kept_wwns)
{
	json_t *rest = json_deep_copy(root), *sos = json_array(), *tgts = json_array();
	json_t *o;
	size_t i;

	json_array_foreach(json_object_get(root, "storage_objects"), i, o) {
		const char *plugin = json_string_value(json_object_get(o, "plugin"));
		const char *name = json_string_value(json_object_get(o, "name"));
		char p[160];

		snprintf(p, sizeof(p), "/backstores/%s/%s", plugin ? plugin : "",
			 name ? name : "");
		if (!plugin || !name || !json_object_get(kept_paths, p))
			json_array_append(sos, o);
	}
	json_array_foreach(json_object_get(root, "targets"), i, o) {
		const char *wwn = json_string_value(json_object_get(o, "wwn"));

		if (!wwn || !json_object_get(kept_wwns, wwn))
			json_array_append(tgts, o);
	}
	json_object_set_new(rest, "storage_objects", sos);
	json_object_set_new(rest, "targets", tgts);
	return rest;
}

int ctl_config_reload_locked(json_t *root, const char *what, json_t *errors,
			     unsigned *kept,
			     bool (*stale)(const struct iscsi_target *),
			     char *err, size_t errlen)
{
	json_t *kept_paths = json_object(), *kept_wwns = json_object(), *rest;
	struct ptrs drop_sos = { 0 }, drop_tgts = { 0 };
	size_t i;
	int rc;

	rc = classify(json_object_get(root, "storage_objects"),
		      json_object_get(root, "targets"), kept_paths, kept_wwns,
		      &drop_sos, &drop_tgts, stale);
	if (rc) {
		/* nothing was changed yet: the running config stays whole */
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* the listeners of re-created targets' portals stay open */
	iscsi_portals_hold();
	/* targets first: their LUNs hold the storage objects */
	for (i = 0; i < drop_tgts.n; i++)
		iscsi_target_free(drop_tgts.p[i]);
	for (i = 0; i < drop_sos.n; i++)
		ctl_so_free(drop_sos.p[i]);
	/* discovery auth is not a session matter: take the file's as it is */
	memset(&iscsi_fabric.discovery_auth, 0, sizeof(iscsi_fabric.discovery_auth));
	iscsi_fabric.discovery_enable_auth = false;
	rest = to_create(root, kept_paths, kept_wwns);
	rc = ctl_config_restore(rest, false, errors, err, errlen);
	json_decref(rest);
	iscsi_portals_release();
	iscsi_sessions_refresh(NULL, -1);
	ctl_config_version++;
	if (kept)
		*kept = (unsigned)(json_object_size(kept_paths) +
				   json_object_size(kept_wwns));
	log_info("reload %s: kept %zu storage objects and %zu targets as they were, "
		 "removed or re-created %zu and %zu", what,
		 json_object_size(kept_paths), json_object_size(kept_wwns),
		 drop_sos.n, drop_tgts.n);
out:
	free(drop_sos.p);
	free(drop_tgts.p);
	json_decref(kept_paths);
	json_decref(kept_wwns);
	return rc;
}

int ctl_config_reload(const char *path, json_t *errors, unsigned *kept,
		      char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root;
	int rc;

	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "%s: line %d: %s", path, jerr.line, jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		snprintf(err, errlen, "%s: not a saveconfig.json object", path);
		return -EINVAL;
	}
	pthread_mutex_lock(&iscsi_fabric.lock);
	rc = ctl_config_reload_locked(root, path, errors, kept, NULL, err, errlen);
	pthread_mutex_unlock(&iscsi_fabric.lock);
	json_decref(root);
	return rc;
}
