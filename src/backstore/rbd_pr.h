/* user:rbd persistent reservations across gateways (rbd_pr.c): the state
 * object beside the image, its compare-and-swap updates, the watch that
 * keeps every gateway's cache fresh, and the lease on that cache. Private
 * to src/backstore/rbd*.c. */
#ifndef UT_BACKSTORE_RBD_PR_H
#define UT_BACKSTORE_RBD_PR_H

#include <stddef.h>
#include <stdint.h>

#include <rados/librados.h>

#include "backstore/backstore.h"

struct rbd_pr;

/* Creates the object utarget.pr.<image_id> if missing, watches it and
 * starts the lease thread; dev->pr_shared is set on success. lease_s: how
 * long a gateway may serve its cached copy without hearing from the OSD
 * (also the watch timeout the OSD applies). */
int rbd_pr_open(struct bs_dev *dev, rados_t cluster, rados_ioctx_t ioctx,
		const char *image_id, unsigned lease_s, struct rbd_pr **out,
		char *err, size_t errlen);
void rbd_pr_close(struct rbd_pr *p);

/* rbd.c: the device's rbd_pr (NULL without pr=cluster). */
struct rbd_pr *rbd_dev_pr(struct bs_dev *dev);

/* bs_ops.pr_load / pr_store / pr_attach for user:rbd */
int rbd_pr_load(struct bs_dev *dev, char **buf, size_t *len);
int rbd_pr_store(struct bs_dev *dev, uint64_t version, uint64_t new_version,
		 const char *buf, size_t len);
void rbd_pr_attach(struct bs_dev *dev,
		   int (*changed)(void *arg, const char *data, size_t len),
		   void *arg);

#endif
