/* Network portal methods (LIO: /iscsi/IQN/tpgN/portals/IP:PORT). */
#include <arpa/inet.h>
#include <string.h>

#include "control/ops_int.h"
#include "iscsi/target.h"

json_t *m_portal_create(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = ops_get_tpg(p, e);
	bool bad = false;
	const char *ip;
	long long port = 3260;
	struct iscsi_portal *pt;
	int rc;
	char err[512];

	if (!tpg)
		return NULL;
	ip = ops_p_str(p, "ip_address", false, e, &bad);
	ops_p_int(p, "port", &port, false, e, &bad);
	if (bad)
		return NULL;
	if (!ip || !ip[0])
		ip = "0.0.0.0";
	if (port < 1 || port > 65535)
		return ops_fail(e, RPC_REFUSED, "Invalid port %lld (1-65535)", port);
	if ((rc = iscsi_portal_new(tpg, ip, (uint16_t)port, &pt, err, sizeof(err))))
		return ops_fail(e, ops_rpc_code(rc), "%s", err);
	return json_pack("{s:s, s:i}", "ip_address", pt->ip, "port", (int)port);
}

static bool parse_ip(const char *ip, unsigned char out[17])
{
	char buf[64];
	size_t n = strlen(ip);

	if (n >= 2 && ip[0] == '[' && ip[n - 1] == ']' && n - 2 < sizeof(buf)) {
		memcpy(buf, ip + 1, n - 2);
		buf[n - 2] = 0;
		ip = buf;
	}
	memset(out, 0, 17);
	if (inet_pton(AF_INET, ip, out + 1) == 1) {
		out[0] = 4;
		return true;
	}
	if (inet_pton(AF_INET6, ip, out + 1) == 1) {
		out[0] = 6;
		return true;
	}
	return false;
}

static bool same_addr(const char *a, const char *b)
{
	unsigned char x[17], y[17];

	if (!parse_ip(a, x) || !parse_ip(b, y))
		return !strcmp(a, b);
	return !memcmp(x, y, sizeof(x));
}

json_t *m_portal_delete(json_t *p, struct rpc_error *e)
{
	struct iscsi_tpg *tpg = ops_get_tpg(p, e);
	bool bad = false;
	const char *ip;
	long long port = 3260;
	struct iscsi_portal *pt;

	if (!tpg)
		return NULL;
	ip = ops_p_str(p, "ip_address", true, e, &bad);
	ops_p_int(p, "port", &port, false, e, &bad);
	if (bad)
		return NULL;
	list_for_each_entry(pt, &tpg->portals, link) {
		/* "::1", "[::1]" and "0::1" name one portal, as in create */
		if (pt->port == port && same_addr(pt->ip, ip)) {
			iscsi_portal_free(pt);
			return json_object();
		}
	}
	return ops_fail(e, RPC_NOT_FOUND, "No such NetworkPortal in configfs: %s:%lld",
		    ip, port);
}
