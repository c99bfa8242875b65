/* CHAP (RFC 1994) for iSCSI login (RFC 7143 §12.1.3), target side. See
 * chap.h for the exchange. Digests and random numbers come from OpenSSL's
 * libcrypto; responses are compared in constant time. */
#include "iscsi/chap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* Longest CHAP_A list / CHAP_N / CHAP_I value we look at. CHAP_C / CHAP_R
 * are bounded by their binary length (§12.1.3: 1024 bytes). */
#define CHAP_LIST_MAX 256
#define CHAP_NAME_MAX ISCSI_SECRET_MAX
#define CHAP_NUM_MAX 16

static const EVP_MD *chap_md(int alg)
{
	switch (alg) {
	case CHAP_ALG_MD5:
		return EVP_md5();
	case CHAP_ALG_SHA1:
		return EVP_sha1();
	case CHAP_ALG_SHA256:
		return EVP_sha256();
	case CHAP_ALG_SHA3_256:
		return EVP_sha3_256();
	}
	return NULL;
}

size_t iscsi_chap_digest_len(int alg)
{
	switch (alg) {
	case CHAP_ALG_MD5:
		return 16;
	case CHAP_ALG_SHA1:
		return 20;
	case CHAP_ALG_SHA256:
	case CHAP_ALG_SHA3_256:
		return 32;
	}
	return 0;
}

const char *iscsi_chap_alg_name(int alg)
{
	switch (alg) {
	case CHAP_ALG_MD5:
		return "MD5";
	case CHAP_ALG_SHA1:
		return "SHA-1";
	case CHAP_ALG_SHA256:
		return "SHA-256";
	case CHAP_ALG_SHA3_256:
		return "SHA3-256";
	}
	return "?";
}

int iscsi_chap_digest(int alg, uint8_t id, const void *secret, size_t slen,
		      const uint8_t *chal, size_t clen, uint8_t *out)
{
	const EVP_MD *md = chap_md(alg);
	EVP_MD_CTX *ctx;
	unsigned int n = 0;
	int ret = -EIO;

	if (!md)
		return -EINVAL;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	/* RFC 1994 §4.1: the hash of Identifier, then the secret, then the
	 * Challenge Value. A digest missing from this libcrypto (MD5 under
	 * a FIPS provider) fails here. */
	if (EVP_DigestInit_ex(ctx, md, NULL) == 1 &&
	    EVP_DigestUpdate(ctx, &id, 1) == 1 &&
	    EVP_DigestUpdate(ctx, secret, slen) == 1 &&
	    EVP_DigestUpdate(ctx, chal, clen) == 1 &&
	    EVP_DigestFinal_ex(ctx, out, &n) == 1 &&
	    n == iscsi_chap_digest_len(alg))
		ret = 0;
	EVP_MD_CTX_free(ctx);
	return ret;
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static int b64val(int ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

/* §6.1 hex-constant: an odd number of digits has an implied leading 0. */
static int decode_hex(const char *s, uint8_t *out, size_t max, size_t *len)
{
	size_t n = strlen(s), i = 0, o = 0;

	if (!n)
		return -EINVAL;
	if ((n + 1) / 2 > max)
		return -E2BIG;
	if (n & 1) {
		int v = hexval((unsigned char)s[0]);

		if (v < 0)
			return -EINVAL;
		out[o++] = (uint8_t)v;
		i = 1;
	}
	for (; i < n; i += 2) {
		int hi = hexval((unsigned char)s[i]);
		int lo = hexval((unsigned char)s[i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[o++] = (uint8_t)(hi << 4 | lo);
	}
	*len = o;
	return 0;
}

/* §6.1 base64-constant: RFC 4648 base64 with '=' padding, whole quads. */
static int decode_b64(const char *s, uint8_t *out, size_t max, size_t *len)
{
	size_t n = strlen(s), i, o = 0;
	size_t pad = 0;

	if (!n || n % 4)
		return -EINVAL;
	if (s[n - 1] == '=')
		pad++;
	if (s[n - 2] == '=')
		pad++;
	if (n / 4 * 3 - pad > max)
		return -E2BIG;
	for (i = 0; i < n; i += 4) {
		uint32_t acc = 0;
		int k;

		for (k = 0; k < 4; k++) {
			int v;

			if (s[i + k] == '=' && i + 4 == n && k >= 4 - (int)pad) {
				v = 0;
			} else {
				v = b64val((unsigned char)s[i + k]);
				if (v < 0)
					return -EINVAL;
			}
			acc = acc << 6 | (uint32_t)v;
		}
		out[o++] = (uint8_t)(acc >> 16);
		if (i + 4 < n || pad < 2)
			out[o++] = (uint8_t)(acc >> 8);
		if (i + 4 < n || pad < 1)
			out[o++] = (uint8_t)acc;
	}
	if (!o)
		return -EINVAL;
	*len = o;
	return 0;
}

int iscsi_chap_decode(const char *s, uint8_t *out, size_t max, size_t *len)
{
	if (!s || strlen(s) < 3 || s[0] != '0')
		return -EINVAL;
	if (s[1] == 'x' || s[1] == 'X')
		return decode_hex(s + 2, out, max, len);
	if (s[1] == 'b' || s[1] == 'B')
		return decode_b64(s + 2, out, max, len);
	return -EINVAL;
}

int iscsi_chap_encode_hex(const uint8_t *in, size_t len, char *out,
			  size_t outsz)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	if (outsz < 2 * len + 3)
		return -E2BIG;
	out[0] = '0';
	out[1] = 'x';
	for (i = 0; i < len; i++) {
		out[2 + 2 * i] = digits[in[i] >> 4];
		out[3 + 2 * i] = digits[in[i] & 15];
	}
	out[2 + 2 * len] = '\0';
	return 0;
}

/* Can this libcrypto compute alg? (a FIPS-only provider lacks MD5) */
static bool alg_works(int alg)
{
	uint8_t d[CHAP_DIGEST_MAX];

	return iscsi_chap_digest(alg, 0, "", 0, (const uint8_t *)"", 0, d) == 0;
}

int iscsi_chap_pick_alg(const char *list, unsigned allowed)
{
	char buf[CHAP_LIST_MAX];
	char *save = NULL, *tok, *end;

	if (!list || strlen(list) >= sizeof(buf))
		return -ENOTSUP;
	memcpy(buf, list, strlen(list) + 1);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		unsigned long v;

		/* values we do not know are skipped (§6.2.1) */
		if (tok[0] < '0' || tok[0] > '9')
			continue;
		v = strtoul(tok, &end, 10);
		if (*end || v >= 32)
			continue;
		if ((allowed & (1u << v)) && iscsi_chap_digest_len((int)v) &&
		    alg_works((int)v))
			return (int)v;
	}
	return -ENOTSUP;
}

void iscsi_chap_init(struct iscsi_chap *ch, const struct iscsi_auth *auth,
		     unsigned allowed)
{
	memset(ch, 0, sizeof(*ch));
	ch->state = CHAP_WAIT_A;
	ch->allowed = allowed;
	ch->auth = auth;
}

static void drop_keys(struct iscsi_chap *ch)
{
	char **k[] = { &ch->key_a, &ch->key_n, &ch->key_r, &ch->key_i,
		       &ch->key_c };
	size_t i;

	for (i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
		if (*k[i]) {
			OPENSSL_cleanse(*k[i], strlen(*k[i]));
			free(*k[i]);
			*k[i] = NULL;
		}
	}
}

void iscsi_chap_clear(struct iscsi_chap *ch)
{
	drop_keys(ch);
	OPENSSL_cleanse(ch->challenge, sizeof(ch->challenge));
	ch->challenge_len = 0;
}

int iscsi_chap_key(struct iscsi_chap *ch, const char *key, const char *value)
{
	char **slot;
	size_t max;

	if (!strcmp(key, "CHAP_A")) {
		slot = &ch->key_a;
		max = CHAP_LIST_MAX;
	} else if (!strcmp(key, "CHAP_N")) {
		slot = &ch->key_n;
		max = CHAP_NAME_MAX;
	} else if (!strcmp(key, "CHAP_R")) {
		slot = &ch->key_r;
		max = CHAP_HEX_MAX;
	} else if (!strcmp(key, "CHAP_I")) {
		slot = &ch->key_i;
		max = CHAP_NUM_MAX;
	} else if (!strcmp(key, "CHAP_C")) {
		slot = &ch->key_c;
		max = CHAP_HEX_MAX;
	} else {
		return -EINVAL;
	}
	/* §6.1: a key may appear once per request; the length bounds keep a
	 * hostile initiator from making us hold or hash much. */
	if (*slot || strlen(value) >= max)
		return -EINVAL;
	*slot = strdup(value);
	return *slot ? 0 : -ENOMEM;
}

bool iscsi_chap_pending(const struct iscsi_chap *ch)
{
	return ch->key_a || ch->key_n || ch->key_r || ch->key_i || ch->key_c;
}

static int fail(struct iscsi_chap *ch, const char **why, const char *msg)
{
	*why = msg;
	ch->state = CHAP_FAILED;
	drop_keys(ch);
	return -EACCES;
}

/* T->I CHAP_A, CHAP_I, CHAP_C (§12.1.3). */
static int send_challenge(struct iscsi_chap *ch, struct iscsi_text *out,
			  const char **why)
{
	char hex[2 * CHAP_DIGEST_MAX + 3];
	int alg = iscsi_chap_pick_alg(ch->key_a, ch->allowed);

	if (alg < 0)
		return fail(ch, why, "no acceptable CHAP_A (algorithm)");
	ch->alg = alg;
	ch->dlen = iscsi_chap_digest_len(alg);
	/* A fresh, unpredictable identifier and challenge per login (RFC 1994
	 * §2.3); never shorter than 16 bytes, as long as the digest. */
	ch->challenge_len = ch->dlen > CHAP_CHALLENGE_MIN ? ch->dlen :
							   CHAP_CHALLENGE_MIN;
	if (RAND_bytes(ch->challenge, (int)ch->challenge_len) != 1 ||
	    RAND_bytes(&ch->id, 1) != 1) {
		*why = "no random bytes for the CHAP challenge";
		ch->state = CHAP_FAILED;
		return -EIO;
	}
	iscsi_chap_encode_hex(ch->challenge, ch->challenge_len, hex,
			      sizeof(hex));
	if (iscsi_text_addf(out, "CHAP_A", "%d", alg) ||
	    iscsi_text_addf(out, "CHAP_I", "%u", ch->id) ||
	    iscsi_text_add(out, "CHAP_C", hex))
		return -ENOMEM;
	ch->state = CHAP_WAIT_NR;
	return 0;
}

/* CHAP_I: a number 0-255 (§12.1.3), decimal or 0x hex (§6.1). */
static int parse_id(const char *s, uint8_t *id)
{
	const char *p = s;
	unsigned long v;
	int base = 10;
	char *end;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		p = s + 2;
		base = 16;
	}
	/* strtoul would take leading blanks and signs */
	if (hexval((unsigned char)p[0]) < 0 || (base == 10 && p[0] > '9'))
		return -EINVAL;
	v = strtoul(p, &end, base);
	if (*end || end - p > 8 || v > 255)
		return -EINVAL;
	*id = (uint8_t)v;
	return 0;
}

/* Mutual CHAP: the initiator's CHAP_I / CHAP_C answered with our name and
 * the response computed with the mutual secret. */
static int answer_challenge(struct iscsi_chap *ch, struct iscsi_text *out,
			    const char **why)
{
	const struct iscsi_auth *a = ch->auth;
	uint8_t *chal, resp[CHAP_DIGEST_MAX];
	char hex[2 * CHAP_DIGEST_MAX + 3];
	size_t clen = 0;
	uint8_t id;
	int ret;

	if (!ch->key_i || !ch->key_c)
		return fail(ch, why, "CHAP_I without CHAP_C or CHAP_C without CHAP_I");
	if (!a->mutual_userid[0] || !a->mutual_password[0])
		return fail(ch, why,
			    "initiator asks for mutual CHAP but no mutual credentials are configured");
	/* RFC 7143 §12.1.3: a secret used to authenticate initiators must not
	 * also authenticate the target, or the initiator could make us
	 * compute its own response. */
	if (!strcmp(a->mutual_password, a->password))
		return fail(ch, why, "mutual CHAP secret equals the initiator's secret");
	if (parse_id(ch->key_i, &id))
		return fail(ch, why, "bad CHAP_I");
	chal = malloc(CHAP_CHALLENGE_MAX);
	if (!chal)
		return -ENOMEM;
	ret = iscsi_chap_decode(ch->key_c, chal, CHAP_CHALLENGE_MAX, &clen);
	if (ret) {
		free(chal);
		return fail(ch, why, ret == -E2BIG ?
			    "CHAP_C longer than 1024 bytes" : "bad CHAP_C");
	}
	/* §12.1.3: our own challenge coming back is a reflection attack. */
	if (clen == ch->challenge_len &&
	    !CRYPTO_memcmp(chal, ch->challenge, clen)) {
		free(chal);
		return fail(ch, why, "initiator's CHAP_C repeats the target's (reflection)");
	}
	ret = iscsi_chap_digest(ch->alg, id, a->mutual_password,
				strlen(a->mutual_password), chal, clen, resp);
	OPENSSL_cleanse(chal, clen);
	free(chal);
	if (ret) {
		*why = "CHAP digest failed";
		ch->state = CHAP_FAILED;
		return ret;
	}
	iscsi_chap_encode_hex(resp, ch->dlen, hex, sizeof(hex));
	OPENSSL_cleanse(resp, sizeof(resp));
	if (iscsi_text_add(out, "CHAP_N", a->mutual_userid) ||
	    iscsi_text_add(out, "CHAP_R", hex))
		return -ENOMEM;
	ch->mutual = true;
	return 0;
}

/* I->T CHAP_N, CHAP_R [CHAP_I, CHAP_C]. */
static int check_response(struct iscsi_chap *ch, struct iscsi_text *out,
			  const char **why)
{
	const struct iscsi_auth *a = ch->auth;
	uint8_t want[CHAP_DIGEST_MAX], got[CHAP_DIGEST_MAX];
	size_t glen = 0;
	int name_ok, resp_ok, ret;

	if (ch->key_a)
		return fail(ch, why, "CHAP_A sent twice");
	if (!ch->key_n || !ch->key_r)
		return fail(ch, why, "CHAP_N or CHAP_R missing");
	if (iscsi_chap_decode(ch->key_r, got, sizeof(got), &glen) ||
	    glen != ch->dlen)
		return fail(ch, why, "bad CHAP_R (format or length)");
	ret = iscsi_chap_digest(ch->alg, ch->id, a->password,
				strlen(a->password), ch->challenge,
				ch->challenge_len, want);
	if (ret) {
		*why = "CHAP digest failed";
		ch->state = CHAP_FAILED;
		return ret;
	}
	/* Both checks always run, and the response compare takes the same
	 * time wherever it differs. */
	name_ok = !strcmp(ch->key_n, a->userid);
	resp_ok = !CRYPTO_memcmp(want, got, ch->dlen);
	OPENSSL_cleanse(want, sizeof(want));
	if (!name_ok)
		return fail(ch, why, "CHAP_N does not match the configured userid");
	if (!resp_ok)
		return fail(ch, why, "CHAP_R does not match (wrong secret)");
	if (ch->key_i || ch->key_c) {
		ret = answer_challenge(ch, out, why);
		if (ret)
			return ret;
	}
	/* The challenge is single use (RFC 1994 §2.3); the reflection check
	 * above was its last use. */
	OPENSSL_cleanse(ch->challenge, sizeof(ch->challenge));
	ch->state = CHAP_DONE;
	return 0;
}

int iscsi_chap_step(struct iscsi_chap *ch, struct iscsi_text *out,
		    const char **why)
{
	const struct iscsi_auth *a = ch->auth;
	int ret = 0;

	*why = NULL;
	switch (ch->state) {
	case CHAP_WAIT_A:
		if (!iscsi_chap_pending(ch))
			return 0; /* e.g. the request that agreed AuthMethod */
		if (!ch->key_a || ch->key_n || ch->key_r || ch->key_i ||
		    ch->key_c)
			return fail(ch, why, "CHAP keys out of order (expected CHAP_A)");
		if (!a || !a->userid[0] || !a->password[0])
			return fail(ch, why, "no CHAP credentials configured for this initiator");
		ret = send_challenge(ch, out, why);
		break;
	case CHAP_WAIT_NR:
		if (!iscsi_chap_pending(ch))
			return fail(ch, why, "CHAP_N / CHAP_R expected");
		ret = check_response(ch, out, why);
		break;
	case CHAP_DONE:
		if (iscsi_chap_pending(ch))
			return fail(ch, why, "CHAP keys after authentication completed");
		break;
	case CHAP_FAILED:
		return fail(ch, why, "CHAP already failed");
	}
	drop_keys(ch);
	return ret;
}
