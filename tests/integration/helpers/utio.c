/* utio: a libiscsi test client for the fault and load tests (docs/reliability.md).
 *
 *   utio write  -u URL -r RUN -n UNITS [-q QD] -l ACKLOG [-x SECONDS]
 *       Writes units 0..UNITS-1 (a unit is 4 KiB; unit i holds i and the run id in
 *       every 64-byte record) with QD commands in flight; after each GOOD response
 *       the unit number is appended to ACKLOG with one write(2), so it survives a
 *       SIGKILL of this process (a command that fails, or is still outstanding when
 *       the connection is lost, is logged as "F unit"). Stops at the end, after -x seconds, or when the
 *       connection fails (no reconnect) or a command fails. Prints one JSON line:
 *       {"sent", "acked", "failed", "unanswered", "error"}: "failed" counts commands
 *       answered with an error or failed by libiscsi when the connection was lost,
 *       "unanswered" those still outstanding at the end.
 *   utio verify -u URL -r RUN -l ACKLOG [-q QD]
 *       Reads back every unit named in ACKLOG and compares it with what was written.
 *       Prints {"checked", "bad", "first_bad"}; exit status 0 only when all match.
 *   utio cmds   -u URL OP ...
 *       One session; each OP is w:LUN:LBA:BLOCKS:BYTE (write the byte pattern),
 *       r:LUN:LBA:BLOCKS:BYTE (read and compare) or s:LUN (SYNCHRONIZE CACHE(10)).
 *       Prints one JSON line per OP: {"op", "status", "key", "asc", "ascq", "match"}.
 *   utio soak   -p HOST:PORT -t IQN[,IQN...] -S SESSIONS -d SECONDS [-q QD] [-U UNITS]
 *               [-o OFFSET]
 *       SESSIONS sessions in one process, round-robin over the targets (LUN 0),
 *       each owning a disjoint region of UNITS units (session k of a target gets
 *       region OFFSET + k/ntargets). Random reads and writes of 1-64 units; every
 *       read is compared with the last generation written there (units this run has
 *       not written yet are not checked).
 *       Prints {"sessions", "ops", "reads", "writes", "bytes", "errors",
 *       "mismatches", "login_failures", "seconds"}.
 *
 * Built by the tests with: cc -O2 -o utio utio.c -liscsi
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define UNIT 4096u
#define REC 64u
#define MAXLEN_UNITS 64u

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* unit content: 64-byte records "UTIO" run(u32) unit(u64) gen(u64) rec(u32) fill */
static void fill_unit(uint8_t *p, uint32_t run, uint64_t unit, uint64_t gen)
{
	for (unsigned r = 0; r < UNIT / REC; r++) {
		uint8_t *q = p + r * REC;
		uint32_t rr = r;

		memcpy(q, "UTIO", 4);
		memcpy(q + 4, &run, 4);
		memcpy(q + 8, &unit, 8);
		memcpy(q + 16, &gen, 8);
		memcpy(q + 24, &rr, 4);
		for (unsigned i = 28; i < REC; i++)
			q[i] = (uint8_t)(unit * 31 + gen * 7 + i);
	}
}

static struct iscsi_context *connect_url(const char *url_s, const char *initiator,
					 struct iscsi_url **urlp, int *block_size)
{
	struct iscsi_context *iscsi = iscsi_create_context(initiator);
	struct iscsi_url *url;
	struct scsi_task *t;

	if (!iscsi)
		return NULL;
	url = iscsi_parse_full_url(iscsi, url_s);
	if (!url) {
		fprintf(stderr, "utio: bad URL %s: %s\n", url_s, iscsi_get_error(iscsi));
		iscsi_destroy_context(iscsi);
		return NULL;
	}
	iscsi_set_targetname(iscsi, url->target);
	iscsi_set_session_type(iscsi, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(iscsi, ISCSI_HEADER_DIGEST_NONE);
	iscsi_set_noautoreconnect(iscsi, 1);
	if (iscsi_full_connect_sync(iscsi, url->portal, url->lun) != 0) {
		fprintf(stderr, "utio: login to %s failed: %s\n", url_s, iscsi_get_error(iscsi));
		iscsi_destroy_url(url);
		iscsi_destroy_context(iscsi);
		return NULL;
	}
	*block_size = 512;
	t = iscsi_readcapacity16_sync(iscsi, url->lun);
	if (t && t->status == SCSI_STATUS_GOOD) {
		struct scsi_readcapacity16 *rc = scsi_datain_unmarshall(t);

		if (rc)
			*block_size = rc->block_length;
	}
	if (t)
		scsi_free_scsi_task(t);
	*urlp = url;
	return iscsi;
}

static const char *opt(int argc, char **argv, const char *name, const char *def)
{
	for (int i = 2; i + 1 < argc; i++)
		if (!strcmp(argv[i], name))
			return argv[i + 1];
	return def;
}

static char initiator_name[256];

static void set_initiator(const char *what, int n)
{
	snprintf(initiator_name, sizeof(initiator_name),
		 "iqn.2024-01.org.utarget.test:utio-%s-%d-%d", what, (int)getpid(), n);
}

/* ------------------------------------------------------------------ write */

struct wslot {
	uint8_t *buf;
	uint64_t unit;
	bool busy;
};

static struct {
	uint64_t sent, acked, failed, next, n;
	int inflight, ackfd;
} W;

static void write_cb(struct iscsi_context *iscsi, int status, void *data, void *priv)
{
	struct scsi_task *task = data;
	struct wslot *s = priv;

	(void)iscsi;
	s->busy = false;
	W.inflight--;
	if (status == SCSI_STATUS_GOOD) {
		char line[32];
		int len = snprintf(line, sizeof(line), "%" PRIu64 "\n", s->unit);

		if (write(W.ackfd, line, len) != len)
			perror("utio: ack log");
		W.acked++;
	} else {
		char line[40];
		int len = snprintf(line, sizeof(line), "F %" PRIu64 "\n", s->unit);

		/* not acknowledged: the verifier skips these lines */
		if (write(W.ackfd, line, len) != len)
			perror("utio: ack log");
		W.failed++;
	}
	if (task)
		scsi_free_scsi_task(task);
}

static int do_write(int argc, char **argv)
{
	const char *u = opt(argc, argv, "-u", NULL), *log = opt(argc, argv, "-l", NULL);
	uint32_t run = strtoul(opt(argc, argv, "-r", "1"), NULL, 0);
	int qd = atoi(opt(argc, argv, "-q", "16"));
	double limit = atof(opt(argc, argv, "-x", "0")), t0;
	struct iscsi_url *url;
	struct iscsi_context *iscsi;
	struct wslot *slots;
	const char *err = "";
	int bs;

	W.n = strtoull(opt(argc, argv, "-n", "1024"), NULL, 0);
	if (!u || !log || qd < 1)
		return 2;
	W.ackfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (W.ackfd < 0)
		return perror(log), 2;
	set_initiator("write", 0);
	iscsi = connect_url(u, initiator_name, &url, &bs);
	if (!iscsi)
		return 3;
	slots = calloc(qd, sizeof(*slots));
	for (int i = 0; i < qd; i++)
		slots[i].buf = malloc(UNIT);
	printf("{\"ready\": true}\n");
	fflush(stdout);
	t0 = now();
	for (;;) {
		struct pollfd pfd;
		/* after a failure (or a lost connection: libiscsi fails what was in
		 * flight) send nothing more: "unanswered" then counts only commands
		 * that were on the wire */
		bool stop = W.next >= W.n || W.failed || (limit > 0 && now() - t0 > limit);

		for (int i = 0; !stop && i < qd; i++) {
			struct wslot *s = &slots[i];

			if (s->busy)
				continue;
			s->unit = W.next++;
			fill_unit(s->buf, run, s->unit, 1);
			if (!iscsi_write16_task(iscsi, url->lun, s->unit * (UNIT / bs), s->buf,
						UNIT, bs, 0, 0, 0, 0, 0, write_cb, s)) {
				err = "cannot queue a write";
				goto out;
			}
			s->busy = true;
			W.inflight++;
			W.sent++;
			if (W.next >= W.n)
				break;
		}
		if (stop && W.inflight == 0)
			break;
		pfd.fd = iscsi_get_fd(iscsi);
		pfd.events = iscsi_which_events(iscsi);
		if (poll(&pfd, 1, 1000) < 0 && errno != EINTR) {
			err = "poll";
			break;
		}
		if (iscsi_service(iscsi, pfd.revents) < 0) {
			err = iscsi_get_error(iscsi);
			break;
		}
	}
out:
	printf("{\"sent\": %" PRIu64 ", \"acked\": %" PRIu64 ", \"failed\": %" PRIu64
	       ", \"unanswered\": %d, \"error\": \"%s\"}\n",
	       W.sent, W.acked, W.failed, W.inflight, *err ? "connection lost" : "");
	if (*err)
		fprintf(stderr, "utio: %s\n", err);
	fflush(stdout);
	if (!*err) {
		iscsi_logout_sync(iscsi);
		iscsi_destroy_context(iscsi);
	}
	return *err ? 1 : 0;
}

/* ------------------------------------------------------------------ verify */

static int do_verify(int argc, char **argv)
{
	const char *u = opt(argc, argv, "-u", NULL), *log = opt(argc, argv, "-l", NULL);
	uint32_t run = strtoul(opt(argc, argv, "-r", "1"), NULL, 0);
	struct iscsi_url *url;
	struct iscsi_context *iscsi;
	uint8_t want[UNIT];
	uint64_t checked = 0, bad = 0, first_bad = UINT64_MAX, unit;
	FILE *f;
	int bs;

	if (!u || !log)
		return 2;
	f = fopen(log, "r");
	if (!f)
		return perror(log), 2;
	set_initiator("verify", 0);
	iscsi = connect_url(u, initiator_name, &url, &bs);
	if (!iscsi)
		return 3;
	char line[64];

	while (fgets(line, sizeof(line), f)) {
		struct scsi_task *t;

		if (sscanf(line, "%" SCNu64, &unit) != 1)
			continue; /* "F unit": not acknowledged */
		t = iscsi_read16_sync(iscsi, url->lun, unit * (UNIT / bs), UNIT, bs,
				      0, 0, 0, 0, 0);

		fill_unit(want, run, unit, 1);
		checked++;
		if (!t || t->status != SCSI_STATUS_GOOD || t->datain.size != (int)UNIT ||
		    memcmp(t->datain.data, want, UNIT)) {
			bad++;
			if (first_bad == UINT64_MAX)
				first_bad = unit;
		}
		if (t)
			scsi_free_scsi_task(t);
	}
	fclose(f);
	printf("{\"checked\": %" PRIu64 ", \"bad\": %" PRIu64 ", \"first_bad\": %" PRId64 "}\n",
	       checked, bad, first_bad == UINT64_MAX ? (int64_t)-1 : (int64_t)first_bad);
	iscsi_logout_sync(iscsi);
	iscsi_destroy_context(iscsi);
	return bad ? 1 : 0;
}

/* ------------------------------------------------------------------ cmds */

static int do_cmds(int argc, char **argv)
{
	const char *u = opt(argc, argv, "-u", NULL);
	struct iscsi_url *url;
	struct iscsi_context *iscsi;
	int bs, rc = 0;

	if (!u)
		return 2;
	set_initiator("cmds", 0);
	iscsi = connect_url(u, initiator_name, &url, &bs);
	if (!iscsi)
		return 3;
	for (int i = 2; i < argc; i++) {
		char op;
		int lun = 0;
		unsigned long long lba = 0;
		unsigned blocks = 0, byte = 0;
		struct scsi_task *t = NULL;
		uint8_t *buf = NULL;
		int match = -1;

		if (!strcmp(argv[i], "-u")) {
			i++;
			continue;
		}
		if (sscanf(argv[i], "%c:%d:%llu:%u:%i", &op, &lun, &lba, &blocks, &byte) < 2) {
			fprintf(stderr, "utio: bad op %s\n", argv[i]);
			return 2;
		}
		if (op == 'w' || op == 'r') {
			buf = malloc((size_t)blocks * bs);
			memset(buf, byte, (size_t)blocks * bs);
		}
		/* a LUN's first command gets the power-on UNIT ATTENTION: repeat it */
		for (int tries = 0; tries < 4; tries++) {
			if (t)
				scsi_free_scsi_task(t);
			t = NULL;
			if (op == 'w')
				t = iscsi_write16_sync(iscsi, lun, lba, buf, blocks * bs, bs,
						       0, 0, 0, 0, 0);
			else if (op == 'r')
				t = iscsi_read16_sync(iscsi, lun, lba, blocks * bs, bs,
						      0, 0, 0, 0, 0);
			else if (op == 's')
				t = iscsi_synchronizecache10_sync(iscsi, lun, 0, 0, 0, 0);
			if (!t || t->status != SCSI_STATUS_CHECK_CONDITION ||
			    t->sense.key != SCSI_SENSE_UNIT_ATTENTION)
				break;
		}
		if (t && op == 'r' && t->status == SCSI_STATUS_GOOD)
			match = t->datain.size == (int)(blocks * bs) &&
				!memcmp(t->datain.data, buf, (size_t)blocks * bs);
		if (!t) {
			printf("{\"op\": \"%s\", \"status\": -1, \"error\": \"%s\"}\n", argv[i],
			       iscsi_get_error(iscsi));
			rc = 1;
		} else {
			printf("{\"op\": \"%s\", \"status\": %d, \"key\": %d, \"asc\": %d, "
			       "\"ascq\": %d, \"match\": %d}\n", argv[i], t->status,
			       t->status == SCSI_STATUS_CHECK_CONDITION ? (int)t->sense.key : 0,
			       t->status == SCSI_STATUS_CHECK_CONDITION ? t->sense.ascq >> 8 : 0,
			       t->status == SCSI_STATUS_CHECK_CONDITION ? t->sense.ascq & 0xff : 0,
			       match);
			scsi_free_scsi_task(t);
		}
		fflush(stdout);
		free(buf);
	}
	iscsi_logout_sync(iscsi);
	iscsi_destroy_context(iscsi);
	return rc;
}

/* ------------------------------------------------------------------ soak */

struct sop;

struct ssess {
	struct iscsi_context *iscsi;
	int bs, lun, id;
	uint64_t base;          /* first unit of the region */
	uint32_t units;
	uint64_t *gen;          /* generation written per unit (0: zeros) */
	uint8_t *busy;          /* per unit: an op in flight covers it */
	struct sop *ops;
	int inflight;
	bool dead;
};

struct sop {
	struct ssess *s;
	uint8_t *buf;
	uint64_t unit;
	uint32_t n;
	bool write, busy;
};

static struct {
	uint64_t ops, reads, writes, bytes, errors, mismatches;
	uint32_t run;
} S;

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void soak_cb(struct iscsi_context *iscsi, int status, void *data, void *priv)
{
	struct scsi_task *task = data;
	struct sop *o = priv;
	struct ssess *s = o->s;

	(void)iscsi;
	o->busy = false;
	s->inflight--;
	for (uint32_t i = 0; i < o->n; i++)
		s->busy[o->unit - s->base + i] = 0;
	if (status != SCSI_STATUS_GOOD) {
		S.errors++;
		if (S.errors <= 10)
			fprintf(stderr, "utio soak: session %d %s unit %" PRIu64 "+%u: status %d "
				"sense %d/%04x\n", s->id, o->write ? "write" : "read", o->unit,
				o->n, status, task ? (int)task->sense.key : -1,
				task ? task->sense.ascq : -1);
	} else if (o->write) {
		S.writes++;
	} else {
		uint8_t want[UNIT];
		bool ok = task->datain.size == (int)(o->n * UNIT);

		for (uint32_t i = 0; ok && i < o->n; i++) {
			uint64_t g = s->gen[o->unit - s->base + i];
			const uint8_t *got = task->datain.data + (size_t)i * UNIT;

			if (g == 0)
				continue; /* not written by this run: any content */
			fill_unit(want, S.run, o->unit + i, g);
			ok = !memcmp(got, want, UNIT);
		}
		if (!ok) {
			S.mismatches++;
			if (S.mismatches <= 10)
				fprintf(stderr, "utio soak: session %d read unit %" PRIu64 "+%u: "
					"data mismatch\n", s->id, o->unit, o->n);
		}
		S.reads++;
	}
	S.ops++;
	S.bytes += (uint64_t)o->n * UNIT;
	if (task)
		scsi_free_scsi_task(task);
}

static void soak_issue(struct ssess *s, struct sop *o)
{
	uint32_t n = (rnd() % 4) ? 1 + rnd() % 8 : 1 + rnd() % MAXLEN_UNITS;
	uint64_t off;

	if (n > s->units)
		n = s->units;
	off = rnd() % (s->units - n + 1);
	for (uint32_t i = 0; i < n; i++)
		if (s->busy[off + i])
			return; /* overlaps an op in flight: try again next round */
	o->unit = s->base + off;
	o->n = n;
	o->write = rnd() & 1;
	if (o->write) {
		for (uint32_t i = 0; i < n; i++) {
			uint64_t g = ++s->gen[off + i] + 0; /* generations start at 1 */

			fill_unit(o->buf + (size_t)i * UNIT, S.run, o->unit + i, g);
		}
		if (!iscsi_write16_task(s->iscsi, s->lun, o->unit * (UNIT / s->bs), o->buf,
					n * UNIT, s->bs, 0, 0, 0, 0, 0, soak_cb, o))
			goto fail;
	} else if (!iscsi_read16_task(s->iscsi, s->lun, o->unit * (UNIT / s->bs), n * UNIT,
				      s->bs, 0, 0, 0, 0, 0, soak_cb, o)) {
		goto fail;
	}
	for (uint32_t i = 0; i < n; i++)
		s->busy[off + i] = 1;
	o->busy = true;
	s->inflight++;
	return;
fail:
	S.errors++;
	s->dead = true;
}

static int do_soak(int argc, char **argv)
{
	const char *portal = opt(argc, argv, "-p", "127.0.0.1:3261");
	char *targets = strdup(opt(argc, argv, "-t", ""));
	int nsess = atoi(opt(argc, argv, "-S", "50")), qd = atoi(opt(argc, argv, "-q", "2"));
	double secs = atof(opt(argc, argv, "-d", "10")), t0, tlog;
	uint32_t units = strtoul(opt(argc, argv, "-U", "256"), NULL, 0);
	uint64_t offset = strtoull(opt(argc, argv, "-o", "0"), NULL, 0);
	char *tv[64], *save = NULL;
	int nt = 0, login_failures = 0, alive = 0;
	struct ssess *ss = calloc(nsess, sizeof(*ss));
	struct pollfd *pfd = calloc(nsess, sizeof(*pfd));

	S.run = (uint32_t)getpid();
	rng_state ^= (uint64_t)getpid() << 32 | (uint64_t)time(NULL);
	for (char *p = strtok_r(targets, ",", &save); p && nt < 64; p = strtok_r(NULL, ",", &save))
		tv[nt++] = p;
	if (!nt || nsess < 1 || qd < 1 || units < MAXLEN_UNITS)
		return 2;
	for (int i = 0; i < nsess; i++) {
		struct ssess *s = &ss[i];
		struct iscsi_url *url;
		char u[512];

		snprintf(u, sizeof(u), "iscsi://%s/%s/0", portal, tv[i % nt]);
		set_initiator("soak", i);
		s->id = i;
		s->iscsi = connect_url(u, initiator_name, &url, &s->bs);
		if (!s->iscsi) {
			login_failures++;
			s->dead = true;
			continue;
		}
		s->lun = url->lun;
		iscsi_destroy_url(url);
		s->units = units;
		s->base = offset + (uint64_t)(i / nt) * units;
		s->gen = calloc(units, sizeof(*s->gen));
		s->busy = calloc(units, 1);
		s->ops = calloc(qd, sizeof(*s->ops));
		for (int k = 0; k < qd; k++) {
			s->ops[k].s = s;
			s->ops[k].buf = malloc(MAXLEN_UNITS * UNIT);
		}
		alive++;
	}
	printf("{\"logged_in\": %d, \"login_failures\": %d}\n", alive, login_failures);
	fflush(stdout);
	t0 = tlog = now();
	for (;;) {
		bool stop = now() - t0 >= secs;
		int busy = 0;

		for (int i = 0; i < nsess; i++) {
			struct ssess *s = &ss[i];

			pfd[i].fd = -1;
			pfd[i].revents = 0;
			if (s->dead)
				continue;
			for (int k = 0; !stop && k < qd; k++)
				if (!s->ops[k].busy)
					soak_issue(s, &s->ops[k]);
			if (s->dead)
				continue;
			busy += s->inflight;
			pfd[i].fd = iscsi_get_fd(s->iscsi);
			pfd[i].events = iscsi_which_events(s->iscsi);
		}
		if (stop && busy == 0)
			break;
		if (stop && now() - t0 > secs + 60) {
			fprintf(stderr, "utio soak: %d commands unanswered 60 s after the end\n", busy);
			S.errors += busy;
			break;
		}
		if (poll(pfd, nsess, 1000) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < nsess; i++) {
			struct ssess *s = &ss[i];

			if (s->dead || pfd[i].fd < 0)
				continue;
			if (iscsi_service(s->iscsi, pfd[i].revents) < 0) {
				fprintf(stderr, "utio soak: session %d: %s\n", i,
					iscsi_get_error(s->iscsi));
				S.errors++;
				s->dead = true;
			}
		}
		if (now() - tlog >= 10) {
			tlog = now();
			fprintf(stderr, "utio soak: %.0f s: %" PRIu64 " ops, %" PRIu64 " errors\n",
				tlog - t0, S.ops, S.errors + S.mismatches);
		}
	}
	secs = now() - t0;
	for (int i = 0; i < nsess; i++)
		if (ss[i].iscsi && !ss[i].dead) {
			if (iscsi_logout_sync(ss[i].iscsi) != 0)
				S.errors++;
			iscsi_destroy_context(ss[i].iscsi);
		}
	printf("{\"sessions\": %d, \"ops\": %" PRIu64 ", \"reads\": %" PRIu64 ", \"writes\": %"
	       PRIu64 ", \"bytes\": %" PRIu64 ", \"errors\": %" PRIu64 ", \"mismatches\": %"
	       PRIu64 ", \"login_failures\": %d, \"seconds\": %.1f}\n", alive, S.ops, S.reads,
	       S.writes, S.bytes, S.errors, S.mismatches, login_failures, secs);
	return S.errors || S.mismatches || login_failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		goto usage;
	if (!strcmp(argv[1], "write"))
		return do_write(argc, argv);
	if (!strcmp(argv[1], "verify"))
		return do_verify(argc, argv);
	if (!strcmp(argv[1], "cmds"))
		return do_cmds(argc, argv);
	if (!strcmp(argv[1], "soak"))
		return do_soak(argc, argv);
usage:
	fprintf(stderr, "usage: utio write|verify|cmds|soak ... (see the source)\n");
	return 2;
}
