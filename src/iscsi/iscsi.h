/* What the layers above (control, daemon) use of the iSCSI layer. */
#ifndef UT_ISCSI_H
#define UT_ISCSI_H

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

/* Lets the SCSI core end other nexuses' tasks (resets, PREEMPT AND
 * ABORT); called once at start. */
void iscsi_install_abort_hook(void);

/* Frees the calling worker's cache of tasks and buffers. */
void iscsi_task_cache_drain(void);

#endif
