/* utargetd: loads the configuration, listens on its portals and serves
 * initiators from worker event loops. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/model.h"
#include "control/rpc.h"
#include "io/loop.h"
#include "io/workers.h"
#include "iscsi/iscsi.h"
#include "scsi/scsi.h"
#include "util/log.h"

#define UTARGET_VERSION "0.1.0"

struct daemon {
	struct io_loop *loop;
	struct io_handler sig;
	bool stopping;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: utargetd [-c FILE] [-s SOCKET] [-f] [-w N] [-o LIMIT=N] [-d] [-V]\n"
		"  -c FILE    saveconfig.json to load (missing file = empty config)\n"
		"  -s SOCKET  control socket path\n"
		"  -f         stay in the foreground, log to stderr\n"
		"  -w N       worker threads (default: number of cores)\n"
		"  -o L=N     a limit: max_sessions_per_target (1024),\n"
		"             max_connections_per_portal (4096),\n"
		"             max_connection_buffers (bytes of task buffers per\n"
		"             connection, 268435456)\n"
		"  -d         debug logging\n"
		"  -V         print the version\n"
		"Environment: UTARGET_SOCKET sets the control socket.\n");
}

/* -o NAME=VALUE: resource limits (docs/reliability.md, "Limits"). */
static int set_limit(const char *arg)
{
	char name[64];
	unsigned long long v;
	char *end;
	const char *eq = strchr(arg, '=');

	if (!eq || eq - arg >= (long)sizeof(name) || !eq[1])
		goto bad;
	memcpy(name, arg, (size_t)(eq - arg));
	name[eq - arg] = 0;
	errno = 0;
	v = strtoull(eq + 1, &end, 0);
	if (errno || *end || v == 0)
		goto bad;
	if (!strcmp(name, "max_sessions_per_target") && v <= 65535)
		iscsi_limits.max_sessions_per_target = (unsigned)v;
	else if (!strcmp(name, "max_connections_per_portal") && v <= 1000000)
		iscsi_limits.max_connections_per_portal = (unsigned)v;
	else if (!strcmp(name, "max_connection_buffers") && v >= (1u << 20))
		iscsi_limits.max_connection_buffers = v;
	else
		goto bad;
	return 0;
bad:
	fprintf(stderr, "utargetd: bad limit '%s' (max_sessions_per_target=1..65535, "
		"max_connections_per_portal=1..1000000, max_connection_buffers>=1048576)\n",
		arg);
	return -1;
}

static void default_paths(char *cfg, size_t cfglen, char *sock, size_t socklen)
{
	const char *xc = getenv("XDG_CONFIG_HOME"), *xr = getenv("XDG_RUNTIME_DIR");
	const char *home = getenv("HOME");

	if (geteuid() == 0) {
		snprintf(cfg, cfglen, "/etc/utarget/saveconfig.json");
		snprintf(sock, socklen, "/run/utarget/utargetd.sock");
		return;
	}
	if (xc)
		snprintf(cfg, cfglen, "%s/utarget/saveconfig.json", xc);
	else
		snprintf(cfg, cfglen, "%s/.config/utarget/saveconfig.json",
			 home ? home : "/tmp");
	snprintf(sock, socklen, "%s/utarget/utargetd.sock", xr ? xr : "/tmp");
}

static void on_signal(struct io_handler *h, uint32_t events)
{
	struct daemon *d = container_of(h, struct daemon, sig);
	struct signalfd_siginfo si;

	(void)events;
	while (read(h->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) {
			log_info("signal %u: shutting down", si.ssi_signo);
			d->stopping = true;
			io_loop_stop(d->loop);
		}
	}
}

static void close_worker_conns(void *arg)
{
	(void)arg;
	iscsi_conn_close_all();
}

static void drain_worker_conns(void *arg)
{
	(void)arg;
	iscsi_conn_drain_all();
}

static void post_all(void (*fn)(void *))
{
	int i, n = io_workers_count();

	for (i = 0; i < n; i++)
		io_loop_post(io_workers_get(i), fn, NULL);
}

static void wait_conns(int ms)
{
	for (int i = 0; i < ms / 10 && iscsi_conn_count() > 0; i++)
		usleep(10000);
}

/* Shutdown is "apply the empty config": listeners close, commands in
 * progress finish and are answered, then every connection ends on its own
 * worker; initiators that do not log out within 2 s are cut. */
static void shutdown_all(void)
{
	ctl_config_clear();
	post_all(drain_worker_conns);
	/* initiators were given 2 s to log out (conn.c DRAIN_LOGOUT_S) */
	wait_conns(2500);
	if (iscsi_conn_count() > 0)
		post_all(close_worker_conns);
	wait_conns(5000);
	if (iscsi_conn_count() > 0)
		log_warn("%d connections still busy at exit", iscsi_conn_count());
	io_workers_stop();
}

int main(int argc, char **argv)
{
	char cfg[PATH_MAX], sock[PATH_MAX], err[1024];
	const char *cfg_arg = NULL, *sock_arg = getenv("UTARGET_SOCKET");
	bool foreground = false;
	long workers = sysconf(_SC_NPROCESSORS_ONLN);
	struct daemon d = { 0 };
	sigset_t set;
	int opt, rc;

	while ((opt = getopt(argc, argv, "c:s:fw:o:dVh")) != -1) {
		switch (opt) {
		case 'c':
			cfg_arg = optarg;
			break;
		case 's':
			sock_arg = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'w':
			workers = strtol(optarg, NULL, 10);
			if (workers < 1 || workers > 256) {
				fprintf(stderr, "utargetd: -w wants 1..256\n");
				return 2;
			}
			break;
		case 'o':
			if (set_limit(optarg))
				return 2;
			break;
		case 'd':
			ut_log_level = UT_LOG_DEBUG;
			break;
		case 'V':
			printf("utargetd %s\n", UTARGET_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	default_paths(cfg, sizeof(cfg), sock, sizeof(sock));
	if (cfg_arg)
		snprintf(cfg, sizeof(cfg), "%s", cfg_arg);
	if (sock_arg)
		snprintf(sock, sizeof(sock), "%s", sock_arg);
	if (workers < 1)
		workers = 1;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);

	if (io_loop_create(&d.loop, -1)) {
		fprintf(stderr, "utargetd: cannot create the event loop\n");
		return 1;
	}
	d.sig.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	d.sig.fn = on_signal;
	if (d.sig.fd < 0 || io_loop_add(d.loop, &d.sig, EPOLLIN)) {
		fprintf(stderr, "utargetd: signalfd: %s\n", strerror(errno));
		return 1;
	}
	iscsi_listeners_set_loop(d.loop);
	io_set_thread_exit_hook(iscsi_task_cache_drain);
	iscsi_install_abort_hook();
	if (io_workers_start((int)workers)) {
		fprintf(stderr, "utargetd: cannot start workers\n");
		return 1;
	}
	{
		/* persistent reservations with APTPL live beside the config */
		char prdir[PATH_MAX + 4], tmp[PATH_MAX];

		snprintf(tmp, sizeof(tmp), "%s", cfg);
		snprintf(prdir, sizeof(prdir), "%s/pr", dirname(tmp));
		if (mkdir(prdir, 0700) && errno != EEXIST)
			log_warn("%s: %s: APTPL reservations will not persist",
				 prdir, strerror(errno));
		scsi_set_pr_state_dir(prdir);
	}
	rc = ctl_config_load_file(cfg, false, NULL, err, sizeof(err));
	if (rc && rc != -ENOENT) {
		log_err("configuration not loaded: %s", err);
		io_workers_stop();
		io_loop_destroy(d.loop);
		close(d.sig.fd);
		return 1;
	}
	snprintf(ctl_settings.config_file, sizeof(ctl_settings.config_file),
		 "%s", cfg);
	rc = ctl_rpc_start(d.loop, sock, err, sizeof(err));
	if (rc) {
		log_err("%s", err);
		ctl_config_clear();
		io_workers_stop();
		io_loop_destroy(d.loop);
		close(d.sig.fd);
		return 1;
	}
	log_info("utargetd %s: %ld workers, configuration %s, control socket %s",
		 UTARGET_VERSION, workers, cfg, sock);
	if (!foreground && daemon(0, 0)) {
		log_err("daemon: %s", strerror(errno));
		return 1;
	}
	io_loop_run(d.loop);
	ctl_rpc_stop();
	shutdown_all();
	close(d.sig.fd);
	io_loop_destroy(d.loop);
	log_info("stopped");
	return 0;
}
