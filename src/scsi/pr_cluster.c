/* Persistent reservations kept in the backstore's cluster (issue 18;
 * bs->pr_shared: user:rbd with pr=cluster, docs/rbd.md "Persistent
 * reservations across gateways"): the JSON encoding of the state, taking
 * a newer version (unit attentions for this gateway's nexuses), and PR OUT
 * / SPC-2 RESERVE evaluated on a helper thread against the latest state
 * and stored with a compare-and-swap (see pr.c's head comment). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scsi/pr_int.h"
#include "util/bytes.h"
#include "util/log.h"

static struct scsi_pr *pr_new(void)
{
	struct scsi_pr *pr = calloc(1, sizeof(*pr));

	if (pr)
		list_init(&pr->regs);
	return pr;
}

/* A deep copy, for evaluating a PR OUT without touching the cache. */
static struct scsi_pr *pr_dup(const struct scsi_pr *src)
{
	struct scsi_pr *pr = pr_new();
	const struct pr_reg *r;

	if (!pr)
		return NULL;
	pr->generation = src->generation;
	pr->type = src->type;
	pr->aptpl = src->aptpl;
	pr->spc2 = src->spc2;
	pr->spc2_c = src->spc2_c;
	pr->spc2_nx = src->spc2_nx;
	pr->version = src->version;
	pr->events_from = src->events_from;
	list_for_each_entry(r, &src->regs, link) {
		struct pr_reg *c = malloc(sizeof(*c));

		if (!c) {
			pr_destroy(pr);
			return NULL;
		}
		*c = *r;
		list_add_tail(&c->link, &pr->regs);
		if (src->holder == r)
			pr->holder = c;
	}
	if (src->log.n) {
		pr->log.v = malloc(src->log.n * sizeof(*pr->log.v));
		if (!pr->log.v) {
			pr_destroy(pr);
			return NULL;
		}
		memcpy(pr->log.v, src->log.v, src->log.n * sizeof(*pr->log.v));
		pr->log.n = src->log.n;
	}
	return pr;
}

/* The new version's events join the log; those older than
 * PR_EV_VERSIONS versions leave it. */
static int pr_log_add(struct scsi_pr *pr, const struct pr_evlog *evs)
{
	uint64_t from = pr->version > PR_EV_VERSIONS ?
			pr->version - PR_EV_VERSIONS + 1 : 1;
	unsigned i, k = 0;

	for (i = 0; i < pr->log.n; i++)
		if (pr->log.v[i].version >= from)
			pr->log.v[k++] = pr->log.v[i];
	pr->log.n = k;
	for (i = 0; i < evs->n; i++) {
		struct pr_ev *ev = pr_ev_add(&pr->log);

		if (!ev)
			return -ENOMEM;
		*ev = evs->v[i];
		ev->version = pr->version;
	}
	pr->events_from = from;
	return 0;
}

static const char *ua_name(unsigned ua)
{
	switch (ua) {
	case SCSI_UA_RESV_PREEMPTED: return "reservations_preempted";
	case SCSI_UA_RESV_RELEASED: return "reservations_released";
	case SCSI_UA_REG_PREEMPTED: return "registrations_preempted";
	default: return "abort_tasks";
	}
}

static unsigned ua_bit(const char *s)
{
	if (!strcmp(s, "reservations_preempted"))
		return SCSI_UA_RESV_PREEMPTED;
	if (!strcmp(s, "reservations_released"))
		return SCSI_UA_RESV_RELEASED;
	if (!strcmp(s, "registrations_preempted"))
		return SCSI_UA_REG_PREEMPTED;
	if (!strcmp(s, "abort_tasks"))
		return 0;
	return ~0u; /* not ours to act on */
}

static json_t *reg_json(const struct pr_reg *r, bool with_key)
{
	json_t *o = json_object();
	char key[24];

	if (!o)
		return NULL;
	if (with_key) {
		snprintf(key, sizeof(key), "0x%016" PRIx64, r->key);
		json_object_set_new(o, "key", json_string(key));
	}
	json_object_set_new(o, "initiator_port", json_string(r->iport));
	json_object_set_new(o, "initiator_name", json_string(r->iname));
	json_object_set_new(o, "target_name", json_string(r->tname));
	json_object_set_new(o, "tpgt", json_integer(r->tpgt));
	if (with_key)
		json_object_set_new(o, "rtpi", json_integer(r->rel_port_id));
	json_object_set_new(o, "all_tg_pt", json_boolean(r->all_tg_pt));
	return o;
}

static bool str_get(json_t *o, const char *k, char *out, size_t outlen)
{
	const char *v = json_string_value(json_object_get(o, k));

	if (!v || strlen(v) >= outlen)
		return false;
	memcpy(out, v, strlen(v) + 1);
	return true;
}

static bool reg_from_json(json_t *o, struct pr_reg *r, bool with_key)
{
	char key[24];

	memset(r, 0, sizeof(*r));
	if (!json_is_object(o) ||
	    !str_get(o, "initiator_port", r->iport, sizeof(r->iport)) ||
	    !str_get(o, "initiator_name", r->iname, sizeof(r->iname)) ||
	    !str_get(o, "target_name", r->tname, sizeof(r->tname)))
		return false;
	r->tpgt = (uint16_t)json_integer_value(json_object_get(o, "tpgt"));
	r->all_tg_pt = json_is_true(json_object_get(o, "all_tg_pt"));
	if (with_key) {
		if (!str_get(o, "key", key, sizeof(key)))
			return false;
		r->key = strtoull(key, NULL, 16);
		r->rel_port_id =
			(uint16_t)json_integer_value(json_object_get(o, "rtpi"));
	}
	return true;
}

/* The stored form (docs/rbd.md): a JSON object, keys as hex strings (a
 * JSON number cannot hold every 64-bit key). */
static char *pr_encode(const struct scsi_pr *pr, size_t *len)
{
	json_t *root = json_object(), *regs = json_array(), *evs = json_array();
	const struct pr_reg *r;
	unsigned idx = 0, i;
	char *out = NULL;

	if (!root || !regs || !evs)
		goto done;
	json_object_set_new(root, "format", json_string("utarget-pr/1"));
	json_object_set_new(root, "version", json_integer((json_int_t)pr->version));
	json_object_set_new(root, "generation", json_integer(pr->generation));
	json_object_set_new(root, "aptpl", json_boolean(pr->aptpl));
	json_object_set(root, "registrations", regs);
	list_for_each_entry(r, &pr->regs, link) {
		json_array_append_new(regs, reg_json(r, true));
		if (r == pr->holder) {
			json_t *h = json_object();

			json_object_set_new(h, "holder", json_integer(idx));
			json_object_set_new(h, "type", json_integer(pr->type));
			json_object_set_new(root, "reservation", h);
		}
		idx++;
	}
	if (!pr->holder)
		json_object_set_new(root, "reservation", json_null());
	if (pr->spc2_c) {
		json_t *x = json_object();

		json_object_set_new(x, "initiator_port", json_string(pr->spc2_nx.iport));
		json_object_set_new(x, "target_name", json_string(pr->spc2_nx.tname));
		json_object_set_new(x, "tpgt", json_integer(pr->spc2_nx.tpgt));
		json_object_set_new(root, "spc2_reservation", x);
	} else {
		json_object_set_new(root, "spc2_reservation", json_null());
	}
	json_object_set_new(root, "events_from",
			    json_integer((json_int_t)pr->events_from));
	json_object_set(root, "events", evs);
	for (i = 0; i < pr->log.n; i++) {
		const struct pr_ev *ev = &pr->log.v[i];
		json_t *e = json_object(), *x = json_object();

		json_object_set_new(e, "version", json_integer((json_int_t)ev->version));
		json_object_set_new(e, "event", json_string(ua_name(ev->ua)));
		json_object_set_new(e, "for", reg_json(&ev->reg, false));
		json_object_set_new(x, "initiator_port", json_string(ev->x_iport));
		json_object_set_new(x, "target_name", json_string(ev->x_tname));
		json_object_set_new(x, "tpgt", json_integer(ev->x_tpgt));
		json_object_set_new(e, "except", x);
		json_array_append_new(evs, e);
	}
	out = json_dumps(root, JSON_COMPACT);
	if (out)
		*len = strlen(out);
done:
	json_decref(regs);
	json_decref(evs);
	json_decref(root);
	return out;
}

/* NULL when the bytes are not a state we understand (logged). An empty
 * object is the empty state of version 0. */
static struct scsi_pr *pr_decode(const struct scsi_lu *lu, const char *data,
				 size_t len)
{
	struct scsi_pr *pr = pr_new();
	struct pr_reg **byidx = NULL;
	json_t *root = NULL, *regs, *resv, *evs, *v;
	json_error_t je;
	size_t i, n;

	if (!pr || !len)
		return pr;
	root = json_loadb(data, len, 0, &je);
	if (!json_is_object(root) ||
	    !json_is_string(json_object_get(root, "format")) ||
	    strcmp(json_string_value(json_object_get(root, "format")),
		   "utarget-pr/1")) {
		log_warn("storage object %s: persistent reservation state in the "
			 "cluster is not utarget-pr/1 (%s)", lu->name,
			 root ? "format" : je.text);
		goto fail;
	}
	pr->version = (uint64_t)json_integer_value(json_object_get(root, "version"));
	pr->generation = (uint32_t)json_integer_value(json_object_get(root, "generation"));
	pr->aptpl = json_is_true(json_object_get(root, "aptpl"));
	pr->events_from =
		(uint64_t)json_integer_value(json_object_get(root, "events_from"));
	regs = json_object_get(root, "registrations");
	n = json_array_size(regs);
	byidx = calloc(n ? n : 1, sizeof(*byidx));
	if (!byidx)
		goto fail;
	json_array_foreach(regs, i, v) {
		struct pr_reg *r = malloc(sizeof(*r));

		if (!r || !reg_from_json(v, r, true)) {
			free(r);
			log_warn("storage object %s: bad registration %zu in the "
				 "cluster's persistent reservation state",
				 lu->name, i);
			goto fail;
		}
		list_add_tail(&r->link, &pr->regs);
		byidx[i] = r;
	}
	resv = json_object_get(root, "reservation");
	if (json_is_object(resv)) {
		json_int_t h = json_integer_value(json_object_get(resv, "holder"));
		uint8_t t = (uint8_t)json_integer_value(json_object_get(resv, "type"));

		if (h < 0 || (size_t)h >= n || !pr_type_valid(t)) {
			log_warn("storage object %s: bad reservation in the cluster's "
				 "persistent reservation state", lu->name);
			goto fail;
		}
		pr->holder = byidx[h];
		pr->type = t;
	}
	v = json_object_get(root, "spc2_reservation");
	if (json_is_object(v)) {
		if (!str_get(v, "initiator_port", pr->spc2_nx.iport,
			     sizeof(pr->spc2_nx.iport)) ||
		    !str_get(v, "target_name", pr->spc2_nx.tname,
			     sizeof(pr->spc2_nx.tname)))
			goto fail;
		pr->spc2_nx.tpgt =
			(uint16_t)json_integer_value(json_object_get(v, "tpgt"));
		pr->spc2_c = true;
	}
	evs = json_object_get(root, "events");
	json_array_foreach(evs, i, v) {
		json_t *x = json_object_get(v, "except");
		struct pr_ev *ev = pr_ev_add(&pr->log);

		if (!ev || !reg_from_json(json_object_get(v, "for"), &ev->reg, false))
			goto fail;
		list_init(&ev->reg.link);
		ev->version = (uint64_t)json_integer_value(json_object_get(v, "version"));
		ev->ua = json_is_string(json_object_get(v, "event")) ?
			 ua_bit(json_string_value(json_object_get(v, "event"))) : ~0u;
		if (ev->ua == ~0u)
			pr->log.n--; /* an event a later format added: skip */
		str_get(x, "initiator_port", ev->x_iport, sizeof(ev->x_iport));
		str_get(x, "target_name", ev->x_tname, sizeof(ev->x_tname));
		ev->x_tpgt = (uint16_t)json_integer_value(json_object_get(x, "tpgt"));
	}
	free(byidx);
	json_decref(root);
	return pr;
fail:
	free(byidx);
	json_decref(root);
	pr_destroy(pr);
	return NULL;
}

static bool nexus_is(const struct scsi_nexus *nx, const struct pr_ev *ev)
{
	return nx->tport.tpgt == ev->x_tpgt &&
	       !strcmp(nx->initiator_port, ev->x_iport) &&
	       !strcmp(nx->tport.target_name, ev->x_tname);
}

/* Raises one recorded event on this gateway's nexuses. lu->lock held. */
static void ev_apply(struct scsi_lu *lu, const struct pr_ev *ev)
{
	struct scsi_lun_ent *e;

	if (!ev->ua) {
		/* SPC-4 5.12.11.5: the preempted initiator's tasks end here
		 * too, whichever gateway its commands came through */
		scsi_lu_abort_tasks(lu, ev->reg.iport, NULL);
		return;
	}
	list_for_each_entry(e, &lu->nexus_ents, lu_link) {
		if (nexus_is(e->nexus, ev) || !pr_reg_matches(lu, &ev->reg, e->nexus))
			continue;
		atomic_fetch_or(&e->ua, ev->ua);
	}
}

/* Without the events (more versions missed than the log keeps): a nexus
 * that had a registration and has none now was preempted
 * (REGISTRATIONS PREEMPTED, SPC-4 5.12.11.4). lu->lock held. */
static void diff_apply(struct scsi_lu *lu, const struct scsi_pr *old,
		       const struct scsi_pr *fresh)
{
	struct scsi_lun_ent *e;
	const struct pr_reg *r;

	list_for_each_entry(e, &lu->nexus_ents, lu_link) {
		bool had = false, has = false;

		list_for_each_entry(r, &old->regs, link)
			had = had || pr_reg_matches(lu, r, e->nexus);
		list_for_each_entry(r, &fresh->regs, link)
			has = has || pr_reg_matches(lu, r, e->nexus);
		if (had && !has)
			atomic_fetch_or(&e->ua, SCSI_UA_REG_PREEMPTED);
	}
}

/* Makes fresh (a state from the cluster, owned from now on) the LU's
 * cache if it is newer, raising the unit attentions of the versions in
 * between for this gateway's nexuses. lu->lock held. */
static void pr_install_locked(struct scsi_lu *lu, struct scsi_pr *fresh)
{
	struct scsi_pr *old = lu->pr;
	bool loaded = atomic_load(&lu->pr_loaded);
	unsigned i;

	/* versions only grow (compare-and-swap); an older one is a notify
	 * or a store overtaken by another gateway's */
	if (old && loaded && fresh->version <= old->version) {
		pr_destroy(fresh);
		return;
	}
	if (old && loaded) {
		if (fresh->events_from > old->version + 1)
			diff_apply(lu, old, fresh);
		for (i = 0; i < fresh->log.n; i++)
			if (fresh->log.v[i].version > old->version)
				ev_apply(lu, &fresh->log.v[i]);
	}
	lu->pr = fresh;
	pr_destroy(old);
	atomic_store(&lu->pr_loaded, true);
	pr_update_reserved(lu);
}

/* The backstore's changed hook (its watch thread): another gateway stored
 * a state (data), or the watch came back and we must read it (NULL).
 * Taken before returning: the notifier's PR OUT waits for that. */
static int pr_changed(void *arg, const char *data, size_t len)
{
	struct scsi_lu *lu = arg;
	struct scsi_pr *fresh;
	char *buf = NULL;

	if (!data || !len) {
		int e = lu->bs->ops->pr_load(lu->bs, &buf, &len);

		if (e < 0)
			return e;
		data = buf;
	}
	fresh = pr_decode(lu, data, len);
	free(buf);
	if (!fresh)
		return -EINVAL;
	pthread_mutex_lock(&lu->lock);
	pr_install_locked(lu, fresh);
	pthread_mutex_unlock(&lu->lock);
	return 0;
}

void pr_cluster_attach(struct scsi_lu *lu)
{
	int e;

	/* reads the state through pr_changed before it returns (and, if
	 * that fails, keeps trying: until then pr_loaded is false and
	 * nothing that depends on the state is served) */
	lu->bs->ops->pr_attach(lu->bs, pr_changed, lu);
	e = atomic_load(&lu->pr_loaded) ? 0 : -EAGAIN;
	pthread_mutex_lock(&lu->lock);
	if (e >= 0) {
		const struct pr_reg *r;
		unsigned n = 0;

		if (lu->pr)
			list_for_each_entry(r, &lu->pr->regs, link)
				n++;
		log_info("storage object %s: persistent reservations kept in "
			 "the cluster (%u registration(s))", lu->name, n);
	}
	pr_update_reserved(lu);
	pthread_mutex_unlock(&lu->lock);
}

/* Evaluates a change against a copy of the state (lu->pr is the copy,
 * lu->lock held): 1 to store it, 0 to leave the state as it is. */
typedef int (*pr_eval_fn)(struct scsi_lu *lu, void *ctx);

/* One update of the cluster's state: load the latest, evaluate against it,
 * compare-and-swap; another gateway's store in between means doing it
 * all again against theirs. Blocks: helper threads only. 0, or -errno
 * when the cluster could not be read or written (-ENOMEM, -EINVAL: the
 * state is not ours to understand). */
static int cluster_update(struct scsi_lu *lu, pr_eval_fn eval, void *ctx)
{
	struct bs_dev *bs = lu->bs;
	unsigned tries;

	for (tries = 0;; tries++) {
		struct scsi_pr *fresh, *work, *cached;
		struct pr_evlog evs = { 0 };
		char *buf = NULL, *out;
		size_t len = 0;
		uint64_t base;
		int e, store;

		e = bs->ops->pr_load(bs, &buf, &len);
		fresh = e < 0 ? NULL : pr_decode(lu, buf, len);
		free(buf);
		if (!fresh) {
			log_warn("storage object %s: cannot read the persistent "
				 "reservation state from the cluster: %s", lu->name,
				 e < 0 ? strerror(-e) : "not understood");
			return e < 0 ? e : -EINVAL;
		}
		pthread_mutex_lock(&lu->lock);
		pr_install_locked(lu, fresh);
		cached = lu->pr;
		work = pr_dup(cached);
		if (!work) {
			pthread_mutex_unlock(&lu->lock);
			return -ENOMEM;
		}
		base = cached->version;
		/* the same rules as a local LU, on a copy nobody else sees
		 * (the lock is held throughout), with the unit attentions
		 * recorded instead of raised */
		lu->pr = work;
		pr_recording = &evs;
		store = eval(lu, ctx);
		pr_recording = NULL;
		lu->pr = cached;
		pthread_mutex_unlock(&lu->lock);
		if (!store) {
			free(evs.v);
			pr_destroy(work);
			return 0;
		}
		work->version = base + 1;
		e = pr_log_add(work, &evs);
		free(evs.v);
		out = e < 0 ? NULL : pr_encode(work, &len);
		if (!out) {
			pr_destroy(work);
			return -ENOMEM;
		}
		e = bs->ops->pr_store(bs, base, base + 1, out, len);
		free(out);
		if (e == -ECANCELED && tries < 1000) {
			/* another gateway stored first: evaluate again against
			 * its state (after a short random pause, so that many
			 * racing gateways do not keep colliding) */
			pr_destroy(work);
			usleep((useconds_t)(rand() % (1000 * (tries < 20 ? tries + 1 : 20))));
			continue;
		}
		if (e < 0) {
			log_warn("storage object %s: cannot store the persistent "
				 "reservation state in the cluster: %s", lu->name,
				 strerror(-e));
			pr_destroy(work);
			return e;
		}
		pthread_mutex_lock(&lu->lock);
		pr_install_locked(lu, work);
		pthread_mutex_unlock(&lu->lock);
		return 0;
	}
}

/* PERSISTENT RESERVE OUT (SPC-4 6.16), RESERVE / RELEASE (SPC-2 7.21,
 * 7.13): stored when it succeeded. */
static int eval_cmd(struct scsi_lu *lu, void *ctx)
{
	struct scsi_cmd *cmd = ctx;

	if (cmd->cdb[0] == 0x5f)
		pr_out(cmd);
	else
		pr_reserve_eval(cmd);
	return cmd->status == SAM_STAT_GOOD;
}

static void pr_out_complete_post(void *arg)
{
	scsi_cmd_complete(arg);
}

static void *pr_out_cluster(void *arg)
{
	struct scsi_cmd *cmd = arg;
	int e = cluster_update(cmd->lu, eval_cmd, cmd);

	if (e == -ENOMEM)
		scsi_set_sense(cmd, SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
	else if (e < 0)
		pr_set_stale(cmd); /* retryable; see docs/rbd.md for a lost reply */
	if (cmd->loop) {
		/* the completion belongs to the command's worker */
		cmd->bio.post.fn = pr_out_complete_post;
		cmd->bio.post.arg = cmd;
		cmd->bio.post.owned = false;
		io_loop_post_node(cmd->loop, &cmd->bio.post);
	} else {
		scsi_cmd_complete(cmd);
	}
	return NULL;
}

static bool spawn(void *(*fn)(void *), void *arg)
{
	pthread_attr_t a;
	pthread_t t;
	int e;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	e = pthread_create(&t, &a, fn, arg);
	pthread_attr_destroy(&a);
	return e == 0;
}

void pr_out_cluster_start(struct scsi_cmd *cmd)
{
	if (!spawn(pr_out_cluster, cmd)) {
		cmd->status = SAM_STAT_BUSY;
		cmd->sense_len = 0;
		scsi_cmd_complete(cmd);
	}
}

/* The end of an SPC-2 reservation that nobody's command asked for: its
 * nexus ended (any: a LUN or target reset, SPC-2 5.5.1) */
struct spc2_clear {
	struct scsi_lu *lu;
	bool any;
	struct pr_nx nx;
};

static int eval_spc2_clear(struct scsi_lu *lu, void *ctx)
{
	struct spc2_clear *c = ctx;
	struct scsi_pr *pr = lu->pr;

	if (!pr->spc2_c)
		return 0;
	if (!c->any && (pr->spc2_nx.tpgt != c->nx.tpgt ||
			strcmp(pr->spc2_nx.iport, c->nx.iport) ||
			strcmp(pr->spc2_nx.tname, c->nx.tname)))
		return 0;
	pr->spc2_c = false;
	return 1;
}

static void *spc2_clear_thread(void *arg)
{
	struct spc2_clear *c = arg;
	int e = cluster_update(c->lu, eval_spc2_clear, c);

	if (e < 0)
		log_warn("storage object %s: the SPC-2 reservation could not be "
			 "released in the cluster: %s", c->lu->name, strerror(-e));
	scsi_lu_put(c->lu);
	free(c);
	return NULL;
}

/* lu->lock held, so nothing blocks here: the update runs on a thread of
 * its own. Until it is stored the reservation still holds (on every
 * gateway alike). */
void pr_spc2_clear_cluster(struct scsi_lu *lu, const struct scsi_nexus *nx)
{
	struct spc2_clear *c = calloc(1, sizeof(*c));

	if (!c) {
		log_warn("storage object %s: no memory to release an SPC-2 "
			 "reservation", lu->name);
		return;
	}
	c->lu = lu;
	c->any = nx == NULL;
	if (nx)
		pr_nx_id(&c->nx, nx);
	scsi_lu_get(lu);
	if (!spawn(spc2_clear_thread, c)) {
		log_warn("storage object %s: cannot release an SPC-2 "
			 "reservation (no thread)", lu->name);
		scsi_lu_put(lu);
		free(c);
	}
}
