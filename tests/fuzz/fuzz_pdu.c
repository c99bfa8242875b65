/* libFuzzer harness: the iSCSI receive path (src/iscsi/conn.c conn_rx ->
 * bhs_check -> header_done -> pdu_done, and through it login.c, text.c,
 * discovery.c, task.c, tmf.c) on any byte stream.
 *
 * A private event loop (driven with io_loop_run_once) serves one real
 * connection per input: the harness connects to a portal of a target with a
 * 1 MiB ramdisk LUN (generate_node_acls, no authentication), accepts it from
 * the portal's listening socket and hands it to iscsi_conn_start, exactly as
 * a worker would. It then writes the input, shuts its sending side and reads
 * whatever the target answers until the target closes. Afterwards no
 * connection may be left (the connection count is back to zero) and ASan /
 * UBSan / LSan must have nothing to say.
 *
 * Input: byte 0 picks a mode, the rest is the byte stream:
 *   mode & 3 == 0: the stream starts in the login phase;
 *   mode & 3 == 1: a Normal session login (ImmediateData=Yes,
 *                  InitialR2T=No, MaxRecvDataSegmentLength=65536) is sent
 *                  first, the stream is full feature phase (CmdSN from 1);
 *   mode & 3 == 2: the same for a Discovery session;
 *   mode & 3 == 3: Normal, InitialR2T=Yes, ImmediateData=No (R2T paths).
 * Bit 2 of mode splits the stream into 1-byte writes up to the first 64
 * bytes (resumable header parsing). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "control/model.h"
#include "fuzz_util.h"
#include "io/loop.h"
#include "iscsi/conn.h"
#include "iscsi/iscsi.h"

#define TARGET "iqn.2003-01.org.utarget.fuzz:t1"

static struct io_loop *loop;
static int listen_fd = -1;
static unsigned short port;

struct peer {
	struct io_handler h;
	const uint8_t *out;
	size_t out_len, out_off;
	size_t trickle; /* bytes still to write one at a time */
	bool sent;  /* all of the input is out */
	bool shut;  /* and the sending side shut */
	size_t got; /* bytes the target answered */
	bool done;  /* the target closed */
};

static void setup(void)
{
	char js[2048], err[512];
	json_error_t jerr;
	json_t *root;
	struct iscsi_target *t;
	struct iscsi_tpg *tpg;
	struct iscsi_portal *p;

	fuzz_quiet();
	if (io_loop_create(&loop, 0))
		abort();
	port = fuzz_free_port();
	snprintf(js, sizeof(js),
		 "{\"storage_objects\": [{\"plugin\": \"ramdisk\", \"name\": \"rd0\","
		 " \"size\": 1048576}],"
		 " \"targets\": [{\"fabric\": \"iscsi\", \"wwn\": \"" TARGET "\","
		 " \"tpgs\": [{\"tag\": 1, \"enable\": true,"
		 "  \"attributes\": {\"authentication\": 0, \"generate_node_acls\": 1,"
		 "   \"demo_mode_write_protect\": 0, \"cache_dynamic_acls\": 1},"
		 "  \"parameters\": {\"MaxRecvDataSegmentLength\": \"65536\","
		 "   \"MaxOutstandingR2T\": \"4\", \"InitialR2T\": \"No\"},"
		 "  \"luns\": [{\"index\": 0, \"storage_object\": \"/backstores/ramdisk/rd0\"}],"
		 "  \"portals\": [{\"ip_address\": \"127.0.0.1\", \"port\": %u}]}]}]}",
		 port);
	root = json_loads(js, 0, &jerr);
	if (!root)
		abort();
	pthread_mutex_lock(&iscsi_fabric.lock);
	if (ctl_config_restore(root, true, NULL, err, sizeof(err))) {
		fprintf(stderr, "fuzz_pdu: config: %s\n", err);
		abort();
	}
	t = iscsi_target_find(TARGET);
	tpg = list_first_entry(&t->tpgs, struct iscsi_tpg, link);
	p = list_first_entry(&tpg->portals, struct iscsi_portal, link);
	/* struct iscsi_listener (portal.c) starts with its io_handler: the
	 * listening socket; no accept loop is set, so nobody else accepts. */
	listen_fd = ((struct io_handler *)(void *)p->listener)->fd;
	pthread_mutex_unlock(&iscsi_fabric.lock);
	json_decref(root);
}

static size_t put_text(uint8_t *d, const char *const *kv)
{
	size_t n = 0;

	for (; *kv; kv++) {
		size_t l = strlen(*kv) + 1;

		memcpy(d + n, *kv, l);
		n += l;
	}
	return n;
}

/* A Login Request, CSG 1 -> NSG 3 with T (RFC 7143 §11.12), into buf. */
static size_t canned_login(uint8_t *buf, int mode)
{
	static const char *const normal[] = {
		"InitiatorName=iqn.1994-05.com.example:fuzz",
		"TargetName=" TARGET, "SessionType=Normal",
		"HeaderDigest=None", "DataDigest=None",
		"MaxRecvDataSegmentLength=65536", "ImmediateData=Yes",
		"InitialR2T=No", "MaxBurstLength=262144",
		"FirstBurstLength=65536", "MaxOutstandingR2T=4", NULL
	};
	static const char *const r2t[] = {
		"InitiatorName=iqn.1994-05.com.example:fuzz",
		"TargetName=" TARGET, "SessionType=Normal",
		"HeaderDigest=None", "DataDigest=None",
		"MaxRecvDataSegmentLength=8192", "ImmediateData=No",
		"InitialR2T=Yes", "MaxBurstLength=16384",
		"FirstBurstLength=8192", "MaxOutstandingR2T=2", NULL
	};
	static const char *const disc[] = {
		"InitiatorName=iqn.1994-05.com.example:fuzz",
		"SessionType=Discovery", "HeaderDigest=None",
		"DataDigest=None", "MaxRecvDataSegmentLength=65536", NULL
	};
	uint8_t *h = buf;
	size_t dl;

	memset(h, 0, ISCSI_BHS_LEN);
	dl = put_text(buf + ISCSI_BHS_LEN,
		      mode == 2 ? disc : mode == 3 ? r2t : normal);
	h[0] = ISCSI_OP_LOGIN_REQ | ISCSI_OP_IMMEDIATE;
	h[1] = ISCSI_FLAG_LOGIN_TRANSIT | (1 << 2) | 3;
	put_be24(h + BHS_DLEN, (uint32_t)dl);
	h[8] = 0x40; /* ISID: random qualifier type */
	h[13] = 1;
	put_be32(h + BHS_ITT, 0x1000);
	put_be32(h + BHS_CMDSN, 1);
	while (dl % 4)
		buf[ISCSI_BHS_LEN + dl++] = 0;
	return ISCSI_BHS_LEN + dl;
}

static void peer_event(struct io_handler *h, uint32_t ev)
{
	struct peer *p = container_of(h, struct peer, h);
	uint8_t buf[65536];
	ssize_t r;

	if (ev & EPOLLOUT) {
		while (p->out_off < p->out_len) {
			size_t n = p->out_len - p->out_off;

			if (p->trickle) {
				n = 1;
				p->trickle--;
			}
			r = send(h->fd, p->out + p->out_off, n, MSG_NOSIGNAL);
			if (r < 0) {
				if (errno == EAGAIN)
					break;
				p->out_off = p->out_len; /* target gone */
				break;
			}
			p->out_off += (size_t)r;
			if (p->trickle)
				break; /* one byte per round */
		}
		if (p->out_off == p->out_len && !p->sent) {
			p->sent = true;
			io_loop_mod(loop, h, EPOLLIN);
		}
	}
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		for (;;) {
			r = recv(h->fd, buf, sizeof(buf), 0);
			if (r > 0) {
				p->got += (size_t)r;
				if (getenv("FUZZ_DUMP")) /* seeds' debugging */
					(void)!write(1, buf, (size_t)r);
				continue;
			}
			if (r < 0 && errno == EAGAIN)
				break;
			p->done = true; /* EOF or reset: the target closed */
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *stream;
	static unsigned nconn;
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct peer p = { 0 };
	size_t pre = 0;
	int cfd, sfd, mode, i, quiet;

	if (!loop)
		setup();
	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;
	free(stream);
	stream = malloc(size + 512);
	if (!stream)
		return 0;
	if (mode & 3)
		pre = canned_login(stream, mode & 3);
	memcpy(stream + pre, data, size);

	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* Each connection ends in TIME_WAIT on one side; at thousands of
	 * connections a second one source address runs out of ports, so
	 * the source address walks through 127.1.0.0/16. */
	a.sin_addr.s_addr = htonl(0x7f010000u | (1 + nconn++ % 65000));
	if (cfd < 0 || bind(cfd, (struct sockaddr *)&a, sizeof(a)))
		abort();
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	if (connect(cfd, (struct sockaddr *)&a, sizeof(a))) {
		/* libFuzzer's SIGALRM (-timeout) can interrupt it; the
		 * connection then completes in the background */
		struct pollfd pfd = { .fd = cfd, .events = POLLOUT };

		if (errno != EINTR) {
			perror("fuzz_pdu: connect");
			abort();
		}
		while (poll(&pfd, 1, 1000) < 0 && errno == EINTR)
			;
	}
	do
		sfd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	while (sfd < 0 && errno == EINTR);
	if (sfd < 0) {
		perror("fuzz_pdu: accept");
		abort();
	}
	fcntl(cfd, F_SETFL, O_NONBLOCK);
	iscsi_conn_start(sfd, loop, NULL);

	p.h.fd = cfd;
	p.h.fn = peer_event;
	p.out = stream;
	p.out_len = pre + size;
	p.trickle = (mode & 4) ? pre + (size < 64 ? size : 64) : 0;
	if (io_loop_add(loop, &p.h, EPOLLIN | EPOLLOUT))
		abort();
	/* Half-closing at once would make the target see end-of-file with
	 * its answers still queued (they are dropped on close): wait until it
	 * has gone quiet, then shut our side. */
	quiet = 0;
	while (!p.done) {
		size_t before = p.got;

		io_loop_run_once(loop, p.shut ? 1000 : 0);
		if (p.sent && !p.shut) {
			quiet = p.got == before ? quiet + 1 : 0;
			if (quiet >= 3) {
				shutdown(cfd, SHUT_WR);
				p.shut = true;
			}
		}
	}
	io_loop_del(loop, &p.h);
	close(cfd);
	/* The target closed: its connection (and session) must go away by
	 * the end of the round that closed it, or a few rounds later when a
	 * backstore still held a task. */
	for (i = 0; i < 100 && iscsi_conn_count() > 0; i++)
		io_loop_run_once(loop, 1);
	if (iscsi_conn_count() != 0) {
		fprintf(stderr, "fuzz_pdu: connection not freed after close\n");
		abort();
	}
	return 0;
}
