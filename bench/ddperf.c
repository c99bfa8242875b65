/* ddperf: a minimal iSCSI initiator load generator for bench/ (issue 8).
 *
 * libiscsi's tools cannot negotiate DataDigest, so header *and* data digest
 * costs were not measurable with iscsi-perf / qemu-img. ddperf logs in with
 * exactly the digests asked for (-H, -D), keeps QD READ(16) / WRITE(16)
 * commands in flight on one connection for -t seconds and prints one line:
 *
 *   ddperf: iops=N mbps=M hd=0|1 dd=0|1 cmds=C seconds=S
 *
 * Protocol scope (RFC 7143): one connection, no authentication
 * (AuthMethod=None, security stage then operational stage), ERL 0, in-order
 * data, ImmediateData + InitialR2T=Yes (immediate data up to FirstBurstLength,
 * the rest on R2T), NOP-In pings answered. Every received header and data
 * digest is checked (CRC32C by ISA-L, §12.1, padding included in the data
 * digest); anything unexpected - a protocol error, a digest mismatch, a SCSI
 * status other than GOOD - ends the run with a message and a non-zero exit.
 *
 * Exit status: 0 ok; 1 I/O, protocol, digest, SCSI or verify error;
 * 2 the login did not give what was asked (digests refused, login refused);
 * 64 usage.
 *
 * -V (tests): writes a pattern over the LUN (or -S BYTES of it) - each
 * 512-byte sector holds 64 little-endian 64-bit words: its sector number,
 * the seed, then (sector * 0x9E3779B97F4A7C15 + seed) ^ (j * 0xD6E8FEB86659FD93)
 * for word j = 2..63 - reads it back and compares every byte (-V -w: write
 * only, -V -r: read and compare only).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "iscsi/digest.h" /* the daemon's CRC32C (ISA-L) and wire order */

#define BHS_LEN 48
#define DIGEST_LEN 4
#define RSVD_TAG 0xffffffffu

/* What we offer (the same session parameters as the other bench clients). */
#define OUR_MRDSL 262144u
#define OUR_MAX_BURST 1048576u
#define OUR_FIRST_BURST 262144u
#define LOGIN_MRDSL 8192u /* §13.12 default, during login */

#define MAX_QD 1024u       /* ITT = generation << 10 | slot */
#define MAX_XFER (16u << 20)
#define RBUF_SIZE (4u << 20)
#define STALL_SECONDS 30

enum { EXIT_ERR = 1, EXIT_NEG = 2, EXIT_USAGE = 64 };

/* Opcodes (§11.1.1) */
enum {
	OP_NOP_OUT = 0x00, OP_SCSI_CMD = 0x01, OP_LOGIN_REQ = 0x03,
	OP_DATA_OUT = 0x05, OP_LOGOUT_REQ = 0x06,
	OP_NOP_IN = 0x20, OP_SCSI_RSP = 0x21, OP_TMF_RSP = 0x22,
	OP_LOGIN_RSP = 0x23, OP_TEXT_RSP = 0x24, OP_DATA_IN = 0x25,
	OP_LOGOUT_RSP = 0x26, OP_R2T = 0x31, OP_ASYNC = 0x32, OP_REJECT = 0x3f,
};
#define OP_IMMEDIATE 0x40
#define F_FINAL 0x80

/* ------------------------------------------------------------------ util */

static _Noreturn void die(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static _Noreturn void die(int code, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("ddperf: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static void *xmalloc(size_t n)
{
	void *p;

	if (posix_memalign(&p, 4096, n ? n : 1))
		die(EXIT_ERR, "out of memory (%zu bytes)", n);
	return p;
}

static inline uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline uint32_t be24(const uint8_t *p)
{
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static inline uint64_t be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void put_be24(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 16);
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)v;
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static inline uint32_t pad4(uint32_t n)
{
	return (4 - (n & 3)) & 3;
}

/* RFC 1982 serial number arithmetic for CmdSN / StatSN. */
static inline bool sn_lt(uint32_t a, uint32_t b)
{
	return a != b && (int32_t)(a - b) < 0;
}

static inline bool sn_gt(uint32_t a, uint32_t b)
{
	return a != b && (int32_t)(a - b) > 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64* */
static uint64_t rng_state = 0x853c49e6748fea9bULL;

static uint64_t rng(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* The -V pattern of one 512-byte sector (see the header comment). */
static void fill_sector(uint8_t *p, uint64_t sector, uint64_t seed)
{
	uint64_t base = sector * 0x9E3779B97F4A7C15ULL + seed;

	for (unsigned j = 0; j < 64; j++) {
		uint64_t w = j == 0 ? sector : j == 1 ? seed
				: base ^ ((uint64_t)j * 0xD6E8FEB86659FD93ULL);

		for (unsigned b = 0; b < 8; b++)
			p[j * 8 + b] = (uint8_t)(w >> (8 * b));
	}
}

static void fill_pattern(uint8_t *p, uint64_t byte_off, uint32_t len, uint64_t seed)
{
	for (uint32_t i = 0; i < len; i += 512)
		fill_sector(p + i, (byte_off + i) / 512, seed);
}

/* --------------------------------------------------------------- options */

static struct {
	bool hd, dd, write, random, verify, rw_set;
	uint32_t bs;
	unsigned qd;
	double seconds, stall;
	const char *initiator;
	unsigned lun;
	char host[256];
	char port[16];
	const char *target;
	uint64_t seed;
	bool seed_set;
	uint64_t span;
	bool quiet_login;
} opt = {
	.qd = 1, .seconds = 5, .stall = STALL_SECONDS,
	.initiator = "iqn.2024-01.org.utarget.bench:ddperf",
};

static _Noreturn void usage(const char *why)
{
	if (why)
		fprintf(stderr, "ddperf: %s\n", why);
	fprintf(stderr,
"usage: ddperf [-H] [-D] [-r|-w] [-R] [-V] -b BYTES -q QD -t SECONDS [-T SECONDS]\n"
"              [-n INITIATOR_IQN] [-l LUN] [-s SEED] [-S BYTES] HOST:PORT TARGET_IQN\n"
"  -H  HeaderDigest=CRC32C (otherwise None)   -D  DataDigest=CRC32C (otherwise None)\n"
"      only that value is offered; exit 2 if the target answers anything else\n"
"  -r  read (default)   -w  write   -R  random offsets, aligned to -b (default:\n"
"      sequential, wrapping at the end of the LUN)\n"
"  -b  bytes per command (a multiple of the LUN block size, up to 16 MiB)\n"
"  -q  commands kept in flight (1..%u)   -t  seconds of load (fractions allowed)\n"
"  -T  give up when no command completes for this long (default %d s)\n"
"  -V  verify: write a pattern over the LUN (or its first -S BYTES) with QD\n"
"      commands of -b bytes, read it back and compare every byte (seed -s);\n"
"      -V -w only writes it, -V -r only reads and compares\n"
"output: ddperf: iops=N mbps=M hd=0|1 dd=0|1 cmds=C seconds=S  (MB/s = 10^6 B/s)\n"
"exit: 0 ok, 1 I/O / protocol / digest / SCSI / verify error, 2 negotiation or\n"
"      login refused, 64 usage\n", MAX_QD, STALL_SECONDS);
	exit(EXIT_USAGE);
}

static uint64_t parse_size(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		usage(what);
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end)
		usage(what);
	return v;
}

static void parse_args(int argc, char **argv)
{
	int ch;
	uint64_t v;
	char *end;

	while ((ch = getopt(argc, argv, "HDrwRVb:q:t:T:n:l:s:S:h")) != -1) {
		switch (ch) {
		case 'H': opt.hd = true; break;
		case 'D': opt.dd = true; break;
		case 'r': opt.write = false; opt.rw_set = true; break;
		case 'w': opt.write = true; opt.rw_set = true; break;
		case 'R': opt.random = true; break;
		case 'V': opt.verify = true; break;
		case 'b':
			v = parse_size(optarg, "bad -b");
			if (v == 0 || v > MAX_XFER)
				usage("-b must be 1..16 MiB");
			opt.bs = (uint32_t)v;
			break;
		case 'q':
			v = parse_size(optarg, "bad -q");
			if (v == 0 || v > MAX_QD)
				usage("-q out of range");
			opt.qd = (unsigned)v;
			break;
		case 't':
			errno = 0;
			opt.seconds = strtod(optarg, &end);
			if (errno || *end || !(opt.seconds > 0) || opt.seconds > 1e6)
				usage("bad -t");
			break;
		case 'T':
			errno = 0;
			opt.stall = strtod(optarg, &end);
			if (errno || *end || !(opt.stall > 0))
				usage("bad -T");
			break;
		case 'n': opt.initiator = optarg; break;
		case 'l':
			v = parse_size(optarg, "bad -l");
			if (v > 16383)
				usage("-l: LUN 0..16383");
			opt.lun = (unsigned)v;
			break;
		case 's':
			opt.seed = parse_size(optarg, "bad -s");
			opt.seed_set = true;
			break;
		case 'S': opt.span = parse_size(optarg, "bad -S"); break;
		case 'h': usage(NULL);
		default: usage(NULL);
		}
	}
	if (argc - optind != 2)
		usage("need HOST:PORT and TARGET_IQN");
	if (!opt.bs)
		usage("-b is required");
	const char *hp = argv[optind];
	const char *colon = strrchr(hp, ':');
	if (!colon || colon == hp || !colon[1] || strlen(colon + 1) >= sizeof opt.port)
		usage("HOST:PORT expected");
	size_t hl = (size_t)(colon - hp);
	if (hp[0] == '[' && hl >= 2 && hp[hl - 1] == ']') {
		hp++;
		hl -= 2;
	}
	if (hl >= sizeof opt.host)
		usage("host name too long");
	memcpy(opt.host, hp, hl);
	opt.host[hl] = 0;
	strcpy(opt.port, colon + 1);
	opt.target = argv[optind + 1];
}

/* ------------------------------------------------------------ connection */

struct opdu {                   /* one PDU waiting in the send queue */
	uint8_t hdr[BHS_LEN + DIGEST_LEN];
	uint8_t trl[8];         /* padding + data digest */
	const uint8_t *data;
	uint32_t hlen, dlen, tlen;
};

struct task {
	uint32_t itt;
	uint32_t gen;
	bool busy, write;
	uint64_t lba;           /* in LUN blocks */
	uint32_t len;           /* expected data transfer length */
	uint8_t *buf;           /* write source; read destination (NULL: drop) */
	uint32_t rcvd;          /* Data-In bytes so far */
	uint32_t imm;           /* immediate data sent */
	uint32_t next_datasn, next_r2tsn;
	bool allow_check;       /* setup commands: CHECK CONDITION is returned */
	bool done;
	uint8_t status;
	uint8_t sense_key, asc, ascq;
	uint32_t resid;
	uint8_t cdb[16];
	uint8_t *own;           /* -V: this slot's buffer */
	struct task *next_free;
};

static struct {
	int fd;
	bool hd, dd;            /* negotiated, in effect in full feature phase */
	uint32_t cmdsn, expcmdsn, maxcmdsn, exp_statsn;
	uint32_t max_send_dsl;  /* the target's MaxRecvDataSegmentLength */
	uint32_t first_burst, max_burst;
	bool immediate_data;
	uint16_t tsih;
	uint8_t isid[6];
	uint8_t lun[8];
	/* receive */
	uint8_t *rbuf;
	size_t rstart, rend;
	/* send queue (ring) */
	struct opdu *sq;
	size_t sq_cap, sq_head, sq_len, sq_off;
	/* tasks */
	struct task *tasks;
	unsigned ntasks, inflight;
	struct task *free_tasks;
	bool logout_sent, logged_out;
	uint64_t ncomplete;
} c;

static void (*on_complete)(struct task *t);

static struct opdu *sq_push(void)
{
	if (c.sq_len == c.sq_cap) {
		size_t ncap = c.sq_cap ? c.sq_cap * 2 : 256;
		struct opdu *n = malloc(ncap * sizeof *n);

		if (!n)
			die(EXIT_ERR, "out of memory");
		for (size_t i = 0; i < c.sq_len; i++)
			n[i] = c.sq[(c.sq_head + i) % c.sq_cap];
		free(c.sq);
		c.sq = n;
		c.sq_cap = ncap;
		c.sq_head = 0;
	}
	struct opdu *p = &c.sq[(c.sq_head + c.sq_len) % c.sq_cap];
	c.sq_len++;
	memset(p->hdr, 0, BHS_LEN);
	p->data = NULL;
	p->dlen = 0;
	p->tlen = 0;
	return p;
}

/* Finishes a queued PDU: data segment length, header digest, padding and
 * data digest, computed over the real payload every time. */
static void sq_seal(struct opdu *p, const uint8_t *data, uint32_t dlen)
{
	static const uint8_t zero[4];
	uint32_t pad = pad4(dlen);

	put_be24(p->hdr + 5, dlen);
	p->hlen = BHS_LEN;
	if (c.hd) {
		iscsi_digest_put(p->hdr + BHS_LEN, iscsi_crc32c(p->hdr, BHS_LEN));
		p->hlen += DIGEST_LEN;
	}
	p->data = data;
	p->dlen = dlen;
	if (dlen) {
		memset(p->trl, 0, pad);
		p->tlen = pad;
		if (c.dd) {
			uint32_t crc = iscsi_crc32c_update(ISCSI_CRC_INIT, data, dlen);

			crc = iscsi_crc32c_final(iscsi_crc32c_update(crc, zero, pad));
			iscsi_digest_put(p->trl + pad, crc);
			p->tlen += DIGEST_LEN;
		}
	}
}

/* Sends what the socket takes; returns true when the queue is empty. */
static bool sq_flush(void)
{
	struct iovec iov[IOV_MAX];

	while (c.sq_len) {
		int n = 0;
		size_t skip = c.sq_off;

		for (size_t i = 0; i < c.sq_len && n <= IOV_MAX - 3; i++) {
			struct opdu *p = &c.sq[(c.sq_head + i) % c.sq_cap];
			const void *seg[3] = { p->hdr, p->data, p->trl };
			size_t len[3] = { p->hlen, p->dlen, p->tlen };

			for (int s = 0; s < 3; s++) {
				if (skip >= len[s]) {
					skip -= len[s];
					continue;
				}
				iov[n].iov_base = (uint8_t *)seg[s] + skip;
				iov[n].iov_len = len[s] - skip;
				skip = 0;
				n++;
			}
		}
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t w = sendmsg(c.fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return false;
			if (errno == EINTR)
				continue;
			die(EXIT_ERR, "send: %s", strerror(errno));
		}
		size_t left = (size_t)w;

		while (left && c.sq_len) {
			struct opdu *p = &c.sq[c.sq_head];
			size_t rest = p->hlen + p->dlen + p->tlen - c.sq_off;

			if (left >= rest) {
				left -= rest;
				c.sq_off = 0;
				c.sq_head = (c.sq_head + 1) % c.sq_cap;
				c.sq_len--;
			} else {
				c.sq_off += left;
				left = 0;
			}
		}
	}
	return true;
}

static void connect_target(void)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	int err = getaddrinfo(opt.host, opt.port, &hints, &res);
	int one = 1;

	if (err)
		die(EXIT_ERR, "%s:%s: %s", opt.host, opt.port, gai_strerror(err));
	c.fd = -1;
	for (ai = res; ai; ai = ai->ai_next) {
		c.fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (c.fd < 0)
			continue;
		if (connect(c.fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno;
		close(c.fd);
		c.fd = -1;
	}
	freeaddrinfo(res);
	if (c.fd < 0)
		die(EXIT_ERR, "connect to %s:%s: %s", opt.host, opt.port, strerror(err));
	setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	/* the login is done with blocking I/O: do not hang on a mute target */
	struct timeval tv = { .tv_sec = STALL_SECONDS };
	setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* ----------------------------------------------------------------- login */

static void send_all(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t w = send(c.fd, p, len, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			die(EXIT_ERR, "send during login: %s", strerror(errno));
		}
		p += w;
		len -= (size_t)w;
	}
}

static void recv_all(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t r = recv(c.fd, p, len, 0);

		if (r == 0)
			die(EXIT_NEG, "login: the target closed the connection");
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die(EXIT_ERR, "login: receive: %s", strerror(errno));
		}
		p += r;
		len -= (size_t)r;
	}
}

struct text {
	char *buf;
	size_t len, cap;
};

static void text_reserve(struct text *t, size_t n)
{
	if (t->len + n > t->cap) {
		t->cap = (t->len + n) * 2;
		t->buf = realloc(t->buf, t->cap);
		if (!t->buf)
			die(EXIT_ERR, "out of memory");
	}
}

static void text_add(struct text *t, const char *key, const char *val)
{
	text_reserve(t, strlen(key) + strlen(val) + 2);
	t->len += (size_t)sprintf(t->buf + t->len, "%s=%s", key, val) + 1;
}

static void text_append(struct text *t, const char *buf, size_t len)
{
	if (!len)
		return;
	text_reserve(t, len);
	memcpy(t->buf + t->len, buf, len);
	t->len += len;
}

/* Keys the target answered, over the whole login. */
#define MAX_KEYS 64
static struct kv {
	char key[64];
	char val[256];
} answers[MAX_KEYS];
static unsigned nanswers;

static const char *answer(const char *key)
{
	for (unsigned i = 0; i < nanswers; i++)
		if (!strcmp(answers[i].key, key))
			return answers[i].val;
	return NULL;
}

static const char *const offered_keys[] = {
	"InitiatorName", "TargetName", "SessionType", "AuthMethod",
	"HeaderDigest", "DataDigest", "MaxRecvDataSegmentLength",
	"MaxBurstLength", "FirstBurstLength", "ImmediateData", "InitialR2T",
	"MaxOutstandingR2T", "ErrorRecoveryLevel", "DataPDUInOrder",
	"DataSequenceInOrder", NULL
};

/* Declarations a target makes that need no answer. */
static const char *const declarative_keys[] = {
	"TargetAlias", "TargetPortalGroupTag", "TargetAddress",
	"MaxRecvDataSegmentLength", NULL
};

static bool in_list(const char *const *l, const char *k)
{
	for (; *l; l++)
		if (!strcmp(*l, k))
			return true;
	return false;
}

/* Parses key=value\0 pairs; keys the target proposes on its own get an
 * answer in `reply` (accepting its value, NotUnderstood for unknown ones). */
static void parse_keys(const char *buf, size_t len, struct text *reply)
{
	static const char *const acceptable[] = {
		"MaxConnections", "DefaultTime2Wait", "DefaultTime2Retain",
		"IFMarker", "OFMarker", "TaskReporting", "iSCSIProtocolLevel",
		NULL
	};
	size_t i = 0;

	while (i < len) {
		const char *kv = buf + i;
		size_t n = strnlen(kv, len - i);
		const char *eq = memchr(kv, '=', n);

		i += n + 1;
		if (n == 0)
			continue;
		if (!eq || eq == kv)
			die(EXIT_NEG, "login: malformed text key '%.*s'", (int)n, kv);
		size_t kl = (size_t)(eq - kv), vl = n - kl - 1;
		char key[64], val[256];

		if (kl >= sizeof key || vl >= sizeof val)
			die(EXIT_NEG, "login: oversized key '%.*s'", (int)n, kv);
		memcpy(key, kv, kl);
		key[kl] = 0;
		memcpy(val, eq + 1, vl);
		val[vl] = 0;
		unsigned k;
		for (k = 0; k < nanswers; k++)
			if (!strcmp(answers[k].key, key))
				break;
		if (k == nanswers) {
			if (nanswers == MAX_KEYS)
				die(EXIT_NEG, "login: too many keys");
			nanswers++;
		}
		strcpy(answers[k].key, key);
		strcpy(answers[k].val, val);
		if (in_list(offered_keys, key) || in_list(declarative_keys, key))
			continue;
		/* The target proposes a key: answer it. */
		if (in_list(acceptable, key)) {
			char *comma = strchr(val, ',');

			if (comma)
				*comma = 0;
			text_add(reply, key, val);
		} else {
			text_add(reply, key, "NotUnderstood");
		}
	}
}

static const char *login_status_text(unsigned cls, unsigned det)
{
	switch (cls << 8 | det) {
	case 0x0101: return "target moved temporarily";
	case 0x0102: return "target moved permanently";
	case 0x0200: return "initiator error";
	case 0x0201: return "authentication failure";
	case 0x0202: return "authorization failure";
	case 0x0203: return "target not found";
	case 0x0204: return "target removed";
	case 0x0205: return "unsupported version";
	case 0x0206: return "too many connections";
	case 0x0207: return "missing parameter";
	case 0x0208: return "can't include in session";
	case 0x0209: return "session type not supported";
	case 0x020a: return "session does not exist";
	case 0x020b: return "invalid during login";
	case 0x0300: return "target error";
	case 0x0301: return "service unavailable";
	case 0x0302: return "out of resources";
	default: return "?";
	}
}

/* One login exchange in stage csg: sends `keys` (then empty requests while
 * the target continues), returns when the target transits to nsg. */
static void login_stage(unsigned csg, unsigned nsg, struct text *keys)
{
	static uint32_t itt = 0x1000;
	struct text reply = { 0 };
	char *rtext = NULL;
	size_t rlen = 0;
	bool transit = true;

	for (int round = 0; round < 16; round++) {
		uint8_t h[BHS_LEN] = { 0 };
		uint32_t dlen = (uint32_t)keys->len;

		if (dlen > LOGIN_MRDSL)
			die(EXIT_NEG, "login: our keys do not fit one PDU");
		h[0] = OP_LOGIN_REQ | OP_IMMEDIATE;
		h[1] = (uint8_t)((transit ? 0x80 : 0) | csg << 2 | (transit ? nsg : 0));
		put_be24(h + 5, dlen);
		memcpy(h + 8, c.isid, 6);
		h[14] = (uint8_t)(c.tsih >> 8);
		h[15] = (uint8_t)c.tsih;
		put_be32(h + 16, itt);
		put_be32(h + 24, c.cmdsn);
		put_be32(h + 28, c.exp_statsn);
		send_all(h, BHS_LEN);
		if (dlen) {
			static const uint8_t zero[4];

			send_all(keys->buf, dlen);
			send_all(zero, pad4(dlen));
		}
		keys->len = 0;

		uint8_t r[BHS_LEN];

		recv_all(r, BHS_LEN);
		if ((r[0] & 0x3f) != OP_LOGIN_RSP)
			die(EXIT_NEG, "login: expected a Login Response, got opcode 0x%02x", r[0] & 0x3f);
		uint32_t ahs = r[4] * 4u, rdl = be24(r + 5);
		if (rdl > (1u << 20))
			die(EXIT_NEG, "login: %u-byte Login Response", rdl);
		char *seg = malloc(ahs + rdl + pad4(rdl) + 1);
		if (!seg)
			die(EXIT_ERR, "out of memory");
		recv_all(seg, ahs + rdl + pad4(rdl));
		unsigned cls = r[36], det = r[37];
		if (cls)
			die(EXIT_NEG, "login refused by %s: status 0x%02x%02x (%s)",
			    opt.target, cls, det, login_status_text(cls, det));
		c.exp_statsn = be32(r + 24) + 1;
		c.expcmdsn = be32(r + 28);
		c.maxcmdsn = be32(r + 32);
		c.tsih = (uint16_t)(r[14] << 8 | r[15]);
		rtext = realloc(rtext, rlen + rdl + 1);
		if (!rtext)
			die(EXIT_ERR, "out of memory");
		memcpy(rtext + rlen, seg + ahs, rdl);
		rlen += rdl;
		free(seg);
		if (r[1] & 0x40) {      /* C: more text follows */
			transit = false;
			continue;
		}
		parse_keys(rtext, rlen, &reply);
		rlen = 0;
		if (r[1] & 0x80) {      /* T: the target transits */
			if ((r[1] & 3) != nsg)
				die(EXIT_NEG, "login: target went to stage %u, not %u",
				    r[1] & 3, nsg);
			free(rtext);
			free(reply.buf);
			return;
		}
		/* The target wants another round (keys it proposed, or not
		 * ready to transit): answer and ask to transit again. */
		transit = true;
		text_append(keys, reply.buf, reply.len);
		reply.len = 0;
	}
	die(EXIT_NEG, "login: no transition to stage %u after 16 exchanges", nsg);
}

static uint32_t num_answer(const char *key, uint32_t dflt, uint32_t lo, uint32_t hi)
{
	const char *v = answer(key);
	char *end;
	unsigned long n;

	if (!v)
		return dflt;
	errno = 0;
	n = strtoul(v, &end, 0);
	if (errno || *end || end == v || n < lo || n > hi)
		die(EXIT_NEG, "login: target answered %s=%s (expected %u..%u)", key, v, lo, hi);
	return (uint32_t)n;
}

static void expect_answer(const char *key, const char *want)
{
	const char *v = answer(key);

	if (!v)
		die(EXIT_NEG, "login: the target did not answer %s (asked for %s)", key, want);
	if (strcmp(v, want))
		die(EXIT_NEG, "login: target answered %s=%s, asked for %s only", key, v, want);
}

static void login(void)
{
	struct text keys = { 0 };
	char num[32];
	pid_t pid = getpid();

	c.isid[0] = 0x80;       /* random qualifier (§11.12.5) */
	c.isid[1] = 0;
	uint32_t q = (uint32_t)pid ^ (uint32_t)time(NULL) << 16 ^ (uint32_t)rng();
	put_be32(c.isid + 2, q);
	c.cmdsn = 1;
	c.max_send_dsl = LOGIN_MRDSL;

	/* Security stage: no authentication. */
	text_add(&keys, "InitiatorName", opt.initiator);
	text_add(&keys, "TargetName", opt.target);
	text_add(&keys, "SessionType", "Normal");
	text_add(&keys, "AuthMethod", "None");
	login_stage(0, 1, &keys);
	const char *am = answer("AuthMethod");
	if (am && strcmp(am, "None"))
		die(EXIT_NEG, "login: target answered AuthMethod=%s (no authentication here)", am);

	/* Operational stage, straight to full feature phase. */
	text_add(&keys, "HeaderDigest", opt.hd ? "CRC32C" : "None");
	text_add(&keys, "DataDigest", opt.dd ? "CRC32C" : "None");
	snprintf(num, sizeof num, "%u", OUR_MRDSL);
	text_add(&keys, "MaxRecvDataSegmentLength", num);
	snprintf(num, sizeof num, "%u", OUR_MAX_BURST);
	text_add(&keys, "MaxBurstLength", num);
	snprintf(num, sizeof num, "%u", OUR_FIRST_BURST);
	text_add(&keys, "FirstBurstLength", num);
	text_add(&keys, "ImmediateData", "Yes");
	text_add(&keys, "InitialR2T", "Yes");
	text_add(&keys, "MaxOutstandingR2T", "1");
	text_add(&keys, "ErrorRecoveryLevel", "0");
	text_add(&keys, "DataPDUInOrder", "Yes");
	text_add(&keys, "DataSequenceInOrder", "Yes");
	login_stage(1, 3, &keys);
	free(keys.buf);

	expect_answer("HeaderDigest", opt.hd ? "CRC32C" : "None");
	expect_answer("DataDigest", opt.dd ? "CRC32C" : "None");
	c.hd = opt.hd;
	c.dd = opt.dd;
	c.max_send_dsl = num_answer("MaxRecvDataSegmentLength", 8192, 512, (1u << 24) - 1);
	c.max_burst = num_answer("MaxBurstLength", 262144, 512, OUR_MAX_BURST);
	c.first_burst = num_answer("FirstBurstLength", 65536, 512, OUR_FIRST_BURST);
	if (c.first_burst > c.max_burst)
		c.first_burst = c.max_burst;
	const char *v = answer("ImmediateData");
	c.immediate_data = !v || !strcmp(v, "Yes");
	if (v && strcmp(v, "Yes") && strcmp(v, "No"))
		die(EXIT_NEG, "login: target answered ImmediateData=%s", v);
	v = answer("InitialR2T");
	if (v && strcmp(v, "Yes"))
		die(EXIT_NEG, "login: target answered InitialR2T=%s (OR with our Yes)", v);
	num_answer("MaxOutstandingR2T", 1, 1, 1);
	num_answer("ErrorRecoveryLevel", 0, 0, 0);
	v = answer("DataPDUInOrder");
	if (v && strcmp(v, "Yes"))
		die(EXIT_NEG, "login: target answered DataPDUInOrder=%s", v);
	v = answer("DataSequenceInOrder");
	if (v && strcmp(v, "Yes"))
		die(EXIT_NEG, "login: target answered DataSequenceInOrder=%s", v);
	c.cmdsn = c.expcmdsn;
}

/* ---------------------------------------------------------------- engine */

static struct task *task_by_itt(uint32_t itt, const char *what)
{
	uint32_t slot = itt & (MAX_QD - 1);
	struct task *t;

	if (slot >= c.ntasks || !(t = &c.tasks[slot])->busy || t->itt != itt)
		die(EXIT_ERR, "%s for unknown ITT 0x%08x", what, itt);
	return t;
}

static void update_window(const uint8_t *h)
{
	uint32_t exp = be32(h + 28), max = be32(h + 32);

	if (sn_lt(max, exp - 1))        /* §4.2.2.1: ignore a bad window */
		return;
	if (sn_gt(exp, c.expcmdsn))
		c.expcmdsn = exp;
	if (sn_gt(max, c.maxcmdsn))
		c.maxcmdsn = max;
}

static void check_statsn(const uint8_t *h, const char *what)
{
	uint32_t sn = be32(h + 24);

	if (sn != c.exp_statsn)
		die(EXIT_ERR, "%s with StatSN %u, expected %u", what, sn, c.exp_statsn);
	c.exp_statsn = sn + 1;
}

static void advance_statsn(const uint8_t *h)
{
	uint32_t sn = be32(h + 24);

	if (!sn_lt(sn, c.exp_statsn))
		c.exp_statsn = sn + 1;
}

static const char *status_name(uint8_t s)
{
	switch (s) {
	case 0x00: return "GOOD";
	case 0x02: return "CHECK CONDITION";
	case 0x04: return "CONDITION MET";
	case 0x08: return "BUSY";
	case 0x18: return "RESERVATION CONFLICT";
	case 0x28: return "TASK SET FULL";
	case 0x30: return "ACA ACTIVE";
	case 0x40: return "TASK ABORTED";
	default: return "?";
	}
}

static void complete(struct task *t, uint8_t status)
{
	t->status = status;
	if (status != 0 && !(t->allow_check && status == 0x02)) {
		if (status == 0x02)
			die(EXIT_ERR, "%s of LBA %" PRIu64 " (%u bytes): CHECK CONDITION, "
			    "sense key 0x%x ASC 0x%02x ASCQ 0x%02x",
			    t->cdb[0] == 0x8a ? "WRITE(16)" : t->cdb[0] == 0x88 ? "READ(16)" : "command",
			    t->lba, t->len, t->sense_key, t->asc, t->ascq);
		die(EXIT_ERR, "command 0x%02x (LBA %" PRIu64 "): SCSI status 0x%02x (%s)",
		    t->cdb[0], t->lba, status, status_name(status));
	}
	t->done = true;
	t->busy = false;
	c.inflight--;
	c.ncomplete++;
	if (on_complete)
		on_complete(t);
}

static void on_data_in(const uint8_t *h, const uint8_t *data, uint32_t dlen)
{
	struct task *t = task_by_itt(be32(h + 16), "Data-In");
	uint32_t datasn = be32(h + 36), off = be32(h + 40);

	if (t->write)
		die(EXIT_ERR, "Data-In for a write (ITT 0x%08x)", t->itt);
	if (datasn != t->next_datasn)
		die(EXIT_ERR, "Data-In DataSN %u, expected %u (ITT 0x%08x)", datasn,
		    t->next_datasn, t->itt);
	t->next_datasn++;
	if (off != t->rcvd || (uint64_t)off + dlen > t->len)
		die(EXIT_ERR, "Data-In offset %u + %u bytes: expected offset %u of %u "
		    "(DataPDUInOrder=Yes)", off, dlen, t->rcvd, t->len);
	if (t->buf)
		memcpy(t->buf + off, data, dlen);
	t->rcvd += dlen;
	if (h[1] & 0x01) {              /* S: status in this PDU */
		if (!(h[1] & F_FINAL))
			die(EXIT_ERR, "Data-In with S but not F");
		check_statsn(h, "Data-In with status");
		t->resid = be32(h + 44);
		if ((h[1] & 0x06) && !t->allow_check)
			die(EXIT_ERR, "Data-In %s, residual %u (ITT 0x%08x)",
			    h[1] & 0x04 ? "overflow" : "underflow", t->resid, t->itt);
		if (!(h[1] & 0x06) && t->rcvd != t->len)
			die(EXIT_ERR, "read ended after %u of %u bytes without a residual",
			    t->rcvd, t->len);
		complete(t, h[3]);
	}
}

static void parse_sense(struct task *t, const uint8_t *data, uint32_t dlen)
{
	t->sense_key = t->asc = t->ascq = 0xff;
	if (dlen < 2)
		return;
	uint32_t sl = (uint32_t)data[0] << 8 | data[1];
	const uint8_t *s = data + 2;

	if (sl + 2 > dlen || sl < 4)
		return;
	if ((s[0] & 0x7e) == 0x72) {    /* descriptor format */
		t->sense_key = s[1] & 0x0f;
		t->asc = s[2];
		t->ascq = s[3];
	} else if (sl >= 14) {          /* fixed format */
		t->sense_key = s[2] & 0x0f;
		t->asc = s[12];
		t->ascq = s[13];
	}
}

static void on_scsi_rsp(const uint8_t *h, const uint8_t *data, uint32_t dlen)
{
	struct task *t = task_by_itt(be32(h + 16), "SCSI Response");

	check_statsn(h, "SCSI Response");
	if (h[2] != 0)
		die(EXIT_ERR, "SCSI Response: iSCSI response 0x%02x (target failure) for "
		    "command 0x%02x", h[2], t->cdb[0]);
	t->resid = be32(h + 44);
	if (h[3] == 0x02)
		parse_sense(t, data, dlen);
	if (h[3] == 0 && !t->allow_check) {
		if (h[1] & 0x06)
			die(EXIT_ERR, "SCSI Response %s, residual %u (command 0x%02x, %u bytes)",
			    h[1] & 0x04 ? "overflow" : "underflow", t->resid, t->cdb[0], t->len);
		if (!t->write && t->rcvd != t->len)
			die(EXIT_ERR, "read got %u of %u bytes", t->rcvd, t->len);
	}
	complete(t, h[3]);
}

static void send_data_out(struct task *t, uint32_t ttt, uint32_t off, uint32_t len)
{
	uint32_t datasn = 0;

	while (len) {
		uint32_t n = len < c.max_send_dsl ? len : c.max_send_dsl;
		struct opdu *p = sq_push();

		p->hdr[0] = OP_DATA_OUT;
		p->hdr[1] = n == len ? F_FINAL : 0;
		memcpy(p->hdr + 8, c.lun, 8);
		put_be32(p->hdr + 16, t->itt);
		put_be32(p->hdr + 20, ttt);
		put_be32(p->hdr + 28, c.exp_statsn);
		put_be32(p->hdr + 36, datasn++);
		put_be32(p->hdr + 40, off);
		sq_seal(p, t->buf + off, n);
		off += n;
		len -= n;
	}
}

static void on_r2t(const uint8_t *h)
{
	struct task *t = task_by_itt(be32(h + 16), "R2T");
	uint32_t r2tsn = be32(h + 36), off = be32(h + 40), len = be32(h + 44);

	if (!t->write)
		die(EXIT_ERR, "R2T for a read (ITT 0x%08x)", t->itt);
	if (r2tsn != t->next_r2tsn)
		die(EXIT_ERR, "R2TSN %u, expected %u", r2tsn, t->next_r2tsn);
	t->next_r2tsn++;
	if (len == 0 || (uint64_t)off + len > t->len || off < t->imm || len > c.max_burst)
		die(EXIT_ERR, "R2T for offset %u length %u of a %u-byte write "
		    "(immediate %u, MaxBurstLength %u)", off, len, t->len, t->imm, c.max_burst);
	send_data_out(t, be32(h + 20), off, len);
}

static void on_nop_in(const uint8_t *h)
{
	uint32_t itt = be32(h + 16), ttt = be32(h + 20);

	if (itt != RSVD_TAG)
		die(EXIT_ERR, "NOP-In answering a NOP-Out we never sent (ITT 0x%08x)", itt);
	if (ttt == RSVD_TAG)
		return;                 /* no answer wanted */
	struct opdu *p = sq_push();

	p->hdr[0] = OP_NOP_OUT | OP_IMMEDIATE;
	p->hdr[1] = F_FINAL;
	memcpy(p->hdr + 8, h + 8, 8);
	put_be32(p->hdr + 16, RSVD_TAG);
	put_be32(p->hdr + 20, ttt);
	put_be32(p->hdr + 24, c.cmdsn);
	put_be32(p->hdr + 28, c.exp_statsn);
	sq_seal(p, NULL, 0);
}

static void handle_pdu(const uint8_t *h, const uint8_t *data, uint32_t dlen)
{
	uint8_t op = h[0] & 0x3f;

	update_window(h);
	switch (op) {
	case OP_DATA_IN:
		on_data_in(h, data, dlen);
		break;
	case OP_SCSI_RSP:
		on_scsi_rsp(h, data, dlen);
		break;
	case OP_R2T:
		on_r2t(h);
		break;
	case OP_NOP_IN:
		on_nop_in(h);
		break;
	case OP_LOGOUT_RSP:
		advance_statsn(h);
		if (h[2] != 0)
			die(EXIT_ERR, "Logout Response 0x%02x", h[2]);
		c.logged_out = true;
		break;
	case OP_REJECT:
		die(EXIT_ERR, "target sent Reject, reason 0x%02x, of a PDU with opcode 0x%02x",
		    h[2], dlen >= 1 ? data[0] & 0x3f : 0xff);
	case OP_ASYNC:
		advance_statsn(h);
		if (h[36] == 0)
			break;          /* SCSI asynchronous event: nothing to do */
		die(EXIT_ERR, "target sent Async Message event %u (%s)", h[36],
		    h[36] == 1 ? "asks us to log out" : h[36] == 2 ? "drops the connection" :
		    h[36] == 3 ? "drops the session" : h[36] == 4 ? "asks to renegotiate" : "?");
	default:
		die(EXIT_ERR, "unexpected PDU, opcode 0x%02x", op);
	}
}

/* Handles every complete PDU in the receive buffer. */
static void parse_rbuf(void)
{
	const uint32_t hdl = c.hd ? DIGEST_LEN : 0;

	for (;;) {
		size_t avail = c.rend - c.rstart;

		if (avail < BHS_LEN)
			break;
		uint8_t *h = c.rbuf + c.rstart;
		uint32_t ahs = h[4] * 4u, dlen = be24(h + 5), pad = pad4(dlen);

		if (dlen > OUR_MRDSL)
			die(EXIT_ERR, "opcode 0x%02x with a %u-byte data segment, above our "
			    "MaxRecvDataSegmentLength %u", h[0] & 0x3f, dlen, OUR_MRDSL);
		size_t total = BHS_LEN + ahs + hdl + dlen + pad + (c.dd && dlen ? DIGEST_LEN : 0);

		if (avail < total)
			break;
		if (hdl) {
			uint32_t want = iscsi_crc32c(h, BHS_LEN + ahs), got = iscsi_digest_get(h + BHS_LEN + ahs);

			if (want != got)
				die(EXIT_ERR, "header digest mismatch (opcode 0x%02x): received "
				    "0x%08x, computed 0x%08x", h[0] & 0x3f, got, want);
		}
		uint8_t *data = h + BHS_LEN + ahs + hdl;

		if (c.dd && dlen) {
			uint32_t want = iscsi_crc32c(data, dlen + pad), got = iscsi_digest_get(data + dlen + pad);

			if (want != got)
				die(EXIT_ERR, "data digest mismatch (opcode 0x%02x, %u bytes): "
				    "received 0x%08x, computed 0x%08x", h[0] & 0x3f, dlen, got, want);
		}
		c.rstart += total;
		handle_pdu(h, data, dlen);
	}
	if (c.rstart == c.rend) {
		c.rstart = c.rend = 0;
	} else if (RBUF_SIZE - c.rend < 2 * (size_t)OUR_MRDSL) {
		memmove(c.rbuf, c.rbuf + c.rstart, c.rend - c.rstart);
		c.rend -= c.rstart;
		c.rstart = 0;
	}
}

/* Reads what is there; false when nothing was. */
static bool do_recv(void)
{
	bool any = false;

	for (int i = 0; i < 8; i++) {
		size_t space = RBUF_SIZE - c.rend;
		ssize_t r = recv(c.fd, c.rbuf + c.rend, space, MSG_DONTWAIT);

		if (r == 0) {
			if (c.logout_sent && !c.inflight) {
				/* istgt sometimes closes instead of answering:
				 * the session is over either way */
				if (!c.logged_out)
					fprintf(stderr, "ddperf: note: the target closed the "
						"connection without a Logout Response\n");
				c.logged_out = true;
				return any;
			}
			die(EXIT_ERR, "the target closed the connection (%u commands in flight)",
			    c.inflight);
		}
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return any;
			if (errno == EINTR)
				continue;
			die(EXIT_ERR, "receive: %s", strerror(errno));
		}
		any = true;
		c.rend += (size_t)r;
		parse_rbuf();
		if ((size_t)r < space)
			return any;
	}
	return any;
}

/* Progress is a completed command: NOP-In pings alone do not count. */
static void check_stall(void)
{
	static uint64_t seen;
	static double since;
	double now = now_s();

	if (since == 0 || !c.inflight || c.ncomplete != seen) {
		seen = c.ncomplete;
		since = now;
	} else if (now - since > opt.stall) {
		die(EXIT_ERR, "no command completed for %.0f s (%u in flight, %zu PDUs "
		    "not yet sent): the target is stuck or waits for bytes we do not send",
		    opt.stall, c.inflight, c.sq_len);
	}
}

/* One round: send what is queued, wait up to timeout_ms, receive. */
static void pump(int timeout_ms)
{
	bool flushed = sq_flush();
	struct pollfd pfd = { .fd = c.fd, .events = POLLIN | (flushed ? 0 : POLLOUT) };
	int n = poll(&pfd, 1, timeout_ms);

	if (n < 0) {
		if (errno == EINTR)
			return;
		die(EXIT_ERR, "poll: %s", strerror(errno));
	}
	if (n > 0 && (pfd.revents & (POLLIN | POLLERR | POLLHUP)))
		do_recv();
	check_stall();
}

static struct task *task_get(void)
{
	struct task *t = c.free_tasks;

	if (!t)
		return NULL;
	c.free_tasks = t->next_free;
	return t;
}

static void task_put(struct task *t)
{
	t->next_free = c.free_tasks;
	c.free_tasks = t;
}

static bool window_open(void)
{
	return !sn_gt(c.cmdsn, c.maxcmdsn);
}

/* Queues a SCSI command PDU (with immediate data for writes). */
static void submit(struct task *t, const uint8_t cdb[16], bool write, uint32_t len,
		   uint8_t *buf)
{
	struct opdu *p = sq_push();
	uint32_t imm = 0;

	t->gen = (t->gen + 1) & 0x1fffff;  /* ITT never 0xffffffff */
	t->itt = t->gen << 10 | (uint32_t)(t - c.tasks);
	t->busy = true;
	t->done = false;
	t->write = write;
	t->len = len;
	t->buf = buf;
	t->rcvd = 0;
	t->next_datasn = 0;
	t->next_r2tsn = 0;
	t->status = 0xff;
	memcpy(t->cdb, cdb, 16);
	if (write && c.immediate_data) {
		imm = len;
		if (imm > c.first_burst)
			imm = c.first_burst;
		if (imm > c.max_send_dsl)
			imm = c.max_send_dsl;
	}
	t->imm = imm;
	p->hdr[0] = OP_SCSI_CMD;
	p->hdr[1] = F_FINAL | (len ? (write ? 0x20 : 0x40) : 0) | 0x01; /* SIMPLE */
	memcpy(p->hdr + 8, c.lun, 8);
	put_be32(p->hdr + 16, t->itt);
	put_be32(p->hdr + 20, len);
	put_be32(p->hdr + 24, c.cmdsn++);
	put_be32(p->hdr + 28, c.exp_statsn);
	memcpy(p->hdr + 32, cdb, 16);
	sq_seal(p, imm ? buf : NULL, imm);
	c.inflight++;
}

static void cdb_rw16(uint8_t cdb[16], bool write, uint64_t lba, uint32_t nblk)
{
	memset(cdb, 0, 16);
	cdb[0] = write ? 0x8a : 0x88;
	put_be64(cdb + 2, lba);
	put_be32(cdb + 10, nblk);
}

/* Runs one setup command to completion. */
static struct task *run_sync(const uint8_t cdb[16], uint32_t len, uint8_t *buf)
{
	struct task *t = &c.tasks[0];

	while (!window_open())
		pump(1000);
	t->allow_check = true;
	t->sense_key = t->asc = t->ascq = 0xff;
	submit(t, cdb, false, len, buf);
	while (!t->done)
		pump(1000);
	t->allow_check = false;
	return t;
}

static uint32_t lun_block;
static uint64_t lun_blocks;

static void read_capacity(void)
{
	uint8_t cdb[16], buf[32];
	struct task *t;

	for (int tries = 0;; tries++) {
		memset(cdb, 0, 16);
		cdb[0] = 0x9e;          /* SERVICE ACTION IN(16) */
		cdb[1] = 0x10;          /* READ CAPACITY(16) */
		put_be32(cdb + 10, sizeof buf);
		memset(buf, 0, sizeof buf);
		t = run_sync(cdb, sizeof buf, buf);
		if (t->status == 0 && t->rcvd >= 12) {
			lun_blocks = be64(buf) + 1;
			lun_block = be32(buf + 8);
			break;
		}
		if (t->status == 0x02 && t->sense_key == 0x6 && tries < 5)
			continue;       /* UNIT ATTENTION: once more */
		if (t->status != 0x02 || t->sense_key != 0x5)
			die(EXIT_ERR, "READ CAPACITY(16): status 0x%02x sense %x/%02x/%02x",
			    t->status, t->sense_key, t->asc, t->ascq);
		/* ILLEGAL REQUEST: READ CAPACITY(10) */
		memset(cdb, 0, 16);
		cdb[0] = 0x25;
		memset(buf, 0, sizeof buf);
		t = run_sync(cdb, 8, buf);
		if (t->status != 0 || t->rcvd < 8)
			die(EXIT_ERR, "READ CAPACITY(10): status 0x%02x sense %x/%02x/%02x",
			    t->status, t->sense_key, t->asc, t->ascq);
		lun_blocks = (uint64_t)be32(buf) + 1;
		lun_block = be32(buf + 4);
		break;
	}
	if (lun_block < 512 || lun_block > (1u << 20) || (lun_block & (lun_block - 1)))
		die(EXIT_ERR, "LUN block size %u not supported", lun_block);
}

static void logout(void)
{
	struct opdu *p = sq_push();
	double end = now_s() + 5;

	p->hdr[0] = OP_LOGOUT_REQ | OP_IMMEDIATE;
	p->hdr[1] = F_FINAL;    /* reason 0: close the session */
	put_be32(p->hdr + 16, 0x7fffffff);
	put_be32(p->hdr + 24, c.cmdsn);
	put_be32(p->hdr + 28, c.exp_statsn);
	sq_seal(p, NULL, 0);
	c.logout_sent = true;
	while (!c.logged_out && now_s() < end)
		pump(200);
	close(c.fd);
}

/* ------------------------------------------------------------------ load */

static struct {
	uint64_t next_seq;      /* sequential: next LBA */
	uint64_t slots;         /* random: transfer-size slots in the LUN */
	uint32_t nblk;
	uint64_t cmds;
	uint8_t *wbuf;
} L;

static void load_complete(struct task *t)
{
	L.cmds++;
	task_put(t);
}

static void issue_one(struct task *t)
{
	uint8_t cdb[16];
	uint64_t lba;

	if (opt.random) {
		lba = (rng() % L.slots) * L.nblk;
	} else {
		if (L.next_seq + L.nblk > lun_blocks)
			L.next_seq = 0;
		lba = L.next_seq;
		L.next_seq += L.nblk;
	}
	t->lba = lba;
	cdb_rw16(cdb, opt.write, lba, L.nblk);
	submit(t, cdb, opt.write, opt.bs, opt.write ? L.wbuf : NULL);
}

static void print_result(uint64_t cmds, double secs)
{
	double iops = secs > 0 ? (double)cmds / secs : 0;

	printf("ddperf: iops=%.0f mbps=%.1f hd=%d dd=%d cmds=%" PRIu64 " seconds=%.3f\n",
	       iops, iops * opt.bs / 1e6, c.hd, c.dd, cmds, secs);
	fflush(stdout);
}

static void run_load(void)
{
	L.nblk = opt.bs / lun_block;
	L.slots = lun_blocks / L.nblk;
	if (opt.write) {
		L.wbuf = xmalloc(opt.bs);
		fill_pattern(L.wbuf, 0, opt.bs, opt.seed);
	}
	on_complete = load_complete;
	for (unsigned i = 0; i < opt.qd; i++)
		task_put(&c.tasks[i]);
	double t0 = now_s(), deadline = t0 + opt.seconds, t1;
	bool stopping = false;

	for (;;) {
		if (!stopping) {
			struct task *t;

			while (window_open() && (t = task_get()))
				issue_one(t);
		}
		if (c.inflight == 0 && stopping)
			break;
		/* nothing in flight and not stopping: the command window is
		 * closed, wait for the target to open it (NOP-In) */
		pump(c.inflight ? 1000 : 50);
		if (!stopping && now_s() >= deadline)
			stopping = true;
	}
	t1 = now_s();
	print_result(L.cmds, t1 - t0);
}

/* ---------------------------------------------------------------- verify */

static struct {
	uint64_t ncmds, next, done;
	uint64_t *order;
	uint32_t nblk;
	bool write;
	uint8_t *expect;
} V;

static void verify_complete(struct task *t)
{
	if (!V.write) {
		uint64_t off = t->lba * lun_block;

		fill_pattern(V.expect, off, opt.bs, opt.seed);
		if (memcmp(V.expect, t->buf, opt.bs)) {
			uint32_t i = 0;

			while (V.expect[i] == t->buf[i])
				i++;
			die(EXIT_ERR, "verify: mismatch at LUN byte %" PRIu64 " (sector %" PRIu64
			    ", +%u): read 0x%02x, expected 0x%02x", off + i, (off + i) / 512,
			    (i % 512), t->buf[i], V.expect[i]);
		}
	}
	V.done++;
	task_put(t);
}

static void verify_pass(bool write)
{
	V.write = write;
	V.next = V.done = 0;
	for (unsigned i = 0; i < opt.qd; i++)
		task_put(&c.tasks[i]);
	while (V.done < V.ncmds) {
		struct task *t;

		while (V.next < V.ncmds && window_open() && (t = task_get())) {
			uint64_t idx = V.order ? V.order[V.next] : V.next;
			uint8_t cdb[16];
			uint8_t *buf = t->own;

			V.next++;
			t->lba = idx * V.nblk;
			if (write)
				fill_pattern(buf, t->lba * lun_block, opt.bs, opt.seed);
			else
				memset(buf, 0xa5, opt.bs);
			cdb_rw16(cdb, write, t->lba, V.nblk);
			submit(t, cdb, write, opt.bs, buf);
		}
		pump(1000);
	}
	c.free_tasks = NULL;
}

static void run_verify(void)
{
	uint64_t lun_bytes = lun_blocks * lun_block;
	uint64_t span = opt.span ? opt.span : lun_bytes;

	if (span > lun_bytes)
		die(EXIT_ERR, "-S %" PRIu64 " is larger than the LUN (%" PRIu64 " bytes)",
		    span, lun_bytes);
	V.nblk = opt.bs / lun_block;
	V.ncmds = span / opt.bs;
	if (V.ncmds == 0)
		die(EXIT_ERR, "-S / LUN smaller than one -b transfer");
	if (opt.random) {
		V.order = malloc(V.ncmds * sizeof *V.order);
		if (!V.order)
			die(EXIT_ERR, "out of memory");
		for (uint64_t i = 0; i < V.ncmds; i++)
			V.order[i] = i;
		for (uint64_t i = V.ncmds - 1; i > 0; i--) {
			uint64_t j = rng() % (i + 1), x = V.order[i];

			V.order[i] = V.order[j];
			V.order[j] = x;
		}
	}
	V.expect = xmalloc(opt.bs);
	for (unsigned i = 0; i < opt.qd; i++)
		c.tasks[i].own = xmalloc(opt.bs);
	on_complete = verify_complete;
	double t0 = now_s();

	bool wr = !opt.rw_set || opt.write, rd = !opt.rw_set || !opt.write;

	if (wr)
		verify_pass(true);
	if (rd)
		verify_pass(false);
	double secs = now_s() - t0;

	printf("ddperf: verify ok: %" PRIu64 " bytes (%" PRIu64 " commands of %u bytes) "
	       "%s, seed=%" PRIu64 ", block size %u\n",
	       V.ncmds * opt.bs, V.ncmds, opt.bs,
	       wr && rd ? "written and read back" : wr ? "written" : "read back and matched",
	       opt.seed, lun_block);
	print_result((wr + rd) * V.ncmds, secs);
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		rng_state ^= (uint64_t)ts.tv_nsec << 20 ^ (uint64_t)getpid();
		rng();
		if (!opt.seed_set)
			opt.seed = (uint64_t)ts.tv_sec;
	}
	c.ntasks = opt.qd;
	c.tasks = calloc(c.ntasks, sizeof *c.tasks);
	c.rbuf = xmalloc(RBUF_SIZE);
	if (!c.tasks)
		die(EXIT_ERR, "out of memory");
	if (opt.lun < 256) {
		c.lun[1] = (uint8_t)opt.lun;    /* peripheral device addressing */
	} else {
		c.lun[0] = (uint8_t)(0x40 | opt.lun >> 8);  /* flat space */
		c.lun[1] = (uint8_t)opt.lun;
	}

	connect_target();
	login();
	int fl = fcntl(c.fd, F_GETFL);
	fcntl(c.fd, F_SETFL, fl | O_NONBLOCK);

	read_capacity();
	if (opt.bs % lun_block)
		die(EXIT_ERR, "-b %u is not a multiple of the LUN block size %u", opt.bs, lun_block);
	if (opt.bs / lun_block > lun_blocks)
		die(EXIT_ERR, "-b %u is larger than the LUN (%" PRIu64 " blocks of %u)",
		    opt.bs, lun_blocks, lun_block);
	if (opt.verify)
		run_verify();
	else
		run_load();
	logout();
	return 0;
}
