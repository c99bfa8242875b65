/* utargetcli commands: targets, TPGs, enable/disable, LUNs, portals,
 * node ACLs, their tags and mapped LUNs. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"

/* ---- targets, TPGs -------------------------------------------------------- */

/* UITarget.ui_command_create: TPG, enable, authentication=0, portal. */
static int tpg_create(struct shell *sh, const char *wwn, unsigned tag)
{
	unsigned got = tag;
	char path[PATH_MAX];
	int ret = ut_tpg_create(sh->ut, wwn, tag, &got);

	if (ret == -EEXIST && tag == 1)
		got = 1; /* the daemon made TPG 1 with the target */
	else if (ret)
		return cli_ut_error(sh);
	sh->changed = true;
	if (pref_bool(sh, "auto_enable_tpgt") &&
	    ut_tpg_enable(sh->ut, wwn, got, true))
		return cli_ut_error(sh);
	if (ut_tpg_set_attribute(sh->ut, wwn, got, "authentication", 0))
		return cli_ut_error(sh);
	cli_info(sh, "Created TPG %u.", got);
	if (pref_bool(sh, "auto_add_default_portal")) {
		if (!ut_portal_create(sh->ut, wwn, got, "0.0.0.0", 3260,
				      NULL)) {
			cli_info(sh, "Global pref auto_add_default_portal=true");
			cli_info(sh, "Created default portal listening on all "
				     "IPs (0.0.0.0), port 3260.");
		} else {
			cli_info(sh, "Default portal not created, TPGs within "
				     "a target cannot share ip:port.");
		}
	}
	snprintf(path, sizeof(path), "/iscsi/%s/tpg%u", wwn, got);
	cmd_new_node(sh, path);
	return 0;
}

static int c_target_create(struct shell *sh, struct node *n,
			   struct cli_args *a)
{
	char *wwn = NULL;
	int ret;

	if (ut_target_create(sh->ut, a->v[0], &wwn))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Created target %s.", wwn);
	ret = tpg_create(sh, wwn, 1);
	free(wwn);
	return ret;
}

static int c_target_delete(struct shell *sh, struct node *n,
			   struct cli_args *a)
{
	if (ut_target_delete(sh->ut, a->v[0]))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Deleted Target %s.", a->v[0]);
	return 0;
}

static int c_tpg_create(struct shell *sh, struct node *n, struct cli_args *a)
{
	long tag = 0;

	if (a->v[0] && cmd_index_arg(sh, a->v[0], "tpg", "tag", 65535, &tag))
		return -1;
	if (a->v[0] && tag == 0)
		return cli_error(sh, "Invalid tag: %s", a->v[0]);
	return tpg_create(sh, n->wwn, (unsigned)tag);
}

static int c_tpg_delete(struct shell *sh, struct node *n, struct cli_args *a)
{
	long tag;

	if (cmd_index_arg(sh, a->v[0], "tpg", "tag", 65535, &tag))
		return -1;
	if (ut_tpg_delete(sh->ut, n->wwn, (unsigned)tag))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Deleted TPGT %ld.", tag);
	return 0;
}

static int tpg_enable(struct shell *sh, struct node *n, bool on)
{
	if (json_flag(n->obj, "enable") == on) {
		cli_info(sh, "The TPGT is already %s.",
			 on ? "enabled" : "disabled");
		return 0;
	}
	if (ut_tpg_enable(sh->ut, n->wwn, n->tag, on))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "The TPGT has been %s.", on ? "enabled" : "disabled");
	return 0;
}

static int c_enable(struct shell *sh, struct node *n, struct cli_args *a)
{
	return tpg_enable(sh, n, true);
}

static int c_disable(struct shell *sh, struct node *n, struct cli_args *a)
{
	return tpg_enable(sh, n, false);
}

/* ---- LUNs, portals ------------------------------------------------------- */

/* rtslib-fb's StorageObjectFactory: a regular file becomes a fileio object
 * of the file's size, a block device a block object, named after the path
 * as typed with the slashes turned into dashes ("/tmp/a.img" ->
 * "tmp-a.img"). Writes "/backstores/PLUGIN/NAME" to so_path. */
static int so_from_path(struct shell *sh, const char *arg, char *so_path,
			size_t len)
{
	struct ut_so_spec s = { .write_back = UT_DEFAULT, .sparse = UT_DEFAULT,
				.readonly = UT_DEFAULT, .nullio = UT_DEFAULT };
	char dev[PATH_MAX], name[256];
	const char *p = arg;
	struct stat st;
	size_t o = 0, i;
	json_t *so;

	cmd_abspath(arg, dev, sizeof(dev));
	if (stat(dev, &st) || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
		return cli_error(sh, "storage object or path not valid: %s",
				 arg);
	/* Better than rtslib (which refuses the second time): a file that
	 * already backs an object means that object. */
	json_array_foreach(json_object_get(sh->config, "storage_objects"), i,
			   so) {
		const char *d = json_str(so, "dev");
		struct stat st2;

		if (d && json_str(so, "plugin") && json_str(so, "name") &&
		    (!strcmp(d, dev) || (!stat(d, &st2) &&
					 st2.st_dev == st.st_dev &&
					 st2.st_ino == st.st_ino))) {
			snprintf(so_path, len, "/backstores/%s/%.200s",
				 json_str(so, "plugin"), json_str(so, "name"));
			return 0;
		}
	}
	while (*p == '/')
		p++;
	for (; *p && o < sizeof(name) - 1; p++)
		name[o++] = *p == '/' ? '-' : *p;
	while (o && name[o - 1] == '-')
		o--;
	name[o] = '\0';
	/* utargetd's names are shorter than 64 bytes: past that, the file's
	 * own name. */
	if (o >= 64) {
		const char *b = strrchr(dev, '/');

		snprintf(name, 64, "%.63s", b ? b + 1 : dev);
		o = strlen(name);
	}
	if (!o)
		return cli_error(sh, "storage object or path not valid: %s",
				 arg);
	s.name = name;
	s.dev = dev;
	if (S_ISBLK(st.st_mode)) {
		s.plugin = "block";
		s.readonly = 0;
	} else {
		s.plugin = "fileio";
		s.size = (uint64_t)st.st_size;
		s.write_back = 0;	/* FileIOStorageObject's default */
	}
	if (ut_backstore_create(sh->ut, &s, NULL))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Created storage object %s.", name);
	if (snprintf(so_path, len, "/backstores/%s/%.200s", s.plugin, name) >=
	    (int)len)
		return cli_error(sh, "storage object or path not valid: %s",
				 arg);
	return 0;
}

/* The TPG LUN (of n's TPG) that uses storage object so_path, or -1. */
static long tpg_lun_of(struct node *n, const char *so_path)
{
	json_t *l;
	size_t i;

	json_array_foreach(json_object_get(n->tpg, "luns"), i, l)
		if (json_str(l, "storage_object") &&
		    !strcmp(json_str(l, "storage_object"), so_path))
			return (long)json_num(l, "index", -1);
	return -1;
}

/* Resolves storage_object as targetcli does: a node of the tree (absolute,
 * or relative to from) that is a storage object, else a file or block
 * device path (a storage object is created for it). */
static int resolve_so(struct shell *sh, struct node *from, const char *arg,
		      char *so_path, size_t len)
{
	char err[512];
	struct node *so = tree_lookup(sh, from, arg, err, sizeof(err));

	if (so) {
		if (so->type != N_SO)
			return cli_error(sh, "Invalid storage object %s.", arg);
		snprintf(so_path, len, "%s", so->path);
		return 0;
	}
	if (!strncmp(arg, "/backstores/", 12) || !strcmp(arg, "/backstores"))
		return cli_error(sh, "Invalid storage object %s.", arg);
	return so_from_path(sh, arg, so_path, len);
}

/* n: a node of the TPG (tpg, luns, ACL); so_path: /backstores/PLUGIN/NAME
 * (resolve_so). Returns the new LUN's number or -1. */
static int lun_create(struct shell *sh, struct node *n, const char *so_path,
		      long lun, int add_mapped)
{
	char path[PATH_MAX];
	json_t *r, *m;
	size_t i;

	if (tpg_lun_of(n, so_path) >= 0)
		return cli_error(sh, "lun for storage object %s already exists",
				 so_path + strlen("/backstores/"));
	if (ut_lun_create(sh->ut, n->wwn, n->tag, so_path, (int)lun,
			  add_mapped, &r))
		return cli_ut_error(sh);
	sh->changed = true;
	lun = (long)json_num(r, "lun", lun);
	cli_info(sh, "Created LUN %ld.", lun);
	json_array_foreach(json_object_get(r, "mapped"), i, m)
		cli_info(sh, "Created LUN %ld->%lld mapping in node ACL %s",
			 lun, json_num(m, "mapped_lun", 0),
			 json_str(m, "node_wwn") ?: "");
	json_decref(r);
	snprintf(path, sizeof(path), "/iscsi/%s/tpg%u/luns/lun%ld", n->wwn,
		 n->tag, lun);
	cmd_new_node(sh, path);
	return (int)lun;
}

static int c_lun_create(struct shell *sh, struct node *n, struct cli_args *a)
{
	long lun = -1;
	char so_path[PATH_MAX];
	int add;

	if (a->v[1] && cmd_index_arg(sh, a->v[1], "lun", "LUN", 65535, &lun))
		return -1;
	if (cmd_bool_arg(sh, a->v[2], pref_bool(sh, "auto_add_mapped_luns"),
		     &add))
		return -1;
	if (resolve_so(sh, n, a->v[0], so_path, sizeof(so_path)))
		return -1;
	return lun_create(sh, n, so_path, lun, add) < 0 ? -1 : 0;
}

static int c_lun_delete(struct shell *sh, struct node *n, struct cli_args *a)
{
	long lun;

	if (cmd_index_arg(sh, a->v[0], "lun", "LUN", 65535, &lun))
		return -1;
	if (ut_lun_delete(sh->ut, n->wwn, n->tag, (unsigned)lun))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Deleted LUN %ld.", lun);
	return 0;
}

static int c_portal_create(struct shell *sh, struct node *n,
			   struct cli_args *a)
{
	const char *ip = a->v[0];
	long port = 3260;
	char path[PATH_MAX];
	json_t *r;

	if (!a->v[1])
		cli_info(sh, "Using default IP port %ld", port);
	else if (cmd_index_arg(sh, a->v[1], NULL, "IP port", 65535, &port) ||
		 port == 0)
		return port ? -1 : cli_error(sh, "Invalid IP port: 0");
	if (!ip) {
		ip = "0.0.0.0";
		cli_info(sh, "Binding to INADDR_ANY (%s)", ip);
	}
	if (ut_portal_create(sh->ut, n->wwn, n->tag, ip, (unsigned)port, &r))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Created network portal %s:%ld.",
		 json_str(r, "ip_address") ?: ip, port);
	json_decref(r);
	snprintf(path, sizeof(path), "/iscsi/%s/tpg%u/portals/%s%s%s:%ld",
		 n->wwn, n->tag, strchr(ip, ':') ? "[" : "", ip,
		 strchr(ip, ':') ? "]" : "", port);
	cmd_new_node(sh, path);
	return 0;
}

static int c_portal_delete(struct shell *sh, struct node *n,
			   struct cli_args *a)
{
	long port;
	char ip[256];
	size_t l;

	if (cmd_index_arg(sh, a->v[1], NULL, "IP port", 65535, &port))
		return -1;
	snprintf(ip, sizeof(ip), "%s", a->v[0]);
	l = strlen(ip);
	if (ip[0] == '[' && l > 1 && ip[l - 1] == ']') {
		memmove(ip, ip + 1, l - 2);
		ip[l - 2] = '\0';
	}
	if (ut_portal_delete(sh->ut, n->wwn, n->tag, ip, (unsigned)port))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Deleted network portal %s:%ld", a->v[0], port);
	return 0;
}


/* ---- ACLs, mapped LUNs ----------------------------------------------------- */

static int c_acl_create(struct shell *sh, struct node *n, struct cli_args *a)
{
	char path[PATH_MAX];
	json_t *r, *m;
	size_t i;
	int add;

	if (cmd_bool_arg(sh, a->v[1], pref_bool(sh, "auto_add_mapped_luns"),
		     &add))
		return -1;
	if (ut_acl_create(sh->ut, n->wwn, n->tag, a->v[0], add, &r))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Created Node ACL for %s",
		 json_str(r, "node_wwn") ?: a->v[0]);
	json_array_foreach(json_object_get(r, "mapped"), i, m)
		cli_info(sh, "Created mapped LUN %lld.",
			 json_is_integer(m) ? json_integer_value(m) :
					      json_num(m, "mapped_lun", 0));
	snprintf(path, sizeof(path), "/iscsi/%s/tpg%u/acls/%s", n->wwn,
		 n->tag, json_str(r, "node_wwn") ?: a->v[0]);
	json_decref(r);
	cmd_new_node(sh, path);
	return 0;
}

static int c_acl_delete(struct shell *sh, struct node *n, struct cli_args *a)
{
	if (ut_acl_delete(sh->ut, n->wwn, n->tag, a->v[0]))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Deleted Node ACL %s.", a->v[0]);
	return 0;
}

/* tag / untag name an ACL by its wwn or by its current tag. */
static int acl_tag(struct shell *sh, struct node *n, const char *which,
		   const char *new_tag)
{
	bool found = false;

	for (size_t i = 0; i < n->nkids; i++) {
		struct node *c = n->kids[i];
		const char *t = json_str(c->obj, "tag");

		if (strcmp(c->node_wwn, which) && !(t && !strcmp(t, which)))
			continue;
		found = true;
		if (ut_acl_set_tag(sh->ut, n->wwn, n->tag, c->node_wwn,
				   new_tag))
			return cli_ut_error(sh);
		sh->changed = true;
	}
	if (!found)
		return cli_error(sh, "No such ACL or tag: %s", which);
	return 0;
}

static int c_acl_tag(struct shell *sh, struct node *n, struct cli_args *a)
{
	return acl_tag(sh, n, a->v[0], a->v[1]);
}

static int c_acl_untag(struct shell *sh, struct node *n, struct cli_args *a)
{
	return acl_tag(sh, n, a->v[0], NULL);
}

static int c_mlun_create(struct shell *sh, struct node *n, struct cli_args *a)
{
	long ml, tl;
	int wp;
	char path[PATH_MAX];
	struct node *tpgn = n->parent->parent;

	if (cmd_index_arg(sh, a->v[0], "mapped_lun", "mapped LUN", 65535, &ml) ||
	    cmd_bool_arg(sh, a->v[2], 0, &wp))
		return -1;
	if (strspn(a->v[1] + (strncmp(a->v[1], "lun", 3) ? 0 : 3),
		   "0123456789") ==
	    strlen(a->v[1] + (strncmp(a->v[1], "lun", 3) ? 0 : 3))) {
		if (cmd_index_arg(sh, a->v[1], "lun", "TPG LUN", 65535, &tl))
			return -1;
	} else {
		/* targetcli: a backstore (or a file or block device, which
		 * gets a backstore) is mapped through the TPG LUN that
		 * already uses it, or a new one. */
		char so_path[PATH_MAX];
		int r;

		if (resolve_so(sh, n, a->v[1], so_path, sizeof(so_path)))
			return -1;
		tl = tpg_lun_of(tpgn, so_path);
		if (tl < 0) {
			r = lun_create(sh, tpgn, so_path, -1, 0);
			if (r < 0)
				return -1;
			tl = r;
		}
	}
	sh->pending_cd[0] = '\0';
	if (ut_mapped_lun_create(sh->ut, n->wwn, n->tag, n->node_wwn,
				 (unsigned)ml, (unsigned)tl, wp))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Created Mapped LUN %ld.", ml);
	snprintf(path, sizeof(path), "%s/mapped_lun%ld", n->path, ml);
	cmd_new_node(sh, path);
	return 0;
}

static int c_mlun_delete(struct shell *sh, struct node *n, struct cli_args *a)
{
	long ml;

	if (cmd_index_arg(sh, a->v[0], "mapped_lun", "mapped LUN", 65535, &ml))
		return -1;
	if (ut_mapped_lun_delete(sh->ut, n->wwn, n->tag, n->node_wwn,
				 (unsigned)ml))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Deleted Mapped LUN %ld.", ml);
	return 0;
}

const struct command cli_cmds_target[] = {
	{ "create", T(N_ISCSI), NULL, SIG(0, "wwn"), c_target_create,
	  "Create an iSCSI target (default name: iqn.2003-01.org.linux-\n"
	  "iscsi.HOST.ARCH:sn.HEX), with TPG 1 and, when the global\n"
	  "auto_add_default_portal is true, the portal 0.0.0.0:3260." },
	{ "delete", T(N_ISCSI), NULL, SIG(1, "wwn"), c_target_delete,
	  "Delete a target and everything under it; its sessions end." },
	{ "create", T(N_TARGET), NULL, SIG(0, "tag"), c_tpg_create,
	  "Create a TPG (default tag: the lowest free)." },
	{ "delete", T(N_TARGET), NULL, SIG(1, "tag"), c_tpg_delete,
	  "Delete a TPG." },
	{ "enable", T(N_TPG), NULL, SIG(0, NULL), c_enable,
	  "Enable the TPG." },
	{ "disable", T(N_TPG), NULL, SIG(0, NULL), c_disable,
	  "Disable the TPG (its sessions end)." },
	{ "create", T(N_LUNS), NULL,
	  SIG(1, "storage_object", "lun", "add_mapped_luns"), c_lun_create,
	  "Create a LUN on a storage object (/backstores/PLUGIN/NAME), or on\n"
	  "a file or block device path: a fileio / block storage object is\n"
	  "made for it first, named after the path (/tmp/a.img: tmp-a.img).\n"
	  "lun defaults to the lowest free. With add_mapped_luns (default:\n"
	  "the global auto_add_mapped_luns) every ACL gets a mapped LUN." },
	{ "delete", T(N_LUNS), NULL, SIG(1, "lun"), c_lun_delete,
	  "Delete a LUN (lun3 or 3) and the mapped LUNs pointing at it." },
	{ "create", T(N_PORTALS), NULL, SIG(0, "ip_address", "ip_port"),
	  c_portal_create,
	  "Create a network portal (default 0.0.0.0, port 3260)." },
	{ "delete", T(N_PORTALS), NULL, SIG(2, "ip_address", "ip_port"),
	  c_portal_delete, "Delete a network portal." },
	{ "create", T(N_ACLS), NULL, SIG(1, "wwn", "add_mapped_luns"),
	  c_acl_create,
	  "Create a node ACL for an initiator; with add_mapped_luns\n"
	  "(default: the global auto_add_mapped_luns) it maps every LUN." },
	{ "delete", T(N_ACLS), NULL, SIG(1, "wwn"), c_acl_delete,
	  "Delete a node ACL (the initiator's sessions end)." },
	{ "tag", T(N_ACLS), NULL, SIG(2, "wwn_or_tag", "new_tag"), c_acl_tag,
	  "Tag a node ACL (or every ACL with a tag) with new_tag." },
	{ "untag", T(N_ACLS), NULL, SIG(1, "wwn_or_tag"), c_acl_untag,
	  "Remove the tag of a node ACL." },
	{ "create", T(N_ACL), NULL,
	  SIG(2, "mapped_lun", "tpg_lun_or_backstore", "write_protect"),
	  c_mlun_create,
	  "Map a TPG LUN to this initiator as mapped_lun: a number (lun3 or\n"
	  "3), or a storage object or file path (mapped through the TPG LUN\n"
	  "that uses it, made when none does); write_protect=false." },
	{ "delete", T(N_ACL), NULL, SIG(1, "mapped_lun"), c_mlun_delete,
	  "Delete a mapped LUN." },
	{ NULL, 0, NULL, SIG(0, NULL), NULL, NULL }
};
