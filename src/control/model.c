/* Storage objects and whole-configuration operations. */
#include "control/model.h"
#include "control/plugins.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "iscsi/target.h"
#include "util/log.h"

struct list_head ctl_sos = LIST_HEAD_INIT(ctl_sos);

void ctl_so_path(const struct ctl_so *so, char *out, size_t len)
{
	snprintf(out, len, "/backstores/%s/%s", ctl_plugin_lio_name(so->plugin),
		 so->name);
}

static bool plugin_matches(const char *have, const char *want)
{
	/* LIO's saveconfig names LUN objects /backstores/user/NAME whatever
	 * the tcmu handler: either name finds the object (plugins.c). */
	return !strcmp(have, ctl_plugin_tree_name(want));
}

struct ctl_so *ctl_so_find(const char *plugin, const char *name)
{
	struct ctl_so *so;

	list_for_each_entry(so, &ctl_sos, link)
		if ((!plugin || plugin_matches(so->plugin, plugin)) &&
		    !strcmp(so->name, name))
			return so;
	return NULL;
}

void ctl_gen_uuid(char out[37])
{
	uint8_t b[16];
	size_t got = 0;

	while (got < sizeof(b)) {
		ssize_t n = getrandom(b + got, sizeof(b) - got, 0);

		if (n > 0)
			got += (size_t)n;
	}
	b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
	b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);
}

static bool valid_name(const char *n)
{
	if (!n || !n[0] || strlen(n) >= 64)
		return false;
	for (; *n; n++)
		if (*n == '/' || *n <= ' ')
			return false;
	return true;
}

int ctl_so_create(const struct ctl_so_spec *spec, struct ctl_so **out,
		  char *err, size_t errlen)
{
	struct bs_config cfg = { 0 };
	struct scsi_lu_attrs attrs;
	struct bs_dev *bs = NULL;
	struct ctl_so *so, *o;
	char uuid[37];
	int rc;

	*out = NULL;
	if (!bs_find(spec->plugin)) {
		snprintf(err, errlen, "Unknown backstore type %s", spec->plugin);
		return -EINVAL;
	}
	if (!valid_name(spec->name)) {
		snprintf(err, errlen, "Invalid storage object name '%s'",
			 spec->name ? spec->name : "");
		return -EINVAL;
	}
	if (ctl_so_find(NULL, spec->name)) {
		snprintf(err, errlen, "Storage object %s already exists",
			 spec->name);
		return -EEXIST;
	}
	if (spec->dev && spec->dev[0]) {
		char want[4096], have[4096];

		/* LIO refuses two storage objects on one file or device. */
		if (!realpath(spec->dev, want))
			snprintf(want, sizeof(want), "%s", spec->dev);
		list_for_each_entry(o, &ctl_sos, link) {
			if (!o->dev[0])
				continue;
			if (!realpath(o->dev, have))
				snprintf(have, sizeof(have), "%s", o->dev);
			if (!strcmp(want, have)) {
				snprintf(err, errlen,
					 "Storage object %s/%s already uses %s",
					 o->plugin, o->name, spec->dev);
				return -EBUSY;
			}
		}
	}
	cfg.name = spec->name;
	cfg.dev = spec->dev;
	cfg.size = spec->size;
	cfg.write_back = spec->write_back;
	cfg.readonly = spec->readonly;
	cfg.nullio = spec->nullio;
	cfg.sparse = spec->sparse;
	cfg.create = spec->create;
	cfg.block_size = spec->block_size;
	rc = bs_open(spec->plugin, &cfg, &bs, err, errlen);
	/* -EEXIST means "a storage object of that name exists" to the
	 * callers (the RPC layer answers it with its "exists" code); an
	 * EEXIST from the plugin's own system calls is something else. */
	if (rc)
		return rc == -EEXIST ? -EBUSY : rc;
	so = calloc(1, sizeof(*so));
	if (!so) {
		bs_close(bs);
		return -ENOMEM;
	}
	snprintf(so->name, sizeof(so->name), "%s", spec->name);
	snprintf(so->plugin, sizeof(so->plugin), "%s", spec->plugin);
	snprintf(so->dev, sizeof(so->dev), "%s", spec->dev ? spec->dev : "");
	if (spec->wwn && spec->wwn[0]) {
		snprintf(so->wwn, sizeof(so->wwn), "%s", spec->wwn);
	} else if (bs->ident_uuid[0]) {
		snprintf(so->wwn, sizeof(so->wwn), "%s", bs->ident_uuid);
	} else {
		ctl_gen_uuid(uuid);
		snprintf(so->wwn, sizeof(so->wwn), "%s", uuid);
	}
	so->size = bs->size;
	so->write_back = bs->write_back;
	so->readonly = bs->readonly;
	so->nullio = spec->nullio;
	so->sparse = spec->sparse;
	scsi_lu_attrs_default(&attrs, bs);
	if (spec->block_size)
		attrs.block_size = spec->block_size;
	so->lu = scsi_lu_create(bs, so->name, so->plugin, so->wwn, &attrs);
	if (!so->lu) {
		snprintf(err, errlen, "Could not create the logical unit for %s",
			 so->name);
		bs_close(bs);
		free(so);
		return -EINVAL;
	}
	list_add_tail(&so->link, &ctl_sos);
	*out = so;
	return 0;
}

void ctl_so_free(struct ctl_so *so)
{
	list_del(&so->link);
	scsi_lu_put(so->lu);
	free(so);
}

void ctl_config_clear(void)
{
	struct ctl_so *so, *n;

	iscsi_fabric_clear();
	list_for_each_entry_safe(so, n, &ctl_sos, link)
		ctl_so_free(so);
}
