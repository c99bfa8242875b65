/* Unit tests: iSCSI text format and key negotiation (src/iscsi/params.c,
 * src/iscsi/text.c) against RFC 7143 §6 and §13. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "iscsi/params.h"

struct ctx {
	struct iscsi_tpg_params tpg;
	struct iscsi_sess_params sp;
	struct iscsi_neg n;
	struct iscsi_text out;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	iscsi_tpg_params_default(&c->tpg);
	iscsi_sess_params_default(&c->sp);
	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	iscsi_text_init(&c->out);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	iscsi_text_free(&c->out);
	free(c);
	return 0;
}

/* Number of pairs in the answer text. */
static int npairs(const struct iscsi_text *t)
{
	size_t off;
	int k = 0;

	for (off = 0; off < t->len; off += strlen(t->buf + off) + 1)
		k++;
	return k;
}

/* Value answered for key, NULL when absent; asserts it appears once. */
static const char *answer_of(const struct iscsi_text *t, const char *key)
{
	const char *found = NULL;
	size_t off, kl = strlen(key);

	for (off = 0; off < t->len; off += strlen(t->buf + off) + 1) {
		const char *p = t->buf + off;

		if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
			assert_null(found);
			found = p + kl + 1;
		}
	}
	return found;
}

static enum iscsi_neg_result neg(struct ctx *c, const char *k, const char *v)
{
	return iscsi_neg_key(&c->n, k, v, &c->out);
}

/* Negotiate one key, expect OK and this answer. */
static void expect(struct ctx *c, const char *k, const char *v,
		   const char *ans)
{
	assert_int_equal(neg(c, k, v), ISCSI_NEG_OK);
	assert_non_null(answer_of(&c->out, k));
	assert_string_equal(answer_of(&c->out, k), ans);
}

static void tpg_set(struct ctx *c, const char *k, const char *v)
{
	char err[256];

	assert_int_equal(iscsi_tpg_param_set(&c->tpg, k, v, err, sizeof(err)), 0);
}

/* ---- defaults and names ------------------------------------------------- */

static void test_tpg_defaults(void **state)
{
	struct iscsi_tpg_params p;
	static const struct { int k; const char *v; } want[] = {
		{ ITK_AUTHMETHOD, "CHAP,None" },
		{ ITK_HEADERDIGEST, "CRC32C,None" },
		{ ITK_DATADIGEST, "CRC32C,None" },
		{ ITK_MAXCONNECTIONS, "1" },
		{ ITK_TARGETALIAS, "LIO Target" },
		{ ITK_INITIALR2T, "Yes" },
		{ ITK_IMMEDIATEDATA, "Yes" },
		{ ITK_MAXRECVDATASEGMENTLENGTH, "8192" },
		{ ITK_MAXXMITDATASEGMENTLENGTH, "262144" },
		{ ITK_MAXBURSTLENGTH, "262144" },
		{ ITK_FIRSTBURSTLENGTH, "65536" },
		{ ITK_DEFAULTTIME2WAIT, "2" },
		{ ITK_DEFAULTTIME2RETAIN, "20" },
		{ ITK_MAXOUTSTANDINGR2T, "1" },
		{ ITK_DATAPDUINORDER, "Yes" },
		{ ITK_DATASEQUENCEINORDER, "Yes" },
		{ ITK_ERRORRECOVERYLEVEL, "0" },
		{ ITK_IFMARKER, "No" },
		{ ITK_OFMARKER, "No" },
		{ ITK_IFMARKINT, "Reject" },
		{ ITK_OFMARKINT, "Reject" },
		{ ITK_RDMAEXTENSIONS, "No" },
		{ ITK_INITIATORRECVDATASEGMENTLENGTH, "262144" },
		{ ITK_TARGETRECVDATASEGMENTLENGTH, "8192" },
	};
	size_t i;

	(void)state;
	assert_int_equal(sizeof(want) / sizeof(want[0]), ITK__COUNT);
	iscsi_tpg_params_default(&p);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_string_equal(p.val[want[i].k], want[i].v);

	for (i = 0; i < ITK__COUNT; i++) {
		const char *name = iscsi_tpg_key_name((enum iscsi_tpg_key)i);

		assert_non_null(name);
		assert_int_equal(iscsi_tpg_key_find(name), (int)i);
	}
	assert_string_equal(iscsi_tpg_key_name(ITK_MAXXMITDATASEGMENTLENGTH),
			    "MaxXmitDataSegmentLength");
	assert_null(iscsi_tpg_key_name(ITK__COUNT));
	assert_null(iscsi_tpg_key_name((enum iscsi_tpg_key)-1));
	/* §6.1: key names are case sensitive */
	assert_int_equal(iscsi_tpg_key_find("headerdigest"), -1);
	assert_int_equal(iscsi_tpg_key_find("TaskReporting"), -1);
	assert_int_equal(iscsi_tpg_key_find(NULL), -1);
}

static void test_sess_defaults(void **state)
{
	struct iscsi_sess_params sp;

	(void)state;
	memset(&sp, 0xa5, sizeof(sp));
	iscsi_sess_params_default(&sp);
	assert_false(sp.header_digest);
	assert_false(sp.data_digest);
	assert_int_equal(sp.max_connections, 1);
	assert_true(sp.initial_r2t);
	assert_true(sp.immediate_data);
	assert_int_equal(sp.max_recv_dsl, 8192);
	assert_int_equal(sp.max_xmit_dsl, 8192);
	assert_int_equal(sp.max_burst, 262144);
	assert_int_equal(sp.first_burst, 65536);
	assert_int_equal(sp.time2wait, 2);
	assert_int_equal(sp.time2retain, 20);
	assert_int_equal(sp.max_outstanding_r2t, 1);
	assert_true(sp.data_pdu_in_order);
	assert_true(sp.data_seq_in_order);
	assert_int_equal(sp.erl, 0);
	assert_string_equal(sp.target_alias, "");
	assert_string_equal(sp.initiator_alias, "");
}

/* ---- text format -------------------------------------------------------- */

struct seen_pairs {
	int n;
	char k[8][64];
	char v[8][64];
	int stop_at;   /* return 7 on this call (1-based), 0 never */
};

static int collect(void *arg, const char *key, const char *value)
{
	struct seen_pairs *s = arg;

	if (s->n < 8) {
		snprintf(s->k[s->n], sizeof(s->k[0]), "%s", key);
		snprintf(s->v[s->n], sizeof(s->v[0]), "%s", value);
	}
	s->n++;
	return s->stop_at && s->n == s->stop_at ? 7 : 0;
}

static void test_text_build(void **state)
{
	struct iscsi_text t;
	char big[8194];

	(void)state;
	iscsi_text_init(&t);
	assert_int_equal(iscsi_text_add(&t, "A", "1"), 0);
	assert_int_equal(iscsi_text_addf(&t, "Bee", "%d-%s", 42, "x"), 0);
	assert_int_equal(iscsi_text_add(&t, "SendTargets", ""), 0);
	assert_int_equal(t.len, sizeof("A=1\0Bee=42-x\0SendTargets=") );
	assert_memory_equal(t.buf, "A=1\0Bee=42-x\0SendTargets=",
			    sizeof("A=1\0Bee=42-x\0SendTargets="));

	/* bad keys are refused and change nothing */
	assert_int_equal(iscsi_text_add(&t, "", "1"), -EINVAL);
	assert_int_equal(iscsi_text_add(&t, "A=B", "1"), -EINVAL);
	assert_int_equal(iscsi_text_add(&t, NULL, "1"), -EINVAL);
	assert_int_equal(iscsi_text_add(&t, "A", NULL), -EINVAL);
	memset(big, 'k', 64);
	big[64] = '\0';
	assert_int_equal(iscsi_text_add(&t, big, "1"), -EINVAL);
	memset(big, 'v', 8193);
	big[8193] = '\0';
	assert_int_equal(iscsi_text_add(&t, "A", big), -EINVAL);
	assert_int_equal(iscsi_text_addf(&t, "A", "%s", big), -EINVAL);
	assert_int_equal(t.len, sizeof("A=1\0Bee=42-x\0SendTargets="));

	/* growth past the first allocation */
	big[8192] = '\0';
	assert_int_equal(iscsi_text_add(&t, "Big", big), 0);
	assert_int_equal(t.len, sizeof("A=1\0Bee=42-x\0SendTargets=") + 4 + 8192 + 1);

	iscsi_text_reset(&t);
	assert_int_equal(t.len, 0);
	assert_int_equal(iscsi_text_add(&t, "K", "v"), 0);
	assert_memory_equal(t.buf, "K=v", 4);

	/* raw appends: a pair split over two PDUs (C bit) joins up */
	iscsi_text_reset(&t);
	assert_int_equal(iscsi_text_add_raw(&t, "MaxBurstLe", 10), 0);
	assert_int_equal(iscsi_text_add_raw(&t, NULL, 0), 0);
	assert_int_equal(iscsi_text_add_raw(&t, NULL, 1), -EINVAL);
	assert_int_equal(iscsi_text_add_raw(&t, "ngth=512\0X=1", 12), 0);
	assert_int_equal(t.len, 22);
	assert_memory_equal(t.buf, "MaxBurstLength=512\0X=1", 22);
	assert_int_equal(iscsi_text_add_raw(&t, "x", (size_t)-1 / 2), -E2BIG);
	assert_int_equal(t.len, 22);
	iscsi_text_free(&t);
	assert_null(t.buf);
	assert_int_equal(t.len, 0);
	iscsi_text_free(&t); /* twice is harmless */
}

static void test_text_parse(void **state)
{
	struct seen_pairs s;
	static const char ok[] = "InitiatorName=iqn.x\0SessionType=Normal\0SendTargets=";
	static const char nl[] = "A=1\0B=2"; /* final pair without NUL */
	char buf[9000];

	(void)state;

	memset(&s, 0, sizeof(s));
	assert_int_equal(iscsi_text_foreach(ok, sizeof(ok), collect, &s), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.k[0], "InitiatorName");
	assert_string_equal(s.v[0], "iqn.x");
	assert_string_equal(s.k[2], "SendTargets");
	assert_string_equal(s.v[2], "");

	/* no trailing NUL on the last pair */
	memset(&s, 0, sizeof(s));
	assert_int_equal(iscsi_text_foreach(nl, sizeof(nl) - 1, collect, &s), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.k[1], "B");
	assert_string_equal(s.v[1], "2");
	/* truncated in the middle of the value */
	memset(&s, 0, sizeof(s));
	assert_int_equal(iscsi_text_foreach(nl, 6, collect, &s), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.v[1], "");

	/* empty text */
	memset(&s, 0, sizeof(s));
	assert_int_equal(iscsi_text_foreach("", 0, collect, &s), 0);
	assert_int_equal(iscsi_text_foreach(NULL, 0, collect, &s), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(iscsi_text_foreach(NULL, 4, collect, &s), -EINVAL);

	/* zero padding / empty segments are skipped */
	memset(&s, 0, sizeof(s));
	assert_int_equal(iscsi_text_foreach("\0A=1\0\0B=2\0\0\0", 12, collect, &s), 0);
	assert_int_equal(s.n, 2);

	/* a pair without '=' fails the whole text before any call */
	memset(&s, 0, sizeof(s));
	assert_int_equal(iscsi_text_foreach("A=1\0B\0C=3", 9, collect, &s), -EINVAL);
	assert_int_equal(s.n, 0);
	assert_int_equal(iscsi_text_foreach("A=1\0B", 5, collect, &s), -EINVAL);
	assert_int_equal(s.n, 0);
	/* empty key */
	assert_int_equal(iscsi_text_foreach("A=1\0=2", 6, collect, &s), -EINVAL);
	assert_int_equal(s.n, 0);
	/* '=' in the value is part of the value */
	assert_int_equal(iscsi_text_foreach("A=b=c", 5, collect, &s), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.v[0], "b=c");

	/* key: 63 bytes fine, 64 refused */
	memset(buf, 'K', 64);
	buf[63] = '=';
	buf[64] = 'v';
	memset(&s, 0, sizeof(s));
	assert_int_equal(iscsi_text_foreach(buf, 65, collect, &s), 0);
	assert_int_equal(s.n, 1);
	memset(buf, 'K', 65);
	buf[64] = '=';
	buf[65] = 'v';
	memset(&s, 0, sizeof(s));
	assert_int_equal(iscsi_text_foreach(buf, 66, collect, &s), -EINVAL);
	assert_int_equal(s.n, 0);

	/* value: 8192 bytes fine, 8193 refused */
	buf[0] = 'V';
	buf[1] = '=';
	memset(buf + 2, 'x', 8193);
	memset(&s, 0, sizeof(s));
	assert_int_equal(iscsi_text_foreach(buf, 2 + 8192, collect, &s), 0);
	assert_int_equal(s.n, 1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(iscsi_text_foreach(buf, 2 + 8193, collect, &s), -EINVAL);
	assert_int_equal(s.n, 0);

	/* the callback's non-zero result stops the walk */
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	assert_int_equal(iscsi_text_foreach(ok, sizeof(ok), collect, &s), 7);
	assert_int_equal(s.n, 2);
}

/* ---- result functions (§6.2.1, §6.2.2) ---------------------------------- */

static void test_min(void **state)
{
	struct ctx *c = *state;

	expect(c, "MaxConnections", "4", "1");
	assert_int_equal(c->sp.max_connections, 1);
	expect(c, "MaxBurstLength", "16384", "16384");
	assert_int_equal(c->sp.max_burst, 16384);
	expect(c, "MaxOutstandingR2T", "8", "1");
	expect(c, "DefaultTime2Retain", "0", "0");
	assert_int_equal(c->sp.time2retain, 0);
	expect(c, "ErrorRecoveryLevel", "2", "0");
	assert_int_equal(c->sp.erl, 0);

	/* with a more generous TPG the initiator's smaller value wins */
	iscsi_text_reset(&c->out);
	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	tpg_set(c, "MaxConnections", "8");
	/* a TPG may not offer more than level 0: we implement only that */
	{
		char err[256];

		assert_int_equal(iscsi_tpg_param_set(&c->tpg, "ErrorRecoveryLevel",
						     "2", err, sizeof(err)),
				 -EINVAL);
		assert_non_null(strstr(err, "not supported"));
	}
	tpg_set(c, "MaxOutstandingR2T", "16");
	expect(c, "MaxConnections", "4", "4");
	expect(c, "ErrorRecoveryLevel", "1", "0");
	expect(c, "MaxOutstandingR2T", "65535", "16");
	expect(c, "MaxBurstLength", "1048576", "262144");
	assert_int_equal(c->sp.max_connections, 4);
	assert_int_equal(c->sp.erl, 0);
	assert_int_equal(c->sp.max_outstanding_r2t, 16);
	assert_int_equal(c->sp.max_burst, 262144);
}

static void test_max(void **state)
{
	struct ctx *c = *state;

	expect(c, "DefaultTime2Wait", "0", "2");
	assert_int_equal(c->sp.time2wait, 2);
	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	iscsi_text_reset(&c->out);
	expect(c, "DefaultTime2Wait", "3600", "3600");
	assert_int_equal(c->sp.time2wait, 3600);
}

static void test_and(void **state)
{
	struct ctx *c = *state;

	expect(c, "ImmediateData", "No", "No");
	assert_false(c->sp.immediate_data);

	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	iscsi_text_reset(&c->out);
	expect(c, "ImmediateData", "Yes", "Yes");
	assert_true(c->sp.immediate_data);

	tpg_set(c, "ImmediateData", "No");
	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	iscsi_text_reset(&c->out);
	expect(c, "ImmediateData", "Yes", "No");
	assert_false(c->sp.immediate_data);
}

static void test_or(void **state)
{
	struct ctx *c = *state;

	expect(c, "InitialR2T", "No", "Yes");
	expect(c, "DataPDUInOrder", "No", "Yes");
	expect(c, "DataSequenceInOrder", "No", "Yes");
	assert_true(c->sp.initial_r2t);
	assert_true(c->sp.data_pdu_in_order);
	assert_true(c->sp.data_seq_in_order);

	tpg_set(c, "InitialR2T", "No");
	tpg_set(c, "DataPDUInOrder", "No");
	tpg_set(c, "DataSequenceInOrder", "No");
	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	iscsi_text_reset(&c->out);
	expect(c, "InitialR2T", "No", "No");
	expect(c, "DataPDUInOrder", "Yes", "Yes");
	expect(c, "DataSequenceInOrder", "No", "No");
	assert_false(c->sp.initial_r2t);
	assert_true(c->sp.data_pdu_in_order);
	assert_false(c->sp.data_seq_in_order);
}

static void test_digest_list(void **state)
{
	struct ctx *c = *state;

	expect(c, "HeaderDigest", "CRC32C,None", "CRC32C");
	expect(c, "DataDigest", "None,CRC32C", "None");
	assert_true(c->sp.header_digest);
	assert_false(c->sp.data_digest);

	/* unknown values in the list are skipped (§6.2.1) */
	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	iscsi_text_reset(&c->out);
	expect(c, "DataDigest", "Y-com.example.fast,,crc32c,CRC32C", "CRC32C");
	assert_true(c->sp.data_digest);

	/* the TPG allows only None: a CRC32C-only initiator gets Reject and
	 * the value does not change */
	tpg_set(c, "HeaderDigest", "None");
	tpg_set(c, "DataDigest", "None,CRC32C");
	iscsi_sess_params_default(&c->sp);
	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	iscsi_text_reset(&c->out);
	expect(c, "HeaderDigest", "CRC32C", "Reject");
	assert_false(c->sp.header_digest);
	/* the initiator's order wins among values both allow */
	expect(c, "DataDigest", "CRC32C,None", "CRC32C");
	assert_true(c->sp.data_digest);

	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	iscsi_text_reset(&c->out);
	expect(c, "HeaderDigest", "", "Reject");
}

/* ---- Reject, NotUnderstood, duplicates ---------------------------------- */

static void test_reject_bad_values(void **state)
{
	struct ctx *c = *state;
	static const char *const bad_nums[] = {
		"abc", "511", "16777216", "99999999999999999999999999",
		"0xFFFFFFFFFFFFFFFFFFFFFFFF", "4294967296", "4294967807",
		"0x", "0512", "-1", "+512", " 512", "512 ", "1e5", "0x1g",
		"", "0b1000000000", "Yes", "None",
	};
	char longv[300];
	size_t i;

	for (i = 0; i < sizeof(bad_nums) / sizeof(bad_nums[0]); i++) {
		iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
		iscsi_text_reset(&c->out);
		expect(c, "MaxBurstLength", bad_nums[i], "Reject");
		assert_int_equal(c->sp.max_burst, 262144);
	}

	/* hex-constant and decimal-constant both work (§6.1) */
	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	iscsi_text_reset(&c->out);
	expect(c, "MaxBurstLength", "0x10000", "65536");
	expect(c, "FirstBurstLength", "0X200", "512");
	expect(c, "DefaultTime2Retain", "0", "0");
	expect(c, "DefaultTime2Wait", "0x0000000000000000000000000e10", "3600");

	iscsi_sess_params_default(&c->sp);
	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	iscsi_text_reset(&c->out);
	expect(c, "InitialR2T", "yes", "Reject");
	expect(c, "ImmediateData", "YES", "Reject");
	expect(c, "DataPDUInOrder", "", "Reject");
	expect(c, "ErrorRecoveryLevel", "3", "Reject");
	expect(c, "MaxConnections", "0", "Reject");
	expect(c, "MaxOutstandingR2T", "65536", "Reject");
	expect(c, "DefaultTime2Wait", "3601", "Reject");
	assert_true(c->sp.initial_r2t);
	assert_true(c->sp.immediate_data);
	assert_int_equal(c->sp.erl, 0);
	assert_int_equal(c->sp.max_connections, 1);
	assert_int_equal(c->sp.time2wait, 2);

	/* a simple-value is at most 255 bytes (§6.1) */
	memset(longv, '0', sizeof(longv) - 1);
	longv[0] = '0';
	longv[1] = 'x';
	longv[sizeof(longv) - 1] = '\0';
	expect(c, "DefaultTime2Retain", longv, "Reject");
	memset(longv, 'f', sizeof(longv) - 1);
	longv[0] = '0';
	longv[1] = 'x';
	expect(c, "MaxBurstLength", longv, "Reject");
	memcpy(longv, "None,", 5);
	memset(longv + 5, 'N', sizeof(longv) - 6);
	expect(c, "HeaderDigest", longv, "Reject");
	assert_false(c->sp.header_digest);
}

static void test_reserved_values(void **state)
{
	struct ctx *c = *state;

	/* §6.2: reserved constants as proposed values are a protocol error */
	assert_int_equal(neg(c, "InitialR2T", "Irrelevant"), ISCSI_NEG_FAIL);
	assert_int_equal(neg(c, "MaxBurstLength", "Reject"), ISCSI_NEG_FAIL);
	assert_int_equal(neg(c, "HeaderDigest", "NotUnderstood"), ISCSI_NEG_FAIL);
	/* None is a proper digest value */
	expect(c, "DataDigest", "None", "None");
}

static void test_not_understood(void **state)
{
	struct ctx *c = *state;

	expect(c, "X-com.example.foo", "bar", "NotUnderstood");
	expect(c, "X#ExampleKey", "1", "NotUnderstood");
	expect(c, "FooBar", "1", "NotUnderstood");
	/* LIO's MaxXmitDataSegmentLength is configuration, not a wire key */
	expect(c, "MaxXmitDataSegmentLength", "65536", "NotUnderstood");
	/* iSER keys (RFC 7147) mean nothing over TCP */
	expect(c, "RDMAExtensions", "Yes", "NotUnderstood");
	expect(c, "TargetRecvDataSegmentLength", "8192", "NotUnderstood");
	/* key names are case sensitive (§6.1) */
	expect(c, "maxburstlength", "512", "NotUnderstood");
	assert_int_equal(c->sp.max_burst, 262144);
	/* an unknown key may come again: it is not being negotiated */
	assert_int_equal(neg(c, "FooBar", "2"), ISCSI_NEG_OK);

	/* identity / authentication keys go to the login code, no answer */
	iscsi_text_reset(&c->out);
	assert_int_equal(neg(c, "InitiatorName", "iqn.1994-05.com.redhat:x"),
			 ISCSI_NEG_UNKNOWN);
	assert_int_equal(neg(c, "TargetName", "iqn.2003-01.org.x"), ISCSI_NEG_UNKNOWN);
	assert_int_equal(neg(c, "SessionType", "Normal"), ISCSI_NEG_UNKNOWN);
	assert_int_equal(neg(c, "InitiatorAlias", "host"), ISCSI_NEG_UNKNOWN);
	assert_int_equal(neg(c, "TargetAlias", "x"), ISCSI_NEG_UNKNOWN);
	assert_int_equal(neg(c, "TargetAddress", "1.2.3.4"), ISCSI_NEG_UNKNOWN);
	assert_int_equal(neg(c, "TargetPortalGroupTag", "1"), ISCSI_NEG_UNKNOWN);
	assert_int_equal(neg(c, "AuthMethod", "CHAP,None"), ISCSI_NEG_UNKNOWN);
	assert_int_equal(neg(c, "CHAP_A", "5"), ISCSI_NEG_UNKNOWN);
	assert_int_equal(neg(c, "CHAP_N", "user"), ISCSI_NEG_UNKNOWN);
	assert_int_equal(neg(c, "SendTargets", "All"), ISCSI_NEG_UNKNOWN);
	assert_int_equal(c->out.len, 0);
}

static void test_duplicates(void **state)
{
	struct ctx *c = *state;

	expect(c, "MaxBurstLength", "65536", "65536");
	assert_int_equal(neg(c, "MaxBurstLength", "65536"), ISCSI_NEG_FAIL);
	/* also after a Reject, and for a key answered Irrelevant */
	expect(c, "HeaderDigest", "MD5", "Reject");
	assert_int_equal(neg(c, "HeaderDigest", "None"), ISCSI_NEG_FAIL);
	expect(c, "IFMarkInt", "2048~65535", "Reject");
	assert_int_equal(neg(c, "IFMarkInt", "2048~65535"), ISCSI_NEG_FAIL);
	expect(c, "MaxRecvDataSegmentLength", "65536", "8192");
	assert_int_equal(neg(c, "MaxRecvDataSegmentLength", "65536"), ISCSI_NEG_FAIL);

	c->n.discovery = true;
	expect(c, "MaxConnections", "2", "Irrelevant");
	assert_int_equal(neg(c, "MaxConnections", "2"), ISCSI_NEG_FAIL);

	/* a new negotiation (iscsi_neg_init) starts with nothing seen */
	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	iscsi_text_reset(&c->out);
	expect(c, "MaxBurstLength", "32768", "32768");
}

/* ---- MaxRecvDataSegmentLength (§13.12) ---------------------------------- */

static void test_mrdsl_declare(void **state)
{
	struct ctx *c = *state;

	/* initiator declares: we record its value as our send limit and
	 * declare our own receive limit in the answer */
	expect(c, "MaxRecvDataSegmentLength", "65536", "8192");
	assert_int_equal(c->sp.max_xmit_dsl, 65536);
	assert_int_equal(c->sp.max_recv_dsl, 8192);
	assert_true(c->n.declared_mrdsl);
	/* finish does not declare again */
	assert_int_equal(iscsi_neg_finish(&c->n, &c->out), 0);
	assert_int_equal(npairs(&c->out), 1);

	/* capped by MaxXmitDataSegmentLength; TPG's MRDSL declared */
	tpg_set(c, "MaxXmitDataSegmentLength", "32768");
	tpg_set(c, "MaxRecvDataSegmentLength", "262144");
	iscsi_sess_params_default(&c->sp);
	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	iscsi_text_reset(&c->out);
	expect(c, "MaxRecvDataSegmentLength", "0x40000", "262144");
	assert_int_equal(c->sp.max_xmit_dsl, 32768);
	assert_int_equal(c->sp.max_recv_dsl, 262144);

	/* the initiator's smaller value stands */
	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	iscsi_text_reset(&c->out);
	expect(c, "MaxRecvDataSegmentLength", "512", "262144");
	assert_int_equal(c->sp.max_xmit_dsl, 512);
}

static void test_mrdsl_finish(void **state)
{
	struct ctx *c = *state;

	/* initiator never declared: finish declares ours */
	expect(c, "MaxBurstLength", "65536", "65536");
	assert_int_equal(iscsi_neg_finish(&c->n, &c->out), 0);
	assert_string_equal(answer_of(&c->out, "MaxRecvDataSegmentLength"), "8192");
	assert_int_equal(c->sp.max_recv_dsl, 8192);
	assert_int_equal(c->sp.max_xmit_dsl, 8192); /* RFC default */
	assert_true(c->n.declared_mrdsl);

	/* a TPG that sends less than the 8192 default caps it */
	tpg_set(c, "MaxXmitDataSegmentLength", "4096");
	tpg_set(c, "MaxRecvDataSegmentLength", "16384");
	iscsi_sess_params_default(&c->sp);
	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	iscsi_text_reset(&c->out);
	assert_int_equal(iscsi_neg_finish(&c->n, &c->out), 0);
	assert_int_equal(c->sp.max_xmit_dsl, 4096);
	assert_int_equal(c->sp.max_recv_dsl, 16384);
	assert_string_equal(answer_of(&c->out, "MaxRecvDataSegmentLength"), "16384");
}

static void test_mrdsl_invalid(void **state)
{
	struct ctx *c = *state;
	static const char *const bad[] = {
		"100", "abc", "16777216", "", "0x", "08192", "Yes",
	};
	size_t i;

	/* declarative: a bad value cannot be answered Reject */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
		assert_int_equal(neg(c, "MaxRecvDataSegmentLength", bad[i]),
				 ISCSI_NEG_FAIL);
		assert_int_equal(c->sp.max_xmit_dsl, 8192);
	}
	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	iscsi_text_reset(&c->out);
	expect(c, "MaxRecvDataSegmentLength", "16777215", "8192");
	assert_int_equal(c->sp.max_xmit_dsl, 262144);
}

/* ---- FirstBurstLength <= MaxBurstLength (§13.14) ------------------------- */

static void test_first_burst_clamp(void **state)
{
	struct ctx *c = *state;

	/* MaxBurstLength first: the answer already respects it */
	expect(c, "MaxBurstLength", "16384", "16384");
	expect(c, "FirstBurstLength", "65536", "16384");
	assert_int_equal(c->sp.first_burst, 16384);

	/* FirstBurstLength first: finish clamps */
	iscsi_sess_params_default(&c->sp);
	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	iscsi_text_reset(&c->out);
	expect(c, "FirstBurstLength", "65536", "65536");
	expect(c, "MaxBurstLength", "16384", "16384");
	assert_int_equal(c->sp.first_burst, 65536);
	assert_int_equal(iscsi_neg_finish(&c->n, &c->out), 0);
	assert_int_equal(c->sp.first_burst, 16384);
	assert_int_equal(c->sp.max_burst, 16384);

	/* a TPG configured with FirstBurstLength > MaxBurstLength never
	 * offers more than its MaxBurstLength */
	tpg_set(c, "MaxBurstLength", "65536");
	tpg_set(c, "FirstBurstLength", "262144");
	iscsi_sess_params_default(&c->sp);
	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	iscsi_text_reset(&c->out);
	expect(c, "FirstBurstLength", "262144", "65536");
	expect(c, "MaxBurstLength", "262144", "65536");
	assert_int_equal(iscsi_neg_finish(&c->n, &c->out), 0);
	assert_int_equal(c->sp.first_burst, 65536);
	assert_int_equal(c->sp.max_burst, 65536);

	/* defaults alone are consistent */
	iscsi_sess_params_default(&c->sp);
	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	assert_int_equal(iscsi_neg_finish(&c->n, &c->out), 0);
	assert_int_equal(c->sp.first_burst, 65536);
}

/* ---- where keys may be used (§13 Use / Irrelevant when) ------------------ */

static void test_discovery_irrelevant(void **state)
{
	struct ctx *c = *state;
	static const char *const irr[][2] = {
		{ "MaxConnections", "4" },
		{ "InitialR2T", "No" },
		{ "ImmediateData", "No" },
		{ "MaxBurstLength", "512" },
		{ "FirstBurstLength", "512" },
		{ "MaxOutstandingR2T", "4" },
		{ "DataPDUInOrder", "No" },
		{ "DataSequenceInOrder", "No" },
		{ "TaskReporting", "RFC3720" },
	};
	size_t i;

	c->n.discovery = true;
	for (i = 0; i < sizeof(irr) / sizeof(irr[0]); i++)
		expect(c, irr[i][0], irr[i][1], "Irrelevant");
	assert_int_equal(c->sp.max_burst, 262144);
	assert_int_equal(c->sp.first_burst, 65536);
	assert_true(c->sp.immediate_data);
	assert_true(c->sp.initial_r2t);

	/* relevant in discovery sessions too */
	expect(c, "HeaderDigest", "CRC32C", "CRC32C");
	expect(c, "DefaultTime2Wait", "5", "5");
	expect(c, "DefaultTime2Retain", "5", "5");
	expect(c, "ErrorRecoveryLevel", "0", "0");
	expect(c, "MaxRecvDataSegmentLength", "32768", "8192");
	assert_int_equal(c->sp.max_xmit_dsl, 32768);
}

static void test_non_leading(void **state)
{
	struct ctx *c = *state;

	iscsi_neg_init(&c->n, &c->tpg, &c->sp, false);
	expect(c, "MaxBurstLength", "512", "Irrelevant");
	expect(c, "ErrorRecoveryLevel", "0", "Irrelevant");
	expect(c, "DefaultTime2Wait", "9", "Irrelevant");
	assert_int_equal(c->sp.max_burst, 262144);
	assert_int_equal(c->sp.time2wait, 2);
	/* connection-scope keys are negotiated per connection */
	expect(c, "HeaderDigest", "CRC32C,None", "CRC32C");
	expect(c, "DataDigest", "None", "None");
	expect(c, "MaxRecvDataSegmentLength", "4096", "8192");
	assert_int_equal(c->sp.max_xmit_dsl, 4096);
}

static void test_full_feature(void **state)
{
	struct ctx *c = *state;

	c->n.full_feature = true;
	expect(c, "HeaderDigest", "CRC32C", "Reject");
	expect(c, "MaxBurstLength", "512", "Reject");
	expect(c, "InitialR2T", "No", "Reject");
	assert_false(c->sp.header_digest);
	assert_int_equal(c->sp.max_burst, 262144);
	/* MaxRecvDataSegmentLength may change in FFP (Use: ALL) */
	expect(c, "MaxRecvDataSegmentLength", "16384", "8192");
	assert_int_equal(c->sp.max_xmit_dsl, 16384);
	expect(c, "X-com.example.k", "v", "NotUnderstood");

	/* a Text exchange that did not mention it declares nothing */
	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	c->n.full_feature = true;
	iscsi_text_reset(&c->out);
	assert_int_equal(iscsi_neg_finish(&c->n, &c->out), 0);
	assert_int_equal(c->out.len, 0);
}

static void test_obsolete_and_misc_keys(void **state)
{
	struct ctx *c = *state;

	/* §13.25 */
	expect(c, "IFMarker", "Yes", "No");
	expect(c, "OFMarker", "No", "No");
	expect(c, "IFMarkInt", "2048~65535", "Reject");
	expect(c, "OFMarkInt", "1~65535", "Reject");
	/* even a TPG configured Yes never turns markers on */
	tpg_set(c, "OFMarker", "Yes");
	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	iscsi_text_reset(&c->out);
	expect(c, "OFMarker", "Yes", "No");
	expect(c, "IFMarker", "maybe", "Reject");

	/* §13.23 */
	expect(c, "TaskReporting", "FastAbort,RFC3720", "RFC3720");
	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	iscsi_text_reset(&c->out);
	expect(c, "TaskReporting", "FastAbort,ResponseFence", "Reject");

	/* §13.24 */
	expect(c, "iSCSIProtocolLevel", "2", "1");
	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	iscsi_text_reset(&c->out);
	expect(c, "iSCSIProtocolLevel", "0", "0");
	iscsi_neg_init(&c->n, &c->tpg, &c->sp, true);
	iscsi_text_reset(&c->out);
	expect(c, "iSCSIProtocolLevel", "32", "Reject");
}

/* A whole operational stage, as the login code will run it. */
struct run {
	struct ctx *c;
	int fails;
	int unknown;
};

static int run_key(void *arg, const char *key, const char *value)
{
	struct run *r = arg;
	enum iscsi_neg_result res = iscsi_neg_key(&r->c->n, key, value, &r->c->out);

	if (res == ISCSI_NEG_FAIL)
		return -EPROTO;
	if (res == ISCSI_NEG_UNKNOWN)
		r->unknown++;
	return 0;
}

static void test_login_round(void **state)
{
	struct ctx *c = *state;
	struct run r = { c, 0, 0 };
	static const char req[] =
		"InitiatorName=iqn.1994-05.com.redhat:init\0"
		"HeaderDigest=None\0DataDigest=None\0"
		"MaxConnections=1\0InitialR2T=Yes\0ImmediateData=Yes\0"
		"MaxRecvDataSegmentLength=262144\0MaxBurstLength=16776192\0"
		"FirstBurstLength=262144\0DefaultTime2Wait=2\0"
		"DefaultTime2Retain=0\0MaxOutstandingR2T=1\0"
		"DataPDUInOrder=Yes\0DataSequenceInOrder=Yes\0"
		"ErrorRecoveryLevel=0\0IFMarker=No\0OFMarker=No";
	static const char want[] =
		"HeaderDigest=None\0DataDigest=None\0"
		"MaxConnections=1\0InitialR2T=Yes\0ImmediateData=Yes\0"
		"MaxRecvDataSegmentLength=8192\0MaxBurstLength=262144\0"
		"FirstBurstLength=65536\0DefaultTime2Wait=2\0"
		"DefaultTime2Retain=0\0MaxOutstandingR2T=1\0"
		"DataPDUInOrder=Yes\0DataSequenceInOrder=Yes\0"
		"ErrorRecoveryLevel=0\0IFMarker=No\0OFMarker=No";

	assert_int_equal(iscsi_text_foreach(req, sizeof(req) - 1, run_key, &r), 0);
	assert_int_equal(r.unknown, 1);
	assert_int_equal(iscsi_neg_finish(&c->n, &c->out), 0);
	assert_int_equal(c->out.len, sizeof(want));
	assert_memory_equal(c->out.buf, want, sizeof(want));
	assert_int_equal(c->sp.max_xmit_dsl, 262144);
	assert_int_equal(c->sp.max_recv_dsl, 8192);
	assert_int_equal(c->sp.max_burst, 262144);
	assert_int_equal(c->sp.first_burst, 65536);
	assert_int_equal(c->sp.time2retain, 0);

	/* the same key again in a later login PDU fails the login */
	assert_int_equal(iscsi_text_foreach("MaxBurstLength=512", 18, run_key, &r),
			 -EPROTO);
}

/* ---- TPG parameter validation ------------------------------------------- */

static void test_tpg_param_set(void **state)
{
	struct iscsi_tpg_params p, before;
	char err[256];

	(void)state;
	iscsi_tpg_params_default(&p);

	assert_int_equal(iscsi_tpg_param_set(&p, "MaxBurstLength", "1048576", err,
					     sizeof(err)), 0);
	assert_string_equal(p.val[ITK_MAXBURSTLENGTH], "1048576");
	/* numbers are stored in canonical decimal */
	assert_int_equal(iscsi_tpg_param_set(&p, "FirstBurstLength", "0x200", err,
					     sizeof(err)), 0);
	assert_string_equal(p.val[ITK_FIRSTBURSTLENGTH], "512");
	assert_int_equal(iscsi_tpg_param_set(&p, "HeaderDigest", "None,CRC32C", err,
					     sizeof(err)), 0);
	assert_int_equal(iscsi_tpg_param_set(&p, "AuthMethod", "CHAP", err,
					     sizeof(err)), 0);
	assert_int_equal(iscsi_tpg_param_set(&p, "AuthMethod", "None,CHAP", err,
					     sizeof(err)), 0);
	assert_int_equal(iscsi_tpg_param_set(&p, "TargetAlias", "my disk 1", err,
					     sizeof(err)), 0);
	assert_string_equal(p.val[ITK_TARGETALIAS], "my disk 1");
	assert_int_equal(iscsi_tpg_param_set(&p, "ImmediateData", "No", err,
					     sizeof(err)), 0);
	assert_int_equal(iscsi_tpg_param_set(&p, "IFMarkInt", "2048~65535", err,
					     sizeof(err)), 0);
	assert_int_equal(iscsi_tpg_param_set(&p, "OFMarkInt", "Reject", err,
					     sizeof(err)), 0);
	assert_int_equal(iscsi_tpg_param_set(&p, "ErrorRecoveryLevel", "0", err,
					     sizeof(err)), 0);

	memcpy(&before, &p, sizeof(p));

	assert_int_equal(iscsi_tpg_param_set(&p, "MaxBurstLength", "x", err,
					     sizeof(err)), -EINVAL);
	assert_string_equal(err, "Invalid value 'x' for parameter MaxBurstLength: "
			    "must be a number from 512 to 16777215");
	assert_int_equal(iscsi_tpg_param_set(&p, "MaxBurstLength", "511", err,
					     sizeof(err)), -EINVAL);
	assert_int_equal(iscsi_tpg_param_set(&p, "MaxBurstLength", "16777216", err,
					     sizeof(err)), -EINVAL);
	assert_int_equal(iscsi_tpg_param_set(&p, "MaxConnections", "0", err,
					     sizeof(err)), -EINVAL);
	assert_string_equal(err, "Invalid value '0' for parameter MaxConnections: "
			    "must be a number from 1 to 65535");
	assert_int_equal(iscsi_tpg_param_set(&p, "DefaultTime2Wait", "3601", err,
					     sizeof(err)), -EINVAL);
	assert_int_equal(iscsi_tpg_param_set(&p, "ErrorRecoveryLevel", "3", err,
					     sizeof(err)), -EINVAL);
	assert_int_equal(iscsi_tpg_param_set(&p, "InitialR2T", "yes", err,
					     sizeof(err)), -EINVAL);
	assert_string_equal(err, "Invalid value 'yes' for parameter InitialR2T: "
			    "must be Yes or No");
	assert_int_equal(iscsi_tpg_param_set(&p, "DataDigest", "CRC32C,MD5", err,
					     sizeof(err)), -EINVAL);
	assert_string_equal(err, "Invalid value 'CRC32C,MD5' for parameter DataDigest: "
			    "must be a comma-separated list of CRC32C, None, each at most once");
	assert_int_equal(iscsi_tpg_param_set(&p, "DataDigest", "CRC32C,CRC32C", err,
					     sizeof(err)), -EINVAL);
	assert_int_equal(iscsi_tpg_param_set(&p, "DataDigest", "", err,
					     sizeof(err)), -EINVAL);
	assert_int_equal(iscsi_tpg_param_set(&p, "DataDigest", "CRC32C,", err,
					     sizeof(err)), -EINVAL);
	assert_int_equal(iscsi_tpg_param_set(&p, "AuthMethod", "KRB5", err,
					     sizeof(err)), -EINVAL);
	assert_int_equal(iscsi_tpg_param_set(&p, "TargetAlias", "a\nb", err,
					     sizeof(err)), -EINVAL);
	assert_int_equal(iscsi_tpg_param_set(&p, "IFMarkInt", "5~2", err,
					     sizeof(err)), -EINVAL);
	assert_int_equal(iscsi_tpg_param_set(&p, "IFMarkInt", "0~2", err,
					     sizeof(err)), -EINVAL);
	assert_int_equal(iscsi_tpg_param_set(&p, "IFMarkInt", "~", err,
					     sizeof(err)), -EINVAL);
	assert_int_equal(iscsi_tpg_param_set(&p, "Bogus", "1", err,
					     sizeof(err)), -EINVAL);
	assert_string_equal(err, "Unknown parameter 'Bogus'");
	assert_int_equal(iscsi_tpg_param_set(&p, "maxburstlength", "512", err,
					     sizeof(err)), -EINVAL);
	assert_int_equal(iscsi_tpg_param_set(&p, "MaxBurstLength", NULL, err,
					     sizeof(err)), -EINVAL);
	assert_int_equal(iscsi_tpg_param_set(&p, NULL, "1", err, sizeof(err)),
			 -EINVAL);
	/* no room for a message is fine */
	assert_int_equal(iscsi_tpg_param_set(&p, "MaxBurstLength", "x", NULL, 0),
			 -EINVAL);
	assert_int_equal(iscsi_tpg_param_set(&p, "MaxBurstLength", "x", err, 8),
			 -EINVAL);
	assert_int_equal(strlen(err), 7);

	{
		char alias[300];

		memset(alias, 'a', sizeof(alias) - 1);
		alias[sizeof(alias) - 1] = '\0';
		assert_int_equal(iscsi_tpg_param_set(&p, "TargetAlias", alias, err,
						     sizeof(err)), -EINVAL);
		alias[255] = '\0';
		memcpy(&before.val[ITK_TARGETALIAS], alias, 256);
		assert_int_equal(iscsi_tpg_param_set(&p, "TargetAlias", alias, err,
						     sizeof(err)), 0);
	}

	/* failed sets left everything as it was */
	assert_memory_equal(&p, &before, sizeof(p));
}

/* A TPG filled in without validation does not make us offer nonsense. */
static void test_corrupt_tpg(void **state)
{
	struct ctx *c = *state;

	snprintf(c->tpg.val[ITK_MAXBURSTLENGTH], ISCSI_PARAM_VALUE_MAX, "junk");
	snprintf(c->tpg.val[ITK_HEADERDIGEST], ISCSI_PARAM_VALUE_MAX, "MD5");
	memset(c->tpg.val[ITK_DEFAULTTIME2WAIT], '7', ISCSI_PARAM_VALUE_MAX);
	expect(c, "MaxBurstLength", "1048576", "262144");
	expect(c, "HeaderDigest", "CRC32C", "CRC32C");
	expect(c, "DefaultTime2Wait", "1", "2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tpg_defaults),
		cmocka_unit_test(test_sess_defaults),
		cmocka_unit_test(test_text_build),
		cmocka_unit_test(test_text_parse),
		cmocka_unit_test_setup_teardown(test_min, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_and, setup, teardown),
		cmocka_unit_test_setup_teardown(test_or, setup, teardown),
		cmocka_unit_test_setup_teardown(test_digest_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reject_bad_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserved_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_understood, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mrdsl_declare, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mrdsl_finish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mrdsl_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_burst_clamp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_discovery_irrelevant, setup, teardown),
		cmocka_unit_test_setup_teardown(test_non_leading, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_feature, setup, teardown),
		cmocka_unit_test_setup_teardown(test_obsolete_and_misc_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_round, setup, teardown),
		cmocka_unit_test(test_tpg_param_set),
		cmocka_unit_test_setup_teardown(test_corrupt_tpg, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
