/* Live-session management for the control layer. */
#ifndef UT_ISCSI_MGMT_H
#define UT_ISCSI_MGMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iscsi/params.h"
#include "iscsi/target.h"

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
};

/* Copies up to max sessions (after skipping `skip`); returns the count. */
size_t iscsi_session_refs(struct iscsi_sess_ref *out, size_t max, size_t skip);

/* Rebuild the LUN maps of the sessions of target (NULL: all) / tpgt (-1:
 * all) from the configuration; sessions that lost access end. */
void iscsi_sessions_refresh(const char *target, int tpgt);
/* End the matching sessions (initiator NULL: any). */
void iscsi_sessions_close(const char *target, int tpgt, const char *initiator);

#endif
