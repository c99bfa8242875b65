/* CHAP credentials (RFC 7143 §12.1.3, RFC 1994): the four fields of a TPG,
 * a node ACL and discovery, as one table that the RPC methods, saveconfig,
 * restore and describe read. */
#ifndef UT_CONTROL_AUTH_H
#define UT_CONTROL_AUTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "iscsi/target.h"

struct ctl_auth_field {
	const char *name;	/* LIO's: saved with a prefix (chap_,
				   discovery_) */
	size_t off;		/* into struct iscsi_auth */
	bool secret;
	const char *desc;
};

#define CTL_AUTH_FIELDS 4
extern const struct ctl_auth_field ctl_auth_fields[CTL_AUTH_FIELDS];

/* Each PREFIX+name member of o that is there into a; all or nothing: on
 * error a is unchanged and the return is -EINVAL (not a string) or
 * -E2BIG (ISCSI_SECRET_MAX - 1 bytes at most), with a message. */
int ctl_auth_from_json(json_t *o, const char *prefix, struct iscsi_auth *a,
		       char *err, size_t errlen);
/* PREFIX+name of every field into o; skip_empty leaves unset ones out
 * (saveconfig.json, as rtslib-fb's dump). */
void ctl_auth_to_json(json_t *o, const char *prefix,
		      const struct iscsi_auth *a, bool skip_empty);
/* describe kind=auth */
json_t *ctl_auth_describe(void);

#endif
