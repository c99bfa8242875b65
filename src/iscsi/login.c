/* Login phase (RFC 7143 §6, §11.12-11.13): stages (security ->
 * operational -> full feature), the identity keys, target / portal group /
 * ACL resolution, TSIH allocation and session reinstatement. Operational
 * keys go to the negotiation table in params.c. */
#include "iscsi/conn.h"
#include "iscsi/mgmt.h"
#include "iscsi/chap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define STAGE_SECURITY 0
#define STAGE_OPERATIONAL 1
#define STAGE_FFP 3
/* RFC 7143 §6.1: a target must accept 8192 bytes of key=value data in a
 * negotiation sequence, 64 KiB when an authentication method needs long
 * items; a login request longer than that is refused (Out of resources),
 * which bounds the memory a connection in login can take. */
#define LOGIN_TEXT_MAX 65536

struct iscsi_login_state {
	bool started;
	bool resolved;
	uint8_t isid[6];
	uint16_t tsih;
	uint16_t cid;
	uint32_t itt;
	uint32_t cmdsn;
	int stage;
	bool discovery;
	bool have_session_type;
	bool auth_negotiated;   /* AuthMethod answered */
	bool auth_none;         /* AuthMethod=None agreed */
	bool auth_required;
	bool target_known;      /* l->target names a configured target (stats) */
	bool chap_on;           /* AuthMethod=CHAP agreed */
	bool authenticated;     /* CHAP completed */
	bool auth_progress;     /* this request moved authentication on */
	const char *auth_src;   /* where the credentials came from (logs) */
	struct iscsi_auth auth; /* credentials for this login (a copy) */
	struct iscsi_chap chap;
	const char *why;        /* reason for l->fail, for the log */
	bool declared;          /* TargetAlias / TPGT sent */
	char initiator[ISCSI_NAME_MAX];
	char target[ISCSI_NAME_MAX];
	char alias[ISCSI_PARAM_VALUE_MAX];
	uint16_t tpgt;
	uint16_t rtpi;          /* the TPG's relative target port id */
	struct iscsi_tpg_params tpg_params;
	struct iscsi_tpg_attrs tpg_attrs;
	struct iscsi_acl_attrs acl_attrs;
	struct iscsi_sess_params sp;
	struct iscsi_neg neg;
	struct scsi_lun_map *map;
	struct iscsi_text in;
	struct iscsi_text out;
	uint16_t fail;          /* login status to answer with, 0 = none */
};

void iscsi_login_free(struct iscsi_conn *c)
{
	struct iscsi_login_state *l = c->login;

	if (!l)
		return;
	if (l->map)
		scsi_lun_map_free(l->map); /* never handed to a nexus */
	iscsi_chap_clear(&l->chap);
	explicit_bzero(&l->auth, sizeof(l->auth));
	iscsi_text_free(&l->in);
	iscsi_text_free(&l->out);
	free(l);
	c->login = NULL;
}

static void login_respond(struct iscsi_conn *c, bool transit, int nsg,
			  uint16_t status, uint16_t tsih)
{
	struct iscsi_login_state *l = c->login;
	struct iscsi_txe *e = iscsi_txe_new((uint32_t)l->out.len);
	uint8_t *b;
	uint32_t depth = l->tpg_attrs.default_cmdsn_depth;

	if (!e) {
		iscsi_conn_close(c, "out of memory");
		return;
	}
	b = e->hdr;
	b[0] = ISCSI_OP_LOGIN_RSP;
	if (status == ISCSI_LOGIN_OK) {
		b[1] = (uint8_t)((transit ? ISCSI_FLAG_LOGIN_TRANSIT : 0) |
				 (l->stage << 2) | (transit ? nsg : 0));
	} else {
		b[1] = (uint8_t)(l->stage << 2);
	}
	b[2] = 0; /* version-max */
	b[3] = 0; /* version-active */
	memcpy(b + BHS_ISID, l->isid, 6);
	put_be16(b + BHS_TSIH, tsih);
	put_be32(b + BHS_ITT, l->itt);
	put_be32(b + BHS_CMDSN, c->stat_sn++);
	put_be32(b + BHS_EXPSTATSN, l->cmdsn);
	put_be32(b + BHS_MAXCMDSN, l->cmdsn + (depth ? depth : 64) - 1);
	b[36] = (uint8_t)(status >> 8);
	b[37] = (uint8_t)status;
	if (l->out.len)
		memcpy((uint8_t *)(e + 1), l->out.buf, l->out.len);
	if (status != ISCSI_LOGIN_OK)
		e->close_after = true;
	iscsi_text_reset(&l->out);
	iscsi_conn_queue(c, e, false);
}

/* The reason goes to the log with the initiator's name (the connection
 * log adds its address); secrets never do. */
/* Login statistics (iscsi/stats.c) by target and by the network portal
 * the initiator reached. */
static void count_login(struct iscsi_conn *c, const char *target,
			uint16_t status)
{
	char portal[80];

	snprintf(portal, sizeof(portal),
		 c->local_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
		 c->local_ip, c->local_port);
	iscsi_stats_login(target, portal, c->login->discovery, status);
}

static void login_fail(struct iscsi_conn *c, uint16_t status, const char *why)
{
	struct iscsi_login_state *l = c->login;

	iscsi_conn_log(c, UT_LOG_WARN, "login refused (%02x%02x) for %s%s%s: %s",
		       status >> 8, status & 0xff,
		       l->initiator[0] ? l->initiator : "(no InitiatorName)",
		       l->discovery ? ", discovery session" :
				      l->target[0] ? " to " : "",
		       l->discovery ? "" : l->target, why);
	/* names an initiator made up count under "" (iscsi/stats.c) */
	count_login(c, l->target_known ? l->target : "", status);
	iscsi_text_reset(&c->login->out);
	login_respond(c, false, 0, status, 0);
}

/* iSCSI names (RFC 3720 §3.2.6.2, RFC 3722) never hold spaces or control
 * characters; refusing them keeps hostile names out of logs and files. */
static bool name_chars_ok(const char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v <= ' ' || *v == 0x7f)
			return false;
	return true;
}

/* Pass 1: keys that say who is logging in where (§13.4-13.6, §13.11). */
static int identity_key(void *arg, const char *key, const char *value)
{
	struct iscsi_login_state *l = arg;

	if (!strcmp(key, "InitiatorName")) {
		if (strlen(value) >= ISCSI_NAME_MAX || !value[0] ||
		    !name_chars_ok(value)) {
			l->fail = ISCSI_LOGIN_INITIATOR_ERROR;
			return 1;
		}
		strcpy(l->initiator, value);
	} else if (!strcmp(key, "TargetName")) {
		if (strlen(value) >= ISCSI_NAME_MAX || !name_chars_ok(value)) {
			l->fail = ISCSI_LOGIN_NOT_FOUND;
			return 1;
		}
		strcpy(l->target, value);
	} else if (!strcmp(key, "SessionType")) {
		if (!strcmp(value, "Discovery")) {
			l->discovery = true;
		} else if (!strcmp(value, "Normal")) {
			l->discovery = false;
		} else {
			l->fail = ISCSI_LOGIN_SESSION_TYPE_UNSUPPORTED;
			return 1;
		}
		l->have_session_type = true;
	} else if (!strcmp(key, "InitiatorAlias")) {
		char *p;

		/* free text (§13.7), shown by `sessions`: no control bytes */
		snprintf(l->alias, sizeof(l->alias), "%s", value);
		for (p = l->alias; *p; p++)
			if ((unsigned char)*p < ' ' || *p == 0x7f)
				*p = '?';
	}
	return 0;
}

static bool list_has(const char *list, const char *item)
{
	size_t n = strlen(item);
	const char *p = list;

	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (len == n && !strncmp(p, item, n))
			return true;
		p = comma ? comma + 1 : NULL;
	}
	return false;
}

/* Whether this login can use value v of AuthMethod. None: only when the
 * TPG does not require authentication. CHAP: when the TPG's AuthMethod
 * list allows it and there is something to check it against (credentials
 * on the ACL or TPG), or when authentication is required (then CHAP is the
 * only way in and fails without credentials). A CHAP-capable initiator of
 * a demo-mode TPG without credentials thus gets None where LIO would pick
 * CHAP and fail the login ("CHAP user or password not set"). */
static bool auth_supported(const struct iscsi_login_state *l, const char *v,
			   size_t n)
{
	if (n == 4 && !strncmp(v, "None", 4))
		return !l->auth_required;
	if (n == 4 && !strncmp(v, "CHAP", 4))
		return list_has(l->tpg_params.val[ITK_AUTHMETHOD], "CHAP") &&
		       (l->auth_required || l->auth.userid[0] ||
			l->auth.password[0]);
	return false; /* KRB5, SRP, SPKM1/2: not implemented */
}

/* AuthMethod (§12.1). §6.2.1: the responder selects the FIRST value of the
 * originator's list that it supports, so an initiator configured for CHAP
 * ("CHAP,None", as libiscsi and open-iscsi send) runs CHAP whenever the
 * target has credentials for it, also with authentication=0; a wrong
 * secret is then refused. LIO does the same: its
 * iscsi_check_valuelist_for_support() (drivers/target/iscsi/
 * iscsi_target_parameters.c) walks the proposer's values in the outer
 * loop. An initiator offering only None still gets in when authentication
 * is 0 (LIO's rule; utargetcli warns about it). */
static void auth_method(struct iscsi_login_state *l, const char *value)
{
	const char *p = value;

	l->auth_negotiated = true;
	l->auth_progress = true;
	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		if (auth_supported(l, p, n)) {
			if (*p == 'N') {
				iscsi_text_add(&l->out, "AuthMethod", "None");
				l->auth_none = true;
			} else {
				iscsi_text_add(&l->out, "AuthMethod", "CHAP");
				l->chap_on = true;
				iscsi_chap_init(&l->chap, &l->auth,
						CHAP_ALGS_ALL);
			}
			return;
		}
		p = comma ? comma + 1 : NULL;
	}
	/* Nothing acceptable: a Reject would only leave the initiator
	 * stuck; fail the login with the reason (§11.13.5: 0201). */
	l->fail = ISCSI_LOGIN_AUTH_FAILED;
	l->why = l->auth_required ?
			 "authentication required, AuthMethod CHAP not offered" :
			 "no acceptable AuthMethod offered";
}

/* Pass 2: everything else. */
static int other_key(void *arg, const char *key, const char *value)
{
	struct iscsi_login_state *l = arg;
	enum iscsi_neg_result r;

	if (!strcmp(key, "InitiatorName") || !strcmp(key, "TargetName") ||
	    !strcmp(key, "SessionType") || !strcmp(key, "InitiatorAlias"))
		return 0;
	if (!strcmp(key, "AuthMethod")) {
		if (l->stage != STAGE_SECURITY || l->auth_negotiated) {
			l->fail = ISCSI_LOGIN_INITIATOR_ERROR;
			l->why = l->auth_negotiated ? "AuthMethod sent twice" :
				 "AuthMethod outside the security stage";
			return 1;
		}
		auth_method(l, value);
		return l->fail ? 1 : 0;
	}
	if (!strncmp(key, "CHAP_", 5)) {
		int ret;

		/* CHAP exchange (chap.c): keys are collected here and
		 * processed once the whole request is read. An initiator
		 * may send CHAP_A along with "AuthMethod=CHAP,None"; when
		 * None was chosen the key no longer matters (§6.2.1). */
		if (l->auth_none && l->stage == STAGE_SECURITY) {
			iscsi_text_add(&l->out, key, "Irrelevant");
			return 0;
		}
		if (!l->chap_on || l->stage != STAGE_SECURITY) {
			l->fail = ISCSI_LOGIN_AUTH_FAILED;
			l->why = "CHAP key without AuthMethod=CHAP agreed";
			return 1;
		}
		ret = iscsi_chap_key(&l->chap, key, value);
		if (ret) {
			l->fail = ret == -ENOMEM ? ISCSI_LOGIN_OUT_OF_RESOURCES :
						   ISCSI_LOGIN_AUTH_FAILED;
			l->why = ret == -ENOMEM ? "out of memory" :
				 "unknown, repeated or oversized CHAP key";
			return 1;
		}
		return 0;
	}
	r = iscsi_neg_key(&l->neg, key, value, &l->out);
	if (r == ISCSI_NEG_FAIL) {
		l->fail = ISCSI_LOGIN_INITIATOR_ERROR;
		return 1;
	}
	if (r == ISCSI_NEG_UNKNOWN)
		/* target-declared keys (TargetAlias, TargetAddress,
		 * TargetPortalGroupTag) and SendTargets are not the
		 * initiator's to send in a login */
		iscsi_text_add(&l->out, key, "Reject");
	return 0;
}

/* Find the target, the portal group that serves this connection's address
 * and the initiator's LUN map. Returns a login status. */
static uint16_t resolve(struct iscsi_conn *c)
{
	struct iscsi_login_state *l = c->login;
	struct iscsi_target *t;
	struct iscsi_tpg *tpg;
	struct iscsi_acl *acl;
	bool denied;

	if (!l->initiator[0])
		return ISCSI_LOGIN_MISSING_PARAMETER;
	iscsi_tpg_params_default(&l->tpg_params);
	iscsi_tpg_attrs_default(&l->tpg_attrs);
	iscsi_acl_attrs_default(&l->acl_attrs);
	if (l->discovery) {
		/* Discovery sessions negotiate with defaults; discovery
		 * authentication (when enabled) requires CHAP. */
		pthread_mutex_lock(&iscsi_fabric.lock);
		l->auth_required = iscsi_fabric.discovery_enable_auth;
		l->auth = iscsi_fabric.discovery_auth;
		l->auth_src = "discovery_auth";
		pthread_mutex_unlock(&iscsi_fabric.lock);
		snprintf(l->tpg_params.val[ITK_AUTHMETHOD], ISCSI_PARAM_VALUE_MAX,
			 "CHAP,None");
		return ISCSI_LOGIN_OK;
	}
	if (!l->target[0])
		return ISCSI_LOGIN_MISSING_PARAMETER;
	pthread_mutex_lock(&iscsi_fabric.lock);
	t = iscsi_target_find(l->target);
	tpg = t ? iscsi_tpg_for_addr(t, &c->local_addr) : NULL;
	if (!tpg) {
		pthread_mutex_unlock(&iscsi_fabric.lock);
		return ISCSI_LOGIN_NOT_FOUND;
	}
	l->target_known = true;
	/* Initiator address ACLs (issue 21): once the initiator name is
	 * known, a source address outside the TPG's or the initiator's ACL's
	 * allowed_networks is refused as "Initiator not authorized" —
	 * status class 02, detail 02 (RFC 7143 §11.13.5). */
	if (!iscsi_tpg_addr_allowed(tpg, l->initiator, &c->peer_addr)) {
		pthread_mutex_unlock(&iscsi_fabric.lock);
		iscsi_conn_log(c, UT_LOG_INFO,
			       "login refused: source address not in "
			       "allowed_networks");
		return ISCSI_LOGIN_FORBIDDEN;
	}
	l->map = iscsi_tpg_build_map(tpg, l->initiator, &denied);
	if (!l->map) {
		pthread_mutex_unlock(&iscsi_fabric.lock);
		return denied ? ISCSI_LOGIN_FORBIDDEN :
				ISCSI_LOGIN_OUT_OF_RESOURCES;
	}
	snprintf(l->target, sizeof(l->target), "%s", t->wwn);
	l->tpgt = tpg->tag;
	l->rtpi = tpg->rtpi;
	l->tpg_params = tpg->params;
	l->tpg_attrs = tpg->attrs;
	acl = iscsi_acl_find(tpg, l->initiator);
	if (acl)
		l->acl_attrs = acl->attrs;
	l->auth_required = tpg->attrs.authentication != 0;
	/* The rest of the login has this TPG's login_timeout. */
	if (tpg->attrs.login_timeout)
		io_timer_arm(c->loop, &c->login_timer,
			     (uint64_t)tpg->attrs.login_timeout * 1000);
	/* CHAP credentials: the initiator's ACL; an ACL without any, or
	 * demo mode (a generated ACL), uses the TPG's auth group, as LIO
	 * does (tpg_demo_auth). */
	if (acl && (acl->auth.userid[0] || acl->auth.password[0])) {
		l->auth = acl->auth;
		l->auth_src = "ACL";
	} else {
		l->auth = tpg->auth;
		l->auth_src = "TPG";
	}
	pthread_mutex_unlock(&iscsi_fabric.lock);
	return ISCSI_LOGIN_OK;
}

/* Leading login done: create the session (TSIH, reinstatement). */
static int session_start(struct iscsi_conn *c)
{
	struct iscsi_login_state *l = c->login;
	struct iscsi_session *s = iscsi_session_new();

	if (!s)
		return -ENOMEM;
	memcpy(s->isid, l->isid, 6);
	s->discovery = l->discovery;
	snprintf(s->initiator_name, sizeof(s->initiator_name), "%s",
		 l->initiator);
	snprintf(s->target_name, sizeof(s->target_name), "%s", l->target);
	snprintf(s->initiator_alias, sizeof(s->initiator_alias), "%s", l->alias);
	s->tpgt = l->tpgt;
	s->params = l->sp;
	s->tpg_params = l->tpg_params;
	s->acl_attrs = l->acl_attrs;
	s->authenticated = l->authenticated; /* CHAP done (sessions listing) */
	s->conn = c;
	s->cid = c->cid;
	snprintf(s->peer, sizeof(s->peer), "%s", c->peer);
	snprintf(s->local, sizeof(s->local), c->local_family == AF_INET6 ?
		 "[%s]:%u" : "%s:%u", c->local_ip, c->local_port);
	s->loop = c->loop;
	s->exp_cmdsn = l->cmdsn;
	s->cmdsn_depth = l->tpg_attrs.default_cmdsn_depth ?
				 l->tpg_attrs.default_cmdsn_depth : 64;
	/* what the final login response advertises */
	s->max_cmdsn = l->cmdsn + s->cmdsn_depth - 1;
	if (!l->discovery) {
		const uint8_t *i = l->isid;

		/* SPC-4 7.7.3.5 / RFC 7143 §4.2.7.3: "name,i,0xISID" */
		snprintf(s->nexus.initiator_port, sizeof(s->nexus.initiator_port),
			 "%s,i,0x%02x%02x%02x%02x%02x%02x", l->initiator, i[0],
			 i[1], i[2], i[3], i[4], i[5]);
		snprintf(s->nexus.initiator_name, sizeof(s->nexus.initiator_name),
			 "%s", l->initiator);
		snprintf(s->nexus.tport.target_name,
			 sizeof(s->nexus.tport.target_name), "%s", l->target);
		s->nexus.tport.tpgt = l->tpgt;
		/* SPC-4 7.8.6.7: unique in the daemon (target.c), not the tag */
		s->nexus.tport.rel_port_id = l->rtpi;
		s->nexus.tport.proto_id = SCSI_PROTO_ISCSI;
		iscsi_session_reinstate_find(l->initiator, l->isid, l->target,
					     l->tpgt);
		scsi_nexus_set_map(&s->nexus, l->map);
		l->map = NULL;
	}
	iscsi_session_register(s);
	c->sess = s;
	return 0;
}

static void login_finish(struct iscsi_conn *c)
{
	struct iscsi_login_state *l = c->login;
	struct iscsi_sess_params *sp = &l->sp;

	if (!l->declared && !l->discovery) {
		/* §13.9, §13.10: declared by the target in a Normal session */
		if (sp->target_alias[0])
			iscsi_text_add(&l->out, "TargetAlias", sp->target_alias);
		iscsi_text_addf(&l->out, "TargetPortalGroupTag", "%u", l->tpgt);
		l->declared = true;
	}
	/* A portal group that offers only CRC32C requires digests: an
	 * initiator that would not agree to them (answered Reject, so the key
	 * kept its default None) does not get in without them. */
	if ((!sp->header_digest &&
	     !list_has(l->tpg_params.val[ITK_HEADERDIGEST], "None")) ||
	    (!sp->data_digest &&
	     !list_has(l->tpg_params.val[ITK_DATADIGEST], "None"))) {
		login_fail(c, ISCSI_LOGIN_INITIATOR_ERROR,
			   "the portal group requires CRC32C digests");
		return;
	}
	if (iscsi_neg_finish(&l->neg, &l->out)) {
		login_fail(c, ISCSI_LOGIN_INITIATOR_ERROR, "negotiation failed");
		return;
	}
	if (!l->discovery && l->tsih == 0 &&
	    iscsi_session_count_target(l->target) >=
		    iscsi_limits.max_sessions_per_target) {
		login_fail(c, ISCSI_LOGIN_OUT_OF_RESOURCES,
			   "too many sessions on the target (max_sessions_per_target)");
		return;
	}
	if (session_start(c)) {
		login_fail(c, ISCSI_LOGIN_OUT_OF_RESOURCES, "out of memory");
		return;
	}
	/* The final response goes out without digests; everything after it
	 * uses the negotiated ones (§13.1). */
	login_respond(c, true, STAGE_FFP, ISCSI_LOGIN_OK, c->sess->tsih);
	count_login(c, l->target, ISCSI_LOGIN_OK);
	c->hdigest = sp->header_digest;
	c->ddigest = sp->data_digest;
	c->max_recv_dsl = sp->max_recv_dsl;
	c->max_xmit_dsl = sp->max_xmit_dsl;
	iscsi_conn_log(c, UT_LOG_INFO,
		       "logged in to %s (tsih %u)%s%s",
		       l->discovery ? "discovery" : l->target, c->sess->tsih,
		       sp->header_digest ? ", header digest" : "",
		       sp->data_digest ? ", data digest" : "");
	iscsi_login_free(c);
	iscsi_conn_enter_ffp(c);
}

/* Runs the CHAP exchange on the keys of the request just read. Returns
 * non-zero when the login was failed. */
static int auth_step(struct iscsi_conn *c)
{
	struct iscsi_login_state *l = c->login;
	enum iscsi_chap_state before = l->chap.state;
	const char *why = NULL;
	int ret;

	ret = iscsi_chap_step(&l->chap, &l->out, &why);
	if (ret) {
		char msg[192];

		snprintf(msg, sizeof(msg), "CHAP with %s credentials: %s",
			 l->auth_src ? l->auth_src : "no", why ? why : "failed");
		login_fail(c, ret == -EACCES ? ISCSI_LOGIN_AUTH_FAILED :
			   ret == -ENOMEM ? ISCSI_LOGIN_OUT_OF_RESOURCES :
					    ISCSI_LOGIN_TARGET_ERROR, msg);
		return 1;
	}
	if (l->chap.state != before)
		l->auth_progress = true;
	if (l->chap.state == CHAP_DONE && !l->authenticated) {
		l->authenticated = true;
		iscsi_conn_log(c, UT_LOG_INFO,
			       "%s authenticated by CHAP (%s, %s credentials)%s",
			       l->initiator, iscsi_chap_alg_name(l->chap.alg),
			       l->auth_src,
			       l->chap.mutual ? ", target authenticated (mutual)" : "");
	}
	return 0;
}

/* The login state of c, made from the first Login Request's header
 * (c->hdr) when there is none yet; NULL when out of memory (closed). */
static struct iscsi_login_state *login_state(struct iscsi_conn *c)
{
	const uint8_t *h = c->hdr;
	struct iscsi_login_state *l = c->login;

	if (!l) {
		l = c->login = calloc(1, sizeof(*l));
		if (!l) {
			iscsi_conn_close(c, "out of memory");
			return NULL;
		}
		iscsi_text_init(&l->in);
		iscsi_text_init(&l->out);
		/* keys the initiator never mentions keep RFC 7143's
		 * defaults (§13) */
		iscsi_sess_params_default(&l->sp);
	}
	if (!l->started) {
		memcpy(l->isid, h + BHS_ISID, 6);
		l->tsih = get_be16(h + BHS_TSIH);
		l->itt = get_be32(h + BHS_ITT);
		l->cid = get_be16(h + BHS_CID);
		l->cmdsn = get_be32(h + BHS_CMDSN);
		l->stage = (h[1] >> 2) & 3;
		c->cid = l->cid;
		c->stat_sn = get_be32(h + BHS_EXPSTATSN);
		iscsi_tpg_attrs_default(&l->tpg_attrs);
	}
	return l;
}

void iscsi_login_refuse(struct iscsi_conn *c, const char *why)
{
	struct iscsi_login_state *l = login_state(c);

	if (!l)
		return;
	l->started = true;
	l->itt = get_be32(c->hdr + BHS_ITT);
	login_fail(c, ISCSI_LOGIN_INITIATOR_ERROR, why);
}

void iscsi_login_rx(struct iscsi_conn *c)
{
	const uint8_t *h = c->hdr;
	struct iscsi_login_state *l = login_state(c);
	bool transit = h[1] & ISCSI_FLAG_LOGIN_TRANSIT;
	bool cont = h[1] & ISCSI_FLAG_LOGIN_CONTINUE;
	int csg = (h[1] >> 2) & 3, nsg = h[1] & 3;
	uint16_t st;

	if (!l)
		return;
	if (!l->started) {
		l->started = true;
		/* version-min > 0 asks for a protocol version we lack */
		if (h[3] > 0) {
			login_fail(c, ISCSI_LOGIN_UNSUPPORTED_VERSION,
				   "unsupported version");
			return;
		}
	}
	if (memcmp(l->isid, h + BHS_ISID, 6) ||
	    l->tsih != get_be16(h + BHS_TSIH) ||
	    l->cid != get_be16(h + BHS_CID)) {
		login_fail(c, ISCSI_LOGIN_INITIATOR_ERROR,
			   "ISID/TSIH/CID changed during login");
		return;
	}
	l->itt = get_be32(h + BHS_ITT);
	/* §11.12.2: C and T together, a stage we are not in, a next stage
	 * that does not exist or goes backwards: initiator error. */
	if ((transit && cont) || csg != l->stage || csg == 2 || csg == 3 ||
	    (transit && (nsg == 2 || nsg <= csg))) {
		login_fail(c, ISCSI_LOGIN_INITIATOR_ERROR,
			   "invalid stage transition");
		return;
	}
	if (l->in.len + c->dlen > LOGIN_TEXT_MAX) {
		login_fail(c, ISCSI_LOGIN_OUT_OF_RESOURCES,
			   "login text longer than 64 KiB");
		return;
	}
	if (c->dlen && iscsi_text_add_raw(&l->in, (const char *)c->scratch,
					  c->dlen)) {
		login_fail(c, ISCSI_LOGIN_OUT_OF_RESOURCES, "out of memory");
		return;
	}
	if (cont) {
		/* more text to come: acknowledge with an empty response */
		login_respond(c, false, 0, ISCSI_LOGIN_OK, 0);
		return;
	}
	if (iscsi_text_foreach(l->in.buf, l->in.len, identity_key, l) < 0)
		l->fail = ISCSI_LOGIN_INITIATOR_ERROR;
	if (l->fail) {
		login_fail(c, l->fail, "bad identity keys");
		return;
	}
	if (!l->resolved) {
		st = resolve(c);
		if (st) {
			login_fail(c, st, st == ISCSI_LOGIN_NOT_FOUND ?
				   "target not found on this portal" :
				   st == ISCSI_LOGIN_FORBIDDEN ?
				   "initiator not in the ACL" :
				   "missing InitiatorName or TargetName");
			return;
		}
		l->resolved = true;
		/* the portal group is known: its login_timeout applies to
		 * the rest of the login (the first PDU ran under the
		 * default) */
		if (l->tpg_attrs.login_timeout)
			io_timer_arm(c->loop, &c->login_timer,
				     (uint64_t)l->tpg_attrs.login_timeout * 1000);
		iscsi_neg_init(&l->neg, &l->tpg_params, &l->sp, l->tsih == 0);
		l->neg.discovery = l->discovery;
		snprintf(l->sp.target_alias, sizeof(l->sp.target_alias), "%s",
			 l->discovery ? "" : l->tpg_params.val[ITK_TARGETALIAS]);
		if (l->tsih != 0) {
			/* Adding a connection to a session (MC/S) or
			 * connection reinstatement: we run one connection
			 * per session (MaxConnections=1). */
			login_fail(c, ISCSI_LOGIN_TOO_MANY_CONNECTIONS,
				   "multiple connections per session are not supported");
			return;
		}
	}
	l->auth_progress = false;
	if (iscsi_text_foreach(l->in.buf, l->in.len, other_key, l) < 0)
		l->fail = ISCSI_LOGIN_INITIATOR_ERROR;
	iscsi_text_reset(&l->in);
	if (l->fail) {
		login_fail(c, l->fail, l->why ? l->why :
			   l->fail == ISCSI_LOGIN_AUTH_FAILED ?
			   "authentication failed" : "negotiation error");
		return;
	}
	if (l->chap_on && auth_step(c))
		return;
	if (l->out.len > c->max_xmit_dsl) {
		/* We do not split a Login Response over several PDUs (C bit);
		 * an answer that does not fit what the initiator can receive
		 * (8192 bytes during login, §13.12) only comes from a request
		 * with thousands of keys. */
		login_fail(c, ISCSI_LOGIN_OUT_OF_RESOURCES,
			   "answer longer than MaxRecvDataSegmentLength");
		return;
	}
	if (l->stage != STAGE_SECURITY && l->auth_required &&
	    !l->authenticated) {
		/* §6.3: an initiator may start in the operational stage
		 * only when the target does not require authentication. */
		login_fail(c, ISCSI_LOGIN_AUTH_FAILED,
			   "authentication required but security negotiation skipped");
		return;
	}
	if (!transit) {
		login_respond(c, false, 0, ISCSI_LOGIN_OK, 0);
		return;
	}
	if (l->stage == STAGE_SECURITY) {
		/* Leaving security negotiation needs an agreed method; with
		 * CHAP chosen (always, when authentication is required) that
		 * is CHAP completed. While the exchange is still moving the
		 * target answers T=0 (§6.2: the target may refuse a
		 * transition); a request that neither completes nor advances
		 * it ends the login instead of looping. */
		if (l->chap_on && !l->authenticated) {
			if (l->auth_progress) {
				login_respond(c, false, 0, ISCSI_LOGIN_OK, 0);
				return;
			}
			login_fail(c, ISCSI_LOGIN_AUTH_FAILED,
				   "CHAP not completed before leaving the security stage");
			return;
		}
		if (l->auth_required && !l->authenticated) {
			login_fail(c, ISCSI_LOGIN_AUTH_FAILED,
				   "authentication required (CHAP)");
			return;
		}
	}
	if (nsg == STAGE_FFP) {
		login_finish(c);
		return;
	}
	login_respond(c, true, nsg, ISCSI_LOGIN_OK, 0);
	l->stage = nsg;
}
