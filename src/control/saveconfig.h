#ifndef UT_CONTROL_SAVECONFIG_H
#define UT_CONTROL_SAVECONFIG_H

#include <jansson.h>
#include <stddef.h>

struct ctl_so;

/* The whole configuration in saveconfig.json form (caller holds the fabric
 * lock; caller owns the result). */
json_t *ctl_config_dump(void);
json_t *ctl_so_json(const struct ctl_so *so);
/* Atomic save with backups; bdir gets the backup directory. */
int ctl_config_save(const char *file, unsigned max_backups, char *bdir,
		    size_t bdirlen, char *err, size_t errlen);
/* {"added": [path...], "removed": [...], "changed": [...]} between two
 * saveconfig documents (either may be NULL: empty), in the tree's paths
 * (diff.c). */
json_t *ctl_config_diff(json_t *before, json_t *after);

#endif
