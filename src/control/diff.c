/* What changed between two saveconfig.json documents, object by object, in
 * the tree's own paths: what saveconfig and restoreconfig report (issue 21:
 * "report exactly what changed"), so an administrator sees that a restore
 * added /iscsi/X/tpg1/luns/lun2 or a save wrote a changed ACL, not just
 * "done".
 *
 * Objects are matched by their names (storage object: plugin and name;
 * target: wwn; TPG: tag; LUN: index; portal: address and port; node ACL:
 * node_wwn). An object on one side only is added or removed, its children
 * not listed; one on both sides whose own settings differ is changed, and
 * its children are compared in turn. */
#include "control/plugins.h"
#include "control/saveconfig.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct diff {
	json_t *added, *removed, *changed;
};

typedef void (*key_fn)(json_t *obj, char *key, size_t len);
typedef void (*cmp_fn)(struct diff *d, const char *path, json_t *a,
		       json_t *b);

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static json_int_t num(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

/* The object without the members named in kids (compared on their own). */
static json_t *own(json_t *o, const char *const *kids)
{
	json_t *c = json_copy(o);

	for (; c && kids && *kids; kids++)
		json_object_del(c, *kids);
	return c;
}

static bool own_differs(json_t *a, json_t *b, const char *const *kids)
{
	json_t *x = own(a, kids), *y = own(b, kids);
	bool r = !json_equal(x, y);

	json_decref(x);
	json_decref(y);
	return r;
}

/* Matches the arrays a (before) and b (after) by key(), which is also the
 * child's path below parent; cmp() compares a pair found on both sides. */
static void diff_list(struct diff *d, const char *parent, json_t *a, json_t *b,
		      key_fn key, cmp_fn cmp)
{
	size_t i, j;
	json_t *x, *y;
	char kx[512], ky[512], path[1024];

	json_array_foreach(a, i, x) {
		bool found = false;

		key(x, kx, sizeof(kx));
		snprintf(path, sizeof(path), "%s/%s", parent, kx);
		json_array_foreach(b, j, y) {
			key(y, ky, sizeof(ky));
			if (!strcmp(kx, ky)) {
				found = true;
				cmp(d, path, x, y);
				break;
			}
		}
		if (!found)
			json_array_append_new(d->removed, json_string(path));
	}
	json_array_foreach(b, j, y) {
		bool found = false;

		key(y, ky, sizeof(ky));
		json_array_foreach(a, i, x) {
			key(x, kx, sizeof(kx));
			if (!strcmp(kx, ky)) {
				found = true;
				break;
			}
		}
		if (!found) {
			snprintf(path, sizeof(path), "%s/%s", parent, ky);
			json_array_append_new(d->added, json_string(path));
		}
	}
}

static void cmp_leaf(struct diff *d, const char *path, json_t *a, json_t *b)
{
	if (!json_equal(a, b))
		json_array_append_new(d->changed, json_string(path));
}

static void key_so(json_t *o, char *k, size_t n)
{
	/* LIO saves user:rbd objects as plugin "user"; the tree says user:rbd */
	snprintf(k, n, "%s/%s", ctl_plugin_tree_name(str(o, "plugin")),
		 str(o, "name"));
}

static void key_target(json_t *o, char *k, size_t n)
{
	snprintf(k, n, "%s", str(o, "wwn"));
}

static void key_tpg(json_t *o, char *k, size_t n)
{
	snprintf(k, n, "tpg%lld", (long long)num(o, "tag"));
}

static void key_lun(json_t *o, char *k, size_t n)
{
	snprintf(k, n, "luns/lun%lld", (long long)num(o, "index"));
}

static void key_portal(json_t *o, char *k, size_t n)
{
	const char *ip = str(o, "ip_address");

	snprintf(k, n, strchr(ip, ':') ? "portals/[%s]:%lld" : "portals/%s:%lld",
		 ip, (long long)num(o, "port"));
}

static void key_acl(json_t *o, char *k, size_t n)
{
	snprintf(k, n, "acls/%s", str(o, "node_wwn"));
}

static void cmp_tpg(struct diff *d, const char *path, json_t *a, json_t *b)
{
	static const char *const kids[] = { "luns", "portals", "node_acls",
					    NULL };

	if (own_differs(a, b, kids))
		json_array_append_new(d->changed, json_string(path));
	diff_list(d, path, json_object_get(a, "luns"),
		  json_object_get(b, "luns"), key_lun, cmp_leaf);
	diff_list(d, path, json_object_get(a, "portals"),
		  json_object_get(b, "portals"), key_portal, cmp_leaf);
	diff_list(d, path, json_object_get(a, "node_acls"),
		  json_object_get(b, "node_acls"), key_acl, cmp_leaf);
}

static void cmp_target(struct diff *d, const char *path, json_t *a, json_t *b)
{
	static const char *const kids[] = { "tpgs", NULL };

	if (own_differs(a, b, kids))
		json_array_append_new(d->changed, json_string(path));
	diff_list(d, path, json_object_get(a, "tpgs"),
		  json_object_get(b, "tpgs"), key_tpg, cmp_tpg);
}

json_t *ctl_config_diff(json_t *before, json_t *after)
{
	struct diff d = { json_array(), json_array(), json_array() };
	json_t *empty = json_object();

	if (!before)
		before = empty;
	if (!after)
		after = empty;
	diff_list(&d, "/backstores", json_object_get(before, "storage_objects"),
		  json_object_get(after, "storage_objects"), key_so, cmp_leaf);
	diff_list(&d, "/iscsi", json_object_get(before, "targets"),
		  json_object_get(after, "targets"), key_target, cmp_target);
	/* discovery authentication lives in fabric_modules */
	if (!json_equal(json_object_get(before, "fabric_modules"),
			json_object_get(after, "fabric_modules")) &&
	    (json_array_size(json_object_get(before, "fabric_modules")) ||
	     json_array_size(json_object_get(after, "fabric_modules"))))
		json_array_append_new(d.changed, json_string("/iscsi"));
	json_decref(empty);
	return json_pack("{s:o, s:o, s:o}", "added", d.added, "removed",
			 d.removed, "changed", d.changed);
}
