/* The configuration model the control layer owns: storage objects (the
 * /backstores tree) here; targets, TPGs, LUNs, portals and ACLs live in
 * iscsi/target.h. All changes run on the control thread under
 * iscsi_fabric.lock. */
#ifndef UT_CONTROL_MODEL_H
#define UT_CONTROL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "backstore/backstore.h"
#include "scsi/scsi.h"
#include "util/list.h"

struct ctl_so {
	struct list_head link;
	char name[64];
	char plugin[16];
	char dev[4096];
	char wwn[64];
	uint64_t size;
	bool write_back;
	bool readonly;
	bool nullio;
	bool sparse;
	struct scsi_lu *lu;
};


extern struct list_head ctl_sos;

struct ctl_so_spec {
	const char *plugin, *name, *dev, *wwn;
	uint64_t size;
	bool write_back, readonly, nullio, sparse;
	bool create; /* user:rbd: create the image when it does not exist */
	uint32_t block_size; /* 0 = default */
};

/* user:rbd objects: LIO keeps them as plugin "user" with config
 * "rbd/POOL/IMAGE[;opt=val...]" (tcmu's handler name in front of its
 * cfgstring); the API and the tree call the plugin "user:rbd" as
 * targetcli's /backstores/user:rbd does, and so->dev holds the config. */
#define CTL_RBD_PLUGIN "user:rbd"
/* "/backstores/<plugin as LIO saves it>/<name>": what a LUN records. */
void ctl_so_path(const struct ctl_so *so, char *out, size_t len);

struct ctl_so *ctl_so_find(const char *plugin, const char *name);
/* Validates (names, duplicate, file already used by another object),
 * opens the backstore and creates the LU. */
int ctl_so_create(const struct ctl_so_spec *spec, struct ctl_so **out,
		  char *err, size_t errlen);
void ctl_so_free(struct ctl_so *so);
/* Generates a UUID (v4) as LIO does for unit serials. */
void ctl_gen_uuid(char out[37]);

/* Empties the whole configuration: the daemon's shutdown and the first
 * half of clearconfig. */
void ctl_config_clear(void);

/* Restores a saveconfig.json document on top of what exists (caller holds
 * iscsi_fabric.lock). Problems are per object: each is appended to errors
 * (if not NULL) as "<object>: <why>, skipped" and the rest loads; with
 * abort_on_error any problem takes back everything this call created. */
int ctl_config_restore(json_t *root, bool abort_on_error, json_t *errors,
		       char *err, size_t errlen);
/* The same from a file; -ENOENT when it does not exist. */
/* Re-read `path` and apply the difference (control/reload.c): unchanged
 * storage objects and targets, and their sessions, stay; *kept counts them.
 * errors gets what the file asked for and could not be done. Takes the
 * fabric lock. */
int ctl_config_reload(const char *path, json_t *errors, unsigned *kept,
		      char *err, size_t errlen);
/* The same from a document already parsed, caller holding the lock (the
 * gateway group's apply, control/group.c). A kept target for which
 * stale() says true is re-created all the same. */
struct iscsi_target;
int ctl_config_reload_locked(json_t *root, const char *what, json_t *errors,
			     unsigned *kept,
			     bool (*stale)(const struct iscsi_target *),
			     char *err, size_t errlen);
int ctl_config_load_file(const char *path, bool abort_on_error,
			 json_t *errors, char *err, size_t errlen);

/* iSCSI names (wwn.c): ctl_wwn_normalize checks WWN against RFC 7143
 * §4.2.7 / RFC 3722 / RFC 3980 and writes its lower-case form to OUT;
 * -EINVAL with the broken rule in ERR. */
int ctl_wwn_normalize(const char *wwn, char *out, size_t outlen, char *err,
		      size_t errlen);

#endif
