/* Helpers shared by the backstore plugins; not part of the backstore
 * contract (backstore.h), so nothing outside src/backstore includes it. */
#ifndef UT_BACKSTORE_INTERNAL_H
#define UT_BACKSTORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "backstore/backstore.h"

/* snprintf into the caller's error buffer; tolerates err == NULL. */
void bs_seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The logical block sizes a LUN may have (SBC-3 READ CAPACITY). */
bool bs_block_size_valid(uint32_t block_size);

/* Validates an I/O against the device before any plugin touches it.
 * Returns 1 to go ahead, 0 when there is nothing to do (zero length) and
 * a negative errno when the request is malformed or out of range. The
 * SCSI layer checks LBA ranges itself; this is the backstop that keeps a
 * bug up there from turning into memory corruption down here. */
int bs_io_check(const struct bs_dev *dev, const struct bs_io *io);

/* ---- fd-backed plugins (fileio, block): uring_io.c ---- */

/* dev->priv of fileio and block devices. */
struct bs_fd {
	int fd;
	bool blkdev; /* fd is a block device (fallocate modes differ) */
	bool memfs;  /* the file lives in memory (tmpfs / ramfs): I/O inline */
	bool thick;  /* fileio made with sparse=false: grows allocated */
};

/* Runs io on the fd in dev->priv: through io->loop's io_uring when there
 * is one, else synchronously on the calling thread. */
void bs_fd_submit(struct bs_dev *dev, struct bs_io *io);

/* Closes the fd and frees dev->priv (the ops->close of fileio and block). */
void bs_fd_close(struct bs_dev *dev);

/* Probes whether the file system under a regular file can punch holes. */
bool bs_fd_can_punch(int fd, uint64_t size);

/* ---- block device facts: block.c ---- */

struct bs_blkinfo {
	uint64_t size;        /* bytes, BLKGETSIZE64 */
	uint32_t lbs;         /* logical block size, BLKSSZGET */
	bool rotational;      /* queue/rotational */
	bool write_cache;     /* queue/write_cache is "write back" */
	bool write_zeroes;    /* queue/write_zeroes_max_bytes > 0 */
};

/* Fills bi for the block device open on fd (st is its fstat). Returns 0
 * or -errno with a message in err. */
int bs_blkdev_query(int fd, const struct stat *st, const char *path,
		    struct bs_blkinfo *bi, char *err, size_t errlen);
/* The resize of a block device LUN (block, or fileio on a device): the
 * size the device has now; a size of our own cannot be asked for. */
int bs_blkdev_resize(struct bs_dev *dev, uint64_t want, uint64_t *size,
		     char *err, size_t errlen);

#endif
