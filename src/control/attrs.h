/* Typed attribute tables: name, where the value lives, bounds, default,
 * read-only flag and description. get, set, saveconfig and help all read
 * the same table (Redis config.c habit). */
#ifndef UT_CONTROL_ATTRS_H
#define UT_CONTROL_ATTRS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ctl_attr_type { CTL_U32, CTL_BOOL };

struct ctl_attr {
	const char *name;
	enum ctl_attr_type type;
	size_t off;
	uint32_t min, max;
	bool ro;
	bool honoured; /* false: stored and shown, not yet acted upon */
	const char *desc;
};

extern const struct ctl_attr ctl_tpg_attrs[];   /* struct iscsi_tpg_attrs */
extern const struct ctl_attr ctl_acl_attrs[];   /* struct iscsi_acl_attrs */
extern const struct ctl_attr ctl_so_attrs[];    /* struct scsi_lu_attrs */

const struct ctl_attr *ctl_attr_find(const struct ctl_attr *tab,
				     const char *name);
uint32_t ctl_attr_get(const struct ctl_attr *a, const void *obj);
/* Checks bounds and read-only; message in err on failure (-EINVAL/-EPERM).
 * allow_ro lets a config restore set values the user may not. */
int ctl_attr_set(const struct ctl_attr *a, void *obj, long long v,
		 bool allow_ro, char *err, size_t errlen);

#endif
