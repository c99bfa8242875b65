/* Live-session management for the control layer. */
#ifndef UT_ISCSI_MGMT_H
#define UT_ISCSI_MGMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iscsi/params.h"
#include "iscsi/target.h"
#include "scsi/scsi.h"

struct io_loop;

/* Identity of a live session: fixed at login, safe to read anywhere. */
struct iscsi_sess_ref {
	uint16_t tsih;
	struct io_loop *loop;
	bool discovery;
	uint16_t tpgt;
	uint16_t cid;
	uint8_t isid[6];
	char initiator[ISCSI_NAME_MAX];
	char alias[ISCSI_PARAM_VALUE_MAX];
	char target[ISCSI_NAME_MAX];
	char peer[64];
	char local[64];
	bool authenticated;
	struct iscsi_sess_params params;
	/* counters (RFC 4544 iscsiSsnStatsTable), a snapshot */
	uint64_t cmd_pdus, rsp_pdus, tx_data_octets, rx_data_octets;
	uint64_t digest_errors, tmf;
	struct scsi_lu_stats io; /* the nexus' SCSI counters (scsi.h) */
};

/* Logins by result (RFC 4544 iscsiTgtLoginStatsTable). */
struct iscsi_login_counts {
	uint64_t accepts;            /* iscsiTgtLoginAccepts */
	uint64_t authenticate_fails; /* iscsiTgtLoginAuthenticateFails */
	uint64_t authorize_fails;    /* iscsiTgtLoginAuthorizeFails */
	uint64_t not_found;          /* status 0203 */
	uint64_t other_fails;        /* iscsiTgtLoginOtherFails */
};

/* Per-target login / logout counters (RFC 4544 iscsiTgtLoginStatsTable,
 * iscsiTgtLogoutStatsTable), kept across sessions. Logins refused before
 * a target was named or for a target that does not exist, and discovery
 * sessions, count under target "" (so names an initiator invents cannot
 * grow the table). */
struct iscsi_tgt_stats {
	char target[ISCSI_NAME_MAX];
	struct iscsi_login_counts login;
	uint64_t logout_normals;           /* iscsiTgtLogoutNormals */
	uint64_t logout_others;            /* iscsiTgtLogoutOthers */
	uint64_t digest_errors;            /* iscsiInstSsnDigestErrors by target */
	uint64_t session_failures;         /* iscsiInstSsnFailures by target */
};

/* Per network portal (RFC 7143 §4.4: IP address and TCP port) the
 * initiator reached — the specific address when it came in through a
 * wildcard portal. The table is bounded (ISCSI_PORTAL_STATS_MAX): past it,
 * logins count under portal "other". */
#define ISCSI_PORTAL_STATS_MAX 256
struct iscsi_portal_stats {
	char portal[80]; /* "127.0.0.1:3260", "[::1]:3260" */
	struct iscsi_login_counts login;
};

/* Login status (RFC 7143 §11.13.5) of a finished login, through portal
 * (NULL: unknown). */
void iscsi_stats_login(const char *target, const char *portal, bool discovery,
		       uint16_t status);
void iscsi_stats_logout(const char *target, bool normal);
void iscsi_stats_digest_error(const char *target);
void iscsi_stats_session_failure(const char *target);
size_t iscsi_stats_targets(struct iscsi_tgt_stats *out, size_t max);
size_t iscsi_stats_portals(struct iscsi_portal_stats *out, size_t max);

/* Copies up to max sessions (after skipping `skip`); returns the count. */
size_t iscsi_session_refs(struct iscsi_sess_ref *out, size_t max, size_t skip);

/* Rebuild the LUN maps of the sessions of target (NULL: all) / tpgt (-1:
 * all) from the configuration; sessions that lost access end. */
void iscsi_sessions_refresh(const char *target, int tpgt);
/* End the matching sessions (initiator NULL: any). */
void iscsi_sessions_close(const char *target, int tpgt, const char *initiator);

#endif
