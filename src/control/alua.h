/* ALUA target port groups of storage objects in LIO's words (alua.c). */
#ifndef UT_CONTROL_ALUA_H
#define UT_CONTROL_ALUA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "scsi/scsi.h"

/* One group as saveconfig.json's alua_tpgs holds it (LIO's keys). */
json_t *ctl_alua_gp_json(struct scsi_lu *lu, struct scsi_alua_gp *gp);
/* Every group of the LU, by id. */
json_t *ctl_alua_json(struct scsi_lu *lu);
/* The describe table: name, description, ro. */
json_t *ctl_alua_describe(void);
/* Applies attrs (LIO names) to gp, all checked first: -errno and err when
 * refused, nothing changed. restoring: a saved group's "name" is skipped
 * and the saved status kept. A new state raises ASYMMETRIC ACCESS STATE
 * CHANGED on the LU's nexuses. */
int ctl_alua_set(struct scsi_lu *lu, struct scsi_alua_gp *gp, json_t *attrs,
		 bool restoring, char *err, size_t errlen);
/* Restores a storage object's alua_tpgs: creates the groups it lacks,
 * sets each one's attributes. Problems go to errors (if not NULL) as
 * "WHAT: ..., skipped"; returns how many. */
int ctl_alua_restore(struct scsi_lu *lu, json_t *groups, json_t *errors,
		     const char *what);

#endif
