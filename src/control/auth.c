/* The CHAP fields' one table (auth.h). */
#include "control/auth.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define F(n) #n, offsetof(struct iscsi_auth, n)

const struct ctl_auth_field ctl_auth_fields[CTL_AUTH_FIELDS] = {
	{ F(userid), false, "CHAP name the initiator must log in with "
	  "(empty: no CHAP credentials set)" },
	{ F(password), true, "CHAP secret the initiator must prove" },
	{ F(mutual_userid), false, "CHAP name the target answers with when "
	  "the initiator authenticates it (mutual CHAP)" },
	{ F(mutual_password), true, "CHAP secret the target proves in "
	  "mutual CHAP; must differ from password" },
};

static char *field(struct iscsi_auth *a, unsigned i)
{
	return (char *)a + ctl_auth_fields[i].off;
}

int ctl_auth_from_json(json_t *o, const char *prefix, struct iscsi_auth *a,
		       char *err, size_t errlen)
{
	struct iscsi_auth copy = *a;
	char key[64];

	for (unsigned i = 0; i < CTL_AUTH_FIELDS; i++) {
		json_t *v;

		snprintf(key, sizeof(key), "%s%s", prefix,
			 ctl_auth_fields[i].name);
		v = json_object_get(o, key);
		if (!v || json_is_null(v))
			continue;
		if (!json_is_string(v)) {
			snprintf(err, errlen, "%s must be a string", key);
			return -EINVAL;
		}
		if (strlen(json_string_value(v)) >= ISCSI_SECRET_MAX) {
			snprintf(err, errlen, "%s is longer than %d bytes", key,
				 ISCSI_SECRET_MAX - 1);
			return -E2BIG;
		}
		snprintf(field(&copy, i), ISCSI_SECRET_MAX, "%s",
			 json_string_value(v));
	}
	*a = copy;
	return 0;
}

void ctl_auth_to_json(json_t *o, const char *prefix,
		      const struct iscsi_auth *a, bool skip_empty)
{
	char key[64];

	for (unsigned i = 0; i < CTL_AUTH_FIELDS; i++) {
		const char *v = field((struct iscsi_auth *)a, i);

		if (skip_empty && !v[0])
			continue;
		snprintf(key, sizeof(key), "%s%s", prefix,
			 ctl_auth_fields[i].name);
		json_object_set_new(o, key, json_string(v));
	}
}

json_t *ctl_auth_describe(void)
{
	json_t *arr = json_array();

	for (unsigned i = 0; i < CTL_AUTH_FIELDS; i++)
		json_array_append_new(arr, json_pack(
			"{s:s, s:s, s:s, s:i, s:b, s:b, s:b, s:s}", "name",
			ctl_auth_fields[i].name, "type",
			ctl_auth_fields[i].secret ? "secret" : "string",
			"default", "", "max_length", ISCSI_SECRET_MAX - 1,
			"secret", ctl_auth_fields[i].secret, "ro", 0,
			"honoured", 1, "description", ctl_auth_fields[i].desc));
	return arr;
}
