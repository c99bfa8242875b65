/* pscsi: LIO's SCSI passthrough (SG_IO to a host device). Registered so
 * that configurations naming it get a clear error rather than "unknown
 * plugin"; passthrough itself is later work. */
#include "backstore/bs_internal.h"

#include <errno.h>

static int pscsi_open(struct bs_dev *dev, const struct bs_config *cfg,
		      char *err, size_t errlen)
{
	bs_seterr(err, errlen,
		  "pscsi passthrough is not supported on this system");
	return -EOPNOTSUPP;
}

static void pscsi_close(struct bs_dev *dev)
{
}

static void pscsi_submit(struct bs_dev *dev, struct bs_io *io)
{
	/* Unreachable: open never succeeds. */
	io->done(io, -EOPNOTSUPP);
}

const struct bs_ops bs_pscsi_ops = {
	.plugin = "pscsi",
	.open = pscsi_open,
	.close = pscsi_close,
	.submit = pscsi_submit,
};
