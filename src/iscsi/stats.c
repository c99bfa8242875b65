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

void iscsi_stats_login(const char *target, bool discovery, uint16_t status)
{
	struct iscsi_tgt_stats *e;

	pthread_mutex_lock(&st_lock);
	/* a target that does not exist is not given an entry of its own */
	e = entry(discovery || status == ISCSI_LOGIN_NOT_FOUND ? "" : target);
	switch (status) {
	case ISCSI_LOGIN_OK:
		e->login_accepts++;
		break;
	case ISCSI_LOGIN_AUTH_FAILED:
		e->login_authenticate_fails++;
		break;
	case ISCSI_LOGIN_FORBIDDEN:
		e->login_authorize_fails++;
		break;
	case ISCSI_LOGIN_NOT_FOUND:
	case ISCSI_LOGIN_TARGET_REMOVED:
		e->login_not_found++;
		break;
	default:
		e->login_other_fails++;
	}
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
