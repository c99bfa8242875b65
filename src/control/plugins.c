/* What the control layer knows of each backstore plugin, in one table: its
 * names (utargetd's and the one LIO's saveconfig.json uses), what creating
 * one needs, and the fields it saves and restores beside the common ones
 * (name, plugin, wwn, attributes, alua_tpgs). saveconfig, restore, the RPC
 * methods and the change report read this table; none of them branches on
 * a plugin's name. (The backstore layer's own ops table, backstore.h, does
 * the I/O; it knows nothing of JSON.) */
#include "control/plugins.h"

#include <stdio.h>
#include <string.h>

#include "backstore/backstore.h"
#include "util/human.h"

static void save_fileio(const struct ctl_so *so, json_t *o)
{
	json_object_set_new(o, "dev", json_string(so->dev));
	json_object_set_new(o, "size", json_integer((json_int_t)so->size));
	json_object_set_new(o, "write_back", json_boolean(so->lu->bs->write_back));
	json_object_set_new(o, "aio", json_false());
}

static void save_block(const struct ctl_so *so, json_t *o)
{
	/* no size: the device has one, and rtslib-fb's restore hands every
	 * saved key to BlockStorageObject(), which takes none */
	json_object_set_new(o, "dev", json_string(so->dev));
	json_object_set_new(o, "readonly", json_boolean(so->readonly));
	json_object_set_new(o, "write_back", json_boolean(so->lu->bs->write_back));
}

static void save_ramdisk(const struct ctl_so *so, json_t *o)
{
	json_object_set_new(o, "size", json_integer((json_int_t)so->size));
	if (so->nullio)
		json_object_set_new(o, "nullio", json_true());
}

static void save_pscsi(const struct ctl_so *so, json_t *o)
{
	json_object_set_new(o, "dev", json_string(so->dev));
}

static void save_rbd(const struct ctl_so *so, json_t *o)
{
	/* rtslib-fb UserBackedStorageObject.dump: config, size (the image's
	 * current size: it follows rbd resize) */
	json_object_set_new(o, "config", json_string(so->dev));
	json_object_set_new(o, "size", json_integer((json_int_t)
		__atomic_load_n(&so->lu->bs->size, __ATOMIC_RELAXED)));
}

/* LIO keeps tcmu's objects as plugin "user" with config "HANDLER/..."; rbd
 * is the handler served here. */
static int load_rbd(json_t *j, struct ctl_so_spec *spec, char *err,
		    size_t errlen)
{
	const char *c = json_string_value(json_object_get(j, "config"));

	if (!c || strncmp(c, "rbd/", 4) || !c[4]) {
		snprintf(err, errlen, "config '%s' is not an rbd one "
			 "(rbd/POOL/IMAGE...)", c ? c : "");
		return -1;
	}
	spec->dev = c;
	return 0;
}

/* `ls` summaries, in targetcli-fb's words: "DEV (SIZE) write-back",
 * "DEV (SIZE) ro write-thru", "nullio (SIZE)", "CONFIG (SIZE)". */
static const char *cache_word(const struct ctl_so *so)
{
	return so->lu->bs->write_back ? "write-back" : "write-thru";
}

static void sum_fileio(const struct ctl_so *so, char *buf, size_t len)
{
	char sz[32];

	ut_bytes_to_human(so->size, sz, sizeof(sz));
	snprintf(buf, len, "%s (%s) %s", so->dev, sz, cache_word(so));
}

static void sum_block(const struct ctl_so *so, char *buf, size_t len)
{
	char sz[32];

	ut_bytes_to_human(so->size, sz, sizeof(sz));
	snprintf(buf, len, "%s (%s) %s%s", so->dev, sz,
		 so->readonly ? "ro " : "", cache_word(so));
}

static void sum_ramdisk(const struct ctl_so *so, char *buf, size_t len)
{
	char sz[32];

	ut_bytes_to_human(so->size, sz, sizeof(sz));
	snprintf(buf, len, "%s(%s)", so->nullio ? "nullio " : "", sz);
}

static void sum_pscsi(const struct ctl_so *so, char *buf, size_t len)
{
	snprintf(buf, len, "%s", so->dev);
}

static void sum_rbd(const struct ctl_so *so, char *buf, size_t len)
{
	char sz[32];

	ut_bytes_to_human(__atomic_load_n(&so->lu->bs->size, __ATOMIC_RELAXED),
			  sz, sizeof(sz));
	snprintf(buf, len, "%s (%s)", so->dev, sz);
}

static const struct ctl_plugin plugins[] = {
	/* name, LIO's name, needs, live_size, write_back default, save, load,
	 * summary */
	{ "fileio", "fileio", CTL_NEEDS_DEV, false, true, save_fileio, NULL,
	  sum_fileio },
	{ "block", "block", CTL_NEEDS_DEV, true, false, save_block, NULL,
	  sum_block },
	{ "ramdisk", "ramdisk", CTL_NEEDS_SIZE, false, false, save_ramdisk,
	  NULL, sum_ramdisk },
	{ "pscsi", "pscsi", CTL_NEEDS_DEV, false, false, save_pscsi, NULL,
	  sum_pscsi },
	{ CTL_RBD_PLUGIN, "user", CTL_NEEDS_CONFIG, false, false, save_rbd,
	  load_rbd, sum_rbd },
};

const struct ctl_plugin *ctl_plugin_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof(plugins) / sizeof(plugins[0]); i++)
		if (!strcmp(plugins[i].name, name) || !strcmp(plugins[i].lio, name))
			return &plugins[i];
	return NULL;
}

const char *ctl_plugin_lio_name(const char *name)
{
	const struct ctl_plugin *p = ctl_plugin_find(name);

	return p ? p->lio : name;
}

const char *ctl_plugin_tree_name(const char *name)
{
	const struct ctl_plugin *p = ctl_plugin_find(name);

	return p ? p->name : name;
}
