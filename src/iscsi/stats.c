/* Per-target login / logout / digest counters (RFC 4544 iscsiTgtLogin-
 * StatsTable, iscsiTgtLogoutStatsTable, iscsiInstSsnErrorStatsTable).
 * Login and logout are not the data path: a mutex is fine here. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "iscsi/mgmt.h"
#include "iscsi/pdu.h"

#define TGT_STATS_MAX 256

static pthread_mutex_t st_lock = PTHREAD_MUTEX_INITIALIZER;
static struct iscsi_tgt_stats st_tab[TGT_STATS_MAX];
static size_t st_n;
static struct iscsi_portal_stats pt_tab[ISCSI_PORTAL_STATS_MAX];
static size_t pt_n;

/* Entry for target (NULL or unknown: ""); called under st_lock. When the
 * table is full, counts go to "". */
static struct iscsi_tgt_stats *entry(const char *target)
{
	size_t i;

	if (!target)
		target = "";
	for (i = 0; i < st_n; i++)
		if (!strcmp(st_tab[i].target, target))
			return &st_tab[i];
	if (st_n == TGT_STATS_MAX)
		return target[0] ? entry("") : &st_tab[0];
	memset(&st_tab[st_n], 0, sizeof(st_tab[0]));
	snprintf(st_tab[st_n].target, sizeof(st_tab[0].target), "%s", target);
	return &st_tab[st_n++];
}

/* Portal entry; called under st_lock. The last slot is "other". */
static struct iscsi_portal_stats *portal_entry(const char *portal)
{
	size_t i;

	if (!portal || !portal[0])
		portal = "other";
	for (i = 0; i < pt_n; i++)
		if (!strcmp(pt_tab[i].portal, portal))
			return &pt_tab[i];
	if (pt_n == ISCSI_PORTAL_STATS_MAX - 1 && strcmp(portal, "other"))
		return portal_entry("other");
	memset(&pt_tab[pt_n], 0, sizeof(pt_tab[0]));
	snprintf(pt_tab[pt_n].portal, sizeof(pt_tab[0].portal), "%s", portal);
	return &pt_tab[pt_n++];
}

static void count(struct iscsi_login_counts *lc, uint16_t status)
{
	switch (status) {
	case ISCSI_LOGIN_OK:
		lc->accepts++;
		break;
	case ISCSI_LOGIN_AUTH_FAILED:
		lc->authenticate_fails++;
		break;
	case ISCSI_LOGIN_FORBIDDEN:
		lc->authorize_fails++;
		break;
	case ISCSI_LOGIN_NOT_FOUND:
	case ISCSI_LOGIN_TARGET_REMOVED:
		lc->not_found++;
		break;
	default:
		lc->other_fails++;
	}
}

void iscsi_stats_login(const char *target, const char *portal, bool discovery,
		       uint16_t status)
{
	pthread_mutex_lock(&st_lock);
	/* a target that does not exist is not given an entry of its own */
	count(&entry(discovery || status == ISCSI_LOGIN_NOT_FOUND ? "" :
							target)->login,
	      status);
	count(&portal_entry(portal)->login, status);
	pthread_mutex_unlock(&st_lock);
}

void iscsi_stats_logout(const char *target, bool normal)
{
	pthread_mutex_lock(&st_lock);
	if (normal)
		entry(target)->logout_normals++;
	else
		entry(target)->logout_others++;
	pthread_mutex_unlock(&st_lock);
}

void iscsi_stats_digest_error(const char *target)
{
	pthread_mutex_lock(&st_lock);
	entry(target)->digest_errors++;
	pthread_mutex_unlock(&st_lock);
}

void iscsi_stats_session_failure(const char *target)
{
	pthread_mutex_lock(&st_lock);
	entry(target)->session_failures++;
	pthread_mutex_unlock(&st_lock);
}

size_t iscsi_stats_targets(struct iscsi_tgt_stats *out, size_t max)
{
	size_t n;

	pthread_mutex_lock(&st_lock);
	n = st_n < max ? st_n : max;
	memcpy(out, st_tab, n * sizeof(*out));
	pthread_mutex_unlock(&st_lock);
	return n;
}

size_t iscsi_stats_portals(struct iscsi_portal_stats *out, size_t max)
{
	size_t n;

	pthread_mutex_lock(&st_lock);
	n = pt_n < max ? pt_n : max;
	memcpy(out, pt_tab, n * sizeof(*out));
	pthread_mutex_unlock(&st_lock);
	return n;
}
