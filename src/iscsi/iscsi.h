/* What the layers above (control, daemon) use of the iSCSI layer. */
#ifndef UT_ISCSI_H
#define UT_ISCSI_H

#include <stdint.h>

#include "io/loop.h"
#include "iscsi/target.h"

/* Listening sockets are served by this (the control thread's) loop. */
void iscsi_listeners_set_loop(struct io_loop *l);
/* Closes every connection of the calling worker (shutdown). */
void iscsi_conn_close_all(void);
/* Graceful shutdown on the calling worker: ask every initiator to log out
 * (Asynchronous Message) and keep serving until it does. */
void iscsi_conn_drain_all(void);
/* Connections alive in the whole daemon. */
int iscsi_conn_count(void);

/* Tasks (SCSI commands) alive in the whole daemon. */
int iscsi_task_count(void);

/* Resource limits (utargetd -o NAME=VALUE; docs/reliability.md). Set
 * before workers start; read-only afterwards. */
struct iscsi_limits {
	unsigned max_sessions_per_target;  /* logins beyond: 0302 */
	unsigned max_connections_per_portal; /* accepted beyond: closed */
	uint64_t max_connection_buffers;   /* task buffer bytes per connection;
					    * beyond: TASK SET FULL */
};
extern struct iscsi_limits iscsi_limits;

/* Lets the SCSI core end other nexuses' tasks (resets, PREEMPT AND
 * ABORT); called once at start. */
void iscsi_install_abort_hook(void);

/* Frees the calling worker's caches of tasks, buffers and PDU entries. */
void iscsi_task_cache_drain(void);

#endif
