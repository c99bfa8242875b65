/* Unit tests: CHAP (src/iscsi/chap.c) against RFC 1994 and RFC 7143
 * §12.1.3: known answers per algorithm, binary-value parsing, the target
 * side of the exchange driven as an initiator would, mutual CHAP,
 * reflection, bad lengths. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "iscsi/chap.h"
#include "iscsi/params.h"

/* ---- helpers ------------------------------------------------------------ */

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

static void unhex(const char *s, uint8_t *out, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

static void set_auth(struct iscsi_auth *a, const char *u, const char *p,
		     const char *mu, const char *mp)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->userid, sizeof(a->userid), "%s", u ? u : "");
	snprintf(a->password, sizeof(a->password), "%s", p ? p : "");
	snprintf(a->mutual_userid, sizeof(a->mutual_userid), "%s", mu ? mu : "");
	snprintf(a->mutual_password, sizeof(a->mutual_password), "%s",
		 mp ? mp : "");
}

/* One exchange: the target under test and what it answered last. */
struct ex {
	struct iscsi_auth auth;
	struct iscsi_chap ch;
	struct iscsi_text out;
	int alg;
	uint8_t id;
	uint8_t chal[CHAP_CHALLENGE_MAX];
	size_t clen;
	const char *why;
};

static struct ex *ex_new(const char *u, const char *p, const char *mu,
			 const char *mp)
{
	struct ex *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	set_auth(&x->auth, u, p, mu, mp);
	iscsi_chap_init(&x->ch, &x->auth, CHAP_ALGS_ALL);
	iscsi_text_init(&x->out);
	return x;
}

static void ex_free(struct ex *x)
{
	iscsi_chap_clear(&x->ch);
	iscsi_text_free(&x->out);
	free(x);
}

static int step(struct ex *x)
{
	iscsi_text_reset(&x->out);
	return iscsi_chap_step(&x->ch, &x->out, &x->why);
}

/* I->T CHAP_A=list; expects the challenge and records it. */
static void send_a(struct ex *x, const char *list, int want_alg)
{
	const char *a, *i, *c;

	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_A", list), 0);
	assert_int_equal(step(x), 0);
	assert_int_equal(x->ch.state, CHAP_WAIT_NR);
	a = answer_of(&x->out, "CHAP_A");
	i = answer_of(&x->out, "CHAP_I");
	c = answer_of(&x->out, "CHAP_C");
	assert_non_null(a);
	assert_non_null(i);
	assert_non_null(c);
	x->alg = atoi(a);
	assert_int_equal(x->alg, want_alg);
	x->id = (uint8_t)atoi(i);
	/* a hex challenge of at least 16 bytes (and our digest length) */
	assert_memory_equal(c, "0x", 2);
	x->clen = (strlen(c) - 2) / 2;
	assert_true(x->clen >= 16);
	assert_true(x->clen >= iscsi_chap_digest_len(x->alg));
	assert_int_equal(strlen(c), 2 + 2 * x->clen);
	unhex(c + 2, x->chal, x->clen);
}

/* The initiator's response with secret, as "0x..." */
static void response_hex(struct ex *x, const char *secret, char *buf,
			 size_t n)
{
	uint8_t r[CHAP_DIGEST_MAX];

	assert_int_equal(iscsi_chap_digest(x->alg, x->id, secret,
					   strlen(secret), x->chal, x->clen, r),
			 0);
	assert_int_equal(iscsi_chap_encode_hex(r, iscsi_chap_digest_len(x->alg),
					       buf, n),
			 0);
}

/* ---- digests ------------------------------------------------------------ */

/* RFC 1994 §4.1: H(Identifier || secret || Challenge). The expected values
 * were computed independently (Python hashlib) for Identifier 0x2a, secret
 * "secretsecret" and the challenge 00 01 02 ... 0f. */
static void test_known_answers(void **state)
{
	static const struct {
		int alg;
		const char *hex;
	} kat[] = {
		{ CHAP_ALG_MD5, "54d49338a27b0c1dd5e935c21ab005a3" },
		{ CHAP_ALG_SHA1, "b060c80c0e004a388193dd4b911b5a400ca2b931" },
		{ CHAP_ALG_SHA256,
		  "2076dab09b25dfe7f89cdb79aa854cf8af88246b80126a0856a426662b39d903" },
		{ CHAP_ALG_SHA3_256,
		  "1e1bc4b940a438823a7ab5862e223043f6f65ee8148abe3310f5b7de30b8aa95" },
	};
	uint8_t chal[16], out[CHAP_DIGEST_MAX], want[CHAP_DIGEST_MAX];
	size_t i;

	for (i = 0; i < sizeof(chal); i++)
		chal[i] = (uint8_t)i;
	for (i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
		size_t n = iscsi_chap_digest_len(kat[i].alg);

		assert_int_equal(n * 2, strlen(kat[i].hex));
		unhex(kat[i].hex, want, n);
		assert_int_equal(iscsi_chap_digest(kat[i].alg, 0x2a,
						   "secretsecret", 12, chal,
						   sizeof(chal), out),
				 0);
		assert_memory_equal(out, want, n);
	}
	assert_int_equal(iscsi_chap_digest(4, 0, "x", 1, chal, 1, out), -EINVAL);
	assert_int_equal(iscsi_chap_digest_len(9), 0);
	assert_string_equal(iscsi_chap_alg_name(CHAP_ALG_SHA3_256), "SHA3-256");
}

/* ---- binary values (RFC 7143 §6.1) -------------------------------------- */

static void test_decode(void **state)
{
	uint8_t b[64];
	size_t n = 0;
	char s[2 * 1025 + 8];
	size_t i;

	assert_int_equal(iscsi_chap_decode("0x0aFF", b, sizeof(b), &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(b[0], 0x0a);
	assert_int_equal(b[1], 0xff);
	assert_int_equal(iscsi_chap_decode("0XabC", b, sizeof(b), &n), 0);
	assert_int_equal(n, 2); /* odd digit count: implied leading 0 */
	assert_int_equal(b[0], 0x0a);
	assert_int_equal(b[1], 0xbc);
	/* base64: "VNSTOKJ7DB3V6TXCGrAFow==" is the MD5 known answer above */
	assert_int_equal(iscsi_chap_decode("0bVNSTOKJ7DB3V6TXCGrAFow==", b,
					   sizeof(b), &n), 0);
	assert_int_equal(n, 16);
	assert_int_equal(b[0], 0x54);
	assert_int_equal(b[15], 0xa3);
	assert_int_equal(iscsi_chap_decode("0BAAEC", b, sizeof(b), &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(b[2], 2);
	assert_int_equal(iscsi_chap_decode("0bAAE=", b, sizeof(b), &n), 0);
	assert_int_equal(n, 2);
	/* malformed */
	assert_int_equal(iscsi_chap_decode("", b, sizeof(b), &n), -EINVAL);
	assert_int_equal(iscsi_chap_decode("0x", b, sizeof(b), &n), -EINVAL);
	assert_int_equal(iscsi_chap_decode("0b", b, sizeof(b), &n), -EINVAL);
	assert_int_equal(iscsi_chap_decode("1234", b, sizeof(b), &n), -EINVAL);
	assert_int_equal(iscsi_chap_decode("0x12g4", b, sizeof(b), &n), -EINVAL);
	assert_int_equal(iscsi_chap_decode("0x 1234", b, sizeof(b), &n), -EINVAL);
	assert_int_equal(iscsi_chap_decode("0bAAE", b, sizeof(b), &n), -EINVAL);
	assert_int_equal(iscsi_chap_decode("0bA=E=", b, sizeof(b), &n), -EINVAL);
	assert_int_equal(iscsi_chap_decode("0b====", b, sizeof(b), &n), -EINVAL);
	assert_int_equal(iscsi_chap_decode("0bAA==AAAA", b, sizeof(b), &n), -EINVAL);
	assert_int_equal(iscsi_chap_decode("0bAA!A", b, sizeof(b), &n), -EINVAL);
	assert_int_equal(iscsi_chap_decode("0z1234", b, sizeof(b), &n), -EINVAL);
	/* too long for the buffer */
	assert_int_equal(iscsi_chap_decode("0x001122", b, 2, &n), -E2BIG);
	assert_int_equal(iscsi_chap_decode("0bAAECAw==", b, 3, &n), -E2BIG);
	/* 1025 bytes are more than §12.1.3 allows for a challenge */
	strcpy(s, "0x");
	for (i = 0; i < 1025; i++)
		strcat(s, "ab");
	{
		uint8_t *big = malloc(CHAP_CHALLENGE_MAX);

		assert_non_null(big);
		assert_int_equal(iscsi_chap_decode(s, big, CHAP_CHALLENGE_MAX, &n),
				 -E2BIG);
		s[2 + 2048] = '\0';
		assert_int_equal(iscsi_chap_decode(s, big, CHAP_CHALLENGE_MAX, &n),
				 0);
		assert_int_equal(n, 1024);
		free(big);
	}
	/* encode */
	{
		static const uint8_t v[] = { 0x00, 0x9f, 0xa0 };
		char h[16];

		assert_int_equal(iscsi_chap_encode_hex(v, 3, h, sizeof(h)), 0);
		assert_string_equal(h, "0x009fa0");
		assert_int_equal(iscsi_chap_encode_hex(v, 3, h, 8), -E2BIG);
	}
}

static void test_pick_alg(void **state)
{
	assert_int_equal(iscsi_chap_pick_alg("5", CHAP_ALGS_ALL), 5);
	/* initiator's order wins (§6.2.1) */
	assert_int_equal(iscsi_chap_pick_alg("7,5", CHAP_ALGS_ALL), 7);
	assert_int_equal(iscsi_chap_pick_alg("8,7,6,5", CHAP_ALGS_ALL), 8);
	assert_int_equal(iscsi_chap_pick_alg("6,5", 1u << CHAP_ALG_MD5), 5);
	/* unknown values are skipped, none acceptable fails */
	assert_int_equal(iscsi_chap_pick_alg("128,x,,5", CHAP_ALGS_ALL), 5);
	assert_int_equal(iscsi_chap_pick_alg("4,128,99999999999999999999",
					     CHAP_ALGS_ALL), -ENOTSUP);
	assert_int_equal(iscsi_chap_pick_alg("", CHAP_ALGS_ALL), -ENOTSUP);
	assert_int_equal(iscsi_chap_pick_alg("7", 1u << CHAP_ALG_MD5), -ENOTSUP);
	assert_int_equal(iscsi_chap_pick_alg("-5,+5, 5,5 ", CHAP_ALGS_ALL),
			 -ENOTSUP);
}

/* ---- the exchange ------------------------------------------------------- */

/* One-way CHAP with each algorithm, response in hex. */
static void test_one_way_each_alg(void **state)
{
	static const int algs[] = { CHAP_ALG_MD5, CHAP_ALG_SHA1,
				    CHAP_ALG_SHA256, CHAP_ALG_SHA3_256 };
	size_t k;

	for (k = 0; k < sizeof(algs) / sizeof(algs[0]); k++) {
		struct ex *x = ex_new("user1", "secret-one-12", NULL, NULL);
		char list[8], r[2 * CHAP_DIGEST_MAX + 3];

		/* nothing yet (the request that agreed AuthMethod) */
		assert_int_equal(step(x), 0);
		assert_int_equal(x->out.len, 0);
		assert_int_equal(x->ch.state, CHAP_WAIT_A);
		snprintf(list, sizeof(list), "%d", algs[k]);
		send_a(x, list, algs[k]);
		response_hex(x, "secret-one-12", r, sizeof(r));
		assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_N", "user1"), 0);
		assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_R", r), 0);
		assert_int_equal(step(x), 0);
		assert_int_equal(x->ch.state, CHAP_DONE);
		assert_false(x->ch.mutual);
		assert_int_equal(x->out.len, 0); /* nothing to say back */
		/* and no CHAP key after that */
		assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_A", "5"), 0);
		assert_int_equal(step(x), -EACCES);
		ex_free(x);
	}
}

/* The response in base64 (0b) is accepted too. */
static void test_base64_response(void **state)
{
	struct ex *x = ex_new("u", "secret-base64", NULL, NULL);
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint8_t r[16];
	char s[32];
	size_t i, o = 2;

	send_a(x, "5", CHAP_ALG_MD5);
	assert_int_equal(iscsi_chap_digest(x->alg, x->id, "secret-base64", 13,
					   x->chal, x->clen, r), 0);
	strcpy(s, "0b");
	for (i = 0; i < 15; i += 3) {
		uint32_t v = (uint32_t)r[i] << 16 | (uint32_t)r[i + 1] << 8 | r[i + 2];

		s[o++] = b64[v >> 18];
		s[o++] = b64[(v >> 12) & 63];
		s[o++] = b64[(v >> 6) & 63];
		s[o++] = b64[v & 63];
	}
	s[o++] = b64[r[15] >> 2];
	s[o++] = b64[(r[15] & 3) << 4];
	s[o++] = '=';
	s[o++] = '=';
	s[o] = '\0';
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_N", "u"), 0);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_R", s), 0);
	assert_int_equal(step(x), 0);
	assert_int_equal(x->ch.state, CHAP_DONE);
	ex_free(x);
}

static void test_wrong_secret_and_name(void **state)
{
	struct ex *x = ex_new("user1", "right-secret", NULL, NULL);
	char r[2 * CHAP_DIGEST_MAX + 3];

	send_a(x, "5", CHAP_ALG_MD5);
	response_hex(x, "wrong-secret", r, sizeof(r));
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_N", "user1"), 0);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_R", r), 0);
	assert_int_equal(step(x), -EACCES);
	assert_int_equal(x->ch.state, CHAP_FAILED);
	assert_non_null(strstr(x->why, "CHAP_R"));
	/* the reason never carries a secret */
	assert_null(strstr(x->why, "secret-"));
	/* a failed exchange stays failed */
	assert_int_equal(step(x), -EACCES);
	ex_free(x);

	x = ex_new("user1", "right-secret", NULL, NULL);
	send_a(x, "5", CHAP_ALG_MD5);
	response_hex(x, "right-secret", r, sizeof(r));
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_N", "user2"), 0);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_R", r), 0);
	assert_int_equal(step(x), -EACCES);
	assert_non_null(strstr(x->why, "CHAP_N"));
	ex_free(x);

	/* a response computed over another identifier */
	x = ex_new("user1", "right-secret", NULL, NULL);
	send_a(x, "5", CHAP_ALG_MD5);
	x->id++;
	response_hex(x, "right-secret", r, sizeof(r));
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_N", "user1"), 0);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_R", r), 0);
	assert_int_equal(step(x), -EACCES);
	ex_free(x);
}

/* CHAP_R of the wrong length or form, missing keys, keys out of order,
 * repeated or oversized keys. */
static void test_bad_lengths_and_order(void **state)
{
	struct ex *x;
	char r[2 * CHAP_DIGEST_MAX + 3], big[9000];

	/* SHA-256 agreed, an MD5-sized response */
	x = ex_new("u", "secret-twelve", NULL, NULL);
	send_a(x, "7", CHAP_ALG_SHA256);
	x->alg = CHAP_ALG_MD5;
	response_hex(x, "secret-twelve", r, sizeof(r));
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_N", "u"), 0);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_R", r), 0);
	assert_int_equal(step(x), -EACCES);
	ex_free(x);

	/* a response one byte too long */
	x = ex_new("u", "secret-twelve", NULL, NULL);
	send_a(x, "5", CHAP_ALG_MD5);
	response_hex(x, "secret-twelve", r, sizeof(r));
	strcat(r, "00");
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_N", "u"), 0);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_R", r), 0);
	assert_int_equal(step(x), -EACCES);
	ex_free(x);

	/* CHAP_R missing */
	x = ex_new("u", "secret-twelve", NULL, NULL);
	send_a(x, "5", CHAP_ALG_MD5);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_N", "u"), 0);
	assert_int_equal(step(x), -EACCES);
	ex_free(x);

	/* a request without any CHAP key while the response is due */
	x = ex_new("u", "secret-twelve", NULL, NULL);
	send_a(x, "5", CHAP_ALG_MD5);
	assert_int_equal(step(x), -EACCES);
	ex_free(x);

	/* CHAP_N before CHAP_A */
	x = ex_new("u", "secret-twelve", NULL, NULL);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_N", "u"), 0);
	assert_int_equal(step(x), -EACCES);
	ex_free(x);

	/* CHAP_A again with the response */
	x = ex_new("u", "secret-twelve", NULL, NULL);
	send_a(x, "5", CHAP_ALG_MD5);
	response_hex(x, "secret-twelve", r, sizeof(r));
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_A", "5"), 0);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_N", "u"), 0);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_R", r), 0);
	assert_int_equal(step(x), -EACCES);
	ex_free(x);

	/* no acceptable algorithm */
	x = ex_new("u", "secret-twelve", NULL, NULL);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_A", "4,129"), 0);
	assert_int_equal(step(x), -EACCES);
	assert_non_null(strstr(x->why, "CHAP_A"));
	ex_free(x);

	/* no credentials configured */
	x = ex_new("", "", NULL, NULL);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_A", "5"), 0);
	assert_int_equal(step(x), -EACCES);
	ex_free(x);
	x = ex_new("u", "", NULL, NULL);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_A", "5"), 0);
	assert_int_equal(step(x), -EACCES);
	ex_free(x);

	/* key collection: repeats, unknown keys and oversized values */
	x = ex_new("u", "secret-twelve", NULL, NULL);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_A", "5"), 0);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_A", "5"), -EINVAL);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_X", "5"), -EINVAL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_N", big), -EINVAL);
	big[2 * CHAP_CHALLENGE_MAX + 3] = '\0';
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_C", big), -EINVAL);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_I", "12345678901234567"),
			 -EINVAL);
	ex_free(x);
}

/* Mutual CHAP: the target answers with mutual_userid and the response over
 * the initiator's challenge with the mutual secret. */
static void do_mutual(int alg, const char *chal_value, const uint8_t *chal,
		      size_t clen, const char *id_value, uint8_t id)
{
	struct ex *x = ex_new("user1", "initiator-secret", "tgtuser",
			      "target-secret1");
	char r[2 * CHAP_DIGEST_MAX + 3], list[8];
	uint8_t want[CHAP_DIGEST_MAX], got[CHAP_DIGEST_MAX];
	const char *n, *tr;

	snprintf(list, sizeof(list), "%d", alg);
	send_a(x, list, alg);
	response_hex(x, "initiator-secret", r, sizeof(r));
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_N", "user1"), 0);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_R", r), 0);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_I", id_value), 0);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_C", chal_value), 0);
	assert_int_equal(step(x), 0);
	assert_int_equal(x->ch.state, CHAP_DONE);
	assert_true(x->ch.mutual);
	n = answer_of(&x->out, "CHAP_N");
	tr = answer_of(&x->out, "CHAP_R");
	assert_non_null(n);
	assert_non_null(tr);
	assert_string_equal(n, "tgtuser");
	assert_int_equal(strlen(tr), 2 + 2 * iscsi_chap_digest_len(alg));
	unhex(tr + 2, got, iscsi_chap_digest_len(alg));
	assert_int_equal(iscsi_chap_digest(alg, id, "target-secret1", 14, chal,
					   clen, want), 0);
	assert_memory_equal(got, want, iscsi_chap_digest_len(alg));
	ex_free(x);
}

static void test_mutual(void **state)
{
	static const uint8_t c16[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
					 12, 13, 14, 15, 16 };
	static const uint8_t c3[3] = { 0, 1, 2 };

	do_mutual(CHAP_ALG_MD5, "0x0102030405060708090a0b0c0d0e0f10", c16, 16,
		  "7", 7);
	do_mutual(CHAP_ALG_SHA1, "0x0102030405060708090a0b0c0d0e0f10", c16, 16,
		  "0xff", 255);
	do_mutual(CHAP_ALG_SHA256, "0bAAEC", c3, 3, "0", 0);
	do_mutual(CHAP_ALG_SHA3_256, "0x0102030405060708090a0b0c0d0e0f10", c16,
		  16, "200", 200);
}

static void mutual_fails(const char *mu, const char *mp, const char *id,
			 const char *c, bool reflect)
{
	struct ex *x = ex_new("user1", "initiator-secret", mu, mp);
	char r[2 * CHAP_DIGEST_MAX + 3], refl[2 * CHAP_DIGEST_MAX + 3];

	send_a(x, "5", CHAP_ALG_MD5);
	response_hex(x, "initiator-secret", r, sizeof(r));
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_N", "user1"), 0);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_R", r), 0);
	if (id)
		assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_I", id), 0);
	if (reflect) {
		/* our own challenge sent back at us */
		iscsi_chap_encode_hex(x->chal, x->clen, refl, sizeof(refl));
		c = refl;
	}
	if (c)
		assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_C", c), 0);
	assert_int_equal(step(x), -EACCES);
	assert_int_equal(x->ch.state, CHAP_FAILED);
	assert_null(answer_of(&x->out, "CHAP_R"));
	ex_free(x);
}

static void test_mutual_refused(void **state)
{
	/* reflection (§12.1.3) */
	mutual_fails("tgt", "target-secret1", "1", NULL, true);
	/* no mutual credentials configured */
	mutual_fails("", "", "1", "0x00112233445566778899aabbccddeeff", false);
	mutual_fails("tgt", "", "1", "0x00112233445566778899aabbccddeeff", false);
	/* the mutual secret must differ from the initiator's */
	mutual_fails("tgt", "initiator-secret", "1",
		     "0x00112233445566778899aabbccddeeff", false);
	/* CHAP_I without CHAP_C and the other way round */
	mutual_fails("tgt", "target-secret1", "1", NULL, false);
	mutual_fails("tgt", "target-secret1", NULL,
		     "0x00112233445566778899aabbccddeeff", false);
	/* bad identifiers */
	mutual_fails("tgt", "target-secret1", "256",
		     "0x00112233445566778899aabbccddeeff", false);
	mutual_fails("tgt", "target-secret1", "-1",
		     "0x00112233445566778899aabbccddeeff", false);
	mutual_fails("tgt", "target-secret1", " 1",
		     "0x00112233445566778899aabbccddeeff", false);
	mutual_fails("tgt", "target-secret1", "0x",
		     "0x00112233445566778899aabbccddeeff", false);
	mutual_fails("tgt", "target-secret1", "1a",
		     "0x00112233445566778899aabbccddeeff", false);
	/* bad challenges */
	mutual_fails("tgt", "target-secret1", "1", "0x", false);
	mutual_fails("tgt", "target-secret1", "1", "0xzz", false);
	mutual_fails("tgt", "target-secret1", "1", "0bA", false);
}

/* A 1024-byte initiator challenge is the most §12.1.3 allows: accepted;
 * the key collector refuses anything whose text cannot be <= 1024 bytes. */
static void test_mutual_long_challenge(void **state)
{
	struct ex *x = ex_new("user1", "initiator-secret", "tgt",
			      "target-secret1");
	char r[2 * CHAP_DIGEST_MAX + 3];
	char *c = malloc(2 * CHAP_CHALLENGE_MAX + 3);
	size_t i;

	assert_non_null(c);
	strcpy(c, "0x");
	for (i = 0; i < CHAP_CHALLENGE_MAX; i++)
		memcpy(c + 2 + 2 * i, "5a", 3);
	send_a(x, "5", CHAP_ALG_MD5);
	response_hex(x, "initiator-secret", r, sizeof(r));
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_N", "user1"), 0);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_R", r), 0);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_I", "9"), 0);
	assert_int_equal(iscsi_chap_key(&x->ch, "CHAP_C", c), 0);
	assert_int_equal(step(x), 0);
	assert_true(x->ch.mutual);
	free(c);
	ex_free(x);
}

/* Each exchange gets its own random identifier and challenge. */
static void test_challenges_differ(void **state)
{
	struct ex *a = ex_new("u", "secret-twelve", NULL, NULL);
	struct ex *b = ex_new("u", "secret-twelve", NULL, NULL);

	send_a(a, "5", CHAP_ALG_MD5);
	send_a(b, "5", CHAP_ALG_MD5);
	assert_int_equal(a->clen, b->clen);
	assert_memory_not_equal(a->chal, b->chal, a->clen);
	ex_free(a);
	ex_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_pick_alg),
		cmocka_unit_test(test_one_way_each_alg),
		cmocka_unit_test(test_base64_response),
		cmocka_unit_test(test_wrong_secret_and_name),
		cmocka_unit_test(test_bad_lengths_and_order),
		cmocka_unit_test(test_mutual),
		cmocka_unit_test(test_mutual_refused),
		cmocka_unit_test(test_mutual_long_challenge),
		cmocka_unit_test(test_challenges_differ),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
