/* Gateway groups: one configuration for several utargetd, kept in a RADOS
 * object (issue 18; docs/gateway-group.md has the format and the rules).
 *
 * The object holds a saveconfig.json document plus a "gateway_group"
 * section: {"version": N, "gateways": {NAME: {"tpgs": [{"wwn", "tag"}]}}}.
 * Its xattr utarget.version holds N too; the xattr is what a writer
 * compares, the JSON's copy is what a reader trusts (one rados_read gets
 * the document and its version together, where a read and a getxattr
 * could straddle another gateway's write).
 *
 * Every gateway applies the whole document, so every gateway has every
 * TPG in the same order (the same RTPIs, the same RTPG answer); a TPG
 * listed under another gateway's name is created remote (iscsi/target.h:
 * no listener, no login) and one listed under nobody's is remote on all.
 *
 * A change through the control API (ctl_group_run): take the object's
 * change lock (change_lock: fairness, see there), apply the newest
 * document, run the method, dump, write with compare-and-swap
 * (cmpxattr version == N, write_full, setxattr N+1: one OSD op, all or
 * nothing). -ECANCELED means another gateway wrote first: its document is
 * applied (which takes our unwritten change back out) and the method runs
 * again on top of it. A method that refuses writes nothing. After a write
 * the other gateways are told with an asynchronous notify; their watch
 * callback (a librados thread) only posts a check to the control loop,
 * where the model lives; a check every GROUP_CHECK_MS catches a lost
 * notify, and a watch error re-watches and re-reads.
 *
 * Rados calls made here are synchronous, on the control thread, with the
 * fabric lock held (so a change is whole against logins, as every other
 * change is); they are bounded by the group's timeout option, and the
 * wait for another gateway's change lock by GROUP_LOCK_WAIT_MS. */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <rados/librados.h>

#include "control/group.h"
#include "control/model.h"
#include "control/ops_int.h"
#include "control/saveconfig.h"
#include "iscsi/target.h"
#include "util/log.h"

#define GROUP_KEY "gateway_group"
#define GROUP_XATTR "utarget.version"
#define GROUP_CHECK_MS 1000
#define GROUP_NOTIFY_MS 2000
#define GROUP_RETRIES 16
#define GROUP_WATCH_TIMEOUT_S 30
#define GROUP_DEFAULT_TIMEOUT 10 /* seconds, every rados request */
#define GROUP_LOCK "utarget.change"
#define GROUP_LOCK_S 15		/* a holder that died frees it after this */
#define GROUP_LOCK_WAIT_MS 20000 /* > GROUP_LOCK_S: outlasts a dead holder */

static struct {
	bool configured, active;
	char spec[4096];
	char pool[256], obj[256], conf[4096], id[128];
	unsigned timeout;
	char gateway[64];
	char config_file[4096];
	rados_t cluster;
	rados_ioctx_t io;
	uint64_t watch;
	bool watching;
	struct io_loop *loop;
	struct io_timer tick;
	atomic_bool kick_posted;
	atomic_bool watch_lost;
	atomic_int watch_err;	/* the last watch error, for the log */
	uint64_t version;	/* of the document the model was made from */
	json_t *doc;		/* that document */
	json_t *gateways;	/* its gateways section (owned) */
	bool in_change;		/* a local method runs: new TPGs are ours */
	uint64_t applied, written, conflicts, lock_waits;
	char cookie[96];	/* our change lock's cookie: gateway + pid */
	unsigned seed;		/* jitter of the lock's retries */
	char last_error[600];
} g = { .timeout = GROUP_DEFAULT_TIMEOUT };

/* ---- options ---- */

static bool name_ok(const char *s)
{
	if (!s[0] || strlen(s) >= sizeof(g.gateway))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' ||
		      *s == '_'))
			return false;
	return true;
}

/* POOL/OBJECT[;conf=PATH][;id=USER][;timeout=N], as user:rbd's cfgstring */
static int parse_spec(const char *spec, char *err, size_t errlen)
{
	char buf[4096], *save = NULL, *tok, *slash;

	if (strlen(spec) >= sizeof(buf)) {
		snprintf(err, errlen, "group: too long");
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", spec);
	tok = strtok_r(buf, ";", &save);
	slash = tok ? strchr(tok, '/') : NULL;
	if (!slash || slash == tok || !slash[1] || strchr(slash + 1, '/') ||
	    (size_t)(slash - tok) >= sizeof(g.pool) ||
	    strlen(slash + 1) >= sizeof(g.obj)) {
		snprintf(err, errlen, "group=%s: want POOL/OBJECT[;conf=PATH]"
			 "[;id=USER][;timeout=SECONDS]", spec);
		return -EINVAL;
	}
	*slash = 0;
	snprintf(g.pool, sizeof(g.pool), "%s", tok);
	snprintf(g.obj, sizeof(g.obj), "%s", slash + 1);
	while ((tok = strtok_r(NULL, ";", &save))) {
		char *end;

		if (!strncmp(tok, "conf=", 5) && tok[5]) {
			snprintf(g.conf, sizeof(g.conf), "%s", tok + 5);
		} else if (!strncmp(tok, "id=", 3) && tok[3] &&
			   strlen(tok + 3) < sizeof(g.id)) {
			snprintf(g.id, sizeof(g.id), "%s", tok + 3);
		} else if (!strncmp(tok, "timeout=", 8)) {
			unsigned long v = strtoul(tok + 8, &end, 10);

			if (*end || v < 1 || v > 3600) {
				snprintf(err, errlen, "group: timeout wants 1..3600 seconds");
				return -EINVAL;
			}
			g.timeout = (unsigned)v;
		} else {
			snprintf(err, errlen, "group: unknown option '%s' (conf=, id=, "
				 "timeout=)", tok);
			return -EINVAL;
		}
	}
	return 0;
}

int ctl_group_set_option(const char *name, const char *value, char *err,
			 size_t errlen)
{
	if (!strcmp(name, "group")) {
		snprintf(g.spec, sizeof(g.spec), "%s", value);
		g.configured = true;
		return parse_spec(value, err, errlen);
	}
	if (!strcmp(name, "gateway")) {
		if (!name_ok(value)) {
			snprintf(err, errlen, "gateway=%s: a name of 1-63 letters, "
				 "digits, '.', '-' or '_'", value);
			return -EINVAL;
		}
		snprintf(g.gateway, sizeof(g.gateway), "%s", value);
		return 0;
	}
	snprintf(err, errlen, "not a group option: %s", name);
	return -EINVAL;
}

bool ctl_group_configured(void)
{
	return g.configured;
}

bool ctl_group_active(void)
{
	return g.active;
}

/* ---- who serves which TPG ---- */

/* The gateway named for (wwn, tag) in gateways, or NULL. */
static const char *owner_of(json_t *gws, const char *wwn, uint16_t tag)
{
	const char *name;
	json_t *gw, *t;
	size_t i;

	json_object_foreach(gws, name, gw)
		json_array_foreach(json_object_get(gw, "tpgs"), i, t) {
			const char *w = json_string_value(json_object_get(t, "wwn"));
			json_int_t n = json_integer_value(json_object_get(t, "tag"));

			if (w && !strcasecmp(w, wwn) && n == tag)
				return name;
		}
	return NULL;
}

/* iscsi_fabric.tpg_remote: another gateway's, or (while the document is
 * applied) nobody's. A TPG that a method of this gateway creates is
 * nobody's until the change is written: it is ours. */
static bool tpg_remote(const char *wwn, uint16_t tag)
{
	const char *o = owner_of(g.gateways, wwn, tag);

	if (!o)
		return !g.in_change;
	return strcmp(o, g.gateway) != 0;
}

/* A target the reload would keep, but whose TPGs changed hands. */
static bool tpg_stale(const struct iscsi_target *t)
{
	const struct iscsi_tpg *tpg;

	list_for_each_entry(tpg, &t->tpgs, link)
		if (tpg->remote != tpg_remote(t->wwn, tpg->tag))
			return true;
	return false;
}

/* The gateways section to write: every TPG that still exists under its
 * owner, and the TPGs this gateway made (local, nobody's yet) under ours. */
static json_t *gateways_now(void)
{
	json_t *out = json_object(), *mine;
	const char *name;
	json_t *gw;
	struct iscsi_target *t;
	struct iscsi_tpg *tpg;

	json_object_foreach(g.gateways, name, gw)
		json_object_set_new(out, name, json_pack("{s:[]}", "tpgs"));
	if (!json_object_get(out, g.gateway))
		json_object_set_new(out, g.gateway, json_pack("{s:[]}", "tpgs"));
	list_for_each_entry(t, &iscsi_fabric.targets, link)
		list_for_each_entry(tpg, &t->tpgs, link) {
			const char *o = owner_of(g.gateways, t->wwn, tpg->tag);

			if (!o && tpg->remote)
				continue; /* nobody's: stays so */
			mine = json_object_get(json_object_get(out, o ? o : g.gateway),
					       "tpgs");
			json_array_append_new(mine, json_pack("{s:s, s:i}", "wwn",
							      t->wwn, "tag",
							      (int)tpg->tag));
		}
	return out;
}

/* ---- the object ---- */

/* The document and its version, in one read. */
static int doc_read(json_t **out, uint64_t *ver, char *err, size_t errlen)
{
	uint64_t size;
	time_t mtime;
	json_error_t jerr;
	json_t *doc, *v;
	char *buf = NULL;
	size_t cap;
	int n;

	*out = NULL;
	n = rados_stat(g.io, g.obj, &size, &mtime);
	if (n < 0) {
		snprintf(err, errlen, "%s/%s: %s", g.pool, g.obj, strerror(-n));
		return n;
	}
	/* room to spare: a read that fills it may have been cut short by a
	 * write that grew the object since the stat */
	for (cap = (size_t)size + 65536;; cap *= 2) {
		char *p = realloc(buf, cap);

		if (!p) {
			free(buf);
			return -ENOMEM;
		}
		buf = p;
		n = rados_read(g.io, g.obj, buf, cap, 0);
		if (n < 0) {
			free(buf);
			snprintf(err, errlen, "%s/%s: %s", g.pool, g.obj,
				 strerror(-n));
			return n;
		}
		if ((size_t)n < cap)
			break;
	}
	doc = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
	free(buf);
	if (!doc || !json_is_object(doc)) {
		snprintf(err, errlen, "%s/%s: not a configuration document: line "
			 "%d: %s", g.pool, g.obj, doc ? 0 : jerr.line,
			 doc ? "not an object" : jerr.text);
		json_decref(doc);
		return -EINVAL;
	}
	v = json_object_get(json_object_get(doc, GROUP_KEY), "version");
	if (!json_is_integer(v) || json_integer_value(v) < 1) {
		snprintf(err, errlen, "%s/%s: no %s.version", g.pool, g.obj,
			 GROUP_KEY);
		json_decref(doc);
		return -EINVAL;
	}
	*ver = (uint64_t)json_integer_value(v);
	*out = doc;
	return 0;
}

/* The version a writer would compare with (a cheap look for the check). */
static int xattr_version(uint64_t *ver)
{
	char buf[32];
	int n = rados_getxattr(g.io, g.obj, GROUP_XATTR, buf, sizeof(buf) - 1);

	if (n < 0)
		return n;
	buf[n] = 0;
	*ver = strtoull(buf, NULL, 10);
	return 0;
}

/* Write doc as version next, if the object is still at expect (0: it
 * must not exist yet). -ECANCELED / -EEXIST: someone else wrote first. */
static int doc_write(json_t *doc, uint64_t expect, uint64_t next)
{
	rados_write_op_t op;
	char ev[32], nv[32], *text;
	int rc;

	text = json_dumps(doc, JSON_SORT_KEYS | JSON_INDENT(2));
	if (!text)
		return -ENOMEM;
	op = rados_create_write_op();
	if (!op) {
		free(text);
		return -ENOMEM;
	}
	snprintf(ev, sizeof(ev), "%" PRIu64, expect);
	snprintf(nv, sizeof(nv), "%" PRIu64, next);
	if (expect == 0)
		rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
	else
		rados_write_op_cmpxattr(op, GROUP_XATTR, LIBRADOS_CMPXATTR_OP_EQ,
					ev, strlen(ev));
	rados_write_op_write_full(op, text, strlen(text));
	rados_write_op_setxattr(op, GROUP_XATTR, nv, strlen(nv));
	rc = rados_write_op_operate(op, g.io, g.obj, NULL, 0);
	rados_release_write_op(op);
	free(text);
	return rc;
}

struct notify_ctx {
	char *reply;
	size_t len;
};

static atomic_int notifies; /* in flight, for the stop to wait on */

static void notify_done(rados_completion_t c, void *arg)
{
	struct notify_ctx *n = arg;

	/* -ETIMEDOUT when a watcher did not answer (a gateway that died:
	 * its watch lasts until the OSD's watch timeout) is no matter: the
	 * others got it, and a gateway that missed it has its check */
	if (n->reply)
		rados_buffer_free(n->reply);
	free(n);
	rados_aio_release(c);
	atomic_fetch_sub(&notifies, 1);
}

/* Tell the other gateways; asynchronous, so a dead watcher does not hold
 * up this gateway for the notify's timeout. */
static void doc_notify(uint64_t ver)
{
	struct notify_ctx *n = calloc(1, sizeof(*n));
	rados_completion_t c;
	char v[32];

	if (!n)
		return;
	if (rados_aio_create_completion(n, notify_done, NULL, &c) < 0) {
		free(n);
		return;
	}
	snprintf(v, sizeof(v), "%" PRIu64, ver);
	atomic_fetch_add(&notifies, 1);
	if (rados_aio_notify(g.io, g.obj, c, v, strlen(v), GROUP_NOTIFY_MS,
			     &n->reply, &n->len) < 0) {
		atomic_fetch_sub(&notifies, 1);
		free(n);
		rados_aio_release(c);
	}
}

/* ---- applying ---- */

/* The local copy (-c FILE): always the last configuration this gateway
 * applied or wrote, never read while the group runs (docs). */
static void save_local(void)
{
	char bdir[4096], err[512];

	if (g.config_file[0] &&
	    ctl_config_save(g.config_file, 0, bdir, sizeof(bdir), err,
			    sizeof(err)))
		log_warn("group: local copy %s: %s", g.config_file, err);
}

/* Make the running configuration doc's (lock held). */
static int apply_doc(json_t *doc, uint64_t ver, char *err, size_t errlen)
{
	json_t *cfg = json_copy(doc), *errors = json_array(), *x;
	json_t *gws = json_object_get(json_object_get(doc, GROUP_KEY), "gateways");
	size_t i;
	int rc;

	json_object_del(cfg, GROUP_KEY);
	json_decref(g.gateways);
	g.gateways = json_is_object(gws) ? json_deep_copy(gws) : json_object();
	rc = ctl_config_reload_locked(cfg, "the gateway group's document", errors,
				      NULL, tpg_stale, err, errlen);
	json_array_foreach(errors, i, x)
		log_warn("group: version %" PRIu64 ": %s", ver,
			 json_string_value(x));
	json_decref(errors);
	json_decref(cfg);
	if (g.doc != doc) {
		json_decref(g.doc);
		g.doc = json_incref(doc);
	}
	g.version = ver;
	g.applied++;
	save_local();
	return rc;
}

/* Bring the model to the object's newest version (lock held). */
static int sync_locked(bool force, char *err, size_t errlen)
{
	uint64_t ver = 0;
	json_t *doc;
	int rc;

	if (!force && xattr_version(&ver) == 0 && ver == g.version)
		return 0;
	rc = doc_read(&doc, &ver, err, errlen);
	if (rc)
		return rc;
	/* forced (a re-watch, SIGHUP): only a document that differs from
	 * the one applied, so a no-op does not refresh sessions */
	if (ver != g.version || !g.doc || !json_equal(doc, g.doc)) {
		log_info("group %s/%s: applying version %" PRIu64 " (had %" PRIu64 ")",
			 g.pool, g.obj, ver, g.version);
		rc = apply_doc(doc, ver, err, errlen);
	}
	json_decref(doc);
	return rc;
}

/* Write the running configuration as the next version (lock held). */
static int publish_locked(char *err, size_t errlen)
{
	json_t *doc = ctl_config_dump(), *gws = gateways_now();
	uint64_t next = g.version + 1;
	int rc;

	json_object_set_new(doc, GROUP_KEY, json_pack("{s:I, s:o}", "version",
						     (json_int_t)next,
						     "gateways", gws));
	rc = doc_write(doc, g.version, next);
	if (rc < 0) {
		snprintf(err, errlen, "%s/%s: %s", g.pool, g.obj, strerror(-rc));
		json_decref(doc);
		return rc == -EEXIST ? -ECANCELED : rc;
	}
	json_decref(g.gateways);
	g.gateways = json_incref(gws);
	json_decref(g.doc);
	g.doc = doc;
	g.version = next;
	g.written++;
	save_local();
	doc_notify(next);
	return 0;
}

/* Take back a change that could not be written: the last document as it
 * was applied (lock held). */
static void revert_locked(void)
{
	char err[512];
	json_t *doc = json_incref(g.doc);

	if (doc && apply_doc(doc, g.version, err, sizeof(err)))
		log_err("group: could not put back version %" PRIu64 ": %s",
			g.version, err);
	json_decref(doc);
}

/* The change lock: an exclusive cls_lock lock on the object, held from
 * the sync to the write. Compare-and-swap alone keeps every change, but
 * it is not fair: a gateway that just wrote has the newest version and
 * makes its next change in a few round trips, while one that lost must
 * first apply the other's document, and a gateway changing continuously
 * wins every race against it (CI saw a loser refused after 16 lost races
 * in a row). With the lock a change that starts always ends; waiters
 * poll with jitter. The lock has a duration so a gateway that died
 * holding it frees it; one that outlived it (stopped, then resumed) is
 * still caught by the compare-and-swap. */
static int change_lock(char *err, size_t errlen)
{
	struct timeval dur = { .tv_sec = GROUP_LOCK_S };
	uint64_t end = io_now_ms() + GROUP_LOCK_WAIT_MS;
	bool waited = false;
	int rc;

	if (!g.cookie[0]) {
		snprintf(g.cookie, sizeof(g.cookie), "%s.%ld", g.gateway,
			 (long)getpid());
		g.seed = (unsigned)getpid() ^ (unsigned)io_now_ms();
	}
	for (;;) {
		rc = rados_lock_exclusive(g.io, g.obj, GROUP_LOCK, g.cookie,
					  "utargetd configuration change",
					  &dur, 0);
		if (rc == 0 || rc == -EEXIST) /* EEXIST: ours, not unlocked */
			return 0;
		if (rc != -EBUSY) {
			snprintf(err, errlen, "lock: %s", strerror(-rc));
			return rc;
		}
		if (!waited) {
			waited = true;
			g.lock_waits++;
		}
		if (io_now_ms() >= end) {
			snprintf(err, errlen, "another gateway's change held "
				 "the lock for %d s", GROUP_LOCK_WAIT_MS / 1000);
			return -ETIMEDOUT;
		}
		usleep(1000 + (unsigned)rand_r(&g.seed) % 4000);
	}
}

static void change_unlock(void)
{
	int rc = rados_unlock(g.io, g.obj, GROUP_LOCK, g.cookie);

	if (rc < 0 && rc != -ENOENT)
		log_warn("group %s/%s: unlock: %s (it expires in %d s)", g.pool,
			 g.obj, strerror(-rc), GROUP_LOCK_S);
}

static json_t *group_run_locked(const struct rpc_method *m, json_t *params,
				struct rpc_error *e)
{
	char err[512];
	int attempt, rc;

	for (attempt = 0; attempt < GROUP_RETRIES; attempt++) {
		json_t *p = json_deep_copy(params), *res;

		rc = sync_locked(false, err, sizeof(err));
		if (rc) {
			json_decref(p);
			snprintf(g.last_error, sizeof(g.last_error), "%s", err);
			return ops_fail(e, RPC_REFUSED, "The gateway group's "
					"configuration cannot be read (%s): nothing "
					"changed", err);
		}
		g.in_change = true;
		res = m->fn(p, e);
		g.in_change = false;
		json_decref(p);
		if (!res)
			return NULL; /* refused here: nothing to write */
		rc = publish_locked(err, sizeof(err));
		if (!rc)
			return res;
		json_decref(res);
		if (rc != -ECANCELED) {
			revert_locked();
			snprintf(g.last_error, sizeof(g.last_error), "write: %s", err);
			return ops_fail(e, RPC_REFUSED, "The change could not be "
					"written to the gateway group's configuration "
					"(%s): it was not made", err);
		}
		/* another gateway's change came first: it is applied by the
		 * next sync (taking ours out), ours is made again on top */
		g.conflicts++;
		memset(e, 0, sizeof(*e));
	}
	revert_locked();
	return ops_fail(e, RPC_REFUSED, "The gateway group's configuration kept "
			"changing under this change (%d attempts): it was not "
			"made; retry", GROUP_RETRIES);
}

json_t *ctl_group_run(const struct rpc_method *m, json_t *params,
		      struct rpc_error *e)
{
	char err[512];
	json_t *res;

	if (change_lock(err, sizeof(err))) {
		snprintf(g.last_error, sizeof(g.last_error), "%s", err);
		return ops_fail(e, RPC_REFUSED, "The gateway group's "
				"configuration could not be locked for this change "
				"(%s): nothing changed; retry", err);
	}
	res = group_run_locked(m, params, e);
	change_unlock();
	return res;
}

/* ---- watch, notify, periodic check ---- */

static void check(bool force);

/* Posts run inside the loop's event dispatch (the wake eventfd's
 * handler), and applying a document may close and free listeners whose
 * events are still to be dispatched in the same epoll batch: the check
 * runs at the end of the iteration instead, after every event. */
static struct io_deferred check_d;
static bool check_queued;

static void run_check(struct io_deferred *d)
{
	(void)d;
	check_queued = false;
	check(false);
}

static void schedule_check(void)
{
	if (!g.active || check_queued)
		return;
	check_queued = true;
	check_d.fn = run_check;
	io_loop_defer(g.loop, &check_d);
}

static void on_kick(void *arg)
{
	(void)arg;
	atomic_store(&g.kick_posted, false);
	schedule_check();
}

/* librados threads: never the model, only a post to the control loop */
static void kick(void)
{
	if (!atomic_exchange(&g.kick_posted, true) &&
	    io_loop_post(g.loop, on_kick, NULL))
		atomic_store(&g.kick_posted, false);
}

static void watch_cb(void *arg, uint64_t notify_id, uint64_t handle,
		     uint64_t notifier_id, void *data, size_t len)
{
	(void)arg;
	(void)notifier_id;
	(void)data;
	(void)len;
	rados_notify_ack(g.io, g.obj, notify_id, handle, NULL, 0);
	kick();
}

static void watch_err(void *arg, uint64_t handle, int err)
{
	(void)arg;
	(void)handle;
	atomic_store(&g.watch_err, err);
	atomic_store(&g.watch_lost, true);
	kick();
}

static int watch_start(void)
{
	/* our own watch timeout: the cluster's osd_client_watch_timeout may
	 * be as short as librados' ping interval (5 s in the tests, where
	 * the watch would then drop every few seconds) */
	int rc = rados_watch3(g.io, g.obj, &g.watch, watch_cb, watch_err,
			      GROUP_WATCH_TIMEOUT_S, NULL);

	g.watching = rc == 0;
	return rc;
}

static void check(bool force)
{
	char err[512];
	int rc;

	if (!g.active)
		return;
	pthread_mutex_lock(&iscsi_fabric.lock);
	if (atomic_exchange(&g.watch_lost, false) || !g.watching) {
		if (g.watching)
			rados_unwatch2(g.io, g.watch);
		rc = watch_start();
		if (rc)
			snprintf(g.last_error, sizeof(g.last_error), "watch: %s",
				 strerror(-rc));
		else
			log_info("group %s/%s: watch lost (%s), watching again",
				 g.pool, g.obj, strerror(-atomic_load(&g.watch_err)));
		force = true; /* notifies may have been missed meanwhile */
	}
	rc = sync_locked(force, err, sizeof(err));
	if (rc) {
		snprintf(g.last_error, sizeof(g.last_error), "%s", err);
		log_warn("group: %s; running version %" PRIu64 " unchanged", err,
			 g.version);
	}
	pthread_mutex_unlock(&iscsi_fabric.lock);
}

/* The periodic check asks for the xattr asynchronously: an unreachable
 * cluster must not stall the control loop (which also accepts iSCSI
 * connections) for the timeout every second. Only when the cluster
 * answered does the control thread talk to it synchronously (re-watch,
 * read and apply a newer document). One probe at a time. */
static struct {
	rados_completion_t c;
	char buf[32];
	atomic_bool busy;
	bool failing;	/* the last probe failed: log the recovery once */
} probe;

static void on_probe(void *arg)
{
	uint64_t ver = 0;
	int rc;

	(void)arg;
	if (!probe.c)
		return; /* released by ctl_group_stop */
	rc = rados_aio_get_return_value(probe.c);
	if (rc >= (int)sizeof(probe.buf))
		rc = -ERANGE;
	rados_aio_release(probe.c);
	probe.c = NULL;
	if (rc >= 0) {
		probe.buf[rc] = 0;
		ver = strtoull(probe.buf, NULL, 10);
	}
	atomic_store(&probe.busy, false);
	if (!g.active)
		return;
	if (rc < 0) {
		if (!probe.failing)
			log_warn("group %s/%s: cannot read the version (%s); running "
				 "version %" PRIu64 " unchanged", g.pool, g.obj,
				 strerror(-rc), g.version);
		snprintf(g.last_error, sizeof(g.last_error), "version check: %s",
			 strerror(-rc));
		probe.failing = true;
		return;
	}
	if (probe.failing)
		log_info("group %s/%s: the object answers again", g.pool, g.obj);
	probe.failing = false;
	if (ver != g.version || atomic_load(&g.watch_lost) || !g.watching)
		schedule_check();
}

/* librados thread */
static void probe_done(rados_completion_t c, void *arg)
{
	(void)c;
	(void)arg;
	if (io_loop_post(g.loop, on_probe, NULL))
		log_err("group: out of memory posting the version check");
}

static void on_tick(struct io_timer *t)
{
	io_timer_arm(g.loop, t, GROUP_CHECK_MS);
	if (atomic_exchange(&probe.busy, true))
		return; /* the last one has not answered yet */
	if (rados_aio_create_completion(NULL, probe_done, NULL, &probe.c) < 0) {
		atomic_store(&probe.busy, false);
		return;
	}
	if (rados_aio_getxattr(g.io, g.obj, probe.c, GROUP_XATTR, probe.buf,
			       sizeof(probe.buf) - 1) < 0) {
		rados_aio_release(probe.c);
		probe.c = NULL;
		atomic_store(&probe.busy, false);
	}
}

void ctl_group_resync(void)
{
	check(true);
}

/* ---- start, stop ---- */

static int conf_set(const char *k, const char *v, char *err, size_t errlen)
{
	int rc = rados_conf_set(g.cluster, k, v);

	if (rc < 0)
		snprintf(err, errlen, "ceph option %s=%s: %s", k, v, strerror(-rc));
	return rc;
}

static int connect_cluster(char *err, size_t errlen)
{
	char tmo[16];
	int rc;

	rc = rados_create(&g.cluster, g.id[0] ? g.id : NULL);
	if (rc < 0) {
		g.cluster = NULL;
		snprintf(err, errlen, "rados_create: %s", strerror(-rc));
		return rc;
	}
	rc = rados_conf_read_file(g.cluster, g.conf[0] ? g.conf : NULL);
	if (rc < 0) {
		snprintf(err, errlen, "cannot read ceph config %s: %s",
			 g.conf[0] ? g.conf : "(default)", strerror(-rc));
		return rc;
	}
	snprintf(tmo, sizeof(tmo), "%u", g.timeout);
	if ((rc = conf_set("rados_osd_op_timeout", tmo, err, errlen)) < 0 ||
	    (rc = conf_set("rados_mon_op_timeout", tmo, err, errlen)) < 0 ||
	    (rc = conf_set("client_mount_timeout", tmo, err, errlen)) < 0)
		return rc;
	rc = rados_connect(g.cluster);
	if (rc < 0) {
		snprintf(err, errlen, "cannot connect to the Ceph cluster: %s",
			 strerror(-rc));
		rados_shutdown(g.cluster);
		g.cluster = NULL;
		return rc;
	}
	rc = rados_ioctx_create(g.cluster, g.pool, &g.io);
	if (rc < 0) {
		g.io = NULL;
		snprintf(err, errlen, "pool %s: %s", g.pool, strerror(-rc));
	}
	return rc;
}

/* A new group: this gateway's configuration file becomes version 1 and
 * every TPG in it this gateway's. Lock held. */
static int seed_locked(char *err, size_t errlen)
{
	int rc;

	pthread_mutex_unlock(&iscsi_fabric.lock);
	g.in_change = true;
	rc = ctl_config_load_file(g.config_file, false, NULL, err, errlen);
	g.in_change = false;
	pthread_mutex_lock(&iscsi_fabric.lock);
	if (rc && rc != -ENOENT)
		return rc;
	g.version = 0;
	rc = publish_locked(err, errlen);
	if (!rc)
		log_info("group %s/%s: created from %s as version 1", g.pool,
			 g.obj, g.config_file);
	return rc;
}

int ctl_group_start(struct io_loop *loop, const char *config_file, char *err,
		    size_t errlen)
{
	int rc;

	if (!g.gateway[0]) {
		if (gethostname(g.gateway, sizeof(g.gateway)) ||
		    !name_ok(g.gateway)) {
			snprintf(err, errlen, "group: give this gateway a name "
				 "(-o gateway=NAME)");
			return -EINVAL;
		}
	}
	g.loop = loop;
	io_timer_init(&g.tick, on_tick);
	snprintf(g.config_file, sizeof(g.config_file), "%s", config_file);
	rc = connect_cluster(err, errlen);
	if (rc < 0)
		goto fail;
	iscsi_fabric.tpg_remote = tpg_remote;
	g.gateways = json_object();
	pthread_mutex_lock(&iscsi_fabric.lock);
	rc = sync_locked(true, err, errlen);
	if (rc == -ENOENT) {
		rc = seed_locked(err, errlen);
		if (rc == -ECANCELED) /* another gateway created it meanwhile */
			rc = sync_locked(true, err, errlen);
	}
	pthread_mutex_unlock(&iscsi_fabric.lock);
	if (rc < 0)
		goto fail;
	rc = watch_start();
	if (rc < 0) {
		snprintf(err, errlen, "watch %s/%s: %s", g.pool, g.obj,
			 strerror(-rc));
		goto fail;
	}
	g.active = true;
	io_timer_arm(loop, &g.tick, GROUP_CHECK_MS);
	log_info("group %s/%s: gateway %s, version %" PRIu64, g.pool, g.obj,
		 g.gateway, g.version);
	return 0;
fail:
	ctl_group_stop();
	return rc;
}

void ctl_group_stop(void)
{
	g.active = false;
	if (g.loop)
		io_timer_cancel(&g.tick);
	if (g.io && g.watching)
		rados_unwatch2(g.io, g.watch);
	g.watching = false;
	if (g.cluster)
		rados_watch_flush(g.cluster); /* no callback runs after this */
	if (probe.c) {
		/* the version probe in flight: its callback posts on_probe,
		 * which the loop still runs and which then finds no probe */
		rados_aio_wait_for_complete_and_cb(probe.c);
		rados_aio_release(probe.c);
		probe.c = NULL;
	}
	/* notifies in flight end within their timeout; their callbacks
	 * touch no more than their own memory, but must have run before
	 * the cluster handle goes */
	for (int i = 0; i < (GROUP_NOTIFY_MS + 1000) / 10 &&
			atomic_load(&notifies) > 0; i++)
		usleep(10000);
	if (g.io) {
		rados_aio_flush(g.io);
		rados_ioctx_destroy(g.io);
		g.io = NULL;
	}
	if (g.cluster)
		rados_shutdown(g.cluster);
	g.cluster = NULL;
	iscsi_fabric.tpg_remote = NULL;
	json_decref(g.doc);
	json_decref(g.gateways);
	g.doc = g.gateways = NULL;
}

/* ---- API ---- */

json_t *m_group_status(json_t *p, struct rpc_error *e)
{
	json_t *local = json_array(), *remote = json_array();
	struct iscsi_target *t;
	struct iscsi_tpg *tpg;

	(void)p;
	if (!g.active)
		return ops_fail(e, RPC_NOT_FOUND, "This gateway is not in a gateway "
				"group (utargetd -o group=POOL/OBJECT)");
	list_for_each_entry(t, &iscsi_fabric.targets, link)
		list_for_each_entry(tpg, &t->tpgs, link) {
			const char *o = owner_of(g.gateways, t->wwn, tpg->tag);

			json_array_append_new(tpg->remote ? remote : local,
					      json_pack("{s:s, s:i, s:s?}", "wwn",
							t->wwn, "tag",
							(int)tpg->tag, "gateway", o));
		}
	return json_pack("{s:s, s:s, s:s, s:I, s:b, s:O, s:o, s:o, s:I, s:I, s:I, s:I, s:s}",
			 "pool", g.pool, "object", g.obj, "gateway", g.gateway,
			 "version", (json_int_t)g.version, "watching", g.watching,
			 "gateways", g.gateways, "local_tpgs", local,
			 "remote_tpgs", remote, "applied", (json_int_t)g.applied,
			 "written", (json_int_t)g.written,
			 "conflicts", (json_int_t)g.conflicts,
			 "lock_waits", (json_int_t)g.lock_waits, "last_error",
			 g.last_error);
}
