/* libFuzzer harness: login / text key parsing and negotiation.
 *
 * Input: byte 0 = flags (bit 0 leading connection, bit 1 discovery, bit 2
 * full feature phase Text exchange); then the TPG's configured parameters
 * as "key=value\0..." up to the first 0xff byte (each one goes through
 * iscsi_tpg_param_set, the same check as `set parameter`); then what the
 * initiator sent, split by iscsi_text_foreach and negotiated key by key with
 * iscsi_neg_key, then iscsi_neg_finish. Afterwards the negotiated values
 * must be within their RFC 7143 §13 ranges and the answer text must parse
 * again (what we send is valid text). */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iscsi/params.h"

struct ctx {
	struct iscsi_neg neg;
	struct iscsi_text out;
	int fail;
};

static int set_param(void *arg, const char *key, const char *value)
{
	char err[256];

	(void)iscsi_tpg_param_set(arg, key, value, err, sizeof(err));
	return 0;
}

static int neg_one(void *arg, const char *key, const char *value)
{
	struct ctx *c = arg;
	enum iscsi_neg_result r = iscsi_neg_key(&c->neg, key, value, &c->out);

	if (r == ISCSI_NEG_FAIL) {
		c->fail = 1;
		return 1; /* the login would end here */
	}
	return 0;
}

static int count_pair(void *arg, const char *key, const char *value)
{
	(void)key;
	(void)value;
	(*(size_t *)arg)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iscsi_tpg_params tpg;
	struct iscsi_sess_params sp;
	struct ctx c;
	const uint8_t *sep;
	const char *init;
	size_t tlen, ilen, n = 0;
	uint8_t flags;

	if (size < 1)
		return 0;
	flags = data[0];
	data++;
	size--;
	sep = memchr(data, 0xff, size);
	tlen = sep ? (size_t)(sep - data) : 0;
	init = (const char *)(sep ? sep + 1 : data);
	ilen = sep ? size - tlen - 1 : size;

	iscsi_tpg_params_default(&tpg);
	if (tlen)
		(void)iscsi_text_foreach((const char *)data, tlen, set_param, &tpg);
	iscsi_sess_params_default(&sp);
	memset(&c, 0, sizeof(c));
	iscsi_text_init(&c.out);
	iscsi_neg_init(&c.neg, &tpg, &sp, flags & 1);
	c.neg.discovery = flags & 2;
	c.neg.full_feature = flags & 4;
	if (iscsi_text_foreach(init, ilen, neg_one, &c) >= 0 && !c.fail &&
	    iscsi_neg_finish(&c.neg, &c.out) == 0) {
		/* RFC 7143 §13.12-13.14 ranges and §13.14's rule */
		assert(sp.max_recv_dsl >= 512 && sp.max_recv_dsl <= 16777215);
		assert(sp.max_xmit_dsl >= 512 && sp.max_xmit_dsl <= 16777215);
		assert(sp.max_burst >= 512 && sp.max_burst <= 16777215);
		assert(sp.first_burst >= 512 && sp.first_burst <= 16777215);
		assert(sp.first_burst <= sp.max_burst);
		assert(sp.max_connections >= 1 && sp.max_connections <= 65535);
		assert(sp.max_outstanding_r2t >= 1 &&
		       sp.max_outstanding_r2t <= 65535);
		assert(sp.time2wait <= 3600 && sp.time2retain <= 3600);
		assert(sp.erl <= 2);
	}
	/* our answer is valid text */
	assert(iscsi_text_foreach(c.out.buf, c.out.len, count_pair, &n) == 0);
	iscsi_text_free(&c.out);
	return 0;
}
