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

/* allowed_networks (issue 21) as JSON: a list of CIDR strings. from_json
 * fills *out only when every entry parses; otherwise err names the bad one
 * and -1 is returned. to_json gives the canonical forms. */
struct ut_netlist;
typedef struct json_t json_t;
int ctl_netlist_from_json(json_t *arr, struct ut_netlist *out, char *err,
			  size_t errlen);
json_t *ctl_netlist_to_json(const struct ut_netlist *l);

const struct ctl_attr *ctl_attr_find(const struct ctl_attr *tab,
				     const char *name);
uint32_t ctl_attr_get(const struct ctl_attr *a, const void *obj);
/* Checks bounds and read-only; message in err on failure (-EINVAL/-EPERM).
 * allow_ro lets a config restore set values the user may not. */
int ctl_attr_set(const struct ctl_attr *a, void *obj, long long v,
		 bool allow_ro, char *err, size_t errlen);

#endif
