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

#include <jansson.h>

#include "control/group.h"
#include "control/model.h"
#include "control/rpc.h"
#include "daemon/metrics_http.h"
#include "daemon/notify.h"
#include "io/loop.h"
#include "io/workers.h"
#include "iscsi/iscsi.h"
#include "scsi/scsi.h"
#include "util/log.h"

/* LIO's file, for --import-lio (docs/install.md, "Migrating from LIO") */
#define LIO_SAVECONFIG "/etc/target/saveconfig.json"

struct daemon {
	struct io_loop *loop;
	struct io_handler sig;
	bool stopping;
};

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "socket", required_argument, NULL, 's' },
	{ "foreground", no_argument, NULL, 'f' },
	{ "workers", required_argument, NULL, 'w' },
	{ "limit", required_argument, NULL, 'o' },
	{ "import", required_argument, NULL, 'i' },
	{ "import-lio", no_argument, NULL, 'L' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "version", no_argument, NULL, 'V' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 }
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: utargetd [-c FILE] [-s SOCKET] [-f] [-w N] [-o LIMIT=N] [-i FILE]\n"
		"                [--import-lio] [-v|-q] [-V]\n"
		"  -c FILE    saveconfig.json to load (missing file = empty config);\n"
		"             default " UTARGET_SYSCONFDIR "/utarget/saveconfig.json as root,\n"
		"             $XDG_CONFIG_HOME/utarget/saveconfig.json otherwise\n"
		"  -s SOCKET  control socket path; default " UTARGET_RUNSTATEDIR
		"/utarget/utargetd.sock\n"
		"             as root, $XDG_RUNTIME_DIR/utarget/utargetd.sock otherwise\n"
		"             (/tmp/utarget-UID/utargetd.sock without XDG_RUNTIME_DIR)\n"
		"  -f         stay in the foreground, log to stderr (the journal under\n"
		"             systemd); in the background the log goes to syslog\n"
		"  -i FILE    start from FILE (e.g. a LIO saveconfig.json) instead of the\n"
		"             configuration, reporting what cannot be taken over;\n"
		"             `utargetcli saveconfig` then writes the configuration file\n"
		"  --import-lio  -i " LIO_SAVECONFIG "\n"
		"  -w N       worker threads (default: number of cores)\n"
		"  -o L=N     a limit: max_sessions_per_target (1024),\n"
		"             max_connections_per_portal (4096),\n"
		"             max_connection_buffers (bytes of task buffers per\n"
		"             connection, 268435456)\n"
		"  -o metrics_listen=IP:PORT  serve Prometheus metrics on\n"
		"             http://IP:PORT/metrics (off by default)\n"
		"  -o stats=off  no I/O counters or latency clock on the data path\n"
		"             (LUNs, storage objects, sessions; logins still count)\n"
		"  -o group=POOL/OBJECT[;conf=PATH][;id=USER][;timeout=SECONDS]\n"
		"             join a gateway group: the configuration is the RADOS\n"
		"             object's document (created from FILE when missing), every\n"
		"             change is written there and other gateways' changes are\n"
		"             applied live; FILE becomes a local copy (docs/gateway-group.md)\n"
		"  -o gateway=NAME  this gateway's name in the group (default: the host\n"
		"             name); it serves the TPGs the document lists under NAME\n"
		"  -v         more log (debug); -q less (warnings; -qq errors only)\n"
		"  -V         print the version\n"
		"Signals: SIGHUP re-reads the configuration file and applies what changed\n"
		"(sessions on unchanged targets stay); SIGTERM stops.\n"
		"Environment: UTARGET_SOCKET sets the control socket.\n");
}

/* -o NAME=VALUE: resource limits (docs/reliability.md, "Limits"). */
static const char *metrics_listen; /* -o metrics_listen=ADDR:PORT */

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
	if (!strcmp(name, "metrics_listen")) {
		metrics_listen = eq + 1; /* checked when it starts */
		return 0;
	}
	if (!strcmp(name, "group") || !strcmp(name, "gateway")) {
		char err[512];

		if (ctl_group_set_option(name, eq + 1, err, sizeof(err))) {
			fprintf(stderr, "utargetd: %s\n", err);
			return -1;
		}
		return 0;
	}
	if (!strcmp(name, "stats")) {
		if (strcmp(eq + 1, "on") && strcmp(eq + 1, "off"))
			goto bad;
		scsi_stats_enable(!strcmp(eq + 1, "on"));
		return 0;
	}
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
		"max_connections_per_portal=1..1000000, max_connection_buffers>=1048576, "
		"metrics_listen=IP:PORT, stats=on|off, group=POOL/OBJECT, gateway=NAME)\n",
		arg);
	return -1;
}

/* As root the system paths; otherwise the XDG base directories, so a user
 * runs `utargetd` and `utargetcli` with no flags (libutarget's
 * ut_default_socket() and the Python module resolve the same socket). */
static void default_paths(char *cfg, size_t cfglen, char *sock, size_t socklen)
{
	const char *xc = getenv("XDG_CONFIG_HOME"), *xr = getenv("XDG_RUNTIME_DIR");
	const char *home = getenv("HOME");

	if (geteuid() == 0) {
		snprintf(cfg, cfglen, UTARGET_SYSCONFDIR "/utarget/saveconfig.json");
		snprintf(sock, socklen, UTARGET_RUNSTATEDIR "/utarget/utargetd.sock");
		return;
	}
	if (xc && *xc)
		snprintf(cfg, cfglen, "%s/utarget/saveconfig.json", xc);
	else
		snprintf(cfg, cfglen, "%s/.config/utarget/saveconfig.json",
			 home && *home ? home : "/tmp");
	if (xr && *xr)
		snprintf(sock, socklen, "%s/utarget/utargetd.sock", xr);
	else /* per user: /tmp/utarget would be shared (rpc.c makes it 0700) */
		snprintf(sock, socklen, "/tmp/utarget-%u/utargetd.sock",
			 (unsigned)geteuid());
}

/* mkdir -p for the configuration's directory (a user's first start has no
 * ~/.config/utarget); saveconfig writes there, APTPL state goes to pr/. */
static void make_dirs(const char *file)
{
	char buf[PATH_MAX], *q;

	snprintf(buf, sizeof(buf), "%s", file);
	q = strrchr(buf, '/');
	if (!q || q == buf)
		return;
	*q = 0;
	for (q = buf + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = 0;
		mkdir(buf, 0755);
		*q = '/';
	}
	mkdir(buf, 0700);
}

/* SIGHUP: apply the file's changes without dropping unaffected sessions
 * (control/reload.c), and tell systemd (RELOADING=1 ... READY=1) so
 * `systemctl reload` waits for it. */
static void reload(void)
{
	json_t *errors = json_array();
	char err[1024];
	unsigned kept;
	size_t i;
	json_t *e;

	if (ctl_group_active()) {
		/* the group's document is the configuration; the file is a copy */
		ut_sd_notify("RELOADING=1\nSTATUS=reloading the group's document");
		ctl_group_resync();
		ut_sd_notify("READY=1\nSTATUS=serving (reloaded)");
		json_decref(errors);
		return;
	}
	ut_sd_notify("RELOADING=1\nSTATUS=reloading %s", ctl_settings.config_file);
	if (ctl_config_reload(ctl_settings.config_file, errors, &kept, err,
			      sizeof(err)))
		log_err("reload: %s; the running configuration is unchanged", err);
	json_array_foreach(errors, i, e)
		log_warn("reload: %s", json_string_value(e));
	json_decref(errors);
	ut_sd_notify("READY=1\nSTATUS=serving (reloaded)");
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
		} else if (si.ssi_signo == SIGHUP && !d->stopping) {
			log_info("signal %u: reloading %s", si.ssi_signo,
				 ctl_settings.config_file);
			reload();
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
	const char *import = NULL;
	bool foreground = false;
	long workers = sysconf(_SC_NPROCESSORS_ONLN);
	struct daemon d = { 0 };
	sigset_t set;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "c:s:fw:o:i:dvqVh", long_opts,
				  NULL)) != -1) {
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
		case 'i':
			import = optarg;
			break;
		case 'L':
			import = LIO_SAVECONFIG;
			break;
		case 'd': /* the old spelling of -v */
		case 'v':
			ut_log_level = UT_LOG_DEBUG;
			break;
		case 'q':
			if (ut_log_level > UT_LOG_ERR)
				ut_log_level--;
			if (ut_log_level > UT_LOG_WARN)
				ut_log_level = UT_LOG_WARN;
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
	sigaddset(&set, SIGHUP);
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
	if (foreground && ut_log_stderr_is_journal())
		ut_log_set_sink(UT_LOG_JOURNAL);
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

		make_dirs(cfg);
		snprintf(tmp, sizeof(tmp), "%s", cfg);
		snprintf(prdir, sizeof(prdir), "%s/pr", dirname(tmp));
		if (mkdir(prdir, 0700) && errno != EEXIST)
			log_warn("%s: %s: APTPL reservations will not persist",
				 prdir, strerror(errno));
		scsi_set_pr_state_dir(prdir);
	}
	if (ctl_group_configured() && import) {
		snprintf(err, sizeof(err), "-i / --import-lio and -o group do not "
			 "go together: restore the file into a gateway of the group "
			 "with restoreconfig");
		rc = -EINVAL;
	} else if (ctl_group_configured()) {
		/* the group's document instead of the file (docs/gateway-group.md) */
		rc = ctl_group_start(d.loop, cfg, err, sizeof(err));
	} else if (import) {
		/* a migration: what cannot be taken over is logged one line each
		 * (restore: ..., skipped / ignored) and counted here */
		json_t *errors = json_array();

		rc = ctl_config_load_file(import, false, errors, err, sizeof(err));
		if (rc == -ENOENT)
			snprintf(err, sizeof(err), "%s: no such file", import);
		if (!rc)
			log_info("imported %s: %zu settings or objects not taken over%s",
				 import, json_array_size(errors),
				 json_array_size(errors) ? " (listed above)" : "");
		json_decref(errors);
	} else {
		rc = ctl_config_load_file(cfg, false, NULL, err, sizeof(err));
		if (rc == -ENOENT)
			rc = 0;
	}
	if (rc) {
		log_err("configuration not loaded: %s", err);
		ctl_config_clear();
		io_loop_run_once(d.loop, 0); /* closed listeners' frees */
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
		ctl_group_stop();
		ctl_config_clear();
		io_loop_run_once(d.loop, 0); /* closed listeners' frees */
		io_workers_stop();
		io_loop_destroy(d.loop);
		close(d.sig.fd);
		return 1;
	}
	if (metrics_listen &&
	    metrics_http_start(d.loop, metrics_listen, err, sizeof(err))) {
		log_err("%s", err);
		ctl_rpc_stop();
		ctl_group_stop();
		ctl_config_clear();
		io_loop_run_once(d.loop, 0); /* closed listeners' frees */
		io_workers_stop();
		io_loop_destroy(d.loop);
		close(d.sig.fd);
		return 1;
	}
	log_info("utargetd %s: %ld workers, configuration %s, control socket %s",
		 UTARGET_VERSION, workers, cfg, sock);
	if (!foreground) {
		if (daemon(0, 0)) {
			log_err("daemon: %s", strerror(errno));
			return 1;
		}
		ut_log_set_sink(UT_LOG_SYSLOG);
	}
	/* Type=notify: ready means the configuration is restored and the
	 * portals and the control socket listen */
	ut_sd_notify("READY=1\nMAINPID=%ld\nSTATUS=serving %s", (long)getpid(), cfg);
	io_loop_run(d.loop);
	ut_sd_notify("STOPPING=1");
	metrics_http_stop();
	ctl_rpc_stop();
	ctl_group_stop();
	shutdown_all();
	/* the deferred work the shutdown queued (closed listeners' frees) */
	io_loop_run_once(d.loop, 0);
	close(d.sig.fd);
	io_loop_destroy(d.loop);
	log_info("stopped");
	return 0;
}
