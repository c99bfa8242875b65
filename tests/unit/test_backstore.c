/* Unit tests of the backstores: ramdisk, fileio, block and pscsi, on the
 * synchronous path (loop = NULL) and through a real worker io_uring. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backstore/backstore.h"
#include "io/loop.h"
#include "util/list.h"

#define MiB (1024u * 1024u)

/* ---- helpers ---- */

struct req {
	struct bs_io io;
	int res;
	int calls;
};

static void req_done(struct bs_io *io, int res)
{
	struct req *r = container_of(io, struct req, io);

	r->res = res;
	r->calls++;
}

/* Runs one I/O on the synchronous path and returns its result. */
static int do_io(struct bs_dev *dev, enum bs_op op, uint64_t off,
		 uint64_t len, void *buf, bool fua)
{
	struct req r;

	memset(&r, 0, sizeof(r));
	r.io.op = op;
	r.io.off = off;
	r.io.len = len;
	r.io.buf = buf;
	r.io.fua = fua;
	r.io.loop = NULL;
	r.io.done = req_done;
	bs_submit(dev, &r.io);
	/* Synchronous: done() must have run exactly once already. */
	assert_int_equal(r.calls, 1);
	return r.res;
}

static void *abuf(size_t len)
{
	void *p = aligned_alloc(4096, len);

	assert_non_null(p);
	return p;
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + seed + (i >> 12));
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* A private directory per test, removed with everything in it. */
struct tmpdir {
	char dir[128];
	char file[160];
};

static void tmpdir_make(struct tmpdir *t)
{
	const char *base = getenv("TMPDIR");

	/* TMPDIR=/dev/shm runs the same tests on tmpfs, which lacks
	 * FALLOC_FL_ZERO_RANGE: that exercises the write-zeros fallback. */
	snprintf(t->dir, sizeof(t->dir), "%s/ut-bs-XXXXXX",
		 base && base[0] ? base : "/tmp");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->file, sizeof(t->file), "%s/lun.img", t->dir);
}

static void tmpdir_remove(struct tmpdir *t)
{
	unlink(t->file);
	rmdir(t->dir);
}

/* ---- registry ---- */

static void test_find_and_unknown(void **state)
{
	struct bs_config cfg = { .name = "x", .size = MiB };
	struct bs_dev *dev = (struct bs_dev *)1;
	char err[256];

	assert_non_null(bs_find("fileio"));
	assert_non_null(bs_find("block"));
	assert_non_null(bs_find("ramdisk"));
	assert_non_null(bs_find("pscsi"));
	assert_null(bs_find("rbd"));
	assert_int_equal(bs_open("nope", &cfg, &dev, err, sizeof(err)), -EINVAL);
	assert_null(dev);
	assert_non_null(strstr(err, "unknown backstore plugin 'nope'"));

	cfg.block_size = 3000;
	assert_int_equal(bs_open("ramdisk", &cfg, &dev, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "block_size 3000"));
	bs_close(NULL);
}

static void test_pscsi_unsupported(void **state)
{
	struct bs_config cfg = { .name = "p", .dev = "/dev/sg0" };
	struct bs_dev *dev;
	char err[256];

	assert_int_equal(bs_open("pscsi", &cfg, &dev, err, sizeof(err)),
			 -EOPNOTSUPP);
	assert_null(dev);
	assert_string_equal(err,
			    "pscsi passthrough is not supported on this system");
}

/* ---- ramdisk ---- */

static struct bs_dev *open_rd(uint64_t size, bool nullio)
{
	struct bs_config cfg = { .name = "rd", .size = size, .nullio = nullio };
	struct bs_dev *dev;
	char err[256];

	assert_int_equal(bs_open("ramdisk", &cfg, &dev, err, sizeof(err)), 0);
	assert_non_null(dev);
	assert_string_equal(dev->name, "rd");
	assert_int_equal(dev->size, size);
	assert_int_equal(dev->block_size, 512);
	assert_true(dev->can_unmap);
	assert_string_equal(dev->path, "");
	return dev;
}

static void test_ramdisk_roundtrip(void **state)
{
	struct bs_dev *dev = open_rd(64 * MiB, false);
	size_t n = 3 * MiB;
	uint8_t *w = abuf(n), *r = abuf(n);

	fill(w, n, 1);
	/* Straddles chunk/page boundaries on purpose. */
	assert_int_equal(do_io(dev, BS_WRITE, MiB - 512, n, w, false), 0);
	assert_int_equal(do_io(dev, BS_READ, MiB - 512, n, r, false), 0);
	assert_memory_equal(w, r, n);
	assert_int_equal(do_io(dev, BS_FLUSH, 0, 0, NULL, false), 0);

	/* The last block works, one past it does not. */
	assert_int_equal(do_io(dev, BS_WRITE, 64 * MiB - 512, 512, w, true), 0);
	assert_int_equal(do_io(dev, BS_READ, 64 * MiB - 512, 1024, r, false),
			 -EINVAL);
	assert_int_equal(do_io(dev, BS_READ, UINT64_MAX - 511, 1024, r, false),
			 -EINVAL);
	/* Zero length is a no-op success. */
	assert_int_equal(do_io(dev, BS_READ, 0, 0, NULL, false), 0);
	bs_close(dev);
	free(w);
	free(r);
}

static void test_ramdisk_unallocated_zero(void **state)
{
	struct bs_dev *dev = open_rd(64 * MiB, false);
	uint8_t *r = abuf(MiB);

	memset(r, 0xaa, MiB);
	assert_int_equal(do_io(dev, BS_READ, 10 * MiB, MiB, r, false), 0);
	assert_true(all_zero(r, MiB));
	bs_close(dev);
	free(r);
}

static void test_ramdisk_nullio(void **state)
{
	struct bs_dev *dev = open_rd(1024ull * 1024 * MiB, true); /* 1 TiB */
	uint8_t *b = abuf(MiB);

	fill(b, MiB, 2);
	assert_int_equal(do_io(dev, BS_WRITE, 0, MiB, b, false), 0);
	assert_int_equal(do_io(dev, BS_READ, 0, MiB, b, false), 0);
	assert_true(all_zero(b, MiB));
	assert_int_equal(do_io(dev, BS_UNMAP, 0, MiB, NULL, false), 0);
	bs_close(dev);
	free(b);
}

static void test_ramdisk_unmap(void **state)
{
	struct bs_dev *dev = open_rd(8 * MiB, false);
	size_t n = 4 * MiB;
	uint8_t *w = abuf(n), *r = abuf(n);

	fill(w, n, 3);
	assert_int_equal(do_io(dev, BS_WRITE, 0, n, w, false), 0);
	/* Partial pages at both ends, whole pages in between. */
	assert_int_equal(do_io(dev, BS_UNMAP, 512, 2 * MiB, NULL, false), 0);
	assert_int_equal(do_io(dev, BS_READ, 0, n, r, false), 0);
	assert_memory_equal(r, w, 512);
	assert_true(all_zero(r + 512, 2 * MiB));
	assert_memory_equal(r + 512 + 2 * MiB, w + 512 + 2 * MiB,
			    n - 512 - 2 * MiB);
	/* A sub-page unmap. */
	assert_int_equal(do_io(dev, BS_WRITE_ZEROES, 3 * MiB, 1024, NULL, false),
			 0);
	assert_int_equal(do_io(dev, BS_READ, 3 * MiB - 512, 2048, r, false), 0);
	assert_memory_equal(r, w + 3 * MiB - 512, 512);
	assert_true(all_zero(r + 512, 1024));
	assert_memory_equal(r + 1536, w + 3 * MiB + 1024, 512);
	/* Written again after unmap. */
	assert_int_equal(do_io(dev, BS_WRITE, 0, n, w, false), 0);
	assert_int_equal(do_io(dev, BS_READ, 0, n, r, false), 0);
	assert_memory_equal(r, w, n);
	bs_close(dev);
	free(w);
	free(r);
}

static void test_ramdisk_needs_size(void **state)
{
	struct bs_config cfg = { .name = "rd" };
	struct bs_dev *dev;
	char err[256];

	assert_int_equal(bs_open("ramdisk", &cfg, &dev, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "size must be given"));
}

/* ---- fileio ---- */

static struct bs_dev *open_file(const char *path, uint64_t size,
				bool write_back, bool sparse)
{
	struct bs_config cfg = {
		.name = "f", .dev = path, .size = size,
		.write_back = write_back, .sparse = sparse,
	};
	struct bs_dev *dev;
	char err[256];
	int r = bs_open("fileio", &cfg, &dev, err, sizeof(err));

	if (r)
		fail_msg("fileio open failed: %s", err);
	return dev;
}

static void test_fileio_create_sparse_roundtrip(void **state)
{
	struct tmpdir t;
	struct bs_dev *dev;
	struct stat st;
	size_t n = 2 * MiB;
	uint8_t *w = abuf(n), *r = abuf(n);

	tmpdir_make(&t);
	dev = open_file(t.file, 64 * MiB, true, true);
	assert_int_equal(dev->size, 64 * MiB);
	assert_int_equal(dev->block_size, 512);
	assert_false(dev->rotational);
	assert_true(atomic_load(&dev->write_back));
	assert_string_equal(dev->path, t.file);
	assert_int_equal(stat(t.file, &st), 0);
	assert_int_equal(st.st_size, 64 * MiB);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* Sparse: (almost) nothing allocated. */
	assert_true((uint64_t)st.st_blocks * 512 < MiB);

	fill(w, n, 4);
	assert_int_equal(do_io(dev, BS_WRITE, 5 * MiB + 4096, n, w, false), 0);
	assert_int_equal(do_io(dev, BS_READ, 5 * MiB + 4096, n, r, false), 0);
	assert_memory_equal(w, r, n);
	assert_int_equal(do_io(dev, BS_READ, 0, 4096, r, false), 0);
	assert_true(all_zero(r, 4096));
	assert_int_equal(do_io(dev, BS_FLUSH, 0, 0, NULL, false), 0);
	assert_int_equal(do_io(dev, BS_READ, 64 * MiB, 512, r, false), -EINVAL);
	bs_close(dev);
	tmpdir_remove(&t);
	free(w);
	free(r);
}

static void test_fileio_thick(void **state)
{
	struct tmpdir t;
	struct bs_dev *dev;
	struct stat st;

	tmpdir_make(&t);
	dev = open_file(t.file, 4 * MiB, true, false);
	assert_int_equal(stat(t.file, &st), 0);
	assert_int_equal(st.st_size, 4 * MiB);
	assert_true((uint64_t)st.st_blocks * 512 >= 4 * MiB);
	bs_close(dev);
	tmpdir_remove(&t);
}

static void test_fileio_write_through_and_reopen(void **state)
{
	struct tmpdir t;
	struct bs_dev *dev;
	size_t n = MiB;
	uint8_t *w = abuf(n), *r = abuf(n);

	tmpdir_make(&t);
	dev = open_file(t.file, 16 * MiB, false, true);
	assert_false(atomic_load(&dev->write_back));
	fill(w, n, 5);
	assert_int_equal(do_io(dev, BS_WRITE, 0, n, w, false), 0);
	assert_int_equal(do_io(dev, BS_WRITE, 8 * MiB, n, w, true), 0);
	/* MODE SELECT may turn the cache on at run time. */
	atomic_store(&dev->write_back, true);
	assert_int_equal(do_io(dev, BS_WRITE, 4 * MiB, 4096, w, true), 0);
	bs_close(dev);

	/* Reopen without a size: the file's size and data stay. */
	dev = open_file(t.file, 0, true, true);
	assert_int_equal(dev->size, 16 * MiB);
	assert_int_equal(do_io(dev, BS_READ, 0, n, r, false), 0);
	assert_memory_equal(w, r, n);
	assert_int_equal(do_io(dev, BS_READ, 8 * MiB, n, r, false), 0);
	assert_memory_equal(w, r, n);
	bs_close(dev);

	/* A smaller size never truncates; a larger one grows the file. */
	dev = open_file(t.file, 4 * MiB, true, true);
	assert_int_equal(dev->size, 16 * MiB);
	bs_close(dev);
	dev = open_file(t.file, 32 * MiB, true, true);
	assert_int_equal(dev->size, 32 * MiB);
	assert_int_equal(do_io(dev, BS_READ, 8 * MiB, n, r, false), 0);
	assert_memory_equal(w, r, n);
	bs_close(dev);
	tmpdir_remove(&t);
	free(w);
	free(r);
}

static void test_fileio_punch_hole(void **state)
{
	struct tmpdir t;
	struct bs_dev *dev;
	struct stat st1, st2;
	size_t n = 4 * MiB;
	uint8_t *w = abuf(n), *r = abuf(n);

	tmpdir_make(&t);
	dev = open_file(t.file, 16 * MiB, false, true);
	fill(w, n, 6);
	assert_int_equal(do_io(dev, BS_WRITE, 0, n, w, false), 0);
	assert_int_equal(stat(t.file, &st1), 0);
	assert_int_equal(do_io(dev, BS_UNMAP, MiB, 2 * MiB, NULL, false), 0);
	assert_int_equal(do_io(dev, BS_READ, 0, n, r, false), 0);
	assert_memory_equal(r, w, MiB);
	assert_true(all_zero(r + MiB, 2 * MiB));
	assert_memory_equal(r + 3 * MiB, w + 3 * MiB, MiB);
	if (dev->can_unmap) {
		/* The hole really gave the space back. */
		assert_int_equal(stat(t.file, &st2), 0);
		assert_true(st2.st_blocks < st1.st_blocks);
	}
	assert_int_equal(do_io(dev, BS_WRITE_ZEROES, 3 * MiB + 512, 1024,
			       NULL, false), 0);
	assert_int_equal(do_io(dev, BS_READ, 3 * MiB, 4096, r, false), 0);
	assert_memory_equal(r, w + 3 * MiB, 512);
	assert_true(all_zero(r + 512, 1024));
	assert_memory_equal(r + 1536, w + 3 * MiB + 1536, 4096 - 1536);
	bs_close(dev);
	tmpdir_remove(&t);
	free(w);
	free(r);
}

static void test_fileio_truncated_behind_reads_zeros(void **state)
{
	struct tmpdir t;
	struct bs_dev *dev;
	uint8_t *w = abuf(8192), *r = abuf(8192);

	tmpdir_make(&t);
	dev = open_file(t.file, MiB, true, true);
	fill(w, 8192, 7);
	assert_int_equal(do_io(dev, BS_WRITE, 0, 8192, w, false), 0);
	assert_int_equal(truncate(t.file, 4096), 0);
	/* A short read followed by EOF: the rest reads as zeros. */
	assert_int_equal(do_io(dev, BS_READ, 0, 8192, r, false), 0);
	assert_memory_equal(r, w, 4096);
	assert_true(all_zero(r + 4096, 4096));
	bs_close(dev);
	tmpdir_remove(&t);
	free(w);
	free(r);
}

static void test_fileio_errors(void **state)
{
	struct tmpdir t;
	struct bs_config cfg = { .name = "f" };
	struct bs_dev *dev;
	char err[512], path[512];

	tmpdir_make(&t);
	cfg.dev = t.file;
	assert_int_equal(bs_open("fileio", &cfg, &dev, err, sizeof(err)),
			 -EINVAL);
	assert_null(dev);
	snprintf(path, sizeof(path), "size must be given to create %s", t.file);
	assert_string_equal(err, path);
	assert_int_equal(access(t.file, F_OK), -1);

	snprintf(path, sizeof(path), "%s/no/such/dir/x.img", t.dir);
	cfg.dev = path;
	cfg.size = MiB;
	assert_int_equal(bs_open("fileio", &cfg, &dev, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "Could not create"));
	assert_non_null(strstr(err, "No such file or directory"));

	cfg.dev = t.dir;
	assert_true(bs_open("fileio", &cfg, &dev, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, t.dir));

	cfg.dev = "/dev/null";
	assert_int_equal(bs_open("fileio", &cfg, &dev, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err,
			    "/dev/null is not a regular file or block device");

	cfg.dev = NULL;
	assert_int_equal(bs_open("fileio", &cfg, &dev, err, sizeof(err)),
			 -EINVAL);
	tmpdir_remove(&t);
}

/* ---- block ---- */

static void test_block_refuses_regular_file(void **state)
{
	struct tmpdir t;
	struct bs_config cfg = { .name = "b" };
	struct bs_dev *dev;
	char err[512], want[512];
	int fd;

	tmpdir_make(&t);
	fd = open(t.file, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, MiB), 0);
	close(fd);
	cfg.dev = t.file;
	assert_int_equal(bs_open("block", &cfg, &dev, err, sizeof(err)),
			 -ENOTBLK);
	assert_null(dev);
	snprintf(want, sizeof(want), "%s is not a block device", t.file);
	assert_string_equal(err, want);

	cfg.dev = "/nonexistent/dev";
	assert_int_equal(bs_open("block", &cfg, &dev, err, sizeof(err)),
			 -ENOENT);
	assert_string_equal(err,
			    "Could not open /nonexistent/dev: No such file or directory");
	tmpdir_remove(&t);
}

/* Runs a command and returns its first output line in out. */
static int run_cmd(const char *cmd, char *out, size_t len)
{
	FILE *p = popen(cmd, "r");
	int st;

	if (!p)
		return -1;
	out[0] = '\0';
	if (!fgets(out, (int)len, p))
		out[0] = '\0';
	st = pclose(p);
	out[strcspn(out, "\n")] = '\0';
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- through a worker's io_uring ---- */

#define NREQ 300 /* more than a ring holds, to hit the "ring full" path */

struct ring_test {
	struct io_loop *loop;
	struct io_timer guard;
	int pending;
	int failures;
	bool timed_out;
};

static struct ring_test *ring_t;

static void ring_done(struct bs_io *io, int res)
{
	struct req *r = container_of(io, struct req, io);

	r->res = res;
	r->calls++;
	if (res)
		ring_t->failures++;
	if (--ring_t->pending == 0)
		io_loop_stop(io->loop);
}

static void ring_guard(struct io_timer *tm)
{
	ring_t->timed_out = true;
	io_loop_stop(ring_t->loop);
}

/* Submits reqs[0..n) on the loop and runs it until all have completed. */
static int ring_run(struct ring_test *rt, struct bs_dev *dev,
		    struct req *reqs, int n)
{
	int inline_done;

	/* A fresh loop per batch: io_loop_stop is final for a loop (run
	 * does not clear the stop flag), and each batch ends with a stop. */
	assert_int_equal(io_loop_create(&rt->loop, 0), 0);
	rt->pending = n;
	for (int i = 0; i < n; i++) {
		reqs[i].io.loop = rt->loop;
		reqs[i].io.done = ring_done;
		reqs[i].calls = 0;
		bs_submit(dev, &reqs[i].io);
	}
	inline_done = n - rt->pending;
	if (rt->pending) {
		io_timer_arm(rt->loop, &rt->guard, 10000);
		io_loop_run(rt->loop);
		io_timer_cancel(&rt->guard);
	}
	assert_false(rt->timed_out);
	assert_int_equal(rt->pending, 0);
	for (int i = 0; i < n; i++)
		assert_int_equal(reqs[i].calls, 1);
	io_loop_destroy(rt->loop);
	rt->loop = NULL;
	return inline_done;
}

static void set_req(struct req *r, enum bs_op op, uint64_t off, uint64_t len,
		    void *buf, bool fua)
{
	memset(r, 0, sizeof(*r));
	r->io.op = op;
	r->io.off = off;
	r->io.len = len;
	r->io.buf = buf;
	r->io.fua = fua;
}

static void test_fileio_through_ring(void **state)
{
	struct ring_test rt;
	bool have_ring;
	struct tmpdir t;
	struct bs_dev *dev;
	struct req *reqs = calloc(NREQ, sizeof(*reqs));
	size_t big = 8 * MiB;
	uint8_t *w = abuf(big), *r = abuf(big), *small = abuf(NREQ * 4096);

	assert_non_null(reqs);
	memset(&rt, 0, sizeof(rt));
	ring_t = &rt;
	assert_int_equal(io_loop_create(&rt.loop, 0), 0);
	have_ring = io_loop_ring(rt.loop) != NULL;
	if (!have_ring)
		print_message("io_uring unavailable: ring test runs synchronously\n");
	io_loop_destroy(rt.loop);
	io_timer_init(&rt.guard, ring_guard);
	tmpdir_make(&t);
	dev = open_file(t.file, 64 * MiB, false, true);

	/* One big write-through write, then read it back. */
	fill(w, big, 9);
	set_req(&reqs[0], BS_WRITE, MiB, big, w, false);
	/* With a ring, nothing completes before the loop runs. */
	assert_int_equal(ring_run(&rt, dev, reqs, 1), have_ring ? 0 : 1);
	assert_int_equal(reqs[0].res, 0);
	set_req(&reqs[0], BS_READ, MiB, big, r, false);
	ring_run(&rt, dev, reqs, 1);
	assert_int_equal(reqs[0].res, 0);
	assert_memory_equal(w, r, big);

	/* Many small writes at once (more than the ring's SQ holds). */
	atomic_store(&dev->write_back, true);
	fill(small, NREQ * 4096, 10);
	for (int i = 0; i < NREQ; i++)
		set_req(&reqs[i], BS_WRITE, 32 * MiB + (uint64_t)i * 4096, 4096,
			small + (size_t)i * 4096, i % 3 == 0);
	ring_run(&rt, dev, reqs, NREQ);
	assert_int_equal(rt.failures, 0);
	set_req(&reqs[0], BS_FLUSH, 0, 0, NULL, false);
	set_req(&reqs[1], BS_READ, 32 * MiB, NREQ * 4096, r, false);
	ring_run(&rt, dev, reqs, 2);
	assert_int_equal(rt.failures, 0);
	assert_memory_equal(small, r, NREQ * 4096);

	/* UNMAP and WRITE_ZEROES (write-through adds an fsync stage). */
	atomic_store(&dev->write_back, false);
	set_req(&reqs[0], BS_UNMAP, MiB, MiB, NULL, false);
	set_req(&reqs[1], BS_WRITE_ZEROES, 4 * MiB, 512, NULL, false);
	ring_run(&rt, dev, reqs, 2);
	assert_int_equal(rt.failures, 0);
	set_req(&reqs[0], BS_READ, MiB, big, r, false);
	ring_run(&rt, dev, reqs, 1);
	assert_true(all_zero(r, MiB));
	assert_memory_equal(r + MiB, w + MiB, 2 * MiB);
	assert_true(all_zero(r + 3 * MiB, 512));
	assert_memory_equal(r + 3 * MiB + 512, w + 3 * MiB + 512,
			    big - 3 * MiB - 512);

	/* Short read at a truncated end, resubmitted then zero-filled. */
	assert_int_equal(truncate(t.file, MiB + 4096), 0);
	set_req(&reqs[0], BS_READ, MiB, 3 * 4096, r, false);
	ring_run(&rt, dev, reqs, 1);
	assert_int_equal(reqs[0].res, 0);
	assert_true(all_zero(r, 3 * 4096));

	/* Errors come back through done() too. */
	set_req(&reqs[0], BS_READ, 64 * MiB, 4096, r, false);
	ring_run(&rt, dev, reqs, 1);
	assert_int_equal(reqs[0].res, -EINVAL);

	bs_close(dev);
	tmpdir_remove(&t);
	free(reqs);
	free(w);
	free(r);
	free(small);
}

/* ---- block on a loop device (root + losetup only) ---- */

struct loopfix {
	struct tmpdir t;
	char dev[128];
};

/* The loop device is attached in setup and detached in teardown, which
 * cmocka runs even when an assertion fails mid-test: no leaked devices. */
static int loop_setup(void **state)
{
	struct loopfix *lf = calloc(1, sizeof(*lf));
	char cmd[512];
	int fd;

	*state = NULL;
	if (!lf)
		return -1;
	if (geteuid() != 0 || system("losetup --version >/dev/null 2>&1")) {
		free(lf);
		return 0; /* the test skips */
	}
	tmpdir_make(&lf->t);
	fd = open(lf->t.file, O_CREAT | O_WRONLY, 0600);
	if (fd < 0 || ftruncate(fd, 16 * MiB)) {
		if (fd >= 0)
			close(fd);
		tmpdir_remove(&lf->t);
		free(lf);
		return -1;
	}
	close(fd);
	snprintf(cmd, sizeof(cmd), "losetup -f --show %s 2>/dev/null",
		 lf->t.file);
	if (run_cmd(cmd, lf->dev, sizeof(lf->dev)) != 0 || !lf->dev[0]) {
		/* No free loop device / not permitted in this container. */
		tmpdir_remove(&lf->t);
		free(lf);
		return 0;
	}
	*state = lf;
	return 0;
}

static int loop_teardown(void **state)
{
	struct loopfix *lf = *state;
	char cmd[512];
	int r;

	if (!lf)
		return 0;
	snprintf(cmd, sizeof(cmd), "losetup -d %s", lf->dev);
	r = system(cmd);
	tmpdir_remove(&lf->t);
	free(lf);
	return r ? -1 : 0;
}

static void test_block_loop_device(void **state)
{
	struct loopfix *lf = *state;
	struct bs_config cfg = { .name = "b" };
	struct bs_dev *dev, *dev2;
	struct ring_test rt;
	struct req reqs[3];
	char err[512];
	size_t n = MiB;
	uint8_t *w, *r;

	if (!lf)
		skip();
	cfg.dev = lf->dev;
	if (bs_open("block", &cfg, &dev, err, sizeof(err)) != 0)
		fail_msg("block open of %s failed: %s", lf->dev, err);
	assert_int_equal(dev->size, 16 * MiB);
	assert_int_equal(dev->block_size, 512);
	assert_false(dev->readonly);
	assert_string_equal(dev->path, lf->dev);

	/* The O_EXCL claim keeps a second writer off the device. */
	assert_int_equal(bs_open("block", &cfg, &dev2, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "busy"));

	w = abuf(n);
	r = abuf(n);
	fill(w, n, 8);
	assert_int_equal(do_io(dev, BS_WRITE, MiB, n, w, false), 0);
	assert_int_equal(do_io(dev, BS_WRITE, 4 * MiB, n, w, true), 0);
	assert_int_equal(do_io(dev, BS_FLUSH, 0, 0, NULL, false), 0);
	assert_int_equal(do_io(dev, BS_READ, MiB, n, r, false), 0);
	assert_memory_equal(w, r, n);
	/* UNMAP / WRITE_ZEROES read back as zeros whatever the device
	 * supports (the fallback writes zeros). */
	assert_int_equal(do_io(dev, BS_UNMAP, MiB, 4096, NULL, false), 0);
	assert_int_equal(do_io(dev, BS_WRITE_ZEROES, MiB + 8192, 4096, NULL,
			       false), 0);
	assert_int_equal(do_io(dev, BS_READ, MiB, 16384, r, false), 0);
	assert_true(all_zero(r, 4096));
	assert_memory_equal(r + 4096, w + 4096, 4096);
	assert_true(all_zero(r + 8192, 4096));
	assert_memory_equal(r + 12288, w + 12288, 4096);

	/* O_DIRECT through the worker's ring. */
	memset(&rt, 0, sizeof(rt));
	ring_t = &rt;
	io_timer_init(&rt.guard, ring_guard);
	set_req(&reqs[0], BS_WRITE, 8 * MiB, n, w, true);
	set_req(&reqs[1], BS_UNMAP, 4 * MiB, 8192, NULL, false);
	set_req(&reqs[2], BS_FLUSH, 0, 0, NULL, false);
	ring_run(&rt, dev, reqs, 3);
	assert_int_equal(rt.failures, 0);
	set_req(&reqs[0], BS_READ, 8 * MiB, n, r, false);
	ring_run(&rt, dev, reqs, 1);
	assert_int_equal(reqs[0].res, 0);
	assert_memory_equal(w, r, n);
	set_req(&reqs[0], BS_READ, 4 * MiB, n, r, false);
	ring_run(&rt, dev, reqs, 1);
	assert_true(all_zero(r, 8192));
	assert_memory_equal(r + 8192, w + 8192, n - 8192);
	bs_close(dev);

	/* fileio takes a block device too (buffered), with its size. */
	cfg.size = MiB; /* ignored for a device */
	assert_int_equal(bs_open("fileio", &cfg, &dev, err, sizeof(err)), 0);
	assert_int_equal(dev->size, 16 * MiB);
	assert_int_equal(dev->block_size, 512);
	assert_int_equal(bs_open("block", &cfg, &dev2, err, sizeof(err)), -EBUSY);
	assert_int_equal(do_io(dev, BS_READ, 8 * MiB, n, r, false), 0);
	assert_memory_equal(w, r, n);
	assert_int_equal(do_io(dev, BS_WRITE_ZEROES, 8 * MiB, 4096, NULL,
			       false), 0);
	assert_int_equal(do_io(dev, BS_READ, 8 * MiB, 8192, r, false), 0);
	assert_true(all_zero(r, 4096));
	assert_memory_equal(r + 4096, w + 4096, 4096);
	bs_close(dev);
	cfg.size = 0;

	/* Read-only: no claim, writes refused. */
	cfg.readonly = true;
	assert_int_equal(bs_open("block", &cfg, &dev, err, sizeof(err)), 0);
	assert_true(dev->readonly);
	assert_false(dev->can_unmap);
	assert_int_equal(do_io(dev, BS_READ, 8 * MiB + 4096, n - 4096, r,
			       false), 0);
	assert_memory_equal(w + 4096, r, n - 4096);
	assert_int_equal(do_io(dev, BS_WRITE, 0, 4096, w, false), -EROFS);
	bs_close(dev);
	free(w);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find_and_unknown),
		cmocka_unit_test(test_pscsi_unsupported),
		cmocka_unit_test(test_ramdisk_roundtrip),
		cmocka_unit_test(test_ramdisk_unallocated_zero),
		cmocka_unit_test(test_ramdisk_nullio),
		cmocka_unit_test(test_ramdisk_unmap),
		cmocka_unit_test(test_ramdisk_needs_size),
		cmocka_unit_test(test_fileio_create_sparse_roundtrip),
		cmocka_unit_test(test_fileio_thick),
		cmocka_unit_test(test_fileio_write_through_and_reopen),
		cmocka_unit_test(test_fileio_punch_hole),
		cmocka_unit_test(test_fileio_truncated_behind_reads_zeros),
		cmocka_unit_test(test_fileio_errors),
		cmocka_unit_test(test_block_refuses_regular_file),
		cmocka_unit_test(test_fileio_through_ring),
		cmocka_unit_test_setup_teardown(test_block_loop_device,
						loop_setup, loop_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
