/* Gateway groups (issue 18, docs/gateway-group.md): the configuration of
 * several utargetd lives in one RADOS object, a saveconfig.json document
 * with a "gateway_group" section (version, which gateway serves which
 * TPG). Every gateway applies the document; a change made through any
 * gateway's control API is written back with compare-and-swap on the
 * version, and the others apply it live (watch / notify, and a periodic
 * check). Everything here runs on the control thread. */
#ifndef UT_CONTROL_GROUP_H
#define UT_CONTROL_GROUP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "control/rpc.h"
#include "io/loop.h"

/* -o group=POOL/OBJECT[;conf=PATH][;id=USER][;timeout=N] and
 * -o gateway=NAME: remembered and checked at ctl_group_start. */
int ctl_group_set_option(const char *name, const char *value, char *err,
			 size_t errlen);
bool ctl_group_configured(void);

/* Connects, reads the document and applies it; a group whose object does
 * not exist yet is created from config_file (this gateway then serves
 * every TPG in it). Watches the object and checks its version
 * periodically on loop. Takes the fabric lock. */
int ctl_group_start(struct io_loop *loop, const char *config_file, char *err,
		    size_t errlen);
void ctl_group_stop(void);
bool ctl_group_active(void);

/* Runs a configuration-changing method m with the group: the newest
 * document is applied first, then m, then the result is written with
 * compare-and-swap; a lost race applies the other change and runs m
 * again (a few times). A change refused locally, or one that cannot be
 * written, leaves the document and the running configuration as they
 * were. Caller holds the fabric lock. */
json_t *ctl_group_run(const struct rpc_method *m, json_t *params,
		      struct rpc_error *e);

/* SIGHUP in a group: read the document again (even at the same version). */
void ctl_group_resync(void);

/* RPC group.status (a read). */
json_t *m_group_status(json_t *p, struct rpc_error *e);

#endif
