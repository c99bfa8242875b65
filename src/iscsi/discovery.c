/* Text requests in full feature phase (RFC 7143 §11.10-11.11) and the
 * SendTargets answer (§13.3, Appendix C). Long answers continue over
 * several Text Responses (C bit + Target Transfer Tag). */
#include "iscsi/conn.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* May this initiator log in to tpg? (what LIO's SendTargets filter uses:
 * an explicit ACL, or demo mode with demo_mode_discovery) */
static bool tpg_visible(const struct iscsi_tpg *tpg, const char *initiator,
			const struct sockaddr_storage *peer)
{
	/* enable, not iscsi_tpg_serving: another gateway's TPG of a
	 * gateway group is offered with its portals, as its owner serves
	 * it (ceph-iscsi's gateways list every gateway's portals too) */
	if (!tpg->enable && tpg->attrs.tpg_enabled_sendtargets)
		return false;
	/* a TPG that would refuse this source address (allowed_networks,
	 * issue 21) is not offered (RFC 7143 §13.3 / Appendix C: targets
	 * the initiator may access) */
	if (!iscsi_tpg_addr_allowed((struct iscsi_tpg *)tpg, initiator, peer))
		return false;
	if (iscsi_acl_find((struct iscsi_tpg *)tpg, initiator))
		return true;
	return tpg->attrs.generate_node_acls && tpg->attrs.demo_mode_discovery;
}

static void add_portal(struct iscsi_conn *c, const struct iscsi_portal *p,
		       uint16_t tag, struct iscsi_text *out)
{
	const char *ip = p->ip;
	bool v6;
	char buf[80];

	/* A wildcard portal is reached through the address the initiator
	 * used to reach us (LIO does the same). */
	if (!strcmp(ip, "0.0.0.0") || !strcmp(ip, "::") || !strcmp(ip, "[::]") ||
	    !strcmp(ip, "::0") || !strcmp(ip, "[::0]"))
		ip = c->local_ip;
	v6 = strchr(ip, ':') != NULL;
	if (v6 && ip[0] != '[')
		snprintf(buf, sizeof(buf), "[%s]:%u,%u", ip, p->port, tag);
	else
		snprintf(buf, sizeof(buf), "%s:%u,%u", ip, p->port, tag);
	iscsi_text_add(out, "TargetAddress", buf);
}

int iscsi_sendtargets(struct iscsi_conn *c, const char *what,
		      struct iscsi_text *out)
{
	struct iscsi_session *s = c->sess;
	struct iscsi_target *t;
	bool all = !strcmp(what, "All");

	/* §13.3 / Appendix C: "All" only in discovery sessions; an empty
	 * value means "the target of this session". */
	if (all && !s->discovery)
		return -1;
	pthread_mutex_lock(&iscsi_fabric.lock);
	list_for_each_entry(t, &iscsi_fabric.targets, link) {
		struct iscsi_tpg *tpg;
		bool named = false;

		if (!all) {
			const char *want = what[0] ? what : s->target_name;

			if (strcasecmp(want, t->wwn))
				continue;
		}
		list_for_each_entry(tpg, &t->tpgs, link) {
			struct iscsi_portal *p;

			if (!tpg_visible(tpg, s->initiator_name, &c->peer_addr))
				continue;
			if (!named) {
				iscsi_text_add(out, "TargetName", t->wwn);
				named = true;
			}
			list_for_each_entry(p, &tpg->portals, link)
				add_portal(c, p, tpg->tag, out);
		}
	}
	pthread_mutex_unlock(&iscsi_fabric.lock);
	return 0;
}

static void text_send_chunk(struct iscsi_conn *c)
{
	uint8_t b[ISCSI_BHS_LEN] = { 0 };
	uint32_t left = (uint32_t)(c->text_out.len - c->text_off);
	uint32_t n = left > c->max_xmit_dsl ? c->max_xmit_dsl : left;
	bool more = n < left;

	b[0] = ISCSI_OP_TEXT_RSP;
	b[1] = more ? ISCSI_FLAG_TEXT_CONTINUE : ISCSI_FLAG_FINAL;
	put_be32(b + BHS_ITT, c->text_itt);
	if (more) {
		c->text_ttt = ++c->sess->next_ttt & 0x7fffffffu;
		if (!c->text_ttt)
			c->text_ttt = 1;
	} else {
		c->text_ttt = ISCSI_RSVD_TAG;
	}
	put_be32(b + BHS_TTT, c->text_ttt);
	/* an empty answer has no buffer at all */
	iscsi_conn_send_simple(c, b, n ? c->text_out.buf + c->text_off : NULL,
			       n, true);
	c->text_off += n;
	if (!more) {
		iscsi_text_reset(&c->text_out);
		c->text_off = 0;
	}
}

struct text_ctx {
	struct iscsi_conn *c;
	struct iscsi_neg neg;
	bool bad;
};

static int text_key(void *arg, const char *key, const char *value)
{
	struct text_ctx *x = arg;
	struct iscsi_conn *c = x->c;
	enum iscsi_neg_result r;

	if (!strcmp(key, "SendTargets")) {
		if (iscsi_sendtargets(c, value, &c->text_out))
			iscsi_text_add(&c->text_out, key, "Reject");
		return 0;
	}
	r = iscsi_neg_key(&x->neg, key, value, &c->text_out);
	if (r == ISCSI_NEG_UNKNOWN)
		iscsi_text_add(&c->text_out, key, "Reject");
	else if (r == ISCSI_NEG_FAIL)
		x->bad = true;
	return 0;
}

void iscsi_text_rx(struct iscsi_conn *c)
{
	const uint8_t *h = c->hdr;
	struct iscsi_session *s = c->sess;
	uint32_t itt = get_be32(h + BHS_ITT), ttt = get_be32(h + BHS_TTT);
	bool cont = h[1] & ISCSI_FLAG_TEXT_CONTINUE;
	struct text_ctx x = { .c = c };

	if (!(h[0] & ISCSI_OP_IMMEDIATE) &&
	    iscsi_session_check_cmdsn(s, get_be32(h + BHS_CMDSN), false) < 0)
		return;
	if (ttt != ISCSI_RSVD_TAG) {
		/* §11.10.4: the TTT of our last response continues that
		 * exchange; anything else is not ours */
		if (ttt != c->text_ttt || itt != c->text_itt) {
			iscsi_conn_reject(c, ISCSI_REJECT_INVALID_PDU_FIELD, h);
			return;
		}
		if (c->text_out.len) {
			/* the next part of a long answer */
			text_send_chunk(c);
			return;
		}
		/* else the next part of a request continued with C */
	} else {
		/* a new exchange drops any unfinished one, request or
		 * answer (§11.10.4: the reserved TTT resets the state) */
		iscsi_text_reset(&c->text_in);
		iscsi_text_reset(&c->text_out);
		c->text_off = 0;
		c->text_itt = itt;
	}
	if (c->dlen &&
	    iscsi_text_add_raw(&c->text_in, (const char *)c->scratch, c->dlen)) {
		iscsi_conn_close(c, "out of memory");
		return;
	}
	if (c->text_in.len > 65536) {
		iscsi_text_reset(&c->text_in);
		iscsi_conn_reject(c, ISCSI_REJECT_PROTOCOL, h);
		return;
	}
	if (cont) {
		/* more request text follows: answer empty (§11.10.2) */
		uint8_t b[ISCSI_BHS_LEN] = { 0 };

		b[0] = ISCSI_OP_TEXT_RSP;
		put_be32(b + BHS_ITT, itt);
		c->text_ttt = ++s->next_ttt & 0x7fffffffu;
		put_be32(b + BHS_TTT, c->text_ttt);
		iscsi_conn_send_simple(c, b, NULL, 0, true);
		return;
	}
	iscsi_neg_init(&x.neg, &s->tpg_params, &s->params, false);
	x.neg.discovery = s->discovery;
	x.neg.full_feature = true;
	if (iscsi_text_foreach(c->text_in.buf, c->text_in.len, text_key, &x) < 0 ||
	    x.bad) {
		iscsi_text_reset(&c->text_in);
		iscsi_text_reset(&c->text_out);
		iscsi_conn_reject(c, ISCSI_REJECT_PROTOCOL, h);
		return;
	}
	iscsi_text_reset(&c->text_in);
	/* MaxRecvDataSegmentLength may be re-declared in full feature
	 * phase; the new value applies to what we send from now on. */
	c->max_xmit_dsl = s->params.max_xmit_dsl;
	text_send_chunk(c);
}
