/* I/O engine shared by fileio and block: every request goes through the
 * io_uring of the worker it was submitted on (io->loop), so a worker never
 * hands I/O to another thread (docs/architecture.md "Threads"). When there is
 * no loop, no ring, or no free SQE, the same request runs synchronously on
 * the calling thread; the unit tests and the control thread rely on that.
 *
 * State of an in-flight request lives in the bs_io itself: done_bytes for
 * progress of short reads/writes, and io->ucb.fn names the stage the
 * next completion belongs to (read/write, fallocate, fsync), so no
 * per-I/O allocation is needed. */
#include "backstore/bs_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <liburing.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* io_uring's len is 32-bit and its result an int: split larger requests. */
#define BS_MAX_SEG (1u << 30)

/* Source of WRITE_ZEROES / UNMAP when fallocate cannot do them. Aligned
 * for O_DIRECT; never written, so sharing it between workers is safe. */
#define BS_ZBUF_LEN (256u * 1024)
static _Alignas(4096) uint8_t bs_zbuf[BS_ZBUF_LEN];

static void rw_issue(struct bs_dev *dev, struct bs_io *io);

static bool write_through(struct bs_dev *dev, const struct bs_io *io)
{
	/* Write-through (WCE=0) and FUA both mean: durable before done().
	 * write_back is re-read per I/O because MODE SELECT may flip it. */
	return io->fua ||
	       !atomic_load_explicit(&dev->write_back, memory_order_relaxed);
}

static struct io_uring_sqe *get_sqe(struct bs_dev *dev, struct bs_io *io)
{
	const struct bs_fd *f = dev->priv;

	/* A file in memory (tmpfs) never waits for a disk, and the kernel
	 * cannot do its I/O without blocking semantics, so io_uring would
	 * hand every request to a kernel worker thread: a plain copy on this
	 * thread is cheaper. */
	if (f->memfs || !io->loop || !io_loop_ring(io->loop))
		return NULL;
	return io_loop_get_sqe(io->loop);
}

static void finish(struct bs_io *io, int res)
{
	io->done(io, res < 0 ? res : 0);
}

/* ---- READ / WRITE (and zero-fill writes) ---- */

/* Zero-fill writes stand in for UNMAP / WRITE_ZEROES when fallocate is not
 * supported; they write from bs_zbuf without advancing through io->buf. */
static bool is_zero_fill(const struct bs_io *io)
{
	return io->op == BS_UNMAP || io->op == BS_WRITE_ZEROES;
}

/* Accounts one read/write result. Returns true when the request is
 * finished (done() has run), false when the remainder must be issued. */
static bool rw_advance(struct bs_io *io, long res)
{
	if (res < 0) {
		finish(io, (int)res);
		return true;
	}
	if (res == 0) {
		if (io->op == BS_READ) {
			/* End of file inside the LUN: the file was truncated
			 * behind our back. Like LIO fileio, read zeros rather
			 * than fail (a sparse file's hole reads the same). */
			memset((uint8_t *)io->buf + io->done_bytes, 0,
			       (size_t)(io->len - io->done_bytes));
			io->done_bytes = io->len;
			finish(io, 0);
		} else {
			/* A write that makes no progress would loop forever. */
			finish(io, -EIO);
		}
		return true;
	}
	io->done_bytes += (uint64_t)res;
	if (io->done_bytes >= io->len) {
		finish(io, 0);
		return true;
	}
	return false;
}

static void rw_cb(struct io_uring_cb *cb, int res)
{
	struct bs_io *io = container_of(cb, struct bs_io, ucb);

	/* -EAGAIN / -EINTR: nothing happened, try the same range again. */
	if (res == -EAGAIN || res == -EINTR || !rw_advance(io, res))
		rw_issue(io->bs_priv, io);
}

/* Issues what is left of a read/write (short transfers are resubmitted
 * from here). On the synchronous path it loops until done. */
static void rw_issue(struct bs_dev *dev, struct bs_io *io)
{
	const struct bs_fd *f = dev->priv;
	bool zero = is_zero_fill(io);
	bool rd = io->op == BS_READ;
	int flags = !rd && write_through(dev, io) ? RWF_DSYNC : 0;

	for (;;) {
		uint64_t rem = io->len - io->done_bytes;
		uint64_t off = io->off + io->done_bytes;
		size_t seg = rem > BS_MAX_SEG ? BS_MAX_SEG : (size_t)rem;
		struct io_uring_sqe *sqe;
		struct iovec iov;
		void *p;
		ssize_t r;

		if (zero) {
			p = bs_zbuf;
			if (seg > BS_ZBUF_LEN)
				seg = BS_ZBUF_LEN;
		} else {
			p = (uint8_t *)io->buf + io->done_bytes;
		}
		sqe = get_sqe(dev, io);
		if (sqe) {
			if (rd) {
				io_uring_prep_read(sqe, f->fd, p, (unsigned)seg,
						   off);
			} else {
				io_uring_prep_write(sqe, f->fd, p,
						    (unsigned)seg, off);
				sqe->rw_flags = flags;
			}
			io->ucb.fn = rw_cb;
			io_uring_sqe_set_data(sqe, &io->ucb);
			return;
		}
		iov.iov_base = p;
		iov.iov_len = seg;
		r = rd ? preadv2(f->fd, &iov, 1, (off_t)off, 0)
		       : pwritev2(f->fd, &iov, 1, (off_t)off, flags);
		if (r < 0) {
			r = -errno;
			if (r == -EINTR)
				continue;
		}
		if (rw_advance(io, r))
			return;
	}
}

/* ---- FLUSH ---- */

static void flush_cb(struct io_uring_cb *cb, int res)
{
	finish(container_of(cb, struct bs_io, ucb), res);
}

/* fdatasync: SYNCHRONIZE CACHE needs the data (and the metadata needed to
 * read it back) durable, not timestamps (SBC-3 5.22). io_uring does not
 * order the fsync after other in-flight writes, and need not: only writes
 * already completed to the initiator are covered by the command. */
static void flush_issue(struct bs_dev *dev, struct bs_io *io)
{
	const struct bs_fd *f = dev->priv;
	struct io_uring_sqe *sqe = get_sqe(dev, io);

	if (sqe) {
		io_uring_prep_fsync(sqe, f->fd, IORING_FSYNC_DATASYNC);
		io->ucb.fn = flush_cb;
		io_uring_sqe_set_data(sqe, &io->ucb);
		return;
	}
	finish(io, fdatasync(f->fd) ? -errno : 0);
}

/* ---- UNMAP / WRITE_ZEROES ---- */

/* Regular files: PUNCH_HOLE deallocates (reads return zeros); ZERO_RANGE
 * keeps the blocks allocated but zeroed, which is what WRITE SAME without
 * UNMAP asks for. Block devices take the same two modes: the kernel maps
 * PUNCH_HOLE to a write-zeroes request that may deallocate (never a bare
 * discard, which need not read back zeros), ZERO_RANGE to a zero-out. */
static int falloc_mode(const struct bs_io *io)
{
	return FALLOC_FL_KEEP_SIZE | (io->op == BS_UNMAP ? FALLOC_FL_PUNCH_HOLE
							 : FALLOC_FL_ZERO_RANGE);
}

static void falloc_done(struct bs_dev *dev, struct bs_io *io, int res)
{
	if (res == -EOPNOTSUPP || res == -ENOSYS || res == -EINVAL) {
		/* The file system / device / kernel cannot (EINVAL: an
		 * io_uring without IORING_OP_FALLOCATE). Writing zeros keeps
		 * the promise that the range reads back as zeros. */
		io->done_bytes = 0;
		rw_issue(dev, io);
		return;
	}
	if (res < 0) {
		finish(io, res);
		return;
	}
	/* fallocate's effect is metadata and is not durable until synced;
	 * in write-through mode make it so, as a WRITE would be. */
	if (write_through(dev, io))
		flush_issue(dev, io);
	else
		finish(io, 0);
}

static void falloc_cb(struct io_uring_cb *cb, int res)
{
	struct bs_io *io = container_of(cb, struct bs_io, ucb);

	falloc_done(io->bs_priv, io, res);
}

static void falloc_issue(struct bs_dev *dev, struct bs_io *io)
{
	const struct bs_fd *f = dev->priv;
	struct io_uring_sqe *sqe = get_sqe(dev, io);

	if (sqe) {
		io_uring_prep_fallocate(sqe, f->fd, falloc_mode(io),
					(off_t)io->off, (off_t)io->len);
		io->ucb.fn = falloc_cb;
		io_uring_sqe_set_data(sqe, &io->ucb);
		return;
	}
	falloc_done(dev, io,
		    fallocate(f->fd, falloc_mode(io), (off_t)io->off,
			      (off_t)io->len) ? -errno : 0);
}

void bs_fd_submit(struct bs_dev *dev, struct bs_io *io)
{
	int r = bs_io_check(dev, io);

	if (r <= 0) {
		io->done(io, r);
		return;
	}
	io->bs_priv = dev;
	io->done_bytes = 0;
	switch (io->op) {
	case BS_READ:
	case BS_WRITE:
		rw_issue(dev, io);
		break;
	case BS_FLUSH:
		flush_issue(dev, io);
		break;
	case BS_UNMAP:
	case BS_WRITE_ZEROES:
		falloc_issue(dev, io);
		break;
	default: /* optional ops: refused by bs_io_check (no can_*) */
		io->done(io, -EINVAL);
		break;
	}
}

bool bs_fd_can_punch(int fd, uint64_t size)
{
	/* Punching a page just past the end, keeping the size, changes
	 * nothing but tells whether the file system supports holes. */
	uint64_t off = (size + 4095) / 4096 * 4096;

	return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			 (off_t)off, 4096) == 0;
}

void bs_fd_close(struct bs_dev *dev)
{
	struct bs_fd *f = dev->priv;

	if (!f)
		return;
	close(f->fd);
	free(f);
	dev->priv = NULL;
}
