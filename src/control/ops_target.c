/* Target methods (LIO: /iscsi/IQN). */
#include <ctype.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "control/ops_int.h"
#include "iscsi/mgmt.h"

static void default_iqn(char *out, size_t n)
{
	char host[256] = "localhost", h2[128], arch[32];
	struct utsname u;
	uint8_t r[6];
	size_t i, j = 0;

	gethostname(host, sizeof(host) - 1);
	for (i = 0; host[i] && j < sizeof(h2) - 1; i++)
		if (isalnum((unsigned char)host[i]) || host[i] == '.' ||
		    host[i] == '-')
			h2[j++] = (char)tolower((unsigned char)host[i]);
	h2[j] = 0;
	j = 0;
	arch[0] = 0;
	if (uname(&u) == 0)
		for (i = 0; u.machine[i] && j < sizeof(arch) - 1; i++)
			if (isalnum((unsigned char)u.machine[i]))
				arch[j++] = (char)tolower((unsigned char)u.machine[i]);
	arch[j] = 0;
	while (getrandom(r, sizeof(r), 0) != sizeof(r))
		;
	/* the host part is bounded so the name stays within 223 bytes */
	snprintf(out, n,
		 "iqn.2003-01.org.linux-iscsi.%.120s.%.20s:sn.%02x%02x%02x%02x%02x%02x",
		 h2[0] ? h2 : "localhost", arch[0] ? arch : "unknown", r[0], r[1],
		 r[2], r[3], r[4], r[5]);
}

json_t *m_target_create(json_t *p, struct rpc_error *e)
{
	bool bad = false;
	const char *wwn = ops_p_str(p, "wwn", false, e, &bad);
	char gen[ISCSI_NAME_MAX], norm[ISCSI_NAME_MAX], err[256];

	if (bad)
		return NULL;
	if (!wwn || !wwn[0]) {
		default_iqn(gen, sizeof(gen));
		wwn = gen;
	}
	/* stored in lower case, as rtslib normalises (RFC 3722 §3) */
	if (ctl_wwn_normalize(wwn, norm, sizeof(norm), err, sizeof(err)))
		return ops_fail(e, RPC_REFUSED, "%s", err);
	wwn = norm;
	if (iscsi_target_find(wwn))
		return ops_fail(e, RPC_EXISTS, "Target %s already exists", wwn);
	if (!iscsi_target_new(wwn))
		return ops_fail(e, RPC_REFUSED, "out of memory");
	return json_pack("{s:s}", "wwn", wwn);
}

json_t *m_target_delete(json_t *p, struct rpc_error *e)
{
	struct iscsi_target *t = ops_get_target(p, e);
	char wwn[ISCSI_NAME_MAX];

	if (!t)
		return NULL;
	snprintf(wwn, sizeof(wwn), "%s", t->wwn);
	iscsi_target_free(t);
	iscsi_sessions_refresh(wwn, -1);
	return json_object();
}
