/* utargetcli commands: backstores (create per plugin, delete, resize)
 * and their ALUA groups. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"

/* ---- backstores ----------------------------------------------------------- */

static void model_alias(struct shell *sh, const char *plugin, const char *name)
{
	/* targetcli: export_backstore_name_as_model sets emulate_model_alias
	 * so INQUIRY's product id is the object's name. */
	if (pref_bool(sh, "export_backstore_name_as_model"))
		ut_backstore_set_attribute(sh->ut, plugin, name,
					   "emulate_model_alias", 1);
}

static int so_created(struct shell *sh, const char *plugin, const char *name)
{
	char path[PATH_MAX];

	model_alias(sh, plugin, name);
	sh->changed = true;
	snprintf(path, sizeof(path), "/backstores/%s/%s", plugin, name);
	cmd_new_node(sh, path);
	return 0;
}

static int c_fileio_create(struct shell *sh, struct node *n,
			   struct cli_args *a)
{
	struct ut_so_spec s = { .plugin = "fileio", .name = a->v[0],
				.write_back = UT_DEFAULT,
				.sparse = UT_DEFAULT, .readonly = UT_DEFAULT,
				.nullio = UT_DEFAULT, .wwn = a->v[5] };
	char dev[PATH_MAX];
	long long size = 0;
	json_t *r;

	cmd_abspath(a->v[1], dev, sizeof(dev));
	s.dev = dev;
	if (a->v[2]) {
		size = cli_human_to_bytes(a->v[2]);
		if (size < 0)
			return cli_error(sh, "Cannot interpret size, wrong "
					 "format: %s", a->v[2]);
		s.size = (uint64_t)size;
	}
	if ((a->v[3] && cmd_bool_arg(sh, a->v[3], 1, &s.write_back)) ||
	    (a->v[4] && cmd_bool_arg(sh, a->v[4], 1, &s.sparse)))
		return -1;
	if (ut_backstore_create(sh->ut, &s, &r))
		return cli_ut_error(sh);
	cli_info(sh, "Created fileio %s with size %lld", a->v[0],
		 json_num(r, "size", size));
	json_decref(r);
	return so_created(sh, "fileio", a->v[0]);
}

static int c_block_create(struct shell *sh, struct node *n,
			  struct cli_args *a)
{
	struct ut_so_spec s = { .plugin = "block", .name = a->v[0],
				.write_back = UT_DEFAULT,
				.sparse = UT_DEFAULT, .readonly = UT_DEFAULT,
				.nullio = UT_DEFAULT, .wwn = a->v[3] };
	char dev[PATH_MAX];

	cmd_abspath(a->v[1], dev, sizeof(dev));
	s.dev = dev;
	if (a->v[2] && cmd_bool_arg(sh, a->v[2], 0, &s.readonly))
		return -1;
	if (ut_backstore_create(sh->ut, &s, NULL))
		return cli_ut_error(sh);
	cli_info(sh, "Created block storage object %s using %s.", a->v[0],
		 dev);
	return so_created(sh, "block", a->v[0]);
}

static int c_ramdisk_create(struct shell *sh, struct node *n,
			    struct cli_args *a)
{
	struct ut_so_spec s = { .plugin = "ramdisk", .name = a->v[0],
				.write_back = UT_DEFAULT,
				.sparse = UT_DEFAULT, .readonly = UT_DEFAULT,
				.nullio = UT_DEFAULT, .wwn = a->v[3] };
	long long size = cli_human_to_bytes(a->v[1]);

	if (size <= 0)
		return cli_error(sh, "Cannot interpret size, wrong format: %s",
				 a->v[1]);
	s.size = (uint64_t)size;
	if (a->v[2] && cmd_bool_arg(sh, a->v[2], 0, &s.nullio))
		return -1;
	if (ut_backstore_create(sh->ut, &s, NULL))
		return cli_ut_error(sh);
	cli_info(sh, "Created ramdisk %s with size %s.", a->v[0], a->v[1]);
	return so_created(sh, "ramdisk", a->v[0]);
}

static int c_pscsi_create(struct shell *sh, struct node *n,
			  struct cli_args *a)
{
	struct ut_so_spec s = { .plugin = "pscsi", .name = a->v[0],
				.dev = a->v[1], .write_back = UT_DEFAULT,
				.sparse = UT_DEFAULT, .readonly = UT_DEFAULT,
				.nullio = UT_DEFAULT };

	if (ut_backstore_create(sh->ut, &s, NULL))
		return cli_ut_error(sh);
	cli_info(sh, "Created pscsi storage object %s using %s", a->v[0],
		 a->v[1]);
	sh->changed = true;
	return 0;
}

/* targetcli-fb UIUserBackedBackstore.ui_command_create(name, size,
 * cfgstring, wwn, ...): size is optional here (the image's size), and
 * create_image=true makes a missing image of that size. */
static int c_rbd_create(struct shell *sh, struct node *n, struct cli_args *a)
{
	struct ut_so_spec s = { .plugin = "user:rbd", .name = a->v[0],
				.write_back = UT_DEFAULT,
				.sparse = UT_DEFAULT, .readonly = UT_DEFAULT,
				.nullio = UT_DEFAULT, .wwn = a->v[3],
				.cfgstring = a->v[2], .create_image = UT_DEFAULT };
	long long size = 0;
	json_t *r;

	if (a->v[1] && a->v[1][0]) {
		size = cli_human_to_bytes(a->v[1]);
		if (size < 0)
			return cli_error(sh, "Cannot interpret size, wrong "
					 "format: %s", a->v[1]);
		s.size = (uint64_t)size;
	}
	if (!s.cfgstring)
		return cli_error(sh, "cfgstring must be given: "
				 "POOL/IMAGE[;conf=PATH][;id=USER][;osd_op_timeout=N]"
				 "[;ha=1][;pr=cluster]");
	if (a->v[4] && cmd_bool_arg(sh, a->v[4], 0, &s.create_image))
		return -1;
	if (ut_backstore_create(sh->ut, &s, &r))
		return cli_ut_error(sh);
	cli_info(sh, "Created user-backed storage object %s size %lld.",
		 a->v[0], json_num(r, "size", size));
	json_decref(r);
	return so_created(sh, "user:rbd", a->v[0]);
}

static int c_so_delete(struct shell *sh, struct node *n, struct cli_args *a)
{
	if (ut_backstore_delete(sh->ut, n->plugin, a->v[0]))
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Deleted storage object %s.", a->v[0]);
	return 0;
}

/* resize [size] [force]: beyond targetcli (LIO cannot resize a storage
 * object live). Without a size a block device's new size is taken. */
static int c_so_resize(struct shell *sh, struct node *n, struct cli_args *a)
{
	long long size = 0;
	int force = 0;
	uint64_t was, now;

	if (a->v[0]) {
		size = cli_human_to_bytes(a->v[0]);
		if (size <= 0)
			return cli_error(sh, "Cannot interpret size, wrong "
					 "format: %s", a->v[0]);
	}
	if (a->v[1] && cmd_bool_arg(sh, a->v[1], 0, &force))
		return -1;
	if (ut_backstore_resize(sh->ut, n->plugin, n->so_name,
				(uint64_t)size, force, &was, &now))
		return cli_ut_error(sh);
	sh->changed = true;
	if (was == now)
		cli_info(sh, "Storage object %s keeps its size of %llu bytes.",
			 n->so_name, (unsigned long long)now);
	else
		cli_info(sh, "Resized storage object %s from %llu to %llu "
			 "bytes.", n->so_name, (unsigned long long)was,
			 (unsigned long long)now);
	return 0;
}

/* ---- ALUA groups (/backstores/TYPE/NAME/alua) ------------------------------ */

/* UIALUATargetPortGroups.ui_command_create / _delete. */
static int c_alua_create(struct shell *sh, struct node *n, struct cli_args *a)
{
	char *end;
	long tag = strtol(a->v[1], &end, 10);
	json_t *p, *r = NULL;
	int ret;

	if (*end || end == a->v[1] || tag < 1 || tag > 65535)
		return cli_error(sh, "Invalid tag %s: a number from 1 to 65535",
				 a->v[1]);
	p = json_pack("{s:s?, s:s?, s:s, s:i}", "plugin", n->parent->plugin,
		      "name", n->parent->so_name, "group", a->v[0], "tag",
		      (int)tag);
	ret = ut_call(sh->ut, "alua.create", p, &r);
	json_decref(p);
	json_decref(r);
	if (ret)
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Created ALUA group %s with tag %ld.", a->v[0], tag);
	return 0;
}

static int c_alua_delete(struct shell *sh, struct node *n, struct cli_args *a)
{
	json_t *p = json_pack("{s:s?, s:s?, s:s}", "plugin", n->parent->plugin,
			      "name", n->parent->so_name, "group", a->v[0]);
	json_t *r = NULL;
	int ret = ut_call(sh->ut, "alua.delete", p, &r);

	json_decref(p);
	json_decref(r);
	if (ret)
		return cli_ut_error(sh);
	sh->changed = true;
	cli_info(sh, "Deleted ALUA group %s.", a->v[0]);
	return 0;
}

const struct command cli_cmds_storage[] = {
	{ "create", T(N_PLUGIN), "fileio",
	  SIG(2, "name", "file_or_dev", "size", "write_back", "sparse", "wwn"),
	  c_fileio_create,
	  "Create a fileio storage object on a file (made when missing:\n"
	  "sparse unless sparse=false; size N[k|m|g|t][b], 1024-based) or a\n"
	  "block device. write_back=true by default." },
	{ "create", T(N_PLUGIN), "block",
	  SIG(2, "name", "dev", "readonly", "wwn"), c_block_create,
	  "Create a block storage object on a block device." },
	{ "create", T(N_PLUGIN), "ramdisk",
	  SIG(2, "name", "size", "nullio", "wwn"), c_ramdisk_create,
	  "Create a ramdisk storage object of size N[k|m|g|t][b]; nullio\n"
	  "discards writes and reads zeroes." },
	{ "create", T(N_PLUGIN), "pscsi", SIG(2, "name", "dev"),
	  c_pscsi_create, "Create a pscsi storage object on a SCSI device." },
	{ "create", T(N_PLUGIN), "user:rbd",
	  SIG(1, "name", "size", "cfgstring", "wwn", "create_image"),
	  c_rbd_create,
	  "Create a Ceph RBD storage object: cfgstring=POOL/IMAGE[;conf=PATH]\n"
	  "[;id=USER][;osd_op_timeout=N][;ha=1][;pr=cluster]. size defaults\n"
	  "to the image's; create_image=true creates a missing image of size;\n"
	  "ha=1: one of several gateways, ALUA states from the image's lock;\n"
	  "pr=cluster: persistent reservations shared by the gateways\n"
	  "(docs/rbd.md)." },
	{ "delete", T(N_PLUGIN), NULL, SIG(1, "name"), c_so_delete,
	  "Delete a storage object (refused while a LUN uses it)." },
	{ "create", T(N_ALUA), NULL, SIG(2, "name", "tag"), c_alua_create,
	  "Create an ALUA target port group of this storage object, with\n"
	  "the group id tag (1-65535). LUNs join it with\n"
	  "set alua alua_tg_pt_gp_name=NAME on the LUN." },
	{ "delete", T(N_ALUA), NULL, SIG(1, "name"), c_alua_delete,
	  "Delete an ALUA target port group (refused while LUNs are in it)." },
	{ "resize", T(N_SO), NULL, SIG(0, "size", "force"), c_so_resize,
	  "Resize the storage object live: size N[k|m|g|t][b]; without a\n"
	  "size a block device's (or file's) current size is taken. Every\n"
	  "initiator is told (CAPACITY DATA HAS CHANGED). Shrinking drops the\n"
	  "data past the new end and needs force=true." },
	{ NULL, 0, NULL, SIG(0, NULL), NULL, NULL }
};
